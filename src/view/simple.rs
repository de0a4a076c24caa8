//! The default view on a terminal: the seed's "Simple Progress Display".
//!
//! A block per layer that started, a line per stack, and the progress line at the bottom,
//! redrawn in place (indicatif). Once a layer and every layer before it are done, the layer
//! is printed for good and scrolls away with the terminal; the final summary stays after exit.
//!
//! [`Simple::frame`] is a pure function of the model (plus what was already printed), so the
//! layout is tested without a terminal; [`run`] only moves its output to the screen.

use std::io::{self, Write};
use std::time::Duration;

use chrono::{DateTime, Utc};
use console::{truncate_str, Term};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

use super::live::{self, Screen, Wake};
use super::{Control, Palette};
use crate::bus::Inbox;
use crate::event::{DeploymentState, DriftStatus, Operation, StackState};
use crate::progress::{LayerModel, LayerState, Model, StackModel};
use crate::words::{
    self, blocker, counts, format_duration, format_eta, header, pending_reason, progress_line,
    skip_reason, stopping_line, Stopping,
};

/// The screen the view draws on.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub width: usize,
    pub height: usize,
    pub palette: Palette,
}

/// One redraw: lines printed for good above the live block, and the live block itself.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Frame {
    pub scrollback: Vec<String>,
    pub live: Vec<String>,
}

/// What was already printed for good.
#[derive(Debug, Default)]
pub struct Simple {
    /// The `Deploying …` header.
    header: bool,
    /// Layers (positions in `Model::layers`) printed as scrollback.
    flushed: usize,
}

impl Simple {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next frame: scrollback not printed yet (and now counted as printed) and the live block.
    pub fn frame(&mut self, model: &Model, now: DateTime<Utc>, opts: &Options) -> Frame {
        let mut frame = Frame::default();
        let fit = |line: String| fit(line, opts.width);
        if !self.header && model.start_time.is_some() {
            self.header = true;
            frame.scrollback.push(fit(header(model)));
            frame.scrollback.push(String::new());
        }
        while let Some(layer) = model.layers.get(self.flushed) {
            if layer.state != LayerState::Done {
                break;
            }
            frame.scrollback.extend(
                layer_lines(model, layer, now, opts.palette)
                    .into_iter()
                    .map(fit),
            );
            frame.scrollback.push(String::new());
            self.flushed += 1;
        }
        // The progress line and the blank line above it always show (and a stop's line, under it).
        let stopping = Stopping::of(model).filter(|_| !model.is_finished());
        let waiting_on = words::waiting_on(model, now);
        let reserved = 2 + usize::from(stopping.is_some()) + usize::from(waiting_on.is_some());
        let budget = opts.height.saturating_sub(reserved).max(3);
        frame.live = live_lines(
            model,
            &model.layers[self.flushed..],
            now,
            opts.palette,
            budget,
        )
        .into_iter()
        .map(fit)
        .collect();
        if !frame.live.is_empty() {
            frame.live.push(String::new());
        }
        frame.live.push(fit(progress_line(model, now)));
        if let Some(waiting_on) = waiting_on {
            frame.live.push(fit(opts.palette.dim(&waiting_on)));
        }
        if let Some(stopping) = stopping {
            frame
                .live
                .push(fit(opts.palette.yellow(&stopping_line(model, stopping))));
        }
        frame
    }

    /// Everything left to print once the run is over: the layers still on the live block,
    /// the progress line and the summary. Nothing is redrawn after this.
    pub fn finish(&mut self, model: &Model, now: DateTime<Utc>, opts: &Options) -> Vec<String> {
        let mut lines = self.frame(model, now, opts).scrollback;
        let fit = |line: String| fit(line, opts.width);
        for layer in &model.layers[self.flushed..] {
            if shown(model, layer) {
                lines.extend(
                    layer_lines(model, layer, now, opts.palette)
                        .into_iter()
                        .map(fit),
                );
                lines.push(String::new());
            }
        }
        self.flushed = model.layers.len();
        lines.push(fit(progress_line(model, now)));
        lines.extend(summary_lines(model, opts.palette));
        lines
    }
}

/// The whole screen as a user scrolling back would see it: every scrollback line, then the
/// live block. For tests and snapshots.
pub fn screen(model: &Model, now: DateTime<Utc>, opts: &Options) -> String {
    let frame = Simple::new().frame(model, now, opts);
    let mut text = frame.scrollback.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(&frame.live.join("\n"));
    text
}

fn fit(line: String, width: usize) -> String {
    if console::measure_text_width(&line) <= width {
        line
    } else {
        truncate_str(&line, width, "…").into_owned()
    }
}

/// A layer is on screen once it started or one of its stacks moved (e.g. got blocked).
fn shown(model: &Model, layer: &LayerModel) -> bool {
    layer.state != LayerState::Pending
        || layer
            .stacks
            .iter()
            .any(|&i| model.stacks[i].status != StackState::Pending)
}

/// `Layer 3/5: database-rds, storage` (the names are cut to the width later).
fn layer_header(model: &Model, layer: &LayerModel, palette: Palette) -> String {
    let names: Vec<&str> = layer
        .stacks
        .iter()
        .take(64)
        .map(|&i| model.stacks[i].name.as_str())
        .collect();
    let mut list = names.join(", ");
    if layer.stacks.len() > names.len() {
        list.push_str(&format!(", … ({} stacks)", layer.stacks.len()));
    }
    let total = model.total_layers.max(layer.number);
    palette.bold(&format!("Layer {}/{}: {list}", layer.number, total))
}

/// Every line of a layer: its header and one or two lines per stack.
pub fn layer_lines(
    model: &Model,
    layer: &LayerModel,
    now: DateTime<Utc>,
    palette: Palette,
) -> Vec<String> {
    let mut lines = vec![layer_header(model, layer, palette)];
    for &i in &layer.stacks {
        lines.extend(stack_lines(model, &model.stacks[i], now, palette));
    }
    lines
}

/// `✓ network (2m)`, `→ database-rds (45s elapsed, ~1m remaining)` and its message, …
pub fn stack_lines(
    model: &Model,
    stack: &StackModel,
    now: DateTime<Utc>,
    p: Palette,
) -> Vec<String> {
    let name = &stack.name;
    let took = || {
        format_duration(
            stack
                .duration_seconds
                .unwrap_or_else(|| stack.elapsed(now) as u64),
        )
    };
    match stack.status {
        StackState::Deployed if stack.drift.is_some() => {
            let drift = stack.drift.as_deref().expect("matched");
            let found = format!("{name} ({}): {}", took(), words::drift_found(drift));
            let mut lines = vec![match drift.status {
                Some(DriftStatus::Drifted) => format!("  {} {}", p.yellow("⚠"), p.yellow(&found)),
                Some(DriftStatus::Unknown) => format!("  {} {}", p.dim("?"), p.dim(&found)),
                _ => format!("  {} {found}", p.green(StackState::Deployed.symbol())),
            }];
            for r in drift.resources.iter().take(5) {
                lines.push(format!("    {}", p.yellow(&words::drifted_resource(r))));
            }
            if drift.resources.len() > 5 {
                let more = drift.resources.len() - 5;
                lines.push(format!("    {}", p.dim(&format!("… {more} more"))));
            }
            lines
        }
        StackState::Deployed => match stack.plan.as_deref() {
            Some(plan) => {
                let text = format!("{name} ({}): {}", took(), words::stack_plan(plan));
                let text = if plan.destructive() {
                    p.red(&text)
                } else {
                    text
                };
                let mut lines = vec![format!(
                    "  {} {text}",
                    p.green(StackState::Deployed.symbol())
                )];
                if !plan.provisional.is_empty() {
                    lines.push(format!(
                        "    {}",
                        p.yellow(&words::provisional(&plan.provisional))
                    ));
                }
                lines
            }
            None => vec![format!(
                "  {} {name} ({})",
                p.green(StackState::Deployed.symbol()),
                took()
            )],
        },
        StackState::Deploying => {
            let mut head = format!("{} elapsed", format_duration(stack.elapsed(now) as u64));
            if let Some(over) = words::over_usual(stack, now) {
                head.push_str(&format!(", {over}"));
            }
            let left = model.stack_left(stack, now);
            // A plan's estimate would be its deploy's: none rather than a wrong one.
            if let Some(left) = left.filter(|_| !model.operation.changes_nothing()) {
                head.push_str(&format!(", {} remaining", format_eta(left)));
            }
            let mut lines = vec![format!(
                "  {} {name} ({head})",
                p.cyan(StackState::Deploying.symbol())
            )];
            if let Some(doing) = words::doing_now(stack, now) {
                lines.push(format!("    {}", p.dim(&doing)));
            }
            lines
        }
        StackState::Pending if stack.rolled_back => vec![format!(
            "  {} {}",
            p.yellow("↺"),
            p.dim(&format!("{name} (rolled back)"))
        )],
        StackState::Pending => {
            let why =
                words::waiting_for(model, stack).unwrap_or_else(|| pending_reason(model).into());
            vec![format!(
                "  {} {}",
                p.dim(StackState::Pending.symbol()),
                p.dim(&format!("{name} ({why})"))
            )]
        }
        StackState::Failed => {
            let mut lines = vec![format!(
                "  {} {name} ({})",
                p.red(StackState::Failed.symbol()),
                took()
            )];
            if let Some(error) = &stack.error {
                lines.push(format!(
                    "    {}",
                    p.red(&format!("{}: {}", error.code, error.message))
                ));
            }
            lines
        }
        StackState::Skipped if model.operation == Operation::Plan => {
            let why = words::would_skip(stack.skip_reason);
            vec![format!(
                "  {} {}",
                p.dim(StackState::Skipped.symbol()),
                p.dim(&format!("{name} ({why})"))
            )]
        }
        StackState::Skipped => {
            let why = skip_reason(stack.skip_reason);
            vec![format!(
                "  {} {}",
                p.dim(StackState::Skipped.symbol()),
                p.dim(&format!("{name} (skipped: {why})"))
            )]
        }
        StackState::Blocked => vec![format!(
            "  {} {name} (blocked by {})",
            p.yellow(StackState::Blocked.symbol()),
            blocker(stack)
        )],
    }
}

/// The layers that are not in scrollback yet, in at most `budget` lines: in full when they fit,
/// otherwise running and failed stacks by name and the rest counted.
fn live_lines(
    model: &Model,
    layers: &[LayerModel],
    now: DateTime<Utc>,
    p: Palette,
    budget: usize,
) -> Vec<String> {
    let layers: Vec<&LayerModel> = layers.iter().filter(|l| shown(model, l)).collect();
    let mut full = Vec::new();
    for (n, layer) in layers.iter().enumerate() {
        if n > 0 {
            full.push(String::new());
        }
        full.extend(layer_lines(model, layer, now, p));
        if full.len() > budget {
            break;
        }
    }
    if full.len() <= budget {
        return full;
    }
    let mut compact = Vec::new();
    for layer in layers {
        compact.push(layer_header(model, layer, p));
        let mut counts = [0usize; 4];
        for &i in &layer.stacks {
            let stack = &model.stacks[i];
            match stack.status {
                StackState::Deploying | StackState::Failed => {
                    compact.extend(stack_lines(model, stack, now, p))
                }
                StackState::Deployed => counts[0] += 1,
                StackState::Skipped => counts[1] += 1,
                StackState::Blocked => counts[2] += 1,
                StackState::Pending => counts[3] += 1,
            }
            if compact.len() > budget {
                break;
            }
        }
        let tally: Vec<String> = [
            (
                counts[0],
                p.green(StackState::Deployed.symbol()),
                "deployed",
            ),
            (counts[1], p.dim(StackState::Skipped.symbol()), "skipped"),
            (counts[2], p.yellow(StackState::Blocked.symbol()), "blocked"),
            (counts[3], p.dim(StackState::Pending.symbol()), "waiting"),
        ]
        .into_iter()
        .filter(|(n, _, _)| *n > 0)
        .map(|(n, icon, what)| format!("{icon} {n} {what}"))
        .collect();
        if !tally.is_empty() {
            compact.push(format!("  {}", tally.join(" · ")));
        }
        if compact.len() > budget {
            break;
        }
    }
    if compact.len() > budget {
        let running = model.summary.running_stacks;
        compact.truncate(budget.saturating_sub(1));
        compact.push(p.dim(&format!("  … ({running} running in all)")));
    }
    compact
}

/// The last lines of a run: `✓ Complete: D1BRV40-dev in 5m 30s (11 deployed, 1 skipped)`,
/// or what failed and what it blocked.
pub fn summary_lines(model: &Model, p: Palette) -> Vec<String> {
    if !model.is_finished() {
        return Vec::new();
    }
    let id = format!("{}-{}", model.deployment_id, model.environment);
    let took = format_duration(model.metrics.duration_seconds);
    let counts = counts(model);
    let mut lines = Vec::new();
    if model.status == DeploymentState::Deployed {
        lines.push(p.green(&format!("✓ Complete: {id} in {took} ({counts})")));
    } else {
        let why = if model.cancelled {
            "Cancelled"
        } else {
            "Failed"
        };
        lines.push(p.red(&format!("✗ {why}: {id} after {took} ({counts})")));
        for stack in model
            .stacks
            .iter()
            .filter(|s| s.status == StackState::Failed)
            .take(20)
        {
            if let Some(err) = &stack.error {
                lines.push(p.red(&format!(
                    "  ✗ {} (layer {}): {}: {}",
                    stack.name, stack.layer, err.code, err.message
                )));
            }
        }
    }
    let ended = model.end_time.unwrap_or_default();
    lines.extend(crate::timing::summary_lines(model, ended));
    if model.operation == Operation::Plan {
        lines.push(String::new());
        lines.extend(crate::view::plan_table::plan_summary(model, p));
    }
    if model.operation == Operation::Drift {
        let text = format!("Drift: {}", words::drift_totals(model));
        lines.push(match model.drift_totals.drifted {
            0 => p.green(&text),
            _ => p.yellow(&text),
        });
    }
    lines
}

/// The terminal, two columns narrower than it is. indicatif pads the last line of the live
/// block to the full width, leaving the cursor in the wrap position: the `^C` the terminal
/// echoes on Ctrl-C would then start a new line and leave a stale line above the block.
///
/// indicatif ends every line by padding it to the width it was told, relying on the terminal
/// to wrap; two columns short of the edge nothing wraps, so the line break is written here:
/// after a line's padding, the next write starts with `\r\n` (a flush or a cursor move, which
/// follow the block's last line, cancel it).
#[derive(Debug)]
struct Margin(Term, std::sync::atomic::AtomicBool);

impl Margin {
    fn new(term: Term) -> Self {
        Margin(term, std::sync::atomic::AtomicBool::new(false))
    }
    fn width(&self) -> u16 {
        self.0.size().1.saturating_sub(2).max(20)
    }
    fn line_ended(&self, ended: bool) {
        self.1.store(ended, std::sync::atomic::Ordering::Relaxed);
    }
    fn take_line_end(&self) -> bool {
        self.1.swap(false, std::sync::atomic::Ordering::Relaxed)
    }
}

impl TermLike for Margin {
    fn width(&self) -> u16 {
        Margin::width(self)
    }
    fn height(&self) -> u16 {
        self.0.size().0
    }
    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        self.line_ended(false);
        self.0.move_cursor_up(n)
    }
    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        self.line_ended(false);
        self.0.move_cursor_down(n)
    }
    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        self.line_ended(false);
        self.0.move_cursor_right(n)
    }
    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        self.line_ended(false);
        self.0.move_cursor_left(n)
    }
    fn write_line(&self, s: &str) -> io::Result<()> {
        self.line_ended(false);
        self.0.write_line(s)
    }
    fn write_str(&self, s: &str) -> io::Result<()> {
        if s.is_empty() {
            // Empty padding after a line of full width: that line is done too.
            self.line_ended(true);
            return Ok(());
        }
        if self.take_line_end() {
            self.0.write_str("\r\n")?;
        }
        self.0.write_str(s)?;
        // A run of spaces is indicatif's padding: the line is done.
        self.line_ended(s.bytes().all(|b| b == b' '));
        Ok(())
    }
    fn clear_line(&self) -> io::Result<()> {
        self.line_ended(false);
        self.0.clear_line()
    }
    fn flush(&self) -> io::Result<()> {
        self.line_ended(false);
        self.0.flush()
    }
}

fn options(term: &Margin, control: &Control) -> Options {
    Options {
        width: usize::from(term.width()),
        height: usize::from(term.0.size().0.max(5)),
        palette: control.palette,
    }
}

/// The simple view on a terminal: the live block drawn by indicatif, finished layers printed
/// above it for good.
struct SimpleScreen {
    bar: ProgressBar,
    term: Margin,
    control: Control,
    view: Simple,
}

impl Screen for SimpleScreen {
    fn draw(&mut self, model: Option<&Model>) -> io::Result<()> {
        let Some(m) = model else { return Ok(()) };
        let opts = options(&self.term, &self.control);
        let frame = self.view.frame(m, self.control.clock.now(), &opts);
        // The new block first: `suspend` draws the bar again under the lines it prints, and
        // the old block (with the layers just printed) drawn there would scroll the screen by
        // its height, then shrink to the new one and leave blank lines under it.
        self.bar.set_message(frame.live.join("\n"));
        if !frame.scrollback.is_empty() {
            self.bar.suspend(|| print_lines(&frame.scrollback))?;
        }
        Ok(())
    }

    fn wait(&mut self, inbox: &Inbox, wait: Duration, _model: Option<&Model>) -> io::Result<Wake> {
        inbox.wait(wait);
        Ok(Wake::Nothing)
    }
}

/// Draws the run until it is over, then prints the final state.
pub fn run(inbox: &Inbox, control: &Control) -> io::Result<()> {
    let stdout = Term::buffered_stdout();
    let target = if stdout.is_term() {
        ProgressDrawTarget::term_like_with_hz(Box::new(Margin::new(stdout.clone())), 40)
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(None, target);
    bar.set_style(ProgressStyle::with_template("{msg}").expect("a valid template"));
    let mut screen = SimpleScreen {
        bar,
        term: Margin::new(stdout),
        control: control.clone(),
        view: Simple::new(),
    };
    let model = live::run(inbox, &mut screen)?;
    screen.bar.finish_and_clear();
    let printed = match model.as_ref() {
        Some(m) => {
            let now = m.end_time.unwrap_or_else(|| screen.control.clock.now());
            let lines = screen
                .view
                .finish(m, now, &options(&screen.term, &screen.control));
            print_lines(&lines)
        }
        None => Ok(()),
    };
    super::let_go(model);
    printed
}

fn print_lines(lines: &[String]) -> io::Result<()> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    for line in lines {
        writeln!(out, "{line}")?;
    }
    out.flush()
}
