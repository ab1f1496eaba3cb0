//! End to end with the real Docker Engine: a real `bosun serve` process, jobs with
//! `agent: docker` submitted over gRPC, run in a busybox image made with `docker import`.
//!
//! Fails (never skips) when /var/run/docker.sock is missing. The gateway finds the static
//! bosun-podutils in this target directory (built once by the test support if needed).

mod common;
#[path = "../../agents/tests/docker_common/mod.rs"]
mod docker_common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bosun_proto::ProwJobState;
use bosun_proto::api::{AbortRequest, LogsRequest};
use common::*;
use futures::StreamExt;

fn docker_job(job: &str, script: &str) -> String {
    serde_json::json!({
        "apiVersion": "prow.k8s.io/v1",
        "kind": "ProwJob",
        "spec": {
            "type": "periodic",
            "job": job,
            "agent": "docker",
            "pod_spec": {"containers": [{
                "name": "test",
                "image": docker_common::test_image(),
                "command": ["sh", "-c"],
                "args": [script]
            }]},
            "decoration_config": {"timeout": "2m", "grace_period": "1s"}
        }
    })
    .to_string()
}

fn setup() {
    docker_common::require_docker();
    docker_common::test_image();
    docker_common::static_podutils();
}

async fn no_leftovers(name: &str) {
    let deadline = std::time::Instant::now() + DEADLINE;
    while docker_common::labelled(name) != (0, 0) {
        assert!(
            std::time::Instant::now() < deadline,
            "containers or volumes of {name} left behind"
        );
        // Poll interval of a condition check bounded by a deadline.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_job_over_grpc_succeeds_with_logs_and_artifacts() {
    setup();
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = Gateway::start(dir.path(), &[]);
    let mut c = gw.client().await;
    let script = "echo hello from $JOB_NAME build $BUILD_ID in docker; echo artifact > $ARTIFACTS/result.txt";
    let name = submit(&mut c, docker_job("e2e-docker", script)).await;
    let job = wait_complete(&mut c, &name).await;
    let status = job.status.clone().expect("status");
    assert_eq!(
        job.state(),
        ProwJobState::Success,
        "{status:?}\ngateway log:\n{}",
        gw.logs()
    );
    assert_eq!(status.description, "Job succeeded.");
    assert_eq!(status.pod_name, format!("bosun-{name}"));

    let mut logs = c
        .logs(LogsRequest {
            name: name.clone(),
            follow: false,
        })
        .await
        .expect("logs")
        .into_inner();
    let mut text = Vec::new();
    while let Some(chunk) = logs.next().await {
        text.extend(chunk.expect("chunk").data);
    }
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.contains(&format!(
            "hello from e2e-docker build {} in docker",
            status.build_id
        )),
        "{text}"
    );

    let job_dir = dir
        .path()
        .join("artifacts/logs/e2e-docker")
        .join(&status.build_id);
    // prowjob.json is written by a background task moments after the job finished.
    eventually("prowjob.json", || job_dir.join("prowjob.json").is_file());
    for f in [
        "build-log.txt",
        "started.json",
        "finished.json",
        "prowjob.json",
        "artifacts/result.txt",
    ] {
        assert!(
            job_dir.join(f).is_file(),
            "{f} missing in {}",
            job_dir.display()
        );
    }
    let finished: serde_json::Value =
        serde_json::from_slice(&std::fs::read(job_dir.join("finished.json")).expect("read"))
            .expect("json");
    assert_eq!(finished["result"], "SUCCESS");
    no_leftovers(&name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_job_abort_over_grpc_stops_the_container() {
    setup();
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = Gateway::start(dir.path(), &[]);
    let mut c = gw.client().await;
    let name = submit(&mut c, docker_job("e2e-docker-abort", "echo up; sleep 300")).await;
    wait_state(&mut c, &name, ProwJobState::Pending).await;
    let deadline = std::time::Instant::now() + DEADLINE;
    while docker_common::labelled(&name).0 == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no container for {name}:\n{}",
            gw.logs()
        );
        // Poll interval of a condition check bounded by a deadline.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.abort(AbortRequest {
        name: name.clone(),
        reason: "test".into(),
    })
    .await
    .expect("abort");
    let job = wait_complete(&mut c, &name).await;
    assert_eq!(job.state(), ProwJobState::Aborted);
    no_leftovers(&name).await;
}

/// A `bosun serve` process like [`Gateway`], with extra environment for the gateway.
struct EnvGateway {
    child: std::process::Child,
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl EnvGateway {
    fn start(data_dir: &Path, env: &[(&str, String)]) -> EnvGateway {
        let mut child = Command::new(bosun_bin())
            .arg("serve")
            .args(["--grpc-addr", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("BOSUN_LOG", "info")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn bosun serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("bosun: gRPC on ") {
                    let _ = tx.send(addr.trim().to_owned());
                }
                if let Ok(mut l) = log2.lock() {
                    l.push(line);
                }
            }
        });
        let Ok(addr) = rx.recv_timeout(DEADLINE) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("gateway did not start: {:?}", log.lock().map(|l| l.clone()));
        };
        EnvGateway { child, addr, log }
    }

    async fn client(
        &self,
    ) -> bosun_proto::api::job_gateway_client::JobGatewayClient<tonic::transport::Channel> {
        bosun_proto::api::job_gateway_client::JobGatewayClient::connect(format!(
            "http://{}",
            self.addr
        ))
        .await
        .expect("connect to gateway")
    }

    fn logs(&self) -> String {
        self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
    }
}

impl Drop for EnvGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_docker_keeps_the_job_waiting_with_a_description_then_it_runs() {
    setup();
    let dir = tempfile::tempdir().expect("tempdir");
    // The gateway's engine is a socket path that does not exist yet.
    let sock = dir.path().join("docker.sock");
    let gw = EnvGateway::start(
        &dir.path().join("data"),
        &[("DOCKER_HOST", format!("unix://{}", sock.display()))],
    );
    let mut c = gw.client().await;
    let name = submit(&mut c, docker_job("e2e-docker-down", "echo finally ran")).await;

    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let job = get(&mut c, &name).await;
        let status = job.status.clone().expect("status");
        if status
            .description
            .contains("Waiting for the docker backend")
        {
            assert_eq!(job.state(), ProwJobState::Triggered, "{status:?}");
            assert!(
                status.description.contains(&format!(
                    "cannot reach the docker engine at unix://{}",
                    sock.display()
                )),
                "{}",
                status.description
            );
            break;
        }
        assert!(!job.is_complete(), "the job must wait, not end: {status:?}");
        assert!(
            std::time::Instant::now() < deadline,
            "no waiting description: {status:?}"
        );
        // Poll interval of a condition check bounded by a deadline.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The engine "comes back": the retried start succeeds and nothing was lost.
    std::os::unix::fs::symlink(docker_common::SOCKET, &sock).expect("symlink the socket");
    let job = wait_complete(&mut c, &name).await;
    assert_eq!(
        job.state(),
        ProwJobState::Success,
        "{:?}\ngateway log:\n{}",
        job.status,
        gw.logs()
    );
    no_leftovers(&name).await;
}
