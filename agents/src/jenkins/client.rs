//! A Jenkins REST client on `reqwest`: the endpoints Prow's jenkins-operator uses plus the
//! queue item API (reference prow-agents §4.1–§4.2).
//!
//! - Auth: HTTP basic with a user and API token, or a bearer token; never logged.
//! - CSRF: with `csrf_protect`, the crumb from `GET /crumbIssuer/api/json` (and the session
//!   cookie that came with it) is sent on every POST; a POST refused with 403 fetches a new
//!   crumb once.
//! - Retries: GETs and the idempotent POSTs (stop, cancel) are retried on transport errors and
//!   5xx, 5 times with backoff from 100 ms doubling, as Prow's client does. Triggering a build
//!   is never retried here (a lost answer must not start two builds): the agent looks for the
//!   build by its `PROW_JOB_ID` before triggering again.
//! - Redirects are not followed: Jenkins answers `stop` and `cancelItem` with 302.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use reqwest::{Method, StatusCode};
use serde::Deserialize;

pub use bosun_proto::secret::Secret;

/// How requests authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JenkinsAuth {
    /// Anonymous.
    None,
    /// `--jenkins-user` + `--jenkins-token-file`: HTTP basic with an API token.
    Basic {
        /// The user.
        user: String,
        /// The API token.
        token: Secret,
    },
    /// `--jenkins-bearer-token-file`: `Authorization: Bearer`.
    Bearer(Secret),
}

/// Why a Jenkins request failed.
#[derive(Debug, thiserror::Error)]
pub enum JenkinsError {
    /// Jenkins could not be reached (connect, timeout, broken answer) after the retries.
    #[error("cannot reach jenkins at {url}: {message}")]
    Unreachable {
        /// The request URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// Jenkins answered with a 5xx after the retries.
    #[error("jenkins answered {status} for {method} {url}")]
    Server {
        /// Method.
        method: String,
        /// The request URL.
        url: String,
        /// The status.
        status: u16,
    },
    /// Jenkins answered 404.
    #[error("{url} not found (404)")]
    NotFound {
        /// The request URL.
        url: String,
    },
    /// Jenkins refused the request (4xx other than 404).
    #[error("jenkins refused {method} {url}: {status} {body}")]
    Refused {
        /// Method.
        method: String,
        /// The request URL.
        url: String,
        /// The status.
        status: u16,
        /// The start of the answer's body.
        body: String,
    },
    /// The answer was not what the API documents.
    #[error("unexpected answer from {url}: {message}")]
    Protocol {
        /// The request URL.
        url: String,
        /// What was wrong.
        message: String,
    },
}

impl JenkinsError {
    /// Whether the same request may succeed later (unreachable, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        match self {
            JenkinsError::Unreachable { .. } | JenkinsError::Server { .. } => true,
            JenkinsError::Refused { status, .. } => *status == 429,
            _ => false,
        }
    }
}

/// `{"number": 3, "url": ".../job/x/3/"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Executable {
    /// The build number.
    pub number: u64,
    /// Its URL.
    #[serde(default)]
    pub url: String,
}

/// One `{"name": …, "value": …}` of a `ParametersAction`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ParameterValue {
    /// The parameter.
    pub name: String,
    /// Its value (strings for the parameters Prow sends).
    #[serde(default)]
    pub value: serde_json::Value,
}

/// One of `actions[]`; only `ParametersAction` has `parameters`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Action {
    /// The parameters, for a `hudson.model.ParametersAction`.
    #[serde(default)]
    pub parameters: Vec<ParameterValue>,
}

/// A string parameter of `actions`, if present.
pub fn parameter<'a>(actions: &'a [Action], name: &str) -> Option<&'a str> {
    actions
        .iter()
        .flat_map(|a| a.parameters.iter())
        .find(|p| p.name == name)
        .and_then(|p| p.value.as_str())
}

/// `GET /queue/item/<id>/api/json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct QueueItem {
    /// The item id.
    pub id: u64,
    /// Set once a `LeftItem` was cancelled.
    #[serde(default)]
    pub cancelled: bool,
    /// Set once the build started.
    #[serde(default)]
    pub executable: Option<Executable>,
    /// Why it still waits.
    #[serde(default)]
    pub why: Option<String>,
    /// Its parameters.
    #[serde(default)]
    pub actions: Vec<Action>,
}

#[derive(Debug, Deserialize)]
struct Queue {
    #[serde(default)]
    items: Vec<QueueItem>,
}

/// A build, as `GET /job/<path>/<n>/api/json` and the job's `builds[]` show it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Build {
    /// The build number.
    pub number: u64,
    /// Whether it still runs.
    #[serde(default)]
    pub building: bool,
    /// `SUCCESS`, `UNSTABLE`, `FAILURE`, `NOT_BUILT`, `ABORTED`; null while running.
    #[serde(default)]
    pub result: Option<String>,
    /// Its URL.
    #[serde(default)]
    pub url: String,
    /// Start time, epoch milliseconds.
    #[serde(default)]
    pub timestamp: i64,
    /// Duration in milliseconds (0 while running).
    #[serde(default)]
    pub duration: i64,
    /// Its parameters.
    #[serde(default)]
    pub actions: Vec<Action>,
}

#[derive(Debug, Deserialize)]
struct JobInfo {
    #[serde(default)]
    builds: Vec<Build>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CrumbAnswer {
    crumb: String,
    crumb_request_field: String,
}

#[derive(Debug, Clone)]
struct Crumb {
    field: String,
    value: String,
    cookie: Option<String>,
}

/// A chunk of `logText/progressiveText`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressiveText {
    /// The text from the requested offset.
    pub text: Bytes,
    /// `X-Text-Size`: the offset to ask from next.
    pub next_start: u64,
    /// `X-More-Data: true`: the build still writes.
    pub more: bool,
}

/// The path of a Jenkins job from its full name: `a/b` → `job/a/job/b` (folders), each
/// segment percent-encoded.
pub fn job_path(full_name: &str) -> String {
    full_name
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| format!("job/{}", encode_segment(s)))
        .collect::<Vec<_>>()
        .join("/")
}

/// Percent-encodes a URL path segment (RFC 3986 unreserved characters stay).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The queue item id in a `Location` like `http://jenkins/queue/item/42/`.
pub fn queue_id_from_location(location: &str) -> Option<u64> {
    let (_, rest) = location.rsplit_once("/queue/item/")?;
    rest.trim_end_matches('/').parse().ok()
}

/// A Jenkins REST client.
#[derive(Debug)]
pub struct JenkinsClient {
    http: reqwest::Client,
    base: String,
    auth: JenkinsAuth,
    csrf_protect: bool,
    crumb: Mutex<Option<Crumb>>,
    retries: u32,
    retry_base: Duration,
}

/// Tunables of a [`JenkinsClient`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Send a CSRF crumb on every POST.
    pub csrf_protect: bool,
    /// Timeout of one request (Prow: 30 s).
    pub request_timeout: Duration,
    /// Retries of a GET or idempotent POST on transport errors and 5xx (Prow: 5).
    pub retries: u32,
    /// First retry delay, doubling (Prow: 100 ms).
    pub retry_base: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            csrf_protect: false,
            request_timeout: Duration::from_secs(30),
            retries: 5,
            retry_base: Duration::from_millis(100),
        }
    }
}

/// What kind of request: decides retries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    IdempotentPost,
    Trigger,
}

impl JenkinsClient {
    /// A client for the Jenkins at `base_url` (e.g. `http://jenkins:8080` or
    /// `https://ci.example.com/jenkins`).
    pub fn new(
        base_url: &str,
        auth: JenkinsAuth,
        options: ClientOptions,
    ) -> Result<Self, JenkinsError> {
        let base = base_url.trim_end_matches('/').to_owned();
        let unusable = |message: String| JenkinsError::Protocol {
            url: base.clone(),
            message,
        };
        let parsed = reqwest::Url::parse(&base).map_err(|e| unusable(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(unusable("the jenkins url must be http or https".into()));
        }
        let http = reqwest::Client::builder()
            .timeout(options.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| unusable(e.to_string()))?;
        Ok(Self {
            http,
            base,
            auth,
            csrf_protect: options.csrf_protect,
            crumb: Mutex::new(None),
            retries: options.retries,
            retry_base: options.retry_base,
        })
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `<base>/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            JenkinsAuth::None => req,
            JenkinsAuth::Basic { user, token } => req.basic_auth(user, Some(token.expose())),
            JenkinsAuth::Bearer(token) => req.bearer_auth(token.expose()),
        }
    }

    async fn crumb(&self, refresh: bool) -> Result<Option<Crumb>, JenkinsError> {
        if !self.csrf_protect {
            return Ok(None);
        }
        if !refresh && let Some(c) = self.crumb.lock().ok().and_then(|g| g.clone()) {
            return Ok(Some(c));
        }
        let url = self.url("crumbIssuer/api/json");
        let resp = self.send(Method::GET, &url, &[], Kind::Read, None).await?;
        let cookie = resp
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .map(str::to_owned)
            .collect::<Vec<_>>();
        let answer: CrumbAnswer = decode(&url, resp).await?;
        let crumb = Crumb {
            field: answer.crumb_request_field,
            value: answer.crumb,
            cookie: (!cookie.is_empty()).then(|| cookie.join("; ")),
        };
        if let Ok(mut g) = self.crumb.lock() {
            *g = Some(crumb.clone());
        }
        Ok(Some(crumb))
    }

    /// One request with retries as its kind allows; non-2xx/3xx answers become errors.
    async fn send(
        &self,
        method: Method,
        url: &str,
        query: &[(String, String)],
        kind: Kind,
        crumb: Option<&Crumb>,
    ) -> Result<reqwest::Response, JenkinsError> {
        let mut delay = self.retry_base;
        let mut attempt = 0;
        loop {
            let mut req = self.authorize(self.http.request(method.clone(), url));
            if !query.is_empty() {
                req = req.query(query);
            }
            if let Some(c) = crumb {
                req = req.header(c.field.as_str(), c.value.as_str());
                if let Some(cookie) = &c.cookie {
                    req = req.header(reqwest::header::COOKIE, cookie.as_str());
                }
            }
            let result = match req.send().await {
                Ok(resp) => classify(&method, url, resp).await,
                Err(e) => Err(JenkinsError::Unreachable {
                    url: url.to_owned(),
                    message: error_chain(&e),
                }),
            };
            match result {
                Err(e) if e.is_transient() && kind != Kind::Trigger && attempt < self.retries => {
                    attempt += 1;
                    tracing::debug!(%url, attempt, "jenkins request failed, retrying: {e}");
                    // Backoff between retries of one request (Prow: 100 ms doubling).
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                }
                other => return other,
            }
        }
    }

    async fn post(
        &self,
        url: &str,
        query: &[(String, String)],
        kind: Kind,
    ) -> Result<reqwest::Response, JenkinsError> {
        let crumb = self.crumb(false).await?;
        match self
            .send(Method::POST, url, query, kind, crumb.as_ref())
            .await
        {
            // A stale crumb (session expired): fetch a new one and try once more.
            Err(JenkinsError::Refused { status: 403, .. }) if crumb.is_some() => {
                let crumb = self.crumb(true).await?;
                self.send(Method::POST, url, query, kind, crumb.as_ref())
                    .await
            }
            other => other,
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        query: &[(String, String)],
    ) -> Result<T, JenkinsError> {
        let resp = self.send(Method::GET, url, query, Kind::Read, None).await?;
        decode(url, resp).await
    }

    /// The job's builds (number, result, building, parameters), newest first; 404 →
    /// [`JenkinsError::NotFound`] (no such job).
    pub async fn builds(&self, path: &str) -> Result<Vec<Build>, JenkinsError> {
        let url = self.url(&format!("{path}/api/json"));
        let tree =
            "builds[number,result,building,url,timestamp,duration,actions[parameters[name,value]]]";
        let info: JobInfo = self.get_json(&url, &[("tree".into(), tree.into())]).await?;
        Ok(info.builds)
    }

    /// The queue (items with their parameters).
    pub async fn queue(&self) -> Result<Vec<QueueItem>, JenkinsError> {
        let url = self.url("queue/api/json");
        let tree = "items[id,why,cancelled,executable[number,url],actions[parameters[name,value]]]";
        let queue: Queue = self.get_json(&url, &[("tree".into(), tree.into())]).await?;
        Ok(queue.items)
    }

    /// `POST /<path>/buildWithParameters?<params>` (query string, empty body, as Prow sends
    /// them); returns the queue item id from the `Location` header of the 201.
    pub async fn build_with_parameters(
        &self,
        path: &str,
        params: &[(String, String)],
    ) -> Result<u64, JenkinsError> {
        let url = self.url(&format!("{path}/buildWithParameters"));
        let resp = self.post(&url, params, Kind::Trigger).await?;
        let status = resp.status();
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if status != StatusCode::CREATED {
            return Err(JenkinsError::Protocol {
                url,
                message: format!("expected 201 Created, got {status}"),
            });
        }
        location
            .as_deref()
            .and_then(queue_id_from_location)
            .ok_or_else(|| JenkinsError::Protocol {
                url,
                message: format!("no queue item in the Location header ({location:?})"),
            })
    }

    /// A queue item; `None` once Jenkins forgot it (404).
    pub async fn queue_item(&self, id: u64) -> Result<Option<QueueItem>, JenkinsError> {
        let url = self.url(&format!("queue/item/{id}/api/json"));
        match self.get_json(&url, &[]).await {
            Ok(item) => Ok(Some(item)),
            Err(JenkinsError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A build; `None` when it does not exist (404).
    pub async fn build(&self, path: &str, number: u64) -> Result<Option<Build>, JenkinsError> {
        let url = self.url(&format!("{path}/{number}/api/json"));
        match self.get_json(&url, &[]).await {
            Ok(build) => Ok(Some(build)),
            Err(JenkinsError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /<path>/<n>/stop`; a build that is gone is fine.
    pub async fn stop(&self, path: &str, number: u64) -> Result<(), JenkinsError> {
        let url = self.url(&format!("{path}/{number}/stop"));
        match self.post(&url, &[], Kind::IdempotentPost).await {
            Ok(_) | Err(JenkinsError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `POST /queue/cancelItem?id=<id>`; an item that is gone is fine.
    pub async fn cancel_queue_item(&self, id: u64) -> Result<(), JenkinsError> {
        let url = self.url("queue/cancelItem");
        match self
            .post(&url, &[("id".into(), id.to_string())], Kind::IdempotentPost)
            .await
        {
            Ok(_) | Err(JenkinsError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `GET /<path>/<n>/logText/progressiveText?start=<start>`.
    pub async fn progressive_text(
        &self,
        path: &str,
        number: u64,
        start: u64,
    ) -> Result<ProgressiveText, JenkinsError> {
        let url = self.url(&format!("{path}/{number}/logText/progressiveText"));
        let resp = self
            .send(
                Method::GET,
                &url,
                &[("start".into(), start.to_string())],
                Kind::Read,
                None,
            )
            .await?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let size = header("x-text-size");
        let more = header("x-more-data").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let text = resp.bytes().await.map_err(|e| JenkinsError::Unreachable {
            url: url.clone(),
            message: error_chain(&e),
        })?;
        let next_start = match size {
            Some(s) => s.trim().parse().map_err(|_| JenkinsError::Protocol {
                url: url.clone(),
                message: format!("X-Text-Size {s:?} is not a number"),
            })?,
            None => start + text.len() as u64,
        };
        Ok(ProgressiveText {
            text,
            next_start,
            more,
        })
    }
}

async fn classify(
    method: &Method,
    url: &str,
    resp: reqwest::Response,
) -> Result<reqwest::Response, JenkinsError> {
    let status = resp.status();
    if status.is_success() || status.is_redirection() {
        return Ok(resp);
    }
    if status == StatusCode::NOT_FOUND {
        return Err(JenkinsError::NotFound {
            url: url.to_owned(),
        });
    }
    if status.is_server_error() {
        return Err(JenkinsError::Server {
            method: method.to_string(),
            url: url.to_owned(),
            status: status.as_u16(),
        });
    }
    let body = resp.text().await.unwrap_or_default();
    let mut body: String = body.chars().take(200).collect();
    body = body.split_whitespace().collect::<Vec<_>>().join(" ");
    Err(JenkinsError::Refused {
        method: method.to_string(),
        url: url.to_owned(),
        status: status.as_u16(),
        body,
    })
}

async fn decode<T: serde::de::DeserializeOwned>(
    url: &str,
    resp: reqwest::Response,
) -> Result<T, JenkinsError> {
    let bytes = resp.bytes().await.map_err(|e| JenkinsError::Unreachable {
        url: url.to_owned(),
        message: error_chain(&e),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| JenkinsError::Protocol {
        url: url.to_owned(),
        message: e.to_string(),
    })
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_locations() {
        assert_eq!(job_path("a/b"), "job/a/job/b");
        assert_eq!(job_path("unit"), "job/unit");
        assert_eq!(job_path("x/feature branch"), "job/x/job/feature%20branch");
        assert_eq!(
            queue_id_from_location("http://j:8080/jenkins/queue/item/42/"),
            Some(42)
        );
        assert_eq!(queue_id_from_location("http://j/job/x/"), None);
    }

    #[test]
    fn secrets_are_not_printed() {
        let auth = JenkinsAuth::Basic {
            user: "bot".into(),
            token: Secret::new("s3cr3t"),
        };
        assert!(!format!("{auth:?}").contains("s3cr3t"));
    }
}
