//! Wiring only: configuration and AWS clients are built once, then the runtime loop.

// The handlers' futures nest deeply (retrying SDK calls inside concurrent lookups).
#![recursion_limit = "256"]

use std::sync::Arc;

use alarm_rollback::Rollback;
use greenlight::aws::{retry, Sns};
use greenlight::config_source::refresh_and_report;
use greenlight::deploy::Backends;
use greenlight::ledger::Ledger;
use greenlight::notify::Notifier;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

// One thread: the handler waits on AWS, never on its own CPU, so worker threads would
// only add their start to every cold start (measured: README, "Benchmarks").
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (sdk, live) = greenlight::init::sdk_and_config().await?;
    let config = live.shared();
    let topic = config.load().notifications.topic_arn.clone();
    let ledger = Ledger::from_env(&sdk);
    let rollback = Arc::new(Rollback {
        config,
        backends: Backends::for_stopping(&sdk),
        // Most alarms stop nothing and publish nothing: SNS is built at the first publish.
        notifier: Notifier::new(Sns::deferred(&sdk), topic).recording_to(ledger.clone()),
        ledger,
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
