//! The local rehearsal's scenarios on both deployment paths, as CI runs them: the real
//! function binaries (debug builds here; `scripts/run` uses release builds) under the
//! local Lambda Runtime API host, the moto emulator, the CodeDeploy and ECS stand-ins
//! and the local load balancer. The same command a user runs: `greenlight rehearse --json`.

use std::process::Command;

use greenlight_tests::workspace_root;
use serde_json::Value;

#[test]
fn every_rehearsal_scenario_passes_on_both_paths_with_the_real_binaries() {
    let root = workspace_root();
    let bin_dir = greenlight_tests::binaries();
    let log_dir = root.join("target/rehearsal-test");
    let report_dir = root.join("target/rehearsal-test/reports");
    let _ = std::fs::remove_dir_all(&report_dir);
    let output = Command::new(bin_dir.join("greenlight"))
        .current_dir(&root)
        .args(["rehearse", "--json", "--bin-dir"])
        .arg(&bin_dir)
        .arg("--log-dir")
        .arg(&log_dir)
        .arg("--report")
        .arg(&report_dir)
        .output()
        .expect("run greenlight rehearse");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("rehearsal printed no JSON report ({e}); its timeline:\n{stderr}")
    });
    let scenarios = report["scenarios"].as_array().expect("scenarios");
    // Six scenarios on the CodeDeploy path (healthy, broken, alarm, burst, slow, and
    // staging to production); the same six plus a PAUSE approval on the ECS-native path.
    let on = |path: &str| {
        scenarios
            .iter()
            .filter(|s| s["path"] == path)
            .collect::<Vec<_>>()
    };
    assert_eq!(on("codedeploy").len(), 6, "{report:#}");
    assert_eq!(on("ecs-native").len(), 7, "{report:#}");
    for path in ["codedeploy", "ecs-native"] {
        assert!(
            on(path).iter().any(|s| s["number"] == 7),
            "{path}: scenario 7 (promotion) played"
        );
    }
    for scenario in scenarios {
        let failed: Vec<&Value> = scenario["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["passed"] != true)
            .collect();
        assert!(
            failed.is_empty(),
            "scenario {} failed: {failed:#?}\ntimeline:\n{stderr}",
            scenario["name"]
        );
    }
    assert!(output.status.success(), "exit status {:?}", output.status);
    for path in ["codedeploy", "ecs-native"] {
        let scenarios = on(path);
        assert!(
            scenarios[0]["figures"]["seconds_to_promote"]
                .as_f64()
                .unwrap()
                > 0.0
        );
        let alarm_to_blue = scenarios[2]["figures"]["seconds_alarm_to_blue"]
            .as_f64()
            .unwrap();
        assert!(
            alarm_to_blue < 5.0,
            "{path}: traffic back on blue {alarm_to_blue} s after the alarm"
        );
        // The slow image: served production for at most window + 2 intervals.
        let slow = scenarios
            .iter()
            .find(|s| s["number"] == 6)
            .expect("scenario 6");
        let exposed = slow["figures"]["seconds_slow_image_served_production"]
            .as_f64()
            .expect("exposure measured");
        eprintln!(
            "rehearsal ({path}): promote {:.2} s; alarm -> blue {:.3} s; slow image in production {exposed:.2} s",
            scenarios[0]["figures"]["seconds_to_promote"]
                .as_f64()
                .unwrap_or_default(),
            alarm_to_blue
        );
    }
    // One report page per scenario; the slow image's, rendered in headless Chromium,
    // shows its verdict, the traffic chart, the analysis and the notifications.
    for path in ["codedeploy", "ecs-native"] {
        let page = report_dir.join(format!("report-{path}-6.html"));
        let (dom, console) = greenlight_tests::chromium_dom(&page);
        assert!(
            dom.contains(r#"data-rendered="ok""#),
            "the page's script did not finish:\n{console}"
        );
        assert!(!console.contains("Uncaught"), "a script error:\n{console}");
        for expected in [
            "Scenario 6: slow under production, no alarm",
            "scenario passed",
            "<polyline",
            "analysis_failed",
            "latency_p50",
        ] {
            assert!(
                dom.contains(expected),
                "{path}: the rendered page lacks {expected:?}"
            );
        }
    }
    assert_eq!(
        std::fs::read_dir(&report_dir).unwrap().count(),
        13,
        "one page per scenario"
    );
    // The broken image's page says why, in green's own words: its fatal line and exit 1.
    for path in ["codedeploy", "ecs-native"] {
        let page =
            std::fs::read_to_string(report_dir.join(format!("report-{path}-2.html"))).unwrap();
        let why = &page[page.find(r#"<div class="why">"#).expect("a why section")..];
        assert!(
            why.contains("FATAL: DATABASE_URL is not set"),
            "{path}: {why}"
        );
        assert!(why.contains(r#"<td class="exit">1</td>"#), "{path}: {why}");
    }
    // Every page reads as words: no Rust debug output anywhere on it.
    for page in std::fs::read_dir(&report_dir).unwrap().flatten() {
        let html = std::fs::read_to_string(page.path()).unwrap();
        for debug in ["Ok(", "Err(", "Some(", "Array [", "Object {", "String("] {
            assert!(
                !html.contains(debug),
                "{}: debug output {debug:?}",
                page.path().display()
            );
        }
    }
    // The access key planted in the broken image's log leaves nowhere: not the pages,
    // not the functions' logs, not the report or the timeline.
    let planted = "AKIAIOSFODNN7EXAMPLE";
    assert!(!String::from_utf8_lossy(&output.stdout).contains(planted));
    assert!(!stderr.contains(planted));
    let mut files = vec![log_dir.clone()];
    let mut read = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(
                std::fs::read_dir(&path)
                    .unwrap()
                    .flatten()
                    .map(|e| e.path()),
            );
        } else if let Ok(text) = std::fs::read(&path) {
            read += 1;
            assert!(
                !String::from_utf8_lossy(&text).contains(planted),
                "the planted key leaked into {}",
                path.display()
            );
        }
    }
    assert!(
        read > 13,
        "the pages and the functions' logs were read ({read} files)"
    );
    eprintln!(
        "rehearsal: {:.1} s in all",
        report["seconds"].as_f64().unwrap_or_default()
    );
}

/// A scenario played alone sets up what it needs: the broken image is judged against
/// what production served before it (v1.0.0 here, v1.1.0 after scenario 1), so
/// `--scenario 2` no longer depends on scenario 1 having run.
#[test]
fn a_scenario_played_alone_checks_against_what_production_served_before_it() {
    let root = workspace_root();
    let bin_dir = greenlight_tests::binaries();
    let output = Command::new(bin_dir.join("greenlight"))
        .current_dir(&root)
        .args([
            "rehearse",
            "--json",
            "--scenario",
            "2",
            "--path",
            "codedeploy",
        ])
        .arg("--bin-dir")
        .arg(&bin_dir)
        .arg("--log-dir")
        .arg(root.join("target/rehearsal-test-alone"))
        .output()
        .expect("run greenlight rehearse --scenario 2");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("rehearsal printed no JSON report ({e}); its timeline:\n{stderr}")
    });
    let scenarios = report["scenarios"].as_array().expect("scenarios");
    assert_eq!(scenarios.len(), 1, "only scenario 2 was played");
    assert_eq!(scenarios[0]["number"], 2);
    let kept = scenarios[0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["what"]
                .as_str()
                .unwrap_or_default()
                .starts_with("production still serves")
        })
        .expect("the production check");
    assert_eq!(
        kept["what"], "production still serves v1.0.0",
        "the baseline when nothing was deployed before"
    );
    assert_eq!(kept["passed"], true, "{kept}\ntimeline:\n{stderr}");
    assert!(output.status.success(), "timeline:\n{stderr}");
}
