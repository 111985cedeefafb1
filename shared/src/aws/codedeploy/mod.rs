//! CodeDeploy: reading deployments and groups, reporting hook status, creating and
//! stopping deployments.

use std::future::Future;

use aws_sdk_codedeploy::primitives::DateTime;
use aws_sdk_codedeploy::types::{LifecycleEventStatus, TargetStatus, TimeRange};
use aws_sdk_codedeploy::Client;

use super::{
    deployment_status_sdk, inline_appspec, retry, sdk_status, AwsError, DeploymentGroupSummary,
    DeploymentSummary, HookReport, HookStatus,
};
use crate::lifecycle::LifecycleEvent;

const SERVICE: &str = "CodeDeploy";

/// Reports a lifecycle hook's status (`codedeploy:PutLifecycleEventHookExecutionStatus`).
pub trait HookReporter: Send + Sync {
    fn report(
        &self,
        deployment_id: &str,
        execution_id: &str,
        status: HookStatus,
    ) -> impl Future<Output = Result<HookReport, AwsError>> + Send;
}

/// Reads deployments and deployment groups (`codedeploy:GetDeployment`, `GetDeploymentGroup`,
/// `ListDeploymentTargets`, `GetDeploymentTarget`).
pub trait DeploymentReader: Send + Sync {
    fn deployment(
        &self,
        deployment_id: &str,
    ) -> impl Future<Output = Result<DeploymentSummary, AwsError>> + Send;

    fn deployment_group(
        &self,
        application: &str,
        group: &str,
    ) -> impl Future<Output = Result<DeploymentGroupSummary, AwsError>> + Send;

    /// The lifecycle event now in progress, for hooks deployed without `GREENLIGHT_HOOK`.
    fn current_lifecycle_event(
        &self,
        deployment_id: &str,
    ) -> impl Future<Output = Result<Option<LifecycleEvent>, AwsError>> + Send;

    /// Where the deployment's traffic goes: green's and blue's target groups and when
    /// production traffic started moving (`ListDeploymentTargets`, `GetDeploymentTarget`).
    fn traffic(
        &self,
        deployment_id: &str,
    ) -> impl Future<Output = Result<DeploymentTraffic, AwsError>> + Send;
}

/// An ECS deployment target's task sets and lifecycle, as the analysis and
/// `greenlight status` need them [CodeDeploy API reference, ECSTarget:
/// `taskSetsInfo[].targetGroup.name`, `taskSetLabel` Blue/Green, `trafficWeight`;
/// `lifecycleEvents[].lifecycleEventName`, `status`, `startTime`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeploymentTraffic {
    pub green_target_group: Option<String>,
    pub blue_target_group: Option<String>,
    /// When `AllowTraffic` began: production traffic first reached green.
    pub allow_traffic_started_ms: Option<i64>,
    /// Green's share of production traffic, percent (the Green task set's `trafficWeight`).
    pub green_percent: Option<f64>,
    /// Every lifecycle event with its status (`Pending`, `InProgress`, `Succeeded`,
    /// `Failed`, `Skipped`, `Unknown`), in the order CodeDeploy lists them.
    pub lifecycle: Vec<(String, String)>,
}

/// Finds and stops in-flight deployments (`codedeploy:ListDeployments`, `StopDeployment`,
/// `BatchGetDeploymentGroups`).
pub trait DeploymentStopper: Send + Sync {
    fn in_flight(
        &self,
        application: &str,
        group: &str,
    ) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;

    fn stop_with_rollback(
        &self,
        deployment_id: &str,
    ) -> impl Future<Output = Result<StopOutcome, AwsError>> + Send;

    /// The named deployment groups of one application, with their alarm
    /// configurations. Names that do not exist are left out.
    fn groups(
        &self,
        application: &str,
        names: &[String],
    ) -> impl Future<Output = Result<Vec<DeploymentGroupSummary>, AwsError>> + Send;
}

pub use super::StopOutcome;

/// The real CodeDeploy adapter.
#[derive(Debug, Clone)]
pub struct CodeDeploy {
    client: Client,
}

impl CodeDeploy {
    pub fn new(client: Client) -> Self {
        CodeDeploy { client }
    }

    pub fn from_conf(config: &aws_config::SdkConfig) -> Self {
        CodeDeploy::new(Client::new(config))
    }

    /// What the exactly-once rule needs to know about a group, read in a bounded
    /// number of calls whatever the length of its history: the deployments in flight,
    /// and those created since `since_ms` (milliseconds since the epoch), in no
    /// particular order (AWS documents none for ListDeployments).
    /// (`codedeploy:ListDeployments`, `codedeploy:BatchGetDeployments`)
    pub(crate) async fn group_history(
        &self,
        application: &str,
        group: &str,
        since_ms: i64,
    ) -> Result<GroupHistory, AwsError> {
        let in_flight = self.list_deployment_ids(application, group, ListFilter::InFlight);
        let recent =
            self.list_deployment_ids(application, group, ListFilter::CreatedSince(since_ms));
        let (in_flight, recent) = futures::future::try_join(in_flight, recent).await?;
        let mut ids: Vec<String> = in_flight.iter().chain(&recent).cloned().collect();
        ids.sort();
        ids.dedup();
        let deployments = self.batch_get_deployments(&ids).await?;
        // Filtered again on what BatchGetDeployments says: a deployment may have
        // finished between the two calls.
        Ok(GroupHistory {
            in_flight: deployments
                .iter()
                .filter(|d| in_flight.contains(&d.deployment_id))
                .filter(|d| super::IN_FLIGHT_STATUSES.contains(&d.status.as_str()))
                .cloned()
                .collect(),
            since: deployments
                .into_iter()
                .filter(|d| recent.contains(&d.deployment_id))
                .filter(|d| d.created_at.is_none_or(|created| created >= since_ms))
                .collect(),
        })
    }

    /// Every page of ListDeployments for one group with `filter`.
    async fn list_deployment_ids(
        &self,
        application: &str,
        group: &str,
        filter: ListFilter,
    ) -> Result<Vec<String>, AwsError> {
        let mut request = self
            .client
            .list_deployments()
            .application_name(application)
            .deployment_group_name(group);
        match filter {
            ListFilter::InFlight => {
                for status in super::IN_FLIGHT_STATUSES {
                    request = request.include_only_statuses(deployment_status_sdk(status));
                }
            }
            ListFilter::CreatedSince(since_ms) => {
                request = request.create_time_range(
                    TimeRange::builder()
                        .start(DateTime::from_millis(since_ms))
                        .build(),
                );
            }
        }
        let mut ids = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let page = retry::call(SERVICE, "ListDeployments", || {
                request.clone().set_next_token(next_token.clone()).send()
            })
            .await?;
            ids.extend(page.deployments.unwrap_or_default());
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(token) => next_token = Some(token),
                None => return Ok(ids),
            }
        }
    }

    /// BatchGetDeployments, at most 25 ids a call.
    async fn batch_get_deployments(
        &self,
        ids: &[String],
    ) -> Result<Vec<DeploymentSummary>, AwsError> {
        let mut deployments = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(25) {
            let output = retry::call(SERVICE, "BatchGetDeployments", || {
                self.client
                    .batch_get_deployments()
                    .set_deployment_ids(Some(chunk.to_vec()))
                    .send()
            })
            .await?;
            deployments.extend(
                output
                    .deployments_info
                    .unwrap_or_default()
                    .into_iter()
                    .map(deployment_summary),
            );
        }
        Ok(deployments)
    }

    /// Creates an ECS deployment with an inline AppSpec (`codedeploy:CreateDeployment`).
    pub async fn create_deployment(
        &self,
        application: &str,
        group: &str,
        deployment_config: Option<&str>,
        appspec_json: &str,
        description: &str,
    ) -> Result<String, AwsError> {
        let output = retry::call(SERVICE, "CreateDeployment", || {
            self.client
                .create_deployment()
                .application_name(application)
                .deployment_group_name(group)
                .set_deployment_config_name(deployment_config.map(str::to_string))
                .revision(inline_appspec(appspec_json))
                .description(description)
                .send()
        })
        .await?;
        output.deployment_id.ok_or_else(|| {
            AwsError::unexpected(SERVICE, "CreateDeployment", "no deploymentId in the answer")
        })
    }
}

/// Which deployments a ListDeployments call asks for.
#[derive(Debug, Clone, Copy)]
enum ListFilter {
    InFlight,
    /// Created at or after this time (milliseconds since the epoch).
    CreatedSince(i64),
}

/// A group's deployments as the exactly-once rule reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GroupHistory {
    /// Deployments in flight.
    pub in_flight: Vec<DeploymentSummary>,
    /// Deployments created since the time asked for.
    pub since: Vec<DeploymentSummary>,
}

impl HookReporter for CodeDeploy {
    async fn report(
        &self,
        deployment_id: &str,
        execution_id: &str,
        status: HookStatus,
    ) -> Result<HookReport, AwsError> {
        let result = retry::send(SERVICE, "PutLifecycleEventHookExecutionStatus", || {
            self.client
                .put_lifecycle_event_hook_execution_status()
                .deployment_id(deployment_id)
                .lifecycle_event_hook_execution_id(execution_id)
                .status(sdk_status(status))
                .send()
        })
        .await;
        match result {
            Ok(_) => Ok(HookReport::Reported),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_lifecycle_event_already_completed_exception()) =>
            {
                Ok(HookReport::AlreadyCompleted)
            }
            Err(e) => Err(AwsError::from_sdk(
                SERVICE,
                "PutLifecycleEventHookExecutionStatus",
                e,
            )),
        }
    }
}

impl DeploymentReader for CodeDeploy {
    async fn deployment(&self, deployment_id: &str) -> Result<DeploymentSummary, AwsError> {
        let output = retry::call(SERVICE, "GetDeployment", || {
            self.client
                .get_deployment()
                .deployment_id(deployment_id)
                .send()
        })
        .await?;
        let info = output.deployment_info.ok_or_else(|| {
            AwsError::unexpected(SERVICE, "GetDeployment", "no deploymentInfo in the answer")
        })?;
        let mut summary = deployment_summary(info);
        summary.deployment_id = deployment_id.to_string();
        Ok(summary)
    }

    async fn deployment_group(
        &self,
        application: &str,
        group: &str,
    ) -> Result<DeploymentGroupSummary, AwsError> {
        let output = retry::call(SERVICE, "GetDeploymentGroup", || {
            self.client
                .get_deployment_group()
                .application_name(application)
                .deployment_group_name(group)
                .send()
        })
        .await?;
        let info = output.deployment_group_info.ok_or_else(|| {
            AwsError::unexpected(
                SERVICE,
                "GetDeploymentGroup",
                "no deploymentGroupInfo in the answer",
            )
        })?;
        Ok(group_summary(info))
    }

    async fn current_lifecycle_event(
        &self,
        deployment_id: &str,
    ) -> Result<Option<LifecycleEvent>, AwsError> {
        let events = self
            .ecs_target(deployment_id)
            .await?
            .filter(|t| t.status.as_ref() != Some(&TargetStatus::Failed))
            .map(|t| t.lifecycle_events.unwrap_or_default())
            .unwrap_or_default();
        Ok(events
            .into_iter()
            .filter(|e| e.status == Some(LifecycleEventStatus::InProgress))
            .find_map(|e| e.lifecycle_event_name?.parse().ok()))
    }

    async fn traffic(&self, deployment_id: &str) -> Result<DeploymentTraffic, AwsError> {
        let Some(target) = self.ecs_target(deployment_id).await? else {
            return Ok(DeploymentTraffic::default());
        };
        let task_set = |label: &str| {
            target
                .task_sets_info()
                .iter()
                .find(|t| t.task_set_label().map(|l| l.as_str()) == Some(label))
        };
        let group_of = |label: &str| {
            task_set(label)
                .and_then(|t| t.target_group())
                .and_then(|g| g.name())
                .map(str::to_string)
        };
        Ok(DeploymentTraffic {
            green_target_group: group_of("Green"),
            blue_target_group: group_of("Blue"),
            green_percent: task_set("Green").map(|t| t.traffic_weight()),
            lifecycle: target
                .lifecycle_events()
                .iter()
                .filter_map(|e| {
                    Some((
                        e.lifecycle_event_name()?.to_string(),
                        e.status()
                            .map(|s| s.as_str().to_string())
                            .unwrap_or_default(),
                    ))
                })
                .collect(),
            allow_traffic_started_ms: target
                .lifecycle_events()
                .iter()
                .find(|e| e.lifecycle_event_name() == Some("AllowTraffic"))
                .and_then(|e| e.start_time())
                .and_then(|t| t.to_millis().ok()),
        })
    }
}

impl CodeDeploy {
    /// StopDeployment, with or without CodeDeploy's rollback to the original task set.
    pub async fn stop(&self, deployment_id: &str, rollback: bool) -> Result<StopOutcome, AwsError> {
        let result = retry::send(SERVICE, "StopDeployment", || {
            self.client
                .stop_deployment()
                .deployment_id(deployment_id)
                .auto_rollback_enabled(rollback)
                .send()
        })
        .await;
        match result {
            Ok(output) => Ok(StopOutcome::Stopping {
                status: output
                    .status
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            }),
            // Finished or already-stopped deployments answer with these errors; for an
            // alarm that fired late that is success, not failure.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_deployment_already_completed_exception()) =>
            {
                Ok(StopOutcome::AlreadyDone {
                    reason: "DeploymentAlreadyCompletedException".into(),
                })
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_deployment_does_not_exist_exception()) =>
            {
                Ok(StopOutcome::AlreadyDone {
                    reason: "DeploymentDoesNotExistException".into(),
                })
            }
            Err(e) => Err(AwsError::from_sdk(SERVICE, "StopDeployment", e)),
        }
    }

    /// The deployment's one ECS target, if CodeDeploy lists one.
    async fn ecs_target(
        &self,
        deployment_id: &str,
    ) -> Result<Option<aws_sdk_codedeploy::types::EcsTarget>, AwsError> {
        let targets = retry::call(SERVICE, "ListDeploymentTargets", || {
            self.client
                .list_deployment_targets()
                .deployment_id(deployment_id)
                .send()
        })
        .await?;
        let Some(target_id) = targets.target_ids.unwrap_or_default().into_iter().next() else {
            return Ok(None);
        };
        let target = retry::call(SERVICE, "GetDeploymentTarget", || {
            self.client
                .get_deployment_target()
                .deployment_id(deployment_id)
                .target_id(&target_id)
                .send()
        })
        .await?;
        Ok(target.deployment_target.and_then(|t| t.ecs_target))
    }
}

fn deployment_summary(info: aws_sdk_codedeploy::types::DeploymentInfo) -> DeploymentSummary {
    DeploymentSummary {
        deployment_id: info.deployment_id.unwrap_or_default(),
        application: info.application_name.unwrap_or_default(),
        deployment_group: info.deployment_group_name.unwrap_or_default(),
        status: info
            .status
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        description: info.description,
        created_at: info.create_time.and_then(|t| t.to_millis().ok()),
    }
}

fn group_summary(info: aws_sdk_codedeploy::types::DeploymentGroupInfo) -> DeploymentGroupSummary {
    let pairs = info
        .load_balancer_info
        .and_then(|lb| lb.target_group_pair_info_list)
        .unwrap_or_default();
    let listeners = |pick: fn(
        &aws_sdk_codedeploy::types::TargetGroupPairInfo,
    ) -> Option<&aws_sdk_codedeploy::types::TrafficRoute>| {
        pairs
            .iter()
            .filter_map(pick)
            .flat_map(|route| route.listener_arns().iter().cloned())
            .collect::<Vec<_>>()
    };
    let test_listener_arns = listeners(|p| p.test_traffic_route());
    let production_listener_arns = listeners(|p| p.prod_traffic_route());
    let (alarm_names, alarms_enabled) = match info.alarm_configuration {
        Some(config) => (
            config
                .alarms
                .unwrap_or_default()
                .into_iter()
                .filter_map(|a| a.name)
                .collect(),
            config.enabled,
        ),
        None => (Vec::new(), false),
    };
    DeploymentGroupSummary {
        application: info.application_name.unwrap_or_default(),
        deployment_group: info.deployment_group_name.unwrap_or_default(),
        test_listener_arns,
        production_listener_arns,
        alarm_names,
        alarms_enabled,
    }
}

impl DeploymentStopper for CodeDeploy {
    async fn in_flight(&self, application: &str, group: &str) -> Result<Vec<String>, AwsError> {
        self.list_deployment_ids(application, group, ListFilter::InFlight)
            .await
    }

    async fn stop_with_rollback(&self, deployment_id: &str) -> Result<StopOutcome, AwsError> {
        self.stop(deployment_id, true).await
    }

    async fn groups(
        &self,
        application: &str,
        names: &[String],
    ) -> Result<Vec<DeploymentGroupSummary>, AwsError> {
        let mut groups = Vec::with_capacity(names.len());
        // BatchGetDeploymentGroups takes at most 100 names.
        for chunk in names.chunks(100) {
            let output = retry::call(SERVICE, "BatchGetDeploymentGroups", || {
                self.client
                    .batch_get_deployment_groups()
                    .application_name(application)
                    .set_deployment_group_names(Some(chunk.to_vec()))
                    .send()
            })
            .await?;
            if let Some(message) = output.error_message.filter(|m| !m.is_empty()) {
                // Names that do not exist are reported here, not as an error.
                tracing::warn!(%application, %message, "BatchGetDeploymentGroups reported a problem with the configured groups");
            }
            groups.extend(
                output
                    .deployment_groups_info
                    .unwrap_or_default()
                    .into_iter()
                    .map(group_summary),
            );
        }
        Ok(groups)
    }
}

#[cfg(test)]
mod tests;
