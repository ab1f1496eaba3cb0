//! The jenkins agent end to end: a real `bosun serve` configured by `bosun.jenkins`, driven
//! over gRPC, against the Jenkins test server from conformance/ (the tests play Jenkins'
//! executor). Success, failure, abort, timeouts, logs, a build that ends before it is ever
//! seen running, outages, and restart re-attach.

mod common;

use std::process::Command;

use bosun_conformance::test_servers::Canned;
use bosun_conformance::test_servers::jenkins::{Auth, Behaviour, JenkinsOptions, JenkinsServer};
use bosun_proto::ProwJobState;
use bosun_proto::api::AbortRequest;
use common::*;
use serde_json::json;

const JOB: &str = "ci/widget-unit";
const TOKEN: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90";

struct Env {
    jenkins: JenkinsServer,
    dir: tempfile::TempDir,
}

async fn env() -> Env {
    let jenkins = JenkinsServer::start(JenkinsOptions {
        auth: Auth::Basic("prow-bot".into(), TOKEN.into()),
        csrf: true,
        jobs: vec![JOB.into()],
    })
    .await
    .expect("jenkins");
    Env {
        jenkins,
        dir: tempfile::tempdir().expect("tempdir"),
    }
}

impl Env {
    fn config(&self, plank: &str) -> String {
        let token = self.dir.path().join("jenkins-token");
        std::fs::write(&token, format!("{TOKEN}\n")).expect("token");
        let config = self.dir.path().join("config.yaml");
        std::fs::write(
            &config,
            format!(
                "plank:\n  max_revivals: 3\n{plank}bosun:\n  jenkins:\n    url: {}\n    user: prow-bot\n    token_file: {}\n    csrf_protect: true\n    poll_interval: 100ms\n",
                self.jenkins.url(),
                token.display()
            ),
        )
        .expect("config");
        config.display().to_string()
    }

    fn gateway(&self, plank: &str) -> Gateway {
        let config = self.config(plank);
        Gateway::start(&self.dir.path().join("data"), &["--config-path", &config])
    }
}

fn jenkins_job(job: &str, pull: i64) -> String {
    json!({
        "apiVersion": "prow.k8s.io/v1",
        "kind": "ProwJob",
        "spec": {
            "type": "presubmit",
            "job": job,
            "agent": "jenkins",
            "context": "ci/jenkins",
            "refs": {"org": "acme", "repo": "widget", "base_ref": "main", "base_sha": "a1b2c3",
                     "pulls": [{"number": pull, "author": "alice", "sha": format!("{pull:06x}")}]}
        }
    })
    .to_string()
}

async fn queued(env: &Env, name: &str) -> u64 {
    env.jenkins.wait_queued(JOB, name, DEADLINE).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_succeed_fail_and_stream_their_console() {
    let env = env().await;
    let gw = env.gateway("");
    let mut c = gw.client().await;

    let name = submit(&mut c, jenkins_job(JOB, 1)).await;
    let id = queued(&env, &name).await;
    let job = wait_state(&mut c, &name, ProwJobState::Pending).await;
    let status = job.status.clone().expect("status");
    assert_eq!(status.description, "Jenkins job enqueued.");
    assert_eq!(status.pod_name, name);
    let (_, params) = env
        .jenkins
        .queued(JOB)
        .into_iter()
        .find(|(i, _)| *i == id)
        .expect("item");
    let param = |n: &str| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    assert_eq!(param("PROW_JOB_ID"), Some(name.clone()));
    assert_eq!(param("BUILD_ID"), Some(status.build_id.clone()));
    assert_eq!(param("PULL_NUMBER").as_deref(), Some("1"));

    let n = env.jenkins.start_build(id).expect("build");
    let running = wait_for(&mut c, &name, "running with its build number", |job| {
        job.status.as_ref().is_some_and(|s| {
            s.description == "Jenkins job running." && s.jenkins_build_id == n.to_string()
        })
    })
    .await;
    assert_eq!(running.state(), ProwJobState::Pending);
    env.jenkins.append_console(JOB, n, "+ go test ./...\n");
    follow_logs_until(&mut c, &name, "go test").await;
    env.jenkins.append_console(JOB, n, "ok widget 0.2s\n");
    env.jenkins.finish_build(JOB, n, "SUCCESS");
    let done = wait_complete(&mut c, &name).await;
    assert_eq!(done.state(), ProwJobState::Success);
    let status = done.status.expect("status");
    assert_eq!(status.description, "Jenkins job succeeded.");
    assert_eq!(status.jenkins_build_id, n.to_string());
    let text = read_logs(&mut c, &name).await;
    assert!(text.contains("ok widget 0.2s\nFinished: SUCCESS"), "{text}");

    let failing = submit(&mut c, jenkins_job(JOB, 2)).await;
    let id = queued(&env, &failing).await;
    let n = env.jenkins.start_build(id).expect("build");
    env.jenkins.finish_build(JOB, n, "UNSTABLE");
    let done = wait_complete(&mut c, &failing).await;
    assert_eq!(done.state(), ProwJobState::Failure);
    assert_eq!(
        done.status.expect("status").description,
        "Jenkins job failed."
    );

    // Unknown Jenkins job: an error naming it.
    let unknown = submit(&mut c, jenkins_job("ci/nope", 3)).await;
    let done = wait_complete(&mut c, &unknown).await;
    assert_eq!(done.state(), ProwJobState::Error);
    let desc = done.status.expect("status").description;
    assert!(desc.contains("jenkins job ci/nope not found at"), "{desc}");
    assert!(
        !gw.logs().contains(TOKEN),
        "the token never reaches the logs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_that_ends_before_it_is_ever_seen_running_ends_the_job_right() {
    let env = env().await;
    env.jenkins.set_behaviour(
        JOB,
        Behaviour::FinishOnTrigger {
            result: "FAILURE".into(),
            console: "exit 1\n".into(),
            forget_queue_item: true,
        },
    );
    let gw = env.gateway("");
    let mut c = gw.client().await;
    let name = submit(&mut c, jenkins_job(JOB, 4)).await;
    let done = wait_complete(&mut c, &name).await;
    assert_eq!(done.state(), ProwJobState::Failure);
    let status = done.status.expect("status");
    assert_eq!(status.description, "Jenkins job failed.");
    assert_eq!(status.jenkins_build_id, "1");
    assert_eq!(env.jenkins.triggered(JOB), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborts_cancel_queued_builds_and_stop_running_ones() {
    let env = env().await;
    let gw = env.gateway("");
    let mut c = gw.client().await;

    // Abort while queued: the queue item is cancelled.
    let queued_job = submit(&mut c, jenkins_job(JOB, 5)).await;
    let id = queued(&env, &queued_job).await;
    wait_state(&mut c, &queued_job, ProwJobState::Pending).await;
    c.abort(AbortRequest {
        name: queued_job.clone(),
        reason: "user".into(),
    })
    .await
    .expect("abort");
    let done = wait_complete(&mut c, &queued_job).await;
    assert_eq!(done.state(), ProwJobState::Aborted);
    assert!(env.jenkins.cancelled(id), "queue item cancelled");

    // Abort while running: the build is stopped.
    let running = submit(&mut c, jenkins_job(JOB, 6)).await;
    let id = queued(&env, &running).await;
    let n = env.jenkins.start_build(id).expect("build");
    c.abort(AbortRequest {
        name: running.clone(),
        reason: "user".into(),
    })
    .await
    .expect("abort");
    let done = wait_complete(&mut c, &running).await;
    assert_eq!(done.state(), ProwJobState::Aborted);
    assert_eq!(
        env.jenkins.build(JOB, n).and_then(|b| b.result).as_deref(),
        Some("ABORTED")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plank_timeouts_cancel_queued_builds_and_stop_running_ones() {
    let env = env().await;
    let gw = env.gateway("  pod_pending_timeout: 4s\n  pod_running_timeout: 2s\n");
    let mut c = gw.client().await;

    // Queued too long: the pending timeout cancels the item, the job ends in error.
    let stuck = submit(&mut c, jenkins_job(JOB, 7)).await;
    let id = queued(&env, &stuck).await;
    let done = wait_complete(&mut c, &stuck).await;
    assert_eq!(done.state(), ProwJobState::Error);
    assert_eq!(
        done.status.expect("status").description,
        "Pod pending timeout."
    );
    assert!(env.jenkins.cancelled(id));

    // Running too long: the running timeout stops the build, the job ends aborted.
    let slow = submit(&mut c, jenkins_job(JOB, 8)).await;
    let id = queued(&env, &slow).await;
    let n = env.jenkins.start_build(id).expect("build");
    let done = wait_complete(&mut c, &slow).await;
    assert_eq!(done.state(), ProwJobState::Aborted);
    assert_eq!(
        done.status.expect("status").description,
        "Pod running timeout."
    );
    assert_eq!(
        env.jenkins.build(JOB, n).and_then(|b| b.result).as_deref(),
        Some("ABORTED")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outages_wait_and_a_restart_reattaches_once() {
    let env = env().await;
    let mut gw = env.gateway("");
    let mut c = gw.client().await;

    // Jenkins answers 503: the job waits, saying why, then runs.
    env.jenkins
        .server()
        .start_outage(Canned::text(503, "Service Unavailable"));
    let name = submit(&mut c, jenkins_job(JOB, 9)).await;
    wait_for(&mut c, &name, "the outage in the description", |job| {
        job.status
            .as_ref()
            .is_some_and(|s| s.description.contains("Waiting for the jenkins backend"))
    })
    .await;
    env.jenkins.server().end_outage();
    let id = queued(&env, &name).await;
    let n = env.jenkins.start_build(id).expect("build");
    env.jenkins.append_console(JOB, n, "before the restart\n");
    wait_state(&mut c, &name, ProwJobState::Pending).await;
    drop(c);
    gw.kill9();

    // The build finishes while no gateway runs; the next one finds it by PROW_JOB_ID.
    env.jenkins.append_console(JOB, n, "after the restart\n");
    env.jenkins.finish_build(JOB, n, "SUCCESS");
    let gw = env.gateway("");
    let mut c = gw.client().await;
    let done = wait_complete(&mut c, &name).await;
    assert_eq!(done.state(), ProwJobState::Success);
    assert_eq!(env.jenkins.triggered(JOB), 1, "never triggered twice");
    let log = std::fs::read_to_string(
        walk(&env.dir.path().join("data/artifacts"))
            .into_iter()
            .find(|p| p.ends_with("build-log.txt"))
            .expect("build-log.txt stored"),
    )
    .expect("read");
    assert!(
        log.contains("before the restart\nafter the restart"),
        "{log}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_validates_bosun_jenkins_and_unconfigured_jobs_say_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "bosun:\n  jenkins:\n    url: http://127.0.0.1:9\n    token_file: /x\n",
    )
    .expect("write");
    let out = Command::new(bosun_bin())
        .args(["check-config", "--config-path"])
        .arg(&config)
        .output()
        .expect("run check-config");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("bosun.jenkins: token_file needs user"),
        "{text}"
    );

    // Without bosun.jenkins the agent is there but refuses jobs, saying how to configure it.
    let gw = Gateway::start(&dir.path().join("data"), &[]);
    let mut c = gw.client().await;
    let name = submit(&mut c, jenkins_job(JOB, 10)).await;
    let done = wait_complete(&mut c, &name).await;
    assert_eq!(done.state(), ProwJobState::Error);
    let desc = done.status.expect("status").description;
    assert!(desc.contains("bosun.jenkins"), "{desc}");
}
