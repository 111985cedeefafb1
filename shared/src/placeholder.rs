//! The `${…}` grammar of smoke checks: the per-deployment placeholders and the
//! secret references (`${secret:…}`, `${ssm:…}`), shared by the configuration's
//! validation and the smoke engine.

/// Placeholders a smoke expectation may use; replaced per deployment.
pub const PLACEHOLDERS: [&str; 3] = ["image_tag", "image_digest", "deployment_id"];

/// Names inside `${…}` in a text.
pub fn placeholder_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                names.push(after[..end].to_string());
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    names
}

/// Whether a placeholder names a secret (resolved from Secrets Manager or
/// Parameter Store, masked in every report).
pub fn is_secret_reference(name: &str) -> bool {
    name.starts_with("secret:") || name.starts_with("ssm:")
}
