//! The Slack reporter (`slackreporter`): Prow's behaviour (reference §2.3) over the Web API's
//! `chat.postMessage`, or an incoming-webhook URL instead (which Prow lacks), plus an option to
//! alert on a periodic's failure only once it failed N times in a row.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use bosun_gateway_config::prow::{
    DEFAULT_SLACK_REPORT_TEMPLATE, SlackReporter as GlobalSlackConfig,
};
use bosun_gateway_store::{JobStore, ListFilter};
use bosun_proto::prowjob::SlackReporterConfig;
use bosun_proto::{ProwJob, ProwJobState, ProwJobType};
use serde::Deserialize;

use crate::config::Secret;
use crate::template::Template;
use crate::{ReportError, Reporter, http, job_state};

/// The reporter's name, the key in `status.prev_report_states` (Prow's).
pub const SLACK_REPORTER_NAME: &str = "slackreporter";

/// The Web API base used when none is configured.
pub const DEFAULT_SLACK_BASE_URL: &str = "https://slack.com";

/// Where messages go.
#[derive(Debug, Clone)]
pub enum SlackTransport {
    /// `POST {base_url}/api/chat.postMessage` with a bot token chosen by the job's Slack host
    /// (`*` for the default host).
    WebApi {
        /// E.g. `https://slack.com`.
        base_url: String,
        /// Bot tokens by host; `*` is the default.
        tokens: BTreeMap<String, Secret>,
    },
    /// `POST` to an incoming-webhook URL (the channel is fixed by the webhook).
    Webhook {
        /// The webhook URL; a secret.
        url: Secret,
    },
}

/// How many times in a row the same periodic failed before this run.
#[async_trait]
pub trait FailureHistory: Send + Sync + 'static {
    /// The number of finished runs of `job`'s periodic, created before it, that failed with no
    /// other finished result in between.
    async fn previous_consecutive_failures(&self, job: &ProwJob) -> Result<u32, String>;
}

/// [`FailureHistory`] read from the job store.
pub struct StoreFailureHistory {
    store: Arc<dyn JobStore>,
}

impl StoreFailureHistory {
    /// History from `store`.
    pub fn new(store: Arc<dyn JobStore>) -> Self {
        StoreFailureHistory { store }
    }
}

#[async_trait]
impl FailureHistory for StoreFailureHistory {
    async fn previous_consecutive_failures(&self, job: &ProwJob) -> Result<u32, String> {
        let filter = ListFilter {
            job: Some(job.spec.job.clone()),
            job_type: Some(ProwJobType::Periodic),
            ..ListFilter::default()
        };
        let mut runs = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .store
                .list(&filter, 0, token.as_deref())
                .await
                .map_err(|e| format!("listing runs of {}: {e}", job.spec.job))?;
            runs.extend(page.jobs.into_iter().map(|s| s.job));
            match page.next_page_token {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        Ok(count_previous_failures(&runs, job))
    }
}

/// Counts the failures right before `job` in `runs` (oldest first).
pub fn count_previous_failures(runs: &[ProwJob], job: &ProwJob) -> u32 {
    let before = match runs
        .iter()
        .position(|r| r.metadata.name == job.metadata.name)
    {
        Some(index) => &runs[..index],
        None => runs,
    };
    let mut count = 0;
    for run in before.iter().rev() {
        let finished = run
            .status
            .as_ref()
            .is_some_and(|s| s.completion_time.is_some() || s.state.is_final());
        if !finished {
            continue;
        }
        if job_state(run) == ProwJobState::Failure {
            count += 1;
        } else {
            break;
        }
    }
    count
}

/// The Slack reporter.
pub struct SlackReporter {
    client: reqwest::Client,
    transport: SlackTransport,
    global: BTreeMap<String, GlobalSlackConfig>,
    min_consecutive_failures: u32,
    history: Option<Arc<dyn FailureHistory>>,
}

impl SlackReporter {
    /// A reporter with Prow's global `slack_reporter_configs`.
    pub fn new(transport: SlackTransport, global: BTreeMap<String, GlobalSlackConfig>) -> Self {
        SlackReporter {
            client: http::client(),
            transport,
            global,
            min_consecutive_failures: 0,
            history: None,
        }
    }

    /// Reports a periodic's failure only once it is at least the `n`th failure in a row
    /// (0 or 1: every failure), counting earlier runs with `history`.
    pub fn with_min_consecutive_failures(
        mut self,
        n: u32,
        history: Arc<dyn FailureHistory>,
    ) -> Self {
        self.min_consecutive_failures = n;
        self.history = Some(history);
        self
    }

    /// The global entry for the job: by `org/repo`, `org`, then `*` (refs, else the first
    /// extra ref; no refs: `*`).
    fn global_for(&self, job: &ProwJob) -> Option<&GlobalSlackConfig> {
        let refs = job.spec.refs.as_ref().or(job.spec.extra_refs.first());
        if let Some(refs) = refs {
            if let Some(c) = self.global.get(&format!("{}/{}", refs.org, refs.repo)) {
                return Some(c);
            }
            if let Some(c) = self.global.get(&refs.org) {
                return Some(c);
            }
        }
        self.global.get("*")
    }

    /// The job's `reporter_config.slack` with empty fields filled from the global entry
    /// (Prow's `ApplyDefault`), and the global job types.
    pub fn merged_config(&self, job: &ProwJob) -> (SlackReporterConfig, Vec<ProwJobType>) {
        let global = self.global_for(job);
        let types = global
            .map(|g| g.job_types_to_report.clone())
            .unwrap_or_default();
        let global_cfg = global.map(GlobalSlackConfig::reporter_config);
        let job_cfg = job
            .spec
            .reporter_config
            .as_ref()
            .and_then(|r| r.slack.clone());
        let merged = match (job_cfg, global_cfg) {
            (None, None) => SlackReporterConfig::default(),
            (None, Some(g)) => g,
            (Some(j), None) => j,
            (Some(mut j), Some(g)) => {
                if j.channel.is_empty() {
                    j.channel = g.channel;
                }
                if j.host.is_empty() {
                    j.host = g.host;
                }
                if j.report_template.is_empty() {
                    j.report_template = g.report_template;
                }
                if j.job_states_to_report.is_none() {
                    j.job_states_to_report = g.job_states_to_report;
                }
                if j.report.is_none() {
                    j.report = g.report;
                }
                j
            }
        };
        (merged, types)
    }

    /// The message text for the job's current state.
    pub fn render_message(&self, job: &ProwJob) -> Result<String, ReportError> {
        let (config, _) = self.merged_config(job);
        let source = if config.report_template.is_empty() {
            DEFAULT_SLACK_REPORT_TEMPLATE
        } else {
            config.report_template.as_str()
        };
        let template = Template::parse(source)
            .map_err(|e| ReportError::Permanent(format!("slack report template: {e}")))?;
        let data = serde_json::to_value(job)
            .map_err(|e| ReportError::Permanent(format!("encoding job: {e}")))?;
        Ok(template.render(&data))
    }

    async fn post_web_api(
        &self,
        base_url: &str,
        token: &Secret,
        channel: &str,
        text: &str,
    ) -> Result<(), ReportError> {
        let url = format!("{}/api/chat.postMessage", base_url.trim_end_matches('/'));
        let body = serde_json::json!({
            "channel": channel,
            "text": text,
            "username": "prow",
            "icon_emoji": ":prow:",
        });
        let response = self
            .client
            .post(url)
            .bearer_auth(token.expose())
            .json(&body)
            .send()
            .await
            .map_err(|e| http::transport_error("slack chat.postMessage", e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .map_err(|e| http::transport_error("slack chat.postMessage", e))?;
        if !status.is_success() {
            return Err(http::status_error(
                "slack chat.postMessage",
                status,
                &headers,
                &text,
            ));
        }
        #[derive(Deserialize)]
        struct Answer {
            ok: bool,
            #[serde(default)]
            error: String,
        }
        let answer: Answer = serde_json::from_str(&text).map_err(|e| {
            ReportError::transient(format!("slack chat.postMessage: unreadable answer: {e}"))
        })?;
        if answer.ok {
            return Ok(());
        }
        let message = format!("slack chat.postMessage: {}", answer.error);
        match answer.error.as_str() {
            "ratelimited"
            | "internal_error"
            | "fatal_error"
            | "service_unavailable"
            | "request_timeout" => Err(ReportError::Transient {
                message,
                retry_after: http::retry_after(&headers),
            }),
            _ => Err(ReportError::Permanent(message)),
        }
    }

    async fn post_webhook(
        &self,
        url: &Secret,
        channel: &str,
        text: &str,
    ) -> Result<(), ReportError> {
        let mut body = serde_json::json!({ "text": text });
        if !channel.is_empty() {
            body["channel"] = serde_json::Value::String(channel.to_owned());
        }
        let response = self
            .client
            .post(url.expose())
            .json(&body)
            .send()
            .await
            .map_err(|e| http::transport_error("slack webhook", e))?;
        let status = response.status();
        let headers = response.headers().clone();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        Err(http::status_error("slack webhook", status, &headers, &text))
    }
}

#[async_trait]
impl Reporter for SlackReporter {
    fn name(&self) -> &str {
        SLACK_REPORTER_NAME
    }

    /// Prow's rule: state in the merged `job_states_to_report`, and the type in the global
    /// `job_types_to_report` or a channel set on the job itself; merged `report: false` wins.
    /// `spec.report` is not consulted.
    fn should_report(&self, job: &ProwJob) -> bool {
        let (merged, types) = self.merged_config(job);
        if merged.report == Some(false) {
            return false;
        }
        let state = job_state(job);
        let state_ok = merged
            .job_states_to_report
            .as_ref()
            .is_some_and(|states| states.contains(&state));
        let type_ok = types.contains(&job.spec.r#type);
        let job_channel = job
            .spec
            .reporter_config
            .as_ref()
            .and_then(|r| r.slack.as_ref())
            .is_some_and(|s| !s.channel.is_empty());
        state_ok && (type_ok || job_channel)
    }

    async fn report(&self, job: &ProwJob) -> Result<(), ReportError> {
        if self.min_consecutive_failures > 1
            && job.spec.r#type == ProwJobType::Periodic
            && job_state(job) == ProwJobState::Failure
            && let Some(history) = &self.history
        {
            let previous = history
                .previous_consecutive_failures(job)
                .await
                .map_err(ReportError::transient)?;
            if previous.saturating_add(1) < self.min_consecutive_failures {
                tracing::debug!(
                    reporter = SLACK_REPORTER_NAME,
                    job = %job.spec.job,
                    failures = previous + 1,
                    "slack: not alerting yet"
                );
                return Ok(());
            }
        }
        let (config, _) = self.merged_config(job);
        let text = self.render_message(job)?;
        match &self.transport {
            SlackTransport::WebApi { base_url, tokens } => {
                if config.channel.is_empty() {
                    return Err(ReportError::Permanent(
                        "no slack channel configured for this job".to_owned(),
                    ));
                }
                let host = if config.host.is_empty() {
                    "*"
                } else {
                    config.host.as_str()
                };
                let token = tokens.get(host).ok_or_else(|| {
                    ReportError::Permanent(format!("no slack token for host {host:?}"))
                })?;
                self.post_web_api(base_url, token, &config.channel, &text)
                    .await
            }
            SlackTransport::Webhook { url } => self.post_webhook(url, &config.channel, &text).await,
        }
    }
}
