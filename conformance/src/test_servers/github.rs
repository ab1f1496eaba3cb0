//! A GitHub REST test server for commit statuses:
//! `POST /repos/{owner}/{repo}/statuses/{sha}` with `{"state","target_url","description",
//! "context"}` answering 201 with the status object; bad credentials answer 401
//! `{"message":"Bad credentials"}`, a bad state or a description over 140 characters 422
//! `Validation Failed`, an unknown SHA 422 `No commit found for SHA: …`.
//!
//! Also `GET /user` (the token's user is [`BOT_LOGIN`]) and issue comments: list
//! (`per_page`/`page`), create, edit (only the bot's own) and delete.
//!
//! Started with [`GitHubServer::start_app`] it plays GitHub App authentication instead: the
//! app endpoints (`GET /app`, `GET /app/installations`,
//! `POST /app/installations/{id}/access_tokens`) take only an RS256 JWT signed with the app's
//! key whose `iss` is the app id, and API calls take only installation tokens the server issued,
//! each valid for its own installation's account; `GET /user` answers 403 `Resource not
//! accessible by integration` as GitHub does, and comments are authored by `{slug}[bot]`.

use std::sync::{Arc, Mutex, PoisonError};

use serde_json::json;

use super::github_pulls::{self, PullRequest, Repos};
use super::{Canned, RecordedRequest, TestServer, TestServerError, json_body};

/// The app's slug in App mode; its bot login is `bosun-app[bot]`.
pub const APP_SLUG: &str = "bosun-app";

/// How API calls are authenticated.
enum Auth {
    Token(String),
    App(AppAuth),
}

struct AppAuth {
    app_id: u64,
    key: jsonwebtoken::DecodingKey,
    /// (account login, installation id).
    installations: Vec<(String, u64)>,
    /// Issued installation tokens: (token, installation id).
    issued: Mutex<Vec<(String, u64)>>,
}

impl Auth {
    fn bot_login(&self) -> String {
        match self {
            Auth::Token(_) => BOT_LOGIN.to_owned(),
            Auth::App(_) => format!("{APP_SLUG}[bot]"),
        }
    }

    /// Whether the request may call the API on repositories of `owner` (any owner if `None`).
    fn allows(&self, req: &RecordedRequest, owner: Option<&str>) -> bool {
        match self {
            Auth::Token(token) => req.bearer() == Some(token.as_str()),
            Auth::App(app) => {
                let Some(bearer) = req.bearer() else {
                    return false;
                };
                let issued = app.issued.lock().unwrap_or_else(PoisonError::into_inner);
                let Some((_, installation)) = issued.iter().find(|(t, _)| t == bearer) else {
                    return false;
                };
                owner.is_none_or(|owner| {
                    app.installations
                        .iter()
                        .any(|(login, id)| id == installation && login.eq_ignore_ascii_case(owner))
                })
            }
        }
    }
}

impl AppAuth {
    /// Checks the request's JWT: RS256 with the app's key, unexpired, `iss` = the app id.
    fn check_jwt(&self, req: &RecordedRequest) -> Result<(), Canned> {
        let unauthorized = |message: &str| Canned::json(401, json!({"message": message}));
        let Some(jwt) = req.bearer() else {
            return Err(unauthorized("A JSON web token could not be decoded"));
        };
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        // `iss` is checked below: GitHub takes the app id as a number, which the library does not.
        validation.set_required_spec_claims(&["exp", "iat"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(jwt, &self.key, &validation)
            .map_err(|e| unauthorized(&format!("A JSON web token could not be decoded: {e}")))?
            .claims;
        let iss = match claims.get("iss") {
            Some(serde_json::Value::Number(n)) => n.to_string(),
            Some(serde_json::Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        if iss != self.app_id.to_string() {
            return Err(unauthorized(
                "'Issuer' claim ('iss') must be an Integer or the app's client ID",
            ));
        }
        Ok(())
    }
}

/// A status the server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStatus {
    /// `owner/repo`.
    pub repo: String,
    /// The commit.
    pub sha: String,
    /// `pending`, `success`, `failure`, `error`.
    pub state: String,
    /// The description.
    pub description: String,
    /// The context.
    pub context: String,
    /// `target_url`, if sent.
    pub target_url: Option<String>,
}

/// The login of the token's user (`GET /user`).
pub const BOT_LOGIN: &str = "bosun-bot";

/// An issue (pull request) comment the server holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueComment {
    /// The comment id.
    pub id: u64,
    /// `owner/repo`.
    pub repo: String,
    /// The issue or pull request number.
    pub number: i64,
    /// The author's login.
    pub user: String,
    /// The body.
    pub body: String,
}

#[derive(Default)]
struct Comments {
    next_id: u64,
    comments: Vec<IssueComment>,
}

/// The running server.
pub struct GitHubServer {
    server: TestServer,
    statuses: Arc<Mutex<Vec<CommitStatus>>>,
    comments: Arc<Mutex<Comments>>,
    repos: Arc<Mutex<Repos>>,
    auth: Arc<Auth>,
}

impl GitHubServer {
    /// Accepts `token` (`Authorization: Bearer` or `token`).
    pub async fn start(token: &str) -> Result<Self, TestServerError> {
        Self::start_with(Auth::Token(token.to_owned())).await
    }

    /// Plays a GitHub App with id `app_id` whose public key is `public_key_pem`, installed on
    /// the accounts `installations` (account login, installation id).
    pub async fn start_app(
        app_id: u64,
        public_key_pem: &[u8],
        installations: &[(&str, u64)],
    ) -> Result<Self, TestServerError> {
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(public_key_pem)
            .map_err(|e| TestServerError::Setup(format!("app public key: {e}")))?;
        Self::start_with(Auth::App(AppAuth {
            app_id,
            key,
            installations: installations
                .iter()
                .map(|(login, id)| ((*login).to_owned(), *id))
                .collect(),
            issued: Mutex::new(Vec::new()),
        }))
        .await
    }

    async fn start_with(auth: Auth) -> Result<Self, TestServerError> {
        let auth = Arc::new(auth);
        let token = auth.clone();
        let statuses = Arc::new(Mutex::new(Vec::new()));
        let sink = statuses.clone();
        let comments = Arc::new(Mutex::new(Comments {
            next_id: 1000,
            comments: Vec::new(),
        }));
        let comment_state = comments.clone();
        let repos = Arc::new(Mutex::new(Repos::default()));
        let repo_state = repos.clone();
        let status_state = statuses.clone();
        let server = TestServer::start(move |req| {
            if let Some(answer) = handle_app(req, &token) {
                return answer;
            }
            if let Some(answer) = handle_repos(req, &token, &repo_state, &status_state) {
                return answer;
            }
            if let Some(answer) = handle_comments(req, &token, &comment_state) {
                return answer;
            }
            match handle(req, &token)? {
            Ok(status) => {
                let body = json!({
                    "url": format!("https://api.github.com/repos/{}/statuses/{}", status.repo, status.sha),
                    "id": 1,
                    "state": status.state,
                    "description": status.description,
                    "target_url": status.target_url,
                    "context": status.context,
                });
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(status);
                Ok(Canned::json(201, body))
            }
            Err(answer) => Ok(answer),
        }
        })
        .await?;
        Ok(GitHubServer {
            server,
            statuses,
            comments,
            repos,
            auth,
        })
    }

    /// The login comments are created under: [`BOT_LOGIN`], or `bosun-app[bot]` in App mode.
    pub fn bot_login(&self) -> String {
        self.auth.bot_login()
    }

    /// How many installation tokens the server issued (App mode).
    pub fn issued_tokens(&self) -> usize {
        match &*self.auth {
            Auth::Token(_) => 0,
            Auth::App(app) => app
                .issued
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len(),
        }
    }

    /// The API base URL.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Accepted statuses, in order.
    pub fn statuses(&self) -> Vec<CommitStatus> {
        self.statuses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The comments on `repo` (`owner/repo`) issue `number`, oldest first.
    pub fn comments(&self, repo: &str, number: i64) -> Vec<IssueComment> {
        self.comments
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .comments
            .iter()
            .filter(|c| c.repo == repo && c.number == number)
            .cloned()
            .collect()
    }

    /// Adds a comment as `user` (e.g. a human's, or an old bot comment).
    pub fn add_comment(&self, repo: &str, number: i64, user: &str, body: &str) -> u64 {
        let mut state = self.comments.lock().unwrap_or_else(PoisonError::into_inner);
        state.next_id += 1;
        let id = state.next_id;
        state.comments.push(IssueComment {
            id,
            repo: repo.to_owned(),
            number,
            user: user.to_owned(),
            body: body.to_owned(),
        });
        id
    }

    fn repos(&self) -> std::sync::MutexGuard<'_, Repos> {
        self.repos.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds (or replaces, e.g. after a push) a pull request.
    pub fn put_pull(&self, pr: PullRequest) {
        self.repos().pulls.insert((pr.repo.clone(), pr.number), pr);
    }

    /// The pull request `repo#number`, if the server has it.
    pub fn pull(&self, repo: &str, number: i64) -> Option<PullRequest> {
        self.repos().pulls.get(&(repo.to_owned(), number)).cloned()
    }

    /// Makes `login` a member of `org`.
    pub fn add_member(&self, org: &str, login: &str) {
        self.repos()
            .members
            .insert((org.to_owned(), login.to_owned()));
    }

    /// Makes `login` a collaborator of `repo`.
    pub fn add_collaborator(&self, repo: &str, login: &str) {
        self.repos()
            .collaborators
            .insert((repo.to_owned(), login.to_owned()));
    }

    /// The labels on `repo#number`.
    pub fn labels(&self, repo: &str, number: i64) -> Vec<String> {
        self.repos()
            .labels
            .get(&(repo.to_owned(), number))
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Puts a label on `repo#number` (as a human would).
    pub fn add_label(&self, repo: &str, number: i64, label: &str) {
        self.repos()
            .labels
            .entry((repo.to_owned(), number))
            .or_default()
            .insert(label.to_owned());
    }

    /// Records a commit status as if another CI system had sent it.
    pub fn put_status(&self, status: CommitStatus) {
        self.statuses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(status);
    }

    /// The underlying recorder.
    pub fn server(&self) -> &TestServer {
        &self.server
    }

    /// The next request gets a secondary-rate-limit 403 with `Retry-After: secs`.
    pub fn rate_limit_next(&self, secs: u64) {
        self.server.fail_next(
            Canned::json(
                403,
                json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}),
            )
            .with_header("retry-after", &secs.to_string()),
        );
    }
}

fn validation_failed(message: &str) -> Canned {
    Canned::json(
        422,
        json!({"message": "Validation Failed", "errors": [{"resource": "Status", "code": "custom", "message": message}]}),
    )
}

fn handle(req: &RecordedRequest, auth: &Auth) -> Result<Result<CommitStatus, Canned>, String> {
    let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let ["repos", owner, repo, "statuses", sha] = parts.as_slice() else {
        return Ok(Err(Canned::json(404, json!({"message": "Not Found"}))));
    };
    if req.method != "POST" {
        return Err(format!("method {} is not POST", req.method));
    }
    if req.header("user-agent").is_none_or(str::is_empty) {
        return Ok(Err(Canned::text(
            403,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header",
        )));
    }
    if !auth.allows(req, Some(owner)) {
        return Ok(Err(Canned::json(
            401,
            json!({"message": "Bad credentials"}),
        )));
    }
    let body = json_body(req)?;
    if sha.len() != 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(Err(Canned::json(
            422,
            json!({"message": format!("No commit found for SHA: {sha}")}),
        )));
    }
    let string = |key: &str| -> Result<Option<String>, String> {
        match body.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("{key} is not a string")),
        }
    };
    let state = string("state")?.unwrap_or_default();
    if !["pending", "success", "failure", "error"].contains(&state.as_str()) {
        return Ok(Err(validation_failed(&format!(
            "state {state:?} is not valid"
        ))));
    }
    let description = string("description")?.unwrap_or_default();
    if description.chars().count() > 140 {
        return Ok(Err(validation_failed(
            "description is too long (maximum is 140 characters)",
        )));
    }
    Ok(Ok(CommitStatus {
        repo: format!("{owner}/{repo}"),
        sha: (*sha).to_owned(),
        state,
        description,
        context: string("context")?.unwrap_or_else(|| "default".to_owned()),
        target_url: string("target_url")?,
    }))
}

fn comment_json(c: &IssueComment) -> serde_json::Value {
    json!({
        "id": c.id,
        "body": c.body,
        "user": {"login": c.user},
        "html_url": format!("https://github.com/{}/pull/{}#issuecomment-{}", c.repo, c.number, c.id),
    })
}

/// The pull request, membership, label and combined-status endpoints
/// ([`github_pulls`]); `None` for other paths.
fn handle_repos(
    req: &RecordedRequest,
    auth: &Auth,
    repos: &Mutex<Repos>,
    statuses: &Mutex<Vec<CommitStatus>>,
) -> Option<Result<Canned, String>> {
    let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    if !github_pulls::serves(&parts) {
        return None;
    }
    if req.header("user-agent").is_none_or(str::is_empty) {
        return Some(Ok(Canned::text(
            403,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header",
        )));
    }
    let owner = match parts.as_slice() {
        ["repos", owner, ..] | ["orgs", owner, ..] => Some(*owner),
        _ => None,
    };
    if !auth.allows(req, owner) {
        return Some(Ok(Canned::json(401, json!({"message": "Bad credentials"}))));
    }
    let statuses = statuses
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let mut repos = repos.lock().unwrap_or_else(PoisonError::into_inner);
    Some(github_pulls::handle(req, &parts, &mut repos, &statuses))
}

/// `GET /user` and the issue comment endpoints; `None` for other paths.
fn handle_comments(
    req: &RecordedRequest,
    auth: &Auth,
    state: &Mutex<Comments>,
) -> Option<Result<Canned, String>> {
    let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let is_comment_path = matches!(
        parts.as_slice(),
        ["user"]
            | ["repos", _, _, "issues", _, "comments"]
            | ["repos", _, _, "issues", "comments", _]
    );
    if !is_comment_path {
        return None;
    }
    if req.header("user-agent").is_none_or(str::is_empty) {
        return Some(Ok(Canned::text(
            403,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header",
        )));
    }
    let owner = match parts.as_slice() {
        ["repos", owner, ..] => Some(*owner),
        _ => None,
    };
    if !auth.allows(req, owner) {
        return Some(Ok(Canned::json(401, json!({"message": "Bad credentials"}))));
    }
    let bot = auth.bot_login();
    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
    let not_found = || Ok(Canned::json(404, json!({"message": "Not Found"})));
    let body_field = |req: &RecordedRequest| -> Result<String, String> {
        let body = json_body(req)?;
        match body.get("body") {
            Some(serde_json::Value::String(b)) if !b.is_empty() => Ok(b.clone()),
            _ => Err("body is missing or not a string".to_owned()),
        }
    };
    Some(match (req.method.as_str(), parts.as_slice()) {
        ("GET", ["user"]) if matches!(auth, Auth::App(_)) => Ok(Canned::json(
            403,
            json!({"message": "Resource not accessible by integration"}),
        )),
        ("GET", ["user"]) => Ok(Canned::json(200, json!({"login": BOT_LOGIN, "id": 1}))),
        ("GET", ["repos", owner, repo, "issues", number, "comments"]) => {
            let Ok(number) = number.parse::<i64>() else {
                return Some(not_found());
            };
            let repo = format!("{owner}/{repo}");
            let page: usize = req
                .query
                .as_deref()
                .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("page=")))
                .and_then(|p| p.parse().ok())
                .unwrap_or(1);
            let per_page: usize = req
                .query
                .as_deref()
                .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("per_page=")))
                .and_then(|p| p.parse().ok())
                .unwrap_or(30)
                .clamp(1, 100);
            let items: Vec<serde_json::Value> = state
                .comments
                .iter()
                .filter(|c| c.repo == repo && c.number == number)
                .skip((page.max(1) - 1) * per_page)
                .take(per_page)
                .map(comment_json)
                .collect();
            Ok(Canned::json(200, serde_json::Value::Array(items)))
        }
        ("POST", ["repos", owner, repo, "issues", number, "comments"]) => {
            let Ok(number) = number.parse::<i64>() else {
                return Some(not_found());
            };
            match body_field(req) {
                Err(e) => Err(e),
                Ok(body) => {
                    state.next_id += 1;
                    let comment = IssueComment {
                        id: state.next_id,
                        repo: format!("{owner}/{repo}"),
                        number,
                        user: bot.clone(),
                        body,
                    };
                    let answer = Canned::json(201, comment_json(&comment));
                    state.comments.push(comment);
                    Ok(answer)
                }
            }
        }
        ("PATCH", ["repos", owner, repo, "issues", "comments", id]) => {
            let repo = format!("{owner}/{repo}");
            let body = match body_field(req) {
                Ok(body) => body,
                Err(e) => return Some(Err(e)),
            };
            match state
                .comments
                .iter_mut()
                .find(|c| c.repo == repo && id.parse::<u64>().ok() == Some(c.id))
            {
                Some(c) if c.user == bot => {
                    c.body = body;
                    Ok(Canned::json(200, comment_json(c)))
                }
                Some(_) => Ok(Canned::json(
                    403,
                    json!({"message": "Must have admin rights to Repository."}),
                )),
                None => not_found(),
            }
        }
        ("DELETE", ["repos", owner, repo, "issues", "comments", id]) => {
            let repo = format!("{owner}/{repo}");
            let before = state.comments.len();
            state
                .comments
                .retain(|c| !(c.repo == repo && id.parse::<u64>().ok() == Some(c.id)));
            if state.comments.len() == before {
                not_found()
            } else {
                Ok(Canned {
                    status: 204,
                    headers: Vec::new(),
                    content_type: "application/json; charset=utf-8",
                    body: String::new(),
                })
            }
        }
        (method, _) => Err(format!("method {method} is not allowed here")),
    })
}

/// The GitHub App endpoints (App mode only); `None` for other paths.
fn handle_app(req: &RecordedRequest, auth: &Auth) -> Option<Result<Canned, String>> {
    let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    if parts.first() != Some(&"app") {
        return None;
    }
    let Auth::App(app) = auth else {
        return Some(Ok(Canned::json(
            401,
            json!({"message": "A JSON web token could not be decoded"}),
        )));
    };
    if let Err(answer) = app.check_jwt(req) {
        return Some(Ok(answer));
    }
    let installation_json = |login: &str, id: u64| {
        json!({
            "id": id,
            "app_id": app.app_id,
            "app_slug": APP_SLUG,
            "target_type": "Organization",
            "account": {"login": login, "id": id + 1, "type": "Organization"},
            "permissions": {"statuses": "write", "issues": "write", "pull_requests": "write"},
            "repository_selection": "all",
        })
    };
    Some(match (req.method.as_str(), parts.as_slice()) {
        ("GET", ["app"]) => Ok(Canned::json(
            200,
            json!({"id": app.app_id, "slug": APP_SLUG, "name": "bosun app", "owner": {"login": "acme"}}),
        )),
        ("GET", ["app", "installations"]) => Ok(Canned::json(
            200,
            serde_json::Value::Array(
                app.installations
                    .iter()
                    .map(|(login, id)| installation_json(login, *id))
                    .collect(),
            ),
        )),
        ("POST", ["app", "installations", id, "access_tokens"]) => {
            match id
                .parse::<u64>()
                .ok()
                .filter(|id| app.installations.iter().any(|(_, i)| i == id))
            {
                None => Ok(Canned::json(404, json!({"message": "Not Found"}))),
                Some(id) => {
                    let token = format!("ghs_{}", uuid::Uuid::new_v4().simple());
                    app.issued
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push((token.clone(), id));
                    let expires = chrono::Utc::now() + chrono::Duration::hours(1);
                    Ok(Canned::json(
                        201,
                        json!({
                            "token": token,
                            "expires_at": expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                            "permissions": {"statuses": "write", "issues": "write"},
                            "repository_selection": "all",
                        }),
                    ))
                }
            }
        }
        (method, _) => Err(format!("method {method} on {} is not served", req.path)),
    })
}
