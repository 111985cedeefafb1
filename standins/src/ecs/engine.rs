//! The deployment engine: a service deployment walked through ECS's stages, its
//! Lambda and PAUSE hooks, traffic shifts, rollback and the state-change events.

use std::time::Instant;

use serde_json::{json, Value};

use super::state::{Deployment, HookConfig, ServiceState, ACCOUNT, REGION, STAGES};
use super::EcsStandIn;
use crate::json11::now;

impl EcsStandIn {
    pub(super) fn with<R>(&self, arn: &str, f: impl FnOnce(&mut Deployment) -> R) -> Option<R> {
        let mut world = self.inner.world.lock().unwrap();
        world.deployments.iter_mut().find(|d| d.arn == arn).map(f)
    }

    pub(super) fn emit(&self, arn: &str, event_name: &str, reason: &str) {
        let Some((service_arn, ecs_svc_id)) = ({
            let world = self.inner.world.lock().unwrap();
            world
                .deployments
                .iter()
                .find(|d| d.arn == arn)
                .and_then(|d| {
                    Some((
                        world.services.get(&d.service_key)?.arn.clone(),
                        d.ecs_svc_id.clone(),
                    ))
                })
        }) else {
            return;
        };
        let event = json!({
            "version": "0", "id": format!("{arn}-{event_name}"),
            "detail-type": "ECS Deployment State Change", "source": "aws.ecs",
            "account": ACCOUNT, "time": crate::rfc3339_now(), "region": REGION,
            "resources": [service_arn],
            "detail": {"eventType": if event_name.ends_with("FAILED") { "ERROR" } else { "INFO" },
                       "eventName": event_name, "deploymentId": ecs_svc_id,
                       "updatedAt": crate::rfc3339_now(), "reason": reason}
        });
        (self.inner.observer)(format!("EventBridge: ECS {event_name} {arn}"));
        (self.inner.events)(event);
    }

    /// The deployment engine: walks the stages, invokes hooks, shifts traffic.
    pub(super) async fn run(self, arn: String) {
        let Some((key, target, source)) = self.with(&arn, |d| {
            d.status = "IN_PROGRESS".into();
            d.started = Some(now());
            (
                d.service_key.clone(),
                d.target_revision.clone(),
                d.source_revision.clone(),
            )
        }) else {
            return;
        };
        let Some(service) = self.inner.world.lock().unwrap().services.get(&key).cloned() else {
            return;
        };
        self.emit(&arn, "SERVICE_DEPLOYMENT_IN_PROGRESS", "deployment started");
        let source = source.unwrap_or_default();
        let weights = |green: f64| json!({ &target: green, &source: 100.0 - green });
        let outcome: Result<(), String> = async {
            for stage in STAGES {
                self.check_stop(&arn)?;
                self.with(&arn, |d| d.stage = Some(stage.to_string()));
                // The production stages are said per step, below, when they happen.
                if !matches!(
                    stage,
                    "PRE_PRODUCTION_TRAFFIC_SHIFT" | "PRODUCTION_TRAFFIC_SHIFT"
                ) {
                    (self.inner.observer)(format!("ECS {arn} stage {stage}"));
                }
                match stage {
                    "SCALE_UP" => {
                        let image = self.image_of(&target);
                        self.inner.traffic.install_green(&service.name, &image);
                    }
                    "TEST_TRAFFIC_SHIFT" => {
                        self.inner.traffic.test_to_green(&service.name);
                        self.with(&arn, |d| d.test_weight = 100.0);
                        self.hooks(&arn, &service, stage, weights(100.0), json!({}))
                            .await?;
                    }
                    "PRE_PRODUCTION_TRAFFIC_SHIFT" | "PRODUCTION_TRAFFIC_SHIFT" => {
                        // Both run per step below.
                    }
                    "BAKE_TIME" => self.wait(&arn, service.bake_minutes).await?,
                    "CLEAN_UP" => {}
                    hook_stage => {
                        self.hooks(&arn, &service, hook_stage, json!({}), json!({}))
                            .await?
                    }
                }
                if stage == "POST_TEST_TRAFFIC_SHIFT" {
                    for (percent, minutes) in service.steps.clone() {
                        self.check_stop(&arn)?;
                        self.with(&arn, |d| {
                            d.stage = Some("PRE_PRODUCTION_TRAFFIC_SHIFT".into())
                        });
                        (self.inner.observer)(format!(
                            "ECS {arn} stage PRE_PRODUCTION_TRAFFIC_SHIFT"
                        ));
                        self.hooks(
                            &arn,
                            &service,
                            "PRE_PRODUCTION_TRAFFIC_SHIFT",
                            weights(100.0),
                            weights(percent),
                        )
                        .await?;
                        self.with(&arn, |d| d.stage = Some("PRODUCTION_TRAFFIC_SHIFT".into()));
                        (self.inner.observer)(format!("ECS {arn} stage PRODUCTION_TRAFFIC_SHIFT"));
                        (self.inner.observer)(format!(
                            "ECS {arn} production traffic {percent}% to green"
                        ));
                        self.inner
                            .traffic
                            .production_to_green(&service.name, percent.round() as u8);
                        self.with(&arn, |d| d.production_weight = percent);
                        self.hooks(
                            &arn,
                            &service,
                            "PRODUCTION_TRAFFIC_SHIFT",
                            weights(100.0),
                            weights(percent),
                        )
                        .await?;
                        self.wait(&arn, minutes).await?;
                    }
                }
            }
            Ok(())
        }
        .await;
        match outcome {
            Ok(()) => {
                self.inner.traffic.promote(&service.name);
                {
                    let mut world = self.inner.world.lock().unwrap();
                    if let Some(state) = world.services.get_mut(&key) {
                        state.current_revision = Some(target.clone());
                    }
                }
                self.finish(&arn, "SUCCESSFUL", None);
                self.emit(&arn, "SERVICE_DEPLOYMENT_COMPLETED", "deployment completed");
            }
            Err(reason) => {
                self.with(&arn, |d| {
                    d.status = "ROLLBACK_IN_PROGRESS".into();
                    d.rollback_reason.get_or_insert(reason.clone());
                });
                (self.inner.observer)(format!("ECS {arn} rolling back: {reason}"));
                // During a rollback ECS runs these hooks again, weights swung back.
                let back = json!({ &target: 0.0, &source: 100.0 });
                self.with(&arn, |d| {
                    d.test_weight = 0.0;
                    d.production_weight = 0.0;
                });
                for stage in ["TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT"] {
                    let _ = self
                        .hooks(&arn, &service, stage, back.clone(), back.clone())
                        .await;
                }
                self.inner.traffic.rollback(&service.name);
                // Rolled back, the service runs the source revision's task definition
                // again ["Amazon ECS blue/green deployments": rollback "shifts traffic
                // back to the blue service revision"]; the emulator is told directly,
                // which starts no deployment.
                let source_task_definition = self
                    .inner
                    .world
                    .lock()
                    .unwrap()
                    .revisions
                    .get(&source)
                    .map(|r| r.task_definition.clone());
                if let Some(task_definition) = source_task_definition {
                    let _ = self
                        .upstream(
                            "UpdateService",
                            &json!({"cluster": key.0, "service": key.1, "taskDefinition": task_definition}),
                        )
                        .await;
                }
                self.finish(&arn, "ROLLBACK_SUCCESSFUL", Some(reason.clone()));
                self.emit(&arn, "SERVICE_DEPLOYMENT_FAILED", &reason);
            }
        }
    }

    pub(super) fn finish(&self, arn: &str, status: &str, reason: Option<String>) {
        self.with(arn, |d| {
            d.status = status.into();
            d.finished = Some(now());
            d.status_reason = reason;
            d.stage = None;
        });
        (self.inner.observer)(format!("ECS {arn} {status}"));
    }

    pub(super) fn check_stop(&self, arn: &str) -> Result<(), String> {
        match self.with(arn, |d| (d.stop_requested, d.rollback_reason.clone())) {
            Some((true, reason)) => Err(reason.unwrap_or_else(|| "stopped".into())),
            _ => Ok(()),
        }
    }

    pub(super) async fn wait(&self, arn: &str, minutes: f64) -> Result<(), String> {
        let until = Instant::now() + self.inner.timing.minute.mul_f64(minutes.max(0.0));
        while Instant::now() < until {
            self.check_stop(arn)?;
            tokio::time::sleep(self.inner.timing.tick).await;
        }
        Ok(())
    }

    pub(super) fn image_of(&self, revision: &str) -> String {
        let world = self.inner.world.lock().unwrap();
        world
            .revisions
            .get(revision)
            .and_then(|r| r.container_images.first())
            .and_then(|c| c["image"].as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Runs every hook configured for `stage`, one after the other.
    pub(super) async fn hooks(
        &self,
        arn: &str,
        service: &ServiceState,
        stage: &str,
        test_weights: Value,
        production_weights: Value,
    ) -> Result<(), String> {
        let target = self
            .with(arn, |d| d.target_revision.clone())
            .unwrap_or_default();
        for hook in service
            .hooks
            .iter()
            .filter(|h| h.stages.iter().any(|s| s == stage))
        {
            self.set_hook(arn, &hook.hook_id, "IN_PROGRESS");
            let result = if hook.target_type == "PAUSE" {
                self.pause(arn, hook, stage).await
            } else {
                self.lambda(
                    arn,
                    service,
                    hook,
                    stage,
                    &target,
                    &test_weights,
                    &production_weights,
                )
                .await
            };
            self.set_hook(
                arn,
                &hook.hook_id,
                if result.is_ok() {
                    "SUCCEEDED"
                } else {
                    "FAILED"
                },
            );
            result?;
        }
        Ok(())
    }

    pub(super) fn set_hook(&self, arn: &str, hook_id: &str, status: &str) {
        self.with(arn, |d| {
            if let Some(h) = d.hooks.iter_mut().find(|h| h.hook_id == hook_id) {
                h.status = status.to_string();
            }
        });
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn lambda(
        &self,
        arn: &str,
        service: &ServiceState,
        hook: &HookConfig,
        stage: &str,
        target: &str,
        test_weights: &Value,
        production_weights: &Value,
    ) -> Result<(), String> {
        let mut details = hook.details.clone();
        let deadline = Instant::now() + self.inner.timing.hook_timeout;
        let mut execution = 0;
        loop {
            execution += 1;
            let payload = json!({
                "executionId": format!("{}-{stage}-{execution}", hook.hook_id),
                "lifecycleStage": stage,
                "resourceArn": arn,
                "executionDetails": {
                    "serviceArn": service.arn, "targetServiceRevisionArn": target,
                    "testTrafficWeights": test_weights, "productionTrafficWeights": production_weights,
                },
                "hookDetails": details,
            });
            (self.inner.observer)(format!("ECS invokes {} for {stage}", hook.target_arn));
            let answer = (self.inner.lambda)(hook.target_arn.clone(), payload)
                .await
                .map_err(|e| format!("the {stage} hook ({}) failed: {e}", hook.target_arn))?;
            match answer["hookStatus"].as_str() {
                Some("SUCCEEDED") => return Ok(()),
                Some("FAILED") => {
                    return Err(format!(
                        "the {stage} hook ({}) returned FAILED{}",
                        hook.target_arn,
                        answer["reason"]
                            .as_str()
                            .map(|r| format!(": {r}"))
                            .unwrap_or_default()
                    ))
                }
                Some("IN_PROGRESS") if Instant::now() < deadline => {
                    if let Some(returned) = answer.get("hookDetails").filter(|v| v.is_object()) {
                        details = returned.clone();
                    }
                    let delay = answer["callBackDelay"].as_f64().unwrap_or(30.0);
                    tokio::time::sleep(self.inner.timing.second.mul_f64(delay.max(0.0))).await;
                    self.check_stop(arn)?;
                }
                Some("IN_PROGRESS") => {
                    return Err(format!("the {stage} hook ({}) timed out", hook.target_arn))
                }
                _ => {
                    return Err(format!(
                        "the {stage} hook ({}) returned no valid hookStatus: {answer}",
                        hook.target_arn
                    ))
                }
            }
        }
    }

    pub(super) async fn pause(
        &self,
        arn: &str,
        hook: &HookConfig,
        stage: &str,
    ) -> Result<(), String> {
        self.set_hook(arn, &hook.hook_id, "AWAITING_ACTION");
        (self.inner.observer)(format!(
            "ECS {arn} {stage}: PAUSE hook {} awaiting action",
            hook.hook_id
        ));
        let deadline = Instant::now() + self.inner.timing.hook_timeout;
        loop {
            self.check_stop(arn)?;
            let action = self
                .with(arn, |d| d.continue_actions.remove(&hook.hook_id))
                .flatten();
            match action.as_deref() {
                Some("CONTINUE") => return Ok(()),
                Some(_) => {
                    return Err(format!(
                        "{stage}: rolled back by ContinueServiceDeployment ROLLBACK"
                    ))
                }
                None if Instant::now() >= deadline => {
                    return Err(format!("{stage}: the PAUSE hook timed out"))
                }
                None => tokio::time::sleep(self.inner.timing.tick).await,
            }
        }
    }
}
