//! One-time EventBridge Scheduler schedules: how a promotion's soak waits with no
//! process and no polling. A schedule `at(…)` puts the promotion's event on the
//! event bus when the soak ends (target: the bus, through the scheduler's role;
//! "Using universal targets"/"EventBridge PutEvents" in the Scheduler user guide)
//! and deletes itself (`ActionAfterCompletion: DELETE`). Its name is derived from
//! what it promotes, so a second completion event meets `ConflictException`: one
//! schedule, one promotion.

use aws_sdk_scheduler::types::{
    ActionAfterCompletion, EventBridgeParameters, FlexibleTimeWindow, FlexibleTimeWindowMode,
    Target,
};

use super::{retry, AwsError, LazyClient, SdkConfig};

/// Env vars the template sets for deploy-on-push.
pub const ENV_SCHEDULE_GROUP: &str = "GREENLIGHT_SCHEDULE_GROUP";
pub const ENV_SCHEDULER_ROLE: &str = "GREENLIGHT_SCHEDULER_ROLE_ARN";
pub const ENV_EVENT_BUS: &str = "GREENLIGHT_EVENT_BUS_ARN";

/// Where schedules go and what they put on the bus.
#[derive(Debug, Clone)]
pub struct Scheduler {
    client: LazyClient<aws_sdk_scheduler::Client>,
    pub group: String,
    pub role_arn: String,
    pub bus_arn: String,
}

/// One schedule to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTime {
    /// At most 64 characters of `[0-9a-zA-Z-_.]`.
    pub name: String,
    /// When, in seconds since the epoch (UTC).
    pub at_seconds: i64,
    /// The event's `source` and `detail-type`, and its `detail` (JSON text).
    pub source: String,
    pub detail_type: String,
    pub detail: String,
}

/// What became of a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheduled {
    Created,
    /// A schedule of that name exists: an earlier delivery created it.
    AlreadyThere,
}

impl Scheduler {
    pub fn new(sdk: &SdkConfig, group: &str, role_arn: &str, bus_arn: &str) -> Scheduler {
        Scheduler {
            client: LazyClient::deferred(sdk, aws_sdk_scheduler::Client::new),
            group: group.into(),
            role_arn: role_arn.into(),
            bus_arn: bus_arn.into(),
        }
    }

    /// From the env vars; `None` (with the missing one named in the log) when any
    /// is unset: promotions with a soak then cannot wait and are refused with why.
    pub fn from_env(sdk: &SdkConfig) -> Option<Scheduler> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        match (
            var(ENV_SCHEDULE_GROUP),
            var(ENV_SCHEDULER_ROLE),
            var(ENV_EVENT_BUS),
        ) {
            (Some(group), Some(role_arn), Some(bus_arn)) => {
                Some(Scheduler::new(sdk, &group, &role_arn, &bus_arn))
            }
            _ => {
                tracing::info!("{ENV_SCHEDULE_GROUP}, {ENV_SCHEDULER_ROLE} and {ENV_EVENT_BUS} are not all set: promotion soaks cannot be scheduled");
                None
            }
        }
    }

    /// CreateSchedule, once per name.
    pub async fn create(&self, schedule: &OneTime) -> Result<Scheduled, AwsError> {
        let expression = format!("at({})", utc(schedule.at_seconds));
        let expression = &expression;
        let invalid = |e: aws_sdk_scheduler::error::BuildError| {
            AwsError::unexpected("EventBridge Scheduler", "CreateSchedule", e.to_string())
        };
        let target = Target::builder()
            .arn(&self.bus_arn)
            .role_arn(&self.role_arn)
            .input(&schedule.detail)
            .event_bridge_parameters(
                EventBridgeParameters::builder()
                    .source(&schedule.source)
                    .detail_type(&schedule.detail_type)
                    .build()
                    .map_err(invalid)?,
            )
            .build()
            .map_err(invalid)?;
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(invalid)?;
        let result = retry::send("EventBridge Scheduler", "CreateSchedule", || {
            self.client
                .get()
                .create_schedule()
                .name(&schedule.name)
                .group_name(&self.group)
                .schedule_expression(expression)
                .schedule_expression_timezone("UTC")
                .action_after_completion(ActionAfterCompletion::Delete)
                .flexible_time_window(window.clone())
                .target(target.clone())
                .send()
        })
        .await;
        match result {
            Ok(_) => Ok(Scheduled::Created),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conflict_exception()) =>
            {
                Ok(Scheduled::AlreadyThere)
            }
            Err(e) => Err(AwsError::from_sdk(
                "EventBridge Scheduler",
                "CreateSchedule",
                e,
            )),
        }
    }
}

/// `yyyy-mm-ddThh:mm:ss`, as `at(…)` takes it.
fn utc(seconds: i64) -> String {
    aws_smithy_types::DateTime::from_secs(seconds)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .map(|t| t.chars().take(19).collect())
        .unwrap_or_default()
}
