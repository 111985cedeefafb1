//! What the scenarios do to the stack: push an image, fire an alarm, wait for an
//! end, sample production, collect notifications.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::rehearse::fixture::{behavior_for, ACCOUNT, ALARM, ECS_HOOK, REPOSITORY};
use crate::rehearse::report::{
    brief, check, line_seconds, Check, Heard, ScenarioReport, TrafficSample,
};
use crate::rehearse::seed::{cloudwatch, ecs_deployment_configuration, reqwest_like};
use crate::rehearse::stack::Stack;

impl Stack {
    /// Adds (or removes) a PAUSE hook on the ECS-native service (UpdateService).
    pub(crate) async fn set_pause(&self, pause_at: Option<&str>) -> Result<(), String> {
        let hook_arn = format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{ECS_HOOK}");
        reqwest_like::Client::ecs(&self.engine_endpoint)
            .call(
                "UpdateService",
                json!({"cluster": "prod", "service": "web",
                    "deploymentConfiguration": ecs_deployment_configuration(&hook_arn, pause_at)}),
            )
            .await
            .map(|_| ())
    }

    pub(crate) async fn put_image(ecr: &aws_sdk_ecr::Client, tag: &str) -> Result<String, String> {
        let output = ecr
            .put_image()
            .repository_name(REPOSITORY)
            .image_tag(tag)
            .image_manifest(crate::local::manifest(tag))
            .send()
            .await
            .map_err(|e| format!("PutImage {tag}: {e:?}"))?;
        output
            .image
            .and_then(|i| i.image_id)
            .and_then(|i| i.image_digest)
            .ok_or_else(|| format!("PutImage {tag}: no digest"))
    }

    /// Pushes `tag` to ECR and delivers the "ECR Image Action" event to deploy-on-push.
    pub(crate) async fn push(&self, tag: &str) -> Result<(String, Value), String> {
        let ecr = aws_sdk_ecr::Client::new(&self.sdk);
        let digest = Self::put_image(&ecr, tag).await?;
        self.behaviors
            .lock()
            .unwrap()
            .insert(digest.clone(), behavior_for(tag));
        let event = json!({
            "version": "0", "id": format!("push-{tag}"), "detail-type": "ECR Image Action", "source": "aws.ecr",
            "account": ACCOUNT, "time": greenlight_standins::rfc3339_now(), "region": "us-east-1", "resources": [],
            "detail": {"result": "SUCCESS", "repository-name": REPOSITORY, "image-digest": digest, "action-type": "PUSH", "image-tag": tag}
        });
        self.timeline.say(format!(
            "ECR push {REPOSITORY}:{tag} ({}) -> EventBridge -> deploy-on-push (production serves {})",
            &digest[7..19],
            self.blue_version()
        ));
        let answer = self
            .deploy_on_push
            .invoke(event)
            .await
            .map_err(|e| format!("deploy-on-push failed: {e}"))?;
        self.timeline
            .say(format!("deploy-on-push: {}", brief(&Ok(answer.clone()))));
        Ok((digest, answer))
    }

    /// Waits for a deployment to end, with a progress indicator; its final status.
    pub(crate) async fn wait_end(&self, id: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let status = self.engine.status(id).unwrap_or_default();
            if matches!(status.as_str(), "Succeeded" | "Failed" | "Stopped")
                || Instant::now() >= deadline
            {
                return status;
            }
            self.timeline.progress(&format!(
                "waiting for {id} ({status}, production {}% green)",
                self.lb.production_green_percent()
            ));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every asynchronous invocation (hooks, state changes) has returned.
    pub(crate) async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.pending.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Let the SQS poller catch the last publishes.
        tokio::time::sleep(Duration::from_millis(400)).await;
    }

    pub(crate) fn sample_production(&self) -> tokio::task::JoinHandle<()> {
        let url = format!("{}/", self.production_url);
        let (lb, traffic, started) = (self.lb.clone(), self.traffic.clone(), self.timeline.started);
        tokio::spawn(async move {
            let client = reqwest_like::Client::plain();
            let mut last_sample = Instant::now() - Duration::from_secs(1);
            loop {
                let _ = client.get(&url).await;
                if last_sample.elapsed() >= Duration::from_millis(50) {
                    last_sample = Instant::now();
                    traffic.lock().unwrap().push((
                        started.elapsed().as_secs_f64(),
                        lb.production_green_percent(),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    }

    /// The failure's evidence in what people were told: the deployment_finished
    /// notification names `line` and `exit` (container exit code), and no
    /// notification carries the key planted in the broken image's log.
    pub(crate) fn evidence_checks(
        heard: &[Heard],
        line: &str,
        exit: i32,
    ) -> (Vec<Check>, Option<Value>) {
        let finished = heard.iter().rev().find_map(|(event, _, message)| {
            (event == "deployment_finished")
                .then(|| serde_json::from_str::<Value>(message).ok())
                .flatten()
        });
        // What the text says, without chat's code block and console link.
        let description = finished
            .as_ref()
            .and_then(|m| m["content"]["description"].as_str())
            .unwrap_or_default()
            .split("\n```")
            .next()
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.starts_with("[Open in"))
            .collect::<Vec<_>>()
            .join("\n");
        let evidence = finished
            .as_ref()
            .map(|m| m["metadata"]["additionalContext"]["evidence"].clone())
            .filter(|e| !e.is_null());
        let exits: Vec<i64> = evidence
            .iter()
            .flat_map(|e| e["tasks"].as_array().cloned().unwrap_or_default())
            .flat_map(|t| t["containers"].as_array().cloned().unwrap_or_default())
            .filter_map(|c| c["exit_code"].as_i64())
            .collect();
        let leaked = heard
            .iter()
            .filter(|(_, subject, message)| {
                subject.contains(crate::rehearse::green::PLANTED_KEY)
                    || message.contains(crate::rehearse::green::PLANTED_KEY)
            })
            .count();
        let checks = vec![
            check(
                "the failure notification names green's log line",
                description.contains(line),
                description.chars().take(300).collect(),
            ),
            check(
                &format!("the failure notification names the exit code {exit}"),
                exits.contains(&(exit as i64)) && description.contains(&format!("code {exit}")),
                format!(
                    "exit codes: {}",
                    exits
                        .iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            check(
                "the planted AWS key appears in no notification",
                leaked == 0 && !heard.is_empty(),
                format!("{leaked} of {} notifications carry it", heard.len()),
            ),
        ];
        (
            checks,
            evidence.map(|mut e| {
                e["description"] = Value::from(description);
                e
            }),
        )
    }

    pub(crate) fn poll_notifications(&self) {
        let (sqs, queue, store, timeline) = (
            aws_sdk_sqs::Client::new(&self.sdk),
            self.queue_url.clone(),
            self.notifications.clone(),
            self.timeline.clone(),
        );
        tokio::spawn(async move {
            loop {
                if let Ok(out) = sqs
                    .receive_message()
                    .queue_url(&queue)
                    .max_number_of_messages(10)
                    .send()
                    .await
                {
                    for message in out.messages.unwrap_or_default() {
                        let envelope: Value = serde_json::from_str(message.body().unwrap_or("{}"))
                            .unwrap_or_default();
                        let event = envelope["MessageAttributes"]["event"]["Value"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string();
                        let subject = envelope["Subject"].as_str().unwrap_or_default().to_string();
                        timeline.say(format!("SNS {event}: {subject}"));
                        let text = envelope["Message"].as_str().unwrap_or_default().to_string();
                        store.lock().unwrap().push((event, subject, text));
                        if let Some(handle) = message.receipt_handle() {
                            let _ = sqs
                                .delete_message()
                                .queue_url(&queue)
                                .receipt_handle(handle)
                                .send()
                                .await;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }

    pub(crate) fn take_notifications(&self) -> Vec<Heard> {
        std::mem::take(&mut *self.notifications.lock().unwrap())
    }

    pub(crate) fn blue_version(&self) -> String {
        let blue = self.lb.blue().unwrap_or_default();
        let digest = blue.rsplit('@').next().unwrap_or_default().to_string();
        self.behaviors
            .lock()
            .unwrap()
            .get(&digest)
            .map(|b| b.version().to_string())
            .unwrap_or_default()
    }

    pub(crate) fn report(
        &self,
        number: u8,
        name: &str,
        started: Instant,
        checks: Vec<Check>,
        figures: HashMap<String, f64>,
    ) -> ScenarioReport {
        let passed = checks.iter().all(|c| c.passed);
        self.timeline.say(format!(
            "scenario {number} ({}) {}: {name}",
            self.path.label(),
            if passed { "PASSED" } else { "FAILED" }
        ));
        let from = started
            .saturating_duration_since(self.timeline.started)
            .as_secs_f64();
        let timeline = self
            .timeline
            .lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| line_seconds(l).is_some_and(|t| t >= from - 0.0005))
            .cloned()
            .collect();
        let traffic = self
            .traffic
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| *t >= from)
            .map(|(t, green_percent)| TrafficSample {
                t: t - from,
                green_percent: *green_percent,
            })
            .collect();
        ScenarioReport {
            number,
            path: self.path,
            name: name.into(),
            passed,
            seconds: started.elapsed().as_secs_f64(),
            checks,
            figures,
            timeline,
            traffic,
            started_at: from,
            evidence: None,
        }
    }

    /// Pushes `tag`, checks that deploy-on-push started a deployment, and returns its id.
    pub(crate) async fn push_expecting_start(
        &self,
        tag: &str,
        checks: &mut Vec<Check>,
    ) -> Option<String> {
        let pushed = self.push(tag).await;
        let id = pushed.as_ref().ok().and_then(|(_, a)| Self::started_id(a));
        checks.push(check(
            &format!("deploy-on-push started a deployment for {tag}"),
            id.is_some(),
            match &pushed {
                Ok((_, answer)) => brief(&Ok(answer.clone())),
                Err(e) => e.clone(),
            },
        ));
        id
    }

    pub(crate) fn started_id(answer: &Value) -> Option<String> {
        answer.as_array()?.iter().find_map(|o| {
            (o["outcome"] == "started")
                .then(|| o["deployment_id"].as_str().map(str::to_string))
                .flatten()
        })
    }

    pub(crate) async fn fire_alarm(&self) -> Result<Value, String> {
        self.fire_alarm_named(ALARM).await
    }

    /// Sets `alarm` to ALARM in CloudWatch and delivers the transition to alarm-rollback.
    pub(crate) async fn fire_alarm_named(&self, alarm: &str) -> Result<Value, String> {
        let reason = "Threshold Crossed: 1 out of the last 1 datapoints [12.0] was greater than the threshold (5.0)";
        cloudwatch(
            &self.moto_endpoint,
            &[
                ("Action", "SetAlarmState"),
                ("AlarmName", alarm),
                ("StateValue", "ALARM"),
                ("StateReason", reason),
            ],
        )
        .await?;
        let event = alarm_event(alarm, "OK", "ALARM", reason);
        self.timeline.say(format!(
            "CloudWatch {alarm} -> ALARM -> EventBridge -> alarm-rollback"
        ));
        let answer = self
            .alarm_rollback
            .invoke(event)
            .await
            .map_err(|e| e.to_string())?;
        self.timeline
            .say(format!("alarm-rollback: {}", brief(&Ok(answer.clone()))));
        Ok(answer)
    }

    pub(crate) async fn reset_alarm(&self) {
        let _ = cloudwatch(
            &self.moto_endpoint,
            &[
                ("Action", "SetAlarmState"),
                ("AlarmName", ALARM),
                ("StateValue", "OK"),
                ("StateReason", "recovered"),
            ],
        )
        .await;
        // The OK transition reaches alarm-rollback too, which ignores it.
        if let Ok(answer) = self
            .alarm_rollback
            .invoke(alarm_event(ALARM, "ALARM", "OK", "recovered"))
            .await
        {
            self.timeline.say(format!(
                "alarm-rollback <- {ALARM} OK: {}",
                brief(&Ok(answer))
            ));
        }
    }
}

pub(crate) fn alarm_event(alarm: &str, previous: &str, state: &str, reason: &str) -> Value {
    let now = greenlight_standins::rfc3339_now();
    json!({
        "version": "0", "id": format!("alarm-{state}-{now}"), "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch",
        "account": ACCOUNT, "time": now, "region": "us-east-1", "resources": [format!("arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{alarm}")],
        "detail": {
            "alarmName": alarm,
            "configuration": {"metrics": [{"id": "m1", "metricStat": {"metric": {"namespace": "AWS/ApplicationELB", "name": "HTTPCode_Target_5XX_Count", "dimensions": {}}, "period": 60, "stat": "Sum"}, "returnData": true}]},
            "previousState": {"value": previous, "reason": "previous", "timestamp": now},
            "state": {"value": state, "reason": reason, "timestamp": now}
        }
    })
}
