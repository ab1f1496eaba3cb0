//! The GitHub failure comment (reference §2.1 step 2): one bot comment per pull request, found
//! by its `<!-- test report -->` marker, holding a table row per failed job context; created,
//! edited, moved to the bottom and deleted as Prow does.
//!
//! Unlike Prow, the pull request's comments are listed only the first time this process reports
//! on it; afterwards the marker comments it created or edited are remembered.
//!
//! In `summary_comment_repos` the comment covers every job of the pull request and is posted
//! once they are all finished, saying "all tests passed" when none failed.

use std::collections::HashMap;
use std::sync::Arc;

use bosun_proto::{ProwJob, ProwJobState, ProwJobType};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::client::{GitHubClient, Method, classify};
use crate::{ReportError, job_state};

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

/// The comment body for `rows` addressed to `author`, with the rendered report template when
/// one is configured. No rows (summary mode) says all tests passed.
pub fn comment_body(author: &str, rows: &[String], template: Option<&str>) -> String {
    let mut lines = if rows.is_empty() {
        vec![format!("@{author}: all tests **passed!**"), String::new()]
    } else {
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
        lines
    };
    if let Some(template) = template {
        lines.push(String::new());
        lines.push(template.to_owned());
    }
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

/// What to do with the comments, given the existing marker comments (oldest first) and the jobs.
#[derive(Debug, PartialEq, Eq)]
pub struct CommentPlan {
    /// Comment ids to delete.
    pub delete: Vec<u64>,
    /// Edit this comment to the body.
    pub edit: Option<(u64, String)>,
    /// Create a comment with the body.
    pub create: Option<String>,
}

/// Prow's `ReportComment` for finished `jobs` of one pull request (one job, or every job of
/// the pull request in summary mode, where `must_create` is set), addressed to `author`.
pub fn plan(
    existing: &[(u64, String)],
    jobs: &[ProwJob],
    author: &str,
    must_create: bool,
    template: Option<&str>,
) -> CommentPlan {
    let mut delete: Vec<u64> = Vec::new();
    let mut all_rows: Vec<String> = Vec::new();
    for (i, (id, body)) in existing.iter().enumerate() {
        if i + 1 < existing.len() {
            delete.push(*id);
        }
        all_rows.extend(parse_rows(body));
    }
    // Keep a row only if no later row has the same key and no current job has its context.
    let mut rows: Vec<String> = Vec::new();
    for (i, row) in all_rows.iter().enumerate() {
        let key = row_key(row);
        let later = all_rows[i + 1..].iter().any(|r| row_key(r) == key);
        if !later && !jobs.iter().any(|j| j.spec.context == key) {
            rows.push(row.clone());
        }
    }
    let mut added = false;
    for job in jobs {
        if job_state(job) == ProwJobState::Failure {
            rows.push(comment_row(job));
            added = true;
        }
    }
    let latest = existing.last().map(|(id, _)| *id);
    let any_aborted = jobs.iter().any(|j| job_state(j) == ProwJobState::Aborted);
    let body = (!rows.is_empty() || (must_create && !any_aborted))
        .then(|| comment_body(author, &rows, template));
    let mut plan = CommentPlan {
        delete,
        edit: None,
        create: None,
    };
    match latest {
        Some(id) if added || rows.is_empty() => {
            plan.delete.push(id);
            plan.create = body;
        }
        Some(id) => plan.edit = body.map(|body| (id, body)),
        None => plan.create = body,
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
    client: Arc<GitHubClient>,
    known: Mutex<HashMap<String, Vec<(u64, String)>>>,
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl Comments {
    pub(crate) fn new(client: Arc<GitHubClient>) -> Self {
        Comments {
            client,
            known: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// The lock of one pull request (Prow's shared per-PR lock).
    pub(crate) async fn lock_for(&self, key: &str) -> Arc<Mutex<()>> {
        self.locks
            .lock()
            .await
            .entry(key.to_owned())
            .or_default()
            .clone()
    }

    async fn list_marker_comments(
        &self,
        org: &str,
        repo: &str,
        number: i64,
    ) -> Result<Vec<(u64, String)>, ReportError> {
        let bot = self.client.bot_login().await?.to_owned();
        let mut out = Vec::new();
        for page in 1.. {
            let answer = self
                .client
                .request(
                    "github list comments",
                    org,
                    Method::Get,
                    &format!(
                        "/repos/{org}/{repo}/issues/{number}/comments?per_page=100&page={page}"
                    ),
                    None,
                )
                .await?;
            let comments: Vec<Comment> = serde_json::from_str(&answer.body).map_err(|e| {
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

    /// Updates the failure comment of the pull request of `jobs` (all of one pull request);
    /// the caller holds the pull request's lock.
    pub(crate) async fn report(
        &self,
        jobs: &[ProwJob],
        must_create: bool,
        template: Option<&str>,
    ) -> Result<(), ReportError> {
        let Some(refs) = jobs.first().and_then(|j| j.spec.refs.as_ref()) else {
            return Ok(());
        };
        let [pull] = refs.pulls.as_slice() else {
            return Ok(());
        };
        let (org, repo, number) = (refs.org.as_str(), refs.repo.as_str(), pull.number);
        let key = format!("{org}/{repo}#{number}");
        let cached = self.known.lock().await.get(&key).cloned();
        let existing = match cached {
            Some(existing) => existing,
            None => self.list_marker_comments(org, repo, number).await?,
        };
        let plan = plan(&existing, jobs, &pull.author, must_create, template);
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
            let answer = self
                .client
                .request_raw(
                    "github delete comment",
                    org,
                    Method::Delete,
                    &format!("/repos/{org}/{repo}/issues/comments/{id}"),
                    None,
                )
                .await?;
            // 404: already gone.
            if !answer.status.is_success() && answer.status != http::StatusCode::NOT_FOUND {
                return Err(classify("github delete comment", &answer));
            }
        }
        if let Some((id, body)) = &plan.edit {
            self.client
                .request(
                    "github edit comment",
                    org,
                    Method::Patch,
                    &format!("/repos/{org}/{repo}/issues/comments/{id}"),
                    Some(&serde_json::json!({ "body": body })),
                )
                .await?;
            for (known_id, known_body) in remaining.iter_mut() {
                if known_id == id {
                    known_body.clone_from(body);
                }
            }
        }
        if let Some(body) = &plan.create {
            let answer = self
                .client
                .request(
                    "github create comment",
                    org,
                    Method::Post,
                    &format!("/repos/{org}/{repo}/issues/{number}/comments"),
                    Some(&serde_json::json!({ "body": body })),
                )
                .await?;
            let created: Comment = serde_json::from_str(&answer.body).map_err(|e| {
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
        let p = plan(&[], std::slice::from_ref(&fail), "alice", false, None);
        let body = p.create.clone().expect("create");
        assert!(p.edit.is_none() && p.delete.is_empty());
        assert!(body.starts_with("@alice: The following test **failed**"));
        assert!(
            body.contains("\nunit | abc | [link](https://prow/view/1) | true | `/test unit`\n")
        );
        assert!(body.ends_with("</details>\n<!-- test report -->"));
        assert_eq!(parse_rows(&body).len(), 1);

        // Another failure: the old comment is deleted and a new one with both rows created.
        let p2 = plan(
            &[(7, body.clone())],
            &[job("lint", "failure")],
            "alice",
            false,
            None,
        );
        assert_eq!(p2.delete, vec![7]);
        let body2 = p2.create.expect("create");
        assert!(body2.contains("The following tests **failed**"));
        assert_eq!(parse_rows(&body2).len(), 2);

        // lint passes: the comment is edited in place.
        let p3 = plan(
            &[(8, body2)],
            &[job("lint", "success")],
            "alice",
            false,
            None,
        );
        let (id, body3) = p3.edit.expect("edit");
        assert_eq!(id, 8);
        assert_eq!(parse_rows(&body3).len(), 1);
        assert!(p3.delete.is_empty() && p3.create.is_none());

        // unit passes: no rows remain, the comment is deleted.
        let p4 = plan(
            &[(8, body3)],
            &[job("unit", "success")],
            "alice",
            false,
            None,
        );
        assert_eq!(
            p4,
            CommentPlan {
                delete: vec![8],
                edit: None,
                create: None
            }
        );
    }

    #[test]
    fn summary_mode_comments_once_with_every_job() {
        let jobs = [job("unit", "success"), job("lint", "failure")];
        let p = plan(&[], &jobs, "alice", true, Some("see the dashboard"));
        let body = p.create.expect("create");
        assert!(body.starts_with("@alice: The following test **failed**"));
        assert_eq!(parse_rows(&body).len(), 1);
        assert!(body.contains("\nlint | abc | [link](https://prow/view/1) | true | `/test lint`\n\nsee the dashboard\n\n<details>"));

        // Everything passes: the old comment is replaced by "all tests passed".
        let passed = [job("unit", "success"), job("lint", "success")];
        let p = plan(&[(9, body)], &passed, "alice", true, None);
        assert_eq!(p.delete, vec![9]);
        let body = p.create.expect("create");
        // Prow's lines: the greeting, a blank line, then the usual blank line before <details>.
        assert!(body.starts_with("@alice: all tests **passed!**\n\n\n<details>"));
        assert!(parse_rows(&body).is_empty());

        // An aborted job among them: nothing is forced.
        let aborted = [job("unit", "success"), job("lint", "aborted")];
        let p = plan(&[], &aborted, "alice", true, None);
        assert_eq!(p.create, None);
    }
}
