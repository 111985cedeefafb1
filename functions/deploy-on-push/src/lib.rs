//! Deploy on push: an ECR image push (EventBridge "ECR Image Action") starts a
//! blue/green deployment of every service configured for that repository and tag:
//! through CodeDeploy, through ECS itself (ECS-native blue/green), or by starting a
//! CodePipeline execution, as each service's config says. The paths sit behind one
//! seam, [`greenlight::deploy::Backend`]; this handler reads the same for all.
//!
//! For each matching service:
//! 1. The service's recent deployments decide, by the exactly-once rule in
//!    [`plan::decide_push`], whether the push is new, a duplicate, stale, or meets a
//!    busy service (then `on_busy` decides: queue, supersede or skip).
//! 2. The backend launches it ([`greenlight::deploy::Backend::launch`]): the service's
//!    task definition re-registered with the pushed image pinned by digest, then
//!    CreateDeployment with an inline AppSpec whose hooks point at Greenlight, or
//!    UpdateService to the new task definition; or the pipeline's execution.
//!
//! The same function receives the engines' state-change events ("CodeDeploy
//! Deployment State-change Notification", "ECS Deployment State Change"): a finished
//! deployment is notified, and for `queue`/`supersede` services the newest image
//! pushed meanwhile (from ECR) is deployed next; the images it supersedes are
//! notified as skipped. No database: ECR, CodeDeploy and ECS hold the state.
//!
//! Errors: throttling and 5xx are retried by the SDK; an error that remains is
//! returned, so Lambda retries the event (the exactly-once rule makes a retry safe)
//! and the dead-letter queue keeps it. Errors retrying cannot fix (a container the
//! task definition lacks, a missing group) are notified and the event acknowledged.

pub mod intake;
pub mod plan;
mod promote;
pub mod promotion;
pub mod report;

use greenlight::aws::scheduler::Scheduler;
use greenlight::aws::sns::Publisher;
use greenlight::aws::{AwsError, Ecr};
use greenlight::config::{OnBusy, ServiceConfig};
use greenlight::deploy::{Backend, Backends, Launched, StartError, StopOutcome};
use greenlight::evidence::{Capture, Evidence};
use greenlight::ledger::{Ledger, Trigger};
use greenlight::notify::{Notification, Notifier};
pub use intake::{intake, DeploymentChange, Intake, PushedImage};
use plan::PushDecision;
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument;

pub use greenlight::deploy::ENV_HOOK_FUNCTION;

/// IAM actions this function calls; the template test checks the role grants exactly these.
/// CreateDeployment also needs its dependent actions (the revision and the deployment
/// config are authorized separately), listed after it.
pub const IAM_ACTIONS: &[&str] = &[
    "ecs:DescribeServices",
    "ecs:DescribeTaskDefinition",
    "ecs:RegisterTaskDefinition",
    "ecs:TagResource",
    "ecs:UpdateService",
    "ecs:ListServiceDeployments",
    "ecs:DescribeServiceRevisions",
    "ecs:StopServiceDeployment",
    "iam:PassRole",
    "ecr:DescribeImages",
    "codedeploy:CreateDeployment",
    "codedeploy:GetDeployment",
    "codedeploy:ListDeployments",
    "codedeploy:BatchGetDeployments",
    "codedeploy:StopDeployment",
    "codedeploy:GetDeploymentConfig",
    "codedeploy:RegisterApplicationRevision",
    "codedeploy:GetApplicationRevision",
    "codepipeline:StartPipelineExecution",
    "sns:Publish",
    // The configuration, when it lives in Parameter Store or S3.
    "ssm:GetParameter",
    "s3:GetObject",
    // The release ledger (GREENLIGHT_LEDGER_TABLE): one write per notified step, and
    // the attempts a promotion is verified from.
    "dynamodb:UpdateItem",
    "dynamodb:Query",
    // A promotion's soak (and iam:PassRole above, for the scheduler's role).
    "scheduler:CreateSchedule",
    // A failed deployment's evidence: green's tasks, its log lines, and the checks'
    // secrets to mask out of them.
    "ecs:ListTasks",
    "ecs:DescribeTasks",
    "logs:GetLogEvents",
    "secretsmanager:GetSecretValue",
];

/// How many matching services one push handles at once.
const SERVICE_CONCURRENCY: usize = 4;

/// What happened for one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ServiceOutcome {
    Started {
        deployment_id: String,
        task_definition: String,
        /// Where it runs: `app/group` or `cluster/service (ECS blue/green)`.
        target: String,
    },
    PipelineStarted {
        execution_id: String,
        pipeline: String,
    },
    Duplicate {
        deployment_id: String,
    },
    /// The service already runs this image (pinned by digest).
    AlreadyServing {
        task_definition: String,
    },
    Stale {
        newer_deployment_id: String,
    },
    Queued {
        in_flight_id: String,
    },
    Skipped {
        in_flight_id: String,
    },
    Superseded {
        stopped_id: String,
    },
    FailedToStart {
        reason: String,
        code: Option<String>,
    },
    Finished {
        deployment_id: String,
        state: String,
        image_tag: Option<String>,
        image_digest: Option<String>,
        /// A failure's evidence: green's tasks and log lines.
        #[serde(skip_serializing_if = "Option::is_none")]
        evidence: Option<Box<Evidence>>,
    },
    /// An image queued while a deployment ran, passed over for a newer one.
    QueueSkipped {
        newer_tag: String,
        ended_deployment_id: String,
    },
    NothingQueued,
    /// A verified digest waits out its soak in the source; a one-time schedule
    /// brings the promotion at `at_seconds`.
    PromotionScheduled {
        digest: String,
        from: String,
        at_seconds: i64,
        schedule: String,
    },
    /// Its soak ended; `approval: manual` waits for `greenlight promote`.
    PromotionPending {
        digest: String,
        tag: Option<String>,
        from: String,
    },
    PromotionRefused {
        digest: String,
        reason: String,
    },
}

/// What happened for one service (and the image it concerns): the handler's answer,
/// and what its notification is made from.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceReport {
    pub service: String,
    #[serde(skip)]
    pub image: Option<PushedImage>,
    #[serde(skip)]
    pub region: Option<String>,
    #[serde(flatten)]
    pub outcome: ServiceOutcome,
    /// What started it, when not the handler's own trigger (a promotion).
    #[serde(skip)]
    pub trigger: Option<Trigger>,
    /// The promotion it concerns, if any.
    #[serde(skip)]
    pub promotion: Option<greenlight::events::PromotionDue>,
}

/// Everything deploy-on-push needs, built once at init.
pub struct DeployOnPush<P> {
    pub config: greenlight::config_source::SharedConfig,
    /// The deployment paths (and ECS, which also holds the task definitions).
    pub backends: Backends,
    pub ecr: Ecr,
    pub notifier: Notifier<P>,
    /// Reads a failed deployment's evidence (green's tasks and logs).
    pub capture: Capture,
    /// What starts its deployments, as the ledger records it: a push, or a
    /// person through `greenlight deploy`.
    pub trigger: Trigger,
    /// The release ledger: promotions are verified from it (`None`: unset, and
    /// promotions are refused with why).
    pub ledger: Option<Ledger>,
    /// Where promotion soaks are scheduled (`None`: a soak cannot wait).
    pub scheduler: Option<Scheduler>,
}

impl<P: Publisher> DeployOnPush<P> {
    pub async fn handle(&self, event: Value) -> Result<Value, greenlight::Error> {
        // One document for the whole invocation, even if a refresh swaps it later.
        let config = self.config.load();
        let config = config.as_ref();
        let decision = intake(config, &event)?;
        let mut reports = Vec::new();
        let mut retry: Option<AwsError> = None;
        match &decision {
            Intake::Ignored { reason } => {
                tracing::info!(%reason, "event ignored");
                return Ok(serde_json::to_value(&decision).unwrap_or(Value::Null));
            }
            Intake::Deploy { services, image } => {
                use futures::stream::{self, StreamExt};
                let results: Vec<_> = stream::iter(services)
                    .filter_map(|name| async move { config.service_by_name(name) })
                    .map(|service| {
                        let span = tracing::info_span!("push", service = %service.name, image_tag = %image.tag, digest = %image.digest, deployment_id = tracing::field::Empty);
                        async move { (service, self.deploy(service, image).instrument(span).await) }
                    })
                    .buffered(SERVICE_CONCURRENCY)
                    .collect()
                    .await;
                for (service, result) in results {
                    match result {
                        Ok(outcome) => reports.push(ServiceReport {
                            service: service.name.clone(),
                            image: Some(image.clone()),
                            region: image.region.clone(),
                            outcome,
                            trigger: None,
                            promotion: None,
                        }),
                        Err(e) => retry = retry.or(Some(e)),
                    }
                }
            }
            Intake::DeploymentChanged(change) => {
                let Some(service) = config.service_by_name(&change.service) else {
                    return Ok(serde_json::to_value(&decision).unwrap_or(Value::Null));
                };
                let span = tracing::info_span!("state_change", service = %service.name, deployment_id = change.deployment_id.as_deref().unwrap_or(""), state = %change.state);
                match self
                    .on_state_change(service, change, &config.redact)
                    .instrument(span.clone())
                    .await
                {
                    Ok(outcomes) => {
                        reports.extend(outcomes.into_iter().map(|(image, outcome)| ServiceReport {
                            service: service.name.clone(),
                            image,
                            region: change.region.clone(),
                            outcome,
                            trigger: None,
                            promotion: None,
                        }))
                    }
                    Err(e) => retry = Some(e),
                }
                // A success of a service others promote from makes their promotions due.
                let succeeded = reports.iter().find_map(|r| match &r.outcome {
                    ServiceOutcome::Finished {
                        deployment_id,
                        state,
                        image_digest: Some(digest),
                        ..
                    } if state == "SUCCESS" => Some((deployment_id.clone(), digest.clone())),
                    _ => None,
                });
                if let Some((id, digest)) = succeeded {
                    let region = change.region.clone().unwrap_or_else(region_from_env);
                    match self
                        .after_success(config, service, &digest, &id, &region)
                        .instrument(span)
                        .await
                    {
                        Ok(more) => reports.extend(more),
                        Err(e) => retry = retry.or(Some(e)),
                    }
                }
            }
            Intake::Promote(due) => {
                if let Some(target) = config.service_by_name(&due.service) {
                    let span = tracing::info_span!("promotion", service = %target.name, from = %due.from, digest = %due.digest);
                    match self
                        .promote(config, target, due, &region_from_env())
                        .instrument(span)
                        .await
                    {
                        Ok(report) => reports.push(report),
                        Err(e) => retry = Some(e),
                    }
                }
            }
        }
        // Notified once, from the outcomes, before any error is returned: what did
        // happen for other services is not lost when one of them is retried.
        let notifications: Vec<Notification> = reports
            .iter()
            .filter_map(|r| {
                let n = report::notification(r, config.service_by_name(&r.service)?)?;
                Some(n.fact("trigger", r.trigger.unwrap_or(self.trigger).as_str()))
            })
            .collect();
        futures::future::join_all(notifications.iter().map(|n| self.notifier.notify(n))).await;
        if let Some(e) = retry {
            tracing::error!(service = e.service, operation = e.operation, error = %e, "returning the event to Lambda for a retry");
            return Err(e.into());
        }
        Ok(serde_json::to_value(&reports).unwrap_or(Value::Null))
    }

    /// One service, one pushed image. `Err` only for retryable AWS errors.
    async fn deploy(
        &self,
        service: &ServiceConfig,
        image: &PushedImage,
    ) -> Result<ServiceOutcome, AwsError> {
        let backend = self.backends.for_service(service);
        let since = plan::history_since(image.pushed_at, now_ms());
        let history = match backend.history(since).await {
            Ok(h) => h,
            Err(e) if e.retryable => return Err(e),
            Err(e) => return Ok(failed_to_start(StartError::Aws(e))),
        };
        match plan::decide_push(&image.digest, image.pushed_at, &history) {
            PushDecision::Duplicate { deployment_id } => {
                tracing::info!(%deployment_id, "this image is already deployed or deploying: nothing to do");
                Ok(ServiceOutcome::Duplicate { deployment_id })
            }
            PushDecision::Stale {
                newer_deployment_id,
            } => {
                tracing::info!(%newer_deployment_id, "a newer deployment started after this push: skipped");
                Ok(ServiceOutcome::Stale {
                    newer_deployment_id,
                })
            }
            PushDecision::Busy { in_flight_id } => {
                self.on_busy(service, backend, image, in_flight_id).await
            }
            PushDecision::Deploy => self.start_unless_serving(service, backend, image).await,
        }
    }

    /// Launches the image unless the service already runs it. `Err` only for
    /// retryable AWS errors.
    async fn start_unless_serving(
        &self,
        service: &ServiceConfig,
        backend: Backend<'_>,
        image: &PushedImage,
    ) -> Result<ServiceOutcome, AwsError> {
        match backend.launch(&image.pinned()).await {
            Ok(Launched::Deployment {
                deployment_id,
                task_definition,
                target,
            }) => Ok(ServiceOutcome::Started {
                deployment_id,
                task_definition,
                target,
            }),
            Ok(Launched::Pipeline {
                execution_id,
                pipeline,
            }) => Ok(ServiceOutcome::PipelineStarted {
                execution_id,
                pipeline,
            }),
            Ok(Launched::AlreadyServing { task_definition }) => {
                Ok(ServiceOutcome::AlreadyServing { task_definition })
            }
            // Someone else started a deployment in between: the service is busy.
            Err(StartError::Busy { in_flight }) => {
                self.on_busy(service, backend, image, in_flight).await
            }
            Err(StartError::Aws(e)) if e.retryable => Err(e),
            Err(other) => Ok(failed_to_start(other)),
        }
    }

    async fn on_busy(
        &self,
        service: &ServiceConfig,
        backend: Backend<'_>,
        image: &PushedImage,
        in_flight_id: String,
    ) -> Result<ServiceOutcome, AwsError> {
        match service.on_busy {
            OnBusy::Queue => {
                tracing::info!(%in_flight_id, "busy: queued until the in-flight deployment ends");
                Ok(ServiceOutcome::Queued { in_flight_id })
            }
            OnBusy::Skip => {
                tracing::info!(%in_flight_id, "busy: push skipped (on_busy: skip)");
                Ok(ServiceOutcome::Skipped { in_flight_id })
            }
            OnBusy::Supersede => {
                // Stop with rollback; its end (state change) then deploys the newest image.
                let outcome = backend.stop_with_rollback(&in_flight_id).await?;
                tracing::info!(%in_flight_id, ?outcome, "in-flight deployment stopped to supersede it");
                if let StopOutcome::AlreadyDone { .. } = outcome {
                    // Nothing to wait for after all: start now. A failure is retried
                    // (retryable) or notified, never dropped.
                    return Box::pin(self.start_unless_serving(service, backend, image)).await;
                }
                Ok(ServiceOutcome::Superseded {
                    stopped_id: in_flight_id,
                })
            }
        }
    }

    async fn on_state_change(
        &self,
        service: &ServiceConfig,
        change: &DeploymentChange,
        redact: &[String],
    ) -> Result<Vec<(Option<PushedImage>, ServiceOutcome)>, AwsError> {
        if !change.terminal {
            tracing::info!("deployment state change noted");
            return Ok(Vec::new());
        }
        let backend = self.backends.for_service(service);
        let ended = backend.ended(change.deployment_id.as_deref()).await?;
        let ended_id = ended
            .as_ref()
            .map(|d| d.id.clone())
            .or_else(|| change.deployment_id.clone())
            .unwrap_or_default();
        let image_digest = ended.as_ref().and_then(|d| d.image_digest.clone());
        let evidence = match &image_digest {
            // A pipeline's ended deployment is never read (`ended` is None): no digest.
            Some(digest) if change.state != "SUCCESS" => {
                let evidence = self
                    .capture
                    .for_service(service, digest, now_ms(), redact)
                    .await;
                tracing::info!(tasks = evidence.tasks.len(), lines = evidence.logs.len(), calls = evidence.calls, gaps = ?evidence.gaps, "green's evidence captured");
                Some(Box::new(evidence))
            }
            _ => None,
        };
        let mut outcomes = vec![(
            None,
            ServiceOutcome::Finished {
                deployment_id: ended_id.clone(),
                state: change.state.clone(),
                image_tag: ended.as_ref().and_then(|d| d.image_tag.clone()),
                image_digest,
                evidence,
            },
        )];
        if !matches!(service.on_busy, OnBusy::Queue | OnBusy::Supersede) {
            return Ok(outcomes);
        }
        let images = self.ecr.tagged_images(&service.repository).await?;
        let since = ended
            .as_ref()
            .and_then(|d| d.created_at)
            .unwrap_or_default();
        let ended_digest = ended.as_ref().and_then(|d| d.image_digest.clone());
        let mut candidates: Vec<PushedImage> = images
            .into_iter()
            .filter(|i| i.pushed_at > since && Some(&i.digest) != ended_digest.as_ref())
            .filter_map(|i| {
                let tag = i.tags.iter().find(|t| service.tags.matches(t))?.clone();
                let region = change.region.clone().unwrap_or_default();
                Some(PushedImage {
                    uri: format!(
                        "{}/{}@{}",
                        greenlight::events::ecr_registry(&i.registry_id, &region),
                        i.repository,
                        i.digest
                    ),
                    repository: i.repository,
                    tag,
                    digest: i.digest,
                    pushed_at: Some(i.pushed_at),
                    region: Some(region),
                })
            })
            .collect();
        candidates.sort_by_key(|i| std::cmp::Reverse(i.pushed_at));
        let Some(newest) = candidates.first().cloned() else {
            tracing::info!("no image was pushed while the deployment ran: nothing queued");
            outcomes.push((None, ServiceOutcome::NothingQueued));
            return Ok(outcomes);
        };
        tracing::info!(image_tag = %newest.tag, "deploying the newest image queued while the service was busy");
        let started = self.deploy(service, &newest).await?;
        outcomes.push((Some(newest.clone()), started));
        for skipped in &candidates[1..] {
            outcomes.push((
                Some(skipped.clone()),
                ServiceOutcome::QueueSkipped {
                    newer_tag: newest.tag.clone(),
                    ended_deployment_id: ended_id.clone(),
                },
            ));
        }
        Ok(outcomes)
    }
}

/// A start that retrying cannot fix, as an outcome (notified, event acknowledged).
fn failed_to_start(error: StartError) -> ServiceOutcome {
    let code = match &error {
        StartError::Aws(e) => e.code.clone(),
        _ => None,
    };
    let reason = match error {
        StartError::Aws(e) => e.to_string(),
        other => other.to_string(),
    };
    tracing::error!(%reason, "deployment could not start; retrying would not help, event acknowledged");
    ServiceOutcome::FailedToStart { reason, code }
}

fn region_from_env() -> String {
    std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
