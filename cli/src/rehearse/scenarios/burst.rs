//! Scenario: 4. A burst of pushes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::rehearse::report::{check, ScenarioReport};
use crate::rehearse::stack::Stack;

impl Stack {
    /// 4. Three pushes while a deployment is in flight: the newest deploys next.
    pub(crate) async fn scenario_burst(&self) -> ScenarioReport {
        let started = Instant::now();
        self.timeline
            .say("scenario 4: three pushes in quick succession");
        let before = self.engine.deployment_ids().len();
        let mut checks = Vec::new();
        let first_id = self.push_expecting_start("v1.4.0", &mut checks).await;
        let mut queued = 0;
        for tag in ["v1.4.1", "v1.4.2"] {
            tokio::time::sleep(Duration::from_millis(1100)).await;
            if let Ok((_, answer)) = self.push(tag).await {
                queued += usize::from(answer[0]["outcome"] == "queued");
            }
        }
        checks.push(check(
            "the next two pushes were queued",
            queued == 2,
            format!("{queued} queued"),
        ));
        if let Some(id) = &first_id {
            let status = self.wait_end(id, Duration::from_secs(60)).await;
            checks.push(check(
                "the first deployment succeeded",
                status == "Succeeded",
                status,
            ));
        }
        self.settle().await;
        let next = self
            .engine
            .deployment_ids()
            .last()
            .cloned()
            .unwrap_or_default();
        if Some(&next) != first_id.as_ref() {
            let status = self.wait_end(&next, Duration::from_secs(60)).await;
            checks.push(check(
                "the queued deployment succeeded",
                status == "Succeeded",
                status,
            ));
        } else {
            checks.push(check(
                "a queued deployment started",
                false,
                "no deployment after the first".into(),
            ));
        }
        self.settle().await;
        checks.push(check(
            "production serves the newest image v1.4.2",
            self.blue_version() == "v1.4.2",
            self.blue_version(),
        ));
        let notes = self.take_notifications();
        let skipped: Vec<&crate::rehearse::report::Heard> = notes
            .iter()
            .filter(|n| n.0 == "deployment_skipped")
            .collect();
        checks.push(check(
            "v1.4.1 was reported as skipped",
            skipped.iter().any(|n| n.1.contains("v1.4.1")),
            notes
                .iter()
                .map(|n| format!("{}: {}", n.0, n.1))
                .collect::<Vec<_>>()
                .join("; "),
        ));
        let created = self.engine.deployment_ids().len() - before;
        checks.push(check(
            "two deployments for three pushes (v1.4.0, then the newest v1.4.2)",
            created == 2,
            format!("{created} deployments created"),
        ));
        let mut figures = HashMap::new();
        figures.insert(
            "seconds_to_newest_in_production".into(),
            started.elapsed().as_secs_f64(),
        );
        self.report(
            4,
            "three pushes while busy: newest deployed next, middle skipped",
            started,
            checks,
            figures,
        )
    }
}
