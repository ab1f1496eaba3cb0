//! Shared HTTP helpers: one client per reporter, error mapping that never leaks a URL (webhook
//! URLs are secrets) or a token.

use std::time::Duration;

use crate::ReportError;

/// A client with sane timeouts.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// A transport error (connect, timeout, body) as a transient failure, without its URL.
pub(crate) fn transport_error(what: &str, error: reqwest::Error) -> ReportError {
    ReportError::transient(format!("{what}: {}", error.without_url()))
}

/// `Retry-After` in seconds (the HTTP-date form is not used by these APIs).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Maps a non-success HTTP status: 429 and 5xx are transient, other statuses permanent.
pub(crate) fn status_error(
    what: &str,
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &str,
) -> ReportError {
    let body: String = body.chars().take(200).collect();
    let message = format!("{what}: http {}: {}", status.as_u16(), body.trim());
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        ReportError::Transient {
            message,
            retry_after: retry_after(headers),
        }
    } else {
        ReportError::Permanent(message)
    }
}
