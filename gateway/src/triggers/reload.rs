//! Config reload: `config.yaml`, the job config (file or directory tree) and `plugins.yaml`
//! are watched (inotify through the `notify` crate, with a slow re-check as a safety net), and a
//! change is applied without a restart.
//!
//! A change is loaded and validated completely first (Prow's strict loading, every problem);
//! only a valid configuration is put in force, as a whole. An invalid one is refused: each
//! problem is logged with its file, job and field, `bosun_config_reloads_total{result="error"}`
//! counts it, and the previous configuration keeps running.
//!
//! What a reload changes: job definitions and presets (Trigger RPC, GitHub trigger, Gerrit),
//! periodics (horologium), trigger settings (plugins.yaml), sinker ages and the dispatcher's
//! `plank` limits and timeouts. Reporter settings and the `bosun:` block are read at start.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::plugins::PluginConfig;
use super::{ConfigHandle, Live};
use crate::dispatcher::Dispatcher;
use crate::metrics::Metrics;

/// Changes settle for this long before a reload (editors write in several steps).
const SETTLE: Duration = Duration::from_millis(300);
/// The safety-net re-check when no file event arrives (a watch can miss changes on some
/// filesystems, e.g. network mounts).
const RECHECK: Duration = Duration::from_secs(30);

/// What is watched and where it goes.
pub struct Reloader {
    /// `--config-path`.
    pub config_path: PathBuf,
    /// `--job-config-path`.
    pub job_config_path: Option<PathBuf>,
    /// `--plugin-config`.
    pub plugin_config: Option<PathBuf>,
    /// The configuration in force.
    pub config: ConfigHandle,
    /// The plugin configuration in force.
    pub plugins: Live<PluginConfig>,
    /// Gets the new `plank` limits.
    pub dispatcher: Dispatcher,
    /// Reload counters.
    pub metrics: Metrics,
    /// The watched files as they were just before the configuration in force was loaded
    /// ([`fingerprint`]): a change made between that load and the start of the watch is
    /// applied as soon as the watch starts instead of waiting for another change.
    pub loaded: Fingerprint,
}

/// What a reload attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The new configuration is in force.
    Applied,
    /// The change was refused; the old configuration stays. Holds every problem.
    Refused(Vec<String>),
}

/// A cheap summary of the watched files (path, size, modification time).
pub type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// The fingerprint of the files a reloader watches: `config_path`, every file below
/// `job_config_path` and `plugin_config`.
pub fn fingerprint(
    config_path: &Path,
    job_config_path: Option<&Path>,
    plugin_config: Option<&Path>,
) -> Fingerprint {
    let mut out = Vec::new();
    let roots = std::iter::once(config_path)
        .chain(job_config_path)
        .chain(plugin_config);
    for root in roots {
        for entry in walkdir(root) {
            let meta = std::fs::metadata(&entry).ok();
            out.push((
                entry,
                meta.as_ref().map(|m| m.len()).unwrap_or(0),
                meta.and_then(|m| m.modified().ok()),
            ));
        }
    }
    out.sort();
    out
}

impl Reloader {
    fn watched(&self) -> Vec<PathBuf> {
        let mut v = vec![self.config_path.clone()];
        v.extend(self.job_config_path.clone());
        v.extend(self.plugin_config.clone());
        v
    }

    fn fingerprint(&self) -> Fingerprint {
        fingerprint(
            &self.config_path,
            self.job_config_path.as_deref(),
            self.plugin_config.as_deref(),
        )
    }

    /// Loads everything again and, if valid, puts it in force.
    pub fn reload(&self) -> ReloadOutcome {
        let mut problems = Vec::new();
        let loaded =
            match bosun_gateway_config::load(&self.config_path, self.job_config_path.as_deref()) {
                Ok(l) => Some(l),
                Err(errors) => {
                    problems.extend(errors.problems.iter().map(ToString::to_string));
                    None
                }
            };
        let plugins = match &self.plugin_config {
            Some(path) => match PluginConfig::load(path) {
                Ok(p) => Some(p),
                Err(e) => {
                    problems.push(e.to_string());
                    None
                }
            },
            None => None,
        };
        if !problems.is_empty() {
            return ReloadOutcome::Refused(problems);
        }
        if let Some(loaded) = loaded {
            for w in loaded.warnings() {
                tracing::warn!("config: {w}");
            }
            self.dispatcher
                .set_config(crate::trigger::dispatcher_config(&loaded));
            tracing::info!(jobs = loaded.jobs().job_count(), "configuration reloaded");
            self.config.replace(loaded);
        }
        if let Some(p) = plugins {
            self.plugins.replace(p);
        }
        ReloadOutcome::Applied
    }

    /// Watches the files until `shutdown`, reloading on every settled change.
    pub async fn run(self, shutdown: CancellationToken) {
        let (tx, mut rx) = mpsc::unbounded_channel::<()>();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                // Opening and reading files are events too (the re-check's own directory
                // listing would wake the loop again and again): only changes count.
                if event.is_ok_and(|e| !e.kind.is_access()) {
                    let _ = tx.send(());
                }
            });
        match &mut watcher {
            Ok(w) => {
                for path in self.watched() {
                    // Watch the directory holding a file: editors and Kubernetes ConfigMaps
                    // replace files by renaming, which a watch on the file itself misses.
                    let (target, mode) = if path.is_dir() {
                        (path.clone(), RecursiveMode::Recursive)
                    } else {
                        (
                            path.parent()
                                .filter(|p| !p.as_os_str().is_empty())
                                .map(Path::to_path_buf)
                                .unwrap_or_else(|| PathBuf::from(".")),
                            RecursiveMode::NonRecursive,
                        )
                    };
                    if let Err(e) = w.watch(&target, mode) {
                        tracing::warn!(path = %target.display(), "cannot watch for config changes: {e}; re-checking every {RECHECK:?}");
                    }
                }
            }
            Err(e) => {
                tracing::warn!("cannot watch config files: {e}; re-checking every {RECHECK:?}")
            }
        }
        // The watch is in place: anything changed since the configuration in force was loaded
        // is compared right away, later changes arrive as events.
        let mut seen = self.loaded.clone();
        loop {
            // Let a burst of writes settle, then take everything that queued up meanwhile.
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(SETTLE) => {}
            }
            while rx.try_recv().is_ok() {}
            let now = self.fingerprint();
            if now != seen {
                seen = now;
                self.apply_change();
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                event = rx.recv() => {
                    if event.is_none() {
                        return;
                    }
                }
                // A periodic timer, not a readiness wait: the safety-net re-check for watches
                // that miss changes (see RECHECK); a file event ends the wait early.
                _ = tokio::time::sleep(RECHECK) => {}
            }
        }
    }

    /// Reloads after a change on disk, counting and logging the result.
    fn apply_change(&self) {
        match self.reload() {
            ReloadOutcome::Applied => {
                self.metrics
                    .inc("bosun_config_reloads_total", &[("result", "ok")]);
            }
            ReloadOutcome::Refused(problems) => {
                self.metrics
                    .inc("bosun_config_reloads_total", &[("result", "error")]);
                tracing::error!(
                    "configuration change refused ({} problem{}); the previous configuration stays in force",
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" }
                );
                for p in problems {
                    tracing::error!("config: {p}");
                }
            }
        }
    }
}

/// `root` itself, or every file below it.
fn walkdir(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        match std::fs::read_dir(&p) {
            Ok(entries) => {
                for e in entries.flatten() {
                    stack.push(e.path());
                }
            }
            Err(_) => out.push(p),
        }
    }
    out
}
