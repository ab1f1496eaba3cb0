//! Building reporters from configuration: Prow's `config.yaml` (global Slack configs, plank's
//! job URL prefixes) plus bosun-only [`ReporterSettings`] (secrets by file, base URLs).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bosun_gateway_config::ProwConfig;
use bosun_gateway_store::JobStore;
use serde::{Deserialize, Serialize};

use bosun_proto::duration::MetaDuration;
use bosun_proto::secret::SecretFileError;

use crate::Reporter;
use crate::crier::{CrierOptions, ReporterOptions};
use crate::gerrit::{GerritAuth, GerritReporter};
use crate::pubsub::{PubSubReporter, PubSubTarget, TokenSource};
use crate::slack::{DEFAULT_SLACK_BASE_URL, SlackReporter, SlackTransport, StoreFailureHistory};

pub use bosun_proto::secret::Secret;

/// bosun-only reporter settings (meant for the `bosun:` key of `config.yaml`). A reporter is
/// enabled by its section being present.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReporterSettings {
    /// The Slack reporter.
    pub slack: Option<SlackSettings>,
    /// The Pub/Sub reporter.
    pub pubsub: Option<PubSubSettings>,
    /// The GitHub reporter.
    pub github: Option<GitHubSettings>,
    /// The Gerrit reporter (needs the job store).
    pub gerrit: Option<GerritSettings>,
    /// Tuning of the fan-out, for every reporter.
    pub crier: CrierSettings,
}

/// `crier:`: workers, rate limit and retry schedule of every reporter (unset fields keep their
/// defaults), with `per_reporter` overrides by reporter name (`github-reporter`,
/// `gerrit-reporter`, `slackreporter`, `pubsub-reporter`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrierSettings {
    /// Settings for every reporter.
    #[serde(flatten)]
    pub all: CrierReporterSettings,
    /// Overrides by reporter name.
    pub per_reporter: BTreeMap<String, CrierReporterSettings>,
}

/// The tunables of one reporter's fan-out; see [`crate::ReporterOptions`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrierReporterSettings {
    /// Concurrent reports (Prow's `--github-workers` and friends).
    pub workers: Option<usize>,
    /// Sustained reports per second.
    pub rate_per_second: Option<f64>,
    /// Token bucket size.
    pub burst: Option<u32>,
    /// First retry delay, a Go duration (`100ms`).
    pub backoff_base: Option<MetaDuration>,
    /// Largest retry delay, a Go duration (`5m`).
    pub backoff_max: Option<MetaDuration>,
}

impl CrierReporterSettings {
    fn apply(&self, options: &mut ReporterOptions) {
        if let Some(workers) = self.workers {
            options.workers = workers.max(1);
        }
        if let Some(rate) = self.rate_per_second {
            options.rate_per_second = (rate > 0.0).then_some(rate);
        }
        if let Some(burst) = self.burst {
            options.burst = burst.max(1);
        }
        if let Some(base) = self.backoff_base {
            options.backoff_base = base.get();
        }
        if let Some(max) = self.backoff_max {
            options.backoff_max = max.get();
        }
    }
}

impl CrierSettings {
    /// The crier options these settings describe.
    pub fn options(&self) -> CrierOptions {
        let mut default = ReporterOptions::default();
        self.all.apply(&mut default);
        let per_reporter = self
            .per_reporter
            .iter()
            .map(|(name, settings)| {
                let mut options = default.clone();
                settings.apply(&mut options);
                (name.clone(), options)
            })
            .collect();
        CrierOptions {
            default,
            per_reporter,
        }
    }
}

/// `gerrit:`. Without credentials requests are anonymous; with them paths get `/a/`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GerritSettings {
    /// HTTP basic auth user (with `password_file`).
    pub user: Option<String>,
    /// A file holding the HTTP password.
    pub password_file: Option<PathBuf>,
    /// Prow's `--cookiefile`: the last whitespace-separated field is sent as cookie `o=`.
    pub cookie_file: Option<PathBuf>,
    /// Base URL per `prow.k8s.io/gerrit-instance` value (default: the value itself).
    pub instance_urls: BTreeMap<String, String>,
}

impl GerritSettings {
    /// The credentials these settings name (secrets read from their files): basic auth with
    /// `user` + `password_file`, Prow's cookie (the last whitespace-separated field of
    /// `cookie_file`), or anonymous. Used by the reporter and by the adapter that polls Gerrit.
    pub fn auth(&self) -> Result<GerritAuth, ReportersConfigError> {
        match (&self.user, &self.password_file, &self.cookie_file) {
            (Some(user), Some(path), None) => Ok(GerritAuth::Basic {
                user: user.clone(),
                password: Secret::from_file("gerrit password", path)?,
            }),
            (None, None, Some(path)) => {
                let cookie = Secret::from_file("gerrit cookie", path)?;
                let token = cookie
                    .expose()
                    .split_whitespace()
                    .last()
                    .unwrap_or_default()
                    .to_owned();
                Ok(GerritAuth::Cookie(Secret::new(token)))
            }
            (None, None, None) => Ok(GerritAuth::None),
            _ => Err(ReportersConfigError::Invalid(
                "gerrit takes user with password_file, or cookie_file".to_owned(),
            )),
        }
    }
}

/// `slack:`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackSettings {
    /// The bot token file for the default host (`*`), like Prow's `--slack-token-file`.
    pub token_file: Option<PathBuf>,
    /// Token files of other hosts, like `--additional-slack-token-files host=path`.
    pub additional_token_files: BTreeMap<String, PathBuf>,
    /// A file holding an incoming-webhook URL; used instead of the Web API when set.
    pub webhook_url_file: Option<PathBuf>,
    /// The Web API base URL (default `https://slack.com`).
    pub base_url: Option<String>,
    /// Alert on a periodic's failure only from its Nth failure in a row (0, 1: always).
    pub min_consecutive_failures: u32,
}

/// `pubsub:`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PubSubSettings {
    /// The emulator `host:port`; `PUBSUB_EMULATOR_HOST` wins when set.
    pub emulator_host: Option<String>,
    /// The API base URL (default `https://pubsub.googleapis.com`).
    pub base_url: Option<String>,
    /// A file holding an OAuth access token, read on every publish.
    pub token_file: Option<PathBuf>,
}

/// `github:`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GitHubSettings {
    /// The token file (or use `app_id` with `app_private_key_file`).
    pub token_file: Option<PathBuf>,
    /// A GitHub App's id, to authenticate as the app's installations.
    pub app_id: Option<u64>,
    /// The GitHub App's private key (PEM) file.
    pub app_private_key_file: Option<PathBuf>,
    /// The API base URL (default `https://api.github.com`).
    pub base_url: Option<String>,
    /// Report only jobs of this agent (Prow's `--report-agent`).
    pub report_agent: Option<String>,
}

impl ReporterSettings {
    /// The settings under `bosun.reporters` of `config.yaml` (defaults when absent).
    pub fn from_bosun(
        bosun: &bosun_gateway_config::BosunSettings,
    ) -> Result<Self, ReportersConfigError> {
        match &bosun.reporters {
            None => Ok(ReporterSettings::default()),
            Some(value) => serde_json::from_value(value.clone())
                .map_err(|e| ReportersConfigError::Invalid(format!("bosun.reporters: {e}"))),
        }
    }
}

/// Why reporters could not be built. Messages name files, never their contents.
#[derive(Debug, thiserror::Error)]
pub enum ReportersConfigError {
    /// A secret file could not be read or is empty.
    #[error(transparent)]
    Secret(#[from] SecretFileError),
    /// The settings are inconsistent.
    #[error("invalid reporter settings: {0}")]
    Invalid(String),
}

/// The reporters enabled by `settings`, configured from `prow`. Refuses Gerrit and
/// `slack.min_consecutive_failures` > 1, which need the job store: use
/// [`reporters_from_config_with_store`].
pub fn reporters_from_config(
    prow: &ProwConfig,
    settings: &ReporterSettings,
) -> Result<Vec<Arc<dyn Reporter>>, ReportersConfigError> {
    reporters_from_config_with_store(prow, settings, None)
}

/// [`reporters_from_config`], with the job store the Slack failure-streak option reads.
pub fn reporters_from_config_with_store(
    prow: &ProwConfig,
    settings: &ReporterSettings,
    store: Option<Arc<dyn JobStore>>,
) -> Result<Vec<Arc<dyn Reporter>>, ReportersConfigError> {
    let mut reporters: Vec<Arc<dyn Reporter>> = Vec::new();
    if let Some(github) = &settings.github {
        reporters.push(Arc::new(crate::github::GitHubReporter::from_settings(
            github,
            prow,
            store.clone(),
        )?));
    }
    if let Some(gerrit) = &settings.gerrit {
        let Some(store) = store.clone() else {
            return Err(ReportersConfigError::Invalid(
                "gerrit needs the job store".to_owned(),
            ));
        };
        let auth = gerrit.auth()?;
        reporters.push(Arc::new(GerritReporter::new(
            auth,
            gerrit.instance_urls.clone(),
            store,
        )));
    }
    if let Some(slack) = &settings.slack {
        let transport = match &slack.webhook_url_file {
            Some(path) => SlackTransport::Webhook {
                url: Secret::from_file("slack webhook url", path)?,
            },
            None => {
                let mut tokens = BTreeMap::new();
                if let Some(path) = &slack.token_file {
                    tokens.insert("*".to_owned(), Secret::from_file("slack token", path)?);
                }
                for (host, path) in &slack.additional_token_files {
                    tokens.insert(host.clone(), Secret::from_file("slack token", path)?);
                }
                if tokens.is_empty() {
                    return Err(ReportersConfigError::Invalid(
                        "slack needs token_file, additional_token_files or webhook_url_file"
                            .to_owned(),
                    ));
                }
                SlackTransport::WebApi {
                    base_url: slack
                        .base_url
                        .clone()
                        .unwrap_or_else(|| DEFAULT_SLACK_BASE_URL.to_owned()),
                    tokens,
                }
            }
        };
        let mut reporter = SlackReporter::new(transport, prow.slack_reporter_configs.clone());
        if slack.min_consecutive_failures > 1 {
            let Some(store) = store.clone() else {
                return Err(ReportersConfigError::Invalid(
                    "slack min_consecutive_failures needs the job store".to_owned(),
                ));
            };
            reporter = reporter.with_min_consecutive_failures(
                slack.min_consecutive_failures,
                Arc::new(StoreFailureHistory::new(store)),
            );
        }
        reporters.push(Arc::new(reporter));
    }
    if let Some(pubsub) = &settings.pubsub {
        let token = match &pubsub.token_file {
            Some(path) => TokenSource::File(path.clone()),
            None => TokenSource::None,
        };
        let mut target = PubSubTarget::from_env(pubsub.base_url.clone(), token);
        if let (PubSubTarget::Api { .. }, Some(host)) = (&target, &pubsub.emulator_host) {
            target = PubSubTarget::Emulator(host.clone());
        }
        reporters.push(Arc::new(PubSubReporter::new(target, prow.plank.clone())));
    }
    Ok(reporters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let s = Secret::new("xoxb-123");
        assert_eq!(format!("{s:?} {s}"), "<redacted> <redacted>");
    }

    #[test]
    fn builds_reporters_from_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        let slack_token = dir.path().join("slack");
        let gh_token = dir.path().join("gh");
        std::fs::write(&slack_token, "xoxb-secret\n").expect("write");
        std::fs::write(&gh_token, "ghp-secret\n").expect("write");
        let prow: ProwConfig = serde_json::from_value(serde_json::json!({
            "bosun": {"reporters": {
                "slack": {"token_file": slack_token, "base_url": "http://127.0.0.1:1"},
                "pubsub": {"emulator_host": "127.0.0.1:2"},
                "github": {"token_file": gh_token}
            }}
        }))
        .expect("config");
        let settings = ReporterSettings::from_bosun(&prow.bosun).expect("settings");
        let reporters = reporters_from_config(&prow, &settings).expect("reporters");
        let names: Vec<&str> = reporters.iter().map(|r| r.name()).collect();
        assert_eq!(
            names,
            ["github-reporter", "slackreporter", "pubsub-reporter"]
        );

        // Nothing configured: no reporters.
        let none = reporters_from_config(&ProwConfig::default(), &ReporterSettings::default())
            .expect("reporters");
        assert!(none.is_empty());

        // Errors name the file, never a secret.
        let mut broken = settings.clone();
        if let Some(slack) = broken.slack.as_mut() {
            slack
                .additional_token_files
                .insert("other".to_owned(), dir.path().join("missing"));
        }
        let err = reporters_from_config(&prow, &broken)
            .err()
            .expect("missing token file");
        assert!(err.to_string().contains("missing"), "{err}");
        assert!(!format!("{err:?}").contains("xoxb-secret"));

        let mut streak = settings;
        if let Some(slack) = streak.slack.as_mut() {
            slack.min_consecutive_failures = 3;
        }
        assert!(matches!(
            reporters_from_config(&prow, &streak),
            Err(ReportersConfigError::Invalid(_))
        ));

        let typo: ProwConfig =
            serde_json::from_value(serde_json::json!({"bosun": {"reporters": {"slak": {}}}}))
                .expect("config");
        assert!(ReporterSettings::from_bosun(&typo.bosun).is_err());
    }

    #[test]
    fn settings_reject_unknown_fields() {
        let err = serde_json::from_str::<ReporterSettings>(r#"{"slack":{"tokenfile":"x"}}"#);
        assert!(err.is_err());
        let ok: ReporterSettings =
            serde_json::from_str(r#"{"slack":{"token_file":"x"},"pubsub":{}}"#).expect("parse");
        assert!(ok.slack.is_some() && ok.pubsub.is_some() && ok.github.is_none());
    }

    #[test]
    fn crier_settings_tune_every_reporter_and_override_one() {
        let settings: ReporterSettings = serde_json::from_str(
            r#"{"crier":{"workers":2,"backoff_max":"2s","per_reporter":{"github-reporter":{"workers":8,"rate_per_second":0}}}}"#,
        )
        .expect("parse");
        let options = settings.crier.options();
        assert_eq!(options.default.workers, 2);
        assert_eq!(
            options.default.backoff_max,
            std::time::Duration::from_secs(2)
        );
        assert_eq!(options.default.rate_per_second, Some(10.0));
        let github = &options.per_reporter["github-reporter"];
        assert_eq!(github.workers, 8);
        assert_eq!(github.rate_per_second, None, "0 means unlimited");
        assert_eq!(github.backoff_max, std::time::Duration::from_secs(2));
        let err = serde_json::from_str::<ReporterSettings>(r#"{"crier":{"backoff_max":"soon"}}"#)
            .expect_err("bad duration");
        assert!(
            err.to_string().contains("soon") || err.to_string().contains("duration"),
            "{err}"
        );
    }
}
