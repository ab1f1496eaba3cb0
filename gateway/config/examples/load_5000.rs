//! Times loading, defaulting and validating a generated 5,000-job configuration.
//!
//! `cargo run --release -p bosun-gateway-config --example load_5000`

use std::time::Instant;

#[path = "../tests/support/mod.rs"]
mod support;

fn main() {
    let tmp = std::env::temp_dir().join(format!("bosun-config-bench-{}", std::process::id()));
    let jobs = tmp.join("jobs");
    std::fs::create_dir_all(&jobs).expect("create temp dir");
    std::fs::write(tmp.join("config.yaml"), support::CONFIG).expect("write config");
    support::generate(&jobs, 5000, 50);
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        let cfg = match bosun_gateway_config::load(&tmp.join("config.yaml"), Some(&jobs)) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        };
        let elapsed = start.elapsed().as_secs_f64();
        best = best.min(elapsed);
        println!(
            "loaded {} jobs in {:.1} ms",
            cfg.jobs().job_count(),
            elapsed * 1000.0
        );
    }
    println!("best: {:.1} ms", best * 1000.0);
    let _ = std::fs::remove_dir_all(&tmp);
}
