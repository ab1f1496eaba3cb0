//! The `local` agent: runs a job's first container as host processes.
//!
//! Layout of one run, under `<work_root>/<ProwJob name>/`:
//!
//! ```text
//! src/                     GOPATH; clones go to src/src/<host>/<org>/<repo> (Prow's layout)
//! logs/process-log.txt     the test's stdout+stderr (→ build-log.txt)
//! logs/marker-file.txt     the test's exit code, written by the entrypoint
//! logs/clone.json          clonerefs records (→ clone-records.json, clone-log.txt)
//! logs/artifacts/          $ARTIFACTS (→ artifacts/**)
//! workload.pid             "<pid> <start time>" of the workload process (= its process group)
//! test.pgid                process group of the test process
//! result.json              why the test process ended (timeout, interrupt, …)
//! workload.log             the workload's own stdout/stderr
//! started.json             the started.json uploaded at start
//! abort-requested          present once abort() was called
//! ```
//!
//! The workload is ONE detached process: the entrypoint tool (`entrypoint_command`, e.g.
//! `bosun-podutils entrypoint`), started in its own process group with stdin from /dev/null and
//! output to `workload.log`, so it survives a gateway crash. It gets the Prow
//! `ENTRYPOINT_OPTIONS` plus the bosun-only `BOSUN_LOCAL_OPTIONS`, which make it run clonerefs
//! in-process first (into `src/`), start the test in the clone's directory, and record the
//! test's process group and end reason. The test's environment is the container's env
//! (name/value), the downward-API env, `ARTIFACTS` and `GOPATH`, on top of a few variables passed
//! through from the gateway ([`LocalAgentConfig::pass_env`]); nothing else of the gateway's
//! environment leaks into jobs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bosun_proto::ProwJob;
use bosun_proto::downward::env_for_job;
use bytes::Bytes;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

use crate::agent::{Agent, AgentError, LogStream, Outcome, Progress, ProgressSender, Started};
use crate::artifacts::Artifacts;
use crate::podutils::clonerefs::{self, CloneRefsOptions, Record};
use crate::podutils::entrypoint::{
    self, EntrypointOptions, LocalRunOptions, RunResult, Termination,
};
use crate::podutils::metadata::{Started as StartedJson, finished_for, started_for_job};
use crate::podutils::util::{fmt_duration, read_marker, unix_now, write_atomic};

/// Variables of the gateway's environment that jobs see by default.
pub const DEFAULT_PASS_ENV: [&str; 11] = [
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
    "TERM",
];

/// `decoration_config.timeout`, or `default` when unset or zero (as Prow's entrypoint).
pub(crate) fn decoration_timeout(job: &ProwJob, default: Duration) -> Duration {
    job.spec
        .decoration_config
        .as_ref()
        .and_then(|d| d.timeout)
        .map(|d| d.0)
        .filter(|d| !d.is_zero())
        .unwrap_or(default)
}

/// `decoration_config.grace_period`, or `default` when unset or zero.
pub(crate) fn decoration_grace_period(job: &ProwJob, default: Duration) -> Duration {
    job.spec
        .decoration_config
        .as_ref()
        .and_then(|d| d.grace_period)
        .map(|d| d.0)
        .filter(|d| !d.is_zero())
        .unwrap_or(default)
}

/// Extra time after the grace period before abort SIGKILLs what is left.
const ABORT_MARGIN: Duration = Duration::from_secs(5);
/// How often a re-attached wait checks the workload.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How often log tailing looks for new bytes.
const TAIL_INTERVAL: Duration = Duration::from_millis(100);

/// How the local agent runs jobs.
#[derive(Debug, Clone)]
pub struct LocalAgentConfig {
    /// Per-job directories are created under it.
    pub work_root: PathBuf,
    /// How to invoke the entrypoint tool, e.g. `["/usr/bin/bosun", "podutils", "entrypoint"]`
    /// or `["/usr/bin/bosun-podutils", "entrypoint"]`.
    pub entrypoint_command: Vec<String>,
    /// Where logs and artifacts are uploaded.
    pub artifacts: Artifacts,
    /// Test timeout when the job's decoration_config sets none.
    pub default_timeout: Duration,
    /// SIGINT → SIGKILL grace when the job's decoration_config sets none.
    pub default_grace_period: Duration,
    /// Gateway environment variables passed to jobs (default [`DEFAULT_PASS_ENV`]).
    pub pass_env: Vec<String>,
}

impl LocalAgentConfig {
    /// A config with Prow's defaults: 2h timeout, 15s grace, [`DEFAULT_PASS_ENV`].
    pub fn new(
        work_root: impl Into<PathBuf>,
        entrypoint_command: Vec<String>,
        artifacts: Artifacts,
    ) -> Self {
        Self {
            work_root: work_root.into(),
            entrypoint_command,
            artifacts,
            default_timeout: entrypoint::DEFAULT_TIMEOUT,
            default_grace_period: entrypoint::DEFAULT_GRACE_PERIOD,
            pass_env: DEFAULT_PASS_ENV.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// Runs jobs as host processes (agent name `local`).
pub struct LocalAgent {
    config: LocalAgentConfig,
    /// Workloads started by this process: job name → "has exited".
    children: Arc<Mutex<HashMap<String, watch::Receiver<bool>>>>,
    starting: tokio::sync::Mutex<()>,
}

/// The files of one run (the docker agent keeps the same layout on the host).
#[derive(Debug, Clone)]
pub(crate) struct JobFiles {
    pub(crate) dir: PathBuf,
    pub(crate) src: PathBuf,
    pub(crate) artifacts: PathBuf,
    pub(crate) process_log: PathBuf,
    pub(crate) marker: PathBuf,
    pub(crate) metadata: PathBuf,
    pub(crate) clone_log: PathBuf,
    pub(crate) pid_file: PathBuf,
    pub(crate) pgid_file: PathBuf,
    pub(crate) result_file: PathBuf,
    pub(crate) workload_log: PathBuf,
    pub(crate) started: PathBuf,
    pub(crate) abort_requested: PathBuf,
}

impl JobFiles {
    pub(crate) fn new(dir: PathBuf) -> Self {
        let logs = dir.join("logs");
        Self {
            src: dir.join("src"),
            artifacts: logs.join("artifacts"),
            process_log: logs.join("process-log.txt"),
            marker: logs.join("marker-file.txt"),
            metadata: logs.join("artifacts").join("metadata.json"),
            clone_log: logs.join("clone.json"),
            pid_file: dir.join("workload.pid"),
            pgid_file: dir.join("test.pgid"),
            result_file: dir.join("result.json"),
            workload_log: dir.join("workload.log"),
            started: dir.join("started.json"),
            abort_requested: dir.join("abort-requested"),
            dir,
        }
    }
}

/// Identity of a workload process: pid plus its start time (guards against pid reuse).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Workload {
    pid: i32,
    start_time: Option<u64>,
}

impl Workload {
    fn read(files: &JobFiles) -> Option<Self> {
        let text = std::fs::read_to_string(&files.pid_file).ok()?;
        let mut parts = text.split_whitespace();
        let pid = parts.next()?.parse::<i32>().ok().filter(|p| *p > 0)?;
        let start_time = parts.next().and_then(|s| s.parse().ok());
        Some(Self { pid, start_time })
    }

    fn alive(&self) -> bool {
        match proc_stat(self.pid) {
            Some((state, start)) => {
                if state == 'Z' || state == 'X' {
                    return false;
                }
                match (self.start_time, start) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                }
            }
            None if Path::new("/proc/self/stat").exists() => false,
            None => kill(Pid::from_raw(self.pid), None).is_ok(),
        }
    }

    fn signal_group(&self, sig: Signal) {
        let _ = killpg(Pid::from_raw(self.pid), sig);
    }
}

/// `(state, start time)` from `/proc/<pid>/stat`.
fn proc_stat(pid: i32) -> Option<(char, Option<u64>)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // Field 22 of the file is the start time; `after` starts at field 3.
    let start = fields.get(19).and_then(|s| s.parse().ok());
    Some((state, start))
}

fn read_pgid(files: &JobFiles) -> Option<Pid> {
    std::fs::read_to_string(&files.pgid_file)
        .ok()?
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|p| *p > 1)
        .map(Pid::from_raw)
}

pub(crate) fn io_unavailable(what: &str, path: &Path, e: std::io::Error) -> AgentError {
    AgentError::Unavailable(format!("{what} {}: {e}", path.display()))
}

/// The test command of the job's first container, validated.
fn test_command(job: &ProwJob) -> Result<Vec<String>, AgentError> {
    let pod = job
        .spec
        .pod_spec
        .as_ref()
        .ok_or_else(|| AgentError::InvalidJob("local agent: the job has no pod_spec".into()))?;
    let container = pod
        .containers
        .first()
        .ok_or_else(|| AgentError::InvalidJob("local agent: pod_spec has no containers".into()))?;
    let mut argv: Vec<String> = container.command.clone().unwrap_or_default();
    argv.extend(container.args.clone().unwrap_or_default());
    if argv.is_empty() || argv[0].is_empty() {
        return Err(AgentError::InvalidJob(format!(
            "local agent: container {:?} needs a command or args (the image entrypoint is not used)",
            container.name
        )));
    }
    Ok(argv)
}

fn check_name(job: &ProwJob) -> Result<&str, AgentError> {
    let name = job.name();
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if ok {
        Ok(name)
    } else {
        Err(AgentError::InvalidJob(format!(
            "local agent: job name {name:?} is not usable as a directory name"
        )))
    }
}

pub(crate) fn build_id(job: &ProwJob) -> Result<&str, AgentError> {
    match job.status.as_ref().map(|s| s.build_id.as_str()) {
        Some(id) if !id.is_empty() => Ok(id),
        _ => Err(AgentError::InvalidJob(
            "local agent: status.build_id is not set".into(),
        )),
    }
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let data = std::fs::read(path).ok()?;
    serde_json::from_slice(&data).ok()
}

impl LocalAgent {
    /// An agent with this configuration. Directories are created when jobs start.
    pub fn new(config: LocalAgentConfig) -> Self {
        Self {
            config,
            children: Arc::new(Mutex::new(HashMap::new())),
            starting: tokio::sync::Mutex::new(()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LocalAgentConfig {
        &self.config
    }

    /// `<work_root>/<job name>`.
    pub fn job_dir(&self, job: &ProwJob) -> Result<PathBuf, AgentError> {
        Ok(self.config.work_root.join(check_name(job)?))
    }

    fn files(&self, job: &ProwJob) -> Result<JobFiles, AgentError> {
        Ok(JobFiles::new(self.job_dir(job)?))
    }

    fn timeout_for(&self, job: &ProwJob) -> Duration {
        decoration_timeout(job, self.config.default_timeout)
    }

    fn grace_for(&self, job: &ProwJob) -> Duration {
        decoration_grace_period(job, self.config.default_grace_period)
    }

    fn own_child(&self, name: &str) -> Option<watch::Receiver<bool>> {
        self.children.lock().ok()?.get(name).cloned()
    }

    pub(crate) fn clone_options(job: &ProwJob, files: &JobFiles) -> Option<CloneRefsOptions> {
        let skip = job
            .spec
            .decoration_config
            .as_ref()
            .and_then(|d| d.skip_cloning)
            .unwrap_or(false);
        let refs: Vec<_> = job
            .spec
            .refs
            .iter()
            .chain(job.spec.extra_refs.iter())
            .cloned()
            .collect();
        if skip || refs.is_empty() {
            return None;
        }
        Some(CloneRefsOptions {
            src_root: files.src.clone(),
            log: files.clone_log.clone(),
            git_user_name: "ci-robot".into(),
            git_user_email: "ci-robot@k8s.io".into(),
            refs,
            ..Default::default()
        })
    }

    /// The test's working directory: the clone with `workdir: true`, else the first clone,
    /// else the job directory.
    fn workdir(clone: Option<&CloneRefsOptions>, files: &JobFiles) -> PathBuf {
        match clone {
            Some(c) => {
                let refs = c.refs.iter().find(|r| r.workdir).or_else(|| c.refs.first());
                match refs {
                    Some(r) => clonerefs::path_for_refs(&c.src_root, r),
                    None => files.dir.clone(),
                }
            }
            None => files.dir.clone(),
        }
    }

    async fn spawn_workload(
        &self,
        job: &ProwJob,
        files: &JobFiles,
        argv: Vec<String>,
    ) -> Result<Workload, AgentError> {
        let ep = &self.config.entrypoint_command;
        let Some(program) = ep.first() else {
            return Err(AgentError::Internal(
                "local agent: entrypoint_command is empty".into(),
            ));
        };
        let build_id = build_id(job)?;
        let clone = Self::clone_options(job, files);
        let entry = EntrypointOptions {
            timeout: self.timeout_for(job),
            grace_period: self.grace_for(job),
            artifact_dir: files.artifacts.clone(),
            args: argv,
            container_name: "test".into(),
            process_log: files.process_log.clone(),
            marker_file: files.marker.clone(),
            metadata_file: files.metadata.clone(),
            previous_marker: None,
            always_zero: false,
            propagate_error_code: false,
            copy_mode_only: false,
            copy_dst: None,
        };
        let local = LocalRunOptions {
            workdir: Some(Self::workdir(clone.as_ref(), files)),
            clonerefs: clone,
            pgid_file: Some(files.pgid_file.clone()),
            result_file: Some(files.result_file.clone()),
        };
        let entry_json = serde_json::to_string(&entry)
            .map_err(|e| AgentError::Internal(format!("encoding ENTRYPOINT_OPTIONS: {e}")))?;
        let local_json = serde_json::to_string(&local).map_err(|e| {
            AgentError::Internal(format!("encoding {}: {e}", entrypoint::LOCAL_OPTIONS_VAR))
        })?;

        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&files.workload_log)
            .map_err(|e| io_unavailable("opening", &files.workload_log, e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| io_unavailable("opening", &files.workload_log, e))?;

        let mut cmd = tokio::process::Command::new(program);
        cmd.args(&ep[1..])
            .env_clear()
            .current_dir(&files.dir)
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0);
        for name in &self.config.pass_env {
            if let Some(v) = std::env::var_os(name) {
                cmd.env(name, v);
            }
        }
        if let Some(container) = job
            .spec
            .pod_spec
            .as_ref()
            .and_then(|p| p.containers.first())
        {
            for var in container.env.iter().flatten() {
                if var.value_from.is_none() {
                    cmd.env(&var.name, var.value.clone().unwrap_or_default());
                }
            }
        }
        for (k, v) in env_for_job(job, build_id, false) {
            cmd.env(k, v);
        }
        cmd.env("ARTIFACTS", &files.artifacts)
            .env("GOPATH", &files.src)
            .env("ENTRYPOINT_OPTIONS", entry_json)
            .env(entrypoint::LOCAL_OPTIONS_VAR, local_json);

        let mut child = cmd.spawn().map_err(|e| {
            AgentError::Internal(format!(
                "local agent: starting the entrypoint {program:?}: {e}"
            ))
        })?;
        drop(cmd);
        let pid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(|| {
                AgentError::Internal("local agent: the workload exited before it got a pid".into())
            })?;
        let workload = Workload {
            pid,
            start_time: proc_stat(pid).and_then(|(_, s)| s),
        };
        let pid_text = match workload.start_time {
            Some(st) => format!("{pid} {st}\n"),
            None => format!("{pid}\n"),
        };
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            let _ = child.wait().await;
            let _ = tx.send(true);
        });
        if let Ok(mut children) = self.children.lock() {
            children.insert(job.name().to_owned(), rx);
        }
        write_atomic(&files.pid_file, pid_text.as_bytes())
            .map_err(|e| io_unavailable("writing", &files.pid_file, e))?;
        Ok(workload)
    }

    /// Decides the outcome from the files the workload left, uploads, and returns it.
    async fn finish(&self, job: &ProwJob, files: &JobFiles) -> Result<Outcome, AgentError> {
        let (outcome, records) = decide_outcome(files);
        let outcome = outcome
            .unwrap_or_else(|| Outcome::error("workload ended without writing its exit code"));
        upload_run(
            &self.config.artifacts,
            job,
            files,
            &outcome,
            records.as_deref(),
        )
        .await
        .map_err(|e| AgentError::Unavailable(format!("uploading logs and artifacts: {e}")))?;
        Ok(outcome)
    }

    fn send_running_once(files: &JobFiles, progress: &ProgressSender, sent: &mut bool) {
        if !*sent && files.pgid_file.exists() {
            *sent = true;
            let _ = progress.send(Progress::Running);
        }
    }
}

/// The outcome the files of a finished run say (marker, end reason, clone records, abort), and
/// the clone records. `None` when no exit code was written and nothing else explains why (the
/// caller knows more about how its workload died).
pub(crate) fn decide_outcome(files: &JobFiles) -> (Option<Outcome>, Option<Vec<Record>>) {
    let marker = read_marker(&files.marker);
    let result: Option<RunResult> = read_json(&files.result_file);
    let records: Option<Vec<Record>> = read_json(&files.clone_log);
    let clone_failure = records.iter().flatten().find_map(Record::failure_summary);
    let abort_requested = files.abort_requested.exists();
    let termination = result.as_ref().map(|r| r.termination);
    let outcome = match marker {
        Err(e) => Outcome::error(format!("reading the exit code marker: {e}")),
        Ok(Some(entrypoint::ABORTED_CODE)) => Outcome::aborted("Job aborted."),
        Ok(None) if abort_requested => Outcome::aborted("Job aborted."),
        _ if clone_failure.is_some() => Outcome::new(
            bosun_proto::ProwJobState::Failure,
            format!("Cloning refs failed: {}", clone_failure.unwrap_or_default()),
        ),
        Ok(Some(0)) => Outcome::success(),
        Ok(Some(entrypoint::INTERNAL_ERROR_CODE)) if termination == Some(Termination::TimedOut) => {
            Outcome::new(
                bosun_proto::ProwJobState::Failure,
                format!(
                    "Job timed out after {}.",
                    fmt_duration(result.as_ref().map(|r| r.timeout).unwrap_or_default())
                ),
            )
        }
        Ok(Some(entrypoint::INTERNAL_ERROR_CODE))
            if termination == Some(Termination::StartFailed) =>
        {
            Outcome::new(
                bosun_proto::ProwJobState::Failure,
                "Job failed: the test process could not be started.",
            )
        }
        Ok(Some(_)) => Outcome::failure(),
        Ok(None) => return (None, records),
    };
    (Some(outcome), records)
}

/// Uploads a finished run as Prow lays it out: build-log.txt, clone-log.txt,
/// clone-records.json, started.json, finished.json and artifacts/.
pub(crate) async fn upload_run(
    a: &Artifacts,
    job: &ProwJob,
    files: &JobFiles,
    outcome: &Outcome,
    records: Option<&[Record]>,
) -> Result<(), crate::artifacts::ArtifactsError> {
    if let Some(r) = records.filter(|r| r.iter().any(|x| x.failed)) {
        // As with Prow's initupload: a clone failure's build log is the clone log (plus
        // whatever the entrypoint said about it).
        let mut log = clonerefs::format_records(r).into_bytes();
        if let Ok(extra) = tokio::fs::read(&files.process_log).await {
            log.extend(extra);
        }
        a.put(job, "build-log.txt", Bytes::from(log)).await?;
    } else if files.process_log.exists() {
        a.put_file(job, "build-log.txt", &files.process_log).await?;
    }
    if let Some(r) = records {
        a.put(
            job,
            "clone-log.txt",
            Bytes::from(clonerefs::format_records(r)),
        )
        .await?;
        a.put_file(job, "clone-records.json", &files.clone_log)
            .await?;
    }
    let started_ts = read_json::<StartedJson>(&files.started)
        .map(|s| s.timestamp)
        .unwrap_or_else(unix_now);
    let started = started_for_job(job, records.unwrap_or_default(), started_ts);
    a.put(job, "started.json", json_bytes(&started)).await?;

    let metadata = read_json::<serde_json::Value>(&files.metadata)
        .and_then(|v| match v {
            serde_json::Value::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_default();
    let (passed, result) = crate::podutils::metadata::passed_and_result(outcome.state);
    let finished = finished_for(
        job.spec.refs.as_ref(),
        &job.spec.extra_refs,
        passed,
        result,
        metadata,
        unix_now(),
    );
    a.put(job, "finished.json", json_bytes(&finished)).await?;
    a.upload_dir(job, &files.artifacts, "artifacts").await?;
    Ok(())
}

pub(crate) fn json_bytes<T: serde::Serialize>(v: &T) -> Bytes {
    Bytes::from(serde_json::to_vec_pretty(v).unwrap_or_default())
}

fn workload_finished(files: &JobFiles) -> bool {
    if files.marker.exists() {
        return true;
    }
    match Workload::read(files) {
        Some(w) => !w.alive(),
        None => true,
    }
}

#[async_trait]
impl Agent for LocalAgent {
    fn name(&self) -> &str {
        bosun_proto::prowjob::agents::LOCAL
    }

    fn check(&self, job: &ProwJob) -> Result<(), AgentError> {
        check_name(job)?;
        test_command(job)?;
        Ok(())
    }

    async fn start(&self, job: &ProwJob) -> Result<Started, AgentError> {
        let argv = test_command(job)?;
        let files = self.files(job)?;
        build_id(job)?;
        let _guard = self.starting.lock().await;
        if let Some(w) = Workload::read(&files) {
            return Ok(Started {
                workload_name: format!("pid-{}", w.pid),
                description: None,
            });
        }
        for dir in [&files.dir, &files.src, &files.artifacts] {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| io_unavailable("creating", dir, e))?;
        }
        let started = started_for_job(job, &[], unix_now());
        write_atomic(&files.started, &json_bytes(&started))
            .map_err(|e| io_unavailable("writing", &files.started, e))?;
        let a = &self.config.artifacts;
        a.put(job, "started.json", json_bytes(&started))
            .await
            .map_err(|e| AgentError::Unavailable(format!("uploading started.json: {e}")))?;
        a.write_latest_build(job)
            .await
            .map_err(|e| AgentError::Unavailable(format!("uploading latest-build.txt: {e}")))?;
        let w = self.spawn_workload(job, &files, argv).await?;
        Ok(Started {
            workload_name: format!("pid-{}", w.pid),
            description: None,
        })
    }

    async fn wait(&self, job: &ProwJob, progress: ProgressSender) -> Result<Outcome, AgentError> {
        let files = self.files(job)?;
        if !files.dir.is_dir() {
            return Err(AgentError::NotFound(format!(
                "local agent: no work directory {} for job {}",
                files.dir.display(),
                job.name()
            )));
        }
        let mut running_sent = false;
        if let Some(mut rx) = self.own_child(job.name()) {
            loop {
                tokio::select! {
                    _ = async { rx.wait_for(|exited| *exited).await.is_ok() } => break,
                    _ = tokio::time::sleep(POLL_INTERVAL), if !running_sent => {
                        Self::send_running_once(&files, &progress, &mut running_sent);
                    }
                }
            }
        } else {
            let w = Workload::read(&files).ok_or_else(|| {
                AgentError::NotFound(format!(
                    "local agent: job {} has no workload ({} is missing)",
                    job.name(),
                    files.pid_file.display()
                ))
            })?;
            let mut marker_seen: Option<Instant> = None;
            loop {
                Self::send_running_once(&files, &progress, &mut running_sent);
                if !w.alive() {
                    break;
                }
                if files.marker.exists() {
                    // The marker is written last; do not wait forever for a process that lingers.
                    let seen = *marker_seen.get_or_insert_with(Instant::now);
                    if seen.elapsed() > Duration::from_secs(10) {
                        break;
                    }
                }
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        }
        Self::send_running_once(&files, &progress, &mut running_sent);
        self.finish(job, &files).await
    }

    async fn abort(&self, job: &ProwJob) -> Result<(), AgentError> {
        let files = self.files(job)?;
        if !files.dir.is_dir() {
            return Ok(());
        }
        let Some(w) = Workload::read(&files) else {
            return Ok(());
        };
        if !w.alive() || files.marker.exists() {
            return Ok(());
        }
        let _ = std::fs::write(&files.abort_requested, b"");
        w.signal_group(Signal::SIGTERM);
        let deadline = self.grace_for(job) + ABORT_MARGIN;
        tokio::spawn(async move {
            let start = Instant::now();
            while start.elapsed() < deadline {
                if !w.alive() {
                    break;
                }
                tokio::time::sleep(POLL_INTERVAL).await;
            }
            if w.alive() {
                w.signal_group(Signal::SIGKILL);
            }
            if !files.marker.exists()
                && let Some(pgid) = read_pgid(&files)
            {
                let _ = killpg(pgid, Signal::SIGKILL);
            }
        });
        Ok(())
    }

    async fn logs(&self, job: &ProwJob, follow: bool) -> Result<LogStream, AgentError> {
        let files = self.files(job)?;
        if !files.dir.is_dir() {
            return Err(AgentError::NotFound(format!(
                "local agent: no work directory {} for job {}",
                files.dir.display(),
                job.name()
            )));
        }
        if !follow {
            let data = match tokio::fs::read(&files.process_log).await {
                Ok(d) => d,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(io_unavailable("reading", &files.process_log, e)),
            };
            return Ok(Box::pin(futures::stream::once(async move {
                Ok(Bytes::from(data))
            })));
        }
        struct Tail {
            files: JobFiles,
            file: Option<tokio::fs::File>,
            done: bool,
        }
        let state = Tail {
            files,
            file: None,
            done: false,
        };
        let stream = futures::stream::unfold(state, |mut st| async move {
            loop {
                if st.done {
                    return None;
                }
                let finished = workload_finished(&st.files);
                if st.file.is_none() {
                    match tokio::fs::File::open(&st.files.process_log).await {
                        Ok(f) => st.file = Some(f),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                            if finished {
                                return None;
                            }
                            tokio::time::sleep(TAIL_INTERVAL).await;
                            continue;
                        }
                        Err(e) => {
                            st.done = true;
                            let err = io_unavailable("reading", &st.files.process_log, e);
                            return Some((Err(err), st));
                        }
                    }
                }
                let mut buf = vec![0u8; 64 * 1024];
                let read = match st.file.as_mut() {
                    Some(f) => f.read(&mut buf).await,
                    None => Ok(0),
                };
                match read {
                    Ok(0) => {
                        if finished {
                            return None;
                        }
                        tokio::time::sleep(TAIL_INTERVAL).await;
                    }
                    Ok(n) => {
                        buf.truncate(n);
                        return Some((Ok(Bytes::from(buf)), st));
                    }
                    Err(e) => {
                        st.done = true;
                        let err = io_unavailable("reading", &st.files.process_log, e);
                        return Some((Err(err), st));
                    }
                }
            }
        });
        Ok(Box::pin(stream))
    }

    async fn cleanup(&self, job: &ProwJob) -> Result<(), AgentError> {
        let files = self.files(job)?;
        if let Some(w) = Workload::read(&files)
            && w.alive()
        {
            w.signal_group(Signal::SIGKILL);
            if let Some(pgid) = read_pgid(&files) {
                let _ = killpg(pgid, Signal::SIGKILL);
            }
        }
        if let Ok(mut children) = self.children.lock() {
            children.remove(job.name());
        }
        match tokio::fs::remove_dir_all(&files.dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_unavailable("removing", &files.dir, e)),
        }
    }
}
