//! The deployment operations the stand-in answers itself (AWS JSON 1.1), per the
//! ECS API reference; every other operation goes to the emulator.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::state::{
    apply_configuration, brief, full, is_in_flight, merge_service, name_of, service_path,
    Deployment, HookState, Revision, ServiceState, World, ACCOUNT, REGION,
};
use super::EcsStandIn;
use crate::json11::{error, now, ApiError};

impl EcsStandIn {
    pub(super) async fn create_service(&self, input: &Value) -> Result<Value, ApiError> {
        let strategy = input
            .pointer("/deploymentConfiguration/strategy")
            .and_then(Value::as_str)
            .unwrap_or("ROLLING")
            .to_string();
        let controller = input
            .pointer("/deploymentController/type")
            .and_then(Value::as_str)
            .unwrap_or("ECS");
        // The emulator keeps no ECS-native configuration: the stand-in does.
        let mut forwarded = input.clone();
        if let Some(map) = forwarded.as_object_mut() {
            map.remove("deploymentConfiguration");
        }
        let mut output = self.upstream("CreateService", &forwarded).await?;
        let native =
            controller == "ECS" && matches!(strategy.as_str(), "BLUE_GREEN" | "CANARY" | "LINEAR");
        if !native {
            return Ok(output);
        }
        let cluster = name_of(input["cluster"].as_str().unwrap_or("default"));
        let name = input["serviceName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let arn = output
            .pointer("/service/serviceArn")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{cluster}/{name}"));
        let cluster_arn = format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{cluster}");
        let config = &input["deploymentConfiguration"];
        let task_definition = input["taskDefinition"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let revision = self
            .new_revision(&arn, &cluster_arn, &task_definition)
            .await;
        let mut state = ServiceState {
            name: name.clone(),
            arn,
            cluster_arn,
            bake_minutes: 0.0,
            steps: Vec::new(),
            hooks: Vec::new(),
            deployment_configuration: Value::Null,
            load_balancers: input.get("loadBalancers").cloned().unwrap_or(json!([])),
            current_revision: Some(revision),
            current_deployment: None,
        };
        apply_configuration(&mut state, config);
        if let Some(service) = output.get_mut("service") {
            merge_service(service, &state);
        }
        self.inner
            .world
            .lock()
            .unwrap()
            .services
            .insert((cluster, name), state);
        Ok(output)
    }

    /// A service revision for `task_definition`, with its container images (from the emulator).
    pub(super) async fn new_revision(
        &self,
        service_arn: &str,
        cluster_arn: &str,
        task_definition: &str,
    ) -> String {
        let described = self
            .upstream(
                "DescribeTaskDefinition",
                &json!({"taskDefinition": task_definition}),
            )
            .await
            .unwrap_or(Value::Null);
        let container_images: Vec<Value> = described
            .pointer("/taskDefinition/containerDefinitions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| {
                let image = c["image"].as_str().unwrap_or_default();
                let mut entry = json!({"containerName": c["name"], "image": image});
                if let Some((_, digest)) = image.rsplit_once('@') {
                    entry["imageDigest"] = json!(digest);
                }
                entry
            })
            .collect();
        let task_definition_arn = described
            .pointer("/taskDefinition/taskDefinitionArn")
            .and_then(Value::as_str)
            .unwrap_or(task_definition)
            .to_string();
        let mut world = self.inner.world.lock().unwrap();
        world.next += 1;
        let (cluster, service) = service_path(service_arn);
        let arn = format!(
            "arn:aws:ecs:{REGION}:{ACCOUNT}:service-revision/{cluster}/{service}/{}",
            world.next
        );
        world.revisions.insert(
            arn.clone(),
            Revision {
                arn: arn.clone(),
                service_arn: service_arn.to_string(),
                cluster_arn: cluster_arn.to_string(),
                task_definition: task_definition_arn,
                container_images,
                created: now(),
            },
        );
        arn
    }

    pub(super) async fn update_service(&self, input: &Value) -> Result<Value, ApiError> {
        let key = (
            name_of(input["cluster"].as_str().unwrap_or("default")),
            name_of(input["service"].as_str().unwrap_or_default()),
        );
        let state = self.inner.world.lock().unwrap().services.get(&key).cloned();
        let Some(state) = state else {
            return self.upstream("UpdateService", input).await;
        };
        let mut forwarded = input.clone();
        if let Some(map) = forwarded.as_object_mut() {
            map.remove("deploymentConfiguration");
        }
        let mut output = self.upstream("UpdateService", &forwarded).await?;
        if let Some(config) = input
            .get("deploymentConfiguration")
            .filter(|c| c.is_object())
        {
            let mut world = self.inner.world.lock().unwrap();
            if let Some(state) = world.services.get_mut(&key) {
                apply_configuration(state, config);
            }
        }
        if let Some(task_definition) = input["taskDefinition"].as_str() {
            let revision = self
                .new_revision(&state.arn, &state.cluster_arn, task_definition)
                .await;
            let arn = self.start_deployment(&key, revision);
            (self.inner.observer)(format!("ECS UpdateService {}/{} -> {arn}", key.0, key.1));
        }
        let state = self.inner.world.lock().unwrap().services.get(&key).cloned();
        if let (Some(service), Some(state)) = (output.get_mut("service"), state) {
            merge_service(service, &state);
        }
        Ok(output)
    }

    pub(super) fn start_deployment(
        &self,
        key: &(String, String),
        target_revision: String,
    ) -> String {
        let mut world = self.inner.world.lock().unwrap();
        // Assumed, not documented: a new deployment stops the one in flight.
        for d in world.deployments.iter_mut() {
            if d.service_key == *key && is_in_flight(&d.status) {
                d.stop_requested = true;
                d.rollback_reason = Some("superseded by a new service deployment".into());
            }
        }
        world.next += 1;
        let n = world.next;
        let state = world.services.get_mut(key).expect("checked by the caller");
        let arn = format!(
            "arn:aws:ecs:{REGION}:{ACCOUNT}:service-deployment/{}/{}/sd{n:08}",
            key.0, key.1
        );
        state.current_deployment = Some(arn.clone());
        let source = state.current_revision.clone();
        let hooks = state
            .hooks
            .iter()
            .map(|h| HookState {
                hook_id: h.hook_id.clone(),
                target_type: h.target_type.clone(),
                target_arn: h.target_arn.clone(),
                status: "PENDING".into(),
            })
            .collect();
        world.deployments.push(Deployment {
            arn: arn.clone(),
            service_key: key.clone(),
            status: "PENDING".into(),
            status_reason: None,
            stage: None,
            created: now(),
            started: None,
            finished: None,
            source_revision: source,
            target_revision,
            stop_requested: false,
            hooks,
            continue_actions: BTreeMap::new(),
            ecs_svc_id: format!("ecs-svc/{:019}", 1_000_000_000_000 + n),
            rollback_reason: None,
            stopped_on_request: false,
            test_weight: 0.0,
            production_weight: 0.0,
        });
        drop(world);
        let engine = self.clone();
        let id = arn.clone();
        tokio::spawn(async move { engine.run(id).await });
        arn
    }

    pub(super) async fn describe_services(&self, input: &Value) -> Result<Value, ApiError> {
        let mut output = self.upstream("DescribeServices", input).await?;
        let world = self.inner.world.lock().unwrap();
        if let Some(services) = output.get_mut("services").and_then(Value::as_array_mut) {
            for service in services {
                let key = (
                    name_of(service["clusterArn"].as_str().unwrap_or_default()),
                    service["serviceName"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                );
                if let Some(state) = world.services.get(&key) {
                    merge_service(service, state);
                }
            }
        }
        Ok(output)
    }

    pub(super) fn list_service_deployments(&self, input: &Value) -> Result<Value, ApiError> {
        let key = (
            name_of(input["cluster"].as_str().unwrap_or("default")),
            name_of(input["service"].as_str().unwrap_or_default()),
        );
        let statuses: Vec<&str> = input["status"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let after = input.pointer("/createdAt/after").and_then(Value::as_f64);
        let before = input.pointer("/createdAt/before").and_then(Value::as_f64);
        let world = self.inner.world.lock().unwrap();
        let briefs: Vec<Value> = world
            .deployments
            .iter()
            .rev()
            .filter(|d| d.service_key == key)
            .filter(|d| statuses.is_empty() || statuses.contains(&d.status.as_str()))
            .filter(|d| after.is_none_or(|t| d.created >= t))
            .filter(|d| before.is_none_or(|t| d.created <= t))
            .map(|d| brief(&world, d))
            .collect();
        let start: usize = input["nextToken"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        let size = input["maxResults"].as_u64().unwrap_or(20) as usize;
        let end = (start + size).min(briefs.len());
        let mut out = json!({"serviceDeployments": briefs.get(start..end).unwrap_or_default()});
        if end < briefs.len() {
            out["nextToken"] = json!(end.to_string());
        }
        Ok(out)
    }

    pub(super) fn describe_service_deployments(&self, input: &Value) -> Result<Value, ApiError> {
        let world = self.inner.world.lock().unwrap();
        let mut found = Vec::new();
        let mut failures = Vec::new();
        for arn in input["serviceDeploymentArns"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let arn = arn.as_str().unwrap_or_default();
            match world.deployments.iter().find(|d| d.arn == arn) {
                Some(d) => found.push(full(&world, d)),
                None => failures.push(json!({"arn": arn, "reason": "MISSING"})),
            }
        }
        Ok(json!({"serviceDeployments": found, "failures": failures}))
    }

    pub(super) fn describe_service_revisions(&self, input: &Value) -> Result<Value, ApiError> {
        let world = self.inner.world.lock().unwrap();
        let mut found = Vec::new();
        let mut failures = Vec::new();
        for arn in input["serviceRevisionArns"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let arn = arn.as_str().unwrap_or_default();
            match world.revisions.get(arn) {
                Some(r) => found.push(json!({
                    "serviceRevisionArn": r.arn, "serviceArn": r.service_arn, "clusterArn": r.cluster_arn,
                    "taskDefinition": r.task_definition, "containerImages": r.container_images,
                    "createdAt": r.created,
                })),
                None => failures.push(json!({"arn": arn, "reason": "MISSING"})),
            }
        }
        Ok(json!({"serviceRevisions": found, "failures": failures}))
    }

    pub(super) fn stop_service_deployment(&self, input: &Value) -> Result<Value, ApiError> {
        let arn = input["serviceDeploymentArn"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut world = self.inner.world.lock().unwrap();
        let d = deployment_mut(&mut world, &arn)?;
        if !is_in_flight(&d.status) {
            return Err(error(
                "ConflictException",
                format!(
                    "The service deployment {arn} is {}: it cannot be stopped",
                    d.status
                ),
            ));
        }
        d.stop_requested = true;
        d.stopped_on_request = true;
        if d.rollback_reason.is_none() {
            d.rollback_reason = Some("stopped with rollback on request".into());
        }
        if matches!(d.status.as_str(), "PENDING" | "IN_PROGRESS") {
            d.status = "ROLLBACK_REQUESTED".into();
        }
        drop(world);
        (self.inner.observer)(format!("ECS StopServiceDeployment {arn} (ROLLBACK)"));
        Ok(json!({"serviceDeploymentArn": arn}))
    }

    pub(super) fn continue_service_deployment(&self, input: &Value) -> Result<Value, ApiError> {
        let arn = input["serviceDeploymentArn"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let hook_id = input["hookId"].as_str().unwrap_or_default().to_string();
        let action = input["action"].as_str().unwrap_or("CONTINUE").to_string();
        let mut world = self.inner.world.lock().unwrap();
        let d = deployment_mut(&mut world, &arn)?;
        let awaiting = d
            .hooks
            .iter()
            .any(|h| h.hook_id == hook_id && h.status == "AWAITING_ACTION");
        if !awaiting {
            return Err(error(
                "ConflictException",
                format!("hook {hook_id} of {arn} is not awaiting action"),
            ));
        }
        d.continue_actions.insert(hook_id.clone(), action.clone());
        drop(world);
        (self.inner.observer)(format!(
            "ECS ContinueServiceDeployment {arn} {hook_id}: {action}"
        ));
        Ok(json!({"serviceDeploymentArn": arn}))
    }
}

/// The service deployment `arn` names, or ECS's ServiceDeploymentNotFoundException.
fn deployment_mut<'w>(world: &'w mut World, arn: &str) -> Result<&'w mut Deployment, ApiError> {
    world
        .deployments
        .iter_mut()
        .find(|d| d.arn == arn)
        .ok_or_else(|| {
            error(
                "ServiceDeploymentNotFoundException",
                format!("The service deployment {arn} does not exist"),
            )
        })
}
