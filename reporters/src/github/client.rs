//! The GitHub REST client the reporter uses: `octocrab` for transport, authentication (a
//! token, or a GitHub App whose installation tokens octocrab mints and refreshes) and the base
//! URL (GitHub Enterprise, test servers); bosun reads the raw answers itself so that
//! rate-limit headers (`Retry-After`, `X-RateLimit-Remaining`/`-Reset`) steer its backoff.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue, StatusCode};
use octocrab::Octocrab;
use octocrab::models::{AppId, InstallationId};
use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::config::{ReportersConfigError, Secret};
use crate::{ReportError, http as bosun_http};

/// How bosun authenticates to GitHub.
#[derive(Debug, Clone)]
pub enum GitHubAuth {
    /// A personal access token (or any OAuth token), sent as `Authorization: Bearer`.
    Token(Secret),
    /// A GitHub App: JWTs signed with `private_key` (PEM) select the installation of each
    /// repository's owner, whose access token is used for the API calls.
    App {
        /// The app id.
        app_id: u64,
        /// The app's RSA private key, PEM.
        private_key: Secret,
    },
}

/// An HTTP answer from GitHub.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: String,
}

/// A request's HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
}

/// The client: one per reporter, shared by the status and comment steps.
pub struct GitHubClient {
    base_url: String,
    auth: GitHubAuth,
    key: Option<jsonwebtoken::EncodingKey>,
    /// Token mode: the client; App mode: the client authenticated as the app (JWT).
    root: OnceCell<Octocrab>,
    app: bool,
    /// App mode: account login (lowercase) → installation client.
    /// Shared by `Arc`: cloning an `Octocrab` copies its token cache, so clones would each mint
    /// their own installation token.
    installations: tokio::sync::Mutex<HashMap<String, Arc<Octocrab>>>,
    bot: OnceCell<String>,
    /// Set when GitHub said no requests remain: no request is sent before this instant.
    blocked_until: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for GitHubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubClient")
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Installation {
    id: u64,
    account: Option<Account>,
}

#[derive(Deserialize)]
struct Account {
    login: String,
}

impl GitHubClient {
    /// The client `bosun.reporters.github` describes (token or GitHub App; base URL).
    pub fn from_settings(
        settings: &crate::config::GitHubSettings,
    ) -> Result<Self, ReportersConfigError> {
        let auth = match (
            &settings.token_file,
            settings.app_id,
            &settings.app_private_key_file,
        ) {
            (Some(path), None, None) => GitHubAuth::Token(Secret::from_file("github token", path)?),
            (None, Some(app_id), Some(path)) => GitHubAuth::App {
                app_id,
                private_key: Secret::from_file("github app private key", path)?,
            },
            _ => {
                return Err(ReportersConfigError::Invalid(
                    "github takes token_file, or app_id with app_private_key_file".to_owned(),
                ));
            }
        };
        let base_url = settings
            .base_url
            .clone()
            .unwrap_or_else(|| super::DEFAULT_GITHUB_BASE_URL.to_owned());
        GitHubClient::new(&base_url, auth)
    }

    /// A client for the API at `base_url` (e.g. `https://api.github.com`,
    /// `https://ghe.example.com/api/v3`).
    pub fn new(base_url: &str, auth: GitHubAuth) -> Result<Self, ReportersConfigError> {
        let base_url = base_url.trim_end_matches('/').to_owned();
        base_url
            .parse::<http::Uri>()
            .ok()
            .filter(|uri| uri.scheme().is_some() && uri.host().is_some())
            .ok_or_else(|| {
                ReportersConfigError::Invalid(format!("github base_url {base_url:?} is not a URL"))
            })?;
        let key = match &auth {
            GitHubAuth::Token(_) => None,
            GitHubAuth::App { private_key, .. } => Some(
                jsonwebtoken::EncodingKey::from_rsa_pem(private_key.expose().as_bytes()).map_err(
                    |_| {
                        ReportersConfigError::Invalid(
                            "github app private key is not an RSA PEM key".to_owned(),
                        )
                    },
                )?,
            ),
        };
        let app = matches!(auth, GitHubAuth::App { .. });
        Ok(GitHubClient {
            base_url,
            auth,
            key,
            root: OnceCell::new(),
            app,
            installations: tokio::sync::Mutex::new(HashMap::new()),
            bot: OnceCell::new(),
            blocked_until: Mutex::new(None),
        })
    }

    /// The octocrab client, built on first use (octocrab needs a running Tokio runtime).
    async fn root(&self) -> Result<&Octocrab, ReportError> {
        self.root
            .get_or_try_init(|| async {
                let builder = Octocrab::builder()
                    .base_uri(self.base_url.as_str())
                    .map_err(|e| ReportError::Permanent(format!("github base_url: {e}")))?
                    .add_header(
                        http::header::ACCEPT,
                        "application/vnd.github+json".to_owned(),
                    )
                    .add_header(
                        http::HeaderName::from_static("x-github-api-version"),
                        "2022-11-28".to_owned(),
                    )
                    .add_header(http::header::USER_AGENT, "bosun".to_owned())
                    .set_connect_timeout(Some(Duration::from_secs(10)))
                    .set_read_timeout(Some(Duration::from_secs(30)));
                let built = match (&self.auth, &self.key) {
                    (GitHubAuth::App { app_id, .. }, Some(key)) => {
                        builder.app(AppId(*app_id), key.clone()).build()
                    }
                    (GitHubAuth::Token(token), _) => {
                        builder.personal_token(token.expose().to_owned()).build()
                    }
                    (GitHubAuth::App { .. }, None) => {
                        return Err(ReportError::Permanent(
                            "github app private key missing".to_owned(),
                        ));
                    }
                };
                built.map_err(|e| ReportError::Permanent(format!("github client: {e}")))
            })
            .await
    }

    /// The login comments are authored under: the token's user, or `{slug}[bot]` for an app.
    pub async fn bot_login(&self) -> Result<&str, ReportError> {
        self.bot
            .get_or_try_init(|| async {
                #[derive(Deserialize)]
                struct User {
                    login: String,
                }
                #[derive(Deserialize)]
                struct App {
                    slug: String,
                }
                if self.app {
                    let answer = self
                        .send(
                            self.root().await?,
                            "github get app",
                            Method::Get,
                            "/app",
                            None,
                        )
                        .await?;
                    let app: App = parse("github get app", &answer)?;
                    Ok(format!("{}[bot]", app.slug))
                } else {
                    let answer = self
                        .send(
                            self.root().await?,
                            "github get user",
                            Method::Get,
                            "/user",
                            None,
                        )
                        .await?;
                    let user: User = parse("github get user", &answer)?;
                    Ok(user.login)
                }
            })
            .await
            .map(String::as_str)
    }

    /// Sends a request about repositories of `owner`; non-success answers become errors
    /// (rate limits and 5xx transient, other statuses permanent).
    pub async fn request(
        &self,
        what: &str,
        owner: &str,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, ReportError> {
        let answer = self.request_raw(what, owner, method, path, body).await?;
        if answer.status.is_success() {
            Ok(answer)
        } else {
            Err(classify(what, &answer))
        }
    }

    /// [`GitHubClient::request`] returning every answer; only transport problems are errors.
    pub async fn request_raw(
        &self,
        what: &str,
        owner: &str,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, ReportError> {
        if self.app {
            let crab = self.installation_for(owner).await?;
            self.send(&crab, what, method, path, body).await
        } else {
            self.send(self.root().await?, what, method, path, body)
                .await
        }
    }

    /// The installation client of `owner`, listing the app's installations when unknown.
    async fn installation_for(&self, owner: &str) -> Result<Arc<Octocrab>, ReportError> {
        let key = owner.to_ascii_lowercase();
        let mut installations = self.installations.lock().await;
        if let Some(crab) = installations.get(&key) {
            return Ok(crab.clone());
        }
        let mut found = None;
        for page in 1u32.. {
            let answer = self
                .send(
                    self.root().await?,
                    "github list app installations",
                    Method::Get,
                    &format!("/app/installations?per_page=100&page={page}"),
                    None,
                )
                .await?;
            if !answer.status.is_success() {
                return Err(classify("github list app installations", &answer));
            }
            let list: Vec<Installation> = parse("github list app installations", &answer)?;
            let last = list.len() < 100;
            for installation in list {
                let Some(account) = installation.account else {
                    continue;
                };
                let crab = Arc::new(
                    self.root()
                        .await?
                        .installation(InstallationId(installation.id))
                        .map_err(|e| ReportError::transient(format!("github installation: {e}")))?,
                );
                let login = account.login.to_ascii_lowercase();
                if login == key {
                    found = Some(crab.clone());
                }
                installations.insert(login, crab);
            }
            if last {
                break;
            }
        }
        found.ok_or_else(|| {
            ReportError::Permanent(format!("the github app is not installed on {owner}"))
        })
    }

    async fn send(
        &self,
        crab: &Octocrab,
        what: &str,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, ReportError> {
        if let Some(wait) = self.blocked_for() {
            return Err(ReportError::Transient {
                message: format!("{what}: github rate limit exhausted"),
                retry_after: Some(wait),
            });
        }
        let result = match method {
            Method::Get => crab._get(path).await,
            Method::Post => crab._post(path, body).await,
            Method::Patch => crab._patch(path, body).await,
            Method::Delete => crab._delete(path, body).await,
        };
        let response = result.map_err(|e| transport_error(what, &e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = crab
            .body_to_string(response)
            .await
            .map_err(|e| transport_error(what, &e))?;
        if let (Some(wait), Ok(mut blocked)) = (exhausted_for(&headers), self.blocked_until.lock())
        {
            *blocked = Some(Instant::now() + wait);
        }
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    fn blocked_for(&self) -> Option<Duration> {
        let mut blocked = self.blocked_until.lock().ok()?;
        let until = (*blocked)?;
        let now = Instant::now();
        if until > now {
            Some(until - now)
        } else {
            *blocked = None;
            None
        }
    }
}

/// An octocrab error (transport, installation token minting) as a transient failure. The
/// message names the operation; tokens never appear in octocrab's errors.
fn transport_error(what: &str, error: &octocrab::Error) -> ReportError {
    let detail = match error {
        octocrab::Error::GitHub { source, .. } => {
            format!("http {}: {}", source.status_code.as_u16(), source.message)
        }
        other => other.to_string(),
    };
    ReportError::transient(format!("{what}: {detail}"))
}

/// Decodes a successful JSON answer; a non-success answer is classified as an error.
pub fn parse<T: for<'de> Deserialize<'de>>(what: &str, answer: &Answer) -> Result<T, ReportError> {
    if !answer.status.is_success() {
        return Err(classify(what, answer));
    }
    serde_json::from_str(&answer.body)
        .map_err(|e| ReportError::transient(format!("{what}: unreadable answer: {e}")))
}

/// Whether the answer is GitHub's primary or secondary rate limit: 429, or 403 with
/// `Retry-After`, no remaining requests, or a rate-limit message.
pub(crate) fn is_rate_limited(answer: &Answer) -> bool {
    answer.status == StatusCode::TOO_MANY_REQUESTS
        || (answer.status == StatusCode::FORBIDDEN
            && (answer.headers.contains_key(http::header::RETRY_AFTER)
                || header_str(&answer.headers, "x-ratelimit-remaining") == Some("0")
                || answer.body.to_ascii_lowercase().contains("rate limit")))
}

/// Maps a non-success answer to a report error.
pub fn classify(what: &str, answer: &Answer) -> ReportError {
    if is_rate_limited(answer) {
        return ReportError::Transient {
            message: format!("{what}: rate limited (http {})", answer.status.as_u16()),
            retry_after: retry_after(&answer.headers),
        };
    }
    // reqwest re-exports the `http` crate's types.
    bosun_http::status_error(what, answer.status, &answer.headers, &answer.body)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .map(str::trim)
}

/// The delay GitHub asks for: `Retry-After`, else the reset time when no requests remain.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(secs) = header_str(headers, "retry-after").and_then(|v| v.parse::<u64>().ok()) {
        return Some(Duration::from_secs(secs));
    }
    exhausted_for(headers)
}

/// How long until the rate-limit window resets, when `X-RateLimit-Remaining` is 0.
fn exhausted_for(headers: &HeaderMap) -> Option<Duration> {
    if header_str(headers, "x-ratelimit-remaining")? != "0" {
        return None;
    }
    let reset: u64 = header_str(headers, "x-ratelimit-reset")?.parse().ok()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(reset.saturating_sub(now).max(1)))
}
