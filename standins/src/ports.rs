//! What a stand-in engine drives and tells: the load balancer's traffic, the hook
//! functions it invokes, EventBridge (state-change events) and the timeline.

use std::sync::Arc;

use serde_json::Value;

use crate::http::BoxFuture;

/// Where traffic goes: the stand-in drives a load balancer through this.
pub trait Traffic: Send + Sync {
    /// Install: the replacement (green) task set runs `image`.
    fn install_green(&self, group: &str, image: &str);
    /// AllowTestTraffic: the test listener serves green.
    fn test_to_green(&self, group: &str);
    /// AllowTraffic steps: `percent` of production traffic to green.
    fn production_to_green(&self, group: &str, percent: u8);
    /// Success: green becomes the original (blue) task set.
    fn promote(&self, group: &str);
    /// Rollback: every listener back to blue, green removed.
    fn rollback(&self, group: &str);
    /// The target groups (ARNs) blue and green register in now, if the load balancer
    /// has any: what `taskSetsInfo` reports.
    fn target_groups(&self, _group: &str) -> Option<(String, String)> {
        None
    }
}

/// Traffic that goes nowhere: for benchmarks and tests that need no load balancer.
pub struct NoTraffic;

pub type HookInvoker = Arc<dyn Fn(String, Value) -> BoxFuture<()> + Send + Sync>;

pub type EventSink = Arc<dyn Fn(Value) + Send + Sync>;

pub type Observer = Arc<dyn Fn(String) + Send + Sync>;

impl Traffic for NoTraffic {
    fn install_green(&self, _: &str, _: &str) {}
    fn test_to_green(&self, _: &str) {}
    fn production_to_green(&self, _: &str, _: u8) {}
    fn promote(&self, _: &str) {}
    fn rollback(&self, _: &str) {}
}
