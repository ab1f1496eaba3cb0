//! Recording what each reporter reported: `status.prev_report_states[reporter] = state`,
//! written by compare-and-swap.
//!
//! Several reporters usually finish reporting the same state change of a job moments apart.
//! Written one by one, each mark is a full job write that conflicts with the others and is
//! retried; here marks for one job are coalesced like a group commit: while one write for the
//! job is in flight, marks that arrive for it wait and go together in the next write. Every
//! caller returns only once its mark is durable, so a restart never repeats a report whose mark
//! was acknowledged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bosun_gateway_store::{JobStore, StoreError, StoredJob};
use bosun_proto::ProwJobState;
use tokio::sync::oneshot;

/// What a mark write ended with: the revision of a version that carries the marks (`None` when
/// the job is gone), or why it failed.
type MarkResult = Result<Option<u64>, String>;
type Waiter = oneshot::Sender<MarkResult>;

#[derive(Default)]
struct Pending {
    /// A write for this job is in flight (its leader picks up new marks when it is done).
    in_flight: bool,
    marks: Vec<(String, ProwJobState)>,
    waiters: Vec<Waiter>,
}

/// Coalesces and persists report marks.
pub(crate) struct ReportMarks {
    store: Arc<dyn JobStore>,
    pending: Mutex<HashMap<String, Pending>>,
}

/// Compare-and-swap attempts before a mark is given up (the lane retries later).
const MAX_CONFLICTS: u32 = 20;

impl ReportMarks {
    pub(crate) fn new(store: Arc<dyn JobStore>) -> Self {
        Self {
            store,
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Records that `reporter` reported `state` for job `name`. `seen` is the version the
    /// reporter read (tried first, saving a read when nothing changed meanwhile). Returns the
    /// revision of a stored version carrying the mark (every later version carries it too), or
    /// `None` when the job was deleted.
    pub(crate) async fn mark(
        &self,
        name: &str,
        reporter: &str,
        state: ProwJobState,
        seen: Option<StoredJob>,
    ) -> MarkResult {
        let (tx, rx) = oneshot::channel();
        let lead = {
            let mut pending = self.lock();
            let entry = pending.entry(name.to_owned()).or_default();
            entry.marks.push((reporter.to_owned(), state));
            entry.waiters.push(tx);
            let lead = !entry.in_flight;
            entry.in_flight = true;
            lead
        };
        if lead {
            let mut seen = seen;
            loop {
                let (marks, waiters) = {
                    let mut pending = self.lock();
                    let Some(entry) = pending.get_mut(name) else {
                        break;
                    };
                    if entry.marks.is_empty() {
                        pending.remove(name);
                        break;
                    }
                    (
                        std::mem::take(&mut entry.marks),
                        std::mem::take(&mut entry.waiters),
                    )
                };
                let result = self
                    .write(name, &marks, seen.take())
                    .await
                    .map_err(|e| e.to_string());
                for waiter in waiters {
                    let _ = waiter.send(result.clone());
                }
            }
        }
        rx.await
            .unwrap_or_else(|_| Err("report mark dropped".to_owned()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One compare-and-swap write of `marks`, re-reading on conflict.
    async fn write(
        &self,
        name: &str,
        marks: &[(String, ProwJobState)],
        seen: Option<StoredJob>,
    ) -> Result<Option<u64>, StoreError> {
        let mut candidate = seen;
        let mut conflicts = 0u32;
        loop {
            let stored = match candidate.take() {
                Some(s) => s,
                None => match self.store.get(name).await {
                    Ok(s) => s,
                    Err(StoreError::NotFound { .. }) => return Ok(None),
                    Err(e) => return Err(e),
                },
            };
            let mut job = stored.job;
            let status = job.status.get_or_insert_with(Default::default);
            let mut changed = false;
            for (reporter, state) in marks {
                if status.prev_report_states.get(reporter) != Some(state) {
                    status.prev_report_states.insert(reporter.clone(), *state);
                    changed = true;
                }
            }
            if !changed {
                return Ok(Some(stored.revision));
            }
            match self.store.update(job, stored.revision).await {
                Ok(written) => return Ok(Some(written.revision)),
                Err(StoreError::Conflict { .. }) if conflicts < MAX_CONFLICTS => conflicts += 1,
                Err(StoreError::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }
}
