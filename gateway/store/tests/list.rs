//! List filters and pagination against a real SQLite file.

mod common;

use std::collections::BTreeSet;

use bosun_gateway_store::{JobStore, ListFilter, SqliteJobStore, StoreError};
use bosun_proto::{ProwJobState, ProwJobType};
use common::{job, open_default, presubmit, with_labels};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

async fn names(store: &SqliteJobStore, filter: &ListFilter) -> Vec<String> {
    let page = store.list(filter, 0, None).await.expect("list");
    assert!(page.next_page_token.is_none());
    page.jobs.iter().map(|j| j.job.name().to_owned()).collect()
}

/// Six jobs with distinct properties, created in name order.
async fn seed(store: &SqliteJobStore) {
    let mut jobs = vec![
        with_labels(
            presubmit("p1", "unit", "kubernetes", "test-infra", 10),
            &[("team", "infra"), ("tier", "fast")],
        ),
        with_labels(
            presubmit("p2", "unit", "kubernetes", "kubernetes", 11),
            &[("team", "core"), ("tier", "fast")],
        ),
        presubmit("p3", "e2e", "kubernetes", "test-infra", 11),
        job("q1", "nightly"),
        job("q2", "nightly"),
        job("q3", "cleanup"),
    ];
    jobs[1].spec.cluster = "build-a".into();
    jobs[2].spec.agent = "tekton-pipeline".into();
    jobs[3].spec.cluster = "default".into();
    jobs[4].spec.agent = "jenkins".into();
    jobs[5].spec.r#type = ProwJobType::Postsubmit;
    for pj in jobs {
        store.create(pj, None).await.expect("create");
    }
    // q1 finished, p2 runs.
    let mut q1 = store.get("q1").await.expect("get q1");
    let status = q1.job.status_mut();
    status.state = ProwJobState::Success;
    status.completion_time = Some(Time(Timestamp::now()));
    store.update(q1.job, q1.revision).await.expect("finish q1");
    let mut p2 = store.get("p2").await.expect("get p2");
    p2.job.status_mut().state = ProwJobState::Pending;
    store.update(p2.job, p2.revision).await.expect("start p2");
}

#[tokio::test]
async fn every_filter_selects_by_its_column() {
    let (_dir, _path, store) = open_default();
    seed(&store).await;

    let all = names(&store, &ListFilter::default()).await;
    assert_eq!(
        all,
        ["p1", "p2", "p3", "q1", "q2", "q3"],
        "oldest first, updates keep the order"
    );

    let check = |filter: ListFilter, want: &'static [&'static str]| {
        let store = store.clone();
        async move {
            assert_eq!(names(&store, &filter).await, want, "{filter:?}");
        }
    };
    check(
        ListFilter {
            job: Some("unit".into()),
            ..ListFilter::default()
        },
        &["p1", "p2"],
    )
    .await;
    check(
        ListFilter {
            job_type: Some(ProwJobType::Periodic),
            ..ListFilter::default()
        },
        &["q1", "q2"],
    )
    .await;
    check(
        ListFilter {
            job_type: Some(ProwJobType::Postsubmit),
            ..ListFilter::default()
        },
        &["q3"],
    )
    .await;
    check(
        ListFilter {
            state: Some(ProwJobState::Triggered),
            ..ListFilter::default()
        },
        &["p1", "p3", "q2", "q3"],
    )
    .await;
    check(
        ListFilter {
            state: Some(ProwJobState::Pending),
            ..ListFilter::default()
        },
        &["p2"],
    )
    .await;
    check(
        ListFilter {
            agent: Some("kubernetes".into()),
            ..ListFilter::default()
        },
        &["p1", "p2", "q1", "q3"],
    )
    .await;
    check(
        ListFilter {
            agent: Some("jenkins".into()),
            ..ListFilter::default()
        },
        &["q2"],
    )
    .await;
    // An empty cluster is "default", on the job and in the filter.
    check(
        ListFilter {
            cluster: Some("default".into()),
            ..ListFilter::default()
        },
        &["p1", "p3", "q1", "q2", "q3"],
    )
    .await;
    check(
        ListFilter {
            cluster: Some(String::new()),
            ..ListFilter::default()
        },
        &["p1", "p3", "q1", "q2", "q3"],
    )
    .await;
    check(
        ListFilter {
            cluster: Some("build-a".into()),
            ..ListFilter::default()
        },
        &["p2"],
    )
    .await;
    check(
        ListFilter {
            org: Some("kubernetes".into()),
            ..ListFilter::default()
        },
        &["p1", "p2", "p3"],
    )
    .await;
    check(
        ListFilter {
            org: Some("kubernetes".into()),
            repo: Some("test-infra".into()),
            ..ListFilter::default()
        },
        &["p1", "p3"],
    )
    .await;
    check(
        ListFilter {
            pull: Some(11),
            ..ListFilter::default()
        },
        &["p2", "p3"],
    )
    .await;
    check(
        ListFilter {
            repo: Some("test-infra".into()),
            pull: Some(11),
            ..ListFilter::default()
        },
        &["p3"],
    )
    .await;
    check(
        ListFilter {
            incomplete_only: true,
            ..ListFilter::default()
        },
        &["p1", "p2", "p3", "q2", "q3"],
    )
    .await;
    check(
        ListFilter {
            job: Some("nightly".into()),
            incomplete_only: true,
            ..ListFilter::default()
        },
        &["q2"],
    )
    .await;

    let labels = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    check(
        ListFilter {
            labels: labels(&[("tier", "fast")]),
            ..ListFilter::default()
        },
        &["p1", "p2"],
    )
    .await;
    check(
        ListFilter {
            labels: labels(&[("tier", "fast"), ("team", "core")]),
            ..ListFilter::default()
        },
        &["p2"],
    )
    .await;
    check(
        ListFilter {
            labels: labels(&[("tier", "fast"), ("team", "nobody")]),
            ..ListFilter::default()
        },
        &[],
    )
    .await;
    check(
        ListFilter {
            labels: labels(&[("team", "infra")]),
            state: Some(ProwJobState::Triggered),
            pull: Some(10),
            ..ListFilter::default()
        },
        &["p1"],
    )
    .await;
}

#[tokio::test]
async fn labels_follow_updates() {
    let (_dir, _path, store) = open_default();
    let created = store
        .create(with_labels(job("a", "ci"), &[("phase", "one")]), None)
        .await
        .expect("create")
        .into_job();
    let relabelled = with_labels(created.job, &[("phase", "two")]);
    store
        .update(relabelled, created.revision)
        .await
        .expect("update");
    let mut filter = ListFilter::default();
    filter.labels.insert("phase".into(), "one".into());
    assert!(names(&store, &filter).await.is_empty());
    filter.labels.insert("phase".into(), "two".into());
    assert_eq!(names(&store, &filter).await, ["a"]);
}

#[tokio::test]
async fn pages_cover_every_job_once() {
    let (_dir, _path, store) = open_default();
    let total = 53;
    for i in 0..total {
        let pj = if i % 2 == 0 {
            with_labels(job(&format!("job-{i:03}"), "even"), &[("parity", "even")])
        } else {
            job(&format!("job-{i:03}"), "odd")
        };
        store.create(pj, None).await.expect("create");
    }
    // Delete some in the middle: they must not leave gaps or break tokens.
    store.delete("job-010", None).await.expect("delete");
    store.delete("job-011", None).await.expect("delete");

    for (filter, want) in [
        (ListFilter::default(), total - 2),
        (
            ListFilter {
                job: Some("even".into()),
                ..ListFilter::default()
            },
            26,
        ),
        (
            ListFilter {
                labels: [("parity".to_owned(), "even".to_owned())].into(),
                ..ListFilter::default()
            },
            26,
        ),
    ] {
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = store
                .list(&filter, 7, token.as_deref())
                .await
                .expect("list page");
            assert!(page.jobs.len() <= 7);
            pages += 1;
            seen.extend(page.jobs.iter().map(|j| j.job.name().to_owned()));
            match page.next_page_token {
                Some(next) => {
                    assert_eq!(page.jobs.len(), 7, "only the last page is short");
                    token = Some(next);
                }
                None => break,
            }
        }
        assert_eq!(seen.len(), want, "{filter:?}");
        assert_eq!(pages, want.div_ceil(7), "no empty trailing page");
        let unique: BTreeSet<_> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "no duplicates");
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(seen, sorted, "creation order across pages");
    }
}

#[tokio::test]
async fn page_size_defaults_and_caps() {
    let (_dir, _path, store) = open_default();
    for i in 0..3 {
        store
            .create(job(&format!("j{i}"), "ci"), None)
            .await
            .expect("create");
    }
    let page = store
        .list(&ListFilter::default(), 0, None)
        .await
        .expect("default page size");
    assert_eq!(page.jobs.len(), 3);
    assert_eq!(page.revision, 3);
    let page = store
        .list(&ListFilter::default(), usize::MAX, None)
        .await
        .expect("capped page size");
    assert_eq!(page.jobs.len(), 3);
}

#[tokio::test]
async fn malformed_page_token_is_invalid() {
    let (_dir, _path, store) = open_default();
    for token in ["nope", "", "zzzzzzzzzzzzzzzz"] {
        let err = store
            .list(&ListFilter::default(), 10, Some(token))
            .await
            .expect_err("bad token");
        assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    }
}

/// Scale check: 100k jobs, then every filter's first page. Prints timings and query plans; run
/// with `cargo nextest run -p bosun-gateway-store --run-ignored only`. It asserts nothing about
/// time (speed targets belong to benchmarks, issue 8) and the correctness of list filters is
/// covered by the tests above, so it is kept out of the default run to keep CI short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes 100k jobs; run on demand"]
async fn list_at_100k_jobs() {
    use std::time::Instant;

    const JOBS: usize = 100_000;
    const TASKS: usize = 64;
    let (_dir, path, store) = open_default();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in (t..JOBS).step_by(TASKS) {
                let mut pj = presubmit(
                    &format!("job-{i:06}"),
                    &format!("job-{}", i % 500),
                    "org",
                    &format!("repo-{}", i % 50),
                    i64::try_from(i % 5000).expect("small"),
                );
                pj.spec.agent = ["kubernetes", "tekton-pipeline", "jenkins"][i % 3].into();
                let pj = with_labels(pj, &[("shard", &(i % 100).to_string()), ("kind", "ci")]);
                store.create(pj, None).await.expect("create");
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer task");
    }
    println!(
        "{JOBS} creates in {:?} with {} commits",
        started.elapsed(),
        store.commit_count()
    );

    let labels = |k: &str, v: &str| [(k.to_owned(), v.to_owned())].into();
    let filters = [
        ("none", ListFilter::default()),
        (
            "job",
            ListFilter {
                job: Some("job-7".into()),
                ..ListFilter::default()
            },
        ),
        (
            "state",
            ListFilter {
                state: Some(ProwJobState::Pending),
                ..ListFilter::default()
            },
        ),
        (
            "agent",
            ListFilter {
                agent: Some("jenkins".into()),
                ..ListFilter::default()
            },
        ),
        (
            "org+repo",
            ListFilter {
                org: Some("org".into()),
                repo: Some("repo-7".into()),
                ..ListFilter::default()
            },
        ),
        (
            "repo+pull",
            ListFilter {
                repo: Some("repo-7".into()),
                pull: Some(4007),
                ..ListFilter::default()
            },
        ),
        (
            "incomplete",
            ListFilter {
                incomplete_only: true,
                ..ListFilter::default()
            },
        ),
        (
            "label",
            ListFilter {
                labels: labels("shard", "42"),
                ..ListFilter::default()
            },
        ),
        (
            "label+job",
            ListFilter {
                job: Some("job-42".into()),
                labels: labels("shard", "42"),
                ..ListFilter::default()
            },
        ),
        (
            "common label",
            ListFilter {
                labels: labels("kind", "ci"),
                ..ListFilter::default()
            },
        ),
        (
            "two labels",
            ListFilter {
                labels: [
                    ("kind".to_owned(), "ci".to_owned()),
                    ("shard".to_owned(), "42".to_owned()),
                ]
                .into(),
                ..ListFilter::default()
            },
        ),
        (
            "rare+common",
            ListFilter {
                labels: [
                    ("kind".to_owned(), "ci".to_owned()),
                    ("shard".to_owned(), "7".to_owned()),
                ]
                .into(),
                ..ListFilter::default()
            },
        ),
        (
            "common+job",
            ListFilter {
                job: Some("job-42".into()),
                labels: labels("kind", "ci"),
                ..ListFilter::default()
            },
        ),
        (
            "label+incomplete",
            ListFilter {
                incomplete_only: true,
                labels: labels("shard", "42"),
                ..ListFilter::default()
            },
        ),
        (
            "label+agent",
            ListFilter {
                agent: Some("jenkins".into()),
                labels: labels("shard", "42"),
                ..ListFilter::default()
            },
        ),
    ];
    for (what, filter) in &filters {
        let started = Instant::now();
        let page = store.list(filter, 0, None).await.expect("list");
        let first = started.elapsed();
        let started = Instant::now();
        let mut token = page.next_page_token.clone();
        let mut total = page.jobs.len();
        while let Some(next) = token {
            let page = store.list(filter, 0, Some(&next)).await.expect("list");
            total += page.jobs.len();
            token = page.next_page_token;
        }
        println!(
            "{what:>12}: first page {first:?}, all {total} in {:?}",
            started.elapsed()
        );
    }
    let conn = rusqlite::Connection::open(&path).expect("open");
    for sql in [
        "SELECT seq FROM jobs AS j WHERE j.seq > 0 AND j.job = 'x' ORDER BY j.seq LIMIT 501",
        "SELECT seq FROM jobs AS j WHERE j.seq > 0 AND j.complete = 0 ORDER BY j.seq LIMIT 501",
        "SELECT seq FROM jobs AS j WHERE j.seq > 0 AND j.repo = 'r' AND j.pull = 1 ORDER BY j.seq LIMIT 501",
        "SELECT j.seq FROM job_labels AS l JOIN jobs AS j ON j.seq = l.seq WHERE l.key = 'kind' AND l.value = 'ci' AND l.seq > 0 ORDER BY l.seq LIMIT 501",
        "SELECT j.seq FROM job_labels AS l JOIN jobs AS j ON j.seq = l.seq WHERE l.key = 'kind' AND l.value = 'ci' AND l.seq > 0 AND j.job = 'x' AND EXISTS (SELECT 1 FROM job_labels AS x WHERE x.seq = j.seq AND x.key = 'a' AND x.value = 'b') ORDER BY l.seq LIMIT 501",
    ] {
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("explain");
        let plan: Vec<String> = stmt
            .query_map([], |row| row.get::<_, String>(3))
            .expect("plan")
            .map(|r| r.expect("row"))
            .collect();
        println!("{sql}\n    {}", plan.join("\n    "));
    }
}
