//! How long is left, from the one model: a simulation of the remaining schedule — stacks in
//! dependency order, within the parallelism limit, longest remaining chain first — with each
//! pending stack's expected duration and each running stack's remaining time, judged from its
//! elapsed time and the pace of its resources (a stack past its expected duration is not
//! "~0s"). The estimate is smoothed: it counts down, and only moves when a new simulation
//! disagrees with the countdown by more than the noise.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::event::StackState;
use crate::progress::{seconds_between, Model, StackModel};

/// Seconds left for a running stack; `None` when it is not running, or nothing is known.
///
/// Within its expected duration (its recent median), the rest of that duration. Past it, from
/// its resources: what the one in flight still needs (by the median of its type in earlier
/// runs), and the ones not started yet at the median pace; with nothing known of its
/// resources, a while that grows with the overrun — never "~0s".
pub fn stack_remaining(
    stack: &StackModel,
    now: DateTime<Utc>,
    type_seconds: &BTreeMap<String, f64>,
) -> Option<f64> {
    if stack.status != StackState::Deploying {
        return None;
    }
    let elapsed = stack.elapsed(now);
    let expected = stack.estimated_seconds;
    if expected > 0.0 && elapsed < expected {
        return Some(expected - elapsed);
    }
    let overrun = |typical: f64, taken: f64| {
        if taken < typical {
            typical - taken
        } else {
            0.1 * typical + 0.25 * (taken - typical)
        }
    };
    let typical_resource = {
        let known: Vec<f64> = stack
            .resource_list
            .iter()
            .filter_map(|r| type_seconds.get(&r.type_).copied())
            .collect();
        if known.is_empty() {
            median(type_seconds.values().copied().collect())
        } else {
            median(known)
        }
    };
    let in_flight: Vec<f64> = stack
        .resource_list
        .iter()
        .filter(|r| !r.status.is_finished())
        .filter_map(|r| {
            let typical = type_seconds.get(&r.type_).copied().or(typical_resource)?;
            Some(overrun(typical, seconds_between(r.start_time, now)))
        })
        .collect();
    let not_started = stack.resources.expected.map_or(0, |n| {
        (n as usize).saturating_sub(stack.resource_list.len())
    });
    match typical_resource {
        Some(typical) if !in_flight.is_empty() || not_started > 0 => {
            // Resources of a stack run one after another more often than not.
            Some(in_flight.iter().copied().fold(0.0, f64::max) + not_started as f64 * typical)
        }
        _ if expected > 0.0 => Some(overrun(expected, elapsed)),
        _ => None,
    }
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(values[values.len() / 2])
}

/// Seconds until the last stack is done, if the remaining ones take as long as expected.
pub fn schedule_remaining(model: &Model, now: DateTime<Utc>) -> f64 {
    #[derive(Clone, Copy, PartialEq)]
    enum Left {
        Todo,
        Running,
        Done,
    }
    let n = model.stacks.len();
    let mut left = vec![Left::Done; n];
    let mut seconds = vec![0.0f64; n];
    for (i, s) in model.stacks.iter().enumerate() {
        match s.status {
            StackState::Pending if !s.rolled_back => {
                left[i] = Left::Todo;
                seconds[i] = s.estimated_seconds.max(0.0);
            }
            StackState::Deploying => {
                left[i] = Left::Running;
                seconds[i] = stack_remaining(s, now, &model.resource_seconds)
                    .unwrap_or(0.0)
                    .max(1.0);
            }
            _ => {}
        }
    }
    // What each stack still waits for, and who waits for it.
    let mut waiting = vec![0usize; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, s) in model.stacks.iter().enumerate() {
        if left[i] != Left::Todo {
            continue;
        }
        for d in s.dependencies.iter().filter_map(|d| model.stack_index(d)) {
            if left[d] != Left::Done {
                waiting[i] += 1;
                dependents[d].push(i);
            }
        }
    }
    // Longest remaining chain from each stack (stacks are in dependency order).
    let mut chain = seconds.clone();
    for i in (0..n).rev() {
        let above = dependents[i].iter().map(|&j| chain[j]).fold(0.0, f64::max);
        chain[i] = seconds[i] + above;
    }
    let slots = model.parallelism.unwrap_or(usize::MAX).max(1);
    let mut running: BinaryHeap<Reverse<(Time, usize)>> = BinaryHeap::new();
    let mut ready: BinaryHeap<(Time, Reverse<usize>)> = BinaryHeap::new();
    for i in 0..n {
        match left[i] {
            Left::Running => running.push(Reverse((Time(seconds[i]), i))),
            Left::Todo if waiting[i] == 0 => ready.push((Time(chain[i]), Reverse(i))),
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

/// The last estimate and when it was made: the countdown that new estimates are held against.
#[derive(Debug, Default)]
pub struct Countdown(Mutex<Option<(DateTime<Utc>, f64)>>);

impl Clone for Countdown {
    fn clone(&self) -> Self {
        Countdown(Mutex::new(
            *self.0.lock().unwrap_or_else(|e| e.into_inner()),
        ))
    }
}

impl Countdown {
    /// `raw`, unless the countdown from the last estimate is within the noise of it.
    pub fn smooth(&self, now: DateTime<Utc>, raw: f64) -> f64 {
        let mut last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, value)) = *last {
            let counted = value - seconds_between(at, now);
            let noise = (0.05 * raw).max(1.0);
            if (counted - raw).abs() <= noise && counted > 0.0 {
                return counted;
            }
        }
        *last = Some((now, raw));
        raw
    }
}
