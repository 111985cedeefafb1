//! `greenlight status` read during and after a deployment, as the scenarios check it.

use std::time::{Duration, Instant};

use crate::rehearse::report::{check, Check};
use crate::rehearse::stack::Stack;

impl Stack {
    /// `greenlight status web` every 100 ms while `id` is in flight: the snapshots
    /// that showed it with production traffic on green.
    pub(crate) async fn watch_status(&self, id: &str) -> Vec<crate::operate::ServiceStatus> {
        let Some(web) = self.config.service_by_name("web") else {
            return Vec::new();
        };
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            if matches!(
                self.engine.status(id).as_deref(),
                Some("Succeeded" | "Failed" | "Stopped")
            ) {
                break;
            }
            let status = self.status.status_of(web).await;
            let on_green = status.in_flight.iter().any(|d| {
                d.deployment.id == id
                    && d.progress.green_production_percent.unwrap_or_default() > 0.0
            });
            if on_green {
                seen.push(status);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        seen
    }

    /// What `greenlight status` showed while production traffic reached green: the
    /// deployment, its event or stage, the split, the hooks' results, the analysis.
    pub(crate) fn check_status_during(
        &self,
        id: &str,
        seen: Vec<crate::operate::ServiceStatus>,
        checks: &mut Vec<Check>,
    ) {
        // The most telling snapshot: the last one with an analysis, else the last.
        let best = seen
            .iter()
            .rev()
            .find(|s| s.in_flight.iter().any(|d| d.analysis.is_some()))
            .or(seen.last());
        let Some(status) = best else {
            checks.push(check(
                "greenlight status showed the deployment with production traffic on green",
                false,
                "no status snapshot while green served production".into(),
            ));
            return;
        };
        let text =
            crate::operate::print_status(&serde_json::to_value([status]).unwrap_or_default());
        for line in text.lines() {
            self.timeline.say(format!("greenlight status web | {line}"));
        }
        let d = status.in_flight.iter().find(|d| d.deployment.id == id);
        let hooks_shown = d.is_some_and(|d| self.path.shows_hooks(&d.progress.hooks));
        checks.push(check(
            "greenlight status showed it in flight: stage, green's share of production, its hooks",
            d.is_some_and(|d| d.progress.at.is_some()) && hooks_shown,
            text.clone(),
        ));
        checks.push(check(
            "greenlight status showed the analysis so far",
            d.is_some_and(|d| d.analysis.is_some()),
            text,
        ));
    }

    /// After the rollback: nothing in flight, the deployment last finished and not
    /// successful, production on the image it served before the push.
    pub(crate) async fn check_status_after(
        &self,
        id: &str,
        before: Option<&str>,
        checks: &mut Vec<Check>,
    ) {
        let Some(web) = self.config.service_by_name("web") else {
            return;
        };
        let status = self.status.status_of(web).await;
        let text =
            crate::operate::print_status(&serde_json::to_value([&status]).unwrap_or_default());
        for line in text.lines() {
            self.timeline.say(format!("greenlight status web | {line}"));
        }
        let last = status.last_finished.as_ref();
        checks.push(check(
            "greenlight status afterwards: nothing in flight, the deployment rolled back and why, production on the image from before",
            status.in_flight.is_empty()
                && last.is_some_and(|l| l.id == id && l.phase != greenlight::deploy::Phase::Succeeded)
                && text.contains("why it failed: ")
                && before.is_some()
                && status.production_digest.as_deref() == before,
            format!(
                "production served {} before\n{text}",
                before.unwrap_or("an unknown image")
            ),
        ));
    }
}
