//! Typed inputs of the Greenlight functions.
//!
//! Every function receives raw JSON and turns it into one of these types here. A
//! malformed event is an [`EventError`] naming the field (`detail.image-digest:
//! ...`); a foreign event (another source or detail-type) is rejected naming what
//! it was and what the function accepts. Nothing here panics on input.
//!
//! Only the fields a function uses are read: an event that lacks a field nobody
//! needs (a `configuration`, a `Signature`, a `timestamp` in an unusual format) is
//! accepted, and a field that is needed and missing is a typed error naming it.
//! The EventBridge envelope and the CodeDeploy hook payload and state-change detail
//! are `aws_lambda_events` types (lenient already); the alarm detail, the SNS
//! record and the ECR "Image Action" detail are defined here, because the
//! `aws_lambda_events` types require fields AWS does not always send (composite
//! alarms, alarms without a description, hand-relayed SNS messages).
//!
//! `events/upstream/` holds AWS's own samples (its documentation, and the
//! `aws_lambda_events` fixtures), each parsed in the tests below.

mod alarm;
mod deployment;
mod ecr;
mod hook;
mod parse;
mod promotion;

pub use alarm::*;
pub use deployment::*;
pub use ecr::*;
pub use hook::*;
pub use parse::{
    EventError, ALARM_STATE_CHANGE, CLOUDWATCH_SOURCE, CODEDEPLOY_SOURCE, DEPLOYMENT_STATE_CHANGE,
    ECR_IMAGE_ACTION, ECR_SOURCE, ECS_DEPLOYMENT_STATE_CHANGE, ECS_SOURCE,
};
pub use promotion::*;

#[cfg(test)]
mod tests;
