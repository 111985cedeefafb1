//! What the stand-ins share of the AWS JSON 1.1 protocol: an API error as the
//! protocol sends it (`__type` and `message`), and the clock the engines stamp
//! their records with.

use std::time::{SystemTime, UNIX_EPOCH};

/// An API error: `__type` and `message`, as AWS JSON 1.1 sends them.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub code: &'static str,
    pub message: String,
}

pub(crate) fn error(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        code,
        message: message.into(),
    }
}

/// Now, seconds since the epoch: the timestamps JSON 1.1 answers carry.
pub(crate) fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}
