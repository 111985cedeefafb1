//! The ECS-native path: ECS runs blue/green itself (deployment controller ECS,
//! strategy BLUE_GREEN, CANARY or LINEAR). A deployment is UpdateService to the new
//! task definition; its image is its target service revision's; a stop with rollback
//! is StopServiceDeployment; a PAUSE hook is answered with ContinueServiceDeployment.

use aws_sdk_ecs::types::{
    DeploymentLifecycleHookAction, DeploymentLifecycleHookStatus, ServiceDeploymentBrief,
    ServiceDeploymentStatus as S,
};

use super::view::{
    Approval, ApprovalError, DeploymentView, History, HookResult, Phase, Progress, StartError,
    StopError,
};
use crate::aws::cloudwatch::target_group_dimension;
use crate::aws::ecs::{revision_digest, ListenerRules, ServiceRules, ECS_IN_FLIGHT};
use crate::aws::elb::{load_balancer_of, TrafficReader};
use crate::aws::{AwsError, Ecs, StopOutcome};
use crate::gate::{Targets, TargetsError};

/// One ECS service on ECS-native blue/green.
#[derive(Clone, Copy)]
pub(super) struct Service<'a> {
    pub ecs: &'a Ecs,
    pub name: &'a str,
    pub cluster: &'a str,
    pub service: &'a str,
    pub container: &'a str,
}

impl Service<'_> {
    pub fn target(&self) -> String {
        format!("{}/{} (ECS blue/green)", self.cluster, self.service)
    }

    /// In flight, and created since `since_ms`: two ListServiceDeployments and one
    /// DescribeServiceRevisions for the images.
    pub async fn history(&self, since_ms: i64) -> Result<History, AwsError> {
        let (ecs, cluster, service) = (self.ecs, self.cluster, self.service);
        let in_flight = ecs.list_service_deployments(cluster, service, &ECS_IN_FLIGHT, None);
        let recent = ecs.list_service_deployments(cluster, service, &[], Some(since_ms));
        let (in_flight, recent) = futures::future::try_join(in_flight, recent).await?;
        let mut revisions: Vec<String> = in_flight
            .iter()
            .chain(&recent)
            .filter_map(|b| b.target_service_revision_arn.clone())
            .collect();
        revisions.sort();
        revisions.dedup();
        let described = if revisions.is_empty() {
            Vec::new()
        } else {
            ecs.service_revisions(&revisions).await?
        };
        let digest_of = |revision: Option<&str>| {
            described
                .iter()
                .find(|r| r.service_revision_arn() == revision)
                .and_then(|r| revision_digest(r, self.container))
        };
        let view = |brief: &ServiceDeploymentBrief| {
            let status = status_of(brief);
            DeploymentView {
                id: brief
                    .service_deployment_arn()
                    .unwrap_or_default()
                    .to_string(),
                phase: phase(&status),
                status,
                created_at: brief.created_at().and_then(|t| t.to_millis().ok()),
                image_digest: digest_of(brief.target_service_revision_arn()),
                image_tag: None,
            }
        };
        Ok(History {
            in_flight: in_flight
                .iter()
                .map(view)
                .filter(|v| v.phase == Phase::InFlight)
                .collect(),
            since: recent
                .iter()
                .map(view)
                .filter(|v| v.created_at.is_none_or(|c| c >= since_ms))
                .collect(),
        })
    }

    pub async fn in_flight(&self) -> Result<Vec<String>, AwsError> {
        Ok(self
            .ecs
            .list_service_deployments(self.cluster, self.service, &ECS_IN_FLIGHT, None)
            .await?
            .into_iter()
            .filter_map(|b| b.service_deployment_arn)
            .collect())
    }

    /// ECS accepts only ROLLBACK for StopServiceDeployment [API reference,
    /// StopServiceDeployment `stopType`], so a stop without rollback is refused.
    pub async fn stop(&self, id: &str, rollback: bool) -> Result<StopOutcome, StopError> {
        if !rollback {
            return Err(StopError::Unsupported(
                "ECS stops a service deployment only with rollback (StopServiceDeployment stopType ROLLBACK); leave out --no-rollback".into(),
            ));
        }
        Ok(self.stop_with_rollback(id).await?)
    }

    pub async fn stop_with_rollback(&self, id: &str) -> Result<StopOutcome, AwsError> {
        self.ecs.stop_service_deployment(id).await
    }

    /// ECS's state-change event names only the service's `ecs-svc/…` id, so the
    /// newest service deployment of the last day that finished is taken.
    pub async fn ended(&self) -> Result<Option<DeploymentView>, AwsError> {
        let day_ago = now_ms() - 24 * 60 * 60 * 1000;
        let finished = self
            .ecs
            .list_service_deployments(
                self.cluster,
                self.service,
                &[
                    S::Successful,
                    S::Stopped,
                    S::RollbackSuccessful,
                    S::RollbackFailed,
                ],
                Some(day_ago),
            )
            .await?;
        let Some(newest) = finished
            .into_iter()
            .max_by_key(|b| b.created_at().and_then(|t| t.to_millis().ok()))
        else {
            return Ok(None);
        };
        let (image_tag, digest) = match newest.target_service_revision_arn() {
            Some(revision) => self.ecs.revision_image(revision, self.container).await?,
            None => (None, None),
        };
        let status = status_of(&newest);
        Ok(Some(DeploymentView {
            id: newest
                .service_deployment_arn()
                .unwrap_or_default()
                .to_string(),
            phase: phase(&status),
            status,
            created_at: newest.created_at().and_then(|t| t.to_millis().ok()),
            image_digest: digest,
            image_tag,
        }))
    }

    /// One DescribeServiceDeployments, plus the revisions' images.
    pub async fn progress(&self, id: &str) -> Result<Progress, AwsError> {
        let Some(found) = self
            .ecs
            .service_deployments(&[id.to_string()])
            .await?
            .into_iter()
            .next()
        else {
            return Ok(Progress::default());
        };
        let target = found.target_service_revision();
        let source = found.source_service_revisions().first();
        let mut progress = Progress {
            at: found.lifecycle_stage().map(|s| s.as_str().to_string()),
            green_production_percent: target.and_then(|t| t.requested_production_traffic_weight()),
            green_test_percent: target.and_then(|t| t.requested_test_traffic_weight()),
            hooks: found
                .lifecycle_hook_details()
                .iter()
                .map(|h| HookResult {
                    hook: match h.target_arn() {
                        Some(arn) => arn.rsplit(':').next().unwrap_or(arn).to_string(),
                        None => h
                            .target_type()
                            .map(|t| t.as_str().to_string())
                            .unwrap_or_default(),
                    },
                    status: h
                        .status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                })
                .collect(),
            started_ms: found.started_at().and_then(|t| t.to_millis().ok()),
            ..Progress::default()
        };
        // While ECS deploys, the service already names the new task definition:
        // production is the source revision.
        if let Some(arn) = source.and_then(|s| s.arn()) {
            let (tag, digest) = self.ecs.revision_image(arn, self.container).await?;
            progress.production_tag = tag;
            progress.production_digest = digest;
        }
        if let Some(arn) = target.and_then(|t| t.arn()) {
            progress.target_tag = self.ecs.revision_image(arn, self.container).await?.0;
        }
        Ok(progress)
    }

    pub async fn analysis_targets(
        &self,
        elb: &impl TrafficReader,
    ) -> Result<Targets, TargetsError> {
        let rules = self.ecs.listener_rules(self.cluster, self.service).await?;
        analysis_targets(&rules, elb).await
    }

    /// UpdateService to the registered task definition. ECS names the new
    /// deployment in the service's currentServiceDeployment; the task definition is
    /// the id of last resort.
    pub async fn start(&self, task_definition_arn: &str) -> Result<String, StartError> {
        let arn = self
            .ecs
            .update_task_definition(self.cluster, self.service, task_definition_arn)
            .await?;
        Ok(arn.unwrap_or_else(|| task_definition_arn.to_string()))
    }

    /// Answers the deployment in flight that waits at a PAUSE hook
    /// (ContinueServiceDeployment CONTINUE or ROLLBACK).
    pub async fn answer_pause(&self, decision: Approval) -> Result<String, ApprovalError> {
        let in_flight = self.in_flight().await?;
        if in_flight.is_empty() {
            return Err(ApprovalError::NothingInFlight {
                service: self.name.to_string(),
                target: format!("{}/{}", self.cluster, self.service),
            });
        }
        let deployments = self.ecs.service_deployments(&in_flight).await?;
        let paused = deployments.iter().find_map(|d| {
            let hook = d
                .lifecycle_hook_details()
                .iter()
                .find(|h| h.status() == Some(&DeploymentLifecycleHookStatus::AwaitingAction))?;
            Some((
                d.service_deployment_arn()?.to_string(),
                hook.hook_id()?.to_string(),
                d.lifecycle_stage().map(|s| s.as_str().to_string()),
            ))
        });
        let Some((arn, hook_id, stage)) = paused else {
            return Err(ApprovalError::NotPaused {
                service: self.name.to_string(),
                in_flight: in_flight.join(", "),
            });
        };
        let action = match decision {
            Approval::Approve => DeploymentLifecycleHookAction::Continue,
            Approval::Reject => DeploymentLifecycleHookAction::Rollback,
        };
        self.ecs
            .continue_service_deployment(&arn, &hook_id, action)
            .await?;
        Ok(format!(
            "{}: {} {arn} at {} (hook {hook_id}){}",
            self.name,
            match decision {
                Approval::Approve => "approved",
                Approval::Reject => "rejected",
            },
            stage.as_deref().unwrap_or("its paused stage"),
            match decision {
                Approval::Approve => "; the deployment continues",
                Approval::Reject => "; the deployment rolls back",
            }
        ))
    }
}

fn status_of(brief: &ServiceDeploymentBrief) -> String {
    brief
        .status()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default()
}

/// ECS's service deployment status as a phase [developer guide, "View service
/// history using Amazon ECS service deployments": pending, ongoing, completed].
pub(crate) fn phase(status: &str) -> Phase {
    match status {
        "PENDING"
        | "IN_PROGRESS"
        | "STOP_REQUESTED"
        | "ROLLBACK_REQUESTED"
        | "ROLLBACK_IN_PROGRESS" => Phase::InFlight,
        "SUCCESSFUL" => Phase::Succeeded,
        "STOPPED" => Phase::Stopped,
        // ROLLBACK_SUCCESSFUL, ROLLBACK_FAILED, and statuses ECS may add.
        _ => Phase::Failed,
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Green is the target group the test listener rule forwards to (ECS moves the test
/// rule to green before production traffic moves), of the service's two
/// (`targetGroupArn`, `alternateTargetGroupArn`); the load balancer is the rule's.
pub async fn analysis_targets(
    rules: &ListenerRules,
    elb: &impl TrafficReader,
) -> Result<Targets, TargetsError> {
    let test_rule = rules.test.as_deref().ok_or_else(|| {
        TargetsError::Unresolved("the service has no test listener rule (loadBalancers[].advancedConfiguration): green's target group cannot be told".into())
    })?;
    if rules.target_groups.len() != 2 {
        return Err(TargetsError::Unresolved(format!(
            "the service names {} target group(s); blue/green needs targetGroupArn and alternateTargetGroupArn",
            rules.target_groups.len()
        )));
    }
    let forwards = elb.forwards(test_rule).await?;
    let green = forwards
        .iter()
        .filter(|(tg, _)| rules.target_groups.contains(tg))
        .max_by_key(|(_, weight)| *weight)
        .map(|(tg, _)| tg.clone())
        .ok_or_else(|| {
            TargetsError::Unresolved(format!("the test listener rule {test_rule} forwards to neither of the service's target groups"))
        })?;
    let blue = rules
        .target_groups
        .iter()
        .find(|tg| **tg != green)
        .cloned()
        .unwrap_or_default();
    Ok(Targets {
        load_balancer: load_balancer_of(test_rule).ok_or_else(|| {
            TargetsError::Unresolved(format!("{test_rule} is not a listener rule ARN"))
        })?,
        green_target_group: target_group_dimension(&green),
        blue_target_group: target_group_dimension(&blue),
    })
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecs_statuses_map_to_phases() {
        for s in [
            "PENDING",
            "IN_PROGRESS",
            "STOP_REQUESTED",
            "ROLLBACK_REQUESTED",
            "ROLLBACK_IN_PROGRESS",
        ] {
            assert_eq!(phase(s), Phase::InFlight, "{s}");
        }
        assert_eq!(phase("SUCCESSFUL"), Phase::Succeeded);
        assert_eq!(phase("STOPPED"), Phase::Stopped);
        assert_eq!(phase("ROLLBACK_SUCCESSFUL"), Phase::Failed);
        assert_eq!(phase("SOMETHING_NEW"), Phase::Failed);
        let statuses: Vec<&str> = ECS_IN_FLIGHT.iter().map(|s| s.as_str()).collect();
        assert!(statuses.iter().all(|s| phase(s) == Phase::InFlight));
    }

    /// The ECS-native backend reads history from ListServiceDeployments (in flight;
    /// created since) and each deployment's image from its target revision.
    #[tokio::test]
    async fn the_ecs_native_backend_reads_a_bounded_history_with_images() {
        use aws_sdk_ecs::operation::describe_service_revisions::DescribeServiceRevisionsOutput;
        use aws_sdk_ecs::operation::list_service_deployments::ListServiceDeploymentsOutput;
        use aws_sdk_ecs::types::{
            ContainerImage, ServiceDeploymentBrief, ServiceDeploymentStatus, ServiceRevision,
        };
        use aws_smithy_mocks::{mock, mock_client, RuleMode};
        let digest = format!("sha256:{}", "b".repeat(64));
        let brief = |arn: &str, status: ServiceDeploymentStatus, created: i64, revision: &str| {
            ServiceDeploymentBrief::builder()
                .service_deployment_arn(arn)
                .status(status)
                .created_at(aws_smithy_types::DateTime::from_secs(created))
                .target_service_revision_arn(revision)
                .build()
        };
        let in_flight = mock!(aws_sdk_ecs::Client::list_service_deployments)
            .match_requests(|r| !r.status().is_empty() && r.created_at().is_none())
            .then_output(move || {
                ListServiceDeploymentsOutput::builder()
                    .service_deployments(brief(
                        "sd-live",
                        ServiceDeploymentStatus::InProgress,
                        100,
                        "rev-2",
                    ))
                    .build()
            });
        let since = mock!(aws_sdk_ecs::Client::list_service_deployments)
            .match_requests(|r| {
                r.status().is_empty()
                    && r.created_at().and_then(|c| c.after()).map(|t| t.secs()) == Some(90)
            })
            .then_output(move || {
                ListServiceDeploymentsOutput::builder()
                    .service_deployments(brief(
                        "sd-live",
                        ServiceDeploymentStatus::InProgress,
                        100,
                        "rev-2",
                    ))
                    .service_deployments(brief(
                        "sd-old",
                        ServiceDeploymentStatus::RollbackSuccessful,
                        95,
                        "rev-1",
                    ))
                    .build()
            });
        let image = digest.clone();
        let revisions =
            mock!(aws_sdk_ecs::Client::describe_service_revisions).then_output(move || {
                DescribeServiceRevisionsOutput::builder()
                    .service_revisions(
                        ServiceRevision::builder()
                            .service_revision_arn("rev-2")
                            .container_images(
                                ContainerImage::builder()
                                    .container_name("web")
                                    .image_digest(&image)
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            });
        let ecs = Ecs::new(mock_client!(
            aws_sdk_ecs,
            RuleMode::MatchAny,
            [&in_flight, &since, &revisions]
        ));
        let backend = Service {
            ecs: &ecs,
            name: "web",
            cluster: "prod",
            service: "web",
            container: "web",
        };

        let history = backend.history(90_000).await.unwrap();

        assert_eq!(history.in_flight.len(), 1);
        assert_eq!(history.in_flight[0].id, "sd-live");
        assert_eq!(
            history.in_flight[0].image_digest.as_deref(),
            Some(digest.as_str())
        );
        assert_eq!(history.since.len(), 2);
        let old = history.since.iter().find(|d| d.id == "sd-old").unwrap();
        assert_eq!(old.phase, Phase::Failed);
        assert_eq!(
            old.image_digest, None,
            "rev-1 was not described: no image claimed"
        );
        assert_eq!(
            revisions.num_calls(),
            1,
            "one DescribeServiceRevisions for both revisions"
        );
    }

    use crate::aws::elb::fake::Elb;

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
        let targets = analysis_targets(&rules, &elb).await.unwrap();
        assert_eq!(targets.green_target_group, "targetgroup/web-b/2b");
        assert_eq!(targets.blue_target_group, "targetgroup/web-a/1a");
        assert_eq!(targets.load_balancer, "app/web/9c");
        let stray = Elb {
            forwards: vec![(
                "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/other/3".into(),
                100,
            )],
        };
        assert!(analysis_targets(&rules, &stray)
            .await
            .unwrap_err()
            .to_string()
            .contains("forwards to neither"));
    }
}
