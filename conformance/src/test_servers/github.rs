//! A GitHub REST test server for commit statuses:
//! `POST /repos/{owner}/{repo}/statuses/{sha}` with `{"state","target_url","description",
//! "context"}` answering 201 with the status object; bad credentials answer 401
//! `{"message":"Bad credentials"}`, a bad state or a description over 140 characters 422
//! `Validation Failed`, an unknown SHA 422 `No commit found for SHA: …`.

use std::sync::{Arc, Mutex, PoisonError};

use serde_json::json;

use super::{Canned, RecordedRequest, TestServer, TestServerError, json_body};

/// A status the server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStatus {
    /// `owner/repo`.
    pub repo: String,
    /// The commit.
    pub sha: String,
    /// `pending`, `success`, `failure`, `error`.
    pub state: String,
    /// The description.
    pub description: String,
    /// The context.
    pub context: String,
    /// `target_url`, if sent.
    pub target_url: Option<String>,
}

/// The running server.
pub struct GitHubServer {
    server: TestServer,
    statuses: Arc<Mutex<Vec<CommitStatus>>>,
}

impl GitHubServer {
    /// Accepts `token` (`Authorization: Bearer` or `token`).
    pub async fn start(token: &str) -> Result<Self, TestServerError> {
        let token = token.to_owned();
        let statuses = Arc::new(Mutex::new(Vec::new()));
        let sink = statuses.clone();
        let server = TestServer::start(move |req| match handle(req, &token)? {
            Ok(status) => {
                let body = json!({
                    "url": format!("https://api.github.com/repos/{}/statuses/{}", status.repo, status.sha),
                    "id": 1,
                    "state": status.state,
                    "description": status.description,
                    "target_url": status.target_url,
                    "context": status.context,
                });
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(status);
                Ok(Canned::json(201, body))
            }
            Err(answer) => Ok(answer),
        })
        .await?;
        Ok(GitHubServer { server, statuses })
    }

    /// The API base URL.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Accepted statuses, in order.
    pub fn statuses(&self) -> Vec<CommitStatus> {
        self.statuses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The underlying recorder.
    pub fn server(&self) -> &TestServer {
        &self.server
    }

    /// The next request gets a secondary-rate-limit 403 with `Retry-After: secs`.
    pub fn rate_limit_next(&self, secs: u64) {
        self.server.fail_next(
            Canned::json(
                403,
                json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}),
            )
            .with_header("retry-after", &secs.to_string()),
        );
    }
}

fn validation_failed(message: &str) -> Canned {
    Canned::json(
        422,
        json!({"message": "Validation Failed", "errors": [{"resource": "Status", "code": "custom", "message": message}]}),
    )
}

fn handle(req: &RecordedRequest, token: &str) -> Result<Result<CommitStatus, Canned>, String> {
    let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let ["repos", owner, repo, "statuses", sha] = parts.as_slice() else {
        return Ok(Err(Canned::json(404, json!({"message": "Not Found"}))));
    };
    if req.method != "POST" {
        return Err(format!("method {} is not POST", req.method));
    }
    if req.header("user-agent").is_none_or(str::is_empty) {
        return Ok(Err(Canned::text(
            403,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header",
        )));
    }
    if req.bearer() != Some(token) {
        return Ok(Err(Canned::json(
            401,
            json!({"message": "Bad credentials"}),
        )));
    }
    let body = json_body(req)?;
    if sha.len() != 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(Err(Canned::json(
            422,
            json!({"message": format!("No commit found for SHA: {sha}")}),
        )));
    }
    let string = |key: &str| -> Result<Option<String>, String> {
        match body.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("{key} is not a string")),
        }
    };
    let state = string("state")?.unwrap_or_default();
    if !["pending", "success", "failure", "error"].contains(&state.as_str()) {
        return Ok(Err(validation_failed(&format!(
            "state {state:?} is not valid"
        ))));
    }
    let description = string("description")?.unwrap_or_default();
    if description.chars().count() > 140 {
        return Ok(Err(validation_failed(
            "description is too long (maximum is 140 characters)",
        )));
    }
    Ok(Ok(CommitStatus {
        repo: format!("{owner}/{repo}"),
        sha: (*sha).to_owned(),
        state,
        description,
        context: string("context")?.unwrap_or_else(|| "default".to_owned()),
        target_url: string("target_url")?,
    }))
}
