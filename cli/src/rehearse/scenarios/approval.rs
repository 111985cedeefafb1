//! Scenario: 5. Approval at a PAUSE hook.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::rehearse::engine::Engine;
use crate::rehearse::report::{check, said, ScenarioReport};
use crate::rehearse::stack::Stack;

impl Stack {
    /// Scenario 5 (ECS-native): a PAUSE hook holds the deployment before production
    /// traffic moves until someone runs `greenlight approve`.
    pub(crate) async fn scenario_approval(&self) -> ScenarioReport {
        let started = Instant::now();
        self.timeline.say(
            "scenario 5: a PAUSE hook before production traffic, answered with greenlight approve",
        );
        let mut checks = Vec::new();
        let mut figures = HashMap::new();
        let paused = self.set_pause(Some("POST_TEST_TRAFFIC_SHIFT")).await;
        checks.push(check(
            "the service has a PAUSE hook",
            paused.is_ok(),
            match &paused {
                Ok(()) => "PAUSE hook set at POST_TEST_TRAFFIC_SHIFT".to_string(),
                Err(e) => e.clone(),
            },
        ));
        let id = self.push_expecting_start("v1.5.0", &mut checks).await;
        if let (Some(id), Engine::Ecs(ecs)) = (id, &self.engine) {
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut awaiting = None;
            while awaiting.is_none() && Instant::now() < deadline {
                awaiting = ecs.awaiting_action();
                self.timeline.progress("waiting for the PAUSE hook");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            checks.push(check(
                "the deployment paused before production traffic moved",
                awaiting.is_some() && self.lb.production_green_percent() == 0,
                format!(
                    "{}, production {}% green",
                    awaiting
                        .as_ref()
                        .map_or("never awaited action".to_string(), |(d, stage)| format!(
                            "{d} awaits action at {stage}"
                        )),
                    self.lb.production_green_percent()
                ),
            ));
            let sdk = self
                .sdk
                .to_builder()
                .endpoint_url(&self.engine_endpoint)
                .build();
            let answer = crate::approval::answer_with(
                &greenlight::deploy::Backends::from_conf(&sdk, None),
                &self.config,
                "web",
                crate::approval::Decision::Approve,
            )
            .await;
            self.timeline.say(format!(
                "greenlight approve web: {}",
                match &answer {
                    Ok(m) | Err(m) => m,
                }
            ));
            checks.push(check(
                "greenlight approve web continued it",
                answer.as_ref().is_ok_and(|m| m.contains("approved")),
                match &answer {
                    Ok(m) | Err(m) => m.clone(),
                },
            ));
            let status = self.wait_end(&id, Duration::from_secs(60)).await;
            figures.insert("seconds_to_promote".into(), started.elapsed().as_secs_f64());
            checks.push(check(
                "deployment succeeded after approval",
                status == "Succeeded",
                status,
            ));
        }
        let _ = self.set_pause(None).await;
        self.settle().await;
        checks.push(check(
            "production serves v1.5.0",
            self.blue_version() == "v1.5.0",
            self.blue_version(),
        ));
        let events: Vec<String> = self.take_notifications().into_iter().map(|n| n.0).collect();
        checks.push(check(
            "notification approval_pending (what to run, for people and chat)",
            events.iter().any(|e| e == "approval_pending"),
            said(&events),
        ));
        self.report(
            5,
            "PAUSE hook: held before production, approved, promoted",
            started,
            checks,
            figures,
        )
    }
}
