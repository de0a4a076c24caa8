//! Executors deploy one stack each. They report what happens through [`Updates`] and never
//! render; the orchestrator turns updates into events.
//!
//! An [`Executor`] is one kind (`simulate`, `command`, …): it owns its keys in a stack's
//! manifest entry and turns them into a [`StackExecutor`], that stack's configured executor,
//! which deploys, destroys and rolls it back. [`registry`] lists every kind: adding an executor
//! is one file here and one line there.

pub mod command;
pub mod process;
pub mod pulumi;
pub mod simulate;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use crate::cancel::Cancel;
use crate::event::{ErrorDetail, LogLevel, Operation, Outputs, ResourceState};
use crate::manifest::{self, ExecutorCatalog, Res, StackEntry};

/// One stack's configured executor.
pub type Configured = Arc<dyn StackExecutor>;
/// A manifest whose stacks have their executors configured.
pub type Manifest = manifest::Manifest<Configured>;
pub type StackSpec = manifest::StackSpec<Configured>;

/// A kind of executor, as named by `executor:` in the manifest.
pub trait Executor: Send + Sync {
    /// The name in `executor:`.
    fn name(&self) -> &'static str;
    /// The stack keys it owns (besides `dependencies`, `executor` and `path`).
    fn keys(&self) -> &'static [&'static str];
    /// Reads its keys of one stack, with errors that point at them.
    fn configure(&self, entry: &StackEntry<'_>) -> Res<Configured>;
    /// Checks once, before anything runs, that it can run these stacks (e.g. that its program
    /// is installed). The error says what is missing and how to fix it.
    fn preflight(&self, _stacks: &[&str]) -> Result<(), String> {
        Ok(())
    }
}

/// One stack's executor, configured from the manifest.
pub trait StackExecutor: Send + Sync + std::fmt::Debug {
    /// The kind's name (`simulate`, …).
    fn name(&self) -> &'static str;
    /// Expected seconds when there is no history (e.g. simulated durations).
    fn expected_seconds(&self) -> Option<f64> {
        None
    }
    /// How many resources the stack holds, when known before it runs.
    fn expected_resources(&self) -> Option<u32> {
        None
    }
    fn deploy(self: Arc<Self>, job: Job, updates: Updates) -> BoxFuture;
    fn destroy(self: Arc<Self>, job: Job, updates: Updates) -> BoxFuture;
    /// `None`: the stack has no rollback action.
    fn rollback(self: Arc<Self>, _job: Job, _updates: Updates) -> Option<BoxFuture> {
        None
    }
}

/// Runs the operation `job` asks for.
pub fn run(executor: &Configured, job: Job, updates: Updates) -> BoxFuture {
    let executor = Arc::clone(executor);
    match job.operation {
        Operation::Deploy => executor.deploy(job, updates),
        Operation::Destroy => executor.destroy(job, updates),
        Operation::Rollback => {
            let stack = job.stack.clone();
            executor.rollback(job, updates).unwrap_or_else(|| {
                Box::pin(async move {
                    Err(failure(
                        "NO_ROLLBACK",
                        format!("stack `{stack}` has no rollback action"),
                        None,
                    ))
                })
            })
        }
    }
}

/// Every executor `cloud` has. One line per executor.
pub fn registry() -> Registry {
    Registry {
        kinds: vec![
            Box::new(simulate::Simulate),
            Box::new(command::Command),
            Box::new(pulumi::Pulumi),
        ],
    }
}

pub struct Registry {
    kinds: Vec<Box<dyn Executor>>,
}

impl Registry {
    pub fn get(&self, name: &str) -> Option<&dyn Executor> {
        self.kinds
            .iter()
            .find(|k| k.name() == name)
            .map(|k| k.as_ref())
    }

    /// Asks each executor the manifest uses whether it can run its stacks.
    pub fn preflight(&self, stacks: &[StackSpec]) -> Result<(), String> {
        for kind in &self.kinds {
            let names: Vec<&str> = stacks
                .iter()
                .filter(|s| s.executor.name() == kind.name())
                .map(|s| s.name.as_str())
                .collect();
            if !names.is_empty() {
                kind.preflight(&names)?;
            }
        }
        Ok(())
    }
}

impl ExecutorCatalog for Registry {
    type Executor = Configured;

    fn names(&self) -> Vec<&'static str> {
        self.kinds.iter().map(|k| k.name()).collect()
    }

    fn keys(&self, name: &str) -> Option<&'static [&'static str]> {
        self.get(name).map(|k| k.keys())
    }

    fn configure(&self, entry: &StackEntry<'_>) -> Res<Configured> {
        match self.get(entry.executor) {
            Some(kind) => kind.configure(entry),
            // The manifest only names executors the catalog listed.
            None => Err(entry.err(
                entry.at,
                format!("unknown executor `{}`", entry.executor),
                format!("use one of: {}", self.names().join(", ")),
            )),
        }
    }
}

/// Everything an executor needs to run one stack, besides its configuration.
#[derive(Debug, Clone)]
pub struct Job {
    pub deployment_id: String,
    pub environment: String,
    pub operation: Operation,
    /// The stack's name.
    pub stack: String,
    /// Working folder (the stack's `path`).
    pub path: PathBuf,
    /// Outputs of the stack's dependencies, by stack name.
    pub dependency_outputs: BTreeMap<String, Outputs>,
    /// Set when the run is interrupted: stop, and return a `CANCELLED` error.
    pub cancel: Cancel,
    /// How long a program may take to stop after SIGINT before it is killed.
    pub grace: Duration,
    /// Where the executor may keep scratch files for this run.
    pub scratch: PathBuf,
}

impl Job {
    /// `urn:pulumi:<ID>-<env>::<stack>::<type>::<name>`, the seed's form, for resources whose
    /// executor has no URN of its own.
    pub fn urn(&self, type_: &str, name: &str) -> String {
        crate::event::resource_urn(
            &self.deployment_id,
            &self.environment,
            &self.stack,
            type_,
            name,
        )
    }
}

/// What an executor reports while it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecutorUpdate {
    Resource {
        state: ResourceState,
        urn: String,
        type_: String,
        name: String,
        id: Option<String>,
        error: Option<ErrorDetail>,
    },
    Progress {
        percent: Option<u32>,
        message: Option<String>,
        current_resource: Option<String>,
    },
    Log {
        level: LogLevel,
        message: String,
    },
}

/// How a stack ended: its outputs, or why it failed.
pub type Outcome = Result<Outputs, ErrorDetail>;

pub type BoxFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// The executor's side of the orchestrator's update channel, tagged with the stack.
#[derive(Clone)]
pub struct Updates {
    stack: usize,
    tx: UnboundedSender<(usize, Message)>,
}

/// What travels from a stack's task to the orchestrator, in order.
#[derive(Debug)]
pub enum Message {
    Update(ExecutorUpdate),
    Done(Outcome),
}

impl Updates {
    pub fn new(stack: usize, tx: UnboundedSender<(usize, Message)>) -> Self {
        Updates { stack, tx }
    }
    pub fn send(&self, update: ExecutorUpdate) {
        // The orchestrator outlives every stack task; a closed channel means the run is over.
        let _ = self.tx.send((self.stack, Message::Update(update)));
    }
    pub fn done(&self, outcome: Outcome) {
        let _ = self.tx.send((self.stack, Message::Done(outcome)));
    }
    pub fn log(&self, level: LogLevel, message: impl Into<String>) {
        self.send(ExecutorUpdate::Log {
            level,
            message: message.into(),
        });
    }
}

/// An error with a stable code, the message people read, and details.
pub fn failure(code: &str, message: impl Into<String>, details: Option<String>) -> ErrorDetail {
    ErrorDetail {
        code: code.into(),
        message: message.into(),
        details,
    }
}

/// The error every executor returns when the run is interrupted.
pub fn cancelled(detail: impl Into<String>) -> ErrorDetail {
    failure(
        "CANCELLED",
        "Cancelled: the run was interrupted",
        Some(detail.into()),
    )
}
