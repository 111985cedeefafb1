//! Wiring only: configuration and AWS clients are built once, then the runtime loop.

// The handlers' futures nest deeply (retrying SDK calls inside concurrent lookups).
#![recursion_limit = "256"]

use std::sync::Arc;

use greenlight::aws::{self, CodeDeploy, Ecs, LoadBalancers, Sns};
use greenlight::config_source::{refresh_and_report, LiveConfig};
use greenlight::ledger::Ledger;
use greenlight::notify::Notifier;
use lambda_runtime::{service_fn, LambdaEvent};
use lifecycle_hook::{hook_event_from_env, CodeDeployContract, Gate, Hook, REPORT_MARGIN};
use serde_json::Value;

// One thread, like the other functions: every step of a decision either awaits (and
// the deadline guard's timer fires there) or is bounded by its input, and the inputs
// are bounded (a smoke body is read up to 1 MiB). Worker threads cost more at init than
// anything else the hook could drop (issue 25).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    greenlight::logging::init();
    let hook_event = hook_event_from_env()?;
    // A bad configuration does not stop the hook: every invocation is then answered
    // Failed with the reason, instead of leaving deployments to time out.
    let sdk = aws::load_sdk_config()
        .await
        .inspect_err(|e| tracing::error!(error = %e, "invalid TLS trust setting"))?;
    let live = LiveConfig::load(&sdk, |name| std::env::var(name).ok())
        .await
        .map(Arc::new)
        .map_err(|e| {
            tracing::error!(error = %e, "configuration is invalid: every hook invocation will answer Failed");
            Arc::new(e)
        });
    let config = live.as_ref().map(|l| l.shared()).map_err(Arc::clone);
    let topic = config
        .as_ref()
        .ok()
        .and_then(|c| c.load().notifications.topic_arn.clone());
    // One CodeDeploy client both reads and reports (a clone shares the client).
    let codedeploy = CodeDeploy::from_conf(&sdk);
    let hook = Arc::new(Hook {
        config,
        hook_event,
        deployments: codedeploy.clone(),
        listeners: LoadBalancers::from_conf(&sdk),
        notifier: Notifier::new(Sns::from_conf(&sdk), topic).recording_to(Ledger::from_env(&sdk)),
        contract: CodeDeployContract::new(codedeploy.clone()),
        services: Ecs::from_conf(&sdk),
        http: greenlight::smoke::HttpClients::new()?,
        report_margin: REPORT_MARGIN,
        gate: Gate::sharing(&sdk, codedeploy),
        secrets: aws::secrets::Secrets::from_conf(&sdk),
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (hook, live) = (Arc::clone(&hook), live.as_ref().ok().map(Arc::clone));
        async move {
            let deadline = aws::retry::invocation_deadline(&event.context);
            if let Some(live) = &live {
                refresh_and_report(live, &hook.notifier, deadline).await;
            }
            hook.handle(event.payload, deadline).await
        }
    }))
    .await
}
