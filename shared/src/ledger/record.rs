//! What the ledger keeps, and how a notification becomes one write: pure, no AWS
//! types (the store turns a [`Write`] into one UpdateItem).
//!
//! One item per deployment attempt, keyed by service and deployment id. Each
//! notification that concerns an attempt sets the attributes it knows, under a
//! condition that makes a redelivered event a no-op: the start once
//! (`attribute_not_exists(trigger)`), each gate once per stage, the stop by an alarm
//! once, the outcome once. Items written before the start (a hook answered before
//! deploy-on-push recorded its launch) are merged, never overwritten.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use crate::notify::{Notification, NotificationEvent};

/// Days an attempt is kept before DynamoDB's TTL removes it (`expires_at`).
pub const RETENTION_DAYS: i64 = 400;

/// Attribute names: the schema, in one place (the README's table lists them).
pub(crate) mod attr {
    pub const SERVICE: &str = "service";
    pub const DEPLOYMENT: &str = "deployment_id";
    pub const STARTED_AT: &str = "started_at";
    pub const TRIGGER: &str = "trigger";
    pub const PATH: &str = "path";
    pub const TARGET: &str = "target";
    pub const DIGEST: &str = "image_digest";
    pub const TAG: &str = "image_tag";
    pub const IMAGE: &str = "image";
    pub const PUSHED_AT: &str = "pushed_at";
    pub const OUTCOME: &str = "outcome";
    pub const STATE: &str = "state";
    pub const REASON: &str = "reason";
    pub const ENDED_AT: &str = "ended_at";
    pub const STOPPED_BY: &str = "stopped_by";
    pub const STOPPED_AT: &str = "stopped_at";
    pub const EXPIRES_AT: &str = "expires_at";
    pub const REVOKED_BY: &str = "revoked_by";
    pub const REVOKED_AT: &str = "revoked_at";
    pub const PROMOTED_FROM: &str = "promoted_from";
    pub const FORCED_BY: &str = "forced_by";
    pub const FORCED_REASON: &str = "forced_reason";
    /// Prefix of one attribute per gate: `gate_AfterAllowTestTraffic`.
    pub const GATE_PREFIX: &str = "gate_";
}

/// One attribute's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    S(String),
    N(i64),
}

/// One UpdateItem: what to set, what to set only where absent, and the attribute
/// whose presence means the write already happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub service: String,
    pub deployment_id: String,
    pub set: Vec<(&'static str, Field)>,
    /// Set only if the item lacks them (facts an earlier write may have had first).
    pub set_if_absent: Vec<(&'static str, Field)>,
    /// A gate result: its own attribute name (`gate_<stage>`) and JSON.
    pub gate: Option<(String, String)>,
    /// The write happened already if this attribute exists.
    pub once: String,
    /// The finish: the store returns the whole item for the metrics log line.
    pub returns_item: bool,
}

/// What started an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// An image pushed to ECR.
    Push,
    /// A person, through `greenlight deploy`.
    Manual,
    /// A digest that proved itself in another service (`promote:`).
    Promotion,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Push => "push",
            Trigger::Manual => "manual",
            Trigger::Promotion => "promotion",
        }
    }
}

/// The outcome of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    /// Failed or stopped: production serves what it served before.
    RolledBack,
    /// Never started (the launch was refused).
    StartFailed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::RolledBack => "rolled_back",
            Outcome::StartFailed => "start_failed",
        }
    }

    pub fn parse(word: &str) -> Option<Outcome> {
        match word {
            "succeeded" => Some(Outcome::Succeeded),
            "rolled_back" => Some(Outcome::RolledBack),
            "start_failed" => Some(Outcome::StartFailed),
            _ => None,
        }
    }

    /// From the engine's final state (`SUCCESS`, `FAILURE`, `STOP`).
    fn of_state(state: &str) -> Outcome {
        if state == "SUCCESS" {
            Outcome::Succeeded
        } else {
            Outcome::RolledBack
        }
    }
}

/// One gate's result, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateRecord {
    /// `Succeeded` or `Failed`.
    pub status: String,
    pub reason: String,
    /// When it was decided (milliseconds since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<i64>,
    /// The smoke report and the analysis's figures, as notified.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub detail: Value,
}

/// One deployment attempt read back from the ledger.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Entry {
    pub service: String,
    pub deployment_id: String,
    /// Milliseconds since the epoch (as every time here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pushed_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// The engine's final state word.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<i64>,
    /// The image, digest-pinned (`<registry>/<repository>@<digest>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Why this digest may no longer be promoted (an alarm during its soak).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
    /// For a promotion: the source's deployment (`service/deployment`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promoted_from: Option<String>,
    /// For a forced promotion: who, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forced_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forced_reason: Option<String>,
    /// Gate results by stage, in the engine's words.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub gates: BTreeMap<String, GateRecord>,
}

impl Entry {
    /// Why it ended as it did, in one line: the alarm that stopped it, else the
    /// first failed gate, else the recorded reason.
    pub fn why(&self) -> Option<String> {
        if let Some(alarm) = &self.stopped_by {
            return Some(format!("stopped by {alarm}"));
        }
        let first_failed = self
            .gates
            .iter()
            .filter(|(_, g)| g.status == "Failed")
            .min_by_key(|(_, g)| g.at.unwrap_or(i64::MAX));
        if let Some((stage, gate)) = first_failed {
            return Some(format!("{stage} failed: {}", gate.reason));
        }
        self.reason.clone()
    }

    /// When the failure that ended it was seen: the alarm's stop, else the first
    /// failed gate's decision.
    pub fn failed_at(&self) -> Option<i64> {
        self.stopped_at.or_else(|| {
            self.gates
                .values()
                .filter(|g| g.status == "Failed")
                .filter_map(|g| g.at)
                .min()
        })
    }

    /// Milliseconds from start to the end, if both are known.
    pub fn duration_ms(&self) -> Option<i64> {
        Some(self.ended_at? - self.started_at?)
    }

    /// Milliseconds from the push to production, for a success.
    pub fn lead_time_ms(&self) -> Option<i64> {
        (self.outcome == Some(Outcome::Succeeded))
            .then(|| Some(self.ended_at? - self.pushed_at.or(self.started_at)?))
            .flatten()
    }
}

/// The write a notification makes, `None` for notifications that concern no
/// attempt (a queued or skipped image, an alarm with nothing in flight, a refused
/// configuration, an approval request). `now_ms`: the time of the write.
pub fn write_for(notification: &Notification, now_ms: i64) -> Option<Write> {
    let fact = |key: &str| notification.facts.get(key).and_then(Value::as_str);
    let text = |key: &str| fact(key).map(|v| Field::S(v.to_string()));
    let expires = (
        attr::EXPIRES_AT,
        Field::N(now_ms / 1000 + RETENTION_DAYS * 86_400),
    );
    let image_facts = || {
        let mut facts = vec![expires.clone()];
        facts.extend(text("image_digest").map(|v| (attr::DIGEST, v)));
        facts.extend(text("image_tag").map(|v| (attr::TAG, v)));
        facts
    };
    let mut write = Write {
        service: notification.service.clone(),
        deployment_id: notification.deployment_id.clone().unwrap_or_default(),
        set: Vec::new(),
        set_if_absent: Vec::new(),
        gate: None,
        once: String::new(),
        returns_item: false,
    };
    match notification.event {
        NotificationEvent::DeploymentStarted => {
            notification.deployment_id.as_ref()?;
            write.set.push((attr::STARTED_AT, Field::N(now_ms)));
            write.set.push((
                attr::TRIGGER,
                Field::S(fact("trigger").unwrap_or("push").to_string()),
            ));
            write.set.extend(text("path").map(|v| (attr::PATH, v)));
            write.set.extend(text("target").map(|v| (attr::TARGET, v)));
            write.set.extend(
                notification
                    .image
                    .clone()
                    .map(|i| (attr::IMAGE, Field::S(i))),
            );
            if let Some(pushed) = notification.facts.get("pushed_at").and_then(Value::as_i64) {
                write.set.push((attr::PUSHED_AT, Field::N(pushed)));
            }
            write
                .set
                .extend(text("promoted_from").map(|v| (attr::PROMOTED_FROM, v)));
            write
                .set
                .extend(text("forced_by").map(|v| (attr::FORCED_BY, v)));
            write
                .set
                .extend(text("forced_reason").map(|v| (attr::FORCED_REASON, v)));
            write.set.extend(image_facts());
            write.once = attr::TRIGGER.into();
        }
        NotificationEvent::DeploymentStartFailed => {
            // No deployment exists: the attempt is keyed by the image it concerned,
            // so a redelivered push records its refusal once.
            let digest = fact("image_digest")?;
            write.deployment_id = format!("not-started/{digest}");
            write.set.push((attr::STARTED_AT, Field::N(now_ms)));
            write.set.push((attr::ENDED_AT, Field::N(now_ms)));
            write.set.push((
                attr::TRIGGER,
                Field::S(fact("trigger").unwrap_or("push").to_string()),
            ));
            write.set.push((
                attr::OUTCOME,
                Field::S(Outcome::StartFailed.as_str().into()),
            ));
            write
                .set
                .push((attr::REASON, Field::S(notification.description.clone())));
            write.set.extend(image_facts());
            write.once = attr::OUTCOME.into();
        }
        NotificationEvent::HookPassed
        | NotificationEvent::HookFailed
        | NotificationEvent::AnalysisPassed
        | NotificationEvent::AnalysisFailed => {
            notification.deployment_id.as_ref()?;
            let stage = fact("lifecycle_event").unwrap_or("hook");
            let detail = json!({
                "smoke": notification.facts.get("smoke"),
                "analysis": notification.facts.get("analysis"),
            });
            let record = json!({
                "at": now_ms,
                "status": fact("status").unwrap_or_default(),
                "reason": notification.description,
                "detail": detail,
            });
            let name = format!("{}{}", attr::GATE_PREFIX, attribute_safe(stage));
            write.once = name.clone();
            write.gate = Some((name, record.to_string()));
            write
                .set_if_absent
                .push((attr::STARTED_AT, Field::N(now_ms)));
            write.set_if_absent.extend(image_facts());
        }
        NotificationEvent::RollbackRequested => {
            notification.deployment_id.as_ref()?;
            let alarm = fact("alarm").unwrap_or("an alarm");
            write
                .set
                .push((attr::STOPPED_BY, Field::S(format!("alarm {alarm}"))));
            write.set.push((attr::STOPPED_AT, Field::N(now_ms)));
            write
                .set_if_absent
                .push((attr::STARTED_AT, Field::N(now_ms)));
            write.set_if_absent.push(expires);
            write.once = attr::STOPPED_BY.into();
        }
        NotificationEvent::DigestRevoked => {
            notification.deployment_id.as_ref()?;
            let by = fact("revoked_by").unwrap_or("an alarm");
            write.set.push((attr::REVOKED_BY, Field::S(by.to_string())));
            write.set.push((attr::REVOKED_AT, Field::N(now_ms)));
            write
                .set_if_absent
                .push((attr::STARTED_AT, Field::N(now_ms)));
            write.set_if_absent.push(expires);
            write.once = attr::REVOKED_BY.into();
        }
        NotificationEvent::DeploymentFinished => {
            notification.deployment_id.as_ref()?;
            let state = fact("state").unwrap_or("UNKNOWN");
            write.set.push((
                attr::OUTCOME,
                Field::S(Outcome::of_state(state).as_str().into()),
            ));
            write.set.push((attr::STATE, Field::S(state.to_string())));
            write
                .set
                .push((attr::REASON, Field::S(notification.description.clone())));
            write.set.push((attr::ENDED_AT, Field::N(now_ms)));
            write
                .set_if_absent
                .push((attr::STARTED_AT, Field::N(now_ms)));
            write.set_if_absent.extend(image_facts());
            write.once = attr::OUTCOME.into();
            write.returns_item = true;
        }
        NotificationEvent::DeploymentQueued
        | NotificationEvent::DeploymentSkipped
        | NotificationEvent::AlarmWithoutDeployment
        | NotificationEvent::ApprovalPending
        | NotificationEvent::ConfigRefused
        | NotificationEvent::LedgerWriteFailed
        | NotificationEvent::PromotionScheduled
        | NotificationEvent::PromotionPending
        | NotificationEvent::PromotionRefused => return None,
    }
    Some(write)
}

/// A stage name as part of an attribute name: letters, digits and `_` only.
fn attribute_safe(stage: &str) -> String {
    stage
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Reads a gate attribute back: its stage and record. A record that is not the
/// JSON [`write_for`] writes is kept as its text, never dropped.
pub(crate) fn gate_from(name: &str, json_text: &str) -> Option<(String, GateRecord)> {
    let stage = name.strip_prefix(attr::GATE_PREFIX)?.to_string();
    let value: Value = serde_json::from_str(json_text).unwrap_or(Value::Null);
    let record = GateRecord {
        status: value["status"].as_str().unwrap_or("?").to_string(),
        at: value["at"].as_i64(),
        reason: value["reason"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| json_text.to_string()),
        detail: value["detail"].clone(),
    };
    Some((stage, record))
}
