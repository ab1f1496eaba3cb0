//! Named, supervised tasks: every task the gateway spawns goes through [`Supervisor`], so it
//! has a name in the logs, is tracked for shutdown, and a crash of a critical task stops the
//! process instead of leaving a half-working gateway.

use std::future::Future;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// A critical task that ended (it should run until shutdown).
#[derive(Debug)]
pub struct CriticalExit {
    /// Task name.
    pub name: String,
    /// Why it ended.
    pub reason: String,
}

/// Spawns and tracks the gateway's tasks.
#[derive(Clone)]
pub struct Supervisor {
    tracker: TaskTracker,
    shutdown: CancellationToken,
    critical_tx: mpsc::UnboundedSender<CriticalExit>,
}

impl Supervisor {
    /// A supervisor and the receiver that reports critical task exits.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<CriticalExit>) {
        let (critical_tx, rx) = mpsc::unbounded_channel();
        (
            Self {
                tracker: TaskTracker::new(),
                shutdown: CancellationToken::new(),
                critical_tx,
            },
            rx,
        )
    }

    /// The token cancelled when the gateway shuts down.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Starts shutdown: every task watching the token stops.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits (up to `deadline`) for tracked tasks to end after shutdown.
    pub async fn drain(&self, deadline: std::time::Duration) -> bool {
        self.tracker.close();
        tokio::time::timeout(deadline, self.tracker.wait())
            .await
            .is_ok()
    }

    /// Spawns a task that may end on its own (a job runner, a stream). Panics are logged.
    pub fn spawn<F>(&self, name: impl Into<String>, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let name = name.into();
        let span = tracing::info_span!("task", task = %name);
        let inner = self.tracker.spawn(fut.instrument(span));
        let watcher_name = name.clone();
        self.tracker.spawn(async move {
            if let Err(e) = inner.await
                && e.is_panic()
            {
                tracing::error!(task = %watcher_name, "task panicked: {e}");
            }
        });
    }

    /// Spawns a task that must run until shutdown; if it ends earlier (error or panic) the
    /// process is told through the critical-exit channel.
    pub fn spawn_critical<F, E>(&self, name: impl Into<String>, fut: F)
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let name = name.into();
        let span = tracing::info_span!("task", task = %name);
        let inner = self.tracker.spawn(fut.instrument(span));
        let tx = self.critical_tx.clone();
        let shutdown = self.shutdown.clone();
        self.tracker.spawn(async move {
            let reason = match inner.await {
                Ok(Ok(())) if shutdown.is_cancelled() => return,
                Ok(Ok(())) => "ended unexpectedly".to_owned(),
                Ok(Err(e)) => e.to_string(),
                Err(e) => format!("panicked: {e}"),
            };
            let _ = tx.send(CriticalExit { name, reason });
        });
    }
}
