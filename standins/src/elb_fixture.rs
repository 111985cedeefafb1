//! The ELBv2 side of a blue/green service, made in the emulator through the real SDK:
//! one load balancer, a blue and a green target group, a production listener (port 80)
//! and a test listener (port 8080), each with one path rule forwarding to blue. The
//! shape ECS-native's `advancedConfiguration` (listener rules) and CodeDeploy's
//! `targetGroupPairInfoList` (listeners) name. Used by the rehearsal and the tests.

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, LoadBalancerSchemeEnum, ProtocolEnum, RuleCondition, TargetTypeEnum,
};
use aws_sdk_elasticloadbalancingv2::Client;

/// What was created: ARNs.
#[derive(Debug, Clone)]
pub struct BlueGreenElb {
    pub load_balancer: String,
    pub blue: String,
    pub green: String,
    pub production_listener: String,
    pub test_listener: String,
    pub production_rule: String,
    pub test_rule: String,
}

fn failed<E: std::fmt::Debug>(operation: &'static str) -> impl Fn(E) -> String {
    move |e| format!("ELBv2 {operation}: {e:?}")
}

/// Creates the load balancer `name` (target groups `{name}-blue`, `{name}-green`) in
/// `subnets`, with `scheme`.
pub async fn create(
    elb: &Client,
    name: &str,
    scheme: LoadBalancerSchemeEnum,
    subnets: Vec<String>,
) -> Result<BlueGreenElb, String> {
    let lb = elb
        .create_load_balancer()
        .name(name)
        .scheme(scheme)
        .set_subnets(Some(subnets))
        .send()
        .await
        .map_err(failed("CreateLoadBalancer"))?
        .load_balancers
        .unwrap_or_default()
        .into_iter()
        .next()
        .ok_or("ELBv2 CreateLoadBalancer: no load balancer in the answer")?;
    let lb_arn = lb.load_balancer_arn().unwrap_or_default().to_string();
    let mut groups = Vec::new();
    for color in ["blue", "green"] {
        let tg = elb
            .create_target_group()
            .name(format!("{name}-{color}"))
            .protocol(ProtocolEnum::Http)
            .port(8080)
            .set_vpc_id(lb.vpc_id().map(str::to_string))
            .target_type(TargetTypeEnum::Ip)
            .send()
            .await
            .map_err(failed("CreateTargetGroup"))?
            .target_groups
            .unwrap_or_default()
            .into_iter()
            .next()
            .and_then(|t| t.target_group_arn)
            .ok_or("ELBv2 CreateTargetGroup: no target group in the answer")?;
        groups.push(tg);
    }
    let forward_blue = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(&groups[0])
        .build();
    let mut listeners = Vec::new();
    let mut rules = Vec::new();
    for port in [80, 8080] {
        let listener = elb
            .create_listener()
            .load_balancer_arn(&lb_arn)
            .protocol(ProtocolEnum::Http)
            .port(port)
            .default_actions(forward_blue.clone())
            .send()
            .await
            .map_err(failed("CreateListener"))?
            .listeners
            .unwrap_or_default()
            .into_iter()
            .next()
            .and_then(|l| l.listener_arn)
            .ok_or("ELBv2 CreateListener: no listener in the answer")?;
        let rule = elb
            .create_rule()
            .listener_arn(&listener)
            .priority(1)
            .conditions(
                RuleCondition::builder()
                    .field("path-pattern")
                    .values("/*")
                    .build(),
            )
            .actions(forward_blue.clone())
            .send()
            .await
            .map_err(failed("CreateRule"))?
            .rules
            .unwrap_or_default()
            .into_iter()
            .next()
            .and_then(|r| r.rule_arn)
            .ok_or("ELBv2 CreateRule: no rule in the answer")?;
        listeners.push(listener);
        rules.push(rule);
    }
    Ok(BlueGreenElb {
        load_balancer: lb_arn,
        blue: groups[0].clone(),
        green: groups[1].clone(),
        production_listener: listeners[0].clone(),
        test_listener: listeners[1].clone(),
        production_rule: rules[0].clone(),
        test_rule: rules[1].clone(),
    })
}
