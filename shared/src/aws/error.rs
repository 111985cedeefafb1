//! A failed AWS call as Greenlight reports it, and which failures are worth trying
//! again: throttling, 5xx, timeouts and unreachable endpoints.

use aws_sdk_codedeploy::config::http::HttpResponse;
use aws_sdk_codedeploy::error::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::Serialize;

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
        let retryable = is_transient(&err);
        let (code, message) = match &err {
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
                (
                    code,
                    e.message()
                        .map(str::to_string)
                        .or_else(|| (!display_message.is_empty()).then_some(display_message))
                        .unwrap_or_else(|| "no message".to_string()),
                )
            }
            SdkError::TimeoutError(_) => (
                None,
                format!(
                    "timed out: {}",
                    aws_sdk_codedeploy::error::DisplayErrorContext(&err)
                ),
            ),
            SdkError::DispatchFailure(e) => (None, format!("could not reach the endpoint: {e:?}")),
            SdkError::ResponseError(_) => (
                None,
                format!(
                    "unreadable response (HTTP {})",
                    status.map_or("?".into(), |s| s.to_string())
                ),
            ),
            other => (
                other.code().map(str::to_string),
                format!("{}", aws_sdk_codedeploy::error::DisplayErrorContext(other)),
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

    pub(crate) fn is_code(&self, code: &str) -> bool {
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

/// AWS error codes that mean "slow down".
fn is_throttling_code(code: &str) -> bool {
    code.contains("Throttl")
        || matches!(
            code,
            "RequestLimitExceeded"
                | "TooManyRequestsException"
                | "RequestThrottledException"
                | "SlowDown"
                | "ProvisionedThroughputExceededException"
                | "TransactionInProgressException"
        )
}

/// Whether trying the same call again later may succeed.
pub(crate) fn is_transient<E: ProvideErrorMetadata + std::error::Error>(
    err: &SdkError<E, HttpResponse>,
) -> bool {
    match err {
        SdkError::ServiceError(service_err) => {
            service_err.raw().status().as_u16() >= 500
                || service_err.err().code().is_some_and(is_throttling_code)
                || service_err
                    .err()
                    .to_string()
                    .split(':')
                    .next()
                    .is_some_and(is_throttling_code)
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        _ => false,
    }
}
