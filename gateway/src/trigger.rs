//! Building ProwJobs from configured jobs (the Trigger RPC), the way gangway's
//! `HandleProwJob` and `pjutil.NewProwJob` do (reference §1.14, §2.4).

use std::collections::BTreeMap;
use std::time::Duration;

use bosun_gateway_config::{
    LoadedConfig, batch_spec, new_prowjob, periodic_spec, postsubmit_spec, presubmit_spec,
};
use bosun_proto::api::TriggerRequest;
use bosun_proto::{ProwJob, ProwJobType, Pull, Refs};
use k8s_openapi::api::core::v1::EnvVar;

use crate::dispatcher::DispatcherConfig;
use crate::triggers::ConfigHandle;

/// Why a Trigger request was refused.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// The gateway was started without job configuration.
    #[error(
        "this gateway has no job configuration (start it with --config-path and --job-config-path)"
    )]
    NoConfig,
    /// No configured job matches.
    #[error("{0}")]
    NotFound(String),
    /// The request itself is malformed.
    #[error("{0}")]
    Invalid(String),
}

/// Builds ProwJobs from the configuration in force (reloads included).
pub struct Triggerer {
    config: ConfigHandle,
}

impl Triggerer {
    /// A triggerer over the live configuration (or none).
    pub fn new(config: ConfigHandle) -> Self {
        Self { config }
    }

    /// The ProwJob a Trigger request asks for, ready to store.
    pub fn build(&self, req: &TriggerRequest) -> Result<ProwJob, TriggerError> {
        let config = self.config.current().ok_or(TriggerError::NoConfig)?;
        let config = &*config;
        if req.job.is_empty() {
            return Err(TriggerError::Invalid("job: required".into()));
        }
        let job_type: ProwJobType = req
            .r#type
            .parse()
            .map_err(|e| TriggerError::Invalid(format!("type: {e}")))?;
        let not_found =
            |e: bosun_gateway_config::LookupError| TriggerError::NotFound(e.to_string());
        let (spec, mut labels, mut annotations) = match job_type {
            ProwJobType::Periodic => {
                if req.refs.is_some() {
                    return Err(TriggerError::Invalid(
                        "refs: periodic jobs take no refs".into(),
                    ));
                }
                let job = config.find_periodic(&req.job).map_err(not_found)?;
                (
                    periodic_spec(job),
                    job.base.labels.clone(),
                    job.base.annotations.clone(),
                )
            }
            other => {
                let refs = refs_from_request(req, other)?;
                let org_repo = format!("{}/{}", refs.org, refs.repo);
                match other {
                    ProwJobType::Postsubmit => {
                        let job = config
                            .find_postsubmit(&org_repo, &refs.base_ref, &req.job)
                            .map_err(not_found)?;
                        (
                            postsubmit_spec(job, refs),
                            job.base.labels.clone(),
                            job.base.annotations.clone(),
                        )
                    }
                    _ => {
                        let job = config
                            .find_presubmit(&org_repo, &refs.base_ref, &req.job)
                            .map_err(not_found)?;
                        let spec = if other == ProwJobType::Batch {
                            batch_spec(job, refs)
                        } else {
                            presubmit_spec(job, refs)
                        };
                        (spec, job.base.labels.clone(), job.base.annotations.clone())
                    }
                }
            }
        };
        for (k, v) in &req.labels {
            if k.is_empty() || v.is_empty() || !bosun_proto::labels::is_valid_label_value(v) {
                return Err(TriggerError::Invalid(format!(
                    "labels[{k:?}]: {v:?} is not a valid label value"
                )));
            }
            labels.insert(k.clone(), v.clone());
        }
        for (k, v) in &req.annotations {
            if k.is_empty() {
                return Err(TriggerError::Invalid("annotations: empty key".into()));
            }
            annotations.insert(k.clone(), v.clone());
        }
        let labels: BTreeMap<String, String> = labels.into_iter().collect();
        let annotations: BTreeMap<String, String> = annotations.into_iter().collect();
        let mut spec = spec;
        if !req.agent.is_empty() {
            spec.agent = req.agent.clone();
        }
        let mut job = new_prowjob(spec, &labels, &annotations, config.prow().scheduler.enabled);
        job.metadata.namespace = Some(prowjob_namespace(config));
        if let Some(pod) = job.spec.pod_spec.as_mut() {
            for c in &mut pod.containers {
                let env = c.env.get_or_insert_with(Vec::new);
                for (k, v) in &req.env {
                    if k.is_empty() {
                        return Err(TriggerError::Invalid("env: empty name".into()));
                    }
                    env.push(EnvVar {
                        name: k.clone(),
                        value: Some(v.clone()),
                        ..Default::default()
                    });
                }
            }
        }
        Ok(job)
    }
}

fn refs_from_request(req: &TriggerRequest, job_type: ProwJobType) -> Result<Refs, TriggerError> {
    let r = req
        .refs
        .as_ref()
        .ok_or_else(|| TriggerError::Invalid(format!("refs: required for {job_type} jobs")))?;
    for (field, value) in [
        ("refs.org", &r.org),
        ("refs.repo", &r.repo),
        ("refs.base_ref", &r.base_ref),
    ] {
        if value.is_empty() {
            return Err(TriggerError::Invalid(format!("{field}: required")));
        }
    }
    if job_type != ProwJobType::Postsubmit && r.pulls.is_empty() {
        return Err(TriggerError::Invalid(format!(
            "refs.pulls: {job_type} jobs need at least one pull"
        )));
    }
    Ok(Refs {
        org: r.org.clone(),
        repo: r.repo.clone(),
        repo_link: r.repo_link.clone(),
        base_ref: r.base_ref.clone(),
        base_sha: r.base_sha.clone(),
        base_link: r.base_link.clone(),
        path_alias: r.path_alias.clone(),
        clone_uri: r.clone_uri.clone(),
        pulls: r
            .pulls
            .iter()
            .map(|p| Pull {
                number: p.number,
                author: p.author.clone(),
                sha: p.sha.clone(),
                title: p.title.clone(),
                r#ref: p.r#ref.clone(),
                head_ref: p.head_ref.clone(),
                link: p.link.clone(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    })
}

/// `prowjob_namespace`, `default` when unset.
pub fn prowjob_namespace(config: &LoadedConfig) -> String {
    let ns = &config.prow().prowjob_namespace;
    if ns.is_empty() {
        "default".into()
    } else {
        ns.clone()
    }
}

/// The dispatcher limits from the `plank` block.
pub fn dispatcher_config(config: &LoadedConfig) -> DispatcherConfig {
    let plank = &config.prow().plank;
    let mut out = DispatcherConfig {
        max_concurrency: usize::try_from(plank.max_concurrency).unwrap_or(0),
        job_queue_capacities: plank.job_queue_capacities.clone().into_iter().collect(),
        ..DispatcherConfig::default()
    };
    if let Some(d) = plank.pod_pending_timeout {
        out.pod_pending_timeout = d.get();
    }
    if let Some(d) = plank.pod_running_timeout {
        out.pod_running_timeout = d.get();
    }
    if let Some(n) = plank.max_revivals {
        out.max_revivals = i32::try_from(n).unwrap_or(i32::MAX).max(0);
    }
    out.max_backoff = Duration::from_secs(30);
    out
}
