//! An ECS stand-in for ECS-native blue/green deployments, which the moto emulator
//! does not run (its service-deployment operations answer HTML 500s, and it stores
//! `deploymentConfiguration` with no behaviour). It speaks ECS's real wire protocol
//! (AWS JSON 1.1, `X-Amz-Target: AmazonEC2ContainerServiceV20141113.<Operation>`),
//! answers the deployment operations itself and passes every other call through to
//! the emulator, so the functions reach it with `AWS_ENDPOINT_URL_ECS`.
//!
//! Behaviour, from the Amazon ECS developer guide and API reference:
//! - A service with deployment controller ECS and strategy BLUE_GREEN, CANARY or
//!   LINEAR deploys a new task definition given to UpdateService as a *service
//!   deployment*: PENDING → IN_PROGRESS → SUCCESSFUL, or ROLLBACK_REQUESTED /
//!   ROLLBACK_IN_PROGRESS → ROLLBACK_SUCCESSFUL ["View service history using Amazon
//!   ECS service deployments"].
//! - Stages in order: PRE_SCALE_UP, SCALE_UP, POST_SCALE_UP, TEST_TRAFFIC_SHIFT,
//!   POST_TEST_TRAFFIC_SHIFT, PRE_PRODUCTION_TRAFFIC_SHIFT, PRODUCTION_TRAFFIC_SHIFT,
//!   POST_PRODUCTION_TRAFFIC_SHIFT, BAKE_TIME, CLEAN_UP; Lambda hooks run at the stages
//!   they name except SCALE_UP, BAKE_TIME and CLEAN_UP ["Lifecycle hooks for Amazon
//!   ECS service deployments"]. With CANARY (canaryPercent, then 100) and LINEAR
//!   (stepPercent steps) the PRE_PRODUCTION_TRAFFIC_SHIFT and PRODUCTION_TRAFFIC_SHIFT
//!   hooks run at every step.
//! - A Lambda hook gets `{executionId, lifecycleStage, resourceArn, executionDetails
//!   {serviceArn, targetServiceRevisionArn, testTrafficWeights, productionTrafficWeights},
//!   hookDetails}` and answers `{hookStatus, callBackDelay?, hookDetails?}`: SUCCEEDED
//!   goes on, FAILED rolls back, IN_PROGRESS is invoked again after `callBackDelay`
//!   (default 30 s) with the returned hookDetails; an error or an answer without a
//!   valid hookStatus rolls back ["Lambda hooks for Amazon ECS service deployments"].
//! - A PAUSE hook waits in AWAITING_ACTION until ContinueServiceDeployment CONTINUE
//!   or ROLLBACK.
//! - During a rollback the TEST_TRAFFIC_SHIFT and PRODUCTION_TRAFFIC_SHIFT hooks run
//!   again with the weights swung back to the source revision.
//! - StopServiceDeployment ROLLBACK on a pending or ongoing deployment moves it to
//!   ROLLBACK_REQUESTED and rolls back ["Stopping Amazon ECS service deployments"]; on
//!   a finished one ECS answers ConflictException.
//! - EventBridge "ECS Deployment State Change": SERVICE_DEPLOYMENT_IN_PROGRESS,
//!   SERVICE_DEPLOYMENT_COMPLETED, SERVICE_DEPLOYMENT_FAILED, with the service ARN in
//!   `resources` and an `ecs-svc/…` deploymentId.
//!
//! Simplified, and said so: minutes compressed to `Timing::minute`, callback seconds
//! to `Timing::second`; no tasks actually run (the local load balancer's Traffic
//! plays green); an UpdateService while a deployment is in flight stops the
//! in-flight one and starts the new one (an assumption: Greenlight never does it);
//! no alarms or circuit breaker of ECS's own. Tasks: only the ones the rehearsal
//! plays for green ([`tasks`]), answered by ListTasks and DescribeTasks.

mod api;
mod engine;
mod state;
mod tasks;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

use crate::ports::{EventSink, Observer, Traffic};
use state::{Inner, World};

use crate::http::{response, Handler, Request};
use crate::json11::{error, ApiError};
pub use state::{LambdaInvoker, Timing};
pub use tasks::{PlayedTask, Stopped};

const TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113.";

/// The stand-in; clone freely.
#[derive(Clone)]
pub struct EcsStandIn {
    inner: Arc<Inner>,
}

impl EcsStandIn {
    /// `upstream`: the emulator every other ECS call goes to.
    pub fn new(
        upstream: String,
        traffic: Arc<dyn Traffic>,
        lambda: LambdaInvoker,
        events: EventSink,
        observer: Observer,
        timing: Timing,
    ) -> Self {
        EcsStandIn {
            inner: Arc::new(Inner {
                world: Mutex::new(World::default()),
                upstream,
                http: reqwest::Client::new(),
                traffic,
                lambda,
                events,
                observer,
                timing,
            }),
        }
    }

    /// The HTTP handler (serve it with [`crate::http::serve`]).
    pub fn handler(&self) -> Handler {
        let this = self.clone();
        crate::traffic::recorded(
            "ecs",
            Arc::new(move |request: Request| {
                let this = this.clone();
                Box::pin(async move { this.answer(request).await })
            }),
        )
    }

    async fn answer(&self, request: Request) -> crate::http::Response {
        let operation = request
            .header("x-amz-target")
            .and_then(|t| t.strip_prefix(TARGET_PREFIX))
            .unwrap_or_default()
            .to_string();
        let input: Value =
            serde_json::from_slice(&request.body).unwrap_or(Value::Object(Map::new()));
        let result = match operation.as_str() {
            "CreateService" => self.create_service(&input).await,
            "UpdateService" => self.update_service(&input).await,
            "DescribeServices" => self.describe_services(&input).await,
            "ListServiceDeployments" => self.list_service_deployments(&input),
            "DescribeServiceDeployments" => self.describe_service_deployments(&input),
            "DescribeServiceRevisions" => self.describe_service_revisions(&input),
            "StopServiceDeployment" => self.stop_service_deployment(&input),
            "ContinueServiceDeployment" => self.continue_service_deployment(&input),
            "ListTasks" => self.list_tasks(&input),
            "DescribeTasks" => self.describe_tasks(&input),
            _ => return self.forward_raw(&operation, request.body.to_vec()).await,
        };
        match result {
            Ok(output) => response(200, "application/x-amz-json-1.1", output.to_string()),
            Err(e) => {
                (self.inner.observer)(format!("ECS {operation} -> {}: {}", e.code, e.message));
                crate::http::json_error(e.code, &e.message)
            }
        }
    }

    /// Passes a call through to the emulator, unchanged.
    async fn forward_raw(&self, operation: &str, body: Vec<u8>) -> crate::http::Response {
        match self.call_upstream_raw(operation, body).await {
            Ok((status, text)) => {
                let mut r = response(status, "application/x-amz-json-1.1", text);
                r.headers_mut().insert(
                    crate::traffic::FORWARDED,
                    hyper::header::HeaderValue::from_static("emulator"),
                );
                r
            }
            Err(e) => response(502, "text/plain", format!("ECS stand-in upstream: {e}")),
        }
    }

    async fn call_upstream_raw(
        &self,
        operation: &str,
        body: Vec<u8>,
    ) -> Result<(u16, String), String> {
        let answer = self
            .inner
            .http
            .post(&self.inner.upstream)
            .header("x-amz-target", format!("{TARGET_PREFIX}{operation}"))
            .header("content-type", "application/x-amz-json-1.1")
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ecs/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = answer.status().as_u16();
        Ok((status, answer.text().await.map_err(|e| e.to_string())?))
    }

    async fn upstream(&self, operation: &str, input: &Value) -> Result<Value, ApiError> {
        let (status, text) = self
            .call_upstream_raw(operation, input.to_string().into_bytes())
            .await
            .map_err(|e| error("ServerException", e))?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status >= 400 {
            return Err(error(
                "ClientException",
                format!("emulator answered {status} to {operation}: {text}"),
            ));
        }
        Ok(value)
    }

    /// Status of a service deployment, for tests and the rehearsal.
    pub fn status(&self, arn: &str) -> Option<String> {
        self.with(arn, |d| d.status.clone())
    }

    /// How a deployment ended, in CodeDeploy's words (Succeeded, Failed, Stopped), or
    /// its ECS status while in flight: the rehearsal reads both paths alike.
    pub fn outcome(&self, arn: &str) -> Option<String> {
        self.with(arn, |d| match d.status.as_str() {
            "SUCCESSFUL" => "Succeeded".to_string(),
            "ROLLBACK_SUCCESSFUL" | "ROLLBACK_FAILED" | "STOPPED" if d.stopped_on_request => {
                "Stopped".to_string()
            }
            "ROLLBACK_SUCCESSFUL" | "ROLLBACK_FAILED" | "STOPPED" => "Failed".to_string(),
            other => other.to_string(),
        })
    }

    /// Every service deployment ARN, oldest first.
    pub fn deployment_arns(&self) -> Vec<String> {
        let world = self.inner.world.lock().unwrap();
        world.deployments.iter().map(|d| d.arn.clone()).collect()
    }

    /// The hook of a deployment awaiting action, if any: (deployment ARN, hook id).
    pub fn awaiting_action(&self) -> Option<(String, String)> {
        let world = self.inner.world.lock().unwrap();
        world.deployments.iter().find_map(|d| {
            d.hooks
                .iter()
                .find(|h| h.status == "AWAITING_ACTION")
                .map(|h| (d.arn.clone(), h.hook_id.clone()))
        })
    }
}
