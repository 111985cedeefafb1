//! A load balancer stand-in in front of the sample app, wired as ELB would be: every
//! request counted per target group in the CloudWatch stand-in, and test-listener
//! moves mirrored into the emulator's listener rule (as ECS makes them). One per
//! service the rehearsal deploys; [`Router`] hands each engine's traffic moves to
//! the right one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use aws_config::SdkConfig;
use greenlight_standins::cloudwatch::CloudWatchStandIn;
use greenlight_standins::codedeploy::Traffic;
use greenlight_standins::lb::{Behavior, LoadBalancer};

use crate::rehearse::seed::{forward_rule, ElbSeed};

/// A load balancer and where its listeners answer.
pub(crate) struct Balancer {
    pub lb: LoadBalancer,
    pub production: SocketAddr,
    pub test: SocketAddr,
}

/// Builds and serves the load balancer for `elb` with `initial` on blue.
pub(crate) async fn serve_balancer(
    sdk: &SdkConfig,
    elb: &ElbSeed,
    metrics: &CloudWatchStandIn,
    behaviors: &Arc<Mutex<HashMap<String, Behavior>>>,
    initial: &str,
) -> Result<Balancer, String> {
    let resolver_behaviors = behaviors.clone();
    let lb = LoadBalancer::new(
        initial,
        Arc::new(move |image: &str| {
            let digest = image.rsplit('@').next().unwrap_or(image);
            resolver_behaviors
                .lock()
                .unwrap()
                .get(digest)
                .cloned()
                .unwrap_or(Behavior::Broken {
                    version: format!("unknown image {image}"),
                })
        }),
    );
    let (metrics, lb_dimension) = (
        metrics.clone(),
        greenlight::aws::cloudwatch::load_balancer_dimension(&elb.load_balancer),
    );
    let elbv2 = aws_sdk_elasticloadbalancingv2::Client::new(sdk);
    let (rule, pair) = (elb.test_rule.clone(), [elb.blue.clone(), elb.green.clone()]);
    lb.target_groups(
        &elb.blue,
        &elb.green,
        Arc::new(move |tg: &str, status: u16, seconds: f64| {
            let tg = greenlight::aws::cloudwatch::target_group_dimension(tg);
            let dims = [
                ("TargetGroup", tg.as_str()),
                ("LoadBalancer", lb_dimension.as_str()),
            ];
            let at = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            let ns = "AWS/ApplicationELB";
            metrics.observe(ns, "RequestCount", &dims, at, 1.0);
            if status >= 500 {
                metrics.observe(ns, "HTTPCode_Target_5XX_Count", &dims, at, 1.0);
            }
            metrics.observe(ns, "TargetResponseTime", &dims, at, seconds);
        }),
        Arc::new(move |to: &str| {
            let (elbv2, rule, pair, to) =
                (elbv2.clone(), rule.clone(), pair.clone(), to.to_string());
            tokio::spawn(async move {
                let _ = forward_rule(&elbv2, &rule, &pair, &to).await;
            });
        }),
    );
    let production = greenlight_standins::http::serve(lb.listener(true))
        .await
        .map_err(|e| e.to_string())?;
    let test = greenlight_standins::http::serve(lb.listener(false))
        .await
        .map_err(|e| e.to_string())?;
    Ok(Balancer {
        lb,
        production,
        test,
    })
}

/// The engines' traffic moves, to the load balancer of the service they concern:
/// the staging one for a group or service named `…staging…`, else production's.
#[derive(Clone)]
pub(crate) struct Router {
    pub production: LoadBalancer,
    pub staging: Option<LoadBalancer>,
    /// Green's tasks, started and stopped with the engines' moves.
    pub tasks: Arc<crate::rehearse::green::GreenTasks>,
}

impl Router {
    fn of(&self, group: &str) -> &LoadBalancer {
        match &self.staging {
            Some(staging) if group.contains("staging") => staging,
            _ => &self.production,
        }
    }
}

impl Traffic for Router {
    fn install_green(&self, group: &str, image: &str) {
        self.tasks.installed(group, image);
        self.of(group).install_green(group, image)
    }
    fn test_to_green(&self, group: &str) {
        self.of(group).test_to_green(group)
    }
    fn production_to_green(&self, group: &str, percent: u8) {
        self.of(group).production_to_green(group, percent)
    }
    fn promote(&self, group: &str) {
        self.of(group).promote(group)
    }
    fn rollback(&self, group: &str) {
        self.tasks.rolled_back(group);
        self.of(group).rollback(group)
    }
    fn target_groups(&self, group: &str) -> Option<(String, String)> {
        Traffic::target_groups(self.of(group), group)
    }
}
