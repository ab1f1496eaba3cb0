//! The `kubernetes` agent: Prow's pod-utility decoration ([`decorate`]), build clusters
//! ([`clusters`]) and pods followed with kube-runtime watchers ([`KubernetesAgent`]).
//!
//! The cluster routing, the kube error classification and the pod log stream here are shared
//! with the `tekton-pipeline` agent ([`crate::tekton`]).

mod agent;
pub mod clusters;
pub mod decorate;

pub use agent::{KubernetesAgent, KubernetesAgentConfig};
pub use clusters::{BuildClusters, ClusterError, ClusterHealth};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};
use tokio_util::compat::FuturesAsyncReadCompatExt;

use crate::agent::{AgentError, LogStream};

/// The alias of the gateway's own cluster.
pub const DEFAULT_CLUSTER: &str = "default";

/// Classifies a kube error: 4xx (but 429) → the job cannot run, anything else → retry.
pub(crate) fn classify(e: kube::Error, what: &str) -> AgentError {
    match e {
        kube::Error::Api(status) if (400..500).contains(&status.code) && status.code != 429 => {
            AgentError::InvalidJob(format!("{what}: {}", status.message))
        }
        kube::Error::Api(status) => {
            AgentError::Unavailable(format!("{what}: {} ({})", status.message, status.code))
        }
        other => AgentError::Unavailable(format!("{what}: {other}")),
    }
}

/// Whether a kube error is the API server's 404.
pub(crate) fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// One container's log as a [`LogStream`] (the kubelet's `log` subresource).
pub(crate) async fn pod_log_stream(
    pods: &Api<Pod>,
    pod: &str,
    container: Option<String>,
    follow: bool,
) -> Result<LogStream, AgentError> {
    let params = LogParams {
        container,
        follow,
        ..Default::default()
    };
    let reader = pods
        .log_stream(pod, &params)
        .await
        .map_err(|e| classify(e, "reading the pod log"))?;
    let stream = tokio_util::io::ReaderStream::new(reader.compat())
        .map(|r| r.map_err(|e| AgentError::Unavailable(format!("pod log: {e}"))));
    Ok(Box::pin(stream))
}
