//! What a stop with rollback came to, on either engine: the answer of
//! `StopDeployment` (CodeDeploy) and `StopServiceDeployment` (ECS) alike.

use serde::Serialize;

/// Outcome of a stop with rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum StopOutcome {
    /// The engine accepted the stop.
    Stopping { status: String },
    /// The deployment had already finished or been stopped: nothing to do.
    AlreadyDone { reason: String },
}
