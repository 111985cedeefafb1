//! The CodeDeploy path's set-up: the deployment group, its listeners and the hooks
//! its AppSpec names.

use greenlight::config::CodeDeployTarget;

use super::hook::{check_hook_function, check_test_listener_exposure};
use super::{Run, Severity};

pub(super) async fn check_deployment_group(run: &mut Run<'_>, cd: &CodeDeployTarget) {
    let group = run
        .clients
        .codedeploy
        .get_deployment_group()
        .application_name(&cd.application)
        .deployment_group_name(&cd.deployment_group)
        .send()
        .await;
    let info = match group {
        Ok(out) => out.deployment_group_info,
        Err(e) => {
            run.find(
                Severity::Error,
                "codedeploy-group",
                format!(
                    "deployment group {}/{} cannot be read: {}",
                    cd.application,
                    cd.deployment_group,
                    greenlight::aws::AwsError::from_sdk("CodeDeploy", "GetDeploymentGroup", e)
                ),
                "fix codedeploy.application / deployment_group, or create the group",
            );
            return;
        }
    };
    let Some(info) = info else { return };
    let names_service = info.ecs_services().iter().any(|s| {
        s.service_name() == Some(run.service.service.as_str())
            && s.cluster_name().is_some_and(|c| {
                c == run.service.cluster || c.ends_with(&format!("/{}", run.service.cluster))
            })
    });
    if !names_service {
        run.find(
            Severity::Error,
            "codedeploy-group",
            format!("deployment group {}/{} does not deploy {}/{}", cd.application, cd.deployment_group, run.service.cluster, run.service.service),
            "point the group's ecsServices at the configured cluster and service (or fix the configuration)",
        );
    }
    let test_listeners: Vec<String> = info
        .load_balancer_info()
        .map(|lb| lb.target_group_pair_info_list().to_vec())
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.test_traffic_route().map(|r| r.listener_arns().to_vec()))
        .flatten()
        .collect();
    if test_listeners.is_empty() {
        run.find(Severity::Error, "test-listener", format!("deployment group {}/{} has no test listener: smoke checks have nothing to reach before production moves", cd.application, cd.deployment_group), "add a testTrafficRoute to the group's targetGroupPairInfoList");
    }
    for listener in test_listeners {
        check_test_listener_exposure(run, &listener).await;
    }
    for event in cd.hooks.clone() {
        let function = greenlight::deploy::hook_function(&run.hook_pattern, event);
        check_hook_function(
            run,
            &function,
            event,
            info.service_role_arn().map(str::to_string),
            true,
        )
        .await;
    }
}
