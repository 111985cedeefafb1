//! `greenlight report` from a rehearsal report, rendered in headless Chromium: the
//! page is self-contained, its script runs, and it shows what happened; a scenario
//! that failed says so.

use std::process::Command;

use greenlight_tests::{binaries, chromium_dom, unique};
use serde_json::json;

/// What follows `open` up to the element's end (`</div>` or `</svg>`), nesting aside:
/// the groups hold tables, not divs.
fn inside<'a>(dom: &'a str, open: &str) -> &'a str {
    let start = dom
        .find(open)
        .unwrap_or_else(|| panic!("no {open} on the page"));
    let close = if open.starts_with("<svg") {
        "</svg>"
    } else {
        "</table></div></div>"
    };
    let end = dom[start..]
        .find(close)
        .or_else(|| dom[start..].find("</p></div>"))
        .map_or(dom.len(), |e| start + e);
    &dom[start..end]
}

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
                "[  1.200s] CodeDeployHook_greenlight-AfterAllowTestTraffic returned Failed: smoke failed",
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
    assert!(dom.contains("Scenario 2: broken image"));
    assert!(dom.contains(r#"<span class="badge fail">scenario FAILED</span>"#));
    // Each group is checked inside its own element, not anywhere on the page (the
    // folded full timeline holds every line too).
    let stops = inside(&dom, r#"<div class="stops">"#);
    assert!(stops.contains("StopDeployment d-1"), "{stops}");
    assert!(!stops.contains("SNS "), "{stops}");
    let notifications = inside(&dom, r#"<div class="notifications">"#);
    assert!(notifications.contains("SNS hook_failed"), "{notifications}");
    let hooks = inside(&dom, r#"<div class="hooks">"#);
    assert!(hooks.contains("returned Failed: smoke failed"), "{hooks}");
    let checks = inside(&dom, r#"<div class="checks">"#);
    assert!(checks.contains("Succeeded &lt;unexpected&gt;"), "{checks}");
    let stages = inside(&dom, r#"<div class="stages">"#);
    assert!(
        stages.contains("<td>AfterAllowTestTraffic</td>"),
        "{stages}"
    );
    // Every sample plotted, over the scenario's whole span.
    let svg = inside(&dom, "<svg");
    assert!(svg.contains(r#"data-points="3""#), "{svg}");
    assert!(svg.contains(">4.2 s<"), "{svg}");
    for debug in ["Ok(", "Some(", "Array [", "Object {", "String("] {
        assert!(
            !dom.contains(debug),
            "debug formatting {debug:?} on the page"
        );
    }
    // A person on a phone: nothing wider than the window.
    for (width, height) in [(1280, 900), (390, 844)] {
        let (dom, console) = greenlight_tests::chromium_dom_at(&page, width, height);
        assert!(
            dom.contains(r#"data-fits="yes""#),
            "{width} px wide: {console}"
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

/// The fleet page from a ledger in the emulator, rendered in headless Chromium: each
/// service's section holds its own deployments, keys and bars (asserted inside that
/// section, on the plotted counts), a service with nothing recorded says so and draws
/// no bar, and the promotion chain is shown.
#[tokio::test]
async fn the_fleet_page_shows_each_service_from_the_ledger() {
    use greenlight::ledger::{write_for, Ledger};
    use greenlight::notify::{Notification, NotificationEvent, Severity};
    let sdk = greenlight_tests::aws::sdk_config(&greenlight_tests::moto().endpoint).await;
    let table = unique("ledger");
    greenlight_cli::ledger_table::create(&sdk, &table)
        .await
        .unwrap();
    let ledger = Ledger::new(&sdk, &table);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let day = 86_400_000;
    // (service, id, tag, days ago, final state, forced reason)
    let attempts = [
        ("web-staging", "d-s1", "v1", 3, "SUCCESS", None),
        ("web-staging", "d-s2", "v2<b>", 2, "FAILURE", None),
        ("web-staging", "d-s3", "v3", 1, "SUCCESS", None),
        ("web-prod", "d-p1", "v1", 2, "SUCCESS", None),
        ("web-prod", "d-p2", "v3", 0, "SUCCESS", Some("hotfix <now>")),
    ];
    for (service, id, tag, ago, state, forced) in attempts {
        let at = now - ago * day - 60_000;
        let mut start = Notification::new(
            NotificationEvent::DeploymentStarted,
            Severity::Info,
            service,
            "s",
        )
        .deployment(id, None)
        .fact("image_tag", tag)
        .fact("image_digest", format!("sha256:{:0>64}", tag.len()))
        .fact("pushed_at", at - 30_000);
        if let Some(reason) = forced {
            start = start
                .fact("forced_by", "ana")
                .fact("forced_reason", reason)
                .fact("trigger", "promotion");
        }
        ledger.apply(&write_for(&start, at).unwrap()).await.unwrap();
        if state == "FAILURE" {
            let hook =
                Notification::new(NotificationEvent::HookFailed, Severity::Error, service, "h")
                    .deployment(id, None)
                    .description("health: expected 200, got 503")
                    .fact("lifecycle_event", "AfterAllowTestTraffic")
                    .fact("status", "Failed");
            ledger
                .apply(&write_for(&hook, at + 10_000).unwrap())
                .await
                .unwrap();
        }
        let finish = Notification::new(
            NotificationEvent::DeploymentFinished,
            Severity::Info,
            service,
            "f",
        )
        .deployment(id, None)
        .fact("state", state);
        ledger
            .apply(&write_for(&finish, at + 20_000).unwrap())
            .await
            .unwrap();
    }
    let dir = std::env::temp_dir().join(unique("fleet"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("greenlight.yaml");
    std::fs::write(
        &config,
        "services:\n  - { name: web-staging, repository: web-app, cluster: s, service: web, container: web, ecs_native: {} }\n  - { name: web-prod, repository: web-app, cluster: p, service: web, container: web, ecs_native: {}, promote: { from: web-staging, soak_minutes: 30 } }\n  - { name: api, repository: api, cluster: p, service: api, container: api, ecs_native: {} }\n",
    )
    .unwrap();
    let page = dir.join("fleet.html");
    let run = greenlight_tests::greenlight(
        &[
            "report",
            "--fleet",
            "--days",
            "7",
            "--table",
            &table,
            "--config",
            config.to_str().unwrap(),
            "--out",
            page.to_str().unwrap(),
        ],
        &[(
            "AWS_ENDPOINT_URL",
            greenlight_tests::moto().endpoint.as_str(),
        )],
    )
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "self-contained"
    );
    let (dom, _console) = chromium_dom(&page);
    let section = |name: &str| -> String {
        let start = dom
            .find(&format!(r#"data-service="{name}""#))
            .unwrap_or_else(|| panic!("no section for {name}"));
        let end = dom[start..].find("</section>").unwrap() + start;
        dom[start..end].to_string()
    };
    let counts = |s: &str, class: &str| -> Vec<u32> {
        s.split(&format!(r#"<rect class="{class}""#))
            .skip(1)
            .map(|r| {
                let at = r.find("data-count=\"").unwrap() + 12;
                r[at..].split('"').next().unwrap().parse().unwrap()
            })
            .collect()
    };

    let staging = section("web-staging");
    assert_eq!(staging.matches("<tr class=").count(), 3, "{staging}");
    assert!(staging.contains("v2&lt;b&gt;"), "escaped: {staging}");
    assert!(staging.contains("AfterAllowTestTraffic failed: health: expected 200, got 503"));
    assert_eq!(counts(&staging, "ok"), [1, 1], "{staging}");
    assert_eq!(counts(&staging, "bad"), [1]);
    assert!(
        staging.contains(r#"data-key="failure-rate">33%"#),
        "{staging}"
    );
    assert!(staging.contains("Runs: <strong>v3</strong>"), "{staging}");

    let prod = section("web-prod");
    assert_eq!(prod.matches("<tr class=").count(), 2);
    assert!(prod.contains("promoted from web-staging after 30 min"));
    assert!(prod.contains("forced by ana: hotfix &lt;now&gt;"), "{prod}");
    assert_eq!(counts(&prod, "ok"), [1, 1]);
    assert!(counts(&prod, "bad").is_empty());

    let api = section("api");
    assert!(api.contains("No deployment recorded."));
    assert!(api.contains("No deployment ended in these 7 days."));
    assert!(!api.contains("<rect"), "no bar without data: {api}");

    assert!(
        dom.contains("web-staging → web-prod"),
        "the promotion chain"
    );
    let fleet = &dom[dom.find(r#"id="fleet""#).unwrap()..dom.find(r#"id="environments""#).unwrap()];
    assert!(fleet.contains(r#"data-key="failure-rate">20%"#), "{fleet}");
    assert_eq!(counts(fleet, "ok").iter().sum::<u32>(), 4);
}
