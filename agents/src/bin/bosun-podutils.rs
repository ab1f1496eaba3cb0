//! `bosun-podutils <tool>`: Prow's pod utilities (clonerefs, entrypoint, initupload, sidecar).
//!
//! Each tool reads `<TOOL>_OPTIONS` from the environment. The tool can also be chosen by the
//! binary's file name (a copy named `entrypoint`, as `--copy-mode-only` places it in
//! `/tools/entrypoint`), so a decorated pod can run it with no arguments.

use std::process::ExitCode;

use bosun_agents::podutils::{TOOLS, podutils_main};

fn main() -> ExitCode {
    let mut args = std::env::args();
    let argv0 = args.next().unwrap_or_default();
    let base = std::path::Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if TOOLS.contains(&base.as_str()) {
        return podutils_main(&base);
    }
    match args.next() {
        Some(tool) if tool == "--copy-mode-only" => copy_mode(),
        Some(tool) if !tool.starts_with('-') => podutils_main(&tool),
        _ => {
            eprintln!("usage: bosun-podutils <{}>", TOOLS.join("|"));
            eprintln!("each tool reads its options as JSON from <TOOL>_OPTIONS");
            ExitCode::from(2)
        }
    }
}

/// `place-entrypoint` runs the entrypoint image with `--copy-mode-only`.
fn copy_mode() -> ExitCode {
    let opts = bosun_agents::podutils::EntrypointOptions {
        timeout: Default::default(),
        grace_period: Default::default(),
        artifact_dir: Default::default(),
        args: Vec::new(),
        container_name: String::new(),
        process_log: Default::default(),
        marker_file: Default::default(),
        metadata_file: Default::default(),
        previous_marker: None,
        always_zero: false,
        propagate_error_code: false,
        copy_mode_only: true,
        copy_dst: None,
    };
    ExitCode::from((bosun_agents::podutils::entrypoint::run(&opts) & 0xff) as u8)
}
