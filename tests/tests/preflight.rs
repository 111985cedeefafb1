//! `greenlight preflight` against the emulator, the ECS stand-in, the CodeDeploy
//! stand-in and the CloudWatch stand-in: a correct set-up on either path has no error
//! or warning (the IAM questions are "undecided": the emulator has no policy
//! simulator, and preflight says so), each deliberately broken one gives exactly one
//! error that names the fix, and a test listener on an internet-facing load balancer
//! gives one warning.
use std::sync::Arc;

use aws_sdk_ecs::types::{
    AdvancedConfiguration, DeploymentConfiguration, DeploymentController, DeploymentControllerType,
    DeploymentLifecycleHook, DeploymentLifecycleHookStage, DeploymentLifecycleHookTargetType,
    DeploymentStrategy, LoadBalancer,
};
use aws_sdk_elasticloadbalancingv2::types::LoadBalancerSchemeEnum;
use greenlight_standins::cloudwatch::CloudWatchStandIn;
use greenlight_standins::codedeploy::NoTraffic;
use greenlight_standins::ecs::{EcsStandIn, Timing};
use greenlight_standins::http::serve;
use greenlight_tests::aws::{default_subnets, sdk_config};
use greenlight_tests::{moto, unique};
use serde_json::{json, Value};

struct World {
    ecs_endpoint: String,
    cloudwatch_endpoint: String,
    cluster: String,
    good_service: String,
    bad_hook_service: String,
    rolling_service: String,
    /// Its test listener rule is on an internet-facing load balancer.
    exposed_service: String,
    /// A CODE_DEPLOY service, deployed by the group shop/web-dg.
    cd_service: String,
    cd_hook_pattern: String,
    codedeploy_endpoint: String,
    repository: String,
    dir: std::path::PathBuf,
}

/// A minimal empty zip archive: the emulator stores the function, never runs it.
const EMPTY_ZIP: [u8; 22] = [
    0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

async fn world() -> World {
    let sdk = sdk_config(&moto().endpoint).await;
    // ECR repository, and an EventBridge rule for ECR pushes.
    let repository = unique("web-app");
    aws_sdk_ecr::Client::new(&sdk)
        .create_repository()
        .repository_name(&repository)
        .send()
        .await
        .unwrap();
    aws_sdk_eventbridge::Client::new(&sdk)
        .put_rule()
        .name(unique("greenlight-pushes"))
        .event_pattern(
            json!({"source": ["aws.ecr"], "detail-type": ["ECR Image Action"],
                "detail": {"repository-name": [{"prefix": "web-app"}]}})
            .to_string(),
        )
        .state(aws_sdk_eventbridge::types::RuleState::Enabled)
        .send()
        .await
        .unwrap();
    // The hook function and its role.
    let role = aws_sdk_iam::Client::new(&sdk)
        .create_role()
        .role_name(unique("greenlight-hook"))
        .assume_role_policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap()
        .role
        .unwrap()
        .arn;
    let hook = aws_sdk_lambda::Client::new(&sdk)
        .create_function()
        .function_name(unique("greenlight-hook-ecs"))
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .role(&role)
        .handler("bootstrap")
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_smithy_types::Blob::new(EMPTY_ZIP.to_vec()))
                .build(),
        )
        .send()
        .await
        .unwrap()
        .function_arn
        .unwrap();
    // The CodeDeploy path's hook, named as the AppSpec pattern will name it.
    let cd_prefix = unique("CodeDeployHook_greenlight");
    aws_sdk_lambda::Client::new(&sdk)
        .create_function()
        .function_name(format!("{cd_prefix}-AfterAllowTestTraffic"))
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .role(&role)
        .handler("bootstrap")
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_smithy_types::Blob::new(EMPTY_ZIP.to_vec()))
                .build(),
        )
        .send()
        .await
        .unwrap();
    // Load balancers, each with two target groups, a production and a test listener
    // rule: an internal one, and an internet-facing one for the exposure warning.
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    let (groups, rules) = load_balancer(&elb, LoadBalancerSchemeEnum::Internal).await;
    let exposed = load_balancer(&elb, LoadBalancerSchemeEnum::InternetFacing).await;
    // ECS: the stand-in keeps the services' blue/green configuration.
    let standin = EcsStandIn::new(
        moto().endpoint.clone(),
        Arc::new(NoTraffic),
        Arc::new(|_f: String, _p: Value| {
            Box::pin(async { Ok(json!({"hookStatus": "SUCCEEDED"})) })
        }),
        Arc::new(|_e: Value| {}),
        Arc::new(|_l: String| {}),
        Timing::default(),
    );
    let addr = serve(standin.handler()).await.unwrap();
    // Kept alive for the test's duration.
    std::mem::forget(standin);
    let ecs_endpoint = format!("http://{addr}");
    let ecs = aws_sdk_ecs::Client::new(&sdk.to_builder().endpoint_url(&ecs_endpoint).build());
    let (cluster, td) = greenlight_tests::aws::cluster_and_web_task_definition(&ecs, "web:1").await;
    let create = |name: String,
                  hook_arn: String,
                  strategy: DeploymentStrategy,
                  (groups, rules): (Vec<String>, Vec<String>)| {
        let (ecs, cluster, td) = (ecs.clone(), cluster.clone(), td.clone());
        async move {
            let hook = DeploymentLifecycleHook::builder()
                .target_type(DeploymentLifecycleHookTargetType::AwsLambda)
                .hook_target_arn(hook_arn)
                .role_arn("arn:aws:iam::123456789012:role/ecs-invokes-greenlight")
                .lifecycle_stages(DeploymentLifecycleHookStage::PostTestTrafficShift)
                .lifecycle_stages(DeploymentLifecycleHookStage::PostProductionTrafficShift)
                .build();
            ecs.create_service()
                .cluster(&cluster)
                .service_name(&name)
                .task_definition(td)
                .desired_count(1)
                .deployment_controller(
                    DeploymentController::builder()
                        .r#type(DeploymentControllerType::Ecs)
                        .build()
                        .unwrap(),
                )
                .deployment_configuration(
                    DeploymentConfiguration::builder()
                        .strategy(strategy)
                        .bake_time_in_minutes(0)
                        .lifecycle_hooks(hook)
                        .build(),
                )
                .load_balancers(
                    LoadBalancer::builder()
                        .target_group_arn(&groups[0])
                        .container_name("web")
                        .container_port(8080)
                        .advanced_configuration(
                            AdvancedConfiguration::builder()
                                .alternate_target_group_arn(&groups[1])
                                .production_listener_rule(&rules[0])
                                .test_listener_rule(&rules[1])
                                .role_arn("arn:aws:iam::123456789012:role/ecs-elb")
                                .build(),
                        )
                        .build(),
                )
                .send()
                .await
                .unwrap();
            name
        }
    };
    let internal_rules = rules.clone();
    let internal = (groups, rules);
    let good_service = create(
        unique("web"),
        hook.clone(),
        DeploymentStrategy::BlueGreen,
        internal.clone(),
    )
    .await;
    let bad_hook_service = create(
        unique("web"),
        "arn:aws:lambda:us-east-1:123456789012:function:no-such-hook".into(),
        DeploymentStrategy::BlueGreen,
        internal.clone(),
    )
    .await;
    let rolling_service = create(
        unique("web"),
        hook.clone(),
        DeploymentStrategy::Rolling,
        internal,
    )
    .await;
    let exposed_service = create(unique("web"), hook, DeploymentStrategy::BlueGreen, exposed).await;
    // The CodeDeploy path: a CODE_DEPLOY service (in the emulator, which the ECS
    // stand-in passes it to) and, in the CodeDeploy stand-in, its deployment group,
    // one naming another service, and one without a test listener.
    let cd_service = unique("web");
    ecs.create_service()
        .cluster(&cluster)
        .service_name(&cd_service)
        .task_definition(&td)
        .desired_count(1)
        .deployment_controller(
            DeploymentController::builder()
                .r#type(DeploymentControllerType::CodeDeploy)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let listener = |rule: &str| greenlight::aws::elb::listener_of_rule(rule).unwrap();
    let (production_listener, test_listener) =
        (listener(&internal_rules[0]), listener(&internal_rules[1]));
    let group = |name: &str, service: &str, test: bool| {
        let mut pair = json!({"targetGroups": [{"name": "tg-blue"}, {"name": "tg-green"}],
            "prodTrafficRoute": {"listenerArns": [production_listener]}});
        if test {
            pair["testTrafficRoute"] = json!({"listenerArns": [test_listener]});
        }
        json!({"applicationName": "shop", "deploymentGroupName": name,
            "serviceRoleArn": "arn:aws:iam::123456789012:role/codedeploy-ecs",
            "ecsServices": [{"clusterName": cluster, "serviceName": service}],
            "loadBalancerInfo": {"targetGroupPairInfoList": [pair]}})
    };
    let codedeploy = greenlight_standins::codedeploy::CodeDeployStandIn::new(
        Arc::new(NoTraffic),
        Arc::new(|_f: String, _p: Value| Box::pin(async {})),
        Arc::new(|_e: Value| {}),
        Arc::new(|_l: String| {}),
        None,
        greenlight_standins::codedeploy::Timing::default(),
    );
    codedeploy.seed_application("shop");
    codedeploy.seed_group(group("web-dg", &cd_service, true));
    codedeploy.seed_group(group("other-dg", "some-other-service", true));
    codedeploy.seed_group(group("no-test-dg", &cd_service, false));
    let cd = serve(codedeploy.handler()).await.unwrap();
    std::mem::forget(codedeploy);
    // CloudWatch: the alarm the service names.
    let cloudwatch = CloudWatchStandIn::new();
    cloudwatch.put_alarm("web-5xx");
    let cw = serve(cloudwatch.handler()).await.unwrap();
    std::mem::forget(cloudwatch);
    let dir = std::env::temp_dir().join(unique("preflight"));
    std::fs::create_dir_all(&dir).unwrap();
    World {
        ecs_endpoint,
        cloudwatch_endpoint: format!("http://{cw}"),
        cluster,
        good_service,
        bad_hook_service,
        rolling_service,
        exposed_service,
        cd_service,
        cd_hook_pattern: format!("{cd_prefix}-{{event}}"),
        codedeploy_endpoint: format!("http://{cd}"),
        repository,
        dir,
    }
}

/// A blue/green load balancer with `scheme`: (target groups, [production rule, test rule]).
async fn load_balancer(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    scheme: LoadBalancerSchemeEnum,
) -> (Vec<String>, Vec<String>) {
    let created = greenlight_standins::elb_fixture::create(
        elb,
        &unique("alb"),
        scheme,
        default_subnets(&moto().endpoint).await,
    )
    .await
    .unwrap();
    (
        vec![created.blue, created.green],
        vec![created.production_rule, created.test_rule],
    )
}

impl World {
    /// Runs preflight on a one-service configuration with `overrides` applied.
    async fn preflight(&self, overrides: &[(&str, &str)]) -> (Option<i32>, Vec<Value>, String) {
        let mut fields: Vec<(String, String)> = vec![
            ("name".into(), "web".into()),
            ("repository".into(), self.repository.clone()),
            ("cluster".into(), self.cluster.clone()),
            ("service".into(), self.good_service.clone()),
            ("container".into(), "web".into()),
            ("ecs_native".into(), "{}".into()),
            ("alarms".into(), "[web-5xx]".into()),
        ];
        for (k, v) in overrides {
            fields.retain(|(key, _)| key != k);
            if k.starts_with('-') {
                fields.retain(|(key, _)| key != &k[1..]);
            } else {
                fields.push((k.to_string(), v.to_string()));
            }
        }
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("    {k}: {v}"))
            .collect();
        let file = self.dir.join(format!("{}.yaml", unique("config")));
        std::fs::write(&file, format!("services:\n  -\n{}\n", body.join("\n"))).unwrap();
        let file = file.to_string_lossy().to_string();
        let run = greenlight_tests::greenlight(
            &[
                "preflight",
                "--json",
                "--hook-function",
                &self.cd_hook_pattern,
                "--config",
                &file,
            ],
            &[
                ("AWS_ENDPOINT_URL", &moto().endpoint),
                ("AWS_ENDPOINT_URL_ECS", &self.ecs_endpoint),
                ("AWS_ENDPOINT_URL_CLOUDWATCH", &self.cloudwatch_endpoint),
                ("AWS_ENDPOINT_URL_CODEDEPLOY", &self.codedeploy_endpoint),
            ],
        )
        .await;
        let (stdout, stderr) = (run.stdout, run.stderr);
        let findings: Vec<Value> = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("no JSON findings ({e}): {stdout}{stderr}"));
        (run.code, findings, stderr)
    }
}

impl World {
    /// Runs preflight with `overrides` and expects exactly one finding (besides the
    /// undecided IAM questions): `check`, with `severity`, a problem saying `problem`
    /// and a fix saying `fix`; the run exits 1 on an error, 0 on a warning alone.
    async fn expect_one(
        &self,
        overrides: &[(&str, &str)],
        check: &str,
        severity: &str,
        problem: &str,
        fix: &str,
    ) {
        let (code, findings, stderr) = self.preflight(overrides).await;
        let found = errors(&findings);
        assert_eq!(
            found.len(),
            1,
            "{check}: exactly one finding: {findings:#?}{stderr}"
        );
        assert_eq!(found[0]["check"], check, "{findings:#?}");
        assert_eq!(found[0]["severity"], severity, "{findings:#?}");
        assert!(
            found[0]["problem"].as_str().unwrap().contains(problem),
            "{check}: {:#?}",
            found[0]
        );
        assert!(
            found[0]["fix"].as_str().unwrap().contains(fix),
            "{check}: {:#?}",
            found[0]
        );
        let expected = if severity == "error" { 1 } else { 0 };
        assert_eq!(code, Some(expected), "{check}: {severity} exits {expected}");
    }
}

/// Overrides that make the configured service a CodeDeploy one: `service`, deployed by
/// the group `target` names.
fn codedeploy<'a>(service: &'a str, target: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("-ecs_native", ""),
        ("service", service),
        ("codedeploy", target),
    ]
}

fn errors(findings: &[Value]) -> Vec<&Value> {
    findings
        .iter()
        .filter(|f| f["severity"] != "undecided")
        .collect()
}

#[tokio::test]
async fn a_correct_set_up_passes_and_each_broken_one_gives_one_finding_with_its_fix() {
    let w = world().await;
    let (code, findings, stderr) = w.preflight(&[]).await;
    assert_eq!(code, Some(0), "{findings:#?}{stderr}");
    assert!(
        errors(&findings).is_empty(),
        "no errors or warnings: {findings:#?}"
    );
    assert!(
        findings.iter().all(|f| f["problem"]
            .as_str()
            .unwrap()
            .contains("SimulatePrincipalPolicy")),
        "only the IAM questions are undecided, and say why: {findings:#?}"
    );

    let hook_missing = w.bad_hook_service.clone();
    let rolling = w.rolling_service.clone();
    // (check, config overrides, what the problem says, what the fix says)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            "ecr-repository",
            vec![("repository", "web-app-never-created")],
            "does not exist",
            "create the repository",
        ),
        (
            "alarm",
            vec![("alarms", "[no-such-alarm]")],
            "alarm no-such-alarm does not exist",
            "create the alarm",
        ),
        (
            "ecs-service",
            vec![("service", "no-such-service")],
            "not found in cluster",
            "fix services[].cluster",
        ),
        (
            "deployment-controller",
            vec![
                ("-ecs_native", ""),
                ("codedeploy", "{ application: a, deployment_group: g }"),
            ],
            "deployment controller ECS",
            "configure ecs_native:",
        ),
        (
            "ecs-hook-stages",
            vec![("analysis", "{ metrics: [{ metric: error_rate, max: 1 }] }")],
            "PRODUCTION_TRAFFIC_SHIFT",
            "lifecycleStages",
        ),
        (
            "hook-function",
            vec![("service", hook_missing.as_str())],
            "no-such-hook",
            "deploy Greenlight's template",
        ),
        (
            "ecs-strategy",
            vec![("service", rolling.as_str())],
            "not blue/green",
            "BLUE_GREEN",
        ),
    ];
    for (check, overrides, problem, fix) in cases {
        w.expect_one(&overrides, check, "error", problem, fix).await;
    }

    // The CodeDeploy path: a correct group passes; each broken one gives one finding.
    let cd_service = w.cd_service.clone();
    let group_of = |group: &str| {
        format!(
            "{{ application: shop, deployment_group: {group}, hooks: [AfterAllowTestTraffic] }}"
        )
    };
    let (code, findings, stderr) = w
        .preflight(&codedeploy(&cd_service, &group_of("web-dg")))
        .await;
    assert_eq!(code, Some(0), "{findings:#?}{stderr}");
    assert!(
        errors(&findings).is_empty(),
        "a correct CodeDeploy set-up: no errors or warnings: {findings:#?}"
    );
    assert!(
        findings.iter().any(|f| f["check"] == "hook-role"),
        "the hook role's PutLifecycleEventHookExecutionStatus is asked (undecided here): {findings:#?}"
    );
    let cd_cases: Vec<(&str, &'static str, &str, &str)> = vec![
        (
            "codedeploy-group",
            "other-dg",
            "does not deploy",
            "ecsServices",
        ),
        (
            "test-listener",
            "no-test-dg",
            "has no test listener",
            "testTrafficRoute",
        ),
        (
            "codedeploy-group",
            "missing-dg",
            "cannot be read",
            "create the group",
        ),
    ];
    for (check, group, problem, fix) in cd_cases {
        let broken = group_of(group);
        w.expect_one(
            &codedeploy(&cd_service, &broken),
            check,
            "error",
            problem,
            fix,
        )
        .await;
    }

    // A test listener on an internet-facing load balancer: one warning naming the fix,
    // and a warning alone does not fail the run.
    let exposed = w.exposed_service.clone();
    w.expect_one(
        &[("service", exposed.as_str())],
        "test-listener",
        "warning",
        "internet-facing load balancer",
        "security group",
    )
    .await;
}
