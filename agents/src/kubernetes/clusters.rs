//! Build clusters: every context of every kubeconfig is a cluster alias, as in Prow
//! (reference prow-agents §1.10).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bosun_proto::ProwJob;
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::agent::AgentError;

/// Why the build clusters could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A kubeconfig file could not be read or parsed.
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// Two files define the same context name.
    #[error("context {name:?} is defined in both {first} and {second}")]
    DuplicateContext {
        /// Context name.
        name: String,
        /// First file.
        first: PathBuf,
        /// Second file.
        second: PathBuf,
    },
    /// A context could not be turned into a client.
    #[error("cluster {alias:?} ({path}): {message}")]
    Client {
        /// Alias.
        alias: String,
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
}

/// How a cluster answered its last health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterHealth {
    /// Not checked yet.
    Unknown,
    /// `/version` answered.
    Reachable,
    /// It did not; the message says why.
    Unreachable(String),
}

/// The build clusters a gateway can run pods on, by alias.
#[derive(Clone, Default)]
pub struct BuildClusters {
    clients: BTreeMap<String, Client>,
    health: Arc<RwLock<BTreeMap<String, ClusterHealth>>>,
}

impl std::fmt::Debug for BuildClusters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print clients: they hold credentials.
        f.debug_struct("BuildClusters")
            .field("aliases", &self.aliases())
            .finish()
    }
}

/// The kubeconfig files in a directory (Prow's `--kubeconfig-dir`): files only, no
/// subdirectories, names starting with `..` skipped, optionally only those ending in `suffix`.
pub fn kubeconfigs_in_dir(dir: &Path, suffix: Option<&str>) -> Result<Vec<PathBuf>, ClusterError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ClusterError::Kubeconfig {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_type()
                .map(|t| t.is_file() || t.is_symlink())
                .unwrap_or(false)
        })
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.starts_with("..") && suffix.is_none_or(|s| name.ends_with(s))
        })
        .collect();
    files.sort();
    Ok(files)
}

impl BuildClusters {
    /// No clusters at all.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Loads every context of every file. The `default` alias is the context named
    /// `default` if there is one, else the in-cluster config when running in a pod, else the
    /// current context of the first file. `disabled` aliases are left out.
    pub async fn load(files: &[PathBuf], disabled: &[String]) -> Result<Self, ClusterError> {
        let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
        let mut clients = BTreeMap::new();
        let mut first_current: Option<(Kubeconfig, String, PathBuf)> = None;
        for path in files {
            let kubeconfig = Kubeconfig::read_from(path).map_err(|e| ClusterError::Kubeconfig {
                path: path.clone(),
                message: e.to_string(),
            })?;
            if first_current.is_none()
                && let Some(cur) = kubeconfig.current_context.clone()
            {
                first_current = Some((kubeconfig.clone(), cur, path.clone()));
            }
            for ctx in &kubeconfig.contexts {
                if let Some(first) = seen.insert(ctx.name.clone(), path.clone()) {
                    return Err(ClusterError::DuplicateContext {
                        name: ctx.name.clone(),
                        first,
                        second: path.clone(),
                    });
                }
                if disabled.contains(&ctx.name) {
                    continue;
                }
                let client = client_for(&kubeconfig, &ctx.name, path).await?;
                clients.insert(ctx.name.clone(), client);
            }
        }
        if !clients.contains_key(crate::kubernetes::DEFAULT_CLUSTER)
            && !disabled
                .iter()
                .any(|d| d == crate::kubernetes::DEFAULT_CLUSTER)
        {
            if let Ok(config) = kube::Config::incluster() {
                if let Ok(client) = Client::try_from(config) {
                    clients.insert(crate::kubernetes::DEFAULT_CLUSTER.to_owned(), client);
                }
            } else if let Some((kubeconfig, current, path)) = first_current {
                let client = client_for(&kubeconfig, &current, &path).await?;
                clients.insert(crate::kubernetes::DEFAULT_CLUSTER.to_owned(), client);
            }
        }
        let health = clients
            .keys()
            .map(|k| (k.clone(), ClusterHealth::Unknown))
            .collect();
        Ok(Self {
            clients,
            health: Arc::new(RwLock::new(health)),
        })
    }

    /// Cluster aliases, sorted.
    pub fn aliases(&self) -> Vec<String> {
        self.clients.keys().cloned().collect()
    }

    /// The client for an alias.
    pub fn client(&self, alias: &str) -> Option<&Client> {
        self.clients.get(alias)
    }

    /// The client for a job's `spec.cluster` (empty means `default`). An unknown alias is
    /// [`AgentError::InvalidJob`] naming the clusters that exist: like plank, and unlike Prow's
    /// Tekton controller, a job never silently falls back to another cluster.
    pub fn client_for_job(&self, job: &ProwJob) -> Result<&Client, AgentError> {
        let alias = job.spec.cluster_alias();
        self.client(alias).ok_or_else(|| {
            let known = self.aliases();
            AgentError::InvalidJob(if known.is_empty() {
                format!(
                    "unknown cluster {alias:?}: this gateway has no build clusters (start it with --kubeconfig or --kubeconfig-dir)"
                )
            } else {
                format!("unknown cluster {alias:?}; known clusters: {}", known.join(", "))
            })
        })
    }

    /// Whether there are no clusters.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Asks every cluster for `/version` (each with `timeout`) and records the answers.
    pub async fn check_health(&self, timeout: Duration) {
        let checks = self.clients.iter().map(|(alias, client)| async move {
            let result = tokio::time::timeout(timeout, client.apiserver_version()).await;
            let health = match result {
                Ok(Ok(_)) => ClusterHealth::Reachable,
                Ok(Err(e)) => ClusterHealth::Unreachable(e.to_string()),
                Err(_) => ClusterHealth::Unreachable(format!("no answer within {timeout:?}")),
            };
            (alias.clone(), health)
        });
        let results = futures::future::join_all(checks).await;
        if let Ok(mut h) = self.health.write() {
            for (alias, health) in results {
                h.insert(alias, health);
            }
        }
    }

    /// The last health of every cluster.
    pub fn health(&self) -> BTreeMap<String, ClusterHealth> {
        self.health.read().map(|h| h.clone()).unwrap_or_default()
    }
}

async fn client_for(
    kubeconfig: &Kubeconfig,
    context: &str,
    path: &Path,
) -> Result<Client, ClusterError> {
    let options = KubeConfigOptions {
        context: Some(context.to_owned()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig.clone(), &options)
        .await
        .map_err(|e| ClusterError::Client {
            alias: context.to_owned(),
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    Client::try_from(config).map_err(|e| ClusterError::Client {
        alias: context.to_owned(),
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}
