//! Pull: the space as of one version, relative to the client's cookie.
//!
//! The store answers the version `v` and everything changed since the cookie as of
//! exactly `v`, in one call ([`Store::pull_snapshot`]), so LMIDs and data always come from
//! one snapshot. The cookie answered is `v`, signed (see [`crate::cookie`]).

use crate::auth::{Action, Caller, Refusal};
use crate::cookie::CookieKeys;
use crate::ids::SpaceId;
use crate::protocol::{Cookie, MAX_SAFE_INTEGER, Patch, PullRequest, PullResponse};
use crate::store::{Commit, CommitOutcome, PullSnapshot, Store, StoreError, Version};

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("space not found")]
    SpaceNotFound,
    #[error("the space is too contended; retry")]
    Contended,
    #[error(
        "cookie {order} is beyond the space's version {version} and carries no valid \
         signature of this server; pull with a cookie this server handed out, or null"
    )]
    CookieFromTheFuture { order: f64, version: Version },
    #[error("client group belongs to another user")]
    GroupOwnedByOtherUser,
    #[error(transparent)]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Attempts to move the version past a genuine cookie from the future before giving up.
const MAX_RAISE_ATTEMPTS: u32 = 8;

/// What the pull's cookie lets it answer.
enum Since {
    /// Everything: `clear`, then every live entry.
    Reset,
    /// The changes after the cookie.
    Changes,
}

/// Answers `req` for `caller` (a user, `""` when anonymous, under the default rule; or a
/// [`Caller`] with its own).
pub async fn pull<'c>(
    store: &dyn Store,
    keys: &CookieKeys,
    space: &SpaceId,
    caller: impl Into<Caller<'c>>,
    req: &PullRequest,
) -> Result<PullResponse, PullError> {
    let caller = caller.into();
    let group = req.client_group_id.as_str();
    let (since, snapshot) = match &req.cookie {
        Cookie::Null => (
            Since::Reset,
            snapshot(store, space, caller, group, 0).await?,
        ),
        Cookie::Version(order) => {
            let snap = snapshot(store, space, caller, group, *order).await?;
            refuse_if_future(*order as f64, &snap)?;
            changes_or_reset(store, space, caller, group, *order, snap).await?
        }
        Cookie::Unusable(number) => {
            // Never handed out: answer a reset, under a cookie above it (or the client
            // would ignore the answer).
            let snap = snapshot(store, space, caller, group, 0).await?;
            if *number >= snap.version as f64 {
                return Err(PullError::CookieFromTheFuture {
                    order: *number,
                    version: snap.version,
                });
            }
            (Since::Reset, snap)
        }
        Cookie::Signed { order, sig } => {
            let snap = snapshot(store, space, caller, group, *order).await?;
            if *order <= snap.version {
                // Signed or not, a cookie at or below the version only selects what to
                // send (see the module notes of `cookie`).
                changes_or_reset(store, space, caller, group, *order, snap).await?
            } else if keys.verify(space, *order, sig) && *order < MAX_SAFE_INTEGER {
                (
                    Since::Reset,
                    restore(store, space, caller, group, *order).await?,
                )
            } else {
                return Err(PullError::CookieFromTheFuture {
                    order: *order as f64,
                    version: snap.version,
                });
            }
        }
    };
    Ok(respond(keys, space, since, snapshot))
}

async fn snapshot(
    store: &dyn Store,
    space: &SpaceId,
    caller: Caller<'_>,
    group: &str,
    since: Version,
) -> Result<PullSnapshot, PullError> {
    let snapshot = store
        .pull_snapshot(space, group, since)
        .await?
        .ok_or(PullError::SpaceNotFound)?;
    // Nothing of the space, its cookies included, before the caller may pull it.
    caller
        .authorize(space, Some(&snapshot.access), Action::Pull)
        .map_err(PullError::Refused)?;
    if snapshot
        .group_owner
        .as_deref()
        .is_some_and(|owner| owner != caller.user)
    {
        return Err(PullError::GroupOwnedByOtherUser);
    }
    Ok(snapshot)
}

/// The changes since `cookie` in `snap`, unless garbage collection may have removed
/// deletes after the cookie (it is below the tombstone floor): then a reset, read anew.
async fn changes_or_reset(
    store: &dyn Store,
    space: &SpaceId,
    caller: Caller<'_>,
    group: &str,
    cookie: Version,
    snap: PullSnapshot,
) -> Result<(Since, PullSnapshot), PullError> {
    if cookie >= snap.tombstone_floor {
        return Ok((Since::Changes, snap));
    }
    tracing::debug!(space_id = %space, cookie, floor = snap.tombstone_floor,
        "cookie below the tombstone floor: answering a reset");
    Ok((
        Since::Reset,
        snapshot(store, space, caller, group, 0).await?,
    ))
}

fn refuse_if_future(order: f64, snap: &PullSnapshot) -> Result<(), PullError> {
    if order > snap.version as f64 {
        return Err(PullError::CookieFromTheFuture {
            order,
            version: snap.version,
        });
    }
    Ok(())
}

/// A cookie this server signed is above the space version: the space lost state (a
/// restore or re-creation). Versions must never go back in time, so the version moves
/// above the cookie (no data changes) and the pull answers a reset under it; the client's
/// next pulls are incremental again.
async fn restore(
    store: &dyn Store,
    space: &SpaceId,
    caller: Caller<'_>,
    group: &str,
    cookie: Version,
) -> Result<PullSnapshot, PullError> {
    for _ in 0..MAX_RAISE_ATTEMPTS {
        let snap = snapshot(store, space, caller, group, 0).await?;
        if snap.version > cookie {
            return Ok(snap);
        }
        let raise = Commit {
            expected_version: snap.version,
            next_version: cookie + 1,
            ..Commit::default()
        };
        if store.commit(space, &raise).await? == CommitOutcome::Committed {
            tracing::warn!(space_id = %space, from = snap.version, to = cookie + 1,
                "signed cookie from the future: space version raised past it");
        }
    }
    Err(PullError::Contended)
}

fn respond(keys: &CookieKeys, space: &SpaceId, since: Since, snap: PullSnapshot) -> PullResponse {
    PullResponse {
        cookie: keys.sign(space, snap.version),
        last_mutation_id_changes: snap.client_lmids.into_iter().collect(),
        patch: match since {
            Since::Reset => Patch::reset(snap.entries),
            Since::Changes => Patch::changes(snap.entries),
        },
    }
}
