//! What a Gerrit change asks for (reference §6.4), with no IO: whether to look at it, which
//! presubmits or postsubmits it selects and because of which event, the refs, labels and
//! annotations of its jobs, and the messages posted back.

use std::collections::{BTreeMap, BTreeSet};

use bosun_gateway_config::{Gerrit, Postsubmit, Presubmit};
use bosun_proto::labels::{
    GERRIT_ID, GERRIT_INSTANCE, GERRIT_PATCHSET, GERRIT_REPORT_LABEL, GERRIT_REVISION,
};
use bosun_proto::{Pull, Refs};

use super::client::{ChangeInfo, ChangeMessageInfo, GerritTime, MERGED};
use crate::triggers::filter::{
    Filter, RETEST_RE, RETEST_REQUIRED_RE, TEST_ALL_RE, filter_presubmits, presubmit_filter,
};

/// The message Gerrit writes when a change leaves work in progress (`MARK AS ACTIVE`).
pub const READY_FOR_REVIEW_FIXED: &str = "Set Ready For Review";
/// The message of `SEND AND START REVIEW`.
pub const READY_FOR_REVIEW_CUSTOMIZABLE: &str = "This change is ready for review.";
/// The vote label of jobs that do not name one.
pub const DEFAULT_REPORT_LABEL: &str = "Code-Review";

/// Why a job is created: part of its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new current revision (patchset) that is not work in progress.
    NewRevision,
    /// A message (or patchset-level comment) on the current patchset, by id.
    Message(String),
    /// The change was merged.
    Merged,
}

impl Event {
    fn key_part(&self) -> String {
        match self {
            Event::NewRevision => "revision".to_owned(),
            Event::Message(id) => format!("message/{id}"),
            Event::Merged => "merged".to_owned(),
        }
    }
}

/// The idempotency key of a job created for `event` on `change`: a re-poll after a crash or
/// a restart finds the job created the first time instead of creating it again.
pub fn job_key(instance: &str, change: &ChangeInfo, event: &Event, job: &str) -> String {
    format!(
        "gerrit/{instance}/{}/{}/{}/{job}",
        change.number,
        change.current_revision,
        event.key_part()
    )
}

/// `source.EnsureCodeURL`: the code host of a review host (`https://x-review.host` →
/// `https://x.host`), or the instance itself.
pub fn code_url(instance: &str) -> String {
    match instance.split_once('.') {
        Some((first, rest)) if first.ends_with("-review") => {
            format!("{}.{rest}", first.trim_end_matches("-review"))
        }
        _ => instance.to_owned(),
    }
}

/// `source.CloneURIFromOrgRepo`: `<instance>/<project>`, slashes tidied.
pub fn clone_uri(instance: &str, project: &str) -> String {
    format!(
        "{}/{}",
        instance.trim_end_matches('/'),
        project.trim_matches('/')
    )
}

/// `CreateRefs`: the refs of a job for `change` (one pull: the current revision), or `None`
/// if Gerrit did not send the current revision.
pub fn create_refs(instance: &str, change: &ChangeInfo, base_sha: &str) -> Option<Refs> {
    let rev = change.current()?;
    let code = code_url(instance);
    let project = &change.project;
    let author = rev.commit.as_ref().map(|c| &c.author);
    Some(Refs {
        org: instance.to_owned(),
        repo: project.clone(),
        base_ref: change.branch.clone(),
        base_sha: base_sha.to_owned(),
        clone_uri: clone_uri(instance, project),
        repo_link: format!("{code}/{project}"),
        base_link: format!("{code}/{project}/+/{base_sha}"),
        pulls: vec![Pull {
            number: change.number,
            author: author.map(|a| a.name.clone()).unwrap_or_default(),
            sha: change.current_revision.clone(),
            r#ref: rev.git_ref.clone(),
            link: format!("{instance}/c/{project}/+/{}", change.number),
            commit_link: format!("{code}/{project}/+/{}", change.current_revision),
            author_link: format!(
                "{instance}/q/{}",
                author.map(|a| a.email.as_str()).unwrap_or_default()
            ),
            ..Pull::default()
        }],
        ..Refs::default()
    })
}

/// `LabelsAndAnnotations`: the job's own labels and annotations plus what the Gerrit reporter
/// reads: labels `prow.k8s.io/gerrit-revision`, `-patchset` and `-report-label` (the job's
/// own, else `Code-Review`), annotations `prow.k8s.io/gerrit-instance` and `-id`.
pub fn labels_and_annotations(
    instance: &str,
    job_labels: &BTreeMap<String, String>,
    job_annotations: &BTreeMap<String, String>,
    change: &ChangeInfo,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut labels = job_labels.clone();
    let mut annotations = job_annotations.clone();
    annotations.insert(GERRIT_INSTANCE.to_owned(), instance.to_owned());
    labels.insert(GERRIT_REVISION.to_owned(), change.current_revision.clone());
    labels.insert(
        GERRIT_PATCHSET.to_owned(),
        change.current().map_or(0, |r| r.number).to_string(),
    );
    labels
        .entry(GERRIT_REPORT_LABEL.to_owned())
        .or_insert_with(|| DEFAULT_REPORT_LABEL.to_owned());
    annotations.insert(GERRIT_ID.to_owned(), change.id.clone());
    (labels, annotations)
}

/// The messages on the current patchset after `since`, oldest first, without the bot's own
/// (its reviews and help replies quote commands).
pub fn current_messages(
    change: &ChangeInfo,
    since: GerritTime,
    bot: Option<i64>,
) -> Vec<&ChangeMessageInfo> {
    let Some(current) = change.current().map(|r| r.number) else {
        return Vec::new();
    };
    change
        .messages
        .iter()
        .filter(|m| m.revision_number == current && m.date > since)
        .filter(|m| bot.is_none() || m.author.as_ref().map(|a| a.account_id) != bot)
        .collect()
}

/// A message saying the change left work in progress.
pub fn indicates_ready_for_review(message: &str) -> bool {
    message.ends_with(READY_FOR_REVIEW_FIXED) || message.ends_with(READY_FOR_REVIEW_CUSTOMIZABLE)
}

/// `shouldTriggerJobs`: always for merged changes; for open ones if the current revision is
/// new, or a new message on it asks for jobs (`/retest`, `/test all`, or anything
/// `allowed_presubmit_trigger_re` allows) or marks the change ready for review.
pub fn should_trigger(
    change: &ChangeInfo,
    last_sync: GerritTime,
    gerrit: &Gerrit,
    bot: Option<i64>,
) -> bool {
    if change.status == MERGED {
        return true;
    }
    if change.current().is_some_and(|r| r.created > last_sync) {
        return true;
    }
    current_messages(change, last_sync, bot).iter().any(|m| {
        RETEST_RE.is_match(&m.message)
            || TEST_ALL_RE.is_match(&m.message)
            || gerrit.is_allowed_presubmit_trigger(&m.message)
            || indicates_ready_for_review(&m.message)
    })
}

/// The files the current revision changes, with the old paths of renames, sorted.
pub fn changed_files(change: &ChangeInfo) -> Vec<String> {
    let mut files = BTreeSet::new();
    if let Some(rev) = change.current() {
        for (path, info) in &rev.files {
            files.insert(path.clone());
            if info.status.as_deref() == Some("R")
                && let Some(old) = &info.old_path
            {
                files.insert(old.clone());
            }
        }
    }
    files.into_iter().collect()
}

/// Whether some message asks for `/retest` (so the failed jobs must be looked up).
pub fn wants_retest(messages: &[&ChangeMessageInfo]) -> bool {
    messages
        .iter()
        .any(|m| RETEST_RE.is_match(&m.message) || RETEST_REQUIRED_RE.is_match(&m.message))
}

/// The presubmits `change` asks for, each with the event that asked first (Prow's aggregate
/// filter: every new message's `PresubmitFilter` with `/ok-to-test` off, test-all for a
/// ready-for-review message, then test-all for a new revision that is not work in progress).
/// `failed` holds the names of the jobs whose newest run on this patchset failed; every
/// presubmit counts as having run (so `/retest` reruns only failed jobs).
pub fn select_presubmits<'a>(
    presubmits: &[&'a Presubmit],
    change: &ChangeInfo,
    messages: &[&ChangeMessageInfo],
    failed: &BTreeSet<String>,
    last_sync: GerritTime,
) -> Vec<(&'a Presubmit, Event)> {
    let failed_contexts: BTreeSet<String> = presubmits
        .iter()
        .filter(|p| failed.contains(&p.name))
        .map(|p| p.context.clone())
        .collect();
    let all_contexts: BTreeSet<String> = presubmits.iter().map(|p| p.context.clone()).collect();
    let mut contexts =
        || Ok::<_, std::convert::Infallible>((failed_contexts.clone(), all_contexts.clone()));
    let mut events: Vec<(Event, Filter)> = Vec::new();
    for m in messages {
        let Ok(filter) = presubmit_filter(false, &mut contexts, &m.message);
        events.push((Event::Message(m.id.clone()), filter));
        if indicates_ready_for_review(&m.message) {
            events.push((Event::Message(m.id.clone()), Filter::TestAll));
        }
    }
    if change.current().is_some_and(|r| r.created > last_sync) && !change.work_in_progress {
        events.push((Event::NewRevision, Filter::TestAll));
    }
    if events.is_empty() {
        return Vec::new();
    }
    let any = Filter::Any(events.iter().map(|(_, f)| f.clone()).collect());
    let files = changed_files(change);
    let mut changes: &[String] = &files;
    let Ok(selected) = filter_presubmits(
        &any,
        &mut changes,
        &change.branch,
        presubmits.iter().copied(),
    );
    selected
        .into_iter()
        .map(|job| {
            let event = events
                .iter()
                .find(|(_, f)| f.decide(job).matches)
                .map_or(Event::NewRevision, |(e, _)| e.clone());
            (job, event)
        })
        .collect()
}

/// The postsubmits a merged `change` runs (`ShouldRun` on its branch and files).
pub fn select_postsubmits<'a>(
    postsubmits: &[&'a Postsubmit],
    change: &ChangeInfo,
) -> Vec<&'a Postsubmit> {
    let files = changed_files(change);
    postsubmits
        .iter()
        .copied()
        .filter(|p| {
            let mut changes: &[String] = &files;
            let Ok(run) = p.should_run(&change.branch, &mut changes);
            run
        })
        .collect()
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b' ' => out.push('+'),
            b if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') => {
                out.push(char::from(b));
            }
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `deckLinkForPR`: Deck's page of the change's runs (`?pull=<n>&repo=<instance>/<project>`,
/// query parameters sorted as Go encodes them), for open changes when `deck_url` is set.
pub fn deck_link(deck_url: &str, refs: &Refs, status: &str) -> Option<String> {
    if deck_url.is_empty() || status == MERGED {
        return None;
    }
    let number = refs.pulls.first()?.number;
    let (without_fragment, fragment) = match deck_url.split_once('#') {
        Some((u, f)) => (u, Some(f)),
        None => (deck_url, None),
    };
    let (base, query) = without_fragment
        .split_once('?')
        .unwrap_or((without_fragment, ""));
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_owned(), v.to_owned())
        })
        .filter(|(k, _)| k != "repo" && k != "pull")
        .collect();
    pairs.push((
        "repo".to_owned(),
        query_escape(&format!("{}/{}", refs.org, refs.repo)),
    ));
    pairs.push(("pull".to_owned(), number.to_string()));
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut link = format!("{base}?{}", query.join("&"));
    if let Some(f) = fragment {
        link.push('#');
        link.push_str(f);
    }
    Some(link)
}

/// Prow's "Triggered N prow jobs" review message for the jobs just created (name, whether
/// it reports), or `None` if none of them reports.
pub fn triggered_message(created: &[(String, bool)], deck_link: Option<&str>) -> Option<String> {
    let reporting: Vec<&str> = created
        .iter()
        .filter(|(_, report)| *report)
        .map(|(name, _)| name.as_str())
        .collect();
    if reporting.is_empty() {
        return None;
    }
    let mut message = format!(
        "Triggered {} prow jobs ({} suppressed reporting): ",
        created.len(),
        created.len() - reporting.len()
    );
    match deck_link {
        Some(link) => message.push_str(link),
        None => {
            for name in reporting {
                message.push_str(&format!("\n  * Name: {name}"));
            }
        }
    }
    Some(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bosun_gateway_config::LoadedConfig;

    const INSTANCE: &str = "https://gerrit-review.example.com";
    const SYNC: &str = "2024-05-01 10:00:00.0";

    fn t(s: &str) -> GerritTime {
        GerritTime::parse(s).expect("time")
    }

    fn config() -> LoadedConfig {
        bosun_gateway_config::load_from_memory(
            (std::path::Path::new("config.yaml"), ""),
            &[(
                std::path::Path::new("jobs.yaml"),
                r#"
presubmits:
  gerrit-review.example.com/acme/widget:
  - name: unit
    always_run: true
    labels: {prow.k8s.io/gerrit-report-label: Verified, team: infra}
    annotations: {owner: infra}
    spec: {containers: [{image: x}]}
  - name: docs
    run_if_changed: '^docs/'
    spec: {containers: [{image: x}]}
  - name: e2e
    optional: true
    spec: {containers: [{image: x}]}
  - name: lint
    always_run: true
    context: lint-context
    spec: {containers: [{image: x}]}
postsubmits:
  gerrit-review.example.com/acme/widget:
  - name: publish
    branches: [main]
    spec: {containers: [{image: x}]}
  - name: docs-site
    run_if_changed: '^docs/'
    spec: {containers: [{image: x}]}
"#,
            )],
        )
        .expect("config loads")
    }

    fn message(id: &str, author: i64, date: &str, text: &str, ps: i64) -> serde_json::Value {
        serde_json::json!({"id": id, "author": {"_account_id": author}, "date": date,
            "message": text, "_revision_number": ps})
    }

    /// An open change, patchset 2 created at `created`, files `files`.
    fn change(
        created: &str,
        files: serde_json::Value,
        messages: Vec<serde_json::Value>,
    ) -> ChangeInfo {
        serde_json::from_value(serde_json::json!({
            "id": "acme%2Fwidget~42", "project": "acme/widget", "branch": "main",
            "status": "NEW", "updated": "2024-05-01 10:00:09.0", "_number": 42,
            "current_revision": "c2",
            "revisions": {"c2": {"_number": 2, "created": created, "ref": "refs/changes/42/42/2",
                "commit": {"author": {"name": "Alice", "email": "alice@example.com"}},
                "files": files}},
            "messages": messages,
        }))
        .expect("change")
    }

    fn names(selected: &[(&Presubmit, Event)]) -> Vec<(String, Event)> {
        selected
            .iter()
            .map(|(p, e)| (p.name.clone(), e.clone()))
            .collect()
    }

    fn select(c: &ChangeInfo, failed: &[&str]) -> Vec<(String, Event)> {
        let cfg = config();
        let presubmits = cfg.presubmits_for(&clone_uri(INSTANCE, "acme/widget"));
        let messages = current_messages(c, t(SYNC), Some(1));
        let failed: BTreeSet<String> = failed.iter().map(|s| (*s).to_owned()).collect();
        names(&select_presubmits(
            &presubmits,
            c,
            &messages,
            &failed,
            t(SYNC),
        ))
    }

    #[test]
    fn code_host_and_refs() {
        assert_eq!(code_url(INSTANCE), "https://gerrit.example.com");
        assert_eq!(code_url("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        let c = change("2024-05-01 10:00:01.0", serde_json::json!({}), vec![]);
        let refs = create_refs(INSTANCE, &c, "base1").expect("refs");
        assert_eq!(refs.org, INSTANCE);
        assert_eq!(refs.repo, "acme/widget");
        assert_eq!(refs.base_ref, "main");
        assert_eq!(refs.clone_uri, format!("{INSTANCE}/acme/widget"));
        assert_eq!(refs.repo_link, "https://gerrit.example.com/acme/widget");
        assert_eq!(
            refs.base_link,
            "https://gerrit.example.com/acme/widget/+/base1"
        );
        let pull = &refs.pulls[0];
        assert_eq!(
            (pull.number, pull.author.as_str(), pull.sha.as_str()),
            (42, "Alice", "c2")
        );
        assert_eq!(pull.r#ref, "refs/changes/42/42/2");
        assert_eq!(pull.link, format!("{INSTANCE}/c/acme/widget/+/42"));
        assert_eq!(
            pull.commit_link,
            "https://gerrit.example.com/acme/widget/+/c2"
        );
        assert_eq!(pull.author_link, format!("{INSTANCE}/q/alice@example.com"));
    }

    #[test]
    fn labels_and_annotations_for_the_reporter() {
        let c = change("2024-05-01 10:00:01.0", serde_json::json!({}), vec![]);
        let cfg = config();
        let unit = cfg.presubmits_for(&clone_uri(INSTANCE, "acme/widget"))[0];
        let (labels, annotations) =
            labels_and_annotations(INSTANCE, &unit.labels, &unit.annotations, &c);
        assert_eq!(labels[GERRIT_REVISION], "c2");
        assert_eq!(labels[GERRIT_PATCHSET], "2");
        assert_eq!(
            labels[GERRIT_REPORT_LABEL], "Verified",
            "the job's own wins"
        );
        assert_eq!(labels["team"], "infra");
        assert_eq!(annotations[GERRIT_INSTANCE], INSTANCE);
        assert_eq!(annotations[GERRIT_ID], "acme%2Fwidget~42");
        assert_eq!(annotations["owner"], "infra");
        let (labels, _) = labels_and_annotations(INSTANCE, &BTreeMap::new(), &BTreeMap::new(), &c);
        assert_eq!(labels[GERRIT_REPORT_LABEL], DEFAULT_REPORT_LABEL);
    }

    #[test]
    fn a_new_revision_runs_test_all_with_change_filters_and_renames() {
        let c = change(
            "2024-05-01 10:00:01.0",
            serde_json::json!({"src/a.rs": {}}),
            vec![],
        );
        assert_eq!(
            select(&c, &[]),
            [
                ("unit".to_owned(), Event::NewRevision),
                ("lint".to_owned(), Event::NewRevision)
            ]
        );
        // a rename out of docs/ counts as a docs change
        let c = change(
            "2024-05-01 10:00:01.0",
            serde_json::json!({"guide.md": {"status": "R", "old_path": "docs/guide.md"}}),
            vec![],
        );
        assert_eq!(changed_files(&c), ["docs/guide.md", "guide.md"]);
        let got: Vec<String> = select(&c, &[]).into_iter().map(|(n, _)| n).collect();
        assert_eq!(got, ["unit", "docs", "lint"]);
    }

    #[test]
    fn work_in_progress_and_old_revisions_run_nothing_by_themselves() {
        let mut c = change("2024-05-01 10:00:01.0", serde_json::json!({}), vec![]);
        c.work_in_progress = true;
        assert!(select(&c, &[]).is_empty());
        let old = change("2024-05-01 09:00:00.0", serde_json::json!({}), vec![]);
        assert!(select(&old, &[]).is_empty());
        // ready for review → test all
        let ready = change(
            "2024-05-01 09:00:00.0",
            serde_json::json!({}),
            vec![message(
                "m1",
                7,
                "2024-05-01 10:00:02.0",
                "Set Ready For Review",
                2,
            )],
        );
        assert_eq!(
            select(&ready, &[]),
            [
                ("unit".to_owned(), Event::Message("m1".into())),
                ("lint".to_owned(), Event::Message("m1".into()))
            ]
        );
    }

    #[test]
    fn comments_test_and_retest() {
        let msgs = vec![
            message(
                "old",
                7,
                "2024-05-01 09:59:00.0",
                "Patch Set 2:\n\n/test e2e",
                2,
            ),
            message(
                "ps1",
                7,
                "2024-05-01 10:00:01.0",
                "Patch Set 1:\n\n/test e2e",
                1,
            ),
            message(
                "bot",
                1,
                "2024-05-01 10:00:02.0",
                "Patch Set 2:\n\n```\n/test e2e\n```",
                2,
            ),
            message(
                "m2",
                7,
                "2024-05-01 10:00:03.0",
                "Patch Set 2:\n\n/test e2e",
                2,
            ),
        ];
        let c = change("2024-05-01 09:00:00.0", serde_json::json!({}), msgs);
        // only m2 counts: older than the sync, another patchset, or the bot's own
        assert_eq!(
            select(&c, &[]),
            [("e2e".to_owned(), Event::Message("m2".into()))]
        );
        let retest = change(
            "2024-05-01 09:00:00.0",
            serde_json::json!({}),
            vec![message(
                "r",
                7,
                "2024-05-01 10:00:03.0",
                "Patch Set 2:\n\n/retest",
                2,
            )],
        );
        assert!(wants_retest(&current_messages(&retest, t(SYNC), None)));
        // only the failed jobs rerun (lint's context differs from its name)
        assert_eq!(
            select(&retest, &["e2e", "lint"]),
            [
                ("e2e".to_owned(), Event::Message("r".into())),
                ("lint".to_owned(), Event::Message("r".into()))
            ]
        );
        assert!(select(&retest, &[]).is_empty());
    }

    #[test]
    fn should_trigger_rules() {
        let gerrit = Gerrit::default();
        let sync = t(SYNC);
        let new_rev = change("2024-05-01 10:00:01.0", serde_json::json!({}), vec![]);
        assert!(should_trigger(&new_rev, sync, &gerrit, None));
        let quiet = change("2024-05-01 09:00:00.0", serde_json::json!({}), vec![]);
        assert!(!should_trigger(&quiet, sync, &gerrit, None));
        let mut merged = quiet.clone();
        merged.status = MERGED.into();
        assert!(should_trigger(&merged, sync, &gerrit, None));
        let chatter = change(
            "2024-05-01 09:00:00.0",
            serde_json::json!({}),
            vec![message(
                "m",
                7,
                "2024-05-01 10:00:01.0",
                "Patch Set 2:\n\nlgtm",
                2,
            )],
        );
        assert!(
            should_trigger(&chatter, sync, &gerrit, None),
            "empty allowed_presubmit_trigger_re allows every message"
        );
        let strict = Gerrit {
            allowed_presubmit_trigger_re: "(?m)^/test ".into(),
            ..Gerrit::default()
        };
        assert!(!should_trigger(&chatter, sync, &strict, None));
        let bot_only = change(
            "2024-05-01 09:00:00.0",
            serde_json::json!({}),
            vec![message(
                "m",
                1,
                "2024-05-01 10:00:01.0",
                "Patch Set 2:\n\n/retest",
                2,
            )],
        );
        assert!(!should_trigger(&bot_only, sync, &gerrit, Some(1)));
    }

    #[test]
    fn postsubmits_by_branch_and_files() {
        let cfg = config();
        let posts = cfg.postsubmits_for(&clone_uri(INSTANCE, "acme/widget"));
        let mut c = change(
            "2024-05-01 09:00:00.0",
            serde_json::json!({"src/a.rs": {}}),
            vec![],
        );
        c.status = MERGED.into();
        let names: Vec<&str> = select_postsubmits(&posts, &c)
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(names, ["publish"]);
        c.branch = "dev".into();
        assert!(select_postsubmits(&posts, &c).is_empty());
    }

    #[test]
    fn deck_link_and_triggered_message() {
        let c = change("2024-05-01 10:00:01.0", serde_json::json!({}), vec![]);
        let refs = create_refs(INSTANCE, &c, "b").expect("refs");
        assert_eq!(
            deck_link("https://deck.example.com/?type=presubmit", &refs, "NEW").as_deref(),
            Some(
                "https://deck.example.com/?pull=42&repo=https%3A%2F%2Fgerrit-review.example.com%2Facme%2Fwidget&type=presubmit"
            )
        );
        assert_eq!(deck_link("https://deck.example.com/", &refs, MERGED), None);
        assert_eq!(deck_link("", &refs, "NEW"), None);
        let created = vec![("unit".to_owned(), true), ("quiet".to_owned(), false)];
        assert_eq!(
            triggered_message(&created, None).as_deref(),
            Some("Triggered 2 prow jobs (1 suppressed reporting): \n  * Name: unit")
        );
        assert_eq!(
            triggered_message(&created, Some("https://deck/?pull=1")).as_deref(),
            Some("Triggered 2 prow jobs (1 suppressed reporting): https://deck/?pull=1")
        );
        assert_eq!(triggered_message(&[("q".to_owned(), false)], None), None);
    }

    #[test]
    fn keys_identify_the_event() {
        let c = change("2024-05-01 10:00:01.0", serde_json::json!({}), vec![]);
        assert_eq!(
            job_key(INSTANCE, &c, &Event::NewRevision, "unit"),
            format!("gerrit/{INSTANCE}/42/c2/revision/unit")
        );
        assert_ne!(
            job_key(INSTANCE, &c, &Event::Message("a".into()), "unit"),
            job_key(INSTANCE, &c, &Event::Message("b".into()), "unit")
        );
    }
}
