//! The points of a blue/green deployment where Greenlight's hook can run, on both
//! deployment paths. One type, two vocabularies:
//!
//! | CodeDeploy lifecycle event | ECS-native stage | what green gets |
//! |---|---|---|
//! | `BeforeInstall` | `PRE_SCALE_UP` | green does not exist yet |
//! | `AfterInstall` | `POST_SCALE_UP` | green runs; no test traffic (CodeDeploy: the test listener still serves blue) |
//! | — | `TEST_TRAFFIC_SHIFT` | test traffic moving to green |
//! | `AfterAllowTestTraffic` | `POST_TEST_TRAFFIC_SHIFT` | all test traffic on green: where smoke checks belong |
//! | `BeforeAllowTraffic` | `PRE_PRODUCTION_TRAFFIC_SHIFT` | before production traffic moves (ECS: before each canary/linear step) |
//! | — | `PRODUCTION_TRAFFIC_SHIFT` | production traffic moving (ECS: at each step) |
//! | `AfterAllowTraffic` | `POST_PRODUCTION_TRAFFIC_SHIFT` | all production traffic on green |
//! | — | `RECONCILE_SERVICE` | ECS reconciling a service with more than one active revision |
//!
//! CodeDeploy's order [user guide, "AppSpec 'hooks' section for an Amazon ECS
//! deployment"]: BeforeInstall → (Install) → AfterInstall → (AllowTestTraffic) →
//! AfterAllowTestTraffic → BeforeAllowTraffic → (AllowTraffic) → AfterAllowTraffic.
//! ECS's [developer guide, "Lifecycle hooks for Amazon ECS service deployments"]:
//! RECONCILE_SERVICE, PRE_SCALE_UP, (SCALE_UP), POST_SCALE_UP, TEST_TRAFFIC_SHIFT,
//! POST_TEST_TRAFFIC_SHIFT, PRE_PRODUCTION_TRAFFIC_SHIFT, PRODUCTION_TRAFFIC_SHIFT,
//! POST_PRODUCTION_TRAFFIC_SHIFT, (BAKE_TIME), (CLEAN_UP); the stages in brackets take
//! no hook. Configuration accepts either name; the CodeDeploy name is the canonical
//! one where both exist.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum LifecycleEvent {
    BeforeInstall,
    AfterInstall,
    AfterAllowTestTraffic,
    BeforeAllowTraffic,
    AfterAllowTraffic,
    /// ECS-native only.
    ReconcileService,
    /// ECS-native only.
    TestTrafficShift,
    /// ECS-native only.
    ProductionTrafficShift,
}

/// Which listener a lifecycle event's smoke checks should aim at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrafficRoute {
    /// The test listener (rule): serves green from the test traffic shift on.
    Test,
    /// The production listener (rule): serves green only once all traffic moved.
    Production,
}

impl LifecycleEvent {
    pub const ALL: [LifecycleEvent; 8] = [
        LifecycleEvent::ReconcileService,
        LifecycleEvent::BeforeInstall,
        LifecycleEvent::AfterInstall,
        LifecycleEvent::TestTrafficShift,
        LifecycleEvent::AfterAllowTestTraffic,
        LifecycleEvent::BeforeAllowTraffic,
        LifecycleEvent::ProductionTrafficShift,
        LifecycleEvent::AfterAllowTraffic,
    ];

    /// The name used in configuration and messages: CodeDeploy's where it has one.
    pub fn as_str(self) -> &'static str {
        self.codedeploy_name().unwrap_or(self.ecs_name())
    }

    /// CodeDeploy's lifecycle event name, when CodeDeploy has this point.
    pub fn codedeploy_name(self) -> Option<&'static str> {
        match self {
            LifecycleEvent::BeforeInstall => Some("BeforeInstall"),
            LifecycleEvent::AfterInstall => Some("AfterInstall"),
            LifecycleEvent::AfterAllowTestTraffic => Some("AfterAllowTestTraffic"),
            LifecycleEvent::BeforeAllowTraffic => Some("BeforeAllowTraffic"),
            LifecycleEvent::AfterAllowTraffic => Some("AfterAllowTraffic"),
            _ => None,
        }
    }

    /// ECS's lifecycle stage name.
    pub fn ecs_name(self) -> &'static str {
        match self {
            LifecycleEvent::ReconcileService => "RECONCILE_SERVICE",
            LifecycleEvent::BeforeInstall => "PRE_SCALE_UP",
            LifecycleEvent::AfterInstall => "POST_SCALE_UP",
            LifecycleEvent::TestTrafficShift => "TEST_TRAFFIC_SHIFT",
            LifecycleEvent::AfterAllowTestTraffic => "POST_TEST_TRAFFIC_SHIFT",
            LifecycleEvent::BeforeAllowTraffic => "PRE_PRODUCTION_TRAFFIC_SHIFT",
            LifecycleEvent::ProductionTrafficShift => "PRODUCTION_TRAFFIC_SHIFT",
            LifecycleEvent::AfterAllowTraffic => "POST_PRODUCTION_TRAFFIC_SHIFT",
        }
    }

    /// The listener whose traffic this point sees. Only once all production traffic
    /// moved does the production listener serve green alone; every earlier point
    /// reaches green only through the test listener (and before the test traffic
    /// shift, not even there).
    pub fn route(self) -> TrafficRoute {
        match self {
            LifecycleEvent::AfterAllowTraffic => TrafficRoute::Production,
            _ => TrafficRoute::Test,
        }
    }
}

impl fmt::Display for LifecycleEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a lifecycle event with a hook (CodeDeploy: BeforeInstall, AfterInstall, AfterAllowTestTraffic, BeforeAllowTraffic, AfterAllowTraffic; ECS: RECONCILE_SERVICE, PRE_SCALE_UP, POST_SCALE_UP, TEST_TRAFFIC_SHIFT, POST_TEST_TRAFFIC_SHIFT, PRE_PRODUCTION_TRAFFIC_SHIFT, PRODUCTION_TRAFFIC_SHIFT, POST_PRODUCTION_TRAFFIC_SHIFT)")]
pub struct UnknownLifecycleEvent(pub String);

impl FromStr for LifecycleEvent {
    type Err = UnknownLifecycleEvent;

    /// Either vocabulary.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        LifecycleEvent::ALL
            .into_iter()
            .find(|e| e.codedeploy_name() == Some(s) || e.ecs_name() == s)
            .ok_or_else(|| UnknownLifecycleEvent(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_names_round_trip_and_unknown_names_are_rejected() {
        for event in LifecycleEvent::ALL {
            assert_eq!(event.as_str().parse::<LifecycleEvent>(), Ok(event));
            assert_eq!(event.ecs_name().parse::<LifecycleEvent>(), Ok(event));
        }
        for stage in [
            "SCALE_UP",
            "BAKE_TIME",
            "CLEAN_UP",
            "Install",
            "AllowTraffic",
        ] {
            let err = stage.parse::<LifecycleEvent>().unwrap_err();
            assert!(err
                .to_string()
                .contains("is not a lifecycle event with a hook"));
        }
    }

    #[test]
    fn codedeploy_names_map_to_their_ecs_counterparts() {
        let pairs: Vec<(&str, &str)> = LifecycleEvent::ALL
            .into_iter()
            .filter_map(|e| Some((e.codedeploy_name()?, e.ecs_name())))
            .collect();
        assert_eq!(
            pairs,
            [
                ("BeforeInstall", "PRE_SCALE_UP"),
                ("AfterInstall", "POST_SCALE_UP"),
                ("AfterAllowTestTraffic", "POST_TEST_TRAFFIC_SHIFT"),
                ("BeforeAllowTraffic", "PRE_PRODUCTION_TRAFFIC_SHIFT"),
                ("AfterAllowTraffic", "POST_PRODUCTION_TRAFFIC_SHIFT"),
            ]
        );
        assert_eq!(
            LifecycleEvent::TestTrafficShift.as_str(),
            "TEST_TRAFFIC_SHIFT"
        );
    }

    #[test]
    fn only_all_production_traffic_on_green_sees_production() {
        let production: Vec<_> = LifecycleEvent::ALL
            .into_iter()
            .filter(|e| e.route() == TrafficRoute::Production)
            .collect();
        assert_eq!(production, vec![LifecycleEvent::AfterAllowTraffic]);
    }
}
