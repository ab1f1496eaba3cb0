//! The `kubernetes` agent: Prow's pod-utility decoration ([`decorate`]), build clusters
//! ([`clusters`]) and pods followed with kube-runtime watchers ([`KubernetesAgent`]).

mod agent;
pub mod clusters;
pub mod decorate;

pub use agent::{KubernetesAgent, KubernetesAgentConfig};
pub use clusters::{BuildClusters, ClusterError, ClusterHealth};

/// The alias of the gateway's own cluster.
pub const DEFAULT_CLUSTER: &str = "default";
