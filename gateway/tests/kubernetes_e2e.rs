//! The kubernetes agent end to end: a real `bosun serve` with two build clusters, each a
//! Kubernetes test API server from conformance/; the tests play kubelet.

mod common;

use bosun_conformance::kube_api::{Gvr, KubeApiServer, Verb};
use bosun_proto::ProwJobState;
use bosun_proto::api::{AbortRequest, LogsRequest};
use common::*;
use futures::StreamExt;
use serde_json::json;

fn start_gateway(c: &Clusters, extra: &[&str]) -> Gateway {
    let a = c.dir.path().join("a.yaml").display().to_string();
    let b = c.dir.path().join("b.yaml").display().to_string();
    let mut args = vec!["--kubeconfig", a.as_str(), "--kubeconfig", b.as_str()];
    args.extend_from_slice(extra);
    Gateway::start(&c.dir.path().join("data"), &args)
}

fn kube_job(job: &str, cluster: &str, extra: serde_json::Value) -> String {
    let mut v = json!({
        "apiVersion": "prow.k8s.io/v1",
        "kind": "ProwJob",
        "spec": {
            "type": "periodic",
            "job": job,
            "agent": "kubernetes",
            "cluster": cluster,
            "pod_spec": {"containers": [{"name": "test", "image": "alpine", "command": ["true"]}]}
        }
    });
    if let (Some(spec), Some(extra)) = (v["spec"].as_object_mut(), extra.as_object()) {
        for (k, val) in extra {
            spec.insert(k.clone(), val.clone());
        }
    }
    v.to_string()
}

/// Waits until the pod exists on `server`; returns it.
fn wait_pod(server: &KubeApiServer, name: &str) -> serde_json::Value {
    let mut pod = None;
    eventually(&format!("pod {name}"), || {
        pod = server.get(Gvr::PODS, "default", name);
        pod.is_some()
    });
    pod.expect("pod")
}

fn build_label(pod: &serde_json::Value) -> String {
    pod["metadata"]["labels"]["prow.k8s.io/build-id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_run_on_the_cluster_the_job_names() {
    let cl = two_clusters().await;
    let gw = start_gateway(&cl, &[]);
    let mut c = gw.client().await;

    let on_a = submit(&mut c, kube_job("kube-ok", "a", json!({}))).await;
    let job = wait_state(&mut c, &on_a, ProwJobState::Pending).await;
    let pod = wait_pod(&cl.a, &on_a);
    assert!(
        cl.b.get(Gvr::PODS, "default", &on_a).is_none(),
        "not on cluster b"
    );
    let status = job.status.clone().expect("status");
    assert_eq!(build_label(&pod), status.build_id);
    assert_eq!(pod["metadata"]["labels"]["created-by-prow"], "true");
    assert_eq!(pod["metadata"]["labels"]["prow.k8s.io/id"], on_a.as_str());
    assert_eq!(pod["spec"]["restartPolicy"], "Never");

    cl.a.set_pod_phase("default", &on_a, "Running")
        .expect("running");
    cl.a.append_log("default", &on_a, "test", b"hello from the pod\n");
    let mut logs = c
        .logs(LogsRequest {
            name: on_a.clone(),
            follow: true,
        })
        .await
        .expect("logs")
        .into_inner();
    let first = tokio::time::timeout(DEADLINE, logs.next())
        .await
        .expect("log chunk in time")
        .expect("some")
        .expect("chunk");
    assert!(String::from_utf8_lossy(&first.data).contains("hello from the pod"));
    cl.a.set_pod_phase("default", &on_a, "Succeeded")
        .expect("succeeded");
    let done = wait_complete(&mut c, &on_a).await;
    assert_eq!(done.state(), ProwJobState::Success);
    assert_eq!(done.status.expect("status").description, "Job succeeded.");

    let on_b = submit(&mut c, kube_job("kube-fail", "b", json!({}))).await;
    wait_pod(&cl.b, &on_b);
    cl.b.set_pod_phase("default", &on_b, "Failed")
        .expect("failed");
    let done = wait_complete(&mut c, &on_b).await;
    assert_eq!(done.state(), ProwJobState::Failure);
    assert_eq!(done.status.expect("status").description, "Job failed.");

    let nope = submit(&mut c, kube_job("kube-nope", "nope", json!({}))).await;
    let done = wait_complete(&mut c, &nope).await;
    assert_eq!(done.state(), ProwJobState::Error);
    let desc = done.status.expect("status").description;
    assert!(desc.contains("\"nope\"") && desc.contains("a, b"), "{desc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evicted_pods_are_revived_up_to_the_limit() {
    let cl = two_clusters().await;
    let config = cl.dir.path().join("config.yaml");
    std::fs::write(&config, "plank:\n  max_revivals: 1\n").expect("config");
    let gw = start_gateway(&cl, &["--config-path", &config.display().to_string()]);
    let mut c = gw.client().await;

    let name = submit(&mut c, kube_job("kube-evict", "a", json!({}))).await;
    let first = wait_pod(&cl.a, &name);
    let evict = json!({"phase": "Failed", "reason": "Evicted", "message": "node pressure"});
    cl.a.patch_status(Gvr::PODS, "default", &name, &evict)
        .expect("evict");
    // Recreated with a new build id.
    let mut second = None;
    eventually("the revived pod", || {
        second =
            cl.a.get(Gvr::PODS, "default", &name)
                .filter(|p| build_label(p) != build_label(&first));
        second.is_some()
    });
    let job = get(&mut c, &name).await;
    let status = job.status.expect("status");
    assert_eq!(status.pod_revival_count, 1);
    assert_eq!(status.build_id, build_label(second.as_ref().expect("pod")));
    assert_eq!(status.state, ProwJobState::Pending);
    cl.a.patch_status(Gvr::PODS, "default", &name, &evict)
        .expect("evict again");
    let done = wait_complete(&mut c, &name).await;
    assert_eq!(done.state(), ProwJobState::Error);
    let desc = done.status.expect("status").description;
    assert!(
        desc.contains("max revivals (1)") && desc.contains("evicted"),
        "{desc}"
    );

    let strict = submit(
        &mut c,
        kube_job("kube-evict-strict", "a", json!({"error_on_eviction": true})),
    )
    .await;
    wait_pod(&cl.a, &strict);
    cl.a.patch_status(Gvr::PODS, "default", &strict, &evict)
        .expect("evict");
    let done = wait_complete(&mut c, &strict).await;
    assert_eq!(done.state(), ProwJobState::Error);
    assert_eq!(
        done.status.expect("status").description,
        "Job pod was evicted by the cluster."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oom_deleted_aborted_and_refused_pods_end_as_plank_says() {
    let cl = two_clusters().await;
    let gw = start_gateway(&cl, &[]);
    let mut c = gw.client().await;

    let oom = submit(&mut c, kube_job("kube-oom", "a", json!({}))).await;
    wait_pod(&cl.a, &oom);
    cl.a.patch_status(
        Gvr::PODS,
        "default",
        &oom,
        &json!({"phase": "Running", "containerStatuses": [{"name": "test", "image": "alpine", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}),
    )
    .expect("oom");
    let done = wait_complete(&mut c, &oom).await;
    assert_eq!(done.state(), ProwJobState::Error);
    assert_eq!(
        done.status.expect("status").description,
        "Job pod was OOM killed by the cluster."
    );

    let deleted = submit(&mut c, kube_job("kube-deleted", "a", json!({}))).await;
    wait_pod(&cl.a, &deleted);
    cl.a.set_pod_phase("default", &deleted, "Running")
        .expect("running");
    cl.a.delete(Gvr::PODS, "default", &deleted).expect("delete");
    let done = wait_complete(&mut c, &deleted).await;
    assert_eq!(done.state(), ProwJobState::Error);
    assert_eq!(
        done.status.expect("status").description,
        "Pod got deleted unexpectedly"
    );

    let aborted = submit(&mut c, kube_job("kube-abort", "a", json!({}))).await;
    wait_pod(&cl.a, &aborted);
    cl.a.set_pod_phase("default", &aborted, "Running")
        .expect("running");
    c.abort(AbortRequest {
        name: aborted.clone(),
        reason: "user".into(),
    })
    .await
    .expect("abort");
    let done = wait_complete(&mut c, &aborted).await;
    assert_eq!(done.state(), ProwJobState::Aborted);
    assert!(
        cl.a.get(Gvr::PODS, "default", &aborted).is_none(),
        "pod deleted"
    );

    cl.a.fail_next(Verb::Create, Gvr::PODS, 422);
    let refused = submit(&mut c, kube_job("kube-refused", "a", json!({}))).await;
    let done = wait_complete(&mut c, &refused).await;
    assert_eq!(done.state(), ProwJobState::Error);
    let desc = done.status.expect("status").description;
    assert!(desc.contains("Pod can not be created"), "{desc}");

    cl.a.fail_next(Verb::Create, Gvr::PODS, 500);
    let retried = submit(&mut c, kube_job("kube-retried", "a", json!({}))).await;
    wait_pod(&cl.a, &retried);
    cl.a.set_pod_phase("default", &retried, "Succeeded")
        .expect("succeeded");
    assert_eq!(
        wait_complete(&mut c, &retried).await.state(),
        ProwJobState::Success
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_does_not_stall_the_other() {
    let cl = two_clusters().await;
    let gw = start_gateway(&cl, &["--http-addr", "127.0.0.1:0"]);
    let mut c = gw.client().await;
    cl.b.stop().await;
    let http = gw.http_addr.clone().expect("http address");
    let (code, body) = tokio::task::spawn_blocking(move || http_get(&http, "/readyz"))
        .await
        .expect("readyz");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("cluster a: ok"), "{body}");
    assert!(body.contains("cluster b: unreachable"), "{body}");
    let on_b = submit(&mut c, kube_job("kube-b-down", "b", json!({}))).await;
    let on_a = submit(&mut c, kube_job("kube-a-up", "a", json!({}))).await;
    wait_pod(&cl.a, &on_a);
    cl.a.set_pod_phase("default", &on_a, "Succeeded")
        .expect("succeeded");
    assert_eq!(
        wait_complete(&mut c, &on_a).await.state(),
        ProwJobState::Success
    );
    let waiting = get(&mut c, &on_b).await;
    assert!(
        !waiting.is_complete(),
        "the job on the down cluster waits, it is not lost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_gateway_reattaches_without_a_second_pod() {
    let cl = two_clusters().await;
    let mut gw = start_gateway(&cl, &[]);
    let mut c = gw.client().await;
    let name = submit(&mut c, kube_job("kube-restart", "a", json!({}))).await;
    wait_state(&mut c, &name, ProwJobState::Pending).await;
    wait_pod(&cl.a, &name);
    cl.a.set_pod_phase("default", &name, "Running")
        .expect("running");
    drop(c);
    gw.kill9();
    let gw = start_gateway(&cl, &[]);
    let mut c = gw.client().await;
    cl.a.set_pod_phase("default", &name, "Succeeded")
        .expect("succeeded");
    assert_eq!(
        wait_complete(&mut c, &name).await.state(),
        ProwJobState::Success
    );
    assert_eq!(
        cl.a.request_count(Verb::Create, Gvr::PODS),
        1,
        "no pod created twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decorated_job_runs_as_prows_decorated_pod() {
    let cl = two_clusters().await;
    let gw = start_gateway(&cl, &[]);
    let mut c = gw.client().await;
    let name = submit(
        &mut c,
        kube_job("kube-decorated", "a", decorated(json!({}))),
    )
    .await;
    let pod = wait_pod(&cl.a, &name);
    let init: Vec<&str> = pod["spec"]["initContainers"]
        .as_array()
        .expect("init containers")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        init,
        vec!["initupload", "place-entrypoint"],
        "no refs, so no clonerefs"
    );
    let containers: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(containers, vec!["test", "sidecar"]);
    assert_eq!(
        pod["spec"]["containers"][0]["command"][0],
        "/tools/entrypoint"
    );
    cl.a.set_pod_phase("default", &name, "Running")
        .expect("running");
    cl.a.set_pod_phase("default", &name, "Succeeded")
        .expect("succeeded");
    let done = wait_complete(&mut c, &name).await;
    assert_eq!(done.state(), ProwJobState::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_never_scheduled_times_out() {
    let cl = two_clusters().await;
    let gw = start_gateway(&cl, &[]);
    let mut c = gw.client().await;
    let name = submit(
        &mut c,
        kube_job(
            "kube-unscheduled",
            "a",
            decorated(json!({"pod_unscheduled_timeout": "1s"})),
        ),
    )
    .await;
    let done = wait_complete(&mut c, &name).await;
    assert_eq!(done.state(), ProwJobState::Error);
    assert_eq!(
        done.status.expect("status").description,
        "Pod scheduling timeout."
    );
    assert!(
        cl.a.get(Gvr::PODS, "default", &name).is_none(),
        "the pod is deleted"
    );
}

/// A spec fragment with a full decoration config plus `extra` decoration fields.
fn decorated(extra: serde_json::Value) -> serde_json::Value {
    let mut dc = json!({
        "timeout": "10m",
        "grace_period": "15s",
        "utility_images": {
            "clonerefs": "gcr.io/k8s-prow/clonerefs:v1",
            "initupload": "gcr.io/k8s-prow/initupload:v1",
            "entrypoint": "gcr.io/k8s-prow/entrypoint:v1",
            "sidecar": "gcr.io/k8s-prow/sidecar:v1"
        },
        "gcs_configuration": {"bucket": "gs://logs", "path_strategy": "explicit"}
    });
    if let (Some(dc), Some(extra)) = (dc.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            dc.insert(k.clone(), v.clone());
        }
    }
    json!({ "decoration_config": dc })
}
