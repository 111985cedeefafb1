//! The moto emulator does not implement PutLifecycleEventHookExecutionStatus or
//! StopDeployment, so these adapter paths are tested at the SDK layer.
use super::*;
use aws_sdk_codedeploy::operation::put_lifecycle_event_hook_execution_status::{
    PutLifecycleEventHookExecutionStatusError, PutLifecycleEventHookExecutionStatusOutput,
};
use aws_sdk_codedeploy::operation::stop_deployment::{StopDeploymentError, StopDeploymentOutput};
use aws_sdk_codedeploy::types::error::{
    DeploymentAlreadyCompletedException, LifecycleEventAlreadyCompletedException,
};
use aws_sdk_codedeploy::types::StopStatus;
use aws_smithy_mocks::{mock, mock_client};

#[tokio::test]
async fn report_sends_the_ids_and_status() {
    let rule = mock!(Client::put_lifecycle_event_hook_execution_status)
        .match_requests(|r| {
            r.deployment_id() == Some("d-1")
                && r.lifecycle_event_hook_execution_id() == Some("exec-1")
                && r.status() == Some(&LifecycleEventStatus::Failed)
        })
        .then_output(|| PutLifecycleEventHookExecutionStatusOutput::builder().build());
    let adapter = CodeDeploy::new(mock_client!(aws_sdk_codedeploy, [&rule]));
    let outcome = adapter
        .report("d-1", "exec-1", HookStatus::Failed)
        .await
        .unwrap();
    assert_eq!(outcome, HookReport::Reported);
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn a_second_report_is_already_completed_not_an_error() {
    let rule = mock!(Client::put_lifecycle_event_hook_execution_status).then_error(|| {
        PutLifecycleEventHookExecutionStatusError::LifecycleEventAlreadyCompletedException(
            LifecycleEventAlreadyCompletedException::builder()
                .message("already")
                .build(),
        )
    });
    let adapter = CodeDeploy::new(mock_client!(aws_sdk_codedeploy, [&rule]));
    let outcome = adapter
        .report("d-1", "exec-1", HookStatus::Succeeded)
        .await
        .unwrap();
    assert_eq!(outcome, HookReport::AlreadyCompleted);
}

#[tokio::test]
async fn stop_asks_for_rollback_and_a_finished_deployment_is_a_no_op() {
    let stop = mock!(Client::stop_deployment)
        .match_requests(|r| {
            r.deployment_id() == Some("d-live") && r.auto_rollback_enabled() == Some(true)
        })
        .then_output(|| {
            StopDeploymentOutput::builder()
                .status(StopStatus::Pending)
                .build()
        });
    let done = mock!(Client::stop_deployment)
        .match_requests(|r| r.deployment_id() == Some("d-done"))
        .then_error(|| {
            StopDeploymentError::DeploymentAlreadyCompletedException(
                DeploymentAlreadyCompletedException::builder()
                    .message("done")
                    .build(),
            )
        });
    let adapter = CodeDeploy::new(mock_client!(aws_sdk_codedeploy, [&stop, &done]));
    assert_eq!(
        adapter.stop_with_rollback("d-live").await.unwrap(),
        StopOutcome::Stopping {
            status: "Pending".into()
        }
    );
    assert!(matches!(
        adapter.stop_with_rollback("d-done").await.unwrap(),
        StopOutcome::AlreadyDone { .. }
    ));
    assert_eq!(stop.num_calls(), 1);
    assert_eq!(done.num_calls(), 1);
}
