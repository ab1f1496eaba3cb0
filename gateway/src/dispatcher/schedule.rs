//! Deciding which triggered jobs start now (Prow's `canExecuteConcurrently`), and which
//! presubmits a newer run supersedes (Prow's `TerminateOlderJobs`).

use std::sync::Arc;

use bosun_proto::{ProwJob, ProwJobType, Refs, prowjob::agents};
use tokio_util::sync::CancellationToken;

use super::runner::{self, Phase};
use super::transitions;
use super::{Inner, Running, SchedState};

/// The agent a job runs on: `spec.agent`, `kubernetes` when empty (Prow's default).
pub(crate) fn agent_of(job: &ProwJob) -> &str {
    if job.spec.agent.is_empty() {
        agents::KUBERNETES
    } else {
        &job.spec.agent
    }
}

enum Verdict {
    Start,
    Wait,
    Fail(String),
}

fn verdict(inner: &Inner, st: &SchedState, job: &ProwJob) -> Verdict {
    let agent_name = agent_of(job);
    let Some(agent) = inner.agents.get(agent_name) else {
        let known = inner.agents.names().join(", ");
        return Verdict::Fail(format!(
            "Terminal error: unknown agent {agent_name:?}; this gateway runs jobs for: {known}."
        ));
    };
    if let Err(e) = agent.check(job) {
        return Verdict::Fail(format!("Terminal error: {e}."));
    }
    let cfg = inner.cfg();
    if cfg.max_concurrency > 0 && st.running.len() >= cfg.max_concurrency {
        return Verdict::Wait;
    }
    if job.spec.max_concurrency > 0 {
        let same = st
            .running
            .values()
            .filter(|r| r.job_name == job.spec.job)
            .count();
        if same as i64 >= job.spec.max_concurrency {
            return Verdict::Wait;
        }
    }
    let queue = &job.spec.job_queue_name;
    if !queue.is_empty() {
        match cfg.job_queue_capacities.get(queue) {
            None => return Verdict::Wait,
            Some(&0) => return Verdict::Wait,
            Some(&cap) if cap > 0 => {
                let used = st.running.values().filter(|r| &r.queue == queue).count();
                if used as i64 >= cap {
                    return Verdict::Wait;
                }
            }
            Some(_) => {}
        }
    }
    Verdict::Start
}

/// One scheduling pass over the queue, oldest first: every waiting job when `full` (a slot
/// was freed, limits changed), else only the jobs queued since the last pass.
pub(crate) async fn schedule(inner: &Arc<Inner>, full: bool) {
    let mut st = inner.state.lock().await;
    let start = if full {
        0
    } else {
        st.checked.min(st.queue.len())
    };
    // The examined prefix stays as it is (stale entries in it go at the next full pass).
    let tail = st.queue.split_off(start);
    let mut keep = std::mem::take(&mut st.queue);
    for (name, generation) in tail {
        if st.queued.get(&name) != Some(&generation) {
            continue;
        }
        let Some(job) = st.jobs.get(&name).map(|t| t.job.clone()) else {
            st.queued.remove(&name);
            continue;
        };
        if st.running.contains_key(&name) {
            st.queued.remove(&name);
            continue;
        }
        match verdict(inner, &st, &job) {
            Verdict::Start => {
                st.queued.remove(&name);
                launch(inner, &mut st, &job, Phase::Start);
            }
            Verdict::Wait => keep.push((name, generation)),
            Verdict::Fail(description) => {
                st.queued.remove(&name);
                let inner2 = inner.clone();
                // Mark as running so it is not picked twice while the write is in flight.
                st.running.insert(
                    name.clone(),
                    Running {
                        job_name: String::new(),
                        queue: String::new(),
                        cancel: CancellationToken::new(),
                    },
                );
                inner.supervisor.spawn(format!("fail/{name}"), async move {
                    let outcome = bosun_agents::Outcome::error(description);
                    transitions::finish(&inner2, &name, &outcome).await;
                    let _ = inner2.runner_done.send(name);
                });
            }
        }
    }
    // Nothing can be queued while we hold the lock, so the kept entries are the whole queue.
    st.checked = keep.len();
    st.queue = keep;
    inner
        .metrics
        .set_queue_depth(st.queued.len(), st.running.len());
}

/// Starts a runner task for a job.
pub(crate) fn launch(inner: &Arc<Inner>, st: &mut SchedState, job: &ProwJob, phase: Phase) {
    let name = job.name().to_owned();
    let cancel = CancellationToken::new();
    st.running.insert(
        name.clone(),
        Running {
            job_name: job.spec.job.clone(),
            queue: job.spec.job_queue_name.clone(),
            cancel: cancel.clone(),
        },
    );
    let inner2 = inner.clone();
    inner.supervisor.spawn(
        format!("job/{name}"),
        runner::run(inner2, name, phase, cancel),
    );
}

fn refs_digest(r: &Refs) -> String {
    let mut pulls: Vec<i64> = r.pulls.iter().map(|p| p.number).collect();
    pulls.sort_unstable();
    format!("{}/{}@{} {:?}", r.org, r.repo, r.base_ref, pulls)
}

/// Prow's dedupe identity of a presubmit: type, job and a digest per ref (SHAs ignored).
pub(crate) fn identity(job: &ProwJob) -> Option<String> {
    if job.spec.r#type != ProwJobType::Presubmit {
        return None;
    }
    let mut parts = vec![job.spec.job.clone()];
    if let Some(r) = &job.spec.refs {
        parts.push(refs_digest(r));
    }
    parts.extend(job.spec.extra_refs.iter().map(refs_digest));
    Some(parts.join("|"))
}

fn start_key(job: &ProwJob) -> Option<String> {
    job.status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .and_then(|t| serde_json::to_string(t).ok())
}

/// Incomplete presubmits with the same identity as `newer` and an older start time.
pub(crate) fn superseded_by(st: &SchedState, newer: &ProwJob) -> Vec<String> {
    let Some(id) = identity(newer) else {
        return Vec::new();
    };
    let newer_start = start_key(newer);
    st.jobs
        .values()
        .filter(|t| t.identity.as_deref() == Some(id.as_str()))
        .filter(|t| t.job.name() != newer.name())
        .filter(|t| t.job.state() != bosun_proto::ProwJobState::Aborted)
        .filter(|t| start_key(&t.job) <= newer_start)
        .map(|t| t.job.name().to_owned())
        .collect()
}
