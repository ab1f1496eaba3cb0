//! The Gerrit reporter against the Gerrit test server and a real SQLite job store.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bosun_conformance::test_servers::gerrit::{Change, GerritServer};
use bosun_gateway_store::{JobStore, SqliteJobStore, StoreError};
use bosun_proto::{ProwJob, ProwJobState};
use bosun_reporters::gerrit::{GERRIT_REPORTER_NAME, GerritAuth, GerritReporter};
use bosun_reporters::{Crier, CrierOptions, Reporter, ReporterOptions, Secret};
use tokio_util::sync::CancellationToken;

const REV1: &str = "1111111111111111111111111111111111111111";
const REV2: &str = "2222222222222222222222222222222222222222";
const CHANGE: &str = "acme%2Fwidget~main~I0123";

fn job(
    name: &str,
    job_name: &str,
    revision: &str,
    patchset: &str,
    report_label: Option<&str>,
    instance: &str,
) -> ProwJob {
    let mut labels = serde_json::json!({
        "prow.k8s.io/type": "presubmit",
        "prow.k8s.io/gerrit-revision": revision,
        "prow.k8s.io/gerrit-patchset": patchset,
        "prow.k8s.io/refs.org": "review.example.com",
        "prow.k8s.io/refs.repo": "widget",
        "prow.k8s.io/refs.pull": "123",
    });
    if let Some(l) = report_label {
        labels["prow.k8s.io/gerrit-report-label"] = serde_json::Value::String(l.to_owned());
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "prow.k8s.io/v1",
        "kind": "ProwJob",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {
                "prow.k8s.io/gerrit-id": CHANGE,
                "prow.k8s.io/gerrit-instance": instance,
            }
        },
        "spec": {
            "type": "presubmit",
            "job": job_name,
            "agent": "local",
            "report": true,
            "refs": {
                "org": "https://review.example.com", "repo": "widget", "base_ref": "main",
                "base_sha": "abc", "pulls": [{"number": 123, "author": "alice", "sha": revision}]
            }
        },
        "status": {"state": "triggered", "url": format!("https://prow.example.com/view/gs/b/{name}")}
    }))
    .expect("job")
}

async fn server() -> GerritServer {
    let changes: BTreeMap<String, Change> = [(
        CHANGE.to_owned(),
        Change {
            status: "NEW".to_owned(),
            revisions: vec![REV1.to_owned(), REV2.to_owned()],
        },
    )]
    .into_iter()
    .collect();
    GerritServer::start("prow", "http-password", changes, &["Verified"])
        .await
        .expect("server")
}

fn auth() -> GerritAuth {
    GerritAuth::Basic {
        user: "prow".to_owned(),
        password: Secret::new("http-password"),
    }
}

async fn store(dir: &tempfile::TempDir) -> Arc<dyn JobStore> {
    Arc::new(
        SqliteJobStore::open_in_dir(dir.path())
            .await
            .expect("store"),
    )
}

async fn set_state(store: &dyn JobStore, name: &str, state: ProwJobState) {
    loop {
        let stored = store.get(name).await.expect("get");
        let mut job = stored.job;
        job.status.get_or_insert_with(Default::default).state = state;
        match store.update(job, stored.revision).await {
            Ok(_) => return,
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => panic!("update: {e}"),
        }
    }
}

async fn wait_reported(store: &dyn JobStore, name: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let job = store.get(name).await.expect("get").job;
        let state = job.status.as_ref().map(|s| s.state);
        let reported = job
            .status
            .as_ref()
            .and_then(|s| s.prev_report_states.get(GERRIT_REPORTER_NAME).copied());
        if reported.is_some() && reported == state {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "waiting for {name} to be reported"
        );
        // Poll interval of a condition check bounded by a deadline.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_review_per_revision_with_the_vote() {
    let gerrit = server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(&dir).await;
    let reporter = Arc::new(GerritReporter::new(auth(), BTreeMap::new(), store.clone()));
    let crier = Crier::new(
        store.clone(),
        vec![reporter],
        CrierOptions {
            default: ReporterOptions {
                backoff_base: Duration::from_millis(5),
                backoff_max: Duration::from_millis(50),
                ..ReporterOptions::default()
            },
            per_reporter: HashMap::new(),
        },
    );
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(crier.run(shutdown.clone()));

    for (name, job_name) in [("a", "unit"), ("b", "lint")] {
        store
            .create(
                job(name, job_name, REV1, "1", Some("Verified"), &gerrit.url()),
                None,
            )
            .await
            .expect("create");
    }
    set_state(store.as_ref(), "a", ProwJobState::Success).await;
    wait_reported(store.as_ref(), "a").await;
    assert!(gerrit.reviews().is_empty(), "the group is not complete yet");
    set_state(store.as_ref(), "b", ProwJobState::Failure).await;
    wait_reported(store.as_ref(), "b").await;
    shutdown.cancel();
    handle.await.expect("crier stops");

    assert_eq!(gerrit.server().violations(), Vec::<String>::new());
    let reviews = gerrit.reviews();
    assert_eq!(reviews.len(), 1, "{reviews:?}");
    let review = &reviews[0];
    assert_eq!(review.revision, REV1);
    assert_eq!(review.labels.get("Verified"), Some(&-1));
    assert_eq!(
        review.message,
        "Prow Status: 1 out of 2 pjs passed! 👉 Comment `/retest` to rerun only failed tests (if any), or `/test all` to rerun all tests.\n\
         ❌ [lint](https://prow.example.com/view/gs/b/b) FAILURE\n\
         ✔️ [unit](https://prow.example.com/view/gs/b/a) SUCCESS\n"
    );
    let request = gerrit
        .server()
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .expect("review request");
    assert_eq!(
        request.path,
        format!("/a/changes/{CHANGE}/revisions/{REV1}/review")
    );
}

#[tokio::test]
async fn retries_without_the_vote_when_voting_is_refused() {
    let gerrit = server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(&dir).await;
    let reporter = GerritReporter::new(auth(), BTreeMap::new(), store.clone());
    // No report label: votes Code-Review, which this account may not set.
    let created = store
        .create(job("c", "unit", REV1, "1", None, &gerrit.url()), None)
        .await
        .expect("create")
        .into_job();
    set_state(store.as_ref(), "c", ProwJobState::Success).await;
    let current = store.get("c").await.expect("get").job;
    assert!(reporter.should_report(&current));
    assert!(
        !reporter.should_report(&created.job),
        "triggered is not reported"
    );
    reporter.report(&current).await.expect("report");
    let reviews = gerrit.reviews();
    assert_eq!(reviews.len(), 1);
    assert!(reviews[0].labels.is_empty());
    assert!(reviews[0].message.starts_with(
        "[NOTICE]: Prow Bot cannot access Code-Review label!\nProw Status: 1 out of 1 pjs passed!"
    ));
}

#[tokio::test]
async fn skips_revisions_with_a_newer_patchset() {
    let gerrit = server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(&dir).await;
    let reporter = GerritReporter::new(auth(), BTreeMap::new(), store.clone());
    store
        .create(
            job("old", "unit", REV1, "1", Some("Verified"), &gerrit.url()),
            None,
        )
        .await
        .expect("create");
    store
        .create(
            job("new", "unit", REV2, "2", Some("Verified"), &gerrit.url()),
            None,
        )
        .await
        .expect("create");
    set_state(store.as_ref(), "old", ProwJobState::Failure).await;
    let old = store.get("old").await.expect("get").job;
    reporter.report(&old).await.expect("report");
    assert!(gerrit.reviews().is_empty());

    // Wrong credentials: an error that shows neither the password nor the header.
    let wrong = GerritReporter::new(
        GerritAuth::Basic {
            user: "prow".to_owned(),
            password: Secret::new("not-the-password"),
        },
        BTreeMap::new(),
        store.clone(),
    );
    set_state(store.as_ref(), "new", ProwJobState::Success).await;
    let new = store.get("new").await.expect("get").job;
    let err = wrong.report(&new).await.expect_err("401");
    assert!(!format!("{err:?}").contains("not-the-password"));
}
