//! Client commands: talk to a running gateway over gRPC.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use bosun_proto::api::job_gateway_client::JobGatewayClient;
use bosun_proto::api::{
    AbortRequest, GetRequest, ListRequest, LogsRequest, Pull, Refs, RerunRequest, SubmitRequest,
    TriggerRequest, WatchRequest, watch_event,
};
use clap::Args;
use futures::StreamExt;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::transport::Channel;

use super::output::{self, OutputFormat, decode, print_jobs};
use super::{ClientArgs, JobTypeArg};

/// Adds the bearer token to every call.
#[derive(Clone)]
pub struct TokenInterceptor(Option<MetadataValue<tonic::metadata::Ascii>>);

impl Interceptor for TokenInterceptor {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// A connected client.
pub type Client =
    JobGatewayClient<tonic::service::interceptor::InterceptedService<Channel, TokenInterceptor>>;

/// Connects to `server` (host:port or a URL).
pub async fn connect(server: &str, token: Option<&str>) -> anyhow::Result<Client> {
    let url = if server.contains("://") {
        server.to_owned()
    } else {
        format!("http://{server}")
    };
    let channel = Channel::from_shared(url.clone())
        .with_context(|| format!("invalid server address {server:?}"))?
        .connect()
        .await
        .with_context(|| {
            format!("cannot reach the bosun gateway at {server} (is `bosun serve` running?)")
        })?;
    let token = match token {
        Some(t) => Some(format!("Bearer {t}").parse().map_err(|_| {
            anyhow::anyhow!("the token contains characters not allowed in a header")
        })?),
        None => None,
    };
    Ok(
        JobGatewayClient::with_interceptor(channel, TokenInterceptor(token))
            .max_decoding_message_size(64 << 20),
    )
}

async fn client(args: &ClientArgs) -> anyhow::Result<Client> {
    connect(&args.server, args.token.as_deref()).await
}

fn status_err(e: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{} ({:?})", e.message(), e.code())
}

pub(super) fn read_input(file: &Path) -> anyhow::Result<String> {
    if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading stdin")?;
        Ok(s)
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
    }
}

pub(super) async fn submit(
    args: &ClientArgs,
    file: &Path,
    key: Option<String>,
) -> anyhow::Result<ExitCode> {
    let text = read_input(file)?;
    // Validate locally first for an error that names the file.
    bosun_proto::parse::parse_prowjob(&text, &file.display().to_string())?;
    let mut c = client(args).await?;
    let resp = c
        .submit(SubmitRequest {
            prowjob: text,
            idempotency_key: key.unwrap_or_default(),
        })
        .await
        .map_err(status_err)?
        .into_inner();
    let job = resp.job.context("gateway returned no job")?;
    if args.output == OutputFormat::Table {
        let verb = if resp.existing {
            "existing"
        } else {
            "submitted"
        };
        println!("{verb} {}", job.name);
    } else {
        print_jobs(&[job], args.output)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `bosun trigger` options.
#[derive(Debug, Args)]
pub struct TriggerArgs {
    /// Configured job name.
    pub job: String,
    /// Job type.
    #[arg(long = "type", value_enum, default_value = "periodic")]
    job_type: JobTypeArg,
    /// Repository org (presubmit/postsubmit/batch).
    #[arg(long)]
    org: Option<String>,
    /// Repository name.
    #[arg(long)]
    repo: Option<String>,
    /// Base branch.
    #[arg(long)]
    base_ref: Option<String>,
    /// Base commit.
    #[arg(long)]
    base_sha: Option<String>,
    /// Pull request as NUMBER:SHA[:AUTHOR], repeatable.
    #[arg(long = "pull")]
    pulls: Vec<String>,
    /// Clone URL override.
    #[arg(long)]
    clone_uri: Option<String>,
    /// Extra env for the test containers, KEY=VALUE, repeatable.
    #[arg(long = "env")]
    env: Vec<String>,
    /// Extra label, KEY=VALUE, repeatable.
    #[arg(long = "label")]
    labels: Vec<String>,
    /// Extra annotation, KEY=VALUE, repeatable.
    #[arg(long = "annotation")]
    annotations: Vec<String>,
    /// Idempotency key.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Run on this agent instead of the configured one.
    #[arg(long)]
    agent: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

pub(super) fn parse_kv(items: &[String], what: &str) -> anyhow::Result<HashMap<String, String>> {
    items
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| anyhow::anyhow!("{what} {kv:?}: expected KEY=VALUE"))
        })
        .collect()
}

impl TriggerArgs {
    pub(super) fn request(&self) -> anyhow::Result<TriggerRequest> {
        let refs = if self.org.is_some() || self.repo.is_some() {
            let pulls = self
                .pulls
                .iter()
                .map(|p| {
                    let mut parts = p.splitn(3, ':');
                    let number = parts.next().and_then(|n| n.parse().ok()).ok_or_else(|| {
                        anyhow::anyhow!("--pull {p:?}: expected NUMBER:SHA[:AUTHOR]")
                    })?;
                    Ok(Pull {
                        number,
                        sha: parts.next().unwrap_or_default().to_owned(),
                        author: parts.next().unwrap_or_default().to_owned(),
                        ..Default::default()
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Some(Refs {
                org: self.org.clone().unwrap_or_default(),
                repo: self.repo.clone().unwrap_or_default(),
                base_ref: self.base_ref.clone().unwrap_or_default(),
                base_sha: self.base_sha.clone().unwrap_or_default(),
                clone_uri: self.clone_uri.clone().unwrap_or_default(),
                pulls,
                ..Default::default()
            })
        } else {
            None
        };
        Ok(TriggerRequest {
            job: self.job.clone(),
            r#type: bosun_proto::ProwJobType::from(self.job_type).to_string(),
            refs,
            env: parse_kv(&self.env, "--env")?,
            labels: parse_kv(&self.labels, "--label")?,
            annotations: parse_kv(&self.annotations, "--annotation")?,
            idempotency_key: self.idempotency_key.clone().unwrap_or_default(),
            agent: self.agent.clone().unwrap_or_default(),
        })
    }
}

pub(super) async fn trigger(args: TriggerArgs) -> anyhow::Result<ExitCode> {
    let req = args.request()?;
    let mut c = client(&args.client).await?;
    let resp = c.trigger(req).await.map_err(status_err)?.into_inner();
    let job = resp.job.context("gateway returned no job")?;
    if args.client.output == OutputFormat::Table {
        println!("triggered {}", job.name);
    } else {
        print_jobs(&[job], args.client.output)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn get(args: &ClientArgs, name: &str) -> anyhow::Result<ExitCode> {
    let mut c = client(args).await?;
    let job = c
        .get(GetRequest { name: name.into() })
        .await
        .map_err(status_err)?
        .into_inner();
    print_jobs(&[job], args.output)?;
    Ok(ExitCode::SUCCESS)
}

/// `bosun list` options.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this job name (spec.job).
    #[arg(long)]
    job: Option<String>,
    /// Only this state.
    #[arg(long)]
    state: Option<String>,
    /// Only this type.
    #[arg(long = "type")]
    job_type: Option<String>,
    /// Only this agent.
    #[arg(long)]
    agent: Option<String>,
    /// Only this cluster.
    #[arg(long)]
    cluster: Option<String>,
    /// Only this org.
    #[arg(long)]
    org: Option<String>,
    /// Only this repo.
    #[arg(long)]
    repo: Option<String>,
    /// Only this pull number.
    #[arg(long)]
    pull: Option<i64>,
    /// Label KEY=VALUE that must match, repeatable.
    #[arg(long = "label")]
    labels: Vec<String>,
    /// At most this many jobs (0 = all).
    #[arg(long, default_value_t = 0)]
    limit: usize,
    #[command(flatten)]
    client: ClientArgs,
}

pub(super) async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let mut c = client(&args.client).await?;
    let mut jobs = Vec::new();
    let mut token = String::new();
    loop {
        let resp = c
            .list(ListRequest {
                job: args.job.clone().unwrap_or_default(),
                r#type: args.job_type.clone().unwrap_or_default(),
                state: args.state.clone().unwrap_or_default(),
                agent: args.agent.clone().unwrap_or_default(),
                cluster: args.cluster.clone().unwrap_or_default(),
                org: args.org.clone().unwrap_or_default(),
                repo: args.repo.clone().unwrap_or_default(),
                pull: args.pull.unwrap_or(0),
                labels: parse_kv(&args.labels, "--label")?,
                page_size: 500,
                page_token: token,
            })
            .await
            .map_err(status_err)?
            .into_inner();
        jobs.extend(resp.jobs);
        if resp.next_page_token.is_empty() || (args.limit > 0 && jobs.len() >= args.limit) {
            break;
        }
        token = resp.next_page_token;
    }
    if args.limit > 0 {
        jobs.truncate(args.limit);
    }
    print_jobs(&jobs, args.client.output)?;
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn watch(
    args: &ClientArgs,
    name: Option<String>,
    job: Option<String>,
) -> anyhow::Result<ExitCode> {
    let mut c = client(args).await?;
    let mut stream = c
        .watch(WatchRequest {
            from_revision: 0,
            name: name.unwrap_or_default(),
            job: job.unwrap_or_default(),
        })
        .await
        .map_err(status_err)?
        .into_inner();
    while let Some(ev) = stream.next().await {
        let ev = ev.map_err(status_err)?;
        let Some(job) = ev.job else { continue };
        match args.output {
            OutputFormat::Table => {
                let pj = decode(&job)?;
                let kind = watch_event::Kind::try_from(ev.kind)
                    .map(|k| k.as_str_name().to_ascii_lowercase())
                    .unwrap_or_default();
                let desc = pj
                    .status
                    .as_ref()
                    .map(|s| s.description.as_str())
                    .unwrap_or("");
                println!(
                    "{:<8} {}  {}  {}  {}",
                    kind,
                    job.name,
                    pj.spec.job,
                    output::state_text(pj.state()),
                    desc
                );
            }
            other => print_jobs(&[job], other)?,
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn logs(args: &ClientArgs, name: &str, follow: bool) -> anyhow::Result<ExitCode> {
    let mut c = client(args).await?;
    stream_logs(&mut c, name, follow).await?;
    Ok(ExitCode::SUCCESS)
}

/// Copies a job's log to stdout.
pub async fn stream_logs(c: &mut Client, name: &str, follow: bool) -> anyhow::Result<()> {
    let mut stream = c
        .logs(LogsRequest {
            name: name.into(),
            follow,
        })
        .await
        .map_err(status_err)?
        .into_inner();
    let mut out = std::io::stdout();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(status_err)?;
        out.write_all(&chunk.data)?;
        out.flush()?;
    }
    Ok(())
}

pub(super) async fn abort(args: &ClientArgs, name: &str, reason: &str) -> anyhow::Result<ExitCode> {
    let mut c = client(args).await?;
    let job = c
        .abort(AbortRequest {
            name: name.into(),
            reason: reason.into(),
        })
        .await
        .map_err(status_err)?
        .into_inner();
    if args.output == OutputFormat::Table {
        println!("aborting {}", job.name);
    } else {
        print_jobs(&[job], args.output)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn rerun(args: &ClientArgs, name: &str) -> anyhow::Result<ExitCode> {
    let mut c = client(args).await?;
    let resp = c
        .rerun(RerunRequest {
            name: name.into(),
            idempotency_key: String::new(),
        })
        .await
        .map_err(status_err)?
        .into_inner();
    let Some(job) = resp.job else {
        bail!("gateway returned no job");
    };
    if args.output == OutputFormat::Table {
        println!("rerun {} as {}", name, job.name);
    } else {
        print_jobs(&[job], args.output)?;
    }
    Ok(ExitCode::SUCCESS)
}
