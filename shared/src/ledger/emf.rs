//! A finished deployment as one CloudWatch embedded-metric-format log line: the
//! delivery metrics reach CloudWatch with no API call and no extra permission
//! (CloudWatch Logs extracts them from the function's log group; "Using the
//! embedded metric format with Lambda", CloudWatch User Guide). Time to restore
//! needs the previous failure, so it comes from the ledger (`greenlight metrics`).

use serde_json::{json, Value};

use super::record::{Entry, Outcome};

/// The namespace the metrics land in.
pub const NAMESPACE: &str = "Greenlight";

/// The EMF document for a finished attempt, or `None` before it has an outcome.
/// Metrics: `Deployments` (1), `DeploymentFailures` (1 if rolled back or never
/// started, else 0: their sum over the sum of `Deployments` is the change failure
/// rate), `LeadTime` and `Duration` (milliseconds, when known), by `Service`.
pub fn document(entry: &Entry, now_ms: i64) -> Option<Value> {
    let outcome = entry.outcome?;
    let failed = u8::from(outcome != Outcome::Succeeded);
    let mut metrics = vec![
        json!({"Name": "Deployments", "Unit": "Count"}),
        json!({"Name": "DeploymentFailures", "Unit": "Count"}),
    ];
    let mut document = json!({
        "Service": entry.service,
        "Outcome": outcome.as_str(),
        "DeploymentId": entry.deployment_id,
        "Deployments": 1,
        "DeploymentFailures": failed,
    });
    if let Some(lead) = entry.lead_time_ms() {
        metrics.push(json!({"Name": "LeadTime", "Unit": "Milliseconds"}));
        document["LeadTime"] = lead.into();
    }
    if let Some(duration) = entry.duration_ms() {
        metrics.push(json!({"Name": "Duration", "Unit": "Milliseconds"}));
        document["Duration"] = duration.into();
    }
    document["_aws"] = json!({
        "Timestamp": now_ms,
        "CloudWatchMetrics": [{
            "Namespace": NAMESPACE,
            "Dimensions": [["Service"]],
            "Metrics": metrics,
        }],
    });
    Some(document)
}
