//! Push: apply a client group's pending mutations, in order, exactly once.
//!
//! Per attempt: read the space version `v` and the LMIDs of the clients in the request in
//! one consistent snapshot; run each due mutation against a [`Tx`]; fold its writes into
//! the commit being assembled; commit with `v -> v+1` only if the version is still `v`.
//! A conflict (someone else committed first) discards everything and starts over from a
//! fresh snapshot, after a jittered wait ([`Backoff`]). Mutations already committed by an earlier
//! attempt or request are then duplicates and are skipped, so nothing is applied twice.

use crate::auth::{Action, Caller, Refusal};
use crate::ids::SpaceId;
use crate::mutators::{MutationError, Registry};
use crate::protocol::{Mutation, PushRequest};
use crate::store::{ClientRecord, Commit, CommitOutcome, PushSnapshot, Store, StoreError};
use crate::tx::{Overlay, PendingWrite, Tx};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// Most entries a push reads with its snapshot.
pub const MAX_PREFETCH: usize = 16;

#[derive(Debug, Clone)]
pub struct PushConfig {
    /// Attempts before a contended push gives up with a temporary error: a backstop, as
    /// the retry budget (or the request's deadline) normally ends retrying first.
    pub max_attempts: u32,
    /// How long a push keeps retrying conflicts when its caller set no deadline; with a
    /// deadline, retries go on until it (see [`push_until`]).
    pub retry_budget: Duration,
    /// The wait between a conflict and the retry.
    pub backoff: Backoff,
    /// Whether a push reads with its snapshot the entries its space's last push read,
    /// and a retry those its lost attempt read (one round trip fewer, and a conflict
    /// window one round trip shorter). Off only to measure what it brings.
    pub prefetch: bool,
    /// Commits one request may make. Mutations beyond are left for the client's next push
    /// (it resends everything not yet acknowledged), which keeps a huge push inside the
    /// platform's request time limit.
    pub max_commits_per_push: usize,
    /// Distinct clients one push may name; mutations past the first client beyond are
    /// left for the next push.
    pub max_clients_per_push: usize,
}

/// The wait before a push retries after losing a race for its space's commit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Backoff {
    /// A random wait (full jitter) of up to `factor` times the duration of the attempt
    /// that lost, at most `max`. The winner's commit has landed by the time the loser
    /// learns of it, so a retry need not wait for it; the jitter spreads the retries of
    /// the space's writers over about one attempt's time, whatever the store's latency,
    /// without the long, growing waits that leave a writer behind the others.
    AttemptTime { factor: f64, max: Duration },
    /// A random wait (full jitter) of up to `base` doubled per conflict, at most `max`.
    Exponential { base: Duration, max: Duration },
}

impl Backoff {
    /// The wait after conflict number `conflict` (1-based) of an attempt that took
    /// `attempt_time`.
    fn wait(&self, conflict: u32, attempt_time: Duration) -> Duration {
        let ceiling = match *self {
            Backoff::AttemptTime { factor, max } => attempt_time.mul_f64(factor.max(0.0)).min(max),
            Backoff::Exponential { base, max } => {
                base.saturating_mul(1 << conflict.min(16)).min(max)
            }
        };
        ceiling.mul_f64(rand::random::<f64>())
    }
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            max_attempts: 1_000,
            retry_budget: Duration::from_secs(20),
            backoff: Backoff::AttemptTime {
                factor: 1.0,
                max: Duration::from_millis(250),
            },
            prefetch: true,
            max_commits_per_push: 20,
            max_clients_per_push: 100,
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
    /// Entries the mutators read from storage (at the last attempt's base): worth reading
    /// with the snapshot of the space's next push.
    pub read_keys: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("space not found")]
    SpaceNotFound,
    #[error("client {client_id} belongs to another client group")]
    ClientInOtherGroup { client_id: String },
    #[error("client group belongs to another user")]
    GroupOwnedByOtherUser,
    #[error(transparent)]
    Refused(Refusal),
    #[error("the space is too contended; retry")]
    Contended { conflicts: u32 },
    #[error("the request ran out of time before anything was committed; retry")]
    DeadlineExceeded,
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

/// Applies `req` to `space` for `caller` (a user, `""` when anonymous, under the default
/// rule; or a [`Caller`] with its own).
pub async fn push<'c>(
    store: &dyn Store,
    mutators: &Registry,
    config: &PushConfig,
    space: &SpaceId,
    caller: impl Into<Caller<'c>>,
    req: &PushRequest,
) -> Result<PushOutcome, PushFailure> {
    push_until(store, mutators, config, space, caller, req, None, &[]).await
}

/// [`push`], starting no retry and no further commit after `deadline`: commits made by
/// then stand and the push answers with them (the client pushes the rest); with none
/// made, the push fails with [`PushError::DeadlineExceeded`]. Until then conflicts are
/// retried (at most [`PushConfig::max_attempts`]): on a contended space a push is slowed,
/// not refused. `prefetch` names entries the
/// mutators are expected to read (those of the space's recent pushes,
/// [`PushOutcome::read_keys`]): they are read with the snapshot, one round trip instead
/// of two, and a retry after a conflict reads what the failed attempt read the same way.
#[allow(clippy::too_many_arguments)]
pub async fn push_until<'c>(
    store: &dyn Store,
    mutators: &Registry,
    config: &PushConfig,
    space: &SpaceId,
    caller: impl Into<Caller<'c>>,
    req: &PushRequest,
    deadline: Option<Instant>,
    prefetch: &[String],
) -> Result<PushOutcome, PushFailure> {
    let mut outcome = PushOutcome::default();
    let caller = caller.into();
    let mutations = within_client_cap(&req.mutations, config.max_clients_per_push);
    outcome.truncated = mutations.len() < req.mutations.len();
    let run = Request {
        prefetch,
        mutations,
        store,
        mutators,
        config,
        space,
        user: caller.user,
        caller,
        req,
        deadline,
    };
    run.attempts(&mut outcome)
        .await
        .map(|()| outcome.clone())
        .map_err(|error| PushFailure {
            error,
            committed: outcome.commits,
        })
}

/// One push request and what it runs with.
struct Request<'a> {
    store: &'a dyn Store,
    mutators: &'a Registry,
    config: &'a PushConfig,
    space: &'a SpaceId,
    user: &'a str,
    caller: Caller<'a>,
    req: &'a PushRequest,
    /// The request's mutations this push processes (see [`within_client_cap`]).
    mutations: &'a [Mutation],
    /// Entries to read with the snapshot.
    prefetch: &'a [String],
    deadline: Option<Instant>,
}

/// The longest prefix of `mutations` naming at most `cap` clients. A client group has a
/// client per tab; a push naming more is cut there and answered like any truncated push
/// (the client pushes the rest), so it neither costs an unbounded snapshot read nor is
/// refused.
fn within_client_cap(mutations: &[Mutation], cap: usize) -> &[Mutation] {
    let mut seen = BTreeSet::new();
    for (i, m) in mutations.iter().enumerate() {
        if seen.insert(m.client_id.as_str()) && seen.len() > cap {
            return &mutations[..i];
        }
    }
    mutations
}

impl Request<'_> {
    fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    async fn attempts(&self, outcome: &mut PushOutcome) -> Result<(), PushError> {
        let client_ids: Vec<String> = self
            .mutations
            .iter()
            .map(|m| m.client_id.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let limits = self.store.limits();
        let mut prefetching = self.config.prefetch;
        let mut prefetch: BTreeSet<String> = self
            .prefetch
            .iter()
            .filter(|_| prefetching)
            .filter(|k| k.len() <= limits.max_key_bytes)
            .take(MAX_PREFETCH)
            .cloned()
            .collect();
        let mut mode = Mode::Batched;
        let mut attempt = 0;
        let retry_until = Instant::now() + self.config.retry_budget;
        let mut last_attempt_time = Duration::ZERO;
        while attempt < self.config.max_attempts {
            if attempt > 0 {
                tokio::time::sleep(self.config.backoff.wait(attempt, last_attempt_time)).await;
            }
            if self.past_deadline() {
                return if outcome.commits > 0 {
                    outcome.truncated = true;
                    Ok(())
                } else {
                    Err(PushError::DeadlineExceeded)
                };
            }
            if self.deadline.is_none() && attempt > 0 && Instant::now() >= retry_until {
                break;
            }
            let started = Instant::now();
            let keys: Vec<String> = prefetch.iter().cloned().collect();
            let read = self
                .store
                .push_snapshot_with_entries(
                    self.space,
                    &self.req.client_group_id,
                    &client_ids,
                    &keys,
                )
                .await;
            let (snapshot, entries) = match read {
                // Another request's commit was landing on the space item: this push
                // lost the race before it began, and retries as after a lost commit.
                // The store refused the read with the entries (DynamoDB: their values
                // together over a transaction's 4 MB): the mutators read them one by one.
                // The entries come from earlier pushes' reads, so without this a space
                // whose mutators once read big values would refuse every push.
                Err(StoreError::Rejected(why)) if !keys.is_empty() => {
                    tracing::warn!(space_id = %self.space, %why,
                        "the snapshot with entries was refused; reading without them");
                    prefetching = false;
                    prefetch.clear();
                    continue;
                }
                Err(StoreError::Busy(why)) => {
                    tracing::debug!(space_id = %self.space, %why, "snapshot read met a commit");
                    outcome.conflicts += 1;
                    attempt += 1;
                    last_attempt_time = started.elapsed();
                    continue;
                }
                read => read?.ok_or(PushError::SpaceNotFound)?,
            };
            self.caller
                .authorize(self.space, Some(&snapshot.access), Action::Push)
                .map_err(PushError::Refused)?;
            check_clients(&snapshot, self.req, self.user)?;
            let mut run = Attempt::new(self, snapshot, entries, mode, outcome.commits);
            let end = match run.apply(outcome).await {
                // A mutator's read met a commit in flight: a lost race, as below.
                Err(PushError::Store(StoreError::Busy(_))) => Ok(AttemptEnd::Conflict),
                end => end,
            };
            outcome.read_keys = run.overlay.read.iter().cloned().collect();
            match end? {
                AttemptEnd::Done => return Ok(()),
                AttemptEnd::Conflict => {
                    outcome.conflicts += 1;
                    attempt += 1;
                    last_attempt_time = started.elapsed();
                    // The retry reads what this attempt read with its snapshot: its window
                    // for a conflict is one round trip shorter.
                    prefetch.extend(
                        run.overlay
                            .read
                            .iter()
                            .filter(|_| prefetching)
                            .filter(|k| k.len() <= limits.max_key_bytes)
                            .take(MAX_PREFETCH)
                            .cloned(),
                    );
                }
                AttemptEnd::Rejected => {
                    // The store refused a commit of several mutations, deterministically:
                    // start over committing one mutation at a time, to find the one it
                    // refuses (the commits made so far stand).
                    tracing::warn!(space_id = %self.space,
                        "a commit was refused; retrying one mutation per commit");
                    mode = Mode::OnePerCommit;
                }
            }
        }
        Err(PushError::Contended {
            conflicts: outcome.conflicts,
        })
    }
}

/// The group must be the user's (its first user's), and every client the group's.
fn check_clients(snapshot: &PushSnapshot, req: &PushRequest, user: &str) -> Result<(), PushError> {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// As many mutations per commit as the store's limits allow.
    Batched,
    /// One mutation per commit: after the store refused a batch.
    OnePerCommit,
}

/// How an attempt ended.
enum AttemptEnd {
    /// Every due mutation processed (or the rest left for the next push).
    Done,
    /// A commit lost the race: start over from a fresh snapshot.
    Conflict,
    /// The store refused a commit of several mutations.
    Rejected,
}

/// What running one mutation gave.
enum Ran {
    Applied(BTreeMap<String, PendingWrite>),
    /// A permanent failure: processed with no effect.
    Failed,
}

impl Ran {
    fn writes(&self) -> Option<&BTreeMap<String, PendingWrite>> {
        match self {
            Ran::Applied(writes) => Some(writes),
            Ran::Failed => None,
        }
    }
}

/// How committing the assembled batch went.
enum Committed {
    Yes,
    Conflict,
    Rejected(StoreError),
}

/// One try at the whole request from one snapshot.
struct Attempt<'r, 'a> {
    request: &'r Request<'a>,
    mode: Mode,
    version: u64,
    lmids: BTreeMap<String, u64>,
    /// Clients with a record in the store: the snapshot's, then those committed since.
    recorded: BTreeSet<String>,
    group_known: bool,
    overlay: Overlay,
    /// Clients whose LMID the commit being assembled advances.
    batch_clients: BTreeSet<String>,
    /// Mutations in the commit being assembled, and how many of them failed.
    batch_processed: usize,
    batch_failed: usize,
    /// Commits of this request so far, earlier attempts included.
    commits: usize,
}

impl<'r, 'a> Attempt<'r, 'a> {
    fn new(
        request: &'r Request<'a>,
        snapshot: PushSnapshot,
        entries: HashMap<String, Option<Value>>,
        mode: Mode,
        prior_commits: usize,
    ) -> Self {
        Self {
            request,
            mode,
            version: snapshot.version,
            recorded: snapshot.clients.keys().cloned().collect(),
            lmids: snapshot
                .clients
                .into_iter()
                .map(|(id, rec)| (id, rec.last_mutation_id))
                .collect(),
            group_known: snapshot.group_owner.is_some(),
            overlay: Overlay {
                known: entries,
                ..Overlay::default()
            },
            batch_clients: BTreeSet::new(),
            batch_processed: 0,
            batch_failed: 0,
            commits: prior_commits,
        }
    }

    /// Processes the due mutations. Commits made before a conflict or an error stand, and
    /// are counted in `outcome` either way.
    async fn apply(&mut self, outcome: &mut PushOutcome) -> Result<AttemptEnd, PushError> {
        let mut tally = Tally::default();
        let result = self.process(&mut tally).await;
        outcome.commits += tally.commits;
        outcome.processed += tally.processed;
        outcome.failed += tally.failed;
        if let Ok(AttemptEnd::Done) = result {
            outcome.client_state_not_found = tally.client_state_not_found;
            outcome.truncated |= tally.truncated;
        }
        result
    }

    async fn process(&mut self, tally: &mut Tally) -> Result<AttemptEnd, PushError> {
        let request = self.request;
        for m in request.mutations {
            let expected = self.lmids.get(&m.client_id).copied().unwrap_or(0) + 1;
            if m.id < expected {
                continue;
            }
            if m.id > expected {
                tally.client_state_not_found = true;
                break;
            }
            let mut ran = self.run_mutation(m).await?;
            if !self.fits(ran.writes(), &m.client_id) && !self.batch_clients.is_empty() {
                // Does not fit beside what is batched: commit that first, then run it
                // again against the new base.
                if self.no_more_commits() {
                    tally.truncated = true;
                    break;
                }
                match self.commit_batch(tally).await? {
                    Committed::Yes => {}
                    Committed::Conflict => return Ok(AttemptEnd::Conflict),
                    Committed::Rejected(_) => return Ok(AttemptEnd::Rejected),
                }
                ran = self.run_mutation(m).await?;
            }
            if !self.fits(ran.writes(), &m.client_id) {
                // Too large even alone: a permanent failure, which always fits.
                tracing::warn!(mutator = %m.name, client_id = %m.client_id, mutation_id = m.id,
                    error = %MutationError::CommitTooLarge,
                    "mutation failed permanently; marked processed with no effect");
                ran = Ran::Failed;
            }
            self.fold(m, ran);
            if self.mode == Mode::OnePerCommit {
                match self.commit_one(tally).await? {
                    Committed::Yes => {}
                    Committed::Conflict => return Ok(AttemptEnd::Conflict),
                    Committed::Rejected(e) => return Err(PushError::Store(e)),
                }
                if self.no_more_commits() {
                    tally.truncated = true;
                    break;
                }
            }
        }
        if !self.batch_clients.is_empty() {
            match self.commit_batch(tally).await? {
                Committed::Yes => {}
                Committed::Conflict => return Ok(AttemptEnd::Conflict),
                Committed::Rejected(_) => return Ok(AttemptEnd::Rejected),
            }
        }
        Ok(AttemptEnd::Done)
    }

    /// Whether the commit budget or the deadline forbids another commit besides the one
    /// that would close the current batch.
    fn no_more_commits(&self) -> bool {
        self.commits + 1 >= self.request.config.max_commits_per_push || self.request.past_deadline()
    }

    /// Adds a processed mutation to the batch.
    fn fold(&mut self, m: &Mutation, ran: Ran) {
        match ran {
            Ran::Applied(writes) => self.overlay.batch.extend(writes),
            Ran::Failed => self.batch_failed += 1,
        }
        self.lmids.insert(m.client_id.clone(), m.id);
        self.batch_clients.insert(m.client_id.clone());
        self.batch_processed += 1;
    }

    /// Runs one mutator. A permanent failure (logged) is [`Ran::Failed`]; a temporary
    /// storage failure aborts the request.
    async fn run_mutation(&mut self, m: &Mutation) -> Result<Ran, PushError> {
        if let Some(defect) = &m.defect {
            log_failure(m, defect);
            return Ok(Ran::Failed);
        }
        let Some(mutator) = self.request.mutators.get(&m.name) else {
            log_failure(m, &MutationError::UnknownMutator);
            return Ok(Ran::Failed);
        };
        let store = self.request.store;
        let mut tx = Tx::new(store, self.request.space, store.limits(), &mut self.overlay)
            .for_mutation(&m.client_id, m.id);
        match mutator.run(&mut tx, &m.args).await {
            Ok(()) => Ok(Ran::Applied(tx.into_writes())),
            Err(MutationError::Store(e)) if e.is_temporary() => Err(PushError::Store(e)),
            Err(e) => {
                log_failure(m, &e);
                Ok(Ran::Failed)
            }
        }
    }

    /// Whether the batch plus `writes` (none for a failed mutation) and the client's LMID
    /// stays within the store's limits.
    fn fits(&self, writes: Option<&BTreeMap<String, PendingWrite>>, client_id: &str) -> bool {
        let limits = self.request.store.limits();
        let empty = BTreeMap::new();
        let writes = writes.unwrap_or(&empty);
        let new_keys = writes
            .keys()
            .filter(|k| !self.overlay.batch.contains_key(*k))
            .count();
        let new_client = usize::from(!self.batch_clients.contains(client_id));
        // A client without a record counts twice (see `StoreLimits::max_writes_per_commit`).
        let unrecorded = self
            .batch_clients
            .iter()
            .map(String::as_str)
            .chain((new_client == 1).then_some(client_id))
            .filter(|id| !self.recorded.contains(*id))
            .count();
        let count = self.overlay.batch.len()
            + new_keys
            + self.batch_clients.len()
            + new_client
            + unrecorded;
        let replaced: usize = writes
            .keys()
            .filter_map(|k| self.overlay.batch.get(k).map(|w| w.bytes))
            .sum();
        let added: usize = writes.values().map(|w| w.bytes).sum();
        let clients_bytes: usize = self
            .batch_clients
            .iter()
            .chain((new_client == 1).then_some(&client_id.to_owned()))
            .map(|id| id.len() + CLIENT_RECORD_BYTES)
            .sum();
        let bytes = self.overlay.batch_bytes() - replaced + added + clients_bytes;
        count <= limits.max_writes_per_commit && bytes <= limits.max_commit_bytes
    }

    /// Commits the batch of one mutation; when the store refuses it, that mutation fails
    /// permanently: its LMID alone is committed.
    async fn commit_one(&mut self, tally: &mut Tally) -> Result<Committed, PushError> {
        match self.commit_batch(tally).await? {
            Committed::Rejected(e) if !self.overlay.batch.is_empty() => {
                tracing::warn!(space_id = %self.request.space, error = %e,
                    "the store refused a mutation's writes; marked processed with no effect");
                self.overlay.batch.clear();
                self.batch_failed = self.batch_processed;
                self.commit_batch(tally).await
            }
            other => Ok(other),
        }
    }

    async fn commit_batch(&mut self, tally: &mut Tally) -> Result<Committed, PushError> {
        let request = self.request;
        let group_id = &request.req.client_group_id;
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
                        client_group_id: group_id.clone(),
                        last_mutation_id: self.lmids.get(id).copied().unwrap_or(0),
                    };
                    (id.clone(), rec)
                })
                .collect(),
            new_clients: self
                .batch_clients
                .difference(&self.recorded)
                .cloned()
                .collect(),
            new_group: (!self.group_known).then(|| (group_id.clone(), request.user.to_owned())),
            tombstone_floor: None,
        };
        match request.store.commit(request.space, &commit).await {
            Ok(CommitOutcome::Committed) => {
                self.version = next;
                self.group_known = true;
                self.recorded.extend(self.batch_clients.iter().cloned());
                self.overlay.committed();
                self.batch_clients.clear();
                self.commits += 1;
                tally.commits += 1;
                tally.processed += std::mem::take(&mut self.batch_processed);
                tally.failed += std::mem::take(&mut self.batch_failed);
                Ok(Committed::Yes)
            }
            Ok(CommitOutcome::Conflict) => Ok(Committed::Conflict),
            Err(e) if e.is_temporary() => Err(PushError::Store(e)),
            Err(e) => Ok(Committed::Rejected(e)),
        }
    }
}

/// Bytes a client record adds to a commit besides its ID: group ID, LMID, version and
/// attribute names, with room to spare.
const CLIENT_RECORD_BYTES: usize = 256;

/// Counters of one attempt.
#[derive(Default)]
struct Tally {
    commits: usize,
    processed: usize,
    failed: usize,
    client_state_not_found: bool,
    truncated: bool,
}

fn log_failure(m: &Mutation, e: &dyn std::fmt::Display) {
    // The mutator name and ids are protocol metadata; args are user data and stay out.
    tracing::info!(mutator = %m.name, client_id = %m.client_id, mutation_id = m.id, error = %e,
        "mutation failed permanently; marked processed with no effect");
}
