//! `bosun-reporters`: the contract every reporter implements, the crier-style fan-out
//! ([`crier::Crier`]) and the GitHub commit-status ([`github`]), Gerrit ([`gerrit`]), Slack
//! ([`slack`]) and Pub/Sub ([`pubsub`])
//! reporters.
//!
//! Every reporter is an `Arc<dyn Reporter>`; [`reporters_from_config`] builds the enabled ones
//! from Prow's `config.yaml` and bosun's own [`ReporterSettings`].

use std::time::Duration;

use async_trait::async_trait;
use bosun_proto::{ProwJob, ProwJobState};

pub mod config;
pub mod crier;
pub mod gerrit;
pub mod github;
mod http;
mod marks;
pub mod pubsub;
pub mod slack;
pub mod template;

pub use config::{
    ReporterSettings, ReportersConfigError, Secret, reporters_from_config,
    reporters_from_config_with_store,
};
pub use crier::{Crier, CrierMetrics, CrierOptions, ReporterOptions};

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

impl ReportError {
    /// A transient failure without a server-supplied delay.
    pub fn transient(message: impl Into<String>) -> Self {
        ReportError::Transient {
            message: message.into(),
            retry_after: None,
        }
    }
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

/// The job's current state (`triggered` for a job without a status, as Prow reads it).
pub fn job_state(job: &ProwJob) -> ProwJobState {
    job.status.as_ref().map(|s| s.state).unwrap_or_default()
}
