//! The configuration in force, and keeping a warm function's copy current: a
//! refresh at most once per interval, a new valid version switched in, an invalid
//! one refused and reported once.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use super::store::ConfigStore;
use super::{parse_document, ConfigSource, ENV_CONFIG_REFRESH};
use crate::config::{Config, ConfigError, ENV_TOPIC_ARN};

/// The configuration in force, shared by a handler and the refresh: each invocation
/// takes the current one with [`SharedConfig::load`].
#[derive(Debug, Clone)]
pub struct SharedConfig(Arc<RwLock<Arc<Config>>>);

impl SharedConfig {
    pub fn new(config: Config) -> Self {
        SharedConfig(Arc::new(RwLock::new(Arc::new(config))))
    }

    pub fn load(&self) -> Arc<Config> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn store(&self, config: Config) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
    }
}

impl From<Arc<Config>> for SharedConfig {
    fn from(config: Arc<Config>) -> Self {
        SharedConfig(Arc::new(RwLock::new(config)))
    }
}

impl From<Config> for SharedConfig {
    fn from(config: Config) -> Self {
        SharedConfig::new(config)
    }
}

/// What a refresh found.
#[derive(Debug)]
pub enum Refresh {
    /// Not due, unchanged, or a local source.
    Unchanged,
    /// A new valid version is in force.
    Switched { version: Option<String> },
    /// A new version is invalid: the old one stays; reported once per version.
    Refused {
        version: Option<String>,
        error: String,
    },
    /// The source could not be read: the old document stays (logged, retried next time).
    Unreadable(String),
}

/// A configuration loaded from its source and kept current.
#[derive(Debug)]
pub struct LiveConfig {
    pub source: ConfigSource,
    shared: SharedConfig,
    store: ConfigStore,
    topic_override: Option<String>,
    refresh_every: Duration,
    state: Mutex<RefreshState>,
}

#[derive(Debug)]
struct RefreshState {
    version: Option<String>,
    next_check: Instant,
    refused: Option<String>,
}

impl LiveConfig {
    /// Loads the document the environment names; any problem names the source.
    pub async fn load(
        sdk: &aws_config::SdkConfig,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<LiveConfig, ConfigError> {
        let source = ConfigSource::from_lookup(&lookup)?;
        let store = ConfigStore::from_conf(sdk);
        let topic_override = lookup(ENV_TOPIC_ARN);
        let refresh_every = Duration::from_secs(
            lookup(ENV_CONFIG_REFRESH)
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(60),
        );
        let within = |error: ConfigError| ConfigError::In {
            origin: source.to_string(),
            error: Box::new(error),
        };
        let document = store
            .fetch(&source, None)
            .await
            .map_err(|e| within(ConfigError::Fetch(e.to_string())))?
            .ok_or_else(|| within(ConfigError::Fetch("no document".into())))?;
        let config = parse_document(&document.text, topic_override.as_deref()).map_err(&within)?;
        tracing::info!(source = %source, version = ?document.version, bytes = document.text.len(), "configuration loaded");
        Ok(LiveConfig {
            source,
            shared: SharedConfig::new(config),
            store,
            topic_override,
            refresh_every,
            state: Mutex::new(RefreshState {
                version: document.version,
                next_check: Instant::now() + refresh_every,
                refused: None,
            }),
        })
    }

    /// The configuration handlers read.
    pub fn shared(&self) -> SharedConfig {
        self.shared.clone()
    }

    /// Looks at the source again if a remote one is due; at most one look per
    /// `refresh_every`, so a busy function adds one call a minute.
    pub async fn refresh(&self) -> Refresh {
        if !self.source.is_remote() {
            return Refresh::Unchanged;
        }
        let known = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if Instant::now() < state.next_check {
                return Refresh::Unchanged;
            }
            state.next_check = Instant::now() + self.refresh_every;
            state.version.clone()
        };
        let document = match self.store.fetch(&self.source, known.as_deref()).await {
            Ok(Some(document)) => document,
            Ok(None) => return Refresh::Unchanged,
            Err(e) => {
                tracing::warn!(source = %self.source, error = %e, "cannot read the configuration source: keeping the current document");
                return Refresh::Unreadable(e.to_string());
            }
        };
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match parse_document(&document.text, self.topic_override.as_deref()) {
            Ok(config) => {
                self.shared.store(config);
                tracing::info!(source = %self.source, from = ?state.version, to = ?document.version, "configuration switched to a new version");
                state.version = document.version.clone();
                state.refused = None;
                Refresh::Switched {
                    version: document.version,
                }
            }
            Err(error) => {
                tracing::error!(source = %self.source, version = ?document.version, error = %error, "new configuration version refused: keeping the current one");
                if state.refused == document.version {
                    return Refresh::Unchanged;
                }
                state.refused = document.version.clone();
                Refresh::Refused {
                    version: document.version,
                    error: format!("{}: {error}", self.source),
                }
            }
        }
    }
}

/// Refreshes `live` if due and tells people when a new version was refused: what a
/// function's runtime loop does before each invocation.
///
/// Bounded by the invocation: it takes at most `REFRESH_BUDGET` or a quarter of the
/// time left before `deadline`, whichever is less; a source or topic that does not
/// answer by then leaves the document in force as it is (logged), so the handler keeps
/// its time.
pub async fn refresh_and_report<P: crate::aws::sns::Publisher>(
    live: &LiveConfig,
    notifier: &crate::notify::Notifier<P>,
    deadline: Instant,
) -> Refresh {
    let left = deadline.saturating_duration_since(Instant::now());
    let by = Instant::now() + REFRESH_BUDGET.min(left / 4);
    match crate::aws::retry::bounded(by, refresh_and_notify(live, notifier)).await {
        Some(refresh) => refresh,
        None => {
            tracing::warn!(
                source = %live.source,
                "configuration refresh cut off to keep the invocation's time; the document in force stays"
            );
            Refresh::Unreadable("the refresh did not finish within its budget".into())
        }
    }
}

/// The longest a refresh (with its notification) may take of an invocation.
pub(crate) const REFRESH_BUDGET: Duration = Duration::from_secs(3);

async fn refresh_and_notify<P: crate::aws::sns::Publisher>(
    live: &LiveConfig,
    notifier: &crate::notify::Notifier<P>,
) -> Refresh {
    use crate::notify::{Notification, NotificationEvent, Severity};
    let refresh = live.refresh().await;
    if let Refresh::Refused { version, error } = &refresh {
        let notification = Notification::new(
            NotificationEvent::ConfigRefused,
            Severity::Error,
            "greenlight",
            format!(
                "new configuration version {} refused",
                version.as_deref().unwrap_or("?")
            ),
        )
        .description(error.clone())
        .fact("source", live.source.to_string())
        .next_step("Fix the document (greenlight config check), then push it again; the previous version stays in force until then.");
        notifier.notify(&notification).await;
    }
    refresh
}
