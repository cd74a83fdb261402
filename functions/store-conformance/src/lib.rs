//! The behaviour every [`Store`] adapter must show, as one suite. Each adapter's tests call
//! [`run_all`] with a store; every case works in spaces of its own, so one store (one
//! table, one file) serves the whole suite.

mod cases_access;
mod cases_api;
mod cases_engine;
mod cases_gc;
mod cases_store;
pub mod fuzz;
pub mod model;
mod scripted;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use sync_core::{SpaceId, Store};

pub use cases_access::*;
pub use cases_api::*;
pub use cases_engine::*;
pub use cases_gc::*;
pub use cases_store::*;
pub use scripted::{CommitScript, ReadScript, ScriptedStore};

/// Runs every case in order; panics (failing the calling test) on the first violation,
/// naming the case.
pub async fn run_all(store: Arc<dyn Store>) {
    let cases: Vec<(&str, Case)> = vec![
        ("spaces", |s| Box::pin(spaces(s))),
        ("commit_and_snapshot", |s| Box::pin(commit_and_snapshot(s))),
        ("conflicts_write_nothing", |s| {
            Box::pin(conflicts_write_nothing(s))
        }),
        ("pull_snapshot_since", |s| Box::pin(pull_snapshot_since(s))),
        ("reads_skip_deleted", |s| Box::pin(reads_skip_deleted(s))),
        ("values_round_trip", |s| Box::pin(values_round_trip(s))),
        ("concurrent_commits_one_winner", |s| {
            Box::pin(concurrent_commits_one_winner(s))
        }),
        ("pull_snapshot_after_each_commit", |s| {
            Box::pin(pull_snapshot_after_each_commit(s))
        }),
        ("engine_push_pull", |s| Box::pin(engine_push_pull(s))),
        ("engine_failed_mutation_leaves_no_trace", |s| {
            Box::pin(engine_failed_mutation_leaves_no_trace(s))
        }),
        ("engine_large_push_splits_commits", |s| {
            Box::pin(engine_large_push_splits_commits(s))
        }),
        ("engine_concurrent_pushes", |s| {
            Box::pin(engine_concurrent_pushes(s))
        }),
        ("engine_cookies", |s| Box::pin(engine_cookies(s))),
        ("api_poison_mutations", |s| {
            Box::pin(api_poison_mutations(s))
        }),
        ("api_pull_answers_values_exactly", |s| {
            Box::pin(api_pull_answers_values_exactly(s))
        }),
        ("access_is_recorded_and_read_back", |s| {
            Box::pin(access_is_recorded_and_read_back(s))
        }),
        ("spaces_per_owner_are_limited", |s| {
            Box::pin(spaces_per_owner_are_limited(s))
        }),
        ("api_cross_user_access", |s| {
            Box::pin(api_cross_user_access(s))
        }),
        ("api_failed_mutations_count_against_commit_limits", |s| {
            Box::pin(api_failed_mutations_count_against_commit_limits(s))
        }),
        ("gc_keeps_what_is_younger_than_the_retention", |s| {
            Box::pin(gc_keeps_what_is_younger_than_the_retention(s))
        }),
        ("gc_removes_old_tombstones_and_resets_older_cookies", |s| {
            Box::pin(gc_removes_old_tombstones_and_resets_older_cookies(s))
        }),
        ("gc_keeps_a_key_written_again", |s| {
            Box::pin(gc_keeps_a_key_written_again(s))
        }),
        (
            "gc_removes_idle_clients_and_their_pushes_get_client_state_not_found",
            |s| Box::pin(gc_removes_idle_clients_and_their_pushes_get_client_state_not_found(s)),
        ),
        (
            "gc_keeps_a_client_that_pushed_after_it_was_found_idle",
            |s| Box::pin(gc_keeps_a_client_that_pushed_after_it_was_found_idle(s)),
        ),
        ("gc_lists_every_space", |s| {
            Box::pin(gc_lists_every_space(s))
        }),
        ("gc_resumes_where_a_stopped_run_left_off", |s| {
            Box::pin(gc_resumes_where_a_stopped_run_left_off(s))
        }),
    ];
    for (name, case) in cases {
        eprintln!("conformance: {name}");
        case(store.clone()).await;
    }
}

type Case = fn(Arc<dyn Store>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// A space ID no other case or run uses.
pub fn fresh_space(tag: &str) -> SpaceId {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = SpaceId::generate();
    SpaceId::parse(&format!("{tag}-{n}-{random}")).expect("generated space IDs are valid")
}

/// Creates a fresh space and checks it starts at version 0.
pub async fn new_space(store: &dyn Store, tag: &str) -> SpaceId {
    let space = fresh_space(tag);
    assert!(store.create_space(&space).await.expect("create_space"));
    assert_eq!(
        store.space_version(&space).await.expect("space_version"),
        Some(0)
    );
    space
}

/// The number in the environment variable `var` when set, else `default`: how many cases
/// a property-based test runs (a short run in the test command, longer on demand).
pub fn cases_from_env(var: &str, default: u32) -> u32 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// A runtime for the property-based tests, which block on it: call them from a plain
/// `#[test]`, never from inside an async test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}
