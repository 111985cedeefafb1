//! The reads behind the evidence, bounded: ListTasks (stopped, then running), one
//! DescribeTasks, one DescribeTaskDefinition (green's log configuration) and one
//! GetLogEvents per task, at most [`MAX_TASKS`] tasks: 4 + tasks calls at most (9),
//! 2 when the service has no tasks at all. A read that fails becomes a gap in the
//! evidence, never an error: the failure is already decided and told. When lines
//! were read and the service's checks use secrets, those are read too (one read
//! each) so their values are masked out of the lines.

use aws_sdk_ecs::types::{LogDriver, Task};

use super::{excerpt, ContainerEvidence, Evidence, Redactor, TaskEvidence, MAX_TASKS};
use crate::aws::secrets::Secrets;
use crate::aws::{Ecs, Logs};
use crate::config::ServiceConfig;

/// Lines read per task: enough to find the errors among the last lines.
const LINES_PER_TASK: i32 = 100;
/// Lines written this long after the failure still count (clocks, flushing).
const AFTER_FAILURE_MS: i64 = 60_000;

/// Which tasks are green's, and when it failed.
#[derive(Debug, Clone)]
pub struct Green<'a> {
    pub cluster: &'a str,
    pub service: &'a str,
    /// The container Greenlight deploys (its logs are read).
    pub container: &'a str,
    /// Green's image digest: a task is green's if its container runs it.
    pub image_digest: &'a str,
    /// When the failure was reported, milliseconds since the epoch.
    pub at_ms: i64,
}

impl Green<'_> {
    fn owns(&self, task: &Task) -> bool {
        let pinned = format!("@{}", self.image_digest);
        task.containers().iter().any(|c| {
            c.image_digest() == Some(self.image_digest)
                || c.image().is_some_and(|image| image.ends_with(&pinned))
        })
    }
}

/// What the capture reads through.
#[derive(Debug, Clone)]
pub struct Capture {
    pub ecs: Ecs,
    pub logs: Logs,
    /// The checks' secrets, read only to mask them out of log lines.
    pub secrets: Secrets,
}

impl Capture {
    pub fn from_conf(sdk: &aws_config::SdkConfig) -> Capture {
        Capture {
            ecs: Ecs::from_conf(sdk),
            logs: Logs::from_conf(sdk),
            secrets: Secrets::from_conf(sdk),
        }
    }

    /// The evidence of `service`'s green (the tasks running `digest`) at `at_ms`,
    /// masked with the defaults, `redact` and the values of its checks' secrets.
    pub async fn for_service(
        &self,
        service: &ServiceConfig,
        digest: &str,
        at_ms: i64,
        redact: &[String],
    ) -> Evidence {
        let green = Green {
            cluster: &service.cluster,
            service: &service.service,
            container: &service.container,
            image_digest: digest,
            at_ms,
        };
        let mut references: Vec<String> = service
            .smoke
            .checks
            .iter()
            .flat_map(crate::smoke::secret_references)
            .collect();
        references.sort();
        references.dedup();
        self.green(&green, Redactor::new(redact), &references).await
    }

    /// Green's evidence. Never fails: what could not be read is named in `gaps`.
    /// `secrets`: references whose values are masked, read only if there are lines.
    pub async fn green(
        &self,
        green: &Green<'_>,
        mut redactor: Redactor,
        secrets: &[String],
    ) -> Evidence {
        let mut evidence = Evidence::default();
        let mut arns = Vec::new();
        for stopped in [true, false] {
            evidence.calls += 1;
            match self
                .ecs
                .service_tasks(green.cluster, green.service, stopped)
                .await
            {
                Ok(found) => arns.extend(found),
                Err(e) => evidence
                    .gaps
                    .push(format!("cannot list the service's tasks: {e}")),
            }
        }
        if arns.is_empty() {
            evidence
                .gaps
                .push(format!("{} has no tasks left to describe", green.service));
            return evidence;
        }
        evidence.calls += 1;
        let tasks = match self.ecs.describe_tasks(green.cluster, &arns).await {
            Ok(tasks) => tasks,
            Err(e) => {
                evidence
                    .gaps
                    .push(format!("cannot describe the tasks: {e}"));
                return evidence;
            }
        };
        let mut tasks: Vec<Task> = tasks.into_iter().filter(|t| green.owns(t)).collect();
        // Stopped tasks first (they hold the exit codes), newest first.
        tasks.sort_by_key(|t| {
            (
                t.stopped_at().is_none(),
                std::cmp::Reverse(
                    t.stopped_at()
                        .or(t.started_at())
                        .and_then(|d| d.to_millis().ok()),
                ),
            )
        });
        tasks.truncate(MAX_TASKS);
        if tasks.is_empty() {
            evidence
                .gaps
                .push("none of the service's tasks runs green's image".into());
            return evidence;
        }
        evidence.tasks = tasks.iter().map(task_evidence).collect();
        let streams = self.log_streams(green, &tasks, &mut evidence).await;
        let mut lines = Vec::new();
        if let Some((group, streams)) = streams {
            for (task_id, stream) in streams {
                evidence.calls += 1;
                match self
                    .logs
                    .last_events(
                        &group,
                        &stream,
                        green.at_ms + AFTER_FAILURE_MS,
                        LINES_PER_TASK,
                    )
                    .await
                {
                    Ok(events) => lines.push((task_id, events)),
                    Err(e) => evidence
                        .gaps
                        .push(format!("cannot read log stream {stream}: {e}")),
                }
            }
            evidence.log_group = Some(group);
        }
        if !secrets.is_empty() && lines.iter().any(|(_, events)| !events.is_empty()) {
            let resolved = self.secrets.resolve(secrets).await;
            redactor = redactor.with_values(resolved.values.into_values());
        }
        evidence.logs = excerpt::select(lines, &redactor);
        if evidence.logs.is_empty() && evidence.log_group.is_some() {
            evidence
                .gaps
                .push("green's tasks wrote no log lines before the failure".into());
        }
        evidence
    }

    /// The `awslogs` group and each task's stream of the deployed container
    /// (`prefix/container/task-id`), or a gap saying why not.
    async fn log_streams(
        &self,
        green: &Green<'_>,
        tasks: &[Task],
        evidence: &mut Evidence,
    ) -> Option<(String, Vec<(String, String)>)> {
        let definition = tasks.first()?.task_definition_arn()?;
        evidence.calls += 1;
        let definition = match self.ecs.task_definition(definition).await {
            Ok(d) => d.task_definition,
            Err(e) => {
                evidence
                    .gaps
                    .push(format!("cannot read green's task definition: {e}"));
                return None;
            }
        };
        let container = definition
            .container_definitions()
            .iter()
            .find(|c| c.name() == Some(green.container))?;
        let Some(config) = container.log_configuration() else {
            evidence.gaps.push(format!(
                "container {} has no log configuration: no lines to read",
                green.container
            ));
            return None;
        };
        if config.log_driver() != &LogDriver::Awslogs {
            evidence.gaps.push(format!(
                "container {} logs through {}, not awslogs: its lines are not read",
                green.container,
                config.log_driver().as_str()
            ));
            return None;
        }
        let options = config.options();
        let group = options.and_then(|o| o.get("awslogs-group"))?.clone();
        let Some(prefix) = options.and_then(|o| o.get("awslogs-stream-prefix")) else {
            evidence.gaps.push(format!(
                "container {} sets no awslogs-stream-prefix: its streams cannot be told apart",
                green.container
            ));
            return None;
        };
        let streams = tasks
            .iter()
            .map(|t| {
                let id = task_id(t);
                (id.clone(), format!("{prefix}/{}/{id}", green.container))
            })
            .collect();
        Some((group, streams))
    }
}

fn task_id(task: &Task) -> String {
    task.task_arn()
        .and_then(|arn| arn.rsplit('/').next())
        .unwrap_or_default()
        .to_string()
}

fn task_evidence(task: &Task) -> TaskEvidence {
    TaskEvidence {
        task_id: task_id(task),
        last_status: task.last_status().unwrap_or_default().to_string(),
        stopped_reason: task.stopped_reason().map(str::to_string),
        health: task.health_status().map(|h| h.as_str().to_string()),
        containers: task
            .containers()
            .iter()
            .map(|c| ContainerEvidence {
                name: c.name().unwrap_or_default().to_string(),
                last_status: c.last_status().map(str::to_string),
                exit_code: c.exit_code(),
                reason: c.reason().map(str::to_string),
            })
            .collect(),
    }
}
