//! An alarm with nothing in flight can still matter: a service others promote from
//! may be soaking a digest that completed there. The alarm revokes it: its attempt in
//! the release ledger is marked `revoked_by`, so the promotion, when due, refuses
//! it. One Query (the service's newest attempts) and one UpdateItem per soaking
//! digest; the write is made before anyone is told and an error is returned for
//! Lambda to retry, because a lost revocation would let the digest through.

use greenlight::aws::sns::Publisher;
use greenlight::aws::AwsError;
use greenlight::events::AlarmTransition;
use greenlight::ledger::{Entry, Outcome};
use greenlight::notify::{Notification, NotificationEvent, Severity};

use crate::Rollback;

/// Attempts read to find the soaking one.
const NEWEST: usize = 5;

impl<P: Publisher> Rollback<P> {
    /// Revokes what `service` is soaking for the services that promote from it.
    /// `Ok(None)` when there is nothing to revoke.
    pub(crate) async fn revoke_soaking(
        &self,
        alarm: &AlarmTransition,
        service: &str,
    ) -> Result<Option<Entry>, AwsError> {
        let config = self.config.load();
        // The longest soak of the services promoting from this one bounds what soaks.
        let Some(soak) = config
            .services
            .iter()
            .filter_map(|s| s.promote.as_ref())
            .filter(|p| p.from == service)
            .map(|p| p.soak)
            .max()
        else {
            return Ok(None);
        };
        let Some(ledger) = &self.ledger else {
            tracing::warn!(%service, "services promote from this one, but no ledger is set: the alarm cannot revoke what soaks");
            return Ok(None);
        };
        let now = now_ms();
        let soaking = ledger
            .history(service, None, NEWEST)
            .await?
            .into_iter()
            .find(|e| e.outcome == Some(Outcome::Succeeded))
            .filter(|e| e.revoked_by.is_none())
            .filter(|e| {
                e.ended_at
                    .is_some_and(|t| now - t <= soak.as_millis() as i64)
            });
        let Some(entry) = soaking else {
            return Ok(None);
        };
        let notification = revoked(alarm, &entry);
        ledger.record(&notification).await?;
        tracing::warn!(%service, deployment_id = %entry.deployment_id, digest = entry.image_digest.as_deref().unwrap_or(""), "digest revoked: it will not be promoted");
        self.notifier.notify_recorded(&notification).await;
        Ok(Some(entry))
    }
}

fn revoked(alarm: &AlarmTransition, entry: &Entry) -> Notification {
    let digest = entry.image_digest.clone().unwrap_or_default();
    let what = entry.image_tag.clone().unwrap_or_else(|| digest.clone());
    let mut n = Notification::new(
        NotificationEvent::DigestRevoked,
        Severity::Error,
        &entry.service,
        format!("{what} revoked: {} fired during its soak", alarm.alarm_name),
    )
    .deployment(&entry.deployment_id, std::env::var("AWS_REGION").ok().as_deref())
    .description(format!(
        "{} went into ALARM while {what} soaked in {} after deployment {}: it will not be promoted. Reason: {}",
        alarm.alarm_name, entry.service, entry.deployment_id, alarm.reason
    ))
    .next_step("Look at the alarm's metric in this service; push a fixed image to start again.")
    .fact("revoked_by", format!("alarm {}", alarm.alarm_name))
    .fact("alarm", alarm.alarm_name.clone());
    if !digest.is_empty() {
        n = n.fact("image_digest", digest);
    }
    n
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
