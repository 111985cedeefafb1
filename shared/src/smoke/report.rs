//! What a smoke run reports: each check, each attempt, what did not match.

use serde::Serialize;

use super::placeholders::MASK;

/// The result of one smoke run.
#[derive(Debug, Clone, Serialize)]
pub struct SmokeReport {
    pub base_url: String,
    pub passed: bool,
    pub checks: Vec<CheckReport>,
    pub elapsed_ms: u64,
    /// The run's deadline cut at least one check short.
    pub deadline_reached: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub name: String,
    pub method: String,
    pub url: String,
    pub passed: bool,
    pub attempts: Vec<Attempt>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub number: u32,
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// Transport error (refused, timed out, ...), when there was no response.
    pub error: Option<String>,
    pub mismatches: Vec<Mismatch>,
    /// The start of the body, for people reading a failure.
    pub body_excerpt: Option<String>,
}

/// One expectation that did not hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mismatch {
    pub expectation: String,
    pub expected: String,
    pub got: String,
}

/// How much of a body a report keeps.
pub(super) const EXCERPT_BYTES: usize = 256;

impl Attempt {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.mismatches.is_empty()
    }
}

impl SmokeReport {
    /// One line per failed check: the last attempt's first problem, for people.
    pub fn failure_summary(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| {
                let last = c.attempts.last();
                let why = match last {
                    None => "never attempted (deadline reached)".to_string(),
                    Some(a) => match (&a.error, a.mismatches.first()) {
                        (Some(e), _) => e.clone(),
                        (None, Some(m)) => {
                            format!("{}: expected {}, got {}", m.expectation, m.expected, m.got)
                        }
                        (None, None) => "failed".to_string(),
                    },
                };
                let latency = last
                    .map(|a| format!(", {} ms", a.latency_ms))
                    .unwrap_or_default();
                format!(
                    "{} {} {}: {} (after {} attempt(s){latency})",
                    c.name,
                    c.method,
                    c.url,
                    why,
                    c.attempts.len()
                )
            })
            .collect()
    }

    pub fn passed_count(&self) -> usize {
        self.checks.iter().filter(|c| c.passed).count()
    }
}

impl SmokeReport {
    /// Replaces every occurrence of `values` in the report's texts with [`MASK`].
    pub(crate) fn mask<'a>(&mut self, values: impl IntoIterator<Item = &'a String>) {
        let values: Vec<&String> = values.into_iter().filter(|v| !v.is_empty()).collect();
        if values.is_empty() {
            return;
        }
        let hide = |text: &mut String| {
            for v in &values {
                if text.contains(v.as_str()) {
                    *text = text.replace(v.as_str(), MASK);
                }
            }
        };
        hide(&mut self.base_url);
        for check in &mut self.checks {
            hide(&mut check.url);
            for attempt in &mut check.attempts {
                if let Some(e) = attempt.error.as_mut() {
                    hide(e);
                }
                if let Some(b) = attempt.body_excerpt.as_mut() {
                    hide(b);
                }
                for m in &mut attempt.mismatches {
                    hide(&mut m.expected);
                    hide(&mut m.got);
                }
            }
        }
    }
}
