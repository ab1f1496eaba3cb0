//! `bosun-gateway-store`: the durable job store.
//!
//! [`JobStore`] is the contract the gateway uses for every ProwJob it keeps: idempotent create,
//! get, filtered and paginated list, compare-and-swap update, delete, and a watch that replays
//! history from a revision and then follows live changes. Like etcd (and therefore like the
//! Kubernetes API), the store keeps one global revision counter: every successful create, update
//! and delete takes the next revision, and that revision is both [`StoredJob::revision`] and the
//! job's `metadata.resourceVersion`.
//!
//! [`SqliteJobStore`] is the embedded implementation: one SQLite file in WAL mode with
//! `synchronous=FULL`, a single writer thread doing group commit, and a small pool of read-only
//! connections. A write is acknowledged only once its transaction is durable.

#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::pin::Pin;

use bosun_proto::{ProwJob, ProwJobState, ProwJobType};
use futures::Stream;

mod error;
mod sqlite;

pub use error::StoreError;
pub use sqlite::{SqliteJobStore, SqliteOptions};

/// The default page size of [`JobStore::list`] when the caller passes 0.
pub const DEFAULT_PAGE_SIZE: usize = 500;
/// The largest page [`JobStore::list`] returns; larger requests are capped.
pub const MAX_PAGE_SIZE: usize = 5000;

/// One version of a job as the store holds it.
#[derive(Debug, Clone)]
pub struct StoredJob {
    /// The job. `metadata.resourceVersion` equals [`StoredJob::revision`] as a decimal string.
    pub job: ProwJob,
    /// The store revision that wrote this version.
    pub revision: u64,
}

/// What [`JobStore::create`] did.
#[derive(Debug, Clone)]
pub enum CreateOutcome {
    /// The job was stored at a new revision.
    Created(StoredJob),
    /// A job was already stored under the same idempotency key; this is its current version and
    /// nothing was written (even if the submitted body differs).
    Existing(StoredJob),
}

impl CreateOutcome {
    /// The stored job, whether just created or already present.
    pub fn job(&self) -> &StoredJob {
        match self {
            CreateOutcome::Created(job) | CreateOutcome::Existing(job) => job,
        }
    }

    /// The stored job, whether just created or already present.
    pub fn into_job(self) -> StoredJob {
        match self {
            CreateOutcome::Created(job) | CreateOutcome::Existing(job) => job,
        }
    }

    /// Whether this call created the job.
    pub fn is_created(&self) -> bool {
        matches!(self, CreateOutcome::Created(_))
    }
}

/// Which jobs [`JobStore::list`] returns. Every field that is set must match; the default
/// matches every job.
#[derive(Default, Clone, Debug)]
pub struct ListFilter {
    /// `spec.job`.
    pub job: Option<String>,
    /// `spec.type`.
    pub job_type: Option<ProwJobType>,
    /// `status.state` (`triggered` for a job without a status).
    pub state: Option<ProwJobState>,
    /// `spec.agent`.
    pub agent: Option<String>,
    /// `spec.cluster`, where an empty cluster is `default` (on both sides).
    pub cluster: Option<String>,
    /// `spec.refs.org`.
    pub org: Option<String>,
    /// `spec.refs.repo`.
    pub repo: Option<String>,
    /// The number of the first pull request in `spec.refs.pulls`.
    pub pull: Option<i64>,
    /// `metadata.labels`: every pair must be present with exactly this value.
    pub labels: BTreeMap<String, String>,
    /// Only jobs whose `status.completionTime` is unset.
    pub incomplete_only: bool,
}

/// One page of [`JobStore::list`].
#[derive(Debug, Clone)]
pub struct Page {
    /// Matching jobs, oldest first (by creation).
    pub jobs: Vec<StoredJob>,
    /// Pass this to the next `list` call to get the following page; `None` on the last page.
    pub next_page_token: Option<String>,
    /// The store revision this page was read at: a watch from this revision sees every change
    /// made after the page was read.
    pub revision: u64,
}

/// What happened to a job, as seen by [`JobStore::watch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatchEventKind {
    /// The job was created.
    Created,
    /// The job was updated.
    Updated,
    /// The job was deleted; the event carries its last version.
    Deleted,
}

/// One change to one job.
#[derive(Debug, Clone)]
pub struct WatchEvent {
    /// What happened.
    pub kind: WatchEventKind,
    /// The job after the change (its last version for a delete). `job.revision` is the revision
    /// of the event.
    pub job: StoredJob,
}

/// The stream returned by [`JobStore::watch`].
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, StoreError>> + Send>>;

/// The durable job store.
#[async_trait::async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Stores a new job. `metadata.name` must be set. The store sets `metadata.uid` and
    /// `metadata.creationTimestamp` when missing, and `metadata.resourceVersion` always.
    ///
    /// With an idempotency key, a second create with the same key returns
    /// [`CreateOutcome::Existing`] with the job stored under that key (while that job exists).
    /// A name that is already taken under another key, or without a key, is
    /// [`StoreError::AlreadyExists`].
    async fn create(
        &self,
        job: ProwJob,
        idempotency_key: Option<String>,
    ) -> Result<CreateOutcome, StoreError>;

    /// The current version of the job named `name`, or [`StoreError::NotFound`].
    async fn get(&self, name: &str) -> Result<StoredJob, StoreError>;

    /// Jobs matching `filter`, oldest first. `page_size` 0 means [`DEFAULT_PAGE_SIZE`]; larger
    /// than [`MAX_PAGE_SIZE`] is capped. `page_token` is the `next_page_token` of the previous
    /// page; tokens are opaque.
    async fn list(
        &self,
        filter: &ListFilter,
        page_size: usize,
        page_token: Option<&str>,
    ) -> Result<Page, StoreError>;

    /// Replaces the job with the same name if its current revision is `expected_revision`
    /// (compare-and-swap); otherwise [`StoreError::Conflict`] carrying the current revision.
    /// `metadata.uid` and `metadata.creationTimestamp` keep their stored values.
    async fn update(&self, job: ProwJob, expected_revision: u64) -> Result<StoredJob, StoreError>;

    /// Deletes the job; with `expected_revision`, only if that is its current revision.
    async fn delete(&self, name: &str, expected_revision: Option<u64>) -> Result<(), StoreError>;

    /// Every change with a revision greater than `from_revision`, in revision order, without
    /// gaps or duplicates, then live changes until the store closes.
    ///
    /// Only the newest events are retained. If an event the caller asked for was already
    /// discarded, the stream yields [`StoreError::Compacted`] and ends; start again from a fresh
    /// [`JobStore::list`] and watch from its [`Page::revision`]. `from_revision` 0 means "all of
    /// history", so it fails the same way once any event has been discarded, and works only on a
    /// store that never compacted.
    fn watch(&self, from_revision: u64) -> WatchStream;

    /// The revision of the newest committed change (0 for an empty, never-written store).
    async fn current_revision(&self) -> Result<u64, StoreError>;
}
