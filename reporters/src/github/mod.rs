//! The GitHub reporter (`github-reporter`): one commit status per reported state change, with
//! Prow's state mapping and description format (reference §2.1), over the REST API at a
//! configurable base URL (GitHub Enterprise, test servers), authenticated with a token or as a
//! GitHub App ([`client`]), and optionally Prow's failure comment ([`comment`]).

pub mod client;
pub mod comment;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use bosun_gateway_config::ProwConfig;
use bosun_gateway_store::{JobStore, ListFilter};
use bosun_proto::{ProwJob, ProwJobState, ProwJobType};

use self::client::classify;
pub use self::client::{Answer, GitHubAuth, GitHubClient, Method};
use self::comment::Comments;
use crate::config::{GitHubSettings, ReportersConfigError};
use crate::template::Template;
use crate::{ReportError, Reporter, job_state};

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
    client: Arc<GitHubClient>,
    job_types: Vec<ProwJobType>,
    report_agent: Option<String>,
    comments: Option<CommentSettings>,
}

/// How the failure comment is kept.
struct CommentSettings {
    comments: Comments,
    no_comment_repos: Vec<String>,
    summary_comment_repos: Vec<String>,
    /// `plank.report_templates`, parsed.
    templates: BTreeMap<String, Template>,
    store: Option<Arc<dyn JobStore>>,
}

/// Whether `org`/`repo` is listed (as `org` or `org/repo`).
fn listed(list: &[String], org: &str, repo: &str) -> bool {
    list.iter()
        .any(|r| r == org || r.split_once('/') == Some((org, repo)))
}

impl GitHubReporter {
    /// A reporter sending through `client`; `job_types` empty means presubmit and postsubmit.
    pub fn new(
        client: GitHubClient,
        job_types: Vec<ProwJobType>,
        report_agent: Option<String>,
    ) -> Self {
        let job_types = if job_types.is_empty() {
            vec![ProwJobType::Presubmit, ProwJobType::Postsubmit]
        } else {
            job_types
        };
        GitHubReporter {
            client: Arc::new(client),
            job_types,
            report_agent,
            comments: None,
        }
    }

    /// Also keeps Prow's failure comment on pull requests, except in `no_comment_repos`
    /// (`org` or `org/repo`).
    pub fn with_failure_comments(mut self, no_comment_repos: Vec<String>) -> Self {
        self.comments = Some(CommentSettings {
            comments: Comments::new(self.client.clone()),
            no_comment_repos,
            summary_comment_repos: Vec::new(),
            templates: BTreeMap::new(),
            store: None,
        });
        self
    }

    /// In `repos` (`org` or `org/repo`) the comment is posted once every job of the pull
    /// request has finished, listing them all (Prow's `summary_comment_repos`); the jobs are
    /// read from `store`. Needs [`GitHubReporter::with_failure_comments`] first.
    pub fn with_summary_comments(mut self, repos: Vec<String>, store: Arc<dyn JobStore>) -> Self {
        if let Some(settings) = &mut self.comments {
            settings.summary_comment_repos = repos;
            settings.store = Some(store);
        }
        self
    }

    /// Adds `plank.report_templates` (`org/repo`, `org` or `*` → template) to the comment.
    /// Needs [`GitHubReporter::with_failure_comments`] first.
    pub fn with_report_templates(
        mut self,
        templates: &BTreeMap<String, String>,
    ) -> Result<Self, ReportersConfigError> {
        let mut parsed = BTreeMap::new();
        for (key, source) in templates {
            let template = Template::parse(source).map_err(|e| {
                ReportersConfigError::Invalid(format!("plank.report_templates[{key:?}]: {e}"))
            })?;
            parsed.insert(key.clone(), template);
        }
        if let Some(settings) = &mut self.comments {
            settings.templates = parsed;
        }
        Ok(self)
    }

    /// From bosun's settings and `github_reporter` / `plank` of `config.yaml`; `store` is
    /// needed for `summary_comment_repos`.
    pub fn from_settings(
        settings: &GitHubSettings,
        prow: &ProwConfig,
        store: Option<Arc<dyn JobStore>>,
    ) -> Result<Self, ReportersConfigError> {
        let mut reporter = GitHubReporter::new(
            GitHubClient::from_settings(settings)?,
            prow.github_reporter.job_types_to_report.clone(),
            settings.report_agent.clone().filter(|a| !a.is_empty()),
        )
        .with_failure_comments(prow.github_reporter.no_comment_repos.clone())
        .with_report_templates(&prow.plank.report_templates)?;
        let summary = prow.github_reporter.summary_comment_repos.clone();
        if !summary.is_empty() {
            let Some(store) = store else {
                return Err(ReportersConfigError::Invalid(
                    "github_reporter.summary_comment_repos needs the job store".to_owned(),
                ));
            };
            reporter = reporter.with_summary_comments(summary, store);
        }
        Ok(reporter)
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

    /// Whether the comment step counts this job: a reported type, `spec.report`, finished.
    fn commentable(&self, job: &ProwJob) -> bool {
        job.spec.report && self.job_types.contains(&job.spec.r#type) && job_state(job).is_final()
    }

    /// The failure comment step, for finished jobs outside `no_comment_repos`.
    async fn comment(&self, job: &ProwJob) -> Result<(), ReportError> {
        let Some(settings) = &self.comments else {
            return Ok(());
        };
        let Some(refs) = job.spec.refs.as_ref() else {
            return Ok(());
        };
        let [pull] = refs.pulls.as_slice() else {
            return Ok(());
        };
        if listed(&settings.no_comment_repos, &refs.org, &refs.repo) || !self.commentable(job) {
            return Ok(());
        }
        let lock = settings
            .comments
            .lock_for(&format!("{}/{}#{}", refs.org, refs.repo, pull.number))
            .await;
        let _guard = lock.lock().await;
        let summary = listed(&settings.summary_comment_repos, &refs.org, &refs.repo);
        let jobs = match (&settings.store, summary) {
            (Some(store), true) => {
                let Some(jobs) = self.pull_request_jobs(store.as_ref(), job).await? else {
                    return Ok(());
                };
                jobs
            }
            _ => vec![job.clone()],
        };
        let template = self.render_template(settings, job)?;
        settings
            .comments
            .report(&jobs, summary, template.as_deref())
            .await
    }

    /// Every job of the job's pull request, newest run per job name, or `None` while one of
    /// them has not finished (Prow's summary mode).
    async fn pull_request_jobs(
        &self,
        store: &dyn JobStore,
        job: &ProwJob,
    ) -> Result<Option<Vec<ProwJob>>, ReportError> {
        let Some(refs) = job.spec.refs.as_ref() else {
            return Ok(None);
        };
        let filter = ListFilter {
            org: Some(refs.org.clone()),
            repo: Some(refs.repo.clone()),
            pull: refs.pulls.first().map(|p| p.number),
            ..ListFilter::default()
        };
        let mut newest: BTreeMap<String, ProwJob> = BTreeMap::new();
        let mut token: Option<String> = None;
        loop {
            let page = store
                .list(&filter, 0, token.as_deref())
                .await
                .map_err(|e| {
                    ReportError::transient(format!("listing the pull request's jobs: {e}"))
                })?;
            for stored in page.jobs {
                let other = stored.job;
                if other.spec.r#type != ProwJobType::Presubmit || !other.spec.report {
                    continue;
                }
                if !job_state(&other).is_final() {
                    return Ok(None);
                }
                let created = other.metadata.creation_timestamp.clone();
                match newest.get(&other.spec.job) {
                    Some(seen) if seen.metadata.creation_timestamp > created => {}
                    _ => {
                        newest.insert(other.spec.job.clone(), other);
                    }
                }
            }
            match page.next_page_token {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        // The job being reported is the freshest copy of itself.
        if let Some(entry) = newest.get_mut(&job.spec.job) {
            if entry.metadata.name == job.metadata.name {
                *entry = job.clone();
            }
        } else {
            newest.insert(job.spec.job.clone(), job.clone());
        }
        Ok(Some(
            newest
                .into_values()
                .filter(|j| self.commentable(j))
                .collect(),
        ))
    }

    /// The report template for the job's repository, rendered against the job.
    fn render_template(
        &self,
        settings: &CommentSettings,
        job: &ProwJob,
    ) -> Result<Option<String>, ReportError> {
        let Some(refs) = job.spec.refs.as_ref() else {
            return Ok(None);
        };
        let template = settings
            .templates
            .get(&format!("{}/{}", refs.org, refs.repo))
            .or_else(|| settings.templates.get(&refs.org))
            .or_else(|| settings.templates.get("*"));
        let Some(template) = template else {
            return Ok(None);
        };
        let data = serde_json::to_value(job)
            .map_err(|e| ReportError::Permanent(format!("encoding job: {e}")))?;
        Ok(Some(template.render(&data)))
    }
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
        let answer = self
            .client
            .request_raw(
                "github create status",
                &org,
                Method::Post,
                &format!("/repos/{org}/{repo}/statuses/{sha}"),
                Some(&body),
            )
            .await?;
        if answer.status.is_success() {
            return self.comment(job).await;
        }
        let text = &answer.body;
        if text.contains("This SHA and context has reached the maximum number of statuses")
            || text.contains(r#""message":"Not Found""#)
            || text.contains(r#""message":"No commit found for SHA:"#)
        {
            tracing::debug!(reporter = GITHUB_REPORTER_NAME, %org, %repo, "github: status not settable, skipping");
            return self.comment(job).await;
        }
        Err(classify("github create status", &answer))
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
