//! The Kubernetes test API server, driven by the real `kube` client.

use std::time::Duration;

use bosun_conformance::kube_api::{Gvr, KubeApiServer, ServerOptions, Verb};
use bosun_proto::{ProwJob, ProwJobState};
use futures::{AsyncBufReadExt, Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{
    Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};

/// A safety net against a hung test, not a timing assertion.
const PATIENCE: Duration = Duration::from_secs(60);

async fn next<S: Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("the stream yields within the safety timeout")
}

async fn server_and_client() -> (KubeApiServer, Client) {
    let server = KubeApiServer::start().await.expect("server starts");
    let client = server.kube_client().await.expect("client builds");
    (server, client)
}

fn pod(name: &str, labels: Value) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]},
    }))
    .expect("a valid pod")
}

fn api_code<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Sends a raw request through the kube client (for what the typed API cannot express).
async fn raw(
    client: &Client,
    method: &str,
    path: &str,
    content_type: &str,
    body: Value,
) -> Result<Value, kube::Error> {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(serde_json::to_vec(&body).expect("json"))
        .expect("request");
    client.request::<Value>(request).await
}

#[tokio::test]
async fn discovery_and_authentication() {
    let (server, client) = server_and_client().await;
    let discovery = kube::Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery runs");
    for group in ["", "prow.k8s.io", "tekton.dev", "coordination.k8s.io"] {
        assert!(discovery.has_group(group), "group {group:?} is discovered");
    }
    let gvk = kube::api::GroupVersionKind::gvk("prow.k8s.io", "v1", "ProwJob");
    let (resource, caps) = discovery
        .resolve_gvk(&gvk)
        .expect("prowjobs are discovered");
    assert_eq!(resource.plural, "prowjobs");
    assert!(caps.supports_operation(kube::discovery::verbs::WATCH));
    let core = client
        .list_core_api_resources("v1")
        .await
        .expect("core resources");
    let names: Vec<&str> = core.resources.iter().map(|r| r.name.as_str()).collect();
    for name in ["pods", "pods/status", "pods/log", "events", "namespaces"] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    let version = client.apiserver_version().await.expect("version");
    assert_eq!(version.major, "1");

    // No token: 401, with a Status.
    let config = kube::Config::new(server.url().parse().expect("url"));
    let anonymous = Client::try_from(config).expect("client");
    let pods: Api<Pod> = Api::default_namespaced(anonymous);
    assert_eq!(api_code(pods.list(&ListParams::default()).await).0, 401);

    // A kubeconfig file written for bosun, read back through from_custom_kubeconfig.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kubeconfig");
    server.write_kubeconfig(&path, "build01").expect("written");
    let from_file = KubeApiServer::client_from_kubeconfig(&path, "build01")
        .await
        .expect("client from file");
    let pods: Api<Pod> = Api::default_namespaced(from_file);
    assert!(pods.list(&ListParams::default()).await.is_ok());
}

#[tokio::test]
async fn pod_create_get_list_update_patch_delete() {
    let (server, client) = server_and_client().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "ci");

    let created = pods
        .create(&PostParams::default(), &pod("a", json!({"app": "web"})))
        .await
        .expect("created");
    assert!(created.uid().is_some());
    assert!(created.creation_timestamp().is_some());
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(
        created.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Pending")
    );
    let rv1: u64 = created
        .resource_version()
        .expect("rv")
        .parse()
        .expect("decimal");
    assert!(
        server.get(Gvr::NAMESPACES, "", "ci").is_some(),
        "namespace made on first use"
    );

    let again = pods
        .create(&PostParams::default(), &pod("a", json!({})))
        .await;
    assert_eq!(api_code(again), (409, "AlreadyExists".into()));

    let mut generated = pod("", json!({}));
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("job-".into());
    let generated = pods
        .create(&PostParams::default(), &generated)
        .await
        .expect("generateName");
    assert!(generated.name_any().starts_with("job-") && generated.name_any().len() == 9);

    let got = pods.get("a").await.expect("get");
    assert_eq!(got, created);
    assert_eq!(
        api_code(pods.get("missing").await),
        (404, "NotFound".into())
    );

    let list = pods.list(&ListParams::default()).await.expect("list");
    assert_eq!(list.items.len(), 2);
    let list_rv: u64 = list
        .metadata
        .resource_version
        .expect("list rv")
        .parse()
        .expect("decimal");
    assert!(list_rv > rv1);

    // Update with the current resourceVersion, then a stale one: 409 Conflict.
    let mut update = got.clone();
    update.labels_mut().insert("tier".into(), "front".into());
    let updated = pods
        .replace("a", &PostParams::default(), &update)
        .await
        .expect("replace");
    assert_eq!(
        updated.labels().get("tier").map(String::as_str),
        Some("front")
    );
    let rv2: u64 = updated
        .resource_version()
        .expect("rv")
        .parse()
        .expect("decimal");
    assert!(rv2 > list_rv, "one strictly increasing counter");
    assert_eq!(
        updated.metadata.generation,
        Some(1),
        "labels do not bump generation"
    );
    let stale = pods.replace("a", &PostParams::default(), &update).await;
    assert_eq!(api_code(stale), (409, "Conflict".into()));
    let missing = pods
        .replace("nope", &PostParams::default(), &pod("nope", json!({})))
        .await;
    assert_eq!(api_code(missing).0, 404);

    // Merge patch; a patch carrying a stale resourceVersion conflicts.
    let patched = pods
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"tier": null, "x": "y"}}})),
        )
        .await
        .expect("merge patch");
    assert_eq!(patched.labels().get("x").map(String::as_str), Some("y"));
    assert!(!patched.labels().contains_key("tier"));
    let stale = pods
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"resourceVersion": rv1.to_string(), "labels": {"z": "1"}}}),
            ),
        )
        .await;
    assert_eq!(api_code(stale).0, 409);

    // A no-op patch writes nothing.
    let before = server.resource_version();
    pods.patch("a", &PatchParams::default(), &Patch::Merge(json!({})))
        .await
        .expect("no-op patch");
    assert_eq!(server.resource_version(), before);

    // JSON patch works; strategic merge patch is refused with 415.
    let json_patched = raw(
        &client,
        "PATCH",
        "/api/v1/namespaces/ci/pods/a",
        "application/json-patch+json",
        json!([{"op": "add", "path": "/metadata/annotations", "value": {"k": "v"}}]),
    )
    .await
    .expect("json patch");
    assert_eq!(json_patched["metadata"]["annotations"]["k"], "v");
    let strategic = pods
        .patch("a", &PatchParams::default(), &Patch::Strategic(json!({})))
        .await;
    assert_eq!(api_code(strategic).0, 415);

    // Server-side apply (simplified: create, then merge).
    let applied = pods
        .patch(
            "c",
            &PatchParams::apply("bosun"),
            &Patch::Apply(pod("c", json!({"k": "1"}))),
        )
        .await
        .expect("apply creates");
    assert_eq!(applied.labels().get("k").map(String::as_str), Some("1"));
    let applied = pods
        .patch(
            "c",
            &PatchParams::apply("bosun"),
            &Patch::Apply(pod("c", json!({"k": "2"}))),
        )
        .await
        .expect("apply updates");
    assert_eq!(applied.labels().get("k").map(String::as_str), Some("2"));

    let deleted = pods
        .delete("a", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(deleted.is_right(), "deleted at once: a Status");
    assert_eq!(api_code(pods.get("a").await).0, 404);
    assert_eq!(
        api_code(pods.delete("a", &DeleteParams::default()).await).0,
        404
    );
}

#[tokio::test]
async fn validation_is_what_a_real_server_rejects() {
    let (_server, client) = server_and_client().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let bad_name = pods
        .create(&PostParams::default(), &pod("Bad_Name", json!({})))
        .await;
    assert_eq!(api_code(bad_name), (422, "Invalid".into()));

    let mut no_containers = pod("empty", json!({}));
    if let Some(spec) = no_containers.spec.as_mut() {
        spec.containers.clear();
    }
    let created = pods.create(&PostParams::default(), &no_containers).await;
    assert_eq!(api_code(created).0, 422);

    let no_image = raw(
        &client,
        "POST",
        "/api/v1/namespaces/default/pods",
        "application/json",
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
               "spec": {"containers": [{"name": "main"}]}}),
    )
    .await;
    assert_eq!(api_code(no_image).0, 422);

    let wrong_kind = raw(
        &client,
        "POST",
        "/api/v1/namespaces/default/pods",
        "application/json",
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}}),
    )
    .await;
    assert_eq!(api_code(wrong_kind), (400, "BadRequest".into()));

    let mut elsewhere = pod("x", json!({}));
    elsewhere.metadata.namespace = Some("other".into());
    let mismatched = pods.create(&PostParams::default(), &elsewhere).await;
    assert_eq!(api_code(mismatched).0, 400);

    let bad_selector = pods.list(&ListParams::default().labels("a in b")).await;
    assert_eq!(api_code(bad_selector).0, 400);
    let bad_field = pods
        .list(&ListParams::default().fields("spec.image=x"))
        .await;
    assert_eq!(api_code(bad_field).0, 400);
}

#[tokio::test]
async fn selectors_and_pagination() {
    let (server, client) = server_and_client().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for (name, labels) in [
        ("p1", json!({"app": "web", "tier": "front"})),
        ("p2", json!({"app": "web"})),
        ("p3", json!({"app": "db"})),
        ("p4", json!({})),
    ] {
        pods.create(&PostParams::default(), &pod(name, labels))
            .await
            .expect("created");
    }
    server
        .set_pod_phase("default", "p2", "Running")
        .expect("phase");
    let names = |selector: &'static str, fields: &'static str| {
        let pods = pods.clone();
        async move {
            let mut lp = ListParams::default().labels(selector);
            if !fields.is_empty() {
                lp = lp.fields(fields);
            }
            let list = pods.list(&lp).await.expect("list");
            list.items
                .iter()
                .map(ResourceExt::name_any)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names("app=web", "").await, ["p1", "p2"]);
    assert_eq!(names("app==web,tier", "").await, ["p1"]);
    assert_eq!(names("app!=web", "").await, ["p3", "p4"]);
    assert_eq!(names("app in (db,web)", "").await, ["p1", "p2", "p3"]);
    assert_eq!(names("app notin (web)", "").await, ["p3", "p4"]);
    assert_eq!(names("!app", "").await, ["p4"]);
    assert_eq!(names("", "metadata.name=p3").await, ["p3"]);
    assert_eq!(names("", "status.phase=Running").await, ["p2"]);
    assert_eq!(names("app=web", "status.phase!=Running").await, ["p1"]);

    let all: Api<Pod> = Api::all(client);
    let first = all
        .list(&ListParams::default().limit(3))
        .await
        .expect("page 1");
    assert_eq!(first.items.len(), 3);
    let token = first.metadata.continue_.clone().expect("a continue token");
    let second = all
        .list(&ListParams::default().limit(3).continue_token(&token))
        .await
        .expect("page 2");
    assert_eq!(second.items.len(), 1);
    assert!(
        second
            .metadata
            .continue_
            .as_deref()
            .unwrap_or("")
            .is_empty()
    );
    assert_eq!(
        second.metadata.resource_version,
        first.metadata.resource_version
    );

    let removed = pods
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("app=web"),
        )
        .await
        .expect("deletecollection")
        .left()
        .expect("the deleted objects");
    assert_eq!(removed.items.len(), 2);
    assert_eq!(names("", "").await, ["p3", "p4"]);

    // Once history past the token's resourceVersion is compacted, the token is too old.
    pods.create(&PostParams::default(), &pod("p5", json!({})))
        .await
        .expect("created");
    server.compact();
    let expired = all
        .list(&ListParams::default().limit(3).continue_token(&token))
        .await;
    assert_eq!(api_code(expired).0, 410);
}

#[tokio::test]
async fn watcher_sees_changes_and_relists_after_410() {
    let (server, client) = server_and_client().await;
    let pods: Api<Pod> = Api::namespaced(client, "w");
    pods.create(&PostParams::default(), &pod("before", json!({})))
        .await
        .expect("created");
    let mut events = watcher(pods.clone(), watcher::Config::default()).boxed();
    let mut seen_before = false;
    loop {
        match next(&mut events).await.expect("event").expect("ok") {
            watcher::Event::Init => {}
            watcher::Event::InitApply(p) => seen_before |= p.name_any() == "before",
            watcher::Event::InitDone => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(seen_before);

    pods.create(&PostParams::default(), &pod("a", json!({})))
        .await
        .expect("created");
    match next(&mut events).await.expect("event").expect("ok") {
        watcher::Event::Apply(p) => assert_eq!(p.name_any(), "a"),
        other => panic!("expected Apply(a), got {other:?}"),
    }
    server.set_pod_phase("w", "a", "Running").expect("kubelet");
    match next(&mut events).await.expect("event").expect("ok") {
        watcher::Event::Apply(p) => {
            assert_eq!(p.status.and_then(|s| s.phase).as_deref(), Some("Running"))
        }
        other => panic!("expected Apply(a running), got {other:?}"),
    }
    pods.delete("a", &DeleteParams::default())
        .await
        .expect("deleted");
    match next(&mut events).await.expect("event").expect("ok") {
        watcher::Event::Delete(p) => assert_eq!(p.name_any(), "a"),
        other => panic!("expected Delete(a), got {other:?}"),
    }

    // Compaction: the open watch ends with ERROR 410, the watcher re-lists.
    server.compact();
    match next(&mut events).await.expect("event") {
        Err(watcher::Error::WatchError(status)) => assert_eq!(status.code, 410),
        other => panic!("expected a 410 watch error, got {other:?}"),
    }
    let mut relisted = Vec::new();
    loop {
        match next(&mut events).await.expect("event").expect("ok") {
            watcher::Event::Init => {}
            watcher::Event::InitApply(p) => relisted.push(p.name_any()),
            watcher::Event::InitDone => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(relisted, ["before"]);
    pods.create(&PostParams::default(), &pod("after", json!({})))
        .await
        .expect("created");
    match next(&mut events).await.expect("event").expect("ok") {
        watcher::Event::Apply(p) => assert_eq!(p.name_any(), "after"),
        other => panic!("expected Apply(after), got {other:?}"),
    }
    assert!(
        server.request_count(Verb::List, Gvr::PODS) >= 2,
        "re-listed"
    );
}

#[tokio::test]
async fn raw_watch_semantics() {
    let server = KubeApiServer::start_with(ServerOptions {
        bookmark_interval: Duration::from_millis(20),
        ..ServerOptions::default()
    })
    .await
    .expect("server");
    let client = server.kube_client().await.expect("client");
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let created = pods
        .create(&PostParams::default(), &pod("a", json!({"app": "web"})))
        .await
        .expect("created");
    let rv = created.resource_version().expect("rv");

    // From a resourceVersion: the changes after it, with selector transitions.
    let mut stream = pods
        .watch(&WatchParams::default().labels("app=web"), &rv)
        .await
        .expect("watch")
        .boxed();
    pods.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "db"}}})),
    )
    .await
    .expect("patched");
    let b = pods
        .create(&PostParams::default(), &pod("b", json!({"app": "web"})))
        .await
        .expect("created");
    let b_rv: u64 = b.resource_version().expect("rv").parse().expect("decimal");
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        match next(&mut stream).await.expect("event").expect("ok") {
            WatchEvent::Deleted(p) => kinds.push(format!("DELETED {}", p.name_any())),
            WatchEvent::Added(p) => kinds.push(format!("ADDED {}", p.name_any())),
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(kinds, ["DELETED a", "ADDED b"], "a left the selector");
    // Bookmarks arrive on a watch that asked for them (the default in kube).
    loop {
        if let WatchEvent::Bookmark(b) = next(&mut stream).await.expect("event").expect("ok") {
            let bookmark_rv: u64 = b.metadata.resource_version.parse().expect("decimal");
            assert!(bookmark_rv >= b_rv, "a bookmark never goes back");
            break;
        }
    }
    drop(stream);

    // A resourceVersion older than the history: HTTP 200 with one ERROR 410 event.
    server.compact();
    let mut stream = pods
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch answers 200")
        .boxed();
    match next(&mut stream).await.expect("event").expect("ok") {
        WatchEvent::Error(status) => {
            assert_eq!(status.code, 410);
            assert_eq!(status.reason, "Expired");
        }
        other => panic!("expected ERROR 410, got {other:?}"),
    }
    assert!(next(&mut stream).await.is_none(), "the watch ends");

    // resourceVersion "0": synthetic ADDED events for what exists.
    let mut stream = pods
        .watch(&WatchParams::default().disable_bookmarks(), "0")
        .await
        .expect("watch")
        .boxed();
    let mut names = Vec::new();
    while names.len() < 2 {
        if let WatchEvent::Added(p) = next(&mut stream).await.expect("event").expect("ok") {
            names.push(p.name_any());
        }
    }
    assert_eq!(names, ["a", "b"]);
}

#[tokio::test]
async fn pod_logs_follow_until_the_container_finishes() {
    let (server, client) = server_and_client().await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    pods.create(&PostParams::default(), &pod("job", json!({})))
        .await
        .expect("created");

    let waiting = pods.logs("job", &LogParams::default()).await;
    assert_eq!(api_code(waiting).0, 400, "container is waiting to start");
    let wrong = pods
        .logs(
            "job",
            &LogParams {
                container: Some("nope".into()),
                ..LogParams::default()
            },
        )
        .await;
    assert_eq!(api_code(wrong).0, 400);

    server
        .set_pod_phase("default", "job", "Running")
        .expect("running");
    server.append_log("default", "job", "main", b"one\n");
    let params = LogParams {
        container: Some("main".into()),
        follow: true,
        ..LogParams::default()
    };
    let mut lines = pods
        .log_stream("job", &params)
        .await
        .expect("log stream")
        .lines();
    assert_eq!(next(&mut lines).await.expect("line").expect("ok"), "one");
    server.append_log("default", "job", "main", b"tw");
    server.append_log("default", "job", "main", b"o\nthree\n");
    assert_eq!(next(&mut lines).await.expect("line").expect("ok"), "two");
    assert_eq!(next(&mut lines).await.expect("line").expect("ok"), "three");
    server
        .set_pod_phase("default", "job", "Succeeded")
        .expect("done");
    assert!(
        next(&mut lines).await.is_none(),
        "the stream ends with the container"
    );

    let all = pods.logs("job", &LogParams::default()).await.expect("logs");
    assert_eq!(all, "one\ntwo\nthree\n");
    let tail = pods
        .logs(
            "job",
            &LogParams {
                tail_lines: Some(2),
                timestamps: true,
                ..LogParams::default()
            },
        )
        .await
        .expect("tail");
    let tail: Vec<&str> = tail.lines().collect();
    assert_eq!(tail.len(), 2);
    assert!(
        tail[0].ends_with(" two") && tail[0].contains('T'),
        "{tail:?}"
    );
    assert!(tail[1].ends_with(" three"));

    // finish_log alone also ends a follower.
    pods.create(&PostParams::default(), &pod("job2", json!({})))
        .await
        .expect("created");
    server.append_log("default", "job2", "main", b"x\n");
    let body = pods
        .log_stream(
            "job2",
            &LogParams {
                follow: true,
                ..LogParams::default()
            },
        )
        .await
        .expect("stream");
    server.finish_log("default", "job2", "main");
    let lines: Vec<String> = body.lines().try_collect().await.expect("read");
    assert_eq!(lines, ["x"]);
}

#[tokio::test]
async fn status_subresource() {
    let (server, client) = server_and_client().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &pod("s", json!({})))
        .await
        .expect("created");
    // The main resource ignores status changes…
    let main = pods
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Running"}})),
        )
        .await
        .expect("patch");
    assert_eq!(
        main.status.and_then(|s| s.phase).as_deref(),
        Some("Pending")
    );
    // …the status subresource changes only status.
    let status = pods
        .patch_status(
            "s",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"phase": "Failed"}, "metadata": {"labels": {"x": "y"}}}),
            ),
        )
        .await
        .expect("status patch");
    assert_eq!(
        status.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Failed")
    );
    assert!(status.labels().is_empty());
    let got = pods.get_status("s").await.expect("get status");
    assert_eq!(got.status.and_then(|s| s.phase).as_deref(), Some("Failed"));

    // Tekton: create drops status, the controller (the test) sets it, spec bumps generation.
    let runs = Api::<kube::api::DynamicObject>::namespaced_with(
        client.clone(),
        "default",
        &kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("tekton.dev", "v1", "PipelineRun"),
            "pipelineruns",
        ),
    );
    let run: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
        "metadata": {"name": "run"},
        "spec": {"pipelineRef": {"name": "p"}},
        "status": {"conditions": [{"type": "Succeeded", "status": "True"}]},
    }))
    .expect("object");
    let run = runs
        .create(&PostParams::default(), &run)
        .await
        .expect("created");
    assert!(
        run.data.get("status").is_none(),
        "status is dropped on create"
    );
    server
        .patch_status(
            Gvr::PIPELINERUNS,
            "default",
            "run",
            &json!({"conditions": [{"type": "Succeeded", "status": "Unknown", "reason": "Running"}]}),
        )
        .expect("controller status");
    let run = runs.get("run").await.expect("get");
    assert_eq!(run.data["status"]["conditions"][0]["reason"], "Running");
    assert_eq!(run.metadata.generation, Some(1));
    let run = runs
        .patch(
            "run",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"timeouts": {"pipeline": "1h"}}})),
        )
        .await
        .expect("spec patch");
    assert_eq!(run.metadata.generation, Some(2));
}

fn prowjob(name: &str) -> ProwJob {
    serde_json::from_value(json!({
        "apiVersion": "prow.k8s.io/v1",
        "kind": "ProwJob",
        "metadata": {"name": name, "labels": {"prow.k8s.io/job": "unit"}},
        "spec": {"type": "periodic", "job": "unit", "agent": "kubernetes"},
        "status": {"state": "triggered", "startTime": "2024-01-01T00:00:00Z"},
    }))
    .expect("a valid ProwJob")
}

#[tokio::test]
async fn prowjobs_through_the_custom_resource_type() {
    let (server, client) = server_and_client().await;
    let jobs: Api<ProwJob> = Api::namespaced(client.clone(), "prow");
    let created = jobs
        .create(&PostParams::default(), &prowjob("pj-1"))
        .await
        .expect("created");
    // Prow's CRD has no status subresource: status is stored with the object.
    assert_eq!(
        created.status.as_ref().map(|s| s.state),
        Some(ProwJobState::Triggered)
    );
    let listed = jobs
        .list(&ListParams::default().labels("prow.k8s.io/job=unit"))
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 1);

    let mut pending = created.clone();
    if let Some(status) = pending.status.as_mut() {
        status.state = ProwJobState::Pending;
    }
    let replaced = jobs
        .replace("pj-1", &PostParams::default(), &pending)
        .await
        .expect("replace");
    assert_eq!(
        replaced.status.map(|s| s.state),
        Some(ProwJobState::Pending)
    );
    let stale = jobs.replace("pj-1", &PostParams::default(), &pending).await;
    assert_eq!(api_code(stale).0, 409);
    let status_path = jobs
        .patch_status("pj-1", &PatchParams::default(), &Patch::Merge(json!({})))
        .await;
    assert_eq!(api_code(status_path).0, 404, "no status subresource");
    let stored = server.get(Gvr::PROWJOBS, "prow", "pj-1").expect("stored");
    assert_eq!(stored["status"]["state"], "pending");

    // With bosun's own CRD (status subresource), the status path is the one that writes it.
    let server = KubeApiServer::start_with(ServerOptions {
        prowjob_status_subresource: true,
        ..ServerOptions::default()
    })
    .await
    .expect("server");
    let jobs: Api<ProwJob> = Api::namespaced(server.kube_client().await.expect("client"), "prow");
    let created = jobs
        .create(&PostParams::default(), &prowjob("pj-2"))
        .await
        .expect("created");
    assert!(created.status.is_none(), "status dropped on create");
    let patched = jobs
        .patch_status(
            "pj-2",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"state": "pending"}})),
        )
        .await
        .expect("status patch");
    assert_eq!(patched.status.map(|s| s.state), Some(ProwJobState::Pending));
}

#[tokio::test]
async fn finalizers_delay_deletion() {
    let (server, client) = server_and_client().await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let mut held = pod("held", json!({}));
    held.metadata.finalizers = Some(vec!["bosun.dev/cleanup".into()]);
    pods.create(&PostParams::default(), &held)
        .await
        .expect("created");

    let deleting = pods
        .delete("held", &DeleteParams::default())
        .await
        .expect("delete");
    let deleting = deleting.left().expect("still there: the object comes back");
    assert!(deleting.metadata.deletion_timestamp.is_some());
    assert!(pods.get("held").await.is_ok());

    let add = pods
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["bosun.dev/cleanup", "other"]}})),
        )
        .await;
    assert_eq!(api_code(add).0, 422, "no new finalizers while deleting");

    pods.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("finalizer removed");
    assert_eq!(api_code(pods.get("held").await).0, 404);
    assert!(server.get(Gvr::PODS, "default", "held").is_none());

    // Delete preconditions.
    pods.create(&PostParams::default(), &pod("pre", json!({})))
        .await
        .expect("created");
    let dp = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: Some("not-the-uid".into()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    assert_eq!(api_code(pods.delete("pre", &dp).await).0, 409);
}

#[tokio::test]
async fn counters_and_injected_failures() {
    let (server, client) = server_and_client().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    server.fail_next(Verb::Create, Gvr::PODS, 500);
    let failed = pods
        .create(&PostParams::default(), &pod("f", json!({})))
        .await;
    assert_eq!(api_code(failed), (500, "InternalError".into()));
    assert!(server.get(Gvr::PODS, "default", "f").is_none());
    pods.create(&PostParams::default(), &pod("f", json!({})))
        .await
        .expect("second try");
    let creates_of_f = server
        .requests()
        .iter()
        .filter(|r| r.verb == Verb::Create && r.name.as_deref() == Some("f"))
        .count();
    assert_eq!(creates_of_f, 2);

    // The kube client retries 503 on its own.
    server.fail_next(Verb::Get, Gvr::PODS, 503);
    pods.get("f").await.expect("retried");
    assert_eq!(server.request_count(Verb::Get, Gvr::PODS), 2);

    let leases: Api<Lease> = Api::namespaced(client, "default");
    server.fail_next(Verb::Update, Gvr::LEASES, 409);
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "leader"},
        "spec": {"holderIdentity": "a"},
    }))
    .expect("lease");
    let lease = leases
        .create(&PostParams::default(), &lease)
        .await
        .expect("created");
    let conflict = leases
        .replace("leader", &PostParams::default(), &lease)
        .await;
    assert_eq!(api_code(conflict).0, 409);
    assert!(
        leases
            .replace("leader", &PostParams::default(), &lease)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn two_servers_are_two_clusters_and_stop_makes_one_unreachable() {
    let (one, client_one) = server_and_client().await;
    let (two, client_two) = server_and_client().await;
    let pods_one: Api<Pod> = Api::namespaced(client_one, "default");
    let pods_two: Api<Pod> = Api::namespaced(client_two, "default");
    pods_one
        .create(&PostParams::default(), &pod("only-here", json!({})))
        .await
        .expect("created");
    assert_eq!(api_code(pods_two.get("only-here").await).0, 404);

    // An open watch ends when the server stops; new requests fail to connect.
    let mut stream = pods_one
        .watch(&WatchParams::default(), "0")
        .await
        .expect("watch")
        .boxed();
    assert!(matches!(
        next(&mut stream).await,
        Some(Ok(WatchEvent::Added(_)))
    ));
    one.stop().await;
    loop {
        match next(&mut stream).await {
            None | Some(Err(_)) => break,
            Some(Ok(_)) => {}
        }
    }
    match pods_one.get("only-here").await {
        Err(kube::Error::Api(status)) => panic!("expected a connection error, got {status:?}"),
        Err(_) => {}
        Ok(p) => panic!("a stopped server answered: {p:?}"),
    }
    assert!(pods_two.list(&ListParams::default()).await.is_ok());
    drop(two);
}

#[tokio::test]
async fn events_from_the_kube_runtime_recorder() {
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};
    let (server, client) = server_and_client().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let target = pods
        .create(&PostParams::default(), &pod("target", json!({})))
        .await
        .expect("created");
    let recorder = Recorder::new(
        client,
        Reporter {
            controller: "bosun".into(),
            instance: None,
        },
    );
    let event = Event {
        type_: EventType::Normal,
        reason: "Scheduled".into(),
        note: Some("job started".into()),
        action: "Start".into(),
        secondary: None,
    };
    let reference = target.object_ref(&());
    recorder.publish(&event, &reference).await.expect("created");
    recorder
        .publish(&event, &reference)
        .await
        .expect("patched as a series");
    let events = server.list(Gvr::EVENTS_V1, Some("default"));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["series"]["count"], 2);
    assert_eq!(events[0]["regarding"]["name"], "target");
}
