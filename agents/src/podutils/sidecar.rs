//! `sidecar`: waits for the entrypoint markers, then uploads the build log(s), `finished.json`
//! and the artifacts (reference agents §2.6). Censoring is not implemented: censoring options
//! are accepted and ignored.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::entrypoint::{ABORTED_CODE, Interrupts};
use super::gcsupload::{GcsUploadOptions, JobSpecInput, Target, UploadError};
use super::metadata::finished_for;
use super::util::{read_marker, unix_now};

/// One test container's files (`wrapper.Options`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrapperOptions {
    /// The process log.
    #[serde(default)]
    pub process_log: PathBuf,
    /// The marker file.
    #[serde(default)]
    pub marker_file: PathBuf,
    /// The metadata file.
    #[serde(default)]
    pub metadata_file: PathBuf,
    /// Container name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container_name: String,
}

/// `SIDECAR_OPTIONS`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SidecarOptions {
    /// Where to upload.
    pub gcs_options: GcsUploadOptions,
    /// One per test container.
    #[serde(default)]
    pub entries: Vec<WrapperOptions>,
    /// Exit 1 when a test failed.
    #[serde(default)]
    pub entry_error: bool,
    /// Keep waiting on SIGINT/SIGTERM instead of uploading at once.
    #[serde(default)]
    pub ignore_interrupts: bool,
    /// Accepted, not applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub censoring_options: Option<serde_json::Value>,
    /// Deprecated single entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrapper_options: Option<WrapperOptions>,
}

/// Reads `JOB_SPEC` and runs the sidecar; returns the exit code.
pub fn run_from_env(opts: &SidecarOptions) -> Result<i32, UploadError> {
    let spec = JobSpecInput::from_env()?;
    super::entrypoint::block_on_fresh_thread(|| run(opts, &spec))
        .unwrap_or_else(|| Err(UploadError::Unsupported("could not start a runtime".into())))
}

/// Waits for the markers and uploads; returns the exit code.
pub async fn run(opts: &SidecarOptions, spec: &JobSpecInput) -> Result<i32, UploadError> {
    let mut entries = opts.entries.clone();
    if entries.is_empty() {
        entries.extend(opts.wrapper_options.clone());
    }
    let target = Target::new(&opts.gcs_options, spec)?;
    let mut ints = Interrupts::new().map_err(|source| UploadError::Io {
        what: "installing signal handlers".into(),
        source,
    })?;

    let mut interrupted = false;
    let codes = loop {
        let mut codes = Vec::with_capacity(entries.len());
        for e in &entries {
            match read_marker(&e.marker_file) {
                Ok(Some(c)) => codes.push(Some(Ok(c))),
                Ok(None) => codes.push(None),
                Err(err) => codes.push(Some(Err(err.to_string()))),
            }
        }
        if codes.iter().all(Option::is_some) {
            break codes.into_iter().flatten().collect::<Vec<_>>();
        }
        tokio::select! {
            // Polling interval for the marker files (the select also wakes on signals).
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = ints.recv(), if !opts.ignore_interrupts => {
                interrupted = true;
                break Vec::new();
            }
        }
    };

    let mut errors = serde_json::Map::new();
    let mut failures = 0usize;
    let mut aborted = interrupted;
    for (e, c) in entries.iter().zip(codes.iter()) {
        match c {
            Ok(0) => {}
            Ok(code) => {
                failures += 1;
                if *code == ABORTED_CODE {
                    aborted = true;
                }
            }
            Err(msg) => {
                failures += 1;
                errors.insert(
                    e.container_name.clone(),
                    serde_json::Value::String(msg.clone()),
                );
            }
        }
    }
    if interrupted {
        failures = failures.max(1);
    }
    let passed = failures == 0 && !interrupted;
    let result = if passed {
        "SUCCESS"
    } else if aborted {
        "ABORTED"
    } else {
        "FAILURE"
    };

    let several = entries.len() > 1;
    let mut metadata = serde_json::Map::new();
    for e in &entries {
        let name = if several && !e.container_name.is_empty() {
            format!("{}-build-log.txt", e.container_name)
        } else {
            "build-log.txt".to_owned()
        };
        if let Ok(data) = tokio::fs::read(&e.process_log).await {
            target.put(&name, data).await?;
        }
        if let Ok(data) = std::fs::read(&e.metadata_file)
            && let Ok(serde_json::Value::Object(m)) =
                serde_json::from_slice::<serde_json::Value>(&data)
        {
            metadata.extend(m);
        }
    }
    if !errors.is_empty() {
        metadata.insert("sidecar-errors".into(), serde_json::Value::Object(errors));
    }
    let finished = finished_for(
        spec.refs.as_ref(),
        &spec.extra_refs,
        passed,
        result,
        metadata,
        unix_now(),
    );
    target
        .put(
            "finished.json",
            serde_json::to_vec_pretty(&finished).unwrap_or_default(),
        )
        .await?;
    target
        .upload_items(&opts.gcs_options.items, &opts.gcs_options.sub_dir)
        .await?;
    Ok(if opts.entry_error && failures > 0 {
        1
    } else {
        0
    })
}
