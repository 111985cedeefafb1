//! The deployment page's "why" section, at the top of a failed deployment: what
//! people were told (the line most likely to explain it), green's tasks with their
//! stop reasons and exit codes, and the masked log excerpt. Built with maud, which
//! escapes every value and checks the markup at compile time.

use maud::{html, Markup};
use serde_json::Value;

/// The section for a deployment's `evidence` (as the failure notification carried
/// it); nothing when there is none.
pub fn section(evidence: &Value) -> Markup {
    if evidence.is_null() {
        return html! {};
    }
    let said = evidence["description"].as_str().unwrap_or_default();
    let tasks = evidence["tasks"].as_array().cloned().unwrap_or_default();
    let logs = evidence["logs"].as_array().cloned().unwrap_or_default();
    let gaps = evidence["gaps"].as_array().cloned().unwrap_or_default();
    html! {
        div class="why" {
            h3 { "Why it failed" }
            // The notification's first line repeats the outcome the summary shows.
            @for line in said.lines().filter(|l| !l.trim().is_empty() && !l.starts_with("Deployment ")) {
                p class="said" { (line) }
            }
            @if !tasks.is_empty() {
                div class="scroll" { table class="tasks" {
                    tr { th { "green's task" } th { "status" } th { "stopped because" } th { "container" } th { "exit code" } }
                    @for task in &tasks {
                        @for container in task["containers"].as_array().cloned().unwrap_or_default() {
                            tr {
                                td { code { (short(task["task_id"].as_str().unwrap_or_default())) } }
                                td { (task["last_status"].as_str().unwrap_or_default()) }
                                td { (task["stopped_reason"].as_str().unwrap_or("-")) }
                                td { (container["name"].as_str().unwrap_or_default()) }
                                td class="exit" { (container["exit_code"].as_i64().map_or("-".to_string(), |c| c.to_string())) }
                            }
                        }
                    }
                } }
            }
            @if !logs.is_empty() {
                p { "Green's last log lines (" (evidence["log_group"].as_str().unwrap_or("CloudWatch Logs")) ", masked):" }
                pre class="excerpt" {
                    @for line in &logs {
                        span class=(if line["error"].as_bool() == Some(true) { "line error" } else { "line" }) {
                            (short(line["task_id"].as_str().unwrap_or_default())) "  " (line["message"].as_str().unwrap_or_default())
                        }
                        "\n"
                    }
                }
            }
            @for gap in &gaps {
                p class="gap" { (gap.as_str().unwrap_or_default()) }
            }
        }
    }
}

fn short(task_id: &str) -> &str {
    task_id.get(..8).unwrap_or(task_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_cause_the_exit_code_and_the_lines_sit_inside_the_section_escaped() {
        let html = section(&json!({
            "description": "Deployment d-1 failed.\nMost likely cause: FATAL <db> gone",
            "tasks": [{"task_id": "0123456789", "last_status": "STOPPED",
                "stopped_reason": "Essential container in task exited",
                "containers": [{"name": "web", "exit_code": 1}]}],
            "logs": [{"task_id": "0123456789", "at": 1, "message": "FATAL <db> gone", "error": true}],
            "log_group": "/ecs/web", "calls": 5
        }))
        .into_string();
        assert!(html.starts_with("<div class=\"why\">"));
        assert!(html.contains("<p class=\"said\">Most likely cause: FATAL &lt;db&gt; gone</p>"));
        assert!(html.contains("<td class=\"exit\">1</td>"), "{html}");
        assert!(
            html.contains("<span class=\"line error\">01234567  FATAL &lt;db&gt; gone</span>"),
            "{html}"
        );
        assert!(!html.contains("<db>"));
        assert!(
            !html.contains("Deployment d-1 failed."),
            "the summary says the outcome"
        );
    }

    #[test]
    fn no_evidence_no_section() {
        assert_eq!(section(&Value::Null).into_string(), "");
    }
}
