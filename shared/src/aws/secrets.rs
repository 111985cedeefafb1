//! Secrets for smoke checks: `${secret:NAME}` (Secrets Manager, the secret string),
//! `${secret:NAME#key}` (a key of a JSON secret), `${ssm:NAME}` (a Parameter Store
//! parameter, decrypted). Read when a check runs (`secretsmanager:GetSecretValue`,
//! `ssm:GetParameter`), held for that run only, never logged: errors name the
//! reference and the AWS error, never a value.

use std::collections::BTreeMap;

use super::{retry, LazyClient};

#[derive(Debug, Clone)]
pub struct Secrets {
    secrets_manager: LazyClient<aws_sdk_secretsmanager::Client>,
    ssm: LazyClient<aws_sdk_ssm::Client>,
}

/// Values by reference, and why the others could not be read.
#[derive(Debug, Default)]
pub struct Resolved {
    pub values: BTreeMap<String, String>,
    pub errors: BTreeMap<String, String>,
}

impl Secrets {
    /// Clients are built on first use: only checks with secrets need them.
    pub fn from_conf(sdk: &aws_config::SdkConfig) -> Self {
        Secrets {
            secrets_manager: LazyClient::deferred(sdk, aws_sdk_secretsmanager::Client::new),
            ssm: LazyClient::deferred(sdk, aws_sdk_ssm::Client::new),
        }
    }

    /// Reads every reference once (concurrently); a secret named twice is read once.
    pub async fn resolve(&self, references: &[String]) -> Resolved {
        let reads = futures::future::join_all(
            references
                .iter()
                .map(|r| async move { (r, self.read(r).await) }),
        )
        .await;
        let mut resolved = Resolved::default();
        for (reference, read) in reads {
            match read {
                Ok(value) => {
                    resolved.values.insert(reference.clone(), value);
                }
                Err(why) => {
                    tracing::warn!(reference = %reference, error = %why, "a check's secret could not be read");
                    resolved.errors.insert(reference.clone(), why.to_string());
                }
            }
        }
        resolved
    }

    async fn read(&self, reference: &str) -> Result<String, SecretError> {
        if let Some(name) = reference.strip_prefix("ssm:") {
            return Ok(super::ssm::decrypted(&self.ssm, name).await?.value);
        }
        let rest = reference.strip_prefix("secret:").unwrap_or(reference);
        let (name, key) = match rest.split_once('#') {
            Some((name, key)) => (name, Some(key)),
            None => (rest, None),
        };
        let output = retry::call("SecretsManager", "GetSecretValue", || {
            self.secrets_manager
                .get()
                .get_secret_value()
                .secret_id(name)
                .send()
        })
        .await?;
        let text = output.secret_string.ok_or_else(|| SecretError::Binary {
            name: name.to_string(),
        })?;
        match key {
            None => Ok(text),
            Some(key) => json_key(&text, key).map_err(|problem| SecretError::Key {
                name: name.to_string(),
                problem,
            }),
        }
    }
}

/// Why a check's secret could not be read. Messages name secrets and keys, never values.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum SecretError {
    #[error(transparent)]
    Aws(#[from] super::AwsError),
    #[error("secret {name} has no string value (binary secrets are not supported)")]
    Binary { name: String },
    #[error("secret {name}: {problem}")]
    Key { name: String, problem: KeyProblem },
}

/// What is wrong with `#key` of a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KeyProblem {
    #[error("is not a JSON object, so #key cannot apply")]
    NotAnObject,
    #[error("key {key} is not a string, number or boolean")]
    NotAScalar { key: String },
    #[error("has no key {key} (keys: {})", keys.join(", "))]
    Missing { key: String, keys: Vec<String> },
}

/// `key` of a JSON object secret, as text. Errors name keys, never values.
fn json_key(text: &str, key: &str) -> Result<String, KeyProblem> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|_| KeyProblem::NotAnObject)?;
    let object = value.as_object().ok_or(KeyProblem::NotAnObject)?;
    match object.get(key) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
            Ok(other.to_string())
        }
        Some(_) => Err(KeyProblem::NotAScalar {
            key: key.to_string(),
        }),
        None => {
            let mut keys: Vec<String> = object.keys().cloned().collect();
            keys.sort_unstable();
            Err(KeyProblem::Missing {
                key: key.to_string(),
                keys,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::json_key;

    #[test]
    fn json_keys_are_read_and_errors_never_show_values() {
        let secret = r#"{"token":"s3cr3t","port":8443}"#;
        assert_eq!(json_key(secret, "token").unwrap(), "s3cr3t");
        assert_eq!(json_key(secret, "port").unwrap(), "8443");
        let missing = json_key(secret, "user").unwrap_err().to_string();
        assert!(missing.contains("keys: port, token"), "{missing}");
        assert!(!missing.contains("s3cr3t"));
        let not_json = json_key("s3cr3t", "token").unwrap_err().to_string();
        assert!(!not_json.contains("s3cr3t"), "{not_json}");
    }
}
