//! A real `bosun serve` process for integration tests, driven over gRPC on 127.0.0.1.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use bosun_proto::api::job_gateway_client::JobGatewayClient;
use bosun_proto::api::{GetRequest, LogsRequest, SubmitRequest, WatchRequest};
use bosun_proto::{ProwJob, ProwJobState};
use futures::StreamExt;
use tonic::transport::Channel;

pub const DEADLINE: Duration = Duration::from_secs(60);

/// A running gateway process.
pub struct Gateway {
    pub child: Child,
    pub addr: String,
    pub data_dir: PathBuf,
    pub log: Arc<Mutex<Vec<String>>>,
    /// The HTTP address, when started with `--http-addr`.
    pub http_addr: Option<String>,
}

pub fn bosun_bin() -> &'static str {
    env!("CARGO_BIN_EXE_bosun")
}

impl Gateway {
    /// Starts `bosun serve` on a free port and waits until it says where it listens.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Gateway {
        let mut child = Command::new(bosun_bin())
            .arg("serve")
            .args(["--grpc-addr", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env("BOSUN_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn bosun serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let log2 = log.clone();
        std::thread::Builder::new()
            .name("gateway-stderr".into())
            .spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(addr) = line.strip_prefix("bosun: gRPC on ") {
                        let _ = tx.send(("grpc", addr.trim().to_owned()));
                    }
                    if let Some(addr) = line.strip_prefix("bosun: HTTP on ") {
                        let _ = tx.send(("http", addr.trim().to_owned()));
                    }
                    if let Ok(mut l) = log2.lock() {
                        l.push(line);
                    }
                }
            })
            .expect("stderr thread");
        let wants_http = extra.contains(&"--http-addr");
        let mut addr = None;
        let mut http_addr = None;
        while addr.is_none() || (wants_http && http_addr.is_none()) {
            match rx.recv_timeout(DEADLINE) {
                Ok(("grpc", a)) => addr = Some(a),
                Ok((_, a)) => http_addr = Some(a),
                Err(_) => {
                    let _ = child.kill();
                    panic!("gateway did not start: {:?}", log.lock().map(|l| l.clone()));
                }
            }
        }
        Gateway {
            child,
            addr: addr.unwrap_or_default(),
            data_dir: data_dir.to_path_buf(),
            log,
            http_addr,
        }
    }

    pub async fn client(&self) -> JobGatewayClient<Channel> {
        JobGatewayClient::connect(format!("http://{}", self.addr))
            .await
            .expect("connect to gateway")
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn logs(&self) -> String {
        self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A ProwJob for the local agent running `script` with `sh -c`.
pub fn local_job(job: &str, script: &str) -> String {
    serde_json::json!({
        "apiVersion": "prow.k8s.io/v1",
        "kind": "ProwJob",
        "spec": {
            "type": "periodic",
            "job": job,
            "agent": "local",
            "pod_spec": {"containers": [{"name": "test", "image": "local", "command": ["sh", "-c"], "args": [script]}]}
        }
    })
    .to_string()
}

pub fn decode(job: &bosun_proto::api::Job) -> ProwJob {
    serde_json::from_str(&job.prowjob_json).expect("prowjob json")
}

pub async fn submit(c: &mut JobGatewayClient<Channel>, prowjob: String) -> String {
    c.submit(SubmitRequest {
        prowjob,
        idempotency_key: String::new(),
    })
    .await
    .expect("submit")
    .into_inner()
    .job
    .expect("job")
    .name
}

/// Waits (via Watch) until the job satisfies `pred` (`what` names it in the panic); returns it.
pub async fn wait_for(
    c: &mut JobGatewayClient<Channel>,
    name: &str,
    what: &str,
    pred: impl Fn(&ProwJob) -> bool,
) -> ProwJob {
    let fut = async {
        let mut stream = c
            .watch(WatchRequest {
                from_revision: 0,
                name: name.into(),
                job: String::new(),
            })
            .await
            .expect("watch")
            .into_inner();
        while let Some(ev) = stream.next().await {
            let job = decode(&ev.expect("watch event").job.expect("job"));
            if pred(&job) {
                return job;
            }
        }
        panic!("watch ended before {name}: {what}");
    };
    tokio::time::timeout(DEADLINE, fut)
        .await
        .unwrap_or_else(|_| panic!("{name}: no {what} within {DEADLINE:?}"))
}

/// Waits (via Watch) until the job is complete; returns it.
pub async fn wait_complete(c: &mut JobGatewayClient<Channel>, name: &str) -> ProwJob {
    wait_for(c, name, "completion", ProwJob::is_complete).await
}

/// Waits until the job reaches `state`.
pub async fn wait_state(
    c: &mut JobGatewayClient<Channel>,
    name: &str,
    state: ProwJobState,
) -> ProwJob {
    wait_for(c, name, &format!("state {state}"), |job| {
        job.state() == state
    })
    .await
}

/// The job's whole build log as `Logs` (without follow) returns it.
pub async fn read_logs(c: &mut JobGatewayClient<Channel>, name: &str) -> String {
    let mut logs = c
        .logs(LogsRequest {
            name: name.into(),
            follow: false,
        })
        .await
        .expect("logs")
        .into_inner();
    let mut text = Vec::new();
    while let Some(chunk) = logs.next().await {
        text.extend(chunk.expect("chunk").data);
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// Follows the job's log until it contains `needle`; returns the stream (to read on) and
/// the text so far.
pub async fn follow_logs_until(
    c: &mut JobGatewayClient<Channel>,
    name: &str,
    needle: &str,
) -> (tonic::Streaming<bosun_proto::api::LogChunk>, String) {
    let mut logs = c
        .logs(LogsRequest {
            name: name.into(),
            follow: true,
        })
        .await
        .expect("logs")
        .into_inner();
    let mut seen = String::new();
    tokio::time::timeout(DEADLINE, async {
        while !seen.contains(needle) {
            let chunk = logs.next().await.expect("more log").expect("chunk");
            seen.push_str(&String::from_utf8_lossy(&chunk.data));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{name}: {needle:?} not in the log within {DEADLINE:?}: {seen}"));
    (logs, seen)
}

/// Two build clusters (Kubernetes test API servers) with kubeconfigs `a.yaml` / `b.yaml`
/// (contexts `a` and `b`) in `dir`.
pub struct Clusters {
    pub a: bosun_conformance::kube_api::KubeApiServer,
    pub b: bosun_conformance::kube_api::KubeApiServer,
    pub dir: tempfile::TempDir,
}

pub async fn two_clusters() -> Clusters {
    use bosun_conformance::kube_api::KubeApiServer;
    let dir = tempfile::tempdir().expect("tempdir");
    let a = KubeApiServer::start().await.expect("cluster a");
    let b = KubeApiServer::start().await.expect("cluster b");
    a.write_kubeconfig(&dir.path().join("a.yaml"), "a")
        .expect("kubeconfig a");
    b.write_kubeconfig(&dir.path().join("b.yaml"), "b")
        .expect("kubeconfig b");
    Clusters { a, b, dir }
}

pub async fn get(c: &mut JobGatewayClient<Channel>, name: &str) -> ProwJob {
    decode(
        &c.get(GetRequest { name: name.into() })
            .await
            .expect("get")
            .into_inner(),
    )
}

/// Polls `cond` until true or the deadline passes.
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + DEADLINE;
    while std::time::Instant::now() < end {
        if cond() {
            return;
        }
        // Poll interval of a condition check bounded by a deadline.
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// A plain HTTP/1.0 GET; returns (status code, body).
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect http");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("write request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

pub fn pid_alive(pid: i32) -> bool {
    // /proc/<pid>/stat state field: Z (zombie) counts as dead.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}
