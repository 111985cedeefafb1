//! What deploy-on-push and alarm-rollback do first at init: JSON logs, the SDK
//! configuration, and the configuration document fetched and validated (a bad one
//! fails init, naming its source and key path). The hook loads its configuration
//! apart: a bad document must not stop it from answering.

use std::sync::Arc;

use crate::aws::{self, SdkConfig};
use crate::config_source::LiveConfig;

/// Why a function could not start.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Tls(#[from] aws::TrustRootsError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// Logs set up, the SDK configuration loaded, the document read from its source.
pub async fn sdk_and_config() -> Result<(SdkConfig, Arc<LiveConfig>), InitError> {
    crate::logging::init();
    let sdk = aws::load_sdk_config()
        .await
        .inspect_err(|e| tracing::error!(error = %e, "invalid TLS trust setting"))?;
    let live = LiveConfig::load(&sdk, |name| std::env::var(name).ok())
        .await
        .inspect_err(|e| tracing::error!(error = %e, "configuration is invalid"))?;
    Ok((sdk, Arc::new(live)))
}
