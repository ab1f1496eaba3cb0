//! The `tekton-pipeline` agent: jobs as Tekton `tekton.dev/v1` PipelineRuns on the job's build
//! cluster (the same kubeconfigs and [`BuildClusters`](crate::kubernetes::BuildClusters) as
//! the kubernetes agent).
//!
//! - [`types`]: typed Tekton bindings (kube-derive) for PipelineRun and TaskRun;
//! - [`pipelinerun`]: ProwJob → PipelineRun, as Prow's `makePipelineRun`, with the implicit git
//!   refs as a proper `git-clone` task;
//! - [`TektonAgent`]: creates the run (idempotent on the job's `prow.k8s.io/id`), follows it
//!   with a watch (re-attaching after a restart by the same label), maps the `Succeeded`
//!   condition to the job state, cancels it with `spec.status: Cancelled`, streams the TaskRun
//!   pods' step logs and stores them when the run ends.

mod agent;
pub mod pipelinerun;
pub mod types;

pub use agent::{RunVerdict, TektonAgent, TektonAgentConfig, judge};
