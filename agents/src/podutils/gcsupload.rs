//! The gcsupload options shared by initupload and sidecar, and the upload target they name.
//!
//! bosun's utilities write to a local directory: `local_output_dir` (files relative to the job
//! directory, like Prow's local mode) or a `file://` bucket (Prow's full bucket layout under that
//! directory). Cloud buckets (`gs://`, `s3://`) need the cloud features of `object_store`, which
//! this build does not enable; such options are refused with a clear error.

use std::path::{Path, PathBuf};

use bosun_proto::prowjob::{DecorationConfig, GcsConfiguration, ProwJobSpec, ProwJobStatus};
use bosun_proto::{ProwJob, ProwJobType, Refs};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::artifacts::{Artifacts, ArtifactsError};

/// `GCSUPLOAD_OPTIONS` (also flattened into `INITUPLOAD_OPTIONS` and `SIDECAR_OPTIONS.gcs_options`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcsUploadOptions {
    /// Local files or directories to upload.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<String>,
    /// Sub-directory of the job directory for the items.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sub_dir: String,
    /// The bucket configuration, inline.
    #[serde(flatten)]
    pub gcs_configuration: GcsConfiguration,
    /// GCS credentials file.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gcs_credentials_file: String,
    /// S3 credentials file.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub s3_credentials_file: String,
    /// Do not upload.
    #[serde(default)]
    pub dry_run: bool,
}

/// `JOB_SPEC` as read back by the utilities.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JobSpecInput {
    /// Job type.
    #[serde(rename = "type")]
    pub r#type: ProwJobType,
    /// Job name.
    pub job: String,
    /// Build id.
    #[serde(default)]
    pub buildid: String,
    /// ProwJob name.
    #[serde(default)]
    pub prowjobid: String,
    /// Main refs.
    #[serde(default)]
    pub refs: Option<Refs>,
    /// Extra refs.
    #[serde(default)]
    pub extra_refs: Vec<Refs>,
    /// Decoration config.
    #[serde(default)]
    pub decoration_config: Option<DecorationConfig>,
}

impl JobSpecInput {
    /// Reads `JOB_SPEC`.
    pub fn from_env() -> Result<Self, super::OptionsError> {
        super::options_from_env("JOB_SPEC")
    }

    /// A ProwJob carrying this spec, for path computations.
    pub fn to_prowjob(&self, gcs: &GcsConfiguration) -> ProwJob {
        let mut decoration = self.decoration_config.clone().unwrap_or_default();
        decoration.gcs_configuration = Some(gcs.clone());
        let mut job = ProwJob::new(
            &self.prowjobid,
            ProwJobSpec {
                r#type: self.r#type,
                job: self.job.clone(),
                refs: self.refs.clone(),
                extra_refs: self.extra_refs.clone(),
                decoration_config: Some(decoration),
                ..Default::default()
            },
        );
        job.status = Some(ProwJobStatus {
            build_id: self.buildid.clone(),
            ..Default::default()
        });
        job
    }
}

/// Why an upload failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Bad options or JOB_SPEC.
    #[error(transparent)]
    Options(#[from] super::OptionsError),
    /// The bucket cannot be written by this build.
    #[error("unsupported upload target: {0}")]
    Unsupported(String),
    /// The store failed.
    #[error(transparent)]
    Artifacts(#[from] ArtifactsError),
    /// Local IO failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The IO error.
        source: std::io::Error,
    },
}

/// An upload destination: a store plus the job the paths are computed for.
pub struct Target {
    /// The store.
    pub artifacts: Artifacts,
    /// The job (spec from JOB_SPEC).
    pub job: ProwJob,
    /// Local mode: files go straight under the job directory; no latest-build or alias files.
    pub local_mode: bool,
    /// Do not write anything.
    pub dry_run: bool,
}

impl Target {
    /// The target for these options and job spec.
    pub fn new(opts: &GcsUploadOptions, spec: &JobSpecInput) -> Result<Self, UploadError> {
        let cfg = &opts.gcs_configuration;
        if !cfg.local_output_dir.is_empty() {
            let artifacts = Artifacts::local_dir(
                &cfg.local_output_dir,
                format!("file://{}", cfg.local_output_dir),
            )?;
            // Local mode: the job directory is the output directory itself.
            let mut local_cfg = cfg.clone();
            local_cfg.path_prefix = String::new();
            let job = spec.to_prowjob(&local_cfg);
            return Ok(Self {
                artifacts,
                job,
                local_mode: true,
                dry_run: opts.dry_run,
            });
        }
        if let Some(dir) = cfg.bucket.strip_prefix("file://") {
            let artifacts = Artifacts::local_dir(dir, cfg.bucket.clone())?;
            return Ok(Self {
                artifacts,
                job: spec.to_prowjob(cfg),
                local_mode: false,
                dry_run: opts.dry_run,
            });
        }
        Err(UploadError::Unsupported(format!(
            "bucket {:?}: bosun's pod utilities write to local_output_dir or a file:// bucket",
            cfg.bucket
        )))
    }

    fn name(&self, relative: &str) -> String {
        if self.local_mode {
            relative.to_owned()
        } else {
            format!("{}/{}", self.artifacts.job_dir(&self.job), relative)
        }
    }

    /// Writes one object of the job directory.
    pub async fn put(&self, relative: &str, data: impl Into<Bytes>) -> Result<(), UploadError> {
        if self.dry_run {
            return Ok(());
        }
        let path = object_store::path::Path::from(
            crate::artifacts::escape_object_name(&self.name(relative)).as_str(),
        );
        let store = self.artifacts.store.clone();
        use object_store::ObjectStoreExt;
        store
            .put(&path, object_store::PutPayload::from(data.into()))
            .await
            .map_err(ArtifactsError::from)?;
        Ok(())
    }

    /// Uploads the `items` (files or directories) under `sub_dir`.
    pub async fn upload_items(&self, items: &[String], sub_dir: &str) -> Result<(), UploadError> {
        if self.dry_run {
            return Ok(());
        }
        for item in items {
            let path = Path::new(item);
            let base = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let dest = if sub_dir.is_empty() {
                base
            } else {
                format!("{}/{base}", sub_dir.trim_end_matches('/'))
            };
            if path.is_dir() {
                self.upload_dir(path, &dest).await?;
            } else if path.is_file() {
                let data = tokio::fs::read(path)
                    .await
                    .map_err(|source| UploadError::Io {
                        what: format!("reading {item}"),
                        source,
                    })?;
                self.put(&dest, data).await?;
            }
        }
        Ok(())
    }

    /// Uploads a directory tree under `dest` in the job directory.
    pub async fn upload_dir(&self, dir: &Path, dest: &str) -> Result<(), UploadError> {
        if self.dry_run {
            return Ok(());
        }
        if self.local_mode {
            // Same layout, relative to the output directory.
            for (rel, abs) in list_tree(dir) {
                let data = tokio::fs::read(&abs)
                    .await
                    .map_err(|source| UploadError::Io {
                        what: format!("reading {}", abs.display()),
                        source,
                    })?;
                self.put(&format!("{dest}/{rel}"), data).await?;
            }
            return Ok(());
        }
        self.artifacts.upload_dir(&self.job, dir, dest).await?;
        Ok(())
    }

    /// latest-build files and the presubmit alias (not in local mode).
    pub async fn write_latest_build(&self) -> Result<(), UploadError> {
        if self.dry_run || self.local_mode {
            return Ok(());
        }
        self.artifacts.write_latest_build(&self.job).await?;
        Ok(())
    }
}

fn list_tree(root: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel_name = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let path = entry.path();
            if path.is_dir() {
                stack.push((path, rel_name));
            } else if path.is_file() {
                out.push((rel_name, path));
            }
        }
    }
    out.sort();
    out
}
