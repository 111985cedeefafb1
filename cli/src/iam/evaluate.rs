//! A small IAM policy evaluator, for holding calls against a role's statements: explicit
//! Deny wins, then an Allow whose action and resource patterns match and whose
//! conditions hold; otherwise an implicit deny. Conditions are evaluated only where the
//! operator and the request context say enough; anything else is reported as
//! undecided, never assumed true.

use std::collections::BTreeMap;

use super::arn::glob_matches;
use super::template::Statement;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    ImplicitDeny,
    ExplicitDeny(String),
    /// A statement that would decide has a condition the evaluator cannot judge.
    Undecided(String),
}

/// Whether `action` on `resource`, with these context keys, is allowed by `statements`.
pub fn evaluate(
    statements: &[Statement],
    action: &str,
    resource: &str,
    context: &BTreeMap<String, String>,
) -> Decision {
    let mut allowed = false;
    let mut undecided = None;
    for statement in statements {
        if !matches_action(statement, action) || !matches_resource(statement, resource) {
            continue;
        }
        match conditions_hold(statement, context) {
            Ok(true) if !statement.allow => return Decision::ExplicitDeny(statement.name.clone()),
            Ok(true) => allowed = true,
            Ok(false) => {}
            Err(why) => undecided = Some(format!("{}: {why}", statement.name)),
        }
    }
    match (allowed, undecided) {
        (true, _) => Decision::Allowed,
        (false, Some(why)) => Decision::Undecided(why),
        (false, None) => Decision::ImplicitDeny,
    }
}

fn matches_action(statement: &Statement, action: &str) -> bool {
    let action = action.to_ascii_lowercase();
    let any = |patterns: &[String]| {
        patterns
            .iter()
            .any(|p| glob_matches(&p.to_ascii_lowercase(), &action))
    };
    if statement.not_actions.is_empty() {
        any(&statement.actions)
    } else {
        !any(&statement.not_actions)
    }
}

fn matches_resource(statement: &Statement, resource: &str) -> bool {
    let any = |patterns: &[String]| patterns.iter().any(|p| glob_matches(p, resource));
    if statement.not_resources.is_empty() {
        any(&statement.resources)
    } else {
        !any(&statement.not_resources)
    }
}

/// Every condition of the statement, against the context: `Err` when it cannot tell.
fn conditions_hold(
    statement: &Statement,
    context: &BTreeMap<String, String>,
) -> Result<bool, String> {
    for (operator, pairs) in &statement.conditions {
        for (key, values) in pairs {
            let found = context
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v);
            let holds = match (operator.as_str(), found) {
                ("StringEquals" | "ArnEquals", Some(v)) => values.iter().any(|x| x == v),
                ("StringEqualsIgnoreCase", Some(v)) => {
                    values.iter().any(|x| x.eq_ignore_ascii_case(v))
                }
                ("StringLike" | "ArnLike", Some(v)) => values.iter().any(|x| glob_matches(x, v)),
                ("StringNotEquals", Some(v)) => values.iter().all(|x| x != v),
                // A key the request does not carry: the positive operators do not hold.
                (
                    "StringEquals"
                    | "ArnEquals"
                    | "StringEqualsIgnoreCase"
                    | "StringLike"
                    | "ArnLike",
                    None,
                ) => false,
                (operator, None) => {
                    return Err(format!(
                        "condition {operator} {key}: the call's context does not say"
                    ))
                }
                (operator, Some(_)) => {
                    return Err(format!(
                        "condition operator {operator} is not evaluated here"
                    ))
                }
            };
            if !holds {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(allow: bool, actions: &[&str], resources: &[&str]) -> Statement {
        Statement {
            name: "s".into(),
            allow,
            actions: actions.iter().map(|s| s.to_string()).collect(),
            not_actions: Vec::new(),
            resources: resources.iter().map(|s| s.to_string()).collect(),
            not_resources: Vec::new(),
            conditions: BTreeMap::new(),
        }
    }

    #[test]
    fn allow_deny_wildcards_and_conditions() {
        let none = BTreeMap::new();
        let allow = statement(true, &["ecs:Describe*"], &["arn:aws:ecs:*:*:service/*"]);
        let svc = "arn:aws:ecs:us-east-1:1:service/prod/web";
        assert_eq!(
            evaluate(
                std::slice::from_ref(&allow),
                "ecs:DescribeServices",
                svc,
                &none
            ),
            Decision::Allowed
        );
        assert_eq!(
            evaluate(
                std::slice::from_ref(&allow),
                "ecs:UpdateService",
                svc,
                &none
            ),
            Decision::ImplicitDeny
        );
        assert_eq!(
            evaluate(
                std::slice::from_ref(&allow),
                "ecs:DescribeServices",
                "arn:aws:ecs:us-east-1:1:task/prod/1",
                &none
            ),
            Decision::ImplicitDeny
        );
        let deny = statement(false, &["ecs:*"], &["*"]);
        assert_eq!(
            evaluate(&[allow.clone(), deny], "ecs:DescribeServices", svc, &none),
            Decision::ExplicitDeny("s".into())
        );

        let mut pass = statement(true, &["iam:PassRole"], &["arn:aws:iam::1:role/web"]);
        pass.conditions.insert(
            "StringEquals".into(),
            BTreeMap::from([(
                "iam:PassedToService".into(),
                vec!["ecs-tasks.amazonaws.com".into()],
            )]),
        );
        let role = "arn:aws:iam::1:role/web";
        let to = |service: &str| {
            BTreeMap::from([("iam:PassedToService".to_string(), service.to_string())])
        };
        assert_eq!(
            evaluate(
                &[pass.clone()],
                "iam:PassRole",
                role,
                &to("ecs-tasks.amazonaws.com")
            ),
            Decision::Allowed
        );
        assert_eq!(
            evaluate(
                &[pass.clone()],
                "iam:PassRole",
                role,
                &to("lambda.amazonaws.com")
            ),
            Decision::ImplicitDeny
        );
        assert_eq!(
            evaluate(std::slice::from_ref(&pass), "iam:PassRole", role, &none),
            Decision::ImplicitDeny
        );

        let mut odd = statement(true, &["sns:Publish"], &["*"]);
        odd.conditions.insert(
            "DateGreaterThan".into(),
            BTreeMap::from([("aws:CurrentTime".into(), vec!["2026-01-01".into()])]),
        );
        assert!(matches!(
            evaluate(&[odd], "sns:Publish", "arn:aws:sns:us-east-1:1:t", &none),
            Decision::Undecided(_)
        ));
    }
}
