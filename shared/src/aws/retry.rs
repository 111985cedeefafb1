//! Retrying throttled and failing AWS calls within the time the invocation has left.
//!
//! Every adapter call goes through [`send`]. Throttling (`ThrottlingException`,
//! `Throttling`, `TooManyRequestsException`, `RequestLimitExceeded`, ...), HTTP 5xx,
//! timeouts and connection failures are retried with exponential backoff and full
//! jitter (base `BASE_BACKOFF`, capped at `MAX_BACKOFF`): jitter spreads the
//! retries of many concurrent calls, so a throttled account is not hit again in
//! lockstep.
//!
//! How long: a function sets its invocation's deadline with [`within`] (the Lambda
//! deadline less a margin to return or report). Retries go on while a further
//! attempt can still start before it; an attempt in flight at the deadline is cut
//! off and reported as a timeout. Without a deadline (the CLI, tests) at most
//! `ATTEMPTS_WITHOUT_DEADLINE` attempts are made.
//!
//! The SDK's own retry loop is switched off (`sdk_retry_config`) so there is one
//! retry policy, one place that logs each retry with the operation's name, and no
//! hidden multiplication of attempts.

use std::future::Future;
use std::time::Duration;

use aws_sdk_codedeploy::config::http::HttpResponse;
use aws_sdk_codedeploy::error::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::retry::RetryConfig;
use tokio::time::Instant;

use super::error::is_transient;
use super::AwsError;

/// First backoff (before jitter).
pub(crate) const BASE_BACKOFF: Duration = Duration::from_millis(100);
/// Longest single backoff (before jitter).
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(3);
/// Attempts made when no deadline is set.
pub(crate) const ATTEMPTS_WITHOUT_DEADLINE: u32 = 6;
/// A retry is not started with less time than this left before the deadline.
const MIN_ATTEMPT_TIME: Duration = Duration::from_millis(50);

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `future` with `deadline` as the limit for every AWS call's retries in it.
/// Spawned tasks do not inherit it: wrap their futures too.
pub async fn within<F: Future>(deadline: Instant, future: F) -> F::Output {
    DEADLINE.scope(deadline, future).await
}

/// The deadline set by [`within`] for the current task, if any.
pub fn deadline() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok()
}

/// What an event handler keeps back from Lambda's deadline to log and return its
/// error (so Lambda retries the event) instead of being killed mid-retry.
pub const RETURN_MARGIN: Duration = Duration::from_secs(2);

/// Runs `future` (and its AWS retries) only until `by`; `None` when it was cut off.
pub async fn bounded<F: Future>(by: Instant, future: F) -> Option<F::Output> {
    within(by, tokio::time::timeout_at(by, future)).await.ok()
}

/// The budget of an invocation whose deadline is unknown, when the environment does
/// not name the function's timeout.
pub(crate) const UNKNOWN_DEADLINE_BUDGET: Duration = Duration::from_secs(60);

/// The invocation's deadline as a tokio instant.
///
/// A deadline already past when the event arrives is not a deadline but a local host
/// that sends a fixed number (`cargo lambda watch` sends 600000 ms, an instant in
/// 1970): it is treated as unknown, said once in the log, and the invocation gets the
/// function's configured timeout (`AWS_LAMBDA_FUNCTION_TIMEOUT`, as the Lambda runtime
/// interface emulator names it) or `UNKNOWN_DEADLINE_BUDGET`.
pub fn invocation_deadline(context: &lambda_runtime::Context) -> Instant {
    let configured = std::env::var("AWS_LAMBDA_FUNCTION_TIMEOUT")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map(Duration::from_secs);
    let (remaining, unknown) =
        remaining_time(context.deadline(), std::time::SystemTime::now(), configured);
    if unknown {
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            tracing::warn!(
                budget_seconds = remaining.as_secs(),
                "the invocation's deadline had passed before it arrived (a local runtime host sending a fixed deadline?): treated as unknown"
            )
        });
    }
    Instant::now() + remaining
}

/// Time left before `deadline`, and whether the deadline was unknown (already past).
pub(crate) fn remaining_time(
    deadline: std::time::SystemTime,
    now: std::time::SystemTime,
    configured: Option<Duration>,
) -> (Duration, bool) {
    match deadline.duration_since(now) {
        Ok(left) if !left.is_zero() => (left, false),
        _ => (configured.unwrap_or(UNKNOWN_DEADLINE_BUDGET), true),
    }
}

/// `deadline` less `margin`, keeping at least half of the time left.
pub fn less_margin(deadline: Instant, margin: Duration) -> Instant {
    let left = deadline.saturating_duration_since(Instant::now());
    deadline - margin.min(left / 2)
}

/// The SDK retry configuration Greenlight uses: one attempt per SDK call, because
/// [`send`] does the retrying.
pub(crate) fn sdk_retry_config() -> RetryConfig {
    RetryConfig::disabled()
}

/// The pause before attempt `attempt + 1`: full jitter over an exponential ceiling.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let ceiling = BASE_BACKOFF
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(MAX_BACKOFF);
    ceiling.mul_f64(fastrand::f64())
}

/// Sends one AWS request, retrying transient failures within the deadline, and
/// reports a failure as an [`AwsError`]: how every adapter calls AWS. `call` builds
/// and sends the request afresh each time.
pub async fn call<T, E, F, Fut>(
    service: &'static str,
    operation: &'static str,
    call: F,
) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    send(service, operation, call)
        .await
        .map_err(|e| AwsError::from_sdk(service, operation, e))
}

/// [`call`], keeping the SDK's error: for the few callers that read a modeled
/// error (an already-answered hook, an already-finished deployment) before
/// reporting the rest.
pub async fn send<T, E, F, Fut>(
    service: &'static str,
    operation: &'static str,
    mut call: F,
) -> Result<T, SdkError<E, HttpResponse>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let deadline = deadline();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let result = match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, call()).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!(
                        service,
                        operation,
                        attempt,
                        "AWS call cut off at the invocation's deadline"
                    );
                    return Err(SdkError::timeout_error(format!(
                        "{service} {operation} did not answer before the invocation's deadline ({attempt} attempt(s))"
                    )));
                }
            },
            None => call().await,
        };
        let err = match result {
            Ok(output) => return Ok(output),
            Err(err) if is_transient(&err) => err,
            Err(err) => return Err(err),
        };
        let pause = backoff(attempt);
        let out_of_time = match deadline {
            Some(deadline) => Instant::now() + pause + MIN_ATTEMPT_TIME >= deadline,
            None => attempt >= ATTEMPTS_WITHOUT_DEADLINE,
        };
        let code = err.code().unwrap_or("transient error");
        if out_of_time {
            tracing::warn!(
                service,
                operation,
                attempt,
                code,
                "AWS call still failing; no time left to retry"
            );
            return Err(err);
        }
        tracing::warn!(
            service,
            operation,
            attempt,
            code,
            pause_ms = pause.as_millis() as u64,
            "AWS call throttled or failed transiently; retrying"
        );
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_codedeploy::operation::list_applications::ListApplicationsError;
    use aws_smithy_types::body::SdkBody;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn throttled() -> SdkError<ListApplicationsError, HttpResponse> {
        let meta = aws_smithy_types::error::ErrorMetadata::builder()
            .code("ThrottlingException")
            .message("Rate exceeded")
            .build();
        SdkError::service_error(
            ListApplicationsError::generic(meta),
            HttpResponse::new(400u16.try_into().unwrap(), SdkBody::empty()),
        )
    }

    fn invalid() -> SdkError<ListApplicationsError, HttpResponse> {
        let meta = aws_smithy_types::error::ErrorMetadata::builder()
            .code("InvalidNextTokenException")
            .build();
        SdkError::service_error(
            ListApplicationsError::generic(meta),
            HttpResponse::new(400u16.try_into().unwrap(), SdkBody::empty()),
        )
    }

    #[test]
    fn a_deadline_already_past_is_unknown_and_gets_a_budget() {
        use std::time::{SystemTime, UNIX_EPOCH};
        let now = SystemTime::now();
        // What cargo lambda watch sends: 600000 ms after the epoch.
        let fixed = UNIX_EPOCH + Duration::from_millis(600_000);
        assert_eq!(
            remaining_time(fixed, now, None),
            (UNKNOWN_DEADLINE_BUDGET, true)
        );
        assert_eq!(
            remaining_time(fixed, now, Some(Duration::from_secs(600))),
            (Duration::from_secs(600), true)
        );
        let real = now + Duration::from_secs(9);
        assert_eq!(
            remaining_time(real, now, None),
            (Duration::from_secs(9), false)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn bounded_cuts_a_future_that_never_ends() {
        let by = Instant::now() + Duration::from_secs(2);
        assert_eq!(bounded(by, std::future::pending::<()>()).await, None);
        assert_eq!(bounded(by, async { 7 }).await, Some(7));
    }

    #[test]
    fn backoff_grows_and_stays_under_the_cap() {
        for attempt in 1..20 {
            let ceiling = BASE_BACKOFF
                .saturating_mul(2u32.saturating_pow(attempt - 1))
                .min(MAX_BACKOFF);
            for _ in 0..50 {
                assert!(backoff(attempt) <= ceiling);
            }
        }
        // Full jitter: not every pause is the ceiling.
        let pauses: Vec<Duration> = (0..20).map(|_| backoff(5)).collect();
        assert!(pauses.iter().any(|p| *p != pauses[0]));
    }

    #[test]
    fn throttling_and_server_errors_are_transient_client_errors_are_not() {
        assert!(is_transient(&throttled()));
        assert!(!is_transient(&invalid()));
        let server = SdkError::service_error(
            ListApplicationsError::generic(aws_smithy_types::error::ErrorMetadata::default()),
            HttpResponse::new(503u16.try_into().unwrap(), SdkBody::empty()),
        );
        assert!(is_transient(&server));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_the_call_succeeds_within_the_deadline() {
        let calls = AtomicU32::new(0);
        let deadline = Instant::now() + Duration::from_secs(60);
        let result = within(
            deadline,
            send("CodeDeploy", "ListApplications", || async {
                if calls.fetch_add(1, Ordering::SeqCst) < 9 {
                    Err(throttled())
                } else {
                    Ok(7)
                }
            }),
        )
        .await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 10);
        assert!(Instant::now() < deadline);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_before_the_deadline_when_throttling_lasts() {
        let calls = AtomicU32::new(0);
        let start = Instant::now();
        // Longer than the most the first ATTEMPTS_WITHOUT_DEADLINE backoffs can add up
        // to (0.1 + 0.2 + 0.4 + 0.8 + 1.6 + 3 s), so more attempts always fit,
        // whatever the jitter draws.
        let deadline = start + Duration::from_secs(10);
        let result: Result<(), _> = within(
            deadline,
            send("CodeDeploy", "ListApplications", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(throttled())
            }),
        )
        .await;
        let err = result.unwrap_err();
        assert_eq!(err.code(), Some("ThrottlingException"));
        assert!(Instant::now() <= deadline, "retried past the deadline");
        assert!(calls.load(Ordering::SeqCst) > ATTEMPTS_WITHOUT_DEADLINE);
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_deadline_attempts_are_bounded_and_other_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = send("CodeDeploy", "ListApplications", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(throttled())
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), ATTEMPTS_WITHOUT_DEADLINE);

        let calls = AtomicU32::new(0);
        let result: Result<(), _> = send("CodeDeploy", "ListApplications", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(invalid())
        })
        .await;
        assert_eq!(
            result.unwrap_err().code(),
            Some("InvalidNextTokenException")
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_hanging_at_the_deadline_is_cut_off() {
        let deadline = Instant::now() + Duration::from_secs(2);
        let result: Result<(), SdkError<ListApplicationsError, HttpResponse>> = within(
            deadline,
            send("CodeDeploy", "ListApplications", || async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(())
            }),
        )
        .await;
        assert!(matches!(result, Err(SdkError::TimeoutError(_))));
        assert_eq!(Instant::now(), deadline);
    }
}
