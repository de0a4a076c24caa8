//! What each subcommand does, one file each. Each reads the decided [`Settings`], does its
//! work, and maps the outcome to an exit code; every failure is an [`Error`].

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
use crate::error::Error;
use crate::executor::{self, Manifest, Registry};
use crate::manifest;
use crate::plan::{History, Plan};
use crate::settings::Settings;

/// What a command gives back: done, or why not ([`Error`] decides the exit code).
pub type Outcome = Result<(), Error>;

/// Runs a parsed command line; returns the exit code, having said why it is not 0.
pub fn run(cli: cli::Cli) -> i32 {
    let settings = Settings::new(&cli.global);
    match dispatch(&settings, cli.command) {
        Ok(()) => 0,
        Err(e) => e.report(settings.color_stderr),
    }
}

fn dispatch(settings: &Settings, command: Command) -> Outcome {
    match command {
        Command::Deploy(args) => deploy::run(settings, args),
        Command::Destroy(args) => destroy::run(settings, args),
        Command::Validate(args) => validate::run(settings, args),
        Command::Graph(args) => graph::run(settings, args),
        Command::Status(args) => status::run(settings, args),
        Command::Notify(cli::Notify::Test(args)) => notify::test(settings, args),
        Command::Serve(args) => serve::run(settings, args),
        Command::Watch(args) => watch::run(settings, args),
        Command::Token(args) => token::run(args),
        Command::Logs(args) => logs::run(settings, args),
        Command::Events(args) => events::run(settings, args),
        Command::History(args) => history::run(settings, args),
        Command::Unlock(args) => unlock::run(settings, args),
        Command::Completions(args) => completions::run(args),
    }
}

/// The deployment's manifest, with its executors configured, checked for `environment`.
fn load(
    settings: &Settings,
    registry: &Registry,
    id: &str,
    environment: Option<&str>,
) -> Result<Manifest, Error> {
    let manifest = manifest::load(&settings.root, id, registry)?;
    if let Some(env) = environment {
        manifest.check_environment(env)?;
    }
    manifest.check_inputs_env()?;
    Ok(manifest)
}

/// Asks each executor the manifest uses whether it can run (its program is installed…).
fn preflight(registry: &Registry, manifest: &Manifest) -> Result<(), Error> {
    registry
        .preflight(&manifest.stacks)
        .map_err(|e| Error::input(format!("{e}\n  --> {}", manifest.file.display())))
}

/// The plan of a loaded manifest (a dependency cycle is bad input).
fn plan(manifest: &Manifest, history: &dyn History) -> Result<Plan, Error> {
    Ok(Plan::new(manifest, history)?)
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
