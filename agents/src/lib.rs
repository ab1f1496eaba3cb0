//! `bosun-agents`: the executor side of bosun.
//!
//! Start at [`Agent`], the trait every backend implements, and [`AgentRegistry`], which the
//! dispatcher uses to route a job by its `spec.agent`. Backends: [`local::LocalAgent`] (host
//! processes), [`docker`], [`kubernetes`] (pods), [`tekton`] (PipelineRuns) and [`jenkins`]
//! (Jenkins builds over its REST API). The pod utilities (clonerefs, entrypoint, initupload, sidecar) live in
//! [`podutils`]; [`artifacts::Artifacts`] puts logs and artifacts into an object store with
//! Prow's bucket layout.

mod agent;
pub mod artifacts;
pub mod docker;
pub mod jenkins;
pub mod kubernetes;
pub mod local;
pub mod noop;
pub mod podutils;
mod registry;
pub mod tekton;

pub use agent::{Agent, AgentError, LogStream, Outcome, Progress, ProgressSender, Started};
pub use artifacts::{Artifacts, ArtifactsError};
pub use local::{LocalAgent, LocalAgentConfig};
pub use podutils::podutils_main;
pub use registry::AgentRegistry;
