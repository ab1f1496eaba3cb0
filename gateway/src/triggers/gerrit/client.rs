//! The adapter's side of Gerrit's REST API: typed answers (ChangeInfo, RevisionInfo,
//! ChangeMessageInfo, CommentInfo, BranchInfo, AccountInfo), the change query with Prow's
//! terms and paging (reference §6.2), and the calls the trigger logic makes. Transport
//! (base URL per instance, `/a/` and credentials, the `)]}'` prefix) is the reporter's
//! [`GerritClient`], shared so both speak to Gerrit the same way.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use bosun_gateway_config::GerritQueryFilter;
use bosun_reporters::gerrit::{GerritClient, GerritError};
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Deserializer};

/// Change status of an open change.
pub const NEW: &str = "NEW";
/// Change status of a submitted change.
pub const MERGED: &str = "MERGED";
/// The `o` options of the query (Prow's).
pub const QUERY_OPTIONS: [&str; 5] = [
    "CURRENT_REVISION",
    "CURRENT_COMMIT",
    "CURRENT_FILES",
    "MESSAGES",
    "LABELS",
];
/// The key Gerrit lists patchset-level comments under.
pub const PATCHSET_LEVEL: &str = "/PATCHSET_LEVEL";
/// A bound on pages per query, so a server that always says "more" cannot hold a poll
/// forever.
pub const MAX_PAGES: usize = 1000;

/// A Gerrit timestamp (`2013-02-01 09:59:32.126000000`, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GerritTime(pub Timestamp);

impl GerritTime {
    /// Parses Gerrit's format (RFC 3339 is accepted too).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let iso = match s.split_once(' ') {
            Some((date, time)) => format!("{date}T{time}Z"),
            None => s.to_owned(),
        };
        iso.parse::<Timestamp>().ok().map(GerritTime)
    }
}

impl fmt::Display for GerritTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for GerritTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        GerritTime::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("not a Gerrit timestamp: {s:?}")))
    }
}

/// `AccountInfo`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct AccountInfo {
    /// `_account_id`.
    #[serde(rename = "_account_id", default)]
    pub account_id: i64,
    /// Full name.
    #[serde(default)]
    pub name: String,
    /// Email.
    #[serde(default)]
    pub email: String,
    /// User name.
    #[serde(default)]
    pub username: String,
}

/// `GitPersonInfo`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct GitPersonInfo {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Email.
    #[serde(default)]
    pub email: String,
}

/// `CommitInfo` (with `CURRENT_COMMIT`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct CommitInfo {
    /// The author.
    #[serde(default)]
    pub author: GitPersonInfo,
    /// First line of the message.
    #[serde(default)]
    pub subject: String,
}

/// `FileInfo` (with `CURRENT_FILES`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct FileInfo {
    /// `A`, `D`, `R`, `C`, `W`; absent for modified.
    #[serde(default)]
    pub status: Option<String>,
    /// The old path of a rename or copy.
    #[serde(default)]
    pub old_path: Option<String>,
}

/// `RevisionInfo`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct RevisionInfo {
    /// The patchset number.
    #[serde(rename = "_number")]
    pub number: i64,
    /// When the patchset was uploaded.
    pub created: GerritTime,
    /// `refs/changes/…`.
    #[serde(rename = "ref", default)]
    pub git_ref: String,
    /// The commit (with `CURRENT_COMMIT`).
    #[serde(default)]
    pub commit: Option<CommitInfo>,
    /// Changed files (with `CURRENT_FILES`).
    #[serde(default)]
    pub files: BTreeMap<String, FileInfo>,
}

/// `ChangeMessageInfo`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ChangeMessageInfo {
    /// The message id.
    #[serde(default)]
    pub id: String,
    /// Who wrote it (absent for Gerrit's own messages).
    #[serde(default)]
    pub author: Option<AccountInfo>,
    /// When.
    pub date: GerritTime,
    /// The text.
    #[serde(default)]
    pub message: String,
    /// The patchset it was posted on.
    #[serde(rename = "_revision_number", default)]
    pub revision_number: i64,
}

/// `CommentInfo` (as listed by `GET /changes/{id}/comments`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct CommentInfo {
    /// The comment id.
    #[serde(default)]
    pub id: String,
    /// The patchset it is on.
    #[serde(default)]
    pub patch_set: i64,
    /// Who wrote it.
    #[serde(default)]
    pub author: Option<AccountInfo>,
    /// When it was last updated.
    pub updated: GerritTime,
    /// The text.
    #[serde(default)]
    pub message: String,
}

/// `ChangeInfo`, with what Prow's query options ask for.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ChangeInfo {
    /// `id`: used verbatim as the `{change-id}` of later calls and in the job's
    /// `prow.k8s.io/gerrit-id` annotation.
    pub id: String,
    /// The project.
    pub project: String,
    /// The target branch.
    pub branch: String,
    /// `Change-Id`.
    #[serde(default)]
    pub change_id: String,
    /// `NEW`, `MERGED`, `ABANDONED`.
    pub status: String,
    /// Last change of anything.
    pub updated: GerritTime,
    /// When it was submitted (merged changes).
    #[serde(default)]
    pub submitted: Option<GerritTime>,
    /// `_number`.
    #[serde(rename = "_number")]
    pub number: i64,
    /// Work in progress.
    #[serde(default)]
    pub work_in_progress: bool,
    /// The current revision's SHA.
    #[serde(default)]
    pub current_revision: String,
    /// Revisions by SHA (only the current one with `CURRENT_REVISION`).
    #[serde(default)]
    pub revisions: BTreeMap<String, RevisionInfo>,
    /// Change messages (with `MESSAGES`), plus, after [`Client::query_changes`], the
    /// patchset-level comments (ids prefixed `comment:`), oldest first.
    #[serde(default)]
    pub messages: Vec<ChangeMessageInfo>,
    /// Set on the last change of a page when more follow.
    #[serde(rename = "_more_changes", default)]
    pub more_changes: bool,
}

impl ChangeInfo {
    /// The current revision, if Gerrit sent it.
    pub fn current(&self) -> Option<&RevisionInfo> {
        self.revisions.get(&self.current_revision)
    }

    /// Adds patchset-level comments as messages, keeping messages sorted by date (Prow's
    /// `injectPatchsetMessages`).
    pub fn inject_patchset_comments(&mut self, mut comments: HashMap<String, Vec<CommentInfo>>) {
        let Some(list) = comments.remove(PATCHSET_LEVEL) else {
            return;
        };
        if list.is_empty() {
            return;
        }
        for c in list {
            self.messages.push(ChangeMessageInfo {
                id: format!("comment:{}", c.id),
                author: c.author,
                date: c.updated,
                message: c.message,
                revision_number: c.patch_set,
            });
        }
        self.messages.sort_by_key(|m| m.date);
    }
}

/// `BranchInfo`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct BranchInfo {
    /// `refs/heads/…`.
    #[serde(rename = "ref", default)]
    pub git_ref: String,
    /// The head commit.
    pub revision: String,
}

/// The query terms for one project (`queryStringsFromQueryFilter` + `project:`), space
/// separated: `(branch:a OR branch:b) (-branch:x AND -branch:y) project:p`.
pub fn query_terms(project: &str, filters: Option<&GerritQueryFilter>) -> String {
    let mut terms = Vec::new();
    if let Some(f) = filters {
        if !f.branches.is_empty() {
            let parts: Vec<String> = f.branches.iter().map(|b| format!("branch:{b}")).collect();
            terms.push(format!("({})", parts.join(" OR ")));
        }
        if !f.excluded_branches.is_empty() {
            let parts: Vec<String> = f
                .excluded_branches
                .iter()
                .map(|b| format!("-branch:{b}"))
                .collect();
            terms.push(format!("({})", parts.join(" AND ")));
        }
    }
    terms.push(format!("project:{project}"));
    terms.join(" ")
}

/// The query parameters of one page.
pub fn query_params(terms: &str, limit: usize, start: usize) -> Vec<(&'static str, String)> {
    let mut params = vec![("q", terms.to_owned())];
    params.extend(QUERY_OPTIONS.iter().map(|o| ("o", (*o).to_owned())));
    params.push(("n", limit.to_string()));
    params.push(("S", start.to_string()));
    params
}

/// Prow's result list: duplicates across pages removed, keeping the last occurrence at its
/// position (`dedupeIntoResult`).
#[derive(Debug, Default)]
pub struct Deduper {
    result: Vec<ChangeInfo>,
}

impl Deduper {
    /// Adds a change, moving an earlier copy of it to the end.
    pub fn push(&mut self, change: ChangeInfo) {
        self.result.retain(|c| c.number != change.number);
        self.result.push(change);
    }

    /// The changes, in query order (newest updated first).
    pub fn into_vec(self) -> Vec<ChangeInfo> {
        self.result
    }
}

/// What to do with one change of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not updated after the last sync: this and everything after it is old; stop paging.
    Stop,
    /// Merged after the last sync: keep.
    KeepMerged,
    /// Open: fetch its patchset-level comments, then decide with [`keep_open_change`].
    CheckOpen,
    /// Nothing to do (abandoned, merged before, no current revision).
    Skip,
}

/// The first look at a query result (`queryChangesForProjectWithoutMetrics`).
pub fn verdict(change: &ChangeInfo, last_sync: GerritTime) -> Verdict {
    if change.updated <= last_sync {
        return Verdict::Stop;
    }
    match change.status.as_str() {
        MERGED => {
            if change.submitted.is_some_and(|s| s > last_sync) {
                Verdict::KeepMerged
            } else {
                Verdict::Skip
            }
        }
        NEW if change.current().is_some() => Verdict::CheckOpen,
        _ => Verdict::Skip,
    }
}

/// An open change is kept if its current revision was created after the last sync, or some
/// message on the current patchset is newer than it.
pub fn keep_open_change(change: &ChangeInfo, last_sync: GerritTime) -> bool {
    let Some(rev) = change.current() else {
        return false;
    };
    rev.created > last_sync
        || change
            .messages
            .iter()
            .any(|m| m.revision_number == rev.number && m.date > last_sync)
}

/// Percent-encodes a path segment (a project or branch name: `platform/build` →
/// `platform%2Fbuild`).
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

/// The adapter's Gerrit client.
#[derive(Debug, Clone)]
pub struct Client {
    rest: GerritClient,
}

impl Client {
    /// Over a configured transport.
    pub fn new(rest: GerritClient) -> Self {
        Client { rest }
    }

    /// Whether requests are authenticated (the bot account is known).
    pub fn is_authenticated(&self) -> bool {
        self.rest.is_authenticated()
    }

    /// Changes of `project` updated after `last_sync` that may trigger jobs, newest updated
    /// first (reference §6.2): page by `page_size` until a change not updated since the last
    /// sync, an empty page or the last page; keep merged changes submitted after it and open
    /// changes with a new current revision or a new message on it (patchset-level comments
    /// included).
    pub async fn query_changes(
        &self,
        instance: &str,
        project: &str,
        filters: Option<&GerritQueryFilter>,
        last_sync: GerritTime,
        page_size: usize,
    ) -> Result<Vec<ChangeInfo>, GerritError> {
        let terms = query_terms(project, filters);
        let mut kept = Deduper::default();
        let mut start = 0;
        for _ in 0..MAX_PAGES {
            let page: Vec<ChangeInfo> = self
                .rest
                .get_json(
                    "gerrit query changes",
                    instance,
                    "/changes/",
                    &query_params(&terms, page_size, start),
                )
                .await?;
            let Some(last) = page.last() else {
                break;
            };
            let more = last.more_changes;
            start += page.len();
            for mut change in page {
                match verdict(&change, last_sync) {
                    Verdict::Stop => return Ok(kept.into_vec()),
                    Verdict::KeepMerged => kept.push(change),
                    Verdict::Skip => {}
                    Verdict::CheckOpen => {
                        let comments = self.comments(instance, &change.id).await?;
                        change.inject_patchset_comments(comments);
                        if keep_open_change(&change, last_sync) {
                            kept.push(change);
                        }
                    }
                }
            }
            if !more {
                break;
            }
        }
        Ok(kept.into_vec())
    }

    /// `GET /changes/{id}/comments`.
    pub async fn comments(
        &self,
        instance: &str,
        id: &str,
    ) -> Result<HashMap<String, Vec<CommentInfo>>, GerritError> {
        self.rest
            .get_json(
                "gerrit list comments",
                instance,
                &format!("/changes/{id}/comments"),
                &[],
            )
            .await
    }

    /// `GET /projects/{project}/branches/{branch}`: the branch head.
    pub async fn branch_revision(
        &self,
        instance: &str,
        project: &str,
        branch: &str,
    ) -> Result<String, GerritError> {
        let info: BranchInfo = self
            .rest
            .get_json(
                "gerrit get branch",
                instance,
                &format!(
                    "/projects/{}/branches/{}",
                    encode_segment(project),
                    encode_segment(branch)
                ),
                &[],
            )
            .await?;
        Ok(info.revision)
    }

    /// `GET /accounts/self`: the bot account.
    pub async fn account_self(&self, instance: &str) -> Result<AccountInfo, GerritError> {
        self.rest
            .get_json("gerrit get account", instance, "/accounts/self", &[])
            .await
    }

    /// Posts `message` (no vote) on a revision.
    pub async fn set_review(
        &self,
        instance: &str,
        id: &str,
        revision: &str,
        message: &str,
    ) -> Result<(), GerritError> {
        self.rest
            .set_review(instance, id, revision, message, None)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> GerritTime {
        GerritTime::parse(s).expect("time")
    }

    fn change(json: serde_json::Value) -> ChangeInfo {
        serde_json::from_value(json).expect("change")
    }

    fn open(number: i64, updated: &str, created: &str) -> ChangeInfo {
        change(serde_json::json!({
            "id": format!("p~{number}"), "project": "p", "branch": "main", "status": "NEW",
            "updated": updated, "_number": number, "current_revision": "abc",
            "revisions": {"abc": {"_number": 2, "created": created, "ref": "refs/changes/01/1/2"}},
        }))
    }

    #[test]
    fn timestamps_parse_gerrit_and_rfc3339() {
        let a = t("2024-05-01 10:00:00.000000001");
        let b = t("2024-05-01T10:00:00.000000002Z");
        assert!(a < b);
        assert_eq!(a.to_string(), "2024-05-01T10:00:00.000000001Z");
        assert!(GerritTime::parse("yesterday").is_none());
    }

    #[test]
    fn query_terms_are_space_separated_like_prow() {
        assert_eq!(query_terms("a/b", None), "project:a/b");
        let f = GerritQueryFilter {
            branches: vec!["main".into(), "dev".into()],
            excluded_branches: vec!["old".into(), "older".into()],
            opt_in_by_default: false,
        };
        assert_eq!(
            query_terms("p", Some(&f)),
            "(branch:main OR branch:dev) (-branch:old AND -branch:older) project:p"
        );
        let params = query_params("project:p", 5, 10);
        let os: Vec<&str> = params
            .iter()
            .filter(|(k, _)| *k == "o")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(os, QUERY_OPTIONS);
        assert!(params.contains(&("n", "5".into())) && params.contains(&("S", "10".into())));
    }

    #[test]
    fn paging_verdicts() {
        let sync = t("2024-05-01 10:00:00.000000000");
        // not updated since: stop
        assert_eq!(
            verdict(
                &open(1, "2024-05-01 10:00:00.000000000", "2024-05-01 09:00:00.0"),
                sync
            ),
            Verdict::Stop
        );
        assert_eq!(
            verdict(
                &open(1, "2024-05-01 10:00:01.0", "2024-05-01 09:00:00.0"),
                sync
            ),
            Verdict::CheckOpen
        );
        let mut merged = open(2, "2024-05-01 10:00:02.0", "2024-05-01 09:00:00.0");
        merged.status = MERGED.into();
        assert_eq!(verdict(&merged, sync), Verdict::Skip, "no submitted time");
        merged.submitted = Some(t("2024-05-01 09:59:59.0"));
        assert_eq!(verdict(&merged, sync), Verdict::Skip, "merged before");
        merged.submitted = Some(t("2024-05-01 10:00:02.0"));
        assert_eq!(verdict(&merged, sync), Verdict::KeepMerged);
        let mut abandoned = open(3, "2024-05-01 10:00:03.0", "2024-05-01 10:00:03.0");
        abandoned.status = "ABANDONED".into();
        assert_eq!(verdict(&abandoned, sync), Verdict::Skip);
        let mut no_rev = open(4, "2024-05-01 10:00:03.0", "2024-05-01 10:00:03.0");
        no_rev.current_revision = "other".into();
        assert_eq!(verdict(&no_rev, sync), Verdict::Skip);
    }

    #[test]
    fn open_changes_need_a_new_revision_or_a_new_current_message() {
        let sync = t("2024-05-01 10:00:00.0");
        let fresh = open(1, "2024-05-01 10:00:01.0", "2024-05-01 10:00:01.0");
        assert!(keep_open_change(&fresh, sync));
        let mut old = open(1, "2024-05-01 10:00:01.0", "2024-05-01 09:00:00.0");
        assert!(!keep_open_change(&old, sync));
        // a new message on an older patchset does not count
        old.messages.push(ChangeMessageInfo {
            id: "m1".into(),
            author: None,
            date: t("2024-05-01 10:00:01.0"),
            message: "Patch Set 1:\n\n/retest".into(),
            revision_number: 1,
        });
        assert!(!keep_open_change(&old, sync));
        // a patchset-level comment on the current one does
        let comments: HashMap<String, Vec<CommentInfo>> = serde_json::from_value(serde_json::json!({
            "/PATCHSET_LEVEL": [{"id": "c1", "patch_set": 2, "updated": "2024-05-01 10:00:00.5", "message": "/retest"}],
            "src/a.rs": [{"id": "c2", "patch_set": 2, "updated": "2024-05-01 10:00:00.6", "message": "/test all"}],
        }))
        .expect("comments");
        old.inject_patchset_comments(comments);
        assert!(keep_open_change(&old, sync));
        let ids: Vec<&str> = old.messages.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(
            ids,
            ["comment:c1", "m1"],
            "sorted by date, file comments left out"
        );
    }

    #[test]
    fn dedupe_keeps_the_last_occurrence_in_its_place() {
        let mut d = Deduper::default();
        for n in [1, 2, 3, 1] {
            d.push(open(n, "2024-05-01 10:00:01.0", "2024-05-01 10:00:01.0"));
        }
        let order: Vec<i64> = d.into_vec().iter().map(|c| c.number).collect();
        assert_eq!(order, [2, 3, 1]);
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(encode_segment("platform/build"), "platform%2Fbuild");
        assert_eq!(encode_segment("release-1.0"), "release-1.0");
        assert_eq!(encode_segment("a b"), "a%20b");
    }

    #[test]
    fn change_info_reads_gerrit_json() {
        let c = change(serde_json::json!({
            "id": "acme%2Fwidget~12", "project": "acme/widget", "branch": "main",
            "change_id": "I1", "status": "NEW", "created": "2024-05-01 10:00:00.000000000",
            "updated": "2024-05-01 10:00:01.000000000", "_number": 12, "owner": {"_account_id": 7},
            "work_in_progress": true, "current_revision": "abc",
            "revisions": {"abc": {"kind": "REWORK", "_number": 1, "created": "2024-05-01 10:00:00.000000000",
                "ref": "refs/changes/12/12/1",
                "commit": {"author": {"name": "Alice", "email": "alice@example.com", "date": "2024-05-01 10:00:00.000000000", "tz": 0}, "subject": "s"},
                "files": {"a.txt": {"lines_inserted": 1}, "b.txt": {"status": "R", "old_path": "old.txt"}}}},
            "messages": [{"id": "m", "author": {"_account_id": 7, "name": "Alice"}, "date": "2024-05-01 10:00:01.000000000",
                "message": "Uploaded patch set 1.", "_revision_number": 1}],
            "labels": {"Verified": {}},
            "_more_changes": true
        }));
        assert!(c.work_in_progress && c.more_changes);
        let rev = c.current().expect("current");
        assert_eq!(rev.git_ref, "refs/changes/12/12/1");
        assert_eq!(rev.files["b.txt"].old_path.as_deref(), Some("old.txt"));
        assert_eq!(c.messages[0].author.as_ref().map(|a| a.account_id), Some(7));
    }
}
