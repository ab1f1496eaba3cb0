//! The last-sync state (reference §6.3): per instance and project, the `updated` time of the
//! newest change the adapter has dealt with. Kept in `<data-dir>/gerrit-last-sync.json` as
//! Prow's `{"<instance>": {"<project>": "<RFC 3339 time>"}}`, written atomically (temporary
//! file, fsync, rename, fsync of the directory) whenever a time moves, and times only move
//! forward. A missing or unreadable file starts every project at "now" (no backfill); a
//! project added to the config later starts at its first poll.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use k8s_openapi::jiff::Timestamp;

use super::client::GerritTime;

/// The file name under the data directory.
pub const STATE_FILE: &str = "gerrit-last-sync.json";

/// Why the state could not be written.
#[derive(Debug, thiserror::Error)]
#[error("writing the gerrit last-sync state {}", path.display())]
pub struct StateError {
    /// The file.
    pub path: PathBuf,
    /// The IO error.
    #[source]
    pub source: std::io::Error,
}

/// The last-sync times, backed by a file.
#[derive(Debug)]
pub struct SyncState {
    path: PathBuf,
    times: BTreeMap<String, BTreeMap<String, GerritTime>>,
}

fn parse(text: &str) -> Option<BTreeMap<String, BTreeMap<String, GerritTime>>> {
    let raw: BTreeMap<String, BTreeMap<String, String>> = serde_json::from_str(text).ok()?;
    let mut out = BTreeMap::new();
    for (instance, projects) in raw {
        let mut parsed = BTreeMap::new();
        for (project, time) in projects {
            parsed.insert(project, GerritTime(time.parse::<Timestamp>().ok()?));
        }
        out.insert(instance, parsed);
    }
    Some(out)
}

impl SyncState {
    /// Reads `path`; a missing or unparsable file gives an empty state (every project will
    /// start at its first poll), with a warning for the unparsable case.
    pub fn load(path: PathBuf) -> Self {
        let times = match std::fs::read_to_string(&path) {
            Ok(text) => parse(&text).unwrap_or_else(|| {
                tracing::warn!(path = %path.display(), "gerrit last-sync state is unreadable; every project starts now (no backfill)");
                BTreeMap::new()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::info!(path = %path.display(), "no gerrit last-sync state yet; every project starts now (no backfill)");
                BTreeMap::new()
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the gerrit last-sync state; every project starts now (no backfill)");
                BTreeMap::new()
            }
        };
        SyncState { path, times }
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last sync of a project.
    pub fn get(&self, instance: &str, project: &str) -> Option<GerritTime> {
        self.times.get(instance)?.get(project).copied()
    }

    /// The last sync of a project, starting it at `now` (and persisting that) if it has none.
    pub fn get_or_start(
        &mut self,
        instance: &str,
        project: &str,
        now: GerritTime,
    ) -> Result<GerritTime, StateError> {
        if let Some(t) = self.get(instance, project) {
            return Ok(t);
        }
        self.times
            .entry(instance.to_owned())
            .or_default()
            .insert(project.to_owned(), now);
        self.persist()?;
        Ok(now)
    }

    /// Moves a project's last sync to `to` if that is later, persisting the change. Returns
    /// whether it moved.
    pub fn advance(
        &mut self,
        instance: &str,
        project: &str,
        to: GerritTime,
    ) -> Result<bool, StateError> {
        let projects = self.times.entry(instance.to_owned()).or_default();
        if projects.get(project).is_some_and(|current| *current >= to) {
            return Ok(false);
        }
        projects.insert(project.to_owned(), to);
        self.persist()?;
        Ok(true)
    }

    /// The JSON written to the file.
    pub fn to_json(&self) -> String {
        let raw: BTreeMap<&String, BTreeMap<&String, String>> = self
            .times
            .iter()
            .map(|(i, ps)| (i, ps.iter().map(|(p, t)| (p, t.to_string())).collect()))
            .collect();
        serde_json::to_string_pretty(&raw).unwrap_or_else(|_| "{}".to_owned())
    }

    /// Writes the whole state: a temporary file next to it, fsync, rename, fsync of the
    /// directory.
    pub fn persist(&self) -> Result<(), StateError> {
        let err = |source| StateError {
            path: self.path.clone(),
            source,
        };
        let dir = self.path.parent().unwrap_or_else(|| Path::new("."));
        let tmp = self.path.with_extension("json.tmp");
        {
            let mut file = std::fs::File::create(&tmp).map_err(err)?;
            file.write_all(self.to_json().as_bytes()).map_err(err)?;
            file.sync_all().map_err(err)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(err)?;
        if let Ok(d) = std::fs::File::open(dir) {
            d.sync_all().map_err(err)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> GerritTime {
        GerritTime::parse(s).expect("time")
    }

    #[test]
    fn file_round_trip_and_forward_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(STATE_FILE);
        let mut state = SyncState::load(path.clone());
        assert_eq!(state.get("https://r", "p"), None);
        let start = t("2024-05-01 10:00:00.0");
        assert_eq!(
            state.get_or_start("https://r", "p", start).expect("start"),
            start
        );
        assert!(path.exists(), "a new project's start is persisted at once");
        // Starting again keeps the first time.
        assert_eq!(
            state
                .get_or_start("https://r", "p", t("2030-01-01 00:00:00.0"))
                .expect("start"),
            start
        );
        let later = t("2024-05-01 10:00:05.123456789");
        assert!(state.advance("https://r", "p", later).expect("advance"));
        assert!(
            !state
                .advance("https://r", "p", t("2024-05-01 10:00:01.0"))
                .expect("advance"),
            "never backwards"
        );
        assert_eq!(state.get("https://r", "p"), Some(later));

        let text = std::fs::read_to_string(&path).expect("read");
        let json: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(json["https://r"]["p"], "2024-05-01T10:00:05.123456789Z");
        let reloaded = SyncState::load(path.clone());
        assert_eq!(reloaded.get("https://r", "p"), Some(later));
        assert!(!dir.path().join("gerrit-last-sync.json.tmp").exists());
    }

    #[test]
    fn unreadable_file_starts_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(STATE_FILE);
        std::fs::write(&path, "{not json").expect("write");
        let state = SyncState::load(path);
        assert_eq!(state.get("https://r", "p"), None);
        // Prow's own files (Go's RFC3339Nano) read fine.
        let parsed = parse(r#"{"https://r": {"p": "2024-05-01T10:00:05.1Z"}}"#).expect("parse");
        assert_eq!(parsed["https://r"]["p"], t("2024-05-01 10:00:05.1"));
    }
}
