//! The contract between the dispatcher and an executor backend.

use std::pin::Pin;

use async_trait::async_trait;
use bosun_proto::{ProwJob, ProwJobState};
use bytes::Bytes;
use futures::Stream;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tokio::sync::mpsc;

/// A stream of build-log bytes.
pub type LogStream = Pin<Box<dyn Stream<Item = Result<Bytes, AgentError>> + Send + 'static>>;

/// Why an agent call failed. The dispatcher acts on the variant, so pick it with care.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The job cannot run on this backend as specified (bad spec, unknown cluster, missing
    /// image). The job ends in `error` with this message as its description.
    #[error("{0}")]
    InvalidJob(String),
    /// The backend cannot be reached or refused for a transient reason. The dispatcher keeps
    /// the job and retries with backoff; the message is shown as the job description.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// The workload does not exist (never started, or deleted behind bosun's back).
    #[error("workload not found: {0}")]
    NotFound(String),
    /// The workload stopped unexpectedly (evicted, node lost) and was removed; the
    /// dispatcher may recreate it with a fresh build id, up to the revival limit.
    #[error("workload stopped unexpectedly ({0})")]
    WorkloadLost(String),
    /// Anything else; treated like `Unavailable` but logged as a bug.
    #[error("internal agent error: {0}")]
    Internal(String),
}

impl AgentError {
    /// Whether retrying the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, AgentError::Unavailable(_) | AgentError::Internal(_))
    }
}

/// What `start` reports back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Started {
    /// Name of the workload (pod, container, process group); goes to `status.pod_name`.
    pub workload_name: String,
    /// Optional description override (default `Job triggered.`).
    pub description: Option<String>,
}

/// Progress the agent reports while a job runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The workload is scheduled and its test process runs (ends the pending timeout window).
    Running,
    /// A new human-readable description for `status.description`.
    Description(String),
    /// The backend's own number for the run (Jenkins' build number); goes to
    /// `status.jenkins_build_id`, and lets `wait` find the run again after a restart.
    BuildNumber(String),
}

/// Sender for [`Progress`] updates.
pub type ProgressSender = mpsc::UnboundedSender<Progress>;

/// How a workload ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `success`, `failure`, `aborted` or `error`.
    pub state: ProwJobState,
    /// Description for `status.description`, e.g. `Job succeeded.`.
    pub description: String,
    /// When the workload ended, if the backend says (a PipelineRun's `completionTime`); the
    /// job's `completionTime`. `None`: the time the dispatcher learns of the end.
    pub completed_at: Option<Time>,
}

impl Outcome {
    /// An outcome with this state and description.
    pub fn new(state: ProwJobState, description: impl Into<String>) -> Self {
        Self {
            state,
            description: description.into(),
            completed_at: None,
        }
    }
    /// The same outcome, ended at `time`.
    pub fn ended_at(mut self, time: Option<Time>) -> Self {
        self.completed_at = time;
        self
    }
    /// `success` / `Job succeeded.`
    pub fn success() -> Self {
        Self::new(ProwJobState::Success, "Job succeeded.")
    }
    /// `failure` / `Job failed.`
    pub fn failure() -> Self {
        Self::new(ProwJobState::Failure, "Job failed.")
    }
    /// `error` with a description.
    pub fn error(description: impl Into<String>) -> Self {
        Self::new(ProwJobState::Error, description)
    }
    /// `aborted` with a description.
    pub fn aborted(description: impl Into<String>) -> Self {
        Self::new(ProwJobState::Aborted, description)
    }
}

/// An executor backend, chosen by `spec.agent`.
///
/// Every method takes the job as stored: `status.build_id` is set before `start` is called.
/// Implementations must be idempotent on the job name: `start` for a workload that already
/// exists succeeds without creating a second one, `abort` of a finished job is a no-op.
#[async_trait]
pub trait Agent: Send + Sync + 'static {
    /// The `spec.agent` value this agent serves.
    fn name(&self) -> &str;

    /// Cheap checks with no IO: can this job run here at all (cluster known, spec usable)?
    /// An error ends the job in `error` without calling `start`.
    fn check(&self, _job: &ProwJob) -> Result<(), AgentError> {
        Ok(())
    }

    /// Creates the workload and returns once it exists (not when it finishes).
    async fn start(&self, job: &ProwJob) -> Result<Started, AgentError>;

    /// Follows the workload until it ends, sending progress on the way. Called after `start`
    /// and, after a gateway restart, for jobs that were pending (re-attach): the agent must
    /// find the workload again from the job alone. `NotFound` means it is gone.
    /// Uploads logs and artifacts before returning.
    async fn wait(&self, job: &ProwJob, progress: ProgressSender) -> Result<Outcome, AgentError>;

    /// Stops the workload (the whole process tree / pod / container). A later or concurrent
    /// `wait` then returns (typically an `aborted` outcome).
    async fn abort(&self, job: &ProwJob) -> Result<(), AgentError>;

    /// The build log; with `follow`, the stream stays open until the workload ends.
    async fn logs(&self, job: &ProwJob, follow: bool) -> Result<LogStream, AgentError>;

    /// Removes what the workload left behind (containers, volumes, work directories).
    async fn cleanup(&self, _job: &ProwJob) -> Result<(), AgentError> {
        Ok(())
    }
}
