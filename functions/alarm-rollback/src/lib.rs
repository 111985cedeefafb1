//! Alarm rollback: a CloudWatch alarm going into ALARM (EventBridge, SNS or the
//! alarm's Lambda action) stops the in-flight deployments of the services it guards,
//! with rollback: StopDeployment for CodeDeploy groups, StopServiceDeployment
//! (ROLLBACK) for ECS-native services, through the one deployment seam.
//!
//! Which services: those whose config lists the alarm, plus the CodeDeploy services
//! whose group's own `alarmConfiguration` names it (so alarms already configured on
//! CodeDeploy need no second list). Groups and services Greenlight does not manage
//! are not its business: CodeDeploy and ECS watch their alarms themselves. (ECS-native
//! services' own `deploymentConfiguration.alarms` are ECS's to act on.)
//!
//! Cost: the number of AWS calls depends on the configuration only, never on the
//! size of the account: one BatchGetDeploymentGroups per configured application (up
//! to 100 groups a call, applications concurrently), one ListDeployments per guarded
//! group, one StopDeployment per deployment in flight. The group configurations are
//! read afresh for every alarm, not cached: a cache could only ever skip a stop (a
//! group whose alarm list changed a moment ago), and the read is one call per
//! application.
//!
//! Stopping is idempotent: a finished deployment is a no-op, and a repeated alarm
//! event finds nothing left in flight.

mod revoke;

use std::collections::BTreeSet;

use futures::future::join_all;
use greenlight::aws::sns::Publisher;
use greenlight::aws::AwsError;
use greenlight::deploy::{Backends, DeploymentTarget, StopOutcome};
use greenlight::events::AlarmTransition;
use greenlight::notify::{Notification, NotificationEvent, Notifier, Severity};
use serde::Serialize;
use serde_json::Value;

/// IAM actions this function calls; the template test checks the role grants exactly these.
pub const IAM_ACTIONS: &[&str] = &[
    "codedeploy:ListDeployments",
    "codedeploy:StopDeployment",
    "codedeploy:BatchGetDeploymentGroups",
    "ecs:ListServiceDeployments",
    "ecs:StopServiceDeployment",
    "sns:Publish",
    // The configuration, when it lives in Parameter Store or S3.
    "ssm:GetParameter",
    "s3:GetObject",
    // The release ledger (GREENLIGHT_LEDGER_TABLE): one write per notified step, and
    // the newest attempts of a service others promote from (to revoke what soaks).
    "dynamodb:UpdateItem",
    "dynamodb:Query",
];

/// A configured service an alarm guards, and where its deployments run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct GuardedGroup {
    pub service: String,
    #[serde(flatten)]
    pub target: GuardTarget,
}

/// Where a guarded service's deployments run (the seam's answer).
pub type GuardTarget = DeploymentTarget;

/// What happened to one deployment.
#[derive(Debug, Clone, Serialize)]
pub struct StopResult {
    pub group: GuardedGroup,
    pub deployment_id: String,
    pub outcome: StopOutcome,
}

/// What the handler did for one alarm.
#[derive(Debug, Clone, Serialize)]
pub struct AlarmOutcome {
    pub alarm: String,
    pub acted: bool,
    pub reason: String,
    pub stopped: Vec<StopResult>,
    pub errors: Vec<AwsError>,
}

pub struct Rollback<P> {
    pub config: greenlight::config_source::SharedConfig,
    pub backends: Backends,
    pub notifier: Notifier<P>,
    /// The release ledger: an alarm revokes a digest soaking before promotion.
    pub ledger: Option<greenlight::ledger::Ledger>,
}

impl<P: Publisher> Rollback<P> {
    /// Handles one event (EventBridge alarm event or SNS event with alarm records).
    /// Returns an error only when an AWS call failed, so Lambda retries the event;
    /// a retry is safe because stopping is idempotent.
    pub async fn handle(&self, event: Value) -> Result<Value, greenlight::Error> {
        let alarms = AlarmTransition::parse_all(&event)?;
        let mut outcomes = Vec::with_capacity(alarms.len());
        for alarm in &alarms {
            outcomes.push(self.on_alarm(alarm).await);
        }
        let errors: Vec<&AwsError> = outcomes.iter().flat_map(|o| &o.errors).collect();
        if let Some(first) = errors.first() {
            // The first failure keeps its service, operation and code, so the log and
            // Lambda's error name what failed (e.g. a throttled ListDeployments).
            let mut error = (*first).clone();
            error.message = format!(
                "{} (1 of {} AWS error(s) while handling the alarm; the event is retried, and stopping again is safe)",
                error.message,
                errors.len()
            );
            error.retryable = true;
            tracing::error!(service = error.service, operation = error.operation, code = error.code.as_deref().unwrap_or(""), error = %error, "returning the alarm event to Lambda for a retry");
            return Err(greenlight::Error::Aws(error));
        }
        Ok(serde_json::to_value(&outcomes).unwrap_or(Value::Null))
    }

    async fn on_alarm(&self, alarm: &AlarmTransition) -> AlarmOutcome {
        let span =
            tracing::info_span!("alarm", alarm = %alarm.alarm_name, state = alarm.state.as_str());
        let _enter = span.enter();
        if !alarm.entered_alarm() {
            let reason = format!(
                "{} went {} -> {}: only a transition into ALARM stops deployments",
                alarm.alarm_name,
                alarm.previous_state.map_or("?", |s| s.as_str()),
                alarm.state.as_str()
            );
            tracing::info!(%reason, "alarm ignored");
            return AlarmOutcome {
                alarm: alarm.alarm_name.clone(),
                acted: false,
                reason,
                stopped: Vec::new(),
                errors: Vec::new(),
            };
        }
        let mut errors = Vec::new();
        let groups = self.guarded_groups(&alarm.alarm_name, &mut errors).await;
        let per_group = join_all(groups.iter().map(|group| self.stop_group(group))).await;
        let mut stopped = Vec::new();
        for result in per_group {
            match result {
                Ok(mut results) => stopped.append(&mut results),
                Err(e) => errors.push(e),
            }
        }
        join_all(stopped.iter().map(|result| self.notify_stop(alarm, result))).await;
        // Services with nothing in flight may be soaking a digest others promote.
        let mut revoked = Vec::new();
        for group in groups
            .iter()
            .filter(|g| !stopped.iter().any(|s| s.group.service == g.service))
        {
            match self.revoke_soaking(alarm, &group.service).await {
                Ok(Some(entry)) => revoked.push(entry.deployment_id),
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
        let reason = if stopped.is_empty() && !revoked.is_empty() {
            format!(
                "nothing in flight; revoked the soaking digest of {}",
                revoked.join(", ")
            )
        } else if stopped.is_empty() {
            let reason = if groups.is_empty() {
                format!("no configured service is guarded by {}", alarm.alarm_name)
            } else {
                format!(
                    "no deployment in flight in the {} service(s) {} guards",
                    groups.len(),
                    alarm.alarm_name
                )
            };
            tracing::info!(%reason, "nothing to stop");
            if self.config.load().notifications.notify_idle_alarms {
                let service = groups
                    .first()
                    .map(|g| g.service.clone())
                    .unwrap_or_else(|| "unknown".into());
                let notification = Notification::new(
                    NotificationEvent::AlarmWithoutDeployment,
                    Severity::Warning,
                    &service,
                    format!(
                        "Alarm {} fired with no deployment in flight",
                        alarm.alarm_name
                    ),
                )
                .description(format!("{reason}. Reason: {}", alarm.reason))
                .fact("alarm", alarm.alarm_name.clone());
                self.notifier.notify(&notification).await;
            }
            reason
        } else {
            format!("stopped {} deployment(s) with rollback", stopped.len())
        };
        AlarmOutcome {
            alarm: alarm.alarm_name.clone(),
            acted: !stopped.is_empty(),
            reason,
            stopped,
            errors,
        }
    }

    /// Services whose configuration lists the alarm, and those whose deployment
    /// group names it in its own alarm configuration, deduplicated.
    async fn guarded_groups(&self, alarm: &str, errors: &mut Vec<AwsError>) -> Vec<GuardedGroup> {
        let config = self.config.load();
        let (services, lookup_errors) = self.backends.guarded_by(&config, alarm).await;
        for e in lookup_errors {
            // Config-listed services are still stopped; the error makes Lambda retry for the rest.
            tracing::error!(error = %e, "cannot read the alarm configuration of configured deployment groups");
            errors.push(e);
        }
        let guarded: BTreeSet<GuardedGroup> = services
            .into_iter()
            .filter_map(|service| {
                Some(GuardedGroup {
                    service: service.name.clone(),
                    target: self.backends.for_service(service).deployment_target()?,
                })
            })
            .collect();
        guarded.into_iter().collect()
    }

    async fn stop_group(&self, group: &GuardedGroup) -> Result<Vec<StopResult>, AwsError> {
        let config = self.config.load();
        let Some(service) = config.service_by_name(&group.service) else {
            return Ok(Vec::new());
        };
        let backend = self.backends.for_service(service);
        let ids = backend.in_flight().await?;
        let stops = join_all(ids.iter().map(|id| backend.stop_with_rollback(id))).await;
        let mut results = Vec::new();
        for (id, stop) in ids.into_iter().zip(stops) {
            let outcome = stop?;
            tracing::info!(
                deployment_id = %id,
                service = %group.service,
                target = %backend.target(),
                ?outcome,
                "stop with rollback requested"
            );
            results.push(StopResult {
                group: group.clone(),
                deployment_id: id,
                outcome,
            });
        }
        Ok(results)
    }

    async fn notify_stop(&self, alarm: &AlarmTransition, result: &StopResult) {
        if let StopOutcome::AlreadyDone { .. } = result.outcome {
            return;
        }
        let service = result.group.service.clone();
        let mut notification = Notification::new(
            NotificationEvent::RollbackRequested,
            Severity::Error,
            &service,
            format!("Alarm {} fired: deployment stopped, rolling back", alarm.alarm_name),
        )
        .deployment(&result.deployment_id, std::env::var("AWS_REGION").ok().as_deref())
        .description(format!("{} went into ALARM: {}", alarm.alarm_name, alarm.reason))
        .next_step("Production traffic returns to the previous (blue) task set; check the alarm's metric on the new version.")
        .fact("alarm", alarm.alarm_name.clone())
        .fact("reason", alarm.reason.clone())
        .fact(
            "target",
            serde_json::to_value(&result.group.target).unwrap_or(Value::Null),
        );
        if let Some(metric) = &alarm.metric {
            notification = notification.fact("metric", metric.clone());
        }
        if let Some(threshold) = alarm.threshold {
            notification = notification.fact("threshold", threshold);
        }
        self.notifier.notify(&notification).await;
    }
}
