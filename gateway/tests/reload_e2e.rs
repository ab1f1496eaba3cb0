//! Config reload and periodics through a real `bosun serve`: job config files change under a
//! running gateway; valid changes apply without a restart (a periodic added to a file starts
//! running, on the real local agent, without overlapping runs), invalid ones are refused with
//! every problem logged while the previous configuration keeps running.

mod common;

use std::path::Path;
use std::time::Duration;

use bosun_proto::ProwJob;
use bosun_proto::api::{ListRequest, TriggerRequest};
use common::{DEADLINE, Gateway, decode};

const CONFIG: &str = "horologium:\n  tick_interval: 1s\n";

const PERIODIC: &str = r#"
periodics:
- name: heartbeat
  interval: 1s
  agent: local
  decorate: false
  spec:
    containers:
    - image: local
      command: [sh, -c, "sleep 0.2"]
"#;

async fn runs(gw: &Gateway, job: &str) -> Vec<ProwJob> {
    let mut c = gw.client().await;
    let mut jobs: Vec<ProwJob> = c
        .list(ListRequest {
            job: job.into(),
            page_size: 1000,
            ..ListRequest::default()
        })
        .await
        .expect("list")
        .into_inner()
        .jobs
        .iter()
        .map(decode)
        .collect();
    jobs.sort_by_key(|j| {
        j.status
            .as_ref()
            .and_then(|s| s.start_time.clone())
            .map(|t| t.0)
    });
    jobs
}

async fn wait_until<F, Fut>(what: &str, gw: &Gateway, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + DEADLINE;
    while !cond().await {
        if tokio::time::Instant::now() > end {
            panic!("timed out waiting for {what}\n{}", gw.logs());
        }
        // Poll interval of a deadline-bounded wait.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn write(path: &Path, text: &str) {
    // Write then rename, as editors and ConfigMap updates do.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

#[tokio::test]
async fn a_periodic_added_to_the_job_config_runs_and_a_broken_change_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, CONFIG).expect("config");
    let jobs = dir.path().join("jobs");
    std::fs::create_dir(&jobs).expect("jobs dir");
    std::fs::write(jobs.join("presubmits.yaml"), "presubmits: {}\n").expect("jobs");
    let gw = Gateway::start(
        &dir.path().join("data"),
        &[
            "--config-path",
            config.to_str().expect("utf-8"),
            "--job-config-path",
            jobs.to_str().expect("utf-8"),
        ],
    );
    let mut c = gw.client().await;
    let refused = c
        .trigger(TriggerRequest {
            job: "heartbeat".into(),
            r#type: "periodic".into(),
            ..TriggerRequest::default()
        })
        .await
        .expect_err("not configured yet");
    assert_eq!(refused.code(), tonic::Code::NotFound);

    // Add a periodic: it runs without a restart, again and again, never overlapping.
    write(&jobs.join("periodics.yaml"), PERIODIC);
    wait_until("three finished heartbeats", &gw, || async {
        runs(&gw, "heartbeat")
            .await
            .iter()
            .filter(|j| j.is_complete())
            .count()
            >= 3
    })
    .await;
    let all = runs(&gw, "heartbeat").await;
    for pair in all.windows(2) {
        let done = pair[0]
            .status
            .as_ref()
            .and_then(|s| s.completion_time.clone())
            .expect("an earlier run finished before the next started");
        let next_start = pair[1]
            .status
            .as_ref()
            .and_then(|s| s.start_time.clone())
            .expect("start");
        assert!(
            next_start.0 >= done.0,
            "runs overlap: {:?}",
            all.iter().map(|j| &j.status).collect::<Vec<_>>()
        );
    }
    assert!(
        all.iter()
            .filter(|j| j.is_complete())
            .all(|j| j.state().as_str() == "success")
    );

    // A broken change (an unknown field) is refused with the problem named; the periodic
    // keeps running from the previous configuration.
    write(
        &jobs.join("broken.yaml"),
        "postsubmits:\n  acme/widget:\n  - name: typo\n    brnaches: [main]\n    spec: {containers: [{image: x}]}\n",
    );
    wait_until("the refusal in the log", &gw, || async {
        gw.logs().contains("configuration change refused")
    })
    .await;
    let logs = gw.logs();
    assert!(
        logs.contains("brnaches"),
        "the problem names the field:\n{logs}"
    );
    assert!(logs.contains("broken.yaml"), "and the file:\n{logs}");
    let before = runs(&gw, "heartbeat").await.len();
    wait_until("another heartbeat after the refusal", &gw, || async {
        runs(&gw, "heartbeat").await.len() > before
    })
    .await;
    c.trigger(TriggerRequest {
        job: "heartbeat".into(),
        r#type: "periodic".into(),
        ..TriggerRequest::default()
    })
    .await
    .expect("the previous configuration still serves Trigger");

    // Fixing the file applies again.
    write(
        &jobs.join("broken.yaml"),
        "periodics:\n- name: second\n  cron: '@every 1h'\n  agent: local\n  decorate: false\n  spec: {containers: [{image: local, command: ['true']}]}\n",
    );
    wait_until("the fixed config's new periodic", &gw, || async {
        !runs(&gw, "second").await.is_empty()
    })
    .await;
}
