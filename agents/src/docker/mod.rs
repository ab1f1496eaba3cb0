//! The `docker` agent: jobs as Docker Engine containers, driven through `bollard`.
//!
//! A job runs as ONE container made from the job's first container (image, command + args,
//! env, working dir, memory and CPU limits, `hostPath` / `emptyDir` volumes, security context
//! user, `hostNetwork`), decorated the way Prow decorates a pod:
//!
//! ```text
//! host <work_root>/<job>/                       container
//! ├── src/          clones (clonerefs, host)   → /home/prow/go        (GOPATH, rw)
//! ├── logs/                                    → /logs                (rw)
//! │   ├── process-log.txt, marker-file.txt,      written by the entrypoint
//! │   ├── result.json                            why the test ended (timeout, interrupt, …)
//! │   ├── clone.json                             clone records (host only)
//! │   └── artifacts/                             $ARTIFACTS
//! ├── started.json, abort-requested
//! static bosun-podutils                        → /tools/entrypoint    (ro)
//! ```
//!
//! - **Clone**: `start` runs clonerefs on the host (the gateway's `git`) into `src/` before the
//!   container exists, so the test image needs no git; a clone failure ends the job in
//!   `failure` without creating a container (like Prow's initupload).
//! - **Entrypoint**: the container's entrypoint is the static `bosun-podutils` binary mounted
//!   read-only at `/tools/entrypoint` (it picks its tool from its file name), so any image works,
//!   busybox included. It runs the test with the job's timeout and grace period, writes the
//!   process log and the marker (127 timeout, 130 interrupted) into `/logs`.
//! - **Network**: `none` unless `pod_spec.hostNetwork` is true (then `host`).
//! - **Labels**: the container and its volumes carry `created-by-prow=true`,
//!   `prow.k8s.io/id=<ProwJob name>`, `prow.k8s.io/build-id`, `prow.k8s.io/job`,
//!   `prow.k8s.io/type` (plus the ProwJob's labels); `wait` after a gateway restart finds the
//!   container again by `prow.k8s.io/id`.
//! - **Follow**: `wait` blocks on Docker's wait API (`/containers/{id}/wait`, no polling), then
//!   decides the outcome from the marker, uploads build-log.txt, started.json, finished.json,
//!   clone records and artifacts with Prow's layout, and removes the container, its volumes
//!   and the host directory.
//! - **Abort**: SIGTERM through `docker stop` (the entrypoint interrupts the test, waits the
//!   grace period, writes marker 130), then removal.
//! - **Errors**: an unreachable engine is `Unavailable` (the dispatcher retries with backoff and
//!   shows the message); an image that is not present locally is `InvalidJob` — images are never
//!   pulled.

mod spec;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, ContainerSummaryStateEnum, HostConfig, Mount, MountType,
    VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, ListVolumesOptions, LogsOptions,
    RemoveContainerOptions, RemoveVolumeOptions, StopContainerOptions, WaitContainerOptions,
};
use bosun_proto::downward::env_for_job;
use bosun_proto::{ProwJob, labels};
use bytes::Bytes;
use futures::StreamExt;

use crate::agent::{Agent, AgentError, LogStream, Outcome, Progress, ProgressSender, Started};
use crate::artifacts::Artifacts;
use crate::local::{
    JobFiles, LocalAgent, build_id, decide_outcome, io_unavailable, json_bytes, upload_run,
};
use crate::podutils::clonerefs::{self, Record};
use crate::podutils::entrypoint::{self, EntrypointOptions, LocalRunOptions};
use crate::podutils::metadata::started_for_job;
use crate::podutils::util::{unix_now, write_atomic};

/// Docker's default socket.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";
/// Environment variable naming the static `bosun-podutils` binary mounted into containers.
pub const PODUTILS_ENV: &str = "BOSUN_PODUTILS_STATIC";
/// Where cargo puts the static build (`--release --target x86_64-unknown-linux-gnu`), relative
/// to the target directory.
pub const STATIC_PODUTILS_IN_TARGET: &str = "x86_64-unknown-linux-gnu/release/bosun-podutils";
/// Extra time Docker gives the entrypoint after the grace period before SIGKILL.
const STOP_MARGIN: Duration = Duration::from_secs(5);

/// How the docker agent runs jobs.
#[derive(Debug, Clone)]
pub struct DockerAgentConfig {
    /// The engine: `unix:///path` or `tcp://host:port` (default `$DOCKER_HOST`, else
    /// [`DEFAULT_DOCKER_HOST`]).
    pub docker_host: String,
    /// Per-job host directories (clones, logs) are created under it.
    pub work_root: PathBuf,
    /// The static `bosun-podutils` binary on the host (mounted at `/tools/entrypoint`); `None`
    /// looks for one with [`find_static_podutils`] at every start.
    pub podutils: Option<PathBuf>,
    /// Where logs and artifacts are uploaded.
    pub artifacts: Artifacts,
    /// Test timeout when the job's decoration_config sets none.
    pub default_timeout: Duration,
    /// SIGINT → SIGKILL grace when the job's decoration_config sets none.
    pub default_grace_period: Duration,
    /// Remove the container, its volumes and the host directory once `wait` has uploaded
    /// everything (default true; false keeps them for debugging until `cleanup`).
    pub remove_after_wait: bool,
}

impl DockerAgentConfig {
    /// A config with Prow's defaults (2h timeout, 15s grace) on `$DOCKER_HOST` or the default
    /// socket.
    pub fn new(
        work_root: impl Into<PathBuf>,
        podutils: Option<PathBuf>,
        artifacts: Artifacts,
    ) -> Self {
        let docker_host = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_owned());
        Self {
            docker_host,
            work_root: work_root.into(),
            podutils,
            artifacts,
            default_timeout: entrypoint::DEFAULT_TIMEOUT,
            default_grace_period: entrypoint::DEFAULT_GRACE_PERIOD,
            remove_after_wait: true,
        }
    }
}

/// Looks for a static `bosun-podutils`: `$BOSUN_PODUTILS_STATIC`, then `bosun-podutils-static`
/// next to the running executable, then cargo's static build
/// (`<target>/x86_64-unknown-linux-gnu/release/bosun-podutils`) in the directories above it.
pub fn find_static_podutils() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(PODUTILS_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    let beside = dir.join("bosun-podutils-static");
    if beside.is_file() {
        return Some(beside);
    }
    dir.ancestors()
        .take(4)
        .map(|d| d.join(STATIC_PODUTILS_IN_TARGET))
        .find(|p| p.is_file())
}

/// Whether `path` is an ELF executable without a program interpreter (statically linked, so it
/// runs in any image).
pub fn is_static_executable(path: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path)?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not a 64-bit ELF file");
    let mut header = [0u8; 64];
    file.read_exact_at(&mut header, 0).map_err(|_| bad())?;
    if &header[..4] != b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return Err(bad());
    }
    let mut phoff = [0u8; 8];
    phoff.copy_from_slice(&header[0x20..0x28]);
    let phoff = u64::from_le_bytes(phoff);
    let phentsize = u64::from(u16::from_le_bytes([header[0x36], header[0x37]]));
    let phnum = u64::from(u16::from_le_bytes([header[0x38], header[0x39]]));
    for i in 0..phnum {
        let mut kind = [0u8; 4];
        file.read_exact_at(&mut kind, phoff + i * phentsize)
            .map_err(|_| bad())?;
        if u32::from_le_bytes(kind) == 3 {
            // PT_INTERP: needs a dynamic loader.
            return Ok(false);
        }
    }
    Ok(true)
}

/// Runs jobs as Docker containers (agent name `docker`).
pub struct DockerAgent {
    config: DockerAgentConfig,
    client: tokio::sync::Mutex<Option<Docker>>,
    /// The static podutils once found and checked.
    podutils: std::sync::Mutex<Option<PathBuf>>,
}

/// How the container ended, as Docker saw it.
#[derive(Debug, Clone, Copy, Default)]
struct ContainerEnd {
    exit_code: Option<i64>,
    oom_killed: bool,
}

/// A container found by label.
#[derive(Debug, Clone)]
struct Found {
    id: String,
    name: String,
    state: Option<ContainerSummaryStateEnum>,
}

fn is_status(e: &DockerError, code: u16) -> bool {
    matches!(e, DockerError::DockerResponseServerError { status_code, .. } if *status_code == code)
}

fn container_name(job: &ProwJob) -> String {
    spec::docker_name(&["bosun", job.name()])
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
            "docker agent: job name {name:?} is not usable as a container name"
        )))
    }
}

fn label_filter(job: &ProwJob) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_owned(),
        vec![format!("{}={}", labels::ID, job.name())],
    )])
}

/// The labels of the job's container and volumes.
fn workload_labels(job: &ProwJob, build_id: &str) -> HashMap<String, String> {
    let mut l: HashMap<String, String> = job
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    l.insert(labels::CREATED_BY_PROW.into(), "true".into());
    l.insert(labels::ID.into(), job.name().into());
    l.insert(labels::BUILD_ID.into(), build_id.into());
    l.insert(labels::JOB.into(), job.spec.job.clone());
    l.insert(labels::TYPE.into(), job.spec.r#type.as_str().into());
    l
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

impl DockerAgent {
    /// An agent with this configuration. Nothing is contacted until a job starts, so an engine
    /// that is down does not stop a gateway from starting.
    pub fn new(config: DockerAgentConfig) -> Self {
        Self {
            config,
            client: tokio::sync::Mutex::new(None),
            podutils: std::sync::Mutex::new(None),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DockerAgentConfig {
        &self.config
    }

    /// `<work_root>/<job name>`: the job's host directory.
    pub fn job_dir(&self, job: &ProwJob) -> Result<PathBuf, AgentError> {
        Ok(self.config.work_root.join(check_name(job)?))
    }

    fn files(&self, job: &ProwJob) -> Result<JobFiles, AgentError> {
        let mut files = JobFiles::new(self.job_dir(job)?);
        // Inside the /logs mount, so the entrypoint in the container can write it.
        files.result_file = files.dir.join("logs").join("result.json");
        Ok(files)
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> AgentError {
        AgentError::Unavailable(format!(
            "cannot reach the docker engine at {}: {e} (is dockerd running?)",
            self.config.docker_host
        ))
    }

    /// Maps an engine error: connection problems and 5xx are `Unavailable`.
    fn engine_error(&self, what: &str, e: DockerError) -> AgentError {
        match e {
            DockerError::DockerResponseServerError {
                status_code,
                message,
            } if status_code >= 500 => AgentError::Unavailable(format!(
                "docker engine: {what}: {message} (status {status_code})"
            )),
            DockerError::DockerResponseServerError {
                status_code,
                message,
            } => AgentError::Internal(format!(
                "docker engine: {what}: {message} (status {status_code})"
            )),
            other => self.unreachable(other),
        }
    }

    /// A connected client with the API version negotiated (cached once it worked).
    async fn docker(&self) -> Result<Docker, AgentError> {
        let mut guard = self.client.lock().await;
        if let Some(d) = guard.as_ref() {
            return Ok(d.clone());
        }
        let d = Docker::connect_with_host(&self.config.docker_host)
            .map_err(|e| self.unreachable(e))?
            .negotiate_version()
            .await
            .map_err(|e| self.unreachable(e))?;
        *guard = Some(d.clone());
        Ok(d)
    }

    fn timeout_for(&self, job: &ProwJob) -> Duration {
        crate::local::decoration_timeout(job, self.config.default_timeout)
    }

    fn grace_for(&self, job: &ProwJob) -> Duration {
        crate::local::decoration_grace_period(job, self.config.default_grace_period)
    }

    fn podutils(&self) -> Result<PathBuf, AgentError> {
        if let Some(p) = self.podutils.lock().ok().and_then(|g| g.clone())
            && p.is_file()
        {
            return Ok(p);
        }
        let path = self
            .config
            .podutils
            .clone()
            .or_else(find_static_podutils)
            .ok_or_else(|| {
                AgentError::Unavailable(format!(
                    "docker agent: no static bosun-podutils binary to mount into containers; build one with \
                     `RUSTFLAGS=\"-C target-feature=+crt-static\" cargo build --release --target x86_64-unknown-linux-gnu -p bosun-agents --bin bosun-podutils` \
                     and point {PODUTILS_ENV} at it"
                ))
            })?;
        let path = std::fs::canonicalize(&path).map_err(|e| {
            AgentError::Unavailable(format!(
                "docker agent: static bosun-podutils {}: {e}",
                path.display()
            ))
        })?;
        match is_static_executable(&path) {
            Ok(true) => {
                if let Ok(mut g) = self.podutils.lock() {
                    *g = Some(path.clone());
                }
                Ok(path)
            }
            Ok(false) => Err(AgentError::Unavailable(format!(
                "docker agent: {} is dynamically linked; containers need a static bosun-podutils (build it with -C target-feature=+crt-static)",
                path.display()
            ))),
            Err(e) => Err(AgentError::Unavailable(format!(
                "docker agent: static bosun-podutils {}: {e}",
                path.display()
            ))),
        }
    }

    /// The job's container for this build (any state), and the ids of containers left by
    /// earlier builds of the same ProwJob.
    async fn find_all(
        &self,
        docker: &Docker,
        job: &ProwJob,
    ) -> Result<(Option<Found>, Vec<String>), AgentError> {
        let list = docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(label_filter(job)),
                ..Default::default()
            }))
            .await
            .map_err(|e| self.engine_error("listing containers", e))?;
        let build = job
            .status
            .as_ref()
            .map(|s| s.build_id.as_str())
            .unwrap_or("");
        let (mut ours, stale): (Vec<_>, Vec<_>) = list.into_iter().partition(|c| {
            c.labels
                .as_ref()
                .and_then(|l| l.get(labels::BUILD_ID))
                .is_none_or(|b| build.is_empty() || b == build)
        });
        ours.sort_by_key(|c| std::cmp::Reverse(c.created.unwrap_or_default()));
        let found = ours.into_iter().next().and_then(|c| {
            Some(Found {
                id: c.id?,
                name: c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .map(|n| n.trim_start_matches('/').to_owned())
                    .unwrap_or_else(|| container_name(job)),
                state: c.state,
            })
        });
        Ok((found, stale.into_iter().filter_map(|c| c.id).collect()))
    }

    /// The job's container for this build (a container of an earlier build of the same
    /// ProwJob is not this workload).
    async fn find(&self, docker: &Docker, job: &ProwJob) -> Result<Option<Found>, AgentError> {
        Ok(self.find_all(docker, job).await?.0)
    }

    async fn remove_container(&self, docker: &Docker, id: &str) -> Result<(), AgentError> {
        match docker
            .remove_container(
                id,
                Some(RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                }),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_status(&e, 404) || is_status(&e, 409) => Ok(()),
            Err(e) => Err(self.engine_error("removing the container", e)),
        }
    }

    async fn start_container(&self, docker: &Docker, id: &str) -> Result<(), AgentError> {
        match docker.start_container(id, None).await {
            Ok(()) => Ok(()),
            Err(e) if is_status(&e, 304) => Ok(()),
            Err(DockerError::DockerResponseServerError {
                status_code,
                message,
            }) if status_code < 500 || message.contains("OCI runtime") => {
                let _ = self.remove_container(docker, id).await;
                Err(AgentError::InvalidJob(format!(
                    "docker agent: starting the container failed: {message}"
                )))
            }
            Err(e) => Err(self.engine_error("starting the container", e)),
        }
    }

    /// Creates the container (and its emptyDir volumes) for a job whose refs are cloned.
    #[allow(clippy::too_many_arguments)]
    async fn create(
        &self,
        docker: &Docker,
        job: &ProwJob,
        plan: &spec::ContainerPlan,
        argv: Vec<String>,
        files: &JobFiles,
        podutils: &Path,
        workdir: Option<String>,
        build_id: &str,
    ) -> Result<String, AgentError> {
        let labels = workload_labels(job, build_id);
        let name = container_name(job);
        let mut mounts = vec![
            Mount {
                target: Some(spec::LOGS_MOUNT.into()),
                source: Some(files.dir.join("logs").display().to_string()),
                typ: Some(MountType::BIND),
                read_only: Some(false),
                ..Default::default()
            },
            Mount {
                target: Some(spec::CODE_MOUNT.into()),
                source: Some(files.src.display().to_string()),
                typ: Some(MountType::BIND),
                read_only: Some(false),
                ..Default::default()
            },
            Mount {
                target: Some(spec::ENTRYPOINT_PATH.into()),
                source: Some(podutils.display().to_string()),
                typ: Some(MountType::BIND),
                read_only: Some(true),
                ..Default::default()
            },
        ];
        for m in &plan.mounts {
            let mount = match &m.source {
                spec::MountSource::HostPath(p) => Mount {
                    target: Some(m.target.clone()),
                    source: Some(p.clone()),
                    typ: Some(MountType::BIND),
                    read_only: Some(m.read_only),
                    ..Default::default()
                },
                spec::MountSource::EmptyDir(vol) => {
                    let volume = spec::docker_name(&["bosun", job.name(), vol]);
                    docker
                        .create_volume(VolumeCreateRequest {
                            name: Some(volume.clone()),
                            labels: Some(labels.clone()),
                            ..Default::default()
                        })
                        .await
                        .map_err(|e| self.engine_error("creating an emptyDir volume", e))?;
                    Mount {
                        target: Some(m.target.clone()),
                        source: Some(volume),
                        typ: Some(MountType::VOLUME),
                        read_only: Some(m.read_only),
                        ..Default::default()
                    }
                }
                spec::MountSource::Tmpfs => Mount {
                    target: Some(m.target.clone()),
                    typ: Some(MountType::TMPFS),
                    read_only: Some(m.read_only),
                    ..Default::default()
                },
            };
            mounts.push(mount);
        }

        let logs = Path::new(spec::LOGS_MOUNT);
        let entry = EntrypointOptions {
            timeout: self.timeout_for(job),
            grace_period: self.grace_for(job),
            artifact_dir: logs.join("artifacts"),
            args: argv,
            container_name: job
                .spec
                .pod_spec
                .as_ref()
                .and_then(|p| p.containers.first())
                .map(|c| c.name.clone())
                .unwrap_or_else(|| "test".into()),
            process_log: logs.join("process-log.txt"),
            marker_file: logs.join("marker-file.txt"),
            metadata_file: logs.join("artifacts").join("metadata.json"),
            previous_marker: None,
            always_zero: false,
            propagate_error_code: false,
            copy_mode_only: false,
            copy_dst: None,
        };
        let local = LocalRunOptions {
            result_file: Some(logs.join("result.json")),
            ..Default::default()
        };
        let entry_json = serde_json::to_string(&entry)
            .map_err(|e| AgentError::Internal(format!("encoding ENTRYPOINT_OPTIONS: {e}")))?;
        let local_json = serde_json::to_string(&local).map_err(|e| {
            AgentError::Internal(format!("encoding {}: {e}", entrypoint::LOCAL_OPTIONS_VAR))
        })?;

        // As in a decorated pod: the container's env, then the downward API, then decoration.
        let mut env: Vec<String> = plan.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        env.extend(
            env_for_job(job, build_id, false)
                .into_iter()
                .map(|(k, v)| format!("{k}={v}")),
        );
        env.push(format!("ARTIFACTS={}/artifacts", spec::LOGS_MOUNT));
        env.push(format!("GOPATH={}", spec::CODE_MOUNT));
        env.push(format!("ENTRYPOINT_OPTIONS={entry_json}"));
        env.push(format!("{}={local_json}", entrypoint::LOCAL_OPTIONS_VAR));

        let stop_timeout = (self.grace_for(job) + STOP_MARGIN).as_secs();
        let body = ContainerCreateBody {
            image: Some(plan.image.clone()),
            entrypoint: Some(vec![spec::ENTRYPOINT_PATH.into()]),
            cmd: Some(Vec::new()),
            env: Some(env),
            working_dir: plan.working_dir.clone().or(workdir),
            user: plan.user.clone(),
            labels: Some(labels),
            stop_signal: Some("SIGTERM".into()),
            stop_timeout: i64::try_from(stop_timeout).ok(),
            attach_stdin: Some(false),
            attach_stdout: Some(false),
            attach_stderr: Some(false),
            tty: Some(false),
            host_config: Some(HostConfig {
                mounts: Some(mounts),
                network_mode: Some(if plan.host_network { "host" } else { "none" }.into()),
                memory: plan.memory,
                memory_swap: plan.memory,
                nano_cpus: plan.nano_cpus,
                ..Default::default()
            }),
            ..Default::default()
        };
        match docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(name.clone()),
                    ..Default::default()
                }),
                body,
            )
            .await
        {
            Ok(resp) => Ok(resp.id),
            // Created by a concurrent start of the same job: use that one.
            Err(e) if is_status(&e, 409) => Ok(name),
            Err(DockerError::DockerResponseServerError {
                status_code,
                message,
            }) if status_code < 500 => Err(AgentError::InvalidJob(format!(
                "docker agent: creating the container failed: {message}"
            ))),
            Err(e) => Err(self.engine_error("creating the container", e)),
        }
    }

    /// Decides the outcome, uploads everything and (by default) removes what the job left.
    async fn finish(
        &self,
        job: &ProwJob,
        files: &JobFiles,
        end: Option<ContainerEnd>,
    ) -> Result<Outcome, AgentError> {
        let (outcome, records) = decide_outcome(files);
        let oom = end.is_some_and(|e| e.oom_killed);
        let outcome = match (outcome, end) {
            // As the kubernetes agent: a job whose container was OOM-killed is an error.
            (Some(o), _)
                if oom
                    && !matches!(
                        o.state,
                        bosun_proto::ProwJobState::Success | bosun_proto::ProwJobState::Aborted
                    ) =>
            {
                Outcome::error("Job container was OOM killed by the docker engine.")
            }
            (Some(o), _) => o,
            (None, _) if oom => {
                Outcome::error("Job container was OOM killed by the docker engine.")
            }
            (
                None,
                Some(ContainerEnd {
                    exit_code: Some(code),
                    ..
                }),
            ) => Outcome::error(format!(
                "the container exited with code {code} without writing its exit code"
            )),
            (None, _) => Outcome::error("the container is gone and left no exit code"),
        };
        upload_run(
            &self.config.artifacts,
            job,
            files,
            &outcome,
            records.as_deref(),
        )
        .await
        .map_err(|e| AgentError::Unavailable(format!("uploading logs and artifacts: {e}")))?;
        if self.config.remove_after_wait
            && let Err(e) = self.cleanup(job).await
        {
            tracing::warn!(job = %job.name(), "docker agent: cleaning up after the job: {e}");
        }
        Ok(outcome)
    }

    /// The outcome a job already uploaded (its container and host directory are gone).
    async fn uploaded_outcome(&self, job: &ProwJob) -> Option<Outcome> {
        let data = self
            .config
            .artifacts
            .get(job, "finished.json")
            .await
            .ok()
            .flatten()?;
        let finished: serde_json::Value = serde_json::from_slice(&data).ok()?;
        Some(match finished.get("result").and_then(|r| r.as_str()) {
            Some("SUCCESS") => Outcome::success(),
            Some("ABORTED") => Outcome::aborted("Job aborted."),
            _ => Outcome::failure(),
        })
    }

    async fn remove_job_volumes(&self, docker: &Docker, job: &ProwJob) -> Result<(), AgentError> {
        let volumes = docker
            .list_volumes(Some(ListVolumesOptions {
                filters: Some(label_filter(job)),
            }))
            .await
            .map_err(|e| self.engine_error("listing volumes", e))?;
        for v in volumes.volumes.into_iter().flatten() {
            match docker
                .remove_volume(&v.name, Some(RemoveVolumeOptions { force: true }))
                .await
            {
                Ok(()) => {}
                Err(e) if is_status(&e, 404) => {}
                Err(e) => return Err(self.engine_error("removing a volume", e)),
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Agent for DockerAgent {
    fn name(&self) -> &str {
        bosun_proto::prowjob::agents::DOCKER
    }

    fn check(&self, job: &ProwJob) -> Result<(), AgentError> {
        check_name(job)?;
        spec::plan(job)?;
        Ok(())
    }

    async fn start(&self, job: &ProwJob) -> Result<Started, AgentError> {
        let plan = spec::plan(job)?;
        let build_id = build_id(job)?.to_owned();
        let files = self.files(job)?;
        let docker = self.docker().await?;

        let (found, stale) = self.find_all(&docker, job).await?;
        if let Some(c) = found {
            if c.state == Some(ContainerSummaryStateEnum::CREATED) {
                self.start_container(&docker, &c.id).await?;
            }
            return Ok(Started {
                workload_name: c.name,
                description: None,
            });
        }
        // An earlier build of this ProwJob left its container (same name): it goes first.
        for id in stale {
            self.remove_container(&docker, &id).await?;
        }
        let records: Option<Vec<Record>> = crate::local::read_json(&files.clone_log);
        if records.iter().flatten().any(|r| r.failed) {
            // The clone failed on an earlier call; wait reports it.
            return Ok(Started {
                workload_name: container_name(job),
                description: None,
            });
        }

        let image = match docker.inspect_image(&plan.image).await {
            Ok(i) => i,
            Err(e) if is_status(&e, 404) => {
                return Err(AgentError::InvalidJob(format!(
                    "image {} not found locally (no registry: build or load it first)",
                    plan.image
                )));
            }
            Err(e) => return Err(self.engine_error("inspecting the image", e)),
        };
        let (image_entrypoint, image_cmd) = image
            .config
            .map(|c| (c.entrypoint.unwrap_or_default(), c.cmd.unwrap_or_default()))
            .unwrap_or_default();
        let argv = spec::resolve_argv(&plan, &image_entrypoint, &image_cmd)?;
        let podutils = self.podutils()?;

        // A fresh host directory: an earlier start may have died half-way through a clone.
        match tokio::fs::remove_dir_all(&files.dir).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_unavailable("removing", &files.dir, e)),
        }
        let logs = files.dir.join("logs");
        for dir in [&files.dir, &files.src, &logs, &files.artifacts] {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| io_unavailable("creating", dir, e))?;
        }
        // Like emptyDirs: whatever user the image runs as may write its logs and artifacts.
        for dir in [&files.src, &logs, &files.artifacts] {
            set_mode(dir, 0o777);
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

        let clone = LocalAgent::clone_options(job, &files);
        let mut workdir = None;
        if let Some(opts) = clone {
            let target = opts
                .refs
                .iter()
                .find(|r| r.workdir)
                .or_else(|| opts.refs.first())
                .map(|r| clonerefs::path_for_refs(&opts.src_root, r));
            if let Some(rel) = target
                .as_deref()
                .and_then(|t| t.strip_prefix(&opts.src_root).ok())
            {
                workdir = Some(Path::new(spec::CODE_MOUNT).join(rel).display().to_string());
            }
            let records = tokio::task::spawn_blocking(move || clonerefs::run(&opts))
                .await
                .map_err(|e| AgentError::Internal(format!("docker agent: clonerefs: {e}")))?
                .map_err(|e| AgentError::Unavailable(format!("docker agent: clonerefs: {e}")))?;
            if records.iter().any(|r| r.failed) {
                return Ok(Started {
                    workload_name: container_name(job),
                    description: Some("Cloning refs failed.".into()),
                });
            }
        }

        let id = self
            .create(
                &docker, job, &plan, argv, &files, &podutils, workdir, &build_id,
            )
            .await?;
        self.start_container(&docker, &id).await?;
        Ok(Started {
            workload_name: container_name(job),
            description: None,
        })
    }

    async fn wait(&self, job: &ProwJob, progress: ProgressSender) -> Result<Outcome, AgentError> {
        let files = self.files(job)?;
        let docker = self.docker().await?;
        let Some(c) = self.find(&docker, job).await? else {
            let marker_or_clone =
                files.marker.exists() || files.clone_log.exists() || files.abort_requested.exists();
            if files.dir.is_dir() && marker_or_clone {
                return self.finish(job, &files, None).await;
            }
            if let Some(outcome) = self.uploaded_outcome(job).await {
                return Ok(outcome);
            }
            return Err(AgentError::NotFound(format!(
                "docker agent: no container labelled {}={}",
                labels::ID,
                job.name()
            )));
        };
        if c.state == Some(ContainerSummaryStateEnum::CREATED) {
            self.start_container(&docker, &c.id).await?;
        }
        let _ = progress.send(Progress::Running);

        let mut waiter = docker.wait_container(
            &c.id,
            Some(WaitContainerOptions {
                condition: "not-running".into(),
            }),
        );
        let mut end = ContainerEnd::default();
        match waiter.next().await {
            Some(Ok(r)) => end.exit_code = Some(r.status_code),
            Some(Err(DockerError::DockerContainerWaitError { code, .. })) => {
                end.exit_code = Some(code)
            }
            // Removed under us (abort removes it): the host files tell the rest.
            Some(Err(e)) if is_status(&e, 404) => {}
            Some(Err(e)) => return Err(self.engine_error("waiting for the container", e)),
            None => {
                return Err(AgentError::Unavailable(
                    "docker engine: the wait stream ended without a result".into(),
                ));
            }
        }
        if let Ok(info) = docker.inspect_container(&c.id, None).await
            && let Some(state) = info.state
        {
            end.oom_killed = state.oom_killed.unwrap_or(false);
            end.exit_code = state.exit_code.or(end.exit_code);
        }
        self.finish(job, &files, Some(end)).await
    }

    async fn abort(&self, job: &ProwJob) -> Result<(), AgentError> {
        let files = self.files(job)?;
        let docker = self.docker().await?;
        let Some(c) = self.find(&docker, job).await? else {
            return Ok(());
        };
        if files.dir.is_dir() && !files.marker.exists() {
            let _ = std::fs::write(&files.abort_requested, b"");
        }
        let grace = self.grace_for(job) + STOP_MARGIN;
        let t = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
        // docker stop: SIGTERM (the entrypoint interrupts the test and gives it the grace
        // period), SIGKILL after `t`; then remove. In the background, so the caller's wait
        // keeps running and sees the container stop.
        tokio::spawn(async move {
            let stop = docker
                .stop_container(
                    &c.id,
                    Some(StopContainerOptions {
                        t: Some(t),
                        signal: None,
                    }),
                )
                .await;
            if let Err(e) = stop
                && !is_status(&e, 304)
                && !is_status(&e, 404)
            {
                tracing::warn!(container = %c.id, "docker agent: stopping the container: {e}");
            }
            let _ = docker
                .remove_container(
                    &c.id,
                    Some(RemoveContainerOptions {
                        force: true,
                        v: true,
                        ..Default::default()
                    }),
                )
                .await;
        });
        Ok(())
    }

    async fn logs(&self, job: &ProwJob, follow: bool) -> Result<LogStream, AgentError> {
        let files = self.files(job)?;
        let docker = self.docker().await?;
        if let Some(c) = self.find(&docker, job).await? {
            let stream = docker
                .logs(
                    &c.id,
                    Some(LogsOptions {
                        follow,
                        stdout: true,
                        stderr: true,
                        ..Default::default()
                    }),
                )
                .map(|item| match item {
                    Ok(out) => Ok(out.into_bytes()),
                    Err(e) => Err(AgentError::Unavailable(format!("docker engine: logs: {e}"))),
                });
            return Ok(Box::pin(stream));
        }
        // No container (clone failure, or the job is finishing): the files it left.
        let data = match tokio::fs::read(&files.process_log).await {
            Ok(d) => Some(Bytes::from(d)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_unavailable("reading", &files.process_log, e)),
        };
        let data = match data {
            Some(d) => d,
            None => match self.config.artifacts.get(job, "build-log.txt").await {
                Ok(Some(d)) => d,
                _ if files.dir.is_dir() => Bytes::new(),
                _ => {
                    return Err(AgentError::NotFound(format!(
                        "docker agent: no container labelled {}={}",
                        labels::ID,
                        job.name()
                    )));
                }
            },
        };
        Ok(Box::pin(futures::stream::once(async move { Ok(data) })))
    }

    async fn cleanup(&self, job: &ProwJob) -> Result<(), AgentError> {
        let files = self.files(job)?;
        let docker = self.docker().await?;
        let list = docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(label_filter(job)),
                ..Default::default()
            }))
            .await
            .map_err(|e| self.engine_error("listing containers", e))?;
        for id in list.into_iter().filter_map(|c| c.id) {
            self.remove_container(&docker, &id).await?;
        }
        self.remove_job_volumes(&docker, job).await?;
        match tokio::fs::remove_dir_all(&files.dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_unavailable("removing", &files.dir, e)),
        }
    }
}
