//! Shared helpers: real git repositories and ProwJobs for the local agent tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bosun_proto::ProwJob;

pub const PODUTILS: &str = env!("CARGO_BIN_EXE_bosun-podutils");

/// Runs git in `dir`, returns trimmed stdout; panics on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_DATE", "@1700000000 +0000")
        .env("GIT_COMMITTER_DATE", "@1700000000 +0000")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// An upstream repository with `main` (base.txt) and a PR branch adding pr.txt.
pub struct Repo {
    pub path: PathBuf,
    pub base_sha: String,
    pub pr_sha: String,
}

pub fn make_repo(root: &Path) -> Repo {
    let path = root.join("upstream");
    std::fs::create_dir_all(&path).expect("mkdir");
    git(&path, &["init", "-q", "-b", "main"]);
    std::fs::write(path.join("base.txt"), "base\n").expect("write");
    git(&path, &["add", "."]);
    git(&path, &["commit", "-q", "-m", "base"]);
    let base_sha = git(&path, &["rev-parse", "HEAD"]);
    git(&path, &["checkout", "-q", "-b", "pr"]);
    std::fs::write(path.join("pr.txt"), "from-pr\n").expect("write");
    git(&path, &["add", "."]);
    git(&path, &["commit", "-q", "-m", "pr"]);
    let pr_sha = git(&path, &["rev-parse", "HEAD"]);
    git(&path, &["checkout", "-q", "main"]);
    Repo {
        path,
        base_sha,
        pr_sha,
    }
}

/// A repository whose PR conflicts with main.
pub fn make_conflicting_repo(root: &Path) -> Repo {
    let path = root.join("conflict");
    std::fs::create_dir_all(&path).expect("mkdir");
    git(&path, &["init", "-q", "-b", "main"]);
    std::fs::write(path.join("c.txt"), "a\n").expect("write");
    git(&path, &["add", "."]);
    git(&path, &["commit", "-q", "-m", "a"]);
    git(&path, &["checkout", "-q", "-b", "pr"]);
    std::fs::write(path.join("c.txt"), "pr\n").expect("write");
    git(&path, &["commit", "-q", "-am", "pr"]);
    let pr_sha = git(&path, &["rev-parse", "HEAD"]);
    git(&path, &["checkout", "-q", "main"]);
    std::fs::write(path.join("c.txt"), "main\n").expect("write");
    git(&path, &["commit", "-q", "-am", "main"]);
    let base_sha = git(&path, &["rev-parse", "HEAD"]);
    Repo {
        path,
        base_sha,
        pr_sha,
    }
}

/// A ProwJob built from JSON (so tests need no k8s-openapi types).
pub fn job(value: serde_json::Value) -> ProwJob {
    serde_json::from_value(value).expect("valid ProwJob")
}

/// A presubmit of org/repo#1 cloning `repo`, running `sh -c script`.
pub fn presubmit(name: &str, repo: &Repo, script: &str, env: serde_json::Value) -> ProwJob {
    job(serde_json::json!({
        "apiVersion": "prow.k8s.io/v1",
        "kind": "ProwJob",
        "metadata": {"name": name},
        "spec": {
            "type": "presubmit",
            "agent": "local",
            "job": "unit",
            "refs": {
                "org": "org",
                "repo": "repo",
                "base_ref": "main",
                "base_sha": repo.base_sha,
                "clone_uri": repo.path.to_string_lossy(),
                "pulls": [{"number": 1, "author": "me", "sha": repo.pr_sha}]
            },
            "pod_spec": {"containers": [{"name": "test", "image": "none", "command": ["sh", "-c", script], "env": env}]},
            "decoration_config": {"timeout": "5m", "grace_period": "1s"}
        },
        "status": {"state": "pending", "build_id": "100"}
    }))
}

/// A periodic without refs running `sh -c script` with the given timeout.
pub fn periodic(name: &str, script: &str, timeout: &str, env: serde_json::Value) -> ProwJob {
    job(serde_json::json!({
        "apiVersion": "prow.k8s.io/v1",
        "kind": "ProwJob",
        "metadata": {"name": name},
        "spec": {
            "type": "periodic",
            "agent": "local",
            "job": "nightly",
            "pod_spec": {"containers": [{"name": "test", "image": "none", "command": ["sh", "-c", script], "env": env}]},
            "decoration_config": {"timeout": timeout, "grace_period": "1s"}
        },
        "status": {"state": "pending", "build_id": "7"}
    }))
}

/// Polls `cond` until it holds or `secs` pass.
pub async fn eventually(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        // Poll interval of a condition check bounded by a deadline.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether a pid is gone (no such process, or a zombie nobody reaped).
pub fn pid_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let after = s.rfind(')').map(|i| &s[i + 1..]).unwrap_or("");
            matches!(after.split_whitespace().next(), Some("Z") | Some("X"))
        }
        Err(_) => true,
    }
}
