//! `--interactive`: the seed's "Interactive Progress Bar" as a full-screen app (ratatui +
//! crossterm). The overall gauge, the layers, the stacks (running ones pinned on top), and for
//! the selected stack its resource tree and logs.
//!
//! [`draw`] renders a [`Model`] and the small UI state [`Ui`] at a given time, so it is tested
//! on ratatui's `TestBackend`; [`Ui::handle_key`] is the whole of the key handling. [`run`]
//! owns the terminal and restores it on every way out (a drop guard and a panic hook).

use std::io::{self, IsTerminal, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, Local, Offset, Utc};
use crossterm::event::{self as term_event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::{cursor, execute};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::{Frame, Terminal};

use super::simple::{summary_lines, FRAME};
use super::{format_duration, format_eta, progress_line, Control, Palette};
use crate::event::{
    DeploymentState, Event, LogLevel, Operation, ResourceState, SkipReason, StackState,
};
use crate::progress::{LayerState, Model, StackModel};

/// How the screen looks besides the model.
#[derive(Debug, Clone, Copy)]
pub struct Look {
    pub color: bool,
    /// The zone log times are shown in (the local one; UTC in tests).
    pub offset: FixedOffset,
}

/// What the user chose to see. Stacks are named by their index in `Model::stacks`, which
/// never changes during a run, so the selection stays on a stack while the list reorders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ui {
    pub selected: Option<usize>,
    /// The selection follows the stack that started last until the user moves it.
    pub follow: bool,
    /// First row of the stack list on screen.
    pub offset: usize,
    /// Rows of the stack list at the last draw: the page for PgUp/PgDn.
    pub list_rows: usize,
    /// The selected stack's details take the whole screen.
    pub expanded: bool,
    pub show_logs: bool,
    /// First line of the details on screen.
    pub detail_scroll: usize,
    pub detail_rows: usize,
    pub help: bool,
    /// The "cancel the deploy?" question is open.
    pub confirm: bool,
    /// The user asked to cancel; the run is stopping.
    pub cancelling: bool,
}

impl Default for Ui {
    fn default() -> Self {
        Ui {
            selected: None,
            follow: true,
            offset: 0,
            list_rows: 10,
            expanded: false,
            show_logs: true,
            detail_scroll: 0,
            detail_rows: 10,
            help: false,
            confirm: false,
            cancelling: false,
        }
    }
}

/// What a key asks of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Nothing,
    Redraw,
    /// Stop the deploy (the user confirmed).
    Cancel,
    /// Leave the view (only once the run is over).
    Quit,
}

/// Stacks in list order: running ones first (in the order they started), then failed ones,
/// then the rest in plan order.
pub fn order(model: &Model) -> Vec<usize> {
    let mut running: Vec<usize> = (0..model.stacks.len())
        .filter(|&i| model.stacks[i].status == StackState::Deploying)
        .collect();
    running.sort_by_key(|&i| (model.stacks[i].start_time, i));
    let failed = (0..model.stacks.len()).filter(|&i| model.stacks[i].status == StackState::Failed);
    let rest = (0..model.stacks.len()).filter(|&i| {
        !matches!(
            model.stacks[i].status,
            StackState::Deploying | StackState::Failed
        )
    });
    running.into_iter().chain(failed).chain(rest).collect()
}

impl Ui {
    /// The stack the details show: the user's choice, or while following, the current stack.
    fn sync(&mut self, model: &Model, order: &[usize]) {
        if self.follow {
            let current = model
                .current_stack
                .as_deref()
                .and_then(|name| model.stack_index(name));
            if current.is_some() {
                self.selected = current;
            }
        }
        if self.selected.is_none_or(|i| i >= model.stacks.len()) {
            self.selected = order.first().copied();
        }
    }

    /// Keeps the selected row on screen.
    fn scroll_to_selection(&mut self, order: &[usize]) {
        let rows = self.list_rows.max(1);
        let pos = self
            .selected
            .and_then(|s| order.iter().position(|&i| i == s))
            .unwrap_or(0);
        if pos < self.offset {
            self.offset = pos;
        } else if pos >= self.offset + rows {
            self.offset = pos + 1 - rows;
        }
        self.offset = self.offset.min(order.len().saturating_sub(rows));
    }

    fn move_by(&mut self, model: &Model, delta: isize) {
        let order = order(model);
        if order.is_empty() {
            return;
        }
        self.sync(model, &order);
        let pos = self
            .selected
            .and_then(|s| order.iter().position(|&i| i == s))
            .unwrap_or(0);
        let last = order.len() as isize - 1;
        let next = (pos as isize + delta).clamp(0, last) as usize;
        self.selected = Some(order[next]);
        self.follow = false;
        self.detail_scroll = 0;
        self.scroll_to_selection(&order);
    }

    fn scroll_details(&mut self, delta: isize) {
        self.detail_scroll = (self.detail_scroll as isize + delta).max(0) as usize;
    }

    /// One key press. `model` is `None` before the first event.
    pub fn handle_key(&mut self, key: KeyEvent, model: Option<&Model>) -> Action {
        let ctrl_c = key.modifiers.contains(KeyModifiers::CONTROL)
            && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('C'));
        let finished = model.is_some_and(Model::is_finished);
        if self.confirm {
            return match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => {
                    self.confirm = false;
                    self.cancelling = true;
                    Action::Cancel
                }
                // A second Ctrl-C means it.
                _ if ctrl_c => {
                    self.confirm = false;
                    self.cancelling = true;
                    Action::Cancel
                }
                _ => {
                    self.confirm = false;
                    Action::Redraw
                }
            };
        }
        if self.help {
            self.help = false;
            return Action::Redraw;
        }
        if ctrl_c || matches!(key.code, KeyCode::Char('q') | KeyCode::Char('Q')) {
            if finished || (model.is_none() && self.cancelling) {
                return Action::Quit;
            }
            if !self.cancelling {
                self.confirm = true;
            }
            return Action::Redraw;
        }
        let Some(model) = model else {
            return Action::Nothing;
        };
        let page = if self.expanded {
            self.detail_rows.max(2) - 1
        } else {
            self.list_rows.max(2) - 1
        } as isize;
        match key.code {
            KeyCode::Down | KeyCode::Char('j') => self.move_by(model, 1),
            KeyCode::Up | KeyCode::Char('k') => self.move_by(model, -1),
            KeyCode::Home | KeyCode::Char('g') => self.move_by(model, isize::MIN / 2),
            KeyCode::End | KeyCode::Char('G') => self.move_by(model, isize::MAX / 2),
            KeyCode::PageDown if self.expanded => self.scroll_details(page),
            KeyCode::PageUp if self.expanded => self.scroll_details(-page),
            KeyCode::PageDown => self.move_by(model, page),
            KeyCode::PageUp => self.move_by(model, -page),
            KeyCode::Enter => {
                self.expanded = !self.expanded;
                self.detail_scroll = 0;
            }
            KeyCode::Esc if self.expanded => self.expanded = false,
            KeyCode::Char('l') => self.show_logs = !self.show_logs,
            KeyCode::Char('f') => {
                self.follow = true;
                let order = order(model);
                self.sync(model, &order);
                self.scroll_to_selection(&order);
            }
            KeyCode::Char('?') => self.help = true,
            _ if finished => return Action::Quit,
            _ => return Action::Nothing,
        }
        Action::Redraw
    }
}

/// Styles, or none of the colours when colour is off.
#[derive(Clone, Copy)]
struct Paint {
    color: bool,
}

impl Paint {
    fn fg(self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }
    fn dim(self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new()
        }
    }
    fn bold(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }
    fn stack_icon(self, state: StackState) -> Span<'static> {
        let style = match state {
            StackState::Deployed => self.fg(Color::Green),
            StackState::Deploying => self.fg(Color::Cyan),
            StackState::Failed => self.fg(Color::Red),
            StackState::Blocked => self.fg(Color::Yellow),
            StackState::Pending | StackState::Skipped => self.dim(),
        };
        Span::styled(state.symbol(), style)
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn pad(text: &str, width: usize) -> String {
    let len = text.chars().count();
    if len >= width {
        text.to_owned()
    } else {
        format!("{text}{}", " ".repeat(width - len))
    }
}

fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(width.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// Draws the whole screen. Adjusts `ui` to the screen (scrolling, page sizes).
pub fn draw(
    frame: &mut Frame,
    model: Option<&Model>,
    ui: &mut Ui,
    now: DateTime<Utc>,
    look: &Look,
) {
    let paint = Paint { color: look.color };
    let area = frame.area();
    let Some(model) = model else {
        frame.render_widget(
            Paragraph::new("Waiting for the deployment to start…").style(paint.dim()),
            area,
        );
        return;
    };
    let order = order(model);
    ui.sync(model, &order);
    let [title, gauge, main, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(4),
        Constraint::Length(1),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(title_line(model, ui, paint)), title);
    frame.render_widget(Paragraph::new(gauge_line(model, gauge.width, paint)), gauge);
    if ui.expanded {
        draw_details(frame, model, ui, now, look, main);
    } else {
        // The details take what they need, up to 3/5 of the space; the lists get the rest.
        let needed = ui
            .selected
            .and_then(|i| model.stacks.get(i))
            .map_or(0, |stack| detail_lines(model, stack, ui, now, look).len())
            as u16
            + 2;
        let details_height = needed.clamp(6, (main.height * 3 / 5).max(6));
        let lists_height = main
            .height
            .saturating_sub(details_height)
            .max(5)
            .min(main.height);
        let [lists, details] =
            Layout::vertical([Constraint::Length(lists_height), Constraint::Min(0)]).areas(main);
        let layers_width = (lists.width / 4).clamp(14, 26).min(lists.width / 2);
        let [layers, stacks] =
            Layout::horizontal([Constraint::Length(layers_width), Constraint::Min(0)]).areas(lists);
        draw_layers(frame, model, ui, paint, layers);
        draw_stacks(frame, model, ui, &order, now, paint, stacks);
        if details.height > 2 {
            draw_details(frame, model, ui, now, look, details);
        }
    }
    frame.render_widget(Paragraph::new(footer_line(model, ui, now, paint)), footer);
    if ui.help {
        draw_help(frame, area);
    } else if ui.confirm {
        draw_confirm(frame, paint, area);
    }
}

fn title_line(model: &Model, ui: &Ui, paint: Paint) -> Line<'static> {
    let id = format!("{}-{}", model.deployment_id, model.environment);
    let verb = match model.operation {
        Operation::Destroy => "Destroying",
        Operation::Rollback => "Rolling back",
        Operation::Deploy => "Deploying",
    };
    let (text, style) = if model.is_finished() {
        match model.status {
            DeploymentState::Deployed => (
                format!("✓ {id} {}", done_word(model.operation)),
                paint.fg(Color::Green),
            ),
            _ if model.cancelled => (format!("✗ {id} cancelled"), paint.fg(Color::Red)),
            _ => (format!("✗ {id} failed"), paint.fg(Color::Red)),
        }
    } else if ui.cancelling || model.cancelled {
        (format!("Cancelling {id}…"), paint.fg(Color::Yellow))
    } else {
        (format!("{verb} {id}..."), Style::new())
    };
    Line::from(Span::styled(text, style.add_modifier(Modifier::BOLD)))
}

fn done_word(op: Operation) -> &'static str {
    match op {
        Operation::Destroy => "destroyed",
        Operation::Rollback => "rolled back",
        Operation::Deploy => "deployed",
    }
}

/// `━━━━━━━━━━━━━━━━━━━━━━ 35% (4/12 stacks)`.
fn gauge_line(model: &Model, width: u16, paint: Paint) -> Line<'static> {
    let s = &model.summary;
    let label = format!(
        " {}% ({}/{} stacks)",
        s.progress_percent,
        s.done(),
        s.total_stacks
    );
    let bar = usize::from(width).saturating_sub(label.chars().count());
    let filled = bar * s.progress_percent.min(100) as usize / 100;
    let color = if s.failed_stacks > 0 {
        Color::Red
    } else {
        Color::Green
    };
    let empty = if paint.color { "━" } else { "─" };
    Line::from(vec![
        Span::styled("━".repeat(filled), paint.fg(color)),
        Span::styled(empty.repeat(bar - filled), paint.dim()),
        Span::raw(label),
    ])
}

fn draw_layers(frame: &mut Frame, model: &Model, ui: &Ui, paint: Paint, area: Rect) {
    let block = Block::bordered().title(format!(" Layers ({}) ", model.layers.len()));
    let rows = usize::from(block.inner(area).height);
    let selected_layer = ui.selected.map(|i| model.stacks[i].layer);
    let focus = model
        .layers
        .iter()
        .position(|l| Some(l.number) == selected_layer)
        .or_else(|| {
            model
                .layers
                .iter()
                .position(|l| l.state == LayerState::Running)
        })
        .unwrap_or(0);
    let start = focus
        .saturating_sub(rows / 2)
        .min(model.layers.len().saturating_sub(rows));
    let w = model
        .layers
        .last()
        .map_or(1, |l| l.number.to_string().len());
    let lines: Vec<Line> = model
        .layers
        .iter()
        .skip(start)
        .take(rows)
        .map(|layer| {
            let mut done = 0;
            let mut bad = false;
            let mut running = false;
            for &i in &layer.stacks {
                match model.stacks[i].status {
                    StackState::Deployed | StackState::Skipped => done += 1,
                    StackState::Failed | StackState::Blocked => bad = true,
                    StackState::Deploying => running = true,
                    StackState::Pending => {}
                }
            }
            let state = match layer.state {
                _ if bad => StackState::Failed,
                LayerState::Done => StackState::Deployed,
                _ if running || layer.state == LayerState::Running => StackState::Deploying,
                _ => StackState::Pending,
            };
            let mut style = Style::new();
            if Some(layer.number) == selected_layer {
                style = style.add_modifier(Modifier::BOLD);
            }
            Line::from(vec![
                paint.stack_icon(state),
                Span::styled(
                    format!(" L{:<w$} {done}/{}", layer.number, layer.stacks.len()),
                    style,
                ),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// What a stack row says after the name.
fn stack_info(model: &Model, stack: &StackModel, now: DateTime<Utc>) -> String {
    match stack.status {
        StackState::Deploying => {
            let mut text = format!(
                "{} {:>2}%",
                format_duration(stack.elapsed(now) as u64),
                stack.progress_percent
            );
            if let Some(doing) = stack.message.as_ref().or(stack.resources.current.as_ref()) {
                text.push_str(&format!("  {doing}"));
            }
            text
        }
        StackState::Deployed => format_duration(
            stack
                .duration_seconds
                .unwrap_or_else(|| stack.elapsed(now) as u64),
        ),
        StackState::Failed => match &stack.error {
            Some(e) => format!("failed: {}", e.code),
            None => "failed".into(),
        },
        StackState::Skipped => match stack.skip_reason {
            Some(SkipReason::NotSelected) => "skipped (not selected)".into(),
            _ => "skipped (unchanged)".into(),
        },
        StackState::Blocked => format!(
            "blocked by {}",
            stack.blocked_by.as_deref().unwrap_or("a failed dependency")
        ),
        StackState::Pending if model.is_finished() => "not started".into(),
        StackState::Pending => "waiting".into(),
    }
}

fn draw_stacks(
    frame: &mut Frame,
    model: &Model,
    ui: &mut Ui,
    order: &[usize],
    now: DateTime<Utc>,
    paint: Paint,
    area: Rect,
) {
    let rows = usize::from(area.height.saturating_sub(2));
    ui.list_rows = rows.max(1);
    ui.scroll_to_selection(order);
    let visible = &order[ui.offset.min(order.len())..(ui.offset + rows).min(order.len())];
    let mut title = format!(" Stacks ({}", order.len());
    if model.summary.running_stacks > 0 {
        title.push_str(&format!(", {} running", model.summary.running_stacks));
    }
    title.push_str(") ");
    let mut block = Block::bordered().title(title);
    if order.len() > rows && rows > 0 {
        block = block.title_bottom(
            Line::from(format!(
                " {}-{} of {} ",
                ui.offset + 1,
                ui.offset + visible.len(),
                order.len()
            ))
            .right_aligned(),
        );
    }
    let name_width = visible
        .iter()
        .map(|&i| model.stacks[i].name.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(8, 28);
    let inner_width = usize::from(area.width.saturating_sub(2));
    let lines: Vec<Line> = visible
        .iter()
        .map(|&i| {
            let stack = &model.stacks[i];
            let info = stack_info(model, stack, now);
            let info_style = match stack.status {
                StackState::Failed => paint.fg(Color::Red),
                StackState::Blocked => paint.fg(Color::Yellow),
                StackState::Deploying => Style::new(),
                _ => paint.dim(),
            };
            let name = pad(&cut(&stack.name, name_width), name_width);
            let text = format!(" {name}  L{:<2} ", stack.layer);
            let room = inner_width.saturating_sub(text.chars().count() + 2);
            let selected = Some(i) == ui.selected;
            let mut line = Line::from(vec![
                Span::raw(if selected { "▸" } else { " " }),
                paint.stack_icon(stack.status),
                Span::raw(text),
                Span::styled(cut(&info, room), info_style),
            ]);
            if selected {
                line = line.patch_style(Style::new().add_modifier(Modifier::REVERSED));
                let used: usize = line.spans.iter().map(|s| s.content.chars().count()).sum();
                line.spans
                    .push(Span::raw(" ".repeat(inner_width.saturating_sub(used))));
            }
            line
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn resource_state(state: ResourceState) -> (&'static str, &'static str) {
    match state {
        ResourceState::Creating => ("→", "Creating"),
        ResourceState::Created => ("✓", "Created"),
        ResourceState::Updating => ("→", "Updating"),
        ResourceState::Updated => ("✓", "Updated"),
        ResourceState::Deleting => ("→", "Deleting"),
        ResourceState::Deleted => ("✓", "Deleted"),
        ResourceState::Failed => ("✗", "Failed"),
    }
}

/// The selected stack: its state, resource tree and logs.
fn detail_lines(
    model: &Model,
    stack: &StackModel,
    ui: &Ui,
    now: DateTime<Utc>,
    look: &Look,
) -> Vec<Line<'static>> {
    let paint = Paint { color: look.color };
    let mut lines: Vec<Line<'static>> = Vec::new();
    let took = format_duration(
        stack
            .duration_seconds
            .unwrap_or_else(|| stack.elapsed(now) as u64),
    );
    let resources = plural(stack.resource_list.len(), "resource");
    let status = match stack.status {
        StackState::Deploying => {
            let mut t = format!(
                "Deploying · {} elapsed",
                format_duration(stack.elapsed(now) as u64)
            );
            if let Some(left) = stack.remaining(now) {
                t.push_str(&format!(", {} remaining", format_eta(left.ceil() as u64)));
            }
            t.push_str(&format!(" · {}%", stack.progress_percent));
            t
        }
        StackState::Deployed => format!("Deployed in {took} · {resources}"),
        StackState::Failed => format!("Failed after {took}"),
        StackState::Skipped => match stack.skip_reason {
            Some(SkipReason::NotSelected) => "Skipped (not selected)".into(),
            _ => "Skipped (unchanged since the last deploy)".into(),
        },
        StackState::Blocked => format!(
            "Blocked by {}",
            stack.blocked_by.as_deref().unwrap_or("a failed dependency")
        ),
        StackState::Pending => {
            let waiting: Vec<&str> = stack
                .dependencies
                .iter()
                .filter(|d| model.stack(d).is_none_or(|s| !s.status.is_finished()))
                .map(String::as_str)
                .collect();
            if model.is_finished() {
                "Not started".into()
            } else if waiting.is_empty() {
                "Waiting for a free slot".into()
            } else {
                format!("Waiting for {}", waiting.join(", "))
            }
        }
    };
    lines.push(Line::from(vec![
        paint.stack_icon(stack.status),
        Span::raw(format!(" {status}")),
    ]));
    if let Some(error) = &stack.error {
        lines.push(Line::styled(
            format!("  {}: {}", error.code, error.message),
            paint.fg(Color::Red),
        ));
        for detail in error.details.iter().flat_map(|d| d.lines()).take(20) {
            lines.push(Line::styled(format!("  │ {detail}"), paint.dim()));
        }
    }
    if stack.status == StackState::Deploying {
        if let Some(message) = &stack.message {
            lines.push(Line::styled(format!("  {message}"), paint.dim()));
        }
    }
    if !stack.dependencies.is_empty() {
        lines.push(Line::styled(
            format!("  Depends on: {}", stack.dependencies.join(", ")),
            paint.dim(),
        ));
    }
    // The resource tree.
    let pending = stack
        .resources
        .expected
        .map_or(0, |n| n as usize)
        .saturating_sub(stack.resource_list.len());
    let pending = if stack.status.is_finished() {
        0
    } else {
        pending
    };
    let count = stack.resource_list.len() + usize::from(pending > 0);
    if count > 0 {
        lines.push(Line::raw(""));
        let name_width = stack
            .resource_list
            .iter()
            .map(|r| r.name.chars().count())
            .max()
            .unwrap_or(0)
            .max(if pending > 0 { 7 } else { 0 })
            .min(32);
        for (n, r) in stack.resource_list.iter().enumerate() {
            let branch = if n + 1 == count {
                " └─ "
            } else {
                " ├─ "
            };
            let (icon, word) = resource_state(r.status);
            let (style, timing) = match r.status {
                ResourceState::Failed => (
                    paint.fg(Color::Red),
                    match &r.error {
                        Some(e) => format!(": {}", e.message),
                        None => String::new(),
                    },
                ),
                s if s.is_finished() => (
                    paint.fg(Color::Green),
                    format!(
                        " ({})",
                        format_duration(r.duration_seconds.unwrap_or(0.0).round() as u64)
                    ),
                ),
                _ => (
                    paint.fg(Color::Cyan),
                    format!(
                        " ({} elapsed)",
                        format_duration(crate::progress::seconds_between(r.start_time, now) as u64)
                    ),
                ),
            };
            lines.push(Line::from(vec![
                Span::raw(branch),
                Span::raw(pad(&cut(&r.name, name_width), name_width)),
                Span::raw(" "),
                Span::styled(format!("{icon} {word}{timing}"), style),
                Span::styled(format!("  {}", r.type_), paint.dim()),
            ]));
        }
        if pending > 0 {
            let label = if pending == 1 {
                "1 more".to_owned()
            } else {
                format!("{pending} more")
            };
            lines.push(Line::from(vec![
                Span::raw(" └─ "),
                Span::raw(pad(&label, name_width)),
                Span::raw(" "),
                Span::styled("⏸ Pending", paint.dim()),
            ]));
        }
    }
    if !stack.outputs.is_empty() && stack.status.is_finished() {
        lines.push(Line::raw(""));
        lines.push(Line::styled("Outputs", paint.bold()));
        for (key, value) in &stack.outputs {
            let value = match value {
                serde_json::Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            lines.push(Line::raw(format!("  {key} = {value}")));
        }
    }
    if ui.show_logs && !stack.logs.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::styled("Logs", paint.bold()));
        for entry in &stack.logs {
            let clock = entry
                .timestamp
                .with_timezone(&look.offset)
                .format("%H:%M:%S");
            let style = match entry.level {
                LogLevel::Error => paint.fg(Color::Red),
                LogLevel::Warn => paint.fg(Color::Yellow),
                LogLevel::Debug => paint.dim(),
                LogLevel::Info => Style::new(),
            };
            lines.push(Line::from(vec![
                Span::styled(format!("  {clock} "), paint.dim()),
                Span::styled(entry.message.clone(), style),
            ]));
        }
    }
    lines
}

fn draw_details(
    frame: &mut Frame,
    model: &Model,
    ui: &mut Ui,
    now: DateTime<Utc>,
    look: &Look,
    area: Rect,
) {
    let Some(stack) = ui.selected.and_then(|i| model.stacks.get(i)) else {
        frame.render_widget(Block::bordered().title(" No stack "), area);
        return;
    };
    let total = model.total_layers.max(stack.layer);
    let block = Block::bordered().title(Span::styled(
        format!(" {} (Layer {}/{total}) ", stack.name, stack.layer),
        Style::new().add_modifier(Modifier::BOLD),
    ));
    let rows = usize::from(block.inner(area).height);
    ui.detail_rows = rows.max(1);
    let lines = detail_lines(model, stack, ui, now, look);
    ui.detail_scroll = ui.detail_scroll.min(lines.len().saturating_sub(rows));
    let mut block = block;
    if lines.len() > rows {
        block = block.title_bottom(
            Line::from(format!(
                " {}-{} of {} ",
                ui.detail_scroll + 1,
                (ui.detail_scroll + rows).min(lines.len()),
                lines.len()
            ))
            .right_aligned(),
        );
    }
    let visible: Vec<Line> = lines
        .into_iter()
        .skip(ui.detail_scroll)
        .take(rows)
        .collect();
    frame.render_widget(Paragraph::new(visible).block(block), area);
}

/// `Elapsed: 5m 30s | ETA: ~10m | Smart Skip: 1 stack` and the key hints.
fn footer_line(model: &Model, ui: &Ui, now: DateTime<Utc>, paint: Paint) -> Line<'static> {
    let mut text = format!("Elapsed: {}", format_duration(model.elapsed(now) as u64));
    if !model.is_finished() {
        if let Some(eta) = model.estimate_remaining(now) {
            text.push_str(&format!(" | ETA: {}", format_eta(eta)));
        }
    }
    let unchanged = model
        .stacks
        .iter()
        .filter(|s| s.skip_reason == Some(SkipReason::Unchanged))
        .count();
    text.push_str(&format!(" | Smart Skip: {}", plural(unchanged, "stack")));
    let hint = if model.is_finished() {
        Span::styled("   Done · q to exit", paint.fg(Color::Green))
    } else if ui.cancelling || model.cancelled {
        Span::styled("   Cancelling…", paint.fg(Color::Yellow))
    } else {
        Span::styled("   ? help · q cancel", paint.dim())
    };
    Line::from(vec![Span::raw(text), hint])
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

const HELP: &[(&str, &str)] = &[
    ("↑/↓  j/k", "select a stack"),
    ("PgUp/PgDn", "a page up/down (details when expanded)"),
    ("g/G", "first/last stack"),
    ("Enter", "expand the selected stack"),
    ("l", "show/hide its logs"),
    ("f", "follow the running stacks"),
    ("?", "this help"),
    ("q  Ctrl-C", "cancel the deploy (asks first)"),
];

fn draw_help(frame: &mut Frame, area: Rect) {
    let mut lines: Vec<Line> = HELP
        .iter()
        .map(|(key, what)| Line::raw(format!(" {key:<11} {what}")))
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::raw(" any key closes this help"));
    let popup = centered(area, 56, lines.len() as u16 + 2);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Keys ")),
        popup,
    );
}

fn draw_confirm(frame: &mut Frame, paint: Paint, area: Rect) {
    let lines = vec![
        Line::raw("Running stacks are interrupted and recorded as failed;"),
        Line::raw("stacks not started yet stay pending."),
        Line::raw(""),
        Line::from(vec![
            Span::styled("[y]", paint.fg(Color::Red).add_modifier(Modifier::BOLD)),
            Span::raw(" cancel the deploy   "),
            Span::styled("[n]", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(" keep going"),
        ]),
    ];
    let popup = centered(area, 60, 6);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(" Cancel the deploy? ")),
        popup,
    );
}

/// Set while the terminal is in raw mode on the alternate screen.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Leaves raw mode and the alternate screen and shows the cursor; does nothing when the
/// terminal is already restored, so every way out may call it.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = terminal::disable_raw_mode();
        let _ = execute!(io::stdout(), LeaveAlternateScreen, cursor::Show);
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
struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

fn enter() -> io::Result<(Guard, Terminal<CrosstermBackend<Stdout>>)> {
    if !io::stdout().is_terminal() {
        return Err(io::Error::other("stdout is not a terminal"));
    }
    install_panic_hook();
    terminal::enable_raw_mode()?;
    ACTIVE.store(true, Ordering::SeqCst);
    let guard = Guard;
    execute!(io::stdout(), EnterAlternateScreen, cursor::Hide)?;
    let terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    Ok((guard, terminal))
}

/// Runs the full-screen view until the run is over (and, unless `exit_on_done`, a key).
/// Without a terminal to take over, it falls back to the verbose view.
pub fn run(rx: Receiver<Arc<Event>>, control: Control) -> io::Result<()> {
    let (guard, mut terminal) = match enter() {
        Ok(entered) => entered,
        Err(_) => {
            restore();
            return super::verbose::run(rx, control);
        }
    };
    let look = Look {
        color: control.color,
        offset: Local::now().offset().fix(),
    };
    let mut model: Option<Model> = None;
    let mut ui = Ui::default();
    let mut closed = false;
    let mut dirty = true;
    let mut last_draw = Instant::now() - Duration::from_secs(1);
    loop {
        if !closed {
            let until = Instant::now() + FRAME;
            loop {
                match rx.try_recv() {
                    Ok(event) => {
                        super::fold(&mut model, &event);
                        dirty = true;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        closed = true;
                        dirty = true;
                        break;
                    }
                }
                if Instant::now() >= until {
                    break;
                }
            }
        }
        if closed {
            let finished = model.as_ref().is_some_and(Model::is_finished);
            let cancelled = model.as_ref().is_some_and(|m| m.cancelled);
            if control.exit_on_done || ui.cancelling || cancelled || !finished {
                break;
            }
        }
        let running = !closed && model.as_ref().is_some_and(|m| !m.is_finished());
        if running && last_draw.elapsed() >= Duration::from_secs(1) {
            dirty = true;
        }
        if dirty && last_draw.elapsed() >= FRAME {
            if !ACTIVE.load(Ordering::SeqCst) {
                // A panic elsewhere gave the terminal back; stop drawing on it.
                break;
            }
            terminal.draw(|f| draw(f, model.as_ref(), &mut ui, Utc::now(), &look))?;
            last_draw = Instant::now();
            dirty = false;
        }
        let wait = if dirty {
            FRAME.saturating_sub(last_draw.elapsed())
        } else if closed {
            Duration::from_secs(1)
        } else {
            FRAME
        };
        if term_event::poll(wait)? {
            match term_event::read()? {
                term_event::Event::Key(key) if key.kind != KeyEventKind::Release => {
                    match ui.handle_key(key, model.as_ref()) {
                        Action::Quit => break,
                        Action::Cancel => {
                            control.cancel.cancel();
                            dirty = true;
                        }
                        Action::Redraw => dirty = true,
                        Action::Nothing => {}
                    }
                }
                term_event::Event::Resize(_, _) => {
                    terminal.autoresize()?;
                    dirty = true;
                }
                _ => {}
            }
        }
    }
    drop(terminal);
    drop(guard);
    if let Some(m) = model.as_ref() {
        use std::io::Write;
        let palette = Palette {
            enabled: control.color,
        };
        let mut out = io::stdout().lock();
        writeln!(
            out,
            "{}",
            progress_line(m, m.end_time.unwrap_or_else(Utc::now))
        )?;
        for line in summary_lines(m, palette) {
            writeln!(out, "{line}")?;
        }
        out.flush()?;
    }
    Ok(())
}
