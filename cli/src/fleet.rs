//! `greenlight report --fleet`: one self-contained page for every service, from the
//! release ledger: its environments (who promotes from whom), what each runs, its
//! recent deployments with why each rollback happened, and the four DORA keys with a
//! small chart per day. Templates are maud's: checked at compile time, every
//! interpolated value escaped.

use greenlight::config::ServiceConfig;
use greenlight::ledger::{delivery_metrics, DeliveryMetrics, Entry, Ledger, Outcome};
use greenlight::Config;
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::ledger::{seconds, short, utc};

const DAY_MS: i64 = 86_400_000;
/// Recent deployments listed per service.
const RECENT: usize = 10;

/// What the page shows of one service.
pub struct ServiceView<'a> {
    pub service: &'a ServiceConfig,
    /// Newest first.
    pub entries: Vec<Entry>,
    pub metrics: DeliveryMetrics,
}

/// Reads every configured service's attempts over `days` and renders the page.
pub async fn page_from_ledger(
    config: &Config,
    ledger: &Ledger,
    days: u32,
    now_ms: i64,
) -> Result<String, String> {
    let since = now_ms - (i64::from(days) + 1) * DAY_MS;
    let mut views = Vec::new();
    let mut all = Vec::new();
    for service in &config.services {
        let entries = ledger
            .history(&service.name, Some(since), 10_000)
            .await
            .map_err(|e| format!("cannot read the ledger {}: {e}", ledger.table()))?;
        let metrics = delivery_metrics(Some(&service.name), &entries, days, now_ms);
        all.extend(entries.iter().cloned());
        views.push(ServiceView {
            service,
            entries,
            metrics,
        });
    }
    let fleet = delivery_metrics(None, &all, days, now_ms);
    Ok(page(&views, &fleet).into_string())
}

/// The page.
pub fn page(views: &[ServiceView], fleet: &DeliveryMetrics) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Greenlight fleet" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { "Greenlight fleet" }
                    p.sub { (views.len()) " services, the last " (fleet.days) " days" }
                }
                section #fleet {
                    h2 { "Every service" }
                    (keys(fleet))
                    (chart(fleet))
                }
                section #environments {
                    h2 { "Environments" }
                    ul {
                        @for chain in chains(views) {
                            li.chain { (chain.join(" → ")) }
                        }
                    }
                }
                @for view in views {
                    (service_section(view))
                }
            }
        }
    }
}

fn service_section(view: &ServiceView) -> Markup {
    let running = view
        .entries
        .iter()
        .find(|e| e.outcome == Some(Outcome::Succeeded));
    html! {
        section.service data-service=(view.service.name) {
            h2 { (view.service.name) }
            p.route {
                (view.service.route())
                @if let Some(p) = &view.service.promote {
                    " · promoted from " (p.from) " after " (p.soak.as_secs() / 60) " min"
                }
            }
            p.runs {
                "Runs: "
                @match running {
                    Some(e) => {
                        strong { (e.image_tag.as_deref().unwrap_or("?")) }
                        " " code { (short(e.image_digest.as_deref().unwrap_or(""))) }
                    }
                    None => { "nothing recorded in the window" }
                }
            }
            (keys(&view.metrics))
            (chart(&view.metrics))
            @if view.entries.is_empty() {
                p.empty { "No deployment recorded." }
            } @else {
                table.recent {
                    thead { tr { th { "started (UTC)" } th { "image" } th { "trigger" } th { "outcome" } th { "took" } th { "why" } } }
                    tbody {
                        @for e in view.entries.iter().take(RECENT) {
                            tr class=(e.outcome.map_or("in-flight", |o| o.as_str())) {
                                td { (e.started_at.map(utc).unwrap_or_default()) }
                                td { (e.image_tag.as_deref().unwrap_or("?")) }
                                td { (e.trigger.as_deref().unwrap_or("?")) }
                                td.outcome { (e.outcome.map_or("in flight", |o| o.as_str()).replace('_', " ")) }
                                td { (e.duration_ms().map(seconds).unwrap_or_default()) }
                                td.why { (why(e)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The four keys as figures.
fn keys(m: &DeliveryMetrics) -> Markup {
    let time = |ms: Option<i64>| ms.map_or("–".to_string(), seconds);
    html! {
        dl.keys {
            div { dt { "Deployment frequency" } dd data-key="frequency" { (format!("{:.2}", m.deployments_per_day)) " a day" } }
            div { dt { "Lead time (median)" } dd data-key="lead-time" { (time(m.lead_time_median_ms)) } }
            div { dt { "Change failure rate" } dd data-key="failure-rate" {
                (m.change_failure_rate.map_or("–".to_string(), |r| format!("{:.0}%", r * 100.0)))
            } }
            div { dt { "Time to restore (median)" } dd data-key="restore" { (time(m.time_to_restore_median_ms)) } }
        }
    }
}

/// Successes and rollbacks per day as stacked bars; a window with none says so
/// and draws no bar.
fn chart(m: &DeliveryMetrics) -> Markup {
    let most = m
        .daily
        .iter()
        .map(|d| d.succeeded + d.rolled_back)
        .max()
        .unwrap_or(0);
    if most == 0 {
        return html! { p.no-chart { "No deployment ended in these " (m.days) " days." } };
    }
    let (width, height) = (m.daily.len() as f64 * 12.0, 60.0);
    let scale = height / most as f64;
    let first = m.daily.first().map(|d| day(d.start_ms)).unwrap_or_default();
    let last = m.daily.last().map(|d| day(d.start_ms)).unwrap_or_default();
    html! {
        figure.chart {
        svg.chart viewBox=(format!("0 0 {width} {height}")) preserveAspectRatio="xMinYMax meet" role="img" aria-label="deployments per day: succeeded and rolled back" {
            line.axis x1="0" y1=(height) x2=(width) y2=(height) {}
            @for (i, d) in m.daily.iter().enumerate() {
                @let x = i as f64 * 12.0 + 1.0;
                @let ok = d.succeeded as f64 * scale;
                @let bad = d.rolled_back as f64 * scale;
                @if d.succeeded > 0 {
                    rect.ok x=(x) y=(height - ok) width="10" height=(ok) data-day=(day(d.start_ms)) data-count=(d.succeeded) {
                        title { (day(d.start_ms)) ": " (d.succeeded) " succeeded" }
                    }
                }
                @if d.rolled_back > 0 {
                    rect.bad x=(x) y=(height - ok - bad) width="10" height=(bad) data-day=(day(d.start_ms)) data-count=(d.rolled_back) {
                        title { (day(d.start_ms)) ": " (d.rolled_back) " rolled back" }
                    }
                }
            }
        }
        figcaption { (first) " … " (last) ": " span.ok-key { "■" } " succeeded " span.bad-key { "■" } " rolled back; the tallest day had " (most) }
        }
    }
}

/// Promotion chains, sources first: `web-staging → web-prod`; a service nobody
/// promotes from or to stands alone.
fn chains<'a>(views: &'a [ServiceView]) -> Vec<Vec<&'a str>> {
    let from = |name: &str| {
        views
            .iter()
            .find(|v| v.service.name == name)
            .and_then(|v| v.service.promote.as_ref())
            .map(|p| p.from.as_str())
    };
    let mut chains = Vec::new();
    for head in views.iter().filter(|v| v.service.promote.is_none()) {
        let mut chain = vec![head.service.name.as_str()];
        // Follow who promotes from the last one (a config check refused cycles).
        while let Some(next) = views.iter().find(|v| {
            from(&v.service.name) == chain.last().copied()
                && !chain.contains(&v.service.name.as_str())
        }) {
            chain.push(next.service.name.as_str());
        }
        chains.push(chain);
    }
    chains
}

fn why(e: &Entry) -> String {
    let mut parts = Vec::new();
    if let Some(from) = &e.promoted_from {
        parts.push(format!("promoted from {from}"));
    }
    if let (Some(by), Some(reason)) = (&e.forced_by, &e.forced_reason) {
        parts.push(format!("forced by {by}: {reason}"));
    }
    if let Some(by) = &e.revoked_by {
        parts.push(format!("revoked: {by} during its soak"));
    }
    if e.outcome != Some(Outcome::Succeeded) {
        if let Some(why) = e.why() {
            parts.push(why.lines().next().unwrap_or_default().to_string());
        }
    }
    parts.join("; ")
}

fn day(ms: i64) -> String {
    utc(ms).chars().take(10).collect()
}

const STYLE: &str = r#"
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 72rem; padding: 1rem; color: #1b1f24; }
h1 { margin: 0; font-size: 1.6rem; } h2 { font-size: 1.2rem; margin: 0 0 .4rem; }
.sub, .route { color: #57606a; margin: .2rem 0; }
section { border: 1px solid #d0d7de; border-radius: 8px; padding: .8rem 1rem; margin: 1rem 0; }
dl.keys { display: grid; grid-template-columns: repeat(auto-fit, minmax(10rem, 1fr)); gap: .5rem; margin: .6rem 0; }
dl.keys div { background: #f6f8fa; border-radius: 6px; padding: .4rem .6rem; }
dt { font-size: .8rem; color: #57606a; } dd { margin: 0; font-size: 1.15rem; font-weight: 600; }
svg.chart { width: 100%; max-width: 40rem; height: 5rem; display: block; }
rect.ok { fill: #2da44e; } rect.bad { fill: #cf222e; } line.axis { stroke: #8c959f; stroke-width: .5; }
figure.chart { margin: .4rem 0; } figcaption { font-size: .8rem; color: #57606a; }
.ok-key { color: #2da44e; } .bad-key { color: #cf222e; }
table.recent { border-collapse: collapse; width: 100%; font-size: .9rem; display: block; overflow-x: auto; }
th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #eaeef2; vertical-align: top; }
tr.rolled_back td.outcome, tr.start_failed td.outcome { color: #cf222e; font-weight: 600; }
tr.succeeded td.outcome { color: #1a7f37; }
td.why { max-width: 32rem; }
li.chain { font-weight: 600; }
"#;
