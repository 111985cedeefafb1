//! Wiring only: configuration is loaded once, then the runtime loop.

use std::sync::Arc;

use greenlight::Config;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    greenlight::logging::init();
    let config = Arc::new(
        Config::from_env()
            .inspect_err(|e| tracing::error!(error = %e, "configuration is invalid"))?,
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let config = Arc::clone(&config);
        async move { deploy_on_push::handle(&config, event.payload).await }
    }))
    .await
}
