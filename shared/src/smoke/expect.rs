//! A check's expectations held against an answer: status, body, JSON and headers,
//! each mismatch with an excerpt of what came back.

use std::time::Duration;

use serde_json::Value;

use super::placeholders::Placeholders;
use super::report::{Mismatch, EXCERPT_BYTES};
use crate::config::CheckSpec;

/// Every expectation of `check` against one response.
pub fn expectations(
    check: &CheckSpec,
    placeholders: &Placeholders,
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &str,
    latency: Duration,
) -> Vec<Mismatch> {
    let mut mismatches = Vec::new();
    if !check.expect_status.matches(status) {
        mismatches.push(Mismatch {
            expectation: "status".into(),
            expected: check.expect_status.to_string(),
            got: status.to_string(),
        });
    }
    if let Some(needle) = &check.body_contains {
        let needle = placeholders.apply(needle);
        if !body.contains(&needle) {
            mismatches.push(Mismatch {
                expectation: "body contains".into(),
                expected: format!("{needle:?}"),
                got: format!("{:?}", excerpt(body, first_difference(body, &needle))),
            });
        }
    }
    if !check.json_equals.is_empty() {
        match serde_json::from_str::<Value>(body) {
            Err(e) => mismatches.push(Mismatch {
                expectation: "body is JSON".into(),
                expected: "a JSON document".into(),
                got: format!("{e}: {:?}", excerpt(body, 0)),
            }),
            Ok(json) => {
                for (pointer, expected) in &check.json_equals {
                    let expected = placeholders.apply_json(expected);
                    let got = json.pointer(pointer);
                    if !json_matches(got, &expected) {
                        mismatches.push(Mismatch {
                            expectation: format!("json {pointer}"),
                            expected: expected.to_string(),
                            got: got.map_or("nothing at that pointer".into(), Value::to_string),
                        });
                    }
                }
            }
        }
    }
    for name in &check.header_present {
        if !headers.contains_key(name.as_str()) {
            mismatches.push(Mismatch {
                expectation: format!("header {name}"),
                expected: "present".into(),
                got: "absent".into(),
            });
        }
    }
    for (name, expected) in &check.header_equals {
        let expected = placeholders.apply(expected);
        let got = headers
            .get(name.as_str())
            .map(|v| String::from_utf8_lossy(v.as_bytes()).to_string());
        if got.as_deref() != Some(expected.as_str()) {
            mismatches.push(Mismatch {
                expectation: format!("header {name}"),
                expected: format!("{expected:?}"),
                got: got.map_or("absent".into(), |g| format!("{g:?}")),
            });
        }
    }
    if let Some(max) = check.max_latency {
        if latency > max {
            mismatches.push(Mismatch {
                expectation: "latency".into(),
                expected: format!("<= {} ms", max.as_millis()),
                got: format!("{} ms", latency.as_millis()),
            });
        }
    }
    mismatches
}

/// JSON equality, where a configured string also matches a number or bool with that text
/// (YAML users write `version: "2"` and `version: 2` interchangeably).
pub(super) fn json_matches(got: Option<&Value>, expected: &Value) -> bool {
    match (got, expected) {
        (None, _) => false,
        (Some(got), expected) if got == expected => true,
        (Some(Value::Number(n)), Value::String(s)) => n.to_string() == *s,
        (Some(Value::Bool(b)), Value::String(s)) => b.to_string() == *s,
        _ => false,
    }
}

/// Index in `body` from which it stops agreeing with the start of `needle`'s best partial
/// match; a hint for where to look, used to centre the excerpt.
pub(super) fn first_difference(body: &str, needle: &str) -> usize {
    let first = needle.chars().next();
    let Some(first) = first else { return 0 };
    body.char_indices()
        .filter(|(_, c)| *c == first)
        .map(|(i, _)| {
            let common = body[i..]
                .chars()
                .zip(needle.chars())
                .take_while(|(a, b)| a == b)
                .count();
            (common, i)
        })
        .max_by_key(|(common, _)| *common)
        .map_or(0, |(_, i)| i)
}

pub(super) fn excerpt(body: &str, from: usize) -> String {
    let mut start = from.min(body.len());
    while !body.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (start + EXCERPT_BYTES).min(body.len());
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    body[start..end].to_string()
}
