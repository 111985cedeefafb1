//! A service's `analysis:`: the metrics green is judged on against blue, their
//! thresholds, the window and what an inconclusive window means.

use std::time::Duration;

use serde_json::Value;

use super::walker::{join, kind, Walker};

impl Walker {
    pub(super) fn analysis(
        &mut self,
        value: &Value,
        path: &str,
    ) -> Option<crate::analysis::AnalysisConfig> {
        use crate::analysis::{AnalysisConfig, LatencyStat, Measure, MetricRule, OnInconclusive};
        let map = self.mapping(
            value,
            path,
            &[
                "window_minutes",
                "window_seconds",
                "interval_seconds",
                "min_requests",
                "failure_limit",
                "on_inconclusive",
                "dry_run",
                "settle_seconds",
                "metrics",
            ],
        )?;
        // window_seconds: for high-resolution metrics and the local rehearsal, whose
        // minutes are compressed; window_minutes is what ALB metrics call for.
        let window_seconds = match (map.get("window_minutes"), map.get("window_seconds")) {
            (Some(_), Some(_)) => {
                self.problem(
                    join(path, "window_seconds"),
                    "set window_minutes or window_seconds, not both",
                );
                300
            }
            (None, Some(_)) => self.number(map, path, "window_seconds", 1..=7200, 300),
            _ => self.number(map, path, "window_minutes", 1..=120, 5) * 60,
        };
        let interval = self.number(map, path, "interval_seconds", 1..=3600, 60);
        // GetMetricData periods: 1, 5, 10, 20, 30 (high-resolution metrics) or a
        // multiple of 60 [CloudWatch API reference, MetricStat.Period].
        if interval % 60 != 0 && ![1, 5, 10, 20, 30].contains(&interval) {
            self.problem(
                join(path, "interval_seconds"),
                format!("{interval} is not a CloudWatch period: use a whole number of minutes (load balancer metrics have 1-minute resolution), or 1, 5, 10, 20 or 30 for high-resolution metrics"),
            );
        }
        if interval > window_seconds {
            self.problem(
                join(path, "interval_seconds"),
                format!("{interval} s is longer than the window ({window_seconds} s)"),
            );
        }
        let on_inconclusive = match self.optional_str(map, path, "on_inconclusive").as_deref() {
            None | Some("fail") => OnInconclusive::Fail,
            Some("pass") => OnInconclusive::Pass,
            Some(other) => {
                self.problem(
                    join(path, "on_inconclusive"),
                    format!("{other:?} is not fail or pass"),
                );
                OnInconclusive::Fail
            }
        };
        let mut metrics = Vec::new();
        match map.get("metrics").filter(|v| !v.is_null()) {
            None => self.problem(
                join(path, "metrics"),
                "missing: list what to compare (e.g. { metric: error_rate, max: 1 })",
            ),
            Some(Value::Array(items)) if items.is_empty() => {
                self.problem(join(path, "metrics"), "must list at least one metric")
            }
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let at = format!("{path}.metrics[{i}]");
                    let Some(m) = self.mapping(
                        item,
                        &at,
                        &[
                            "metric",
                            "name",
                            "cloudwatch",
                            "max",
                            "max_over_blue",
                            "max_ratio_to_blue",
                        ],
                    ) else {
                        continue;
                    };
                    let limit = |w: &mut Walker, key: &str| match m.get(key) {
                        None | Some(Value::Null) => None,
                        Some(v) => match v.as_f64() {
                            Some(n) if n >= 0.0 => Some(n),
                            _ => {
                                w.problem(
                                    join(&at, key),
                                    format!("expected a number of at least 0, got {v}"),
                                );
                                None
                            }
                        },
                    };
                    let (max, over, ratio) = (
                        limit(self, "max"),
                        limit(self, "max_over_blue"),
                        limit(self, "max_ratio_to_blue"),
                    );
                    let measure = match (self.optional_str(m, &at, "metric"), m.get("cloudwatch")) {
                        (Some(metric), None) => match metric.as_str() {
                            "error_rate" => Some(Measure::ErrorRate),
                            "latency_p50" => Some(Measure::Latency(LatencyStat::P50)),
                            "latency_p90" => Some(Measure::Latency(LatencyStat::P90)),
                            "latency_p99" => Some(Measure::Latency(LatencyStat::P99)),
                            "latency_avg" => Some(Measure::Latency(LatencyStat::Average)),
                            other => {
                                self.problem(join(&at, "metric"), format!("{other:?} is not one of error_rate, latency_p50, latency_p90, latency_p99, latency_avg (or use name + cloudwatch for any metric)"));
                                None
                            }
                        },
                        (None, Some(cw)) => {
                            let cw_path = join(&at, "cloudwatch");
                            self.mapping(
                                cw,
                                &cw_path,
                                &["namespace", "metric_name", "dimensions", "stat"],
                            )
                            .map(|c| Measure::Custom {
                                namespace: self.required_str(c, &cw_path, "namespace"),
                                metric_name: self.required_str(c, &cw_path, "metric_name"),
                                dimensions: self.string_map(c, &cw_path, "dimensions"),
                                stat: self
                                    .optional_str(c, &cw_path, "stat")
                                    .unwrap_or_else(|| "Sum".into()),
                            })
                        }
                        (Some(_), Some(_)) => {
                            self.problem(&at, "set either metric or cloudwatch, not both");
                            None
                        }
                        (None, None) => {
                            self.problem(
                                join(&at, "metric"),
                                "missing (or set name and cloudwatch for any metric)",
                            );
                            None
                        }
                    };
                    let Some(measure) = measure else { continue };
                    match &measure {
                        Measure::ErrorRate if ratio.is_some() => self.problem(
                            join(&at, "max_ratio_to_blue"),
                            "applies to latency; for error_rate use max_over_blue",
                        ),
                        Measure::Latency(_) if over.is_some() => self.problem(
                            join(&at, "max_over_blue"),
                            "applies to error_rate; for latency use max_ratio_to_blue",
                        ),
                        Measure::Custom { .. } if over.is_some() || ratio.is_some() => {
                            self.problem(&at, "a cloudwatch metric is compared with max only")
                        }
                        _ => {}
                    }
                    if max.is_none() && over.is_none() && ratio.is_none() {
                        self.problem(
                            &at,
                            "no limit: set max (or max_over_blue / max_ratio_to_blue)",
                        );
                    }
                    let name = match (&measure, self.optional_str(m, &at, "name")) {
                        (_, Some(name)) => name,
                        (Measure::Custom { .. }, None) => {
                            self.problem(
                                join(&at, "name"),
                                "missing: a cloudwatch metric needs a name",
                            );
                            String::new()
                        }
                        (_, None) => self.optional_str(m, &at, "metric").unwrap_or_default(),
                    };
                    metrics.push(MetricRule {
                        name,
                        measure,
                        max,
                        max_over_blue: over,
                        max_ratio_to_blue: ratio,
                    });
                }
            }
            Some(other) => self.problem(
                join(path, "metrics"),
                format!("expected a list, got {}", kind(other)),
            ),
        }
        Some(AnalysisConfig {
            window: Duration::from_secs(window_seconds),
            interval: Duration::from_secs(interval),
            min_requests: self.number(map, path, "min_requests", 0..=1_000_000_000, 100),
            failure_limit: self.number(map, path, "failure_limit", 0..=1000, 0) as u32,
            on_inconclusive,
            dry_run: self.bool(map, path, "dry_run", false),
            metrics,
            settle: Duration::from_secs(self.number(map, path, "settle_seconds", 0..=900, 120)),
        })
    }
}
