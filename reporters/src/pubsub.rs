//! The Pub/Sub reporter (`pubsub-reporter`): publishes Prow's message JSON (reference §2.4)
//! for every state change of a job that names a project and topic, over the Pub/Sub REST API
//! (`POST {base}/v1/projects/{project}/topics/{topic}:publish`).
//!
//! With `PUBSUB_EMULATOR_HOST` (or [`PubSubTarget::Emulator`]) requests go over plain HTTP
//! without credentials, as Google's client libraries do; otherwise a bearer token is sent.

use std::path::PathBuf;

use async_trait::async_trait;
use base64::Engine as _;
use bosun_gateway_config::prow::Plank;
use bosun_proto::{ProwJob, Refs};
use serde::Serialize;

use crate::config::Secret;
use crate::{ReportError, Reporter, http, job_state};

/// The reporter's name, the key in `status.prev_report_states` (Prow's).
pub const PUBSUB_REPORTER_NAME: &str = "pubsub-reporter";
/// The key of the project label/annotation.
pub const PUBSUB_PROJECT_KEY: &str = "prow.k8s.io/pubsub.project";
/// The key of the topic label/annotation.
pub const PUBSUB_TOPIC_KEY: &str = "prow.k8s.io/pubsub.topic";
/// The key of the run id label/annotation.
pub const PUBSUB_RUN_ID_KEY: &str = "prow.k8s.io/pubsub.runID";
/// The production endpoint.
pub const DEFAULT_PUBSUB_BASE_URL: &str = "https://pubsub.googleapis.com";

/// Where and how to publish.
#[derive(Debug, Clone)]
pub enum PubSubTarget {
    /// The emulator at `host:port`: plain HTTP, no credentials.
    Emulator(String),
    /// The real API at `base_url` with a bearer token.
    Api {
        /// E.g. `https://pubsub.googleapis.com`.
        base_url: String,
        /// Where the OAuth access token comes from.
        token: TokenSource,
    },
}

impl PubSubTarget {
    /// `PUBSUB_EMULATOR_HOST` when set and non-empty, else the API with `token`.
    pub fn from_env(base_url: Option<String>, token: TokenSource) -> Self {
        match std::env::var("PUBSUB_EMULATOR_HOST") {
            Ok(host) if !host.trim().is_empty() => PubSubTarget::Emulator(host.trim().to_owned()),
            _ => PubSubTarget::Api {
                base_url: base_url.unwrap_or_else(|| DEFAULT_PUBSUB_BASE_URL.to_owned()),
                token,
            },
        }
    }
}

/// A bearer token: fixed, or read from a file on every publish (so it can be rotated).
#[derive(Debug, Clone)]
pub enum TokenSource {
    /// No token (only useful against a test server).
    None,
    /// A fixed token.
    Static(Secret),
    /// A file holding the token.
    File(PathBuf),
}

/// Prow's Pub/Sub message, field for field and in Prow's order.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReportMessage {
    /// The project.
    pub project: String,
    /// The topic.
    pub topic: String,
    /// `prow.k8s.io/pubsub.runID`, "" if absent.
    pub runid: String,
    /// The job state.
    pub status: String,
    /// `status.url`.
    pub url: String,
    /// The job's storage path, e.g. `gs://bucket/logs/job/1`.
    pub gcs_path: String,
    /// `spec.refs` then `spec.extra_refs`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refs: Vec<Refs>,
    /// `spec.type`.
    pub job_type: String,
    /// `spec.job`.
    pub job_name: String,
    /// `status.description`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// The annotation if non-empty, else the label.
fn annotation_or_label(job: &ProwJob, key: &str) -> String {
    let get = |map: &Option<std::collections::BTreeMap<String, String>>| {
        map.as_ref()
            .and_then(|m| m.get(key))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    get(&job.metadata.annotations)
        .or_else(|| get(&job.metadata.labels))
        .unwrap_or_default()
}

/// Prow's `getGCSPathFromURL` with `prefix` the job URL prefix.
pub fn gcs_path(url: &str, prefix: &str) -> String {
    if url.is_empty() {
        return String::new();
    }
    let mut path = url.strip_prefix(prefix).unwrap_or(url).to_owned();
    if let Some(rest) = path.strip_prefix("gcs") {
        path = format!("gs{rest}");
    }
    for provider in ["gs", "s3", "file"] {
        if let Some(rest) = path.strip_prefix(&format!("{provider}/")) {
            return format!("{provider}://{rest}");
        }
    }
    format!("gs://{path}")
}

/// The Pub/Sub reporter.
pub struct PubSubReporter {
    client: reqwest::Client,
    target: PubSubTarget,
    plank: Plank,
}

impl PubSubReporter {
    /// A reporter publishing to `target`; `plank` supplies the job URL prefixes for `gcs_path`.
    pub fn new(target: PubSubTarget, plank: Plank) -> Self {
        PubSubReporter {
            client: http::client(),
            target,
            plank,
        }
    }

    /// The message for the job's current state; `None` without project or topic.
    pub fn message(&self, job: &ProwJob) -> Option<ReportMessage> {
        let project = annotation_or_label(job, PUBSUB_PROJECT_KEY);
        let topic = annotation_or_label(job, PUBSUB_TOPIC_KEY);
        if project.is_empty() || topic.is_empty() {
            return None;
        }
        let status = job.status.clone().unwrap_or_default();
        let prefix = self.plank.job_url_prefix(&job.spec);
        let refs = job
            .spec
            .refs
            .iter()
            .chain(job.spec.extra_refs.iter())
            .cloned()
            .collect();
        Some(ReportMessage {
            project,
            topic,
            runid: annotation_or_label(job, PUBSUB_RUN_ID_KEY),
            status: job_state(job).as_str().to_owned(),
            gcs_path: gcs_path(&status.url, prefix),
            url: status.url,
            refs,
            job_type: job.spec.r#type.as_str().to_owned(),
            job_name: job.spec.job.clone(),
            message: status.description,
        })
    }

    async fn token(&self, source: &TokenSource) -> Result<Option<Secret>, ReportError> {
        match source {
            TokenSource::None => Ok(None),
            TokenSource::Static(token) => Ok(Some(token.clone())),
            TokenSource::File(path) => {
                let text = tokio::fs::read_to_string(path).await.map_err(|e| {
                    ReportError::transient(format!(
                        "reading pubsub token file {}: {e}",
                        path.display()
                    ))
                })?;
                Ok(Some(Secret::new(text.trim())))
            }
        }
    }
}

#[async_trait]
impl Reporter for PubSubReporter {
    fn name(&self) -> &str {
        PUBSUB_REPORTER_NAME
    }

    /// Project and topic present; every state change is published, `spec.report` is ignored.
    fn should_report(&self, job: &ProwJob) -> bool {
        !annotation_or_label(job, PUBSUB_PROJECT_KEY).is_empty()
            && !annotation_or_label(job, PUBSUB_TOPIC_KEY).is_empty()
    }

    async fn report(&self, job: &ProwJob) -> Result<(), ReportError> {
        let Some(message) = self.message(job) else {
            return Err(ReportError::Permanent(
                "job has no pubsub project or topic".to_owned(),
            ));
        };
        let data = serde_json::to_vec(&message)
            .map_err(|e| ReportError::Permanent(format!("encoding pubsub message: {e}")))?;
        let body = serde_json::json!({
            "messages": [{ "data": base64::engine::general_purpose::STANDARD.encode(data) }]
        });
        let (base, token) = match &self.target {
            PubSubTarget::Emulator(host) => (format!("http://{host}"), None),
            PubSubTarget::Api { base_url, token } => (
                base_url.trim_end_matches('/').to_owned(),
                self.token(token).await?,
            ),
        };
        let url = format!(
            "{base}/v1/projects/{}/topics/{}:publish",
            message.project, message.topic
        );
        let mut request = self.client.post(url).json(&body);
        if let Some(token) = &token {
            request = request.bearer_auth(token.expose());
        }
        let response = request
            .send()
            .await
            .map_err(|e| http::transport_error("pubsub publish", e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        Err(http::status_error(
            &format!(
                "pubsub publish to projects/{}/topics/{}",
                message.project, message.topic
            ),
            status,
            &headers,
            &text,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcs_paths_like_prow() {
        assert_eq!(
            gcs_path(
                "https://prow.k8s.io/view/gcs/test1",
                "https://prow.k8s.io/view/gcs/"
            ),
            "gs://test1"
        );
        assert_eq!(
            gcs_path(
                "https://prow.k8s.io/view/gs/b/logs/j/1",
                "https://prow.k8s.io/view/"
            ),
            "gs://b/logs/j/1"
        );
        assert_eq!(
            gcs_path("https://x/view/s3/b/1", "https://x/view/"),
            "s3://b/1"
        );
        assert_eq!(gcs_path("https://x/b/1", "https://x/"), "gs://b/1");
        assert_eq!(gcs_path("", "https://x/"), "");
    }
}
