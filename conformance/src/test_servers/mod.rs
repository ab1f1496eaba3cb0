//! Wire-level test servers for the reporters' sinks: Gerrit ([`gerrit`]), Slack ([`slack`]), Google Pub/Sub
//! ([`pubsub`]) and GitHub commit statuses ([`github`]).
//!
//! Each listens on 127.0.0.1 (a free port), checks method, path, auth header and JSON body
//! shape against the documented API, answers as the real service does (including its error
//! bodies), and records every request for assertions. A request that breaks the documented
//! contract is answered with 400 and listed in [`TestServer::violations`]. Canned answers can be
//! queued with [`TestServer::fail_next`] to play rate limits and outages.

pub mod gerrit;
pub mod github;
pub mod github_pulls;
pub mod pubsub;
pub mod slack;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// One request as received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The bearer token of the `Authorization` header (`Bearer x` or GitHub's `token x`).
    pub fn bearer(&self) -> Option<&str> {
        let value = self.header("authorization")?;
        value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .or_else(|| value.strip_prefix("token "))
    }
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Canned {
    /// HTTP status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

impl Canned {
    /// A JSON answer.
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Canned {
            status,
            headers: Vec::new(),
            content_type: "application/json; charset=utf-8",
            body: body.to_string(),
        }
    }

    /// A plain-text answer.
    pub fn text(status: u16, body: &str) -> Self {
        Canned {
            status,
            headers: Vec::new(),
            content_type: "text/plain; charset=utf-8",
            body: body.to_owned(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// Why a test server could not start.
#[derive(Debug, thiserror::Error)]
pub enum TestServerError {
    /// Binding 127.0.0.1:0 failed.
    #[error("binding the test server")]
    Bind(#[source] std::io::Error),
    /// The server's own setup data (keys, fixtures) is unusable.
    #[error("test server setup: {0}")]
    Setup(String),
}

type Handler = dyn Fn(&RecordedRequest) -> Result<Canned, String> + Send + Sync;

struct Shared {
    handler: Box<Handler>,
    state: Mutex<SharedState>,
}

#[derive(Default)]
struct SharedState {
    requests: Vec<RecordedRequest>,
    violations: Vec<String>,
    queued: VecDeque<Canned>,
    outage: Option<Canned>,
}

/// A generic recording HTTP/1 server; the service-specific servers wrap it. Stops on drop.
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl TestServer {
    /// Starts a server answering with `handler`; an `Err` from it is a contract violation,
    /// answered with 400 and recorded.
    pub async fn start(
        handler: impl Fn(&RecordedRequest) -> Result<Canned, String> + Send + Sync + 'static,
    ) -> Result<Self, TestServerError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(TestServerError::Bind)?;
        let addr = listener.local_addr().map_err(TestServerError::Bind)?;
        let shared = Arc::new(Shared {
            handler: Box::new(handler),
            state: Mutex::new(SharedState::default()),
        });
        let task = tokio::spawn(serve(listener, shared.clone()));
        Ok(TestServer { addr, shared, task })
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SharedState> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Contract violations seen so far.
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }

    /// Answers the next request (after recording it) with `answer` instead of the handler's.
    pub fn fail_next(&self, answer: Canned) {
        self.lock().queued.push_back(answer);
    }

    /// Answers every request with `answer` until [`TestServer::end_outage`] (an outage: 500s,
    /// 503s); requests are still recorded.
    pub fn start_outage(&self, answer: Canned) {
        self.lock().outage = Some(answer);
    }

    /// Ends the outage: requests reach the handler again.
    pub fn end_outage(&self) {
        self.lock().outage = None;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let shared = shared.clone();
                    connections.spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            handle(shared.clone(), req)
                        });
                        if let Err(e) = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                        {
                            tracing::debug!("test server connection: {e}");
                        }
                    });
                }
                Err(e) => tracing::warn!("test server accept: {e}"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(_) => Vec::new(),
    };
    let request = RecordedRequest {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    let queued = {
        let mut state = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.requests.push(request.clone());
        state.outage.clone().or_else(|| state.queued.pop_front())
    };
    let answer = match queued {
        Some(answer) => answer,
        None => match (shared.handler)(&request) {
            Ok(answer) => answer,
            Err(violation) => {
                let mut state = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
                state
                    .violations
                    .push(format!("{} {}: {violation}", request.method, request.path));
                Canned::text(400, &violation)
            }
        },
    };
    let mut builder = hyper::Response::builder()
        .status(answer.status)
        .header("content-type", answer.content_type);
    for (name, value) in &answer.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    Ok(builder
        .body(Full::new(Bytes::from(answer.body)))
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new()))))
}

/// Requires `Content-Type: application/json` (parameters allowed) and a JSON object body.
pub(crate) fn json_body(
    request: &RecordedRequest,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let content_type = request.header("content-type").unwrap_or_default();
    if !content_type.starts_with("application/json") {
        return Err(format!(
            "content-type {content_type:?} is not application/json"
        ));
    }
    match request.json() {
        Some(serde_json::Value::Object(map)) => Ok(map),
        Some(_) => Err("body is not a JSON object".to_owned()),
        None => Err("body is not JSON".to_owned()),
    }
}

/// Decodes standard base64 (with padding), as Pub/Sub's `data` field is.
pub fn decode_base64(input: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let bytes = input.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::decode_base64;

    #[test]
    fn base64_decodes() {
        assert_eq!(decode_base64("aGVsbG8=").as_deref(), Some(&b"hello"[..]));
        assert_eq!(decode_base64("aGk=").as_deref(), Some(&b"hi"[..]));
        assert_eq!(decode_base64("YWJj").as_deref(), Some(&b"abc"[..]));
        assert_eq!(decode_base64("a"), None);
    }
}
