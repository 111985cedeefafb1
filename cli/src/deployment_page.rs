//! The deployment page (`greenlight report`): one self-contained HTML page (styles,
//! chart and the one small script inline, nothing fetched) with a section per
//! deployment or rehearsal scenario. Each section opens with a summary (service,
//! from → to image, path, trigger, outcome, duration) and, for a failure, why; then
//! the timeline chart over the deployment's real span, the stages in the engine's
//! own words, the hook answers, the checks, the alarms and stops, the notifications,
//! and the whole timeline folded away. Built with maud: every value is escaped and
//! the markup is checked at compile time.

use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde_json::Value;

use crate::timeline_chart::{bands, chart, Band, End};

const STYLE: &str = r#"
*, *::before, *::after { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, sans-serif; margin: 1.5em auto; max-width: 1000px; padding: 0 14px; color: #1b1f24; }
h1 { font-size: 1.5em; margin: 0 0 .5em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #d0d7de; padding-bottom: .3em; margin-top: 2em; overflow-wrap: anywhere; }
h3 { font-size: 1.05em; margin: 1.2em 0 .4em; }
.badge { display: inline-block; padding: .05em .6em; border-radius: 1em; color: white; font-size: .8em; font-weight: 600; vertical-align: middle; }
.pass { background: #1a7f37; } .fail { background: #cf222e; }
dl.summary { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1em; margin: .8em 0; }
dl.summary dt { color: #57606a; } dl.summary dd { margin: 0; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; margin: .3em 0 .8em; }
td, th { border: 1px solid #d0d7de; padding: .3em .5em; text-align: left; vertical-align: top; overflow-wrap: anywhere; }
th { background: #f6f8fa; font-weight: 600; white-space: nowrap; }
td.ok, td.bad { white-space: nowrap; }
td.t { white-space: nowrap; color: #57606a; font-variant-numeric: tabular-nums; }
pre { background: #f6f8fa; padding: .8em; font-size: 12px; white-space: pre-wrap; overflow-wrap: anywhere; }
.ok { color: #1a7f37; font-weight: 600; } .bad { color: #cf222e; font-weight: 600; }
.why { border-left: 4px solid #cf222e; padding: .2em 1em; background: #fff8f7; margin: 1em 0; }
.why .said { margin: .3em 0; } .why .line.error { color: #cf222e; font-weight: 600; }
div.chart { overflow-x: auto; }
svg.timeline { width: 100%; min-width: 560px; height: auto; display: block; }
svg.timeline text { font-size: 11px; fill: #57606a; }
svg.timeline .band.even { fill: #ddf4ff; } svg.timeline .band.odd { fill: #fff8c5; }
svg.timeline .axis { stroke: #8c959f; } svg.timeline .traffic { fill: none; stroke: #1a7f37; stroke-width: 2; }
p.none { color: #57606a; }
details > summary { cursor: pointer; color: #0969da; }
@media (max-width: 600px) { body { font-size: 14px; } dl.summary { grid-template-columns: 1fr; } dl.summary dd { margin-bottom: .4em; } }
"#;

/// Marks the page rendered once every section has its chart, and whether it fits
/// the window's width (the browser tests read both).
const SCRIPT: &str = r#"
const sections = document.querySelectorAll("section.deployment");
const charts = document.querySelectorAll("section.deployment svg.timeline");
document.body.dataset.rendered = sections.length > 0 && charts.length === sections.length ? "ok" : "incomplete";
document.body.dataset.fits = document.documentElement.scrollWidth <= window.innerWidth + 1 ? "yes" : "no";
"#;

/// The whole page.
pub fn page(sections: &[Value]) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Greenlight deployment report" }
                style { (PreEscaped(STYLE)) }
            }
            body data-rendered="no" {
                h1 { "Greenlight deployment report" }
                @for s in sections { (section(s)) }
                script { (PreEscaped(SCRIPT)) }
            }
        }
    }
    .into_string()
}

/// A timeline line (`[  6.606s] text`): its seconds (when it has them) and its text.
fn split(line: &str) -> (Option<f64>, &str) {
    let timed = line
        .strip_prefix('[')
        .and_then(|rest| rest.split_once("s] "))
        .and_then(|(t, text)| Some((t.trim().parse::<f64>().ok()?, text)));
    match timed {
        Some((t, text)) => (Some(t), text),
        None => (None, line),
    }
}

fn section(s: &Value) -> Markup {
    let raw: Vec<&str> = s["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let lines: Vec<(Option<f64>, &str)> = raw.iter().map(|l| split(l)).collect();
    // Seconds from the section's start.
    let origin = s["started_at"]
        .as_f64()
        .or_else(|| lines.iter().find_map(|(t, _)| *t))
        .unwrap_or(0.0);
    let timed: Vec<(f64, &str)> = lines
        .iter()
        .filter_map(|(t, text)| t.map(|t| (t - origin, *text)))
        .collect();
    let traffic: Vec<(f64, f64)> = s["traffic"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["t"].as_f64()?, p["green_percent"].as_f64()?)))
        .collect();
    let seconds = s["seconds"].as_f64().unwrap_or(0.0);
    let last_line = timed.iter().map(|(t, _)| *t).fold(0.0, f64::max);
    let last_sample = traffic.iter().map(|(t, _)| *t).fold(0.0, f64::max);
    let span = seconds.max(last_line).max(last_sample);
    let (bands, end) = bands(&timed, span);
    let passed = s["passed"].as_bool().unwrap_or(false);
    let title = match s["number"].as_u64() {
        Some(n) => format!("Scenario {n}: {}", s["name"].as_str().unwrap_or_default()),
        None => s["name"].as_str().unwrap_or_default().to_string(),
    };
    let matching = |needles: &[&str]| -> Vec<(Option<f64>, &str)> {
        lines
            .iter()
            .filter(|(_, text)| needles.iter().any(|n| text.contains(n)))
            .map(|(t, text)| (t.map(|t| t - origin), *text))
            .collect()
    };
    // The hooks' own answers, not the engine's lines that quote them.
    let hook_answers: Vec<(Option<f64>, &str)> =
        matching(&[" returned ", "PutLifecycleEventHookExecutionStatus"])
            .into_iter()
            .filter(|(_, text)| !text.starts_with("ECS ") || !text.contains(" rolling back"))
            .collect();
    html! {
        section class="deployment" data-path=(s["path"].as_str().unwrap_or_default()) {
            h2 {
                (title) " "
                span class=(if passed { "badge pass" } else { "badge fail" }) {
                    @if s["number"].is_u64() { (if passed { "scenario passed" } else { "scenario FAILED" }) }
                    @else { (if passed { "SUCCEEDED" } else { "NOT SUCCEEDED" }) }
                }
            }
            (summary(s, &lines, &bands, end.as_ref(), seconds))
            (crate::why::section(&s["evidence"]))
            h3 { "Timeline" }
            div class="chart" { (chart(&bands, &traffic, span)) }
            div class="stages" {
                h3 { "Lifecycle events and stages" }
                @if bands.is_empty() { p class="none" { "None recorded." } }
                @else {
                    div class="scroll" { table {
                        tr { th { "stage" } th { "began" } th { "lasted" } }
                        @for band in &bands {
                            tr { td { (band.name) } td class="t" { (format!("{:.2} s", band.from)) } td class="t" { (format!("{:.2} s", band.to - band.from)) } }
                        }
                        @if let Some(end) = &end {
                            tr { td { strong { (end.status) } } td class="t" { (format!("{:.2} s", end.at)) } td { } }
                        }
                    } }
                }
            }
            (listed("hooks", "Hook answers", &hook_answers))
            div class="checks" {
                h3 { "Checks" }
                @let checks = s["checks"].as_array().cloned().unwrap_or_default();
                @if checks.is_empty() { p class="none" { "None." } }
                @else {
                    div class="scroll" { table {
                        tr { th { "result" } th { "what" } th { "detail" } }
                        @for c in &checks {
                            @let ok = c["passed"].as_bool().unwrap_or(false);
                            tr {
                                td class=(if ok { "ok" } else { "bad" }) { (if ok { "pass" } else { "FAIL" }) }
                                td { (c["what"].as_str().unwrap_or_default()) }
                                td { (c["detail"].as_str().unwrap_or_default()) }
                            }
                        }
                    } }
                }
            }
            @if let Some(figures) = s["figures"].as_object().filter(|f| !f.is_empty()) {
                div class="figures" {
                    h3 { "Figures" }
                    div class="scroll" { table {
                        @for (k, v) in figures {
                            tr { td { (k.replace('_', " ")) } td class="t" { (v.as_f64().map_or(v.to_string(), |f| format!("{f:.2}"))) } }
                        }
                    } }
                }
            }
            (listed("analysis", "Analysis", &matching(&["analysis", "latency_", "error_rate"])))
            (listed("stops", "Alarms, stops and rollbacks", &matching(&["ALARM", "StopDeployment", "StopServiceDeployment", "rolling back", "ROLLBACK"])))
            (listed("notifications", "Notifications sent", &matching(&["SNS "])))
            details class="log" {
                summary { "Full timeline (" (raw.len()) " lines)" }
                pre { (raw.join("\n")) }
            }
        }
    }
}

/// The summary: what was deployed where, how it ended, how long it took.
fn summary(
    s: &Value,
    lines: &[(Option<f64>, &str)],
    bands: &[Band],
    end: Option<&End>,
    seconds: f64,
) -> Markup {
    let texts: Vec<&str> = lines.iter().map(|(_, t)| *t).collect();
    let given = |key: &str| s["summary"][key].as_str().map(str::to_string);
    let service = given("service").or_else(|| {
        texts.iter().find_map(|t| {
            let rest = t.strip_prefix("SNS deployment_started: [Greenlight] ")?;
            Some(rest.split_once(':')?.0.to_string())
        })
    });
    let pushed: Vec<&str> = texts
        .iter()
        .filter_map(|t| {
            let rest = t.strip_prefix("ECR push ")?;
            let image = rest.split_whitespace().next()?;
            image.rsplit_once(':').map(|(_, tag)| tag)
        })
        .collect();
    let from = given("from").or_else(|| {
        texts.iter().find_map(|t| {
            let rest = t.split_once("(production serves ")?.1;
            Some(rest.split_once(')')?.0.to_string())
        })
    });
    let to = given("to").unwrap_or_else(|| {
        if pushed.is_empty() {
            "-".to_string()
        } else {
            pushed.join(", then ")
        }
    });
    let trigger = given("trigger").unwrap_or_else(|| {
        let promoted = texts.iter().any(|t| t.contains("Promotion Due"));
        match (pushed.is_empty(), promoted) {
            (false, true) => "push, then promotion".into(),
            (false, false) => "push".into(),
            (true, true) => "promotion".into(),
            (true, false) => "-".into(),
        }
    });
    let outcome = given("outcome")
        .or_else(|| {
            texts.iter().rev().find_map(|t| {
                let rest = t.strip_prefix("SNS deployment_finished: [Greenlight] ")?;
                let said = rest.split_once(": ")?.1;
                Some(if said.ends_with("succeeded") {
                    "succeeded: production serves the new version".to_string()
                } else if said.ends_with("failed") {
                    "failed: rolled back, production serves the previous version".to_string()
                } else {
                    "stopped: rolled back, production serves the previous version".to_string()
                })
            })
        })
        .or_else(|| s["status"].as_str().map(str::to_string))
        .or_else(|| end.map(|e| e.status.clone()))
        .unwrap_or_else(|| "no deployment ended".into());
    let duration = match (bands.first(), end) {
        (Some(first), Some(end)) => format!(
            "{:.2} s (the deployment), {seconds:.1} s in all",
            end.at - first.from
        ),
        _ => format!("{seconds:.1} s"),
    };
    let path = match s["path"].as_str() {
        Some("codedeploy") => "CodeDeploy blue/green",
        Some("ecs-native") => "ECS-native blue/green",
        Some(other) => other,
        None => "-",
    };
    html! {
        dl class="summary" {
            dt { "Service" } dd { (service.unwrap_or_else(|| "-".into())) }
            dt { "Image" } dd { (from.unwrap_or_else(|| "?".into())) " → " (to) }
            dt { "Path" } dd { (path) }
            dt { "Trigger" } dd { (trigger) }
            dt { "Outcome" } dd class="outcome" { (outcome) }
            dt { "Duration" } dd { (duration) }
        }
    }
}

/// A group of timeline lines, each with its time.
fn listed(class: &str, heading: &str, lines: &[(Option<f64>, &str)]) -> Markup {
    html! {
        div class=(class) {
            h3 { (heading) }
            @if lines.is_empty() { p class="none" { "None." } }
            @else {
                div class="scroll" { table {
                    @for (t, text) in lines {
                        tr { td class="t" { (t.map_or("-".to_string(), |t| format!("{t:.2} s"))) } td { (text) } }
                    }
                } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The inner HTML of the first `<div class="{class}">` (sections here never nest divs).
    fn inside<'a>(html: &'a str, class: &str) -> &'a str {
        let open = format!("<div class=\"{class}\">");
        let start = html
            .find(&open)
            .unwrap_or_else(|| panic!("no {class} in {html}"))
            + open.len();
        let mut depth = 1;
        let mut at = start;
        while depth > 0 {
            let next_open = html[at..].find("<div").map(|i| i + at);
            let next_close = html[at..].find("</div>").map(|i| i + at).unwrap();
            match next_open {
                Some(o) if o < next_close => {
                    depth += 1;
                    at = o + 4;
                }
                _ => {
                    depth -= 1;
                    at = next_close + 6;
                }
            }
        }
        &html[start..at - 6]
    }

    fn scenario() -> Value {
        json!({
            "number": 2, "name": "broken <image>", "path": "ecs-native", "passed": true, "seconds": 4.0,
            "started_at": 10.0,
            "checks": [{"what": "rolled back", "passed": true, "detail": "a & b"}],
            "figures": {"production_answers_sampled": 31.0},
            "timeline": [
                "[ 10.000s] scenario 2: push a broken image",
                "[ 10.100s] ECR push web-app:v1.2.0-broken (b78f53cf5f09) -> EventBridge -> deploy-on-push (production serves v1.1.0)",
                "[ 10.200s] ECS arn:aws:ecs:us-east-1:1:service-deployment/prod/web/sd1 stage POST_TEST_TRAFFIC_SHIFT",
                "[ 10.300s] SNS deployment_started: [Greenlight] web: Deploying web-app:v1.2.0-broken",
                "[ 10.400s] greenlight-hook-ecs returned FAILED: 2 of 2 smoke check(s) failed",
                "[ 10.400s] ECS arn:aws:ecs:us-east-1:1:service-deployment/prod/web/sd1 rolling back: the hook returned FAILED",
                "[ 10.700s] ECS arn:aws:ecs:us-east-1:1:service-deployment/prod/web/sd1 ROLLBACK_SUCCESSFUL",
                "[ 10.800s] SNS deployment_finished: [Greenlight] web: Deployment of v1.2.0-broken failed"
            ],
            "traffic": [{"t": 0.0, "green_percent": 0}, {"t": 3.9, "green_percent": 0}]
        })
    }

    #[test]
    fn the_summary_says_what_went_where_and_how_it_ended() {
        let html = page(&[scenario()]);
        let summary =
            &html[html.find("<dl class=\"summary\">").unwrap()..html.find("</dl>").unwrap()];
        for expected in [
            "<dd>web</dd>",
            "<dd>v1.1.0 → v1.2.0-broken</dd>",
            "<dd>ECS-native blue/green</dd>",
            "<dd>push</dd>",
            "failed: rolled back, production serves the previous version",
            "0.50 s (the deployment)",
        ] {
            assert!(summary.contains(expected), "{expected:?} not in {summary}");
        }
    }

    #[test]
    fn each_group_holds_its_own_lines_in_the_engines_words() {
        let html = page(&[scenario()]);
        let hooks = inside(&html, "hooks");
        assert!(hooks.contains("returned FAILED: 2 of 2"), "{hooks}");
        assert!(!hooks.contains("SNS "), "{hooks}");
        let stages = inside(&html, "stages");
        assert!(
            stages.contains("<td>POST_TEST_TRAFFIC_SHIFT</td>"),
            "{stages}"
        );
        assert!(stages.contains("<td>ROLLBACK</td>"), "{stages}");
        assert!(!stages.contains("AfterAllowTestTraffic"));
        let notifications = inside(&html, "notifications");
        assert!(
            notifications.contains("deployment_finished"),
            "{notifications}"
        );
        let checks = inside(&html, "checks");
        assert!(checks.contains("<td>a &amp; b</td>"), "{checks}");
        assert!(html.contains("Scenario 2: broken &lt;image&gt;"));
    }

    #[test]
    fn the_chart_spans_the_scenario_and_plots_its_samples() {
        let html = page(&[scenario()]);
        let svg = &html[html.find("<svg").unwrap()..html.find("</svg>").unwrap()];
        assert!(svg.contains(r#"data-points="2""#), "{svg}");
        assert!(svg.contains(">4.0 s<"), "{svg}");
        assert!(
            svg.contains(r#"data-stage="POST_TEST_TRAFFIC_SHIFT""#),
            "{svg}"
        );
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no network fetches"
        );
    }
}
