//! Who may use a space, as the adapter stores it: access on the space item, per-owner
//! space counts, in-place and read-first access changes, and what each costs in requests.

mod support;

use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use store_dynamodb::{DynamoStore, schema};
use sync_core::SpaceId;
use sync_core::auth::{AccessChange, LinkAccess, SpaceAccess};
use sync_core::store::{Created, Store};

type Item = HashMap<String, AttributeValue>;

fn users(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

fn change(add: &[&str], remove: &[&str], link: Option<LinkAccess>) -> AccessChange {
    AccessChange {
        add: users(add),
        remove: users(remove),
        link,
    }
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

async fn raw_item(store: &DynamoStore, pk: &str, sk: &str) -> Option<Item> {
    store
        .client()
        .get_item()
        .table_name(store.table())
        .key(schema::PK, AttributeValue::S(pk.into()))
        .key(schema::SK, AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

async fn space_item(store: &DynamoStore, space: &SpaceId) -> Item {
    raw_item(store, &schema::space_pk(space.as_str()), schema::META_SK)
        .await
        .expect("the space item")
}

async fn space_count(store: &DynamoStore, owner: &str) -> Option<u64> {
    raw_item(store, &schema::user_pk(owner), schema::SPACE_COUNT_SK)
        .await
        .map(|item| match &item[schema::SPACE_COUNT] {
            AttributeValue::N(n) => n.parse().unwrap(),
            other => panic!("a count: {other:?}"),
        })
}

#[tokio::test]
async fn access_is_stored_on_the_space_item() {
    let f = support::fixture("accessitem").await;
    let store = &f.store;
    let space = SpaceId::generate();
    let mut access = SpaceAccess::new("alice", LinkAccess::Members);
    access.members.insert("bob".into());
    f.counter.reset();
    assert_eq!(
        store.create_space_for(&space, &access, None).await.unwrap(),
        Created::Yes
    );
    assert_eq!(f.counter.snapshot(), counts(&[("PutItem", 1)]));
    let item = space_item(store, &space).await;
    assert_eq!(item[schema::OWNER], AttributeValue::S("alice".into()));
    assert_eq!(item[schema::LINK], AttributeValue::S("members".into()));
    assert_eq!(
        item[schema::MEMBERS],
        AttributeValue::Ss(vec!["bob".into()])
    );
    assert!(
        !item.contains_key(schema::VERSION),
        "out of the version index"
    );
    assert_eq!(
        space_count(store, "alice").await,
        None,
        "no limit, no count"
    );

    // The tutorial's spaces: open, owned by nobody, only the link written.
    let open = SpaceId::generate();
    assert!(store.create_space(&open).await.unwrap());
    let item = space_item(store, &open).await;
    assert_eq!(item[schema::LINK], AttributeValue::S("open".into()));
    assert!(!item.contains_key(schema::OWNER) && !item.contains_key(schema::MEMBERS));
    assert_eq!(
        store.space_access(&open).await.unwrap(),
        Some(SpaceAccess::legacy())
    );
}

#[tokio::test]
async fn space_items_from_before_access_read_as_legacy() {
    let f = support::fixture("legacy").await;
    let store = &f.store;
    let space = SpaceId::generate();
    // A space item as the adapter wrote it before access was recorded.
    store
        .client()
        .put_item()
        .table_name(store.table())
        .item(
            schema::PK,
            AttributeValue::S(schema::space_pk(space.as_str())),
        )
        .item(schema::SK, AttributeValue::S(schema::META_SK.into()))
        .item(schema::HEAD_VERSION, AttributeValue::N("0".into()))
        .item(schema::CREATED_AT, AttributeValue::N("0".into()))
        .send()
        .await
        .unwrap();
    let legacy = Some(SpaceAccess::legacy());
    assert_eq!(store.space_access(&space).await.unwrap(), legacy);
    let push = store
        .push_snapshot(&space, "g", &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(push.access, SpaceAccess::legacy());
    let pull = store.pull_snapshot(&space, "g", 0).await.unwrap().unwrap();
    assert_eq!(
        (pull.access, pull.group_owner),
        (SpaceAccess::legacy(), None)
    );

    // Its access can be changed like any other's; it stays nobody's.
    let after = store
        .change_access(&space, &change(&["bob"], &[], None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (after.owner.as_str(), after.link, after.members),
        ("", LinkAccess::Open, users(&["bob"]))
    );
}

#[tokio::test]
async fn access_changes_cost_one_update_when_one_can_make_them() {
    let f = support::fixture("accesschange").await;
    let store = &f.store;
    let space = SpaceId::generate();
    let access = SpaceAccess::new("alice", LinkAccess::Members);
    assert_eq!(
        store
            .create_space_for(&space, &access, Some(5))
            .await
            .unwrap(),
        Created::Yes
    );
    let mut expected = access.clone();
    let mut check = async |what: &str, c: AccessChange, requests: &[(&str, u64)]| {
        f.counter.reset();
        expected = c.applied_to(&expected);
        let after = store.change_access(&space, &c).await.unwrap().unwrap();
        assert_eq!(after, expected, "{what}");
        assert_eq!(f.counter.snapshot(), counts(requests), "{what}");
        assert_eq!(
            store.space_access(&space).await.unwrap().as_ref(),
            Some(&expected),
            "{what}: read back"
        );
        let item = space_item(store, &space).await;
        match item.get(schema::MEMBERS) {
            Some(AttributeValue::Ss(stored)) => {
                assert!(
                    !stored.contains(&"alice".to_owned()),
                    "{what}: owner stored"
                );
                assert_eq!(
                    stored.iter().cloned().collect::<BTreeSet<_>>(),
                    expected.members
                );
            }
            None => assert!(expected.members.is_empty(), "{what}"),
            Some(other) => panic!("{what}: members stored as {other:?}"),
        }
    };
    let update = [("UpdateItem", 1)];
    let read_first = [("GetItem", 1), ("UpdateItem", 1)];
    check("add", change(&["bob", "carol"], &[], None), &update).await;
    check(
        "remove and open",
        change(&[], &["bob", "nobody"], Some(LinkAccess::Open)),
        &update,
    )
    .await;
    check(
        "link alone",
        change(&[], &[], Some(LinkAccess::Members)),
        &update,
    )
    .await;
    check(
        "added and removed: the removal wins, in place",
        change(&["dave"], &["dave"], None),
        &update,
    )
    .await;
    check(
        "add and remove at once: read first",
        change(&["dave", "erin"], &["carol"], Some(LinkAccess::Open)),
        &read_first,
    )
    .await;
    check(
        "the owner among the added: refused in place, then read first",
        change(&["alice", "frank"], &[], None),
        &[("GetItem", 1), ("UpdateItem", 2)],
    )
    .await;
    check(
        "everyone removed: no members attribute left",
        change(&["gina"], &["dave", "erin", "frank"], None),
        &read_first,
    )
    .await;
    check(
        "removing the last member in place",
        change(&[], &["gina"], None),
        &update,
    )
    .await;
    let hundred: Vec<String> = (0..100).map(|i| format!("user-{i:03}")).collect();
    let hundred: Vec<&str> = hundred.iter().map(String::as_str).collect();
    check(
        "as many as one IN takes",
        change(&hundred, &[], None),
        &update,
    )
    .await;
    let more: Vec<String> = (100..250).map(|i| format!("user-{i:03}")).collect();
    let more: Vec<&str> = more.iter().map(String::as_str).collect();
    check(
        "more than one IN takes",
        change(&more, &[], None),
        &read_first,
    )
    .await;
    assert_eq!(expected.members.len(), 250);

    // Nothing to change: a read. An unknown space: nothing.
    f.counter.reset();
    let same = store
        .change_access(&space, &AccessChange::default())
        .await
        .unwrap();
    assert_eq!(same, Some(expected.clone()));
    assert_eq!(f.counter.snapshot(), counts(&[("GetItem", 1)]));
    let unknown = SpaceId::generate();
    for c in [
        change(&["bob"], &[], None),
        change(&[], &["bob"], Some(LinkAccess::Open)),
        change(&["bob"], &["carol"], None),
    ] {
        assert_eq!(store.change_access(&unknown, &c).await.unwrap(), None);
    }
    assert_eq!(store.space_access(&unknown).await.unwrap(), None);
}

#[tokio::test]
async fn concurrent_access_changes_are_never_lost() {
    let f = support::fixture("accessrace").await;
    let space = SpaceId::generate();
    let access = SpaceAccess::new("alice", LinkAccess::Members);
    assert_eq!(
        f.store
            .create_space_for(&space, &access, None)
            .await
            .unwrap(),
        Created::Yes
    );
    // Adding and removing at once: each change is read first and written whole.
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let store = f.store.clone();
            let space = space.clone();
            tokio::spawn(async move {
                let name = format!("user-{i}");
                let c = change(&[name.as_str()], &["nobody"], None);
                store.change_access(&space, &c).await
            })
        })
        .collect();
    for task in tasks {
        let after = task.await.unwrap().expect("changed within its tries");
        assert!(after.is_some());
    }
    let members = f.store.space_access(&space).await.unwrap().unwrap().members;
    let expected: BTreeSet<String> = (0..6).map(|i| format!("user-{i}")).collect();
    assert_eq!(members, expected);
}

#[tokio::test]
async fn spaces_are_counted_per_owner_in_the_creating_transaction() {
    let f = support::fixture("quota").await;
    let store = &f.store;
    let owner = format!("owner-{}", SpaceId::generate());
    let access = SpaceAccess::new(&owner, LinkAccess::Members);
    let first = SpaceId::generate();
    f.counter.reset();
    assert_eq!(
        store
            .create_space_for(&first, &access, Some(2))
            .await
            .unwrap(),
        Created::Yes
    );
    assert_eq!(f.counter.snapshot(), counts(&[("TransactWriteItems", 1)]));
    assert_eq!(space_count(store, &owner).await, Some(1));
    // An existing space is said so, and not counted.
    assert_eq!(
        store
            .create_space_for(&first, &access, Some(2))
            .await
            .unwrap(),
        Created::Exists
    );
    assert_eq!(space_count(store, &owner).await, Some(1));
    assert_eq!(
        store
            .create_space_for(&SpaceId::generate(), &access, Some(2))
            .await
            .unwrap(),
        Created::Yes
    );
    let refused = SpaceId::generate();
    assert_eq!(
        store
            .create_space_for(&refused, &access, Some(2))
            .await
            .unwrap(),
        Created::OwnerAtLimit
    );
    assert_eq!(store.space_access(&refused).await.unwrap(), None);
    assert_eq!(space_count(store, &owner).await, Some(2));
    // At the limit, an existing space is still an existing space.
    assert_eq!(
        store
            .create_space_for(&first, &access, Some(2))
            .await
            .unwrap(),
        Created::Exists
    );
    // A raised limit lets the owner go on.
    assert_eq!(
        store
            .create_space_for(&refused, &access, Some(3))
            .await
            .unwrap(),
        Created::Yes
    );
    assert_eq!(space_count(store, &owner).await, Some(3));

    // A limit of 0 refuses even a first space.
    let newcomer = SpaceAccess::new("newcomer", LinkAccess::Members);
    let none = SpaceId::generate();
    assert_eq!(
        store
            .create_space_for(&none, &newcomer, Some(0))
            .await
            .unwrap(),
        Created::OwnerAtLimit
    );
    assert_eq!(store.space_access(&none).await.unwrap(), None);
    assert_eq!(space_count(store, "newcomer").await, None);

    // Anonymous spaces are never counted: a plain conditional put.
    f.counter.reset();
    assert_eq!(
        store
            .create_space_for(&SpaceId::generate(), &SpaceAccess::legacy(), Some(0))
            .await
            .unwrap(),
        Created::Yes
    );
    assert_eq!(f.counter.snapshot(), counts(&[("PutItem", 1)]));
    assert_eq!(space_count(store, "").await, None);
}

#[tokio::test]
async fn concurrent_creations_never_pass_the_limit() {
    let f = support::fixture("quotarace").await;
    let owner = format!("owner-{}", SpaceId::generate());
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = f.store.clone();
            let access = SpaceAccess::new(&owner, LinkAccess::Members);
            tokio::spawn(async move {
                store
                    .create_space_for(&SpaceId::generate(), &access, Some(3))
                    .await
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap().expect("decided within its tries") {
            Created::Yes => created += 1,
            Created::OwnerAtLimit => {}
            Created::Exists => panic!("fresh IDs"),
        }
    }
    assert_eq!(created, 3);
    assert_eq!(space_count(&f.store, &owner).await, Some(3));
}
