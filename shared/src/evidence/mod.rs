//! Why green failed, in green's own words: its tasks (last status, stop reason,
//! each container's exit code, health) and an excerpt of its logs, captured when the
//! engine reports the deployment failed, whoever decided (a smoke check, the
//! analysis, an alarm, ECS's circuit breaker, a hook's timeout). ECS keeps a stopped
//! task describable for at least an hour and CloudWatch Logs keeps the lines for
//! the group's retention, so the capture at the failure event still finds them; a
//! person opening the console later often does not.
//!
//! | file | what it holds |
//! |---|---|
//! | this one | the evidence and what it says first ([`Evidence::likely_cause`]) |
//! | `excerpt` | which log lines are kept (pure): errors first, then the last lines, bounded |
//! | [`redact`] | masking: resolved secrets, `redact:` patterns, defaults |
//! | `told` | what the failure notification says of it |
//! | [`capture`] | the reads: ListTasks, DescribeTasks, DescribeTaskDefinition, GetLogEvents |

pub mod capture;
mod excerpt;
pub mod redact;
mod told;

use serde::{Deserialize, Serialize};

pub use capture::{Capture, Green};
pub use excerpt::{error_like, MAX_BYTES, MAX_LINES};
pub use redact::Redactor;

/// At most this many of green's tasks are described and read (stopped ones first).
pub const MAX_TASKS: usize = 5;

/// What green left behind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Green's tasks, stopped ones first, newest first.
    pub tasks: Vec<TaskEvidence>,
    /// Log lines of those tasks, oldest first, masked and bounded.
    pub logs: Vec<LogLine>,
    /// Where the lines came from (`awslogs` group), when they came from anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_group: Option<String>,
    /// Why there are no lines (another log driver, nothing written, a read that
    /// failed): said, never an error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<String>,
    /// AWS calls the capture made.
    pub calls: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskEvidence {
    pub task_id: String,
    pub last_status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    /// HEALTHY, UNHEALTHY or UNKNOWN (container health checks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    pub containers: Vec<ContainerEvidence>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerEvidence {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One log line of one of green's tasks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// The task's id (the last part of its ARN).
    pub task_id: String,
    /// Milliseconds since the epoch.
    pub at: i64,
    pub message: String,
    /// Looks like an error ([`error_like`]).
    pub error: bool,
}

impl Evidence {
    /// Nothing was found.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty() && self.logs.is_empty()
    }

    /// The one line most likely to explain the failure: the last error-like log
    /// line, else a container that exited non-zero, else a stopped task's reason.
    pub fn likely_cause(&self) -> Option<String> {
        if let Some(line) = self.logs.iter().rev().find(|l| l.error) {
            return Some(line.message.clone());
        }
        self.exits().next().or_else(|| {
            self.tasks.iter().find_map(|t| {
                t.stopped_reason
                    .as_ref()
                    .map(|r| format!("task {} stopped: {r}", short(&t.task_id)))
            })
        })
    }

    /// Each container that exited non-zero, in words.
    pub fn exits(&self) -> impl Iterator<Item = String> + '_ {
        self.tasks.iter().flat_map(|t| {
            t.containers.iter().filter_map(move |c| {
                let code = c.exit_code.filter(|code| *code != 0)?;
                Some(format!(
                    "container {} of task {} exited with code {code}{}",
                    c.name,
                    short(&t.task_id),
                    c.reason
                        .as_ref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                ))
            })
        })
    }

    /// The excerpt as plain lines (`task  message`), for a chat code block.
    pub fn excerpt_text(&self) -> String {
        self.logs
            .iter()
            .map(|l| format!("{}  {}", short(&l.task_id), l.message))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A task id short enough to read (its first 8 characters).
pub fn short(task_id: &str) -> &str {
    task_id.get(..8).unwrap_or(task_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stopped(code: i32) -> TaskEvidence {
        TaskEvidence {
            task_id: "0123456789abcdef".into(),
            last_status: "STOPPED".into(),
            stopped_reason: Some("Essential container in task exited".into()),
            health: None,
            containers: vec![ContainerEvidence {
                name: "web".into(),
                last_status: Some("STOPPED".into()),
                exit_code: Some(code),
                reason: None,
            }],
        }
    }

    #[test]
    fn the_likely_cause_is_the_last_error_line_then_the_exit_then_the_stop() {
        let mut evidence = Evidence {
            tasks: vec![stopped(1)],
            ..Evidence::default()
        };
        assert_eq!(
            evidence.likely_cause().as_deref(),
            Some("container web of task 01234567 exited with code 1")
        );
        evidence.tasks = vec![stopped(0)];
        assert_eq!(
            evidence.likely_cause().as_deref(),
            Some("task 01234567 stopped: Essential container in task exited")
        );
        evidence.logs = vec![
            LogLine {
                message: "FATAL first".into(),
                error: true,
                ..LogLine::default()
            },
            LogLine {
                message: "FATAL: database unreachable".into(),
                error: true,
                ..LogLine::default()
            },
            LogLine {
                message: "shutting down".into(),
                ..LogLine::default()
            },
        ];
        assert_eq!(
            evidence.likely_cause().as_deref(),
            Some("FATAL: database unreachable")
        );
        assert_eq!(Evidence::default().likely_cause(), None);
    }
}
