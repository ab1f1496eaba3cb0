//! Every job state write, as a compare-and-swap loop on the store.

use std::time::Duration;

use bosun_agents::Outcome;
use bosun_agents::artifacts::Artifacts;
use bosun_gateway_store::{StoreError, StoredJob};
use bosun_proto::{ProwJob, ProwJobState};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::Inner;

/// Why a transition was refused.
#[derive(Debug, thiserror::Error)]
pub enum TransitionError {
    /// No such job.
    #[error("job {0:?} not found")]
    NotFound(String),
    /// The job is already complete.
    #[error("job {name:?} already finished ({state})")]
    AlreadyComplete {
        /// Job name.
        name: String,
        /// Its final state.
        state: ProwJobState,
    },
    /// The job has no agent that can serve this request.
    #[error("{0}")]
    Unsupported(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Now, as a Kubernetes timestamp.
pub(crate) fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// Applies `mutate` to the latest version of `name` until the CAS succeeds. `mutate`
/// returns `Ok(false)` to make no change. Store outages are retried with backoff.
pub(crate) async fn modify<F>(
    inner: &Inner,
    name: &str,
    mutate: F,
) -> Result<Option<StoredJob>, TransitionError>
where
    F: FnMut(&mut ProwJob) -> Result<bool, TransitionError>,
{
    modify_from(inner, name, None, mutate).await
}

/// [`modify`] starting from `seen`, a version the caller already holds (its own last write):
/// when nothing changed since, that saves reading the job again; on a conflict the current
/// version is read as usual.
pub(crate) async fn modify_from<F>(
    inner: &Inner,
    name: &str,
    mut seen: Option<StoredJob>,
    mut mutate: F,
) -> Result<Option<StoredJob>, TransitionError>
where
    F: FnMut(&mut ProwJob) -> Result<bool, TransitionError>,
{
    let mut backoff = Duration::from_millis(50);
    loop {
        let read = match seen.take() {
            Some(s) => Ok(s),
            None => inner.store.get(name).await,
        };
        let current = match read {
            Ok(c) => c,
            Err(StoreError::NotFound { .. }) => return Err(TransitionError::NotFound(name.into())),
            Err(e) if is_transient(&e) => {
                tracing::warn!(job = %name, "store unavailable: {e}; retrying");
                // Backoff while the store is unavailable.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(inner.cfg().max_backoff);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let mut job = current.job.clone();
        if !mutate(&mut job)? {
            return Ok(None);
        }
        match inner.store.update(job, current.revision).await {
            Ok(stored) => return Ok(Some(stored)),
            Err(StoreError::Conflict { .. }) => continue,
            Err(StoreError::NotFound { .. }) => return Err(TransitionError::NotFound(name.into())),
            Err(e) if is_transient(&e) => {
                tracing::warn!(job = %name, "store unavailable: {e}; retrying");
                // Backoff while the store is unavailable.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(inner.cfg().max_backoff);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn is_transient(e: &StoreError) -> bool {
    !matches!(
        e,
        StoreError::NotFound { .. }
            | StoreError::Conflict { .. }
            | StoreError::AlreadyExists { .. }
            | StoreError::Invalid(_)
            | StoreError::Closed
    )
}

/// Marks a job `aborted` without completing it; the runner (or the dispatcher, for a queued
/// job) then stops the workload and completes it. `superseded` also records that GitHub
/// should not hear about it, as Prow does.
pub(crate) async fn request_abort(
    inner: &Inner,
    name: &str,
    description: &str,
    superseded: bool,
) -> Result<StoredJob, TransitionError> {
    let result = modify(inner, name, |job| {
        if job.is_complete() {
            return Err(TransitionError::AlreadyComplete {
                name: name.into(),
                state: job.state(),
            });
        }
        let status = job.status_mut();
        if status.state == ProwJobState::Aborted {
            return Ok(false);
        }
        status.state = ProwJobState::Aborted;
        status.description = description.to_owned();
        if superseded {
            status
                .prev_report_states
                .insert("github-reporter".into(), ProwJobState::Aborted);
        }
        Ok(true)
    })
    .await?;
    match result {
        Some(stored) => Ok(stored),
        None => Ok(inner.store.get(name).await?),
    }
}

/// Completes a job with an outcome. An abort requested earlier wins over the outcome: the
/// job stays `aborted`. Also stores `prowjob.json` beside the job's logs.
pub(crate) async fn finish(inner: &Inner, name: &str, outcome: &Outcome) {
    finish_from(inner, name, outcome, None).await;
}

/// [`finish`] starting from a version the caller holds (see [`modify_from`]).
pub(crate) async fn finish_from(
    inner: &Inner,
    name: &str,
    outcome: &Outcome,
    seen: Option<StoredJob>,
) {
    let result = modify_from(inner, name, seen, |job| {
        if job.is_complete() {
            return Ok(false);
        }
        let status = job.status_mut();
        if status.state != ProwJobState::Aborted {
            status.state = outcome.state;
            status.description = outcome.description.clone();
        } else if status.description.is_empty() {
            status.description = outcome.description.clone();
        }
        status.completion_time = Some(outcome.completed_at.clone().unwrap_or_else(now));
        Ok(true)
    })
    .await;
    match result {
        Ok(Some(stored)) => {
            inner.metrics.job_finished(stored.job.state());
            tracing::info!(job = %name, state = %stored.job.state(), "job finished");
            store_prowjob_json(inner, stored.job);
        }
        Ok(None) => {}
        Err(e) => tracing::error!(job = %name, "could not complete job: {e}"),
    }
}

/// How many `prowjob.json` files are written at once.
const PROWJOB_JSON_WRITES: usize = 16;

/// Queues `prowjob.json` next to the job's logs (crier's GCS reporter does this in Prow). The
/// file is written by a background task ([`prowjob_json_writer`]): creating a directory and a
/// file per job is kernel work that, done inline by every runner, competes with dispatching
/// the next jobs (it doubled dispatch p99 at 1,000 jobs/s). The job's state is already durable
/// in the store; the file follows within moments.
///
/// The queue is unbounded on purpose: nothing upstream can slow down for it (submissions do
/// not wait for earlier jobs' files), so a bound only moved the backlog into the runners that
/// waited to hand their job over, each holding its whole runner task instead of the job:
/// 30,000 finished jobs held 700 MB that way.
pub(crate) fn store_prowjob_json(inner: &Inner, job: ProwJob) {
    if inner.artifacts.is_none() || job.status.as_ref().is_none_or(|s| s.build_id.is_empty()) {
        return;
    }
    if let Err(unsent) = inner.prowjob_json.send(job) {
        tracing::debug!(job = %unsent.0.name(), "prowjob.json writer stopped; file not written");
    }
}

/// Writes queued `prowjob.json` files, [`PROWJOB_JSON_WRITES`] at a time, until shutdown,
/// then writes what is still queued.
pub(crate) async fn prowjob_json_writer(
    artifacts: Artifacts,
    mut queue: tokio::sync::mpsc::UnboundedReceiver<ProwJob>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut writes = futures::stream::FuturesUnordered::new();
    loop {
        tokio::select! {
            job = queue.recv(), if writes.len() < PROWJOB_JSON_WRITES => match job {
                Some(job) => {
                    let artifacts = artifacts.clone();
                    writes.push(async move { write_prowjob_json(&artifacts, &job).await });
                }
                None => break,
            },
            Some(()) = futures::StreamExt::next(&mut writes), if !writes.is_empty() => {}
            _ = shutdown.cancelled() => {
                queue.close();
                break;
            }
        }
    }
    // Finish what was started and what is still queued.
    while futures::StreamExt::next(&mut writes).await.is_some() {}
    while let Some(job) = queue.recv().await {
        write_prowjob_json(&artifacts, &job).await;
    }
}

async fn write_prowjob_json(artifacts: &Artifacts, job: &ProwJob) {
    let body = match serde_json::to_vec_pretty(job) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(job = %job.name(), "cannot serialise prowjob.json: {e}");
            return;
        }
    };
    if let Err(e) = artifacts.put(job, "prowjob.json", body.into()).await {
        tracing::warn!(job = %job.name(), "cannot store prowjob.json: {e}");
    }
}
