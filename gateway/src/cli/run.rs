//! `bosun run`: one job on an in-process gateway with the embedded defaults.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use bosun_proto::ProwJobState;
use bosun_proto::api::{AbortRequest, SubmitRequest, WatchRequest};
use clap::Args;
use futures::StreamExt;

use super::client::{connect, parse_kv, read_input, stream_logs};
use super::output::{decode, human_duration, state_text};
use super::{ConfigArgs, JobTypeArg};

/// `bosun run` options.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// ProwJob file (YAML or JSON, `-` for stdin).
    #[arg(required_unless_present = "job", conflicts_with = "job")]
    file: Option<PathBuf>,
    /// Run a configured job by name instead (needs --config-path).
    #[arg(long)]
    job: Option<String>,
    /// Type of the configured job.
    #[arg(long = "type", value_enum, default_value = "periodic")]
    job_type: JobTypeArg,
    /// Run on this agent instead of the job's own (e.g. `local` for a Prow kubernetes job).
    #[arg(long)]
    agent: Option<String>,
    /// Extra env for the job, KEY=VALUE, repeatable.
    #[arg(long = "env")]
    env: Vec<String>,
    /// Data directory (store, logs, artifacts).
    #[arg(long, env = "BOSUN_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    config: ConfigArgs,
    /// Log filter for the in-process gateway.
    #[arg(long, env = "BOSUN_LOG", default_value = "warn")]
    log: String,
}

/// Runs the job; exit code 0 success, 1 the job did not succeed, 2 bosun failed.
pub async fn run(args: RunArgs) -> ExitCode {
    match run_inner(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bosun: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run_inner(args: RunArgs) -> anyhow::Result<ExitCode> {
    crate::logging::init(&args.log);
    let mut prowjob = match &args.file {
        Some(file) => {
            let text = read_input(file)?;
            Some(bosun_proto::parse::parse_prowjob(
                &text,
                &file.display().to_string(),
            )?)
        }
        None => None,
    };
    if let (Some(pj), Some(file)) = (prowjob.as_mut(), &args.file) {
        resolve_relative_clone_uris(pj, file)?;
    }
    if let (Some(pj), Some(agent)) = (prowjob.as_mut(), &args.agent) {
        pj.spec.agent = agent.clone();
    }
    let env = parse_kv(&args.env, "--env")?;
    if let Some(pj) = prowjob.as_mut() {
        add_env(pj, &env);
    }

    let gateway = crate::serve::start(crate::serve::GatewayOptions {
        grpc_addr: "127.0.0.1:0".into(),
        http_addr: None,
        data_dir: args
            .data_dir
            .clone()
            .unwrap_or_else(crate::serve::default_data_dir),
        config_path: args.config.config_path.clone(),
        job_config_path: args.config.job_config_path.clone(),
        tokens: Vec::new(),
        kubeconfigs: Vec::new(),
        noop_agent: false,
        triggers: None,
    })
    .await?;
    let result = drive(&gateway, &args, prowjob, env).await;
    gateway.shutdown().await;
    result
}

/// `clone_uri: ".."` (or `./x`, `../x`) in a job file means a path relative to that file:
/// handy for running a job against a local checkout.
fn resolve_relative_clone_uris(
    pj: &mut bosun_proto::ProwJob,
    file: &std::path::Path,
) -> anyhow::Result<()> {
    let base = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let refs = pj.spec.refs.iter_mut().chain(pj.spec.extra_refs.iter_mut());
    for r in refs {
        let uri = r.clone_uri.as_str();
        if uri == "." || uri == ".." || uri.starts_with("./") || uri.starts_with("../") {
            let path = base.join(uri);
            let abs = std::fs::canonicalize(&path)
                .with_context(|| format!("clone_uri {uri:?}: {} does not exist", path.display()))?;
            r.clone_uri = abs.display().to_string();
        }
    }
    Ok(())
}

fn add_env(pj: &mut bosun_proto::ProwJob, env: &std::collections::HashMap<String, String>) {
    if let Some(spec) = pj.spec.pod_spec.as_mut() {
        for c in &mut spec.containers {
            let list = c.env.get_or_insert_with(Vec::new);
            for (k, v) in env {
                list.push(k8s_openapi::api::core::v1::EnvVar {
                    name: k.clone(),
                    value: Some(v.clone()),
                    ..Default::default()
                });
            }
        }
    }
}

async fn drive(
    gateway: &crate::serve::RunningGateway,
    args: &RunArgs,
    prowjob: Option<bosun_proto::ProwJob>,
    env: std::collections::HashMap<String, String>,
) -> anyhow::Result<ExitCode> {
    let mut client = connect(&gateway.grpc_addr.to_string(), None).await?;
    let name = match prowjob {
        Some(pj) => {
            let resp = client
                .submit(SubmitRequest {
                    prowjob: serde_json::to_string(&pj)?,
                    idempotency_key: String::new(),
                })
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message()))?
                .into_inner();
            resp.job.context("gateway returned no job")?.name
        }
        None => {
            let job = args.job.clone().unwrap_or_default();
            let mut req = bosun_proto::api::TriggerRequest {
                job,
                r#type: bosun_proto::ProwJobType::from(args.job_type).to_string(),
                env: env.into_iter().collect(),
                ..Default::default()
            };
            if let Some(agent) = &args.agent {
                req.agent = agent.clone();
            }
            let resp = client
                .trigger(req)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message()))?
                .into_inner();
            resp.job.context("gateway returned no job")?.name
        }
    };
    eprintln!("bosun: running job {name}");

    let mut log_client = client.clone();
    let log_name = name.clone();
    let logs = tokio::spawn(async move { stream_logs(&mut log_client, &log_name, true).await });

    let mut watch = client
        .watch(WatchRequest {
            from_revision: 0,
            name: name.clone(),
            job: String::new(),
        })
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message()))?
        .into_inner();
    let mut final_job = None;
    let mut aborting = false;
    loop {
        tokio::select! {
            ev = watch.next() => {
                let Some(ev) = ev else { break };
                let ev = ev.map_err(|e| anyhow::anyhow!("{}", e.message()))?;
                let Some(job) = ev.job else { continue };
                let pj = decode(&job)?;
                if pj.is_complete() {
                    final_job = Some(pj);
                    break;
                }
            }
            _ = tokio::signal::ctrl_c(), if !aborting => {
                aborting = true;
                eprintln!("bosun: interrupted; aborting {name}");
                let _ = client.abort(AbortRequest { name: name.clone(), reason: "interrupted".into() }).await;
            }
        }
    }
    // Let the log stream drain what the job wrote last.
    match tokio::time::timeout(Duration::from_secs(10), logs).await {
        Ok(Ok(Err(e))) => eprintln!("bosun: log stream: {e:#}"),
        Ok(Err(e)) => eprintln!("bosun: log stream task: {e}"),
        _ => {}
    }
    let Some(job) = final_job else {
        anyhow::bail!("lost track of job {name}");
    };
    let status = job.status.clone().unwrap_or_default();
    let took = match (&status.start_time, &status.completion_time) {
        (Some(s), Some(c)) => {
            human_duration(c.0.as_second().saturating_sub(s.0.as_second()).max(0) as u64)
        }
        _ => String::new(),
    };
    eprintln!(
        "bosun: job {} {} in {took}: {}",
        job.spec.job,
        state_text(status.state),
        status.description
    );
    if !status.url.is_empty() {
        eprintln!("bosun: logs and artifacts: {}", status.url);
    }
    Ok(if status.state == ProwJobState::Success {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
