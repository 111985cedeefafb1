//! What the seam answers, whichever path runs a service: deployments as Greenlight
//! reads them, their progress, and why a start or a stop could not be made.

use serde::Serialize;

use super::pin::RenderError;
use crate::aws::AwsError;

/// Where a deployment is, whichever engine runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Phase {
    InFlight,
    Succeeded,
    /// Failed or rolled back by the engine.
    Failed,
    /// Stopped on request (alarm, operator, superseded).
    Stopped,
}

/// What Greenlight reads about one deployment, on either path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentView {
    pub id: String,
    pub phase: Phase,
    /// The engine's own status word (`InProgress`, `ROLLBACK_SUCCESSFUL`, …).
    pub status: String,
    /// Creation time, milliseconds since the epoch.
    pub created_at: Option<i64>,
    pub image_digest: Option<String>,
    pub image_tag: Option<String>,
}

/// A service's deployments as the exactly-once rule reads them: a bounded slice,
/// whatever the length of the history, in no particular order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    pub in_flight: Vec<DeploymentView>,
    /// Deployments created since the time asked for.
    pub since: Vec<DeploymentView>,
}

/// How far an in-flight deployment has come, whichever engine runs it: what
/// `greenlight status` shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Progress {
    /// The lifecycle event (CodeDeploy) or stage (ECS) in progress.
    pub at: Option<String>,
    /// Green's share of production traffic, percent, as the engine reports it.
    pub green_production_percent: Option<f64>,
    /// Green's share of test traffic, percent (ECS reports it; CodeDeploy does not).
    pub green_test_percent: Option<f64>,
    /// The deployment's hooks and their results so far.
    pub hooks: Vec<HookResult>,
    /// What production serves while the engine deploys, when the engine names it
    /// apart from the service (ECS: the source revision's image).
    pub production_tag: Option<String>,
    pub production_digest: Option<String>,
    /// The image being deployed, when the engine names it (ECS: the target revision's).
    pub target_tag: Option<String>,
    /// When production traffic first reached green, if the engine says
    /// (CodeDeploy: AllowTraffic's start time).
    #[serde(skip)]
    pub production_since_ms: Option<i64>,
    /// When the engine started the deployment.
    #[serde(skip)]
    pub started_ms: Option<i64>,
}

/// One hook of a deployment and its result so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookResult {
    /// The lifecycle event (CodeDeploy), or the hook's target: the Lambda function's
    /// name, or `PAUSE` (ECS).
    pub hook: String,
    /// The engine's own word: `Pending`/`InProgress`/`Succeeded`/`Failed`/`Skipped`
    /// (CodeDeploy), `PENDING`/`IN_PROGRESS`/`AWAITING_ACTION`/`SUCCEEDED`/`FAILED`/
    /// `TIMED_OUT` (ECS).
    pub status: String,
}

/// Why a backend could not start a deployment.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// Set-up that retrying cannot fix (an unset environment variable).
    #[error("{0}")]
    Setup(String),
    /// The task definition could not be rendered: configuration or task definition
    /// must change.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// Another deployment is in flight (the engine refused a second one).
    #[error("another deployment is in flight: {in_flight}")]
    Busy { in_flight: String },
}

/// What a launch of a pushed image came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launched {
    /// The engine started a deployment of the registered task definition.
    Deployment {
        deployment_id: String,
        task_definition: String,
        /// Where it runs, for messages ([`super::Backend::target`]).
        target: String,
    },
    /// The pipeline's execution started.
    Pipeline {
        execution_id: String,
        pipeline: String,
    },
    /// The service already runs this digest: nothing started.
    AlreadyServing { task_definition: String },
}

/// Where a service's deployments run, as the alarm path reports it (serialized
/// flat into its results).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(untagged)]
pub enum DeploymentTarget {
    CodeDeploy {
        application: String,
        deployment_group: String,
    },
    EcsNative {
        cluster: String,
        ecs_service: String,
    },
}

/// An operator's answer to a deployment paused for approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    Approve,
    Reject,
}

/// Why an approval could not be given.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApprovalError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(
        "{service} is deployed through {path}: only ECS-native deployments pause for approval"
    )]
    NotPausable { service: String, path: &'static str },
    #[error("{service}: no deployment in flight on {target}")]
    NothingInFlight { service: String, target: String },
    #[error("{service}: the deployment in flight ({in_flight}) is not waiting at a PAUSE hook")]
    NotPaused { service: String, in_flight: String },
}

/// Why an operator's stop could not be made.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StopError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("{0}")]
    Unsupported(String),
}
