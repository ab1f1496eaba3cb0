//! Reading the config file and the job config tree (reference §3.1), merging, and the
//! loaded result with its lookups.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ffi::OsString;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use bosun_proto::prowjob::{DecorationConfig, ProwJobDefault};

use crate::defaults::{
    default_decoration_for, finalize_jobs, finalize_prow_config, keys_for_identifier,
    merge_prowjob_defaults,
};
use crate::error::{ConfigErrors, LookupError, Problem};
use crate::jobs::{JobConfig, JobConfigDoc, Periodic, Postsubmit, Presubmit};
use crate::parse::{ParseError, Seg, fmt_path, job_name_at, parse_yaml};
use crate::prow::ProwConfig;
use crate::validate::validate_jobs;

/// A loaded, defaulted and validated configuration.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    prow: ProwConfig,
    jobs: JobConfig,
    warnings: Vec<Problem>,
    periodic_index: HashMap<String, usize>,
}

/// Loads `config_path` (which may itself hold jobs) and, if given, the job config file or
/// directory, the way Prow's `LoadStrict` does: parse, ProwConfig defaults, job defaults,
/// component validation, job validation. Every problem found is returned, not just the first.
pub fn load(
    config_path: &Path,
    job_config_path: Option<&Path>,
) -> Result<LoadedConfig, ConfigErrors> {
    let mut b = Builder::default();
    match std::fs::metadata(config_path) {
        Ok(m) if m.is_dir() => {
            b.problems.push(Problem::file(
                config_path,
                "config path cannot be a directory",
            ));
        }
        Ok(_) => match read_maybe_gzip(config_path) {
            Ok(text) => b.add_config_file(config_path, &text),
            Err(e) => b.problems.push(Problem::file(config_path, e)),
        },
        Err(e) => b
            .problems
            .push(Problem::file(config_path, format!("cannot read: {e}"))),
    }
    if let Some(dir) = config_path.parent()
        && let Ok(sha) = std::fs::read_to_string(dir.join("VERSION"))
    {
        b.version = Some(sha);
    }
    if let Some(jobs) = job_config_path {
        b.add_job_path(jobs);
    }
    b.finish(config_path)
}

/// Like [`load`], from text already in memory: the config file and any number of job files
/// (paths are only used in messages and as the jobs' source paths).
pub fn load_from_memory(
    config: (&Path, &str),
    job_files: &[(&Path, &str)],
) -> Result<LoadedConfig, ConfigErrors> {
    let mut b = Builder::default();
    b.add_config_file(config.0, config.1);
    for (path, text) in job_files {
        b.add_job_file(path, text);
    }
    b.finish(config.0)
}

/// Reads a file, transparently un-gzipping it when it starts with the gzip magic bytes.
fn read_maybe_gzip(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| format!("cannot decompress gzip: {e}"))?;
        out
    } else {
        bytes
    };
    String::from_utf8(bytes).map_err(|e| format!("not valid UTF-8: {e}"))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum DocKind {
    /// The ProwConfig reading of the config file: unknown top-level keys are other Prow
    /// components' settings; `deck` is only partly modelled.
    ProwPart,
    /// The job reading of the config file: unknown top-level keys belong to ProwConfig.
    JobPartOfConfigFile,
    /// A job config file: everything is strict (`prow_ignored` is the escape hatch).
    JobFile,
}

#[derive(Default)]
struct Builder {
    prow: Option<ProwConfig>,
    jobs: JobConfig,
    preset_pairs: HashSet<String>,
    basenames: HashMap<OsString, PathBuf>,
    version: Option<String>,
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
}

fn parse_problem(file: &Path, text: &str, e: ParseError) -> Problem {
    let (job, field) = match job_name_at(text, &e.path) {
        Some((name, consumed)) => (Some(name), fmt_path(&e.path[consumed..])),
        None => (None, fmt_path(&e.path)),
    };
    Problem {
        file: file.to_path_buf(),
        location: e.location,
        job,
        field: (!field.is_empty()).then_some(field),
        message: e.message,
    }
}

/// Keys inside a job that Prow knows but bosun does not model (other reporters).
fn tolerated_job_key(rest: &[Seg]) -> bool {
    matches!(rest, [Seg::Key(a), Seg::Key(b), ..] if a == "reporter_config" && b != "slack")
}

impl Builder {
    fn add_config_file(&mut self, path: &Path, text: &str) {
        match parse_yaml::<ProwConfig>(text) {
            Ok(parsed) => {
                for p in &parsed.ignored {
                    self.unknown_field(path, DocKind::ProwPart, p, None);
                }
                self.prow = Some(parsed.value);
            }
            Err(e) => {
                let syntax = e.path.is_empty();
                self.problems.push(parse_problem(path, text, e));
                if syntax {
                    // The job reading would only repeat the same syntax error.
                    return;
                }
            }
        }
        self.add_job_doc(path, text, DocKind::JobPartOfConfigFile);
    }

    fn add_job_file(&mut self, path: &Path, text: &str) {
        self.add_job_doc(path, text, DocKind::JobFile);
    }

    fn add_job_doc(&mut self, path: &Path, text: &str, kind: DocKind) {
        let parsed = match parse_yaml::<JobConfigDoc>(text) {
            Ok(p) => p,
            Err(e) => {
                let problem = parse_problem(path, text, e);
                if !self.problems.contains(&problem) {
                    self.problems.push(problem);
                }
                return;
            }
        };
        for p in &parsed.ignored {
            self.unknown_field(path, kind, p, Some(&parsed.value));
        }
        self.merge(path, parsed.value);
    }

    fn unknown_field(
        &mut self,
        path: &Path,
        kind: DocKind,
        segs: &[Seg],
        doc: Option<&JobConfigDoc>,
    ) {
        match kind {
            DocKind::ProwPart
                if (segs.len() <= 1
                    || matches!(segs.first(), Some(Seg::Key(k)) if k == "deck")) =>
            {
                return;
            }
            DocKind::JobPartOfConfigFile if segs.len() <= 1 => return,
            _ => {}
        }
        let job = doc.and_then(|doc| match segs {
            [Seg::Key(k), Seg::Key(repo), Seg::Index(i), rest @ ..] if k == "presubmits" => {
                Some((doc.presubmits.get(repo)?.get(*i)?.base.name.clone(), rest))
            }
            [Seg::Key(k), Seg::Key(repo), Seg::Index(i), rest @ ..] if k == "postsubmits" => {
                Some((doc.postsubmits.get(repo)?.get(*i)?.base.name.clone(), rest))
            }
            [Seg::Key(k), Seg::Index(i), rest @ ..] if k == "periodics" => {
                Some((doc.periodics.get(*i)?.base.name.clone(), rest))
            }
            _ => None,
        });
        let problem = match job {
            Some((_, rest)) if tolerated_job_key(rest) => return,
            Some((name, rest)) => Problem::job(path, &name, Some(fmt_path(rest)), "unknown field"),
            None => Problem::field(path, fmt_path(segs), "unknown field"),
        };
        self.problems.push(problem);
    }

    fn merge(&mut self, path: &Path, doc: JobConfigDoc) {
        for (i, preset) in doc.presets.iter().enumerate() {
            for (k, v) in &preset.labels {
                let pair = format!("{k}:{v}");
                if !self.preset_pairs.insert(pair.clone()) {
                    self.problems.push(Problem::field(
                        path,
                        format!("presets[{i}].labels"),
                        format!("duplicated preset 'label:value' pair: {pair}"),
                    ));
                }
            }
        }
        self.jobs.presets.extend(doc.presets);
        for (repo, mut list) in doc.presubmits {
            for j in &mut list {
                j.base.source_path = path.to_path_buf();
            }
            self.jobs.presubmits.entry(repo).or_default().extend(list);
        }
        for (repo, mut list) in doc.postsubmits {
            for j in &mut list {
                j.base.source_path = path.to_path_buf();
            }
            self.jobs.postsubmits.entry(repo).or_default().extend(list);
        }
        for mut p in doc.periodics {
            p.base.source_path = path.to_path_buf();
            self.jobs.periodics.push(p);
        }
        // Prow reads decorate_all_jobs from the config file; bosun also honours it in job files.
        self.jobs.decorate_all_jobs |= doc.decorate_all_jobs;
    }

    fn add_job_path(&mut self, root: &Path) {
        let meta = match std::fs::metadata(root) {
            Ok(m) => m,
            Err(e) => {
                self.problems
                    .push(Problem::file(root, format!("cannot read: {e}")));
                return;
            }
        };
        if !meta.is_dir() {
            match read_maybe_gzip(root) {
                Ok(text) => self.add_job_file(root, &text),
                Err(e) => self.problems.push(Problem::file(root, e)),
            }
            return;
        }
        let walker = ignore::WalkBuilder::new(root)
            .standard_filters(false)
            .parents(false)
            .follow_links(false)
            .add_custom_ignore_filename(".prowignore")
            .sort_by_file_name(|a, b| a.cmp(b))
            .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with(".."))
            .build();
        for entry in walker {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    // Like Prow: a bad entry does not stop the walk.
                    self.warnings
                        .push(Problem::file(root, format!("walking job config: {e}")));
                    continue;
                }
            };
            let path = entry.path();
            if entry.file_type().is_none_or(|t| t.is_dir()) {
                continue;
            }
            let ext = path.extension().and_then(|e| e.to_str());
            if !matches!(ext, Some("yaml" | "yml")) {
                continue;
            }
            let base = entry.file_name().to_os_string();
            if let Some(first) = self.basenames.get(&base) {
                self.problems.push(Problem::file(
                    path,
                    format!(
                        "duplicated basename is not allowed: {} (also {})",
                        base.to_string_lossy(),
                        first.display()
                    ),
                ));
                continue;
            }
            self.basenames.insert(base, path.to_path_buf());
            match read_maybe_gzip(path) {
                Ok(text) => self.add_job_file(path, &text),
                Err(e) => self.problems.push(Problem::file(path, e)),
            }
        }
    }

    fn finish(mut self, config_path: &Path) -> Result<LoadedConfig, ConfigErrors> {
        let mut prow = self.prow.take().unwrap_or_default();
        if let Some(sha) = self.version.take() {
            prow.config_version_sha = sha;
        }
        finalize_prow_config(&mut prow, config_path, &mut self.problems);
        finalize_jobs(&prow, &mut self.jobs, &mut self.problems);
        validate_jobs(
            &prow,
            &mut self.jobs,
            &mut self.problems,
            &mut self.warnings,
        );
        if !self.problems.is_empty() {
            return Err(ConfigErrors {
                problems: self.problems,
                warnings: self.warnings,
            });
        }
        Ok(LoadedConfig::new(prow, self.jobs, self.warnings))
    }
}

fn lookup_keys(identifier: &str) -> Vec<String> {
    let trimmed = identifier
        .strip_prefix("https://")
        .or_else(|| identifier.strip_prefix("http://"));
    match trimmed {
        Some(t) => vec![identifier.to_owned(), t.trim_end_matches('/').to_owned()],
        None => vec![identifier.to_owned(), format!("https://{identifier}")],
    }
}

fn pick_one<'a, T>(
    kind: &'static str,
    name: &str,
    candidates: impl Iterator<Item = &'a T>,
) -> Result<&'a T, LookupError>
where
    T: 'a,
{
    let mut found = None;
    for c in candidates {
        if found.is_some() {
            return Err(LookupError::Ambiguous {
                kind,
                name: name.to_owned(),
            });
        }
        found = Some(c);
    }
    found.ok_or_else(|| LookupError::NotFound {
        kind,
        name: name.to_owned(),
    })
}

impl LoadedConfig {
    fn new(prow: ProwConfig, jobs: JobConfig, warnings: Vec<Problem>) -> Self {
        let mut periodic_index = HashMap::with_capacity(jobs.periodics.len());
        for (i, p) in jobs.periodics.iter().enumerate() {
            periodic_index.entry(p.base.name.clone()).or_insert(i);
        }
        Self {
            prow,
            jobs,
            warnings,
            periodic_index,
        }
    }

    /// The controller settings, defaults applied.
    pub fn prow(&self) -> &ProwConfig {
        &self.prow
    }

    /// All jobs, defaulted.
    pub fn jobs(&self) -> &JobConfig {
        &self.jobs
    }

    /// Warnings (e.g. unknown agents); loading succeeded despite them.
    pub fn warnings(&self) -> &[Problem] {
        &self.warnings
    }

    /// The periodics.
    pub fn periodics(&self) -> &[Periodic] {
        &self.jobs.periodics
    }

    /// Static presubmits for a repo identifier, trying it with and without `https://`.
    pub fn presubmits_for(&self, identifier: &str) -> Vec<&Presubmit> {
        lookup_keys(identifier)
            .iter()
            .filter_map(|k| self.jobs.presubmits.get(k))
            .flatten()
            .collect()
    }

    /// Static postsubmits for a repo identifier, trying it with and without `https://`.
    pub fn postsubmits_for(&self, identifier: &str) -> Vec<&Postsubmit> {
        lookup_keys(identifier)
            .iter()
            .filter_map(|k| self.jobs.postsubmits.get(k))
            .flatten()
            .collect()
    }

    /// The one presubmit of `org_repo` named `name` whose branch filter accepts `base_ref`.
    pub fn find_presubmit(
        &self,
        org_repo: &str,
        base_ref: &str,
        name: &str,
    ) -> Result<&Presubmit, LookupError> {
        let candidates = self.presubmits_for(org_repo);
        pick_one(
            "presubmit",
            name,
            candidates
                .into_iter()
                .filter(|j| j.base.name == name && j.could_run(base_ref)),
        )
    }

    /// The one postsubmit of `org_repo` named `name` whose branch filter accepts `base_ref`.
    pub fn find_postsubmit(
        &self,
        org_repo: &str,
        base_ref: &str,
        name: &str,
    ) -> Result<&Postsubmit, LookupError> {
        let candidates = self.postsubmits_for(org_repo);
        pick_one(
            "postsubmit",
            name,
            candidates
                .into_iter()
                .filter(|j| j.base.name == name && j.could_run(base_ref)),
        )
    }

    /// The periodic named `name` (names are unique after validation).
    pub fn find_periodic(&self, name: &str) -> Result<&Periodic, LookupError> {
        self.periodic_index
            .get(name)
            .and_then(|&i| self.jobs.periodics.get(i))
            .ok_or_else(|| LookupError::NotFound {
                kind: "periodic",
                name: name.to_owned(),
            })
    }

    /// Every job name, sorted, each once.
    pub fn all_job_names(&self) -> BTreeSet<&str> {
        self.jobs
            .iter_jobs()
            .map(|(_, _, j)| j.name.as_str())
            .collect()
    }

    /// `GetProwJobDefault(repo, cluster)`: the merged `prowjob_default_entries` for a repo
    /// and cluster, tenant falling back to `GlobalDefaultID`.
    pub fn prowjob_default(&self, repo: &str, cluster: &str) -> ProwJobDefault {
        merge_prowjob_defaults(&self.prow, repo, cluster, None)
    }

    /// The merged plank default decoration config for a repo and cluster.
    pub fn default_decoration_config(&self, repo: &str, cluster: &str) -> Option<DecorationConfig> {
        default_decoration_for(&self.prow, repo, cluster)
    }

    /// `InRepoConfigEnabled`: the narrowest of `org/repo`, `org`, `*` that is configured.
    pub fn in_repo_config_enabled(&self, identifier: &str) -> bool {
        keys_for_identifier(identifier)
            .iter()
            .find_map(|k| self.prow.in_repo_config.enabled.get(k))
            .copied()
            .unwrap_or(false)
    }

    /// `InRepoConfigAllowsCluster`: the cluster is allowed for the repo, its org or `*`.
    pub fn in_repo_config_allows_cluster(&self, cluster: &str, identifier: &str) -> bool {
        keys_for_identifier(identifier).iter().any(|k| {
            self.prow
                .in_repo_config
                .allowed_clusters
                .get(k)
                .is_some_and(|list| list.iter().any(|c| c == cluster))
        })
    }

    /// Takes the configuration apart.
    pub fn into_parts(self) -> (ProwConfig, JobConfig) {
        (self.prow, self.jobs)
    }
}
