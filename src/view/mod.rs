//! Terminal views. Each runs on its own thread, folds the events it receives with the one
//! reducer ([`crate::progress::Model`]) and renders from that model; none can slow the deploy.

pub mod interactive;
pub mod json;
pub mod simple;
pub mod verbose;

use std::io;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use chrono::{DateTime, Utc};

use crate::event::Event;
use crate::progress::Model;

/// Which view shows the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewKind {
    /// The seed's "Simple Progress Display" (the default on a terminal).
    Simple,
    /// Full-screen: select a stack, see its resources and logs.
    Interactive,
    /// Timestamped lines, one per change, no cursor movement (CI, pipes).
    Verbose,
    /// One event envelope per line.
    Json,
}

/// What a view may do besides drawing.
#[derive(Clone)]
pub struct Control {
    pub color: bool,
    /// Leave the interactive view as soon as the run is done.
    pub exit_on_done: bool,
    /// Asks the orchestrator to stop the run (as Ctrl-C does).
    pub cancel: crate::orchestrator::CancelHandle,
}

/// Starts the view thread; send it every event, then drop the sender and join.
pub fn spawn(kind: ViewKind, control: Control) -> (Sender<Arc<Event>>, JoinHandle<io::Result<()>>) {
    let (tx, rx) = mpsc::channel::<Arc<Event>>();
    let handle = std::thread::Builder::new()
        .name(format!("view-{kind:?}").to_lowercase())
        .spawn(move || run(kind, rx, control))
        .expect("spawning the view thread");
    (tx, handle)
}

fn run(kind: ViewKind, rx: Receiver<Arc<Event>>, control: Control) -> io::Result<()> {
    match kind {
        ViewKind::Json => json::run(rx),
        ViewKind::Verbose => verbose::run(rx, control),
        ViewKind::Simple => simple::run(rx, control),
        ViewKind::Interactive => interactive::run(rx, control),
    }
}

/// Folds events into a model that starts with the first event's deployment.
pub(crate) fn fold(model: &mut Option<Model>, event: &Event) {
    model
        .get_or_insert_with(|| Model::new(&event.deployment_id, &event.environment))
        .apply(event);
}

/// `2h 5m`, `5m 30s`, `45s`: how people read elapsed time.
pub fn format_duration(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) if s == 0 => format!("{m}m"),
        (0, _) => format!("{m}m {s}s"),
        _ if m == 0 => format!("{h}h"),
        _ => format!("{h}h {m}m"),
    }
}

/// `~10m`, `~4m 30s`: an estimate, rounded so it does not flicker.
pub fn format_eta(seconds: u64) -> String {
    let rounded = match seconds {
        0..=59 => seconds,
        60..=599 => seconds.div_ceil(30) * 30,
        _ => seconds.div_ceil(60) * 60,
    };
    format!("~{}", format_duration(rounded))
}

/// `Progress: 35% (4/12 stacks) | Elapsed: 5m 30s | ETA: ~10m`.
pub fn progress_line(model: &Model, now: DateTime<Utc>) -> String {
    let s = &model.summary;
    let mut line = format!(
        "Progress: {}% ({}/{} stacks) | Elapsed: {}",
        s.progress_percent,
        s.done(),
        s.total_stacks,
        format_duration(model.elapsed(now).round() as u64)
    );
    if !model.is_finished() {
        if let Some(eta) = model.estimate_remaining(now).filter(|&eta| eta > 0) {
            line.push_str(&format!(" | ETA: {}", format_eta(eta)));
        }
    }
    line
}

/// ANSI colours, or plain text when colour is off.
#[derive(Debug, Clone, Copy)]
pub struct Palette {
    pub enabled: bool,
}

impl Palette {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.enabled {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    pub fn green(&self, text: &str) -> String {
        self.paint("32", text)
    }
    pub fn red(&self, text: &str) -> String {
        self.paint("31", text)
    }
    pub fn yellow(&self, text: &str) -> String {
        self.paint("33", text)
    }
    pub fn cyan(&self, text: &str) -> String {
        self.paint("36", text)
    }
    pub fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }
    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_the_seed() {
        assert_eq!(format_duration(45), "45s");
        assert_eq!(format_duration(330), "5m 30s");
        assert_eq!(format_duration(600), "10m");
        assert_eq!(format_duration(7500), "2h 5m");
        assert_eq!(format_eta(270), "~4m 30s");
        assert_eq!(format_eta(581), "~10m");
        assert_eq!(format_eta(601), "~11m");
    }
}
