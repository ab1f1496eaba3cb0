//! A Jenkins test server: the REST endpoints Prow's jenkins-operator and bosun use, with
//! Jenkins' response shapes (`_class`, queue items that become `LeftItem`s with an
//! `executable`, `X-Text-Size` / `X-More-Data` on the progressive console).
//!
//! | request | answer |
//! |---|---|
//! | `POST /job/<a>/job/<b>/buildWithParameters?K=V…` | 201, `Location: <base>/queue/item/<id>/` (404 unknown job) |
//! | `GET /queue/api/json` | the waiting items with their parameters |
//! | `GET /queue/item/<id>/api/json` | a `WaitingItem`, then a `LeftItem` with `executable: {number, url}` or `cancelled: true` |
//! | `POST /queue/cancelItem?id=<id>` | 204; the item is left, cancelled |
//! | `GET /job/<path>/api/json` | the job with `builds[]` (newest first) |
//! | `GET /job/<path>/<n>/api/json` | `building`, `result`, `number`, `url`, `timestamp`, `duration`, `actions[].parameters` |
//! | `POST /job/<path>/<n>/stop` | 302 to the build; a running build ends `ABORTED` |
//! | `GET /job/<path>/<n>/logText/progressiveText?start=N` | the console from byte N, `X-Text-Size`, `X-More-Data: true` while building |
//! | `GET /crumbIssuer/api/json` | the crumb and its session cookie (404 without CSRF protection) |
//!
//! Requests need the configured basic auth (user + API token) or bearer token (401 otherwise);
//! with CSRF protection a POST without the crumb and its session cookie gets 403. Unknown jobs
//! and builds get 404 with an HTML body, as Jenkins answers.
//!
//! The test plays the executor: [`JenkinsServer::start_build`] takes a queued item and starts
//! its build (the queue → executable transition), [`JenkinsServer::append_console`] writes
//! console text, [`JenkinsServer::finish_build`] sets the result. A job can instead be set to
//! [`Behaviour::FinishOnTrigger`]: the build starts and finishes before the trigger is even
//! answered (optionally with the queue item forgotten), the case where Prow's operator gets
//! stuck. Outages come from [`TestServer::start_outage`] / [`TestServer::fail_next`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};

use super::{Canned, RecordedRequest, TestServer, TestServerError, decode_base64};

/// The crumb header name Jenkins uses.
pub const CRUMB_FIELD: &str = "Jenkins-Crumb";

/// How a job's builds run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Behaviour {
    /// Queued until the test calls [`JenkinsServer::start_build`].
    #[default]
    Manual,
    /// Started and finished with `result` (and `console`) while the trigger is handled; with
    /// `forget_queue_item` the queue item is gone too (Jenkins drops left items after a while).
    FinishOnTrigger {
        /// `SUCCESS`, `FAILURE`, `UNSTABLE`, `ABORTED`.
        result: String,
        /// The console text.
        console: String,
        /// Forget the queue item at once.
        forget_queue_item: bool,
    },
}

/// How requests must authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Anyone.
    None,
    /// HTTP basic: user and API token.
    Basic(String, String),
    /// `Authorization: Bearer <token>`.
    Bearer(String),
}

/// A build, as the test sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    /// Its number.
    pub number: u64,
    /// The parameters it was triggered with.
    pub params: Vec<(String, String)>,
    /// Still running.
    pub building: bool,
    /// Its result once done.
    pub result: Option<String>,
    /// The console so far.
    pub console: String,
    /// The queue item it came from.
    pub queue_id: u64,
}

impl BuildInfo {
    /// A parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
enum ItemState {
    Waiting,
    Left { build: Option<u64>, cancelled: bool },
}

#[derive(Debug, Clone)]
struct QueueEntry {
    id: u64,
    job: String,
    params: Vec<(String, String)>,
    state: ItemState,
    since: i64,
}

#[derive(Debug, Clone)]
struct BuildState {
    info: BuildInfo,
    timestamp: i64,
    duration: i64,
}

#[derive(Debug, Default)]
struct JobState {
    builds: BTreeMap<u64, BuildState>,
    next_build: u64,
    behaviour: Behaviour,
    triggers: usize,
}

struct State {
    base: String,
    auth: Auth,
    csrf: bool,
    crumb: String,
    session: String,
    jobs: BTreeMap<String, JobState>,
    queue: BTreeMap<u64, QueueEntry>,
    next_queue_id: u64,
}

/// The running server; stops on drop.
pub struct JenkinsServer {
    server: TestServer,
    state: Arc<Mutex<State>>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Percent-decoding of a URL component (`+` is a space in queries).
fn decode_component(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query string's pairs, decoded, in order.
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode_component(k, true), decode_component(v, true))
        })
        .collect()
}

fn html(status: u16, title: &str) -> Canned {
    Canned {
        status,
        headers: Vec::new(),
        content_type: "text/html;charset=utf-8",
        body: format!(
            "<html><head><title>{title}</title></head><body><h2>{title}</h2></body></html>"
        ),
    }
}

fn not_found() -> Canned {
    html(404, "Error 404 Not Found")
}

/// `/job/a/job/b/rest…` → (`a/b`, `rest…`); `view/<name>` segments are skipped.
fn split_job_path(path: &str) -> Option<(String, Vec<String>)> {
    let mut segments = path.trim_start_matches('/').split('/').peekable();
    let mut names = Vec::new();
    loop {
        match segments.peek().copied() {
            Some("job") => {
                segments.next();
                let name = segments.next().filter(|n| !n.is_empty())?;
                names.push(decode_component(name, false));
            }
            Some("view") if !names.is_empty() => {
                segments.next();
                segments.next()?;
            }
            _ => break,
        }
    }
    if names.is_empty() {
        return None;
    }
    let rest = segments
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    Some((names.join("/"), rest))
}

impl State {
    fn job_url(&self, job: &str) -> String {
        let path: String = job.split('/').map(|s| format!("job/{s}/")).collect();
        format!("{}/{path}", self.base)
    }

    fn parameters_action(params: &[(String, String)]) -> Value {
        json!({
            "_class": "hudson.model.ParametersAction",
            "parameters": params.iter().map(|(n, v)| json!({
                "_class": "hudson.model.StringParameterValue", "name": n, "value": v
            })).collect::<Vec<_>>()
        })
    }

    fn build_json(&self, job: &str, b: &BuildState) -> Value {
        json!({
            "_class": "hudson.model.FreeStyleBuild",
            "actions": [
                Self::parameters_action(&b.info.params),
                {"_class": "hudson.model.CauseAction", "causes": [{"_class": "hudson.model.Cause$RemoteCause", "shortDescription": "Started by remote host"}]},
                {}
            ],
            "building": b.info.building,
            "description": null,
            "displayName": format!("#{}", b.info.number),
            "duration": b.duration,
            "estimatedDuration": 1000,
            "executor": if b.info.building { json!({"_class": "hudson.model.Executor"}) } else { Value::Null },
            "fullDisplayName": format!("{} #{}", job.replace('/', " » "), b.info.number),
            "id": b.info.number.to_string(),
            "keepLog": false,
            "number": b.info.number,
            "queueId": b.info.queue_id,
            "result": b.info.result,
            "timestamp": b.timestamp,
            "url": format!("{}{}/", self.job_url(job), b.info.number),
        })
    }

    fn item_json(&self, e: &QueueEntry) -> Value {
        let task = json!({
            "_class": "hudson.model.FreeStyleProject",
            "name": e.job.rsplit('/').next().unwrap_or(&e.job),
            "url": self.job_url(&e.job),
            "color": "notbuilt",
        });
        let params_text: String = e.params.iter().map(|(k, v)| format!("\n{k}={v}")).collect();
        let mut item = json!({
            "actions": [Self::parameters_action(&e.params)],
            "blocked": false,
            "buildable": false,
            "id": e.id,
            "inQueueSince": e.since,
            "params": params_text,
            "stuck": false,
            "task": task,
            "url": format!("queue/item/{}/", e.id),
        });
        let extra = match &e.state {
            ItemState::Waiting => json!({
                "_class": "hudson.model.Queue$WaitingItem",
                "why": "In the quiet period. Expires in 4.9 sec",
                "timestamp": e.since + 5000,
            }),
            ItemState::Left { build, cancelled } => json!({
                "_class": "hudson.model.Queue$LeftItem",
                "why": null,
                "cancelled": cancelled,
                "executable": build.map(|n| json!({
                    "_class": "hudson.model.FreeStyleBuild",
                    "number": n,
                    "url": format!("{}{n}/", self.job_url(&e.job)),
                })),
            }),
        };
        if let (Some(item), Value::Object(extra)) = (item.as_object_mut(), extra) {
            item.extend(extra);
        }
        item
    }

    /// Starts the build of a waiting item.
    fn start_item(&mut self, id: u64) -> Option<(String, u64)> {
        let entry = self.queue.get(&id)?.clone();
        if !matches!(entry.state, ItemState::Waiting) {
            return None;
        }
        let job = self.jobs.get_mut(&entry.job)?;
        job.next_build += 1;
        let number = job.next_build;
        job.builds.insert(
            number,
            BuildState {
                info: BuildInfo {
                    number,
                    params: entry.params.clone(),
                    building: true,
                    result: None,
                    console: format!("Started by remote host\nRunning as SYSTEM\nBuilding in workspace /var/jenkins_home/workspace/{}\n", entry.job),
                    queue_id: id,
                },
                timestamp: now_ms(),
                duration: 0,
            },
        );
        if let Some(e) = self.queue.get_mut(&id) {
            e.state = ItemState::Left {
                build: Some(number),
                cancelled: false,
            };
        }
        Some((entry.job, number))
    }

    fn finish(&mut self, job: &str, number: u64, result: &str) -> bool {
        let Some(b) = self
            .jobs
            .get_mut(job)
            .and_then(|j| j.builds.get_mut(&number))
        else {
            return false;
        };
        if !b.info.building {
            return false;
        }
        b.info.building = false;
        b.info.console.push_str(&format!("Finished: {result}\n"));
        b.info.result = Some(result.to_owned());
        b.duration = (now_ms() - b.timestamp).max(1);
        true
    }

    fn authorized(&self, req: &RecordedRequest) -> bool {
        let header = req.header("authorization").unwrap_or_default();
        match &self.auth {
            Auth::None => true,
            Auth::Bearer(token) => header.strip_prefix("Bearer ") == Some(token.as_str()),
            Auth::Basic(user, token) => header
                .strip_prefix("Basic ")
                .and_then(decode_base64)
                .and_then(|b| String::from_utf8(b).ok())
                .is_some_and(|pair| pair == format!("{user}:{token}")),
        }
    }

    fn crumb_ok(&self, req: &RecordedRequest) -> bool {
        let cookie_ok = req
            .header("cookie")
            .is_some_and(|c| c.split(';').any(|p| p.trim() == self.session_cookie()));
        req.header(CRUMB_FIELD) == Some(self.crumb.as_str()) && cookie_ok
    }

    fn session_cookie(&self) -> String {
        format!("JSESSIONID.bosun={}", self.session)
    }

    fn handle(&mut self, req: &RecordedRequest) -> Result<Canned, String> {
        if !self.authorized(req) {
            return Ok(html(401, "Error 401 Unauthorized")
                .with_header("www-authenticate", "Basic realm=\"Jenkins\""));
        }
        let path = req.path.as_str();
        let method = req.method.as_str();
        if method == "POST" && self.csrf && !self.crumb_ok(req) {
            return Ok(html(
                403,
                "Error 403 No valid crumb was included in the request",
            ));
        }
        if path == "/crumbIssuer/api/json" {
            if method != "GET" {
                return Err(format!("{method} on the crumb issuer"));
            }
            if !self.csrf {
                return Ok(not_found());
            }
            return Ok(Canned::json(
                200,
                json!({"_class": "hudson.security.csrf.DefaultCrumbIssuer", "crumb": self.crumb, "crumbRequestField": CRUMB_FIELD}),
            )
            .with_header(
                "set-cookie",
                &format!("{}; Path=/; HttpOnly", self.session_cookie()),
            ));
        }
        if path == "/queue/api/json" && method == "GET" {
            let items: Vec<Value> = self
                .queue
                .values()
                .filter(|e| matches!(e.state, ItemState::Waiting))
                .map(|e| self.item_json(e))
                .collect();
            return Ok(Canned::json(
                200,
                json!({"_class": "hudson.model.Queue", "discoverableItems": [], "items": items}),
            ));
        }
        if path == "/queue/cancelItem" {
            if method != "POST" {
                return Err(format!("{method} /queue/cancelItem is not POST"));
            }
            let id = query_pairs(req.query.as_deref())
                .into_iter()
                .find(|(k, _)| k == "id")
                .and_then(|(_, v)| v.parse::<u64>().ok())
                .ok_or("cancelItem without a numeric id")?;
            return Ok(match self.queue.get_mut(&id) {
                Some(e) => {
                    if matches!(e.state, ItemState::Waiting) {
                        e.state = ItemState::Left {
                            build: None,
                            cancelled: true,
                        };
                    }
                    Canned::text(204, "")
                }
                None => not_found(),
            });
        }
        if let Some(rest) = path.strip_prefix("/queue/item/") {
            let mut parts = rest.trim_end_matches('/').split('/');
            let id = parts.next().and_then(|i| i.parse::<u64>().ok());
            let tail: Vec<&str> = parts.collect();
            if method != "GET" || tail != ["api", "json"] {
                return Ok(not_found());
            }
            return Ok(match id.and_then(|id| self.queue.get(&id)) {
                Some(e) => Canned::json(200, self.item_json(e)),
                None => not_found(),
            });
        }
        let Some((job, rest)) = split_job_path(path) else {
            return Ok(not_found());
        };
        if !self.jobs.contains_key(&job) {
            return Ok(not_found());
        }
        let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
        match (method, rest.as_slice()) {
            ("POST", ["buildWithParameters"]) => {
                if !req.body.is_empty() {
                    return Err(
                        "buildWithParameters with a body (Prow sends the query only)".into(),
                    );
                }
                let params = query_pairs(req.query.as_deref());
                if let Some(j) = self.jobs.get_mut(&job) {
                    j.triggers += 1;
                }
                self.next_queue_id += 1;
                let id = self.next_queue_id;
                self.queue.insert(
                    id,
                    QueueEntry {
                        id,
                        job: job.clone(),
                        params,
                        state: ItemState::Waiting,
                        since: now_ms(),
                    },
                );
                let behaviour = self
                    .jobs
                    .get(&job)
                    .map(|j| j.behaviour.clone())
                    .unwrap_or_default();
                if let Behaviour::FinishOnTrigger {
                    result,
                    console,
                    forget_queue_item,
                } = behaviour
                {
                    if let Some((job, n)) = self.start_item(id) {
                        if let Some(b) = self.jobs.get_mut(&job).and_then(|j| j.builds.get_mut(&n))
                        {
                            b.info.console.push_str(&console);
                        }
                        self.finish(&job, n, &result);
                    }
                    if forget_queue_item {
                        self.queue.remove(&id);
                    }
                }
                Ok(Canned::text(201, "")
                    .with_header("location", &format!("{}/queue/item/{id}/", self.base)))
            }
            ("GET", ["api", "json"]) => {
                let j = self.jobs.get(&job).ok_or("job vanished")?;
                let builds: Vec<Value> = j
                    .builds
                    .values()
                    .rev()
                    .map(|b| self.build_json(&job, b))
                    .collect();
                Ok(Canned::json(
                    200,
                    json!({
                        "_class": "hudson.model.FreeStyleProject",
                        "name": job.rsplit('/').next().unwrap_or(&job),
                        "fullName": job,
                        "url": self.job_url(&job),
                        "buildable": true,
                        "builds": builds,
                        "lastBuild": builds.first().cloned().unwrap_or(Value::Null),
                        "nextBuildNumber": j.next_build + 1,
                        "property": [{
                            "_class": "hudson.model.ParametersDefinitionProperty",
                            "parameterDefinitions": [{"_class": "hudson.model.StringParameterDefinition", "name": "PROW_JOB_ID", "type": "StringParameterDefinition"}]
                        }],
                    }),
                ))
            }
            (_, [n, tail @ ..]) => {
                let Ok(number) = n.parse::<u64>() else {
                    return Ok(not_found());
                };
                let Some(b) = self
                    .jobs
                    .get(&job)
                    .and_then(|j| j.builds.get(&number))
                    .cloned()
                else {
                    return Ok(not_found());
                };
                match (method, tail) {
                    ("GET", ["api", "json"]) => Ok(Canned::json(200, self.build_json(&job, &b))),
                    ("POST", ["stop"]) => {
                        if b.info.building
                            && let Some(b) = self
                                .jobs
                                .get_mut(&job)
                                .and_then(|j| j.builds.get_mut(&number))
                        {
                            b.info.console.push_str("Aborted by bot\n");
                        }
                        self.finish(&job, number, "ABORTED");
                        Ok(Canned::text(302, "")
                            .with_header("location", &format!("{}{number}/", self.job_url(&job))))
                    }
                    ("GET", ["logText", "progressiveText"]) => {
                        let start = query_pairs(req.query.as_deref())
                            .into_iter()
                            .find(|(k, _)| k == "start")
                            .and_then(|(_, v)| v.parse::<usize>().ok())
                            .unwrap_or(0);
                        let console = b.info.console.as_bytes();
                        let from = start.min(console.len());
                        let text = String::from_utf8_lossy(&console[from..]).into_owned();
                        let mut answer = Canned::text(200, &text)
                            .with_header("x-text-size", &console.len().to_string());
                        if b.info.building {
                            answer = answer.with_header("x-more-data", "true");
                        }
                        Ok(answer)
                    }
                    _ => Ok(not_found()),
                }
            }
            _ => Ok(not_found()),
        }
    }
}

/// Options of a [`JenkinsServer`].
#[derive(Debug, Clone)]
pub struct JenkinsOptions {
    /// How requests authenticate.
    pub auth: Auth,
    /// Require a CSRF crumb on POSTs.
    pub csrf: bool,
    /// The jobs that exist (full names, `folder/job`).
    pub jobs: Vec<String>,
}

impl JenkinsServer {
    /// Starts a server with these jobs and credentials.
    pub async fn start(options: JenkinsOptions) -> Result<Self, TestServerError> {
        let jobs = options
            .jobs
            .iter()
            .map(|j| (j.clone(), JobState::default()))
            .collect();
        let state = Arc::new(Mutex::new(State {
            base: String::new(),
            auth: options.auth,
            csrf: options.csrf,
            crumb: uuid::Uuid::new_v4().simple().to_string(),
            session: uuid::Uuid::new_v4().simple().to_string(),
            jobs,
            queue: BTreeMap::new(),
            next_queue_id: 0,
        }));
        let handler_state = state.clone();
        let server = TestServer::start(move |req| {
            handler_state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .handle(req)
        })
        .await?;
        state.lock().unwrap_or_else(PoisonError::into_inner).base = server.url();
        Ok(JenkinsServer { server, state })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The underlying recorder (requests, violations, canned failures, outages).
    pub fn server(&self) -> &TestServer {
        &self.server
    }

    /// Adds a job.
    pub fn add_job(&self, full_name: &str) {
        self.lock().jobs.entry(full_name.to_owned()).or_default();
    }

    /// Sets how a job's builds run.
    pub fn set_behaviour(&self, job: &str, behaviour: Behaviour) {
        self.lock()
            .jobs
            .entry(job.to_owned())
            .or_default()
            .behaviour = behaviour;
    }

    /// The waiting queue items of `job`: (id, parameters).
    pub fn queued(&self, job: &str) -> Vec<(u64, Vec<(String, String)>)> {
        self.lock()
            .queue
            .values()
            .filter(|e| e.job == job && matches!(e.state, ItemState::Waiting))
            .map(|e| (e.id, e.params.clone()))
            .collect()
    }

    /// How many times `job` was triggered (`buildWithParameters` answered 201).
    pub fn triggered(&self, job: &str) -> usize {
        self.lock().jobs.get(job).map_or(0, |j| j.triggers)
    }

    /// Waits (bounded) until `job` has a waiting item whose `PROW_JOB_ID` is `prow_job_id`;
    /// returns its id.
    pub async fn wait_queued(&self, job: &str, prow_job_id: &str, deadline: Duration) -> u64 {
        let end = tokio::time::Instant::now() + deadline;
        loop {
            let found = self.queued(job).into_iter().find(|(_, params)| {
                params
                    .iter()
                    .any(|(k, v)| k == "PROW_JOB_ID" && v == prow_job_id)
            });
            if let Some((id, _)) = found {
                return id;
            }
            assert!(
                tokio::time::Instant::now() < end,
                "no queue item of {job} with PROW_JOB_ID={prow_job_id} within {deadline:?}"
            );
            // Poll interval of a bounded wait for the agent's trigger.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Plays the executor: the waiting item `id` leaves the queue and its build starts.
    /// Returns the build number.
    pub fn start_build(&self, id: u64) -> Option<u64> {
        self.lock().start_item(id).map(|(_, n)| n)
    }

    /// Appends console text to a running build.
    pub fn append_console(&self, job: &str, number: u64, text: &str) {
        if let Some(b) = self
            .lock()
            .jobs
            .get_mut(job)
            .and_then(|j| j.builds.get_mut(&number))
        {
            b.info.console.push_str(text);
        }
    }

    /// Ends a running build with `result`; false if it was not running.
    pub fn finish_build(&self, job: &str, number: u64, result: &str) -> bool {
        self.lock().finish(job, number, result)
    }

    /// Forgets a queue item (Jenkins drops left items after some minutes).
    pub fn forget_queue_item(&self, id: u64) {
        self.lock().queue.remove(&id);
    }

    /// A build.
    pub fn build(&self, job: &str, number: u64) -> Option<BuildInfo> {
        self.lock()
            .jobs
            .get(job)
            .and_then(|j| j.builds.get(&number))
            .map(|b| b.info.clone())
    }

    /// Every build of a job, oldest first.
    pub fn builds(&self, job: &str) -> Vec<BuildInfo> {
        self.lock()
            .jobs
            .get(job)
            .map(|j| j.builds.values().map(|b| b.info.clone()).collect())
            .unwrap_or_default()
    }

    /// Whether queue item `id` was cancelled.
    pub fn cancelled(&self, id: u64) -> bool {
        matches!(
            self.lock().queue.get(&id).map(|e| &e.state),
            Some(ItemState::Left {
                cancelled: true,
                ..
            })
        )
    }

    /// How many requests had this method and a path ending in `suffix`.
    pub fn count(&self, method: &str, suffix: &str) -> usize {
        self.server
            .requests()
            .iter()
            .filter(|r| r.method == method && r.path.ends_with(suffix))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_paths_and_queries_decode() {
        assert_eq!(
            split_job_path("/job/a/job/b%20c/3/api/json"),
            Some((
                "a/b c".to_owned(),
                vec!["3".into(), "api".into(), "json".into()]
            ))
        );
        assert_eq!(
            split_job_path("/job/multi/view/change-requests/job/PR-1/api/json"),
            Some(("multi/PR-1".to_owned(), vec!["api".into(), "json".into()]))
        );
        assert_eq!(split_job_path("/queue/api/json"), None);
        assert_eq!(
            query_pairs(Some("A=1&JOB_SPEC=%7B%22a%22%3A1%7D&T=x+y")),
            vec![
                ("A".to_owned(), "1".to_owned()),
                ("JOB_SPEC".to_owned(), "{\"a\":1}".to_owned()),
                ("T".to_owned(), "x y".to_owned())
            ]
        );
    }
}
