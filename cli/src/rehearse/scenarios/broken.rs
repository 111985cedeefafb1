//! Scenario: 2. A broken image.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use greenlight::ledger::Outcome;

use crate::rehearse::report::{check, said, ScenarioReport};
use crate::rehearse::stack::Stack;

impl Stack {
    /// 2. A broken image fails its smoke test; production never serves it.
    pub(crate) async fn scenario_broken(&self) -> ScenarioReport {
        let started = Instant::now();
        self.timeline.say("scenario 2: push a broken image");
        let log_from = self.lb.production_log().len();
        // What production serves now (v1.1.0 after scenario 1, v1.0.0 when played
        // alone): it must still serve it at the end.
        let before = self.blue_version();
        let mut checks = Vec::new();
        let id = self
            .push_expecting_start("v1.2.0-broken", &mut checks)
            .await;
        if let Some(id) = &id {
            let status = self.wait_end(id, Duration::from_secs(60)).await;
            checks.push(check(
                "deployment failed and rolled back",
                status == "Failed",
                status,
            ));
        }
        self.settle().await;
        if let Some(id) = &id {
            checks.push(
                self.check_ledger(id, Outcome::RolledBack, Some("failed:"))
                    .await,
            );
        }
        let served = &self.lb.production_log()[log_from..];
        let broken = served
            .iter()
            .filter(|s| s.version == "v1.2.0-broken")
            .count();
        checks.push(check(
            "production never served the broken version",
            broken == 0 && !served.is_empty(),
            format!(
                "{broken} of {} production answers came from v1.2.0-broken",
                served.len()
            ),
        ));
        checks.push(check(
            &format!("production still serves {before}"),
            self.blue_version() == before,
            self.blue_version(),
        ));
        let heard = self.take_notifications();
        // Green's own evidence, in what people were told (SIGTERM'd on rollback: 143).
        let (evidence_checks, evidence) = Stack::evidence_checks(
            &heard,
            crate::rehearse::green::FATAL_LINE,
            crate::rehearse::green::BROKEN_EXIT,
        );
        checks.extend(evidence_checks);
        let events: Vec<String> = heard.into_iter().map(|n| n.0).collect();
        checks.push(check(
            "notification hook_failed",
            events.iter().any(|e| e == "hook_failed"),
            said(&events),
        ));
        checks.push(check(
            "notification deployment_finished",
            events.iter().any(|e| e == "deployment_finished"),
            said(&events),
        ));
        let mut figures = HashMap::new();
        figures.insert("production_answers_sampled".into(), served.len() as f64);
        let mut report = self.report(
            2,
            "broken image: smoke fails, rolled back, production untouched",
            started,
            checks,
            figures,
        );
        report.evidence = evidence;
        report
    }
}
