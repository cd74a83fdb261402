//! Cases on who may use a space: what adapters record and read back (owner, members, link
//! access, group owners), and the cross-user rules through the whole API.

use crate::new_space;
use serde_json::{Value, json};
use std::sync::Arc;
use sync_core::auth::{AccessChange, AccessPolicy, LinkAccess, SpaceAccess};
use sync_core::mutators::app;
use sync_core::poke::NoPoker;
use sync_core::store::{ClientRecord, Commit, CommitOutcome, Created, Store};
use sync_core::{SpaceId, SyncService};

fn private_of(owner: &str) -> SpaceAccess {
    SpaceAccess::new(owner, LinkAccess::Members)
}

pub async fn access_is_recorded_and_read_back(store: Arc<dyn Store>) {
    let space = crate::fresh_space("access");
    let access = private_of("alice");
    assert_eq!(
        store
            .create_space_for(&space, &access, Some(10))
            .await
            .unwrap(),
        Created::Yes
    );
    assert_eq!(
        store
            .create_space_for(&space, &access, Some(10))
            .await
            .unwrap(),
        Created::Exists
    );
    assert_eq!(
        store.space_access(&space).await.unwrap(),
        Some(access.clone())
    );
    assert_eq!(
        store
            .space_access(&crate::fresh_space("none"))
            .await
            .unwrap(),
        None
    );

    // Changes: members added and removed, link access switched; the owner never becomes
    // a member of its own space.
    let change = AccessChange {
        add: ["bob".to_owned(), "carol".to_owned(), "alice".to_owned()].into(),
        remove: Default::default(),
        link: None,
    };
    let after = store.change_access(&space, &change).await.unwrap().unwrap();
    assert_eq!(after.members, ["bob".to_owned(), "carol".to_owned()].into());
    let change = AccessChange {
        add: Default::default(),
        remove: ["bob".to_owned(), "nobody".to_owned()].into(),
        link: Some(LinkAccess::Open),
    };
    let after = store.change_access(&space, &change).await.unwrap().unwrap();
    assert_eq!(after.members, ["carol".to_owned()].into());
    assert_eq!(
        (after.owner.as_str(), after.link),
        ("alice", LinkAccess::Open)
    );
    assert_eq!(
        store.space_access(&space).await.unwrap(),
        Some(after.clone())
    );
    assert_eq!(
        store
            .change_access(&crate::fresh_space("none"), &change)
            .await
            .unwrap(),
        None
    );

    // Snapshots carry the access and the group's owner.
    let mut commit = Commit {
        expected_version: 0,
        next_version: 1,
        clients: vec![(
            "c1".into(),
            ClientRecord {
                client_group_id: "g1".into(),
                last_mutation_id: 1,
            },
        )],
        new_group: Some(("g1".into(), "carol".into())),
        ..Commit::default()
    };
    commit.entries.push(("k".into(), Some(json!(1))));
    assert_eq!(
        store.commit(&space, &commit).await.unwrap(),
        CommitOutcome::Committed
    );
    let push = store
        .push_snapshot(&space, "g1", &["c1".to_owned()])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(push.access, after);
    assert_eq!(push.group_owner.as_deref(), Some("carol"));
    for since in [0, 1] {
        let pull = store
            .pull_snapshot(&space, "g1", since)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(pull.access, after, "since {since}");
        assert_eq!(pull.group_owner.as_deref(), Some("carol"), "since {since}");
        let other = store
            .pull_snapshot(&space, "g2", since)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(other.group_owner, None, "since {since}");
    }

    // Spaces created the tutorial's way are open and owned by nobody.
    let open = new_space(store.as_ref(), "legacy").await;
    assert_eq!(
        store.space_access(&open).await.unwrap(),
        Some(SpaceAccess::legacy())
    );
}

pub async fn spaces_per_owner_are_limited(store: Arc<dyn Store>) {
    let owner = format!("owner-{}", SpaceId::generate());
    let access = private_of(&owner);
    for i in 0..3 {
        let space = crate::fresh_space("quota");
        assert_eq!(
            store
                .create_space_for(&space, &access, Some(3))
                .await
                .unwrap(),
            Created::Yes,
            "space {i}"
        );
    }
    let refused = crate::fresh_space("quota");
    assert_eq!(
        store
            .create_space_for(&refused, &access, Some(3))
            .await
            .unwrap(),
        Created::OwnerAtLimit
    );
    assert_eq!(
        store.space_access(&refused).await.unwrap(),
        None,
        "nothing written"
    );
    // Another owner, and anonymous spaces, are not counted against this one.
    let other = crate::fresh_space("quota");
    assert_eq!(
        store
            .create_space_for(&other, &private_of("someone-else"), Some(3))
            .await
            .unwrap(),
        Created::Yes
    );
    // Without a limit, creation goes on.
    let unlimited = crate::fresh_space("quota");
    assert_eq!(
        store
            .create_space_for(&unlimited, &access, None)
            .await
            .unwrap(),
        Created::Yes
    );
}

/// The cross-user table through the whole API, signed in: what a stranger, a signed-in
/// non-member and a member can each do. Every refusal changes nothing.
pub async fn api_cross_user_access(store: Arc<dyn Store>) {
    let svc = SyncService::new(store, Arc::new(app::registry()), Arc::new(NoPoker))
        .with_cookie_keys(crate::cookie_keys().clone())
        .with_access_policy(AccessPolicy::signed_in());
    let as_user = |user: &'static str| User { svc: &svc, user };
    let alice = as_user("alice");
    let bob = as_user("bob");
    let mallory = as_user("mallory");

    let created = alice.post("createSpace", None, json!({})).await;
    assert_eq!(created.0, 200, "{created:?}");
    let space = created.1["spaceID"].as_str().unwrap().to_owned();
    let s = Some(space.as_str());
    assert_eq!(
        alice.post("spaceAccess", s, json!({})).await,
        (200, json!({"owner":"alice","members":[],"link":"members"}))
    );
    assert_eq!(alice.push(&space, "ga", "ca", 1).await.0, 200);

    // A stranger learns nothing: every answer is what an unknown space gets.
    let unknown = "no-such-space";
    for (route, body) in [
        ("pull", pull_body("gm")),
        ("push", push_body("gm", "cm", 1)),
        ("spaceAccess", json!({})),
        ("spaceAccess", json!({"add": ["mallory"]})),
    ] {
        let hidden = mallory.post(route, s, body.clone()).await;
        let missing = mallory.post(route, Some(unknown), body).await;
        assert_eq!(hidden.0, 404, "{route}: {hidden:?}");
        assert_eq!(
            hidden, missing,
            "{route}: the same answer as an unknown space"
        );
    }
    assert_eq!(
        mallory
            .post("spaceExists", None, json!({"spaceID": space}))
            .await,
        (200, json!({"spaceExists": false}))
    );
    assert_eq!(
        alice
            .post("spaceExists", None, json!({"spaceID": space}))
            .await,
        (200, json!({"spaceExists": true}))
    );

    // A member syncs, but may not change who has access.
    let added = alice.post("spaceAccess", s, json!({"add": ["bob"]})).await;
    assert_eq!(added.1["members"], json!(["bob"]), "{added:?}");
    assert_eq!(bob.push(&space, "gb", "cb", 1).await.0, 200);
    let pulled = bob.post("pull", s, pull_body("gb")).await;
    assert_eq!(pulled.0, 200);
    assert_eq!(pulled.1["lastMutationIDChanges"], json!({"cb": 1}));
    let refused = bob
        .post("spaceAccess", s, json!({"add": ["mallory"]}))
        .await;
    assert_eq!(refused.0, 403, "{refused:?}");
    assert_eq!(refused.1["error"], json!("Forbidden"));

    // A client group belongs to its first user: not even a member may use another's.
    let push = bob.push(&space, "ga", "cb2", 1).await;
    assert_eq!(push.0, 403, "{push:?}");
    let pull = bob.post("pull", s, pull_body("ga")).await;
    assert_eq!(pull.0, 403, "{pull:?}");

    // Nothing any refusal touched changed.
    let state = alice.post("pull", s, pull_body("ga")).await;
    assert_eq!(state.1["lastMutationIDChanges"], json!({"ca": 1}));
    let count = state.1["patch"]
        .as_array()
        .unwrap()
        .iter()
        .find(|op| op["key"] == "count")
        .map(|op| op["value"].clone());
    assert_eq!(count, Some(json!(2)), "alice's and bob's increments only");

    // Removed, bob is a stranger again; opened by link, anyone signed in may sync.
    alice
        .post("spaceAccess", s, json!({"remove": ["bob"]}))
        .await;
    assert_eq!(bob.post("pull", s, pull_body("gb")).await.0, 404);
    let opened = alice.post("spaceAccess", s, json!({"link": "open"})).await;
    assert_eq!(opened.1["link"], json!("open"));
    assert_eq!(mallory.push(&space, "gm", "cm", 1).await.0, 200);
    assert_eq!(mallory.post("pull", s, pull_body("gm")).await.0, 200);
    let change = mallory
        .post("spaceAccess", s, json!({"link": "members"}))
        .await;
    assert_eq!(change.0, 403, "only the owner changes access: {change:?}");
}

struct User<'a> {
    svc: &'a SyncService,
    user: &'static str,
}

impl User<'_> {
    async fn post(&self, route: &str, space: Option<&str>, body: Value) -> (u16, Value) {
        let body = body.to_string();
        let resp = self
            .svc
            .handle(sync_core::ApiRequest {
                method: "POST",
                path: &format!("/api/replicache/{route}"),
                space_id: space,
                body: body.as_bytes(),
                accepts_gzip: false,
                user: self.user,
            })
            .await;
        (resp.status, resp.json_body().expect("JSON"))
    }

    async fn push(&self, space: &str, group: &str, client: &str, id: u64) -> (u16, Value) {
        self.post("push", Some(space), push_body(group, client, id))
            .await
    }
}

fn push_body(group: &str, client: &str, id: u64) -> Value {
    json!({"pushVersion":1,"clientGroupID":group,"mutations":
        [{"clientID":client,"id":id,"name":"increment","args":1}]})
}

fn pull_body(group: &str) -> Value {
    json!({"pullVersion":1,"clientGroupID":group,"cookie":null})
}
