//! The GitHub commit-status reporter against the GitHub test server, and an end-to-end crier
//! run that fans out to GitHub, Slack and Pub/Sub test servers at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bosun_conformance::test_servers::github::GitHubServer;
use bosun_conformance::test_servers::pubsub::PubSubServer;
use bosun_conformance::test_servers::slack::SlackServer;
use bosun_gateway_config::prow::{Plank, SlackReporter as GlobalSlackConfig};
use bosun_gateway_store::{JobStore, SqliteJobStore, StoreError};
use bosun_proto::{ProwJob, ProwJobState, ProwJobType};
use bosun_reporters::github::{GITHUB_REPORTER_NAME, GitHubAuth, GitHubClient, GitHubReporter};
use bosun_reporters::pubsub::{PubSubReporter, PubSubTarget};
use bosun_reporters::slack::{SlackReporter, SlackTransport};
use bosun_reporters::{Crier, CrierOptions, ReportError, Reporter, ReporterOptions, Secret};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "ghp_testtoken";
const BASE_SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const PULL_SHA: &str = "89abcdef0123456789abcdef0123456789abcdef";

fn token_reporter(url: &str, token: &str) -> GitHubReporter {
    let client = GitHubClient::new(url, GitHubAuth::Token(Secret::new(token))).expect("client");
    GitHubReporter::new(client, Vec::new(), None)
}

fn job(name: &str, state: &str, report: bool) -> ProwJob {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "prow.k8s.io/v1",
        "kind": "ProwJob",
        "metadata": {
            "name": name,
            "annotations": {
                "prow.k8s.io/pubsub.project": "proj",
                "prow.k8s.io/pubsub.topic": "results"
            }
        },
        "spec": {
            "type": "presubmit",
            "job": "pull-widget-unit",
            "context": "pull-widget-unit",
            "agent": "local",
            "report": report,
            "refs": {
                "org": "acme", "repo": "widget", "base_ref": "main", "base_sha": BASE_SHA,
                "pulls": [{"number": 7, "author": "alice", "sha": PULL_SHA}]
            },
            "reporter_config": {"slack": {"channel": "team", "job_states_to_report": ["failure", "success"]}}
        },
        "status": {"state": state, "description": "Job triggered.", "url": "https://prow.example.com/view/gs/b/1"}
    }))
    .expect("job")
}

#[tokio::test]
async fn posts_commit_statuses_like_prow() {
    let server = GitHubServer::start(TOKEN).await.expect("server");
    let reporter = token_reporter(&server.url(), TOKEN);
    assert_eq!(reporter.name(), GITHUB_REPORTER_NAME);
    assert!(reporter.should_report(&job("a", "triggered", true)));
    assert!(!reporter.should_report(&job("a", "triggered", false)));

    reporter
        .report(&job("a", "aborted", true))
        .await
        .expect("report");
    assert_eq!(server.server().violations(), Vec::<String>::new());
    let statuses = server.statuses();
    assert_eq!(statuses.len(), 1);
    let status = &statuses[0];
    assert_eq!(status.repo, "acme/widget");
    assert_eq!(status.sha, PULL_SHA);
    assert_eq!(status.state, "failure");
    assert_eq!(status.context, "pull-widget-unit");
    assert_eq!(
        status.target_url.as_deref(),
        Some("https://prow.example.com/view/gs/b/1")
    );
    assert!(status.description.starts_with("Job triggered.\u{2001}"));
    assert!(
        status
            .description
            .ends_with(&format!(" BaseSHA:{BASE_SHA}"))
    );
    assert!(status.description.len() <= 140);

    server.rate_limit_next(11);
    let err = reporter
        .report(&job("a", "success", true))
        .await
        .expect_err("rate limited");
    match &err {
        ReportError::Transient { retry_after, .. } => {
            assert_eq!(*retry_after, Some(Duration::from_secs(11)))
        }
        other => panic!("expected transient, got {other:?}"),
    }

    let wrong = token_reporter(&server.url(), "ghp_wrong");
    let err = wrong
        .report(&job("a", "success", true))
        .await
        .expect_err("bad credentials");
    assert!(matches!(&err, ReportError::Permanent(m) if m.contains("401")));
    assert!(!format!("{err:?}").contains("ghp_wrong"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crier_fans_out_to_every_test_server_once_per_state() {
    let github = GitHubServer::start(TOKEN).await.expect("github");
    let slack = SlackServer::start(&["xoxb-1"], &["team"])
        .await
        .expect("slack");
    let pubsub = PubSubServer::start(&["proj/results"], None)
        .await
        .expect("pubsub");
    let global = [(
        "*".to_owned(),
        GlobalSlackConfig {
            job_types_to_report: vec![ProwJobType::Periodic],
            channel: "team".to_owned(),
            ..GlobalSlackConfig::default()
        },
    )]
    .into_iter()
    .collect();
    let reporters: Vec<Arc<dyn Reporter>> = vec![
        Arc::new(token_reporter(&github.url(), TOKEN)),
        Arc::new(SlackReporter::new(
            SlackTransport::WebApi {
                base_url: slack.url(),
                tokens: [("*".to_owned(), Secret::new("xoxb-1"))]
                    .into_iter()
                    .collect(),
            },
            global,
        )),
        Arc::new(PubSubReporter::new(
            PubSubTarget::Emulator(pubsub.host()),
            Plank::default(),
        )),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn JobStore> = Arc::new(
        SqliteJobStore::open_in_dir(dir.path())
            .await
            .expect("store"),
    );
    let options = CrierOptions {
        default: ReporterOptions {
            backoff_base: Duration::from_millis(5),
            backoff_max: Duration::from_millis(50),
            ..ReporterOptions::default()
        },
        per_reporter: HashMap::new(),
    };
    let crier = Crier::new(store.clone(), reporters, options);
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(crier.run(shutdown.clone()));

    store
        .create(job("e2e", "triggered", true), None)
        .await
        .expect("create");
    let wait = |n: usize, what: &'static str, count: Box<dyn Fn() -> usize + Send>| async move {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while count() < n {
            assert!(std::time::Instant::now() < deadline, "waiting for {what}");
            // Poll interval of a condition check bounded by a deadline.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let gh = Arc::new(github);
    let ps = Arc::new(pubsub);
    let sl = Arc::new(slack);
    let count_gh = {
        let gh = gh.clone();
        move || gh.statuses().len()
    };
    let count_ps = {
        let ps = ps.clone();
        move || ps.messages().len()
    };
    wait(1, "triggered status", Box::new(count_gh.clone())).await;
    wait(1, "triggered message", Box::new(count_ps.clone())).await;
    for (state, n) in [(ProwJobState::Pending, 2), (ProwJobState::Failure, 3)] {
        loop {
            let stored = store.get("e2e").await.expect("get");
            let mut job = stored.job;
            if let Some(status) = job.status.as_mut() {
                status.state = state;
            }
            match store.update(job, stored.revision).await {
                Ok(_) => break,
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => panic!("update: {e}"),
            }
        }
        wait(n, "status", Box::new(count_gh.clone())).await;
        wait(n, "message", Box::new(count_ps.clone())).await;
    }
    let sl2 = sl.clone();
    wait(1, "slack message", Box::new(move || sl2.messages().len())).await;

    shutdown.cancel();
    handle.await.expect("crier stops");
    let states: Vec<String> = gh.statuses().into_iter().map(|s| s.state).collect();
    assert_eq!(states, ["pending", "pending", "failure"]);
    let published: Vec<String> = ps
        .messages()
        .into_iter()
        .filter_map(|m| m.json?.get("status")?.as_str().map(str::to_owned))
        .collect();
    assert_eq!(published, ["triggered", "pending", "failure"]);
    assert_eq!(
        sl.messages().len(),
        1,
        "slack only for the configured states"
    );
    assert!(gh.server().violations().is_empty());
    assert!(ps.server().violations().is_empty());
    assert!(sl.server().violations().is_empty());
    let prev = store
        .get("e2e")
        .await
        .expect("get")
        .job
        .status
        .expect("status")
        .prev_report_states;
    assert_eq!(prev.len(), 3);
    assert!(prev.values().all(|s| *s == ProwJobState::Failure));
}

fn comment_job(context: &str, state: &str) -> ProwJob {
    let mut j = job(context, state, true);
    j.spec.context = context.to_owned();
    j.spec.job = context.to_owned();
    j.spec.rerun_command = format!("/test {context}");
    j
}

#[tokio::test]
async fn failure_comment_created_updated_and_removed() {
    use bosun_conformance::test_servers::github::BOT_LOGIN;
    let server = GitHubServer::start(TOKEN).await.expect("server");
    server.add_comment("acme/widget", 7, "alice", "please review");
    let reporter = token_reporter(&server.url(), TOKEN).with_failure_comments(Vec::new());
    let bot_comments = || {
        server
            .comments("acme/widget", 7)
            .into_iter()
            .filter(|c| c.user == BOT_LOGIN)
            .collect::<Vec<_>>()
    };

    reporter
        .report(&comment_job("unit", "failure"))
        .await
        .expect("report");
    let first = bot_comments();
    assert_eq!(first.len(), 1);
    assert!(
        first[0]
            .body
            .starts_with("@alice: The following test **failed**")
    );
    assert!(first[0].body.contains(&format!(
        "\nunit | {PULL_SHA} | [link](https://prow.example.com/view/gs/b/1) | unknown | `/test unit`\n"
    )));
    assert!(first[0].body.ends_with("<!-- test report -->"));

    // A second failure moves the comment to the bottom with both rows.
    reporter
        .report(&comment_job("lint", "failure"))
        .await
        .expect("report");
    let second = bot_comments();
    assert_eq!(second.len(), 1);
    assert_ne!(second[0].id, first[0].id);
    assert!(second[0].body.contains("The following tests **failed**"));

    // A restarted reporter lists the comments once, then edits in place.
    let restarted = token_reporter(&server.url(), TOKEN).with_failure_comments(Vec::new());
    restarted
        .report(&comment_job("lint", "success"))
        .await
        .expect("report");
    let third = bot_comments();
    assert_eq!(third.len(), 1);
    assert_eq!(third[0].id, second[0].id, "edited in place");
    assert!(!third[0].body.contains("\nlint | "));

    // Everything passes: the comment goes away; the human's stays.
    restarted
        .report(&comment_job("unit", "success"))
        .await
        .expect("report");
    assert!(bot_comments().is_empty());
    assert_eq!(server.comments("acme/widget", 7).len(), 1);

    let lists = server
        .server()
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/comments"))
        .count();
    assert_eq!(lists, 2, "one listing per reporter instance");
    assert_eq!(server.server().violations(), Vec::<String>::new());

    // No comments for repos in no_comment_repos, and none for pending jobs.
    let quiet = token_reporter(&server.url(), TOKEN).with_failure_comments(vec!["acme".to_owned()]);
    quiet
        .report(&comment_job("unit", "failure"))
        .await
        .expect("report");
    reporter
        .report(&comment_job("unit", "pending"))
        .await
        .expect("report");
    assert!(bot_comments().is_empty());
}

const APP_ID: u64 = 4242;

fn app_key(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../conformance/testdata")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[tokio::test]
async fn github_app_installation_tokens_post_statuses_and_comments() {
    let server = GitHubServer::start_app(
        APP_ID,
        &app_key("github-app-test-key.pub.pem"),
        &[("acme", 77), ("other", 78)],
    )
    .await
    .expect("server");
    let private_key = String::from_utf8(app_key("github-app-test-key.pem")).expect("utf-8");
    let client = GitHubClient::new(
        &server.url(),
        GitHubAuth::App {
            app_id: APP_ID,
            private_key: Secret::new(private_key.clone()),
        },
    )
    .expect("client");
    let reporter = GitHubReporter::new(client, Vec::new(), None).with_failure_comments(Vec::new());

    reporter
        .report(&comment_job("unit", "failure"))
        .await
        .expect("report");
    reporter
        .report(&comment_job("lint", "pending"))
        .await
        .expect("report");
    assert_eq!(server.server().violations(), Vec::<String>::new());
    assert_eq!(server.statuses().len(), 2);
    assert_eq!(
        server.issued_tokens(),
        1,
        "the installation token is reused"
    );
    let bot: Vec<_> = server
        .comments("acme/widget", 7)
        .into_iter()
        .filter(|c| c.user == "bosun-app[bot]")
        .collect();
    assert_eq!(bot.len(), 1, "the failure comment, authored by the app");
    let requests = server.server().requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert!(paths.contains(&"/app/installations"));
    assert!(paths.contains(&"/app/installations/77/access_tokens"));
    assert!(
        paths.contains(&"/app"),
        "the bot login comes from the app's slug"
    );
    assert!(!paths.contains(&"/user"));

    // A key that is not the app's: the JWT is refused and the error says so without secrets.
    let wrong_key = "-----BEGIN RSA PRIVATE KEY-----\nnot a key\n-----END RSA PRIVATE KEY-----\n";
    let err = GitHubClient::new(
        &server.url(),
        GitHubAuth::App {
            app_id: APP_ID,
            private_key: Secret::new(wrong_key),
        },
    )
    .expect_err("unusable key");
    assert!(err.to_string().contains("not an RSA PEM key"));
    assert!(!err.to_string().contains("not a key"));

    // The app is not installed on the job's org: a permanent error naming the org.
    let client = GitHubClient::new(
        &server.url(),
        GitHubAuth::App {
            app_id: APP_ID + 1,
            private_key: Secret::new(private_key),
        },
    )
    .expect("client");
    let stranger = GitHubReporter::new(client, Vec::new(), None);
    let err = stranger
        .report(&comment_job("unit", "failure"))
        .await
        .expect_err("jwt of another app id is refused");
    assert!(matches!(
        &err,
        ReportError::Transient { .. } | ReportError::Permanent(_)
    ));
    assert!(err.to_string().contains("401"), "{err}");
}

#[tokio::test]
async fn summary_comment_waits_for_every_job_then_lists_them() {
    let server = GitHubServer::start(TOKEN).await.expect("server");
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn JobStore> = Arc::new(
        SqliteJobStore::open_in_dir(dir.path())
            .await
            .expect("store"),
    );
    let templates = [("acme".to_owned(), "More at {{.Status.URL}}".to_owned())]
        .into_iter()
        .collect();
    let reporter = token_reporter(&server.url(), TOKEN)
        .with_failure_comments(Vec::new())
        .with_summary_comments(vec!["acme/widget".to_owned()], store.clone())
        .with_report_templates(&templates)
        .expect("templates");
    let bot_comments = || {
        server
            .comments("acme/widget", 7)
            .into_iter()
            .filter(|c| c.user == bosun_conformance::test_servers::github::BOT_LOGIN)
            .collect::<Vec<_>>()
    };
    let mut unit = comment_job("unit", "failure");
    unit.metadata.name = Some("unit-1".to_owned());
    let mut lint = comment_job("lint", "pending");
    lint.metadata.name = Some("lint-1".to_owned());
    store.create(unit.clone(), None).await.expect("create");
    store.create(lint.clone(), None).await.expect("create");

    // lint is still running: no comment yet.
    reporter.report(&unit).await.expect("report");
    assert!(bot_comments().is_empty());

    // lint passes: one comment listing unit's failure, with the template.
    let stored = store.get("lint-1").await.expect("get");
    let mut done = stored.job.clone();
    if let Some(status) = done.status.as_mut() {
        status.state = ProwJobState::Success;
    }
    store
        .update(done.clone(), stored.revision)
        .await
        .expect("update");
    reporter.report(&done).await.expect("report");
    let comments = bot_comments();
    assert_eq!(comments.len(), 1);
    assert!(comments[0].body.contains("\nunit | "));
    assert!(!comments[0].body.contains("\nlint | "));
    assert!(
        comments[0]
            .body
            .contains("\n\nMore at https://prow.example.com/view/gs/b/1\n\n<details>")
    );

    // unit is rerun and passes: "all tests passed" replaces the failure comment.
    let mut rerun = comment_job("unit", "success");
    rerun.metadata.name = Some("unit-2".to_owned());
    store.create(rerun.clone(), None).await.expect("create");
    reporter.report(&rerun).await.expect("report");
    let comments = bot_comments();
    assert_eq!(comments.len(), 1);
    assert!(
        comments[0]
            .body
            .starts_with("@alice: all tests **passed!**"),
        "{}",
        comments[0].body
    );
    assert_eq!(server.server().violations(), Vec::<String>::new());
}
