//! The jenkins agent's settings: `bosun.jenkins` in `config.yaml` (bosun-only; Prow passes the
//! same things to its jenkins-operator as flags).
//!
//! ```yaml
//! bosun:
//!   jenkins:
//!     url: https://jenkins.example.com     # Prow's --jenkins-url
//!     user: prow-bot                       # --jenkins-user, with token_file (an API token)
//!     token_file: /etc/jenkins/token       # or bearer_token_file: (--jenkins-bearer-token-file)
//!     csrf_protect: true                   # --csrf-protect
//!     poll_interval: 2s                    # how often a build is looked at (default 2s)
//!     request_timeout: 30s                 # one request (default 30s, as Prow)
//! ```

use std::path::PathBuf;
use std::time::Duration;

use bosun_proto::duration::MetaDuration;
use bosun_proto::secret::SecretFileError;
use serde::{Deserialize, Serialize};

use super::client::{JenkinsAuth, Secret};

/// Default time between two looks at a queue item or a build.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// `bosun.jenkins`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JenkinsSettings {
    /// The Jenkins base URL.
    pub url: String,
    /// The user for HTTP basic auth (with `token_file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// A file holding the user's API token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// A file holding a bearer token (instead of `user` + `token_file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<PathBuf>,
    /// Send a CSRF crumb with every POST.
    #[serde(default)]
    pub csrf_protect: bool,
    /// Time between two looks at a queued item or a running build (a Go duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval: Option<MetaDuration>,
    /// Timeout of one request (a Go duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<MetaDuration>,
}

/// Why the jenkins settings are unusable. Messages name files, never their contents.
#[derive(Debug, thiserror::Error)]
pub enum JenkinsConfigError {
    /// The section does not parse or is inconsistent.
    #[error("bosun.jenkins: {0}")]
    Invalid(String),
    /// A secret file could not be read or is empty.
    #[error(transparent)]
    Secret(#[from] SecretFileError),
}

impl JenkinsSettings {
    /// Parses and checks the `bosun.jenkins` value as written (`None` when absent). Does no IO:
    /// `check-config` uses it as it is.
    pub fn from_bosun_value(
        value: Option<&serde_json::Value>,
    ) -> Result<Option<Self>, JenkinsConfigError> {
        let Some(value) = value else {
            return Ok(None);
        };
        let settings: JenkinsSettings = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            JenkinsConfigError::Invalid(if path == "." {
                inner.to_string()
            } else {
                format!("{path}: {inner}")
            })
        })?;
        settings.validate()?;
        Ok(Some(settings))
    }

    /// The consistency rules: an http(s) `url`; `token_file` goes with `user`; at most one of
    /// `token_file` and `bearer_token_file`; a poll interval above zero.
    pub fn validate(&self) -> Result<(), JenkinsConfigError> {
        let invalid = |m: &str| Err(JenkinsConfigError::Invalid(m.to_owned()));
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return invalid("url must be an http:// or https:// URL");
        }
        match (&self.user, &self.token_file, &self.bearer_token_file) {
            (_, Some(_), Some(_)) => {
                return invalid("token_file and bearer_token_file exclude each other");
            }
            (None, Some(_), None) => return invalid("token_file needs user"),
            (Some(_), None, _) => return invalid("user needs token_file"),
            _ => {}
        }
        if self.poll_interval.is_some_and(|d| d.get().is_zero()) {
            return invalid("poll_interval must be above zero");
        }
        Ok(())
    }

    /// How requests authenticate, reading the token files.
    pub fn auth(&self) -> Result<JenkinsAuth, JenkinsConfigError> {
        match (&self.user, &self.token_file, &self.bearer_token_file) {
            (Some(user), Some(path), None) => Ok(JenkinsAuth::Basic {
                user: user.clone(),
                token: Secret::from_file("the bosun.jenkins API token", path)?,
            }),
            (None, None, Some(path)) => Ok(JenkinsAuth::Bearer(Secret::from_file(
                "the bosun.jenkins bearer token",
                path,
            )?)),
            _ => Ok(JenkinsAuth::None),
        }
    }

    /// The poll interval.
    pub fn poll_interval(&self) -> Duration {
        self.poll_interval
            .map(|d| d.get())
            .unwrap_or(DEFAULT_POLL_INTERVAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_are_checked() {
        let ok = JenkinsSettings::from_bosun_value(Some(&json!({
            "url": "http://127.0.0.1:8080", "user": "bot", "token_file": "/t", "poll_interval": "250ms"
        })))
        .expect("valid")
        .expect("present");
        assert_eq!(ok.poll_interval(), Duration::from_millis(250));
        assert!(
            JenkinsSettings::from_bosun_value(None)
                .expect("absent")
                .is_none()
        );
        for (bad, says) in [
            (json!({"url": "ftp://x"}), "url"),
            (json!({"url": "http://x", "token_file": "/t"}), "needs user"),
            (
                json!({"url": "http://x", "user": "u", "token_file": "/t", "bearer_token_file": "/b"}),
                "exclude",
            ),
            (json!({"url": "http://x", "tokenfile": "/t"}), "tokenfile"),
        ] {
            let err = JenkinsSettings::from_bosun_value(Some(&bad)).expect_err("invalid");
            assert!(err.to_string().contains(says), "{err}");
        }
    }

    #[test]
    fn secrets_are_read_from_files_and_not_shown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cr3t\n").expect("write");
        let settings = JenkinsSettings {
            url: "http://x".into(),
            user: Some("bot".into()),
            token_file: Some(path),
            ..Default::default()
        };
        let auth = settings.auth().expect("auth");
        assert!(matches!(&auth, JenkinsAuth::Basic { token, .. } if token.expose() == "s3cr3t"));
        assert!(!format!("{auth:?}").contains("s3cr3t"));
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").expect("write");
        let err = JenkinsSettings {
            bearer_token_file: Some(empty),
            url: "http://x".into(),
            ..Default::default()
        }
        .auth()
        .expect_err("empty");
        assert!(err.to_string().contains("empty"), "{err}");
    }
}
