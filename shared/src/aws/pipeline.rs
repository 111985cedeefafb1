//! CodePipeline: starting an execution for pipeline-mode services
//! (`codepipeline:StartPipelineExecution`).

use aws_sdk_codepipeline::types::PipelineVariable;
use aws_sdk_codepipeline::Client;

use super::{retry, AwsError, LazyClient};

const SERVICE: &str = "CodePipeline";

#[derive(Debug, Clone)]
pub struct Pipelines {
    /// `None`: a function that never starts a pipeline, so its binary does not
    /// link the client (cold start).
    client: Option<LazyClient<Client>>,
}

impl Pipelines {
    pub fn new(client: Client) -> Self {
        Pipelines {
            client: Some(LazyClient::ready(client, Client::new)),
        }
    }

    /// The client is built on first use.
    pub fn from_conf(config: &aws_config::SdkConfig) -> Self {
        Pipelines {
            client: Some(LazyClient::deferred(config, Client::new)),
        }
    }

    /// No client: every start is refused (alarm-rollback stops deployments and never
    /// starts one).
    pub fn none() -> Self {
        Pipelines { client: None }
    }

    /// Starts `pipeline`, passing `image` in `variable` when given. `request_token` makes
    /// the call idempotent: the same push delivered twice starts one execution.
    pub async fn start(
        &self,
        pipeline: &str,
        variable: Option<(&str, &str)>,
        request_token: &str,
    ) -> Result<String, AwsError> {
        let Some(client) = &self.client else {
            return Err(AwsError::unexpected(
                SERVICE,
                "StartPipelineExecution",
                "this function has no CodePipeline client: only deploy-on-push starts pipelines",
            ));
        };
        let mut request = client
            .get()
            .start_pipeline_execution()
            .name(pipeline)
            .client_request_token(request_token);
        if let Some((name, value)) = variable {
            let variable = PipelineVariable::builder()
                .name(name)
                .value(value)
                .build()
                .map_err(|e| {
                    AwsError::unexpected(SERVICE, "StartPipelineExecution", e.to_string())
                })?;
            request = request.variables(variable);
        }
        let output =
            retry::call(SERVICE, "StartPipelineExecution", || request.clone().send()).await?;
        Ok(output.pipeline_execution_id.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_function_without_the_client_refuses_to_start_a_pipeline() {
        let err = Pipelines::none()
            .start("release", Some(("IMAGE", "repo@sha256:ab")), "token")
            .await
            .unwrap_err();
        assert_eq!(err.operation, "StartPipelineExecution");
        assert!(!err.retryable);
        assert!(err.message.contains("no CodePipeline client"), "{err}");
    }
}
