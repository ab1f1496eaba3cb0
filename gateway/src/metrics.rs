//! Prometheus metrics, rendered by hand in the text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bosun_proto::ProwJobState;

#[derive(Default)]
struct Counters {
    submitted: AtomicU64,
    started: AtomicU64,
    finished: [AtomicU64; 7],
    queued: AtomicU64,
    running: AtomicU64,
    /// Labelled counters: (metric, rendered labels) → value.
    labelled: Mutex<BTreeMap<(&'static str, String), u64>>,
}

/// HELP texts of the labelled counters.
const LABELLED_HELP: &[(&str, &str)] = &[
    (
        "bosun_webhooks_total",
        "GitHub webhook deliveries, by event and outcome.",
    ),
    (
        "bosun_trigger_jobs_total",
        "Jobs created by triggers, by source (github, periodic, gerrit).",
    ),
    (
        "bosun_sinker_deleted_total",
        "Finished jobs deleted by the sinker, by reason.",
    ),
    (
        "bosun_config_reloads_total",
        "Configuration reloads, by result.",
    ),
];

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

    /// Adds one to the counter `metric` with `labels` (its HELP text must be in the table
    /// above). Label values are escaped.
    pub fn inc(&self, metric: &'static str, labels: &[(&str, &str)]) {
        let rendered = labels
            .iter()
            .map(|(k, v)| {
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                format!("{k}=\"{v}\"")
            })
            .collect::<Vec<_>>()
            .join(",");
        let mut map = self
            .inner
            .labelled
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *map.entry((metric, rendered)).or_insert(0) += 1;
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let c = &self.inner;
        let mut out = String::new();
        {
            let map = c.labelled.lock().unwrap_or_else(PoisonError::into_inner);
            for (metric, help) in LABELLED_HELP {
                let mut rows = map.iter().filter(|((m, _), _)| m == metric).peekable();
                if rows.peek().is_none() {
                    continue;
                }
                let _ = writeln!(out, "# HELP {metric} {help}");
                let _ = writeln!(out, "# TYPE {metric} counter");
                for ((_, labels), value) in rows {
                    let _ = writeln!(out, "{metric}{{{labels}}} {value}");
                }
            }
        }
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
