//! The Pub/Sub reporter against the Pub/Sub test server.

use bosun_conformance::test_servers::pubsub::PubSubServer;
use bosun_gateway_config::prow::Plank;
use bosun_proto::ProwJob;
use bosun_reporters::pubsub::{PUBSUB_REPORTER_NAME, PubSubReporter, PubSubTarget, TokenSource};
use bosun_reporters::{ReportError, Reporter, Secret};

fn job(annotations: serde_json::Value, labels: serde_json::Value) -> ProwJob {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "prow.k8s.io/v1",
        "kind": "ProwJob",
        "metadata": {
            "name": "3f6a2b1c-0000-4000-8000-000000000002",
            "annotations": annotations,
            "labels": labels,
        },
        "spec": {
            "type": "presubmit",
            "job": "pull-widget-unit",
            "agent": "local",
            "refs": {
                "org": "acme", "repo": "widget", "base_ref": "main", "base_sha": "abc123",
                "pulls": [{"number": 7, "author": "alice", "sha": "def456"}]
            },
            "extra_refs": [{"org": "acme", "repo": "tools", "base_ref": "main"}]
        },
        "status": {
            "state": "failure",
            "description": "Job failed.",
            "url": "https://prow.example.com/view/gs/bucket/pr-logs/pull/acme_widget/7/pull-widget-unit/42"
        }
    }))
    .expect("job")
}

fn pubsub_job() -> ProwJob {
    job(
        serde_json::json!({
            "prow.k8s.io/pubsub.project": "my-project",
            "prow.k8s.io/pubsub.topic": "prow-results",
            "prow.k8s.io/pubsub.runID": "run-1"
        }),
        serde_json::json!({"prow.k8s.io/pubsub.topic": "ignored-label-topic"}),
    )
}

fn plank() -> Plank {
    let mut plank = Plank::default();
    plank
        .job_url_prefix_config
        .insert("*".to_owned(), "https://prow.example.com/view/".to_owned());
    plank
}

#[test]
fn message_matches_golden() {
    let reporter = PubSubReporter::new(PubSubTarget::Emulator("127.0.0.1:9".to_owned()), plank());
    let message = reporter.message(&pubsub_job()).expect("message");
    let json = serde_json::to_string_pretty(&message).expect("json");
    let golden = include_str!("golden/pubsub_message.json");
    assert_eq!(json, golden.trim_end_matches('\n'));
}

#[test]
fn project_and_topic_from_annotations_then_labels() {
    let reporter = PubSubReporter::new(PubSubTarget::Emulator("127.0.0.1:9".to_owned()), plank());
    assert!(reporter.should_report(&pubsub_job()));
    let by_label = job(
        serde_json::json!({}),
        serde_json::json!({
            "prow.k8s.io/pubsub.project": "p",
            "prow.k8s.io/pubsub.topic": "t"
        }),
    );
    assert!(reporter.should_report(&by_label));
    let message = reporter.message(&by_label).expect("message");
    assert_eq!(
        (message.project.as_str(), message.topic.as_str()),
        ("p", "t")
    );
    assert_eq!(message.runid, "");
    let no_topic = job(
        serde_json::json!({"prow.k8s.io/pubsub.project": "p"}),
        serde_json::json!({}),
    );
    assert!(!reporter.should_report(&no_topic));
    assert_eq!(reporter.name(), PUBSUB_REPORTER_NAME);
}

#[tokio::test]
async fn publishes_to_the_emulator_without_credentials() {
    let server = PubSubServer::start(&["my-project/prow-results"], None)
        .await
        .expect("server");
    let reporter = PubSubReporter::new(PubSubTarget::Emulator(server.host()), plank());
    reporter.report(&pubsub_job()).await.expect("publish");
    assert_eq!(server.server().violations(), Vec::<String>::new());
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].project, "my-project");
    assert_eq!(messages[0].topic, "prow-results");
    let golden: serde_json::Value =
        serde_json::from_str(include_str!("golden/pubsub_message.json")).expect("golden");
    assert_eq!(messages[0].json.as_ref(), Some(&golden));
    assert!(messages[0].attributes.is_none(), "prow sends no attributes");
    let request = &server.server().requests()[0];
    assert_eq!(
        request.path,
        "/v1/projects/my-project/topics/prow-results:publish"
    );
    assert_eq!(request.header("authorization"), None);
}

#[tokio::test]
async fn publishes_with_a_bearer_token_and_maps_errors() {
    let token = "ya29.secret-token";
    let server = PubSubServer::start(&["my-project/prow-results"], Some(token))
        .await
        .expect("server");
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).expect("write token");
    let reporter = PubSubReporter::new(
        PubSubTarget::Api {
            base_url: server.url(),
            token: TokenSource::File(token_file),
        },
        plank(),
    );
    reporter.report(&pubsub_job()).await.expect("publish");
    assert_eq!(server.messages().len(), 1);
    assert_eq!(server.server().requests()[0].bearer(), Some(token));

    server.unavailable_next();
    let err = reporter.report(&pubsub_job()).await.expect_err("503");
    assert!(matches!(err, ReportError::Transient { .. }), "{err:?}");

    let unknown_topic = job(
        serde_json::json!({
            "prow.k8s.io/pubsub.project": "my-project",
            "prow.k8s.io/pubsub.topic": "missing"
        }),
        serde_json::json!({}),
    );
    let err = reporter.report(&unknown_topic).await.expect_err("404");
    assert!(
        matches!(&err, ReportError::Permanent(m) if m.contains("404")),
        "{err:?}"
    );

    let wrong = PubSubReporter::new(
        PubSubTarget::Api {
            base_url: server.url(),
            token: TokenSource::Static(Secret::new("wrong-token")),
        },
        plank(),
    );
    let err = wrong.report(&pubsub_job()).await.expect_err("401");
    assert!(!err.to_string().contains("wrong-token"));
    assert!(!err.to_string().contains(token));
    assert_eq!(server.messages().len(), 1);
}
