//! IAM judged offline, by AWS's own rules: the policies a template grants
//! ([`template`]) held against the Service Authorization Reference ([`reference`]) by
//! [`judge`], offline: `greenlight preflight --template FILE` and the test command use
//! it, so a grant AWS would refuse fails before anyone deploys. In an account,
//! preflight also asks IAM's own policy simulator ([`simulator`]).

pub mod arn;
pub mod calls;
pub mod evaluate;
pub mod judge;
pub mod reference;
mod resolve;
pub mod simulator;
pub mod template;

pub use judge::{judge, Problem};
pub use reference::Reference;
pub use simulator::{simulate, Simulated};
pub use template::{Template, TemplateError};
