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

mod live;
mod store;

use crate::config::{Config, ConfigError, ENV_CONFIG, ENV_CONFIG_FILE, ENV_TOPIC_ARN};

pub use live::{refresh_and_report, LiveConfig, Refresh, SharedConfig};
pub use store::{ConfigStore, Document};

pub const ENV_CONFIG_SSM: &str = "GREENLIGHT_CONFIG_SSM";
pub const ENV_CONFIG_S3: &str = "GREENLIGHT_CONFIG_S3";
pub(crate) const ENV_CONFIG_REFRESH: &str = "GREENLIGHT_CONFIG_REFRESH_SECONDS";
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
    pub(crate) fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
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

/// Parses a document as the functions do: validated, `GREENLIGHT_TOPIC_ARN` applied.
pub(crate) fn parse_document(
    text: &str,
    topic_override: Option<&str>,
) -> Result<Config, ConfigError> {
    let mut config = Config::parse(text)?;
    if let Some(topic) = topic_override.filter(|t| !t.trim().is_empty()) {
        config.notifications.topic_arn = Some(topic.to_string());
    }
    Ok(config)
}

impl Config {
    /// Loads from the process environment (what the functions call at init).
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Loads using `lookup` for environment variables (testable without touching the
    /// process env). Local sources only (inline or file); the functions load remote
    /// ones with [`LiveConfig`].
    pub(crate) fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
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
mod tests;
