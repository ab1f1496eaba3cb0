//! GitHub webhooks end to end: a real `bosun serve` with `--hmac-secret-file`, deliveries
//! shaped like GitHub's (the real header set, HMAC-SHA256 signed) posted to `/hook` over HTTP,
//! and the GitHub test server playing the repository (pull requests, files, membership, labels,
//! statuses, comments). Jobs run on the zero-cost `noop` agent: what matters here is which jobs
//! are created, with which refs and labels.

mod common;

use std::path::Path;

use bosun_conformance::test_servers::github::{CommitStatus, GitHubServer};
use bosun_conformance::test_servers::github_pulls::PullRequest;
use bosun_proto::api::ListRequest;
use bosun_proto::{ProwJob, ProwJobState};
use common::{DEADLINE, Gateway, decode};
use serde_json::{Value, json};

const TOKEN: &str = "gh-token-e2e";
const HMAC_KEY: &str = "hmac-key-e2e";
const REPO: &str = "acme/widget";
const BASE_SHA: &str = "1111111111111111111111111111111111111111";

const JOBS: &str = r#"
presubmits:
  acme/widget:
  - name: unit
    always_run: true
    agent: noop
  - name: docs
    run_if_changed: '^docs/'
    agent: noop
  - name: e2e
    optional: true
    agent: noop
  - name: slow
    always_run: true
    agent: noop
    job_queue_name: parked
postsubmits:
  acme/widget:
  - name: publish
    agent: noop
    branches: [main]
  - name: docs-site
    agent: noop
    run_if_changed: '^docs/'
"#;

struct Rig {
    github: GitHubServer,
    gateway: Gateway,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path.display().to_string()
}

impl Rig {
    async fn start(plugins: Option<&str>) -> Rig {
        let github = GitHubServer::start(TOKEN)
            .await
            .expect("github test server");
        github.add_member("acme", "alice");
        github.add_collaborator(REPO, "carol");
        let dir = tempfile::tempdir().expect("tempdir");
        let token = write(dir.path(), "github-token", TOKEN);
        let hmac = write(dir.path(), "hmac", HMAC_KEY);
        let config = write(
            dir.path(),
            "config.yaml",
            &format!(
                "plank:\n  job_queue_capacities: {{parked: 0}}\nbosun:\n  reporters:\n    github:\n      token_file: {token}\n      base_url: {}\n",
                github.url()
            ),
        );
        let jobs = write(dir.path(), "jobs.yaml", JOBS);
        let mut args = vec![
            "--noop-agent".to_owned(),
            "--http-addr".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--config-path".to_owned(),
            config,
            "--job-config-path".to_owned(),
            jobs,
            "--hmac-secret-file".to_owned(),
            hmac,
        ];
        if let Some(p) = plugins {
            args.push("--plugin-config".to_owned());
            args.push(write(dir.path(), "plugins.yaml", p));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let gateway = Gateway::start(&dir.path().join("data"), &args);
        Rig {
            github,
            gateway,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    fn hook_url(&self) -> String {
        format!(
            "http://{}/hook",
            self.gateway.http_addr.as_deref().expect("http address")
        )
    }

    /// Posts `payload` as GitHub does: the headers of a real delivery, signed with `key`.
    async fn deliver_signed_with(
        &self,
        event: &str,
        guid: &str,
        payload: &[u8],
        key: &str,
    ) -> (u16, String) {
        let response = self
            .http
            .post(self.hook_url())
            .header("User-Agent", "GitHub-Hookshot/0f9a1c7")
            .header("Content-Type", "application/json")
            .header("X-GitHub-Event", event)
            .header("X-GitHub-Delivery", guid)
            .header("X-GitHub-Hook-ID", "4242")
            .header("X-GitHub-Hook-Installation-Target-Type", "repository")
            .header("X-GitHub-Hook-Installation-Target-ID", "77")
            .header(
                "X-Hub-Signature-256",
                bosun_gateway::triggers::hmac::sign(key.as_bytes(), payload),
            )
            .body(payload.to_vec())
            .send()
            .await
            .expect("post webhook");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    async fn deliver(&self, event: &str, guid: &str, payload: &Value) -> (u16, String) {
        let body = serde_json::to_vec(payload).expect("json");
        self.deliver_signed_with(event, guid, &body, HMAC_KEY).await
    }

    async fn jobs(&self) -> Vec<ProwJob> {
        let mut c = self.gateway.client().await;
        let page = c
            .list(ListRequest {
                repo: "widget".into(),
                page_size: 1000,
                ..ListRequest::default()
            })
            .await
            .expect("list")
            .into_inner();
        page.jobs.iter().map(decode).collect()
    }

    /// Waits until `cond` holds over the jobs (deadline-bounded polling of the gRPC API).
    async fn wait_jobs(&self, what: &str, cond: impl Fn(&[ProwJob]) -> bool) -> Vec<ProwJob> {
        let end = tokio::time::Instant::now() + DEADLINE;
        loop {
            let jobs = self.jobs().await;
            if cond(&jobs) {
                return jobs;
            }
            if tokio::time::Instant::now() > end {
                panic!(
                    "timed out waiting for {what}; jobs: {:?}\n{}",
                    jobs.iter().map(|j| &j.spec.job).collect::<Vec<_>>(),
                    self.gateway.logs()
                );
            }
            // Poll interval of a deadline-bounded wait.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    async fn wait_comment(&self, number: i64, what: &str, needle: &str) -> String {
        let end = tokio::time::Instant::now() + DEADLINE;
        loop {
            if let Some(c) = self
                .github
                .comments(REPO, number)
                .into_iter()
                .find(|c| c.body.contains(needle))
            {
                return c.body;
            }
            if tokio::time::Instant::now() > end {
                panic!(
                    "timed out waiting for {what}: comments {:?}\n{}",
                    self.github.comments(REPO, number),
                    self.gateway.logs()
                );
            }
            // Poll interval of a deadline-bounded wait.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

fn sha(n: u8) -> String {
    format!("{n:x}").repeat(40).chars().take(40).collect()
}

fn repository() -> Value {
    json!({
        "id": 77,
        "name": "widget",
        "full_name": REPO,
        "private": false,
        "owner": {"login": "acme", "id": 9, "type": "Organization"},
        "html_url": "https://github.com/acme/widget",
        "default_branch": "main",
    })
}

fn pr_json(pr: &PullRequest, labels: &[&str]) -> Value {
    let labels = labels.iter().map(|l| (*l).to_owned()).collect();
    pr.to_json(&labels)
}

fn pull_request_event(action: &str, pr: &PullRequest, labels: &[&str], sender: &str) -> Value {
    json!({
        "action": action,
        "number": pr.number,
        "pull_request": pr_json(pr, labels),
        "repository": repository(),
        "organization": {"login": "acme"},
        "sender": {"login": sender, "type": "User"},
    })
}

fn comment_event(pr: &PullRequest, labels: &[&str], user: &str, body: &str) -> Value {
    json!({
        "action": "created",
        "issue": {
            "number": pr.number,
            "state": "open",
            "title": pr.title,
            "user": {"login": pr.author},
            "labels": labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>(),
            "pull_request": {"url": format!("https://api.github.com/repos/{REPO}/pulls/{}", pr.number)},
            "html_url": format!("https://github.com/{REPO}/pull/{}", pr.number),
        },
        "comment": {
            "id": 555,
            "body": body,
            "user": {"login": user, "type": "User"},
            "html_url": format!("https://github.com/{REPO}/pull/{}#issuecomment-555", pr.number),
        },
        "repository": repository(),
        "sender": {"login": user},
    })
}

fn pull(number: i64, author: &str, head: &str, files: &[&str]) -> PullRequest {
    let mut pr = PullRequest::new(REPO, number, author, head);
    pr.base_sha = BASE_SHA.to_owned();
    pr.files = files.iter().map(|f| (*f).to_owned()).collect();
    pr
}

fn label<'a>(job: &'a ProwJob, key: &str) -> Option<&'a str> {
    job.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
}

fn names(jobs: &[ProwJob]) -> Vec<String> {
    let mut v: Vec<String> = jobs.iter().map(|j| j.spec.job.clone()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_trusted_pull_request_runs_its_automatic_presubmits_with_prows_refs() {
    let rig = Rig::start(None).await;
    let head = sha(0xa);
    let pr = pull(7, "alice", &head, &["docs/guide.md", "src/lib.rs"]);
    rig.github.put_pull(pr.clone());
    let (code, body) = rig
        .deliver(
            "pull_request",
            "guid-open-7",
            &pull_request_event("opened", &pr, &[], "alice"),
        )
        .await;
    assert_eq!(
        (code, body.as_str()),
        (200, "Event received. Have a nice day.\n")
    );
    let jobs = rig.wait_jobs("unit, docs and slow", |j| j.len() >= 3).await;
    assert_eq!(names(&jobs), ["docs", "slow", "unit"], "e2e needs /test");
    for job in &jobs {
        let refs = job.spec.refs.as_ref().expect("refs");
        assert_eq!(refs.org, "acme");
        assert_eq!(refs.repo, "widget");
        assert_eq!(refs.base_ref, "main");
        assert_eq!(refs.base_sha, BASE_SHA);
        assert_eq!(refs.repo_link, "https://github.com/acme/widget");
        assert_eq!(refs.pulls.len(), 1);
        let p = &refs.pulls[0];
        assert_eq!(
            (p.number, p.sha.as_str(), p.author.as_str()),
            (7, head.as_str(), "alice")
        );
        assert_eq!(p.head_ref, "feature-7");
        assert_eq!(p.link, "https://github.com/acme/widget/pull/7");
        assert_eq!(label(job, "event-GUID"), Some("guid-open-7"));
        assert_eq!(label(job, "prow.k8s.io/is-optional"), Some("false"));
        assert_eq!(label(job, "prow.k8s.io/refs.pull"), Some("7"));
        assert_eq!(job.spec.r#type.as_str(), "presubmit");
        assert!(job.spec.report);
    }

    // The same delivery again (GitHub's "redeliver"): nothing new.
    rig.deliver(
        "pull_request",
        "guid-open-7",
        &pull_request_event("opened", &pr, &[], "alice"),
    )
    .await;
    // A later event on the same PR is handled after it (same worker, in order).
    rig.deliver(
        "issue_comment",
        "guid-c-7",
        &comment_event(&pr, &[], "alice", "/test e2e"),
    )
    .await;
    let jobs = rig
        .wait_jobs("e2e", |j| j.iter().any(|j| j.spec.job == "e2e"))
        .await;
    assert_eq!(names(&jobs), ["docs", "e2e", "slow", "unit"]);
    let e2e = jobs.iter().find(|j| j.spec.job == "e2e").expect("e2e");
    assert_eq!(label(e2e, "prow.k8s.io/is-optional"), Some("true"));
}

#[tokio::test]
async fn bad_or_missing_signatures_malformed_bodies_and_huge_payloads_create_nothing() {
    let rig = Rig::start(None).await;
    let pr = pull(8, "alice", &sha(0xb), &[]);
    rig.github.put_pull(pr.clone());
    let payload =
        serde_json::to_vec(&pull_request_event("opened", &pr, &[], "alice")).expect("json");

    let (code, body) = rig
        .deliver_signed_with("pull_request", "g1", &payload, "wrong-key")
        .await;
    assert_eq!(code, 403);
    assert_eq!(
        body,
        "403 Forbidden: Invalid X-Hub-Signature-256 - misconfigured webhook secret from organization/repo: acme/widget\n"
    );

    let response = rig
        .http
        .post(rig.hook_url())
        .header("Content-Type", "application/json")
        .header("X-GitHub-Event", "pull_request")
        .header("X-GitHub-Delivery", "g2")
        .body(payload.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(response.status().as_u16(), 403);
    assert_eq!(
        response.text().await.expect("body"),
        "403 Forbidden: Missing X-Hub-Signature-256\n"
    );

    // Prow's order: the event header is checked before the signature.
    let response = rig
        .http
        .post(rig.hook_url())
        .header("Content-Type", "application/json")
        .header("X-GitHub-Delivery", "g3")
        .body(payload.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(response.status().as_u16(), 400);
    assert!(
        response
            .text()
            .await
            .expect("body")
            .contains("Missing X-GitHub-Event Header")
    );

    let response = rig.http.get(rig.hook_url()).send().await.expect("get");
    assert_eq!(response.status().as_u16(), 405);

    let response = rig
        .http
        .post(rig.hook_url())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("X-GitHub-Event", "pull_request")
        .header("X-GitHub-Delivery", "g4")
        .header("X-Hub-Signature-256", "sha256=00")
        .body("payload=x")
        .send()
        .await
        .expect("post");
    assert_eq!(response.status().as_u16(), 400);
    assert!(
        response
            .text()
            .await
            .expect("body")
            .contains("only accepts content-type: application/json")
    );

    let (code, body) = rig
        .deliver_signed_with("pull_request", "g5", b"{\"action\": \"opened\",", HMAC_KEY)
        .await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("not valid JSON"), "{body}");

    let mut huge = br#"{"action":"opened","padding":""#.to_vec();
    huge.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    huge.extend(br#""}"#);
    let (code, body) = rig
        .deliver_signed_with("pull_request", "g6", &huge, HMAC_KEY)
        .await;
    assert_eq!(code, 413, "{body}");
    assert!(body.contains("limited to"), "{body}");

    // Every refusal above was answered before anything was queued: no job exists, and the
    // gateway still answers.
    assert!(rig.jobs().await.is_empty());
    let (code, _) = rig
        .deliver(
            "pull_request",
            "g7",
            &pull_request_event("opened", &pr, &[], "alice"),
        )
        .await;
    assert_eq!(code, 200);
    rig.wait_jobs("the valid delivery's jobs", |j| j.len() == 2)
        .await;
    let metrics = common::http_get(rig.gateway.http_addr.as_deref().expect("http"), "/metrics").1;
    assert!(
        metrics.contains(r#"bosun_webhooks_total{event="pull_request",outcome="bad_signature"} 1"#),
        "{metrics}"
    );
    assert!(
        !rig.gateway.logs().contains(HMAC_KEY),
        "the webhook secret never shows in logs"
    );
}

#[tokio::test]
async fn untrusted_pull_requests_wait_for_ok_to_test_from_a_member() {
    let rig = Rig::start(None).await;
    let pr = pull(9, "mallory", &sha(0xc), &[]);
    rig.github.put_pull(pr.clone());
    rig.deliver(
        "pull_request",
        "g-open-9",
        &pull_request_event("opened", &pr, &[], "mallory"),
    )
    .await;
    let welcome = rig
        .wait_comment(9, "the welcome comment", "Thanks for your PR")
        .await;
    assert!(
        welcome.contains("Hi @mallory.") && welcome.contains("/ok-to-test"),
        "{welcome}"
    );
    assert_eq!(rig.github.labels(REPO, 9), ["needs-ok-to-test"]);

    // The author cannot start tests.
    rig.deliver(
        "issue_comment",
        "g-c1",
        &comment_event(&pr, &["needs-ok-to-test"], "mallory", "/test all"),
    )
    .await;
    let refusal = rig
        .wait_comment(9, "the refusal", "Cannot trigger testing")
        .await;
    assert!(refusal.starts_with("@mallory: Cannot trigger testing until a trusted user reviews the PR and leaves an `/ok-to-test` message."), "{refusal}");
    assert!(rig.jobs().await.is_empty());

    // A collaborator (trusted, since only_org_members is off) says ok-to-test.
    rig.deliver(
        "issue_comment",
        "g-c2",
        &comment_event(&pr, &["needs-ok-to-test"], "carol", "/ok-to-test"),
    )
    .await;
    let jobs = rig.wait_jobs("the PR's jobs", |j| j.len() == 2).await;
    assert_eq!(names(&jobs), ["slow", "unit"]);
    assert_eq!(rig.github.labels(REPO, 9), ["ok-to-test"]);
}

#[tokio::test]
async fn only_org_members_from_plugins_yaml_distrusts_collaborators() {
    let rig = Rig::start(Some(
        "plugins:\n  acme:\n    plugins: [trigger]\ntriggers:\n- repos: [acme/widget]\n  only_org_members: true\n",
    ))
    .await;
    let pr = pull(10, "carol", &sha(0xd), &[]);
    rig.github.put_pull(pr.clone());
    rig.deliver(
        "pull_request",
        "g-open-10",
        &pull_request_event("opened", &pr, &[], "carol"),
    )
    .await;
    rig.wait_comment(10, "the welcome comment", "Thanks for your PR")
        .await;
    assert!(rig.jobs().await.is_empty());
}

#[tokio::test]
async fn test_and_retest_comments_pick_jobs_and_unknown_targets_get_the_list() {
    let rig = Rig::start(None).await;
    let head = sha(0xe);
    let pr = pull(11, "alice", &head, &["src/main.rs"]);
    rig.github.put_pull(pr.clone());

    rig.deliver(
        "issue_comment",
        "g-t1",
        &comment_event(&pr, &[], "alice", "/test nope"),
    )
    .await;
    let help = rig
        .wait_comment(11, "the help reply", "were not found")
        .await;
    assert!(
        help.starts_with("@alice: The specified target(s) for `/test` were not found."),
        "{help}"
    );
    assert!(
        help.contains("/test unit\n/test docs\n/test slow"),
        "{help}"
    );
    assert!(help.contains("/test e2e"), "{help}");
    assert!(rig.jobs().await.is_empty());

    // Another CI system and bosun reported on the head commit: unit failed, docs passed.
    for (context, state) in [
        ("unit", "failure"),
        ("docs", "success"),
        ("slow", "success"),
    ] {
        rig.github.put_status(CommitStatus {
            repo: REPO.into(),
            sha: head.clone(),
            state: state.into(),
            description: String::new(),
            context: context.into(),
            target_url: None,
        });
    }
    rig.deliver(
        "issue_comment",
        "g-t2",
        &comment_event(&pr, &[], "alice", "/retest"),
    )
    .await;
    let jobs = rig.wait_jobs("the retest", |j| !j.is_empty()).await;
    assert_eq!(names(&jobs), ["unit"], "only the failed context reruns");
    assert_eq!(label(&jobs[0], "prow.k8s.io/retest"), Some("true"));

    // A comment quoting a command in a code block does nothing; /test docs forces docs even
    // though no docs file changed.
    rig.deliver(
        "issue_comment",
        "g-t3",
        &comment_event(&pr, &[], "alice", "```\n/test e2e\n```\n/test docs"),
    )
    .await;
    let jobs = rig
        .wait_jobs("docs", |j| j.iter().any(|j| j.spec.job == "docs"))
        .await;
    assert_eq!(names(&jobs), ["docs", "unit"]);
}

#[tokio::test]
async fn a_new_push_aborts_the_older_runs_of_the_pull_request() {
    let rig = Rig::start(None).await;
    let mut pr = pull(12, "alice", &sha(0x1), &[]);
    rig.github.put_pull(pr.clone());
    rig.deliver(
        "pull_request",
        "g-o12",
        &pull_request_event("opened", &pr, &[], "alice"),
    )
    .await;
    let first = rig.wait_jobs("first run", |j| j.len() == 2).await;
    let slow_1 = first
        .iter()
        .find(|j| j.spec.job == "slow")
        .expect("slow")
        .name()
        .to_owned();

    pr.head_sha = sha(0x2);
    rig.github.put_pull(pr.clone());
    rig.deliver(
        "pull_request",
        "g-s12",
        &pull_request_event("synchronize", &pr, &[], "alice"),
    )
    .await;
    let jobs = rig
        .wait_jobs("second run", |j| {
            j.iter().filter(|j| j.spec.job == "slow").count() == 2
        })
        .await;
    let mut c = rig.gateway.client().await;
    let old = common::wait_state(&mut c, &slow_1, ProwJobState::Aborted).await;
    assert!(
        old.status
            .as_ref()
            .is_some_and(|s| s.description.contains("new commit")),
        "{:?}",
        old.status
    );
    let new_slow = jobs
        .iter()
        .find(|j| j.spec.job == "slow" && j.name() != slow_1)
        .expect("new slow");
    assert_eq!(
        new_slow.spec.refs.as_ref().expect("refs").pulls[0].sha,
        sha(0x2)
    );
    assert!(!new_slow.is_complete());
}

#[tokio::test]
async fn pushes_run_the_postsubmits_of_the_branch() {
    let rig = Rig::start(None).await;
    let push = |branch: &str, after: &str, files: &[&str], deleted: bool| {
        json!({
            "ref": format!("refs/heads/{branch}"),
            "before": sha(0x3),
            "after": after,
            "created": false,
            "deleted": deleted,
            "forced": false,
            "compare": format!("https://github.com/{REPO}/compare/333333333333...{after}"),
            "commits": [{"id": after, "added": files, "removed": [], "modified": []}],
            "repository": {
                "name": "widget",
                "full_name": REPO,
                "owner": {"name": "acme", "email": null},
                "html_url": "https://github.com/acme/widget",
            },
            "pusher": {"name": "alice"},
            "sender": {"login": "alice"},
        })
    };
    rig.deliver(
        "push",
        "g-p1",
        &push("main", &sha(0x4), &["docs/a.md"], false),
    )
    .await;
    let jobs = rig.wait_jobs("postsubmits", |j| j.len() == 2).await;
    assert_eq!(names(&jobs), ["docs-site", "publish"]);
    for job in &jobs {
        let refs = job.spec.refs.as_ref().expect("refs");
        assert_eq!(
            (refs.base_ref.as_str(), refs.base_sha.as_str()),
            ("main", sha(0x4).as_str())
        );
        assert!(refs.pulls.is_empty());
        assert_eq!(job.spec.r#type.as_str(), "postsubmit");
        assert_eq!(label(job, "event-GUID"), Some("g-p1"));
    }
    // Another branch: publish is main-only and docs-site's files did not change.
    rig.deliver(
        "push",
        "g-p2",
        &push("dev", &sha(0x5), &["src/a.rs"], false),
    )
    .await;
    // A branch deletion does nothing.
    rig.deliver("push", "g-p3", &push("main", &"0".repeat(40), &[], true))
        .await;
    // A marker on the same worker (same repository, no number) shows the two were handled.
    rig.deliver("push", "g-p4", &push("main", &sha(0x6), &[], false))
        .await;
    let jobs = rig.wait_jobs("the marker push", |j| j.len() == 3).await;
    assert_eq!(names(&jobs), ["docs-site", "publish", "publish"]);
}

#[tokio::test]
async fn a_delivery_that_meets_a_github_outage_is_retried_until_its_jobs_exist() {
    let rig = Rig::start(None).await;
    let pr = pull(13, "alice", &sha(0x7), &[]);
    rig.github.put_pull(pr.clone());
    rig.github
        .server()
        .start_outage(bosun_conformance::test_servers::Canned::json(
            503,
            json!({"message": "Service Unavailable"}),
        ));
    let (code, _) = rig
        .deliver(
            "pull_request",
            "g-out-13",
            &pull_request_event("opened", &pr, &[], "alice"),
        )
        .await;
    assert_eq!(code, 200, "accepted even though GitHub is down");
    // Wait until the trigger has tried (and failed) to ask GitHub.
    let end = tokio::time::Instant::now() + DEADLINE;
    while rig.github.server().requests().is_empty() {
        assert!(
            tokio::time::Instant::now() < end,
            "the trigger never called GitHub"
        );
        // Poll interval of a deadline-bounded wait.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(rig.jobs().await.is_empty());
    rig.github.server().end_outage();
    let jobs = rig
        .wait_jobs("the jobs after GitHub is back", |j| j.len() == 2)
        .await;
    assert_eq!(names(&jobs), ["slow", "unit"]);
    assert!(
        rig.gateway.logs().contains("retrying"),
        "{}",
        rig.gateway.logs()
    );
}
