//! AWS adapters: one SDK configuration loaded once at init, and small adapters per
//! capability. Each adapter's methods map to the IAM actions its function is
//! granted (see `IAM_ACTIONS` in each function crate), so the code and the
//! template tell the same story.
//!
//! Endpoints: the SDK honours `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>`
//! (e.g. `AWS_ENDPOINT_URL_CODEDEPLOY`); that is the only way tests and the local
//! rehearsal redirect Greenlight, so production code has no test branches.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_codedeploy::config::http::HttpResponse;
use aws_sdk_codedeploy::error::SdkError;
use aws_sdk_codedeploy::types::{
    DeploymentStatus, LifecycleEventStatus, RevisionLocation, RevisionLocationType,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::Serialize;

pub mod codedeploy;
pub mod ecr;
pub mod ecs;
pub mod elb;
pub mod pipeline;
pub mod sns;

pub use codedeploy::CodeDeploy;
pub use ecr::Ecr;
pub use ecs::Ecs;
pub use elb::LoadBalancers;
pub use pipeline::Pipelines;
pub use sns::Sns;

/// Loads the shared SDK configuration (region, credentials, endpoint overrides) once.
/// No network I/O happens here: credentials are resolved lazily on first call.
pub async fn load_sdk_config() -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(client) = bundle_https_client() {
        loader = loader.http_client(client);
    }
    loader.load().await
}

/// System CA bundles: Amazon Linux 2023 (Lambda's provided.al2023), Debian/Ubuntu, others.
const CA_BUNDLES: [&str; 3] = [
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/cert.pem",
];

/// The SDK's default HTTPS client (rustls with aws-lc, proxy from the environment), but
/// trusting the system's single CA bundle file. The default loader also scans the
/// certificate directory, one file per CA (about 150 on Debian), at client construction:
/// measured here, that scan is most of a function's init time. When `SSL_CERT_FILE` or
/// `SSL_CERT_DIR` is set, or no bundle is found, the default stays (it honours those).
fn bundle_https_client() -> Option<aws_smithy_runtime_api_client::SharedHttpClient> {
    if std::env::var_os("SSL_CERT_FILE").is_some() || std::env::var_os("SSL_CERT_DIR").is_some() {
        return None;
    }
    let pem = CA_BUNDLES
        .iter()
        .find_map(|path| std::fs::read(path).ok())?;
    https_client_trusting(pem)
}

/// An HTTPS client trusting exactly the certificates in `pem`; `None` if it holds none.
fn https_client_trusting(pem: Vec<u8>) -> Option<aws_smithy_runtime_api_client::SharedHttpClient> {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
    use aws_smithy_http_client::{proxy::ProxyConfig, Builder, ConnectorBuilder};
    // The TLS provider parses the PEM only when it connects; a bundle without a single
    // certificate would fail every call then, so it is refused here.
    let certificates = pem
        .windows(27)
        .filter(|w| *w == b"-----BEGIN CERTIFICATE-----")
        .count();
    if certificates == 0 {
        return None;
    }
    let context = TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(pem))
        .build()
        .ok()?;
    Some(
        Builder::new().build_with_connector_fn(move |settings, components| {
            let mut connector = ConnectorBuilder::default()
                .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
                .tls_context(context.clone());
            connector.set_connector_settings(settings.cloned());
            if let Some(components) = components {
                connector.set_sleep_impl(components.sleep_impl());
            }
            connector.set_proxy_config(Some(ProxyConfig::from_env()));
            connector.build()
        }),
    )
}

// The shared HTTP client type, re-exported by every SDK crate.
mod aws_smithy_runtime_api_client {
    pub use aws_sdk_codedeploy::config::SharedHttpClient;
}

/// A failed AWS call, with what a person and the retry logic need to know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{service} {operation} failed: {}{message}", code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default())]
pub struct AwsError {
    pub service: &'static str,
    pub operation: &'static str,
    /// The AWS error code (`DeploymentLimitExceededException`, `ThrottlingException`, ...).
    pub code: Option<String>,
    pub message: String,
    /// Retrying later may help (throttling, 5xx, network); the SDK already retried.
    pub retryable: bool,
}

impl AwsError {
    /// Every SDK crate shares one `SdkError` and raw response type, so one conversion serves all.
    pub fn from_sdk<E>(
        service: &'static str,
        operation: &'static str,
        err: SdkError<E, HttpResponse>,
    ) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let (code, message, retryable) = match &err {
            SdkError::ServiceError(service_err) => {
                let e = service_err.err();
                // Modeled errors display as "<Code>: <message>"; used when the response
                // metadata lacks them (errors built in code rather than parsed).
                let display = e.to_string();
                let (display_code, display_message) = match display.split_once(": ") {
                    Some((code, message)) => (code.to_string(), message.to_string()),
                    None => (display.clone(), String::new()),
                };
                let looks_like_code = !display_code.is_empty()
                    && display_code.chars().all(|c| c.is_ascii_alphanumeric())
                    && (display_code.ends_with("Exception") || display_code.ends_with("Error"));
                let code = e
                    .code()
                    .map(str::to_string)
                    .or_else(|| looks_like_code.then(|| display_code.clone()));
                let retryable = status.is_some_and(|s| s >= 500)
                    || code.as_deref().is_some_and(|c| {
                        c.contains("Throttl")
                            || c == "RequestLimitExceeded"
                            || c == "TooManyRequestsException"
                    });
                (
                    code,
                    e.message()
                        .map(str::to_string)
                        .or_else(|| (!display_message.is_empty()).then_some(display_message))
                        .unwrap_or_else(|| "no message".to_string()),
                    retryable,
                )
            }
            SdkError::TimeoutError(_) => (None, "timed out".to_string(), true),
            SdkError::DispatchFailure(e) => {
                (None, format!("could not reach the endpoint: {e:?}"), true)
            }
            SdkError::ResponseError(_) => (
                None,
                format!(
                    "unreadable response (HTTP {})",
                    status.map_or("?".into(), |s| s.to_string())
                ),
                true,
            ),
            other => (
                other.code().map(str::to_string),
                format!("{}", aws_sdk_codedeploy::error::DisplayErrorContext(other)),
                false,
            ),
        };
        AwsError {
            service,
            operation,
            code,
            message,
            retryable,
        }
    }

    pub fn is_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// An answer that is not what the API promises (e.g. a missing field).
    pub fn unexpected(
        service: &'static str,
        operation: &'static str,
        message: impl Into<String>,
    ) -> AwsError {
        AwsError {
            service,
            operation,
            code: None,
            message: message.into(),
            retryable: false,
        }
    }
}

/// Outcome of reporting a lifecycle hook status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum HookReport {
    Reported,
    /// CodeDeploy already had a status for this execution (a retried invocation): done.
    AlreadyCompleted,
}

/// The two statuses a hook may report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum HookStatus {
    Succeeded,
    Failed,
}

impl HookStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HookStatus::Succeeded => "Succeeded",
            HookStatus::Failed => "Failed",
        }
    }

    fn sdk(self) -> LifecycleEventStatus {
        match self {
            HookStatus::Succeeded => LifecycleEventStatus::Succeeded,
            HookStatus::Failed => LifecycleEventStatus::Failed,
        }
    }
}

/// What Greenlight reads about a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentSummary {
    pub deployment_id: String,
    pub application: String,
    pub deployment_group: String,
    pub status: String,
    pub description: Option<String>,
    /// The AppSpec content, when the revision was sent inline.
    pub appspec: Option<String>,
    /// Creation time, milliseconds since the epoch.
    pub created_at: Option<i64>,
}

/// What Greenlight reads about a deployment group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeploymentGroupSummary {
    pub application: String,
    pub deployment_group: String,
    pub test_listener_arns: Vec<String>,
    pub production_listener_arns: Vec<String>,
    pub alarm_names: Vec<String>,
    pub alarms_enabled: bool,
}

/// Statuses CodeDeploy counts as in flight.
pub const IN_FLIGHT_STATUSES: [&str; 5] = ["Created", "Queued", "InProgress", "Baking", "Ready"];

pub(crate) fn deployment_status_sdk(status: &str) -> DeploymentStatus {
    DeploymentStatus::from(status)
}

pub(crate) fn inline_appspec(content: &str) -> RevisionLocation {
    RevisionLocation::builder()
        .revision_type(RevisionLocationType::AppSpecContent)
        .app_spec_content(
            aws_sdk_codedeploy::types::AppSpecContent::builder()
                .content(content)
                .build(),
        )
        .build()
}

pub(crate) fn sdk_status(status: HookStatus) -> LifecycleEventStatus {
    status.sdk()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_built_from_a_real_bundle_and_refused_for_one_without_certificates() {
        let bundle = CA_BUNDLES.iter().find_map(|path| std::fs::read(path).ok());
        if let Some(pem) = bundle {
            assert!(https_client_trusting(pem).is_some());
        }
        assert!(https_client_trusting(b"not a certificate".to_vec()).is_none());
    }

    #[test]
    fn aws_errors_fall_back_to_the_code_in_the_message() {
        use aws_sdk_codedeploy::operation::create_deployment::CreateDeploymentError;
        use aws_sdk_codedeploy::types::error::DeploymentLimitExceededException;
        let err = SdkError::service_error(
            CreateDeploymentError::DeploymentLimitExceededException(
                DeploymentLimitExceededException::builder()
                    .message("already active")
                    .build(),
            ),
            HttpResponse::new(
                400u16.try_into().unwrap(),
                aws_smithy_types::body::SdkBody::empty(),
            ),
        );
        let err = AwsError::from_sdk("CodeDeploy", "CreateDeployment", err);
        assert_eq!(
            err.code.as_deref(),
            Some("DeploymentLimitExceededException")
        );
        assert_eq!(err.message, "already active");
        assert!(!err.retryable);
        assert_eq!(
            err.to_string(),
            "CodeDeploy CreateDeployment failed: DeploymentLimitExceededException: already active"
        );
    }
}
