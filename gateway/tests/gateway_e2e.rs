//! End to end: a real `bosun serve` process, real gRPC over 127.0.0.1, real local jobs.

mod common;

use std::collections::HashSet;

use bosun_proto::ProwJobState;
use bosun_proto::api::{
    AbortRequest, ListRequest, LogsRequest, SubmitRequest, WatchRequest, watch_event,
};
use common::*;
use futures::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submitted_job_runs_with_every_transition_logs_and_artifacts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = Gateway::start(dir.path(), &[]);
    let mut c = gw.client().await;

    // Watch everything from the start, then submit.
    let mut watch = c
        .watch(WatchRequest {
            from_revision: 0,
            name: String::new(),
            job: "e2e-hello".into(),
        })
        .await
        .expect("watch")
        .into_inner();
    let script = "echo hello from $JOB_NAME build $BUILD_ID; echo artifact > $ARTIFACTS/result.txt";
    let name = submit(&mut c, local_job("e2e-hello", script)).await;

    let mut states = Vec::new();
    let mut kinds = Vec::new();
    let done = tokio::time::timeout(DEADLINE, async {
        while let Some(ev) = watch.next().await {
            let ev = ev.expect("event");
            let job = decode(ev.job.as_ref().expect("job"));
            assert_eq!(job.name(), name);
            kinds.push(ev.kind);
            if states.last() != Some(&job.state()) {
                states.push(job.state());
            }
            if job.is_complete() {
                return job;
            }
        }
        panic!("watch ended early");
    })
    .await
    .expect("job completes");
    assert_eq!(
        states,
        vec![
            ProwJobState::Triggered,
            ProwJobState::Pending,
            ProwJobState::Success
        ],
        "transitions in order"
    );
    assert_eq!(kinds[0], watch_event::Kind::Created as i32);
    let status = done.status.clone().expect("status");
    assert_eq!(status.description, "Job succeeded.");
    assert!(
        status.pending_time.is_some()
            && status.completion_time.is_some()
            && status.start_time.is_some()
    );
    assert_eq!(status.build_id.len(), 19, "snowflake build id");
    assert!(status.url.starts_with("file://"), "url: {}", status.url);

    // Logs.
    let mut logs = c
        .logs(LogsRequest {
            name: name.clone(),
            follow: false,
        })
        .await
        .expect("logs")
        .into_inner();
    let mut text = Vec::new();
    while let Some(chunk) = logs.next().await {
        text.extend(chunk.expect("chunk").data);
    }
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.contains(&format!("hello from e2e-hello build {}", status.build_id)),
        "{text}"
    );

    // Artifacts under Prow's layout, where status.url points.
    let job_dir = dir
        .path()
        .join("artifacts/logs/e2e-hello")
        .join(&status.build_id);
    let url_dir = status
        .url
        .trim_start_matches("file://")
        .trim_end_matches('/');
    assert_eq!(
        std::fs::canonicalize(url_dir).ok(),
        std::fs::canonicalize(&job_dir).ok()
    );
    // prowjob.json is written by a background task moments after the job finished.
    eventually("prowjob.json", || job_dir.join("prowjob.json").is_file());
    for f in [
        "build-log.txt",
        "started.json",
        "finished.json",
        "prowjob.json",
        "artifacts/result.txt",
    ] {
        assert!(
            job_dir.join(f).is_file(),
            "{f} missing in {}",
            job_dir.display()
        );
    }
    let finished: serde_json::Value =
        serde_json::from_slice(&std::fs::read(job_dir.join("finished.json")).expect("read"))
            .expect("json");
    assert_eq!(finished["passed"], true);
    assert_eq!(finished["result"], "SUCCESS");
    let pj: serde_json::Value =
        serde_json::from_slice(&std::fs::read(job_dir.join("prowjob.json")).expect("read"))
            .expect("json");
    assert_eq!(pj["status"]["state"], "success");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_job_ends_in_failure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = Gateway::start(dir.path(), &[]);
    let mut c = gw.client().await;
    let name = submit(&mut c, local_job("e2e-fail", "echo about to fail; exit 3")).await;
    let job = wait_complete(&mut c, &name).await;
    assert_eq!(job.state(), ProwJobState::Failure);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_kills_the_whole_process_tree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = Gateway::start(dir.path(), &[]);
    let mut c = gw.client().await;
    let pids = dir.path().join("pids");
    let script = format!(
        "sleep 300 & echo $! > {p}.child; (sleep 300 & echo $! > {p}.grandchild; wait) & echo $$ > {p}.shell; wait",
        p = pids.display()
    );
    let name = submit(&mut c, local_job("e2e-abort", &script)).await;
    wait_state(&mut c, &name, ProwJobState::Pending).await;
    let read_pid = |suffix: &str| -> Option<i32> {
        std::fs::read_to_string(format!("{}.{suffix}", pids.display()))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    };
    eventually("the job to write its pids", || {
        read_pid("child").is_some()
            && read_pid("grandchild").is_some()
            && read_pid("shell").is_some()
    });
    let all: Vec<i32> = ["child", "grandchild", "shell"]
        .iter()
        .filter_map(|s| read_pid(s))
        .collect();
    assert!(all.iter().all(|p| pid_alive(*p)));

    let resp = c
        .abort(AbortRequest {
            name: name.clone(),
            reason: "test".into(),
        })
        .await
        .expect("abort")
        .into_inner();
    assert_eq!(decode(&resp).state(), ProwJobState::Aborted);
    let job = wait_complete(&mut c, &name).await;
    assert_eq!(job.state(), ProwJobState::Aborted);
    assert!(job.status.expect("status").description.contains("test"));
    eventually("every process of the job to be gone", || {
        all.iter().all(|p| !pid_alive(*p))
    });

    // Aborting a finished job is refused.
    let err = c
        .abort(AbortRequest {
            name: name.clone(),
            reason: String::new(),
        })
        .await
        .expect_err("already complete");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_agent_ends_in_error_with_a_description() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = Gateway::start(dir.path(), &[]);
    let mut c = gw.client().await;
    let job = local_job("e2e-unknown", "true").replace("\"local\"", "\"no-such-agent\"");
    let name = submit(&mut c, job).await;
    let job = wait_complete(&mut c, &name).await;
    assert_eq!(job.state(), ProwJobState::Error);
    let desc = job.status.expect("status").description;
    assert!(desc.contains("unknown agent \"no-such-agent\""), "{desc}");
    assert!(
        desc.contains("local"),
        "lists the agents that exist: {desc}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_returns_the_same_job() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = Gateway::start(dir.path(), &[]);
    let mut c = gw.client().await;
    let req = SubmitRequest {
        prowjob: local_job("e2e-idem", "true"),
        idempotency_key: "key-1".into(),
    };
    let first = c.submit(req.clone()).await.expect("submit").into_inner();
    let second = c.submit(req).await.expect("resubmit").into_inner();
    assert!(!first.existing);
    assert!(second.existing);
    assert_eq!(first.job.expect("job").name, second.job.expect("job").name);
    let list = c
        .list(ListRequest {
            job: "e2e-idem".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(list.jobs.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_submits_all_complete_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = Gateway::start(dir.path(), &[]);
    let c = gw.client().await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let mut c = c.clone();
        tasks.push(tokio::spawn(async move {
            c.submit(SubmitRequest {
                prowjob: local_job("e2e-many", &format!("echo job {i}")),
                idempotency_key: format!("many-{i}"),
            })
            .await
            .expect("submit")
            .into_inner()
            .job
            .expect("job")
            .name
        }));
    }
    let mut names = HashSet::new();
    for t in tasks {
        assert!(names.insert(t.await.expect("task")), "duplicate name");
    }
    assert_eq!(names.len(), 200);
    let mut c = c.clone();
    let end = tokio::time::Instant::now() + std::time::Duration::from_secs(180);
    loop {
        let mut all = Vec::new();
        let mut token = String::new();
        loop {
            let page = c
                .list(ListRequest {
                    job: "e2e-many".into(),
                    page_size: 50,
                    page_token: token,
                    ..Default::default()
                })
                .await
                .expect("list")
                .into_inner();
            all.extend(page.jobs);
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        let listed: HashSet<String> = all.iter().map(|j| j.name.clone()).collect();
        assert_eq!(all.len(), 200, "no job lost, none duplicated");
        assert_eq!(listed, names);
        let done = all.iter().filter(|j| decode(j).is_complete()).count();
        if done == 200 {
            assert!(
                all.iter()
                    .all(|j| decode(j).state() == ProwJobState::Success)
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "only {done}/200 finished: {}",
            gw.logs()
        );
        let mut w = c
            .watch(WatchRequest {
                from_revision: 0,
                name: String::new(),
                job: "e2e-many".into(),
            })
            .await
            .expect("watch")
            .into_inner();
        // Wait for some progress before listing again.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            let mut seen = 0;
            while let Some(Ok(_)) = w.next().await {
                seen += 1;
                if seen > 250 {
                    break;
                }
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_jobs_are_refused_with_the_field_and_the_server_keeps_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = Gateway::start(dir.path(), &[]);
    let mut c = gw.client().await;
    let cases = [
        ("spec: [", "not valid YAML/JSON"),
        (r#"{"spec": {"job": "x"}}"#, "spec.type"),
        (r#"{"spec": {"type": "nightly", "job": "x"}}"#, "spec.type"),
        (
            r#"{"spec": {"type": "periodic", "job": "x", "max_concurrency": "two"}}"#,
            "spec.max_concurrency",
        ),
        (
            r#"{"metadata": {"name": "Bad_Name"}, "spec": {"type": "periodic", "job": "x"}}"#,
            "metadata.name",
        ),
    ];
    for (doc, field) in cases {
        let err = c
            .submit(SubmitRequest {
                prowjob: doc.into(),
                idempotency_key: String::new(),
            })
            .await
            .expect_err(doc);
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{doc}: {err:?}");
        assert!(err.message().contains(field), "{doc}: {}", err.message());
    }
    let err = c
        .get(bosun_proto::api::GetRequest {
            name: "nope".into(),
        })
        .await
        .expect_err("not found");
    assert_eq!(err.code(), tonic::Code::NotFound);
    // Still serving.
    let name = submit(&mut c, local_job("e2e-after-bad", "true")).await;
    assert_eq!(
        wait_complete(&mut c, &name).await.state(),
        ProwJobState::Success
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_then_restart_loses_nothing_and_finishes_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gate = dir.path().join("gate");
    let mut gw = Gateway::start(dir.path(), &[]);
    let mut c = gw.client().await;
    // One running job that waits for a file, one queued behind it (max_concurrency 1).
    let script = format!(
        "while [ ! -e {g} ]; do sleep 0.05; done; echo released",
        g = gate.display()
    );
    let with_limit = |j: String| {
        j.replace(
            "\"agent\":\"local\"",
            "\"agent\":\"local\",\"max_concurrency\":1",
        )
    };
    let running = submit(&mut c, with_limit(local_job("e2e-crash", &script))).await;
    wait_state(&mut c, &running, ProwJobState::Pending).await;
    let queued = submit(
        &mut c,
        with_limit(local_job("e2e-crash", "echo queued ran")),
    )
    .await;
    assert_eq!(get(&mut c, &queued).await.state(), ProwJobState::Triggered);
    drop(c);
    gw.kill9();

    // The workload survives the gateway; release it while no gateway runs.
    std::fs::write(&gate, b"go").expect("release");
    let gw = Gateway::start(dir.path(), &[]);
    let mut c = gw.client().await;
    let first = wait_complete(&mut c, &running).await;
    assert_eq!(
        first.state(),
        ProwJobState::Success,
        "re-attached: {}",
        gw.logs()
    );
    let second = wait_complete(&mut c, &queued).await;
    assert_eq!(second.state(), ProwJobState::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_gateway_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _gw = Gateway::start(dir.path(), &[]);
    let out = std::process::Command::new(bosun_bin())
        .args(["serve", "--grpc-addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another bosun gateway"), "{err}");
}

fn with_spec(job: String, extra: serde_json::Value) -> String {
    let mut v: serde_json::Value = serde_json::from_str(&job).expect("json");
    if let (Some(spec), Some(extra)) = (v["spec"].as_object_mut(), extra.as_object()) {
        for (k, val) in extra {
            spec.insert(k.clone(), val.clone());
        }
    }
    v.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_timeout_aborts_the_job() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = Gateway::start(dir.path(), &[]);
    let mut c = gw.client().await;
    let job = with_spec(
        local_job("e2e-running-timeout", "sleep 300"),
        serde_json::json!({"decoration_config": {"pod_running_timeout": "1s", "grace_period": "1s"}}),
    );
    let name = submit(&mut c, job).await;
    let job = wait_complete(&mut c, &name).await;
    assert_eq!(job.state(), ProwJobState::Aborted);
    assert_eq!(
        job.status.expect("status").description,
        "Pod running timeout."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_presubmit_run_aborts_the_older_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = Gateway::start(dir.path(), &[]);
    let mut c = gw.client().await;
    let presubmit = |sha: &str| {
        let mut v: serde_json::Value =
            serde_json::from_str(&local_job("e2e-presubmit", "sleep 300")).expect("json");
        v["spec"]["type"] = "presubmit".into();
        v["spec"]["refs"] = serde_json::json!({
            "org": "acme", "repo": "widget", "base_ref": "main",
            "pulls": [{"number": 5, "author": "dev", "sha": sha}]
        });
        v["spec"]["decoration_config"] =
            serde_json::json!({"skip_cloning": true, "grace_period": "1s"});
        v.to_string()
    };
    let older = submit(&mut c, presubmit("aaa")).await;
    wait_state(&mut c, &older, ProwJobState::Pending).await;
    let newer = submit(&mut c, presubmit("bbb")).await;
    let old = wait_complete(&mut c, &older).await;
    let status = old.status.expect("status");
    assert_eq!(status.state, ProwJobState::Aborted);
    assert!(
        status.description.contains("newer version"),
        "{}",
        status.description
    );
    assert_eq!(
        status.prev_report_states.get("github-reporter"),
        Some(&ProwJobState::Aborted),
        "GitHub is not told about superseded runs"
    );
    assert_eq!(
        wait_state(&mut c, &newer, ProwJobState::Pending)
            .await
            .state(),
        ProwJobState::Pending
    );
    c.abort(AbortRequest {
        name: newer.clone(),
        reason: String::new(),
    })
    .await
    .expect("abort newer");
    wait_complete(&mut c, &newer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_limit_and_job_queues_hold_jobs_in_triggered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "plank:\n  max_concurrency: 2\n  job_queue_capacities:\n    serial: 1\n    closed: 0\n",
    )
    .expect("write");
    let gate = dir.path().join("gate");
    let gw = Gateway::start(
        &dir.path().join("data"),
        &["--config-path", &config.display().to_string()],
    );
    let mut c = gw.client().await;
    let script = format!("while [ ! -e {} ]; do sleep 0.05; done", gate.display());
    let queued = |name: &str, queue: &str| {
        with_spec(
            local_job(name, &script),
            serde_json::json!({"job_queue_name": queue}),
        )
    };
    let a = submit(&mut c, queued("e2e-q-a", "serial")).await;
    wait_state(&mut c, &a, ProwJobState::Pending).await;
    let b = submit(&mut c, queued("e2e-q-b", "serial")).await;
    let never = submit(&mut c, queued("e2e-q-never", "closed")).await;
    let free1 = submit(&mut c, local_job("e2e-free-1", &script)).await;
    wait_state(&mut c, &free1, ProwJobState::Pending).await;
    let free2 = submit(&mut c, local_job("e2e-free-2", &script)).await;
    // a + free1 use the global limit of 2: b (queue full), free2 (global) and never wait.
    for n in [&b, &never, &free2] {
        assert_eq!(get(&mut c, n).await.state(), ProwJobState::Triggered, "{n}");
    }
    std::fs::write(&gate, b"go").expect("release");
    for n in [&a, &b, &free1, &free2] {
        assert_eq!(
            wait_complete(&mut c, n).await.state(),
            ProwJobState::Success,
            "{n}"
        );
    }
    assert_eq!(
        get(&mut c, &never).await.state(),
        ProwJobState::Triggered,
        "capacity 0 never runs"
    );
}
