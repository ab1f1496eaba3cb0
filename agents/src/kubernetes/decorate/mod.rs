//! ProwJob → decorated Pod, as Prow's `pkg/pod-utils/decorate` does (reference agents §2,
//! §1.6, §1.9).
//!
//! Entry points:
//! - [`prowjob_to_pod`] = Go `ProwJobToPod(pj)`: the pod plank creates for a job, build id
//!   from `status.build_id`;
//! - [`prowjob_to_pod_local`] = Go `ProwJobToPodLocal(pj, outputDir)`: `cmd/mkpod`'s local
//!   mode (a hostPath `output` volume instead of blob-storage credentials);
//! - [`prowjob_to_pod_with`]: either of the above plus [`DecorateOptions`] (extra pod labels
//!   such as `prow.k8s.io/plank-version`);
//! - [`decorate`], [`sidecar`], [`clone_refs`], [`init_upload`], [`place_entrypoint`],
//!   [`blob_storage_options`], [`labels_and_annotations_for_job`], [`downward_env`],
//!   [`kube_env`]: the Go helpers of the same names, for callers that build pods themselves.
//!
//! The output matches Prow's golden files (`../shared/conformance/prow-decorate`, checked by
//! `conformance/tests/decorate.rs`), including the JSON option blobs in the environment, which
//! are byte-for-byte what Go's `encoding/json` writes (see [`options`]).
//!
//! Where Go would panic on a malformed job (no pod spec, no utility images, a presubmit without
//! refs or pulls), these functions return a [`DecorateError`] instead.

mod gojson;
pub mod options;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bosun_proto::labels;
use bosun_proto::prowjob::{DecorationConfig, ProwJob, ProwJobType, Refs, agents};
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, EnvVar, HostPathVolumeSource, KeyToPath, Pod,
    PodSecurityContext, PodSpec, SecretVolumeSource, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use self::options::{
    CensoringOptions, CloneRefsOptions, EntrypointOptions, GcsUploadOptions, InitUploadOptions,
    SidecarOptions, WrapperOptions,
};

/// Name of the `emptyDir` volume holding logs, markers and artifacts.
pub const LOG_MOUNT_NAME: &str = "logs";
/// Where the log volume is mounted.
pub const LOG_MOUNT_PATH: &str = "/logs";
/// `$ARTIFACTS` in decorated test containers.
pub const ARTIFACTS_ENV: &str = "ARTIFACTS";
/// The artifact directory (`/logs/artifacts`).
pub const ARTIFACTS_PATH: &str = "/logs/artifacts";
/// Name of the `emptyDir` volume holding the cloned code.
pub const CODE_MOUNT_NAME: &str = "code";
/// Where the code volume is mounted (also `$GOPATH`).
pub const CODE_MOUNT_PATH: &str = "/home/prow/go";
/// `$GOPATH` in decorated test containers.
pub const GOPATH_ENV: &str = "GOPATH";
/// Name of the `emptyDir` volume the entrypoint binary is copied into.
pub const TOOLS_MOUNT_NAME: &str = "tools";
/// Where the tools volume is mounted.
pub const TOOLS_MOUNT_PATH: &str = "/tools";
/// Name of the GCS credentials secret volume.
pub const GCS_CREDENTIALS_MOUNT_NAME: &str = "gcs-credentials";
/// Where the GCS credentials are mounted.
pub const GCS_CREDENTIALS_MOUNT_PATH: &str = "/secrets/gcs";
/// Name of the S3 credentials secret volume.
pub const S3_CREDENTIALS_MOUNT_NAME: &str = "s3-credentials";
/// Where the S3 credentials are mounted.
pub const S3_CREDENTIALS_MOUNT_PATH: &str = "/secrets/s3-storage";
/// Name of the local-mode hostPath volume.
pub const OUTPUT_MOUNT_NAME: &str = "output";
/// Where the local-mode output directory is mounted.
pub const OUTPUT_MOUNT_PATH: &str = "/output";

/// The name a job's only container gets.
pub const TEST_CONTAINER_NAME: &str = "test";
/// The clone init container.
pub const CLONEREFS_NAME: &str = "clonerefs";
/// The upload init container.
pub const INITUPLOAD_NAME: &str = "initupload";
/// The init container that copies the entrypoint binary into the tools volume.
pub const ENTRYPOINT_NAME: &str = "place-entrypoint";
/// The upload sidecar container.
pub const SIDECAR_NAME: &str = "sidecar";
/// Container names decoration reserves.
pub const POD_UTILS_CONTAINER_NAMES: [&str; 4] = [
    CLONEREFS_NAME,
    INITUPLOAD_NAME,
    ENTRYPOINT_NAME,
    SIDECAR_NAME,
];

/// `clonerefs.DefaultGitUserName`.
pub const DEFAULT_GIT_USER_NAME: &str = "ci-robot";
/// `clonerefs.DefaultGitUserEmail`.
pub const DEFAULT_GIT_USER_EMAIL: &str = "ci-robot@k8s.io";
/// `github.DefaultAPIEndpoint`, used when `github_api_endpoints` is empty.
pub const DEFAULT_GITHUB_API_ENDPOINT: &str = "https://api.github.com";

/// `JOB_SPEC`, the downward API's full job description.
pub const JOB_SPEC_ENV: &str = "JOB_SPEC";
/// clonerefs' options variable.
pub const CLONEREFS_OPTIONS_ENV: &str = "CLONEREFS_OPTIONS";
/// initupload's options variable.
pub const INITUPLOAD_OPTIONS_ENV: &str = "INITUPLOAD_OPTIONS";
/// entrypoint's options variable.
pub const ENTRYPOINT_OPTIONS_ENV: &str = "ENTRYPOINT_OPTIONS";
/// sidecar's options variable.
pub const SIDECAR_OPTIONS_ENV: &str = "SIDECAR_OPTIONS";

/// `RequirePassingEntries`: decoration passes its negation, so the sidecar exits 0 even
/// when the test failed.
pub const REQUIRE_PASSING_ENTRIES: bool = true;

const TERMINATION_MESSAGE_FALLBACK: &str = "FallbackToLogsOnError";
const SECRET_MODE_0400: i32 = 0o400;

/// Why a pod could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DecorateError {
    /// `spec.pod_spec` is missing (Go: `prowjob %q lacks a pod spec`).
    #[error("prowjob {name:?} lacks a pod spec")]
    MissingPodSpec {
        /// The ProwJob name.
        name: String,
    },
    /// [`decorate`] was called for a job without `decoration_config`.
    #[error("prowjob has no decoration_config to decorate with")]
    NotDecorated,
    /// `decoration_config.utility_images` is missing.
    #[error("decoration_config.utility_images is not set")]
    MissingUtilityImages,
    /// A presubmit, postsubmit or batch job without `refs` (Go would crash).
    #[error("a {job_type} job needs spec.refs for the downward API")]
    MissingRefs {
        /// The job's type.
        job_type: ProwJobType,
    },
    /// A presubmit whose refs have no pull (Go would crash).
    #[error("a presubmit job needs at least one pull in spec.refs.pulls")]
    MissingPull,
    /// A volume mount handed to a helper lacks its name or path.
    #[error("{which} mount must set name and mount path")]
    IncompleteMount {
        /// `code` or `log`.
        which: &'static str,
    },
    /// An option blob could not be encoded.
    #[error("encoding {what}: {source}")]
    Encode {
        /// What was being encoded, e.g. `SIDECAR_OPTIONS`.
        what: &'static str,
        /// The serialiser's error.
        #[source]
        source: serde_json::Error,
    },
}

/// Inputs Go's `ProwJobToPod*` takes besides the ProwJob.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecorateOptions {
    /// `ProwJobToPodLocal`'s `outputDir`. Empty (the default) uploads to blob storage; set,
    /// the pod gets a hostPath `output` volume at `/output` and the utilities copy there
    /// instead (`local_output_dir`), without blob-storage credentials.
    pub output_dir: String,
    /// Pod labels set after Prow's own, overriding them: plank adds
    /// `prow.k8s.io/plank-version`. Empty by default.
    pub extra_labels: BTreeMap<String, String>,
}

/// Go `json.Marshal` of any of the [`options`] structs: the exact env value Prow writes.
pub fn encode<T: Serialize + ?Sized>(
    value: &T,
    what: &'static str,
) -> Result<String, DecorateError> {
    gojson::encode(value).map_err(|source| DecorateError::Encode { what, source })
}

/// Go `ProwJobToPod(pj)`: the pod for a job, uploading to blob storage. The build id comes
/// from `status.build_id`.
pub fn prowjob_to_pod(job: &ProwJob) -> Result<Pod, DecorateError> {
    prowjob_to_pod_with(job, &DecorateOptions::default())
}

/// Go `ProwJobToPodLocal(pj, outputDir)`: like [`prowjob_to_pod`], but with a non-empty
/// `output_dir` the utilities write to that host directory instead of uploading.
pub fn prowjob_to_pod_local(job: &ProwJob, output_dir: &str) -> Result<Pod, DecorateError> {
    prowjob_to_pod_with(
        job,
        &DecorateOptions {
            output_dir: output_dir.to_owned(),
            ..DecorateOptions::default()
        },
    )
}

/// [`prowjob_to_pod_local`] with every option of [`DecorateOptions`].
pub fn prowjob_to_pod_with(job: &ProwJob, opts: &DecorateOptions) -> Result<Pod, DecorateError> {
    let Some(pod_spec) = job.spec.pod_spec.as_ref() else {
        return Err(DecorateError::MissingPodSpec {
            name: job.name().to_owned(),
        });
    };
    let raw_env = downward_env(job)?;

    let mut spec = pod_spec.clone();
    spec.restart_policy = Some("Never".to_owned());
    if let [only] = spec.containers.as_mut_slice() {
        only.name = TEST_CONTAINER_NAME.to_owned();
    }
    // Unset means "mount the token" to Kubernetes; Prow means "don't" unless the job names a
    // service account.
    if spec.automount_service_account_token.is_none() && is_empty(&spec.service_account_name) {
        spec.automount_service_account_token = Some(false);
    }

    if job.spec.decoration_config.is_none() {
        let env = kube_env(&raw_env);
        for container in &mut spec.containers {
            append(&mut container.env, env.iter().cloned());
        }
    } else {
        decorate(&mut spec, job, &raw_env, &opts.output_dir)?;
    }

    // A snippet of the log in the pod status helps when pods are cleaned up or evicted.
    for container in spec
        .init_containers
        .iter_mut()
        .flatten()
        .chain(spec.containers.iter_mut())
    {
        if is_empty(&container.termination_message_policy) {
            container.termination_message_policy = Some(TERMINATION_MESSAGE_FALLBACK.to_owned());
        }
    }

    let (mut pod_labels, annotations) = labels_and_annotations_for_job(job);
    pod_labels.extend(
        opts.extra_labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    Ok(Pod {
        metadata: ObjectMeta {
            name: Some(job.name().to_owned()).filter(|n| !n.is_empty()),
            labels: Some(pod_labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    })
}

/// Go `LabelsAndAnnotationsForJob`: Prow's labels and annotations for the job's pod. The
/// ProwJob's own labels and annotations override the automatic ones, plus `prow.k8s.io/id`
/// (the ProwJob name) and `prow.k8s.io/build-id` (`status.build_id`).
pub fn labels_and_annotations_for_job(
    job: &ProwJob,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut extra_labels = job.metadata.labels.clone().unwrap_or_default();
    let extra_annotations = job.metadata.annotations.clone().unwrap_or_default();
    extra_labels.insert(labels::ID.to_owned(), job.name().to_owned());
    extra_labels.insert(labels::BUILD_ID.to_owned(), build_id(job).to_owned());
    labels::labels_and_annotations_for_spec(&job.spec, &extra_labels, &extra_annotations)
}

fn build_id(job: &ProwJob) -> &str {
    job.status.as_ref().map_or("", |s| s.build_id.as_str())
}

/// Go `downwardapi.EnvForSpec(NewJobSpec(pj.Spec, pj.Status.BuildID, pj.Name))`: the
/// downward-API variables (`CI`, `JOB_NAME`, `JOB_SPEC`, `BUILD_ID`, `REPO_OWNER`,
/// `PULL_NUMBER`, …) for the job, by name.
pub fn downward_env(job: &ProwJob) -> Result<BTreeMap<String, String>, DecorateError> {
    let spec = &job.spec;
    let build_id = build_id(job);
    let mut env = BTreeMap::new();
    let mut set = |k: &str, v: &str| {
        env.insert(k.to_owned(), v.to_owned());
    };
    set("CI", "true");
    set("JOB_NAME", &spec.job);
    set("BUILD_ID", build_id);
    set("PROW_JOB_ID", job.name());
    set("JOB_TYPE", spec.r#type.as_str());
    // Deprecated; only Prow's own agent gets it.
    if spec.agent == agents::KUBERNETES {
        set("BUILD_NUMBER", build_id);
    }
    set(JOB_SPEC_ENV, &job_spec_json(job, build_id)?);
    if spec.r#type == ProwJobType::Periodic {
        return Ok(env);
    }

    let refs = spec.refs.as_ref().ok_or(DecorateError::MissingRefs {
        job_type: spec.r#type,
    })?;
    set("REPO_OWNER", &refs.org);
    set("REPO_NAME", &refs.repo);
    let (host, base) = src_host_and_base(refs);
    set("SRC_HOST", &host);
    set("SRC_BASE", &base);
    set("PULL_BASE_REF", &refs.base_ref);
    set("PULL_BASE_SHA", &refs.base_sha);
    set("PULL_REFS", &refs.to_refs_string());
    if matches!(spec.r#type, ProwJobType::Postsubmit | ProwJobType::Batch) {
        return Ok(env);
    }

    let pull = refs.pulls.first().ok_or(DecorateError::MissingPull)?;
    set("PULL_NUMBER", &pull.number.to_string());
    set("PULL_PULL_SHA", &pull.sha);
    set("PULL_HEAD_REF", &pull.head_ref);
    set("PULL_TITLE", &pull.title);
    Ok(env)
}

/// `SRC_HOST` and `SRC_BASE`: from `path_alias` (`host/base`), else from `repo_link` without
/// its scheme, else `github.com` and `org/repo`.
fn src_host_and_base(refs: &Refs) -> (String, String) {
    let source = if !refs.path_alias.is_empty() {
        refs.path_alias.as_str()
    } else if !refs.repo_link.is_empty() {
        refs.repo_link.rsplit("://").next().unwrap_or_default()
    } else {
        return (
            "github.com".to_owned(),
            format!("{}/{}", refs.org, refs.repo),
        );
    };
    match source.split_once('/') {
        Some((host, base)) => (host.to_owned(), base.to_owned()),
        None => (source.to_owned(), format!("{}/{}", refs.org, refs.repo)),
    }
}

/// Go `downwardapi.JobSpec`, the `JOB_SPEC` value.
#[derive(Serialize)]
struct GoJobSpec<'a> {
    #[serde(rename = "type", skip_serializing_if = "str::is_empty")]
    r#type: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    job: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    buildid: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    prowjobid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    refs: Option<&'a Refs>,
    #[serde(skip_serializing_if = "<[Refs]>::is_empty")]
    extra_refs: &'a [Refs],
    #[serde(skip_serializing_if = "Option::is_none")]
    decoration_config: Option<gojson::Shaped<'a>>,
}

/// The `JOB_SPEC` JSON of a job with the given build id, byte for byte as Prow writes it.
pub fn job_spec_json(job: &ProwJob, build_id: &str) -> Result<String, DecorateError> {
    let encode_err = |source| DecorateError::Encode {
        what: JOB_SPEC_ENV,
        source,
    };
    let decoration_config = job
        .spec
        .decoration_config
        .as_ref()
        .map(serde_json::to_value)
        .transpose()
        .map_err(encode_err)?;
    let spec = GoJobSpec {
        r#type: job.spec.r#type.as_str(),
        job: &job.spec.job,
        buildid: build_id,
        prowjobid: job.name(),
        refs: job.spec.refs.as_ref(),
        extra_refs: &job.spec.extra_refs,
        decoration_config: decoration_config
            .as_ref()
            .map(|v| gojson::Shaped(v, &gojson::DECORATION_CONFIG)),
    };
    gojson::encode(&spec).map_err(encode_err)
}

/// Go `KubeEnv`: env vars sorted by name (byte order). An empty value is left unset, as Go
/// writes it.
pub fn kube_env(env: &BTreeMap<String, String>) -> Vec<EnvVar> {
    env.iter()
        .map(|(name, value)| EnvVar {
            name: name.clone(),
            value: Some(value.clone()).filter(|v| !v.is_empty()),
            value_from: None,
        })
        .collect()
}

fn kube_env_of(pairs: &[(&str, &str)]) -> Vec<EnvVar> {
    kube_env(
        &pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

/// Go `append(list, items...)` on an optional list: stays unset when nothing is added.
fn append<T>(list: &mut Option<Vec<T>>, items: impl IntoIterator<Item = T>) {
    let mut items = items.into_iter().peekable();
    if items.peek().is_some() {
        list.get_or_insert_with(Vec::new).extend(items);
    }
}

fn is_empty(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(str::is_empty)
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    Some(v).filter(|v| !v.is_empty())
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

fn empty_dir_volume(name: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

fn secret_volume(
    name: &str,
    secret: &str,
    default_mode: Option<i32>,
    items: Option<Vec<KeyToPath>>,
) -> Volume {
    Volume {
        name: name.to_owned(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.to_owned()),
            default_mode,
            items,
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// Go `LogMountAndVolume`.
pub fn log_mount_and_volume() -> (VolumeMount, Volume) {
    (
        mount(LOG_MOUNT_NAME, LOG_MOUNT_PATH, false),
        empty_dir_volume(LOG_MOUNT_NAME),
    )
}

/// Go `CodeMountAndVolume`.
pub fn code_mount_and_volume() -> (VolumeMount, Volume) {
    (
        mount(CODE_MOUNT_NAME, CODE_MOUNT_PATH, false),
        empty_dir_volume(CODE_MOUNT_NAME),
    )
}

/// Go `ToolsMountAndVolume`.
pub fn tools_mount_and_volume() -> (VolumeMount, Volume) {
    (
        mount(TOOLS_MOUNT_NAME, TOOLS_MOUNT_PATH, false),
        empty_dir_volume(TOOLS_MOUNT_NAME),
    )
}

/// Go `path.Join`: joins the non-empty parts with `/` and cleans the result.
fn path_join(parts: &[&str]) -> String {
    let joined = parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/");
    if joined.is_empty() {
        return String::new();
    }
    let rooted = joined.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for segment in joined.split('/') {
        match segment {
            "" | "." => {}
            ".." => match out.last() {
                Some(&last) if last != ".." => {
                    out.pop();
                }
                _ if rooted => {}
                _ => out.push(".."),
            },
            s => out.push(s),
        }
    }
    let body = out.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".to_owned(),
        (false, false) => body,
    }
}

/// Go `clone.PathForRefs`: where a ref is cloned under `base_dir`.
pub fn path_for_refs(base_dir: &str, refs: &Refs) -> String {
    let clone_path = if !refs.path_alias.is_empty() {
        refs.path_alias.clone()
    } else if !refs.repo_link.is_empty() {
        refs.repo_link
            .rsplit("://")
            .next()
            .unwrap_or_default()
            .to_owned()
    } else {
        format!("github.com/{}/{}", refs.org, refs.repo)
    };
    path_join(&[base_dir, "src", &clone_path])
}

/// Go `DetermineWorkDir`: the clone of the first ref marked `workdir`, else of the first ref.
pub fn determine_work_dir(base_dir: &str, refs: &[Refs]) -> Option<String> {
    refs.iter()
        .find(|r| r.workdir)
        .or_else(|| refs.first())
        .map(|r| path_for_refs(base_dir, r))
}

/// The volumes, mounts and upload options for blob storage ([`blob_storage_options`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BlobStorage {
    /// Credential secret volumes.
    pub volumes: Vec<Volume>,
    /// Their mounts, for initupload and the sidecar.
    pub mounts: Vec<VolumeMount>,
    /// Upload options (the sidecar adds the artifact directory to `items`).
    pub options: GcsUploadOptions,
}

/// Go `BlobStorageOptions`: the upload options from `gcs_configuration`, plus the GCS and S3
/// credential secrets. In local mode the utilities copy to `/output` and need no credentials.
pub fn blob_storage_options(config: &DecorationConfig, local_mode: bool) -> BlobStorage {
    let mut options = GcsUploadOptions {
        gcs_configuration: config.gcs_configuration.clone(),
        dry_run: false,
        ..GcsUploadOptions::default()
    };
    if local_mode {
        options
            .gcs_configuration
            .get_or_insert_with(Default::default)
            .local_output_dir = OUTPUT_MOUNT_PATH.to_owned();
        return BlobStorage {
            options,
            ..BlobStorage::default()
        };
    }
    let mut storage = BlobStorage::default();
    let credentials = [
        (
            config.gcs_credentials_secret.as_deref(),
            GCS_CREDENTIALS_MOUNT_NAME,
            GCS_CREDENTIALS_MOUNT_PATH,
        ),
        (
            config.s3_credentials_secret.as_deref(),
            S3_CREDENTIALS_MOUNT_NAME,
            S3_CREDENTIALS_MOUNT_PATH,
        ),
    ];
    for (secret, name, path) in credentials {
        let Some(secret) = secret.filter(|s| !s.is_empty()) else {
            continue;
        };
        storage
            .volumes
            .push(secret_volume(name, secret, None, None));
        storage.mounts.push(mount(name, path, false));
        let file = format!("{path}/service-account.json");
        if name == GCS_CREDENTIALS_MOUNT_NAME {
            options.gcs_credentials_file = file;
        } else {
            options.s3_credentials_file = file;
        }
    }
    storage.options = options;
    storage
}

/// What [`clone_refs`] adds to a pod.
#[derive(Debug, Clone, PartialEq)]
pub struct CloneRefsPlan {
    /// The `clonerefs` init container.
    pub container: Container,
    /// The refs it clones: refs, then extra refs.
    pub refs: Vec<Refs>,
    /// Its secret and scratch volumes (ssh keys, OAuth, GitHub App, `clonerefs-tmp`,
    /// cookiefile), in pod order.
    pub volumes: Vec<Volume>,
}

/// Go `CloneRefs`: the `clonerefs` init container and its volumes, or `None` when the job is
/// not decorated, skips cloning or has no refs.
pub fn clone_refs(
    job: &ProwJob,
    code_mount: &VolumeMount,
    log_mount: &VolumeMount,
) -> Result<Option<CloneRefsPlan>, DecorateError> {
    let Some(config) = job.spec.decoration_config.as_ref() else {
        return Ok(None);
    };
    if config.skip_cloning == Some(true) {
        return Ok(None);
    }
    let refs: Vec<Refs> = job
        .spec
        .refs
        .iter()
        .chain(job.spec.extra_refs.iter())
        .cloned()
        .collect();
    if refs.is_empty() {
        return Ok(None);
    }
    if code_mount.name.is_empty() || code_mount.mount_path.is_empty() {
        return Err(DecorateError::IncompleteMount { which: "code" });
    }
    if log_mount.name.is_empty() || log_mount.mount_path.is_empty() {
        return Err(DecorateError::IncompleteMount { which: "log" });
    }
    let images = config
        .utility_images
        .as_ref()
        .ok_or(DecorateError::MissingUtilityImages)?;

    let mut mounts = Vec::new();
    let mut volumes = Vec::new();
    let mut key_files = Vec::new();
    for secret in &config.ssh_key_secrets {
        let name = format!("ssh-keys-{secret}");
        let path = path_join(&["/secrets/ssh", secret]);
        volumes.push(secret_volume(&name, secret, Some(SECRET_MODE_0400), None));
        mounts.push(mount(&name, &path, true));
        key_files.push(path);
    }

    let mut oauth_token_file = String::new();
    if let Some(oauth) = &config.oauth_token_secret {
        let (volume, volume_mount) = key_volume(&oauth.name, &oauth.key, "/secrets/oauth");
        oauth_token_file = path_join(&[&volume_mount.mount_path, &oauth.key]);
        mounts.push(volume_mount);
        volumes.push(volume);
    }

    let github_api_endpoints = if config.github_api_endpoints.is_empty() {
        vec![DEFAULT_GITHUB_API_ENDPOINT.to_owned()]
    } else {
        config.github_api_endpoints.clone()
    };

    let mut github_app_private_key_file = String::new();
    if let Some(app) = &config.github_app_private_key_secret {
        let (volume, volume_mount) = key_volume(&app.name, &app.key, "/secrets/github-app");
        github_app_private_key_file = path_join(&[&volume_mount.mount_path, &app.key]);
        mounts.push(volume_mount);
        volumes.push(volume);
    }

    // Scratch space for known_hosts.
    mounts.push(mount("clonerefs-tmp", "/tmp", false));
    volumes.push(empty_dir_volume("clonerefs-tmp"));

    let mut args = Vec::new();
    let mut cookie_path = String::new();
    if let Some(cookie) = config
        .cookiefile_secret
        .as_deref()
        .filter(|c| !c.is_empty())
    {
        // `name[/key]`; the key defaults to the secret name.
        let (secret, key) = cookie.split_once('/').unwrap_or((cookie, cookie));
        let mount_path = "/secrets/cookiefile";
        volumes.push(secret_volume(
            "cookiefile",
            secret,
            Some(SECRET_MODE_0400),
            None,
        ));
        mounts.push(mount("cookiefile", mount_path, true));
        cookie_path = path_join(&[mount_path, key]);
        args.push(format!("--cookiefile={cookie_path}"));
    }

    let options = CloneRefsOptions {
        src_root: code_mount.mount_path.clone(),
        log: clone_log_path(log_mount),
        git_user_name: DEFAULT_GIT_USER_NAME.to_owned(),
        git_user_email: DEFAULT_GIT_USER_EMAIL.to_owned(),
        refs: refs.clone(),
        key_files,
        oauth_token_file,
        host_fingerprints: config.ssh_host_fingerprints.clone(),
        cookie_path,
        github_api_endpoints,
        github_app_id: config.github_app_id.clone().unwrap_or_default(),
        github_app_private_key_file,
        ..CloneRefsOptions::default()
    };
    let env = kube_env_of(&[(
        CLONEREFS_OPTIONS_ENV,
        &encode(&options, CLONEREFS_OPTIONS_ENV)?,
    )]);

    let container = Container {
        name: CLONEREFS_NAME.to_owned(),
        image: Some(images.clonerefs.clone()),
        args: non_empty(args),
        env: Some(env),
        volume_mounts: Some(
            [log_mount.clone(), code_mount.clone()]
                .into_iter()
                .chain(mounts)
                .collect(),
        ),
        resources: config.resources.as_ref().and_then(|r| r.clonerefs.clone()),
        ..Container::default()
    };
    Ok(Some(CloneRefsPlan {
        container,
        refs,
        volumes,
    }))
}

/// A secret volume exposing one key as `./<key>`, mounted read-only (OAuth token, GitHub App
/// key).
fn key_volume(secret: &str, key: &str, mount_path: &str) -> (Volume, VolumeMount) {
    let items = vec![KeyToPath {
        key: key.to_owned(),
        path: format!("./{key}"),
        ..KeyToPath::default()
    }];
    (
        secret_volume(secret, secret, None, Some(items)),
        mount(secret, mount_path, true),
    )
}

/// Go `CloneLogPath`: `clone.json` in the log mount.
pub fn clone_log_path(log_mount: &VolumeMount) -> String {
    path_join(&[&log_mount.mount_path, "clone.json"])
}

fn artifacts_dir(log: &VolumeMount) -> String {
    path_join(&[&log.mount_path, "artifacts"])
}

/// Go `InjectEntrypoint` with decoration's constants (no previous marker, no
/// propagate-error-code, no always-zero): runs the container's command through
/// `/tools/entrypoint` and returns its wrapper options.
fn inject_entrypoint(
    container: &mut Container,
    timeout: Duration,
    grace_period: Duration,
    prefix: &str,
    log: &VolumeMount,
    tools: &VolumeMount,
) -> Result<WrapperOptions, DecorateError> {
    let (process_log, marker_file, metadata_file) = if prefix.is_empty() {
        (
            path_join(&[&log.mount_path, "process-log.txt"]),
            path_join(&[&log.mount_path, "marker-file.txt"]),
            path_join(&[&artifacts_dir(log), "metadata.json"]),
        )
    } else {
        (
            path_join(&[&log.mount_path, &format!("{prefix}-log.txt")]),
            path_join(&[&log.mount_path, &format!("{prefix}-marker.txt")]),
            path_join(&[&artifacts_dir(log), &format!("{prefix}-metadata.json")]),
        )
    };
    // Go `append(c.Command, c.Args...)`: nil only when there is nothing at all.
    let args = match (container.command.take(), container.args.take()) {
        (None, None) => None,
        (None, Some(args)) if args.is_empty() => None,
        (command, args) => Some(command.into_iter().chain(args).flatten().collect()),
    };
    let wrapper = WrapperOptions {
        args,
        container_name: container.name.clone(),
        process_log,
        marker_file,
        metadata_file,
    };
    let options = EntrypointOptions {
        timeout: nanos(timeout),
        grace_period: nanos(grace_period),
        artifact_dir: artifacts_dir(log),
        wrapper: wrapper.clone(),
        ..EntrypointOptions::default()
    };
    let encoded = encode(&options, ENTRYPOINT_OPTIONS_ENV)?;

    container.command = Some(vec![path_join(&[&tools.mount_path, "entrypoint"])]);
    container.args = None;
    append(
        &mut container.env,
        kube_env_of(&[(ENTRYPOINT_OPTIONS_ENV, &encoded)]),
    );
    append(&mut container.volume_mounts, [log.clone(), tools.clone()]);
    Ok(wrapper)
}

/// A Go `time.Duration` (int64 nanoseconds).
fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Go `PlaceEntrypoint`: the init container that copies the entrypoint binary into the tools
/// volume.
pub fn place_entrypoint(
    config: &DecorationConfig,
    tools_mount: &VolumeMount,
) -> Result<Container, DecorateError> {
    let images = config
        .utility_images
        .as_ref()
        .ok_or(DecorateError::MissingUtilityImages)?;
    Ok(Container {
        name: ENTRYPOINT_NAME.to_owned(),
        image: Some(images.entrypoint.clone()),
        args: Some(vec!["--copy-mode-only".to_owned()]),
        volume_mounts: Some(vec![tools_mount.clone()]),
        resources: config
            .resources
            .as_ref()
            .and_then(|r| r.place_entrypoint.clone()),
        ..Container::default()
    })
}

/// Go `InitUpload`: the init container that uploads `started.json` and the clone records.
/// `clone_log_mount` is set when clonerefs runs.
pub fn init_upload(
    config: &DecorationConfig,
    gcs_options: &GcsUploadOptions,
    blob_storage_mounts: &[VolumeMount],
    clone_log_mount: Option<&VolumeMount>,
    output_mount: Option<&VolumeMount>,
    encoded_job_spec: &str,
) -> Result<Container, DecorateError> {
    let images = config
        .utility_images
        .as_ref()
        .ok_or(DecorateError::MissingUtilityImages)?;
    let mut options = InitUploadOptions {
        options: gcs_options.clone(),
        log: String::new(),
    };
    let mut mounts = Vec::new();
    if let Some(clone_log) = clone_log_mount {
        options.log = clone_log_path(clone_log);
        mounts.push(clone_log.clone());
    }
    mounts.extend(blob_storage_mounts.iter().cloned());
    mounts.extend(output_mount.cloned());
    let encoded = encode(&options, INITUPLOAD_OPTIONS_ENV)?;
    Ok(Container {
        name: INITUPLOAD_NAME.to_owned(),
        image: Some(images.initupload.clone()),
        env: Some(kube_env_of(&[
            (JOB_SPEC_ENV, encoded_job_spec),
            (INITUPLOAD_OPTIONS_ENV, &encoded),
        ])),
        volume_mounts: non_empty(mounts),
        resources: config.resources.as_ref().and_then(|r| r.initupload.clone()),
        ..Container::default()
    })
}

/// The inputs of Go's `Sidecar(config, gcsOptions, blobStorageMounts, logMount, outputMount,
/// encodedJobSpec, requirePassingEntries, ignoreInterrupts, secretVolumeMounts, wrappers...)`.
#[derive(Debug, Clone, Copy)]
pub struct SidecarArgs<'a> {
    /// The job's decoration config (images, resources, censoring options).
    pub config: &'a DecorationConfig,
    /// Upload options; the artifact directory is appended to `items`.
    pub gcs_options: &'a GcsUploadOptions,
    /// Blob-storage credential mounts.
    pub blob_storage_mounts: &'a [VolumeMount],
    /// The log volume mount.
    pub log_mount: &'a VolumeMount,
    /// Local mode's output mount.
    pub output_mount: Option<&'a VolumeMount>,
    /// The `JOB_SPEC` value.
    pub encoded_job_spec: &'a str,
    /// Exit non-zero when a test failed (decoration passes `false`).
    pub require_passing_entries: bool,
    /// Ignore interrupts until the tests end.
    pub ignore_interrupts: bool,
    /// Secret mounts of the test containers, censored from logs and artifacts.
    pub secret_volume_mounts: &'a [VolumeMount],
    /// One per wrapped test container.
    pub wrappers: &'a [WrapperOptions],
}

/// Go `Sidecar`: the container that waits for the test containers and uploads their logs
/// and artifacts.
pub fn sidecar(args: &SidecarArgs<'_>) -> Result<Container, DecorateError> {
    let images = args
        .config
        .utility_images
        .as_ref()
        .ok_or(DecorateError::MissingUtilityImages)?;
    let mut gcs_options = args.gcs_options.clone();
    gcs_options.items.push(artifacts_dir(args.log_mount));
    let mut censoring = CensoringOptions {
        secret_directories: args
            .secret_volume_mounts
            .iter()
            .map(|m| m.mount_path.clone())
            .collect(),
        ..CensoringOptions::default()
    };
    if let Some(c) = &args.config.censoring_options {
        censoring.censoring_concurrency = c.censoring_concurrency;
        censoring.censoring_buffer_size = c.censoring_buffer_size;
        censoring.include_directories = c.include_directories.clone();
        censoring.exclude_directories = c.exclude_directories.clone();
        censoring.minimum_secret_length = c.minimum_secret_length;
    }
    let options = SidecarOptions {
        gcs_options,
        entries: args.wrappers.to_vec(),
        entry_error: args.require_passing_entries,
        ignore_interrupts: args.ignore_interrupts,
        censoring_options: Some(censoring),
        ..SidecarOptions::default()
    };
    let encoded = encode(&options, SIDECAR_OPTIONS_ENV)?;

    let mounts: Vec<VolumeMount> = std::iter::once(args.log_mount)
        .chain(args.blob_storage_mounts)
        .chain(args.secret_volume_mounts)
        .chain(args.output_mount)
        .cloned()
        .collect();
    Ok(Container {
        name: SIDECAR_NAME.to_owned(),
        image: Some(images.sidecar.clone()),
        env: Some(kube_env_of(&[
            (SIDECAR_OPTIONS_ENV, &encoded),
            (JOB_SPEC_ENV, args.encoded_job_spec),
        ])),
        volume_mounts: Some(mounts),
        termination_message_policy: Some(TERMINATION_MESSAGE_FALLBACK.to_owned()),
        resources: args
            .config
            .resources
            .as_ref()
            .and_then(|r| r.sidecar.clone()),
        ..Container::default()
    })
}

/// Go `decorate(spec, pj, rawEnv, outputDir)`: adds the pod utilities to `spec` (clonerefs,
/// initupload and place-entrypoint init containers, the entrypoint wrapper around every test
/// container, the sidecar, their volumes) and applies the decoration config's pod settings.
/// `raw_env` is the downward-API env ([`downward_env`]); `ARTIFACTS` and `GOPATH` are added
/// to it. A non-empty `output_dir` selects local mode (see [`DecorateOptions::output_dir`]).
pub fn decorate(
    spec: &mut PodSpec,
    job: &ProwJob,
    raw_env: &BTreeMap<String, String>,
    output_dir: &str,
) -> Result<(), DecorateError> {
    let config = job
        .spec
        .decoration_config
        .as_ref()
        .ok_or(DecorateError::NotDecorated)?;

    let mut raw_env = raw_env.clone();
    raw_env.insert(ARTIFACTS_ENV.to_owned(), ARTIFACTS_PATH.to_owned());
    raw_env.insert(GOPATH_ENV.to_owned(), CODE_MOUNT_PATH.to_owned());
    let (log_mount, log_volume) = log_mount_and_volume();
    let (code_mount, code_volume) = code_mount_and_volume();
    let (tools_mount, tools_volume) = tools_mount_and_volume();

    let local_mode = !output_dir.is_empty();
    let (output_mount, output_volume) = if local_mode {
        (
            Some(mount(OUTPUT_MOUNT_NAME, OUTPUT_MOUNT_PATH, false)),
            Some(Volume {
                name: OUTPUT_MOUNT_NAME.to_owned(),
                host_path: Some(HostPathVolumeSource {
                    path: output_dir.to_owned(),
                    type_: None,
                }),
                ..Volume::default()
            }),
        )
    } else {
        (None, None)
    };

    let blob = blob_storage_options(config, local_mode);

    let clone = clone_refs(job, &code_mount, &log_mount)?;
    let clone_log_mount = match &clone {
        Some(plan) => {
            spec.init_containers
                .get_or_insert_with(Vec::new)
                .insert(0, plan.container.clone());
            Some(&log_mount)
        }
        None => None,
    };

    let encoded_job_spec = raw_env.get(JOB_SPEC_ENV).cloned().unwrap_or_default();
    let init_upload = init_upload(
        config,
        &blob.options,
        &blob.mounts,
        clone_log_mount,
        output_mount.as_ref(),
        &encoded_job_spec,
    )?;
    append(
        &mut spec.init_containers,
        [init_upload, place_entrypoint(config, &tools_mount)?],
    );
    let env = kube_env(&raw_env);
    for container in &mut spec.containers {
        append(&mut container.env, env.iter().cloned());
    }

    let secret_volumes: BTreeSet<&str> = spec
        .volumes
        .iter()
        .flatten()
        .filter(|v| v.secret.is_some())
        .map(|v| v.name.as_str())
        .collect();
    let censor = config.censor_secrets == Some(true);

    let timeout = config.timeout.map(|d| d.get()).unwrap_or_default();
    let grace_period = config.grace_period.map(|d| d.get()).unwrap_or_default();
    let single = spec.containers.len() == 1;
    let mut secret_volume_mounts = Vec::new();
    let mut wrappers = Vec::new();
    for container in &mut spec.containers {
        let prefix = if single {
            String::new()
        } else {
            container.name.clone()
        };
        let wrapper = inject_entrypoint(
            container,
            timeout,
            grace_period,
            &prefix,
            &log_mount,
            &tools_mount,
        )?;
        if censor {
            secret_volume_mounts.extend(
                container
                    .volume_mounts
                    .iter()
                    .flatten()
                    .filter(|m| secret_volumes.contains(m.name.as_str()))
                    .cloned(),
            );
        }
        wrappers.push(wrapper);
    }

    let sidecar = sidecar(&SidecarArgs {
        config,
        gcs_options: &blob.options,
        blob_storage_mounts: &blob.mounts,
        log_mount: &log_mount,
        output_mount: output_mount.as_ref(),
        encoded_job_spec: &encoded_job_spec,
        require_passing_entries: !REQUIRE_PASSING_ENTRIES,
        ignore_interrupts: config.upload_ignores_interrupts == Some(true),
        secret_volume_mounts: &secret_volume_mounts,
        wrappers: &wrappers,
    })?;

    append(&mut spec.volumes, [log_volume, tools_volume]);
    append(&mut spec.volumes, blob.volumes);
    append(&mut spec.volumes, output_volume);

    if let Some(plan) = clone {
        let work_dir = determine_work_dir(&code_mount.mount_path, &plan.refs);
        for container in &mut spec.containers {
            container.working_dir.clone_from(&work_dir);
            append(&mut container.volume_mounts, [code_mount.clone()]);
        }
        append(
            &mut spec.volumes,
            plan.volumes.into_iter().chain([code_volume]),
        );
    }

    if let Some(memory) = &config.default_memory_request {
        for container in &mut spec.containers {
            let requests = container
                .resources
                .get_or_insert_with(Default::default)
                .requests
                .get_or_insert_with(Default::default);
            requests
                .entry("memory".to_owned())
                .or_insert_with(|| memory.clone());
        }
    }

    let security = spec
        .security_context
        .get_or_insert_with(PodSecurityContext::default);
    if security.run_as_user.is_none() {
        security.run_as_user = config.run_as_user;
    }
    if security.run_as_group.is_none() {
        security.run_as_group = config.run_as_group;
    }
    if security.fs_group.is_none() {
        security.fs_group = config.fs_group;
    }

    if let Some(scheduling) = &config.scheduling_options {
        if scheduling.affinity.is_some() && spec.affinity.is_none() {
            spec.affinity.clone_from(&scheduling.affinity);
        }
        if !scheduling.tolerations.is_empty() && spec.tolerations.is_none() {
            spec.tolerations = Some(scheduling.tolerations.clone());
        }
    }

    if config.set_limit_equals_memory_request == Some(true) {
        for container in &mut spec.containers {
            let Some(resources) = container.resources.as_mut() else {
                continue;
            };
            if let Some(memory) = resources.requests.as_ref().and_then(|r| r.get("memory")) {
                let memory = memory.clone();
                resources
                    .limits
                    .get_or_insert_with(Default::default)
                    .insert("memory".to_owned(), memory);
            }
        }
    }

    spec.containers.push(sidecar);

    // The pod's grace period covers the test's grace period plus the upload: 80/20.
    if spec.termination_grace_period_seconds.is_none()
        && let Some(grace) = config.grace_period
    {
        let seconds = i64::try_from(grace.get().as_secs()).unwrap_or(i64::MAX);
        spec.termination_grace_period_seconds = Some(seconds.saturating_mul(5) / 4);
    }

    if is_empty(&spec.service_account_name)
        && let Some(account) = config
            .default_service_account_name
            .as_deref()
            .filter(|a| !a.is_empty())
    {
        spec.service_account_name = Some(account.to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bosun_proto::prowjob::{GcsConfiguration, ProwJobSpec, ProwJobStatus, Pull, UtilityImages};
    use k8s_openapi::api::core::v1::Container;

    fn decorated_job() -> ProwJob {
        let mut job = ProwJob::new(
            "pj-1",
            ProwJobSpec {
                r#type: ProwJobType::Presubmit,
                agent: agents::KUBERNETES.into(),
                job: "unit".into(),
                refs: Some(Refs {
                    org: "o".into(),
                    repo: "r".into(),
                    base_ref: "main".into(),
                    base_sha: "abc".into(),
                    pulls: vec![Pull {
                        number: 3,
                        author: "me".into(),
                        sha: "def".into(),
                        ..Pull::default()
                    }],
                    ..Refs::default()
                }),
                pod_spec: Some(PodSpec {
                    containers: vec![Container {
                        image: Some("img".into()),
                        command: Some(vec!["make".into()]),
                        args: Some(vec!["test".into()]),
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
                decoration_config: Some(DecorationConfig {
                    timeout: Some(Duration::from_secs(60).into()),
                    utility_images: Some(UtilityImages {
                        clonerefs: "c".into(),
                        initupload: "i".into(),
                        entrypoint: "e".into(),
                        sidecar: "s".into(),
                    }),
                    gcs_configuration: Some(GcsConfiguration {
                        bucket: "b".into(),
                        path_strategy: "explicit".into(),
                        ..GcsConfiguration::default()
                    }),
                    ..DecorationConfig::default()
                }),
                ..ProwJobSpec::default()
            },
        );
        job.status = Some(ProwJobStatus {
            build_id: "42".into(),
            ..ProwJobStatus::default()
        });
        job
    }

    fn env_value<'a>(container: &'a Container, name: &str) -> Option<&'a str> {
        container
            .env
            .iter()
            .flatten()
            .find(|e| e.name == name)
            .and_then(|e| e.value.as_deref())
    }

    #[test]
    fn go_path_join_cleans() {
        assert_eq!(path_join(&["/logs", "artifacts"]), "/logs/artifacts");
        assert_eq!(path_join(&["/logs/", "", "a//b/../c"]), "/logs/a/c");
        assert_eq!(path_join(&["/", ".."]), "/");
        assert_eq!(path_join(&["a", "../.."]), "..");
        assert_eq!(path_join(&["", ""]), "");
    }

    #[test]
    fn option_blobs_parse_with_the_pod_utilities() {
        let pod = prowjob_to_pod(&decorated_job()).expect("decorates");
        let spec = pod.spec.expect("spec");
        let test = &spec.containers[0];
        let entrypoint: crate::podutils::EntrypointOptions = crate::podutils::parse_options(
            ENTRYPOINT_OPTIONS_ENV,
            env_value(test, ENTRYPOINT_OPTIONS_ENV).expect("set"),
        )
        .expect("entrypoint reads it");
        assert_eq!(entrypoint.args, ["make", "test"]);
        assert_eq!(entrypoint.timeout, Duration::from_secs(60));

        let sidecar = &spec.containers[1];
        let opts: crate::podutils::SidecarOptions = crate::podutils::parse_options(
            SIDECAR_OPTIONS_ENV,
            env_value(sidecar, SIDECAR_OPTIONS_ENV).expect("set"),
        )
        .expect("sidecar reads it");
        assert_eq!(opts.entries.len(), 1);
        assert_eq!(opts.gcs_options.items, [ARTIFACTS_PATH]);

        let inits = spec.init_containers.expect("init containers");
        let clone: crate::podutils::CloneRefsOptions = crate::podutils::parse_options(
            CLONEREFS_OPTIONS_ENV,
            env_value(&inits[0], CLONEREFS_OPTIONS_ENV).expect("set"),
        )
        .expect("clonerefs reads it");
        assert_eq!(clone.refs.len(), 1);
        let init: crate::podutils::InitUploadOptions = crate::podutils::parse_options(
            INITUPLOAD_OPTIONS_ENV,
            env_value(&inits[1], INITUPLOAD_OPTIONS_ENV).expect("set"),
        )
        .expect("initupload reads it");
        assert_eq!(init.options.gcs_configuration.bucket, "b");
    }

    #[test]
    fn local_mode_mounts_the_output_directory() {
        let pod = prowjob_to_pod_local(&decorated_job(), "/tmp/out").expect("decorates");
        let spec = pod.spec.expect("spec");
        let output = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == OUTPUT_MOUNT_NAME)
            .expect("output volume");
        assert_eq!(
            output.host_path.as_ref().map(|h| h.path.as_str()),
            Some("/tmp/out")
        );
        let sidecar = spec.containers.last().expect("sidecar");
        let opts = env_value(sidecar, SIDECAR_OPTIONS_ENV).expect("set");
        assert!(opts.contains(r#""local_output_dir":"/output""#), "{opts}");
        assert!(
            sidecar
                .volume_mounts
                .iter()
                .flatten()
                .any(|m| m.mount_path == OUTPUT_MOUNT_PATH)
        );
    }

    #[test]
    fn extra_labels_override() {
        let opts = DecorateOptions {
            extra_labels: [("prow.k8s.io/plank-version".to_owned(), "v1".to_owned())].into(),
            ..DecorateOptions::default()
        };
        let pod = prowjob_to_pod_with(&decorated_job(), &opts).expect("decorates");
        let labels = pod.metadata.labels.expect("labels");
        assert_eq!(labels["prow.k8s.io/plank-version"], "v1");
        assert_eq!(labels[labels::ID], "pj-1");
        assert_eq!(labels[labels::BUILD_ID], "42");
    }

    #[test]
    fn malformed_jobs_are_errors_not_panics() {
        let mut job = decorated_job();
        job.spec.refs = None;
        assert!(matches!(
            prowjob_to_pod(&job),
            Err(DecorateError::MissingRefs { .. })
        ));
        let mut job = decorated_job();
        if let Some(refs) = job.spec.refs.as_mut() {
            refs.pulls.clear();
        }
        assert!(matches!(
            prowjob_to_pod(&job),
            Err(DecorateError::MissingPull)
        ));
        let mut job = decorated_job();
        job.spec.pod_spec = None;
        let err = prowjob_to_pod(&job).expect_err("no pod spec");
        assert_eq!(err.to_string(), r#"prowjob "pj-1" lacks a pod spec"#);
        let mut job = decorated_job();
        if let Some(dc) = job.spec.decoration_config.as_mut() {
            dc.utility_images = None;
        }
        assert!(matches!(
            prowjob_to_pod(&job),
            Err(DecorateError::MissingUtilityImages)
        ));
    }
}
