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
    /// How much longer than usual its finished resources took (their time over what their
    /// types typically take; 1 when nothing is known). A slow stack tends to stay slow (a
    /// throttled API, a busy region): what is left of it is scaled by this.
    pub slowdown: f64,
    /// How much longer than their types' usual time its finished resources took, in all
    /// (negative: shorter).
    pub deviation: f64,
}

/// A resource in flight: what its type typically takes (if known) and how long it has taken.
pub type InFlight = (Option<f64>, f64);

/// Below this, a stack's resources taking longer than usual is noise, not news.
pub const SLOW: f64 = 1.5;

/// How much slower than usual some finished resources were, as [`Running::slowdown`]: their
/// time over their types' typical time, when that is clearly more than noise ([`SLOW`]), else 1.
pub fn slowdown(finished: impl IntoIterator<Item = (f64, f64)>) -> f64 {
    let (took, typical) = finished
        .into_iter()
        .fold((0.0, 0.0), |(a, b), (took, typical)| {
            (a + took, b + typical)
        });
    let ratio = if typical > 0.0 { took / typical } else { 1.0 };
    if ratio >= SLOW {
        ratio.min(10.0)
    } else {
        1.0
    }
}

/// Seconds left for a running stack; `None` when nothing is known.
///
/// Its expected duration, less what it has run, corrected by what its resources say: those
/// that finished took `deviation` longer (or shorter) than usual, the ones in flight have their
/// type's usual time left (past it, a while that grows with the overrun), and what it has not
/// started yet is scaled by its slowdown. When that explains nothing (a stack past its
/// expected time for reasons its resources do not show), what its resources have left, else a
/// while that grows with the overrun — never "~0s".
pub fn running_remaining(stack: Running, in_flight: &[InFlight]) -> Option<f64> {
    let Running {
        elapsed,
        expected,
        not_started,
        typical_resource,
        slowdown,
        deviation,
    } = stack;
    let known: Vec<(f64, f64)> = in_flight
        .iter()
        .filter_map(|&(typical, taken)| Some((typical.or(typical_resource)?, taken)))
        .collect();
    let flying = known
        .iter()
        .map(|&(typical, taken)| overrun(typical * slowdown, taken))
        .fold(None, |most: Option<f64>, s| {
            Some(most.map_or(s, |m| m.max(s)))
        });
    if expected > 0.0 {
        // The expected time of what has not started (and of the stack's own work around its
        // resources), once what ran is accounted for.
        let in_flight_over: f64 = known.iter().map(|&(typical, taken)| taken - typical).sum();
        let rest = expected - elapsed + deviation + in_flight_over;
        if rest > 0.0 {
            return Some(rest * slowdown + flying.unwrap_or(0.0));
        }
    }
    match (flying, typical_resource) {
        // Resources of a stack run one after another more often than not.
        (left, Some(typical)) if left.is_some() || not_started > 0 => {
            Some(left.unwrap_or(0.0) + not_started as f64 * typical * slowdown)
        }
        (Some(left), _) => Some(left),
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
pub struct Task<'a> {
    pub state: TaskState,
    /// Pending: its expected duration; running: its remaining time.
    pub seconds: f64,
    /// Indexes of the tasks it depends on (earlier in the list).
    pub dependencies: &'a [usize],
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
    match parallelism {
        // Every task starts once its dependencies end: the schedule is the longest chain, found
        // without simulating slots (the same sums in the same order, so the same seconds).
        None => as_soon_as_possible(tasks).unwrap_or_else(|| schedule(tasks, None).seconds),
        Some(_) => schedule(tasks, parallelism).seconds,
    }
}

/// [`schedule`]'s seconds without a parallelism limit, in one pass down the list: a task to do
/// ends its own seconds after the last of its unfinished dependencies, a running one its
/// remaining seconds from now; the run ends with the last. No heap, no allocation but the ends:
/// `cloud status --timing`'s savings simulate a run once per stack on its path. `None` when a
/// dependency comes later in the list (tasks out of dependency order).
fn as_soon_as_possible(tasks: &[Task]) -> Option<f64> {
    let mut end = vec![0.0f64; tasks.len()];
    let mut last = 0.0f64;
    for (i, t) in tasks.iter().enumerate() {
        let seconds = t.seconds.max(0.0);
        end[i] = match t.state {
            TaskState::Done => continue,
            TaskState::Running => seconds,
            TaskState::Todo => {
                let mut start = 0.0f64;
                for &d in t.dependencies {
                    if d >= i {
                        return None;
                    }
                    if tasks[d].state != TaskState::Done {
                        start = start.max(end[d]);
                    }
                }
                start + seconds
            }
        };
        last = last.max(end[i]);
    }
    Some(last)
}

/// The remaining schedule, simulated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schedule {
    /// Seconds until the last task is done.
    pub seconds: f64,
    /// The chain the end hangs on, first to last (indexes of unfinished tasks): the task that
    /// ends last, the dependency it waited for last, and so on back to one that could start at
    /// once. Shorten any of them and the run can end sooner; with no parallelism limit, this is
    /// the longest remaining chain.
    pub critical_path: Vec<usize>,
}

/// The remaining schedule: stacks in dependency order, within the parallelism limit, longest
/// remaining chain first (as the orchestrator starts them). Tasks come in dependency order.
pub fn schedule(tasks: &[Task], parallelism: Option<usize>) -> Schedule {
    let n = tasks.len();
    // What each task still waits for, and who waits for it.
    let mut waiting = vec![0usize; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, t) in tasks.iter().enumerate() {
        if t.state != TaskState::Todo {
            continue;
        }
        for &d in t.dependencies {
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
    // The dependency each task waited for last (`usize::MAX`: none).
    let mut gate = vec![usize::MAX; n];
    let mut last = None;
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
        last = Some(i);
        for &j in &dependents[i] {
            waiting[j] -= 1;
            if waiting[j] == 0 {
                gate[j] = i;
                ready.push((Time(chain[j]), Reverse(j)));
            }
        }
    }
    let mut critical_path: Vec<usize> =
        std::iter::successors(last, |&i| (gate[i] != usize::MAX).then_some(gate[i])).collect();
    critical_path.reverse();
    Schedule {
        seconds: clock,
        critical_path,
    }
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
    simulated: Option<(DateTime<Utc>, u32, Schedule)>,
}

impl Countdown {
    /// Seconds left at `now`, with `ended` of `total` stacks ended: `simulate()`'s answer (the
    /// last one, counted down, when it is recent enough: see [`REFRESH_MS`]), smoothed.
    pub fn estimate(
        &mut self,
        now: DateTime<Utc>,
        ended: u32,
        total: u32,
        simulate: impl FnOnce() -> Schedule,
    ) -> f64 {
        let recent = self.simulated.as_ref().and_then(|(at, ended_then, last)| {
            let age = (now - *at).num_milliseconds();
            let fresh = (0..REFRESH_MS).contains(&age)
                && ended >= *ended_then
                && ended - ended_then <= total / 100;
            fresh.then(|| last.seconds - age as f64 / 1000.0)
        });
        let raw = match recent {
            Some(raw) => raw,
            None => {
                let schedule = simulate();
                let raw = schedule.seconds;
                self.simulated = Some((now, ended, schedule));
                raw
            }
        };
        self.smooth(now, raw)
    }

    /// The critical path of the last schedule simulated (task indexes, first to last; some may
    /// have ended since).
    pub fn critical_path(&self) -> &[usize] {
        self.simulated
            .as_ref()
            .map_or(&[], |(_, _, s)| &s.critical_path[..])
    }

    /// `raw`, unless the countdown from the last estimate is within the noise of it.
    pub fn smooth(&mut self, now: DateTime<Utc>, raw: f64) -> f64 {
        if let Some((at, value)) = self.shown {
            let counted = value - (now - at).num_milliseconds().max(0) as f64 / 1000.0;
            // 5 %, at least a second — less near the end, where a second is a fifth of what
            // is left and a countdown a second off is the whole error.
            let noise = (0.05 * raw).max((0.1 * raw).min(1.0));
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

    fn task(state: TaskState, seconds: f64, dependencies: &[usize]) -> Task<'_> {
        Task {
            state,
            seconds,
            dependencies,
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
    fn the_critical_path_is_the_chain_the_end_waits_for() {
        use TaskState::*;
        // a done; b running (20 s left) then e (6 s): 26 s; c (20 s) and d (25 s left) end
        // sooner: the end waits on b → e.
        let tasks = [
            task(Done, 10.0, &[]),
            task(Running, 20.0, &[0]),
            task(Todo, 20.0, &[0]),
            task(Running, 25.0, &[]),
            task(Todo, 6.0, &[1]),
        ];
        let s = schedule(&tasks, None);
        assert_eq!((s.seconds, s.critical_path), (26.0, vec![1, 4]));
        // Nothing running past the first layer: the chain from a root.
        let fresh = [
            task(Todo, 10.0, &[]),
            task(Todo, 5.0, &[0]),
            task(Todo, 20.0, &[0]),
            task(Todo, 29.0, &[]),
        ];
        assert_eq!(schedule(&fresh, None).critical_path, vec![0, 2]);
        // One slot: everything in a row; the end waits on the last one started, which waited
        // for its dependency.
        let one = schedule(&fresh, Some(1));
        assert_eq!(one.seconds, 64.0);
        assert_eq!(one.critical_path.last(), Some(&1));
        assert!(schedule(&[task(Done, 1.0, &[])], None)
            .critical_path
            .is_empty());
    }

    #[test]
    fn a_stack_past_its_expected_time_is_judged_by_its_resources() {
        let within = Running {
            elapsed: 10.0,
            expected: 30.0,
            not_started: 1,
            typical_resource: Some(5.0),
            slowdown: 1.0,
            deviation: 0.0,
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
            slowdown: 1.0,
            deviation: 0.0,
        };
        let later = Running {
            elapsed: 80.0,
            ..blind
        };
        assert!(running_remaining(blind, &[]).unwrap() > 0.0);
        assert!(running_remaining(later, &[]) > running_remaining(blind, &[]));
    }

    #[test]
    fn a_stack_whose_resources_run_long_is_expected_to_stay_slow() {
        // ±20 % is noise; three times the usual is news.
        assert_eq!(slowdown([(1.2, 1.0), (0.9, 1.0)]), 1.0);
        assert_eq!(slowdown([(3.0, 1.0), (6.0, 2.0)]), 3.0);
        assert_eq!(slowdown([]), 1.0);
        // Usually 6 s (three resources of 2 s); the first took 6 s: the other two will too.
        let slow = Running {
            elapsed: 6.5,
            expected: 6.0,
            not_started: 1,
            typical_resource: Some(2.0),
            slowdown: 3.0,
            deviation: 4.0,
        };
        let left = running_remaining(slow, &[(Some(2.0), 0.5)]).unwrap();
        assert!((left - 11.5).abs() < 1e-9, "{left}");
        // Within its usual time, but its first resource is already at twice its usual 2 s:
        // not "2 s left".
        let early = Running {
            elapsed: 4.0,
            expected: 6.0,
            not_started: 2,
            typical_resource: Some(2.0),
            slowdown: 1.0,
            deviation: 0.0,
        };
        assert_eq!(running_remaining(early, &[(Some(2.0), 0.5)]), Some(2.0));
        let long = running_remaining(early, &[(Some(2.0), 4.0)]).unwrap();
        assert!(long > 4.0, "{long}");
    }

    /// Without a limit, the longest chain is the simulation's end to the last bit: random
    /// graphs (some tasks running or done, fractional seconds).
    #[test]
    fn without_a_limit_the_longest_chain_is_what_the_simulation_says() {
        use TaskState::*;
        let mut rng = fastrand::Rng::with_seed(24);
        for round in 0..500 {
            let n = rng.usize(1..60);
            let deps: Vec<Vec<usize>> = (0..n)
                .map(|i| match i {
                    0 => Vec::new(),
                    _ => (0..rng.usize(0..4)).map(|_| rng.usize(0..i)).collect(),
                })
                .collect();
            // Half the rounds list them out of dependency order (the simulation then decides).
            let mut order: Vec<usize> = (0..n).collect();
            if round % 2 == 1 {
                rng.shuffle(&mut order);
            }
            let mut position = vec![0; n];
            for (k, &i) in order.iter().enumerate() {
                position[i] = k;
            }
            let listed: Vec<Vec<usize>> = (order.iter())
                .map(|&i| deps[i].iter().map(|&d| position[d]).collect())
                .collect();
            let tasks: Vec<Task> = (listed.iter())
                .map(|dependencies| {
                    let state = match rng.u8(0..10) {
                        0 => Done,
                        1 => Running,
                        _ => Todo,
                    };
                    task(
                        state,
                        rng.f64() * 7.3 + rng.u8(0..3) as f64 * 0.1,
                        dependencies,
                    )
                })
                .collect();
            let simulated = schedule(&tasks, None).seconds;
            let chained = schedule_remaining(&tasks, None);
            assert_eq!(
                chained.to_bits(),
                simulated.to_bits(),
                "round {round}: {chained} vs {simulated}"
            );
        }
    }

    #[test]
    fn a_schedule_is_reused_only_while_little_has_ended() {
        let t0 = Utc::now();
        let later = |ms| t0 + chrono::Duration::milliseconds(ms);
        let simulations = std::cell::Cell::new(0);
        let answer = |raw: f64| {
            simulations.set(simulations.get() + 1);
            Schedule {
                seconds: raw,
                critical_path: Vec::new(),
            }
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
