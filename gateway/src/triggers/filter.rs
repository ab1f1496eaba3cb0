//! Which presubmits a PR comment (or event) asks for: Prow's `pjutil` filters (reference
//! `prow-reporters-triggers.md` §4.5, §4.6), shared by the GitHub trigger and the Gerrit adapter.
//!
//! A [`Filter`] looks at one presubmit and answers three things, exactly as Prow's
//! `pjutil.Filter`: does it match at all, is it forced to run (an explicit `/test NAME`, which
//! skips the change filter), and what to do when the change filter cannot decide (the default).
//! [`filter_presubmits`] then applies `Presubmit::should_run` (branch gate, `always_run`,
//! `run_if_changed` / `skip_if_only_changed`) to every match.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use bosun_gateway_config::{ChangedFilesProvider, Presubmit};
use regex::Regex;

fn re(pattern: &str) -> Regex {
    #[allow(clippy::expect_used)] // constant patterns, checked by the unit tests below
    Regex::new(pattern).expect("constant regex")
}

/// `/test all`.
pub static TEST_ALL_RE: LazyLock<Regex> = LazyLock::new(|| re(r"(?m)^/test all,?($|\s.*)"));
/// `/retest`.
pub static RETEST_RE: LazyLock<Regex> = LazyLock::new(|| re(r"(?m)^/retest\s*$"));
/// `/retest-required`.
pub static RETEST_REQUIRED_RE: LazyLock<Regex> = LazyLock::new(|| re(r"(?m)^/retest-required\s*$"));
/// `/test-manual-required`.
pub static TEST_MANUAL_REQUIRED_RE: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?m)^/test-manual-required\s*$"));
/// `/ok-to-test`.
pub static OK_TO_TEST_RE: LazyLock<Regex> = LazyLock::new(|| re(r"(?m)^/ok-to-test\s*$"));
/// `/ok-to-test cancel`.
pub static OK_TO_TEST_CANCEL_RE: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?m)^/ok-to-test\s+cancel\s*$"));
/// `/test` with no target.
pub static TEST_WITHOUT_TARGET_RE: LazyLock<Regex> = LazyLock::new(|| re(r"(?m)^/test\s*$"));
/// `/test ?`.
pub static TEST_HELP_RE: LazyLock<Regex> = LazyLock::new(|| re(r"(?m)^/test[ \t]*\?\s*$"));
/// `/retest <anything>` (which takes no targets).
pub static RETEST_WITH_TARGET_RE: LazyLock<Regex> = LazyLock::new(|| re(r"(?m)^/retest[ \t]+\S+"));
/// `/test <anything>`.
pub static TEST_WITH_ANY_TARGET_RE: LazyLock<Regex> = LazyLock::new(|| re(r"(?m)^/test[ \t]+\S+"));

/// Help notes (Prow's `pjutil` wording).
pub const TEST_WITHOUT_TARGET_NOTE: &str = "The `/test` command needs one or more targets.";
/// `/retest x`.
pub const RETEST_WITH_TARGET_NOTE: &str = "The `/retest` command does not accept any targets.";
/// `/test all` selecting nothing.
pub const NO_TEST_ALL_JOBS_NOTE: &str = "No jobs can be run with `/test all`.";
/// `/test x` with an unknown x.
pub const TARGET_NOT_FOUND_NOTE: &str = "The specified target(s) for `/test` were not found.";

/// `ShouldRespondWithHelp`: the note of the help reply a message asks for, `Some("")` for a
/// plain `/test ?`, `None` when it needs none. `selected` is how many jobs the change's
/// messages selected.
pub fn should_respond_with_help(body: &str, selected: usize) -> Option<&'static str> {
    if TEST_HELP_RE.is_match(body) {
        Some("")
    } else if TEST_WITHOUT_TARGET_RE.is_match(body) {
        Some(TEST_WITHOUT_TARGET_NOTE)
    } else if RETEST_WITH_TARGET_RE.is_match(body) {
        Some(RETEST_WITH_TARGET_NOTE)
    } else if TEST_ALL_RE.is_match(body) {
        (selected == 0).then_some(NO_TEST_ALL_JOBS_NOTE)
    } else if TEST_WITH_ANY_TARGET_RE.is_match(body) {
        (selected == 0).then_some(TARGET_NOT_FOUND_NOTE)
    } else {
        None
    }
}

/// What a filter says about one presubmit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Decision {
    /// The presubmit is selected (subject to `should_run`).
    pub matches: bool,
    /// Run it whatever its change filter says (`/test NAME`).
    pub forced: bool,
    /// Run it when its change filter cannot decide.
    pub defaults: bool,
}

/// One of Prow's presubmit filters.
#[derive(Debug, Clone)]
pub enum Filter {
    /// A job whose `trigger` regex matches the comment body is forced to run.
    Command(String),
    /// `/test all`, an honoured `/ok-to-test` or a new PR: every job that does not need an
    /// explicit trigger, by its change filter.
    TestAll,
    /// `/retest`: jobs whose context failed, and jobs that run by themselves and have not
    /// reported yet.
    Retest {
        /// Contexts whose last state is failure or error.
        failed: BTreeSet<String>,
        /// Every context reported on the head commit.
        all: BTreeSet<String>,
    },
    /// `/retest-required`: [`Filter::Retest`] restricted to required (non-optional) jobs.
    RetestRequired {
        /// Contexts whose last state is failure or error.
        failed: BTreeSet<String>,
        /// Every context reported on the head commit.
        all: BTreeSet<String>,
    },
    /// `/test-manual-required`: required jobs that only run when asked.
    ManualRequired,
    /// The first of several filters that matches decides.
    Any(Vec<Filter>),
}

impl Filter {
    /// The decision for `job`.
    pub fn decide(&self, job: &Presubmit) -> Decision {
        match self {
            Filter::Command(body) => {
                let m = job.trigger_matches(body);
                Decision {
                    matches: m,
                    forced: m,
                    defaults: true,
                }
            }
            Filter::TestAll => Decision {
                matches: !job.needs_explicit_trigger(),
                forced: false,
                defaults: false,
            },
            Filter::Retest { failed, all } => retest_decision(job, failed, all),
            Filter::RetestRequired { failed, all } => {
                if job.optional {
                    Decision::default()
                } else {
                    retest_decision(job, failed, all)
                }
            }
            Filter::ManualRequired => {
                let m = !job.optional && job.needs_explicit_trigger();
                Decision {
                    matches: m,
                    forced: m,
                    defaults: false,
                }
            }
            Filter::Any(filters) => filters
                .iter()
                .map(|f| f.decide(job))
                .find(|d| d.matches)
                .unwrap_or_default(),
        }
    }
}

fn retest_decision(job: &Presubmit, failed: &BTreeSet<String>, all: &BTreeSet<String>) -> Decision {
    let has_failed = failed.contains(&job.context);
    Decision {
        matches: has_failed || (!job.needs_explicit_trigger() && !all.contains(&job.context)),
        forced: false,
        // A failed job reruns whatever its change filter says; a job that has not reported yet
        // runs only if its change filter selects it.
        defaults: has_failed,
    }
}

/// The contexts reported on the PR's head commit: `(failed, all)`. Fetched only when a comment
/// asks for `/retest` or `/retest-required`.
pub trait ContextSource {
    /// Why the contexts could not be read.
    type Error;
    /// `(failed, all)` contexts.
    fn contexts(&mut self) -> Result<(BTreeSet<String>, BTreeSet<String>), Self::Error>;
}

impl<F, E> ContextSource for F
where
    F: FnMut() -> Result<(BTreeSet<String>, BTreeSet<String>), E>,
{
    type Error = E;
    fn contexts(&mut self) -> Result<(BTreeSet<String>, BTreeSet<String>), E> {
        self()
    }
}

/// Prow's `PresubmitFilter`: the filter a comment `body` asks for. `honor_ok_to_test` is false
/// for Gerrit and when `ignore_ok_to_test` is set.
pub fn presubmit_filter<C: ContextSource>(
    honor_ok_to_test: bool,
    contexts: &mut C,
    body: &str,
) -> Result<Filter, C::Error> {
    let mut filters = vec![Filter::Command(body.to_owned())];
    let retest = RETEST_RE.is_match(body);
    let retest_required = RETEST_REQUIRED_RE.is_match(body);
    if retest || retest_required {
        let (failed, all) = contexts.contexts()?;
        if retest {
            filters.push(Filter::Retest {
                failed: failed.clone(),
                all: all.clone(),
            });
        }
        if retest_required {
            filters.push(Filter::RetestRequired { failed, all });
        }
    }
    if (honor_ok_to_test && OK_TO_TEST_RE.is_match(body)) || TEST_ALL_RE.is_match(body) {
        filters.push(Filter::TestAll);
    }
    if TEST_MANUAL_REQUIRED_RE.is_match(body) {
        filters.push(Filter::ManualRequired);
    }
    Ok(Filter::Any(filters))
}

/// Whether a comment body is one the trigger acts on at all (before any trust check).
pub fn is_relevant_comment<'a>(
    body: &str,
    presubmits: impl IntoIterator<Item = &'a Presubmit>,
) -> bool {
    [
        &*RETEST_RE,
        &*RETEST_REQUIRED_RE,
        &*TEST_MANUAL_REQUIRED_RE,
        &*OK_TO_TEST_RE,
        &*OK_TO_TEST_CANCEL_RE,
        &*TEST_ALL_RE,
        &*TEST_WITHOUT_TARGET_RE,
        &*TEST_HELP_RE,
        &*RETEST_WITH_TARGET_RE,
        &*TEST_WITH_ANY_TARGET_RE,
    ]
    .iter()
    .any(|re| re.is_match(body))
        || presubmits.into_iter().any(|p| p.trigger_matches(body))
}

/// Prow's `FilterPresubmits`: the presubmits `filter` selects that should run on `branch`
/// with the PR's `changes`, in configuration order.
pub fn filter_presubmits<'a, P: ChangedFilesProvider>(
    filter: &Filter,
    changes: &mut P,
    branch: &str,
    presubmits: impl IntoIterator<Item = &'a Presubmit>,
) -> Result<Vec<&'a Presubmit>, P::Error> {
    let mut out = Vec::new();
    for job in presubmits {
        let d = filter.decide(job);
        if !d.matches {
            continue;
        }
        if job.should_run(branch, changes, d.forced, d.defaults)? {
            out.push(job);
        }
    }
    Ok(out)
}

/// Removes fenced (```) code blocks, as Prow does before looking for commands it must not
/// take from quoted code.
pub fn strip_code_blocks(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut in_block = false;
    for line in body.split_inclusive('\n') {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if !in_block {
            out.push_str(line);
        }
    }
    out
}

/// The help text for `/test` (Prow's `pjutil.HelpMessage`): the required and optional jobs'
/// rerun commands, and how to run everything.
pub fn help_message<'a>(
    org: &str,
    repo: &str,
    branch: &str,
    note: &str,
    presubmits: impl IntoIterator<Item = &'a Presubmit>,
) -> String {
    let mut required = Vec::new();
    let mut optional = Vec::new();
    let mut auto = Vec::new();
    for p in presubmits {
        if !p.could_run(branch) {
            continue;
        }
        let cmd = p.rerun_command.clone();
        if p.optional {
            optional.push(cmd);
        } else {
            required.push(cmd);
        }
        if !p.needs_explicit_trigger() {
            auto.push(p.name.clone());
        }
    }
    let mut msg = String::new();
    if !note.is_empty() {
        msg.push_str(note);
        msg.push_str("\n\n");
    }
    if required.is_empty() && optional.is_empty() {
        msg.push_str(&format!(
            "No presubmit jobs available for {org}/{repo}@{branch}"
        ));
        return msg;
    }
    msg.push_str("The following commands are available to trigger required jobs:\n");
    msg.push_str(&command_block(&required));
    if !optional.is_empty() {
        msg.push_str("\nThe following commands are available to trigger optional jobs:\n");
        msg.push_str(&command_block(&optional));
    }
    if !auto.is_empty() {
        msg.push_str(
            "\nUse `/test all` to run the following jobs that were automatically triggered:",
        );
        for name in &auto {
            msg.push_str(&format!("\n- {name}"));
        }
        msg.push('\n');
    }
    msg
}

fn command_block(cmds: &[String]) -> String {
    let mut s = String::from("```\n");
    for c in cmds {
        s.push_str(c);
        s.push('\n');
    }
    s.push_str("```\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jobs(yaml: &str) -> Vec<Presubmit> {
        let loaded = bosun_gateway_config::load_from_memory(
            (std::path::Path::new("config.yaml"), ""),
            &[(std::path::Path::new("jobs.yaml"), yaml)],
        )
        .expect("config loads");
        loaded
            .presubmits_for("acme/widget")
            .into_iter()
            .cloned()
            .collect()
    }

    const JOBS: &str = r#"
presubmits:
  acme/widget:
  - name: unit
    always_run: true
    spec: {containers: [{image: x}]}
  - name: docs
    run_if_changed: '^docs/'
    spec: {containers: [{image: x}]}
  - name: e2e
    optional: true
    spec: {containers: [{image: x}]}
  - name: manual-required
    spec: {containers: [{image: x}]}
  - name: release-only
    always_run: true
    branches: [release]
    spec: {containers: [{image: x}]}
"#;

    fn names(v: Vec<&Presubmit>) -> Vec<String> {
        v.into_iter().map(|p| p.name.clone()).collect()
    }

    fn run(body: &str, files: &[&str], failed: &[&str], all: &[&str]) -> Vec<String> {
        let js = jobs(JOBS);
        let failed: BTreeSet<String> = failed.iter().map(|s| s.to_string()).collect();
        let all: BTreeSet<String> = all.iter().map(|s| s.to_string()).collect();
        let mut ctx = || Ok::<_, ()>((failed.clone(), all.clone()));
        let filter = presubmit_filter(true, &mut ctx, body).expect("filter");
        let files: Vec<String> = files.iter().map(|s| s.to_string()).collect();
        let mut changes: &[String] = &files;
        names(filter_presubmits(&filter, &mut changes, "main", &js).expect("filter"))
    }

    #[test]
    fn regexes_compile_and_match_prow_forms() {
        assert!(TEST_ALL_RE.is_match("/test all"));
        assert!(TEST_ALL_RE.is_match("hello\n/test all, please"));
        assert!(!TEST_ALL_RE.is_match(" /test all"));
        assert!(RETEST_RE.is_match("/retest\n"));
        assert!(!RETEST_RE.is_match("/retest foo"));
        assert!(RETEST_WITH_TARGET_RE.is_match("/retest foo"));
        assert!(TEST_HELP_RE.is_match("/test ?"));
        assert!(TEST_WITHOUT_TARGET_RE.is_match("/test"));
        assert!(OK_TO_TEST_CANCEL_RE.is_match("/ok-to-test cancel"));
    }

    #[test]
    fn test_name_forces_the_job_even_if_its_change_filter_says_no() {
        assert_eq!(run("/test docs", &["src/main.rs"], &[], &[]), ["docs"]);
        assert_eq!(run("/test e2e", &[], &[], &[]), ["e2e"]);
        assert_eq!(run("/test unit e2e", &[], &[], &[]), ["unit", "e2e"]);
        // the branch gate still applies
        assert!(run("/test release-only", &[], &[], &[]).is_empty());
    }

    #[test]
    fn test_all_runs_jobs_that_trigger_by_themselves_with_their_change_filters() {
        assert_eq!(run("/test all", &["src/a.rs"], &[], &[]), ["unit"]);
        assert_eq!(run("/test all", &["docs/a.md"], &[], &[]), ["unit", "docs"]);
        assert_eq!(
            run("/ok-to-test", &["docs/a.md"], &[], &[]),
            ["unit", "docs"]
        );
    }

    #[test]
    fn retest_reruns_failed_contexts_and_unreported_automatic_jobs() {
        // e2e failed (optional, manual) → rerun; unit passed → not; docs unreported and
        // its files changed → run.
        assert_eq!(
            run("/retest", &["docs/x"], &["e2e"], &["e2e", "unit"]),
            ["docs", "e2e"]
        );
        // docs unreported but its files did not change → not run
        assert_eq!(
            run("/retest", &["src/x"], &["e2e"], &["e2e", "unit"]),
            ["e2e"]
        );
        // a failed job with a change filter reruns whatever changed
        assert_eq!(
            run("/retest", &["src/x"], &["docs"], &["docs", "unit"]),
            ["docs"]
        );
        // retest-required skips optional jobs
        assert!(run("/retest-required", &["src/x"], &["e2e"], &["e2e", "unit"]).is_empty());
    }

    #[test]
    fn manual_required_runs_required_jobs_that_need_a_trigger() {
        assert_eq!(
            run("/test-manual-required", &[], &[], &[]),
            ["manual-required"]
        );
    }

    #[test]
    fn contexts_are_fetched_only_for_retest() {
        let mut calls = 0;
        let mut ctx = || {
            calls += 1;
            Ok::<_, ()>((BTreeSet::new(), BTreeSet::new()))
        };
        presubmit_filter(true, &mut ctx, "/test all").expect("filter");
        presubmit_filter(true, &mut ctx, "/retest").expect("filter");
        assert_eq!(calls, 1);
    }

    #[test]
    fn ok_to_test_is_ignored_when_not_honoured() {
        let js = jobs(JOBS);
        let mut ctx = || Ok::<_, ()>((BTreeSet::new(), BTreeSet::new()));
        let filter = presubmit_filter(false, &mut ctx, "/ok-to-test").expect("filter");
        let mut changes: &[String] = &[];
        assert!(
            filter_presubmits(&filter, &mut changes, "main", &js)
                .expect("filter")
                .is_empty()
        );
    }

    #[test]
    fn code_blocks_are_stripped() {
        assert_eq!(strip_code_blocks("a\n```\n/retest\n```\nb\n"), "a\nb\n");
        assert!(!RETEST_RE.is_match(&strip_code_blocks("```\n/retest\n```")));
    }

    #[test]
    fn relevance() {
        let js = jobs(JOBS);
        assert!(is_relevant_comment("/test unit", &js));
        assert!(is_relevant_comment("/retest", &js));
        assert!(!is_relevant_comment("lgtm, thanks", &js));
    }

    #[test]
    fn help_notes() {
        assert_eq!(should_respond_with_help("/test ?", 3), Some(""));
        assert_eq!(
            should_respond_with_help("/test", 0),
            Some(TEST_WITHOUT_TARGET_NOTE)
        );
        assert_eq!(
            should_respond_with_help("/retest unit", 0),
            Some(RETEST_WITH_TARGET_NOTE)
        );
        assert_eq!(
            should_respond_with_help("/test all", 0),
            Some(NO_TEST_ALL_JOBS_NOTE)
        );
        assert_eq!(should_respond_with_help("/test all", 2), None);
        assert_eq!(
            should_respond_with_help("Patch Set 1:\n\n/test nope", 0),
            Some(TARGET_NOT_FOUND_NOTE)
        );
        assert_eq!(should_respond_with_help("/test unit", 1), None);
        assert_eq!(should_respond_with_help("lgtm", 0), None);
    }

    #[test]
    fn help_lists_required_then_optional_commands() {
        let js = jobs(JOBS);
        let help = help_message("acme", "widget", "main", "", &js);
        assert!(
            help.contains(
                "required jobs:\n```\n/test unit\n/test docs\n/test manual-required\n```"
            ),
            "{help}"
        );
        assert!(
            help.contains("optional jobs:\n```\n/test e2e\n```"),
            "{help}"
        );
        assert!(help.contains("- unit\n- docs"), "{help}");
        assert_eq!(
            help_message("acme", "other", "main", "", &[]),
            "No presubmit jobs available for acme/other@main"
        );
    }
}
