//! Executors deploy one stack each. They report what happens through [`Updates`] and never
//! render; the orchestrator turns updates into events.

pub mod command;
pub mod simulate;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use crate::event::{ErrorDetail, LogLevel, Operation, Outputs, ResourceState};
use crate::manifest::{ExecutorSpec, StackSpec};
use crate::orchestrator::CancelHandle;

/// Everything an executor needs to run one stack.
#[derive(Debug, Clone)]
pub struct Job {
    pub deployment_id: String,
    pub environment: String,
    pub operation: Operation,
    pub stack: StackSpec,
    /// Working folder (the stack's `path`).
    pub path: PathBuf,
    /// Outputs of the stack's dependencies, by stack name.
    pub dependency_outputs: BTreeMap<String, Outputs>,
    /// Set when the run is interrupted: stop, and return a `CANCELLED` error.
    pub cancel: CancelHandle,
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
            &self.stack.name,
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

pub type BoxFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// Deploys (or destroys) one stack.
pub trait Executor: Send + Sync {
    fn run(&self, job: Job, updates: Updates) -> BoxFuture;
}

/// The executor for a stack's `executor:` setting.
pub fn for_spec(spec: &ExecutorSpec) -> Box<dyn Executor> {
    match spec {
        ExecutorSpec::Simulate { .. } => Box::new(simulate::Simulate),
        ExecutorSpec::Command { .. } => Box::new(command::Command),
        ExecutorSpec::Pulumi => Box::new(Unavailable("pulumi")),
    }
}

/// An executor that is not built yet reports so clearly instead of pretending.
struct Unavailable(&'static str);

impl Executor for Unavailable {
    fn run(&self, _job: Job, _updates: Updates) -> BoxFuture {
        let name = self.0;
        Box::pin(async move {
            Err(ErrorDetail {
                code: "EXECUTOR_UNAVAILABLE".into(),
                message: format!("the `{name}` executor is not available in this build"),
                details: Some(format!(
                    "use `executor: command` with a `deploy:` script that runs {name} meanwhile"
                )),
            })
        })
    }
}

/// The error every executor returns when the run is interrupted.
pub fn cancelled(detail: impl Into<String>) -> ErrorDetail {
    ErrorDetail {
        code: "CANCELLED".into(),
        message: "Cancelled: the run was interrupted".into(),
        details: Some(detail.into()),
    }
}
