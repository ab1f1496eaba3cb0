//! Prometheus metrics, rendered by hand in the text exposition format.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bosun_proto::ProwJobState;

#[derive(Default)]
struct Counters {
    submitted: AtomicU64,
    started: AtomicU64,
    finished: [AtomicU64; 7],
    queued: AtomicU64,
    running: AtomicU64,
}

/// The gateway's counters and gauges (cheap to clone).
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Arc<Counters>,
}

fn state_index(state: ProwJobState) -> usize {
    ProwJobState::ALL
        .iter()
        .position(|s| *s == state)
        .unwrap_or(0)
}

impl Metrics {
    /// A job was accepted by the API.
    pub fn job_submitted(&self) {
        self.inner.submitted.fetch_add(1, Ordering::Relaxed);
    }
    /// A job's workload was created.
    pub fn job_started(&self) {
        self.inner.started.fetch_add(1, Ordering::Relaxed);
    }
    /// A job completed in `state`.
    pub fn job_finished(&self, state: ProwJobState) {
        self.inner.finished[state_index(state)].fetch_add(1, Ordering::Relaxed);
    }
    /// Current queue depth and running count.
    pub fn set_queue_depth(&self, queued: usize, running: usize) {
        self.inner.queued.store(queued as u64, Ordering::Relaxed);
        self.inner.running.store(running as u64, Ordering::Relaxed);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let c = &self.inner;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP bosun_jobs_submitted_total Jobs accepted by the API."
        );
        let _ = writeln!(out, "# TYPE bosun_jobs_submitted_total counter");
        let _ = writeln!(
            out,
            "bosun_jobs_submitted_total {}",
            c.submitted.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# HELP bosun_jobs_started_total Workloads created.");
        let _ = writeln!(out, "# TYPE bosun_jobs_started_total counter");
        let _ = writeln!(
            out,
            "bosun_jobs_started_total {}",
            c.started.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP bosun_jobs_finished_total Jobs completed, by final state."
        );
        let _ = writeln!(out, "# TYPE bosun_jobs_finished_total counter");
        for state in ProwJobState::ALL.iter().filter(|s| s.is_final()) {
            let _ = writeln!(
                out,
                "bosun_jobs_finished_total{{state=\"{state}\"}} {}",
                c.finished[state_index(*state)].load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP bosun_jobs_queued Triggered jobs waiting for a slot."
        );
        let _ = writeln!(out, "# TYPE bosun_jobs_queued gauge");
        let _ = writeln!(
            out,
            "bosun_jobs_queued {}",
            c.queued.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP bosun_jobs_running Jobs with an active workload."
        );
        let _ = writeln!(out, "# TYPE bosun_jobs_running gauge");
        let _ = writeln!(
            out,
            "bosun_jobs_running {}",
            c.running.load(Ordering::Relaxed)
        );
        out
    }
}
