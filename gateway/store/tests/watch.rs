//! Watch: replay, resume, live events, lag recovery and compaction.

mod common;

use bosun_gateway_store::{JobStore, SqliteOptions, StoreError, WatchEventKind};
use bosun_proto::ProwJobState;
use common::{DEADLINE, job, open, open_default, take_events};
use futures::StreamExt;

#[tokio::test]
async fn replays_history_in_order_then_follows_live() {
    let (_dir, _path, store) = open_default();
    let a = store
        .create(job("a", "ci"), None)
        .await
        .expect("create")
        .into_job();
    store.create(job("b", "ci"), None).await.expect("create");
    let mut next = a.job.clone();
    next.status_mut().state = ProwJobState::Pending;
    store.update(next, a.revision).await.expect("update");
    store.delete("b", None).await.expect("delete");

    let mut watch = store.watch(0);
    let events = take_events(&mut watch, 4).await;
    let seen: Vec<_> = events
        .iter()
        .map(|e| (e.job.revision, e.kind, e.job.job.name().to_owned()))
        .collect();
    assert_eq!(
        seen,
        [
            (1, WatchEventKind::Created, "a".to_owned()),
            (2, WatchEventKind::Created, "b".to_owned()),
            (3, WatchEventKind::Updated, "a".to_owned()),
            (4, WatchEventKind::Deleted, "b".to_owned()),
        ]
    );
    for event in &events {
        assert_eq!(
            event.job.job.metadata.resource_version.as_deref(),
            Some(event.job.revision.to_string().as_str())
        );
    }
    assert_eq!(events[2].job.job.state(), ProwJobState::Pending);

    // Live events follow without a gap.
    store.create(job("c", "ci"), None).await.expect("create");
    let live = take_events(&mut watch, 1).await;
    assert_eq!(live[0].job.revision, 5);
    assert_eq!(live[0].job.job.name(), "c");
}

#[tokio::test]
async fn resumes_from_a_mid_revision() {
    let (_dir, _path, store) = open_default();
    for i in 0..10 {
        store
            .create(job(&format!("j{i}"), "ci"), None)
            .await
            .expect("create");
    }
    let mut watch = store.watch(6);
    let events = take_events(&mut watch, 4).await;
    let revisions: Vec<u64> = events.iter().map(|e| e.job.revision).collect();
    assert_eq!(revisions, [7, 8, 9, 10]);
    assert_eq!(events[0].job.job.name(), "j6");

    // Watching from the current revision sees only what comes next.
    let current = store.current_revision().await.expect("revision");
    let mut tail = store.watch(current);
    store
        .create(job("later", "ci"), None)
        .await
        .expect("create");
    let events = take_events(&mut tail, 1).await;
    assert_eq!(events[0].job.revision, 11);
    assert_eq!(events[0].job.job.name(), "later");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_deliver_every_event_exactly_once() {
    const WRITERS: usize = 8;
    const PER_WRITER: usize = 25;
    let (_dir, _path, store) = open_default();
    store.create(job("seed", "ci"), None).await.expect("create");

    // One watcher from the start, one from the current revision; both start before the writes.
    let mut from_start = store.watch(0);
    let mut from_now = store.watch(1);
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..PER_WRITER {
                let created = store
                    .create(job(&format!("w{w}-{i}"), "ci"), None)
                    .await
                    .expect("create")
                    .into_job();
                let mut next = created.job;
                next.status_mut().state = ProwJobState::Pending;
                store.update(next, created.revision).await.expect("update");
            }
        }));
    }
    // Read while the writers run.
    let total = 1 + WRITERS * PER_WRITER * 2;
    let all = take_events(&mut from_start, total).await;
    let tail = take_events(&mut from_now, total - 1).await;
    for task in tasks {
        task.await.expect("writer");
    }

    let revisions: Vec<u64> = all.iter().map(|e| e.job.revision).collect();
    assert_eq!(revisions, (1..=total as u64).collect::<Vec<_>>());
    let revisions: Vec<u64> = tail.iter().map(|e| e.job.revision).collect();
    assert_eq!(revisions, (2..=total as u64).collect::<Vec<_>>());
    // Per job: created before updated.
    for event in all.iter().filter(|e| e.kind == WatchEventKind::Updated) {
        let name = event.job.job.name();
        let created = all
            .iter()
            .find(|e| e.kind == WatchEventKind::Created && e.job.job.name() == name)
            .expect("created event");
        assert!(created.job.revision < event.job.revision);
    }
    assert_eq!(
        store.current_revision().await.expect("revision"),
        total as u64
    );
}

#[tokio::test]
async fn a_lagging_watcher_reads_the_gap_from_the_log() {
    // One buffered batch per watcher: any second batch makes an idle watcher lag.
    let (_dir, _path, store) = open(SqliteOptions {
        watch_buffer: 1,
        ..SqliteOptions::default()
    });
    let mut watch = store.watch(0);
    let first = store
        .create(job("first", "ci"), None)
        .await
        .expect("create");
    assert_eq!(
        take_events(&mut watch, 1).await[0].job.revision,
        first.job().revision
    );

    // Sequential writes are separate batches; the watcher does not read meanwhile.
    for i in 0..20 {
        store
            .create(job(&format!("j{i}"), "ci"), None)
            .await
            .expect("create");
    }
    let events = take_events(&mut watch, 20).await;
    let revisions: Vec<u64> = events.iter().map(|e| e.job.revision).collect();
    assert_eq!(revisions, (2..=21).collect::<Vec<_>>());

    store
        .create(job("after", "ci"), None)
        .await
        .expect("create");
    assert_eq!(take_events(&mut watch, 1).await[0].job.revision, 22);
}

#[tokio::test]
async fn compacted_history_is_an_error() {
    let (_dir, _path, store) = open(SqliteOptions {
        event_retention: 5,
        ..SqliteOptions::default()
    });
    // Nothing compacted yet: from 0 replays everything.
    for i in 0..5 {
        store
            .create(job(&format!("j{i}"), "ci"), None)
            .await
            .expect("create");
    }
    let mut watch = store.watch(0);
    assert_eq!(take_events(&mut watch, 5).await.len(), 5);

    for i in 5..10 {
        store
            .create(job(&format!("j{i}"), "ci"), None)
            .await
            .expect("create");
    }
    // Events 1..=5 are gone; only 6..=10 remain.
    for from in [0, 3, 4] {
        let mut stream = store.watch(from);
        let first = tokio::time::timeout(DEADLINE, stream.next())
            .await
            .expect("answer before the deadline")
            .expect("an item");
        let err = first.expect_err("compacted");
        assert!(
            matches!(err, StoreError::Compacted { requested, oldest: 6 } if requested == from),
            "{err:?}"
        );
        let end = tokio::time::timeout(DEADLINE, stream.next())
            .await
            .expect("stream ends before the deadline");
        assert!(end.is_none(), "the stream ends after Compacted");
    }
    let mut stream = store.watch(5);
    let events = take_events(&mut stream, 5).await;
    let revisions: Vec<u64> = events.iter().map(|e| e.job.revision).collect();
    assert_eq!(revisions, [6, 7, 8, 9, 10]);
    // The already-running watcher was live and missed nothing.
    let events = take_events(&mut watch, 5).await;
    assert_eq!(events[0].job.revision, 6);
}

#[tokio::test]
async fn watch_ends_when_the_store_closes() {
    let (_dir, _path, store) = open_default();
    store.create(job("a", "ci"), None).await.expect("create");
    let mut watch = store.watch(0);
    assert_eq!(take_events(&mut watch, 1).await.len(), 1);
    store.close().await;
    let item = tokio::time::timeout(DEADLINE, watch.next())
        .await
        .expect("answer before the deadline")
        .expect("an item");
    assert!(matches!(item, Err(StoreError::Closed)), "{item:?}");
    let end = tokio::time::timeout(DEADLINE, watch.next())
        .await
        .expect("answer before the deadline");
    assert!(end.is_none());
}
