//! The rehearsal's view of the release ledger: the functions write it in the
//! emulator's DynamoDB as they would in an account; each scenario checks what its
//! deployment left there, and each path ends with `greenlight history`'s lines.

use std::time::Duration;

use greenlight::ledger::{Entry, Ledger, Outcome};

use crate::rehearse::fixture::LEDGER_TABLE;
use crate::rehearse::report::{check, Check};
use crate::rehearse::stack::Stack;

impl Stack {
    pub(crate) fn ledger(&self) -> Ledger {
        Ledger::new(&self.sdk, LEDGER_TABLE)
    }

    fn service_name(&self) -> &str {
        self.config
            .services
            .first()
            .map(|s| s.name.as_str())
            .unwrap_or("web")
    }

    /// The ledger holds deployment `id` with `outcome`, and a why that mentions
    /// `why` (for a rollback). The finish is written on the engine's state-change
    /// event, so it is waited for briefly.
    pub(crate) async fn check_ledger(
        &self,
        id: &str,
        outcome: Outcome,
        why: Option<&str>,
    ) -> Check {
        let mut entry: Option<Entry> = None;
        for _ in 0..40 {
            entry = self
                .ledger()
                .history(self.service_name(), None, 50)
                .await
                .ok()
                .and_then(|all| all.into_iter().find(|e| e.deployment_id == id));
            if entry.as_ref().is_some_and(|e| e.outcome.is_some()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let what = format!(
            "the ledger records {id} as {}{}",
            outcome.as_str(),
            why.map(|w| format!(" ({w})")).unwrap_or_default()
        );
        let Some(entry) = entry else {
            return check(&what, false, "no item for it".into());
        };
        let why_text = entry.why().unwrap_or_default();
        let passed = entry.outcome == Some(outcome)
            && entry.image_digest.is_some()
            && entry.trigger.as_deref() == Some("push")
            && why.is_none_or(|w| why_text.contains(w));
        check(
            &what,
            passed,
            format!(
                "outcome {}, trigger {}, digest {}, why: {why_text}",
                entry.outcome.map_or("none", |o| o.as_str()),
                entry.trigger.as_deref().unwrap_or("none"),
                entry.image_digest.as_deref().unwrap_or("none")
            ),
        )
    }

    /// `greenlight history`'s lines for the rehearsed service, on the timeline.
    pub(crate) async fn show_history(&self) {
        match self.ledger().history(self.service_name(), None, 20).await {
            Ok(entries) => {
                for line in crate::ledger::history_text(self.service_name(), &entries).lines() {
                    self.timeline.say(format!("history: {line}"));
                }
            }
            Err(e) => self
                .timeline
                .say(format!("history: cannot read the ledger: {e}")),
        }
    }
}
