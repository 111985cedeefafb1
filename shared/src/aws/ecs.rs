//! ECS: the service's current task definition (`ecs:DescribeServices`,
//! `ecs:DescribeTaskDefinition`) and registering new revisions (`ecs:RegisterTaskDefinition`).

use aws_sdk_ecs::types::{Tag, TaskDefinition, TaskDefinitionField};
use aws_sdk_ecs::Client;

use super::AwsError;

const SERVICE: &str = "ECS";

/// A task definition as ECS returned it, with its tags.
#[derive(Debug, Clone)]
pub struct CurrentTaskDefinition {
    pub task_definition: TaskDefinition,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone)]
pub struct Ecs {
    client: Client,
}

impl Ecs {
    pub fn new(client: Client) -> Self {
        Ecs { client }
    }

    pub fn from_conf(config: &aws_config::SdkConfig) -> Self {
        Ecs::new(Client::new(config))
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The task definition the service runs now.
    pub async fn service_task_definition(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<CurrentTaskDefinition, AwsError> {
        let services = self
            .client
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(SERVICE, "DescribeServices", e))?;
        let arn = services
            .services
            .unwrap_or_default()
            .into_iter()
            .find_map(|s| s.task_definition)
            .ok_or_else(|| {
                AwsError::unexpected(
                    SERVICE,
                    "DescribeServices",
                    format!("service {service} not found in cluster {cluster}"),
                )
            })?;
        self.task_definition(&arn).await
    }

    /// A task definition by ARN or family:revision, with its tags.
    pub async fn task_definition(&self, arn: &str) -> Result<CurrentTaskDefinition, AwsError> {
        let output = self
            .client
            .describe_task_definition()
            .task_definition(arn)
            .include(TaskDefinitionField::Tags)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(SERVICE, "DescribeTaskDefinition", e))?;
        let task_definition = output.task_definition.ok_or_else(|| {
            AwsError::unexpected(
                SERVICE,
                "DescribeTaskDefinition",
                format!("{arn} not found"),
            )
        })?;
        Ok(CurrentTaskDefinition {
            task_definition,
            tags: output.tags.unwrap_or_default(),
        })
    }
}
