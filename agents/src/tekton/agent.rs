//! The `tekton-pipeline` agent: a PipelineRun per job on the job's build cluster, followed with
//! a kube-runtime watcher (reference prow-agents §3, with the issue's amendments).

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use bosun_proto::{ProwJob, labels};
use bytes::Bytes;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};

use super::pipelinerun::{PipelineRunError, prowjob_to_pipelinerun};
use super::types::{
    LABEL_PIPELINE_RUN, LABEL_PIPELINE_TASK, PipelineRun, REASON_CANCELLED, SPEC_STATUS_CANCELLED,
    TaskRun, succeeded_condition,
};
use crate::agent::{Agent, AgentError, LogStream, Outcome, Progress, ProgressSender, Started};
use crate::artifacts::Artifacts;
use crate::kubernetes::{BuildClusters, JobWatch, Watched, classify, is_not_found, pod_log_stream};

/// How often a followed log looks for the next TaskRun or step (logs only; job state is
/// followed with a watch).
const LOG_DISCOVERY_INTERVAL: Duration = Duration::from_millis(300);

/// How the tekton-pipeline agent behaves.
#[derive(Debug, Clone)]
pub struct TektonAgentConfig {
    /// Namespace for PipelineRuns when the job names none (`pod_namespace`).
    pub pod_namespace: String,
    /// Where the build log, `started.json` and `finished.json` go when a run ends.
    pub artifacts: Option<Artifacts>,
}

impl Default for TektonAgentConfig {
    fn default() -> Self {
        Self {
            pod_namespace: "default".into(),
            artifacts: None,
        }
    }
}

/// Runs jobs as Tekton PipelineRuns (agent name `tekton-pipeline`).
#[derive(Clone)]
pub struct TektonAgent {
    clusters: BuildClusters,
    config: TektonAgentConfig,
}

/// What one look at the PipelineRun says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunVerdict {
    /// Not finished; `started` once `status.startTime` is set; `message` is the condition's.
    Running {
        /// Whether the run has started.
        started: bool,
        /// The `Succeeded` condition's message or reason, if any.
        message: Option<String>,
    },
    /// Finished.
    Done(Outcome),
}

/// The `Succeeded` condition mapped to a job outcome: True → success (message, else reason,
/// else "succeeded"), False → failure ("reason: message"; a `Cancelled` run → aborted),
/// Unknown or absent → running. The run's `completionTime` becomes the outcome's time.
pub fn judge(run: &PipelineRun) -> RunVerdict {
    let status = run.status.clone().unwrap_or_default();
    let condition = succeeded_condition(&status.conditions);
    let text = |c: &super::types::Condition| {
        c.message
            .clone()
            .filter(|m| !m.is_empty())
            .or_else(|| c.reason.clone().filter(|r| !r.is_empty()))
    };
    let done = |o: Outcome| RunVerdict::Done(o.ended_at(status.completion_time.clone()));
    match condition.map(|c| c.status.as_str()) {
        Some("True") => {
            let description = condition
                .and_then(text)
                .unwrap_or_else(|| "succeeded".into());
            done(Outcome::new(
                bosun_proto::ProwJobState::Success,
                description,
            ))
        }
        Some("False") => {
            let reason = condition.and_then(|c| c.reason.clone()).unwrap_or_default();
            let message = condition
                .and_then(|c| c.message.clone())
                .unwrap_or_default();
            if reason == REASON_CANCELLED {
                return done(Outcome::aborted(if message.is_empty() {
                    "PipelineRun cancelled.".to_owned()
                } else {
                    format!("{reason}: {message}")
                }));
            }
            let description = match (reason.is_empty(), message.is_empty()) {
                (false, false) => format!("{reason}: {message}"),
                (false, true) => reason,
                (true, false) => message,
                (true, true) => "failed".into(),
            };
            done(Outcome::new(
                bosun_proto::ProwJobState::Failure,
                description,
            ))
        }
        _ => RunVerdict::Running {
            started: status.start_time.is_some(),
            message: condition.and_then(text),
        },
    }
}

fn invalid(e: PipelineRunError) -> AgentError {
    AgentError::InvalidJob(format!("PipelineRun can not be created: {e}"))
}

/// `label=value` of a label on a kube object's metadata.
fn label<'a>(meta: &'a kube::api::ObjectMeta, key: &str) -> &'a str {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
        .unwrap_or("")
}

/// One step container to stream: (pod, container, header).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct StepLog {
    pod: String,
    container: String,
    header: String,
}

impl TektonAgent {
    /// An agent over the given build clusters (the kubernetes agent's, same kubeconfigs).
    pub fn new(clusters: BuildClusters, config: TektonAgentConfig) -> Self {
        Self { clusters, config }
    }

    fn namespace<'a>(&'a self, job: &'a ProwJob) -> &'a str {
        if job.spec.namespace.is_empty() {
            &self.config.pod_namespace
        } else {
            &job.spec.namespace
        }
    }

    fn client(&self, job: &ProwJob) -> Result<kube::Client, AgentError> {
        self.clusters.client_for_job(job).cloned()
    }

    fn runs(&self, job: &ProwJob) -> Result<Api<PipelineRun>, AgentError> {
        Ok(Api::namespaced(self.client(job)?, self.namespace(job)))
    }

    /// The step containers of the run's TaskRuns, in the order they started.
    async fn step_logs(&self, job: &ProwJob) -> Result<Vec<StepLog>, AgentError> {
        let client = self.client(job)?;
        let task_runs: Api<TaskRun> = Api::namespaced(client.clone(), self.namespace(job));
        let pods: Api<Pod> = Api::namespaced(client, self.namespace(job));
        let selector = format!("{LABEL_PIPELINE_RUN}={}", job.name());
        let mut list = task_runs
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| classify(e, "listing the TaskRuns"))?
            .items;
        list.sort_by_key(|tr| {
            let started = tr
                .status
                .as_ref()
                .and_then(|s| s.start_time.clone())
                .or_else(|| tr.metadata.creation_timestamp.clone())
                .map(|t| t.0);
            (started, tr.metadata.name.clone())
        });
        let mut steps = Vec::new();
        for tr in list {
            let Some(pod_name) = tr.status.as_ref().and_then(|s| s.pod_name.clone()) else {
                continue;
            };
            let task = match label(&tr.metadata, LABEL_PIPELINE_TASK) {
                "" => tr.metadata.name.clone().unwrap_or_default(),
                t => t.to_owned(),
            };
            let mut containers: Vec<(String, String)> = tr
                .status
                .as_ref()
                .map(|s| {
                    s.steps
                        .iter()
                        .filter(|st| !st.container.is_empty())
                        .map(|st| (st.container.clone(), st.name.clone()))
                        .collect()
                })
                .unwrap_or_default();
            if containers.is_empty() {
                // No step states yet: the pod's step containers, in order.
                match pods.get_opt(&pod_name).await {
                    Ok(Some(pod)) => {
                        containers = pod
                            .spec
                            .iter()
                            .flat_map(|s| s.containers.iter())
                            .filter_map(|c| {
                                c.name
                                    .strip_prefix("step-")
                                    .map(|step| (c.name.clone(), step.to_owned()))
                            })
                            .collect();
                    }
                    Ok(None) => {}
                    Err(e) => return Err(classify(e, "reading a TaskRun's pod")),
                }
            }
            for (container, step) in containers {
                steps.push(StepLog {
                    pod: pod_name.clone(),
                    container,
                    header: format!("==> {task} / {step} <==\n"),
                });
            }
        }
        Ok(steps)
    }

    /// Every step's log so far, one after the other, each under a header.
    async fn collected_logs(&self, job: &ProwJob) -> Result<Bytes, AgentError> {
        let pods: Api<Pod> = Api::namespaced(self.client(job)?, self.namespace(job));
        let mut out = Vec::new();
        for step in self.step_logs(job).await? {
            let params = LogParams {
                container: Some(step.container.clone()),
                ..Default::default()
            };
            match pods.logs(&step.pod, &params).await {
                Ok(text) => {
                    out.extend_from_slice(step.header.as_bytes());
                    out.extend_from_slice(text.as_bytes());
                    if !text.is_empty() && !text.ends_with('\n') {
                        out.push(b'\n');
                    }
                }
                // Not started, or the pod is gone: nothing to show for this step.
                Err(kube::Error::Api(s)) if s.code == 400 || s.code == 404 => {}
                Err(e) => return Err(classify(e, "reading a step log")),
            }
        }
        Ok(Bytes::from(out))
    }

    async fn upload(&self, job: &ProwJob, run: &PipelineRun, outcome: &Outcome) {
        let Some(artifacts) = &self.config.artifacts else {
            return;
        };
        let log = match self.collected_logs(job).await {
            Ok(log) => log,
            Err(e) => {
                tracing::warn!(job = %job.name(), "cannot collect the PipelineRun's logs: {e}");
                Bytes::new()
            }
        };
        let seconds = |t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
            t.map(|t| t.0.as_second())
                .unwrap_or_else(crate::podutils::util::unix_now)
        };
        let status = run.status.as_ref();
        let started = seconds(status.and_then(|s| s.start_time.as_ref()));
        let finished = seconds(status.and_then(|s| s.completion_time.as_ref()));
        if let Err(e) = artifacts
            .put_remote_run(job, log, outcome, started, finished)
            .await
        {
            tracing::warn!(job = %job.name(), "cannot store the PipelineRun's logs: {e}");
        }
    }

    /// Whether the run has ended (or is gone).
    async fn run_finished(&self, job: &ProwJob) -> Result<bool, AgentError> {
        match self.runs(job)?.get_opt(job.name()).await {
            Ok(Some(run)) => Ok(matches!(judge(&run), RunVerdict::Done(_))),
            Ok(None) => Ok(true),
            Err(e) => Err(classify(e, "reading the PipelineRun")),
        }
    }
}

/// A followed log: the steps in order, each followed to its end, until the run ends and no
/// step is left.
struct Follow {
    ctx: std::sync::Arc<FollowCtx>,
    done: BTreeSet<(String, String)>,
    current: Option<LogStream>,
    finished: bool,
}

struct FollowCtx {
    agent: TektonAgent,
    job: ProwJob,
    pods: Api<Pod>,
}

impl Follow {
    async fn next(mut self) -> Option<(Result<Bytes, AgentError>, Self)> {
        loop {
            if self.finished {
                return None;
            }
            if let Some(stream) = self.current.as_mut() {
                match stream.next().await {
                    Some(item) => return Some((item, self)),
                    None => {
                        self.current = None;
                        continue;
                    }
                }
            }
            // Whether the run had ended before looking for steps: then a pass that finds no
            // new step is the last.
            let ended = match self.ctx.agent.run_finished(&self.ctx.job).await {
                Ok(ended) => ended,
                Err(e) => {
                    self.finished = true;
                    return Some((Err(e), self));
                }
            };
            let steps = match self.ctx.agent.step_logs(&self.ctx.job).await {
                Ok(steps) => steps,
                Err(e) => {
                    self.finished = true;
                    return Some((Err(e), self));
                }
            };
            let mut waiting = false;
            for step in steps {
                let key = (step.pod.clone(), step.container.clone());
                if self.done.contains(&key) {
                    continue;
                }
                match pod_log_stream(
                    &self.ctx.pods,
                    &step.pod,
                    Some(step.container.clone()),
                    !ended,
                )
                .await
                {
                    Ok(stream) => {
                        self.done.insert(key);
                        let header = futures::stream::once(futures::future::ready(Ok(
                            Bytes::from(step.header.clone()),
                        )));
                        self.current = Some(Box::pin(header.chain(stream)));
                        break;
                    }
                    // The container has not started yet: try again shortly (steps run in order).
                    Err(AgentError::InvalidJob(_)) if !ended => {
                        waiting = true;
                        break;
                    }
                    Err(AgentError::InvalidJob(_)) => {
                        self.done.insert(key);
                    }
                    Err(e) => {
                        self.finished = true;
                        return Some((Err(e), self));
                    }
                }
            }
            if self.current.is_some() {
                continue;
            }
            if ended && !waiting {
                return None;
            }
            // Poll interval for discovering the next TaskRun or step of a followed log.
            tokio::time::sleep(LOG_DISCOVERY_INTERVAL).await;
        }
    }
}

#[async_trait]
impl Agent for TektonAgent {
    fn name(&self) -> &str {
        bosun_proto::prowjob::agents::TEKTON_PIPELINE
    }

    fn check(&self, job: &ProwJob) -> Result<(), AgentError> {
        self.clusters.client_for_job(job)?;
        prowjob_to_pipelinerun(job, &self.config.pod_namespace).map_err(invalid)?;
        Ok(())
    }

    async fn start(&self, job: &ProwJob) -> Result<Started, AgentError> {
        let runs = self.runs(job)?;
        let run = prowjob_to_pipelinerun(job, &self.config.pod_namespace).map_err(invalid)?;
        let name = job.name().to_owned();
        let started = Started {
            workload_name: name.clone(),
            description: None,
        };
        match runs.create(&PostParams::default(), &run).await {
            Ok(_) => Ok(started),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                // Already there: ours from an earlier attempt (idempotent), or someone else's.
                let existing = runs
                    .get(&name)
                    .await
                    .map_err(|e| classify(e, "reading the existing PipelineRun"))?;
                if label(&existing.metadata, labels::ID) == name {
                    Ok(started)
                } else {
                    Err(AgentError::InvalidJob(format!(
                        "PipelineRun can not be created: a PipelineRun named {name} that is not this job's exists in namespace {}",
                        self.namespace(job)
                    )))
                }
            }
            Err(e) => Err(classify(e, "PipelineRun can not be created")),
        }
    }

    async fn wait(&self, job: &ProwJob, progress: ProgressSender) -> Result<Outcome, AgentError> {
        let name = job.name().to_owned();
        let mut watch = JobWatch::new(self.runs(job)?, &name);
        let mut running_sent = false;
        let mut last_message: Option<String> = None;
        loop {
            let run = match watch.next().await {
                Some(Watched::Applied(run)) => run,
                Some(Watched::Missing) => {
                    return Err(AgentError::NotFound(format!(
                        "PipelineRun {name} not found in namespace {}",
                        self.namespace(job)
                    )));
                }
                Some(Watched::Deleted(run)) => {
                    if let RunVerdict::Done(outcome) = judge(&run) {
                        return Ok(outcome);
                    }
                    return Err(AgentError::NotFound(format!(
                        "PipelineRun {name} was deleted"
                    )));
                }
                Some(Watched::Unreachable(e)) => {
                    let _ = progress.send(Progress::Description(format!(
                        "Build cluster {:?} unreachable, retrying: {e}",
                        job.spec.cluster_alias()
                    )));
                    continue;
                }
                None => return Err(AgentError::Unavailable("PipelineRun watch ended".into())),
            };
            match judge(&run) {
                RunVerdict::Done(outcome) => {
                    self.upload(job, &run, &outcome).await;
                    return Ok(outcome);
                }
                RunVerdict::Running { started, message } => {
                    if started && !running_sent {
                        running_sent = true;
                        let _ = progress.send(Progress::Running);
                    }
                    if message.is_some() && message != last_message {
                        if let Some(m) = &message {
                            let _ = progress.send(Progress::Description(m.clone()));
                        }
                        last_message = message;
                    }
                }
            }
        }
    }

    async fn abort(&self, job: &ProwJob) -> Result<(), AgentError> {
        let runs = self.runs(job)?;
        let patch = serde_json::json!({ "spec": { "status": SPEC_STATUS_CANCELLED } });
        match runs
            .patch(job.name(), &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(classify(e, "cancelling the PipelineRun")),
        }
    }

    async fn logs(&self, job: &ProwJob, follow: bool) -> Result<LogStream, AgentError> {
        if self
            .runs(job)?
            .get_opt(job.name())
            .await
            .map_err(|e| classify(e, "reading the PipelineRun"))?
            .is_none()
        {
            return Err(AgentError::NotFound(format!(
                "PipelineRun {} not found",
                job.name()
            )));
        }
        if !follow {
            let bytes = self.collected_logs(job).await?;
            return Ok(Box::pin(futures::stream::once(async move { Ok(bytes) })));
        }
        let pods: Api<Pod> = Api::namespaced(self.client(job)?, self.namespace(job));
        let ctx = std::sync::Arc::new(FollowCtx {
            agent: self.clone(),
            job: job.clone(),
            pods,
        });
        let state = Follow {
            ctx,
            done: BTreeSet::new(),
            current: None,
            finished: false,
        };
        Ok(Box::pin(futures::stream::unfold(state, Follow::next)))
    }

    async fn cleanup(&self, job: &ProwJob) -> Result<(), AgentError> {
        let runs = self.runs(job)?;
        match runs.delete(job.name(), &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(classify(e, "deleting the PipelineRun")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bosun_proto::ProwJobState;
    use serde_json::json;

    fn run(status: serde_json::Value) -> PipelineRun {
        serde_json::from_value(json!({
            "apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
            "metadata": {"name": "r"}, "spec": {"pipelineRef": {"name": "p"}},
            "status": status
        }))
        .expect("run")
    }

    fn cond(status: &str, reason: &str, message: &str) -> serde_json::Value {
        json!({"conditions": [{"type": "Succeeded", "status": status, "reason": reason, "message": message}],
               "startTime": "2025-01-01T00:00:00Z", "completionTime": "2025-01-01T00:01:00Z"})
    }

    #[test]
    fn succeeded_condition_maps_to_job_states() {
        let RunVerdict::Done(ok) = judge(&run(cond("True", "Succeeded", "Tasks Completed: 2")))
        else {
            panic!("done")
        };
        assert_eq!(ok.state, ProwJobState::Success);
        assert_eq!(ok.description, "Tasks Completed: 2");
        assert_eq!(
            ok.completed_at.map(|t| t.0.to_string()),
            Some("2025-01-01T00:01:00Z".to_owned())
        );
        let RunVerdict::Done(ok) = judge(&run(cond("True", "", ""))) else {
            panic!("done")
        };
        assert_eq!(ok.description, "succeeded");
        let RunVerdict::Done(failed) = judge(&run(cond("False", "Failed", "task unit failed")))
        else {
            panic!("done")
        };
        assert_eq!(failed.state, ProwJobState::Failure);
        assert_eq!(failed.description, "Failed: task unit failed");
        let RunVerdict::Done(timeout) = judge(&run(cond("False", "PipelineRunTimeout", ""))) else {
            panic!("done")
        };
        assert_eq!(
            (timeout.state, timeout.description.as_str()),
            (ProwJobState::Failure, "PipelineRunTimeout")
        );
        let RunVerdict::Done(cancelled) = judge(&run(cond(
            "False",
            "Cancelled",
            "PipelineRun \"r\" was cancelled",
        ))) else {
            panic!("done")
        };
        assert_eq!(cancelled.state, ProwJobState::Aborted);
        assert_eq!(
            judge(&run(json!({}))),
            RunVerdict::Running {
                started: false,
                message: None
            }
        );
        assert_eq!(
            judge(&run(cond("Unknown", "Running", "Tasks Completed: 0"))),
            RunVerdict::Running {
                started: true,
                message: Some("Tasks Completed: 0".into())
            }
        );
    }
}
