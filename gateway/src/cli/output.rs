//! Human and machine output for client commands.

use std::io::IsTerminal;

use bosun_proto::api::Job;
use bosun_proto::{ProwJob, ProwJobState};
use clap::ValueEnum;

/// `-o` values.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// Aligned columns, state colours on a terminal.
    #[default]
    Table,
    /// One ProwJob JSON document per job (a JSON list for `list`).
    Json,
    /// ProwJob YAML documents.
    Yaml,
}

/// Decodes the ProwJob carried by a wire job.
pub fn decode(job: &Job) -> anyhow::Result<ProwJob> {
    serde_json::from_str(&job.prowjob_json)
        .map_err(|e| anyhow::anyhow!("gateway sent an unreadable job {}: {e}", job.name))
}

fn colour(state: ProwJobState) -> &'static str {
    match state {
        ProwJobState::Success => "\x1b[32m",
        ProwJobState::Failure | ProwJobState::Error => "\x1b[31m",
        ProwJobState::Aborted => "\x1b[33m",
        ProwJobState::Pending => "\x1b[36m",
        ProwJobState::Triggered | ProwJobState::Scheduling => "\x1b[2m",
    }
}

/// The state, coloured when stdout is a terminal.
pub fn state_text(state: ProwJobState) -> String {
    if std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        format!("{}{}\x1b[0m", colour(state), state)
    } else {
        state.to_string()
    }
}

fn age(job: &ProwJob) -> String {
    let Some(status) = job.status.as_ref() else {
        return String::new();
    };
    let Some(start) = status.start_time.as_ref() else {
        return String::new();
    };
    let end = status
        .completion_time
        .as_ref()
        .map(|t| t.0)
        .unwrap_or_else(k8s_openapi::jiff::Timestamp::now);
    let secs = end.as_second().saturating_sub(start.0.as_second()).max(0);
    human_duration(secs as u64)
}

/// `1h2m`, `3m4s`, `5s`.
pub fn human_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

fn row(job: &ProwJob) -> Vec<String> {
    let status = job.status.clone().unwrap_or_default();
    vec![
        job.name().to_owned(),
        job.spec.job.clone(),
        job.spec.r#type.to_string(),
        if job.spec.agent.is_empty() {
            "kubernetes".into()
        } else {
            job.spec.agent.clone()
        },
        status.state.to_string(),
        age(job),
        status.build_id.clone(),
        status.description.clone(),
    ]
}

/// Prints jobs in the chosen format.
pub fn print_jobs(jobs: &[Job], format: OutputFormat) -> anyhow::Result<()> {
    let decoded: Vec<ProwJob> = jobs.iter().map(decode).collect::<Result<_, _>>()?;
    match format {
        OutputFormat::Json => {
            if decoded.len() == 1 {
                println!("{}", serde_json::to_string_pretty(&decoded[0])?);
            } else {
                println!("{}", serde_json::to_string_pretty(&decoded)?);
            }
        }
        OutputFormat::Yaml => {
            for job in &decoded {
                print!("---\n{}", serde_yaml::to_string(job)?);
            }
        }
        OutputFormat::Table => {
            let header: Vec<String> = [
                "NAME",
                "JOB",
                "TYPE",
                "AGENT",
                "STATE",
                "AGE",
                "BUILD",
                "DESCRIPTION",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let rows: Vec<Vec<String>> = decoded.iter().map(row).collect();
            let mut widths: Vec<usize> = header.iter().map(String::len).collect();
            for r in &rows {
                for (i, cell) in r.iter().enumerate() {
                    widths[i] = widths[i].max(cell.chars().count());
                }
            }
            let print_row = |cells: &[String], state: Option<ProwJobState>| {
                let mut line = String::new();
                for (i, cell) in cells.iter().enumerate() {
                    let last = i + 1 == cells.len();
                    let pad = widths[i].saturating_sub(cell.chars().count());
                    if i == 4
                        && let Some(s) = state
                    {
                        line.push_str(&state_text(s));
                    } else {
                        line.push_str(cell);
                    }
                    if !last {
                        line.push_str(&" ".repeat(pad + 2));
                    }
                }
                println!("{}", line.trim_end());
            };
            print_row(&header, None);
            for (r, job) in rows.iter().zip(&decoded) {
                print_row(r, Some(job.state()));
            }
        }
    }
    Ok(())
}
