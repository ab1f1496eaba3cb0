//! Golden tests of the message formats: the GitHub status description and failure comment, and
//! the Gerrit review message. Set `BOSUN_UPDATE_GOLDEN=1` to rewrite the files.

use bosun_proto::ProwJob;
use bosun_reporters::gerrit::generate_report;
use bosun_reporters::github::comment::{comment_body, comment_row};
use bosun_reporters::github::description_with_base_sha;

fn check(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("BOSUN_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
    }
    let expected = std::fs::read_to_string(&path).expect("read golden");
    assert_eq!(actual, expected, "golden file {name}");
}

fn job(name: &str, state: &str, url: &str, optional: &str) -> ProwJob {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "prow.k8s.io/v1",
        "kind": "ProwJob",
        "metadata": {"name": name, "labels": {"prow.k8s.io/is-optional": optional}},
        "spec": {
            "type": "presubmit", "job": name, "context": name,
            "rerun_command": format!("/test {name}"),
            "refs": {"org": "acme", "repo": "widget", "base_sha": "0123456789abcdef0123456789abcdef01234567",
                     "pulls": [{"number": 7, "author": "alice", "sha": "89abcdef0123456789abcdef0123456789abcdef"}]}
        },
        "status": {"state": state, "url": url}
    }))
    .expect("job")
}

#[test]
fn github_status_descriptions() {
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let mut out = String::new();
    for description in [
        "Job triggered.",
        "Job succeeded.",
        "Job failed.",
        "Pod pending timeout.",
        &"a very long description ".repeat(10),
    ] {
        for base in ["", sha] {
            let d = description_with_base_sha(description, base);
            assert!(d.len() <= 140);
            out.push_str(&format!("{} bytes: {d}\n", d.len()));
        }
    }
    check("github_status_descriptions.txt", &out);
}

#[test]
fn github_failure_comment() {
    let rows = vec![
        comment_row(&job(
            "pull-widget-unit",
            "failure",
            "https://prow.example.com/view/gs/b/1",
            "false",
        )),
        comment_row(&job(
            "pull-widget-lint",
            "failure",
            "https://prow.example.com/view/gs/b/2",
            "true",
        )),
    ];
    check(
        "github_failure_comment.md",
        &comment_body("alice", &rows, None),
    );
}

#[test]
fn gerrit_review_message() {
    let jobs = vec![
        job(
            "unit",
            "success",
            "https://prow.example.com/view/gs/b/1",
            "false",
        ),
        job(
            "lint",
            "failure",
            "https://prow.example.com/view/gs/b/2",
            "false",
        ),
        job("e2e", "error", "", "false"),
        job(
            "integration",
            "aborted",
            "https://prow.example.com/view/gs/b/4",
            "false",
        ),
    ];
    check("gerrit_review_message.txt", &generate_report(&jobs));
}
