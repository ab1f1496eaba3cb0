//! The crier fan-out against a real SQLite job store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bosun_gateway_store::{JobStore, SqliteJobStore, StoreError};
use bosun_proto::{ProwJob, ProwJobState};
use bosun_reporters::{Crier, CrierOptions, ReportError, Reporter, ReporterOptions, job_state};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What a recording reporter does on each call.
#[derive(Clone, Copy)]
enum Mode {
    Ok,
    /// Always fails transiently.
    AlwaysFail,
    /// The first call per (job, state) fails with this retry-after, later calls succeed.
    FailOnceRetryAfter(Duration),
}

struct Recorder {
    name: String,
    mode: Mode,
    only_final: bool,
    seen: Mutex<Vec<(String, ProwJobState, Instant)>>,
    attempts: Mutex<Vec<(String, ProwJobState, Instant)>>,
}

impl Recorder {
    fn new(name: &str, mode: Mode) -> Arc<Self> {
        Arc::new(Recorder {
            name: name.to_owned(),
            mode,
            only_final: false,
            seen: Mutex::new(Vec::new()),
            attempts: Mutex::new(Vec::new()),
        })
    }

    fn final_only(name: &str) -> Arc<Self> {
        Arc::new(Recorder {
            name: name.to_owned(),
            mode: Mode::Ok,
            only_final: true,
            seen: Mutex::new(Vec::new()),
            attempts: Mutex::new(Vec::new()),
        })
    }

    fn seen(&self) -> Vec<(String, ProwJobState)> {
        self.seen
            .lock()
            .expect("lock")
            .iter()
            .map(|(n, s, _)| (n.clone(), *s))
            .collect()
    }

    fn attempts(&self) -> usize {
        self.attempts.lock().expect("lock").len()
    }
}

#[async_trait]
impl Reporter for Recorder {
    fn name(&self) -> &str {
        &self.name
    }

    fn should_report(&self, job: &ProwJob) -> bool {
        !self.only_final || job_state(job).is_final()
    }

    async fn report(&self, job: &ProwJob) -> Result<(), ReportError> {
        let name = job.metadata.name.clone().expect("name");
        let state = job_state(job);
        let now = Instant::now();
        let previous_attempts = {
            let mut attempts = self.attempts.lock().expect("lock");
            let n = attempts
                .iter()
                .filter(|(j, s, _)| *j == name && *s == state)
                .count();
            attempts.push((name.clone(), state, now));
            n
        };
        match self.mode {
            Mode::AlwaysFail => {
                return Err(ReportError::Transient {
                    message: "sink is down".to_owned(),
                    retry_after: None,
                });
            }
            Mode::FailOnceRetryAfter(after) if previous_attempts == 0 => {
                return Err(ReportError::Transient {
                    message: "slow down".to_owned(),
                    retry_after: Some(after),
                });
            }
            _ => {}
        }
        self.seen.lock().expect("lock").push((name, state, now));
        Ok(())
    }
}

fn options(workers: usize) -> CrierOptions {
    CrierOptions {
        default: ReporterOptions {
            workers,
            queue_capacity: 100,
            rate_per_second: Some(1000.0),
            burst: 100,
            backoff_base: Duration::from_millis(5),
            backoff_max: Duration::from_millis(50),
        },
        per_reporter: HashMap::new(),
    }
}

fn job(name: &str) -> ProwJob {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "prow.k8s.io/v1",
        "kind": "ProwJob",
        "metadata": {"name": name},
        "spec": {"type": "periodic", "job": "nightly", "agent": "local"},
        "status": {"state": "triggered", "description": "Job triggered."}
    }))
    .expect("job")
}

async fn open_store(dir: &tempfile::TempDir) -> Arc<dyn JobStore> {
    Arc::new(
        SqliteJobStore::open_in_dir(dir.path())
            .await
            .expect("open store"),
    )
}

/// Sets the job's state (and description) by compare-and-swap, keeping everything else.
async fn set_state(store: &dyn JobStore, name: &str, state: ProwJobState, description: &str) {
    loop {
        let stored = store.get(name).await.expect("get");
        let mut job = stored.job;
        let status = job.status.get_or_insert_with(Default::default);
        status.state = state;
        status.description = description.to_owned();
        match store.update(job, stored.revision).await {
            Ok(_) => return,
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => panic!("update: {e}"),
        }
    }
}

async fn wait_until<F: FnMut() -> bool>(what: &str, mut done: F) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        // Poll interval of a condition check bounded by a deadline.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn reported_state(store: &dyn JobStore, job: &str, reporter: &str) -> Option<ProwJobState> {
    store
        .get(job)
        .await
        .expect("get")
        .job
        .status
        .and_then(|s| s.prev_report_states.get(reporter).copied())
}

async fn wait_reported(store: &dyn JobStore, job: &str, reporter: &str, state: ProwJobState) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while reported_state(store, job, reporter).await != Some(state) {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {reporter} to record {state} on {job}"
        );
        // Poll interval of a condition check bounded by a deadline.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn start(
    store: &Arc<dyn JobStore>,
    reporters: Vec<Arc<dyn Reporter>>,
    workers: usize,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<()>,
    bosun_reporters::CrierMetrics,
) {
    let crier = Crier::new(store.clone(), reporters, options(workers));
    let metrics = crier.metrics();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(crier.run(shutdown.clone()));
    (shutdown, handle, metrics)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_state_change_reported_once_per_reporter_and_not_again_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(&dir).await;
    let a = Recorder::new("a", Mode::Ok);
    let b = Recorder::new("b", Mode::Ok);
    let fin = Recorder::final_only("final");
    let (shutdown, handle, metrics) = start(&store, vec![a.clone(), b.clone(), fin.clone()], 2);

    store.create(job("j1"), None).await.expect("create");
    for (state, description) in [
        (ProwJobState::Triggered, ""),
        (ProwJobState::Pending, "Job running."),
        (ProwJobState::Success, "Job succeeded."),
    ] {
        if state != ProwJobState::Triggered {
            set_state(store.as_ref(), "j1", state, description).await;
        }
        wait_reported(store.as_ref(), "j1", "a", state).await;
        wait_reported(store.as_ref(), "j1", "b", state).await;
    }
    wait_reported(store.as_ref(), "j1", "final", ProwJobState::Success).await;

    let expected: Vec<(String, ProwJobState)> = [
        ProwJobState::Triggered,
        ProwJobState::Pending,
        ProwJobState::Success,
    ]
    .into_iter()
    .map(|s| ("j1".to_owned(), s))
    .collect();
    assert_eq!(a.seen(), expected);
    assert_eq!(b.seen(), expected);
    assert_eq!(fin.seen(), vec![("j1".to_owned(), ProwJobState::Success)]);

    // prev_report_states holds every reporter, and the job's own fields are intact.
    let stored = store.get("j1").await.expect("get").job;
    let status = stored.status.expect("status");
    assert_eq!(status.state, ProwJobState::Success);
    assert_eq!(status.description, "Job succeeded.");
    assert_eq!(status.prev_report_states.len(), 3);

    let rendered = metrics.render();
    assert!(
        rendered.contains("bosun_reporter_reports_sent_total{reporter=\"a\"} 3\n"),
        "{rendered}"
    );
    assert!(rendered.contains("bosun_reporter_reports_sent_total{reporter=\"final\"} 1\n"));

    shutdown.cancel();
    handle.await.expect("crier stops");

    // A job that changes while no crier runs is reported by the next one (nothing skipped)...
    store.create(job("j2"), None).await.expect("create");
    set_state(store.as_ref(), "j2", ProwJobState::Failure, "Job failed.").await;

    // ...and nothing already reported is repeated. One worker per reporter keeps the queue in
    // order: once the sentinel created after start-up is reported, the listing was processed.
    let a2 = Recorder::new("a", Mode::Ok);
    let fin2 = Recorder::final_only("final");
    let (shutdown, handle, _) = start(&store, vec![a2.clone(), fin2.clone()], 1);
    wait_reported(store.as_ref(), "j2", "a", ProwJobState::Failure).await;
    wait_reported(store.as_ref(), "j2", "final", ProwJobState::Failure).await;
    store.create(job("sentinel"), None).await.expect("create");
    wait_reported(store.as_ref(), "sentinel", "a", ProwJobState::Triggered).await;
    assert_eq!(
        a2.seen(),
        vec![
            ("j2".to_owned(), ProwJobState::Failure),
            ("sentinel".to_owned(), ProwJobState::Triggered)
        ]
    );
    assert_eq!(fin2.seen(), vec![("j2".to_owned(), ProwJobState::Failure)]);
    shutdown.cancel();
    handle.await.expect("crier stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_reporter_does_not_block_another() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(&dir).await;
    let broken = Recorder::new("broken", Mode::AlwaysFail);
    let good = Recorder::new("good", Mode::Ok);
    let (shutdown, handle, metrics) = start(&store, vec![broken.clone(), good.clone()], 1);

    for i in 0..5 {
        store
            .create(job(&format!("job-{i}")), None)
            .await
            .expect("create");
    }
    for i in 0..5 {
        wait_reported(
            store.as_ref(),
            &format!("job-{i}"),
            "good",
            ProwJobState::Triggered,
        )
        .await;
    }
    wait_until("the broken reporter to retry", || broken.attempts() > 5).await;
    assert_eq!(good.seen().len(), 5);
    assert!(broken.seen().is_empty());
    for i in 0..5 {
        assert_eq!(
            reported_state(store.as_ref(), &format!("job-{i}"), "broken").await,
            None
        );
    }
    let m = metrics.reporter("broken").expect("metrics");
    assert!(m.retried.load(std::sync::atomic::Ordering::Relaxed) > 0);
    assert!(m.failed.load(std::sync::atomic::Ordering::Relaxed) > 0);
    assert_eq!(m.sent.load(std::sync::atomic::Ordering::Relaxed), 0);
    shutdown.cancel();
    handle
        .await
        .expect("crier stops despite a reporter that keeps failing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(&dir).await;
    let after = Duration::from_millis(300);
    let flaky = Recorder::new("flaky", Mode::FailOnceRetryAfter(after));
    let (shutdown, handle, metrics) = start(&store, vec![flaky.clone()], 1);

    store.create(job("j"), None).await.expect("create");
    wait_reported(store.as_ref(), "j", "flaky", ProwJobState::Triggered).await;

    let attempts = flaky.attempts.lock().expect("lock").clone();
    assert_eq!(attempts.len(), 2, "one failure, one success");
    // The retry came no earlier than the sink asked (a lower bound only).
    assert!(attempts[1].2.duration_since(attempts[0].2) >= after);
    assert_eq!(flaky.seen().len(), 1);
    let m = metrics.reporter("flaky").expect("metrics");
    assert_eq!(m.retried.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(m.sent.load(std::sync::atomic::Ordering::Relaxed), 1);
    shutdown.cancel();
    handle.await.expect("crier stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_jobs_with_concurrent_writers_are_each_reported_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(&dir).await;
    let a = Recorder::new("a", Mode::Ok);
    let (shutdown, handle, _) = start(&store, vec![a.clone()], 4);
    for i in 0..20 {
        store
            .create(job(&format!("job-{i}")), None)
            .await
            .expect("create");
    }
    // Another writer edits the description concurrently with the crier's CAS writes.
    for i in 0..20 {
        set_state(
            store.as_ref(),
            &format!("job-{i}"),
            ProwJobState::Triggered,
            "edited",
        )
        .await;
    }
    for i in 0..20 {
        wait_reported(
            store.as_ref(),
            &format!("job-{i}"),
            "a",
            ProwJobState::Triggered,
        )
        .await;
    }
    let mut seen = a.seen();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 20);
    assert_eq!(a.seen().len(), 20, "no duplicates");
    for i in 0..20 {
        let job = store.get(&format!("job-{i}")).await.expect("get").job;
        assert_eq!(job.status.expect("status").description, "edited");
    }
    shutdown.cancel();
    handle.await.expect("crier stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(&dir).await;
    for i in 0..30 {
        store
            .create(job(&format!("job-{i}")), None)
            .await
            .expect("create");
    }
    let a = Recorder::new("a", Mode::Ok);
    let mut opts = options(1);
    opts.default.queue_capacity = 3;
    let crier = Crier::new(store.clone(), vec![a.clone() as Arc<dyn Reporter>], opts);
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(crier.run(shutdown.clone()));
    for i in 0..30 {
        wait_reported(
            store.as_ref(),
            &format!("job-{i}"),
            "a",
            ProwJobState::Triggered,
        )
        .await;
    }
    assert_eq!(a.seen().len(), 30, "each job once");
    shutdown.cancel();
    handle.await.expect("crier stops");
}

/// Reports like a [`Recorder`] in `Mode::Ok`, but each call first waits for a permit.
struct Gated {
    inner: Arc<Recorder>,
    permits: tokio::sync::Semaphore,
    waiting: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl Reporter for Gated {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn should_report(&self, job: &ProwJob) -> bool {
        self.inner.should_report(job)
    }

    async fn report(&self, job: &ProwJob) -> Result<(), ReportError> {
        self.waiting
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.permits.acquire().await.expect("open").forget();
        self.inner.report(job).await
    }
}

/// Reports only versions whose description is `edited`: once it reported, the crier's watch
/// delivered the edit to every lane listed before it.
struct EditProbe(Arc<Recorder>);

#[async_trait]
impl Reporter for EditProbe {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn should_report(&self, job: &ProwJob) -> bool {
        job.status
            .as_ref()
            .is_some_and(|s| s.description == "edited")
    }

    async fn report(&self, job: &ProwJob) -> Result<(), ReportError> {
        self.0.report(job).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_delivered_during_a_report_is_not_reported_again() {
    // Crier reports from the versions its watch delivers. A version that arrives while the
    // same state is being reported lacks the mark written afterwards; reporting from it would
    // send the same state twice.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(&dir).await;
    let a = Recorder::new("a", Mode::Ok);
    let gated = Arc::new(Gated {
        inner: a.clone(),
        permits: tokio::sync::Semaphore::new(0),
        waiting: std::sync::atomic::AtomicUsize::new(0),
    });
    let probe = Recorder::new("probe", Mode::Ok);
    let (shutdown, handle, _) = start(
        &store,
        vec![gated.clone(), Arc::new(EditProbe(probe.clone()))],
        1,
    );

    store.create(job("j"), None).await.expect("create");
    wait_until("the gated report to start", || {
        gated.waiting.load(std::sync::atomic::Ordering::SeqCst) == 1
    })
    .await;
    // Same state, new version, while "a" is held inside its report of `triggered`.
    set_state(store.as_ref(), "j", ProwJobState::Triggered, "edited").await;
    wait_until("the watch to deliver the edit", || probe.seen().len() == 1).await;
    gated.permits.add_permits(100);
    wait_reported(store.as_ref(), "j", "a", ProwJobState::Triggered).await;

    // One worker: the job's re-queue (made when its report ended) is processed before a job
    // created now.
    store.create(job("sentinel"), None).await.expect("create");
    wait_reported(store.as_ref(), "sentinel", "a", ProwJobState::Triggered).await;
    assert_eq!(
        a.seen(),
        vec![
            ("j".to_owned(), ProwJobState::Triggered),
            ("sentinel".to_owned(), ProwJobState::Triggered)
        ]
    );
    shutdown.cancel();
    handle.await.expect("crier stops");
}
