//! Local stand-ins for the rehearsal (`greenlight rehearse`) and the benchmarks:
//! what the moto emulator lacks and what AWS would otherwise provide.
//!
//! - [`runtime`]: a Lambda Runtime API host that runs the functions' real binaries.
//! - [`cloudwatch`]: GetMetricData over rpc-v2-cbor, the protocol aws-sdk-cloudwatch speaks.
//! - [`codedeploy`]: a CodeDeploy stand-in speaking the real JSON 1.1 protocol.
//! - [`ecs`]: ECS-native blue/green service deployments (JSON 1.1), passing other ECS calls to the emulator.
//! - [`lb`]: a load balancer with production and test listeners, and the sample app.
//! - [`meter`]: call counts, latency and throttling in front of any endpoint.
//! - [`elb_fixture`]: a blue/green load balancer's ELBv2 resources in the emulator.
//! - [`ports`]: what a stand-in engine drives and tells (traffic, hooks, events, timeline).
//! - [`traffic`]: a record of what the stand-ins accept and answer, for the model check.
//!
//! Outside production code: no function and no `shared/` module depends on this crate.

pub mod cloudwatch;
pub mod codedeploy;
pub mod ecs;
pub mod elb_fixture;
pub mod http;
mod json11;
pub mod lb;
pub mod meter;
pub mod ports;
pub mod runtime;
pub mod traffic;

/// Now as RFC 3339 (UTC, seconds), for event `time` fields.
pub fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    rfc3339(secs)
}

/// Seconds since the epoch as RFC 3339 UTC (civil-from-days, Howard Hinnant's algorithm).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
    }
}
