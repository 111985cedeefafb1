//! Parameter Store reads shared by the configuration source and the checks' secrets:
//! one `ssm:GetParameter` with decryption (String and SecureString alike).

use super::{retry, AwsError, LazyClient};

/// A parameter's value and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    pub value: String,
    pub version: i64,
}

/// GetParameter with decryption; a parameter without a value is an error naming it.
pub(crate) async fn decrypted(
    ssm: &LazyClient<aws_sdk_ssm::Client>,
    name: &str,
) -> Result<Parameter, AwsError> {
    let output = retry::call("SSM", "GetParameter", || {
        ssm.get()
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
    })
    .await?;
    let parameter = output.parameter.ok_or_else(|| {
        AwsError::unexpected("SSM", "GetParameter", format!("no parameter {name}"))
    })?;
    Ok(Parameter {
        version: parameter.version,
        value: parameter.value.ok_or_else(|| {
            AwsError::unexpected(
                "SSM",
                "GetParameter",
                format!("parameter {name} has no value"),
            )
        })?,
    })
}
