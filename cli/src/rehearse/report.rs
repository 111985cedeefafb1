//! What a rehearsal reports: each scenario's checks, figures, timeline and traffic.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use crate::rehearse::engine::DeployPath;

/// A notification the rehearsal heard: event, subject, message (chat JSON).
pub(crate) type Heard = (String, String, String);

/// One check of a scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub what: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    pub number: u8,
    pub path: DeployPath,
    pub name: String,
    pub passed: bool,
    pub seconds: f64,
    pub checks: Vec<Check>,
    pub figures: HashMap<String, f64>,
    /// The timeline lines of this scenario.
    pub timeline: Vec<String>,
    /// Production traffic on green, sampled: seconds since the scenario began.
    pub traffic: Vec<TrafficSample>,
    /// When the scenario began, in seconds on the rehearsal's timeline.
    pub started_at: f64,
    /// A failure's evidence as the notification carried it (`description`: what it said).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Value>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct TrafficSample {
    pub t: f64,
    pub green_percent: u8,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub passed: bool,
    pub seconds: f64,
    pub scenarios: Vec<ScenarioReport>,
    pub timeline: Vec<String>,
}

/// The seconds a timeline line was said at (`[  6.606s] …`).
pub(crate) fn line_seconds(line: &str) -> Option<f64> {
    line.strip_prefix('[')?
        .split_once("s]")?
        .0
        .trim()
        .parse()
        .ok()
}

pub(crate) fn check(what: &str, passed: bool, detail: String) -> Check {
    Check {
        what: what.into(),
        passed,
        detail,
    }
}

/// The notifications heard, in words.
pub(crate) fn said(events: &[String]) -> String {
    if events.is_empty() {
        "nothing was notified".into()
    } else {
        format!("notified: {}", events.join(", "))
    }
}

/// One line about each of several answers.
pub(crate) fn briefs(answers: &[Value]) -> String {
    if answers.is_empty() {
        return "no answer".into();
    }
    answers
        .iter()
        .map(|a| brief(&Ok(a.clone())))
        .collect::<Vec<_>>()
        .join("; ")
}

/// One line about a function's answer.
pub(crate) fn brief(answer: &Result<Value, String>) -> String {
    match answer {
        Err(e) => format!("error: {e}"),
        Ok(Value::Array(items)) if items.is_empty() => "noted".into(),
        Ok(Value::Array(items)) => items
            .iter()
            .map(|o| {
                let kind = match o["acted"].as_bool() {
                    Some(true) => Some("acted:"),
                    Some(false) => Some("ignored:"),
                    None => None,
                };
                let mut s = o["outcome"]
                    .as_str()
                    .or(o["decision"].as_str())
                    .or(kind)
                    .unwrap_or("?")
                    .to_string();
                for key in ["deployment_id", "in_flight_id", "reason", "alarm"] {
                    if let Some(v) = o[key].as_str() {
                        s.push_str(&format!(" {v}"));
                    }
                }
                s
            })
            .collect::<Vec<_>>()
            .join("; "),
        Ok(v) => {
            let mut s = v["status"]
                .as_str()
                .or(v["hookStatus"].as_str())
                .or(v["decision"].as_str())
                .unwrap_or_default()
                .to_string();
            if let Some(reason) = v["reason"].as_str() {
                s.push_str(&format!(": {reason}"));
            }
            s.chars().take(220).collect()
        }
    }
}
