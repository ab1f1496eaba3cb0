//! `clonerefs`: clones the job's refs with the git CLI (reference agents §2.5, §2.6).
//!
//! Per ref, into `<src_root>/src/<path_alias | repo_link without scheme | github.com/org/repo>`:
//! `git init`, user config, fetch of the repository (unless `skip_fetch_head` or sparse), fetch
//! of `base_sha` (or `base_ref` → FETCH_HEAD), checkout, `git branch --force <base_ref>`, checkout
//! of the base branch, then per pull a fetch (its `ref`, else its sha, else `pull/N/head`) and a
//! `git merge --no-ff` dated HEAD's commit time + i, then submodules, then `rev-parse HEAD`.
//! Fetches are retried with Prow's delays. The records go to `log` as JSON; element 0 is the
//! environment setup. Tokens are replaced by `CENSORED` in everything recorded.

use std::path::{Path, PathBuf};
use std::process::Command as ProcessCommand;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bosun_proto::Refs;
use serde::{Deserialize, Serialize};

use super::OptionsError;
use super::util::write_atomic;

fn is_zero(n: &usize) -> bool {
    *n == 0
}
fn is_false(b: &bool) -> bool {
    !*b
}

/// `CLONEREFS_OPTIONS`, field for field as Prow's clonerefs reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloneRefsOptions {
    /// GOPATH-like root; clones go under `<src_root>/src/`.
    pub src_root: PathBuf,
    /// Where the clone records (JSON) go.
    pub log: PathBuf,
    /// `git config user.name`.
    #[serde(default)]
    pub git_user_name: String,
    /// `git config user.email`.
    #[serde(default)]
    pub git_user_email: String,
    /// What to clone: refs then extra refs.
    pub refs: Vec<Refs>,
    /// SSH private keys to use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_files: Vec<PathBuf>,
    /// File holding an OAuth token for HTTPS clones.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub oauth_token_file: String,
    /// Known SSH host keys (`known_hosts` lines).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_fingerprints: Vec<String>,
    /// Parallel clones; 0 = one per ref.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_parallel_workers: usize,
    /// Exit non-zero when a clone fails.
    #[serde(default, skip_serializing_if = "is_false")]
    pub fail: bool,
    /// Git cookie file (`http.cookiefile`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cookie_path: String,
    /// GitHub API endpoints (GitHub App auth).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub github_api_endpoints: Vec<String>,
    /// GitHub App id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub github_app_id: String,
    /// GitHub App private key file.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub github_app_private_key_file: String,
}

impl CloneRefsOptions {
    /// Prow's `Validate`.
    pub fn validate(&self) -> Result<(), OptionsError> {
        let var = "CLONEREFS_OPTIONS";
        if self.src_root.as_os_str().is_empty() {
            return Err(OptionsError::Unusable {
                var: var.into(),
                message: "field \"src_root\": no source root specified".into(),
            });
        }
        if self.log.as_os_str().is_empty() {
            return Err(OptionsError::Unusable {
                var: var.into(),
                message: "field \"log\": no log file specified".into(),
            });
        }
        if self.refs.is_empty() {
            return Err(OptionsError::Unusable {
                var: var.into(),
                message: "field \"refs\": no refs specified".into(),
            });
        }
        Ok(())
    }
}

/// One command of a clone record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// The command line (censored).
    pub command: String,
    /// Combined output (censored).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
    /// Error, if it failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// Nanoseconds.
    #[serde(default)]
    pub duration: i64,
}

/// The outcome of cloning one ref (`clone.Record`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// What was cloned (empty for the environment-setup record).
    #[serde(default)]
    pub refs: Refs,
    /// What ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<Command>,
    /// Whether a command failed.
    #[serde(default)]
    pub failed: bool,
    /// `git rev-parse HEAD` after the merges.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub final_sha: String,
    /// Nanoseconds.
    #[serde(default)]
    pub duration: i64,
}

impl Record {
    /// A one-line summary of why this record failed, if it did.
    pub fn failure_summary(&self) -> Option<String> {
        if !self.failed {
            return None;
        }
        let what = if self.refs.org.is_empty() && self.refs.repo.is_empty() {
            "environment setup".to_owned()
        } else {
            self.refs.org_repo()
        };
        let cmd = self.commands.iter().rev().find(|c| !c.error.is_empty());
        Some(match cmd {
            Some(c) => format!("{what}: {}: {}", c.command, c.error),
            None => format!("{what}: failed"),
        })
    }
}

/// Prow's `FormatRecord`: the human-readable clone log.
pub fn format_record(record: &Record) -> String {
    let mut out = String::new();
    if record.failed {
        out.push_str("# FAILED!\n");
    }
    out.push_str(&format!(
        "# Cloning {}/{} at {}",
        record.refs.org, record.refs.repo, record.refs.base_ref
    ));
    if !record.refs.base_sha.is_empty() {
        out.push_str(&format!("({})", record.refs.base_sha));
    }
    out.push('\n');
    if !record.refs.pulls.is_empty() {
        out.push_str("# Checking out pulls:\n");
        for pull in &record.refs.pulls {
            out.push_str(&format!("#\t{}", pull.number));
            if !pull.sha.is_empty() {
                out.push_str(&format!("({})", pull.sha));
            }
            out.push('\n');
        }
    }
    for c in &record.commands {
        out.push_str(&format!("$ {}\n", c.command));
        out.push_str(&c.output);
        if !c.error.is_empty() {
            out.push_str(&format!("# Error: {}\n", c.error));
        }
    }
    out.push_str(&format!("# Final SHA: {}\n", record.final_sha));
    out.push_str(&format!(
        "# Total runtime: {}\n",
        super::util::fmt_duration(Duration::from_nanos(record.duration.max(0).unsigned_abs()))
    ));
    out
}

/// The clone log of several records, as initupload uploads it (`clone-log.txt`).
pub fn format_records(records: &[Record]) -> String {
    records
        .iter()
        .map(format_record)
        .collect::<Vec<_>>()
        .join("")
}

/// Why clonerefs could not even record its work.
#[derive(Debug, thiserror::Error)]
pub enum CloneRefsError {
    /// The records could not be written.
    #[error("writing clone records to {path}: {source}")]
    WriteLog {
        /// The log path.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
}

/// `PathForRefs`: where a ref is cloned.
pub fn path_for_refs(src_root: &Path, refs: &Refs) -> PathBuf {
    let sub = if !refs.path_alias.is_empty() {
        refs.path_alias.clone()
    } else if !refs.repo_link.is_empty() {
        let link = refs.repo_link.as_str();
        let link = link.split_once("://").map(|(_, rest)| rest).unwrap_or(link);
        link.to_owned()
    } else {
        format!("github.com/{}/{}", refs.org, refs.repo)
    };
    src_root.join("src").join(sub)
}

/// The URI to fetch from: `clone_uri`, else `<repo_link>.git`, else GitHub.
pub fn clone_uri(refs: &Refs) -> String {
    if !refs.clone_uri.is_empty() {
        refs.clone_uri.clone()
    } else if !refs.repo_link.is_empty() {
        format!("{}.git", refs.repo_link)
    } else {
        format!("https://github.com/{}/{}.git", refs.org, refs.repo)
    }
}

/// Prow's fetch retry delays.
const FETCH_RETRIES: [Duration; 9] = [
    Duration::from_millis(100),
    Duration::from_millis(200),
    Duration::from_millis(400),
    Duration::from_millis(800),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(15),
    Duration::from_secs(30),
];

struct Auth {
    env: Vec<(String, String)>,
    token: Option<String>,
}

/// Clones every ref and writes the records to `opts.log`. Clone failures are recorded, not
/// returned; only a log that cannot be written is an error.
pub fn run(opts: &CloneRefsOptions) -> Result<Vec<Record>, CloneRefsError> {
    let (setup, auth) = setup_environment(opts);
    let mut records = vec![setup];
    if !records[0].failed {
        records.extend(clone_all(opts, &auth));
    }
    let json = serde_json::to_vec_pretty(&records).unwrap_or_default();
    write_atomic(&opts.log, &json).map_err(|source| CloneRefsError::WriteLog {
        path: opts.log.clone(),
        source,
    })?;
    Ok(records)
}

fn setup_environment(opts: &CloneRefsOptions) -> (Record, Auth) {
    let start = Instant::now();
    let mut record = Record::default();
    let mut auth = Auth {
        env: vec![
            ("GIT_TERMINAL_PROMPT".into(), "0".into()),
            ("GIT_MERGE_AUTOEDIT".into(), "no".into()),
        ],
        token: None,
    };
    let mut ssh = Vec::<String>::new();
    if !opts.key_files.is_empty() || !opts.host_fingerprints.is_empty() {
        ssh.push("ssh".into());
    }
    for key in &opts.key_files {
        ssh.push("-i".into());
        ssh.push(shell_quote(&key.to_string_lossy()));
    }
    if !opts.key_files.is_empty() {
        ssh.push("-o IdentitiesOnly=yes".into());
    }
    if !opts.host_fingerprints.is_empty() {
        let dir = std::env::temp_dir().join(format!("bosun-clonerefs-{}", std::process::id()));
        let known_hosts = dir.join("known_hosts");
        let mut cmd = Command {
            command: format!("write {}", known_hosts.display()),
            ..Default::default()
        };
        let mut content = opts.host_fingerprints.join("\n");
        content.push('\n');
        if let Err(e) = write_atomic(&known_hosts, content.as_bytes()) {
            cmd.error = e.to_string();
            record.failed = true;
        }
        record.commands.push(cmd);
        ssh.push(format!(
            "-o UserKnownHostsFile={} -o StrictHostKeyChecking=yes",
            shell_quote(&known_hosts.to_string_lossy())
        ));
    }
    if !ssh.is_empty() {
        auth.env.push(("GIT_SSH_COMMAND".into(), ssh.join(" ")));
    }
    if !opts.cookie_path.is_empty() {
        auth.env.push(("GIT_CONFIG_COUNT".into(), "1".into()));
        auth.env
            .push(("GIT_CONFIG_KEY_0".into(), "http.cookiefile".into()));
        auth.env
            .push(("GIT_CONFIG_VALUE_0".into(), opts.cookie_path.clone()));
    }
    if !opts.oauth_token_file.is_empty() {
        match std::fs::read_to_string(&opts.oauth_token_file) {
            Ok(t) if !t.trim().is_empty() => auth.token = Some(t.trim().to_owned()),
            Ok(_) => {
                record.commands.push(Command {
                    command: format!("read oauth token {}", opts.oauth_token_file),
                    error: "the token file is empty".into(),
                    ..Default::default()
                });
                record.failed = true;
            }
            Err(e) => {
                record.commands.push(Command {
                    command: format!("read oauth token {}", opts.oauth_token_file),
                    error: e.to_string(),
                    ..Default::default()
                });
                record.failed = true;
            }
        }
    }
    if !opts.github_app_id.is_empty() {
        record.commands.push(Command {
            command: format!("github app {} token", opts.github_app_id),
            output: "bosun clonerefs does not mint GitHub App tokens; cloning without them\n"
                .into(),
            ..Default::default()
        });
    }
    record.duration = nanos(start.elapsed());
    (record, auth)
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=:@".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn clone_all(opts: &CloneRefsOptions, auth: &Auth) -> Vec<Record> {
    let n = opts.refs.len();
    let workers = if opts.max_parallel_workers == 0 {
        n
    } else {
        opts.max_parallel_workers.min(n)
    }
    .max(1);
    let results: Mutex<Vec<Option<Record>>> = Mutex::new(vec![None; n]);
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(refs) = opts.refs.get(i) else { break };
                    let record = clone_one(opts, refs, auth);
                    if let Ok(mut r) = results.lock() {
                        r[i] = Some(record);
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .zip(opts.refs.iter())
        .map(|(r, refs)| {
            r.unwrap_or_else(|| Record {
                refs: refs.clone(),
                failed: true,
                ..Default::default()
            })
        })
        .collect()
}

struct Git<'a> {
    dir: PathBuf,
    uri: String,
    env: &'a [(String, String)],
    censor: Option<&'a str>,
}

impl Git<'_> {
    fn censor(&self, s: &str) -> String {
        match self.censor {
            Some(t) if !t.is_empty() => s.replace(t, "CENSORED"),
            _ => s.to_owned(),
        }
    }

    /// Runs `git args…` in the clone dir; returns the record entry and whether it succeeded.
    fn run(&self, args: &[&str], extra_env: &[(String, String)]) -> (Command, bool, String) {
        let start = Instant::now();
        let out = ProcessCommand::new("git")
            .args(args)
            .current_dir(&self.dir)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .envs(extra_env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .output();
        let mut cmd = Command {
            command: self.censor(&format!("git {}", args.join(" "))),
            ..Default::default()
        };
        let (ok, stdout) = match out {
            Ok(o) => {
                let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&o.stderr));
                cmd.output = self.censor(&text);
                if !o.status.success() {
                    cmd.error = match o.status.code() {
                        Some(c) => format!("exit status {c}"),
                        None => "killed by a signal".to_owned(),
                    };
                }
                (
                    o.status.success(),
                    String::from_utf8_lossy(&o.stdout).into_owned(),
                )
            }
            Err(e) => {
                cmd.error = self.censor(&e.to_string());
                (false, String::new())
            }
        };
        cmd.duration = nanos(start.elapsed());
        (cmd, ok, stdout)
    }

    fn fetch(&self, args: &[&str]) -> (Command, bool) {
        let mut full = vec!["fetch"];
        full.extend_from_slice(args);
        let (mut cmd, mut ok, _) = self.run(&full, &[]);
        for delay in FETCH_RETRIES {
            if ok {
                break;
            }
            std::thread::sleep(delay);
            let (c, o, _) = self.run(&full, &[]);
            cmd = c;
            ok = o;
        }
        (cmd, ok)
    }
}

fn authed_uri(uri: &str, token: Option<&str>) -> String {
    match (token, uri.strip_prefix("https://")) {
        (Some(t), Some(rest)) => format!("https://{t}:x-oauth-basic@{rest}"),
        _ => uri.to_owned(),
    }
}

fn clone_one(opts: &CloneRefsOptions, refs: &Refs, auth: &Auth) -> Record {
    let start = Instant::now();
    let dir = path_for_refs(&opts.src_root, refs);
    let mut record = Record {
        refs: refs.clone(),
        ..Default::default()
    };
    let mkdir = Command {
        command: format!("mkdir -p {}", dir.display()),
        ..Default::default()
    };
    record.commands.push(mkdir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        if let Some(c) = record.commands.last_mut() {
            c.error = e.to_string();
        }
        record.failed = true;
        record.duration = nanos(start.elapsed());
        return record;
    }
    let git = Git {
        dir,
        uri: authed_uri(&clone_uri(refs), auth.token.as_deref()),
        env: &auth.env,
        censor: auth.token.as_deref(),
    };
    if let Err(()) = clone_steps(opts, refs, &git, &mut record) {
        record.failed = true;
    }
    record.duration = nanos(start.elapsed());
    record
}

fn clone_steps(
    opts: &CloneRefsOptions,
    refs: &Refs,
    git: &Git<'_>,
    record: &mut Record,
) -> Result<(), ()> {
    let step =
        |args: &[&str], env: &[(String, String)], record: &mut Record| -> Result<String, ()> {
            let (cmd, ok, stdout) = git.run(args, env);
            record.commands.push(cmd);
            if ok { Ok(stdout) } else { Err(()) }
        };
    let fetch = |args: &[&str], record: &mut Record| -> Result<(), ()> {
        let (cmd, ok) = git.fetch(args);
        record.commands.push(cmd);
        if ok { Ok(()) } else { Err(()) }
    };

    step(&["init"], &[], record)?;
    if !opts.git_user_name.is_empty() {
        step(&["config", "user.name", &opts.git_user_name], &[], record)?;
    }
    if !opts.git_user_email.is_empty() {
        step(&["config", "user.email", &opts.git_user_email], &[], record)?;
    }
    let sparse = !refs.sparse_checkout_files.is_empty();
    let depth = refs.clone_depth.to_string();
    let mut depth_args: Vec<&str> = Vec::new();
    if refs.clone_depth > 0 {
        depth_args.extend(["--depth", depth.as_str()]);
    }
    let mut filter_args: Vec<&str> = Vec::new();
    if refs.blobless_fetch == Some(true) || sparse {
        filter_args.push("--filter=blob:none");
    }
    if sparse {
        step(&["sparse-checkout", "init"], &[], record)?;
    }
    if !refs.skip_fetch_head && !sparse {
        let mut args = vec![git.uri.as_str(), "--tags", "--prune"];
        args.extend(&depth_args);
        args.extend(&filter_args);
        fetch(&args, record)?;
    }
    let (fetch_ref, target) = if !refs.base_sha.is_empty() {
        (refs.base_sha.as_str(), refs.base_sha.as_str())
    } else {
        (refs.base_ref.as_str(), "FETCH_HEAD")
    };
    {
        let mut args = vec![git.uri.as_str(), fetch_ref];
        args.extend(&depth_args);
        args.extend(&filter_args);
        fetch(&args, record)?;
    }
    if sparse {
        let mut args = vec!["sparse-checkout", "set"];
        args.extend(refs.sparse_checkout_files.iter().map(String::as_str));
        step(&args, &[], record)?;
    }
    step(&["checkout", target], &[], record)?;
    step(&["branch", "--force", &refs.base_ref, target], &[], record)?;
    step(&["checkout", &refs.base_ref], &[], record)?;

    if !refs.pulls.is_empty() {
        let (cmd, ok, out) = git.run(&["show", "-s", "--format=format:%ct", "HEAD"], &[]);
        if !ok {
            record.commands.push(cmd);
            return Err(());
        }
        let mut timestamp: i64 = match out.trim().parse() {
            Ok(t) => t,
            Err(e) => {
                let mut cmd = cmd;
                cmd.error = format!("parsing the HEAD timestamp {:?}: {e}", out.trim());
                record.commands.push(cmd);
                return Err(());
            }
        };
        for pull in &refs.pulls {
            let pull_ref = format!("pull/{}/head", pull.number);
            let what = if !pull.r#ref.is_empty() {
                pull.r#ref.as_str()
            } else if !pull.sha.is_empty() {
                pull.sha.as_str()
            } else {
                pull_ref.as_str()
            };
            let mut args = vec![git.uri.as_str(), what];
            if refs.blobless_fetch == Some(true) {
                args.push("--filter=blob:none");
            }
            fetch(&args, record)?;
            let checkout = if pull.sha.is_empty() {
                "FETCH_HEAD"
            } else {
                pull.sha.as_str()
            };
            timestamp += 1;
            let date = format!("@{timestamp} +0000");
            let env = [
                ("GIT_AUTHOR_DATE".to_owned(), date.clone()),
                ("GIT_COMMITTER_DATE".to_owned(), date),
            ];
            step(&["merge", "--no-ff", checkout], &env, record)?;
        }
    }
    if !refs.skip_submodules {
        step(
            &["submodule", "update", "--init", "--recursive"],
            &[],
            record,
        )?;
    }
    let (cmd, ok, out) = git.run(&["rev-parse", "HEAD"], &[]);
    if !ok {
        record.commands.push(cmd);
        return Err(());
    }
    record.final_sha = out.trim().to_owned();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_prow() {
        let root = Path::new("/go");
        let mut r = Refs {
            org: "o".into(),
            repo: "r".into(),
            ..Default::default()
        };
        assert_eq!(path_for_refs(root, &r), Path::new("/go/src/github.com/o/r"));
        assert_eq!(clone_uri(&r), "https://github.com/o/r.git");
        r.repo_link = "https://gerrit.example/a/b".into();
        assert_eq!(
            path_for_refs(root, &r),
            Path::new("/go/src/gerrit.example/a/b")
        );
        assert_eq!(clone_uri(&r), "https://gerrit.example/a/b.git");
        r.path_alias = "k8s.io/x".into();
        assert_eq!(path_for_refs(root, &r), Path::new("/go/src/k8s.io/x"));
    }

    #[test]
    fn token_is_injected() {
        assert_eq!(
            authed_uri("https://github.com/o/r.git", Some("t0k")),
            "https://t0k:x-oauth-basic@github.com/o/r.git"
        );
        assert_eq!(authed_uri("/local/repo", Some("t0k")), "/local/repo");
    }
}
