//! Defaulting (reference §3.6, §3.9–§3.11, §1.6 `ApplyDefault`) and the validation of the
//! controller blocks of `config.yaml` (Prow's `parseProwConfig` / `validateComponentConfig`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use bosun_proto::duration::MetaDuration;
use bosun_proto::prowjob::{
    CensoringOptions, DEFAULT_CLUSTER_ALIAS, DecorationConfig, GcsConfiguration, ProwJobDefault,
    ProwJobType, RerunAuthConfig, Resources, SchedulingOptions, UtilityImages, agents,
};
use k8s_openapi::api::core::v1::PodSpec;
use regex::Regex;

use crate::error::Problem;
use crate::goish::{check_go_template, parse_url};
use crate::jobs::{Brancher, JobBase, JobConfig, Preset, RegexpChangeMatcher};
use crate::prow::{
    DEFAULT_SLACK_REPORT_TEMPLATE, DEFAULT_TENANT_ID, DefaultDecorationConfigEntry,
    DefaultRerunAuthConfigEntry, ProwConfig, PubSubTrigger,
};

// === ApplyDefault (job value wins, default fills gaps) ===

fn fill<T: Clone>(slot: &mut Option<T>, def: &Option<T>) {
    if slot.is_none() {
        slot.clone_from(def);
    }
}

fn fill_vec<T: Clone>(slot: &mut Vec<T>, def: &[T]) {
    if slot.is_empty() {
        slot.extend_from_slice(def);
    }
}

fn fill_str(slot: &mut String, def: &str) {
    if slot.is_empty() {
        def.clone_into(slot);
    }
}

/// Merges `job` over `def` when both exist, else copies whichever exists.
fn apply<T: Clone>(job: Option<&T>, def: Option<&T>, merge: impl FnOnce(&mut T, &T)) -> Option<T> {
    match (job, def) {
        (None, None) => None,
        (Some(j), None) => Some(j.clone()),
        (None, Some(d)) => Some(d.clone()),
        (Some(j), Some(d)) => {
            let mut merged = j.clone();
            merge(&mut merged, d);
            Some(merged)
        }
    }
}

fn merge_utility_images(m: &mut UtilityImages, d: &UtilityImages) {
    fill_str(&mut m.clonerefs, &d.clonerefs);
    fill_str(&mut m.initupload, &d.initupload);
    fill_str(&mut m.entrypoint, &d.entrypoint);
    fill_str(&mut m.sidecar, &d.sidecar);
}

fn merge_resources(m: &mut Resources, d: &Resources) {
    fill(&mut m.clonerefs, &d.clonerefs);
    fill(&mut m.initupload, &d.initupload);
    fill(&mut m.place_entrypoint, &d.place_entrypoint);
    fill(&mut m.sidecar, &d.sidecar);
}

fn merge_gcs(m: &mut GcsConfiguration, d: &GcsConfiguration) {
    fill_str(&mut m.bucket, &d.bucket);
    fill_str(&mut m.path_prefix, &d.path_prefix);
    fill_str(&mut m.path_strategy, &d.path_strategy);
    fill_str(&mut m.default_org, &d.default_org);
    fill_str(&mut m.default_repo, &d.default_repo);
    // Quirk kept from Prow: the default's media types overwrite the job's for the same extension.
    for (ext, media_type) in &d.media_types {
        m.media_types.insert(ext.clone(), media_type.clone());
    }
    fill_str(&mut m.job_url_prefix, &d.job_url_prefix);
    fill_str(&mut m.local_output_dir, &d.local_output_dir);
    fill_vec(&mut m.compress_file_types, &d.compress_file_types);
}

fn merge_censoring(m: &mut CensoringOptions, d: &CensoringOptions) {
    fill(&mut m.censoring_concurrency, &d.censoring_concurrency);
    fill(&mut m.censoring_buffer_size, &d.censoring_buffer_size);
    fill_vec(&mut m.include_directories, &d.include_directories);
    fill_vec(&mut m.exclude_directories, &d.exclude_directories);
    fill(&mut m.minimum_secret_length, &d.minimum_secret_length);
}

fn merge_scheduling(m: &mut SchedulingOptions, d: &SchedulingOptions) {
    fill(&mut m.affinity, &d.affinity);
    fill_vec(&mut m.tolerations, &d.tolerations);
}

/// `DecorationConfig.ApplyDefault(def)`: the job's value wins, the default fills every unset
/// field (nested structs field by field; empty lists count as unset).
pub fn apply_decoration_default(
    job: Option<&DecorationConfig>,
    def: Option<&DecorationConfig>,
) -> Option<DecorationConfig> {
    apply(job, def, |m, d| {
        m.utility_images = apply(
            m.utility_images.as_ref(),
            d.utility_images.as_ref(),
            merge_utility_images,
        );
        m.resources = apply(m.resources.as_ref(), d.resources.as_ref(), merge_resources);
        m.gcs_configuration = apply(
            m.gcs_configuration.as_ref(),
            d.gcs_configuration.as_ref(),
            merge_gcs,
        );
        m.censoring_options = apply(
            m.censoring_options.as_ref(),
            d.censoring_options.as_ref(),
            merge_censoring,
        );
        m.scheduling_options = apply(
            m.scheduling_options.as_ref(),
            d.scheduling_options.as_ref(),
            merge_scheduling,
        );
        fill(&mut m.timeout, &d.timeout);
        fill(&mut m.grace_period, &d.grace_period);
        fill(&mut m.gcs_credentials_secret, &d.gcs_credentials_secret);
        fill(&mut m.s3_credentials_secret, &d.s3_credentials_secret);
        fill(
            &mut m.default_service_account_name,
            &d.default_service_account_name,
        );
        fill_vec(&mut m.ssh_key_secrets, &d.ssh_key_secrets);
        fill_vec(&mut m.ssh_host_fingerprints, &d.ssh_host_fingerprints);
        fill(&mut m.skip_cloning, &d.skip_cloning);
        fill(&mut m.cookiefile_secret, &d.cookiefile_secret);
        fill(&mut m.oauth_token_secret, &d.oauth_token_secret);
        fill_vec(&mut m.github_api_endpoints, &d.github_api_endpoints);
        if m.github_app_id.as_deref().unwrap_or("").is_empty() {
            m.github_app_id.clone_from(&d.github_app_id);
        }
        fill(
            &mut m.github_app_private_key_secret,
            &d.github_app_private_key_secret,
        );
        fill(&mut m.censor_secrets, &d.censor_secrets);
        fill(
            &mut m.upload_ignores_interrupts,
            &d.upload_ignores_interrupts,
        );
        fill(
            &mut m.set_limit_equals_memory_request,
            &d.set_limit_equals_memory_request,
        );
        fill(&mut m.default_memory_request, &d.default_memory_request);
        fill(&mut m.pod_pending_timeout, &d.pod_pending_timeout);
        fill(&mut m.pod_running_timeout, &d.pod_running_timeout);
        fill(&mut m.pod_unscheduled_timeout, &d.pod_unscheduled_timeout);
        fill(&mut m.run_as_user, &d.run_as_user);
        fill(&mut m.run_as_group, &d.run_as_group);
        fill(&mut m.fs_group, &d.fs_group);
        fill(&mut m.blobless_fetch, &d.blobless_fetch);
        fill_vec(&mut m.sparse_checkout_files, &d.sparse_checkout_files);
    })
}

/// `ProwJobDefault.ApplyDefault(def)`.
pub fn apply_prowjob_default(
    job: Option<&ProwJobDefault>,
    def: Option<&ProwJobDefault>,
) -> Option<ProwJobDefault> {
    apply(job, def, |m, d| {
        fill(&mut m.resultstore_config, &d.resultstore_config);
        fill_str(&mut m.tenant_id, &d.tenant_id);
    })
}

fn trim_http(s: &str) -> &str {
    let s = s.strip_prefix("https://").unwrap_or(s);
    s.strip_prefix("http://").unwrap_or(s)
}

/// Gerrit's `EnsureCodeURL`: `https://foo-review.host/x` → `https://foo.host/x`.
fn ensure_code_url(url: &str) -> String {
    match url.split_once('.') {
        Some((first, rest)) if first.ends_with("-review") => {
            format!("{}.{rest}", &first[..first.len() - "-review".len()])
        }
        _ => url.to_owned(),
    }
}

/// Prow's entry matching for `*_entries`: the entry's cluster is empty, `*` or equal; its repo
/// is empty, `*` or equal to `org_repo`, or equal to it (or its org) once the Gerrit
/// `-review` host and the `http(s)://` prefix are removed.
pub fn entry_matches(
    given_org_repo: &str,
    given_cluster: &str,
    org_repo: &str,
    cluster: &str,
) -> bool {
    if !given_cluster.is_empty() && given_cluster != "*" && given_cluster != cluster {
        return false;
    }
    if given_org_repo.is_empty() || given_org_repo == "*" || given_org_repo == org_repo {
        return true;
    }
    let code = ensure_code_url(org_repo);
    let trimmed = trim_http(&code);
    given_org_repo == trimmed || given_org_repo == trimmed.split('/').next().unwrap_or("")
}

/// Prow's `GlobalDefaultID`-filled merge of matching `prowjob_default_entries` and the job's own.
pub(crate) fn merge_prowjob_defaults(
    prow: &ProwConfig,
    repo: &str,
    cluster: &str,
    job: Option<&ProwJobDefault>,
) -> ProwJobDefault {
    let mut merged: Option<ProwJobDefault> = None;
    for entry in &prow.prowjob_default_entries {
        if entry_matches(&entry.org_repo, &entry.cluster, repo, cluster) {
            merged = apply_prowjob_default(entry.config.as_ref(), merged.as_ref());
        }
    }
    let mut merged = apply_prowjob_default(job, merged.as_ref()).unwrap_or_default();
    if merged.tenant_id.is_empty() {
        DEFAULT_TENANT_ID.clone_into(&mut merged.tenant_id);
    }
    merged
}

/// The merge of the matching plank default decoration entries (later entries win).
pub(crate) fn default_decoration_for(
    prow: &ProwConfig,
    repo: &str,
    cluster: &str,
) -> Option<DecorationConfig> {
    let mut merged: Option<DecorationConfig> = None;
    for entry in &prow.plank.default_decoration_config_entries {
        if entry_matches(&entry.org_repo, &entry.cluster, repo, cluster) {
            merged = apply_decoration_default(entry.config.as_ref(), merged.as_ref());
        }
    }
    merged
}

/// `keysForIdentifier`: the lookup keys of a repo identifier, narrowest first.
pub(crate) fn keys_for_identifier(identifier: &str) -> Vec<String> {
    let is_gerrit = identifier.starts_with("https://") || identifier.starts_with("http://");
    let normalized = if is_gerrit {
        let scheme = if identifier.starts_with("http://") {
            "http://"
        } else {
            "https://"
        };
        format!("{scheme}{}", trim_http(identifier).trim_matches('/'))
    } else {
        identifier.to_owned()
    };
    let mut candidates = vec![
        normalized.clone(),
        trim_http(identifier).trim_end_matches('/').to_owned(),
    ];
    let org = if normalized.starts_with("https://") || normalized.starts_with("http://") {
        let scheme = if normalized.starts_with("http://") {
            "http://"
        } else {
            "https://"
        };
        trim_http(&normalized)
            .split_once('/')
            .map(|(host, _)| format!("{scheme}{}", host.trim_end_matches('/')))
    } else {
        normalized.split_once('/').map(|(o, _)| o.to_owned())
    };
    if let Some(org) = org.filter(|o| !o.is_empty()) {
        candidates.push(trim_http(&org).trim_end_matches('/').to_owned());
        candidates.insert(candidates.len() - 1, org);
    }
    candidates.push("*".to_owned());
    let mut out: Vec<String> = Vec::with_capacity(candidates.len());
    for c in candidates {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

// === ProwConfig defaults and component validation ===

fn set_default(slot: &mut Option<MetaDuration>, secs: u64) {
    if slot.is_none() {
        *slot = Some(MetaDuration(std::time::Duration::from_secs(secs)));
    }
}

/// Validates one `RerunAuthConfig`.
pub(crate) fn validate_rerun_auth(c: &RerunAuthConfig) -> Result<(), String> {
    let has_list = !c.github_users.is_empty()
        || !c.github_team_ids.is_empty()
        || !c.github_team_slugs.is_empty()
        || !c.github_orgs.is_empty();
    if c.allow_anyone && has_list {
        return Err(
            "allow anyone is set to true and permitted users or groups are specified".to_owned(),
        );
    }
    Ok(())
}

/// Applies the ProwConfig defaults and checks the controller blocks.
pub(crate) fn finalize_prow_config(pc: &mut ProwConfig, file: &Path, problems: &mut Vec<Problem>) {
    let mut err = |field: &str, msg: String| problems.push(Problem::field(file, field, msg));

    // plank (ValidateController + defaults)
    let plank = &mut pc.plank;
    if let Err(e) = check_go_template(&plank.job_url_template) {
        err("plank.job_url_template", format!("parsing template: {e}"));
    }
    if !plank.report_template.is_empty() {
        if plank.report_templates.is_empty() {
            plank
                .report_templates
                .insert("*".to_owned(), plank.report_template.clone());
        } else {
            err(
                "plank.report_template",
                "both report_template and report_templates are specified".to_owned(),
            );
        }
    }
    for (key, template) in &plank.report_templates {
        if let Err(e) = check_go_template(template) {
            err(
                &format!("plank.report_templates[{key:?}]"),
                format!("error while parsing template: {e}"),
            );
        }
    }
    if plank.max_concurrency < 0 {
        err(
            "plank.max_concurrency",
            format!(
                "controller has invalid max_concurrency ({}), it needs to be a non-negative number",
                plank.max_concurrency
            ),
        );
    }
    if plank.max_goroutines == 0 {
        plank.max_goroutines = 20;
    }
    if plank.max_goroutines < 0 {
        err(
            "plank.max_goroutines",
            format!(
                "controller has invalid max_goroutines ({}), it needs to be a positive number",
                plank.max_goroutines
            ),
        );
    }
    set_default(&mut plank.pod_pending_timeout, 10 * 60);
    set_default(&mut plank.pod_running_timeout, 48 * 3600);
    set_default(&mut plank.pod_unscheduled_timeout, 5 * 60);
    if plank.max_revivals.is_none() {
        plank.max_revivals = Some(3);
    }
    for (key, url) in &plank.job_url_prefix_config {
        if let Err(e) = parse_url(url) {
            err(
                &format!("plank.job_url_prefix_config[{key:?}]"),
                format!("invalid value: {e}"),
            );
        }
    }
    // FinalizeDefaultDecorationConfigs: legacy map xor entries; the map becomes entries
    // ordered `*`, orgs, repos.
    if !plank.default_decoration_configs.is_empty() {
        if plank.default_decoration_config_entries.is_empty() {
            let map = &plank.default_decoration_configs;
            let entry = |k: &String, c: &DecorationConfig| DefaultDecorationConfigEntry {
                org_repo: k.clone(),
                cluster: String::new(),
                config: Some(c.clone()),
            };
            let star = map.iter().filter(|(k, _)| *k == "*");
            let orgs = map.iter().filter(|(k, _)| *k != "*" && !k.contains('/'));
            let repos = map.iter().filter(|(k, _)| *k != "*" && k.contains('/'));
            plank.default_decoration_config_entries = star
                .chain(orgs)
                .chain(repos)
                .map(|(k, c)| entry(k, c))
                .collect();
        } else {
            err(
                "plank.default_decoration_configs",
                "plank.default_decoration_configs and plank.default_decoration_config_entries are mutually exclusive, please use one or the other".to_owned(),
            );
        }
    }

    // github_reporter
    if pc.github_reporter.job_types_to_report.is_empty() {
        pc.github_reporter.job_types_to_report =
            vec![ProwJobType::Presubmit, ProwJobType::Postsubmit];
    }
    for t in &pc.github_reporter.job_types_to_report {
        if !matches!(t, ProwJobType::Presubmit | ProwJobType::Postsubmit) {
            err(
                "github_reporter.job_types_to_report",
                format!("invalid job_types_to_report: {t}"),
            );
        }
    }

    // sinker
    set_default(&mut pc.sinker.resync_period, 3600);
    set_default(&mut pc.sinker.max_prowjob_age, 7 * 24 * 3600);
    set_default(&mut pc.sinker.max_pod_age, 24 * 3600);
    if pc.sinker.terminated_pod_ttl.is_none() {
        pc.sinker.terminated_pod_ttl = pc.sinker.max_pod_age;
    }

    // namespaces, links, log level, timeouts
    if pc.prowjob_namespace.is_empty() {
        "default".clone_into(&mut pc.prowjob_namespace);
    }
    if pc.pod_namespace.is_empty() {
        "default".clone_into(&mut pc.pod_namespace);
    }
    if pc.github.link_url.is_empty() {
        "https://github.com".clone_into(&mut pc.github.link_url);
    }
    if let Err(e) = parse_url(&pc.github.link_url) {
        err(
            "github.link_url",
            format!("unable to parse github.link_url, might not be a valid url: {e}"),
        );
    }
    if pc.status_error_link.is_empty() {
        "https://github.com/kubernetes/test-infra/issues".clone_into(&mut pc.status_error_link);
    }
    if pc.log_level.is_empty() {
        "info".clone_into(&mut pc.log_level);
    }
    let level = pc.log_level.to_ascii_lowercase();
    if ![
        "panic", "fatal", "error", "warn", "warning", "info", "debug", "trace",
    ]
    .contains(&level.as_str())
    {
        err(
            "log_level",
            format!("not a valid logrus level: {:?}", pc.log_level),
        );
    }
    set_default(&mut pc.default_job_timeout, 24 * 3600);
    set_default(&mut pc.horologium.tick_interval, 60);

    // in_repo_config: `"*": []` disables the default global cluster.
    pc.in_repo_config
        .allowed_clusters
        .entry("*".to_owned())
        .or_insert_with(|| vec![DEFAULT_CLUSTER_ALIAS.to_owned()]);

    // pubsub
    if let Some(subs) = &pc.pubsub_subscriptions {
        if pc.pubsub_triggers.is_some() {
            err(
                "pubsub_subscriptions",
                "pubsub_subscriptions and pubsub_triggers are mutually exclusive".to_owned(),
            );
        } else {
            pc.pubsub_triggers = Some(
                subs.iter()
                    .map(|(project, topics)| PubSubTrigger {
                        project: project.clone(),
                        topics: topics.clone(),
                        allowed_clusters: vec!["*".to_owned()],
                        max_outstanding_messages: 0,
                    })
                    .collect(),
            );
        }
    }
    for trigger in pc.pubsub_triggers.iter_mut().flatten() {
        if trigger.max_outstanding_messages == 0 {
            trigger.max_outstanding_messages = 10;
        }
    }

    // slack_reporter_configs
    for (key, slack) in &mut pc.slack_reporter_configs {
        if slack.report_template.is_empty() {
            DEFAULT_SLACK_REPORT_TEMPLATE.clone_into(&mut slack.report_template);
        }
        if slack.channel.is_empty() {
            err(
                &format!("slack_reporter_configs[{key:?}].channel"),
                "failed to validate slackreporter config: channel must be set".to_owned(),
            );
        }
        if let Err(e) = check_go_template(&slack.report_template) {
            err(
                &format!("slack_reporter_configs[{key:?}].report_template"),
                format!("failed to parse template: {e}"),
            );
        }
    }

    // deck rerun auth: map xor entries; the map becomes entries ordered "", `*`, orgs, repos.
    let deck = &mut pc.deck;
    if !deck.rerun_auth_configs.is_empty() {
        if deck.default_rerun_auth_configs.is_empty() {
            let map = &deck.rerun_auth_configs;
            let entry = |k: &String, c: &RerunAuthConfig| DefaultRerunAuthConfigEntry {
                org_repo: k.clone(),
                cluster: String::new(),
                rerun_auth_configs: Some(c.clone()),
            };
            let first = map.iter().filter(|(k, _)| k.is_empty());
            let star = map.iter().filter(|(k, _)| *k == "*");
            let orgs = map
                .iter()
                .filter(|(k, _)| !k.is_empty() && *k != "*" && !k.contains('/'));
            let repos = map.iter().filter(|(k, _)| k.contains('/'));
            deck.default_rerun_auth_configs = first
                .chain(star)
                .chain(orgs)
                .chain(repos)
                .map(|(k, c)| entry(k, c))
                .collect();
        } else {
            err(
                "deck.rerun_auth_configs",
                "deck.rerun_auth_configs and deck.default_rerun_auth_configs are mutually exclusive, please use one or the other".to_owned(),
            );
        }
    }
    for (i, entry) in deck.default_rerun_auth_configs.iter().enumerate() {
        if let Some(Err(e)) = entry.rerun_auth_configs.as_ref().map(validate_rerun_auth) {
            err(&format!("deck.default_rerun_auth_configs[{i}]"), e);
        }
    }

    // gangway
    let mut declared: HashMap<String, ()> = HashMap::new();
    for (i, client) in pc.gangway.allowed_api_clients.iter().enumerate() {
        let field = format!("gangway.allowed_api_clients[{i}]");
        let Some(gcp) = &client.gcp else {
            err(
                &field,
                "allowed api client did not have a cloud vendor set".to_owned(),
            );
            continue;
        };
        if gcp.endpoint_api_consumer_type != "PROJECT" {
            err(
                &format!("{field}.gcp.endpoint_api_consumer_type"),
                format!(
                    "unsupported GCP API consumer type: {:?}",
                    gcp.endpoint_api_consumer_type
                ),
            );
        }
        let number = &gcp.endpoint_api_consumer_number;
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            err(
                &format!("{field}.gcp.endpoint_api_consumer_number"),
                format!("invalid endpoint_api_consumer_number: {number:?}"),
            );
        }
        if declared.insert(gcp.uuid(), ()).is_some() {
            err(
                &field,
                format!(
                    "allowed api client {:?} declared multiple times",
                    gcp.uuid()
                ),
            );
        }
        if client.allowed_jobs_filters.is_empty() {
            err(
                &format!("{field}.allowed_jobs_filters"),
                "allowed_jobs_filters field cannot be empty".to_owned(),
            );
        }
        for (j, filter) in client.allowed_jobs_filters.iter().enumerate() {
            if filter.tenant_id.is_empty() {
                err(
                    &format!("{field}.allowed_jobs_filters[{j}].tenant_id"),
                    "allowed_jobs_filters entry has an empty tenant_id".to_owned(),
                );
            }
        }
    }

    // gerrit (after every use of `err`, which borrows `problems`)
    if let Some(gerrit) = pc.gerrit.as_mut() {
        crate::gerrit::validate(gerrit, file, problems);
    }
}

// === job defaulting ===

/// Default trigger regex for a presubmit (the name is not escaped, as in Prow).
pub fn default_trigger_for(name: &str) -> String {
    format!(r"(?m)^/test( | .* ){name},?($|\s.*)")
}

/// Default rerun command for a presubmit.
pub fn default_rerun_command_for(name: &str) -> String {
    format!("/test {name}")
}

/// Compiles regexes once per distinct pattern.
#[derive(Default)]
pub(crate) struct RegexCache {
    compiled: HashMap<String, Result<Regex, String>>,
}

impl RegexCache {
    pub(crate) fn get(&mut self, pattern: &str) -> Result<Regex, String> {
        if let Some(r) = self.compiled.get(pattern) {
            return r.clone();
        }
        let r = Regex::new(pattern).map_err(|e| e.to_string());
        self.compiled.insert(pattern.to_owned(), r.clone());
        r
    }
}

/// `mergePreset`: applies one preset to a pod spec if its labels match.
fn merge_preset(
    preset: &Preset,
    labels: &BTreeMap<String, String>,
    spec: &mut PodSpec,
) -> Result<(), String> {
    if preset.labels.iter().any(|(k, v)| labels.get(k) != Some(v)) {
        return Ok(());
    }
    for e in &preset.env {
        for c in &mut spec.containers {
            let env = c.env.get_or_insert_with(Vec::new);
            if env.iter().any(|x| x.name == e.name) {
                return Err(format!("env var duplicated in pod spec: {}", e.name));
            }
            env.push(e.clone());
        }
    }
    for v in &preset.volumes {
        let volumes = spec.volumes.get_or_insert_with(Vec::new);
        if volumes.iter().any(|x| x.name == v.name) {
            return Err(format!("volume duplicated in pod spec: {}", v.name));
        }
        volumes.push(v.clone());
    }
    for m in &preset.volume_mounts {
        for c in &mut spec.containers {
            let mounts = c.volume_mounts.get_or_insert_with(Vec::new);
            if mounts.iter().any(|x| x.name == m.name) {
                return Err(format!("volume mount duplicated in pod spec: {}", m.name));
            }
            mounts.push(m.clone());
        }
    }
    for t in &preset.tolerations {
        let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
        if tolerations.contains(t) {
            return Err(format!("toleration duplicated in pod spec: {t:?}"));
        }
        tolerations.push(t.clone());
    }
    Ok(())
}

struct JobDefaulter<'a> {
    prow: &'a ProwConfig,
    presets: &'a [Preset],
    decorate_all: bool,
    regexes: RegexCache,
    decoration: HashMap<(String, String), Option<DecorationConfig>>,
    problems: &'a mut Vec<Problem>,
}

impl JobDefaulter<'_> {
    fn problem(&mut self, job: &JobBase, field: &str, message: String) {
        self.problems.push(Problem::job(
            &job.source_path,
            &job.name,
            Some(field.to_owned()),
            message,
        ));
    }

    /// `defaultJobBase`, then decoration, prowjob defaults and presets.
    fn job_base(&mut self, job: &mut JobBase, repo: &str) {
        if job.agent.is_empty() {
            agents::KUBERNETES.clone_into(&mut job.agent);
        }
        if job.namespace.as_deref().unwrap_or("").is_empty() {
            job.namespace = Some(self.prow.pod_namespace.clone());
        }
        if job.cluster.is_empty() {
            DEFAULT_CLUSTER_ALIAS.clone_into(&mut job.cluster);
        }
        let decorate = *job.decorate.get_or_insert(self.decorate_all);
        if decorate {
            let key = (repo.to_owned(), job.cluster.clone());
            let prow = self.prow;
            let defaults = self
                .decoration
                .entry(key)
                .or_insert_with(|| default_decoration_for(prow, repo, &job.cluster));
            let merged =
                apply_decoration_default(job.decoration_config.as_ref(), defaults.as_ref());
            job.decoration_config = Some(merged.unwrap_or_default());
        }
        job.prowjob_defaults = Some(merge_prowjob_defaults(
            self.prow,
            repo,
            &job.cluster,
            job.prowjob_defaults.as_ref(),
        ));
        if let Some(spec) = job.spec.as_mut() {
            for preset in self.presets {
                if let Err(e) = merge_preset(preset, &job.labels, spec) {
                    let msg = format!("failed to merge presets for podspec: {e}");
                    self.problems.push(Problem::job(
                        &job.source_path,
                        &job.name,
                        Some("spec".to_owned()),
                        msg,
                    ));
                    break;
                }
            }
        }
    }

    fn brancher(&mut self, job: &JobBase, b: &Brancher) {
        if !b.branches.is_empty() {
            match self.regexes.get(&b.branches.join("|")) {
                Ok(re) => b.re.set(Some(re)),
                Err(e) => self.problem(
                    job,
                    "branches",
                    format!("could not compile positive branch regex: {e}"),
                ),
            }
        }
        if !b.skip_branches.is_empty() {
            match self.regexes.get(&b.skip_branches.join("|")) {
                Ok(re) => b.re_skip.set(Some(re)),
                Err(e) => self.problem(
                    job,
                    "skip_branches",
                    format!("could not compile negative branch regex: {e}"),
                ),
            }
        }
    }

    fn change_matcher(&mut self, job: &JobBase, m: &RegexpChangeMatcher) {
        let (pattern, field) = if !m.run_if_changed.is_empty() {
            (&m.run_if_changed, "run_if_changed")
        } else if !m.skip_if_only_changed.is_empty() {
            (&m.skip_if_only_changed, "skip_if_only_changed")
        } else {
            return;
        };
        match self.regexes.get(pattern) {
            Ok(re) => m.re.set(Some(re)),
            Err(e) => self.problem(job, field, format!("could not compile {field} regex: {e}")),
        }
    }
}

/// Applies §3.6 to every job, in Prow's order: presubmits (by repo), postsubmits, periodics.
pub(crate) fn finalize_jobs(prow: &ProwConfig, jobs: &mut JobConfig, problems: &mut Vec<Problem>) {
    let presets = std::mem::take(&mut jobs.presets);
    let mut d = JobDefaulter {
        prow,
        presets: &presets,
        decorate_all: jobs.decorate_all_jobs,
        regexes: RegexCache::default(),
        decoration: HashMap::new(),
        problems,
    };
    for (repo, list) in &mut jobs.presubmits {
        for ps in list.iter_mut() {
            d.job_base(&mut ps.base, repo);
            if ps.context.is_empty() {
                ps.context.clone_from(&ps.base.name);
            }
            if ps.trigger.is_empty() && ps.rerun_command.is_empty() {
                ps.trigger = default_trigger_for(&ps.base.name);
                ps.rerun_command = default_rerun_command_for(&ps.base.name);
                // The default trigger always matches the default rerun command; it is compiled
                // on first use, which keeps loading thousands of jobs cheap.
            } else if !ps.trigger.is_empty() {
                match d.regexes.get(&ps.trigger) {
                    Ok(re) => {
                        if !re.is_match(&ps.rerun_command) {
                            d.problem(
                                &ps.base,
                                "rerun_command",
                                format!(
                                    "rerun command {:?} does not match trigger {:?}",
                                    ps.rerun_command, ps.trigger
                                ),
                            );
                        }
                        ps.trigger_re.set(Some(re));
                    }
                    Err(e) => d.problem(
                        &ps.base,
                        "trigger",
                        format!("could not compile trigger regex: {e}"),
                    ),
                }
            }
            d.brancher(&ps.base, &ps.brancher);
            d.change_matcher(&ps.base, &ps.change_matcher);
        }
    }
    for (repo, list) in &mut jobs.postsubmits {
        for ps in list.iter_mut() {
            d.job_base(&mut ps.base, repo);
            if ps.context.is_empty() {
                ps.context.clone_from(&ps.base.name);
            }
            d.brancher(&ps.base, &ps.brancher);
            d.change_matcher(&ps.base, &ps.change_matcher);
        }
    }
    for p in &mut jobs.periodics {
        let repo = p
            .base
            .extra_refs
            .first()
            .map(|r| format!("{}/{}", r.org, r.repo))
            .unwrap_or_default();
        d.job_base(&mut p.base, &repo);
    }
    jobs.presets = presets;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_matching_follows_prow() {
        // (entry repo, entry cluster, job repo, job cluster, expected)
        let cases = [
            ("", "", "org/repo", "default", true),
            ("*", "*", "org/repo", "default", true),
            ("org", "", "org/repo", "default", true),
            ("org/repo", "", "org/repo", "default", true),
            ("org/other", "", "org/repo", "default", false),
            ("other", "", "org/repo", "default", false),
            ("org", "build1", "org/repo", "default", false),
            ("org", "default", "org/repo", "default", true),
            ("host/repo", "", "https://host/repo", "default", true),
            ("host", "", "https://host/repo", "default", true),
            ("host/repo", "", "http://host/repo", "default", true),
            (
                "foo.googlesource.com/r",
                "",
                "https://foo-review.googlesource.com/r",
                "default",
                true,
            ),
            ("org", "", "", "default", false),
            ("*", "", "", "default", true),
        ];
        for (given_repo, given_cluster, repo, cluster, want) in cases {
            assert_eq!(
                entry_matches(given_repo, given_cluster, repo, cluster),
                want,
                "{given_repo:?} {given_cluster:?} vs {repo:?} {cluster:?}"
            );
        }
    }

    #[test]
    fn identifier_keys() {
        assert_eq!(
            keys_for_identifier("org/repo"),
            vec!["org/repo", "org", "*"]
        );
        assert_eq!(
            keys_for_identifier("https://host/repo"),
            vec![
                "https://host/repo",
                "host/repo",
                "https://host",
                "host",
                "*"
            ]
        );
    }
}
