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
                    resolved.errors.insert(reference.clone(), why);
                }
            }
        }
        resolved
    }

    async fn read(&self, reference: &str) -> Result<String, String> {
        if let Some(name) = reference.strip_prefix("ssm:") {
            return super::ssm::decrypted(&self.ssm, name)
                .await
                .map(|p| p.value)
                .map_err(|e| e.to_string());
        }
        let rest = reference.strip_prefix("secret:").unwrap_or(reference);
        let (name, key) = match rest.split_once('#') {
            Some((name, key)) => (name, Some(key)),
            None => (rest, None),
        };
        let output = retry::send("SecretsManager", "GetSecretValue", || {
            self.secrets_manager
                .get()
                .get_secret_value()
                .secret_id(name)
                .send()
        })
        .await
        .map_err(|e| {
            super::AwsError::from_sdk("SecretsManager", "GetSecretValue", e).to_string()
        })?;
        let text = output.secret_string.ok_or_else(|| {
            format!("secret {name} has no string value (binary secrets are not supported)")
        })?;
        match key {
            None => Ok(text),
            Some(key) => json_key(&text, key).map_err(|why| format!("secret {name}: {why}")),
        }
    }
}

/// `key` of a JSON object secret, as text. Errors name keys, never values.
fn json_key(text: &str, key: &str) -> Result<String, String> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|_| "is not a JSON object, so #key cannot apply".to_string())?;
    let object = value
        .as_object()
        .ok_or("is not a JSON object, so #key cannot apply")?;
    match object.get(key) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
            Ok(other.to_string())
        }
        Some(_) => Err(format!("key {key} is not a string, number or boolean")),
        None => {
            let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
            keys.sort_unstable();
            Err(format!("has no key {key} (keys: {})", keys.join(", ")))
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
        let missing = json_key(secret, "user").unwrap_err();
        assert!(missing.contains("keys: port, token"), "{missing}");
        assert!(!missing.contains("s3cr3t"));
        let not_json = json_key("s3cr3t", "token").unwrap_err();
        assert!(!not_json.contains("s3cr3t"), "{not_json}");
    }
}
