//! The docker agent against the real Docker Engine: a busybox image made with `docker import`,
//! the static bosun-podutils as entrypoint, real git repositories.
//!
//! These tests fail (they never skip) when /var/run/docker.sock is missing.

mod common;
mod docker_common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::{ListContainersOptions, ListVolumesOptions};
use bosun_agents::docker::{DockerAgent, DockerAgentConfig};
use bosun_agents::{Agent, AgentError, Artifacts, Outcome, Progress};
use bosun_proto::{ProwJob, ProwJobState};
use common::{Repo, make_conflicting_repo, make_repo};
use docker_common::{require_docker, static_podutils, test_image};
use futures::StreamExt;
use tokio::sync::mpsc;

struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    bucket: PathBuf,
    config: DockerAgentConfig,
}

fn env() -> Env {
    require_docker();
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_path_buf();
    let bucket = root.join("bucket");
    let artifacts = Artifacts::local_dir(&bucket, "file:///bucket").expect("store");
    let mut config = DockerAgentConfig::new(root.join("work"), Some(static_podutils()), artifacts);
    config.docker_host = format!("unix://{}", docker_common::SOCKET);
    Env {
        _tmp: tmp,
        root,
        bucket,
        config,
    }
}

/// A job name no other test (or concurrent test run) uses.
fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn job(value: serde_json::Value) -> ProwJob {
    serde_json::from_value(value).expect("valid ProwJob")
}

/// A periodic running `sh -c script` in the test image.
fn periodic(name: &str, script: &str, timeout: &str) -> ProwJob {
    job(serde_json::json!({
        "apiVersion": "prow.k8s.io/v1",
        "kind": "ProwJob",
        "metadata": {"name": name},
        "spec": {
            "type": "periodic",
            "agent": "docker",
            "job": "nightly",
            "pod_spec": {"containers": [{"name": "test", "image": test_image(), "command": ["sh", "-c", script]}]},
            "decoration_config": {"timeout": timeout, "grace_period": "1s"}
        },
        "status": {"state": "pending", "build_id": "7"}
    }))
}

/// A presubmit of org/repo#1 cloning `repo` (base + the pull merged), running `sh -c script`.
fn presubmit(name: &str, repo: &Repo, script: &str) -> ProwJob {
    job(serde_json::json!({
        "apiVersion": "prow.k8s.io/v1",
        "kind": "ProwJob",
        "metadata": {"name": name},
        "spec": {
            "type": "presubmit",
            "agent": "docker",
            "job": "unit",
            "refs": {
                "org": "org",
                "repo": "repo",
                "base_ref": "main",
                "base_sha": repo.base_sha,
                "clone_uri": repo.path.to_string_lossy(),
                "pulls": [{"number": 1, "author": "me", "sha": repo.pr_sha}]
            },
            "pod_spec": {"containers": [{
                "name": "test",
                "image": test_image(),
                "command": ["sh", "-c", script],
                "env": [{"name": "MY_VAR", "value": "my-value"}]
            }]},
            "decoration_config": {"timeout": "5m", "grace_period": "1s"}
        },
        "status": {"state": "pending", "build_id": "100"}
    }))
}

async fn engine() -> Docker {
    Docker::connect_with_socket_defaults()
        .expect("docker socket")
        .negotiate_version()
        .await
        .expect("docker version")
}

/// (containers, volumes) labelled with this ProwJob's name.
async fn leftovers(name: &str) -> (usize, usize) {
    let docker = engine().await;
    let filters = HashMap::from([("label".to_owned(), vec![format!("prow.k8s.io/id={name}")])]);
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..Default::default()
        }))
        .await
        .expect("list containers");
    let volumes = docker
        .list_volumes(Some(ListVolumesOptions {
            filters: Some(filters),
        }))
        .await
        .expect("list volumes");
    (
        containers.len(),
        volumes.volumes.map(|v| v.len()).unwrap_or_default(),
    )
}

async fn run_to_end(agent: &DockerAgent, job: &ProwJob) -> (Outcome, Vec<Progress>) {
    agent.start(job).await.expect("start");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let outcome = tokio::time::timeout(Duration::from_secs(120), agent.wait(job, tx))
        .await
        .expect("wait finishes")
        .expect("wait");
    let mut progress = Vec::new();
    while let Ok(p) = rx.try_recv() {
        progress.push(p);
    }
    (outcome, progress)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presubmit_clones_merges_runs_and_uploads() {
    let env = env();
    let repo = make_repo(&env.root);
    let script = r#"set -e
test "$(cat pr.txt)" = from-pr
cat base.txt
echo "pwd=$(pwd)"
echo "job=$JOB_NAME build=$BUILD_ID type=$JOB_TYPE refs=$PULL_REFS gopath=$GOPATH artifacts=$ARTIFACTS"
echo "my=$MY_VAR"
echo "to stderr" >&2
test ! -e /sys/class/net/eth0 && echo "network=none"
echo hello > "$ARTIFACTS/x"
mkdir -p "$ARTIFACTS/sub" && echo deep > "$ARTIFACTS/sub/a#b.txt"
echo '{"k":"v"}' > "$ARTIFACTS/metadata.json"
"#;
    let name = unique("dk-ok");
    let job = presubmit(&name, &repo, script);
    let agent = DockerAgent::new(env.config.clone());
    agent.check(&job).expect("check");
    let (outcome, progress) = run_to_end(&agent, &job).await;
    let dir = env.bucket.join("pr-logs/pull/org_repo/1/unit/100");
    let log = std::fs::read_to_string(dir.join("build-log.txt")).unwrap_or_default();
    assert_eq!(outcome, Outcome::success(), "build log:\n{log}");
    assert!(progress.contains(&Progress::Running), "{progress:?}");

    assert!(log.contains("base"), "{log}");
    assert!(
        log.contains("pwd=/home/prow/go/src/github.com/org/repo"),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "job=unit build=100 type=presubmit refs=main:{},1:{} gopath=/home/prow/go artifacts=/logs/artifacts",
            repo.base_sha, repo.pr_sha
        )),
        "{log}"
    );
    assert!(log.contains("my=my-value"), "{log}");
    assert!(log.contains("to stderr"), "{log}");
    assert!(log.contains("network=none"), "{log}");
    assert_eq!(read(&dir.join("artifacts/x")), "hello\n");
    assert_eq!(read(&dir.join("artifacts/sub/a%23b.txt")), "deep\n");

    let started: serde_json::Value =
        serde_json::from_str(&read(&dir.join("started.json"))).expect("json");
    assert_eq!(started["pull"], "1");
    assert_eq!(
        started["repos"]["org/repo"],
        format!("main:{},1:{}", repo.base_sha, repo.pr_sha)
    );
    let finished: serde_json::Value =
        serde_json::from_str(&read(&dir.join("finished.json"))).expect("json");
    assert_eq!(finished["passed"], true);
    assert_eq!(finished["result"], "SUCCESS");
    assert_eq!(finished["metadata"]["k"], "v");
    let records: serde_json::Value =
        serde_json::from_str(&read(&dir.join("clone-records.json"))).expect("json");
    assert_eq!(records.as_array().map(Vec::len), Some(2), "{records}");
    assert!(read(&dir.join("clone-log.txt")).contains("git merge"));
    assert_eq!(
        read(&env.bucket.join("pr-logs/directory/unit/latest-build.txt")),
        "100"
    );

    // wait cleaned up: no container, no volume, no host directory.
    assert_eq!(leftovers(&name).await, (0, 0));
    assert!(!agent.job_dir(&job).expect("dir").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_script_ends_in_failure() {
    let env = env();
    let name = unique("dk-fail");
    let job = periodic(&name, "echo about to fail; exit 3", "1m");
    let agent = DockerAgent::new(env.config.clone());
    let (outcome, _) = run_to_end(&agent, &job).await;
    assert_eq!(outcome, Outcome::failure());
    let dir = env.bucket.join("logs/nightly/7");
    assert!(read(&dir.join("build-log.txt")).contains("about to fail"));
    let finished: serde_json::Value =
        serde_json::from_str(&read(&dir.join("finished.json"))).expect("json");
    assert_eq!(finished["passed"], false);
    assert_eq!(finished["result"], "FAILURE");
    assert_eq!(leftovers(&name).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_kills_after_the_grace_period() {
    let env = env();
    let name = unique("dk-timeout");
    // The test ignores SIGINT, so only the SIGKILL after the grace period ends it.
    let job = periodic(&name, "trap '' INT; echo started; sleep 60", "2s");
    let agent = DockerAgent::new(env.config.clone());
    let t0 = Instant::now();
    let (outcome, _) = run_to_end(&agent, &job).await;
    let took = t0.elapsed();
    assert_eq!(outcome.state, ProwJobState::Failure, "{outcome:?}");
    assert_eq!(outcome.description, "Job timed out after 2s.");
    assert!(took >= Duration::from_secs(3), "timeout + grace: {took:?}");
    assert!(
        took < Duration::from_secs(30),
        "killed, not waited for: {took:?}"
    );
    let log = read(&env.bucket.join("logs/nightly/7/build-log.txt"));
    assert!(log.contains("started"), "{log}");
    assert!(
        log.contains("Process did not finish before 2s timeout"),
        "{log}"
    );
    assert!(
        log.contains("Process did not exit before 1s grace period"),
        "{log}"
    );
    assert_eq!(leftovers(&name).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_stops_and_removes_the_container() {
    let env = env();
    let name = unique("dk-abort");
    let job = periodic(&name, "echo running; sleep 300", "10m");
    let agent = DockerAgent::new(env.config.clone());
    agent.start(&job).await.expect("start");
    assert_eq!(leftovers(&name).await.0, 1, "the container exists");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let t0 = Instant::now();
    let outcome = {
        let wait = agent.wait(&job, tx);
        tokio::pin!(wait);
        tokio::select! {
            _ = &mut wait => panic!("wait ended before the abort"),
            p = rx.recv() => assert_eq!(p, Some(Progress::Running)),
        }
        agent.abort(&job).await.expect("abort");
        tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .expect("wait ends after abort")
            .expect("wait")
    };
    assert_eq!(outcome, Outcome::aborted("Job aborted."));
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    let finished: serde_json::Value =
        serde_json::from_str(&read(&env.bucket.join("logs/nightly/7/finished.json")))
            .expect("json");
    assert_eq!(finished["result"], "ABORTED");
    let deadline = Instant::now() + Duration::from_secs(20);
    while leftovers(&name).await != (0, 0) {
        assert!(Instant::now() < deadline, "the container was not removed");
        // Poll interval of a condition check bounded by a deadline.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Abort of a finished job is a no-op.
    agent.abort(&job).await.expect("second abort");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_agent_reattaches_by_label_and_gets_the_real_outcome() {
    let env = env();
    let name = unique("dk-reattach");
    let job = periodic(&name, "echo before; sleep 3; echo after; exit 4", "1m");
    {
        let agent = DockerAgent::new(env.config.clone());
        let started = agent.start(&job).await.expect("start");
        assert!(started.workload_name.starts_with("bosun-"), "{started:?}");
        // start is idempotent: the same workload, not a second container.
        let again = agent.start(&job).await.expect("start again");
        assert_eq!(again.workload_name, started.workload_name);
        assert_eq!(leftovers(&name).await.0, 1);
    }
    // A "restarted gateway": a fresh agent that only has the ProwJob.
    let agent = DockerAgent::new(env.config.clone());
    let (tx, _rx) = mpsc::unbounded_channel();
    let outcome = tokio::time::timeout(Duration::from_secs(60), agent.wait(&job, tx))
        .await
        .expect("wait ends")
        .expect("wait");
    assert_eq!(outcome, Outcome::failure());
    let log = read(&env.bucket.join("logs/nightly/7/build-log.txt"));
    assert!(log.contains("before") && log.contains("after"), "{log}");
    assert_eq!(leftovers(&name).await, (0, 0));
    // Once everything is uploaded and removed, another wait still knows the outcome.
    let (tx, _rx) = mpsc::unbounded_channel();
    assert_eq!(
        agent.wait(&job, tx).await.expect("wait"),
        Outcome::failure()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_image_is_an_invalid_job() {
    let env = env();
    let name = unique("dk-noimage");
    let mut job = periodic(&name, "true", "1m");
    if let Some(c) = job
        .spec
        .pod_spec
        .as_mut()
        .and_then(|p| p.containers.first_mut())
    {
        c.image = Some("bosun-no-such-image:nope".into());
    }
    let agent = DockerAgent::new(env.config.clone());
    match agent.start(&job).await {
        Err(AgentError::InvalidJob(msg)) => assert_eq!(
            msg,
            "image bosun-no-such-image:nope not found locally (no registry: build or load it first)"
        ),
        other => panic!("expected InvalidJob, got {other:?}"),
    }
    assert_eq!(leftovers(&name).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_engine_is_unavailable() {
    let env = env();
    let mut config = env.config.clone();
    config.docker_host = format!("unix://{}/no-docker.sock", env.root.display());
    let agent = DockerAgent::new(config);
    let job = periodic(&unique("dk-down"), "true", "1m");
    let err = agent.start(&job).await.expect_err("no engine");
    assert!(matches!(err, AgentError::Unavailable(_)), "{err:?}");
    assert!(err.is_retryable());
    assert!(
        err.to_string()
            .contains("cannot reach the docker engine at unix://"),
        "{err}"
    );
    let (tx, _rx) = mpsc::unbounded_channel();
    let err = agent.wait(&job, tx).await.expect_err("no engine");
    assert!(matches!(err, AgentError::Unavailable(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_failure_ends_in_failure_without_a_container() {
    let env = env();
    let repo = make_conflicting_repo(&env.root);
    let name = unique("dk-conflict");
    let job = presubmit(&name, &repo, "echo should not run");
    let agent = DockerAgent::new(env.config.clone());
    let (outcome, _) = run_to_end(&agent, &job).await;
    assert_eq!(outcome.state, ProwJobState::Failure, "{outcome:?}");
    assert!(
        outcome.description.starts_with("Cloning refs failed"),
        "{outcome:?}"
    );
    let dir = env.bucket.join("pr-logs/pull/org_repo/1/unit/100");
    let log = read(&dir.join("build-log.txt"));
    assert!(!log.contains("should not run"), "{log}");
    assert!(log.contains("merge"), "{log}");
    let finished: serde_json::Value =
        serde_json::from_str(&read(&dir.join("finished.json"))).expect("json");
    assert_eq!(finished["passed"], false);
    assert_eq!(leftovers(&name).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_streams_while_the_container_runs() {
    let env = env();
    let name = unique("dk-logs");
    let job = periodic(
        &name,
        "for i in 1 2 3; do echo line-$i; sleep 1; done",
        "1m",
    );
    let agent = DockerAgent::new(env.config.clone());
    agent.start(&job).await.expect("start");
    let mut stream = agent.logs(&job, true).await.expect("logs");
    let mut seen = String::new();
    let mut first_at = None;
    let t0 = Instant::now();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(30), stream.next())
        .await
        .expect("log stream ends")
    {
        seen.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
        if seen.contains("line-1") && first_at.is_none() {
            first_at = Some(t0.elapsed());
        }
    }
    assert!(seen.contains("line-1") && seen.contains("line-3"), "{seen}");
    let first_at = first_at.expect("line-1 seen");
    assert!(
        first_at + Duration::from_millis(1500) < t0.elapsed(),
        "line-1 arrived live ({first_at:?}), not at the end ({:?})",
        t0.elapsed()
    );
    let (tx, _rx) = mpsc::unbounded_channel();
    assert_eq!(
        agent.wait(&job, tx).await.expect("wait"),
        Outcome::success()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_limits_network_and_cleanup() {
    let env = env();
    let host_dir = env.root.join("hostdir");
    std::fs::create_dir_all(&host_dir).expect("mkdir");
    std::fs::write(host_dir.join("in.txt"), "from-host\n").expect("write");
    let name = unique("dk-volumes");
    let job = job(serde_json::json!({
        "apiVersion": "prow.k8s.io/v1",
        "kind": "ProwJob",
        "metadata": {"name": name},
        "spec": {
            "type": "periodic",
            "agent": "docker",
            "job": "volumes",
            "pod_spec": {
                "hostNetwork": true,
                "volumes": [
                    {"name": "host", "hostPath": {"path": host_dir.to_string_lossy()}},
                    {"name": "cache", "emptyDir": {}}
                ],
                "containers": [{
                    "name": "test",
                    "image": test_image(),
                    "command": ["sh", "-c"],
                    "args": ["cat /host/in.txt && echo out > /host/out.txt && echo c > /cache/c && cat /cache/c && pwd"],
                    "workingDir": "/tmp",
                    "resources": {"limits": {"memory": "64Mi", "cpu": "500m"}},
                    "volumeMounts": [
                        {"name": "host", "mountPath": "/host"},
                        {"name": "cache", "mountPath": "/cache"}
                    ]
                }]
            },
            "decoration_config": {"timeout": "1m", "grace_period": "1s"}
        },
        "status": {"state": "pending", "build_id": "9"}
    }));
    let mut config = env.config.clone();
    config.remove_after_wait = false;
    let agent = DockerAgent::new(config);
    let (outcome, _) = run_to_end(&agent, &job).await;
    let log = read(&env.bucket.join("logs/volumes/9/build-log.txt"));
    assert_eq!(outcome, Outcome::success(), "{log}");
    assert!(
        log.contains("from-host") && log.contains("\nc\n") && log.contains("/tmp"),
        "{log}"
    );
    assert_eq!(read(&host_dir.join("out.txt")), "out\n");

    // Kept (remove_after_wait = false): inspect what Docker was asked for.
    assert_eq!(leftovers(&name).await, (1, 1));
    let docker = engine().await;
    let info = docker
        .inspect_container(&format!("bosun-{name}"), None)
        .await
        .expect("inspect");
    let hc = info.host_config.expect("host config");
    assert_eq!(hc.memory, Some(64 * 1024 * 1024));
    assert_eq!(hc.nano_cpus, Some(500_000_000));
    assert_eq!(hc.network_mode.as_deref(), Some("host"));
    let labels = info.config.and_then(|c| c.labels).expect("labels");
    assert_eq!(
        labels.get("created-by-prow").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        labels.get("prow.k8s.io/build-id").map(String::as_str),
        Some("9")
    );

    agent.cleanup(&job).await.expect("cleanup");
    assert_eq!(leftovers(&name).await, (0, 0));
    assert!(!agent.job_dir(&job).expect("dir").exists());
    // cleanup is idempotent.
    agent.cleanup(&job).await.expect("cleanup again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oom_killed_container_is_an_error() {
    let env = env();
    let name = unique("dk-oom");
    let mut job = periodic(&name, "head -c 300m /dev/zero | tail > /dev/null", "1m");
    if let Some(c) = job
        .spec
        .pod_spec
        .as_mut()
        .and_then(|p| p.containers.first_mut())
    {
        c.resources = Some(
            serde_json::from_value(serde_json::json!({"limits": {"memory": "16Mi"}}))
                .expect("resources"),
        );
    }
    let agent = DockerAgent::new(env.config.clone());
    let (outcome, _) = run_to_end(&agent, &job).await;
    assert_eq!(
        outcome,
        Outcome::error("Job container was OOM killed by the docker engine.")
    );
    assert_eq!(leftovers(&name).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_build_of_the_same_prowjob_replaces_the_old_container() {
    let env = env();
    let name = unique("dk-rebuild");
    let mut config = env.config.clone();
    config.remove_after_wait = false;
    let agent = DockerAgent::new(config);
    let first = periodic(&name, "echo first; exit 1", "1m");
    let (outcome, _) = run_to_end(&agent, &first).await;
    assert_eq!(outcome, Outcome::failure());
    assert_eq!(leftovers(&name).await.0, 1, "kept for debugging");

    let mut second = periodic(&name, "echo second", "1m");
    if let Some(s) = second.status.as_mut() {
        s.build_id = "8".into();
    }
    let (outcome, _) = run_to_end(&agent, &second).await;
    assert_eq!(outcome, Outcome::success(), "not the old build's container");
    assert!(read(&env.bucket.join("logs/nightly/8/build-log.txt")).contains("second"));
    assert_eq!(leftovers(&name).await.0, 1, "the old container is gone");
    agent.cleanup(&second).await.expect("cleanup");
    assert_eq!(leftovers(&name).await, (0, 0));
}
