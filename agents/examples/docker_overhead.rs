//! Overhead of the docker agent over plain `docker run`, on the real engine.
//!
//! ```sh
//! cargo run --release -p bosun-agents --example docker_overhead -- [jobs] [rounds]
//! ```
//!
//! For concurrency 1 and 4 it runs `jobs` (default 50) trivial jobs (`true` in the busybox test
//! image) two ways, alternating, `rounds` times (default 3):
//! - raw: `docker run --rm --network none <image> true`, one CLI process per job;
//! - bosun: `DockerAgent::start` + `wait` (clone-less periodic: started.json, container with the
//!   static entrypoint, event-driven wait, build-log/finished.json upload, removal).
//!
//! and prints the median wall time of each and bosun / raw.

#[path = "../tests/docker_common/mod.rs"]
mod docker_common;

use std::time::{Duration, Instant};

use bosun_agents::docker::{DockerAgent, DockerAgentConfig};
use bosun_agents::{Agent, Artifacts, Outcome};
use bosun_proto::ProwJob;
use futures::StreamExt;

fn job(name: &str, image: &str) -> ProwJob {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "prow.k8s.io/v1",
        "kind": "ProwJob",
        "metadata": {"name": name},
        "spec": {
            "type": "periodic",
            "agent": "docker",
            "job": "bench",
            "pod_spec": {"containers": [{"name": "test", "image": image, "command": ["true"]}]},
            "decoration_config": {"timeout": "1m", "grace_period": "1s"}
        },
        "status": {"state": "pending", "build_id": name.rsplit('-').next().unwrap_or("1")}
    }))
    .expect("valid ProwJob")
}

async fn raw(jobs: usize, concurrency: usize, image: &str) -> Duration {
    let t0 = Instant::now();
    futures::stream::iter(0..jobs)
        .map(|_| async move {
            let status = tokio::process::Command::new("docker")
                .args(["run", "--rm", "--network", "none", image, "true"])
                .status()
                .await
                .expect("docker run");
            assert!(status.success(), "docker run failed");
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
    t0.elapsed()
}

async fn bosun(
    agent: &DockerAgent,
    jobs: usize,
    concurrency: usize,
    image: &str,
    round: usize,
) -> Duration {
    let t0 = Instant::now();
    futures::stream::iter(0..jobs)
        .map(|i| async move {
            let name = format!("bench-c{concurrency}-r{round}-{}", i + 1);
            let j = job(&name, image);
            agent.start(&j).await.expect("start");
            let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
            let outcome = agent.wait(&j, tx).await.expect("wait");
            assert_eq!(outcome, Outcome::success(), "{name}");
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
    t0.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let jobs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3).max(1);
    let image = docker_common::test_image();
    let podutils = docker_common::static_podutils();
    let tmp = tempfile::tempdir().expect("tempdir");
    let artifacts =
        Artifacts::local_dir(tmp.path().join("bucket"), "file:///bucket").expect("bucket");
    let agent = DockerAgent::new(DockerAgentConfig::new(
        tmp.path().join("work"),
        Some(podutils),
        artifacts,
    ));

    // Warm up both paths (image layers, page cache, the agent's client).
    raw(2, 1, image).await;
    bosun(&agent, 2, 1, image, 0).await;

    println!("{jobs} trivial jobs (`true` in {image}), median of {rounds} rounds");
    println!("| concurrency | raw docker run | bosun docker agent | bosun / raw |");
    println!("|---|---|---|---|");
    for concurrency in [1usize, 4] {
        let mut raws = Vec::new();
        let mut ours = Vec::new();
        for round in 1..=rounds {
            raws.push(raw(jobs, concurrency, image).await);
            ours.push(bosun(&agent, jobs, concurrency, image, round).await);
        }
        let (r, b) = (median(raws.clone()), median(ours.clone()));
        println!(
            "| {concurrency} | {:.2}s ({:.0} ms/job) | {:.2}s ({:.0} ms/job) | {:.3} |",
            r.as_secs_f64(),
            r.as_secs_f64() * 1000.0 / jobs as f64,
            b.as_secs_f64(),
            b.as_secs_f64() * 1000.0 / jobs as f64,
            b.as_secs_f64() / r.as_secs_f64()
        );
        eprintln!("  concurrency {concurrency}: raw {raws:?}, bosun {ours:?}");
    }
}
