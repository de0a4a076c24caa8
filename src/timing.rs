//! Where the time went: the critical path a run really took, how close its schedule came to
//! the limit, how much sooner it would have ended had each stack on that path taken no time,
//! and a per-stack timeline. Pure functions of a model — a finished run, or one going on as of
//! `now` — and the words that tell them (the end-of-run summary, `cloud status --timing`);
//! `--report` and the dashboard take the same figures as JSON.
//!
//! - **The path**: from the stack that ended last, back through the predecessor that ended last
//!   before it started (its dependencies; a destroy's are the stacks that depend on it), to a
//!   stack with none. A stack that started well after that predecessor ended waited for
//!   something else: a free slot under a parallelism limit, said as such.
//! - **The limit**: no schedule beats the path's time, nor the total work spread over the
//!   slots (`work ÷ parallelism`); the larger of the two against the wall time says how close
//!   the schedule came.
//! - **Savings**: the run's schedule simulated again with every stack's real duration
//!   ([`eta::schedule_remaining`], the same scheduler the ETA uses), then once more with one
//!   stack taking no time: the difference is what that stack cost the run.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::eta;
use crate::event::StackState;
use crate::progress::{seconds_between, Model};
use crate::words::format_duration;

/// A stack that started this much later than its last predecessor ended was held back by
/// something else (a free slot); less is the orchestrator's own latency.
const WAIT_NOISE: f64 = 0.25;

/// Stacks simulated in all for the savings: a run's schedule is simulated again once per path
/// stack, `SIMULATION_BUDGET / stacks` times at most (10 at least).
const SIMULATION_BUDGET: usize = 500_000;

/// The run's time, as far as it went.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timing {
    /// Seconds from the run's start to its end (or to now).
    pub wall_seconds: f64,
    /// The stacks' own seconds, summed: what one slot would have taken.
    pub work_seconds: f64,
    /// The run's limit on stacks at once; `None` is none.
    pub parallelism: Option<usize>,
    /// The critical path as it really was, first to last.
    pub critical_path: Vec<Step>,
    /// Every stack, in the model's order, for a timeline.
    pub stacks: Vec<Span>,
}

/// A stack on the critical path.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub stack: String,
    pub status: StackState,
    /// Its own seconds (0 for a skipped stack).
    pub seconds: f64,
    /// Seconds it waited after its last predecessor ended (or the run started) before it
    /// started, when more than the orchestrator's latency: for a free slot, or a stop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waited_seconds: Option<f64>,
    /// It waited because every slot was taken (the parallelism limit).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub waited_for_slot: bool,
    /// How much sooner the run would have ended had it taken no time (re-simulated); `None`
    /// when not simulated (a huge run's shorter path stacks: at most its own time, less than
    /// the ones simulated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saving_seconds: Option<f64>,
}

/// A stack on the timeline: seconds from the run's start. `start`/`end` are `None` for one
/// that did not run (blocked, never started); a skipped one starts and ends when it was
/// skipped.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    pub stack: String,
    pub status: StackState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<f64>,
    /// Still running at `now`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub running: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub on_path: bool,
}

impl Span {
    /// Its own seconds; 0 when it did not run.
    pub fn seconds(&self) -> f64 {
        match (self.start, self.end) {
            (Some(a), Some(b)) => (b - a).max(0.0),
            _ => 0.0,
        }
    }
}

impl Timing {
    /// The path's time: the stacks on it, their waits left out.
    pub fn path_seconds(&self) -> f64 {
        self.critical_path.iter().map(|s| s.seconds).sum()
    }

    /// The work spread over the slots; `None` without a limit.
    pub fn spread_seconds(&self) -> Option<f64> {
        let slots = self.parallelism?.max(1);
        Some(self.work_seconds / slots as f64)
    }

    /// The least any schedule could take: the path, or the work over the slots.
    pub fn bound_seconds(&self) -> f64 {
        (self.path_seconds()).max(self.spread_seconds().unwrap_or(0.0))
    }

    /// How close the schedule came to that limit, in percent (100 = at it).
    pub fn percent_of_limit(&self) -> u32 {
        if self.wall_seconds <= 0.0 {
            return 100;
        }
        ((self.bound_seconds() / self.wall_seconds * 100.0).round() as u32).min(100)
    }

    /// The path's stacks, most costly first (those that cost nothing left out).
    pub fn top_savings(&self) -> Vec<&Step> {
        let mut steps: Vec<&Step> = (self.critical_path.iter())
            .filter(|s| s.saving_seconds.is_some_and(|x| x >= 0.05))
            .collect();
        let saving = |s: &Step| s.saving_seconds.unwrap_or(0.0);
        steps.sort_by(|a, b| saving(b).total_cmp(&saving(a)));
        steps
    }
}

/// Why a run's time cannot be told, when it cannot: a rollback destroyed stacks the run had
/// deployed, and the model keeps only the destroy's times of those (not guessed from them).
pub fn untold(model: &Model) -> Option<&'static str> {
    (model.stacks.iter().any(|s| s.rolled_back))
        .then_some("the run rolled back, and its stacks' times are the rollback's")
}

/// The run's timing as of `now` (its end, once it ended); `None` before any stack ran, and
/// when it cannot be told ([`untold`]).
pub fn of(model: &Model, now: DateTime<Utc>) -> Option<Timing> {
    if untold(model).is_some() {
        return None;
    }
    let start = model.start_time?;
    // A run that ended (or died) stopped its clock at its last event.
    let until = model.end_time.unwrap_or(now);
    let offset = |t: DateTime<Utc>| seconds_between(start, t);
    let mut stacks: Vec<Span> = (model.stacks.iter())
        .map(|s| {
            let running = s.status == StackState::Deploying;
            let (a, b) = match (s.status, s.start_time, s.end_time) {
                (StackState::Skipped, _, Some(end)) => (Some(offset(end)), Some(offset(end))),
                (StackState::Blocked, _, _) => (None, None),
                (_, Some(a), Some(b)) => (Some(offset(a)), Some(offset(b))),
                (_, Some(a), None) => (Some(offset(a)), Some(offset(until))),
                _ => (None, None),
            };
            Span {
                stack: s.name.clone(),
                status: s.status,
                start: a,
                end: b,
                running: running && model.end_time.is_none(),
                on_path: false,
            }
        })
        .collect();
    if stacks.iter().all(|s| s.end.is_none()) {
        return None;
    }
    let preds = model.predecessors();
    let path = walk(&stacks, &preds, model.parallelism);
    let durations: Vec<f64> = stacks.iter().map(Span::seconds).collect();
    let order = topological(&preds);
    let position: Vec<usize> = invert(&order);
    let dependencies: Vec<Vec<usize>> = (order.iter())
        .map(|&i| preds[i].iter().map(|&p| position[p]).collect())
        .collect();
    let mut tasks: Vec<eta::Task> = (order.iter().zip(&dependencies))
        .map(|(&i, dependencies)| eta::Task {
            state: eta::TaskState::Todo,
            seconds: durations[i],
            dependencies,
        })
        .collect();
    let all = eta::schedule_remaining(&tasks, model.parallelism);
    // A saving is at most the stack's own time: the longest stacks on the path are simulated
    // without it, as many as a budget of simulated stacks allows (all of them but on runs of
    // thousands of stacks under a tight limit, whose path can be the whole run).
    let mut longest: Vec<usize> = path.iter().map(|&(i, _, _)| i).collect();
    longest.sort_by(|&a, &b| durations[b].total_cmp(&durations[a]));
    let budget = (SIMULATION_BUDGET / stacks.len().max(1)).max(10);
    let mut saving: Vec<Option<f64>> = vec![None; stacks.len()];
    for &i in longest.iter().take(budget) {
        tasks[position[i]].seconds = 0.0;
        // A list schedule can get slower when a task gets shorter (Graham's anomaly): such a
        // stack saved nothing.
        saving[i] = Some((all - eta::schedule_remaining(&tasks, model.parallelism)).max(0.0));
        tasks[position[i]].seconds = durations[i];
    }
    let critical_path = (path.iter())
        .map(|&(i, waited, for_slot)| {
            stacks[i].on_path = true;
            Step {
                stack: stacks[i].stack.clone(),
                status: stacks[i].status,
                seconds: durations[i],
                waited_seconds: (waited > WAIT_NOISE).then_some(waited),
                waited_for_slot: for_slot,
                saving_seconds: saving[i],
            }
        })
        .collect();
    Some(Timing {
        wall_seconds: model.elapsed(until),
        work_seconds: durations.iter().sum(),
        parallelism: model.parallelism,
        critical_path,
        stacks,
    })
}

/// The timing as JSON (`--report`, `cloud status --timing --output json`, the REST status of a
/// finished run): [`Timing`] plus `summary`, the end-of-run lines, for a page to show as they
/// are. `null` before any stack ran; `{"untold": why}` when it cannot be told ([`untold`]).
pub fn json(model: &Model, now: DateTime<Utc>) -> serde_json::Value {
    if let Some(why) = untold(model) {
        return serde_json::json!({ "untold": why });
    }
    let Some(timing) = of(model, now) else {
        return serde_json::Value::Null;
    };
    let mut value = serde_json::json!(timing);
    value["summary"] = serde_json::json!(summary_lines(model, now));
    value
}

/// The critical path, first to last: (stack, seconds it waited before it started, whether
/// for a slot). A stack that waited while every slot was taken goes on through the stack whose
/// end freed one (the one that ended last before it started): that is what held it back.
fn walk(stacks: &[Span], preds: &[Vec<usize>], slots: Option<usize>) -> Vec<(usize, f64, bool)> {
    const EPSILON: f64 = 0.001;
    let ended = |i: usize| stacks[i].end.filter(|_| stacks[i].start.is_some());
    // Stacks that held a slot, by end and by start: a path under a limit can be as long as the
    // run, so each step looks them up rather than going through every stack.
    let held: Vec<usize> = (0..stacks.len())
        .filter(|&i| ended(i).is_some() && stacks[i].status != StackState::Skipped)
        .collect();
    let mut by_end = held.clone();
    by_end.sort_by(|&a, &b| ended(a).unwrap_or(0.0).total_cmp(&ended(b).unwrap_or(0.0)));
    let ends: Vec<f64> = by_end.iter().map(|&i| ended(i).unwrap_or(0.0)).collect();
    let mut starts: Vec<f64> = held
        .iter()
        .map(|&i| stacks[i].start.unwrap_or(0.0))
        .collect();
    starts.sort_by(f64::total_cmp);
    let at_most = |sorted: &[f64], t: f64| sorted.partition_point(|&x| x <= t + EPSILON);
    // Whether every slot was taken just after `at`.
    let full = |at: f64| slots.is_some_and(|n| at_most(&starts, at) - at_most(&ends, at) >= n);
    let latest_of = |candidates: &[usize], started: f64| {
        (candidates.iter())
            .filter_map(|&p| Some((p, ended(p)?)))
            .filter(|&(_, end)| end <= started + EPSILON)
            .max_by(|a, b| a.1.total_cmp(&b.1))
    };
    // The stack that ended last (only skipped ones ended: the last of them).
    let last =
        (by_end.last().copied()).or_else(|| (0..stacks.len()).rev().find(|&i| ended(i).is_some()));
    let mut current = last;
    let mut path = Vec::new();
    while let Some(i) = current {
        let started = stacks[i].start.unwrap_or(0.0);
        // The predecessor that ended last, before this one started.
        let before = latest_of(&preds[i], started);
        let ready = before.map_or(0.0, |(_, end)| end);
        let waited = (started - ready).max(0.0);
        let for_slot = waited > WAIT_NOISE && full(ready);
        // The slot's holder: the stack that ended last before this one started, and started
        // before it (so the walk ends).
        let freed_by = match for_slot {
            true => (by_end[..at_most(&ends, started)].iter().rev())
                .find(|&&j| stacks[j].start.is_some_and(|s| s < started - EPSILON))
                .map(|&j| (j, 0.0)),
            false => None,
        };
        path.push((i, waited, for_slot));
        current = freed_by.or(before).map(|(p, _)| p);
    }
    path.reverse();
    path
}

/// Indexes in an order where every stack comes after its predecessors (Kahn's algorithm; a
/// cycle, which a manifest cannot have, keeps the model's order for what is left).
fn topological(preds: &[Vec<usize>]) -> Vec<usize> {
    let n = preds.len();
    let mut waiting: Vec<usize> = preds.iter().map(Vec::len).collect();
    let mut next: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, ps) in preds.iter().enumerate() {
        for &p in ps {
            next[p].push(i);
        }
    }
    let mut order: Vec<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    let mut k = 0;
    while k < order.len() {
        for &j in &next[order[k]] {
            waiting[j] -= 1;
            if waiting[j] == 0 {
                order.push(j);
            }
        }
        k += 1;
    }
    let mut placed = vec![false; n];
    order.iter().for_each(|&i| placed[i] = true);
    order.extend((0..n).filter(|&i| !placed[i]));
    order
}

/// `position[i]`: where `i` is in `order`.
fn invert(order: &[usize]) -> Vec<usize> {
    let mut position = vec![0; order.len()];
    for (k, &i) in order.iter().enumerate() {
        position[i] = k;
    }
    position
}

/// `0.4s`, `6.2s`, `45s`, `5m 30s`: tenths below ten seconds, where runs of small stacks
/// would otherwise all read `0s`.
pub fn seconds(s: f64) -> String {
    if s < 9.95 {
        format!("{s:.1}s")
    } else {
        format_duration(s.round() as u64)
    }
}

/// A stack on the path, as the words say it: `database-rds 11s`, `db 3.0s (failed)`,
/// `network (skipped)`, `api 4.0s (waited 2.0s for a free slot)`.
fn step_words(step: &Step) -> String {
    let mut text = match step.status {
        StackState::Skipped => format!("{} (skipped)", step.stack),
        StackState::Failed => format!("{} {} (failed)", step.stack, seconds(step.seconds)),
        StackState::Deploying => format!("{} {} so far", step.stack, seconds(step.seconds)),
        _ => format!("{} {}", step.stack, seconds(step.seconds)),
    };
    if let Some(waited) = step.waited_seconds {
        let why = match step.waited_for_slot {
            true => " for a free slot",
            false => " after its dependencies",
        };
        text.push_str(&format!(" (waited {}{why})", seconds(waited)));
    }
    text
}

/// `Where the time went: 21s wall, 95% of the least possible 20s (the critical path)`, or
/// `(35s of work ÷ 2 slots)` when the slots were the tighter limit.
fn limit_line(t: &Timing) -> String {
    let why = match (t.parallelism, t.spread_seconds()) {
        (Some(slots), Some(spread)) if spread > t.path_seconds() => format!(
            "{} of work ÷ {slots} {}",
            seconds(t.work_seconds),
            if slots == 1 { "slot" } else { "slots" }
        ),
        _ => "the critical path".to_owned(),
    };
    format!(
        "Where the time went: {} wall, {}% of the least possible {} ({why})",
        seconds(t.wall_seconds),
        t.percent_of_limit(),
        seconds(t.bound_seconds())
    )
}

/// `  Critical path 20s: network 6.0s → database-rds 11s → api 3.0s`.
fn path_line(t: &Timing, most: usize) -> String {
    format!(
        "  Critical path {}: {}",
        seconds(t.path_seconds()),
        path_words(t, most)
    )
}

/// `a 1.0s → b 2.0s → … (4 more) → z 3.0s`: at most `most` stacks, the ends kept.
fn path_words(t: &Timing, most: usize) -> String {
    let words: Vec<String> = (t.critical_path.iter()).map(step_words).collect();
    if words.len() <= most {
        return words.join(" → ");
    }
    let head = &words[..most - 1];
    let more = words.len() - most;
    format!(
        "{} → … ({more} more) → {}",
        head.join(" → "),
        words[words.len() - 1]
    )
}

/// `Sooner without it: database-rds 11s, network 6.0s, api 4.0s`: the top `most` savings.
fn savings_words(t: &Timing, most: usize) -> Option<String> {
    let top = t.top_savings();
    if top.is_empty() {
        return None;
    }
    let list: Vec<String> = (top.iter().take(most))
        .map(|s| format!("{} {}", s.stack, seconds(s.saving_seconds.unwrap_or(0.0))))
        .collect();
    Some(format!("Sooner without it: {}", list.join(", ")))
}

/// The end-of-run summary, a few lines: the path, the wall time against the limit, the top
/// savings. Empty for a run where no stack ran, and for a plan or drift check (their time
/// is the tools' previews, not a schedule to shorten).
pub fn summary_lines(model: &Model, now: DateTime<Utc>) -> Vec<String> {
    if model.operation.changes_nothing() {
        return Vec::new();
    }
    if let Some(why) = untold(model) {
        return vec![format!("Where the time went: not told ({why})")];
    }
    let Some(t) = of(model, now) else {
        return Vec::new();
    };
    let mut lines = vec![limit_line(&t), path_line(&t, 6)];
    if let Some(savings) = savings_words(&t, 3) {
        lines.push(format!("  {savings}"));
    }
    lines
}

/// `cloud status --timing`: the summary, then every stack with its time, whether it is on the
/// path and what it cost, and its bar on a timeline `width` columns wide.
pub fn table(model: &Model, now: DateTime<Utc>, width: usize) -> String {
    let Some(t) = of(model, now) else {
        let why = untold(model).unwrap_or("no stack has run yet");
        return format!("Where the time went: not told ({why})\n");
    };
    let mut out = format!("{}\n{}\n", limit_line(&t), path_line(&t, 30));
    let work = match t.spread_seconds() {
        Some(spread) => format!(
            "  Work: {} in all, {} over {}\n",
            seconds(t.work_seconds),
            seconds(spread),
            crate::words::plural(t.parallelism.unwrap_or(1), "slot")
        ),
        None => format!(
            "  Work: {} in all (no limit on slots)\n",
            seconds(t.work_seconds)
        ),
    };
    out.push_str(&work);
    if let Some(savings) = savings_words(&t, 10) {
        out.push_str(&format!("  {savings}\n"));
    }
    let name = (t.stacks.iter().map(|s| s.stack.len()))
        .chain([5])
        .max()
        .unwrap_or(5);
    // stack, took, path mark, sooner, then the bar.
    let fixed = 2 + name + 2 + 12 + 2 + 1 + 2 + 8 + 2;
    let bar_width = width.saturating_sub(fixed).clamp(10, 60);
    out.push_str(&format!(
        "\n  {:name$}  {:>12}  {}  {:>8}  0{:>w$}\n",
        "stack",
        "took",
        " ",
        "sooner",
        seconds(t.wall_seconds),
        w = bar_width - 1
    ));
    let saving = |stack: &str| {
        (t.critical_path.iter())
            .find(|s| s.stack == stack)
            .map(|s| s.saving_seconds.map_or("–".to_owned(), seconds))
    };
    for span in &t.stacks {
        let took = match span.status {
            _ if span.running => format!("{} so far", seconds(span.seconds())),
            StackState::Skipped => "skipped".to_owned(),
            StackState::Blocked => "blocked".to_owned(),
            StackState::Failed => format!("{} failed", seconds(span.seconds())),
            _ if span.start.is_none() => "did not run".to_owned(),
            _ => seconds(span.seconds()),
        };
        let line = format!(
            "  {:name$}  {took:>12}  {}  {:>8}  {}",
            span.stack,
            if span.on_path { "*" } else { " " },
            saving(&span.stack).unwrap_or_default(),
            bar(span, t.wall_seconds, bar_width),
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push_str(
        "  (* on the critical path; sooner: how much sooner the run ends if it took no time",
    );
    if t.critical_path.iter().any(|s| s.saving_seconds.is_none()) {
        out.push_str("; –: not simulated, at most its own time, less than those above");
    }
    out.push_str(")\n");
    out
}

/// A stack's bar on a timeline `width` columns wide spanning `wall` seconds: `█` on the
/// critical path, `▒` off it, at least one column for a stack that ran; `·` where a stack was
/// skipped; empty for one that did not run.
pub fn bar(span: &Span, wall: f64, width: usize) -> String {
    let (Some(start), Some(end)) = (span.start, span.end) else {
        return String::new();
    };
    let scale = |s: f64| {
        let column = if wall > 0.0 { s / wall } else { 0.0 } * width as f64;
        (column.max(0.0) as usize).min(width)
    };
    let from = scale(start).min(width.saturating_sub(1));
    let to = match span.status {
        StackState::Skipped => from + 1,
        _ => scale(end).max(from + 1).min(width),
    };
    let mark = match (span.status, span.on_path) {
        (StackState::Skipped, _) => "·",
        (_, true) => "█",
        _ => "▒",
    };
    format!("{}{}", " ".repeat(from), mark.repeat(to - from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::*;
    use crate::testing::{at, RunBuilder};

    /// A stack starting, with its dependencies (the builder's `deploying` has none).
    fn deploying(run: &mut RunBuilder, stack: &str, dependencies: &[&str]) {
        run.push(EventData::StackDeploying(StackDeploying {
            stack: stack.into(),
            layer: 1,
            dependencies: dependencies.iter().map(|d| (*d).into()).collect(),
        }));
    }

    /// a(10) → c(20), b(3) → c; d(25) alone; e(4) after d. Unlimited: the run takes 30 s
    /// (a then c), d+e take 29.
    fn diamond(parallelism: Option<usize>) -> Model {
        let mut run = RunBuilder::start(&[
            ("a", 1, &[], 10.0, 1),
            ("b", 1, &[], 3.0, 1),
            ("d", 1, &[], 25.0, 1),
            ("c", 2, &["a", "b"], 20.0, 1),
            ("e", 2, &["d"], 4.0, 1),
        ]);
        if let Some(EventData::DeploymentStarted(s)) = run.events.first_mut().map(|e| &mut e.data) {
            s.parallelism = parallelism;
        }
        run.at(0.0);
        deploying(&mut run, "a", &[]);
        deploying(&mut run, "b", &[]);
        deploying(&mut run, "d", &[]);
        run.at(3.0).deployed("b", 3);
        run.at(10.0).deployed("a", 10);
        deploying(&mut run, "c", &["a", "b"]);
        run.at(25.0).deployed("d", 25);
        deploying(&mut run, "e", &["d"]);
        run.at(29.0).deployed("e", 4);
        run.at(30.0).deployed("c", 20);
        run.complete(DeploymentState::Deployed, 30);
        run.model()
    }

    fn names(t: &Timing) -> Vec<&str> {
        t.critical_path.iter().map(|s| s.stack.as_str()).collect()
    }

    #[test]
    fn the_path_is_walked_back_from_the_last_stack_to_end() {
        let t = of(&diamond(None), at(99.0)).unwrap();
        assert_eq!(names(&t), ["a", "c"]);
        assert_eq!(t.wall_seconds, 30.0);
        assert_eq!(t.path_seconds(), 30.0);
        assert_eq!(t.work_seconds, 62.0);
        assert_eq!(t.percent_of_limit(), 100);
        assert!(t.critical_path.iter().all(|s| s.waited_seconds.is_none()));
        // Savings, re-simulated by hand. Without a: b(3) then c(20) = 23, beside d+e = 29:
        // the run ends at 29, one second sooner. Without c: d+e = 29 again.
        let saving: Vec<_> = t.critical_path.iter().map(|s| s.saving_seconds).collect();
        assert_eq!(saving, [Some(1.0), Some(1.0)]);
    }

    #[test]
    fn under_a_limit_the_work_over_the_slots_is_the_bound() {
        // The same durations under two slots (the recorded run had three at once: the
        // figures are what its durations allow). The bound: 62 s of work over 2 slots.
        let t = of(&diamond(Some(2)), at(99.0)).unwrap();
        assert_eq!(t.spread_seconds(), Some(31.0));
        assert_eq!(t.bound_seconds(), 31.0);
        // Re-simulated by hand, longest chain first: a 0–10 and d 0–25, b 10–13, c 13–33,
        // e 25–29: 33 s. Without c: c at 13 takes nothing, e ends at 29: 4 s sooner. Without
        // a: d 0–25 and b 0–3, then a (nothing) and c 3–23, e 25–29: 29, 4 s sooner.
        let saving: Vec<_> = t.critical_path.iter().map(|s| s.saving_seconds).collect();
        assert_eq!(saving, [Some(4.0), Some(4.0)]);
        let words = summary_lines(&diamond(Some(2)), at(99.0)).join("\n");
        assert!(
            words.contains("30s wall, 100% of the least possible 31s (1m 2s of work ÷ 2 slots)"),
            "{words}"
        );
    }

    #[test]
    fn a_stack_that_started_late_waited_for_a_slot() {
        // One slot: a (2 s), then b (3 s) though it depends on nothing.
        let mut run = RunBuilder::start(&[("a", 1, &[], 2.0, 1), ("b", 1, &[], 3.0, 1)]);
        if let Some(EventData::DeploymentStarted(s)) = run.events.first_mut().map(|e| &mut e.data) {
            s.parallelism = Some(1);
        }
        deploying(&mut run, "a", &[]);
        run.at(2.0).deployed("a", 2);
        deploying(&mut run, "b", &[]);
        run.at(5.0).deployed("b", 3);
        run.complete(DeploymentState::Deployed, 5);
        let model = run.model();
        let t = of(&model, at(99.0)).unwrap();
        // b waited for the slot a held: a is on the path before it.
        assert_eq!(names(&t), ["a", "b"]);
        assert_eq!(t.critical_path[1].waited_seconds, Some(2.0));
        // Work over one slot is the bound: the schedule was at it.
        assert_eq!(t.bound_seconds(), 5.0);
        assert_eq!(t.percent_of_limit(), 100);
        let words = summary_lines(&model, at(99.0)).join("\n");
        assert!(
            words.contains("Critical path 5.0s: a 2.0s → b 3.0s (waited 2.0s for a free slot)"),
            "{words}"
        );
        assert!(
            words.contains("Sooner without it: b 3.0s, a 2.0s"),
            "{words}"
        );
    }

    #[test]
    fn a_late_start_with_a_slot_free_was_not_for_a_slot() {
        // Two slots, one used: b started 2 s late for some other reason.
        let mut run = RunBuilder::start(&[("a", 1, &[], 2.0, 1), ("b", 1, &[], 3.0, 1)]);
        deploying(&mut run, "a", &[]);
        run.at(2.0).deployed("a", 2);
        deploying(&mut run, "b", &[]);
        run.at(5.0).deployed("b", 3);
        run.complete(DeploymentState::Deployed, 5);
        let t = of(&run.model(), at(99.0)).unwrap();
        assert_eq!(names(&t), ["b"]);
        assert!(!t.critical_path[0].waited_for_slot);
        let words = summary_lines(&run.model(), at(99.0)).join("\n");
        assert!(
            words.contains("b 3.0s (waited 2.0s after its dependencies)"),
            "{words}"
        );
    }

    #[test]
    fn a_rolled_back_run_is_not_told() {
        let mut run = RunBuilder::start(&[("net", 1, &[], 1.0, 1), ("db", 2, &["net"], 1.0, 1)]);
        deploying(&mut run, "net", &[]);
        run.at(1.0).deployed("net", 1);
        deploying(&mut run, "db", &["net"]);
        run.at(2.0).failed("db", 1);
        run.push(EventData::RollbackStarted(RollbackStarted {
            stacks: vec!["net".into()],
            reason: Some("db failed".into()),
        }));
        run.push(EventData::StackDestroying(StackDestroying {
            stack: "net".into(),
            layer: 1,
        }));
        run.at(3.0).push(EventData::StackDestroyed(StackDestroyed {
            stack: "net".into(),
            resources_deleted: 1,
            duration_seconds: 1,
        }));
        run.complete(DeploymentState::RolledBack, 3);
        let model = run.model();
        assert!(of(&model, at(9.0)).is_none());
        assert_eq!(
            summary_lines(&model, at(9.0)),
            ["Where the time went: not told (the run rolled back, and its stacks' times are the rollback's)"]
        );
    }

    #[test]
    fn a_destroy_walks_back_through_the_stacks_that_depended_on_it() {
        // net ← app: a destroy takes app down first (4 s), then net (1 s).
        let mut run = RunBuilder::start(&[("net", 1, &[], 1.0, 1), ("app", 2, &["net"], 4.0, 1)]);
        run.operation(Operation::Destroy);
        run.push(EventData::StackDestroying(StackDestroying {
            stack: "app".into(),
            layer: 1,
        }));
        let destroyed = |stack: &str, secs| {
            EventData::StackDestroyed(StackDestroyed {
                stack: stack.into(),
                resources_deleted: 1,
                duration_seconds: secs,
            })
        };
        run.at(4.0).push(destroyed("app", 4));
        run.push(EventData::StackDestroying(StackDestroying {
            stack: "net".into(),
            layer: 2,
        }));
        run.at(5.0).push(destroyed("net", 1));
        run.complete(DeploymentState::Deployed, 5);
        let t = of(&run.model(), at(99.0)).unwrap();
        assert_eq!(names(&t), ["app", "net"]);
        assert_eq!(t.path_seconds(), 5.0);
    }

    #[test]
    fn skipped_stacks_take_nothing_and_blocked_ones_did_not_run() {
        let mut run = RunBuilder::start(&[
            ("net", 1, &[], 1.0, 1),
            ("db", 2, &["net"], 2.0, 1),
            ("api", 3, &["db"], 2.0, 1),
        ]);
        run.skipped("net");
        deploying(&mut run, "db", &["net"]);
        run.at(2.0).failed("db", 2);
        run.blocked("api", "db");
        run.complete(DeploymentState::Failed, 2);
        let model = run.model();
        let t = of(&model, at(99.0)).unwrap();
        assert_eq!(names(&t), ["net", "db"]);
        assert_eq!(t.critical_path[0].seconds, 0.0);
        let words = summary_lines(&model, at(99.0)).join("\n");
        assert!(
            words.contains("Critical path 2.0s: net (skipped) → db 2.0s (failed)"),
            "{words}"
        );
        let table = table(&model, at(99.0), 80);
        assert!(
            table.contains("api") && table.contains("blocked"),
            "{table}"
        );
    }

    #[test]
    fn the_table_draws_each_stack_on_the_timeline() {
        let model = diamond(None);
        let text = table(&model, at(99.0), 80);
        let row = |stack: &str| {
            text.lines()
                .find(|l| l.trim_start().starts_with(&format!("{stack} ")))
                .unwrap_or_else(|| panic!("no row for {stack}: {text}"))
                .to_owned()
        };
        // c ran from 10 s to 30 s of 30: the last two thirds of the bar, on the path.
        let c = row("c");
        let bar_of_c = c.rsplit("  ").next().unwrap();
        assert!(bar_of_c.trim_start().chars().all(|ch| ch == '█'), "{c}");
        assert!(c.contains(" * "), "{c}");
        // d is off the path.
        assert!(row("d").contains('▒') && !row("d").contains('█'), "{text}");
        let bar = |start, end, on_path| {
            let span = Span {
                stack: "x".into(),
                status: StackState::Deployed,
                start: Some(start),
                end: Some(end),
                running: false,
                on_path,
            };
            super::bar(&span, 30.0, 30)
        };
        assert_eq!(
            bar(10.0, 30.0, true),
            format!("{}{}", " ".repeat(10), "█".repeat(20))
        );
        // Too short to see still takes a column.
        assert_eq!(bar(0.0, 0.01, false), "▒");
    }

    /// A run of many stacks under one slot: its path is the whole run. The walk looks stacks
    /// up rather than going through all of them at each step, and only the longest path stacks
    /// are simulated (before, a debug build took 5 s for 2,000 such stacks, 108 s for 10,000).
    #[test]
    fn a_long_path_stays_cheap() {
        let n = 5_000;
        let names: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
        let plan: Vec<(&str, u32, &[&str], f64, u32)> = names
            .iter()
            .map(|s| (s.as_str(), 1, &[][..], 1.0, 1))
            .collect();
        let mut run = RunBuilder::start(&plan);
        if let Some(EventData::DeploymentStarted(s)) = run.events.first_mut().map(|e| &mut e.data) {
            s.parallelism = Some(1);
        }
        for (i, name) in names.iter().enumerate() {
            run.at(i as f64);
            deploying(&mut run, name, &[]);
            run.at(i as f64 + 1.0).deployed(name, 1);
        }
        run.complete(DeploymentState::Deployed, n as u64);
        let model = run.model();
        let started = std::time::Instant::now();
        let t = of(&model, at(0.0)).unwrap();
        assert_eq!(t.critical_path.len(), n);
        let simulated = t
            .critical_path
            .iter()
            .filter(|s| s.saving_seconds.is_some());
        assert_eq!(simulated.count(), SIMULATION_BUDGET / n);
        assert_eq!(t.critical_path[0].saving_seconds, Some(1.0));
        eprintln!("{n} stacks in a row: {:?}", started.elapsed());
    }

    #[test]
    fn a_run_going_on_is_timed_to_now() {
        let mut run = RunBuilder::start(&[("a", 1, &[], 5.0, 1)]);
        deploying(&mut run, "a", &[]);
        let t = of(&run.model(), at(4.0)).unwrap();
        assert_eq!(t.wall_seconds, 4.0);
        assert!(t.stacks[0].running);
        assert_eq!(t.critical_path[0].seconds, 4.0);
        // Nothing started yet: nothing to say.
        let idle = RunBuilder::start(&[("a", 1, &[], 5.0, 1)]).model();
        assert!(of(&idle, at(1.0)).is_none());
        assert!(summary_lines(&idle, at(1.0)).is_empty());
    }
}
