//! The ECS-native path's set-up: blue/green strategy, listener rules, and the
//! service's Lambda lifecycle hooks at the stages Greenlight checks.

use greenlight::config::EcsNativeTarget;
use greenlight::LifecycleEvent;

use super::hook::{check_hook_function, check_test_listener_exposure};
use super::{Run, Severity};

pub(super) async fn check_lifecycle_hooks(
    run: &mut Run<'_>,
    service: &aws_sdk_ecs::types::Service,
    native: &EcsNativeTarget,
) {
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
        check_hook_function(
            run,
            function,
            stage,
            hook.role_arn().map(str::to_string),
            false,
        )
        .await;
    }
}
