//! The Gerrit adapter end to end: a real `bosun serve` polls the Gerrit test server (real REST
//! shapes over 127.0.0.1) and runs `agent: local` jobs; its Gerrit reporter posts the review
//! back to the same server.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bosun_conformance::test_servers::Canned;
use bosun_conformance::test_servers::gerrit::{ChangeRef, GerritServer};
use bosun_proto::api::ListRequest;
use bosun_proto::api::job_gateway_client::JobGatewayClient;
use bosun_proto::{ProwJob, ProwJobState, ProwJobType};
use tonic::transport::Channel;

use common::*;

const PASSWORD: &str = "gerrit-e2e-http-password";
const PROJECT: &str = "acme/widget";

/// A gateway configured for the test server: config.yaml, job config, the password file.
struct Setup {
    dir: tempfile::TempDir,
    gerrit: GerritServer,
    args: Vec<String>,
}

impl Setup {
    async fn new() -> Setup {
        let gerrit = GerritServer::start("prow", PASSWORD, BTreeMap::new(), &["Verified"])
            .await
            .expect("gerrit test server");
        let dir = tempfile::tempdir().expect("tempdir");
        let password = dir.path().join("gerrit-password");
        std::fs::write(&password, format!("{PASSWORD}\n")).expect("password");
        let config = dir.path().join("config.yaml");
        std::fs::write(
            &config,
            format!(
                "gerrit:\n  tick_interval: 100ms\n  ratelimit: 2\n  org_repos_config:\n  - org: {url}\n    repos: [{PROJECT}]\n\
                 bosun:\n  reporters:\n    crier: {{backoff_base: 50ms, backoff_max: 1s}}\n\
                 \x20   gerrit: {{user: prow, password_file: {password}}}\n",
                url = gerrit.url(),
                password = password.display(),
            ),
        )
        .expect("config");
        let jobs = dir.path().join("jobs");
        std::fs::create_dir_all(&jobs).expect("jobs dir");
        let key = format!("{}/{PROJECT}", gerrit.url().trim_start_matches("http://"));
        let marker = dir.path().join("flaky-ran-once");
        std::fs::write(jobs.join("jobs.yaml"), job_config(&key, &marker)).expect("jobs");
        let args = vec![
            "--config-path".to_owned(),
            config.display().to_string(),
            "--job-config-path".to_owned(),
            jobs.display().to_string(),
        ];
        Setup { dir, gerrit, args }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn state_file(&self) -> PathBuf {
        self.data().join("gerrit-last-sync.json")
    }

    fn start(&self) -> Gateway {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        Gateway::start(&self.data(), &args)
    }

    /// The adapter's last sync of the project, once it has one.
    fn last_sync(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.state_file()).ok()?;
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        json.get(self.gerrit.url())?
            .get(PROJECT)?
            .as_str()
            .map(str::to_owned)
    }
}

/// Presubmits `unit` (passes), `flaky` (fails on its first run only), `docs` (docs/ only),
/// `manual` (on request); postsubmits `publish` (main) and `publish-docs` (docs/ only). All
/// vote `Verified`.
fn job_config(key: &str, marker: &Path) -> String {
    let job = |name: &str, extra: &str, script: &str| {
        format!(
            "  - name: {name}\n{extra}    agent: local\n    labels: {{prow.k8s.io/gerrit-report-label: Verified}}\n\
             \x20   decoration_config: {{skip_cloning: true, utility_images: {{clonerefs: x, initupload: x, entrypoint: x, sidecar: x}}, gcs_configuration: {{bucket: b, path_strategy: explicit}}}}\n\
             \x20   spec: {{containers: [{{image: local, command: [sh, -c], args: [{script:?}]}}]}}\n"
        )
    };
    let flaky = format!(
        "if [ -e {m} ]; then exit 0; fi; touch {m}; exit 1",
        m = marker.display()
    );
    format!(
        "presubmits:\n  {key}:\n{}{}{}{}postsubmits:\n  {key}:\n{}{}",
        job("unit", "    always_run: true\n", "true"),
        job("flaky", "    always_run: true\n", &flaky),
        job("docs", "    run_if_changed: '^docs/'\n", "true"),
        job("manual", "", "true"),
        job("publish", "    branches: [main]\n", "true"),
        job("publish-docs", "    run_if_changed: '^docs/'\n", "true"),
    )
}

async fn list_jobs(c: &mut JobGatewayClient<Channel>, labels: &[(&str, &str)]) -> Vec<ProwJob> {
    let mut out = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = c
            .list(ListRequest {
                labels: labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                page_size: 500,
                page_token: page_token.clone(),
                ..ListRequest::default()
            })
            .await
            .expect("list")
            .into_inner();
        out.extend(page.jobs.iter().map(decode));
        if page.next_page_token.is_empty() {
            return out;
        }
        page_token = page.next_page_token;
    }
}

/// The jobs of one revision.
async fn revision_jobs(c: &mut JobGatewayClient<Channel>, revision: &str) -> Vec<ProwJob> {
    list_jobs(c, &[("prow.k8s.io/gerrit-revision", revision)]).await
}

fn count(jobs: &[ProwJob], name: &str) -> usize {
    jobs.iter().filter(|j| j.spec.job == name).count()
}

fn names(jobs: &[ProwJob]) -> Vec<String> {
    let mut v: Vec<String> = jobs.iter().map(|j| j.spec.job.clone()).collect();
    v.sort();
    v
}

/// Polls (a deadline-bounded condition check) until `cond` holds.
async fn until(what: &str, gw: &Gateway, mut cond: impl AsyncFnMut() -> bool) {
    let end = tokio::time::Instant::now() + DEADLINE;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for {what}; gateway log:\n{}",
            gw.logs()
        );
        // Poll interval of a condition check bounded by a deadline.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Waits until the adapter has started the project (so changes made now are new to it).
async fn wait_started(setup: &Setup, gw: &Gateway) {
    until("the adapter to start the project", gw, async || {
        setup.last_sync().is_some()
    })
    .await;
}

/// Waits until every job of `jobs` is complete; returns them as they ended.
async fn complete_all(c: &mut JobGatewayClient<Channel>, jobs: &[ProwJob]) -> Vec<ProwJob> {
    let mut out = Vec::new();
    for job in jobs {
        out.push(wait_complete(c, job.name()).await);
    }
    out
}

fn label<'a>(job: &'a ProwJob, key: &str) -> &'a str {
    job.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map_or("", String::as_str)
}

fn annotation<'a>(job: &'a ProwJob, key: &str) -> &'a str {
    job.metadata
        .annotations
        .as_ref()
        .and_then(|l| l.get(key))
        .map_or("", String::as_str)
}

fn triggered_messages(gerrit: &GerritServer, change: &ChangeRef) -> Vec<String> {
    gerrit
        .bot_messages(change.number)
        .into_iter()
        .map(|m| m.message)
        .filter(|m| m.contains("Triggered "))
        .collect()
}

/// A new patchset triggers the presubmits that run by themselves, once, with the refs,
/// labels and annotations the Gerrit reporter groups by; the reporter posts one review with
/// the vote; after kill -9 and a restart nothing is created twice, new patchsets still
/// trigger, and even a re-poll of the same events (last-sync state lost in the crash) finds
/// the jobs it created instead of creating them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_patchset_triggers_presubmits_once_across_kill9() {
    let setup = Setup::new().await;
    let gerrit = &setup.gerrit;
    let mut gw = setup.start();
    let mut c = gw.client().await;
    wait_started(&setup, &gw).await;
    let state_before_changes = std::fs::read(setup.state_file()).expect("state file");

    let change = gerrit.add_change(PROJECT, "main", "alice", ["src/lib.rs"]);
    until("presubmits for patchset 1", &gw, async || {
        revision_jobs(&mut c, &change.revision).await.len() >= 2
    })
    .await;
    let jobs = revision_jobs(&mut c, &change.revision).await;
    assert_eq!(
        names(&jobs),
        ["flaky", "unit"],
        "always_run jobs only (docs/ untouched, manual needs /test)"
    );
    let base = gerrit.branch_head(PROJECT, "main").expect("branch");
    for job in &jobs {
        assert_eq!(job.spec.r#type, ProwJobType::Presubmit);
        assert!(job.spec.report);
        let refs = job.spec.refs.as_ref().expect("refs");
        assert_eq!(refs.org, gerrit.url());
        assert_eq!(refs.repo, PROJECT);
        assert_eq!(refs.base_ref, "main");
        assert_eq!(refs.base_sha, base);
        assert_eq!(refs.clone_uri, format!("{}/{PROJECT}", gerrit.url()));
        let pull = &refs.pulls[0];
        assert_eq!(pull.number, change.number);
        assert_eq!(pull.sha, change.revision);
        assert_eq!(pull.author, "alice");
        assert_eq!(
            pull.r#ref,
            format!(
                "refs/changes/{:02}/{}/1",
                change.number % 100,
                change.number
            )
        );
        assert_eq!(
            pull.link,
            format!("{}/c/{PROJECT}/+/{}", gerrit.url(), change.number)
        );
        assert_eq!(label(job, "prow.k8s.io/gerrit-revision"), change.revision);
        assert_eq!(label(job, "prow.k8s.io/gerrit-patchset"), "1");
        assert_eq!(label(job, "prow.k8s.io/gerrit-report-label"), "Verified");
        assert_eq!(annotation(job, "prow.k8s.io/gerrit-instance"), gerrit.url());
        assert_eq!(annotation(job, "prow.k8s.io/gerrit-id"), change.id);
    }
    let ended = complete_all(&mut c, &jobs).await;
    let state_of = |name: &str| {
        ended
            .iter()
            .find(|j| j.spec.job == name)
            .map(ProwJob::state)
    };
    assert_eq!(state_of("unit"), Some(ProwJobState::Success));
    assert_eq!(state_of("flaky"), Some(ProwJobState::Failure));

    // Prow's "Triggered" message, then the reporter's review with the vote.
    until("the triggered message", &gw, async || {
        triggered_messages(gerrit, &change).len() == 1
    })
    .await;
    assert_eq!(
        triggered_messages(gerrit, &change)[0],
        "Patch Set 1:\n\nTriggered 2 prow jobs (0 suppressed reporting): \n  * Name: unit\n  * Name: flaky"
    );
    until("the reporter's review", &gw, async || {
        gerrit
            .reviews()
            .iter()
            .any(|r| r.message.starts_with("Prow Status"))
    })
    .await;
    let review = gerrit
        .reviews()
        .into_iter()
        .find(|r| r.message.starts_with("Prow Status"))
        .expect("review");
    assert_eq!(review.revision, change.revision);
    assert_eq!(review.change, change.id);
    assert!(
        review
            .message
            .starts_with("Prow Status: 1 out of 2 pjs passed!"),
        "{}",
        review.message
    );
    assert_eq!(review.labels.get("Verified"), Some(&-1));

    // kill -9 and restart: nothing is created again, and polling goes on from where it was.
    drop(c);
    gw.kill9();
    let first_logs = gw.logs();
    let mut gw = setup.start();
    let mut c = gw.client().await;
    let revision2 = gerrit
        .add_patchset(change.number, ["src/lib.rs", "src/more.rs"])
        .expect("patchset 2");
    until("presubmits for patchset 2", &gw, async || {
        revision_jobs(&mut c, &revision2).await.len() >= 2
    })
    .await;
    let jobs2 = revision_jobs(&mut c, &revision2).await;
    assert_eq!(names(&jobs2), ["flaky", "unit"]);
    assert!(
        jobs2
            .iter()
            .all(|j| label(j, "prow.k8s.io/gerrit-patchset") == "2")
    );
    assert_eq!(
        names(&revision_jobs(&mut c, &change.revision).await),
        ["flaky", "unit"],
        "patchset 1 ran once"
    );
    complete_all(&mut c, &jobs2).await;
    until("the triggered message of patchset 2", &gw, async || {
        triggered_messages(gerrit, &change).len() == 2
    })
    .await;

    // A crash that lost the last-sync state: the re-poll sees every event again and finds
    // the jobs it created by their keys.
    drop(c);
    gw.kill9();
    let second_logs = gw.logs();
    std::fs::write(setup.state_file(), &state_before_changes).expect("roll back state");
    let rolled_back = setup.last_sync();
    let gw = setup.start();
    let mut c = gw.client().await;
    until("the re-poll of the same events", &gw, async || {
        setup.last_sync() != rolled_back
    })
    .await;
    assert_eq!(
        list_jobs(&mut c, &[]).await.len(),
        4,
        "no job is created twice"
    );
    assert_eq!(triggered_messages(gerrit, &change).len(), 2);

    // With credentials every call is authenticated: `/a/` paths, basic auth.
    let requests = gerrit.server().requests();
    assert!(
        requests.iter().any(|r| r.path == "/a/changes/")
            && requests.iter().any(|r| r.path == "/a/accounts/self")
            && requests.iter().any(|r| r.path.ends_with("/comments")),
        "the adapter queried, read comments and its account"
    );
    assert!(
        requests
            .iter()
            .all(|r| r.path.starts_with("/a/") && r.header("authorization").is_some()),
        "every request authenticated"
    );
    assert_eq!(gerrit.server().violations(), Vec::<String>::new());
    let logs = format!("{first_logs}\n{second_logs}\n{}", gw.logs());
    assert!(!logs.contains(PASSWORD), "the password reached the log");
}

/// `/retest` reruns only the failed job, `/test manual` (a patchset-level comment) runs
/// `manual`, `/test nope` gets the help reply, a merge runs the postsubmits of its branch and
/// files, and a Gerrit outage is logged and outlived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_merges_and_outages() {
    let setup = Setup::new().await;
    let gerrit = &setup.gerrit;
    let gw = setup.start();
    let mut c = gw.client().await;
    wait_started(&setup, &gw).await;

    let change = gerrit.add_change(PROJECT, "main", "alice", ["src/lib.rs"]);
    until("presubmits", &gw, async || {
        revision_jobs(&mut c, &change.revision).await.len() >= 2
    })
    .await;
    let jobs = revision_jobs(&mut c, &change.revision).await;
    let first = complete_all(&mut c, &jobs).await;
    assert_eq!(
        first
            .iter()
            .filter(|j| j.state() == ProwJobState::Failure)
            .map(|j| j.spec.job.as_str())
            .collect::<Vec<_>>(),
        ["flaky"]
    );

    // /retest: only flaky runs again (unit passed; docs and manual do not run by themselves).
    assert!(gerrit.post_message(change.number, "bob", "/retest"));
    until("the rerun of flaky", &gw, async || {
        count(&revision_jobs(&mut c, &change.revision).await, "flaky") == 2
    })
    .await;
    let jobs = revision_jobs(&mut c, &change.revision).await;
    assert_eq!(
        names(&jobs),
        ["flaky", "flaky", "unit"],
        "only the failed job"
    );
    let rerun = jobs.iter().rfind(|j| j.spec.job == "flaky").expect("rerun");
    assert_eq!(
        wait_complete(&mut c, rerun.name()).await.state(),
        ProwJobState::Success
    );

    // /test manual, as a patchset-level comment.
    assert!(gerrit.post_comment(change.number, "bob", "/test manual"));
    until("manual", &gw, async || {
        count(&revision_jobs(&mut c, &change.revision).await, "manual") == 1
    })
    .await;
    let jobs = revision_jobs(&mut c, &change.revision).await;
    assert_eq!(names(&jobs), ["flaky", "flaky", "manual", "unit"]);
    complete_all(&mut c, &jobs).await;

    // /test nope: the help reply lists what can run.
    assert!(gerrit.post_message(change.number, "bob", "/test nope"));
    until("the help reply", &gw, async || {
        gerrit
            .bot_messages(change.number)
            .iter()
            .any(|m| m.message.contains("were not found"))
    })
    .await;
    let help = gerrit
        .bot_messages(change.number)
        .into_iter()
        .find(|m| m.message.contains("were not found"))
        .expect("help")
        .message;
    assert!(
        help.contains("The specified target(s) for `/test` were not found.")
            && help.contains("/test manual"),
        "{help}"
    );
    // The help reply quotes every `/test` command; the bot's own messages trigger nothing.
    assert!(gerrit.post_message(change.number, "bob", "/test manual"));
    until("manual again", &gw, async || {
        count(&revision_jobs(&mut c, &change.revision).await, "manual") == 2
    })
    .await;
    let jobs = revision_jobs(&mut c, &change.revision).await;
    assert_eq!(names(&jobs), ["flaky", "flaky", "manual", "manual", "unit"]);
    complete_all(&mut c, &jobs).await;

    // Merge: the postsubmits of main whose files match.
    let merged = gerrit.merge(change.number).expect("merge");
    until("the postsubmit", &gw, async || {
        list_jobs(&mut c, &[("prow.k8s.io/type", "postsubmit")])
            .await
            .len()
            == 1
    })
    .await;
    let posts = list_jobs(&mut c, &[("prow.k8s.io/type", "postsubmit")]).await;
    assert_eq!(names(&posts), ["publish"], "publish-docs: no docs/ change");
    let refs = posts[0].spec.refs.as_ref().expect("refs");
    assert_eq!(refs.base_ref, "main");
    assert_eq!(refs.base_sha, merged, "the branch head after the merge");
    assert_eq!(refs.pulls[0].number, change.number);
    assert_eq!(
        wait_complete(&mut c, posts[0].name()).await.state(),
        ProwJobState::Success
    );

    // Gerrit down: logged with the instance, the gateway keeps running, and polling resumes.
    gerrit
        .server()
        .start_outage(Canned::text(503, "Service Unavailable"));
    until("the outage to be logged", &gw, async || {
        gw.logs().lines().any(|l| {
            l.contains("gerrit poll failed") && l.contains(&gerrit.url()) && l.contains("503")
        })
    })
    .await;
    gerrit.server().end_outage();
    let other = gerrit.add_change(PROJECT, "dev", "carol", ["docs/readme.md"]);
    until("presubmits after the outage", &gw, async || {
        revision_jobs(&mut c, &other.revision).await.len() >= 3
    })
    .await;
    assert_eq!(
        names(&revision_jobs(&mut c, &other.revision).await),
        ["docs", "flaky", "unit"]
    );
    assert!(
        gw.logs().contains("gerrit poll failed"),
        "the gateway outlived the outage"
    );
    assert_eq!(gerrit.server().violations(), Vec::<String>::new());
    assert!(
        !gw.logs().contains(PASSWORD),
        "the password reached the log"
    );
}
