//! `initupload`: uploads `started.json`, the clone log and the latest-build markers; on a clone
//! failure also `build-log.txt` and a failed `finished.json`, and exits non-zero (reference
//! agents §2.6).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::clonerefs::{Record, format_records};
use super::gcsupload::{GcsUploadOptions, JobSpecInput, Target, UploadError};
use super::metadata::{finished_for, started_for};
use super::util::unix_now;

/// `INITUPLOAD_OPTIONS`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitUploadOptions {
    /// The gcsupload options, inline.
    #[serde(flatten)]
    pub options: GcsUploadOptions,
    /// The clone records written by clonerefs (only when it ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<PathBuf>,
}

/// Reads `JOB_SPEC` and runs initupload; returns the exit code.
pub fn run_from_env(opts: &InitUploadOptions) -> Result<i32, UploadError> {
    let spec = JobSpecInput::from_env()?;
    super::entrypoint::block_on_fresh_thread(|| run(opts, &spec))
        .unwrap_or_else(|| Err(UploadError::Unsupported("could not start a runtime".into())))
}

/// Runs initupload for `spec`; returns the exit code (1 when a clone failed).
pub async fn run(opts: &InitUploadOptions, spec: &JobSpecInput) -> Result<i32, UploadError> {
    let target = Target::new(&opts.options, spec)?;
    let records: Vec<Record> = match &opts.log {
        Some(path) => match std::fs::read(path) {
            Ok(data) => serde_json::from_slice(&data).map_err(|e| UploadError::Io {
                what: format!("parsing clone records {}", path.display()),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })?,
            Err(source) => {
                return Err(UploadError::Io {
                    what: format!("reading clone records {}", path.display()),
                    source,
                });
            }
        },
        None => Vec::new(),
    };
    let failed = records.iter().any(|r| r.failed);
    let now = unix_now();
    if !records.is_empty() {
        let log = format_records(&records);
        target.put("clone-log.txt", log.clone()).await?;
        target
            .put(
                "clone-records.json",
                serde_json::to_vec_pretty(&records).unwrap_or_default(),
            )
            .await?;
        if failed {
            target.put("build-log.txt", log).await?;
            let finished = finished_for(
                spec.refs.as_ref(),
                &spec.extra_refs,
                false,
                "FAILURE",
                Default::default(),
                now,
            );
            target
                .put(
                    "finished.json",
                    serde_json::to_vec_pretty(&finished).unwrap_or_default(),
                )
                .await?;
        }
    }
    let started = started_for(spec.refs.as_ref(), &spec.extra_refs, &records, now);
    target
        .put(
            "started.json",
            serde_json::to_vec_pretty(&started).unwrap_or_default(),
        )
        .await?;
    target.write_latest_build().await?;
    Ok(if failed { 1 } else { 0 })
}
