//! The plain stream (`s`): the run as the verbose view's lines on the terminal's own screen,
//! so scrollback, search and copy work as in any terminal output.
//!
//! Lines are made from every event as it is folded, whichever screen is shown, and each is
//! printed once: going to the stream prints what came since the last time it was shown,
//! going back prints nothing (the lines stay in the terminal's scrollback). Toggling back and
//! forth therefore adds one heading line, never the run again.

use std::collections::VecDeque;
use std::io::{self, Write};

use crate::event::{Event, EventData};
use crate::progress::Model;
use crate::view::palette::Palette;
use crate::view::simple::summary_lines;
use crate::view::verbose::{stamp, Verbose};
use crate::words::progress_line;

/// Lines kept while the full screen is shown: the newest this many (about 1 MB), enough for a
/// terminal's scrollback.
const KEPT: usize = 10_000;

pub(super) struct Stream {
    palette: Palette,
    verbose: Verbose,
    /// Lines not printed yet.
    unsaid: VecDeque<String>,
    /// Lines dropped from `unsaid` (past [`KEPT`]) since the last print.
    dropped: usize,
    /// An event was folded: a snapshot after that means the view fell behind the run.
    seen_event: bool,
    /// The run's last event was seen (its lines say how it ended).
    seen_end: bool,
    /// Printed that the run is over (and which keys leave).
    said_done: bool,
}

impl Stream {
    pub(super) fn new(palette: Palette) -> Self {
        Stream {
            palette,
            verbose: Verbose::new(palette),
            unsaid: VecDeque::new(),
            dropped: 0,
            seen_event: false,
            seen_end: false,
            said_done: false,
        }
    }

    /// The lines of what was just folded into `model` (`None`: a snapshot, which says nothing).
    pub(super) fn folded(&mut self, event: Option<&Event>, model: &Model) {
        let Some(event) = event else {
            if self.seen_event && !self.seen_end {
                // The view caught up with a snapshot: the events in between have no lines.
                let note = "… (the view fell behind the run: some lines are not shown; `cloud logs` has them)";
                self.keep(self.palette.dim(note));
                if let Some(end) = model.end_time.filter(|_| model.is_finished()) {
                    // The run's end was among them: how it ended, as the view says at exit.
                    self.seen_end = true;
                    self.keep(String::new());
                    self.keep(progress_line(model, end));
                    for line in summary_lines(model, self.palette) {
                        self.keep(line);
                    }
                }
            }
            return;
        };
        self.seen_event = true;
        self.seen_end |= matches!(event.data, EventData::DeploymentComplete(_));
        for line in self.verbose.lines(model, event) {
            self.keep(stamp(event, line));
        }
    }

    fn keep(&mut self, line: String) {
        if self.unsaid.len() == KEPT {
            self.unsaid.pop_front();
            self.dropped += 1;
        }
        self.unsaid.push_back(line);
    }

    /// The heading printed on the way to the stream.
    pub(super) fn open(&mut self, out: &mut impl Write, model: Option<&Model>) -> io::Result<()> {
        self.said_done = model.is_some_and(Model::is_finished);
        let keys = if self.said_done {
            "done · q: exit · s: back to the full screen"
        } else {
            "s: back to the full screen · q: cancel"
        };
        write_line(
            out,
            &self.palette.dim(&format!("── plain lines · {keys} ──")),
        )
    }

    /// Prints the lines not printed yet and, once the run is over, how to leave. The terminal
    /// is in raw mode: each line ends in CR LF.
    pub(super) fn flush(&mut self, out: &mut impl Write, model: Option<&Model>) -> io::Result<()> {
        if self.dropped > 0 {
            let text = format!(
                "… {} earlier lines not kept (`cloud logs` has them)",
                self.dropped
            );
            write_line(out, &self.palette.dim(&text))?;
            self.dropped = 0;
        }
        for line in self.unsaid.drain(..) {
            write_line(out, &line)?;
        }
        if !self.said_done && model.is_some_and(Model::is_finished) {
            self.said_done = true;
            write_line(
                out,
                &self
                    .palette
                    .dim("── done · q: exit · s: back to the full screen ──"),
            )?;
        }
        out.flush()
    }
}

fn write_line(out: &mut impl Write, line: &str) -> io::Result<()> {
    write!(out, "{}\r\n", line.replace('\n', "\r\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::RunBuilder;

    /// Feeds the events `run` has that `stream` has not seen, then prints what is unsaid.
    fn shown(run: &RunBuilder, seen: &mut usize, stream: &mut Stream) -> Vec<String> {
        let mut model = None;
        for (n, event) in run.events.iter().enumerate() {
            crate::progress::fold(&mut model, event);
            if n >= *seen {
                stream.folded(Some(event), model.as_ref().unwrap());
            }
        }
        *seen = run.events.len();
        let mut out = Vec::new();
        stream.flush(&mut out, model.as_ref()).unwrap();
        let text = String::from_utf8(out).unwrap();
        text.split_terminator("\r\n").map(str::to_owned).collect()
    }

    #[test]
    fn each_line_is_printed_once_however_often_the_stream_is_shown() {
        let mut run = RunBuilder::start(&[
            ("network", 1, &[], 5.0, 1),
            ("app", 2, &["network"], 5.0, 1),
        ]);
        run.layer(1, 2, &["network"]).deploying("network", 1);
        let mut stream = Stream::new(Palette { enabled: false });
        let mut seen = 0;
        let first = shown(&run, &mut seen, &mut stream);
        assert!(
            first
                .iter()
                .any(|l| l.ends_with("Deployment started: D1BRV40-dev")),
            "{first:?}"
        );
        // Nothing new: nothing printed, however often it is asked.
        assert_eq!(shown(&run, &mut seen, &mut stream), Vec::<String>::new());
        run.at(5.0).deployed("network", 5).layer_done(1);
        let second = shown(&run, &mut seen, &mut stream);
        assert!(
            second
                .iter()
                .any(|l| l.contains("network") && l.contains("deployed")),
            "{second:?}"
        );
        assert!(
            !second.iter().any(|l| l.contains("Deployment started")),
            "{second:?}"
        );
    }

    /// The view fell behind and caught up with the final state: the lines it missed are said
    /// to be missing, and the run's end is still told.
    #[test]
    fn a_snapshot_after_the_end_tells_how_the_run_ended() {
        let mut run = RunBuilder::start(&[("network", 1, &[], 5.0, 1)]);
        run.layer(1, 1, &["network"]).deploying("network", 1);
        let mut stream = Stream::new(Palette { enabled: false });
        let mut seen = 0;
        shown(&run, &mut seen, &mut stream);
        run.at(5.0)
            .deployed("network", 5)
            .layer_done(1)
            .complete(crate::event::DeploymentState::Deployed, 5);
        stream.folded(None, &run.model());
        let mut out = Vec::new();
        stream.flush(&mut out, None).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("the view fell behind the run"), "{text}");
        assert!(text.contains("✓ Complete: D1BRV40-dev"), "{text}");
        // A snapshot at the start (a view joining a run) says nothing.
        let mut joined = Stream::new(Palette { enabled: false });
        joined.folded(None, &run.model());
        let mut out = Vec::new();
        joined.flush(&mut out, None).unwrap();
        assert!(out.is_empty());
    }
}
