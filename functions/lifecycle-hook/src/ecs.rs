//! The ECS-native adapter: an invocation names a service deployment, its service
//! and a stage; the image is the target revision's; the checks aim at the service's
//! test (or production) listener rule, with the headers the rule matches on. The
//! answer is the return value: `hookStatus` SUCCEEDED or FAILED, or IN_PROGRESS with
//! a `callBackDelay` and `hookDetails` when a run outlasts the invocation (no
//! database: the state travels in `hookDetails`). A hook invoked during a rollback
//! answers SUCCEEDED at once (Greenlight never blocks a rollback). It never returns
//! an error to ECS: an error rolls the deployment back without saying why.

use std::sync::Arc;
use std::time::Duration;

use greenlight::analysis::{self, AnalysisConfig};
use greenlight::aws::codedeploy::DeploymentReader;
use greenlight::aws::ecs::ServiceRules;
use greenlight::aws::elb::{ListenerResolver, RuleTarget};
use greenlight::aws::retry;
use greenlight::aws::sns::Publisher;
use greenlight::config::{Config, ServiceConfig};
use greenlight::events::EcsHookInvocation;
use greenlight::lifecycle::TrafficRoute;
use greenlight::smoke::RunOptions;
use greenlight::LifecycleEvent;
use serde_json::{json, Value};
use tokio::time::Instant;
use tracing::Instrument;

use crate::core::{self, decide_by, now_ms, Aim, AimError, AnalysisStep, Context};
use crate::notify;
use crate::verdict::{analysis_verdict, smoke_verdict, Outcome, Verdict};
use crate::{Hook, HookContract, ANSWER_RESERVE};

/// How long ECS waits before invoking an IN_PROGRESS hook again.
pub const ECS_CALLBACK_DELAY_SECONDS: u32 = 5;
/// Where the hook keeps its own state inside ECS's `hookDetails`.
const STATE_KEY: &str = "greenlight";
/// The longest the hook looks for the target revision's image (for `${image_tag}` and
/// `${image_digest}`) before checking without it.
pub const IMAGE_LOOKUP_BUDGET: Duration = Duration::from_secs(3);

/// The ECS-native answer: `{hookStatus, callBackDelay?, hookDetails?, reason}`.
pub fn ecs_answer(verdict: &Verdict) -> Value {
    match &verdict.outcome {
        Outcome::Continue { state, delay } => json!({
            "hookStatus": "IN_PROGRESS",
            "callBackDelay": delay,
            "hookDetails": state,
            "reason": verdict.reason,
        }),
        Outcome::Pass => json!({"hookStatus": "SUCCEEDED", "reason": verdict.reason}),
        Outcome::Fail => json!({"hookStatus": "FAILED", "reason": verdict.reason}),
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

/// `hookDetails` with the hook's own state set.
fn details_with(invocation: &EcsHookInvocation, state: Value) -> Value {
    let mut details = invocation.hook_details.clone();
    if !details.is_object() {
        details = json!({});
    }
    details[STATE_KEY] = state;
    details
}

impl<D, L, P, C, S> Hook<D, L, P, C, S>
where
    D: DeploymentReader + 'static,
    L: ListenerResolver + 'static,
    P: Publisher + 'static,
    C: HookContract + 'static,
    S: ServiceRules + 'static,
{
    /// Decides, notifies (bounded: the answer is the return value), answers.
    pub(crate) async fn handle_ecs(
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
            let decide_by = decide_by(deadline, self.report_margin);
            let this = Arc::clone(self);
            let inv = invocation.clone();
            let verdict = core::decide_guarded(decide_by, &self.config, move |config| async move {
                this.decide_ecs(&config, &inv, decide_by).await
            })
            .await;
            if let Some(service) = &verdict.service {
                tracing::Span::current().record("service", service.as_str());
            }
            let answer = ecs_answer(&verdict);
            tracing::info!(hook_status = %answer["hookStatus"], reason = %verdict.reason, "hook decided");
            // An SNS that never answers must not push the answer past ECS's deadline.
            let notify_by = retry::less_margin(deadline, ANSWER_RESERVE);
            let notified = retry::bounded(notify_by, async {
                if verdict.is_final() && !verdict.quiet {
                    notify::verdict(&self.notifier, &invocation.resource_arn, &verdict, LifecycleEvent::ecs_name).await;
                }
                if let (Some(stage), Some(service)) = (&verdict.approval_at, &verdict.service) {
                    notify::approval(&self.notifier, &invocation.resource_arn, service, stage)
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

    async fn decide_ecs(
        &self,
        config: &Config,
        invocation: &EcsHookInvocation,
        decide_by: Instant,
    ) -> Verdict {
        if invocation.is_rollback() {
            // Answered at once and not announced: the rollback's cause was notified.
            return Verdict {
                quiet: true,
                ..Verdict::passed(format!(
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
            return named(Verdict::passed(format!(
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
        if !service.hook_stages().contains(&stage) {
            return named(Verdict {
                lifecycle_event: Some(stage),
                ..Verdict::passed(format!(
                    "{} is not in ecs_native.stages of {}: nothing to check",
                    stage.ecs_name(),
                    service.name
                ))
            });
        }
        let (image_tag, image_digest) = self.target_image(service, invocation, decide_by).await;
        let context = Context {
            service,
            stage,
            at: stage.ecs_name(),
            deployment_id: invocation.resource_arn.clone(),
            image_tag: image_tag.clone(),
            image_digest,
        };
        let mut verdict = self.smoke_ecs(&context, invocation, decide_by).await;
        if verdict.is_pass() {
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

    /// The target revision's image: optional information with its own short budget,
    /// so an ECS answering 5xx (retried) cannot spend the time the checks and the
    /// answer need.
    async fn target_image(
        &self,
        service: &ServiceConfig,
        invocation: &EcsHookInvocation,
        decide_by: Instant,
    ) -> (Option<String>, Option<String>) {
        let Some(revision) = &invocation.target_revision_arn else {
            return (None, None);
        };
        let budget =
            IMAGE_LOOKUP_BUDGET.min(decide_by.saturating_duration_since(Instant::now()) / 4);
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

    /// Resumable runs: the first invocation notes when checking began; the smoke
    /// deadline counts from there, across IN_PROGRESS re-invocations.
    async fn smoke_ecs(
        &self,
        context: &Context<'_>,
        invocation: &EcsHookInvocation,
        decide_by: Instant,
    ) -> Verdict {
        let smoke = &context.service.smoke;
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
            (smoke.deadline.as_millis() as i64 - (now_ms() - started_ms)).max(0) as u64,
        );
        let smoke_deadline = Instant::now() + budget_left;
        // The run stops a little before the decision deadline, so that its own
        // verdict (maybe IN_PROGRESS), not the guard's timeout, is the answer.
        let run_by = decide_by
            - Duration::from_millis(250)
                .min(decide_by.saturating_duration_since(Instant::now()) / 4);
        let lambda_bound = run_by < smoke_deadline;
        let options = RunOptions {
            warmup: if attempt == 1 {
                smoke.warmup
            } else {
                Duration::ZERO
            },
            deadline: run_by.min(smoke_deadline),
            concurrency: smoke.concurrency,
        };
        tracing::info!(attempt, "smoke run");
        let aim = self.rule_aim(context.service, context.stage.route());
        let ran = match core::run_checks(&self.http, &self.secrets, context, options, aim).await {
            Ok(ran) => ran,
            Err(reached) => return *reached,
        };
        if !ran.report.passed && ran.report.deadline_reached && lambda_bound {
            let state = details_with(
                invocation,
                json!({"started_ms": started_ms, "attempt": attempt}),
            );
            return Verdict {
                smoke: Some(ran.report),
                ..Verdict::continuing(state, ECS_CALLBACK_DELAY_SECONDS, format!(
                    "smoke checks need more time than this invocation has (attempt {attempt}); ECS invokes again in {ECS_CALLBACK_DELAY_SECONDS} s"
                ))
            };
        }
        smoke_verdict(ran.report, &ran.base_url, context.at)
    }

    /// The test (or production) listener rule of the service, as a URL and headers.
    async fn rule_aim(
        &self,
        service: &ServiceConfig,
        route: TrafficRoute,
    ) -> Result<Aim, AimError> {
        let target = self.rule_target(service, route).await?;
        if !target.path_patterns.is_empty() {
            tracing::info!(path_patterns = ?target.path_patterns, "the listener rule matches these paths only");
        }
        Ok(Aim {
            url: target.url,
            headers: target.headers,
        })
    }

    async fn rule_target(
        &self,
        service: &ServiceConfig,
        route: TrafficRoute,
    ) -> Result<RuleTarget, AimError> {
        let rules = self
            .services
            .listener_rules(&service.cluster, &service.service)
            .await
            .map_err(|source| AimError::Read {
                what: format!(
                    "the listener rules of {}/{}",
                    service.cluster, service.service
                ),
                source,
            })?;
        let (rule, which, key) = match route {
            TrafficRoute::Test => (rules.test, "test", "smoke.base_url"),
            TrafficRoute::Production => (rules.production, "production", "smoke.production_url"),
        };
        let Some(rule) = rule else {
            return Err(AimError::Nowhere {
                owner: format!("service {}/{}", service.cluster, service.service),
                missing: format!("{which} listener rule (loadBalancers[].advancedConfiguration)"),
                key,
            });
        };
        self.listeners
            .rule_target(&rule)
            .await
            .map_err(|source| AimError::Resolve {
                what: format!("the {which} listener rule {rule}"),
                source,
            })
    }

    /// The analysis holds the first production step (the canary, or all traffic
    /// with BLUE_GREEN) until the window is judged, answering IN_PROGRESS between
    /// intervals; the window's start travels in `hookDetails`.
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
                            ..Verdict::passed(format!(
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
        let (so_far, wait) =
            match core::analysis_step(&self.gate.metrics, settings, &targets, from, now_ms(), &[])
                .await
            {
                Err(e) => {
                    return Verdict::failed(format!("analysis: cannot read the metrics: {e}"))
                }
                // FAILED makes ECS roll back: the native stop with rollback.
                Ok(AnalysisStep::Judged(result)) => return analysis_verdict(&result, false),
                Ok(AnalysisStep::Waiting { so_far, wait }) => (so_far, wait),
            };
        let judged = so_far.as_ref().map_or(0, |r| r.intervals.len());
        let state = details_with(invocation, json!({"analysis_from_ms": from}));
        Verdict {
            analysis: so_far,
            ..Verdict::continuing(
                state,
                wait.as_secs_f64().ceil().max(1.0) as u32,
                format!(
                    "analysing green against blue ({} green, {} blue): {judged} interval(s) judged so far",
                    targets.green_target_group, targets.blue_target_group
                ),
            )
        }
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
}
