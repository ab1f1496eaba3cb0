//! Periodic jobs, as Prow's horologium starts them (reference `prow-reporters-triggers.md` §5).
//!
//! Every sync looks at the newest run of each configured periodic and decides:
//! - `interval`: a new run once the newest one is complete and started more than `interval`
//!   ago;
//! - `minimum_interval`: a new run once the newest one completed more than
//!   `minimum_interval` ago;
//! - `cron`: a new run when the schedule fired since the previous sync and the newest run is
//!   complete. A fire while a run is still going is dropped, not deferred, and fires missed
//!   while the gateway was down are not replayed (the schedule starts at the first sync);
//!   `@every` schedules fire at the first sync, like Prow's pre-triggered entries;
//! - a periodic that never ran starts at once, unless it is `cron`;
//! - `retry: {attempts, interval, run_all}`: a finished run that did not succeed (or any
//!   finished run with `run_all`) is retried after `interval`, at most `attempts` times
//!   (capped at 10), each retry labelled `prow.k8s.io/re-run: <n>`. Unlike Prow, the retry
//!   interval is the retry's own and the periodic's interval is left alone (Prow's config
//!   validation overwrites one with the other).
//!
//! Runs of one periodic never overlap. The newest run per periodic is read from the store
//! once, then kept current from the store's watch (runs started by `bosun trigger` count too)
//! and by re-reading the newest run while it is incomplete.
//!
//! Time is passed in ([`Horologium::sync`] takes `now`), so the rules are tested on virtual
//! time; [`Horologium::run`] drives it with the wall clock, waking at the earliest moment a
//! periodic can be due (and at least every `horologium.tick_interval`, default 1m).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bosun_gateway_config::{LoadedConfig, Periodic, new_prowjob, periodic_spec};
use bosun_gateway_store::{JobStore, ListFilter, StoreError, WatchEventKind, WatchStream};
use bosun_proto::{ProwJob, ProwJobState, ProwJobType};
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use tokio_util::sync::CancellationToken;

use super::{ConfigHandle, JobCreator};

/// The label horologium puts on retries.
pub const RERUN_LABEL: &str = "prow.k8s.io/re-run";
/// How long a sync waits for the store's watch to deliver changes already committed.
const WATCH_CATCH_UP: Duration = Duration::from_secs(5);
/// `horologium.tick_interval` default.
const DEFAULT_TICK: Duration = Duration::from_secs(60);

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum HorologiumError {
    /// The store could not be read or written.
    #[error("job store: {0}")]
    Store(#[from] StoreError),
}

/// What one sync did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// Names of the periodics started, in config order.
    pub started: Vec<String>,
    /// Periodics that could not be started, with the reason.
    pub failed: Vec<(String, String)>,
}

/// The newest run of a periodic, as horologium sees it.
#[derive(Debug, Clone)]
struct LatestRun {
    name: String,
    start: Timestamp,
    completion: Option<Timestamp>,
    state: ProwJobState,
    rerun: i64,
}

impl LatestRun {
    fn of(job: &ProwJob) -> Option<Self> {
        let status = job.status.as_ref()?;
        let start = status.start_time.as_ref()?.0;
        Some(Self {
            name: job.name().to_owned(),
            start,
            completion: status.completion_time.as_ref().map(|t| t.0),
            state: status.state,
            rerun: job
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(RERUN_LABEL))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        })
    }
}

#[derive(Debug)]
struct CronEntry {
    spec: String,
    /// When the schedule fires next (`None`: never). Fires between two syncs collapse into
    /// one; the entry is created at the first sync that sees the periodic, so fires before
    /// that (downtime) are never replayed.
    next_fire: Option<Timestamp>,
}

#[derive(Default)]
struct State {
    scanned: bool,
    latest: HashMap<String, LatestRun>,
    cron: HashMap<String, CronEntry>,
    watch: Option<WatchStream>,
    /// The newest store revision the view reflects.
    seen_revision: u64,
}

/// Starts periodic jobs.
pub struct Horologium {
    store: Arc<dyn JobStore>,
    config: ConfigHandle,
    creator: JobCreator,
    state: tokio::sync::Mutex<State>,
}

impl Horologium {
    /// A horologium creating jobs with `creator`, from the periodics in `config`.
    pub fn new(creator: JobCreator, config: ConfigHandle) -> Self {
        Self {
            store: creator.store.clone(),
            config,
            creator,
            state: tokio::sync::Mutex::new(State::default()),
        }
    }

    /// One sync at time `now`: starts every periodic that is due.
    pub async fn sync(&self, now: Timestamp) -> Result<SyncReport, HorologiumError> {
        let Some(config) = self.config.current() else {
            return Ok(SyncReport::default());
        };
        let mut state = self.state.lock().await;
        self.refresh(&mut state).await?;
        sync_cron_entries(&mut state, config.periodics(), now);

        let mut report = SyncReport::default();
        for periodic in config.periodics() {
            let Some(rerun) = decide(&mut state, periodic, now) else {
                continue;
            };
            match self.start(&config, periodic, now, rerun).await {
                Ok(job) => {
                    if let Some(run) = LatestRun::of(&job) {
                        state.latest.insert(periodic.name.clone(), run);
                    }
                    report.started.push(periodic.name.clone());
                }
                Err(e) => {
                    tracing::warn!(job = %periodic.name, "could not start periodic: {e}");
                    report.failed.push((periodic.name.clone(), e.to_string()));
                }
            }
        }
        Ok(report)
    }

    /// How long until the next periodic can be due (at most `tick_interval`).
    pub async fn next_wake(&self, now: Timestamp) -> Duration {
        let Some(config) = self.config.current() else {
            return DEFAULT_TICK;
        };
        let tick = tick_interval(&config);
        let state = self.state.lock().await;
        let mut wake = tick;
        for p in config.periodics() {
            if let Some(due) = due_at(&state, p) {
                let wait = if due <= now {
                    Duration::ZERO
                } else {
                    Duration::try_from(due.duration_since(now)).unwrap_or(tick)
                };
                wake = wake.min(wait);
            }
        }
        wake
    }

    /// Runs until `shutdown`: syncs, then sleeps until the next periodic can be due, the
    /// configuration changes, or the tick interval passes.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut config_changes = self.config.subscribe();
        loop {
            let now = Timestamp::now();
            match self.sync(now).await {
                Ok(report) if !report.started.is_empty() => {
                    tracing::info!(started = ?report.started, "periodic jobs started");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("periodic sync failed: {e}"),
            }
            // Never spin: a due periodic that could not be started waits a little.
            let wait = self
                .next_wake(Timestamp::now())
                .await
                .max(Duration::from_millis(100));
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
                changed = config_changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
        }
    }

    async fn start(
        &self,
        config: &LoadedConfig,
        periodic: &Periodic,
        now: Timestamp,
        rerun: Option<i64>,
    ) -> Result<ProwJob, StoreError> {
        let mut labels = periodic.base.labels.clone();
        if let Some(n) = rerun {
            labels.insert(RERUN_LABEL.to_owned(), n.to_string());
        }
        let mut job = new_prowjob(
            periodic_spec(periodic),
            &labels,
            &periodic.base.annotations,
            config.prow().scheduler.enabled,
        );
        job.status_mut().start_time = Some(Time(now));
        let (stored, _) = self.creator.create_job(job, None).await?;
        Ok(stored.job)
    }

    /// Brings `state.latest` up to date: a full scan the first time (or after the watch lost
    /// its place), then the store's changes, then a re-read of every incomplete newest run.
    async fn refresh(&self, state: &mut State) -> Result<(), HorologiumError> {
        if state.scanned {
            // Catch up with every change committed before this sync (so a run started a moment
            // ago by someone else is seen), bounded in case the watch stalls.
            let target = self.store.current_revision().await?;
            let mut rescan = false;
            if let Some(watch) = state.watch.as_mut() {
                while state.seen_revision < target {
                    let event = match tokio::time::timeout(WATCH_CATCH_UP, watch.next()).await {
                        Ok(Some(event)) => event,
                        Ok(None) | Err(_) => {
                            rescan = true;
                            break;
                        }
                    };
                    match event {
                        Ok(e) => {
                            state.seen_revision = e.job.revision;
                            let job = &e.job.job;
                            if job.spec.r#type != ProwJobType::Periodic {
                                continue;
                            }
                            if e.kind == WatchEventKind::Deleted {
                                if state
                                    .latest
                                    .get(&job.spec.job)
                                    .is_some_and(|l| l.name == job.name())
                                {
                                    rescan = true;
                                }
                            } else {
                                note_run(&mut state.latest, job);
                            }
                        }
                        Err(e) => {
                            tracing::info!("periodic view re-reads the store: {e}");
                            rescan = true;
                            break;
                        }
                    }
                }
            }
            if rescan {
                state.scanned = false;
            }
        }
        if !state.scanned {
            let filter = ListFilter {
                job_type: Some(ProwJobType::Periodic),
                ..ListFilter::default()
            };
            let mut latest = HashMap::new();
            let mut token: Option<String> = None;
            let mut from_revision = None;
            loop {
                let page = self
                    .store
                    .list(
                        &filter,
                        bosun_gateway_store::MAX_PAGE_SIZE,
                        token.as_deref(),
                    )
                    .await?;
                from_revision.get_or_insert(page.revision);
                for stored in &page.jobs {
                    note_run(&mut latest, &stored.job);
                }
                match page.next_page_token {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
            state.latest = latest;
            let from = from_revision.unwrap_or(0);
            state.watch = Some(self.store.watch(from));
            state.seen_revision = from;
            state.scanned = true;
        }
        let incomplete: Vec<(String, String)> = state
            .latest
            .iter()
            .filter(|(_, run)| run.completion.is_none())
            .map(|(job, run)| (job.clone(), run.name.clone()))
            .collect();
        for (job, name) in incomplete {
            match self.store.get(&name).await {
                Ok(stored) => {
                    if let Some(run) = LatestRun::of(&stored.job) {
                        state.latest.insert(job, run);
                    }
                }
                Err(StoreError::NotFound { .. }) => {
                    // Deleted behind our back: the next sync rescans.
                    state.latest.remove(&job);
                    state.scanned = false;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// Records `job` as the newest run of its periodic if it started at least as late.
fn note_run(latest: &mut HashMap<String, LatestRun>, job: &ProwJob) {
    let Some(run) = LatestRun::of(job) else {
        return;
    };
    match latest.get(&job.spec.job) {
        Some(current) if current.name != run.name && current.start > run.start => {}
        _ => {
            latest.insert(job.spec.job.clone(), run);
        }
    }
}

fn tick_interval(config: &LoadedConfig) -> Duration {
    config
        .prow()
        .horologium
        .tick_interval
        .map(|d| d.get())
        .filter(|d| !d.is_zero())
        .unwrap_or(DEFAULT_TICK)
}

/// Adds schedules for new cron periodics (and changed cron strings), drops removed ones.
fn sync_cron_entries(state: &mut State, periodics: &[Periodic], now: Timestamp) {
    let mut keep = HashMap::new();
    for p in periodics {
        let Some(schedule) = p.cron_schedule() else {
            continue;
        };
        let entry = match state.cron.remove(&p.name) {
            Some(e) if e.spec == p.cron => e,
            _ => CronEntry {
                spec: p.cron.clone(),
                // `@every` entries start pre-triggered, as in Prow.
                next_fire: if schedule.is_every() {
                    Some(now)
                } else {
                    schedule.next_after(now)
                },
            },
        };
        keep.insert(p.name.clone(), entry);
    }
    state.cron = keep;
}

/// Whether `periodic` starts now: `None` for no, `Some(None)` for a regular run,
/// `Some(Some(n))` for retry number `n`.
fn decide(state: &mut State, periodic: &Periodic, now: Timestamp) -> Option<Option<i64>> {
    let latest = state.latest.get(&periodic.name);
    let should_trigger = match state.cron.get_mut(&periodic.name) {
        Some(entry) => {
            let fired = entry.next_fire.is_some_and(|t| t <= now);
            if fired {
                entry.next_fire = periodic.cron_schedule().and_then(|s| s.next_after(now));
            }
            // Not fired: no regular run, even for a cron periodic that never ran. A fire
            // while the newest run is still going is dropped.
            fired && latest.is_none_or(|l| l.completion.is_some())
        }
        None => match latest {
            None => true,
            Some(l) => match (l.completion, periodic.minimum_interval_duration()) {
                (Some(done), Some(min)) => elapsed(done, now) > min,
                (Some(_), None) => periodic
                    .interval_duration()
                    .is_some_and(|every| elapsed(l.start, now) > every),
                (None, _) => false,
            },
        },
    };
    if should_trigger {
        return Some(None);
    }
    retry_of(periodic, latest, now).map(Some)
}

/// The retry number to start, if `periodic`'s newest run should be retried now: it is
/// complete (runs never overlap, `run_all` included), did not succeed (or `run_all`), has
/// attempts left and started more than the retry interval ago.
fn retry_of(periodic: &Periodic, latest: Option<&LatestRun>, now: Timestamp) -> Option<i64> {
    let retry = periodic.retry.as_ref()?;
    let latest = latest?;
    latest.completion?;
    if !retry.run_all && latest.state == ProwJobState::Success {
        return None;
    }
    let attempt = latest.rerun + 1;
    if attempt > retry.effective_attempts() {
        return None;
    }
    let wait = periodic.retry_interval().unwrap_or(Duration::ZERO);
    (elapsed(latest.start, now) > wait).then_some(attempt)
}

/// The earliest instant `periodic` can be due, if horologium knows it.
fn due_at(state: &State, periodic: &Periodic) -> Option<Timestamp> {
    if let Some(entry) = state.cron.get(&periodic.name) {
        return entry.next_fire;
    }
    let Some(latest) = state.latest.get(&periodic.name) else {
        return Some(Timestamp::UNIX_EPOCH);
    };
    let done = latest.completion?;
    let just_after = |t: Timestamp, d: Duration| {
        SignedDuration::try_from(d)
            .ok()
            .and_then(|d| t.checked_add(d).ok())
            .and_then(|t| t.checked_add(SignedDuration::from_millis(1)).ok())
    };
    let mut due = match periodic.minimum_interval_duration() {
        Some(min) => just_after(done, min),
        None => periodic
            .interval_duration()
            .and_then(|every| just_after(latest.start, every)),
    };
    if let Some(retry) = &periodic.retry
        && (retry.run_all || latest.state != ProwJobState::Success)
        && latest.rerun < retry.effective_attempts()
    {
        let r = just_after(
            latest.start,
            periodic.retry_interval().unwrap_or(Duration::ZERO),
        );
        due = match (due, r) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    due
}

fn elapsed(since: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(now.duration_since(since)).unwrap_or(Duration::ZERO)
}
