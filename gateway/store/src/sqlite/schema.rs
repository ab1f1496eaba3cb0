//! Connections, pragmas and the versioned schema.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::StoreError;

/// The schema version this build writes and understands.
pub(super) const SCHEMA_VERSION: i64 = 1;

/// Migrations, index = version - 1. Each runs in the same transaction as the version bump.
const MIGRATIONS: &[&str] = &[
    // 1: jobs with their filter columns, labels, the event log, counters.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO meta (key, value) VALUES ('revision', 0), ('compacted_through', 0);

    CREATE TABLE jobs (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
        name            TEXT NOT NULL UNIQUE,
        revision        INTEGER NOT NULL,
        idempotency_key TEXT UNIQUE,
        uid             TEXT NOT NULL,
        created_at      INTEGER NOT NULL,
        job             TEXT NOT NULL,
        job_type        TEXT NOT NULL,
        state           TEXT NOT NULL,
        agent           TEXT NOT NULL,
        cluster         TEXT NOT NULL,
        org             TEXT,
        repo            TEXT,
        pull            INTEGER,
        complete        INTEGER NOT NULL,
        body            TEXT NOT NULL
    );
    CREATE INDEX jobs_by_job      ON jobs (job, seq);
    CREATE INDEX jobs_by_type     ON jobs (job_type, seq);
    CREATE INDEX jobs_by_state    ON jobs (state, seq);
    CREATE INDEX jobs_by_agent    ON jobs (agent, seq);
    CREATE INDEX jobs_by_cluster  ON jobs (cluster, seq);
    CREATE INDEX jobs_by_org      ON jobs (org, seq);
    CREATE INDEX jobs_by_repo     ON jobs (repo, seq);
    CREATE INDEX jobs_by_pull     ON jobs (pull, seq);
    CREATE INDEX jobs_incomplete  ON jobs (seq) WHERE complete = 0;

    CREATE TABLE job_labels (
        seq   INTEGER NOT NULL,
        key   TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (seq, key)
    ) WITHOUT ROWID;
    CREATE INDEX job_labels_by_pair ON job_labels (key, value, seq);

    CREATE TABLE events (
        revision INTEGER PRIMARY KEY,
        kind     INTEGER NOT NULL,
        name     TEXT NOT NULL,
        body     TEXT NOT NULL
    );
    "#,
];

/// Opens the read-write connection, creating the file and bringing the schema up to date.
pub(super) fn open_writer(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(StoreError::sqlite("open"))?;
    conn.busy_timeout(busy_timeout)
        .map_err(StoreError::sqlite("set busy_timeout"))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(StoreError::sqlite("enable WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Invalid(format!(
            "{} cannot use write-ahead logging (journal mode is {mode})",
            path.display()
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(StoreError::sqlite("set synchronous"))?;
    // Savepoint and statement journals (the undo copies that let one request of a batch fail
    // alone) stay in memory: on disk they spilled to a temp file once a savepoint touched more
    // than 64 KiB of pages, and those writes outnumbered the WAL's ten to one. They are
    // discarded at commit either way; durability is the WAL's.
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(StoreError::sqlite("set temp_store"))?;
    migrate(&mut conn)?;
    // Keep planner statistics fresh cheaply (SQLite's advice for long-lived connections).
    conn.execute_batch("PRAGMA analysis_limit = 1000; PRAGMA optimize = 0x10002;")
        .map_err(StoreError::sqlite("optimize"))?;
    Ok(conn)
}

/// Opens a read-only connection to a database the writer already set up.
pub(super) fn open_reader(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn =
        Connection::open_with_flags(path, flags).map_err(StoreError::sqlite("open reader"))?;
    conn.busy_timeout(busy_timeout)
        .map_err(StoreError::sqlite("set busy_timeout"))?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::sqlite("begin migration"))?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .map_err(StoreError::sqlite("create schema_version"))?;
    let current: i64 = tx
        .query_row("SELECT version FROM schema_version", [], |row| row.get(0))
        .optional()
        .map_err(StoreError::sqlite("read schema version"))?
        .unwrap_or(0);
    if current > SCHEMA_VERSION {
        return Err(StoreError::Invalid(format!(
            "database schema version {current} is newer than this build supports ({SCHEMA_VERSION})"
        )));
    }
    if current == SCHEMA_VERSION {
        return Ok(());
    }
    for (index, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(current).unwrap_or(0))
    {
        tracing::info!(version = index + 1, "migrating job store schema");
        tx.execute_batch(sql)
            .map_err(StoreError::sqlite("migrate schema"))?;
    }
    tx.execute("DELETE FROM schema_version", [])
        .map_err(StoreError::sqlite("write schema version"))?;
    tx.execute(
        "INSERT INTO schema_version (version) VALUES (?1)",
        [SCHEMA_VERSION],
    )
    .map_err(StoreError::sqlite("write schema version"))?;
    tx.commit().map_err(StoreError::sqlite("commit migration"))
}
