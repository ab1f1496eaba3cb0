//! The watch stream: replay from the event log, then follow the live broadcast.
//!
//! The stream subscribes to the broadcast before it reads the log, so every event committed
//! after the subscription arrives live and every event committed before it is in the log; events
//! seen twice are skipped by revision. When the live side falls behind (the broadcast lagged,
//! or a batch was published without its events) the stream reads the gap from the log again.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::stream;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use super::reader::{ReadPool, events_after};
use super::writer::EventBatch;
use crate::{StoreError, WatchEvent, WatchStream};

/// Events read from the log per query.
const LOG_PAGE: usize = 256;

enum Mode {
    /// Read the log after `last`.
    Log,
    /// Follow the broadcast.
    Live,
    /// The stream ended.
    Done,
}

struct Watch {
    readers: Arc<ReadPool>,
    live: broadcast::Receiver<Arc<EventBatch>>,
    /// The revision of the last event handed out (or queued in `ready`).
    last: u64,
    ready: VecDeque<WatchEvent>,
    mode: Mode,
}

/// A watch of every event after `from_revision`; `live` must be subscribed already.
pub(super) fn watch(
    readers: Arc<ReadPool>,
    live: broadcast::Receiver<Arc<EventBatch>>,
    from_revision: u64,
) -> WatchStream {
    let state = Watch {
        readers,
        live,
        last: from_revision,
        ready: VecDeque::new(),
        mode: Mode::Log,
    };
    Box::pin(stream::unfold(state, |mut state| async move {
        let item = state.next().await?;
        Some((item, state))
    }))
}

impl Watch {
    async fn next(&mut self) -> Option<Result<WatchEvent, StoreError>> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(Ok(event));
            }
            match self.mode {
                Mode::Done => return None,
                Mode::Log => {
                    let after = self.last;
                    match self
                        .readers
                        .run(move |conn| events_after(conn, after, LOG_PAGE))
                        .await
                    {
                        Ok(events) if events.is_empty() => self.mode = Mode::Live,
                        Ok(events) => self.queue(events),
                        Err(error) => {
                            self.mode = Mode::Done;
                            return Some(Err(error));
                        }
                    }
                }
                Mode::Live => match self.live.recv().await {
                    Ok(batch) => self.take_live(&batch),
                    Err(RecvError::Lagged(skipped)) => {
                        tracing::debug!(
                            skipped,
                            after = self.last,
                            "job store watch lagged, reading the log"
                        );
                        self.mode = Mode::Log;
                    }
                    Err(RecvError::Closed) => {
                        self.mode = Mode::Done;
                        return Some(Err(StoreError::Closed));
                    }
                },
            }
        }
    }

    /// Queues log events, which come in revision order starting right after `last`.
    fn queue(&mut self, events: Vec<WatchEvent>) {
        for event in events {
            if event.job.revision > self.last {
                self.last = event.job.revision;
                self.ready.push_back(event);
            }
        }
    }

    /// Queues the new events of a live batch, or goes back to the log on a gap.
    fn take_live(&mut self, batch: &EventBatch) {
        if batch.last <= self.last {
            return;
        }
        for event in &batch.events {
            let revision = event.job.revision;
            if revision <= self.last {
                continue;
            }
            if revision != self.last + 1 {
                break;
            }
            self.last = revision;
            self.ready.push_back(event.clone());
        }
        if self.last < batch.last {
            // Events are missing (not captured, or a gap): the log has them.
            self.mode = Mode::Log;
        }
    }
}
