//! What can go wrong: configuration problems (collected, never first-only) and lookup errors.

use std::fmt;
use std::path::{Path, PathBuf};

/// A line and column (both 1-based) inside a YAML file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// One thing wrong (or, as a warning, suspicious) in the configuration.
///
/// Displays as `file[:line:col]: job "name": field: message`, leaving out the parts that are
/// not known, e.g. `jobs/presubmits.yaml: job "foo": spec.containers[0]: ...`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Problem {
    /// The file the problem is in.
    pub file: PathBuf,
    /// Where in the file, when the YAML parser knows.
    pub location: Option<Location>,
    /// The job it concerns, if any.
    pub job: Option<String>,
    /// The field path inside the job (or inside the config file when there is no job),
    /// in `a.b[0].c` form.
    pub field: Option<String>,
    /// What is wrong, lowercase, no trailing period.
    pub message: String,
}

impl Problem {
    /// A problem about a file as a whole.
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            location: None,
            job: None,
            field: None,
            message: message.into(),
        }
    }

    /// A problem about a field of the config file (no job).
    pub fn field(file: &Path, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::file(file, message)
        }
    }

    /// A problem about a job, optionally about one of its fields.
    pub fn job(file: &Path, job: &str, field: Option<String>, message: impl Into<String>) -> Self {
        Self {
            job: Some(job.to_owned()),
            field,
            ..Self::file(file, message)
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(loc) = self.location {
            write!(f, ":{}:{}", loc.line, loc.column)?;
        }
        if let Some(job) = &self.job {
            write!(f, ": job {job:?}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found by one load. Loading never stops at the first problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors {
    /// The errors; never empty when returned by a loader.
    pub problems: Vec<Problem>,
    /// Warnings collected on the way (e.g. unknown agents).
    pub warnings: Vec<Problem>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "{n} configuration problem{}",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl ConfigErrors {
    /// Whether some problem's display contains `needle` (handy in tests and tools).
    pub fn mentions(&self, needle: &str) -> bool {
        self.problems.iter().any(|p| p.to_string().contains(needle))
    }
}

/// Why a job lookup by name failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// No job has that name (for that repository and branch).
    #[error("failed to find associated {kind} job {name:?}")]
    NotFound {
        /// presubmit, postsubmit or periodic.
        kind: &'static str,
        /// The name asked for.
        name: String,
    },
    /// More than one job matches; Prow refuses to guess.
    #[error("{kind} job {name:?} matches multiple prow jobs")]
    Ambiguous {
        /// presubmit or postsubmit.
        kind: &'static str,
        /// The name asked for.
        name: String,
    },
}
