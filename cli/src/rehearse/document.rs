//! The configuration document each rehearsal stack's functions get: one service
//! `web` (scenarios 1 to 6), or `web-staging` taking pushes and `web-prod` taking
//! what staging proved (scenario 7). Minutes are compressed to seconds.

use std::net::SocketAddr;

use crate::rehearse::engine::DeployPath;
use crate::rehearse::fixture::{
    Fixture, ALARM, ANALYSIS_WINDOW_SECONDS, REPOSITORY, STAGING_ALARM,
};

/// Where one service's listeners answer: (test, production).
pub(crate) type Listeners = (SocketAddr, SocketAddr);

pub(crate) fn document(
    fixture: Fixture,
    path: DeployPath,
    production: Listeners,
    staging: Option<Listeners>,
) -> String {
    let target = |group: &str| match path {
        DeployPath::Codedeploy => {
            format!("codedeploy: {{ application: web-app, deployment_group: {group} }}")
        }
        DeployPath::EcsNative => "ecs_native: {}".to_string(),
    };
    match (fixture, staging) {
        (Fixture::Promotion, Some(staging)) => format!(
            "notifications: {{ notify_idle_alarms: true }}\nservices:\n{}{}",
            service(
                "web-staging",
                "web-staging",
                &target("staging-dg"),
                STAGING_ALARM,
                staging,
                ""
            ),
            service(
                "web-prod",
                "web",
                &target("web-dg"),
                ALARM,
                production,
                // One compressed minute: the rehearsal fires the schedule itself.
                "\n    promote: { from: web-staging, soak_minutes: 1, approval: auto }"
            ),
        ),
        _ => format!(
            "notifications: {{ notify_idle_alarms: true }}\nservices:\n{}",
            service("web", "web", &target("web-dg"), ALARM, production, "")
        ),
    }
}

fn service(
    name: &str,
    ecs_service: &str,
    target: &str,
    alarm: &str,
    (test, production): Listeners,
    extra: &str,
) -> String {
    format!(
        r#"  - name: {name}
    repository: {REPOSITORY}
    tags: ["v*"]
    cluster: prod
    service: {ecs_service}
    container: web
    {target}
    alarms: [{alarm}]
    on_busy: queue{extra}
    smoke:
      base_url: http://{test}
      production_url: http://{production}
      deadline_seconds: 20
      checks:
        - {{ name: health, path: /health, expect_status: 200, body_contains: ok, attempts: 2, backoff_ms: 200, timeout_ms: 2000 }}
        - {{ name: version, path: /version, json_equals: {{ /version: "${{image_tag}}" }}, attempts: 2, backoff_ms: 200, timeout_ms: 2000 }}
    # Minutes are compressed to seconds here; a real service would say window_minutes: 5,
    # interval_seconds: 60 and keep the default settle_seconds: 120.
    analysis:
      window_seconds: {ANALYSIS_WINDOW_SECONDS}
      interval_seconds: 1
      settle_seconds: 1
      min_requests: 2
      # No failed interval tolerated: with a handful of canary requests per one-second
      # interval, the first one may also hold the fast smoke requests from just before.
      failure_limit: 0
      metrics:
        - {{ metric: latency_p50, max_ratio_to_blue: 4 }}
"#
    )
}
