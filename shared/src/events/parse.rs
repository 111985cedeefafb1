//! What every event parser shares: the kinds of event accepted, the error that
//! names the field, and the helpers that read a field or say why it is missing.

use serde::de::DeserializeOwned;
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
    pub(crate) fn malformed(
        kind: &'static str,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        EventError::Malformed {
            kind,
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Parses `value` into `T`, naming the path of the first field that does not fit.
pub(crate) fn typed<T: DeserializeOwned>(
    kind: &'static str,
    value: &Value,
) -> Result<T, EventError> {
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
pub(crate) fn eventbridge_kind(value: &Value) -> Option<(&str, &str)> {
    Some((
        value.get("source")?.as_str()?,
        value.get("detail-type")?.as_str()?,
    ))
}

pub(crate) fn required(
    kind: &'static str,
    path: &str,
    value: Option<String>,
) -> Result<String, EventError> {
    non_empty(kind, path, value.unwrap_or_default())
}

pub(crate) fn non_empty(
    kind: &'static str,
    path: &str,
    value: String,
) -> Result<String, EventError> {
    if value.trim().is_empty() {
        Err(EventError::malformed(kind, path, "missing or empty"))
    } else {
        Ok(value)
    }
}

pub(crate) fn foreign(value: &Value, accepts: &str) -> EventError {
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
