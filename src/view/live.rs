//! The one redraw loop of the live views (simple, interactive): fold what arrives, redraw at
//! most every [`FRAME`] (and every [`TICK`] while the run goes, so clocks move), never per
//! event; between draws, wait for events or, for the interactive view, keys.

use std::io;
use std::time::{Duration, Instant};

use crate::bus::{Empty, Inbox, Received};
use crate::event::Event;
use crate::progress::Model;

/// The shortest time between two redraws (at most 20 per second).
pub const FRAME: Duration = Duration::from_millis(50);
/// Without events, the clocks on screen still move once a second.
pub const TICK: Duration = Duration::from_secs(1);

/// What woke the loop besides events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    Nothing,
    Redraw,
    /// Leave the view.
    Quit,
}

/// A live view's screen.
pub trait Screen {
    /// Draws the model as it is now.
    fn draw(&mut self, model: Option<&Model>) -> io::Result<()>;
    /// Waits up to `wait` for something to happen: an event in `inbox`, or input.
    fn wait(&mut self, inbox: &Inbox, wait: Duration, model: Option<&Model>) -> io::Result<Wake>;
    /// Sees what was just folded into `model`: an event, or `None` for a snapshot.
    fn folded(&mut self, _event: Option<&Event>, _model: &Model) {}
    /// Once the run is over: keep showing it (until [`Wake::Quit`])?
    fn stays_open(&self, _model: Option<&Model>) -> bool {
        false
    }
}

/// Runs `screen` until the run is over (and the screen lets go); returns the final model.
pub fn run(inbox: &Inbox, screen: &mut impl Screen) -> io::Result<Option<Model>> {
    let mut model: Option<Model> = None;
    let mut closed = false;
    let mut dirty = true;
    let mut last_draw = Instant::now() - TICK;
    loop {
        if !closed {
            // Fold what is queued, but never hold a frame back long for it: until the next frame
            // is due, and at least half a frame (a wait for keys may have used the frame up, and
            // one event per frame would leave the screen seconds behind the run).
            let until = (last_draw + FRAME).max(Instant::now() + FRAME / 2);
            loop {
                match inbox.try_recv() {
                    Ok(item) => {
                        let event = match &item {
                            Received::Event(event) => Some(std::sync::Arc::clone(event)),
                            Received::Resync(_) => None,
                        };
                        item.fold_into(&mut model);
                        if let Some(m) = model.as_ref() {
                            screen.folded(event.as_deref(), m);
                        }
                        dirty = true;
                    }
                    Err(Empty::Waiting) => break,
                    Err(Empty::Closed) => {
                        closed = true;
                        dirty = true;
                        break;
                    }
                }
                if Instant::now() >= until && dirty {
                    break;
                }
            }
        }
        if closed && !screen.stays_open(model.as_ref()) {
            break;
        }
        let running = !closed && model.as_ref().is_some_and(|m| !m.is_finished());
        if running && last_draw.elapsed() >= TICK {
            dirty = true;
        }
        if dirty && last_draw.elapsed() >= FRAME {
            screen.draw(model.as_ref())?;
            last_draw = Instant::now();
            dirty = false;
        }
        let wait = if dirty {
            FRAME.saturating_sub(last_draw.elapsed())
        } else if closed {
            TICK
        } else {
            TICK.saturating_sub(last_draw.elapsed())
        };
        match screen.wait(inbox, wait, model.as_ref())? {
            Wake::Quit => break,
            Wake::Redraw => dirty = true,
            Wake::Nothing => {}
        }
    }
    Ok(model)
}
