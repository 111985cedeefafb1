//! A service's `smoke:` and its checks: URLs, expectations, secrets and
//! placeholders.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde_json::{Map, Value};

use super::model::{CheckSpec, SmokeConfig, StatusExpectation, DEFAULT_CHECK_EVENTS};
use super::walker::{join, kind, Walker};
use crate::placeholder::{is_secret_reference, placeholder_names, PLACEHOLDERS};

impl Walker {
    pub(super) fn smoke(&mut self, value: &Value, path: &str) -> SmokeConfig {
        let mut smoke = SmokeConfig::default();
        let Some(map) = self.mapping(
            value,
            path,
            &[
                "base_url",
                "production_url",
                "warmup_seconds",
                "deadline_seconds",
                "concurrency",
                "checks",
            ],
        ) else {
            return smoke;
        };
        smoke.base_url = self.url(map, path, "base_url");
        smoke.production_url = self.url(map, path, "production_url");
        smoke.warmup = Duration::from_secs(self.number(map, path, "warmup_seconds", 0..=600, 0));
        smoke.deadline =
            Duration::from_secs(self.number(map, path, "deadline_seconds", 1..=3300, 300));
        smoke.concurrency = self.number(map, path, "concurrency", 1..=256, 4) as usize;
        match map.get("checks").filter(|v| !v.is_null()) {
            None => {}
            Some(Value::Array(items)) => {
                let mut names = HashSet::new();
                for (i, item) in items.iter().enumerate() {
                    let check_path = format!("{path}.checks[{i}]");
                    if let Some(check) = self.check(item, &check_path) {
                        if !names.insert(check.name.clone()) {
                            self.problem(
                                join(&check_path, "name"),
                                format!("duplicate check name {:?}", check.name),
                            );
                        }
                        smoke.checks.push(check);
                    }
                }
            }
            Some(other) => self.problem(
                join(path, "checks"),
                format!("expected a list, got {}", kind(other)),
            ),
        }
        smoke
    }

    pub(super) fn url(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<String> {
        let url = self.optional_str(map, path, key)?;
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        match rest {
            Some(host) if !host.is_empty() && !host.starts_with('/') => {
                Some(url.trim_end_matches('/').to_string())
            }
            _ => {
                self.problem(
                    join(path, key),
                    format!("{url:?} is not an http:// or https:// URL with a host"),
                );
                None
            }
        }
    }

    pub(super) fn check(&mut self, value: &Value, path: &str) -> Option<CheckSpec> {
        let map = self.mapping(
            value,
            path,
            &[
                "name",
                "method",
                "path",
                "headers",
                "body",
                "expect_status",
                "body_contains",
                "json_equals",
                "header_present",
                "header_equals",
                "max_latency_ms",
                "timeout_ms",
                "attempts",
                "backoff_ms",
                "events",
            ],
        )?;
        let name = self.required_str(map, path, "name");
        let method = self
            .optional_str(map, path, "method")
            .unwrap_or_else(|| "GET".into())
            .to_ascii_uppercase();
        if !["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].contains(&method.as_str())
        {
            self.problem(
                join(path, "method"),
                format!("{method:?} is not an HTTP method Greenlight sends"),
            );
        }
        let url_path = self.required_str(map, path, "path");
        if !url_path.is_empty() && !url_path.starts_with('/') {
            self.problem(
                join(path, "path"),
                format!("{url_path:?} must start with '/'"),
            );
        }
        let expect_status = match map.get("expect_status") {
            None | Some(Value::Null) => StatusExpectation::Class(2),
            Some(value) => match parse_status(value) {
                Some(status) => status,
                None => {
                    self.problem(
                        join(path, "expect_status"),
                        format!("{value} is not a status code (100-599) or class (1xx-5xx)"),
                    );
                    StatusExpectation::Class(2)
                }
            },
        };
        let json_equals: BTreeMap<String, Value> =
            match map.get("json_equals").filter(|v| !v.is_null()) {
                None => BTreeMap::new(),
                Some(Value::Object(entries)) => {
                    for pointer in entries.keys() {
                        if !pointer.is_empty() && !pointer.starts_with('/') {
                            self.problem(
                                join(&join(path, "json_equals"), pointer),
                                "a JSON pointer must be empty or start with '/' (e.g. /version)",
                            );
                        }
                    }
                    entries
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                }
                Some(other) => {
                    self.problem(
                        join(path, "json_equals"),
                        format!(
                            "expected a mapping of JSON pointer to value, got {}",
                            kind(other)
                        ),
                    );
                    BTreeMap::new()
                }
            };
        let check = CheckSpec {
            name,
            method,
            path: url_path,
            headers: self.string_map(map, path, "headers"),
            body: self.optional_str(map, path, "body"),
            expect_status,
            body_contains: self.optional_str(map, path, "body_contains"),
            json_equals,
            header_present: self
                .string_list(map, path, "header_present")
                .unwrap_or_default(),
            header_equals: self.string_map(map, path, "header_equals"),
            max_latency: map.get("max_latency_ms").filter(|v| !v.is_null()).map(|_| {
                Duration::from_millis(self.number(map, path, "max_latency_ms", 1..=600_000, 1000))
            }),
            timeout: Duration::from_millis(self.number(map, path, "timeout_ms", 1..=600_000, 5000)),
            attempts: self.number(map, path, "attempts", 1..=100, 3) as u32,
            backoff: Duration::from_millis(self.number(map, path, "backoff_ms", 0..=600_000, 1000)),
            events: self.events(map, path, "events", &DEFAULT_CHECK_EVENTS),
        };
        self.placeholders(&check, path);
        Some(check)
    }

    /// Unknown `${name}` placeholders would never match: report them now, not at deploy
    /// time. Secret references (`${secret:NAME}`, `${secret:NAME#key}`, `${ssm:NAME}`)
    /// belong in headers and the body only: anywhere else they could reach a URL, an
    /// expectation or a report.
    pub(super) fn placeholders(&mut self, check: &CheckSpec, path: &str) {
        // (key path, text, may hold secrets)
        let mut texts: Vec<(String, String, bool)> =
            vec![(join(path, "path"), check.path.clone(), false)];
        if let Some(body) = &check.body {
            texts.push((join(path, "body"), body.clone(), true));
        }
        if let Some(contains) = &check.body_contains {
            texts.push((join(path, "body_contains"), contains.clone(), false));
        }
        for (k, v) in &check.headers {
            texts.push((format!("{path}.headers.{k}"), v.clone(), true));
        }
        for (k, v) in &check.header_equals {
            texts.push((format!("{path}.header_equals.{k}"), v.clone(), false));
        }
        for (k, v) in &check.json_equals {
            if let Some(text) = v.as_str() {
                texts.push((join(&join(path, "json_equals"), k), text.to_string(), false));
            }
        }
        for (p, text, secrets_allowed) in texts {
            for name in placeholder_names(&text) {
                if is_secret_reference(&name) {
                    if !secrets_allowed {
                        self.problem(
                            p.clone(),
                            format!("${{{name}}}: secrets may be used in headers and body only (never in paths or expectations, which reach reports)"),
                        );
                    } else if let Some(why) = secret_reference_problem(&name) {
                        self.problem(p.clone(), format!("${{{name}}}: {why}"));
                    }
                } else if !PLACEHOLDERS.contains(&name.as_str()) {
                    self.problem(
                        p.clone(),
                        format!(
                            "unknown placeholder ${{{name}}} (known: {}, and ${{secret:NAME}}, ${{secret:NAME#json-key}}, ${{ssm:NAME}} in headers and body)",
                            PLACEHOLDERS.map(|p| format!("${{{p}}}")).join(", ")
                        ),
                    );
                }
            }
        }
    }
}

/// What is wrong with a secret reference, if anything.
fn secret_reference_problem(reference: &str) -> Option<&'static str> {
    if let Some(rest) = reference.strip_prefix("secret:") {
        let (name, key) = match rest.split_once('#') {
            Some((name, key)) => (name, Some(key)),
            None => (rest, None),
        };
        if name.trim().is_empty() {
            return Some("names no secret (secret:NAME or secret:NAME#json-key)");
        }
        if key.is_some_and(|k| k.trim().is_empty()) {
            return Some("names no JSON key after #");
        }
        return None;
    }
    match reference.strip_prefix("ssm:") {
        Some(name) if !name.trim().is_empty() => None,
        _ => Some("names no parameter (ssm:NAME)"),
    }
}

pub(super) fn parse_status(value: &Value) -> Option<StatusExpectation> {
    if let Some(code) = value.as_u64() {
        return (100..=599)
            .contains(&code)
            .then_some(StatusExpectation::Exact(code as u16));
    }
    let text = value.as_str()?.trim().to_ascii_lowercase();
    if let Some(class) = text.strip_suffix("xx") {
        let class: u16 = class.parse().ok()?;
        return (1..=5)
            .contains(&class)
            .then_some(StatusExpectation::Class(class));
    }
    let code: u16 = text.parse().ok()?;
    (100..=599)
        .contains(&code)
        .then_some(StatusExpectation::Exact(code))
}
