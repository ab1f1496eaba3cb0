//! The `jenkins` agent: a Jenkins build per job, triggered with `buildWithParameters` and
//! followed through its queue item (reference prow-agents §4, with the issue's amendments).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bosun_proto::ProwJobState;
use bosun_proto::prowjob::{ProwJob, ProwJobSpec};
use bytes::Bytes;

use super::client::{
    ClientOptions, JenkinsAuth, JenkinsClient, JenkinsError, encode_segment, job_path, parameter,
};
use super::config::{DEFAULT_POLL_INTERVAL, JenkinsConfigError, JenkinsSettings};
use crate::agent::{Agent, AgentError, LogStream, Outcome, Progress, ProgressSender, Started};
use crate::artifacts::Artifacts;
use crate::kubernetes::decorate;

/// The build parameter that identifies a job's build (= the ProwJob name).
pub const PROW_JOB_ID: &str = "PROW_JOB_ID";
/// Longest wait between two looks while Jenkins is unreachable.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How the jenkins agent reaches Jenkins.
#[derive(Debug, Clone)]
pub struct JenkinsAgentConfig {
    /// The Jenkins base URL.
    pub url: String,
    /// Credentials.
    pub auth: JenkinsAuth,
    /// CSRF, timeouts, retries.
    pub client: ClientOptions,
    /// Time between two looks at a queued item or a running build.
    pub poll_interval: Duration,
    /// Where the console log, `started.json` and `finished.json` go when a build ends.
    pub artifacts: Option<Artifacts>,
}

impl JenkinsAgentConfig {
    /// The configuration `bosun.jenkins` describes (reads the token files).
    pub fn from_settings(
        settings: &JenkinsSettings,
        artifacts: Option<Artifacts>,
    ) -> Result<Self, JenkinsConfigError> {
        settings.validate()?;
        let mut client = ClientOptions {
            csrf_protect: settings.csrf_protect,
            ..ClientOptions::default()
        };
        if let Some(t) = settings.request_timeout {
            client.request_timeout = t.get();
        }
        Ok(Self {
            url: settings.url.clone(),
            auth: settings.auth()?,
            client,
            poll_interval: settings.poll_interval(),
            artifacts,
        })
    }

    /// A configuration for `url` with no credentials and the defaults.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            auth: JenkinsAuth::None,
            client: ClientOptions::default(),
            poll_interval: DEFAULT_POLL_INTERVAL,
            artifacts: None,
        }
    }
}

/// Where a job's build is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// Still a queue item.
    Queued(u64),
    /// A build with this number.
    Build(u64),
    /// Neither.
    Nothing,
}

struct Inner {
    client: JenkinsClient,
    poll_interval: Duration,
    artifacts: Option<Artifacts>,
    /// Where each job's build was last seen (lost on restart; then found by `PROW_JOB_ID`).
    tracked: Mutex<HashMap<String, Found>>,
}

/// Runs jobs as Jenkins builds (agent name `jenkins`). Without `bosun.jenkins` it is
/// registered unconfigured, and refuses jobs saying so.
pub struct JenkinsAgent {
    inner: Option<Arc<Inner>>,
}

/// The Jenkins job path of a ProwJob (§4.2): `spec.job` split into folders
/// (`a/b` → `job/a/job/b`); with `jenkins_spec.github_branch_source_job`, the pull request's
/// job (`…/view/change-requests/job/PR-<n>`) or the branch's (`…/job/<base_ref>`).
pub fn jenkins_job_path(spec: &ProwJobSpec) -> String {
    let base = job_path(&spec.job);
    let branch_source = spec
        .jenkins_spec
        .as_ref()
        .is_some_and(|j| j.github_branch_source_job);
    match spec.refs.as_ref().filter(|_| branch_source) {
        Some(refs) => match refs.pulls.first() {
            Some(pull) => format!("{base}/view/change-requests/job/PR-{}", pull.number),
            None => format!("{base}/job/{}", encode_segment(&refs.base_ref)),
        },
        None => base,
    }
}

/// Jenkins' result → the job's outcome (§4.3).
pub fn outcome_for_result(result: &str) -> Outcome {
    match result {
        "SUCCESS" => Outcome::new(ProwJobState::Success, "Jenkins job succeeded."),
        "FAILURE" | "UNSTABLE" => Outcome::new(ProwJobState::Failure, "Jenkins job failed."),
        "ABORTED" => Outcome::aborted("Jenkins job aborted."),
        other => Outcome::error(format!("Jenkins job ended with result {other}.")),
    }
}

impl Inner {
    fn track(&self, name: &str, found: Found) {
        if let Ok(mut t) = self.tracked.lock() {
            t.insert(name.to_owned(), found);
        }
    }

    fn tracked(&self, name: &str) -> Option<Found> {
        self.tracked.lock().ok().and_then(|t| t.get(name).copied())
    }

    fn forget(&self, name: &str) {
        if let Ok(mut t) = self.tracked.lock() {
            t.remove(name);
        }
    }

    fn error(&self, e: JenkinsError, job: &ProwJob, path: &str) -> AgentError {
        match e {
            JenkinsError::NotFound { .. } => AgentError::InvalidJob(format!(
                "jenkins job {} not found at {}",
                job.spec.job,
                self.client.url(path)
            )),
            JenkinsError::Refused {
                status: 401 | 403, ..
            } => AgentError::Unavailable(format!("jenkins refused the credentials: {e}")),
            JenkinsError::Refused { status, .. } if status != 429 => {
                AgentError::InvalidJob(e.to_string())
            }
            other => AgentError::Unavailable(other.to_string()),
        }
    }

    /// Finds the job's build by its `PROW_JOB_ID` parameter: in the job's builds, the queue,
    /// then the builds again (an item may leave the queue between the two looks). A missing
    /// Jenkins job is `NotFound`.
    async fn search(&self, job: &ProwJob, path: &str) -> Result<Found, JenkinsError> {
        let name = job.name();
        let in_builds = |builds: Vec<super::client::Build>| {
            builds
                .into_iter()
                .find(|b| parameter(&b.actions, PROW_JOB_ID) == Some(name))
                .map(|b| Found::Build(b.number))
        };
        if let Some(found) = in_builds(self.client.builds(path).await?) {
            return Ok(found);
        }
        let queued = self
            .client
            .queue()
            .await?
            .into_iter()
            .find(|i| parameter(&i.actions, PROW_JOB_ID) == Some(name));
        if let Some(item) = queued {
            return Ok(match item.executable {
                Some(e) => Found::Build(e.number),
                None => Found::Queued(item.id),
            });
        }
        Ok(in_builds(self.client.builds(path).await?).unwrap_or(Found::Nothing))
    }

    /// Where the job's build is: remembered, else `status.jenkins_build_id`, else searched.
    async fn locate(&self, job: &ProwJob, path: &str) -> Result<Found, JenkinsError> {
        if let Some(found) = self.tracked(job.name()) {
            return Ok(found);
        }
        if let Some(n) = job
            .status
            .as_ref()
            .and_then(|s| s.jenkins_build_id.parse::<u64>().ok())
        {
            return Ok(Found::Build(n));
        }
        let found = self.search(job, path).await?;
        if found != Found::Nothing {
            self.track(job.name(), found);
        }
        Ok(found)
    }

    /// The whole console log of a finished build.
    async fn console(&self, path: &str, number: u64) -> Result<Bytes, JenkinsError> {
        let mut out = Vec::new();
        let mut start = 0;
        loop {
            let chunk = self.client.progressive_text(path, number, start).await?;
            out.extend_from_slice(&chunk.text);
            if !chunk.more || chunk.next_start <= start {
                return Ok(Bytes::from(out));
            }
            start = chunk.next_start;
        }
    }

    async fn upload(
        &self,
        job: &ProwJob,
        path: &str,
        build: &super::client::Build,
        outcome: &Outcome,
    ) {
        let Some(artifacts) = &self.artifacts else {
            return;
        };
        let log = match self.console(path, build.number).await {
            Ok(log) => log,
            Err(e) => {
                tracing::warn!(job = %job.name(), "cannot read the jenkins console log: {e}");
                Bytes::new()
            }
        };
        let started = build.timestamp / 1000;
        let finished = (build.timestamp + build.duration) / 1000;
        if let Err(e) = artifacts
            .put_remote_run(job, log, outcome, started, finished.max(started))
            .await
        {
            tracing::warn!(job = %job.name(), "cannot store the jenkins build's logs: {e}");
        }
    }
}

impl JenkinsAgent {
    /// An agent talking to the Jenkins `config` names.
    pub fn new(config: JenkinsAgentConfig) -> Result<Self, JenkinsConfigError> {
        let client = JenkinsClient::new(&config.url, config.auth.clone(), config.client.clone())
            .map_err(|e| JenkinsConfigError::Invalid(e.to_string()))?;
        Ok(Self {
            inner: Some(Arc::new(Inner {
                client,
                poll_interval: config.poll_interval,
                artifacts: config.artifacts,
                tracked: Mutex::new(HashMap::new()),
            })),
        })
    }

    /// An agent without a Jenkins: every job it is given ends in `error` saying how to
    /// configure one.
    pub fn unconfigured() -> Self {
        Self { inner: None }
    }

    /// The agent `bosun.jenkins` describes (`None`: unconfigured).
    pub fn from_settings(
        settings: Option<&JenkinsSettings>,
        artifacts: Option<Artifacts>,
    ) -> Result<Self, JenkinsConfigError> {
        match settings {
            Some(s) => Self::new(JenkinsAgentConfig::from_settings(s, artifacts)?),
            None => Ok(Self::unconfigured()),
        }
    }

    fn inner(&self) -> Result<&Arc<Inner>, AgentError> {
        self.inner.as_ref().ok_or_else(|| {
            AgentError::InvalidJob(
                "the jenkins agent is not configured: add a bosun.jenkins section (url, user, token_file) to config.yaml".into(),
            )
        })
    }
}

/// A followed console: the queue item until it has a build, then the build's
/// `progressiveText` from the last offset until `X-More-Data` goes away.
struct Console {
    inner: Arc<Inner>,
    path: String,
    target: Found,
    start: u64,
    follow: bool,
    done: bool,
}

impl Console {
    async fn next(mut self) -> Option<(Result<Bytes, AgentError>, Self)> {
        let unavailable = |e: JenkinsError| AgentError::Unavailable(e.to_string());
        loop {
            if self.done {
                return None;
            }
            match self.target {
                Found::Nothing => return None,
                Found::Queued(id) => match self.inner.client.queue_item(id).await {
                    Ok(Some(item)) if item.executable.is_some() => {
                        self.target = Found::Build(item.executable.map_or(0, |e| e.number));
                        continue;
                    }
                    Ok(Some(item)) if !item.cancelled && self.follow => {}
                    Ok(_) => return None,
                    Err(e) => {
                        self.done = true;
                        return Some((Err(unavailable(e)), self));
                    }
                },
                Found::Build(number) => {
                    match self
                        .inner
                        .client
                        .progressive_text(&self.path, number, self.start)
                        .await
                    {
                        Ok(chunk) => {
                            let advanced = chunk.next_start > self.start;
                            self.start = chunk.next_start.max(self.start);
                            if !chunk.more || !self.follow {
                                self.done = true;
                            }
                            if !chunk.text.is_empty() {
                                return Some((Ok(chunk.text), self));
                            }
                            if self.done {
                                return None;
                            }
                            if advanced {
                                continue;
                            }
                        }
                        Err(JenkinsError::NotFound { .. }) if self.follow => {}
                        Err(e) => {
                            self.done = true;
                            return Some((Err(unavailable(e)), self));
                        }
                    }
                }
            }
            // Poll interval of a followed console: Jenkins has no push API.
            tokio::time::sleep(self.inner.poll_interval).await;
        }
    }
}

#[async_trait]
impl Agent for JenkinsAgent {
    fn name(&self) -> &str {
        bosun_proto::prowjob::agents::JENKINS
    }

    fn check(&self, job: &ProwJob) -> Result<(), AgentError> {
        self.inner()?;
        if job.spec.job.split('/').all(str::is_empty) {
            return Err(AgentError::InvalidJob(
                "jenkins jobs need spec.job (the Jenkins job's full name)".into(),
            ));
        }
        decorate::downward_env(job).map_err(|e| AgentError::InvalidJob(e.to_string()))?;
        Ok(())
    }

    async fn start(&self, job: &ProwJob) -> Result<Started, AgentError> {
        let inner = self.inner()?;
        let path = jenkins_job_path(&job.spec);
        let started = Started {
            workload_name: job.name().to_owned(),
            description: Some("Jenkins job enqueued.".into()),
        };
        if inner.tracked(job.name()).is_some() {
            return Ok(started);
        }
        // Idempotent: an earlier attempt (or a gateway before a restart) may have triggered it.
        match inner.search(job, &path).await {
            Ok(Found::Nothing) => {}
            Ok(found) => {
                inner.track(job.name(), found);
                return Ok(started);
            }
            Err(e) => return Err(inner.error(e, job, &path)),
        }
        let params: Vec<(String, String)> = decorate::downward_env(job)
            .map_err(|e| AgentError::InvalidJob(e.to_string()))?
            .into_iter()
            .collect();
        let id = inner
            .client
            .build_with_parameters(&path, &params)
            .await
            .map_err(|e| inner.error(e, job, &path))?;
        tracing::info!(job = %job.name(), queue_item = id, jenkins_job = %job.spec.job, "jenkins build enqueued");
        inner.track(job.name(), Found::Queued(id));
        Ok(started)
    }

    async fn wait(&self, job: &ProwJob, progress: ProgressSender) -> Result<Outcome, AgentError> {
        let inner = self.inner()?;
        let name = job.name();
        let path = jenkins_job_path(&job.spec);
        let mut backoff = inner.poll_interval;
        let mut last_error = String::new();
        let mut running_sent = false;
        let mut target: Option<Found> = None;
        loop {
            // Where to look; after an outage, and after a restart, found again.
            let found = match target {
                Some(f) => Ok(f),
                None => inner.locate(job, &path).await,
            };
            let step: Result<Option<Outcome>, JenkinsError> = match found {
                Ok(Found::Nothing) => {
                    return Err(AgentError::NotFound(format!(
                        "no Jenkins queue item or build of {} has {PROW_JOB_ID}={name}",
                        job.spec.job
                    )));
                }
                Ok(Found::Queued(id)) => match inner.client.queue_item(id).await {
                    Ok(None) => {
                        // Jenkins forgets left items after a while: find the build instead.
                        inner.forget(name);
                        match inner.search(job, &path).await {
                            Ok(Found::Queued(other)) if other == id => Ok(None),
                            Ok(Found::Nothing) => {
                                return Err(AgentError::NotFound(format!(
                                    "jenkins forgot queue item {id} and no build of {} has {PROW_JOB_ID}={name}",
                                    job.spec.job
                                )));
                            }
                            Ok(f) => {
                                inner.track(name, f);
                                target = Some(f);
                                if let Found::Build(n) = f {
                                    let _ = progress.send(Progress::BuildNumber(n.to_string()));
                                }
                                continue;
                            }
                            Err(e) => Err(e),
                        }
                    }
                    Ok(Some(item)) if item.cancelled => {
                        inner.forget(name);
                        return Ok(Outcome::aborted("Jenkins job aborted."));
                    }
                    Ok(Some(item)) => match item.executable {
                        Some(exe) => {
                            let f = Found::Build(exe.number);
                            inner.track(name, f);
                            target = Some(f);
                            let _ = progress.send(Progress::BuildNumber(exe.number.to_string()));
                            continue;
                        }
                        None => {
                            target = Some(Found::Queued(id));
                            Ok(None)
                        }
                    },
                    Err(e) => Err(e),
                },
                Ok(Found::Build(number)) => match inner.client.build(&path, number).await {
                    Ok(None) => {
                        inner.forget(name);
                        return Err(AgentError::NotFound(format!(
                            "jenkins build {number} of {} is gone",
                            job.spec.job
                        )));
                    }
                    Ok(Some(build)) => {
                        target = Some(Found::Build(number));
                        match (build.building, build.result.as_deref()) {
                            (false, Some(result)) => {
                                let outcome = outcome_for_result(result);
                                inner.upload(job, &path, &build, &outcome).await;
                                inner.forget(name);
                                Ok(Some(outcome))
                            }
                            (true, _) => {
                                if !running_sent {
                                    running_sent = true;
                                    let _ = progress.send(Progress::Running);
                                    let _ = progress
                                        .send(Progress::Description("Jenkins job running.".into()));
                                }
                                Ok(None)
                            }
                            // Created but not started yet.
                            (false, None) => Ok(None),
                        }
                    }
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            match step {
                Ok(Some(outcome)) => return Ok(outcome),
                Ok(None) => {
                    backoff = inner.poll_interval;
                    if !last_error.is_empty() {
                        last_error.clear();
                        let _ = progress.send(Progress::Description(
                            if running_sent {
                                "Jenkins job running."
                            } else {
                                "Jenkins job enqueued."
                            }
                            .into(),
                        ));
                    }
                    // Poll interval: Jenkins has no watch API.
                    tokio::time::sleep(inner.poll_interval).await;
                }
                Err(e) if e.is_transient() => {
                    let message = format!("Jenkins unreachable, retrying: {e}");
                    if message != last_error {
                        let _ = progress.send(Progress::Description(message.clone()));
                        last_error = message;
                    }
                    tracing::warn!(job = %name, "jenkins: {e}; retrying in {backoff:?}");
                    // Backoff while Jenkins is unreachable or answers 5xx.
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(e) => return Err(inner.error(e, job, &path)),
            }
        }
    }

    async fn abort(&self, job: &ProwJob) -> Result<(), AgentError> {
        let inner = self.inner()?;
        let path = jenkins_job_path(&job.spec);
        let err = |e| inner.error(e, job, &path);
        match inner.locate(job, &path).await.map_err(err)? {
            Found::Nothing => Ok(()),
            Found::Build(n) => inner.client.stop(&path, n).await.map_err(err),
            Found::Queued(id) => {
                let started = |item: Option<super::client::QueueItem>| {
                    item.and_then(|i| i.executable).map(|e| e.number)
                };
                let item = inner.client.queue_item(id).await.map_err(err)?;
                if item.as_ref().is_some_and(|i| i.cancelled) {
                    return Ok(());
                }
                if let Some(n) = started(item) {
                    return inner.client.stop(&path, n).await.map_err(err);
                }
                inner.client.cancel_queue_item(id).await.map_err(err)?;
                // It may have started between the look and the cancel.
                if let Some(n) = started(inner.client.queue_item(id).await.map_err(err)?) {
                    inner.client.stop(&path, n).await.map_err(err)?;
                }
                Ok(())
            }
        }
    }

    async fn logs(&self, job: &ProwJob, follow: bool) -> Result<LogStream, AgentError> {
        let inner = self.inner()?;
        let path = jenkins_job_path(&job.spec);
        let target = inner
            .locate(job, &path)
            .await
            .map_err(|e| inner.error(e, job, &path))?;
        if target == Found::Nothing {
            return Err(AgentError::NotFound(format!(
                "no Jenkins build of {} has {PROW_JOB_ID}={}",
                job.spec.job,
                job.name()
            )));
        }
        let state = Console {
            inner: inner.clone(),
            path,
            target,
            start: 0,
            follow,
            done: false,
        };
        Ok(Box::pin(futures::stream::unfold(state, Console::next)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> ProwJobSpec {
        serde_json::from_value(v).expect("spec")
    }

    #[test]
    fn job_paths_follow_prow() {
        assert_eq!(
            jenkins_job_path(&spec(json!({"type": "periodic", "job": "team/unit"}))),
            "job/team/job/unit"
        );
        let refs = json!({"org": "o", "repo": "r", "base_ref": "release/1.0"});
        assert_eq!(
            jenkins_job_path(&spec(json!({"type": "postsubmit", "job": "multi",
                "jenkins_spec": {"github_branch_source_job": true}, "refs": refs}))),
            "job/multi/job/release%2F1.0"
        );
        let pr = json!({"org": "o", "repo": "r", "base_ref": "main", "pulls": [{"number": 12, "author": "a", "sha": "s"}]});
        assert_eq!(
            jenkins_job_path(&spec(json!({"type": "presubmit", "job": "multi",
                "jenkins_spec": {"github_branch_source_job": true}, "refs": pr}))),
            "job/multi/view/change-requests/job/PR-12"
        );
    }

    #[test]
    fn results_map_as_prow() {
        assert_eq!(outcome_for_result("SUCCESS").state, ProwJobState::Success);
        assert_eq!(outcome_for_result("UNSTABLE").state, ProwJobState::Failure);
        assert_eq!(outcome_for_result("FAILURE").state, ProwJobState::Failure);
        assert_eq!(outcome_for_result("ABORTED").state, ProwJobState::Aborted);
        assert_eq!(outcome_for_result("NOT_BUILT").state, ProwJobState::Error);
    }
}
