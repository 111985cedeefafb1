//! Green's tasks and their log lines, read when a deployment failed:
//! `ecs:ListTasks`, `ecs:DescribeTasks` and `logs:GetLogEvents`.

use aws_sdk_ecs::types::{DesiredStatus, Task};

use super::{retry, AwsError, Ecs, LazyClient};

impl Ecs {
    /// The ARNs of a service's tasks with this desired status (one page: up to 100).
    pub async fn service_tasks(
        &self,
        cluster: &str,
        service: &str,
        stopped: bool,
    ) -> Result<Vec<String>, AwsError> {
        let status = if stopped {
            DesiredStatus::Stopped
        } else {
            DesiredStatus::Running
        };
        let output = retry::call("ECS", "ListTasks", || {
            self.client()
                .list_tasks()
                .cluster(cluster)
                .service_name(service)
                .desired_status(status.clone())
                .max_results(100)
                .send()
        })
        .await?;
        Ok(output.task_arns.unwrap_or_default())
    }

    /// Tasks by ARN (at most 100, ECS's limit per call).
    pub async fn describe_tasks(
        &self,
        cluster: &str,
        arns: &[String],
    ) -> Result<Vec<Task>, AwsError> {
        if arns.is_empty() {
            return Ok(Vec::new());
        }
        let arns: Vec<String> = arns.iter().take(100).cloned().collect();
        let output = retry::call("ECS", "DescribeTasks", || {
            self.client()
                .describe_tasks()
                .cluster(cluster)
                .set_tasks(Some(arns.clone()))
                .send()
        })
        .await?;
        Ok(output.tasks.unwrap_or_default())
    }
}

/// CloudWatch Logs: the last lines of one stream.
#[derive(Debug, Clone)]
pub struct Logs {
    client: LazyClient<aws_sdk_cloudwatchlogs::Client>,
}

impl Logs {
    /// The client is built on first use: only a failed deployment reads logs.
    pub fn from_conf(config: &aws_config::SdkConfig) -> Self {
        Logs {
            client: LazyClient::deferred(config, aws_sdk_cloudwatchlogs::Client::new),
        }
    }

    /// Up to `limit` of the stream's last events at or before `until_ms`, oldest
    /// first (`GetLogEvents` from the tail: one call).
    pub async fn last_events(
        &self,
        group: &str,
        stream: &str,
        until_ms: i64,
        limit: i32,
    ) -> Result<Vec<(i64, String)>, AwsError> {
        let output = retry::call("CloudWatch Logs", "GetLogEvents", || {
            self.client
                .get()
                .get_log_events()
                .log_group_name(group)
                .log_stream_name(stream)
                .end_time(until_ms)
                .start_from_head(false)
                .limit(limit)
                .send()
        })
        .await?;
        let mut events: Vec<(i64, String)> = output
            .events
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| Some((e.timestamp.unwrap_or_default(), e.message?)))
            .collect();
        events.sort_by_key(|e| e.0);
        Ok(events)
    }
}
