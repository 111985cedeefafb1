//! The lifecycle hook under ECS-native blue/green: ECS invokes it with
//! `{executionId, lifecycleStage, resourceArn, executionDetails, hookDetails}` and
//! takes its return value as the answer. Smoke targets are real HTTP servers on
//! 127.0.0.1; listener rules resolve through the emulator's ELBv2. Every case asserts
//! the returned `hookStatus`, never an error.

// The hook's futures nest deeply (a smoke run inside a guarded decision).
#![recursion_limit = "256"]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use greenlight::aws::ecs::{ListenerRules, ServiceRules};
use greenlight::aws::sns::{Publication, Publisher};
use greenlight::aws::{AwsError, CodeDeploy, LoadBalancers};
use greenlight::config::Config;
use greenlight::notify::Notifier;
use greenlight_tests::aws::sdk_config;
use greenlight_tests::http::{Reply, TestServer};
use greenlight_tests::moto;
use lifecycle_hook::{CodeDeployContract, Hook};
use serde_json::{json, Value};
use tokio::time::Instant;

const SERVICE_ARN: &str = "arn:aws:ecs:us-east-1:123456789012:service/prod/web";
const TARGET: &str = "arn:aws:ecs:us-east-1:123456789012:service-revision/prod/web/2";
const BLUE: &str = "arn:aws:ecs:us-east-1:123456789012:service-revision/prod/web/1";

/// Records publications; with `.1` set it never answers (an SNS that hangs).
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Publication>>>, bool);

impl Publisher for Recorder {
    async fn publish(&self, publication: &Publication) -> Result<String, AwsError> {
        self.0.lock().unwrap().push(publication.clone());
        if self.1 {
            std::future::pending::<()>().await;
        }
        Ok("msg-1".into())
    }
}

/// The service's listener rules and its target revision's image, as ECS would say.
#[derive(Clone, Default)]
struct Rules {
    test: Option<String>,
    panic: bool,
    pauses: Vec<String>,
    /// The revision's image never arrives (ECS answering 5xx, retried).
    image_hangs: bool,
}

impl ServiceRules for Rules {
    async fn listener_rules(
        &self,
        _cluster: &str,
        _service: &str,
    ) -> Result<ListenerRules, AwsError> {
        if self.panic {
            panic!("rules exploded");
        }
        Ok(ListenerRules {
            test: self.test.clone(),
            ..ListenerRules::default()
        })
    }

    async fn pause_stages(&self, _cluster: &str, _service: &str) -> Result<Vec<String>, AwsError> {
        Ok(self.pauses.clone())
    }

    async fn revision_image(
        &self,
        revision_arn: &str,
        _container: &str,
    ) -> Result<(Option<String>, Option<String>), AwsError> {
        assert_eq!(revision_arn, TARGET);
        if self.image_hangs {
            std::future::pending::<()>().await;
        }
        Ok((Some("v2".into()), None))
    }
}

type EcsHook = Hook<CodeDeploy, LoadBalancers, Recorder, CodeDeployContract<CodeDeploy>, Rules>;

async fn hook(config: &str, rules: Rules, recorder: &Recorder) -> Arc<EcsHook> {
    let sdk = sdk_config(&moto().endpoint).await;
    let codedeploy = CodeDeploy::from_conf(&sdk);
    Arc::new(Hook {
        config: Config::parse(config).map(Into::into).map_err(Arc::new),
        hook_event: None,
        deployments: codedeploy.clone(),
        listeners: LoadBalancers::from_conf(&sdk),
        notifier: Notifier::new(
            recorder.clone(),
            Some("arn:aws:sns:us-east-1:123456789012:greenlight".into()),
        ),
        contract: CodeDeployContract::new(codedeploy),
        services: rules,
        http: greenlight::smoke::HttpClients::new().unwrap(),
        report_margin: Duration::from_secs(2),
        gate: lifecycle_hook::Gate::from_conf(&sdk),
        secrets: greenlight::aws::secrets::Secrets::from_conf(&sdk),
    })
}

fn config(base_url: Option<&str>, check_fields: &str, deadline_seconds: u64) -> String {
    let base = base_url.map_or(String::new(), |u| format!("base_url: {u}"));
    format!(
        r#"
services:
  - name: web
    repository: web-app
    cluster: prod
    service: web
    container: web
    ecs_native: {{ stages: [POST_TEST_TRAFFIC_SHIFT, TEST_TRAFFIC_SHIFT] }}
    smoke:
      {base}
      deadline_seconds: {deadline_seconds}
      checks:
        - {{ name: version, path: /version, json_equals: {{ /version: "${{image_tag}}" }}, events: [POST_TEST_TRAFFIC_SHIFT] {check_fields} }}
"#
    )
}

fn payload(stage: &str, test_weights: Value, hook_details: Value) -> Value {
    json!({
        "executionId": "exec-1",
        "lifecycleStage": stage,
        "resourceArn": "arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/web/dep1",
        "executionDetails": {
            "serviceArn": SERVICE_ARN,
            "targetServiceRevisionArn": TARGET,
            "testTrafficWeights": test_weights,
            "productionTrafficWeights": {}
        },
        "hookDetails": hook_details
    })
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

fn version(v: &'static str) -> impl Fn(&greenlight_tests::http::Request) -> Reply + Send + Sync {
    move |r| match r.path.as_str() {
        "/version" => Reply::new(200, format!(r#"{{"version":"{v}"}}"#)),
        _ => Reply::new(404, ""),
    }
}

#[tokio::test]
async fn green_that_passes_at_post_test_traffic_shift_returns_succeeded() {
    let server = TestServer::start(version("v2")).await;
    let recorder = Recorder::default();
    let hook = hook(
        &config(Some(&server.url()), "", 60),
        Rules::default(),
        &recorder,
    )
    .await;

    let answer = hook
        .handle(
            payload("POST_TEST_TRAFFIC_SHIFT", json!({}), json!({})),
            far(),
        )
        .await
        .unwrap();

    assert_eq!(answer["hookStatus"], "SUCCEEDED", "{answer}");
    assert_eq!(server.requests(), 1);
    let events: Vec<String> = recorder
        .0
        .lock()
        .unwrap()
        .iter()
        .flat_map(|p| p.attributes.clone())
        .filter(|(k, _)| k == "event")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(events, ["hook_passed"]);
}

/// The image lookup is optional: when ECS never answers it, the checks run without
/// the image placeholders after a short budget, long before the hook's deadline.
#[tokio::test]
async fn a_revision_image_that_never_arrives_does_not_spend_the_decision_budget() {
    let server = TestServer::start(version("v2")).await;
    let recorder = Recorder::default();
    let config = config(Some(&server.url()), "", 60).replace(
        r#"json_equals: { /version: "${image_tag}" }"#,
        r#"json_equals: { /version: "v2" }"#,
    );
    let rules = Rules {
        image_hangs: true,
        ..Rules::default()
    };
    let hook = hook(&config, rules, &recorder).await;

    let answer = hook
        .handle(
            payload("POST_TEST_TRAFFIC_SHIFT", json!({}), json!({})),
            far(),
        )
        .await
        .unwrap();

    // Without the budget the lookup would hold the hook until its deadline, and the
    // answer would be FAILED for want of time.
    assert_eq!(answer["hookStatus"], "SUCCEEDED", "{answer}");
    assert_eq!(server.requests(), 1);
}

/// AWS's current ECS model adds stages Greenlight does not know (BAKE_TIME, CLEAN_UP);
/// a hook configured on one, or on any future stage, passes it and says so.
#[tokio::test]
async fn a_stage_greenlight_does_not_know_is_passed_not_broken() {
    let server = TestServer::start(version("v2")).await;
    let recorder = Recorder::default();
    let hook = hook(
        &config(Some(&server.url()), "", 60),
        Rules::default(),
        &recorder,
    )
    .await;
    for stage in ["BAKE_TIME", "CLEAN_UP", "SOME_STAGE_FROM_2027"] {
        let answer = hook
            .handle(payload(stage, json!({}), json!({})), far())
            .await
            .unwrap();
        assert_eq!(answer["hookStatus"], "SUCCEEDED", "{stage}: {answer}");
    }
    assert_eq!(
        server.requests(),
        0,
        "no checks run at a stage Greenlight does not know"
    );
}

/// ECS takes the return value as the answer: an SNS that never answers must not hold
/// it past the deadline (ECS would roll a good deployment back).
#[tokio::test]
async fn an_sns_that_never_answers_does_not_hold_the_answer() {
    let server = TestServer::start(version("v2")).await;
    let recorder = Recorder(Arc::default(), true);
    let hook = hook(
        &config(Some(&server.url()), "", 60),
        Rules::default(),
        &recorder,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(6);

    let answer = tokio::time::timeout_at(
        deadline,
        hook.handle(
            payload("POST_TEST_TRAFFIC_SHIFT", json!({}), json!({})),
            deadline,
        ),
    )
    .await
    .expect("the hook answered before its deadline")
    .unwrap();

    assert_eq!(answer["hookStatus"], "SUCCEEDED", "{answer}");
    assert_eq!(
        recorder.0.lock().unwrap().len(),
        1,
        "the notification was tried"
    );
}

#[tokio::test]
async fn a_pause_after_the_checks_is_announced_with_what_to_run() {
    let server = TestServer::start(version("v2")).await;
    let recorder = Recorder::default();
    let rules = Rules {
        pauses: vec!["PRE_PRODUCTION_TRAFFIC_SHIFT".into()],
        ..Rules::default()
    };
    let hook = hook(&config(Some(&server.url()), "", 60), rules, &recorder).await;

    let answer = hook
        .handle(
            payload("POST_TEST_TRAFFIC_SHIFT", json!({}), json!({})),
            far(),
        )
        .await
        .unwrap();

    assert_eq!(answer["hookStatus"], "SUCCEEDED");
    let published = recorder.0.lock().unwrap().clone();
    let approval = published
        .iter()
        .find(|p| {
            p.attributes
                .iter()
                .any(|(k, v)| k == "event" && v == "approval_pending")
        })
        .expect("an approval_pending notification");
    assert!(
        approval.subject.contains("PRE_PRODUCTION_TRAFFIC_SHIFT"),
        "{}",
        approval.subject
    );
    let chat: Value = serde_json::from_str(
        serde_json::from_str::<Value>(&approval.message).unwrap()["default"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let steps = chat["content"]["nextSteps"].to_string();
    assert!(
        steps.contains("greenlight approve web") && steps.contains("greenlight reject web"),
        "{steps}"
    );
}

#[tokio::test]
async fn green_that_serves_the_wrong_version_returns_failed_with_the_reason() {
    let server = TestServer::start(version("v1")).await;
    let hook = hook(
        &config(Some(&server.url()), ", attempts: 1", 60),
        Rules::default(),
        &Recorder::default(),
    )
    .await;

    let answer = hook
        .handle(
            payload("POST_TEST_TRAFFIC_SHIFT", json!({}), json!({})),
            far(),
        )
        .await
        .unwrap();

    assert_eq!(answer["hookStatus"], "FAILED", "{answer}");
    let reason = answer["reason"].as_str().unwrap();
    assert!(
        reason.contains("/version") && reason.contains("POST_TEST_TRAFFIC_SHIFT"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_hook_during_a_rollback_answers_succeeded_at_once() {
    let server = TestServer::start(version("v1")).await;
    let hook = hook(
        &config(Some(&server.url()), "", 60),
        Rules::default(),
        &Recorder::default(),
    )
    .await;

    let answer = hook
        .handle(
            payload(
                "TEST_TRAFFIC_SHIFT",
                json!({ TARGET: 0, BLUE: 100 }),
                json!({}),
            ),
            far(),
        )
        .await
        .unwrap();

    assert_eq!(answer["hookStatus"], "SUCCEEDED", "{answer}");
    assert!(answer["reason"].as_str().unwrap().contains("rollback"));
    assert_eq!(server.requests(), 0, "no smoke traffic during a rollback");
}

#[tokio::test]
async fn an_unknown_service_and_an_invalid_config_fail_closed_with_a_reason() {
    let hook = hook(
        &config(Some("http://127.0.0.1:9"), "", 60),
        Rules::default(),
        &Recorder::default(),
    )
    .await;
    let mut other = payload("POST_TEST_TRAFFIC_SHIFT", json!({}), json!({}));
    other["executionDetails"]["serviceArn"] =
        "arn:aws:ecs:us-east-1:123456789012:service/prod/unknown".into();
    let answer = hook.handle(other, far()).await.unwrap();
    assert_eq!(answer["hookStatus"], "FAILED");
    assert!(answer["reason"]
        .as_str()
        .unwrap()
        .contains("service/prod/unknown"));

    let broken = hook_with_config("services: []").await;
    let answer = broken
        .handle(
            payload("POST_TEST_TRAFFIC_SHIFT", json!({}), json!({})),
            far(),
        )
        .await
        .unwrap();
    assert_eq!(answer["hookStatus"], "FAILED");
    assert!(answer["reason"]
        .as_str()
        .unwrap()
        .contains("configuration is invalid"));
}

async fn hook_with_config(text: &str) -> Arc<EcsHook> {
    hook(text, Rules::default(), &Recorder::default()).await
}

#[tokio::test]
async fn a_panic_in_greenlights_own_code_returns_failed_not_an_error() {
    let hook = hook(
        &config(None, "", 60),
        Rules {
            panic: true,
            ..Rules::default()
        },
        &Recorder::default(),
    )
    .await;

    let answer = hook
        .handle(
            payload("POST_TEST_TRAFFIC_SHIFT", json!({}), json!({})),
            far(),
        )
        .await
        .unwrap();

    assert_eq!(answer["hookStatus"], "FAILED");
    assert!(answer["reason"]
        .as_str()
        .unwrap()
        .contains("panic: rules exploded"));
}

#[tokio::test]
async fn stages_not_configured_or_without_checks_succeed_without_traffic() {
    let server = TestServer::start(version("v2")).await;
    let hook = hook(
        &config(Some(&server.url()), "", 60),
        Rules::default(),
        &Recorder::default(),
    )
    .await;
    for stage in ["PRE_SCALE_UP", "TEST_TRAFFIC_SHIFT", "SOME_FUTURE_STAGE"] {
        let answer = hook
            .handle(payload(stage, json!({ TARGET: 100 }), json!({})), far())
            .await
            .unwrap();
        assert_eq!(answer["hookStatus"], "SUCCEEDED", "{stage}: {answer}");
    }
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn a_run_longer_than_the_invocation_returns_in_progress_and_resumes_from_hook_details() {
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = healthy.clone();
    let server = TestServer::start(move |r| {
        if flag.load(std::sync::atomic::Ordering::SeqCst) {
            version("v2")(r)
        } else {
            Reply::hang()
        }
    })
    .await;
    let hook = hook(
        &config(Some(&server.url()), ", timeout_ms: 60000", 600),
        Rules::default(),
        &Recorder::default(),
    )
    .await;

    // The Lambda has 3 s left; the smoke budget is 600 s: not decided in this invocation.
    let started = std::time::Instant::now();
    let first = hook
        .handle(
            payload("POST_TEST_TRAFFIC_SHIFT", json!({}), json!({"team": "web"})),
            Instant::now() + Duration::from_secs(3),
        )
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered in time"
    );
    assert_eq!(first["hookStatus"], "IN_PROGRESS", "{first}");
    assert!(first["callBackDelay"].as_u64().unwrap() > 0);
    let details = first["hookDetails"].clone();
    assert_eq!(
        details["team"], "web",
        "the service's own hookDetails are kept"
    );
    assert_eq!(details["greenlight"]["attempt"], 1);

    // ECS invokes again with those hookDetails; green is healthy now.
    healthy.store(true, std::sync::atomic::Ordering::SeqCst);
    let second = hook
        .handle(
            payload("POST_TEST_TRAFFIC_SHIFT", json!({}), details.clone()),
            far(),
        )
        .await
        .unwrap();
    assert_eq!(second["hookStatus"], "SUCCEEDED", "{second}");

    // Once the smoke budget counted from the first attempt is spent, it is FAILED, not
    // IN_PROGRESS forever.
    let mut expired = details;
    expired["greenlight"]["started_ms"] = json!(0);
    healthy.store(false, std::sync::atomic::Ordering::SeqCst);
    let third = hook
        .handle(
            payload("POST_TEST_TRAFFIC_SHIFT", json!({}), expired),
            Instant::now() + Duration::from_secs(3),
        )
        .await
        .unwrap();
    assert_eq!(third["hookStatus"], "FAILED", "{third}");
}

/// The test listener rule, in the emulator's ELBv2, with an http-header condition:
/// smoke requests carry the header so they take that rule.
#[tokio::test]
async fn the_test_listener_rule_resolves_to_its_listener_and_its_header() {
    use aws_sdk_elasticloadbalancingv2::types::{
        Action, ActionTypeEnum, HttpHeaderConditionConfig, RuleCondition,
    };
    let sdk = sdk_config(&moto().endpoint).await;
    let (listener_arn, _dns) =
        greenlight_tests::aws::listener_on(&sdk, &moto().endpoint, 8080).await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    let listener = elb
        .describe_listeners()
        .listener_arns(&listener_arn)
        .send()
        .await
        .unwrap()
        .listeners
        .unwrap()
        .remove(0);
    let target_group = listener.default_actions()[0]
        .target_group_arn()
        .unwrap()
        .to_string();
    let rule = elb
        .create_rule()
        .listener_arn(&listener_arn)
        .priority(10)
        .conditions(
            RuleCondition::builder()
                .field("http-header")
                .http_header_config(
                    HttpHeaderConditionConfig::builder()
                        .http_header_name("X-Greenlight-Test")
                        .values("green")
                        .build(),
                )
                .build(),
        )
        .actions(
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .target_group_arn(target_group)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .rules
        .unwrap()
        .remove(0);
    let rule_arn = rule.rule_arn().unwrap().to_string();

    use greenlight::aws::elb::ListenerResolver;
    let target = LoadBalancers::from_conf(&sdk)
        .rule_target(&rule_arn)
        .await
        .unwrap();

    assert!(
        target.url.starts_with("http://") && target.url.ends_with(":8080"),
        "{}",
        target.url
    );
    assert_eq!(
        target.headers,
        [("X-Greenlight-Test".to_string(), "green".to_string())]
    );
}
