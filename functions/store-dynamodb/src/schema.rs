//! The single-table layout: key, attribute and index names, and how items are keyed.
//!
//! Everything a deployment template or an operator needs to know about the table is a
//! public constant here, so the template and the code cannot drift apart silently.

/// Partition key (S): `space#<spaceID>` for every item of a space; `user#<userID>` for a
/// user's own items (the count of spaces they own, [`SPACE_COUNT`]).
pub const PK: &str = "pk";
/// Sort key (S): `meta`, `e#<key>`, `c#<clientGroupID>#<clientID>`, `m#<clientID>` or
/// `g#<clientGroupID>` in a space (IDs never hold `#`);
/// [`SPACE_COUNT_SK`] in a user's partition.
pub const SK: &str = "sk";

/// Local secondary index on (`pk`, `version`), projection ALL: a pull reads only what
/// changed since its cookie. Only entries carry `version`, so the space item, group and
/// client items stay out of it: a pull reads its own group's clients by their common
/// sort-key prefix ([`group_clients_prefix`]), never another group's.
pub const VERSION_INDEX: &str = "version-index";

/// Time-to-live attribute (N, epoch seconds) for items that expire on their own, such as
/// poke connections.
pub const TTL_ATTRIBUTE: &str = "expiresAt";

/// Space item: the version counter (N). Deliberately not called `version`, which would put
/// the space item into the version index.
pub const HEAD_VERSION: &str = "headVersion";
/// Space item: the sort keys of the entries and clients the last commit that wrote any
/// wrote (L of S; absent before the first such commit). A pull uses it to
/// complete a range read that saw that commit in part. It holds at most one commit's
/// writes (`StoreLimits::max_writes_per_commit`, 98 keys), usually a couple of short ones.
pub const HEAD_ITEMS: &str = "headItems";
/// Space item: how many access changes it has seen (N; absent before the first). An access
/// change that must read first (to compute the members it writes) is conditioned on it
/// being what it read, so that a concurrent change is redone on top, never lost.
pub const ACCESS_VERSION: &str = "accessVersion";
/// Space item: the version the last commit that wrote items stamped them with (N), which
/// [`HEAD_ITEMS`] names. A version-only commit (a raise past a cookie from the future)
/// leaves both as they are: the commit before it may still be landing. Absent on space
/// items written before it existed: [`HEAD_VERSION`] then stands for it.
pub const HEAD_ITEMS_VERSION: &str = "headItemsVersion";
/// Space item: garbage collection may have removed deleted entries stamped at or below
/// this version (N; absent = 0). A pull whose cookie is below it gets a reset.
pub const TOMBSTONE_FLOOR: &str = "tombstoneFloor";
/// Entry and client items: when the commit that wrote them ran (N, epoch milliseconds),
/// which garbage collection ages them by. Items written before it existed lack it and are
/// never collected.
pub const WRITTEN_AT: &str = "writtenAt";
/// Space item: creation time (N, epoch milliseconds).
pub const CREATED_AT: &str = "createdAt";
/// Space item: who may use the space besides its owner and members (S): `open` (anyone
/// with its link) or `members`.
///
/// With [`OWNER`] and [`MEMBERS`] it is the space's `SpaceAccess`. Each reads as
/// `SpaceAccess::legacy()` has it when absent (`open`, owned by nobody, no members): space
/// items written before access was recorded are open to anyone, as they were.
pub const LINK: &str = "link";
/// Space item: the users besides the owner who may use the space (SS; absent when there
/// are none: DynamoDB has no empty sets). Never holds the owner. Changed in place by
/// `ADD` and `DELETE` where one update can (see `DynamoStore::change_access`).
pub const MEMBERS: &str = "members";

/// Entry items: the version of their last change (N); the index's sort key.
pub const VERSION: &str = "version";
/// Client items: the version of their last change (N). Not `version`, which would put
/// every client of every group into the index a pull reads.
pub const CLIENT_VERSION: &str = "clientVersion";
/// Entry item: the JSON text of the value (S); absent when deleted.
pub const VALUE: &str = "value";
/// Entry item: soft-delete flag (BOOL), so a pull can report `del`.
pub const DELETED: &str = "deleted";

/// Client item: the group the client belongs to (S).
pub const CLIENT_GROUP_ID: &str = "clientGroupID";
/// Client item: the last processed mutation ID (N).
pub const LAST_MUTATION_ID: &str = "lastMutationID";

/// Client-group item: the user who owns the group (S; `""` when anonymous). Space item:
/// the user who created the space (S; absent when it was created without sign-in, or
/// before access was recorded).
pub const OWNER: &str = "owner";

/// Space-count item (partition [`user_pk`], sort key [`SPACE_COUNT_SK`]): how many spaces
/// its user created under a per-user limit (N). Created by the first such creation, moved
/// by one in the same transaction as each further one, and only while below the limit.
/// Spaces created without a limit (or before counting existed) are not counted.
pub const SPACE_COUNT: &str = "spaceCount";
/// Sort key of a user's space-count item.
pub const SPACE_COUNT_SK: &str = "spaces";
/// Partition-key prefix of a user's items (`user#<userID>`), apart from every space's
/// partition (`space#<spaceID>`).
pub const USER_PREFIX: &str = "user#";

/// Partition key of the item saying where a garbage collection run stopped (sort key
/// [`META_SK`]); apart from every space's partition, so that listing spaces skips it.
pub const GC_RESUME_PK: &str = "gc#resume";
/// Attributes of that item: the cursor of the page of spaces, the last space finished.
pub const GC_PAGE_AFTER: &str = "pageAfter";
pub const GC_LAST_SPACE: &str = "lastSpace";

/// Sort key of the space item.
pub const META_SK: &str = "meta";
/// Sort-key prefix of entries.
pub const ENTRY_PREFIX: &str = "e#";
/// Sort-key prefix of clients (then the group's ID, `#`, the client's ID).
pub const CLIENT_PREFIX: &str = "c#";
/// Sort-key prefix of client memberships: which group a client belongs to
/// ([`CLIENT_GROUP_ID`]), written with the client's first record, so that a push naming
/// another group's client is refused although records are keyed by group.
pub const MEMBER_PREFIX: &str = "m#";
/// Sort-key prefix of client groups.
pub const GROUP_PREFIX: &str = "g#";

/// The partition key of a space.
pub fn space_pk(space_id: &str) -> String {
    format!("space#{space_id}")
}

/// The partition key of a user's items.
pub fn user_pk(user: &str) -> String {
    format!("{USER_PREFIX}{user}")
}

pub fn entry_sk(key: &str) -> String {
    format!("{ENTRY_PREFIX}{key}")
}

pub fn client_sk(client_group_id: &str, client_id: &str) -> String {
    format!("{CLIENT_PREFIX}{client_group_id}#{client_id}")
}

/// What the sort keys of a group's clients start with.
pub fn group_clients_prefix(client_group_id: &str) -> String {
    format!("{CLIENT_PREFIX}{client_group_id}#")
}

/// The (group ID, client ID) of a client's sort key; `None` for any other sort key,
/// including a client item of the layout before groups keyed them (`c#<clientID>`).
pub fn parse_client_sk(sk: &str) -> Option<(&str, &str)> {
    sk.strip_prefix(CLIENT_PREFIX)?.split_once('#')
}

/// The version an entry or client item was last written at.
pub fn version_attribute(sk: &str) -> &'static str {
    if sk.starts_with(CLIENT_PREFIX) {
        CLIENT_VERSION
    } else {
        VERSION
    }
}

pub fn member_sk(client_id: &str) -> String {
    format!("{MEMBER_PREFIX}{client_id}")
}

pub fn group_sk(client_group_id: &str) -> String {
    format!("{GROUP_PREFIX}{client_group_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(space_pk("abc"), "space#abc");
        assert_eq!(entry_sk("item/1"), "e#item/1");
        assert_eq!(client_sk("g1", "c1"), "c#g1#c1");
        assert!(client_sk("g1", "c1").starts_with(&group_clients_prefix("g1")));
        assert!(!client_sk("g10", "c1").starts_with(&group_clients_prefix("g1")));
        assert_eq!(parse_client_sk("c#g1#c1"), Some(("g1", "c1")));
        assert_eq!(parse_client_sk("c#c1"), None);
        assert_eq!(parse_client_sk("e#g#c"), None);
        assert_eq!(version_attribute("c#g#c"), CLIENT_VERSION);
        assert_eq!(version_attribute("e#k"), VERSION);
        assert_eq!(group_sk("g1"), "g#g1");
        assert_eq!(user_pk("u1"), "user#u1");
        assert!(!space_pk("").starts_with(USER_PREFIX) && !user_pk("").starts_with("space#"));
        // The prefixes must not be prefixes of each other or of the space item's key.
        assert_eq!(member_sk("c1"), "m#c1");
        let prefixes = [ENTRY_PREFIX, CLIENT_PREFIX, MEMBER_PREFIX, GROUP_PREFIX];
        for (i, a) in prefixes.iter().enumerate() {
            for b in &prefixes[i + 1..] {
                assert!(!a.starts_with(b) && !b.starts_with(a));
            }
        }
        for (a, b) in [(ENTRY_PREFIX, CLIENT_PREFIX), (CLIENT_PREFIX, GROUP_PREFIX)] {
            assert!(!a.starts_with(b) && !b.starts_with(a));
        }
        assert!(!META_SK.contains('#'));
    }
}
