//! The walk over a document: each value read at its key path, every problem kept
//! (not just the first one serde would stop at), and the document's top level.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value};

use super::model::{Config, ConfigProblem, Notifications};
use crate::lifecycle::LifecycleEvent;

/// Walks a document, collecting every problem with its key path.
#[derive(Default)]
pub(super) struct Walker {
    pub(super) problems: Vec<ConfigProblem>,
}

impl Walker {
    pub(super) fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            path: path.into(),
            message: message.into(),
        });
    }

    /// The value as a mapping with only `allowed` keys; reports unknown keys.
    pub(super) fn mapping<'a>(
        &mut self,
        value: &'a Value,
        path: &str,
        allowed: &[&str],
    ) -> Option<&'a Map<String, Value>> {
        let Some(map) = value.as_object() else {
            self.problem(path, format!("expected a mapping, got {}", kind(value)));
            return None;
        };
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                self.problem(
                    join(path, key),
                    format!("unknown key (allowed here: {})", allowed.join(", ")),
                );
            }
        }
        Some(map)
    }

    pub(super) fn required_str(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
    ) -> String {
        match map.get(key) {
            None | Some(Value::Null) => {
                self.problem(join(path, key), "missing");
                String::new()
            }
            Some(value) => self.string(value, &join(path, key)).unwrap_or_default(),
        }
    }

    pub(super) fn optional_str(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<String> {
        match map.get(key) {
            None | Some(Value::Null) => None,
            Some(value) => self.string(value, &join(path, key)),
        }
    }

    pub(super) fn string(&mut self, value: &Value, path: &str) -> Option<String> {
        match value {
            Value::String(s) if s.trim().is_empty() => {
                self.problem(path, "must not be empty");
                None
            }
            Value::String(s) => Some(s.clone()),
            // YAML turns `v: 1` into a number; accept scalars where a string is meant.
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            other => {
                self.problem(path, format!("expected a string, got {}", kind(other)));
                None
            }
        }
    }

    pub(super) fn string_list(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<Vec<String>> {
        let value = map.get(key).filter(|v| !v.is_null())?;
        let path = join(path, key);
        let Some(items) = value.as_array() else {
            self.problem(&path, format!("expected a list, got {}", kind(value)));
            return None;
        };
        Some(
            items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| self.string(item, &format!("{path}[{i}]")))
                .collect(),
        )
    }

    pub(super) fn string_map(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
    ) -> BTreeMap<String, String> {
        let Some(value) = map.get(key).filter(|v| !v.is_null()) else {
            return BTreeMap::new();
        };
        let path = join(path, key);
        let Some(entries) = value.as_object() else {
            self.problem(&path, format!("expected a mapping, got {}", kind(value)));
            return BTreeMap::new();
        };
        entries
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), self.string(v, &join(&path, k))?)))
            .collect()
    }

    pub(super) fn bool(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
        default: bool,
    ) -> bool {
        match map.get(key) {
            None | Some(Value::Null) => default,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.problem(
                    join(path, key),
                    format!("expected true or false, got {}", kind(other)),
                );
                default
            }
        }
    }

    /// A whole number in `range`, or `default` when absent.
    pub(super) fn number(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
        range: std::ops::RangeInclusive<u64>,
        default: u64,
    ) -> u64 {
        match map.get(key) {
            None | Some(Value::Null) => default,
            Some(value) => match value.as_u64() {
                Some(n) if range.contains(&n) => n,
                _ => {
                    self.problem(
                        join(path, key),
                        format!(
                            "expected a whole number from {} to {}, got {}",
                            range.start(),
                            range.end(),
                            value
                        ),
                    );
                    default
                }
            },
        }
    }

    pub(super) fn events(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
        default: &[LifecycleEvent],
    ) -> Vec<LifecycleEvent> {
        let Some(names) = self.string_list(map, path, key) else {
            return default.to_vec();
        };
        let mut events = Vec::new();
        for (i, name) in names.iter().enumerate() {
            match name.parse::<LifecycleEvent>() {
                Ok(event) if !events.contains(&event) => events.push(event),
                Ok(_) => self.problem(
                    format!("{}[{i}]", join(path, key)),
                    format!("{name} is listed twice"),
                ),
                Err(e) => self.problem(format!("{}[{i}]", join(path, key)), e.to_string()),
            }
        }
        events
    }

    pub(super) fn config(&mut self, document: &Value) -> Config {
        let mut config = Config {
            notifications: Notifications::default(),
            services: Vec::new(),
            redact: Vec::new(),
        };
        let Some(root) = self.mapping(document, "", &["notifications", "services", "redact"])
        else {
            return config;
        };
        for (i, pattern) in self
            .string_list(root, "", "redact")
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            // The same engine that masks with it (`evidence::redact`).
            match regex_lite::Regex::new(&pattern) {
                Ok(_) => config.redact.push(pattern),
                Err(e) => self.problem(
                    format!("redact[{i}]"),
                    format!("{pattern:?} is not a regular expression: {e}"),
                ),
            }
        }
        if let Some(value) = root.get("notifications").filter(|v| !v.is_null()) {
            if let Some(map) =
                self.mapping(value, "notifications", &["topic_arn", "notify_idle_alarms"])
            {
                config.notifications.topic_arn =
                    self.optional_str(map, "notifications", "topic_arn");
                if let Some(arn) = &config.notifications.topic_arn {
                    if !arn.starts_with("arn:") || arn.split(':').count() != 6 {
                        self.problem(
                            "notifications.topic_arn",
                            format!(
                                "{arn:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"
                            ),
                        );
                    }
                }
                config.notifications.notify_idle_alarms =
                    self.bool(map, "notifications", "notify_idle_alarms", false);
            }
        }
        match root.get("services") {
            None | Some(Value::Null) => self.problem("services", "missing"),
            Some(Value::Array(items)) if items.is_empty() => {
                self.problem("services", "must list at least one service")
            }
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(service) = self.service(item, &format!("services[{i}]")) {
                        config.services.push(service);
                    }
                }
            }
            Some(other) => {
                self.problem("services", format!("expected a list, got {}", kind(other)))
            }
        }
        self.cross_checks(root, &config);
        self.promotion_checks(&config);
        config
    }

    /// Problems that span services: duplicate names and shared deployment groups.
    pub(super) fn cross_checks(&mut self, root: &Map<String, Value>, config: &Config) {
        let Some(Value::Array(items)) = root.get("services") else {
            return;
        };
        let mut names = HashSet::new();
        let mut groups = HashSet::new();
        for (i, item) in items.iter().enumerate() {
            if let Some(name) = item.get("name").and_then(Value::as_str) {
                if !names.insert(name) {
                    self.problem(
                        format!("services[{i}].name"),
                        format!("duplicate service name {name:?}: names must be unique"),
                    );
                }
            }
        }
        let mut ecs_services = HashSet::new();
        for (i, service) in config.services.iter().enumerate() {
            if service.ecs_native().is_some() {
                let name = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
                if !ecs_services.insert((name(&service.cluster), name(&service.service))) {
                    self.problem(
                        format!("services[{i}].service"),
                        format!(
                            "{}/{} is already used by another ecs_native service: an ECS service belongs to one Greenlight service",
                            service.cluster, service.service
                        ),
                    );
                }
            }
            if let Some(cd) = service.codedeploy() {
                if !groups.insert((cd.application.clone(), cd.deployment_group.clone())) {
                    self.problem(
                        format!("services[{i}].codedeploy.deployment_group"),
                        format!(
                            "{}/{} is already used by another service: a deployment group belongs to one service",
                            cd.application, cd.deployment_group
                        ),
                    );
                }
            }
        }
    }
}

pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub(super) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}
