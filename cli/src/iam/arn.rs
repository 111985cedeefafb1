//! ARN patterns as IAM reads them: `*` any run of characters (`/` and `:` included),
//! `?` any one character. Two questions: does a pattern match a concrete ARN, and can
//! a pattern match *some* ARN of a resource type (whose format, from the reference,
//! has `${Variable}` parts)? The second is what "granted on an ARN of each required
//! type" means for a policy that names patterns rather than resources.

use std::collections::HashSet;

/// IAM's wildcard match, case-sensitive as ARNs are.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Classic two-pointer wildcard match with one backtrack point.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < t.len() {
        if i < p.len() && (p[i] == '?' || p[i] == t[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// A symbol of either side, for the product walk in [`may_match_type`].
#[derive(Debug, Clone, Copy, PartialEq)]
enum Sym {
    Lit(char),
    /// One character that is none of these (a format variable's character class).
    Class(&'static [char]),
    /// Any one character (`?`).
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    One(Sym),
    /// Zero or more of the symbol.
    Many(Sym),
}

fn pattern_tokens(pattern: &str) -> Vec<Tok> {
    pattern
        .chars()
        .map(|c| match c {
            '*' => Tok::Many(Sym::Any),
            '?' => Tok::One(Sym::Any),
            c => Tok::One(Sym::Lit(c)),
        })
        .collect()
}

/// Partition, region and account never hold `:`; the names below never hold `/` either
/// (AWS's naming rules). Other parts may (secret and parameter names, object keys,
/// repository namespaces), so they stand for any text.
fn class_of(variable: &str) -> &'static [char] {
    const FIELD: &[char] = &[':'];
    const NAME: &[char] = &[':', '/'];
    const ANY: &[char] = &[];
    const PLAIN_NAMES: &[&str] = &[
        "ApplicationName",
        "BucketName",
        "ClusterName",
        "DeploymentConfigurationName",
        "DeploymentGroupName",
        "FunctionName",
        "QueueName",
        "ServiceName",
        "TableName",
        "TopicName",
    ];
    match variable {
        "Partition" | "Region" | "Account" => FIELD,
        v if PLAIN_NAMES.contains(&v) => NAME,
        _ => ANY,
    }
}

fn format_tokens(format: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut rest = format;
    while let Some(start) = rest.find("${") {
        out.extend(rest[..start].chars().map(|c| Tok::One(Sym::Lit(c))));
        let after = &rest[start + 2..];
        let end = after.find('}').unwrap_or(after.len());
        let class = class_of(&after[..end]);
        // Region and account are empty in some ARNs (S3 buckets, IAM roles).
        if !matches!(&after[..end], "Region" | "Account") {
            out.push(Tok::One(Sym::Class(class)));
        }
        out.push(Tok::Many(Sym::Class(class)));
        rest = &after[(end + 1).min(after.len())..];
    }
    out.extend(rest.chars().map(|c| Tok::One(Sym::Lit(c))));
    out
}

fn meet(a: Sym, b: Sym) -> bool {
    match (a, b) {
        (Sym::Any, _) | (_, Sym::Any) => true,
        (Sym::Lit(x), Sym::Lit(y)) => x == y,
        (Sym::Lit(c), Sym::Class(not)) | (Sym::Class(not), Sym::Lit(c)) => !not.contains(&c),
        // Two classes always share ordinary characters.
        (Sym::Class(_), Sym::Class(_)) => true,
    }
}

/// Whether some ARN both matches the policy `pattern` and has the resource type's
/// `format`: a walk over pairs of positions (the product of two small automata).
pub fn may_match_type(pattern: &str, format: &str) -> bool {
    let (p, f) = (pattern_tokens(pattern), format_tokens(format));
    let mut seen = HashSet::new();
    let mut stack = vec![(0usize, 0usize)];
    while let Some((i, j)) = stack.pop() {
        if !seen.insert((i, j)) {
            continue;
        }
        if i == p.len() && j == f.len() {
            return true;
        }
        // A repetition may end without consuming anything.
        if let Some(Tok::Many(_)) = p.get(i) {
            stack.push((i + 1, j));
        }
        if let Some(Tok::Many(_)) = f.get(j) {
            stack.push((i, j + 1));
        }
        // Or both sides consume one character together.
        if let (Some(a), Some(b)) = (p.get(i), f.get(j)) {
            let (sa, ni) = match *a {
                Tok::One(s) => (s, i + 1),
                Tok::Many(s) => (s, i),
            };
            let (sb, nj) = match *b {
                Tok::One(s) => (s, j + 1),
                Tok::Many(s) => (s, j),
            };
            // (Both repeating: one shared character leaves the pair where it is.)
            if meet(sa, sb) && (ni, nj) != (i, j) {
                stack.push((ni, nj));
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: &str =
        "arn:${Partition}:ecs:${Region}:${Account}:service/${ClusterName}/${ServiceName}";
    const DEPLOYMENT: &str = "arn:${Partition}:ecs:${Region}:${Account}:service-deployment/${ClusterName}/${ServiceName}/${ServiceDeploymentId}";
    const GROUP: &str = "arn:${Partition}:codedeploy:${Region}:${Account}:deploymentgroup:${ApplicationName}/${DeploymentGroupName}";
    const BUCKET: &str = "arn:${Partition}:s3:::${BucketName}";
    const OBJECT: &str = "arn:${Partition}:s3:::${BucketName}/${ObjectName}";

    #[test]
    fn globs_match_as_iam_does() {
        assert!(glob_matches(
            "arn:aws:ecs:*:*:service/*",
            "arn:aws:ecs:us-east-1:1:service/prod/web"
        ));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("a?c", "abc"));
        assert!(!glob_matches("a?c", "ac"));
        assert!(!glob_matches(
            "arn:aws:sns:*:*:topic",
            "arn:aws:sns:us-east-1:1:other"
        ));
    }

    #[test]
    fn a_pattern_matches_the_types_it_can_name_and_no_other() {
        let service = "arn:aws:ecs:us-east-1:123456789012:service/*";
        assert!(may_match_type(service, SERVICE));
        assert!(!may_match_type(service, DEPLOYMENT));
        assert!(may_match_type(
            "arn:aws:ecs:us-east-1:123456789012:service-deployment/*",
            DEPLOYMENT
        ));
        assert!(may_match_type("*", DEPLOYMENT));
        assert!(!may_match_type(
            "arn:aws:ecs:us-east-1:123456789012:service/prod",
            SERVICE
        ));
        assert!(may_match_type(
            "arn:aws:ecs:us-east-1:123456789012:service/prod/web",
            SERVICE
        ));
        assert!(may_match_type(
            "arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:*",
            GROUP
        ));
        assert!(!may_match_type(
            "arn:aws:codedeploy:us-east-1:123456789012:application:*",
            GROUP
        ));
        assert!(may_match_type(
            "arn:aws:s3:::bucket/greenlight.yaml",
            OBJECT
        ));
        assert!(!may_match_type(
            "arn:aws:s3:::bucket/greenlight.yaml",
            BUCKET
        ));
        assert!(may_match_type("arn:aws:s3:::bucket", BUCKET));
        assert!(!may_match_type(
            "arn:aws:ecs:us-east-1:1:service/a/b",
            "arn:${Partition}:ecs:${Region}:${Account}:task/${ClusterName}/${TaskId}"
        ));
        // Secret names may hold `/`; the random suffix is matched by `?`.
        assert!(may_match_type(
            "arn:aws:secretsmanager:us-east-1:1:secret:greenlight/token-??????",
            "arn:${Partition}:secretsmanager:${Region}:${Account}:secret:${SecretId}"
        ));
    }
}
