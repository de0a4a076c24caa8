//! Owning the terminal: raw mode and the alternate screen, given back on every way out (a drop
//! guard and a panic hook).

use std::io::{self, IsTerminal, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::Duration;

use crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::{cursor, execute};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

/// Set while the terminal is in raw mode (on the alternate screen, or in the plain stream).
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Set while the alternate screen is shown. Leaving it when it is not shown would still move
/// the cursor back to where it was entered (xterm and tmux restore the cursor either way), and
/// the summary would be written over the plain stream's lines.
static ALTERNATE: AtomicBool = AtomicBool::new(false);

/// What was said on stderr while the screen was ours, to be printed once it is given back.
static HELD: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Leaves raw mode and the alternate screen and shows the cursor, then prints what was held
/// back meanwhile; does nothing when the terminal is already restored, so every way out may
/// call it.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = terminal::disable_raw_mode();
        if ALTERNATE.swap(false, Ordering::SeqCst) {
            let _ = execute!(io::stdout(), LeaveAlternateScreen);
        }
        let _ = execute!(io::stdout(), cursor::Show);
        // Taken after ACTIVE is off: a `say` that saw it on has pushed by now.
        for line in held().drain(..) {
            eprintln!("{line}");
        }
    }
}

fn held() -> MutexGuard<'static, Vec<String>> {
    HELD.lock().unwrap_or_else(|e| e.into_inner())
}

/// Says `line` on stderr — at once, or, while the interactive view owns the screen, as soon
/// as it gives it back: written over the alternate screen it would garble the view and be
/// lost with it. What a sink's thread must say while the run goes on goes through here.
pub fn say(line: &str) {
    let mut held = held();
    if ACTIVE.load(Ordering::SeqCst) {
        held.push(line.to_owned());
    } else {
        eprintln!("{line}");
    }
}

/// Restores the terminal before the panic message is printed, whichever thread panics.
fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

/// Restores the terminal when the view ends, however it ends.
pub(super) struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

pub(super) fn enter() -> io::Result<(Guard, Terminal<CrosstermBackend<Stdout>>)> {
    if !io::stdout().is_terminal() {
        return Err(io::Error::other("stdout is not a terminal"));
    }
    install_panic_hook();
    terminal::enable_raw_mode()?;
    ACTIVE.store(true, Ordering::SeqCst);
    let guard = Guard;
    enter_alternate()?;
    let terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    Ok((guard, terminal))
}

/// To the alternate screen (the full screen's), the cursor hidden.
pub(super) fn enter_alternate() -> io::Result<()> {
    if !ALTERNATE.swap(true, Ordering::SeqCst) {
        execute!(io::stdout(), EnterAlternateScreen, cursor::Hide)?;
    }
    Ok(())
}

/// Back to the terminal's own screen, its scrollback as it was, the cursor shown; raw mode
/// stays (keys are still read one by one).
pub(super) fn leave_alternate() -> io::Result<()> {
    if ALTERNATE.swap(false, Ordering::SeqCst) {
        execute!(io::stdout(), LeaveAlternateScreen, cursor::Show)?;
    }
    Ok(())
}

/// Whether the terminal is still ours (a panic elsewhere may have given it back).
pub(super) fn active() -> bool {
    ACTIVE.load(Ordering::SeqCst)
}

/// What stdin, the terminal the keys come from, says within a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Input {
    /// Something to read (or stdin is not a terminal: ask crossterm, which reads /dev/tty).
    Ready,
    /// Nothing before the time was up.
    Quiet,
    /// The terminal hung up (its window closed, its tmux session killed). crossterm would spin
    /// on it forever (it reads an endless end-of-file), so it must not be asked again.
    HungUp,
}

/// Waits up to `wait` for stdin, with poll(2) rather than crossterm, which cannot tell a
/// hang-up from input.
pub(super) fn wait_for_input(wait: Duration) -> Input {
    // SAFETY: fstat writes into the zeroed stat it is given.
    let is_char_device = unsafe {
        let mut stat: libc::stat = std::mem::zeroed();
        libc::fstat(libc::STDIN_FILENO, &mut stat) == 0
            && stat.st_mode & libc::S_IFMT == libc::S_IFCHR
    };
    if !is_char_device {
        return Input::Ready;
    }
    let mut fd = libc::pollfd {
        fd: libc::STDIN_FILENO,
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = wait.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd; poll only writes its `revents`.
    match unsafe { libc::poll(&mut fd, 1, millis) } {
        0 => Input::Quiet,
        n if n > 0 && fd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 => {
            Input::HungUp
        }
        // Input, or a signal cut the wait short (the loop comes back at once).
        _ => Input::Ready,
    }
}

/// Whether the terminal hung up, asked without waiting.
pub(super) fn hung_up() -> bool {
    wait_for_input(Duration::ZERO) == Input::HungUp
}
