//! The converse of the judgement: every AWS call a function actually made (recorded by
//! the stand-ins, `standins/src/traffic.rs`, signed with the function's own access key
//! id in the rehearsal) held against the role the template gives that function. A
//! call maps to its IAM action and the ARN of each resource AWS authorises it against
//! (for CodeDeploy, ECS and CloudWatch, the services the stand-ins serve); a call the
//! mapping does not know is reported, never passed.

use std::collections::BTreeMap;

use serde_json::Value;

use super::evaluate::{evaluate, Decision};
use super::template::{Grant, ACCOUNT, REGION};

/// One recorded call, as `standins::traffic` writes it.
#[derive(Debug, Clone)]
pub struct Call {
    pub caller: String,
    pub service: String,
    pub operation: String,
    pub request: Value,
    pub response: Value,
}

/// What became of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// `caller service Operation (action)`.
    pub call: String,
    /// The first resource the call was not allowed on, if any.
    pub resource: Option<String>,
    pub decision: Decision,
}

/// Reads every `*.jsonl` under `dir`, keeping the calls signed by one of `callers`.
pub fn read(dir: &std::path::Path, callers: &[&str]) -> Result<Vec<Call>, String> {
    let mut calls = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("jsonl") {
            continue;
        }
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let record: Value =
                serde_json::from_str(line).map_err(|e| format!("{}: {e}", path.display()))?;
            let caller = record["caller"].as_str().unwrap_or_default();
            if !callers.contains(&caller) || record["status"].as_u64() != Some(200) {
                continue;
            }
            calls.push(Call {
                caller: caller.to_string(),
                service: record["service"].as_str().unwrap_or_default().to_string(),
                operation: record["operation"].as_str().unwrap_or_default().to_string(),
                request: record["request"].clone(),
                response: record["response"].clone(),
            });
        }
    }
    Ok(calls)
}

/// The IAM action of a call and the resources it is authorised against; `None` when
/// the mapping does not know the operation.
pub fn authorisation(call: &Call) -> Option<(String, Vec<String>)> {
    let (req, res) = (&call.request, &call.response);
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let group = |app: &Value, group: &Value| {
        format!(
            "arn:aws:codedeploy:{REGION}:{ACCOUNT}:deploymentgroup:{}/{}",
            s(app),
            s(group)
        )
    };
    let star = || vec!["*".to_string()];
    let resources = match (call.service.as_str(), call.operation.as_str()) {
        ("codedeploy", "CreateDeployment" | "ListDeployments" | "GetDeploymentGroup") => {
            vec![group(&req["applicationName"], &req["deploymentGroupName"])]
        }
        ("codedeploy", "BatchGetDeploymentGroups") => req["deploymentGroupNames"]
            .as_array()?
            .iter()
            .map(|g| group(&req["applicationName"], g))
            .collect(),
        ("codedeploy", "GetDeployment") => {
            let info = &res["deploymentInfo"];
            vec![group(
                &info["applicationName"],
                &info["deploymentGroupName"],
            )]
        }
        ("codedeploy", "BatchGetDeployments") => res["deploymentsInfo"]
            .as_array()?
            .iter()
            .map(|i| group(&i["applicationName"], &i["deploymentGroupName"]))
            .collect(),
        (
            "codedeploy",
            "StopDeployment"
            | "PutLifecycleEventHookExecutionStatus"
            | "GetDeploymentTarget"
            | "ListDeploymentTargets"
            | "BatchGetDeploymentTargets"
            | "ContinueDeployment",
        ) => star(),
        ("ecs", "DescribeServices") => req["services"]
            .as_array()?
            .iter()
            .map(|name| service_arn(&req["cluster"], name))
            .collect(),
        ("ecs", "UpdateService" | "ListServiceDeployments") => {
            vec![service_arn(&req["cluster"], &req["service"])]
        }
        ("ecs", "DescribeServiceDeployments") => {
            with_service(req["serviceDeploymentArns"].as_array()?)
        }
        ("ecs", "DescribeServiceRevisions") => with_service(req["serviceRevisionArns"].as_array()?),
        ("ecs", "StopServiceDeployment" | "ContinueServiceDeployment") => {
            with_service(std::slice::from_ref(&req["serviceDeploymentArn"]))
        }
        ("ecs", "DescribeTaskDefinition") | ("cloudwatch", "GetMetricData") => star(),
        // No container instance named: AWS authorises the call against "*" (see
        // `judge::AUTHORISED_AGAINST_STAR`), with the cluster as `ecs:cluster`.
        ("ecs", "ListTasks") => star(),
        ("ecs", "DescribeTasks") => req["tasks"]
            .as_array()?
            .iter()
            .map(|t| match t.as_str().unwrap_or_default() {
                arn if arn.starts_with("arn:") => arn.to_string(),
                id => format!(
                    "arn:aws:ecs:{REGION}:{ACCOUNT}:task/{}/{id}",
                    cluster_name(&req["cluster"])
                ),
            })
            .collect(),
        ("cloudwatch", "DescribeAlarms") => req["AlarmNames"]
            .as_array()?
            .iter()
            .map(|n| format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{}", s(n)))
            .collect(),
        _ => return None,
    };
    // The stand-ins' service names are the IAM prefixes (codedeploy, ecs, cloudwatch).
    Some((format!("{}:{}", call.service, call.operation), resources))
}

/// The condition keys a call carries that the roles' conditions read: the cluster of
/// an ECS task call (`ecs:cluster`).
fn context(call: &Call) -> BTreeMap<String, String> {
    let mut context = BTreeMap::new();
    if call.service == "ecs" && matches!(call.operation.as_str(), "ListTasks" | "DescribeTasks") {
        context.insert(
            "ecs:cluster".to_string(),
            format!(
                "arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{}",
                cluster_name(&call.request["cluster"])
            ),
        );
    }
    context
}

/// A cluster as ECS takes it (name, ARN, or absent: `default`) → its name.
fn cluster_name(cluster: &Value) -> &str {
    let cluster = cluster.as_str().unwrap_or("default");
    cluster.rsplit('/').next().unwrap_or(cluster)
}

/// `cluster` and `service` as ECS takes them (names or ARNs) → the service's ARN.
fn service_arn(cluster: &Value, service: &Value) -> String {
    let service = service.as_str().unwrap_or_default();
    if service.starts_with("arn:") {
        return service.to_string();
    }
    let cluster = cluster_name(cluster);
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{cluster}/{service}")
}

/// Service-deployment or service-revision ARNs, each with its service's ARN (ECS
/// authorises these calls against both).
fn with_service(arns: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for arn in arns.iter().filter_map(Value::as_str) {
        out.push(arn.to_string());
        // …:service-deployment/<cluster>/<service>/<id> → …:service/<cluster>/<service>
        if let Some((head, path)) = arn
            .split_once(":service-deployment/")
            .or_else(|| arn.split_once(":service-revision/"))
        {
            let mut parts = path.splitn(3, '/');
            if let (Some(cluster), Some(service)) = (parts.next(), parts.next()) {
                out.push(format!("{head}:service/{cluster}/{service}"));
            }
        }
    }
    out
}

/// Holds each call against the statements of its caller's role: the grant, among
/// `grants`, of the function whose binary is the caller, under the case in which
/// every template condition is false (the statements every stack has).
pub fn judge_calls(
    calls: &[Call],
    grants: &[Grant],
    function_of: &BTreeMap<String, Vec<String>>,
) -> Vec<Verdict> {
    let mut out = Vec::new();
    for call in calls {
        let name = format!("{} {} {}", call.caller, call.service, call.operation);
        let functions = function_of.get(&call.caller).cloned().unwrap_or_default();
        let Some(grant) = grants.iter().find(|g| {
            g.functions.iter().any(|f| functions.contains(f)) && !g.case.contains("=true")
        }) else {
            out.push(Verdict {
                call: name,
                resource: None,
                decision: Decision::Undecided(format!(
                    "the template runs no function from binary {}",
                    call.caller
                )),
            });
            continue;
        };
        let Some((action, resources)) = authorisation(call) else {
            out.push(Verdict {
                call: name,
                resource: None,
                decision: Decision::Undecided("no resource mapping for this operation".into()),
            });
            continue;
        };
        let context = context(call);
        let refused = resources
            .iter()
            .map(|r| (r, evaluate(&grant.statements, &action, r, &context)))
            .find(|(_, d)| *d != Decision::Allowed);
        out.push(Verdict {
            call: format!("{name} ({action})"),
            resource: refused.as_ref().map(|(r, _)| r.to_string()),
            decision: refused.map_or(Decision::Allowed, |(_, d)| d),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::template::Template;
    use serde_json::json;

    fn call(operation: &str, request: Value) -> Call {
        Call {
            caller: "alarm-rollback".into(),
            service: "ecs".into(),
            operation: operation.into(),
            request,
            response: json!({}),
        }
    }

    #[test]
    fn stop_service_deployment_is_held_against_the_service_and_the_deployment() {
        let arn = "arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/web/abc";
        let stop = call(
            "StopServiceDeployment",
            json!({"serviceDeploymentArn": arn}),
        );
        let (action, resources) = authorisation(&stop).unwrap();
        assert_eq!(action, "ecs:StopServiceDeployment");
        assert_eq!(
            resources,
            [arn, "arn:aws:ecs:us-east-1:123456789012:service/prod/web"]
        );
        let template = |resources: &str| {
            format!(
                "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Metadata: {{ BuildProperties: {{ Binary: alarm-rollback }} }}\n    Properties:\n      Policies:\n        - Statement:\n            - Effect: Allow\n              Action: ecs:StopServiceDeployment\n              Resource: {resources}\n"
            )
        };
        let functions = BTreeMap::from([("alarm-rollback".to_string(), vec!["Fn".to_string()])]);
        let only_deployment = Template::parse(&template(
            "arn:aws:ecs:us-east-1:123456789012:service-deployment/*",
        ))
        .unwrap()
        .grants()
        .unwrap();
        let verdict = &judge_calls(std::slice::from_ref(&stop), &only_deployment, &functions)[0];
        assert_eq!(verdict.decision, Decision::ImplicitDeny);
        assert_eq!(
            verdict.resource.as_deref(),
            Some("arn:aws:ecs:us-east-1:123456789012:service/prod/web")
        );
        let both = Template::parse(&template("[\"arn:aws:ecs:us-east-1:123456789012:service-deployment/*\", \"arn:aws:ecs:us-east-1:123456789012:service/*\"]"))
            .unwrap()
            .grants()
            .unwrap();
        assert_eq!(
            judge_calls(&[stop], &both, &functions)[0].decision,
            Decision::Allowed
        );
        let unknown = call("DeleteCluster", json!({}));
        assert!(matches!(
            judge_calls(&[unknown], &both, &functions)[0].decision,
            Decision::Undecided(_)
        ));
    }
}
