//! ELBv2: turns a listener ARN, or an ECS-native listener rule, into the URL smoke
//! checks aim at (`elasticloadbalancing:DescribeListeners`, `DescribeLoadBalancers`,
//! `DescribeRules`).

use std::future::Future;

use aws_sdk_elasticloadbalancingv2::types::ProtocolEnum;
use aws_sdk_elasticloadbalancingv2::Client;

use super::{retry, AwsError, LazyClient};

const SERVICE: &str = "ELBv2";

pub trait ListenerResolver: Send + Sync {
    /// `http(s)://<load balancer DNS name>:<listener port>` for a listener ARN.
    fn listener_url(
        &self,
        listener_arn: &str,
    ) -> impl Future<Output = Result<String, AwsError>> + Send;

    /// Where a listener rule's traffic can be reached: its listener's URL, and the
    /// request headers its conditions require (ECS-native blue/green moves listener
    /// *rules*, which may match on a header or a host).
    fn rule_target(
        &self,
        rule_arn: &str,
    ) -> impl Future<Output = Result<RuleTarget, AwsError>> + Send {
        let rule_arn = rule_arn.to_string();
        async move {
            Err(AwsError::unexpected(
                SERVICE,
                "DescribeRules",
                format!("this resolver cannot read listener rule {rule_arn}"),
            ))
        }
    }
}

/// A target group as the analysis names it in CloudWatch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetGroupRef {
    pub name: String,
    pub arn: String,
}

/// Where a listener or listener rule forwards, and with what weight
/// (`elasticloadbalancing:DescribeListeners` / `DescribeRules`, forward actions with
/// or without a weighted `ForwardConfig`).
pub trait TrafficReader: Send + Sync {
    fn forwards(
        &self,
        listener_or_rule_arn: &str,
    ) -> impl Future<Output = Result<Vec<(String, i32)>, AwsError>> + Send;

    /// Target groups by name (`elasticloadbalancing:DescribeTargetGroups`).
    fn target_groups_named(
        &self,
        names: &[String],
    ) -> impl Future<Output = Result<Vec<TargetGroupRef>, AwsError>> + Send;
}

/// The load balancer (`app/NAME/ID`) of a listener or listener rule ARN.
pub(crate) fn load_balancer_of(listener_or_rule_arn: &str) -> Option<String> {
    let (_, rest) = listener_or_rule_arn
        .split_once(":listener-rule/")
        .or_else(|| listener_or_rule_arn.split_once(":listener/"))?;
    let parts: Vec<&str> = rest.split('/').collect();
    (parts.len() >= 3).then(|| parts[..3].join("/"))
}

/// A listener rule as smoke checks reach it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleTarget {
    pub url: String,
    /// Headers the rule's conditions match on (`http-header`, first value; `host-header`
    /// as `Host`), sent with every check so the request takes this rule.
    pub headers: Vec<(String, String)>,
    /// Path patterns the rule matches, for the hook's log: a check outside them would
    /// reach another rule.
    pub path_patterns: Vec<String>,
}

/// The listener of a listener rule: `…:listener-rule/app/NAME/LB/LISTENER/RULE` →
/// `…:listener/app/NAME/LB/LISTENER` [ELBv2 user guide, resource ARN formats].
pub fn listener_of_rule(rule_arn: &str) -> Option<String> {
    let listener = rule_arn.replacen(":listener-rule/", ":listener/", 1);
    if listener == rule_arn {
        return None;
    }
    let (listener, _rule) = listener.rsplit_once('/')?;
    Some(listener.to_string())
}

impl TrafficReader for LoadBalancers {
    async fn forwards(&self, arn: &str) -> Result<Vec<(String, i32)>, AwsError> {
        use aws_sdk_elasticloadbalancingv2::types::Action;
        let actions: Vec<Action> = if arn.contains(":listener-rule/") {
            let rules = retry::call(SERVICE, "DescribeRules", || {
                self.client.get().describe_rules().rule_arns(arn).send()
            })
            .await?;
            rules
                .rules
                .unwrap_or_default()
                .into_iter()
                .flat_map(|r| r.actions.unwrap_or_default())
                .collect()
        } else {
            let listeners = retry::call(SERVICE, "DescribeListeners", || {
                self.client
                    .get()
                    .describe_listeners()
                    .listener_arns(arn)
                    .send()
            })
            .await?;
            listeners
                .listeners
                .unwrap_or_default()
                .into_iter()
                .flat_map(|l| l.default_actions.unwrap_or_default())
                .collect()
        };
        let mut forwards = Vec::new();
        for action in actions {
            let weighted: Vec<(String, i32)> = action
                .forward_config()
                .map(|f| f.target_groups())
                .unwrap_or_default()
                .iter()
                .filter_map(|t| Some((t.target_group_arn()?.to_string(), t.weight().unwrap_or(1))))
                .collect();
            if !weighted.is_empty() {
                forwards.extend(weighted);
            } else if let Some(tg) = action.target_group_arn() {
                forwards.push((tg.to_string(), 1));
            }
        }
        Ok(forwards)
    }

    async fn target_groups_named(&self, names: &[String]) -> Result<Vec<TargetGroupRef>, AwsError> {
        let output = retry::call(SERVICE, "DescribeTargetGroups", || {
            self.client
                .get()
                .describe_target_groups()
                .set_names(Some(names.to_vec()))
                .send()
        })
        .await?;
        Ok(output
            .target_groups
            .unwrap_or_default()
            .into_iter()
            .map(|t| TargetGroupRef {
                name: t.target_group_name.unwrap_or_default(),
                arn: t.target_group_arn.unwrap_or_default(),
            })
            .collect())
    }
}

#[derive(Debug, Clone)]
pub struct LoadBalancers {
    client: LazyClient<Client>,
}

impl LoadBalancers {
    pub fn new(client: Client) -> Self {
        LoadBalancers {
            client: LazyClient::ready(client, Client::new),
        }
    }

    /// The client is built on first use.
    pub fn from_conf(config: &aws_config::SdkConfig) -> Self {
        LoadBalancers {
            client: LazyClient::deferred(config, Client::new),
        }
    }
}

impl ListenerResolver for LoadBalancers {
    async fn listener_url(&self, listener_arn: &str) -> Result<String, AwsError> {
        let listeners = retry::call(SERVICE, "DescribeListeners", || {
            self.client
                .get()
                .describe_listeners()
                .listener_arns(listener_arn)
                .send()
        })
        .await?;
        let listener = listeners
            .listeners
            .unwrap_or_default()
            .into_iter()
            .next()
            .ok_or_else(|| {
                AwsError::unexpected(
                    SERVICE,
                    "DescribeListeners",
                    format!("listener {listener_arn} not found"),
                )
            })?;
        let port = listener.port.ok_or_else(|| {
            AwsError::unexpected(
                SERVICE,
                "DescribeListeners",
                format!("listener {listener_arn} has no port"),
            )
        })?;
        let scheme = match listener.protocol {
            Some(ProtocolEnum::Https) => "https",
            _ => "http",
        };
        let lb_arn = listener.load_balancer_arn.ok_or_else(|| {
            AwsError::unexpected(
                SERVICE,
                "DescribeListeners",
                format!("listener {listener_arn} names no load balancer"),
            )
        })?;
        let balancers = retry::call(SERVICE, "DescribeLoadBalancers", || {
            self.client
                .get()
                .describe_load_balancers()
                .load_balancer_arns(&lb_arn)
                .send()
        })
        .await?;
        let dns = balancers
            .load_balancers
            .unwrap_or_default()
            .into_iter()
            .find_map(|lb| lb.dns_name)
            .ok_or_else(|| {
                AwsError::unexpected(
                    SERVICE,
                    "DescribeLoadBalancers",
                    format!("load balancer {lb_arn} has no DNS name"),
                )
            })?;
        Ok(format!("{scheme}://{dns}:{port}"))
    }

    async fn rule_target(&self, rule_arn: &str) -> Result<RuleTarget, AwsError> {
        let listener = listener_of_rule(rule_arn).ok_or_else(|| {
            AwsError::unexpected(
                SERVICE,
                "DescribeRules",
                format!("{rule_arn} is not a listener rule ARN"),
            )
        })?;
        let rules = retry::call(SERVICE, "DescribeRules", || {
            self.client
                .get()
                .describe_rules()
                .rule_arns(rule_arn)
                .send()
        })
        .await?;
        let rule = rules
            .rules
            .unwrap_or_default()
            .into_iter()
            .next()
            .ok_or_else(|| {
                AwsError::unexpected(
                    SERVICE,
                    "DescribeRules",
                    format!("rule {rule_arn} not found"),
                )
            })?;
        let mut target = RuleTarget {
            url: self.listener_url(&listener).await?,
            ..RuleTarget::default()
        };
        for condition in rule.conditions() {
            match condition.field() {
                Some("http-header") => {
                    if let Some(config) = condition.http_header_config() {
                        if let (Some(name), Some(value)) =
                            (config.http_header_name(), config.values().first())
                        {
                            // Wildcards (`*`, `?`) in a value match themselves too.
                            target.headers.push((name.to_string(), value.clone()));
                        }
                    }
                }
                Some("host-header") => {
                    let values = condition
                        .host_header_config()
                        .map(|c| c.values().to_vec())
                        .unwrap_or_else(|| condition.values().to_vec());
                    if let Some(host) = values.first() {
                        target.headers.push(("Host".into(), host.clone()));
                    }
                }
                Some("path-pattern") => {
                    let values = condition
                        .path_pattern_config()
                        .map(|c| c.values().to_vec())
                        .unwrap_or_else(|| condition.values().to_vec());
                    target.path_patterns.extend(values);
                }
                _ => {}
            }
        }
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_load_balancer_is_read_from_a_listener_or_rule_arn() {
        assert_eq!(
            load_balancer_of(
                "arn:aws:elasticloadbalancing:us-east-1:1:listener-rule/app/web/50dc/8a/9f"
            )
            .as_deref(),
            Some("app/web/50dc")
        );
        assert_eq!(
            load_balancer_of("arn:aws:elasticloadbalancing:us-east-1:1:listener/app/web/50dc/8a")
                .as_deref(),
            Some("app/web/50dc")
        );
        assert_eq!(
            load_balancer_of("arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/a/1"),
            None
        );
    }

    #[test]
    fn a_rules_listener_is_read_from_its_arn() {
        assert_eq!(
            listener_of_rule("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee").as_deref(),
            Some("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2")
        );
        assert_eq!(
            listener_of_rule("arn:aws:elasticloadbalancing:us-east-1:1:listener/app/x/1/2"),
            None
        );
    }
}

/// A load balancer reader that answers from memory, for the seam's unit tests.
#[cfg(test)]
pub(crate) mod fake {
    use super::{AwsError, TargetGroupRef, TrafficReader};

    pub(crate) struct Elb {
        pub forwards: Vec<(String, i32)>,
    }

    impl TrafficReader for Elb {
        async fn forwards(&self, _arn: &str) -> Result<Vec<(String, i32)>, AwsError> {
            Ok(self.forwards.clone())
        }
        async fn target_groups_named(
            &self,
            names: &[String],
        ) -> Result<Vec<TargetGroupRef>, AwsError> {
            Ok(names
                .iter()
                .map(|n| TargetGroupRef {
                    name: n.clone(),
                    arn: format!("arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/{n}/0f"),
                })
                .collect())
        }
    }
}
