//! Credentials: the environment's first, as Lambda provides them, and the SDK's whole
//! default chain only when the environment has none. The default chain's order is the
//! same (environment first), so nothing resolves differently; what changes is when the
//! rest of the chain is built. Built eagerly, its web-identity link alone constructs an
//! STS client at init, parsing the endpoint rules and compiling their regular
//! expressions: about a fifth of a function's init instructions, for a link a Lambda
//! function never reaches.

use aws_config::environment::credentials::EnvironmentVariableCredentialsProvider;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

#[derive(Debug)]
pub(crate) struct EnvironmentFirst<E = EnvironmentVariableCredentialsProvider> {
    env: E,
    /// What the fallback chain is built with: the same HTTPS client and region.
    http: SharedHttpClient,
    region: Option<Region>,
    chain: tokio::sync::OnceCell<Option<SharedCredentialsProvider>>,
}

impl EnvironmentFirst {
    pub(crate) fn new(http: SharedHttpClient, region: Option<Region>) -> Self {
        EnvironmentFirst {
            env: EnvironmentVariableCredentialsProvider::new(),
            http,
            region,
            chain: tokio::sync::OnceCell::new(),
        }
    }
}

impl<E> EnvironmentFirst<E> {
    /// The SDK's default chain, built once, on first need.
    async fn chain(&self) -> Option<&SharedCredentialsProvider> {
        self.chain
            .get_or_init(|| async {
                let mut loader =
                    aws_config::defaults(BehaviorVersion::latest()).http_client(self.http.clone());
                if let Some(region) = &self.region {
                    loader = loader.region(region.clone());
                }
                loader.load().await.credentials_provider()
            })
            .await
            .as_ref()
    }
}

impl<E: ProvideCredentials> ProvideCredentials for EnvironmentFirst<E> {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            match self.env.provide_credentials().await {
                Err(CredentialsError::CredentialsNotLoaded(_)) => match self.chain().await {
                    Some(chain) => chain.provide_credentials().await,
                    None => Err(CredentialsError::not_loaded(
                        "no credentials in the environment and no default chain",
                    )),
                },
                found => found,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;

    /// An environment without credentials.
    #[derive(Debug)]
    struct Empty;

    impl ProvideCredentials for Empty {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            future::ProvideCredentials::ready(Err(CredentialsError::not_loaded("empty")))
        }
    }

    fn provider<E>(env: E, chain: Option<Credentials>) -> EnvironmentFirst<E> {
        EnvironmentFirst {
            env,
            http: SharedHttpClient::new(aws_smithy_http_client::Builder::new().build_http()),
            region: None,
            chain: match chain {
                // A chain already built (building the real one would look for IMDS).
                Some(c) => {
                    tokio::sync::OnceCell::new_with(Some(Some(SharedCredentialsProvider::new(c))))
                }
                None => tokio::sync::OnceCell::new(),
            },
        }
    }

    #[tokio::test]
    async fn credentials_in_the_environment_never_build_the_chain() {
        let p = provider(Credentials::for_tests(), None);
        let found = p.provide_credentials().await.unwrap();
        assert_eq!(
            found.access_key_id(),
            Credentials::for_tests().access_key_id()
        );
        assert!(!p.chain.initialized());
    }

    #[tokio::test]
    async fn without_them_the_default_chain_answers() {
        let from_chain = Credentials::new("AKIDCHAIN", "secret", None, None, "chain");
        let p = provider(Empty, Some(from_chain));
        let found = p.provide_credentials().await.unwrap();
        assert_eq!(found.access_key_id(), "AKIDCHAIN");
    }
}
