//! The CodeDeploy adapter: an invocation names a deployment and a hook execution;
//! the service is the one of the deployment's group, the image the marker in its
//! description; the checks aim at the group's test (or production) listener; the
//! analysis holds AfterAllowTraffic, blue still there, until the window is judged;
//! the answer goes through PutLifecycleEventHookExecutionStatus (the contract).

use std::sync::Arc;
use std::time::Duration;

use greenlight::analysis::{self, AnalysisConfig, RunResult};
use greenlight::aws::codedeploy::{DeploymentReader, DeploymentStopper, HookReporter};
use greenlight::aws::ecs::ServiceRules;
use greenlight::aws::elb::ListenerResolver;
use greenlight::aws::sns::Publisher;
use greenlight::aws::{retry, AwsError, DeploymentGroupSummary, DeploymentSummary, HookReport};
use greenlight::config::Config;
use greenlight::events::HookInvocation;
use greenlight::lifecycle::TrafficRoute;
use greenlight::marker::DeploymentMarker;
use greenlight::smoke::RunOptions;
use greenlight::LifecycleEvent;
use serde_json::{json, Value};
use tokio::time::Instant;
use tracing::Instrument;

use crate::core::{self, decide_by, now_ms, Aim, AimError, AnalysisStep, Context};
use crate::notify;
use crate::verdict::{analysis_verdict, smoke_requests, smoke_verdict, Verdict};
use crate::{Error, Hook, HookContract, ANSWER_RESERVE, ENV_HOOK, REPORT_RESERVE};

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
        let status = verdict.status();
        // The adapter retries throttling and 5xx until `deadline` (see greenlight::aws::retry).
        let source = match tokio::time::timeout_at(
            deadline,
            retry::within(
                deadline,
                self.reporter
                    .report(&invocation.deployment_id, &invocation.execution_id, status),
            ),
        )
        .await
        {
            Ok(Ok(outcome)) => {
                if outcome == HookReport::AlreadyCompleted {
                    tracing::info!("CodeDeploy already had an answer for this hook execution (a retried invocation): done");
                }
                return Ok(json!({
                    "status": status.as_str(),
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
            status: status.as_str(),
            source,
        })
    }
}

/// Why the lifecycle event of an invocation is not known.
#[derive(Debug, thiserror::Error)]
enum UnknownEvent {
    #[error("{ENV_HOOK} is not set and CodeDeploy reports no lifecycle event in progress")]
    NoneInProgress,
    #[error("{ENV_HOOK} is not set and the lifecycle event could not be read: {0}")]
    Unreadable(AwsError),
}

/// The invocation's deployment group, read at most once: the smoke checks' listener
/// and the analysis's load balancer both come from it.
pub(crate) struct GroupOnce<'a, D> {
    deployments: &'a D,
    application: &'a str,
    name: &'a str,
    read: tokio::sync::OnceCell<DeploymentGroupSummary>,
}

impl<'a, D: DeploymentReader> GroupOnce<'a, D> {
    pub(crate) fn new(deployments: &'a D, application: &'a str, name: &'a str) -> Self {
        GroupOnce {
            deployments,
            application,
            name,
            read: tokio::sync::OnceCell::new(),
        }
    }

    pub(crate) async fn get(&self) -> Result<&DeploymentGroupSummary, AwsError> {
        self.read
            .get_or_try_init(|| {
                self.deployments
                    .deployment_group(self.application, self.name)
            })
            .await
    }
}

impl<D, L, P, C, S> Hook<D, L, P, C, S>
where
    D: DeploymentReader + 'static,
    L: ListenerResolver + 'static,
    P: Publisher + 'static,
    C: HookContract + 'static,
    S: ServiceRules + 'static,
{
    /// Decides, reports through the contract, then notifies: the report never waits
    /// for a notification.
    pub(crate) async fn handle_codedeploy(
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
            let decide_by = decide_by(deadline, self.report_margin);
            let this = Arc::clone(self);
            let inv = invocation.clone();
            let verdict = core::decide_guarded(decide_by, &self.config, move |config| async move {
                this.decide_codedeploy(&config, &inv, decide_by).await
            })
            .await;
            let span = tracing::Span::current();
            if let Some(service) = &verdict.service {
                span.record("service", service.as_str());
            }
            if let Some(event) = verdict.lifecycle_event {
                span.record("lifecycle_event", event.as_str());
            }
            tracing::info!(status = verdict.status().as_str(), reason = %verdict.reason, "hook decided");
            let report_by = retry::less_margin(deadline, REPORT_RESERVE);
            let delivered = self.contract.deliver(&invocation, &verdict, report_by).await;
            // Bounded, so the invocation ends before Lambda's deadline.
            let notify_by = retry::less_margin(deadline, ANSWER_RESERVE);
            if retry::bounded(notify_by, notify::verdict(&self.notifier, &invocation.deployment_id, &verdict, LifecycleEvent::as_str))
                .await
                .is_none()
            {
                tracing::warn!("notification cut off at the invocation's deadline");
            }
            match delivered {
                // Greenlight stopped the deployment itself: the event may be closed.
                Err(e) if verdict.stopped => {
                    tracing::warn!(error = %e, "the deployment was stopped with rollback; its hook could not be answered after that");
                    Ok(json!({"status": verdict.status().as_str(), "stopped": true}))
                }
                delivered => delivered,
            }
        }
        .instrument(span)
        .await
    }

    async fn decide_codedeploy(
        &self,
        config: &Config,
        invocation: &HookInvocation,
        decide_by: Instant,
    ) -> Verdict {
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
        let named = |verdict: Verdict| Verdict {
            service: Some(service.name.clone()),
            ..verdict
        };
        let event = match self.event_of(invocation).await {
            Ok(event) => event,
            Err(e) => return named(Verdict::failed(e.to_string())),
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
        let context = Context {
            service,
            stage: event,
            at: event.as_str(),
            deployment_id: invocation.deployment_id.clone(),
            image_tag: marker.image_tag.clone(),
            image_digest: marker.image_digest.clone(),
        };
        let options = RunOptions {
            warmup: service.smoke.warmup,
            deadline: decide_by.min(Instant::now() + service.smoke.deadline),
            concurrency: service.smoke.concurrency,
        };
        let mut verdict = match core::run_checks(
            &self.http,
            &self.secrets,
            &context,
            options,
            listener_aim(&self.listeners, &group, event.route()),
        )
        .await
        {
            Ok(ran) => smoke_verdict(ran.report, &ran.base_url, context.at),
            Err(reached) => *reached,
        };
        if let (LifecycleEvent::AfterAllowTraffic, Some(settings), true) =
            (event, &service.analysis, verdict.is_pass())
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

    /// The event this function serves (`GREENLIGHT_HOOK`), else the one CodeDeploy
    /// reports in progress.
    async fn event_of(&self, invocation: &HookInvocation) -> Result<LifecycleEvent, UnknownEvent> {
        if let Some(event) = self.hook_event {
            return Ok(event);
        }
        match self
            .deployments
            .current_lifecycle_event(&invocation.deployment_id)
            .await
        {
            Ok(Some(event)) => Ok(event),
            Ok(None) => Err(UnknownEvent::NoneInProgress),
            Err(e) => Err(UnknownEvent::Unreadable(e)),
        }
    }

    /// The analysis window began when AllowTraffic did (canary and linear steps
    /// included); this hook holds the deployment until the window is judged, a
    /// failure is certain, or its own deadline comes.
    async fn analyze_codedeploy(
        &self,
        deployment: &DeploymentSummary,
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
            match core::analysis_step(&self.gate.metrics, settings, &targets, from, now, &smoke)
                .await
            {
                Err(e) => {
                    return Verdict::failed(format!("analysis: cannot read the metrics: {e}"))
                }
                Ok(AnalysisStep::Judged(result)) => return self.conclude(id, result, false).await,
                Ok(AnalysisStep::Waiting { so_far, wait }) => {
                    if Instant::now() + wait + Duration::from_secs(1) > decide_by {
                        // The hook's own deadline comes first: judge what has settled.
                        let result =
                            so_far.unwrap_or_else(|| analysis::judge_run(settings, Vec::new()));
                        return self.conclude(id, result, true).await;
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// A failed analysis takes the alarm's path: stop with rollback, whatever the
    /// group's auto-rollback settings; the Failed answer follows.
    async fn conclude(&self, id: &str, result: RunResult, cut_short: bool) -> Verdict {
        let mut verdict = analysis_verdict(&result, cut_short);
        if result.stop {
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
}

/// The deployment group's test (or production) listener as a URL.
async fn listener_aim<D: DeploymentReader, L: ListenerResolver>(
    listeners: &L,
    group: &GroupOnce<'_, D>,
    route: TrafficRoute,
) -> Result<Aim, AimError> {
    let (application, name) = (group.application, group.name);
    let summary = group.get().await.map_err(|source| AimError::Read {
        what: format!("deployment group {application}/{name}"),
        source,
    })?;
    let (found, which, key) = match route {
        TrafficRoute::Test => (&summary.test_listener_arns, "test", "smoke.base_url"),
        TrafficRoute::Production => (
            &summary.production_listener_arns,
            "production",
            "smoke.production_url",
        ),
    };
    let Some(listener) = found.first() else {
        return Err(AimError::Nowhere {
            owner: format!("deployment group {application}/{name}"),
            missing: format!("{which} listener"),
            key,
        });
    };
    let url = listeners
        .listener_url(listener)
        .await
        .map_err(|source| AimError::Resolve {
            what: format!("the {which} listener {listener}"),
            source,
        })?;
    Ok(Aim {
        url,
        headers: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts GetDeploymentGroup calls.
    #[derive(Default)]
    struct CountingReader(std::sync::atomic::AtomicUsize);

    impl DeploymentReader for CountingReader {
        async fn deployment(&self, _: &str) -> Result<DeploymentSummary, AwsError> {
            unreachable!("not read here")
        }
        async fn deployment_group(
            &self,
            application: &str,
            group: &str,
        ) -> Result<DeploymentGroupSummary, AwsError> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(DeploymentGroupSummary {
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
