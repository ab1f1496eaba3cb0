//! The reloader against real files: a change made while the gateway starts (after the config
//! was read, before the watch is in place) is applied once the watch starts, without waiting
//! for another change or the slow re-check.

use std::sync::Arc;
use std::time::Duration;

use bosun_agents::AgentRegistry;
use bosun_gateway::dispatcher::{Dispatcher, DispatcherConfig};
use bosun_gateway::metrics::Metrics;
use bosun_gateway::supervisor::Supervisor;
use bosun_gateway::triggers::reload::{Reloader, fingerprint};
use bosun_gateway::triggers::{ConfigHandle, Live};
use bosun_gateway_store::{JobStore, SqliteJobStore};

const PERIODIC: &str =
    "periodics:\n- name: heartbeat\n  interval: 1h\n  spec: {containers: [{image: x}]}\n";

#[tokio::test]
async fn a_change_made_before_the_watch_starts_is_applied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = dir.path().join("config.yaml");
    std::fs::write(&config_path, "prowjob_namespace: ci\n").expect("config");
    let jobs = dir.path().join("jobs");
    std::fs::create_dir(&jobs).expect("jobs dir");
    std::fs::write(jobs.join("a.yaml"), "presubmits: {}\n").expect("jobs");

    // What the gateway does at start: fingerprint, then load.
    let loaded = fingerprint(&config_path, Some(&jobs), None);
    let config = ConfigHandle::new(Some(
        bosun_gateway_config::load(&config_path, Some(&jobs)).expect("config loads"),
    ));
    assert_eq!(config.current().expect("config").jobs().job_count(), 0);

    // The change lands before the reloader runs.
    std::fs::write(jobs.join("b.yaml"), PERIODIC).expect("periodic");

    // The store lives elsewhere: its writes must not wake the watch on the config directory.
    let data = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn JobStore> = Arc::new(
        SqliteJobStore::open_in_dir(data.path())
            .await
            .expect("store opens"),
    );
    let (supervisor, _critical) = Supervisor::new();
    let metrics = Metrics::default();
    let (dispatcher, _loop) = Dispatcher::new(
        store,
        AgentRegistry::new(),
        None,
        DispatcherConfig::default(),
        supervisor.clone(),
        metrics.clone(),
    );
    let reloader = Reloader {
        config_path,
        job_config_path: Some(jobs),
        plugin_config: None,
        config: config.clone(),
        plugins: Live::new(None),
        dispatcher,
        metrics,
        loaded,
    };
    let mut changes = config.subscribe();
    let shutdown = supervisor.shutdown_token();
    let task = tokio::spawn(reloader.run(shutdown.clone()));
    // Bounded well below the reloader's 30 s re-check: only the start-up comparison can
    // apply the change in time.
    tokio::time::timeout(Duration::from_secs(10), changes.changed())
        .await
        .expect("the change is applied when the watch starts")
        .expect("config handle alive");
    assert_eq!(config.current().expect("config").jobs().job_count(), 1);
    shutdown.cancel();
    task.await.expect("reloader ends on shutdown");
}
