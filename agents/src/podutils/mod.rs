//! Prow's pod utilities (reference agents §2.5–§2.7), as one binary with one subcommand per tool.
//!
//! Each tool reads its options from `<TOOL>_OPTIONS` (JSON, Prow's field names) and behaves like
//! its Prow namesake:
//! - [`clonerefs`]: clones refs into `src_root` and writes the clone records;
//! - [`entrypoint`]: runs the test process with a timeout, tees its output to the process log and
//!   writes the exit-code marker;
//! - [`initupload`]: uploads `started.json`, the clone log and the latest-build markers;
//! - [`sidecar`]: waits for the markers, then uploads the build log, `finished.json` and the
//!   artifacts.
//!
//! [`podutils_main`] is the entry point for a binary (`bosun-podutils <tool>`, or
//! `bosun podutils <tool>`).

pub mod clonerefs;
pub mod entrypoint;
pub mod gcsupload;
pub mod initupload;
pub mod metadata;
pub mod sidecar;

pub(crate) mod util;

use std::process::ExitCode;

use serde::de::DeserializeOwned;

pub use clonerefs::CloneRefsOptions;
pub use entrypoint::EntrypointOptions;
pub use gcsupload::GcsUploadOptions;
pub use initupload::InitUploadOptions;
pub use metadata::{Finished, Started};
pub use sidecar::SidecarOptions;

/// The tools [`podutils_main`] knows.
pub const TOOLS: [&str; 4] = ["clonerefs", "entrypoint", "initupload", "sidecar"];

/// Why a tool's options could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// The variable is not set (or not UTF-8).
    #[error("{var} is not set")]
    Missing {
        /// The environment variable, e.g. `ENTRYPOINT_OPTIONS`.
        var: String,
    },
    /// The JSON does not match the options type.
    #[error("{var}: {message}")]
    Invalid {
        /// The environment variable.
        var: String,
        /// Path of the offending field (`.` for the top level).
        field: String,
        /// What is wrong, naming the field.
        message: String,
    },
    /// The JSON parsed but a value is unusable.
    #[error("{var}: {message}")]
    Unusable {
        /// The environment variable.
        var: String,
        /// What is wrong, naming the field.
        message: String,
    },
}

/// Parses an options blob; errors name the variable and the offending field.
pub fn parse_options<T: DeserializeOwned>(var: &str, json: &str) -> Result<T, OptionsError> {
    let mut de = serde_json::Deserializer::from_str(json);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => Ok(v),
        Err(err) => {
            let field = err.path().to_string();
            let mut inner = err.inner().to_string();
            if let Some(idx) = inner.rfind(" at line ") {
                inner.truncate(idx);
            }
            let inner = inner.replace('`', "\"");
            let message = if field == "." || field.is_empty() {
                inner
            } else {
                format!("field \"{field}\": {inner}")
            };
            Err(OptionsError::Invalid {
                var: var.to_owned(),
                field,
                message,
            })
        }
    }
}

/// Reads and parses `var` from the environment.
pub fn options_from_env<T: DeserializeOwned>(var: &str) -> Result<T, OptionsError> {
    match std::env::var(var) {
        Ok(json) if !json.trim().is_empty() => parse_options(var, &json),
        _ => Err(OptionsError::Missing {
            var: var.to_owned(),
        }),
    }
}

/// The environment variable a tool reads: `entrypoint` → `ENTRYPOINT_OPTIONS`.
pub fn options_var(tool: &str) -> String {
    format!("{}_OPTIONS", tool.to_ascii_uppercase())
}

/// Runs one pod utility by name, reading `<TOOL>_OPTIONS` from the environment, and returns the
/// process exit code. Assumes nothing about argv. Safe to call from inside a tokio runtime: each
/// tool runs its own runtime on a separate thread.
pub fn podutils_main(tool: &str) -> ExitCode {
    let code = match run_tool(tool) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("{tool}: {err}");
            if tool == "entrypoint" { 127 } else { 1 }
        }
    };
    // Like Go's os.Exit: only the low 8 bits reach the parent.
    ExitCode::from((code & 0xff) as u8)
}

/// Why a tool could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// Unknown tool name.
    #[error(
        "unknown pod utility {0:?} (expected one of: clonerefs, entrypoint, initupload, sidecar)"
    )]
    UnknownTool(String),
    /// Bad or missing options.
    #[error(transparent)]
    Options(#[from] OptionsError),
    /// The tool failed.
    #[error("{0}")]
    Failed(String),
}

/// Runs one pod utility by name and returns its exit code (full `i32`, e.g. 1130).
pub fn run_tool(tool: &str) -> Result<i32, ToolError> {
    match tool {
        "entrypoint" => {
            let opts: EntrypointOptions = options_from_env(&options_var(tool))?;
            opts.validate()?;
            let local = match std::env::var(entrypoint::LOCAL_OPTIONS_VAR) {
                Ok(json) if !json.trim().is_empty() => {
                    Some(parse_options::<entrypoint::LocalRunOptions>(
                        entrypoint::LOCAL_OPTIONS_VAR,
                        &json,
                    )?)
                }
                _ => None,
            };
            Ok(entrypoint::run_with(&opts, local.as_ref()))
        }
        "clonerefs" => {
            let opts: CloneRefsOptions = options_from_env(&options_var(tool))?;
            opts.validate()?;
            let records = clonerefs::run(&opts).map_err(|e| ToolError::Failed(e.to_string()))?;
            let failed = records.iter().any(|r| r.failed);
            Ok(if failed && opts.fail { 1 } else { 0 })
        }
        "initupload" => {
            let opts: InitUploadOptions = options_from_env(&options_var(tool))?;
            initupload::run_from_env(&opts).map_err(|e| ToolError::Failed(e.to_string()))
        }
        "sidecar" => {
            let opts: SidecarOptions = options_from_env(&options_var(tool))?;
            sidecar::run_from_env(&opts).map_err(|e| ToolError::Failed(e.to_string()))
        }
        other => Err(ToolError::UnknownTool(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_field_is_named() {
        let err = parse_options::<EntrypointOptions>("ENTRYPOINT_OPTIONS", r#"{"timeout": 5}"#)
            .expect_err("args is required");
        assert_eq!(
            err.to_string(),
            r#"ENTRYPOINT_OPTIONS: missing field "args""#
        );
    }

    #[test]
    fn wrong_type_names_the_path() {
        let err = parse_options::<EntrypointOptions>(
            "ENTRYPOINT_OPTIONS",
            r#"{"args":["true"],"process_log":"p","marker_file":"m","timeout":"2h"}"#,
        )
        .expect_err("timeout is an integer");
        let msg = err.to_string();
        assert!(
            msg.starts_with(r#"ENTRYPOINT_OPTIONS: field "timeout": "#),
            "{msg}"
        );
    }
}
