//! The `noop` agent: a zero-cost backend for measuring the gateway itself. `start` records the
//! wall-clock time of the call in the job's description (`agent start at <unix nanoseconds>`)
//! and every job succeeds at once. Only registered when `bosun serve --noop-agent` asks for it.

use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bosun_proto::ProwJob;

use crate::{Agent, AgentError, LogStream, Outcome, ProgressSender, Started};

/// The agent name jobs use: `agent: noop`.
pub const NOOP_AGENT: &str = "noop";
/// The prefix of the description `start` sets; the rest is the call's unix time in ns.
pub const START_MARK: &str = "agent start at ";

/// See the module docs.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopAgent;

/// The unix time in nanoseconds recorded in a job description by [`NoopAgent::start`].
pub fn start_mark_nanos(description: &str) -> Option<u128> {
    description.strip_prefix(START_MARK)?.parse().ok()
}

#[async_trait]
impl Agent for NoopAgent {
    fn name(&self) -> &str {
        NOOP_AGENT
    }

    async fn start(&self, job: &ProwJob) -> Result<Started, AgentError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| AgentError::Internal(format!("clock before 1970: {e}")))?;
        Ok(Started {
            workload_name: job.metadata.name.clone().unwrap_or_default(),
            description: Some(format!("{START_MARK}{}", now.as_nanos())),
        })
    }

    /// Succeeds at once, keeping the start mark as the final description (so a benchmark can
    /// read it after the job finished).
    async fn wait(&self, job: &ProwJob, _progress: ProgressSender) -> Result<Outcome, AgentError> {
        let mut outcome = Outcome::success();
        if let Some(mark) = job
            .status
            .as_ref()
            .map(|s| s.description.as_str())
            .filter(|d| start_mark_nanos(d).is_some())
        {
            outcome.description = mark.to_owned();
        }
        Ok(outcome)
    }

    async fn abort(&self, _job: &ProwJob) -> Result<(), AgentError> {
        Ok(())
    }

    async fn logs(&self, _job: &ProwJob, _follow: bool) -> Result<LogStream, AgentError> {
        Ok(Box::pin(futures::stream::empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn start_records_the_call_time() {
        let job: ProwJob = serde_json::from_value(serde_json::json!({
            "apiVersion": "prow.k8s.io/v1", "kind": "ProwJob",
            "metadata": {"name": "n1"}, "spec": {"type": "periodic", "job": "j", "agent": "noop"}
        }))
        .expect("job");
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_nanos();
        let started = NoopAgent.start(&job).await.expect("start");
        let mark =
            start_mark_nanos(started.description.as_deref().unwrap_or_default()).expect("mark");
        assert!(mark >= before);
        assert_eq!(started.workload_name, "n1");
        assert_eq!(start_mark_nanos("Job triggered."), None);
    }
}
