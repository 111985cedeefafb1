//! Green's tasks, played. The emulator's tasks always report exit code 0 and cannot
//! stop with a container's code, so the stand-in answers ListTasks and DescribeTasks
//! itself from the tasks the rehearsal starts ([`EcsStandIn::start_task`]) and stops
//! ([`EcsStandIn::stop_tasks`]). Shapes follow the ECS API reference (`Task`,
//! `Container`): a stopped task keeps its `stoppedReason`, `stopCode` and each
//! container's `exitCode`; ListTasks filters on `serviceName` and `desiredStatus`
//! (RUNNING unless asked) ["ListTasks", "DescribeTasks", Amazon ECS API Reference].
//! StopTask sends the container SIGTERM, so a task stopped that way exits 143 unless
//! the app handles the signal ["StopTask"].

use serde_json::{json, Value};

use super::EcsStandIn;
use crate::json11::{now, ApiError};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

/// One task the rehearsal plays.
#[derive(Debug, Clone)]
pub struct PlayedTask {
    pub arn: String,
    pub cluster: String,
    pub service: String,
    pub task_definition_arn: String,
    pub container: String,
    pub image: String,
    pub started_at: f64,
    pub stopped: Option<Stopped>,
}

/// How a played task ended.
#[derive(Debug, Clone)]
pub struct Stopped {
    pub at: f64,
    /// `EssentialContainerExited`, `ServiceSchedulerInitiated`, …
    pub code: String,
    pub reason: String,
    pub exit_code: i32,
}

impl PlayedTask {
    fn id(&self) -> &str {
        self.arn.rsplit('/').next().unwrap_or_default()
    }

    fn to_json(&self) -> Value {
        let cluster_arn = format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{}", self.cluster);
        let (last, desired) = if self.stopped.is_some() {
            ("STOPPED", "STOPPED")
        } else {
            ("RUNNING", "RUNNING")
        };
        let digest = self.image.rsplit_once('@').map(|(_, d)| d.to_string());
        let mut container = json!({
            "containerArn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:container/{}/{}/{}", self.cluster, self.id(), self.container),
            "taskArn": self.arn, "name": self.container, "image": self.image,
            "lastStatus": last, "healthStatus": if self.stopped.is_some() { "UNKNOWN" } else { "HEALTHY" },
        });
        if let Some(digest) = digest {
            container["imageDigest"] = json!(digest);
        }
        let mut task = json!({
            "taskArn": self.arn, "clusterArn": cluster_arn,
            "taskDefinitionArn": self.task_definition_arn,
            "lastStatus": last, "desiredStatus": desired,
            "group": format!("service:{}", self.service), "launchType": "FARGATE",
            "startedAt": self.started_at, "createdAt": self.started_at,
            "healthStatus": if self.stopped.is_some() { "UNKNOWN" } else { "HEALTHY" },
        });
        if let Some(stopped) = &self.stopped {
            container["exitCode"] = json!(stopped.exit_code);
            task["stoppedAt"] = json!(stopped.at);
            task["stopCode"] = json!(stopped.code);
            task["stoppedReason"] = json!(stopped.reason);
        }
        task["containers"] = json!([container]);
        task
    }
}

fn cluster_of(input: &Value) -> String {
    let cluster = input["cluster"].as_str().unwrap_or("default");
    cluster.rsplit('/').next().unwrap_or(cluster).to_string()
}

impl EcsStandIn {
    /// Starts a task of `service` running `image`; its ARN.
    pub fn start_task(
        &self,
        cluster: &str,
        service: &str,
        task_definition_arn: &str,
        container: &str,
        image: &str,
    ) -> String {
        let mut world = self.inner.world.lock().unwrap();
        world.next += 1;
        // A 32-hex-digit id, as ECS's look.
        let arn = format!(
            "arn:aws:ecs:{REGION}:{ACCOUNT}:task/{cluster}/{:016x}{:016x}",
            0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(world.next),
            0xc2b2_ae3d_27d4_eb4f_u64.wrapping_mul(world.next)
        );
        world.tasks.push(PlayedTask {
            arn: arn.clone(),
            cluster: cluster.into(),
            service: service.into(),
            task_definition_arn: task_definition_arn.into(),
            container: container.into(),
            image: image.into(),
            started_at: now(),
            stopped: None,
        });
        arn
    }

    /// Stops the running tasks of `service` that run `image` (all, when `arn` is
    /// `None`) as `how` says.
    pub fn stop_tasks(&self, service: &str, image: &str, arn: Option<&str>, how: &Stopped) {
        let mut world = self.inner.world.lock().unwrap();
        for task in world.tasks.iter_mut().filter(|t| {
            t.service == service
                && t.image == image
                && t.stopped.is_none()
                && arn.is_none_or(|a| a == t.arn)
        }) {
            task.stopped = Some(how.clone());
        }
    }

    pub(super) fn list_tasks(&self, input: &Value) -> Result<Value, ApiError> {
        let cluster = cluster_of(input);
        let service = input["serviceName"].as_str();
        let stopped = input["desiredStatus"].as_str() == Some("STOPPED");
        let world = self.inner.world.lock().unwrap();
        let arns: Vec<&str> = world
            .tasks
            .iter()
            .filter(|t| t.cluster == cluster && service.is_none_or(|s| s == t.service))
            .filter(|t| t.stopped.is_some() == stopped)
            .map(|t| t.arn.as_str())
            .collect();
        Ok(json!({ "taskArns": arns }))
    }

    pub(super) fn describe_tasks(&self, input: &Value) -> Result<Value, ApiError> {
        let cluster = cluster_of(input);
        let world = self.inner.world.lock().unwrap();
        let mut tasks = Vec::new();
        let mut failures = Vec::new();
        for wanted in input["tasks"].as_array().into_iter().flatten() {
            let wanted = wanted.as_str().unwrap_or_default();
            match world
                .tasks
                .iter()
                .find(|t| t.cluster == cluster && (t.arn == wanted || t.id() == wanted))
            {
                Some(task) => tasks.push(task.to_json()),
                None => failures.push(json!({"arn": wanted, "reason": "MISSING"})),
            }
        }
        Ok(json!({ "tasks": tasks, "failures": failures }))
    }
}
