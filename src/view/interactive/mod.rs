//! `--interactive`: the seed's "Interactive Progress Bar" as a full-screen app (ratatui +
//! crossterm). The overall gauge, the layers, the stacks (failed, running and pending ones
//! first; the critical path marked; filtered by name), and for the selected stack its resource
//! tree and logs — or, at a key, the run as plain lines ([`stream`]).
//!
//! [`draw`] renders a [`Model`] and the small UI state [`Ui`] at a given time, so it is tested
//! on ratatui's `TestBackend`; [`Ui::handle_key`] is the whole of the key handling; [`run`]
//! drives them on the real terminal, which [`terminal`] gives back on every way out.

mod render;
mod state;
mod stream;
mod terminal;

use std::io::{self, Stdout, Write};
use std::time::Duration;

use chrono::{Local, Offset};
use crossterm::event::{self as term_event, KeyEventKind};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::Terminal;

pub use render::{draw, Look};
pub use state::{order, visible, Action, Ui};
use stream::Stream;
use terminal::Input;
pub use terminal::{restore, say};

use super::live::{self, Screen, Wake, FRAME};
use super::simple::summary_lines;
use super::Control;
use crate::bus::Inbox;
use crate::event::Event;
use crate::progress::Model;
use crate::words::progress_line;

struct FullScreen {
    terminal: Terminal<CrosstermBackend<Stdout>>,
    ui: Ui,
    look: Look,
    control: Control,
    stream: Stream,
}

impl FullScreen {
    /// Goes to the screen `ui.stream` now asks for: the plain stream (the terminal's own
    /// screen, a heading, then the lines since it was last shown) or back to the full screen.
    fn switch(&mut self, model: Option<&Model>) -> io::Result<()> {
        if self.ui.stream {
            terminal::leave_alternate()?;
            let mut out = io::stdout().lock();
            self.stream.open(&mut out, model)?;
            self.stream.flush(&mut out, model)
        } else {
            terminal::enter_alternate()?;
            // Drawn afresh: the terminal may have been resized meanwhile, and the screen holds
            // nothing ratatui knows of.
            self.terminal.autoresize()?;
            self.terminal.clear()
        }
    }
}

impl Screen for FullScreen {
    fn draw(&mut self, model: Option<&Model>) -> io::Result<()> {
        if !terminal::active() {
            // A panic elsewhere gave the terminal back; stop drawing on it.
            return Err(io::Error::other("the terminal was given back"));
        }
        if self.ui.stream {
            return self.stream.flush(&mut io::stdout().lock(), model);
        }
        let (ui, look) = (&mut self.ui, &self.look);
        let (now, mark) = (self.control.clock.now(), self.control.clock.mark());
        self.terminal.draw(|f| {
            draw(f, model, ui, now, look);
            // A replay says so at the right end of the title line.
            if let Some(mark) = mark {
                let area = f.area();
                let width = (mark.chars().count() as u16).min(area.width);
                let at = Rect::new(area.width - width, 0, width, area.height.min(1));
                f.render_widget(ratatui::widgets::Paragraph::new(mark), at);
            }
        })?;
        Ok(())
    }

    fn wait(&mut self, _inbox: &Inbox, wait: Duration, model: Option<&Model>) -> io::Result<Wake> {
        // Keys are read here; events are picked up by the loop at least every frame.
        let wait = wait.min(FRAME);
        let wait = match terminal::wait_for_input(wait) {
            Input::Quiet => Duration::ZERO,
            Input::Ready => wait,
            Input::HungUp => {
                // Nobody to read keys from: let the loop fold events until the run is over.
                std::thread::sleep(wait);
                return Ok(Wake::Nothing);
            }
        };
        // Zero after a quiet wait: crossterm still reports a resize (SIGWINCH) at once.
        if !term_event::poll(wait)? {
            return Ok(Wake::Nothing);
        }
        Ok(match term_event::read()? {
            term_event::Event::Key(key) if key.kind != KeyEventKind::Release => {
                match self.ui.handle_key(key, model) {
                    Action::Quit => Wake::Quit,
                    Action::Cancel => {
                        // The run then says it stops (`deployment_cancelling`), and the model shows it.
                        (self.control.cancel).stop_for(crate::event::StopReason::Interrupt);
                        Wake::Redraw
                    }
                    Action::Force => {
                        self.control.cancel.force();
                        Wake::Redraw
                    }
                    Action::Stream => {
                        self.switch(model)?;
                        Wake::Redraw
                    }
                    Action::Redraw => Wake::Redraw,
                    Action::Nothing => Wake::Nothing,
                }
            }
            // The plain stream is the terminal's to wrap (a resize there would clear it).
            term_event::Event::Resize(_, _) if self.ui.stream => Wake::Nothing,
            term_event::Event::Resize(_, _) => {
                self.terminal.autoresize()?;
                Wake::Redraw
            }
            _ => Wake::Nothing,
        })
    }

    /// Every event makes its plain lines, whichever screen is shown.
    fn folded(&mut self, event: Option<&Event>, model: &Model) {
        self.stream.folded(event, model);
    }

    /// After a run that ended by itself, the final state stays until a key (so a failure can
    /// be read), unless `--exit-on-done` — or a signal (SIGTERM, the terminal closing) says to
    /// go, or the terminal is gone.
    fn stays_open(&self, model: Option<&Model>) -> bool {
        let finished = model.is_some_and(Model::is_finished);
        let cancelled = model.is_some_and(|m| m.cancelled || m.stop_asked());
        finished
            && !cancelled
            && !self.control.exit_on_done
            && !self.control.cancel.is_cancelled()
            && !terminal::hung_up()
    }
}

/// Runs the full-screen view until the run is over (and, unless `exit_on_done`, a key).
/// Without a terminal to take over, it falls back to the verbose view.
pub fn run(inbox: &Inbox, control: &Control) -> io::Result<()> {
    let (guard, terminal) = match terminal::enter() {
        Ok(entered) => entered,
        Err(_) => {
            restore();
            return super::verbose::run(inbox, control);
        }
    };
    let mut screen = FullScreen {
        terminal,
        ui: Ui::default(),
        look: Look {
            color: control.palette.enabled,
            offset: Local::now().offset().fix(),
        },
        control: control.clone(),
        stream: Stream::new(control.palette),
    };
    let model = live::run(inbox, &mut screen);
    // Left in the plain stream: its last lines, and no summary (the lines ended with the run's).
    let streaming = screen.ui.stream;
    if streaming {
        screen.stream.flush(&mut io::stdout().lock(), None)?;
    }
    drop(screen);
    drop(guard);
    if streaming {
        return model.map(super::let_go);
    }
    let model = model?;
    if let Some(m) = model.as_ref() {
        let mut out = io::stdout().lock();
        writeln!(
            out,
            "{}",
            progress_line(m, m.end_time.unwrap_or_else(|| control.clock.now()))
        )?;
        for line in summary_lines(m, control.palette) {
            writeln!(out, "{line}")?;
        }
        out.flush()?;
    }
    super::let_go(model);
    Ok(())
}
