//! The CodeDeploy operations the stand-in answers (AWS JSON 1.1), per the
//! CodeDeploy API reference.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::state::{
    base36, find, find_mut, info, is_active, ordered, page, target_id, target_status, Deployment,
    EVENTS,
};
use super::CodeDeployStandIn;
use crate::json11::{error, now, ApiError};

impl CodeDeployStandIn {
    pub(super) fn dispatch(&self, operation: &str, input: &Value) -> Result<Value, ApiError> {
        let s = |key: &str| {
            input
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        match operation {
            "CreateApplication" => {
                let name = s("applicationName");
                self.inner
                    .world
                    .lock()
                    .unwrap()
                    .applications
                    .insert(name.clone(), input.clone());
                Ok(json!({"applicationId": format!("app-{name}")}))
            }
            "ListApplications" => {
                let world = self.inner.world.lock().unwrap();
                let names = world.applications.keys().cloned().collect();
                Ok(page("applications", names, input))
            }
            "CreateDeploymentGroup" => {
                let (app, group) = (s("applicationName"), s("deploymentGroupName"));
                let mut world = self.inner.world.lock().unwrap();
                if !world.applications.contains_key(&app) {
                    return Err(error(
                        "ApplicationDoesNotExistException",
                        format!("No application found for name: {app}"),
                    ));
                }
                world.groups.insert((app, group.clone()), input.clone());
                Ok(json!({"deploymentGroupId": format!("dg-{group}")}))
            }
            "GetDeploymentGroup" => {
                let world = self.inner.world.lock().unwrap();
                let group = world
                    .groups
                    .get(&(s("applicationName"), s("deploymentGroupName")))
                    .ok_or_else(|| {
                        error(
                            "DeploymentGroupDoesNotExistException",
                            format!(
                                "No Deployment Group found for name: {}",
                                s("deploymentGroupName")
                            ),
                        )
                    })?;
                Ok(json!({"deploymentGroupInfo": group}))
            }
            "ListDeploymentGroups" => {
                let app = s("applicationName");
                let world = self.inner.world.lock().unwrap();
                let names: Vec<String> = world
                    .groups
                    .keys()
                    .filter(|(a, _)| *a == app)
                    .map(|(_, g)| g.clone())
                    .collect();
                let mut out = page("deploymentGroups", names, input);
                out["applicationName"] = json!(app);
                Ok(out)
            }
            "BatchGetDeploymentGroups" => {
                let app = s("applicationName");
                let world = self.inner.world.lock().unwrap();
                let infos: Vec<&Value> = input["deploymentGroupNames"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|n| {
                        world
                            .groups
                            .get(&(app.clone(), n.as_str().unwrap_or_default().to_string()))
                    })
                    .collect();
                Ok(json!({"deploymentGroupsInfo": infos}))
            }
            "CreateDeployment" => self.create_deployment(input),
            "GetDeployment" => {
                let world = self.inner.world.lock().unwrap();
                let d = find(&world, &s("deploymentId"))?;
                Ok(json!({"deploymentInfo": info(d)}))
            }
            "BatchGetDeployments" => {
                let world = self.inner.world.lock().unwrap();
                let infos: Vec<Value> = input["deploymentIds"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|id| {
                        world
                            .deployments
                            .iter()
                            .find(|d| Some(d.id.as_str()) == id.as_str())
                            .map(info)
                    })
                    .collect();
                Ok(json!({"deploymentsInfo": infos}))
            }
            "ListDeployments" => {
                let (app, group) = (s("applicationName"), s("deploymentGroupName"));
                let statuses: Vec<String> = input["includeOnlyStatuses"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                // TimeRange: epoch seconds; either end may be left open [API reference, TimeRange].
                let start = input
                    .pointer("/createTimeRange/start")
                    .and_then(Value::as_f64);
                let end = input
                    .pointer("/createTimeRange/end")
                    .and_then(Value::as_f64);
                let world = self.inner.world.lock().unwrap();
                let ids: Vec<String> = world
                    .deployments
                    .iter()
                    .rev()
                    .filter(|d| d.application == app && d.group == group)
                    .filter(|d| statuses.is_empty() || statuses.contains(&d.status))
                    .filter(|d| start.is_none_or(|t| d.created >= t))
                    .filter(|d| end.is_none_or(|t| d.created <= t))
                    .map(|d| d.id.clone())
                    .collect();
                Ok(page("deployments", ordered(ids, world.list_order), input))
            }
            "StopDeployment" => {
                let id = s("deploymentId");
                let rollback = input["autoRollbackEnabled"].as_bool().unwrap_or(false);
                let mut world = self.inner.world.lock().unwrap();
                let d = find_mut(&mut world, &id)?;
                if !is_active(&d.status) {
                    return Err(error(
                        "DeploymentAlreadyCompletedException",
                        format!("Deployment {id} has already completed"),
                    ));
                }
                d.stop_requested = Some(rollback);
                if d.seeded {
                    d.status = "Stopped".into();
                    d.completed = Some(now());
                }
                drop(world);
                (self.inner.observer)(format!(
                    "CodeDeploy StopDeployment {id} (autoRollbackEnabled: {rollback})"
                ));
                Ok(json!({"status": "Pending", "statusMessage": "Stop request accepted"}))
            }
            "PutLifecycleEventHookExecutionStatus" => {
                let (id, execution, status) = (
                    s("deploymentId"),
                    s("lifecycleEventHookExecutionId"),
                    s("status"),
                );
                if status != "Succeeded" && status != "Failed" {
                    return Err(error(
                        "InvalidLifecycleEventHookExecutionStatusException",
                        format!("status {status:?} must be Succeeded or Failed"),
                    ));
                }
                let mut world = self.inner.world.lock().unwrap();
                let d = find_mut(&mut world, &id)?;
                let Some((event, reported)) = d.executions.get_mut(&execution) else {
                    return Err(error(
                        "InvalidLifecycleEventHookExecutionIdException",
                        format!("unknown execution id {execution}"),
                    ));
                };
                if reported.is_some() {
                    return Err(error(
                        "LifecycleEventAlreadyCompletedException",
                        format!("The lifecycle event {event} has already completed"),
                    ));
                }
                *reported = Some(status.clone());
                let event = event.clone();
                drop(world);
                (self.inner.observer)(format!(
                    "CodeDeploy PutLifecycleEventHookExecutionStatus {id} {event}: {status}"
                ));
                Ok(json!({"lifecycleEventHookExecutionId": execution}))
            }
            "ListDeploymentTargets" => {
                let world = self.inner.world.lock().unwrap();
                let d = find(&world, &s("deploymentId"))?;
                Ok(json!({"targetIds": [target_id(&world, d)]}))
            }
            "GetDeploymentTarget" => {
                let world = self.inner.world.lock().unwrap();
                let d = find(&world, &s("deploymentId"))?;
                let events: Vec<Value> = EVENTS
                    .iter()
                    .map(|e| {
                        let mut event = json!({"lifecycleEventName": e, "status": d.lifecycle.get(*e).cloned().unwrap_or_else(|| "Pending".into())});
                        if let Some(t) = d.started.get(*e) {
                            event["startTime"] = json!(t);
                        }
                        event
                    })
                    .collect();
                // taskSetsInfo [API reference, ECSTaskSet]: the task sets labelled Blue
                // and Green, the percent of production traffic each serves
                // (`trafficWeight`), and their target groups by name when the load
                // balancer has any.
                let name = |arn: &str| arn.split('/').nth(1).unwrap_or(arn).to_string();
                let groups = self.inner.traffic.target_groups(&d.group);
                let green = f64::from(d.green_percent);
                let task_sets: Vec<Value> = [
                    ("Blue", 100.0 - green, groups.as_ref().map(|(b, _)| name(b))),
                    ("Green", green, groups.as_ref().map(|(_, g)| name(g))),
                ]
                .into_iter()
                .map(|(label, weight, group)| {
                    let mut set = json!({"taskSetLabel": label, "trafficWeight": weight});
                    if let Some(group) = group {
                        set["targetGroup"] = json!({"name": group});
                    }
                    set
                })
                .collect();
                Ok(
                    json!({"deploymentTarget": {"deploymentTargetType": "ECSTarget", "ecsTarget": {
                    "deploymentId": d.id, "targetId": target_id(&world, d), "lifecycleEvents": events,
                    "taskSetsInfo": task_sets, "status": target_status(&d.status)}}}),
                )
            }
            other => Err(error(
                "UnknownOperationException",
                format!("the stand-in does not implement {other:?}"),
            )),
        }
    }

    pub(super) fn create_deployment(&self, input: &Value) -> Result<Value, ApiError> {
        let s = |key: &str| {
            input
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let (app, group) = (s("applicationName"), s("deploymentGroupName"));
        let appspec = input
            .pointer("/revision/appSpecContent/content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let parsed: Value = serde_json::from_str(&appspec).map_err(|e| {
            error(
                "InvalidRevisionException",
                format!("AppSpec is not valid JSON: {e}"),
            )
        })?;
        if parsed
            .pointer("/Resources/0/TargetService/Properties/TaskDefinition")
            .and_then(Value::as_str)
            .is_none()
        {
            return Err(error(
                "InvalidRevisionException",
                "AppSpec names no TargetService TaskDefinition",
            ));
        }
        let mut world = self.inner.world.lock().unwrap();
        if !world.applications.contains_key(&app) {
            return Err(error(
                "ApplicationDoesNotExistException",
                format!("No application found for name: {app}"),
            ));
        }
        let Some(group_info) = world.groups.get(&(app.clone(), group.clone())).cloned() else {
            return Err(error(
                "DeploymentGroupDoesNotExistException",
                format!("No Deployment Group found for name: {group}"),
            ));
        };
        if let Some(active) = world
            .deployments
            .iter()
            .find(|d| d.application == app && d.group == group && is_active(&d.status))
        {
            return Err(error(
                "DeploymentLimitExceededException",
                format!(
                    "The Deployment Group '{group}' already has an active Deployment '{}'",
                    active.id
                ),
            ));
        }
        world.next_id += 1;
        let seed = world.next_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (now() * 1000.0) as u64;
        let id = format!("d-{}", base36(seed, 9));
        let config = match s("deploymentConfigName") {
            c if !c.is_empty() => c,
            _ => group_info["deploymentConfigName"]
                .as_str()
                .unwrap_or("CodeDeployDefault.ECSAllAtOnce")
                .to_string(),
        };
        world.deployments.push(Deployment {
            id: id.clone(),
            application: app,
            group: group.clone(),
            config,
            description: s("description"),
            appspec,
            status: "Created".into(),
            created: now(),
            completed: None,
            lifecycle: BTreeMap::new(),
            started: BTreeMap::new(),
            executions: BTreeMap::new(),
            stop_requested: None,
            error: None,
            seeded: false,
            green_percent: 0,
        });
        drop(world);
        (self.inner.observer)(format!("CodeDeploy CreateDeployment {group} -> {id}"));
        let engine = self.clone();
        let engine_id = id.clone();
        tokio::spawn(async move { engine.run(engine_id).await });
        Ok(json!({"deploymentId": id}))
    }
}
