//! The tekton-pipeline agent end to end: a real `bosun serve` with two build clusters (each a
//! Kubernetes test API server from conformance/), driven over gRPC; the tests play Tekton's
//! controller. Success, failure, abort, timeouts, logs, restart re-attach, and a PR presubmit
//! from Prow job config that becomes a valid v1 PipelineRun on the cluster it names.

mod common;

use std::collections::HashMap;

use bosun_conformance::kube_api::{Gvr, KubeApiServer, Verb};
use bosun_conformance::tekton::{TektonController, validate_pipelinerun_v1};
use bosun_proto::ProwJobState;
use bosun_proto::api::{AbortRequest, Pull, Refs, TriggerRequest};
use common::*;
use serde_json::json;

const NS: &str = "test-pods";

/// Prow config: `pod_namespace`, plank timeouts (`extra_plank`), and a presubmit of
/// acme/widget that runs a Tekton pipeline on cluster `b`.
fn write_config(c: &Clusters, extra_plank: &str) -> (String, String) {
    let config = c.dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!("pod_namespace: {NS}\nplank:\n  max_revivals: 3\n{extra_plank}"),
    )
    .expect("config");
    let jobs = c.dir.path().join("jobs.yaml");
    std::fs::write(
        &jobs,
        r#"presubmits:
  acme/widget:
  - name: pull-widget-tekton
    agent: tekton-pipeline
    cluster: b
    always_run: true
    context: ci/tekton
    pipeline_run_spec:
      pipelineSpec:
        workspaces:
        - name: src
        tasks:
        - taskRef:
            name: PROW_IMPLICIT_GIT_REF
          workspaces:
          - name: output
            workspace: src
        - name: unit
          runAfter: [prow-implicit-git-ref]
          taskRef:
            name: go-test
          workspaces:
          - name: source
            workspace: src
      workspaces:
      - name: src
        emptyDir: {}
"#,
    )
    .expect("jobs");
    (config.display().to_string(), jobs.display().to_string())
}

fn start_gateway(c: &Clusters, extra_plank: &str) -> Gateway {
    let a = c.dir.path().join("a.yaml").display().to_string();
    let b = c.dir.path().join("b.yaml").display().to_string();
    let (config, jobs) = write_config(c, extra_plank);
    Gateway::start(
        &c.dir.path().join("data"),
        &[
            "--kubeconfig",
            &a,
            "--kubeconfig",
            &b,
            "--config-path",
            &config,
            "--job-config-path",
            &jobs,
        ],
    )
}

fn tekton_job(job: &str, cluster: &str) -> String {
    json!({
        "apiVersion": "prow.k8s.io/v1",
        "kind": "ProwJob",
        "spec": {
            "type": "periodic",
            "job": job,
            "agent": "tekton-pipeline",
            "cluster": cluster,
            "namespace": NS,
            "pipeline_run_spec": {"pipelineRef": {"name": "nightly"}}
        }
    })
    .to_string()
}

/// Waits until the PipelineRun exists on `server`; returns it.
fn wait_run(server: &KubeApiServer, name: &str) -> serde_json::Value {
    let mut run = None;
    eventually(&format!("PipelineRun {name}"), || {
        run = server.get(Gvr::PIPELINERUNS, NS, name);
        run.is_some()
    });
    run.expect("run")
}

async fn trigger_pr(
    c: &mut bosun_proto::api::job_gateway_client::JobGatewayClient<tonic::transport::Channel>,
    number: i64,
    sha: &str,
) -> String {
    c.trigger(TriggerRequest {
        job: "pull-widget-tekton".into(),
        r#type: "presubmit".into(),
        refs: Some(Refs {
            org: "acme".into(),
            repo: "widget".into(),
            base_ref: "main".into(),
            base_sha: "a1b2c3".into(),
            pulls: vec![Pull {
                number,
                author: "alice".into(),
                sha: sha.into(),
                title: "Make it faster".into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        env: HashMap::new(),
        labels: HashMap::new(),
        annotations: HashMap::new(),
        idempotency_key: String::new(),
        agent: String::new(),
    })
    .await
    .expect("trigger")
    .into_inner()
    .job
    .expect("job")
    .name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pr_presubmit_becomes_a_valid_pipelinerun_on_its_cluster_and_its_outcome_reaches_the_job()
{
    let cl = two_clusters().await;
    let gw = start_gateway(&cl, "");
    let mut c = gw.client().await;

    let name = trigger_pr(&mut c, 42, "d4e5f6").await;
    let run = wait_run(&cl.b, &name);
    assert!(
        cl.a.get(Gvr::PIPELINERUNS, NS, &name).is_none(),
        "not on cluster a"
    );
    validate_pipelinerun_v1(&run).unwrap_or_else(|e| panic!("{e:#?}\n{run:#}"));
    let job = wait_state(&mut c, &name, ProwJobState::Pending).await;
    let status = job.status.clone().expect("status");
    assert_eq!(status.pod_name, name);
    let labels = &run["metadata"]["labels"];
    assert_eq!(labels["prow.k8s.io/id"], name.as_str());
    assert_eq!(labels["prow.k8s.io/build-id"], status.build_id.as_str());
    assert_eq!(labels["prow.k8s.io/type"], "presubmit");
    assert_eq!(labels["prow.k8s.io/refs.pull"], "42");
    assert_eq!(labels["created-by-prow"], "true");
    assert_eq!(
        run["metadata"]["annotations"]["prow.k8s.io/context"],
        "ci/tekton"
    );
    assert_eq!(
        run["spec"]["pipelineSpec"]["tasks"][0],
        json!({"name": "prow-implicit-git-ref", "taskRef": {"name": "git-clone"},
               "params": [{"name": "url", "value": "https://github.com/acme/widget.git"},
                          {"name": "revision", "value": "d4e5f6"}],
               "workspaces": [{"name": "output", "workspace": "src"}]})
    );
    let params: HashMap<String, String> = run["spec"]["params"]
        .as_array()
        .expect("params")
        .iter()
        .filter_map(|p| {
            Some((
                p["name"].as_str()?.to_owned(),
                p["value"].as_str()?.to_owned(),
            ))
        })
        .collect();
    assert_eq!(params["PROW_JOB_ID"], name);
    assert_eq!(params["BUILD_ID"], status.build_id);
    assert_eq!(params["PULL_NUMBER"], "42");
    assert_eq!(params["PULL_PULL_SHA"], "d4e5f6");
    assert_eq!(params["JOB_NAME"], "pull-widget-tekton");

    let tekton = TektonController::new(&cl.b, NS);
    tekton.start(&name).expect("start");
    let clone = tekton
        .run_task(&name, "prow-implicit-git-ref", &["clone"])
        .expect("clone task");
    tekton.log(&clone, "clone", "Cloned acme/widget at d4e5f6\n");
    follow_logs_until(&mut c, &name, "Cloned acme/widget").await;
    tekton.end_task(&clone, "Succeeded").expect("end");
    let unit = tekton
        .run_task(&name, "unit", &["test"])
        .expect("unit task");
    tekton.log(&unit, "test", "PASS\n");
    tekton.end_task(&unit, "Succeeded").expect("end");
    let finished = tekton
        .finish(
            &name,
            "True",
            "Succeeded",
            "Tasks Completed: 2 (Failed: 0, Cancelled 0), Skipped: 0",
        )
        .expect("finish");
    let done = wait_complete(&mut c, &name).await;
    assert_eq!(done.state(), ProwJobState::Success);
    let status = done.status.expect("status");
    assert_eq!(
        status.description,
        "Tasks Completed: 2 (Failed: 0, Cancelled 0), Skipped: 0"
    );
    assert_eq!(
        status.completion_time.map(|t| t.0.to_string()),
        finished["status"]["completionTime"]
            .as_str()
            .map(str::to_owned),
        "completionTime copied from the PipelineRun"
    );
    // After the end, the log comes from storage and has every step.
    let text = read_logs(&mut c, &name).await;
    assert!(
        text.contains("Cloned acme/widget")
            && text.contains("unit / test")
            && text.contains("PASS"),
        "{text}"
    );

    // A failing run: reason and message in the description.
    let failing = trigger_pr(&mut c, 43, "0f0f0f").await;
    wait_run(&cl.b, &failing);
    tekton.start(&failing).expect("start");
    tekton
        .finish(
            &failing,
            "False",
            "Failed",
            "Tasks Completed: 2 (Failed: 1, Cancelled 0), Skipped: 0",
        )
        .expect("fail");
    let done = wait_complete(&mut c, &failing).await;
    assert_eq!(done.state(), ProwJobState::Failure);
    assert_eq!(
        done.status.expect("status").description,
        "Failed: Tasks Completed: 2 (Failed: 1, Cancelled 0), Skipped: 0"
    );

    // An unknown cluster is an error naming the clusters that exist (no fallback).
    let nowhere = submit(&mut c, tekton_job("tekton-nowhere", "nowhere")).await;
    let done = wait_complete(&mut c, &nowhere).await;
    assert_eq!(done.state(), ProwJobState::Error);
    let desc = done.status.expect("status").description;
    assert!(
        desc.contains("\"nowhere\"") && desc.contains("a, b"),
        "{desc}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_cancels_the_pipelinerun_and_ends_once_tekton_confirms() {
    let cl = two_clusters().await;
    let gw = start_gateway(&cl, "");
    let mut c = gw.client().await;
    let tekton = TektonController::new(&cl.a, NS);

    let aborted = submit(&mut c, tekton_job("tekton-abort", "a")).await;
    wait_run(&cl.a, &aborted);
    tekton.start(&aborted).expect("start");
    c.abort(AbortRequest {
        name: aborted.clone(),
        reason: "user".into(),
    })
    .await
    .expect("abort");
    eventually("spec.status Cancelled", || {
        tekton.cancel_requested(&aborted)
    });
    assert_eq!(
        tekton.run(&aborted).expect("run")["spec"]["status"],
        "Cancelled"
    );
    let job = get(&mut c, &aborted).await;
    assert!(!job.is_complete(), "not complete before Tekton confirms");
    tekton.confirm_cancel(&aborted).expect("cancelled");
    let done = wait_complete(&mut c, &aborted).await;
    assert_eq!(done.state(), ProwJobState::Aborted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plank_timeouts_cancel_the_pipelinerun() {
    let cl = two_clusters().await;
    let gw = start_gateway(
        &cl,
        "  pod_pending_timeout: 4s\n  pod_running_timeout: 2s\n",
    );
    let mut c = gw.client().await;
    let tekton = TektonController::new(&cl.a, NS);

    // Never started (no startTime): the pending timeout cancels it and ends in error.
    let stuck = submit(&mut c, tekton_job("tekton-stuck", "a")).await;
    wait_run(&cl.a, &stuck);
    eventually("the pending timeout to cancel the run", || {
        tekton.cancel_requested(&stuck)
    });
    tekton.confirm_cancel(&stuck).expect("cancelled");
    let done = wait_complete(&mut c, &stuck).await;
    assert_eq!(done.state(), ProwJobState::Error);
    assert_eq!(
        done.status.expect("status").description,
        "Pod pending timeout."
    );

    // Started but running too long: the running timeout cancels it and ends it aborted.
    let slow = submit(&mut c, tekton_job("tekton-slow", "a")).await;
    wait_run(&cl.a, &slow);
    tekton.start(&slow).expect("start");
    eventually("the running timeout to cancel the run", || {
        tekton.cancel_requested(&slow)
    });
    tekton.confirm_cancel(&slow).expect("cancelled");
    let done = wait_complete(&mut c, &slow).await;
    assert_eq!(done.state(), ProwJobState::Aborted);
    assert_eq!(
        done.status.expect("status").description,
        "Pod running timeout."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_gateway_reattaches_without_a_second_pipelinerun() {
    let cl = two_clusters().await;
    let mut gw = start_gateway(&cl, "");
    let mut c = gw.client().await;
    let name = submit(&mut c, tekton_job("tekton-restart", "a")).await;
    wait_state(&mut c, &name, ProwJobState::Pending).await;
    wait_run(&cl.a, &name);
    let tekton = TektonController::new(&cl.a, NS);
    tekton.start(&name).expect("start");
    drop(c);
    gw.kill9();

    let gw = start_gateway(&cl, "");
    let mut c = gw.client().await;
    let pod = tekton.run_task(&name, "build", &["make"]).expect("task");
    tekton.log(&pod, "make", "built after the restart\n");
    tekton.end_task(&pod, "Succeeded").expect("end");
    tekton
        .finish(&name, "True", "Succeeded", "")
        .expect("finish");
    let done = wait_complete(&mut c, &name).await;
    assert_eq!(done.state(), ProwJobState::Success);
    assert_eq!(done.status.expect("status").description, "Succeeded");
    assert_eq!(
        cl.a.request_count(Verb::Create, Gvr::PIPELINERUNS),
        1,
        "no PipelineRun created twice"
    );
    // Only one completion, as one state: the job's history never goes back.
    let again = get(&mut c, &name).await;
    assert_eq!(again.state(), ProwJobState::Success);
}
