//! The lifecycle hook: CodeDeploy invokes it at a lifecycle event of an ECS
//! blue/green deployment, or ECS at a stage of an ECS-native one (told apart by the
//! payload); it decides (smoke tests against the right listener or listener rule,
//! then the analysis) and answers, always, exactly once, before its deadline.
//!
//! How an invocation reads, top to bottom:
//! - here: [`Hook::handle`] parses the payload and hands it to the engine's adapter;
//! - [`codedeploy`] or [`ecs`]: the adapter turns the invocation into one
//!   [`core::Context`], runs the core and turns its [`verdict::Verdict`] into the
//!   engine's answer (PutLifecycleEventHookExecutionStatus, or the returned
//!   `hookStatus`);
//! - [`core`]: what both engines share, written once: the guard, one smoke run
//!   (aim, secrets, checks), one step of the analysis; [`notify`]: what people are told.
//!
//! Failure handling, in order of precedence:
//! - The decision runs in its own task: a panic there becomes a Failed answer
//!   (the release profile keeps `panic = "unwind"` for exactly this reason).
//! - The decision has until the Lambda deadline minus a reporting margin; if it
//!   runs long it is abandoned and the answer is Failed.
//! - Config problems, unknown deployment groups and AWS errors while deciding are
//!   answered Failed with the reason (fail closed: a bad image must not pass
//!   because Greenlight could not look).
//! - A failing report is retried; `LifecycleEventAlreadyCompletedException` means an
//!   earlier invocation answered, which is done, not an error.

// The decision's futures nest deeply (a smoke run inside a guarded task).
#![recursion_limit = "256"]

pub mod codedeploy;
mod core;
pub mod ecs;
mod notify;
pub mod verdict;

use std::sync::Arc;
use std::time::Duration;

use greenlight::aws::cloudwatch::Metrics;
use greenlight::aws::codedeploy::DeploymentReader;
use greenlight::aws::ecs::ServiceRules;
use greenlight::aws::elb::ListenerResolver;
use greenlight::aws::sns::Publisher;
use greenlight::aws::AwsError;
use greenlight::config::ConfigError;
use greenlight::events::{HookInvocation, HookPayload};
use greenlight::notify::Notifier;
use greenlight::smoke;
use greenlight::LifecycleEvent;
use serde_json::Value;
use tokio::time::Instant;

pub use codedeploy::CodeDeployContract;
pub use ecs::{ecs_answer, next_pause, ECS_CALLBACK_DELAY_SECONDS, IMAGE_LOOKUP_BUDGET};
pub use verdict::{Outcome, Verdict};

/// Env var naming the lifecycle event this function serves.
pub const ENV_HOOK: &str = "GREENLIGHT_HOOK";

/// IAM actions this function calls; the template test checks the role grants exactly these.
pub const IAM_ACTIONS: &[&str] = &[
    "codedeploy:PutLifecycleEventHookExecutionStatus",
    "codedeploy:GetDeployment",
    "codedeploy:GetDeploymentGroup",
    "codedeploy:ListDeploymentTargets",
    "codedeploy:GetDeploymentTarget",
    "codedeploy:StopDeployment",
    "cloudwatch:GetMetricData",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeRules",
    "ecs:DescribeServices",
    "ecs:DescribeServiceRevisions",
    "ecs:DescribeTaskDefinition",
    "sns:Publish",
    // The configuration, when it lives in Parameter Store or S3.
    "ssm:GetParameter",
    "s3:GetObject",
    "secretsmanager:GetSecretValue",
    // The release ledger (GREENLIGHT_LEDGER_TABLE): one write per notified step.
    "dynamodb:UpdateItem",
];

/// Time kept back from the Lambda deadline to return the answer once notifications
/// have had their chance.
pub(crate) const ANSWER_RESERVE: Duration = Duration::from_secs(1);

/// Time kept back from the Lambda deadline to report (with retries) and notify.
pub const REPORT_MARGIN: Duration = Duration::from_secs(5);
/// The report itself must be done this long before the Lambda deadline.
pub(crate) const REPORT_RESERVE: Duration = Duration::from_millis(250);

/// This crate's error: what makes an invocation fail as a whole.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Greenlight(#[from] greenlight::Error),
    /// CodeDeploy could not be told; it will time the hook out (after up to an hour).
    #[error("could not report {status} for deployment {deployment_id} (hook execution {execution_id}): {source}")]
    ReportFailed {
        deployment_id: String,
        execution_id: String,
        status: &'static str,
        #[source]
        source: AwsError,
    },
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(error: Error) -> Self {
        let error_type = match &error {
            Error::Greenlight(e) => e.kind(),
            Error::ReportFailed { .. } => "ReportFailed",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_string(),
            error_message: error.to_string(),
        }
    }
}

/// How an answer reaches the deployment engine. CodeDeploy wants an API call
/// (PutLifecycleEventHookExecutionStatus); ECS-native blue/green hooks return
/// `{"hookStatus": ...}` from the invocation instead. Deciding is the same for both.
pub trait HookContract: Send + Sync {
    fn deliver(
        &self,
        invocation: &HookInvocation,
        verdict: &Verdict,
        deadline: Instant,
    ) -> impl std::future::Future<Output = Result<Value, Error>> + Send;
}

/// What the analysis gate reads and does: CloudWatch metrics, target groups, and
/// stopping a CodeDeploy deployment whose analysis failed.
#[derive(Debug, Clone)]
pub struct Gate {
    pub metrics: Metrics,
    pub elb: greenlight::aws::LoadBalancers,
    pub codedeploy: greenlight::aws::CodeDeploy,
}

impl Gate {
    /// Clients are built on first use: only services with `analysis:` need them.
    pub fn from_conf(sdk: &greenlight::aws::SdkConfig) -> Gate {
        Gate::sharing(sdk, greenlight::aws::CodeDeploy::from_conf(sdk))
    }

    /// With the CodeDeploy client the hook already has (one client, not two, at init).
    pub fn sharing(
        sdk: &greenlight::aws::SdkConfig,
        codedeploy: greenlight::aws::CodeDeploy,
    ) -> Gate {
        Gate {
            metrics: Metrics::from_conf(sdk),
            elb: greenlight::aws::LoadBalancers::from_conf(sdk),
            codedeploy,
        }
    }
}

/// Everything the hook needs, built once at init.
pub struct Hook<D, L, P, C, S = greenlight::aws::Ecs> {
    /// The configuration, or why it could not be loaded: then every invocation is
    /// answered Failed with that reason instead of leaving the deployment hanging.
    pub config: Result<greenlight::config_source::SharedConfig, Arc<ConfigError>>,
    /// The event this function serves (`GREENLIGHT_HOOK`); `None` asks CodeDeploy.
    pub hook_event: Option<LifecycleEvent>,
    pub deployments: D,
    pub listeners: L,
    pub notifier: Notifier<P>,
    pub contract: C,
    /// ECS-native services' listener rules and revisions.
    pub services: S,
    pub http: smoke::HttpClients,
    pub report_margin: Duration,
    /// The analysis gate (services with `analysis:`).
    pub gate: Gate,
    /// Secrets the checks name, read when they run.
    pub secrets: greenlight::aws::secrets::Secrets,
}

impl<D, L, P, C, S> Hook<D, L, P, C, S>
where
    D: DeploymentReader + 'static,
    L: ListenerResolver + 'static,
    P: Publisher + 'static,
    C: HookContract + 'static,
    S: ServiceRules + 'static,
{
    /// Handles one invocation from either engine. `deadline` is the Lambda deadline.
    pub async fn handle(self: &Arc<Self>, event: Value, deadline: Instant) -> Result<Value, Error> {
        match HookPayload::parse(&event) {
            Ok(HookPayload::EcsNative(invocation)) => {
                Ok(self.handle_ecs(invocation, deadline).await)
            }
            Ok(HookPayload::CodeDeploy(invocation)) => {
                self.handle_codedeploy(invocation, deadline).await
            }
            Err(e) => Err(greenlight::Error::from(e).into()),
        }
    }
}

/// Reads `GREENLIGHT_HOOK`; an unknown value is an init error naming the variable.
pub fn hook_event_from_env() -> Result<Option<LifecycleEvent>, HookEnvError> {
    match std::env::var(ENV_HOOK) {
        Err(_) => Ok(None),
        Ok(value) if value.trim().is_empty() => Ok(None),
        Ok(value) => value.parse().map(Some).map_err(HookEnvError),
    }
}

/// `GREENLIGHT_HOOK` names no lifecycle event: an init error.
#[derive(Debug, thiserror::Error)]
#[error("{ENV_HOOK}: {0}")]
pub struct HookEnvError(pub greenlight::lifecycle::UnknownLifecycleEvent);
