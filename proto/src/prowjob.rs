//! The ProwJob resource, `prow.k8s.io/v1`, field for field as Prow serialises it.
//!
//! Field names keep Prow's JSON spelling, including its mix of camelCase and snake_case
//! (`startTime` next to `build_id`). Go `omitempty` fields are skipped when they hold their
//! zero value, so a ProwJob written by bosun reads the same as one written by Prow.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{Affinity, PodSpec, ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::{MetaDuration, ProwDuration};

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}
fn is_zero_i32(n: &i32) -> bool {
    *n == 0
}

/// `spec.type`: what kind of change a job tests.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ProwJobType {
    /// Tests an unmerged pull request.
    Presubmit,
    /// Tests a pushed commit.
    Postsubmit,
    /// Runs on a timer.
    Periodic,
    /// Tests several pull requests together.
    Batch,
}

impl ProwJobType {
    /// Every job type, in Prow's order.
    pub const ALL: [ProwJobType; 4] = [
        ProwJobType::Presubmit,
        ProwJobType::Postsubmit,
        ProwJobType::Periodic,
        ProwJobType::Batch,
    ];

    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ProwJobType::Presubmit => "presubmit",
            ProwJobType::Postsubmit => "postsubmit",
            ProwJobType::Periodic => "periodic",
            ProwJobType::Batch => "batch",
        }
    }
}

impl fmt::Display for ProwJobType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ProwJobType {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownVariant {
                what: "job type",
                value: s.to_owned(),
                expected: "presubmit, postsubmit, periodic, batch",
            })
    }
}

/// Error for a string that names no variant of one of the job enums.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?} (expected one of: {expected})")]
pub struct UnknownVariant {
    what: &'static str,
    value: String,
    expected: &'static str,
}

/// `status.state`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
    Default,
)]
#[serde(rename_all = "lowercase")]
pub enum ProwJobState {
    /// Created, waiting for a scheduler to pick a cluster.
    Scheduling,
    /// Scheduled, not yet running.
    #[default]
    Triggered,
    /// The workload exists and runs.
    Pending,
    /// Exited 0.
    Success,
    /// Exited non-zero.
    Failure,
    /// Stopped early on purpose (abort request, newer commit, running timeout).
    Aborted,
    /// Could not run: bad spec, unknown agent or cluster, backend timeouts.
    Error,
}

impl ProwJobState {
    /// Every state, in Prow's order.
    pub const ALL: [ProwJobState; 7] = [
        ProwJobState::Scheduling,
        ProwJobState::Triggered,
        ProwJobState::Pending,
        ProwJobState::Success,
        ProwJobState::Failure,
        ProwJobState::Aborted,
        ProwJobState::Error,
    ];

    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ProwJobState::Scheduling => "scheduling",
            ProwJobState::Triggered => "triggered",
            ProwJobState::Pending => "pending",
            ProwJobState::Success => "success",
            ProwJobState::Failure => "failure",
            ProwJobState::Aborted => "aborted",
            ProwJobState::Error => "error",
        }
    }

    /// success, failure, aborted and error: nothing runs any more once the job is complete.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ProwJobState::Success
                | ProwJobState::Failure
                | ProwJobState::Aborted
                | ProwJobState::Error
        )
    }
}

impl fmt::Display for ProwJobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ProwJobState {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownVariant {
                what: "job state",
                value: s.to_owned(),
                expected: "scheduling, triggered, pending, success, failure, aborted, error",
            })
    }
}

/// The agents Prow knows, plus bosun's own. Any other string is allowed and routed by name.
pub mod agents {
    /// Prow's plank: a decorated pod.
    pub const KUBERNETES: &str = "kubernetes";
    /// Prow's jenkins-operator.
    pub const JENKINS: &str = "jenkins";
    /// Prow's pipeline controller: a Tekton PipelineRun.
    pub const TEKTON_PIPELINE: &str = "tekton-pipeline";
    /// bosun: a Docker Engine container.
    pub const DOCKER: &str = "docker";
    /// bosun: a host process.
    pub const LOCAL: &str = "local";
}

/// The build-cluster alias used when `spec.cluster` is empty.
pub const DEFAULT_CLUSTER_ALIAS: &str = "default";

/// The ProwJob spec (reference §1.2).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "prow.k8s.io",
    version = "v1",
    kind = "ProwJob",
    plural = "prowjobs",
    singular = "prowjob",
    namespaced,
    status = "ProwJobStatus",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Job","type":"string","jsonPath":".spec.job"}"#,
    printcolumn = r#"{"name":"BuildId","type":"string","jsonPath":".status.build_id"}"#,
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#,
    printcolumn = r#"{"name":"Org","type":"string","jsonPath":".spec.refs.org"}"#,
    printcolumn = r#"{"name":"Repo","type":"string","jsonPath":".spec.refs.repo"}"#,
    printcolumn = r#"{"name":"Pulls","type":"string","jsonPath":".spec.refs.pulls[*].number"}"#,
    printcolumn = r#"{"name":"StartTime","type":"date","jsonPath":".status.startTime"}"#,
    printcolumn = r#"{"name":"CompletionTime","type":"date","jsonPath":".status.completionTime"}"#,
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.state"}"#
)]
pub struct ProwJobSpec {
    /// presubmit / postsubmit / periodic / batch.
    #[serde(rename = "type")]
    pub r#type: ProwJobType,
    /// Which executor runs the job.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub agent: String,
    /// Build-cluster alias; empty means `default`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    /// Namespace for the workload.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Job name.
    pub job: String,
    /// Primary code under test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refs: Option<Refs>,
    /// Further repositories to clone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_refs: Vec<Refs>,
    /// Whether reporters report this job.
    #[serde(default, skip_serializing_if = "is_false")]
    pub report: bool,
    /// GitHub status context.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub context: String,
    /// Comment that reruns the job.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rerun_command: String,
    /// Max simultaneous pending runs of this job name; 0 = unlimited.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    #[schemars(range(min = 0))]
    pub max_concurrency: i64,
    /// Evicted workload → error instead of a retry.
    #[serde(default, skip_serializing_if = "is_false")]
    pub error_on_eviction: bool,
    /// Workload for pod-based agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_spec: Option<PodSpec>,
    /// Jenkins-only options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jenkins_spec: Option<JenkinsSpec>,
    /// Tekton PipelineRunSpec (legacy field), kept as free-form JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub pipeline_run_spec: Option<serde_json::Value>,
    /// Versioned Tekton PipelineRunSpec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tekton_pipeline_run_spec: Option<TektonPipelineRunSpec>,
    /// Pod-utility decoration; present means decorated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoration_config: Option<DecorationConfig>,
    /// Per-job reporter overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporter_config: Option<ReporterConfig>,
    /// Who may rerun the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun_auth_config: Option<RerunAuthConfig>,
    /// Shown only by UIs asked for hidden jobs.
    #[serde(default, skip_serializing_if = "is_false")]
    pub hidden: bool,
    /// Defaults from `prowjob_default_entries`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prowjob_defaults: Option<ProwJobDefault>,
    /// Named job queue.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub job_queue_name: String,
}

impl Default for ProwJobSpec {
    fn default() -> Self {
        Self {
            r#type: ProwJobType::Periodic,
            agent: String::new(),
            cluster: String::new(),
            namespace: String::new(),
            job: String::new(),
            refs: None,
            extra_refs: Vec::new(),
            report: false,
            context: String::new(),
            rerun_command: String::new(),
            max_concurrency: 0,
            error_on_eviction: false,
            pod_spec: None,
            jenkins_spec: None,
            pipeline_run_spec: None,
            tekton_pipeline_run_spec: None,
            decoration_config: None,
            reporter_config: None,
            rerun_auth_config: None,
            hidden: false,
            prowjob_defaults: None,
            job_queue_name: String::new(),
        }
    }
}

impl ProwJobSpec {
    /// `ClusterAlias()`: the cluster, `default` when empty.
    pub fn cluster_alias(&self) -> &str {
        if self.cluster.is_empty() {
            DEFAULT_CLUSTER_ALIAS
        } else {
            &self.cluster
        }
    }

    /// The refs that identify the job's main code: `refs`, else the first extra ref.
    pub fn main_refs(&self) -> Option<&Refs> {
        self.refs.as_ref().or_else(|| self.extra_refs.first())
    }

    /// The Tekton spec Prow uses: `tekton_pipeline_run_spec.v1beta1`, else `pipeline_run_spec`.
    pub fn pipeline_run_spec(&self) -> Option<&serde_json::Value> {
        self.tekton_pipeline_run_spec
            .as_ref()
            .and_then(|t| t.v1beta1.as_ref())
            .or(self.pipeline_run_spec.as_ref())
    }
}

/// `status` (reference §1.4).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ProwJobStatus {
    /// Creation time.
    #[serde(rename = "startTime", default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the job moved triggered → pending.
    #[serde(
        rename = "pendingTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub pending_time: Option<Time>,
    /// When the job reached a final state; presence means complete.
    #[serde(
        rename = "completionTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub completion_time: Option<Time>,
    /// Current state.
    pub state: ProwJobState,
    /// Human-readable status.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Link to the job's logs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// Times the workload was recreated after an unexpected stop.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub pod_revival_count: i32,
    /// Workload name (pod name for kubernetes).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod_name: String,
    /// Vended build id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub build_id: String,
    /// Jenkins' own build number.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jenkins_build_id: String,
    /// Reporter name → last state reported.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub prev_report_states: BTreeMap<String, ProwJobState>,
}

/// Code to check out (reference §1.5).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct Refs {
    /// Organisation (or Gerrit host).
    pub org: String,
    /// Repository.
    pub repo: String,
    /// Web link to the repository.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub repo_link: String,
    /// Base branch.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub base_ref: String,
    /// Base commit.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub base_sha: String,
    /// Web link to the base commit.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub base_link: String,
    /// Pull requests merged on top of the base, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pulls: Vec<Pull>,
    /// Clone under `src/<path_alias>` instead of `src/github.com/org/repo`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path_alias: String,
    /// This clone becomes the test container's working directory.
    #[serde(default, skip_serializing_if = "is_false")]
    pub workdir: bool,
    /// Only provides helper files.
    #[serde(default, skip_serializing_if = "is_false")]
    pub auxiliary: bool,
    /// Clone URL override.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub clone_uri: String,
    /// Do not update submodules.
    #[serde(default, skip_serializing_if = "is_false")]
    pub skip_submodules: bool,
    /// Shallow clone depth; 0 = full.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub clone_depth: i32,
    /// Skip the initial fetch of all heads.
    #[serde(default, skip_serializing_if = "is_false")]
    pub skip_fetch_head: bool,
    /// `--filter=blob:none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blobless_fetch: Option<bool>,
    /// Sparse checkout paths.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sparse_checkout_files: Vec<String>,
}

impl Refs {
    /// `Refs.String()`, the `PULL_REFS` value: `base_ref[:base_sha]` then `,number:sha[:ref]`.
    pub fn to_refs_string(&self) -> String {
        let mut out = self.base_ref.clone();
        if !self.base_sha.is_empty() {
            out.push(':');
            out.push_str(&self.base_sha);
        }
        for pull in &self.pulls {
            out.push(',');
            out.push_str(&pull.number.to_string());
            out.push(':');
            out.push_str(&pull.sha);
            if !pull.r#ref.is_empty() {
                out.push(':');
                out.push_str(&pull.r#ref);
            }
        }
        out
    }

    /// `org/repo`, or `org` when the repo is empty.
    pub fn org_repo(&self) -> String {
        if self.repo.is_empty() {
            self.org.clone()
        } else {
            format!("{}/{}", self.org, self.repo)
        }
    }
}

/// A pull request (or Gerrit change) merged into the base.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct Pull {
    /// PR number.
    pub number: i64,
    /// Author login.
    pub author: String,
    /// Head commit.
    pub sha: String,
    /// Title.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    /// Ref to fetch (`pull/123/head`, `refs/changes/00/123/1`).
    #[serde(default, skip_serializing_if = "String::is_empty", rename = "ref")]
    pub r#ref: String,
    /// Source branch name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub head_ref: String,
    /// Web link to the PR.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub link: String,
    /// Web link to the head commit.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub commit_link: String,
    /// Web link to the author.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author_link: String,
}

/// `jenkins_spec`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct JenkinsSpec {
    /// Managed by the Jenkins GitHub branch source plugin.
    #[serde(default, skip_serializing_if = "is_false")]
    pub github_branch_source_job: bool,
}

/// `tekton_pipeline_run_spec`; the key says v1beta1, the content is a Tekton v1 spec.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct TektonPipelineRunSpec {
    /// The PipelineRunSpec, free-form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub v1beta1: Option<serde_json::Value>,
}

/// `prowjob_defaults`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ProwJobDefault {
    /// ResultStore settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resultstore_config: Option<ResultStoreConfig>,
    /// Tenant, used for API authorisation.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tenant_id: String,
}

/// `prowjob_defaults.resultstore_config`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ResultStoreConfig {
    /// ResultStore project.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub project_id: String,
}

/// `reporter_config`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ReporterConfig {
    /// Slack overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackReporterConfig>,
}

/// `reporter_config.slack`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct SlackReporterConfig {
    /// Slack host (selects the token).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// Channel.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub channel: String,
    /// States worth a message; `None` differs from an empty list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_states_to_report: Option<Vec<ProwJobState>>,
    /// Go template over the ProwJob.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub report_template: String,
    /// Whether to report at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<bool>,
}

/// `rerun_auth_config`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct RerunAuthConfig {
    /// Anyone may rerun.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_anyone: bool,
    /// GitHub team ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub github_team_ids: Vec<i64>,
    /// GitHub team slugs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub github_team_slugs: Vec<GitHubTeamSlug>,
    /// GitHub users.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub github_users: Vec<String>,
    /// GitHub organisations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub github_orgs: Vec<String>,
}

/// A team by slug and org.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct GitHubTeamSlug {
    /// Team slug.
    pub slug: String,
    /// Organisation.
    pub org: String,
}

/// `decoration_config` (reference §1.6). Scalars are options: unset differs from zero.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct DecorationConfig {
    /// Test timeout; SIGINT after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<ProwDuration>,
    /// Time between SIGINT and SIGKILL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<ProwDuration>,
    /// Pod-utility images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utility_images: Option<UtilityImages>,
    /// Pod-utility container resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Where logs and artifacts go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcs_configuration: Option<GcsConfiguration>,
    /// Secret with GCS credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcs_credentials_secret: Option<String>,
    /// Secret with S3 credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_credentials_secret: Option<String>,
    /// Service account used when the pod names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_service_account_name: Option<String>,
    /// SSH key secrets for cloning.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ssh_key_secrets: Vec<String>,
    /// Known SSH host fingerprints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ssh_host_fingerprints: Vec<String>,
    /// Blobless clones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blobless_fetch: Option<bool>,
    /// Sparse checkout of the primary refs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sparse_checkout_files: Vec<String>,
    /// Do not clone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_cloning: Option<bool>,
    /// Git cookie file secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookiefile_secret: Option<String>,
    /// OAuth token secret for cloning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_token_secret: Option<OauthTokenSecret>,
    /// GitHub API endpoints for app auth.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub github_api_endpoints: Vec<String>,
    /// GitHub App id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github_app_id: Option<String>,
    /// GitHub App private key secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github_app_private_key_secret: Option<GitHubAppPrivateKeySecret>,
    /// Censor secrets in logs and artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub censor_secrets: Option<bool>,
    /// Censoring tuning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub censoring_options: Option<CensoringOptions>,
    /// The sidecar ignores interrupts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_ignores_interrupts: Option<bool>,
    /// Memory limit = memory request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_limit_equals_memory_request: Option<bool>,
    /// Memory request for containers without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_memory_request: Option<Quantity>,
    /// Affinity and tolerations applied when the pod has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling_options: Option<SchedulingOptions>,
    /// Per-job pending timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_pending_timeout: Option<MetaDuration>,
    /// Per-job running timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_running_timeout: Option<MetaDuration>,
    /// Per-job unscheduled timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_unscheduled_timeout: Option<MetaDuration>,
    /// Pod securityContext runAsUser.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_user: Option<i64>,
    /// Pod securityContext runAsGroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_group: Option<i64>,
    /// Pod securityContext fsGroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_group: Option<i64>,
}

/// `utility_images`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct UtilityImages {
    /// clonerefs image.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub clonerefs: String,
    /// initupload image.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub initupload: String,
    /// entrypoint image.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub entrypoint: String,
    /// sidecar image.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sidecar: String,
}

/// `resources` of the utility containers.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Resources {
    /// clonerefs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clonerefs: Option<ResourceRequirements>,
    /// initupload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initupload: Option<ResourceRequirements>,
    /// place-entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place_entrypoint: Option<ResourceRequirements>,
    /// sidecar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecar: Option<ResourceRequirements>,
}

/// `gcs_configuration` (reference §1.7).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct GcsConfiguration {
    /// `gs://name`, `s3://name`, or a bare GCS bucket name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bucket: String,
    /// Prefix inside the bucket.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path_prefix: String,
    /// legacy | single | explicit.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path_strategy: String,
    /// Default org for path shortening.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub default_org: String,
    /// Default repo for path shortening.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub default_repo: String,
    /// Extension → MIME type (camelCase key, as in Prow).
    #[serde(
        rename = "mediaTypes",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub media_types: BTreeMap<String, String>,
    /// Job URL prefix.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub job_url_prefix: String,
    /// Write to a local directory instead of a bucket.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub local_output_dir: String,
    /// Extensions to gzip on upload (`*` = all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compress_file_types: Vec<String>,
}

/// `oauth_token_secret`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct OauthTokenSecret {
    /// Secret name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Key inside the secret.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
}

/// `github_app_private_key_secret`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct GitHubAppPrivateKeySecret {
    /// Secret name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Key inside the secret.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
}

/// `censoring_options`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct CensoringOptions {
    /// Parallel censoring workers (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub censoring_concurrency: Option<i64>,
    /// Buffer per file (default 10 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub censoring_buffer_size: Option<i64>,
    /// Only censor these artifact globs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_directories: Vec<String>,
    /// Never censor these artifact globs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_directories: Vec<String>,
    /// Shorter secrets are not censored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_secret_length: Option<i64>,
}

/// `scheduling_options`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SchedulingOptions {
    /// Pod affinity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Pod tolerations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
}

/// The ProwJob CRD as Prow defines it: like `ProwJob::crd()`, but without a `status`
/// subresource (`subresources: {}`), because Prow writes status together with the object.
pub fn prowjob_crd()
-> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    use kube::CustomResourceExt;
    let mut crd = ProwJob::crd();
    for version in &mut crd.spec.versions {
        if let Some(sub) = version.subresources.as_mut() {
            sub.status = None;
        }
    }
    crd
}

impl ProwJob {
    /// The status, created empty if missing.
    pub fn status_mut(&mut self) -> &mut ProwJobStatus {
        self.status.get_or_insert_with(ProwJobStatus::default)
    }

    /// The current state (`triggered` when there is no status yet).
    pub fn state(&self) -> ProwJobState {
        self.status.as_ref().map(|s| s.state).unwrap_or_default()
    }

    /// `Complete()`: a completion time is set.
    pub fn is_complete(&self) -> bool {
        self.status
            .as_ref()
            .is_some_and(|s| s.completion_time.is_some())
    }

    /// The object name ("" when unnamed).
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or("")
    }
}

/// A fresh ProwJob name: a UUID like Prow's, version 7 so names created one after another sort
/// together (the store's name index then appends instead of touching a random page per job).
pub fn new_job_name() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod name_tests {
    #[test]
    fn new_names_are_uuids_that_sort_in_creation_order() {
        let names: Vec<String> = (0..1000).map(|_| super::new_job_name()).collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
        for n in &names {
            assert_eq!(n.len(), 36);
            assert!(n.chars().all(|c| c.is_ascii_hexdigit() || c == '-'));
            assert_eq!(n.as_bytes()[14], b'7', "UUID version 7: {n}");
        }
    }
}
