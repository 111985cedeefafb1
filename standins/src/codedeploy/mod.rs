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

mod api;
mod engine;
mod state;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};

use crate::http::{response, Handler, Request};
use state::{base36, is_active, Deployment, Inner, World};

pub use crate::ports::{EventSink, HookInvoker, NoTraffic, Observer, Traffic};

pub use state::{ListOrder, Timing, PAGE_SIZE};

/// The stand-in; clone freely.
#[derive(Clone)]
pub struct CodeDeployStandIn {
    inner: Arc<Inner>,
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
