//! A Slack Web API (`chat.postMessage`) and incoming-webhook test server.
//!
//! `POST /api/chat.postMessage`: the token comes from `Authorization: Bearer` (JSON body) or the
//! `token` form field; an unknown token answers `{"ok":false,"error":"invalid_auth"}`, a missing
//! one `not_authed`, an unknown channel `channel_not_found`, all with HTTP 200 as Slack does.
//! `POST /services/…` (the webhook path given at start) answers `ok` as text.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::json;

use super::{Canned, RecordedRequest, TestServer, TestServerError, json_body};

/// The webhook path the server accepts.
pub const WEBHOOK_PATH: &str = "/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX";

/// A message the server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackMessage {
    /// The channel (empty for a webhook post without one).
    pub channel: String,
    /// The text.
    pub text: String,
    /// `username`, if sent.
    pub username: Option<String>,
    /// Whether it came through the webhook.
    pub via_webhook: bool,
}

/// The running server.
pub struct SlackServer {
    server: TestServer,
    messages: Arc<Mutex<Vec<SlackMessage>>>,
}

impl SlackServer {
    /// Accepts `tokens` and posts to `channels`.
    pub async fn start(tokens: &[&str], channels: &[&str]) -> Result<Self, TestServerError> {
        let tokens: BTreeSet<String> = tokens.iter().map(|s| (*s).to_owned()).collect();
        let channels: BTreeSet<String> = channels.iter().map(|s| (*s).to_owned()).collect();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let sink = messages.clone();
        let server = TestServer::start(move |req| {
            let message = handle(req, &tokens, &channels)?;
            match message {
                Ok(message) => {
                    let via_webhook = message.via_webhook;
                    sink.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(message.clone());
                    if via_webhook {
                        Ok(Canned::text(200, "ok"))
                    } else {
                        Ok(Canned::json(
                            200,
                            json!({
                                "ok": true,
                                "channel": message.channel,
                                "ts": "1503435956.000247",
                                "message": {"text": message.text, "type": "message", "subtype": "bot_message"},
                            }),
                        ))
                    }
                }
                Err(answer) => Ok(answer),
            }
        })
        .await?;
        Ok(SlackServer { server, messages })
    }

    /// The Web API base URL (`http://127.0.0.1:port`).
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The incoming-webhook URL.
    pub fn webhook_url(&self) -> String {
        format!("{}{WEBHOOK_PATH}", self.server.url())
    }

    /// Accepted messages, in order.
    pub fn messages(&self) -> Vec<SlackMessage> {
        self.messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The underlying recorder (requests, violations, canned failures).
    pub fn server(&self) -> &TestServer {
        &self.server
    }

    /// The next request gets HTTP 429 with `Retry-After: secs`, like Slack's rate limiter.
    pub fn rate_limit_next(&self, secs: u64) {
        self.server.fail_next(
            Canned::json(429, json!({"ok": false, "error": "ratelimited"}))
                .with_header("retry-after", &secs.to_string()),
        );
    }
}

/// `Ok(Ok(message))` accepted, `Ok(Err(answer))` a Slack-level error, `Err` a violation.
fn handle(
    req: &RecordedRequest,
    tokens: &BTreeSet<String>,
    channels: &BTreeSet<String>,
) -> Result<Result<SlackMessage, Canned>, String> {
    if req.method != "POST" {
        return Err(format!("method {} is not POST", req.method));
    }
    if req.path == WEBHOOK_PATH {
        let body = json_body(req)?;
        let Some(text) = body.get("text").and_then(|t| t.as_str()) else {
            return Ok(Err(Canned::text(400, "no_text")));
        };
        return Ok(Ok(SlackMessage {
            channel: body
                .get("channel")
                .and_then(|c| c.as_str())
                .unwrap_or_default()
                .to_owned(),
            text: text.to_owned(),
            username: None,
            via_webhook: true,
        }));
    }
    if req.path != "/api/chat.postMessage" {
        return Ok(Err(Canned::text(404, "not found")));
    }
    let slack_error =
        |error: &str| Ok(Err(Canned::json(200, json!({"ok": false, "error": error}))));
    let body = json_body(req)?;
    let Some(token) = req.bearer() else {
        return slack_error("not_authed");
    };
    if !tokens.contains(token) {
        return slack_error("invalid_auth");
    }
    let channel = match body.get("channel") {
        Some(serde_json::Value::String(c)) if !c.is_empty() => c.clone(),
        Some(serde_json::Value::String(_)) | None => return slack_error("channel_not_found"),
        Some(_) => return Err("channel is not a string".to_owned()),
    };
    let text = match body.get("text") {
        Some(serde_json::Value::String(t)) if !t.is_empty() => t.clone(),
        Some(serde_json::Value::String(_)) | None => return slack_error("no_text"),
        Some(_) => return Err("text is not a string".to_owned()),
    };
    if !channels.contains(&channel) {
        return slack_error("channel_not_found");
    }
    Ok(Ok(SlackMessage {
        channel,
        text,
        username: body
            .get("username")
            .and_then(|u| u.as_str())
            .map(str::to_owned),
        via_webhook: false,
    }))
}
