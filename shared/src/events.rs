//! Typed inputs of the Greenlight functions.
//!
//! Every function receives raw JSON and turns it into one of these types here. A
//! malformed event is an [`EventError`] naming the field (`detail.image-digest:
//! ...`); a foreign event (another source or detail-type) is rejected naming what
//! it was and what the function accepts. Nothing here panics on input.
//!
//! Only the fields a function uses are read: an event that lacks a field nobody
//! needs (a `configuration`, a `Signature`, a `timestamp` in an unusual format) is
//! accepted, and a field that is needed and missing is a typed error naming it.
//! The EventBridge envelope and the CodeDeploy hook payload and state-change detail
//! are `aws_lambda_events` types (lenient already); the alarm detail, the SNS
//! record and the ECR "Image Action" detail are defined here, because the
//! `aws_lambda_events` types require fields AWS does not always send (composite
//! alarms, alarms without a description, hand-relayed SNS messages).
//!
//! `events/upstream/` holds AWS's own samples (its documentation, and the
//! `aws_lambda_events` fixtures), each parsed in the tests below.

use aws_lambda_events::codedeploy::{CodeDeployEventDetail, CodeDeployLifecycleEvent};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const ECR_SOURCE: &str = "aws.ecr";
pub const ECR_IMAGE_ACTION: &str = "ECR Image Action";
pub const CLOUDWATCH_SOURCE: &str = "aws.cloudwatch";
pub const ALARM_STATE_CHANGE: &str = "CloudWatch Alarm State Change";
pub const CODEDEPLOY_SOURCE: &str = "aws.codedeploy";
pub const DEPLOYMENT_STATE_CHANGE: &str = "CodeDeploy Deployment State-change Notification";
pub const ECS_SOURCE: &str = "aws.ecs";
pub const ECS_DEPLOYMENT_STATE_CHANGE: &str = "ECS Deployment State Change";

/// Why an event was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("malformed {kind}: {path}: {message}")]
    Malformed {
        kind: &'static str,
        /// Key path of the offending field (`detail.repository-name`), `.` for the whole event.
        path: String,
        message: String,
    },
    #[error("foreign event {found}; this function accepts {accepts}")]
    Foreign { found: String, accepts: String },
}

impl EventError {
    fn malformed(kind: &'static str, path: impl Into<String>, message: impl Into<String>) -> Self {
        EventError::Malformed {
            kind,
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Parses `value` into `T`, naming the path of the first field that does not fit.
fn typed<T: DeserializeOwned>(kind: &'static str, value: &Value) -> Result<T, EventError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        // serde's messages carry "at line 1 column N", meaningless for a Value.
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_string();
        EventError::malformed(kind, path, message)
    })
}

/// `source` / `detail-type` of an EventBridge-shaped value, if it has them.
fn eventbridge_kind(value: &Value) -> Option<(&str, &str)> {
    Some((
        value.get("source")?.as_str()?,
        value.get("detail-type")?.as_str()?,
    ))
}

/// An image pushed to (or deleted from) ECR: EventBridge "ECR Image Action".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EcrImageAction {
    pub event_id: Option<String>,
    pub account: String,
    pub region: String,
    pub action: String,
    pub result: String,
    pub repository: String,
    pub digest: Option<String>,
    pub tag: Option<String>,
    /// When the push happened (the event's `time`, whole seconds), milliseconds since the epoch.
    pub time: Option<i64>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
struct EcrImageActionDetail {
    action_type: String,
    result: String,
    repository_name: String,
    #[serde(default)]
    image_digest: Option<String>,
    #[serde(default)]
    image_tag: Option<String>,
}

/// The registry host of an account's ECR in a region, with the region's partition DNS
/// suffix (`amazonaws.com.cn` in China, not `amazonaws.com`: AWS's partitions table).
pub fn ecr_registry(account: &str, region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else if region.starts_with("us-isob-") {
        "sc2s.sgov.gov"
    } else if region.starts_with("us-isof-") {
        "csp.hci.ic.gov"
    } else if region.starts_with("us-iso-") {
        "c2s.ic.gov"
    } else if region.starts_with("eu-isoe-") {
        "cloud.adc-e.uk"
    } else {
        "amazonaws.com"
    };
    format!("{account}.dkr.ecr.{region}.{suffix}")
}

impl EcrImageAction {
    const KIND: &'static str = "ECR Image Action event";

    pub fn is_successful_push(&self) -> bool {
        self.action == "PUSH" && self.result == "SUCCESS"
    }

    /// `<account>.dkr.ecr.<region>.<dns suffix>/<repository>@<digest>`: the pushed image
    /// pinned by digest, so a later push of the same tag cannot change what is deployed.
    pub fn pinned_image(&self) -> Option<String> {
        let digest = self.digest.as_ref()?;
        Some(format!(
            "{}/{}@{}",
            ecr_registry(&self.account, &self.region),
            self.repository,
            digest
        ))
    }

    pub fn parse(value: &Value) -> Result<Self, EventError> {
        match eventbridge_kind(value) {
            Some((ECR_SOURCE, ECR_IMAGE_ACTION)) => {}
            _ => return Err(foreign(value, "ECR Image Action events (source aws.ecr)")),
        }
        let event: EventBridgeEvent<EcrImageActionDetail> = typed(Self::KIND, value)?;
        let time = event.time;
        let account = event
            .account
            .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| {
                EventError::malformed(
                    Self::KIND,
                    "account",
                    "missing or not a 12-digit AWS account id",
                )
            })?;
        let region = event
            .region
            .filter(|r| {
                !r.is_empty()
                    && r.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            })
            .ok_or_else(|| {
                EventError::malformed(Self::KIND, "region", "missing or not an AWS region name")
            })?;
        let detail = event.detail;
        if !valid_repository_name(&detail.repository_name) {
            return Err(EventError::malformed(
                Self::KIND,
                "detail.repository-name",
                format!("{:?} is not an ECR repository name", detail.repository_name),
            ));
        }
        if let Some(digest) = &detail.image_digest {
            if !valid_digest(digest) {
                return Err(EventError::malformed(
                    Self::KIND,
                    "detail.image-digest",
                    format!("{digest:?} is not a sha256:<64 hex> digest"),
                ));
            }
        }
        if let Some(tag) = &detail.image_tag {
            if !valid_tag(tag) {
                return Err(EventError::malformed(
                    Self::KIND,
                    "detail.image-tag",
                    format!("{tag:?} is not an image tag"),
                ));
            }
        }
        let action = EcrImageAction {
            event_id: event.id,
            account,
            region,
            action: detail.action_type,
            result: detail.result,
            repository: detail.repository_name,
            digest: detail.image_digest,
            tag: detail.image_tag,
            time: time.map(|t| t.timestamp_millis()),
        };
        if action.is_successful_push() && action.digest.is_none() {
            return Err(EventError::malformed(
                Self::KIND,
                "detail.image-digest",
                "missing on a successful push",
            ));
        }
        Ok(action)
    }
}

fn valid_repository_name(name: &str) -> bool {
    // ECR: (?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*, 2-256 chars.
    (2..=256).contains(&name.len())
        && name.split('/').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && part.as_bytes()[0].is_ascii_alphanumeric()
                && part.as_bytes()[part.len() - 1].is_ascii_alphanumeric()
        })
}

fn valid_digest(digest: &str) -> bool {
    digest
        .strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn valid_tag(tag: &str) -> bool {
    // Docker tag grammar: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    !tag.is_empty()
        && tag.len() <= 128
        && (tag.as_bytes()[0].is_ascii_alphanumeric() || tag.as_bytes()[0] == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// CloudWatch alarm states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
}

impl AlarmState {
    fn parse(text: &str) -> Option<AlarmState> {
        match text {
            "OK" => Some(AlarmState::Ok),
            "ALARM" => Some(AlarmState::Alarm),
            "INSUFFICIENT_DATA" => Some(AlarmState::InsufficientData),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

/// How an alarm notification reached Greenlight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AlarmVia {
    EventBridge,
    Sns,
    /// The alarm's own Lambda action (`{source: aws.cloudwatch, alarmData: …}`).
    LambdaAction,
}

/// An alarm state change, whichever way it arrived.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmTransition {
    pub alarm_name: String,
    pub alarm_arn: Option<String>,
    pub state: AlarmState,
    pub previous_state: Option<AlarmState>,
    pub reason: String,
    pub time: Option<String>,
    /// `Namespace/MetricName` of a single-metric alarm.
    pub metric: Option<String>,
    pub threshold: Option<f64>,
    /// The rule of a composite alarm.
    pub composite_rule: Option<String>,
    pub via: AlarmVia,
}

impl AlarmTransition {
    /// Only a transition into ALARM acts; repeats (ALARM → ALARM) and other states are ignored.
    pub fn entered_alarm(&self) -> bool {
        self.state == AlarmState::Alarm && self.previous_state != Some(AlarmState::Alarm)
    }

    const KIND: &'static str = "CloudWatch Alarm State Change event";
    const SNS_KIND: &'static str = "SNS alarm notification";
    const ACTION_KIND: &'static str = "CloudWatch alarm Lambda action";

    /// Accepts an EventBridge alarm event, or an SNS event whose records carry alarm
    /// notifications (CloudWatch's own SNS message or an EventBridge event relayed via SNS).
    pub fn parse_all(value: &Value) -> Result<Vec<AlarmTransition>, EventError> {
        if value.get("Records").is_some() {
            return Self::parse_sns(value);
        }
        if value.get("source").and_then(Value::as_str) == Some(CLOUDWATCH_SOURCE)
            && value.get("alarmData").is_some()
        {
            return Ok(vec![Self::parse_lambda_action(value)?]);
        }
        match eventbridge_kind(value) {
            Some((CLOUDWATCH_SOURCE, ALARM_STATE_CHANGE)) => {
                Ok(vec![Self::parse_eventbridge(value)?])
            }
            _ => Err(foreign(
                value,
                "CloudWatch Alarm State Change events (EventBridge or SNS)",
            )),
        }
    }

    fn parse_eventbridge(value: &Value) -> Result<AlarmTransition, EventError> {
        let event: EventBridgeEvent<AlarmDetail> = typed(Self::KIND, value)?;
        let alarm_arn = event.resources.and_then(|r| r.into_iter().next());
        let time = event.time.map(|t| t.to_rfc3339());
        Self::from_detail(
            Self::KIND,
            "detail",
            event.detail,
            alarm_arn,
            time,
            AlarmVia::EventBridge,
        )
    }

    /// CloudWatch's Lambda alarm action: the alarm invokes the function directly with
    /// `{source, alarmArn, accountId, time, region, alarmData}`.
    fn parse_lambda_action(value: &Value) -> Result<AlarmTransition, EventError> {
        let action: LambdaAlarmAction = typed(Self::ACTION_KIND, value)?;
        Self::from_detail(
            Self::ACTION_KIND,
            "alarmData",
            action.alarm_data,
            action.alarm_arn,
            action.time,
            AlarmVia::LambdaAction,
        )
    }

    fn from_detail(
        kind: &'static str,
        at: &str,
        detail: AlarmDetail,
        alarm_arn: Option<String>,
        time: Option<String>,
        via: AlarmVia,
    ) -> Result<AlarmTransition, EventError> {
        let state = detail
            .state
            .ok_or_else(|| EventError::malformed(kind, format!("{at}.state"), "missing"))?;
        let state_value = AlarmState::parse(&state.value).ok_or_else(|| {
            EventError::malformed(
                kind,
                format!("{at}.state.value"),
                format!("{:?} is not a CloudWatch alarm state", state.value),
            )
        })?;
        let previous = detail
            .previous_state
            .as_ref()
            .and_then(|p| AlarmState::parse(&p.value));
        // `reasonData` is JSON inside a string; only a metric alarm's threshold is read.
        let threshold = state
            .reason_data
            .as_ref()
            .and_then(|data| match data {
                Value::String(text) => serde_json::from_str::<Value>(text).ok(),
                other => Some(other.clone()),
            })
            .and_then(|data| data.get("threshold").and_then(Value::as_f64));
        let configuration = detail.configuration.unwrap_or(Value::Null);
        let metric = configuration
            .pointer("/metrics/0/metricStat/metric")
            .and_then(|m| {
                Some(format!(
                    "{}/{}",
                    m.get("namespace")?.as_str()?,
                    m.get("name")?.as_str()?
                ))
            });
        let composite_rule = configuration
            .get("alarmRule")
            .and_then(Value::as_str)
            .map(str::to_string);
        Ok(AlarmTransition {
            alarm_name: non_empty(kind, &format!("{at}.alarmName"), detail.alarm_name)?,
            alarm_arn,
            state: state_value,
            previous_state: previous,
            reason: state.reason.unwrap_or_default(),
            time,
            metric,
            threshold,
            composite_rule,
            via,
        })
    }

    fn parse_sns(value: &Value) -> Result<Vec<AlarmTransition>, EventError> {
        let event: SnsRecords = typed(Self::SNS_KIND, value)?;
        if event.records.is_empty() {
            return Err(EventError::malformed(
                Self::SNS_KIND,
                "Records",
                "no records",
            ));
        }
        let mut alarms = Vec::with_capacity(event.records.len());
        for (i, record) in event.records.iter().enumerate() {
            let path = format!("Records[{i}].Sns.Message");
            if record.event_source != "aws:sns" {
                return Err(EventError::Foreign {
                    found: format!("record from {:?}", record.event_source),
                    accepts: "SNS records (EventSource aws:sns)".into(),
                });
            }
            let message: Value = serde_json::from_str(&record.sns.message).map_err(|e| {
                EventError::malformed(
                    Self::SNS_KIND,
                    &path,
                    format!("not JSON ({e}); expected a CloudWatch alarm notification"),
                )
            })?;
            // An EventBridge alarm event relayed through an SNS topic.
            if eventbridge_kind(&message).is_some() {
                let mut alarm = match eventbridge_kind(&message) {
                    Some((CLOUDWATCH_SOURCE, ALARM_STATE_CHANGE)) => {
                        Self::parse_eventbridge(&message)?
                    }
                    _ => return Err(foreign(&message, "CloudWatch alarm notifications")),
                };
                alarm.via = AlarmVia::Sns;
                alarms.push(alarm);
                continue;
            }
            let body: SnsAlarmMessage = typed(Self::SNS_KIND, &message).map_err(|e| match e {
                EventError::Malformed {
                    kind,
                    path: inner,
                    message,
                } => EventError::Malformed {
                    kind,
                    path: if inner == "." {
                        path.clone()
                    } else {
                        format!("{path}.{inner}")
                    },
                    message,
                },
                other => other,
            })?;
            let state = AlarmState::parse(&body.new_state_value).ok_or_else(|| {
                EventError::malformed(
                    Self::SNS_KIND,
                    format!("{path}.NewStateValue"),
                    format!("{:?} is not an alarm state", body.new_state_value),
                )
            })?;
            let trigger = body.trigger.unwrap_or(Value::Null);
            let metric = match (
                trigger.get("Namespace").and_then(Value::as_str),
                trigger.get("MetricName").and_then(Value::as_str),
            ) {
                (Some(ns), Some(name)) => Some(format!("{ns}/{name}")),
                _ => None,
            };
            alarms.push(AlarmTransition {
                alarm_name: non_empty(
                    Self::SNS_KIND,
                    &format!("{path}.AlarmName"),
                    body.alarm_name,
                )?,
                alarm_arn: body.alarm_arn,
                state,
                previous_state: body.old_state_value.as_deref().and_then(AlarmState::parse),
                reason: body.new_state_reason.unwrap_or_default(),
                time: body.state_change_time,
                metric,
                threshold: trigger.get("Threshold").and_then(Value::as_f64),
                composite_rule: body.alarm_rule,
                via: AlarmVia::Sns,
            });
        }
        Ok(alarms)
    }
}

/// The alarm part of an EventBridge alarm event (`detail`) or of an alarm's Lambda
/// action (`alarmData`): only what Greenlight reads.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct AlarmDetail {
    alarm_name: String,
    #[serde(default)]
    state: Option<AlarmStateDetail>,
    #[serde(default)]
    previous_state: Option<AlarmStateDetail>,
    #[serde(default)]
    configuration: Option<Value>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct AlarmStateDetail {
    value: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    reason_data: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LambdaAlarmAction {
    #[serde(default)]
    alarm_arn: Option<String>,
    #[serde(default)]
    time: Option<String>,
    alarm_data: AlarmDetail,
}

/// An SNS event as Lambda receives it: only the source and the message are read.
#[derive(Debug, Deserialize)]
struct SnsRecords {
    #[serde(rename = "Records")]
    records: Vec<SnsRecord>,
}

#[derive(Debug, Deserialize)]
struct SnsRecord {
    #[serde(rename = "EventSource", default)]
    event_source: String,
    #[serde(rename = "Sns")]
    sns: SnsBody,
}

#[derive(Debug, Deserialize)]
struct SnsBody {
    #[serde(rename = "Message")]
    message: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
struct SnsAlarmMessage {
    alarm_name: String,
    new_state_value: String,
    #[serde(default)]
    old_state_value: Option<String>,
    #[serde(default)]
    new_state_reason: Option<String>,
    #[serde(default)]
    state_change_time: Option<String>,
    #[serde(default)]
    alarm_arn: Option<String>,
    #[serde(default)]
    trigger: Option<Value>,
    #[serde(default)]
    alarm_rule: Option<String>,
}

/// A CodeDeploy deployment changed state (EventBridge "CodeDeploy Deployment State-change Notification").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentStateChange {
    pub application: String,
    pub deployment_group: String,
    pub deployment_id: String,
    /// START, SUCCESS, FAILURE, STOP, READY, ...
    pub state: String,
    pub region: Option<String>,
}

impl DeploymentStateChange {
    const KIND: &'static str = "CodeDeploy Deployment State-change Notification";

    /// The deployment ended: its group can take the next one.
    pub fn is_terminal(&self) -> bool {
        matches!(self.state.as_str(), "SUCCESS" | "FAILURE" | "STOP")
    }

    pub fn parse(value: &Value) -> Result<Self, EventError> {
        match eventbridge_kind(value) {
            Some((CODEDEPLOY_SOURCE, DEPLOYMENT_STATE_CHANGE)) => {}
            _ => {
                return Err(foreign(
                    value,
                    "CodeDeploy Deployment State-change Notification events",
                ))
            }
        }
        let event: EventBridgeEvent<CodeDeployEventDetail> = typed(Self::KIND, value)?;
        let detail = event.detail;
        Ok(DeploymentStateChange {
            application: required(Self::KIND, "detail.application", detail.application)?,
            deployment_group: required(
                Self::KIND,
                "detail.deploymentGroup",
                detail.deployment_group,
            )?,
            deployment_id: required(Self::KIND, "detail.deploymentId", detail.deployment_id)?,
            state: non_empty(Self::KIND, "detail.state", detail.state)?,
            region: detail.region.or(event.region),
        })
    }
}

/// An ECS service deployment changed state (EventBridge "ECS Deployment State
/// Change", [developer guide, "Amazon ECS service deployment state change events"]):
/// `resources[0]` is the service ARN, `detail.eventName` one of
/// SERVICE_DEPLOYMENT_IN_PROGRESS, SERVICE_DEPLOYMENT_COMPLETED, SERVICE_DEPLOYMENT_FAILED.
/// Its `deploymentId` is the service's `ecs-svc/…` deployment id, not the service
/// deployment ARN the deployment APIs take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EcsDeploymentStateChange {
    pub service_arn: String,
    pub event_name: String,
    pub deployment_id: Option<String>,
    pub reason: Option<String>,
    pub region: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct EcsDeploymentDetail {
    event_name: String,
    #[serde(default)]
    deployment_id: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

impl EcsDeploymentStateChange {
    const KIND: &'static str = "ECS Deployment State Change";

    /// COMPLETED or FAILED: the service can take the next deployment.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self.event_name.as_str(),
            "SERVICE_DEPLOYMENT_COMPLETED" | "SERVICE_DEPLOYMENT_FAILED"
        )
    }

    /// The CodeDeploy-style state word Greenlight reports: SUCCESS, FAILURE or START.
    pub fn state(&self) -> &'static str {
        match self.event_name.as_str() {
            "SERVICE_DEPLOYMENT_COMPLETED" => "SUCCESS",
            "SERVICE_DEPLOYMENT_FAILED" => "FAILURE",
            _ => "START",
        }
    }

    pub fn parse(value: &Value) -> Result<Self, EventError> {
        match eventbridge_kind(value) {
            Some((ECS_SOURCE, ECS_DEPLOYMENT_STATE_CHANGE)) => {}
            _ => return Err(foreign(value, "ECS Deployment State Change events")),
        }
        let event: EventBridgeEvent<EcsDeploymentDetail> = typed(Self::KIND, value)?;
        let service_arn = event
            .resources
            .unwrap_or_default()
            .into_iter()
            .find(|r| r.contains(":service/"))
            .ok_or_else(|| {
                EventError::malformed(Self::KIND, "resources", "names no ECS service ARN")
            })?;
        Ok(EcsDeploymentStateChange {
            service_arn,
            event_name: non_empty(Self::KIND, "detail.eventName", event.detail.event_name)?,
            deployment_id: event.detail.deployment_id,
            reason: event.detail.reason,
            region: event.region,
        })
    }
}

/// CodeDeploy's lifecycle hook payload. It does not name the lifecycle event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookInvocation {
    pub deployment_id: String,
    pub execution_id: String,
}

impl HookInvocation {
    const KIND: &'static str = "CodeDeploy lifecycle hook payload";

    pub fn parse(value: &Value) -> Result<Self, EventError> {
        if value.get("DeploymentId").is_none() && eventbridge_kind(value).is_some() {
            return Err(foreign(
                value,
                "CodeDeploy lifecycle hook payloads {DeploymentId, LifecycleEventHookExecutionId}",
            ));
        }
        let event: CodeDeployLifecycleEvent = typed(Self::KIND, value)?;
        Ok(HookInvocation {
            deployment_id: non_empty(Self::KIND, "DeploymentId", event.deployment_id)?,
            execution_id: non_empty(
                Self::KIND,
                "LifecycleEventHookExecutionId",
                event.lifecycle_event_hook_execution_id,
            )?,
        })
    }
}

/// An ECS-native blue/green Lambda hook invocation [developer guide, "Lambda hooks
/// for Amazon ECS service deployments"]: `{executionId, lifecycleStage, resourceArn,
/// executionDetails {serviceArn, targetServiceRevisionArn, testTrafficWeights,
/// productionTrafficWeights}, hookDetails}`. The answer is the invocation's return
/// value: `{hookStatus, callBackDelay?, hookDetails?}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EcsHookInvocation {
    pub execution_id: String,
    /// The stage as ECS named it (the SDK's enum lacks some, so it stays text here).
    pub stage_name: String,
    /// The service deployment ARN.
    pub resource_arn: String,
    pub service_arn: String,
    pub target_revision_arn: Option<String>,
    /// Service revision ARN → percent; filled only at the traffic-shift stages.
    pub test_weights: std::collections::BTreeMap<String, f64>,
    pub production_weights: std::collections::BTreeMap<String, f64>,
    /// What the hook configuration set, merged with what an IN_PROGRESS answer returned.
    pub hook_details: Value,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct EcsHookPayload {
    execution_id: String,
    lifecycle_stage: String,
    resource_arn: String,
    execution_details: EcsExecutionDetails,
    #[serde(default)]
    hook_details: Option<Value>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct EcsExecutionDetails {
    service_arn: String,
    #[serde(default)]
    target_service_revision_arn: Option<String>,
    #[serde(default)]
    test_traffic_weights: Option<std::collections::BTreeMap<String, f64>>,
    #[serde(default)]
    production_traffic_weights: Option<std::collections::BTreeMap<String, f64>>,
}

impl EcsHookInvocation {
    const KIND: &'static str = "ECS lifecycle hook payload";

    pub fn parse(value: &Value) -> Result<Self, EventError> {
        let payload: EcsHookPayload = typed(Self::KIND, value)?;
        let details = payload.execution_details;
        Ok(EcsHookInvocation {
            execution_id: non_empty(Self::KIND, "executionId", payload.execution_id)?,
            stage_name: non_empty(Self::KIND, "lifecycleStage", payload.lifecycle_stage)?,
            resource_arn: non_empty(Self::KIND, "resourceArn", payload.resource_arn)?,
            service_arn: non_empty(
                Self::KIND,
                "executionDetails.serviceArn",
                details.service_arn,
            )?,
            target_revision_arn: details.target_service_revision_arn,
            test_weights: details.test_traffic_weights.unwrap_or_default(),
            production_weights: details.production_traffic_weights.unwrap_or_default(),
            hook_details: payload
                .hook_details
                .filter(Value::is_object)
                .unwrap_or_else(|| Value::Object(Default::default())),
        })
    }

    /// The stage, when it is one Greenlight knows.
    pub fn stage(&self) -> Option<crate::LifecycleEvent> {
        self.stage_name.parse().ok()
    }

    /// ECS runs the TEST_TRAFFIC_SHIFT and PRODUCTION_TRAFFIC_SHIFT hooks again
    /// during a rollback, with the weights swung back: the target revision (still
    /// the new one) at 0 while another revision holds the traffic.
    pub fn is_rollback(&self) -> bool {
        let Some(target) = &self.target_revision_arn else {
            return false;
        };
        let swung_back = |weights: &std::collections::BTreeMap<String, f64>| {
            !weights.is_empty()
                && weights.get(target).copied().unwrap_or(0.0) == 0.0
                && weights.iter().any(|(arn, w)| arn != target && *w > 0.0)
        };
        matches!(
            self.stage_name.as_str(),
            "TEST_TRAFFIC_SHIFT" | "PRODUCTION_TRAFFIC_SHIFT"
        ) && (swung_back(&self.test_weights) || swung_back(&self.production_weights))
    }
}

/// A lifecycle hook invocation from either engine, told apart by its shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum HookPayload {
    CodeDeploy(HookInvocation),
    EcsNative(EcsHookInvocation),
}

impl HookPayload {
    pub fn parse(value: &Value) -> Result<Self, EventError> {
        if value.get("executionDetails").is_some() || value.get("lifecycleStage").is_some() {
            EcsHookInvocation::parse(value).map(HookPayload::EcsNative)
        } else {
            HookInvocation::parse(value).map(HookPayload::CodeDeploy)
        }
    }
}

fn required(kind: &'static str, path: &str, value: Option<String>) -> Result<String, EventError> {
    non_empty(kind, path, value.unwrap_or_default())
}

fn non_empty(kind: &'static str, path: &str, value: String) -> Result<String, EventError> {
    if value.trim().is_empty() {
        Err(EventError::malformed(kind, path, "missing or empty"))
    } else {
        Ok(value)
    }
}

fn foreign(value: &Value, accepts: &str) -> EventError {
    let found = match eventbridge_kind(value) {
        Some((source, detail_type)) => format!("(source {source:?}, detail-type {detail_type:?})"),
        None => match value {
            Value::Object(map) => {
                let keys: Vec<&str> = map.keys().map(String::as_str).take(5).collect();
                format!("with keys [{}]", keys.join(", "))
            }
            other => format!("that is not a JSON object ({other})")
                .chars()
                .take(120)
                .collect(),
        },
    };
    EventError::Foreign {
        found,
        accepts: accepts.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Value {
        let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn without(mut value: Value, pointer: &str) -> Value {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        value
            .pointer_mut(parent)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove(key);
        value
    }

    fn set(mut value: Value, pointer: &str, new: Value) -> Value {
        *value.pointer_mut(pointer).unwrap() = new;
        value
    }

    #[test]
    fn ecr_push_sample_parses_and_pins_the_digest() {
        let push = EcrImageAction::parse(&sample("ecr-push.json")).unwrap();
        assert!(push.is_successful_push());
        assert_eq!(push.repository, "web-app");
        assert_eq!(push.tag.as_deref(), Some("v1.4.0"));
        assert_eq!(
            push.pinned_image().unwrap(),
            format!(
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/web-app@{}",
                push.digest.clone().unwrap()
            )
        );
    }

    #[test]
    fn ecr_failed_push_and_delete_samples_parse_as_not_pushes() {
        assert!(!EcrImageAction::parse(&sample("ecr-push-failed.json"))
            .unwrap()
            .is_successful_push());
        assert!(!EcrImageAction::parse(&sample("ecr-delete.json"))
            .unwrap()
            .is_successful_push());
    }

    #[test]
    fn malformed_ecr_events_name_the_field() {
        let push = sample("ecr-push.json");
        let cases = [
            (
                without(push.clone(), "/detail/repository-name"),
                "detail: missing field `repository-name`",
            ),
            (
                set(push.clone(), "/detail/image-digest", "sha256:zz".into()),
                "detail.image-digest: \"sha256:zz\" is not",
            ),
            (
                without(push.clone(), "/detail/image-digest"),
                "detail.image-digest: missing on a successful push",
            ),
            (
                set(push.clone(), "/detail/image-tag", "../etc".into()),
                "detail.image-tag:",
            ),
            (
                set(push.clone(), "/detail/repository-name", 7.into()),
                "detail.repository-name: invalid type",
            ),
            (
                set(push.clone(), "/account", "12".into()),
                "account: missing or not a 12-digit",
            ),
            (
                set(push, "/detail", Value::Null),
                "detail: invalid type: null",
            ),
        ];
        for (event, expected) in cases {
            let err = EcrImageAction::parse(&event).unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "{err:?} does not contain {expected:?}"
            );
        }
    }

    #[test]
    fn foreign_events_are_rejected_naming_what_they_were() {
        let err = EcrImageAction::parse(&sample("alarm-eventbridge.json")).unwrap_err();
        assert!(
            matches!(&err, EventError::Foreign { found, .. } if found.contains("aws.cloudwatch")),
            "{err}"
        );
        let err = EcrImageAction::parse(&serde_json::json!([1, 2])).unwrap_err();
        assert!(err.to_string().contains("not a JSON object"), "{err}");
        let err = HookInvocation::parse(&sample("ecr-push.json")).unwrap_err();
        assert!(matches!(err, EventError::Foreign { .. }), "{err}");
        let err = DeploymentStateChange::parse(&sample("lifecycle-hook.json")).unwrap_err();
        assert!(
            err.to_string()
                .contains("keys [DeploymentId, LifecycleEventHookExecutionId]"),
            "{err}"
        );
        let err = AlarmTransition::parse_all(&sample("ecr-push.json")).unwrap_err();
        assert!(matches!(err, EventError::Foreign { .. }), "{err}");
    }

    #[test]
    fn lifecycle_hook_sample_parses_and_empty_ids_are_rejected() {
        let hook = HookInvocation::parse(&sample("lifecycle-hook.json")).unwrap();
        assert!(hook.deployment_id.starts_with("d-"));
        assert!(!hook.execution_id.is_empty());
        let err = HookInvocation::parse(&serde_json::json!({"DeploymentId": "d-1"})).unwrap_err();
        assert!(
            err.to_string()
                .contains("missing field `LifecycleEventHookExecutionId`"),
            "{err}"
        );
        let err = HookInvocation::parse(
            &serde_json::json!({"DeploymentId": "", "LifecycleEventHookExecutionId": "x"}),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("DeploymentId: missing or empty"),
            "{err}"
        );
    }

    #[test]
    fn eventbridge_alarm_samples_parse() {
        let alarms = AlarmTransition::parse_all(&sample("alarm-eventbridge.json")).unwrap();
        let alarm = &alarms[0];
        assert_eq!(alarm.alarm_name, "web-5xx");
        assert!(alarm.entered_alarm());
        assert_eq!(alarm.via, AlarmVia::EventBridge);
        assert_eq!(
            alarm.metric.as_deref(),
            Some("AWS/ApplicationELB/HTTPCode_Target_5XX_Count")
        );
        assert_eq!(alarm.threshold, Some(5.0));

        let ok = &AlarmTransition::parse_all(&sample("alarm-eventbridge-ok.json")).unwrap()[0];
        assert_eq!(ok.state, AlarmState::Ok);
        assert!(!ok.entered_alarm());

        let composite =
            &AlarmTransition::parse_all(&sample("alarm-eventbridge-composite.json")).unwrap()[0];
        assert!(composite.entered_alarm());
        assert!(composite
            .composite_rule
            .as_deref()
            .unwrap()
            .contains("ALARM(web-5xx)"));
    }

    #[test]
    fn repeated_alarm_is_not_a_transition() {
        let event = set(
            sample("alarm-eventbridge.json"),
            "/detail/previousState/value",
            "ALARM".into(),
        );
        let alarm = &AlarmTransition::parse_all(&event).unwrap()[0];
        assert!(!alarm.entered_alarm());
    }

    #[test]
    fn sns_alarm_samples_parse() {
        let alarm = &AlarmTransition::parse_all(&sample("alarm-sns.json")).unwrap()[0];
        assert_eq!(alarm.alarm_name, "web-errors");
        assert_eq!(alarm.via, AlarmVia::Sns);
        assert!(alarm.entered_alarm());
        assert_eq!(alarm.threshold, Some(10.0));
        assert_eq!(
            alarm.metric.as_deref(),
            Some("AWS/ApplicationELB/HTTPCode_Target_5XX_Count")
        );
        let composite =
            &AlarmTransition::parse_all(&sample("alarm-sns-composite.json")).unwrap()[0];
        assert!(composite.composite_rule.is_some() && composite.entered_alarm());
    }

    #[test]
    fn malformed_sns_alarms_name_the_field() {
        let event = set(
            sample("alarm-sns.json"),
            "/Records/0/Sns/Message",
            "not json".into(),
        );
        let err = AlarmTransition::parse_all(&event).unwrap_err().to_string();
        assert!(err.contains("Records[0].Sns.Message: not JSON"), "{err}");
        let event = set(
            sample("alarm-sns.json"),
            "/Records/0/Sns/Message",
            r#"{"NewStateValue":"ALARM"}"#.into(),
        );
        let err = AlarmTransition::parse_all(&event).unwrap_err().to_string();
        assert!(
            err.contains("Records[0].Sns.Message: missing field `AlarmName`"),
            "{err}"
        );
        let event = without(sample("alarm-sns.json"), "/Records/0/Sns");
        let err = AlarmTransition::parse_all(&event).unwrap_err().to_string();
        assert!(err.contains("Records[0]: missing field `Sns`"), "{err}");
    }

    #[test]
    fn malformed_eventbridge_alarm_names_the_field() {
        let event = without(sample("alarm-eventbridge.json"), "/detail/alarmName");
        let err = AlarmTransition::parse_all(&event).unwrap_err().to_string();
        assert!(err.contains("detail: missing field `alarmName`"), "{err}");
        let event = set(
            sample("alarm-eventbridge.json"),
            "/detail/state/value",
            "SIDEWAYS".into(),
        );
        let err = AlarmTransition::parse_all(&event).unwrap_err().to_string();
        assert!(err.contains("detail.state.value"), "{err}");
    }

    #[test]
    fn ecs_deployment_state_change_sample_parses() {
        let change =
            EcsDeploymentStateChange::parse(&sample("ecs-deployment-state-change.json")).unwrap();
        assert_eq!(
            change.service_arn,
            "arn:aws:ecs:us-east-1:123456789012:service/prod/web"
        );
        assert!(change.is_terminal());
        assert_eq!(change.state(), "SUCCESS");
        let err = EcsDeploymentStateChange::parse(&set(
            sample("ecs-deployment-state-change.json"),
            "/resources",
            serde_json::json!([]),
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("resources: names no ECS service ARN"), "{err}");
    }

    #[test]
    fn ecs_hook_payloads_parse_and_rollbacks_are_recognised() {
        let hook =
            match HookPayload::parse(&sample("ecs-hook-post-test-traffic-shift.json")).unwrap() {
                HookPayload::EcsNative(hook) => hook,
                other => panic!("{other:?}"),
            };
        assert_eq!(
            hook.stage(),
            Some(crate::LifecycleEvent::AfterAllowTestTraffic)
        );
        assert_eq!(
            hook.service_arn,
            "arn:aws:ecs:us-east-1:123456789012:service/prod/web"
        );
        assert!(!hook.is_rollback());
        assert_eq!(hook.hook_details["team"], "web");

        let mut value = sample("ecs-hook-post-test-traffic-shift.json");
        value["lifecycleStage"] = "TEST_TRAFFIC_SHIFT".into();
        let target = value["executionDetails"]["targetServiceRevisionArn"].clone();
        let target = target.as_str().unwrap();
        value["executionDetails"]["testTrafficWeights"] = serde_json::json!({ target: 0, "arn:aws:ecs:us-east-1:123456789012:service-revision/prod/web/1": 100 });
        let HookPayload::EcsNative(rollback) = HookPayload::parse(&value).unwrap() else {
            panic!()
        };
        assert!(rollback.is_rollback());
        assert_eq!(
            rollback.stage(),
            Some(crate::LifecycleEvent::TestTrafficShift)
        );

        // A stage the SDK has no variant for stays text and is no error.
        value["lifecycleStage"] = "SOME_FUTURE_STAGE".into();
        let HookPayload::EcsNative(future) = HookPayload::parse(&value).unwrap() else {
            panic!()
        };
        assert_eq!(future.stage(), None);

        let err = HookPayload::parse(&without(
            sample("ecs-hook-post-test-traffic-shift.json"),
            "/executionDetails/serviceArn",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("executionDetails: missing field `serviceArn`"),
            "{err}"
        );
        assert!(matches!(
            HookPayload::parse(&sample("lifecycle-hook.json")).unwrap(),
            HookPayload::CodeDeploy(_)
        ));
    }

    #[test]
    fn deployment_state_change_sample_parses() {
        let change = DeploymentStateChange::parse(&sample("deployment-state-change.json")).unwrap();
        assert_eq!(change.application, "web-app");
        assert_eq!(change.deployment_group, "web-dg");
        assert_eq!(change.state, "SUCCESS");
        assert!(change.is_terminal());
        let err = DeploymentStateChange::parse(&without(
            sample("deployment-state-change.json"),
            "/detail/deploymentGroup",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("detail.deploymentGroup: missing or empty"),
            "{err}"
        );
    }

    fn upstream(name: &str) -> Value {
        sample(&format!("upstream/{name}"))
    }

    #[test]
    fn an_eventbridge_alarm_without_configuration_or_reason_is_accepted() {
        let event = without(sample("alarm-eventbridge.json"), "/detail/configuration");
        let event = without(event, "/detail/state/reason");
        let event = without(event, "/detail/state/timestamp");
        let alarm = &AlarmTransition::parse_all(&event).unwrap()[0];
        assert_eq!(alarm.alarm_name, "web-5xx");
        assert!(alarm.entered_alarm());
        assert_eq!(alarm.metric, None);
        // What the function needs is still required, by name.
        let err = AlarmTransition::parse_all(&without(event, "/detail/state"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("detail.state: missing"), "{err}");
    }

    #[test]
    fn the_registry_host_carries_the_partition_dns_suffix() {
        assert_eq!(
            ecr_registry("123456789012", "cn-north-1"),
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(
            ecr_registry("123456789012", "us-gov-west-1"),
            "123456789012.dkr.ecr.us-gov-west-1.amazonaws.com"
        );
        assert_eq!(
            ecr_registry("123456789012", "eu-west-1"),
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
        );
        let mut push = sample("ecr-push.json");
        push["region"] = serde_json::json!("cn-northwest-1");
        let image = EcrImageAction::parse(&push)
            .unwrap()
            .pinned_image()
            .unwrap();
        assert!(
            image.starts_with(&format!(
                "{}.dkr.ecr.cn-northwest-1.amazonaws.com.cn/",
                push["account"].as_str().unwrap()
            )),
            "{image}"
        );
    }

    /// AWS's own samples (events/upstream/README.md names each source).
    #[test]
    fn aws_lambda_events_fixtures_parse_as_aws_sends_them() {
        let change = DeploymentStateChange::parse(&upstream(
            "codedeploy-deployment-state-change.lambda-events.json",
        ))
        .unwrap();
        assert_eq!(
            (
                change.application.as_str(),
                change.deployment_group.as_str()
            ),
            ("myApplication", "myDeploymentGroup")
        );
        assert!(change.is_terminal());

        let hook = HookInvocation::parse(&upstream("codedeploy-lifecycle-hook.lambda-events.json"))
            .unwrap();
        assert_eq!(hook.deployment_id, "d-deploymentId");

        let sns =
            &AlarmTransition::parse_all(&upstream("alarm-sns-single-metric.lambda-events.json"))
                .unwrap()[0];
        assert_eq!(sns.alarm_name, "EXAMPLE");
        assert!(sns.entered_alarm());
        assert_eq!(sns.metric.as_deref(), Some("AWS/EC2/NetworkOut"));

        let action =
            &AlarmTransition::parse_all(&upstream("alarm-lambda-action-metric.lambda-events.json"))
                .unwrap()[0];
        assert_eq!(action.alarm_name, "lambda-demo-metric-alarm");
        assert_eq!(action.via, AlarmVia::LambdaAction);
        assert!(action.entered_alarm(), "INSUFFICIENT_DATA -> ALARM");
        assert_eq!(action.metric.as_deref(), Some("AWS/Logs/CallCount"));

        let documented =
            &AlarmTransition::parse_all(&upstream("cloudwatch-alarm-state-change.aws-docs.json"))
                .unwrap()[0];
        assert_eq!(documented.alarm_name, "ServerCpuTooHigh");
        assert!(documented.entered_alarm(), "OK -> ALARM");

        let ecs =
            EcsDeploymentStateChange::parse(&upstream("ecs-deployment-in-progress.aws-docs.json"))
                .unwrap();
        assert_eq!(
            ecs.service_arn,
            "arn:aws:ecs:us-west-2:111122223333:service/default/servicetest"
        );
        assert!(!ecs.is_terminal(), "in progress: the queue waits");

        let composite = &AlarmTransition::parse_all(&upstream(
            "alarm-lambda-action-composite.lambda-events.json",
        ))
        .unwrap()[0];
        assert!(composite.composite_rule.is_some());
        assert!(
            !composite.entered_alarm(),
            "ALARM -> ALARM is no transition"
        );
    }

    #[test]
    fn aws_samples_greenlight_cannot_act_on_are_rejected_naming_the_field() {
        // The ECR user guide's push sample carries a 60-hex-digit digest: no registry
        // could serve it, so deploying it would fail minutes later at image pull.
        let err = EcrImageAction::parse(&upstream("ecr-image-push.aws-docs.json"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("detail.image-digest") && err.contains("sha256:<64 hex>"),
            "{err}"
        );
        // A plain SNS message is not an alarm.
        let err = AlarmTransition::parse_all(&upstream("sns-plain-message.lambda-events.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("Records[0].Sns.Message: not JSON"), "{err}");
    }

    #[test]
    fn every_sample_in_events_parses_as_some_accepted_input() {
        let dir = format!("{}/../events", env!("CARGO_MANIFEST_DIR"));
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let value: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let parsed = EcrImageAction::parse(&value).is_ok()
                || AlarmTransition::parse_all(&value).is_ok()
                || DeploymentStateChange::parse(&value).is_ok()
                || EcsDeploymentStateChange::parse(&value).is_ok()
                || HookPayload::parse(&value).is_ok();
            assert!(parsed, "{} parses as no accepted input", path.display());
            count += 1;
        }
        assert!(
            count >= 10,
            "expected the samples in events/, found {count}"
        );
    }
}
