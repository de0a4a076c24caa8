//! The command line and the environment, decided once: which view, colour or not, whether
//! stdout is a terminal, CI ([`Settings`]); and what one run asks for ([`RunSettings`]),
//! checked before anything is read or runs. Everything below reads these values, never the
//! environment or the raw flags.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use crate::changed::Query;
use crate::cli::{self, ColorChoice, Global, Output};
use crate::error::Error;
use crate::event::Operation;
use crate::manifest::event_store::check_table_name;
use crate::store::dynamodb::DEFAULT_TABLE;

/// The longest grace period a stopping stack (or a program left running) may be given: an hour.
const MAX_GRACE_SECONDS: f64 = 3600.0;

/// Which view shows a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewKind {
    /// The seed's "Simple Progress Display" (the default on a terminal).
    Simple,
    /// Full-screen: select a stack, see its resources and logs.
    Interactive,
    /// Timestamped lines, one per change, no cursor movement (CI, pipes, dumb terminals).
    Verbose,
    /// One event envelope per line.
    Json,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// Holds `cloud/deploy/<ID>/deployment.yaml`.
    pub root: PathBuf,
    /// Colour on stdout.
    pub color: bool,
    /// Colour on stderr (error messages).
    pub color_stderr: bool,
    pub verbose: bool,
    pub stdout_tty: bool,
    /// `CI` is set (and not false): no live views.
    pub ci: bool,
    /// `GITHUB_ACTIONS=true`.
    pub github_actions: bool,
    /// `TERM=dumb`: no cursor movement.
    pub dumb_terminal: bool,
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

impl Settings {
    pub fn new(global: &Global) -> Self {
        let stdout_tty = std::io::stdout().is_terminal();
        let stderr_tty = std::io::stderr().is_terminal();
        let dumb_terminal = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = |tty: bool| match global.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && !no_color && !dumb_terminal,
        };
        Settings {
            root: global.root.clone(),
            color: color(stdout_tty),
            color_stderr: color(stderr_tty),
            verbose: global.verbose,
            stdout_tty,
            ci: env_flag("CI"),
            github_actions: env_flag("GITHUB_ACTIONS"),
            dumb_terminal,
        }
    }

    /// json / interactive / verbose as asked; otherwise simple on a terminal that can move its
    /// cursor, verbose anywhere else.
    pub fn view(&self, output: Output, interactive: bool) -> ViewKind {
        if output == Output::Json {
            ViewKind::Json
        } else if interactive && self.live_terminal() {
            ViewKind::Interactive
        } else if self.verbose || !self.live_terminal() || self.ci || interactive {
            ViewKind::Verbose
        } else {
            ViewKind::Simple
        }
    }

    /// A terminal a live view can draw on.
    pub fn live_terminal(&self) -> bool {
        self.stdout_tty && !self.dumb_terminal
    }
}

/// `--grace-period`, checked.
pub fn grace_period(seconds: f64) -> Result<Duration, Error> {
    if !(seconds.is_finite() && (0.0..=MAX_GRACE_SECONDS).contains(&seconds)) {
        return Err(Error::input(format!(
            "--grace-period must be a number of seconds from 0 to {MAX_GRACE_SECONDS}, found {seconds}"
        ))
        .hint("e.g. `--grace-period 30`"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// `--dynamodb-table` (or `CLOUD_DYNAMODB_TABLE`), checked: a name DynamoDB takes, or none.
pub fn table_flag(store: &cli::EventStoreArgs) -> Result<Option<&str>, Error> {
    let Some(table) = &store.dynamodb_table else {
        return Ok(None);
    };
    if let Err(why) = check_table_name(table) {
        return Err(Error::input(format!(
            "invalid DynamoDB table name `{}` (from --dynamodb-table or \
             CLOUD_DYNAMODB_TABLE): {why}",
            table.escape_debug()
        ))
        .hint(format!("e.g. `--dynamodb-table {DEFAULT_TABLE}`")));
    }
    Ok(Some(table))
}

/// `--changed [--since REF] [--no-dependents]`, checked: what to compare with, or no selection.
pub fn changed_flag(args: &cli::ChangedArgs) -> Result<Option<Query>, Error> {
    if !args.changed {
        let stray = match (&args.since.since, args.since.no_dependents) {
            (Some(_), _) => Some("--since"),
            (None, true) => Some("--no-dependents"),
            (None, false) => None,
        };
        return match stray {
            Some(flag) => Err(
                Error::input(format!("{flag} only goes with --changed")).hint(format!(
                    "add --changed to select the stacks a git change touches, or drop {flag}"
                )),
            ),
            None => Ok(None),
        };
    }
    Ok(Some(since_flags(&args.since)))
}

/// `--since` and `--no-dependents` as the question asked of git.
pub fn since_flags(args: &cli::SinceArgs) -> Query {
    Query {
        since: args.since.clone(),
        dependents: !args.no_dependents,
    }
}

/// How `cloud replay` paces the recorded events.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// The recorded gaps divided by this (1: as it ran).
    Speed(f64),
    /// No waits.
    Instant,
}

/// `--speed N` / `--instant`, checked: a speed is a number above 0.
pub fn replay_pace(speed: Option<f64>, instant: bool) -> Result<Pace, Error> {
    match speed {
        _ if instant => Ok(Pace::Instant),
        None => Ok(Pace::Speed(1.0)),
        Some(n) if n.is_finite() && n > 0.0 => Ok(Pace::Speed(n)),
        Some(n) => Err(Error::input(format!(
            "--speed must be a number above 0 (how many times faster than the run), found {n}"
        ))
        .hint("e.g. `--speed 10`, `--speed 0.5`, or `--instant` for no waits")),
    }
}

/// How a run is shown: `cloud deploy`, `cloud destroy` and `cloud watch` alike.
#[derive(Debug, Clone, Copy)]
pub struct Show {
    pub view: ViewKind,
    /// Leave the interactive view when the run is over (else it waits for a key).
    pub exit_on_done: bool,
}

impl Show {
    pub fn new(settings: &Settings, output: Output, interactive: bool, exit_on_done: bool) -> Self {
        Show {
            view: settings.view(output, interactive),
            exit_on_done,
        }
    }
}

/// One run (a deploy, a destroy or a plan) as its command line asks for it, decided and checked before
/// the manifest is read: a bad flag is refused before anything else is looked at.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub environment: String,
    pub operation: Operation,
    pub parallelism: Option<usize>,
    pub fail_fast: bool,
    pub show: Show,
    /// What a stopping stack gets after SIGINT before it is killed.
    pub grace: Duration,
    /// Deploy stacks whose fingerprint is unchanged too.
    pub force: bool,
    /// `--only`: these stacks alone.
    pub only: Option<BTreeSet<String>>,
    /// `--changed`: the stacks a git change touches (and their dependents) alone; decided
    /// into `only` once the manifest is read.
    pub changed: Option<Query>,
    pub rollback_on_failure: bool,
    /// Send the manifest's notifications.
    pub notify: bool,
    /// Where to write the run's summary as JSON, and as JUnit XML.
    pub report: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    /// Serve the run (dashboard, REST, WebSocket) on this address.
    pub serve: Option<String>,
    /// `--serve-for`: how long the server goes on serving the finished run.
    pub serve_for: Option<Duration>,
    /// The DynamoDB audit trail's table, and whether to send events to CloudWatch Logs.
    pub store: cli::EventStoreArgs,
    pub cloudwatch: bool,
    /// A plan's exit code says whether anything would change (0 no, 2 yes, 1 error).
    pub detailed_exitcode: bool,
    /// A plan: save it in this folder (`--out`), write it as Markdown (`--markdown`).
    pub out: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
    /// `deploy --plan DIR`: the reviewed plan it applies.
    pub saved: Option<std::sync::Arc<crate::plan::saved::SavedApply>>,
    /// `deploy --only-drifted`: the stacks found drifted, and what their outputs change.
    pub only_drifted: bool,
    /// `--no-retry`: one attempt per stack.
    pub no_retry: bool,
}

impl RunSettings {
    /// `cloud deploy`.
    pub fn deploy(settings: &Settings, args: &cli::Deploy) -> Result<Self, Error> {
        table_flag(&args.store)?;
        Ok(RunSettings {
            environment: args.environment.clone(),
            operation: Operation::Deploy,
            parallelism: args.parallelism.map(|p| p as usize),
            fail_fast: args.fail_fast,
            show: Show::new(settings, args.output, args.interactive, args.exit_on_done),
            grace: grace_period(args.grace_period)?,
            force: args.force,
            only: (!args.only.is_empty()).then(|| args.only.iter().cloned().collect()),
            changed: changed_flag(&args.changed)?,
            rollback_on_failure: args.rollback_on_failure,
            notify: !args.no_notify,
            report: args.report.clone(),
            junit: args.junit.clone(),
            only_drifted: args.only_drifted,
            serve: args.serve.serve.clone(),
            serve_for: args.serve.serve_for,
            store: args.store.clone(),
            cloudwatch: args.cloudwatch,
            detailed_exitcode: false,
            out: None,
            markdown: None,
            saved: None,
            no_retry: args.no_retry,
        })
    }

    /// `cloud destroy`: every stack, whatever its fingerprint; no report, no server.
    pub fn destroy(settings: &Settings, args: &cli::Destroy) -> Result<Self, Error> {
        table_flag(&args.store)?;
        Ok(RunSettings {
            environment: args.environment.clone(),
            operation: Operation::Destroy,
            parallelism: args.parallelism.map(|p| p as usize),
            fail_fast: args.fail_fast,
            show: Show::new(settings, args.output, args.interactive, args.exit_on_done),
            grace: grace_period(args.grace_period)?,
            force: true,
            only: None,
            changed: changed_flag(&args.changed)?,
            rollback_on_failure: false,
            notify: !args.no_notify,
            report: None,
            junit: None,
            serve: None,
            serve_for: None,
            store: args.store.clone(),
            cloudwatch: args.cloudwatch,
            detailed_exitcode: false,
            out: None,
            markdown: None,
            saved: None,
            only_drifted: false,
            no_retry: args.no_retry,
        })
    }

    /// `cloud drift`: every stack's real infrastructure compared with what was deployed, all at
    /// once; nothing changes but each stack's health.
    pub fn drift(settings: &Settings, args: &cli::Drift) -> Result<Self, Error> {
        table_flag(&args.store)?;
        Ok(RunSettings {
            environment: args.environment.clone(),
            operation: Operation::Drift,
            parallelism: args.parallelism.map(|p| p as usize),
            fail_fast: false,
            show: Show::new(settings, args.output, args.interactive, args.exit_on_done),
            grace: grace_period(10.0)?,
            force: false,
            only: (!args.only.is_empty()).then(|| args.only.iter().cloned().collect()),
            changed: None,
            rollback_on_failure: false,
            notify: !args.no_notify,
            report: args.report.clone(),
            junit: None,
            serve: args.serve.serve.clone(),
            serve_for: args.serve.serve_for,
            store: args.store.clone(),
            cloudwatch: args.cloudwatch,
            detailed_exitcode: false,
            out: None,
            markdown: args.markdown.clone(),
            saved: None,
            only_drifted: false,
            // A drift check changes nothing: its checks are never retried.
            no_retry: true,
        })
    }

    /// `cloud plan`: a deploy's run previewed; `--all` plans what a deploy would skip as
    /// unchanged (as `--force` deploys it). No notifications: a plan changes nothing to tell.
    pub fn plan(settings: &Settings, args: &cli::Plan) -> Result<Self, Error> {
        table_flag(&args.store)?;
        Ok(RunSettings {
            environment: args.environment.clone(),
            operation: Operation::Plan,
            parallelism: args.parallelism.map(|p| p as usize),
            fail_fast: false,
            show: Show::new(settings, args.output, args.interactive, args.exit_on_done),
            grace: grace_period(10.0)?,
            force: args.all,
            only: (!args.only.is_empty()).then(|| args.only.iter().cloned().collect()),
            changed: changed_flag(&args.changed)?,
            rollback_on_failure: false,
            notify: false,
            report: args.report.clone(),
            junit: None,
            serve: args.serve.serve.clone(),
            serve_for: args.serve.serve_for,
            store: args.store.clone(),
            cloudwatch: args.cloudwatch,
            detailed_exitcode: args.detailed_exitcode,
            out: args.out.clone(),
            markdown: args.markdown.clone(),
            saved: None,
            only_drifted: false,
            // A plan changes nothing: its previews are never retried.
            no_retry: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grace_period_is_from_0_to_an_hour() {
        assert_eq!(grace_period(0.0).unwrap(), Duration::ZERO);
        assert_eq!(grace_period(0.5).unwrap(), Duration::from_millis(500));
        assert_eq!(grace_period(3600.0).unwrap(), Duration::from_secs(3600));
        for bad in [-1.0, 3600.5, f64::NAN, f64::INFINITY] {
            let e = grace_period(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            assert!(e.to_string().contains("--grace-period"), "{e}");
        }
    }
}
