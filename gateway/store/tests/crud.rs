//! Create, get, update, delete, durability and group commit against real SQLite files.

mod common;

use std::sync::Arc;

use bosun_gateway_store::{
    CreateOutcome, JobStore, ListFilter, SqliteJobStore, SqliteOptions, StoreError, WatchEventKind,
};
use bosun_proto::ProwJobState;
use common::{DEADLINE, job, json, open, open_default, take_events, with_labels};
use rusqlite::TransactionBehavior;

#[tokio::test]
async fn create_sets_revision_uid_and_creation_time() {
    let (_dir, _path, store) = open_default();
    assert_eq!(store.current_revision().await.expect("revision"), 0);

    let created = store
        .create(job("a", "ci-a"), None)
        .await
        .expect("create a");
    let CreateOutcome::Created(stored) = created else {
        panic!("first create must create");
    };
    assert_eq!(stored.revision, 1);
    let meta = &stored.job.metadata;
    assert_eq!(meta.resource_version.as_deref(), Some("1"));
    let uid = meta.uid.as_deref().expect("uid set");
    uuid::Uuid::parse_str(uid).expect("uid is a uuid");
    assert!(meta.creation_timestamp.is_some());

    let got = store.get("a").await.expect("get a");
    assert_eq!(got.revision, 1);
    assert_eq!(
        json(&got),
        json(&stored),
        "get returns what create returned"
    );

    let second = store
        .create(job("b", "ci-b"), None)
        .await
        .expect("create b")
        .into_job();
    assert_eq!(second.revision, 2);
    assert_ne!(second.job.metadata.uid, stored.job.metadata.uid);
    assert_eq!(store.current_revision().await.expect("revision"), 2);
}

#[tokio::test]
async fn create_requires_a_name() {
    let (_dir, _path, store) = open_default();
    let mut unnamed = job("x", "ci");
    unnamed.metadata.name = None;
    let err = store.create(unnamed, None).await.expect_err("no name");
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(store.current_revision().await.expect("revision"), 0);
}

#[tokio::test]
async fn idempotency_key_returns_the_existing_job() {
    let (_dir, _path, store) = open_default();
    let first = store
        .create(job("a", "ci-a"), Some("key-1".into()))
        .await
        .expect("create");
    assert!(first.is_created());

    // Same key, different body and name: the job stored under the key comes back.
    let again = store
        .create(job("other-name", "ci-other"), Some("key-1".into()))
        .await
        .expect("create again");
    let CreateOutcome::Existing(existing) = again else {
        panic!("same key must return Existing");
    };
    assert_eq!(existing.revision, 1);
    assert_eq!(existing.job.metadata.name.as_deref(), Some("a"));
    assert_eq!(json(&existing), json(first.job()));
    assert_eq!(store.current_revision().await.expect("revision"), 1);
    assert!(matches!(
        store.get("other-name").await,
        Err(StoreError::NotFound { .. })
    ));

    // Existing returns the current version after an update.
    let mut changed = existing.job.clone();
    changed.status_mut().state = ProwJobState::Pending;
    let updated = store.update(changed, 1).await.expect("update");
    let again = store
        .create(job("a", "ci-a"), Some("key-1".into()))
        .await
        .expect("create again");
    assert_eq!(again.job().revision, updated.revision);
    assert!(!again.is_created());
}

#[tokio::test]
async fn duplicate_name_is_already_exists() {
    let (_dir, _path, store) = open_default();
    store
        .create(job("a", "ci-a"), Some("k1".into()))
        .await
        .expect("create");
    for key in [None, Some("k2".to_owned())] {
        let err = store
            .create(job("a", "ci-a"), key)
            .await
            .expect_err("duplicate name");
        assert!(
            matches!(&err, StoreError::AlreadyExists { name } if name == "a"),
            "{err:?}"
        );
    }
    assert_eq!(store.current_revision().await.expect("revision"), 1);
}

#[tokio::test]
async fn update_is_compare_and_swap() {
    let (_dir, _path, store) = open_default();
    let created = store
        .create(job("a", "ci-a"), None)
        .await
        .expect("create")
        .into_job();
    store
        .create(job("b", "ci-b"), None)
        .await
        .expect("create b");

    let mut next = created.job.clone();
    next.status_mut().state = ProwJobState::Pending;
    next.status_mut().description = "running".into();
    // A client must not be able to change the uid or creation time.
    next.metadata.uid = Some("forged".into());
    next.metadata.creation_timestamp = None;
    let updated = store.update(next.clone(), 1).await.expect("update");
    assert_eq!(updated.revision, 3);
    assert_eq!(updated.job.metadata.resource_version.as_deref(), Some("3"));
    assert_eq!(updated.job.metadata.uid, created.job.metadata.uid);
    assert_eq!(
        updated.job.metadata.creation_timestamp,
        created.job.metadata.creation_timestamp
    );
    assert_eq!(updated.job.state(), ProwJobState::Pending);
    assert_eq!(json(&store.get("a").await.expect("get")), json(&updated));

    // The stale revision now conflicts and reports the current one.
    let err = store.update(next, 1).await.expect_err("stale update");
    assert!(
        matches!(
            &err,
            StoreError::Conflict { name, expected: 1, current: 3 } if name == "a"
        ),
        "{err:?}"
    );
    assert_eq!(store.get("a").await.expect("get").revision, 3);

    let err = store
        .update(job("missing", "ci"), 1)
        .await
        .expect_err("missing job");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert_eq!(store.current_revision().await.expect("revision"), 3);
}

#[tokio::test]
async fn delete_checks_the_revision_and_removes_the_job() {
    let (_dir, _path, store) = open_default();
    let a = store
        .create(
            with_labels(job("a", "ci-a"), &[("team", "x")]),
            Some("key-a".into()),
        )
        .await
        .expect("create")
        .into_job();

    let err = store
        .delete("a", Some(a.revision + 5))
        .await
        .expect_err("stale");
    assert!(
        matches!(err, StoreError::Conflict { current: 1, .. }),
        "{err:?}"
    );
    store.delete("a", Some(a.revision)).await.expect("delete");
    assert!(matches!(
        store.get("a").await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.current_revision().await.expect("revision"), 2);

    let err = store.delete("a", None).await.expect_err("already gone");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");

    // Labels went with the job, and the name and key can be used again.
    let mut filter = ListFilter::default();
    filter.labels.insert("team".into(), "x".into());
    assert!(
        store
            .list(&filter, 0, None)
            .await
            .expect("list")
            .jobs
            .is_empty()
    );
    let recreated = store
        .create(job("a", "ci-a"), Some("key-a".into()))
        .await
        .expect("recreate");
    assert!(recreated.is_created());
    assert_eq!(recreated.job().revision, 3);
    store.delete("a", None).await.expect("unconditional delete");
}

#[tokio::test]
async fn a_failed_write_does_not_affect_its_batch() {
    let (_dir, _path, store) = open_default();
    let store = Arc::new(store);
    store.create(job("base", "ci"), None).await.expect("create");
    // Good and bad writes in flight together; each is judged on its own.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                store
                    .create(job(&format!("j{i}"), "ci"), None)
                    .await
                    .map(|_| ())
            } else {
                store.update(job("base", "ci"), 999).await.map(|_| ())
            }
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        let result = task.await.expect("task");
        if i % 2 == 0 {
            result.expect("create succeeds");
        } else {
            assert!(matches!(result, Err(StoreError::Conflict { .. })));
        }
    }
    assert_eq!(store.current_revision().await.expect("revision"), 11);
    let page = store
        .list(&ListFilter::default(), 0, None)
        .await
        .expect("list");
    assert_eq!(page.jobs.len(), 11);
}

#[tokio::test]
async fn everything_survives_a_reopen() {
    let (_dir, path, store) = open_default();
    let mut expected = Vec::new();
    for i in 0..10 {
        let created = store
            .create(
                with_labels(job(&format!("job-{i}"), "ci"), &[("n", &i.to_string())]),
                Some(format!("key-{i}")),
            )
            .await
            .expect("create")
            .into_job();
        expected.push(created);
    }
    let mut next = expected[3].job.clone();
    next.status_mut().state = ProwJobState::Success;
    expected[3] = store
        .update(next, expected[3].revision)
        .await
        .expect("update");
    store.delete("job-9", None).await.expect("delete");
    expected.pop();
    assert_eq!(store.current_revision().await.expect("revision"), 12);
    store.close().await;

    let store = SqliteJobStore::open(&path, SqliteOptions::default()).expect("reopen");
    assert_eq!(store.current_revision().await.expect("revision"), 12);
    for want in &expected {
        let got = store.get(want.job.name()).await.expect("get after reopen");
        assert_eq!(got.revision, want.revision);
        assert_eq!(json(&got), json(want));
    }
    assert!(matches!(
        store.get("job-9").await,
        Err(StoreError::NotFound { .. })
    ));
    let page = store
        .list(&ListFilter::default(), 0, None)
        .await
        .expect("list");
    let names: Vec<_> = page.jobs.iter().map(|j| j.job.name().to_owned()).collect();
    let want: Vec<_> = (0..9).map(|i| format!("job-{i}")).collect();
    assert_eq!(names, want);

    // The idempotency keys and the event log survived too, and the counter continues.
    let again = store
        .create(job("whatever", "ci"), Some("key-5".into()))
        .await
        .expect("create with old key");
    assert_eq!(again.job().job.name(), "job-5");
    let fresh = store
        .create(job("fresh", "ci"), None)
        .await
        .expect("create")
        .into_job();
    assert_eq!(fresh.revision, 13);

    let mut watch = store.watch(0);
    let events = take_events(&mut watch, 13).await;
    let revisions: Vec<u64> = events.iter().map(|e| e.job.revision).collect();
    assert_eq!(revisions, (1..=13).collect::<Vec<_>>());
    assert_eq!(events[10].kind, WatchEventKind::Updated);
    assert_eq!(events[11].kind, WatchEventKind::Deleted);
    assert_eq!(events[11].job.job.name(), "job-9");
    assert_eq!(events[12].kind, WatchEventKind::Created);
}

#[tokio::test]
async fn open_in_dir_uses_bosun_db() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let store = SqliteJobStore::open_in_dir(&data).await.expect("open");
    store.create(job("a", "ci"), None).await.expect("create");
    assert_eq!(store.path(), data.join("bosun.db"));
    store.close().await;
    let store = SqliteJobStore::open_in_dir(&data).await.expect("reopen");
    assert_eq!(store.get("a").await.expect("get").revision, 1);
}

#[tokio::test]
async fn invalid_options_are_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SqliteOptions {
        event_retention: 0,
        ..SqliteOptions::default()
    };
    let err = SqliteJobStore::open(&dir.path().join("x.db"), options).expect_err("bad options");
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_are_group_committed() {
    const WRITES: usize = 200;
    let (_dir, path, store) = open(SqliteOptions {
        busy_timeout: std::time::Duration::from_secs(120),
        ..SqliteOptions::default()
    });

    // Hold the database write lock from another connection so the writer's first batch waits;
    // meanwhile every other create queues up behind it.
    let blocker = rusqlite::Connection::open(&path).expect("open blocker");
    blocker
        .execute_batch("PRAGMA busy_timeout = 120000")
        .expect("busy timeout");
    let mut blocker = blocker;
    let lock = blocker
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .expect("take the write lock");

    let mut tasks = Vec::new();
    for i in 0..WRITES {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .create(job(&format!("job-{i:03}"), "ci"), Some(format!("key-{i}")))
                .await
        }));
    }
    tokio::time::timeout(DEADLINE, async {
        while store.pending_writes() < WRITES {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("every create reaches the writer");
    lock.rollback().expect("release the write lock");

    for task in tasks {
        let outcome = tokio::time::timeout(DEADLINE, task)
            .await
            .expect("create answered")
            .expect("task")
            .expect("create succeeds");
        assert!(outcome.is_created());
    }
    let commits = store.commit_count();
    assert!(
        commits < WRITES as u64,
        "{commits} commits for {WRITES} writes: no group commit"
    );
    // The first batch waited on the lock, the rest queued behind it.
    assert!(commits <= 2, "{commits} commits");
    assert_eq!(store.pending_writes(), 0);

    let page = store
        .list(&ListFilter::default(), 1000, None)
        .await
        .expect("list");
    assert_eq!(page.jobs.len(), WRITES);
    assert!(page.next_page_token.is_none());
    let mut revisions: Vec<u64> = page.jobs.iter().map(|j| j.revision).collect();
    revisions.sort_unstable();
    assert_eq!(revisions, (1..=WRITES as u64).collect::<Vec<_>>());
    assert_eq!(
        store.current_revision().await.expect("revision"),
        WRITES as u64
    );
}
