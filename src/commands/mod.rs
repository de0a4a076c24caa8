//! What each subcommand does, one file each. Each reads the decided [`Settings`], does its
//! work, and maps the outcome to an exit code; every failure is a [`crate::error::Error`].
//!
//! Below the command files, which never import each other: [`shared`] (what several commands
//! do alike), [`execute`] (a deploy, destroy or plan run from start to end) and [`assemble`] (where a
//! run's events go: the one bus assembly, also `cloud watch`'s).

mod affected;
mod completions;
mod deploy;
mod destroy;
mod drift;
mod events;
mod graph;
mod history;
mod logs;
mod notify;
mod plan;
mod replay;
mod serve;
mod status;
mod token;
mod unlock;
mod validate;
mod watch;

mod assemble;
mod execute;
mod shared;

use crate::cli::{self, Command};
use crate::settings::Settings;
use shared::Outcome;

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
        Command::Plan(args) => plan::run(settings, args),
        Command::Drift(args) => drift::run(settings, args),
        Command::Validate(args) => validate::run(settings, args),
        Command::Graph(args) => graph::run(settings, args),
        Command::Affected(args) => affected::run(settings, args),
        Command::Status(args) => status::run(settings, args),
        Command::Notify(cli::Notify::Test(args)) => notify::test(settings, args),
        Command::Serve(args) => serve::run(settings, args),
        Command::Watch(args) => watch::run(settings, args),
        Command::Token(args) => token::run(args),
        Command::Logs(args) => logs::run(settings, args),
        Command::Events(args) => events::run(settings, args),
        Command::History(args) => history::run(settings, args),
        Command::Replay(args) => replay::run(settings, args),
        Command::Unlock(args) => unlock::run(settings, args),
        Command::Completions(args) => completions::run(args),
    }
}
