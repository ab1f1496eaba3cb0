//! The Slack reporter against the Slack test server.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bosun_conformance::test_servers::slack::SlackServer;
use bosun_gateway_config::prow::SlackReporter as GlobalSlackConfig;
use bosun_proto::{ProwJob, ProwJobState, ProwJobType};
use bosun_reporters::slack::{
    FailureHistory, SLACK_REPORTER_NAME, SlackReporter, SlackTransport, count_previous_failures,
};
use bosun_reporters::{ReportError, Reporter, Secret};

const TOKEN: &str = "xoxb-test-token-123";

fn job(job_type: &str, state: &str, slack: Option<serde_json::Value>) -> ProwJob {
    let mut spec = serde_json::json!({
        "type": job_type,
        "job": "ci-nightly",
        "agent": "local",
        "refs": {"org": "acme", "repo": "widget", "base_ref": "main", "base_sha": "abc"},
    });
    if let Some(slack) = slack {
        spec["reporter_config"] = serde_json::json!({ "slack": slack });
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "prow.k8s.io/v1",
        "kind": "ProwJob",
        "metadata": {"name": "3f6a2b1c-0000-4000-8000-000000000001"},
        "spec": spec,
        "status": {"state": state, "url": "https://prow.example.com/view/gs/b/logs/ci-nightly/7"}
    }))
    .expect("job")
}

fn global(entries: &[(&str, GlobalSlackConfig)]) -> BTreeMap<String, GlobalSlackConfig> {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn star_config() -> GlobalSlackConfig {
    GlobalSlackConfig {
        job_types_to_report: vec![ProwJobType::Periodic, ProwJobType::Postsubmit],
        host: String::new(),
        channel: "ci-alerts".to_owned(),
        job_states_to_report: Some(vec![ProwJobState::Failure, ProwJobState::Error]),
        report_template: String::new(),
        report: None,
    }
}

fn web_api(server: &SlackServer) -> SlackTransport {
    SlackTransport::WebApi {
        base_url: server.url(),
        tokens: [("*".to_owned(), Secret::new(TOKEN))].into_iter().collect(),
    }
}

#[test]
fn default_message_matches_golden() {
    let reporter = SlackReporter::new(
        SlackTransport::Webhook {
            url: Secret::new("http://127.0.0.1:9/unused"),
        },
        global(&[("*", star_config())]),
    );
    let text = reporter
        .render_message(&job("periodic", "failure", None))
        .expect("render");
    let golden = include_str!("golden/slack_default_message.txt");
    assert_eq!(text, golden.trim_end_matches('\n'));
}

#[test]
fn should_report_follows_prow_rules() {
    let reporter = SlackReporter::new(
        SlackTransport::Webhook {
            url: Secret::new("http://127.0.0.1:9/unused"),
        },
        global(&[("*", star_config())]),
    );
    // Global: periodic failures yes, successes and presubmits no.
    assert!(reporter.should_report(&job("periodic", "failure", None)));
    assert!(!reporter.should_report(&job("periodic", "success", None)));
    assert!(!reporter.should_report(&job("presubmit", "failure", None)));
    // A job with its own channel is reported whatever its type; its states win.
    let own = serde_json::json!({"channel": "team", "job_states_to_report": ["success"]});
    assert!(reporter.should_report(&job("presubmit", "success", Some(own.clone()))));
    assert!(!reporter.should_report(&job("presubmit", "failure", Some(own))));
    // `report: false` silences; an empty states list reports nothing.
    let off = serde_json::json!({"channel": "team", "report": false});
    assert!(!reporter.should_report(&job("periodic", "failure", Some(off))));
    let none = serde_json::json!({"job_states_to_report": []});
    assert!(!reporter.should_report(&job("periodic", "failure", Some(none))));
    // Without any config nothing is reported.
    let bare = SlackReporter::new(
        SlackTransport::Webhook {
            url: Secret::new("http://127.0.0.1:9/unused"),
        },
        BTreeMap::new(),
    );
    assert!(!bare.should_report(&job("periodic", "failure", None)));
    // The org entry wins over `*`.
    let mut org = star_config();
    org.channel = "acme-alerts".to_owned();
    let by_org = SlackReporter::new(
        SlackTransport::Webhook {
            url: Secret::new("http://127.0.0.1:9/unused"),
        },
        global(&[("*", star_config()), ("acme", org)]),
    );
    assert_eq!(
        by_org
            .merged_config(&job("periodic", "failure", None))
            .0
            .channel,
        "acme-alerts"
    );
    assert_eq!(by_org.name(), SLACK_REPORTER_NAME);
}

#[tokio::test]
async fn posts_to_chat_post_message() {
    let server = SlackServer::start(&[TOKEN], &["ci-alerts", "team"])
        .await
        .expect("server");
    let reporter = SlackReporter::new(web_api(&server), global(&[("*", star_config())]));
    reporter
        .report(&job("periodic", "failure", None))
        .await
        .expect("report");
    // A job-level template and channel.
    let own = serde_json::json!({"channel": "team", "report_template": "{{.Spec.Job}} is {{.Status.State}}"});
    reporter
        .report(&job("presubmit", "failure", Some(own)))
        .await
        .expect("report");
    assert_eq!(server.server().violations(), Vec::<String>::new());
    let messages = server.messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].channel, "ci-alerts");
    assert_eq!(
        messages[0].text,
        include_str!("golden/slack_default_message.txt").trim_end_matches('\n')
    );
    assert_eq!(messages[0].username.as_deref(), Some("prow"));
    assert_eq!(messages[1].channel, "team");
    assert_eq!(messages[1].text, "ci-nightly is failure");
    let request = &server.server().requests()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/api/chat.postMessage");
    assert_eq!(request.bearer(), Some(TOKEN));
}

#[tokio::test]
async fn slack_errors_map_to_report_errors_without_the_token() {
    let server = SlackServer::start(&[TOKEN], &["ci-alerts"])
        .await
        .expect("server");
    let reporter = SlackReporter::new(web_api(&server), global(&[("*", star_config())]));

    let unknown = serde_json::json!({"channel": "nowhere"});
    let err = reporter
        .report(&job("periodic", "failure", Some(unknown)))
        .await
        .expect_err("unknown channel");
    assert!(matches!(&err, ReportError::Permanent(m) if m.contains("channel_not_found")));
    assert!(!err.to_string().contains(TOKEN));

    server.rate_limit_next(7);
    let err = reporter
        .report(&job("periodic", "failure", None))
        .await
        .expect_err("rate limited");
    match err {
        ReportError::Transient { retry_after, .. } => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)));
        }
        other => panic!("expected a transient error, got {other:?}"),
    }

    let wrong = SlackReporter::new(
        SlackTransport::WebApi {
            base_url: server.url(),
            tokens: [("*".to_owned(), Secret::new("xoxb-wrong"))]
                .into_iter()
                .collect(),
        },
        global(&[("*", star_config())]),
    );
    let err = wrong
        .report(&job("periodic", "failure", None))
        .await
        .expect_err("bad token");
    assert!(err.to_string().contains("invalid_auth"), "{err}");
    assert!(!err.to_string().contains("xoxb-wrong"));

    // An unknown host has no token.
    let other_host = serde_json::json!({"host": "other.slack.com"});
    let err = reporter
        .report(&job("periodic", "failure", Some(other_host)))
        .await
        .expect_err("unknown host");
    assert!(matches!(err, ReportError::Permanent(_)));
}

#[tokio::test]
async fn posts_to_an_incoming_webhook() {
    let server = SlackServer::start(&[TOKEN], &["ci-alerts"])
        .await
        .expect("server");
    let reporter = SlackReporter::new(
        SlackTransport::Webhook {
            url: Secret::new(server.webhook_url()),
        },
        global(&[("*", star_config())]),
    );
    reporter
        .report(&job("periodic", "failure", None))
        .await
        .expect("report");
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert!(messages[0].via_webhook);
    assert_eq!(server.server().violations(), Vec::<String>::new());

    // The webhook URL is a secret: errors must not show it.
    let dead = SlackReporter::new(
        SlackTransport::Webhook {
            url: Secret::new("http://127.0.0.1:1/services/T/B/secretpart"),
        },
        global(&[("*", star_config())]),
    );
    let err = dead
        .report(&job("periodic", "failure", None))
        .await
        .expect_err("nothing listens");
    assert!(!format!("{err:?}").contains("secretpart"), "{err:?}");
}

struct FixedHistory(u32);

#[async_trait]
impl FailureHistory for FixedHistory {
    async fn previous_consecutive_failures(&self, _job: &ProwJob) -> Result<u32, String> {
        Ok(self.0)
    }
}

#[tokio::test]
async fn alerts_only_after_n_consecutive_failures() {
    let server = SlackServer::start(&[TOKEN], &["ci-alerts"])
        .await
        .expect("server");
    let quiet = SlackReporter::new(web_api(&server), global(&[("*", star_config())]))
        .with_min_consecutive_failures(3, Arc::new(FixedHistory(1)));
    quiet
        .report(&job("periodic", "failure", None))
        .await
        .expect("suppressed");
    assert!(server.messages().is_empty());
    let loud = SlackReporter::new(web_api(&server), global(&[("*", star_config())]))
        .with_min_consecutive_failures(3, Arc::new(FixedHistory(2)));
    loud.report(&job("periodic", "failure", None))
        .await
        .expect("third failure");
    assert_eq!(server.messages().len(), 1);

    // Counting from the store's runs (oldest first).
    let run = |name: &str, state: &str| {
        let mut j = job("periodic", state, None);
        j.metadata.name = Some(name.to_owned());
        j
    };
    let runs = vec![
        run("r1", "failure"),
        run("r2", "success"),
        run("r3", "failure"),
        run("r4", "pending"),
        run("r5", "failure"),
        run("r6", "failure"),
    ];
    assert_eq!(count_previous_failures(&runs, &runs[5]), 2);
    assert_eq!(count_previous_failures(&runs, &runs[2]), 0);
}
