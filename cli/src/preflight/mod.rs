//! `greenlight preflight`: what makes deployments fail at 3 a.m., checked service by
//! service before it does. Every finding says what is wrong and how to fix it. IAM
//! questions are answered with IAM's policy simulator (SimulatePrincipalPolicy) where
//! AWS offers it; where it cannot decide (the simulator is unavailable, or the role
//! cannot be read), the finding says "undecided" instead of guessing.
//! Exit 0: no errors (warnings and undecided findings are listed); 1: errors.

mod codedeploy;
mod ecs_native;
mod hook;

use std::process::ExitCode;

use greenlight::config::ServiceConfig;
use greenlight::deploy::Requirement;
use greenlight::Config;
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
            // The seam says what the service's path needs; each is checked here.
            for requirement in greenlight::deploy::requirements(service) {
                match requirement {
                    Requirement::Controller(wanted) => {
                        if !check_controller(&mut run, &ecs_service, wanted) {
                            break;
                        }
                    }
                    Requirement::DeploymentGroup(target) => {
                        codedeploy::check_deployment_group(&mut run, target).await
                    }
                    Requirement::LifecycleHooks(target) => {
                        ecs_native::check_lifecycle_hooks(&mut run, &ecs_service, target).await
                    }
                }
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
    Some(service)
}

/// Whether the ECS service's deployment controller is the one the path needs.
fn check_controller(
    run: &mut Run<'_>,
    service: &aws_sdk_ecs::types::Service,
    wanted: &str,
) -> bool {
    let (cluster, name) = (run.service.cluster.clone(), run.service.service.clone());
    let controller = service
        .deployment_controller()
        .map(|c| c.r#type().as_str().to_string())
        .unwrap_or_else(|| "ECS".into());
    {
        if controller != wanted {
            run.find(
                Severity::Error,
                "deployment-controller",
                format!("{cluster}/{name} has deployment controller {controller}, but the configuration deploys it through {}", if wanted == "ECS" { "ECS-native blue/green (ecs_native:)" } else { "CodeDeploy (codedeploy:)" }),
                if wanted == "ECS" { "recreate the service with deploymentController ECS, or configure codedeploy: for it" } else { "recreate the service with deploymentController CODE_DEPLOY, or configure ecs_native: for it" },
            );
            return false;
        }
    }
    true
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
