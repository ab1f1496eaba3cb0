//! Prow's `trigger` plugin: GitHub events → ProwJobs (reference
//! `prow-reporters-triggers.md` §4).
//!
//! - `pull_request` opened / reopened / ready_for_review / synchronize / edited (base changed)
//!   / labeled `ok-to-test` or `lgtm`: the presubmits that run by themselves (`always_run`,
//!   `run_if_changed`, `skip_if_only_changed`, judged on the PR's changed files) for trusted
//!   pull requests; an untrusted author gets Prow's welcome comment and `needs-ok-to-test`;
//!   drafts are skipped with Prow's comment. A new push (synchronize), closing or converting to
//!   draft aborts the PR's unfinished presubmits first.
//! - `issue_comment` on an open PR: `/test NAME…`, `/test all`, `/retest` (failed contexts of
//!   the head commit, from GitHub's combined status), `/retest-required`,
//!   `/test-manual-required`, `/ok-to-test` (and `cancel`), and help (`/test ?`; an unknown
//!   `/test x` is answered with the list of available jobs).
//! - `push`: postsubmits whose branch and change filters match.
//!
//! Trust follows Prow: the bot, org members, collaborators (unless `only_org_members`),
//! `trusted_apps` and `trusted_org` members are trusted users; a PR is trusted when its author
//! is, or when it carries `ok-to-test`. Every job carries `event-GUID` (the delivery) and is
//! created with the idempotency key `github/<delivery>/<job>`, so a redelivered webhook never
//! creates a job twice.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bosun_gateway_config::{LoadedConfig, Presubmit, new_prowjob, postsubmit_spec, presubmit_spec};
use bosun_gateway_store::{ListFilter, StoreError};
use bosun_proto::{ProwJobType, Pull, Refs};
use bosun_reporters::ReportError;
use bosun_reporters::github::{GitHubClient, Method};

use super::filter::{self, Filter};
use super::github_events::{IssueCommentEvent, PullRequest, PullRequestEvent, PushEvent};
use super::hook::{Delivery, DeliveryError, DeliveryHandler};
use super::plugins::{PluginConfig, TriggerSettings};
use super::{Live, TriggerContext};

/// The label that marks a PR as trusted for testing.
pub const OK_TO_TEST: &str = "ok-to-test";
/// The label on PRs that wait for `/ok-to-test`.
pub const NEEDS_OK_TO_TEST: &str = "needs-ok-to-test";
/// The label on jobs started by `/retest`.
pub const RETEST_LABEL: &str = "prow.k8s.io/retest";
/// The label carrying the webhook delivery GUID.
pub const EVENT_GUID_LABEL: &str = "event-GUID";
/// The label saying whether a presubmit is optional.
pub const IS_OPTIONAL_LABEL: &str = "prow.k8s.io/is-optional";

/// Why an event could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// The payload is not the event it claims to be.
    #[error("malformed {event} payload: {message}")]
    Payload {
        /// The event type.
        event: String,
        /// The decoder's message (with the field path).
        message: String,
    },
    /// GitHub refused or could not be reached.
    #[error("github: {0}")]
    GitHub(#[from] ReportError),
    /// Jobs could not be stored.
    #[error("job store: {0}")]
    Store(#[from] StoreError),
}

/// The GitHub trigger.
pub struct GitHubTrigger {
    ctx: TriggerContext,
    github: Arc<GitHubClient>,
    plugins: Live<PluginConfig>,
}

impl GitHubTrigger {
    /// A trigger creating jobs through `ctx`, talking to GitHub with `github`.
    pub fn new(
        ctx: TriggerContext,
        github: Arc<GitHubClient>,
        plugins: Live<PluginConfig>,
    ) -> Self {
        Self {
            ctx,
            github,
            plugins,
        }
    }

    async fn dispatch(&self, d: &Delivery) -> Result<(), TriggerError> {
        fn decode<T: serde::de::DeserializeOwned>(d: &Delivery) -> Result<T, TriggerError> {
            let de = &mut serde_json::Deserializer::from_slice(&d.payload);
            serde_path_to_error::deserialize(de).map_err(|e| TriggerError::Payload {
                event: d.event.clone(),
                message: e.to_string(),
            })
        }
        match d.event.as_str() {
            "pull_request" => self.pull_request(decode(d)?, &d.guid).await,
            "issue_comment" => self.issue_comment(decode(d)?, &d.guid).await,
            "push" => self.push(decode(d)?, &d.guid).await,
            other => {
                tracing::debug!(event = other, "event ignored");
                Ok(())
            }
        }
    }

    fn enabled(&self, org: &str, repo: &str) -> Option<(Arc<LoadedConfig>, TriggerSettings)> {
        let plugins = self
            .plugins
            .current()
            .unwrap_or_else(|| Arc::new(PluginConfig::everywhere()));
        if !plugins.enabled("trigger", org, repo) {
            return None;
        }
        let config = self.ctx.config.current()?;
        Some((config, plugins.trigger_for(org, repo)))
    }

    // ---- pull_request ------------------------------------------------------------------

    async fn pull_request(&self, ev: PullRequestEvent, guid: &str) -> Result<(), TriggerError> {
        let pr = &ev.pull_request;
        let base = if pr.base.repo.name.is_empty() {
            &ev.repository
        } else {
            &pr.base.repo
        };
        let (org, repo) = (base.owner_login().to_owned(), base.name.clone());
        let Some((config, settings)) = self.enabled(&org, &repo) else {
            return Ok(());
        };
        let number = if pr.number != 0 { pr.number } else { ev.number };
        match ev.action.as_str() {
            "opened" => {
                if self
                    .trusted_user(&settings, &pr.user.login, &org, &repo)
                    .await?
                {
                    if pr.draft {
                        self.comment(
                            &org,
                            &repo,
                            number,
                            "Skipping CI for Draft Pull Request.\nIf you want CI signal for your change, please convert it to an actual PR.\nYou can still manually trigger a test run with `/test all`",
                        )
                        .await?;
                        return Ok(());
                    }
                    self.test_all(&config, &org, &repo, pr, guid).await
                } else {
                    self.welcome(&settings, &org, &repo, pr).await
                }
            }
            "reopened" | "ready_for_review" => {
                self.rerun_if_trusted(&config, &settings, &org, &repo, pr, guid)
                    .await
            }
            "edited" if ev.base_changed() => {
                self.rerun_if_trusted(&config, &settings, &org, &repo, pr, guid)
                    .await
            }
            "synchronize" => {
                self.abort_presubmits(
                    &org,
                    &repo,
                    number,
                    "a new commit was pushed to the pull request",
                )
                .await?;
                self.rerun_if_trusted(&config, &settings, &org, &repo, pr, guid)
                    .await
            }
            "labeled" => {
                let label = ev.label.as_ref().map(|l| l.name.as_str()).unwrap_or("");
                if pr.draft {
                    return Ok(());
                }
                if label == "lgtm" && !self.trusted_pr(&settings, &org, &repo, pr).await? {
                    return self.test_all(&config, &org, &repo, pr, guid).await;
                }
                if label == OK_TO_TEST && ev.sender.login != self.bot().await? {
                    return self.test_all(&config, &org, &repo, pr, guid).await;
                }
                Ok(())
            }
            "closed" | "converted_to_draft" => {
                self.abort_presubmits(
                    &org,
                    &repo,
                    number,
                    "the pull request was closed or made a draft",
                )
                .await
            }
            _ => Ok(()),
        }
    }

    async fn rerun_if_trusted(
        &self,
        config: &LoadedConfig,
        settings: &TriggerSettings,
        org: &str,
        repo: &str,
        pr: &PullRequest,
        guid: &str,
    ) -> Result<(), TriggerError> {
        if !self.trusted_pr(settings, org, repo, pr).await? {
            return Ok(());
        }
        if pr.has_label(NEEDS_OK_TO_TEST) {
            self.remove_label(org, repo, pr.number, NEEDS_OK_TO_TEST)
                .await?;
        }
        if pr.draft {
            return Ok(());
        }
        self.test_all(config, org, repo, pr, guid).await
    }

    /// The presubmits that run by themselves.
    async fn test_all(
        &self,
        config: &LoadedConfig,
        org: &str,
        repo: &str,
        pr: &PullRequest,
        guid: &str,
    ) -> Result<(), TriggerError> {
        if pr.mergeable == Some(false) {
            tracing::info!(
                pull = pr.number,
                "not testing: the pull request has conflicts"
            );
            return Ok(());
        }
        let presubmits = config.presubmits_for(&format!("{org}/{repo}"));
        let changes = self
            .changes_if_needed(org, repo, pr.number, &presubmits)
            .await?;
        let run = filter::filter_presubmits(
            &Filter::TestAll,
            &mut changes.as_slice(),
            &pr.base.branch,
            presubmits,
        )
        .unwrap_or_else(|never| match never {});
        self.create_presubmits(config, org, repo, pr, &run, guid, &BTreeMap::new())
            .await
    }

    async fn welcome(
        &self,
        settings: &TriggerSettings,
        org: &str,
        repo: &str,
        pr: &PullRequest,
    ) -> Result<(), TriggerError> {
        let commands = format!(
            "I understand the commands that are listed [here](https://go.k8s.io/bot-commands?repo={org}%2F{repo})."
        );
        let body = if settings.ignore_ok_to_test {
            format!(
                "Hi @{}. Thanks for your PR.\n\nPRs from untrusted users cannot be marked as trusted with `/ok-to-test` in this repo meaning untrusted PR authors can never trigger tests themselves. Collaborators can still trigger tests on the PR using `/test all`.\n\n{commands}",
                pr.user.login
            )
        } else {
            let join = if settings.join_org_url.is_empty() {
                format!("https://github.com/orgs/{org}/people")
            } else {
                settings.join_org_url.clone()
            };
            format!(
                "Hi @{}. Thanks for your PR.\n\nI'm waiting for a [{org}](https://github.com/orgs/{org}/people) member to verify that this patch is reasonable to test. If it is, they should reply with `/ok-to-test` on its own line. Until that is done, I will not automatically test new commits in this PR, but the usual testing commands by org members will still work. Regular contributors should [join the org]({join}) to skip this step.\n\nOnce the patch is verified, the new status will be reflected by the `{OK_TO_TEST}` label.\n\n{commands}",
                pr.user.login
            )
        };
        self.comment(org, repo, pr.number, &body).await?;
        if !settings.ignore_ok_to_test && !pr.has_label(OK_TO_TEST) {
            self.add_label(org, repo, pr.number, NEEDS_OK_TO_TEST)
                .await?;
        }
        Ok(())
    }

    // ---- issue_comment -----------------------------------------------------------------

    async fn issue_comment(&self, ev: IssueCommentEvent, guid: &str) -> Result<(), TriggerError> {
        if ev.action != "created" || ev.issue.pull_request.is_none() || ev.issue.state != "open" {
            return Ok(());
        }
        let org = ev.repository.owner_login().to_owned();
        let repo = ev.repository.name.clone();
        let Some((config, settings)) = self.enabled(&org, &repo) else {
            return Ok(());
        };
        let commenter = &ev.comment.user.login;
        if *commenter == self.bot().await? {
            return Ok(());
        }
        let number = ev.issue.number;
        let body = &ev.comment.body;
        let text = filter::strip_code_blocks(body);
        let presubmits = config.presubmits_for(&format!("{org}/{repo}"));
        if !filter::is_relevant_comment(&text, presubmits.iter().copied()) {
            return Ok(());
        }
        let reply = |message: &str| format_response(commenter, message, &ev.comment.html_url, body);

        let commenter_trusted = self.trusted_user(&settings, commenter, &org, &repo).await?;
        let labelled = ev.issue.labels.iter().any(|l| l.name == OK_TO_TEST);
        if !commenter_trusted
            && !labelled
            && !self
                .trusted_user(&settings, &ev.issue.user.login, &org, &repo)
                .await?
        {
            let message = if settings.ignore_ok_to_test {
                "Cannot trigger testing until a trusted user reviews the PR."
            } else {
                "Cannot trigger testing until a trusted user reviews the PR and leaves an `/ok-to-test` message."
            };
            return self.comment(&org, &repo, number, &reply(message)).await;
        }
        let has = |label: &str| ev.issue.labels.iter().any(|l| l.name == label);
        let honour_ok_to_test = !settings.ignore_ok_to_test && commenter_trusted;
        if honour_ok_to_test && filter::OK_TO_TEST_RE.is_match(&text) {
            if !has(OK_TO_TEST) {
                self.add_label(&org, &repo, number, OK_TO_TEST).await?;
            }
            if has(NEEDS_OK_TO_TEST) {
                self.remove_label(&org, &repo, number, NEEDS_OK_TO_TEST)
                    .await?;
            }
        }
        if filter::OK_TO_TEST_CANCEL_RE.is_match(&text) {
            if !commenter_trusted {
                return self
                    .comment(
                        &org,
                        &repo,
                        number,
                        &reply("Only trusted users can revoke `/ok-to-test`."),
                    )
                    .await;
            }
            if has(OK_TO_TEST) {
                self.remove_label(&org, &repo, number, OK_TO_TEST).await?;
            }
            if !has(NEEDS_OK_TO_TEST) {
                self.add_label(&org, &repo, number, NEEDS_OK_TO_TEST)
                    .await?;
            }
            return Ok(());
        }

        let pr: PullRequest = self
            .get(
                "github get pull request",
                &org,
                &format!("/repos/{org}/{repo}/pulls/{number}"),
            )
            .await?;
        if pr.mergeable == Some(false) {
            tracing::info!(pull = number, "not testing: the pull request has conflicts");
            return Ok(());
        }
        // Unlike Prow (which filters on the raw body), commands quoted in code blocks never
        // select jobs: `text` has them removed.
        let retest =
            filter::RETEST_RE.is_match(&text) || filter::RETEST_REQUIRED_RE.is_match(&text);
        let contexts = if retest {
            Some(self.contexts(&org, &repo, &pr.head.sha).await?)
        } else {
            None
        };
        let mut context_source =
            || Ok::<_, std::convert::Infallible>(contexts.clone().unwrap_or_default());
        let filter = filter::presubmit_filter(honour_ok_to_test, &mut context_source, &text)
            .unwrap_or_else(|never| match never {});
        let changes = self
            .changes_if_needed(&org, &repo, number, &presubmits)
            .await?;
        let run = filter::filter_presubmits(
            &filter,
            &mut changes.as_slice(),
            &pr.base.branch,
            presubmits.iter().copied(),
        )
        .unwrap_or_else(|never| match never {});

        let help = |note: &str| {
            filter::help_message(
                &org,
                &repo,
                &pr.base.branch,
                note,
                presubmits.iter().copied(),
            )
        };
        let help_reply = filter::should_respond_with_help(&text, run.len()).map(help);
        if let Some(message) = help_reply {
            self.comment(&org, &repo, number, &reply(&message)).await?;
        }
        let mut extra = BTreeMap::new();
        if retest {
            extra.insert(RETEST_LABEL.to_owned(), "true".to_owned());
        }
        self.create_presubmits(&config, &org, &repo, &pr, &run, guid, &extra)
            .await
    }

    // ---- push --------------------------------------------------------------------------

    async fn push(&self, ev: PushEvent, guid: &str) -> Result<(), TriggerError> {
        if ev.deleted || ev.after.bytes().all(|b| b == b'0') {
            return Ok(());
        }
        let org = ev.repository.owner_login().to_owned();
        let repo = ev.repository.name.clone();
        let Some((config, _)) = self.enabled(&org, &repo) else {
            return Ok(());
        };
        let branch = ev.branch().to_owned();
        let changes = ev.changed_files();
        let repo_link = if ev.repository.html_url.is_empty() {
            format!("{}/{org}/{repo}", link_url(&config))
        } else {
            ev.repository.html_url.clone()
        };
        let mut first_error = None;
        for job in config.postsubmits_for(&format!("{org}/{repo}")) {
            let runs = job
                .should_run(&branch, &mut changes.as_slice())
                .unwrap_or_else(|never| match never {});
            if !runs {
                continue;
            }
            let refs = Refs {
                org: org.clone(),
                repo: repo.clone(),
                repo_link: repo_link.clone(),
                base_ref: branch.clone(),
                base_sha: ev.after.clone(),
                base_link: ev.compare.clone(),
                ..Refs::default()
            };
            let mut labels = job.base.labels.clone();
            labels.insert(EVENT_GUID_LABEL.to_owned(), guid.to_owned());
            let prowjob = new_prowjob(
                postsubmit_spec(job, refs),
                &labels,
                &job.base.annotations,
                config.prow().scheduler.enabled,
            );
            if let Err(e) = self.create(prowjob, guid, &job.name).await {
                tracing::warn!(job = %job.name, "could not create postsubmit: {e}");
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    // ---- jobs --------------------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    async fn create_presubmits(
        &self,
        config: &LoadedConfig,
        org: &str,
        repo: &str,
        pr: &PullRequest,
        jobs: &[&Presubmit],
        guid: &str,
        extra_labels: &BTreeMap<String, String>,
    ) -> Result<(), TriggerError> {
        let refs = pr_refs(config, org, repo, pr);
        let mut first_error = None;
        for job in jobs {
            let mut labels = job.base.labels.clone();
            labels.insert(EVENT_GUID_LABEL.to_owned(), guid.to_owned());
            labels.insert(IS_OPTIONAL_LABEL.to_owned(), job.optional.to_string());
            labels.extend(extra_labels.iter().map(|(k, v)| (k.clone(), v.clone())));
            let prowjob = new_prowjob(
                presubmit_spec(job, refs.clone()),
                &labels,
                &job.base.annotations,
                config.prow().scheduler.enabled,
            );
            if let Err(e) = self.create(prowjob, guid, &job.name).await {
                tracing::warn!(job = %job.name, "could not create presubmit: {e}");
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn create(
        &self,
        job: bosun_proto::ProwJob,
        guid: &str,
        name: &str,
    ) -> Result<(), TriggerError> {
        let (_, created) = self
            .ctx
            .create_job(job, Some(format!("github/{guid}/{name}")))
            .await?;
        if created {
            self.ctx
                .metrics
                .inc("bosun_trigger_jobs_total", &[("source", "github")]);
        }
        Ok(())
    }

    /// Aborts the pull request's unfinished presubmits (a new push, or closed).
    async fn abort_presubmits(
        &self,
        org: &str,
        repo: &str,
        number: i64,
        why: &str,
    ) -> Result<(), TriggerError> {
        let filter = ListFilter {
            job_type: Some(ProwJobType::Presubmit),
            org: Some(org.to_owned()),
            repo: Some(repo.to_owned()),
            pull: Some(number),
            incomplete_only: true,
            ..ListFilter::default()
        };
        let mut token: Option<String> = None;
        loop {
            let page = self.ctx.store.list(&filter, 0, token.as_deref()).await?;
            for stored in &page.jobs {
                match self
                    .ctx
                    .dispatcher
                    .abort(stored.job.name(), &format!("{why} (trigger plugin)"))
                    .await
                {
                    Ok(_) => tracing::info!(job = %stored.job.name(), "presubmit aborted: {why}"),
                    Err(e) => tracing::debug!(job = %stored.job.name(), "not aborted: {e}"),
                }
            }
            match page.next_page_token {
                Some(t) => token = Some(t),
                None => return Ok(()),
            }
        }
    }

    // ---- trust -------------------------------------------------------------------------

    async fn trusted_user(
        &self,
        settings: &TriggerSettings,
        user: &str,
        org: &str,
        repo: &str,
    ) -> Result<bool, TriggerError> {
        if user.is_empty() {
            return Ok(false);
        }
        if user == self.bot().await? {
            return Ok(true);
        }
        if let Some(app) = user.strip_suffix("[bot]")
            && settings.trusted_apps.iter().any(|a| a == app)
        {
            return Ok(true);
        }
        if self
            .exists(
                "github org membership",
                org,
                &format!("/orgs/{org}/members/{user}"),
            )
            .await?
        {
            return Ok(true);
        }
        if !settings.only_org_members
            && self
                .exists(
                    "github collaborator",
                    org,
                    &format!("/repos/{org}/{repo}/collaborators/{user}"),
                )
                .await?
        {
            return Ok(true);
        }
        let trusted_org = &settings.trusted_org;
        if !trusted_org.is_empty()
            && trusted_org != org
            && self
                .exists(
                    "github org membership",
                    trusted_org,
                    &format!("/orgs/{trusted_org}/members/{user}"),
                )
                .await?
        {
            return Ok(true);
        }
        Ok(false)
    }

    async fn trusted_pr(
        &self,
        settings: &TriggerSettings,
        org: &str,
        repo: &str,
        pr: &PullRequest,
    ) -> Result<bool, TriggerError> {
        Ok(pr.has_label(OK_TO_TEST)
            || self
                .trusted_user(settings, &pr.user.login, org, repo)
                .await?)
    }

    // ---- GitHub calls ------------------------------------------------------------------

    async fn bot(&self) -> Result<String, TriggerError> {
        Ok(self.github.bot_login().await?.to_owned())
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        owner: &str,
        path: &str,
    ) -> Result<T, TriggerError> {
        let answer = self
            .github
            .request(what, owner, Method::Get, path, None)
            .await?;
        Ok(bosun_reporters::github::client::parse(what, &answer)?)
    }

    /// `204` → yes; `404` (and `302`, GitHub's answer to a non-member asking) → no.
    async fn exists(&self, what: &str, owner: &str, path: &str) -> Result<bool, TriggerError> {
        let answer = self
            .github
            .request_raw(what, owner, Method::Get, path, None)
            .await?;
        match answer.status.as_u16() {
            204 | 200 => Ok(true),
            404 | 302 => Ok(false),
            _ => Err(bosun_reporters::github::client::classify(what, &answer).into()),
        }
    }

    async fn comment(
        &self,
        org: &str,
        repo: &str,
        number: i64,
        body: &str,
    ) -> Result<(), TriggerError> {
        self.github
            .request(
                "github create comment",
                org,
                Method::Post,
                &format!("/repos/{org}/{repo}/issues/{number}/comments"),
                Some(&serde_json::json!({ "body": body })),
            )
            .await?;
        Ok(())
    }

    async fn add_label(
        &self,
        org: &str,
        repo: &str,
        number: i64,
        label: &str,
    ) -> Result<(), TriggerError> {
        self.github
            .request(
                "github add label",
                org,
                Method::Post,
                &format!("/repos/{org}/{repo}/issues/{number}/labels"),
                Some(&serde_json::json!({ "labels": [label] })),
            )
            .await?;
        Ok(())
    }

    async fn remove_label(
        &self,
        org: &str,
        repo: &str,
        number: i64,
        label: &str,
    ) -> Result<(), TriggerError> {
        let answer = self
            .github
            .request_raw(
                "github remove label",
                org,
                Method::Delete,
                &format!("/repos/{org}/{repo}/issues/{number}/labels/{label}"),
                None,
            )
            .await?;
        // Already gone is fine.
        if answer.status.is_success() || answer.status.as_u16() == 404 {
            Ok(())
        } else {
            Err(bosun_reporters::github::client::classify("github remove label", &answer).into())
        }
    }

    /// `(failed, all)` contexts of the head commit's combined status.
    async fn contexts(
        &self,
        org: &str,
        repo: &str,
        sha: &str,
    ) -> Result<(BTreeSet<String>, BTreeSet<String>), TriggerError> {
        #[derive(serde::Deserialize)]
        struct Combined {
            #[serde(default)]
            statuses: Vec<Status>,
        }
        #[derive(serde::Deserialize)]
        struct Status {
            context: String,
            state: String,
        }
        let combined: Combined = self
            .get(
                "github combined status",
                org,
                &format!("/repos/{org}/{repo}/commits/{sha}/status?per_page=100"),
            )
            .await?;
        let mut failed = BTreeSet::new();
        let mut all = BTreeSet::new();
        for s in combined.statuses {
            if s.state == "failure" || s.state == "error" {
                failed.insert(s.context.clone());
            }
            all.insert(s.context);
        }
        Ok((failed, all))
    }

    /// The PR's changed files, fetched only when some presubmit has a change filter.
    async fn changes_if_needed(
        &self,
        org: &str,
        repo: &str,
        number: i64,
        presubmits: &[&Presubmit],
    ) -> Result<Vec<String>, TriggerError> {
        if !presubmits.iter().any(|p| p.change_matcher.could_run()) {
            return Ok(Vec::new());
        }
        #[derive(serde::Deserialize)]
        struct File {
            filename: String,
        }
        let mut files = Vec::new();
        for page in 1u32.. {
            let batch: Vec<File> = self
                .get(
                    "github list pull request files",
                    org,
                    &format!("/repos/{org}/{repo}/pulls/{number}/files?per_page=100&page={page}"),
                )
                .await?;
            let last = batch.len() < 100;
            files.extend(batch.into_iter().map(|f| f.filename));
            // GitHub lists at most 3000 files.
            if last || page >= 30 {
                break;
            }
        }
        Ok(files)
    }
}

#[async_trait::async_trait]
impl DeliveryHandler for GitHubTrigger {
    async fn handle(&self, delivery: &Delivery) -> Result<(), DeliveryError> {
        self.dispatch(delivery).await.map_err(|e| DeliveryError {
            retryable: matches!(
                e,
                TriggerError::GitHub(ReportError::Transient { .. }) | TriggerError::Store(_)
            ),
            message: e.to_string(),
        })
    }
}

fn link_url(config: &LoadedConfig) -> String {
    let url = config.prow().github.link_url.trim_end_matches('/');
    if url.is_empty() {
        "https://github.com".to_owned()
    } else {
        url.to_owned()
    }
}

/// The refs of a presubmit for `pr`, as Prow's `createRefs`.
fn pr_refs(config: &LoadedConfig, org: &str, repo: &str, pr: &PullRequest) -> Refs {
    let link = link_url(config);
    let repo_link = if pr.base.repo.html_url.is_empty() {
        format!("{link}/{org}/{repo}")
    } else {
        pr.base.repo.html_url.clone()
    };
    let author_link = if pr.user.html_url.is_empty() {
        format!("{link}/{}", pr.user.login)
    } else {
        pr.user.html_url.clone()
    };
    Refs {
        org: org.to_owned(),
        repo: repo.to_owned(),
        repo_link: repo_link.clone(),
        base_ref: pr.base.branch.clone(),
        base_sha: pr.base.sha.clone(),
        base_link: format!("{repo_link}/commit/{}", pr.base.sha),
        pulls: vec![Pull {
            number: pr.number,
            author: pr.user.login.clone(),
            sha: pr.head.sha.clone(),
            title: pr.title.clone(),
            head_ref: pr.head.branch.clone(),
            link: pr.html_url.clone(),
            commit_link: format!("{repo_link}/pull/{}/commits/{}", pr.number, pr.head.sha),
            author_link,
            ..Pull::default()
        }],
        ..Refs::default()
    }
}

/// Prow's `FormatResponseRaw`: the reply, then the original comment quoted in a details block.
pub fn format_response(user: &str, reply: &str, url: &str, original: &str) -> String {
    let quoted: String = original
        .lines()
        .map(|l| format!(">{l}"))
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        "@{user}: {reply}\n\n<details>\n\nIn response to [this]({url}):\n\n{quoted}\n\n\nInstructions for interacting with me using PR comments are available [here](https://docs.prow.k8s.io/docs/components/plugins/). This bot is bosun, a Prow-compatible CI gateway.\n</details>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_quote_the_original_comment() {
        let r = format_response("alice", "Nope.", "https://x/1", "/test foo\nplease");
        assert!(r.starts_with("@alice: Nope.\n\n<details>\n\nIn response to [this](https://x/1):\n\n>/test foo\n>please\n"), "{r}");
        assert!(r.ends_with("</details>"));
    }
}
