//! What each subcommand does, one file each. Each reads the decided [`Settings`], does its
//! work, and maps the outcome to an exit code; every failure is a [`Failure`].

mod completions;
mod deploy;
mod destroy;
mod events;
mod graph;
mod history;
mod logs;
mod notify;
mod serve;
mod status;
mod token;
mod unlock;
mod validate;
mod watch;

use crate::cancel::Cancel;
use crate::cli::{self, Command};
use crate::executor::{self, Manifest, Registry};
use crate::manifest::{self, ManifestError};
use crate::plan::{History, Plan};
use crate::settings::Settings;
use crate::store::lock::LockError;

/// Exit codes (DESIGN.md): 0 deployed, 1 a stack failed, 2 bad input, 3 locked, 130 interrupted.
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILED: i32 = 1;
    pub const BAD_INPUT: i32 = 2;
    pub const LOCKED: i32 = 3;
    pub const INTERRUPTED: i32 = 130;
}

/// Why a command stopped: the message for stderr and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }

    /// Bad input: exit 2.
    pub fn input(message: impl Into<String>) -> Self {
        Failure::new(exit::BAD_INPUT, message)
    }
}

impl From<LockError> for Failure {
    fn from(e: LockError) -> Self {
        let code = match e {
            LockError::Held { .. } => exit::LOCKED,
            LockError::Io { .. } => exit::FAILED,
        };
        Failure::new(code, format!("error: {e}"))
    }
}

/// Runs a parsed command line; returns the exit code.
pub fn run(cli: cli::Cli) -> Result<i32, Failure> {
    let settings = Settings::new(&cli.global);
    match cli.command {
        Command::Deploy(args) => deploy::run(&settings, args),
        Command::Destroy(args) => destroy::run(&settings, args),
        Command::Validate(args) => validate::run(&settings, args),
        Command::Graph(args) => graph::run(&settings, args),
        Command::Status(args) => status::run(&settings, args),
        Command::Notify(cli::Notify::Test(args)) => notify::test(&settings, args),
        Command::Serve(args) => serve::run(&settings, args),
        Command::Watch(args) => watch::run(&settings, args),
        Command::Token(args) => token::run(args),
        Command::Logs(args) => logs::run(&settings, args),
        Command::Events(args) => events::run(&settings, args),
        Command::History(args) => history::run(&settings, args),
        Command::Unlock(args) => unlock::run(&settings, args),
        Command::Completions(args) => completions::run(args),
    }
}

/// The deployment's manifest, with its executors configured, checked for `environment`.
fn load(
    settings: &Settings,
    registry: &Registry,
    id: &str,
    environment: Option<&str>,
) -> Result<Manifest, Failure> {
    let bad = |e: ManifestError| Failure::input(e.render_styled(settings.color_stderr));
    let manifest = manifest::load(&settings.root, id, registry).map_err(bad)?;
    if let Some(env) = environment {
        manifest.check_environment(env).map_err(bad)?;
    }
    manifest.check_inputs_env().map_err(bad)?;
    Ok(manifest)
}

/// Asks each executor the manifest uses whether it can run (its program is installed…).
fn preflight(registry: &Registry, manifest: &Manifest) -> Result<(), Failure> {
    registry
        .preflight(&manifest.stacks)
        .map_err(|e| Failure::input(format!("error: {e}\n  --> {}", manifest.file.display())))
}

/// The plan of a loaded manifest (a dependency cycle is bad input).
fn plan(settings: &Settings, manifest: &Manifest, history: &dyn History) -> Result<Plan, Failure> {
    Plan::new(manifest, history).map_err(|e| Failure::input(e.render_styled(settings.color_stderr)))
}

/// The executors, for commands that read manifests.
fn registry() -> Registry {
    executor::registry()
}

/// Ctrl-C, SIGTERM and SIGHUP (the terminal closed) cancel `cancel`: a deploy's stacks get
/// SIGINT, then SIGKILL after the grace period; a second signal forces it (SIGKILL now). A
/// thread of its own, not a task: after the run the runtime is gone, and a signal must still
/// reach a view that shows the final state (it leaves on it).
pub(super) fn stop_on_signals(cancel: Cancel) {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                cancel.escalate(match signal {
                    SIGINT => crate::event::StopReason::Interrupt,
                    _ => crate::event::StopReason::Signal,
                });
            }
        });
}
