//! The `kubernetes` agent: a decorated pod per job on the job's build cluster, followed with a
//! kube-runtime watcher and mapped to job states as Prow's plank does
//! (reference prow-agents §1.3–§1.8).

use std::time::Duration;

use async_trait::async_trait;
use bosun_proto::ProwJob;
use bosun_proto::labels;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};

use super::clusters::BuildClusters;
use super::decorate;
use super::{JobWatch, Watched, classify, is_not_found, pod_log_stream};
use crate::agent::{Agent, AgentError, LogStream, Outcome, Progress, ProgressSender, Started};

/// How the kubernetes agent behaves (Prow's `plank` settings).
#[derive(Debug, Clone)]
pub struct KubernetesAgentConfig {
    /// Namespace for pods when the job names none (`pod_namespace`).
    pub pod_namespace: String,
    /// `plank.pod_unscheduled_timeout` (default 5m).
    pub pod_unscheduled_timeout: Duration,
}

impl Default for KubernetesAgentConfig {
    fn default() -> Self {
        Self {
            pod_namespace: "default".into(),
            pod_unscheduled_timeout: Duration::from_secs(5 * 60),
        }
    }
}

/// Runs jobs as pods (agent name `kubernetes`).
pub struct KubernetesAgent {
    clusters: BuildClusters,
    config: KubernetesAgentConfig,
}

impl KubernetesAgent {
    /// An agent over the given build clusters.
    pub fn new(clusters: BuildClusters, config: KubernetesAgentConfig) -> Self {
        Self { clusters, config }
    }

    /// The build clusters.
    pub fn clusters(&self) -> &BuildClusters {
        &self.clusters
    }

    fn namespace<'a>(&'a self, job: &'a ProwJob) -> &'a str {
        if job.spec.namespace.is_empty() {
            &self.config.pod_namespace
        } else {
            &job.spec.namespace
        }
    }

    fn pods(&self, job: &ProwJob) -> Result<Api<Pod>, AgentError> {
        let client = self.clusters.client_for_job(job)?;
        Ok(Api::namespaced(client.clone(), self.namespace(job)))
    }
}

fn build_id(job: &ProwJob) -> &str {
    job.status
        .as_ref()
        .map(|s| s.build_id.as_str())
        .unwrap_or("")
}

/// What one look at the pod tells us.
#[derive(Debug, PartialEq, Eq)]
enum PodVerdict {
    /// Keep watching; `running` once the pod runs.
    Wait { running: bool, scheduled: bool },
    /// The job is over.
    Done(Outcome),
    /// The pod stopped unexpectedly and may be recreated (`cause`).
    Lost(String),
}

fn terminated_oom(pod: &Pod) -> bool {
    let Some(status) = &pod.status else {
        return false;
    };
    status
        .container_statuses
        .iter()
        .flatten()
        .chain(status.init_container_statuses.iter().flatten())
        .any(|c| {
            c.state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .is_some_and(|t| t.reason.as_deref() == Some("OOMKilled"))
        })
}

fn all_containers_succeeded(pod: &Pod) -> bool {
    let Some(status) = &pod.status else {
        return false;
    };
    let statuses: Vec<_> = status
        .container_statuses
        .iter()
        .flatten()
        .chain(status.init_container_statuses.iter().flatten())
        .collect();
    !statuses.is_empty()
        && statuses.iter().all(|c| {
            c.state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .is_some_and(|t| t.exit_code == 0 && t.finished_at.is_some())
        })
}

/// Plank's pending-state logic (reference §1.4), minus the timeouts.
fn judge(pod: &Pod, error_on_eviction: bool) -> PodVerdict {
    let status = pod.status.clone().unwrap_or_default();
    let phase = status.phase.as_deref().unwrap_or("Pending");
    let reason = status.reason.as_deref().unwrap_or("");
    let deleting = pod.metadata.deletion_timestamp.is_some();
    // Unexpected stops first.
    let cause = if reason == "Evicted" {
        Some("evicted")
    } else if reason == "NodeLost" && deleting {
        Some("unreachable")
    } else if phase != "Succeeded" && terminated_oom(pod) {
        return PodVerdict::Done(Outcome::error("Job pod was OOM killed by the cluster."));
    } else if phase == "Unknown" {
        Some("unknown")
    } else {
        None
    };
    if let Some(cause) = cause {
        if cause == "evicted" && error_on_eviction {
            return PodVerdict::Done(Outcome::error("Job pod was evicted by the cluster."));
        }
        return PodVerdict::Lost(cause.to_owned());
    }
    match phase {
        "Succeeded" => {
            if all_containers_succeeded(pod) {
                PodVerdict::Done(Outcome::success())
            } else {
                PodVerdict::Done(Outcome::error(
                    "Pod was in succeeded phase but some containers didn't finish",
                ))
            }
        }
        "Failed" => PodVerdict::Done(Outcome::failure()),
        _ if deleting => PodVerdict::Done(Outcome::error("Pod got deleted unexpectedly")),
        "Running" => PodVerdict::Wait {
            running: true,
            scheduled: true,
        },
        _ => PodVerdict::Wait {
            running: false,
            scheduled: status.start_time.is_some(),
        },
    }
}

fn test_container(pod: &Pod) -> Option<String> {
    pod.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .map(|c| c.name.clone())
}

#[async_trait]
impl Agent for KubernetesAgent {
    fn name(&self) -> &str {
        bosun_proto::prowjob::agents::KUBERNETES
    }

    fn check(&self, job: &ProwJob) -> Result<(), AgentError> {
        self.pods(job)?;
        if job.spec.pod_spec.is_none() {
            return Err(AgentError::InvalidJob(
                "kubernetes jobs need spec.pod_spec".into(),
            ));
        }
        Ok(())
    }

    async fn start(&self, job: &ProwJob) -> Result<Started, AgentError> {
        let pods = self.pods(job)?;
        let mut pod = decorate::prowjob_to_pod(job)
            .map_err(|e| AgentError::InvalidJob(format!("Pod can not be created: {e}")))?;
        pod.metadata.namespace = Some(self.namespace(job).to_owned());
        let name = job.name().to_owned();
        match pods.create(&PostParams::default(), &pod).await {
            Ok(created) => Ok(Started {
                workload_name: created.metadata.name.unwrap_or(name),
                description: None,
            }),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                // Already there: ours from an earlier attempt, or the previous run still going.
                let existing = pods
                    .get(&name)
                    .await
                    .map_err(|e| classify(e, "reading the existing pod"))?;
                let existing_build = existing
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(labels::BUILD_ID))
                    .map(String::as_str)
                    .unwrap_or("");
                if existing_build == build_id(job) {
                    Ok(Started {
                        workload_name: name,
                        description: None,
                    })
                } else {
                    Err(AgentError::Unavailable(format!(
                        "the previous pod {name} (build {existing_build}) is still terminating"
                    )))
                }
            }
            Err(e) => Err(match classify(e, "Pod can not be created") {
                AgentError::InvalidJob(m) => AgentError::InvalidJob(m),
                other => other,
            }),
        }
    }

    async fn wait(&self, job: &ProwJob, progress: ProgressSender) -> Result<Outcome, AgentError> {
        let pods = self.pods(job)?;
        let name = job.name().to_owned();
        let error_on_eviction = job.spec.error_on_eviction;
        let unscheduled_timeout = job
            .spec
            .decoration_config
            .as_ref()
            .and_then(|d| d.pod_unscheduled_timeout)
            .map(|d| d.get())
            .unwrap_or(self.config.pod_unscheduled_timeout);
        let mut watch = JobWatch::new(pods.clone(), &name);
        let mut running_sent = false;
        let mut unscheduled_deadline: Option<tokio::time::Instant> = None;
        loop {
            let sleep_until = unscheduled_deadline
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400 * 365));
            let event = tokio::select! {
                ev = watch.next() => ev,
                _ = tokio::time::sleep_until(sleep_until) => {
                    let _ = pods.delete(&name, &DeleteParams::default()).await;
                    return Ok(Outcome::error("Pod scheduling timeout."));
                }
            };
            let pod = match event {
                Some(Watched::Applied(pod)) => pod,
                Some(Watched::Missing) => {
                    return Err(AgentError::WorkloadLost(format!("pod {name} is missing")));
                }
                Some(Watched::Deleted(pod)) => {
                    // A finished pod may be deleted by a cleaner; judge its last state.
                    return Ok(match judge(&pod, error_on_eviction) {
                        PodVerdict::Done(outcome) => outcome,
                        _ => Outcome::error("Pod got deleted unexpectedly"),
                    });
                }
                Some(Watched::Unreachable(e)) => {
                    let _ = progress.send(Progress::Description(format!(
                        "Build cluster {:?} unreachable, retrying: {e}",
                        job.spec.cluster_alias()
                    )));
                    continue;
                }
                None => return Err(AgentError::Unavailable("pod watch ended".into())),
            };
            match judge(&pod, error_on_eviction) {
                PodVerdict::Done(outcome) => return Ok(outcome),
                PodVerdict::Lost(cause) => {
                    if pod.metadata.deletion_timestamp.is_none()
                        && let Err(e) = pods.delete(&name, &DeleteParams::default()).await
                        && !is_not_found(&e)
                    {
                        return Err(classify(e, "deleting the stopped pod"));
                    }
                    return Err(AgentError::WorkloadLost(cause));
                }
                PodVerdict::Wait { running, scheduled } => {
                    if running && !running_sent {
                        running_sent = true;
                        let _ = progress.send(Progress::Running);
                    }
                    unscheduled_deadline = if scheduled {
                        None
                    } else {
                        let created = pod
                            .metadata
                            .creation_timestamp
                            .as_ref()
                            .map(|t| t.0)
                            .unwrap_or_else(k8s_openapi::jiff::Timestamp::now);
                        let age = k8s_openapi::jiff::Timestamp::now()
                            .duration_since(created)
                            .unsigned_abs();
                        let left = unscheduled_timeout.saturating_sub(age);
                        Some(tokio::time::Instant::now() + left)
                    };
                }
            }
        }
    }

    async fn abort(&self, job: &ProwJob) -> Result<(), AgentError> {
        let pods = self.pods(job)?;
        match pods.delete(job.name(), &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(classify(e, "deleting the pod")),
        }
    }

    async fn logs(&self, job: &ProwJob, follow: bool) -> Result<LogStream, AgentError> {
        let pods = self.pods(job)?;
        let pod = pods.get(job.name()).await.map_err(|e| {
            if is_not_found(&e) {
                AgentError::NotFound(format!("pod {} not found", job.name()))
            } else {
                classify(e, "reading the pod")
            }
        })?;
        pod_log_stream(&pods, job.name(), test_container(&pod), follow).await
    }

    async fn cleanup(&self, job: &ProwJob) -> Result<(), AgentError> {
        self.abort(job).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateTerminated, ContainerStatus, PodStatus,
    };

    fn pod(phase: &str, reason: Option<&str>, exit: Option<(i32, Option<&str>)>) -> Pod {
        let statuses = exit.map(|(code, r)| {
            vec![ContainerStatus {
                name: "test".into(),
                state: Some(ContainerState {
                    terminated: Some(ContainerStateTerminated {
                        exit_code: code,
                        reason: r.map(str::to_owned),
                        finished_at: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                            k8s_openapi::jiff::Timestamp::now(),
                        )),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }]
        });
        Pod {
            status: Some(PodStatus {
                phase: Some(phase.into()),
                reason: reason.map(str::to_owned),
                container_statuses: statuses,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn plank_state_mapping() {
        assert_eq!(
            judge(&pod("Succeeded", None, Some((0, None))), false),
            PodVerdict::Done(Outcome::success())
        );
        assert!(
            matches!(judge(&pod("Succeeded", None, Some((1, None))), false), PodVerdict::Done(o) if o.state == bosun_proto::ProwJobState::Error)
        );
        assert_eq!(
            judge(&pod("Failed", None, Some((1, None))), false),
            PodVerdict::Done(Outcome::failure())
        );
        assert_eq!(
            judge(&pod("Failed", Some("Evicted"), None), false),
            PodVerdict::Lost("evicted".into())
        );
        assert!(
            matches!(judge(&pod("Failed", Some("Evicted"), None), true), PodVerdict::Done(o) if o.description.contains("evicted"))
        );
        assert!(
            matches!(judge(&pod("Running", None, Some((137, Some("OOMKilled")))), false), PodVerdict::Done(o) if o.description.contains("OOM"))
        );
        assert_eq!(
            judge(&pod("Unknown", None, None), false),
            PodVerdict::Lost("unknown".into())
        );
        assert_eq!(
            judge(&pod("Running", None, None), false),
            PodVerdict::Wait {
                running: true,
                scheduled: true
            }
        );
    }
}
