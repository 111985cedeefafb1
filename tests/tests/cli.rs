//! The `greenlight` command as a user runs it.

use std::process::Command;

use greenlight_tests::http::{Reply, TestServer};
use greenlight_tests::{binaries, unique};

fn write(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("{}-{name}", unique("cli")));
    std::fs::write(&path, text).unwrap();
    path
}

const GOOD: &str = r#"
services:
  - name: web
    repository: web-app
    cluster: prod
    service: web
    container: web
    codedeploy: { application: web-app, deployment_group: web-dg }
    smoke:
      checks:
        - { name: health, path: /health, expect_status: 200, body_contains: ok }
        - { name: version, path: /version, json_equals: { /version: "${image_tag}" } }
"#;

#[test]
fn config_check_accepts_a_valid_document() {
    let output = Command::new(binaries().join("greenlight"))
        .args(["config", "check"])
        .arg(write("good.yaml", GOOD))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("OK (1 service(s))")
            && stdout.contains(
                "web: web-app -> prod/web via CodeDeploy web-app/web-dg, 2 smoke check(s)"
            ),
        "{stdout}"
    );
}

#[test]
fn config_check_prints_every_problem_with_its_key_path_and_exits_1() {
    let bad = "services:\n  - { name: web, repository: web-app, cluster: prod, service: web, container: web,\n      codedeploy: { application: web-app }, tags: [\"v[\"] }\n";
    let output = Command::new(binaries().join("greenlight"))
        .args(["config", "check"])
        .arg(write("bad.yaml", bad))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("2 problem(s)"), "{stderr}");
    assert!(
        stderr.contains("services[0].codedeploy.deployment_group: missing"),
        "{stderr}"
    );
    assert!(
        stderr.contains("services[0].tags[0]: bad glob pattern"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_runs_the_checks_against_any_url_with_table_or_json() {
    let server = TestServer::start(|r| match r.path.as_str() {
        "/health" => Reply::new(200, "ok"),
        "/version" => Reply::new(200, r#"{"version":"v2"}"#),
        _ => Reply::new(404, ""),
    })
    .await;
    let config = write("smoke.yaml", GOOD);
    let run = |tag: &'static str, json: bool| {
        let (config, url) = (config.clone(), server.url());
        tokio::task::spawn_blocking(move || {
            let mut command = Command::new(binaries().join("greenlight"));
            command
                .args([
                    "smoke",
                    "--service",
                    "web",
                    "--image-tag",
                    tag,
                    "--url",
                    &url,
                    "--config",
                ])
                .arg(&config);
            if json {
                command.arg("--json");
            }
            command.output().unwrap()
        })
    };
    let pass = run("v2", false).await.unwrap();
    let table = String::from_utf8_lossy(&pass.stdout);
    assert!(pass.status.success(), "{table}");
    assert!(table.contains("2 of 2 check(s) passed"), "{table}");
    let fail = run("v3", true).await.unwrap();
    assert_eq!(fail.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&fail.stdout).unwrap();
    assert_eq!(report["passed"], false);
    assert_eq!(
        report["checks"][1]["attempts"][0]["mismatches"][0]["got"],
        "\"v2\""
    );
}
