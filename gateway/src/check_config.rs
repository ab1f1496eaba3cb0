//! `bosun check-config`: load Prow configuration and report every problem.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use bosun_gateway_config::LoadedConfig;

use crate::cli::ConfigArgs;

/// Loads the configuration; on problems, an error listing all of them.
pub fn load_or_report(
    config_path: &Path,
    job_config_path: Option<&Path>,
) -> anyhow::Result<LoadedConfig> {
    let loaded = bosun_gateway_config::load(config_path, job_config_path)
        .map_err(|errors| anyhow::anyhow!("{errors}"))
        .with_context(|| format!("loading configuration from {}", config_path.display()))?;
    for w in loaded.warnings() {
        tracing::warn!("config: {w}");
    }
    Ok(loaded)
}

/// Runs the check; exit 0 when clean, 1 when there are problems.
pub fn check_config(args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let Some(config_path) = args.config_path.as_deref() else {
        anyhow::bail!("--config-path is required");
    };
    match bosun_gateway_config::load(config_path, args.job_config_path.as_deref()) {
        Ok(loaded) => {
            for w in loaded.warnings() {
                eprintln!("warning: {w}");
            }
            let bosun = &loaded.prow().bosun;
            let mut problems = Vec::new();
            if let Err(e) = bosun_reporters::ReporterSettings::from_bosun(bosun) {
                problems.push(e.to_string());
            }
            if let Err(e) =
                bosun_agents::jenkins::JenkinsSettings::from_bosun_value(bosun.jenkins.as_ref())
            {
                problems.push(e.to_string());
            }
            if !problems.is_empty() {
                for p in &problems {
                    eprintln!("error: {}: {p}", config_path.display());
                }
                let n = problems.len();
                eprintln!("{n} problem{} found", if n == 1 { "" } else { "s" });
                return Ok(ExitCode::from(1));
            }
            println!(
                "config OK: {} jobs ({} presubmits, {} postsubmits, {} periodics)",
                loaded.jobs().job_count(),
                loaded
                    .jobs()
                    .presubmits
                    .values()
                    .map(Vec::len)
                    .sum::<usize>(),
                loaded
                    .jobs()
                    .postsubmits
                    .values()
                    .map(Vec::len)
                    .sum::<usize>(),
                loaded.periodics().len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for w in &errors.warnings {
                eprintln!("warning: {w}");
            }
            for p in &errors.problems {
                eprintln!("error: {p}");
            }
            let n = errors.problems.len();
            eprintln!("{n} problem{} found", if n == 1 { "" } else { "s" });
            Ok(ExitCode::from(1))
        }
    }
}
