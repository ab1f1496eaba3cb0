//! Read-only connections and the queries that run on them.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension};
use tokio::sync::Semaphore;

use super::row::{
    decode, decode_page_token, encode_page_token, kind_from_code, to_revision, to_sql_revision,
};
use super::schema::open_reader;
use crate::{ListFilter, Page, StoreError, StoredJob, WatchEvent};

/// A small pool of read-only connections used from blocking threads. WAL mode lets them read
/// while the writer commits; each query sees one committed snapshot.
pub(super) struct ReadPool {
    path: PathBuf,
    busy_timeout: Duration,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl ReadPool {
    pub fn new(path: PathBuf, busy_timeout: Duration, size: usize) -> Self {
        ReadPool {
            path,
            busy_timeout,
            idle: Mutex::new(Vec::with_capacity(size)),
            permits: Arc::new(Semaphore::new(size)),
        }
    }

    /// Runs `query` on a pooled connection in the blocking thread pool.
    pub async fn run<T, F>(self: &Arc<Self>, query: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let pool = Arc::clone(self);
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let idle = pool
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let mut conn = match idle {
                Some(conn) => conn,
                None => open_reader(&pool.path, pool.busy_timeout)?,
            };
            let result = query(&mut conn);
            pool.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
            result
        });
        match task.await {
            Ok(result) => result,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => Err(StoreError::Closed),
        }
    }
}

pub(super) fn get(conn: &Connection, name: &str) -> Result<StoredJob, StoreError> {
    let row = conn
        .prepare_cached("SELECT revision, body FROM jobs WHERE name = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([name], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
            })
            .optional()
        })
        .map_err(StoreError::sqlite("get job"))?;
    match row {
        Some((revision, body)) => decode(name, revision, &body),
        None => Err(StoreError::NotFound {
            name: name.to_owned(),
        }),
    }
}

pub(super) fn current_revision(conn: &Connection) -> Result<u64, StoreError> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = 'revision'")
        .and_then(|mut stmt| stmt.query_row([], |row| row.get::<_, i64>(0)))
        .map(to_revision)
        .map_err(StoreError::sqlite("read revision"))
}

/// One page of jobs matching `filter` created after the job at `page_token`.
pub(super) fn list(
    conn: &mut Connection,
    filter: &ListFilter,
    page_size: usize,
    page_token: Option<&str>,
) -> Result<Page, StoreError> {
    let after = page_token.map(decode_page_token).transpose()?.unwrap_or(0);
    let tx = conn
        .transaction()
        .map_err(StoreError::sqlite("begin read"))?;
    let revision = current_revision(&tx)?;
    let driving_label = if has_column_filter(filter) {
        None
    } else {
        rarest_label(&tx, filter, after)?
    };
    let (sql, params) = list_query(filter, driving_label, after, page_size);
    let mut stmt = tx
        .prepare_cached(&sql)
        .map_err(StoreError::sqlite("prepare list"))?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(params))
        .map_err(StoreError::sqlite("list jobs"))?;
    let mut jobs = Vec::with_capacity(page_size.min(64));
    let mut last_seq = None;
    let mut more = false;
    while let Some(row) = rows.next().map_err(StoreError::sqlite("list jobs"))? {
        if jobs.len() == page_size {
            more = true;
            break;
        }
        let read = || -> rusqlite::Result<(i64, String, i64, String)> {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        };
        let (seq, name, revision, body) = read().map_err(StoreError::sqlite("list jobs"))?;
        jobs.push(decode(&name, revision, &body)?);
        last_seq = Some(seq);
    }
    let next_page_token = if more {
        last_seq.map(encode_page_token)
    } else {
        None
    };
    Ok(Page {
        jobs,
        next_page_token,
        revision,
    })
}

/// Whether the filter has an equality on an indexed `jobs` column.
fn has_column_filter(filter: &ListFilter) -> bool {
    filter.job.is_some()
        || filter.job_type.is_some()
        || filter.state.is_some()
        || filter.agent.is_some()
        || filter.cluster.is_some()
        || filter.org.is_some()
        || filter.repo.is_some()
        || filter.pull.is_some()
}

/// Label pairs counted (at most) to choose the one to walk.
const LABEL_PROBE: i64 = 2048;

/// The label pair with the fewest jobs after `after` (counting up to [`LABEL_PROBE`]), or the
/// only one; `None` without labels.
fn rarest_label<'f>(
    conn: &Connection,
    filter: &'f ListFilter,
    after: i64,
) -> Result<Option<(&'f str, &'f str)>, StoreError> {
    if filter.labels.len() < 2 {
        return Ok(filter
            .labels
            .iter()
            .next()
            .map(|(k, v)| (k.as_str(), v.as_str())));
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT count(*) FROM (SELECT 1 FROM job_labels WHERE key = ?1 AND value = ?2 AND seq > ?3 LIMIT ?4)",
        )
        .map_err(StoreError::sqlite("probe labels"))?;
    let mut best: Option<((&str, &str), i64)> = None;
    for (key, value) in &filter.labels {
        let count: i64 = stmt
            .query_row(rusqlite::params![key, value, after, LABEL_PROBE], |row| {
                row.get(0)
            })
            .map_err(StoreError::sqlite("probe labels"))?;
        if best.is_none_or(|(_, fewest)| count < fewest) {
            best = Some(((key.as_str(), value.as_str()), count));
        }
    }
    Ok(best.map(|(pair, _)| pair))
}

/// Builds the list query; one extra row tells whether another page exists.
///
/// With a column filter, SQLite walks that column's `(column, seq)` index in creation order and
/// checks labels per row. With only labels, it walks the `driving` label's `(key, value, seq)`
/// index instead. Either way the walk is in creation order and stops after one page.
fn list_query(
    filter: &ListFilter,
    driving: Option<(&str, &str)>,
    after: i64,
    page_size: usize,
) -> (String, Vec<Value>) {
    const COLUMNS: &str = "SELECT j.seq, j.name, j.revision, j.body";
    let mut params = Vec::new();
    let (mut sql, order) = match driving {
        Some((key, value)) => {
            params.push(Value::Text(key.to_owned()));
            params.push(Value::Text(value.to_owned()));
            (
                format!(
                    "{COLUMNS} FROM job_labels AS l JOIN jobs AS j ON j.seq = l.seq \
                     WHERE l.key = ? AND l.value = ? AND l.seq > ?"
                ),
                " ORDER BY l.seq LIMIT ?",
            )
        }
        None => (
            format!("{COLUMNS} FROM jobs AS j WHERE j.seq > ?"),
            " ORDER BY j.seq LIMIT ?",
        ),
    };
    params.push(Value::Integer(after));

    let mut eq = |column: &str, value: Value| {
        sql.push_str(" AND j.");
        sql.push_str(column);
        sql.push_str(" = ?");
        params.push(value);
    };
    if let Some(job) = &filter.job {
        eq("job", Value::Text(job.clone()));
    }
    if let Some(job_type) = filter.job_type {
        eq("job_type", Value::Text(job_type.as_str().to_owned()));
    }
    if let Some(state) = filter.state {
        eq("state", Value::Text(state.as_str().to_owned()));
    }
    if let Some(agent) = &filter.agent {
        eq("agent", Value::Text(agent.clone()));
    }
    if let Some(cluster) = &filter.cluster {
        let alias = if cluster.is_empty() {
            bosun_proto::prowjob::DEFAULT_CLUSTER_ALIAS
        } else {
            cluster.as_str()
        };
        eq("cluster", Value::Text(alias.to_owned()));
    }
    if let Some(org) = &filter.org {
        eq("org", Value::Text(org.clone()));
    }
    if let Some(repo) = &filter.repo {
        eq("repo", Value::Text(repo.clone()));
    }
    if let Some(pull) = filter.pull {
        eq("pull", Value::Integer(pull));
    }
    if filter.incomplete_only {
        // A literal, so the partial index `jobs_incomplete` applies.
        sql.push_str(" AND j.complete = 0");
    }
    for (key, value) in &filter.labels {
        if driving == Some((key.as_str(), value.as_str())) {
            continue;
        }
        sql.push_str(" AND EXISTS (SELECT 1 FROM job_labels AS x WHERE x.seq = j.seq AND x.key = ? AND x.value = ?)");
        params.push(Value::Text(key.clone()));
        params.push(Value::Text(value.clone()));
    }
    sql.push_str(order);
    params.push(Value::Integer(
        i64::try_from(page_size)
            .unwrap_or(i64::MAX)
            .saturating_add(1),
    ));
    (sql, params)
}

/// Up to `limit` events with a revision above `after`, or `Compacted` when some of them were
/// already discarded. Runs in one read transaction, so the check and the rows agree.
pub(super) fn events_after(
    conn: &mut Connection,
    after: u64,
    limit: usize,
) -> Result<Vec<WatchEvent>, StoreError> {
    let tx = conn
        .transaction()
        .map_err(StoreError::sqlite("begin read"))?;
    let compacted = tx
        .prepare_cached("SELECT value FROM meta WHERE key = 'compacted_through'")
        .and_then(|mut stmt| stmt.query_row([], |row| row.get::<_, i64>(0)))
        .map(to_revision)
        .map_err(StoreError::sqlite("read compaction"))?;
    if after < compacted {
        return Err(StoreError::Compacted {
            requested: after,
            oldest: compacted + 1,
        });
    }
    let mut stmt = tx
        .prepare_cached("SELECT revision, kind, name, body FROM events WHERE revision > ?1 ORDER BY revision LIMIT ?2")
        .map_err(StoreError::sqlite("read events"))?;
    let mut rows = stmt
        .query(rusqlite::params![
            to_sql_revision(after),
            i64::try_from(limit).unwrap_or(i64::MAX)
        ])
        .map_err(StoreError::sqlite("read events"))?;
    let mut events = Vec::new();
    while let Some(row) = rows.next().map_err(StoreError::sqlite("read events"))? {
        let read = || -> rusqlite::Result<(i64, i64, String, String)> {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        };
        let (revision, kind, name, body) = read().map_err(StoreError::sqlite("read events"))?;
        let kind = kind_from_code(kind).ok_or_else(|| {
            StoreError::Corrupt(format!("event {revision} has unknown kind {kind}"))
        })?;
        events.push(WatchEvent {
            kind,
            job: decode(&name, revision, &body)?,
        });
    }
    Ok(events)
}
