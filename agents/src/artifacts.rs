//! Logs and artifacts in an object store, laid out like Prow's bucket (reference agents §2.7).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bosun_proto::ProwJob;
use bosun_proto::paths::{JobPaths, paths_for_job};
use bosun_proto::prowjob::GcsConfiguration;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{Attribute, Attributes, ObjectStore, ObjectStoreExt, PutOptions, PutPayload};
use tokio::io::AsyncWriteExt;

/// Why an artifact operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactsError {
    /// The object store refused.
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// A local file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The local path.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// An upload stream failed.
    #[error("uploading {name}: {source}")]
    Upload {
        /// The object name.
        name: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Where a gateway puts job logs and artifacts.
#[derive(Debug, Clone)]
pub struct Artifacts {
    /// The bucket (a local directory by default).
    pub store: Arc<dyn ObjectStore>,
    /// Public URL of the store's root, without a trailing slash; job URLs start with it.
    pub url_base: String,
}

/// Escapes an object name as Prow's uploader does (`#` → `%23`).
pub fn escape_object_name(name: &str) -> String {
    name.replace('#', "%23")
}

fn object_path(name: &str) -> ObjectPath {
    let escaped = escape_object_name(name);
    ObjectPath::parse(&escaped).unwrap_or_else(|_| ObjectPath::from(escaped.as_str()))
}

fn join(a: &str, b: &str) -> String {
    let a = a.trim_end_matches('/');
    let b = b.trim_start_matches('/');
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_owned(),
        (_, true) => a.to_owned(),
        _ => format!("{a}/{b}"),
    }
}

impl Artifacts {
    /// Artifacts in `store`, linked under `url_base`.
    pub fn new(store: Arc<dyn ObjectStore>, url_base: impl Into<String>) -> Self {
        Self {
            store,
            url_base: url_base.into().trim_end_matches('/').to_owned(),
        }
    }

    /// Artifacts in a local directory (created if missing), linked under `url_base`.
    pub fn local_dir(
        dir: impl AsRef<Path>,
        url_base: impl Into<String>,
    ) -> Result<Self, ArtifactsError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| ArtifactsError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let fs = object_store::local::LocalFileSystem::new_with_prefix(dir)?;
        Ok(Self::new(Arc::new(fs), url_base))
    }

    /// The job's GCS configuration, else an explicit-strategy default.
    pub fn gcs_configuration(job: &ProwJob) -> GcsConfiguration {
        job.spec
            .decoration_config
            .as_ref()
            .and_then(|d| d.gcs_configuration.clone())
            .unwrap_or_else(|| GcsConfiguration {
                path_strategy: "explicit".into(),
                ..Default::default()
            })
    }

    /// Every storage path of this run.
    pub fn paths(&self, job: &ProwJob) -> JobPaths {
        let build_id = job
            .status
            .as_ref()
            .map(|s| s.build_id.as_str())
            .unwrap_or("");
        paths_for_job(&job.spec, build_id, &Self::gcs_configuration(job))
    }

    /// The job directory relative to the store root (no trailing slash).
    pub fn job_dir(&self, job: &ProwJob) -> String {
        self.paths(job).job_dir
    }

    /// `url_base/job_dir/`: where a human finds the run's files.
    pub fn url_for(&self, job: &ProwJob) -> String {
        format!("{}/{}/", self.url_base, self.job_dir(job))
    }

    /// The object path of `relative_name` inside the job directory.
    pub fn object_path(&self, job: &ProwJob, relative_name: &str) -> ObjectPath {
        object_path(&join(&self.job_dir(job), relative_name))
    }

    /// Writes one object into the job directory.
    pub async fn put(
        &self,
        job: &ProwJob,
        relative_name: &str,
        data: Bytes,
    ) -> Result<(), ArtifactsError> {
        let path = self.object_path(job, relative_name);
        self.store.put(&path, PutPayload::from(data)).await?;
        Ok(())
    }

    /// Reads one object of the job directory; `None` when it does not exist.
    pub async fn get(
        &self,
        job: &ProwJob,
        relative_name: &str,
    ) -> Result<Option<Bytes>, ArtifactsError> {
        let path = self.object_path(job, relative_name);
        match self.store.get(&path).await {
            Ok(r) => Ok(Some(r.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Streams a local file into the job directory.
    pub async fn put_file(
        &self,
        job: &ProwJob,
        relative_name: &str,
        local: &Path,
    ) -> Result<(), ArtifactsError> {
        let path = self.object_path(job, relative_name);
        self.put_file_at(path, local).await
    }

    async fn put_file_at(&self, path: ObjectPath, local: &Path) -> Result<(), ArtifactsError> {
        let mut file = tokio::fs::File::open(local)
            .await
            .map_err(|source| ArtifactsError::Io {
                path: local.to_path_buf(),
                source,
            })?;
        let name = path.to_string();
        let mut writer = object_store::buffered::BufWriter::new(self.store.clone(), path);
        let copied = tokio::io::copy(&mut file, &mut writer).await;
        match copied {
            Ok(_) => writer
                .shutdown()
                .await
                .map_err(|source| ArtifactsError::Upload { name, source }),
            Err(source) => {
                let _ = writer.abort().await;
                Err(ArtifactsError::Upload { name, source })
            }
        }
    }

    /// Uploads every file under `local_dir` (recursively) to `job_dir/dest_prefix/…`, escaping
    /// `#` as `%23`. Returns the number of files. A missing `local_dir` uploads nothing.
    pub async fn upload_dir(
        &self,
        job: &ProwJob,
        local_dir: &Path,
        dest_prefix: &str,
    ) -> Result<usize, ArtifactsError> {
        let root = local_dir.to_path_buf();
        let files = tokio::task::spawn_blocking(move || list_files(&root))
            .await
            .map_err(|e| ArtifactsError::Io {
                path: local_dir.to_path_buf(),
                source: std::io::Error::other(e.to_string()),
            })?
            .map_err(|source| ArtifactsError::Io {
                path: local_dir.to_path_buf(),
                source,
            })?;
        let base = join(&self.job_dir(job), dest_prefix);
        let count = files.len();
        futures::stream::iter(files)
            .map(|(rel, abs)| {
                let path = object_path(&join(&base, &rel));
                async move { self.put_file_at(path, &abs).await }
            })
            .buffer_unordered(8)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(count)
    }

    /// Writes the `latest-build.txt` files and, for presubmits, the
    /// `pr-logs/directory/<job>/<build>.txt` alias (content: the job directory's URL, with a
    /// `link` metadata attribute where the store supports it).
    pub async fn write_latest_build(&self, job: &ProwJob) -> Result<(), ArtifactsError> {
        let paths = self.paths(job);
        let build_id = job
            .status
            .as_ref()
            .map(|s| s.build_id.clone())
            .unwrap_or_default();
        for file in &paths.latest_build_files {
            self.store
                .put(
                    &object_path(file),
                    PutPayload::from(Bytes::from(build_id.clone())),
                )
                .await?;
        }
        if let Some(alias) = &paths.alias {
            let config = Self::gcs_configuration(job);
            let target = if config.bucket.is_empty() {
                format!("{}/{}", self.url_base, paths.job_dir)
            } else {
                let bucket = if config.bucket.contains("://") {
                    config.bucket.trim_end_matches('/').to_owned()
                } else {
                    format!("gs://{}", config.bucket.trim_end_matches('/'))
                };
                format!("{bucket}/{}", paths.job_dir)
            };
            let path = object_path(alias);
            let mut attributes = Attributes::new();
            attributes.insert(Attribute::Metadata("link".into()), target.clone().into());
            let opts = PutOptions {
                attributes,
                ..Default::default()
            };
            let payload = PutPayload::from(Bytes::from(target.clone()));
            match self.store.put_opts(&path, payload, opts).await {
                Ok(_) => {}
                Err(object_store::Error::NotImplemented { .. }) => {
                    self.store
                        .put(&path, PutPayload::from(Bytes::from(target)))
                        .await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

impl Artifacts {
    /// Stores what a remote backend (Tekton, Jenkins) leaves of a finished run, in Prow's
    /// layout: `build-log.txt`, `started.json` (`started_at`, epoch seconds), `finished.json`
    /// (`finished_at`) and the `latest-build.txt` markers.
    pub async fn put_remote_run(
        &self,
        job: &ProwJob,
        build_log: Bytes,
        outcome: &crate::Outcome,
        started_at: i64,
        finished_at: i64,
    ) -> Result<(), ArtifactsError> {
        use crate::podutils::metadata::{finished_for, passed_and_result, started_for_job};
        let json = |v: serde_json::Result<Vec<u8>>| Bytes::from(v.unwrap_or_default());
        self.put(job, "build-log.txt", build_log).await?;
        let started = started_for_job(job, &[], started_at);
        self.put(
            job,
            "started.json",
            json(serde_json::to_vec_pretty(&started)),
        )
        .await?;
        let (passed, result) = passed_and_result(outcome.state);
        let finished = finished_for(
            job.spec.refs.as_ref(),
            &job.spec.extra_refs,
            passed,
            result,
            serde_json::Map::new(),
            finished_at,
        );
        self.put(
            job,
            "finished.json",
            json(serde_json::to_vec_pretty(&finished)),
        )
        .await?;
        self.write_latest_build(job).await
    }
}

/// Files under `root` as (`a/b/c` relative name, absolute path); missing root → empty.
fn list_files(root: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    if !root.is_dir() {
        return Ok(out);
    }
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel_name = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let path = entry.path();
            let meta = std::fs::metadata(&path);
            match meta {
                Ok(m) if m.is_dir() => stack.push((path, rel_name)),
                Ok(m) if m.is_file() => out.push((rel_name, path)),
                _ => {}
            }
        }
    }
    out.sort();
    Ok(out)
}
