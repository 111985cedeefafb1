//! Facts about `template.yaml` that cfn-lint does not check (measured: it accepted
//! `Runtime: provided.al2099`, `Architectures: [arm65]` and undefined `!Ref`s in
//! environment variables): runtime and architecture, every reference resolves, the
//! build metadata names real workspace binaries, and least privilege, both ways:
//! each function's role grants exactly the actions its code lists (`IAM_ACTIONS`), and
//! every grant holds under AWS's Service Authorization Reference (the judgement in
//! `greenlight_cli::iam`, which reads both branches of every `!If`).

use std::collections::{BTreeSet, HashMap};

use greenlight::LifecycleEvent;
use greenlight_cli::iam::{judge, Reference, Template};
use greenlight_tests::workspace_root;
use serde_yaml_ng::Value;

const PSEUDO: &[&str] = &[
    "AWS::AccountId",
    "AWS::NoValue",
    "AWS::Partition",
    "AWS::Region",
    "AWS::StackId",
    "AWS::StackName",
    "AWS::URLSuffix",
];

/// Granted for Lambda's own machinery, not called by the code: the on-failure
/// destination writes to the dead-letter queue with the function's role.
/// kms:Decrypt and kms:GenerateDataKey are used by SSM, Secrets Manager and SNS on the
/// function's behalf (granted with a kms:ViaService condition), never called by the code.
const INFRASTRUCTURE: &[&str] = &["sqs:SendMessage", "kms:Decrypt", "kms:GenerateDataKey"];

fn template_at(path: &str) -> Value {
    let text = std::fs::read_to_string(workspace_root().join(path)).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

fn template() -> Value {
    template_at("template.yaml")
}

fn map_keys(value: &Value, key: &str) -> BTreeSet<String> {
    value[key]
        .as_mapping()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Every (kind, name) an intrinsic function refers to: "ref", "getatt" or "condition".
fn references(value: &Value, out: &mut Vec<(&'static str, String)>) {
    match value {
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let inner = &tagged.value;
            match tag.as_str() {
                "!Ref" => out.push(("ref", inner.as_str().unwrap_or_default().to_string())),
                "!GetAtt" => {
                    let name = match inner {
                        Value::String(s) => s.split('.').next().unwrap_or_default().to_string(),
                        Value::Sequence(items) => items[0].as_str().unwrap_or_default().to_string(),
                        _ => String::new(),
                    };
                    out.push(("getatt", name));
                }
                "!Sub" => {
                    let (text, locals) = match inner {
                        Value::String(s) => (s.clone(), BTreeSet::new()),
                        Value::Sequence(items) => (
                            items[0].as_str().unwrap_or_default().to_string(),
                            map_keys_of(&items[1]),
                        ),
                        _ => (String::new(), BTreeSet::new()),
                    };
                    for name in sub_names(&text) {
                        let base = name.split('.').next().unwrap_or_default().to_string();
                        if !locals.contains(&base) {
                            out.push((if name.contains('.') { "getatt" } else { "ref" }, base));
                        }
                    }
                }
                "!If" => {
                    if let Value::Sequence(items) = inner {
                        out.push((
                            "condition",
                            items[0].as_str().unwrap_or_default().to_string(),
                        ));
                    }
                }
                "!Condition" => {
                    out.push(("condition", inner.as_str().unwrap_or_default().to_string()))
                }
                _ => {}
            }
            references(inner, out);
        }
        Value::Mapping(map) => {
            for (k, v) in map {
                if k.as_str() == Some("Condition") {
                    if let Some(name) = v.as_str() {
                        out.push(("condition", name.to_string()));
                    }
                }
                references(v, out);
            }
        }
        Value::Sequence(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

fn map_keys_of(value: &Value) -> BTreeSet<String> {
    value
        .as_mapping()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn sub_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let end = after.find('}').unwrap_or(after.len());
        if !after.starts_with('!') {
            names.push(after[..end].to_string());
        }
        rest = &after[end.min(after.len())..];
    }
    names
}

fn check_references(template: &Value) -> Vec<String> {
    let parameters = map_keys(template, "Parameters");
    let resources = map_keys(template, "Resources");
    let conditions = map_keys(template, "Conditions");
    let mut refs = Vec::new();
    references(template, &mut refs);
    let mut problems = Vec::new();
    for (kind, name) in refs {
        let ok = match kind {
            "ref" => {
                parameters.contains(&name)
                    || resources.contains(&name)
                    || PSEUDO.contains(&name.as_str())
            }
            "getatt" => resources.contains(&name),
            _ => conditions.contains(&name),
        };
        if !ok {
            problems.push(format!("{kind} {name} names nothing in the template"));
        }
    }
    problems
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

/// The actions each function's role may ever be granted (every condition case), by
/// function logical id.
fn granted_actions(template_text: &str) -> HashMap<String, BTreeSet<String>> {
    let grants = Template::parse(template_text).unwrap().grants().unwrap();
    let mut out: HashMap<String, BTreeSet<String>> = HashMap::new();
    for grant in grants {
        for function in &grant.functions {
            out.entry(function.clone()).or_default().extend(
                grant
                    .statements
                    .iter()
                    .filter(|s| s.allow)
                    .flat_map(|s| s.actions.iter().cloned()),
            );
        }
    }
    out
}

fn template_text() -> String {
    std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap()
}

fn binary_of(template: &Value, id: &str) -> String {
    template["Resources"][id]["Metadata"]["BuildProperties"]["Binary"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn every_reference_names_a_parameter_resource_or_condition() {
    let problems = check_references(&template());
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_reference_check_catches_an_undefined_ref() {
    let mut t = template();
    t["Resources"]["DeployOnPushFunction"]["Properties"]["Environment"]["Variables"]["X"] =
        serde_yaml_ng::from_str("!Ref NoSuchParameter").unwrap();
    t["Resources"]["HookRole"]["Properties"]["Description"] =
        serde_yaml_ng::from_str("!Sub '${Missing.Arn} ${!Literal}'").unwrap();
    let problems = check_references(&t);
    assert_eq!(
        problems,
        [
            "ref NoSuchParameter names nothing in the template",
            "getatt Missing names nothing in the template"
        ]
    );
}

#[test]
fn functions_are_provided_al2023_arm64_built_by_cargo_lambda_from_real_binaries() {
    let t = template();
    assert_eq!(
        t["Globals"]["Function"]["Runtime"].as_str(),
        Some("provided.al2023")
    );
    assert_eq!(
        strings(&t["Globals"]["Function"]["Architectures"]),
        ["arm64"]
    );
    let workspace = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
    let mut binaries = BTreeSet::new();
    for (id, resource) in t["Resources"].as_mapping().unwrap() {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let id = id.as_str().unwrap();
        let props = &resource["Properties"];
        assert!(
            props.get("Runtime").is_none() && props.get("Architectures").is_none(),
            "{id} overrides the global runtime"
        );
        assert_eq!(
            resource["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{id}"
        );
        assert_eq!(
            props["CodeUri"].as_str(),
            Some("."),
            "{id}: CodeUri is the workspace root"
        );
        let binary = binary_of(&t, id);
        let manifest = std::fs::read_to_string(
            workspace_root().join(format!("functions/{binary}/Cargo.toml")),
        )
        .unwrap_or_else(|_| panic!("{id}: Binary {binary} is not a crate under functions/"));
        assert!(
            manifest.contains(&format!("[[bin]]\nname = \"{binary}\"")),
            "{id}: functions/{binary} has no binary {binary}"
        );
        assert!(
            workspace.contains(&format!("\"functions/{binary}\"")),
            "{id}: functions/{binary} is not a workspace member"
        );
        binaries.insert(binary);
    }
    assert_eq!(
        binaries,
        BTreeSet::from([
            "alarm-rollback".into(),
            "deploy-on-push".into(),
            "lifecycle-hook".into()
        ])
    );
}

#[test]
fn one_hook_function_per_lifecycle_event_named_as_the_appspec_expects() {
    let t = template();
    let pattern = t["Resources"]["DeployOnPushFunction"]["Properties"]["Environment"]["Variables"]
        ["GREENLIGHT_HOOK_FUNCTION"]
        .clone();
    let Value::Tagged(pattern) = pattern else {
        panic!("GREENLIGHT_HOOK_FUNCTION must be a !Sub")
    };
    assert_eq!(pattern.value.as_str(), Some("${HookFunctionPrefix}{event}"));
    let mut served = BTreeSet::new();
    for (id, resource) in t["Resources"].as_mapping().unwrap() {
        let props = &resource["Properties"];
        let Some(event) = props["Environment"]["Variables"]["GREENLIGHT_HOOK"].as_str() else {
            continue;
        };
        let id = id.as_str().unwrap();
        let event: LifecycleEvent = event.parse().unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(binary_of(&t, id), "lifecycle-hook");
        let Value::Tagged(name) = &props["FunctionName"] else {
            panic!("{id}: FunctionName must be a !Sub")
        };
        assert_eq!(
            name.value.as_str(),
            Some(format!("${{HookFunctionPrefix}}{event}").as_str()),
            "{id}"
        );
        assert!(served.insert(event), "{event} served twice");
    }
    // ECS-native stages are served by the same function through the service's own
    // lifecycle hooks; the template wires one function per CodeDeploy event.
    let codedeploy_events = LifecycleEvent::ALL
        .iter()
        .filter(|e| e.codedeploy_name().is_some())
        .count();
    assert_eq!(served.len(), codedeploy_events);
    // The hook must always answer before its timeout: timeout > smoke deadline + margin.
    let timeout = &t["Parameters"]["HookTimeoutSeconds"];
    let default = timeout["Default"].as_u64().unwrap();
    let smoke_default = greenlight::config::SmokeConfig::default()
        .deadline
        .as_secs();
    assert!(
        default > smoke_default + lifecycle_hook::REPORT_MARGIN.as_secs(),
        "default hook timeout {default}s"
    );
    assert!(
        timeout["MaxValue"].as_u64().unwrap() <= 900,
        "Lambda's maximum is 900 s"
    );
}

/// Judged as AWS judges it: 0 grants the Service Authorization Reference says an
/// account refuses (an action without resource-level permissions scoped to an ARN, a
/// required resource type missing, a condition key that does not exist) and none wider
/// than it needs to be, under every assignment of the template's conditions.
#[test]
fn every_grant_holds_under_the_service_authorization_reference() {
    let grants = Template::parse(&template_text()).unwrap().grants().unwrap();
    let functions: BTreeSet<_> = grants.iter().flat_map(|g| g.functions.clone()).collect();
    assert_eq!(
        functions.len(),
        8,
        "every function's role is judged: {functions:?}"
    );
    assert!(grants.len() > 8, "condition cases are judged too");
    let problems = judge(&grants, Reference::bundled());
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The judgement fails where an account would: the hook's status report scoped to
/// deployment groups (as the template had it), and StopServiceDeployment without the
/// service, each found in exactly that statement.
#[test]
fn the_judgement_finds_the_grants_an_account_refuses() {
    let text = template_text();
    let scoped = text.replacen(
        "                  - codedeploy:StopDeployment\n                Resource: \"*\"",
        "                  - codedeploy:StopDeployment\n                Resource: !Sub \"arn:${AWS::Partition}:codedeploy:${AWS::Region}:${AWS::AccountId}:deploymentgroup:*\"",
        1,
    );
    assert_ne!(scoped, text, "the hook's AnswerCodeDeploy statement moved");
    let scoped = scoped.replacen(
        "              Action: [ecs:StopServiceDeployment]\n              Resource:\n                - !Sub \"arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:service/*\"\n",
        "              Action: [ecs:StopServiceDeployment]\n              Resource:\n",
        1,
    );
    let grants = Template::parse(&scoped).unwrap().grants().unwrap();
    let problems = judge(&grants, Reference::bundled());
    let found: BTreeSet<(String, String)> = problems
        .iter()
        .map(|p| (p.statement.clone(), p.action.clone()))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        (
            "HookRole, statement AnswerCodeDeploy",
            "codedeploy:PutLifecycleEventHookExecutionStatus",
        ),
        (
            "HookRole, statement AnswerCodeDeploy",
            "codedeploy:ListDeploymentTargets",
        ),
        (
            "HookRole, statement AnswerCodeDeploy",
            "codedeploy:GetDeploymentTarget",
        ),
        (
            "HookRole, statement AnswerCodeDeploy",
            "codedeploy:StopDeployment",
        ),
        (
            "DeployOnPushFunction, statement EcsNativeStop",
            "ecs:StopServiceDeployment",
        ),
    ]
    .into_iter()
    .map(|(s, a)| (s.to_string(), a.to_string()))
    .collect();
    assert_eq!(found, expected, "{problems:#?}");
    assert!(problems.iter().all(|p| p.problem.contains("implicit deny")
        || p.problem.contains("requires the service resource")));
}

/// A statement the judgement cannot read is an error naming it, never a pass.
#[test]
fn an_unreadable_template_is_an_error_naming_the_statement() {
    let text = template_text().replacen(
        "Sid: ReadServices\n              Effect: Allow",
        "Sid: ReadServices\n              Effect: Permit",
        1,
    );
    let error = Template::parse(&text).unwrap().grants().unwrap_err();
    assert_eq!(
        error.to_string(),
        "DeployOnPushFunction, statement ReadServices: Effect must be Allow or Deny, not Permit"
    );
    let text = template_text().replacen(
        "Action: [ecs:DescribeServices]",
        "Action: [ecs:DescribeServicez]",
        1,
    );
    let grants = Template::parse(&text).unwrap().grants().unwrap();
    let problems = judge(&grants, Reference::bundled());
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(
        problems[0].statement,
        "DeployOnPushFunction, statement ReadServices"
    );
    assert!(problems[0]
        .problem
        .starts_with("ecs:DescribeServicez is no action"));
}

#[test]
fn each_role_grants_exactly_what_its_code_calls() {
    let code: HashMap<&str, &[&str]> = HashMap::from([
        ("deploy-on-push", deploy_on_push::IAM_ACTIONS),
        ("lifecycle-hook", lifecycle_hook::IAM_ACTIONS),
        ("alarm-rollback", alarm_rollback::IAM_ACTIONS),
    ]);
    let t = template();
    for (function, granted) in granted_actions(&template_text()) {
        let binary = binary_of(&t, &function);
        let granted: BTreeSet<String> = granted
            .into_iter()
            .filter(|a| !INFRASTRUCTURE.contains(&a.as_str()))
            .collect();
        let called: BTreeSet<String> = code[binary.as_str()]
            .iter()
            .map(|a| a.to_string())
            .collect();
        let missing: Vec<_> = called.difference(&granted).collect();
        let extra: Vec<_> = granted.difference(&called).collect();
        assert!(
            missing.is_empty(),
            "{function} ({binary}) calls but is not granted: {missing:?}"
        );
        assert!(
            extra.is_empty(),
            "{function} ({binary}) is granted but never calls: {extra:?}"
        );
    }
    assert!(
        lifecycle_hook::IAM_ACTIONS.contains(&"codedeploy:PutLifecycleEventHookExecutionStatus")
    );
}

#[test]
fn example_templates_reference_only_what_they_define() {
    let dir = workspace_root().join("examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let relative = format!("examples/{}", path.file_name().unwrap().to_string_lossy());
        let problems = check_references(&template_at(&relative));
        assert!(problems.is_empty(), "{relative}: {problems:#?}");
        checked += 1;
    }
    assert!(checked >= 1);
}

/// `cargo lambda build --release` adds `panic = "abort"` unless the profile says
/// otherwise; with abort, a panic in the hook kills the process before it can answer
/// CodeDeploy. The deployed artifact must unwind.
#[test]
fn the_release_profile_unwinds_so_the_hook_can_answer_after_a_panic() {
    let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
    let release = manifest
        .split("[profile.release]")
        .nth(1)
        .expect("a [profile.release] section");
    let release = release.split("\n[").next().unwrap();
    assert!(
        release.lines().any(|l| l.trim() == "panic = \"unwind\""),
        "[profile.release] must set panic = \"unwind\":\n{release}"
    );
}

#[test]
fn the_ecs_native_hook_is_invoked_by_ecs_through_its_own_role() {
    let t = template();
    let resources = &t["Resources"];
    let hook = &resources["HookEcsNative"]["Properties"];
    assert_eq!(binary_of(&t, "HookEcsNative"), "lifecycle-hook");
    assert!(
        hook["Environment"]["Variables"]["GREENLIGHT_HOOK"].is_null(),
        "ECS-native payloads name their stage: no GREENLIGHT_HOOK"
    );
    let role = &resources["EcsHookInvokeRole"]["Properties"];
    let trust = &role["AssumeRolePolicyDocument"]["Statement"][0];
    assert_eq!(trust["Principal"]["Service"], "ecs.amazonaws.com");
    let statement = &role["Policies"][0]["PolicyDocument"]["Statement"][0];
    assert_eq!(statement["Action"][0], "lambda:InvokeFunction");
    let Value::Tagged(target) = &statement["Resource"] else {
        panic!("the invoke permission must name the hook function")
    };
    assert_eq!(target.value.as_str(), Some("HookEcsNative.Arn"));
    // deploy-on-push hears ECS-native deployments end.
    let events = &resources["DeployOnPushFunction"]["Properties"]["Events"];
    assert_eq!(
        events["EcsDeploymentStateChanged"]["Properties"]["Pattern"]["detail-type"][0],
        "ECS Deployment State Change"
    );
}

/// The configuration each example stack outputs is a valid Greenlight document, and
/// the ECS-native one wires the service Greenlight's config names to the hook.
#[test]
fn the_examples_output_valid_greenlight_configurations() {
    for (file, path) in [
        (
            "examples/demo-environment.yaml",
            greenlight::config::DeploymentPath::CodeDeploy,
        ),
        (
            "examples/ecs-native-environment.yaml",
            greenlight::config::DeploymentPath::EcsNative,
        ),
    ] {
        let t = template_at(file);
        let Value::Tagged(sub) = &t["Outputs"]["GreenlightConfig"]["Value"] else {
            panic!("{file}: GreenlightConfig must be a !Sub")
        };
        let mut text = sub.value.as_str().unwrap().to_string();
        for name in sub_names(&text) {
            text = text.replace(&format!("${{{name}}}"), "example");
        }
        let config = greenlight::Config::parse(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(config.services[0].path(), path, "{file}");
    }
    let t = template_at("examples/ecs-native-environment.yaml");
    let service = &t["Resources"]["Service"]["Properties"];
    assert_eq!(service["DeploymentController"]["Type"], "ECS");
    let hook = &service["DeploymentConfiguration"]["LifecycleHooks"][0];
    let Value::Tagged(target) = &hook["HookTargetArn"] else {
        panic!("HookTargetArn must reference the Greenlight hook")
    };
    assert_eq!(target.value.as_str(), Some("GreenlightHookArn"));
    let advanced = &service["LoadBalancers"][0]["AdvancedConfiguration"];
    assert!(
        !advanced["TestListenerRule"].is_null() && !advanced["ProductionListenerRule"].is_null()
    );
}

/// In a VPC without NAT a hook reaches only what has an endpoint: every service its
/// code calls (`IAM_ACTIONS`) gets one from CreateVpcEndpoints (S3 as a gateway).
#[test]
fn every_service_the_hooks_call_has_a_vpc_endpoint() {
    let t = template();
    let mut endpoints = BTreeSet::new();
    for (id, resource) in t["Resources"].as_mapping().unwrap() {
        if resource["Type"].as_str() != Some("AWS::EC2::VPCEndpoint") {
            continue;
        }
        let Value::Tagged(name) = &resource["Properties"]["ServiceName"] else {
            panic!("{id:?}: ServiceName must be a !Sub with the region")
        };
        let service = name
            .value
            .as_str()
            .unwrap()
            .rsplit('.')
            .next()
            .unwrap()
            .to_string();
        let kind = resource["Properties"]["VpcEndpointType"].as_str().unwrap();
        assert_eq!(
            kind,
            if service == "s3" || service == "dynamodb" {
                "Gateway"
            } else {
                "Interface"
            },
            "{id:?}"
        );
        endpoints.insert(service);
    }
    let called: BTreeSet<String> = lifecycle_hook::IAM_ACTIONS
        .iter()
        .map(|a| a.split(':').next().unwrap())
        // CloudWatch's API endpoint is `monitoring`.
        .map(|p| if p == "cloudwatch" { "monitoring" } else { p }.to_string())
        .collect();
    let missing: Vec<_> = called.difference(&endpoints).collect();
    assert!(missing.is_empty(), "no VPC endpoint for {missing:?}");
}

/// Parameters that only work together are template rules, so CloudFormation refuses
/// the stack up front with the reason (not later, on an empty `!Select`).
#[test]
fn subnets_without_security_groups_are_refused_by_a_rule() {
    let t = template();
    let rule = &t["Rules"]["SecurityGroupsWithSubnets"];
    let text = serde_yaml_ng::to_string(rule).unwrap();
    assert!(text.contains("SubnetIds"), "{text}");
    assert!(
        text.contains("SecurityGroupIds") && text.contains("EachMemberEquals"),
        "{text}"
    );
    assert!(rule["Assertions"][0]["AssertDescription"]
        .as_str()
        .unwrap()
        .contains("SubnetIds needs SecurityGroupIds"));
}

/// A new account's concurrency quota is 10 and Lambda keeps 100 unreserved, so any
/// reserved concurrency fails stack creation there: it is optional, unset by default.
#[test]
fn reserved_concurrency_is_optional_and_unset_by_default() {
    let t = template();
    assert_eq!(
        t["Parameters"]["DeployOnPushReservedConcurrency"]["Default"].as_str(),
        Some("")
    );
    for (id, resource) in t["Resources"].as_mapping().unwrap() {
        let reserved = &resource["Properties"]["ReservedConcurrentExecutions"];
        if reserved.is_null() {
            continue;
        }
        let Value::Tagged(tagged) = reserved else {
            panic!("{id:?}: a fixed ReservedConcurrentExecutions fails in new accounts")
        };
        assert_eq!(tagged.tag, "If", "{id:?}");
        assert_eq!(tagged.value[0].as_str(), Some("HasReservedConcurrency"));
    }
}

/// The ledger the template creates is the one the code writes and the emulator's
/// copy mirrors: its keys, its index, its TTL attribute, and every function told its
/// name.
#[test]
fn the_ledger_table_is_the_one_the_code_writes() {
    let t = template();
    let table = &t["Resources"]["LedgerTable"]["Properties"];
    let attribute = |a: &Value| {
        (
            a["AttributeName"].as_str().unwrap().to_string(),
            a["AttributeType"].as_str().unwrap().to_string(),
        )
    };
    let defined: BTreeSet<(String, String)> = table["AttributeDefinitions"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(attribute)
        .collect();
    let expected: BTreeSet<(String, String)> = greenlight_cli::ledger_table::KEYS
        .iter()
        .map(|(n, k)| (n.to_string(), k.to_string()))
        .collect();
    assert_eq!(defined, expected);
    let keys = |schema: &Value| -> Vec<String> {
        schema
            .as_sequence()
            .unwrap()
            .iter()
            .map(|k| {
                format!(
                    "{}:{}",
                    k["AttributeName"].as_str().unwrap(),
                    k["KeyType"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert_eq!(
        keys(&table["KeySchema"]),
        ["service:HASH", "deployment_id:RANGE"]
    );
    let index = &table["LocalSecondaryIndexes"][0];
    assert_eq!(
        index["IndexName"].as_str(),
        Some(greenlight::ledger::INDEX_BY_START)
    );
    assert_eq!(
        keys(&index["KeySchema"]),
        ["service:HASH", "started_at:RANGE"]
    );
    assert_eq!(
        table["TimeToLiveSpecification"]["AttributeName"].as_str(),
        Some("expires_at")
    );
    assert_eq!(table["BillingMode"].as_str(), Some("PAY_PER_REQUEST"));
    assert_eq!(
        table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
        Some(true)
    );
    let env = &t["Globals"]["Function"]["Environment"]["Variables"];
    let Value::Tagged(reference) = &env[greenlight::ledger::ENV_LEDGER_TABLE] else {
        panic!(
            "{} must be !Ref LedgerTable",
            greenlight::ledger::ENV_LEDGER_TABLE
        )
    };
    assert_eq!(reference.value.as_str(), Some("LedgerTable"));
}
