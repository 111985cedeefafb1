//! Where the configuration document comes from, and keeping a warm function's copy
//! current without a redeploy.
//!
//! Four sources, exactly one set (init says which):
//! - `GREENLIGHT_CONFIG`: the document inline;
//! - `GREENLIGHT_CONFIG_FILE`: a path (relative: against `LAMBDA_TASK_ROOT`);
//! - `GREENLIGHT_CONFIG_SSM`: a Parameter Store parameter, name or ARN, String or
//!   SecureString (decrypted), standard (4 KB) or advanced (8 KB) tier;
//! - `GREENLIGHT_CONFIG_S3`: `s3://bucket/key` (any size).
//!
//! Remote documents are fetched and validated at init; a problem names the source and
//! the key path. Afterwards [`LiveConfig::refresh`] looks again at most once per
//! `GREENLIGHT_CONFIG_REFRESH_SECONDS` (default 60): SSM's parameter `Version`, S3's
//! `ETag` (HeadObject; the object is read only when it changed). A valid new version
//! replaces the old one for the next invocation (logged); an invalid one is refused,
//! the old one kept, and the refusal reported once per version.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use crate::aws::{retry, AwsError, LazyClient};
use crate::config::{Config, ConfigError, ENV_CONFIG, ENV_CONFIG_FILE, ENV_TOPIC_ARN};

pub const ENV_CONFIG_SSM: &str = "GREENLIGHT_CONFIG_SSM";
pub const ENV_CONFIG_S3: &str = "GREENLIGHT_CONFIG_S3";
pub const ENV_CONFIG_REFRESH: &str = "GREENLIGHT_CONFIG_REFRESH_SECONDS";
const ENV_TASK_ROOT: &str = "LAMBDA_TASK_ROOT";

/// One configuration source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    Inline(String),
    File(std::path::PathBuf),
    Ssm(String),
    S3 { bucket: String, key: String },
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigSource::Inline(_) => write!(f, "{ENV_CONFIG} (inline)"),
            ConfigSource::File(path) => write!(f, "file {}", path.display()),
            ConfigSource::Ssm(name) => write!(f, "SSM parameter {name}"),
            ConfigSource::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

impl ConfigSource {
    /// The one source the environment names.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let set: Vec<(&str, String)> = [ENV_CONFIG, ENV_CONFIG_FILE, ENV_CONFIG_SSM, ENV_CONFIG_S3]
            .into_iter()
            .filter_map(|name| Some((name, get(name)?)))
            .collect();
        match set.as_slice() {
            [] => Err(ConfigError::NotSet),
            [(name, value)] => Ok(match *name {
                ENV_CONFIG => ConfigSource::Inline(value.clone()),
                ENV_CONFIG_FILE => ConfigSource::File(resolve(value, get(ENV_TASK_ROOT))),
                ENV_CONFIG_SSM => ConfigSource::Ssm(value.trim().to_string()),
                _ => Self::s3(value.trim()).map_err(|e| ConfigError::In {
                    origin: ENV_CONFIG_S3.into(),
                    error: Box::new(e),
                })?,
            }),
            several => Err(ConfigError::SeveralSet(
                several.iter().map(|(n, _)| n.to_string()).collect(),
            )),
        }
    }

    /// A source as the CLI takes it: `ssm:NAME`, `s3://bucket/key`, or a file path.
    pub fn from_argument(text: &str) -> Result<Self, ConfigError> {
        if let Some(name) = text.strip_prefix("ssm:") {
            return Ok(ConfigSource::Ssm(name.to_string()));
        }
        if text.starts_with("s3://") {
            return Self::s3(text);
        }
        Ok(ConfigSource::File(text.into()))
    }

    fn s3(url: &str) -> Result<Self, ConfigError> {
        let rest = url.strip_prefix("s3://").unwrap_or(url);
        match rest.split_once('/') {
            Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok(ConfigSource::S3 {
                bucket: bucket.to_string(),
                key: key.to_string(),
            }),
            _ => Err(ConfigError::Syntax(format!(
                "{url:?} is not s3://bucket/key"
            ))),
        }
    }

    pub fn is_remote(&self) -> bool {
        matches!(self, ConfigSource::Ssm(_) | ConfigSource::S3 { .. })
    }
}

fn resolve(path: &str, task_root: Option<String>) -> std::path::PathBuf {
    let path = std::path::PathBuf::from(path);
    match task_root {
        Some(root) if path.is_relative() => std::path::Path::new(&root).join(path),
        _ => path,
    }
}

/// A document and the version it was read at (SSM Version, S3 ETag; none locally).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub text: String,
    pub version: Option<String>,
}

/// Reads documents from SSM and S3 (`ssm:GetParameter` with decryption, `s3:GetObject`;
/// HeadObject needs no permission beyond GetObject) and writes them (`config push`).
#[derive(Debug, Clone)]
pub struct ConfigStore {
    ssm: LazyClient<aws_sdk_ssm::Client>,
    s3: LazyClient<aws_sdk_s3::Client>,
}

impl ConfigStore {
    /// Clients are built on first use: only remote sources need them.
    pub fn from_conf(sdk: &aws_config::SdkConfig) -> Self {
        ConfigStore {
            ssm: LazyClient::deferred(sdk, aws_sdk_ssm::Client::new),
            s3: LazyClient::deferred(sdk, |c| {
                // Path-style addressing works with any endpoint, emulators included.
                let conf = aws_sdk_s3::config::Builder::from(c)
                    .force_path_style(true)
                    .build();
                aws_sdk_s3::Client::from_conf(conf)
            }),
        }
    }

    /// The document at `source`; `None` when it still has version `known`.
    pub async fn fetch(
        &self,
        source: &ConfigSource,
        known: Option<&str>,
    ) -> Result<Option<Document>, AwsError> {
        match source {
            ConfigSource::Inline(text) => Ok(Some(Document {
                text: text.clone(),
                version: None,
            })),
            ConfigSource::File(path) => std::fs::read_to_string(path)
                .map(|text| {
                    Some(Document {
                        text,
                        version: None,
                    })
                })
                .map_err(|e| {
                    AwsError::unexpected("file", "read", format!("{}: {e}", path.display()))
                }),
            ConfigSource::Ssm(name) => {
                let parameter = crate::aws::ssm::decrypted(&self.ssm, name).await?;
                let version = parameter.version.to_string();
                if known == Some(version.as_str()) {
                    return Ok(None);
                }
                Ok(Some(Document {
                    text: parameter.value,
                    version: Some(version),
                }))
            }
            ConfigSource::S3 { bucket, key } => {
                if known.is_some() {
                    let head = retry::call("S3", "HeadObject", || {
                        self.s3.get().head_object().bucket(bucket).key(key).send()
                    })
                    .await?;
                    if head.e_tag.as_deref() == known {
                        return Ok(None);
                    }
                }
                let object = retry::call("S3", "GetObject", || {
                    self.s3.get().get_object().bucket(bucket).key(key).send()
                })
                .await?;
                let version = object.e_tag.clone();
                let bytes = object.body.collect().await.map_err(|e| {
                    AwsError::unexpected("S3", "GetObject", format!("reading the body: {e}"))
                })?;
                let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
                    AwsError::unexpected("S3", "GetObject", "the object is not UTF-8 text")
                })?;
                Ok(Some(Document { text, version }))
            }
        }
    }

    /// Uploads a document (`greenlight config push`): an SSM parameter (advanced tier
    /// when over 4 KB or already advanced, SecureString if it already is one) or an S3
    /// object.
    pub async fn push(&self, source: &ConfigSource, text: &str) -> Result<String, AwsError> {
        match source {
            ConfigSource::Ssm(name) => {
                use aws_sdk_ssm::types::{ParameterStringFilter, ParameterTier, ParameterType};
                // Type and tier of the parameter as it is: SSM cannot move an advanced
                // parameter back to standard, so a document that shrinks keeps its tier.
                let filter = ParameterStringFilter::builder()
                    .key("Name")
                    .option("Equals")
                    .set_values(Some(parameter_names(name)))
                    .build()
                    .map_err(|e| {
                        AwsError::unexpected("SSM", "DescribeParameters", e.to_string())
                    })?;
                let existing = self
                    .ssm
                    .get()
                    .describe_parameters()
                    .parameter_filters(filter)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("SSM", "DescribeParameters", e))?
                    .parameters
                    .unwrap_or_default()
                    .into_iter()
                    .next();
                let kind = existing
                    .as_ref()
                    .and_then(|p| p.r#type.clone())
                    .unwrap_or(ParameterType::String);
                let advanced = existing.and_then(|p| p.tier) == Some(ParameterTier::Advanced);
                let tier = if advanced || text.len() > 4096 {
                    ParameterTier::Advanced
                } else {
                    ParameterTier::Standard
                };
                let output = self
                    .ssm
                    .get()
                    .put_parameter()
                    .name(name)
                    .value(text)
                    .r#type(kind)
                    .tier(tier)
                    .overwrite(true)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("SSM", "PutParameter", e))?;
                Ok(format!("SSM parameter {name} version {}", output.version))
            }
            ConfigSource::S3 { bucket, key } => {
                let output = self
                    .s3
                    .get()
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .content_type("application/yaml")
                    .body(text.as_bytes().to_vec().into())
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("S3", "PutObject", e))?;
                Ok(format!(
                    "s3://{bucket}/{key} ETag {}",
                    output.e_tag.unwrap_or_default()
                ))
            }
            other => Err(AwsError::unexpected(
                "config",
                "push",
                format!("{other} is not a remote source: push to ssm:NAME or s3://bucket/key"),
            )),
        }
    }
}

/// The names a parameter given by name or ARN may have: an ARN drops a hierarchical
/// name's leading slash (`…:parameter/a/b` is `/a/b`) but not a plain one's (`…:parameter/x` is `x`).
fn parameter_names(name_or_arn: &str) -> Vec<String> {
    match name_or_arn.split_once(":parameter/") {
        Some((prefix, rest)) if prefix.starts_with("arn:") => {
            vec![format!("/{rest}"), rest.to_string()]
        }
        _ => vec![name_or_arn.to_string()],
    }
}

/// Parses a document as the functions do: validated, `GREENLIGHT_TOPIC_ARN` applied.
pub fn parse_document(text: &str, topic_override: Option<&str>) -> Result<Config, ConfigError> {
    let mut config = Config::parse(text)?;
    if let Some(topic) = topic_override.filter(|t| !t.trim().is_empty()) {
        config.notifications.topic_arn = Some(topic.to_string());
    }
    Ok(config)
}

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
/// Bounded by the invocation: it takes at most [`REFRESH_BUDGET`] or a quarter of the
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
pub const REFRESH_BUDGET: Duration = Duration::from_secs(3);

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

impl Config {
    /// Loads from the process environment (what the functions call at init).
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Loads using `lookup` for environment variables (testable without touching the
    /// process env). Local sources only (inline or file); the functions load remote
    /// ones with [`LiveConfig`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let source = ConfigSource::from_lookup(&lookup)?;
        let text = match &source {
            ConfigSource::Inline(text) => text.clone(),
            ConfigSource::File(path) => {
                std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?
            }
            remote => {
                return Err(ConfigError::Fetch(format!(
                    "{remote} is read with AWS credentials: use LiveConfig::load"
                )))
            }
        };
        parse_document(&text, lookup(ENV_TOPIC_ARN).as_deref())
    }

    /// Reads a document from a file (the CLI's `config check`).
    pub fn from_file(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_parameter_arn_names_both_spellings() {
        assert_eq!(
            super::parameter_names("arn:aws:ssm:us-east-1:1:parameter/greenlight/config"),
            ["/greenlight/config", "greenlight/config"]
        );
        assert_eq!(
            super::parameter_names("/greenlight/config"),
            ["/greenlight/config"]
        );
    }

    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn exactly_one_source_is_taken_and_named() {
        assert_eq!(
            ConfigSource::from_lookup(lookup(&[(ENV_CONFIG_SSM, "/greenlight/config")])).unwrap(),
            ConfigSource::Ssm("/greenlight/config".into())
        );
        assert_eq!(
            ConfigSource::from_lookup(lookup(&[(ENV_CONFIG_S3, "s3://cfg/greenlight.yaml")]))
                .unwrap(),
            ConfigSource::S3 {
                bucket: "cfg".into(),
                key: "greenlight.yaml".into()
            }
        );
        let both = ConfigSource::from_lookup(lookup(&[
            (ENV_CONFIG, "services: []"),
            (ENV_CONFIG_S3, "s3://a/b"),
        ]))
        .unwrap_err();
        assert!(
            both.to_string()
                .contains("GREENLIGHT_CONFIG, GREENLIGHT_CONFIG_S3"),
            "{both}"
        );
        let bad =
            ConfigSource::from_lookup(lookup(&[(ENV_CONFIG_S3, "s3://bucket-only")])).unwrap_err();
        assert!(bad.to_string().contains("GREENLIGHT_CONFIG_S3"), "{bad}");
        assert!(ConfigSource::from_lookup(lookup(&[]))
            .unwrap_err()
            .to_string()
            .contains(ENV_CONFIG_SSM));
    }

    #[test]
    fn the_cli_takes_ssm_s3_or_a_path() {
        assert_eq!(
            ConfigSource::from_argument("ssm:/a/b").unwrap(),
            ConfigSource::Ssm("/a/b".into())
        );
        assert!(matches!(
            ConfigSource::from_argument("s3://b/k.yaml").unwrap(),
            ConfigSource::S3 { .. }
        ));
        assert_eq!(
            ConfigSource::from_argument("greenlight.yaml").unwrap(),
            ConfigSource::File("greenlight.yaml".into())
        );
    }
}
