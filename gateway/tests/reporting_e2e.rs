//! Reporting end to end: a real `bosun serve` reports job state changes to Slack (a
//! wire-level test server), exactly once each, also across a restart.

mod common;

use bosun_conformance::test_servers::slack::SlackServer;
use bosun_proto::ProwJobState;
use common::*;

async fn wait_messages(slack: &SlackServer, n: usize, gw: &Gateway) {
    let end = tokio::time::Instant::now() + DEADLINE;
    while slack.messages().len() < n {
        assert!(
            tokio::time::Instant::now() < end,
            "only {} slack messages; gateway log:\n{}",
            slack.messages().len(),
            gw.logs()
        );
        // Poll interval of a condition check bounded by a deadline.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_jobs_reach_slack_once_even_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let slack = SlackServer::start(&["xoxb-test-token"], &["#ci"])
        .await
        .expect("slack");
    let token = dir.path().join("slack-token");
    std::fs::write(&token, "xoxb-test-token\n").expect("token");
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "slack_reporter_configs:\n  '*':\n    channel: '#ci'\n    job_states_to_report: [success, failure]\n    job_types_to_report: [periodic]\n\
             bosun:\n  reporters:\n    slack:\n      token_file: {}\n      base_url: {}\n",
            token.display(),
            slack.url()
        ),
    )
    .expect("config");
    let data = dir.path().join("data");
    let args = [
        "--config-path",
        &config.display().to_string(),
        "--http-addr",
        "127.0.0.1:0",
    ];
    let mut gw = Gateway::start(&data, &args);
    let mut c = gw.client().await;
    let ok = submit(&mut c, local_job("report-ok", "true")).await;
    let bad = submit(&mut c, local_job("report-bad", "exit 1")).await;
    assert_eq!(
        wait_complete(&mut c, &ok).await.state(),
        ProwJobState::Success
    );
    assert_eq!(
        wait_complete(&mut c, &bad).await.state(),
        ProwJobState::Failure
    );
    wait_messages(&slack, 2, &gw).await;
    let texts: Vec<String> = slack.messages().iter().map(|m| m.text.clone()).collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("Job report-ok of type periodic ended with state success")),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains("report-bad") && t.contains("failure")),
        "{texts:?}"
    );
    assert!(slack.messages().iter().all(|m| m.channel == "#ci"));
    let end = tokio::time::Instant::now() + DEADLINE;
    loop {
        let job = get(&mut c, &ok).await;
        let reported = job
            .status
            .and_then(|s| s.prev_report_states.get("slackreporter").copied());
        if reported == Some(ProwJobState::Success) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "prev_report_states not persisted"
        );
        // Poll interval of a condition check bounded by a deadline.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let http = gw.http_addr.clone().expect("http");
    let (_, metrics) = tokio::task::spawn_blocking(move || http_get(&http, "/metrics"))
        .await
        .expect("metrics");
    assert!(
        metrics.contains("bosun_reporter_reports_sent_total"),
        "{metrics}"
    );

    // A restart reports nothing twice.
    drop(c);
    gw.kill9();
    let gw = Gateway::start(&data, &args);
    let mut c = gw.client().await;
    let third = submit(&mut c, local_job("report-third", "true")).await;
    wait_complete(&mut c, &third).await;
    wait_messages(&slack, 3, &gw).await;
    let texts: Vec<String> = slack.messages().iter().map(|m| m.text.clone()).collect();
    assert_eq!(texts.len(), 3, "no repeats after the restart: {texts:?}");
    assert!(
        !gw.logs().contains("xoxb-test-token"),
        "the token is never logged"
    );
}

mod all_reporters {
    use std::collections::{BTreeMap, HashMap};

    use bosun_conformance::test_servers::Canned;
    use bosun_conformance::test_servers::gerrit::{Change, GerritServer};
    use bosun_conformance::test_servers::github::GitHubServer;
    use bosun_conformance::test_servers::pubsub::PubSubServer;
    use bosun_conformance::test_servers::slack::SlackServer;
    use bosun_proto::ProwJobState;

    use super::common::*;

    const GITHUB_TOKEN: &str = "ghp_e2e_secret_token";
    const SLACK_TOKEN: &str = "xoxb-e2e-secret-token";
    const GERRIT_PASSWORD: &str = "gerrit-e2e-secret-password";
    const BASE_SHA: &str = "0123456789abcdef0123456789abcdef01234567";
    const CHANGE: &str = "widget~main~I0123";

    /// A presubmit on GitHub-hosted `acme/widget` pull 7 (statuses, Slack via its own
    /// channel, Pub/Sub via annotations).
    fn github_job(job: &str, sha: &str, script: &str) -> String {
        serde_json::json!({
            "apiVersion": "prow.k8s.io/v1",
            "kind": "ProwJob",
            "metadata": {"annotations": {
                "prow.k8s.io/pubsub.project": "proj",
                "prow.k8s.io/pubsub.topic": "results",
                "prow.k8s.io/pubsub.runID": format!("{job}@{}", &sha[..4]),
            }},
            "spec": {
                "type": "presubmit", "job": job, "context": job, "agent": "local",
                "report": true,
                "rerun_command": format!("/test {job}"),
                "refs": {"org": "acme", "repo": "widget", "base_ref": "main", "base_sha": BASE_SHA,
                         "pulls": [{"number": 7, "author": "alice", "sha": sha}]},
                "decoration_config": {"skip_cloning": true},
                "reporter_config": {"slack": {"channel": "#ci", "job_states_to_report": ["success", "failure"]}},
                "pod_spec": {"containers": [{"name": "test", "image": "local", "command": ["sh", "-c"], "args": [script]}]}
            }
        })
        .to_string()
    }

    /// A presubmit on Gerrit change `CHANGE` revision `revision` (voting Verified).
    fn gerrit_job(job: &str, revision: &str, instance: &str, script: &str) -> String {
        serde_json::json!({
            "apiVersion": "prow.k8s.io/v1",
            "kind": "ProwJob",
            "metadata": {
                "labels": {
                    "prow.k8s.io/gerrit-revision": revision,
                    "prow.k8s.io/gerrit-patchset": "1",
                    "prow.k8s.io/gerrit-report-label": "Verified",
                },
                "annotations": {
                    "prow.k8s.io/gerrit-id": CHANGE,
                    "prow.k8s.io/gerrit-instance": instance,
                }
            },
            "spec": {
                "type": "presubmit", "job": job, "context": job, "agent": "local", "report": true,
                "refs": {"org": instance, "repo": "widget", "base_ref": "main", "base_sha": BASE_SHA,
                         "pulls": [{"number": 123, "author": "bob", "sha": revision}]},
                "decoration_config": {"skip_cloning": true},
                "pod_spec": {"containers": [{"name": "test", "image": "local", "command": ["sh", "-c"], "args": [script]}]}
            }
        })
        .to_string()
    }

    struct Sinks {
        github: GitHubServer,
        slack: SlackServer,
        pubsub: PubSubServer,
        gerrit: GerritServer,
    }

    impl Sinks {
        fn outage(&self, github: bool, others: bool) {
            let down = Canned::json(503, serde_json::json!({"message": "Service Unavailable"}));
            for (server, on) in [
                (self.github.server(), github),
                (self.slack.server(), others),
                (self.pubsub.server(), others),
                (self.gerrit.server(), others),
            ] {
                if on {
                    server.start_outage(down.clone());
                } else {
                    server.end_outage();
                }
            }
        }

        /// (context@sha, state) of every accepted GitHub status.
        fn statuses(&self) -> Vec<(String, String)> {
            self.github
                .statuses()
                .into_iter()
                .map(|s| (format!("{}@{}", s.context, &s.sha[..4]), s.state))
                .collect()
        }

        /// (runid, status) of every Pub/Sub message.
        fn published(&self) -> Vec<(String, String)> {
            self.pubsub
                .messages()
                .into_iter()
                .filter_map(|m| {
                    let json = m.json?;
                    Some((
                        json.get("runid")?.as_str()?.to_owned(),
                        json.get("status")?.as_str()?.to_owned(),
                    ))
                })
                .collect()
        }

        /// Bodies of the bot's comments on pull 7.
        fn bot_comments(&self) -> Vec<String> {
            self.github
                .comments("acme/widget", 7)
                .into_iter()
                .filter(|c| c.user == self.github.bot_login())
                .map(|c| c.body)
                .collect()
        }

        fn slack_texts(&self) -> Vec<String> {
            self.slack.messages().into_iter().map(|m| m.text).collect()
        }

        fn reviews(&self) -> Vec<(String, BTreeMap<String, i64>)> {
            self.gerrit
                .reviews()
                .into_iter()
                .map(|r| (r.revision, r.labels))
                .collect()
        }
    }

    fn no_duplicates<T: std::hash::Hash + Eq + std::fmt::Debug + Clone>(what: &str, items: &[T]) {
        let mut seen: HashMap<T, usize> = HashMap::new();
        for item in items {
            *seen.entry(item.clone()).or_default() += 1;
        }
        let repeated: Vec<_> = seen.into_iter().filter(|(_, n)| *n > 1).collect();
        assert!(repeated.is_empty(), "{what} reported twice: {repeated:?}");
    }

    async fn eventually_async(what: &str, gw: &Gateway, mut cond: impl FnMut() -> bool) {
        let end = tokio::time::Instant::now() + DEADLINE;
        while !cond() {
            assert!(
                tokio::time::Instant::now() < end,
                "timed out waiting for {what}; gateway log:\n{}",
                gw.logs()
            );
            // Poll interval of a condition check bounded by a deadline.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Every reporter at once through a real `bosun serve`: GitHub down delays only GitHub;
    /// then every sink is down while jobs finish, the gateway is killed with -9 with those
    /// reports pending, and after a restart each lands exactly once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_reporter_delivers_once_through_outages_and_kill9() {
        let rev1 = "1".repeat(40);
        let rev2 = "2".repeat(40);
        let changes = [(
            CHANGE.to_owned(),
            Change {
                status: "NEW".to_owned(),
                revisions: vec![rev1.clone(), rev2.clone()],
            },
        )]
        .into_iter()
        .collect();
        let sinks = Sinks {
            github: GitHubServer::start(GITHUB_TOKEN).await.expect("github"),
            slack: SlackServer::start(&[SLACK_TOKEN], &["#ci"])
                .await
                .expect("slack"),
            pubsub: PubSubServer::start(&["proj/results"], None)
                .await
                .expect("pubsub"),
            gerrit: GerritServer::start("prow", GERRIT_PASSWORD, changes, &["Verified"])
                .await
                .expect("gerrit"),
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = |name: &str, value: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("{value}\n")).expect("secret");
            path.display().to_string()
        };
        let config = dir.path().join("config.yaml");
        std::fs::write(
            &config,
            format!(
                "bosun:\n  reporters:\n    crier:\n      backoff_base: 50ms\n      backoff_max: 1s\n\
                 \x20   github:\n      token_file: {}\n      base_url: {}\n\
                 \x20   slack:\n      token_file: {}\n      base_url: {}\n\
                 \x20   pubsub:\n      emulator_host: {}\n\
                 \x20   gerrit:\n      user: prow\n      password_file: {}\n",
                secret("github-token", GITHUB_TOKEN),
                sinks.github.url(),
                secret("slack-token", SLACK_TOKEN),
                sinks.slack.url(),
                sinks.pubsub.host(),
                secret("gerrit-password", GERRIT_PASSWORD),
            ),
        )
        .expect("config");
        let data = dir.path().join("data");
        let args = [
            "--config-path",
            &config.display().to_string(),
            "--http-addr",
            "127.0.0.1:0",
        ];
        let gerrit_url = sinks.gerrit.url();
        let sha_a = "a".repeat(40);
        let sha_b = "b".repeat(40);

        // 1. GitHub answers 503: the others keep reporting, GitHub only retries.
        sinks.outage(true, false);
        let mut gw = Gateway::start(&data, &args);
        let mut c = gw.client().await;
        let a = submit(&mut c, github_job("unit-a", &sha_a, "exit 1")).await;
        let g1 = submit(&mut c, gerrit_job("verify-1", &rev1, &gerrit_url, "true")).await;
        assert_eq!(
            wait_complete(&mut c, &a).await.state(),
            ProwJobState::Failure
        );
        assert_eq!(
            wait_complete(&mut c, &g1).await.state(),
            ProwJobState::Success
        );
        eventually_async("slack, pubsub and gerrit to report", &gw, || {
            sinks.slack_texts().len() == 1
                && sinks
                    .published()
                    .contains(&("unit-a@aaaa".to_owned(), "failure".to_owned()))
                && sinks.reviews().len() == 1
        })
        .await;
        eventually_async("github to be retried", &gw, || {
            sinks
                .github
                .server()
                .requests()
                .iter()
                .filter(|r| r.path.contains("/statuses/"))
                .count()
                >= 3
        })
        .await;
        assert!(sinks.statuses().is_empty(), "github was down");
        sinks.outage(false, false);
        eventually_async(
            "github to catch up with status and failure comment",
            &gw,
            || {
                sinks
                    .statuses()
                    .contains(&("unit-a@aaaa".to_owned(), "failure".to_owned()))
                    && sinks.bot_comments().len() == 1
            },
        )
        .await;
        assert!(
            sinks.bot_comments()[0].contains(&format!("\nunit-a | {sha_a} | ")),
            "{:?}",
            sinks.bot_comments()
        );

        // 2. Every sink down while two more jobs finish; kill -9 with their reports pending.
        sinks.outage(true, true);
        let b = submit(&mut c, github_job("unit-b", &sha_b, "true")).await;
        let g2 = submit(&mut c, gerrit_job("verify-2", &rev2, &gerrit_url, "exit 1")).await;
        assert_eq!(
            wait_complete(&mut c, &b).await.state(),
            ProwJobState::Success
        );
        assert_eq!(
            wait_complete(&mut c, &g2).await.state(),
            ProwJobState::Failure
        );
        let pending = get(&mut c, &b).await;
        assert!(
            pending.status.as_ref().is_none_or(
                |s| s.prev_report_states.get("github-reporter") != Some(&ProwJobState::Success)
            ),
            "unit-b cannot have been reported yet"
        );
        drop(c);
        gw.kill9();
        let first_logs = gw.logs();
        sinks.outage(false, false);
        let gw = Gateway::start(&data, &args);
        let mut c = gw.client().await;

        // 3. After the restart every pending report lands; a marker job proves the crier has
        // gone through its backlog before the counts are checked.
        eventually_async("the pending reports after the restart", &gw, || {
            sinks
                .statuses()
                .contains(&("unit-b@bbbb".to_owned(), "success".to_owned()))
                && sinks.slack_texts().len() == 2
                && sinks
                    .published()
                    .contains(&("unit-b@bbbb".to_owned(), "success".to_owned()))
                && sinks.reviews().len() == 2
        })
        .await;
        let marker = submit(&mut c, github_job("unit-c", &sha_b, "true")).await;
        wait_complete(&mut c, &marker).await;
        eventually_async("the marker's reports", &gw, || {
            sinks
                .statuses()
                .contains(&("unit-c@bbbb".to_owned(), "success".to_owned()))
                && sinks
                    .published()
                    .contains(&("unit-c@bbbb".to_owned(), "success".to_owned()))
                && sinks.slack_texts().len() == 3
        })
        .await;

        // `triggered` and `pending` are both GitHub's `pending`: at most two of those per
        // context, one of every other state.
        let mut per_state: HashMap<(String, String), usize> = HashMap::new();
        for status in sinks.statuses() {
            *per_state.entry(status).or_default() += 1;
        }
        for ((context, state), n) in per_state {
            let limit = if state == "pending" { 2 } else { 1 };
            assert!(
                n <= limit,
                "github status {state} of {context} posted {n} times"
            );
        }
        // unit-a passes on a rerun: its row goes, and with it the failure comment.
        assert_eq!(
            sinks.bot_comments().len(),
            1,
            "unit-a's failure is still listed"
        );
        let rerun = submit(&mut c, github_job("unit-a", &sha_b, "true")).await;
        wait_complete(&mut c, &rerun).await;
        eventually_async("the failure comment to be removed", &gw, || {
            sinks.bot_comments().is_empty()
        })
        .await;

        no_duplicates("pubsub message", &sinks.published());
        no_duplicates("slack message", &sinks.slack_texts());
        let reviews = sinks.reviews();
        assert_eq!(reviews.len(), 2, "one review per revision: {reviews:?}");
        assert_eq!(reviews[0].0, rev1);
        assert_eq!(reviews[0].1.get("Verified"), Some(&1));
        assert_eq!(reviews[1].0, rev2);
        assert_eq!(reviews[1].1.get("Verified"), Some(&-1));
        for server in [
            sinks.github.server(),
            sinks.slack.server(),
            sinks.pubsub.server(),
            sinks.gerrit.server(),
        ] {
            assert_eq!(server.violations(), Vec::<String>::new());
        }
        let logs = format!("{first_logs}\n{}", gw.logs());
        for secret in [GITHUB_TOKEN, SLACK_TOKEN, GERRIT_PASSWORD] {
            assert!(!logs.contains(secret), "a secret reached the log");
        }
    }
}
