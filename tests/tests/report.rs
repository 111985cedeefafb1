//! `greenlight report` from a rehearsal report, rendered in headless Chromium: the
//! page is self-contained, its script runs, and it shows what happened; a scenario
//! that failed says so.

use std::process::Command;

use greenlight_tests::{binaries, chromium_dom, unique};
use serde_json::json;

#[test]
fn a_report_page_renders_in_chromium_and_shows_the_deployment() {
    let dir = std::env::temp_dir().join(unique("report"));
    std::fs::create_dir_all(&dir).unwrap();
    let rehearsal = dir.join("rehearsal.json");
    std::fs::write(
        &rehearsal,
        json!({"passed": false, "seconds": 9.0, "timeline": [], "scenarios": [
            {"number": 2, "path": "codedeploy", "name": "broken image", "passed": false, "seconds": 4.2,
             "checks": [{"what": "deployment failed and rolled back", "passed": false, "detail": "Succeeded <unexpected>"}],
             "figures": {"production_answers_sampled": 31.0},
             "timeline": [
                "[  1.000s] CodeDeploy d-1 lifecycle AfterAllowTestTraffic",
                "[  1.200s] CodeDeployHook_greenlight-AfterAllowTestTraffic returned : smoke failed",
                "[  1.300s] CodeDeploy StopDeployment d-1 (autoRollbackEnabled: true)",
                "[  1.400s] SNS hook_failed: [Greenlight] web: AfterAllowTestTraffic failed"],
             "traffic": [{"t": 0.0, "green_percent": 0}, {"t": 2.0, "green_percent": 10}, {"t": 4.0, "green_percent": 0}]},
            {"number": 9, "path": "ecs-native", "name": "not this one", "passed": true, "seconds": 1.0,
             "checks": [], "figures": {}, "timeline": [], "traffic": []}
        ]})
        .to_string(),
    )
    .unwrap();
    let page = dir.join("out/report.html");
    let output = Command::new(binaries().join("greenlight"))
        .args(["report", "--scenario", "2", "--rehearsal-json"])
        .arg(&rehearsal)
        .arg("--out")
        .arg(&page)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "self-contained"
    );
    let (dom, console) = chromium_dom(&page);
    assert!(dom.contains(r#"data-rendered="ok""#), "{console}");
    for expected in [
        "Scenario 2: broken image (codedeploy)",
        "FAILED",
        "Succeeded &lt;unexpected&gt;",
        "StopDeployment d-1",
        "SNS hook_failed",
        "<polyline",
    ] {
        assert!(
            dom.contains(expected),
            "the rendered page lacks {expected:?}"
        );
    }
    assert!(!dom.contains("not this one"), "--scenario picks one");

    // A scenario that is not there: exit 1 with a reason.
    let none = Command::new(binaries().join("greenlight"))
        .args(["report", "--scenario", "7", "--rehearsal-json"])
        .arg(&rehearsal)
        .arg("--out")
        .arg(dir.join("none.html"))
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no scenario matched"));
}
