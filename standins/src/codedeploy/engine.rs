//! The deployment engine: a deployment walked through the ECS lifecycle events,
//! its hooks, traffic shifts, rollback and the state-change events.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::state::{base36, parse_config, Deployment, Shift, EVENTS};
use super::CodeDeployStandIn;
use crate::json11::now;

impl CodeDeployStandIn {
    pub(super) fn with<R>(&self, id: &str, f: impl FnOnce(&mut Deployment) -> R) -> Option<R> {
        let mut world = self.inner.world.lock().unwrap();
        world.deployments.iter_mut().find(|d| d.id == id).map(f)
    }

    pub(super) fn emit(&self, id: &str, state: &str) {
        let Some((app, group)) = self.with(id, |d| (d.application.clone(), d.group.clone())) else {
            return;
        };
        let event = json!({
            "account": "123456789012", "region": "us-east-1",
            "detail-type": "CodeDeploy Deployment State-change Notification",
            "source": "aws.codedeploy", "version": "0",
            "time": crate::rfc3339_now(),
            "id": format!("{id}-{state}"),
            "resources": [
                format!("arn:aws:codedeploy:us-east-1:123456789012:application:{app}"),
                format!("arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:{app}/{group}")
            ],
            "detail": {"region": "us-east-1", "application": app, "deploymentId": id, "state": state, "deploymentGroup": group, "instanceGroupId": format!("ig-{id}")}
        });
        (self.inner.observer)(format!("EventBridge: CodeDeploy {id} {state}"));
        (self.inner.events)(event);
    }

    /// The deployment engine: walks the lifecycle, invokes hooks, shifts traffic.
    pub(super) async fn run(self, id: String) {
        self.with(&id, |d| d.status = "InProgress".into());
        self.emit(&id, "START");
        let Some((group, appspec, config)) = self.with(&id, |d| {
            (d.group.clone(), d.appspec.clone(), d.config.clone())
        }) else {
            return;
        };
        let appspec: Value = serde_json::from_str(&appspec).unwrap_or_default();
        let hooks: BTreeMap<String, String> = appspec["Hooks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| h.as_object())
            .flat_map(|h| {
                h.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            })
            .collect();
        let task_definition = appspec
            .pointer("/Resources/0/TargetService/Properties/TaskDefinition")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let outcome: Result<(), String> = async {
            for event in EVENTS {
                self.check_stop(&id)?;
                self.with(&id, |d| {
                    d.started.insert(event.to_string(), now());
                    d.lifecycle.insert(event.to_string(), "InProgress".into())
                });
                (self.inner.observer)(format!("CodeDeploy {id} lifecycle {event}"));
                match event {
                    "Install" => {
                        let image = self
                            .image_of(&task_definition)
                            .await
                            .unwrap_or_else(|| task_definition.clone());
                        self.inner.traffic.install_green(&group, &image);
                    }
                    "AllowTestTraffic" => self.inner.traffic.test_to_green(&group),
                    "AllowTraffic" => {
                        self.shift(&id, &group, &config).await?;
                    }
                    hook_event => {
                        if let Some(function) = hooks.get(hook_event) {
                            self.hook(&id, hook_event, function).await?;
                        }
                    }
                }
                self.with(&id, |d| {
                    d.lifecycle.insert(event.to_string(), "Succeeded".into())
                });
            }
            Ok(())
        }
        .await;
        match outcome {
            Ok(()) => {
                self.inner.traffic.promote(&group);
                self.update_service(&group, &task_definition).await;
                self.finish(&id, "Succeeded", None);
                self.emit(&id, "SUCCESS");
            }
            Err(reason) if reason == "stopped" => {
                self.inner.traffic.rollback(&group);
                self.with(&id, |d| d.green_percent = 0);
                self.finish(
                    &id,
                    "Stopped",
                    Some(
                        "Deployment was stopped; traffic returned to the original task set".into(),
                    ),
                );
                self.emit(&id, "STOP");
            }
            Err(reason) => {
                self.inner.traffic.rollback(&group);
                self.with(&id, |d| d.green_percent = 0);
                self.finish(&id, "Failed", Some(reason));
                self.emit(&id, "FAILURE");
            }
        }
    }

    pub(super) fn finish(&self, id: &str, status: &str, error: Option<String>) {
        self.with(id, |d| {
            d.status = status.into();
            d.completed = Some(now());
            d.error = error;
        });
        (self.inner.observer)(format!("CodeDeploy {id} {status}"));
    }

    pub(super) fn check_stop(&self, id: &str) -> Result<(), String> {
        match self.with(id, |d| d.stop_requested).flatten() {
            Some(_) => Err("stopped".into()),
            None => Ok(()),
        }
    }

    pub(super) async fn hook(&self, id: &str, event: &str, function: &str) -> Result<(), String> {
        let execution = format!(
            "exec-{}-{}",
            event,
            base36((now() * 1_000_000.0) as u64, 12)
        );
        self.with(id, |d| {
            d.executions
                .insert(execution.clone(), (event.to_string(), None))
        });
        (self.inner.observer)(format!("CodeDeploy invokes {function} for {event}"));
        let payload = json!({"DeploymentId": id, "LifecycleEventHookExecutionId": execution});
        tokio::spawn((self.inner.hooks)(function.to_string(), payload));
        let deadline = Instant::now() + self.inner.timing.hook_timeout;
        loop {
            self.check_stop(id)?;
            let reported = self
                .with(id, |d| {
                    d.executions.get(&execution).and_then(|(_, s)| s.clone())
                })
                .flatten();
            match reported.as_deref() {
                Some("Succeeded") => return Ok(()),
                Some(_) => return Err(format!("The {event} hook ({function}) reported Failed")),
                None if Instant::now() >= deadline => {
                    return Err(format!(
                        "The {event} hook ({function}) did not report a status in time"
                    ));
                }
                None => tokio::time::sleep(self.inner.timing.tick).await,
            }
        }
    }

    /// AllowTraffic per the deployment configuration, time compressed.
    pub(super) async fn shift(&self, id: &str, group: &str, config: &str) -> Result<(), String> {
        let minute = self.inner.timing.minute;
        let steps: Vec<(u8, Duration)> = match parse_config(config) {
            Shift::AllAtOnce => vec![(100, Duration::ZERO)],
            Shift::Canary { percent, minutes } => {
                vec![(percent, minute * minutes), (100, Duration::ZERO)]
            }
            Shift::Linear { percent, minutes } => {
                let mut steps = Vec::new();
                let mut at = percent;
                while at < 100 {
                    steps.push((at, minute * minutes));
                    at = at.saturating_add(percent);
                }
                steps.push((100, Duration::ZERO));
                steps
            }
        };
        for (percent, wait) in steps {
            self.check_stop(id)?;
            (self.inner.observer)(format!(
                "CodeDeploy {id} production traffic {percent}% to green"
            ));
            self.inner.traffic.production_to_green(group, percent);
            self.with(id, |d| d.green_percent = percent);
            let until = Instant::now() + wait;
            while Instant::now() < until {
                self.check_stop(id)?;
                tokio::time::sleep(self.inner.timing.tick).await;
            }
        }
        Ok(())
    }

    pub(super) async fn image_of(&self, task_definition: &str) -> Option<String> {
        let ecs = self.inner.ecs.as_ref()?;
        let td = ecs
            .describe_task_definition()
            .task_definition(task_definition)
            .send()
            .await
            .ok()?
            .task_definition?;
        td.container_definitions()
            .first()
            .and_then(|c| c.image().map(str::to_string))
    }

    /// After success the service runs the new task definition (so the next deployment reads it).
    pub(super) async fn update_service(&self, group: &str, task_definition: &str) {
        let Some(ecs) = &self.inner.ecs else { return };
        let service = {
            let world = self.inner.world.lock().unwrap();
            world
                .groups
                .iter()
                .find(|((_, g), _)| g == group)
                .map(|(_, info)| info["ecsServices"][0].clone())
        };
        let Some(service) = service else { return };
        let (Some(cluster), Some(name)) = (
            service["clusterName"].as_str(),
            service["serviceName"].as_str(),
        ) else {
            return;
        };
        let _ = ecs
            .update_service()
            .cluster(cluster)
            .service(name)
            .task_definition(task_definition)
            .send()
            .await;
    }
}
