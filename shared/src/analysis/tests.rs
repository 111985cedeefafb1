use std::collections::BTreeMap;
use std::time::Duration;

use super::*;

fn config() -> AnalysisConfig {
    AnalysisConfig {
        window: Duration::from_secs(300),
        interval: Duration::from_secs(60),
        min_requests: 100,
        failure_limit: 0,
        on_inconclusive: OnInconclusive::Fail,
        dry_run: false,
        metrics: vec![
            MetricRule {
                name: "error_rate".into(),
                measure: Measure::ErrorRate,
                max: Some(1.0),
                max_over_blue: Some(0.5),
                max_ratio_to_blue: None,
            },
            MetricRule {
                name: "latency_p99".into(),
                measure: Measure::Latency(LatencyStat::P99),
                max: Some(800.0),
                max_over_blue: None,
                max_ratio_to_blue: Some(1.5),
            },
        ],
        settle: Duration::from_secs(120),
    }
}

fn sample(requests: Option<f64>, errors: Option<f64>, p99: Option<f64>) -> Sample {
    Sample {
        requests,
        errors_5xx: errors,
        latency_ms: p99
            .map(|v| [(LatencyStat::P99, v)].into())
            .unwrap_or_default(),
        custom: BTreeMap::new(),
    }
}

#[test]
fn a_window_uses_blue_before_it_as_baseline_and_discounts_smoke_requests() {
    let c = config();
    let minute = 60_000;
    let from = 10 * minute;
    let mut periods = BTreeMap::new();
    // Blue before the deployment: 200 ms p99.
    for m in 5..10 {
        periods.insert(
            m * 60,
            PeriodSamples {
                green: Sample::default(),
                blue: sample(Some(1000.0), None, Some(200.0)),
            },
        );
    }
    // Green alone under production traffic: 1000 ms, 5x blue's baseline.
    periods.insert(
        600,
        PeriodSamples {
            green: sample(Some(500.0), None, Some(700.0)),
            blue: Sample::default(),
        },
    );
    // 150 requests, 60 of them Greenlight's smoke checks: under min_requests.
    periods.insert(
        660,
        PeriodSamples {
            green: sample(Some(150.0), None, Some(100.0)),
            blue: Sample::default(),
        },
    );
    let result = judge_window(
        &c,
        &periods,
        from,
        &[from, from + minute],
        &[(from + minute + 5_000, 60.0)],
    );
    assert_eq!(result.intervals[0].verdict, Verdict::Fail);
    assert!(result.intervals[0].reason.contains("3.5x"), "{result:?}");
    assert_eq!(result.intervals[1].verdict, Verdict::Inconclusive);
    assert_eq!(result.intervals[1].green_requests, Some(90.0));
    assert_eq!(result.verdict, Verdict::Fail);
    assert!(summary(&result).contains("latency_p99: green 700.00 / blue 200.00"));
    assert_eq!(align_down(&c, from + 59_999), from);
    assert_eq!(window_start(&c, from), from, "on a boundary: that interval");
    assert_eq!(
        window_start(&c, from + 1),
        from + minute,
        "inside an interval: the next one, wholly under production traffic"
    );
}

fn interval(green: Sample, blue: Sample) -> IntervalInput {
    IntervalInput {
        start_ms: 0,
        green,
        blue,
        smoke_requests: 0.0,
    }
}

fn healthy_blue() -> Sample {
    sample(Some(1000.0), Some(1.0), Some(200.0))
}

#[test]
fn a_green_like_blue_passes() {
    let r = judge_interval(
        &config(),
        &interval(sample(Some(500.0), Some(1.0), Some(210.0)), healthy_blue()),
        None,
    );
    assert_eq!(r.verdict, Verdict::Pass, "{r:?}");
}

#[test]
fn each_failure_rule_fails_the_interval_naming_it() {
    let cases = [
        (
            sample(Some(500.0), Some(10.0), Some(210.0)),
            "error_rate: 2.00% 5xx on green, above max 1%",
        ),
        (
            sample(Some(1000.0), Some(7.0), Some(210.0)),
            "0.70% 5xx on green against 0.10% on blue",
        ),
        (
            sample(Some(500.0), Some(0.0), Some(900.0)),
            "latency_p99: p99 900 ms on green, above max 800 ms",
        ),
        (
            sample(Some(500.0), Some(0.0), Some(400.0)),
            "2.0x, above 1.5x",
        ),
    ];
    for (green, expected) in cases {
        let r = judge_interval(&config(), &interval(green, healthy_blue()), None);
        assert_eq!(r.verdict, Verdict::Fail, "{expected}: {r:?}");
        assert!(
            r.reason.contains(expected),
            "{} does not contain {expected}",
            r.reason
        );
    }
}

#[test]
fn low_traffic_and_no_data_are_inconclusive_never_pass() {
    let low = judge_interval(
        &config(),
        &interval(sample(Some(40.0), None, Some(100.0)), healthy_blue()),
        None,
    );
    assert_eq!(low.verdict, Verdict::Inconclusive);
    assert!(low.reason.contains("fewer than min_requests 100"));
    let none = judge_interval(
        &config(),
        &interval(sample(None, None, None), healthy_blue()),
        None,
    );
    assert_eq!(none.verdict, Verdict::Inconclusive);
    assert!(none.reason.contains("no data"));
}

#[test]
fn traffic_without_a_5xx_datapoint_is_zero_errors() {
    let r = judge_interval(
        &config(),
        &interval(sample(Some(500.0), None, Some(210.0)), healthy_blue()),
        None,
    );
    assert_eq!(r.verdict, Verdict::Pass);
    assert_eq!(r.metrics[0].green, Some(0.0));
}

#[test]
fn smoke_requests_do_not_count_as_production_traffic() {
    let mut input = interval(sample(Some(120.0), None, Some(210.0)), healthy_blue());
    input.smoke_requests = 40.0;
    let r = judge_interval(&config(), &input, None);
    assert_eq!(
        r.verdict,
        Verdict::Inconclusive,
        "80 production requests < 100"
    );
    assert_eq!(r.green_requests, Some(80.0));
}

#[test]
fn the_newest_minutes_wait_until_their_datapoints_landed() {
    let c = config();
    // Production traffic reached green at t=0; it is now 4 minutes later: minutes
    // 0 and 1 are settled (ended >= 2 min ago), minute 2 and 3 are not.
    assert_eq!(intervals_to_judge(&c, 0, 240_000), [0, 60_000]);
    assert!(!window_complete(&c, 0, 240_000));
    // Window of 5 minutes, all settled at 7 minutes.
    assert_eq!(intervals_to_judge(&c, 0, 420_000).len(), 5);
    assert!(window_complete(&c, 0, 420_000));
    assert_eq!(
        intervals_to_judge(&c, 0, 10_000_000).len(),
        5,
        "never past the window"
    );
}

#[test]
fn a_blue_without_data_leaves_the_blue_relative_rules_unchecked() {
    // Blue missing (no baseline either): only the absolute ceilings apply.
    let r = judge_interval(
        &config(),
        &interval(
            sample(Some(500.0), Some(4.0), Some(700.0)),
            Sample::default(),
        ),
        None,
    );
    assert_eq!(r.verdict, Verdict::Pass, "{r:?}");
    assert_eq!(r.metrics[0].blue, None);
}

#[test]
fn after_the_full_shift_blue_is_its_baseline() {
    let baseline = sample(Some(3000.0), Some(3.0), Some(100.0));
    let r = judge_interval(
        &config(),
        &interval(
            sample(Some(500.0), Some(0.0), Some(300.0)),
            Sample::default(),
        ),
        Some(&baseline),
    );
    assert_eq!(
        r.verdict,
        Verdict::Fail,
        "300 ms against a 100 ms baseline: {r:?}"
    );
    assert_eq!(r.metrics[1].blue, Some(100.0));
}

fn judged(verdicts: &[Verdict]) -> Vec<IntervalResult> {
    verdicts
        .iter()
        .enumerate()
        .map(|(i, v)| IntervalResult {
            start_ms: i as i64 * 60_000,
            verdict: *v,
            reason: format!("{v:?}"),
            green_requests: Some(500.0),
            metrics: Vec::new(),
        })
        .collect()
}

#[test]
fn failure_limit_on_inconclusive_and_dry_run_decide_the_run() {
    use Verdict::*;
    let c = config();
    let run = judge_run(&c, judged(&[Pass, Fail, Pass]));
    assert_eq!((run.verdict, run.stop), (Fail, true));
    let tolerant = AnalysisConfig {
        failure_limit: 1,
        ..config()
    };
    let run = judge_run(&tolerant, judged(&[Pass, Fail, Pass]));
    assert_eq!((run.verdict, run.stop), (Pass, false));
    let run = judge_run(&c, judged(&[Inconclusive, Inconclusive]));
    assert_eq!(
        (run.verdict, run.stop),
        (Inconclusive, true),
        "on_inconclusive: fail"
    );
    let lenient = AnalysisConfig {
        on_inconclusive: OnInconclusive::Pass,
        ..config()
    };
    let run = judge_run(&lenient, judged(&[Inconclusive]));
    assert_eq!((run.verdict, run.stop), (Inconclusive, false));
    let dry = AnalysisConfig {
        dry_run: true,
        ..config()
    };
    let run = judge_run(&dry, judged(&[Fail, Fail]));
    assert_eq!(
        (run.verdict, run.stop),
        (Fail, false),
        "dry run judges, never stops"
    );
    assert_eq!(run.failed_intervals, 2);
}

#[test]
fn a_custom_sum_without_datapoints_counted_nothing() {
    let mut c = config();
    c.metrics = vec![MetricRule {
        name: "checkout-errors".into(),
        measure: Measure::Custom {
            namespace: "Shop".into(),
            metric_name: "CheckoutErrors".into(),
            dimensions: BTreeMap::new(),
            stat: "Sum".into(),
        },
        max: Some(5.0),
        max_over_blue: None,
        max_ratio_to_blue: None,
    }];
    let mut input = interval(sample(Some(500.0), None, None), healthy_blue());
    assert_eq!(judge_interval(&c, &input, None).verdict, Verdict::Pass);
    input.green.custom.insert("checkout-errors".into(), 9.0);
    let r = judge_interval(&c, &input, None);
    assert_eq!(r.verdict, Verdict::Fail);
    assert!(r.reason.contains("9 above max 5"), "{}", r.reason);
}
