//! Scenario: 1. A healthy image.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use greenlight::ledger::Outcome;

use crate::rehearse::report::{check, said, ScenarioReport};
use crate::rehearse::stack::Stack;

impl Stack {
    /// 1. A healthy image is deployed without anyone touching it.
    pub(crate) async fn scenario_healthy(&self) -> ScenarioReport {
        let started = Instant::now();
        self.timeline.say("scenario 1: push a healthy image");
        let mut checks = Vec::new();
        let mut figures = HashMap::new();
        let id = self.push_expecting_start("v1.1.0", &mut checks).await;
        if let Some(id) = &id {
            let status = self.wait_end(id, Duration::from_secs(60)).await;
            figures.insert("seconds_to_promote".into(), started.elapsed().as_secs_f64());
            checks.push(check("deployment succeeded", status == "Succeeded", status));
        }
        self.settle().await;
        if let Some(id) = &id {
            checks.push(self.check_ledger(id, Outcome::Succeeded, None).await);
        }
        checks.push(check(
            "production serves v1.1.0",
            self.blue_version() == "v1.1.0",
            self.blue_version(),
        ));
        let events: Vec<String> = self.take_notifications().into_iter().map(|n| n.0).collect();
        for expected in ["deployment_started", "hook_passed", "deployment_finished"] {
            checks.push(check(
                &format!("notification {expected}"),
                events.iter().any(|e| e == expected),
                said(&events),
            ));
        }
        let hooks = self.path.hooks_passed_when_healthy();
        checks.push(check(
            "every hook passed, the analysis among them",
            events.iter().filter(|e| *e == "hook_passed").count() == hooks
                && events.iter().filter(|e| *e == "analysis_passed").count() == 1,
            said(&events),
        ));
        self.report(
            1,
            "healthy image: smoke passes, production moves to green",
            started,
            checks,
            figures,
        )
    }
}
