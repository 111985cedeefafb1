use std::time::Duration;

use serde_json::Value;

use super::expect::{excerpt, json_matches};
use super::report::EXCERPT_BYTES;
use super::*;
use crate::config::Config;

fn check(yaml_fields: &str) -> CheckSpec {
    let doc = format!(
        "services:\n  - {{ name: s, repository: r, cluster: c, service: s, container: x,\n      codedeploy: {{ application: a, deployment_group: g }},\n      smoke: {{ checks: [ {{ name: c, path: /, {yaml_fields} }} ] }} }}\n"
    );
    Config::parse(&doc).unwrap().services[0].smoke.checks[0].clone()
}

fn headers(pairs: &[(&'static str, &'static str)]) -> reqwest::header::HeaderMap {
    let mut map = reqwest::header::HeaderMap::new();
    for (k, v) in pairs {
        map.insert(*k, v.parse().unwrap());
    }
    map
}

#[test]
fn placeholders_fill_expectations() {
    let c = check(
        r#"json_equals: { "/version": "${image_tag}" }, header_equals: { x-digest: "${image_digest}" }"#,
    );
    let vars = Placeholders {
        image_tag: Some("v2".into()),
        image_digest: Some("sha256:ab".into()),
        deployment_id: None,
        ..Default::default()
    };
    let ok = expectations(
        &c,
        &vars,
        200,
        &headers(&[("x-digest", "sha256:ab")]),
        r#"{"version":"v2"}"#,
        Duration::ZERO,
    );
    assert!(ok.is_empty(), "{ok:?}");
    let bad = expectations(
        &c,
        &vars,
        200,
        &headers(&[]),
        r#"{"version":"v1"}"#,
        Duration::ZERO,
    );
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert_eq!(bad[0].expected, "\"v2\"");
    assert_eq!(bad[0].got, "\"v1\"");
    assert_eq!(bad[1].got, "absent");
}

#[test]
fn status_class_latency_and_headers() {
    let c = check("expect_status: 2xx, max_latency_ms: 50, header_present: [etag]");
    let vars = Placeholders::default();
    let got = expectations(&c, &vars, 503, &headers(&[]), "", Duration::from_millis(80));
    let names: Vec<_> = got.iter().map(|m| m.expectation.as_str()).collect();
    assert_eq!(names, ["status", "header etag", "latency"]);
    assert_eq!(got[0].expected, "2xx");
}

#[test]
fn body_mismatch_shows_where_the_body_differs() {
    let c = check("body_contains: \"version=2\"");
    let body = format!("{}version=1 and more", "x".repeat(400));
    let got = expectations(
        &c,
        &Placeholders::default(),
        200,
        &headers(&[]),
        &body,
        Duration::ZERO,
    );
    assert!(got[0].got.starts_with("\"version=1"), "{:?}", got[0].got);
}

#[test]
fn json_numbers_match_their_text() {
    assert!(json_matches(Some(&Value::from(2)), &Value::from("2")));
    assert!(!json_matches(Some(&Value::from(3)), &Value::from("2")));
    assert!(!json_matches(None, &Value::from("2")));
}

#[test]
fn excerpt_respects_char_boundaries() {
    let body = "é".repeat(300);
    let e = excerpt(&body, 1);
    assert!(e.len() <= EXCERPT_BYTES && e.starts_with('é'));
}
