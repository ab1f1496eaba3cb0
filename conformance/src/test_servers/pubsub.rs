//! A Google Pub/Sub REST test server: `POST /v1/projects/{project}/topics/{topic}:publish`
//! with `{"messages":[{"data":"<base64>", "attributes":{…}}]}`, answering
//! `{"messageIds":[…]}`; an unknown topic answers 404 `NOT_FOUND` like the real API.
//!
//! With an expected token, requests must carry `Authorization: Bearer <token>` (else 401
//! `UNAUTHENTICATED`); in emulator mode (no token) any `Authorization` header is a violation.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::json;

use super::{Canned, RecordedRequest, TestServer, TestServerError, decode_base64, json_body};

/// A published message.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedMessage {
    /// The project.
    pub project: String,
    /// The topic.
    pub topic: String,
    /// The decoded `data`.
    pub data: Vec<u8>,
    /// `data` as JSON, when it is.
    pub json: Option<serde_json::Value>,
    /// `attributes`, if any.
    pub attributes: Option<serde_json::Value>,
}

/// The running server.
pub struct PubSubServer {
    server: TestServer,
    messages: Arc<Mutex<Vec<PublishedMessage>>>,
}

impl PubSubServer {
    /// Accepts `topics` (as `project/topic`); `token` `None` plays the emulator.
    pub async fn start(topics: &[&str], token: Option<&str>) -> Result<Self, TestServerError> {
        let topics: BTreeSet<String> = topics.iter().map(|s| (*s).to_owned()).collect();
        let token = token.map(str::to_owned);
        let messages = Arc::new(Mutex::new(Vec::new()));
        let sink = messages.clone();
        let counter = Arc::new(Mutex::new(0u64));
        let server = TestServer::start(move |req| match handle(req, &topics, token.as_deref())? {
            Ok(published) => {
                let mut ids = Vec::new();
                let mut next = counter.lock().unwrap_or_else(PoisonError::into_inner);
                for _ in &published {
                    *next += 1;
                    ids.push(next.to_string());
                }
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend(published);
                Ok(Canned::json(200, json!({ "messageIds": ids })))
            }
            Err(answer) => Ok(answer),
        })
        .await?;
        Ok(PubSubServer { server, messages })
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// `127.0.0.1:port`, for `PUBSUB_EMULATOR_HOST`.
    pub fn host(&self) -> String {
        self.server.addr().to_string()
    }

    /// Published messages, in order.
    pub fn messages(&self) -> Vec<PublishedMessage> {
        self.messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The underlying recorder.
    pub fn server(&self) -> &TestServer {
        &self.server
    }

    /// The next request gets `503 UNAVAILABLE`.
    pub fn unavailable_next(&self) {
        self.server.fail_next(google_error(
            503,
            "UNAVAILABLE",
            "The service is currently unavailable.",
        ));
    }
}

fn google_error(code: u16, status: &str, message: &str) -> Canned {
    Canned::json(
        code,
        json!({"error": {"code": code, "message": message, "status": status}}),
    )
}

fn handle(
    req: &RecordedRequest,
    topics: &BTreeSet<String>,
    token: Option<&str>,
) -> Result<Result<Vec<PublishedMessage>, Canned>, String> {
    let Some(rest) = req.path.strip_prefix("/v1/projects/") else {
        return Ok(Err(google_error(404, "NOT_FOUND", "not found")));
    };
    let Some((project, rest)) = rest.split_once("/topics/") else {
        return Ok(Err(google_error(404, "NOT_FOUND", "not found")));
    };
    let Some(topic) = rest.strip_suffix(":publish") else {
        return Ok(Err(google_error(404, "NOT_FOUND", "not found")));
    };
    if req.method != "POST" {
        return Err(format!("method {} is not POST", req.method));
    }
    match (token, req.header("authorization")) {
        (None, Some(_)) => return Err("the emulator takes no credentials".to_owned()),
        (Some(expected), _) if req.bearer() != Some(expected) => {
            return Ok(Err(google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials.",
            )));
        }
        _ => {}
    }
    let body = json_body(req)?;
    let Some(serde_json::Value::Array(items)) = body.get("messages") else {
        return Err("messages is not an array".to_owned());
    };
    if items.is_empty() {
        return Ok(Err(google_error(
            400,
            "INVALID_ARGUMENT",
            "The value for message_count is too small.",
        )));
    }
    if !topics.contains(&format!("{project}/{topic}")) {
        return Ok(Err(google_error(
            404,
            "NOT_FOUND",
            &format!("Resource not found (resource={topic})."),
        )));
    }
    let mut out = Vec::new();
    for item in items {
        let Some(data) = item.get("data").and_then(|d| d.as_str()) else {
            return Err("message without a string data field".to_owned());
        };
        let Some(data) = decode_base64(data) else {
            return Err("data is not base64".to_owned());
        };
        out.push(PublishedMessage {
            project: project.to_owned(),
            topic: topic.to_owned(),
            json: serde_json::from_slice(&data).ok(),
            data,
            attributes: item.get("attributes").cloned(),
        });
    }
    Ok(Ok(out))
}
