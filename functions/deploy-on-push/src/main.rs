//! Wiring only: configuration and AWS clients are built once, then the runtime loop.

// The handlers' futures nest deeply (retrying SDK calls inside concurrent lookups).
#![recursion_limit = "256"]

use std::sync::Arc;

use deploy_on_push::{DeployOnPush, ENV_HOOK_FUNCTION};
use greenlight::aws::scheduler::Scheduler;
use greenlight::aws::{retry, Ecr, Sns};
use greenlight::config_source::refresh_and_report;
use greenlight::deploy::{hook_pattern_needed, Backends};
use greenlight::evidence::Capture;
use greenlight::ledger::{Ledger, Trigger};
use greenlight::notify::Notifier;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

// One thread: the handler waits on AWS, never on its own CPU, so worker threads would
// only add their start to every cold start (measured: README, "Benchmarks").
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (sdk, live) = greenlight::init::sdk_and_config().await?;
    let config = live.shared();
    let hook_pattern = std::env::var(ENV_HOOK_FUNCTION)
        .ok()
        .filter(|v| !v.trim().is_empty());
    if hook_pattern.is_none() && hook_pattern_needed(&config.load()) {
        let message = format!("{ENV_HOOK_FUNCTION} is not set: the AppSpec of every deployment must name the Greenlight hook function (a name, an ARN, or a pattern with {{event}})");
        tracing::error!("{message}");
        return Err(message.into());
    }
    let ledger = Ledger::from_env(&sdk);
    let handler = Arc::new(DeployOnPush {
        notifier: Notifier::new(
            Sns::from_conf(&sdk),
            config.load().notifications.topic_arn.clone(),
        )
        .recording_to(ledger.clone()),
        config,
        backends: Backends::from_conf(&sdk, hook_pattern),
        ecr: Ecr::from_conf(&sdk),
        capture: Capture::from_conf(&sdk),
        trigger: Trigger::Push,
        ledger,
        scheduler: Scheduler::from_env(&sdk),
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (handler, live) = (Arc::clone(&handler), Arc::clone(&live));
        // AWS calls retry throttling until shortly before Lambda's deadline.
        let deadline = retry::less_margin(
            retry::invocation_deadline(&event.context),
            retry::RETURN_MARGIN,
        );
        async move {
            refresh_and_report(&live, &handler.notifier, deadline).await;
            retry::within(deadline, handler.handle(event.payload)).await
        }
    }))
    .await
}
