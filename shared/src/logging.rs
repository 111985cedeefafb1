//! Logging: structured JSON through tracing.
//!
//! lambda_runtime's subscriber honours `AWS_LAMBDA_LOG_FORMAT` and
//! `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging controls; the template sets
//! JSON). Outside Lambda, `RUST_LOG` sets the level. Every line about a deployment
//! carries `service` and `deployment_id` fields: handlers open a span with both.

/// Installs the subscriber; call once at the top of `main`.
pub fn init() {
    lambda_runtime::tracing::init_default_subscriber();
}
