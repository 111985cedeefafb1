//! AWS adapters: one SDK configuration loaded once at init, and small adapters per
//! capability. Each adapter's methods map to the IAM actions its function is
//! granted (see `IAM_ACTIONS` in each function crate), so the code and the
//! template tell the same story.
//!
//! Endpoints: the SDK honours `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>`
//! (e.g. `AWS_ENDPOINT_URL_CODEDEPLOY`); that is the only way tests and the local
//! rehearsal redirect Greenlight, so production code has no test branches.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_codedeploy::config::http::HttpResponse;
use aws_sdk_codedeploy::error::SdkError;
use aws_sdk_codedeploy::types::{
    DeploymentStatus, LifecycleEventStatus, RevisionLocation, RevisionLocationType,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::Serialize;

pub mod codedeploy;
pub mod ecr;
pub mod ecs;
pub mod elb;
pub mod pipeline;
pub mod sns;

pub use codedeploy::CodeDeploy;
pub use ecr::Ecr;
pub use ecs::Ecs;
pub use elb::LoadBalancers;
pub use pipeline::Pipelines;
pub use sns::Sns;

/// Loads the shared SDK configuration (region, credentials, endpoint overrides) once.
/// No network I/O happens here: credentials are resolved lazily on first call.
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// A failed AWS call, with what a person and the retry logic need to know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{service} {operation} failed: {}{message}", code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default())]
pub struct AwsError {
    pub service: &'static str,
    pub operation: &'static str,
    /// The AWS error code (`DeploymentLimitExceededException`, `ThrottlingException`, ...).
    pub code: Option<String>,
    pub message: String,
    /// Retrying later may help (throttling, 5xx, network); the SDK already retried.
    pub retryable: bool,
}

impl AwsError {
    /// Every SDK crate shares one `SdkError` and raw response type, so one conversion serves all.
    pub fn from_sdk<E>(
        service: &'static str,
        operation: &'static str,
        err: SdkError<E, HttpResponse>,
    ) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let (code, message, retryable) = match &err {
            SdkError::ServiceError(service_err) => {
                let e = service_err.err();
                // Modeled errors display as "<Code>: <message>"; used when the response
                // metadata lacks them (errors built in code rather than parsed).
                let display = e.to_string();
                let (display_code, display_message) = match display.split_once(": ") {
                    Some((code, message)) => (code.to_string(), message.to_string()),
                    None => (display.clone(), String::new()),
                };
                let looks_like_code = !display_code.is_empty()
                    && display_code.chars().all(|c| c.is_ascii_alphanumeric())
                    && (display_code.ends_with("Exception") || display_code.ends_with("Error"));
                let code = e
                    .code()
                    .map(str::to_string)
                    .or_else(|| looks_like_code.then(|| display_code.clone()));
                let retryable = status.is_some_and(|s| s >= 500)
                    || code.as_deref().is_some_and(|c| {
                        c.contains("Throttl")
                            || c == "RequestLimitExceeded"
                            || c == "TooManyRequestsException"
                    });
                (
                    code,
                    e.message()
                        .map(str::to_string)
                        .or_else(|| (!display_message.is_empty()).then_some(display_message))
                        .unwrap_or_else(|| "no message".to_string()),
                    retryable,
                )
            }
            SdkError::TimeoutError(_) => (None, "timed out".to_string(), true),
            SdkError::DispatchFailure(e) => {
                (None, format!("could not reach the endpoint: {e:?}"), true)
            }
            SdkError::ResponseError(_) => (
                None,
                format!(
                    "unreadable response (HTTP {})",
                    status.map_or("?".into(), |s| s.to_string())
                ),
                true,
            ),
            other => (
                other.code().map(str::to_string),
                format!("{}", aws_sdk_codedeploy::error::DisplayErrorContext(other)),
                false,
            ),
        };
        AwsError {
            service,
            operation,
            code,
            message,
            retryable,
        }
    }

    pub fn is_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// An answer that is not what the API promises (e.g. a missing field).
    pub fn unexpected(
        service: &'static str,
        operation: &'static str,
        message: impl Into<String>,
    ) -> AwsError {
        AwsError {
            service,
            operation,
            code: None,
            message: message.into(),
            retryable: false,
        }
    }
}

/// Outcome of reporting a lifecycle hook status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum HookReport {
    Reported,
    /// CodeDeploy already had a status for this execution (a retried invocation): done.
    AlreadyCompleted,
}

/// The two statuses a hook may report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum HookStatus {
    Succeeded,
    Failed,
}

impl HookStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HookStatus::Succeeded => "Succeeded",
            HookStatus::Failed => "Failed",
        }
    }

    fn sdk(self) -> LifecycleEventStatus {
        match self {
            HookStatus::Succeeded => LifecycleEventStatus::Succeeded,
            HookStatus::Failed => LifecycleEventStatus::Failed,
        }
    }
}

/// What Greenlight reads about a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentSummary {
    pub deployment_id: String,
    pub application: String,
    pub deployment_group: String,
    pub status: String,
    pub description: Option<String>,
    /// The AppSpec content, when the revision was sent inline.
    pub appspec: Option<String>,
    /// Creation time, milliseconds since the epoch.
    pub created_at: Option<i64>,
}

/// What Greenlight reads about a deployment group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeploymentGroupSummary {
    pub application: String,
    pub deployment_group: String,
    pub test_listener_arns: Vec<String>,
    pub production_listener_arns: Vec<String>,
    pub alarm_names: Vec<String>,
    pub alarms_enabled: bool,
}

/// Statuses CodeDeploy counts as in flight.
pub const IN_FLIGHT_STATUSES: [&str; 5] = ["Created", "Queued", "InProgress", "Baking", "Ready"];

pub(crate) fn deployment_status_sdk(status: &str) -> DeploymentStatus {
    DeploymentStatus::from(status)
}

pub(crate) fn inline_appspec(content: &str) -> RevisionLocation {
    RevisionLocation::builder()
        .revision_type(RevisionLocationType::AppSpecContent)
        .app_spec_content(
            aws_sdk_codedeploy::types::AppSpecContent::builder()
                .content(content)
                .build(),
        )
        .build()
}

pub(crate) fn sdk_status(status: HookStatus) -> LifecycleEventStatus {
    status.sdk()
}
