//! WAL checkpoints off the write path.
//!
//! By default SQLite checkpoints inside the commit that pushes the WAL past 1000 pages, so one
//! unlucky write waits for the copy into the database file (and its fsync): tens of
//! milliseconds on the writer thread, which every queued write then waits for too. Here the
//! writer's automatic checkpoint is pushed out to a safety net ([`WRITER_SAFETY_NET_PAGES`])
//! and a thread of its own runs a `PASSIVE` checkpoint every [`INTERVAL`], which never blocks
//! the writer or readers. Durability is unchanged: a commit is durable once its WAL frames are
//! synced (`synchronous=FULL`); checkpoints only move pages into the main file.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// How often the checkpointer runs.
pub(super) const INTERVAL: Duration = Duration::from_millis(200);
/// The writer still checkpoints by itself past this many WAL pages (if the checkpointer
/// cannot keep up, e.g. long-running readers pin old frames).
pub(super) const WRITER_SAFETY_NET_PAGES: u32 = 16_384;

/// Runs until `stop` is dropped.
pub(super) fn run(path: PathBuf, busy_timeout: Duration, stop: mpsc::Receiver<()>) {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match Connection::open_with_flags(&path, flags) {
        Ok(c) => c,
        Err(error) => {
            tracing::warn!(%error, "WAL checkpointer cannot open the store; the writer checkpoints instead");
            return;
        }
    };
    let _ = conn.busy_timeout(busy_timeout);
    loop {
        match stop.recv_timeout(INTERVAL) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(%error, "passive WAL checkpoint");
        }
    }
}

/// Configures the writer connection to leave routine checkpoints to [`run`].
pub(super) fn configure_writer(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "wal_autocheckpoint", WRITER_SAFETY_NET_PAGES)
}
