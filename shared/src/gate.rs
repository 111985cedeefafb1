//! The analysis gate during a deployment: which target groups to compare, and the
//! verdict so far. The rules live in [`crate::analysis`] (pure); this module finds the
//! inputs on either deployment path and fetches them with one `GetMetricData` call.
//!
//! Green's target group, per path:
//! - CodeDeploy names it: the deployment target's task set labelled `Green`
//!   (`GetDeploymentTarget`), turned into an ARN with `DescribeTargetGroups`; the
//!   load balancer is the one of the group's production listener.
//! - ECS-native: the target group the test listener rule forwards to (ECS moves the
//!   test rule to green before production traffic moves), of the service's two
//!   (`targetGroupArn`, `alternateTargetGroupArn`); the load balancer is the rule's.

use std::time::Duration;

use crate::analysis::{self, AnalysisConfig, RunResult};
use crate::aws::cloudwatch::{load_balancer_dimension, target_group_dimension, Metrics};
use crate::aws::codedeploy::DeploymentTraffic;
use crate::aws::ecs::ListenerRules;
use crate::aws::elb::{load_balancer_of, TrafficReader};

/// What the analysis compares: CloudWatch dimension values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    pub load_balancer: String,
    pub green_target_group: String,
    pub blue_target_group: String,
}

/// CodeDeploy: green and blue from the deployment target's task sets.
pub async fn codedeploy_targets(
    traffic: &DeploymentTraffic,
    production_listener: Option<&str>,
    elb: &impl TrafficReader,
) -> Result<Targets, String> {
    let (Some(green), Some(blue)) = (&traffic.green_target_group, &traffic.blue_target_group)
    else {
        return Err("CodeDeploy names no Green and Blue task sets with target groups for this deployment (GetDeploymentTarget taskSetsInfo)".into());
    };
    let load_balancer = production_listener.and_then(load_balancer_of).ok_or(
        "the deployment group has no production listener: no load balancer to read metrics of",
    )?;
    let found = elb
        .target_groups_named(&[green.clone(), blue.clone()])
        .await
        .map_err(|e| e.to_string())?;
    let arn_of = |name: &str| {
        found
            .iter()
            .find(|t| t.name == name)
            .map(|t| target_group_dimension(&t.arn))
            .ok_or_else(|| format!("target group {name} not found (DescribeTargetGroups)"))
    };
    Ok(Targets {
        load_balancer,
        green_target_group: arn_of(green)?,
        blue_target_group: arn_of(blue)?,
    })
}

/// ECS-native: green is the target group the test listener rule forwards to.
pub async fn ecs_targets(
    rules: &ListenerRules,
    elb: &impl TrafficReader,
) -> Result<Targets, String> {
    let test_rule = rules.test.as_deref().ok_or(
        "the service has no test listener rule (loadBalancers[].advancedConfiguration): green's target group cannot be told",
    )?;
    if rules.target_groups.len() != 2 {
        return Err(format!(
            "the service names {} target group(s); blue/green needs targetGroupArn and alternateTargetGroupArn",
            rules.target_groups.len()
        ));
    }
    let forwards = elb.forwards(test_rule).await.map_err(|e| e.to_string())?;
    let green = forwards
        .iter()
        .filter(|(tg, _)| rules.target_groups.contains(tg))
        .max_by_key(|(_, weight)| *weight)
        .map(|(tg, _)| tg.clone())
        .ok_or_else(|| {
            format!("the test listener rule {test_rule} forwards to neither of the service's target groups")
        })?;
    let blue = rules
        .target_groups
        .iter()
        .find(|tg| **tg != green)
        .cloned()
        .unwrap_or_default();
    Ok(Targets {
        load_balancer: load_balancer_of(test_rule)
            .ok_or_else(|| format!("{test_rule} is not a listener rule ARN"))?,
        green_target_group: target_group_dimension(&green),
        blue_target_group: target_group_dimension(&blue),
    })
}

/// The verdict at `now_ms` for a window that began at `from_ms` (aligned to an
/// interval): every settled interval judged, from one GetMetricData call that also
/// covers blue's baseline window before `from_ms`. `None`: nothing settled yet.
pub async fn evaluate(
    metrics: &Metrics,
    config: &AnalysisConfig,
    targets: &Targets,
    from_ms: i64,
    now_ms: i64,
    smoke: &[(i64, f64)],
) -> Result<Option<RunResult>, String> {
    let starts = analysis::intervals_to_judge(config, from_ms, now_ms);
    let Some(last) = starts.last() else {
        return Ok(None);
    };
    let interval_s = config.interval.as_secs().max(1) as i64;
    let from_s = from_ms.div_euclid(1000);
    let periods = metrics
        .target_group_samples(
            &load_balancer_dimension(&targets.load_balancer),
            &targets.green_target_group,
            &targets.blue_target_group,
            &config.metrics,
            from_s - config.window.as_secs() as i64,
            last.div_euclid(1000) + interval_s,
            interval_s as i32,
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(Some(analysis::judge_window(
        config, &periods, from_ms, &starts, smoke,
    )))
}

/// How long until the next interval has settled and can be judged.
pub fn until_next_interval(config: &AnalysisConfig, from_ms: i64, now_ms: i64) -> Duration {
    let judged = analysis::intervals_to_judge(config, from_ms, now_ms).len() as i64;
    let step = config.interval.as_millis() as i64;
    let next_ready = from_ms + (judged + 1) * step + config.settle.as_millis() as i64;
    Duration::from_millis((next_ready - now_ms).max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::elb::TargetGroupRef;
    use crate::aws::AwsError;

    struct Elb {
        forwards: Vec<(String, i32)>,
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

    const A: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-a/1a";
    const B: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-b/2b";

    #[tokio::test]
    async fn ecs_green_is_where_the_test_rule_forwards() {
        let rules = ListenerRules {
            test: Some(
                "arn:aws:elasticloadbalancing:us-east-1:1:listener-rule/app/web/9c/8080/2".into(),
            ),
            target_groups: vec![A.into(), B.into()],
            ..ListenerRules::default()
        };
        let elb = Elb {
            forwards: vec![(A.into(), 0), (B.into(), 100)],
        };
        let targets = ecs_targets(&rules, &elb).await.unwrap();
        assert_eq!(targets.green_target_group, "targetgroup/web-b/2b");
        assert_eq!(targets.blue_target_group, "targetgroup/web-a/1a");
        assert_eq!(targets.load_balancer, "app/web/9c");
        let stray = Elb {
            forwards: vec![(
                "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/other/3".into(),
                100,
            )],
        };
        assert!(ecs_targets(&rules, &stray)
            .await
            .unwrap_err()
            .contains("forwards to neither"));
    }

    #[tokio::test]
    async fn codedeploy_green_is_its_green_task_set() {
        let traffic = DeploymentTraffic {
            green_target_group: Some("web-b".into()),
            blue_target_group: Some("web-a".into()),
            allow_traffic_started_ms: Some(1),
            ..DeploymentTraffic::default()
        };
        let elb = Elb { forwards: vec![] };
        let targets = codedeploy_targets(
            &traffic,
            Some("arn:aws:elasticloadbalancing:us-east-1:1:listener/app/web/9c/80"),
            &elb,
        )
        .await
        .unwrap();
        assert_eq!(targets.green_target_group, "targetgroup/web-b/0f");
        assert_eq!(targets.load_balancer, "app/web/9c");
        assert!(
            codedeploy_targets(&DeploymentTraffic::default(), None, &elb)
                .await
                .unwrap_err()
                .contains("taskSetsInfo")
        );
    }

    #[test]
    fn the_next_judgement_waits_for_the_next_interval_to_settle() {
        let config = AnalysisConfig {
            window: Duration::from_secs(300),
            interval: Duration::from_secs(60),
            min_requests: 1,
            failure_limit: 0,
            on_inconclusive: analysis::OnInconclusive::Fail,
            dry_run: false,
            metrics: Vec::new(),
            settle: Duration::from_secs(120),
        };
        // From 0: the first interval [0, 60 s) is judged at 180 s.
        assert_eq!(
            until_next_interval(&config, 0, 100_000),
            Duration::from_secs(80)
        );
        assert_eq!(
            until_next_interval(&config, 0, 180_000),
            Duration::from_secs(60)
        );
    }
}
