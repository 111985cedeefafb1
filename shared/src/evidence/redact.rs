//! Masking for log lines that leave the account in a notification or a page: the
//! values of the checks' resolved secrets, the document's `redact:` patterns and
//! defaults for what commonly leaks into logs (AWS access keys, bearer tokens,
//! `password=`-style pairs).

use regex_lite::Regex;

use crate::smoke::MASK;

/// What always goes, whatever the document says. An AWS access key id (long-term
/// `AKIA…` or temporary `ASIA…`), an HTTP bearer token, and a secret-looking
/// `key=value` or `key: value` pair.
pub const DEFAULT_PATTERNS: &[&str] = &[
    r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b",
    r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+",
    r#"(?i)\b(?:aws_secret_access_key|secret_access_key|password|passwd|secret|api_key|apikey|token)\b["']?\s*[=:]\s*["']?[^\s"',;]+"#,
];

/// A `redact:` entry that is not a regular expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pattern:?} is not a regular expression: {message}")]
pub struct PatternError {
    pub pattern: String,
    pub message: String,
}

/// Compiles one pattern (the configuration checks each `redact:` entry with it).
pub fn compile(pattern: &str) -> Result<Regex, PatternError> {
    Regex::new(pattern).map_err(|e| PatternError {
        pattern: pattern.to_string(),
        message: e.to_string(),
    })
}

/// Masks secrets out of text.
#[derive(Debug, Clone)]
pub struct Redactor {
    values: Vec<String>,
    patterns: Vec<Regex>,
}

impl Redactor {
    /// The defaults plus `extra` (the document's `redact:`, each already checked
    /// with [`compile`]; one that does not compile is logged and left out).
    pub fn new(extra: &[String]) -> Redactor {
        let patterns = DEFAULT_PATTERNS
            .iter()
            .copied()
            .chain(extra.iter().map(String::as_str))
            .filter_map(|p| {
                compile(p)
                    .inspect_err(|e| tracing::warn!(error = %e, "a redact pattern is left out"))
                    .ok()
            })
            .collect();
        Redactor {
            values: Vec::new(),
            patterns,
        }
    }

    /// Also masks these literal values (resolved check secrets). Longest first, so a
    /// secret that contains another is masked whole.
    pub fn with_values(mut self, values: impl IntoIterator<Item = String>) -> Redactor {
        self.values
            .extend(values.into_iter().filter(|v| v.len() >= 4));
        self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        self.values.dedup();
        self
    }

    /// `text` with every secret replaced by the mask.
    pub fn mask(&self, text: &str) -> String {
        let mut text = text.to_string();
        for value in &self.values {
            if text.contains(value.as_str()) {
                text = text.replace(value.as_str(), MASK);
            }
        }
        for pattern in &self.patterns {
            if pattern.is_match(&text) {
                text = pattern.replace_all(&text, MASK).into_owned();
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planted_access_key_a_bearer_token_and_a_password_are_masked() {
        let r = Redactor::new(&[]);
        let line = "boot with AKIAIOSFODNN7EXAMPLE and Authorization: Bearer eyJhbGciOi.J9.x password=hunter22 ok";
        let masked = r.mask(line);
        assert!(!masked.contains("AKIAIOSFODNN7EXAMPLE"), "{masked}");
        assert!(!masked.contains("eyJhbGciOi"), "{masked}");
        assert!(!masked.contains("hunter22"), "{masked}");
        assert!(
            masked.starts_with("boot with ") && masked.ends_with(" ok"),
            "{masked}"
        );
    }

    #[test]
    fn ordinary_lines_pass_unchanged() {
        let r = Redactor::new(&[]);
        let line = "GET /health 200 in 3 ms (tokens issued: 4)";
        assert_eq!(r.mask(line), line);
    }

    #[test]
    fn configured_patterns_and_secret_values_are_masked_too() {
        let r = Redactor::new(&["card=\\d{16}".to_string()])
            .with_values(["s3cr3t-value".to_string(), "ab".to_string()]);
        let masked = r.mask("card=4111111111111111 key s3cr3t-value ab");
        assert_eq!(masked, format!("{MASK} key {MASK} ab"));
    }

    #[test]
    fn a_bad_pattern_is_named() {
        let e = compile("(unclosed").unwrap_err();
        assert_eq!(e.pattern, "(unclosed");
        // Left out, not fatal: the defaults still mask.
        let r = Redactor::new(&["(unclosed".to_string()]);
        assert_eq!(r.mask("AKIAIOSFODNN7EXAMPLE"), MASK);
    }
}
