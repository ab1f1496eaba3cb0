//! The parts of GitHub's webhook payloads (and REST objects of the same shape) the trigger
//! reads. Fields GitHub may omit default to empty; unknown fields are ignored (GitHub adds
//! fields all the time).

use serde::Deserialize;

/// A user or an organization.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct User {
    /// The login.
    pub login: String,
    /// `https://github.com/<login>`.
    pub html_url: String,
    /// The name (push payloads name the repository owner here).
    pub name: Option<String>,
}

/// A repository.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Repository {
    /// The name.
    pub name: String,
    /// `owner/name`.
    pub full_name: String,
    /// The owner.
    pub owner: User,
    /// `https://github.com/owner/name`.
    pub html_url: String,
}

impl Repository {
    /// The owner's login (push payloads carry it as `owner.name`).
    pub fn owner_login(&self) -> &str {
        if !self.owner.login.is_empty() {
            &self.owner.login
        } else {
            self.owner.name.as_deref().unwrap_or_default()
        }
    }
}

/// A label.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Label {
    /// The name.
    pub name: String,
}

/// One side of a pull request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Branch {
    /// The branch.
    #[serde(rename = "ref")]
    pub branch: String,
    /// The commit.
    pub sha: String,
    /// The repository (the base repository on the base side).
    pub repo: Repository,
}

/// A pull request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PullRequest {
    /// The number.
    pub number: i64,
    /// `open` or `closed`.
    pub state: String,
    /// A draft.
    pub draft: bool,
    /// The title.
    pub title: String,
    /// The body.
    pub body: Option<String>,
    /// `https://github.com/o/r/pull/n`.
    pub html_url: String,
    /// The author.
    pub user: User,
    /// The head.
    pub head: Branch,
    /// The base.
    pub base: Branch,
    /// Labels.
    pub labels: Vec<Label>,
    /// `false` when GitHub found conflicts; `None` while unknown.
    pub mergeable: Option<bool>,
}

impl PullRequest {
    /// Whether the pull request carries `label`.
    pub fn has_label(&self, label: &str) -> bool {
        self.labels.iter().any(|l| l.name == label)
    }
}

/// `pull_request`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PullRequestEvent {
    /// `opened`, `synchronize`, …
    pub action: String,
    /// The number.
    pub number: i64,
    /// The pull request.
    pub pull_request: PullRequest,
    /// The label (for `labeled`).
    pub label: Option<Label>,
    /// Who did it.
    pub sender: User,
    /// What changed (for `edited`).
    pub changes: Option<serde_json::Value>,
    /// The repository.
    pub repository: Repository,
}

impl PullRequestEvent {
    /// `edited` with the base branch changed.
    pub fn base_changed(&self) -> bool {
        let Some(base) = self.changes.as_ref().and_then(|c| c.get("base")) else {
            return false;
        };
        base.pointer("/ref/from").is_some() || base.pointer("/sha/from").is_some()
    }
}

/// An issue (a pull request has `pull_request` set).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Issue {
    /// The number.
    pub number: i64,
    /// `open` or `closed`.
    pub state: String,
    /// The author.
    pub user: User,
    /// Labels.
    pub labels: Vec<Label>,
    /// Present for pull requests.
    pub pull_request: Option<serde_json::Value>,
    /// `https://github.com/o/r/pull/n`.
    pub html_url: String,
}

/// A comment.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Comment {
    /// The text.
    pub body: String,
    /// The author.
    pub user: User,
    /// Link to the comment.
    pub html_url: String,
}

/// `issue_comment`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct IssueCommentEvent {
    /// `created`, `edited`, `deleted`.
    pub action: String,
    /// The issue or pull request.
    pub issue: Issue,
    /// The comment.
    pub comment: Comment,
    /// The repository.
    pub repository: Repository,
}

/// A pushed commit.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PushCommit {
    /// Added files.
    pub added: Vec<String>,
    /// Removed files.
    pub removed: Vec<String>,
    /// Modified files.
    pub modified: Vec<String>,
}

/// `push`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PushEvent {
    /// `refs/heads/main`, `refs/tags/v1`.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The old head.
    pub before: String,
    /// The new head.
    pub after: String,
    /// A branch deletion.
    pub deleted: bool,
    /// The compare URL.
    pub compare: String,
    /// The commits.
    pub commits: Vec<PushCommit>,
    /// The repository.
    pub repository: Repository,
}

impl PushEvent {
    /// The branch (or tag) pushed to.
    pub fn branch(&self) -> &str {
        self.git_ref
            .strip_prefix("refs/heads/")
            .or_else(|| self.git_ref.strip_prefix("refs/tags/"))
            .unwrap_or(&self.git_ref)
    }

    /// Every file the pushed commits touched, once each, in first-seen order.
    pub fn changed_files(&self) -> Vec<String> {
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for c in &self.commits {
            for f in c.added.iter().chain(&c.removed).chain(&c.modified) {
                if seen.insert(f.as_str()) {
                    out.push(f.clone());
                }
            }
        }
        out
    }
}
