use std::time::Duration;

use super::checks::parse_status;
use super::*;
use crate::lifecycle::LifecycleEvent;

const EXAMPLE: &str = r#"
notifications: { topic_arn: arn:aws:sns:us-east-1:123456789012:greenlight }
services:
  - name: web
    repository: web-app
    tags: ["v*", "release-*"]
    cluster: prod
    service: web
    container: web
    codedeploy:
      application: web-app
      deployment_group: web-dg
      deployment_config: CodeDeployDefault.ECSCanary10Percent5Minutes
    alarms: [web-5xx, web-errors]
    smoke:
      base_url: http://internal-alb.example:8080
      checks:
        - { name: health, path: /health, expect_status: 200, body_contains: ok }
"#;

fn problems(text: &str) -> Vec<String> {
    match Config::parse(text) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems().iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn the_documented_example_loads_with_its_values() {
    let config = Config::parse(EXAMPLE).expect("example is valid");
    assert_eq!(
        config.notifications.topic_arn.as_deref(),
        Some("arn:aws:sns:us-east-1:123456789012:greenlight")
    );
    let web = &config.services[0];
    assert_eq!(web.name, "web");
    assert!(web.tags.matches("v1.2.3") && web.tags.matches("release-7"));
    assert!(!web.tags.matches("latest") && !web.tags.matches("dev-1"));
    let cd = web.codedeploy().expect("codedeploy target");
    assert_eq!(cd.deployment_group, "web-dg");
    assert_eq!(cd.hooks, DEFAULT_HOOKS.to_vec());
    assert_eq!(web.on_busy, OnBusy::Queue);
    assert_eq!(web.alarms, vec!["web-5xx", "web-errors"]);
    let health = &web.smoke.checks[0];
    assert_eq!(health.expect_status, StatusExpectation::Exact(200));
    assert_eq!(health.body_contains.as_deref(), Some("ok"));
    assert_eq!(health.method, "GET");
    assert_eq!(health.attempts, 3);
    assert!(config.service_for_group("web-app", "web-dg").is_some());
    assert!(config.service_for_group("web-app", "other").is_none());
}

#[test]
fn json_documents_load_too() {
    let json = r#"{"services":[{"name":"a","repository":"r","cluster":"c","service":"s","container":"x",
            "pipeline":{"name":"p","image_variable":"IMAGE_URI"}}]}"#;
    let config = Config::parse(json).expect("valid JSON config");
    assert!(matches!(&config.services[0].target, DeployTarget::Pipeline(p) if p.name == "p"));
    assert!(config.services[0].tags.matches("v1") && !config.services[0].tags.matches("latest"));
}

#[test]
fn every_problem_is_reported_with_its_key_path() {
    let text = r#"
services:
  - name: web
    repository: web-app
    tags: ["v[1"]
    cluster: prod
    service: web
    container: web
    codedeploy: { application: web-app, deployment_grup: web-dg }
  - name: web
    repository: api
    cluster: prod
    service: api
    container: api
    codedeploy: { application: api }
    on_busy: later
    smoke:
      checks:
        - { name: h, path: health, expect_status: 700, json_equals: { "/v": "${image_sha}" } }
"#;
    let got = problems(text);
    let expect = [
        "services[0].tags[0]: bad glob pattern",
        "services[0].codedeploy.deployment_grup: unknown key",
        "services[0].codedeploy.deployment_group: missing",
        "services[1].codedeploy.deployment_group: missing",
        "services[1].on_busy: \"later\" is not one of",
        "services[1].smoke.checks[0].path: \"health\" must start with '/'",
        "services[1].smoke.checks[0].expect_status: 700 is not a status code",
        "services[1].smoke.checks[0].json_equals./v: unknown placeholder ${image_sha}",
        "services[1].name: duplicate service name \"web\"",
    ];
    for e in expect {
        assert!(
            got.iter().any(|p| p.starts_with(e)),
            "missing problem {e:?} in {got:#?}"
        );
    }
    assert_eq!(
        got.len(),
        expect.len(),
        "unexpected extra problems: {got:#?}"
    );
}

#[test]
fn unknown_top_level_keys_and_missing_services_are_named() {
    let got = problems("notification: {}\n");
    assert!(
        got.iter()
            .any(|p| p.starts_with("notification: unknown key")),
        "{got:?}"
    );
    assert!(got.iter().any(|p| p == "services: missing"), "{got:?}");
}

#[test]
fn a_service_needs_exactly_one_target() {
    let both = r#"{"services":[{"name":"a","repository":"r","cluster":"c","service":"s","container":"x",
            "pipeline":{"name":"p"},"codedeploy":{"application":"a","deployment_group":"g"}}]}"#;
    assert!(problems(both).iter().any(|p| p.contains(
        "set exactly one of codedeploy, pipeline, ecs_native (found codedeploy and pipeline)"
    )));
    let neither = r#"{"services":[{"name":"a","repository":"r","cluster":"c","service":"s","container":"x"}]}"#;
    assert!(problems(neither)
        .iter()
        .any(|p| p.starts_with("services[0].codedeploy: missing")));
}

#[test]
fn an_ecs_native_service_takes_ecs_or_codedeploy_stage_names() {
    let text = r#"
services:
  - { name: web, repository: web-app, cluster: prod, service: web, container: web,
      ecs_native: { stages: [POST_TEST_TRAFFIC_SHIFT, BeforeAllowTraffic, PRODUCTION_TRAFFIC_SHIFT] } }
  - { name: api, repository: api, cluster: arn:aws:ecs:us-east-1:123456789012:cluster/prod, service: api, container: api,
      ecs_native: {} }
"#;
    let config = Config::parse(text).unwrap();
    let web = config.service_by_name("web").unwrap();
    assert_eq!(web.path(), DeploymentPath::EcsNative);
    assert_eq!(
        web.ecs_native().unwrap().stages,
        [
            LifecycleEvent::AfterAllowTestTraffic,
            LifecycleEvent::BeforeAllowTraffic,
            LifecycleEvent::ProductionTrafficShift
        ]
    );
    assert_eq!(
        config
            .service_by_name("api")
            .unwrap()
            .ecs_native()
            .unwrap()
            .stages,
        DEFAULT_ECS_STAGES
    );
    // Services are found by their own identity, whether names or ARNs are given.
    let found = config
        .service_for_ecs_arn("arn:aws:ecs:us-east-1:123456789012:service/prod/api")
        .map(|s| s.name.as_str());
    assert_eq!(found, Some("api"));
    assert!(config
        .service_for_ecs_arn("arn:aws:ecs:us-east-1:123456789012:service/other/web")
        .is_none());

    let bad = r#"{"services":[{"name":"a","repository":"r","cluster":"c","service":"s","container":"x",
            "ecs_native":{"stages":["SCALE_UP"]}},
            {"name":"b","repository":"r","cluster":"c","service":"t","container":"x",
            "codedeploy":{"application":"a","deployment_group":"g","hooks":["TEST_TRAFFIC_SHIFT"]}}]}"#;
    let got = problems(bad);
    assert!(
        got.iter().any(|p| p.starts_with(
            "services[0].ecs_native.stages[0]: \"SCALE_UP\" is not a lifecycle event with a hook"
        )),
        "{got:?}"
    );
    assert!(
        got.iter().any(|p| p.starts_with(
            "services[1].codedeploy.hooks[0]: TEST_TRAFFIC_SHIFT is an ECS-native stage"
        )),
        "{got:?}"
    );
}

#[test]
fn analysis_loads_as_documented_and_every_mistake_is_named() {
    let text = r#"
services:
  - name: web
    repository: web-app
    cluster: prod
    service: web
    container: web
    ecs_native: {}
    analysis:
      window_minutes: 5
      interval_seconds: 60
      min_requests: 100
      failure_limit: 0
      on_inconclusive: fail
      dry_run: false
      metrics:
        - { metric: error_rate, max: 1, max_over_blue: 0.5 }
        - { metric: latency_p99, max: 800, max_ratio_to_blue: 1.5 }
        - name: checkout-errors
          cloudwatch: { namespace: Shop, metric_name: CheckoutErrors, dimensions: { Service: web }, stat: Sum }
          max: 5
"#;
    let config = Config::parse(text).unwrap();
    let analysis = config.services[0].analysis.clone().unwrap();
    assert_eq!(analysis.window, Duration::from_secs(300));
    assert_eq!(analysis.metrics.len(), 3);
    assert_eq!(analysis.metrics[1].name, "latency_p99");
    assert_eq!(analysis.metrics[2].name, "checkout-errors");
    assert_eq!(analysis.settle, Duration::from_secs(120));

    let bad = r#"{"services":[{"name":"a","repository":"r","cluster":"c","service":"s","container":"x","ecs_native":{},
            "analysis":{"interval_seconds":90,"on_inconclusive":"maybe","metrics":[
              {"metric":"error_rate","max_ratio_to_blue":2},
              {"metric":"latency_p42","max":1},
              {"cloudwatch":{"namespace":"N","metric_name":"M"},"max":1},
              {"metric":"latency_p99"}]}}]}"#;
    let got = problems(bad);
    for expected in [
        "services[0].analysis.interval_seconds: 90 is not a CloudWatch period",
        "services[0].analysis.on_inconclusive: \"maybe\" is not fail or pass",
        "services[0].analysis.metrics[0].max_ratio_to_blue: applies to latency",
        "services[0].analysis.metrics[1].metric: \"latency_p42\" is not one of",
        "services[0].analysis.metrics[2].name: missing",
        "services[0].analysis.metrics[3]: no limit",
    ] {
        assert!(
            got.iter().any(|p| p.starts_with(expected)),
            "{expected}\n{got:#?}"
        );
    }

    // Sub-minute periods exist for high-resolution metrics (and the rehearsal).
    let fast = r#"{"services":[{"name":"a","repository":"r","cluster":"c","service":"s","container":"x","ecs_native":{},
            "analysis":{"window_seconds":6,"interval_seconds":1,"settle_seconds":1,"metrics":[{"metric":"error_rate","max":1}]}}]}"#;
    let config = Config::parse(fast).unwrap();
    let analysis = config.services[0].analysis.clone().unwrap();
    assert_eq!(analysis.window, Duration::from_secs(6));
    assert_eq!(analysis.interval, Duration::from_secs(1));
    let both = fast.replace(
        r#""window_seconds":6"#,
        r#""window_seconds":6,"window_minutes":1"#,
    );
    assert!(problems(&both).iter().any(|p| p.starts_with(
        "services[0].analysis.window_seconds: set window_minutes or window_seconds, not both"
    )));
    let odd = fast.replace(r#""interval_seconds":1"#, r#""interval_seconds":7"#);
    assert!(problems(&odd)
        .iter()
        .any(|p| p
            .starts_with("services[0].analysis.interval_seconds: 7 is not a CloudWatch period")));
}

#[test]
fn secrets_are_allowed_in_headers_and_body_only() {
    let text = r#"{"services":[{"name":"a","repository":"r","cluster":"c","service":"s","container":"x","ecs_native":{},
            "smoke":{"checks":[
              {"name":"ok","path":"/","headers":{"Authorization":"Bearer ${secret:web/token#token}","X-Key":"${ssm:/web/key}"},"body":"${secret:web/body}"},
              {"name":"leaky","path":"/${secret:web/token}","body_contains":"${ssm:/web/key}","headers":{"X":"${secret:#k}","Y":"${ssm:}"}}]}}]}"#;
    let got = problems(text);
    for expected in [
            "services[0].smoke.checks[1].path: ${secret:web/token}: secrets may be used in headers and body only",
            "services[0].smoke.checks[1].body_contains: ${ssm:/web/key}: secrets may be used in headers and body only",
            "services[0].smoke.checks[1].headers.X: ${secret:#k}: names no secret",
            "services[0].smoke.checks[1].headers.Y: ${ssm:}: names no parameter",
        ] {
            assert!(got.iter().any(|p| p.starts_with(expected)), "{expected}\n{got:#?}");
        }
    assert!(
        !got.iter().any(|p| p.contains("checks[0]")),
        "the first check is valid: {got:#?}"
    );
}

#[test]
fn a_pipeline_service_cannot_name_alarms_it_could_not_act_on() {
    let text = r#"{"services":[{"name":"a","repository":"r","cluster":"c","service":"s","container":"x",
            "pipeline":{"name":"p"},"alarms":["a-5xx"]}]}"#;
    let got = problems(text);
    assert!(
        got.iter().any(|p| p.starts_with(
            "services[0].alarms: a pipeline service's deployments are run by its pipeline"
        )),
        "{got:?}"
    );
}

#[test]
fn two_services_cannot_share_a_deployment_group() {
    let text = r#"{"services":[
            {"name":"a","repository":"r","cluster":"c","service":"s","container":"x","codedeploy":{"application":"app","deployment_group":"g"}},
            {"name":"b","repository":"r2","cluster":"c","service":"s2","container":"x","codedeploy":{"application":"app","deployment_group":"g"}}]}"#;
    let got = problems(text);
    assert!(
        got.iter().any(
            |p| p.starts_with("services[1].codedeploy.deployment_group: app/g is already used")
        ),
        "{got:?}"
    );
}

#[test]
fn syntax_errors_are_not_mistaken_for_an_empty_document() {
    assert!(matches!(
        Config::parse("services: [\n"),
        Err(ConfigError::Syntax(_))
    ));
    assert!(matches!(
        Config::parse("{\"services\": "),
        Err(ConfigError::Syntax(_))
    ));
}

#[test]
fn environment_selects_the_document_and_topic_override() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    };
    assert!(matches!(
        Config::from_lookup(env(&[])),
        Err(ConfigError::NotSet)
    ));
    assert!(matches!(
        Config::from_lookup(env(&[(ENV_CONFIG, "x"), (ENV_CONFIG_FILE, "y")])),
        Err(ConfigError::SeveralSet(_))
    ));
    let pairs: &'static [(&str, &str)] = Box::leak(Box::new([
        (ENV_CONFIG, EXAMPLE),
        (ENV_TOPIC_ARN, "arn:aws:sns:eu-west-1:111111111111:other"),
    ]));
    let config = Config::from_lookup(env(pairs)).expect("inline config loads");
    assert_eq!(
        config.notifications.topic_arn.as_deref(),
        Some("arn:aws:sns:eu-west-1:111111111111:other")
    );
}

#[test]
fn config_file_paths_resolve_against_the_task_root() {
    let dir = std::env::temp_dir().join(format!("greenlight-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("greenlight.yaml"), EXAMPLE).unwrap();
    let root = dir.to_string_lossy().to_string();
    let config = Config::from_lookup(|name| match name {
        ENV_CONFIG_FILE => Some("greenlight.yaml".into()),
        "LAMBDA_TASK_ROOT" => Some(root.clone()),
        _ => None,
    })
    .expect("relative file under the task root loads");
    assert_eq!(config.services.len(), 1);
    let missing =
        Config::from_lookup(|name| (name == ENV_CONFIG_FILE).then(|| "/nonexistent/g.yaml".into()));
    assert!(matches!(missing, Err(ConfigError::Read { .. })));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn status_expectations_match_codes_and_classes() {
    assert!(StatusExpectation::Class(2).matches(204));
    assert!(!StatusExpectation::Class(2).matches(301));
    assert!(StatusExpectation::Exact(404).matches(404));
    assert_eq!(
        parse_status(&Value::from("5XX")),
        Some(StatusExpectation::Class(5))
    );
    assert_eq!(
        parse_status(&Value::from("201")),
        Some(StatusExpectation::Exact(201))
    );
    assert_eq!(parse_status(&Value::from("6xx")), None);
}

/// `web-staging` takes pushes; `web-prod` takes what staging proved.
fn promotion_doc(prod_extra: &str, staging_extra: &str) -> String {
    format!(
        r#"
services:
  - {{ name: web-staging, repository: web-app, cluster: staging, service: web, container: web, codedeploy: {{ application: web, deployment_group: staging }}{staging_extra} }}
  - {{ name: web-prod, repository: web-app, cluster: prod, service: web, container: web, ecs_native: {{}}{prod_extra} }}
"#
    )
}

#[test]
fn a_promoted_service_takes_no_pushes_and_keeps_its_settings() {
    let config = Config::parse(&promotion_doc(
        ", promote: { from: web-staging, soak_minutes: 45, approval: manual }",
        "",
    ))
    .unwrap();
    let prod = config.service_by_name("web-prod").unwrap();
    let promote = prod.promote.as_ref().unwrap();
    assert_eq!(promote.from, "web-staging");
    assert_eq!(promote.soak, Duration::from_secs(45 * 60));
    assert_eq!(promote.approval, Approval::Manual);
    let pushed: Vec<&str> = config
        .services_for_push("web-app", "v1.0.0")
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(pushed, ["web-staging"]);
    let defaults = Config::parse(&promotion_doc(", promote: { from: web-staging }", "")).unwrap();
    let promote = defaults.services[1].promote.clone().unwrap();
    assert_eq!(
        (promote.soak, promote.approval),
        (Duration::from_secs(30 * 60), Approval::Auto)
    );
}

#[test]
fn a_promotion_from_nowhere_in_a_cycle_or_across_containers_is_refused_by_key() {
    let unknown = problems(&promotion_doc(", promote: { from: web-stagin }", ""));
    assert_eq!(unknown.len(), 1, "{unknown:?}");
    assert!(
        unknown[0].starts_with("services[1].promote.from: no service \"web-stagin\""),
        "{unknown:?}"
    );
    let cycle = problems(&promotion_doc(
        ", promote: { from: web-staging }",
        ", promote: { from: web-prod }",
    ));
    assert_eq!(cycle.len(), 2, "each end of the cycle is named: {cycle:?}");
    assert!(cycle[0].starts_with("services[0].promote.from: promotions form a cycle (web-staging promotes from web-prod promotes from web-staging)"), "{cycle:?}");
    assert!(
        cycle[1].starts_with("services[1].promote.from: promotions form a cycle"),
        "{cycle:?}"
    );
    let containers = problems(
        &promotion_doc(", promote: { from: web-staging }", "").replacen(
            "container: web, codedeploy",
            "container: app, codedeploy",
            1,
        ),
    );
    assert_eq!(containers.len(), 1, "{containers:?}");
    assert!(
        containers[0].contains("web-staging runs container \"app\" and web-prod container \"web\""),
        "{containers:?}"
    );
    let bad = problems(&promotion_doc(
        ", promote: { from: web-staging, soak_minutes: -1, approval: later, then: x }",
        "",
    ));
    for expected in [
        "services[1].promote.then: unknown key",
        "services[1].promote.soak_minutes:",
        "services[1].promote.approval: \"later\" is not one of auto, manual",
    ] {
        assert!(
            bad.iter().any(|p| p.starts_with(expected)),
            "{expected} in {bad:#?}"
        );
    }
}

#[test]
fn redact_patterns_are_kept_and_a_bad_one_is_named_by_index() {
    let config = Config::parse(&format!("redact: ['card=\\d{{16}}']\n{EXAMPLE}")).unwrap();
    assert_eq!(config.redact, vec!["card=\\d{16}".to_string()]);
    let found = problems(&format!("redact: ['ok', '(unclosed']\n{EXAMPLE}"));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("redact[1]: \"(unclosed\" is not a regular expression"),
        "{found:?}"
    );
}
