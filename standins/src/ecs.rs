//! An ECS stand-in for ECS-native blue/green deployments, which the moto emulator
//! does not run (its service-deployment operations answer HTML 500s, and it stores
//! `deploymentConfiguration` with no behaviour). It speaks ECS's real wire protocol
//! (AWS JSON 1.1, `X-Amz-Target: AmazonEC2ContainerServiceV20141113.<Operation>`),
//! answers the deployment operations itself and passes every other call through to
//! the emulator, so the functions reach it with `AWS_ENDPOINT_URL_ECS`.
//!
//! Behaviour, from the Amazon ECS developer guide and API reference:
//! - A service with deployment controller ECS and strategy BLUE_GREEN, CANARY or
//!   LINEAR deploys a new task definition given to UpdateService as a *service
//!   deployment*: PENDING → IN_PROGRESS → SUCCESSFUL, or ROLLBACK_REQUESTED /
//!   ROLLBACK_IN_PROGRESS → ROLLBACK_SUCCESSFUL ["View service history using Amazon
//!   ECS service deployments"].
//! - Stages in order: PRE_SCALE_UP, SCALE_UP, POST_SCALE_UP, TEST_TRAFFIC_SHIFT,
//!   POST_TEST_TRAFFIC_SHIFT, PRE_PRODUCTION_TRAFFIC_SHIFT, PRODUCTION_TRAFFIC_SHIFT,
//!   POST_PRODUCTION_TRAFFIC_SHIFT, BAKE_TIME, CLEAN_UP; Lambda hooks run at the stages
//!   they name except SCALE_UP, BAKE_TIME and CLEAN_UP ["Lifecycle hooks for Amazon
//!   ECS service deployments"]. With CANARY (canaryPercent, then 100) and LINEAR
//!   (stepPercent steps) the PRE_PRODUCTION_TRAFFIC_SHIFT and PRODUCTION_TRAFFIC_SHIFT
//!   hooks run at every step.
//! - A Lambda hook gets `{executionId, lifecycleStage, resourceArn, executionDetails
//!   {serviceArn, targetServiceRevisionArn, testTrafficWeights, productionTrafficWeights},
//!   hookDetails}` and answers `{hookStatus, callBackDelay?, hookDetails?}`: SUCCEEDED
//!   goes on, FAILED rolls back, IN_PROGRESS is invoked again after `callBackDelay`
//!   (default 30 s) with the returned hookDetails; an error or an answer without a
//!   valid hookStatus rolls back ["Lambda hooks for Amazon ECS service deployments"].
//! - A PAUSE hook waits in AWAITING_ACTION until ContinueServiceDeployment CONTINUE
//!   or ROLLBACK.
//! - During a rollback the TEST_TRAFFIC_SHIFT and PRODUCTION_TRAFFIC_SHIFT hooks run
//!   again with the weights swung back to the source revision.
//! - StopServiceDeployment ROLLBACK on a pending or ongoing deployment moves it to
//!   ROLLBACK_REQUESTED and rolls back ["Stopping Amazon ECS service deployments"]; on
//!   a finished one ECS answers ConflictException.
//! - EventBridge "ECS Deployment State Change": SERVICE_DEPLOYMENT_IN_PROGRESS,
//!   SERVICE_DEPLOYMENT_COMPLETED, SERVICE_DEPLOYMENT_FAILED, with the service ARN in
//!   `resources` and an `ecs-svc/…` deploymentId.
//!
//! Simplified, and said so: minutes compressed to `Timing::minute`, callback seconds
//! to `Timing::second`; no tasks actually run (the local load balancer's Traffic
//! plays green); an UpdateService while a deployment is in flight stops the
//! in-flight one and starts the new one (an assumption: Greenlight never does it);
//! no alarms or circuit breaker of ECS's own.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::codedeploy::{EventSink, Observer, Traffic};
use crate::http::{response, BoxFuture, Handler, Request};

const TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113.";
const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";

/// Invokes a Lambda hook and returns its answer (the function's return value).
pub type LambdaInvoker =
    Arc<dyn Fn(String, Value) -> BoxFuture<Result<Value, String>> + Send + Sync>;

/// Time compression.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// What a "minute" of bake time and traffic steps lasts.
    pub minute: Duration,
    /// What a second of `callBackDelay` lasts.
    pub second: Duration,
    /// How long a hook may stay IN_PROGRESS or AWAITING_ACTION (AWS default 1440 min).
    pub hook_timeout: Duration,
    pub tick: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            minute: Duration::from_secs(1),
            second: Duration::from_millis(20),
            hook_timeout: Duration::from_secs(60),
            tick: Duration::from_millis(20),
        }
    }
}

#[derive(Debug, Clone)]
struct HookConfig {
    hook_id: String,
    target_type: String,
    target_arn: String,
    stages: Vec<String>,
    details: Value,
}

#[derive(Debug, Clone)]
struct ServiceState {
    name: String,
    arn: String,
    cluster_arn: String,
    bake_minutes: f64,
    /// Production traffic steps: percent to green, then minutes to wait.
    steps: Vec<(f64, f64)>,
    hooks: Vec<HookConfig>,
    deployment_configuration: Value,
    load_balancers: Value,
    current_revision: Option<String>,
    current_deployment: Option<String>,
}

#[derive(Debug, Clone)]
struct Revision {
    arn: String,
    service_arn: String,
    cluster_arn: String,
    task_definition: String,
    container_images: Vec<Value>,
    created: f64,
}

#[derive(Debug, Clone)]
struct HookState {
    hook_id: String,
    target_type: String,
    target_arn: String,
    status: String,
}

#[derive(Debug, Clone)]
struct Deployment {
    arn: String,
    service_key: (String, String),
    status: String,
    status_reason: Option<String>,
    stage: Option<String>,
    created: f64,
    started: Option<f64>,
    finished: Option<f64>,
    source_revision: Option<String>,
    target_revision: String,
    stop_requested: bool,
    hooks: Vec<HookState>,
    /// hook id → CONTINUE or ROLLBACK from ContinueServiceDeployment.
    continue_actions: BTreeMap<String, String>,
    ecs_svc_id: String,
    rollback_reason: Option<String>,
    /// Stopped by StopServiceDeployment (as opposed to a failed hook).
    stopped_on_request: bool,
    /// Green's (the target revision's) share of test and production traffic, percent.
    test_weight: f64,
    production_weight: f64,
}

#[derive(Default)]
struct World {
    services: BTreeMap<(String, String), ServiceState>,
    revisions: BTreeMap<String, Revision>,
    deployments: Vec<Deployment>,
    next: u64,
}

struct Inner {
    world: Mutex<World>,
    upstream: String,
    http: reqwest::Client,
    traffic: Arc<dyn Traffic>,
    lambda: LambdaInvoker,
    events: EventSink,
    observer: Observer,
    timing: Timing,
}

/// The stand-in; clone freely.
#[derive(Clone)]
pub struct EcsStandIn {
    inner: Arc<Inner>,
}

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

fn name_of(arn_or_name: &str) -> String {
    arn_or_name
        .rsplit('/')
        .next()
        .unwrap_or(arn_or_name)
        .to_string()
}

/// Stages with a hook, in order; SCALE_UP, BAKE_TIME and CLEAN_UP take none.
const STAGES: [&str; 10] = [
    "PRE_SCALE_UP",
    "SCALE_UP",
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRE_PRODUCTION_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
    "BAKE_TIME",
    "CLEAN_UP",
];

fn is_in_flight(status: &str) -> bool {
    matches!(
        status,
        "PENDING"
            | "IN_PROGRESS"
            | "STOP_REQUESTED"
            | "ROLLBACK_REQUESTED"
            | "ROLLBACK_IN_PROGRESS"
    )
}

impl EcsStandIn {
    /// `upstream`: the emulator every other ECS call goes to.
    pub fn new(
        upstream: String,
        traffic: Arc<dyn Traffic>,
        lambda: LambdaInvoker,
        events: EventSink,
        observer: Observer,
        timing: Timing,
    ) -> Self {
        EcsStandIn {
            inner: Arc::new(Inner {
                world: Mutex::new(World::default()),
                upstream,
                http: reqwest::Client::new(),
                traffic,
                lambda,
                events,
                observer,
                timing,
            }),
        }
    }

    /// The HTTP handler (serve it with [`crate::http::serve`]).
    pub fn handler(&self) -> Handler {
        let this = self.clone();
        crate::traffic::recorded(
            "ecs",
            Arc::new(move |request: Request| {
                let this = this.clone();
                Box::pin(async move { this.answer(request).await })
            }),
        )
    }

    async fn answer(&self, request: Request) -> crate::http::Response {
        let operation = request
            .header("x-amz-target")
            .and_then(|t| t.strip_prefix(TARGET_PREFIX))
            .unwrap_or_default()
            .to_string();
        let input: Value =
            serde_json::from_slice(&request.body).unwrap_or(Value::Object(Map::new()));
        let result = match operation.as_str() {
            "CreateService" => self.create_service(&input).await,
            "UpdateService" => self.update_service(&input).await,
            "DescribeServices" => self.describe_services(&input).await,
            "ListServiceDeployments" => self.list_service_deployments(&input),
            "DescribeServiceDeployments" => self.describe_service_deployments(&input),
            "DescribeServiceRevisions" => self.describe_service_revisions(&input),
            "StopServiceDeployment" => self.stop_service_deployment(&input),
            "ContinueServiceDeployment" => self.continue_service_deployment(&input),
            _ => return self.forward_raw(&operation, request.body.to_vec()).await,
        };
        match result {
            Ok(output) => response(200, "application/x-amz-json-1.1", output.to_string()),
            Err(e) => {
                (self.inner.observer)(format!("ECS {operation} -> {}: {}", e.code, e.message));
                crate::http::json_error(e.code, &e.message)
            }
        }
    }

    /// Passes a call through to the emulator, unchanged.
    async fn forward_raw(&self, operation: &str, body: Vec<u8>) -> crate::http::Response {
        match self.call_upstream_raw(operation, body).await {
            Ok((status, text)) => {
                let mut r = response(status, "application/x-amz-json-1.1", text);
                r.headers_mut().insert(
                    crate::traffic::FORWARDED,
                    hyper::header::HeaderValue::from_static("emulator"),
                );
                r
            }
            Err(e) => response(502, "text/plain", format!("ECS stand-in upstream: {e}")),
        }
    }

    async fn call_upstream_raw(
        &self,
        operation: &str,
        body: Vec<u8>,
    ) -> Result<(u16, String), String> {
        let answer = self
            .inner
            .http
            .post(&self.inner.upstream)
            .header("x-amz-target", format!("{TARGET_PREFIX}{operation}"))
            .header("content-type", "application/x-amz-json-1.1")
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ecs/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = answer.status().as_u16();
        Ok((status, answer.text().await.map_err(|e| e.to_string())?))
    }

    async fn upstream(&self, operation: &str, input: &Value) -> Result<Value, ApiError> {
        let (status, text) = self
            .call_upstream_raw(operation, input.to_string().into_bytes())
            .await
            .map_err(|e| error("ServerException", e))?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status >= 400 {
            return Err(error(
                "ClientException",
                format!("emulator answered {status} to {operation}: {text}"),
            ));
        }
        Ok(value)
    }

    async fn create_service(&self, input: &Value) -> Result<Value, ApiError> {
        let strategy = input
            .pointer("/deploymentConfiguration/strategy")
            .and_then(Value::as_str)
            .unwrap_or("ROLLING")
            .to_string();
        let controller = input
            .pointer("/deploymentController/type")
            .and_then(Value::as_str)
            .unwrap_or("ECS");
        // The emulator keeps no ECS-native configuration: the stand-in does.
        let mut forwarded = input.clone();
        if let Some(map) = forwarded.as_object_mut() {
            map.remove("deploymentConfiguration");
        }
        let mut output = self.upstream("CreateService", &forwarded).await?;
        let native =
            controller == "ECS" && matches!(strategy.as_str(), "BLUE_GREEN" | "CANARY" | "LINEAR");
        if !native {
            return Ok(output);
        }
        let cluster = name_of(input["cluster"].as_str().unwrap_or("default"));
        let name = input["serviceName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let arn = output
            .pointer("/service/serviceArn")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{cluster}/{name}"));
        let cluster_arn = format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{cluster}");
        let config = &input["deploymentConfiguration"];
        let task_definition = input["taskDefinition"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let revision = self
            .new_revision(&arn, &cluster_arn, &task_definition)
            .await;
        let mut state = ServiceState {
            name: name.clone(),
            arn,
            cluster_arn,
            bake_minutes: 0.0,
            steps: Vec::new(),
            hooks: Vec::new(),
            deployment_configuration: Value::Null,
            load_balancers: input.get("loadBalancers").cloned().unwrap_or(json!([])),
            current_revision: Some(revision),
            current_deployment: None,
        };
        apply_configuration(&mut state, config);
        if let Some(service) = output.get_mut("service") {
            merge_service(service, &state);
        }
        self.inner
            .world
            .lock()
            .unwrap()
            .services
            .insert((cluster, name), state);
        Ok(output)
    }

    /// A service revision for `task_definition`, with its container images (from the emulator).
    async fn new_revision(
        &self,
        service_arn: &str,
        cluster_arn: &str,
        task_definition: &str,
    ) -> String {
        let described = self
            .upstream(
                "DescribeTaskDefinition",
                &json!({"taskDefinition": task_definition}),
            )
            .await
            .unwrap_or(Value::Null);
        let container_images: Vec<Value> = described
            .pointer("/taskDefinition/containerDefinitions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| {
                let image = c["image"].as_str().unwrap_or_default();
                let mut entry = json!({"containerName": c["name"], "image": image});
                if let Some((_, digest)) = image.rsplit_once('@') {
                    entry["imageDigest"] = json!(digest);
                }
                entry
            })
            .collect();
        let task_definition_arn = described
            .pointer("/taskDefinition/taskDefinitionArn")
            .and_then(Value::as_str)
            .unwrap_or(task_definition)
            .to_string();
        let mut world = self.inner.world.lock().unwrap();
        world.next += 1;
        let (cluster, service) = service_path(service_arn);
        let arn = format!(
            "arn:aws:ecs:{REGION}:{ACCOUNT}:service-revision/{cluster}/{service}/{}",
            world.next
        );
        world.revisions.insert(
            arn.clone(),
            Revision {
                arn: arn.clone(),
                service_arn: service_arn.to_string(),
                cluster_arn: cluster_arn.to_string(),
                task_definition: task_definition_arn,
                container_images,
                created: now(),
            },
        );
        arn
    }

    async fn update_service(&self, input: &Value) -> Result<Value, ApiError> {
        let key = (
            name_of(input["cluster"].as_str().unwrap_or("default")),
            name_of(input["service"].as_str().unwrap_or_default()),
        );
        let state = self.inner.world.lock().unwrap().services.get(&key).cloned();
        let Some(state) = state else {
            return self.upstream("UpdateService", input).await;
        };
        let mut forwarded = input.clone();
        if let Some(map) = forwarded.as_object_mut() {
            map.remove("deploymentConfiguration");
        }
        let mut output = self.upstream("UpdateService", &forwarded).await?;
        if let Some(config) = input
            .get("deploymentConfiguration")
            .filter(|c| c.is_object())
        {
            let mut world = self.inner.world.lock().unwrap();
            if let Some(state) = world.services.get_mut(&key) {
                apply_configuration(state, config);
            }
        }
        if let Some(task_definition) = input["taskDefinition"].as_str() {
            let revision = self
                .new_revision(&state.arn, &state.cluster_arn, task_definition)
                .await;
            let arn = self.start_deployment(&key, revision);
            (self.inner.observer)(format!("ECS UpdateService {}/{} -> {arn}", key.0, key.1));
        }
        let state = self.inner.world.lock().unwrap().services.get(&key).cloned();
        if let (Some(service), Some(state)) = (output.get_mut("service"), state) {
            merge_service(service, &state);
        }
        Ok(output)
    }

    fn start_deployment(&self, key: &(String, String), target_revision: String) -> String {
        let mut world = self.inner.world.lock().unwrap();
        // Assumed, not documented: a new deployment stops the one in flight.
        for d in world.deployments.iter_mut() {
            if d.service_key == *key && is_in_flight(&d.status) {
                d.stop_requested = true;
                d.rollback_reason = Some("superseded by a new service deployment".into());
            }
        }
        world.next += 1;
        let n = world.next;
        let state = world.services.get_mut(key).expect("checked by the caller");
        let arn = format!(
            "arn:aws:ecs:{REGION}:{ACCOUNT}:service-deployment/{}/{}/sd{n:08}",
            key.0, key.1
        );
        state.current_deployment = Some(arn.clone());
        let source = state.current_revision.clone();
        let hooks = state
            .hooks
            .iter()
            .map(|h| HookState {
                hook_id: h.hook_id.clone(),
                target_type: h.target_type.clone(),
                target_arn: h.target_arn.clone(),
                status: "PENDING".into(),
            })
            .collect();
        world.deployments.push(Deployment {
            arn: arn.clone(),
            service_key: key.clone(),
            status: "PENDING".into(),
            status_reason: None,
            stage: None,
            created: now(),
            started: None,
            finished: None,
            source_revision: source,
            target_revision,
            stop_requested: false,
            hooks,
            continue_actions: BTreeMap::new(),
            ecs_svc_id: format!("ecs-svc/{:019}", 1_000_000_000_000 + n),
            rollback_reason: None,
            stopped_on_request: false,
            test_weight: 0.0,
            production_weight: 0.0,
        });
        drop(world);
        let engine = self.clone();
        let id = arn.clone();
        tokio::spawn(async move { engine.run(id).await });
        arn
    }

    async fn describe_services(&self, input: &Value) -> Result<Value, ApiError> {
        let mut output = self.upstream("DescribeServices", input).await?;
        let world = self.inner.world.lock().unwrap();
        if let Some(services) = output.get_mut("services").and_then(Value::as_array_mut) {
            for service in services {
                let key = (
                    name_of(service["clusterArn"].as_str().unwrap_or_default()),
                    service["serviceName"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                );
                if let Some(state) = world.services.get(&key) {
                    merge_service(service, state);
                }
            }
        }
        Ok(output)
    }

    fn list_service_deployments(&self, input: &Value) -> Result<Value, ApiError> {
        let key = (
            name_of(input["cluster"].as_str().unwrap_or("default")),
            name_of(input["service"].as_str().unwrap_or_default()),
        );
        let statuses: Vec<&str> = input["status"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let after = input.pointer("/createdAt/after").and_then(Value::as_f64);
        let before = input.pointer("/createdAt/before").and_then(Value::as_f64);
        let world = self.inner.world.lock().unwrap();
        let briefs: Vec<Value> = world
            .deployments
            .iter()
            .rev()
            .filter(|d| d.service_key == key)
            .filter(|d| statuses.is_empty() || statuses.contains(&d.status.as_str()))
            .filter(|d| after.is_none_or(|t| d.created >= t))
            .filter(|d| before.is_none_or(|t| d.created <= t))
            .map(|d| brief(&world, d))
            .collect();
        let start: usize = input["nextToken"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        let size = input["maxResults"].as_u64().unwrap_or(20) as usize;
        let end = (start + size).min(briefs.len());
        let mut out = json!({"serviceDeployments": briefs.get(start..end).unwrap_or_default()});
        if end < briefs.len() {
            out["nextToken"] = json!(end.to_string());
        }
        Ok(out)
    }

    fn describe_service_deployments(&self, input: &Value) -> Result<Value, ApiError> {
        let world = self.inner.world.lock().unwrap();
        let mut found = Vec::new();
        let mut failures = Vec::new();
        for arn in input["serviceDeploymentArns"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let arn = arn.as_str().unwrap_or_default();
            match world.deployments.iter().find(|d| d.arn == arn) {
                Some(d) => found.push(full(&world, d)),
                None => failures.push(json!({"arn": arn, "reason": "MISSING"})),
            }
        }
        Ok(json!({"serviceDeployments": found, "failures": failures}))
    }

    fn describe_service_revisions(&self, input: &Value) -> Result<Value, ApiError> {
        let world = self.inner.world.lock().unwrap();
        let mut found = Vec::new();
        let mut failures = Vec::new();
        for arn in input["serviceRevisionArns"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let arn = arn.as_str().unwrap_or_default();
            match world.revisions.get(arn) {
                Some(r) => found.push(json!({
                    "serviceRevisionArn": r.arn, "serviceArn": r.service_arn, "clusterArn": r.cluster_arn,
                    "taskDefinition": r.task_definition, "containerImages": r.container_images,
                    "createdAt": r.created,
                })),
                None => failures.push(json!({"arn": arn, "reason": "MISSING"})),
            }
        }
        Ok(json!({"serviceRevisions": found, "failures": failures}))
    }

    fn stop_service_deployment(&self, input: &Value) -> Result<Value, ApiError> {
        let arn = input["serviceDeploymentArn"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut world = self.inner.world.lock().unwrap();
        let d = world
            .deployments
            .iter_mut()
            .find(|d| d.arn == arn)
            .ok_or_else(|| {
                error(
                    "ServiceDeploymentNotFoundException",
                    format!("The service deployment {arn} does not exist"),
                )
            })?;
        if !is_in_flight(&d.status) {
            return Err(error(
                "ConflictException",
                format!(
                    "The service deployment {arn} is {}: it cannot be stopped",
                    d.status
                ),
            ));
        }
        d.stop_requested = true;
        d.stopped_on_request = true;
        if d.rollback_reason.is_none() {
            d.rollback_reason = Some("stopped with rollback on request".into());
        }
        if matches!(d.status.as_str(), "PENDING" | "IN_PROGRESS") {
            d.status = "ROLLBACK_REQUESTED".into();
        }
        drop(world);
        (self.inner.observer)(format!("ECS StopServiceDeployment {arn} (ROLLBACK)"));
        Ok(json!({"serviceDeploymentArn": arn}))
    }

    fn continue_service_deployment(&self, input: &Value) -> Result<Value, ApiError> {
        let arn = input["serviceDeploymentArn"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let hook_id = input["hookId"].as_str().unwrap_or_default().to_string();
        let action = input["action"].as_str().unwrap_or("CONTINUE").to_string();
        let mut world = self.inner.world.lock().unwrap();
        let d = world
            .deployments
            .iter_mut()
            .find(|d| d.arn == arn)
            .ok_or_else(|| {
                error(
                    "ServiceDeploymentNotFoundException",
                    format!("The service deployment {arn} does not exist"),
                )
            })?;
        let awaiting = d
            .hooks
            .iter()
            .any(|h| h.hook_id == hook_id && h.status == "AWAITING_ACTION");
        if !awaiting {
            return Err(error(
                "ConflictException",
                format!("hook {hook_id} of {arn} is not awaiting action"),
            ));
        }
        d.continue_actions.insert(hook_id.clone(), action.clone());
        drop(world);
        (self.inner.observer)(format!(
            "ECS ContinueServiceDeployment {arn} {hook_id}: {action}"
        ));
        Ok(json!({"serviceDeploymentArn": arn}))
    }

    fn with<R>(&self, arn: &str, f: impl FnOnce(&mut Deployment) -> R) -> Option<R> {
        let mut world = self.inner.world.lock().unwrap();
        world.deployments.iter_mut().find(|d| d.arn == arn).map(f)
    }

    fn emit(&self, arn: &str, event_name: &str, reason: &str) {
        let Some((service_arn, ecs_svc_id)) = ({
            let world = self.inner.world.lock().unwrap();
            world
                .deployments
                .iter()
                .find(|d| d.arn == arn)
                .and_then(|d| {
                    Some((
                        world.services.get(&d.service_key)?.arn.clone(),
                        d.ecs_svc_id.clone(),
                    ))
                })
        }) else {
            return;
        };
        let event = json!({
            "version": "0", "id": format!("{arn}-{event_name}"),
            "detail-type": "ECS Deployment State Change", "source": "aws.ecs",
            "account": ACCOUNT, "time": crate::rfc3339_now(), "region": REGION,
            "resources": [service_arn],
            "detail": {"eventType": if event_name.ends_with("FAILED") { "ERROR" } else { "INFO" },
                       "eventName": event_name, "deploymentId": ecs_svc_id,
                       "updatedAt": crate::rfc3339_now(), "reason": reason}
        });
        (self.inner.observer)(format!("EventBridge: ECS {event_name} {arn}"));
        (self.inner.events)(event);
    }

    /// The deployment engine: walks the stages, invokes hooks, shifts traffic.
    async fn run(self, arn: String) {
        let Some((key, target, source)) = self.with(&arn, |d| {
            d.status = "IN_PROGRESS".into();
            d.started = Some(now());
            (
                d.service_key.clone(),
                d.target_revision.clone(),
                d.source_revision.clone(),
            )
        }) else {
            return;
        };
        let Some(service) = self.inner.world.lock().unwrap().services.get(&key).cloned() else {
            return;
        };
        self.emit(&arn, "SERVICE_DEPLOYMENT_IN_PROGRESS", "deployment started");
        let source = source.unwrap_or_default();
        let weights = |green: f64| json!({ &target: green, &source: 100.0 - green });
        let outcome: Result<(), String> = async {
            for stage in STAGES {
                self.check_stop(&arn)?;
                self.with(&arn, |d| d.stage = Some(stage.to_string()));
                (self.inner.observer)(format!("ECS {arn} stage {stage}"));
                match stage {
                    "SCALE_UP" => {
                        let image = self.image_of(&target);
                        self.inner.traffic.install_green(&service.name, &image);
                    }
                    "TEST_TRAFFIC_SHIFT" => {
                        self.inner.traffic.test_to_green(&service.name);
                        self.with(&arn, |d| d.test_weight = 100.0);
                        self.hooks(&arn, &service, stage, weights(100.0), json!({}))
                            .await?;
                    }
                    "PRE_PRODUCTION_TRAFFIC_SHIFT" | "PRODUCTION_TRAFFIC_SHIFT" => {
                        // Both run per step below.
                    }
                    "BAKE_TIME" => self.wait(&arn, service.bake_minutes).await?,
                    "CLEAN_UP" => {}
                    hook_stage => {
                        self.hooks(&arn, &service, hook_stage, json!({}), json!({}))
                            .await?
                    }
                }
                if stage == "POST_TEST_TRAFFIC_SHIFT" {
                    for (percent, minutes) in service.steps.clone() {
                        self.check_stop(&arn)?;
                        self.with(&arn, |d| {
                            d.stage = Some("PRE_PRODUCTION_TRAFFIC_SHIFT".into())
                        });
                        self.hooks(
                            &arn,
                            &service,
                            "PRE_PRODUCTION_TRAFFIC_SHIFT",
                            weights(100.0),
                            weights(percent),
                        )
                        .await?;
                        self.with(&arn, |d| d.stage = Some("PRODUCTION_TRAFFIC_SHIFT".into()));
                        (self.inner.observer)(format!(
                            "ECS {arn} production traffic {percent}% to green"
                        ));
                        self.inner
                            .traffic
                            .production_to_green(&service.name, percent.round() as u8);
                        self.with(&arn, |d| d.production_weight = percent);
                        self.hooks(
                            &arn,
                            &service,
                            "PRODUCTION_TRAFFIC_SHIFT",
                            weights(100.0),
                            weights(percent),
                        )
                        .await?;
                        self.wait(&arn, minutes).await?;
                    }
                }
            }
            Ok(())
        }
        .await;
        match outcome {
            Ok(()) => {
                self.inner.traffic.promote(&service.name);
                {
                    let mut world = self.inner.world.lock().unwrap();
                    if let Some(state) = world.services.get_mut(&key) {
                        state.current_revision = Some(target.clone());
                    }
                }
                self.finish(&arn, "SUCCESSFUL", None);
                self.emit(&arn, "SERVICE_DEPLOYMENT_COMPLETED", "deployment completed");
            }
            Err(reason) => {
                self.with(&arn, |d| {
                    d.status = "ROLLBACK_IN_PROGRESS".into();
                    d.rollback_reason.get_or_insert(reason.clone());
                });
                (self.inner.observer)(format!("ECS {arn} rolling back: {reason}"));
                // During a rollback ECS runs these hooks again, weights swung back.
                let back = json!({ &target: 0.0, &source: 100.0 });
                self.with(&arn, |d| {
                    d.test_weight = 0.0;
                    d.production_weight = 0.0;
                });
                for stage in ["TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT"] {
                    let _ = self
                        .hooks(&arn, &service, stage, back.clone(), back.clone())
                        .await;
                }
                self.inner.traffic.rollback(&service.name);
                // Rolled back, the service runs the source revision's task definition
                // again ["Amazon ECS blue/green deployments": rollback "shifts traffic
                // back to the blue service revision"]; the emulator is told directly,
                // which starts no deployment.
                let source_task_definition = self
                    .inner
                    .world
                    .lock()
                    .unwrap()
                    .revisions
                    .get(&source)
                    .map(|r| r.task_definition.clone());
                if let Some(task_definition) = source_task_definition {
                    let _ = self
                        .upstream(
                            "UpdateService",
                            &json!({"cluster": key.0, "service": key.1, "taskDefinition": task_definition}),
                        )
                        .await;
                }
                self.finish(&arn, "ROLLBACK_SUCCESSFUL", Some(reason.clone()));
                self.emit(&arn, "SERVICE_DEPLOYMENT_FAILED", &reason);
            }
        }
    }

    fn finish(&self, arn: &str, status: &str, reason: Option<String>) {
        self.with(arn, |d| {
            d.status = status.into();
            d.finished = Some(now());
            d.status_reason = reason;
            d.stage = None;
        });
        (self.inner.observer)(format!("ECS {arn} {status}"));
    }

    fn check_stop(&self, arn: &str) -> Result<(), String> {
        match self.with(arn, |d| (d.stop_requested, d.rollback_reason.clone())) {
            Some((true, reason)) => Err(reason.unwrap_or_else(|| "stopped".into())),
            _ => Ok(()),
        }
    }

    async fn wait(&self, arn: &str, minutes: f64) -> Result<(), String> {
        let until = Instant::now() + self.inner.timing.minute.mul_f64(minutes.max(0.0));
        while Instant::now() < until {
            self.check_stop(arn)?;
            tokio::time::sleep(self.inner.timing.tick).await;
        }
        Ok(())
    }

    fn image_of(&self, revision: &str) -> String {
        let world = self.inner.world.lock().unwrap();
        world
            .revisions
            .get(revision)
            .and_then(|r| r.container_images.first())
            .and_then(|c| c["image"].as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Runs every hook configured for `stage`, one after the other.
    async fn hooks(
        &self,
        arn: &str,
        service: &ServiceState,
        stage: &str,
        test_weights: Value,
        production_weights: Value,
    ) -> Result<(), String> {
        let target = self
            .with(arn, |d| d.target_revision.clone())
            .unwrap_or_default();
        for hook in service
            .hooks
            .iter()
            .filter(|h| h.stages.iter().any(|s| s == stage))
        {
            self.set_hook(arn, &hook.hook_id, "IN_PROGRESS");
            let result = if hook.target_type == "PAUSE" {
                self.pause(arn, hook, stage).await
            } else {
                self.lambda(
                    arn,
                    service,
                    hook,
                    stage,
                    &target,
                    &test_weights,
                    &production_weights,
                )
                .await
            };
            self.set_hook(
                arn,
                &hook.hook_id,
                if result.is_ok() {
                    "SUCCEEDED"
                } else {
                    "FAILED"
                },
            );
            result?;
        }
        Ok(())
    }

    fn set_hook(&self, arn: &str, hook_id: &str, status: &str) {
        self.with(arn, |d| {
            if let Some(h) = d.hooks.iter_mut().find(|h| h.hook_id == hook_id) {
                h.status = status.to_string();
            }
        });
    }

    #[allow(clippy::too_many_arguments)]
    async fn lambda(
        &self,
        arn: &str,
        service: &ServiceState,
        hook: &HookConfig,
        stage: &str,
        target: &str,
        test_weights: &Value,
        production_weights: &Value,
    ) -> Result<(), String> {
        let mut details = hook.details.clone();
        let deadline = Instant::now() + self.inner.timing.hook_timeout;
        let mut execution = 0;
        loop {
            execution += 1;
            let payload = json!({
                "executionId": format!("{}-{stage}-{execution}", hook.hook_id),
                "lifecycleStage": stage,
                "resourceArn": arn,
                "executionDetails": {
                    "serviceArn": service.arn, "targetServiceRevisionArn": target,
                    "testTrafficWeights": test_weights, "productionTrafficWeights": production_weights,
                },
                "hookDetails": details,
            });
            (self.inner.observer)(format!("ECS invokes {} for {stage}", hook.target_arn));
            let answer = (self.inner.lambda)(hook.target_arn.clone(), payload)
                .await
                .map_err(|e| format!("the {stage} hook ({}) failed: {e}", hook.target_arn))?;
            match answer["hookStatus"].as_str() {
                Some("SUCCEEDED") => return Ok(()),
                Some("FAILED") => {
                    return Err(format!(
                        "the {stage} hook ({}) returned FAILED{}",
                        hook.target_arn,
                        answer["reason"]
                            .as_str()
                            .map(|r| format!(": {r}"))
                            .unwrap_or_default()
                    ))
                }
                Some("IN_PROGRESS") if Instant::now() < deadline => {
                    if let Some(returned) = answer.get("hookDetails").filter(|v| v.is_object()) {
                        details = returned.clone();
                    }
                    let delay = answer["callBackDelay"].as_f64().unwrap_or(30.0);
                    tokio::time::sleep(self.inner.timing.second.mul_f64(delay.max(0.0))).await;
                    self.check_stop(arn)?;
                }
                Some("IN_PROGRESS") => {
                    return Err(format!("the {stage} hook ({}) timed out", hook.target_arn))
                }
                _ => {
                    return Err(format!(
                        "the {stage} hook ({}) returned no valid hookStatus: {answer}",
                        hook.target_arn
                    ))
                }
            }
        }
    }

    async fn pause(&self, arn: &str, hook: &HookConfig, stage: &str) -> Result<(), String> {
        self.set_hook(arn, &hook.hook_id, "AWAITING_ACTION");
        (self.inner.observer)(format!(
            "ECS {arn} {stage}: PAUSE hook {} awaiting action",
            hook.hook_id
        ));
        let deadline = Instant::now() + self.inner.timing.hook_timeout;
        loop {
            self.check_stop(arn)?;
            let action = self
                .with(arn, |d| d.continue_actions.remove(&hook.hook_id))
                .flatten();
            match action.as_deref() {
                Some("CONTINUE") => return Ok(()),
                Some(_) => {
                    return Err(format!(
                        "{stage}: rolled back by ContinueServiceDeployment ROLLBACK"
                    ))
                }
                None if Instant::now() >= deadline => {
                    return Err(format!("{stage}: the PAUSE hook timed out"))
                }
                None => tokio::time::sleep(self.inner.timing.tick).await,
            }
        }
    }

    /// Status of a service deployment, for tests and the rehearsal.
    pub fn status(&self, arn: &str) -> Option<String> {
        self.with(arn, |d| d.status.clone())
    }

    /// How a deployment ended, in CodeDeploy's words (Succeeded, Failed, Stopped), or
    /// its ECS status while in flight: the rehearsal reads both paths alike.
    pub fn outcome(&self, arn: &str) -> Option<String> {
        self.with(arn, |d| match d.status.as_str() {
            "SUCCESSFUL" => "Succeeded".to_string(),
            "ROLLBACK_SUCCESSFUL" | "ROLLBACK_FAILED" | "STOPPED" if d.stopped_on_request => {
                "Stopped".to_string()
            }
            "ROLLBACK_SUCCESSFUL" | "ROLLBACK_FAILED" | "STOPPED" => "Failed".to_string(),
            other => other.to_string(),
        })
    }

    /// Every service deployment ARN, oldest first.
    pub fn deployment_arns(&self) -> Vec<String> {
        let world = self.inner.world.lock().unwrap();
        world.deployments.iter().map(|d| d.arn.clone()).collect()
    }

    /// The hook of a deployment awaiting action, if any: (deployment ARN, hook id).
    pub fn awaiting_action(&self) -> Option<(String, String)> {
        let world = self.inner.world.lock().unwrap();
        world.deployments.iter().find_map(|d| {
            d.hooks
                .iter()
                .find(|h| h.status == "AWAITING_ACTION")
                .map(|h| (d.arn.clone(), h.hook_id.clone()))
        })
    }
}

fn service_path(service_arn: &str) -> (String, String) {
    let mut parts = service_arn.rsplit('/');
    let service = parts.next().unwrap_or_default().to_string();
    let cluster = parts.next().unwrap_or("default").to_string();
    (cluster, service)
}

/// Takes a service's `deploymentConfiguration` (CreateService, or UpdateService
/// changing it): strategy, bake time, traffic steps and lifecycle hooks.
fn apply_configuration(state: &mut ServiceState, config: &Value) {
    let strategy = config["strategy"].as_str().unwrap_or("BLUE_GREEN");
    state.steps = traffic_steps(strategy, config);
    state.bake_minutes = config["bakeTimeInMinutes"].as_f64().unwrap_or(0.0);
    state.hooks = config["lifecycleHooks"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, h)| HookConfig {
            hook_id: format!("hook-{i}"),
            target_type: h["targetType"].as_str().unwrap_or("AWS_LAMBDA").to_string(),
            target_arn: h["hookTargetArn"].as_str().unwrap_or_default().to_string(),
            stages: h["lifecycleStages"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect(),
            details: h.get("hookDetails").cloned().unwrap_or(json!({})),
        })
        .collect();
    state.deployment_configuration = config.clone();
}

/// Production traffic steps per strategy: BLUE_GREEN all at once; CANARY canaryPercent
/// then 100; LINEAR stepPercent steps to 100. Each with the minutes to wait after it.
fn traffic_steps(strategy: &str, config: &Value) -> Vec<(f64, f64)> {
    match strategy {
        "CANARY" => {
            let percent = config
                .pointer("/canaryConfiguration/canaryPercent")
                .and_then(Value::as_f64)
                .unwrap_or(10.0);
            let minutes = config
                .pointer("/canaryConfiguration/canaryBakeTimeInMinutes")
                .and_then(Value::as_f64)
                .unwrap_or(0.0);
            vec![(percent, minutes), (100.0, 0.0)]
        }
        "LINEAR" => {
            let step = config
                .pointer("/linearConfiguration/stepPercent")
                .and_then(Value::as_f64)
                .unwrap_or(10.0)
                .max(1.0);
            let minutes = config
                .pointer("/linearConfiguration/stepBakeTimeInMinutes")
                .and_then(Value::as_f64)
                .unwrap_or(0.0);
            let mut steps = Vec::new();
            let mut at = step;
            while at < 100.0 {
                steps.push((at, minutes));
                at += step;
            }
            steps.push((100.0, 0.0));
            steps
        }
        _ => vec![(100.0, 0.0)],
    }
}

/// Adds what the emulator drops to a DescribeServices/CreateService/UpdateService `service`.
fn merge_service(service: &mut Value, state: &ServiceState) {
    service["deploymentController"] = json!({"type": "ECS"});
    service["deploymentConfiguration"] = state.deployment_configuration.clone();
    service["loadBalancers"] = state.load_balancers.clone();
    if let Some(arn) = &state.current_deployment {
        service["currentServiceDeployment"] = json!(arn);
    }
}

fn brief(world: &World, d: &Deployment) -> Value {
    let service = world.services.get(&d.service_key);
    let mut out = json!({
        "serviceDeploymentArn": d.arn,
        "serviceArn": service.map(|s| s.arn.clone()),
        "clusterArn": service.map(|s| s.cluster_arn.clone()),
        "createdAt": d.created,
        "targetServiceRevisionArn": d.target_revision,
        "status": d.status,
    });
    if let Some(t) = d.started {
        out["startedAt"] = json!(t);
    }
    if let Some(t) = d.finished {
        out["finishedAt"] = json!(t);
    }
    if let Some(r) = &d.status_reason {
        out["statusReason"] = json!(r);
    }
    out
}

fn full(world: &World, d: &Deployment) -> Value {
    let mut out = brief(world, d);
    if let Some(map) = out.as_object_mut() {
        map.remove("targetServiceRevisionArn");
    }
    // ServiceRevisionSummary [API reference]: requestedTestTrafficWeight and
    // requestedProductionTrafficWeight, the percent of each the revision receives.
    out["targetServiceRevision"] = json!({"arn": d.target_revision,
        "requestedTestTrafficWeight": d.test_weight,
        "requestedProductionTrafficWeight": d.production_weight});
    out["sourceServiceRevisions"] = match &d.source_revision {
        Some(arn) => json!([{"arn": arn,
            "requestedTestTrafficWeight": 100.0 - d.test_weight,
            "requestedProductionTrafficWeight": 100.0 - d.production_weight}]),
        None => json!([]),
    };
    if let Some(stage) = &d.stage {
        out["lifecycleStage"] = json!(stage);
    }
    out["lifecycleHookDetails"] = Value::Array(
        d.hooks
            .iter()
            .map(|h| json!({"hookId": h.hook_id, "targetType": h.target_type, "targetArn": h.target_arn, "status": h.status}))
            .collect(),
    );
    if let Some(reason) = &d.rollback_reason {
        if d.status.starts_with("ROLLBACK") {
            out["rollback"] = json!({"reason": reason, "serviceRevisionArn": d.source_revision});
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_steps_follow_the_strategy() {
        assert_eq!(traffic_steps("BLUE_GREEN", &json!({})), [(100.0, 0.0)]);
        assert_eq!(
            traffic_steps(
                "CANARY",
                &json!({"canaryConfiguration": {"canaryPercent": 20, "canaryBakeTimeInMinutes": 2}})
            ),
            [(20.0, 2.0), (100.0, 0.0)]
        );
        assert_eq!(
            traffic_steps(
                "LINEAR",
                &json!({"linearConfiguration": {"stepPercent": 25, "stepBakeTimeInMinutes": 1}})
            ),
            [(25.0, 1.0), (50.0, 1.0), (75.0, 1.0), (100.0, 0.0)]
        );
    }
}
