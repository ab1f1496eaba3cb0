//! Job validation (reference §3.7 and §1.6 `Validate`). Every problem is collected.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use bosun_proto::downward::reserved_env_names;
use bosun_proto::labels::{GERRIT_REPORT_LABEL, RESERVED, is_qualified_name, is_valid_label_value};
use bosun_proto::prowjob::{DecorationConfig, GcsConfiguration, ProwJobType, Refs, agents};
use k8s_openapi::api::core::v1::{Container, PodSpec};

use crate::cron::parse_cron;
use crate::defaults::validate_rerun_auth;
use crate::error::Problem;
use crate::goish::{parse_media_type, parse_url};
use crate::jobs::{Brancher, JobBase, JobConfig, Periodic, PeriodicTimes, Postsubmit, Presubmit};
use crate::prow::ProwConfig;

/// Names of the pod-utility containers; job containers may not use them.
pub const RESERVED_CONTAINER_NAMES: [&str; 4] =
    ["clonerefs", "initupload", "place-entrypoint", "sidecar"];
/// Mount names of the test container that decoration owns.
const DECORATION_MOUNT_NAMES: [&str; 3] = ["logs", "tools", "code"];
/// Mount paths of the test container that decoration owns.
const DECORATION_MOUNT_PATHS: [&str; 3] = ["/logs", "/tools", "/home/prow/go"];

fn job_name_ok(name: &str, jenkins: bool) -> bool {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_';
    let bytes = name.as_bytes();
    if !jenkins {
        return !bytes.is_empty() && bytes.iter().all(|&b| ok(b));
    }
    // ^[A-Za-z0-9-._]([A-Za-z0-9-._/]*[A-Za-z0-9-_])?$
    match bytes {
        [] => false,
        [only] => ok(*only),
        [first, middle @ .., last] => {
            ok(*first)
                && middle.iter().all(|&b| ok(b) || b == b'/')
                && (last.is_ascii_alphanumeric() || *last == b'-' || *last == b'_')
        }
    }
}

/// Collects problems about one job.
pub(crate) struct JobSink<'a> {
    file: &'a Path,
    job: &'a str,
    problems: &'a mut Vec<Problem>,
}

impl JobSink<'_> {
    fn push(&mut self, field: Option<String>, message: impl Into<String>) {
        self.problems
            .push(Problem::job(self.file, self.job, field, message));
    }
    fn at(&mut self, field: &str, message: impl Into<String>) {
        self.push(Some(field.to_owned()), message);
    }
}

/// `DecorationConfig.Validate()`.
pub fn validate_decoration_config(dc: &DecorationConfig) -> Result<(), String> {
    let Some(images) = &dc.utility_images else {
        return Err("utility image config is not specified".to_owned());
    };
    let missing: Vec<&str> = [
        ("clonerefs", &images.clonerefs),
        ("initupload", &images.initupload),
        ("entrypoint", &images.entrypoint),
        ("sidecar", &images.sidecar),
    ]
    .into_iter()
    .filter(|(_, v)| v.is_empty())
    .map(|(k, _)| k)
    .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the following utility images are not specified: {missing:?}"
        ));
    }
    let Some(gcs) = &dc.gcs_configuration else {
        return Err("gcs upload configuration is not specified".to_owned());
    };
    validate_gcs(gcs).map_err(|e| format!("gcs configuration is invalid: {e}"))?;
    if dc.oauth_token_secret.is_some() && !dc.ssh_key_secrets.is_empty() {
        return Err("both oauth token and ssh key secrets are specified".to_owned());
    }
    Ok(())
}

/// `GCSConfiguration.Validate()`.
pub fn validate_gcs(g: &GcsConfiguration) -> Result<(), String> {
    let bucket = if g.bucket.contains("://") {
        g.bucket.clone()
    } else {
        format!("gs://{}", g.bucket)
    };
    if parse_url(&bucket).is_err() {
        return Err(format!(
            "path {bucket:?} has invalid format, expected either <bucket-name>[/<path>] or <storage-provider>://<bucket-name>[/<path>]"
        ));
    }
    for media_type in g.media_types.values() {
        if let Err(e) = parse_media_type(media_type) {
            return Err(format!("invalid extension media type {media_type:?}: {e}"));
        }
    }
    if !["legacy", "explicit", "single"].contains(&g.path_strategy.as_str()) {
        return Err(
            "gcs_path_strategy must be one of \"legacy\", \"explicit\", or \"single\"".to_owned(),
        );
    }
    if g.path_strategy != "explicit" && (g.default_org.is_empty() || g.default_repo.is_empty()) {
        return Err(format!(
            "default org and repo must be provided for GCS strategy {:?}",
            g.path_strategy
        ));
    }
    Ok(())
}

/// `validateAgent`: the first failing rule, like Prow's switch. Unknown agents warn.
fn validate_agent(
    job: &JobBase,
    pod_namespace: &str,
    sink: &mut JobSink<'_>,
    warnings: &mut Vec<Problem>,
) {
    let agent = job.agent.as_str();
    let k = agents::KUBERNETES;
    let p = agents::TEKTON_PIPELINE;
    let known = [k, agents::JENKINS, p];
    if !known.contains(&agent) {
        // bosun's own executors are known to bosun; only truly unknown agents warn.
        if agent != agents::DOCKER && agent != agents::LOCAL {
            warnings.push(Problem::job(
                sink.file,
                sink.job,
                Some("agent".to_owned()),
                format!("agent {agent:?} is unknown and cannot be validated: use at your own risk"),
            ));
        }
        return;
    }
    let namespace = job.namespace();
    let msg = if job.spec.is_some() && agent != k {
        format!("job specs require agent: {k} (found {agent:?})")
    } else if agent == k && job.spec.is_none() {
        "kubernetes jobs require a spec".to_owned()
    } else if job.has_pipeline_run_spec() && agent != p {
        format!("job pipeline_run_spec require agent: {p} (found {agent:?})")
    } else if agent == p && !job.has_pipeline_run_spec() {
        format!("agent: {p} jobs require a pipeline_run_spec")
    } else if job.decoration_config.is_some() && agent != k {
        format!("decoration requires agent: {k} (found {agent:?})")
    } else if job.error_on_eviction && agent != k {
        format!("error_on_eviction only applies to agent: {k} (found {agent:?})")
    } else if namespace.is_empty() {
        "failed to default namespace".to_owned()
    } else if namespace != pod_namespace && agent != p {
        format!("namespace customization requires agent: {p} (found {agent:?})")
    } else {
        return;
    };
    sink.at("agent", msg);
}

fn restartable_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// `validatePodSpec`.
fn validate_pod_spec(
    job_type: ProwJobType,
    spec: &PodSpec,
    dc: Option<&DecorationConfig>,
    sink: &mut JobSink<'_>,
) {
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        if !restartable_sidecar(c) {
            sink.at(
                &format!("spec.initContainers[{i}]"),
                "pod spec may only use init containers that are restartable sidecars (restartPolicy: Always)",
            );
        }
    }
    let n = spec.containers.len();
    if n < 1 {
        sink.at(
            "spec.containers",
            format!("pod spec must specify at least 1 container, found: {n}"),
        );
        return;
    }
    if n > 1 && dc.is_none() {
        sink.at(
            "spec.containers",
            format!("pod utility decoration must be enabled to use multiple containers: {n}"),
        );
        return;
    }
    if n > 1 {
        let mut names = HashSet::new();
        for (i, c) in spec.containers.iter().enumerate() {
            let field = format!("spec.containers[{i}].name");
            if c.name.is_empty() {
                sink.at(&field, "container does not have name. all containers must have names when defining multiple containers");
            }
            if !names.insert(c.name.as_str()) {
                sink.at(
                    &field,
                    format!("container named {:?} is defined more than once", c.name),
                );
            }
            if RESERVED_CONTAINER_NAMES.contains(&c.name.as_str()) {
                sink.at(
                    &field,
                    format!("container name {} is a reserved for decoration. please specify a different container name that does not conflict with pod utility container names", c.name),
                );
            }
        }
    }
    let reserved_env = reserved_env_names(job_type);
    for (i, c) in spec.containers.iter().enumerate() {
        let mut env_names = HashSet::new();
        for (j, env) in c.env.iter().flatten().enumerate() {
            let field = format!("spec.containers[{i}].env[{j}]");
            if !env_names.insert(env.name.as_str()) {
                sink.at(
                    &field,
                    format!("env var named {:?} is defined more than once", env.name),
                );
            }
            if reserved_env.contains(&env.name.as_str()) {
                sink.at(&field, format!("env {} is reserved", env.name));
            }
        }
    }
    let mut decoration_volumes: Vec<String> =
        ["logs", "code", "tools", "gcs-credentials", "s3-credentials"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
    if let Some(dc) = dc {
        if let Some(oauth) = &dc.oauth_token_secret {
            decoration_volumes.push(oauth.name.clone());
        }
        for ssh in &dc.ssh_key_secrets {
            decoration_volumes.push(format!("ssh-keys-{ssh}"));
        }
    }
    let mut volume_names = HashSet::new();
    for (i, v) in spec.volumes.iter().flatten().enumerate() {
        let field = format!("spec.volumes[{i}]");
        if !volume_names.insert(v.name.as_str()) {
            sink.at(
                &field,
                format!("volume named {:?} is defined more than once", v.name),
            );
        }
        if decoration_volumes.contains(&v.name) {
            sink.at(
                &field,
                format!("volume {} is a reserved for decoration", v.name),
            );
        }
    }
    for (i, c) in spec.containers.iter().enumerate() {
        for (j, m) in c.volume_mounts.iter().flatten().enumerate() {
            let field = format!("spec.containers[{i}].volumeMounts[{j}]");
            if !volume_names.contains(m.name.as_str()) && !decoration_volumes.contains(&m.name) {
                sink.at(
                    &field,
                    format!("volumeMount named {:?} is undefined", m.name),
                );
            }
            if DECORATION_MOUNT_NAMES.contains(&m.name.as_str()) {
                sink.at(
                    &field,
                    format!("volumeMount name {} is reserved for decoration", m.name),
                );
            }
            if DECORATION_MOUNT_PATHS.contains(&m.mount_path.as_str()) {
                sink.at(
                    &field,
                    format!(
                        "mount {} at {} conflicts with decoration mount",
                        m.name, m.mount_path
                    ),
                );
            }
        }
    }
}

/// `ValidatePipelineRunSpec` over the untyped Tekton spec.
fn validate_pipeline_run_spec(
    job_type: ProwJobType,
    extra_refs: &[Refs],
    spec: &serde_json::Value,
    sink: &mut JobSink<'_>,
) {
    let mut indexes: Vec<usize> = Vec::new();
    let tasks = spec
        .pointer("/pipelineSpec/tasks")
        .and_then(|t| t.as_array())
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for task in tasks {
        let task_ref = task
            .pointer("/taskRef/name")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let task_name = task.get("name").and_then(|v| v.as_str()).unwrap_or("");
        if job_type == ProwJobType::Periodic && task_ref == "PROW_IMPLICIT_GIT_REF" {
            sink.at(
                "pipeline_run_spec",
                "periodic jobs do not have an implicit git ref to replace PROW_IMPLICIT_GIT_REF",
            );
            return;
        }
        let Some(pos) = task_ref.find("PROW_EXTRA_GIT_REF_") else {
            continue;
        };
        let digits: String = task_ref[pos + "PROW_EXTRA_GIT_REF_".len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if digits.is_empty() {
            continue;
        }
        if digits.len() > 1 && digits.starts_with('0') {
            sink.at(
                "pipeline_run_spec",
                format!("task {task_name:?}: leading zeros are not allowed in PROW_EXTRA_GIT_REF_* indexes"),
            );
            return;
        }
        if let Ok(i) = digits.parse::<usize>()
            && !indexes.contains(&i)
        {
            indexes.push(i);
        }
    }
    for i in 0..extra_refs.len() {
        if !indexes.contains(&i) {
            sink.at(
                "pipeline_run_spec",
                format!(
                    "extra_refs[{i}] is not used; some task must reference PROW_EXTRA_GIT_REF_{i}"
                ),
            );
            return;
        }
    }
    if extra_refs.len() != indexes.len() {
        indexes.sort_unstable();
        let used: Vec<String> = indexes.iter().map(ToString::to_string).collect();
        sink.at(
            "pipeline_run_spec",
            format!(
                "{} extra_refs are specified, but the following PROW_EXTRA_GIT_REF_* indexes are used: {}",
                extra_refs.len(),
                used.join(", ")
            ),
        );
    }
}

fn validate_clone_uri(uri: &str, oauth: bool) -> Result<(), String> {
    if uri.is_empty() {
        return Ok(());
    }
    let without_user = uri.split_once('@').map_or(uri, |(_, rest)| rest);
    let parsed =
        parse_url(without_user).map_err(|e| format!("couldn't parse uri from clone_uri: {e}"))?;
    if oauth && parsed.scheme != "http" && parsed.scheme != "https" {
        return Err(format!(
            "scheme must be http or https when OAuth secret is specified: {without_user}"
        ));
    }
    Ok(())
}

/// `ValidateRefs`: the job's repo must not be an extra ref, and no extra ref repeats.
fn validate_refs(repo: Option<&str>, job: &JobBase, sink: &mut JobSink<'_>) {
    let mut counts: HashMap<String, usize> = HashMap::new();
    if let Some(repo) = repo {
        counts.insert(repo.to_owned(), 1);
    }
    for r in &job.extra_refs {
        *counts.entry(format!("{}/{}", r.org, r.repo)).or_default() += 1;
    }
    let mut dupes: Vec<&String> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    if !dupes.is_empty() {
        dupes.sort();
        let list: Vec<&str> = dupes.iter().map(|s| s.as_str()).collect();
        sink.at(
            "extra_refs",
            format!(
                "the following refs specified more than once: {}",
                list.join(",")
            ),
        );
    }
}

/// `validateJobBase`, collecting every problem instead of the first.
fn validate_job_base(
    prow: &ProwConfig,
    job: &JobBase,
    job_type: ProwJobType,
    repo: Option<&str>,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) {
    let mut sink = JobSink {
        file: &job.source_path,
        job: &job.name,
        problems,
    };
    let jenkins = job.agent == agents::JENKINS;
    if !job_name_ok(&job.name, jenkins) {
        let re = if jenkins {
            "^[A-Za-z0-9-._]([A-Za-z0-9-._/]*[A-Za-z0-9-_])?$"
        } else {
            "^[A-Za-z0-9-._]+$"
        };
        sink.at("name", format!("must match regex {re:?}"));
    }
    if job.max_concurrency < 0 {
        sink.at(
            "max_concurrency",
            format!("{} must be a non-negative number", job.max_concurrency),
        );
    }
    validate_agent(job, &prow.pod_namespace, &mut sink, warnings);
    if let Some(spec) = &job.spec {
        validate_pod_spec(job_type, spec, job.decoration_config.as_ref(), &mut sink);
    }
    if job.agent == agents::TEKTON_PIPELINE
        && let Some(spec) = job.pipeline_run_spec()
    {
        validate_pipeline_run_spec(job_type, &job.extra_refs, spec, &mut sink);
    }
    for (key, value) in &job.labels {
        let field = format!("labels[{key:?}]");
        if RESERVED.contains(&key.as_str()) {
            sink.at(&field, format!("label {key} is reserved for decoration"));
        } else if !is_qualified_name(key) {
            sink.at(&field, format!("invalid label {key}: not a qualified name"));
        } else if !is_valid_label_value(value) {
            sink.at(
                &field,
                format!("label {key} has invalid value {value}: must be 63 characters or less, begin and end with an alphanumeric character, and contain only alphanumerics, '-', '_' or '.'"),
            );
        }
    }
    for key in job.annotations.keys() {
        if !is_qualified_name(key) {
            sink.at(
                &format!("annotations[{key:?}]"),
                format!("invalid annotation key {key:?}: not a qualified name"),
            );
        }
    }
    if !job.job_queue_name.is_empty()
        && !prow
            .plank
            .job_queue_capacities
            .contains_key(&job.job_queue_name)
    {
        sink.at(
            "job_queue_name",
            format!("invalid job queue name {}", job.job_queue_name),
        );
    }
    if let Some(Err(e)) = job.rerun_auth_config.as_ref().map(validate_rerun_auth) {
        sink.at("rerun_auth_config", e);
    }
    let oauth = job
        .decoration_config
        .as_ref()
        .is_some_and(|d| d.oauth_token_secret.is_some());
    if let Err(e) = validate_clone_uri(&job.clone_uri, oauth) {
        sink.at("clone_uri", e);
    }
    for (i, r) in job.extra_refs.iter().enumerate() {
        if let Err(e) = validate_clone_uri(&r.clone_uri, oauth) {
            sink.at(&format!("extra_refs[{i}].clone_uri"), e);
        }
    }
    validate_refs(repo, job, &mut sink);
    let containers = job
        .spec
        .as_ref()
        .map_or(&[][..], |s| s.containers.as_slice());
    if let (Some(dc), false) = (&job.decoration_config, containers.is_empty()) {
        if let Err(e) = validate_decoration_config(dc) {
            sink.at(
                "decoration_config",
                format!("invalid decoration config: {e}"),
            );
        }
        for (i, c) in containers.iter().enumerate() {
            let first = c
                .command
                .iter()
                .flatten()
                .chain(c.args.iter().flatten())
                .next();
            if first.is_none_or(|a| a.is_empty()) {
                sink.at(
                    &format!("spec.containers[{i}]"),
                    "decorated job containers must specify command and/or args",
                );
            }
        }
    }
}

fn validate_reporting(job: &JobBase, context: &str, skip_report: bool, sink: &mut JobSink<'_>) {
    if !skip_report && context.is_empty() {
        sink.at(
            "context",
            "job is set to report but has no context configured",
        );
    }
    if skip_report
        && let Some(v) = job
            .labels
            .get(GERRIT_REPORT_LABEL)
            .filter(|v| !v.is_empty())
    {
        sink.at(
                &format!("labels[{GERRIT_REPORT_LABEL:?}]"),
                format!("gerrit report label {GERRIT_REPORT_LABEL} set to non-empty string {v:?} but job is configured to skip reporting"),
            );
    }
}

fn change_filters_exclusive(
    always_run: bool,
    run_if_changed: &str,
    skip_if_only_changed: &str,
    sink: &mut JobSink<'_>,
) {
    if always_run && !run_if_changed.is_empty() {
        sink.at(
            "always_run",
            "job is set to always run but also declares run_if_changed targets, which are mutually exclusive",
        );
    } else if always_run && !skip_if_only_changed.is_empty() {
        sink.at(
            "always_run",
            "job is set to always run but also declares skip_if_only_changed targets, which are mutually exclusive",
        );
    } else if !run_if_changed.is_empty() && !skip_if_only_changed.is_empty() {
        sink.at(
            "run_if_changed",
            "job declares run_if_changed and skip_if_only_changed, which are mutually exclusive",
        );
    }
}

/// A job of one repo as the duplicate checks see it.
struct RepoJob<'a> {
    base: &'a JobBase,
    brancher: &'a Brancher,
    context: &'a str,
}

/// Same name with intersecting branches → duplicate; different names, same context and
/// intersecting branches → context clash. Grouped by name and by context, so the work is
/// linear in the number of jobs unless many jobs share a name or context.
fn repo_duplicates(kind: &str, jobs: &[RepoJob<'_>], problems: &mut Vec<Problem>) {
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_context: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, j) in jobs.iter().enumerate() {
        by_name.entry(j.base.name.as_str()).or_default().push(i);
        by_context.entry(j.context).or_default().push(i);
    }
    for (i, j) in jobs.iter().enumerate() {
        let same_name = &by_name[j.base.name.as_str()];
        if let Some(&earlier) = same_name
            .iter()
            .take_while(|&&k| k < i)
            .find(|&&k| jobs[k].brancher.intersects(j.brancher))
        {
            problems.push(Problem::job(
                &j.base.source_path,
                &j.base.name,
                None,
                format!(
                    "duplicated {kind} job (same name and intersecting branches as the job in {})",
                    jobs[earlier].base.source_path.display()
                ),
            ));
        }
        for &k in by_context[j.context].iter().take_while(|&&k| k < i) {
            let other = &jobs[k];
            if other.base.name != j.base.name && other.brancher.intersects(j.brancher) {
                problems.push(Problem::job(
                    &j.base.source_path,
                    &j.base.name,
                    Some("context".to_owned()),
                    format!(
                        "jobs {} and {} report to the same GitHub context {:?}",
                        other.base.name, j.base.name, j.context
                    ),
                ));
            }
        }
    }
}

fn validate_presubmits(
    prow: &ProwConfig,
    repo: &str,
    jobs: &[Presubmit],
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) {
    let view: Vec<RepoJob<'_>> = jobs
        .iter()
        .map(|j| RepoJob {
            base: &j.base,
            brancher: &j.brancher,
            context: &j.context,
        })
        .collect();
    repo_duplicates("presubmit", &view, problems);
    for ps in jobs {
        validate_job_base(
            prow,
            &ps.base,
            ProwJobType::Presubmit,
            Some(repo),
            problems,
            warnings,
        );
        let mut sink = JobSink {
            file: &ps.base.source_path,
            job: &ps.base.name,
            problems,
        };
        change_filters_exclusive(
            ps.always_run,
            &ps.change_matcher.run_if_changed,
            &ps.change_matcher.skip_if_only_changed,
            &mut sink,
        );
        if ps.trigger.is_empty() != ps.rerun_command.is_empty() {
            sink.at(
                "trigger",
                "either both of trigger and rerun_command must be set, or neither",
            );
        }
        validate_reporting(&ps.base, &ps.context, ps.skip_report, &mut sink);
    }
}

fn validate_postsubmits(
    prow: &ProwConfig,
    repo: &str,
    jobs: &[Postsubmit],
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) {
    let view: Vec<RepoJob<'_>> = jobs
        .iter()
        .map(|j| RepoJob {
            base: &j.base,
            brancher: &j.brancher,
            context: &j.context,
        })
        .collect();
    repo_duplicates("postsubmit", &view, problems);
    for ps in jobs {
        validate_job_base(
            prow,
            &ps.base,
            ProwJobType::Postsubmit,
            Some(repo),
            problems,
            warnings,
        );
        let mut sink = JobSink {
            file: &ps.base.source_path,
            job: &ps.base.name,
            problems,
        };
        change_filters_exclusive(
            ps.always_run == Some(true),
            &ps.change_matcher.run_if_changed,
            &ps.change_matcher.skip_if_only_changed,
            &mut sink,
        );
        validate_reporting(&ps.base, &ps.context, ps.skip_report, &mut sink);
    }
}

fn parse_duration_field(
    value: &str,
    field: &str,
    sink: &mut JobSink<'_>,
    what: &str,
) -> Option<std::time::Duration> {
    match bosun_proto::duration::parse_go_duration(value) {
        Ok(d) => Some(d),
        Err(e) => {
            sink.at(field, format!("cannot parse {what}: {e}"));
            None
        }
    }
}

fn validate_periodics(
    prow: &ProwConfig,
    jobs: &mut [Periodic],
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) {
    let mut seen: HashMap<String, std::path::PathBuf> = HashMap::new();
    for p in jobs.iter_mut() {
        if let Some(first) = seen.get(&p.base.name) {
            problems.push(Problem::job(
                &p.base.source_path,
                &p.base.name,
                None,
                format!(
                    "duplicated periodic job (also defined in {})",
                    first.display()
                ),
            ));
        } else {
            seen.insert(p.base.name.clone(), p.base.source_path.clone());
        }
        validate_job_base(
            prow,
            &p.base,
            ProwJobType::Periodic,
            None,
            problems,
            warnings,
        );
        let mut sink = JobSink {
            file: &p.base.source_path,
            job: &p.base.name,
            problems,
        };
        let mut times = PeriodicTimes::default();
        let set = [&p.cron, &p.interval, &p.minimum_interval]
            .iter()
            .filter(|s| !s.is_empty())
            .count();
        if set > 1 {
            sink.at(
                "cron",
                "cron, interval, and minimum_interval are mutually exclusive",
            );
        } else if set == 0 {
            sink.at(
                "cron",
                "at least one of cron, interval, or minimum_interval must be set",
            );
        } else {
            if !p.cron.is_empty() {
                match parse_cron(&p.cron) {
                    Ok(c) => times.cron = Some(c),
                    Err(e) => sink.at("cron", format!("invalid cron string {}: {e}", p.cron)),
                }
            }
            if !p.interval.is_empty() {
                times.interval =
                    parse_duration_field(&p.interval, "interval", &mut sink, "duration");
            }
            if !p.minimum_interval.is_empty() {
                times.minimum_interval = parse_duration_field(
                    &p.minimum_interval,
                    "minimum_interval",
                    &mut sink,
                    "duration",
                );
            }
            if let Some(retry) = &p.retry {
                times.retry_interval = parse_duration_field(
                    &retry.interval,
                    "retry.interval",
                    &mut sink,
                    "retry duration",
                );
            }
        }
        p.parsed = times;
    }
}

/// Validates every job (after defaulting).
pub(crate) fn validate_jobs(
    prow: &ProwConfig,
    jobs: &mut JobConfig,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) {
    for (repo, list) in &jobs.presubmits {
        validate_presubmits(prow, repo, list, problems, warnings);
    }
    for (repo, list) in &jobs.postsubmits {
        validate_postsubmits(prow, repo, list, problems, warnings);
    }
    validate_periodics(prow, &mut jobs.periodics, problems, warnings);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names() {
        assert!(job_name_ok("pull-test-infra_1.2", false));
        assert!(!job_name_ok("a/b", false));
        assert!(!job_name_ok("", false));
        assert!(job_name_ok("folder/job", true));
        assert!(!job_name_ok("folder/", true));
        assert!(!job_name_ok("job.", true));
        assert!(job_name_ok("j", true));
    }
}
