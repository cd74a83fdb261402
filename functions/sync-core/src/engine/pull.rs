//! Pull: everything that changed between the client's cookie and the space version read
//! first, plus the LMIDs of the requesting group's clients changed in that range.
//!
//! The cookie is the space version. Reading the version before the changes and bounding
//! the changes by it keeps a concurrent commit (which stamps a larger version) out of the
//! response entirely, so LMIDs and data come from one consistent snapshot. Where a store's
//! range read can see the head commit in part (it is still being applied), the head names
//! that commit's items and [`Store::changes_to_head`] completes the range with them.

use crate::ids::SpaceId;
use crate::protocol::{Cookie, MAX_SAFE_INTEGER, PatchOp, PullRequest, PullResponse};
use crate::store::{Commit, CommitOutcome, SpaceHead, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("space not found")]
    SpaceNotFound,
    #[error("the space is too contended; retry")]
    Contended,
    #[error("cookie is beyond any version this server hands out")]
    CookieOutOfRange,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Attempts to move the version past a cookie from the future before giving up.
const MAX_FLOOR_ATTEMPTS: u32 = 8;

pub async fn pull(
    store: &dyn Store,
    space: &SpaceId,
    req: &PullRequest,
) -> Result<PullResponse, PullError> {
    let mut head = store
        .space_head(space)
        .await?
        .ok_or(PullError::SpaceNotFound)?;
    // The cookie answered: the head's version, unless it had to be raised.
    let mut version = head.version;
    let since = match req.cookie {
        Cookie::Null => None,
        Cookie::Version(c) if c <= version => Some(c),
        Cookie::Version(c) => {
            (version, head) = raise_version_past(store, space, head, c).await?;
            None
        }
        // Below every version we hand out: a plain reset answers it.
        Cookie::Unusable(f) if f < 0.0 => None,
        Cookie::Unusable(f) if f < MAX_SAFE_INTEGER as f64 => {
            (version, head) = raise_version_past(store, space, head, f.floor() as u64).await?;
            None
        }
        Cookie::Unusable(_) => return Err(PullError::CookieOutOfRange),
    };
    if since == Some(version) {
        // Nothing changed: skip the changes query altogether.
        return Ok(PullResponse {
            cookie: version,
            last_mutation_id_changes: Default::default(),
            patch: Vec::new(),
        });
    }
    let changes = store
        .changes_to_head(space, &req.client_group_id, since.unwrap_or(0), &head)
        .await?;
    let mut patch = Vec::with_capacity(changes.entries.len() + 1);
    if since.is_none() {
        patch.push(PatchOp::Clear);
    }
    for change in changes.entries {
        match (change.value, since.is_some()) {
            (Some(value), _) => patch.push(PatchOp::Put {
                key: change.key,
                value,
            }),
            (None, true) => patch.push(PatchOp::Del { key: change.key }),
            // After a clear, a deleted entry needs no `del`.
            (None, false) => {}
        }
    }
    Ok(PullResponse {
        cookie: version,
        last_mutation_id_changes: changes.client_lmids.into_iter().collect(),
        patch,
    })
}

/// A cookie above the space version was handed out before the space lost state (a
/// restore or re-creation). Versions must never go back in time, so move the space
/// version above the cookie (no data changes) and answer with a reset under it: the
/// client's next pulls are then incremental again.
///
/// Returns the version to answer and the head to read the changes up to. The raise writes
/// nothing, so the state at the raised version is the state at the head it replaced; that
/// head (not an empty one at the raised version) is kept because its own commit may still
/// be being applied.
async fn raise_version_past(
    store: &dyn Store,
    space: &SpaceId,
    mut head: SpaceHead,
    cookie: u64,
) -> Result<(u64, SpaceHead), PullError> {
    for _ in 0..MAX_FLOOR_ATTEMPTS {
        if head.version > cookie {
            return Ok((head.version, head));
        }
        let commit = Commit {
            expected_version: head.version,
            next_version: cookie + 1,
            ..Commit::default()
        };
        if store.commit(space, &commit).await? == CommitOutcome::Committed {
            tracing::warn!(space_id = %space, "cookie from the future: space version raised");
            return Ok((cookie + 1, head));
        }
        head = store
            .space_head(space)
            .await?
            .ok_or(PullError::SpaceNotFound)?;
    }
    Err(PullError::Contended)
}
