//! `entrypoint`: runs the test process (reference agents §2.5, §2.6).
//!
//! The child runs in its own process group. Its stdout and stderr share one pipe whose bytes are
//! appended to `process_log` and copied to the entrypoint's own stdout. On timeout, or when the
//! entrypoint gets SIGINT/SIGTERM, the child's whole group gets SIGINT, then SIGKILL after the
//! grace period. The exit code goes to `marker_file` (atomically): the child's code (128+N when
//! killed by signal N), 127 on timeout or when the child cannot start, 130 on interrupt, 1130
//! when `previous_marker` holds a failure.
//!
//! bosun addition: when [`LOCAL_OPTIONS_VAR`] is set (only the local agent sets it), the
//! entrypoint first runs clonerefs in-process, records the child's process group and writes a
//! small result file telling why the child ended. Prow never sets that variable, so decorated
//! pods behave exactly as with Prow's entrypoint.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::signal::unix::{SignalKind, signal};

use super::OptionsError;
use super::clonerefs::{self, CloneRefsOptions};
use super::util::{fmt_duration, go_nanos, log_line, write_atomic};

/// Timeout used when `timeout` is 0.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2 * 60 * 60);
/// Grace period used when `grace_period` is 0.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(15);
/// Marker code for a timeout, a child that cannot start, or an internal error.
pub const INTERNAL_ERROR_CODE: i32 = 127;
/// Marker code after an interrupt.
pub const ABORTED_CODE: i32 = 130;
/// Marker code when the previous step failed and this one was skipped.
pub const PREVIOUS_FAILED_CODE: i32 = 1130;
/// bosun-only variable with [`LocalRunOptions`]; read by the entrypoint tool when set.
pub const LOCAL_OPTIONS_VAR: &str = "BOSUN_LOCAL_OPTIONS";

fn is_false(b: &bool) -> bool {
    !*b
}

/// `ENTRYPOINT_OPTIONS`, field for field as Prow's entrypoint reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntrypointOptions {
    /// Test timeout, integer nanoseconds; 0 means 2h.
    #[serde(default, with = "go_nanos")]
    pub timeout: Duration,
    /// Time between SIGINT and SIGKILL, integer nanoseconds; 0 means 15s.
    #[serde(default, with = "go_nanos")]
    pub grace_period: Duration,
    /// Created before the child starts (`/logs/artifacts`).
    #[serde(default)]
    pub artifact_dir: PathBuf,
    /// The command: `args[0]` with `args[1..]`.
    pub args: Vec<String>,
    /// Container name (informational).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container_name: String,
    /// Where the child's stdout and stderr are appended.
    pub process_log: PathBuf,
    /// Where the exit code goes.
    pub marker_file: PathBuf,
    /// Where the test may write metadata (read by the sidecar).
    #[serde(default)]
    pub metadata_file: PathBuf,
    /// Wait for this marker first and skip (1130) unless it holds 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_marker: Option<PathBuf>,
    /// Exit 0 whatever the marker says.
    #[serde(default, skip_serializing_if = "is_false")]
    pub always_zero: bool,
    /// On timeout or interrupt, record the child's own code instead of 127/130.
    #[serde(default, skip_serializing_if = "is_false")]
    pub propagate_error_code: bool,
    /// Only copy this binary to `copy_dst` and exit.
    #[serde(default, skip_serializing_if = "is_false")]
    pub copy_mode_only: bool,
    /// Destination of the copy (default `/tools/entrypoint`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_dst: Option<PathBuf>,
}

impl EntrypointOptions {
    /// Prow's `Validate`: a command is needed unless only copying.
    pub fn validate(&self) -> Result<(), OptionsError> {
        let var = "ENTRYPOINT_OPTIONS";
        if self.copy_mode_only {
            return Ok(());
        }
        if self.args.is_empty() || self.args[0].is_empty() {
            return Err(OptionsError::Unusable {
                var: var.into(),
                message: "field \"args\": no process to wrap specified".into(),
            });
        }
        if self.process_log.as_os_str().is_empty() {
            return Err(OptionsError::Unusable {
                var: var.into(),
                message: "field \"process_log\": must not be empty".into(),
            });
        }
        if self.marker_file.as_os_str().is_empty() {
            return Err(OptionsError::Unusable {
                var: var.into(),
                message: "field \"marker_file\": must not be empty".into(),
            });
        }
        Ok(())
    }

    fn effective_timeout(&self) -> Duration {
        if self.timeout.is_zero() {
            DEFAULT_TIMEOUT
        } else {
            self.timeout
        }
    }

    fn effective_grace(&self) -> Duration {
        if self.grace_period.is_zero() {
            DEFAULT_GRACE_PERIOD
        } else {
            self.grace_period
        }
    }
}

/// `BOSUN_LOCAL_OPTIONS`: what the local agent adds around a plain entrypoint run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalRunOptions {
    /// Clone these refs before starting the child; on failure the child never starts and no
    /// marker is written (the clone records say why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clonerefs: Option<CloneRefsOptions>,
    /// Where to write the child's process-group id once it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgid_file: Option<PathBuf>,
    /// Where to write the [`RunResult`] as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_file: Option<PathBuf>,
    /// Working directory of the child (it may only exist once cloning is done).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<PathBuf>,
}

/// Why the child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Termination {
    /// It exited (or was killed by a signal nobody here sent).
    Exited,
    /// The timeout ran out.
    TimedOut,
    /// The entrypoint was interrupted (SIGINT/SIGTERM).
    Interrupted,
    /// The child could not be started.
    StartFailed,
    /// `previous_marker` held a failure; nothing ran.
    PreviousFailed,
    /// The local clone step failed; nothing ran.
    CloneFailed,
    /// The entrypoint itself failed (log or marker not writable).
    Internal,
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunResult {
    /// The code written to the marker (none for `CloneFailed`).
    pub code: i32,
    /// Why the child ended.
    pub termination: Termination,
    /// The timeout in force, nanoseconds.
    #[serde(with = "go_nanos")]
    pub timeout: Duration,
}

/// Runs the entrypoint and returns its exit code (the marker code, or 0 with `always_zero`).
pub fn run(opts: &EntrypointOptions) -> i32 {
    run_with(opts, None)
}

/// [`run`] plus the local agent's additions.
pub fn run_with(opts: &EntrypointOptions, local: Option<&LocalRunOptions>) -> i32 {
    if opts.copy_mode_only {
        return copy_self(opts);
    }
    let result = block_on_fresh_thread(|| async {
        let mut ints = match Interrupts::new() {
            Ok(i) => i,
            Err(e) => {
                append_log(
                    opts,
                    "error",
                    &format!("could not install signal handlers: {e}"),
                );
                return finish(opts, INTERNAL_ERROR_CODE, Termination::Internal);
            }
        };
        execute(opts, local, &mut ints).await
    });
    let result = match result {
        Some(r) => r,
        None => finish(opts, INTERNAL_ERROR_CODE, Termination::Internal),
    };
    if let Some(path) = local.and_then(|l| l.result_file.as_ref())
        && let Ok(json) = serde_json::to_vec(&result)
    {
        let _ = write_atomic(path, &json);
    }
    if opts.always_zero { 0 } else { result.code }
}

/// Runs a future on a current-thread runtime owned by a new thread, so callers may be inside
/// another runtime. `None` if the runtime cannot be built or the thread panics.
pub(crate) fn block_on_fresh_thread<F, Fut, T>(make: F) -> Option<T>
where
    F: FnOnce() -> Fut + Send,
    Fut: std::future::Future<Output = T>,
    T: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            let out = rt.block_on(make());
            rt.shutdown_background();
            Some(out)
        })
        .join()
        .ok()
        .flatten()
    })
}

fn copy_self(opts: &EntrypointOptions) -> i32 {
    let dst = opts
        .copy_dst
        .clone()
        .unwrap_or_else(|| PathBuf::from("/tools/entrypoint"));
    let result = std::env::current_exe().and_then(|src| {
        if let Some(dir) = dst.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::copy(&src, &dst)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755))
    });
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("entrypoint: copying to {}: {e}", dst.display());
            INTERNAL_ERROR_CODE
        }
    }
}

/// SIGINT and SIGTERM, caught.
pub(crate) struct Interrupts {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Interrupts {
    pub(crate) fn new() -> std::io::Result<Self> {
        Ok(Self {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    /// The name of the next signal received.
    pub(crate) async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "interrupt",
            _ = self.term.recv() => "terminated",
        }
    }
}

fn append_log(opts: &EntrypointOptions, level: &str, msg: &str) {
    let line = log_line("entrypoint", level, msg);
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Some(dir) = opts.process_log.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&opts.process_log)
    {
        let _ = f.write_all(line.as_bytes());
    }
}

/// Writes the marker and builds the result; a marker write failure gives 127.
fn finish(opts: &EntrypointOptions, code: i32, termination: Termination) -> RunResult {
    let mut code = code;
    if let Err(e) = write_atomic(&opts.marker_file, code.to_string().as_bytes()) {
        append_log(
            opts,
            "error",
            &format!(
                "could not write marker file {}: {e}",
                opts.marker_file.display()
            ),
        );
        code = INTERNAL_ERROR_CODE;
    }
    RunResult {
        code,
        termination,
        timeout: opts.effective_timeout(),
    }
}

fn status_code(status: &ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        (None, None) => INTERNAL_ERROR_CODE,
    }
}

enum Event {
    Exit(std::io::Result<ExitStatus>),
    Timeout,
    Signal(&'static str),
}

async fn execute(
    opts: &EntrypointOptions,
    local: Option<&LocalRunOptions>,
    ints: &mut Interrupts,
) -> RunResult {
    if let Some(prev) = &opts.previous_marker {
        let prev_code = tokio::select! {
            c = wait_for_marker(prev) => c,
            sig = ints.recv() => {
                append_log(opts, "info", &format!("Entrypoint received interrupt: {sig}"));
                return finish(opts, ABORTED_CODE, Termination::Interrupted);
            }
        };
        match prev_code {
            Ok(0) => {}
            Ok(c) => {
                append_log(
                    opts,
                    "info",
                    &format!("Skipping as previous step exited {c}"),
                );
                return finish(opts, PREVIOUS_FAILED_CODE, Termination::PreviousFailed);
            }
            Err(e) => {
                append_log(
                    opts,
                    "error",
                    &format!("could not read previous marker: {e}"),
                );
                return finish(opts, INTERNAL_ERROR_CODE, Termination::Internal);
            }
        }
    }

    if let Some(clone_opts) = local.and_then(|l| l.clonerefs.clone()) {
        let task = tokio::task::spawn_blocking(move || clonerefs::run(&clone_opts));
        tokio::select! {
            r = task => {
                let failure = match r {
                    Ok(Ok(records)) => records.iter().any(|r| r.failed).then(|| "cloning refs failed".to_owned()),
                    Ok(Err(e)) => Some(format!("cloning refs failed: {e}")),
                    Err(e) => Some(format!("cloning refs failed: {e}")),
                };
                if let Some(msg) = failure {
                    append_log(opts, "error", &msg);
                    return RunResult { code: 1, termination: Termination::CloneFailed, timeout: opts.effective_timeout() };
                }
            }
            sig = ints.recv() => {
                append_log(opts, "info", &format!("Entrypoint received interrupt while cloning: {sig}"));
                return finish(opts, ABORTED_CODE, Termination::Interrupted);
            }
        }
    }

    if !opts.artifact_dir.as_os_str().is_empty()
        && let Err(e) = std::fs::create_dir_all(&opts.artifact_dir)
    {
        append_log(
            opts,
            "error",
            &format!(
                "could not create artifact directory {}: {e}",
                opts.artifact_dir.display()
            ),
        );
        return finish(opts, INTERNAL_ERROR_CODE, Termination::Internal);
    }
    if let Some(dir) = opts.process_log.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let log_file = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&opts.process_log)
    {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "entrypoint: could not open process log {}: {e}",
                opts.process_log.display()
            );
            return finish(opts, INTERNAL_ERROR_CODE, Termination::Internal);
        }
    };

    let (reader, writer) = match std::io::pipe().and_then(|(r, w)| Ok((r, w.try_clone()?, w))) {
        Ok((r, w1, w2)) => (r, (w1, w2)),
        Err(e) => {
            append_log(opts, "error", &format!("could not create a pipe: {e}"));
            return finish(opts, INTERNAL_ERROR_CODE, Termination::Internal);
        }
    };
    let mut cmd = tokio::process::Command::new(&opts.args[0]);
    cmd.args(&opts.args[1..])
        .stdin(Stdio::null())
        .stdout(writer.0)
        .stderr(writer.1)
        .env_remove(LOCAL_OPTIONS_VAR)
        .process_group(0);
    if let Some(dir) = local.and_then(|l| l.workdir.as_ref()) {
        cmd.current_dir(dir);
    }
    let spawned = cmd.spawn();
    // The Command holds the pipe's write ends; drop them so the reader sees EOF.
    drop(cmd);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            append_log(opts, "error", &format!("Error executing test process: {e}"));
            return finish(opts, INTERNAL_ERROR_CODE, Termination::StartFailed);
        }
    };
    let pgid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    if let (Some(pgid), Some(path)) = (pgid, local.and_then(|l| l.pgid_file.as_ref())) {
        let _ = write_atomic(path, pgid.as_raw().to_string().as_bytes());
    }
    let copier = spawn_copier(reader, log_file);

    let timeout = opts.effective_timeout();
    let grace = opts.effective_grace();
    let event = tokio::select! {
        s = child.wait() => Event::Exit(s),
        _ = tokio::time::sleep(timeout) => Event::Timeout,
        sig = ints.recv() => Event::Signal(sig),
    };
    let send = |sig: Signal| {
        if let Some(pgid) = pgid {
            let _ = killpg(pgid, sig);
        }
    };
    let (status, termination) = match event {
        Event::Exit(s) => (s, Termination::Exited),
        Event::Timeout => {
            append_log(
                opts,
                "error",
                &format!(
                    "Process did not finish before {} timeout",
                    fmt_duration(timeout)
                ),
            );
            send(Signal::SIGINT);
            (
                graceful_wait(opts, &mut child, grace, &send).await,
                Termination::TimedOut,
            )
        }
        Event::Signal(sig) => {
            append_log(
                opts,
                "info",
                &format!("Entrypoint received interrupt: {sig}"),
            );
            send(Signal::SIGINT);
            (
                graceful_wait(opts, &mut child, grace, &send).await,
                Termination::Interrupted,
            )
        }
    };
    // Whatever the test left behind in its group goes too.
    send(Signal::SIGKILL);
    // Output from processes that escaped the group must not hold us forever.
    let _ = tokio::time::timeout(Duration::from_secs(5), copier).await;

    let child_code = match &status {
        Ok(s) => status_code(s),
        Err(e) => {
            append_log(
                opts,
                "error",
                &format!("could not wait for the test process: {e}"),
            );
            INTERNAL_ERROR_CODE
        }
    };
    let code = match termination {
        Termination::TimedOut if !opts.propagate_error_code => INTERNAL_ERROR_CODE,
        Termination::Interrupted if !opts.propagate_error_code => ABORTED_CODE,
        _ => child_code,
    };
    finish(opts, code, termination)
}

async fn graceful_wait(
    opts: &EntrypointOptions,
    child: &mut tokio::process::Child,
    grace: Duration,
    send: &impl Fn(Signal),
) -> std::io::Result<ExitStatus> {
    tokio::select! {
        s = child.wait() => return s,
        _ = tokio::time::sleep(grace) => {}
    }
    append_log(
        opts,
        "error",
        &format!(
            "Process did not exit before {} grace period",
            fmt_duration(grace)
        ),
    );
    send(Signal::SIGKILL);
    let _ = child.start_kill();
    child.wait().await
}

/// Copies the child's output to the process log and our stdout; resolves at EOF.
fn spawn_copier(
    mut reader: std::io::PipeReader,
    mut log: std::fs::File,
) -> tokio::sync::oneshot::Receiver<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        let mut stdout_ok = true;
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let _ = log.write_all(&buf[..n]);
                    if stdout_ok {
                        let mut out = std::io::stdout().lock();
                        stdout_ok = out.write_all(&buf[..n]).and_then(|_| out.flush()).is_ok();
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let _ = log.flush();
        let _ = tx.send(());
    });
    rx
}

async fn wait_for_marker(path: &Path) -> std::io::Result<i32> {
    loop {
        if let Some(code) = super::util::read_marker(path)? {
            return Ok(code);
        }
        // Polling interval, not a readiness guess: the previous step's marker file has no other signal.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
