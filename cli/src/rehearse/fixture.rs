//! The rehearsal's fixed facts: the account, repository, alarm and hook names, and
//! how the sample app behaves for an image tag.

use greenlight_standins::lb::Behavior;

pub(crate) const REPOSITORY: &str = "web-app";

pub(crate) const ACCOUNT: &str = "123456789012";

pub(crate) const HOOK_PREFIX: &str = "CodeDeployHook_greenlight-";

pub(crate) const ALARM: &str = "web-5xx";

pub(crate) const ECS_HOOK: &str = "greenlight-hook-ecs";

/// Which services a rehearsal stack runs: `web` alone (scenarios 1 to 6), or
/// `web-staging` and `web-prod`, which promotes from it (scenario 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fixture {
    Single,
    Promotion,
}

/// The staging service's alarm (scenario 7).
pub(crate) const STAGING_ALARM: &str = "web-staging-5xx";

/// Where promotion soaks are scheduled in the emulator (GREENLIGHT_SCHEDULE_GROUP).
pub(crate) const SCHEDULE_GROUP: &str = "greenlight-promotions";

/// The release ledger's table in the emulator (GREENLIGHT_LEDGER_TABLE).
pub(crate) const LEDGER_TABLE: &str = "greenlight-ledger";

/// The analysis window in the rehearsal (seconds, its compressed minutes).
pub(crate) const ANALYSIS_WINDOW_SECONDS: u64 = 5;

pub(crate) fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

pub(crate) fn image_uri(digest: &str) -> String {
    format!("{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{REPOSITORY}@{digest}")
}

pub(crate) fn behavior_for(tag: &str) -> Behavior {
    let version = tag.to_string();
    if tag.ends_with("-broken") {
        Behavior::Broken { version }
    } else if tag.ends_with("-degrades") {
        Behavior::Degrading { version }
    } else if tag.ends_with("-slow") {
        Behavior::Slow { version }
    } else {
        Behavior::Healthy { version }
    }
}
