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

use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
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

/// What a watch on a job's workload object says.
#[derive(Debug)]
pub(crate) enum Watched<K> {
    /// The object as it is now.
    Applied(K),
    /// The object was deleted; its last state.
    Deleted(K),
    /// The object does not exist (not in the watch's initial list).
    Missing,
    /// The cluster did not answer; the watch retries with backoff.
    Unreachable(String),
}

/// A kube-runtime watch on the object named after a job, selected by its `prow.k8s.io/id`
/// label: the workload a job created, found again from the job alone after a restart.
pub(crate) struct JobWatch<K: 'static> {
    events: BoxStream<'static, Result<Event<K>, watcher::Error>>,
    name: String,
    seen: bool,
}

impl<K> JobWatch<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
    K::DynamicType: Default,
{
    /// Watches `api` for the object named `job_name`.
    pub(crate) fn new(api: Api<K>, job_name: &str) -> Self {
        let selector = format!("{}={}", bosun_proto::labels::ID, job_name);
        let config = watcher::Config::default().labels(&selector);
        Self {
            events: watcher::watcher(api, config).default_backoff().boxed(),
            name: job_name.to_owned(),
            seen: false,
        }
    }

    /// The next change; `None` when the watch ended.
    pub(crate) async fn next(&mut self) -> Option<Watched<K>> {
        loop {
            let event = match self.events.try_next().await {
                Ok(Some(event)) => event,
                Ok(None) => return None,
                Err(e) => return Some(Watched::Unreachable(e.to_string())),
            };
            match event {
                Event::Init => self.seen = false,
                Event::InitDone if !self.seen => return Some(Watched::Missing),
                Event::InitDone => {}
                Event::Apply(obj) | Event::InitApply(obj) if self.is_ours(&obj) => {
                    self.seen = true;
                    return Some(Watched::Applied(obj));
                }
                Event::Delete(obj) if self.is_ours(&obj) => return Some(Watched::Deleted(obj)),
                Event::Apply(_) | Event::InitApply(_) | Event::Delete(_) => {}
            }
        }
    }

    fn is_ours(&self, obj: &K) -> bool {
        obj.meta().name.as_deref() == Some(self.name.as_str())
    }
}
