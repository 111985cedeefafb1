//! Intrinsic functions resolved as CloudFormation would, with sample values: pseudo
//! parameters (`us-east-1`, `123456789012`), `--parameter` overrides, else defaults,
//! else a sample shaped by the parameter's name; `!If` by the condition case.

use std::collections::BTreeMap;

use serde_yaml_ng::{Mapping, Value};

use super::template::{err, intrinsic, Template, TemplateError, ACCOUNT, REGION};

pub(super) enum Resolved {
    NoValue,
    One(String),
    Many(Vec<String>),
}

impl Resolved {
    pub(super) fn strings(self) -> Vec<String> {
        match self {
            Resolved::NoValue => Vec::new(),
            Resolved::One(s) => vec![s],
            Resolved::Many(v) => v,
        }
    }
}

impl Template {
    /// Any part of the template (an event pattern, say) with its intrinsic functions
    /// resolved under `case`, as JSON; `AWS::NoValue` entries are dropped.
    pub fn resolve_value(
        &self,
        value: &Value,
        case: &BTreeMap<String, bool>,
    ) -> Result<serde_json::Value, TemplateError> {
        use serde_json::Value as Json;
        let place = "value";
        let Some(value) = self.choose(value, case, place)? else {
            return Ok(Json::Null);
        };
        Ok(match &value {
            Value::Mapping(m) if intrinsic(&value).is_none() => {
                let mut out = serde_json::Map::new();
                for (k, v) in m {
                    let resolved = self.resolve_value(v, case)?;
                    if !resolved.is_null() {
                        out.insert(k.as_str().unwrap_or_default().to_string(), resolved);
                    }
                }
                Json::Object(out)
            }
            Value::Sequence(items) => {
                let mut out = Vec::new();
                for item in items {
                    match self.resolve_value(item, case)? {
                        Json::Null => {}
                        Json::Array(many) => out.extend(many),
                        one => out.push(one),
                    }
                }
                Json::Array(out)
            }
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => serde_json::to_value(n).unwrap_or(Json::Null),
            _ => match self.resolve(&value, case, place)? {
                Resolved::NoValue => Json::Null,
                Resolved::One(s) => Json::String(s),
                Resolved::Many(v) => Json::Array(v.into_iter().map(Json::String).collect()),
            },
        })
    }

    /// Takes `!If` branches by the case; `None` for `AWS::NoValue`.
    pub(super) fn choose(
        &self,
        value: &Value,
        case: &BTreeMap<String, bool>,
        place: &str,
    ) -> Result<Option<Value>, TemplateError> {
        match intrinsic(value) {
            Some(("If", args)) => {
                let args = args
                    .as_sequence()
                    .filter(|a| a.len() == 3)
                    .ok_or_else(|| err(place, "!If takes [condition, then, else]"))?;
                let condition = args[0].as_str().unwrap_or_default();
                let branch = if *case.get(condition).unwrap_or(&false) {
                    &args[1]
                } else {
                    &args[2]
                };
                self.choose(branch, case, place)
            }
            Some(("Ref", name)) if name.as_str() == Some("AWS::NoValue") => Ok(None),
            _ => Ok(Some(value.clone())),
        }
    }

    pub(super) fn resolve(
        &self,
        value: &Value,
        case: &BTreeMap<String, bool>,
        place: &str,
    ) -> Result<Resolved, TemplateError> {
        let Some(value) = self.choose(value, case, place)? else {
            return Ok(Resolved::NoValue);
        };
        match &value {
            Value::String(s) => Ok(Resolved::One(s.clone())),
            Value::Bool(b) => Ok(Resolved::One(b.to_string())),
            Value::Number(n) => Ok(Resolved::One(n.to_string())),
            Value::Sequence(items) => {
                let mut out = Vec::new();
                for item in items {
                    out.extend(self.resolve(item, case, place)?.strings());
                }
                Ok(Resolved::Many(out))
            }
            _ => match intrinsic(&value) {
                Some(("Ref", name)) => self.reference(name.as_str().unwrap_or_default(), place),
                Some(("GetAtt", target)) => {
                    let text = match target {
                        Value::String(s) => s.clone(),
                        Value::Sequence(parts) => parts
                            .iter()
                            .filter_map(|p| p.as_str())
                            .collect::<Vec<_>>()
                            .join("."),
                        _ => String::new(),
                    };
                    let (id, attribute) = text.split_once('.').unwrap_or((&text, ""));
                    Ok(Resolved::One(self.attribute(id, attribute, place)?))
                }
                Some(("Sub", args)) => Ok(Resolved::One(self.substitute(args, case, place)?)),
                Some(("Join", args)) => {
                    let args = args
                        .as_sequence()
                        .filter(|a| a.len() == 2)
                        .ok_or_else(|| err(place, "!Join takes [delimiter, list]"))?;
                    let parts = self.resolve(&args[1], case, place)?.strings();
                    Ok(Resolved::One(
                        parts.join(args[0].as_str().unwrap_or_default()),
                    ))
                }
                Some(("Select", args)) => {
                    let args = args
                        .as_sequence()
                        .filter(|a| a.len() == 2)
                        .ok_or_else(|| err(place, "!Select takes [index, list]"))?;
                    let index = self
                        .resolve(&args[0], case, place)?
                        .strings()
                        .first()
                        .and_then(|s| s.parse::<usize>().ok());
                    let list = self.resolve(&args[1], case, place)?.strings();
                    let item = index
                        .and_then(|i| list.get(i).cloned())
                        .ok_or_else(|| err(place, "!Select index is outside the list"))?;
                    Ok(Resolved::One(item))
                }
                Some((other, _)) => Err(err(
                    place,
                    format!("the judgement cannot resolve Fn::{other}"),
                )),
                None => Err(err(place, "a mapping where a value was expected")),
            },
        }
    }

    fn substitute(
        &self,
        args: &Value,
        case: &BTreeMap<String, bool>,
        place: &str,
    ) -> Result<String, TemplateError> {
        let (text, locals) = match args {
            Value::String(s) => (s.clone(), Mapping::new()),
            Value::Sequence(items) if items.len() == 2 => (
                items[0].as_str().unwrap_or_default().to_string(),
                items[1].as_mapping().cloned().unwrap_or_default(),
            ),
            _ => return Err(err(place, "!Sub takes a string or [string, variables]")),
        };
        let mut out = String::new();
        let mut rest = text.as_str();
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| err(place, "unclosed ${ in !Sub"))?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str(&format!("${{{literal}}}"));
            } else if let Some(local) = locals.get(name) {
                out.push_str(&self.resolve(local, case, place)?.strings().join(","));
            } else if let Some((id, attribute)) = name.split_once('.') {
                out.push_str(&self.attribute(id, attribute, place)?);
            } else {
                out.push_str(&self.reference(name, place)?.strings().join(","));
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn reference(&self, name: &str, place: &str) -> Result<Resolved, TemplateError> {
        let pseudo = match name {
            "AWS::Partition" => Some("aws".to_string()),
            "AWS::Region" => Some(REGION.to_string()),
            "AWS::AccountId" => Some(ACCOUNT.to_string()),
            "AWS::URLSuffix" => Some("amazonaws.com".to_string()),
            "AWS::StackName" => Some("greenlight".to_string()),
            "AWS::StackId" => Some(format!(
                "arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/greenlight/1"
            )),
            "AWS::NoValue" => return Ok(Resolved::NoValue),
            _ => None,
        };
        if let Some(value) = pseudo {
            return Ok(Resolved::One(value));
        }
        if let Some(values) = self.overrides.get(name) {
            return Ok(list_or_one(values.clone(), &self.root["Parameters"][name]));
        }
        let parameter = &self.root["Parameters"][name];
        if parameter.is_mapping() {
            let default = match &parameter["Default"] {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => String::new(),
            };
            let values = if default.is_empty() {
                vec![sample(name)]
            } else {
                default.split(',').map(|s| s.trim().to_string()).collect()
            };
            return Ok(list_or_one(values, parameter));
        }
        let Some(resource) = self.resources().get(name) else {
            return Err(err(
                place,
                format!("!Ref {name} names no parameter or resource"),
            ));
        };
        let value = match resource["Type"].as_str().unwrap_or_default() {
            "AWS::SNS::Topic" | "AWS::KMS::Key" => self.attribute(name, "Arn", place)?,
            "AWS::SQS::Queue" => format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"),
            _ => self.physical_name(name, place)?,
        };
        Ok(Resolved::One(value))
    }

    fn physical_name(&self, id: &str, place: &str) -> Result<String, TemplateError> {
        let props = &self
            .resources()
            .get(id)
            .map(|r| &r["Properties"])
            .unwrap_or(&Value::Null);
        for key in [
            "FunctionName",
            "RoleName",
            "TopicName",
            "QueueName",
            "LogGroupName",
            "TableName",
        ] {
            if let Some(v) = props.get(key) {
                return Ok(self
                    .resolve(v, &BTreeMap::new(), place)?
                    .strings()
                    .join(","));
            }
        }
        Ok(id.to_string())
    }

    fn attribute(&self, id: &str, attribute: &str, place: &str) -> Result<String, TemplateError> {
        let Some(resource) = self.resources().get(id) else {
            return Err(err(
                place,
                format!("!GetAtt {id}.{attribute} names no resource"),
            ));
        };
        let kind = resource["Type"].as_str().unwrap_or_default();
        let name = self.physical_name(id, place)?;
        let arn = match (kind, attribute) {
            ("AWS::SNS::Topic", _) => format!("arn:aws:sns:{REGION}:{ACCOUNT}:{name}"),
            ("AWS::SQS::Queue", "Arn") => format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"),
            ("AWS::Serverless::Function" | "AWS::Lambda::Function", "Arn") => {
                format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}")
            }
            ("AWS::IAM::Role", "Arn") => format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
            ("AWS::Logs::LogGroup", "Arn") => {
                format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*")
            }
            ("AWS::DynamoDB::Table", "Arn") => {
                format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}")
            }
            ("AWS::KMS::Key", "Arn") => format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{name}"),
            ("AWS::Scheduler::ScheduleGroup", "Arn") => {
                format!("arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule-group/{name}")
            }
            _ => {
                return Err(err(
                    place,
                    format!("the judgement does not know the {attribute} of a {kind} ({id})"),
                ))
            }
        };
        Ok(arn)
    }
}

fn list_or_one(values: Vec<String>, parameter: &Value) -> Resolved {
    if parameter["Type"]
        .as_str()
        .is_some_and(|t| t.contains("List"))
    {
        Resolved::Many(values)
    } else {
        Resolved::One(values.join(","))
    }
}

/// A value shaped like what a parameter of this name holds, for a parameter with no default.
pub fn sample(name: &str) -> String {
    let shapes: &[(&str, String)] = &[
        ("TopicArn", format!("arn:aws:sns:{REGION}:{ACCOUNT}:alarms")),
        (
            "KeyArn",
            format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
        ),
        (
            "SecretArns",
            format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:greenlight/token-??????"),
        ),
        (
            "ParameterArns",
            format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/greenlight/token"),
        ),
        ("RoleArns", format!("arn:aws:iam::{ACCOUNT}:role/web-task")),
        (
            "LogGroupArns",
            format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/ecs/web:*"),
        ),
    ];
    shapes
        .iter()
        .find(|(suffix, _)| name.ends_with(suffix))
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| format!("example-{}", name.to_ascii_lowercase()))
}
