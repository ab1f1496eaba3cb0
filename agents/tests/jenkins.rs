//! The jenkins agent against the Jenkins test server from conformance/, with the test playing
//! Jenkins' executor: success, failure, abort (queued and running), logs, a build that ends
//! before it is ever seen, re-attach, outages and refusals.

mod common;

use std::time::Duration;

use bosun_agents::artifacts::Artifacts;
use bosun_agents::jenkins::{JenkinsAgent, JenkinsAgentConfig, JenkinsSettings};
use bosun_agents::{Agent, AgentError, Outcome, Progress};
use bosun_conformance::test_servers::Canned;
use bosun_conformance::test_servers::jenkins::{
    Auth, Behaviour, CRUMB_FIELD, JenkinsOptions, JenkinsServer,
};
use bosun_proto::{ProwJob, ProwJobState};
use common::job;
use futures::StreamExt;
use serde_json::json;
use tokio::sync::mpsc;

const DEADLINE: Duration = Duration::from_secs(30);
const JOB: &str = "team/unit";
const TOKEN: &str = "11a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6";

struct Env {
    jenkins: JenkinsServer,
    agent: std::sync::Arc<JenkinsAgent>,
    settings: JenkinsSettings,
    artifacts: Artifacts,
    _dir: tempfile::TempDir,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let jenkins = JenkinsServer::start(JenkinsOptions {
        auth: Auth::Basic("prow-bot".into(), TOKEN.into()),
        csrf: true,
        jobs: vec![JOB.into()],
    })
    .await
    .expect("jenkins");
    let token = dir.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).expect("token");
    let settings = JenkinsSettings::from_bosun_value(Some(&json!({
        "url": jenkins.url(), "user": "prow-bot", "token_file": token,
        "csrf_protect": true, "poll_interval": "50ms"
    })))
    .expect("settings")
    .expect("present");
    let artifacts =
        Artifacts::local_dir(dir.path().join("artifacts"), "file:///artifacts").expect("artifacts");
    let agent = std::sync::Arc::new(
        JenkinsAgent::from_settings(Some(&settings), Some(artifacts.clone())).expect("agent"),
    );
    Env {
        jenkins,
        agent,
        settings,
        artifacts,
        _dir: dir,
    }
}

impl Env {
    /// A new agent on the same settings: a restarted gateway, which remembers nothing.
    fn fresh_agent(&self) -> JenkinsAgent {
        JenkinsAgent::new(
            JenkinsAgentConfig::from_settings(&self.settings, Some(self.artifacts.clone()))
                .expect("config"),
        )
        .expect("agent")
    }
}

fn jenkins_job(name: &str) -> ProwJob {
    job(json!({
        "apiVersion": "prow.k8s.io/v1", "kind": "ProwJob",
        "metadata": {"name": name},
        "spec": {
            "type": "presubmit", "job": JOB, "agent": "jenkins",
            "refs": {"org": "acme", "repo": "widget", "base_ref": "main", "base_sha": "abc",
                     "pulls": [{"number": 7, "author": "al", "sha": "def", "title": "Fix it"}]}
        },
        "status": {"state": "pending", "build_id": "900"}
    }))
}

type Waiting = tokio::task::JoinHandle<Result<Outcome, AgentError>>;

fn spawn_wait(
    agent: &std::sync::Arc<JenkinsAgent>,
    pj: &ProwJob,
) -> (Waiting, mpsc::UnboundedReceiver<Progress>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let agent = agent.clone();
    let pj = pj.clone();
    (tokio::spawn(async move { agent.wait(&pj, tx).await }), rx)
}

async fn outcome(wait: Waiting) -> Outcome {
    tokio::time::timeout(DEADLINE, wait)
        .await
        .expect("wait in time")
        .expect("join")
        .expect("outcome")
}

fn drain(rx: &mut mpsc::UnboundedReceiver<Progress>) -> Vec<Progress> {
    let mut out = Vec::new();
    while let Ok(p) = rx.try_recv() {
        out.push(p);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_runs_from_queue_to_success_with_its_console() {
    let env = env().await;
    let agent = env.agent.clone();
    let pj = jenkins_job("jk-success");
    agent.check(&pj).expect("check");
    let started = agent.start(&pj).await.expect("start");
    assert_eq!(started.workload_name, "jk-success");
    assert_eq!(
        started.description.as_deref(),
        Some("Jenkins job enqueued.")
    );
    let id = env.jenkins.wait_queued(JOB, "jk-success", DEADLINE).await;
    let (_, params) = env
        .jenkins
        .queued(JOB)
        .into_iter()
        .find(|(i, _)| *i == id)
        .expect("item");
    let param = |n: &str| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    assert_eq!(param("PROW_JOB_ID").as_deref(), Some("jk-success"));
    assert_eq!(param("BUILD_ID").as_deref(), Some("900"));
    assert_eq!(param("PULL_NUMBER").as_deref(), Some("7"));
    assert_eq!(param("PULL_TITLE").as_deref(), Some("Fix it"));
    assert!(param("JOB_SPEC").is_some_and(|s| s.contains("\"prowjobid\":\"jk-success\"")));
    assert_eq!(
        param("BUILD_NUMBER"),
        None,
        "Prow sends no BUILD_NUMBER to Jenkins"
    );
    let trigger = env
        .jenkins
        .server()
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/buildWithParameters"))
        .expect("trigger request");
    assert_eq!(trigger.path, "/job/team/job/unit/buildWithParameters");
    assert!(trigger.header(CRUMB_FIELD).is_some(), "CSRF crumb sent");
    assert!(trigger.body.is_empty(), "parameters travel in the query");
    // Idempotent: starting again triggers nothing new.
    agent.start(&pj).await.expect("start again");
    env.agent_fresh_start_is_idempotent(&pj).await;
    assert_eq!(env.jenkins.triggered(JOB), 1);

    let (wait, mut rx) = spawn_wait(&agent, &pj);
    let number = env.jenkins.start_build(id).expect("build starts");
    let mut progress = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while let Some(p) = rx.recv().await {
            progress.push(p.clone());
            if p == Progress::Running {
                break;
            }
        }
    })
    .await
    .expect("running in time");
    env.jenkins.append_console(JOB, number, "+ make test\n");
    let mut logs = agent.logs(&pj, true).await.expect("logs");
    let mut seen = String::new();
    tokio::time::timeout(DEADLINE, async {
        while !seen.contains("make test") {
            let chunk = logs.next().await.expect("more").expect("chunk");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .expect("console in time");
    env.jenkins.append_console(JOB, number, "ok\n");
    assert!(env.jenkins.finish_build(JOB, number, "SUCCESS"));
    let done = outcome(wait).await;
    assert_eq!(done.state, ProwJobState::Success);
    assert_eq!(done.description, "Jenkins job succeeded.");
    progress.extend(drain(&mut rx));
    assert_eq!(
        progress.first(),
        Some(&Progress::BuildNumber(number.to_string())),
        "{progress:?}"
    );
    assert!(
        progress.contains(&Progress::Description("Jenkins job running.".into())),
        "{progress:?}"
    );
    let rest: Vec<_> = tokio::time::timeout(DEADLINE, logs.collect())
        .await
        .expect("log ends");
    for chunk in rest {
        seen.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
    }
    assert!(seen.contains("ok\nFinished: SUCCESS"), "{seen}");
    let stored = env
        .artifacts
        .get(&pj, "build-log.txt")
        .await
        .expect("read")
        .expect("stored");
    assert!(String::from_utf8_lossy(&stored).contains("+ make test\nok\nFinished: SUCCESS"));
    let finished = env
        .artifacts
        .get(&pj, "finished.json")
        .await
        .expect("read")
        .expect("stored");
    let finished: serde_json::Value = serde_json::from_slice(&finished).expect("json");
    assert_eq!(finished["result"], "SUCCESS");
    assert!(
        env.jenkins.server().violations().is_empty(),
        "{:?}",
        env.jenkins.server().violations()
    );
    let auth = trigger
        .header("authorization")
        .unwrap_or_default()
        .to_owned();
    assert!(auth.starts_with("Basic "), "basic auth with the API token");
}

impl Env {
    async fn agent_fresh_start_is_idempotent(&self, pj: &ProwJob) {
        // A restarted gateway finds the queued build by its PROW_JOB_ID instead of triggering.
        self.fresh_agent()
            .start(pj)
            .await
            .expect("start after restart");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_map_and_aborts_stop_queued_and_running_builds() {
    let env = env().await;
    let agent = std::sync::Arc::new(env.fresh_agent());

    for (name, result, state) in [
        ("jk-unstable", "UNSTABLE", ProwJobState::Failure),
        ("jk-failure", "FAILURE", ProwJobState::Failure),
        ("jk-aborted-by-jenkins", "ABORTED", ProwJobState::Aborted),
    ] {
        let pj = jenkins_job(name);
        agent.start(&pj).await.expect("start");
        let id = env.jenkins.wait_queued(JOB, name, DEADLINE).await;
        let (wait, _rx) = spawn_wait(&agent, &pj);
        let n = env.jenkins.start_build(id).expect("build");
        env.jenkins.finish_build(JOB, n, result);
        assert_eq!(outcome(wait).await.state, state, "{result}");
    }

    // Abort while queued: the queue item is cancelled.
    let queued = jenkins_job("jk-abort-queued");
    agent.start(&queued).await.expect("start");
    let id = env
        .jenkins
        .wait_queued(JOB, "jk-abort-queued", DEADLINE)
        .await;
    let (wait, _rx) = spawn_wait(&agent, &queued);
    agent.abort(&queued).await.expect("abort");
    assert!(env.jenkins.cancelled(id), "queue item cancelled");
    let done = outcome(wait).await;
    assert_eq!(
        (done.state, done.description.as_str()),
        (ProwJobState::Aborted, "Jenkins job aborted.")
    );
    assert_eq!(env.jenkins.count("POST", "/queue/cancelItem"), 1);

    // Abort while running: the build is stopped.
    let running = jenkins_job("jk-abort-running");
    agent.start(&running).await.expect("start");
    let id = env
        .jenkins
        .wait_queued(JOB, "jk-abort-running", DEADLINE)
        .await;
    let n = env.jenkins.start_build(id).expect("build");
    let (wait, _rx) = spawn_wait(&agent, &running);
    agent.abort(&running).await.expect("abort");
    assert_eq!(outcome(wait).await.state, ProwJobState::Aborted);
    assert_eq!(
        env.jenkins.build(JOB, n).and_then(|b| b.result).as_deref(),
        Some("ABORTED")
    );
    assert_eq!(env.jenkins.count("POST", &format!("/{n}/stop")), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_that_ends_before_it_is_ever_seen_still_ends_right() {
    let env = env().await;
    let agent = std::sync::Arc::new(env.fresh_agent());
    // The queue item still says where the build is.
    env.jenkins.set_behaviour(
        JOB,
        Behaviour::FinishOnTrigger {
            result: "FAILURE".into(),
            console: "boom\n".into(),
            forget_queue_item: false,
        },
    );
    let pj = jenkins_job("jk-instant");
    agent.start(&pj).await.expect("start");
    let (wait, _rx) = spawn_wait(&agent, &pj);
    assert_eq!(outcome(wait).await.state, ProwJobState::Failure);

    // Jenkins forgot the queue item too: the build is found by its PROW_JOB_ID.
    env.jenkins.set_behaviour(
        JOB,
        Behaviour::FinishOnTrigger {
            result: "SUCCESS".into(),
            console: "quick\n".into(),
            forget_queue_item: true,
        },
    );
    let pj = jenkins_job("jk-instant-forgotten");
    agent.start(&pj).await.expect("start");
    let (wait, mut rx) = spawn_wait(&agent, &pj);
    let done = outcome(wait).await;
    assert_eq!(done.state, ProwJobState::Success);
    let number = env
        .jenkins
        .builds(JOB)
        .last()
        .map(|b| b.number)
        .expect("build");
    assert!(drain(&mut rx).contains(&Progress::BuildNumber(number.to_string())));
    let log = env
        .artifacts
        .get(&pj, "build-log.txt")
        .await
        .expect("read")
        .expect("stored");
    assert!(String::from_utf8_lossy(&log).contains("quick"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_gateway_reattaches_to_queued_and_running_builds() {
    let env = env().await;
    let first = env.fresh_agent();
    let queued = jenkins_job("jk-restart-queued");
    first.start(&queued).await.expect("start");
    let running = jenkins_job("jk-restart-running");
    first.start(&running).await.expect("start");
    let q = env
        .jenkins
        .wait_queued(JOB, "jk-restart-queued", DEADLINE)
        .await;
    let r = env
        .jenkins
        .wait_queued(JOB, "jk-restart-running", DEADLINE)
        .await;
    let n = env.jenkins.start_build(r).expect("build");
    drop(first);

    let second = std::sync::Arc::new(env.fresh_agent());
    let (wait_q, _rx) = spawn_wait(&second, &queued);
    let (wait_r, _rx2) = spawn_wait(&second, &running);
    let m = env.jenkins.start_build(q).expect("build");
    env.jenkins.finish_build(JOB, m, "SUCCESS");
    env.jenkins.finish_build(JOB, n, "FAILURE");
    assert_eq!(outcome(wait_q).await.state, ProwJobState::Success);
    assert_eq!(outcome(wait_r).await.state, ProwJobState::Failure);
    assert_eq!(env.jenkins.triggered(JOB), 2, "nothing triggered twice");

    // With the build number recorded (status.jenkins_build_id), no search is needed.
    let mut known = jenkins_job("jk-restart-running");
    if let Some(s) = known.status.as_mut() {
        s.jenkins_build_id = n.to_string();
    }
    let (tx, _rx) = mpsc::unbounded_channel();
    assert_eq!(
        env.fresh_agent()
            .wait(&known, tx)
            .await
            .expect("outcome")
            .state,
        ProwJobState::Failure
    );

    // Nothing in Jenkins for a job: NotFound.
    let (tx, _rx) = mpsc::unbounded_channel();
    let missing = env
        .fresh_agent()
        .wait(&jenkins_job("jk-never-started"), tx)
        .await;
    assert!(
        matches!(missing, Err(AgentError::NotFound(_))),
        "{missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outages_are_retried_and_refusals_are_errors() {
    let env = env().await;
    let agent = std::sync::Arc::new(env.fresh_agent());

    // Unknown job: an error naming it.
    let mut unknown = jenkins_job("jk-unknown");
    unknown.spec.job = "team/nope".into();
    let err = agent.start(&unknown).await.expect_err("unknown job");
    assert!(
        matches!(&err, AgentError::InvalidJob(m) if m.contains("jenkins job team/nope not found at") && m.contains("/job/team/job/nope")),
        "{err}"
    );

    // Jenkins down: start is Unavailable (the dispatcher retries), then works.
    env.jenkins
        .server()
        .start_outage(Canned::text(503, "Service Unavailable"));
    let pj = jenkins_job("jk-outage");
    let err = agent.start(&pj).await.expect_err("outage");
    assert!(matches!(err, AgentError::Unavailable(_)), "{err}");
    env.jenkins.server().end_outage();
    agent.start(&pj).await.expect("start after the outage");
    let id = env.jenkins.wait_queued(JOB, "jk-outage", DEADLINE).await;
    assert_eq!(
        env.jenkins.triggered(JOB),
        1,
        "the failed attempt triggered nothing"
    );

    // An outage while following: the job waits, says why, and finishes afterwards.
    let (wait, mut rx) = spawn_wait(&agent, &pj);
    env.jenkins
        .server()
        .start_outage(Canned::text(502, "Bad Gateway"));
    let said = tokio::time::timeout(DEADLINE, async {
        while let Some(p) = rx.recv().await {
            if matches!(&p, Progress::Description(d) if d.starts_with("Jenkins unreachable")) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(said, "the outage shows in the description");
    let n = env.jenkins.start_build(id).expect("build");
    env.jenkins.finish_build(JOB, n, "SUCCESS");
    env.jenkins.server().end_outage();
    assert_eq!(outcome(wait).await.state, ProwJobState::Success);

    // A bad token: Unavailable (fixing the secret lets jobs run), without the token in it.
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("wrong");
    std::fs::write(&token, "wrong-token-value").expect("write");
    let settings = JenkinsSettings::from_bosun_value(Some(&json!({
        "url": env.jenkins.url(), "user": "prow-bot", "token_file": token, "csrf_protect": true
    })))
    .expect("settings")
    .expect("present");
    let bad = JenkinsAgent::from_settings(Some(&settings), None).expect("agent");
    let err = bad
        .start(&jenkins_job("jk-bad-token"))
        .await
        .expect_err("401");
    assert!(
        matches!(&err, AgentError::Unavailable(m) if m.contains("401")),
        "{err}"
    );
    assert!(!err.to_string().contains("wrong-token-value") && !err.to_string().contains(TOKEN));

    // Jenkins unreachable at all.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let mut config = JenkinsAgentConfig::new(url);
    config.client.retries = 1;
    let gone = JenkinsAgent::new(config).expect("agent");
    let err = gone
        .start(&jenkins_job("jk-gone"))
        .await
        .expect_err("unreachable");
    assert!(matches!(err, AgentError::Unavailable(_)), "{err}");

    // Not configured at all.
    let err = JenkinsAgent::unconfigured()
        .check(&pj)
        .expect_err("unconfigured");
    assert!(err.to_string().contains("bosun.jenkins"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bearer_token_and_no_csrf_work_too() {
    let jenkins = JenkinsServer::start(JenkinsOptions {
        auth: Auth::Bearer("bearer-token-value".into()),
        csrf: false,
        jobs: vec!["solo".into()],
    })
    .await
    .expect("jenkins");
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("bearer");
    std::fs::write(&token, "bearer-token-value\n").expect("write");
    let settings = JenkinsSettings::from_bosun_value(Some(&json!({
        "url": jenkins.url(), "bearer_token_file": token, "poll_interval": "20ms"
    })))
    .expect("settings")
    .expect("present");
    let agent =
        std::sync::Arc::new(JenkinsAgent::from_settings(Some(&settings), None).expect("agent"));
    let mut pj = jenkins_job("jk-bearer");
    pj.spec.job = "solo".into();
    agent.start(&pj).await.expect("start");
    let id = jenkins.wait_queued("solo", "jk-bearer", DEADLINE).await;
    let (wait, _rx) = spawn_wait(&agent, &pj);
    let n = jenkins.start_build(id).expect("build");
    jenkins.finish_build("solo", n, "SUCCESS");
    assert_eq!(outcome(wait).await.state, ProwJobState::Success);
    let requests = jenkins.server().requests();
    assert!(
        requests
            .iter()
            .all(|r| r.header("authorization") == Some("Bearer bearer-token-value"))
    );
    assert!(
        requests.iter().all(|r| r.path != "/crumbIssuer/api/json"),
        "no crumb without csrf_protect"
    );
}
