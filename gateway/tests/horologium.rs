//! Periodic jobs on virtual time: each test steps `now` by hand and calls `Horologium::sync`
//! against a real SQLite store, so interval, cron and minimum_interval behaviour (no overlap,
//! no burst after downtime) is shown without waiting.

use std::sync::Arc;

use bosun_gateway::metrics::Metrics;
use bosun_gateway::triggers::horologium::{Horologium, RERUN_LABEL};
use bosun_gateway::triggers::{ConfigHandle, JobCreator};
use bosun_gateway_store::{JobStore, ListFilter, SqliteJobStore};
use bosun_proto::{ProwJob, ProwJobState, ProwJobType};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

struct Fixture {
    store: Arc<dyn JobStore>,
    config: ConfigHandle,
    _dir: tempfile::TempDir,
}

fn config(periodics: &str) -> bosun_gateway_config::LoadedConfig {
    bosun_gateway_config::load_from_memory(
        (
            std::path::Path::new("config.yaml"),
            "prowjob_namespace: ci\n",
        ),
        &[(std::path::Path::new("jobs.yaml"), periodics)],
    )
    .expect("config loads")
}

async fn fixture(periodics: &str) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn JobStore> = Arc::new(
        SqliteJobStore::open_in_dir(dir.path())
            .await
            .expect("store opens"),
    );
    Fixture {
        store,
        config: ConfigHandle::new(Some(config(periodics))),
        _dir: dir,
    }
}

impl Fixture {
    fn horologium(&self) -> Horologium {
        Horologium::new(
            JobCreator {
                store: self.store.clone(),
                namespace: "ci".into(),
                metrics: Metrics::default(),
            },
            self.config.clone(),
        )
    }

    async fn runs(&self, job: &str) -> Vec<ProwJob> {
        let page = self
            .store
            .list(
                &ListFilter {
                    job: Some(job.into()),
                    job_type: Some(ProwJobType::Periodic),
                    ..ListFilter::default()
                },
                0,
                None,
            )
            .await
            .expect("list");
        page.jobs.into_iter().map(|s| s.job).collect()
    }

    async fn finish(&self, name: &str, state: ProwJobState, at: Timestamp) {
        let stored = self.store.get(name).await.expect("get");
        let mut job = stored.job;
        let status = job.status_mut();
        status.state = state;
        status.completion_time = Some(Time(at));
        self.store
            .update(job, stored.revision)
            .await
            .expect("update");
    }
}

fn t(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

fn start_of(job: &ProwJob) -> Timestamp {
    job.status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .expect("start time")
        .0
}

const INTERVAL: &str = r#"
periodics:
- name: hourly
  interval: 1h
  spec: {containers: [{image: x, command: ["true"]}]}
"#;

#[tokio::test]
async fn interval_runs_at_once_then_an_interval_after_the_last_start_and_never_overlaps() {
    let f = fixture(INTERVAL).await;
    let h = f.horologium();

    let r = h.sync(t("2026-12-06T10:00:00Z")).await.expect("sync");
    assert_eq!(
        r.started,
        ["hourly"],
        "a periodic that never ran starts at once"
    );
    let runs = f.runs("hourly").await;
    assert_eq!(runs.len(), 1);
    let first = &runs[0];
    assert_eq!(start_of(first), t("2026-12-06T10:00:00Z"));
    assert_eq!(first.metadata.namespace.as_deref(), Some("ci"));
    assert_eq!(first.spec.r#type, ProwJobType::Periodic);
    assert!(first.spec.report);

    // Still running after more than an interval: no second run (no overlap).
    for now in ["2026-12-06T10:30:00Z", "2026-12-06T11:30:00Z"] {
        assert!(h.sync(t(now)).await.expect("sync").started.is_empty());
    }
    f.finish(
        first.name(),
        ProwJobState::Success,
        t("2026-12-06T11:40:00Z"),
    )
    .await;
    // Complete, and more than 1h since it started: due now.
    let r = h.sync(t("2026-12-06T11:41:00Z")).await.expect("sync");
    assert_eq!(r.started, ["hourly"]);
    assert!(
        h.sync(t("2026-12-06T11:42:00Z"))
            .await
            .expect("sync")
            .started
            .is_empty()
    );
    assert_eq!(f.runs("hourly").await.len(), 2);
}

#[tokio::test]
async fn interval_counts_from_the_start_of_the_newest_run() {
    let f = fixture(INTERVAL).await;
    let h = f.horologium();
    h.sync(t("2026-12-06T10:00:00Z")).await.expect("sync");
    let run = f.runs("hourly").await.remove(0);
    f.finish(run.name(), ProwJobState::Failure, t("2026-12-06T10:05:00Z"))
        .await;
    assert!(
        h.sync(t("2026-12-06T10:59:59Z"))
            .await
            .expect("sync")
            .started
            .is_empty()
    );
    assert_eq!(
        h.next_wake(t("2026-12-06T10:59:59Z")).await,
        std::time::Duration::from_millis(1001),
        "the loop wakes just after the interval has passed"
    );
    assert_eq!(
        h.sync(t("2026-12-06T11:00:01Z"))
            .await
            .expect("sync")
            .started,
        ["hourly"]
    );
}

#[tokio::test]
async fn minimum_interval_counts_from_the_completion_of_the_newest_run() {
    let f = fixture(
        r#"
periodics:
- name: settle
  minimum_interval: 1h
  spec: {containers: [{image: x, command: ["true"]}]}
"#,
    )
    .await;
    let h = f.horologium();
    h.sync(t("2026-12-06T10:00:00Z")).await.expect("sync");
    let run = f.runs("settle").await.remove(0);
    f.finish(run.name(), ProwJobState::Success, t("2026-12-06T10:40:00Z"))
        .await;
    // An hour after the start, but not after the completion.
    assert!(
        h.sync(t("2026-12-06T11:30:00Z"))
            .await
            .expect("sync")
            .started
            .is_empty()
    );
    assert_eq!(
        h.sync(t("2026-12-06T11:40:01Z"))
            .await
            .expect("sync")
            .started,
        ["settle"]
    );
}

const CRON: &str = r#"
periodics:
- name: on-the-hour
  cron: "0 * * * *"
  spec: {containers: [{image: x, command: ["true"]}]}
"#;

#[tokio::test]
async fn cron_waits_for_its_first_fire_drops_fires_while_running_and_never_bursts_after_downtime() {
    let f = fixture(CRON).await;
    let h = f.horologium();
    // Never ran, but cron: waits for the schedule.
    assert!(
        h.sync(t("2026-12-06T10:30:00Z"))
            .await
            .expect("sync")
            .started
            .is_empty()
    );
    assert!(
        h.sync(t("2026-12-06T10:59:59Z"))
            .await
            .expect("sync")
            .started
            .is_empty()
    );
    assert_eq!(
        h.sync(t("2026-12-06T11:00:05Z"))
            .await
            .expect("sync")
            .started,
        ["on-the-hour"]
    );
    let first = f.runs("on-the-hour").await.remove(0);

    // 12:00 fires while the 11:00 run still runs: dropped, not deferred.
    assert!(
        h.sync(t("2026-12-06T12:00:05Z"))
            .await
            .expect("sync")
            .started
            .is_empty()
    );
    f.finish(
        first.name(),
        ProwJobState::Success,
        t("2026-12-06T12:10:00Z"),
    )
    .await;
    assert!(
        h.sync(t("2026-12-06T12:30:00Z"))
            .await
            .expect("sync")
            .started
            .is_empty()
    );
    assert_eq!(
        h.sync(t("2026-12-06T13:00:01Z"))
            .await
            .expect("sync")
            .started,
        ["on-the-hour"]
    );
    assert_eq!(f.runs("on-the-hour").await.len(), 2);
    let second = f.runs("on-the-hour").await.remove(1);
    f.finish(
        second.name(),
        ProwJobState::Success,
        t("2026-12-06T13:05:00Z"),
    )
    .await;

    // The gateway is down from 13:05 to 18:20 (five fires missed); a new horologium on the
    // same store starts no burst of catch-up runs...
    drop(h);
    let restarted = f.horologium();
    assert!(
        restarted
            .sync(t("2026-12-06T18:20:00Z"))
            .await
            .expect("sync")
            .started
            .is_empty()
    );
    assert_eq!(f.runs("on-the-hour").await.len(), 2);
    // ...and runs once at the next fire.
    assert_eq!(
        restarted
            .sync(t("2026-12-06T19:00:00Z"))
            .await
            .expect("sync")
            .started,
        ["on-the-hour"]
    );
    // Even when several fires passed between two syncs, one sync starts one run.
    let third = f.runs("on-the-hour").await.remove(2);
    f.finish(
        third.name(),
        ProwJobState::Success,
        t("2026-12-06T19:01:00Z"),
    )
    .await;
    assert_eq!(
        restarted
            .sync(t("2026-12-06T23:30:00Z"))
            .await
            .expect("sync")
            .started,
        ["on-the-hour"]
    );
    assert_eq!(f.runs("on-the-hour").await.len(), 4);
}

#[tokio::test]
async fn cron_next_wake_is_the_next_fire() {
    let f = fixture(CRON).await;
    let h = f.horologium();
    h.sync(t("2026-12-06T10:30:00Z")).await.expect("sync");
    // tick_interval (1m by default) bounds the wait...
    assert_eq!(
        h.next_wake(t("2026-12-06T10:30:00Z")).await,
        std::time::Duration::from_secs(60)
    );
    // ...and the next fire shortens it.
    assert_eq!(
        h.next_wake(t("2026-12-06T10:59:30Z")).await,
        std::time::Duration::from_secs(30)
    );
}

#[tokio::test]
async fn every_descriptor_fires_at_the_first_sync() {
    let f = fixture(
        r#"
periodics:
- name: every
  cron: "@every 2h"
  spec: {containers: [{image: x, command: ["true"]}]}
"#,
    )
    .await;
    let h = f.horologium();
    assert_eq!(
        h.sync(t("2026-12-06T10:00:00Z"))
            .await
            .expect("sync")
            .started,
        ["every"]
    );
    let run = f.runs("every").await.remove(0);
    f.finish(run.name(), ProwJobState::Success, t("2026-12-06T10:10:00Z"))
        .await;
    assert!(
        h.sync(t("2026-12-06T11:00:00Z"))
            .await
            .expect("sync")
            .started
            .is_empty()
    );
    assert_eq!(
        h.sync(t("2026-12-06T12:00:00Z"))
            .await
            .expect("sync")
            .started,
        ["every"]
    );
}

#[tokio::test]
async fn a_run_started_elsewhere_counts_as_the_newest_run() {
    let f = fixture(INTERVAL).await;
    let h = f.horologium();
    h.sync(t("2026-12-06T10:00:00Z")).await.expect("sync");
    let run = f.runs("hourly").await.remove(0);
    f.finish(run.name(), ProwJobState::Success, t("2026-12-06T10:05:00Z"))
        .await;
    // Someone runs it by hand (bosun trigger) at 10:30.
    let loaded = config(INTERVAL);
    let periodic = loaded.find_periodic("hourly").expect("configured");
    let mut manual = bosun_gateway_config::new_prowjob(
        bosun_gateway_config::periodic_spec(periodic),
        &Default::default(),
        &Default::default(),
        false,
    );
    manual.status_mut().start_time = Some(Time(t("2026-12-06T10:30:00Z")));
    f.store.create(manual, None).await.expect("create");
    // 11:00:01 is an hour after the first run, but the manual one is newer and still running.
    let started = h
        .sync(t("2026-12-06T11:00:01Z"))
        .await
        .expect("sync")
        .started;
    assert!(
        started.is_empty(),
        "no run while the manually started one runs"
    );
    assert_eq!(f.runs("hourly").await.len(), 2);
}

#[tokio::test]
async fn failed_runs_are_retried_with_the_rerun_label_up_to_attempts() {
    let f = fixture(
        r#"
periodics:
- name: flaky
  interval: 24h
  retry: {attempts: 2, interval: 10m}
  spec: {containers: [{image: x, command: ["true"]}]}
"#,
    )
    .await;
    let h = f.horologium();
    h.sync(t("2026-12-06T10:00:00Z")).await.expect("sync");
    let first = f.runs("flaky").await.remove(0);
    f.finish(
        first.name(),
        ProwJobState::Failure,
        t("2026-12-06T10:01:00Z"),
    )
    .await;
    assert!(
        h.sync(t("2026-12-06T10:05:00Z"))
            .await
            .expect("sync")
            .started
            .is_empty()
    );
    assert_eq!(
        h.sync(t("2026-12-06T10:10:01Z"))
            .await
            .expect("sync")
            .started,
        ["flaky"]
    );
    let retry = f.runs("flaky").await.remove(1);
    let label = |j: &ProwJob| {
        j.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(RERUN_LABEL).cloned())
    };
    assert_eq!(label(&retry).as_deref(), Some("1"));
    f.finish(retry.name(), ProwJobState::Error, t("2026-12-06T10:11:00Z"))
        .await;
    h.sync(t("2026-12-06T10:21:00Z")).await.expect("sync");
    let second = f.runs("flaky").await.remove(2);
    assert_eq!(label(&second).as_deref(), Some("2"));
    f.finish(
        second.name(),
        ProwJobState::Failure,
        t("2026-12-06T10:22:00Z"),
    )
    .await;
    // Attempts used up: nothing until the interval.
    assert!(
        h.sync(t("2026-12-06T12:00:00Z"))
            .await
            .expect("sync")
            .started
            .is_empty()
    );
    assert_eq!(f.runs("flaky").await.len(), 3);
}

#[tokio::test]
async fn config_changes_apply_at_the_next_sync() {
    let f = fixture(INTERVAL).await;
    let h = f.horologium();
    h.sync(t("2026-12-06T10:00:00Z")).await.expect("sync");
    f.config.replace(config(
        r#"
periodics:
- name: hourly
  interval: 1h
  spec: {containers: [{image: x, command: ["true"]}]}
- name: added
  cron: "@every 5m"
  spec: {containers: [{image: x, command: ["true"]}]}
"#,
    ));
    assert_eq!(
        h.sync(t("2026-12-06T10:01:00Z"))
            .await
            .expect("sync")
            .started,
        ["added"]
    );
    f.config.replace(config("periodics: []\n"));
    assert!(
        h.sync(t("2026-12-06T18:00:00Z"))
            .await
            .expect("sync")
            .started
            .is_empty()
    );
}
