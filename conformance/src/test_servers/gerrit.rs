//! A Gerrit REST test server: `GET /a/changes/{id}` (change info with the `)]}'` prefix) and
//! `POST /a/changes/{id}/revisions/{revision}/review` with `{"message", "labels"}`.
//!
//! Authenticated paths (`/a/…`) require HTTP basic auth with the configured user and password
//! (else 401 `Unauthorized`); unknown changes answer 404 `Not found: <id>`, unknown revisions
//! 404 too; a vote on a label the account may not set answers 403
//! `Applying label "<label>": <value> is restricted`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::json;

use super::{Canned, RecordedRequest, TestServer, TestServerError, json_body};

/// A change the server knows.
#[derive(Debug, Clone)]
pub struct Change {
    /// `NEW`, `MERGED`, `ABANDONED`.
    pub status: String,
    /// Known revisions (commit SHAs).
    pub revisions: Vec<String>,
}

/// A review the server accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    /// The change id.
    pub change: String,
    /// The revision.
    pub revision: String,
    /// The message.
    pub message: String,
    /// The votes.
    pub labels: BTreeMap<String, i64>,
}

/// The running server.
pub struct GerritServer {
    server: TestServer,
    reviews: Arc<Mutex<Vec<Review>>>,
}

struct Config {
    user: String,
    password: String,
    changes: BTreeMap<String, Change>,
    allowed_labels: BTreeSet<String>,
}

impl GerritServer {
    /// Knows `changes` (by id) and lets `user`/`password` vote on `allowed_labels`.
    pub async fn start(
        user: &str,
        password: &str,
        changes: BTreeMap<String, Change>,
        allowed_labels: &[&str],
    ) -> Result<Self, TestServerError> {
        let config = Config {
            user: user.to_owned(),
            password: password.to_owned(),
            changes,
            allowed_labels: allowed_labels.iter().map(|l| (*l).to_owned()).collect(),
        };
        let reviews = Arc::new(Mutex::new(Vec::new()));
        let sink = reviews.clone();
        let server = TestServer::start(move |req| match handle(req, &config)? {
            Ok(review) => {
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(review);
                Ok(gerrit_json(200, json!({"labels": {}})))
            }
            Err(answer) => Ok(answer),
        })
        .await?;
        Ok(GerritServer { server, reviews })
    }

    /// The instance URL (`http://127.0.0.1:port`).
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Accepted reviews, in order.
    pub fn reviews(&self) -> Vec<Review> {
        self.reviews
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The underlying recorder.
    pub fn server(&self) -> &TestServer {
        &self.server
    }
}

/// A JSON answer with Gerrit's XSSI prefix.
fn gerrit_json(status: u16, body: serde_json::Value) -> Canned {
    Canned {
        status,
        headers: Vec::new(),
        content_type: "application/json; charset=utf-8",
        body: format!(")]}}'\n{body}"),
    }
}

fn basic_ok(req: &RecordedRequest, user: &str, password: &str) -> bool {
    let Some(encoded) = req
        .header("authorization")
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    super::decode_base64(encoded.trim())
        .and_then(|d| String::from_utf8(d).ok())
        .is_some_and(|d| d == format!("{user}:{password}"))
}

/// `Ok(Ok(review))` an accepted review; `Ok(Err(answer))` any other answer.
fn handle(req: &RecordedRequest, config: &Config) -> Result<Result<Review, Canned>, String> {
    let Some(path) = req.path.strip_prefix("/a/") else {
        return Ok(Err(Canned::text(401, "Unauthorized")));
    };
    if !basic_ok(req, &config.user, &config.password) {
        return Ok(Err(Canned::text(401, "Unauthorized")));
    }
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["changes", id] => {
            if req.method != "GET" {
                return Err(format!("method {} is not GET", req.method));
            }
            let Some(change) = config.changes.get(*id) else {
                return Ok(Err(Canned::text(404, &format!("Not found: {id}"))));
            };
            Ok(Err(gerrit_json(
                200,
                json!({"id": id, "status": change.status, "_number": 1}),
            )))
        }
        ["changes", id, "revisions", revision, "review"] => {
            if req.method != "POST" {
                return Err(format!("method {} is not POST", req.method));
            }
            let body = json_body(req)?;
            let Some(change) = config.changes.get(*id) else {
                return Ok(Err(Canned::text(404, &format!("Not found: {id}"))));
            };
            if !change.revisions.iter().any(|r| r == revision) {
                return Ok(Err(Canned::text(404, &format!("Not found: {revision}"))));
            }
            let message = match body.get("message") {
                Some(serde_json::Value::String(m)) => m.clone(),
                None => String::new(),
                Some(_) => return Err("message is not a string".to_owned()),
            };
            let mut labels = BTreeMap::new();
            match body.get("labels") {
                None => {}
                Some(serde_json::Value::Object(map)) => {
                    for (label, value) in map {
                        let Some(value) = value.as_i64() else {
                            return Err(format!("vote on {label} is not an integer"));
                        };
                        if !config.allowed_labels.contains(label) {
                            return Ok(Err(Canned::text(
                                403,
                                &format!("Applying label \"{label}\": {value} is restricted"),
                            )));
                        }
                        labels.insert(label.clone(), value);
                    }
                }
                Some(_) => return Err("labels is not an object".to_owned()),
            }
            Ok(Ok(Review {
                change: (*id).to_owned(),
                revision: (*revision).to_owned(),
                message,
                labels,
            }))
        }
        _ => Ok(Err(Canned::text(404, "Not Found"))),
    }
}
