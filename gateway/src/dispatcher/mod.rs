//! The dispatcher: the job state machine and every limit.
//!
//! It follows the store's watch stream, keeps the incomplete jobs in memory, starts triggered
//! jobs on their agent when the limits allow (global `max_concurrency`, per-job
//! `max_concurrency`, job queues), aborts superseded presubmits, enforces the pending and
//! running timeouts, and writes every state transition (compare-and-swap on the store).
//! Agents and API calls go through it; nothing else writes job state.

mod runner;
mod schedule;
mod transitions;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bosun_agents::artifacts::Artifacts;
use bosun_agents::{AgentRegistry, LogStream};
use bosun_gateway_store::{JobStore, ListFilter, StoreError, StoredJob, WatchEventKind};
use bosun_proto::{ProwJob, ProwJobState};
use futures::StreamExt;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use crate::build_id::BuildIdVendor;
use crate::metrics::Metrics;
use crate::supervisor::Supervisor;

pub use transitions::TransitionError;
pub(crate) use transitions::now;

/// Limits and timeouts (Prow's `plank` block).
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// Global cap on running jobs; 0 = unlimited.
    pub max_concurrency: usize,
    /// Job queue name → capacity (0 = never runs, negative = unlimited).
    pub job_queue_capacities: BTreeMap<String, i64>,
    /// How long a started workload may take to start running.
    pub pod_pending_timeout: Duration,
    /// How long a workload may run.
    pub pod_running_timeout: Duration,
    /// Upper bound of the retry backoff for an unavailable backend.
    pub max_backoff: Duration,
    /// How long to wait for a workload to stop after an abort before giving up on it.
    pub abort_deadline: Duration,
    /// How often a workload that stopped unexpectedly is recreated (`plank.max_revivals`).
    pub max_revivals: i32,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            max_concurrency: 0,
            job_queue_capacities: BTreeMap::new(),
            pod_pending_timeout: Duration::from_secs(10 * 60),
            pod_running_timeout: Duration::from_secs(48 * 3600),
            max_backoff: Duration::from_secs(30),
            abort_deadline: Duration::from_secs(60),
            max_revivals: 3,
        }
    }
}

/// What the dispatcher knows about one incomplete job.
#[derive(Debug, Clone)]
struct Tracked {
    /// Shared so a scheduling pass can hold it while it changes the state.
    job: Arc<ProwJob>,
    revision: u64,
    /// Prow's supersede identity of a presubmit (see `schedule::identity`), computed once.
    identity: Option<String>,
}

/// A job whose runner task is active.
#[derive(Debug)]
struct Running {
    job_name: String,
    queue: String,
    cancel: CancellationToken,
}

#[derive(Default)]
struct SchedState {
    /// Incomplete jobs by ProwJob name.
    jobs: HashMap<String, Tracked>,
    /// Triggered jobs waiting to start, oldest first, with the generation they were queued
    /// at. An entry is live while `queued` holds the same generation for its name; stale
    /// entries (the job started, finished or was aborted meanwhile) are dropped by the next
    /// pass, so leaving the queue is O(1).
    queue: Vec<(String, u64)>,
    /// Names waiting in `queue` → their live generation.
    queued: HashMap<String, u64>,
    /// Generation counter for `queued`.
    generation: u64,
    /// `queue[..checked]` was examined since the last full pass: new arrivals cannot change
    /// the verdict of jobs already waiting (only a freed slot or new limits can), so a pass
    /// triggered by an arrival examines the tail only.
    checked: usize,
    /// Jobs with a runner.
    running: HashMap<String, Running>,
    /// Jobs whose runner ended but whose completion the watch has not shown yet; stale
    /// events for them must not start a second runner.
    finished: std::collections::HashSet<String>,
}

pub(crate) struct Inner {
    store: Arc<dyn JobStore>,
    agents: AgentRegistry,
    artifacts: Option<Artifacts>,
    /// Limits and timeouts, swapped as a whole on config reload.
    config: std::sync::RwLock<Arc<DispatcherConfig>>,
    /// Wakes the loop for a scheduling pass (limits changed).
    reschedule: tokio::sync::Notify,
    /// Finished jobs whose `prowjob.json` the writer task stores (see
    /// `transitions::prowjob_json_writer`).
    prowjob_json: mpsc::UnboundedSender<ProwJob>,
    build_ids: BuildIdVendor,
    supervisor: Supervisor,
    state: Mutex<SchedState>,
    runner_done: mpsc::UnboundedSender<String>,
    metrics: Metrics,
}

/// Handle to the dispatcher (cheap to clone).
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

/// Receiver half the dispatcher loop owns.
pub struct DispatcherLoop {
    inner: Arc<Inner>,
    runner_done: mpsc::UnboundedReceiver<String>,
}

impl Dispatcher {
    /// Builds a dispatcher; run the returned loop with [`DispatcherLoop::run`].
    pub fn new(
        store: Arc<dyn JobStore>,
        agents: AgentRegistry,
        artifacts: Option<Artifacts>,
        config: DispatcherConfig,
        supervisor: Supervisor,
        metrics: Metrics,
    ) -> (Self, DispatcherLoop) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (prowjob_json, prowjob_json_rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            store,
            agents,
            artifacts,
            config: std::sync::RwLock::new(Arc::new(config)),
            reschedule: tokio::sync::Notify::new(),
            prowjob_json,
            build_ids: BuildIdVendor::default(),
            supervisor,
            state: Mutex::new(SchedState::default()),
            runner_done: tx,
            metrics,
        });
        if let Some(artifacts) = inner.artifacts.clone() {
            let shutdown = inner.supervisor.shutdown_token();
            inner.supervisor.spawn(
                "prowjob-json-writer",
                transitions::prowjob_json_writer(artifacts, prowjob_json_rx, shutdown),
            );
        }
        (
            Self {
                inner: inner.clone(),
            },
            DispatcherLoop {
                inner,
                runner_done: rx,
            },
        )
    }

    /// Puts new limits and timeouts in force (config reload) and re-examines waiting jobs.
    pub fn set_config(&self, config: DispatcherConfig) {
        let mut current = self
            .inner
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *current = Arc::new(config);
        drop(current);
        self.inner.reschedule.notify_one();
    }

    /// The store behind the dispatcher.
    pub fn store(&self) -> &Arc<dyn JobStore> {
        &self.inner.store
    }

    /// Registered agent names.
    pub fn agent_names(&self) -> Vec<String> {
        self.inner.agents.names()
    }

    /// Requests an abort: the job is marked `aborted` (without a completion time); the
    /// dispatcher then stops its workload and completes it.
    pub async fn abort(&self, name: &str, reason: &str) -> Result<StoredJob, TransitionError> {
        let description = if reason.is_empty() {
            "Job aborted.".to_owned()
        } else {
            format!("Job aborted: {reason}")
        };
        transitions::request_abort(&self.inner, name, &description, false).await
    }

    /// The job's build log (live from the agent while it runs, from storage once done).
    pub async fn logs(&self, name: &str, follow: bool) -> Result<LogStream, TransitionError> {
        runner::logs(&self.inner, name, follow).await
    }
}

impl Inner {
    /// The limits and timeouts in force.
    pub(crate) fn cfg(&self) -> Arc<DispatcherConfig> {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl DispatcherLoop {
    /// Follows the store until shutdown. Resynchronises from a fresh listing whenever the
    /// watch stream breaks.
    pub async fn run(mut self) -> Result<(), StoreError> {
        let shutdown = self.inner.supervisor.shutdown_token();
        loop {
            let from = match self.resync().await {
                Ok(rev) => rev,
                Err(e) => {
                    tracing::warn!("dispatcher resync failed: {e}; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        // Retry delay after a failed resync (store unavailable), cut short by shutdown.
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            let mut events = self.inner.store.watch(from);
            schedule::schedule(&self.inner, true).await;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = self.inner.reschedule.notified() => {
                        schedule::schedule(&self.inner, true).await;
                    }
                    Some(name) = self.runner_done.recv() => {
                        let mut st = self.inner.state.lock().await;
                        if st.running.remove(&name).is_some() && st.jobs.contains_key(&name) {
                            st.finished.insert(name);
                        }
                        drop(st);
                        schedule::schedule(&self.inner, true).await;
                    }
                    event = events.next() => match event {
                        Some(Ok(event)) => {
                            let deleted = matches!(event.kind, WatchEventKind::Deleted);
                            self.observe(event.job, deleted).await;
                            schedule::schedule(&self.inner, false).await;
                        }
                        Some(Err(e)) => {
                            tracing::warn!("job watch broke: {e}; resynchronising");
                            break;
                        }
                        None => {
                            tracing::warn!("job watch ended; resynchronising");
                            break;
                        }
                    },
                }
            }
        }
    }

    /// Loads every incomplete job and re-attaches to running ones. Returns the revision to
    /// watch from.
    async fn resync(&mut self) -> Result<u64, StoreError> {
        let from = self.inner.store.current_revision().await?;
        let filter = ListFilter {
            incomplete_only: true,
            ..Default::default()
        };
        let mut token: Option<String> = None;
        loop {
            let page = self
                .inner
                .store
                .list(&filter, 1000, token.as_deref())
                .await?;
            for stored in page.jobs {
                self.observe(stored, false).await;
            }
            match page.next_page_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        Ok(from)
    }

    /// Folds one stored version of a job into the in-memory view and reacts to it.
    async fn observe(&self, stored: StoredJob, deleted: bool) {
        let inner = &self.inner;
        let name = stored.job.name().to_owned();
        if let Some(id) = stored.job.status.as_ref().map(|s| s.build_id.as_str()) {
            inner.build_ids.observe(id);
        }
        let mut st = inner.state.lock().await;
        if let Some(t) = st.jobs.get(&name)
            && t.revision >= stored.revision
        {
            return;
        }
        if deleted || stored.job.is_complete() {
            st.finished.remove(&name);
            st.jobs.remove(&name);
            st.queued.remove(&name);
            if let Some(r) = st.running.get(&name) {
                // Completed behind our back (another writer): stop following.
                r.cancel.cancel();
            }
            return;
        }
        let state = stored.job.state();
        if st.finished.contains(&name) {
            // Its runner already completed it; this is an older event still in flight.
            return;
        }
        let is_new = !st.jobs.contains_key(&name);
        let identity = schedule::identity(&stored.job);
        let job = Arc::new(stored.job);
        st.jobs.insert(
            name.clone(),
            Tracked {
                job: job.clone(),
                revision: stored.revision,
                identity,
            },
        );
        match state {
            ProwJobState::Scheduling | ProwJobState::Triggered => {
                if !st.running.contains_key(&name) && !st.queued.contains_key(&name) {
                    st.generation += 1;
                    let generation = st.generation;
                    st.queued.insert(name.clone(), generation);
                    st.queue.push((name.clone(), generation));
                }
                if is_new {
                    let superseded = schedule::superseded_by(&st, &job);
                    drop(st);
                    for old in superseded {
                        let inner = inner.clone();
                        inner.clone().supervisor.spawn(format!("supersede/{old}"), async move {
                            let desc = "Aborted as the newer version of this job is running.";
                            if let Err(e) = transitions::request_abort(&inner, &old, desc, true).await {
                                tracing::warn!(job = %old, "could not abort superseded job: {e}");
                            }
                        });
                    }
                }
            }
            ProwJobState::Pending => {
                if !st.running.contains_key(&name) {
                    // Running before a restart: re-attach.
                    st.queued.remove(&name);
                    schedule::launch(inner, &mut st, &job, runner::Phase::Reattach);
                }
            }
            ProwJobState::Aborted => {
                if let Some(r) = st.running.get(&name) {
                    r.cancel.cancel();
                } else {
                    st.queued.remove(&name);
                    schedule::launch(inner, &mut st, &job, runner::Phase::AbortQueued);
                }
            }
            _ => {
                // A final state without completion time: finish it.
                if !st.running.contains_key(&name) {
                    schedule::launch(inner, &mut st, &job, runner::Phase::AbortQueued);
                }
            }
        }
    }
}
