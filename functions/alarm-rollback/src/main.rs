//! Wiring only: configuration and AWS clients are built once, then the runtime loop.

// The handlers' futures nest deeply (retrying SDK calls inside concurrent lookups).
#![recursion_limit = "256"]

use std::sync::Arc;

use alarm_rollback::Rollback;
use greenlight::aws::{self, retry, Sns};
use greenlight::config_source::{refresh_and_report, LiveConfig};
use greenlight::deploy::Backends;
use greenlight::notify::Notifier;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    greenlight::logging::init();
    let sdk = aws::load_sdk_config()
        .await
        .inspect_err(|e| tracing::error!(error = %e, "invalid TLS trust setting"))?;
    // Fetched and validated now: a bad document fails init, naming source and key path.
    let live = Arc::new(
        LiveConfig::load(&sdk, |name| std::env::var(name).ok())
            .await
            .inspect_err(|e| tracing::error!(error = %e, "configuration is invalid"))?,
    );
    let config = live.shared();
    let topic = config.load().notifications.topic_arn.clone();
    let rollback = Arc::new(Rollback {
        config,
        backends: Backends::from_conf(&sdk, None),
        notifier: Notifier::new(Sns::from_conf(&sdk), topic),
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (rollback, live) = (Arc::clone(&rollback), Arc::clone(&live));
        // AWS calls retry throttling until shortly before Lambda's deadline.
        let deadline = retry::less_margin(
            retry::invocation_deadline(&event.context),
            retry::RETURN_MARGIN,
        );
        async move {
            refresh_and_report(&live, &rollback.notifier, deadline).await;
            retry::within(deadline, rollback.handle(event.payload)).await
        }
    }))
    .await
}
