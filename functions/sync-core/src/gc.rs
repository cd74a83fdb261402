//! Garbage collection: deleted entries (tombstones) older than a retention and clients idle
//! for longer than a limit are removed, so that a space's data does not grow forever.
//!
//! Before removing anything from a space, the collector commits: the commit moves the
//! version (a read of the space in flight redoes itself) and raises the space's
//! *tombstone floor*; a store may also settle what it keeps of its last commit then.
//!
//! - **Tombstones.** A pull learns a delete from its tombstone. The floor is raised to the
//!   highest version removed; a pull whose cookie is below the floor could miss a delete,
//!   so it gets a reset instead (`clear` and every live entry). Only deletes older than
//!   the retention go, so only a client that has not pulled for that long is reset.
//! - **Clients.** A client record holds the client's last mutation ID. One that no push
//!   wrote for the idle limit is removed; if that client ever pushes again, its next
//!   mutation is ahead of the LMID the server knows (none) and the push answers
//!   `ClientStateNotFound`, upon which the Replicache client starts a new client group
//!   from its cache. The store removes a client only if it is still idle, so a client
//!   that pushes while the collector runs keeps its record.
//!
//! Set the retention and the idle limit above the longest time a client may be offline
//! with pending mutations: a client idle for longer loses them.

use crate::ids::SpaceId;
use crate::store::{
    Commit, CommitOutcome, Garbage, GarbageCutoffs, GcResumePoint, Store, StoreError,
};
use std::time::{Duration, Instant};

/// Spaces asked of the store per page.
const SPACES_PER_PAGE: usize = 100;
/// Attempts at the collector's commit before a space's garbage is left for the next run.
const FLOOR_ATTEMPTS: u32 = 5;

/// How old garbage must be to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcPolicy {
    /// Deleted entries older than this are removed; cookies issued longer ago than this
    /// may get a reset.
    pub tombstone_retention: Duration,
    /// Clients that pushed nothing for this long are removed.
    pub client_idle: Duration,
}

impl GcPolicy {
    /// Thirty days each: far above the offline periods the product supports.
    pub const DEFAULT: GcPolicy = GcPolicy {
        tombstone_retention: Duration::from_secs(30 * 24 * 3600),
        client_idle: Duration::from_secs(30 * 24 * 3600),
    };

    /// The cutoffs as of `now_ms` (epoch milliseconds).
    pub fn cutoffs(&self, now_ms: u64) -> GarbageCutoffs {
        let before =
            |age: Duration| now_ms.saturating_sub(age.as_millis().try_into().unwrap_or(u64::MAX));
        GarbageCutoffs {
            tombstones_before_ms: before(self.tombstone_retention),
            clients_idle_before_ms: before(self.client_idle),
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcReport {
    pub spaces: u64,
    pub tombstones_removed: u64,
    pub clients_removed: u64,
    /// Spaces whose tombstone floor was raised.
    pub floors_raised: u64,
    /// Spaces whose garbage stays for the next run (the space kept committing).
    pub spaces_deferred: u64,
    /// Spaces whose collection failed (a store error, logged); the next run retries.
    pub spaces_failed: u64,
    /// The run stopped at its deadline before reaching every space; the next run goes on
    /// from where it stopped.
    pub incomplete: bool,
    /// The run went on from where the previous one stopped.
    pub resumed: bool,
}

/// Collects the garbage of every space as of `now_ms`, until `deadline`. A run stopped
/// there records where (see [`Store::set_gc_resume_point`]), and the next run goes on
/// from that space instead of starting over, so that a store too large for one run is
/// still covered, across runs. Every run finishes at least one space, even past its
/// deadline, so that runs always move on. Every step is safe to stop after.
pub async fn collect(
    store: &dyn Store,
    policy: &GcPolicy,
    now_ms: u64,
    deadline: Option<Instant>,
) -> Result<GcReport, StoreError> {
    collect_in_pages(store, policy, now_ms, deadline, SPACES_PER_PAGE).await
}

/// [`collect`], listing `page_size` spaces at a time.
pub async fn collect_in_pages(
    store: &dyn Store,
    policy: &GcPolicy,
    now_ms: u64,
    deadline: Option<Instant>,
    page_size: usize,
) -> Result<GcReport, StoreError> {
    let cutoffs = policy.cutoffs(now_ms);
    let mut report = GcReport::default();
    let resume = store.gc_resume_point().await?;
    report.resumed = resume.is_some();
    let (mut after, mut skip_through) = match resume {
        Some(point) => (point.page_after, Some(point.last_space)),
        None => (None, None),
    };
    // The last space this run went through: where the next run goes on from.
    let mut last_done: Option<SpaceId> = None;
    loop {
        let page = match store.list_spaces(after.as_deref(), page_size).await {
            Ok(page) => page,
            // A saved point the store refuses (a cursor of another layout, an item edited
            // by hand) would fail every run alike: this one starts over instead.
            Err(e) if report.resumed && report.spaces == 0 => {
                tracing::warn!(error = %e, "the saved resume point is unusable: starting over");
                store.set_gc_resume_point(None).await?;
                report.resumed = false;
                (after, skip_through) = (None, None);
                continue;
            }
            Err(e) => return Err(e),
        };
        // Resuming: the spaces of the page up to the last one finished are done. A page
        // without it (the space is gone) is done again: collecting twice is harmless.
        let start = skip_through
            .take()
            .and_then(|last| page.spaces.iter().position(|space| *space == last))
            .map_or(0, |i| i + 1);
        for space in &page.spaces[start..] {
            if report.spaces > 0 && deadline.is_some_and(|d| Instant::now() >= d) {
                report.incomplete = true;
                let point = last_done.map(|last_space| GcResumePoint {
                    page_after: after.clone(),
                    last_space,
                });
                store.set_gc_resume_point(point.as_ref()).await?;
                return Ok(report);
            }
            if let Err(e) = collect_space(store, space, &cutoffs, &mut report).await {
                report.spaces_failed += 1;
                tracing::warn!(space_id = %space, error = %e, "garbage collection of a space failed");
            }
            last_done = Some(space.clone());
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    if report.resumed {
        store.set_gc_resume_point(None).await?;
    }
    Ok(report)
}

/// Collects one space's garbage.
pub async fn collect_space(
    store: &dyn Store,
    space: &SpaceId,
    cutoffs: &GarbageCutoffs,
    report: &mut GcReport,
) -> Result<(), StoreError> {
    report.spaces += 1;
    let Some(mut garbage) = store.find_garbage(space, cutoffs).await? else {
        return Ok(());
    };
    if garbage.is_empty() {
        return Ok(());
    }
    if !commit_first(store, space, cutoffs, &mut garbage, report).await? {
        report.spaces_deferred += 1;
        return Ok(());
    }
    let purged = store
        .purge(
            space,
            &garbage.tombstones,
            &garbage.idle_clients,
            cutoffs.clients_idle_before_ms,
        )
        .await?;
    report.tombstones_removed += purged.tombstones;
    report.clients_removed += purged.clients;
    if purged.tombstones + purged.clients > 0 {
        tracing::info!(space_id = %space, tombstones = purged.tombstones,
            clients = purged.clients, "garbage collected");
    }
    Ok(())
}

/// The collector's commit, with a floor covering every tombstone of `garbage` (re-read
/// after a lost race); `false` when the space kept committing.
async fn commit_first(
    store: &dyn Store,
    space: &SpaceId,
    cutoffs: &GarbageCutoffs,
    garbage: &mut Garbage,
    report: &mut GcReport,
) -> Result<bool, StoreError> {
    for _ in 0..FLOOR_ATTEMPTS {
        // Re-read after a lost race, nothing may be left: nothing to commit or defer.
        if garbage.is_empty() {
            return Ok(true);
        }
        let highest = garbage
            .tombstones
            .iter()
            .map(|(_, v)| *v)
            .max()
            .unwrap_or(0);
        let floor = highest.max(garbage.tombstone_floor);
        let commit = Commit {
            expected_version: garbage.version,
            next_version: garbage.version + 1,
            tombstone_floor: Some(floor),
            ..Commit::default()
        };
        if store.commit(space, &commit).await? == CommitOutcome::Committed {
            if floor > garbage.tombstone_floor {
                report.floors_raised += 1;
            }
            return Ok(true);
        }
        match store.find_garbage(space, cutoffs).await? {
            Some(again) => *garbage = again,
            None => return Ok(false),
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoffs_are_now_less_the_ages_and_never_underflow() {
        let policy = GcPolicy {
            tombstone_retention: Duration::from_secs(10),
            client_idle: Duration::from_secs(20),
        };
        assert_eq!(
            policy.cutoffs(100_000),
            GarbageCutoffs {
                tombstones_before_ms: 90_000,
                clients_idle_before_ms: 80_000
            }
        );
        assert_eq!(policy.cutoffs(5).tombstones_before_ms, 0);
    }
}
