//! The GitHub failure comment (reference §2.1 step 2): one bot comment per pull request, found
//! by its `<!-- test report -->` marker, holding a table row per failed job context; created,
//! edited, moved to the bottom and deleted as Prow does.
//!
//! Unlike Prow, the pull request's comments are listed only the first time this process reports
//! on it; afterwards the marker comments it created or edited are remembered.

use std::collections::HashMap;
use std::sync::Arc;

use bosun_proto::{ProwJob, ProwJobState, ProwJobType};
use serde::Deserialize;
use tokio::sync::{Mutex, OnceCell};

use crate::config::Secret;
use crate::{ReportError, http, job_state};

/// The marker that identifies the failure comment.
pub const COMMENT_MARKER: &str = "<!-- test report -->";
const ABOUT_THIS_BOT: &str = "Instructions for interacting with me using PR comments are available [here](https://git.k8s.io/community/contributors/guide/pull-requests.md).  If you have questions or suggestions related to my behavior, please file an issue against the [kubernetes-sigs/prow](https://github.com/kubernetes-sigs/prow/issues/new?title=Prow%20issue:) repository. I understand the commands that are listed [here](https://go.k8s.io/bot-commands).";

/// The table row of a job: context, commit, details link, required, rerun command.
pub fn comment_row(job: &ProwJob) -> String {
    let sha = job
        .spec
        .refs
        .as_ref()
        .and_then(|r| r.pulls.first())
        .map_or("", |p| p.sha.as_str());
    let url = job.status.as_ref().map_or("", |s| s.url.as_str());
    let optional = job
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("prow.k8s.io/is-optional"));
    let required = match (job.spec.r#type, optional.map(String::as_str)) {
        (ProwJobType::Presubmit, Some("true")) => "false",
        (ProwJobType::Presubmit, Some("false")) => "true",
        _ => "unknown",
    };
    format!(
        "{} | {sha} | [link]({url}) | {required} | `{}`",
        job.spec.context, job.spec.rerun_command
    )
}

/// The comment body for `rows` addressed to `author`.
pub fn comment_body(author: &str, rows: &[String]) -> String {
    let plural = if rows.len() > 1 { "s" } else { "" };
    let mut lines = vec![
        format!(
            "@{author}: The following test{plural} **failed**, say `/retest` to rerun all failed tests or `/retest-required` to rerun all mandatory failed tests:"
        ),
        String::new(),
        "Test name | Commit | Details | Required | Rerun command".to_owned(),
        "--- | --- | --- | --- | ---".to_owned(),
    ];
    lines.extend(rows.iter().cloned());
    lines.extend(
        [
            "",
            "<details>",
            "",
            ABOUT_THIS_BOT,
            "</details>",
            COMMENT_MARKER,
        ]
        .map(str::to_owned),
    );
    lines.join("\n")
}

/// The rows of a marker comment: the non-empty lines after the `---` line, up to an empty one.
pub fn parse_rows(body: &str) -> Vec<String> {
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in body.lines() {
        if in_table {
            let line = line.trim();
            if line.is_empty() {
                break;
            }
            rows.push(line.to_owned());
        } else if line.starts_with("---") {
            in_table = true;
        }
    }
    rows
}

fn row_key(row: &str) -> &str {
    row.split(" | ").next().unwrap_or(row)
}

/// What to do with the comments, given the existing marker comments (oldest first) and the job.
#[derive(Debug, PartialEq, Eq)]
pub struct CommentPlan {
    /// Comment ids to delete.
    pub delete: Vec<u64>,
    /// Edit this comment to the body.
    pub edit: Option<(u64, String)>,
    /// Create a comment with the body.
    pub create: Option<String>,
}

/// Prow's `ReportComment` for one finished job.
pub fn plan(existing: &[(u64, String)], job: &ProwJob, author: &str) -> CommentPlan {
    let mut delete: Vec<u64> = Vec::new();
    let mut all_rows: Vec<String> = Vec::new();
    for (i, (id, body)) in existing.iter().enumerate() {
        if i + 1 < existing.len() {
            delete.push(*id);
        }
        all_rows.extend(parse_rows(body));
    }
    // Keep a row only if no later row has the same key and it is not this job's context.
    let mut rows: Vec<String> = Vec::new();
    for (i, row) in all_rows.iter().enumerate() {
        let key = row_key(row);
        let later = all_rows[i + 1..].iter().any(|r| row_key(r) == key);
        if !later && key != job.spec.context {
            rows.push(row.clone());
        }
    }
    let added = job_state(job) == ProwJobState::Failure;
    if added {
        rows.push(comment_row(job));
    }
    let latest = existing.last().map(|(id, _)| *id);
    let mut plan = CommentPlan {
        delete,
        edit: None,
        create: None,
    };
    let body = (!rows.is_empty()).then(|| comment_body(author, &rows));
    match (latest, body) {
        (Some(id), Some(body)) if !added => plan.edit = Some((id, body)),
        (Some(id), body) => {
            plan.delete.push(id);
            plan.create = body;
        }
        (None, body) => plan.create = body,
    }
    plan
}

#[derive(Deserialize)]
struct Comment {
    id: u64,
    #[serde(default)]
    body: String,
    user: Option<User>,
}

#[derive(Deserialize)]
struct User {
    login: String,
}

/// The comment client and its memory of marker comments per pull request.
pub(crate) struct Comments {
    client: reqwest::Client,
    base_url: String,
    token: Secret,
    bot: OnceCell<String>,
    known: Mutex<HashMap<String, Vec<(u64, String)>>>,
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl Comments {
    pub(crate) fn new(client: reqwest::Client, base_url: String, token: Secret) -> Self {
        Comments {
            client,
            base_url,
            token,
            bot: OnceCell::new(),
            known: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(self.token.expose())
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header(reqwest::header::USER_AGENT, "bosun")
    }

    async fn send(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<String, ReportError> {
        let response = request
            .send()
            .await
            .map_err(|e| http::transport_error(what, e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .map_err(|e| http::transport_error(what, e))?;
        if status.is_success() {
            return Ok(text);
        }
        if status == reqwest::StatusCode::FORBIDDEN && headers.contains_key("retry-after") {
            return Err(ReportError::Transient {
                message: format!("{what}: rate limited"),
                retry_after: http::retry_after(&headers),
            });
        }
        Err(http::status_error(what, status, &headers, &text))
    }

    async fn bot_login(&self) -> Result<&str, ReportError> {
        self.bot
            .get_or_try_init(|| async {
                let text = self
                    .send(
                        "github get user",
                        self.request(reqwest::Method::GET, "/user"),
                    )
                    .await?;
                let user: User = serde_json::from_str(&text).map_err(|e| {
                    ReportError::transient(format!("github get user: unreadable answer: {e}"))
                })?;
                Ok(user.login)
            })
            .await
            .map(String::as_str)
    }

    async fn list_marker_comments(
        &self,
        org: &str,
        repo: &str,
        number: i64,
    ) -> Result<Vec<(u64, String)>, ReportError> {
        let bot = self.bot_login().await?.to_owned();
        let mut out = Vec::new();
        for page in 1.. {
            let text = self
                .send(
                    "github list comments",
                    self.request(
                        reqwest::Method::GET,
                        &format!(
                            "/repos/{org}/{repo}/issues/{number}/comments?per_page=100&page={page}"
                        ),
                    ),
                )
                .await?;
            let comments: Vec<Comment> = serde_json::from_str(&text).map_err(|e| {
                ReportError::transient(format!("github list comments: unreadable answer: {e}"))
            })?;
            let last = comments.len() < 100;
            out.extend(
                comments
                    .into_iter()
                    .filter(|c| {
                        c.body.contains(COMMENT_MARKER)
                            && c.user.as_ref().is_some_and(|u| u.login == bot)
                    })
                    .map(|c| (c.id, c.body)),
            );
            if last {
                break;
            }
        }
        Ok(out)
    }

    /// Updates the failure comment of the job's pull request.
    pub(crate) async fn report(&self, job: &ProwJob) -> Result<(), ReportError> {
        let Some(refs) = job.spec.refs.as_ref() else {
            return Ok(());
        };
        let [pull] = refs.pulls.as_slice() else {
            return Ok(());
        };
        let (org, repo, number) = (refs.org.as_str(), refs.repo.as_str(), pull.number);
        let key = format!("{org}/{repo}#{number}");
        let lock = self
            .locks
            .lock()
            .await
            .entry(key.clone())
            .or_default()
            .clone();
        let _guard = lock.lock().await;

        let cached = self.known.lock().await.get(&key).cloned();
        let existing = match cached {
            Some(existing) => existing,
            None => self.list_marker_comments(org, repo, number).await?,
        };
        let plan = plan(&existing, job, &pull.author);
        let mut remaining: Vec<(u64, String)> = existing
            .into_iter()
            .filter(|(id, _)| !plan.delete.contains(id))
            .collect();
        let result = self.apply(org, repo, number, &plan, &mut remaining).await;
        let mut known = self.known.lock().await;
        match &result {
            Ok(()) => {
                known.insert(key, remaining);
            }
            // Someone else changed the comments: list them again next time.
            Err(_) => {
                known.remove(&key);
            }
        }
        result
    }

    async fn apply(
        &self,
        org: &str,
        repo: &str,
        number: i64,
        plan: &CommentPlan,
        remaining: &mut Vec<(u64, String)>,
    ) -> Result<(), ReportError> {
        for id in &plan.delete {
            let result = self
                .send(
                    "github delete comment",
                    self.request(
                        reqwest::Method::DELETE,
                        &format!("/repos/{org}/{repo}/issues/comments/{id}"),
                    ),
                )
                .await;
            match result {
                Ok(_) => {}
                // Already gone.
                Err(ReportError::Permanent(m)) if m.contains("http 404") => {}
                Err(e) => return Err(e),
            }
        }
        if let Some((id, body)) = &plan.edit {
            self.send(
                "github edit comment",
                self.request(
                    reqwest::Method::PATCH,
                    &format!("/repos/{org}/{repo}/issues/comments/{id}"),
                )
                .json(&serde_json::json!({ "body": body })),
            )
            .await?;
            for (known_id, known_body) in remaining.iter_mut() {
                if known_id == id {
                    known_body.clone_from(body);
                }
            }
        }
        if let Some(body) = &plan.create {
            let text = self
                .send(
                    "github create comment",
                    self.request(
                        reqwest::Method::POST,
                        &format!("/repos/{org}/{repo}/issues/{number}/comments"),
                    )
                    .json(&serde_json::json!({ "body": body })),
                )
                .await?;
            let created: Comment = serde_json::from_str(&text).map_err(|e| {
                ReportError::transient(format!("github create comment: unreadable answer: {e}"))
            })?;
            remaining.push((created.id, body.clone()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(context: &str, state: &str) -> ProwJob {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "prow.k8s.io/v1",
            "kind": "ProwJob",
            "metadata": {"name": context, "labels": {"prow.k8s.io/is-optional": "false"}},
            "spec": {
                "type": "presubmit", "job": context, "context": context,
                "rerun_command": format!("/test {context}"),
                "refs": {"org": "o", "repo": "r", "base_sha": "b",
                         "pulls": [{"number": 1, "author": "alice", "sha": "abc"}]}
            },
            "status": {"state": state, "url": "https://prow/view/1"}
        }))
        .expect("job")
    }

    #[test]
    fn create_then_edit_then_delete() {
        let fail = job("unit", "failure");
        let p = plan(&[], &fail, "alice");
        let body = p.create.clone().expect("create");
        assert!(p.edit.is_none() && p.delete.is_empty());
        assert!(body.starts_with("@alice: The following test **failed**"));
        assert!(
            body.contains("\nunit | abc | [link](https://prow/view/1) | true | `/test unit`\n")
        );
        assert!(body.ends_with("</details>\n<!-- test report -->"));
        assert_eq!(parse_rows(&body).len(), 1);

        // Another failure: the old comment is deleted and a new one with both rows created.
        let p2 = plan(&[(7, body.clone())], &job("lint", "failure"), "alice");
        assert_eq!(p2.delete, vec![7]);
        let body2 = p2.create.expect("create");
        assert!(body2.contains("The following tests **failed**"));
        assert_eq!(parse_rows(&body2).len(), 2);

        // lint passes: the comment is edited in place.
        let p3 = plan(&[(8, body2)], &job("lint", "success"), "alice");
        let (id, body3) = p3.edit.expect("edit");
        assert_eq!(id, 8);
        assert_eq!(parse_rows(&body3).len(), 1);
        assert!(p3.delete.is_empty() && p3.create.is_none());

        // unit passes: no rows remain, the comment is deleted.
        let p4 = plan(&[(8, body3)], &job("unit", "success"), "alice");
        assert_eq!(
            p4,
            CommentPlan {
                delete: vec![8],
                edit: None,
                create: None
            }
        );
    }
}
