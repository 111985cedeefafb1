//! Scenario: 6. A slow image.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::rehearse::fixture::ANALYSIS_WINDOW_SECONDS;
use greenlight::ledger::Outcome;

use crate::rehearse::report::{check, said, ScenarioReport};
use crate::rehearse::stack::Stack;

impl Stack {
    /// Scenario 6: an image that passes its smoke checks but answers 10x slower under
    /// production traffic, with no alarm firing: the analysis rolls it back.
    pub(crate) async fn scenario_slow(&self) -> ScenarioReport {
        let started = Instant::now();
        self.timeline.say(
            "scenario 6: push an image that is 10x slower under production traffic (no alarm fires)",
        );
        let previous = self.blue_version();
        let log_from = self.lb.production_log().len();
        let mut checks = Vec::new();
        let mut figures = HashMap::new();
        let before = match self.config.service_by_name("web") {
            Some(web) => self.status.status_of(web).await.production_digest,
            None => None,
        };
        let id = self.push_expecting_start("v1.6.0-slow", &mut checks).await;
        if let Some(id) = &id {
            let (status, seen) = tokio::join!(
                self.wait_end(id, Duration::from_secs(90)),
                self.watch_status(id)
            );
            checks.push(check(
                "deployment rolled back",
                matches!(status.as_str(), "Failed" | "Stopped"),
                status,
            ));
            self.check_status_during(id, seen, &mut checks);
        }
        self.settle().await;
        if let Some(id) = &id {
            checks.push(
                self.check_ledger(id, Outcome::RolledBack, Some("failed:"))
                    .await,
            );
        }
        let served = &self.lb.production_log()[log_from..];
        let slow: Vec<u64> = served
            .iter()
            .filter(|s| s.version == "v1.6.0-slow")
            .map(|s| s.at_ms)
            .collect();
        if let (Some(first), Some(last)) = (slow.first(), slow.last()) {
            let exposed = (last - first) as f64 / 1000.0;
            figures.insert("seconds_slow_image_served_production".into(), exposed);
            // Target: rolled back within the window + 2 intervals of traffic reaching it.
            let limit = ANALYSIS_WINDOW_SECONDS as f64 + 2.0;
            checks.push(check(
                &format!("rolled back within window + 2 intervals ({limit:.0} s) of production traffic reaching it"),
                exposed <= limit,
                format!("{exposed:.1} s from its first to its last production answer"),
            ));
        } else {
            checks.push(check(
                "production traffic reached the slow image",
                false,
                "it never served production".into(),
            ));
        }
        checks.push(check(
            &format!("production serves {previous} again"),
            self.blue_version() == previous && self.lb.production_green_percent() == 0,
            self.blue_version(),
        ));
        if let Some(id) = &id {
            self.check_status_after(id, before.as_deref(), &mut checks)
                .await;
        }
        let heard = self.take_notifications();
        // Green's own evidence, in what people were told (SIGTERM'd on rollback: 143).
        let (evidence_checks, evidence) =
            Stack::evidence_checks(&heard, "the cache is disabled", 143);
        checks.extend(evidence_checks);
        let events: Vec<String> = heard.into_iter().map(|n| n.0).collect();
        checks.push(check(
            "notification analysis_failed",
            events.iter().any(|e| e == "analysis_failed"),
            said(&events),
        ));
        checks.push(check(
            "no alarm was involved",
            !events.iter().any(|e| e == "rollback_requested"),
            said(&events),
        ));
        let mut report = self.report(
            6,
            "slow under production, no alarm: the analysis rolls it back",
            started,
            checks,
            figures,
        );
        report.evidence = evidence;
        report
    }
}
