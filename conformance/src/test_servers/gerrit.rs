//! A Gerrit REST test server speaking the real shapes (JSON behind the `)]}'` prefix, Gerrit's
//! `yyyy-mm-dd hh:mm:ss.nnnnnnnnn` UTC timestamps, `_number` and friends) for what bosun's
//! Gerrit reporter and adapter use:
//!
//! - `GET [/a]/changes/?q=…&o=…&n=…&S=…`: query with `project:`, `branch:`, `-branch:` and
//!   `status:` terms (parentheses, `OR` and `AND` as Prow writes them), newest-updated first,
//!   paged by `n` (limit) and `S` (start) with `_more_changes: true` on the last item when more
//!   follow; the `o` options `CURRENT_REVISION`, `CURRENT_COMMIT`, `CURRENT_FILES`, `MESSAGES`,
//!   `LABELS` (and a few harmless others) add what they add in Gerrit;
//! - `GET [/a]/changes/{id}` (the change, or 404 `Not found: <id>`);
//! - `GET [/a]/changes/{id}/comments` (published comments by path, patchset-level ones under
//!   `/PATCHSET_LEVEL`);
//! - `GET [/a]/projects/{project}/branches/{branch}` (`{"ref", "revision"}`);
//! - `GET /a/accounts/self` (the authenticated account);
//! - `POST /a/changes/{id}/revisions/{revision}/review` with `{"message", "labels"}`: recorded,
//!   and, as in Gerrit, added to the change as a message by the bot account (bumping
//!   `updated`).
//!
//! Authenticated paths (`/a/…`) require HTTP basic auth with the configured user and password
//! (else 401 `Unauthorized`); anonymous reads are allowed, anonymous writes and
//! `/accounts/self` answer 403 `Authentication required`. Unknown revisions answer 404; a vote
//! on a label the account may not set answers 403
//! `Applying label "<label>": <value> is restricted`. A query term the server does not know
//! is a contract violation (400).
//!
//! Tests play the users: [`GerritServer::add_change`], [`GerritServer::add_patchset`],
//! [`GerritServer::post_message`], [`GerritServer::post_comment`],
//! [`GerritServer::set_work_in_progress`] and [`GerritServer::merge`] each bump the change's
//! `updated` time (strictly increasing across the server).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Canned, RecordedRequest, TestServer, TestServerError, json_body};
use crate::kube_api::http::{self, percent_decode};

/// The bot account's `_account_id` (the account of the configured user).
pub const BOT_ACCOUNT_ID: i64 = 1_000_000;

/// A change the server knows, as [`GerritServer::start`] takes it (a minimal change: no
/// project, branch `main`, one patchset per revision).
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
    /// The change id as it appeared in the path.
    pub change: String,
    /// The revision.
    pub revision: String,
    /// The message.
    pub message: String,
    /// The votes.
    pub labels: BTreeMap<String, i64>,
}

/// A file a patchset changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// The path.
    pub path: String,
    /// Gerrit's status letter: `M` (modified), `A`, `D`, `R` (renamed), `C` (copied).
    pub status: char,
    /// The old path of a rename or copy.
    pub old_path: Option<String>,
}

impl FileChange {
    /// A modified file.
    pub fn modified(path: &str) -> Self {
        FileChange {
            path: path.to_owned(),
            status: 'M',
            old_path: None,
        }
    }

    /// A renamed file.
    pub fn renamed(old_path: &str, path: &str) -> Self {
        FileChange {
            path: path.to_owned(),
            status: 'R',
            old_path: Some(old_path.to_owned()),
        }
    }
}

impl From<&str> for FileChange {
    fn from(path: &str) -> Self {
        FileChange::modified(path)
    }
}

/// What [`GerritServer::add_change`] created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRef {
    /// `_number`.
    pub number: i64,
    /// `id` (`<project>~<number>`, the project URL-encoded), as Gerrit 3 writes it.
    pub id: String,
    /// The first patchset's revision.
    pub revision: String,
}

/// One message of a change, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeMessage {
    /// The author's user name.
    pub author: String,
    /// The text (`Patch Set N:\n\n…` for replies).
    pub message: String,
    /// The patchset it was posted on.
    pub revision_number: i64,
}

#[derive(Debug, Clone)]
struct Account {
    id: i64,
    username: String,
}

impl Account {
    fn json(&self) -> Value {
        json!({
            "_account_id": self.id,
            "name": self.username,
            "email": format!("{}@example.com", self.username),
            "username": self.username,
        })
    }
}

#[derive(Debug, Clone)]
struct PatchSet {
    number: i64,
    revision: String,
    created: DateTime<Utc>,
    uploader: i64,
    files: Vec<FileChange>,
}

#[derive(Debug, Clone)]
struct Message {
    id: String,
    author: i64,
    date: DateTime<Utc>,
    message: String,
    revision_number: i64,
}

#[derive(Debug, Clone)]
struct Comment {
    id: String,
    author: i64,
    updated: DateTime<Utc>,
    message: String,
    patch_set: i64,
}

#[derive(Debug, Clone)]
struct ChangeRecord {
    id: String,
    number: i64,
    change_id: String,
    project: String,
    branch: String,
    status: String,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    submitted: Option<DateTime<Utc>>,
    owner: i64,
    work_in_progress: bool,
    patchsets: Vec<PatchSet>,
    messages: Vec<Message>,
    comments: Vec<Comment>,
}

impl ChangeRecord {
    fn current(&self) -> Option<&PatchSet> {
        self.patchsets.last()
    }

    fn current_number(&self) -> i64 {
        self.current().map_or(0, |p| p.number)
    }
}

struct Config {
    user: String,
    password: String,
    allowed_labels: BTreeSet<String>,
}

struct State {
    accounts: Vec<Account>,
    changes: Vec<ChangeRecord>,
    branches: BTreeMap<(String, String), String>,
    reviews: Vec<Review>,
    last_stamp: DateTime<Utc>,
    next_number: i64,
    next_id: u64,
}

impl State {
    /// Now, strictly after every earlier stamp.
    fn tick(&mut self) -> DateTime<Utc> {
        let now = Utc::now();
        let stamp = if now > self.last_stamp {
            now
        } else {
            self.last_stamp + chrono::Duration::microseconds(1)
        };
        self.last_stamp = stamp;
        stamp
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn account(&mut self, username: &str) -> i64 {
        if let Some(a) = self.accounts.iter().find(|a| a.username == username) {
            return a.id;
        }
        let id = BOT_ACCOUNT_ID + self.accounts.len() as i64;
        self.accounts.push(Account {
            id,
            username: username.to_owned(),
        });
        id
    }

    fn account_json(&self, id: i64) -> Value {
        self.accounts
            .iter()
            .find(|a| a.id == id)
            .map_or_else(|| json!({"_account_id": id}), Account::json)
    }

    fn find(&self, id: &str) -> Option<usize> {
        self.changes
            .iter()
            .position(|c| c.id == id || c.number.to_string() == id)
    }

    fn find_number(&self, number: i64) -> Option<usize> {
        self.changes.iter().position(|c| c.number == number)
    }

    /// A fresh timestamp and a fresh message/comment id.
    fn stamp_and_id(&mut self) -> (DateTime<Utc>, String) {
        let date = self.tick();
        (date, format!("{:016x}", self.next_id()))
    }

    fn add_message(&mut self, index: usize, author: i64, text: String) {
        let (date, id) = self.stamp_and_id();
        let change = &mut self.changes[index];
        let revision_number = change.current_number();
        change.messages.push(Message {
            id,
            author,
            date,
            message: text,
            revision_number,
        });
        change.updated = date;
    }
}

/// A fake 40-hex commit SHA, unique per server.
fn sha(n: u64) -> String {
    format!("{:040x}", 0xb05u64.wrapping_mul(1_000_003).wrapping_add(n))
}

/// Gerrit's timestamp format.
fn stamp(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.9f").to_string()
}

/// Gerrit-style URL encoding of a project name in an id (`/` → `%2F`).
fn encode_project(project: &str) -> String {
    project.replace('%', "%25").replace('/', "%2F")
}

/// The running server.
pub struct GerritServer {
    server: TestServer,
    state: Arc<Mutex<State>>,
    bot: String,
}

impl GerritServer {
    /// Knows `changes` (by id) and lets `user`/`password` (the bot account) vote on
    /// `allowed_labels`.
    pub async fn start(
        user: &str,
        password: &str,
        changes: BTreeMap<String, Change>,
        allowed_labels: &[&str],
    ) -> Result<Self, TestServerError> {
        let config = Config {
            user: user.to_owned(),
            password: password.to_owned(),
            allowed_labels: allowed_labels.iter().map(|l| (*l).to_owned()).collect(),
        };
        let mut state = State {
            accounts: Vec::new(),
            changes: Vec::new(),
            branches: BTreeMap::new(),
            reviews: Vec::new(),
            last_stamp: DateTime::<Utc>::UNIX_EPOCH,
            next_number: 0,
            next_id: 0,
        };
        let bot = state.account(user);
        for (id, change) in changes {
            let created = state.tick();
            state.next_number += 1;
            let patchsets = change
                .revisions
                .iter()
                .zip(1..)
                .map(|(revision, number)| PatchSet {
                    number,
                    revision: revision.clone(),
                    created,
                    uploader: bot,
                    files: Vec::new(),
                })
                .collect();
            let change_id = format!("I{}", sha(state.next_id()));
            state.changes.push(ChangeRecord {
                id,
                number: state.next_number,
                change_id,
                project: String::new(),
                branch: "main".to_owned(),
                status: change.status,
                created,
                updated: created,
                submitted: None,
                owner: bot,
                work_in_progress: false,
                patchsets,
                messages: Vec::new(),
                comments: Vec::new(),
            });
        }
        let state = Arc::new(Mutex::new(state));
        let shared = state.clone();
        let server = TestServer::start(move |req| {
            let mut state = shared.lock().unwrap_or_else(PoisonError::into_inner);
            handle(req, &config, &mut state)
        })
        .await?;
        Ok(GerritServer {
            server,
            state,
            bot: user.to_owned(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The instance URL (`http://127.0.0.1:port`).
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Accepted reviews, in order.
    pub fn reviews(&self) -> Vec<Review> {
        self.lock().reviews.clone()
    }

    /// The underlying recorder.
    pub fn server(&self) -> &TestServer {
        &self.server
    }

    /// A new change (status `NEW`, patchset 1 changing `files`) on `project`'s `branch`, owned
    /// by `owner`, with Gerrit's "Uploaded patch set 1." message. The branch exists afterwards.
    pub fn add_change<F: Into<FileChange>>(
        &self,
        project: &str,
        branch: &str,
        owner: &str,
        files: impl IntoIterator<Item = F>,
    ) -> ChangeRef {
        self.add_change_with(project, branch, owner, files, false)
    }

    /// [`GerritServer::add_change`] as a work-in-progress change.
    pub fn add_wip_change<F: Into<FileChange>>(
        &self,
        project: &str,
        branch: &str,
        owner: &str,
        files: impl IntoIterator<Item = F>,
    ) -> ChangeRef {
        self.add_change_with(project, branch, owner, files, true)
    }

    fn add_change_with<F: Into<FileChange>>(
        &self,
        project: &str,
        branch: &str,
        owner: &str,
        files: impl IntoIterator<Item = F>,
        work_in_progress: bool,
    ) -> ChangeRef {
        let mut state = self.lock();
        let owner = state.account(owner);
        let base = sha(state.next_id());
        state
            .branches
            .entry((project.to_owned(), branch.to_owned()))
            .or_insert(base);
        state.next_number += 1;
        let number = state.next_number;
        let revision = sha(state.next_id());
        let change_id = format!("I{}", sha(state.next_id()));
        let created = state.tick();
        let id = format!("{}~{number}", encode_project(project));
        state.changes.push(ChangeRecord {
            id: id.clone(),
            number,
            change_id,
            project: project.to_owned(),
            branch: branch.to_owned(),
            status: "NEW".to_owned(),
            created,
            updated: created,
            submitted: None,
            owner,
            work_in_progress,
            patchsets: vec![PatchSet {
                number: 1,
                revision: revision.clone(),
                created,
                uploader: owner,
                files: files.into_iter().map(Into::into).collect(),
            }],
            messages: Vec::new(),
            comments: Vec::new(),
        });
        let index = state.changes.len() - 1;
        state.add_message(index, owner, "Uploaded patch set 1.".to_owned());
        ChangeRef {
            number,
            id,
            revision,
        }
    }

    /// A new patchset of change `number` changing `files`; returns its revision, or `None` for
    /// an unknown change.
    pub fn add_patchset<F: Into<FileChange>>(
        &self,
        number: i64,
        files: impl IntoIterator<Item = F>,
    ) -> Option<String> {
        let mut state = self.lock();
        let index = state.find_number(number)?;
        let revision = sha(state.next_id());
        let created = state.tick();
        let change = &mut state.changes[index];
        let uploader = change.owner;
        let ps = change.current_number() + 1;
        change.patchsets.push(PatchSet {
            number: ps,
            revision: revision.clone(),
            created,
            uploader,
            files: files.into_iter().map(Into::into).collect(),
        });
        change.updated = created;
        state.add_message(index, uploader, format!("Uploaded patch set {ps}."));
        Some(revision)
    }

    /// `author` replies on the current patchset with `text` (a change message
    /// `Patch Set N:\n\n<text>`). False for an unknown change.
    pub fn post_message(&self, number: i64, author: &str, text: &str) -> bool {
        let mut state = self.lock();
        let Some(index) = state.find_number(number) else {
            return false;
        };
        let author = state.account(author);
        let ps = state.changes[index].current_number();
        state.add_message(index, author, format!("Patch Set {ps}:\n\n{text}"));
        true
    }

    /// `author` posts a patchset-level comment `text` on the current patchset (listed under
    /// `/PATCHSET_LEVEL` by the comments endpoint; the change message only says
    /// `(1 comment)`, as in Gerrit). False for an unknown change.
    pub fn post_comment(&self, number: i64, author: &str, text: &str) -> bool {
        let mut state = self.lock();
        let Some(index) = state.find_number(number) else {
            return false;
        };
        let author = state.account(author);
        let (updated, id) = state.stamp_and_id();
        let change = &mut state.changes[index];
        let ps = change.current_number();
        change.comments.push(Comment {
            id,
            author,
            updated,
            message: text.to_owned(),
            patch_set: ps,
        });
        state.add_message(index, author, format!("Patch Set {ps}:\n\n(1 comment)"));
        true
    }

    /// Marks change `number` work in progress (`Set Work In Progress`) or ready for review
    /// (`Set Ready For Review`), as the Gerrit UI does. False for an unknown change.
    pub fn set_work_in_progress(&self, number: i64, wip: bool) -> bool {
        let mut state = self.lock();
        let Some(index) = state.find_number(number) else {
            return false;
        };
        let owner = state.changes[index].owner;
        state.changes[index].work_in_progress = wip;
        let text = if wip {
            "Set Work In Progress"
        } else {
            "Set Ready For Review"
        };
        state.add_message(index, owner, text.to_owned());
        true
    }

    /// Submits change `number`: status `MERGED`, `submitted` now, the branch head moves to its
    /// current revision. Returns that revision (`None` for an unknown change).
    pub fn merge(&self, number: i64) -> Option<String> {
        let mut state = self.lock();
        let index = state.find_number(number)?;
        let submitted = state.tick();
        let change = &mut state.changes[index];
        let revision = change.current()?.revision.clone();
        change.status = "MERGED".to_owned();
        change.submitted = Some(submitted);
        let key = (change.project.clone(), change.branch.clone());
        let owner = change.owner;
        state.branches.insert(key, revision.clone());
        state.add_message(
            index,
            owner,
            "Change has been successfully merged".to_owned(),
        );
        Some(revision)
    }

    /// The head of `project`'s `branch`.
    pub fn branch_head(&self, project: &str, branch: &str) -> Option<String> {
        self.lock()
            .branches
            .get(&(project.to_owned(), branch.to_owned()))
            .cloned()
    }

    /// Every message of change `number`, oldest first.
    pub fn messages(&self, number: i64) -> Vec<ChangeMessage> {
        let state = self.lock();
        let Some(index) = state.find_number(number) else {
            return Vec::new();
        };
        state.changes[index]
            .messages
            .iter()
            .map(|m| ChangeMessage {
                author: state
                    .accounts
                    .iter()
                    .find(|a| a.id == m.author)
                    .map(|a| a.username.clone())
                    .unwrap_or_default(),
                message: m.message.clone(),
                revision_number: m.revision_number,
            })
            .collect()
    }

    /// The messages the bot account (the configured user) posted on change `number`.
    pub fn bot_messages(&self, number: i64) -> Vec<ChangeMessage> {
        self.messages(number)
            .into_iter()
            .filter(|m| m.author == self.bot)
            .collect()
    }
}

/// A JSON answer with Gerrit's XSSI prefix.
fn gerrit_json(status: u16, body: Value) -> Canned {
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

fn query_pairs(req: &RecordedRequest) -> Vec<(String, String)> {
    http::query_pairs(req.query.as_deref().unwrap_or_default())
}

const KNOWN_OPTIONS: [&str; 10] = [
    "CURRENT_REVISION",
    "ALL_REVISIONS",
    "CURRENT_COMMIT",
    "CURRENT_FILES",
    "MESSAGES",
    "LABELS",
    "DETAILED_LABELS",
    "DETAILED_ACCOUNTS",
    "SUBMITTABLE",
    "SKIP_DIFFSTAT",
];

fn options(pairs: &[(String, String)]) -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    for (_, o) in pairs.iter().filter(|(k, _)| k == "o") {
        if !KNOWN_OPTIONS.contains(&o.as_str()) {
            return Err(format!("unknown query option {o:?}"));
        }
        out.insert(o.clone());
    }
    Ok(out)
}

fn change_json(state: &State, change: &ChangeRecord, opts: &BTreeSet<String>) -> Value {
    let mut v = json!({
        "id": change.id,
        "project": change.project,
        "branch": change.branch,
        "change_id": change.change_id,
        "subject": format!("Change {}", change.number),
        "status": change.status,
        "created": stamp(&change.created),
        "updated": stamp(&change.updated),
        "_number": change.number,
        "owner": state.account_json(change.owner),
    });
    if let Some(s) = &change.submitted {
        v["submitted"] = json!(stamp(s));
    }
    if change.work_in_progress {
        v["work_in_progress"] = json!(true);
    }
    let all = opts.contains("ALL_REVISIONS");
    if all || opts.contains("CURRENT_REVISION") {
        let mut revisions = serde_json::Map::new();
        let current = change.current().map(|p| p.number);
        for ps in &change.patchsets {
            if !all && Some(ps.number) != current {
                continue;
            }
            let mut r = json!({
                "kind": "REWORK",
                "_number": ps.number,
                "created": stamp(&ps.created),
                "uploader": state.account_json(ps.uploader),
                "ref": format!("refs/changes/{:02}/{}/{}", change.number % 100, change.number, ps.number),
            });
            if opts.contains("CURRENT_COMMIT") {
                let owner = state.account_json(change.owner);
                let person = json!({
                    "name": owner["name"],
                    "email": owner["email"],
                    "date": stamp(&ps.created),
                    "tz": 0,
                });
                r["commit"] = json!({
                    "parents": [],
                    "author": person,
                    "committer": person,
                    "subject": format!("Change {}", change.number),
                    "message": format!("Change {}\n\nChange-Id: {}\n", change.number, change.change_id),
                });
            }
            if opts.contains("CURRENT_FILES") {
                let mut files = serde_json::Map::new();
                for f in &ps.files {
                    let mut info = json!({"lines_inserted": 1, "size_delta": 10, "size": 100});
                    if f.status != 'M' {
                        info["status"] = json!(f.status.to_string());
                    }
                    if let Some(old) = &f.old_path {
                        info["old_path"] = json!(old);
                    }
                    files.insert(f.path.clone(), info);
                }
                r["files"] = Value::Object(files);
            }
            revisions.insert(ps.revision.clone(), r);
        }
        if let Some(ps) = change.current() {
            v["current_revision"] = json!(ps.revision);
        }
        v["revisions"] = Value::Object(revisions);
    }
    if opts.contains("MESSAGES") {
        v["messages"] = Value::Array(
            change
                .messages
                .iter()
                .map(|m| {
                    json!({
                        "id": m.id,
                        "author": state.account_json(m.author),
                        "real_author": state.account_json(m.author),
                        "date": stamp(&m.date),
                        "message": m.message,
                        "_revision_number": m.revision_number,
                    })
                })
                .collect(),
        );
    }
    if opts.contains("LABELS") || opts.contains("DETAILED_LABELS") {
        v["labels"] = json!({"Code-Review": {}, "Verified": {}});
    }
    v
}

/// The terms of a query Prow writes: `project:x`, `branch:x`, `-branch:x`, `status:x`,
/// optionally grouped with parentheses and `OR` / `AND`.
#[derive(Default)]
struct Query {
    projects: Vec<String>,
    branches: Vec<String>,
    excluded_branches: Vec<String>,
    statuses: Vec<String>,
}

fn parse_query(q: &str) -> Result<Query, String> {
    let mut query = Query::default();
    for raw in q.split_whitespace() {
        let term = raw.trim_matches(|c| c == '(' || c == ')');
        if term.is_empty() || term == "OR" || term == "AND" {
            continue;
        }
        if let Some(p) = term.strip_prefix("project:") {
            query.projects.push(p.to_owned());
        } else if let Some(b) = term.strip_prefix("-branch:") {
            query.excluded_branches.push(b.to_owned());
        } else if let Some(b) = term.strip_prefix("branch:") {
            query.branches.push(b.to_owned());
        } else if let Some(s) = term.strip_prefix("status:") {
            query.statuses.push(s.to_ascii_uppercase());
        } else {
            return Err(format!("query term {term:?} is not supported"));
        }
    }
    Ok(query)
}

impl Query {
    fn matches(&self, c: &ChangeRecord) -> bool {
        let status_ok = self.statuses.iter().all(|s| match s.as_str() {
            "OPEN" | "NEW" => c.status == "NEW",
            "CLOSED" => c.status != "NEW",
            other => c.status == other,
        });
        (self.projects.is_empty() || self.projects.contains(&c.project))
            && (self.branches.is_empty() || self.branches.contains(&c.branch))
            && !self.excluded_branches.contains(&c.branch)
            && status_ok
    }
}

fn int_param(pairs: &[(String, String)], key: &str, default: usize) -> Result<usize, String> {
    match pairs.iter().find(|(k, _)| k == key) {
        None => Ok(default),
        Some((_, v)) => v
            .parse()
            .map_err(|_| format!("query parameter {key}={v:?} is not a number")),
    }
}

fn query_changes(req: &RecordedRequest, state: &State) -> Result<Canned, String> {
    let pairs = query_pairs(req);
    let qs: Vec<&String> = pairs
        .iter()
        .filter(|(k, _)| k == "q")
        .map(|(_, v)| v)
        .collect();
    let q = match qs.as_slice() {
        [q] => parse_query(q)?,
        [] => Query::default(),
        _ => return Err("more than one q (a list of lists) is not supported".to_owned()),
    };
    let opts = options(&pairs)?;
    let limit = int_param(&pairs, "n", 500)?;
    let start = int_param(&pairs, "S", 0)?;
    let mut matching: Vec<&ChangeRecord> = state.changes.iter().filter(|c| q.matches(c)).collect();
    matching.sort_by(|a, b| b.updated.cmp(&a.updated).then(b.number.cmp(&a.number)));
    let page: Vec<&ChangeRecord> = matching.iter().skip(start).take(limit).copied().collect();
    let more = start + page.len() < matching.len();
    let mut items: Vec<Value> = page.iter().map(|c| change_json(state, c, &opts)).collect();
    if more && let Some(last) = items.last_mut() {
        last["_more_changes"] = json!(true);
    }
    Ok(gerrit_json(200, Value::Array(items)))
}

fn not_found(what: &str) -> Canned {
    Canned::text(404, &format!("Not found: {what}"))
}

fn handle(req: &RecordedRequest, config: &Config, state: &mut State) -> Result<Canned, String> {
    let (path, authenticated) = match req.path.strip_prefix("/a/") {
        Some(p) => (p, true),
        None => (req.path.trim_start_matches('/'), false),
    };
    if authenticated && !basic_ok(req, &config.user, &config.password) {
        return Ok(Canned::text(401, "Unauthorized"));
    }
    let auth_required = || Canned::text(403, "Authentication required");
    let parts: Vec<&str> = path.split('/').collect();
    let get = |what: &str| {
        if req.method == "GET" {
            Ok(())
        } else {
            Err(format!("{what}: method {} is not GET", req.method))
        }
    };
    match parts.as_slice() {
        ["changes"] | ["changes", ""] => {
            get("query changes")?;
            query_changes(req, state)
        }
        ["changes", id] => {
            get("get change")?;
            let opts = options(&query_pairs(req))?;
            match state.find(id) {
                Some(i) => Ok(gerrit_json(
                    200,
                    change_json(state, &state.changes[i], &opts),
                )),
                None => Ok(not_found(id)),
            }
        }
        ["changes", id, "comments"] => {
            get("list comments")?;
            let Some(i) = state.find(id) else {
                return Ok(not_found(id));
            };
            let comments: Vec<Value> = state.changes[i]
                .comments
                .iter()
                .map(|c| {
                    json!({
                        "id": c.id,
                        "patch_set": c.patch_set,
                        "author": state.account_json(c.author),
                        "updated": stamp(&c.updated),
                        "message": c.message,
                        "unresolved": false,
                    })
                })
                .collect();
            let body = if comments.is_empty() {
                json!({})
            } else {
                json!({"/PATCHSET_LEVEL": comments})
            };
            Ok(gerrit_json(200, body))
        }
        ["changes", id, "revisions", revision, "review"] => {
            if req.method != "POST" {
                return Err(format!("review: method {} is not POST", req.method));
            }
            let body = json_body(req)?;
            if !authenticated {
                return Ok(auth_required());
            }
            review(id, revision, &body, config, state)
        }
        ["projects", project, "branches", branch] => {
            get("get branch")?;
            let project = percent_decode(project, false);
            let branch = percent_decode(branch, false);
            let short = branch.strip_prefix("refs/heads/").unwrap_or(&branch);
            match state.branches.get(&(project, short.to_owned())) {
                Some(revision) => Ok(gerrit_json(
                    200,
                    json!({"ref": format!("refs/heads/{short}"), "revision": revision}),
                )),
                None => Ok(not_found(&branch)),
            }
        }
        ["accounts", "self"] => {
            get("get account")?;
            if !authenticated {
                return Ok(auth_required());
            }
            let id = state.account(&config.user);
            Ok(gerrit_json(200, state.account_json(id)))
        }
        _ => Ok(Canned::text(404, "Not Found")),
    }
}

fn review(
    id: &str,
    revision: &str,
    body: &serde_json::Map<String, Value>,
    config: &Config,
    state: &mut State,
) -> Result<Canned, String> {
    let Some(index) = state.find(id) else {
        return Ok(not_found(id));
    };
    let change = &state.changes[index];
    let patchset = change
        .patchsets
        .iter()
        .find(|p| {
            p.revision == revision
                || p.number.to_string() == revision
                || (revision == "current" && Some(p.number) == change.current().map(|c| c.number))
        })
        .map(|p| p.number);
    let Some(patchset) = patchset else {
        return Ok(not_found(revision));
    };
    let message = match body.get("message") {
        Some(Value::String(m)) => m.clone(),
        None => String::new(),
        Some(_) => return Err("message is not a string".to_owned()),
    };
    let mut labels = BTreeMap::new();
    match body.get("labels") {
        None => {}
        Some(Value::Object(map)) => {
            for (label, value) in map {
                let Some(value) = value.as_i64() else {
                    return Err(format!("vote on {label} is not an integer"));
                };
                if !config.allowed_labels.contains(label) {
                    return Ok(Canned::text(
                        403,
                        &format!("Applying label \"{label}\": {value} is restricted"),
                    ));
                }
                labels.insert(label.clone(), value);
            }
        }
        Some(_) => return Err("labels is not an object".to_owned()),
    }
    let votes: Vec<String> = labels
        .iter()
        .map(|(l, v)| match v {
            0 => format!("-{l}"),
            v if *v > 0 => format!("{l}+{v}"),
            v => format!("{l}{v}"),
        })
        .collect();
    let header = if votes.is_empty() {
        format!("Patch Set {patchset}:")
    } else {
        format!("Patch Set {patchset}: {}", votes.join(" "))
    };
    let text = if message.is_empty() {
        header
    } else {
        format!("{header}\n\n{message}")
    };
    let bot = state.account(&config.user);
    state.add_message(index, bot, text);
    if let Some(m) = state.changes[index].messages.last_mut() {
        m.revision_number = patchset;
    }
    state.reviews.push(Review {
        change: id.to_owned(),
        revision: revision.to_owned(),
        message,
        labels: labels.clone(),
    });
    Ok(gerrit_json(200, json!({"labels": labels})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_prow_terms() {
        let q =
            parse_query("(branch:main OR branch:dev) (-branch:old AND -branch:older) project:a/b")
                .expect("parses");
        assert_eq!(q.branches, ["main", "dev"]);
        assert_eq!(q.excluded_branches, ["old", "older"]);
        assert_eq!(q.projects, ["a/b"]);
        assert!(parse_query("owner:self").is_err());
    }

    #[test]
    fn stamps_are_gerrit_format() {
        let t = DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::nanoseconds(1_500_000_001);
        assert_eq!(stamp(&t), "1970-01-01 00:00:01.500000001");
        assert_eq!(sha(1).len(), 40);
    }
}
