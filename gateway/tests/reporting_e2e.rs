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
