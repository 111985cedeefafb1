//! Acting on promotions: after a source's deployment completes, each service that
//! promotes from it gets its soak scheduled (one CreateSchedule) or, with no soak,
//! its promotion at once; when a promotion is due, the two services' attempts are
//! read from the ledger (two Queries), [`crate::promotion::decide`] decides, and a
//! promoted digest is deployed exactly as a push would be, by the target's path.

use greenlight::aws::scheduler::{OneTime, Scheduled};
use greenlight::aws::sns::Publisher;
use greenlight::aws::AwsError;
use greenlight::config::{Config, ServiceConfig};
use greenlight::events::{PromotionDue, PROMOTION_DUE, PROMOTION_SOURCE};
use greenlight::ledger::Trigger;

use crate::promotion::{decide, due_after, PromotionDecision};
use crate::{DeployOnPush, ServiceOutcome, ServiceReport};

/// Attempts read per service to decide a promotion (newest first): a week's soak
/// in a service deployed more often than this is not a soak.
const ATTEMPTS_READ: usize = 200;

impl<P: Publisher> DeployOnPush<P> {
    /// What a completed deployment of `source` (of `digest`) makes due. `Err` only
    /// for retryable AWS errors (the state-change event is retried; the schedule's
    /// name makes a second CreateSchedule a no-op).
    pub(crate) async fn after_success(
        &self,
        config: &Config,
        source: &ServiceConfig,
        digest: &str,
        deployment_id: &str,
        region: &str,
    ) -> Result<Vec<ServiceReport>, AwsError> {
        let mut reports = Vec::new();
        for (target, due) in due_after(&config.services, &source.name, digest, deployment_id) {
            let soak = target.promote.as_ref().map(|p| p.soak).unwrap_or_default();
            if soak.is_zero() {
                reports.push(self.promote(config, target, &due, region).await?);
                continue;
            }
            let at = now_seconds() + soak.as_secs() as i64;
            let outcome = match &self.scheduler {
                None => ServiceOutcome::PromotionRefused {
                    digest: due.digest.clone(),
                    reason: format!(
                        "{}'s soak cannot be scheduled: set {}, {} and {} (the template does)",
                        target.name,
                        greenlight::aws::scheduler::ENV_SCHEDULE_GROUP,
                        greenlight::aws::scheduler::ENV_SCHEDULER_ROLE,
                        greenlight::aws::scheduler::ENV_EVENT_BUS
                    ),
                },
                Some(scheduler) => {
                    let schedule = OneTime {
                        name: due.schedule_name(),
                        at_seconds: at,
                        source: PROMOTION_SOURCE.into(),
                        detail_type: PROMOTION_DUE.into(),
                        detail: serde_json::to_string(&due).unwrap_or_default(),
                    };
                    match scheduler.create(&schedule).await {
                        Ok(Scheduled::Created) => {
                            tracing::info!(target = %target.name, schedule = %schedule.name, "promotion scheduled after the soak");
                            ServiceOutcome::PromotionScheduled {
                                digest: due.digest.clone(),
                                from: source.name.clone(),
                                at_seconds: at,
                                schedule: schedule.name,
                            }
                        }
                        Ok(Scheduled::AlreadyThere) => {
                            tracing::info!(schedule = %schedule.name, "the soak is already scheduled: nothing to do");
                            continue;
                        }
                        Err(e) if e.retryable => return Err(e),
                        Err(e) => ServiceOutcome::PromotionRefused {
                            digest: due.digest.clone(),
                            reason: format!("the soak could not be scheduled: {e}"),
                        },
                    }
                }
            };
            reports.push(ServiceReport {
                service: target.name.clone(),
                image: None,
                region: Some(region.to_string()),
                outcome,
                trigger: Some(Trigger::Promotion),
                promotion: Some(due),
            });
        }
        Ok(reports)
    }

    /// A promotion that is due: decided from the ledger, then deployed, awaited or
    /// refused. `Err` only for retryable AWS errors.
    pub(crate) async fn promote(
        &self,
        config: &Config,
        target: &ServiceConfig,
        due: &PromotionDue,
        region: &str,
    ) -> Result<ServiceReport, AwsError> {
        let report = |image, outcome| ServiceReport {
            service: target.name.clone(),
            image,
            region: Some(region.to_string()),
            outcome,
            trigger: Some(Trigger::Promotion),
            promotion: Some(due.clone()),
        };
        let refused = |reason: String| {
            tracing::warn!(%reason, digest = %due.digest, "promotion refused");
            report(
                None,
                ServiceOutcome::PromotionRefused {
                    digest: due.digest.clone(),
                    reason,
                },
            )
        };
        match target.promote.as_ref() {
            Some(p) if p.from == due.from => {}
            _ => {
                return Ok(refused(format!(
                    "{} does not promote from {} (its promote.from)",
                    target.name, due.from
                )))
            }
        }
        if config.service_by_name(&due.from).is_none() {
            return Ok(refused(format!("no service {} to promote from", due.from)));
        }
        let Some(ledger) = &self.ledger else {
            return Ok(refused(format!(
                "promotion reads the release ledger to verify a digest, and {} is not set",
                greenlight::ledger::ENV_LEDGER_TABLE
            )));
        };
        let (source_entries, target_entries) = futures::future::try_join(
            ledger.history(&due.from, None, ATTEMPTS_READ),
            ledger.history(&target.name, None, ATTEMPTS_READ),
        )
        .await?;
        match decide(due, target, &source_entries, &target_entries, region) {
            PromotionDecision::Refuse { reason } => Ok(refused(reason)),
            PromotionDecision::AwaitApproval { tag } => Ok(report(
                None,
                ServiceOutcome::PromotionPending {
                    digest: due.digest.clone(),
                    tag,
                    from: due.from.clone(),
                },
            )),
            PromotionDecision::Promote(image) => {
                let outcome = self.deploy(target, &image).await?;
                Ok(report(Some(*image), outcome))
            }
        }
    }
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}
