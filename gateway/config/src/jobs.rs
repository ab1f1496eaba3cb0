//! Job configuration: presets, presubmits, postsubmits and periodics (reference §3.2–§3.5),
//! with Prow's JSON field names, plus the run semantics of §3.8.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use bosun_proto::prowjob::{
    DecorationConfig, JenkinsSpec, ProwJobDefault, ProwJobType, Refs, ReporterConfig,
    RerunAuthConfig, TektonPipelineRunSpec,
};
use k8s_openapi::api::core::v1::{EnvVar, PodSpec, Toleration, Volume, VolumeMount};
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::goish::nullable;

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}
fn is_zero_i32(n: &i32) -> bool {
    *n == 0
}

/// A regex compiled once, either up front by the loader (shared through its cache) or on
/// first use. `None` inside means the pattern does not compile (validation reports it).
#[derive(Debug, Clone, Default)]
pub(crate) struct CompiledRegex(OnceLock<Option<Regex>>);

impl PartialEq for CompiledRegex {
    /// Compiled state is a cache: two jobs are equal whatever was compiled so far.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl CompiledRegex {
    pub(crate) fn get_or_compile(&self, pattern: impl FnOnce() -> String) -> Option<&Regex> {
        self.0.get_or_init(|| Regex::new(&pattern()).ok()).as_ref()
    }

    pub(crate) fn set(&self, re: Option<Regex>) {
        // A second set keeps the first value; both come from the same pattern.
        let _ = self.0.set(re);
    }
}

/// Settings shared by every job kind (`JobBase`, with `UtilityConfig` inlined).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct JobBase {
    /// Job name; must match `^[A-Za-z0-9-._]+$`.
    pub name: String,
    /// Labels added to the ProwJob and its workload; also select presets.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations added to the ProwJob.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Max simultaneous pending runs; 0 = unlimited.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub max_concurrency: i64,
    /// Executor; defaults to `kubernetes`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub agent: String,
    /// Build cluster alias; defaults to `default`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    /// Workload namespace; unset or empty means `pod_namespace`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Evicted pod → error instead of a new pod.
    #[serde(skip_serializing_if = "is_false")]
    pub error_on_eviction: bool,
    /// Pod spec for the kubernetes agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<PodSpec>,
    /// Tekton PipelineRunSpec (legacy field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline_run_spec: Option<serde_json::Value>,
    /// Versioned Tekton PipelineRunSpec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tekton_pipeline_run_spec: Option<TektonPipelineRunSpec>,
    /// Per-job reporter settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reporter_config: Option<ReporterConfig>,
    /// Who may rerun the job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerun_auth_config: Option<RerunAuthConfig>,
    /// Hidden from default UIs.
    #[serde(skip_serializing_if = "is_false")]
    pub hidden: bool,
    /// Tenant and ResultStore defaults; always set after loading.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prowjob_defaults: Option<ProwJobDefault>,
    /// Named job queue (a key of `plank.job_queue_capacities`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub job_queue_name: String,
    /// Decorate the pod with the pod utilities; set after loading.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decorate: Option<bool>,
    /// Clone under `src/<path_alias>`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path_alias: String,
    /// Clone URL override.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub clone_uri: String,
    /// Do not clone submodules.
    #[serde(skip_serializing_if = "is_false")]
    pub skip_submodules: bool,
    /// Shallow clone depth; 0 = full.
    #[serde(skip_serializing_if = "is_zero_i32")]
    pub clone_depth: i32,
    /// Skip `git fetch <remote>`.
    #[serde(skip_serializing_if = "is_false")]
    pub skip_fetch_head: bool,
    /// More repositories to clone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_refs: Vec<Refs>,
    /// Pod-utility settings; after loading, the merge of the plank defaults and the job's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decoration_config: Option<DecorationConfig>,
    /// The file the job was read from (not serialized).
    #[serde(skip)]
    pub source_path: PathBuf,
}

impl JobBase {
    /// Whether a Tekton spec is present (`tekton_pipeline_run_spec.v1beta1` or `pipeline_run_spec`).
    pub fn has_pipeline_run_spec(&self) -> bool {
        self.pipeline_run_spec().is_some()
    }

    /// `GetPipelineRunSpec`: `tekton_pipeline_run_spec.v1beta1`, else `pipeline_run_spec`.
    pub fn pipeline_run_spec(&self) -> Option<&serde_json::Value> {
        self.tekton_pipeline_run_spec
            .as_ref()
            .and_then(|t| t.v1beta1.as_ref())
            .or(self.pipeline_run_spec.as_ref())
    }

    /// The namespace as defaulted (empty before defaulting).
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }
}

/// Which branches a job runs against (`branches` / `skip_branches`; regexes, unanchored).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Brancher {
    /// Never run against these branches (regexes, joined with `|`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skip_branches: Vec<String>,
    /// Only run against these branches (regexes, joined with `|`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub branches: Vec<String>,
    #[serde(skip)]
    pub(crate) re: CompiledRegex,
    #[serde(skip)]
    pub(crate) re_skip: CompiledRegex,
}

impl PartialEq for Brancher {
    fn eq(&self, other: &Self) -> bool {
        self.skip_branches == other.skip_branches && self.branches == other.branches
    }
}

impl Brancher {
    /// Neither `branches` nor `skip_branches` is set.
    pub fn runs_against_all_branches(&self) -> bool {
        self.skip_branches.is_empty() && self.branches.is_empty()
    }

    /// `ShouldRun(branch)`: skip_branches win; then branches (empty = all).
    pub fn should_run(&self, branch: &str) -> bool {
        if self.runs_against_all_branches() {
            return true;
        }
        if !self.skip_branches.is_empty() {
            let skip = self.re_skip.get_or_compile(|| self.skip_branches.join("|"));
            if skip.is_some_and(|re| re.is_match(branch)) {
                return false;
            }
        }
        if self.branches.is_empty() {
            return true;
        }
        let re = self.re.get_or_compile(|| self.branches.join("|"));
        re.is_some_and(|re| re.is_match(branch))
    }

    /// `Intersects`: whether both branchers could run for some common branch.
    pub fn intersects(&self, other: &Brancher) -> bool {
        if self.runs_against_all_branches() || other.runs_against_all_branches() {
            return true;
        }
        if !self.branches.is_empty() {
            if !other.branches.is_empty() {
                return self.branches.iter().any(|b| other.branches.contains(b));
            }
            return self.branches.iter().any(|b| other.should_run(b));
        }
        if other.branches.is_empty() {
            // Both only have skip lists.
            return true;
        }
        other.intersects(self)
    }
}

/// Run only when certain files change (`run_if_changed` xor `skip_if_only_changed`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RegexpChangeMatcher {
    /// Run if any changed path matches.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub run_if_changed: String,
    /// Run if any changed path does not match.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub skip_if_only_changed: String,
    #[serde(skip)]
    pub(crate) re: CompiledRegex,
}

impl PartialEq for RegexpChangeMatcher {
    fn eq(&self, other: &Self) -> bool {
        self.run_if_changed == other.run_if_changed
            && self.skip_if_only_changed == other.skip_if_only_changed
    }
}

/// Supplies a change's file list, fetched at most once.
pub trait ChangedFilesProvider {
    /// Why the list could not be fetched.
    type Error;
    /// The changed paths.
    fn changed_files(&mut self) -> Result<&[String], Self::Error>;
}

impl ChangedFilesProvider for &[String] {
    type Error = std::convert::Infallible;
    fn changed_files(&mut self) -> Result<&[String], Self::Error> {
        Ok(self)
    }
}

/// A [`ChangedFilesProvider`] that calls `fetch` on first use and caches the answer.
pub struct LazyChangedFiles<F> {
    fetch: Option<F>,
    files: Vec<String>,
}

impl<F> LazyChangedFiles<F> {
    /// Wraps a fetch function.
    pub fn new(fetch: F) -> Self {
        Self {
            fetch: Some(fetch),
            files: Vec::new(),
        }
    }
}

impl<F, E> ChangedFilesProvider for LazyChangedFiles<F>
where
    F: FnOnce() -> Result<Vec<String>, E>,
{
    type Error = E;
    fn changed_files(&mut self) -> Result<&[String], E> {
        if let Some(fetch) = self.fetch.take() {
            self.files = fetch()?;
        }
        Ok(&self.files)
    }
}

impl RegexpChangeMatcher {
    /// Whether a change filter is set at all.
    pub fn could_run(&self) -> bool {
        !self.run_if_changed.is_empty() || !self.skip_if_only_changed.is_empty()
    }

    fn pattern(&self) -> &str {
        if self.run_if_changed.is_empty() {
            &self.skip_if_only_changed
        } else {
            &self.run_if_changed
        }
    }

    /// `RunsAgainstChanges`: any path matching `run_if_changed`, or any path not matching
    /// `skip_if_only_changed`.
    pub fn runs_against_changes(&self, changes: &[String]) -> bool {
        let Some(re) = self.re.get_or_compile(|| self.pattern().to_owned()) else {
            return false;
        };
        changes.iter().any(|c| {
            if !self.run_if_changed.is_empty() {
                re.is_match(c)
            } else {
                !self.skip_if_only_changed.is_empty() && !re.is_match(c)
            }
        })
    }

    /// `ShouldRun`: `Ok(None)` when no filter is set (undetermined), else whether to run.
    pub fn should_run<P: ChangedFilesProvider>(
        &self,
        changes: &mut P,
    ) -> Result<Option<bool>, P::Error> {
        if !self.could_run() {
            return Ok(None);
        }
        let files = changes.changed_files()?;
        Ok(Some(self.runs_against_changes(files)))
    }
}

/// A presubmit: runs on pull requests.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Presubmit {
    /// Shared job settings.
    #[serde(flatten)]
    pub base: JobBase,
    /// Run on every PR (not only on request).
    pub always_run: bool,
    /// Not required for merge.
    #[serde(skip_serializing_if = "is_false")]
    pub optional: bool,
    /// Regex over PR comments that triggers the job.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub trigger: String,
    /// Comment users type to rerun; must match `trigger`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub rerun_command: String,
    /// Tide runs it before merge.
    #[serde(skip_serializing_if = "is_false")]
    pub run_before_merge: bool,
    /// Branch filter.
    #[serde(flatten)]
    pub brancher: Brancher,
    /// Changed-files filter.
    #[serde(flatten)]
    pub change_matcher: RegexpChangeMatcher,
    /// GitHub status context; defaults to the name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub context: String,
    /// Do not report status.
    #[serde(skip_serializing_if = "is_false")]
    pub skip_report: bool,
    /// Jenkins options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jenkins_spec: Option<JenkinsSpec>,
    #[serde(skip)]
    pub(crate) trigger_re: CompiledRegex,
}

/// A postsubmit: runs on pushed commits.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Postsubmit {
    /// Shared job settings.
    #[serde(flatten)]
    pub base: JobBase,
    /// Unset means run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub always_run: Option<bool>,
    /// Changed-files filter.
    #[serde(flatten)]
    pub change_matcher: RegexpChangeMatcher,
    /// Branch filter.
    #[serde(flatten)]
    pub brancher: Brancher,
    /// GitHub status context; defaults to the name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub context: String,
    /// Do not report status.
    #[serde(skip_serializing_if = "is_false")]
    pub skip_report: bool,
    /// Jenkins options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jenkins_spec: Option<JenkinsSpec>,
}

/// `retry` of a periodic.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Retry {
    /// Retry even after a success.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub run_all: bool,
    /// Maximum attempts (Prow caps at 10).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero_i64"
    )]
    pub attempts: i64,
    /// Wait between attempts (Go duration).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub interval: String,
}

impl Retry {
    /// The attempt count horologium honours: at most 10.
    pub fn effective_attempts(&self) -> i64 {
        self.attempts.clamp(0, 10)
    }
}

/// A periodic: runs on a timer.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Periodic {
    /// Shared job settings.
    #[serde(flatten)]
    pub base: JobBase,
    /// Run when the previous run completed and this long has passed since its start.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub interval: String,
    /// Run this long after the previous run completed.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub minimum_interval: String,
    /// Cron expression, UTC.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cron: String,
    /// Free-form tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Retry policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    #[serde(skip)]
    pub(crate) parsed: PeriodicTimes,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PeriodicTimes {
    pub(crate) interval: Option<Duration>,
    pub(crate) minimum_interval: Option<Duration>,
    pub(crate) retry_interval: Option<Duration>,
    pub(crate) cron: Option<crate::cron::CronSchedule>,
}

impl Periodic {
    /// The parsed `interval` (set by the loader).
    pub fn interval_duration(&self) -> Option<Duration> {
        self.parsed.interval
    }

    /// The parsed `minimum_interval` (set by the loader).
    pub fn minimum_interval_duration(&self) -> Option<Duration> {
        self.parsed.minimum_interval
    }

    /// The parsed `retry.interval` (set by the loader). Prow also copies it over the
    /// periodic's own interval; bosun keeps them apart.
    pub fn retry_interval(&self) -> Option<Duration> {
        self.parsed.retry_interval
    }

    /// The parsed cron schedule (set by the loader).
    pub fn cron_schedule(&self) -> Option<&crate::cron::CronSchedule> {
        self.parsed.cron.as_ref()
    }
}

macro_rules! deref_base {
    ($($t:ty),*) => {$(
        impl Deref for $t {
            type Target = JobBase;
            fn deref(&self) -> &JobBase {
                &self.base
            }
        }
        impl DerefMut for $t {
            fn deref_mut(&mut self) -> &mut JobBase {
                &mut self.base
            }
        }
    )*};
}
deref_base!(Presubmit, Postsubmit, Periodic);

impl Presubmit {
    /// The branch filter accepts `base_ref`.
    pub fn could_run(&self, base_ref: &str) -> bool {
        self.brancher.should_run(base_ref)
    }

    /// `ShouldRun`: branch filter, then always_run, then forced (`/test`), then the change
    /// filter (if determined and true) or `defaults`.
    pub fn should_run<P: ChangedFilesProvider>(
        &self,
        base_ref: &str,
        changes: &mut P,
        forced: bool,
        defaults: bool,
    ) -> Result<bool, P::Error> {
        if !self.could_run(base_ref) {
            return Ok(false);
        }
        if self.always_run || forced {
            return Ok(true);
        }
        let determined = self.change_matcher.should_run(changes)?;
        Ok(determined == Some(true) || defaults)
    }

    /// Runs only when asked: not always_run and no change filter.
    pub fn needs_explicit_trigger(&self) -> bool {
        !self.always_run && !self.change_matcher.could_run()
    }

    /// May or may not trigger on a PR.
    pub fn triggers_conditionally(&self) -> bool {
        self.needs_explicit_trigger() || self.change_matcher.could_run()
    }

    /// Its context must pass for merge.
    pub fn context_required(&self) -> bool {
        !self.optional && !self.skip_report
    }

    /// Whether a PR comment triggers the job.
    pub fn trigger_matches(&self, body: &str) -> bool {
        if self.trigger.is_empty() {
            return false;
        }
        self.trigger_re
            .get_or_compile(|| self.trigger.clone())
            .is_some_and(|re| re.is_match(body))
    }
}

impl Postsubmit {
    /// The branch filter accepts `base_ref`.
    pub fn could_run(&self, base_ref: &str) -> bool {
        self.brancher.should_run(base_ref)
    }

    /// `ShouldRun`: branch filter, change filter if set, explicit always_run, else true.
    pub fn should_run<P: ChangedFilesProvider>(
        &self,
        base_ref: &str,
        changes: &mut P,
    ) -> Result<bool, P::Error> {
        if !self.could_run(base_ref) {
            return Ok(false);
        }
        if let Some(run) = self.change_matcher.should_run(changes)? {
            return Ok(run);
        }
        Ok(self.always_run.unwrap_or(true))
    }
}

/// Settings added to every job whose labels match.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Preset {
    /// All must match the job's labels; none means every job.
    #[serde(default, deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    /// Added to every container.
    #[serde(default, deserialize_with = "nullable")]
    pub env: Vec<EnvVar>,
    /// Added to the pod.
    #[serde(default, deserialize_with = "nullable")]
    pub volumes: Vec<Volume>,
    /// Added to every container.
    #[serde(rename = "volumeMounts", default, deserialize_with = "nullable")]
    pub volume_mounts: Vec<VolumeMount>,
    /// Added to the pod.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tolerations: Vec<Toleration>,
}

/// All jobs of a configuration.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct JobConfig {
    /// Presets, in file order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub presets: Vec<Preset>,
    /// Presubmits by `org/repo` (Gerrit: host URL + repo).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub presubmits: BTreeMap<String, Vec<Presubmit>>,
    /// Postsubmits by `org/repo`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub postsubmits: BTreeMap<String, Vec<Postsubmit>>,
    /// Periodics.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub periodics: Vec<Periodic>,
    /// Decorate jobs that do not say otherwise.
    #[serde(skip_serializing_if = "is_false")]
    pub decorate_all_jobs: bool,
}

impl JobConfig {
    /// Number of jobs of every kind.
    pub fn job_count(&self) -> usize {
        self.presubmits.values().map(Vec::len).sum::<usize>()
            + self.postsubmits.values().map(Vec::len).sum::<usize>()
            + self.periodics.len()
    }

    /// Every job's shared settings with its kind and repo key (empty for periodics).
    pub fn iter_jobs(&self) -> impl Iterator<Item = (ProwJobType, &str, &JobBase)> {
        let pre = self.presubmits.iter().flat_map(|(repo, jobs)| {
            jobs.iter()
                .map(move |j| (ProwJobType::Presubmit, repo.as_str(), &j.base))
        });
        let post = self.postsubmits.iter().flat_map(|(repo, jobs)| {
            jobs.iter()
                .map(move |j| (ProwJobType::Postsubmit, repo.as_str(), &j.base))
        });
        let per = self
            .periodics
            .iter()
            .map(|j| (ProwJobType::Periodic, "", &j.base));
        pre.chain(post).chain(per)
    }
}

// === deserialization ===
//
// Jobs are read through "raw" structs that list every field directly (no `flatten`), so that
// unknown fields anywhere in a job (including inside its pod spec) are seen by the strict
// checker and reported with their path.

macro_rules! raw_job {
    ($(#[$m:meta])* struct $name:ident { $($extra:tt)* }) => {
        $(#[$m])*
        #[derive(Deserialize)]
        pub(crate) struct $name {
            #[serde(default, deserialize_with = "nullable")]
            name: String,
            #[serde(default, deserialize_with = "nullable")]
            labels: BTreeMap<String, String>,
            #[serde(default, deserialize_with = "nullable")]
            annotations: BTreeMap<String, String>,
            #[serde(default, deserialize_with = "nullable")]
            max_concurrency: i64,
            #[serde(default, deserialize_with = "nullable")]
            agent: String,
            #[serde(default, deserialize_with = "nullable")]
            cluster: String,
            #[serde(default)]
            namespace: Option<String>,
            #[serde(default, deserialize_with = "nullable")]
            error_on_eviction: bool,
            #[serde(default)]
            spec: Option<PodSpec>,
            #[serde(default)]
            pipeline_run_spec: Option<serde_json::Value>,
            #[serde(default)]
            tekton_pipeline_run_spec: Option<TektonPipelineRunSpec>,
            #[serde(default)]
            reporter_config: Option<ReporterConfig>,
            #[serde(default)]
            rerun_auth_config: Option<RerunAuthConfig>,
            #[serde(default, deserialize_with = "nullable")]
            hidden: bool,
            #[serde(default)]
            prowjob_defaults: Option<ProwJobDefault>,
            #[serde(default, deserialize_with = "nullable")]
            job_queue_name: String,
            #[serde(default)]
            decorate: Option<bool>,
            #[serde(default, deserialize_with = "nullable")]
            path_alias: String,
            #[serde(default, deserialize_with = "nullable")]
            clone_uri: String,
            #[serde(default, deserialize_with = "nullable")]
            skip_submodules: bool,
            #[serde(default, deserialize_with = "nullable")]
            clone_depth: i32,
            #[serde(default, deserialize_with = "nullable")]
            skip_fetch_head: bool,
            #[serde(default, deserialize_with = "nullable")]
            extra_refs: Vec<Refs>,
            #[serde(default)]
            decoration_config: Option<DecorationConfig>,
            $($extra)*
        }
    };
}

macro_rules! take_base {
    ($raw:ident) => {
        JobBase {
            name: $raw.name,
            labels: $raw.labels,
            annotations: $raw.annotations,
            max_concurrency: $raw.max_concurrency,
            agent: $raw.agent,
            cluster: $raw.cluster,
            namespace: $raw.namespace,
            error_on_eviction: $raw.error_on_eviction,
            spec: $raw.spec,
            pipeline_run_spec: $raw.pipeline_run_spec,
            tekton_pipeline_run_spec: $raw.tekton_pipeline_run_spec,
            reporter_config: $raw.reporter_config,
            rerun_auth_config: $raw.rerun_auth_config,
            hidden: $raw.hidden,
            prowjob_defaults: $raw.prowjob_defaults,
            job_queue_name: $raw.job_queue_name,
            decorate: $raw.decorate,
            path_alias: $raw.path_alias,
            clone_uri: $raw.clone_uri,
            skip_submodules: $raw.skip_submodules,
            clone_depth: $raw.clone_depth,
            skip_fetch_head: $raw.skip_fetch_head,
            extra_refs: $raw.extra_refs,
            decoration_config: $raw.decoration_config,
            source_path: PathBuf::new(),
        }
    };
}

raw_job!(
    /// Presubmit as written.
    struct RawPresubmit {
        #[serde(default, deserialize_with = "nullable")]
        always_run: bool,
        #[serde(default, deserialize_with = "nullable")]
        optional: bool,
        #[serde(default, deserialize_with = "nullable")]
        trigger: String,
        #[serde(default, deserialize_with = "nullable")]
        rerun_command: String,
        #[serde(default, deserialize_with = "nullable")]
        run_before_merge: bool,
        #[serde(default, deserialize_with = "nullable")]
        skip_branches: Vec<String>,
        #[serde(default, deserialize_with = "nullable")]
        branches: Vec<String>,
        #[serde(default, deserialize_with = "nullable")]
        run_if_changed: String,
        #[serde(default, deserialize_with = "nullable")]
        skip_if_only_changed: String,
        #[serde(default, deserialize_with = "nullable")]
        context: String,
        #[serde(default, deserialize_with = "nullable")]
        skip_report: bool,
        #[serde(default)]
        jenkins_spec: Option<JenkinsSpec>,
    }
);

raw_job!(
    /// Postsubmit as written.
    struct RawPostsubmit {
        #[serde(default)]
        always_run: Option<bool>,
        #[serde(default, deserialize_with = "nullable")]
        run_if_changed: String,
        #[serde(default, deserialize_with = "nullable")]
        skip_if_only_changed: String,
        #[serde(default, deserialize_with = "nullable")]
        skip_branches: Vec<String>,
        #[serde(default, deserialize_with = "nullable")]
        branches: Vec<String>,
        #[serde(default, deserialize_with = "nullable")]
        context: String,
        #[serde(default, deserialize_with = "nullable")]
        skip_report: bool,
        #[serde(default)]
        jenkins_spec: Option<JenkinsSpec>,
    }
);

raw_job!(
    /// Periodic as written.
    struct RawPeriodic {
        #[serde(default, deserialize_with = "nullable")]
        interval: String,
        #[serde(default, deserialize_with = "nullable")]
        minimum_interval: String,
        #[serde(default, deserialize_with = "nullable")]
        cron: String,
        #[serde(default, deserialize_with = "nullable")]
        tags: Vec<String>,
        #[serde(default)]
        retry: Option<Retry>,
    }
);

impl From<RawPresubmit> for Presubmit {
    fn from(raw: RawPresubmit) -> Self {
        let base = take_base!(raw);
        Presubmit {
            base,
            always_run: raw.always_run,
            optional: raw.optional,
            trigger: raw.trigger,
            rerun_command: raw.rerun_command,
            run_before_merge: raw.run_before_merge,
            brancher: Brancher {
                skip_branches: raw.skip_branches,
                branches: raw.branches,
                ..Default::default()
            },
            change_matcher: RegexpChangeMatcher {
                run_if_changed: raw.run_if_changed,
                skip_if_only_changed: raw.skip_if_only_changed,
                ..Default::default()
            },
            context: raw.context,
            skip_report: raw.skip_report,
            jenkins_spec: raw.jenkins_spec,
            trigger_re: CompiledRegex::default(),
        }
    }
}

impl From<RawPostsubmit> for Postsubmit {
    fn from(raw: RawPostsubmit) -> Self {
        let base = take_base!(raw);
        Postsubmit {
            base,
            always_run: raw.always_run,
            change_matcher: RegexpChangeMatcher {
                run_if_changed: raw.run_if_changed,
                skip_if_only_changed: raw.skip_if_only_changed,
                ..Default::default()
            },
            brancher: Brancher {
                skip_branches: raw.skip_branches,
                branches: raw.branches,
                ..Default::default()
            },
            context: raw.context,
            skip_report: raw.skip_report,
            jenkins_spec: raw.jenkins_spec,
        }
    }
}

impl From<RawPeriodic> for Periodic {
    fn from(raw: RawPeriodic) -> Self {
        let base = take_base!(raw);
        Periodic {
            base,
            interval: raw.interval,
            minimum_interval: raw.minimum_interval,
            cron: raw.cron,
            tags: raw.tags,
            retry: raw.retry,
            parsed: PeriodicTimes::default(),
        }
    }
}

impl<'de> Deserialize<'de> for Presubmit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        RawPresubmit::deserialize(d).map(Into::into)
    }
}

impl<'de> Deserialize<'de> for Postsubmit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        RawPostsubmit::deserialize(d).map(Into::into)
    }
}

impl<'de> Deserialize<'de> for Periodic {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        RawPeriodic::deserialize(d).map(Into::into)
    }
}

/// One job config document (a job file, or the job part of the config file).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct JobConfigDoc {
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) presets: Vec<Preset>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) presubmits: BTreeMap<String, Vec<Presubmit>>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) postsubmits: BTreeMap<String, Vec<Postsubmit>>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) periodics: Vec<Periodic>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) decorate_all_jobs: bool,
    /// Free-form, never interpreted.
    #[serde(default)]
    #[allow(dead_code)]
    pub(crate) prow_ignored: Option<serde_json::Value>,
}
