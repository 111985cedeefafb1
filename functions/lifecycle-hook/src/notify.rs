//! What people and machines are told about a hook: its verdict (passed, failed,
//! the analysis with its figures) and a PAUSE that waits for someone.

use greenlight::analysis::Verdict as AnalysisVerdict;
use greenlight::aws::sns::Publisher;
use greenlight::aws::HookStatus;
use greenlight::notify::{Notification, NotificationEvent, Notifier, Severity};
use greenlight::LifecycleEvent;
use serde_json::Value;

use crate::verdict::Verdict;

pub(crate) async fn approval<P: Publisher>(
    notifier: &Notifier<P>,
    deployment_id: &str,
    service: &str,
    stage: &str,
) {
    let region = std::env::var("AWS_REGION").ok();
    let notification = Notification::new(
        NotificationEvent::ApprovalPending,
        Severity::Warning,
        service,
        format!("Approval needed at {stage}"),
    )
    .deployment(deployment_id, region.as_deref())
    .description(format!(
        "Smoke checks passed. The deployment now waits at a PAUSE hook ({stage}) until someone decides; it rolls back if nobody does before the hook's timeout."
    ))
    .next_step(format!("Approve: greenlight approve {service}"))
    .next_step(format!("Reject (roll back): greenlight reject {service}"))
    .fact("lifecycle_stage", stage.to_string());
    notifier.notify(&notification).await;
}

/// `word`: the stage in the engine's own vocabulary (`AfterAllowTestTraffic` for
/// CodeDeploy, `POST_TEST_TRAFFIC_SHIFT` for ECS), as people see it in its console.
pub(crate) async fn verdict<P: Publisher>(
    notifier: &Notifier<P>,
    deployment_id: &str,
    verdict: &Verdict,
    word: fn(LifecycleEvent) -> &'static str,
) {
    let service = verdict.service.as_deref().unwrap_or("unknown");
    let event = verdict
        .lifecycle_event
        .map_or("lifecycle hook".to_string(), |e| word(e).to_string());
    let (kind, severity, title) = match (verdict.status(), &verdict.analysis) {
        (HookStatus::Succeeded, Some(result)) => (
            NotificationEvent::AnalysisPassed,
            if result.verdict == AnalysisVerdict::Pass {
                Severity::Info
            } else {
                Severity::Warning
            },
            format!(
                "analysis {:?} at {event}: green judged against blue",
                result.verdict
            ),
        ),
        (HookStatus::Failed, Some(_)) => (
            NotificationEvent::AnalysisFailed,
            Severity::Error,
            format!("analysis failed at {event}: rolling back to blue"),
        ),
        (HookStatus::Succeeded, None) => (
            NotificationEvent::HookPassed,
            Severity::Info,
            format!("{event} passed"),
        ),
        (HookStatus::Failed, None) => (
            NotificationEvent::HookFailed,
            Severity::Error,
            format!("{event} failed: deployment will roll back"),
        ),
    };
    let region = std::env::var("AWS_REGION").ok();
    let mut notification = Notification::new(kind, severity, service, title)
        .deployment(deployment_id, region.as_deref())
        .description(verdict.reason.clone())
        .fact("lifecycle_event", event.clone())
        .fact("status", verdict.status().as_str());
    if let Some(tag) = &verdict.image_tag {
        notification = notification.image(tag.clone());
    }
    if let Some(report) = &verdict.smoke {
        notification =
            notification.fact("smoke", serde_json::to_value(report).unwrap_or(Value::Null));
        for line in report.failure_summary() {
            notification = notification.next_step(format!("Check {line}"));
        }
    }
    if let Some(result) = &verdict.analysis {
        // Per interval and metric, green and blue: the figures behind the verdict.
        notification = notification.fact(
            "analysis",
            serde_json::to_value(result).unwrap_or(Value::Null),
        );
    }
    if verdict.status() == HookStatus::Failed {
        notification = notification.next_step(
            "Fix the image and push a new tag; production still serves the previous version.",
        );
    }
    notifier.notify(&notification).await;
}
