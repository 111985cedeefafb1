//! The judgement: every Allow statement a template grants, held against AWS's Service
//! Authorization Reference. Three rules decide whether a grant works in an account:
//! - an action that supports no resource-level permissions is matched only by
//!   `"Resource": "*"`; an ARN there matches nothing and the call is an implicit deny;
//! - an action with required resource types is authorised against each of them, so the
//!   role must grant it on an ARN of every required type;
//! - a condition key must exist for the action (or be a global `aws:` key), or the
//!   condition never holds.
//!
//! And least privilege: `"*"` only where the action has no required resource type.

use std::collections::BTreeSet;

use serde::Serialize;

use super::arn::may_match_type;
use super::reference::{Action, Reference};
use super::template::{Grant, Statement};

/// One grant AWS would refuse, or one wider than it needs to be.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Problem {
    /// `HookRole, statement AnswerCodeDeploy`.
    pub statement: String,
    pub action: String,
    pub problem: String,
    pub fix: String,
    /// The condition assignment it was found under (the first one).
    pub case: String,
}

/// Judges every grant; problems found under several condition cases are listed once.
pub fn judge(grants: &[Grant], reference: &Reference) -> Vec<Problem> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for grant in grants {
        for problem in judge_grant(grant, reference) {
            let key = (
                problem.statement.clone(),
                problem.action.clone(),
                problem.problem.clone(),
            );
            if seen.insert(key) {
                out.push(problem);
            }
        }
    }
    out
}

fn judge_grant(grant: &Grant, reference: &Reference) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut find = |statement: &Statement, action: &str, problem: String, fix: String| {
        out.push(Problem {
            statement: statement.name.clone(),
            action: action.to_string(),
            problem,
            fix,
            case: grant.case.clone(),
        })
    };
    for statement in &grant.statements {
        if !statement.not_actions.is_empty() || !statement.not_resources.is_empty() {
            find(
                statement,
                "",
                "NotAction / NotResource grant more than they name".into(),
                "list the actions and resources instead".into(),
            );
        }
        for pattern in &statement.actions {
            let actions = match expand(pattern, reference) {
                Ok(actions) => actions,
                Err(problem) => {
                    find(
                        statement,
                        pattern,
                        problem,
                        "name an action from the Service Authorization Reference".into(),
                    );
                    continue;
                }
            };
            if pattern.contains('*') || pattern.contains('?') {
                find(
                    statement,
                    pattern,
                    format!("a wildcard grants {} actions", actions.len()),
                    "name the actions the code calls".into(),
                );
            }
            if !statement.allow {
                continue;
            }
            for action in &actions {
                for (problem, fix) in judge_action(grant, statement, action) {
                    find(statement, &action.name, problem, fix);
                }
            }
        }
    }
    out
}

fn expand(pattern: &str, reference: &Reference) -> Result<Vec<Action>, String> {
    let Some((prefix, name)) = pattern.split_once(':') else {
        return Err(format!("{pattern} is not service:Action"));
    };
    if !reference.knows_service(prefix) {
        return Err(format!(
            "{prefix} is a service the reference data ({}) does not cover",
            reference.source
        ));
    }
    let actions = if name.contains(['*', '?']) {
        reference.actions_matching(prefix, name)
    } else {
        reference.action(pattern).into_iter().collect()
    };
    if actions.is_empty() {
        return Err(format!(
            "{pattern} is no action in the Service Authorization Reference ({})",
            reference.source
        ));
    }
    Ok(actions)
}

/// Actions the reference gives a required resource type that a call may name but
/// Greenlight's calls do not, so AWS authorises them against `"*"`: granted only on
/// that type's ARNs, they meet "not authorized to perform: ecs:ListTasks on
/// resource: *". Each must be granted on `"*"`, narrowed by the condition key given.
/// ListTasks names a container instance only when filtering by one.
pub(crate) const AUTHORISED_AGAINST_STAR: &[(&str, &str)] = &[("ecs:ListTasks", "ecs:cluster")];

fn judge_action(grant: &Grant, statement: &Statement, action: &Action) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let star = statement.resources.iter().any(|r| r == "*");
    let arns: Vec<&String> = statement.resources.iter().filter(|r| *r != "*").collect();
    if let Some((_, key)) = AUTHORISED_AGAINST_STAR
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(&action.name))
    {
        if !star {
            out.push((
                "its calls name no resource of the listed type, so AWS authorises them against \"*\"; granted on ARNs only, every call is refused".into(),
                format!("grant it on \"*\" with a {key} condition"),
            ));
        } else if !statement
            .conditions
            .values()
            .any(|pairs| pairs.keys().any(|k| k.eq_ignore_ascii_case(key)))
        {
            out.push((
                "granted on \"*\" with nothing narrowing it".to_string(),
                format!("add a {key} condition"),
            ));
        }
    } else if action.resource_types.is_empty() {
        if !star {
            out.push((
                format!(
                    "supports no resource-level permissions, so AWS matches it only against \"*\"; granted on {} it is an implicit deny",
                    arns.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ")
                ),
                "grant it in a statement with Resource \"*\" (narrow it with condition keys where the action has them)".into(),
            ));
        }
    } else {
        let required: Vec<_> = action.required_types().collect();
        if star && !required.is_empty() {
            out.push((
                format!(
                    "granted on \"*\" though it can be scoped to {}",
                    names(&required)
                ),
                format!("grant it on {}", formats(&required)),
            ));
        }
        // Each ARN must name a resource type the action is authorised against.
        for arn in &arns {
            if !action
                .resource_types
                .iter()
                .any(|t| may_match_type(arn, &t.arn))
            {
                out.push((
                    format!(
                        "{arn} is no resource the action is authorised against ({})",
                        names(&action.resource_types.iter().collect::<Vec<_>>())
                    ),
                    format!(
                        "grant it on {}",
                        formats(&action.resource_types.iter().collect::<Vec<_>>())
                    ),
                ));
            }
        }
        // Each required type must be matched by some statement of the role granting the action.
        if !star {
            let granted: Vec<&String> = grant
                .statements
                .iter()
                .filter(|s| {
                    s.allow
                        && s.actions.iter().any(|a| {
                            super::arn::glob_matches(
                                &a.to_ascii_lowercase(),
                                &action.name.to_ascii_lowercase(),
                            )
                        })
                })
                .flat_map(|s| s.resources.iter())
                .collect();
            for kind in &required {
                if !granted
                    .iter()
                    .any(|arn| *arn == "*" || may_match_type(arn, &kind.arn))
                {
                    out.push((
                        format!("requires the {} resource as well, and the role grants it on no {} ARN: AWS refuses every call", kind.name, kind.name),
                        format!("add {} to the statement's resources", kind.arn),
                    ));
                }
            }
        }
    }
    for (operator, pairs) in &statement.conditions {
        for key in pairs.keys() {
            if !action.has_condition_key(key) {
                out.push((
                    format!("condition {operator} {key} names a key that does not exist for this action, so the statement never applies"),
                    "use a condition key the Service Authorization Reference lists for the action".into(),
                ));
            }
        }
    }
    out
}

fn names(types: &[&super::reference::ResourceType]) -> String {
    types
        .iter()
        .map(|t| t.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn formats(types: &[&super::reference::ResourceType]) -> String {
    types
        .iter()
        .map(|t| t.arn.as_str())
        .collect::<Vec<_>>()
        .join(" and ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::template::Template;

    fn problems(statements: &str) -> Vec<Problem> {
        let text = format!(
            "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      Policies:\n        - Statement:\n{statements}"
        );
        let grants = Template::parse(&text).unwrap().grants().unwrap();
        judge(&grants, Reference::bundled())
    }

    #[test]
    fn an_action_without_resource_level_permissions_on_an_arn_is_refused() {
        let found = problems(
            "            - Effect: Allow\n              Action: [codedeploy:PutLifecycleEventHookExecutionStatus]\n              Resource: arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:*\n",
        );
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(
            found[0].action,
            "codedeploy:PutLifecycleEventHookExecutionStatus"
        );
        assert!(
            found[0].problem.contains("implicit deny"),
            "{}",
            found[0].problem
        );
        assert!(problems("            - Effect: Allow\n              Action: codedeploy:PutLifecycleEventHookExecutionStatus\n              Resource: \"*\"\n").is_empty());
    }

    #[test]
    fn list_tasks_is_granted_on_star_narrowed_by_cluster_not_on_container_instances() {
        let on_instances = problems("            - Effect: Allow\n              Action: ecs:ListTasks\n              Resource: arn:aws:ecs:us-east-1:123456789012:container-instance/*\n");
        assert_eq!(on_instances.len(), 1, "{on_instances:#?}");
        assert!(on_instances[0].problem.contains("every call is refused"));
        let bare = problems("            - Effect: Allow\n              Action: ecs:ListTasks\n              Resource: \"*\"\n");
        assert_eq!(bare.len(), 1, "{bare:#?}");
        assert!(bare[0].fix.contains("ecs:cluster"));
        assert!(problems("            - Effect: Allow\n              Action: ecs:ListTasks\n              Resource: \"*\"\n              Condition:\n                ArnLike:\n                  ecs:cluster: arn:aws:ecs:us-east-1:123456789012:cluster/*\n").is_empty());
    }

    #[test]
    fn every_required_resource_type_must_be_granted() {
        let only_deployment = "            - Effect: Allow\n              Action: ecs:StopServiceDeployment\n              Resource: arn:aws:ecs:us-east-1:123456789012:service-deployment/*\n";
        let found = problems(only_deployment);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0]
                .problem
                .starts_with("requires the service resource as well"),
            "{}",
            found[0].problem
        );
        // Both types, even from two statements, pass.
        let both = format!("{only_deployment}            - Effect: Allow\n              Action: ecs:StopServiceDeployment\n              Resource: arn:aws:ecs:us-east-1:123456789012:service/*\n");
        assert!(problems(&both).is_empty(), "{:#?}", problems(&both));
    }

    #[test]
    fn star_where_scoping_is_possible_and_wrong_arns_and_keys_are_found() {
        let found = problems("            - Effect: Allow\n              Action: ecs:DescribeServices\n              Resource: \"*\"\n");
        assert!(
            found[0].problem.contains("can be scoped to service"),
            "{found:#?}"
        );
        let found = problems("            - Effect: Allow\n              Action: sns:Publish\n              Resource: arn:aws:sqs:us-east-1:123456789012:q\n");
        assert!(
            found.iter().any(|p| p
                .problem
                .contains("is no resource the action is authorised against")),
            "{found:#?}"
        );
        let found = problems("            - Effect: Allow\n              Action: iam:PassRole\n              Resource: arn:aws:iam::123456789012:role/x\n              Condition: { StringEquals: { iam:PassedToServices: ecs-tasks.amazonaws.com } }\n");
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0]
            .problem
            .contains("iam:PassedToServices names a key that does not exist"));
        let ok = problems("            - Effect: Allow\n              Action: iam:PassRole\n              Resource: arn:aws:iam::123456789012:role/x\n              Condition: { StringEquals: { iam:PassedToService: ecs-tasks.amazonaws.com } }\n");
        assert!(ok.is_empty(), "{ok:#?}");
    }

    #[test]
    fn unknown_actions_and_wildcards_are_problems_never_passes() {
        let found = problems("            - Effect: Allow\n              Action: [codedeploy:StopDeploymentNow, nosuch:Thing, ecs:Describe*]\n              Resource: \"*\"\n");
        let text: Vec<_> = found.iter().map(|p| p.problem.as_str()).collect();
        assert!(
            text.iter()
                .any(|p| p.starts_with("codedeploy:StopDeploymentNow is no action")),
            "{text:#?}"
        );
        assert!(
            text.iter().any(|p| p.starts_with("nosuch is a service")),
            "{text:#?}"
        );
        assert!(
            text.iter().any(|p| p.starts_with("a wildcard grants")),
            "{text:#?}"
        );
    }
}
