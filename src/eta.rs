//! How long is left: the arithmetic, on plain inputs (the model gathers them, see
//! `progress::Model::schedule_remaining`). The run computes the ETA once, where it emits
//! progress, and carries it in `deployment_progress`; every consumer counts that down.
//!
//! - A running stack within its expected duration (its recent median) has the rest of that
//!   duration. Past it, its resources say: the one in flight needs what its type took in
//!   earlier runs, the ones not started yet the typical resource's time; with nothing known of
//!   its resources, a while that grows with the overrun — never "~0s".
//! - The deployment: the remaining schedule simulated — stacks in dependency order, within the
//!   parallelism limit, longest remaining chain first.
//! - The estimate shown is smoothed ([`Countdown`]): it counts down, and only moves when a new
//!   estimate disagrees with the countdown by more than the noise.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use chrono::{DateTime, Utc};

/// A running stack, as its remaining time is judged.
#[derive(Debug, Clone, Copy)]
pub struct Running {
    pub elapsed: f64,
    /// Its expected duration; 0 when unknown.
    pub expected: f64,
    /// Resources it has not started yet, when it said how many it has.
    pub not_started: usize,
    /// What a resource of it typically takes (earlier runs), when known.
    pub typical_resource: Option<f64>,
}

/// A resource in flight: what its type typically takes (if known) and how long it has taken.
pub type InFlight = (Option<f64>, f64);

/// Seconds left for a running stack; `None` when nothing is known.
pub fn running_remaining(stack: Running, in_flight: &[InFlight]) -> Option<f64> {
    let Running {
        elapsed,
        expected,
        not_started,
        typical_resource,
    } = stack;
    if expected > 0.0 && elapsed < expected {
        return Some(expected - elapsed);
    }
    let left = in_flight
        .iter()
        .filter_map(|&(typical, taken)| Some(overrun(typical.or(typical_resource)?, taken)))
        .fold(None, |most: Option<f64>, s| {
            Some(most.map_or(s, |m| m.max(s)))
        });
    match typical_resource {
        // Resources of a stack run one after another more often than not.
        Some(typical) if left.is_some() || not_started > 0 => {
            Some(left.unwrap_or(0.0) + not_started as f64 * typical)
        }
        _ if left.is_some() => left,
        _ if expected > 0.0 => Some(overrun(expected, elapsed)),
        _ => None,
    }
}

/// What is left of something that typically takes `typical` and has taken `taken`.
fn overrun(typical: f64, taken: f64) -> f64 {
    if taken < typical {
        typical - taken
    } else {
        0.1 * typical + 0.25 * (taken - typical)
    }
}

/// The median of some durations.
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(values[values.len() / 2])
}

/// A stack as the remaining schedule sees it.
#[derive(Debug, Clone)]
pub struct Task {
    pub state: TaskState,
    /// Pending: its expected duration; running: its remaining time.
    pub seconds: f64,
    /// Indexes of the tasks it depends on (earlier in the list).
    pub dependencies: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    Todo,
    Running,
    Done,
}

/// Seconds until the last task is done, if the remaining ones take as long as expected.
/// Tasks come in dependency order.
pub fn schedule_remaining(tasks: &[Task], parallelism: Option<usize>) -> f64 {
    let n = tasks.len();
    // What each task still waits for, and who waits for it.
    let mut waiting = vec![0usize; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, t) in tasks.iter().enumerate() {
        if t.state != TaskState::Todo {
            continue;
        }
        for &d in &t.dependencies {
            if tasks[d].state != TaskState::Done {
                waiting[i] += 1;
                dependents[d].push(i);
            }
        }
    }
    // Longest remaining chain from each task.
    let seconds: Vec<f64> = tasks
        .iter()
        .map(|t| match t.state {
            TaskState::Done => 0.0,
            _ => t.seconds.max(0.0),
        })
        .collect();
    let mut chain = seconds.clone();
    for i in (0..n).rev() {
        let above = dependents[i].iter().map(|&j| chain[j]).fold(0.0, f64::max);
        chain[i] = seconds[i] + above;
    }
    let slots = parallelism.unwrap_or(usize::MAX).max(1);
    let mut running: BinaryHeap<Reverse<(Time, usize)>> = BinaryHeap::new();
    let mut ready: BinaryHeap<(Time, Reverse<usize>)> = BinaryHeap::new();
    for (i, t) in tasks.iter().enumerate() {
        match t.state {
            TaskState::Running => running.push(Reverse((Time(seconds[i]), i))),
            TaskState::Todo if waiting[i] == 0 => ready.push((Time(chain[i]), Reverse(i))),
            _ => {}
        }
    }
    let mut clock = 0.0f64;
    loop {
        while running.len() < slots {
            let Some((_, Reverse(i))) = ready.pop() else {
                break;
            };
            running.push(Reverse((Time(clock + seconds[i]), i)));
        }
        let Some(Reverse((Time(end), i))) = running.pop() else {
            break;
        };
        clock = end;
        for &j in &dependents[i] {
            waiting[j] -= 1;
            if waiting[j] == 0 {
                ready.push((Time(chain[j]), Reverse(j)));
            }
        }
    }
    clock
}

/// An f64 that orders (durations are never NaN here).
#[derive(Clone, Copy)]
struct Time(f64);

impl PartialEq for Time {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Time {}

impl PartialOrd for Time {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Time {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// How long a computed schedule stays good: within it, and while no more than a hundredth of
/// the stacks ended since, the schedule is counted down rather than simulated again. Stacks
/// that end in a burst (10,000 of them in a second or two) would otherwise cost a simulation
/// of the whole deployment each; a small deployment is simulated again at every stack's end.
pub const REFRESH_MS: i64 = 250;

/// The last estimate and when it was made: the countdown new estimates are held against; and
/// the last schedule simulated, reused for [`REFRESH_MS`]. Owned by the one who emits progress
/// (the orchestrator): the model keeps no copy.
#[derive(Debug, Default, Clone)]
pub struct Countdown {
    shown: Option<(DateTime<Utc>, f64)>,
    /// When, how many stacks had ended then, and the answer.
    simulated: Option<(DateTime<Utc>, u32, f64)>,
}

impl Countdown {
    /// Seconds left at `now`, with `ended` of `total` stacks ended: `simulate()`'s answer (the
    /// last one, counted down, when it is recent enough: see [`REFRESH_MS`]), smoothed.
    pub fn estimate(
        &mut self,
        now: DateTime<Utc>,
        ended: u32,
        total: u32,
        simulate: impl FnOnce() -> f64,
    ) -> f64 {
        let recent = self.simulated.and_then(|(at, ended_then, raw)| {
            let age = (now - at).num_milliseconds();
            let fresh = (0..REFRESH_MS).contains(&age)
                && ended >= ended_then
                && ended - ended_then <= total / 100;
            fresh.then(|| raw - age as f64 / 1000.0)
        });
        let raw = match recent {
            Some(raw) => raw,
            None => {
                let raw = simulate();
                self.simulated = Some((now, ended, raw));
                raw
            }
        };
        self.smooth(now, raw)
    }

    /// `raw`, unless the countdown from the last estimate is within the noise of it.
    pub fn smooth(&mut self, now: DateTime<Utc>, raw: f64) -> f64 {
        if let Some((at, value)) = self.shown {
            let counted = value - (now - at).num_milliseconds().max(0) as f64 / 1000.0;
            let noise = (0.05 * raw).max(1.0);
            if (counted - raw).abs() <= noise && counted > 0.0 {
                return counted;
            }
        }
        self.shown = Some((now, raw));
        raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(state: TaskState, seconds: f64, dependencies: &[usize]) -> Task {
        Task {
            state,
            seconds,
            dependencies: dependencies.to_vec(),
        }
    }

    #[test]
    fn the_schedule_follows_dependencies_and_the_limit() {
        use TaskState::*;
        // a(10) → b(5), a → c(20); d(30) alone.
        let tasks = [
            task(Todo, 10.0, &[]),
            task(Todo, 5.0, &[0]),
            task(Todo, 20.0, &[0]),
            task(Todo, 30.0, &[]),
        ];
        assert_eq!(schedule_remaining(&tasks, None), 30.0);
        // One at a time: everything in a row.
        assert_eq!(schedule_remaining(&tasks, Some(1)), 65.0);
        // Two slots, longest chain first: a+c (30) beside d (30), then b.
        assert_eq!(schedule_remaining(&tasks, Some(2)), 35.0);
        let running = [
            task(Running, 4.0, &[]),
            task(Todo, 5.0, &[0]),
            task(Done, 9.0, &[]),
        ];
        assert_eq!(schedule_remaining(&running, None), 9.0);
    }

    #[test]
    fn a_stack_past_its_expected_time_is_judged_by_its_resources() {
        let within = Running {
            elapsed: 10.0,
            expected: 30.0,
            not_started: 1,
            typical_resource: Some(5.0),
        };
        assert_eq!(running_remaining(within, &[]), Some(20.0));
        let past = Running {
            elapsed: 40.0,
            ..within
        };
        // The instance (typically 25 s, 12 s in) and one more resource of 5 s.
        assert_eq!(running_remaining(past, &[(Some(25.0), 12.0)]), Some(18.0));
        // Nothing known of its resources: never zero, and more the longer it overruns.
        let blind = Running {
            elapsed: 40.0,
            expected: 30.0,
            not_started: 0,
            typical_resource: None,
        };
        let later = Running {
            elapsed: 80.0,
            ..blind
        };
        assert!(running_remaining(blind, &[]).unwrap() > 0.0);
        assert!(running_remaining(later, &[]) > running_remaining(blind, &[]));
    }

    #[test]
    fn a_schedule_is_reused_only_while_little_has_ended() {
        let t0 = Utc::now();
        let later = |ms| t0 + chrono::Duration::milliseconds(ms);
        let simulations = std::cell::Cell::new(0);
        let answer = |raw: f64| {
            simulations.set(simulations.get() + 1);
            raw
        };
        // A big run: 10 of 10,000 stacks ending within 100 ms reuse the schedule.
        let mut big = Countdown::default();
        assert_eq!(big.estimate(t0, 0, 10_000, || answer(100.0)), 100.0);
        assert_eq!(big.estimate(later(100), 10, 10_000, || answer(50.0)), 99.9);
        assert_eq!(simulations.get(), 1);
        // ... but not after REFRESH_MS, nor after a hundredth of the stacks.
        big.estimate(later(300), 10, 10_000, || answer(99.7));
        big.estimate(later(310), 200, 10_000, || answer(99.6));
        assert_eq!(simulations.get(), 3);
        // A small run: every stack's end is news (the last one: nothing left).
        let mut small = Countdown::default();
        small.estimate(t0, 1, 3, || answer(120.0));
        assert_eq!(small.estimate(later(5), 3, 3, || answer(0.0)), 0.0);
        assert_eq!(simulations.get(), 5);
    }
}
