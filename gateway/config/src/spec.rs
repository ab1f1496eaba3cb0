//! Building ProwJobs from configured jobs (reference §1.14, `pkg/pjutil`).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bosun_proto::labels::labels_and_annotations_for_spec;
use bosun_proto::prowjob::{ProwJob, ProwJobSpec, ProwJobState, ProwJobStatus, ProwJobType, Refs};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;

use crate::jobs::{JobBase, Periodic, Postsubmit, Presubmit};

/// `specFromJobBase`: the fields every job kind shares.
fn spec_from_job_base(jb: &JobBase) -> ProwJobSpec {
    let blobless = jb.decoration_config.as_ref().map(|d| d.blobless_fetch);
    let extra_refs = jb
        .extra_refs
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if let (None, Some(dc_blobless)) = (r.blobless_fetch, blobless) {
                r.blobless_fetch = dc_blobless;
            }
            r
        })
        .collect();
    ProwJobSpec {
        job: jb.name.clone(),
        agent: jb.agent.clone(),
        cluster: jb.cluster.clone(),
        namespace: jb.namespace.clone().unwrap_or_default(),
        max_concurrency: jb.max_concurrency,
        error_on_eviction: jb.error_on_eviction,
        extra_refs,
        decoration_config: jb.decoration_config.clone(),
        pod_spec: jb.spec.clone(),
        pipeline_run_spec: jb.pipeline_run_spec.clone(),
        tekton_pipeline_run_spec: jb.tekton_pipeline_run_spec.clone(),
        reporter_config: jb.reporter_config.clone(),
        rerun_auth_config: jb.rerun_auth_config.clone(),
        hidden: jb.hidden,
        prowjob_defaults: jb.prowjob_defaults.clone(),
        job_queue_name: jb.job_queue_name.clone(),
        ..ProwJobSpec::default()
    }
}

/// `CompletePrimaryRefs`: the job's clone settings applied to the refs under test.
pub fn complete_primary_refs(mut refs: Refs, job: &JobBase) -> Refs {
    if !job.path_alias.is_empty() {
        refs.path_alias.clone_from(&job.path_alias);
    }
    if !job.clone_uri.is_empty() {
        refs.clone_uri.clone_from(&job.clone_uri);
    }
    if job.skip_submodules {
        refs.skip_submodules = true;
    }
    if job.clone_depth > 0 {
        refs.clone_depth = job.clone_depth;
    }
    if job.skip_fetch_head {
        refs.skip_fetch_head = true;
    }
    if let Some(dc) = &job.decoration_config {
        if refs.blobless_fetch.is_none() {
            refs.blobless_fetch = dc.blobless_fetch;
        }
        if !dc.sparse_checkout_files.is_empty() {
            refs.sparse_checkout_files
                .clone_from(&dc.sparse_checkout_files);
        }
    }
    refs
}

/// `PresubmitSpec`: type presubmit, context, `report = !skip_report`, rerun command,
/// Jenkins options, completed refs.
pub fn presubmit_spec(job: &Presubmit, refs: Refs) -> ProwJobSpec {
    ProwJobSpec {
        r#type: ProwJobType::Presubmit,
        context: job.context.clone(),
        report: !job.skip_report,
        rerun_command: job.rerun_command.clone(),
        jenkins_spec: job.jenkins_spec.clone(),
        refs: Some(complete_primary_refs(refs, &job.base)),
        ..spec_from_job_base(&job.base)
    }
}

/// `PostsubmitSpec`: type postsubmit, context, `report = !skip_report`, completed refs,
/// Jenkins options (no rerun command).
pub fn postsubmit_spec(job: &Postsubmit, refs: Refs) -> ProwJobSpec {
    ProwJobSpec {
        r#type: ProwJobType::Postsubmit,
        context: job.context.clone(),
        report: !job.skip_report,
        jenkins_spec: job.jenkins_spec.clone(),
        refs: Some(complete_primary_refs(refs, &job.base)),
        ..spec_from_job_base(&job.base)
    }
}

/// `PeriodicSpec`: type periodic, always reported, no context and no refs.
pub fn periodic_spec(job: &Periodic) -> ProwJobSpec {
    ProwJobSpec {
        r#type: ProwJobType::Periodic,
        report: true,
        ..spec_from_job_base(&job.base)
    }
}

/// `BatchSpec`: type batch, context, completed refs; not reported, no rerun command, no
/// Jenkins options.
pub fn batch_spec(job: &Presubmit, refs: Refs) -> ProwJobSpec {
    ProwJobSpec {
        r#type: ProwJobType::Batch,
        context: job.context.clone(),
        refs: Some(complete_primary_refs(refs, &job.base)),
        ..spec_from_job_base(&job.base)
    }
}

/// `setReportDefault`: an unset Slack `report` becomes false when `job_states_to_report` is an
/// explicitly empty list, else true.
fn set_report_default(spec: &mut ProwJobSpec) {
    let Some(slack) = spec.reporter_config.as_mut().and_then(|r| r.slack.as_mut()) else {
        return;
    };
    if slack.report.is_none() {
        let explicitly_empty = slack
            .job_states_to_report
            .as_ref()
            .is_some_and(Vec::is_empty);
        slack.report = Some(!explicitly_empty);
    }
}

fn now() -> Time {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    let nanos = i32::try_from(since.subsec_nanos()).unwrap_or(0);
    Time(Timestamp::new(secs, nanos).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// `NewProwJob`: a new ProwJob named by a fresh UUID v4, labels and annotations per §1.13
/// (the extras override the automatic ones), report default applied, `status.startTime`
/// now and state `triggered` (or `scheduling` when `require_scheduling`). The namespace is
/// left unset for the caller.
pub fn new_prowjob(
    mut spec: ProwJobSpec,
    extra_labels: &BTreeMap<String, String>,
    extra_annotations: &BTreeMap<String, String>,
    require_scheduling: bool,
) -> ProwJob {
    let (labels, annotations) =
        labels_and_annotations_for_spec(&spec, extra_labels, extra_annotations);
    set_report_default(&mut spec);
    ProwJob {
        metadata: ObjectMeta {
            name: Some(bosun_proto::new_job_name()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        spec,
        status: Some(ProwJobStatus {
            start_time: Some(now()),
            state: if require_scheduling {
                ProwJobState::Scheduling
            } else {
                ProwJobState::Triggered
            },
            ..ProwJobStatus::default()
        }),
    }
}
