//! Real-Docker test support, shared by `agents/tests/docker.rs` and
//! `gateway/tests/docker_e2e.rs` (std only, so any test crate can include it with `#[path]`).
//!
//! - [`require_docker`] fails the test (never skips it) when the engine is not there;
//! - [`test_image`] imports a busybox image once (`docker import`, no registry);
//! - [`static_podutils`] returns the static `bosun-podutils`, building it once if it is missing
//!   or older than the sources (`.ci/run` builds it up front so tests find it fresh).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::SystemTime;

/// Docker's socket.
pub const SOCKET: &str = "/var/run/docker.sock";
/// The busybox test image.
pub const TEST_IMAGE: &str = "bosun-test-busybox:latest";

/// Panics with instructions unless a Docker Engine answers on [`SOCKET`].
pub fn require_docker() {
    assert!(
        Path::new(SOCKET).exists(),
        "the docker tests need a running Docker Engine, but {SOCKET} does not exist: run .ci/run, \
         or install docker.io and busybox-static and start `dockerd --bridge=none --iptables=false`"
    );
    let out = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .expect("the docker tests need the docker CLI (apt-get install docker.io)");
    assert!(
        out.status.success(),
        "the Docker Engine at {SOCKET} does not answer: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The busybox test image, imported once per machine from the host's static busybox.
pub fn test_image() -> &'static str {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        require_docker();
        let exists = Command::new("docker")
            .args(["image", "inspect", TEST_IMAGE])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !exists {
            import_busybox(TEST_IMAGE);
        }
    });
    TEST_IMAGE
}

/// `docker import` of a root holding /bin/busybox and a link per applet.
pub fn import_busybox(tag: &str) {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect("busybox is missing: apt-get install busybox-static");
    let dir = std::env::temp_dir().join(format!("bosun-busybox-root-{}", std::process::id()));
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir image root");
    for d in ["tmp", "etc", "root", "home"] {
        std::fs::create_dir_all(dir.join(d)).expect("mkdir");
    }
    std::fs::copy(busybox, bin.join("busybox")).expect("copy busybox");
    let list = Command::new(busybox)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim();
        if !applet.is_empty() && applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", bin.join(applet));
        }
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").expect("passwd");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "tar -C '{}' -c . | docker import -c 'ENV PATH=/bin' - '{tag}' >/dev/null",
            dir.display()
        ))
        .status()
        .expect("run tar | docker import");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        status.success(),
        "docker import of the busybox image failed"
    );
}

/// The workspace root (both crates using this live one level below it).
fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

/// The target directory of the running test binary (`<target>/debug/deps/<test>`).
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn newest_source(dirs: &[PathBuf]) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    let mut stack: Vec<PathBuf> = dirs.to_vec();
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        } else if let Ok(m) = meta.modified() {
            newest = newest.max(m);
        }
    }
    newest
}

/// The static `bosun-podutils` (`$BOSUN_PODUTILS_STATIC`, else cargo's static build in this
/// target directory, built here when missing or stale).
pub fn static_podutils() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(p) = std::env::var_os("BOSUN_PODUTILS_STATIC").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        let target = target_dir();
        let bin = target.join("x86_64-unknown-linux-gnu/release/bosun-podutils");
        let root = workspace_root();
        let fresh = std::fs::metadata(&bin)
            .and_then(|m| m.modified())
            .map(|built| built >= newest_source(&[root.join("agents/src"), root.join("proto/src")]))
            .unwrap_or(false);
        if !fresh {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            eprintln!(
                "building the static bosun-podutils into {} (once)",
                bin.display()
            );
            let status = Command::new(cargo)
                .current_dir(&root)
                .args([
                    "build",
                    "--release",
                    "--target",
                    "x86_64-unknown-linux-gnu",
                    "-p",
                    "bosun-agents",
                    "--bin",
                    "bosun-podutils",
                    "--target-dir",
                ])
                .arg(&target)
                .env("RUSTFLAGS", "-C target-feature=+crt-static")
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .env_remove("CARGO_TARGET_DIR")
                .status()
                .expect("run cargo build for the static bosun-podutils");
            assert!(
                status.success(),
                "building the static bosun-podutils failed"
            );
        }
        bin
    })
    .clone()
}

/// (containers, volumes) labelled `prow.k8s.io/id=<prowjob>`, counted with the docker CLI.
pub fn labelled(prowjob: &str) -> (usize, usize) {
    let count = |args: &[&str]| -> usize {
        let out = Command::new("docker")
            .args(args)
            .arg("--filter")
            .arg(format!("label=prow.k8s.io/id={prowjob}"))
            .arg("-q")
            .output()
            .expect("run docker");
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    (count(&["ps", "-a"]), count(&["volume", "ls"]))
}
