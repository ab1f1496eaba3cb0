//! The embedded SQLite job store.

mod checkpoint;
mod reader;
mod row;
mod schema;
mod watch;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use bosun_proto::ProwJob;
use tokio::sync::{broadcast, mpsc, oneshot};

use self::reader::ReadPool;
use self::writer::{Counters, EventBatch, WriteRequest, Writer};
use crate::{
    CreateOutcome, DEFAULT_PAGE_SIZE, JobStore, ListFilter, MAX_PAGE_SIZE, Page, StoreError,
    StoredJob, WatchStream,
};

/// Tuning of a [`SqliteJobStore`]. The defaults suit a gateway; tests shrink them.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// How many of the newest watch events the log keeps (at least 1). Default 100 000.
    pub event_retention: u64,
    /// Read-only connections for get, list and watch replay (at least 1). Default 4.
    pub read_connections: usize,
    /// How long a connection waits for a lock held by another connection. Default 5 s.
    pub busy_timeout: Duration,
    /// The most writes committed in one transaction (at least 1). Default 1024.
    pub max_batch: usize,
    /// Writes that may wait for the writer thread before callers wait to enqueue (at least 1).
    /// Default 8192.
    pub write_queue: usize,
    /// Committed batches buffered for each live watcher before it lags and falls back to
    /// reading the log (at least 1). Default 1024.
    pub watch_buffer: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            event_retention: 100_000,
            read_connections: 4,
            busy_timeout: Duration::from_secs(5),
            max_batch: 1024,
            write_queue: 8192,
            watch_buffer: 1024,
        }
    }
}

impl SqliteOptions {
    fn validate(&self) -> Result<(), StoreError> {
        let checks = [
            (self.event_retention == 0, "event_retention"),
            (self.read_connections == 0, "read_connections"),
            (self.max_batch == 0, "max_batch"),
            (self.write_queue == 0, "write_queue"),
            (self.watch_buffer == 0, "watch_buffer"),
        ];
        match checks.iter().find(|(zero, _)| *zero) {
            Some((_, name)) => Err(StoreError::Invalid(format!(
                "sqlite option {name} must be at least 1"
            ))),
            None => Ok(()),
        }
    }
}

/// The embedded job store: one SQLite file in WAL mode with `synchronous=FULL`.
///
/// A dedicated writer thread owns the only read-write connection and commits every write that is
/// queued at the time in one transaction (group commit); a write is answered only after that
/// transaction is durable. Reads run on a small pool of read-only connections in the blocking
/// thread pool. The file belongs to one store at a time: do not open it from two processes.
///
/// Handles are cheap to clone. When the last handle is dropped, the writer finishes the queued
/// writes and closes the file; [`SqliteJobStore::close`] also waits for that. Watch streams end
/// with [`StoreError::Closed`] once the writer is gone.
#[derive(Clone)]
pub struct SqliteJobStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    requests: mpsc::Sender<WriteRequest>,
    events: broadcast::Sender<Arc<EventBatch>>,
    readers: Arc<ReadPool>,
    counters: Arc<Counters>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Dropping it stops the WAL checkpointer thread.
    _checkpointer: Mutex<std::sync::mpsc::Sender<()>>,
}

impl std::fmt::Debug for SqliteJobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteJobStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl SqliteJobStore {
    /// The file name [`SqliteJobStore::open_in_dir`] uses.
    pub const FILE_NAME: &str = "bosun.db";

    /// Opens (or creates) the store at `path`, creating missing parent directories and
    /// bringing the schema up to date. This blocks on file IO; from async code prefer
    /// [`SqliteJobStore::open_in_dir`] or `spawn_blocking`.
    pub fn open(path: &Path, options: SqliteOptions) -> Result<Self, StoreError> {
        options.validate()?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Io {
                context: format!("cannot create directory {}", parent.display()),
                source,
            })?;
        }
        let conn = schema::open_writer(path, options.busy_timeout)?;
        checkpoint::configure_writer(&conn)
            .map_err(StoreError::sqlite("set wal_autocheckpoint"))?;
        let (stop_checkpointer, stop_rx) = std::sync::mpsc::channel();
        let checkpoint_path = path.to_owned();
        let busy = options.busy_timeout;
        std::thread::Builder::new()
            .name("bosun-store-checkpoint".into())
            .spawn(move || checkpoint::run(checkpoint_path, busy, stop_rx))
            .map_err(|source| StoreError::Io {
                context: "cannot start the job store checkpoint thread".into(),
                source,
            })?;
        let (requests, requests_rx) = mpsc::channel(options.write_queue);
        let (events, _) = broadcast::channel(options.watch_buffer);
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            conn,
            requests: requests_rx,
            events: events.clone(),
            counters: counters.clone(),
            retention: options.event_retention,
            max_batch: options.max_batch,
        };
        let handle = std::thread::Builder::new()
            .name("bosun-store-writer".into())
            .spawn(move || writer.run())
            .map_err(|source| StoreError::Io {
                context: "cannot start the job store writer thread".into(),
                source,
            })?;
        tracing::info!(path = %path.display(), "job store opened");
        Ok(SqliteJobStore {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                requests,
                events,
                readers: Arc::new(ReadPool::new(
                    path.to_owned(),
                    options.busy_timeout,
                    options.read_connections,
                )),
                counters,
                writer: Mutex::new(Some(handle)),
                _checkpointer: Mutex::new(stop_checkpointer),
            }),
        })
    }

    /// Opens `<data_dir>/bosun.db` with default options, off the async threads.
    pub async fn open_in_dir(data_dir: &Path) -> Result<Self, StoreError> {
        let path = data_dir.join(Self::FILE_NAME);
        match tokio::task::spawn_blocking(move || Self::open(&path, SqliteOptions::default())).await
        {
            Ok(result) => result,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => Err(StoreError::Closed),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Transactions committed with at least one change since this store was opened. With group
    /// commit this grows slower than the number of writes under load.
    pub fn commit_count(&self) -> u64 {
        self.inner.counters.commits.load(Ordering::Acquire)
    }

    /// Writes submitted and not answered yet: queued for the writer or in its current batch.
    pub fn pending_writes(&self) -> usize {
        self.inner.counters.pending.load(Ordering::Acquire)
    }

    /// Drops this handle; if it was the last one, waits until the writer has committed the
    /// queued writes and closed the file. Other handles keep the store open.
    pub async fn close(self) {
        let Ok(inner) = Arc::try_unwrap(self.inner) else {
            return;
        };
        let Inner {
            requests, writer, ..
        } = inner;
        drop(requests);
        let handle = writer.into_inner().unwrap_or_else(PoisonError::into_inner);
        if let Some(handle) = handle {
            match tokio::task::spawn_blocking(move || handle.join()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => tracing::error!("job store writer thread panicked"),
                Err(error) => tracing::error!(%error, "waiting for the job store writer failed"),
            }
        }
    }

    async fn submit<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> WriteRequest,
    ) -> Result<T, StoreError> {
        /// Takes the pending count back unless the writer took over the request.
        struct Unsent<'a>(Option<&'a Counters>);
        impl Drop for Unsent<'_> {
            fn drop(&mut self) {
                if let Some(counters) = self.0 {
                    counters.pending.fetch_sub(1, Ordering::AcqRel);
                }
            }
        }

        let (reply, answer) = oneshot::channel();
        let counters = &*self.inner.counters;
        counters.pending.fetch_add(1, Ordering::AcqRel);
        let mut unsent = Unsent(Some(counters));
        self.inner
            .requests
            .send(make(reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        // From here on the writer decrements the count when it answers.
        unsent.0 = None;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

fn require_name(job: &ProwJob) -> Result<(), StoreError> {
    if job.name().is_empty() {
        return Err(StoreError::Invalid("metadata.name must be set".into()));
    }
    Ok(())
}

#[async_trait::async_trait]
impl JobStore for SqliteJobStore {
    async fn create(
        &self,
        job: ProwJob,
        idempotency_key: Option<String>,
    ) -> Result<CreateOutcome, StoreError> {
        require_name(&job)?;
        if idempotency_key.as_deref().is_some_and(str::is_empty) {
            return Err(StoreError::Invalid(
                "idempotency key must not be empty".into(),
            ));
        }
        self.submit(|reply| WriteRequest::Create {
            job,
            key: idempotency_key,
            reply,
        })
        .await
    }

    async fn get(&self, name: &str) -> Result<StoredJob, StoreError> {
        let name = name.to_owned();
        self.inner
            .readers
            .run(move |conn| reader::get(conn, &name))
            .await
    }

    async fn list(
        &self,
        filter: &ListFilter,
        page_size: usize,
        page_token: Option<&str>,
    ) -> Result<Page, StoreError> {
        let page_size = match page_size {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        let filter = filter.clone();
        let page_token = page_token.map(str::to_owned);
        self.inner
            .readers
            .run(move |conn| reader::list(conn, &filter, page_size, page_token.as_deref()))
            .await
    }

    async fn update(&self, job: ProwJob, expected_revision: u64) -> Result<StoredJob, StoreError> {
        require_name(&job)?;
        self.submit(|reply| WriteRequest::Update {
            job,
            expected: expected_revision,
            reply,
        })
        .await
    }

    async fn delete(&self, name: &str, expected_revision: Option<u64>) -> Result<(), StoreError> {
        if name.is_empty() {
            return Err(StoreError::Invalid("job name must be set".into()));
        }
        self.submit(|reply| WriteRequest::Delete {
            name: name.to_owned(),
            expected: expected_revision,
            reply,
        })
        .await
    }

    fn watch(&self, from_revision: u64) -> WatchStream {
        // Subscribe now, before the log is read, so nothing committed in between is missed.
        let live = self.inner.events.subscribe();
        watch::watch(self.inner.readers.clone(), live, from_revision)
    }

    async fn current_revision(&self) -> Result<u64, StoreError> {
        self.inner
            .readers
            .run(|conn| reader::current_revision(conn))
            .await
    }
}
