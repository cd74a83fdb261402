//! One QuickJS runtime and context with the app's module loaded: runs one mutation at a
//! time on the thread that owns it. A `tx` operation is a call of the host function,
//! which hands it to the async side over [`Link`] and blocks this thread until the answer.

use crate::protocol::{Answer, Link, Msg, Op};
use crate::{Failure, Limits};
use rquickjs::function::Args;
use rquickjs::{
    CatchResultExt, CaughtError, Context, Ctx, Function, Module, Object, Persistent, Promise,
    Runtime, promise::PromiseState,
};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

const PRELUDE: &str = include_str!("prelude.js");
/// QuickJS's own stack bound: deep recursion in a mutator is a `RangeError`, far below the
/// engine thread's stack ([`crate::pool`]).
const MAX_STACK_BYTES: usize = 1024 * 1024;

/// What the host function and the interrupt handler share with the running mutation.
struct Shared {
    /// When the mutation's time is up; moved on by the time spent waiting for the store.
    deadline: Cell<Instant>,
    interrupted: Cell<bool>,
    link: RefCell<Option<Link>>,
}

pub(crate) struct Engine {
    // Field order is drop order: the saved function before its context and runtime.
    run: Persistent<Function<'static>>,
    context: Context,
    _runtime: Runtime,
    shared: Rc<Shared>,
    limits: Limits,
}

impl Engine {
    /// Loads `source` (an ES module exporting `makeMutators`) and returns the engine and
    /// the names of the mutators `makeMutators()` returns.
    pub(crate) fn new(source: &str, limits: Limits) -> Result<(Self, Vec<String>), String> {
        let runtime = Runtime::new().map_err(|e| e.to_string())?;
        runtime.set_max_stack_size(MAX_STACK_BYTES);
        let shared = Rc::new(Shared {
            deadline: Cell::new(far_future()),
            interrupted: Cell::new(false),
            link: RefCell::new(None),
        });
        let watch = shared.clone();
        runtime.set_interrupt_handler(Some(Box::new(move || {
            let over = Instant::now() >= watch.deadline.get();
            if over {
                watch.interrupted.set(true);
            }
            over
        })));
        let context = Context::full(&runtime).map_err(|e| e.to_string())?;
        // Loading the module is bounded like a mutation.
        shared
            .deadline
            .set(Instant::now() + limits.time.max(Duration::from_secs(1)));
        let loaded = context.with(|ctx| load(&ctx, source, shared.clone()));
        shared.deadline.set(far_future());
        let (run, names) = loaded?;
        // The limit applies from here on: the module's own code is small.
        runtime.set_memory_limit(limits.memory_bytes);
        Ok((
            Engine {
                run,
                context,
                _runtime: runtime,
                shared,
                limits,
            },
            names,
        ))
    }

    /// Runs mutator `name` on `args_json` as mutation `identity` (client ID, mutation ID),
    /// its `tx` operations going over `link`.
    pub(crate) fn run(
        &mut self,
        name: &str,
        args_json: &str,
        identity: Option<&(String, u64)>,
        link: Link,
    ) -> Result<(), Failure> {
        let client_id = identity.map(|(client, _)| client.as_str());
        // Mutation IDs are below 2^53 (the protocol refuses larger ones): exact as numbers.
        let mutation_id = identity.map(|(_, id)| *id as f64);
        *self.shared.link.borrow_mut() = Some(link);
        self.shared.interrupted.set(false);
        self.shared.deadline.set(Instant::now() + self.limits.time);
        let outcome = self.context.with(|ctx| {
            let run = self
                .run
                .clone()
                .restore(&ctx)
                .map_err(|e| thrown(&ctx, e))?;
            let promise: Promise = run
                .call((name, args_json, client_id, mutation_id))
                .catch(&ctx)
                .map_err(|e| caught(e))?;
            settle(&ctx, &promise)
        });
        self.shared.deadline.set(far_future());
        self.shared.link.borrow_mut().take();
        if self.shared.interrupted.get() {
            return Err(Failure::TimeLimit(self.limits.time));
        }
        outcome
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(365 * 24 * 3600)
}

type Loaded = (Persistent<Function<'static>>, Vec<String>);

fn load<'js>(ctx: &Ctx<'js>, source: &str, shared: Rc<Shared>) -> Result<Loaded, String> {
    let fail = |e: CaughtError<'_>| describe(&e);
    let module = Module::declare(ctx.clone(), "mutators.js", source)
        .catch(ctx)
        .map_err(fail)?;
    let (module, promise) = module.eval().catch(ctx).map_err(fail)?;
    settle(ctx, &promise).map_err(|e| e.to_string())?;
    let make: Function = module
        .get("makeMutators")
        .map_err(|_| "the module exports no function `makeMutators`".to_owned())?;
    let mutators: Object = make.call(()).catch(ctx).map_err(fail)?;
    let mut names = Vec::new();
    for key in mutators.keys::<String>() {
        let key = key.map_err(|e| e.to_string())?;
        let value: rquickjs::Value = mutators.get(&key).map_err(|e| e.to_string())?;
        if value.is_function() {
            names.push(key);
        }
    }
    let host = Function::new(
        ctx.clone(),
        move |op: String, key: String, payload: String| host_call(&shared, &op, key, payload),
    )
    .map_err(|e| e.to_string())?;
    let prelude: Function = ctx.eval(PRELUDE).catch(ctx).map_err(fail)?;
    let mut args = Args::new(ctx.clone(), 2);
    args.push_arg(host).map_err(|e| e.to_string())?;
    args.push_arg(mutators).map_err(|e| e.to_string())?;
    let run: Function = prelude.call_arg(args).catch(ctx).map_err(fail)?;
    Ok((Persistent::save(ctx, run), names))
}

/// Runs the context's jobs until `promise` settles.
fn settle<'js>(ctx: &Ctx<'js>, promise: &Promise<'js>) -> Result<(), Failure> {
    while promise.state() == PromiseState::Pending {
        if !ctx.execute_pending_job() {
            break;
        }
    }
    match promise.state() {
        PromiseState::Resolved => Ok(()),
        PromiseState::Pending => Err(Failure::NeverSettled),
        PromiseState::Rejected => match promise.result::<rquickjs::Value>() {
            Some(Err(e)) => Err(thrown(ctx, e)),
            _ => Err(Failure::Threw("the promise was rejected".into())),
        },
    }
}

fn thrown<'js>(ctx: &Ctx<'js>, e: rquickjs::Error) -> Failure {
    caught(CaughtError::from_error(ctx, e))
}

fn caught(e: CaughtError<'_>) -> Failure {
    let text = describe(&e);
    if text.contains("out of memory") {
        Failure::MemoryLimit
    } else {
        Failure::Threw(text)
    }
}

/// An exception's name and message; a thrown value that is no `Error` is not shown (it
/// may be the app's data).
fn describe(e: &CaughtError<'_>) -> String {
    match e {
        CaughtError::Exception(ex) => {
            let name: Option<String> = ex.get("name").ok();
            let message = ex.message().unwrap_or_default();
            format!("{}: {message}", name.unwrap_or_else(|| "Error".into()))
        }
        CaughtError::Value(_) => "a value that is not an Error was thrown".into(),
        CaughtError::Error(e) => e.to_string(),
    }
}

/// The host function: one `tx` operation, answered as a tagged string (see prelude.js).
fn host_call(shared: &Shared, op: &str, key: String, payload: String) -> String {
    let op = match op {
        "get" => Op::Get(key),
        "has" => Op::Has(key),
        "put" => Op::Put(key, payload),
        "del" => Op::Del(key),
        "scan" => Op::Scan {
            prefix: key,
            limit: payload.parse::<usize>().ok(),
        },
        _ => return "eunknown operation".into(),
    };
    let link = shared.link.borrow();
    let Some(link) = link.as_ref() else {
        return "eno mutation is running".into();
    };
    let asked = Instant::now();
    let (reply, answer) = std::sync::mpsc::sync_channel(1);
    if link.to_async.send(Msg::Op(op, reply)).is_err() {
        return "ethe mutation was abandoned".into();
    }
    let answer = answer.recv();
    // Waiting for the store is not the mutator's time.
    shared.deadline.set(shared.deadline.get() + asked.elapsed());
    match answer {
        Ok(Answer::Value(Some(json))) => format!("v{json}"),
        Ok(Answer::Value(None)) => "u".into(),
        Ok(Answer::Bool(b)) => if b { "t" } else { "f" }.into(),
        Ok(Answer::Done) => "o".into(),
        Ok(Answer::Failed(message)) => format!("e{message}"),
        Err(_) => "ethe mutation was abandoned".into(),
    }
}
