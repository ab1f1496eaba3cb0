//! The bosun-podutils binary, run as Prow runs its utilities: options in `<TOOL>_OPTIONS`.

mod common;

use std::process::Command;

use common::*;

fn run_tool(tool: &str, env: &[(&str, String)]) -> std::process::Output {
    Command::new(PODUTILS)
        .arg(tool)
        .env_remove("BOSUN_LOCAL_OPTIONS")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run bosun-podutils")
}

#[test]
fn bad_entrypoint_options_name_the_field() {
    let out = run_tool(
        "entrypoint",
        &[(
            "ENTRYPOINT_OPTIONS",
            r#"{"process_log":"/tmp/x","marker_file":"/tmp/y"}"#.into(),
        )],
    );
    assert_eq!(out.status.code(), Some(127));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#"ENTRYPOINT_OPTIONS: missing field "args""#),
        "{stderr}"
    );

    let out = run_tool(
        "entrypoint",
        &[(
            "ENTRYPOINT_OPTIONS",
            r#"{"args":["true"],"process_log":"/tmp/x","marker_file":"/tmp/y","grace_period":"15s"}"#.into(),
        )],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#"ENTRYPOINT_OPTIONS: field "grace_period""#),
        "{stderr}"
    );

    let out = Command::new(PODUTILS)
        .arg("entrypoint")
        .env_remove("ENTRYPOINT_OPTIONS")
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("ENTRYPOINT_OPTIONS is not set"));

    let out = run_tool(
        "clonerefs",
        &[("CLONEREFS_OPTIONS", r#"{"src_root":"/tmp"}"#.into())],
    );
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#"CLONEREFS_OPTIONS: missing field "log""#),
        "{stderr}"
    );
}

#[test]
fn entrypoint_tees_output_and_writes_the_marker() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let opts = serde_json::json!({
        "timeout": 60_000_000_000u64,
        "grace_period": 1_000_000_000u64,
        "artifact_dir": dir.join("artifacts"),
        "args": ["sh", "-c", "echo out; echo err >&2; exit 7"],
        "container_name": "test",
        "process_log": dir.join("process-log.txt"),
        "marker_file": dir.join("marker-file.txt"),
        "metadata_file": dir.join("artifacts/metadata.json"),
    });
    let out = run_tool("entrypoint", &[("ENTRYPOINT_OPTIONS", opts.to_string())]);
    assert_eq!(out.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&out.stdout).contains("out"));
    let log = std::fs::read_to_string(dir.join("process-log.txt")).expect("log");
    assert!(log.contains("out\n") && log.contains("err\n"), "{log}");
    assert_eq!(
        std::fs::read_to_string(dir.join("marker-file.txt")).expect("marker"),
        "7"
    );
    assert!(dir.join("artifacts").is_dir());

    // always_zero, and a command that cannot start → 127.
    let mut opts = opts;
    opts["args"] = serde_json::json!(["/nonexistent/binary"]);
    opts["always_zero"] = serde_json::json!(true);
    let out = run_tool("entrypoint", &[("ENTRYPOINT_OPTIONS", opts.to_string())]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(dir.join("marker-file.txt")).expect("marker"),
        "127"
    );
}

#[test]
fn entrypoint_forwards_sigterm_and_writes_130() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let ready = dir.join("ready");
    let opts = serde_json::json!({
        "grace_period": 1_000_000_000u64,
        "args": ["sh", "-c", format!("touch {}; sleep 600", ready.display())],
        "process_log": dir.join("process-log.txt"),
        "marker_file": dir.join("marker-file.txt"),
    });
    let mut child = Command::new(PODUTILS)
        .arg("entrypoint")
        .env("ENTRYPOINT_OPTIONS", opts.to_string())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !ready.exists() {
        assert!(std::time::Instant::now() < deadline, "child never started");
        // Poll interval of a condition check bounded by a deadline.
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signal");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130));
    assert_eq!(
        std::fs::read_to_string(dir.join("marker-file.txt")).expect("marker"),
        "130"
    );
}

#[test]
fn clonerefs_clones_and_merges_reproducibly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = make_repo(tmp.path());
    let refs = serde_json::json!([{
        "org": "org", "repo": "repo", "base_ref": "main",
        "clone_uri": format!("file://{}", repo.path.display()),
        "pulls": [{"number": 1, "author": "me", "sha": repo.pr_sha}]
    }]);
    let mut shas = Vec::new();
    for i in 0..2 {
        let root = tmp.path().join(format!("go{i}"));
        let log = tmp.path().join(format!("clone{i}.json"));
        let opts = serde_json::json!({
            "src_root": root, "log": log,
            "git_user_name": "ci-robot", "git_user_email": "ci-robot@k8s.io",
            "refs": refs,
        });
        let out = run_tool("clonerefs", &[("CLONEREFS_OPTIONS", opts.to_string())]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let records: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&log).expect("log")).expect("json");
        assert_eq!(records[1]["failed"], false, "{records:#}");
        let clone = root.join("src/github.com/org/repo");
        assert_eq!(
            std::fs::read_to_string(clone.join("pr.txt")).expect("merged"),
            "from-pr\n"
        );
        assert_eq!(git(&clone, &["rev-parse", "--abbrev-ref", "HEAD"]), "main");
        shas.push(records[1]["final_sha"].as_str().expect("sha").to_owned());
    }
    assert_eq!(
        shas[0], shas[1],
        "merges are dated from HEAD, so clones are reproducible"
    );
}

#[test]
fn initupload_and_sidecar_write_prow_layout_to_a_file_bucket() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let bucket = dir.join("bucket");
    let job_spec = serde_json::json!({
        "type": "presubmit", "job": "unit", "buildid": "5", "prowjobid": "pj",
        "refs": {"org": "org", "repo": "repo", "base_ref": "main", "base_sha": "b0",
                 "pulls": [{"number": 1, "author": "me", "sha": "p1"}]}
    })
    .to_string();
    let records = dir.join("clone.json");
    std::fs::write(
        &records,
        serde_json::json!([
            {"refs": {"org": "", "repo": ""}, "failed": false, "duration": 0},
            {"refs": {"org": "org", "repo": "repo", "base_ref": "main"}, "failed": false, "final_sha": "f1", "duration": 5}
        ])
        .to_string(),
    )
    .expect("write records");
    let gcs = serde_json::json!({"bucket": format!("file://{}", bucket.display()), "path_strategy": "explicit"});
    let mut init = gcs.clone();
    init["log"] = serde_json::json!(records);
    let out = run_tool(
        "initupload",
        &[
            ("INITUPLOAD_OPTIONS", init.to_string()),
            ("JOB_SPEC", job_spec.clone()),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job_dir = bucket.join("pr-logs/pull/org_repo/1/unit/5");
    let started: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(job_dir.join("started.json")).expect("started"),
    )
    .expect("json");
    assert_eq!(started["repo-commit"], "f1");
    assert!(job_dir.join("clone-log.txt").is_file());
    assert!(job_dir.join("clone-records.json").is_file());
    assert_eq!(
        std::fs::read_to_string(bucket.join("pr-logs/directory/unit/latest-build.txt"))
            .expect("latest"),
        "5"
    );

    let logs = dir.join("logs");
    std::fs::create_dir_all(logs.join("artifacts")).expect("mkdir");
    std::fs::write(logs.join("process-log.txt"), "test output\n").expect("write");
    std::fs::write(logs.join("marker-file.txt"), "0").expect("write");
    std::fs::write(logs.join("artifacts/junit#1.xml"), "<x/>").expect("write");
    std::fs::write(logs.join("artifacts/metadata.json"), r#"{"k":"v"}"#).expect("write");
    let mut gcs_options = gcs;
    gcs_options["items"] = serde_json::json!([logs.join("artifacts")]);
    let sidecar = serde_json::json!({
        "gcs_options": gcs_options,
        "entries": [{
            "process_log": logs.join("process-log.txt"),
            "marker_file": logs.join("marker-file.txt"),
            "metadata_file": logs.join("artifacts/metadata.json"),
        }],
        "censoring_options": {}
    });
    let out = run_tool(
        "sidecar",
        &[
            ("SIDECAR_OPTIONS", sidecar.to_string()),
            ("JOB_SPEC", job_spec),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let finished: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(job_dir.join("finished.json")).expect("finished"),
    )
    .expect("json");
    assert_eq!(finished["passed"], true);
    assert_eq!(finished["result"], "SUCCESS");
    assert_eq!(finished["revision"], "p1");
    assert_eq!(finished["metadata"]["k"], "v");
    assert_eq!(
        std::fs::read_to_string(job_dir.join("build-log.txt")).expect("log"),
        "test output\n"
    );
    assert_eq!(
        std::fs::read_to_string(job_dir.join("artifacts/junit%231.xml")).expect("artifact"),
        "<x/>"
    );
}
