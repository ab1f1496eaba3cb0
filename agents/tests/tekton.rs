//! The tekton-pipeline agent against the Kubernetes test API server from conformance/, with
//! the test playing Tekton's controller: success, failure, abort, logs, re-attach, errors.

mod common;

use std::time::Duration;

use bosun_agents::artifacts::Artifacts;
use bosun_agents::kubernetes::BuildClusters;
use bosun_agents::tekton::{TektonAgent, TektonAgentConfig};
use bosun_agents::{Agent, AgentError, Progress};
use bosun_conformance::kube_api::{Gvr, KubeApiServer, Verb};
use bosun_conformance::tekton::{TektonController, validate_pipelinerun_v1};
use bosun_proto::{ProwJob, ProwJobState};
use common::{eventually, job};
use futures::StreamExt;
use serde_json::json;
use tokio::sync::mpsc;

const DEADLINE: Duration = Duration::from_secs(30);

struct Env {
    server: KubeApiServer,
    agent: TektonAgent,
    clusters: BuildClusters,
    artifacts: Artifacts,
    _dir: tempfile::TempDir,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = KubeApiServer::start().await.expect("api server");
    let kubeconfig = dir.path().join("build.yaml");
    server
        .write_kubeconfig(&kubeconfig, "build")
        .expect("kubeconfig");
    let clusters = BuildClusters::load(&[kubeconfig], &[])
        .await
        .expect("clusters");
    let artifacts =
        Artifacts::local_dir(dir.path().join("artifacts"), "file:///artifacts").expect("artifacts");
    let agent = TektonAgent::new(
        clusters.clone(),
        TektonAgentConfig {
            pod_namespace: "test-pods".into(),
            artifacts: Some(artifacts.clone()),
        },
    );
    Env {
        server,
        agent,
        clusters,
        artifacts,
        _dir: dir,
    }
}

fn tekton_job(name: &str, cluster: &str) -> ProwJob {
    job(json!({
        "apiVersion": "prow.k8s.io/v1", "kind": "ProwJob",
        "metadata": {"name": name},
        "spec": {
            "type": "postsubmit", "job": "widget-build", "agent": "tekton-pipeline", "cluster": cluster,
            "refs": {"org": "acme", "repo": "widget", "base_ref": "main", "base_sha": "abc"},
            "pipeline_run_spec": {
                "pipelineSpec": {"tasks": [
                    {"taskRef": {"name": "PROW_IMPLICIT_GIT_REF"}},
                    {"name": "unit", "taskRef": {"name": "go-test"}, "runAfter": ["prow-implicit-git-ref"]}
                ]}
            }
        },
        "status": {"state": "pending", "build_id": "501"}
    }))
}

async fn next_progress(rx: &mut mpsc::UnboundedReceiver<Progress>, want: &Progress) {
    let found = tokio::time::timeout(DEADLINE, async {
        while let Some(p) = rx.recv().await {
            if &p == want {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(found, "no {want:?} progress");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_succeeds_streams_its_step_logs_and_stores_them() {
    let env = env().await;
    let pj = tekton_job("tk-success", "build");
    env.agent.check(&pj).expect("check");
    let started = env.agent.start(&pj).await.expect("start");
    assert_eq!(started.workload_name, "tk-success");
    let run = env
        .server
        .get(Gvr::PIPELINERUNS, "test-pods", "tk-success")
        .expect("PipelineRun in the pod namespace");
    validate_pipelinerun_v1(&run).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(run["metadata"]["labels"]["prow.k8s.io/id"], "tk-success");
    assert_eq!(run["metadata"]["labels"]["prow.k8s.io/build-id"], "501");
    assert_eq!(
        run["spec"]["pipelineSpec"]["tasks"][0],
        json!({"name": "prow-implicit-git-ref", "taskRef": {"name": "git-clone"},
               "params": [{"name": "url", "value": "https://github.com/acme/widget.git"},
                          {"name": "revision", "value": "abc"}]})
    );
    // Idempotent: a second start creates nothing.
    env.agent.start(&pj).await.expect("start again");
    assert_eq!(env.server.list(Gvr::PIPELINERUNS, None).len(), 1);

    let (tx, mut rx) = mpsc::unbounded_channel();
    let agent = env.agent.clone();
    let waiting = pj.clone();
    let wait = tokio::spawn(async move { agent.wait(&waiting, tx).await });
    let tekton = TektonController::new(&env.server, "test-pods");
    tekton.start("tk-success").expect("start run");
    next_progress(&mut rx, &Progress::Running).await;

    let clone_pod = tekton
        .run_task("tk-success", "prow-implicit-git-ref", &["clone"])
        .expect("task");
    tekton.log(&clone_pod, "clone", "Cloning into widget...\n");
    let mut logs = env.agent.logs(&pj, true).await.expect("logs");
    let mut seen = String::new();
    tokio::time::timeout(DEADLINE, async {
        while !seen.contains("Cloning into widget") {
            let chunk = logs.next().await.expect("more log").expect("chunk");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .expect("clone log in time");
    tekton.end_task(&clone_pod, "Succeeded").expect("end clone");
    let unit_pod = tekton
        .run_task("tk-success", "unit", &["test", "report"])
        .expect("task");
    tekton.log(&unit_pod, "test", "ok  widget 0.1s\n");
    tekton.log(&unit_pod, "report", "all good\n");
    tekton.end_task(&unit_pod, "Succeeded").expect("end unit");
    tekton
        .finish(
            "tk-success",
            "True",
            "Succeeded",
            "Tasks Completed: 2 (Failed: 0, Cancelled 0), Skipped: 0",
        )
        .expect("finish");
    let outcome = tokio::time::timeout(DEADLINE, wait)
        .await
        .expect("wait in time")
        .expect("join")
        .expect("outcome");
    assert_eq!(outcome.state, ProwJobState::Success);
    assert_eq!(
        outcome.description,
        "Tasks Completed: 2 (Failed: 0, Cancelled 0), Skipped: 0"
    );
    let tekton_end = tekton.run("tk-success").expect("run")["status"]["completionTime"].clone();
    assert_eq!(
        outcome.completed_at.map(|t| t.0.to_string()),
        tekton_end.as_str().map(str::to_owned),
        "the job's completion time is Tekton's"
    );
    // The followed log ends with the run, after every step.
    let rest = tokio::time::timeout(DEADLINE, logs.collect::<Vec<_>>())
        .await
        .expect("followed log ends");
    for chunk in rest {
        seen.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
    }
    assert!(
        seen.contains("ok  widget") && seen.contains("all good"),
        "{seen}"
    );
    let stored = env
        .artifacts
        .get(&pj, "build-log.txt")
        .await
        .expect("read")
        .expect("build-log.txt");
    let stored = String::from_utf8_lossy(&stored);
    let order = [
        "prow-implicit-git-ref / clone",
        "Cloning",
        "unit / test",
        "ok  widget",
        "unit / report",
        "all good",
    ];
    let mut at = 0;
    for part in order {
        let i = stored[at..]
            .find(part)
            .unwrap_or_else(|| panic!("{part:?} after {at} in {stored}"));
        at += i;
    }
    assert!(
        env.artifacts
            .get(&pj, "finished.json")
            .await
            .expect("read")
            .is_some()
    );
    env.agent.cleanup(&pj).await.expect("cleanup");
    assert!(
        tekton.run("tk-success").is_none(),
        "cleanup deletes the run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_abort_and_reattach() {
    let env = env().await;
    let tekton = TektonController::new(&env.server, "test-pods");

    // Failure: reason and message in the description.
    let failing = tekton_job("tk-fail", "build");
    env.agent.start(&failing).await.expect("start");
    tekton.start("tk-fail").expect("start run");
    tekton
        .finish(
            "tk-fail",
            "False",
            "Failed",
            "Tasks Completed: 1 (Failed: 1, Cancelled 0)",
        )
        .expect("fail");
    let (tx, _rx) = mpsc::unbounded_channel();
    let outcome = env.agent.wait(&failing, tx).await.expect("outcome");
    assert_eq!(outcome.state, ProwJobState::Failure);
    assert_eq!(
        outcome.description,
        "Failed: Tasks Completed: 1 (Failed: 1, Cancelled 0)"
    );

    // Abort: spec.status Cancelled, aborted once Tekton confirms.
    let aborted = tekton_job("tk-abort", "build");
    env.agent.start(&aborted).await.expect("start");
    tekton.start("tk-abort").expect("start run");
    let (tx, _rx) = mpsc::unbounded_channel();
    let agent = env.agent.clone();
    let waiting = aborted.clone();
    let wait = tokio::spawn(async move { agent.wait(&waiting, tx).await });
    env.agent.abort(&aborted).await.expect("abort");
    assert!(tekton.cancel_requested("tk-abort"));
    assert_eq!(
        tekton.run("tk-abort").expect("run")["spec"]["status"],
        "Cancelled"
    );
    assert!(!wait.is_finished(), "not aborted before Tekton confirms");
    tekton.confirm_cancel("tk-abort").expect("cancelled");
    let outcome = tokio::time::timeout(DEADLINE, wait)
        .await
        .expect("in time")
        .expect("join")
        .expect("outcome");
    assert_eq!(outcome.state, ProwJobState::Aborted);
    env.agent
        .abort(&aborted)
        .await
        .expect("abort again is fine");

    // Re-attach: a fresh agent (a restarted gateway) follows a running run from the job alone.
    let running = tekton_job("tk-restart", "build");
    env.agent.start(&running).await.expect("start");
    tekton.start("tk-restart").expect("start run");
    let fresh = TektonAgent::new(
        env.clusters.clone(),
        TektonAgentConfig {
            pod_namespace: "test-pods".into(),
            artifacts: None,
        },
    );
    let (tx, mut rx) = mpsc::unbounded_channel();
    let waiting = running.clone();
    let wait = tokio::spawn(async move { fresh.wait(&waiting, tx).await });
    next_progress(&mut rx, &Progress::Running).await;
    tekton
        .finish("tk-restart", "True", "Succeeded", "")
        .expect("finish");
    let outcome = tokio::time::timeout(DEADLINE, wait)
        .await
        .expect("in time")
        .expect("join")
        .expect("outcome");
    assert_eq!(
        (outcome.state, outcome.description.as_str()),
        (ProwJobState::Success, "Succeeded")
    );
    assert_eq!(
        env.server.request_count(Verb::Create, Gvr::PIPELINERUNS),
        3,
        "one create per job"
    );

    // A deleted run: NotFound, also mid-wait.
    let deleted = tekton_job("tk-deleted", "build");
    env.agent.start(&deleted).await.expect("start");
    let (tx, _rx) = mpsc::unbounded_channel();
    let agent = env.agent.clone();
    let waiting = deleted.clone();
    let wait = tokio::spawn(async move { agent.wait(&waiting, tx).await });
    eventually(10, "the watch to see the run", || {
        env.server.request_count(Verb::Watch, Gvr::PIPELINERUNS) >= 1
    })
    .await;
    env.server
        .delete(Gvr::PIPELINERUNS, "test-pods", "tk-deleted")
        .expect("delete");
    let result = tokio::time::timeout(DEADLINE, wait)
        .await
        .expect("in time")
        .expect("join");
    assert!(matches!(result, Err(AgentError::NotFound(_))), "{result:?}");
    let (tx, _rx) = mpsc::unbounded_channel();
    let result = env.agent.wait(&deleted, tx).await;
    assert!(matches!(result, Err(AgentError::NotFound(_))), "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_say_what_kind_they_are() {
    let env = env().await;
    let unknown = tekton_job("tk-nowhere", "nowhere");
    let err = env.agent.check(&unknown).expect_err("unknown cluster");
    assert!(
        matches!(&err, AgentError::InvalidJob(m) if m.contains("\"nowhere\"") && m.contains("build")),
        "{err}"
    );
    let mut no_spec = tekton_job("tk-nospec", "build");
    no_spec.spec.pipeline_run_spec = None;
    assert!(matches!(
        env.agent.check(&no_spec),
        Err(AgentError::InvalidJob(_))
    ));

    env.server.fail_next(Verb::Create, Gvr::PIPELINERUNS, 422);
    let refused = env.agent.start(&tekton_job("tk-422", "build")).await;
    assert!(
        matches!(&refused, Err(AgentError::InvalidJob(m)) if m.contains("PipelineRun can not be created")),
        "{refused:?}"
    );
    env.server.fail_next(Verb::Create, Gvr::PIPELINERUNS, 500);
    let retry = env.agent.start(&tekton_job("tk-500", "build")).await;
    assert!(
        matches!(retry, Err(AgentError::Unavailable(_))),
        "{retry:?}"
    );
    env.agent
        .start(&tekton_job("tk-500", "build"))
        .await
        .expect("the retry creates it");

    // A run of the same name that is not this job's is not taken over.
    env.server
        .create(
            Gvr::PIPELINERUNS,
            "test-pods",
            json!({"metadata": {"name": "tk-foreign"}, "spec": {"pipelineRef": {"name": "x"}}}),
        )
        .expect("foreign run");
    let foreign = env.agent.start(&tekton_job("tk-foreign", "build")).await;
    assert!(
        matches!(foreign, Err(AgentError::InvalidJob(_))),
        "{foreign:?}"
    );

    env.server.stop().await;
    let down = env.agent.start(&tekton_job("tk-down", "build")).await;
    assert!(matches!(down, Err(AgentError::Unavailable(_))), "{down:?}");
}
