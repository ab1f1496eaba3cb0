//! The `bosun` command line and Prow configuration, end to end.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use bosun_proto::ProwJobState;
use bosun_proto::api::{Pull, Refs, TriggerRequest};
use common::*;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn shared_config() -> PathBuf {
    let shared = std::env::var_os("BOSUN_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared"));
    shared.join("conformance/prow-data/test/integration/config/prow")
}

fn bosun(args: &[&str]) -> std::process::Output {
    Command::new(bosun_bin())
        .args(args)
        .env_remove("BOSUN_SERVER")
        .output()
        .expect("run bosun")
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn check_config_accepts_prows_integration_config() {
    let dir = shared_config();
    let out = bosun(&[
        "check-config",
        "--config-path",
        &dir.join("config.yaml").display().to_string(),
        "--job-config-path",
        &dir.join("jobs").display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("config OK"), "{}", text(&out));
}

#[test]
fn check_config_accepts_the_examples() {
    let root = repo_root();
    let out = bosun(&[
        "check-config",
        "--config-path",
        &root
            .join("examples/config/config.yaml")
            .display()
            .to_string(),
        "--job-config-path",
        &root.join("examples/config/jobs").display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn check_config_reports_every_problem_with_file_and_job() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("config.yaml"),
        "prowjob_namespace: default\n",
    )
    .expect("write");
    let jobs = dir.path().join("jobs");
    std::fs::create_dir(&jobs).expect("mkdir");
    std::fs::write(
        jobs.join("bad.yaml"),
        r#"
periodics:
- name: "bad name!"
  interval: 1h
  spec:
    containers:
    - image: alpine
      command: ["true"]
- name: no-schedule
  spec:
    containers:
    - image: alpine
      command: ["true"]
presubmits:
  org/repo:
  - name: typo-field
    always_runn: true
    spec:
      containers:
      - image: alpine
        command: ["true"]
"#,
    )
    .expect("write");
    let out = bosun(&[
        "check-config",
        "--config-path",
        &dir.path().join("config.yaml").display().to_string(),
        "--job-config-path",
        &jobs.display().to_string(),
    ]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("bad.yaml"), "{all}");
    assert!(all.contains("bad name!"), "{all}");
    assert!(all.contains("no-schedule"), "{all}");
    assert!(all.contains("always_runn"), "{all}");
}

#[test]
fn run_exits_with_the_job_result() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let example = repo_root().join("examples/hello-job.yaml");
    let out = bosun(&[
        "run",
        &example.display().to_string(),
        "--data-dir",
        &data.display().to_string(),
    ]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("hello from hello-bosun"),
        "live log streamed: {all}"
    );
    assert!(all.contains("success"), "{all}");

    let failing = dir.path().join("fail.yaml");
    std::fs::write(&failing, local_job("run-fail", "echo failing; exit 4")).expect("write");
    let out = bosun(&[
        "run",
        &failing.display().to_string(),
        "--data-dir",
        &data.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("failing"));

    let invalid = dir.path().join("invalid.yaml");
    std::fs::write(&invalid, "spec:\n  type: nightly\n  job: x\n").expect("write");
    let out = bosun(&[
        "run",
        &invalid.display().to_string(),
        "--data-dir",
        &data.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("spec.type"), "{}", text(&out));
    assert!(text(&out).contains("invalid.yaml"), "{}", text(&out));
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_builds_jobs_from_config_and_runs_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A repository with a main branch and a PR branch.
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).expect("mkdir");
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README"), "base\n").expect("write");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "base"]);
    let base_sha = git(&repo, &["rev-parse", "HEAD"]);
    git(&repo, &["checkout", "-q", "-b", "pr"]);
    std::fs::write(repo.join("PR_FILE"), "from the pr\n").expect("write");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "pr"]);
    let pr_sha = git(&repo, &["rev-parse", "HEAD"]);
    git(&repo, &["checkout", "-q", "main"]);

    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "prowjob_namespace: prow-jobs\npod_namespace: test-pods\n",
    )
    .expect("write");
    let jobs = dir.path().join("jobs.yaml");
    std::fs::write(
        &jobs,
        r#"
presubmits:
  acme/widget:
  - name: unit
    always_run: true
    branches: ["^main$"]
    spec:
      containers:
      - image: alpine
        command: ["sh", "-c"]
        args: ["cat PR_FILE && echo PULL_NUMBER=$PULL_NUMBER TOKEN=$EXTRA"]
periodics:
- name: nightly
  interval: 24h
  labels:
    team: infra
  spec:
    containers:
    - image: alpine
      command: ["sh", "-c"]
      args: ["echo nightly $JOB_TYPE"]
"#,
    )
    .expect("write");
    let data = dir.path().join("data");
    let gw = Gateway::start(
        &data,
        &[
            "--config-path",
            &config.display().to_string(),
            "--job-config-path",
            &jobs.display().to_string(),
        ],
    );
    let mut c = gw.client().await;

    let resp = c
        .trigger(TriggerRequest {
            job: "nightly".into(),
            r#type: "periodic".into(),
            agent: "local".into(),
            ..Default::default()
        })
        .await
        .expect("trigger periodic")
        .into_inner();
    let name = resp.job.expect("job").name;
    let job = wait_complete(&mut c, &name).await;
    assert_eq!(job.state(), ProwJobState::Success, "{}", gw.logs());
    assert_eq!(job.metadata.namespace.as_deref(), Some("prow-jobs"));
    let labels = job.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("team").map(String::as_str), Some("infra"));
    assert_eq!(
        labels.get("prow.k8s.io/type").map(String::as_str),
        Some("periodic")
    );
    assert!(job.spec.report, "periodics always report");

    let resp = c
        .trigger(TriggerRequest {
            job: "unit".into(),
            r#type: "presubmit".into(),
            agent: "local".into(),
            refs: Some(Refs {
                org: "acme".into(),
                repo: "widget".into(),
                base_ref: "main".into(),
                base_sha: base_sha.clone(),
                clone_uri: repo.display().to_string(),
                pulls: vec![Pull {
                    number: 7,
                    author: "dev".into(),
                    sha: pr_sha.clone(),
                    r#ref: "pr".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            env: [("EXTRA".to_owned(), "xyz".to_owned())]
                .into_iter()
                .collect(),
            ..Default::default()
        })
        .await
        .expect("trigger presubmit")
        .into_inner();
    let name = resp.job.expect("job").name;
    let job = wait_complete(&mut c, &name).await;
    assert_eq!(job.state(), ProwJobState::Success, "{}", gw.logs());
    assert_eq!(job.spec.context, "unit", "context defaults to the job name");
    assert_eq!(job.spec.rerun_command, "/test unit");
    let build = job.status.clone().expect("status").build_id;
    let log = std::fs::read_to_string(
        data.join("artifacts/pr-logs/pull/acme_widget/7/unit")
            .join(&build)
            .join("build-log.txt"),
    )
    .expect("build log under the presubmit layout");
    assert!(log.contains("from the pr"), "the PR was merged: {log}");
    assert!(log.contains("PULL_NUMBER=7 TOKEN=xyz"), "{log}");

    let err = c
        .trigger(TriggerRequest {
            job: "nope".into(),
            r#type: "periodic".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown job");
    assert_eq!(err.code(), tonic::Code::NotFound);
    let err = c
        .trigger(TriggerRequest {
            job: "unit".into(),
            r#type: "presubmit".into(),
            ..Default::default()
        })
        .await
        .expect_err("missing refs");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("refs"), "{}", err.message());

    // The CLI against the same gateway.
    let out = bosun(&["list", "--server", &gw.addr, "-o", "json", "--job", "unit"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(listed["spec"]["job"], "unit");
    let out = bosun(&["get", &name, "--server", &gw.addr]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("success"),
        "{}",
        text(&out)
    );
    let out = bosun(&["logs", &name, "--server", &gw.addr]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("from the pr"),
        "{}",
        text(&out)
    );
    let out = bosun(&[
        "trigger", "nightly", "--agent", "local", "--server", &gw.addr,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = bosun(&["get", "missing", "--server", &gw.addr]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("NotFound"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_health_and_reflection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "# tokens\ns3cret-token\n").expect("write");
    let gw = Gateway::start(
        &dir.path().join("data"),
        &["--token-file", &tokens.display().to_string()],
    );
    let mut c = gw.client().await;
    let err = c
        .get(bosun_proto::api::GetRequest { name: "x".into() })
        .await
        .expect_err("no token");
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    assert!(!err.message().contains("s3cret"), "secrets never echoed");

    let out = Command::new(bosun_bin())
        .args(["get", "x", "--server", &gw.addr])
        .env("BOSUN_TOKEN", "s3cret-token")
        .output()
        .expect("run");
    assert!(
        text(&out).contains("NotFound"),
        "authenticated call reaches the service: {}",
        text(&out)
    );
    let out = Command::new(bosun_bin())
        .args(["get", "x", "--server", &gw.addr, "--token", "wrong"])
        .output()
        .expect("run");
    assert!(text(&out).contains("Unauthenticated"), "{}", text(&out));
    assert!(!gw.logs().contains("s3cret-token"), "token not logged");

    let channel = tonic::transport::Channel::from_shared(format!("http://{}", gw.addr))
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let resp = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "bosun.v1.JobGateway".into(),
        })
        .await
        .expect("health")
        .into_inner();
    assert_eq!(
        resp.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut refl = ServerReflectionClient::new(channel);
    let req = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = refl
        .server_reflection_info(futures::stream::iter(vec![req]))
        .await
        .expect("reflection")
        .into_inner();
    let msg = stream.message().await.expect("message").expect("some");
    let Some(MessageResponse::ListServicesResponse(list)) = msg.message_response else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"bosun.v1.JobGateway".to_owned()),
        "{names:?}"
    );
}

#[test]
fn check_config_checks_bosun_reporter_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "bosun:\n  reporters:\n    slack:\n      tokn_file: /x\n",
    )
    .expect("write");
    let out = bosun(&[
        "check-config",
        "--config-path",
        &config.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("tokn_file"), "{}", text(&out));
}
