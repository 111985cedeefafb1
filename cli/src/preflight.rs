//! `greenlight preflight`: what makes deployments fail at 3 a.m., checked service by
//! service before it does. Every finding says what is wrong and how to fix it. IAM
//! questions are answered with IAM's policy simulator (SimulatePrincipalPolicy) where
//! AWS offers it; where it cannot decide (the simulator is unavailable, or the role
//! cannot be read), the finding says "undecided" instead of guessing.
//! Exit 0: no errors (warnings and undecided findings are listed); 1: errors.

use std::process::ExitCode;

use greenlight::config::{DeployTarget, ServiceConfig};
use greenlight::{Config, LifecycleEvent};
use serde_json::Value;

#[derive(Debug, clap::Args)]
pub struct Options {
    #[command(flatten)]
    pub source: crate::operate::Source,
    /// The hook function the CodeDeploy AppSpecs name; default GREENLIGHT_HOOK_FUNCTION,
    /// else the template's `CodeDeployHook_greenlight-{event}`.
    #[arg(long)]
    pub hook_function: Option<String>,
    #[arg(long)]
    pub json: bool,
    /// Judge the IAM policies of this CloudFormation / SAM template offline, against
    /// AWS's Service Authorization Reference (no AWS call). The account checks run too
    /// when a configuration is named (--config or the GREENLIGHT_CONFIG* variables).
    #[arg(long, value_name = "FILE")]
    pub template: Option<std::path::PathBuf>,
    /// A template parameter's value for the judgement (NAME=VALUE, a,b for a list);
    /// repeatable. Unset parameters take their default, else a sample of their shape.
    #[arg(long = "parameter", value_name = "NAME=VALUE", requires = "template")]
    pub parameters: Vec<String>,
    /// Also hold every call the functions made, as recorded by the stand-ins
    /// (GREENLIGHT_STANDIN_TRAFFIC_DIR, in a rehearsal), against their roles in the
    /// template: a call no statement allows is an error.
    #[arg(long, value_name = "DIR", requires = "template")]
    pub calls: Option<std::path::PathBuf>,
}

pub use crate::finding::{Finding, Severity};

struct Clients {
    ecs: aws_sdk_ecs::Client,
    codedeploy: aws_sdk_codedeploy::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
    lambda: aws_sdk_lambda::Client,
    iam: aws_sdk_iam::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    ecr: aws_sdk_ecr::Client,
    events: aws_sdk_eventbridge::Client,
}

struct Run<'a> {
    clients: &'a Clients,
    service: &'a ServiceConfig,
    hook_pattern: String,
    findings: Vec<Finding>,
}

impl Run<'_> {
    fn find(
        &mut self,
        severity: Severity,
        check: &'static str,
        problem: String,
        fix: impl Into<String>,
    ) {
        self.findings.push(Finding {
            service: self.service.name.clone(),
            severity,
            check,
            problem,
            fix: fix.into(),
        });
    }
}

pub fn run(options: Options) -> ExitCode {
    let Some(runtime) = crate::runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(preflight(&options)) {
        Ok(findings) => {
            if options.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&findings).unwrap_or_default()
                );
            } else {
                for f in &findings {
                    let label = match f.severity {
                        Severity::Error => "ERROR",
                        Severity::Warning => "warning",
                        Severity::Undecided => "undecided",
                    };
                    println!(
                        "{}: {label} [{}] {}\n    fix: {}",
                        f.service, f.check, f.problem, f.fix
                    );
                }
                let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
                println!(
                    "preflight: {} error(s), {} warning(s), {} undecided",
                    count(Severity::Error),
                    count(Severity::Warning),
                    count(Severity::Undecided)
                );
            }
            if findings.iter().any(|f| f.severity == Severity::Error) {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("greenlight preflight: {e}");
            ExitCode::FAILURE
        }
    }
}

pub async fn preflight(options: &Options) -> Result<Vec<Finding>, String> {
    let mut findings = match &options.template {
        Some(path) => {
            crate::template_check::judge(path, &options.parameters, options.calls.as_deref())?
        }
        None => Vec::new(),
    };
    let configured = options.source.config.is_some()
        || [
            greenlight::config::ENV_CONFIG,
            greenlight::config::ENV_CONFIG_FILE,
            greenlight::config_source::ENV_CONFIG_SSM,
            greenlight::config_source::ENV_CONFIG_S3,
        ]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
    if options.template.is_some() && !configured {
        return Ok(findings);
    }
    findings.extend(account_checks(options).await?);
    Ok(findings)
}

async fn account_checks(options: &Options) -> Result<Vec<Finding>, String> {
    let sdk = greenlight::aws::load_sdk_config()
        .await
        .map_err(|e| e.to_string())?;
    let config: Config = options.source.load(&sdk).await?;
    let clients = Clients {
        ecs: aws_sdk_ecs::Client::new(&sdk),
        codedeploy: aws_sdk_codedeploy::Client::new(&sdk),
        elb: aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
        lambda: aws_sdk_lambda::Client::new(&sdk),
        iam: aws_sdk_iam::Client::new(&sdk),
        cloudwatch: aws_sdk_cloudwatch::Client::new(&sdk),
        ecr: aws_sdk_ecr::Client::new(&sdk),
        events: aws_sdk_eventbridge::Client::new(&sdk),
    };
    let hook_pattern = options
        .hook_function
        .clone()
        .or_else(|| std::env::var("GREENLIGHT_HOOK_FUNCTION").ok())
        .unwrap_or_else(|| "CodeDeployHook_greenlight-{event}".into());
    let ecr_patterns = ecr_rule_patterns(&clients).await;
    let mut findings = Vec::new();
    // On a terminal (and not --json), a progress line on stderr: an account of hundreds
    // of services takes a while.
    let show_progress = !options.json && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let total = config.services.len();
    for (n, service) in config.services.iter().enumerate() {
        if show_progress {
            eprint!("\r\x1b[Kpreflight: {}/{total} {}", n + 1, service.name);
        }
        let mut run = Run {
            clients: &clients,
            service,
            hook_pattern: hook_pattern.clone(),
            findings: Vec::new(),
        };
        check_repository(&mut run, &ecr_patterns).await;
        check_alarms(&mut run).await;
        if let Some(ecs_service) = check_ecs_service(&mut run).await {
            match &service.target {
                DeployTarget::CodeDeploy(_) => check_codedeploy(&mut run).await,
                DeployTarget::EcsNative(_) => check_ecs_native(&mut run, &ecs_service).await,
                DeployTarget::Pipeline(_) => {}
            }
        }
        findings.extend(run.findings);
    }
    if show_progress {
        eprint!("\r\x1b[K");
    }
    Ok(findings)
}

/// Enabled EventBridge rules that match ECR pushes: their parsed patterns.
async fn ecr_rule_patterns(clients: &Clients) -> Result<Vec<Value>, String> {
    let mut patterns = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = clients
            .events
            .list_rules()
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| format!("EventBridge ListRules: {e:?}"))?;
        for rule in page.rules() {
            if rule.state().map(|s| s.as_str()) != Some("ENABLED") {
                continue;
            }
            let Some(pattern) = rule
                .event_pattern()
                .and_then(|p| serde_json::from_str::<Value>(p).ok())
            else {
                continue;
            };
            if pattern["source"]
                .as_array()
                .is_some_and(|s| s.iter().any(|v| v == "aws.ecr"))
            {
                patterns.push(pattern);
            }
        }
        match page.next_token {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(patterns),
        }
    }
}

/// Whether a rule's `detail.repository-name` admits `repository` (no filter admits all).
fn pattern_admits(pattern: &Value, repository: &str) -> bool {
    match pattern["detail"]["repository-name"].as_array() {
        None => true,
        Some(values) => values.iter().any(|v| match v {
            Value::String(s) => s == repository,
            Value::Object(o) => o
                .get("prefix")
                .and_then(Value::as_str)
                .is_some_and(|p| repository.starts_with(p)),
            _ => false,
        }),
    }
}

async fn check_repository(run: &mut Run<'_>, patterns: &Result<Vec<Value>, String>) {
    let repository = run.service.repository.clone();
    let found = run
        .clients
        .ecr
        .describe_repositories()
        .repository_names(&repository)
        .send()
        .await;
    if let Err(e) = found {
        let missing = e
            .as_service_error()
            .is_some_and(|s| s.is_repository_not_found_exception());
        if missing {
            run.find(
                Severity::Error,
                "ecr-repository",
                format!("ECR repository {repository} does not exist: no push will ever deploy this service"),
                format!("create the repository, or fix services[].repository of {}", run.service.name),
            );
        } else {
            run.find(
                Severity::Undecided,
                "ecr-repository",
                format!("ECR DescribeRepositories failed: {e:?}"),
                "grant ecr:DescribeRepositories to whoever runs preflight",
            );
        }
        return;
    }
    match patterns {
        Ok(patterns) if patterns.iter().any(|p| pattern_admits(p, &repository)) => {}
        Ok(_) => run.find(
            Severity::Error,
            "eventbridge-rule",
            format!("no enabled EventBridge rule sends ECR pushes of {repository} to Greenlight"),
            format!("add {repository} to the template's RepositoryNames parameter and deploy it"),
        ),
        Err(e) => run.find(
            Severity::Undecided,
            "eventbridge-rule",
            e.clone(),
            "grant events:ListRules to whoever runs preflight",
        ),
    }
}

async fn check_alarms(run: &mut Run<'_>) {
    if run.service.alarms.is_empty() {
        return;
    }
    let answer = run
        .clients
        .cloudwatch
        .describe_alarms()
        .set_alarm_names(Some(run.service.alarms.clone()))
        .send()
        .await;
    match answer {
        Ok(out) => {
            let found: Vec<String> = out
                .metric_alarms()
                .iter()
                .filter_map(|a| a.alarm_name().map(str::to_string))
                .chain(
                    out.composite_alarms()
                        .iter()
                        .filter_map(|a| a.alarm_name().map(str::to_string)),
                )
                .collect();
            for alarm in run.service.alarms.clone() {
                if !found.contains(&alarm) {
                    run.find(
                        Severity::Error,
                        "alarm",
                        format!("alarm {alarm} does not exist: it will never stop a deployment"),
                        format!(
                            "create the alarm, or remove it from services[].alarms of {}",
                            run.service.name
                        ),
                    );
                }
            }
        }
        Err(e) => run.find(
            Severity::Undecided,
            "alarm",
            format!("CloudWatch DescribeAlarms failed: {e:?}"),
            "grant cloudwatch:DescribeAlarms to whoever runs preflight",
        ),
    }
}

async fn check_ecs_service(run: &mut Run<'_>) -> Option<aws_sdk_ecs::types::Service> {
    let (cluster, name) = (run.service.cluster.clone(), run.service.service.clone());
    let answer = run
        .clients
        .ecs
        .describe_services()
        .cluster(&cluster)
        .services(&name)
        .send()
        .await;
    let service = match answer {
        Ok(out) => out
            .services
            .unwrap_or_default()
            .into_iter()
            .find(|s| s.status() != Some("INACTIVE")),
        Err(e) => {
            run.find(
                Severity::Error,
                "ecs-service",
                format!(
                    "ECS DescribeServices {cluster}/{name} failed: {}",
                    greenlight::aws::AwsError::from_sdk("ECS", "DescribeServices", e)
                ),
                "check the cluster name in services[].cluster",
            );
            return None;
        }
    };
    let Some(service) = service else {
        run.find(
            Severity::Error,
            "ecs-service",
            format!("service {name} not found in cluster {cluster}"),
            "fix services[].cluster / services[].service, or create the service",
        );
        return None;
    };
    let controller = service
        .deployment_controller()
        .map(|c| c.r#type().as_str().to_string())
        .unwrap_or_else(|| "ECS".into());
    let wanted = match &run.service.target {
        DeployTarget::CodeDeploy(_) => Some("CODE_DEPLOY"),
        DeployTarget::EcsNative(_) => Some("ECS"),
        DeployTarget::Pipeline(_) => None,
    };
    if let Some(wanted) = wanted {
        if controller != wanted {
            run.find(
                Severity::Error,
                "deployment-controller",
                format!("{cluster}/{name} has deployment controller {controller}, but the configuration deploys it through {}", if wanted == "ECS" { "ECS-native blue/green (ecs_native:)" } else { "CodeDeploy (codedeploy:)" }),
                if wanted == "ECS" { "recreate the service with deploymentController ECS, or configure codedeploy: for it" } else { "recreate the service with deploymentController CODE_DEPLOY, or configure ecs_native: for it" },
            );
            return None;
        }
    }
    Some(service)
}

async fn check_codedeploy(run: &mut Run<'_>) {
    let Some(cd) = run.service.codedeploy().cloned() else {
        return;
    };
    let group = run
        .clients
        .codedeploy
        .get_deployment_group()
        .application_name(&cd.application)
        .deployment_group_name(&cd.deployment_group)
        .send()
        .await;
    let info = match group {
        Ok(out) => out.deployment_group_info,
        Err(e) => {
            run.find(
                Severity::Error,
                "codedeploy-group",
                format!(
                    "deployment group {}/{} cannot be read: {}",
                    cd.application,
                    cd.deployment_group,
                    greenlight::aws::AwsError::from_sdk("CodeDeploy", "GetDeploymentGroup", e)
                ),
                "fix codedeploy.application / deployment_group, or create the group",
            );
            return;
        }
    };
    let Some(info) = info else { return };
    let names_service = info.ecs_services().iter().any(|s| {
        s.service_name() == Some(run.service.service.as_str())
            && s.cluster_name().is_some_and(|c| {
                c == run.service.cluster || c.ends_with(&format!("/{}", run.service.cluster))
            })
    });
    if !names_service {
        run.find(
            Severity::Error,
            "codedeploy-group",
            format!("deployment group {}/{} does not deploy {}/{}", cd.application, cd.deployment_group, run.service.cluster, run.service.service),
            "point the group's ecsServices at the configured cluster and service (or fix the configuration)",
        );
    }
    let test_listeners: Vec<String> = info
        .load_balancer_info()
        .map(|lb| lb.target_group_pair_info_list().to_vec())
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.test_traffic_route().map(|r| r.listener_arns().to_vec()))
        .flatten()
        .collect();
    if test_listeners.is_empty() {
        run.find(Severity::Error, "test-listener", format!("deployment group {}/{} has no test listener: smoke checks have nothing to reach before production moves", cd.application, cd.deployment_group), "add a testTrafficRoute to the group's targetGroupPairInfoList");
    }
    for listener in test_listeners {
        check_test_listener_exposure(run, &listener).await;
    }
    for event in cd.hooks.clone() {
        let function = greenlight::deploy::hook_function(&run.hook_pattern, event);
        check_hook_function(
            run,
            &function,
            event,
            info.service_role_arn().map(str::to_string),
        )
        .await;
    }
}

async fn check_hook_function(
    run: &mut Run<'_>,
    function: &str,
    event: LifecycleEvent,
    caller_role: Option<String>,
) {
    let found = run
        .clients
        .lambda
        .get_function()
        .function_name(function)
        .send()
        .await;
    let config = match found {
        Ok(out) => out.configuration,
        Err(e) => {
            let missing = e
                .as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception());
            run.find(
                if missing { Severity::Error } else { Severity::Undecided },
                "hook-function",
                if missing {
                    format!("hook function {function} ({event}) does not exist: the engine will wait for an answer that never comes (CodeDeploy: up to an hour), then fail")
                } else {
                    format!("Lambda GetFunction {function} failed: {e:?}")
                },
                "deploy Greenlight's template (HookFunctionPrefix) or pass --hook-function with the pattern your AppSpec uses",
            );
            return;
        }
    };
    let Some(config) = config else { return };
    let function_arn = config.function_arn().unwrap_or(function).to_string();
    if let (Some(role), true) = (
        config.role(),
        matches!(run.service.target, DeployTarget::CodeDeploy(_)),
    ) {
        simulate(run, role, "codedeploy:PutLifecycleEventHookExecutionStatus", "*", "hook-role",
            format!("the hook's role {role} may not call codedeploy:PutLifecycleEventHookExecutionStatus: every deployment would hang an hour at {event}"),
            "grant codedeploy:PutLifecycleEventHookExecutionStatus to the hook's role (the template's HookRole does)").await;
    }
    if let Some(caller) = caller_role {
        simulate(
            run,
            &caller,
            "lambda:InvokeFunction",
            &function_arn,
            "invoke-role",
            format!("{caller} may not invoke {function}: the engine cannot run the {event} hook"),
            "grant lambda:InvokeFunction on the hook function to that role",
        )
        .await;
    }
}

/// The test listener serves green before anyone has judged it: it must exist and not
/// face the internet. Its load balancer's scheme is read; its security groups are not
/// (that needs EC2), so an internet-facing one is a warning that says what to verify.
async fn check_test_listener_exposure(run: &mut Run<'_>, listener: &str) {
    let found = run
        .clients
        .elb
        .describe_listeners()
        .listener_arns(listener)
        .send()
        .await;
    let lb = match found {
        Ok(out) => out
            .listeners()
            .first()
            .and_then(|l| l.load_balancer_arn().map(str::to_string)),
        Err(_) => {
            run.find(
                Severity::Error,
                "test-listener",
                format!("the test listener {listener} does not exist"),
                "create it, or point the deployment configuration at the right one",
            );
            return;
        }
    };
    let Some(lb) = lb else { return };
    let scheme = run
        .clients
        .elb
        .describe_load_balancers()
        .load_balancer_arns(&lb)
        .send()
        .await
        .ok()
        .and_then(|o| {
            o.load_balancers()
                .first()
                .and_then(|l| l.scheme().map(|s| s.as_str().to_string()))
        });
    if scheme.as_deref() == Some("internet-facing") {
        run.find(
            Severity::Warning,
            "test-listener",
            format!("the test listener {listener} is on an internet-facing load balancer: unless its security group closes the test port, anyone can reach green before it is judged (preflight does not read security groups)"),
            "allow the test listener's port only from your network (and Greenlight's hooks) in the load balancer's security group, or use an internal load balancer",
        );
    }
}

/// IAM's policy simulator: denied is an error; unavailable is undecided, said so.
#[allow(clippy::too_many_arguments)]
async fn simulate(
    run: &mut Run<'_>,
    role: &str,
    action: &str,
    resource: &str,
    check: &'static str,
    problem: String,
    fix: &str,
) {
    use greenlight_cli::iam::Simulated;
    match greenlight_cli::iam::simulate(&run.clients.iam, role, action, resource).await {
        Simulated::Allowed => {}
        Simulated::Denied(decision) => run.find(
            Severity::Error,
            check,
            format!("{problem} (IAM's policy simulator: {decision})"),
            fix,
        ),
        Simulated::Undecided(why) => run.find(
            Severity::Undecided,
            check,
            format!("cannot tell whether {role} may call {action}: {why}"),
            format!("check by hand, or let preflight call iam:SimulatePrincipalPolicy; {fix}"),
        ),
    }
}

async fn check_ecs_native(run: &mut Run<'_>, service: &aws_sdk_ecs::types::Service) {
    let Some(native) = run.service.ecs_native().cloned() else {
        return;
    };
    let config = service.deployment_configuration();
    let strategy = config
        .and_then(|c| c.strategy())
        .map(|s| s.as_str().to_string());
    if !matches!(
        strategy.as_deref(),
        Some("BLUE_GREEN" | "CANARY" | "LINEAR")
    ) {
        run.find(
            Severity::Error,
            "ecs-strategy",
            format!(
                "{}/{} deploys with strategy {}, not blue/green: there is no test traffic to check",
                run.service.cluster,
                run.service.service,
                strategy.unwrap_or_else(|| "ROLLING".into())
            ),
            "set deploymentConfiguration.strategy to BLUE_GREEN, CANARY or LINEAR",
        );
        return;
    }
    let advanced = service
        .load_balancers()
        .iter()
        .find_map(|lb| lb.advanced_configuration().cloned());
    let Some(advanced) = advanced else {
        run.find(Severity::Error, "listener-rules", "the service's load balancer has no advancedConfiguration (test and production listener rules, alternate target group)".into(), "add loadBalancers[].advancedConfiguration as the example stack does");
        return;
    };
    for (which, rule) in [
        ("test", advanced.test_listener_rule()),
        ("production", advanced.production_listener_rule()),
    ] {
        let Some(rule) = rule else {
            run.find(
                Severity::Error,
                "listener-rules",
                format!("no {which} listener rule in advancedConfiguration"),
                format!("set {which}ListenerRule"),
            );
            continue;
        };
        if run
            .clients
            .elb
            .describe_rules()
            .rule_arns(rule)
            .send()
            .await
            .is_err()
        {
            run.find(
                Severity::Error,
                "listener-rules",
                format!("the {which} listener rule {rule} does not exist"),
                "point advancedConfiguration at an existing rule (ECS moves its weights)",
            );
        }
    }
    if let Some(rule) = advanced.test_listener_rule() {
        if let Some(listener) = greenlight::aws::elb::listener_of_rule(rule) {
            check_test_listener_exposure(run, &listener).await;
        }
    }
    let mut wanted: Vec<LifecycleEvent> = native.stages.clone();
    if run.service.analysis.is_some() && !wanted.contains(&LifecycleEvent::ProductionTrafficShift) {
        wanted.push(LifecycleEvent::ProductionTrafficShift);
    }
    let hooks = config
        .map(|c| c.lifecycle_hooks().to_vec())
        .unwrap_or_default();
    let lambda_hooks: Vec<_> = hooks
        .iter()
        .filter(|h| h.target_type().map(|t| t.as_str()) == Some("AWS_LAMBDA"))
        .collect();
    let covered: Vec<String> = lambda_hooks
        .iter()
        .flat_map(|h| h.lifecycle_stages().iter().map(|s| s.as_str().to_string()))
        .collect();
    let missing: Vec<&str> = wanted
        .iter()
        .map(|s| s.ecs_name())
        .filter(|s| !covered.iter().any(|c| c == s))
        .collect();
    if !missing.is_empty() {
        run.find(
            Severity::Error,
            "ecs-hook-stages",
            format!(
                "no Lambda hook of the service runs at {}: Greenlight's checks{} there never run",
                missing.join(", "),
                if missing.contains(&"PRODUCTION_TRAFFIC_SHIFT") {
                    " and analysis"
                } else {
                    ""
                }
            ),
            "add those stages to the Greenlight hook's lifecycleStages",
        );
    }
    for hook in lambda_hooks {
        let Some(function) = hook.hook_target_arn() else {
            continue;
        };
        let stage = hook
            .lifecycle_stages()
            .first()
            .and_then(|s| s.as_str().parse().ok())
            .unwrap_or(LifecycleEvent::AfterAllowTestTraffic);
        check_hook_function(run, function, stage, hook.role_arn().map(str::to_string)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::pattern_admits;
    use serde_json::json;

    #[test]
    fn rule_patterns_admit_listed_or_prefixed_repositories() {
        let any = json!({"source": ["aws.ecr"]});
        assert!(pattern_admits(&any, "web"));
        let listed = json!({"source": ["aws.ecr"], "detail": {"repository-name": ["web", {"prefix": "team-"}]}});
        assert!(pattern_admits(&listed, "web"));
        assert!(pattern_admits(&listed, "team-api"));
        assert!(!pattern_admits(&listed, "api"));
    }
}
