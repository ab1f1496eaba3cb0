//! One task per started job: start the workload, follow it, enforce timeouts, complete it.

use std::sync::Arc;
use std::time::Duration;

use bosun_agents::{Agent, AgentError, LogStream, Outcome, Progress};
use bosun_gateway_store::StoredJob;
use bosun_proto::{ProwJob, ProwJobState};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Inner;
use super::schedule::agent_of;
use super::transitions::{self, TransitionError, modify, modify_from, now};

/// Where a runner begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// A triggered job: vend a build id, start the workload, follow it.
    Start,
    /// A pending job found after a restart: find the workload again and follow it.
    Reattach,
    /// An aborted job that never started: just complete it.
    AbortQueued,
}

/// Runs one job to completion, then tells the dispatcher loop.
pub(crate) async fn run(inner: Arc<Inner>, name: String, phase: Phase, cancel: CancellationToken) {
    // Boxed: a spawned task stores its future inline, and every job has one of these tasks
    // while it is queued for the store or running. Inline, the phases' state machines (each
    // holding ProwJob values across awaits) made each task ~69 KB; boxed per phase, a task
    // holds only the phase it is in.
    Box::pin(drive(&inner, &name, phase, &cancel)).await;
    let _ = inner.runner_done.send(name);
}

async fn drive(inner: &Arc<Inner>, name: &str, phase: Phase, cancel: &CancellationToken) {
    if phase == Phase::AbortQueued {
        Box::pin(transitions::finish(
            inner,
            name,
            &Outcome::aborted("Job aborted."),
        ))
        .await;
        return;
    }
    let stored = match inner.store.get(name).await {
        Ok(s) if s.job.is_complete() => return,
        Ok(s) => s,
        Err(e) => {
            tracing::error!(job = %name, "cannot load job: {e}");
            return;
        }
    };
    let job = stored.job.clone();
    let Some(agent) = inner.agents.get(agent_of(&job)) else {
        let outcome = Outcome::error(format!(
            "Terminal error: unknown agent {:?}.",
            agent_of(&job)
        ));
        Box::pin(transitions::finish(inner, name, &outcome)).await;
        return;
    };
    // The runner's own last write is where its next write starts from (saves re-reading the
    // job when nobody else changed it meanwhile).
    let (job, seen) = match phase {
        Phase::Start => match Box::pin(start(inner, agent.as_ref(), stored, cancel)).await {
            Some(stored) => (stored.job.clone(), Some(stored)),
            None => return,
        },
        _ => (job, None),
    };
    let outcome = Box::pin(follow(inner, agent.as_ref(), job, cancel)).await;
    Box::pin(transitions::finish_from(inner, name, &outcome, seen)).await;
}

/// Vends the build id, creates the workload (retrying while the backend is unavailable) and
/// moves the job to pending. `None` when the job ended here (error or abort).
async fn start(
    inner: &Arc<Inner>,
    agent: &dyn Agent,
    stored: StoredJob,
    cancel: &CancellationToken,
) -> Option<StoredJob> {
    let name = stored.job.name().to_owned();
    // The build id is stored before the workload exists, so a restart in between reuses it.
    let stored = if stored
        .job
        .status
        .as_ref()
        .is_none_or(|s| s.build_id.is_empty())
    {
        let id = inner.build_ids.next();
        let res = modify_from(inner, &name, Some(stored), |j| {
            if j.is_complete() || j.state() == ProwJobState::Aborted {
                return Ok(false);
            }
            let status = j.status_mut();
            if status.build_id.is_empty() {
                status.build_id = id.clone();
            }
            if status.state == ProwJobState::Scheduling {
                status.state = ProwJobState::Triggered;
            }
            Ok(true)
        })
        .await;
        match res {
            Ok(Some(stored)) => stored,
            Ok(None) => {
                transitions::finish(inner, &name, &Outcome::aborted("Job aborted.")).await;
                return None;
            }
            Err(e) => {
                tracing::error!(job = %name, "cannot store build id: {e}");
                return None;
            }
        }
    } else {
        stored
    };
    let job = stored.job.clone();

    let mut backoff = Duration::from_millis(500);
    let mut last_description = String::new();
    let started = loop {
        if cancel.is_cancelled() {
            // Aborted before the workload existed; start may have half-run, so clean up.
            let _ = agent.abort(&job).await;
            transitions::finish(inner, &name, &Outcome::aborted("Job aborted.")).await;
            return None;
        }
        match agent.start(&job).await {
            Ok(s) => break s,
            Err(AgentError::InvalidJob(msg)) => {
                let outcome = Outcome::error(format!("Job can not be started: {msg}"));
                transitions::finish(inner, &name, &outcome).await;
                return None;
            }
            Err(e) => {
                let description = format!("Waiting for the {} backend: {e}", agent.name());
                tracing::warn!(job = %name, "start failed, retrying in {backoff:?}: {e}");
                if description != last_description {
                    set_description(inner, &name, &description).await;
                    last_description = description;
                }
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    // Backoff before retrying an unavailable backend; abort cuts it short.
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(inner.cfg().max_backoff);
            }
        }
    };

    let url = inner
        .artifacts
        .as_ref()
        .map(|a| a.url_for(&job))
        .unwrap_or_default();
    let res = modify_from(inner, &name, Some(stored), |j| {
        if j.is_complete() {
            return Ok(false);
        }
        let status = j.status_mut();
        if status.state != ProwJobState::Aborted {
            status.state = ProwJobState::Pending;
            status.description = started
                .description
                .clone()
                .unwrap_or_else(|| "Job triggered.".into());
        }
        status.pending_time = Some(now());
        status.pod_name = started.workload_name.clone();
        status.url = url.clone();
        Ok(true)
    })
    .await;
    match res {
        Ok(Some(stored)) => {
            inner.metrics.job_started();
            tracing::info!(job = %name, build_id = %stored.job.status.as_ref().map(|s| s.build_id.as_str()).unwrap_or(""), "job started");
            // prowjob.json is written once, when the job finishes (see `transitions::finish`):
            // a file per state change would double the file-system work of every job.
            Some(stored)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::error!(job = %name, "cannot mark job pending: {e}");
            let _ = agent.abort(&job).await;
            None
        }
    }
}

async fn set_description(inner: &Inner, name: &str, description: &str) {
    update_status(inner, name, "description", false, |status| {
        if status.description == description {
            return false;
        }
        status.description = description.to_owned();
        true
    })
    .await;
}

/// Records the backend's build number (`status.jenkins_build_id`).
async fn set_build_number(inner: &Inner, name: &str, number: &str) {
    update_status(inner, name, "build number", true, |status| {
        if status.jenkins_build_id == number {
            return false;
        }
        status.jenkins_build_id = number.to_owned();
        true
    })
    .await;
}

/// Changes a status field of an unfinished job (`also_aborted`: also of one being aborted);
/// `change` says whether it changed anything.
async fn update_status(
    inner: &Inner,
    name: &str,
    what: &str,
    also_aborted: bool,
    mut change: impl FnMut(&mut bosun_proto::ProwJobStatus) -> bool,
) {
    let res = modify(inner, name, |j| {
        if j.is_complete() || (!also_aborted && j.state() == ProwJobState::Aborted) {
            return Ok(false);
        }
        Ok(change(j.status_mut()))
    })
    .await;
    if let Err(e) = res {
        tracing::warn!(job = %name, "cannot update the {what}: {e}");
    }
}

fn job_timeouts(inner: &Inner, job: &ProwJob) -> (Duration, Duration) {
    let dc = job.spec.decoration_config.as_ref();
    let pending = dc
        .and_then(|d| d.pod_pending_timeout)
        .map(|d| d.get())
        .unwrap_or(inner.cfg().pod_pending_timeout);
    let running = dc
        .and_then(|d| d.pod_running_timeout)
        .map(|d| d.get())
        .unwrap_or(inner.cfg().pod_running_timeout);
    (pending, running)
}

/// Follows a started workload until it ends (or a timeout or abort ends it).
async fn follow(
    inner: &Arc<Inner>,
    agent: &dyn Agent,
    mut job: ProwJob,
    cancel: &CancellationToken,
) -> Outcome {
    let name = job.name().to_owned();
    let (pending_timeout, running_timeout) = job_timeouts(inner, &job);
    let mut running_since: Option<Instant> = None;
    let mut pending_deadline = Instant::now() + pending_timeout;
    let mut backoff = Duration::from_millis(500);
    let mut aborting: Option<Outcome> = None;
    let mut abort_deadline = Instant::now() + Duration::from_secs(365 * 24 * 3600);
    loop {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut wait = Box::pin(agent.wait(&job, tx));
        let result = 'waiting: loop {
            let deadline = match (aborting.is_some(), running_since) {
                (true, _) => abort_deadline,
                (false, None) => pending_deadline,
                (false, Some(t)) => t + running_timeout,
            };
            tokio::select! {
                res = &mut wait => break 'waiting res,
                Some(progress) = rx.recv() => match progress {
                    Progress::Running => {
                        if running_since.is_none() {
                            running_since = Some(Instant::now());
                        }
                    }
                    Progress::Description(d) => set_description(inner, &name, &d).await,
                    Progress::BuildNumber(n) => set_build_number(inner, &name, &n).await,
                },
                _ = cancel.cancelled(), if aborting.is_none() => {
                    aborting = Some(Outcome::aborted("Job aborted."));
                    abort_deadline = Instant::now() + inner.cfg().abort_deadline;
                    if let Err(e) = agent.abort(&job).await {
                        tracing::warn!(job = %name, "abort failed: {e}");
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    if let Some(outcome) = aborting.take() {
                        tracing::warn!(job = %name, "workload did not stop after abort; giving up on it");
                        return outcome;
                    }
                    let outcome = if running_since.is_none() {
                        Outcome::error("Pod pending timeout.")
                    } else {
                        Outcome::aborted("Pod running timeout.")
                    };
                    tracing::warn!(job = %name, "{}", outcome.description);
                    if let Err(e) = agent.abort(&job).await {
                        tracing::warn!(job = %name, "abort after timeout failed: {e}");
                    }
                    aborting = Some(outcome);
                    abort_deadline = Instant::now() + inner.cfg().abort_deadline;
                }
            }
        };
        drop(wait);
        // A build number sent just before `wait` returned must still be recorded.
        while let Ok(progress) = rx.try_recv() {
            if let Progress::BuildNumber(n) = progress {
                set_build_number(inner, &name, &n).await;
            }
        }
        match result {
            Ok(outcome) => return aborting.unwrap_or(outcome),
            Err(AgentError::NotFound(msg)) => {
                return aborting.unwrap_or_else(|| {
                    Outcome::error(format!("The job's workload disappeared: {msg}"))
                });
            }
            Err(AgentError::InvalidJob(msg)) => return aborting.unwrap_or(Outcome::error(msg)),
            Err(AgentError::WorkloadLost(cause)) => {
                if let Some(outcome) = aborting {
                    return outcome;
                }
                match revive(inner, agent, &job, &cause, cancel).await {
                    Ok(revived) => {
                        job = revived;
                        running_since = None;
                        pending_deadline = Instant::now() + pending_timeout;
                    }
                    Err(outcome) => return outcome,
                }
            }
            Err(e) => {
                tracing::warn!(job = %name, "lost track of the workload, re-attaching in {backoff:?}: {e}");
                // Backoff before re-attaching to a workload we lost track of.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(inner.cfg().max_backoff);
                if running_since.is_none() {
                    pending_deadline = pending_deadline.max(Instant::now());
                }
            }
        }
    }
}

/// Recreates a workload that stopped unexpectedly, with a fresh build id, as plank does up to
/// `plank.max_revivals`; past the limit the job ends in `error`.
async fn revive(
    inner: &Arc<Inner>,
    agent: &dyn Agent,
    job: &ProwJob,
    cause: &str,
    cancel: &CancellationToken,
) -> Result<ProwJob, Outcome> {
    let name = job.name().to_owned();
    let max = inner.cfg().max_revivals;
    let count = job
        .status
        .as_ref()
        .map(|s| s.pod_revival_count)
        .unwrap_or(0);
    if count >= max {
        return Err(Outcome::error(format!(
            "Job pod reached max revivals ({max}) after being stopped unexpectedly ({cause})"
        )));
    }
    let id = inner.build_ids.next();
    let revived = modify(inner, &name, |j| {
        if j.is_complete() {
            return Ok(false);
        }
        let status = j.status_mut();
        status.pod_revival_count += 1;
        status.build_id = id.clone();
        status.description =
            format!("Recreating the workload after it stopped unexpectedly ({cause}).");
        Ok(true)
    })
    .await;
    let job = match revived {
        Ok(Some(stored)) => stored.job,
        Ok(None) => return Err(Outcome::aborted("Job aborted.")),
        Err(e) => {
            return Err(Outcome::error(format!(
                "Could not recreate the workload: {e}"
            )));
        }
    };
    tracing::warn!(job = %name, %cause, "workload stopped unexpectedly; recreating it");
    let mut backoff = Duration::from_millis(500);
    loop {
        if cancel.is_cancelled() {
            return Err(Outcome::aborted("Job aborted."));
        }
        match agent.start(&job).await {
            Ok(_) => return Ok(job),
            Err(AgentError::InvalidJob(msg)) => {
                return Err(Outcome::error(format!("Job can not be started: {msg}")));
            }
            Err(e) => {
                tracing::warn!(job = %name, "recreating the workload failed, retrying in {backoff:?}: {e}");
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    // Backoff before retrying the recreation; abort cuts it short.
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(inner.cfg().max_backoff);
            }
        }
    }
}

/// The build log of a job: from the agent while it runs, from storage once it is done.
pub(crate) async fn logs(
    inner: &Arc<Inner>,
    name: &str,
    follow: bool,
) -> Result<LogStream, TransitionError> {
    let stored = inner.store.get(name).await.map_err(|e| match e {
        bosun_gateway_store::StoreError::NotFound { .. } => TransitionError::NotFound(name.into()),
        e => e.into(),
    })?;
    let mut job = stored.job;
    if follow && !job.is_complete() && job.state() != ProwJobState::Pending {
        // Not started yet: wait until it is.
        let mut events = inner.store.watch(stored.revision);
        while let Some(ev) = events.next().await {
            let Ok(ev) = ev else { break };
            if ev.job.job.name() != name {
                continue;
            }
            job = ev.job.job;
            if job.is_complete() || job.state() == ProwJobState::Pending {
                break;
            }
        }
    }
    if job.is_complete()
        && let Some(artifacts) = &inner.artifacts
        && let Ok(Some(bytes)) = artifacts.get(&job, "build-log.txt").await
    {
        return Ok(Box::pin(futures::stream::once(async move { Ok(bytes) })));
    }
    let agent = inner.agents.get(agent_of(&job)).ok_or_else(|| {
        TransitionError::Unsupported(format!("no agent {:?} for logs", agent_of(&job)))
    })?;
    agent
        .logs(&job, follow)
        .await
        .map_err(|e| TransitionError::Unsupported(format!("logs unavailable: {e}")))
}
