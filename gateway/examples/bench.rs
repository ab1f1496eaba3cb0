//! bosun's gateway benchmarks, driving a real `bosun serve` (started as a child process, with
//! the zero-cost `noop` agent) over loopback, next to the physical limits measured in the same
//! run. Results and commands are recorded in BENCHMARKS.md.
//!
//! ```text
//! bench BOSUN_BINARY intake   [clients] [jobs]    durable gRPC submits/s, p50/p99
//! bench BOSUN_BINARY echo     [clients] [calls]   no-op tonic unary RPCs/s (gRPC health Check)
//! bench BOSUN_BINARY sqlite   [commits]           raw SQLite commits/s, WAL + synchronous=FULL
//! bench BOSUN_BINARY intake-parked [clients] [jobs]  the same with jobs parked (no dispatch)
//! bench BOSUN_BINARY intake-rate [rate] [jobs]    durable submit latency at a fixed rate (open loop)
//! bench BOSUN_BINARY intake-rate-parked [rate] [jobs]  the same with jobs parked
//! bench BOSUN_BINARY dispatch [rate] [jobs]       submit → agent start latency at a fixed rate
//! bench BOSUN_BINARY memory   [jobs]              RSS idle and after N finished jobs; List p99
//! bench -            config   [jobs]              load + validate N generated jobs; match PR events
//! bench BOSUN_BINARY report   [jobs]              every state change of N jobs fanned out to the
//!                                                 GitHub, Gerrit, Slack and Pub/Sub test servers
//!                                                 (with the disk and HTTP limits of the same run)
//! ```
//!
//! Runs that create files (dispatch, memory, report) should start 6 minutes after the previous
//! run ended: see BENCHMARKS.md on ext4 and recently deleted inodes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bosun_proto::api::job_gateway_client::JobGatewayClient;
use bosun_proto::api::{ListRequest, SubmitRequest};
use tonic::transport::Channel;

const NOOP_JOB: &str = r#"{"apiVersion":"prow.k8s.io/v1","kind":"ProwJob","spec":{"type":"periodic","job":"bench","agent":"noop"}}"#;
/// A job that waits in a job queue of capacity 0: measures durable intake alone, without the
/// dispatcher running jobs at the same time.
const PARKED_JOB: &str = r#"{"apiVersion":"prow.k8s.io/v1","kind":"ProwJob","spec":{"type":"periodic","job":"bench","agent":"noop","job_queue_name":"parked"}}"#;
const PARKED_CONFIG: &str = "plank:\n  job_queue_capacities: {parked: 0}\n";

/// Set by `intake-parked`: submit [`PARKED_JOB`] instead of [`NOOP_JOB`].
static PARKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A `bosun serve` child process.
struct Server {
    child: Child,
    grpc: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(bin: &Path) -> anyhow::Result<Self> {
        Self::start_with(bin, &[])
    }

    fn start_with(bin: &Path, extra: &[String]) -> anyhow::Result<Self> {
        Self::start_in(tempfile::tempdir()?, bin, extra)
    }

    /// The intake modes' server: with [`PARKED_CONFIG`] when jobs are to be parked.
    fn start_for_intake(bin: &Path) -> anyhow::Result<Self> {
        if !PARKED.load(std::sync::atomic::Ordering::Relaxed) {
            return Self::start(bin);
        }
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("config.yaml");
        std::fs::write(&config, PARKED_CONFIG)?;
        let extra = ["--config-path".to_owned(), config.display().to_string()];
        Self::start_in(dir, bin, &extra)
    }

    fn start_in(dir: tempfile::TempDir, bin: &Path, extra: &[String]) -> anyhow::Result<Self> {
        let mut child = Command::new(bin)
            .args([
                "serve",
                "--noop-agent",
                "--grpc-addr",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(dir.path().join("data"))
            .args(extra)
            .env("BOSUN_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stderr = child.stderr.take().context("stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("serve-stderr".into())
            .spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(addr) = line.strip_prefix("bosun: gRPC on ") {
                        let _ = tx.send(addr.trim().to_owned());
                    } else if !line.contains(" INFO ") {
                        eprintln!("serve: {line}");
                    }
                }
            })?;
        let grpc = rx
            .recv_timeout(Duration::from_secs(60))
            .context("bosun serve did not report its gRPC address")?;
        Ok(Server {
            child,
            grpc,
            _dir: dir,
        })
    }

    async fn client(&self) -> anyhow::Result<JobGatewayClient<Channel>> {
        Ok(JobGatewayClient::connect(format!("http://{}", self.grpc)).await?)
    }

    fn rss_kib(&self) -> anyhow::Result<u64> {
        rss_kib(self.child.id())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS not found")
}

/// Latency percentiles of `samples` (sorted in place).
fn percentiles(samples: &mut [Duration]) -> (Duration, Duration, Duration) {
    samples.sort_unstable();
    let at = |q: f64| {
        samples
            .get(((samples.len() as f64 * q) as usize).min(samples.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    (
        at(0.5),
        at(0.99),
        samples.last().copied().unwrap_or_default(),
    )
}

fn report(what: &str, n: usize, elapsed: Duration, samples: &mut [Duration]) {
    let (p50, p99, max) = percentiles(samples);
    println!(
        "{what}: {n} in {:.2} s = {:.0}/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3
    );
}

/// Closed loop: `clients` connections each submitting `jobs / clients` jobs back to back.
async fn intake(bin: &Path, clients: usize, jobs: usize) -> anyhow::Result<()> {
    let server = Server::start_for_intake(bin)?;
    let per_client = jobs / clients.max(1);
    let mut conns = Vec::new();
    for _ in 0..clients {
        conns.push(server.client().await?);
    }
    // Warm up the connections and the store.
    for c in &mut conns {
        submit(c).await?;
    }
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for mut c in conns {
        tasks.spawn(async move {
            let mut samples = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                let t = Instant::now();
                submit(&mut c).await?;
                samples.push(t.elapsed());
            }
            anyhow::Ok(samples)
        });
    }
    let mut samples = Vec::new();
    while let Some(done) = tasks.join_next().await {
        samples.extend(done??);
    }
    let elapsed = start.elapsed();
    let what = if PARKED.load(std::sync::atomic::Ordering::Relaxed) {
        "jobs parked in a queue of capacity 0"
    } else {
        "every job also run by the noop agent"
    };
    report(
        &format!("intake ({clients} clients, durable submits; {what})"),
        samples.len(),
        elapsed,
        &mut samples,
    );
    println!("gateway RSS after intake: {} MiB", server.rss_kib()? / 1024);
    Ok(())
}

/// Open loop: submits at a fixed `rate` over 16 connections, each submit's latency measured
/// from its scheduled send time (so a stalled server shows up as latency, not as a lower rate).
async fn intake_rate(bin: &Path, rate: f64, jobs: usize) -> anyhow::Result<()> {
    let server = Server::start_for_intake(bin)?;
    let mut conns = Vec::new();
    for _ in 0..16 {
        let mut c = server.client().await?;
        submit(&mut c).await?;
        conns.push(c);
    }
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    let start = Instant::now();
    for i in 0..jobs {
        ticker.tick().await;
        let scheduled = start + interval.mul_f64(i as f64);
        let mut c = conns[i % conns.len()].clone();
        tasks.spawn(async move {
            submit(&mut c).await?;
            anyhow::Ok(scheduled.elapsed())
        });
    }
    let mut samples = Vec::with_capacity(jobs);
    while let Some(done) = tasks.join_next().await {
        samples.push(done??);
    }
    report(
        &format!("intake at a fixed {rate:.0} submits/s (open loop)"),
        samples.len(),
        start.elapsed(),
        &mut samples,
    );
    Ok(())
}

async fn submit(c: &mut JobGatewayClient<Channel>) -> anyhow::Result<String> {
    let job = c
        .submit(SubmitRequest {
            prowjob: if PARKED.load(std::sync::atomic::Ordering::Relaxed) {
                PARKED_JOB
            } else {
                NOOP_JOB
            }
            .to_owned(),
            idempotency_key: String::new(),
        })
        .await?
        .into_inner()
        .job
        .context("no job in the answer")?;
    Ok(job.name)
}

/// The no-op gRPC baseline: tonic's health service `Check` over loopback, same client shape.
async fn echo(clients: usize, calls: usize) -> anyhow::Result<()> {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let (_reporter, service) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let per_client = calls / clients.max(1);
    let mut conns = Vec::new();
    for _ in 0..clients {
        let channel = Channel::from_shared(format!("http://{addr}"))?
            .connect()
            .await?;
        conns.push(HealthClient::new(channel));
    }
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for mut c in conns {
        tasks.spawn(async move {
            let mut samples = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                let t = Instant::now();
                c.check(HealthCheckRequest {
                    service: String::new(),
                })
                .await?;
                samples.push(t.elapsed());
            }
            anyhow::Ok(samples)
        });
    }
    let mut samples = Vec::new();
    while let Some(done) = tasks.join_next().await {
        samples.extend(done??);
    }
    report(
        &format!("no-op tonic unary ({clients} clients)"),
        samples.len(),
        start.elapsed(),
        &mut samples,
    );
    server.abort();
    Ok(())
}

/// Raw SQLite with the store's durability settings: one row per transaction (the fsync
/// limit), then 64 rows per transaction (what group commit can reach).
fn sqlite(commits: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let conn = raw_sqlite(dir.path())?;
    for (batch, label) in [(1usize, "1 row/commit"), (64, "64 rows/commit")] {
        let commit = raw_commits(&conn, label, batch, commits * batch.min(8))?;
        println!("raw SQLite ({label}, WAL, synchronous=FULL): {commit}");
    }
    Ok(())
}

/// A SQLite database in `dir` with the job store's durability settings.
fn raw_sqlite(dir: &Path) -> anyhow::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(dir.join("raw.db"))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if mode != "wal" {
        bail!("journal mode {mode}");
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch("CREATE TABLE jobs (name TEXT PRIMARY KEY, body BLOB NOT NULL)")?;
    Ok(conn)
}

/// What [`raw_commits`] measured.
struct Commits {
    commits: usize,
    rows: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

impl Commits {
    fn per_second(&self) -> f64 {
        self.commits as f64 / self.elapsed.as_secs_f64()
    }
}

impl std::fmt::Display for Commits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} commits, {:.0} commits/s, {:.0} rows/s; commit p50 {:.2} ms, p99 {:.2} ms",
            self.commits,
            self.per_second(),
            self.rows as f64 / self.elapsed.as_secs_f64(),
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3
        )
    }
}

/// Inserts `rows` rows of 1,200 bytes, `batch` per transaction.
fn raw_commits(
    conn: &rusqlite::Connection,
    label: &str,
    batch: usize,
    rows: usize,
) -> anyhow::Result<Commits> {
    let body = vec![b'x'; 1200];
    let start = Instant::now();
    let mut written = 0usize;
    let mut samples = Vec::new();
    while written < rows {
        let t = Instant::now();
        let tx = conn.unchecked_transaction()?;
        for _ in 0..batch {
            tx.execute(
                "INSERT INTO jobs (name, body) VALUES (?1, ?2)",
                rusqlite::params![format!("{label}-{written}"), body],
            )?;
            written += 1;
        }
        tx.commit()?;
        samples.push(t.elapsed());
    }
    let elapsed = start.elapsed();
    let (p50, p99, _) = percentiles(&mut samples);
    Ok(Commits {
        commits: samples.len(),
        rows: written,
        elapsed,
        p50,
        p99,
    })
}

/// The disk as the report fan-out finds it: durable one-row commits, and creating `jobs`
/// artifact trees of Prow's layout (three new directories and a 2 KB file each, as the
/// gateway's `prowjob.json` writes do). The returned directory holds what was written: deleting
/// it before the run would slow the gateway's own directory creation (ext4 skips inodes freed
/// moments ago), so the caller keeps it until the end.
fn disk_baseline(jobs: usize) -> anyhow::Result<(Commits, Duration, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let commits = raw_commits(&raw_sqlite(dir.path())?, "baseline", 1, 500)?;
    let body = vec![b'x'; 2048];
    let start = Instant::now();
    for i in 0..jobs {
        let build = dir
            .path()
            .join(format!("pr-logs/pull/acme_widget/{}/bench-{i}/{i}", i + 1));
        std::fs::create_dir_all(&build)?;
        std::fs::write(build.join("prowjob.json"), &body)?;
    }
    Ok((commits, start.elapsed(), dir))
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

/// Open loop at `rate` jobs/s: latency from sending the submit to the agent's start call
/// (recorded by the noop agent in the job description, same clock).
async fn dispatch(bin: &Path, rate: f64, jobs: usize) -> anyhow::Result<()> {
    let server = Server::start(bin)?;
    let client = server.client().await?;
    // Warm up (connections, store pages, the dispatcher's first runners); not measured.
    {
        let mut c = client.clone();
        for _ in 0..200 {
            submit(&mut c).await?;
        }
    }
    let warmup = 200;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let sent = Arc::new(std::sync::Mutex::new(Vec::with_capacity(jobs)));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    let start = Instant::now();
    for _ in 0..jobs {
        ticker.tick().await;
        let mut c = client.clone();
        let sent = sent.clone();
        tasks.spawn(async move {
            let at = unix_nanos();
            let name = submit(&mut c).await?;
            if let Ok(mut s) = sent.lock() {
                s.push((name, at));
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let submit_elapsed = start.elapsed();
    // Wait until every job has been started, then read the marks.
    let mut c = client.clone();
    let deadline = Instant::now() + Duration::from_secs(120);
    let marks = loop {
        let mut marks = std::collections::HashMap::new();
        let mut token = String::new();
        loop {
            let page = c
                .list(ListRequest {
                    page_size: 1000,
                    page_token: token.clone(),
                    ..ListRequest::default()
                })
                .await?
                .into_inner();
            for job in page.jobs {
                let pj: bosun_proto::ProwJob = serde_json::from_str(&job.prowjob_json)?;
                let description = pj.status.map(|s| s.description).unwrap_or_default();
                if let Some(mark) = bosun_agents::noop::start_mark_nanos(&description) {
                    marks.insert(job.name, mark);
                }
            }
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        if marks.len() >= jobs + warmup || Instant::now() > deadline {
            break marks;
        }
        // Poll interval while the last jobs start; bounded by the deadline above.
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let sent = sent.lock().map(|s| s.clone()).unwrap_or_default();
    let mut samples: Vec<Duration> = sent
        .iter()
        .filter_map(|(name, at)| {
            let mark = marks.get(name)?;
            Some(Duration::from_nanos(mark.saturating_sub(*at) as u64))
        })
        .collect();
    if samples.len() < jobs {
        bail!("only {} of {jobs} jobs were started", samples.len());
    }
    report(
        &format!(
            "dispatch at {rate:.0} jobs/s (achieved {:.0}/s), submit → agent start",
            jobs as f64 / submit_elapsed.as_secs_f64()
        ),
        samples.len(),
        submit_elapsed,
        &mut samples,
    );
    Ok(())
}

/// RSS idle, then after `jobs` finished noop jobs; List latency over the full store.
async fn memory(bin: &Path, jobs: usize) -> anyhow::Result<()> {
    let server = Server::start(bin)?;
    let mut c = server.client().await?;
    // Let start-up allocations settle: a handful of idle round trips.
    for _ in 0..10 {
        c.list(ListRequest {
            page_size: 1,
            ..ListRequest::default()
        })
        .await?;
    }
    println!("RSS idle: {:.1} MiB", server.rss_kib()? as f64 / 1024.0);
    let clients = 16;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let mut c = server.client().await?;
        let n = jobs / clients;
        tasks.spawn(async move {
            for _ in 0..n {
                submit(&mut c).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    // Measure over finished jobs only: wait until none is triggered or pending.
    let deadline = Instant::now() + Duration::from_secs(600);
    for state in ["triggered", "pending"] {
        loop {
            let left = c
                .list(ListRequest {
                    page_size: 1,
                    state: state.into(),
                    ..ListRequest::default()
                })
                .await?
                .into_inner()
                .jobs
                .len();
            if left == 0 {
                break;
            }
            if Instant::now() > deadline {
                bail!("jobs still {state} after 600 s");
            }
            // Poll interval while the last jobs finish; bounded by the deadline above.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let mut samples = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        c.list(ListRequest {
            page_size: 100,
            state: "success".into(),
            ..ListRequest::default()
        })
        .await?;
        samples.push(t.elapsed());
    }
    report(
        &format!("List (100 per page) with {jobs} jobs stored"),
        samples.len(),
        samples.iter().sum(),
        &mut samples,
    );
    // Watch one job by name: time until its current state arrives.
    let names: Vec<String> = c
        .list(ListRequest {
            page_size: 200,
            ..ListRequest::default()
        })
        .await?
        .into_inner()
        .jobs
        .into_iter()
        .map(|j| j.name)
        .collect();
    let mut samples = Vec::new();
    for name in &names {
        let t = Instant::now();
        let mut stream = c
            .watch(bosun_proto::api::WatchRequest {
                from_revision: 0,
                name: name.clone(),
                job: String::new(),
            })
            .await?
            .into_inner();
        stream.message().await?.context("no watch event")?;
        samples.push(t.elapsed());
    }
    report(
        &format!("Watch (one job by name, first event) with {jobs} jobs stored"),
        samples.len(),
        samples.iter().sum(),
        &mut samples,
    );
    println!(
        "RSS after {jobs} jobs: {:.1} MiB",
        server.rss_kib()? as f64 / 1024.0
    );
    Ok(())
}

/// `jobs` noop presubmits, each reported by all four reporters (GitHub statuses, a Gerrit
/// review per revision, Slack for every state, Pub/Sub for every state), submitted as fast as
/// the gateway takes them. Measures reports delivered per second from the first submit to the
/// last report, and counts duplicates (the same state of the same job reported twice).
async fn report_fanout(bin: &Path, jobs: usize) -> anyhow::Result<()> {
    use bosun_conformance::test_servers::gerrit::{Change, GerritServer};
    use bosun_conformance::test_servers::github::GitHubServer;
    use bosun_conformance::test_servers::pubsub::PubSubServer;
    use bosun_conformance::test_servers::slack::SlackServer;
    use std::collections::{BTreeMap, HashMap};

    let revision = |i: usize| format!("{i:040x}");
    let changes: BTreeMap<String, Change> = (0..jobs)
        .map(|i| {
            (
                format!("widget~main~I{i:08x}"),
                Change {
                    status: "NEW".into(),
                    revisions: vec![revision(i)],
                },
            )
        })
        .collect();
    // The physical side: the same number of plain HTTP posts (16 concurrent reqwest clients,
    // no gateway, no store) to a Slack test server of its own.
    let reports_expected = 3 * jobs;
    let (fsyncs, trees, _written) = disk_baseline(jobs)?;
    let baseline = {
        let slack = SlackServer::start(&["xoxb-bench"], &["#ci"]).await?;
        let url = format!("{}/api/chat.postMessage", slack.url());
        let http = reqwest::Client::new();
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for k in 0..16 {
            let (http, url) = (http.clone(), url.clone());
            tasks.spawn(async move {
                for i in (k..reports_expected).step_by(16) {
                    http.post(&url)
                        .bearer_auth("xoxb-bench")
                        .json(&serde_json::json!({"channel": "#ci", "text": format!("bench-{i} success")}))
                        .send()
                        .await?
                        .error_for_status()?;
                }
                anyhow::Ok(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done??;
        }
        let elapsed = start.elapsed();
        anyhow::ensure!(
            slack.messages().len() == reports_expected,
            "baseline: the Slack test server accepted {} of {reports_expected} posts",
            slack.messages().len()
        );
        reports_expected as f64 / elapsed.as_secs_f64()
    };
    let github = GitHubServer::start("gh-bench").await?;
    let slack = SlackServer::start(&["xoxb-bench"], &["#ci"]).await?;
    let pubsub = PubSubServer::start(&["proj/results"], None).await?;
    let gerrit = GerritServer::start("prow", "gerrit-bench", changes, &["Verified"]).await?;
    let dir = tempfile::tempdir()?;
    let secret = |name: &str, value: &str| -> anyhow::Result<String> {
        let path = dir.path().join(name);
        std::fs::write(&path, value)?;
        Ok(path.display().to_string())
    };
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "bosun:\n  reporters:\n\
             \x20   crier: {{rate_per_second: 0}}\n\
             \x20   github:\n      token_file: {}\n      base_url: {}\n\
             \x20   slack:\n      token_file: {}\n      base_url: {}\n\
             \x20   pubsub:\n      emulator_host: {}\n\
             \x20   gerrit:\n      user: prow\n      password_file: {}\n",
            secret("gh", "gh-bench")?,
            github.url(),
            secret("slack", "xoxb-bench")?,
            slack.url(),
            pubsub.host(),
            secret("gerrit", "gerrit-bench")?,
        ),
    )?;
    let server = Server::start_with(
        bin,
        &["--config-path".to_owned(), config.display().to_string()],
    )?;
    let gerrit_url = gerrit.url();
    // Even jobs are GitHub pull request presubmits (GitHub status, Slack, Pub/Sub); odd ones
    // are Gerrit changes (Gerrit review, Slack, Pub/Sub): like Prow's, the GitHub reporter
    // leaves Gerrit jobs alone.
    let job = |i: usize| {
        let slack = serde_json::json!({"slack": {
            "channel": "#ci",
            "job_states_to_report": ["triggered", "pending", "success"],
            "report_template": "{{.Spec.Job}} {{.Status.State}}"
        }});
        let pubsub = serde_json::json!({
            "prow.k8s.io/pubsub.project": "proj",
            "prow.k8s.io/pubsub.topic": "results",
            "prow.k8s.io/pubsub.runID": format!("run-{i}"),
        });
        if i.is_multiple_of(2) {
            serde_json::json!({
                "apiVersion": "prow.k8s.io/v1",
                "kind": "ProwJob",
                "metadata": {"annotations": pubsub},
                "spec": {
                    "type": "presubmit", "job": format!("bench-{i}"), "context": format!("bench-{i}"),
                    "agent": "noop", "report": true,
                    "refs": {"org": "acme", "repo": "widget", "base_ref": "main",
                             "base_sha": "0".repeat(40),
                             "pulls": [{"number": i + 1, "author": "alice", "sha": revision(i)}]},
                    "reporter_config": slack
                }
            })
        } else {
            let mut annotations = pubsub;
            annotations["prow.k8s.io/gerrit-id"] = format!("widget~main~I{i:08x}").into();
            annotations["prow.k8s.io/gerrit-instance"] = gerrit_url.clone().into();
            serde_json::json!({
                "apiVersion": "prow.k8s.io/v1",
                "kind": "ProwJob",
                "metadata": {
                    "labels": {
                        "prow.k8s.io/gerrit-revision": revision(i),
                        "prow.k8s.io/gerrit-patchset": "1",
                        "prow.k8s.io/gerrit-report-label": "Verified",
                    },
                    "annotations": annotations
                },
                "spec": {
                    "type": "presubmit", "job": format!("bench-{i}"), "context": format!("bench-{i}"),
                    "agent": "noop", "report": true,
                    "refs": {"org": gerrit_url, "repo": "widget", "base_ref": "main",
                             "base_sha": "0".repeat(40),
                             "pulls": [{"number": i + 1, "author": "bob", "sha": revision(i)}]},
                    "reporter_config": slack
                }
            })
        }
        .to_string()
    };
    let clients = 16;
    let mut conns = Vec::new();
    for _ in 0..clients {
        conns.push(server.client().await?);
    }
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (k, mut c) in conns.into_iter().enumerate() {
        let bodies: Vec<String> = (k..jobs).step_by(clients).map(job).collect();
        tasks.spawn(async move {
            for prowjob in bodies {
                c.submit(SubmitRequest {
                    prowjob,
                    idempotency_key: String::new(),
                })
                .await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let submitted = start.elapsed();
    // Done when every job's final state reached every reporter.
    let deadline = Instant::now() + Duration::from_secs(600);
    let done_at = loop {
        let finals = (
            github
                .statuses()
                .iter()
                .filter(|s| s.state == "success")
                .count(),
            gerrit.reviews().len(),
            slack
                .messages()
                .iter()
                .filter(|m| m.text.ends_with(" success"))
                .count(),
            pubsub
                .messages()
                .iter()
                .filter(|m| {
                    m.json
                        .as_ref()
                        .and_then(|j| j.get("status")?.as_str().map(|s| s == "success"))
                        .unwrap_or(false)
                })
                .count(),
        );
        let (github_jobs, gerrit_jobs) = (jobs.div_ceil(2), jobs / 2);
        if finals.0 >= github_jobs
            && finals.1 >= gerrit_jobs
            && finals.2 >= jobs
            && finals.3 >= jobs
        {
            break start.elapsed();
        }
        if Instant::now() > deadline {
            bail!("reports incomplete after 600 s: {finals:?} of {jobs}");
        }
        if std::env::var_os("BENCH_VERBOSE").is_some() {
            eprintln!("final reports (github, gerrit, slack, pubsub): {finals:?} of {jobs}");
        }
        // Poll interval while the last reports land; bounded by the deadline above. Coarse on
        // purpose: each check copies every recorded request, which costs the machine's CPU.
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    fn dups<K: std::hash::Hash + Eq>(keys: impl Iterator<Item = K>) -> (usize, usize) {
        let mut seen: HashMap<K, usize> = HashMap::new();
        let mut n = 0;
        for k in keys {
            n += 1;
            *seen.entry(k).or_default() += 1;
        }
        (n, seen.values().filter(|v| **v > 1).map(|v| v - 1).sum())
    }
    let gh = dups(github.statuses().into_iter().map(|s| (s.context, s.state)));
    let gr = dups(gerrit.reviews().into_iter().map(|r| r.revision));
    let sl = dups(slack.messages().into_iter().map(|m| m.text));
    let ps = dups(pubsub.messages().into_iter().filter_map(|m| {
        let j = m.json?;
        Some((
            j.get("runid")?.as_str()?.to_owned(),
            j.get("status")?.as_str()?.to_owned(),
        ))
    }));
    let total = gh.0 + gr.0 + sl.0 + ps.0;
    println!(
        "report fan-out: {jobs} jobs submitted in {:.2} s; {total} reports (github {}, gerrit {}, slack {}, pubsub {}) in {:.2} s = {:.0} reports/s; duplicates: github {}, gerrit {}, slack {}, pubsub {}",
        submitted.as_secs_f64(),
        gh.0,
        gr.0,
        sl.0,
        ps.0,
        done_at.as_secs_f64(),
        total as f64 / done_at.as_secs_f64(),
        gh.1,
        gr.1,
        sl.1,
        ps.1,
    );
    println!(
        "report baseline: {reports_expected} plain HTTP posts (16 concurrent) to a Slack test server: {baseline:.0} posts/s"
    );
    println!(
        "report baseline: disk before the run: {:.0} durable 1-row SQLite commits/s (p99 {:.2} ms); {jobs} artifact trees (3 directories and a file each) created in {:.2} s",
        fsyncs.per_second(),
        fsyncs.p99.as_secs_f64() * 1e3,
        trees.as_secs_f64()
    );
    Ok(())
}

#[path = "../config/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

/// Loads a generated config of `jobs` jobs (best of five) and times matching pull request
/// events against it: the trigger's `/test all` selection (branch and change filters) and a
/// `/test NAME` comment (every job's trigger regex), each over the repository's presubmits.
fn config(jobs: usize) -> anyhow::Result<()> {
    use bosun_gateway::triggers::filter;
    let dir = tempfile::tempdir()?;
    let job_dir = dir.path().join("jobs");
    std::fs::create_dir_all(&job_dir)?;
    std::fs::write(dir.path().join("config.yaml"), support::CONFIG)?;
    support::generate(&job_dir, jobs, 50);
    let mut best = Duration::MAX;
    let mut loaded = None;
    for _ in 0..5 {
        let t = Instant::now();
        let cfg = bosun_gateway_config::load(&dir.path().join("config.yaml"), Some(&job_dir))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        best = best.min(t.elapsed());
        loaded = Some(cfg);
    }
    let loaded = loaded.context("loaded")?;
    println!(
        "config: load + validate {} jobs: best of 5 {:.1} ms",
        loaded.jobs().job_count(),
        best.as_secs_f64() * 1e3
    );
    // The repository with the most presubmits.
    let repo = loaded
        .jobs()
        .presubmits
        .iter()
        .max_by_key(|(_, jobs)| jobs.len())
        .map(|(repo, _)| repo.clone())
        .context("no presubmits generated")?;
    let repo = repo.as_str();
    let presubmits = loaded.presubmits_for(repo);
    // The worst case too: one repository holding every presubmit of the config.
    let every: Vec<&bosun_gateway_config::Presubmit> =
        loaded.jobs().presubmits.values().flatten().collect();
    let files: Vec<String> = (0..50).map(|i| format!("src/pkg{i}/file.go")).collect();
    let name = presubmits
        .first()
        .map(|p| p.name.clone())
        .unwrap_or_default();
    let comment = format!("/test {name}");
    let cases = [
        ("PR opened (/test all set)", "/test all", false),
        ("comment /test NAME", comment.as_str(), false),
        ("PR opened (/test all set)", "/test all", true),
        ("comment /test NAME", comment.as_str(), true),
    ];
    for (what, body, all) in cases {
        let mut samples = Vec::new();
        let mut selected = 0;
        let count = if all { every.len() } else { presubmits.len() };
        let scope = if all {
            "every presubmit of the config"
        } else {
            repo
        };
        for _ in 0..if all { 1_000 } else { 10_000 } {
            let t = Instant::now();
            let presubmits = if all {
                every.clone()
            } else {
                loaded.presubmits_for(repo)
            };
            let mut contexts = || Ok::<_, std::convert::Infallible>(Default::default());
            let f = filter::presubmit_filter(true, &mut contexts, body)
                .unwrap_or_else(|never| match never {});
            let run = filter::filter_presubmits(&f, &mut files.as_slice(), "main", presubmits)
                .unwrap_or_else(|never| match never {});
            selected = run.len();
            samples.push(t.elapsed());
        }
        let (p50, p99, max) = percentiles(&mut samples);
        println!(
            "config: match {what} against {count} presubmits ({scope}; {selected} selected): p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            max.as_secs_f64() * 1e6
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: bench BOSUN_BINARY (intake|intake-parked|intake-rate|intake-rate-parked|echo|sqlite|dispatch|memory|config|report) [args]";
    let bin = PathBuf::from(args.get(1).context(usage)?);
    let num = |i: usize, default: f64| -> f64 {
        args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
    };
    match args.get(2).map(String::as_str) {
        Some("intake") => intake(&bin, num(3, 64.0) as usize, num(4, 50_000.0) as usize).await,
        Some("intake-parked") => {
            PARKED.store(true, std::sync::atomic::Ordering::Relaxed);
            intake(&bin, num(3, 64.0) as usize, num(4, 50_000.0) as usize).await
        }
        Some("intake-rate-parked") => {
            PARKED.store(true, std::sync::atomic::Ordering::Relaxed);
            intake_rate(&bin, num(3, 2_000.0), num(4, 20_000.0) as usize).await
        }
        Some("intake-rate") => intake_rate(&bin, num(3, 2_000.0), num(4, 20_000.0) as usize).await,
        Some("echo") => echo(num(3, 64.0) as usize, num(4, 200_000.0) as usize).await,
        Some("sqlite") => sqlite(num(3, 2_000.0) as usize),
        Some("dispatch") => dispatch(&bin, num(3, 100.0), num(4, 2_000.0) as usize).await,
        Some("memory") => memory(&bin, num(3, 100_000.0) as usize).await,
        Some("config") => config(num(3, 5_000.0) as usize),
        Some("report") => report_fanout(&bin, num(3, 3_334.0) as usize).await,
        _ => bail!(usage),
    }
}
