//! Reading and writing the document where it lives remotely: Parameter Store
//! (`GetParameter` with decryption) and S3 (`HeadObject`, `GetObject`).

use crate::aws::{retry, AwsError, LazyClient};

use super::ConfigSource;

/// A document and the version it was read at (SSM Version, S3 ETag; none locally).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub text: String,
    pub version: Option<String>,
}

/// Reads documents from SSM and S3 (`ssm:GetParameter` with decryption, `s3:GetObject`;
/// HeadObject needs no permission beyond GetObject) and writes them (`config push`).
#[derive(Debug, Clone)]
pub struct ConfigStore {
    ssm: LazyClient<aws_sdk_ssm::Client>,
    s3: LazyClient<aws_sdk_s3::Client>,
}

impl ConfigStore {
    /// Clients are built on first use: only remote sources need them.
    pub fn from_conf(sdk: &aws_config::SdkConfig) -> Self {
        ConfigStore {
            ssm: LazyClient::deferred(sdk, aws_sdk_ssm::Client::new),
            s3: LazyClient::deferred(sdk, |c| {
                // Path-style addressing works with any endpoint, emulators included.
                let conf = aws_sdk_s3::config::Builder::from(c)
                    .force_path_style(true)
                    .build();
                aws_sdk_s3::Client::from_conf(conf)
            }),
        }
    }

    /// The document at `source`; `None` when it still has version `known`.
    pub async fn fetch(
        &self,
        source: &ConfigSource,
        known: Option<&str>,
    ) -> Result<Option<Document>, AwsError> {
        match source {
            ConfigSource::Inline(text) => Ok(Some(Document {
                text: text.clone(),
                version: None,
            })),
            ConfigSource::File(path) => std::fs::read_to_string(path)
                .map(|text| {
                    Some(Document {
                        text,
                        version: None,
                    })
                })
                .map_err(|e| {
                    AwsError::unexpected("file", "read", format!("{}: {e}", path.display()))
                }),
            ConfigSource::Ssm(name) => {
                let parameter = crate::aws::ssm::decrypted(&self.ssm, name).await?;
                let version = parameter.version.to_string();
                if known == Some(version.as_str()) {
                    return Ok(None);
                }
                Ok(Some(Document {
                    text: parameter.value,
                    version: Some(version),
                }))
            }
            ConfigSource::S3 { bucket, key } => {
                if known.is_some() {
                    let head = retry::call("S3", "HeadObject", || {
                        self.s3.get().head_object().bucket(bucket).key(key).send()
                    })
                    .await?;
                    if head.e_tag.as_deref() == known {
                        return Ok(None);
                    }
                }
                let object = retry::call("S3", "GetObject", || {
                    self.s3.get().get_object().bucket(bucket).key(key).send()
                })
                .await?;
                let version = object.e_tag.clone();
                let bytes = object.body.collect().await.map_err(|e| {
                    AwsError::unexpected("S3", "GetObject", format!("reading the body: {e}"))
                })?;
                let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
                    AwsError::unexpected("S3", "GetObject", "the object is not UTF-8 text")
                })?;
                Ok(Some(Document { text, version }))
            }
        }
    }

    /// Uploads a document (`greenlight config push`): an SSM parameter (advanced tier
    /// when over 4 KB or already advanced, SecureString if it already is one) or an S3
    /// object.
    pub async fn push(&self, source: &ConfigSource, text: &str) -> Result<String, AwsError> {
        match source {
            ConfigSource::Ssm(name) => {
                use aws_sdk_ssm::types::{ParameterStringFilter, ParameterTier, ParameterType};
                // Type and tier of the parameter as it is: SSM cannot move an advanced
                // parameter back to standard, so a document that shrinks keeps its tier.
                let filter = ParameterStringFilter::builder()
                    .key("Name")
                    .option("Equals")
                    .set_values(Some(parameter_names(name)))
                    .build()
                    .map_err(|e| {
                        AwsError::unexpected("SSM", "DescribeParameters", e.to_string())
                    })?;
                let existing = self
                    .ssm
                    .get()
                    .describe_parameters()
                    .parameter_filters(filter)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("SSM", "DescribeParameters", e))?
                    .parameters
                    .unwrap_or_default()
                    .into_iter()
                    .next();
                let kind = existing
                    .as_ref()
                    .and_then(|p| p.r#type.clone())
                    .unwrap_or(ParameterType::String);
                let advanced = existing.and_then(|p| p.tier) == Some(ParameterTier::Advanced);
                let tier = if advanced || text.len() > 4096 {
                    ParameterTier::Advanced
                } else {
                    ParameterTier::Standard
                };
                let output = self
                    .ssm
                    .get()
                    .put_parameter()
                    .name(name)
                    .value(text)
                    .r#type(kind)
                    .tier(tier)
                    .overwrite(true)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("SSM", "PutParameter", e))?;
                Ok(format!("SSM parameter {name} version {}", output.version))
            }
            ConfigSource::S3 { bucket, key } => {
                let output = self
                    .s3
                    .get()
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .content_type("application/yaml")
                    .body(text.as_bytes().to_vec().into())
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("S3", "PutObject", e))?;
                Ok(format!(
                    "s3://{bucket}/{key} ETag {}",
                    output.e_tag.unwrap_or_default()
                ))
            }
            other => Err(AwsError::unexpected(
                "config",
                "push",
                format!("{other} is not a remote source: push to ssm:NAME or s3://bucket/key"),
            )),
        }
    }
}

/// The names a parameter given by name or ARN may have: an ARN drops a hierarchical
/// name's leading slash (`…:parameter/a/b` is `/a/b`) but not a plain one's (`…:parameter/x` is `x`).
pub(super) fn parameter_names(name_or_arn: &str) -> Vec<String> {
    match name_or_arn.split_once(":parameter/") {
        Some((prefix, rest)) if prefix.starts_with("arn:") => {
            vec![format!("/{rest}"), rest.to_string()]
        }
        _ => vec![name_or_arn.to_string()],
    }
}
