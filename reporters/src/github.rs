//! The GitHub reporter (`github-reporter`): one commit status per reported state change, with
//! Prow's state mapping and description format (reference §2.1), over the REST API at a
//! configurable base URL (GitHub Enterprise, test servers), and optionally Prow's failure
//! comment ([`crate::github_comment`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bosun_gateway_config::ProwConfig;
use bosun_proto::{ProwJob, ProwJobState, ProwJobType};

use crate::config::{GitHubSettings, ReportersConfigError, Secret};
use crate::github_comment::Comments;
use crate::{ReportError, Reporter, http, job_state};

/// The reporter's name, the key in `status.prev_report_states` (Prow's).
pub const GITHUB_REPORTER_NAME: &str = "github-reporter";
/// The public API.
pub const DEFAULT_GITHUB_BASE_URL: &str = "https://api.github.com";
/// GitHub's limit on a status description, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 140;
const BASE_SHA_DELIMITER: &str = " BaseSHA:";
const PADDING: char = '\u{2001}';
const ELIDE: &str = " ... ";

/// Prow's `ContextDescriptionWithBaseSha`: the description with the base SHA appended behind
/// EM QUAD padding, elided in the middle to fit 140 bytes (on UTF-8 character boundaries).
pub fn description_with_base_sha(description: &str, base_sha: &str) -> String {
    let mut suffix = String::new();
    if !base_sha.is_empty() {
        suffix = format!("{BASE_SHA_DELIMITER}{base_sha}");
        // Prow's loop re-evaluates its bound after each prepended pad character.
        let mut i = 0usize;
        while i < MAX_DESCRIPTION_BYTES.saturating_sub(description.len() + suffix.len()) {
            suffix.insert(0, PADDING);
            i += 1;
        }
    }
    let max = MAX_DESCRIPTION_BYTES.saturating_sub(suffix.len());
    format!("{}{suffix}", truncate_middle(description, max))
}

/// Keeps the first and last `(max - 5) / 2` bytes around `" ... "` when `text` is longer than
/// `max` bytes, never splitting a character.
pub fn truncate_middle(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let half = max.saturating_sub(ELIDE.len()) / 2;
    let mut head = half;
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = text.len() - half;
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{}{ELIDE}{}", &text[..head], &text[tail..])
}

/// Prow's state mapping; `None` for `scheduling`.
pub fn github_state(state: ProwJobState) -> Option<&'static str> {
    match state {
        ProwJobState::Triggered | ProwJobState::Pending => Some("pending"),
        ProwJobState::Success => Some("success"),
        ProwJobState::Error => Some("error"),
        ProwJobState::Failure | ProwJobState::Aborted => Some("failure"),
        ProwJobState::Scheduling => None,
    }
}

/// The GitHub reporter.
pub struct GitHubReporter {
    client: reqwest::Client,
    base_url: String,
    token: Secret,
    job_types: Vec<ProwJobType>,
    report_agent: Option<String>,
    comments: Option<(Comments, Vec<String>)>,
}

impl GitHubReporter {
    /// A reporter for `base_url` (e.g. `https://api.github.com`) with `token`; `job_types`
    /// empty means presubmit and postsubmit.
    pub fn new(
        base_url: impl Into<String>,
        token: Secret,
        job_types: Vec<ProwJobType>,
        report_agent: Option<String>,
    ) -> Self {
        let job_types = if job_types.is_empty() {
            vec![ProwJobType::Presubmit, ProwJobType::Postsubmit]
        } else {
            job_types
        };
        GitHubReporter {
            client: http::client(),
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            token,
            job_types,
            report_agent,
            comments: None,
        }
    }

    /// Also keeps Prow's failure comment on pull requests, except in `no_comment_repos`
    /// (`org` or `org/repo`).
    pub fn with_failure_comments(mut self, no_comment_repos: Vec<String>) -> Self {
        let comments = Comments::new(
            self.client.clone(),
            self.base_url.clone(),
            self.token.clone(),
        );
        self.comments = Some((comments, no_comment_repos));
        self
    }

    /// From bosun's settings and `github_reporter` of `config.yaml`.
    pub fn from_settings(
        settings: &GitHubSettings,
        prow: &ProwConfig,
    ) -> Result<Self, ReportersConfigError> {
        let Some(path) = &settings.token_file else {
            return Err(ReportersConfigError::Invalid(
                "github needs token_file".to_owned(),
            ));
        };
        let text =
            std::fs::read_to_string(path).map_err(|source| ReportersConfigError::ReadSecret {
                what: "github token",
                path: path.clone(),
                source,
            })?;
        if text.trim().is_empty() {
            return Err(ReportersConfigError::EmptySecret {
                what: "github token",
                path: path.clone(),
            });
        }
        Ok(GitHubReporter::new(
            settings
                .base_url
                .clone()
                .unwrap_or_else(|| DEFAULT_GITHUB_BASE_URL.to_owned()),
            Secret::new(text.trim()),
            prow.github_reporter.job_types_to_report.clone(),
            settings.report_agent.clone().filter(|a| !a.is_empty()),
        )
        .with_failure_comments(prow.github_reporter.no_comment_repos.clone()))
    }

    /// The status request for the job: (`org`, `repo`, `sha`, JSON body).
    pub fn status_request(
        &self,
        job: &ProwJob,
    ) -> Result<(String, String, String, serde_json::Value), ReportError> {
        let refs = job
            .spec
            .refs
            .as_ref()
            .ok_or_else(|| ReportError::Permanent("job has no refs".to_owned()))?;
        let sha = refs
            .pulls
            .first()
            .map_or(refs.base_sha.as_str(), |p| p.sha.as_str());
        let state = job_state(job);
        let github = github_state(state)
            .ok_or_else(|| ReportError::transient(format!("unknown prowjob state: {state}")))?;
        let status = job.status.clone().unwrap_or_default();
        let mut body = serde_json::json!({
            "state": github,
            "description": description_with_base_sha(&status.description, &refs.base_sha),
            "context": job.spec.context,
        });
        if !status.url.is_empty() {
            body["target_url"] = serde_json::Value::String(status.url);
        }
        Ok((refs.org.clone(), refs.repo.clone(), sha.to_owned(), body))
    }
}

impl GitHubReporter {
    /// The failure comment step, for finished jobs outside `no_comment_repos`.
    async fn comment(&self, job: &ProwJob) -> Result<(), ReportError> {
        let Some((comments, no_comment_repos)) = &self.comments else {
            return Ok(());
        };
        let Some(refs) = job.spec.refs.as_ref() else {
            return Ok(());
        };
        let org_repo = format!("{}/{}", refs.org, refs.repo);
        if no_comment_repos
            .iter()
            .any(|r| *r == refs.org || *r == org_repo)
            || !job_state(job).is_final()
        {
            return Ok(());
        }
        comments.report(job).await
    }
}

/// The delay GitHub asks for on a rate-limited answer: `Retry-After`, else the reset time
/// when no requests remain.
fn github_retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    if let Some(after) = http::retry_after(headers) {
        return Some(after);
    }
    let remaining = headers.get("x-ratelimit-remaining")?.to_str().ok()?;
    if remaining.trim() != "0" {
        return None;
    }
    let reset: u64 = headers
        .get("x-ratelimit-reset")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(reset.saturating_sub(now).max(1)))
}

#[async_trait]
impl Reporter for GitHubReporter {
    fn name(&self) -> &str {
        GITHUB_REPORTER_NAME
    }

    /// `spec.report`, no Gerrit report label, a configured type, the agent filter, and at most
    /// one pull (batches get no status).
    fn should_report(&self, job: &ProwJob) -> bool {
        let gerrit_label = job
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("prow.k8s.io/gerrit-report-label"))
            .is_some_and(|v| !v.is_empty());
        job.spec.report
            && !gerrit_label
            && self.job_types.contains(&job.spec.r#type)
            && self
                .report_agent
                .as_ref()
                .is_none_or(|agent| *agent == job.spec.agent)
            && job.spec.refs.as_ref().is_some_and(|r| r.pulls.len() <= 1)
            && job_state(job) != ProwJobState::Scheduling
    }

    async fn report(&self, job: &ProwJob) -> Result<(), ReportError> {
        let (org, repo, sha, body) = self.status_request(job)?;
        let url = format!("{}/repos/{org}/{repo}/statuses/{sha}", self.base_url);
        let response = self
            .client
            .post(url)
            .bearer_auth(self.token.expose())
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header(reqwest::header::USER_AGENT, "bosun")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .json(&body)
            .send()
            .await
            .map_err(|e| http::transport_error("github create status", e))?;
        let status = response.status();
        if status.is_success() {
            return self.comment(job).await;
        }
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        if text.contains("This SHA and context has reached the maximum number of statuses")
            || text.contains(r#""message":"Not Found""#)
            || text.contains(r#""message":"No commit found for SHA:"#)
        {
            tracing::debug!(reporter = GITHUB_REPORTER_NAME, %org, %repo, "github: status not settable, skipping");
            return self.comment(job).await;
        }
        let rate_limited = status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || (status == reqwest::StatusCode::FORBIDDEN
                && (headers.contains_key(reqwest::header::RETRY_AFTER)
                    || text.to_ascii_lowercase().contains("rate limit")));
        if rate_limited {
            return Err(ReportError::Transient {
                message: format!(
                    "github create status: rate limited (http {})",
                    status.as_u16()
                ),
                retry_after: github_retry_after(&headers),
            });
        }
        Err(http::status_error(
            "github create status",
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
    fn description_like_prow() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let d = description_with_base_sha("Job succeeded.", sha);
        assert_eq!(d.len(), 123);
        assert_eq!(d.matches('\u{2001}').count(), 20);
        assert!(d.starts_with("Job succeeded.\u{2001}"));
        assert!(d.ends_with(&format!(" BaseSHA:{sha}")));

        let long = "x".repeat(200);
        let d = description_with_base_sha(&long, "");
        assert_eq!(d.len(), 139);
        assert_eq!(d, format!("{} ... {}", "x".repeat(67), "x".repeat(67)));

        let d = description_with_base_sha(&long, sha);
        assert!(d.len() <= MAX_DESCRIPTION_BYTES);
        assert!(d.contains(" ... "));

        let multibyte = "é".repeat(100);
        let d = description_with_base_sha(&multibyte, "");
        assert!(d.len() <= MAX_DESCRIPTION_BYTES);
    }

    #[test]
    fn state_mapping() {
        assert_eq!(github_state(ProwJobState::Aborted), Some("failure"));
        assert_eq!(github_state(ProwJobState::Triggered), Some("pending"));
        assert_eq!(github_state(ProwJobState::Scheduling), None);
    }
}
