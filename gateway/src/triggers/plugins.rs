//! Prow's `plugins.yaml`, as far as the trigger reads it (reference
//! `prow-reporters-triggers.md` §3.3, §4.1): which repositories have the `trigger` plugin and
//! the `triggers:` settings. Other plugins and keys are accepted and ignored (bosun implements
//! only `trigger`); inside a `triggers:` entry unknown keys are errors, so typos are caught.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// Why the plugin configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum PluginConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed or has an unknown key where keys are known.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What and where.
        message: String,
    },
}

/// The plugins enabled for an org or repo: Prow's list form or its map form.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OrgPlugins {
    List(Vec<String>),
    Map {
        #[serde(default)]
        plugins: Vec<String>,
        #[serde(default)]
        excluded_repos: Vec<String>,
    },
}

/// One `triggers:` entry.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TriggerSettings {
    /// `org` or `org/repo` entries this applies to.
    pub repos: Vec<String>,
    /// GitHub Apps whose `<name>[bot]` users are trusted.
    pub trusted_apps: Vec<String>,
    /// Members of this org are trusted too (deprecated in Prow, still honoured).
    pub trusted_org: String,
    /// Where contributors can ask to join the org (used in the welcome message).
    pub join_org_url: String,
    /// Collaborators are not trusted, only org members.
    pub only_org_members: bool,
    /// `/ok-to-test` is not honoured.
    pub ignore_ok_to_test: bool,
    /// Accepted for compatibility; bosun does not drive GitHub Actions.
    pub trigger_github_workflows: bool,
    /// Accepted for compatibility.
    pub org_invite: Option<serde_yaml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawPlugins {
    plugins: BTreeMap<String, OrgPlugins>,
    triggers: Vec<TriggerSettings>,
}

/// The plugin configuration in force.
#[derive(Debug, Clone, Default)]
pub struct PluginConfig {
    /// `None`: no plugins.yaml was given, so the trigger runs for every repository.
    enabled: Option<BTreeMap<String, OrgPlugins>>,
    triggers: Vec<TriggerSettings>,
}

impl PluginConfig {
    /// No plugins.yaml: trigger everywhere with default settings.
    pub fn everywhere() -> Self {
        Self::default()
    }

    /// Parses plugins.yaml text (`path` only names it in errors).
    pub fn parse(path: &str, text: &str) -> Result<Self, PluginConfigError> {
        let raw: RawPlugins = if text.trim().is_empty() {
            RawPlugins::default()
        } else {
            serde_yaml::from_str(text).map_err(|e| PluginConfigError::Parse {
                path: path.to_owned(),
                message: e.to_string(),
            })?
        };
        Ok(Self {
            enabled: Some(raw.plugins),
            triggers: raw.triggers,
        })
    }

    /// Reads and parses a plugins.yaml file.
    pub fn load(path: &Path) -> Result<Self, PluginConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| PluginConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// Whether `plugin` is enabled for `org/repo`: listed for the org (unless the repo is in
    /// its `excluded_repos`) or for the repo.
    pub fn enabled(&self, plugin: &str, org: &str, repo: &str) -> bool {
        let Some(enabled) = &self.enabled else {
            return true;
        };
        let lists = |entry: Option<&OrgPlugins>, for_org: bool| match entry {
            Some(OrgPlugins::List(p)) => p.iter().any(|x| x == plugin),
            Some(OrgPlugins::Map {
                plugins,
                excluded_repos,
            }) => {
                plugins.iter().any(|x| x == plugin)
                    && !(for_org && excluded_repos.iter().any(|r| r == repo))
            }
            None => false,
        };
        lists(enabled.get(org), true) || lists(enabled.get(&format!("{org}/{repo}")), false)
    }

    /// The `triggers:` entry for `org/repo`: the first listing the repo, else the first
    /// listing the org, else defaults.
    pub fn trigger_for(&self, org: &str, repo: &str) -> TriggerSettings {
        let full = format!("{org}/{repo}");
        self.triggers
            .iter()
            .find(|t| t.repos.contains(&full))
            .or_else(|| {
                self.triggers
                    .iter()
                    .find(|t| t.repos.iter().any(|r| r == org))
            })
            .cloned()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLUGINS: &str = r#"
plugins:
  acme:
    plugins: [trigger, lgtm]
    excluded_repos: [legacy]
  other/one:
  - trigger
  third: [hold]
triggers:
- repos: [acme/widget]
  only_org_members: true
- repos: [acme]
  trusted_apps: [dependabot]
  join_org_url: https://example.com/join
approve:
- repos: [acme]
"#;

    #[test]
    fn trigger_is_enabled_by_org_or_repo_minus_excluded_repos() {
        let c = PluginConfig::parse("plugins.yaml", PLUGINS).expect("parses");
        assert!(c.enabled("trigger", "acme", "widget"));
        assert!(!c.enabled("trigger", "acme", "legacy"));
        assert!(c.enabled("trigger", "other", "one"));
        assert!(!c.enabled("trigger", "other", "two"));
        assert!(!c.enabled("trigger", "third", "x"));
        assert!(PluginConfig::everywhere().enabled("trigger", "any", "repo"));
    }

    #[test]
    fn trigger_settings_prefer_the_repo_entry_then_the_org_entry() {
        let c = PluginConfig::parse("plugins.yaml", PLUGINS).expect("parses");
        assert!(c.trigger_for("acme", "widget").only_org_members);
        assert!(c.trigger_for("acme", "widget").trusted_apps.is_empty());
        assert_eq!(c.trigger_for("acme", "gadget").trusted_apps, ["dependabot"]);
        assert_eq!(c.trigger_for("zzz", "x"), TriggerSettings::default());
    }

    #[test]
    fn unknown_trigger_keys_are_errors_that_name_them() {
        let err = PluginConfig::parse(
            "plugins.yaml",
            "triggers:\n- repos: [a]\n  only_org_member: true\n",
        )
        .expect_err("typo refused");
        let text = err.to_string();
        assert!(
            text.contains("plugins.yaml") && text.contains("only_org_member"),
            "{text}"
        );
    }
}
