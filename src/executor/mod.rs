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
pub mod terraform;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use crate::cancel::Cancel;
use crate::event::{
    DriftedAttribute, ErrorCode, ErrorDetail, LogLevel, Operation, Outputs, PlanAction,
    PlanSummary, ResourceState,
};
use crate::manifest::{self, ExecutorCatalog, Inputs, ManifestResult, StackEntry};
use crate::secrets::Secrets;

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
    fn configure(&self, entry: &StackEntry<'_>) -> ManifestResult<Configured>;
    /// Checks once, before anything runs, that it can run these stacks (e.g. that its program
    /// is installed, that their folders hold what it runs). The error says what is missing
    /// and how to fix it.
    fn preflight(&self, _stacks: &[&StackSpec]) -> Result<(), NotReady> {
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
    /// Whether what it deploys comes from the files under the stack's `path` (part of its
    /// fingerprint then).
    fn reads_files(&self) -> bool {
        true
    }
    /// Files its tool writes under the stack's `path` itself (state, caches), left out of the
    /// stack's fingerprint: `.cloudignore` patterns.
    fn fingerprint_ignores(&self) -> &'static [&'static str] {
        &[]
    }
    /// Checks once, before anything runs, that this stack can run (its `path` holds what the
    /// tool needs, the program its own settings name is installed, the variables its settings
    /// read are set). [`Executor::preflight`] checks what is once per kind. The error names
    /// the stack and the fix.
    fn preflight(&self, _spec: &StackSpec) -> Result<(), NotReady> {
        Ok(())
    }
    fn deploy(self: Arc<Self>, job: Job, updates: Updates) -> BoxFuture;
    fn destroy(self: Arc<Self>, job: Job, updates: Updates) -> BoxFuture;
    /// `None`: the stack has no rollback action.
    fn rollback(self: Arc<Self>, _job: Job, _updates: Updates) -> Option<BoxFuture> {
        None
    }
    /// Reads the stack's outputs as its tool holds them now, secret ones with their real
    /// values (in [`Deployed::secret_outputs`]), for the dependents of a stack that does not
    /// run: `cloud` keeps no secret value from one run to the next. `None`: it cannot.
    fn read_outputs(self: Arc<Self>, _job: Job, _updates: Updates) -> Option<BoxFuture> {
        None
    }
    /// Previews what a deploy of `job` would change, changing nothing: each resource as
    /// [`ExecutorUpdate::Planned`], then one [`ExecutorUpdate::PlanSummary`]; the tool's error
    /// fails it like a deploy. It ends `Ok` with no outputs (a plan knows no values).
    /// `None`: the stack has no preview ("no preview (will run)").
    fn plan(self: Arc<Self>, _job: Job, _updates: Updates) -> Option<BoxFuture> {
        None
    }
    /// Compares the stack's real infrastructure with what was last deployed, changing nothing:
    /// each resource found changed outside the tool as [`ExecutorUpdate::Drifted`]; none sent
    /// means in sync. The tool's error fails it like a deploy. It ends `Ok` with no outputs.
    /// Called only when [`StackExecutor::no_drift_check`] is `None`.
    fn drift(self: Arc<Self>, job: Job, _updates: Updates) -> BoxFuture {
        let why = self.no_drift_check().unwrap_or_default();
        Box::pin(async move {
            Err(failure(
                ErrorCode::CommandNotStarted,
                format!("stack `{}` has no drift check: {why}", job.stack),
                None,
            ))
        })
    }
    /// Why this stack has no drift check and how to add one (its `stack_drift_checked` says
    /// `unknown` with it, and its tool is not run); `None`: it has one.
    fn no_drift_check(&self) -> Option<String> {
        Some(format!("{} stacks have no drift check", self.name()))
    }
    /// Why `cloud destroy` cannot destroy this stack (e.g. a command stack without `destroy:`),
    /// said before anything runs; `None`: it can.
    fn cannot_destroy(&self) -> Option<String> {
        None
    }
}

/// Runs the operation `job` asks for.
pub fn run(executor: &Configured, job: Job, updates: Updates) -> BoxFuture {
    let executor = Arc::clone(executor);
    match job.operation {
        Operation::Deploy => executor.deploy(job, updates),
        Operation::Destroy => executor.destroy(job, updates),
        // No preview: it ends at once, without a `PlanSummary` (how the orchestrator tells).
        Operation::Plan => executor
            .plan(job, updates)
            .unwrap_or_else(|| Box::pin(async { Ok(Deployed::default()) })),
        // A stack without a check is not run at all (the orchestrator asks first).
        Operation::Drift => executor.drift(job, updates),
        Operation::Rollback => {
            let stack = job.stack.clone();
            executor.rollback(job, updates).unwrap_or_else(|| {
                Box::pin(async move {
                    Err(failure(
                        ErrorCode::NoRollback,
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
            Box::new(terraform::Terraform),
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
    pub fn preflight(&self, stacks: &[StackSpec]) -> Result<(), NotReady> {
        for kind in &self.kinds {
            let mine: Vec<&StackSpec> = stacks
                .iter()
                .filter(|s| s.executor.name() == kind.name())
                .collect();
            if !mine.is_empty() {
                kind.preflight(&mine)?;
            }
            for stack in stacks.iter().filter(|s| s.executor.name() == kind.name()) {
                stack.executor.preflight(stack)?;
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

    fn configure(&self, entry: &StackEntry<'_>) -> ManifestResult<Configured> {
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

/// Why stacks cannot run before anything starts (a program not installed, a folder without
/// what its tool runs): the problem, and how to fix it. Shown as `problem` then `  help: fix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReady {
    pub problem: String,
    pub fix: String,
}

impl NotReady {
    pub fn new(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        NotReady {
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.fix.is_empty() {
            write!(f, "{}", self.problem)
        } else {
            write!(f, "{}\n  help: {}", self.problem, self.fix)
        }
    }
}

impl std::error::Error for NotReady {}

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
    /// Outputs of the stack's dependencies, by stack name (secret ones shown as `[secret]`).
    pub dependency_outputs: BTreeMap<String, Outputs>,
    /// The stack's `inputs:`, resolved. Secret ones must never be logged.
    pub inputs: Inputs,
    /// Set when the run is interrupted: stop, and return a `CANCELLED` error.
    pub cancel: Cancel,
    /// How long a program may take to stop after SIGINT before it is killed.
    pub grace: Duration,
    /// Where the executor may keep scratch files for this run.
    pub scratch: PathBuf,
    /// `deploy --plan`: the tool's reviewed plan file to apply instead of a fresh apply.
    pub saved_plan: Option<PathBuf>,
    /// What the stack's last successful deploy here left, for executors that keep no state of
    /// their own (simulate plans from it). `None`: never deployed here, or its latest attempt
    /// did not succeed (then nothing about what exists is known).
    pub last_deploy: Option<LastDeploy>,
}

/// The stack's last successful deploy, as the run's history knows it.
#[derive(Debug, Clone, Default)]
pub struct LastDeploy {
    /// The stack's fingerprint now is that deploy's: same settings, files and inputs.
    pub unchanged: bool,
    /// Its outputs, as shown (secret ones `[secret]`).
    pub outputs: Outputs,
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
        /// The tool's full address of the resource, when it has one besides the URN.
        address: Option<String>,
        error: Option<ErrorDetail>,
        /// `Some(Replace)` for the events of a replacement (shown as one resource updating,
        /// counted as replaced); else the state says what happens.
        action: Option<PlanAction>,
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
    /// One resource of a plan (`resource_planned`).
    Planned {
        urn: String,
        type_: String,
        name: String,
        /// The tool's full address, when it has one besides the URN.
        address: Option<String>,
        action: PlanAction,
        /// Found changed outside the tool, not a change the plan makes.
        drift: bool,
        /// A moved resource's address before the move.
        previous_address: Option<String>,
    },
    /// The stack's plan is complete (`stack_planned`).
    PlanSummary(PlanSummary),
    /// A resource found changed outside the tool (`resource_drifted`).
    Drifted {
        urn: String,
        type_: String,
        name: String,
        /// The tool's full address, when it has one besides the URN.
        address: Option<String>,
        action: PlanAction,
        attributes: Vec<DriftedAttribute>,
    },
}

/// How a stack ended: what it leaves for its dependents, or why it failed.
pub type Outcome = Result<Deployed, ErrorDetail>;

/// The text shown instead of a secret value (never a value).
pub const SECRET: &str = crate::secrets::SHOWN;

/// What a deployed stack leaves for its dependents.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Deployed {
    /// Its outputs as shown in events and logs: secret ones are [`SECRET`].
    pub outputs: Outputs,
    /// The real values of its secret outputs, when the tool gave them: dependents' inputs may
    /// read them (and are secret then); they are never shown.
    pub secret_outputs: Outputs,
}

impl Deployed {
    /// Whether output `key` is a secret whose value this run does not have (shown as
    /// `[secret]`, read from an earlier run's record).
    pub fn needs_read_back(&self, key: &str) -> bool {
        !self.secret_outputs.contains_key(key) && self.outputs.get(key).is_some_and(is_shown_secret)
    }
}

/// Whether a shown output value is, or holds, a masked secret.
pub fn is_shown_secret(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains(SECRET),
        serde_json::Value::Array(items) => items.iter().any(is_shown_secret),
        serde_json::Value::Object(map) => map.values().any(is_shown_secret),
        _ => false,
    }
}

impl From<Outputs> for Deployed {
    fn from(outputs: Outputs) -> Self {
        Deployed {
            outputs,
            secret_outputs: Outputs::new(),
        }
    }
}

pub type BoxFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// The executor's side of the orchestrator's update channel, tagged with the stack. Secret
/// values an executor learns itself (Pulumi `config:` secrets) are told to the run's one
/// redactor through it; the orchestrator masks every event with that redactor.
#[derive(Clone)]
pub struct Updates {
    stack: usize,
    tx: UnboundedSender<(usize, Message)>,
    secrets: Secrets,
}

/// What travels from a stack's task to the orchestrator, in order.
#[derive(Debug)]
pub enum Message {
    Update(ExecutorUpdate),
    Done(Outcome),
}

impl Updates {
    pub fn new(stack: usize, tx: UnboundedSender<(usize, Message)>, secrets: Secrets) -> Self {
        Updates { stack, tx, secrets }
    }

    /// Hides these values everywhere in the run from now on.
    pub fn with_secrets(self, secrets: Vec<String>) -> Self {
        for secret in &secrets {
            self.secrets.add_text(secret);
        }
        self
    }

    /// The run's redactor.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
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
pub fn failure(
    code: ErrorCode,
    message: impl Into<String>,
    details: Option<String>,
) -> ErrorDetail {
    ErrorDetail {
        code,
        message: message.into(),
        details,
    }
}

/// The line of a tool's output that says what went wrong, in its own words: the last one that
/// reads as an error (`Error:`, `error:`, `ERROR`, `fatal:`, `panic:`), else none.
pub fn root_cause<'a>(lines: impl DoubleEndedIterator<Item = &'a str>) -> Option<String> {
    lines
        .rev()
        .map(str::trim)
        .find(|line| reads_as_error(line))
        .map(str::to_owned)
}

fn reads_as_error(line: &str) -> bool {
    let start = line.trim_start_matches(|c: char| !c.is_alphanumeric());
    [
        "Error", "error", "ERROR", "fatal:", "Fatal:", "FATAL", "panic:",
    ]
    .iter()
    .any(|p| start.starts_with(p))
        || line.contains(" error: ")
        || line.contains(" Error: ")
}

/// A stable code for a failure: access-denied errors are `INSUFFICIENT_PERMISSIONS` (as the
/// seed's example), anything else `default`.
pub fn error_code(message: &str, default: ErrorCode) -> ErrorCode {
    const DENIED: &[&str] = &[
        "accessdenied",
        "access denied",
        "unauthorizedoperation",
        "not authorized to perform",
        "authorizationfailed",
        "authorization failed",
        "does not have permission",
        "permission_denied",
        "insufficient permissions",
        "403 forbidden",
        "statuscode: 403",
    ];
    let lower = message.to_lowercase();
    if DENIED.iter().any(|p| lower.contains(p)) {
        ErrorCode::InsufficientPermissions
    } else {
        default
    }
}

/// The error every executor returns when the run is interrupted.
pub fn cancelled(detail: impl Into<String>) -> ErrorDetail {
    failure(
        ErrorCode::Cancelled,
        // Its code says it was cancelled: the message need not.
        "the run was interrupted",
        Some(detail.into()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_cause_is_the_tools_own_error_line() {
        let tail = [
            "Creating RDS instance...",
            "Error: creating RDS DB Instance (main-db): operation error RDS: CreateDBInstance, https response error StatusCode: 403, AccessDenied: User is not authorized",
            "  with aws_db_instance.main,",
            "exit status 1",
        ];
        let cause = root_cause(tail.iter().copied()).unwrap();
        assert!(
            cause.starts_with("Error: creating RDS DB Instance"),
            "{cause}"
        );
        assert_eq!(
            error_code(&cause, ErrorCode::CommandFailed),
            ErrorCode::InsufficientPermissions
        );
        assert_eq!(root_cause(["all good", "done"].iter().copied()), None);
        assert_eq!(
            root_cause(["│ Error: Invalid reference"].iter().copied()).as_deref(),
            Some("│ Error: Invalid reference")
        );
        assert_eq!(
            error_code("Error: bucket exists", ErrorCode::TerraformError),
            ErrorCode::TerraformError
        );
    }
}
