//! `greenlight report`: one self-contained HTML page (no network fetches: styles, the
//! chart and the one small script are inline) per deployment: its timeline (lifecycle
//! events or stages), hook answers with check details, production traffic on green
//! over time as an SVG chart, analysis verdicts, alarms, stops and rollbacks, and the
//! notifications sent. From a rehearsal (`--rehearsal-json`, or `greenlight rehearse
//! --report DIR`) or from a live deployment (`--deployment ID`, read through the SDK).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{json, Value};

#[derive(Debug, clap::Args)]
pub struct Options {
    /// A deployment to report on: a CodeDeploy id (`d-…`) or an ECS service deployment ARN.
    #[arg(
        long,
        conflicts_with_all = ["rehearsal_json", "fleet"],
        required_unless_present_any = ["rehearsal_json", "fleet"]
    )]
    pub deployment: Option<String>,
    /// Instead: the fleet page, every configured service from the release ledger.
    #[arg(long, conflicts_with = "rehearsal_json")]
    pub fleet: bool,
    /// The fleet page's window, in days.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// The ledger (fleet page).
    #[command(flatten)]
    pub table: crate::ledger::Table,
    #[command(flatten)]
    pub source: crate::operate::Source,
    /// A rehearsal report (`greenlight rehearse --json > FILE`).
    #[arg(long)]
    pub rehearsal_json: Option<PathBuf>,
    /// Only this scenario of the rehearsal (default: all, one section each).
    #[arg(long)]
    pub scenario: Option<u8>,
    /// Where to write the page.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(options: Options) -> ExitCode {
    if options.fleet {
        return fleet(&options);
    }
    let sections = match (&options.deployment, &options.rehearsal_json) {
        (_, Some(file)) => std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))
            .and_then(|text| {
                serde_json::from_str::<Value>(&text)
                    .map_err(|e| format!("{} is not a rehearsal report: {e}", file.display()))
            })
            .map(|report| {
                report["scenarios"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|s| options.scenario.is_none_or(|n| s["number"] == n))
                    .collect::<Vec<_>>()
            }),
        (Some(id), None) => match crate::runtime() {
            Some(runtime) => runtime.block_on(live(id)).map(|s| vec![s]),
            None => Err("no async runtime".into()),
        },
        (None, None) => Err("give --deployment or --rehearsal-json".into()),
    };
    let sections = match sections {
        Ok(s) if !s.is_empty() => s,
        Ok(_) => {
            eprintln!("nothing to report: no scenario matched");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("greenlight report: {e}");
            return ExitCode::FAILURE;
        }
    };
    said(&options.out, write(&options.out, &sections))
}

/// The page's path on stdout, or why it was not written on stderr.
fn said(out: &Path, written: Result<(), String>) -> ExitCode {
    match written {
        Ok(()) => {
            println!("{}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("greenlight report: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The fleet page, written to `--out`.
fn fleet(options: &Options) -> ExitCode {
    // The fleet page reads the release ledger.
    let table = match options.table.name() {
        Ok(table) => table,
        Err(e) => {
            eprintln!("greenlight report: {e}");
            return ExitCode::from(3);
        }
    };
    let Some(runtime) = crate::runtime() else {
        return ExitCode::FAILURE;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    let page = runtime.block_on(async {
        let sdk = greenlight::aws::load_sdk_config()
            .await
            .map_err(|e| e.to_string())?;
        let config = options.source.load(&sdk).await?;
        let ledger = greenlight::ledger::Ledger::new(&sdk, &table);
        crate::fleet::page_from_ledger(&config, &ledger, options.days, now).await
    });
    said(
        &options.out,
        page.and_then(|page| write_page(&options.out, &page)),
    )
}

pub fn write(out: &Path, sections: &[Value]) -> Result<(), String> {
    write_page(out, &page(sections))
}

/// Writes `html` to `out`, creating its folder.
fn write_page(out: &Path, html: &str) -> Result<(), String> {
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(out, html).map_err(|e| format!("{}: {e}", out.display()))
}

/// A live deployment as a report section: CodeDeploy's lifecycle events with their
/// times, or an ECS service deployment's status and stage.
async fn live(id: &str) -> Result<Value, String> {
    let sdk = greenlight::aws::load_sdk_config()
        .await
        .map_err(|e| e.to_string())?;
    let mut timeline = Vec::new();
    // Each hook's (or hooked lifecycle event's) result, as the page's checks.
    let mut checks: Vec<Value> = Vec::new();
    let (name, status) = if id.contains(":service-deployment/") {
        let ecs = greenlight::aws::Ecs::from_conf(&sdk);
        let d = ecs
            .service_deployments(&[id.to_string()])
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .next()
            .ok_or_else(|| format!("ECS DescribeServiceDeployments: no deployment {id}"))?;
        let at = |t: Option<&aws_smithy_types::DateTime>| {
            t.and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
                .unwrap_or_else(|| "-".into())
        };
        timeline.push(format!("[{}] created", at(d.created_at())));
        timeline.push(format!("[{}] started", at(d.started_at())));
        if let Some(stage) = d.lifecycle_stage() {
            timeline.push(format!("stage {}", stage.as_str()));
        }
        for hook in d.lifecycle_hook_details() {
            let status = hook.status().map(|s| s.as_str()).unwrap_or_default();
            checks.push(json!({
                "what": format!("hook {}", hook.target_arn().or(hook.target_type().map(|t| t.as_str())).unwrap_or_default()),
                "passed": status == "SUCCEEDED", "detail": status}));
        }
        if let Some(rollback) = d.rollback() {
            timeline.push(format!(
                "[{}] rolling back: {}",
                at(rollback.started_at()),
                rollback.reason().unwrap_or_default()
            ));
        }
        timeline.push(format!(
            "[{}] {}",
            at(d.finished_at()),
            d.status().map(|s| s.as_str()).unwrap_or("?")
        ));
        (
            format!("ECS service deployment {id}"),
            d.status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
        )
    } else {
        let client = aws_sdk_codedeploy::Client::new(&sdk);
        let info = client
            .get_deployment()
            .deployment_id(id)
            .send()
            .await
            .map_err(|e| format!("CodeDeploy GetDeployment {id}: {e:?}"))?
            .deployment_info
            .ok_or_else(|| format!("CodeDeploy GetDeployment: no deployment {id}"))?;
        let targets = client
            .list_deployment_targets()
            .deployment_id(id)
            .send()
            .await
            .map_err(|e| format!("CodeDeploy ListDeploymentTargets {id}: {e:?}"))?;
        for target in targets.target_ids() {
            let target = client
                .get_deployment_target()
                .deployment_id(id)
                .target_id(target)
                .send()
                .await
                .map_err(|e| format!("CodeDeploy GetDeploymentTarget {id}: {e:?}"))?;
            let events = target
                .deployment_target
                .and_then(|t| t.ecs_target)
                .map(|t| t.lifecycle_events.unwrap_or_default())
                .unwrap_or_default();
            for e in events {
                let status = e.status().map(|s| s.as_str()).unwrap_or_default();
                if matches!(status, "Succeeded" | "Failed") {
                    checks.push(json!({
                        "what": format!("lifecycle {}", e.lifecycle_event_name().unwrap_or_default()),
                        "passed": status == "Succeeded", "detail": status}));
                }
                let at = e
                    .start_time()
                    .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
                    .unwrap_or_else(|| "-".into());
                timeline.push(format!(
                    "[{at}] lifecycle {} {}",
                    e.lifecycle_event_name().unwrap_or_default(),
                    e.status().map(|s| s.as_str()).unwrap_or_default()
                ));
            }
        }
        let status = info
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        (
            format!(
                "CodeDeploy deployment {id} ({}/{})",
                info.application_name().unwrap_or_default(),
                info.deployment_group_name().unwrap_or_default()
            ),
            status,
        )
    };
    Ok(json!({
        "name": name, "path": if id.contains(":service-deployment/") { "ecs-native" } else { "codedeploy" },
        "passed": status == "Succeeded" || status == "SUCCESSFUL", "status": status,
        "timeline": timeline, "traffic": [], "checks": checks, "figures": {}
    }))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The whole page.
pub fn page(sections: &[Value]) -> String {
    let body: String = sections.iter().map(section).collect();
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Greenlight deployment report</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #1b1f24; }}
h1 {{ font-size: 1.5em; }} h2 {{ border-bottom: 1px solid #d0d7de; padding-bottom: .3em; }}
.badge {{ display: inline-block; padding: .1em .6em; border-radius: 1em; color: white; font-weight: 600; }}
.pass {{ background: #1a7f37; }} .fail {{ background: #cf222e; }}
table {{ border-collapse: collapse; width: 100%; margin: .5em 0 1em; }}
td, th {{ border: 1px solid #d0d7de; padding: .3em .5em; text-align: left; vertical-align: top; }}
pre {{ background: #f6f8fa; padding: .8em; overflow-x: auto; font-size: 12px; }}
.ok {{ color: #1a7f37; }} .bad {{ color: #cf222e; }}
.why {{ border-left: 4px solid #cf222e; padding: .2em 1em; background: #fff8f7; margin: 1em 0; }}
.why .said {{ margin: .3em 0; }} .why .line.error {{ color: #cf222e; font-weight: 600; }}
svg text {{ font-size: 11px; fill: #57606a; }}
</style></head>
<body data-rendered="no">
<h1>Greenlight deployment report</h1>
{body}
<script>
// Marks the page rendered once every chart is in place (the browser test reads it).
const charts = document.querySelectorAll("svg.traffic");
document.body.dataset.rendered = charts.length === document.querySelectorAll("section").length ? "ok" : "incomplete";
</script>
</body></html>
"#
    )
}

fn section(s: &Value) -> String {
    let passed = s["passed"].as_bool().unwrap_or(false);
    let title = escape(&format!(
        "{}{} ({})",
        s["number"]
            .as_u64()
            .map(|n| format!("Scenario {n}: "))
            .unwrap_or_default(),
        s["name"].as_str().unwrap_or_default(),
        s["path"].as_str().unwrap_or_default()
    ));
    let timeline: Vec<String> = s["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.as_str().map(str::to_string))
        .collect();
    let matching = |needles: &[&str]| -> String {
        let rows: Vec<String> = timeline
            .iter()
            .filter(|l| needles.iter().any(|n| l.contains(n)))
            .map(|l| format!("<tr><td>{}</td></tr>", escape(l)))
            .collect();
        if rows.is_empty() {
            "<p>None.</p>".into()
        } else {
            format!("<table>{}</table>", rows.join(""))
        }
    };
    let checks: String = s["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let ok = c["passed"].as_bool().unwrap_or(false);
            format!(
                "<tr><td class=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
                if ok { "ok" } else { "bad" },
                if ok { "pass" } else { "FAIL" },
                escape(c["what"].as_str().unwrap_or_default()),
                escape(c["detail"].as_str().unwrap_or_default())
            )
        })
        .collect();
    let figures: String = s["figures"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("<tr><td>{}</td><td>{v}</td></tr>", escape(k)))
        .collect();
    format!(
        r#"<section>
<h2>{title} <span class="badge {class}">{verdict}</span></h2>
<p>{seconds}</p>
{why}
<h3>Production traffic on green</h3>
{chart}
<h3>Checks</h3>
<table><tr><th>result</th><th>what</th><th>detail</th></tr>{checks}</table>
<h3>Figures</h3>
<table>{figures}</table>
<h3>Lifecycle events and stages</h3>
{stages}
<h3>Hook answers and checks</h3>
{hooks}
<h3>Analysis</h3>
{analysis}
<h3>Alarms, stops and rollbacks</h3>
{stops}
<h3>Notifications sent</h3>
{notifications}
<h3>Timeline</h3>
<pre>{timeline}</pre>
</section>
"#,
        class = if passed { "pass" } else { "fail" },
        verdict = if passed { "PASSED" } else { "FAILED" },
        seconds = s["seconds"]
            .as_f64()
            .map(|t| format!("{t:.1} s"))
            .or_else(|| s["status"]
                .as_str()
                .map(|st| format!("status {}", escape(st))))
            .unwrap_or_default(),
        chart = chart(&s["traffic"]),
        why = crate::why::section(&s["evidence"]).into_string(),
        stages = matching(&["lifecycle", " stage ", "created", "started"]),
        hooks = matching(&["returned", "PutLifecycleEventHookExecutionStatus"]),
        analysis = matching(&["analysis", "latency_", "error_rate"]),
        stops = matching(&[
            "ALARM",
            "StopDeployment",
            "StopServiceDeployment",
            "rolling back",
            "ROLLBACK"
        ]),
        notifications = matching(&["SNS "]),
        timeline = escape(&timeline.join("\n")),
    )
}

/// Production traffic on green over time: an SVG polyline of (seconds, percent).
fn chart(samples: &Value) -> String {
    let points: Vec<(f64, f64)> = samples
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["t"].as_f64()?, p["green_percent"].as_f64()?)))
        .collect();
    let (width, height, left, bottom) = (720.0, 180.0, 40.0, 20.0);
    let span = points.iter().map(|p| p.0).fold(0.0_f64, f64::max).max(1.0);
    let x = |t: f64| left + (width - left - 10.0) * t / span;
    let y = |p: f64| (height - bottom) - (height - bottom - 10.0) * p / 100.0;
    let line: Vec<String> = points
        .iter()
        .map(|(t, p)| format!("{:.1},{:.1}", x(*t), y(*p)))
        .collect();
    let empty = if points.is_empty() {
        format!(
            r#"<text x="{}" y="{}">no traffic samples</text>"#,
            width / 2.0 - 50.0,
            height / 2.0
        )
    } else {
        String::new()
    };
    format!(
        r##"<svg class="traffic" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="production traffic on green, percent, over time">
<line x1="{left}" y1="{y0}" x2="{xr}" y2="{y0}" stroke="#8c959f"/>
<line x1="{left}" y1="{y100}" x2="{left}" y2="{y0}" stroke="#8c959f"/>
<text x="4" y="{y100t}">100%</text><text x="16" y="{y0}">0%</text>
<text x="{left}" y="{height}">0 s</text><text x="{xlabel}" y="{height}">{span:.1} s</text>
<polyline fill="none" stroke="#1a7f37" stroke-width="2" points="{points}"/>
{empty}
</svg>"##,
        y0 = y(0.0),
        y100 = y(100.0),
        y100t = y(100.0) + 4.0,
        xr = width - 10.0,
        xlabel = width - 50.0,
        points = line.join(" "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_escapes_text_and_draws_the_traffic() {
        let html = page(&[json!({
            "number": 6, "name": "slow <image>", "path": "codedeploy", "passed": true, "seconds": 5.0,
            "checks": [{"what": "rolled back", "passed": true, "detail": "a & b"}],
            "figures": {"seconds": 5.0},
            "timeline": ["[  1.000s] SNS analysis_failed: x", "[  2.000s] ECS stage PRODUCTION_TRAFFIC_SHIFT"],
            "traffic": [{"t": 0.0, "green_percent": 0}, {"t": 1.0, "green_percent": 10}]
        })]);
        assert!(html.contains("slow &lt;image&gt;"));
        assert!(html.contains("a &amp; b"));
        assert!(html.contains("<polyline"));
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no network fetches"
        );
    }
}
