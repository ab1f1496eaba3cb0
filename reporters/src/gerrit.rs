//! The Gerrit reporter (`gerrit-reporter`): posts Prow's review message and vote on the change
//! revision a job ran for (reference §2.2), over Gerrit's REST API (`/a/` paths when
//! authenticated, the `)]}'` prefix stripped from answers).
//!
//! Jobs sharing a report label (`prow.k8s.io/gerrit-report-label`) are aggregated: the review is
//! posted once every job of the (revision, type, label) group finished, and covers the newest
//! run of each job; the other jobs of the group are marked reported in the store so they are
//! not posted again. Revisions that already have a newer patchset are skipped. If voting is
//! refused the review is retried once without the vote, with Prow's notice.
//!
//! Differences from Prow: within one state class, jobs keep their input order (Prow's unstable
//! sort reverses it); a job whose group is not complete yet is marked reported without posting
//! (Prow's `ShouldReport` says no instead); the aggregate then covers it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use bosun_gateway_store::{JobStore, ListFilter, StoreError};
use bosun_proto::{ProwJob, ProwJobState, ProwJobType};
use tokio::sync::Mutex;

use crate::config::Secret;
use crate::{ReportError, Reporter, http, job_state};

/// The reporter's name, the key in `status.prev_report_states` (Prow's).
pub const GERRIT_REPORTER_NAME: &str = "gerrit-reporter";
/// Label: the revision (commit SHA) the job tested.
pub const GERRIT_REVISION_LABEL: &str = "prow.k8s.io/gerrit-revision";
/// Label: the patchset number.
pub const GERRIT_PATCHSET_LABEL: &str = "prow.k8s.io/gerrit-patchset";
/// Label: the Gerrit label to vote on (present but empty: do not vote).
pub const GERRIT_REPORT_LABEL: &str = "prow.k8s.io/gerrit-report-label";
/// Annotation: the change id.
pub const GERRIT_ID_ANNOTATION: &str = "prow.k8s.io/gerrit-id";
/// Annotation: the instance URL, e.g. `https://review.example.com`.
pub const GERRIT_INSTANCE_ANNOTATION: &str = "prow.k8s.io/gerrit-instance";
/// The vote label used when the job names none.
pub const DEFAULT_VOTE_LABEL: &str = "Code-Review";
/// Gerrit's default 16 KiB message limit minus a margin.
pub const MAX_MESSAGE_BYTES: usize = 15 * 1024;
const XSSI_PREFIX: &str = ")]}'";

/// How requests authenticate. With credentials, paths get the `/a/` prefix.
#[derive(Debug, Clone)]
pub enum GerritAuth {
    /// Anonymous.
    None,
    /// HTTP basic auth (user name and HTTP password).
    Basic {
        /// The user.
        user: String,
        /// The HTTP password.
        password: Secret,
    },
    /// Prow's cookie file: cookie `o=<token>`.
    Cookie(Secret),
}

fn label<'a>(job: &'a ProwJob, key: &str) -> Option<&'a str> {
    job.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
}

fn annotation<'a>(job: &'a ProwJob, key: &str) -> Option<&'a str> {
    job.metadata
        .annotations
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
}

fn icon(state: ProwJobState) -> &'static str {
    match state {
        ProwJobState::Pending | ProwJobState::Triggered => "⏳",
        ProwJobState::Success => "✔️",
        ProwJobState::Failure => "❌",
        _ => "🚫",
    }
}

fn rank(state: ProwJobState) -> u8 {
    match state {
        ProwJobState::Failure => 0,
        ProwJobState::Error => 1,
        ProwJobState::Aborted => 2,
        _ => 3,
    }
}

/// Prow's `GenerateReport`: the header line plus one line per job, within
/// [`MAX_MESSAGE_BYTES`] (URLs dropped first, then lines).
pub fn generate_report(jobs: &[ProwJob]) -> String {
    let mut sorted: Vec<&ProwJob> = jobs.iter().collect();
    sorted.sort_by_key(|j| rank(job_state(j)));
    let total = sorted.len();
    let passed = sorted
        .iter()
        .filter(|j| job_state(j) == ProwJobState::Success)
        .count();
    let tide = sorted
        .iter()
        .any(|j| label(j, "created-by-tide") == Some("true"));
    let mut header = format!(
        "Prow Status: {passed} out of {total} pjs passed! 👉 Comment `/retest` to rerun only failed tests (if any), or `/test all` to rerun all tests."
    );
    if tide {
        header
            .push_str(" (Not a duplicated report. Some of the jobs below were triggered by Tide)");
    }
    header.push('\n');
    let short: Vec<String> = sorted
        .iter()
        .map(|j| {
            let state = job_state(j);
            format!(
                "{} {} {}\n",
                icon(state),
                j.spec.job,
                state.as_str().to_uppercase()
            )
        })
        .collect();
    let long: Vec<String> = sorted
        .iter()
        .map(|j| {
            let state = job_state(j);
            let url = j.status.as_ref().map_or("", |s| s.url.as_str());
            if url.is_empty() {
                format!(
                    "{} {} (URL_NOT_FOUND) {}\n",
                    icon(state),
                    j.spec.job,
                    state.as_str().to_uppercase()
                )
            } else {
                format!(
                    "{} [{}]({url}) {}\n",
                    icon(state),
                    j.spec.job,
                    state.as_str().to_uppercase()
                )
            }
        })
        .collect();
    let skipped_urls_note = |n: usize| {
        if n == 0 {
            String::new()
        } else {
            format!(
                "[NOTE FROM PROW: Skipped displaying URLs for {n}/{total} jobs due to reaching gerrit comment size limit]"
            )
        }
    };
    let short_size: usize = header.len() + short.iter().map(String::len).sum::<usize>();
    if short_size + skipped_urls_note(total).len() <= MAX_MESSAGE_BYTES {
        // Upgrade lines to their URL form, in order, while the message fits.
        let mut lines = short.clone();
        let mut size = short_size;
        let mut without_url = total;
        for (i, line) in long.iter().enumerate() {
            let grown = size - lines[i].len() + line.len();
            if grown + skipped_urls_note(without_url - 1).len() > MAX_MESSAGE_BYTES {
                break;
            }
            size = grown;
            lines[i] = line.clone();
            without_url -= 1;
        }
        return format!(
            "{header}{}{}",
            lines.concat(),
            skipped_urls_note(without_url)
        );
    }
    // Even without URLs it does not fit: drop lines from the end.
    let mut kept = short;
    let dropped_note = |k: usize| {
        format!(
            "[NOTE FROM PROW: Skipped displaying {k}/{total} jobs due to reaching gerrit comment size limit (too many jobs)]"
        )
    };
    let mut size = short_size;
    while !kept.is_empty() && size + dropped_note(total - kept.len() + 1).len() > MAX_MESSAGE_BYTES
    {
        if let Some(line) = kept.pop() {
            size -= line.len();
        }
    }
    format!(
        "{header}{}{}",
        kept.concat(),
        dropped_note(total - kept.len())
    )
}

/// Why a Gerrit REST call failed. Messages never carry credentials or the request URL's
/// secrets (there are none in Gerrit URLs; credentials travel in headers only).
#[derive(Debug, thiserror::Error)]
pub enum GerritError {
    /// The request did not get an answer (connection refused, timeout, broken body).
    #[error("{what}: {message}")]
    Transport {
        /// The call (`gerrit query changes`, ...).
        what: String,
        /// What went wrong, without the URL.
        message: String,
    },
    /// Gerrit answered with a non-success status.
    #[error("{what}: http {status}: {body}")]
    Status {
        /// The call.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The start of the answer body.
        body: String,
        /// `Retry-After`, when given.
        retry_after: Option<std::time::Duration>,
    },
    /// The answer was not the JSON the call expects.
    #[error("{what}: unreadable answer: {message}")]
    Decode {
        /// The call.
        what: String,
        /// The parse error.
        message: String,
    },
}

impl GerritError {
    /// Gerrit said 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, GerritError::Status { status: 404, .. })
    }

    /// Worth retrying later: no answer, 429, 5xx, or an unreadable answer (a proxy's error
    /// page). Other statuses are refusals.
    pub fn is_transient(&self) -> bool {
        match self {
            GerritError::Status { status, .. } => *status == 429 || *status >= 500,
            GerritError::Transport { .. } | GerritError::Decode { .. } => true,
        }
    }
}

impl From<GerritError> for ReportError {
    fn from(e: GerritError) -> Self {
        let transient = e.is_transient();
        match e {
            GerritError::Status {
                retry_after,
                ref what,
                status,
                ref body,
            } if transient => ReportError::Transient {
                message: format!("{what}: http {status}: {body}"),
                retry_after,
            },
            e if transient => ReportError::transient(e.to_string()),
            e => ReportError::Permanent(e.to_string()),
        }
    }
}

/// Strips Gerrit's `)]}'` XSSI guard from a JSON answer.
pub fn strip_xssi(body: &str) -> &str {
    let trimmed = body.trim_start();
    trimmed.strip_prefix(XSSI_PREFIX).unwrap_or(trimmed)
}

/// Gerrit's REST API, shared by the reporter and the adapter that polls Gerrit: one base URL
/// per instance (`instance_urls`, default the instance itself), `/a/` paths and credentials
/// when authenticated, `User-Agent: prow`, the XSSI prefix stripped from answers.
#[derive(Clone)]
pub struct GerritClient {
    http: reqwest::Client,
    auth: GerritAuth,
    instance_urls: BTreeMap<String, String>,
}

impl std::fmt::Debug for GerritClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GerritClient")
            .field("auth", &self.auth)
            .field("instance_urls", &self.instance_urls)
            .finish()
    }
}

impl GerritClient {
    /// A client authenticating with `auth`; `instance_urls` maps an instance (the
    /// `prow.k8s.io/gerrit-instance` value, e.g. `https://review.example.com`) to the base URL
    /// to use for it.
    pub fn new(auth: GerritAuth, instance_urls: BTreeMap<String, String>) -> Self {
        GerritClient {
            http: http::client(),
            auth,
            instance_urls,
        }
    }

    /// Whether requests carry credentials (and so use `/a/` paths).
    pub fn is_authenticated(&self) -> bool {
        !matches!(self.auth, GerritAuth::None)
    }

    /// The URL prefix of `instance`'s REST API (with `/a` when authenticated).
    pub fn base(&self, instance: &str) -> String {
        let base = self
            .instance_urls
            .get(instance)
            .map_or(instance, String::as_str)
            .trim_end_matches('/');
        match self.auth {
            GerritAuth::None => base.to_owned(),
            _ => format!("{base}/a"),
        }
    }

    fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let request = request.header(reqwest::header::USER_AGENT, "prow");
        match &self.auth {
            GerritAuth::None => request,
            GerritAuth::Basic { user, password } => {
                request.basic_auth(user, Some(password.expose()))
            }
            GerritAuth::Cookie(token) => {
                request.header(reqwest::header::COOKIE, format!("o={}", token.expose()))
            }
        }
    }

    async fn send(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<String, GerritError> {
        let transport = |e: reqwest::Error| GerritError::Transport {
            what: what.to_owned(),
            message: e.without_url().to_string(),
        };
        let response = self.authorize(request).send().await.map_err(transport)?;
        let status = response.status();
        let retry_after = http::retry_after(response.headers());
        let text = response.text().await.map_err(transport)?;
        if !status.is_success() {
            return Err(GerritError::Status {
                what: what.to_owned(),
                status: status.as_u16(),
                body: text.chars().take(200).collect::<String>().trim().to_owned(),
                retry_after,
            });
        }
        Ok(text)
    }

    /// `GET <base><path>?<query>` and the answer as `T`. `path` starts with `/` and is used as
    /// given (encode project and branch names in it; change ids are already encoded).
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        instance: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, GerritError> {
        let mut request = self.http.get(format!("{}{path}", self.base(instance)));
        if !query.is_empty() {
            request = request.query(query);
        }
        let text = self.send(what, request).await?;
        serde_json::from_str(strip_xssi(&text)).map_err(|e| GerritError::Decode {
            what: what.to_owned(),
            message: e.to_string(),
        })
    }

    /// `GET /changes/{id}`: the change's `status` (`NEW`, `MERGED`, ...), `None` if Gerrit
    /// does not know the change.
    pub async fn change_status(
        &self,
        instance: &str,
        id: &str,
    ) -> Result<Option<String>, GerritError> {
        match self
            .get_json::<serde_json::Value>(
                "gerrit get change",
                instance,
                &format!("/changes/{id}"),
                &[],
            )
            .await
        {
            Ok(change) => Ok(Some(
                change
                    .get("status")
                    .and_then(|s| s.as_str())
                    .unwrap_or_default()
                    .to_owned(),
            )),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /changes/{id}/revisions/{revision}/review` with `message` and, optionally, one
    /// vote.
    pub async fn set_review(
        &self,
        instance: &str,
        id: &str,
        revision: &str,
        message: &str,
        vote: Option<(&str, i32)>,
    ) -> Result<(), GerritError> {
        let mut body = serde_json::json!({ "message": message });
        if let Some((label, value)) = vote {
            body["labels"] = serde_json::json!({ label: value });
        }
        let request = self
            .http
            .post(format!(
                "{}/changes/{id}/revisions/{revision}/review",
                self.base(instance)
            ))
            .json(&body);
        self.send("gerrit set review", request).await.map(|_| ())
    }
}

/// The Gerrit reporter.
pub struct GerritReporter {
    client: GerritClient,
    store: Arc<dyn JobStore>,
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl GerritReporter {
    /// A reporter reading job groups from `store`. `instance_urls` maps a
    /// `prow.k8s.io/gerrit-instance` value to the base URL to use (default: the value itself).
    pub fn new(
        auth: GerritAuth,
        instance_urls: BTreeMap<String, String>,
        store: Arc<dyn JobStore>,
    ) -> Self {
        GerritReporter {
            client: GerritClient::new(auth, instance_urls),
            store,
            locks: Mutex::new(HashMap::new()),
        }
    }

    async fn list(&self, labels: BTreeMap<String, String>) -> Result<Vec<ProwJob>, ReportError> {
        let filter = ListFilter {
            labels,
            ..ListFilter::default()
        };
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .store
                .list(&filter, 0, token.as_deref())
                .await
                .map_err(|e| ReportError::transient(format!("listing jobs: {e}")))?;
            out.extend(page.jobs.into_iter().map(|s| s.job));
            match page.next_page_token {
                Some(next) => token = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// Whether a newer run of the same job, or a job for a newer patchset of the same change,
    /// exists.
    async fn superseded(&self, job: &ProwJob) -> Result<bool, ReportError> {
        let mut labels = BTreeMap::new();
        for key in [
            "prow.k8s.io/refs.org",
            "prow.k8s.io/refs.repo",
            "prow.k8s.io/refs.pull",
        ] {
            if let Some(v) = label(job, key) {
                labels.insert(key.to_owned(), v.to_owned());
            }
        }
        if labels.len() < 3 {
            return Ok(false);
        }
        let patchset = |j: &ProwJob| {
            label(j, GERRIT_PATCHSET_LABEL)
                .and_then(|p| p.parse::<i64>().ok())
                .unwrap_or(-1)
        };
        let mine = patchset(job);
        let runs = self.list(labels).await?;
        let position = runs
            .iter()
            .position(|r| r.metadata.name == job.metadata.name);
        let newer_same_job =
            position.is_some_and(|p| runs[p + 1..].iter().any(|r| r.spec.job == job.spec.job));
        Ok(newer_same_job || runs.iter().any(|r| patchset(r) > mine))
    }

    /// Marks `jobs` (except `skip`, aborted and already-marked ones) as reported.
    async fn mark_others(&self, jobs: &[ProwJob], skip: &str) -> Result<(), ReportError> {
        for job in jobs {
            let Some(name) = job.metadata.name.as_deref() else {
                continue;
            };
            if name == skip {
                continue;
            }
            let mut attempts = 0;
            loop {
                let stored = match self.store.get(name).await {
                    Ok(stored) => stored,
                    Err(StoreError::NotFound { .. }) => break,
                    Err(e) => return Err(ReportError::transient(format!("reading {name}: {e}"))),
                };
                let mut current = stored.job;
                let state = job_state(&current);
                if state == ProwJobState::Aborted || !state.is_final() {
                    break;
                }
                let status = current.status.get_or_insert_with(Default::default);
                if status.prev_report_states.get(GERRIT_REPORTER_NAME) == Some(&state) {
                    break;
                }
                status
                    .prev_report_states
                    .insert(GERRIT_REPORTER_NAME.to_owned(), state);
                match self.store.update(current, stored.revision).await {
                    Ok(_) | Err(StoreError::NotFound { .. }) => break,
                    Err(StoreError::Conflict { .. }) if attempts < 10 => attempts += 1,
                    Err(e) => return Err(ReportError::transient(format!("marking {name}: {e}"))),
                }
            }
        }
        Ok(())
    }

    async fn lock_for(&self, key: String) -> Arc<Mutex<()>> {
        self.locks.lock().await.entry(key).or_default().clone()
    }
}

#[async_trait]
impl Reporter for GerritReporter {
    fn name(&self) -> &str {
        GERRIT_REPORTER_NAME
    }

    fn should_report(&self, job: &ProwJob) -> bool {
        let state = job_state(job);
        let non_empty = |v: Option<&str>| v.is_some_and(|v| !v.is_empty());
        job.spec.report
            && !matches!(
                state,
                ProwJobState::Triggered
                    | ProwJobState::Pending
                    | ProwJobState::Aborted
                    | ProwJobState::Scheduling
            )
            && non_empty(annotation(job, GERRIT_ID_ANNOTATION))
            && non_empty(annotation(job, GERRIT_INSTANCE_ANNOTATION))
            && non_empty(label(job, GERRIT_REVISION_LABEL))
    }

    async fn report(&self, job: &ProwJob) -> Result<(), ReportError> {
        let missing = || ReportError::Permanent("job has no gerrit change".to_owned());
        let id = annotation(job, GERRIT_ID_ANNOTATION).ok_or_else(missing)?;
        let instance = annotation(job, GERRIT_INSTANCE_ANNOTATION).ok_or_else(missing)?;
        let revision = label(job, GERRIT_REVISION_LABEL).ok_or_else(missing)?;
        let name = job.metadata.name.clone().unwrap_or_default();
        let report_label = label(job, GERRIT_REPORT_LABEL);

        let lock = self.lock_for(format!("{instance}/{id}")).await;
        let _guard = lock.lock().await;

        // Another job's aggregate may have covered this one meanwhile.
        let job = match self.store.get(&name).await {
            Ok(stored) => stored.job,
            Err(StoreError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(ReportError::transient(format!("reading {name}: {e}"))),
        };
        let state = job_state(&job);
        if job
            .status
            .as_ref()
            .and_then(|s| s.prev_report_states.get(GERRIT_REPORTER_NAME))
            == Some(&state)
        {
            return Ok(());
        }
        if self.superseded(&job).await? {
            tracing::debug!(reporter = GERRIT_REPORTER_NAME, job_id = %name, "gerrit: newer patchset or run exists, skipping");
            return Ok(());
        }

        let group: Vec<ProwJob> = match report_label.filter(|l| !l.is_empty()) {
            None => vec![job.clone()],
            Some(report_label) => {
                let labels: BTreeMap<String, String> = [
                    (GERRIT_REVISION_LABEL.to_owned(), revision.to_owned()),
                    (
                        "prow.k8s.io/type".to_owned(),
                        job.spec.r#type.as_str().to_owned(),
                    ),
                    (GERRIT_REPORT_LABEL.to_owned(), report_label.to_owned()),
                ]
                .into_iter()
                .collect();
                let mut all = self.list(labels).await?;
                if !all.iter().any(|j| j.metadata.name == job.metadata.name) {
                    all.push(job.clone());
                }
                if all.iter().any(|j| !job_state(j).is_final()) {
                    // Reported with the last job of the group.
                    return Ok(());
                }
                // The newest run of each job (the list is oldest first).
                let mut newest: Vec<ProwJob> = Vec::new();
                for run in all {
                    match newest.iter_mut().find(|j| j.spec.job == run.spec.job) {
                        Some(slot) => *slot = run,
                        None => newest.push(run),
                    }
                }
                newest
            }
        };

        let message = generate_report(&group);
        let vote_label = report_label.unwrap_or(DEFAULT_VOTE_LABEL);
        let vote = if vote_label.is_empty() {
            None
        } else {
            let all_passed = group.iter().all(|j| job_state(j) == ProwJobState::Success);
            let value = if all_passed {
                1
            } else if job.spec.r#type == ProwJobType::Presubmit {
                match self.client.change_status(instance, id).await? {
                    None => return Ok(()),
                    Some(status) if status == "MERGED" => 0,
                    Some(_) => -1,
                }
            } else {
                0
            };
            Some((vote_label, value))
        };

        match self
            .client
            .set_review(instance, id, revision, &message, vote)
            .await
        {
            Ok(()) => {}
            Err(first) if !first.is_transient() => {
                if self.client.change_status(instance, id).await?.is_none() {
                    return Ok(());
                }
                let Some((vote_label, _)) = vote else {
                    return Err(first.into());
                };
                let notice =
                    format!("[NOTICE]: Prow Bot cannot access {vote_label} label!\n{message}");
                self.client
                    .set_review(instance, id, revision, &notice, None)
                    .await?;
            }
            Err(e) => return Err(e.into()),
        }
        self.mark_others(&group, &name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str, state: &str, url: &str) -> ProwJob {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "prow.k8s.io/v1",
            "kind": "ProwJob",
            "metadata": {"name": name},
            "spec": {"type": "presubmit", "job": name},
            "status": {"state": state, "url": url}
        }))
        .expect("job")
    }

    #[test]
    fn report_lists_failures_first() {
        let jobs = vec![
            job("this", "success", "https://u/1"),
            job("that", "failure", ""),
            job("some", "aborted", "https://u/3"),
        ];
        assert_eq!(
            generate_report(&jobs),
            "Prow Status: 1 out of 3 pjs passed! 👉 Comment `/retest` to rerun only failed tests (if any), or `/test all` to rerun all tests.\n\
             ❌ that (URL_NOT_FOUND) FAILURE\n\
             🚫 [some](https://u/3) ABORTED\n\
             ✔️ [this](https://u/1) SUCCESS\n"
        );
    }

    #[test]
    fn report_stays_under_the_size_limit() {
        let url = format!("https://prow.example.com/view/{}", "x".repeat(200));
        let jobs: Vec<ProwJob> = (0..100)
            .map(|i| job(&format!("job-{i:03}"), "success", &url))
            .collect();
        let report = generate_report(&jobs);
        assert!(report.len() <= MAX_MESSAGE_BYTES);
        assert!(report.contains("Skipped displaying URLs for"), "{report}");
        let many: Vec<ProwJob> = (0..2000)
            .map(|i| job(&format!("a-rather-long-job-name-{i:05}"), "failure", ""))
            .collect();
        let report = generate_report(&many);
        assert!(report.len() <= MAX_MESSAGE_BYTES);
        assert!(
            report.contains("(too many jobs)]"),
            "{}",
            &report[report.len() - 200..]
        );
    }
}
