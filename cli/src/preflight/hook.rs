//! What both engines need of Greenlight's hook function: that it exists, that the
//! engine may invoke it and that it may answer; and that the test listener is not
//! reachable from the internet.

use greenlight::LifecycleEvent;

use super::{Run, Severity};

/// The hook function exists and may be called; with `answers_through_api` (CodeDeploy)
/// its role may also report the hook's status.
pub(super) async fn check_hook_function(
    run: &mut Run<'_>,
    function: &str,
    event: LifecycleEvent,
    caller_role: Option<String>,
    answers_through_api: bool,
) {
    let found = run
        .clients
        .lambda
        .get_function()
        .function_name(function)
        .send()
        .await;
    let config = match found {
        Ok(out) => out.configuration,
        Err(e) => {
            let missing = e
                .as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception());
            run.find(
                if missing { Severity::Error } else { Severity::Undecided },
                "hook-function",
                if missing {
                    format!("hook function {function} ({event}) does not exist: the engine will wait for an answer that never comes (CodeDeploy: up to an hour), then fail")
                } else {
                    format!("Lambda GetFunction {function} failed: {e:?}")
                },
                "deploy Greenlight's template (HookFunctionPrefix) or pass --hook-function with the pattern your AppSpec uses",
            );
            return;
        }
    };
    let Some(config) = config else { return };
    let function_arn = config.function_arn().unwrap_or(function).to_string();
    if let (Some(role), true) = (config.role(), answers_through_api) {
        simulate(run, role, "codedeploy:PutLifecycleEventHookExecutionStatus", "*", "hook-role",
            format!("the hook's role {role} may not call codedeploy:PutLifecycleEventHookExecutionStatus: every deployment would hang an hour at {event}"),
            "grant codedeploy:PutLifecycleEventHookExecutionStatus to the hook's role (the template's HookRole does)").await;
    }
    if let Some(caller) = caller_role {
        simulate(
            run,
            &caller,
            "lambda:InvokeFunction",
            &function_arn,
            "invoke-role",
            format!("{caller} may not invoke {function}: the engine cannot run the {event} hook"),
            "grant lambda:InvokeFunction on the hook function to that role",
        )
        .await;
    }
}

/// The test listener serves green before anyone has judged it: it must exist and not
/// face the internet. Its load balancer's scheme is read; its security groups are not
/// (that needs EC2), so an internet-facing one is a warning that says what to verify.
pub(super) async fn check_test_listener_exposure(run: &mut Run<'_>, listener: &str) {
    let found = run
        .clients
        .elb
        .describe_listeners()
        .listener_arns(listener)
        .send()
        .await;
    let lb = match found {
        Ok(out) => out
            .listeners()
            .first()
            .and_then(|l| l.load_balancer_arn().map(str::to_string)),
        Err(_) => {
            run.find(
                Severity::Error,
                "test-listener",
                format!("the test listener {listener} does not exist"),
                "create it, or point the deployment configuration at the right one",
            );
            return;
        }
    };
    let Some(lb) = lb else { return };
    let scheme = run
        .clients
        .elb
        .describe_load_balancers()
        .load_balancer_arns(&lb)
        .send()
        .await
        .ok()
        .and_then(|o| {
            o.load_balancers()
                .first()
                .and_then(|l| l.scheme().map(|s| s.as_str().to_string()))
        });
    if scheme.as_deref() == Some("internet-facing") {
        run.find(
            Severity::Warning,
            "test-listener",
            format!("the test listener {listener} is on an internet-facing load balancer: unless its security group closes the test port, anyone can reach green before it is judged (preflight does not read security groups)"),
            "allow the test listener's port only from your network (and Greenlight's hooks) in the load balancer's security group, or use an internal load balancer",
        );
    }
}

/// IAM's policy simulator: denied is an error; unavailable is undecided, said so.
#[allow(clippy::too_many_arguments)]
pub(super) async fn simulate(
    run: &mut Run<'_>,
    role: &str,
    action: &str,
    resource: &str,
    check: &'static str,
    problem: String,
    fix: &str,
) {
    use greenlight_cli::iam::Simulated;
    match greenlight_cli::iam::simulate(&run.clients.iam, role, action, resource).await {
        Simulated::Allowed => {}
        Simulated::Denied(decision) => run.find(
            Severity::Error,
            check,
            format!("{problem} (IAM's policy simulator: {decision})"),
            fix,
        ),
        Simulated::Undecided(why) => run.find(
            Severity::Undecided,
            check,
            format!("cannot tell whether {role} may call {action}: {why}"),
            format!("check by hand, or let preflight call iam:SimulatePrincipalPolicy; {fix}"),
        ),
    }
}
