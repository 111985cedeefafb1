//! The analysis engine: judges green against blue under production traffic, interval
//! by interval, from the load balancer's own CloudWatch metrics. Pure: the caller
//! fetches the numbers (GetMetricData, raw MetricStat queries) and hands them in, so
//! every rule here is unit-tested without AWS.
//!
//! What the data means, from the ELB documentation (CloudWatch metrics for your
//! Application Load Balancer):
//! - ELB publishes a metric only when there is data. A minute with requests but no
//!   `HTTPCode_Target_5XX_Count` datapoint had zero 5xx; a minute without
//!   `RequestCount` had no traffic at all: no data, never a pass.
//! - Datapoints land a minute or two late: an interval is judged only once it ended
//!   [`AnalysisConfig::settle`] ago ([`intervals_to_judge`]).
//! - Smoke checks on the test listener also reach green's target group: the caller
//!   says how many requests were Greenlight's own, and they do not count.
//! - Once all production traffic is on green, blue serves nothing: blue's figures come
//!   from its own window just before the deployment (the baseline).

mod judge;
mod model;
mod window;

pub use judge::*;
pub use model::*;
pub use window::*;

#[cfg(test)]
mod tests;
