//! [`Secret`]: a token, password or webhook URL that must never be printed.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A secret string (token, password, webhook URL): never printed by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Reads a secret from the file at `path` (surrounding whitespace trimmed); `what` names
    /// the secret in errors, which name the file and never its contents.
    pub fn from_file(what: &'static str, path: &Path) -> Result<Self, SecretFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| SecretFileError::Read {
            what,
            path: path.to_owned(),
            source,
        })?;
        let value = text.trim();
        if value.is_empty() {
            return Err(SecretFileError::Empty {
                what,
                path: path.to_owned(),
            });
        }
        Ok(Secret::new(value))
    }
}

/// Why a secret file gave no secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    /// The file could not be read.
    #[error("reading {what} from {}", path.display())]
    Read {
        /// What the file holds.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The file holds only whitespace.
    #[error("{what} file {} is empty", path.display())]
    Empty {
        /// What the file holds.
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn never_printed() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "<redacted> <redacted>");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn read_from_a_file_trimmed_and_errors_name_the_file_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("token");
        std::fs::write(&good, "  hunter2\n").expect("write");
        let s = Secret::from_file("token", &good).expect("read");
        assert_eq!(s.expose(), "hunter2");

        let empty = dir.path().join("empty");
        std::fs::write(&empty, " \n").expect("write");
        let err = Secret::from_file("slack token", &empty).expect_err("empty");
        assert_eq!(
            err.to_string(),
            format!("slack token file {} is empty", empty.display())
        );
        let missing = dir.path().join("missing");
        let err = Secret::from_file("token", &missing).expect_err("missing");
        assert!(err.to_string().contains(&missing.display().to_string()));
    }
}
