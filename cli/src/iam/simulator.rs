//! IAM's policy simulator (SimulatePrincipalPolicy), for preflight in an account: the
//! engine that reads the role as AWS holds it. Only an explicit "allowed" for every
//! evaluation counts as allowed; an answer with no evaluation at all decides nothing.

use greenlight::aws::AwsError;

/// What the simulator said about one action on one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Simulated {
    Allowed,
    /// `implicitDeny` or `explicitDeny`.
    Denied(String),
    /// The simulator could not be asked, or answered nothing to judge by.
    Undecided(String),
}

pub async fn simulate(
    iam: &aws_sdk_iam::Client,
    role: &str,
    action: &str,
    resource: &str,
) -> Simulated {
    let answer = iam
        .simulate_principal_policy()
        .policy_source_arn(role)
        .action_names(action)
        .resource_arns(resource)
        .send()
        .await;
    match answer {
        Err(e) => Simulated::Undecided(format!(
            "IAM SimulatePrincipalPolicy answered {}",
            AwsError::from_sdk("IAM", "SimulatePrincipalPolicy", e)
        )),
        Ok(out) => {
            let results = out.evaluation_results();
            if results.is_empty() {
                return Simulated::Undecided(
                    "IAM SimulatePrincipalPolicy answered with no evaluation result".into(),
                );
            }
            match results
                .iter()
                .find(|r| r.eval_decision().as_str() != "allowed")
            {
                Some(denied) => Simulated::Denied(denied.eval_decision().as_str().to_string()),
                None => Simulated::Allowed,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use greenlight_standins::http::{response, serve, Handler};

    use super::*;

    /// A local IAM endpoint answering every SimulatePrincipalPolicy with `results`
    /// (the Query protocol's XML, as IAM's API reference shows it).
    async fn iam_answering(results: &'static str) -> aws_sdk_iam::Client {
        let handler: Handler = Arc::new(move |request| {
            Box::pin(async move {
                assert!(String::from_utf8_lossy(&request.body)
                    .contains("Action=SimulatePrincipalPolicy"));
                let body = format!(
                    "<SimulatePrincipalPolicyResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated><EvaluationResults>{results}</EvaluationResults></SimulatePrincipalPolicyResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></SimulatePrincipalPolicyResponse>"
                );
                response(200, "text/xml", body)
            })
        });
        let addr = serve(handler).await.unwrap();
        let sdk = crate_local_config(&format!("http://{addr}")).await;
        aws_sdk_iam::Client::new(&sdk)
    }

    async fn crate_local_config(endpoint: &str) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(aws_credential_types::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .load()
            .await
    }

    fn result(decision: &str) -> String {
        format!("<member><EvalActionName>codedeploy:PutLifecycleEventHookExecutionStatus</EvalActionName><EvalResourceName>*</EvalResourceName><EvalDecision>{decision}</EvalDecision></member>")
    }

    #[tokio::test]
    async fn implicit_deny_is_denied_and_nothing_is_undecided_never_allowed() {
        let role = "arn:aws:iam::123456789012:role/hook";
        let action = "codedeploy:PutLifecycleEventHookExecutionStatus";
        let denied = Box::leak(result("implicitDeny").into_boxed_str());
        let iam = iam_answering(denied).await;
        assert_eq!(
            simulate(&iam, role, action, "*").await,
            Simulated::Denied("implicitDeny".into())
        );
        let iam = iam_answering("").await;
        assert!(
            matches!(simulate(&iam, role, action, "*").await, Simulated::Undecided(r) if r.contains("no evaluation result"))
        );
        let allowed = Box::leak(result("allowed").into_boxed_str());
        let iam = iam_answering(allowed).await;
        assert_eq!(simulate(&iam, role, action, "*").await, Simulated::Allowed);
    }
}
