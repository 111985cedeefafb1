//! The IAM policies a CloudFormation / SAM template grants, as concrete statements.
//!
//! Intrinsic functions are resolved with sample values: pseudo parameters as in
//! `us-east-1` / `123456789012`, parameters from `--parameter` overrides, else their
//! default, else a sample shaped by their name (an `...Arns` list of secrets is given
//! a secret ARN). Every `!If` is read both ways: a role is judged once for each
//! assignment of the conditions its policies mention, so a branch that is only taken
//! in some accounts is judged too.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml_ng::{Mapping, Value};

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// A template the judgement cannot read; names where.
#[derive(Debug, thiserror::Error)]
#[error("{place}: {problem}")]
pub struct TemplateError {
    pub place: String,
    pub problem: String,
}

pub(super) fn err(place: &str, problem: impl Into<String>) -> TemplateError {
    TemplateError {
        place: place.to_string(),
        problem: problem.into(),
    }
}

/// One policy statement, every value resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// `Role HookRole, statement AnswerCodeDeploy` (or its index when it has no Sid).
    pub name: String,
    pub allow: bool,
    pub actions: Vec<String>,
    pub not_actions: Vec<String>,
    pub resources: Vec<String>,
    pub not_resources: Vec<String>,
    /// operator → key → values.
    pub conditions: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

/// What one role may do under one assignment of the template's conditions.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The role's logical id (for a SAM function with inline `Policies`, the function's).
    pub role: String,
    /// The functions that run with this role.
    pub functions: Vec<String>,
    /// e.g. `UseSsmConfig=true, HasKmsKey=false`; empty when no condition applies.
    pub case: String,
    pub statements: Vec<Statement>,
    /// Managed policies attached by ARN or SAM policy templates: not judged, listed.
    pub unjudged: Vec<String>,
}

/// A template read for its policies.
pub struct Template {
    pub(super) root: Value,
    pub(super) overrides: BTreeMap<String, Vec<String>>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let root: Value =
            serde_yaml_ng::from_str(text).map_err(|e| err("template", e.to_string()))?;
        if !root["Resources"].is_mapping() {
            return Err(err("template", "no Resources section"));
        }
        Ok(Template {
            root,
            overrides: BTreeMap::new(),
        })
    }

    /// A parameter's value for the judgement (`NAME=a,b` for a list).
    pub fn set_parameter(&mut self, name: &str, value: &str) {
        self.overrides.insert(
            name.to_string(),
            value.split(',').map(str::to_string).collect(),
        );
    }

    pub(super) fn resources(&self) -> &Mapping {
        self.root["Resources"]
            .as_mapping()
            .expect("checked in parse")
    }

    /// Every role's grants, each under every assignment of the conditions it mentions.
    pub fn grants(&self) -> Result<Vec<Grant>, TemplateError> {
        let mut out = Vec::new();
        for (id, resource) in self.resources() {
            let id = id.as_str().unwrap_or_default();
            let kind = resource["Type"].as_str().unwrap_or_default();
            let props = &resource["Properties"];
            let (policies, functions) = match kind {
                "AWS::IAM::Role" => {
                    let documents: Vec<Value> = props["Policies"]
                        .as_sequence()
                        .map(|s| s.iter().map(|p| p["PolicyDocument"].clone()).collect())
                        .unwrap_or_default();
                    (documents, self.functions_using(id))
                }
                "AWS::Serverless::Function" if props.get("Role").is_none() => {
                    let policies = match &props["Policies"] {
                        Value::Sequence(items) => items.clone(),
                        Value::Null => Vec::new(),
                        other => vec![other.clone()],
                    };
                    (policies, vec![id.to_string()])
                }
                _ => continue,
            };
            let mut names = BTreeSet::new();
            for policy in &policies {
                condition_names(policy, &mut names);
            }
            let names: Vec<String> = names.into_iter().collect();
            if names.len() > 12 {
                return Err(err(id, "more than 12 conditions shape this role's policies; the judgement reads each combination and stops here"));
            }
            for bits in 0..(1u32 << names.len()) {
                let case: BTreeMap<String, bool> = names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n.clone(), bits & (1 << i) != 0))
                    .collect();
                let mut grant = Grant {
                    role: id.to_string(),
                    functions: functions.clone(),
                    case: case
                        .iter()
                        .map(|(n, v)| format!("{n}={v}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    statements: Vec::new(),
                    unjudged: Vec::new(),
                };
                for (p, policy) in policies.iter().enumerate() {
                    self.read_policy(id, p, policy, &case, &mut grant)?;
                }
                out.push(grant);
            }
        }
        Ok(out)
    }

    fn functions_using(&self, role: &str) -> Vec<String> {
        self.resources()
            .iter()
            .filter(|(_, r)| {
                let target = match &r["Properties"]["Role"] {
                    Value::Tagged(t) if t.tag == "GetAtt" => t
                        .value
                        .as_str()
                        .map(|s| s.split('.').next().unwrap_or_default().to_string()),
                    Value::Tagged(t) if t.tag == "Ref" => t.value.as_str().map(str::to_string),
                    _ => None,
                };
                target.as_deref() == Some(role)
            })
            .filter_map(|(id, _)| id.as_str().map(str::to_string))
            .collect()
    }

    fn read_policy(
        &self,
        role: &str,
        index: usize,
        policy: &Value,
        case: &BTreeMap<String, bool>,
        grant: &mut Grant,
    ) -> Result<(), TemplateError> {
        let place = format!("{role}, policy {}", index + 1);
        let policy = match self.choose(policy, case, &place)? {
            Some(p) => p,
            None => return Ok(()),
        };
        match &policy {
            Value::String(_) | Value::Tagged(_) => {
                grant
                    .unjudged
                    .push(self.resolve(&policy, case, &place)?.strings().join(","));
                return Ok(());
            }
            Value::Mapping(m) if m.get("Statement").is_none() => {
                let name = m.keys().next().and_then(|k| k.as_str()).unwrap_or("?");
                grant.unjudged.push(format!("SAM policy template {name}"));
                return Ok(());
            }
            _ => {}
        }
        let statements = match &policy["Statement"] {
            Value::Sequence(items) => items.clone(),
            Value::Mapping(_) => vec![policy["Statement"].clone()],
            _ => return Err(err(&place, "Statement is neither a list nor a statement")),
        };
        for (s, statement) in statements.iter().enumerate() {
            let Some(statement) = self.choose(statement, case, &place)? else {
                continue;
            };
            let sid = statement["Sid"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("#{}", s + 1));
            let name = format!("{role}, statement {sid}");
            grant
                .statements
                .push(self.read_statement(&name, &statement, case)?);
        }
        Ok(())
    }

    fn read_statement(
        &self,
        name: &str,
        s: &Value,
        case: &BTreeMap<String, bool>,
    ) -> Result<Statement, TemplateError> {
        let allow = match s["Effect"].as_str() {
            Some("Allow") => true,
            Some("Deny") => false,
            Some(other) => {
                return Err(err(
                    name,
                    format!("Effect must be Allow or Deny, not {other}"),
                ))
            }
            None => return Err(err(name, "no Effect")),
        };
        let list = |key: &str| -> Result<Vec<String>, TemplateError> {
            match s.get(key) {
                None => Ok(Vec::new()),
                Some(v) => Ok(self.resolve(v, case, name)?.strings()),
            }
        };
        let (actions, not_actions) = (list("Action")?, list("NotAction")?);
        let (resources, not_resources) = (list("Resource")?, list("NotResource")?);
        if actions.is_empty() && not_actions.is_empty() {
            return Err(err(name, "no Action"));
        }
        if resources.is_empty() && not_resources.is_empty() {
            return Err(err(name, "no Resource"));
        }
        let mut conditions = BTreeMap::new();
        if let Some(block) = s.get("Condition") {
            let block = block
                .as_mapping()
                .ok_or_else(|| err(name, "Condition is not a mapping"))?;
            for (operator, pairs) in block {
                let operator = operator.as_str().unwrap_or_default().to_string();
                let pairs = pairs
                    .as_mapping()
                    .ok_or_else(|| err(name, format!("Condition {operator} is not a mapping")))?;
                let entry: &mut BTreeMap<String, Vec<String>> =
                    conditions.entry(operator).or_default();
                for (key, values) in pairs {
                    entry.insert(
                        key.as_str().unwrap_or_default().to_string(),
                        self.resolve(values, case, name)?.strings(),
                    );
                }
            }
        }
        Ok(Statement {
            name: name.to_string(),
            allow,
            actions,
            not_actions,
            resources,
            not_resources,
            conditions,
        })
    }

    /// The functions built from each binary (SAM's `Metadata.BuildProperties.Binary`).
    pub fn functions_by_binary(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (id, resource) in self.resources() {
            if let (Some(id), Some(binary)) = (
                id.as_str(),
                resource["Metadata"]["BuildProperties"]["Binary"].as_str(),
            ) {
                out.entry(binary.to_string())
                    .or_default()
                    .push(id.to_string());
            }
        }
        out
    }

    /// The template as read (for tests and tools that walk it).
    pub fn root(&self) -> &Value {
        &self.root
    }
}
fn condition_names(value: &Value, out: &mut BTreeSet<String>) {
    if let Some(("If", args)) = intrinsic(value) {
        if let Some(name) = args
            .as_sequence()
            .and_then(|a| a.first())
            .and_then(|c| c.as_str())
        {
            out.insert(name.to_string());
        }
    }
    match value {
        Value::Tagged(t) => condition_names(&t.value, out),
        Value::Mapping(m) => m.values().for_each(|v| condition_names(v, out)),
        Value::Sequence(items) => items.iter().for_each(|v| condition_names(v, out)),
        _ => {}
    }
}

/// `!Name args` or `{"Fn::Name": args}` / `{"Ref": name}`.
pub(super) fn intrinsic(value: &Value) -> Option<(&str, &Value)> {
    match value {
        Value::Tagged(t) => {
            let tag = t.tag.to_string();
            let name = tag.trim_start_matches('!');
            let name = [
                "Ref",
                "GetAtt",
                "Sub",
                "Join",
                "Select",
                "If",
                "Split",
                "ImportValue",
                "FindInMap",
                "Condition",
                "Equals",
                "Not",
                "And",
                "Or",
                "GetAZs",
                "Base64",
                "Cidr",
            ]
            .into_iter()
            .find(|n| *n == name)?;
            Some((name, &t.value))
        }
        Value::Mapping(m) if m.len() == 1 => {
            let (k, v) = m.iter().next()?;
            let k = k.as_str()?;
            if k == "Ref" {
                Some(("Ref", v))
            } else {
                k.strip_prefix("Fn::").map(|name| (name, v))
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Parameters:
  Topic: { Type: String, Default: "" }
  Roles: { Type: CommaDelimitedList }
Conditions:
  HasTopic: !Not [!Equals [!Ref Topic, ""]]
Resources:
  Queue: { Type: AWS::SQS::Queue }
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - Statement:
            - Sid: Send
              Effect: Allow
              Action: sqs:SendMessage
              Resource: !GetAtt Queue.Arn
            - !If
              - HasTopic
              - Effect: Allow
                Action: [sns:Publish]
                Resource: !Sub "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:${Topic}"
              - !Ref AWS::NoValue
            - Sid: Pass
              Effect: Allow
              Action: iam:PassRole
              Resource: !Ref Roles
              Condition: { StringEquals: { iam:PassedToService: ecs-tasks.amazonaws.com } }
"#;

    #[test]
    fn both_branches_of_an_if_are_read_with_values_resolved() {
        let grants = Template::parse(TEMPLATE).unwrap().grants().unwrap();
        assert_eq!(grants.len(), 2);
        let off = grants.iter().find(|g| g.case == "HasTopic=false").unwrap();
        let on = grants.iter().find(|g| g.case == "HasTopic=true").unwrap();
        assert_eq!(off.statements.len(), 2);
        assert_eq!(on.statements.len(), 3);
        assert_eq!(
            on.statements[0].resources,
            [format!("arn:aws:sqs:{REGION}:{ACCOUNT}:Queue")]
        );
        assert_eq!(
            on.statements[1].resources,
            [format!("arn:aws:sns:{REGION}:{ACCOUNT}:example-topic")]
        );
        assert_eq!(on.statements[1].name, "Fn, statement #2");
        assert_eq!(on.statements[2].resources, ["example-roles"]);
        assert_eq!(
            on.statements[2].conditions["StringEquals"]["iam:PassedToService"],
            ["ecs-tasks.amazonaws.com"]
        );
        assert_eq!(on.functions, ["Fn"]);
    }

    #[test]
    fn an_unreadable_statement_is_an_error_naming_it() {
        let broken = TEMPLATE.replace(
            "Effect: Allow\n              Action: iam:PassRole",
            "Effect: Maybe\n              Action: iam:PassRole",
        );
        let e = Template::parse(&broken).unwrap().grants().unwrap_err();
        assert_eq!(
            e.to_string(),
            "Fn, statement Pass: Effect must be Allow or Deny, not Maybe"
        );
        let e = Template::parse("Resources: [").err().unwrap();
        assert!(e.to_string().starts_with("template:"), "{e}");
        let unknown = TEMPLATE.replace("!GetAtt Queue.Arn", "!GetAtt Nothing.Arn");
        let e = Template::parse(&unknown).unwrap().grants().unwrap_err();
        assert_eq!(
            e.to_string(),
            "Fn, statement Send: !GetAtt Nothing.Arn names no resource"
        );
    }
}
