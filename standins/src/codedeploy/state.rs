//! What the CodeDeploy stand-in remembers: applications, deployment groups and
//! deployments, and how it renders them as CodeDeploy's API does.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::json11::{error, ApiError};
use crate::ports::{EventSink, HookInvoker, Observer, Traffic};

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

pub(super) const EVENTS: [&str; 8] = [
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
pub(super) struct Deployment {
    pub(super) id: String,
    pub(super) application: String,
    pub(super) group: String,
    pub(super) config: String,
    pub(super) description: String,
    pub(super) appspec: String,
    pub(super) status: String,
    pub(super) created: f64,
    pub(super) completed: Option<f64>,
    /// lifecycle event → status
    pub(super) lifecycle: BTreeMap<String, String>,
    /// lifecycle event → start (epoch seconds)
    pub(super) started: BTreeMap<String, f64>,
    /// execution id → (event, reported status)
    pub(super) executions: BTreeMap<String, (String, Option<String>)>,
    pub(super) stop_requested: Option<bool>,
    pub(super) error: Option<String>,
    /// Seeded history: no engine runs it, so a stop ends it at once.
    pub(super) seeded: bool,
    /// Green's share of production traffic, percent.
    pub(super) green_percent: u8,
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
pub(super) struct World {
    pub(super) applications: BTreeMap<String, Value>,
    /// (application, group) → the group as created
    pub(super) groups: BTreeMap<(String, String), Value>,
    pub(super) deployments: Vec<Deployment>,
    pub(super) next_id: u64,
    pub(super) list_order: ListOrder,
}

pub(super) struct Inner {
    pub(super) world: Mutex<World>,
    pub(super) traffic: Arc<dyn Traffic>,
    pub(super) hooks: HookInvoker,
    pub(super) events: EventSink,
    pub(super) observer: Observer,
    pub(super) ecs: Option<aws_sdk_ecs::Client>,
    pub(super) timing: Timing,
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

/// One page of `items` after `input.nextToken` (an offset here; opaque to callers),
/// under `key`, with the next token when more remain.
pub(super) fn page(key: &str, items: Vec<String>, input: &Value) -> Value {
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
pub(super) fn ordered<T>(mut items: Vec<T>, order: ListOrder) -> Vec<T> {
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

pub(super) fn is_active(status: &str) -> bool {
    matches!(
        status,
        "Created" | "Queued" | "InProgress" | "Baking" | "Ready"
    )
}

pub(super) fn target_status(status: &str) -> &str {
    match status {
        "Succeeded" => "Succeeded",
        "Failed" => "Failed",
        "Stopped" => "Skipped",
        "Created" => "Pending",
        _ => "InProgress",
    }
}

pub(super) fn target_id(world: &World, d: &Deployment) -> String {
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

pub(super) fn find<'a>(world: &'a World, id: &str) -> Result<&'a Deployment, ApiError> {
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

pub(super) fn find_mut<'a>(world: &'a mut World, id: &str) -> Result<&'a mut Deployment, ApiError> {
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

pub(super) fn info(d: &Deployment) -> Value {
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
pub(super) enum Shift {
    AllAtOnce,
    Canary { percent: u8, minutes: u32 },
    Linear { percent: u8, minutes: u32 },
}

/// `CodeDeployDefault.ECSCanary10Percent5Minutes` → Canary{10, 5}, and so on.
pub(super) fn parse_config(name: &str) -> Shift {
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

pub(super) fn base36(mut n: u64, len: usize) -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut out = Vec::with_capacity(len);
    for _ in 0..len {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    String::from_utf8(out).unwrap_or_default()
}
