//! CloudWatch: the load balancer's per-target-group metrics for the analysis
//! (`cloudwatch:GetMetricData`), fetched as raw MetricStat queries so that a period
//! without data stays "no data" (metric math would fill it in).

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
use aws_sdk_cloudwatch::Client;

use super::{retry, AwsError, LazyClient};
use crate::analysis::{LatencyStat, Measure, MetricRule};

const SERVICE: &str = "CloudWatch";

/// `targetgroup/NAME/ID` from a target group ARN (or that value itself): the
/// `TargetGroup` dimension of `AWS/ApplicationELB`.
pub fn target_group_dimension(arn_or_value: &str) -> String {
    match arn_or_value.split_once(":targetgroup/") {
        Some((_, rest)) => format!("targetgroup/{rest}"),
        None => arn_or_value.to_string(),
    }
}

/// `app/NAME/ID` from a load balancer ARN (or that value itself): the
/// `LoadBalancer` dimension.
pub fn load_balancer_dimension(arn_or_value: &str) -> String {
    match arn_or_value.split_once(":loadbalancer/") {
        Some((_, rest)) => rest.to_string(),
        None => arn_or_value.to_string(),
    }
}

pub use crate::analysis::PeriodSamples;

#[derive(Debug, Clone)]
pub struct Metrics {
    client: LazyClient<Client>,
}

impl Metrics {
    pub fn new(client: Client) -> Self {
        Metrics {
            client: LazyClient::ready(client, Client::new),
        }
    }

    /// The client is built on first use.
    pub fn from_conf(config: &aws_config::SdkConfig) -> Self {
        Metrics {
            client: LazyClient::deferred(config, Client::new),
        }
    }

    /// Every metric `rules` need, for both target groups, per `period_s` from
    /// `start_s` to `end_s` (epoch seconds): one GetMetricData call (up to 500
    /// queries), paged only if CloudWatch says PartialData.
    #[allow(clippy::too_many_arguments)]
    pub async fn target_group_samples(
        &self,
        load_balancer: &str,
        green_target_group: &str,
        blue_target_group: &str,
        rules: &[MetricRule],
        start_s: i64,
        end_s: i64,
        period_s: i32,
    ) -> Result<BTreeMap<i64, PeriodSamples>, AwsError> {
        let lb = load_balancer_dimension(load_balancer);
        let mut queries = Vec::new();
        // (query id, which target group: true = green, what it fills)
        let mut meaning: BTreeMap<String, (bool, Fill)> = BTreeMap::new();
        let mut latency: Vec<LatencyStat> = rules
            .iter()
            .filter_map(|r| match r.measure {
                Measure::Latency(stat) => Some(stat),
                _ => None,
            })
            .collect();
        latency.sort();
        latency.dedup();
        for (green, tg) in [(true, green_target_group), (false, blue_target_group)] {
            let tg = target_group_dimension(tg);
            let side = if green { "g" } else { "b" };
            let dims = [("TargetGroup", tg.as_str()), ("LoadBalancer", lb.as_str())];
            let mut add = |id: String, metric: &str, stat: &str, fill: Fill| {
                queries.push(query(
                    &id,
                    "AWS/ApplicationELB",
                    metric,
                    &dims,
                    stat,
                    period_s,
                ));
                meaning.insert(id, (green, fill));
            };
            add(
                format!("{side}requests"),
                "RequestCount",
                "Sum",
                Fill::Requests,
            );
            add(
                format!("{side}errors"),
                "HTTPCode_Target_5XX_Count",
                "Sum",
                Fill::Errors,
            );
            for stat in &latency {
                add(
                    format!("{side}latency{}", stat.cloudwatch().to_ascii_lowercase()),
                    "TargetResponseTime",
                    stat.cloudwatch(),
                    Fill::Latency(*stat),
                );
            }
        }
        for (i, rule) in rules.iter().enumerate() {
            if let Measure::Custom {
                namespace,
                metric_name,
                dimensions,
                stat,
            } = &rule.measure
            {
                let id = format!("custom{i}");
                let dims: Vec<(&str, &str)> = dimensions
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                queries.push(query(&id, namespace, metric_name, &dims, stat, period_s));
                meaning.insert(id, (true, Fill::Custom(rule.name.clone())));
            }
        }
        let mut periods: BTreeMap<i64, PeriodSamples> = BTreeMap::new();
        let mut next_token: Option<String> = None;
        loop {
            let output = retry::call(SERVICE, "GetMetricData", || {
                self.client
                    .get()
                    .get_metric_data()
                    .set_metric_data_queries(Some(queries.clone()))
                    .start_time(DateTime::from_secs(start_s))
                    .end_time(DateTime::from_secs(end_s))
                    .scan_by(ScanBy::TimestampAscending)
                    .set_next_token(next_token.clone())
                    .send()
            })
            .await?;
            for result in output.metric_data_results() {
                let Some((green, fill)) = result.id().and_then(|id| meaning.get(id)) else {
                    continue;
                };
                for (t, v) in result.timestamps().iter().zip(result.values()) {
                    let period = periods.entry(t.secs()).or_default();
                    let sample = if *green {
                        &mut period.green
                    } else {
                        &mut period.blue
                    };
                    match fill {
                        Fill::Requests => sample.requests = Some(*v),
                        Fill::Errors => sample.errors_5xx = Some(*v),
                        // CloudWatch reports seconds; the analysis works in ms.
                        Fill::Latency(stat) => {
                            sample.latency_ms.insert(*stat, v * 1000.0);
                        }
                        Fill::Custom(name) => {
                            sample.custom.insert(name.clone(), *v);
                        }
                    }
                }
            }
            match output.next_token.filter(|t| !t.is_empty()) {
                Some(token) => next_token = Some(token),
                None => return Ok(periods),
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Fill {
    Requests,
    Errors,
    Latency(LatencyStat),
    Custom(String),
}

fn query(
    id: &str,
    namespace: &str,
    metric: &str,
    dimensions: &[(&str, &str)],
    stat: &str,
    period: i32,
) -> MetricDataQuery {
    let mut m = Metric::builder().namespace(namespace).metric_name(metric);
    for (name, value) in dimensions {
        m = m.dimensions(Dimension::builder().name(*name).value(*value).build());
    }
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder()
                .metric(m.build())
                .period(period)
                .stat(stat)
                .build(),
        )
        .return_data(true)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_are_read_from_arns_or_taken_as_given() {
        assert_eq!(
            target_group_dimension("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-green/0123456789abcdef"),
            "targetgroup/web-green/0123456789abcdef"
        );
        assert_eq!(target_group_dimension("targetgroup/a/1"), "targetgroup/a/1");
        assert_eq!(
            load_balancer_dimension("arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188"),
            "app/web/50dc6c495c0c9188"
        );
        assert_eq!(load_balancer_dimension("app/web/1"), "app/web/1");
    }
}
