//! Cases through the real push and pull engine: the protocol's guarantees must hold on
//! every adapter, not only on the in-memory one.

use crate::new_space;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::OnceLock;
use sync_core::cookie::CookieKeys;
use sync_core::engine::pull::PullError;
use sync_core::engine::{self, PushConfig};
use sync_core::mutators::app;
use sync_core::protocol::{
    Cookie, MAX_SAFE_INTEGER, Mutation, PatchOp, PullRequest, PullResponse, PushRequest,
};
use sync_core::{SpaceId, Store};

pub fn mutation(client: &str, id: u64, name: &str, args: Value) -> Mutation {
    Mutation {
        client_id: client.to_owned(),
        id,
        name: name.to_owned(),
        args,
        defect: None,
    }
}

pub fn push_request(group: &str, mutations: Vec<Mutation>) -> PushRequest {
    PushRequest {
        client_group_id: group.to_owned(),
        profile_id: None,
        schema_version: String::new(),
        mutations,
    }
}

/// The cookie keys of every case: a fixed test secret, so that cookies signed in one
/// call verify in the next.
pub fn cookie_keys() -> &'static CookieKeys {
    static KEYS: OnceLock<CookieKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        CookieKeys::from_secret_text("conformance-cookie-secret-0123456789abcdef")
            .expect("a valid test secret")
    })
}

pub async fn try_pull_from(
    store: &dyn Store,
    space: &SpaceId,
    group: &str,
    cookie: Cookie,
) -> Result<PullResponse, PullError> {
    try_pull_as(store, space, "", group, cookie).await
}

/// A pull by `user` under the default rule.
pub async fn try_pull_as(
    store: &dyn Store,
    space: &SpaceId,
    user: &str,
    group: &str,
    cookie: Cookie,
) -> Result<PullResponse, PullError> {
    let req = PullRequest {
        client_group_id: group.to_owned(),
        profile_id: None,
        schema_version: String::new(),
        cookie,
    };
    engine::pull(store, cookie_keys(), space, user, &req).await
}

pub async fn pull_from(
    store: &dyn Store,
    space: &SpaceId,
    group: &str,
    cookie: Cookie,
) -> PullResponse {
    try_pull_from(store, space, group, cookie)
        .await
        .expect("pull")
}

/// The cookie a response handed out, as the client sends it back.
pub fn cookie_of(resp: &PullResponse) -> Cookie {
    Cookie::Signed {
        order: resp.cookie.order,
        sig: resp.cookie.sig.clone(),
    }
}

/// The value a response puts at `key`, parsed.
fn put_value(resp: &PullResponse, key: &str) -> Option<Value> {
    resp.patch.to_ops().iter().find_map(|op| match op {
        PatchOp::Put { key: k, value } if k == key => Some(value.to_value().expect("JSON")),
        _ => None,
    })
}

/// A push by the anonymous user with the app's Rust mutators; panics on failure.
pub async fn push(store: &dyn Store, space: &SpaceId, req: &PushRequest) -> engine::PushOutcome {
    engine::push(
        store,
        &app::registry(),
        &PushConfig::default(),
        space,
        "",
        req,
    )
    .await
    .expect("push")
}

pub async fn engine_push_pull(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let space = new_space(store, "engine").await;
    let req = push_request(
        "g",
        vec![
            mutation("c1", 1, "increment", json!(2)),
            mutation("c1", 2, "increment", json!(3)),
            mutation("c2", 1, "increment", json!(10)),
        ],
    );
    let outcome = push(store, &space, &req).await;
    assert_eq!((outcome.processed, outcome.commits), (3, 1));

    let full = pull_from(store, &space, "g", Cookie::Null).await;
    assert_eq!(full.patch.to_ops().first(), Some(&PatchOp::Clear));
    assert_eq!(put_value(&full, "count"), Some(json!(15)));
    assert_eq!(
        full.last_mutation_id_changes,
        [("c1".into(), 2), ("c2".into(), 1)].into()
    );
    assert_eq!(full.cookie.order, 1);

    // The same request again: all duplicates, nothing committed, nothing changes.
    let again = push(store, &space, &req).await;
    assert_eq!((again.processed, again.commits), (0, 0));
    let same = pull_from(store, &space, "g", cookie_of(&full)).await;
    assert_eq!(same.cookie, full.cookie);
    assert!(same.patch.is_empty() && same.last_mutation_id_changes.is_empty());

    // Another group's pull sees the data but not this group's LMIDs.
    let other = pull_from(store, &space, "h", Cookie::Null).await;
    assert_eq!(put_value(&other, "count"), Some(json!(15)));
    assert!(other.last_mutation_id_changes.is_empty());

    // Incremental: only what changed, with the new cookie.
    let req = push_request("g", vec![mutation("c2", 2, "increment", json!(1))]);
    push(store, &space, &req).await;
    let inc = pull_from(store, &space, "g", cookie_of(&full)).await;
    assert_eq!(inc.cookie.order, 2);
    assert_eq!(
        inc.patch,
        vec![PatchOp::Put {
            key: "count".into(),
            value: json!(16).into()
        }]
    );
    assert_eq!(inc.last_mutation_id_changes, [("c2".into(), 2)].into());

    // A mutation from the future is never applied and stops processing.
    let req = push_request(
        "g",
        vec![
            mutation("c2", 4, "increment", json!(100)),
            mutation("c1", 3, "increment", json!(1)),
        ],
    );
    let outcome = push(store, &space, &req).await;
    assert!(outcome.client_state_not_found);
    assert_eq!(outcome.commits, 0);
    let after = pull_from(store, &space, "g", Cookie::Null).await;
    assert_eq!(put_value(&after, "count"), Some(json!(16)));

    // Deletes reach an incremental pull as `del`.
    let req = push_request(
        "g",
        vec![
            mutation("c1", 3, "setItem", json!({"key": "x", "value": [1, 2]})),
            mutation("c1", 4, "deleteItem", json!({"key": "x"})),
            mutation("c1", 5, "setItem", json!({"key": "y", "value": null})),
        ],
    );
    push(store, &space, &req).await;
    let inc = pull_from(store, &space, "g", Cookie::Version(2)).await;
    assert!(inc.patch.to_ops().contains(&PatchOp::Del {
        key: "item/x".into()
    }));
    assert_eq!(put_value(&inc, "item/y"), Some(Value::Null));
}

pub async fn engine_failed_mutation_leaves_no_trace(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let space = new_space(store, "failed").await;
    let req = push_request(
        "g",
        vec![
            mutation("c", 1, "increment", json!(5)),
            mutation("c", 2, "increment", json!("not a number")),
            mutation("c", 3, "noSuchMutator", json!({})),
            mutation(
                "c",
                4,
                "setItem",
                json!({"key": "big", "value": "x".repeat(400_000)}),
            ),
            mutation("c", 5, "increment", json!(1)),
        ],
    );
    let outcome = push(store, &space, &req).await;
    assert_eq!((outcome.processed, outcome.failed), (5, 3));
    let full = pull_from(store, &space, "g", Cookie::Null).await;
    assert_eq!(put_value(&full, "count"), Some(json!(6)));
    assert_eq!(put_value(&full, "item/big"), None);
    assert_eq!(full.last_mutation_id_changes, [("c".into(), 5)].into());
}

pub async fn engine_large_push_splits_commits(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let space = new_space(store, "large").await;
    let mutations: Vec<_> = (1..=250)
        .map(|i| {
            mutation(
                "c",
                i,
                "setItem",
                json!({"key": format!("k{i:03}"), "value": i}),
            )
        })
        .collect();
    let outcome = push(store, &space, &push_request("g", mutations)).await;
    assert_eq!(outcome.processed, 250);
    assert!(
        outcome.commits >= 3,
        "250 distinct keys need at least 3 commits"
    );
    let full = pull_from(store, &space, "g", Cookie::Null).await;
    assert_eq!(full.patch.len(), 251);
    assert_eq!(put_value(&full, "item/k250"), Some(json!(250)));
    assert_eq!(full.last_mutation_id_changes, [("c".into(), 250)].into());

    // Merged writes to one key: 1,000 increments fit one commit.
    let space = new_space(store, "merged").await;
    let mutations: Vec<_> = (1..=1000)
        .map(|i| mutation("c", i, "increment", json!(1)))
        .collect();
    let outcome = push(store, &space, &push_request("g", mutations)).await;
    assert_eq!((outcome.processed, outcome.commits), (1000, 1));
    let full = pull_from(store, &space, "g", Cookie::Null).await;
    assert_eq!(put_value(&full, "count"), Some(json!(1000)));
}

pub async fn engine_concurrent_pushes(store: Arc<dyn Store>) {
    let space = new_space(store.as_ref(), "concurrent").await;
    let config = PushConfig {
        max_attempts: 200,
        ..PushConfig::default()
    };
    let tasks: Vec<_> = (0..8)
        .map(|g| {
            let store = store.clone();
            let space = space.clone();
            let config = config.clone();
            tokio::spawn(async move {
                let registry = app::registry();
                let client = format!("c{g}");
                for id in 1..=10u64 {
                    let req = push_request(
                        &format!("g{g}"),
                        (1..=id)
                            .map(|i| mutation(&client, i, "increment", json!(1)))
                            .collect(),
                    );
                    // Each request twice: replays must be no-ops.
                    for _ in 0..2 {
                        engine::push(store.as_ref(), &registry, &config, &space, "", &req)
                            .await
                            .expect("push");
                    }
                }
            })
        })
        .collect();
    for t in futures::future::join_all(tasks).await {
        t.expect("push task");
    }
    let full = pull_from(store.as_ref(), &space, "g3", Cookie::Null).await;
    assert_eq!(put_value(&full, "count"), Some(json!(80)));
    assert_eq!(full.last_mutation_id_changes, [("c3".into(), 10)].into());
}

/// Forged cookies from the future never move a space's version; a cookie this server
/// signed (held across a restore) gets a reset above it, and versions never go back.
pub async fn engine_cookies(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let space = new_space(store, "future").await;
    push(
        store,
        &space,
        &push_request("g", vec![mutation("c", 1, "increment", json!(1))]),
    )
    .await;
    let other_space = crate::fresh_space("other");
    let stranger_keys = CookieKeys::from_secret_text(&"s".repeat(32)).expect("a valid key");
    let forged = [
        Cookie::Version(MAX_SAFE_INTEGER),
        Cookie::Version(1 << 52),
        Cookie::Version(1_000_000_000_000_000),
        Cookie::Unusable(1e300),
        Cookie::Unusable(1.5),
        Cookie::Signed {
            order: 50,
            sig: "forged".into(),
        },
        Cookie::Signed {
            order: 50,
            sig: stranger_keys.sign(&space, 50).sig,
        },
        Cookie::Signed {
            order: 50,
            sig: cookie_keys().sign(&other_space, 50).sig,
        },
        Cookie::Signed {
            order: MAX_SAFE_INTEGER,
            sig: cookie_keys().sign(&space, MAX_SAFE_INTEGER).sig,
        },
    ];
    for cookie in forged {
        let refused = try_pull_from(store, &space, "stranger", cookie.clone()).await;
        assert!(
            matches!(refused, Err(PullError::CookieFromTheFuture { .. })),
            "{cookie:?}: {refused:?}"
        );
    }
    assert_eq!(
        store.space_version(&space).await.expect("version"),
        Some(1),
        "a forged cookie moved the version"
    );
    // Below the version, unsigned numbers (earlier servers' cookies) stay incremental.
    let legacy = pull_from(store, &space, "g", Cookie::Version(0)).await;
    assert_eq!(legacy.cookie.order, 1);
    assert_eq!(put_value(&legacy, "count"), Some(json!(1)));
    assert!(!legacy.patch.to_ops().contains(&PatchOp::Clear));

    // A genuine cookie from before a restore.
    let genuine = cookie_keys().sign(&space, 50);
    let reset = pull_from(
        store,
        &space,
        "g",
        Cookie::Signed {
            order: 50,
            sig: genuine.sig,
        },
    )
    .await;
    assert!(
        reset.cookie.order > 50,
        "a reset must carry a cookie above the one sent"
    );
    assert_eq!(reset.patch.to_ops().first(), Some(&PatchOp::Clear));
    assert_eq!(put_value(&reset, "count"), Some(json!(1)));
    assert_eq!(
        store.space_version(&space).await.expect("version"),
        Some(reset.cookie.order)
    );
    // Versions never go back: the next push lands above the reset cookie, incrementally.
    push(
        store,
        &space,
        &push_request("g", vec![mutation("c", 2, "increment", json!(1))]),
    )
    .await;
    let inc = pull_from(store, &space, "g", cookie_of(&reset)).await;
    assert!(inc.cookie.order > reset.cookie.order);
    assert_eq!(
        inc.patch,
        vec![PatchOp::Put {
            key: "count".into(),
            value: json!(2).into()
        }]
    );
}
