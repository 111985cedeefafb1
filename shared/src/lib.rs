//! Greenlight's shared library: everything the Lambda functions and the CLI have in
//! common. Each function's `main.rs` wires these once at init; its handler decides,
//! acts through them, then notifies.
//!
//! # The map
//!
//! | module | what it holds | IO |
//! |---|---|---|
//! | [`config`] | the configuration document: model, the walk that names every problem | none |
//! | [`config_source`] | where the document comes from (inline, file, SSM, S3) and its refresh | SSM, S3 |
//! | [`events`] | typed inputs: ECR pushes, hook invocations, alarms, state changes | none |
//! | [`deploy`] | **the seam**: one `Backend` per service, the path chosen once inside it (`deploy/codedeploy.rs`, `ecs_native.rs`, `pipeline.rs`) | through [`aws`] |
//! | [`smoke`] | the smoke-test engine: checks, placeholders, expectations, report | HTTP |
//! | [`analysis`] | green judged against blue, interval by interval | none |
//! | [`gate`] | the analysis's verdict so far, from one GetMetricData | CloudWatch |
//! | [`notify`] | notifications for people (text) and machines (chat JSON), each also recorded in the ledger | SNS |
//! | [`evidence`] | why green failed: its tasks' exits and a masked, bounded excerpt of its logs | ECS, CloudWatch Logs |
//! | [`ledger`] | the release ledger: one item per deployment attempt, history, the DORA keys, EMF lines | DynamoDB |
//! | [`aws`] | the SDK configuration and one small adapter per service; every call goes through `aws::retry::call` | all AWS |
//! | [`init`] | what a function does first: logs, SDK configuration, the document | SSM, S3 |
//! | [`lifecycle`], [`marker`], [`placeholder`], [`logging`] | lifecycle events in both vocabularies, the deployment marker, the `${…}` grammar, JSON logs | none |
//!
//! # How a push, a hook and an alarm flow
//!
//! - **Push** (deploy-on-push): `events::EcrImageAction` → the services it deploys
//!   (`Config::services_for_push`) → per service `deploy::Backends::for_service` →
//!   `Backend::history` → the exactly-once rule (the function's `plan`) →
//!   `Backend::launch`: the task definition pinned by digest ([`deploy::pin`],
//!   `aws::ecs`) and the path's start (CreateDeployment, UpdateService or
//!   StartPipelineExecution), busy as `deploy::StartError::Busy` → `notify`.
//!   A state change (`events::DeploymentStateChange`, `EcsDeploymentStateChange`) →
//!   `Backend::ended` → on a failure, green's evidence ([`evidence::Capture`]) in the
//!   notification → the queued image, launched the same way.
//! - **Hook** (lifecycle-hook): `events::HookPayload` → the engine's adapter in the
//!   function (CodeDeploy or ECS) → the service (`Config::service_for_group`,
//!   `service_for_ecs_arn`) → one smoke run ([`smoke::run`]) at the engine's listener
//!   → at the production step, [`deploy::codedeploy::analysis_targets`] or
//!   [`deploy::ecs_native::analysis_targets`] → [`gate::evaluate`] →
//!   [`analysis::judge_window`] → the answer (`aws::codedeploy` reporter, or the
//!   return value) → `notify`.
//! - **Alarm** (alarm-rollback): `events::AlarmTransition` →
//!   `deploy::Backends::guarded_by` (the configuration's alarms, and CodeDeploy
//!   groups' own) → `Backend::in_flight` → `Backend::stop_with_rollback` → `notify`.

pub mod analysis;
pub mod aws;
pub mod config;
pub mod config_source;
pub mod deploy;
pub mod events;
pub mod evidence;
pub mod gate;
pub mod init;
pub mod ledger;
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
