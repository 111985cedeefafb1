//! The pipeline path: CodePipeline runs the deployment. A push starts an execution
//! with the digest-pinned image in a pipeline variable; the client request token
//! (one per service and digest) makes a redelivered push start one execution.
//! Greenlight neither lists nor stops what a pipeline runs.

use super::pin;
use super::view::{Launched, StartError, StopError};
use crate::aws::Pipelines;
use crate::config::PipelineTarget;

#[derive(Clone, Copy)]
pub(super) struct Pipeline<'a> {
    pub pipelines: &'a Pipelines,
    pub service: &'a str,
    pub target: &'a PipelineTarget,
}

impl Pipeline<'_> {
    pub fn target(&self) -> String {
        format!("pipeline {}", self.target.name)
    }

    /// StartPipelineExecution, idempotent per service and digest.
    pub async fn launch(&self, image_uri: &str, digest: &str) -> Result<Launched, StartError> {
        let token = pin::pipeline_token(self.service, digest);
        let variable = self
            .target
            .image_variable
            .as_deref()
            .map(|name| (name, image_uri));
        let execution_id = self
            .pipelines
            .start(&self.target.name, variable, &token)
            .await?;
        tracing::info!(%execution_id, pipeline = %self.target.name, "pipeline execution started");
        Ok(Launched::Pipeline {
            execution_id,
            pipeline: self.target.name.clone(),
        })
    }

    pub(crate) fn refuse_stop(&self) -> StopError {
        StopError::Unsupported(format!(
            "{} deploys through its pipeline; stop the pipeline execution instead",
            self.service
        ))
    }
}
