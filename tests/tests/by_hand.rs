//! The README's "Invoking one function by hand", as a newcomer runs it: `greenlight
//! sandbox` (the emulator and the CodeDeploy stand-in with the demo's resources, and the
//! environment file), `cargo lambda watch --env-file` on it, the push event invoked
//! twice (started, then duplicate), and the deployment carried to Succeeded through the
//! hooks, which the stand-in invokes through `cargo lambda watch` too.
//! cargo-lambda sends a fixed deadline in 1970; before the functions treated it as
//! unknown, every invocation gave up at once without calling AWS.

use std::process::Stdio;
use std::time::Duration;

use greenlight_tests::{binaries, unique, workspace_root};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `command` and waits for a line of its stdout containing `ready`.
async fn start_until(mut command: Command, ready: &str) -> Child {
    command.stdout(Stdio::piped()).kill_on_drop(true);
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let wait = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains(ready) {
                return;
            }
        }
        panic!("ended before saying {ready:?}");
    };
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .unwrap_or_else(|_| panic!("no {ready:?} within 60 s"));
    // Keep draining, so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

async fn invoke(port: u16, function: &str, event: &Value) -> Value {
    let url = format!("http://127.0.0.1:{port}/2015-03-31/functions/{function}/invocations");
    let http = reqwest::Client::new();
    // cargo lambda watch builds the function on its first invocation.
    let answer = tokio::time::timeout(
        Duration::from_secs(600),
        http.post(&url).body(event.to_string()).send(),
    )
    .await
    .expect("cargo lambda watch answered")
    .unwrap();
    serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap()
}

#[tokio::test]
async fn a_push_invoked_by_hand_under_cargo_lambda_watch_deploys() {
    let root = workspace_root();
    let dir = std::env::temp_dir().join(unique("sandbox"));
    let port = free_port();
    let mut sandbox = Command::new(binaries().join("greenlight"));
    sandbox
        .current_dir(&root)
        .args(["sandbox", "--dir"])
        .arg(&dir)
        .args(["--lambda-url", &format!("http://127.0.0.1:{port}")]);
    let _sandbox = start_until(sandbox, "sandbox: running").await;

    let mut watch = Command::new(root.join(".venv/bin/cargo-lambda"));
    let path = format!(
        "{}:{}",
        root.join(".venv/bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    watch
        .current_dir(&root)
        .env("PATH", path)
        .args([
            "lambda",
            "watch",
            "-A",
            "127.0.0.1",
            "-P",
            &port.to_string(),
            "--env-file",
        ])
        .arg(dir.join("lambda.env"))
        .stderr(Stdio::null());
    let mut watch = watch
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Ready when it accepts connections.
    for _ in 0..600 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let event: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("ecr-push.json")).unwrap()).unwrap();
    let first = invoke(port, "deploy-on-push", &event).await;
    assert_eq!(first[0]["outcome"], "started", "{first}");
    let second = invoke(port, "deploy-on-push", &event).await;
    assert_eq!(second[0]["outcome"], "duplicate", "{second}");

    // The hooks run through cargo lambda watch too; the deployment must succeed.
    let env = std::fs::read_to_string(dir.join("lambda.env")).unwrap();
    let codedeploy = env
        .lines()
        .find_map(|l| l.strip_prefix("AWS_ENDPOINT_URL_CODEDEPLOY="))
        .unwrap()
        .to_string();
    let sdk = greenlight_tests::aws::sdk_config(&codedeploy).await;
    let client = aws_sdk_codedeploy::Client::new(&sdk);
    let id = first[0]["deployment_id"].as_str().unwrap().to_string();
    let mut status = String::new();
    for _ in 0..600 {
        status = client
            .get_deployment()
            .deployment_id(&id)
            .send()
            .await
            .unwrap()
            .deployment_info
            .and_then(|i| i.status)
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        if status == "Succeeded" || status == "Failed" || status == "Stopped" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = watch.kill().await;
    assert_eq!(status, "Succeeded", "deployment {id}");
}
