//! What preflight reports: one finding per problem, with its severity and the fix.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
    /// Preflight could not decide; it says why instead of guessing.
    Undecided,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub service: String,
    pub severity: Severity,
    pub check: &'static str,
    pub problem: String,
    pub fix: String,
}
