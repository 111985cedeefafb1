//! The seam: one deployment abstraction, three paths side by side. The path of a
//! service is chosen once, in [`Backends::for_service`], and every verb below
//! dispatches on it here and nowhere else; handlers, the CLI and the rehearsal read
//! the same answers for every path.
//!
//! | | CodeDeploy ([`codedeploy`]) | ECS-native ([`ecs_native`]) | pipeline (`pipeline.rs`) |
//! |---|---|---|---|
//! | deployment id | `d-…` | the service deployment ARN | the execution id |
//! | launch | CreateDeployment with an inline AppSpec | UpdateService to the new task definition | StartPipelineExecution (token per digest) |
//! | image of a deployment | the marker in its description | its target service revision's container image | — |
//! | in flight | Created, Queued, InProgress, Baking, Ready | PENDING, IN_PROGRESS, STOP_REQUESTED, ROLLBACK_REQUESTED, ROLLBACK_IN_PROGRESS | not read |
//! | busy | DeploymentLimitExceededException → [`StartError::Busy`] | ECS replaces the deployment | the pipeline queues |
//! | stop with rollback | StopDeployment(autoRollbackEnabled) | StopServiceDeployment(ROLLBACK) | refused |
//! | alarms | the config's, and the group's own alarm configuration | the config's | none |
//! | hook answer | PutLifecycleEventHookExecutionStatus | the invocation's return value | — |
//! | approval | — | ContinueServiceDeployment at a PAUSE hook | — |

pub mod codedeploy;
pub mod ecs_native;
pub mod pin;
mod pipeline;
mod view;

pub use crate::aws::StopOutcome;
pub use codedeploy::{hook_function, ENV_HOOK_FUNCTION};
pub use view::{
    Approval, ApprovalError, DeploymentTarget, DeploymentView, History, HookResult, Launched,
    Phase, Progress, StartError, StopError,
};

use crate::aws::elb::TrafficReader;
use crate::aws::{AwsError, CodeDeploy, Ecs, Pipelines};
use crate::config::{Config, DeployTarget, ServiceConfig};
use crate::gate::{Targets, TargetsError};
use pin::PinnedImage;

/// Every backend a function may need, built once at init. Clients are built on
/// first use, so a function pays only for the paths its services take.
pub struct Backends {
    pub codedeploy: CodeDeploy,
    pub ecs: Ecs,
    pub pipelines: Pipelines,
    /// `GREENLIGHT_HOOK_FUNCTION`: the hook function the AppSpec names.
    pub hook_pattern: Option<String>,
}

/// The backend of one service: its path, chosen once.
#[derive(Clone, Copy)]
pub struct Backend<'a> {
    service: &'a ServiceConfig,
    ecs: &'a Ecs,
    path: Path<'a>,
}

#[derive(Clone, Copy)]
enum Path<'a> {
    CodeDeploy(codedeploy::Group<'a>),
    EcsNative(ecs_native::Service<'a>),
    Pipeline(pipeline::Pipeline<'a>),
}

impl Backends {
    pub fn from_conf(sdk: &crate::aws::SdkConfig, hook_pattern: Option<String>) -> Backends {
        Backends {
            codedeploy: CodeDeploy::from_conf(sdk),
            ecs: Ecs::from_conf(sdk),
            pipelines: Pipelines::from_conf(sdk),
            hook_pattern,
        }
    }

    /// For a function that reads and stops deployments but never starts one
    /// (alarm-rollback): no CodePipeline client is linked in.
    pub fn for_stopping(sdk: &crate::aws::SdkConfig) -> Backends {
        Backends {
            codedeploy: CodeDeploy::from_conf(sdk),
            ecs: Ecs::from_conf(sdk),
            pipelines: Pipelines::none(),
            hook_pattern: None,
        }
    }

    /// The backend that runs `service`'s deployments.
    pub fn for_service<'a>(&'a self, service: &'a ServiceConfig) -> Backend<'a> {
        let path = match &service.target {
            DeployTarget::CodeDeploy(target) => Path::CodeDeploy(codedeploy::Group {
                client: &self.codedeploy,
                target,
                hook_pattern: self.hook_pattern.as_deref(),
                container: &service.container,
            }),
            DeployTarget::EcsNative(_) => Path::EcsNative(ecs_native::Service {
                ecs: &self.ecs,
                name: &service.name,
                cluster: &service.cluster,
                service: &service.service,
                container: &service.container,
            }),
            DeployTarget::Pipeline(target) => Path::Pipeline(pipeline::Pipeline {
                pipelines: &self.pipelines,
                service: &service.name,
                target,
            }),
        };
        Backend {
            service,
            ecs: &self.ecs,
            path,
        }
    }

    /// The services an alarm guards: those whose configuration lists it, and those
    /// whose CodeDeploy deployment group names it in its own alarm configuration.
    /// What cannot be read is returned beside what could (the listed services are
    /// still found).
    pub async fn guarded_by<'c>(
        &self,
        config: &'c Config,
        alarm: &str,
    ) -> (Vec<&'c ServiceConfig>, Vec<AwsError>) {
        let mut services: Vec<&ServiceConfig> = config
            .services
            .iter()
            .filter(|s| s.alarms.iter().any(|a| a == alarm))
            .collect();
        let (from_groups, errors) =
            codedeploy::services_alarmed_by(&self.codedeploy, config, alarm).await;
        services.extend(from_groups);
        (services, errors)
    }
}

/// What a service's path needs of the account, for `greenlight preflight` to verify:
/// the seam says which, the checker knows how to look.
#[derive(Debug, Clone, Copy)]
pub enum Requirement<'a> {
    /// The ECS service's `deploymentController.type`.
    Controller(&'static str),
    /// A CodeDeploy ECS deployment group whose AppSpec hooks name Greenlight's
    /// function, which answers through PutLifecycleEventHookExecutionStatus.
    DeploymentGroup(&'a crate::config::CodeDeployTarget),
    /// ECS-native blue/green: the service's Lambda lifecycle hooks name Greenlight's
    /// function at these stages, and the invocation's return value is the answer.
    LifecycleHooks(&'a crate::config::EcsNativeTarget),
}

/// The requirements of `service`'s path (a pipeline's set-up is the pipeline's).
pub fn requirements(service: &ServiceConfig) -> Vec<Requirement<'_>> {
    match &service.target {
        DeployTarget::CodeDeploy(target) => vec![
            Requirement::Controller("CODE_DEPLOY"),
            Requirement::DeploymentGroup(target),
        ],
        DeployTarget::EcsNative(target) => vec![
            Requirement::Controller("ECS"),
            Requirement::LifecycleHooks(target),
        ],
        DeployTarget::Pipeline(_) => Vec::new(),
    }
}

/// Whether some service's deployments must name Greenlight's hook function
/// (`GREENLIGHT_HOOK_FUNCTION`): a CodeDeploy AppSpec with hooks.
pub fn hook_pattern_needed(config: &Config) -> bool {
    config.services.iter().any(codedeploy::needs_hook_pattern)
}

impl<'a> Backend<'a> {
    /// A short name of where deployments run, for messages: `web-app/web-dg`,
    /// `prod/web (ECS blue/green)`, `pipeline web-release`.
    pub fn target(&self) -> String {
        match &self.path {
            Path::CodeDeploy(p) => p.target(),
            Path::EcsNative(p) => p.target(),
            Path::Pipeline(p) => p.target(),
        }
    }

    /// Where the alarm path reports a service's deployments run; `None` for a
    /// pipeline, whose deployments Greenlight does not stop.
    pub fn deployment_target(&self) -> Option<DeploymentTarget> {
        match &self.path {
            Path::CodeDeploy(p) => Some(DeploymentTarget::CodeDeploy {
                application: p.target.application.clone(),
                deployment_group: p.target.deployment_group.clone(),
            }),
            Path::EcsNative(p) => Some(DeploymentTarget::EcsNative {
                cluster: p.cluster.to_string(),
                ecs_service: p.service.to_string(),
            }),
            Path::Pipeline(_) => None,
        }
    }

    /// Deployments in flight, and those created since `since_ms` (a pipeline's are
    /// not read: its token makes a redelivered push start one execution).
    pub async fn history(&self, since_ms: i64) -> Result<History, AwsError> {
        match &self.path {
            Path::CodeDeploy(p) => p.history(since_ms).await,
            Path::EcsNative(p) => p.history(since_ms).await,
            Path::Pipeline(_) => Ok(History::default()),
        }
    }

    /// The ids of the deployments in flight.
    pub async fn in_flight(&self) -> Result<Vec<String>, AwsError> {
        match &self.path {
            Path::CodeDeploy(p) => p.in_flight().await,
            Path::EcsNative(p) => p.in_flight().await,
            Path::Pipeline(_) => Ok(Vec::new()),
        }
    }

    /// Whether an operator may stop this service's deployments at all (a pipeline's
    /// are stopped in the pipeline).
    pub fn stoppable(&self) -> Result<(), StopError> {
        match &self.path {
            Path::Pipeline(p) => Err(p.refuse_stop()),
            _ => Ok(()),
        }
    }

    /// An operator's stop (`greenlight stop`): with rollback, or (CodeDeploy only)
    /// without.
    pub async fn stop(&self, id: &str, rollback: bool) -> Result<StopOutcome, StopError> {
        match &self.path {
            Path::CodeDeploy(p) => p.stop(id, rollback).await,
            Path::EcsNative(p) => p.stop(id, rollback).await,
            Path::Pipeline(p) => Err(p.refuse_stop()),
        }
    }

    /// Stop with rollback: the alarm path, the analysis and a superseding push.
    pub async fn stop_with_rollback(&self, id: &str) -> Result<StopOutcome, AwsError> {
        match &self.path {
            Path::CodeDeploy(p) => p.stop_with_rollback(id).await,
            Path::EcsNative(p) => p.stop_with_rollback(id).await,
            Path::Pipeline(_) => Ok(StopOutcome::AlreadyDone {
                reason: "a pipeline's executions are not stopped by Greenlight".into(),
            }),
        }
    }

    /// The deployment a state-change event reports as ended (`id`: the id the event
    /// names, when it names one).
    pub async fn ended(&self, id: Option<&str>) -> Result<Option<DeploymentView>, AwsError> {
        match &self.path {
            Path::CodeDeploy(p) => p.ended(id).await,
            Path::EcsNative(p) => p.ended().await,
            Path::Pipeline(_) => Ok(None),
        }
    }

    /// Where an in-flight deployment is: its event or stage, the traffic split, its
    /// hooks' results.
    pub async fn progress(&self, id: &str) -> Result<Progress, AwsError> {
        match &self.path {
            Path::CodeDeploy(p) => p.progress(id).await,
            Path::EcsNative(p) => p.progress(id).await,
            Path::Pipeline(_) => Ok(Progress::default()),
        }
    }

    /// Which target groups the analysis compares for an in-flight deployment
    /// (see [`crate::gate`]).
    pub async fn analysis_targets(
        &self,
        id: &str,
        elb: &impl TrafficReader,
    ) -> Result<Targets, TargetsError> {
        match &self.path {
            Path::CodeDeploy(p) => p.analysis_targets(id, elb).await,
            Path::EcsNative(p) => p.analysis_targets(elb).await,
            Path::Pipeline(_) => Err(TargetsError::Unresolved(
                "a pipeline's deployments are not analysed by Greenlight".into(),
            )),
        }
    }

    /// Deploys the pushed image, pinned by digest. An engine path reads the task
    /// definition the service runs (nothing starts if it already runs the digest),
    /// registers it with the image replaced and tagged, and starts the deployment;
    /// a pipeline gets the image in its variable.
    pub async fn launch(&self, image: &PinnedImage<'_>) -> Result<Launched, StartError> {
        match &self.path {
            Path::Pipeline(p) => p.launch(image.uri, image.digest).await,
            Path::CodeDeploy(p) => match self.register(image).await? {
                Registered::Serving(task_definition) => {
                    Ok(Launched::AlreadyServing { task_definition })
                }
                Registered::New(task_definition, port) => {
                    let description = self.description(image);
                    let id = p.start(&task_definition, port, &description).await?;
                    Ok(self.started(id, task_definition))
                }
            },
            Path::EcsNative(p) => match self.register(image).await? {
                Registered::Serving(task_definition) => {
                    Ok(Launched::AlreadyServing { task_definition })
                }
                Registered::New(task_definition, _) => {
                    let id = p.start(&task_definition).await?;
                    Ok(self.started(id, task_definition))
                }
            },
        }
    }

    /// The description CodeDeploy keeps: readable, with the marker later steps read.
    fn description(&self, image: &PinnedImage<'_>) -> String {
        pin::description(
            &self.service.name,
            image.repository,
            image.tag,
            image.digest,
        )
    }

    fn started(&self, deployment_id: String, task_definition: String) -> Launched {
        tracing::Span::current().record("deployment_id", deployment_id.as_str());
        tracing::info!(%deployment_id, target = %self.target(), "deployment started");
        Launched::Deployment {
            deployment_id,
            task_definition,
            target: self.target(),
        }
    }

    /// The digest-pinned task definition registered, or the one the service already
    /// runs when it pins this digest.
    async fn register(&self, image: &PinnedImage<'_>) -> Result<Registered, StartError> {
        let service = self.service;
        let current = self
            .ecs
            .service_task_definition(&service.cluster, &service.service)
            .await?;
        if pin::serving_digest(&current.task_definition, &service.container).as_deref()
            == Some(image.digest)
        {
            let task_definition = current
                .task_definition
                .task_definition_arn()
                .unwrap_or_default()
                .to_string();
            tracing::info!(%task_definition, "the service already runs this image: nothing to do");
            return Ok(Registered::Serving(task_definition));
        }
        let (rendered, port) = pin::render_task_definition(
            &current.task_definition,
            &service.container,
            image.uri,
            service.container_port,
        )?;
        let tags = pin::render_tags(&current.tags, &service.name, image.tag, image.digest);
        let registered = self.ecs.register(&rendered, tags).await?;
        let task_definition = registered.task_definition_arn.unwrap_or_default();
        tracing::info!(%task_definition, "task definition registered with the digest-pinned image");
        Ok(Registered::New(task_definition, port))
    }

    /// Answers the deployment waiting at a PAUSE hook (`greenlight approve`/`reject`).
    pub async fn answer_pause(&self, decision: Approval) -> Result<String, ApprovalError> {
        match &self.path {
            Path::EcsNative(p) => p.answer_pause(decision).await,
            _ => Err(ApprovalError::NotPausable {
                service: self.service.name.clone(),
                path: self.service.path().as_str(),
            }),
        }
    }
}

enum Registered {
    /// The service already runs the digest: its task definition.
    Serving(String),
    /// The registered task definition and the container port.
    New(String, u16),
}
