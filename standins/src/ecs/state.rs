//! What the ECS stand-in remembers: services, revisions and service deployments,
//! and how it renders them as ECS's API does.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::http::BoxFuture;
use crate::ports::{EventSink, Observer, Traffic};

pub(super) const REGION: &str = "us-east-1";

pub(super) const ACCOUNT: &str = "123456789012";

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
pub(super) struct HookConfig {
    pub(super) hook_id: String,
    pub(super) target_type: String,
    pub(super) target_arn: String,
    pub(super) stages: Vec<String>,
    pub(super) details: Value,
}

#[derive(Debug, Clone)]
pub(super) struct ServiceState {
    pub(super) name: String,
    pub(super) arn: String,
    pub(super) cluster_arn: String,
    pub(super) bake_minutes: f64,
    /// Production traffic steps: percent to green, then minutes to wait.
    pub(super) steps: Vec<(f64, f64)>,
    pub(super) hooks: Vec<HookConfig>,
    pub(super) deployment_configuration: Value,
    pub(super) load_balancers: Value,
    pub(super) current_revision: Option<String>,
    pub(super) current_deployment: Option<String>,
}

#[derive(Debug, Clone)]
pub(super) struct Revision {
    pub(super) arn: String,
    pub(super) service_arn: String,
    pub(super) cluster_arn: String,
    pub(super) task_definition: String,
    pub(super) container_images: Vec<Value>,
    pub(super) created: f64,
}

#[derive(Debug, Clone)]
pub(super) struct HookState {
    pub(super) hook_id: String,
    pub(super) target_type: String,
    pub(super) target_arn: String,
    pub(super) status: String,
}

#[derive(Debug, Clone)]
pub(super) struct Deployment {
    pub(super) arn: String,
    pub(super) service_key: (String, String),
    pub(super) status: String,
    pub(super) status_reason: Option<String>,
    pub(super) stage: Option<String>,
    pub(super) created: f64,
    pub(super) started: Option<f64>,
    pub(super) finished: Option<f64>,
    pub(super) source_revision: Option<String>,
    pub(super) target_revision: String,
    pub(super) stop_requested: bool,
    pub(super) hooks: Vec<HookState>,
    /// hook id → CONTINUE or ROLLBACK from ContinueServiceDeployment.
    pub(super) continue_actions: BTreeMap<String, String>,
    pub(super) ecs_svc_id: String,
    pub(super) rollback_reason: Option<String>,
    /// Stopped by StopServiceDeployment (as opposed to a failed hook).
    pub(super) stopped_on_request: bool,
    /// Green's (the target revision's) share of test and production traffic, percent.
    pub(super) test_weight: f64,
    pub(super) production_weight: f64,
}

#[derive(Default)]
pub(super) struct World {
    pub(super) services: BTreeMap<(String, String), ServiceState>,
    pub(super) revisions: BTreeMap<String, Revision>,
    pub(super) deployments: Vec<Deployment>,
    pub(super) next: u64,
    /// Green's tasks, played ([`super::tasks`]).
    pub(super) tasks: Vec<super::tasks::PlayedTask>,
}

pub(super) struct Inner {
    pub(super) world: Mutex<World>,
    pub(super) upstream: String,
    pub(super) http: reqwest::Client,
    pub(super) traffic: Arc<dyn Traffic>,
    pub(super) lambda: LambdaInvoker,
    pub(super) events: EventSink,
    pub(super) observer: Observer,
    pub(super) timing: Timing,
}

pub(super) fn name_of(arn_or_name: &str) -> String {
    arn_or_name
        .rsplit('/')
        .next()
        .unwrap_or(arn_or_name)
        .to_string()
}

/// Stages with a hook, in order; SCALE_UP, BAKE_TIME and CLEAN_UP take none.
pub(super) const STAGES: [&str; 10] = [
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
pub(super) fn is_in_flight(status: &str) -> bool {
    matches!(
        status,
        "PENDING"
            | "IN_PROGRESS"
            | "STOP_REQUESTED"
            | "ROLLBACK_REQUESTED"
            | "ROLLBACK_IN_PROGRESS"
    )
}

pub(super) fn service_path(service_arn: &str) -> (String, String) {
    let mut parts = service_arn.rsplit('/');
    let service = parts.next().unwrap_or_default().to_string();
    let cluster = parts.next().unwrap_or("default").to_string();
    (cluster, service)
}

/// Takes a service's `deploymentConfiguration` (CreateService, or UpdateService
/// changing it): strategy, bake time, traffic steps and lifecycle hooks.
pub(super) fn apply_configuration(state: &mut ServiceState, config: &Value) {
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
pub(super) fn traffic_steps(strategy: &str, config: &Value) -> Vec<(f64, f64)> {
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
pub(super) fn merge_service(service: &mut Value, state: &ServiceState) {
    service["deploymentController"] = json!({"type": "ECS"});
    service["deploymentConfiguration"] = state.deployment_configuration.clone();
    service["loadBalancers"] = state.load_balancers.clone();
    if let Some(arn) = &state.current_deployment {
        service["currentServiceDeployment"] = json!(arn);
    }
}

pub(super) fn brief(world: &World, d: &Deployment) -> Value {
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

pub(super) fn full(world: &World, d: &Deployment) -> Value {
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
