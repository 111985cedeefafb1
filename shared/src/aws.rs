//! AWS adapters: one SDK configuration loaded once at init, and small adapters per
//! capability. Each adapter's methods map to the IAM actions its function is
//! granted (see `IAM_ACTIONS` in each function crate), so the code and the
//! template tell the same story.
//!
//! Endpoints: the SDK honours `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>`
//! (e.g. `AWS_ENDPOINT_URL_CODEDEPLOY`); that is the only way tests and the local
//! rehearsal redirect Greenlight, so production code has no test branches.

use aws_config::BehaviorVersion;
/// The SDK configuration every adapter is built from.
pub use aws_config::SdkConfig;
use aws_sdk_codedeploy::types::{
    DeploymentStatus, LifecycleEventStatus, RevisionLocation, RevisionLocationType,
};
use serde::Serialize;

pub mod cloudwatch;
pub mod codedeploy;
mod credentials;
pub mod ecr;
pub mod ecs;
pub mod elb;
mod error;
pub mod pipeline;
pub mod retry;
pub mod scheduler;
pub mod secrets;
pub mod sns;
pub mod ssm;
mod stop;
pub mod tasks;

pub use codedeploy::CodeDeploy;
pub use ecr::Ecr;
pub use ecs::Ecs;
pub use elb::LoadBalancers;
pub use error::AwsError;
pub use pipeline::Pipelines;
pub use sns::Sns;
pub use stop::StopOutcome;
pub use tasks::Logs;

/// Env var: which roots the AWS SDK's HTTPS client trusts: `aws` (default) or `system`.
pub(crate) const ENV_TLS_ROOTS: &str = "GREENLIGHT_TLS_ROOTS";

/// The roots every AWS service endpoint chains to (Amazon Trust Services), compiled in.
const AMAZON_TRUST_SERVICES: &[u8] = include_bytes!("../certs/amazon-trust-services.pem");

/// `GREENLIGHT_TLS_ROOTS` names no trust setting Greenlight knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{ENV_TLS_ROOTS}={value:?} is not a trust setting: use aws (the default: Amazon Trust Services roots, compiled in) or system (the system CA bundle, for private CAs)")]
pub struct TrustRootsError {
    pub value: String,
}

/// Which certificate authorities the SDK's HTTPS client trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TrustRoots {
    /// Amazon Trust Services' five roots, compiled in: nothing to read or parse
    /// beyond five certificates at init, and enough for every AWS endpoint.
    Aws,
    /// The system's CA bundle (`SSL_CERT_FILE`/`SSL_CERT_DIR` honoured): for
    /// private CAs, such as a TLS-inspecting egress proxy.
    System,
}

impl TrustRoots {
    /// From `GREENLIGHT_TLS_ROOTS`; unset means `aws`, unless `SSL_CERT_FILE` or
    /// `SSL_CERT_DIR` is set (then those are what the operator asked for).
    pub(crate) fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<TrustRoots, TrustRootsError> {
        match lookup(ENV_TLS_ROOTS).as_deref().map(str::trim) {
            None | Some("") => Ok(
                if lookup("SSL_CERT_FILE").is_some() || lookup("SSL_CERT_DIR").is_some() {
                    TrustRoots::System
                } else {
                    TrustRoots::Aws
                },
            ),
            Some("aws") => Ok(TrustRoots::Aws),
            Some("system") => Ok(TrustRoots::System),
            Some(other) => Err(TrustRootsError {
                value: other.to_string(),
            }),
        }
    }
}

/// Loads the shared SDK configuration (region, credentials, endpoint overrides) once.
/// No network I/O happens here: credentials are resolved lazily on first call.
/// Fails only for an invalid `GREENLIGHT_TLS_ROOTS`.
pub async fn load_sdk_config() -> Result<SdkConfig, TrustRootsError> {
    let roots = TrustRoots::from_lookup(|key| std::env::var(key).ok())?;
    let tls = match roots {
        TrustRoots::Aws => tls_context_trusting(AMAZON_TRUST_SERVICES.to_vec()),
        TrustRoots::System => system_bundle(),
    };
    let http = aws_smithy_runtime_api::client::http::SharedHttpClient::new(OneConnector::new(tls));
    // Lambda always sets AWS_REGION; naming it skips the region provider chain.
    let region = std::env::var("AWS_REGION")
        .ok()
        .filter(|r| !r.is_empty())
        .map(aws_config::Region::new);
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).credentials_provider(
        credentials::EnvironmentFirst::new(http.clone(), region.clone()),
    );
    if let Some(region) = region {
        loader = loader.region(region);
    }
    Ok(loader
        .http_client(http)
        .retry_config(retry::sdk_retry_config())
        .timeout_config(sdk_timeouts())
        .load()
        .await)
}

/// Every AWS call gives up on a connection that does not open in 3 s, or an answer
/// that does not come in 10 s, and is then retried by [`retry::call`] within the
/// invocation's deadline: one stuck connection must never hold an invocation until
/// Lambda kills it (for an ECS-native hook that would roll a good deployment back).
/// Greenlight's calls are all short requests; none streams or long-polls.
pub(crate) fn sdk_timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(3))
        .read_timeout(std::time::Duration::from_secs(10))
        .operation_attempt_timeout(std::time::Duration::from_secs(10))
        .build()
}

/// A service client built on first use, for services a function calls only on some
/// paths (ECR for the queue, CodePipeline for pipeline services, ELBv2 when no smoke
/// URL is configured): init does not pay for a client that may never be used.
#[derive(Debug, Clone)]
pub(crate) struct LazyClient<C> {
    conf: SdkConfig,
    client: std::sync::OnceLock<C>,
    build: fn(&SdkConfig) -> C,
}

impl<C> LazyClient<C> {
    /// A client built from `conf` when first needed.
    pub(crate) fn deferred(conf: &SdkConfig, build: fn(&SdkConfig) -> C) -> Self {
        LazyClient {
            conf: conf.clone(),
            client: std::sync::OnceLock::new(),
            build,
        }
    }

    /// An already built client (tests hand in mocked ones).
    pub fn ready(client: C, build: fn(&SdkConfig) -> C) -> Self {
        LazyClient {
            // Never read: the cell is already filled.
            conf: SdkConfig::builder().build(),
            client: std::sync::OnceLock::from(client),
            build,
        }
    }

    pub fn get(&self) -> &C {
        self.client.get_or_init(|| (self.build)(&self.conf))
    }
}

/// System CA bundles: Amazon Linux 2023 (Lambda's provided.al2023), Debian/Ubuntu, others.
const CA_BUNDLES: [&str; 3] = [
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/cert.pem",
];

/// The system's CA bundle as a TLS context, unless `SSL_CERT_FILE`/`SSL_CERT_DIR` are
/// set (the SDK's default loader honours those) or no valid bundle is found. The
/// default loader also scans the certificate directory, one file per CA (about 150 on
/// Debian); reading the one bundle file instead is measurably faster at init.
fn system_bundle() -> Option<aws_smithy_http_client::tls::TlsContext> {
    if std::env::var_os("SSL_CERT_FILE").is_some() || std::env::var_os("SSL_CERT_DIR").is_some() {
        return None;
    }
    CA_BUNDLES
        .iter()
        .find_map(|path| std::fs::read(path).ok())
        .and_then(tls_context_trusting)
}

/// A TLS context trusting exactly the certificates in `pem`; `None` unless every block
/// parses and there is at least one (the TLS provider would panic on a bad one later).
fn tls_context_trusting(pem: Vec<u8>) -> Option<aws_smithy_http_client::tls::TlsContext> {
    use aws_smithy_http_client::tls::{TlsContext, TrustStore};
    use rustls_pki_types::pem::PemObject;
    let certificates = rustls_pki_types::CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    if certificates.is_empty() {
        return None;
    }
    TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(pem))
        .build()
        .ok()
}

/// The SDK's default HTTPS client (rustls with aws-lc, proxy from the environment),
/// with one connector shared by every service client. The default builds a connector
/// per client, and each builds its own trusted-root store: five clients, five parses
/// of every CA certificate at init. One connector also means one connection pool.
#[derive(Debug)]
struct OneConnector {
    tls: Option<aws_smithy_http_client::tls::TlsContext>,
    connector: std::sync::OnceLock<aws_smithy_runtime_api::client::http::SharedHttpConnector>,
}

impl OneConnector {
    fn new(tls: Option<aws_smithy_http_client::tls::TlsContext>) -> Self {
        OneConnector {
            tls,
            connector: std::sync::OnceLock::new(),
        }
    }
}

impl aws_smithy_runtime_api::client::http::HttpClient for OneConnector {
    fn http_connector(
        &self,
        settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
        use aws_smithy_http_client::{proxy::ProxyConfig, ConnectorBuilder};
        self.connector
            .get_or_init(|| {
                let mut builder = ConnectorBuilder::default()
                    .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
                if let Some(tls) = &self.tls {
                    builder = builder.tls_context(tls.clone());
                }
                // Every client comes from one SdkConfig: the same timeouts and sleep.
                builder.set_connector_settings(Some(settings.clone()));
                builder.set_sleep_impl(components.sleep_impl());
                builder.set_proxy_config(Some(ProxyConfig::from_env()));
                aws_smithy_runtime_api::client::http::SharedHttpConnector::new(builder.build())
            })
            .clone()
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
pub(crate) const IN_FLIGHT_STATUSES: [&str; 5] =
    ["Created", "Queued", "InProgress", "Baking", "Ready"];

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
    use aws_sdk_codedeploy::config::http::HttpResponse;
    use aws_sdk_codedeploy::error::SdkError;

    #[test]
    fn the_compiled_in_roots_are_amazon_trust_services_five() {
        use rustls_pki_types::pem::PemObject;
        let certificates = rustls_pki_types::CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES)
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        assert_eq!(certificates.len(), 5);
        assert!(tls_context_trusting(AMAZON_TRUST_SERVICES.to_vec()).is_some());
        let text = String::from_utf8_lossy(AMAZON_TRUST_SERVICES);
        for name in [
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ] {
            assert!(text.contains(name), "{name}");
        }
    }

    #[test]
    fn the_trust_setting_defaults_to_aws_and_honours_ssl_cert_file() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |key: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(TrustRoots::from_lookup(env(&[])), Ok(TrustRoots::Aws));
        assert_eq!(
            TrustRoots::from_lookup(env(&[("SSL_CERT_FILE", "/x.pem")])),
            Ok(TrustRoots::System)
        );
        assert_eq!(
            TrustRoots::from_lookup(env(&[(ENV_TLS_ROOTS, "system")])),
            Ok(TrustRoots::System)
        );
        assert_eq!(
            TrustRoots::from_lookup(env(&[(ENV_TLS_ROOTS, "aws"), ("SSL_CERT_DIR", "/d")])),
            Ok(TrustRoots::Aws)
        );
        let err = TrustRoots::from_lookup(env(&[(ENV_TLS_ROOTS, "mozilla")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("GREENLIGHT_TLS_ROOTS") && err.contains("system"),
            "{err}"
        );
    }

    #[test]
    fn a_tls_context_is_built_from_a_real_bundle_and_refused_for_a_bad_one() {
        let bundle = CA_BUNDLES.iter().find_map(|path| std::fs::read(path).ok());
        if let Some(pem) = bundle {
            assert!(tls_context_trusting(pem).is_some());
        }
        assert!(tls_context_trusting(b"not a certificate".to_vec()).is_none());
        let broken =
            b"-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----\n".to_vec();
        assert!(tls_context_trusting(broken).is_none());
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

    /// The production path is HTTPS, which the emulator cannot show: a local TLS endpoint
    /// with a generated certificate, reached through the real SDK and OneConnector.
    #[tokio::test]
    async fn the_shared_connector_speaks_tls_and_verifies_the_server() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let key = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert_pem = key.cert.pem();
        let cert_der = key.cert.der().clone();
        let key_der =
            rustls_pki_types::PrivateKeyDer::try_from(key.signing_key.serialize_der()).unwrap();
        let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(
            std::sync::Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider()),
        )
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der], key_der)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let mut buffer = vec![0u8; 8192];
                    let _ = tls.read(&mut buffer).await;
                    let body = r#"{"applications":["over-tls"]}"#;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(answer.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        let sdk_config = |tls| async move {
            aws_config::defaults(BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .endpoint_url(format!("https://localhost:{port}"))
                .credentials_provider(aws_sdk_codedeploy::config::Credentials::new(
                    "t", "t", None, None, "test",
                ))
                .http_client(OneConnector::new(tls))
                .load()
                .await
        };
        let trusted = sdk_config(tls_context_trusting(cert_pem.into_bytes())).await;
        let apps = aws_sdk_codedeploy::Client::new(&trusted)
            .list_applications()
            .send()
            .await
            .unwrap();
        assert_eq!(apps.applications(), ["over-tls"]);

        // A trust store without the server's certificate must refuse the connection.
        let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let untrusted = sdk_config(tls_context_trusting(other.cert.pem().into_bytes())).await;
        let err = aws_sdk_codedeploy::Client::new(&untrusted)
            .list_applications()
            .send()
            .await
            .unwrap_err();
        assert!(matches!(err, SdkError::DispatchFailure(_)), "{err:?}");
    }
}
