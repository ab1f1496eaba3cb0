//! `bosun-agents`: the executor side of bosun.
//!
//! Start at [`Agent`], the trait every backend implements, and [`AgentRegistry`], which the
//! dispatcher uses to route a job by its `spec.agent`.

mod agent;
mod registry;

pub use agent::{Agent, AgentError, LogStream, Outcome, Progress, ProgressSender, Started};
pub use registry::AgentRegistry;
