//! Assembling and running a gateway: store, agents, dispatcher, gRPC and HTTP servers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bosun_agents::AgentRegistry;
use bosun_agents::artifacts::Artifacts;
use bosun_agents::jenkins::{JenkinsAgent, JenkinsSettings};
use bosun_agents::kubernetes::{BuildClusters, KubernetesAgent, KubernetesAgentConfig};
use bosun_agents::local::{LocalAgent, LocalAgentConfig};
use bosun_agents::tekton::{TektonAgent, TektonAgentConfig};
use bosun_gateway_store::{JobStore, SqliteJobStore};
use bosun_proto::api::job_gateway_server::JobGatewayServer;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::cli::ServeArgs;
use crate::dispatcher::{Dispatcher, DispatcherConfig};
use crate::grpc::{BearerAuth, GatewayService};
use crate::metrics::Metrics;
use crate::supervisor::{CriticalExit, Supervisor};
use crate::trigger::Triggerer;
use crate::triggers::github_trigger::GitHubTrigger;
use crate::triggers::hook::Hook;
use crate::triggers::horologium::Horologium;
use crate::triggers::plugins::PluginConfig;
use crate::triggers::reload::Reloader;
use crate::triggers::sinker::Sinker;
use crate::triggers::{ConfigHandle, Live, TriggerContext};

/// Everything needed to start a gateway.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// gRPC listen address (port 0 picks a free one).
    pub grpc_addr: String,
    /// HTTP listen address.
    pub http_addr: Option<String>,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Prow config.yaml.
    pub config_path: Option<PathBuf>,
    /// Job config path.
    pub job_config_path: Option<PathBuf>,
    /// Accepted bearer tokens (empty = no auth).
    pub tokens: Vec<String>,
    /// Kubeconfig files for build clusters.
    pub kubeconfigs: Vec<PathBuf>,
    /// Also register the zero-cost `noop` agent (benchmarks).
    pub noop_agent: bool,
    /// What starts jobs by itself (webhooks, periodics, sinker, config reload); `None` for a
    /// gateway that only runs what it is given (`bosun run`).
    pub triggers: Option<TriggerOptions>,
}

/// The self-starting parts of a long-running gateway.
#[derive(Debug, Clone, Default)]
pub struct TriggerOptions {
    /// GitHub webhook secret file; `/hook` is served when set (needs the HTTP server and
    /// GitHub credentials under `bosun.reporters.github`).
    pub hmac_secret_file: Option<PathBuf>,
    /// Prow's plugins.yaml (which repositories have the trigger, and its settings).
    pub plugin_config: Option<PathBuf>,
}

/// A started gateway.
pub struct RunningGateway {
    /// Where gRPC listens.
    pub grpc_addr: SocketAddr,
    /// Where HTTP listens.
    pub http_addr: Option<SocketAddr>,
    /// The dispatcher.
    pub dispatcher: Dispatcher,
    supervisor: Supervisor,
    critical: mpsc::UnboundedReceiver<CriticalExit>,
    _lock: DataDirLock,
}

/// The default data directory: `$BOSUN_DATA_DIR`, else `$XDG_DATA_HOME/bosun`, else
/// `~/.local/share/bosun`.
pub fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("bosun");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".local/share/bosun");
    }
    PathBuf::from("bosun-data")
}

/// An exclusive lock on the data directory, so two gateways never run the same jobs.
struct DataDirLock {
    _file: nix::fcntl::Flock<std::fs::File>,
}

fn lock_data_dir(dir: &Path) -> anyhow::Result<DataDirLock> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating data directory {}", dir.display()))?;
    let path = dir.join("bosun.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let file = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
        anyhow::anyhow!(
            "data directory {} is in use by another bosun gateway ({e}); stop it, use --server to talk to it, or pick another --data-dir",
            dir.display()
        )
    })?;
    Ok(DataDirLock { _file: file })
}

async fn bind(addr: &str, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for {what} on {addr}"))
}

/// Starts a gateway. Returns once both servers listen and the dispatcher runs.
pub async fn start(opts: GatewayOptions) -> anyhow::Result<RunningGateway> {
    let lock = lock_data_dir(&opts.data_dir)?;
    let data_dir = std::fs::canonicalize(&opts.data_dir).unwrap_or(opts.data_dir.clone());

    // Taken before the files are read: a change made while the gateway starts is applied by
    // the reloader once its watch is in place.
    let config_fingerprint = opts.config_path.as_deref().map(|path| {
        crate::triggers::reload::fingerprint(
            path,
            opts.job_config_path.as_deref(),
            opts.triggers
                .as_ref()
                .and_then(|t| t.plugin_config.as_deref()),
        )
    });
    let config = ConfigHandle::new(match &opts.config_path {
        Some(path) => Some(crate::check_config::load_or_report(
            path,
            opts.job_config_path.as_deref(),
        )?),
        None => None,
    });
    let loaded = config.current();
    let dispatcher_config = loaded
        .as_deref()
        .map(crate::trigger::dispatcher_config)
        .unwrap_or_default();
    let namespace = loaded
        .as_deref()
        .map(crate::trigger::prowjob_namespace)
        .unwrap_or_else(|| "default".to_owned());
    let reporter_settings = match loaded.as_deref() {
        Some(config) => bosun_reporters::ReporterSettings::from_bosun(&config.prow().bosun)
            .context("reading bosun.reporters")?,
        None => bosun_reporters::ReporterSettings::default(),
    };

    let store: Arc<dyn JobStore> = Arc::new(
        SqliteJobStore::open_in_dir(&data_dir)
            .await
            .with_context(|| format!("opening the job store in {}", data_dir.display()))?,
    );

    let grpc_listener = bind(&opts.grpc_addr, "gRPC").await?;
    let grpc_addr = grpc_listener.local_addr()?;
    let http_listener = match &opts.http_addr {
        Some(a) => Some(bind(a, "HTTP").await?),
        None => None,
    };
    let http_addr = match &http_listener {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };

    let artifacts_dir = data_dir.join("artifacts");
    std::fs::create_dir_all(&artifacts_dir)
        .with_context(|| format!("creating {}", artifacts_dir.display()))?;
    let url_base = match http_addr {
        Some(a) => format!("http://{a}/artifacts"),
        None => format!("file://{}", artifacts_dir.display()),
    };
    let artifacts = Artifacts::local_dir(&artifacts_dir, url_base)
        .with_context(|| format!("opening artifact storage {}", artifacts_dir.display()))?;

    let clusters = BuildClusters::load(&opts.kubeconfigs, &[])
        .await
        .context("loading build clusters")?;
    let kube_config = KubernetesAgentConfig {
        pod_namespace: loaded
            .as_ref()
            .map(|l| l.prow().pod_namespace.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into()),
        pod_unscheduled_timeout: loaded
            .as_ref()
            .and_then(|l| l.prow().plank.pod_unscheduled_timeout)
            .map(|d| d.get())
            .unwrap_or(Duration::from_secs(5 * 60)),
    };

    let exe = std::env::current_exe().context("locating the bosun executable")?;
    let mut agents = AgentRegistry::new();
    agents.register(Arc::new(LocalAgent::new(LocalAgentConfig::new(
        data_dir.join("work"),
        vec![
            exe.display().to_string(),
            "podutils".into(),
            "entrypoint".into(),
        ],
        artifacts.clone(),
    ))));
    agents.register(Arc::new(TektonAgent::new(
        clusters.clone(),
        TektonAgentConfig {
            pod_namespace: kube_config.pod_namespace.clone(),
            artifacts: Some(artifacts.clone()),
        },
    )));
    agents.register(Arc::new(KubernetesAgent::new(
        clusters.clone(),
        kube_config,
    )));
    // Always registered: without bosun.jenkins, jenkins jobs end in error saying so.
    let jenkins = match &loaded {
        Some(l) => JenkinsSettings::from_bosun_value(l.prow().bosun.jenkins.as_ref())?,
        None => None,
    };
    agents.register(Arc::new(
        JenkinsAgent::from_settings(jenkins.as_ref(), Some(artifacts.clone()))
            .context("configuring the jenkins agent")?,
    ));
    // Always registered: the engine is only contacted when a docker job starts, so a Docker
    // that is down makes those jobs wait (retried with backoff, reason in the description).
    agents.register(Arc::new(bosun_agents::docker::DockerAgent::new(
        bosun_agents::docker::DockerAgentConfig::new(
            data_dir.join("docker"),
            None,
            artifacts.clone(),
        ),
    )));

    if opts.noop_agent {
        agents.register(Arc::new(bosun_agents::noop::NoopAgent));
    }

    let (supervisor, critical) = Supervisor::new();
    let metrics = Metrics::default();
    let registry = agents.clone();
    let (dispatcher, dispatcher_loop) = Dispatcher::new(
        store.clone(),
        agents,
        Some(artifacts),
        DispatcherConfig {
            ..dispatcher_config
        },
        supervisor.clone(),
        metrics.clone(),
    );
    supervisor.spawn_critical("dispatcher", dispatcher_loop.run());
    if !clusters.is_empty() {
        let clusters = clusters.clone();
        let shutdown = supervisor.shutdown_token();
        supervisor.spawn_critical("cluster-health", async move {
            loop {
                clusters.check_health(Duration::from_secs(5)).await;
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok::<(), std::convert::Infallible>(()),
                    // Health-check interval; /readyz also checks on demand.
                    _ = tokio::time::sleep(Duration::from_secs(15)) => {}
                }
            }
        });
    }

    let reporter_metrics = match loaded.as_deref() {
        Some(config) => {
            let settings = &reporter_settings;
            let reporters = bosun_reporters::reporters_from_config_with_store(
                config.prow(),
                settings,
                Some(store.clone()),
            )
            .context("configuring reporters")?;
            if reporters.is_empty() {
                None
            } else {
                let names: Vec<String> = reporters.iter().map(|r| r.name().to_owned()).collect();
                tracing::info!(reporters = ?names, "reporting job state changes");
                let crier =
                    bosun_reporters::Crier::new(store.clone(), reporters, settings.crier.options());
                let metrics = crier.metrics();
                let shutdown = supervisor.shutdown_token();
                supervisor.spawn_critical("crier", async move {
                    crier.run(shutdown).await;
                    Ok::<(), std::convert::Infallible>(())
                });
                Some(metrics)
            }
        }
        None => None,
    };

    let hook_router = match &opts.triggers {
        Some(triggers) => start_triggers(
            &opts,
            triggers,
            registry,
            TriggerContext {
                store: store.clone(),
                dispatcher: dispatcher.clone(),
                config: config.clone(),
                supervisor: supervisor.clone(),
                data_dir: data_dir.clone(),
                namespace: namespace.clone(),
                metrics: metrics.clone(),
            },
            &reporter_settings,
            http_listener.is_some(),
            config_fingerprint.unwrap_or_default(),
        )?,
        None => None,
    };

    let triggerer = Arc::new(Triggerer::new(config.clone()));
    let service = GatewayService::new(
        dispatcher.clone(),
        triggerer,
        metrics.clone(),
        namespace,
        supervisor.shutdown_token(),
    );
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<JobGatewayServer<GatewayService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(bosun_proto::api::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building gRPC reflection")?;
    let auth = BearerAuth::new(opts.tokens.clone());
    let grpc = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(tonic::service::interceptor::InterceptedService::new(
            JobGatewayServer::new(service).max_decoding_message_size(8 << 20),
            auth,
        ));
    let shutdown = supervisor.shutdown_token();
    supervisor.spawn_critical("grpc-server", async move {
        // TCP_NODELAY: without it a unary answer written in two frames waits for the
        // client's delayed ACK (~40 ms per call on Linux).
        grpc.serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(grpc_listener).with_nodelay(Some(true)),
            shutdown.cancelled_owned(),
        )
        .await
    });

    if let Some(listener) = http_listener {
        let mut app = crate::http::router(
            store.clone(),
            metrics.clone(),
            artifacts_dir.clone(),
            clusters.clone(),
            reporter_metrics.clone(),
        );
        if let Some(hook) = hook_router {
            app = app.merge(hook);
        }
        let shutdown = supervisor.shutdown_token();
        supervisor.spawn_critical("http-server", async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
        });
    }

    tracing::info!(%grpc_addr, http_addr = ?http_addr, data_dir = %data_dir.display(), "bosun gateway started");
    Ok(RunningGateway {
        grpc_addr,
        http_addr,
        dispatcher,
        supervisor,
        critical,
        _lock: lock,
    })
}

/// Starts what makes jobs start by themselves: periodics (when there is a config) and, with
/// a webhook secret, the GitHub hook (whose routes are returned for the HTTP server).
fn start_triggers(
    gateway: &GatewayOptions,
    opts: &TriggerOptions,
    agents: AgentRegistry,
    ctx: TriggerContext,
    reporter_settings: &bosun_reporters::ReporterSettings,
    http_enabled: bool,
    config_fingerprint: crate::triggers::reload::Fingerprint,
) -> anyhow::Result<Option<axum::Router>> {
    let plugins = match &opts.plugin_config {
        Some(path) => Live::new(Some(
            PluginConfig::load(path).context("loading --plugin-config")?,
        )),
        None => Live::new(None),
    };
    if ctx.config.current().is_some() {
        let horologium = Arc::new(Horologium::new(ctx.creator(), ctx.config.clone()));
        let shutdown = ctx.supervisor.shutdown_token();
        ctx.supervisor.spawn_critical("horologium", async move {
            horologium.run(shutdown).await;
            Ok::<(), std::convert::Infallible>(())
        });
    }
    if ctx.config.current().is_some() {
        // Idles unless the config has `gerrit.org_repos_config` (a reload may add it).
        crate::triggers::gerrit::spawn(ctx.clone());
    }
    let sinker = Arc::new(Sinker::new(
        ctx.store.clone(),
        agents,
        ctx.config.clone(),
        ctx.metrics.clone(),
    ));
    let shutdown = ctx.supervisor.shutdown_token();
    ctx.supervisor.spawn_critical("sinker", async move {
        sinker.run(shutdown).await;
        Ok::<(), std::convert::Infallible>(())
    });
    if let Some(config_path) = &gateway.config_path {
        let reloader = Reloader {
            config_path: config_path.clone(),
            job_config_path: gateway.job_config_path.clone(),
            plugin_config: opts.plugin_config.clone(),
            config: ctx.config.clone(),
            plugins: plugins.clone(),
            dispatcher: ctx.dispatcher.clone(),
            metrics: ctx.metrics.clone(),
            loaded: config_fingerprint,
        };
        let shutdown = ctx.supervisor.shutdown_token();
        ctx.supervisor.spawn_critical("config-reload", async move {
            reloader.run(shutdown).await;
            Ok::<(), std::convert::Infallible>(())
        });
    }
    let Some(secret_file) = &opts.hmac_secret_file else {
        return Ok(None);
    };
    if !http_enabled {
        anyhow::bail!("--hmac-secret-file needs --http-addr: webhooks arrive on the HTTP server");
    }
    let github = reporter_settings.github.as_ref().context(
        "--hmac-secret-file needs GitHub credentials (bosun.reporters.github in config.yaml): the trigger reads pull requests, membership and statuses",
    )?;
    let client = bosun_reporters::github::GitHubClient::from_settings(github)
        .context("configuring the GitHub client for the trigger")?;
    let trigger = Arc::new(GitHubTrigger::new(ctx.clone(), Arc::new(client), plugins));
    let hook = Hook::start(
        secret_file.clone(),
        trigger,
        HOOK_WORKERS,
        &ctx.supervisor,
        ctx.metrics.clone(),
    )?;
    tracing::info!("GitHub webhooks accepted on /hook");
    Ok(Some(hook.router()))
}

/// Webhook workers (deliveries of one pull request always go to the same one).
const HOOK_WORKERS: usize = 4;

impl RunningGateway {
    /// Runs until SIGINT/SIGTERM or a critical task fails, then shuts down.
    pub async fn run_until_signal(mut self) -> anyhow::Result<()> {
        let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        let result = tokio::select! {
            _ = tokio::signal::ctrl_c() => { tracing::info!("interrupted; shutting down"); Ok(()) }
            _ = sigterm.recv() => { tracing::info!("terminated; shutting down"); Ok(()) }
            Some(exit) = self.critical.recv() => {
                Err(anyhow::anyhow!("{} stopped: {}", exit.name, exit.reason))
            }
        };
        self.shutdown().await;
        result
    }

    /// A critical failure, if one happened.
    pub async fn critical_failure(&mut self) -> Option<CriticalExit> {
        self.critical.recv().await
    }

    /// Stops the servers and the dispatcher; running workloads keep running and are
    /// re-attached by the next gateway on the same data directory.
    pub async fn shutdown(self) {
        self.supervisor.shutdown();
        if !self.supervisor.drain(Duration::from_secs(10)).await {
            tracing::warn!("some tasks did not stop within 10s");
        }
    }
}

/// `bosun serve`.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    crate::logging::init(&args.log);
    let tokens = match &args.token_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading token file {}", path.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect(),
        None => Vec::new(),
    };
    let mut kubeconfigs = args.kubeconfigs.clone();
    if let Some(dir) = &args.kubeconfig_dir {
        kubeconfigs.extend(
            bosun_agents::kubernetes::clusters::kubeconfigs_in_dir(
                dir,
                args.kubeconfig_suffix.as_deref(),
            )
            .context("reading --kubeconfig-dir")?,
        );
    }
    let gateway = start(GatewayOptions {
        kubeconfigs,
        grpc_addr: args.grpc_addr,
        http_addr: args.http_addr,
        data_dir: args.data_dir.unwrap_or_else(default_data_dir),
        config_path: args.config.config_path,
        job_config_path: args.config.job_config_path,
        tokens,
        noop_agent: args.noop_agent,
        triggers: Some(TriggerOptions {
            hmac_secret_file: args.hmac_secret_file,
            plugin_config: args.plugin_config,
        }),
    })
    .await?;
    eprintln!("bosun: gRPC on {}", gateway.grpc_addr);
    if let Some(h) = gateway.http_addr {
        eprintln!("bosun: HTTP on {h}");
    }
    gateway.run_until_signal().await
}
