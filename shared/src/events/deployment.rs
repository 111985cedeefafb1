//! A deployment changed state: CodeDeploy's and ECS's EventBridge events.

use aws_lambda_events::codedeploy::CodeDeployEventDetail;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::parse::{
    eventbridge_kind, foreign, non_empty, required, typed, EventError, CODEDEPLOY_SOURCE,
    DEPLOYMENT_STATE_CHANGE, ECS_DEPLOYMENT_STATE_CHANGE, ECS_SOURCE,
};

/// A CodeDeploy deployment changed state (EventBridge "CodeDeploy Deployment State-change Notification").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentStateChange {
    pub application: String,
    pub deployment_group: String,
    pub deployment_id: String,
    /// START, SUCCESS, FAILURE, STOP, READY, ...
    pub state: String,
    pub region: Option<String>,
}

impl DeploymentStateChange {
    const KIND: &'static str = "CodeDeploy Deployment State-change Notification";

    /// The deployment ended: its group can take the next one.
    pub fn is_terminal(&self) -> bool {
        matches!(self.state.as_str(), "SUCCESS" | "FAILURE" | "STOP")
    }

    pub fn parse(value: &Value) -> Result<Self, EventError> {
        match eventbridge_kind(value) {
            Some((CODEDEPLOY_SOURCE, DEPLOYMENT_STATE_CHANGE)) => {}
            _ => {
                return Err(foreign(
                    value,
                    "CodeDeploy Deployment State-change Notification events",
                ))
            }
        }
        let event: EventBridgeEvent<CodeDeployEventDetail> = typed(Self::KIND, value)?;
        let detail = event.detail;
        Ok(DeploymentStateChange {
            application: required(Self::KIND, "detail.application", detail.application)?,
            deployment_group: required(
                Self::KIND,
                "detail.deploymentGroup",
                detail.deployment_group,
            )?,
            deployment_id: required(Self::KIND, "detail.deploymentId", detail.deployment_id)?,
            state: non_empty(Self::KIND, "detail.state", detail.state)?,
            region: detail.region.or(event.region),
        })
    }
}

/// An ECS service deployment changed state (EventBridge "ECS Deployment State
/// Change", [developer guide, "Amazon ECS service deployment state change events"]):
/// `resources[0]` is the service ARN, `detail.eventName` one of
/// SERVICE_DEPLOYMENT_IN_PROGRESS, SERVICE_DEPLOYMENT_COMPLETED, SERVICE_DEPLOYMENT_FAILED.
/// Its `deploymentId` is the service's `ecs-svc/…` deployment id, not the service
/// deployment ARN the deployment APIs take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EcsDeploymentStateChange {
    pub service_arn: String,
    pub event_name: String,
    pub deployment_id: Option<String>,
    pub reason: Option<String>,
    pub region: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct EcsDeploymentDetail {
    event_name: String,
    #[serde(default)]
    deployment_id: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

impl EcsDeploymentStateChange {
    const KIND: &'static str = "ECS Deployment State Change";

    /// COMPLETED or FAILED: the service can take the next deployment.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self.event_name.as_str(),
            "SERVICE_DEPLOYMENT_COMPLETED" | "SERVICE_DEPLOYMENT_FAILED"
        )
    }

    /// The CodeDeploy-style state word Greenlight reports: SUCCESS, FAILURE or START.
    pub fn state(&self) -> &'static str {
        match self.event_name.as_str() {
            "SERVICE_DEPLOYMENT_COMPLETED" => "SUCCESS",
            "SERVICE_DEPLOYMENT_FAILED" => "FAILURE",
            _ => "START",
        }
    }

    pub fn parse(value: &Value) -> Result<Self, EventError> {
        match eventbridge_kind(value) {
            Some((ECS_SOURCE, ECS_DEPLOYMENT_STATE_CHANGE)) => {}
            _ => return Err(foreign(value, "ECS Deployment State Change events")),
        }
        let event: EventBridgeEvent<EcsDeploymentDetail> = typed(Self::KIND, value)?;
        let service_arn = event
            .resources
            .unwrap_or_default()
            .into_iter()
            .find(|r| r.contains(":service/"))
            .ok_or_else(|| {
                EventError::malformed(Self::KIND, "resources", "names no ECS service ARN")
            })?;
        Ok(EcsDeploymentStateChange {
            service_arn,
            event_name: non_empty(Self::KIND, "detail.eventName", event.detail.event_name)?,
            deployment_id: event.detail.deployment_id,
            reason: event.detail.reason,
            region: event.region,
        })
    }
}
