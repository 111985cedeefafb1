//! The Greenlight configuration document.
//!
//! One YAML or JSON document, inline in `GREENLIGHT_CONFIG` or as a path in
//! `GREENLIGHT_CONFIG_FILE` (relative paths resolve against `LAMBDA_TASK_ROOT`).
//! It is loaded once at init and validated fully: every problem is reported with
//! the key path that holds it (`services[1].codedeploy.deployment_group: missing`),
//! not just the first one serde would stop at. That is why the document is read
//! into a `serde_json::Value` and walked by hand instead of derived.
//!
//! | file | what it holds |
//! |---|---|
//! | [`model`] | the loaded document: services, paths, checks, lookups |
//! | `walker` | the walk: key paths, problems, the document's top level |
//! | `service` | one service and its deployment path |
//! | `analysis` | `analysis:` (metrics, thresholds, window) |
//! | `checks` | `smoke:` and its checks, secrets and placeholders |
//! | `promotion` | `promote:` and the checks that span a promotion's two services |
//!
//! Where the document comes from (inline, file, Parameter Store, S3) and how it is
//! refreshed is [`crate::config_source`]'s.

mod analysis;
mod checks;
pub mod model;
mod promotion;
mod service;
mod walker;

use serde_json::Value;

pub use crate::placeholder::{placeholder_names, PLACEHOLDERS};
pub use model::*;

impl Config {
    /// Parses and validates a YAML or JSON document.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let document: Value = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?
        };
        let mut walker = walker::Walker::default();
        let config = walker.config(&document);
        if walker.problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid(walker.problems))
        }
    }
}

#[cfg(test)]
mod tests;
