//! `bosun-proto`: the job model and the wire contracts.
//!
//! Start at [`prowjob::ProwJob`], the prow.k8s.io/v1 resource (also a kube CustomResource),
//! and [`parse::parse_prowjob`], which reads one with errors naming the field. The gRPC API
//! lives in [`api`]. This crate does no IO.

pub mod api;
pub mod downward;
pub mod duration;
pub mod labels;
pub mod parse;
pub mod paths;
pub mod prowjob;
pub mod schema;
pub mod secret;

pub use prowjob::{
    ProwJob, ProwJobSpec, ProwJobState, ProwJobStatus, ProwJobType, Pull, Refs, new_job_name,
};
