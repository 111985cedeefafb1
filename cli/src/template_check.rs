//! `greenlight preflight --template FILE [--calls DIR]`: a template's IAM judged offline,
//! before anyone deploys it. Each grant is held against AWS's Service Authorization
//! Reference; with `--calls`, every call the functions made in a rehearsal is held
//! against the role the template gives them. Every finding names the engine that
//! decided.

use std::collections::BTreeSet;
use std::path::Path;

use greenlight_cli::iam::calls::{judge_calls, read};
use greenlight_cli::iam::evaluate::Decision;
use greenlight_cli::iam::template::Grant;
use greenlight_cli::iam::{judge as judge_grants, Reference, Template};

use crate::finding::{Finding, Severity};

/// The template's findings: grants AWS would refuse, and (with `calls`) recorded calls
/// its roles do not allow.
pub fn judge(
    path: &Path,
    parameters: &[String],
    calls: Option<&Path>,
) -> Result<Vec<Finding>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut template = Template::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    for parameter in parameters {
        let (name, value) = parameter
            .split_once('=')
            .ok_or_else(|| format!("--parameter {parameter}: expected NAME=VALUE"))?;
        template.set_parameter(name, value);
    }
    let grants = template
        .grants()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let reference = Reference::bundled();
    let engine = format!(
        "judged offline against AWS's Service Authorization Reference ({}, data of {})",
        reference.source,
        reference
            .updated_at
            .get(..10)
            .unwrap_or(&reference.updated_at)
    );
    let mut findings: Vec<Finding> = judge_grants(&grants, reference)
        .into_iter()
        .map(|p| Finding {
            service: path.display().to_string(),
            severity: Severity::Error,
            check: "iam-grant",
            problem: format!(
                "{}: {} {} ({engine}; condition case: {})",
                p.statement,
                p.action,
                p.problem,
                if p.case.is_empty() { "none" } else { &p.case }
            ),
            fix: p.fix,
        })
        .collect();
    if let Some(dir) = calls {
        findings.extend(recorded_calls(path, &template, &grants, dir)?);
    }
    Ok(findings)
}

/// Every recorded call of the template's functions, held against its role.
fn recorded_calls(
    path: &Path,
    template: &Template,
    grants: &[Grant],
    dir: &Path,
) -> Result<Vec<Finding>, String> {
    let by_binary = template.functions_by_binary();
    let binaries: Vec<&str> = by_binary.keys().map(String::as_str).collect();
    let calls = read(dir, &binaries)?;
    // A check over nothing proves nothing.
    if calls.is_empty() {
        return Err(format!(
            "{} holds no call signed by one of the template's functions ({}): nothing to judge",
            dir.display(),
            binaries.join(", ")
        ));
    }
    let verdicts = judge_calls(&calls, grants, &by_binary);
    let mut findings = Vec::new();
    let mut seen = BTreeSet::new();
    for v in &verdicts {
        let (severity, why) = match &v.decision {
            Decision::Allowed => continue,
            Decision::ImplicitDeny => (
                Severity::Error,
                "no statement of its role allows it (implicit deny)".to_string(),
            ),
            Decision::ExplicitDeny(statement) => {
                (Severity::Error, format!("{statement} denies it"))
            }
            Decision::Undecided(why) => (Severity::Undecided, why.clone()),
        };
        let problem = format!(
            "recorded call {}{}: {why} (judged by Greenlight's policy evaluator against the template's statements)",
            v.call,
            v.resource.as_deref().map(|r| format!(" on {r}")).unwrap_or_default()
        );
        if seen.insert(problem.clone()) {
            findings.push(Finding {
                service: path.display().to_string(),
                severity,
                check: "iam-call",
                problem,
                fix: "grant the action on that resource to the function's role".into(),
            });
        }
    }
    let allowed = verdicts
        .iter()
        .filter(|v| v.decision == Decision::Allowed)
        .count();
    let kinds: BTreeSet<&str> = verdicts.iter().map(|v| v.call.as_str()).collect();
    eprintln!(
        "preflight: {} recorded call(s) of the functions ({} kinds) held against their roles in {}: {allowed} allowed",
        verdicts.len(),
        kinds.len(),
        path.display()
    );
    Ok(findings)
}
