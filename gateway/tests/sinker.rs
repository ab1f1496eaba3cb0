//! The sinker on virtual time: jobs with chosen start and completion times in a real SQLite
//! store, leftovers as the real local agent leaves them (work directories), `Sinker::sync`
//! called with `now` stepped by hand.

use std::sync::Arc;

use bosun_agents::artifacts::Artifacts;
use bosun_agents::{AgentRegistry, LocalAgent, LocalAgentConfig};
use bosun_gateway::metrics::Metrics;
use bosun_gateway::triggers::ConfigHandle;
use bosun_gateway::triggers::sinker::{CLEANED_ANNOTATION, Sinker};
use bosun_gateway_store::{JobStore, SqliteJobStore};
use bosun_proto::{ProwJob, ProwJobState};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

const CONFIG: &str =
    "sinker:\n  max_prowjob_age: 48h\n  max_pod_age: 12h\n  terminated_pod_ttl: 1h\n";
const JOBS: &str = r#"
periodics:
- name: nightly
  interval: 24h
  agent: local
  spec: {containers: [{image: x, command: ["true"]}]}
"#;

struct Fixture {
    store: Arc<dyn JobStore>,
    agent: Arc<LocalAgent>,
    sinker: Sinker,
    _dir: tempfile::TempDir,
}

fn t(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn JobStore> = Arc::new(
        SqliteJobStore::open_in_dir(dir.path())
            .await
            .expect("store"),
    );
    let artifacts =
        Artifacts::local_dir(dir.path().join("artifacts"), "file:///artifacts").expect("artifacts");
    let agent = Arc::new(LocalAgent::new(LocalAgentConfig::new(
        dir.path().join("work"),
        vec!["true".into()],
        artifacts,
    )));
    let mut agents = AgentRegistry::new();
    agents.register(agent.clone());
    let config = bosun_gateway_config::load_from_memory(
        (std::path::Path::new("config.yaml"), CONFIG),
        &[(std::path::Path::new("jobs.yaml"), JOBS)],
    )
    .expect("config");
    let sinker = Sinker::new(
        store.clone(),
        agents,
        ConfigHandle::new(Some(config)),
        Metrics::default(),
    );
    Fixture {
        store,
        agent,
        sinker,
        _dir: dir,
    }
}

impl Fixture {
    /// A local job that started at `start` and (if `end`) finished then, with a work
    /// directory as the local agent leaves it.
    async fn job(
        &self,
        name: &str,
        job: &str,
        kind: &str,
        start: &str,
        end: Option<&str>,
    ) -> ProwJob {
        let mut pj: ProwJob = serde_json::from_value(serde_json::json!({
            "apiVersion": "prow.k8s.io/v1",
            "kind": "ProwJob",
            "metadata": {"name": name},
            "spec": {"type": kind, "job": job, "agent": "local"},
        }))
        .expect("prowjob");
        let status = pj.status_mut();
        status.start_time = Some(Time(t(start)));
        match end {
            Some(end) => {
                status.state = ProwJobState::Success;
                status.completion_time = Some(Time(t(end)));
            }
            None => status.state = ProwJobState::Pending,
        }
        let dir = self.agent.job_dir(&pj).expect("job dir");
        std::fs::create_dir_all(dir.join("src")).expect("work dir");
        std::fs::write(dir.join("build-log.txt"), "log").expect("leftover");
        self.store.create(pj.clone(), None).await.expect("create");
        pj
    }

    fn has_leftovers(&self, pj: &ProwJob) -> bool {
        self.agent.job_dir(pj).expect("job dir").exists()
    }

    async fn exists(&self, name: &str) -> bool {
        self.store.get(name).await.is_ok()
    }
}

#[tokio::test]
async fn leftovers_go_after_the_ttl_jobs_after_max_age_and_running_jobs_are_never_touched() {
    let f = fixture().await;
    let recent = f
        .job(
            "recent",
            "unit",
            "presubmit",
            "2026-12-06T09:00:00Z",
            Some("2026-12-06T09:10:00Z"),
        )
        .await;
    let old = f
        .job(
            "old",
            "unit",
            "presubmit",
            "2026-12-01T09:00:00Z",
            Some("2026-12-01T09:10:00Z"),
        )
        .await;
    let running = f
        .job("running", "unit", "presubmit", "2026-11-01T09:00:00Z", None)
        .await;

    // 09:30: recent finished 20 minutes ago (ttl 1h) — nothing yet; old is past 48h.
    let r = f
        .sinker
        .sync(t("2026-12-06T09:30:00Z"))
        .await
        .expect("sync");
    assert!(r.cleaned.is_empty(), "{r:?}");
    assert_eq!(r.deleted, ["old"]);
    assert!(!f.exists("old").await && !f.has_leftovers(&old));
    assert!(f.has_leftovers(&recent) && f.exists("recent").await);
    assert!(
        f.has_leftovers(&running) && f.exists("running").await,
        "never touch a running job"
    );

    // 10:11: an hour after recent finished, its leftovers go; the job stays.
    let r = f
        .sinker
        .sync(t("2026-12-06T10:11:00Z"))
        .await
        .expect("sync");
    assert_eq!(r.cleaned, ["recent"]);
    assert!(!f.has_leftovers(&recent));
    let kept = f.store.get("recent").await.expect("kept").job;
    assert!(
        kept.metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(CLEANED_ANNOTATION))
    );
    // Once cleaned, not again.
    let r = f
        .sinker
        .sync(t("2026-12-06T11:00:00Z"))
        .await
        .expect("sync");
    assert!(r.cleaned.is_empty() && r.deleted.is_empty(), "{r:?}");

    // Two days later recent goes too; running is still untouched.
    let r = f
        .sinker
        .sync(t("2026-12-08T10:00:00Z"))
        .await
        .expect("sync");
    assert_eq!(r.deleted, ["recent"]);
    assert!(f.exists("running").await && f.has_leftovers(&running));
}

#[tokio::test]
async fn the_newest_run_of_a_configured_periodic_is_kept_however_old() {
    let f = fixture().await;
    f.job(
        "n1",
        "nightly",
        "periodic",
        "2026-11-01T00:00:00Z",
        Some("2026-11-01T00:10:00Z"),
    )
    .await;
    f.job(
        "n2",
        "nightly",
        "periodic",
        "2026-11-02T00:00:00Z",
        Some("2026-11-02T00:10:00Z"),
    )
    .await;
    f.job(
        "gone1",
        "removed-periodic",
        "periodic",
        "2026-11-02T00:00:00Z",
        Some("2026-11-02T00:10:00Z"),
    )
    .await;
    let r = f
        .sinker
        .sync(t("2026-12-06T00:00:00Z"))
        .await
        .expect("sync");
    let mut deleted = r.deleted.clone();
    deleted.sort();
    assert_eq!(deleted, ["gone1", "n1"], "{r:?}");
    assert!(f.exists("n2").await, "horologium needs the newest nightly");
    assert_eq!(r.cleaned, ["n2"], "its leftovers still go");
}
