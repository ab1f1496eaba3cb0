//! Jobs that start by themselves, the way they do under Prow (issue 6): GitHub webhooks
//! (`hook` + the `trigger` plugin), periodic jobs (horologium), the Gerrit adapter; plus the
//! sinker (garbage collection of finished jobs) and config reload.
//!
//! Every subsystem gets a [`TriggerContext`]: the store it creates jobs in, the dispatcher (for
//! aborts), the live configuration ([`ConfigHandle`], swapped on reload) and the supervisor that
//! owns its tasks. Presubmit selection (`/test`, `/retest`, `/test all`, run_if_changed) is
//! shared in [`filter`].

pub mod config_handle;
pub mod filter;
pub mod gerrit;
pub mod github_events;
pub mod github_trigger;
pub mod hmac;
pub mod hook;
pub mod horologium;
pub mod plugins;
pub mod reload;
pub mod sinker;

use std::path::PathBuf;
use std::sync::Arc;

use bosun_gateway_store::{CreateOutcome, JobStore, StoreError, StoredJob};
use bosun_proto::ProwJob;

pub use config_handle::{ConfigHandle, Live};

use crate::dispatcher::Dispatcher;
use crate::metrics::Metrics;
use crate::supervisor::Supervisor;

/// What a trigger subsystem needs from the gateway.
#[derive(Clone)]
pub struct TriggerContext {
    /// Where new jobs are created (durable before anything is acknowledged).
    pub store: Arc<dyn JobStore>,
    /// Aborts (superseded presubmits) go through the dispatcher, the only writer of states.
    pub dispatcher: Dispatcher,
    /// The configuration in force; replaced when config files change.
    pub config: ConfigHandle,
    /// Owner of every task a subsystem spawns.
    pub supervisor: Supervisor,
    /// The gateway's data directory (durable trigger state lives under it).
    pub data_dir: PathBuf,
    /// The namespace new ProwJobs get.
    pub namespace: String,
    /// Gateway metrics.
    pub metrics: Metrics,
}

impl TriggerContext {
    /// The job creator over this context's store.
    pub fn creator(&self) -> JobCreator {
        JobCreator {
            store: self.store.clone(),
            namespace: self.namespace.clone(),
            metrics: self.metrics.clone(),
        }
    }

    /// See [`JobCreator::create_job`].
    pub async fn create_job(
        &self,
        job: ProwJob,
        idempotency_key: Option<String>,
    ) -> Result<(StoredJob, bool), StoreError> {
        self.creator().create_job(job, idempotency_key).await
    }
}

/// Stores the jobs triggers build; the only thing most triggers need from the gateway.
#[derive(Clone)]
pub struct JobCreator {
    /// The store.
    pub store: Arc<dyn JobStore>,
    /// The namespace new ProwJobs get when they name none.
    pub namespace: String,
    /// Gateway metrics (`jobs submitted`).
    pub metrics: Metrics,
}

impl JobCreator {
    /// Stores a new job built by a trigger (with `new_prowjob`). The namespace is filled in when
    /// empty. With an `idempotency_key` (e.g. the webhook delivery and job name, or the Gerrit
    /// revision and job name), a trigger that runs twice for the same event creates the job
    /// once: the second call returns the first job with `created == false`.
    pub async fn create_job(
        &self,
        mut job: ProwJob,
        idempotency_key: Option<String>,
    ) -> Result<(StoredJob, bool), StoreError> {
        if job.metadata.namespace.as_deref().unwrap_or("").is_empty() {
            job.metadata.namespace = Some(self.namespace.clone());
        }
        match self.store.create(job, idempotency_key).await? {
            CreateOutcome::Created(stored) => {
                self.metrics.job_submitted();
                tracing::info!(
                    job = %stored.job.spec.job,
                    name = %stored.job.name(),
                    r#type = %stored.job.spec.r#type,
                    "job created by trigger"
                );
                Ok((stored, true))
            }
            CreateOutcome::Existing(stored) => Ok((stored, false)),
        }
    }
}
