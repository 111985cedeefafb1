//! What the stand-ins accept and answer, written down so it can be held against AWS's
//! published API models (`scripts/check-standin-traffic`, with botocore's models): a
//! stand-in that answers what we believe AWS answers proves nothing until then.
//!
//! On when `GREENLIGHT_STANDIN_TRAFFIC_DIR` names a folder: each process appends one
//! JSON line per exchange to `<dir>/<pid>.jsonl`:
//! `{"caller", "service", "operation", "request", "status", "response"}` (the caller is
//! the signing access key id), bodies decoded from
//! JSON or CBOR (CBOR timestamps, tag 1, become their epoch seconds). Calls the ECS
//! stand-in passes through to the emulator are not its own answers and are left out.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

use crate::http::{Handler, Request};

pub const ENV_DIR: &str = "GREENLIGHT_STANDIN_TRAFFIC_DIR";
/// Set on answers the ECS stand-in forwards from the emulator.
pub const FORWARDED: &str = "x-greenlight-forwarded";

fn log() -> Option<&'static Mutex<std::fs::File>> {
    static FILE: OnceLock<Option<Mutex<std::fs::File>>> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = std::path::PathBuf::from(std::env::var_os(ENV_DIR)?);
        std::fs::create_dir_all(&dir).ok()?;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("{}.jsonl", std::process::id())))
            .ok()
            .map(Mutex::new)
    })
    .as_ref()
}

/// `handler` with every exchange recorded as `service` (botocore's service name), when
/// recording is on; `handler` itself otherwise.
pub fn recorded(service: &'static str, handler: Handler) -> Handler {
    if log().is_none() {
        return handler;
    }
    Arc::new(move |request: Request| {
        let handler = handler.clone();
        Box::pin(async move {
            let operation = crate::meter::operation(&request);
            let operation = operation
                .split_once('.')
                .map_or(operation.clone(), |(_, op)| op.to_string());
            let request_body = decode(&request.body);
            let caller = caller(&request);
            let response = handler(request).await;
            if response.headers().contains_key(FORWARDED) {
                return response;
            }
            let (parts, body) = response.into_parts();
            let bytes = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let line = json!({
                "caller": caller,
                "service": service,
                "operation": operation,
                "request": request_body,
                "status": parts.status.as_u16(),
                "response": decode(&bytes),
            });
            if let Some(file) = log() {
                let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
                let _ = writeln!(file, "{line}");
            }
            hyper::Response::from_parts(parts, Full::new(bytes))
        })
    })
}

/// The access key id the request was signed with (SigV4's `Credential=<key>/…`): the
/// rehearsal gives each function its own, so a call can be held against that
/// function's role.
fn caller(request: &Request) -> Option<String> {
    let auth = request.header("authorization")?;
    let credential = auth.split("Credential=").nth(1)?;
    credential.split('/').next().map(str::to_string)
}

/// A body as JSON: JSON as it is, CBOR converted, empty as `{}`.
fn decode(body: &Bytes) -> Value {
    if body.is_empty() {
        return json!({});
    }
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        return value;
    }
    match ciborium::de::from_reader::<ciborium::Value, _>(&body[..]) {
        Ok(value) => cbor_to_json(&value),
        Err(_) => json!({"__undecodable": String::from_utf8_lossy(body)}),
    }
}

fn cbor_to_json(value: &ciborium::Value) -> Value {
    use ciborium::Value as C;
    match value {
        C::Null => Value::Null,
        C::Bool(b) => json!(b),
        C::Integer(i) => {
            let n = i128::from(*i);
            i64::try_from(n).map_or_else(|_| json!(n as f64), |n| json!(n))
        }
        C::Float(f) => json!(f),
        C::Text(t) => json!(t),
        C::Bytes(b) => json!(format!("<{} bytes>", b.len())),
        // Tag 1 is an epoch-seconds timestamp (rpc-v2-cbor); others keep their value.
        C::Tag(_, inner) => cbor_to_json(inner),
        C::Array(items) => Value::Array(items.iter().map(cbor_to_json).collect()),
        C::Map(pairs) => Value::Object(
            pairs
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        C::Text(t) => t.clone(),
                        other => format!("{other:?}"),
                    };
                    (key, cbor_to_json(v))
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cbor_bodies_become_json_with_timestamps_as_seconds() {
        let value = ciborium::Value::Map(vec![
            (
                ciborium::Value::Text("Timestamps".into()),
                ciborium::Value::Array(vec![ciborium::Value::Tag(
                    1,
                    Box::new(ciborium::Value::Integer(1_700_000_000.into())),
                )]),
            ),
            (
                ciborium::Value::Text("Ok".into()),
                ciborium::Value::Bool(true),
            ),
        ]);
        let mut body = Vec::new();
        ciborium::ser::into_writer(&value, &mut body).unwrap();
        assert_eq!(
            decode(&Bytes::from(body)),
            json!({"Timestamps": [1_700_000_000], "Ok": true})
        );
        assert_eq!(decode(&Bytes::from_static(b"{\"a\":1}")), json!({"a": 1}));
        assert_eq!(decode(&Bytes::new()), json!({}));
    }
}
