//! Garbage collection of finished jobs, as Prow's sinker does it (reference `prow-agents.md`
//! §5, `prow-prowjob-api.md` §3.10), from the `sinker:` block of config.yaml.
//!
//! Every `resync_period` (default 1h):
//! - a finished job whose workload ended more than `terminated_pod_ttl` ago (default
//!   `max_pod_age`, 24h), or that started more than `max_pod_age` ago, has its backend
//!   leftovers removed through its agent's `cleanup` (the pod, the PipelineRun, the container,
//!   the work directory), once: the job is then annotated `bosun.dev/cleaned-up`;
//! - a finished job that started more than `max_prowjob_age` ago (default 7d) is deleted from
//!   the store (after its leftovers), except the newest run of each periodic that is still
//!   configured, which horologium needs;
//! - a job that has not finished is never touched.
//!
//! Leftovers whose backend cannot be reached stay, and so does their job: the next pass tries
//! again. Logs and artifacts in storage are kept (as Prow keeps its bucket).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bosun_agents::{AgentError, AgentRegistry};
use bosun_gateway_store::{JobStore, ListFilter, StoreError};
use bosun_proto::{ProwJob, ProwJobType};
use k8s_openapi::jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use super::ConfigHandle;
use crate::metrics::Metrics;

/// The annotation marking a job whose backend leftovers were removed.
pub const CLEANED_ANNOTATION: &str = "bosun.dev/cleaned-up";

const DEFAULT_RESYNC: Duration = Duration::from_secs(60 * 60);
const DEFAULT_MAX_PROWJOB_AGE: Duration = Duration::from_secs(7 * 24 * 60 * 60);
const DEFAULT_MAX_POD_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SinkerReport {
    /// Jobs whose leftovers were removed (and which were kept).
    pub cleaned: Vec<String>,
    /// Jobs deleted from the store.
    pub deleted: Vec<String>,
    /// Jobs that could not be cleaned or deleted, with the reason.
    pub failed: Vec<(String, String)>,
}

/// The ages in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkerSettings {
    /// How often a pass runs.
    pub resync_period: Duration,
    /// Finished jobs older than this (by start) are deleted.
    pub max_prowjob_age: Duration,
    /// Leftovers of jobs started longer ago than this are removed.
    pub max_pod_age: Duration,
    /// Leftovers of jobs finished longer ago than this are removed.
    pub terminated_pod_ttl: Duration,
}

impl SinkerSettings {
    /// The settings of `config.yaml`'s `sinker:` block, with Prow's defaults.
    pub fn from_config(config: Option<&bosun_gateway_config::LoadedConfig>) -> Self {
        let sinker = config.map(|c| &c.prow().sinker);
        let get = |d: Option<Option<&bosun_proto::duration::MetaDuration>>, default| {
            d.flatten()
                .map(|d| d.get())
                .filter(|d| !d.is_zero())
                .unwrap_or(default)
        };
        let max_pod_age = get(sinker.map(|s| s.max_pod_age.as_ref()), DEFAULT_MAX_POD_AGE);
        Self {
            resync_period: get(sinker.map(|s| s.resync_period.as_ref()), DEFAULT_RESYNC),
            max_prowjob_age: get(
                sinker.map(|s| s.max_prowjob_age.as_ref()),
                DEFAULT_MAX_PROWJOB_AGE,
            ),
            max_pod_age,
            terminated_pod_ttl: get(sinker.map(|s| s.terminated_pod_ttl.as_ref()), max_pod_age),
        }
    }
}

/// Deletes old finished jobs and their leftovers.
pub struct Sinker {
    store: Arc<dyn JobStore>,
    agents: AgentRegistry,
    config: ConfigHandle,
    metrics: Metrics,
}

impl Sinker {
    /// A sinker over `store`, cleaning up through `agents`.
    pub fn new(
        store: Arc<dyn JobStore>,
        agents: AgentRegistry,
        config: ConfigHandle,
        metrics: Metrics,
    ) -> Self {
        Self {
            store,
            agents,
            config,
            metrics,
        }
    }

    /// One pass at time `now`.
    pub async fn sync(&self, now: Timestamp) -> Result<SinkerReport, StoreError> {
        let config = self.config.current();
        let settings = SinkerSettings::from_config(config.as_deref());
        let configured_periodics: BTreeSet<&str> = config
            .as_deref()
            .map(|c| c.periodics().iter().map(|p| p.name.as_str()).collect())
            .unwrap_or_default();

        // Every finished job, and the newest run of each periodic.
        let mut finished = Vec::new();
        let mut newest_periodic: HashMap<String, (Timestamp, String)> = HashMap::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .store
                .list(
                    &ListFilter::default(),
                    bosun_gateway_store::MAX_PAGE_SIZE,
                    token.as_deref(),
                )
                .await?;
            for stored in page.jobs {
                let job = &stored.job;
                let start = start_of(job);
                if job.spec.r#type == ProwJobType::Periodic {
                    let entry = newest_periodic
                        .entry(job.spec.job.clone())
                        .or_insert((start, job.name().to_owned()));
                    if start > entry.0 {
                        *entry = (start, job.name().to_owned());
                    }
                }
                if job.is_complete() {
                    finished.push(stored);
                }
            }
            match page.next_page_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        let keep: BTreeSet<String> = newest_periodic
            .into_iter()
            .filter(|(job, _)| configured_periodics.contains(job.as_str()))
            .map(|(_, (_, name))| name)
            .collect();

        let mut report = SinkerReport::default();
        for stored in finished {
            let job = &stored.job;
            let name = job.name().to_owned();
            let started = elapsed(start_of(job), now);
            let ended = job
                .status
                .as_ref()
                .and_then(|s| s.completion_time.as_ref())
                .map(|t| elapsed(t.0, now))
                .unwrap_or(Duration::ZERO);
            let cleaned = job
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(CLEANED_ANNOTATION));
            let aged = started > settings.max_prowjob_age && !keep.contains(&name);
            let leftovers_due =
                ended > settings.terminated_pod_ttl || started > settings.max_pod_age;
            if aged {
                if !cleaned && let Err(e) = self.cleanup(job).await {
                    report.failed.push((name, e.to_string()));
                    continue;
                }
                match self.store.delete(&name, Some(stored.revision)).await {
                    Ok(()) | Err(StoreError::NotFound { .. }) => {
                        let reason = if job.spec.r#type == ProwJobType::Periodic {
                            "aged-periodic"
                        } else {
                            "aged"
                        };
                        self.metrics
                            .inc("bosun_sinker_deleted_total", &[("reason", reason)]);
                        tracing::info!(job = %job.spec.job, name = %name, reason, "finished job deleted");
                        report.deleted.push(name);
                    }
                    // Changed meanwhile (a report was recorded): the next pass sees it again.
                    Err(StoreError::Conflict { .. }) => {}
                    Err(e) => report.failed.push((name, e.to_string())),
                }
            } else if leftovers_due && !cleaned {
                if let Err(e) = self.cleanup(job).await {
                    report.failed.push((name, e.to_string()));
                    continue;
                }
                let mut marked = job.clone();
                marked
                    .metadata
                    .annotations
                    .get_or_insert_with(Default::default)
                    .insert(CLEANED_ANNOTATION.to_owned(), "true".to_owned());
                match self.store.update(marked, stored.revision).await {
                    // A conflict only means the cleanup is repeated next pass (it is idempotent).
                    Ok(_) | Err(StoreError::Conflict { .. }) | Err(StoreError::NotFound { .. }) => {
                        report.cleaned.push(name);
                    }
                    Err(e) => report.failed.push((name, e.to_string())),
                }
            }
        }
        Ok(report)
    }

    async fn cleanup(&self, job: &ProwJob) -> Result<(), AgentError> {
        let agent_name = if job.spec.agent.is_empty() {
            bosun_proto::prowjob::agents::KUBERNETES
        } else {
            job.spec.agent.as_str()
        };
        let Some(agent) = self.agents.get(agent_name) else {
            // Nothing bosun can clean: the job itself can still go.
            return Ok(());
        };
        match agent.cleanup(job).await {
            Ok(()) | Err(AgentError::NotFound(_)) | Err(AgentError::InvalidJob(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Runs a pass every `resync_period` until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            match self.sync(Timestamp::now()).await {
                Ok(r) => {
                    if !r.cleaned.is_empty() || !r.deleted.is_empty() {
                        tracing::info!(
                            cleaned = r.cleaned.len(),
                            deleted = r.deleted.len(),
                            "sinker pass"
                        );
                    }
                    for (name, why) in &r.failed {
                        tracing::warn!(name = %name, "sinker could not clean up: {why}");
                    }
                }
                Err(e) => tracing::warn!("sinker pass failed: {e}"),
            }
            let period =
                SinkerSettings::from_config(self.config.current().as_deref()).resync_period;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(period) => {}
            }
        }
    }
}

fn start_of(job: &ProwJob) -> Timestamp {
    job.status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map(|t| t.0)
        .or_else(|| job.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

fn elapsed(since: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(now.duration_since(since)).unwrap_or(Duration::ZERO)
}
