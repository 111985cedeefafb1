//! Greenlight's shared library: everything the Lambda functions have in common.
//!
//! - [`analysis`]: judging green against blue from CloudWatch (pure; issue 13 wires it).
//! - [`config`]: the configuration document, loaded once at init and validated fully.
//! - [`events`]: typed inputs (ECR pushes, lifecycle hooks, alarms, deployment state changes).
//! - [`aws`]: the SDK configuration and small adapters per AWS capability.
//! - [`deploy`]: one deployment abstraction, with CodeDeploy and ECS-native backends.
//! - [`lifecycle`]: CodeDeploy ECS lifecycle events.
//! - [`logging`]: structured JSON logs.
//! - [`smoke`]: the smoke-test engine.
//! - [`notify`]: SNS notifications for people and machines.
//! - [`marker`]: what deploy-on-push writes into a deployment so later steps can read it.

pub mod analysis;
pub mod aws;
pub mod config;
pub mod config_source;
pub mod deploy;
pub mod events;
pub mod gate;
pub mod lifecycle;
pub mod logging;
pub mod marker;
pub mod notify;
pub mod placeholder;
pub mod smoke;

pub use config::Config;
pub use lifecycle::LifecycleEvent;

/// The library's one error type: every failure a function can meet, with a message a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Event(#[from] events::EventError),
    #[error(transparent)]
    Aws(#[from] aws::AwsError),
}

impl Error {
    /// Whether Lambda (and EventBridge's retry + DLQ) should try the event again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Aws(e) if e.retryable)
    }

    /// A short name for Lambda's `errorType`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Config(_) => "ConfigError",
            Error::Event(_) => "EventError",
            Error::Aws(e) if e.retryable => "RetryableAwsError",
            Error::Aws(_) => "AwsError",
        }
    }
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(error: Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: error.kind().to_string(),
            error_message: error.to_string(),
        }
    }
}
