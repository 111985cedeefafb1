//! ELBv2: turns a listener ARN into the URL smoke checks aim at
//! (`elasticloadbalancing:DescribeListeners`, `DescribeLoadBalancers`).

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
        let listeners = retry::send(SERVICE, "DescribeListeners", || {
            self.client
                .get()
                .describe_listeners()
                .listener_arns(listener_arn)
                .send()
        })
        .await
        .map_err(|e| AwsError::from_sdk(SERVICE, "DescribeListeners", e))?;
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
        let balancers = retry::send(SERVICE, "DescribeLoadBalancers", || {
            self.client
                .get()
                .describe_load_balancers()
                .load_balancer_arns(&lb_arn)
                .send()
        })
        .await
        .map_err(|e| AwsError::from_sdk(SERVICE, "DescribeLoadBalancers", e))?;
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
}
