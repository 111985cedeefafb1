//! The lifecycle hook: CodeDeploy invokes it at a lifecycle event of an ECS
//! blue/green deployment, or ECS at a stage of an ECS-native one (told apart by the
//! payload); it decides (smoke tests against the right listener or listener rule) and
//! answers, always, exactly once, before its deadline: CodeDeploy through
//! PutLifecycleEventHookExecutionStatus, ECS with the returned `hookStatus`.
//!
//! ECS-native specifics: a run that would outlast the Lambda returns IN_PROGRESS with
//! a `callBackDelay` and resumes on the next invocation from `hookDetails` (no
//! database); a hook invoked during a rollback answers SUCCEEDED at once (Greenlight
//! never blocks a rollback); an unknown service, or a failure of Greenlight's own
//! code, answers FAILED with the reason. It never returns an error to ECS.
//!
//! Failure handling, in order of precedence:
//! - The decision runs in its own task: a panic there becomes a Failed answer
//!   (the release profile keeps `panic = "unwind"` for exactly this reason).
//! - The decision has until the Lambda deadline minus a reporting margin; if it
//!   runs long it is abandoned and the answer is Failed.
//! - Config problems, unknown deployment groups and AWS errors while deciding are
//!   answered Failed with the reason (fail closed: a bad image must not pass
//!   because Greenlight could not look).
//! - A failing report is retried; `LifecycleEventAlreadyCompletedException` means an
//!   earlier invocation answered, which is done, not an error.

use std::sync::Arc;
use std::time::Duration;

use greenlight::analysis::{self, AnalysisConfig, RunResult, Verdict as AnalysisVerdict};
use greenlight::aws::cloudwatch::Metrics;
use greenlight::aws::codedeploy::{DeploymentReader, DeploymentStopper, HookReporter};
use greenlight::aws::ecs::ServiceRules;
use greenlight::aws::elb::ListenerResolver;
use greenlight::aws::sns::Publisher;
use greenlight::aws::{retry, AwsError, HookReport, HookStatus};
use greenlight::config::{ConfigError, ServiceConfig};
use greenlight::events::{EcsHookInvocation, HookInvocation, HookPayload};
use greenlight::gate;
use greenlight::lifecycle::TrafficRoute;
use greenlight::marker::DeploymentMarker;
use greenlight::notify::{Notification, NotificationEvent, Notifier, Severity};
use greenlight::smoke::{self, Placeholders, RunOptions, SmokeReport};
use greenlight::LifecycleEvent;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::time::Instant;
use tracing::Instrument;

/// Env var naming the lifecycle event this function serves.
pub const ENV_HOOK: &str = "GREENLIGHT_HOOK";

/// IAM actions this function calls; the template test checks the role grants exactly these.
pub const IAM_ACTIONS: &[&str] = &[
    "codedeploy:PutLifecycleEventHookExecutionStatus",
    "codedeploy:GetDeployment",
    "codedeploy:GetDeploymentGroup",
    "codedeploy:ListDeploymentTargets",
    "codedeploy:GetDeploymentTarget",
    "codedeploy:StopDeployment",
    "cloudwatch:GetMetricData",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeRules",
    "ecs:DescribeServices",
    "ecs:DescribeServiceRevisions",
    "ecs:DescribeTaskDefinition",
    "sns:Publish",
    // The configuration, when it lives in Parameter Store or S3.
    "ssm:GetParameter",
    "s3:GetObject",
    "secretsmanager:GetSecretValue",
];

/// How long ECS waits before invoking an IN_PROGRESS hook again.
pub const ECS_CALLBACK_DELAY_SECONDS: u32 = 5;
/// Where the hook keeps its own state inside ECS's `hookDetails`.
const STATE_KEY: &str = "greenlight";

/// The longest the hook looks for the target revision's image (for `${image_tag}` and
/// `${image_digest}`) before checking without it.
pub const IMAGE_LOOKUP_BUDGET: Duration = Duration::from_secs(3);

/// Time kept back from the Lambda deadline to return the answer once notifications
/// have had their chance.
const ANSWER_RESERVE: Duration = Duration::from_secs(1);

/// Time kept back from the Lambda deadline to report (with retries) and notify.
pub const REPORT_MARGIN: Duration = Duration::from_secs(5);
/// The report itself must be done this long before the Lambda deadline.
const REPORT_RESERVE: Duration = Duration::from_millis(250);

/// This crate's error: what makes an invocation fail as a whole.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Greenlight(#[from] greenlight::Error),
    /// CodeDeploy could not be told; it will time the hook out (after up to an hour).
    #[error("could not report {status} for deployment {deployment_id} (hook execution {execution_id}): {source}")]
    ReportFailed {
        deployment_id: String,
        execution_id: String,
        status: &'static str,
        #[source]
        source: AwsError,
    },
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(error: Error) -> Self {
        let error_type = match &error {
            Error::Greenlight(e) => e.kind(),
            Error::ReportFailed { .. } => "ReportFailed",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_string(),
            error_message: error.to_string(),
        }
    }
}

/// The decision for one hook invocation.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub status: HookStatus,
    pub reason: String,
    pub service: Option<String>,
    pub lifecycle_event: Option<LifecycleEvent>,
    pub image_tag: Option<String>,
    pub smoke: Option<SmokeReport>,
    /// ECS-native only: not decided yet; ask ECS to invoke again with these hookDetails.
    pub resume: Option<Value>,
    /// ECS-native only: the deployment will wait for a person at this PAUSE stage next.
    pub approval_at: Option<String>,
    /// ECS-native only: seconds until ECS should invoke again (with `resume`).
    pub callback_delay: Option<u32>,
    /// The analysis so far (production traffic on green, judged against blue).
    pub analysis: Option<RunResult>,
    /// Greenlight stopped the deployment with rollback itself (CodeDeploy, failed
    /// analysis): the hook's own answer may then find the event already closed.
    pub stopped: bool,
    /// Nothing worth telling people (a later canary step after the analysis).
    pub quiet: bool,
}

impl Verdict {
    fn failed(reason: impl Into<String>) -> Verdict {
        Verdict {
            status: HookStatus::Failed,
            reason: reason.into(),
            service: None,
            lifecycle_event: None,
            image_tag: None,
            smoke: None,
            resume: None,
            approval_at: None,
            callback_delay: None,
            analysis: None,
            stopped: false,
            quiet: false,
        }
    }

    fn succeeded(reason: impl Into<String>) -> Verdict {
        Verdict {
            status: HookStatus::Succeeded,
            ..Verdict::failed(reason)
        }
    }

    /// The ECS-native answer: `{hookStatus, callBackDelay?, hookDetails?}`.
    pub fn ecs_answer(&self) -> Value {
        match (&self.resume, self.status) {
            (Some(details), _) => json!({
                "hookStatus": "IN_PROGRESS",
                "callBackDelay": self.callback_delay.unwrap_or(ECS_CALLBACK_DELAY_SECONDS),
                "hookDetails": details,
                "reason": self.reason,
            }),
            (None, HookStatus::Succeeded) => {
                json!({"hookStatus": "SUCCEEDED", "reason": self.reason})
            }
            (None, HookStatus::Failed) => json!({"hookStatus": "FAILED", "reason": self.reason}),
        }
    }
}

/// How an answer reaches the deployment engine. CodeDeploy wants an API call
/// (PutLifecycleEventHookExecutionStatus); ECS-native blue/green hooks return
/// `{"hookStatus": ...}` from the invocation instead. Deciding is the same for both.
pub trait HookContract: Send + Sync {
    fn deliver(
        &self,
        invocation: &HookInvocation,
        verdict: &Verdict,
        deadline: Instant,
    ) -> impl std::future::Future<Output = Result<Value, Error>> + Send;
}

/// CodeDeploy's contract: report through the API; throttling and 5xx are retried
/// until just before the deadline, an answer CodeDeploy refuses for good is not.
pub struct CodeDeployContract<R> {
    reporter: R,
}

impl<R: HookReporter> CodeDeployContract<R> {
    pub fn new(reporter: R) -> Self {
        CodeDeployContract { reporter }
    }
}

impl<R: HookReporter> HookContract for CodeDeployContract<R> {
    async fn deliver(
        &self,
        invocation: &HookInvocation,
        verdict: &Verdict,
        deadline: Instant,
    ) -> Result<Value, Error> {
        // The adapter retries throttling and 5xx until `deadline` (see greenlight::aws::retry).
        let source = match tokio::time::timeout_at(
            deadline,
            retry::within(
                deadline,
                self.reporter.report(
                    &invocation.deployment_id,
                    &invocation.execution_id,
                    verdict.status,
                ),
            ),
        )
        .await
        {
            Ok(Ok(outcome)) => {
                if outcome == HookReport::AlreadyCompleted {
                    tracing::info!("CodeDeploy already had an answer for this hook execution (a retried invocation): done");
                }
                return Ok(json!({
                    "status": verdict.status.as_str(),
                    "reported": outcome,
                    "reason": verdict.reason,
                }));
            }
            Ok(Err(e)) => e,
            Err(_) => AwsError::unexpected(
                "CodeDeploy",
                "PutLifecycleEventHookExecutionStatus",
                "no answer before the invocation's deadline",
            ),
        };
        tracing::error!(
            execution_id = %invocation.execution_id,
            service = source.service,
            operation = source.operation,
            code = source.code.as_deref().unwrap_or(""),
            error = %source,
            "could not report the hook status: CodeDeploy will time this hook out"
        );
        Err(Error::ReportFailed {
            deployment_id: invocation.deployment_id.clone(),
            execution_id: invocation.execution_id.clone(),
            status: verdict.status.as_str(),
            source,
        })
    }
}

/// The invocation's deployment group, read at most once: the smoke checks' listener
/// and the analysis's load balancer both come from it.
struct GroupOnce<'a, D> {
    deployments: &'a D,
    application: &'a str,
    name: &'a str,
    read: tokio::sync::OnceCell<greenlight::aws::DeploymentGroupSummary>,
}

impl<'a, D: DeploymentReader> GroupOnce<'a, D> {
    fn new(deployments: &'a D, application: &'a str, name: &'a str) -> Self {
        GroupOnce {
            deployments,
            application,
            name,
            read: tokio::sync::OnceCell::new(),
        }
    }

    async fn get(&self) -> Result<&greenlight::aws::DeploymentGroupSummary, AwsError> {
        self.read
            .get_or_try_init(|| {
                self.deployments
                    .deployment_group(self.application, self.name)
            })
            .await
    }
}

/// What the analysis gate reads and does: CloudWatch metrics, target groups, and
/// stopping a CodeDeploy deployment whose analysis failed.
#[derive(Debug, Clone)]
pub struct Gate {
    pub metrics: Metrics,
    pub elb: greenlight::aws::LoadBalancers,
    pub codedeploy: greenlight::aws::CodeDeploy,
}

impl Gate {
    /// Clients are built on first use: only services with `analysis:` need them.
    pub fn from_conf(sdk: &greenlight::aws::SdkConfig) -> Gate {
        Gate::sharing(sdk, greenlight::aws::CodeDeploy::from_conf(sdk))
    }

    /// With the CodeDeploy client the hook already has (one client, not two, at init).
    pub fn sharing(
        sdk: &greenlight::aws::SdkConfig,
        codedeploy: greenlight::aws::CodeDeploy,
    ) -> Gate {
        Gate {
            metrics: Metrics::from_conf(sdk),
            elb: greenlight::aws::LoadBalancers::from_conf(sdk),
            codedeploy,
        }
    }
}

/// Everything the hook needs, built once at init.
pub struct Hook<D, L, P, C, S = greenlight::aws::Ecs> {
    /// The configuration, or why it could not be loaded: then every invocation is
    /// answered Failed with that reason instead of leaving the deployment hanging.
    pub config: Result<greenlight::config_source::SharedConfig, Arc<ConfigError>>,
    /// The event this function serves (`GREENLIGHT_HOOK`); `None` asks CodeDeploy.
    pub hook_event: Option<LifecycleEvent>,
    pub deployments: D,
    pub listeners: L,
    pub notifier: Notifier<P>,
    pub contract: C,
    /// ECS-native services' listener rules and revisions.
    pub services: S,
    pub http: smoke::HttpClients,
    pub report_margin: Duration,
    /// The analysis gate (services with `analysis:`).
    pub gate: Gate,
    /// Secrets the checks name, read when they run.
    pub secrets: greenlight::aws::secrets::Secrets,
}

impl<D, L, P, C, S> Hook<D, L, P, C, S>
where
    D: DeploymentReader + 'static,
    L: ListenerResolver + 'static,
    P: Publisher + 'static,
    C: HookContract + 'static,
    S: ServiceRules + 'static,
{
    /// Handles one invocation from either engine. `deadline` is the Lambda deadline.
    pub async fn handle(self: &Arc<Self>, event: Value, deadline: Instant) -> Result<Value, Error> {
        match HookPayload::parse(&event) {
            Ok(HookPayload::EcsNative(invocation)) => {
                Ok(self.handle_ecs(invocation, deadline).await)
            }
            Ok(HookPayload::CodeDeploy(invocation)) => {
                self.handle_codedeploy(invocation, deadline).await
            }
            Err(e) => Err(greenlight::Error::from(e).into()),
        }
    }

    /// ECS-native: the answer is the return value; never an error (an error rolls the
    /// deployment back without saying why).
    async fn handle_ecs(
        self: &Arc<Self>,
        invocation: EcsHookInvocation,
        deadline: Instant,
    ) -> Value {
        let span = tracing::info_span!(
            "hook",
            service_deployment = %invocation.resource_arn,
            execution_id = %invocation.execution_id,
            lifecycle_stage = %invocation.stage_name,
            service = tracing::field::Empty,
        );
        async move {
            let margin = self.report_margin.min(deadline.saturating_duration_since(Instant::now()) / 2);
            let decide_by = deadline - margin;
            let this = Arc::clone(self);
            let inv = invocation.clone();
            let verdict = guarded(decide_by, async move { this.decide_ecs(&inv, decide_by).await }).await;
            if let Some(service) = &verdict.service {
                tracing::Span::current().record("service", service.as_str());
            }
            let answer = verdict.ecs_answer();
            tracing::info!(hook_status = %answer["hookStatus"], reason = %verdict.reason, "hook decided");
            // The answer is the return value, so the notifications go first, bounded:
            // an SNS that never answers must not push the answer past ECS's deadline.
            let notify_by = retry::less_margin(deadline, ANSWER_RESERVE);
            let notified = retry::bounded(notify_by, async {
                if verdict.resume.is_none() && !verdict.quiet {
                    self.notify(&invocation.resource_arn, &verdict).await;
                }
                if let (Some(stage), Some(service)) = (&verdict.approval_at, &verdict.service) {
                    self.notify_approval(&invocation.resource_arn, service, stage)
                        .await;
                }
            })
            .await;
            if notified.is_none() {
                tracing::warn!("notifications cut off so the answer is returned before the deadline");
            }
            answer
        }
        .instrument(span)
        .await
    }

    async fn decide_ecs(&self, invocation: &EcsHookInvocation, decide_by: Instant) -> Verdict {
        let config = match &self.config {
            Ok(config) => config.load(),
            Err(e) => {
                return Verdict::failed(format!(
                    "Greenlight configuration is invalid, failing closed: {e}"
                ))
            }
        };
        if invocation.is_rollback() {
            // Answered at once and not announced: the rollback's cause was notified.
            return Verdict {
                quiet: true,
                ..Verdict::succeeded(format!(
                    "{}: a rollback is under way; Greenlight never blocks a rollback",
                    invocation.stage_name
                ))
            };
        }
        let Some(service) = config.service_for_ecs_arn(&invocation.service_arn) else {
            return Verdict::failed(format!(
                "service {} is not an ecs_native service in the Greenlight configuration; failing closed",
                invocation.service_arn
            ));
        };
        tracing::Span::current().record("service", service.name.as_str());
        let named = |verdict: Verdict| Verdict {
            service: Some(service.name.clone()),
            ..verdict
        };
        let Some(stage) = invocation.stage() else {
            return named(Verdict::succeeded(format!(
                "stage {} is not one Greenlight checks",
                invocation.stage_name
            )));
        };
        if stage == LifecycleEvent::ProductionTrafficShift {
            if let Some(settings) = &service.analysis {
                let verdict = self.analyze_ecs(service, settings, invocation).await;
                return Verdict {
                    lifecycle_event: Some(stage),
                    ..named(verdict)
                };
            }
        }
        let configured = service.hook_stages().contains(&stage);
        if !configured {
            return named(Verdict {
                lifecycle_event: Some(stage),
                ..Verdict::succeeded(format!(
                    "{} is not in ecs_native.stages of {}: nothing to check",
                    stage.ecs_name(),
                    service.name
                ))
            });
        }
        let (image_tag, image_digest) = match &invocation.target_revision_arn {
            Some(revision) => {
                // Optional information: its own short budget, so an ECS answering 5xx
                // (retried) cannot spend the time the checks and the answer need.
                let budget = IMAGE_LOOKUP_BUDGET
                    .min(decide_by.saturating_duration_since(Instant::now()) / 4);
                match tokio::time::timeout(
                    budget,
                    self.services.revision_image(revision, &service.container),
                )
                .await
                {
                    Ok(Ok(image)) => image,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "cannot read the target revision's image: image placeholders stay unset");
                        (None, None)
                    }
                    Err(_) => {
                        tracing::warn!(
                            budget_ms = budget.as_millis() as u64,
                            "the target revision's image was not read in time: image placeholders stay unset"
                        );
                        (None, None)
                    }
                }
            }
            None => (None, None),
        };
        let mut verdict = self
            .smoke_ecs(
                service,
                stage,
                invocation,
                image_tag.clone(),
                image_digest,
                decide_by,
            )
            .await;
        if verdict.status == HookStatus::Succeeded && verdict.resume.is_none() {
            let ours = service.hook_stages().to_vec();
            match self
                .services
                .pause_stages(&service.cluster, &service.service)
                .await
            {
                Ok(pauses) => verdict.approval_at = next_pause(stage, &pauses, &ours),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the service's PAUSE hooks: no approval notice")
                }
            }
        }
        verdict.service = Some(service.name.clone());
        verdict.lifecycle_event = Some(stage);
        verdict.image_tag = image_tag;
        verdict
    }

    async fn smoke_ecs(
        &self,
        service: &ServiceConfig,
        stage: LifecycleEvent,
        invocation: &EcsHookInvocation,
        image_tag: Option<String>,
        image_digest: Option<String>,
        decide_by: Instant,
    ) -> Verdict {
        let mut checks = smoke::checks_for(&service.smoke.checks, stage);
        if checks.is_empty() {
            return Verdict::succeeded(format!(
                "no smoke checks configured for {}",
                stage.ecs_name()
            ));
        }
        let route = stage.route();
        let configured = match route {
            TrafficRoute::Test => &service.smoke.base_url,
            TrafficRoute::Production => &service.smoke.production_url,
        };
        let base_url = match configured {
            Some(url) => url.clone(),
            None => {
                let target = match self.rule_target(service, route).await {
                    Ok(target) => target,
                    Err(reason) => return Verdict::failed(reason),
                };
                for check in &mut checks {
                    for (name, value) in &target.headers {
                        check
                            .headers
                            .entry(name.clone())
                            .or_insert_with(|| value.clone());
                    }
                }
                if !target.path_patterns.is_empty() {
                    tracing::info!(path_patterns = ?target.path_patterns, "the listener rule matches these paths only");
                }
                target.url
            }
        };
        // Resumable runs: the first invocation notes when checking began; the smoke
        // deadline counts from there, across IN_PROGRESS re-invocations.
        let state = invocation
            .hook_details
            .get(STATE_KEY)
            .cloned()
            .unwrap_or(Value::Null);
        let started_ms = state
            .get("started_ms")
            .and_then(Value::as_i64)
            .unwrap_or_else(now_ms);
        let attempt = state.get("attempt").and_then(Value::as_u64).unwrap_or(0) + 1;
        let budget_left = Duration::from_millis(
            (service.smoke.deadline.as_millis() as i64 - (now_ms() - started_ms)).max(0) as u64,
        );
        let smoke_deadline = Instant::now() + budget_left;
        // The run stops a little before the decision deadline, so that its own
        // verdict (maybe IN_PROGRESS), not the guard's timeout, is the answer.
        let run_by = decide_by
            - Duration::from_millis(250)
                .min(decide_by.saturating_duration_since(Instant::now()) / 4);
        let lambda_bound = run_by < smoke_deadline;
        let placeholders = Placeholders {
            image_tag,
            image_digest,
            deployment_id: Some(invocation.resource_arn.clone()),
            ..Default::default()
        };
        let options = RunOptions {
            warmup: if attempt == 1 {
                service.smoke.warmup
            } else {
                Duration::ZERO
            },
            deadline: run_by.min(smoke_deadline),
            concurrency: service.smoke.concurrency,
        };
        tracing::info!(base_url = %base_url, checks = checks.len(), attempt, ?route, "running smoke checks");
        let client = match self.http.for_url(&base_url) {
            Ok(client) => client,
            Err(reason) => return Verdict::failed(reason),
        };
        let placeholders = self.with_secrets(&checks, placeholders).await;
        let report = smoke::run(client, &base_url, &checks, &placeholders, &options).await;
        if !report.passed && report.deadline_reached && lambda_bound {
            let mut details = invocation.hook_details.clone();
            details[STATE_KEY] = json!({"started_ms": started_ms, "attempt": attempt});
            return Verdict {
                resume: Some(details),
                smoke: Some(report),
                ..Verdict::succeeded(format!(
                    "smoke checks need more time than this invocation has (attempt {attempt}); ECS invokes again in {ECS_CALLBACK_DELAY_SECONDS} s"
                ))
            };
        }
        smoke_verdict(report, &base_url, stage.ecs_name())
    }

    /// The test (or production) listener rule of the service, as a URL and headers.
    async fn rule_target(
        &self,
        service: &ServiceConfig,
        route: TrafficRoute,
    ) -> Result<greenlight::aws::elb::RuleTarget, String> {
        let rules = self
            .services
            .listener_rules(&service.cluster, &service.service)
            .await
            .map_err(|e| {
                format!(
                    "cannot read the listener rules of {}/{}: {e}",
                    service.cluster, service.service
                )
            })?;
        let (rule, which, key) = match route {
            TrafficRoute::Test => (rules.test, "test", "smoke.base_url"),
            TrafficRoute::Production => (rules.production, "production", "smoke.production_url"),
        };
        let Some(rule) = rule else {
            return Err(format!(
                "service {}/{} has no {which} listener rule (loadBalancers[].advancedConfiguration) and {key} is not set: nowhere to run smoke checks",
                service.cluster, service.service
            ));
        };
        self.listeners
            .rule_target(&rule)
            .await
            .map_err(|e| format!("cannot resolve the {which} listener rule {rule}: {e}"))
    }

    /// CodeDeploy: the answer goes through the API (the contract).
    async fn handle_codedeploy(
        self: &Arc<Self>,
        invocation: HookInvocation,
        deadline: Instant,
    ) -> Result<Value, Error> {
        let span = tracing::info_span!(
            "hook",
            deployment_id = %invocation.deployment_id,
            execution_id = %invocation.execution_id,
            service = tracing::field::Empty,
            lifecycle_event = tracing::field::Empty,
        );
        async move {
            let margin = self.report_margin.min(deadline.saturating_duration_since(Instant::now()) / 2);
            let decide_by = deadline - margin;
            let verdict = self.decide_guarded(&invocation, decide_by).await;
            let span = tracing::Span::current();
            if let Some(service) = &verdict.service {
                span.record("service", service.as_str());
            }
            if let Some(event) = verdict.lifecycle_event {
                span.record("lifecycle_event", event.as_str());
            }
            tracing::info!(status = verdict.status.as_str(), reason = %verdict.reason, "hook decided");
            let report_by = retry::less_margin(deadline, REPORT_RESERVE);
            let delivered = self.contract.deliver(&invocation, &verdict, report_by).await;
            // Reporting first: a notification must never delay the answer CodeDeploy waits
            // for; it is bounded too, so the invocation ends before Lambda's deadline.
            let notify_by = retry::less_margin(deadline, ANSWER_RESERVE);
            if retry::bounded(notify_by, self.notify(&invocation.deployment_id, &verdict))
                .await
                .is_none()
            {
                tracing::warn!("notification cut off at the invocation's deadline");
            }
            match delivered {
                // Greenlight stopped the deployment itself: the event may be closed.
                Err(e) if verdict.stopped => {
                    tracing::warn!(error = %e, "the deployment was stopped with rollback; its hook could not be answered after that");
                    Ok(json!({"status": verdict.status.as_str(), "stopped": true}))
                }
                delivered => delivered,
            }
        }
        .instrument(span)
        .await
    }

    /// Decides in a separate task, so a panic or an overrun still yields a verdict.
    async fn decide_guarded(
        self: &Arc<Self>,
        invocation: &HookInvocation,
        decide_by: Instant,
    ) -> Verdict {
        let this = Arc::clone(self);
        let inv = invocation.clone();
        guarded(decide_by, async move { this.decide(&inv, decide_by).await }).await
    }

    async fn decide(&self, invocation: &HookInvocation, decide_by: Instant) -> Verdict {
        let config = match &self.config {
            Ok(config) => config.load(),
            Err(e) => {
                return Verdict::failed(format!(
                    "Greenlight configuration is invalid, failing closed: {e}"
                ))
            }
        };
        let deployment = match self.deployments.deployment(&invocation.deployment_id).await {
            Ok(d) => d,
            Err(e) => return Verdict::failed(format!("cannot read the deployment: {e}")),
        };
        let Some(service) =
            config.service_for_group(&deployment.application, &deployment.deployment_group)
        else {
            return Verdict::failed(format!(
                "deployment group {}/{} is not in the Greenlight configuration; failing closed",
                deployment.application, deployment.deployment_group
            ));
        };
        // Every later log line of this invocation names the service.
        tracing::Span::current().record("service", service.name.as_str());
        let event = match self.hook_event {
            Some(event) => event,
            None => match self.deployments.current_lifecycle_event(&invocation.deployment_id).await {
                Ok(Some(event)) => event,
                Ok(None) => {
                    return Verdict {
                        service: Some(service.name.clone()),
                        ..Verdict::failed(format!("{ENV_HOOK} is not set and CodeDeploy reports no lifecycle event in progress"))
                    }
                }
                Err(e) => {
                    return Verdict {
                        service: Some(service.name.clone()),
                        ..Verdict::failed(format!("{ENV_HOOK} is not set and the lifecycle event could not be read: {e}"))
                    }
                }
            },
        };
        tracing::Span::current().record("lifecycle_event", event.as_str());
        let marker = deployment
            .description
            .as_deref()
            .and_then(DeploymentMarker::parse)
            .unwrap_or_default();
        let group = GroupOnce::new(
            &self.deployments,
            &deployment.application,
            &deployment.deployment_group,
        );
        let mut verdict = self
            .smoke(service, &group, event, &marker, invocation, decide_by)
            .await;
        if let (LifecycleEvent::AfterAllowTraffic, Some(settings), HookStatus::Succeeded) =
            (event, &service.analysis, verdict.status)
        {
            // Greenlight's own smoke requests just reached green through production.
            let smoke = verdict
                .smoke
                .as_ref()
                .map(|r| vec![(now_ms() - r.elapsed_ms as i64, smoke_requests(r))])
                .unwrap_or_default();
            let smoke_report = verdict.smoke.take();
            verdict = self
                .analyze_codedeploy(&deployment, &group, settings, smoke, decide_by)
                .await;
            verdict.smoke = smoke_report;
        }
        verdict.service = Some(service.name.clone());
        verdict.lifecycle_event = Some(event);
        verdict.image_tag = marker.image_tag;
        verdict
    }

    /// The checks' secrets, read for this run only (values never logged).
    async fn with_secrets(
        &self,
        checks: &[greenlight::config::CheckSpec],
        mut placeholders: Placeholders,
    ) -> Placeholders {
        let mut references: Vec<String> =
            checks.iter().flat_map(smoke::secret_references).collect();
        references.sort();
        references.dedup();
        if !references.is_empty() {
            let resolved = self.secrets.resolve(&references).await;
            tracing::info!(
                secrets = resolved.values.len(),
                unreadable = resolved.errors.len(),
                "check secrets read"
            );
            placeholders.secrets = resolved.values;
            placeholders.secret_errors = resolved.errors;
        }
        placeholders
    }

    /// CodeDeploy: the analysis window began when AllowTraffic did (canary and linear
    /// steps included); this hook holds the deployment, with blue still there, until
    /// the window is judged, a failure is certain, or its own deadline comes.
    async fn analyze_codedeploy(
        &self,
        deployment: &greenlight::aws::DeploymentSummary,
        group: &GroupOnce<'_, D>,
        settings: &AnalysisConfig,
        smoke: Vec<(i64, f64)>,
        decide_by: Instant,
    ) -> Verdict {
        let id = &deployment.deployment_id;
        let traffic = match self.deployments.traffic(id).await {
            Ok(t) => t,
            Err(e) => {
                return Verdict::failed(format!(
                    "analysis: cannot read the deployment's task sets: {e}"
                ))
            }
        };
        let group = match group.get().await {
            Ok(g) => g,
            Err(e) => {
                return Verdict::failed(format!("analysis: cannot read the deployment group: {e}"))
            }
        };
        let targets = match greenlight::deploy::codedeploy::analysis_targets(
            &traffic,
            group.production_listener_arns.first().map(String::as_str),
            &self.gate.elb,
        )
        .await
        {
            Ok(t) => t,
            Err(reason) => return Verdict::failed(format!("analysis: {reason}")),
        };
        let from = analysis::window_start(
            settings,
            traffic.allow_traffic_started_ms.unwrap_or_else(now_ms),
        );
        tracing::info!(green = %targets.green_target_group, blue = %targets.blue_target_group, from_ms = from, "analysing green against blue");
        loop {
            let now = now_ms();
            let result =
                match gate::evaluate(&self.gate.metrics, settings, &targets, from, now, &smoke)
                    .await
                {
                    Ok(r) => r,
                    Err(e) => {
                        return Verdict::failed(format!("analysis: cannot read the metrics: {e}"))
                    }
                };
            let complete = analysis::window_complete(settings, from, now);
            if let Some(result) = &result {
                if result.verdict == AnalysisVerdict::Fail || complete {
                    return self.conclude_codedeploy(id, result.clone(), false).await;
                }
            }
            let wait = gate::until_next_interval(settings, from, now);
            if Instant::now() + wait + Duration::from_secs(1) > decide_by {
                // The hook's own deadline comes first: judge what has settled.
                let result = result.unwrap_or_else(|| analysis::judge_run(settings, Vec::new()));
                return self.conclude_codedeploy(id, result, true).await;
            }
            tokio::time::sleep(wait).await;
        }
    }

    async fn conclude_codedeploy(&self, id: &str, result: RunResult, cut_short: bool) -> Verdict {
        let mut verdict = analysis_verdict(&result, cut_short);
        if result.stop {
            // The same path as an alarm: stop with rollback, whatever the group's
            // auto-rollback settings; the Failed answer follows.
            match self.gate.codedeploy.stop_with_rollback(id).await {
                Ok(outcome) => {
                    tracing::warn!(
                        ?outcome,
                        "analysis failed: deployment stopped with rollback"
                    );
                    verdict.stopped = true;
                }
                Err(e) => {
                    tracing::error!(error = %e, "analysis failed and StopDeployment failed: answering Failed")
                }
            }
        }
        verdict
    }

    /// ECS-native: the analysis holds the first production step (the canary, or all
    /// traffic with BLUE_GREEN) until the window is judged, answering IN_PROGRESS
    /// between intervals; the window's start travels in `hookDetails`.
    async fn analyze_ecs(
        &self,
        service: &ServiceConfig,
        settings: &AnalysisConfig,
        invocation: &EcsHookInvocation,
    ) -> Verdict {
        let rules = match self
            .services
            .listener_rules(&service.cluster, &service.service)
            .await
        {
            Ok(r) => r,
            Err(e) => return Verdict::failed(format!("analysis: cannot read the service: {e}")),
        };
        let state = invocation
            .hook_details
            .get(STATE_KEY)
            .cloned()
            .unwrap_or(Value::Null);
        let from = match state.get("analysis_from_ms").and_then(Value::as_i64) {
            Some(from) => from,
            None => {
                let green_weight = invocation
                    .target_revision_arn
                    .as_ref()
                    .and_then(|t| invocation.production_weights.get(t))
                    .copied();
                if let Some(weight) = green_weight {
                    if (weight - rules.first_step_percent).abs() > 0.5 {
                        return Verdict {
                            quiet: true,
                            ..Verdict::succeeded(format!(
                                "the analysis judged the first production step ({}%); this step ({weight}%) follows it",
                                rules.first_step_percent
                            ))
                        };
                    }
                }
                analysis::window_start(settings, now_ms())
            }
        };
        let targets =
            match greenlight::deploy::ecs_native::analysis_targets(&rules, &self.gate.elb).await {
                Ok(t) => t,
                Err(reason) => return Verdict::failed(format!("analysis: {reason}")),
            };
        let now = now_ms();
        let result = match gate::evaluate(&self.gate.metrics, settings, &targets, from, now, &[])
            .await
        {
            Ok(r) => r,
            Err(e) => return Verdict::failed(format!("analysis: cannot read the metrics: {e}")),
        };
        if let Some(result) = &result {
            if result.verdict == AnalysisVerdict::Fail
                || analysis::window_complete(settings, from, now)
            {
                // FAILED makes ECS roll back: the native stop with rollback.
                return analysis_verdict(result, false);
            }
        }
        let mut details = invocation.hook_details.clone();
        if !details.is_object() {
            details = json!({});
        }
        details[STATE_KEY] = json!({"analysis_from_ms": from});
        let wait = gate::until_next_interval(settings, from, now);
        let judged = result.as_ref().map_or(0, |r| r.intervals.len());
        Verdict {
            resume: Some(details),
            callback_delay: Some(wait.as_secs_f64().ceil().max(1.0) as u32),
            analysis: result,
            ..Verdict::succeeded(format!(
                "analysing green against blue ({} green, {} blue): {judged} interval(s) judged so far",
                targets.green_target_group, targets.blue_target_group
            ))
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn smoke(
        &self,
        service: &ServiceConfig,
        group: &GroupOnce<'_, D>,
        event: LifecycleEvent,
        marker: &DeploymentMarker,
        invocation: &HookInvocation,
        decide_by: Instant,
    ) -> Verdict {
        let checks = smoke::checks_for(&service.smoke.checks, event);
        if checks.is_empty() {
            return Verdict {
                status: HookStatus::Succeeded,
                reason: format!("no smoke checks configured for {event}"),
                ..Verdict::failed("")
            };
        }
        let route = event.route();
        let base_url = match self.base_url(service, group, route).await {
            Ok(url) => url,
            Err(reason) => return Verdict::failed(reason),
        };
        let placeholders = Placeholders {
            image_tag: marker.image_tag.clone(),
            image_digest: marker.image_digest.clone(),
            deployment_id: Some(invocation.deployment_id.clone()),
            ..Default::default()
        };
        let options = RunOptions {
            warmup: service.smoke.warmup,
            deadline: decide_by.min(Instant::now() + service.smoke.deadline),
            concurrency: service.smoke.concurrency,
        };
        tracing::info!(base_url = %base_url, checks = checks.len(), ?route, "running smoke checks");
        let client = match self.http.for_url(&base_url) {
            Ok(client) => client,
            Err(reason) => return Verdict::failed(reason),
        };
        let placeholders = self.with_secrets(&checks, placeholders).await;
        let report = smoke::run(client, &base_url, &checks, &placeholders, &options).await;
        smoke_verdict(report, &base_url, event.as_str())
    }

    /// Where smoke checks aim: config first, else the deployment group's listener.
    /// Never from the event, so a crafted event cannot aim requests elsewhere.
    async fn base_url(
        &self,
        service: &ServiceConfig,
        group: &GroupOnce<'_, D>,
        route: TrafficRoute,
    ) -> Result<String, String> {
        let configured = match route {
            TrafficRoute::Test => &service.smoke.base_url,
            TrafficRoute::Production => &service.smoke.production_url,
        };
        if let Some(url) = configured {
            return Ok(url.clone());
        }
        let summary = group.get().await.map_err(|e| {
            format!(
                "cannot read deployment group {}/{}: {e}",
                group.application, group.name
            )
        })?;
        let (application, group) = (group.application, group.name);
        let (listeners, which, key) = match route {
            TrafficRoute::Test => (&summary.test_listener_arns, "test", "smoke.base_url"),
            TrafficRoute::Production => (
                &summary.production_listener_arns,
                "production",
                "smoke.production_url",
            ),
        };
        let Some(listener) = listeners.first() else {
            return Err(format!(
                "deployment group {application}/{group} has no {which} listener and {key} is not set: nowhere to run smoke checks"
            ));
        };
        self.listeners
            .listener_url(listener)
            .await
            .map_err(|e| format!("cannot resolve the {which} listener {listener}: {e}"))
    }

    async fn notify_approval(&self, deployment_id: &str, service: &str, stage: &str) {
        let region = std::env::var("AWS_REGION").ok();
        let notification = Notification::new(
            NotificationEvent::ApprovalPending,
            Severity::Warning,
            service,
            format!("Approval needed at {stage}"),
        )
        .deployment(deployment_id, region.as_deref())
        .description(format!(
            "Smoke checks passed. The deployment now waits at a PAUSE hook ({stage}) until someone decides; it rolls back if nobody does before the hook's timeout."
        ))
        .next_step(format!("Approve: greenlight approve {service}"))
        .next_step(format!("Reject (roll back): greenlight reject {service}"))
        .fact("lifecycle_stage", stage.to_string());
        self.notifier.notify(&notification).await;
    }

    async fn notify(&self, deployment_id: &str, verdict: &Verdict) {
        let service = verdict.service.as_deref().unwrap_or("unknown");
        let event = verdict
            .lifecycle_event
            .map_or("lifecycle hook".to_string(), |e| e.to_string());
        let (kind, severity, title) = match (verdict.status, &verdict.analysis) {
            (HookStatus::Succeeded, Some(result)) => (
                NotificationEvent::AnalysisPassed,
                if result.verdict == AnalysisVerdict::Pass {
                    Severity::Info
                } else {
                    Severity::Warning
                },
                format!(
                    "analysis {:?} at {event}: green judged against blue",
                    result.verdict
                ),
            ),
            (HookStatus::Failed, Some(_)) => (
                NotificationEvent::AnalysisFailed,
                Severity::Error,
                format!("analysis failed at {event}: rolling back to blue"),
            ),
            (HookStatus::Succeeded, None) => (
                NotificationEvent::HookPassed,
                Severity::Info,
                format!("{event} passed"),
            ),
            (HookStatus::Failed, None) => (
                NotificationEvent::HookFailed,
                Severity::Error,
                format!("{event} failed: deployment will roll back"),
            ),
        };
        let region = std::env::var("AWS_REGION").ok();
        let mut notification = Notification::new(kind, severity, service, title)
            .deployment(deployment_id, region.as_deref())
            .description(verdict.reason.clone())
            .fact("lifecycle_event", event.clone())
            .fact("status", verdict.status.as_str());
        if let Some(tag) = &verdict.image_tag {
            notification = notification.image(tag.clone());
        }
        if let Some(report) = &verdict.smoke {
            notification =
                notification.fact("smoke", serde_json::to_value(report).unwrap_or(Value::Null));
            for line in report.failure_summary() {
                notification = notification.next_step(format!("Check {line}"));
            }
        }
        if let Some(result) = &verdict.analysis {
            // Per interval and metric, green and blue: the figures behind the verdict.
            notification = notification.fact(
                "analysis",
                serde_json::to_value(result).unwrap_or(Value::Null),
            );
        }
        if verdict.status == HookStatus::Failed {
            notification = notification.next_step(
                "Fix the image and push a new tag; production still serves the previous version.",
            );
        }
        self.notifier.notify(&notification).await;
    }
}

/// The PAUSE stage the deployment waits at next, seen from a Greenlight hook that just
/// passed at `stage`: a PAUSE at this stage or a later one, unless another stage
/// Greenlight serves comes first (that invocation will say it then).
pub fn next_pause(
    stage: LifecycleEvent,
    pauses: &[String],
    ours: &[LifecycleEvent],
) -> Option<String> {
    let from = LifecycleEvent::ALL.iter().position(|s| *s == stage)?;
    for later in &LifecycleEvent::ALL[from..] {
        if *later != stage && ours.contains(later) {
            return None;
        }
        if pauses.iter().any(|p| p == later.ecs_name()) {
            return Some(later.ecs_name().to_string());
        }
    }
    None
}

/// The verdict of a finished smoke run.
fn smoke_verdict(report: SmokeReport, base_url: &str, at: &str) -> Verdict {
    let (status, reason) = if report.passed {
        (
            HookStatus::Succeeded,
            format!(
                "{} smoke check(s) passed against {base_url} at {at}",
                report.checks.len()
            ),
        )
    } else {
        (
            HookStatus::Failed,
            format!(
                "{} of {} smoke check(s) failed against {base_url} at {at}: {}",
                report.checks.len() - report.passed_count(),
                report.checks.len(),
                report.failure_summary().join("; ")
            ),
        )
    };
    Verdict {
        status,
        reason,
        smoke: Some(report),
        ..Verdict::failed("")
    }
}

/// Runs `decide` in its own task until `decide_by`: a panic or an overrun still
/// yields a (Failed) verdict.
async fn guarded<F>(decide_by: Instant, decide: F) -> Verdict
where
    F: std::future::Future<Output = Verdict> + Send + 'static,
{
    // AWS reads while deciding retry throttling only until `decide_by`, so the
    // answer still has its margin.
    let mut task = tokio::spawn(retry::within(decide_by, decide).in_current_span());
    match tokio::time::timeout_at(decide_by, &mut task).await {
        Ok(Ok(verdict)) => verdict,
        Ok(Err(join_error)) if join_error.is_panic() => {
            let panic = join_error.into_panic();
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            tracing::error!(panic = %message, "the hook's decision panicked; answering Failed");
            Verdict::failed(format!(
                "Greenlight hook failed internally (panic: {message}); failing closed"
            ))
        }
        Ok(Err(join_error)) => Verdict::failed(format!(
            "Greenlight hook task ended unexpectedly: {join_error}"
        )),
        Err(_) => {
            task.abort();
            tracing::error!("the hook's decision ran past its time budget; answering Failed");
            Verdict::failed("smoke tests did not finish before the hook's deadline (Lambda timeout minus the reporting margin)")
        }
    }
}

/// Requests a smoke run sent (every attempt of every check).
fn smoke_requests(report: &SmokeReport) -> f64 {
    report
        .checks
        .iter()
        .map(|c| c.attempts.len())
        .sum::<usize>() as f64
}

/// The hook's answer for an analysis result: Failed when the run wants a stop.
fn analysis_verdict(result: &RunResult, cut_short: bool) -> Verdict {
    let mut reason = analysis::summary(result);
    if cut_short {
        reason.push_str("\n(judged before the window ended: the hook's deadline came first; raise the AfterAllowTraffic hook's timeout above window + settle)");
    }
    if result.verdict != AnalysisVerdict::Pass && !result.stop {
        reason.push_str("\n(not stopping: dry_run or on_inconclusive: pass)");
    }
    let base = if result.stop {
        Verdict::failed(reason)
    } else {
        Verdict::succeeded(reason)
    };
    Verdict {
        analysis: Some(result.clone()),
        ..base
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Reads `GREENLIGHT_HOOK`; an unknown value is an init error naming the variable.
pub fn hook_event_from_env() -> Result<Option<LifecycleEvent>, String> {
    match std::env::var(ENV_HOOK) {
        Err(_) => Ok(None),
        Ok(value) if value.trim().is_empty() => Ok(None),
        Ok(value) => value
            .parse()
            .map(Some)
            .map_err(|e| format!("{ENV_HOOK}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_pause_is_announced_by_the_last_greenlight_stage_before_it() {
        use LifecycleEvent::*;
        let ours = [AfterAllowTestTraffic, AfterAllowTraffic];
        let pauses = ["PRE_PRODUCTION_TRAFFIC_SHIFT".to_string()];
        assert_eq!(
            next_pause(AfterAllowTestTraffic, &pauses, &ours).as_deref(),
            Some("PRE_PRODUCTION_TRAFFIC_SHIFT")
        );
        assert_eq!(
            next_pause(AfterAllowTraffic, &pauses, &ours),
            None,
            "already past it"
        );
        // A Greenlight stage in between announces it instead.
        let ours_between = [AfterInstall, AfterAllowTestTraffic];
        let at_test = ["POST_TEST_TRAFFIC_SHIFT".to_string()];
        assert_eq!(next_pause(AfterInstall, &at_test, &ours_between), None);
        assert_eq!(
            next_pause(AfterAllowTestTraffic, &at_test, &ours_between).as_deref(),
            Some("POST_TEST_TRAFFIC_SHIFT"),
            "a PAUSE at the same stage runs after Greenlight's hook"
        );
        assert_eq!(next_pause(AfterAllowTestTraffic, &[], &ours), None);
    }

    /// Counts GetDeploymentGroup calls.
    #[derive(Default)]
    struct CountingReader(std::sync::atomic::AtomicUsize);

    impl DeploymentReader for CountingReader {
        async fn deployment(
            &self,
            _: &str,
        ) -> Result<greenlight::aws::DeploymentSummary, AwsError> {
            unreachable!("not read here")
        }
        async fn deployment_group(
            &self,
            application: &str,
            group: &str,
        ) -> Result<greenlight::aws::DeploymentGroupSummary, AwsError> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(greenlight::aws::DeploymentGroupSummary {
                application: application.into(),
                deployment_group: group.into(),
                ..Default::default()
            })
        }
        async fn current_lifecycle_event(
            &self,
            _: &str,
        ) -> Result<Option<LifecycleEvent>, AwsError> {
            unreachable!("not read here")
        }
        async fn traffic(
            &self,
            _: &str,
        ) -> Result<greenlight::aws::codedeploy::DeploymentTraffic, AwsError> {
            unreachable!("not read here")
        }
    }

    #[tokio::test]
    async fn the_deployment_group_is_read_once_per_invocation() {
        let reader = CountingReader::default();
        let group = GroupOnce::new(&reader, "shop", "web-dg");
        // The smoke checks' listener, then the analysis's load balancer.
        assert_eq!(group.get().await.unwrap().deployment_group, "web-dg");
        assert_eq!(group.get().await.unwrap().application, "shop");
        assert_eq!(reader.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
