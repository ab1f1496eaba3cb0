//! The parts of the GitHub test server the `trigger` plugin talks to, in GitHub's REST shapes:
//!
//! - `GET /repos/{o}/{r}/pulls/{n}`: the pull request (`number`, `state`, `draft`, `title`,
//!   `html_url`, `user`, `head {sha, ref}`, `base {ref, sha, repo}`, `labels`, `mergeable`);
//! - `GET /repos/{o}/{r}/pulls/{n}/files?per_page=&page=`: changed files (`filename`,
//!   `status`, `previous_filename`), paged;
//! - `GET /orgs/{org}/members/{user}`: 204 for a member, 404 otherwise;
//! - `GET /repos/{o}/{r}/collaborators/{user}`: 204 for a collaborator, 404 otherwise;
//! - `GET /repos/{o}/{r}/commits/{ref}/status`: the combined status, built from the statuses
//!   the server accepted (newest per context);
//! - `POST /repos/{o}/{r}/issues/{n}/labels` (`{"labels": [...]}`, answers the labels),
//!   `DELETE /repos/{o}/{r}/issues/{n}/labels/{name}` (404 `Label does not exist` when absent),
//!   `GET /repos/{o}/{r}/issues/{n}/labels`.
//!
//! The test plays the repository: [`PullRequest`]s, org members and collaborators are added
//! with the `GitHubServer` methods.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::github::CommitStatus;
use super::{Canned, RecordedRequest, json_body};

/// A pull request the server holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    /// `owner/repo`.
    pub repo: String,
    /// The number.
    pub number: i64,
    /// The author's login.
    pub author: String,
    /// The title.
    pub title: String,
    /// The head commit.
    pub head_sha: String,
    /// The head branch.
    pub head_ref: String,
    /// The base branch.
    pub base_ref: String,
    /// The base commit.
    pub base_sha: String,
    /// `open` or `closed`.
    pub state: String,
    /// A draft.
    pub draft: bool,
    /// Changed files.
    pub files: Vec<String>,
    /// `false` when GitHub found conflicts (`null` is sent while unknown).
    pub mergeable: Option<bool>,
}

impl PullRequest {
    /// An open pull request with defaults for everything but its identity.
    pub fn new(repo: &str, number: i64, author: &str, head_sha: &str) -> Self {
        PullRequest {
            repo: repo.to_owned(),
            number,
            author: author.to_owned(),
            title: format!("Change {number}"),
            head_sha: head_sha.to_owned(),
            head_ref: format!("feature-{number}"),
            base_ref: "main".to_owned(),
            base_sha: "b".repeat(40),
            state: "open".to_owned(),
            draft: false,
            files: Vec::new(),
            mergeable: Some(true),
        }
    }

    /// The pull request as GitHub's REST API shows it.
    pub fn to_json(&self, labels: &BTreeSet<String>) -> serde_json::Value {
        let (owner, name) = self.repo.split_once('/').unwrap_or((&self.repo, ""));
        let repo = json!({
            "name": name,
            "full_name": self.repo,
            "owner": {"login": owner},
            "html_url": format!("https://github.com/{}", self.repo),
        });
        json!({
            "number": self.number,
            "state": self.state,
            "draft": self.draft,
            "title": self.title,
            "html_url": format!("https://github.com/{}/pull/{}", self.repo, self.number),
            "user": {"login": self.author, "html_url": format!("https://github.com/{}", self.author)},
            "head": {"sha": self.head_sha, "ref": self.head_ref, "repo": repo},
            "base": {"sha": self.base_sha, "ref": self.base_ref, "repo": repo},
            "labels": labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>(),
            "mergeable": self.mergeable,
            "merged": false,
        })
    }
}

/// What the server knows about repositories.
#[derive(Debug, Default)]
pub(crate) struct Repos {
    /// (`owner/repo`, number) → pull request.
    pub(crate) pulls: BTreeMap<(String, i64), PullRequest>,
    /// (`owner/repo`, number) → labels.
    pub(crate) labels: BTreeMap<(String, i64), BTreeSet<String>>,
    /// (org, login) of org members.
    pub(crate) members: BTreeSet<(String, String)>,
    /// (`owner/repo`, login) of collaborators.
    pub(crate) collaborators: BTreeSet<(String, String)>,
}

fn not_found() -> Canned {
    Canned::json(
        404,
        json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}),
    )
}

fn query_usize(req: &RecordedRequest, key: &str) -> Option<usize> {
    req.query.as_deref().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
    })
}

/// Whether `path` is served here.
pub(crate) fn serves(parts: &[&str]) -> bool {
    matches!(
        parts,
        ["repos", _, _, "pulls", _]
            | ["repos", _, _, "pulls", _, "files"]
            | ["orgs", _, "members", _]
            | ["repos", _, _, "collaborators", _]
            | ["repos", _, _, "commits", _, "status"]
            | ["repos", _, _, "issues", _, "labels"]
            | ["repos", _, _, "issues", _, "labels", _]
    )
}

/// Answers a request for one of the [`serves`] paths (authentication already checked).
pub(crate) fn handle(
    req: &RecordedRequest,
    parts: &[&str],
    repos: &mut Repos,
    statuses: &[CommitStatus],
) -> Result<Canned, String> {
    let key = |owner: &str, repo: &str, number: &str| -> Option<(String, i64)> {
        Some((format!("{owner}/{repo}"), number.parse().ok()?))
    };
    match (req.method.as_str(), parts) {
        ("GET", ["repos", owner, repo, "pulls", number]) => {
            let Some(k) = key(owner, repo, number) else {
                return Ok(not_found());
            };
            Ok(match repos.pulls.get(&k) {
                Some(pr) => Canned::json(
                    200,
                    pr.to_json(&repos.labels.get(&k).cloned().unwrap_or_default()),
                ),
                None => not_found(),
            })
        }
        ("GET", ["repos", owner, repo, "pulls", number, "files"]) => {
            let Some(k) = key(owner, repo, number) else {
                return Ok(not_found());
            };
            let Some(pr) = repos.pulls.get(&k) else {
                return Ok(not_found());
            };
            let per_page = query_usize(req, "per_page").unwrap_or(30).clamp(1, 100);
            let page = query_usize(req, "page").unwrap_or(1).max(1);
            let files: Vec<serde_json::Value> = pr
                .files
                .iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|f| json!({"filename": f, "status": "modified", "additions": 1, "deletions": 0, "changes": 1}))
                .collect();
            Ok(Canned::json(200, serde_json::Value::Array(files)))
        }
        ("GET", ["orgs", org, "members", user]) => Ok(
            if repos
                .members
                .contains(&((*org).to_owned(), (*user).to_owned()))
            {
                Canned::text(204, "")
            } else {
                not_found()
            },
        ),
        ("GET", ["repos", owner, repo, "collaborators", user]) => {
            let repo = format!("{owner}/{repo}");
            Ok(
                if repos.collaborators.contains(&(repo, (*user).to_owned())) {
                    Canned::text(204, "")
                } else {
                    not_found()
                },
            )
        }
        ("GET", ["repos", owner, repo, "commits", sha, "status"]) => {
            let repo = format!("{owner}/{repo}");
            let mut newest: BTreeMap<&str, &CommitStatus> = BTreeMap::new();
            for s in statuses.iter().filter(|s| s.repo == repo && s.sha == *sha) {
                newest.insert(&s.context, s);
            }
            let states: Vec<&str> = newest.values().map(|s| s.state.as_str()).collect();
            let combined = if states.iter().any(|s| *s == "failure" || *s == "error") {
                "failure"
            } else if states.is_empty() || states.contains(&"pending") {
                "pending"
            } else {
                "success"
            };
            Ok(Canned::json(
                200,
                json!({
                    "state": combined,
                    "sha": sha,
                    "total_count": newest.len(),
                    "statuses": newest.values().map(|s| json!({
                        "context": s.context,
                        "state": s.state,
                        "description": s.description,
                        "target_url": s.target_url,
                    })).collect::<Vec<_>>(),
                }),
            ))
        }
        ("GET", ["repos", owner, repo, "issues", number, "labels"]) => {
            let Some(k) = key(owner, repo, number) else {
                return Ok(not_found());
            };
            Ok(labels_json(repos.labels.get(&k)))
        }
        ("POST", ["repos", owner, repo, "issues", number, "labels"]) => {
            let Some(k) = key(owner, repo, number) else {
                return Ok(not_found());
            };
            let body = json_body(req)?;
            let Some(serde_json::Value::Array(names)) = body.get("labels") else {
                return Err("labels is missing or not an array".to_owned());
            };
            let mut add = Vec::new();
            for n in names {
                match n.as_str() {
                    Some(s) if !s.is_empty() => add.push(s.to_owned()),
                    _ => return Err("labels must be non-empty strings".to_owned()),
                }
            }
            let set = repos.labels.entry(k.clone()).or_default();
            set.extend(add);
            Ok(labels_json(repos.labels.get(&k)))
        }
        ("DELETE", ["repos", owner, repo, "issues", number, "labels", name]) => {
            let Some(k) = key(owner, repo, number) else {
                return Ok(not_found());
            };
            let name = percent_decode(name);
            let removed = repos
                .labels
                .get_mut(&k)
                .is_some_and(|set| set.remove(&name));
            Ok(if removed {
                labels_json(repos.labels.get(&k))
            } else {
                Canned::json(404, json!({"message": "Label does not exist"}))
            })
        }
        (method, _) => Err(format!("method {method} on {} is not served", req.path)),
    }
}

fn labels_json(labels: Option<&BTreeSet<String>>) -> Canned {
    Canned::json(
        200,
        serde_json::Value::Array(
            labels
                .into_iter()
                .flatten()
                .map(|l| json!({"name": l, "color": "ededed"}))
                .collect(),
        ),
    )
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
