//! CodePipeline: starting an execution for pipeline-mode services
//! (`codepipeline:StartPipelineExecution`).

use aws_sdk_codepipeline::types::PipelineVariable;
use aws_sdk_codepipeline::Client;

use super::{retry, AwsError, LazyClient};

const SERVICE: &str = "CodePipeline";

#[derive(Debug, Clone)]
pub struct Pipelines {
    client: LazyClient<Client>,
}

impl Pipelines {
    pub fn new(client: Client) -> Self {
        Pipelines {
            client: LazyClient::ready(client, Client::new),
        }
    }

    /// The client is built on first use.
    pub fn from_conf(config: &aws_config::SdkConfig) -> Self {
        Pipelines {
            client: LazyClient::deferred(config, Client::new),
        }
    }

    /// Starts `pipeline`, passing `image` in `variable` when given. `request_token` makes
    /// the call idempotent: the same push delivered twice starts one execution.
    pub async fn start(
        &self,
        pipeline: &str,
        variable: Option<(&str, &str)>,
        request_token: &str,
    ) -> Result<String, AwsError> {
        let mut request = self
            .client
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
