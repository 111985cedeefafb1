//! A CloudWatch alarm state change, whichever way it arrived: EventBridge, the
//! alarm's Lambda action, or SNS.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::parse::{
    eventbridge_kind, foreign, non_empty, typed, EventError, ALARM_STATE_CHANGE, CLOUDWATCH_SOURCE,
};

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
