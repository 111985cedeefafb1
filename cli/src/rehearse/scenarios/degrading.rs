//! Scenario: 3. An image that degrades under traffic.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use greenlight_standins::lb::Color;

use greenlight::ledger::Outcome;

use crate::rehearse::report::{brief, check, said, ScenarioReport};
use crate::rehearse::stack::Stack;

impl Stack {
    /// 3. An image that degrades under production traffic: the alarm stops it.
    pub(crate) async fn scenario_degrading(&self) -> ScenarioReport {
        let started = Instant::now();
        self.timeline
            .say("scenario 3: push an image that fails under production traffic");
        // What production serves now (v1.1.0 after scenario 1, v1.0.0 when played
        // alone): the alarm must bring it back.
        let before = self.blue_version();
        let mut checks = Vec::new();
        let mut figures = HashMap::new();
        let id = self
            .push_expecting_start("v1.3.0-degrades", &mut checks)
            .await;
        if let Some(id) = &id {
            // Play CloudWatch: the alarm goes to ALARM once green served 3 errors in production.
            let log_from = self.lb.production_log().len();
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut fired = None;
            while Instant::now() < deadline {
                let errors = self.lb.production_log()[log_from..]
                    .iter()
                    .filter(|s| s.color == Color::Green && s.status >= 500)
                    .count();
                if errors >= 3 {
                    fired = Some(Instant::now());
                    break;
                }
                if matches!(
                    self.engine.status(id).as_deref(),
                    Some("Succeeded" | "Failed" | "Stopped")
                ) {
                    break;
                }
                self.timeline.progress("watching production 5xx");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            checks.push(check(
                "green served 5xx in production during the canary",
                fired.is_some(),
                match fired {
                    Some(at) => format!(
                        "3 answers of 5xx from green {:.2} s after the push",
                        at.saturating_duration_since(started).as_secs_f64()
                    ),
                    None => "no 5xx seen".into(),
                },
            ));
            if let Some(fired) = fired {
                let answer = self.fire_alarm().await;
                checks.push(check(
                    "alarm-rollback stopped the deployment",
                    answer.as_ref().is_ok_and(|a| a[0]["acted"] == true),
                    brief(&answer),
                ));
                let back = loop {
                    if self.lb.production_green_percent() == 0
                        || fired.elapsed() > Duration::from_secs(30)
                    {
                        break fired.elapsed();
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                };
                figures.insert("seconds_alarm_to_blue".into(), back.as_secs_f64());
                self.timeline.say(format!(
                    "production traffic back on blue {:.3} s after the alarm",
                    back.as_secs_f64()
                ));
                let status = self.wait_end(id, Duration::from_secs(30)).await;
                checks.push(check("deployment stopped", status == "Stopped", status));
            }
            self.reset_alarm().await;
        }
        self.settle().await;
        if let Some(id) = &id {
            checks.push(
                self.check_ledger(id, Outcome::RolledBack, Some("stopped by alarm web-5xx"))
                    .await,
            );
        }
        checks.push(check(
            &format!("production serves {before} again"),
            self.blue_version() == before,
            self.blue_version(),
        ));
        let heard = self.take_notifications();
        // Green's own evidence, in what people were told (SIGTERM'd on rollback: 143).
        let (evidence_checks, evidence) =
            Stack::evidence_checks(&heard, "pricing client panicked", 143);
        checks.extend(evidence_checks);
        let events: Vec<String> = heard.into_iter().map(|n| n.0).collect();
        checks.push(check(
            "notification rollback_requested",
            events.iter().any(|e| e == "rollback_requested"),
            said(&events),
        ));
        let mut report = self.report(
            3,
            "degrades under production: alarm stops it, back to blue",
            started,
            checks,
            figures,
        );
        report.evidence = evidence;
        report
    }
}
