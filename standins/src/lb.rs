//! A local load balancer with a production and a test listener (two 127.0.0.1
//! ports), routing to the blue and green task sets of a sample app. The task sets
//! are in-process instances of the sample app; what each answers depends on the
//! image it was "deployed" from (see [`Behavior`]).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

use crate::http::{response, Handler, Request};
use crate::ports::Traffic;

/// How a version of the sample app behaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Behavior {
    /// Answers `/health` with 200 "ok" and `/version` with its version.
    Healthy { version: String },
    /// Fails its health check (503) and every page (500).
    Broken { version: String },
    /// Passes the smoke tests on the test listener but answers production traffic with 500.
    Degrading { version: String },
    /// Answers correctly, but production pages (not `/health`) take 10x as long.
    Slow { version: String },
}

/// How long the sample app takes to answer; a slow version takes 10x this.
pub const BASE_LATENCY: std::time::Duration = std::time::Duration::from_millis(5);

impl Behavior {
    pub fn version(&self) -> &str {
        match self {
            Behavior::Healthy { version }
            | Behavior::Broken { version }
            | Behavior::Degrading { version }
            | Behavior::Slow { version } => version,
        }
    }

    /// How long the answer takes.
    pub fn latency(&self, production: bool, path: &str) -> std::time::Duration {
        let path = path.split('?').next().unwrap_or(path);
        match self {
            Behavior::Slow { .. } if production && path != "/health" => BASE_LATENCY * 10,
            _ => BASE_LATENCY,
        }
    }

    /// The sample app's answer: (status, body).
    pub fn answer(&self, production: bool, path: &str) -> (u16, String) {
        let version = self.version();
        let path = path.split('?').next().unwrap_or(path);
        match (self, path) {
            (Behavior::Broken { .. }, "/health") => {
                (503, "unhealthy: cannot reach the database".into())
            }
            (Behavior::Broken { .. }, _) => (500, "internal error".into()),
            (Behavior::Degrading { .. }, "/health") => (200, "ok".into()),
            (Behavior::Degrading { .. }, _) if production => {
                (500, "internal error under load".into())
            }
            (_, "/health") => (200, "ok".into()),
            (_, "/version") => (200, format!(r#"{{"version":"{version}"}}"#)),
            (_, _) => (200, format!("hello from {version}")),
        }
    }
}

/// Which task set answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Color {
    Blue,
    Green,
}

/// One request the production listener served.
#[derive(Debug, Clone, Serialize)]
pub struct Served {
    pub at_ms: u64,
    pub color: Color,
    pub version: String,
    pub status: u16,
}

#[derive(Default)]
struct Routes {
    blue: Option<String>,
    green: Option<String>,
    test_to_green: bool,
    production_green_percent: u8,
    counter: u64,
}

type Resolver = Arc<dyn Fn(&str) -> Behavior + Send + Sync>;
/// Called for every request served: (target group, status, seconds the target took).
pub type MetricSink = Arc<dyn Fn(&str, u16, f64) + Send + Sync>;
/// Called when the test listener's forward changes: the target group it now serves.
pub type RouteSink = Arc<dyn Fn(&str) + Send + Sync>;

/// The two target groups blue and green take turns in.
struct TargetGroups {
    pair: [String; 2],
    /// Index of the group blue (production) registers in.
    live: usize,
    metrics: Option<MetricSink>,
    test_route: Option<RouteSink>,
}

impl TargetGroups {
    fn of(&self, color: Color) -> &str {
        match color {
            Color::Blue => &self.pair[self.live],
            Color::Green => &self.pair[1 - self.live],
        }
    }
}

struct Inner {
    target_groups: Mutex<Option<TargetGroups>>,
    routes: Mutex<Routes>,
    behavior_of: Resolver,
    production_log: Mutex<Vec<Served>>,
    started: Instant,
}

/// The load balancer; clone freely.
#[derive(Clone)]
pub struct LoadBalancer {
    inner: Arc<Inner>,
}

impl LoadBalancer {
    /// `behavior_of` maps an image URI to the sample app's behavior; `blue` is the image
    /// running before any deployment.
    pub fn new(blue: &str, behavior_of: Resolver) -> LoadBalancer {
        LoadBalancer {
            inner: Arc::new(Inner {
                target_groups: Mutex::new(None),
                routes: Mutex::new(Routes {
                    blue: Some(blue.to_string()),
                    ..Routes::default()
                }),
                behavior_of,
                production_log: Mutex::new(Vec::new()),
                started: Instant::now(),
            }),
        }
    }

    /// Blue registers in `blue`, green in `green` (they swap when green is promoted);
    /// every request served is reported to `metrics` as CloudWatch would count it per
    /// target group, and every change of the test listener's forward to `test_route`.
    pub fn target_groups(
        &self,
        blue: &str,
        green: &str,
        metrics: MetricSink,
        test_route: RouteSink,
    ) {
        *self.inner.target_groups.lock().unwrap() = Some(TargetGroups {
            pair: [blue.to_string(), green.to_string()],
            live: 0,
            metrics: Some(metrics),
            test_route: Some(test_route),
        });
    }

    fn test_route_to(&self, color: Color) {
        let groups = self.inner.target_groups.lock().unwrap();
        if let Some(groups) = groups.as_ref() {
            if let Some(sink) = &groups.test_route {
                sink(groups.of(color));
            }
        }
    }

    /// Handler for the production (`true`) or test listener.
    pub fn listener(&self, production: bool) -> Handler {
        let this = self.clone();
        Arc::new(move |request: Request| {
            let this = this.clone();
            Box::pin(async move { this.route(production, &request).await })
        })
    }

    async fn route(&self, production: bool, request: &Request) -> crate::http::Response {
        let (color, image) = {
            let mut routes = self.inner.routes.lock().unwrap();
            routes.counter += 1;
            let green = match (production, &routes.green) {
                (_, None) => false,
                (true, Some(_)) => {
                    (routes.counter % 100) < u64::from(routes.production_green_percent)
                }
                (false, Some(_)) => routes.test_to_green,
            };
            if green {
                (Color::Green, routes.green.clone())
            } else {
                (Color::Blue, routes.blue.clone())
            }
        };
        let Some(image) = image else {
            return response(503, "text/plain", "no healthy targets");
        };
        let behavior = (self.inner.behavior_of)(&image);
        let started = Instant::now();
        tokio::time::sleep(behavior.latency(production, &request.path)).await;
        let (status, body) = behavior.answer(production, &request.path);
        {
            let groups = self.inner.target_groups.lock().unwrap();
            if let Some(groups) = groups.as_ref() {
                if let Some(sink) = &groups.metrics {
                    sink(groups.of(color), status, started.elapsed().as_secs_f64());
                }
            }
        }
        if production {
            self.inner.production_log.lock().unwrap().push(Served {
                at_ms: self.inner.started.elapsed().as_millis() as u64,
                color,
                version: behavior.version().to_string(),
                status,
            });
        }
        let content_type = if body.starts_with('{') {
            "application/json"
        } else {
            "text/plain"
        };
        let mut r = response(status, content_type, body);
        if let Ok(v) = behavior.version().parse() {
            r.headers_mut().insert("x-version", v);
        }
        r
    }

    /// Everything production served so far.
    pub fn production_log(&self) -> Vec<Served> {
        self.inner.production_log.lock().unwrap().clone()
    }

    /// The image blue runs now.
    pub fn blue(&self) -> Option<String> {
        self.inner.routes.lock().unwrap().blue.clone()
    }

    /// Percent of production traffic on green now.
    pub fn production_green_percent(&self) -> u8 {
        let routes = self.inner.routes.lock().unwrap();
        if routes.green.is_some() {
            routes.production_green_percent
        } else {
            0
        }
    }
}

impl Traffic for LoadBalancer {
    fn install_green(&self, _group: &str, image: &str) {
        let mut routes = self.inner.routes.lock().unwrap();
        routes.green = Some(image.to_string());
        routes.test_to_green = false;
        routes.production_green_percent = 0;
    }

    fn test_to_green(&self, _group: &str) {
        self.inner.routes.lock().unwrap().test_to_green = true;
        self.test_route_to(Color::Green);
    }

    fn production_to_green(&self, _group: &str, percent: u8) {
        self.inner.routes.lock().unwrap().production_green_percent = percent.min(100);
    }

    fn promote(&self, _group: &str) {
        let mut routes = self.inner.routes.lock().unwrap();
        if let Some(green) = routes.green.take() {
            routes.blue = Some(green);
        }
        routes.test_to_green = false;
        routes.production_green_percent = 0;
        drop(routes);
        if let Some(groups) = self.inner.target_groups.lock().unwrap().as_mut() {
            groups.live = 1 - groups.live;
        }
        self.test_route_to(Color::Blue);
    }

    fn rollback(&self, _group: &str) {
        let mut routes = self.inner.routes.lock().unwrap();
        routes.green = None;
        routes.test_to_green = false;
        routes.production_green_percent = 0;
        drop(routes);
        self.test_route_to(Color::Blue);
    }

    fn target_groups(&self, _group: &str) -> Option<(String, String)> {
        let groups = self.inner.target_groups.lock().unwrap();
        groups.as_ref().map(|g| {
            (
                g.of(Color::Blue).to_string(),
                g.of(Color::Green).to_string(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaviors_answer_as_documented() {
        let healthy = Behavior::Healthy {
            version: "v1".into(),
        };
        assert_eq!(
            healthy.answer(true, "/version"),
            (200, r#"{"version":"v1"}"#.into())
        );
        let broken = Behavior::Broken {
            version: "v2".into(),
        };
        assert_eq!(broken.answer(false, "/health").0, 503);
        let degrading = Behavior::Degrading {
            version: "v3".into(),
        };
        assert_eq!(
            degrading.answer(false, "/").0,
            200,
            "passes on the test listener"
        );
        assert_eq!(
            degrading.answer(true, "/").0,
            500,
            "fails under production traffic"
        );
        assert_eq!(degrading.answer(true, "/health").0, 200);
        let slow = Behavior::Slow {
            version: "v4".into(),
        };
        assert_eq!(slow.answer(true, "/").0, 200);
        assert_eq!(slow.latency(true, "/"), BASE_LATENCY * 10);
        assert_eq!(
            slow.latency(true, "/health"),
            BASE_LATENCY,
            "passes its smoke checks"
        );
        assert_eq!(slow.latency(false, "/"), BASE_LATENCY);
    }
}
