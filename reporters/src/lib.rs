//! `bosun-reporters`: the contract every reporter implements. The crier-style fan-out and
//! the GitHub, Gerrit, Slack and Pub/Sub reporters build on [`Reporter`].

use std::time::Duration;

use async_trait::async_trait;
use bosun_proto::ProwJob;

/// Why a report failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Worth retrying later (network, 5xx, rate limit); `retry_after` when the sink said.
    #[error("transient report failure: {message}")]
    Transient {
        /// What went wrong.
        message: String,
        /// How long the sink asked us to wait.
        retry_after: Option<Duration>,
    },
    /// Retrying will not help (bad config, 4xx other than rate limits).
    #[error("report refused: {0}")]
    Permanent(String),
}

/// A sink that hears about job state changes.
#[async_trait]
pub trait Reporter: Send + Sync + 'static {
    /// The key under which the last reported state is kept in `status.prev_report_states`.
    fn name(&self) -> &str;
    /// Whether this job (in its current state) is for this reporter.
    fn should_report(&self, job: &ProwJob) -> bool;
    /// Sends one report for the job's current state.
    async fn report(&self, job: &ProwJob) -> Result<(), ReportError>;
}
