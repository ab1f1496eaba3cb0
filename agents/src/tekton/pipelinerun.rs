//! ProwJob → PipelineRun, as Prow's `makePipelineRun` (reference prow-agents §3.3), with the
//! implicit git refs made into a task Tekton v1 accepts.
//!
//! - **Spec**: `tekton_pipeline_run_spec.v1beta1` (a v1 spec despite the key), else
//!   `pipeline_run_spec`, read into the typed [`PipelineRunSpec`]; an unknown field is an error
//!   naming it (Prow drops it silently).
//! - **Metadata**: name = ProwJob name; namespace = `spec.namespace`, else the pod namespace;
//!   labels and annotations exactly as the job's pod would get (§1.6).
//! - **Params**: every downward-API variable (§2.4), sorted by name, appended as a string param,
//!   unless the spec already sets a param of that name (Prow appends a duplicate).
//! - **Git refs**: a pipeline task whose `taskRef.name` is `PROW_IMPLICIT_GIT_REF` (the job's
//!   `refs`) or `PROW_EXTRA_GIT_REF_<n>` (`extra_refs[n]`) becomes a `git-clone` task with the
//!   string params `url` and `revision`. It keeps its name (else gets
//!   `prow-implicit-git-ref` / `prow-extra-git-ref-<n>`) and its other fields (workspaces,
//!   runAfter, other params). Prow's replacement has no name and untyped params, which Tekton v1
//!   refuses.

use std::collections::BTreeSet;

use bosun_proto::prowjob::{ProwJob, ProwJobType, Refs};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::types::{Param, PipelineRun, PipelineRunSpec, PipelineTask, TaskRef};
use crate::kubernetes::decorate::{self, labels_and_annotations_for_job};

/// The task name standing for the job's `refs`.
pub const IMPLICIT_GIT_REF: &str = "PROW_IMPLICIT_GIT_REF";
/// The task name prefix standing for `extra_refs[n]`.
pub const EXTRA_GIT_REF_PREFIX: &str = "PROW_EXTRA_GIT_REF_";
/// The Task (from the Tekton catalog) the git refs become.
pub const GIT_CLONE_TASK: &str = "git-clone";

/// Why a ProwJob cannot become a PipelineRun.
#[derive(Debug, thiserror::Error)]
pub enum PipelineRunError {
    /// The job has neither spec key.
    #[error(
        "tekton-pipeline jobs need spec.pipeline_run_spec or spec.tekton_pipeline_run_spec.v1beta1"
    )]
    MissingSpec,
    /// The spec is not a Tekton v1 PipelineRunSpec.
    #[error("spec.{key}: {path}: {message}")]
    InvalidSpec {
        /// Which job key held it.
        key: &'static str,
        /// The offending field inside it.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A git ref task does not fit the job's refs (Prow's `ValidatePipelineRunSpec`).
    #[error("{0}")]
    GitRefs(String),
    /// The downward-API variables could not be built (e.g. a presubmit without pulls).
    #[error("{0}")]
    Env(String),
}

/// Which key the job's spec comes from.
fn spec_source(job: &ProwJob) -> Option<(&'static str, &serde_json::Value)> {
    if let Some(v) = job
        .spec
        .tekton_pipeline_run_spec
        .as_ref()
        .and_then(|t| t.v1beta1.as_ref())
    {
        return Some(("tekton_pipeline_run_spec.v1beta1", v));
    }
    job.spec
        .pipeline_run_spec
        .as_ref()
        .map(|v| ("pipeline_run_spec", v))
}

/// The job's PipelineRunSpec as written, typed.
pub fn job_pipeline_run_spec(job: &ProwJob) -> Result<PipelineRunSpec, PipelineRunError> {
    let (key, value) = spec_source(job).ok_or(PipelineRunError::MissingSpec)?;
    serde_path_to_error::deserialize::<_, PipelineRunSpec>(value).map_err(|e| {
        let path = e.path().to_string();
        PipelineRunError::InvalidSpec {
            key,
            path: if path == "." { "(root)".into() } else { path },
            message: e.into_inner().to_string(),
        }
    })
}

/// What a git-ref task stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GitRef {
    Implicit,
    Extra(usize),
}

fn git_ref_of(task: &PipelineTask) -> Result<Option<GitRef>, PipelineRunError> {
    let Some(name) = task.task_ref.as_ref().and_then(|r| r.name.as_deref()) else {
        return Ok(None);
    };
    if name == IMPLICIT_GIT_REF {
        return Ok(Some(GitRef::Implicit));
    }
    let Some(index) = name.strip_prefix(EXTRA_GIT_REF_PREFIX) else {
        return Ok(None);
    };
    let valid = !index.is_empty()
        && index.bytes().all(|b| b.is_ascii_digit())
        && (index == "0" || !index.starts_with('0'));
    match index.parse::<usize>() {
        Ok(n) if valid => Ok(Some(GitRef::Extra(n))),
        _ => Err(PipelineRunError::GitRefs(format!(
            "taskRef {name:?}: the index of {EXTRA_GIT_REF_PREFIX}<n> must be a number without leading zeros"
        ))),
    }
}

/// `url` of a git-clone task: `clone_uri`, else `<repo_link>.git`, else GitHub's.
pub fn clone_url(refs: &Refs) -> String {
    if !refs.clone_uri.is_empty() {
        refs.clone_uri.clone()
    } else if !refs.repo_link.is_empty() {
        format!("{}.git", refs.repo_link.trim_end_matches('/'))
    } else {
        format!("https://github.com/{}/{}.git", refs.org, refs.repo)
    }
}

/// `revision` of a git-clone task: the first pull's SHA, else `pull/<n>/head`, else the base
/// SHA, else the base ref.
pub fn clone_revision(refs: &Refs) -> String {
    if let Some(pull) = refs.pulls.first() {
        if !pull.sha.is_empty() {
            return pull.sha.clone();
        }
        return format!("pull/{}/head", pull.number);
    }
    if !refs.base_sha.is_empty() {
        return refs.base_sha.clone();
    }
    refs.base_ref.clone()
}

fn set_param(params: &mut Vec<Param>, name: &str, value: String) {
    match params.iter_mut().find(|p| p.name == name) {
        Some(p) => *p = Param::string(name, value),
        None => params.push(Param::string(name, value)),
    }
}

/// Replaces the git-ref tasks of `tasks` in place; returns the extra-ref indices used.
fn substitute_git_refs(
    tasks: &mut [PipelineTask],
    job: &ProwJob,
    used_extra: &mut BTreeSet<usize>,
) -> Result<(), PipelineRunError> {
    for task in tasks {
        let Some(which) = git_ref_of(task)? else {
            continue;
        };
        let (refs, default_name) = match which {
            GitRef::Implicit => {
                if job.spec.r#type == ProwJobType::Periodic {
                    return Err(PipelineRunError::GitRefs(format!(
                        "periodic jobs cannot use {IMPLICIT_GIT_REF}: they have no refs"
                    )));
                }
                let refs = job.spec.refs.as_ref().ok_or_else(|| {
                    PipelineRunError::GitRefs(format!(
                        "{IMPLICIT_GIT_REF} needs the job's refs, and it has none"
                    ))
                })?;
                (refs, "prow-implicit-git-ref".to_owned())
            }
            GitRef::Extra(n) => {
                let refs = job.spec.extra_refs.get(n).ok_or_else(|| {
                    PipelineRunError::GitRefs(format!(
                        "{EXTRA_GIT_REF_PREFIX}{n} refers to extra_refs[{n}], but the job has {} extra refs",
                        job.spec.extra_refs.len()
                    ))
                })?;
                used_extra.insert(n);
                (refs, format!("prow-extra-git-ref-{n}"))
            }
        };
        if task.name.is_empty() {
            task.name = default_name;
        }
        task.task_ref = Some(TaskRef {
            name: Some(GIT_CLONE_TASK.to_owned()),
            ..TaskRef::default()
        });
        set_param(&mut task.params, "url", clone_url(refs));
        set_param(&mut task.params, "revision", clone_revision(refs));
    }
    Ok(())
}

/// The PipelineRun for a job. `default_namespace` is used when the job names none (Prow's
/// `pod_namespace`). The build id comes from `status.build_id`.
pub fn prowjob_to_pipelinerun(
    job: &ProwJob,
    default_namespace: &str,
) -> Result<PipelineRun, PipelineRunError> {
    let mut spec = job_pipeline_run_spec(job)?;

    let mut used_extra = BTreeSet::new();
    if let Some(pipeline) = spec.pipeline_spec.as_mut() {
        substitute_git_refs(&mut pipeline.tasks, job, &mut used_extra)?;
        substitute_git_refs(&mut pipeline.finally, job, &mut used_extra)?;
    }
    if spec.pipeline_spec.is_some()
        && let Some(missing) = (0..job.spec.extra_refs.len()).find(|i| !used_extra.contains(i))
    {
        return Err(PipelineRunError::GitRefs(format!(
            "extra_refs[{missing}] is not used by any task ({EXTRA_GIT_REF_PREFIX}{missing})"
        )));
    }

    let env = decorate::downward_env(job).map_err(|e| PipelineRunError::Env(e.to_string()))?;
    let defined: BTreeSet<String> = spec.params.iter().map(|p| p.name.clone()).collect();
    spec.params.extend(
        env.into_iter()
            .filter(|(name, _)| !defined.contains(name))
            .map(|(name, value)| Param::string(name, value)),
    );

    let (labels, annotations) = labels_and_annotations_for_job(job);
    let namespace = if job.spec.namespace.is_empty() {
        default_namespace
    } else {
        &job.spec.namespace
    };
    Ok(PipelineRun {
        metadata: ObjectMeta {
            name: Some(job.name().to_owned()).filter(|n| !n.is_empty()),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        spec,
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tekton::types::ParamValue;
    use serde_json::json;

    fn job(spec: serde_json::Value) -> ProwJob {
        serde_json::from_value(json!({
            "apiVersion": "prow.k8s.io/v1", "kind": "ProwJob",
            "metadata": {"name": "pj-1", "labels": {"team": "infra"}},
            "spec": spec,
            "status": {"state": "triggered", "build_id": "42"}
        }))
        .expect("job")
    }

    fn presubmit(run_spec: serde_json::Value) -> ProwJob {
        job(json!({
            "type": "presubmit", "job": "pr-unit", "agent": "tekton-pipeline",
            "refs": {"org": "acme", "repo": "widget", "base_ref": "main", "base_sha": "abc",
                     "pulls": [{"number": 7, "author": "al", "sha": "def"}]},
            "pipeline_run_spec": run_spec
        }))
    }

    #[test]
    fn metadata_and_params_follow_prow() {
        let pj = presubmit(json!({
            "pipelineRef": {"name": "unit"},
            "params": [{"name": "JOB_NAME", "value": "mine"}, {"name": "x", "value": ["a"]}]
        }));
        let pr = prowjob_to_pipelinerun(&pj, "test-pods").expect("pipelinerun");
        assert_eq!(pr.metadata.name.as_deref(), Some("pj-1"));
        assert_eq!(pr.metadata.namespace.as_deref(), Some("test-pods"));
        let labels = pr.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels["prow.k8s.io/id"], "pj-1");
        assert_eq!(labels["prow.k8s.io/build-id"], "42");
        assert_eq!(labels["created-by-prow"], "true");
        assert_eq!(labels["prow.k8s.io/refs.pull"], "7");
        assert_eq!(labels["team"], "infra");
        let names: Vec<&str> = pr.spec.params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "JOB_NAME",
                "x",
                "BUILD_ID",
                "CI",
                "JOB_SPEC",
                "JOB_TYPE",
                "PROW_JOB_ID",
                "PULL_BASE_REF",
                "PULL_BASE_SHA",
                "PULL_HEAD_REF",
                "PULL_NUMBER",
                "PULL_PULL_SHA",
                "PULL_REFS",
                "PULL_TITLE",
                "REPO_NAME",
                "REPO_OWNER",
                "SRC_BASE",
                "SRC_HOST"
            ]
        );
        assert_eq!(
            pr.spec.params[0].value,
            ParamValue::String("mine".into()),
            "a param the spec sets wins"
        );
        let get = |n: &str| {
            pr.spec
                .params
                .iter()
                .find(|p| p.name == n)
                .and_then(|p| p.value.as_str())
        };
        assert_eq!(get("BUILD_ID"), Some("42"));
        assert_eq!(get("PULL_REFS"), Some("main:abc,7:def"));
        assert!(
            pr.spec.params.iter().all(|p| p.name != "BUILD_NUMBER"),
            "only the kubernetes agent gets BUILD_NUMBER"
        );
    }

    #[test]
    fn git_refs_become_named_git_clone_tasks() {
        let mut pj = presubmit(json!({
            "pipelineSpec": {"tasks": [
                {"taskRef": {"name": "PROW_IMPLICIT_GIT_REF"}, "workspaces": [{"name": "output", "workspace": "src"}]},
                {"name": "tools", "taskRef": {"name": "PROW_EXTRA_GIT_REF_0"}},
                {"name": "test", "taskRef": {"name": "unit"}, "runAfter": ["prow-implicit-git-ref"]}
            ]}
        }));
        pj.spec.extra_refs = vec![Refs {
            org: "acme".into(),
            repo: "tools".into(),
            base_ref: "main".into(),
            repo_link: "https://git.example.com/acme/tools".into(),
            ..Default::default()
        }];
        let pr = prowjob_to_pipelinerun(&pj, "default").expect("pipelinerun");
        let tasks = &pr.spec.pipeline_spec.as_ref().expect("spec").tasks;
        assert_eq!(tasks[0].name, "prow-implicit-git-ref");
        assert_eq!(
            tasks[0].task_ref.as_ref().and_then(|r| r.name.as_deref()),
            Some(GIT_CLONE_TASK)
        );
        assert_eq!(
            tasks[0].params,
            vec![
                Param::string("url", "https://github.com/acme/widget.git"),
                Param::string("revision", "def")
            ]
        );
        assert_eq!(tasks[0].workspaces.len(), 1, "other fields are kept");
        assert_eq!(tasks[1].name, "tools");
        assert_eq!(
            tasks[1].params,
            vec![
                Param::string("url", "https://git.example.com/acme/tools.git"),
                Param::string("revision", "main")
            ]
        );
        let v = serde_json::to_value(&tasks[0]).expect("json");
        assert_eq!(
            v["params"],
            json!([{"name": "url", "value": "https://github.com/acme/widget.git"}, {"name": "revision", "value": "def"}])
        );
    }

    #[test]
    fn git_ref_rules_are_checked() {
        let periodic = job(json!({
            "type": "periodic", "job": "nightly", "agent": "tekton-pipeline",
            "pipeline_run_spec": {"pipelineSpec": {"tasks": [{"taskRef": {"name": "PROW_IMPLICIT_GIT_REF"}}]}}
        }));
        let err = prowjob_to_pipelinerun(&periodic, "d").expect_err("periodic");
        assert!(err.to_string().contains("periodic"), "{err}");

        let mut unused = presubmit(
            json!({"pipelineSpec": {"tasks": [{"name": "t", "taskRef": {"name": "unit"}}]}}),
        );
        unused.spec.extra_refs = vec![Refs::default()];
        let err = prowjob_to_pipelinerun(&unused, "d").expect_err("unused extra ref");
        assert!(err.to_string().contains("extra_refs[0]"), "{err}");

        let zero = presubmit(
            json!({"pipelineSpec": {"tasks": [{"taskRef": {"name": "PROW_EXTRA_GIT_REF_01"}}]}}),
        );
        let err = prowjob_to_pipelinerun(&zero, "d").expect_err("leading zero");
        assert!(err.to_string().contains("leading zeros"), "{err}");

        let pull_ref = {
            let mut r = Refs {
                base_ref: "main".into(),
                ..Default::default()
            };
            r.pulls.push(bosun_proto::Pull {
                number: 9,
                ..Default::default()
            });
            r
        };
        assert_eq!(clone_revision(&pull_ref), "pull/9/head");
    }

    #[test]
    fn v1beta1_only_fields_are_refused_by_name() {
        let pj = job(json!({
            "type": "periodic", "job": "nightly", "agent": "tekton-pipeline",
            "tekton_pipeline_run_spec": {"v1beta1": {"pipelineRef": {"name": "p"}, "serviceAccountName": "robot"}}
        }));
        let err = prowjob_to_pipelinerun(&pj, "d").expect_err("v1beta1 field");
        let msg = err.to_string();
        assert!(
            msg.contains("tekton_pipeline_run_spec.v1beta1") && msg.contains("serviceAccountName"),
            "{msg}"
        );
        let missing =
            job(json!({"type": "periodic", "job": "nightly", "agent": "tekton-pipeline"}));
        assert!(matches!(
            prowjob_to_pipelinerun(&missing, "d"),
            Err(PipelineRunError::MissingSpec)
        ));
    }
}
