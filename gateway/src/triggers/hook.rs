//! `POST /hook`: GitHub webhook deliveries, checked as Prow's hook checks them (reference
//! `prow-reporters-triggers.md` §3.1–§3.3), then handed to the trigger asynchronously.
//!
//! The checks run in Prow's order with Prow's status codes and texts: method (405), the
//! `X-GitHub-Event` and `X-GitHub-Delivery` headers (400), `X-Hub-Signature-256` (403),
//! `Content-Type: application/json` (400), then the body, capped at [`MAX_BODY_BYTES`] (413, a
//! bosun addition: GitHub's own deliveries stay far below it), then JSON syntax (400, where
//! Prow answers 403 "invalid payload"), then the signature (403). An
//! accepted delivery is answered `200 Event received. Have a nice day.` at once and queued;
//! handling (GitHub API calls, job creation) happens on supervised workers, so GitHub's
//! 10-second window is never at risk. Deliveries of one pull request (or one repository for
//! pushes) go to the same worker, in order. A full queue answers 503 so the delivery can be
//! redelivered instead of being dropped silently.
//!
//! The webhook secret file is re-read when it changes (rotation without a restart); a broken
//! new version is logged and the previous tokens stay in force.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::hmac::{HmacConfigError, WebhookSecrets};
use crate::metrics::Metrics;
use crate::supervisor::Supervisor;

/// The largest webhook body accepted. GitHub caps payloads at 25 MB, but the events the trigger
/// reads are a few kilobytes; anything this large is refused before it is buffered further.
pub const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;
/// Deliveries waiting per worker before the hook answers 503.
const QUEUE_PER_WORKER: usize = 256;

/// One accepted delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `X-GitHub-Event`.
    pub event: String,
    /// `X-GitHub-Delivery` (the GUID, for tracing and the `event-GUID` label).
    pub guid: String,
    /// The JSON body, signature checked.
    pub payload: Bytes,
}

/// Why a delivery could not be handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryError {
    /// What went wrong.
    pub message: String,
    /// Handling it again later may succeed (GitHub or the store was unavailable). Handlers
    /// must be idempotent for this: jobs carry idempotency keys, so a retry finds the jobs the
    /// failed attempt already created.
    pub retryable: bool,
}

/// What handles accepted deliveries.
#[async_trait::async_trait]
pub trait DeliveryHandler: Send + Sync + 'static {
    /// Handles one delivery. Retryable errors are retried with backoff a few times; every
    /// error is logged with the delivery GUID.
    async fn handle(&self, delivery: &Delivery) -> Result<(), DeliveryError>;
}

/// How often a delivery is tried when its errors are retryable, and the first wait (doubled
/// each time: 1 s, 2 s, 4 s, 8 s).
const DELIVERY_ATTEMPTS: u32 = 5;
const DELIVERY_BACKOFF: std::time::Duration = std::time::Duration::from_secs(1);

/// Why the hook could not start.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The secret file could not be read.
    #[error("reading the webhook secret file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The secret file is unusable.
    #[error("webhook secret file {path}: {source}")]
    Invalid {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: HmacConfigError,
    },
}

/// The webhook secret file, re-read when its modification time changes.
struct SecretFile {
    path: PathBuf,
    cached: Mutex<(Option<SystemTime>, WebhookSecrets)>,
}

impl SecretFile {
    fn load(path: PathBuf) -> Result<Self, HookError> {
        let (mtime, secrets) = read_secrets(&path)?;
        Ok(Self {
            path,
            cached: Mutex::new((mtime, secrets)),
        })
    }

    fn current(&self) -> WebhookSecrets {
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        if mtime.is_some() && mtime != cached.0 {
            match read_secrets(&self.path) {
                Ok(fresh) => {
                    tracing::info!(file = %self.path.display(), "webhook secrets reloaded");
                    *cached = fresh;
                }
                Err(e) => {
                    tracing::warn!("{e}; keeping the previous webhook secrets");
                    cached.0 = mtime;
                }
            }
        }
        cached.1.clone()
    }
}

fn read_secrets(path: &PathBuf) -> Result<(Option<SystemTime>, WebhookSecrets), HookError> {
    let text = std::fs::read_to_string(path).map_err(|source| HookError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let secrets = WebhookSecrets::parse(&text).map_err(|source| HookError::Invalid {
        path: path.display().to_string(),
        source,
    })?;
    Ok((mtime, secrets))
}

/// The webhook endpoint.
pub struct Hook {
    secrets: SecretFile,
    workers: Vec<mpsc::Sender<Delivery>>,
    metrics: Metrics,
}

impl Hook {
    /// Reads the secret file and starts `workers` supervised workers that pass deliveries to
    /// `handler`. Fails when the secret file is unreadable or invalid.
    pub fn start(
        secret_file: PathBuf,
        handler: Arc<dyn DeliveryHandler>,
        workers: usize,
        supervisor: &Supervisor,
        metrics: Metrics,
    ) -> Result<Arc<Self>, HookError> {
        let secrets = SecretFile::load(secret_file)?;
        let mut senders = Vec::new();
        for i in 0..workers.max(1) {
            let (tx, mut rx) = mpsc::channel::<Delivery>(QUEUE_PER_WORKER);
            senders.push(tx);
            let handler = handler.clone();
            let shutdown = supervisor.shutdown_token();
            supervisor.spawn_critical(format!("hook-worker-{i}"), async move {
                loop {
                    let delivery = tokio::select! {
                        _ = shutdown.cancelled() => return Ok::<(), std::convert::Infallible>(()),
                        d = rx.recv() => match d {
                            Some(d) => d,
                            None => return Ok(()),
                        },
                    };
                    let span = tracing::info_span!(
                        "webhook",
                        delivery = %delivery.guid,
                        event = %delivery.event
                    );
                    let mut wait = DELIVERY_BACKOFF;
                    for attempt in 1..=DELIVERY_ATTEMPTS {
                        match handler.handle(&delivery).instrument(span.clone()).await {
                            Ok(()) => break,
                            Err(e) if e.retryable && attempt < DELIVERY_ATTEMPTS => {
                                tracing::warn!(
                                    delivery = %delivery.guid,
                                    event = %delivery.event,
                                    "webhook handling failed (attempt {attempt}, retrying in {wait:?}): {}",
                                    e.message
                                );
                                tokio::select! {
                                    _ = shutdown.cancelled() => return Ok(()),
                                    // Backoff before retrying a delivery whose backend was down.
                                    _ = tokio::time::sleep(wait) => {}
                                }
                                wait *= 2;
                            }
                            Err(e) => {
                                tracing::warn!(
                                    delivery = %delivery.guid,
                                    event = %delivery.event,
                                    "webhook handling failed: {}",
                                    e.message
                                );
                                break;
                            }
                        }
                    }
                }
            });
        }
        Ok(Arc::new(Self {
            secrets,
            workers: senders,
            metrics,
        }))
    }

    /// The routes: `/hook` (every method, so others get Prow's 405).
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/hook", any(receive))
            .with_state(self.clone())
    }

    fn worker_for(&self, payload: &[u8]) -> &mpsc::Sender<Delivery> {
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct Key {
            repository: Option<Repo>,
            number: Option<i64>,
            issue: Option<Num>,
            pull_request: Option<Num>,
        }
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct Repo {
            full_name: String,
        }
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct Num {
            number: i64,
        }
        let key: Key = serde_json::from_slice(payload).unwrap_or_default();
        let number = key
            .number
            .or(key.issue.map(|i| i.number))
            .or(key.pull_request.map(|p| p.number))
            .unwrap_or(0);
        let repo = key.repository.map(|r| r.full_name).unwrap_or_default();
        // FNV-1a: stable and cheap; only spreads work, never a security boundary.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in repo.bytes().chain(number.to_le_bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let index = usize::try_from(h % self.workers.len() as u64).unwrap_or(0);
        &self.workers[index]
    }
}

/// How much of an oversized body is read and thrown away so the client gets the 413 instead
/// of a broken connection; beyond this the connection is simply closed.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

enum BodyError {
    TooLarge,
    Read(String),
}

/// The body, up to [`MAX_BODY_BYTES`]. A larger one is drained (up to [`DRAIN_LIMIT`], for a
/// clean answer) and refused.
async fn read_capped(mut body: Body) -> Result<Bytes, BodyError> {
    use http_body_util::BodyExt;
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen > DRAIN_LIMIT {
            return Err(BodyError::TooLarge);
        }
        if seen <= MAX_BODY_BYTES {
            buf.extend_from_slice(&data);
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(BodyError::TooLarge);
    }
    Ok(Bytes::from(buf))
}

fn plain(code: StatusCode, text: &str) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{text}\n"),
    )
        .into_response()
}

fn header_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

async fn receive(State(hook): State<Arc<Hook>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if parts.method != Method::POST {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "405 Method not allowed");
    }
    let headers = &parts.headers;
    let Some(event) = header_value(headers, "x-github-event") else {
        return plain(
            StatusCode::BAD_REQUEST,
            "400 Bad Request: Missing X-GitHub-Event Header",
        );
    };
    let Some(guid) = header_value(headers, "x-github-delivery") else {
        return plain(
            StatusCode::BAD_REQUEST,
            "400 Bad Request: Missing X-GitHub-Delivery Header",
        );
    };
    let Some(signature) = header_value(headers, "x-hub-signature-256") else {
        hook.metrics.inc(
            "bosun_webhooks_total",
            &[("event", event), ("outcome", "unsigned")],
        );
        return plain(
            StatusCode::FORBIDDEN,
            "403 Forbidden: Missing X-Hub-Signature-256",
        );
    };
    if header_value(headers, "content-type") != Some("application/json") {
        return plain(
            StatusCode::BAD_REQUEST,
            "400 Bad Request: Hook only accepts content-type: application/json - please reconfigure this hook on GitHub",
        );
    }
    let too_large = || {
        tracing::warn!(delivery = %guid, event, "webhook body larger than {MAX_BODY_BYTES} bytes refused");
        plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("413 Payload Too Large: webhook bodies are limited to {MAX_BODY_BYTES} bytes"),
        )
    };
    let payload = match read_capped(Body::new(body)).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => return too_large(),
        Err(BodyError::Read(e)) => {
            return plain(
                StatusCode::BAD_REQUEST,
                &format!("400 Bad Request: reading the body: {e}"),
            );
        }
    };
    // Prow answers a body that is not JSON with 403 ("invalid payload"); bosun names the
    // problem with a 400, as a malformed request deserves. Nothing happens either way.
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&payload) {
        tracing::warn!(delivery = %guid, event, "webhook body is not JSON: {e}");
        hook.metrics.inc(
            "bosun_webhooks_total",
            &[("event", event), ("outcome", "malformed")],
        );
        return plain(
            StatusCode::BAD_REQUEST,
            &format!("400 Bad Request: the body is not valid JSON: {e}"),
        );
    }
    if let Err(reason) = hook.secrets.current().validate(&payload, signature) {
        tracing::warn!(delivery = %guid, event, "webhook refused: {reason}");
        hook.metrics.inc(
            "bosun_webhooks_total",
            &[("event", event), ("outcome", "bad_signature")],
        );
        return plain(
            StatusCode::FORBIDDEN,
            &format!("403 Forbidden: Invalid X-Hub-Signature-256 - {reason}"),
        );
    }
    let delivery = Delivery {
        event: event.to_owned(),
        guid: guid.to_owned(),
        payload,
    };
    match hook.worker_for(&delivery.payload).try_send(delivery) {
        Ok(()) => {
            tracing::info!(delivery = %guid, event, "webhook accepted");
            hook.metrics.inc(
                "bosun_webhooks_total",
                &[("event", event), ("outcome", "accepted")],
            );
            plain(StatusCode::OK, "Event received. Have a nice day.")
        }
        Err(_) => {
            tracing::warn!(delivery = %guid, event, "webhook queue full; delivery refused");
            hook.metrics.inc(
                "bosun_webhooks_total",
                &[("event", event), ("outcome", "queue_full")],
            );
            plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "503 Service Unavailable: too many webhook deliveries waiting; redeliver later",
            )
        }
    }
}
