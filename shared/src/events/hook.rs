//! A lifecycle hook invocation: CodeDeploy's payload or ECS-native's, told apart
//! by its shape.

use aws_lambda_events::codedeploy::CodeDeployLifecycleEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::parse::{eventbridge_kind, foreign, non_empty, typed, EventError};

/// CodeDeploy's lifecycle hook payload. It does not name the lifecycle event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookInvocation {
    pub deployment_id: String,
    pub execution_id: String,
}

impl HookInvocation {
    const KIND: &'static str = "CodeDeploy lifecycle hook payload";

    pub fn parse(value: &Value) -> Result<Self, EventError> {
        if value.get("DeploymentId").is_none() && eventbridge_kind(value).is_some() {
            return Err(foreign(
                value,
                "CodeDeploy lifecycle hook payloads {DeploymentId, LifecycleEventHookExecutionId}",
            ));
        }
        let event: CodeDeployLifecycleEvent = typed(Self::KIND, value)?;
        Ok(HookInvocation {
            deployment_id: non_empty(Self::KIND, "DeploymentId", event.deployment_id)?,
            execution_id: non_empty(
                Self::KIND,
                "LifecycleEventHookExecutionId",
                event.lifecycle_event_hook_execution_id,
            )?,
        })
    }
}

/// An ECS-native blue/green Lambda hook invocation [developer guide, "Lambda hooks
/// for Amazon ECS service deployments"]: `{executionId, lifecycleStage, resourceArn,
/// executionDetails {serviceArn, targetServiceRevisionArn, testTrafficWeights,
/// productionTrafficWeights}, hookDetails}`. The answer is the invocation's return
/// value: `{hookStatus, callBackDelay?, hookDetails?}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EcsHookInvocation {
    pub execution_id: String,
    /// The stage as ECS named it (the SDK's enum lacks some, so it stays text here).
    pub stage_name: String,
    /// The service deployment ARN.
    pub resource_arn: String,
    pub service_arn: String,
    pub target_revision_arn: Option<String>,
    /// Service revision ARN → percent; filled only at the traffic-shift stages.
    pub test_weights: std::collections::BTreeMap<String, f64>,
    pub production_weights: std::collections::BTreeMap<String, f64>,
    /// What the hook configuration set, merged with what an IN_PROGRESS answer returned.
    pub hook_details: Value,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct EcsHookPayload {
    execution_id: String,
    lifecycle_stage: String,
    resource_arn: String,
    execution_details: EcsExecutionDetails,
    #[serde(default)]
    hook_details: Option<Value>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct EcsExecutionDetails {
    service_arn: String,
    #[serde(default)]
    target_service_revision_arn: Option<String>,
    #[serde(default)]
    test_traffic_weights: Option<std::collections::BTreeMap<String, f64>>,
    #[serde(default)]
    production_traffic_weights: Option<std::collections::BTreeMap<String, f64>>,
}

impl EcsHookInvocation {
    const KIND: &'static str = "ECS lifecycle hook payload";

    pub fn parse(value: &Value) -> Result<Self, EventError> {
        let payload: EcsHookPayload = typed(Self::KIND, value)?;
        let details = payload.execution_details;
        Ok(EcsHookInvocation {
            execution_id: non_empty(Self::KIND, "executionId", payload.execution_id)?,
            stage_name: non_empty(Self::KIND, "lifecycleStage", payload.lifecycle_stage)?,
            resource_arn: non_empty(Self::KIND, "resourceArn", payload.resource_arn)?,
            service_arn: non_empty(
                Self::KIND,
                "executionDetails.serviceArn",
                details.service_arn,
            )?,
            target_revision_arn: details.target_service_revision_arn,
            test_weights: details.test_traffic_weights.unwrap_or_default(),
            production_weights: details.production_traffic_weights.unwrap_or_default(),
            hook_details: payload
                .hook_details
                .filter(Value::is_object)
                .unwrap_or_else(|| Value::Object(Default::default())),
        })
    }

    /// The stage, when it is one Greenlight knows.
    pub fn stage(&self) -> Option<crate::LifecycleEvent> {
        self.stage_name.parse().ok()
    }

    /// ECS runs the TEST_TRAFFIC_SHIFT and PRODUCTION_TRAFFIC_SHIFT hooks again
    /// during a rollback, with the weights swung back: the target revision (still
    /// the new one) at 0 while another revision holds the traffic.
    pub fn is_rollback(&self) -> bool {
        let Some(target) = &self.target_revision_arn else {
            return false;
        };
        let swung_back = |weights: &std::collections::BTreeMap<String, f64>| {
            !weights.is_empty()
                && weights.get(target).copied().unwrap_or(0.0) == 0.0
                && weights.iter().any(|(arn, w)| arn != target && *w > 0.0)
        };
        matches!(
            self.stage_name.as_str(),
            "TEST_TRAFFIC_SHIFT" | "PRODUCTION_TRAFFIC_SHIFT"
        ) && (swung_back(&self.test_weights) || swung_back(&self.production_weights))
    }
}

/// A lifecycle hook invocation from either engine, told apart by its shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum HookPayload {
    CodeDeploy(HookInvocation),
    EcsNative(EcsHookInvocation),
}

impl HookPayload {
    pub fn parse(value: &Value) -> Result<Self, EventError> {
        if value.get("executionDetails").is_some() || value.get("lifecycleStage").is_some() {
            EcsHookInvocation::parse(value).map(HookPayload::EcsNative)
        } else {
            HookInvocation::parse(value).map(HookPayload::CodeDeploy)
        }
    }
}
