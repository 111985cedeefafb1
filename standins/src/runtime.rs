//! A Lambda runtime API host: runs a function's real `bootstrap` binary as Lambda
//! does, and serves it the Runtime API
//! (<https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>):
//! `GET /2018-06-01/runtime/invocation/next`, `POST .../invocation/{id}/response`,
//! `POST .../invocation/{id}/error`, `POST .../runtime/init/error`.
//!
//! One process per function, invocations one at a time, as one Lambda execution
//! environment. Simplified: no concurrency scaling, no freeze/thaw, no extensions.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{oneshot, Notify};

use crate::http::{response, Handler, Request};

const PREFIX: &str = "/2018-06-01/runtime";

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvokeError {
    /// The function returned an error (the runtime's error payload).
    #[error("function error: {0}")]
    Function(Value),
    #[error("function did not answer within {0:?}")]
    Timeout(Duration),
    #[error("function failed to initialise: {0}")]
    Init(Value),
}

struct Pending {
    id: String,
    payload: Value,
    deadline: SystemTime,
    reply: oneshot::Sender<Result<Value, InvokeError>>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Pending>,
    in_flight: HashMap<String, oneshot::Sender<Result<Value, InvokeError>>>,
    first_next: Option<Instant>,
    init_error: Option<Value>,
}

/// Timing of one function process.
#[derive(Debug, Clone, Copy)]
pub struct ProcessTimes {
    pub spawned: Instant,
    /// First `GET /invocation/next`: the end of init.
    pub ready: Option<Instant>,
}

/// One function under the local Runtime API.
pub struct FunctionHost {
    pub name: String,
    pub timeout: Duration,
    state: Arc<Mutex<State>>,
    notify: Arc<Notify>,
    spawned: Instant,
    child: tokio::sync::Mutex<tokio::process::Child>,
    pid: Option<u32>,
    counter: std::sync::atomic::AtomicU64,
}

impl FunctionHost {
    /// Starts `binary` with the Runtime API environment plus `env`. Its stdout and
    /// stderr go to `log_file`, one line each, prefixed by nothing (JSON logs stay JSON).
    pub async fn start(
        name: &str,
        binary: &Path,
        env: &[(String, String)],
        timeout: Duration,
        log_file: Option<PathBuf>,
    ) -> std::io::Result<FunctionHost> {
        let state = Arc::new(Mutex::new(State::default()));
        let notify = Arc::new(Notify::new());
        let addr =
            crate::http::serve(handler(name.to_string(), state.clone(), notify.clone())).await?;
        let mut command = tokio::process::Command::new(binary);
        // Like Lambda: the function sees only its own environment, not the caller's
        // (which here may hold variables such as AWS_CA_BUNDLE that change init cost).
        command
            .env_clear()
            .envs(std::env::vars().filter(|(k, _)| k == "PATH" || k == "HOME"))
            .envs(runtime_env(name, addr, timeout))
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let spawned = Instant::now();
        let mut child = command.spawn()?;
        let pid = child.id();
        let sink = match log_file {
            Some(path) => Some(Arc::new(tokio::sync::Mutex::new(
                tokio::fs::File::create(path).await?,
            ))),
            None => None,
        };
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(sink) = &sink {
                        let mut file = sink.lock().await;
                        let _ = file.write_all(line.as_bytes()).await;
                        let _ = file.write_all(b"\n").await;
                    }
                }
            });
        }
        Ok(FunctionHost {
            name: name.to_string(),
            timeout,
            state,
            notify,
            spawned,
            child: tokio::sync::Mutex::new(child),
            pid,
            counter: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Invokes synchronously (RequestResponse) and waits for the answer.
    pub async fn invoke(&self, payload: Value) -> Result<Value, InvokeError> {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!(
            "{:08x}-{n:04x}-4000-8000-{:012x}",
            std::process::id(),
            now_ms()
        );
        let (reply, answer) = oneshot::channel();
        {
            let mut state = self.state.lock().unwrap();
            if let Some(error) = &state.init_error {
                return Err(InvokeError::Init(error.clone()));
            }
            state.queue.push_back(Pending {
                id,
                payload,
                deadline: SystemTime::now() + self.timeout,
                reply,
            });
        }
        self.notify.notify_waiters();
        self.notify.notify_one();
        match tokio::time::timeout(self.timeout + Duration::from_secs(2), answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(InvokeError::Function(Value::from(
                "the runtime dropped the invocation",
            ))),
            Err(_) => Err(InvokeError::Timeout(self.timeout)),
        }
    }

    /// When the process was spawned and when it first asked for work.
    pub fn times(&self) -> ProcessTimes {
        ProcessTimes {
            spawned: self.spawned,
            ready: self.state.lock().unwrap().first_next,
        }
    }

    /// Waits until the function finished init (first `next`), or `limit` passes.
    pub async fn wait_ready(&self, limit: Duration) -> Option<Duration> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(ready) = self.times().ready {
                return Some(ready - self.spawned);
            }
            if Instant::now() >= deadline || self.state.lock().unwrap().init_error.is_some() {
                return None;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Stops the process.
    pub async fn stop(&self) {
        let _ = self.child.lock().await.kill().await;
    }
}

fn runtime_env(name: &str, addr: SocketAddr, timeout: Duration) -> Vec<(String, String)> {
    vec![
        ("AWS_LAMBDA_RUNTIME_API".into(), addr.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME".into(), name.into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), "256".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
        (
            "AWS_LAMBDA_FUNCTION_TIMEOUT".into(),
            timeout.as_secs().to_string(),
        ),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME".into(),
            format!("/aws/lambda/{name}"),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME".into(), "local".into()),
        (
            "LAMBDA_TASK_ROOT".into(),
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
        ),
    ]
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}

fn handler(name: String, state: Arc<Mutex<State>>, notify: Arc<Notify>) -> Handler {
    Arc::new(move |request: Request| {
        let (name, state, notify) = (name.clone(), state.clone(), notify.clone());
        Box::pin(async move {
            let path = request
                .path
                .strip_prefix(PREFIX)
                .unwrap_or(&request.path)
                .to_string();
            if request.method == hyper::Method::GET && path == "/invocation/next" {
                return next(&name, &state, &notify).await;
            }
            if request.method == hyper::Method::POST && path == "/init/error" {
                let error: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
                let mut state = state.lock().unwrap();
                state.init_error = Some(error.clone());
                for pending in state.queue.drain(..) {
                    let _ = pending.reply.send(Err(InvokeError::Init(error.clone())));
                }
                return response(202, "application/json", r#"{"status":"OK"}"#);
            }
            if let Some(rest) = path.strip_prefix("/invocation/") {
                if let Some((id, kind)) = rest.split_once('/') {
                    let body: Value = serde_json::from_slice(&request.body).unwrap_or_else(|_| {
                        Value::from(String::from_utf8_lossy(&request.body).to_string())
                    });
                    let reply = state.lock().unwrap().in_flight.remove(id);
                    if let Some(reply) = reply {
                        let _ = reply.send(if kind == "response" {
                            Ok(body)
                        } else {
                            Err(InvokeError::Function(body))
                        });
                        return response(202, "application/json", r#"{"status":"OK"}"#);
                    }
                    return response(
                        404,
                        "application/json",
                        r#"{"errorMessage":"unknown request id"}"#,
                    );
                }
            }
            response(
                404,
                "application/json",
                r#"{"errorMessage":"not a runtime API path"}"#,
            )
        })
    })
}

async fn next(
    name: &str,
    state: &Arc<Mutex<State>>,
    notify: &Arc<Notify>,
) -> crate::http::Response {
    loop {
        let notified = notify.notified();
        {
            let mut s = state.lock().unwrap();
            if s.first_next.is_none() {
                s.first_next = Some(Instant::now());
            }
            if let Some(pending) = s.queue.pop_front() {
                let deadline_ms = pending
                    .deadline
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or_default();
                s.in_flight.insert(pending.id.clone(), pending.reply);
                return hyper::Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .header("Lambda-Runtime-Aws-Request-Id", pending.id.as_str())
                    .header("Lambda-Runtime-Deadline-Ms", deadline_ms.to_string())
                    .header(
                        "Lambda-Runtime-Invoked-Function-Arn",
                        format!("arn:aws:lambda:us-east-1:123456789012:function:{name}"),
                    )
                    .header(
                        "Lambda-Runtime-Trace-Id",
                        "Root=1-00000000-000000000000000000000000;Sampled=0",
                    )
                    .body(http_body_util::Full::new(bytes::Bytes::from(
                        pending.payload.to_string(),
                    )))
                    .unwrap_or_else(|_| response(500, "text/plain", "bad response"));
            }
        }
        notified.await;
    }
}
