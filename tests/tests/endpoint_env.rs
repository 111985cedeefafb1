//! The standard `AWS_ENDPOINT_URL` variable redirects the functions' SDK configuration.
//! Its own test binary (own process), because it sets process environment variables.

use greenlight::aws::{load_sdk_config, Ecs};
use greenlight_tests::{moto, unique};

#[tokio::test]
async fn aws_endpoint_url_redirects_the_adapters() {
    let endpoint = moto().endpoint.clone();
    // SAFETY: the only test in this binary; no other thread reads the environment yet.
    unsafe {
        std::env::set_var("AWS_ENDPOINT_URL", &endpoint);
        std::env::set_var("AWS_REGION", "us-east-1");
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
        std::env::remove_var("AWS_PROFILE");
    }
    let sdk = load_sdk_config().await.unwrap();
    let ecs = Ecs::from_conf(&sdk);
    let cluster = unique("env-cluster");
    ecs.client()
        .create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .unwrap();
    let found = ecs
        .client()
        .describe_clusters()
        .clusters(&cluster)
        .send()
        .await
        .unwrap()
        .clusters
        .unwrap_or_default();
    assert_eq!(
        found.len(),
        1,
        "the cluster created through AWS_ENDPOINT_URL is in the emulator"
    );
    assert_eq!(found[0].cluster_name(), Some(cluster.as_str()));

    // The same configuration gives up on an endpoint that accepts and never answers:
    // without read and attempt timeouts one stuck connection held an invocation until
    // Lambda killed it.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let stuck = aws_sdk_sns::config::Builder::from(&sdk)
        .endpoint_url(format!("http://{addr}"))
        .build();
    let started = std::time::Instant::now();
    let answer = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        aws_sdk_sns::Client::from_conf(stuck).list_topics().send(),
    )
    .await;
    let elapsed = started.elapsed();
    let Ok(answer) = answer else {
        panic!("an SNS call to a silent endpoint still waited after 30 s");
    };
    assert!(answer.is_err(), "a silent endpoint cannot answer");
    assert!(
        elapsed < std::time::Duration::from_secs(15),
        "gave up after {elapsed:?}"
    );
}
