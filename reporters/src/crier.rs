//! The crier-style fan-out: watches the job store and hands every job state change to each
//! reporter exactly once.
//!
//! One [`Crier`] serves many reporters. Each reporter gets its own bounded, de-duplicating
//! queue of job names and its own pool of workers, rate limit and retry schedule, so a slow or
//! failing sink only delays itself. After a successful report the reported state is written to
//! `status.prev_report_states[reporter]` by compare-and-swap (re-reading the job on a conflict
//! and touching nothing else), so a restarted crier neither repeats nor skips a report.
//!
//! Workers report from the job version the watch delivered with the name instead of reading
//! the job again. A version older than the reporter's own last mark of that job lacks the mark
//! and would repeat the report, so such a version is never kept: the lane remembers the mark's
//! revision until the watch has delivered it.
//!
//! Jobs whose report keeps failing transiently are retried with capped exponential backoff and
//! jitter (at least the `retry_after` the sink asked for). A [`ReportError::Permanent`] failure
//! (the sink refused: bad credentials, unknown repository) is retried on the same schedule,
//! as Prow's crier retries every error: a fixed token or configuration then delivers what
//! was refused, and the failure counters show it meanwhile.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bosun_gateway_store::{JobStore, ListFilter, StoreError, StoredJob, WatchEventKind};
use bosun_proto::ProwJob;
use futures::StreamExt;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::marks::ReportMarks;
use crate::{ReportError, Reporter, job_state};

/// Per-reporter tuning of the fan-out.
#[derive(Debug, Clone)]
pub struct ReporterOptions {
    /// Concurrent reports (at least 1).
    pub workers: usize,
    /// Queued job names before the queue overflows; an overflow triggers a re-list of the store
    /// once the queue drains, so nothing is lost.
    pub queue_capacity: usize,
    /// Sustained reports per second (token bucket); `None` means unlimited.
    pub rate_per_second: Option<f64>,
    /// Token bucket size.
    pub burst: u32,
    /// First retry delay.
    pub backoff_base: Duration,
    /// Largest retry delay (a sink's `retry_after` may exceed it).
    pub backoff_max: Duration,
}

impl Default for ReporterOptions {
    fn default() -> Self {
        ReporterOptions {
            workers: 4,
            queue_capacity: 10_000,
            rate_per_second: Some(10.0),
            burst: 100,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(300),
        }
    }
}

/// Options of a [`Crier`].
#[derive(Debug, Clone, Default)]
pub struct CrierOptions {
    /// Options for every reporter without an entry in `per_reporter`.
    pub default: ReporterOptions,
    /// Options by reporter name.
    pub per_reporter: HashMap<String, ReporterOptions>,
}

impl CrierOptions {
    fn for_reporter(&self, name: &str) -> ReporterOptions {
        self.per_reporter
            .get(name)
            .cloned()
            .unwrap_or_else(|| self.default.clone())
    }
}

/// Counters of one reporter; plain atomics.
#[derive(Debug, Default)]
pub struct ReporterMetrics {
    /// Reports the sink accepted.
    pub sent: AtomicU64,
    /// Report attempts that failed (transient or permanent).
    pub failed: AtomicU64,
    /// Retries scheduled after a transient failure.
    pub retried: AtomicU64,
    /// Job names waiting in the queue.
    pub queue_depth: AtomicU64,
    /// Sum of report call durations, in microseconds.
    pub latency_micros_sum: AtomicU64,
    /// Number of report calls timed.
    pub latency_count: AtomicU64,
}

/// The metrics of every reporter of a [`Crier`]; cheap to clone, readable while it runs.
#[derive(Debug, Clone, Default)]
pub struct CrierMetrics {
    reporters: Arc<Vec<(String, Arc<ReporterMetrics>)>>,
}

impl CrierMetrics {
    /// The counters of the reporter named `name`.
    pub fn reporter(&self, name: &str) -> Option<&ReporterMetrics> {
        self.reporters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, m)| m.as_ref())
    }

    /// The counters in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let families: [Family; 6] = [
            (
                "bosun_reporter_reports_sent_total",
                "counter",
                "Reports the sink accepted.",
                |m| m.sent.load(Ordering::Relaxed).to_string(),
            ),
            (
                "bosun_reporter_reports_failed_total",
                "counter",
                "Report attempts that failed.",
                |m| m.failed.load(Ordering::Relaxed).to_string(),
            ),
            (
                "bosun_reporter_reports_retried_total",
                "counter",
                "Retries scheduled after a transient failure.",
                |m| m.retried.load(Ordering::Relaxed).to_string(),
            ),
            (
                "bosun_reporter_queue_depth",
                "gauge",
                "Jobs waiting to be reported.",
                |m| m.queue_depth.load(Ordering::Relaxed).to_string(),
            ),
            (
                "bosun_reporter_report_duration_seconds_sum",
                "counter",
                "Total time spent in report calls.",
                |m| {
                    let micros = m.latency_micros_sum.load(Ordering::Relaxed);
                    format!("{}", micros as f64 / 1e6)
                },
            ),
            (
                "bosun_reporter_report_duration_seconds_count",
                "counter",
                "Number of report calls timed.",
                |m| m.latency_count.load(Ordering::Relaxed).to_string(),
            ),
        ];
        for (name, kind, help, value) in families {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (reporter, metrics) in self.reporters.iter() {
                let _ = writeln!(
                    out,
                    "{name}{{reporter=\"{}\"}} {}",
                    escape_label(reporter),
                    value(metrics)
                );
            }
        }
        out
    }
}

/// A metric family: name, type, help, value of one reporter.
type Family = (
    &'static str,
    &'static str,
    &'static str,
    fn(&ReporterMetrics) -> String,
);

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The fan-out. Build with [`Crier::new`], keep [`Crier::metrics`], then [`Crier::run`].
pub struct Crier {
    store: Arc<dyn JobStore>,
    lanes: Vec<Arc<Lane>>,
    metrics: CrierMetrics,
}

impl Crier {
    /// A crier for `reporters` (names must be unique) over `store`.
    pub fn new(
        store: Arc<dyn JobStore>,
        reporters: Vec<Arc<dyn Reporter>>,
        options: CrierOptions,
    ) -> Self {
        let marks = Arc::new(ReportMarks::new(store.clone()));
        let lanes: Vec<Arc<Lane>> = reporters
            .into_iter()
            .map(|reporter| {
                let opts = options.for_reporter(reporter.name());
                Arc::new(Lane::new(reporter, opts, marks.clone()))
            })
            .collect();
        let metrics = CrierMetrics {
            reporters: Arc::new(
                lanes
                    .iter()
                    .map(|l| (l.name.clone(), l.metrics.clone()))
                    .collect(),
            ),
        };
        Crier {
            store,
            lanes,
            metrics,
        }
    }

    /// The per-reporter metrics; stays valid after `run` takes the crier.
    pub fn metrics(&self) -> CrierMetrics {
        self.metrics.clone()
    }

    /// Runs until `shutdown` is cancelled: lists the store, then follows its watch, and reports
    /// every state change through each reporter's workers. Returns once every task stopped; a
    /// report in flight is finished first.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tasks = JoinSet::new();
        for lane in &self.lanes {
            for worker in 0..lane.options.workers.max(1) {
                let lane = lane.clone();
                let store = self.store.clone();
                let shutdown = shutdown.clone();
                tasks.spawn(async move { lane.work(worker, store, shutdown).await });
            }
        }
        {
            let lanes = self.lanes.clone();
            let store = self.store.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move { dispatch(store, lanes, shutdown).await });
        }
        while let Some(result) = tasks.join_next().await {
            if let Err(e) = result
                && e.is_panic()
            {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    }
}

/// Whether `lane`'s reporter still has to report this version of the job.
fn needs_report(reporter: &dyn Reporter, job: &ProwJob) -> bool {
    let state = job_state(job);
    let already = job
        .status
        .as_ref()
        .and_then(|s| s.prev_report_states.get(reporter.name()))
        == Some(&state);
    !already && reporter.should_report(job)
}

/// Lists the store and follows its watch, enqueueing jobs that need a report.
async fn dispatch(store: Arc<dyn JobStore>, lanes: Vec<Arc<Lane>>, shutdown: CancellationToken) {
    let mut from: Option<u64> = None;
    loop {
        let revision = match from {
            Some(revision) => revision,
            None => {
                let listed = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = list_pending(store.as_ref(), &lanes, Listing::BeforeWatch) => r,
                };
                match listed {
                    Ok(revision) => revision,
                    Err(e) => {
                        warn!(error = %e, "crier: listing jobs failed, retrying");
                        if sleep_or_cancel(Duration::from_secs(1), &shutdown).await {
                            return;
                        }
                        continue;
                    }
                }
            }
        };
        let mut watch = store.watch(revision);
        let mut last = revision;
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => return,
                e = watch.next() => e,
            };
            match event {
                Some(Ok(event)) => {
                    last = event.job.revision;
                    let name = job_name(&event.job.job);
                    if event.kind == WatchEventKind::Deleted {
                        for lane in &lanes {
                            lane.forget(&name);
                        }
                        continue;
                    }
                    let version = Arc::new(event.job);
                    for lane in &lanes {
                        lane.observe(&name, version.revision);
                        if needs_report(lane.reporter.as_ref(), &version.job) {
                            lane.enqueue(name.clone(), Some(version.clone()));
                        }
                    }
                }
                Some(Err(StoreError::Compacted { .. })) => {
                    info!("crier: watch compacted, listing jobs again");
                    from = None;
                    break;
                }
                Some(Err(e)) => {
                    warn!(error = %e, "crier: watch failed, resuming");
                    from = Some(last);
                    if sleep_or_cancel(Duration::from_secs(1), &shutdown).await {
                        return;
                    }
                    break;
                }
                None => {
                    debug!("crier: watch ended, resuming");
                    from = Some(last);
                    if sleep_or_cancel(Duration::from_secs(1), &shutdown).await {
                        return;
                    }
                    break;
                }
            }
        }
    }
}

/// When a listing runs, which decides whether its versions may be reported from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Listing {
    /// Before the watch starts (or restarts): nothing newer was delivered yet.
    BeforeWatch,
    /// While the watch runs: a listed version can be older than a mark the lane wrote after
    /// the listing read it, and the watch may already be past that mark, so the worker reads
    /// the job again instead.
    BesideWatch,
}

/// Enqueues every stored job some reporter has not reported yet; returns the revision to
/// watch from.
async fn list_pending(
    store: &dyn JobStore,
    lanes: &[Arc<Lane>],
    listing: Listing,
) -> Result<u64, StoreError> {
    let filter = ListFilter::default();
    let mut token: Option<String> = None;
    let mut first_revision = None;
    loop {
        let page = store.list(&filter, 0, token.as_deref()).await?;
        first_revision.get_or_insert(page.revision);
        for stored in page.jobs {
            let version = Arc::new(stored);
            for lane in lanes {
                if needs_report(lane.reporter.as_ref(), &version.job) {
                    let kept = (listing == Listing::BeforeWatch).then(|| version.clone());
                    lane.enqueue(job_name(&version.job), kept);
                }
            }
        }
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    Ok(first_revision.unwrap_or(0))
}

fn job_name(job: &ProwJob) -> String {
    job.metadata.name.clone().unwrap_or_default()
}

/// Sleeps; true when cancelled first.
async fn sleep_or_cancel(duration: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => true,
        _ = tokio::time::sleep(duration) => false,
    }
}

#[derive(Default)]
struct QueueState {
    queue: VecDeque<String>,
    queued: HashSet<String>,
    processing: HashSet<String>,
    /// Enqueued while being processed: queued again when processing ends.
    dirty: HashSet<String>,
    /// Retry attempts so far, by job name.
    attempts: HashMap<String, u32>,
    /// The newest version the watch (or a listing) delivered for a queued or dirty job: the
    /// worker reports from it instead of reading the job again.
    versions: HashMap<String, Arc<StoredJob>>,
    /// The revision of this reporter's last mark, by job, until the watch delivers a version of
    /// the job at least that new: a version older than it lacks the mark and must not be
    /// reported from.
    marked: HashMap<String, u64>,
    /// The revision of the last event the watch delivered.
    watched: u64,
}

impl QueueState {
    /// Keeps `version` of job `name` to report from, unless the kept one is newer or it is
    /// older than this reporter's last mark of the job.
    fn keep(&mut self, name: &str, version: Arc<StoredJob>) {
        let before_mark = self
            .marked
            .get(name)
            .is_some_and(|marked| version.revision < *marked);
        let newer_kept = self
            .versions
            .get(name)
            .is_some_and(|kept| kept.revision >= version.revision);
        if !before_mark && !newer_kept {
            self.versions.insert(name.to_owned(), version);
        }
    }
}

/// One reporter's queue, workers, limits and counters.
struct Lane {
    name: String,
    reporter: Arc<dyn Reporter>,
    options: ReporterOptions,
    state: Mutex<QueueState>,
    notify: Notify,
    overflowed: AtomicBool,
    metrics: Arc<ReporterMetrics>,
    bucket: tokio::sync::Mutex<Bucket>,
    /// Shared by every lane: marks of one job are written together.
    marks: Arc<ReportMarks>,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Lane {
    fn new(reporter: Arc<dyn Reporter>, options: ReporterOptions, marks: Arc<ReportMarks>) -> Self {
        Lane {
            marks,
            name: reporter.name().to_owned(),
            reporter,
            bucket: tokio::sync::Mutex::new(Bucket {
                tokens: f64::from(options.burst.max(1)),
                last: Instant::now(),
            }),
            options,
            state: Mutex::new(QueueState::default()),
            notify: Notify::new(),
            overflowed: AtomicBool::new(false),
            metrics: Arc::new(ReporterMetrics::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        // A panic while holding this lock leaves plain collections behind; keep going.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `name` unless it is already queued, keeping `version` to report from when it is
    /// newer than the one kept and not older than this reporter's last mark; never blocks.
    fn enqueue(&self, name: String, version: Option<Arc<StoredJob>>) {
        if name.is_empty() {
            return;
        }
        let mut state = self.lock();
        let queued = state.queued.contains(&name);
        let processing = state.processing.contains(&name);
        if !queued && !processing && state.queue.len() >= self.options.queue_capacity.max(1) {
            self.overflowed.store(true, Ordering::Release);
            return;
        }
        if let Some(version) = version {
            state.keep(&name, version);
        }
        if queued {
            return;
        }
        if processing {
            state.dirty.insert(name);
            return;
        }
        state.queued.insert(name.clone());
        state.queue.push_back(name);
        self.metrics
            .queue_depth
            .store(state.queue.len() as u64, Ordering::Relaxed);
        drop(state);
        self.notify.notify_one();
    }

    /// The next job to report, with the version to report from when one is kept and is not
    /// older than this reporter's last mark of the job.
    fn pop(&self) -> Option<(String, Option<Arc<StoredJob>>)> {
        let mut state = self.lock();
        let name = state.queue.pop_front()?;
        state.queued.remove(&name);
        state.processing.insert(name.clone());
        self.metrics
            .queue_depth
            .store(state.queue.len() as u64, Ordering::Relaxed);
        let version = state.versions.remove(&name);
        Some((name, version))
    }

    /// Notes that the watch delivered revision `revision` of job `name`: every version it
    /// delivers from now on carries whatever this reporter marked up to that revision.
    fn observe(&self, name: &str, revision: u64) {
        let mut state = self.lock();
        state.watched = state.watched.max(revision);
        if state
            .marked
            .get(name)
            .is_some_and(|marked| *marked <= revision)
        {
            state.marked.remove(name);
        }
    }

    /// Notes that this reporter's mark of job `name` is durable at `revision`: no version
    /// older than that (it lacks the mark) is reported from.
    fn marked(&self, name: &str, revision: u64) {
        let mut state = self.lock();
        if state
            .versions
            .get(name)
            .is_some_and(|kept| kept.revision < revision)
        {
            state.versions.remove(name);
        }
        if state.watched < revision {
            // The watch has yet to deliver the mark's revision, and may deliver older versions
            // first: `enqueue` refuses to keep those, `observe` drops this entry.
            state.marked.insert(name.to_owned(), revision);
        }
    }

    /// Drops what is kept about a deleted job.
    fn forget(&self, name: &str) {
        let mut state = self.lock();
        state.versions.remove(name);
        state.marked.remove(name);
    }

    /// Ends processing of `name`; returns whether it changed meanwhile and must be queued again.
    fn done(&self, name: &str) -> bool {
        let mut state = self.lock();
        state.processing.remove(name);
        state.dirty.remove(name)
    }

    async fn work(
        self: Arc<Self>,
        worker: usize,
        store: Arc<dyn JobStore>,
        shutdown: CancellationToken,
    ) {
        loop {
            let Some((name, version)) = self.pop() else {
                if self.overflowed.swap(false, Ordering::AcqRel) {
                    // Names were dropped while the queue was full: find them again.
                    if let Err(e) = list_pending(
                        store.as_ref(),
                        std::slice::from_ref(&self),
                        Listing::BesideWatch,
                    )
                    .await
                    {
                        warn!(reporter = %self.name, error = %e, "crier: re-listing jobs failed");
                        self.overflowed.store(true, Ordering::Release);
                    }
                    continue;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = self.notify.notified() => continue,
                }
            };
            if shutdown.is_cancelled() {
                return;
            }
            let retry = self
                .process(&name, version, store.as_ref(), &shutdown)
                .await;
            let changed = self.done(&name);
            match retry {
                Some(delay) => {
                    let lane = self.clone();
                    let shutdown = shutdown.clone();
                    tokio::spawn(async move {
                        if !sleep_or_cancel(delay, &shutdown).await {
                            lane.enqueue(name, None);
                        }
                    });
                }
                None if changed => self.enqueue(name, None),
                None => {}
            }
            debug!(reporter = %self.name, worker, "crier: worker idle");
        }
    }

    /// Reports `version` of job `name` (read from the store when none was kept) if needed;
    /// returns the delay after which to retry, if the report failed transiently.
    async fn process(
        &self,
        name: &str,
        version: Option<Arc<StoredJob>>,
        store: &dyn JobStore,
        shutdown: &CancellationToken,
    ) -> Option<Duration> {
        let stored = match version {
            Some(version) => Arc::unwrap_or_clone(version),
            None => match store.get(name).await {
                Ok(stored) => stored,
                Err(StoreError::NotFound { .. }) => return None,
                Err(e) => {
                    warn!(reporter = %self.name, job_id = %name, error = %e, "crier: reading job failed");
                    return Some(self.next_backoff(name, None));
                }
            },
        };
        let job = &stored.job;
        if !needs_report(self.reporter.as_ref(), job) {
            self.lock().attempts.remove(name);
            return None;
        }
        let state = job_state(job);
        self.acquire_token(shutdown).await;
        if shutdown.is_cancelled() {
            return None;
        }
        let started = Instant::now();
        let result = self.reporter.report(job).await;
        let elapsed = started.elapsed();
        self.metrics
            .latency_micros_sum
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        self.metrics.latency_count.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(()) => {
                self.metrics.sent.fetch_add(1, Ordering::Relaxed);
                self.lock().attempts.remove(name);
                debug!(reporter = %self.name, job_id = %name, %state, "crier: reported");
                match self.marks.mark(name, &self.name, state, Some(stored)).await {
                    Ok(Some(revision)) => self.marked(name, revision),
                    Ok(None) => {}
                    Err(e) => {
                        // The report went out; it may be sent again later (reporters are
                        // idempotent).
                        warn!(reporter = %self.name, job_id = %name, error = %e, "crier: recording the reported state failed");
                        return Some(self.next_backoff(name, None));
                    }
                }
                None
            }
            Err(ReportError::Transient {
                message,
                retry_after,
            }) => {
                self.metrics.failed.fetch_add(1, Ordering::Relaxed);
                self.metrics.retried.fetch_add(1, Ordering::Relaxed);
                let delay = self.next_backoff(name, retry_after);
                warn!(reporter = %self.name, job_id = %name, %state, error = %message, retry_in = ?delay, "crier: report failed, will retry");
                Some(delay)
            }
            Err(ReportError::Permanent(message)) => {
                self.metrics.failed.fetch_add(1, Ordering::Relaxed);
                self.metrics.retried.fetch_add(1, Ordering::Relaxed);
                let delay = self.next_backoff(name, None);
                warn!(reporter = %self.name, job_id = %name, %state, error = %message, retry_in = ?delay, "crier: report refused, will retry");
                Some(delay)
            }
        }
    }

    /// The delay before the next attempt for `name`: the sink's `retry_after` when it gave one,
    /// else capped exponential backoff with jitter.
    fn next_backoff(&self, name: &str, retry_after: Option<Duration>) -> Duration {
        let attempt = {
            let mut state = self.lock();
            let attempt = state.attempts.entry(name.to_owned()).or_insert(0);
            let current = *attempt;
            *attempt = attempt.saturating_add(1);
            current
        };
        let delay = backoff(
            self.options.backoff_base,
            self.options.backoff_max,
            attempt,
            fastrand::f64(),
        );
        retry_after.unwrap_or(delay)
    }

    /// Waits for a token of the reporter's rate limit.
    async fn acquire_token(&self, shutdown: &CancellationToken) {
        let Some(rate) = self.options.rate_per_second.filter(|r| *r > 0.0) else {
            return;
        };
        let burst = f64::from(self.options.burst.max(1));
        loop {
            let wait = {
                let mut bucket = self.bucket.lock().await;
                let now = Instant::now();
                let elapsed = now.duration_since(bucket.last).as_secs_f64();
                bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
                bucket.last = now;
                if bucket.tokens >= 1.0 {
                    bucket.tokens -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - bucket.tokens) / rate)
            };
            if sleep_or_cancel(wait, shutdown).await {
                return;
            }
        }
    }
}

/// `base * 2^attempt`, capped at `max`, then scaled into `[0.5, 1.0]` of itself by `jitter`
/// (a number in `[0, 1)`).
pub fn backoff(base: Duration, max: Duration, attempt: u32, jitter: f64) -> Duration {
    let factor = 2u32.saturating_pow(attempt.min(30));
    let raw = base.saturating_mul(factor).min(max);
    raw.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_in_bounds() {
        let base = Duration::from_millis(10);
        let max = Duration::from_secs(1);
        for attempt in 0..64 {
            for jitter in [0.0, 0.3, 0.999] {
                let d = backoff(base, max, attempt, jitter);
                assert!(d <= max, "{d:?}");
                assert!(d >= base / 2, "{d:?}");
            }
        }
        assert_eq!(backoff(base, max, 0, 1.0), base);
        assert_eq!(backoff(base, max, 3, 1.0), base * 8);
        assert_eq!(backoff(base, max, 20, 1.0), max);
    }

    #[test]
    fn render_is_prometheus_text() {
        let m = Arc::new(ReporterMetrics::default());
        m.sent.store(3, Ordering::Relaxed);
        let metrics = CrierMetrics {
            reporters: Arc::new(vec![("slackreporter".to_owned(), m)]),
        };
        let text = metrics.render();
        assert!(text.contains("# TYPE bosun_reporter_reports_sent_total counter\n"));
        assert!(text.contains("bosun_reporter_reports_sent_total{reporter=\"slackreporter\"} 3\n"));
        assert!(text.contains("bosun_reporter_queue_depth{reporter=\"slackreporter\"} 0\n"));
    }
}
