//! A small HTTP/1.1 server helper on hyper: bind 127.0.0.1:0, answer with a closure.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub type Response = hyper::Response<Full<Bytes>>;
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A request with its body read.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: hyper::Method,
    pub path: String,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub type Handler = Arc<dyn Fn(Request) -> BoxFuture<Response> + Send + Sync>;

/// Builds a response.
pub fn response(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response {
    hyper::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(body.into()))
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new())))
}

/// Serves `handler` on a fresh 127.0.0.1 port until the runtime ends.
pub async fn serve(handler: Handler) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    serve_on(listener, handler)
}

/// Serves `handler` on an already bound listener.
pub fn serve_on(listener: TcpListener, handler: Handler) -> std::io::Result<SocketAddr> {
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<Incoming>| {
                    let handler = handler.clone();
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let request = Request {
                            method: parts.method,
                            path: parts
                                .uri
                                .path_and_query()
                                .map(|p| p.as_str().to_string())
                                .unwrap_or_default(),
                            headers: parts.headers,
                            body,
                        };
                        Ok::<_, Infallible>(handler(request).await)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// An AWS JSON 1.1 error answer: status 400, `{"__type", "message"}` and the
/// `x-amzn-ErrorType` header [AWS JSON protocols, "Operation error serialization"].
pub fn json_error(code: &str, message: &str) -> Response {
    let body = serde_json::json!({"__type": code, "message": message});
    let mut r = response(400, "application/x-amz-json-1.1", body.to_string());
    if let Ok(v) = code.parse() {
        r.headers_mut().insert("x-amzn-errortype", v);
    }
    r
}
