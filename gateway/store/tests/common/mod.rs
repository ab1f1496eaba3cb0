//! Helpers shared by the store's integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use bosun_gateway_store::{SqliteJobStore, SqliteOptions, StoredJob};
use bosun_proto::{ProwJob, ProwJobSpec, ProwJobType, Pull, Refs};
use futures::StreamExt;
use tempfile::TempDir;

/// Deadline for anything a test waits on.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A store in a fresh temporary directory; keep the `TempDir` alive while using the store.
pub fn open(options: SqliteOptions) -> (TempDir, PathBuf, SqliteJobStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested").join("store.db");
    let store = SqliteJobStore::open(&path, options).expect("open store");
    (dir, path, store)
}

/// A store with default options.
pub fn open_default() -> (TempDir, PathBuf, SqliteJobStore) {
    open(SqliteOptions::default())
}

/// A periodic job named `name` running job `job`.
pub fn job(name: &str, job: &str) -> ProwJob {
    let mut pj = ProwJob::new(
        name,
        ProwJobSpec {
            r#type: ProwJobType::Periodic,
            job: job.to_owned(),
            agent: "kubernetes".to_owned(),
            ..ProwJobSpec::default()
        },
    );
    pj.metadata.namespace = Some("default".to_owned());
    pj
}

/// A presubmit for `org/repo#pull`.
pub fn presubmit(name: &str, job_name: &str, org: &str, repo: &str, pull: i64) -> ProwJob {
    let mut pj = job(name, job_name);
    pj.spec.r#type = ProwJobType::Presubmit;
    pj.spec.refs = Some(Refs {
        org: org.to_owned(),
        repo: repo.to_owned(),
        base_ref: "main".to_owned(),
        pulls: vec![Pull {
            number: pull,
            author: "alice".to_owned(),
            sha: "abc".to_owned(),
            ..Pull::default()
        }],
        ..Refs::default()
    });
    pj
}

/// Sets labels on a job.
pub fn with_labels(mut job: ProwJob, labels: &[(&str, &str)]) -> ProwJob {
    job.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    );
    job
}

/// The JSON form, for comparing jobs.
pub fn json(job: &StoredJob) -> serde_json::Value {
    serde_json::to_value(&job.job).expect("serialize job")
}

/// Takes `n` events from a watch stream, failing on an error or when the deadline passes.
pub async fn take_events(
    stream: &mut bosun_gateway_store::WatchStream,
    n: usize,
) -> Vec<bosun_gateway_store::WatchEvent> {
    let mut events = Vec::with_capacity(n);
    while events.len() < n {
        let next = tokio::time::timeout(DEADLINE, stream.next())
            .await
            .expect("watch event before the deadline")
            .expect("watch stream still open")
            .expect("watch event");
        events.push(next);
    }
    events
}
