//! A few OS threads, each owning one [`Engine`] that it reuses across mutations and
//! requests (a warm Lambda keeps its engine). A thread recreates its engine after any
//! failed mutation: an interrupted or out-of-memory QuickJS runtime is not trusted again.

use crate::engine::Engine;
use crate::protocol::{Job, Msg};
use crate::{Failure, Limits, LoadError};
use std::sync::mpsc::{Receiver, Sender, channel, sync_channel};
use std::sync::{Arc, Mutex};

/// The engine thread's stack: QuickJS bounds its own use well below it.
const THREAD_STACK_BYTES: usize = 8 * 1024 * 1024;

pub(crate) struct Pool {
    jobs: Mutex<Sender<Job>>,
}

impl Pool {
    /// Starts `threads` engines on `source`, and returns with the mutator names once the
    /// first has loaded it (or with why it could not).
    pub(crate) fn start(
        source: Arc<str>,
        limits: Limits,
        threads: usize,
    ) -> Result<(Self, Vec<String>), LoadError> {
        let (jobs, queue) = channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let mut first_names = None;
        for i in 0..threads.max(1) {
            let (ready, loaded) = sync_channel(1);
            let source = source.clone();
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("js-mutators-{i}"))
                .stack_size(THREAD_STACK_BYTES)
                .spawn(move || serve(&source, limits, &queue, ready))
                .map_err(|e| LoadError::Thread(e.to_string()))?;
            let names = loaded
                .recv()
                .map_err(|_| LoadError::Thread("the engine thread stopped".into()))?
                .map_err(LoadError::Module)?;
            first_names.get_or_insert(names);
        }
        Ok((
            Pool {
                jobs: Mutex::new(jobs),
            },
            first_names.unwrap_or_default(),
        ))
    }

    /// Queues a job; `false` when no engine thread is left.
    pub(crate) fn submit(&self, job: Job) -> bool {
        match self.jobs.lock() {
            Ok(jobs) => jobs.send(job).is_ok(),
            Err(_) => false,
        }
    }
}

type Loaded = std::sync::mpsc::SyncSender<Result<Vec<String>, String>>;

fn serve(source: &str, limits: Limits, queue: &Mutex<Receiver<Job>>, ready: Loaded) {
    let mut engine = match Engine::new(source, limits) {
        Ok((engine, names)) => {
            let _ = ready.send(Ok(names));
            Some(engine)
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    loop {
        // The lock is held only while waiting for the next job.
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        if engine.is_none() {
            engine = fresh(source, limits);
        }
        let outcome = match engine.as_mut() {
            Some(engine) => engine.run(
                &job.name,
                &job.args_json,
                job.identity.as_ref(),
                job.link.clone(),
            ),
            None => Err(Failure::Unavailable),
        };
        let failed = outcome.is_err();
        let _ = job.link.to_async.send(Msg::Done(outcome));
        if failed {
            // Dropped first: a runtime at its memory limit is freed before the next one.
            drop(engine.take());
            engine = fresh(source, limits);
        }
    }
}

fn fresh(source: &str, limits: Limits) -> Option<Engine> {
    match Engine::new(source, limits) {
        Ok((engine, _)) => Some(engine),
        Err(e) => {
            tracing::error!(error = %e, "cannot start the JavaScript engine");
            None
        }
    }
}
