//! One deployment abstraction, two engines: what a deployment backend does, with a
//! CodeDeploy and an ECS-native implementation side by side.
//!
//! A backend reads what the exactly-once rule needs ([`History`]), starts a
//! deployment of a digest-pinned task definition, lists and stops what is in
//! flight. Handlers pick the backend for a service with [`Backends::for_service`]
//! (the one place that looks at the service's path) and read the same for both:
//!
//! | | CodeDeploy | ECS-native |
//! |---|---|---|
//! | deployment id | `d-…` | the service deployment ARN |
//! | start | CreateDeployment with an inline AppSpec | UpdateService to the new task definition |
//! | image of a deployment | the marker in its description | its target service revision's container image |
//! | in flight | Created, Queued, InProgress, Baking, Ready | PENDING, IN_PROGRESS, STOP_REQUESTED, ROLLBACK_REQUESTED, ROLLBACK_IN_PROGRESS |
//! | stop with rollback | StopDeployment(autoRollbackEnabled) | StopServiceDeployment(ROLLBACK) |
//! | hook answer | PutLifecycleEventHookExecutionStatus | the invocation's return value |

use serde::Serialize;

use crate::aws::codedeploy::DeploymentStopper;
use crate::aws::ecs::ECS_IN_FLIGHT;
use crate::aws::{AwsError, CodeDeploy, DeploymentSummary, Ecs, IN_FLIGHT_STATUSES};
use crate::config::ServiceConfig;
use crate::marker::DeploymentMarker;
use crate::LifecycleEvent;

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

/// Outcome of a stop with rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum StopOutcome {
    /// The engine accepted the stop.
    Stopping { status: String },
    /// The deployment had already finished or been stopped: nothing to do.
    AlreadyDone { reason: String },
}

/// What a backend needs to start a deployment: the registered, digest-pinned task
/// definition and the image it pins.
#[derive(Debug, Clone)]
pub struct StartRequest<'a> {
    pub task_definition_arn: &'a str,
    pub container_port: u16,
    pub repository: &'a str,
    pub image_tag: &'a str,
    pub image_digest: &'a str,
}

/// Why a backend could not start a deployment.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// Set-up that retrying cannot fix (an unset environment variable).
    #[error("{0}")]
    Setup(String),
}

/// Why an operator's stop could not be made.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StopError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("{0}")]
    Unsupported(String),
}

/// Every backend a function may need, built once at init.
pub struct Backends {
    pub codedeploy: CodeDeploy,
    pub ecs: Ecs,
    /// `GREENLIGHT_HOOK_FUNCTION`: the hook function the AppSpec names.
    pub hook_pattern: Option<String>,
}

/// The backend of one service.
#[derive(Clone, Copy)]
pub enum Backend<'a> {
    CodeDeploy {
        client: &'a CodeDeploy,
        application: &'a str,
        group: &'a str,
        deployment_config: Option<&'a str>,
        hooks: &'a [LifecycleEvent],
        hook_pattern: Option<&'a str>,
        container: &'a str,
    },
    EcsNative {
        ecs: &'a Ecs,
        cluster: &'a str,
        service: &'a str,
        container: &'a str,
    },
}

impl Backends {
    /// The backend that runs `service`'s deployments; `None` for pipeline services,
    /// whose pipeline runs them.
    pub fn for_service<'a>(&'a self, service: &'a ServiceConfig) -> Option<Backend<'a>> {
        use crate::config::DeployTarget;
        match &service.target {
            DeployTarget::CodeDeploy(cd) => Some(Backend::CodeDeploy {
                client: &self.codedeploy,
                application: &cd.application,
                group: &cd.deployment_group,
                deployment_config: cd.deployment_config.as_deref(),
                hooks: &cd.hooks,
                hook_pattern: self.hook_pattern.as_deref(),
                container: &service.container,
            }),
            DeployTarget::EcsNative(_) => Some(Backend::EcsNative {
                ecs: &self.ecs,
                cluster: &service.cluster,
                service: &service.service,
                container: &service.container,
            }),
            DeployTarget::Pipeline(_) => None,
        }
    }
}

impl Backend<'_> {
    /// A short name of where deployments run, for messages: `web-app/web-dg`, `prod/web`.
    pub fn target(&self) -> String {
        match self {
            Backend::CodeDeploy {
                application, group, ..
            } => format!("{application}/{group}"),
            Backend::EcsNative {
                cluster, service, ..
            } => format!("{cluster}/{service} (ECS blue/green)"),
        }
    }

    /// Deployments in flight, and those created since `since_ms`.
    pub async fn history(&self, since_ms: i64) -> Result<History, AwsError> {
        match *self {
            Backend::CodeDeploy {
                client,
                application,
                group,
                ..
            } => {
                let history = client.group_history(application, group, since_ms).await?;
                Ok(History {
                    in_flight: history.in_flight.into_iter().map(codedeploy_view).collect(),
                    since: history.since.into_iter().map(codedeploy_view).collect(),
                })
            }
            Backend::EcsNative {
                ecs,
                cluster,
                service,
                container,
            } => ecs_history(ecs, cluster, service, container, since_ms).await,
        }
    }

    /// The ids of the deployments in flight.
    pub async fn in_flight(&self) -> Result<Vec<String>, AwsError> {
        match *self {
            Backend::CodeDeploy {
                client,
                application,
                group,
                ..
            } => client.in_flight(application, group).await,
            Backend::EcsNative {
                ecs,
                cluster,
                service,
                ..
            } => Ok(ecs
                .list_service_deployments(cluster, service, &ECS_IN_FLIGHT, None)
                .await?
                .into_iter()
                .filter_map(|b| b.service_deployment_arn)
                .collect()),
        }
    }

    /// An operator's stop (`greenlight stop`): with rollback, or (CodeDeploy only)
    /// without. ECS accepts only ROLLBACK for StopServiceDeployment [API reference,
    /// StopServiceDeployment `stopType`], so a stop without rollback is refused there.
    pub async fn stop(&self, id: &str, rollback: bool) -> Result<StopOutcome, StopError> {
        match (*self, rollback) {
            (_, true) => Ok(self.stop_with_rollback(id).await?),
            (Backend::CodeDeploy { client, .. }, false) => Ok(client.stop(id, false).await?),
            (Backend::EcsNative { .. }, false) => Err(StopError::Unsupported(
                "ECS stops a service deployment only with rollback (StopServiceDeployment stopType ROLLBACK); leave out --no-rollback".into(),
            )),
        }
    }

    pub async fn stop_with_rollback(&self, id: &str) -> Result<StopOutcome, AwsError> {
        match *self {
            Backend::CodeDeploy { client, .. } => client.stop_with_rollback(id).await,
            Backend::EcsNative { ecs, .. } => ecs.stop_service_deployment(id).await,
        }
    }

    /// The deployment a state-change event reports as ended. CodeDeploy's event
    /// names it (`id`); ECS's names only the service's `ecs-svc/…` id, so the
    /// newest finished service deployment of the service is taken.
    pub async fn ended(&self, id: Option<&str>) -> Result<Option<DeploymentView>, AwsError> {
        match *self {
            Backend::CodeDeploy { client, .. } => {
                use crate::aws::codedeploy::DeploymentReader;
                match id {
                    Some(id) => Ok(Some(codedeploy_view(client.deployment(id).await?))),
                    None => Ok(None),
                }
            }
            Backend::EcsNative {
                ecs,
                cluster,
                service,
                container,
            } => {
                use aws_sdk_ecs::types::ServiceDeploymentStatus as S;
                let day_ago = now_ms() - 24 * 60 * 60 * 1000;
                let finished = ecs
                    .list_service_deployments(
                        cluster,
                        service,
                        &[
                            S::Successful,
                            S::Stopped,
                            S::RollbackSuccessful,
                            S::RollbackFailed,
                        ],
                        Some(day_ago),
                    )
                    .await?;
                let Some(newest) = finished
                    .into_iter()
                    .max_by_key(|b| b.created_at().and_then(|t| t.to_millis().ok()))
                else {
                    return Ok(None);
                };
                let (image_tag, digest) = match newest.target_service_revision_arn() {
                    Some(revision) => {
                        use crate::aws::ecs::ServiceRules;
                        ecs.revision_image(revision, container).await?
                    }
                    None => (None, None),
                };
                let status = newest
                    .status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default();
                Ok(Some(DeploymentView {
                    id: newest
                        .service_deployment_arn()
                        .unwrap_or_default()
                        .to_string(),
                    phase: ecs_phase(&status),
                    status,
                    created_at: newest.created_at().and_then(|t| t.to_millis().ok()),
                    image_digest: digest,
                    image_tag,
                }))
            }
        }
    }

    /// Where an in-flight deployment is: its event or stage, the traffic split, its
    /// hooks' results. CodeDeploy: one ListDeploymentTargets + GetDeploymentTarget;
    /// ECS: one DescribeServiceDeployments, plus the revisions' images.
    pub async fn progress(&self, id: &str) -> Result<Progress, AwsError> {
        match *self {
            Backend::CodeDeploy { client, hooks, .. } => {
                use crate::aws::codedeploy::DeploymentReader;
                let traffic = client.traffic(id).await?;
                let at = traffic
                    .lifecycle
                    .iter()
                    .find(|(_, status)| status == "InProgress")
                    .map(|(event, _)| event.clone());
                let hooks = traffic
                    .lifecycle
                    .iter()
                    .filter(|(event, _)| {
                        event
                            .parse::<LifecycleEvent>()
                            .is_ok_and(|e| hooks.contains(&e))
                    })
                    .map(|(event, status)| HookResult {
                        hook: event.clone(),
                        status: status.clone(),
                    })
                    .collect();
                Ok(Progress {
                    at,
                    green_production_percent: traffic.green_percent,
                    hooks,
                    production_since_ms: traffic.allow_traffic_started_ms,
                    ..Progress::default()
                })
            }
            Backend::EcsNative { ecs, container, .. } => {
                use crate::aws::ecs::ServiceRules;
                let Some(found) = ecs
                    .service_deployments(&[id.to_string()])
                    .await?
                    .into_iter()
                    .next()
                else {
                    return Ok(Progress::default());
                };
                let target = found.target_service_revision();
                let source = found.source_service_revisions().first();
                let mut progress = Progress {
                    at: found.lifecycle_stage().map(|s| s.as_str().to_string()),
                    green_production_percent: target
                        .and_then(|t| t.requested_production_traffic_weight()),
                    green_test_percent: target.and_then(|t| t.requested_test_traffic_weight()),
                    hooks: found
                        .lifecycle_hook_details()
                        .iter()
                        .map(|h| HookResult {
                            hook: match h.target_arn() {
                                Some(arn) => arn.rsplit(':').next().unwrap_or(arn).to_string(),
                                None => h
                                    .target_type()
                                    .map(|t| t.as_str().to_string())
                                    .unwrap_or_default(),
                            },
                            status: h
                                .status()
                                .map(|s| s.as_str().to_string())
                                .unwrap_or_default(),
                        })
                        .collect(),
                    started_ms: found.started_at().and_then(|t| t.to_millis().ok()),
                    ..Progress::default()
                };
                // While ECS deploys, the service already names the new task definition:
                // production is the source revision.
                if let Some(arn) = source.and_then(|s| s.arn()) {
                    let (tag, digest) = ecs.revision_image(arn, container).await?;
                    progress.production_tag = tag;
                    progress.production_digest = digest;
                }
                if let Some(arn) = target.and_then(|t| t.arn()) {
                    progress.target_tag = ecs.revision_image(arn, container).await?.0;
                }
                Ok(progress)
            }
        }
    }

    /// Which target groups the analysis compares for an in-flight deployment:
    /// CodeDeploy's Green and Blue task sets, or the target group the ECS test
    /// listener rule forwards to and the other one (see [`crate::gate`]).
    pub async fn analysis_targets(
        &self,
        id: &str,
        elb: &impl crate::aws::elb::TrafficReader,
    ) -> Result<crate::gate::Targets, String> {
        match *self {
            Backend::CodeDeploy {
                client,
                application,
                group,
                ..
            } => {
                use crate::aws::codedeploy::DeploymentReader;
                let (traffic, group) = futures::future::try_join(
                    client.traffic(id),
                    client.deployment_group(application, group),
                )
                .await
                .map_err(|e| e.to_string())?;
                crate::gate::codedeploy_targets(
                    &traffic,
                    group.production_listener_arns.first().map(String::as_str),
                    elb,
                )
                .await
            }
            Backend::EcsNative {
                ecs,
                cluster,
                service,
                ..
            } => {
                use crate::aws::ecs::ServiceRules;
                let rules = ecs
                    .listener_rules(cluster, service)
                    .await
                    .map_err(|e| e.to_string())?;
                crate::gate::ecs_targets(&rules, elb).await
            }
        }
    }

    /// Starts a deployment of the registered task definition; returns its id.
    /// `description` carries the marker CodeDeploy keeps (ECS keeps the image itself).
    pub async fn start(
        &self,
        request: &StartRequest<'_>,
        description: &str,
    ) -> Result<String, StartError> {
        match *self {
            Backend::CodeDeploy {
                client,
                application,
                group,
                deployment_config,
                hooks,
                hook_pattern,
                container,
            } => {
                let pattern = match (hook_pattern, hooks.is_empty()) {
                    (Some(pattern), _) => pattern,
                    (None, true) => "",
                    (None, false) => {
                        return Err(StartError::Setup(format!(
                            "{ENV_HOOK_FUNCTION} is not set: the AppSpec cannot name the smoke-test hooks"
                        )))
                    }
                };
                let appspec = render_appspec(
                    request.task_definition_arn,
                    container,
                    request.container_port,
                    hooks,
                    pattern,
                );
                Ok(client
                    .create_deployment(application, group, deployment_config, &appspec, description)
                    .await?)
            }
            Backend::EcsNative {
                ecs,
                cluster,
                service,
                ..
            } => {
                let arn = ecs
                    .update_task_definition(cluster, service, request.task_definition_arn)
                    .await?;
                // ECS names the new deployment in the service's currentServiceDeployment;
                // the task definition is the id of last resort.
                Ok(arn.unwrap_or_else(|| request.task_definition_arn.to_string()))
            }
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Env var: hook function name or ARN for the AppSpec; `{event}` is replaced by the event name.
pub const ENV_HOOK_FUNCTION: &str = "GREENLIGHT_HOOK_FUNCTION";

/// Hook function name for `event`: `GREENLIGHT_HOOK_FUNCTION` with `{event}` replaced.
pub fn hook_function(pattern: &str, event: LifecycleEvent) -> String {
    pattern.replace("{event}", event.as_str())
}

/// The ECS AppSpec (JSON), per the CodeDeploy user guide's "AppSpec file example for an
/// Amazon ECS deployment": version 0.0, one TargetService, hooks as a list of one-key maps.
pub fn render_appspec(
    task_definition_arn: &str,
    container: &str,
    port: u16,
    hooks: &[LifecycleEvent],
    hook_pattern: &str,
) -> String {
    use serde_json::{json, Value};
    let hooks: Vec<Value> = hooks
        .iter()
        .map(|event| json!({ event.as_str(): hook_function(hook_pattern, *event) }))
        .collect();
    let mut appspec = json!({
        "version": 0.0,
        "Resources": [{
            "TargetService": {
                "Type": "AWS::ECS::Service",
                "Properties": {
                    "TaskDefinition": task_definition_arn,
                    "LoadBalancerInfo": { "ContainerName": container, "ContainerPort": port }
                }
            }
        }]
    });
    if !hooks.is_empty() {
        appspec["Hooks"] = Value::Array(hooks);
    }
    appspec.to_string()
}

fn codedeploy_view(summary: DeploymentSummary) -> DeploymentView {
    let marker = summary
        .description
        .as_deref()
        .and_then(DeploymentMarker::parse)
        .unwrap_or_default();
    let phase = match summary.status.as_str() {
        s if IN_FLIGHT_STATUSES.contains(&s) => Phase::InFlight,
        "Succeeded" => Phase::Succeeded,
        "Stopped" => Phase::Stopped,
        _ => Phase::Failed,
    };
    DeploymentView {
        id: summary.deployment_id,
        phase,
        status: summary.status,
        created_at: summary.created_at,
        image_digest: marker.image_digest,
        image_tag: marker.image_tag,
    }
}

/// ECS's service deployment status as a phase [developer guide, "View service
/// history using Amazon ECS service deployments": pending, ongoing, completed].
pub fn ecs_phase(status: &str) -> Phase {
    match status {
        "PENDING"
        | "IN_PROGRESS"
        | "STOP_REQUESTED"
        | "ROLLBACK_REQUESTED"
        | "ROLLBACK_IN_PROGRESS" => Phase::InFlight,
        "SUCCESSFUL" => Phase::Succeeded,
        "STOPPED" => Phase::Stopped,
        // ROLLBACK_SUCCESSFUL, ROLLBACK_FAILED, and statuses ECS may add.
        _ => Phase::Failed,
    }
}

/// The digest `container` runs in a service revision: its resolved `imageDigest`,
/// else the digest the image reference pins.
pub fn revision_digest(
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

async fn ecs_history(
    ecs: &Ecs,
    cluster: &str,
    service: &str,
    container: &str,
    since_ms: i64,
) -> Result<History, AwsError> {
    let in_flight = ecs.list_service_deployments(cluster, service, &ECS_IN_FLIGHT, None);
    let recent = ecs.list_service_deployments(cluster, service, &[], Some(since_ms));
    let (in_flight, recent) = futures::future::try_join(in_flight, recent).await?;
    let mut revisions: Vec<String> = in_flight
        .iter()
        .chain(&recent)
        .filter_map(|b| b.target_service_revision_arn.clone())
        .collect();
    revisions.sort();
    revisions.dedup();
    let described = if revisions.is_empty() {
        Vec::new()
    } else {
        ecs.service_revisions(&revisions).await?
    };
    let digest_of = |revision: Option<&str>| {
        described
            .iter()
            .find(|r| r.service_revision_arn() == revision)
            .and_then(|r| revision_digest(r, container))
    };
    let view = |brief: &aws_sdk_ecs::types::ServiceDeploymentBrief| {
        let status = brief
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        DeploymentView {
            id: brief
                .service_deployment_arn()
                .unwrap_or_default()
                .to_string(),
            phase: ecs_phase(&status),
            status,
            created_at: brief.created_at().and_then(|t| t.to_millis().ok()),
            image_digest: digest_of(brief.target_service_revision_arn()),
            image_tag: None,
        }
    };
    Ok(History {
        in_flight: in_flight
            .iter()
            .map(view)
            .filter(|v| v.phase == Phase::InFlight)
            .collect(),
        since: recent
            .iter()
            .map(view)
            .filter(|v| v.created_at.is_none_or(|c| c >= since_ms))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecs_statuses_map_to_phases() {
        for s in [
            "PENDING",
            "IN_PROGRESS",
            "STOP_REQUESTED",
            "ROLLBACK_REQUESTED",
            "ROLLBACK_IN_PROGRESS",
        ] {
            assert_eq!(ecs_phase(s), Phase::InFlight, "{s}");
        }
        assert_eq!(ecs_phase("SUCCESSFUL"), Phase::Succeeded);
        assert_eq!(ecs_phase("STOPPED"), Phase::Stopped);
        assert_eq!(ecs_phase("ROLLBACK_SUCCESSFUL"), Phase::Failed);
        assert_eq!(ecs_phase("SOMETHING_NEW"), Phase::Failed);
        let statuses: Vec<&str> = ECS_IN_FLIGHT.iter().map(|s| s.as_str()).collect();
        assert!(statuses.iter().all(|s| ecs_phase(s) == Phase::InFlight));
    }

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

    /// The ECS-native backend reads history from ListServiceDeployments (in flight;
    /// created since) and each deployment's image from its target revision.
    #[tokio::test]
    async fn the_ecs_native_backend_reads_a_bounded_history_with_images() {
        use aws_sdk_ecs::operation::describe_service_revisions::DescribeServiceRevisionsOutput;
        use aws_sdk_ecs::operation::list_service_deployments::ListServiceDeploymentsOutput;
        use aws_sdk_ecs::types::{
            ContainerImage, ServiceDeploymentBrief, ServiceDeploymentStatus, ServiceRevision,
        };
        use aws_smithy_mocks::{mock, mock_client, RuleMode};
        let digest = format!("sha256:{}", "b".repeat(64));
        let brief = |arn: &str, status: ServiceDeploymentStatus, created: i64, revision: &str| {
            ServiceDeploymentBrief::builder()
                .service_deployment_arn(arn)
                .status(status)
                .created_at(aws_smithy_types::DateTime::from_secs(created))
                .target_service_revision_arn(revision)
                .build()
        };
        let in_flight = mock!(aws_sdk_ecs::Client::list_service_deployments)
            .match_requests(|r| !r.status().is_empty() && r.created_at().is_none())
            .then_output(move || {
                ListServiceDeploymentsOutput::builder()
                    .service_deployments(brief(
                        "sd-live",
                        ServiceDeploymentStatus::InProgress,
                        100,
                        "rev-2",
                    ))
                    .build()
            });
        let since = mock!(aws_sdk_ecs::Client::list_service_deployments)
            .match_requests(|r| {
                r.status().is_empty()
                    && r.created_at().and_then(|c| c.after()).map(|t| t.secs()) == Some(90)
            })
            .then_output(move || {
                ListServiceDeploymentsOutput::builder()
                    .service_deployments(brief(
                        "sd-live",
                        ServiceDeploymentStatus::InProgress,
                        100,
                        "rev-2",
                    ))
                    .service_deployments(brief(
                        "sd-old",
                        ServiceDeploymentStatus::RollbackSuccessful,
                        95,
                        "rev-1",
                    ))
                    .build()
            });
        let image = digest.clone();
        let revisions =
            mock!(aws_sdk_ecs::Client::describe_service_revisions).then_output(move || {
                DescribeServiceRevisionsOutput::builder()
                    .service_revisions(
                        ServiceRevision::builder()
                            .service_revision_arn("rev-2")
                            .container_images(
                                ContainerImage::builder()
                                    .container_name("web")
                                    .image_digest(&image)
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            });
        let ecs = Ecs::new(mock_client!(
            aws_sdk_ecs,
            RuleMode::MatchAny,
            [&in_flight, &since, &revisions]
        ));
        let backend = Backend::EcsNative {
            ecs: &ecs,
            cluster: "prod",
            service: "web",
            container: "web",
        };

        let history = backend.history(90_000).await.unwrap();

        assert_eq!(history.in_flight.len(), 1);
        assert_eq!(history.in_flight[0].id, "sd-live");
        assert_eq!(
            history.in_flight[0].image_digest.as_deref(),
            Some(digest.as_str())
        );
        assert_eq!(history.since.len(), 2);
        let old = history.since.iter().find(|d| d.id == "sd-old").unwrap();
        assert_eq!(old.phase, Phase::Failed);
        assert_eq!(
            old.image_digest, None,
            "rev-1 was not described: no image claimed"
        );
        assert_eq!(
            revisions.num_calls(),
            1,
            "one DescribeServiceRevisions for both revisions"
        );
    }

    /// The CodeDeploy backend reads the image from the marker in each description.
    #[test]
    fn codedeploy_views_take_the_image_from_the_marker() {
        let summary = DeploymentSummary {
            deployment_id: "d-1".into(),
            application: "a".into(),
            deployment_group: "g".into(),
            status: "Stopped".into(),
            description: Some(
                "Greenlight: web-app:v2 [greenlight service=web tag=v2 digest=sha256:ab]".into(),
            ),
            created_at: Some(5),
        };
        let view = codedeploy_view(summary);
        assert_eq!(view.phase, Phase::Stopped);
        assert_eq!(view.image_digest.as_deref(), Some("sha256:ab"));
        assert_eq!(view.image_tag.as_deref(), Some("v2"));
        let in_flight = codedeploy_view(DeploymentSummary {
            status: "Ready".into(),
            description: None,
            ..DeploymentSummary {
                deployment_id: "d-2".into(),
                application: "a".into(),
                deployment_group: "g".into(),
                status: String::new(),
                description: None,
                created_at: None,
            }
        });
        assert_eq!(in_flight.phase, Phase::InFlight);
        assert_eq!(in_flight.image_digest, None);
    }

    #[test]
    fn appspec_names_the_task_definition_container_port_and_hooks() {
        let appspec = render_appspec(
            "arn:td:8",
            "web",
            8080,
            &[
                LifecycleEvent::AfterAllowTestTraffic,
                LifecycleEvent::AfterAllowTraffic,
            ],
            "CodeDeployHook_greenlight-{event}",
        );
        let v: serde_json::Value = serde_json::from_str(&appspec).unwrap();
        let props = &v["Resources"][0]["TargetService"]["Properties"];
        assert_eq!(
            v["Resources"][0]["TargetService"]["Type"],
            "AWS::ECS::Service"
        );
        assert_eq!(props["TaskDefinition"], "arn:td:8");
        assert_eq!(props["LoadBalancerInfo"]["ContainerName"], "web");
        assert_eq!(props["LoadBalancerInfo"]["ContainerPort"], 8080);
        assert_eq!(
            v["Hooks"][0]["AfterAllowTestTraffic"],
            "CodeDeployHook_greenlight-AfterAllowTestTraffic"
        );
        assert_eq!(
            v["Hooks"][1]["AfterAllowTraffic"],
            "CodeDeployHook_greenlight-AfterAllowTraffic"
        );
        let single = render_appspec(
            "a",
            "web",
            80,
            &[LifecycleEvent::AfterAllowTestTraffic],
            "arn:aws:lambda:us-east-1:1:function:hook",
        );
        assert!(single
            .contains(r#"{"AfterAllowTestTraffic":"arn:aws:lambda:us-east-1:1:function:hook"}"#));
        assert!(!render_appspec("a", "web", 80, &[], "").contains("Hooks"));
    }
}
