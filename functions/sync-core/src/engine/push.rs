//! Push: apply a client group's pending mutations, in order, exactly once.
//!
//! Per attempt: read the space version `v` and the LMIDs of the clients in the request in
//! one consistent snapshot; run each due mutation against a [`Tx`]; fold its writes into
//! the commit being assembled; commit with `v -> v+1` only if the version is still `v`.
//! A conflict (someone else committed first) discards everything and starts over from a
//! fresh snapshot, after a jittered backoff. Mutations already committed by an earlier
//! attempt or request are then duplicates and are skipped, so nothing is applied twice.

use crate::ids::SpaceId;
use crate::mutators::{MutationError, Registry};
use crate::protocol::{Mutation, PushRequest};
use crate::store::{ClientRecord, Commit, CommitOutcome, PushSnapshot, Store, StoreError};
use crate::tx::{Overlay, PendingWrite, Tx};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct PushConfig {
    /// Attempts before a contended push gives up with a temporary error.
    pub max_attempts: u32,
    /// First backoff after a conflict; doubles per attempt, with full jitter.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Commits one request may make. Mutations beyond are left for the client's next push
    /// (it resends everything not yet acknowledged), which keeps a huge push inside the
    /// platform's request time limit.
    pub max_commits_per_push: usize,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            max_attempts: 12,
            backoff_base: Duration::from_millis(4),
            backoff_max: Duration::from_millis(250),
            max_commits_per_push: 20,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushOutcome {
    /// Commits made; a poke is due when this is non-zero.
    pub commits: usize,
    /// Mutations processed (applied or failed permanently) by this request.
    pub processed: usize,
    /// Mutations that failed permanently (processed with no effect).
    pub failed: usize,
    /// Conflicts retried.
    pub conflicts: u32,
    /// A mutation arrived ahead of its client's LMID: the server lost that client's state.
    pub client_state_not_found: bool,
    /// Some due mutations were left for the next push (commit budget reached).
    pub truncated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("space not found")]
    SpaceNotFound,
    #[error("client {client_id} belongs to another client group")]
    ClientInOtherGroup { client_id: String },
    #[error("client group belongs to another user")]
    GroupOwnedByOtherUser,
    #[error("the space is too contended; retry")]
    Contended { conflicts: u32 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A push that failed, and how many commits it made before failing: those stand, and
/// the space must still be poked for them.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct PushFailure {
    #[source]
    pub error: PushError,
    pub committed: usize,
}

/// Applies `req` to `space` for `user` (the authenticated user, `""` when anonymous).
pub async fn push(
    store: &dyn Store,
    mutators: &Registry,
    config: &PushConfig,
    space: &SpaceId,
    user: &str,
    req: &PushRequest,
) -> Result<PushOutcome, PushFailure> {
    let mut outcome = PushOutcome::default();
    push_attempts(store, mutators, config, space, user, req, &mut outcome)
        .await
        .map(|()| outcome.clone())
        .map_err(|error| PushFailure {
            error,
            committed: outcome.commits,
        })
}

async fn push_attempts(
    store: &dyn Store,
    mutators: &Registry,
    config: &PushConfig,
    space: &SpaceId,
    user: &str,
    req: &PushRequest,
    outcome: &mut PushOutcome,
) -> Result<(), PushError> {
    let client_ids: Vec<String> = req
        .mutations
        .iter()
        .map(|m| m.client_id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    for attempt in 0..config.max_attempts {
        if attempt > 0 {
            tokio::time::sleep(backoff(config, attempt)).await;
        }
        let snapshot = store
            .push_snapshot(space, &req.client_group_id, &client_ids)
            .await?
            .ok_or(PushError::SpaceNotFound)?;
        authorize(&snapshot, req, user)?;
        let mut run = Attempt::new(store, mutators, config, space, user, req, snapshot);
        match run.apply(&req.mutations, outcome).await? {
            CommitOutcome::Committed => return Ok(()),
            CommitOutcome::Conflict => outcome.conflicts += 1,
        }
    }
    Err(PushError::Contended {
        conflicts: outcome.conflicts,
    })
}

fn authorize(snapshot: &PushSnapshot, req: &PushRequest, user: &str) -> Result<(), PushError> {
    if let Some(owner) = &snapshot.group_owner
        && owner != user
    {
        return Err(PushError::GroupOwnedByOtherUser);
    }
    for (client_id, rec) in &snapshot.clients {
        if rec.client_group_id != req.client_group_id {
            return Err(PushError::ClientInOtherGroup {
                client_id: client_id.clone(),
            });
        }
    }
    Ok(())
}

fn backoff(config: &PushConfig, attempt: u32) -> Duration {
    let ceiling = config
        .backoff_base
        .saturating_mul(1 << attempt.min(16))
        .min(config.backoff_max);
    ceiling.mul_f64(rand::random::<f64>())
}

/// One try at the whole request from one snapshot.
struct Attempt<'a> {
    store: &'a dyn Store,
    mutators: &'a Registry,
    config: &'a PushConfig,
    space: &'a SpaceId,
    group_id: &'a str,
    user: &'a str,
    version: u64,
    lmids: BTreeMap<String, u64>,
    group_known: bool,
    overlay: Overlay,
    /// Clients whose LMID the commit being assembled advances.
    batch_clients: BTreeSet<String>,
    commits: usize,
}

impl<'a> Attempt<'a> {
    fn new(
        store: &'a dyn Store,
        mutators: &'a Registry,
        config: &'a PushConfig,
        space: &'a SpaceId,
        user: &'a str,
        req: &'a PushRequest,
        snapshot: PushSnapshot,
    ) -> Self {
        Self {
            store,
            mutators,
            config,
            space,
            group_id: &req.client_group_id,
            user,
            version: snapshot.version,
            lmids: snapshot
                .clients
                .into_iter()
                .map(|(id, rec)| (id, rec.last_mutation_id))
                .collect(),
            group_known: snapshot.group_owner.is_some(),
            overlay: Overlay::default(),
            batch_clients: BTreeSet::new(),
            commits: 0,
        }
    }

    /// Processes the due mutations; `Conflict` when a commit lost the race. Commits made
    /// before a conflict or an error stand, and are counted in `outcome` either way.
    async fn apply(
        &mut self,
        mutations: &[Mutation],
        outcome: &mut PushOutcome,
    ) -> Result<CommitOutcome, PushError> {
        let mut tally = Tally::default();
        let result = self.process(mutations, &mut tally).await;
        outcome.commits += tally.commits;
        if let Ok(CommitOutcome::Committed) = result {
            outcome.processed += tally.processed;
            outcome.failed += tally.failed;
            outcome.client_state_not_found = tally.client_state_not_found;
            outcome.truncated = tally.truncated;
        }
        result
    }

    async fn process(
        &mut self,
        mutations: &[Mutation],
        tally: &mut Tally,
    ) -> Result<CommitOutcome, PushError> {
        for m in mutations {
            let expected = self.lmids.get(&m.client_id).copied().unwrap_or(0) + 1;
            if m.id < expected {
                continue;
            }
            if m.id > expected {
                tally.client_state_not_found = true;
                break;
            }
            let (writes, failed) = match self.run_mutation(m).await? {
                Some(writes) if self.fits(&writes, &m.client_id) => (writes, false),
                Some(_) if self.batch_clients.is_empty() => {
                    tracing::warn!(mutation_id = m.id, "mutation too large for one commit");
                    (BTreeMap::new(), true)
                }
                Some(_) => {
                    // Does not fit beside what is batched: commit that first, then rerun
                    // it against the new base.
                    if self.commits + 1 >= self.config.max_commits_per_push {
                        tally.truncated = true;
                        break;
                    }
                    if self.commit_batch(tally).await? == CommitOutcome::Conflict {
                        return Ok(CommitOutcome::Conflict);
                    }
                    match self.run_mutation(m).await? {
                        Some(writes) if self.fits(&writes, &m.client_id) => (writes, false),
                        Some(_) => {
                            tracing::warn!(mutation_id = m.id, "mutation too large for one commit");
                            (BTreeMap::new(), true)
                        }
                        None => (BTreeMap::new(), true),
                    }
                }
                None => (BTreeMap::new(), true),
            };
            for (key, write) in writes {
                self.overlay.known.insert(key.clone(), write.value.clone());
                self.overlay.batch.insert(key, write);
            }
            self.lmids.insert(m.client_id.clone(), m.id);
            self.batch_clients.insert(m.client_id.clone());
            tally.processed += 1;
            tally.failed += usize::from(failed);
        }
        if !self.batch_clients.is_empty()
            && self.commit_batch(tally).await? == CommitOutcome::Conflict
        {
            return Ok(CommitOutcome::Conflict);
        }
        Ok(CommitOutcome::Committed)
    }

    /// Runs one mutator. `Some(writes)` on success, `None` on a permanent failure (logged);
    /// a storage failure aborts the request.
    async fn run_mutation(
        &mut self,
        m: &Mutation,
    ) -> Result<Option<BTreeMap<String, PendingWrite>>, PushError> {
        let Some(mutator) = self.mutators.get(&m.name) else {
            log_failure(m, &MutationError::UnknownMutator);
            return Ok(None);
        };
        let mut tx = Tx::new(
            self.store,
            self.space,
            self.store.limits(),
            &mut self.overlay,
        );
        match mutator.run(&mut tx, &m.args).await {
            Ok(()) => Ok(Some(tx.into_writes())),
            Err(MutationError::Store(e)) => Err(PushError::Store(e)),
            Err(e) => {
                log_failure(m, &e);
                Ok(None)
            }
        }
    }

    /// Whether the batch plus `writes` and the client's LMID stays within the limits.
    fn fits(&self, writes: &BTreeMap<String, PendingWrite>, client_id: &str) -> bool {
        let limits = self.store.limits();
        let new_keys = writes
            .keys()
            .filter(|k| !self.overlay.batch.contains_key(*k))
            .count();
        let new_client = usize::from(!self.batch_clients.contains(client_id));
        let count = self.overlay.batch.len() + new_keys + self.batch_clients.len() + new_client;
        let replaced: usize = writes
            .keys()
            .filter_map(|k| self.overlay.batch.get(k).map(|w| w.bytes))
            .sum();
        let added: usize = writes.values().map(|w| w.bytes).sum();
        let bytes = self.overlay.batch_bytes() - replaced + added;
        count <= limits.max_writes_per_commit && bytes <= limits.max_commit_bytes
    }

    async fn commit_batch(&mut self, tally: &mut Tally) -> Result<CommitOutcome, PushError> {
        let next = self.version + 1;
        let commit = Commit {
            expected_version: self.version,
            next_version: next,
            entries: self
                .overlay
                .batch
                .iter()
                .map(|(k, w)| (k.clone(), w.value.clone()))
                .collect(),
            clients: self
                .batch_clients
                .iter()
                .map(|id| {
                    let rec = ClientRecord {
                        client_group_id: self.group_id.to_owned(),
                        last_mutation_id: self.lmids.get(id).copied().unwrap_or(0),
                    };
                    (id.clone(), rec)
                })
                .collect(),
            new_group: (!self.group_known)
                .then(|| (self.group_id.to_owned(), self.user.to_owned())),
        };
        let result = self.store.commit(self.space, &commit).await?;
        if result == CommitOutcome::Committed {
            self.version = next;
            self.group_known = true;
            self.overlay.committed();
            self.batch_clients.clear();
            self.commits += 1;
            tally.commits += 1;
        }
        Ok(result)
    }
}

/// Counters of one attempt, added to the outcome only when the attempt completes.
#[derive(Default)]
struct Tally {
    commits: usize,
    processed: usize,
    failed: usize,
    client_state_not_found: bool,
    truncated: bool,
}

fn log_failure(m: &Mutation, e: &MutationError) {
    // The mutator name and ids are protocol metadata; args are user data and stay out.
    tracing::info!(mutator = %m.name, client_id = %m.client_id, mutation_id = m.id, error = %e,
        "mutation failed permanently; marked processed with no effect");
}
