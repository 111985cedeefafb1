//! How green's evidence is told: the failure notification's text names the line
//! most likely to explain it and each non-zero exit; chat gets the excerpt; machines
//! get the whole evidence under `additionalContext.evidence`.

use serde_json::Value;

use super::Evidence;
use crate::notify::Notification;

impl Notification {
    /// Green's evidence: the line most likely to explain the failure and each
    /// non-zero exit in the description, the whole evidence as a fact, the log
    /// excerpt for chat.
    pub fn evidence(mut self, evidence: &Evidence) -> Self {
        let mut said = Vec::new();
        let cause = evidence.likely_cause();
        if let Some(cause) = &cause {
            said.push(format!("Most likely cause: {cause}"));
        }
        for exit in evidence.exits().take(3) {
            if cause.as_deref() != Some(exit.as_str()) {
                said.push(exit);
            }
        }
        if evidence.is_empty() && !evidence.gaps.is_empty() {
            said.push(format!(
                "No evidence from green: {}",
                evidence.gaps.join("; ")
            ));
        }
        if !said.is_empty() {
            if !self.description.is_empty() {
                self.description.push('\n');
            }
            self.description.push_str(&said.join("\n"));
        }
        if !evidence.logs.is_empty() {
            self.excerpt = Some(evidence.excerpt_text());
        }
        self.facts.insert(
            "evidence".into(),
            serde_json::to_value(evidence).unwrap_or(Value::Null),
        );
        self
    }
}

#[cfg(test)]
mod tests {
    use crate::evidence::{ContainerEvidence, Evidence, LogLine, TaskEvidence};
    use crate::notify::{Notification, NotificationEvent, Severity};

    #[test]
    fn evidence_puts_the_cause_in_the_text_and_the_excerpt_in_chat_only() {
        let evidence = Evidence {
            tasks: vec![TaskEvidence {
                task_id: "abcdef0123".into(),
                last_status: "STOPPED".into(),
                containers: vec![ContainerEvidence {
                    name: "web".into(),
                    exit_code: Some(1),
                    ..ContainerEvidence::default()
                }],
                ..TaskEvidence::default()
            }],
            logs: vec![
                LogLine {
                    task_id: "abcdef0123".into(),
                    at: 1,
                    message: "booting".into(),
                    error: false,
                },
                LogLine {
                    task_id: "abcdef0123".into(),
                    at: 2,
                    message: "FATAL: no db".into(),
                    error: true,
                },
            ],
            ..Evidence::default()
        };
        let n = Notification::new(
            NotificationEvent::DeploymentFinished,
            Severity::Error,
            "web",
            "failed",
        )
        .description("Deployment d-1 failed.")
        .evidence(&evidence);
        let email = n.email_text();
        assert!(email.contains("Most likely cause: FATAL: no db"), "{email}");
        assert!(
            email.contains("container web of task abcdef01 exited with code 1"),
            "{email}"
        );
        assert!(
            !email.contains("booting"),
            "the excerpt stays out of the short text"
        );
        let chat = n.chat_json();
        let description = chat["content"]["description"].as_str().unwrap();
        assert!(
            description.contains("```\nabcdef01  booting\nabcdef01  FATAL: no db\n```"),
            "{description}"
        );
        assert_eq!(
            chat["metadata"]["additionalContext"]["evidence"]["tasks"][0]["containers"][0]
                ["exit_code"],
            1
        );
    }
}
