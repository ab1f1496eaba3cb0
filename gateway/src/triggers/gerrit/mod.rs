//! The Gerrit adapter (Prow's `cmd/gerrit`, reference `prow-reporters-triggers.md` §6): polls
//! every project of `gerrit.org_repos_config` over Gerrit's REST API once per
//! `gerrit.tick_interval` and turns what happened since the last poll into jobs:
//!
//! - a new current patchset of an open change that is not work in progress → the presubmits
//!   that run by themselves (`always_run`, `run_if_changed` on the changed files, old paths of
//!   renames included);
//! - a `/test x`, `/test all` or `/retest` message (or patchset-level comment) on the current
//!   patchset → what Prow's presubmit filter selects (`/retest`: the jobs whose newest run on
//!   this patchset failed, read from bosun's own store);
//! - a change marked ready for review → test all;
//! - a merged change → the postsubmits of its branch and files.
//!
//! Jobs carry the labels and annotations the Gerrit reporter groups by. Each is created with
//! an idempotency key naming the event (instance, change, revision, job, and the message for
//! comment-triggered runs), and the last-sync time of a project moves only after its changes
//! were handled ([`state`]), so a re-poll after a crash or restart never creates a job twice.
//! A Gerrit that fails (5xx, refused connection) is logged with its instance and polled again
//! next tick; the adapter never stops for it.

pub mod client;
pub mod state;
pub mod trigger;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use bosun_gateway_config::{
    Gerrit, GerritProject, LoadedConfig, new_prowjob, postsubmit_spec, presubmit_spec,
};
use bosun_gateway_store::{ListFilter, StoreError};
use bosun_proto::labels::{GERRIT_INSTANCE, GERRIT_PATCHSET, GERRIT_REVISION};
use bosun_proto::{ProwJobSpec, ProwJobState, ProwJobType};
use bosun_reporters::ReportersConfigError;
use bosun_reporters::config::GerritSettings;
use bosun_reporters::gerrit::{GerritAuth, GerritClient, GerritError};
use k8s_openapi::jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use self::client::{ChangeInfo, Client, GerritTime, MERGED, NEW};
use self::state::{STATE_FILE, StateError, SyncState};
use self::trigger::Event;
use super::TriggerContext;
use super::filter::help_message;

/// How often the adapter looks again when Gerrit is not configured (a reload may enable it).
const IDLE_INTERVAL: Duration = Duration::from_secs(60);

/// Why handling a project or a change failed.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// A Gerrit call failed.
    #[error(transparent)]
    Gerrit(#[from] GerritError),
    /// The bot account (needed to tell its own messages apart) could not be read.
    #[error("reading the bot account: {0}")]
    Account(#[source] GerritError),
    /// The job store refused a job.
    #[error("creating job {job}: {source}")]
    Create {
        /// The job name.
        job: String,
        /// The store error.
        #[source]
        source: StoreError,
    },
    /// The jobs of a revision could not be listed (for `/retest`).
    #[error("listing the jobs of the revision: {0}")]
    List(#[source] StoreError),
    /// The last-sync state could not be written.
    #[error(transparent)]
    State(#[from] StateError),
    /// The Gerrit credentials under `bosun.reporters.gerrit` are unusable.
    #[error("gerrit credentials: {0}")]
    Credentials(#[from] ReportersConfigError),
    /// Gerrit did not send the change's current revision.
    #[error("change {0} came without its current revision")]
    NoRevision(i64),
}

impl AdapterError {
    /// Whether trying the same change again later may work (the project's last-sync time then
    /// stays before it). Other failures skip the change, as Prow does.
    pub fn is_transient(&self) -> bool {
        match self {
            AdapterError::Gerrit(e) => e.is_transient(),
            AdapterError::NoRevision(_) => false,
            _ => true,
        }
    }
}

/// Starts the adapter as the supervised task `gerrit-adapter`. It idles while the
/// configuration has no `gerrit.org_repos_config`.
pub fn spawn(ctx: TriggerContext) {
    let adapter = GerritAdapter::new(ctx.clone());
    let shutdown = ctx.supervisor.shutdown_token();
    ctx.supervisor
        .spawn_critical("gerrit-adapter", adapter.run(shutdown));
}

/// The adapter's state between polls.
pub struct GerritAdapter {
    ctx: TriggerContext,
    state: Option<SyncState>,
    client: Option<(Option<GerritSettings>, Client)>,
    bots: HashMap<String, Option<i64>>,
}

impl GerritAdapter {
    /// An adapter creating jobs through `ctx`; its state file is
    /// `<data-dir>/gerrit-last-sync.json`.
    pub fn new(ctx: TriggerContext) -> Self {
        GerritAdapter {
            ctx,
            state: None,
            client: None,
            bots: HashMap::new(),
        }
    }

    /// Polls every tick until `shutdown`.
    pub async fn run(
        mut self,
        shutdown: CancellationToken,
    ) -> Result<(), std::convert::Infallible> {
        loop {
            let started = tokio::time::Instant::now();
            let tick = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                tick = self.poll_once() => tick,
            };
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                // The poll interval itself (Prow's tick): Gerrit has no watch to follow.
                _ = tokio::time::sleep_until(started + tick) => {}
            }
        }
    }

    /// One poll of every configured project (with the configuration in force now); returns
    /// the interval until the next one.
    pub async fn poll_once(&mut self) -> Duration {
        let Some(config) = self.ctx.config.current() else {
            return IDLE_INTERVAL;
        };
        let Some(gerrit) = config.prow().gerrit.as_ref().filter(|g| g.enabled()) else {
            return IDLE_INTERVAL;
        };
        let tick = gerrit.tick_interval();
        let client = match self.client(&config) {
            Ok(client) => client,
            Err(e) => {
                tracing::warn!(error = %e, "gerrit adapter cannot poll");
                return tick;
            }
        };
        for project in gerrit.projects() {
            if let Err(e) = self.poll_project(&config, gerrit, &client, &project).await {
                tracing::warn!(
                    instance = %project.instance,
                    project = project.project,
                    error = %e,
                    "gerrit poll failed; trying again next tick"
                );
            }
        }
        tick
    }

    /// The client for the credentials under `bosun.reporters.gerrit` (rebuilt when they
    /// change; anonymous when there are none).
    fn client(&mut self, config: &LoadedConfig) -> Result<Client, AdapterError> {
        let settings = bosun_reporters::ReporterSettings::from_bosun(&config.prow().bosun)?.gerrit;
        if let Some((cached, client)) = &self.client
            && *cached == settings
        {
            return Ok(client.clone());
        }
        let (auth, urls) = match &settings {
            Some(s) => (s.auth()?, s.instance_urls.clone()),
            None => (GerritAuth::None, BTreeMap::new()),
        };
        let client = Client::new(GerritClient::new(auth, urls));
        self.bots.clear();
        self.client = Some((settings, client.clone()));
        Ok(client)
    }

    fn state(&mut self) -> &mut SyncState {
        let path = self.ctx.data_dir.join(STATE_FILE);
        self.state.get_or_insert_with(|| SyncState::load(path))
    }

    /// The bot account's id on `instance` (`None` when anonymous).
    async fn bot(&mut self, client: &Client, instance: &str) -> Result<Option<i64>, AdapterError> {
        if !client.is_authenticated() {
            return Ok(None);
        }
        if let Some(id) = self.bots.get(instance) {
            return Ok(*id);
        }
        let account = client
            .account_self(instance)
            .await
            .map_err(AdapterError::Account)?;
        self.bots
            .insert(instance.to_owned(), Some(account.account_id));
        Ok(Some(account.account_id))
    }

    /// Polls one project and moves its last-sync time past the changes it handled. A
    /// transient failure on a change stops there: the time stays before that change, which is
    /// handled again next tick (its jobs, if any were created, are found by their keys).
    async fn poll_project(
        &mut self,
        config: &LoadedConfig,
        gerrit: &Gerrit,
        client: &Client,
        p: &GerritProject<'_>,
    ) -> Result<(), AdapterError> {
        let now = GerritTime(Timestamp::now());
        let last_sync = self.state().get_or_start(&p.instance, p.project, now)?;
        let mut changes = client
            .query_changes(
                &p.instance,
                p.project,
                p.filters,
                last_sync,
                gerrit.rate_limit(),
            )
            .await?;
        changes.sort_by_key(|c| c.updated);
        let mut done: Option<GerritTime> = None;
        for change in &changes {
            match self
                .process_change(config, gerrit, client, p, change, last_sync)
                .await
            {
                Ok(()) => {}
                Err(e) if e.is_transient() => {
                    // Sorted oldest first: everything updated before this change is handled.
                    let handled = changes
                        .iter()
                        .map(|c| c.updated)
                        .filter(|t| *t < change.updated)
                        .max();
                    if let Some(t) = handled {
                        self.state().advance(&p.instance, p.project, t)?;
                    }
                    return Err(e);
                }
                Err(e) => tracing::warn!(
                    instance = %p.instance,
                    project = p.project,
                    change = change.number,
                    error = %e,
                    "skipping gerrit change"
                ),
            }
            done = Some(change.updated);
        }
        if let Some(t) = done {
            self.state().advance(&p.instance, p.project, t)?;
        }
        Ok(())
    }

    /// Creates the jobs one change asks for (reference §6.4).
    async fn process_change(
        &mut self,
        config: &LoadedConfig,
        gerrit: &Gerrit,
        client: &Client,
        p: &GerritProject<'_>,
        change: &ChangeInfo,
        last_sync: GerritTime,
    ) -> Result<(), AdapterError> {
        let instance = p.instance.as_str();
        let bot = self.bot(client, instance).await?;
        if !trigger::should_trigger(change, last_sync, gerrit, bot) {
            tracing::debug!(instance, change = change.number, "nothing to trigger");
            return Ok(());
        }
        let base_sha = client
            .branch_revision(instance, &change.project, &change.branch)
            .await?;
        let refs = trigger::create_refs(instance, change, &base_sha)
            .ok_or(AdapterError::NoRevision(change.number))?;
        let clone_uri = trigger::clone_uri(instance, &change.project);

        struct Planned<'a> {
            spec: ProwJobSpec,
            labels: &'a BTreeMap<String, String>,
            annotations: &'a BTreeMap<String, String>,
            event: Event,
        }
        let mut planned: Vec<Planned<'_>> = Vec::new();
        match change.status.as_str() {
            MERGED => {
                let postsubmits = config.postsubmits_for(&clone_uri);
                for job in trigger::select_postsubmits(&postsubmits, change) {
                    planned.push(Planned {
                        spec: postsubmit_spec(job, refs.clone()),
                        labels: &job.labels,
                        annotations: &job.annotations,
                        event: Event::Merged,
                    });
                }
            }
            NEW => {
                let presubmits = config.presubmits_for(&clone_uri);
                let messages = trigger::current_messages(change, last_sync, bot);
                let failed = if trigger::wants_retest(&messages) {
                    self.failed_jobs(instance, change).await?
                } else {
                    BTreeSet::new()
                };
                let selected =
                    trigger::select_presubmits(&presubmits, change, &messages, &failed, last_sync);
                if !p.opt_out_help
                    && let Some(note) = messages.iter().find_map(|m| {
                        crate::triggers::filter::should_respond_with_help(
                            &m.message,
                            selected.len(),
                        )
                    })
                {
                    let help = help_message(
                        instance,
                        &change.project,
                        &change.branch,
                        note,
                        presubmits.iter().copied(),
                    );
                    self.post(client, instance, change, &help, "help").await;
                }
                for (job, event) in selected {
                    planned.push(Planned {
                        spec: presubmit_spec(job, refs.clone()),
                        labels: &job.labels,
                        annotations: &job.annotations,
                        event,
                    });
                }
            }
            _ => return Ok(()),
        }

        let scheduling = config.prow().scheduler.enabled;
        let mut created = Vec::new();
        for plan in planned {
            let name = plan.spec.job.clone();
            let report = plan.spec.report;
            let key = trigger::job_key(instance, change, &plan.event, &name);
            let (labels, annotations) =
                trigger::labels_and_annotations(instance, plan.labels, plan.annotations, change);
            let job = new_prowjob(plan.spec, &labels, &annotations, scheduling);
            let (stored, is_new) = self
                .ctx
                .create_job(job, Some(key))
                .await
                .map_err(|source| AdapterError::Create {
                    job: name.clone(),
                    source,
                })?;
            if is_new {
                tracing::info!(
                    instance,
                    change = change.number,
                    revision = %change.current_revision,
                    job = %name,
                    name = %stored.job.name(),
                    "gerrit change triggered a job"
                );
                created.push((name, report));
            } else {
                tracing::debug!(job = %name, "job for this gerrit event already exists");
            }
        }
        let link = trigger::deck_link(&gerrit.deck_url, &refs, &change.status);
        if let Some(message) = trigger::triggered_message(&created, link.as_deref()) {
            self.post(client, instance, change, &message, "triggered jobs")
                .await;
        }
        Ok(())
    }

    /// Posts a message on the change's current revision; a failure is logged, not retried
    /// (the jobs exist either way).
    async fn post(
        &self,
        client: &Client,
        instance: &str,
        change: &ChangeInfo,
        text: &str,
        what: &str,
    ) {
        if let Err(e) = client
            .set_review(instance, &change.id, &change.current_revision, text)
            .await
        {
            tracing::warn!(instance, change = change.number, error = %e, "posting the {what} message to gerrit failed");
        }
    }

    /// The jobs whose newest run on the change's current revision failed (failure, error or
    /// aborted), from bosun's own store.
    async fn failed_jobs(
        &self,
        instance: &str,
        change: &ChangeInfo,
    ) -> Result<BTreeSet<String>, AdapterError> {
        let patchset = change.current().map_or(0, |r| r.number).to_string();
        let filter = ListFilter {
            job_type: Some(ProwJobType::Presubmit),
            labels: [
                (GERRIT_REVISION.to_owned(), change.current_revision.clone()),
                (GERRIT_PATCHSET.to_owned(), patchset),
            ]
            .into_iter()
            .collect(),
            ..ListFilter::default()
        };
        let mut newest: BTreeMap<String, ProwJobState> = BTreeMap::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .ctx
                .store
                .list(&filter, 0, token.as_deref())
                .await
                .map_err(AdapterError::List)?;
            for stored in page.jobs {
                let job = stored.job;
                let on_instance = job
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(GERRIT_INSTANCE))
                    .is_some_and(|i| i == instance);
                if on_instance {
                    // Oldest first: the last one seen is the newest run.
                    newest.insert(job.spec.job.clone(), job.state());
                }
            }
            match page.next_page_token {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        Ok(newest
            .into_iter()
            .filter(|(_, s)| {
                matches!(
                    s,
                    ProwJobState::Failure | ProwJobState::Error | ProwJobState::Aborted
                )
            })
            .map(|(name, _)| name)
            .collect())
    }
}
