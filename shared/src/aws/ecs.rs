//! ECS: the service's current task definition (`ecs:DescribeServices`,
//! `ecs:DescribeTaskDefinition`) and registering new revisions (`ecs:RegisterTaskDefinition`).

use aws_sdk_ecs::types::{Tag, TaskDefinition, TaskDefinitionField};
use aws_sdk_ecs::Client;

use super::{retry, AwsError};

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
        let services = retry::send(SERVICE, "DescribeServices", || {
            self.client
                .describe_services()
                .cluster(cluster)
                .services(service)
                .send()
        })
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
        let output = retry::send(SERVICE, "DescribeTaskDefinition", || {
            self.client
                .describe_task_definition()
                .task_definition(arn)
                .include(TaskDefinitionField::Tags)
                .send()
        })
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

impl Ecs {
    /// Registers `task_definition` as a new revision of its family, with `tags`
    /// (`ecs:RegisterTaskDefinition`, `ecs:TagResource`). Every writable field is
    /// copied; the read-only ones ECS returns (ARN, revision, status, ...) are not.
    /// Inference accelerators are not copied: ECS no longer accepts them.
    pub async fn register(
        &self,
        task_definition: &TaskDefinition,
        tags: Vec<Tag>,
    ) -> Result<TaskDefinition, AwsError> {
        let td = task_definition.clone();
        let request = self
            .client
            .register_task_definition()
            .set_family(td.family)
            .set_task_role_arn(td.task_role_arn)
            .set_execution_role_arn(td.execution_role_arn)
            .set_network_mode(td.network_mode)
            .set_container_definitions(td.container_definitions)
            .set_volumes(td.volumes)
            .set_placement_constraints(td.placement_constraints)
            .set_requires_compatibilities(td.requires_compatibilities)
            .set_cpu(td.cpu)
            .set_memory(td.memory)
            .set_pid_mode(td.pid_mode)
            .set_ipc_mode(td.ipc_mode)
            .set_proxy_configuration(td.proxy_configuration)
            .set_ephemeral_storage(td.ephemeral_storage)
            .set_runtime_platform(td.runtime_platform)
            .set_enable_fault_injection(td.enable_fault_injection)
            .set_tags(if tags.is_empty() { None } else { Some(tags) });
        let output = retry::send(SERVICE, "RegisterTaskDefinition", || request.clone().send())
            .await
            .map_err(|e| AwsError::from_sdk(SERVICE, "RegisterTaskDefinition", e))?;
        output.task_definition.ok_or_else(|| {
            AwsError::unexpected(
                SERVICE,
                "RegisterTaskDefinition",
                "no taskDefinition in the answer",
            )
        })
    }
}
