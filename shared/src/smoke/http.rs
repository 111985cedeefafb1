//! The HTTP clients the checks use: plain http built at init, https on first use.

pub(super) fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("greenlight-smoke/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(256)
}

/// Builds the HTTP client the engine uses: pooled connections, no redirects, the
/// platform's trusted roots for https.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    client_builder().build()
}

/// HTTP clients for the lifecycle hook, built for a fast cold start: loading the
/// system's trusted roots costs milliseconds (it reads and parses every CA), and the
/// test listeners smoke checks aim at are usually plain http. So the plain-http client
/// is built at init with no roots, and the https client only when an https target
/// first appears.
pub struct HttpClients {
    plain: reqwest::Client,
    verified: std::sync::OnceLock<Result<reqwest::Client, HttpsClientError>>,
}

/// The https client could not be built (the system's trust store is unreadable).
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot build the https client: {0}")]
pub struct HttpsClientError(String);

impl HttpClients {
    pub fn new() -> Result<HttpClients, reqwest::Error> {
        Ok(HttpClients {
            // No roots at all: this client can only speak plain http.
            plain: client_builder()
                .tls_certs_only(Vec::new())
                .https_only(false)
                .build()?,
            verified: std::sync::OnceLock::new(),
        })
    }

    /// The client for `base_url`.
    pub fn for_url(&self, base_url: &str) -> Result<&reqwest::Client, HttpsClientError> {
        if base_url.starts_with("https://") {
            self.verified
                .get_or_init(|| http_client().map_err(|e| HttpsClientError(e.to_string())))
                .as_ref()
                .map_err(Clone::clone)
        } else {
            Ok(&self.plain)
        }
    }
}
