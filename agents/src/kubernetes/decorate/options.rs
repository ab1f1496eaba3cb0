//! The option blobs decoration writes into the utility containers' environment, in the exact
//! JSON shape Go's `encoding/json` gives Prow's option structs: keys in Go struct-field
//! order, Go's `omitempty` rules, embedded structs inlined at their position.
//!
//! These are serialisation types for [`super`]; the pod utilities themselves read their
//! options with the (more lenient) types in [`crate::podutils`]. [`encode`](super::encode)
//! turns any of them into the env value.

use bosun_proto::prowjob::{GcsConfiguration, Refs};
use serde::{Deserialize, Serialize};

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// `wrapper.Options`: one wrapped test process (an `ENTRYPOINT_OPTIONS` tail, and one
/// `SIDECAR_OPTIONS.entries` item).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrapperOptions {
    /// The command and arguments; `None` (Go nil) is written as `null`.
    #[serde(default)]
    pub args: Option<Vec<String>>,
    /// Container the process runs in.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container_name: String,
    /// Where stdout and stderr go.
    #[serde(default)]
    pub process_log: String,
    /// Where the exit code goes.
    #[serde(default)]
    pub marker_file: String,
    /// Where the test may write metadata for `finished.json`.
    #[serde(default)]
    pub metadata_file: String,
}

/// `entrypoint.Options` (`ENTRYPOINT_OPTIONS`). Durations are integer nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntrypointOptions {
    /// Test timeout in nanoseconds; 0 means the entrypoint's default (2h).
    #[serde(default)]
    pub timeout: i64,
    /// SIGINT → SIGKILL grace period in nanoseconds; 0 means the default (15s).
    #[serde(default)]
    pub grace_period: i64,
    /// Created before the test starts; uploaded by the sidecar.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub artifact_dir: String,
    /// Wait for this marker and only run if it holds 0.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub previous_marker: String,
    /// Exit 0 whatever the marker says.
    #[serde(default, skip_serializing_if = "is_false")]
    pub always_zero: bool,
    /// Exit with the child's code on timeout and abort.
    #[serde(default, skip_serializing_if = "is_false")]
    pub propagate_error_code: bool,
    /// Only copy the entrypoint binary.
    #[serde(default, skip_serializing_if = "is_false")]
    pub copy_mode_only: bool,
    /// Where copy mode copies to.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub copy_dst: String,
    /// The embedded `*wrapper.Options` (last field of the Go struct).
    #[serde(flatten)]
    pub wrapper: WrapperOptions,
}

/// `clonerefs.Options` (`CLONEREFS_OPTIONS`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloneRefsOptions {
    /// Root of the GOPATH-style source tree.
    pub src_root: String,
    /// Where the clone records go.
    pub log: String,
    /// `git config user.name`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub git_user_name: String,
    /// `git config user.email`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub git_user_email: String,
    /// What to clone: refs, then extra refs.
    pub refs: Vec<Refs>,
    /// SSH keys for `ssh-agent`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_files: Vec<String>,
    /// File holding an OAuth token.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub oauth_token_file: String,
    /// `known_hosts` lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_fingerprints: Vec<String>,
    /// Parallel clones; 0 = one per ref.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_parallel_workers: i64,
    /// Exit non-zero when a clone fails.
    #[serde(default, skip_serializing_if = "is_false")]
    pub fail: bool,
    /// Git http cookie file.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cookie_path: String,
    /// GitHub API endpoints (GitHub App auth).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub github_api_endpoints: Vec<String>,
    /// GitHub App id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub github_app_id: String,
    /// GitHub App private key file.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub github_app_private_key_file: String,
}

/// `gcsupload.Options`: where uploads go. The embedded `*GCSConfiguration` and
/// `StorageClientOptions` are inlined, as Go does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcsUploadOptions {
    /// Files or directories to upload.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<String>,
    /// Appended to the job's bucket path.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sub_dir: String,
    /// The embedded `*GCSConfiguration` (nil writes nothing).
    #[serde(flatten)]
    pub gcs_configuration: Option<GcsConfiguration>,
    /// GCS credentials file.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gcs_credentials_file: String,
    /// S3 credentials file.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub s3_credentials_file: String,
    /// Do not upload (always written).
    #[serde(default)]
    pub dry_run: bool,
}

/// `initupload.Options` (`INITUPLOAD_OPTIONS`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitUploadOptions {
    /// The embedded `*gcsupload.Options`.
    #[serde(flatten)]
    pub options: GcsUploadOptions,
    /// The clone log, when clonerefs runs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log: String,
}

/// `sidecar.CensoringOptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CensoringOptions {
    /// Directories whose files hold secrets to censor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_directories: Vec<String>,
    /// Parallel censoring workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub censoring_concurrency: Option<i64>,
    /// Buffer per censored file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub censoring_buffer_size: Option<i64>,
    /// Only censor these artifact globs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_directories: Vec<String>,
    /// Never censor these artifact globs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_directories: Vec<String>,
    /// Secret files parsed as INI.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ini_filenames: Vec<String>,
    /// Shorter secrets are not censored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_secret_length: Option<i64>,
}

/// `sidecar.Options` (`SIDECAR_OPTIONS`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SidecarOptions {
    /// Upload destination; `items` includes the artifact directory.
    pub gcs_options: GcsUploadOptions,
    /// Deprecated single entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrapper_options: Option<WrapperOptions>,
    /// The wrapped test processes to wait for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<WrapperOptions>,
    /// Exit non-zero when a test failed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub entry_error: bool,
    /// Ignore SIGINT/SIGTERM until the tests end.
    #[serde(default, skip_serializing_if = "is_false")]
    pub ignore_interrupts: bool,
    /// Write memory profiles while running.
    #[serde(default, skip_serializing_if = "is_false")]
    pub write_memory_profile: bool,
    /// Censoring before upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub censoring_options: Option<CensoringOptions>,
    /// Deprecated: use `censoring_options.secret_directories`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_directories: Vec<String>,
    /// Deprecated: use `censoring_options.censoring_concurrency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub censoring_concurrency: Option<i64>,
    /// Deprecated: use `censoring_options.censoring_buffer_size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub censoring_buffer_size: Option<i64>,
}
