//! Notifications: one SNS publish per step that matters, readable by a person and
//! parseable by a machine.
//!
//! Each publish uses `MessageStructure=json`: email subscribers get short plain text
//! (what, which service, which image, why, what next, console link); every other
//! protocol gets the Amazon Q Developer in chat applications (formerly AWS Chatbot)
//! custom-notification JSON, with `metadata.threadId` = the deployment id so one
//! chat thread follows one deployment. Message attributes `event`, `service` and
//! `severity` let subscribers filter.
//!
//! A failure to notify never fails the step it reports on: it is logged at error
//! level and counted.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::aws::sns::{Publication, Publisher};
use crate::aws::AwsError;

/// A second destination for every notification: the release ledger records what
/// each one says about a deployment attempt (`crate::ledger`).
pub trait Recorder: Send + Sync + std::fmt::Debug {
    fn record<'a>(
        &'a self,
        notification: &'a Notification,
    ) -> futures::future::BoxFuture<'a, Result<(), AwsError>>;
}

/// The longest a ledger write may take, retries included, before the step goes on
/// without it (and says so).
const RECORD_BUDGET: std::time::Duration = std::time::Duration::from_secs(3);

/// SNS's subject limit.
pub(crate) const SUBJECT_MAX: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationEvent {
    DeploymentStarted,
    DeploymentQueued,
    DeploymentSkipped,
    DeploymentStartFailed,
    HookPassed,
    HookFailed,
    RollbackRequested,
    AlarmWithoutDeployment,
    DeploymentFinished,
    /// An ECS-native deployment is about to wait at a PAUSE hook for a person.
    ApprovalPending,
    /// The analysis judged green against blue under production traffic.
    AnalysisPassed,
    AnalysisFailed,
    /// A new configuration version was invalid: the previous one stays in force.
    ConfigRefused,
    /// The release ledger could not record a step (the step itself went on).
    LedgerWriteFailed,
    /// A verified digest will be promoted when its soak ends.
    PromotionScheduled,
    /// Its soak ended; the promotion waits for `greenlight promote`.
    PromotionPending,
    /// A promotion that must not happen (unverified, revoked, older), and why.
    PromotionRefused,
    /// An alarm fired while a digest soaked: it will not be promoted.
    DigestRevoked,
}

impl NotificationEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationEvent::DeploymentStarted => "deployment_started",
            NotificationEvent::DeploymentQueued => "deployment_queued",
            NotificationEvent::DeploymentSkipped => "deployment_skipped",
            NotificationEvent::DeploymentStartFailed => "deployment_start_failed",
            NotificationEvent::HookPassed => "hook_passed",
            NotificationEvent::HookFailed => "hook_failed",
            NotificationEvent::RollbackRequested => "rollback_requested",
            NotificationEvent::AlarmWithoutDeployment => "alarm_without_deployment",
            NotificationEvent::DeploymentFinished => "deployment_finished",
            NotificationEvent::ApprovalPending => "approval_pending",
            NotificationEvent::AnalysisPassed => "analysis_passed",
            NotificationEvent::AnalysisFailed => "analysis_failed",
            NotificationEvent::ConfigRefused => "config_refused",
            NotificationEvent::LedgerWriteFailed => "ledger_write_failed",
            NotificationEvent::PromotionScheduled => "promotion_scheduled",
            NotificationEvent::PromotionPending => "promotion_pending",
            NotificationEvent::PromotionRefused => "promotion_refused",
            NotificationEvent::DigestRevoked => "digest_revoked",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// What happened, for people and machines.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    pub event: NotificationEvent,
    pub severity: Severity,
    pub service: String,
    pub deployment_id: Option<String>,
    /// The image concerned (digest-pinned URI or tag), if any.
    pub image: Option<String>,
    pub title: String,
    /// What happened and why, a few sentences.
    pub description: String,
    pub next_steps: Vec<String>,
    /// Structured facts for machines (`metadata.additionalContext`).
    pub facts: Map<String, Value>,
    pub console_url: Option<String>,
    /// Green's log excerpt (chat: a code block under the description).
    pub excerpt: Option<String>,
}

impl Notification {
    pub fn new(
        event: NotificationEvent,
        severity: Severity,
        service: &str,
        title: impl Into<String>,
    ) -> Self {
        Notification {
            event,
            severity,
            service: service.to_string(),
            deployment_id: None,
            image: None,
            title: title.into(),
            description: String::new(),
            next_steps: Vec::new(),
            facts: Map::new(),
            console_url: None,
            excerpt: None,
        }
    }

    pub fn deployment(mut self, deployment_id: &str, region: Option<&str>) -> Self {
        self.deployment_id = Some(deployment_id.to_string());
        if let Some(region) = region {
            self.console_url = Some(deployment_console_url(region, deployment_id));
        }
        self
    }

    pub fn image(mut self, image: impl Into<String>) -> Self {
        self.image = Some(image.into());
        self
    }

    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = text.into();
        self
    }

    pub fn next_step(mut self, step: impl Into<String>) -> Self {
        self.next_steps.push(step.into());
        self
    }

    pub fn fact(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.facts.insert(key.to_string(), value.into());
        self
    }

    /// The SNS subject: at most 100 characters, as SNS requires.
    pub fn subject(&self) -> String {
        let subject = format!("[Greenlight] {}: {}", self.service, self.title);
        // SNS subjects must be ASCII-printable without line breaks.
        let clean: String = subject
            .chars()
            .map(|c| {
                if c.is_ascii() && !c.is_ascii_control() {
                    c
                } else {
                    ' '
                }
            })
            .collect();
        if clean.len() <= SUBJECT_MAX {
            clean
        } else {
            format!("{}...", &clean[..SUBJECT_MAX - 3])
        }
    }

    /// The custom-notification JSON for chat and machine subscribers.
    pub(crate) fn chat_json(&self) -> Value {
        let mut context = self.facts.clone();
        context.insert("event".into(), self.event.as_str().into());
        context.insert("severity".into(), self.severity.as_str().into());
        context.insert("service".into(), self.service.clone().into());
        if let Some(id) = &self.deployment_id {
            context.insert("deployment_id".into(), id.clone().into());
        }
        if let Some(image) = &self.image {
            context.insert("image".into(), image.clone().into());
        }
        let mut description = self.description.clone();
        if let Some(excerpt) = &self.excerpt {
            // A fence the excerpt cannot close early.
            description.push_str(&format!("\n```\n{}\n```", excerpt.replace("```", "'''")));
        }
        if let Some(url) = &self.console_url {
            description.push_str(&format!("\n[Open in the AWS console]({url})"));
        }
        let mut related = Vec::new();
        if let Some(url) = &self.console_url {
            related.push(Value::from(url.clone()));
        }
        json!({
            "version": "1.0",
            "source": "custom",
            "id": self.deployment_id.clone().map(|id| format!("{id}-{}", self.event.as_str())),
            "content": {
                "textType": "client-markdown",
                "title": self.title,
                "description": description,
                "nextSteps": self.next_steps,
                "keywords": [self.service.clone(), self.event.as_str().to_string(), self.severity.as_str().to_string()],
            },
            "metadata": {
                "threadId": self.deployment_id.clone().unwrap_or_else(|| format!("greenlight-{}", self.service)),
                "summary": self.subject(),
                "eventType": self.event.as_str(),
                "relatedResources": related,
                "additionalContext": context,
            }
        })
    }

    /// Short plain text for email subscribers.
    pub(crate) fn email_text(&self) -> String {
        let mut text = format!("{}\n\nService: {}\n", self.title, self.service);
        if let Some(image) = &self.image {
            text.push_str(&format!("Image: {image}\n"));
        }
        if let Some(id) = &self.deployment_id {
            text.push_str(&format!("Deployment: {id}\n"));
        }
        text.push_str(&format!("Severity: {}\n", self.severity.as_str()));
        if !self.description.is_empty() {
            text.push_str(&format!("\n{}\n", self.description));
        }
        if !self.next_steps.is_empty() {
            text.push_str("\nWhat to do next:\n");
            for step in &self.next_steps {
                text.push_str(&format!("- {step}\n"));
            }
        }
        if let Some(url) = &self.console_url {
            text.push_str(&format!("\nConsole: {url}\n"));
        }
        text
    }

    /// The SNS publish for `topic_arn`.
    pub fn publication(&self, topic_arn: &str) -> Publication {
        let message = json!({
            "default": self.chat_json().to_string(),
            "email": self.email_text(),
        });
        Publication {
            topic_arn: topic_arn.to_string(),
            subject: self.subject(),
            message: message.to_string(),
            attributes: vec![
                ("event".into(), self.event.as_str().into()),
                ("service".into(), self.service.clone()),
                ("severity".into(), self.severity.as_str().into()),
            ],
        }
    }
}

/// What people are told when the ledger missed a step: history and metrics will
/// lack it, nothing else is affected.
fn ledger_failed(step: &Notification, error: &AwsError) -> Notification {
    let mut n = Notification::new(
        NotificationEvent::LedgerWriteFailed,
        Severity::Warning,
        &step.service,
        format!("Release ledger missed: {}", step.title),
    )
    .description(format!(
        "The step was taken and notified, but the release ledger could not record it ({error}); greenlight history and metrics will not show it."
    ))
    .next_step("Check the functions' dynamodb:UpdateItem grant on the ledger table and its throttling.")
    .fact("missed_event", step.event.as_str());
    n.deployment_id = step.deployment_id.clone();
    n.console_url = step.console_url.clone();
    n
}

/// The console page of a deployment: CodeDeploy's for a `d-…` id, ECS's for a
/// service deployment ARN (`arn:aws:ecs:REGION:ACCOUNT:service-deployment/CLUSTER/SERVICE/ID`).
pub(crate) fn deployment_console_url(region: &str, deployment_id: &str) -> String {
    let ecs = deployment_id
        .split_once(":service-deployment/")
        .map(|(_, rest)| rest.splitn(3, '/').collect::<Vec<_>>());
    match ecs.as_deref() {
        Some([cluster, service, id]) => format!(
            "https://{region}.console.aws.amazon.com/ecs/v2/clusters/{cluster}/services/{service}/deployments/{id}?region={region}"
        ),
        _ => format!("https://{region}.console.aws.amazon.com/codesuite/codedeploy/deployments/{deployment_id}?region={region}"),
    }
}

/// Publishes notifications and records in the release ledger what they say about a
/// deployment attempt; never fails the caller.
#[derive(Debug)]
pub struct Notifier<P> {
    publisher: P,
    topic_arn: Option<String>,
    failures: AtomicU64,
    recorder: Option<Box<dyn Recorder>>,
    ledger_failures: AtomicU64,
}

impl<P: Publisher> Notifier<P> {
    pub fn new(publisher: P, topic_arn: Option<String>) -> Self {
        if topic_arn.is_none() {
            tracing::warn!("no notification topic configured (notifications.topic_arn or GREENLIGHT_TOPIC_ARN): notifications are logged only");
        }
        Notifier {
            publisher,
            topic_arn,
            failures: AtomicU64::new(0),
            recorder: None,
            ledger_failures: AtomicU64::new(0),
        }
    }

    /// Also records each notification's step with `recorder` (the ledger), when
    /// there is one.
    pub fn recording_to<R: Recorder + 'static>(mut self, recorder: Option<R>) -> Self {
        self.recorder = recorder.map(|r| Box::new(r) as Box<dyn Recorder>);
        self
    }

    /// Publishes `notification` and records it in the ledger, side by side; a
    /// failure of either is logged at error level and counted, and a ledger write
    /// that failed is itself notified. Returns the message id.
    pub async fn notify(&self, notification: &Notification) -> Option<String> {
        let (published, recorded) = futures::join!(self.publish(notification), async {
            let recorder = self.recorder.as_ref()?;
            // A ledger out of reach (a hook in a VPC without the DynamoDB endpoint)
            // must not hold up what the step waits for, such as an ECS hook's answer.
            Some(
                tokio::time::timeout(RECORD_BUDGET, recorder.record(notification))
                    .await
                    .unwrap_or_else(|_| {
                        Err(AwsError::unexpected(
                            "DynamoDB",
                            "UpdateItem",
                            format!(
                                "no answer within {} s: is DynamoDB reachable from the function?",
                                RECORD_BUDGET.as_secs()
                            ),
                        ))
                    }),
            )
        });
        if let Some(Err(e)) = recorded {
            let failures = self.ledger_failures.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::error!(
                error = %e,
                event = notification.event.as_str(),
                service = %notification.service,
                deployment_id = notification.deployment_id.as_deref().unwrap_or(""),
                ledger_failures = failures,
                "could not record this step in the release ledger; the step itself is not affected"
            );
            self.publish(&ledger_failed(notification, &e)).await;
        }
        published
    }

    /// Publishes a step its caller has already recorded in the ledger itself (a
    /// revocation, which must be written before anyone is told): one write, not two.
    pub async fn notify_recorded(&self, notification: &Notification) -> Option<String> {
        self.publish(notification).await
    }

    /// Ledger writes that failed since start.
    pub fn ledger_failures(&self) -> u64 {
        self.ledger_failures.load(Ordering::Relaxed)
    }

    async fn publish(&self, notification: &Notification) -> Option<String> {
        tracing::info!(
            event = notification.event.as_str(),
            service = %notification.service,
            deployment_id = notification.deployment_id.as_deref().unwrap_or(""),
            severity = notification.severity.as_str(),
            title = %notification.title,
            "notification"
        );
        let topic = self.topic_arn.as_deref()?;
        match self
            .publisher
            .publish(&notification.publication(topic))
            .await
        {
            Ok(id) => Some(id),
            Err(e) => {
                let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::error!(
                    error = %e,
                    event = notification.event.as_str(),
                    service = %notification.service,
                    deployment_id = notification.deployment_id.as_deref().unwrap_or(""),
                    notify_failures = failures,
                    "could not publish notification; the step it reports on is not affected"
                );
                None
            }
        }
    }

    /// Notifications that could not be published since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Notification {
        Notification::new(
            NotificationEvent::HookFailed,
            Severity::Error,
            "web",
            "Smoke tests failed at AfterAllowTestTraffic",
        )
        .deployment("d-ABC", Some("us-east-1"))
        .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/web-app@sha256:ab")
        .description("health: expected 200, got 503")
        .next_step("Look at the green task logs")
        .fact("lifecycle_event", "AfterAllowTestTraffic")
    }

    #[test]
    fn chat_json_has_the_custom_notification_shape() {
        let json = sample().chat_json();
        assert_eq!(json["version"], "1.0");
        assert_eq!(json["source"], "custom");
        assert_eq!(json["content"]["textType"], "client-markdown");
        assert_eq!(
            json["content"]["title"],
            "Smoke tests failed at AfterAllowTestTraffic"
        );
        assert_eq!(
            json["content"]["nextSteps"][0],
            "Look at the green task logs"
        );
        assert_eq!(json["metadata"]["threadId"], "d-ABC");
        assert_eq!(
            json["metadata"]["additionalContext"]["lifecycle_event"],
            "AfterAllowTestTraffic"
        );
        assert_eq!(json["metadata"]["additionalContext"]["service"], "web");
    }

    #[test]
    fn email_text_is_readable_and_has_the_console_link() {
        let text = sample().email_text();
        assert!(text.starts_with("Smoke tests failed at AfterAllowTestTraffic\n"));
        assert!(text.contains("Service: web\n"));
        assert!(text.contains("- Look at the green task logs"));
        assert!(text.contains("Console: https://us-east-1.console.aws.amazon.com/codesuite/codedeploy/deployments/d-ABC?region=us-east-1"));
        assert!(!text.contains('{'), "email text must not be JSON: {text}");
    }

    #[test]
    fn subject_is_at_most_100_ascii_characters() {
        let long = Notification::new(
            NotificationEvent::DeploymentStarted,
            Severity::Info,
            "web",
            "é".repeat(200),
        );
        let subject = long.subject();
        assert!(
            subject.len() <= SUBJECT_MAX && subject.is_ascii(),
            "{subject}"
        );
        assert!(subject.ends_with("..."));
    }

    #[test]
    fn publication_carries_both_variants_and_the_filter_attributes() {
        let publication = sample().publication("arn:aws:sns:us-east-1:123456789012:t");
        let message: Value = serde_json::from_str(&publication.message).unwrap();
        let chat: Value = serde_json::from_str(message["default"].as_str().unwrap()).unwrap();
        assert_eq!(chat["source"], "custom");
        assert!(message["email"].as_str().unwrap().contains("Service: web"));
        let attributes: Vec<_> = publication
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(
            attributes,
            ["event=hook_failed", "service=web", "severity=error"]
        );
    }
}
