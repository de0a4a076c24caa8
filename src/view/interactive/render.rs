//! Drawing the interactive view: a pure function of the model, the UI state and the time,
//! tested on ratatui's `TestBackend`.

use chrono::{DateTime, FixedOffset, Utc};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::state::{visible, Ui};
use crate::event::{DeploymentState, LogLevel, PlanAction, ResourceState, SkipReason, StackState};
use crate::progress::{LayerState, Model, StackModel};
use crate::view::palette::{Palette, Role};
use crate::words::{self, format_duration, format_eta, plural};

/// How the screen looks besides the model.
#[derive(Debug, Clone, Copy)]
pub struct Look {
    pub color: bool,
    /// The zone log times are shown in (the local one; UTC in tests).
    pub offset: FixedOffset,
}

/// A stack's state mark in its colour.
fn stack_icon(paint: Palette, state: StackState) -> Span<'static> {
    Span::styled(state.symbol(), paint.style(Role::of(state)))
}

/// A stack's mark: its state's, or `⚠` (a warning's colour) when a drift check found it drifted.
fn stack_mark(paint: Palette, stack: &StackModel) -> Span<'static> {
    if is_drifted(stack) {
        return Span::styled("⚠", paint.style(Role::Warn));
    }
    stack_icon(paint, stack.status)
}

fn is_drifted(stack: &StackModel) -> bool {
    stack
        .drift
        .as_ref()
        .is_some_and(|d| d.status == Some(crate::event::DriftStatus::Drifted))
}

/// `waiting for …` as the start of a sentence.
fn upper_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_uppercase().chain(chars).collect::<String>()
    })
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
    let paint = Palette::new(look.color);
    let area = frame.area();
    let Some(model) = model else {
        frame.render_widget(
            Paragraph::new("Waiting for the deployment to start…").style(paint.style(Role::Dim)),
            area,
        );
        return;
    };
    let order = visible(model, ui);
    ui.sync(model, &order);
    let [title, gauge, main, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(4),
        Constraint::Length(1),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(title_line(model, now, paint)), title);
    frame.render_widget(Paragraph::new(gauge_line(model, gauge.width, paint)), gauge);
    if ui.expanded {
        draw_details(frame, model, ui, now, look, main);
    } else {
        // The details take what they need, up to 3/5 of the space; the lists get the rest.
        let needed = ui
            .selected
            .and_then(|i| model.stacks.get(i))
            .map_or(0, |stack| {
                let lines = detail_lines(model, stack, ui, now, look);
                wrap(lines, usize::from(main.width.saturating_sub(2))).len()
            }) as u16
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
    let footer_text = if ui.typing {
        filter_line(ui, paint)
    } else {
        footer_line(model, now, paint)
    };
    frame.render_widget(Paragraph::new(footer_text), footer);
    if ui.help {
        draw_help(frame, area);
    } else if ui.confirm {
        draw_confirm(frame, paint, area);
    }
}

/// The run's state, and what it waits on (`Waiting on: a → b (ETA ~4m)`).
fn title_line(model: &Model, now: DateTime<Utc>, paint: Palette) -> Line<'static> {
    let id = format!("{}-{}", model.deployment_id, model.environment);
    let verb = words::doing(model.operation);
    let (text, style) = if model.is_finished() {
        match model.status {
            DeploymentState::Deployed => (
                format!("✓ {id} {}", words::done(model.operation)),
                paint.style(Role::Ok),
            ),
            _ if model.cancelled => (format!("✗ {id} cancelled"), paint.style(Role::Fail)),
            _ => (format!("✗ {id} failed"), paint.style(Role::Fail)),
        }
    } else if model.stop_asked() || model.cancelled {
        (format!("Cancelling {id}…"), paint.style(Role::Warn))
    } else {
        (format!("{verb} {id}..."), Style::new())
    };
    let mut line = Line::from(Span::styled(text, style.add_modifier(Modifier::BOLD)));
    if let Some(waiting_on) = words::waiting_on(model, now) {
        line.spans.push(Span::raw("   "));
        line.spans
            .push(Span::styled(waiting_on, paint.style(Role::Active)));
    }
    line
}

/// `━━━━━━━━━━━━━━━━━━━━━━ 35% (4/12 stacks deployed)`.
fn gauge_line(model: &Model, width: u16, paint: Palette) -> Line<'static> {
    let s = &model.summary;
    // The same figure and words as every view.
    let progress = model.progress();
    let percent = progress.percent;
    let label = format!(" {}", words::progress(&progress));
    let bar = usize::from(width).saturating_sub(label.chars().count());
    let filled = bar * percent.min(100) as usize / 100;
    let color = if s.failed_stacks > 0 {
        Role::Fail
    } else {
        Role::Ok
    };
    let empty = if paint.enabled { "━" } else { "─" };
    Line::from(vec![
        Span::styled("━".repeat(filled), paint.style(color)),
        Span::styled(empty.repeat(bar - filled), paint.style(Role::Dim)),
        Span::raw(label),
    ])
}

fn draw_layers(frame: &mut Frame, model: &Model, ui: &Ui, paint: Palette, area: Rect) {
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
                stack_icon(paint, state),
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
            if let Some(over) = words::over_usual(stack, now) {
                text.push_str(&format!("  {over}"));
            }
            if let Some(doing) = words::doing_now(stack, now) {
                text.push_str(&format!("  {doing}"));
            }
            text
        }
        StackState::Deployed if stack.drift.is_some() => stack
            .drift
            .as_deref()
            .map(words::drift_found)
            .unwrap_or_default(),
        StackState::Deployed if stack.plan.is_some() => stack
            .plan
            .as_deref()
            .map(words::stack_plan)
            .unwrap_or_default(),
        StackState::Deployed => format_duration(
            stack
                .duration_seconds
                .unwrap_or_else(|| stack.elapsed(now) as u64),
        ),
        StackState::Skipped if model.operation == crate::event::Operation::Plan => {
            words::would_skip(stack.skip_reason).to_owned()
        }
        // The message too (its first line, cut to the row): the code alone says little.
        StackState::Failed => match &stack.error {
            Some(e) => {
                let message = e.message.lines().next().unwrap_or_default();
                format!("failed: {}: {message}", e.code)
            }
            None => "failed".into(),
        },
        StackState::Skipped => format!("skipped ({})", words::skip_reason(stack.skip_reason)),
        StackState::Blocked => format!("blocked by {}", words::blocker(stack)),
        StackState::Pending if stack.rolled_back => "rolled back".into(),
        StackState::Pending => {
            words::waiting_for(model, stack).unwrap_or_else(|| words::pending_reason(model).into())
        }
    }
}

fn draw_stacks(
    frame: &mut Frame,
    model: &Model,
    ui: &mut Ui,
    order: &[usize],
    now: DateTime<Utc>,
    paint: Palette,
    area: Rect,
) {
    let rows = usize::from(area.height.saturating_sub(2));
    ui.list_rows = rows.max(1);
    ui.scroll_to_selection(order);
    let visible = &order[ui.offset.min(order.len())..(ui.offset + rows).min(order.len())];
    let narrowed = ui.only_path || !ui.filter.is_empty();
    let mut title = if narrowed {
        format!(" Stacks ({} of {}", order.len(), model.stacks.len())
    } else {
        format!(" Stacks ({}", order.len())
    };
    if ui.only_path {
        title.push_str(&format!(" · {PATH_MARK} critical path"));
    }
    if !ui.filter.is_empty() {
        title.push_str(&format!(" · /{}", ui.filter));
    }
    if !narrowed && model.summary.running_stacks > 0 {
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
    if order.is_empty() {
        let why = if ui.only_path && model.critical_path.is_empty() {
            "Nothing on the critical path (the run waits on no stack now) · p: all stacks"
        } else {
            "No stack matches · Esc: all stacks"
        };
        frame.render_widget(
            Paragraph::new(Line::styled(format!(" {why}"), paint.style(Role::Dim)))
                .wrap(Wrap { trim: false })
                .block(block),
            area,
        );
        return;
    }
    let lines: Vec<Line> = visible
        .iter()
        .map(|&i| {
            let stack = &model.stacks[i];
            let info = stack_info(model, stack, now);
            let destructive = stack.plan.as_deref().is_some_and(|p| p.destructive());
            let info_style = match stack.status {
                StackState::Failed => paint.style(Role::Fail),
                // A plan that deletes or replaces: red as well as `(destructive)`.
                _ if destructive => paint.style(Role::Fail),
                _ if is_drifted(stack) => paint.style(Role::Warn),
                StackState::Blocked => paint.style(Role::Warn),
                _ if words::over_usual(stack, now).is_some() => paint.style(Role::Warn),
                StackState::Deploying => Style::new(),
                _ => paint.style(Role::Dim),
            };
            let name = pad(&cut(&stack.name, name_width), name_width);
            let on_path = model.critical_path.contains(&stack.name);
            let text = format!(" L{:<2} ", stack.layer);
            let room = inner_width.saturating_sub(name_width + text.chars().count() + 5);
            let selected = Some(i) == ui.selected;
            let mut line = Line::from(vec![
                Span::raw(if selected { "▸" } else { " " }),
                stack_mark(paint, stack),
                Span::raw(format!(" {name} ")),
                Span::styled(
                    if on_path { PATH_MARK } else { " " },
                    paint.style(Role::Active),
                ),
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

/// Marks a stack on the critical path (the chain of unfinished stacks the ETA waits on).
const PATH_MARK: &str = "◆";

/// A resource's mark and word; a replacement (one resource, `action: replace`) says so.
fn resource_state(
    state: ResourceState,
    action: Option<PlanAction>,
) -> (&'static str, &'static str) {
    match (state, action) {
        (ResourceState::Updating, Some(PlanAction::Replace)) => return ("→", "Replacing"),
        (ResourceState::Updated, Some(PlanAction::Replace)) => return ("✓", "Replaced"),
        _ => {}
    }
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
    let paint = Palette::new(look.color);
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
            if let Some(left) = model.stack_left(stack, now) {
                t.push_str(&format!(", {} remaining", format_eta(left)));
            }
            t.push_str(&format!(" · {}%", stack.progress_percent));
            if let Some(over) = words::over_usual(stack, now) {
                t.push_str(&format!(" · {over}"));
            }
            t
        }
        StackState::Deployed if stack.drift.is_some() => {
            let found = stack.drift.as_deref().map(words::drift_found);
            format!("Checked in {took} · {}", found.unwrap_or_default())
        }
        StackState::Deployed => match &stack.plan {
            Some(plan) => {
                let mut t = format!("Planned in {took} · {}", words::stack_plan(plan));
                if !plan.provisional.is_empty() {
                    t.push_str(&format!(" · {}", words::provisional(&plan.provisional)));
                }
                t
            }
            None => format!("Deployed in {took} · {resources}"),
        },
        StackState::Failed => format!("Failed after {took}"),
        StackState::Skipped => format!("Skipped ({})", words::skipped_because(stack.skip_reason)),
        StackState::Blocked => format!("Blocked by {}", words::blocker(stack)),
        StackState::Pending => match words::waiting_for(model, stack) {
            Some(waiting) => upper_first(&waiting),
            None if stack.rolled_back => "Rolled back".into(),
            None if model.is_finished() && model.cancelled => {
                "Not started (the run was cancelled)".into()
            }
            None => "Not started".into(),
        },
    };
    let mut head = vec![stack_mark(paint, stack), Span::raw(format!(" {status}"))];
    if model.critical_path.contains(&stack.name) {
        head.push(Span::styled(
            format!(" · {PATH_MARK} critical path"),
            paint.style(Role::Active),
        ));
    }
    lines.push(Line::from(head));
    if let Some(error) = &stack.error {
        lines.push(Line::styled(
            format!("  {}: {}", error.code, error.message),
            paint.style(Role::Fail),
        ));
        for detail in error.details.iter().flat_map(|d| d.lines()).take(20) {
            lines.push(Line::styled(
                format!("  │ {detail}"),
                paint.style(Role::Dim),
            ));
        }
    }
    if stack.status == StackState::Deploying {
        if let Some(message) = &stack.message {
            lines.push(Line::styled(format!("  {message}"), paint.style(Role::Dim)));
        }
    }
    if !stack.dependencies.is_empty() {
        lines.push(Line::styled(
            format!("  Depends on: {}", stack.dependencies.join(", ")),
            paint.style(Role::Dim),
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
            let (icon, word) = resource_state(r.status, r.action);
            let (style, timing) = match r.status {
                ResourceState::Failed => (
                    paint.style(Role::Fail),
                    match &r.error {
                        Some(e) => format!(": {}", e.message),
                        None => String::new(),
                    },
                ),
                s if s.is_finished() => (
                    paint.style(Role::Ok),
                    format!(
                        " ({})",
                        format_duration(r.duration_seconds.unwrap_or(0.0).round() as u64)
                    ),
                ),
                _ => (
                    paint.style(Role::Active),
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
                Span::styled(format!("  {}", r.type_), paint.style(Role::Dim)),
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
                Span::styled("⏸ Pending", paint.style(Role::Dim)),
            ]));
        }
    }
    // A plan's resources, what it does to each; the destructive ones red (and said so).
    if let Some(plan) = stack.plan.as_deref().filter(|p| !p.resources.is_empty()) {
        lines.push(Line::raw(""));
        lines.push(Line::styled("Planned", paint.style(Role::Bold)));
        for r in &plan.resources {
            let mut text = words::planned_resource(r.action, &r.label);
            if r.drift {
                text.push_str(words::DRIFT);
            }
            let style = if r.action.is_destructive() {
                paint.style(Role::Fail)
            } else {
                Style::new()
            };
            lines.push(Line::styled(format!("  {text}"), style));
        }
    }
    // A drift check's drifted resources, each with what changed.
    if let Some(drift) = stack.drift.as_deref().filter(|d| !d.resources.is_empty()) {
        lines.push(Line::raw(""));
        lines.push(Line::styled("Drifted", paint.style(Role::Bold)));
        for r in &drift.resources {
            lines.push(Line::styled(
                format!("  ⚠ {}", words::drifted_resource(r)),
                paint.style(Role::Warn),
            ));
        }
    }
    if !stack.outputs.is_empty() && stack.status.is_finished() {
        lines.push(Line::raw(""));
        lines.push(Line::styled("Outputs", paint.style(Role::Bold)));
        for (key, value) in &stack.outputs {
            let value = match value {
                serde_json::Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            lines.push(Line::raw(format!("  {key} = {value}")));
        }
    }
    if ui.show_logs && stack.logs.is_empty() {
        // `l` always shows something: that there is nothing (yet).
        let none = if stack.status.is_finished() {
            "No logs"
        } else {
            "No logs yet"
        };
        lines.push(Line::raw(""));
        lines.push(Line::styled(none, paint.style(Role::Dim)));
    }
    if ui.show_logs && !stack.logs.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::styled("Logs", paint.style(Role::Bold)));
        for entry in &stack.logs {
            let clock = entry
                .timestamp
                .with_timezone(&look.offset)
                .format("%H:%M:%S");
            let style = match entry.level {
                LogLevel::Error => paint.style(Role::Fail),
                LogLevel::Warn => paint.style(Role::Warn),
                LogLevel::Debug => paint.style(Role::Dim),
                LogLevel::Info => Style::new(),
            };
            lines.push(Line::from(vec![
                Span::styled(format!("  {clock} "), paint.style(Role::Dim)),
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
    let inner = block.inner(area);
    let rows = usize::from(inner.height);
    ui.detail_rows = rows.max(1);
    let lines = wrap(
        detail_lines(model, stack, ui, now, look),
        usize::from(inner.width),
    );
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

/// `lines` cut into rows of at most `width` characters, between words where it can, their
/// styles kept: a long error or log line is read in full (continued rows are indented), and
/// the scroll counts rows.
fn wrap(lines: Vec<Line<'static>>, width: usize) -> Vec<Line<'static>> {
    const INDENT: usize = 4;
    if width <= INDENT * 2 {
        return lines;
    }
    let mut rows = Vec::with_capacity(lines.len());
    for line in lines {
        // A resource row is cut, not wrapped: its type (last, dim) is the least of it.
        let tree = (line.spans.first())
            .is_some_and(|s| s.content.starts_with(" ├─") || s.content.starts_with(" └─"));
        if line.width() <= width || tree {
            rows.push(line);
            continue;
        }
        let style = line.style;
        let chars: Vec<(char, Style)> = (line.spans.iter())
            .flat_map(|span| span.content.chars().map(move |c| (c, span.style)))
            .collect();
        let mut rest = &chars[..];
        let mut first = true;
        while !rest.is_empty() {
            let room = if first { width } else { width - INDENT };
            let mut take = rest.len().min(room);
            if take < rest.len() && rest[take].0 != ' ' {
                // Break after the last space of the row, unless the word fills it.
                if let Some(space) = rest[..take].iter().rposition(|(c, _)| *c == ' ') {
                    if space > 0 {
                        take = space + 1;
                    }
                }
            }
            let mut spans: Vec<Span<'static>> = Vec::new();
            for &(c, st) in &rest[..take] {
                match spans.last_mut() {
                    Some(last) if last.style == st => last.content.to_mut().push(c),
                    _ => spans.push(Span::styled(c.to_string(), st)),
                }
            }
            if !first {
                spans.insert(0, Span::raw(" ".repeat(INDENT)));
            }
            rows.push(Line::from(spans).style(style));
            rest = &rest[take..];
            while rest.first().is_some_and(|(c, _)| *c == ' ') {
                rest = &rest[1..];
            }
            first = false;
        }
    }
    rows
}

/// `Elapsed: 5m 30s | ETA: ~10m | Smart Skip: 1 stack` and the key hints.
fn footer_line(model: &Model, now: DateTime<Utc>, paint: Palette) -> Line<'static> {
    let mut text = format!("Elapsed: {}", format_duration(model.elapsed(now) as u64));
    if !model.is_finished() {
        if let Some(eta) = model.eta(now) {
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
        Span::styled("   Done · q to exit", paint.style(Role::Ok))
    } else if let Some(stopping) = words::Stopping::of(model) {
        Span::styled(
            format!("   {}", words::stopping_line(model, stopping)),
            paint.style(Role::Warn),
        )
    } else if model.cancelled {
        Span::styled("   Cancelling…", paint.style(Role::Warn))
    } else {
        Span::styled("   ? help · q cancel", paint.style(Role::Dim))
    };
    Line::from(vec![Span::raw(text), hint])
}

/// The filter being typed: `/db▏   Enter keeps · Esc clears`.
fn filter_line(ui: &Ui, paint: Palette) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("/{}▏", ui.filter), paint.style(Role::Bold)),
        Span::styled("   Enter keeps · Esc clears", paint.style(Role::Dim)),
    ])
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
    ("Esc", "back from the expanded stack, then to all stacks"),
    ("l", "show/hide its logs"),
    ("f", "follow the running stacks"),
    ("/", "filter stacks by name (Enter keeps, Esc clears)"),
    ("p", "only the stacks on the critical path (◆)"),
    ("s", "the run as plain lines (scrollback, copy); s: back"),
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
    let popup = centered(area, 66, lines.len() as u16 + 2);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Keys ")),
        popup,
    );
}

fn draw_confirm(frame: &mut Frame, paint: Palette, area: Rect) {
    let lines = vec![
        Line::raw("Running stacks are interrupted and recorded as failed;"),
        Line::raw("stacks not started yet stay pending."),
        Line::raw(""),
        Line::from(vec![
            Span::styled("[y]", paint.style(Role::Fail).add_modifier(Modifier::BOLD)),
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
