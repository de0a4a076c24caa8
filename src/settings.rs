//! The command line and the environment, decided once: which view, colour or not, whether
//! stdout is a terminal, CI. Everything below reads these values, never the environment.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::cli::{ColorChoice, Global, Output};

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
