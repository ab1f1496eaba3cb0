//! `gerrit:` in `config.yaml`: the Gerrit adapter's settings (reference
//! `prow-reporters-triggers.md` §6.1), with Prow's key names. Unknown keys are errors (the
//! loader reports them as `gerrit.<key>: unknown field`), and [`validate`] names the field of
//! every other problem.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use bosun_proto::duration::MetaDuration;
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::Problem;
use crate::goish::{nullable, parse_url};

fn is_false(b: &bool) -> bool {
    !*b
}

/// Default `tick_interval`.
pub const DEFAULT_TICK_INTERVAL: Duration = Duration::from_secs(60);
/// Default `ratelimit` (changes per query page).
pub const DEFAULT_RATE_LIMIT: i64 = 5;

/// `gerrit`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Gerrit {
    /// How often every project is polled (default 1m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tick_interval: Option<MetaDuration>,
    /// Changes per query page (default 5).
    #[serde(default, deserialize_with = "nullable")]
    pub ratelimit: i64,
    /// Deck's root URL: the "Triggered N prow jobs" message links to the change's runs there.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub deck_url: String,
    /// Only messages matching this regex (besides `/retest` and `/test all`) make the adapter
    /// look at a change again; empty matches every message.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub allowed_presubmit_trigger_re: String,
    /// The instances and projects to poll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_repos_config: Option<Vec<GerritOrgRepoConfig>>,
}

/// One `gerrit.org_repos_config` entry: a Gerrit instance and some of its projects.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct GerritOrgRepoConfig {
    /// The instance URL, with its `https://` (or `http://`) prefix.
    #[serde(default, deserialize_with = "nullable")]
    pub org: String,
    /// Projects (Gerrit's name for repositories) to poll.
    #[serde(default, deserialize_with = "nullable")]
    pub repos: Vec<String>,
    /// No help replies (`/test ?`, unknown `/test x`) on these projects' changes.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub opt_out_help: bool,
    /// Narrows the query by branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<GerritQueryFilter>,
}

/// `filters` of an `org_repos_config` entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct GerritQueryFilter {
    /// Only changes on these branches.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub branches: Vec<String>,
    /// No changes on these branches.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub excluded_branches: Vec<String>,
    /// Tide's setting; accepted, not used by the adapter.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub opt_in_by_default: bool,
}

/// One project to poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GerritProject<'a> {
    /// The instance URL, without a trailing `/`.
    pub instance: String,
    /// The project.
    pub project: &'a str,
    /// Branch filters of its entry.
    pub filters: Option<&'a GerritQueryFilter>,
    /// Whether help replies are off.
    pub opt_out_help: bool,
}

/// An instance URL without its trailing slashes.
pub fn normalize_instance(org: &str) -> String {
    org.trim_end_matches('/').to_owned()
}

impl Gerrit {
    /// `tick_interval`, 1m when unset.
    pub fn tick_interval(&self) -> Duration {
        self.tick_interval
            .map_or(DEFAULT_TICK_INTERVAL, MetaDuration::get)
    }

    /// `ratelimit`, 5 when unset.
    pub fn rate_limit(&self) -> usize {
        usize::try_from(self.ratelimit)
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_RATE_LIMIT as usize)
    }

    /// Whether the adapter has anything to poll.
    pub fn enabled(&self) -> bool {
        self.org_repos_config
            .as_ref()
            .is_some_and(|c| c.iter().any(|e| !e.repos.is_empty()))
    }

    /// Every (instance, project) to poll, each once (the first entry naming a project wins;
    /// `opt_out_help` from any entry naming it counts, as Prow's `OptOutHelpRepos` unions them).
    pub fn projects(&self) -> Vec<GerritProject<'_>> {
        let entries = self.org_repos_config.as_deref().unwrap_or_default();
        let mut opted_out = BTreeSet::new();
        for e in entries.iter().filter(|e| e.opt_out_help) {
            for r in &e.repos {
                opted_out.insert((normalize_instance(&e.org), r.as_str()));
            }
        }
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for e in entries {
            let instance = normalize_instance(&e.org);
            for r in &e.repos {
                if !seen.insert((instance.clone(), r.as_str())) {
                    continue;
                }
                out.push(GerritProject {
                    opt_out_help: opted_out.contains(&(instance.clone(), r.as_str())),
                    instance: instance.clone(),
                    project: r,
                    filters: e.filters.as_ref(),
                });
            }
        }
        out
    }

    /// Instances and their projects (`AllRepos`).
    pub fn all_repos(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for p in self.projects() {
            out.entry(p.instance)
                .or_default()
                .insert(p.project.to_owned());
        }
        out
    }

    /// `IsAllowedPresubmitTrigger`: an empty regex allows every message; one that does not
    /// compile (refused by validation) allows none.
    pub fn is_allowed_presubmit_trigger(&self, message: &str) -> bool {
        if self.allowed_presubmit_trigger_re.is_empty() {
            return true;
        }
        Regex::new(&self.allowed_presubmit_trigger_re).is_ok_and(|re| re.is_match(message))
    }
}

/// Prow's `Gerrit` defaulting and validation, plus the checks the adapter needs (instance
/// URLs with a scheme, non-empty project and branch names, a positive tick). Every problem
/// names its field.
pub(crate) fn validate(gerrit: &mut Gerrit, file: &Path, problems: &mut Vec<Problem>) {
    let mut err = |field: String, msg: String| problems.push(Problem::field(file, field, msg));
    if !gerrit.allowed_presubmit_trigger_re.is_empty()
        && let Err(e) = Regex::new(&gerrit.allowed_presubmit_trigger_re)
    {
        err(
            "gerrit.allowed_presubmit_trigger_re".to_owned(),
            format!("failed to compile regex for allowed presubmit triggers: {e}"),
        );
    }
    if !gerrit.deck_url.is_empty()
        && let Err(e) = parse_url(&gerrit.deck_url)
    {
        err(
            "gerrit.deck_url".to_owned(),
            format!("invalid value for gerrit.deck_url: {e}"),
        );
    }
    match gerrit.tick_interval {
        None => gerrit.tick_interval = Some(MetaDuration(DEFAULT_TICK_INTERVAL)),
        Some(d) if d.get().is_zero() => err(
            "gerrit.tick_interval".to_owned(),
            "must be a positive duration".to_owned(),
        ),
        Some(_) => {}
    }
    if gerrit.ratelimit < 0 {
        err(
            "gerrit.ratelimit".to_owned(),
            format!("must not be negative, got {}", gerrit.ratelimit),
        );
    } else if gerrit.ratelimit == 0 {
        gerrit.ratelimit = DEFAULT_RATE_LIMIT;
    }
    for (i, entry) in gerrit.org_repos_config.iter().flatten().enumerate() {
        let field = |f: &str| format!("gerrit.org_repos_config[{i}].{f}");
        if entry.org.is_empty() {
            err(field("org"), "required: the Gerrit instance URL".to_owned());
        } else if !(entry.org.starts_with("https://") || entry.org.starts_with("http://")) {
            err(
                field("org"),
                format!("{:?} must keep its https:// (or http://) prefix", entry.org),
            );
        } else if let Err(e) = parse_url(&entry.org) {
            err(field("org"), format!("invalid URL: {e}"));
        }
        for (j, repo) in entry.repos.iter().enumerate() {
            if repo.trim().is_empty() || repo.trim() != repo {
                err(
                    field(&format!("repos[{j}]")),
                    format!("{repo:?} is not a project name"),
                );
            }
        }
        if let Some(filters) = &entry.filters {
            for (name, list) in [
                ("branches", &filters.branches),
                ("excluded_branches", &filters.excluded_branches),
            ] {
                for (j, b) in list.iter().enumerate() {
                    if b.is_empty() || b.contains(char::is_whitespace) {
                        err(
                            field(&format!("filters.{name}[{j}]")),
                            format!("{b:?} is not a branch name"),
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Result<crate::LoadedConfig, crate::ConfigErrors> {
        crate::load_from_memory((Path::new("config.yaml"), yaml), &[])
    }

    #[test]
    fn defaults_and_projects() {
        let cfg = load(
            "gerrit:\n  org_repos_config:\n  - org: https://review.example.com/\n    repos: [a, b]\n    filters: {branches: [main]}\n  - org: https://review.example.com\n    repos: [b, c]\n    opt_out_help: true\n",
        )
        .expect("loads");
        let g = cfg.prow().gerrit.as_ref().expect("gerrit");
        assert_eq!(g.tick_interval(), Duration::from_secs(60));
        assert_eq!(g.rate_limit(), 5);
        assert!(g.enabled());
        let projects = g.projects();
        let names: Vec<(&str, &str, bool, bool)> = projects
            .iter()
            .map(|p| {
                (
                    p.instance.as_str(),
                    p.project,
                    p.filters.is_some(),
                    p.opt_out_help,
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("https://review.example.com", "a", true, false),
                ("https://review.example.com", "b", true, true),
                ("https://review.example.com", "c", false, true),
            ]
        );
        assert!(g.is_allowed_presubmit_trigger("anything"));
    }

    #[test]
    fn problems_name_their_field() {
        let cases = [
            (
                "gerrit:\n  tick_interval: soon\n",
                "config.yaml:2:18: gerrit.tick_interval:",
            ),
            (
                "gerrit:\n  tick_interval: 0s\n",
                "gerrit.tick_interval: must be a positive duration",
            ),
            (
                "gerrit:\n  ratelimit: -1\n",
                "gerrit.ratelimit: must not be negative",
            ),
            (
                "gerrit:\n  org_repos_config:\n  - org: review.example.com\n    repos: [a]\n",
                "gerrit.org_repos_config[0].org: \"review.example.com\" must keep its https://",
            ),
            (
                "gerrit:\n  org_repos_config:\n  - org: https://r\n    repos: ['']\n",
                "gerrit.org_repos_config[0].repos[0]:",
            ),
            (
                "gerrit:\n  org_repos_config:\n  - org: https://r\n    repos: [a]\n    filters: {branches: ['']}\n",
                "gerrit.org_repos_config[0].filters.branches[0]:",
            ),
            (
                "gerrit:\n  org_repos_config:\n  - org: https://r\n    repo: [a]\n",
                "gerrit.org_repos_config[0].repo: unknown field",
            ),
            (
                "gerrit:\n  tickinterval: 1s\n",
                "gerrit.tickinterval: unknown field",
            ),
            (
                "gerrit:\n  deck_url: \"http://a b/\"\n",
                "gerrit.deck_url: invalid value",
            ),
        ];
        for (yaml, want) in cases {
            let err = load(yaml).expect_err(yaml);
            assert!(err.mentions(want), "{yaml}: want {want:?} in {err}");
        }
    }

    #[test]
    fn allowed_trigger_regex() {
        let cfg = load("gerrit:\n  allowed_presubmit_trigger_re: '(?m)^/(test|retest)'\n")
            .expect("loads");
        let g = cfg.prow().gerrit.as_ref().expect("gerrit");
        assert!(g.is_allowed_presubmit_trigger("Patch Set 1:\n\n/test unit"));
        assert!(!g.is_allowed_presubmit_trigger("Patch Set 1:\n\nlgtm"));
        assert!(!g.enabled());
    }
}
