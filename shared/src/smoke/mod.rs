//! The smoke-test engine: runs configured HTTP checks against a base URL and
//! returns a structured report. Pure library (no AWS): the lifecycle hook and the
//! `greenlight smoke` CLI run the same code.
//!
//! Semantics:
//! - Each check is tried up to `attempts` times; a failed attempt waits `backoff`,
//!   doubling each time (green can take seconds to warm up).
//! - Every attempt has its own timeout; the whole run has a deadline, and no attempt
//!   or backoff extends past it. A check cut short by the deadline fails.
//! - At most `concurrency` checks run at once. Redirects are not followed, so a
//!   check can expect a 3xx.
//! - `${image_tag}`, `${image_digest}` and `${deployment_id}` are replaced in the
//!   path, headers, body and every expectation, so a check can prove the answer
//!   came from the new version.

mod expect;
mod http;
mod placeholders;
mod report;
mod run;

use crate::config::CheckSpec;

pub use expect::expectations;
pub use http::{http_client, HttpClients, HttpsClientError};
pub use placeholders::{is_secret_reference, secret_references, Placeholders, MASK};
pub use report::{Attempt, CheckReport, Mismatch, SmokeReport};
pub use run::{run, RunOptions, MAX_BODY_BYTES};

/// Checks that run at `event` (a lifecycle event name), in configured order.
pub fn checks_for(checks: &[CheckSpec], event: crate::LifecycleEvent) -> Vec<CheckSpec> {
    checks
        .iter()
        .filter(|c| c.events.contains(&event))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests;
