//! ECS: the service's current task definition (`ecs:DescribeServices`,
//! `ecs:DescribeTaskDefinition`) and registering new revisions (`ecs:RegisterTaskDefinition`).

use aws_sdk_ecs::types::{
    CreatedAt, DeploymentLifecycleHookAction, Service, ServiceDeployment, ServiceDeploymentBrief,
    ServiceDeploymentStatus, ServiceRevision, StopServiceDeploymentStopType, Tag, TaskDefinition,
    TaskDefinitionField,
};
use aws_sdk_ecs::Client;

use super::{retry, AwsError, LazyClient};

const SERVICE: &str = "ECS";

/// A task definition as ECS returned it, with its tags.
#[derive(Debug, Clone)]
pub struct CurrentTaskDefinition {
    pub task_definition: TaskDefinition,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone)]
pub struct Ecs {
    client: LazyClient<Client>,
}

impl Ecs {
    pub fn new(client: Client) -> Self {
        Ecs {
            client: LazyClient::ready(client, Client::new),
        }
    }

    /// The client is built on first use (the hook and alarm-rollback need ECS only
    /// for ECS-native services).
    pub fn from_conf(config: &aws_config::SdkConfig) -> Self {
        Ecs {
            client: LazyClient::deferred(config, Client::new),
        }
    }

    pub fn client(&self) -> &Client {
        self.client.get()
    }

    /// The task definition the service runs now.
    pub async fn service_task_definition(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<CurrentTaskDefinition, AwsError> {
        let services = retry::call(SERVICE, "DescribeServices", || {
            self.client
                .get()
                .describe_services()
                .cluster(cluster)
                .services(service)
                .send()
        })
        .await?;
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
        let output = retry::call(SERVICE, "DescribeTaskDefinition", || {
            self.client
                .get()
                .describe_task_definition()
                .task_definition(arn)
                .include(TaskDefinitionField::Tags)
                .send()
        })
        .await?;
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
            .get()
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
        let output =
            retry::call(SERVICE, "RegisterTaskDefinition", || request.clone().send()).await?;
        output.task_definition.ok_or_else(|| {
            AwsError::unexpected(
                SERVICE,
                "RegisterTaskDefinition",
                "no taskDefinition in the answer",
            )
        })
    }
}

/// ECS-native blue/green: service deployments (`ecs:UpdateService`,
/// `ecs:ListServiceDeployments`, `ecs:DescribeServiceDeployments`,
/// `ecs:DescribeServiceRevisions`, `ecs:StopServiceDeployment`,
/// `ecs:ContinueServiceDeployment`).
impl Ecs {
    /// Starts a service deployment of `task_definition` (UpdateService); returns the
    /// service deployment ARN ECS reports as current, when it reports one.
    pub(crate) async fn update_task_definition(
        &self,
        cluster: &str,
        service: &str,
        task_definition: &str,
    ) -> Result<Option<String>, AwsError> {
        let output = retry::call(SERVICE, "UpdateService", || {
            self.client
                .get()
                .update_service()
                .cluster(cluster)
                .service(service)
                .task_definition(task_definition)
                .send()
        })
        .await?;
        Ok(output.service.and_then(|s| s.current_service_deployment))
    }

    /// Every page of ListServiceDeployments for one service, filtered by `statuses`
    /// (empty: any) and creation time (`created_after_ms`).
    pub async fn list_service_deployments(
        &self,
        cluster: &str,
        service: &str,
        statuses: &[ServiceDeploymentStatus],
        created_after_ms: Option<i64>,
    ) -> Result<Vec<ServiceDeploymentBrief>, AwsError> {
        let mut request = self
            .client
            .get()
            .list_service_deployments()
            .cluster(cluster)
            .service(service)
            .set_status((!statuses.is_empty()).then(|| statuses.to_vec()));
        if let Some(after) = created_after_ms {
            request = request.created_at(
                CreatedAt::builder()
                    .after(aws_smithy_types::DateTime::from_millis(after))
                    .build(),
            );
        }
        let mut briefs = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let page = retry::call(SERVICE, "ListServiceDeployments", || {
                request.clone().set_next_token(next_token.clone()).send()
            })
            .await?;
            briefs.extend(page.service_deployments.unwrap_or_default());
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(token) => next_token = Some(token),
                None => return Ok(briefs),
            }
        }
    }

    /// DescribeServiceDeployments, at most 20 ARNs a call.
    pub async fn service_deployments(
        &self,
        arns: &[String],
    ) -> Result<Vec<ServiceDeployment>, AwsError> {
        in_batches(arns, |batch| async move {
            let output = retry::call(SERVICE, "DescribeServiceDeployments", || {
                self.client
                    .get()
                    .describe_service_deployments()
                    .set_service_deployment_arns(Some(batch.clone()))
                    .send()
            })
            .await?;
            Ok(output.service_deployments.unwrap_or_default())
        })
        .await
    }

    /// DescribeServiceRevisions, at most 20 ARNs a call.
    pub async fn service_revisions(
        &self,
        arns: &[String],
    ) -> Result<Vec<ServiceRevision>, AwsError> {
        in_batches(arns, |batch| async move {
            let output = retry::call(SERVICE, "DescribeServiceRevisions", || {
                self.client
                    .get()
                    .describe_service_revisions()
                    .set_service_revision_arns(Some(batch.clone()))
                    .send()
            })
            .await?;
            Ok(output.service_revisions.unwrap_or_default())
        })
        .await
    }

    /// StopServiceDeployment with ROLLBACK. A deployment that already finished is
    /// reported as such, not as an error (an alarm that fired late is a success).
    pub async fn stop_service_deployment(&self, arn: &str) -> Result<super::StopOutcome, AwsError> {
        use super::StopOutcome;
        let result = retry::send(SERVICE, "StopServiceDeployment", || {
            self.client
                .get()
                .stop_service_deployment()
                .service_deployment_arn(arn)
                .stop_type(StopServiceDeploymentStopType::Rollback)
                .send()
        })
        .await;
        match result {
            Ok(_) => Ok(StopOutcome::Stopping {
                status: "ROLLBACK_REQUESTED".into(),
            }),
            // ECS answers a stop of a finished deployment with a conflict (409
            // ConflictException) [API reference, StopServiceDeployment errors].
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conflict_exception()) =>
            {
                Ok(StopOutcome::AlreadyDone {
                    reason: "ConflictException".into(),
                })
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_service_deployment_not_found_exception()) =>
            {
                Ok(StopOutcome::AlreadyDone {
                    reason: "ServiceDeploymentNotFoundException".into(),
                })
            }
            Err(e) => Err(AwsError::from_sdk(SERVICE, "StopServiceDeployment", e)),
        }
    }

    /// ContinueServiceDeployment: answers a PAUSE hook awaiting action.
    pub async fn continue_service_deployment(
        &self,
        arn: &str,
        hook_id: &str,
        action: DeploymentLifecycleHookAction,
    ) -> Result<(), AwsError> {
        retry::call(SERVICE, "ContinueServiceDeployment", || {
            self.client
                .get()
                .continue_service_deployment()
                .service_deployment_arn(arn)
                .hook_id(hook_id)
                .action(action.clone())
                .send()
        })
        .await?;
        Ok(())
    }

    /// The service as ECS describes it (DescribeServices).
    pub async fn service(&self, cluster: &str, service: &str) -> Result<Service, AwsError> {
        let output = retry::call(SERVICE, "DescribeServices", || {
            self.client
                .get()
                .describe_services()
                .cluster(cluster)
                .services(service)
                .send()
        })
        .await?;
        output
            .services
            .unwrap_or_default()
            .into_iter()
            .next()
            .ok_or_else(|| {
                AwsError::unexpected(
                    SERVICE,
                    "DescribeServices",
                    format!("service {service} not found in cluster {cluster}"),
                )
            })
    }
}

/// Service deployment statuses ECS counts as ongoing or pending [developer guide,
/// "View service history using Amazon ECS service deployments"].
pub(crate) const ECS_IN_FLIGHT: [ServiceDeploymentStatus; 5] = [
    ServiceDeploymentStatus::Pending,
    ServiceDeploymentStatus::InProgress,
    ServiceDeploymentStatus::StopRequested,
    ServiceDeploymentStatus::RollbackRequested,
    ServiceDeploymentStatus::RollbackInProgress,
];

/// What the lifecycle hook reads about an ECS-native service (`ecs:DescribeServices`,
/// `ecs:DescribeServiceRevisions`, `ecs:DescribeTaskDefinition`).
pub trait ServiceRules: Send + Sync {
    /// The test and production listener rules the service's deployments move.
    fn listener_rules(
        &self,
        cluster: &str,
        service: &str,
    ) -> impl std::future::Future<Output = Result<ListenerRules, AwsError>> + Send;

    /// The stages at which the service's PAUSE hooks wait for ContinueServiceDeployment.
    fn pause_stages(
        &self,
        cluster: &str,
        service: &str,
    ) -> impl std::future::Future<Output = Result<Vec<String>, AwsError>> + Send;

    /// The image tag and digest `container` runs in a service revision: the tag from
    /// the task definition Greenlight tagged, the digest from the revision.
    fn revision_image(
        &self,
        revision_arn: &str,
        container: &str,
    ) -> impl std::future::Future<Output = Result<(Option<String>, Option<String>), AwsError>> + Send;
}

/// `loadBalancers[].advancedConfiguration` listener rules of a service.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListenerRules {
    pub test: Option<String>,
    pub production: Option<String>,
    /// `targetGroupArn` and `advancedConfiguration.alternateTargetGroupArn`: green is
    /// whichever the test listener rule forwards to during a deployment.
    pub target_groups: Vec<String>,
    /// Percent of production traffic the first step moves to green: CANARY's
    /// `canaryPercent`, LINEAR's `stepPercent`, else (BLUE_GREEN) 100.
    pub first_step_percent: f64,
}

impl ServiceRules for Ecs {
    async fn listener_rules(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<ListenerRules, AwsError> {
        let service = self.service(cluster, service).await?;
        let advanced = service
            .load_balancers()
            .iter()
            .find_map(|lb| lb.advanced_configuration());
        let mut target_groups: Vec<String> = Vec::new();
        for lb in service.load_balancers() {
            target_groups.extend(lb.target_group_arn().map(str::to_string));
            target_groups.extend(
                lb.advanced_configuration()
                    .and_then(|a| a.alternate_target_group_arn())
                    .map(str::to_string),
            );
        }
        let config = service.deployment_configuration();
        let first_step_percent = match config.and_then(|c| c.strategy()).map(|s| s.as_str()) {
            Some("CANARY") => config
                .and_then(|c| c.canary_configuration())
                .and_then(|c| c.canary_percent()),
            Some("LINEAR") => config
                .and_then(|c| c.linear_configuration())
                .and_then(|c| c.step_percent()),
            _ => None,
        }
        .unwrap_or(100.0);
        Ok(ListenerRules {
            test: advanced.and_then(|a| a.test_listener_rule().map(str::to_string)),
            production: advanced.and_then(|a| a.production_listener_rule().map(str::to_string)),
            target_groups,
            first_step_percent,
        })
    }

    async fn pause_stages(&self, cluster: &str, service: &str) -> Result<Vec<String>, AwsError> {
        use aws_sdk_ecs::types::DeploymentLifecycleHookTargetType;
        let service = self.service(cluster, service).await?;
        Ok(service
            .deployment_configuration()
            .map(|c| c.lifecycle_hooks())
            .unwrap_or_default()
            .iter()
            .filter(|h| h.target_type() == Some(&DeploymentLifecycleHookTargetType::Pause))
            .flat_map(|h| h.lifecycle_stages().iter().map(|s| s.as_str().to_string()))
            .collect())
    }

    async fn revision_image(
        &self,
        revision_arn: &str,
        container: &str,
    ) -> Result<(Option<String>, Option<String>), AwsError> {
        let revision = self
            .service_revisions(&[revision_arn.to_string()])
            .await?
            .into_iter()
            .next();
        let Some(revision) = revision else {
            return Ok((None, None));
        };
        let digest = revision_digest(&revision, container);
        let tag = match revision.task_definition() {
            Some(td) => self
                .task_definition(td)
                .await?
                .tags
                .iter()
                .find(|t| t.key() == Some("greenlight:image-tag"))
                .and_then(|t| t.value().map(str::to_string)),
            None => None,
        };
        Ok((tag, digest))
    }
}

/// The Describe* calls of service deployments and revisions take at most 20 ARNs:
/// `describe` once per batch, in order.
async fn in_batches<T, F, Fut>(arns: &[String], describe: F) -> Result<Vec<T>, AwsError>
where
    F: Fn(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, AwsError>>,
{
    let mut out = Vec::with_capacity(arns.len());
    for batch in arns.chunks(20) {
        out.extend(describe(batch.to_vec()).await?);
    }
    Ok(out)
}

/// The digest `container` runs in a service revision: its resolved `imageDigest`,
/// else the digest the image reference pins.
pub(crate) fn revision_digest(
    revision: &aws_sdk_ecs::types::ServiceRevision,
    container: &str,
) -> Option<String> {
    let image = revision
        .container_images()
        .iter()
        .find(|c| c.container_name() == Some(container))?;
    image
        .image_digest()
        .map(str::to_string)
        .or_else(|| {
            let (_, digest) = image.image()?.rsplit_once('@')?;
            Some(digest.to_string())
        })
        .filter(|d| d.starts_with("sha256:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revision_digest_comes_from_the_resolved_digest_or_the_pinned_image() {
        use aws_sdk_ecs::types::{ContainerImage, ServiceRevision};
        let digest = format!("sha256:{}", "a".repeat(64));
        let resolved = ServiceRevision::builder()
            .container_images(
                ContainerImage::builder()
                    .container_name("web")
                    .image("repo:v1")
                    .image_digest(&digest)
                    .build(),
            )
            .build();
        assert_eq!(
            revision_digest(&resolved, "web").as_deref(),
            Some(digest.as_str())
        );
        assert_eq!(revision_digest(&resolved, "api"), None);
        let pinned = ServiceRevision::builder()
            .container_images(
                ContainerImage::builder()
                    .container_name("web")
                    .image(format!("repo@{digest}"))
                    .build(),
            )
            .build();
        assert_eq!(
            revision_digest(&pinned, "web").as_deref(),
            Some(digest.as_str())
        );
    }
}
