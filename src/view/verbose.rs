//! `--verbose`: the seed's "Detailed Progress Display". One timestamped line per change and no
//! cursor movement, so CI logs and pipes read it as it was meant.

use std::collections::HashMap;
use std::io::{self, BufWriter, Write};

use chrono::{Local, Timelike};

use super::{Control, Palette};
use crate::bus::{Inbox, Received};
use crate::event::{
    DeploymentState, DriftStatus, Event, EventData, LogLevel, Operation, PlanAction, ResourceState,
    SkipReason, StackState,
};
use crate::progress::Model;
use crate::words::{self, counts, format_duration, plural, progress_line, stopping_line, Stopping};

/// Turns events into lines; keeps only what the model does not (what was already said).
pub struct Verbose {
    palette: Palette,
    /// A layer header just printed, whose "Deploying: …" line waits until the stacks that
    /// start with it are known.
    opening: Option<Opening>,
    /// The last progress message printed per stack, to print only changes.
    last_message: HashMap<String, String>,
    /// Stacks skipped as unchanged before anything started: said in one line.
    unchanged: Vec<String>,
    /// Whether anything started yet (skips after that are said one by one).
    started: bool,
    /// The running stacks already said to run long.
    running_long: std::collections::HashSet<String>,
    /// How many of the last [`Verbose::lines`] were about the run (a layer's opening, the
    /// smart skip), said before the event's own: a CI group of the event's stack leaves them out.
    run_lines: usize,
}

struct Opening {
    /// Every stack of the layer.
    stacks: Vec<String>,
    /// Those that started right after the header.
    started: Vec<String>,
}

/// One line: `None` is a blank line, `Some(text)` a timestamped one.
pub type Line = Option<String>;

impl Verbose {
    pub fn new(palette: Palette) -> Self {
        Verbose {
            palette,
            opening: None,
            last_message: HashMap::new(),
            unchanged: Vec::new(),
            started: false,
            running_long: Default::default(),
            run_lines: 0,
        }
    }

    /// The lines for `event`; `model` has already folded it in.
    pub fn lines(&mut self, model: &Model, event: &Event) -> Vec<Line> {
        let p = self.palette;
        // The run's name, for the lines that say it (made when needed: most events do not).
        let id = || format!("{}-{}", event.deployment_id, event.environment);
        let mut out: Vec<Line> = Vec::new();
        self.run_lines = 0;
        macro_rules! say {
            ($text:expr) => {
                out.push(Some($text))
            };
        }
        let starting = match &event.data {
            EventData::StackDeploying(e) => Some(&e.stack),
            EventData::StackDestroying(e) => Some(&e.stack),
            _ => None,
        };
        if let (Some(stack), Some(opening)) = (starting, self.opening.as_mut()) {
            if opening.stacks.contains(stack) {
                opening.started.push(stack.clone());
                return out;
            }
        }
        if let Some(opening) = self.opening.take() {
            out.push(Some(opening_line(p, model, opening)));
        }
        // The seed's `Smart skip: N stacks unchanged`, for the skips decided at the start.
        match &event.data {
            EventData::StackSkipped(e) if !self.started && e.reason == SkipReason::Unchanged => {
                self.unchanged.push(e.stack.clone());
                self.run_lines = out.len();
                return out;
            }
            EventData::DeploymentStarted(_)
            | EventData::DeploymentCancelling(_)
            | EventData::StackSkipped(_) => {}
            _ => {
                self.started = true;
                if !self.unchanged.is_empty() {
                    let names = std::mem::take(&mut self.unchanged);
                    let mut list = names.iter().take(8).cloned().collect::<Vec<_>>().join(", ");
                    if names.len() > 8 {
                        list.push_str(", …");
                    }
                    let what = plural(names.len() as u64, "stack");
                    say!(match model.operation {
                        Operation::Plan => format!("Would skip: {what} unchanged ({list})"),
                        _ => format!("Smart skip: {what} unchanged ({list})"),
                    });
                }
            }
        }
        self.run_lines = out.len();
        match &event.data {
            EventData::DeploymentStarted(e) => {
                say!(format!(
                    "{} started: {}",
                    words::run_name(e.operation),
                    id()
                ));
                let mut total = format!(
                    "Total stacks: {} ({} layers",
                    e.total_stacks, e.total_layers
                );
                if let Some(n) = e.parallelism {
                    total.push_str(&format!(", up to {n} at once"));
                }
                total.push(')');
                say!(total);
            }
            EventData::LayerStarted(e) => {
                out.push(None);
                let head = format!("─── Layer {}/{} ", e.layer, e.total_layers);
                let width = 47usize.saturating_sub(head.chars().count());
                out.push(Some(p.bold(&format!("{head}{}", "─".repeat(width)))));
                self.opening = Some(Opening {
                    stacks: e.stacks.clone(),
                    started: Vec::new(),
                });
            }
            // What the run waits on, when the run says it changed; a stack that went past its
            // usual time, once (progress comes every second while stacks run).
            EventData::DeploymentProgress(e) => {
                if e.critical_path.is_some() {
                    if let Some(line) = words::waiting_on(model, event.timestamp) {
                        say!(p.dim(&line));
                    }
                }
                for stack in model.running() {
                    if self.running_long.contains(&stack.name) {
                        continue;
                    }
                    if let Some(over) = words::over_usual(stack, event.timestamp) {
                        self.running_long.insert(stack.name.clone());
                        let text = p.yellow(&format!("running long: {over}"));
                        say!(format!("{}{text}", prefix(model, &stack.name, false)));
                    }
                }
            }
            EventData::StackDeploying(e) => {
                let doing = words::doing(model.operation);
                say!(format!("{}{doing}", prefix(model, &e.stack, false)));
            }
            EventData::ResourcePlanned(e) => {
                let text = words::planned(e);
                let text = if e.destructive { p.red(&text) } else { text };
                let drift = words::planned_drift(e);
                say!(format!("{}{text}{drift}", prefix(model, &e.stack, false)));
            }
            EventData::StackPlanned(e) => {
                let Some(plan) = model.stack(&e.stack).and_then(|s| s.plan.as_deref()) else {
                    return out;
                };
                let took = format_duration(e.duration_seconds);
                let text = format!("✓ Planned ({took}): {}", words::stack_plan(plan));
                let text = if plan.destructive() {
                    p.red(&text)
                } else {
                    p.green(&text)
                };
                say!(format!("{}{text}", prefix(model, &e.stack, true)));
                if let Some(why) = &e.no_preview {
                    say!(format!("      {}", p.dim(&format!("│ {why}"))));
                }
                if !e.provisional.is_empty() {
                    let text = words::provisional(&e.provisional);
                    say!(format!("      {}", p.yellow(&format!("│ {text}"))));
                }
            }
            EventData::ResourceDrifted(e) => {
                let text = p.yellow(&format!("⚠ drifted: {}", words::drifted_resource(e)));
                say!(format!("{}{text}", prefix(model, &e.stack, false)));
            }
            EventData::StackDriftChecked(e) => {
                let took = format_duration(e.duration_seconds);
                let text = match e.status {
                    DriftStatus::InSync => p.green(&format!("✓ In sync ({took})")),
                    DriftStatus::Drifted => {
                        p.yellow(&format!("⚠ Drifted ({took}): {}", words::stack_drift(e)))
                    }
                    DriftStatus::Unknown => p.dim(&format!(
                        "? Unknown: {}",
                        e.reason.as_deref().unwrap_or("not checked")
                    )),
                };
                say!(format!("{}{text}", prefix(model, &e.stack, true)));
            }
            EventData::StackDestroying(e) => {
                say!(format!("{}Destroying", prefix(model, &e.stack, false)));
            }
            EventData::StackProgress(e) => {
                if let Some(message) = &e.message {
                    if self.last_message.get(&e.stack) != Some(message) {
                        self.last_message.insert(e.stack.clone(), message.clone());
                        say!(format!("{}{message}", prefix(model, &e.stack, false)));
                    }
                }
            }
            EventData::StackLog(e) => {
                let text = match e.level {
                    LogLevel::Warn => p.yellow(&format!("warning: {}", e.message)),
                    LogLevel::Error => p.red(&format!("error: {}", e.message)),
                    _ => e.message.clone(),
                };
                say!(format!("{}{text}", prefix(model, &e.stack, false)));
            }
            EventData::StackRetrying(e) => {
                let seconds = e.delay_seconds.ceil() as u64;
                let line = words::retry_line(e.attempt, e.attempts, seconds, &e.error.message);
                say!(format!(
                    "{}{}",
                    prefix(model, &e.stack, false),
                    p.yellow(&line)
                ));
            }
            EventData::StackDeployed(e) => {
                let resources = words::deployed_resources(e);
                let took = format_duration(e.duration_seconds);
                let text = if is_tree(model, &e.stack) {
                    format!(
                        "  └─ {}",
                        p.green(&format!(
                            "Stack deployed: {} ({took}, {resources})",
                            e.stack
                        ))
                    )
                } else {
                    format!(
                        "  [{}] {}",
                        e.stack,
                        p.green(&format!("✓ Deployed ({took}, {resources})"))
                    )
                };
                say!(text);
            }
            EventData::StackDestroyed(e) => {
                let what = if model.status == DeploymentState::RollingBack {
                    "↺ Rolled back"
                } else {
                    "✓ Destroyed"
                };
                say!(format!(
                    "{}{}",
                    prefix(model, &e.stack, true),
                    p.green(&format!(
                        "{what} ({}, {})",
                        format_duration(e.duration_seconds),
                        plural(e.resources_deleted, "resource")
                    ))
                ));
            }
            EventData::RollbackStarted(e) => {
                out.push(None);
                let why = e.reason.as_deref().unwrap_or("the deploy failed");
                say!(p.yellow(&format!(
                    "Rolling back {} deployed in this run ({}), because {why}",
                    plural(e.stacks.len() as u64, "stack"),
                    e.stacks.join(", ")
                )));
            }
            EventData::RollbackComplete(e) => {
                let text = format!(
                    "Rollback {}: {} rolled back in {}",
                    if e.status == DeploymentState::RolledBack {
                        "complete"
                    } else {
                        "incomplete"
                    },
                    plural(e.rolled_back_stacks.len() as u64, "stack"),
                    format_duration(e.duration_seconds)
                );
                say!(if e.status == DeploymentState::RolledBack {
                    p.yellow(&text)
                } else {
                    p.red(&text)
                });
            }
            EventData::StackFailed(e) => {
                say!(format!(
                    "{}{}",
                    prefix(model, &e.stack, true),
                    p.red(&format!(
                        "✗ Failed after {}: {}: {}",
                        format_duration(e.duration_seconds),
                        e.error.code,
                        e.error.message
                    ))
                ));
                for detail in e.error.details.iter().flat_map(|d| d.lines()) {
                    say!(format!("      {}", p.dim(&format!("│ {detail}"))));
                }
            }
            EventData::StackSkipped(e) if model.operation == Operation::Plan => {
                let why = words::would_skip(Some(e.reason));
                say!(format!("  [{}] ↷ {why}", e.stack));
            }
            EventData::StackSkipped(e) => {
                let why = words::skip_reason(Some(e.reason));
                say!(format!("  [{}] ↷ Skipped ({why})", e.stack));
            }
            EventData::StackBlocked(e) => {
                say!(format!(
                    "  [{}] {}",
                    e.stack,
                    p.yellow(&format!("⊘ Blocked: {} failed", e.blocked_by))
                ));
            }
            EventData::LayerComplete(_) => {
                out.push(None);
                out.push(Some(progress_line(model, event.timestamp)));
            }
            // Said before what the stop causes: a forced stop's line still names what ran.
            EventData::DeploymentCancelling(_) => {
                if let Some(stopping) = Stopping::of(model) {
                    say!(p.yellow(&stopping_line(model, stopping)));
                }
            }
            EventData::DeploymentComplete(e) => {
                out.push(None);
                let took = format_duration(e.duration_seconds);
                let counts = counts(model);
                if e.status == DeploymentState::Deployed {
                    say!(p.green(&format!("✓ Complete: {} in {took} ({counts})", id())));
                } else {
                    let why = if e.cancelled {
                        "Cancelled"
                    } else if e.status == DeploymentState::RolledBack {
                        "Failed and rolled back"
                    } else {
                        "Failed"
                    };
                    say!(p.red(&format!("✗ {why}: {} after {took} ({counts})", id())));
                    for stack in model
                        .stacks
                        .iter()
                        .filter(|s| s.status == StackState::Failed)
                    {
                        if let Some(err) = &stack.error {
                            say!(p.red(&format!(
                                "  ✗ {} (layer {}): {}: {}",
                                stack.name, stack.layer, err.code, err.message
                            )));
                        }
                    }
                    for stack in model.stacks.iter() {
                        if let Some(by) = &stack.blocked_by {
                            say!(format!("  ⊘ {} (blocked by {by})", stack.name));
                        } else if stack.rolled_back {
                            say!(p.yellow(&format!("  ↺ {} (rolled back)", stack.name)));
                        } else if e.cancelled && stack.status == StackState::Pending {
                            let why = words::pending_reason(model);
                            say!(p.dim(&format!("  ⏸ {} ({why})", stack.name)));
                        }
                    }
                }
                let timing = crate::timing::summary_lines(model, event.timestamp);
                out.extend(timing.into_iter().map(Some));
                if model.operation == Operation::Drift {
                    let text = format!("Drift: {}", words::drift_totals(model));
                    say!(match model.drift_totals.drifted {
                        0 => p.green(&text),
                        _ => p.yellow(&text),
                    });
                }
                if model.operation == Operation::Plan {
                    out.push(None);
                    out.extend(
                        crate::view::plan_table::plan_summary(model, p)
                            .into_iter()
                            .map(Some),
                    );
                }
            }
            data => {
                if let Some((state, r)) = data.as_resource() {
                    let pre = prefix(model, &r.stack, false);
                    let took = r
                        .duration_seconds
                        .map(|d| format!(" ({})", format_duration(d.round() as u64)))
                        .unwrap_or_default();
                    let what = match state {
                        ResourceState::Creating
                        | ResourceState::Updating
                        | ResourceState::Deleting => {
                            let verb = match state {
                                ResourceState::Creating => "Creating",
                                ResourceState::Updating => "Updating",
                                _ => "Deleting",
                            };
                            let label =
                                (r.resource.address.clone()).unwrap_or_else(|| r.resource.label());
                            // How many the stack has in flight, this one included.
                            let flying = model.stack(&r.stack).map_or(0, |s| s.in_flight().len());
                            if flying > 1 {
                                format!("{verb}: {label} ({flying} in flight)")
                            } else {
                                format!("{verb}: {label}")
                            }
                        }
                        ResourceState::Created | ResourceState::Updated => {
                            let verb = if state == ResourceState::Created {
                                "Created"
                            } else if r.action == Some(PlanAction::Replace) {
                                "Replaced"
                            } else {
                                "Updated"
                            };
                            match &r.resource.id {
                                Some(rid) => format!("{verb}: {} → {rid}{took}", r.resource.name),
                                None => format!("{verb}: {}{took}", r.resource.name),
                            }
                        }
                        ResourceState::Deleted => format!("Deleted: {}{took}", r.resource.name),
                        ResourceState::Failed => p.red(&format!(
                            "✗ Failed: {}: {}",
                            r.resource.label(),
                            r.error.as_ref().map_or("", |e| e.message.as_str())
                        )),
                    };
                    say!(format!("{pre}{what}"));
                }
            }
        }
        out
    }
}

/// `Deploying (parallel): a, b · waiting: c (for x) · queued: d`: what started with a layer,
/// and why the rest of it did not.
fn opening_line(p: Palette, model: &Model, opening: Opening) -> String {
    let verb = words::doing(model.operation);
    let list = opening.started.join(", ");
    let mut line = match opening.started.len() {
        0 => format!("{verb}: nothing yet"),
        1 => format!("{verb}: {list}"),
        _ => format!("{verb} (parallel): {list}"),
    };
    let mut waiting = Vec::new();
    let mut queued = Vec::new();
    let mut skipped = Vec::new();
    for stack in opening
        .stacks
        .iter()
        .filter(|s| !opening.started.contains(s))
    {
        let deps = model.waiting_for(stack);
        match model.stacks_status(stack) {
            Some(StackState::Skipped) => skipped.push(stack.as_str()),
            // Blocked: its own line says by what; it waits for nothing.
            Some(state) if state.is_finished() => {}
            _ if deps.is_empty() => queued.push(stack.as_str()),
            _ => waiting.push(format!("{stack} (for {})", deps.join(", "))),
        }
    }
    if !waiting.is_empty() {
        line.push_str(&p.dim(&format!(" · waiting: {}", waiting.join(", "))));
    }
    if !queued.is_empty() {
        let why = model
            .parallelism
            .map_or(String::new(), |n| format!(" (at most {n} at once)"));
        line.push_str(&p.dim(&format!(" · queued{why}: {}", queued.join(", "))));
    }
    if !skipped.is_empty() {
        line.push_str(&p.dim(&format!(" · skipped: {}", skipped.join(", "))));
    }
    line
}

/// Tree lines (`├─`) while one stack has the screen to itself; `[stack]` prefixes otherwise.
fn is_tree(model: &Model, stack: &str) -> bool {
    let Some(s) = model.stack(stack) else {
        return false;
    };
    // A drift check has no layers to draw a tree in.
    if model.operation == Operation::Drift {
        return false;
    }
    let alone_in_layer = model
        .layers
        .iter()
        .find(|l| l.number == s.layer)
        .is_some_and(|l| l.stacks.len() == 1);
    alone_in_layer && model.running().all(|r| r.name == stack)
}

fn prefix(model: &Model, stack: &str, last: bool) -> String {
    if is_tree(model, stack) {
        if last { "  └─ " } else { "  ├─ " }.to_owned()
    } else {
        format!("  [{stack}] ")
    }
}

/// A line as printed: `[14:32:05] text` at the event's time (local), or an empty line.
pub fn stamp(event: &Event, line: Line) -> String {
    let Some(text) = line else {
        return String::new();
    };
    // Not through `format("%H:%M:%S")`, which reads its pattern again per line.
    let clock = event.timestamp.with_timezone(&Local);
    // A leap second reads 60, as chrono's `%S` has it.
    let second = clock.second() + u32::from(clock.nanosecond() >= 1_000_000_000);
    format!(
        "[{:02}:{:02}:{second:02}] {text}",
        clock.hour(),
        clock.minute()
    )
}

pub fn run(inbox: &Inbox, control: &Control) -> io::Result<()> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut view = Verbose::new(control.palette);
    let mut model: Option<crate::progress::Model> = None;
    let mut groups = control.github_actions.then(Groups::default);
    while let Some(item) = inbox.recv() {
        // A snapshot (`cloud watch` joining a run) says nothing, but later lines need its state.
        let event = match &item {
            Received::Event(event) => Some(std::sync::Arc::clone(event)),
            Received::Resync(_) => None,
        };
        item.fold_into(&mut model);
        if let Some(event) = event {
            let Some(m) = model.as_ref() else { continue };
            let mut lines: Vec<String> = view
                .lines(m, &event)
                .into_iter()
                .map(|line| stamp(&event, line))
                .collect();
            match groups.as_mut() {
                Some(groups) => {
                    let own = lines.split_off(view.run_lines.min(lines.len()));
                    for line in lines {
                        writeln!(out, "{line}")?;
                    }
                    groups.take(&event, own, &mut out)?
                }
                None => {
                    for line in lines {
                        writeln!(out, "{line}")?;
                    }
                }
            }
        }
        out.flush()?;
    }
    super::let_go(model);
    out.flush()
}

/// GitHub Actions: each stack's lines folded in a `::group::` once the stack ends (stacks run
/// side by side, and groups cannot interleave), and failures as `::error` annotations.
#[derive(Default)]
struct Groups {
    /// The lines of stacks still running.
    held: std::collections::HashMap<String, Vec<String>>,
}

impl Groups {
    fn take(&mut self, event: &Event, lines: Vec<String>, out: &mut impl Write) -> io::Result<()> {
        let Some(stack) = event.data.stack() else {
            for line in lines {
                writeln!(out, "{line}")?;
            }
            return Ok(());
        };
        let ended = matches!(
            event.data,
            EventData::StackDeployed(_)
                | EventData::StackPlanned(_)
                | EventData::StackFailed(_)
                | EventData::StackDestroyed(_)
                | EventData::StackSkipped(_)
                | EventData::StackBlocked(_)
        );
        if !ended {
            self.held.entry(stack.to_owned()).or_default().extend(lines);
            return Ok(());
        }
        let held = self.held.remove(stack).unwrap_or_default();
        // A plan's group holds its planned resources and its verdict, titled with its counts.
        let (title, inside) = match &event.data {
            EventData::StackPlanned(e) => {
                let c = &e.plan.counts;
                let mut counts = format!("+{} ~{} -{}", c.add, c.change, c.destroy);
                if c.replace > 0 {
                    counts.push_str(&format!(" ±{}", c.replace));
                }
                (format!("{stack} ({counts})"), true)
            }
            _ => (format!("{stack}: resources and logs"), false),
        };
        let (held, lines) = if inside {
            ([held, lines].concat(), Vec::new())
        } else {
            (held, lines)
        };
        if !held.is_empty() {
            writeln!(out, "::group::{}", annotation_data(&title))?;
            for line in held {
                writeln!(out, "{line}")?;
            }
            writeln!(out, "::endgroup::")?;
        }
        for line in lines {
            writeln!(out, "{line}")?;
        }
        if let EventData::StackFailed(e) = &event.data {
            writeln!(
                out,
                "::error title={}::{}",
                annotation_property(&format!("Stack {stack} failed ({})", e.error.code)),
                annotation_data(&e.error.message)
            )?;
        }
        Ok(())
    }
}

/// A workflow command's message: `%`, CR and LF escaped.
fn annotation_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: also `:` and `,`.
fn annotation_property(text: &str) -> String {
    annotation_data(text)
        .replace(':', "%3A")
        .replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stamp reads as chrono's `[%H:%M:%S]` in the local time zone, leap second included.
    #[test]
    fn a_line_is_stamped_with_the_local_clock() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut event =
            crate::testing::RunBuilder::start(&[("a", 1, &[], 1.0, 1)]).events[0].clone();
        let mut instants: Vec<chrono::DateTime<chrono::Utc>> = (0..2_000)
            .map(|_| {
                let secs = rng.i64(0..4_102_444_800);
                chrono::DateTime::from_timestamp(secs, rng.u32(0..1_000_000_000)).unwrap()
            })
            .collect();
        instants.push(chrono::DateTime::from_timestamp(1_483_228_799, 1_500_000_000).unwrap());
        for at in instants {
            event.timestamp = at;
            let clock = at.with_timezone(&Local).format("%H:%M:%S");
            assert_eq!(
                stamp(&event, Some("x".into())),
                format!("[{clock}] x"),
                "{at:?}"
            );
        }
        assert_eq!(stamp(&event, None), "");
    }
}
