//! The HTTP side: authentication, URL routing, the verbs, watch and log streams.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::error::ApiError;
use super::resources::{self, ResourceDef};
use super::selectors::{FieldSelector, LabelSelector, Selectors};
use super::store::{Change, ChangeKind, Deleted, LogKey, Part, WatchMsg, WatchStart};
use super::{RequestRecord, Shared, Verb};

pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Serves one request; every failure becomes a `Status` response.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let response = match route(&shared, req).await {
        Ok(response) => response,
        Err(e) => json_response(e.code, &e.to_status()),
    };
    tracing::debug!(%method, %uri, status = %response.status(), "kube test API request");
    Ok(response)
}

fn response(code: u16, content_type: &'static str, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn json_response(code: u16, value: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    response(
        code,
        "application/json",
        Full::new(Bytes::from(bytes)).boxed_unsync(),
    )
}

fn stream_response(
    content_type: &'static str,
    stream: impl futures::Stream<Item = Bytes> + Send + 'static,
) -> Response<Body> {
    let body = StreamBody::new(stream.map(|b| Ok::<_, Infallible>(Frame::data(b))));
    response(200, content_type, body.boxed_unsync())
}

fn not_found() -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

pub(crate) fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The decoded `key=value` pairs of a query string, in order (repeated keys kept).
pub(crate) fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

fn parse_query(query: &str) -> HashMap<String, String> {
    query_pairs(query).into_iter().collect()
}

/// What a resource URL names.
struct Target {
    res: ResourceDef,
    ns: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

fn parse_target(
    table: &[ResourceDef],
    group: &str,
    version: &str,
    rest: &[&str],
) -> Result<Target, ApiError> {
    let find = |plural: &str| resources::find(table, group, version, plural).copied();
    let (res, ns, tail) = match rest {
        ["namespaces", ns, plural, tail @ ..] if find(plural).is_some_and(|r| r.namespaced) => (
            find(plural).ok_or_else(not_found)?,
            Some(ns.to_string()),
            tail,
        ),
        [plural, tail @ ..] => {
            let res = find(plural).ok_or_else(not_found)?;
            if res.namespaced && !tail.is_empty() {
                return Err(not_found());
            }
            (res, None, tail)
        }
        [] => return Err(not_found()),
    };
    let (name, sub) = match tail {
        [] => (None, None),
        [name] => (Some(name.to_string()), None),
        [name, sub] => {
            let known = (*sub == "status" && res.status) || (*sub == "log" && res.log);
            if !known {
                return Err(not_found());
            }
            (Some(name.to_string()), Some(sub.to_string()))
        }
        _ => return Err(not_found()),
    };
    Ok(Target { res, ns, name, sub })
}

async fn route(shared: &Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let expected = format!("Bearer {}", shared.token);
    let authorized = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected);
    if !authorized {
        return Err(ApiError::new(401, "Unauthorized", "Unauthorized"));
    }
    let path = req.uri().path().to_string();
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode(s, false))
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let table = &shared.resources;
    let ok = |value: Option<Value>| value.map(|v| json_response(200, &v)).ok_or_else(not_found);
    match segments.as_slice() {
        ["version"] => ok(Some(resources::version())),
        ["healthz" | "livez" | "readyz"] => Ok(response(
            200,
            "text/plain",
            Full::new(Bytes::from_static(b"ok")).boxed_unsync(),
        )),
        ["api"] => ok(Some(resources::core_versions(&shared.addr.to_string()))),
        ["apis"] => ok(Some(resources::group_list(table))),
        ["api", version] => ok(resources::resource_list(table, "", version)),
        ["apis", group] => ok(resources::group(table, group)),
        ["apis", group, version] => ok(resources::resource_list(table, group, version)),
        ["api", version, rest @ ..] => {
            let target = parse_target(table, "", version, rest)?;
            resource_request(shared, target, req).await
        }
        ["apis", group, version, rest @ ..] => {
            let target = parse_target(table, group, version, rest)?;
            resource_request(shared, target, req).await
        }
        _ => Err(not_found()),
    }
}

fn selectors(res: &ResourceDef, query: &HashMap<String, String>) -> Result<Selectors, ApiError> {
    let get = |k: &str| query.get(k).map(String::as_str).unwrap_or_default();
    Ok(Selectors {
        labels: LabelSelector::parse(get("labelSelector")).map_err(ApiError::bad_request)?,
        fields: FieldSelector::parse(get("fieldSelector"), res.field_labels)
            .map_err(ApiError::bad_request)?,
    })
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

async fn resource_request(
    shared: &Arc<Shared>,
    target: Target,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let query = parse_query(req.uri().query().unwrap_or_default());
    let flag = |k: &str| matches!(query.get(k).map(String::as_str), Some("1" | "true"));
    let Target { res, ns, name, sub } = target;
    let method = req.method().clone();
    let verb = match (&method, &name, sub.as_deref()) {
        (&Method::GET, None, _) if flag("watch") => Verb::Watch,
        (&Method::GET, None, _) => Verb::List,
        (&Method::GET, Some(_), _) => Verb::Get,
        (&Method::POST, None, None) => Verb::Create,
        (&Method::PUT, Some(_), Some("status") | None) => Verb::Update,
        (&Method::PATCH, Some(_), Some("status") | None) => Verb::Patch,
        (&Method::DELETE, Some(_), None) => Verb::Delete,
        (&Method::DELETE, None, None) => Verb::DeleteCollection,
        _ => {
            return Err(ApiError::new(
                405,
                "MethodNotAllowed",
                format!(
                    "the server does not allow this method on the requested resource ({method})"
                ),
            ));
        }
    };
    if res.namespaced && ns.is_none() && matches!(verb, Verb::Create | Verb::DeleteCollection) {
        return Err(not_found());
    }
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?
        .to_bytes();
    let body_json = match verb {
        Verb::Create | Verb::Update | Verb::Delete | Verb::DeleteCollection => parse_json(&body)?,
        _ => Value::Null,
    };
    let ns_str = ns.clone().unwrap_or_default();
    let record_name = name.clone().or_else(|| {
        body_json
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    {
        let mut state = shared.lock();
        state.requests.push(RequestRecord {
            verb,
            gvr: res.gvr,
            namespace: ns.clone(),
            name: record_name,
            subresource: sub.clone(),
        });
        if let Some(idx) = state
            .failures
            .iter()
            .position(|f| f.verb == verb && f.gvr == res.gvr)
            && let Some(failure) = state.failures.remove(idx)
        {
            return Err(ApiError::from_code(
                failure.code,
                format!("injected failure for {verb:?} {}", res.qualified()),
            ));
        }
    }
    let part = if sub.as_deref() == Some("status") {
        Part::Status
    } else {
        Part::Main
    };
    let name = name.unwrap_or_default();
    match verb {
        Verb::Get if sub.as_deref() == Some("log") => pod_log(shared, &res, &ns_str, &name, &query),
        Verb::Get => Ok(json_response(
            200,
            &shared.lock().get(&res, &ns_str, &name)?,
        )),
        Verb::List => {
            let selectors = selectors(&res, &query)?;
            let limit = query.get("limit").and_then(|l| l.parse().ok());
            let list = shared.lock().list(
                &res,
                ns.as_deref(),
                &selectors,
                limit,
                query.get("continue").map(String::as_str),
            )?;
            Ok(json_response(200, &list))
        }
        Verb::Watch => watch(shared, res, ns, &query),
        Verb::Create => Ok(json_response(
            201,
            &shared.lock().create(&res, &ns_str, body_json)?,
        )),
        Verb::Update => {
            let obj = shared
                .lock()
                .update(&res, &ns_str, &name, body_json, part)?;
            Ok(json_response(200, &obj))
        }
        Verb::Patch => {
            if content_type.starts_with("application/apply-patch")
                && query.get("fieldManager").is_none_or(String::is_empty)
            {
                return Err(ApiError::new(
                    422,
                    "Invalid",
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                ));
            }
            let obj = shared
                .lock()
                .patch(&res, &ns_str, &name, &content_type, &body, part)?;
            Ok(json_response(200, &obj))
        }
        Verb::Delete => match shared.lock().delete(&res, &ns_str, &name, &body_json)? {
            Deleted::Gone(status) => Ok(json_response(200, &status)),
            Deleted::Pending(obj) => Ok(json_response(200, &obj)),
        },
        Verb::DeleteCollection => {
            let selectors = selectors(&res, &query)?;
            let mut state = shared.lock();
            let list = state.list(&res, ns.as_deref(), &selectors, None, None)?;
            let items = list["items"].as_array().cloned().unwrap_or_default();
            let mut deleted = Vec::new();
            for item in items {
                let item_ns = item
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let item_name = item
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                match state.delete(&res, item_ns, item_name, &body_json)? {
                    Deleted::Gone(_) => deleted.push(item),
                    Deleted::Pending(obj) => deleted.push(obj),
                }
            }
            let mut out = list;
            out["items"] = Value::Array(deleted);
            Ok(json_response(200, &out))
        }
    }
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// One open watch.
struct WatchCursor {
    shared: Arc<Shared>,
    res: ResourceDef,
    selectors: Selectors,
    queue: VecDeque<Bytes>,
    rx: mpsc::UnboundedReceiver<WatchMsg>,
    bookmarks: bool,
    next_bookmark: Instant,
    deadline: Option<Instant>,
    last_rv: u64,
    done: bool,
}

enum Wake {
    Msg(Option<WatchMsg>),
    Bookmark,
    Timeout,
}

impl WatchCursor {
    /// Queues the event a change means for this watch, if any (selector transitions turn a
    /// MODIFIED into ADDED or DELETED, as the apiserver does).
    fn push(&mut self, msg: WatchMsg) {
        match msg {
            WatchMsg::Change(change) => self.push_change(&change),
            WatchMsg::Expired(e) => {
                self.queue.push_back(event_line("ERROR", &e.to_status()));
                self.done = true;
            }
        }
    }

    fn push_change(&mut self, change: &Change) {
        let was = change
            .old
            .as_ref()
            .is_some_and(|o| self.selectors.matches(o));
        let is = self.selectors.matches(&change.new);
        let kind = match (change.kind, was, is) {
            (ChangeKind::Added | ChangeKind::Deleted, _, true) => change.kind.as_str(),
            (ChangeKind::Modified, true, true) => "MODIFIED",
            (ChangeKind::Modified, false, true) => "ADDED",
            (ChangeKind::Modified, true, false) => "DELETED",
            _ => return,
        };
        self.last_rv = self.last_rv.max(change.rv);
        self.queue.push_back(event_line(kind, &change.new));
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        event_line(
            "BOOKMARK",
            &json!({"kind": self.res.kind, "apiVersion": self.res.gvr.api_version(), "metadata": metadata}),
        )
    }

    async fn next(mut self) -> Option<(Bytes, Self)> {
        loop {
            if let Some(line) = self.queue.pop_front() {
                return Some((line, self));
            }
            if self.done {
                return None;
            }
            let deadline = self.deadline;
            let wake = tokio::select! {
                msg = self.rx.recv() => Wake::Msg(msg),
                _ = tokio::time::sleep_until(self.next_bookmark), if self.bookmarks => Wake::Bookmark,
                _ = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                } => Wake::Timeout,
            };
            match wake {
                Wake::Msg(Some(msg)) => self.push(msg),
                Wake::Msg(None) | Wake::Timeout => self.done = true,
                Wake::Bookmark => {
                    // Every change up to `rv` is already in the channel (sent under the lock).
                    let rv = self.shared.lock().resource_version();
                    while let Ok(msg) = self.rx.try_recv() {
                        self.push(msg);
                    }
                    if !self.done {
                        let line = self.bookmark(rv.max(self.last_rv), false);
                        self.queue.push_back(line);
                    }
                    self.next_bookmark = Instant::now() + self.shared.bookmark_interval;
                }
            }
        }
    }
}

fn watch(
    shared: &Arc<Shared>,
    res: ResourceDef,
    ns: Option<String>,
    query: &HashMap<String, String>,
) -> Result<Response<Body>, ApiError> {
    let selectors = selectors(&res, query)?;
    let is_true = |k: &str| matches!(query.get(k).map(String::as_str), Some("1" | "true"));
    let send_initial = is_true("sendInitialEvents");
    let bookmarks = is_true("allowWatchBookmarks");
    let from = match query.get("resourceVersion").map(String::as_str) {
        None | Some("" | "0") => None,
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version {rv:?}")))?,
        ),
    };
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t));
    let snapshot = send_initial || from.is_none();
    let start = shared.lock().watch(&res, ns.as_deref(), from, snapshot);
    let (initial, rx, rv) = match start {
        WatchStart::Expired(e) => {
            return Ok(stream_response(
                "application/json",
                futures::stream::iter([event_line("ERROR", &e.to_status())]),
            ));
        }
        WatchStart::Started { initial, rx, rv } => (initial, rx, rv),
    };
    let mut cursor = WatchCursor {
        shared: shared.clone(),
        res,
        selectors,
        queue: VecDeque::new(),
        rx,
        bookmarks,
        next_bookmark: Instant::now() + shared.bookmark_interval,
        deadline: timeout,
        last_rv: from.unwrap_or(0),
        done: false,
    };
    for change in initial {
        cursor.push_change(&change);
    }
    if send_initial && bookmarks {
        let line = cursor.bookmark(rv, true);
        cursor.queue.push_back(line);
    }
    Ok(stream_response(
        "application/json",
        futures::stream::unfold(cursor, WatchCursor::next),
    ))
}

/// One log read (following or not).
struct LogCursor {
    shared: Arc<Shared>,
    pods: ResourceDef,
    key: LogKey,
    pos: usize,
    timestamps: bool,
    follow: bool,
    remaining: Option<usize>,
    rx: tokio::sync::watch::Receiver<u64>,
    done: bool,
}

impl LogCursor {
    async fn next(mut self) -> Option<(Bytes, Self)> {
        loop {
            if self.done || self.remaining == Some(0) {
                return None;
            }
            let (chunk, finished) = {
                let state = self.shared.lock();
                let pod_gone = state.get(&self.pods, &self.key.0, &self.key.1).is_err();
                match state.logs.get(&self.key) {
                    Some(buf) if buf.data.len() > self.pos => {
                        let chunk = buf.render(self.pos, self.timestamps);
                        self.pos = buf.data.len();
                        (Some(chunk), buf.finished || pod_gone)
                    }
                    Some(buf) => (None, buf.finished || pod_gone),
                    None => (None, pod_gone),
                }
            };
            if let Some(mut chunk) = chunk {
                if let Some(remaining) = self.remaining.as_mut() {
                    chunk.truncate(*remaining);
                    *remaining -= chunk.len();
                }
                if !self.follow {
                    self.done = true;
                }
                return Some((Bytes::from(chunk), self));
            }
            if !self.follow || finished || self.rx.changed().await.is_err() {
                return None;
            }
        }
    }
}

fn pod_log(
    shared: &Arc<Shared>,
    pods: &ResourceDef,
    ns: &str,
    name: &str,
    query: &HashMap<String, String>,
) -> Result<Response<Body>, ApiError> {
    let is_true = |k: &str| matches!(query.get(k).map(String::as_str), Some("1" | "true"));
    let number = |k: &str| query.get(k).and_then(|v| v.parse::<i64>().ok());
    let state = shared.lock();
    let key = state.log_key(pods, ns, name, query.get("container").map(String::as_str))?;
    let pos = match number("tailLines").and_then(|n| usize::try_from(n).ok()) {
        Some(lines) => state.logs.get(&key).map_or(0, |buf| buf.tail_start(lines)),
        None => 0,
    };
    let rx = state.log_tx.subscribe();
    drop(state);
    let cursor = LogCursor {
        shared: shared.clone(),
        pods: *pods,
        key,
        pos,
        timestamps: is_true("timestamps"),
        follow: is_true("follow"),
        remaining: number("limitBytes").and_then(|n| usize::try_from(n).ok()),
        rx,
        done: false,
    };
    Ok(stream_response(
        "text/plain",
        futures::stream::unfold(cursor, LogCursor::next),
    ))
}
