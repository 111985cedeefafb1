//! The local rehearsal's four scenarios, as CI runs them: the real function binaries
//! (debug builds here; `scripts/run` uses release builds) under the local Lambda
//! Runtime API host, the moto emulator, the CodeDeploy stand-in and the local load
//! balancer. The same command a user runs: `greenlight rehearse --json`.

use std::process::Command;

use greenlight_tests::workspace_root;
use serde_json::Value;

#[test]
fn the_four_rehearsal_scenarios_pass_with_the_real_binaries() {
    let root = workspace_root();
    let bin_dir = greenlight_tests::binaries();
    let log_dir = root.join("target/rehearsal-test");
    let output = Command::new(bin_dir.join("greenlight"))
        .current_dir(&root)
        .args(["rehearse", "--json", "--bin-dir"])
        .arg(&bin_dir)
        .arg("--log-dir")
        .arg(&log_dir)
        .output()
        .expect("run greenlight rehearse");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("rehearsal printed no JSON report ({e}); its timeline:\n{stderr}")
    });
    let scenarios = report["scenarios"].as_array().expect("scenarios");
    assert_eq!(scenarios.len(), 4, "{report:#}");
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
        alarm_to_blue < 10.0,
        "traffic back on blue {alarm_to_blue} s after the alarm"
    );
    eprintln!(
        "rehearsal: {:.1} s in all; promote {:.2} s; alarm -> blue {:.3} s",
        report["seconds"].as_f64().unwrap_or_default(),
        scenarios[0]["figures"]["seconds_to_promote"]
            .as_f64()
            .unwrap_or_default(),
        alarm_to_blue
    );
}
