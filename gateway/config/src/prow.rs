//! The parts of Prow's `config.yaml` (`ProwConfig`) that bosun uses, with Prow's key names,
//! plus the `bosun:` key for bosun-only settings. Keys bosun does not model (tide,
//! branch-protection, most of deck, ...) are accepted and ignored.

use std::collections::BTreeMap;
use std::time::Duration;

use bosun_proto::duration::MetaDuration;
use bosun_proto::prowjob::{
    DecorationConfig, ProwJobDefault, ProwJobSpec, ProwJobState, ProwJobType, Refs,
    RerunAuthConfig, SlackReporterConfig,
};
use serde::{Deserialize, Serialize};

use crate::goish::nullable;

fn is_false(b: &bool) -> bool {
    !*b
}

/// Prow's default tenant id, used when no `prowjob_default_entries` entry names one.
pub const DEFAULT_TENANT_ID: &str = "GlobalDefaultID";

/// Default `default_job_timeout`.
pub const DEFAULT_JOB_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// The Slack report template used when a `slack_reporter_configs` entry has none.
pub const DEFAULT_SLACK_REPORT_TEMPLATE: &str = "Job {{.Spec.Job}} of type {{.Spec.Type}} ended with state {{.Status.State}}. <{{.Status.URL}}|View logs>";

fn minutes(n: u64) -> Duration {
    Duration::from_secs(n * 60)
}

/// `ProwConfig`: the controller settings of `config.yaml`. After loading, every defaulted
/// field holds its effective value.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProwConfig {
    /// Namespace of the ProwJob objects (default `default`).
    #[serde(default, deserialize_with = "nullable")]
    pub prowjob_namespace: String,
    /// Namespace of the pods (default `default`).
    #[serde(default, deserialize_with = "nullable")]
    pub pod_namespace: String,
    /// debug, info, warn, warning, error, fatal, panic, trace (default info).
    #[serde(default, deserialize_with = "nullable")]
    pub log_level: String,
    /// Pod controller settings.
    #[serde(default, deserialize_with = "nullable")]
    pub plank: Plank,
    /// Garbage collection settings.
    #[serde(default, deserialize_with = "nullable")]
    pub sinker: Sinker,
    /// Defaults for `prowjob_defaults` by repo and cluster.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub prowjob_default_entries: Vec<ProwJobDefaultEntry>,
    /// In-repo (`.prow.yaml`) config switches.
    #[serde(default, deserialize_with = "nullable")]
    pub in_repo_config: InRepoConfig,
    /// Gangway API client allow-list.
    #[serde(default, deserialize_with = "nullable")]
    pub gangway: Gangway,
    /// GitHub reporter settings.
    #[serde(default, deserialize_with = "nullable")]
    pub github_reporter: GitHubReporter,
    /// Slack reporter settings by `org/repo`, `org` or `*`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub slack_reporter_configs: BTreeMap<String, SlackReporter>,
    /// Periodic trigger settings.
    #[serde(default, deserialize_with = "nullable")]
    pub horologium: Horologium,
    /// Job timeout when the job sets none (default 24h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_job_timeout: Option<MetaDuration>,
    /// Cluster scheduler.
    #[serde(default, deserialize_with = "nullable")]
    pub scheduler: Scheduler,
    /// Pub/Sub subscriptions by project (mutually exclusive with `pubsub_triggers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pubsub_subscriptions: Option<BTreeMap<String, Vec<String>>>,
    /// Pub/Sub triggers; after loading also holds the converted `pubsub_subscriptions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pubsub_triggers: Option<Vec<PubSubTrigger>>,
    /// GitHub link settings.
    #[serde(default, deserialize_with = "nullable")]
    pub github: GitHubOptions,
    /// The deck keys bosun uses; other deck keys are accepted and ignored.
    #[serde(default, deserialize_with = "nullable")]
    pub deck: Deck,
    /// The Gerrit adapter's settings (typed and validated: [`crate::gerrit`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gerrit: Option<crate::gerrit::Gerrit>,
    /// Build clusters to ignore.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub disabled_clusters: Vec<String>,
    /// Link for jobs that cannot be found.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub status_error_link: String,
    /// Contents of a `VERSION` file next to config.yaml, if any.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub config_version_sha: String,
    /// bosun-only settings.
    #[serde(default, deserialize_with = "nullable")]
    pub bosun: BosunSettings,
}

impl ProwConfig {
    /// `default_job_timeout`, 24h when unset.
    pub fn default_job_timeout(&self) -> Duration {
        self.default_job_timeout
            .map_or(DEFAULT_JOB_TIMEOUT, MetaDuration::get)
    }

    /// The effective Pub/Sub triggers (subscriptions converted).
    pub fn pubsub_triggers(&self) -> &[PubSubTrigger] {
        self.pubsub_triggers.as_deref().unwrap_or(&[])
    }
}

/// bosun-only settings under the top-level `bosun:` key.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BosunSettings {
    /// Reporter settings, kept as written; `bosun_reporters::ReporterSettings::from_bosun`
    /// parses (and strictly checks) them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporters: Option<serde_json::Value>,
    /// The jenkins agent's settings, kept as written;
    /// `bosun_agents::jenkins::JenkinsSettings::from_bosun_value` parses (and strictly checks)
    /// them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jenkins: Option<serde_json::Value>,
}

/// `plank`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Plank {
    /// Go template over the ProwJob giving its URL.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub job_url_template: String,
    /// Deprecated: becomes `report_templates["*"]`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub report_template: String,
    /// GitHub report comment templates by `org/repo`, `org` or `*`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub report_templates: BTreeMap<String, String>,
    /// Global cap on pending jobs; 0 = none.
    #[serde(default, deserialize_with = "nullable")]
    pub max_concurrency: i64,
    /// Worker count (default 20).
    #[serde(default, deserialize_with = "nullable")]
    pub max_goroutines: i64,
    /// Default 10m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_pending_timeout: Option<MetaDuration>,
    /// Default 48h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_running_timeout: Option<MetaDuration>,
    /// Default 5m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_unscheduled_timeout: Option<MetaDuration>,
    /// Pod re-creations after unexpected stops (default 3; 0 = never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_revivals: Option<i64>,
    /// Legacy map `*` | `org` | `org/repo` → decoration defaults.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub default_decoration_configs: BTreeMap<String, DecorationConfig>,
    /// Decoration defaults by repo and cluster; after loading also holds the converted
    /// legacy map (ordered `*`, orgs, repos).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub default_decoration_config_entries: Vec<DefaultDecorationConfigEntry>,
    /// Job URL prefixes by `org/repo`, `org` or `*`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub job_url_prefix_config: BTreeMap<String, String>,
    /// Do not append `<scheme>/<bucket>` to job URL prefixes.
    #[serde(
        rename = "jobURLPrefixDisableAppendStorageProvider",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub job_url_prefix_disable_append_storage_provider: bool,
    /// Where to publish build cluster status.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub build_cluster_status_file: String,
    /// Queue capacities: 0 blocks, negative is unlimited.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub job_queue_capacities: BTreeMap<String, i64>,
}

impl Plank {
    /// Default 10m.
    pub fn pod_pending_timeout(&self) -> Duration {
        self.pod_pending_timeout
            .map_or(minutes(10), MetaDuration::get)
    }
    /// Default 48h.
    pub fn pod_running_timeout(&self) -> Duration {
        self.pod_running_timeout
            .map_or(minutes(48 * 60), MetaDuration::get)
    }
    /// Default 5m.
    pub fn pod_unscheduled_timeout(&self) -> Duration {
        self.pod_unscheduled_timeout
            .map_or(minutes(5), MetaDuration::get)
    }
    /// Default 3.
    pub fn max_revivals(&self) -> i64 {
        self.max_revivals.unwrap_or(3)
    }

    /// `GetJobURLPrefix`: the GCS configuration's `job_url_prefix`, else
    /// `job_url_prefix_config` by `org/repo`, `org`, `*` (refs, else first extra ref).
    pub fn job_url_prefix<'a>(&'a self, spec: &'a ProwJobSpec) -> &'a str {
        if let Some(prefix) = spec
            .decoration_config
            .as_ref()
            .and_then(|d| d.gcs_configuration.as_ref())
            .map(|g| g.job_url_prefix.as_str())
            .filter(|p| !p.is_empty())
        {
            return prefix;
        }
        let get = |k: &str| {
            self.job_url_prefix_config
                .get(k)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let star = || {
            self.job_url_prefix_config
                .get("*")
                .map_or("", String::as_str)
        };
        let Some(refs) = spec.main_refs().filter(|r| !r.org.is_empty()) else {
            return star();
        };
        get(&format!("{}/{}", refs.org, refs.repo))
            .or_else(|| get(&refs.org))
            .unwrap_or_else(star)
    }

    /// `ReportTemplateForRepo`: template by `org/repo`, `org`, then `*`.
    pub fn report_template_for(&self, refs: Option<&Refs>) -> Option<&str> {
        let star = self.report_templates.get("*").map(String::as_str);
        let Some(refs) = refs else { return star };
        self.report_templates
            .get(&format!("{}/{}", refs.org, refs.repo))
            .or_else(|| self.report_templates.get(&refs.org))
            .map(String::as_str)
            .or(star)
    }
}

/// One `default_decoration_config_entries` item.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DefaultDecorationConfigEntry {
    /// `org` or `org/repo` (empty or `*` = all).
    #[serde(
        rename = "repo",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub org_repo: String,
    /// Cluster alias (empty or `*` = all).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub cluster: String,
    /// The defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<DecorationConfig>,
}

/// One `prowjob_default_entries` item.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProwJobDefaultEntry {
    /// `org` or `org/repo` (empty or `*` = all).
    #[serde(
        rename = "repo",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub org_repo: String,
    /// Cluster alias (empty or `*` = all).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub cluster: String,
    /// The defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ProwJobDefault>,
}

/// `sinker`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sinker {
    /// Default 1h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resync_period: Option<MetaDuration>,
    /// Default 7 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_prowjob_age: Option<MetaDuration>,
    /// Default 1 day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pod_age: Option<MetaDuration>,
    /// Default `max_pod_age`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminated_pod_ttl: Option<MetaDuration>,
    /// Clusters sinker leaves alone.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub exclude_clusters: Vec<String>,
}

impl Sinker {
    /// Default 1h.
    pub fn resync_period(&self) -> Duration {
        self.resync_period.map_or(minutes(60), MetaDuration::get)
    }
    /// Default 7 days.
    pub fn max_prowjob_age(&self) -> Duration {
        self.max_prowjob_age
            .map_or(minutes(7 * 24 * 60), MetaDuration::get)
    }
    /// Default 1 day.
    pub fn max_pod_age(&self) -> Duration {
        self.max_pod_age.map_or(minutes(24 * 60), MetaDuration::get)
    }
    /// Default `max_pod_age`.
    pub fn terminated_pod_ttl(&self) -> Duration {
        self.terminated_pod_ttl
            .map_or_else(|| self.max_pod_age(), MetaDuration::get)
    }
}

/// `in_repo_config`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct InRepoConfig {
    /// `*`, `org` or `org/repo` → enabled; the narrowest key wins.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub enabled: BTreeMap<String, bool>,
    /// `*`, `org` or `org/repo` → clusters in-repo jobs may use. After loading, `*`
    /// defaults to `["default"]` unless given.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub allowed_clusters: BTreeMap<String, Vec<String>>,
}

/// `gangway` (reference §2.3).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Gangway {
    /// Clients allowed to call the API.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allowed_api_clients: Vec<AllowedApiClient>,
}

/// One gangway client.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AllowedApiClient {
    /// GCP identity (the only vendor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp: Option<ApiClientGcp>,
    /// Jobs the client may act on.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allowed_jobs_filters: Vec<AllowedJobsFilter>,
}

/// GCP Cloud Endpoints identity headers.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApiClientGcp {
    /// `x-endpoint-api-consumer-type`; must be `PROJECT`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub endpoint_api_consumer_type: String,
    /// `x-endpoint-api-consumer-number`; digits.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub endpoint_api_consumer_number: String,
}

impl ApiClientGcp {
    /// `gcp-<type>-<number>`.
    pub fn uuid(&self) -> String {
        format!(
            "gcp-{}-{}",
            self.endpoint_api_consumer_type, self.endpoint_api_consumer_number
        )
    }
}

/// Which jobs a gangway client may act on.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AllowedJobsFilter {
    /// Must equal the job's `prowjob_defaults.tenant_id`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub tenant_id: String,
}

/// `github_reporter`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct GitHubReporter {
    /// Default presubmit + postsubmit; only those are allowed.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub job_types_to_report: Vec<ProwJobType>,
    /// Orgs/repos without failure comments.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub no_comment_repos: Vec<String>,
    /// Orgs/repos with one summary comment.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub summary_comment_repos: Vec<String>,
}

/// One `slack_reporter_configs` entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SlackReporter {
    /// Job types to report.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub job_types_to_report: Vec<ProwJobType>,
    /// Slack host.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub host: String,
    /// Channel; required.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub channel: String,
    /// States to report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_states_to_report: Option<Vec<ProwJobState>>,
    /// Go template; defaulted after loading.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub report_template: String,
    /// Whether to report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<bool>,
}

impl SlackReporter {
    /// The per-job reporter config shape of this entry.
    pub fn reporter_config(&self) -> SlackReporterConfig {
        SlackReporterConfig {
            host: self.host.clone(),
            channel: self.channel.clone(),
            job_states_to_report: self.job_states_to_report.clone(),
            report_template: self.report_template.clone(),
            report: self.report,
        }
    }
}

/// `horologium`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Horologium {
    /// Default 1m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tick_interval: Option<MetaDuration>,
}

impl Horologium {
    /// Default 1m.
    pub fn tick_interval(&self) -> Duration {
        self.tick_interval.map_or(minutes(1), MetaDuration::get)
    }
}

/// `scheduler`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Scheduler {
    /// New jobs start in `scheduling`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub enabled: bool,
    /// Cluster → cluster mapping strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<FailoverScheduling>,
    /// REST lookup strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalScheduling>,
}

/// `scheduler.failover`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct FailoverScheduling {
    /// Cluster → replacement cluster.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub mappings: BTreeMap<String, String>,
}

/// `scheduler.external`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExternalScheduling {
    /// REST endpoint.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub url: String,
    /// Cache settings.
    #[serde(default, deserialize_with = "nullable")]
    pub cache: ExternalSchedulingCache,
}

/// `scheduler.external.cache`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExternalSchedulingCache {
    /// Entry lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_timeout_interval: Option<MetaDuration>,
    /// Cleanup period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_interval: Option<MetaDuration>,
}

/// One `pubsub_triggers` entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PubSubTrigger {
    /// GCP project.
    #[serde(default, deserialize_with = "nullable")]
    pub project: String,
    /// Subscriptions.
    #[serde(default, deserialize_with = "nullable")]
    pub topics: Vec<String>,
    /// Clusters jobs from these messages may use.
    #[serde(default, deserialize_with = "nullable")]
    pub allowed_clusters: Vec<String>,
    /// Default 10.
    #[serde(default, deserialize_with = "nullable")]
    pub max_outstanding_messages: i64,
}

/// `github`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct GitHubOptions {
    /// Default `https://github.com`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub link_url: String,
}

/// The parts of `deck` bosun uses.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Deck {
    /// Legacy map `*` | `org` | `org/repo` → who may rerun.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub rerun_auth_configs: BTreeMap<String, RerunAuthConfig>,
    /// Entries by repo and cluster; after loading also holds the converted legacy map.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub default_rerun_auth_configs: Vec<DefaultRerunAuthConfigEntry>,
}

impl Deck {
    /// `GetRerunAuthConfig`: the last matching entry for the job's repo and cluster.
    pub fn rerun_auth_config_for(&self, spec: &ProwJobSpec) -> Option<&RerunAuthConfig> {
        let org_repo = spec.main_refs().map(Refs::org_repo).unwrap_or_default();
        self.default_rerun_auth_configs
            .iter()
            .filter(|e| {
                crate::defaults::entry_matches(&e.org_repo, &e.cluster, &org_repo, &spec.cluster)
            })
            .filter_map(|e| e.rerun_auth_configs.as_ref())
            .next_back()
    }
}

/// One `deck.default_rerun_auth_configs` entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DefaultRerunAuthConfigEntry {
    /// `org` or `org/repo` (empty or `*` = all).
    #[serde(
        rename = "repo",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub org_repo: String,
    /// Cluster alias (empty or `*` = all).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub cluster: String,
    /// Who may rerun (Prow's key name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun_auth_configs: Option<RerunAuthConfig>,
}
