//! The writer thread: owns the read-write connection and commits writes in groups.
//!
//! Requests arrive over a bounded channel. The thread takes everything queued (up to the batch
//! limit), applies each request inside its own savepoint of one transaction, so a failed check
//! undoes only that request, commits once, publishes the batch's events and answers every caller.
//! While a commit waits for the disk, new requests queue up and form the next batch.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bosun_proto::ProwJob;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::row::{
    IndexColumns, kind_code, normalize_times, now, time_from_seconds, to_revision, to_sql_revision,
};
use crate::{CreateOutcome, StoreError, StoredJob, WatchEvent, WatchEventKind};

/// Commits between `PRAGMA optimize` runs (after answering), which refresh planner statistics.
const OPTIMIZE_EVERY: u64 = 4096;

/// Counters shared between the writer thread and the store handles.
#[derive(Default)]
pub(super) struct Counters {
    /// Transactions committed that wrote at least one change.
    pub commits: AtomicU64,
    /// Write requests sent to the writer and not answered yet.
    pub pending: AtomicUsize,
}

/// One write, with the channel its answer goes to.
pub(super) enum WriteRequest {
    Create {
        job: ProwJob,
        key: Option<String>,
        reply: oneshot::Sender<Result<CreateOutcome, StoreError>>,
    },
    Update {
        job: ProwJob,
        expected: u64,
        reply: oneshot::Sender<Result<StoredJob, StoreError>>,
    },
    Delete {
        name: String,
        expected: Option<u64>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// What one commit published to live watchers.
#[derive(Debug)]
pub(super) struct EventBatch {
    /// The revision of the last event in the batch.
    pub last: u64,
    /// The events, in revision order, ending at `last`. Empty when nobody was watching while
    /// the batch was built: a watcher that subscribed meanwhile reads them from the event log.
    pub events: Vec<WatchEvent>,
}

/// A request with its outcome, waiting for the commit.
enum Answer {
    Create(
        oneshot::Sender<Result<CreateOutcome, StoreError>>,
        Result<CreateOutcome, StoreError>,
    ),
    Update(
        oneshot::Sender<Result<StoredJob, StoreError>>,
        Result<StoredJob, StoreError>,
    ),
    Delete(
        oneshot::Sender<Result<(), StoreError>>,
        Result<(), StoreError>,
    ),
}

impl Answer {
    /// Replaces a success with `error` (the batch did not commit).
    fn fail_success(&mut self, error: &Arc<rusqlite::Error>) {
        let failed = || StoreError::Sqlite {
            context: "commit",
            source: error.clone(),
        };
        match self {
            Answer::Create(_, result @ Ok(_)) => *result = Err(failed()),
            Answer::Update(_, result @ Ok(_)) => *result = Err(failed()),
            Answer::Delete(_, result @ Ok(_)) => *result = Err(failed()),
            _ => {}
        }
    }

    fn send(self) {
        // A caller that went away no longer needs its answer; the write stands either way.
        match self {
            Answer::Create(reply, result) => drop(reply.send(result)),
            Answer::Update(reply, result) => drop(reply.send(result)),
            Answer::Delete(reply, result) => drop(reply.send(result)),
        }
    }
}

impl WriteRequest {
    fn fail(self, error: StoreError) -> Answer {
        match self {
            WriteRequest::Create { reply, .. } => Answer::Create(reply, Err(error)),
            WriteRequest::Update { reply, .. } => Answer::Update(reply, Err(error)),
            WriteRequest::Delete { reply, .. } => Answer::Delete(reply, Err(error)),
        }
    }
}

/// A change one request made.
struct Change {
    kind: WatchEventKind,
    job: StoredJob,
}

pub(super) struct Writer {
    pub conn: Connection,
    pub requests: mpsc::Receiver<WriteRequest>,
    pub events: broadcast::Sender<Arc<EventBatch>>,
    pub counters: Arc<Counters>,
    pub retention: u64,
    pub max_batch: usize,
}

impl Writer {
    /// Serves requests until every sender is gone.
    pub fn run(mut self) {
        let mut batch = Vec::with_capacity(self.max_batch.min(1024));
        let mut next_optimize = OPTIMIZE_EVERY;
        while let Some(first) = self.requests.blocking_recv() {
            batch.push(first);
            while batch.len() < self.max_batch {
                match self.requests.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            let size = batch.len();
            let answers = self.apply(&mut batch);
            // Before answering, so a caller holding its answer never sees itself still pending.
            self.counters.pending.fetch_sub(size, Ordering::AcqRel);
            for answer in answers {
                answer.send();
            }
            let commits = self.counters.commits.load(Ordering::Acquire);
            if commits >= next_optimize {
                next_optimize = commits + OPTIMIZE_EVERY;
                if let Err(error) = self.conn.execute_batch("PRAGMA optimize") {
                    tracing::debug!(%error, "job store optimize failed");
                }
            }
        }
        if let Err(error) = self.conn.execute_batch("PRAGMA optimize") {
            tracing::debug!(%error, "job store optimize on close failed");
        }
        tracing::debug!("job store writer stopped");
    }

    /// Applies and commits one batch; drains `batch`.
    fn apply(&mut self, batch: &mut Vec<WriteRequest>) -> Vec<Answer> {
        let mut answers = Vec::with_capacity(batch.len());
        let capture = self.events.receiver_count() > 0;
        let mut tx = match self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(error) => {
                let error = Arc::new(error);
                tracing::warn!(%error, "job store cannot begin a write transaction");
                answers.extend(batch.drain(..).map(|request| {
                    request.fail(StoreError::Sqlite {
                        context: "begin",
                        source: error.clone(),
                    })
                }));
                return answers;
            }
        };
        let mut changes = Vec::new();
        let result = apply_all(
            &mut tx,
            batch,
            &mut answers,
            capture,
            &mut changes,
            self.retention,
        )
        .and_then(|wrote| tx.commit().map(|()| wrote));
        match result {
            Ok(Some(last)) => {
                self.counters.commits.fetch_add(1, Ordering::AcqRel);
                // Nobody subscribed means nobody to tell; a later subscriber reads the log.
                if self.events.receiver_count() > 0 {
                    // Only fails when every receiver is gone meanwhile, which is fine.
                    let _ = self.events.send(Arc::new(EventBatch {
                        last,
                        events: changes,
                    }));
                }
            }
            Ok(None) => {}
            Err(error) => {
                let error = Arc::new(error);
                tracing::warn!(%error, "job store batch failed to commit");
                for answer in &mut answers {
                    answer.fail_success(&error);
                }
                answers.extend(batch.drain(..).map(|request| {
                    request.fail(StoreError::Sqlite {
                        context: "commit",
                        source: error.clone(),
                    })
                }));
            }
        }
        answers
    }
}

/// Applies every request of the batch; returns the last revision written, if any.
fn apply_all(
    tx: &mut Transaction<'_>,
    batch: &mut Vec<WriteRequest>,
    answers: &mut Vec<Answer>,
    capture: bool,
    changes: &mut Vec<WatchEvent>,
    retention: u64,
) -> rusqlite::Result<Option<u64>> {
    let (start, compacted) = read_counters(tx)?;
    let mut revision = start;
    for request in batch.drain(..) {
        answers.push(apply_one(tx, request, &mut revision, capture, changes));
    }
    if revision == start {
        return Ok(None);
    }
    finish_batch(tx, revision, compacted, retention)?;
    Ok(Some(revision))
}

fn read_counters(tx: &Transaction<'_>) -> rusqlite::Result<(u64, u64)> {
    let mut stmt = tx.prepare_cached(
        "SELECT (SELECT value FROM meta WHERE key = 'revision'), \
                (SELECT value FROM meta WHERE key = 'compacted_through')",
    )?;
    stmt.query_row([], |row| {
        Ok((
            to_revision(row.get::<_, Option<i64>>(0)?.unwrap_or(0)),
            to_revision(row.get::<_, Option<i64>>(1)?.unwrap_or(0)),
        ))
    })
}

/// Stores the new revision and drops the oldest events beyond the retention.
fn finish_batch(
    tx: &Transaction<'_>,
    revision: u64,
    compacted: u64,
    retention: u64,
) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'revision'")?
        .execute([to_sql_revision(revision)])?;
    // Every revision has exactly one event, so the log holds revision - compacted events.
    if revision.saturating_sub(compacted) > retention {
        let through = to_sql_revision(revision - retention);
        tx.prepare_cached("DELETE FROM events WHERE revision <= ?1")?
            .execute([through])?;
        tx.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'compacted_through'")?
            .execute([through])?;
    }
    Ok(())
}

/// Runs one request in its own savepoint and records its change.
fn apply_one(
    tx: &mut Transaction<'_>,
    request: WriteRequest,
    revision: &mut u64,
    capture: bool,
    changes: &mut Vec<WatchEvent>,
) -> Answer {
    let next = *revision + 1;
    match request {
        WriteRequest::Create { job, key, reply } => {
            let result = in_savepoint(tx, |conn| create(conn, job, key, next));
            let result = result.map(|outcome| match outcome {
                Ok(change) => {
                    *revision = next;
                    CreateOutcome::Created(record(change, capture, changes))
                }
                Err(existing) => CreateOutcome::Existing(existing),
            });
            Answer::Create(reply, result)
        }
        WriteRequest::Update {
            job,
            expected,
            reply,
        } => {
            let result = in_savepoint(tx, |conn| update(conn, job, expected, next)).map(|change| {
                *revision = next;
                record(change, capture, changes)
            });
            Answer::Update(reply, result)
        }
        WriteRequest::Delete {
            name,
            expected,
            reply,
        } => {
            let result =
                in_savepoint(tx, |conn| delete(conn, &name, expected, next)).map(|change| {
                    *revision = next;
                    if capture {
                        changes.push(WatchEvent {
                            kind: change.kind,
                            job: change.job,
                        });
                    }
                });
            Answer::Delete(reply, result)
        }
    }
}

/// Keeps a copy of the change for watchers (when any) and returns the job for the caller.
fn record(change: Change, capture: bool, changes: &mut Vec<WatchEvent>) -> StoredJob {
    if capture {
        changes.push(WatchEvent {
            kind: change.kind,
            job: change.job.clone(),
        });
    }
    change.job
}

fn in_savepoint<T>(
    tx: &mut Transaction<'_>,
    op: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let savepoint = tx.savepoint().map_err(StoreError::sqlite("savepoint"))?;
    // Dropping the savepoint without commit rolls back to it.
    let value = op(&savepoint)?;
    savepoint
        .commit()
        .map_err(StoreError::sqlite("release savepoint"))?;
    Ok(value)
}

/// `Ok(Ok(change))` when created, `Ok(Err(existing))` for a known idempotency key.
fn create(
    conn: &Connection,
    mut job: ProwJob,
    key: Option<String>,
    revision: u64,
) -> Result<Result<Change, StoredJob>, StoreError> {
    let name = job.name().to_owned();
    if let Some(key) = key.as_deref() {
        let existing = conn
            .prepare_cached("SELECT name, revision, body FROM jobs WHERE idempotency_key = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([key], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                })
                .optional()
            })
            .map_err(StoreError::sqlite("look up idempotency key"))?;
        if let Some((name, revision, body)) = existing {
            return super::row::decode(&name, revision, &body).map(Err);
        }
    }
    let taken = conn
        .prepare_cached("SELECT 1 FROM jobs WHERE name = ?1")
        .and_then(|mut stmt| stmt.exists([&name]))
        .map_err(StoreError::sqlite("look up job"))?;
    if taken {
        return Err(StoreError::AlreadyExists { name });
    }

    let meta = &mut job.metadata;
    meta.resource_version = Some(revision.to_string());
    if meta.uid.as_deref().is_none_or(str::is_empty) {
        meta.uid = Some(uuid::Uuid::new_v4().to_string());
    }
    if meta.creation_timestamp.is_none() {
        meta.creation_timestamp = Some(now());
    }
    normalize_times(&mut job);
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let created_at = job
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(0, |t| t.0.as_second());
    let body = serde_json::to_string(&job).map_err(StoreError::codec(&name))?;
    let cols = IndexColumns::of(&job);
    let sql_revision = to_sql_revision(revision);
    conn.prepare_cached(
        "INSERT INTO jobs (name, revision, idempotency_key, uid, created_at, job, job_type, state, agent, \
         cluster, org, repo, pull, complete, body) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            name,
            sql_revision,
            key,
            uid,
            created_at,
            cols.job,
            cols.job_type,
            cols.state,
            cols.agent,
            cols.cluster,
            cols.org,
            cols.repo,
            cols.pull,
            cols.complete,
            body,
        ])
    })
    .map_err(StoreError::sqlite("insert job"))?;
    let seq = conn.last_insert_rowid();
    insert_labels(conn, seq, &job)?;
    insert_event(conn, sql_revision, WatchEventKind::Created, &name, &body)?;
    Ok(Ok(Change {
        kind: WatchEventKind::Created,
        job: StoredJob { job, revision },
    }))
}

fn update(
    conn: &Connection,
    mut job: ProwJob,
    expected: u64,
    revision: u64,
) -> Result<Change, StoreError> {
    let name = job.name().to_owned();
    let (seq, current, uid, created_at) = conn
        .prepare_cached("SELECT seq, revision, uid, created_at FROM jobs WHERE name = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([&name], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                ))
            })
            .optional()
        })
        .map_err(StoreError::sqlite("look up job"))?
        .ok_or_else(|| StoreError::NotFound { name: name.clone() })?;
    let current = to_revision(current);
    if current != expected {
        return Err(StoreError::Conflict {
            name,
            expected,
            current,
        });
    }

    let meta = &mut job.metadata;
    meta.resource_version = Some(revision.to_string());
    meta.uid = Some(uid);
    meta.creation_timestamp = time_from_seconds(created_at);
    normalize_times(&mut job);
    let body = serde_json::to_string(&job).map_err(StoreError::codec(&name))?;
    let cols = IndexColumns::of(&job);
    let sql_revision = to_sql_revision(revision);
    conn.prepare_cached(
        "UPDATE jobs SET revision = ?2, job = ?3, job_type = ?4, state = ?5, agent = ?6, cluster = ?7, \
         org = ?8, repo = ?9, pull = ?10, complete = ?11, body = ?12 WHERE seq = ?1",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            seq,
            sql_revision,
            cols.job,
            cols.job_type,
            cols.state,
            cols.agent,
            cols.cluster,
            cols.org,
            cols.repo,
            cols.pull,
            cols.complete,
            body,
        ])
    })
    .map_err(StoreError::sqlite("update job"))?;
    delete_labels(conn, seq)?;
    insert_labels(conn, seq, &job)?;
    insert_event(conn, sql_revision, WatchEventKind::Updated, &name, &body)?;
    Ok(Change {
        kind: WatchEventKind::Updated,
        job: StoredJob { job, revision },
    })
}

fn delete(
    conn: &Connection,
    name: &str,
    expected: Option<u64>,
    revision: u64,
) -> Result<Change, StoreError> {
    let (seq, current, body) = conn
        .prepare_cached("SELECT seq, revision, body FROM jobs WHERE name = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([name], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })
            .optional()
        })
        .map_err(StoreError::sqlite("look up job"))?
        .ok_or_else(|| StoreError::NotFound {
            name: name.to_owned(),
        })?;
    let current = to_revision(current);
    if let Some(expected) = expected
        && expected != current
    {
        return Err(StoreError::Conflict {
            name: name.to_owned(),
            expected,
            current,
        });
    }

    // The delete event carries the last version, stamped with the delete's revision.
    let mut job: ProwJob = serde_json::from_str(&body).map_err(StoreError::codec(name))?;
    job.metadata.resource_version = Some(revision.to_string());
    let body = serde_json::to_string(&job).map_err(StoreError::codec(name))?;
    delete_labels(conn, seq)?;
    conn.prepare_cached("DELETE FROM jobs WHERE seq = ?1")
        .and_then(|mut stmt| stmt.execute([seq]))
        .map_err(StoreError::sqlite("delete job"))?;
    let sql_revision = to_sql_revision(revision);
    insert_event(conn, sql_revision, WatchEventKind::Deleted, name, &body)?;
    Ok(Change {
        kind: WatchEventKind::Deleted,
        job: StoredJob { job, revision },
    })
}

fn insert_labels(conn: &Connection, seq: i64, job: &ProwJob) -> Result<(), StoreError> {
    let Some(labels) = job
        .metadata
        .labels
        .as_ref()
        .filter(|labels| !labels.is_empty())
    else {
        return Ok(());
    };
    let mut stmt = conn
        .prepare_cached("INSERT INTO job_labels (seq, key, value) VALUES (?1, ?2, ?3)")
        .map_err(StoreError::sqlite("insert labels"))?;
    for (key, value) in labels {
        stmt.execute(params![seq, key, value])
            .map_err(StoreError::sqlite("insert labels"))?;
    }
    Ok(())
}

fn delete_labels(conn: &Connection, seq: i64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM job_labels WHERE seq = ?1")
        .and_then(|mut stmt| stmt.execute([seq]))
        .map(drop)
        .map_err(StoreError::sqlite("delete labels"))
}

fn insert_event(
    conn: &Connection,
    revision: i64,
    kind: WatchEventKind,
    name: &str,
    body: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO events (revision, kind, name, body) VALUES (?1, ?2, ?3, ?4)")
        .and_then(|mut stmt| stmt.execute(params![revision, kind_code(kind), name, body]))
        .map(drop)
        .map_err(StoreError::sqlite("insert event"))
}
