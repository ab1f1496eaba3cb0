//! The local agent with real processes, real git repositories and the real podutils binary.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bosun_agents::{Agent, AgentError, Artifacts, LocalAgent, LocalAgentConfig, Outcome, Progress};
use bosun_proto::{ProwJob, ProwJobState};
use common::*;
use futures::StreamExt;
use tokio::sync::mpsc;

struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    bucket: PathBuf,
    config: LocalAgentConfig,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_path_buf();
    let bucket = root.join("bucket");
    let artifacts = Artifacts::local_dir(&bucket, "file:///bucket").expect("store");
    let config = LocalAgentConfig::new(
        root.join("work"),
        vec![PODUTILS.to_owned(), "entrypoint".to_owned()],
        artifacts,
    );
    Env {
        _tmp: tmp,
        root,
        bucket,
        config,
    }
}

async fn run_to_end(agent: &LocalAgent, job: &ProwJob) -> (Outcome, Vec<Progress>) {
    agent.start(job).await.expect("start");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let outcome = agent.wait(job, tx).await.expect("wait");
    let mut progress = Vec::new();
    while let Ok(p) = rx.try_recv() {
        progress.push(p);
    }
    (outcome, progress)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[tokio::test]
async fn presubmit_clones_merges_runs_and_uploads() {
    let env = env();
    let repo = make_repo(&env.root);
    let script = r#"set -e
test "$(cat pr.txt)" = from-pr
cat base.txt
echo "job=$JOB_NAME build=$BUILD_ID refs=$PULL_REFS gopath=$GOPATH"
echo "to stderr" >&2
echo hello > "$ARTIFACTS/x"
mkdir -p "$ARTIFACTS/sub" && echo deep > "$ARTIFACTS/sub/a#b.txt"
echo '{"k":"v"}' > "$ARTIFACTS/metadata.json"
test "$MY_VAR" = my-value
"#;
    let job = presubmit(
        "pj-ok",
        &repo,
        script,
        serde_json::json!([{"name": "MY_VAR", "value": "my-value"}]),
    );
    let agent = LocalAgent::new(env.config.clone());
    agent.check(&job).expect("check");
    let (outcome, progress) = run_to_end(&agent, &job).await;
    let dir = env.bucket.join("pr-logs/pull/org_repo/1/unit/100");
    assert_eq!(
        outcome,
        Outcome::success(),
        "build log:\n{}",
        std::fs::read_to_string(dir.join("build-log.txt")).unwrap_or_default()
    );
    assert!(progress.contains(&Progress::Running), "{progress:?}");

    assert_eq!(
        env.config.artifacts.url_for(&job),
        "file:///bucket/pr-logs/pull/org_repo/1/unit/100/"
    );
    let log = read(&dir.join("build-log.txt"));
    assert!(log.contains("base"), "{log}");
    assert!(log.contains("job=unit build=100"), "{log}");
    assert!(
        log.contains(&format!("refs=main:{},1:{}", repo.base_sha, repo.pr_sha)),
        "{log}"
    );
    assert!(log.contains("to stderr"), "{log}");
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
    assert_eq!(finished["revision"], repo.pr_sha.as_str());
    assert_eq!(finished["metadata"]["k"], "v");

    let records: serde_json::Value =
        serde_json::from_str(&read(&dir.join("clone-records.json"))).expect("json");
    let records = records.as_array().expect("array");
    assert_eq!(records.len(), 2, "environment setup + one ref");
    assert_eq!(records[1]["failed"], false);
    let final_sha = records[1]["final_sha"].as_str().expect("final sha");
    assert_eq!(started["repo-commit"], final_sha);
    assert!(read(&dir.join("clone-log.txt")).contains("git merge --no-ff"));

    assert_eq!(
        read(&env.bucket.join("pr-logs/directory/unit/latest-build.txt")),
        "100"
    );
    assert_eq!(
        read(
            &env.bucket
                .join("pr-logs/pull/org_repo/1/unit/latest-build.txt")
        ),
        "100"
    );
    assert!(
        read(&env.bucket.join("pr-logs/directory/unit/100.txt"))
            .ends_with("pr-logs/pull/org_repo/1/unit/100")
    );

    // start is idempotent; cleanup removes the work directory.
    let job_dir = agent.job_dir(&job).expect("dir");
    agent.start(&job).await.expect("second start is a no-op");
    agent.cleanup(&job).await.expect("cleanup");
    assert!(!job_dir.exists());
}

#[tokio::test]
async fn failing_script_is_a_failure() {
    let env = env();
    let agent = LocalAgent::new(env.config.clone());
    let job = periodic(
        "pj-fail",
        "echo failing; exit 3",
        "5m",
        serde_json::json!([]),
    );
    let (outcome, _) = run_to_end(&agent, &job).await;
    assert_eq!(outcome, Outcome::failure());
    let dir = env.bucket.join("logs/nightly/7");
    assert!(read(&dir.join("build-log.txt")).contains("failing"));
    let finished: serde_json::Value =
        serde_json::from_str(&read(&dir.join("finished.json"))).expect("json");
    assert_eq!(finished["passed"], false);
    assert_eq!(finished["result"], "FAILURE");
    assert_eq!(read(&env.bucket.join("logs/nightly/latest-build.txt")), "7");
    let marker = agent
        .job_dir(&job)
        .expect("dir")
        .join("logs/marker-file.txt");
    assert_eq!(read(&marker), "3");
}

#[tokio::test]
async fn timeout_kills_after_grace_and_fails() {
    let env = env();
    let agent = LocalAgent::new(env.config.clone());
    // Ignores SIGINT, so only the SIGKILL after the grace period ends it.
    let job = periodic(
        "pj-timeout",
        "trap '' INT; echo started; sleep 600",
        "1s",
        serde_json::json!([]),
    );
    let (outcome, _) = run_to_end(&agent, &job).await;
    assert_eq!(outcome.state, ProwJobState::Failure);
    assert_eq!(outcome.description, "Job timed out after 1s.");
    let job_dir = agent.job_dir(&job).expect("dir");
    assert_eq!(read(&job_dir.join("logs/marker-file.txt")), "127");
    let log = read(&job_dir.join("logs/process-log.txt"));
    assert!(
        log.contains("Process did not finish before 1s timeout"),
        "{log}"
    );
    assert!(log.contains("grace period"), "{log}");
}

#[tokio::test]
async fn abort_kills_the_whole_process_tree() {
    let env = env();
    let agent = Arc::new(LocalAgent::new(env.config.clone()));
    let job = periodic(
        "pj-abort",
        r#"sleep 1000 & echo $! > "$ARTIFACTS/grandchild.pid"; sleep 1000"#,
        "5m",
        serde_json::json!([]),
    );
    agent.start(&job).await.expect("start");
    let (tx, _rx) = mpsc::unbounded_channel();
    let waiter = {
        let agent = agent.clone();
        let job = job.clone();
        tokio::spawn(async move { agent.wait(&job, tx).await })
    };
    let pid_file = agent
        .job_dir(&job)
        .expect("dir")
        .join("logs/artifacts/grandchild.pid");
    eventually(30, "the grandchild pid", || {
        std::fs::read_to_string(&pid_file).is_ok_and(|s| s.trim().parse::<i32>().is_ok())
    })
    .await;
    let grandchild: i32 = read(&pid_file).trim().parse().expect("pid");
    assert!(!pid_gone(grandchild));

    agent.abort(&job).await.expect("abort");
    let outcome = waiter.await.expect("join").expect("wait");
    assert_eq!(outcome, Outcome::aborted("Job aborted."));
    eventually(30, "the grandchild to die", || pid_gone(grandchild)).await;
    let finished: serde_json::Value =
        serde_json::from_str(&read(&env.bucket.join("logs/nightly/7/finished.json")))
            .expect("json");
    assert_eq!(finished["result"], "ABORTED");
    // Aborting a finished job is a no-op.
    agent.abort(&job).await.expect("abort again");
}

#[tokio::test]
async fn a_new_agent_reattaches_to_a_running_workload() {
    let env = env();
    let gate = env.root.join("gate");
    let script =
        r#"echo waiting; while [ ! -f "$GATE" ]; do sleep 0.05; done; echo released; exit 4"#;
    let job = periodic(
        "pj-reattach",
        script,
        "5m",
        serde_json::json!([{"name": "GATE", "value": gate.to_string_lossy()}]),
    );
    {
        let first = LocalAgent::new(env.config.clone());
        first.start(&job).await.expect("start");
    }
    let second = Arc::new(LocalAgent::new(env.config.clone()));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let waiter = {
        let agent = second.clone();
        let job = job.clone();
        tokio::spawn(async move { agent.wait(&job, tx).await })
    };
    // Progress arrives from the re-attached wait once the test process runs.
    let got = tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv())
        .await
        .expect("progress in time");
    assert_eq!(got, Some(Progress::Running));
    std::fs::write(&gate, "").expect("open the gate");
    let outcome = waiter.await.expect("join").expect("wait");
    assert_eq!(outcome, Outcome::failure());
    assert!(read(&env.bucket.join("logs/nightly/7/build-log.txt")).contains("released"));

    // Unknown jobs are NotFound.
    let other = periodic("pj-never-started", "true", "5m", serde_json::json!([]));
    let (tx, _rx) = mpsc::unbounded_channel();
    assert!(matches!(
        second.wait(&other, tx).await,
        Err(AgentError::NotFound(_))
    ));
}

#[tokio::test]
async fn logs_follow_streams_while_running() {
    let env = env();
    let gate = env.root.join("gate");
    let script = r#"echo line1; while [ ! -f "$GATE" ]; do sleep 0.05; done; echo line2"#;
    let job = periodic(
        "pj-logs",
        script,
        "5m",
        serde_json::json!([{"name": "GATE", "value": gate.to_string_lossy()}]),
    );
    let agent = LocalAgent::new(env.config.clone());
    agent.start(&job).await.expect("start");
    let mut stream = agent.logs(&job, true).await.expect("logs");
    let mut seen = String::new();
    while !seen.contains("line1") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(30), stream.next())
            .await
            .expect("line1 in time")
            .expect("stream still open")
            .expect("chunk");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(!seen.contains("line2"));
    std::fs::write(&gate, "").expect("open the gate");
    let rest = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        let mut rest = String::new();
        while let Some(chunk) = stream.next().await {
            rest.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
        }
        rest
    })
    .await
    .expect("stream ends when the job ends");
    seen.push_str(&rest);
    assert!(seen.contains("line2"), "{seen}");
    let (tx, _rx) = mpsc::unbounded_channel();
    assert_eq!(
        agent.wait(&job, tx).await.expect("wait"),
        Outcome::success()
    );
    let all = agent.logs(&job, false).await.expect("logs");
    let all: Vec<_> = all.collect().await;
    let text: String = all
        .into_iter()
        .map(|c| String::from_utf8_lossy(&c.expect("chunk")).into_owned())
        .collect();
    assert_eq!(text, "line1\nline2\n");
}

#[tokio::test]
async fn clone_failure_fails_the_job_without_running_it() {
    let env = env();
    let repo = make_conflicting_repo(&env.root);
    let marker = env.root.join("ran");
    let job = presubmit(
        "pj-conflict",
        &repo,
        r#"touch "$RAN""#,
        serde_json::json!([{"name": "RAN", "value": marker.to_string_lossy()}]),
    );
    let agent = LocalAgent::new(env.config.clone());
    let (outcome, _) = run_to_end(&agent, &job).await;
    assert_eq!(outcome.state, ProwJobState::Failure);
    assert!(
        outcome
            .description
            .starts_with("Cloning refs failed: org/repo: git merge --no-ff"),
        "{}",
        outcome.description
    );
    assert!(!marker.exists(), "the test must not run");
    let dir = env.bucket.join("pr-logs/pull/org_repo/1/unit/100");
    assert!(read(&dir.join("clone-log.txt")).contains("# FAILED!"));
    assert!(read(&dir.join("build-log.txt")).contains("# FAILED!"));
}

#[tokio::test]
async fn unusable_jobs_are_invalid() {
    let env = env();
    let agent = LocalAgent::new(env.config.clone());
    let no_pod = job(serde_json::json!({
        "apiVersion": "prow.k8s.io/v1", "kind": "ProwJob",
        "metadata": {"name": "pj-nopod"},
        "spec": {"type": "periodic", "job": "x"},
        "status": {"state": "triggered", "build_id": "1"}
    }));
    let err = agent.start(&no_pod).await.expect_err("no pod_spec");
    assert!(
        matches!(&err, AgentError::InvalidJob(m) if m.contains("pod_spec")),
        "{err}"
    );
    let no_cmd = job(serde_json::json!({
        "apiVersion": "prow.k8s.io/v1", "kind": "ProwJob",
        "metadata": {"name": "pj-nocmd"},
        "spec": {"type": "periodic", "job": "x", "pod_spec": {"containers": [{"name": "test", "image": "alpine"}]}},
        "status": {"state": "triggered", "build_id": "1"}
    }));
    let err = agent.check(&no_cmd).expect_err("no command");
    assert!(
        matches!(&err, AgentError::InvalidJob(m) if m.contains("command")),
        "{err}"
    );
}
