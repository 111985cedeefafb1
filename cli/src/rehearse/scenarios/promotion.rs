//! Scenario: 7. Releases across environments: `web-staging` takes pushes, `web-prod`
//! takes only the digest that proved itself there. The soak's one-time schedule is
//! created in the emulator's EventBridge Scheduler, which stores it and never fires
//! it: the rehearsal plays EventBridge, putting the schedule's event to
//! deploy-on-push (its compressed minute already over) and deleting it, as
//! `ActionAfterCompletion: DELETE` would.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use greenlight::events::{Forced, PromotionDue};
use greenlight::ledger::{delivery_metrics, Entry, Outcome};
use serde_json::{json, Value};

use crate::rehearse::fixture::{SCHEDULE_GROUP, STAGING_ALARM};
use crate::rehearse::report::{brief, briefs, check, Check, ScenarioReport};
use crate::rehearse::seed::reqwest_like;
use crate::rehearse::stack::Stack;

impl Stack {
    /// Scenario 7: a healthy image goes staging → production by itself; a slow one is stopped
    /// in staging and never reaches production; an alarm during a soak revokes its
    /// digest; a forced promotion is recorded with its reason.
    pub(crate) async fn scenario_promotion(&self) -> ScenarioReport {
        let started = Instant::now();
        self.timeline
            .say("scenario 7: web-staging takes pushes, web-prod takes what staging proved");
        let mut checks = Vec::new();
        let mut figures = HashMap::new();
        let log_from = self.lb.production_log().len();
        let staging_traffic = self.load_staging();

        // A healthy image: staging, its soak, then production by itself.
        let healthy = self.push_expecting_start("v2.0.0", &mut checks).await;
        if let Some(id) = &healthy {
            let status = self.wait_end(id, Duration::from_secs(60)).await;
            checks.push(check(
                "staging deployed v2.0.0",
                status == "Succeeded",
                status,
            ));
        }
        self.settle().await;
        let answers = self.fire_due_schedules().await;
        let promoted = answers.iter().find_map(Self::started_id);
        checks.push(check(
            "its soak ended: production deploys the same digest by itself",
            promoted.is_some(),
            briefs(&answers),
        ));
        if let Some(id) = &promoted {
            let status = self.wait_end(id, Duration::from_secs(60)).await;
            figures.insert(
                "seconds_push_to_production".into(),
                started.elapsed().as_secs_f64(),
            );
            checks.push(check(
                "production deployed it",
                status == "Succeeded",
                status,
            ));
        }
        self.settle().await;
        checks.push(check(
            "production serves v2.0.0",
            self.blue_version() == "v2.0.0",
            self.blue_version(),
        ));

        // A slow image: staging's analysis rolls it back; nothing is scheduled.
        let slow = self.push_expecting_start("v2.1.0-slow", &mut checks).await;
        if let Some(id) = &slow {
            let status = self.wait_end(id, Duration::from_secs(90)).await;
            checks.push(check(
                "staging's analysis rolled v2.1.0-slow back",
                matches!(status.as_str(), "Failed" | "Stopped"),
                status,
            ));
        }
        self.settle().await;
        let nothing = self.fire_due_schedules().await;
        checks.push(check(
            "no promotion of a digest that failed in staging",
            nothing.is_empty(),
            briefs(&nothing),
        ));

        // A healthy image whose soak meets an alarm: revoked, never promoted.
        let soaking = self.push_expecting_start("v2.2.0", &mut checks).await;
        if let Some(id) = &soaking {
            let status = self.wait_end(id, Duration::from_secs(60)).await;
            checks.push(check(
                "staging deployed v2.2.0",
                status == "Succeeded",
                status,
            ));
        }
        self.settle().await;
        let alarm = self.fire_alarm_named(STAGING_ALARM).await;
        checks.push(check(
            "an alarm during v2.2.0's soak revokes it",
            alarm
                .as_ref()
                .is_ok_and(|a| a.to_string().contains("revoked the soaking digest")),
            brief(&alarm),
        ));
        let refused = self.fire_due_schedules().await;
        let reason = refused
            .iter()
            .flat_map(|a| a.as_array().cloned().unwrap_or_default())
            .find(|o| o["outcome"] == "promotion_refused")
            .and_then(|o| o["reason"].as_str().map(str::to_string))
            .unwrap_or_default();
        checks.push(check(
            "the revoked digest is refused when its soak ends",
            reason.contains("is revoked: alarm web-staging-5xx fired during its soak"),
            reason,
        ));
        self.settle().await;
        checks.push(check(
            "production still serves v2.0.0",
            self.blue_version() == "v2.0.0",
            self.blue_version(),
        ));

        // A person forces it, with a reason (as greenlight promote --force sends it).
        let forced = self.force("v2.2.0", soaking.as_deref()).await;
        if let Some(id) = &forced {
            let status = self.wait_end(id, Duration::from_secs(60)).await;
            checks.push(check(
                "the forced promotion deployed",
                status == "Succeeded",
                status,
            ));
        }
        self.settle().await;
        staging_traffic.abort();

        let served = &self.lb.production_log()[log_from..];
        let slow_served = served.iter().filter(|s| s.version == "v2.1.0-slow").count();
        checks.push(check(
            "production's listener, sampled throughout, never served the slow image",
            slow_served == 0 && !served.is_empty(),
            format!("{slow_served} of {} production answers", served.len()),
        ));
        figures.insert("production_answers_sampled".into(), served.len() as f64);
        self.check_promotion_ledger(&mut checks, forced.as_deref())
            .await;
        let _ = self.take_notifications();
        self.report(
            7,
            "staging to production: the same digest, never an unverified one",
            started,
            checks,
            figures,
        )
    }

    /// Production traffic on staging too, so its analysis has requests to judge.
    fn load_staging(&self) -> tokio::task::JoinHandle<()> {
        let url = self
            .staging
            .as_ref()
            .map(|b| format!("http://{}/", b.production))
            .unwrap_or_default();
        tokio::spawn(async move {
            let client = reqwest_like::Client::plain();
            loop {
                let _ = client.get(&url).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    }

    /// Plays EventBridge Scheduler for every schedule in the group: its event to
    /// deploy-on-push, then the schedule deleted. deploy-on-push's answers.
    async fn fire_due_schedules(&self) -> Vec<Value> {
        let scheduler = aws_sdk_scheduler::Client::new(&self.sdk);
        let listed = scheduler
            .list_schedules()
            .group_name(SCHEDULE_GROUP)
            .send()
            .await;
        let names: Vec<String> = listed
            .map(|l| {
                l.schedules()
                    .iter()
                    .filter_map(|s| s.name().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let mut answers = Vec::new();
        for name in names {
            let Ok(schedule) = scheduler
                .get_schedule()
                .group_name(SCHEDULE_GROUP)
                .name(&name)
                .send()
                .await
            else {
                continue;
            };
            let target = schedule.target();
            let detail: Value = target
                .and_then(|t| t.input())
                .and_then(|i| serde_json::from_str(i).ok())
                .unwrap_or(Value::Null);
            let parameters = target.and_then(|t| t.event_bridge_parameters());
            let event = json!({
                "version": "0", "id": format!("schedule-{name}"),
                "detail-type": parameters.map(|p| p.detail_type()).unwrap_or_default(),
                "source": parameters.map(|p| p.source()).unwrap_or_default(),
                "account": crate::rehearse::fixture::ACCOUNT,
                "time": greenlight_standins::rfc3339_now(), "region": "us-east-1", "resources": [],
                "detail": detail,
            });
            self.timeline.say(format!(
                "EventBridge Scheduler {name} ({}) -> Greenlight Promotion Due -> deploy-on-push",
                schedule.schedule_expression().unwrap_or_default()
            ));
            let _ = scheduler
                .delete_schedule()
                .group_name(SCHEDULE_GROUP)
                .name(&name)
                .send()
                .await;
            match self.deploy_on_push.invoke(event).await {
                Ok(answer) => {
                    self.timeline
                        .say(format!("deploy-on-push: {}", brief(&Ok(answer.clone()))));
                    answers.push(answer);
                }
                Err(e) => self.timeline.say(format!("deploy-on-push failed: {e}")),
            }
        }
        answers
    }

    /// `greenlight promote web-prod --digest D --force --reason …`: the event the CLI
    /// sends, to the same function.
    async fn force(&self, tag: &str, source_deployment: Option<&str>) -> Option<String> {
        let entries = self.ledger().history("web-staging", None, 20).await.ok()?;
        let entry = entries
            .iter()
            .find(|e| e.image_tag.as_deref() == Some(tag))?;
        let due = PromotionDue {
            service: "web-prod".into(),
            from: "web-staging".into(),
            digest: entry.image_digest.clone()?,
            source_deployment: source_deployment
                .unwrap_or(&entry.deployment_id)
                .to_string(),
            approved_by: Some("rehearsal".into()),
            forced: Some(Forced {
                by: "rehearsal".into(),
                reason: "the alarm was a load test, confirmed by the on-call".into(),
            }),
        };
        self.timeline.say(format!(
            "greenlight promote web-prod --digest {} --force --reason \"{}\"",
            due.digest,
            due.forced
                .as_ref()
                .map(|f| f.reason.as_str())
                .unwrap_or_default()
        ));
        let event = due.event("us-east-1", &greenlight_standins::rfc3339_now());
        let answer = self.deploy_on_push.invoke(event).await.ok()?;
        self.timeline
            .say(format!("deploy-on-push: {}", brief(&Ok(answer.clone()))));
        Self::started_id(&answer)
    }

    /// What history and metrics show of it all.
    async fn check_promotion_ledger(&self, checks: &mut Vec<Check>, forced: Option<&str>) {
        let read = |service: &'static str| async move {
            self.ledger()
                .history(service, None, 50)
                .await
                .unwrap_or_default()
        };
        let (staging, prod): (Vec<Entry>, Vec<Entry>) =
            tokio::join!(read("web-staging"), read("web-prod"));
        let revoked = staging
            .iter()
            .any(|e| e.image_tag.as_deref() == Some("v2.2.0") && e.revoked_by.is_some());
        checks.push(check(
            "history: staging's v2.2.0 revoked, v2.1.0-slow rolled back",
            revoked
                && staging.iter().any(|e| {
                    e.image_tag.as_deref() == Some("v2.1.0-slow")
                        && e.outcome == Some(Outcome::RolledBack)
                }),
            format!("{} attempts", staging.len()),
        ));
        let promotions: Vec<&Entry> = prod
            .iter()
            .filter(|e| e.trigger.as_deref() == Some("promotion"))
            .collect();
        let forced_recorded = prod.iter().any(|e| {
            Some(e.deployment_id.as_str()) == forced
                && e.forced_reason
                    .as_deref()
                    .is_some_and(|r| r.contains("load test"))
        });
        checks.push(check(
            "history: production's two promotions, the forced one with who and why",
            promotions.len() == 2 && forced_recorded,
            format!(
                "{} promotions, forced recorded: {forced_recorded}",
                promotions.len()
            ),
        ));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
        let all: Vec<Entry> = staging.iter().chain(&prod).cloned().collect();
        for m in [
            delivery_metrics(Some("web-staging"), &all, 1, now),
            delivery_metrics(Some("web-prod"), &all, 1, now),
        ] {
            for line in crate::ledger::metrics_text(&m).lines() {
                self.timeline.say(format!("metrics: {line}"));
            }
        }
        let staging_metrics = delivery_metrics(Some("web-staging"), &all, 1, now);
        checks.push(check(
            "metrics: staging's change failure rate counts the slow image",
            staging_metrics.rolled_back == 1 && staging_metrics.succeeded == 2,
            crate::ledger::metrics_text(&staging_metrics),
        ));
        let staging_text = crate::ledger::history_text("web-staging", &staging);
        let prod_text = crate::ledger::history_text("web-prod", &prod);
        checks.push(check(
            "greenlight history says what was revoked, promoted and forced, and why",
            staging_text.contains("revoked: alarm web-staging-5xx fired during its soak")
                && prod_text.contains("promoted from web-staging/")
                && prod_text.contains("forced by rehearsal: the alarm was a load test"),
            prod_text.clone(),
        ));
        for line in staging_text.lines().chain(prod_text.lines()) {
            self.timeline.say(format!("history: {line}"));
        }
    }
}
