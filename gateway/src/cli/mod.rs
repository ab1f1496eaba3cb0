//! The `bosun` command line.

mod client;
mod output;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use output::OutputFormat;

/// bosun: run Prow jobs anywhere.
#[derive(Debug, Parser)]
#[command(name = "bosun", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where a client command finds the gateway.
#[derive(Debug, Args, Clone)]
pub struct ClientArgs {
    /// Gateway gRPC address.
    #[arg(
        long,
        env = "BOSUN_SERVER",
        default_value = "127.0.0.1:7070",
        global = true
    )]
    pub server: String,
    /// Bearer token for the gateway, if it requires one.
    #[arg(long, env = "BOSUN_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table, global = true)]
    pub output: OutputFormat,
}

/// Where configuration comes from.
#[derive(Debug, Args, Clone, Default)]
pub struct ConfigArgs {
    /// Prow config.yaml.
    #[arg(long)]
    pub config_path: Option<PathBuf>,
    /// Job config file or directory.
    #[arg(long)]
    pub job_config_path: Option<PathBuf>,
}

/// `bosun serve` options.
#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// gRPC listen address.
    #[arg(long, env = "BOSUN_GRPC_ADDR", default_value = "127.0.0.1:7070")]
    pub grpc_addr: String,
    /// HTTP listen address (health, metrics, artifacts); off when unset.
    #[arg(long, env = "BOSUN_HTTP_ADDR")]
    pub http_addr: Option<String>,
    /// Data directory: the job store and, by default, logs and artifacts.
    #[arg(long, env = "BOSUN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Kubeconfig file whose contexts are build clusters (repeatable).
    #[arg(long = "kubeconfig")]
    pub kubeconfigs: Vec<PathBuf>,
    /// Directory of kubeconfig files; every context of every file is a build cluster.
    #[arg(long)]
    pub kubeconfig_dir: Option<PathBuf>,
    /// With --kubeconfig-dir: only files ending in this suffix.
    #[arg(long, requires = "kubeconfig_dir")]
    pub kubeconfig_suffix: Option<String>,
    /// File with bearer tokens (one per line) clients must present; none = no auth.
    #[arg(long, env = "BOSUN_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// GitHub webhook secret (one token, or Prow's YAML of tokens per org/repo); serves
    /// `/hook` on the HTTP server.
    #[arg(long, env = "BOSUN_HMAC_SECRET_FILE", requires = "http_addr")]
    pub hmac_secret_file: Option<PathBuf>,
    /// Prow's plugins.yaml: where the trigger plugin is enabled and its `triggers:` settings
    /// (without it, the trigger runs for every repository with jobs).
    #[arg(long, env = "BOSUN_PLUGIN_CONFIG")]
    pub plugin_config: Option<PathBuf>,
    /// Also serve `agent: noop` (every job succeeds at once; for benchmarks).
    #[arg(long, hide = true)]
    pub noop_agent: bool,
    /// Log filter (tracing env-filter syntax).
    #[arg(long, env = "BOSUN_LOG", default_value = "info")]
    pub log: String,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum JobTypeArg {
    Presubmit,
    Postsubmit,
    Periodic,
    Batch,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway: gRPC API, dispatcher, agents.
    Serve(ServeArgs),
    /// Run one job on an in-process gateway, stream its log, exit with its result
    /// (0 success, 1 job failed, 2 bosun error).
    Run(run::RunArgs),
    /// Submit a ProwJob (YAML or JSON file, `-` for stdin).
    Submit {
        /// The ProwJob file.
        file: PathBuf,
        /// Resubmitting with the same key returns the same job.
        #[arg(long)]
        idempotency_key: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Create a job from the gateway's job config.
    Trigger(client::TriggerArgs),
    /// Show one job.
    Get {
        /// Job (ProwJob) name.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List jobs.
    List(client::ListArgs),
    /// Follow job changes.
    Watch {
        /// Only this job (ProwJob name).
        name: Option<String>,
        /// Only jobs with this job name (spec.job).
        #[arg(long)]
        job: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print a job's build log.
    Logs {
        /// Job (ProwJob) name.
        name: String,
        /// Keep streaming until the job ends.
        #[arg(short, long)]
        follow: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Abort a job.
    Abort {
        /// Job (ProwJob) name.
        name: String,
        /// Why (shown in the job's description).
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Run a job again with the same spec.
    Rerun {
        /// Job (ProwJob) name.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Load and validate Prow configuration; report every problem.
    CheckConfig {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Print the Pod Prow would create for a ProwJob (YAML), like Prow's mkpod.
    Mkpod {
        /// The ProwJob file (YAML or JSON, `-` for stdin).
        file: PathBuf,
        /// Build id for the pod (default: the job's status.build_id).
        #[arg(long)]
        build_id: Option<String>,
        /// Local mode: the pod utilities copy logs and artifacts to this host directory
        /// (a hostPath volume) instead of uploading them.
        #[arg(long)]
        output_dir: Option<String>,
    },
    /// Pod utilities (clonerefs, entrypoint, ...), as `bosun-podutils`.
    #[command(hide = true)]
    Podutils {
        /// Tool name.
        tool: String,
    },
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Podutils { tool } = &cli.command {
        return bosun_agents::podutils::podutils_main(tool);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bosun: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(dispatch(cli.command))
}

async fn dispatch(command: Command) -> ExitCode {
    let result = match command {
        Command::Serve(args) => crate::serve::serve(args).await.map(|()| ExitCode::SUCCESS),
        Command::Run(args) => return run::run(args).await,
        Command::CheckConfig { config } => crate::check_config::check_config(&config),
        Command::Submit {
            file,
            idempotency_key,
            client,
        } => client::submit(&client, &file, idempotency_key).await,
        Command::Trigger(args) => client::trigger(args).await,
        Command::Get { name, client } => client::get(&client, &name).await,
        Command::List(args) => client::list(args).await,
        Command::Watch { name, job, client } => client::watch(&client, name, job).await,
        Command::Logs {
            name,
            follow,
            client,
        } => client::logs(&client, &name, follow).await,
        Command::Abort {
            name,
            reason,
            client,
        } => client::abort(&client, &name, &reason).await,
        Command::Rerun { name, client } => client::rerun(&client, &name).await,
        Command::Mkpod {
            file,
            build_id,
            output_dir,
        } => mkpod(&file, build_id, output_dir.as_deref()),
        Command::Podutils { .. } => Ok(ExitCode::from(2)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bosun: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `bosun mkpod`: the decorated pod for a ProwJob file (strictly parsed), as YAML on stdout.
fn mkpod(
    file: &std::path::Path,
    build_id: Option<String>,
    output_dir: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let text = client::read_input(file)?;
    let mut job = bosun_proto::parse::parse_prowjob(&text, &file.display().to_string())?;
    if let Some(build_id) = build_id {
        job.status_mut().build_id = build_id;
    }
    let pod = bosun_agents::kubernetes::decorate::prowjob_to_pod_local(
        &job,
        output_dir.unwrap_or_default(),
    )?;
    print!("{}", serde_yaml::to_string(&pod)?);
    Ok(ExitCode::SUCCESS)
}

impl From<JobTypeArg> for bosun_proto::ProwJobType {
    fn from(t: JobTypeArg) -> Self {
        match t {
            JobTypeArg::Presubmit => Self::Presubmit,
            JobTypeArg::Postsubmit => Self::Postsubmit,
            JobTypeArg::Periodic => Self::Periodic,
            JobTypeArg::Batch => Self::Batch,
        }
    }
}
