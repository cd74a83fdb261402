//! Cases on garbage collection: what goes, what stays, and what clients see after it.

use crate::cases_engine::{cookie_of, mutation, pull_from, push, push_request};
use crate::new_space;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use sync_core::SpaceId;
use sync_core::gc::{self, GcReport};
use sync_core::protocol::{Cookie, PatchOp};
use sync_core::store::{GarbageCutoffs, Store, now_ms};

/// Cutoffs an hour ahead: everything written so far is old enough to go.
fn everything_old() -> GarbageCutoffs {
    let later = now_ms() + 3_600_000;
    GarbageCutoffs {
        tombstones_before_ms: later,
        clients_idle_before_ms: later,
    }
}

/// Cutoffs an hour back: nothing written in this run is old enough.
fn nothing_old() -> GarbageCutoffs {
    let earlier = now_ms() - 3_600_000;
    GarbageCutoffs {
        tombstones_before_ms: earlier,
        clients_idle_before_ms: earlier,
    }
}

async fn collect(store: &dyn Store, space: &SpaceId, cutoffs: &GarbageCutoffs) -> GcReport {
    let mut report = GcReport::default();
    gc::collect_space(store, space, cutoffs, &mut report)
        .await
        .expect("collect_space");
    report
}

/// A space with `item/a` deleted at version 2 and `item/b` live, pushed by client `c` of
/// group `g`; and the cookie of a pull at version 1 (before the delete).
async fn space_with_a_delete(store: &dyn Store, tag: &str) -> (SpaceId, Cookie) {
    let space = new_space(store, tag).await;
    let set = |id, key| mutation("c", id, "setItem", json!({"key": key, "value": id}));
    push(
        store,
        &space,
        &push_request("g", vec![set(1, "a"), set(2, "b")]),
    )
    .await;
    let before_delete = pull_from(store, &space, "g", Cookie::Null).await;
    let delete = mutation("c", 3, "deleteItem", json!({"key": "a"}));
    push(store, &space, &push_request("g", vec![delete])).await;
    (space, cookie_of(&before_delete))
}

pub async fn gc_keeps_what_is_younger_than_the_retention(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let (space, old_cookie) = space_with_a_delete(store, "gc-young").await;
    let report = collect(store, &space, &nothing_old()).await;
    assert_eq!(
        (
            report.tombstones_removed,
            report.clients_removed,
            report.floors_raised
        ),
        (0, 0, 0),
        "{report:?}"
    );
    assert_eq!(store.space_version(&space).await.unwrap(), Some(2));
    // The old cookie still gets the delete, incrementally.
    let inc = pull_from(store, &space, "g", old_cookie).await;
    assert_eq!(
        inc.patch,
        vec![PatchOp::Del {
            key: "item/a".into()
        }]
    );
    assert_eq!(inc.last_mutation_id_changes, [("c".into(), 3)].into());
}

pub async fn gc_removes_old_tombstones_and_resets_older_cookies(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let (space, old_cookie) = space_with_a_delete(store, "gc-tomb").await;
    let current = pull_from(store, &space, "g", Cookie::Null).await;
    let cutoffs = GarbageCutoffs {
        clients_idle_before_ms: 0,
        ..everything_old()
    };
    let report = collect(store, &space, &cutoffs).await;
    assert_eq!(
        (
            report.tombstones_removed,
            report.clients_removed,
            report.floors_raised
        ),
        (1, 0, 1),
        "{report:?}"
    );
    // The floor's commit moved the version; the delete's record is gone.
    assert_eq!(store.space_version(&space).await.unwrap(), Some(3));
    let all = store.pull_snapshot(&space, "g", 0).await.unwrap().unwrap();
    assert_eq!(all.tombstone_floor, 2);
    let keys: Vec<&str> = all.entries.iter().map(|e| e.key).collect();
    assert_eq!(keys, ["item/b"], "only the live entry is left");
    let garbage = store.find_garbage(&space, &cutoffs).await.unwrap().unwrap();
    assert!(garbage.tombstones.is_empty(), "{garbage:?}");

    // A cookie from before the delete cannot learn it any more: a reset.
    let reset = pull_from(store, &space, "g", old_cookie).await;
    assert_eq!(
        reset.patch,
        vec![
            PatchOp::Clear,
            PatchOp::Put {
                key: "item/b".into(),
                value: json!(2).into()
            }
        ]
    );
    assert_eq!(reset.cookie.order, 3);
    assert_eq!(reset.last_mutation_id_changes, [("c".into(), 3)].into());
    // A cookie at or above the floor stays incremental (nothing changed but the version).
    let inc = pull_from(store, &space, "g", cookie_of(&current)).await;
    assert!(inc.patch.is_empty(), "{:?}", inc.patch);
    assert_eq!(inc.cookie.order, 3);

    // A second run finds nothing more and moves nothing.
    let again = collect(store, &space, &cutoffs).await;
    assert_eq!((again.tombstones_removed, again.floors_raised), (0, 0));
    assert_eq!(store.space_version(&space).await.unwrap(), Some(3));
}

pub async fn gc_keeps_a_key_written_again(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let (space, _) = space_with_a_delete(store, "gc-again").await;
    let cutoffs = GarbageCutoffs {
        clients_idle_before_ms: 0,
        ..everything_old()
    };
    let garbage = store.find_garbage(&space, &cutoffs).await.unwrap().unwrap();
    assert_eq!(garbage.tombstones, [("item/a".to_owned(), 2)]);
    // The key is written again after the collector found its tombstone.
    let set = mutation("c", 4, "setItem", json!({"key": "a", "value": "back"}));
    push(store, &space, &push_request("g", vec![set])).await;
    let purged = store
        .purge(&space, &garbage.tombstones, &[], 0)
        .await
        .unwrap();
    assert_eq!(purged.tombstones, 0);
    let all = pull_from(store, &space, "h", Cookie::Null).await;
    assert!(all.patch.to_ops().contains(&PatchOp::Put {
        key: "item/a".into(),
        value: json!("back").into()
    }));
}

pub async fn gc_removes_idle_clients_and_their_pushes_get_client_state_not_found(
    store: Arc<dyn Store>,
) {
    let store = store.as_ref();
    let space = new_space(store, "gc-idle").await;
    let inc = |client, id| mutation(client, id, "increment", json!(1));
    push(
        store,
        &space,
        &push_request("old", vec![inc("o", 1), inc("o", 2)]),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let cutoff = now_ms();
    tokio::time::sleep(Duration::from_millis(20)).await;
    push(store, &space, &push_request("new", vec![inc("n", 1)])).await;
    let cutoffs = GarbageCutoffs {
        tombstones_before_ms: 0,
        clients_idle_before_ms: cutoff,
    };
    let report = collect(store, &space, &cutoffs).await;
    assert_eq!(report.clients_removed, 1, "{report:?}");
    assert_eq!(report.floors_raised, 0, "removing clients raises no floor");

    // The removed client's next mutation is ahead of what the server knows of it.
    let outcome = push(store, &space, &push_request("old", vec![inc("o", 3)])).await;
    assert!(outcome.client_state_not_found);
    assert_eq!(outcome.commits, 0);
    // The active client goes on as before.
    let outcome = push(store, &space, &push_request("new", vec![inc("n", 2)])).await;
    assert!(!outcome.client_state_not_found);
    assert_eq!(outcome.processed, 1);
    // The client's recovery: a new group and client, from the pulled state.
    let fresh = pull_from(store, &space, "recovered", Cookie::Null).await;
    assert!(fresh.patch.to_ops().contains(&PatchOp::Put {
        key: "count".into(),
        value: json!(4).into()
    }));
    let outcome = push(store, &space, &push_request("recovered", vec![inc("r", 1)])).await;
    assert_eq!(outcome.processed, 1);
}

pub async fn gc_keeps_a_client_that_pushed_after_it_was_found_idle(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let space = new_space(store, "gc-back").await;
    let inc = |id| mutation("c", id, "increment", json!(1));
    push(store, &space, &push_request("g", vec![inc(1)])).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let cutoffs = GarbageCutoffs {
        tombstones_before_ms: 0,
        clients_idle_before_ms: now_ms(),
    };
    let garbage = store.find_garbage(&space, &cutoffs).await.unwrap().unwrap();
    assert_eq!(garbage.idle_clients, [("g".to_owned(), "c".to_owned())]);
    tokio::time::sleep(Duration::from_millis(20)).await;
    push(store, &space, &push_request("g", vec![inc(2)])).await;
    let purged = store
        .purge(
            &space,
            &[],
            &garbage.idle_clients,
            cutoffs.clients_idle_before_ms,
        )
        .await
        .unwrap();
    assert_eq!(purged.clients, 0, "the client pushed since: it stays");
    let outcome = push(store, &space, &push_request("g", vec![inc(3)])).await;
    assert_eq!(
        (outcome.processed, outcome.client_state_not_found),
        (1, false)
    );
}

pub async fn gc_lists_every_space(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(new_space(store, "gc-list").await);
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..100_000 {
        let page = store.list_spaces(after.as_deref(), 2).await.unwrap();
        seen.extend(page.spaces);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    for space in &created {
        assert!(seen.contains(space), "{space} not listed");
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "a space listed twice");
    // The whole run over the store: every space, nothing young removed.
    let report = gc::collect(store, &gc::GcPolicy::DEFAULT, now_ms(), None)
        .await
        .unwrap();
    assert!(report.spaces >= created.len() as u64, "{report:?}");
    assert_eq!(
        (report.tombstones_removed, report.clients_removed),
        (0, 0),
        "{report:?}"
    );
}

pub async fn gc_of_the_last_commits_items_leaves_pulls_working(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let space = new_space(store, "gc-head").await;
    let set = mutation("c", 1, "setItem", json!({"key": "a", "value": 1}));
    let delete = mutation("c", 2, "deleteItem", json!({"key": "a"}));
    // One commit writes both the tombstone and the client: the space's last commit.
    push(store, &space, &push_request("g", vec![set, delete])).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let report = collect(store, &space, &everything_old()).await;
    assert_eq!(
        (report.tombstones_removed, report.clients_removed),
        (1, 1),
        "{report:?}"
    );
    for group in ["g", "other"] {
        let full = pull_from(store, &space, group, Cookie::Null).await;
        assert_eq!(full.patch, vec![PatchOp::Clear], "{group}");
        assert!(full.last_mutation_id_changes.is_empty(), "{group}");
    }
    let from_start = pull_from(store, &space, "g", Cookie::Version(0)).await;
    assert_eq!(from_start.patch, vec![PatchOp::Clear]);
}

/// Writers setting and deleting keys, readers pulling incrementally from their cookies,
/// and the collector removing every tombstone it finds, all at once: each reader's view,
/// built only from its answers (resets included), ends equal to the space, and no pull
/// fails or waits on a removed item.
pub async fn gc_concurrent_with_writers_and_readers(store: Arc<dyn Store>) {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    let space = new_space(store.as_ref(), "gc-busy").await;
    let done = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (store, space) = (store.clone(), space.clone());
            tokio::spawn(async move {
                let client = format!("w{w}");
                for id in 1..=12u64 {
                    let key = format!("k{}", id % 4);
                    let m = if id % 3 == 0 {
                        mutation(&client, id, "deleteItem", json!({"key": key}))
                    } else {
                        mutation(
                            &client,
                            id,
                            "setItem",
                            json!({"key": key, "value": [w, id]}),
                        )
                    };
                    let outcome =
                        push(store.as_ref(), &space, &push_request(&client, vec![m])).await;
                    assert!(!outcome.client_state_not_found, "writer {w} at {id}");
                }
            })
        })
        .collect();
    let collector = {
        let (store, space, done) = (store.clone(), space.clone(), done.clone());
        tokio::spawn(async move {
            let cutoffs = GarbageCutoffs {
                clients_idle_before_ms: 0,
                ..everything_old()
            };
            let mut removed = 0;
            while !done.load(Ordering::SeqCst) {
                removed += collect(store.as_ref(), &space, &cutoffs)
                    .await
                    .tombstones_removed;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            removed
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (store, space, done) = (store.clone(), space.clone(), done.clone());
            tokio::spawn(async move {
                let group = format!("reader{r}");
                let mut view = BTreeMap::new();
                let mut cookie = Cookie::Null;
                let mut resets = 0;
                loop {
                    let finished = done.load(Ordering::SeqCst);
                    let answer = pull_from(store.as_ref(), &space, &group, cookie).await;
                    for op in answer.patch.to_ops() {
                        match op {
                            PatchOp::Clear => {
                                view.clear();
                                resets += 1;
                            }
                            PatchOp::Put { key, value } => {
                                view.insert(key, value.to_value().expect("JSON"));
                            }
                            PatchOp::Del { key } => {
                                view.remove(&key);
                            }
                        }
                    }
                    cookie = cookie_of(&answer);
                    if finished {
                        return (view, resets);
                    }
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    done.store(true, Ordering::SeqCst);
    let removed = collector.await.expect("collector");
    let full = pull_from(store.as_ref(), &space, "check", Cookie::Null).await;
    let expected: BTreeMap<String, serde_json::Value> = full
        .patch
        .to_ops()
        .into_iter()
        .filter_map(|op| match op {
            PatchOp::Put { key, value } => Some((key, value.to_value().expect("JSON"))),
            _ => None,
        })
        .collect();
    for reader in readers {
        let (view, resets) = reader.await.expect("reader");
        assert_eq!(view, expected, "a reader's view (after {resets} resets)");
    }
    assert!(
        removed > 0,
        "the collector removed tombstones while the space changed"
    );
}

/// A run stopped at its deadline records where; the next run goes on from there, so runs
/// too short for the whole store still cover it, one after the other.
pub async fn gc_resumes_where_a_stopped_run_left_off(store: Arc<dyn Store>) {
    let store = store.as_ref();
    store.set_gc_resume_point(None).await.unwrap();
    let mut ours = Vec::new();
    for _ in 0..5 {
        ours.push(space_with_a_delete(store, "gc-resume").await.0);
    }
    let mut listed = 0;
    let mut after: Option<String> = None;
    loop {
        let page = store.list_spaces(after.as_deref(), 50).await.unwrap();
        listed += page.spaces.len();
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    // Tombstones old enough to go, clients never idle enough.
    let policy = gc::GcPolicy {
        tombstone_retention: Duration::ZERO,
        client_idle: Duration::from_secs(100 * 365 * 24 * 3600),
    };
    let later = now_ms() + 3_600_000;
    // Runs already past their deadline: each finishes one space and stops. Starting over
    // each time, they would all stop after the same first space.
    let mut stopped_after = Vec::new();
    for run in 1..=4 {
        let report =
            gc::collect_in_pages(store, &policy, later, Some(std::time::Instant::now()), 2)
                .await
                .unwrap();
        assert_eq!(report.spaces, 1, "run {run}: {report:?}");
        assert_eq!(report.resumed, run > 1, "run {run}: {report:?}");
        assert!(report.incomplete, "run {run}: {report:?}");
        let point = store
            .gc_resume_point()
            .await
            .unwrap()
            .expect("where it stopped");
        assert!(
            !stopped_after.contains(&point.last_space),
            "run {run} did a space again: {point:?}"
        );
        stopped_after.push(point.last_space);
    }
    // A run without a deadline goes on from there to the end: every other space, once.
    let report = gc::collect_in_pages(store, &policy, later, None, 2)
        .await
        .unwrap();
    assert!(report.resumed && !report.incomplete, "{report:?}");
    assert_eq!(report.spaces as usize, listed - 4, "{report:?}");
    assert_eq!(report.clients_removed, 0);
    assert_eq!(store.gc_resume_point().await.unwrap(), None);
    for space in &ours {
        let garbage = store.find_garbage(space, &policy.cutoffs(later)).await;
        let garbage = garbage.unwrap().expect("the space exists");
        assert!(garbage.tombstones.is_empty(), "{space}: {garbage:?}");
    }
}
