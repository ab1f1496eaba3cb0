//! Prow's downward API: the environment every test process gets (reference §1.16, agents §2.4).

use serde::Serialize;

use crate::prowjob::{DecorationConfig, ProwJob, ProwJobType, Refs};

/// `JOB_SPEC`: the compact JSON Prow hands to every job.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JobSpec<'a> {
    /// Job type.
    #[serde(rename = "type")]
    pub r#type: ProwJobType,
    /// Job name.
    pub job: &'a str,
    /// Build id.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub buildid: &'a str,
    /// ProwJob name.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub prowjobid: &'a str,
    /// Main refs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refs: Option<&'a Refs>,
    /// Extra refs.
    #[serde(skip_serializing_if = "<[Refs]>::is_empty")]
    pub extra_refs: &'a [Refs],
    /// Decoration config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decoration_config: Option<&'a DecorationConfig>,
}

impl<'a> JobSpec<'a> {
    /// The JOB_SPEC of a ProwJob with the given build id.
    pub fn for_job(job: &'a ProwJob, build_id: &'a str) -> Self {
        Self {
            r#type: job.spec.r#type,
            job: &job.spec.job,
            buildid: build_id,
            prowjobid: job.name(),
            refs: job.spec.refs.as_ref(),
            extra_refs: &job.spec.extra_refs,
            decoration_config: job.spec.decoration_config.as_ref(),
        }
    }

    /// Compact JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Env names the downward API sets for a job type; jobs may not define them.
pub fn reserved_env_names(job_type: ProwJobType) -> Vec<&'static str> {
    let mut names = vec![
        "CI",
        "JOB_NAME",
        "JOB_SPEC",
        "JOB_TYPE",
        "PROW_JOB_ID",
        "BUILD_ID",
        "BUILD_NUMBER",
    ];
    if job_type != ProwJobType::Periodic {
        names.extend([
            "REPO_OWNER",
            "REPO_NAME",
            "PULL_BASE_REF",
            "PULL_BASE_SHA",
            "PULL_REFS",
            "SRC_HOST",
            "SRC_BASE",
        ]);
    }
    if job_type == ProwJobType::Presubmit {
        names.extend([
            "PULL_NUMBER",
            "PULL_PULL_SHA",
            "PULL_HEAD_REF",
            "PULL_TITLE",
        ]);
    }
    names
}

/// `EnvForSpec`: the downward-API variables, sorted by name as Prow emits them.
/// `kubernetes_agent` adds the deprecated `BUILD_NUMBER`.
pub fn env_for_job(job: &ProwJob, build_id: &str, kubernetes_agent: bool) -> Vec<(String, String)> {
    let spec = &job.spec;
    let mut env: Vec<(String, String)> = vec![
        ("BUILD_ID".into(), build_id.into()),
        ("CI".into(), "true".into()),
        ("JOB_NAME".into(), spec.job.clone()),
        ("JOB_SPEC".into(), JobSpec::for_job(job, build_id).to_json()),
        ("JOB_TYPE".into(), spec.r#type.as_str().into()),
        ("PROW_JOB_ID".into(), job.name().into()),
    ];
    if kubernetes_agent {
        env.push(("BUILD_NUMBER".into(), build_id.into()));
    }
    if spec.r#type != ProwJobType::Periodic
        && let Some(refs) = spec.refs.as_ref()
    {
        env.push(("REPO_OWNER".into(), refs.org.clone()));
        env.push(("REPO_NAME".into(), refs.repo.clone()));
        env.push(("PULL_BASE_REF".into(), refs.base_ref.clone()));
        env.push(("PULL_BASE_SHA".into(), refs.base_sha.clone()));
        env.push(("PULL_REFS".into(), refs.to_refs_string()));
        let (host, base) = src_host_and_base(refs);
        env.push(("SRC_HOST".into(), host));
        env.push(("SRC_BASE".into(), base));
        if spec.r#type == ProwJobType::Presubmit
            && let Some(pull) = refs.pulls.first()
        {
            env.push(("PULL_NUMBER".into(), pull.number.to_string()));
            env.push(("PULL_PULL_SHA".into(), pull.sha.clone()));
            env.push(("PULL_HEAD_REF".into(), pull.head_ref.clone()));
            env.push(("PULL_TITLE".into(), pull.title.clone()));
        }
    }
    env.sort_by(|a, b| a.0.cmp(&b.0));
    env
}

fn src_host_and_base(refs: &Refs) -> (String, String) {
    if !refs.path_alias.is_empty() {
        return split_host(&refs.path_alias);
    }
    if !refs.repo_link.is_empty() {
        let link = refs
            .repo_link
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        return split_host(link);
    }
    ("github.com".into(), format!("{}/{}", refs.org, refs.repo))
}

fn split_host(s: &str) -> (String, String) {
    match s.split_once('/') {
        Some((h, rest)) => (h.to_owned(), rest.to_owned()),
        None => (s.to_owned(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prowjob::{ProwJobSpec, Pull};

    fn job(t: ProwJobType) -> ProwJob {
        let mut pj = ProwJob::new(
            "pj-1",
            ProwJobSpec {
                r#type: t,
                job: "unit".into(),
                refs: Some(Refs {
                    org: "org".into(),
                    repo: "repo".into(),
                    base_ref: "main".into(),
                    base_sha: "abc".into(),
                    pulls: vec![Pull {
                        number: 5,
                        author: "me".into(),
                        sha: "def".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                ..Default::default()
            },
        );
        pj.metadata.name = Some("pj-1".into());
        pj
    }

    #[test]
    fn presubmit_env() {
        let env = env_for_job(&job(ProwJobType::Presubmit), "7", false);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("PULL_REFS"), Some("main:abc,5:def"));
        assert_eq!(get("PULL_NUMBER"), Some("5"));
        assert_eq!(get("SRC_HOST"), Some("github.com"));
        assert_eq!(get("SRC_BASE"), Some("org/repo"));
        assert_eq!(get("BUILD_NUMBER"), None);
        let spec = get("JOB_SPEC").unwrap_or_default();
        assert!(
            spec.starts_with(
                r#"{"type":"presubmit","job":"unit","buildid":"7","prowjobid":"pj-1","refs":"#
            ),
            "{spec}"
        );
        let names: Vec<_> = env.iter().map(|(n, _)| n.clone()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }

    #[test]
    fn postsubmit_has_no_pull_vars() {
        let env = env_for_job(&job(ProwJobType::Postsubmit), "7", true);
        assert!(env.iter().all(|(n, _)| n != "PULL_NUMBER"));
        assert!(env.iter().any(|(n, _)| n == "BUILD_NUMBER"));
    }
}
