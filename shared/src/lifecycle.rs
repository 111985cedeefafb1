//! CodeDeploy ECS lifecycle events that can carry a hook.
//!
//! Order per the CodeDeploy user guide ("AppSpec 'hooks' section for an Amazon ECS
//! deployment"): BeforeInstall → Install → AfterInstall → AllowTestTraffic →
//! AfterAllowTestTraffic → BeforeAllowTraffic → AllowTraffic → AfterAllowTraffic.
//! Install, AllowTestTraffic and AllowTraffic are run by CodeDeploy and take no hook.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum LifecycleEvent {
    BeforeInstall,
    AfterInstall,
    AfterAllowTestTraffic,
    BeforeAllowTraffic,
    AfterAllowTraffic,
}

/// Which listener a lifecycle event's smoke checks should aim at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrafficRoute {
    /// The test listener: serves the replacement (green) task set from AllowTestTraffic on.
    Test,
    /// The production listener: serves green only after AllowTraffic.
    Production,
}

impl LifecycleEvent {
    pub const ALL: [LifecycleEvent; 5] = [
        LifecycleEvent::BeforeInstall,
        LifecycleEvent::AfterInstall,
        LifecycleEvent::AfterAllowTestTraffic,
        LifecycleEvent::BeforeAllowTraffic,
        LifecycleEvent::AfterAllowTraffic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleEvent::BeforeInstall => "BeforeInstall",
            LifecycleEvent::AfterInstall => "AfterInstall",
            LifecycleEvent::AfterAllowTestTraffic => "AfterAllowTestTraffic",
            LifecycleEvent::BeforeAllowTraffic => "BeforeAllowTraffic",
            LifecycleEvent::AfterAllowTraffic => "AfterAllowTraffic",
        }
    }

    /// The listener whose traffic this event sees. Only AfterAllowTraffic comes after
    /// production traffic moved; every earlier event can reach green only on the test
    /// listener (and before AllowTestTraffic, not even there).
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
#[error("{0:?} is not a lifecycle event with a hook (one of BeforeInstall, AfterInstall, AfterAllowTestTraffic, BeforeAllowTraffic, AfterAllowTraffic)")]
pub struct UnknownLifecycleEvent(pub String);

impl FromStr for LifecycleEvent {
    type Err = UnknownLifecycleEvent;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LifecycleEvent::ALL
            .into_iter()
            .find(|e| e.as_str() == s.trim())
            .ok_or_else(|| UnknownLifecycleEvent(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_rejected() {
        for event in LifecycleEvent::ALL {
            assert_eq!(event.as_str().parse::<LifecycleEvent>(), Ok(event));
        }
        let err = "Install".parse::<LifecycleEvent>().unwrap_err();
        assert!(err
            .to_string()
            .contains("\"Install\" is not a lifecycle event with a hook"));
    }

    #[test]
    fn only_after_allow_traffic_sees_production() {
        let production: Vec<_> = LifecycleEvent::ALL
            .into_iter()
            .filter(|e| e.route() == TrafficRoute::Production)
            .collect();
        assert_eq!(production, vec![LifecycleEvent::AfterAllowTraffic]);
    }
}
