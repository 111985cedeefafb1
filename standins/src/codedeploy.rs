//! A CodeDeploy stand-in for what the moto emulator lacks. It speaks CodeDeploy's
//! real wire protocol (AWS JSON 1.1, `X-Amz-Target: CodeDeploy_20141006.<Operation>`),
//! so the functions reach it through the normal SDK with `AWS_ENDPOINT_URL_CODEDEPLOY`.
//!
//! Behaviour follows the CodeDeploy user guide and API reference:
//! - One active deployment per group: a second CreateDeployment fails with
//!   `DeploymentLimitExceededException` ("The Deployment Group '<g>' already has an
//!   active Deployment '<id>'") [API reference, CreateDeployment errors].
//! - ECS lifecycle order BeforeInstall → Install → AfterInstall → AllowTestTraffic →
//!   AfterAllowTestTraffic → BeforeAllowTraffic → AllowTraffic → AfterAllowTraffic
//!   [user guide, "AppSpec 'hooks' section for an Amazon ECS deployment"].
//! - Hooks are invoked with `{DeploymentId, LifecycleEventHookExecutionId}` and awaited:
//!   PutLifecycleEventHookExecutionStatus with Succeeded or Failed; a second report
//!   raises `LifecycleEventAlreadyCompletedException`; no answer in time fails the
//!   deployment [user guide, "Lambda validation functions"; API reference].
//! - Traffic shifting per deployment configuration: AllAtOnce, Canary (P% then the
//!   rest after T minutes), Linear (P% every T minutes) [user guide, "Deployment
//!   configurations on an Amazon ECS compute platform"]. Simplified: minutes are
//!   compressed to `Timing::minute` for the rehearsal.
//! - StopDeployment with autoRollbackEnabled returns traffic to the original task set
//!   [API reference, StopDeployment; user guide, "Redeploy and roll back"].
//! - State changes are emitted as EventBridge "CodeDeploy Deployment State-change
//!   Notification" events with states START, SUCCESS, FAILURE, STOP [user guide,
//!   "Monitoring deployments with Amazon EventBridge"].
//!
//! Simplified, and said so: no IAM, no alarm polling by CodeDeploy itself (Greenlight's
//! alarm-rollback stops deployments in the rehearsal), no bake/termination wait, deployment
//! ids are `d-` plus 9 characters like AWS's but not AWS's generator.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::http::{response, BoxFuture, Handler, Request};

/// Where traffic goes: the stand-in drives a load balancer through this.
pub trait Traffic: Send + Sync {
    /// Install: the replacement (green) task set runs `image`.
    fn install_green(&self, group: &str, image: &str);
    /// AllowTestTraffic: the test listener serves green.
    fn test_to_green(&self, group: &str);
    /// AllowTraffic steps: `percent` of production traffic to green.
    fn production_to_green(&self, group: &str, percent: u8);
    /// Success: green becomes the original (blue) task set.
    fn promote(&self, group: &str);
    /// Rollback: every listener back to blue, green removed.
    fn rollback(&self, group: &str);
    /// The target groups (ARNs) blue and green register in now, if the load balancer
    /// has any: what `taskSetsInfo` reports.
    fn target_groups(&self, _group: &str) -> Option<(String, String)> {
        None
    }
}

/// Traffic that goes nowhere: for benchmarks and tests that need no load balancer.
pub struct NoTraffic;

impl Traffic for NoTraffic {
    fn install_green(&self, _: &str, _: &str) {}
    fn test_to_green(&self, _: &str) {}
    fn production_to_green(&self, _: &str, _: u8) {}
    fn promote(&self, _: &str) {}
    fn rollback(&self, _: &str) {}
}

pub type HookInvoker = Arc<dyn Fn(String, Value) -> BoxFuture<()> + Send + Sync>;
pub type EventSink = Arc<dyn Fn(Value) + Send + Sync>;
pub type Observer = Arc<dyn Fn(String) + Send + Sync>;

/// Time compression for the rehearsal.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// What a "minute" of a deployment configuration lasts.
    pub minute: Duration,
    /// How long a hook may take to report before the deployment fails (AWS: one hour).
    pub hook_timeout: Duration,
    /// How often the engine looks at stop requests and hook reports.
    pub tick: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            minute: Duration::from_secs(1),
            hook_timeout: Duration::from_secs(60),
            tick: Duration::from_millis(20),
        }
    }
}

const EVENTS: [&str; 8] = [
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "AllowTestTraffic",
    "AfterAllowTestTraffic",
    "BeforeAllowTraffic",
    "AllowTraffic",
    "AfterAllowTraffic",
];

#[derive(Debug, Clone)]
struct Deployment {
    id: String,
    application: String,
    group: String,
    config: String,
    description: String,
    appspec: String,
    status: String,
    created: f64,
    completed: Option<f64>,
    /// lifecycle event → status
    lifecycle: BTreeMap<String, String>,
    /// lifecycle event → start (epoch seconds)
    started: BTreeMap<String, f64>,
    /// execution id → (event, reported status)
    executions: BTreeMap<String, (String, Option<String>)>,
    stop_requested: Option<bool>,
    error: Option<String>,
    /// Seeded history: no engine runs it, so a stop ends it at once.
    seeded: bool,
    /// Green's share of production traffic, percent.
    green_percent: u8,
}

/// The order list operations return their items in. AWS documents none for
/// ListDeployments, so callers must not depend on one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ListOrder {
    /// Newest first (what the stand-in does by default).
    #[default]
    NewestFirst,
    /// A fixed pseudo-random permutation from this seed.
    Shuffled(u64),
}

/// Items per page of the List operations. AWS documents no page size; 100 is the
/// maximum its other list APIs use, small enough that long histories take pages.
pub const PAGE_SIZE: usize = 100;

#[derive(Default)]
struct World {
    applications: BTreeMap<String, Value>,
    /// (application, group) → the group as created
    groups: BTreeMap<(String, String), Value>,
    deployments: Vec<Deployment>,
    next_id: u64,
    list_order: ListOrder,
}

/// One page of `items` after `input.nextToken` (an offset here; opaque to callers),
/// under `key`, with the next token when more remain.
fn page(key: &str, items: Vec<String>, input: &Value) -> Value {
    let start: usize = input["nextToken"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let end = (start + PAGE_SIZE).min(items.len());
    let mut out = json!({ key: items.get(start..end).unwrap_or_default() });
    if end < items.len() {
        out["nextToken"] = json!(end.to_string());
    }
    out
}

/// `items` in `order` (deterministic for a seed).
fn ordered<T>(mut items: Vec<T>, order: ListOrder) -> Vec<T> {
    if let ListOrder::Shuffled(seed) = order {
        // Fisher-Yates with a splitmix64 stream.
        let mut state = seed;
        let mut next = || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        for i in (1..items.len()).rev() {
            let j = (next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
    items
}

struct Inner {
    world: Mutex<World>,
    traffic: Arc<dyn Traffic>,
    hooks: HookInvoker,
    events: EventSink,
    observer: Observer,
    ecs: Option<aws_sdk_ecs::Client>,
    timing: Timing,
}

/// The stand-in; clone freely.
#[derive(Clone)]
pub struct CodeDeployStandIn {
    inner: Arc<Inner>,
}

/// An API error: `__type` and `message`, as AWS JSON 1.1 sends them.
#[derive(Debug)]
struct ApiError {
    code: &'static str,
    message: String,
}

fn error(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        code,
        message: message.into(),
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

impl CodeDeployStandIn {
    pub fn new(
        traffic: Arc<dyn Traffic>,
        hooks: HookInvoker,
        events: EventSink,
        observer: Observer,
        ecs: Option<aws_sdk_ecs::Client>,
        timing: Timing,
    ) -> Self {
        CodeDeployStandIn {
            inner: Arc::new(Inner {
                world: Mutex::new(World::default()),
                traffic,
                hooks,
                events,
                observer,
                ecs,
                timing,
            }),
        }
    }

    /// The HTTP handler (serve it with [`crate::http::serve`]).
    pub fn handler(&self) -> Handler {
        let this = self.clone();
        crate::traffic::recorded(
            "codedeploy",
            Arc::new(move |request: Request| {
                let this = this.clone();
                Box::pin(async move { this.answer(request) })
            }),
        )
    }

    fn answer(&self, request: Request) -> crate::http::Response {
        let operation = request
            .header("x-amz-target")
            .and_then(|t| t.strip_prefix("CodeDeploy_20141006."))
            .unwrap_or_default()
            .to_string();
        let input: Value =
            serde_json::from_slice(&request.body).unwrap_or(Value::Object(Map::new()));
        let result = self.dispatch(&operation, &input);
        match result {
            Ok(output) => response(200, "application/x-amz-json-1.1", output.to_string()),
            Err(e) => {
                (self.inner.observer)(format!(
                    "CodeDeploy {operation} -> {}: {}",
                    e.code, e.message
                ));
                crate::http::json_error(e.code, &e.message)
            }
        }
    }

    fn dispatch(&self, operation: &str, input: &Value) -> Result<Value, ApiError> {
        let s = |key: &str| {
            input
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        match operation {
            "CreateApplication" => {
                let name = s("applicationName");
                self.inner
                    .world
                    .lock()
                    .unwrap()
                    .applications
                    .insert(name.clone(), input.clone());
                Ok(json!({"applicationId": format!("app-{name}")}))
            }
            "ListApplications" => {
                let world = self.inner.world.lock().unwrap();
                let names = world.applications.keys().cloned().collect();
                Ok(page("applications", names, input))
            }
            "CreateDeploymentGroup" => {
                let (app, group) = (s("applicationName"), s("deploymentGroupName"));
                let mut world = self.inner.world.lock().unwrap();
                if !world.applications.contains_key(&app) {
                    return Err(error(
                        "ApplicationDoesNotExistException",
                        format!("No application found for name: {app}"),
                    ));
                }
                world.groups.insert((app, group.clone()), input.clone());
                Ok(json!({"deploymentGroupId": format!("dg-{group}")}))
            }
            "GetDeploymentGroup" => {
                let world = self.inner.world.lock().unwrap();
                let group = world
                    .groups
                    .get(&(s("applicationName"), s("deploymentGroupName")))
                    .ok_or_else(|| {
                        error(
                            "DeploymentGroupDoesNotExistException",
                            format!(
                                "No Deployment Group found for name: {}",
                                s("deploymentGroupName")
                            ),
                        )
                    })?;
                Ok(json!({"deploymentGroupInfo": group}))
            }
            "ListDeploymentGroups" => {
                let app = s("applicationName");
                let world = self.inner.world.lock().unwrap();
                let names: Vec<String> = world
                    .groups
                    .keys()
                    .filter(|(a, _)| *a == app)
                    .map(|(_, g)| g.clone())
                    .collect();
                let mut out = page("deploymentGroups", names, input);
                out["applicationName"] = json!(app);
                Ok(out)
            }
            "BatchGetDeploymentGroups" => {
                let app = s("applicationName");
                let world = self.inner.world.lock().unwrap();
                let infos: Vec<&Value> = input["deploymentGroupNames"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|n| {
                        world
                            .groups
                            .get(&(app.clone(), n.as_str().unwrap_or_default().to_string()))
                    })
                    .collect();
                Ok(json!({"deploymentGroupsInfo": infos}))
            }
            "CreateDeployment" => self.create_deployment(input),
            "GetDeployment" => {
                let world = self.inner.world.lock().unwrap();
                let d = find(&world, &s("deploymentId"))?;
                Ok(json!({"deploymentInfo": info(d)}))
            }
            "BatchGetDeployments" => {
                let world = self.inner.world.lock().unwrap();
                let infos: Vec<Value> = input["deploymentIds"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|id| {
                        world
                            .deployments
                            .iter()
                            .find(|d| Some(d.id.as_str()) == id.as_str())
                            .map(info)
                    })
                    .collect();
                Ok(json!({"deploymentsInfo": infos}))
            }
            "ListDeployments" => {
                let (app, group) = (s("applicationName"), s("deploymentGroupName"));
                let statuses: Vec<String> = input["includeOnlyStatuses"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                // TimeRange: epoch seconds; either end may be left open [API reference, TimeRange].
                let start = input
                    .pointer("/createTimeRange/start")
                    .and_then(Value::as_f64);
                let end = input
                    .pointer("/createTimeRange/end")
                    .and_then(Value::as_f64);
                let world = self.inner.world.lock().unwrap();
                let ids: Vec<String> = world
                    .deployments
                    .iter()
                    .rev()
                    .filter(|d| d.application == app && d.group == group)
                    .filter(|d| statuses.is_empty() || statuses.contains(&d.status))
                    .filter(|d| start.is_none_or(|t| d.created >= t))
                    .filter(|d| end.is_none_or(|t| d.created <= t))
                    .map(|d| d.id.clone())
                    .collect();
                Ok(page("deployments", ordered(ids, world.list_order), input))
            }
            "StopDeployment" => {
                let id = s("deploymentId");
                let rollback = input["autoRollbackEnabled"].as_bool().unwrap_or(false);
                let mut world = self.inner.world.lock().unwrap();
                let d = find_mut(&mut world, &id)?;
                if !is_active(&d.status) {
                    return Err(error(
                        "DeploymentAlreadyCompletedException",
                        format!("Deployment {id} has already completed"),
                    ));
                }
                d.stop_requested = Some(rollback);
                if d.seeded {
                    d.status = "Stopped".into();
                    d.completed = Some(now());
                }
                drop(world);
                (self.inner.observer)(format!(
                    "CodeDeploy StopDeployment {id} (autoRollbackEnabled: {rollback})"
                ));
                Ok(json!({"status": "Pending", "statusMessage": "Stop request accepted"}))
            }
            "PutLifecycleEventHookExecutionStatus" => {
                let (id, execution, status) = (
                    s("deploymentId"),
                    s("lifecycleEventHookExecutionId"),
                    s("status"),
                );
                if status != "Succeeded" && status != "Failed" {
                    return Err(error(
                        "InvalidLifecycleEventHookExecutionStatusException",
                        format!("status {status:?} must be Succeeded or Failed"),
                    ));
                }
                let mut world = self.inner.world.lock().unwrap();
                let d = find_mut(&mut world, &id)?;
                let Some((event, reported)) = d.executions.get_mut(&execution) else {
                    return Err(error(
                        "InvalidLifecycleEventHookExecutionIdException",
                        format!("unknown execution id {execution}"),
                    ));
                };
                if reported.is_some() {
                    return Err(error(
                        "LifecycleEventAlreadyCompletedException",
                        format!("The lifecycle event {event} has already completed"),
                    ));
                }
                *reported = Some(status.clone());
                let event = event.clone();
                drop(world);
                (self.inner.observer)(format!(
                    "CodeDeploy PutLifecycleEventHookExecutionStatus {id} {event}: {status}"
                ));
                Ok(json!({"lifecycleEventHookExecutionId": execution}))
            }
            "ListDeploymentTargets" => {
                let world = self.inner.world.lock().unwrap();
                let d = find(&world, &s("deploymentId"))?;
                Ok(json!({"targetIds": [target_id(&world, d)]}))
            }
            "GetDeploymentTarget" => {
                let world = self.inner.world.lock().unwrap();
                let d = find(&world, &s("deploymentId"))?;
                let events: Vec<Value> = EVENTS
                    .iter()
                    .map(|e| {
                        let mut event = json!({"lifecycleEventName": e, "status": d.lifecycle.get(*e).cloned().unwrap_or_else(|| "Pending".into())});
                        if let Some(t) = d.started.get(*e) {
                            event["startTime"] = json!(t);
                        }
                        event
                    })
                    .collect();
                // taskSetsInfo [API reference, ECSTaskSet]: the task sets labelled Blue
                // and Green, the percent of production traffic each serves
                // (`trafficWeight`), and their target groups by name when the load
                // balancer has any.
                let name = |arn: &str| arn.split('/').nth(1).unwrap_or(arn).to_string();
                let groups = self.inner.traffic.target_groups(&d.group);
                let green = f64::from(d.green_percent);
                let task_sets: Vec<Value> = [
                    ("Blue", 100.0 - green, groups.as_ref().map(|(b, _)| name(b))),
                    ("Green", green, groups.as_ref().map(|(_, g)| name(g))),
                ]
                .into_iter()
                .map(|(label, weight, group)| {
                    let mut set = json!({"taskSetLabel": label, "trafficWeight": weight});
                    if let Some(group) = group {
                        set["targetGroup"] = json!({"name": group});
                    }
                    set
                })
                .collect();
                Ok(
                    json!({"deploymentTarget": {"deploymentTargetType": "ECSTarget", "ecsTarget": {
                    "deploymentId": d.id, "targetId": target_id(&world, d), "lifecycleEvents": events,
                    "taskSetsInfo": task_sets, "status": target_status(&d.status)}}}),
                )
            }
            other => Err(error(
                "UnknownOperationException",
                format!("the stand-in does not implement {other:?}"),
            )),
        }
    }

    fn create_deployment(&self, input: &Value) -> Result<Value, ApiError> {
        let s = |key: &str| {
            input
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let (app, group) = (s("applicationName"), s("deploymentGroupName"));
        let appspec = input
            .pointer("/revision/appSpecContent/content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let parsed: Value = serde_json::from_str(&appspec).map_err(|e| {
            error(
                "InvalidRevisionException",
                format!("AppSpec is not valid JSON: {e}"),
            )
        })?;
        if parsed
            .pointer("/Resources/0/TargetService/Properties/TaskDefinition")
            .and_then(Value::as_str)
            .is_none()
        {
            return Err(error(
                "InvalidRevisionException",
                "AppSpec names no TargetService TaskDefinition",
            ));
        }
        let mut world = self.inner.world.lock().unwrap();
        if !world.applications.contains_key(&app) {
            return Err(error(
                "ApplicationDoesNotExistException",
                format!("No application found for name: {app}"),
            ));
        }
        let Some(group_info) = world.groups.get(&(app.clone(), group.clone())).cloned() else {
            return Err(error(
                "DeploymentGroupDoesNotExistException",
                format!("No Deployment Group found for name: {group}"),
            ));
        };
        if let Some(active) = world
            .deployments
            .iter()
            .find(|d| d.application == app && d.group == group && is_active(&d.status))
        {
            return Err(error(
                "DeploymentLimitExceededException",
                format!(
                    "The Deployment Group '{group}' already has an active Deployment '{}'",
                    active.id
                ),
            ));
        }
        world.next_id += 1;
        let seed = world.next_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (now() * 1000.0) as u64;
        let id = format!("d-{}", base36(seed, 9));
        let config = match s("deploymentConfigName") {
            c if !c.is_empty() => c,
            _ => group_info["deploymentConfigName"]
                .as_str()
                .unwrap_or("CodeDeployDefault.ECSAllAtOnce")
                .to_string(),
        };
        world.deployments.push(Deployment {
            id: id.clone(),
            application: app,
            group: group.clone(),
            config,
            description: s("description"),
            appspec,
            status: "Created".into(),
            created: now(),
            completed: None,
            lifecycle: BTreeMap::new(),
            started: BTreeMap::new(),
            executions: BTreeMap::new(),
            stop_requested: None,
            error: None,
            seeded: false,
            green_percent: 0,
        });
        drop(world);
        (self.inner.observer)(format!("CodeDeploy CreateDeployment {group} -> {id}"));
        let engine = self.clone();
        let engine_id = id.clone();
        tokio::spawn(async move { engine.run(engine_id).await });
        Ok(json!({"deploymentId": id}))
    }

    fn with<R>(&self, id: &str, f: impl FnOnce(&mut Deployment) -> R) -> Option<R> {
        let mut world = self.inner.world.lock().unwrap();
        world.deployments.iter_mut().find(|d| d.id == id).map(f)
    }

    fn emit(&self, id: &str, state: &str) {
        let Some((app, group)) = self.with(id, |d| (d.application.clone(), d.group.clone())) else {
            return;
        };
        let event = json!({
            "account": "123456789012", "region": "us-east-1",
            "detail-type": "CodeDeploy Deployment State-change Notification",
            "source": "aws.codedeploy", "version": "0",
            "time": crate::rfc3339_now(),
            "id": format!("{id}-{state}"),
            "resources": [
                format!("arn:aws:codedeploy:us-east-1:123456789012:application:{app}"),
                format!("arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:{app}/{group}")
            ],
            "detail": {"region": "us-east-1", "application": app, "deploymentId": id, "state": state, "deploymentGroup": group, "instanceGroupId": format!("ig-{id}")}
        });
        (self.inner.observer)(format!("EventBridge: CodeDeploy {id} {state}"));
        (self.inner.events)(event);
    }

    /// The deployment engine: walks the lifecycle, invokes hooks, shifts traffic.
    async fn run(self, id: String) {
        self.with(&id, |d| d.status = "InProgress".into());
        self.emit(&id, "START");
        let Some((group, appspec, config)) = self.with(&id, |d| {
            (d.group.clone(), d.appspec.clone(), d.config.clone())
        }) else {
            return;
        };
        let appspec: Value = serde_json::from_str(&appspec).unwrap_or_default();
        let hooks: BTreeMap<String, String> = appspec["Hooks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| h.as_object())
            .flat_map(|h| {
                h.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            })
            .collect();
        let task_definition = appspec
            .pointer("/Resources/0/TargetService/Properties/TaskDefinition")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let outcome: Result<(), String> = async {
            for event in EVENTS {
                self.check_stop(&id)?;
                self.with(&id, |d| {
                    d.started.insert(event.to_string(), now());
                    d.lifecycle.insert(event.to_string(), "InProgress".into())
                });
                (self.inner.observer)(format!("CodeDeploy {id} lifecycle {event}"));
                match event {
                    "Install" => {
                        let image = self
                            .image_of(&task_definition)
                            .await
                            .unwrap_or_else(|| task_definition.clone());
                        self.inner.traffic.install_green(&group, &image);
                    }
                    "AllowTestTraffic" => self.inner.traffic.test_to_green(&group),
                    "AllowTraffic" => {
                        self.shift(&id, &group, &config).await?;
                    }
                    hook_event => {
                        if let Some(function) = hooks.get(hook_event) {
                            self.hook(&id, hook_event, function).await?;
                        }
                    }
                }
                self.with(&id, |d| {
                    d.lifecycle.insert(event.to_string(), "Succeeded".into())
                });
            }
            Ok(())
        }
        .await;
        match outcome {
            Ok(()) => {
                self.inner.traffic.promote(&group);
                self.update_service(&group, &task_definition).await;
                self.finish(&id, "Succeeded", None);
                self.emit(&id, "SUCCESS");
            }
            Err(reason) if reason == "stopped" => {
                self.inner.traffic.rollback(&group);
                self.with(&id, |d| d.green_percent = 0);
                self.finish(
                    &id,
                    "Stopped",
                    Some(
                        "Deployment was stopped; traffic returned to the original task set".into(),
                    ),
                );
                self.emit(&id, "STOP");
            }
            Err(reason) => {
                self.inner.traffic.rollback(&group);
                self.with(&id, |d| d.green_percent = 0);
                self.finish(&id, "Failed", Some(reason));
                self.emit(&id, "FAILURE");
            }
        }
    }

    fn finish(&self, id: &str, status: &str, error: Option<String>) {
        self.with(id, |d| {
            d.status = status.into();
            d.completed = Some(now());
            d.error = error;
        });
        (self.inner.observer)(format!("CodeDeploy {id} {status}"));
    }

    fn check_stop(&self, id: &str) -> Result<(), String> {
        match self.with(id, |d| d.stop_requested).flatten() {
            Some(_) => Err("stopped".into()),
            None => Ok(()),
        }
    }

    async fn hook(&self, id: &str, event: &str, function: &str) -> Result<(), String> {
        let execution = format!(
            "exec-{}-{}",
            event,
            base36((now() * 1_000_000.0) as u64, 12)
        );
        self.with(id, |d| {
            d.executions
                .insert(execution.clone(), (event.to_string(), None))
        });
        (self.inner.observer)(format!("CodeDeploy invokes {function} for {event}"));
        let payload = json!({"DeploymentId": id, "LifecycleEventHookExecutionId": execution});
        tokio::spawn((self.inner.hooks)(function.to_string(), payload));
        let deadline = Instant::now() + self.inner.timing.hook_timeout;
        loop {
            self.check_stop(id)?;
            let reported = self
                .with(id, |d| {
                    d.executions.get(&execution).and_then(|(_, s)| s.clone())
                })
                .flatten();
            match reported.as_deref() {
                Some("Succeeded") => return Ok(()),
                Some(_) => return Err(format!("The {event} hook ({function}) reported Failed")),
                None if Instant::now() >= deadline => {
                    return Err(format!(
                        "The {event} hook ({function}) did not report a status in time"
                    ));
                }
                None => tokio::time::sleep(self.inner.timing.tick).await,
            }
        }
    }

    /// AllowTraffic per the deployment configuration, time compressed.
    async fn shift(&self, id: &str, group: &str, config: &str) -> Result<(), String> {
        let minute = self.inner.timing.minute;
        let steps: Vec<(u8, Duration)> = match parse_config(config) {
            Shift::AllAtOnce => vec![(100, Duration::ZERO)],
            Shift::Canary { percent, minutes } => {
                vec![(percent, minute * minutes), (100, Duration::ZERO)]
            }
            Shift::Linear { percent, minutes } => {
                let mut steps = Vec::new();
                let mut at = percent;
                while at < 100 {
                    steps.push((at, minute * minutes));
                    at = at.saturating_add(percent);
                }
                steps.push((100, Duration::ZERO));
                steps
            }
        };
        for (percent, wait) in steps {
            self.check_stop(id)?;
            (self.inner.observer)(format!(
                "CodeDeploy {id} production traffic {percent}% to green"
            ));
            self.inner.traffic.production_to_green(group, percent);
            self.with(id, |d| d.green_percent = percent);
            let until = Instant::now() + wait;
            while Instant::now() < until {
                self.check_stop(id)?;
                tokio::time::sleep(self.inner.timing.tick).await;
            }
        }
        Ok(())
    }

    async fn image_of(&self, task_definition: &str) -> Option<String> {
        let ecs = self.inner.ecs.as_ref()?;
        let td = ecs
            .describe_task_definition()
            .task_definition(task_definition)
            .send()
            .await
            .ok()?
            .task_definition?;
        td.container_definitions()
            .first()
            .and_then(|c| c.image().map(str::to_string))
    }

    /// After success the service runs the new task definition (so the next deployment reads it).
    async fn update_service(&self, group: &str, task_definition: &str) {
        let Some(ecs) = &self.inner.ecs else { return };
        let service = {
            let world = self.inner.world.lock().unwrap();
            world
                .groups
                .iter()
                .find(|((_, g), _)| g == group)
                .map(|(_, info)| info["ecsServices"][0].clone())
        };
        let Some(service) = service else { return };
        let (Some(cluster), Some(name)) = (
            service["clusterName"].as_str(),
            service["serviceName"].as_str(),
        ) else {
            return;
        };
        let _ = ecs
            .update_service()
            .cluster(cluster)
            .service(name)
            .task_definition(task_definition)
            .send()
            .await;
    }

    /// Seeds an application (as CreateApplication would).
    pub fn seed_application(&self, name: &str) {
        self.inner.world.lock().unwrap().applications.insert(
            name.to_string(),
            json!({"applicationName": name, "computePlatform": "ECS"}),
        );
    }

    /// Seeds a deployment group: `info` as CreateDeploymentGroup takes it
    /// (`applicationName`, `deploymentGroupName`, `alarmConfiguration`, ...).
    pub fn seed_group(&self, info: Value) {
        let key = (
            info["applicationName"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            info["deploymentGroupName"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        self.inner.world.lock().unwrap().groups.insert(key, info);
    }

    /// Seeds a past (or in-flight) deployment that no engine runs; returns its id.
    /// `created` is in seconds since the epoch.
    pub fn seed_deployment(
        &self,
        application: &str,
        group: &str,
        status: &str,
        created: f64,
        description: &str,
    ) -> String {
        let mut world = self.inner.world.lock().unwrap();
        world.next_id += 1;
        let id = format!(
            "d-{}",
            base36(world.next_id.wrapping_mul(0x9E37_79B9_7F4A_7C15), 9)
        );
        world.deployments.push(Deployment {
            id: id.clone(),
            application: application.to_string(),
            group: group.to_string(),
            config: "CodeDeployDefault.ECSAllAtOnce".into(),
            description: description.to_string(),
            appspec: String::new(),
            status: status.to_string(),
            created,
            completed: (!is_active(status)).then_some(created + 60.0),
            lifecycle: BTreeMap::new(),
            started: BTreeMap::new(),
            executions: BTreeMap::new(),
            stop_requested: None,
            error: None,
            seeded: true,
            green_percent: 0,
        });
        id
    }

    /// The order the List operations return items in.
    pub fn set_list_order(&self, order: ListOrder) {
        self.inner.world.lock().unwrap().list_order = order;
    }

    /// Status of a deployment, for tests and the rehearsal.
    pub fn status(&self, id: &str) -> Option<String> {
        self.with(id, |d| d.status.clone())
    }

    /// Every deployment id, oldest first.
    pub fn deployment_ids(&self) -> Vec<String> {
        self.inner
            .world
            .lock()
            .unwrap()
            .deployments
            .iter()
            .map(|d| d.id.clone())
            .collect()
    }
}

fn is_active(status: &str) -> bool {
    matches!(
        status,
        "Created" | "Queued" | "InProgress" | "Baking" | "Ready"
    )
}

fn target_status(status: &str) -> &str {
    match status {
        "Succeeded" => "Succeeded",
        "Failed" => "Failed",
        "Stopped" => "Skipped",
        "Created" => "Pending",
        _ => "InProgress",
    }
}

fn target_id(world: &World, d: &Deployment) -> String {
    let service = world
        .groups
        .get(&(d.application.clone(), d.group.clone()))
        .map(|g| g["ecsServices"][0].clone())
        .unwrap_or_default();
    format!(
        "{}:{}",
        service["clusterName"].as_str().unwrap_or("cluster"),
        service["serviceName"].as_str().unwrap_or("service")
    )
}

fn find<'a>(world: &'a World, id: &str) -> Result<&'a Deployment, ApiError> {
    world
        .deployments
        .iter()
        .find(|d| d.id == id)
        .ok_or_else(|| {
            error(
                "DeploymentDoesNotExistException",
                format!("The deployment {id} could not be found"),
            )
        })
}

fn find_mut<'a>(world: &'a mut World, id: &str) -> Result<&'a mut Deployment, ApiError> {
    world
        .deployments
        .iter_mut()
        .find(|d| d.id == id)
        .ok_or_else(|| {
            error(
                "DeploymentDoesNotExistException",
                format!("The deployment {id} could not be found"),
            )
        })
}

fn info(d: &Deployment) -> Value {
    let mut info = json!({
        "applicationName": d.application,
        "deploymentGroupName": d.group,
        "deploymentConfigName": d.config,
        "deploymentId": d.id,
        "status": d.status,
        "description": d.description,
        "createTime": d.created,
        "computePlatform": "ECS",
        "revision": {"revisionType": "AppSpecContent", "appSpecContent": {"content": d.appspec}},
    });
    if let Some(done) = d.completed {
        info["completeTime"] = json!(done);
    }
    if let Some(error) = &d.error {
        info["errorInformation"] = json!({"code": "HEALTH_CONSTRAINTS", "message": error});
    }
    info
}

#[derive(Debug, PartialEq, Eq)]
enum Shift {
    AllAtOnce,
    Canary { percent: u8, minutes: u32 },
    Linear { percent: u8, minutes: u32 },
}

/// `CodeDeployDefault.ECSCanary10Percent5Minutes` → Canary{10, 5}, and so on.
fn parse_config(name: &str) -> Shift {
    let numbers: Vec<u32> = name
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect();
    let percent = numbers.first().copied().unwrap_or(100).clamp(1, 100) as u8;
    let minutes = numbers.get(1).copied().unwrap_or(1);
    if name.contains("Canary") {
        Shift::Canary { percent, minutes }
    } else if name.contains("Linear") {
        Shift::Linear { percent, minutes }
    } else {
        Shift::AllAtOnce
    }
}

fn base36(mut n: u64, len: usize) -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut out = Vec::with_capacity(len);
    for _ in 0..len {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_configs_parse_into_shifts() {
        assert_eq!(
            parse_config("CodeDeployDefault.ECSAllAtOnce"),
            Shift::AllAtOnce
        );
        assert_eq!(
            parse_config("CodeDeployDefault.ECSCanary10Percent5Minutes"),
            Shift::Canary {
                percent: 10,
                minutes: 5
            }
        );
        assert_eq!(
            parse_config("CodeDeployDefault.ECSLinear10PercentEvery1Minutes"),
            Shift::Linear {
                percent: 10,
                minutes: 1
            }
        );
    }

    #[test]
    fn ids_look_like_codedeploy_ids() {
        let id = format!("d-{}", base36(123_456_789, 9));
        assert_eq!(id.len(), 11);
        assert!(id[2..]
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
    }
}
