//! The `jenkins` agent: jobs as Jenkins builds over Jenkins' REST API.
//!
//! - [`client`]: the REST client on `reqwest` (basic auth with an API token or a bearer token,
//!   CSRF crumb, retries with backoff, folders);
//! - [`config`]: `bosun.jenkins` in `config.yaml`;
//! - [`JenkinsAgent`]: triggers `buildWithParameters` with the job's downward-API variables
//!   (`PROW_JOB_ID`, `BUILD_ID`, `JOB_SPEC`, …), follows the queue item from the `Location`
//!   header to its build, maps the result (SUCCESS → success, FAILURE/UNSTABLE → failure,
//!   ABORTED → aborted), aborts by cancelling the queue item or stopping the build, streams
//!   `logText/progressiveText`, and stores the console log when the build ends. After a
//!   restart, or when Jenkins has forgotten the queue item, the build is found by its
//!   `PROW_JOB_ID` parameter, so a build that ended before it was ever seen running still
//!   ends the job in the right state.

mod agent;
pub mod client;
pub mod config;

pub use agent::{
    JenkinsAgent, JenkinsAgentConfig, PROW_JOB_ID, jenkins_job_path, outcome_for_result,
};
pub use client::{ClientOptions, JenkinsAuth, JenkinsClient, JenkinsError, Secret};
pub use config::{JenkinsConfigError, JenkinsSettings};
