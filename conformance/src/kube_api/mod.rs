//! A Kubernetes test API server: the REST protocol of the apiserver for what bosun uses, over
//! plain HTTP on 127.0.0.1, with real semantics so the real `kube` client works against it.
//! Two instances are two clusters.
//!
//! Served: discovery (`/api`, `/apis`, `/version`), core/v1 pods (with the `status` and `log`
//! subresources), events and namespaces, events.k8s.io/v1 events, prow.k8s.io/v1 prowjobs,
//! tekton.dev/v1 pipelineruns and taskruns (status subresource), coordination.k8s.io/v1 leases.
//! Verbs: create, get, list (label and field selectors, `limit`/`continue`), update (409 on a
//! stale resourceVersion), patch (merge, JSON patch, a simplified server-side apply), delete
//! (finalizers keep an object until they are removed), deletecollection and watch (history
//! replay from a resourceVersion, ERROR 410 when it is too old, bookmarks, selectors).
//! Requests need `Authorization: Bearer <token>` (401 otherwise).
//!
//! Tests act as kubelet or controller through the direct methods ([`KubeApiServer::set_pod_phase`],
//! [`KubeApiServer::patch_status`], [`KubeApiServer::append_log`], …), count requests
//! ([`KubeApiServer::request_count`]) and inject failures ([`KubeApiServer::fail_next`]).
//!
//! Simplifications: server-side apply is a merge patch (no managedFields, no conflicts);
//! strategic merge patch gets 415; deletion ignores grace periods (immediate unless the object
//! has finalizers); namespaces are created on first use and deleting one does not delete its
//! contents; `dryRun` is not supported.

mod error;
pub(crate) mod http;
mod patch;
mod resources;
mod selectors;
mod store;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

pub use error::{ApiError, ServerError};
pub use resources::Gvr;

use resources::ResourceDef;
use store::{Injected, Part, State};

/// The verb of an API request, as RBAC names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    /// GET of one object (or of its `status` / `log` subresource).
    Get,
    /// GET of a collection.
    List,
    /// GET of a collection with `watch=1`.
    Watch,
    /// POST.
    Create,
    /// PUT (also of the `status` subresource).
    Update,
    /// PATCH (also of the `status` subresource).
    Patch,
    /// DELETE of one object.
    Delete,
    /// DELETE of a collection.
    DeleteCollection,
}

/// One authenticated resource request the server received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// The verb.
    pub verb: Verb,
    /// The resource.
    pub gvr: Gvr,
    /// The namespace in the URL.
    pub namespace: Option<String>,
    /// The name in the URL, or for a create the `metadata.name` of the body.
    pub name: Option<String>,
    /// `status` or `log`.
    pub subresource: Option<String>,
}

/// Tunables of a server.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// How many changes the watch history keeps; a watch from an older resourceVersion gets
    /// 410 Gone.
    pub history_limit: usize,
    /// How often a watch with `allowWatchBookmarks=true` gets a BOOKMARK.
    pub bookmark_interval: Duration,
    /// Serve prowjobs with a `status` subresource, as bosun's deploy/crds does. Prow's own CRD
    /// has none (the default): status is written with the object.
    pub prowjob_status_subresource: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            history_limit: 1000,
            bookmark_interval: Duration::from_secs(1),
            prowjob_status_subresource: false,
        }
    }
}

pub(crate) struct Shared {
    resources: Vec<ResourceDef>,
    state: Mutex<State>,
    token: String,
    addr: SocketAddr,
    bookmark_interval: Duration,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn resource(&self, gvr: Gvr) -> Result<ResourceDef, ApiError> {
        resources::find(&self.resources, gvr.group, gvr.version, gvr.resource)
            .copied()
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "NotFound",
                    format!("the server does not serve {gvr:?}"),
                )
            })
    }
}

/// A running test API server; it stops when dropped.
pub struct KubeApiServer {
    shared: Arc<Shared>,
    shutdown: Mutex<Option<oneshot::Sender<()>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// Accepts connections until told to stop, then closes the listener and every connection.
async fn serve(listener: TcpListener, shared: Arc<Shared>, mut shutdown: oneshot::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let shared = shared.clone();
                    connections.spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            http::handle(shared.clone(), req)
                        });
                        if let Err(e) = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                        {
                            tracing::debug!("kube test API connection: {e}");
                        }
                    });
                }
                Err(e) => tracing::warn!("kube test API accept: {e}"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections.shutdown().await;
}

impl KubeApiServer {
    /// Starts a server on 127.0.0.1 (a free port) with default options; it answers as soon as
    /// this returns.
    pub async fn start() -> Result<Self, ServerError> {
        Self::start_with(ServerOptions::default()).await
    }

    /// Starts a server with `options`.
    pub async fn start_with(options: ServerOptions) -> Result<Self, ServerError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(ServerError::Bind)?;
        let addr = listener.local_addr().map_err(ServerError::Bind)?;
        let resources = resources::table(options.prowjob_status_subresource);
        let namespaces = resources::find(&resources, "", "v1", "namespaces")
            .copied()
            .ok_or_else(|| ServerError::Bind(std::io::Error::other("no namespaces resource")))?;
        let shared = Arc::new(Shared {
            resources,
            state: Mutex::new(State::new(options.history_limit, namespaces)),
            token: uuid::Uuid::new_v4().simple().to_string(),
            addr,
            bookmark_interval: options.bookmark_interval,
        });
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(serve(listener, shared.clone(), rx));
        Ok(KubeApiServer {
            shared,
            shutdown: Mutex::new(Some(tx)),
            task: Mutex::new(Some(task)),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The bearer token clients must present.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// A kubeconfig with one cluster, user and context, all named `context`, pointing at this
    /// server with its token (default namespace `default`).
    pub fn kubeconfig_yaml(&self, context: &str) -> String {
        let ctx = serde_json::to_string(context).unwrap_or_default();
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {ctx}\n  cluster:\n    server: {url}\n\
             users:\n- name: {ctx}\n  user:\n    token: {token}\n\
             contexts:\n- name: {ctx}\n  context:\n    cluster: {ctx}\n    user: {ctx}\n    namespace: default\n\
             current-context: {ctx}\n",
            url = self.url(),
            token = self.shared.token,
        )
    }

    /// Writes [`Self::kubeconfig_yaml`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path, context: &str) -> Result<(), ServerError> {
        std::fs::write(path, self.kubeconfig_yaml(context)).map_err(|source| {
            ServerError::WriteKubeconfig {
                path: path.to_path_buf(),
                source,
            }
        })
    }

    /// A kube client for this server, built from its kubeconfig through
    /// `kube::Config::from_custom_kubeconfig` (as bosun builds its clients).
    pub async fn kube_client(&self) -> Result<kube::Client, ServerError> {
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&self.kubeconfig_yaml("test"))?;
        client_from(kubeconfig, "test").await
    }

    /// A kube client from a kubeconfig file and context (e.g. one written by
    /// [`Self::write_kubeconfig`]).
    pub async fn client_from_kubeconfig(
        path: &Path,
        context: &str,
    ) -> Result<kube::Client, ServerError> {
        let kubeconfig = kube::config::Kubeconfig::read_from(path)?;
        client_from(kubeconfig, context).await
    }

    /// Stops answering: closes the listener and every open connection (watches and log
    /// streams end). Clients then get connection errors, as from an unreachable cluster.
    pub async fn stop(&self) {
        let shutdown = self
            .shutdown
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(tx) = shutdown {
            // The accept loop may already be gone; then there is nothing left to stop.
            let _ = tx.send(());
        }
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task
            && let Err(e) = task.await
        {
            tracing::warn!("kube test API server task: {e}");
        }
    }

    /// The current (global) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().resource_version()
    }

    /// An object, if it exists (`ns` is ignored for cluster-scoped resources).
    pub fn get(&self, gvr: Gvr, ns: &str, name: &str) -> Option<Value> {
        let res = self.shared.resource(gvr).ok()?;
        self.shared.lock().get(&res, ns, name).ok()
    }

    /// The objects of a resource, in one namespace or (`None`) all.
    pub fn list(&self, gvr: Gvr, ns: Option<&str>) -> Vec<Value> {
        let Ok(res) = self.shared.resource(gvr) else {
            return Vec::new();
        };
        let list = self
            .shared
            .lock()
            .list(&res, ns, &Default::default(), None, None);
        list.ok()
            .and_then(|mut l| l.get_mut("items").map(Value::take))
            .and_then(|items| match items {
                Value::Array(items) => Some(items),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// Creates an object as a POST would.
    pub fn create(&self, gvr: Gvr, ns: &str, object: Value) -> Result<Value, ApiError> {
        let res = self.shared.resource(gvr)?;
        self.shared.lock().create(&res, ns, object)
    }

    /// Applies a JSON merge patch to a whole object (status included, whatever the
    /// subresources), as a controller with full access would.
    pub fn merge_patch(
        &self,
        gvr: Gvr,
        ns: &str,
        name: &str,
        patch: &Value,
    ) -> Result<Value, ApiError> {
        let res = self.shared.resource(gvr)?;
        let mut state = self.shared.lock();
        let mut obj = state.get(&res, ns, name)?;
        patch::merge_patch(&mut obj, patch);
        state.write(&res, ns, name, obj, Part::Whole)
    }

    /// Merges `status_patch` (a JSON merge patch) into the object's `.status`, as the
    /// kubelet or the Tekton controller would.
    pub fn patch_status(
        &self,
        gvr: Gvr,
        ns: &str,
        name: &str,
        status_patch: &Value,
    ) -> Result<Value, ApiError> {
        self.merge_patch(
            gvr,
            ns,
            name,
            &serde_json::json!({ "status": status_patch }),
        )
    }

    /// Plays kubelet: sets `status.phase` (Pending, Running, Succeeded, Failed) with matching
    /// container statuses. Running makes the containers' logs readable; Succeeded and Failed
    /// end them (log followers get end of stream).
    pub fn set_pod_phase(&self, ns: &str, name: &str, phase: &str) -> Result<Value, ApiError> {
        let pods = self.shared.resource(Gvr::PODS)?;
        self.shared.lock().set_pod_phase(&pods, ns, name, phase)
    }

    /// Deletes an object as a DELETE would (objects with finalizers get a deletionTimestamp).
    pub fn delete(&self, gvr: Gvr, ns: &str, name: &str) -> Result<(), ApiError> {
        let res = self.shared.resource(gvr)?;
        self.shared
            .lock()
            .delete(&res, ns, name, &Value::Null)
            .map(|_| ())
    }

    /// Appends output to a container's log.
    pub fn append_log(&self, ns: &str, pod: &str, container: &str, bytes: &[u8]) {
        self.shared
            .lock()
            .append_log((ns.into(), pod.into(), container.into()), bytes);
    }

    /// Marks a container's log complete: followers get end of stream.
    pub fn finish_log(&self, ns: &str, pod: &str, container: &str) {
        self.shared
            .lock()
            .finish_log((ns.into(), pod.into(), container.into()));
    }

    /// Compacts the watch history, like etcd compaction: a watch or continue token from any
    /// earlier resourceVersion gets 410 Gone, and every open watch ends with an ERROR 410
    /// event (clients must re-list).
    pub fn compact(&self) {
        self.shared.lock().compact();
    }

    /// Every authenticated resource request so far, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().requests.clone()
    }

    /// How many requests with `verb` on `gvr` (any subresource) arrived.
    pub fn request_count(&self, verb: Verb, gvr: Gvr) -> usize {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.verb == verb && r.gvr == gvr)
            .count()
    }

    /// Makes the next request with `verb` on `gvr` fail with `code` (and the apiserver's
    /// reason for it) without touching any object. Calls queue up. Note that the kube client
    /// retries 429, 503 and 504 by itself.
    pub fn fail_next(&self, verb: Verb, gvr: Gvr, code: u16) {
        self.shared
            .lock()
            .failures
            .push_back(Injected { verb, gvr, code });
    }
}

async fn client_from(
    kubeconfig: kube::config::Kubeconfig,
    context: &str,
) -> Result<kube::Client, ServerError> {
    let options = kube::config::KubeConfigOptions {
        context: Some(context.to_string()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?;
    Ok(kube::Client::try_from(config)?)
}

impl Drop for KubeApiServer {
    fn drop(&mut self) {
        let task = self
            .task
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            task.abort();
        }
    }
}
