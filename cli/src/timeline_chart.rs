//! The deployment page's chart: the deployment's real span on the x axis, each
//! lifecycle event (CodeDeploy) or stage (ECS) as a band in the engine's own words,
//! and production traffic on green as a line. The bands come from the timeline's
//! engine lines (`CodeDeploy d-… lifecycle AfterAllowTestTraffic`, `ECS arn… stage
//! POST_TEST_TRAFFIC_SHIFT`), read here and nowhere else.

use maud::{html, Markup};

/// One lifecycle event or stage, in seconds from the section's start.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    pub name: String,
    pub from: f64,
    pub to: f64,
}

/// How the deployment ended, as its engine said it, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct End {
    pub status: String,
    pub at: f64,
}

/// The engine's end words: CodeDeploy's deployment statuses, ECS's service
/// deployment statuses (a rollback is its own band until it ends).
const END_WORDS: &[&str] = &[
    "Succeeded",
    "Failed",
    "Stopped",
    "SUCCESSFUL",
    "ROLLBACK_SUCCESSFUL",
    "ROLLBACK_FAILED",
    "STOPPED",
];

/// What a timeline line says about the engine: a stage began, a rollback began, or
/// the deployment ended.
enum Mark {
    Stage(String),
    End(String),
}

fn mark(text: &str) -> Option<Mark> {
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        ["CodeDeploy", _, "lifecycle", stage] | ["ECS", _, "stage", stage] => {
            Some(Mark::Stage(stage.to_string()))
        }
        ["ECS", _, "rolling", "back:", ..] => Some(Mark::Stage("ROLLBACK".into())),
        ["CodeDeploy", id, status] | ["ECS", id, status]
            if (id.starts_with("d-") || id.starts_with("arn:")) && END_WORDS.contains(status) =>
        {
            Some(Mark::End(status.to_string()))
        }
        _ => None,
    }
}

/// The bands and the end, from `(seconds, text)` lines; a band lasts until the next
/// one begins or the deployment ends (or, unended, until `span`).
pub fn bands(lines: &[(f64, &str)], span: f64) -> (Vec<Band>, Option<End>) {
    let mut bands: Vec<Band> = Vec::new();
    let mut end = None;
    for (at, text) in lines {
        match mark(text) {
            Some(Mark::Stage(name)) => {
                if let Some(last) = bands.last_mut().filter(|b| b.to.is_nan()) {
                    last.to = *at;
                }
                bands.push(Band {
                    name,
                    from: *at,
                    to: f64::NAN,
                });
            }
            Some(Mark::End(status)) => {
                if let Some(last) = bands.last_mut().filter(|b| b.to.is_nan()) {
                    last.to = *at;
                }
                end = Some(End { status, at: *at });
            }
            None => {}
        }
    }
    for band in &mut bands {
        if band.to.is_nan() {
            band.to = span;
        }
    }
    (bands, end)
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 40.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 24.0;

/// The chart over `[0, span]` seconds: bands, and `traffic` as `(seconds, percent)`.
pub fn chart(bands: &[Band], traffic: &[(f64, f64)], span: f64) -> Markup {
    let span = span.max(0.001);
    let x = |t: f64| LEFT + (WIDTH - LEFT - RIGHT) * (t / span).clamp(0.0, 1.0);
    let y = |p: f64| (HEIGHT - BOTTOM) - (HEIGHT - BOTTOM - TOP) * p.clamp(0.0, 100.0) / 100.0;
    let points: Vec<String> = traffic
        .iter()
        .map(|(t, p)| format!("{:.1},{:.1}", x(*t), y(*p)))
        .collect();
    html! {
        svg class="timeline" viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img"
            aria-label="the deployment's stages over time, with production traffic on green (percent)" {
            @for (i, band) in bands.iter().enumerate() {
                @let (x0, x1) = (x(band.from), x(band.to));
                rect class=(if i % 2 == 0 { "band even" } else { "band odd" })
                    x=(format!("{x0:.1}")) y=(TOP) width=(format!("{:.1}", (x1 - x0).max(1.0)))
                    height=(HEIGHT - BOTTOM - TOP) data-stage=(band.name) {
                    title { (band.name) ": " (format!("{:.2}", band.from)) " s to " (format!("{:.2}", band.to)) " s" }
                }
                @if x1 - x0 >= 70.0 {
                    text class="stage" x=(format!("{:.1}", x0 + 3.0)) y=(TOP + 12.0) { (band.name) }
                }
            }
            line class="axis" x1=(LEFT) y1=(y(0.0)) x2=(WIDTH - RIGHT) y2=(y(0.0)) {}
            line class="axis" x1=(LEFT) y1=(y(100.0)) x2=(LEFT) y2=(y(0.0)) {}
            text x="4" y=(y(100.0) + 4.0) { "100%" }
            text x="16" y=(y(0.0)) { "0%" }
            text x=(LEFT) y=(HEIGHT - 6.0) { "0 s" }
            text class="span" x=(WIDTH - 60.0) y=(HEIGHT - 6.0) { (format!("{span:.1} s")) }
            @if points.is_empty() {
                text class="empty" x=(WIDTH / 2.0 - 60.0) y=(HEIGHT / 2.0) { "no traffic samples" }
            } @else {
                polyline class="traffic" data-points=(points.len()) points=(points.join(" ")) {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stage_lasts_until_the_next_and_the_last_until_the_end() {
        let lines = [
            (0.1, "CodeDeploy CreateDeployment web-dg -> d-1"),
            (0.2, "CodeDeploy d-1 lifecycle BeforeInstall"),
            (0.5, "CodeDeploy d-1 lifecycle AfterAllowTestTraffic"),
            (0.6, "CodeDeploy invokes CodeDeployHook_greenlight-AfterAllowTestTraffic for AfterAllowTestTraffic"),
            (0.9, "CodeDeploy d-1 Failed"),
        ];
        let (bands, end) = bands(&lines, 3.0);
        assert_eq!(
            bands,
            vec![
                Band {
                    name: "BeforeInstall".into(),
                    from: 0.2,
                    to: 0.5
                },
                Band {
                    name: "AfterAllowTestTraffic".into(),
                    from: 0.5,
                    to: 0.9
                },
            ]
        );
        assert_eq!(
            end,
            Some(End {
                status: "Failed".into(),
                at: 0.9
            })
        );
    }

    #[test]
    fn ecs_stages_and_its_rollback_are_bands_in_ecs_words() {
        let arn = "arn:aws:ecs:us-east-1:1:service-deployment/prod/web/sd1";
        let lines = [
            (1.0, format!("ECS {arn} stage POST_TEST_TRAFFIC_SHIFT")),
            (
                1.5,
                format!("ECS {arn} rolling back: the hook returned FAILED"),
            ),
            (2.0, format!("ECS {arn} ROLLBACK_SUCCESSFUL")),
        ];
        let lines: Vec<(f64, &str)> = lines.iter().map(|(t, l)| (*t, l.as_str())).collect();
        let (bands, end) = bands(&lines, 5.0);
        let names: Vec<&str> = bands.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["POST_TEST_TRAFFIC_SHIFT", "ROLLBACK"]);
        assert_eq!(bands[1].to, 2.0);
        assert_eq!(end.unwrap().status, "ROLLBACK_SUCCESSFUL");
    }

    #[test]
    fn the_chart_plots_every_sample_over_the_real_span_and_nothing_when_there_are_none() {
        let bands = [Band {
            name: "Install".into(),
            from: 1.0,
            to: 3.4,
        }];
        let html = chart(&bands, &[(0.0, 0.0), (2.0, 10.0), (3.4, 100.0)], 3.4).into_string();
        assert!(html.contains(r#"data-points="3""#), "{html}");
        // The last sample sits at the right end of the axis, 100% at the top.
        assert!(html.contains("710.0,10.0"), "{html}");
        assert!(html.contains(">3.4 s<"), "{html}");
        assert!(html.contains(r#"data-stage="Install""#));
        let empty = chart(&bands, &[], 3.4).into_string();
        assert!(!empty.contains("<polyline"), "no line without samples");
        assert!(empty.contains("no traffic samples"));
    }
}
