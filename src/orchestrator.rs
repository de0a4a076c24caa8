//! Runs a plan: starts each stack as soon as its dependencies are done (never waiting for its
//! whole layer), within the parallelism limit and longest critical path first, and turns
//! executor updates into numbered events. It never waits on a consumer: events go to the
//! bus's [`Publisher`], whose queues never block.
//!
//! A run is one or two phases over the same event stream: the operation (deploy, or destroy on
//! a reversed plan), then — when it failed and `--rollback-on-failure` asks — the rollback of
//! what it deployed, in reverse dependency order. A deploy skips stacks that have not changed
//! since their last successful deploy (smart skip) and those not selected (`--only`).
//!
//! A plan (`cloud plan`) is the deploy's pass with each stack's preview in place of its deploy:
//! the same order, skips and failures, and nothing changes. Its dependents are planned on their
//! dependencies' current outputs, and are *provisional* when a dependency's plan changes an
//! output they read (see `Scheduler::provisional`).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use tokio::sync::mpsc;

use crate::bus::Publisher;
use crate::cancel::Cancel;
use crate::eta;
use crate::event::{
    resource_urn, DeploymentCancelling, DeploymentComplete, DeploymentFailed, DeploymentStarted,
    DeploymentState, DriftStatus, ErrorCode, ErrorDetail, Event, EventData, LayerComplete,
    LayerStarted, LogLevel, Operation, Outputs, PlanAction, PlanCounts, PlanSummary,
    ResourceDrifted, ResourceEvent, ResourcePlanned, ResourceRef, ResourceState, RollbackComplete,
    RollbackStarted, SkipReason, StackBlocked, StackDeployed, StackDeploying, StackDestroyed,
    StackDestroying, StackDriftChecked, StackFailed, StackLog, StackPlanned, StackProgress,
    StackRetrying, StackSkipped, StackState, StopReason,
};
use crate::executor::{
    self, is_shown_secret, Deployed, ExecutorUpdate, Job, LastDeploy, Message, Updates,
};
use crate::health::{self, Health};
use crate::manifest::Inputs;
use crate::plan::saved::{self, SavedApply, StackDigests};
use crate::plan::{fingerprint, Plan};
use crate::progress::{seconds_between, Model};
use crate::retry;
use crate::secrets::Secrets;
use crate::words;

/// How often a running deployment checks that the ETA it last carried still holds.
const ETA_TICK: Duration = Duration::from_secs(1);

/// How to run a plan.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub environment: String,
    /// Deploy, or destroy (the plan is then reversed: dependents go first).
    pub operation: Operation,
    /// At most this many stacks at once; `None`: no limit.
    pub parallelism: Option<usize>,
    /// After a failure, start no new stacks.
    pub fail_fast: bool,
    /// How long a stopping executor gets after SIGINT before SIGKILL.
    pub grace: Duration,
    pub run_id: String,
    pub user: Option<String>,
    /// Scratch space for executors (output files).
    pub scratch: PathBuf,
    /// What earlier runs left, by stack: outputs (read by dependents of stacks that do not run)
    /// and the fingerprint of the last successful deploy.
    pub previous: BTreeMap<String, Previous>,
    /// Which stacks a deploy may skip.
    pub skip: SkipPolicy,
    /// When the deploy fails, roll back the stacks it deployed.
    pub rollback_on_failure: bool,
    /// `deploy --plan DIR`: the reviewed plan it applies.
    pub saved: Option<Arc<SavedApply>>,
    /// `--no-retry`: every stack gets one attempt, whatever its `retry:` says.
    pub no_retry: bool,
}

/// A stack as the last runs left it.
#[derive(Debug, Clone, Default)]
pub struct Previous {
    /// Its drift health, when a drift check was recorded: a drifted stack is never skipped.
    pub health: Option<Health>,
    /// As shown: secret ones are `[secret]` (`cloud` keeps no secret value between runs).
    pub outputs: Outputs,
    /// Fingerprint of its last successful deploy.
    pub fingerprint: Option<String>,
    /// Why its latest attempt in this environment did not succeed (`failed`, `cancelled`,
    /// `interrupted`, …), when it did not: such a stack is never skipped.
    pub unsettled: Option<String>,
}

/// Smart skip and selection, for a deploy.
#[derive(Debug, Clone, Default)]
pub struct SkipPolicy {
    /// Deploy every stack, changed or not.
    pub force: bool,
    /// Deploy only these stacks; the others are skipped (`not_selected`).
    pub only: Option<BTreeSet<String>>,
    /// `deploy --only-drifted`: these drifted stacks, and the dependents whose fingerprint
    /// their new outputs change; the others are skipped (`not_selected`).
    pub heal: Option<BTreeSet<String>>,
    /// Per plan stack, the fingerprint of the files under its `path` (`None`: unknown, so it is
    /// never skipped as unchanged).
    pub files: Vec<Option<String>>,
}

/// How a run ended.
#[derive(Debug)]
pub struct RunResult {
    pub status: DeploymentState,
    pub cancelled: bool,
    /// The final state, folded by the one reducer.
    pub model: Model,
    /// A plan: what each planned stack was planned from, for `--out`.
    pub planned: BTreeMap<String, StackDigests>,
}

/// Runs `plan` to the end: every stack done, skipped, failed, blocked, or (after a stop) not
/// started; then, if asked and needed, the rollback.
pub async fn run(plan: &Plan, opts: &RunOptions, bus: Publisher, cancel: Cancel) -> RunResult {
    let mut run = Run {
        deployment_id: plan.deployment_id.clone(),
        model: Model::new(&plan.deployment_id, &opts.environment),
        sequence: 0,
        outputs: opts
            .previous
            .iter()
            .map(|(name, p)| (name.clone(), Deployed::from(p.outputs.clone())))
            .collect(),
        first_failure: None,
        told_stop: None,
        countdown: Default::default(),
        said_path: Vec::new(),
        progress_at: None,
        secrets: Secrets::new(),
        read_back: Arc::default(),
        planned: BTreeMap::new(),
        opts,
        bus,
        cancel,
    };
    run.learn_env_secrets(plan);
    let limit = opts
        .parallelism
        .or(plan.parallelism)
        .unwrap_or(usize::MAX)
        .max(1);
    let parallelism = (limit != usize::MAX).then_some(limit);
    run.emit(EventData::DeploymentStarted(DeploymentStarted {
        total_stacks: plan.stacks.len() as u32,
        total_layers: plan.total_layers(),
        estimated_duration: plan.estimated_seconds(parallelism).ceil() as u64,
        operation: opts.operation,
        run_id: opts.run_id.clone(),
        user: opts.user.clone(),
        parallelism,
        stacks: plan.planned_stacks(),
        resource_seconds: plan.resource_seconds.clone(),
    }));
    let phase = match opts.operation {
        Operation::Deploy => Phase::Deploy,
        Operation::Plan => Phase::Plan,
        Operation::Drift => Phase::Drift,
        Operation::Destroy | Operation::Rollback => Phase::Destroy,
    };
    Scheduler::new(&mut run, plan, phase, limit).go().await;
    let mut status = run.outcome();
    if status == DeploymentState::Failed
        && opts.rollback_on_failure
        && opts.operation == Operation::Deploy
        && !run.cancel.is_halted()
    {
        status = run.rollback(plan, limit).await;
    }
    run.finish(status)
}

/// What a scheduling pass does to each stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Deploy (smart skip and `--only` apply).
    Deploy,
    /// Destroy: the plan is reversed.
    Destroy,
    /// Preview what a deploy would do (smart skip and `--only` apply, `--all` is `force`).
    Plan,
    /// Roll back what this run deployed: the plan is reversed; no layer events (the layers on
    /// screen stay the deploy's).
    Rollback,
    /// Check every stack for drift, all at once (up to the limit): nothing changes, so no stack
    /// waits for another, and dependents read the outputs their dependencies last deployed.
    Drift,
}

impl Phase {
    fn operation(self) -> Operation {
        match self {
            Phase::Deploy => Operation::Deploy,
            Phase::Destroy => Operation::Destroy,
            Phase::Rollback => Operation::Rollback,
            Phase::Plan => Operation::Plan,
            Phase::Drift => Operation::Drift,
        }
    }

    /// Deploy, or its preview: the passes that skip, fingerprint and follow dependencies.
    fn forward(self) -> bool {
        matches!(self, Phase::Deploy | Phase::Plan)
    }
}

/// What the stack's no-preview `stack_planned` says when its executor has no preview.
const NO_PREVIEW: &str = "its executor has no preview";

/// What lasts the whole run: the event stream and what stacks leave for each other.
struct Run<'a> {
    opts: &'a RunOptions,
    deployment_id: String,
    bus: Publisher,
    cancel: Cancel,
    model: Model,
    sequence: u64,
    /// What each stack that deployed (or was skipped, or ran before) left, by name.
    outputs: BTreeMap<String, Deployed>,
    /// The first stack that failed, its layer and error: the run's error summary.
    first_failure: Option<(String, u32, ErrorDetail)>,
    /// The stop told (`deployment_cancelling`): `Some(forced)`.
    told_stop: Option<bool>,
    /// The ETA's smoothing: the ETA is computed here only, and carried in `deployment_progress`.
    countdown: eta::Countdown,
    /// The critical path last said (`deployment_progress.criticalPath`), and when progress was
    /// last emitted.
    said_path: Vec<usize>,
    progress_at: Option<DateTime<Utc>>,
    /// Every secret value the run knows: every event is masked with it before anyone sees it.
    secrets: Secrets,
    /// Outputs of stacks that did not run, read back from their tools for their dependents'
    /// secret inputs (once per stack).
    read_back: ReadBack,
    /// A plan: what each planned stack was planned from.
    planned: BTreeMap<String, StackDigests>,
}

/// Outputs read back from a stack's tool, by stack (the lock is held while one is read).
type ReadBack = Arc<tokio::sync::Mutex<BTreeMap<String, Result<Deployed, ErrorDetail>>>>;

impl Run<'_> {
    /// Secret inputs that read only the environment are known before any stack runs: hidden
    /// from the start, wherever they show up.
    fn learn_env_secrets(&self, plan: &Plan) {
        let none = BTreeMap::new();
        for stack in &plan.stacks {
            for input in stack.spec.inputs.iter().filter(|i| i.secret) {
                if input.stacks().next().is_none() {
                    if let Ok(v) = input.resolve(&stack.spec.name, &none, &|_, _| false) {
                        self.secrets.add(&v.value);
                    }
                }
            }
        }
    }

    /// A deployed stack's outputs as kept for its dependents: its secret outputs' values are
    /// learnt, and an output whose value shows a known secret is secret itself.
    fn learn_outputs(&self, mut deployed: Deployed) -> Deployed {
        for value in deployed.secret_outputs.values() {
            self.secrets.add(value);
        }
        let derived: Vec<String> = deployed
            .outputs
            .iter()
            .filter(|(k, v)| {
                !deployed.secret_outputs.contains_key(*k) && self.secrets.found_in_value(v)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in derived {
            if let Some(value) = deployed
                .outputs
                .insert(key.clone(), executor::SECRET.into())
            {
                self.secrets.add(&value);
                deployed.secret_outputs.insert(key, value);
            }
        }
        deployed
    }

    fn emit(&mut self, data: EventData) {
        let data = self.secrets.mask_event(data);
        self.sequence += 1;
        let event = Arc::new(Event {
            sequence: self.sequence,
            // To the millisecond, as every record keeps it: the live views then compute from
            // the very times a status or a replay reads back.
            timestamp: Utc::now().trunc_subsecs(3),
            deployment_id: self.deployment_id.clone(),
            environment: self.opts.environment.clone(),
            data,
        });
        self.model.apply(&event);
        self.bus.send(event, &self.model);
    }

    fn not_started(&self) -> u32 {
        self.model
            .stacks
            .iter()
            .filter(|s| s.status == StackState::Pending && !s.rolled_back)
            .count() as u32
    }

    /// Deployed (or destroyed) when every stack ran or was skipped.
    fn outcome(&self) -> DeploymentState {
        let ok = self.model.summary.failed_stacks == 0
            && self.model.summary.blocked_stacks == 0
            && self.not_started() == 0
            && !self.cancel.is_halted();
        if ok {
            DeploymentState::Deployed
        } else {
            DeploymentState::Failed
        }
    }

    /// Rolls back the stacks this run deployed (not those it skipped), dependents first.
    async fn rollback(&mut self, plan: &Plan, limit: usize) -> DeploymentState {
        let deployed: BTreeSet<String> = self
            .model
            .stacks
            .iter()
            .filter(|s| s.status == StackState::Deployed)
            .map(|s| s.name.clone())
            .collect();
        if deployed.is_empty() {
            return DeploymentState::Failed;
        }
        let started = Utc::now();
        let reason = self
            .first_failure
            .as_ref()
            .map(|(stack, _, e)| format!("stack `{stack}` failed: {}", e.message));
        let subset = plan.subset(|name| deployed.contains(name)).reversed();
        self.emit(EventData::RollbackStarted(RollbackStarted {
            stacks: subset.stacks.iter().map(|s| s.name().to_owned()).collect(),
            reason,
        }));
        let rolled_back = Scheduler::new(self, &subset, Phase::Rollback, limit)
            .go()
            .await;
        let all = rolled_back.len() == subset.stacks.len();
        let status = if all {
            DeploymentState::RolledBack
        } else {
            DeploymentState::Failed
        };
        self.emit(EventData::RollbackComplete(RollbackComplete {
            status,
            rolled_back_stacks: rolled_back,
            duration_seconds: seconds_between(started, Utc::now()).round() as u64,
        }));
        status
    }

    /// The run's ETA at `now`: the remaining schedule, smoothed (see [`eta::Countdown`]).
    fn estimate(&mut self, now: DateTime<Utc>) -> Option<u64> {
        self.model.start_time?;
        let (ended, total) = (
            self.model.summary.finished(),
            self.model.summary.total_stacks,
        );
        if ended >= total {
            // Nothing is left to wait for, whatever the smoothing last said.
            return Some(0);
        }
        let model = &self.model;
        let left = (self.countdown).estimate(now, ended, total, || model.schedule(now));
        // As consumers read it (`Model::eta`): never below a running stack's time left.
        Some((left.max(0.0).round() as u64).max(model.eta_floor(now)))
    }

    /// The critical path of the last schedule, less the stacks that ended since: `Some` when it
    /// differs from the one last said (consumers keep the last one).
    fn critical_path_news(&mut self) -> Option<Vec<String>> {
        let model = &self.model;
        let unfinished = |&i: &usize| {
            model
                .stacks
                .get(i)
                .is_some_and(|s| !s.status.is_finished() && !s.rolled_back)
        };
        let path: Vec<usize> = match model.summary.finished() >= model.summary.total_stacks {
            true => Vec::new(),
            false => self
                .countdown
                .critical_path()
                .iter()
                .copied()
                .filter(unfinished)
                .collect(),
        };
        if path == self.said_path {
            return None;
        }
        let names = path.iter().map(|&i| model.stacks[i].name.clone()).collect();
        self.said_path = path;
        Some(names)
    }

    /// Emits `deployment_progress`, with the ETA as of now (and the critical path, if it moved).
    fn emit_progress(&mut self) {
        let now = Utc::now();
        let eta = self.estimate(now);
        let mut progress = self.model.progress_event(eta);
        progress.critical_path = self.critical_path_news();
        self.progress_at = Some(now);
        self.emit(EventData::DeploymentProgress(progress));
    }

    /// Between stack ends, a consumer of the event stream holds the last progress: it is said
    /// again at least every [`ETA_TICK`] while stacks run (an estimate that moved away from the
    /// countdown, a stack past its expected time, a longer critical path).
    fn refresh_eta(&mut self) {
        let now = Utc::now();
        let due = self
            .progress_at
            .is_none_or(|at| (now - at).num_milliseconds() >= ETA_TICK.as_millis() as i64 * 9 / 10);
        if due && self.model.start_time.is_some() {
            self.emit_progress();
        }
    }

    /// Emits `deployment_cancelling` once a stop begins, and again when it is forced.
    fn tell_stop(&mut self) {
        let Some(reason) = self.cancel.stop_reason() else {
            return;
        };
        let forced = self.cancel.is_forced();
        if self.told_stop.is_some_and(|told| told || !forced) {
            return;
        }
        self.told_stop = Some(forced);
        let halted = reason == StopReason::LockLost;
        self.emit(EventData::DeploymentCancelling(DeploymentCancelling {
            reason,
            forced,
            grace_seconds: if halted {
                0.0
            } else {
                self.opts.grace.as_secs_f64()
            },
            message: halted
                .then(|| self.cancel.halt_reason().map(|why| why.message.clone()))
                .flatten(),
        }));
    }

    /// A halted run (its lock lost) fails the stacks it will not start, with the reason.
    fn fail_not_started(&mut self) {
        let Some(why) = self.cancel.halt_reason().cloned() else {
            return;
        };
        let pending: Vec<String> = (self.model.stacks.iter())
            .filter(|s| s.status == StackState::Pending && !s.rolled_back)
            .map(|s| s.name.clone())
            .collect();
        for stack in pending {
            let (error, duration_seconds) = (why.clone(), 0);
            self.emit(EventData::StackFailed(StackFailed {
                stack,
                error,
                duration_seconds,
            }));
        }
    }

    fn finish(&mut self, status: DeploymentState) -> RunResult {
        self.tell_stop();
        self.fail_not_started();
        let duration_seconds = self.model.elapsed(Utc::now()).round() as u64;
        let cancelled = self.cancel.is_cancelled();
        let summary = self.model.summary.clone();
        let not_started = self.not_started();
        if status != DeploymentState::Deployed {
            let names = |state| -> Vec<String> {
                self.model
                    .stacks
                    .iter()
                    .filter(|s| s.status == state)
                    .map(|s| s.name.clone())
                    .collect()
            };
            let (stack, layer, error) = match (self.cancel.halt_reason(), &self.first_failure) {
                (Some(why), _) => (None, None, why.clone()),
                (None, Some((stack, layer, e))) => (Some(stack.clone()), Some(*layer), e.clone()),
                (None, None) => (
                    None,
                    None,
                    executor::cancelled(format!("{not_started} stacks were not started")),
                ),
            };
            self.emit(EventData::DeploymentFailed(DeploymentFailed {
                failed_stacks: names(StackState::Failed),
                blocked_stacks: names(StackState::Blocked),
                stack,
                layer,
                error,
                duration_seconds,
            }));
        }
        self.emit(EventData::DeploymentComplete(DeploymentComplete {
            status,
            total_stacks: summary.total_stacks,
            deployed_stacks: summary.deployed_stacks,
            skipped_stacks: summary.skipped_stacks,
            failed_stacks: summary.failed_stacks,
            blocked_stacks: summary.blocked_stacks,
            not_started_stacks: not_started,
            duration_seconds,
            cancelled,
        }));
        self.bus.settle(&self.model);
        RunResult {
            status,
            cancelled,
            model: std::mem::replace(&mut self.model, Model::new("", "")),
            planned: std::mem::take(&mut self.planned),
        }
    }
}

/// A stack ready to start; the heap pops the longest critical path first, then file order.
type Ready = (u64, Reverse<usize>);

/// One scheduling pass over a plan: starts stacks as their dependencies are done.
struct Scheduler<'r, 'a, 'p> {
    run: &'r mut Run<'a>,
    plan: &'p Plan,
    phase: Phase,
    tx: mpsc::UnboundedSender<(usize, Message)>,
    rx: mpsc::UnboundedReceiver<(usize, Message)>,
    /// Dependencies each stack still waits for.
    waiting_on: Vec<usize>,
    ready: BinaryHeap<Ready>,
    /// Stacks whose dependencies are done, to skip or queue: in order, so that skips are
    /// decided layer by layer.
    to_decide: VecDeque<usize>,
    running: usize,
    limit: usize,
    layer_started: Vec<bool>,
    layer_unfinished: Vec<usize>,
    /// The fingerprint each started stack deploys (recorded when it succeeds).
    fingerprints: Vec<Option<String>>,
    /// Stacks that did their operation (for a rollback: those rolled back).
    done: Vec<String>,
    /// No new stacks start (interrupt, or a failure under `--fail-fast`).
    stopping: bool,
    last_percent: u32,
    /// A plan: each stack's summary as its executor sent it.
    planned: Vec<Option<PlanSummary>>,
    /// A plan: why each started stack's plan is provisional, and why it is not previewed
    /// (when it is known before it starts).
    provisional: Vec<Vec<String>>,
    no_preview: Vec<Option<String>>,
    /// A drift check: how many resources of each stack drifted.
    drifted: Vec<u32>,
    /// Retries of transient failures (see [`Retries`]).
    retries: Retries,
}

impl<'r, 'a, 'p> Scheduler<'r, 'a, 'p> {
    fn new(run: &'r mut Run<'a>, plan: &'p Plan, phase: Phase, limit: usize) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let last_percent = run.model.summary.progress_percent;
        Scheduler {
            waiting_on: plan
                .stacks
                .iter()
                .map(|s| match phase {
                    Phase::Drift => 0,
                    _ => s.dependencies.len(),
                })
                .collect(),
            ready: BinaryHeap::new(),
            to_decide: VecDeque::new(),
            running: 0,
            limit,
            layer_started: vec![false; plan.layers.len()],
            layer_unfinished: plan.layers.iter().map(Vec::len).collect(),
            fingerprints: vec![None; plan.stacks.len()],
            done: Vec::new(),
            stopping: run.cancel.is_halted(),
            last_percent,
            planned: vec![None; plan.stacks.len()],
            provisional: vec![Vec::new(); plan.stacks.len()],
            no_preview: vec![None; plan.stacks.len()],
            drifted: vec![0; plan.stacks.len()],
            retries: Retries::new(plan.stacks.len()),
            run,
            plan,
            phase,
            tx,
            rx,
        }
    }

    fn emit(&mut self, data: EventData) {
        self.run.emit(data);
    }

    fn status(&self, i: usize) -> Option<StackState> {
        self.run.model.stacks_status(self.plan.stacks[i].name())
    }

    /// Runs the pass; returns the stacks that did their operation.
    async fn go(mut self) -> Vec<String> {
        let roots: Vec<usize> = (0..self.plan.stacks.len())
            .filter(|&i| self.waiting_on[i] == 0)
            .collect();
        self.to_decide.extend(roots);
        self.start_ready();
        let cancel = self.run.cancel.clone();
        let (retry_tx, mut retry_rx) = mpsc::unbounded_channel();
        self.retries.wake = Some(retry_tx);
        let mut eta_tick =
            tokio::time::interval_at(tokio::time::Instant::now() + ETA_TICK, ETA_TICK);
        eta_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while self.running > 0 {
            // A stop is told before what it causes (stacks stopped, or killed when forced).
            tokio::select! {
                biased;
                _ = cancel.halted(), if self.run.told_stop.is_none() => {
                    self.run.tell_stop();
                    self.stopping = true;
                    self.run.fail_not_started();
                    self.stop_waiting_retries();
                }
                _ = cancel.forced(), if self.run.told_stop == Some(false) => self.run.tell_stop(),
                _ = eta_tick.tick(), if self.phase != Phase::Rollback => self.run.refresh_eta(),
                message = self.rx.recv() => match message {
                    Some((stack, Message::Update(update))) => self.on_update(stack, update),
                    Some((stack, Message::Done(outcome))) => self.on_done(stack, outcome),
                    None => break,
                },
                Some(stack) = retry_rx.recv() => self.retry_now(stack),
            }
        }
        self.done
    }

    fn ready_entry(&self, i: usize) -> Ready {
        (
            (self.plan.stacks[i].critical_path * 1000.0) as u64,
            Reverse(i),
        )
    }

    /// Decides the stacks whose dependencies are done (each skip may free more), in order.
    fn decide_ready(&mut self) {
        while let Some(i) = self.to_decide.pop_front() {
            self.become_ready(i);
        }
    }

    /// A stack whose dependencies are all done: skipped, or queued to start.
    fn become_ready(&mut self, i: usize) {
        if !self.eligible(i) {
            return;
        }
        match self.skip_reason(i) {
            Some(reason) => self.skip(i, reason),
            None => {
                self.fingerprints[i] = self.fingerprint(i);
                let entry = self.ready_entry(i);
                self.ready.push(entry);
            }
        }
    }

    /// What the stack's last successful deploy left, when its latest attempt succeeded.
    fn last_deploy(&self, i: usize) -> Option<LastDeploy> {
        if self.unsettled(i).is_some() {
            return None;
        }
        let previous = self.run.opts.previous.get(self.plan.stacks[i].name())?;
        let before = previous.fingerprint.as_deref()?;
        Some(LastDeploy {
            unchanged: self.fingerprints[i].as_deref() == Some(before),
            outputs: previous.outputs.clone(),
        })
    }

    /// The stack's fingerprint, once its dependencies' outputs are known (deploy and plan; a
    /// drift check: whether the stack is configured as it was deployed).
    fn fingerprint(&self, i: usize) -> Option<String> {
        if !self.phase.forward() && self.phase != Phase::Drift {
            return None;
        }
        let stack = &self.plan.stacks[i];
        let files = self.run.opts.skip.files.get(i)?.as_deref()?;
        let empty = Outputs::new();
        Some(fingerprint::stack(
            &stack.spec.entry_fingerprint,
            &self.run.opts.environment,
            files,
            &self.dependency_outputs(i, &empty),
        ))
    }

    /// The outputs stack `i`'s dependencies show now (`empty` for one that left none).
    fn dependency_outputs<'s>(
        &'s self,
        i: usize,
        empty: &'s Outputs,
    ) -> Vec<(&'s str, &'s Outputs)> {
        self.plan.stacks[i]
            .spec
            .dependencies
            .iter()
            .map(|d| {
                let shown = self.run.outputs.get(d).map_or(empty, |o| &o.outputs);
                (d.as_str(), shown)
            })
            .collect()
    }

    /// The digest of stack `i`'s inputs as they are now (see [`saved::inputs_digest`]).
    fn inputs_digest(&self, i: usize) -> String {
        let empty = Outputs::new();
        saved::inputs_digest(
            &self.run.opts.environment,
            &self.plan.stacks[i].spec.inputs,
            &self.dependency_outputs(i, &empty),
        )
    }

    /// `deploy --plan`: how stack `i` applies its reviewed plan, or why it must not. Its
    /// tool's plan file is applied as is when its inputs are the reviewed ones; a provisional
    /// stack whose inputs changed as its dependencies applied is planned again and its counts
    /// compared (as is a Pulumi stack whose CLI saved no plan).
    fn saved_apply(&self, i: usize) -> Result<Reviewed, ErrorDetail> {
        let Some(apply) = &self.run.opts.saved else {
            return Ok(Reviewed::None);
        };
        let stack = &self.plan.stacks[i];
        let name = stack.name();
        let Some(reviewed) = apply.plan.stacks.get(name) else {
            return Ok(Reviewed::None);
        };
        // Reviewed as "no preview (will run)": it runs as a deploy runs it.
        if reviewed.no_preview.is_some() {
            return Ok(Reviewed::None);
        }
        let same_inputs = self.inputs_digest(i) == reviewed.inputs;
        let replan = Reviewed::Replan {
            counts: reviewed.counts,
            resources: changes_of(
                reviewed
                    .resources
                    .iter()
                    .map(|r| (r.label.clone(), r.action, r.drift)),
            ),
            accept: apply.accept_replans,
        };
        let file = apply.plan.tool_file(&apply.dir, name);
        // Pulumi without a saved plan (its CLI could not save one): a fresh preview must show
        // the reviewed counts.
        if same_inputs && file.is_none() && stack.spec.executor.name() == "pulumi" {
            return Ok(replan);
        }
        if same_inputs {
            return Ok(Reviewed::Apply(file));
        }
        if !reviewed.provisional.is_empty() {
            return Ok(replan);
        }
        Err(executor::failure(
            ErrorCode::PlanChanged,
            format!(
                "`{name}`'s inputs changed since the plan, which did not expect it (reviewed: {})",
                words::plan_counts(&reviewed.counts),
            ),
            Some("plan again, review it, then deploy that plan".to_owned()),
        ))
    }

    /// Whether stack `i` is still to do in this pass: not started yet (a rollback: deployed).
    fn eligible(&self, i: usize) -> bool {
        let want = match self.phase {
            Phase::Rollback => StackState::Deployed,
            Phase::Deploy | Phase::Destroy | Phase::Plan | Phase::Drift => StackState::Pending,
        };
        self.status(i) == Some(want)
    }

    /// Why stack `i`'s latest attempt did not succeed, when a deploy runs it for that reason.
    fn unsettled(&self, i: usize) -> Option<&str> {
        if !self.phase.forward() {
            return None;
        }
        let previous = self.run.opts.previous.get(self.plan.stacks[i].name())?;
        previous.unsettled.as_deref()
    }

    /// Why a deploy does not run stack `i`, if it does not.
    fn skip_reason(&self, i: usize) -> Option<SkipReason> {
        let name = self.plan.stacks[i].name();
        let policy = &self.run.opts.skip;
        let not_selected = policy
            .only
            .as_ref()
            .is_some_and(|only| !only.contains(name));
        if self.phase == Phase::Drift {
            let deployed = self
                .run
                .opts
                .previous
                .get(name)
                .is_some_and(|p| p.fingerprint.is_some());
            return match (not_selected, deployed) {
                (true, _) => Some(SkipReason::NotSelected),
                (false, false) => Some(SkipReason::NotDeployed),
                (false, true) => None,
            };
        }
        if !self.phase.forward() {
            return None;
        }
        if not_selected {
            return Some(SkipReason::NotSelected);
        }
        if let Some(heal) = &policy.heal {
            if heal.contains(name) {
                return None;
            }
            // A dependent runs when what its drifted dependencies deploy changes it.
            let changed = self.fingerprint(i).is_some_and(|now| {
                self.run
                    .opts
                    .previous
                    .get(name)
                    .and_then(|p| p.fingerprint.as_deref())
                    != Some(now.as_str())
            });
            let healed_dependency = self.plan.stacks[i]
                .spec
                .dependencies
                .iter()
                .any(|d| self.run.model.stacks_status(d) == Some(StackState::Deployed));
            return (!(changed && healed_dependency)).then_some(SkipReason::NotSelected);
        }
        if policy.force || policy.only.is_some() {
            return None;
        }
        // What its last attempt left is unknown: only a success is a state to trust.
        if self.unsettled(i).is_some() {
            return None;
        }
        // Its real infrastructure no longer matches its fingerprint.
        if self.drifted_since(i).is_some() {
            return None;
        }
        // A plan: a dependency whose outputs may change changes this stack's fingerprint.
        if self.phase == Phase::Plan && !self.provisional(i).0.is_empty() {
            return None;
        }
        let now = self.fingerprint(i)?;
        let before = self.run.opts.previous.get(name)?.fingerprint.as_deref()?;
        (now == before).then_some(SkipReason::Unchanged)
    }

    fn skip(&mut self, i: usize, reason: SkipReason) {
        let name = self.plan.stacks[i].name().to_owned();
        let outputs = self
            .run
            .outputs
            .get(&name)
            .map(|o| o.outputs.clone())
            .unwrap_or_default();
        self.emit(EventData::StackSkipped(StackSkipped {
            stack: name,
            reason,
            outputs,
        }));
        self.count_finished_in_layer(i);
        self.release_dependents(i);
    }

    /// When stack `i` was first found drifted, when its health says it is (deploy and plan).
    fn drifted_since(&self, i: usize) -> Option<&Health> {
        if !self.phase.forward() {
            return None;
        }
        let previous = self.run.opts.previous.get(self.plan.stacks[i].name())?;
        previous
            .health
            .as_ref()
            .filter(|h| h.status == DriftStatus::Drifted)
    }

    /// The stack is done: what waited for it may go.
    fn release_dependents(&mut self, i: usize) {
        // A drift check's stacks wait for nothing: all were queued at once.
        if self.phase == Phase::Drift {
            return;
        }
        for d in self.plan.stacks[i].dependents.clone() {
            self.waiting_on[d] -= 1;
            if self.waiting_on[d] == 0 {
                self.to_decide.push_back(d);
            }
        }
    }

    fn start_ready(&mut self) {
        self.decide_ready();
        while !self.stopping && self.running < self.limit {
            let Some((_, Reverse(i))) = self.ready.pop() else {
                break;
            };
            self.start(i);
        }
    }

    fn start(&mut self, i: usize) {
        let plan = self.plan;
        let stack = &plan.stacks[i];
        let layer = stack.layer as usize - 1;
        // A drift check has no layers: its stacks run all at once.
        if !self.layer_started[layer] && !matches!(self.phase, Phase::Rollback | Phase::Drift) {
            self.layer_started[layer] = true;
            self.emit(EventData::LayerStarted(LayerStarted {
                layer: stack.layer,
                total_layers: plan.total_layers(),
                stacks: plan.layers[layer]
                    .iter()
                    .map(|&s| plan.stacks[s].name().to_owned())
                    .collect(),
            }));
        }
        self.emit(match self.phase {
            // A plan's stack is `deploying` while its tool previews it (views say "planning"), a
            // drift check's while its tool compares (views say "checking").
            Phase::Deploy | Phase::Plan | Phase::Drift => {
                EventData::StackDeploying(StackDeploying {
                    stack: stack.name().to_owned(),
                    layer: stack.layer,
                    dependencies: stack.spec.dependencies.clone(),
                })
            }
            Phase::Destroy | Phase::Rollback => EventData::StackDestroying(StackDestroying {
                stack: stack.name().to_owned(),
                layer: stack.layer,
            }),
        });
        if let Some(why) = self.unsettled(i) {
            self.emit(EventData::StackLog(StackLog {
                stack: stack.name().to_owned(),
                level: LogLevel::Info,
                message: format!(
                    "runs again: its last attempt {} (a stack is skipped only when its last \
                     attempt succeeded)",
                    match why {
                        "cancelled" | "interrupted" => format!("was {why}"),
                        other => other.to_owned(),
                    }
                ),
            }));
        }
        if let Some(health) = self.drifted_since(i) {
            let since = health.since.unwrap_or(health.checked);
            self.emit(EventData::StackLog(StackLog {
                stack: stack.name().to_owned(),
                level: LogLevel::Info,
                message: format!(
                    "runs again: {} (a drifted stack is never skipped)",
                    health::drifted_words(since, &health.resources)
                ),
            }));
        }
        self.retries.attempt[i] = 1;
        self.launch(i);
    }

    /// Runs one attempt of stack `i`'s operation (its first, or a retry).
    fn launch(&mut self, i: usize) {
        let plan = self.plan;
        let stack = &plan.stacks[i];
        self.retries.lines[i].clear();
        // Secret outputs are left out: a program that needs one names it in `inputs:`.
        let dependency_outputs: BTreeMap<String, Outputs> = stack
            .spec
            .dependencies
            .iter()
            .map(|d| {
                let shown = self.run.outputs.get(d).map(|o| {
                    o.outputs
                        .iter()
                        .filter(|(_, v)| !is_shown_secret(v))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                });
                (d.clone(), shown.unwrap_or_default())
            })
            .collect();
        let cancel = self.run.cancel.child();
        let secrets = self.run.secrets.clone();
        let updates = Updates::new(i, self.tx.clone(), secrets.clone());
        let opts = self.run.opts;
        let job = Job {
            deployment_id: plan.deployment_id.clone(),
            environment: opts.environment.clone(),
            operation: self.phase.operation(),
            stack: stack.spec.name.clone(),
            path: stack.spec.path.clone(),
            dependency_outputs,
            inputs: Inputs::new(),
            cancel: cancel.clone(),
            grace: opts.grace,
            scratch: opts.scratch.clone(),
            saved_plan: None,
            last_deploy: self.last_deploy(i),
        };
        let resolver = InputResolver {
            inputs: stack.spec.inputs.clone(),
            values: stack
                .spec
                .dependencies
                .iter()
                .filter_map(|d| Some((d.clone(), self.run.outputs.get(d)?.clone())))
                .collect(),
            read_back: self
                .read_back_needed(i)
                .into_iter()
                .map(|d| {
                    let spec = plan.index_of(&d).map(|j| &plan.stacks[j].spec);
                    (d, spec.map(|s| (s.executor.clone(), s.path.clone())))
                })
                .collect(),
            cache: self.run.read_back.clone(),
        };
        let executor = stack.spec.executor.clone();
        if self.phase == Phase::Drift {
            if let Some(why) = executor.no_drift_check() {
                // Said `unknown`, its tool not run.
                self.no_preview[i] = Some(why);
                self.running += 1;
                updates.done(Ok(Deployed::default()));
                return;
            }
        }
        if self.phase == Phase::Plan {
            let (reasons, unknown) = self.provisional(i);
            self.provisional[i] = reasons;
            if let Some(why) = unknown {
                // Never planned on invented values: it is reported, and its tool not run.
                self.no_preview[i] = Some(why);
                self.running += 1;
                updates.done(Ok(Deployed::default()));
                return;
            }
        }
        let reviewed = match self.phase {
            Phase::Deploy => self.saved_apply(i),
            _ => Ok(Reviewed::None),
        };
        let reviewed = match reviewed {
            Ok(reviewed) => reviewed,
            Err(why) => {
                // Never applied unreviewed: it fails before its tool runs.
                self.running += 1;
                updates.done(Err(why));
                return;
            }
        };
        if let Some(apply) = &self.run.opts.saved {
            if let Some(saved) = apply.plan.stacks.get(stack.name()) {
                let counts = words::plan_counts(&saved.counts);
                updates.log(LogLevel::Info, format!("the reviewed plan: {counts}"));
            }
        }
        let work: executor::BoxFuture = Box::pin({
            let updates = updates.clone();
            async move {
                let mut job = job;
                job.inputs = resolver.resolve(&job, &updates).await?;
                for input in job.inputs.values().filter(|v| v.secret) {
                    secrets.add(&input.value);
                }
                match reviewed {
                    Reviewed::None => {}
                    Reviewed::Apply(file) => job.saved_plan = file,
                    Reviewed::Replan {
                        counts,
                        resources,
                        accept,
                    } => {
                        let reviewed = (counts, resources);
                        // What is applied is the plan just made and compared, not a new one.
                        job.saved_plan =
                            replan(&executor, &job, &updates, secrets, reviewed, accept).await?;
                    }
                }
                executor::run(&executor, job, updates).await
            }
        });
        let work = executor::process::in_stack(stack.name().to_owned(), work);
        self.running += 1;
        let timeout = stack.spec.timeout;
        tokio::spawn(async move {
            // A panicking executor fails its stack instead of hanging the run.
            let task = tokio::spawn(work);
            let (outcome, timed_out) = match timeout {
                None => (task.await, false),
                Some(limit) => {
                    tokio::pin!(task);
                    tokio::select! {
                        outcome = &mut task => (outcome, false),
                        _ = tokio::time::sleep(limit) => {
                            // Stop this stack alone, as Ctrl-C would, and wait for it to stop.
                            cancel.cancel();
                            (task.await, true)
                        }
                    }
                }
            };
            let outcome = outcome.unwrap_or_else(|panic| {
                Err(executor::failure(
                    ErrorCode::ExecutorPanicked,
                    format!("the executor crashed: {panic}"),
                    None,
                ))
            });
            let outcome = match (outcome, timeout) {
                (Err(e), Some(limit)) if timed_out && e.code == ErrorCode::Cancelled => {
                    Err(executor::failure(
                        ErrorCode::Timeout,
                        format!(
                            "the stack ran longer than its timeout ({}s) and was stopped",
                            limit.as_secs_f64()
                        ),
                        e.details,
                    ))
                }
                (outcome, _) => outcome,
            };
            updates.done(outcome);
        });
    }

    /// A plan: why stack `i`'s plan may change once its dependencies apply
    /// (`depends on db.endpoint (known after apply)`), and — when an output it reads has no
    /// value yet (its stack never deployed it) — why it cannot be previewed now. Outputs it
    /// reads: those its inputs name; a stack with no input from a dependency is given all of
    /// its outputs (`CLOUD_DEPENDENCY_OUTPUTS`), so it reads them all. A provisional or
    /// unpreviewed dependency makes it provisional whatever it reads.
    fn provisional(&self, i: usize) -> (Vec<String>, Option<String>) {
        let plan = self.plan;
        let stack = &plan.stacks[i];
        let mut reasons = Vec::new();
        let mut unknown = None;
        for &d in &stack.dependencies {
            let dep = plan.stacks[d].name();
            let read: Vec<&str> = (stack.spec.inputs.iter())
                .flat_map(|input| input.outputs())
                .filter(|(s, _)| *s == dep)
                .map(|(_, key)| key)
                .collect();
            let current = self.run.outputs.get(dep);
            for key in &read {
                if current.is_none_or(|o| !o.outputs.contains_key(*key)) {
                    unknown.get_or_insert_with(|| {
                        format!("its inputs are known only once `{dep}` is deployed")
                    });
                }
            }
            let planned = match self.status(d) {
                // Skipped: its outputs stay as they are.
                Some(StackState::Deployed) => self.planned_summary(d),
                _ => continue,
            };
            let Some(summary) = planned else {
                reasons.push(format!("depends on `{dep}` (no preview)"));
                continue;
            };
            let changed = summary
                .changed_outputs
                .iter()
                .chain(&summary.known_after_apply)
                .filter(|key| read.is_empty() || read.contains(&key.as_str()));
            let mut seen = BTreeSet::new();
            for key in changed {
                if !seen.insert(key) {
                    continue;
                }
                let how = if summary.known_after_apply.contains(key) {
                    "known after apply"
                } else {
                    "changes"
                };
                reasons.push(format!("depends on {dep}.{key} ({how})"));
            }
            // Its plan may change once its own dependencies apply: so may what it leaves.
            if seen.is_empty() && !self.provisional[d].is_empty() {
                reasons.push(format!("depends on `{dep}` (provisional)"));
            }
        }
        (reasons, unknown)
    }

    /// A planned stack's summary: `None` when it was not previewed.
    fn planned_summary(&self, i: usize) -> Option<&PlanSummary> {
        self.planned.get(i).and_then(Option::as_ref)
    }

    /// Dependencies whose secret outputs stack `i`'s inputs read, and whose values this run
    /// does not have (they did not run): they are read back from their tools.
    fn read_back_needed(&self, i: usize) -> BTreeSet<String> {
        let spec = &self.plan.stacks[i].spec;
        spec.inputs
            .iter()
            .flat_map(|input| input.outputs())
            .filter(|(stack, key)| {
                self.run
                    .outputs
                    .get(*stack)
                    .is_some_and(|o| o.needs_read_back(key))
            })
            .map(|(stack, _)| stack.to_owned())
            .collect()
    }

    /// The executor's URN of a resource, or the seed's form when it gave none.
    fn urn_or_default(&self, urn: String, stack: &str, type_: &str, name: &str) -> String {
        if !urn.is_empty() {
            return urn;
        }
        let (deployment, env) = (&self.plan.deployment_id, &self.run.opts.environment);
        resource_urn(deployment, env, stack, type_, name)
    }

    fn on_update(&mut self, i: usize, update: ExecutorUpdate) {
        let name = self.plan.stacks[i].name().to_owned();
        match update {
            ExecutorUpdate::Resource {
                state,
                urn,
                type_,
                name: resource_name,
                id,
                address,
                error,
                action,
            } => {
                let urn = self.urn_or_default(urn, &name, &type_, &resource_name);
                // Durations come from the reducer, which saw the operation start.
                let duration_seconds = state.is_finished().then(|| {
                    self.run
                        .model
                        .stack(&name)
                        .and_then(|s| s.resource(&urn))
                        .map_or(0.0, |r| seconds_between(r.start_time, Utc::now()))
                });
                self.emit(EventData::resource(
                    state,
                    ResourceEvent {
                        stack: name,
                        resource: ResourceRef {
                            urn,
                            type_,
                            name: resource_name,
                            id,
                            address,
                        },
                        duration_seconds,
                        error,
                        action,
                    },
                ));
            }
            ExecutorUpdate::Progress {
                percent,
                message,
                current_resource,
            } => {
                let model = self.run.model.stack(&name);
                // A stack's percent never goes down, whatever the executor says.
                let so_far = model.map_or(0, |s| s.progress_percent);
                let progress_percent = percent.map_or(so_far, |p| p.max(so_far)).min(99);
                let current_resource =
                    current_resource.or_else(|| model.and_then(|s| s.current_resource.clone()));
                self.emit(EventData::StackProgress(StackProgress {
                    stack: name,
                    progress_percent,
                    current_resource,
                    message,
                }));
            }
            ExecutorUpdate::Log { level, message } => {
                let retried = self.plan.stacks[i].spec.retry.attempts > 1;
                if retried && matches!(level, LogLevel::Warn | LogLevel::Error) {
                    self.retries.heard(i, &message);
                }
                self.emit(EventData::StackLog(StackLog {
                    stack: name,
                    level,
                    message,
                }));
            }
            ExecutorUpdate::Planned {
                urn,
                type_,
                name: resource_name,
                address,
                action,
                drift,
                previous_address,
            } => {
                let urn = self.urn_or_default(urn, &name, &type_, &resource_name);
                self.emit(EventData::ResourcePlanned(ResourcePlanned {
                    stack: name,
                    resource: ResourceRef {
                        urn,
                        type_,
                        name: resource_name,
                        id: None,
                        address,
                    },
                    action,
                    destructive: action.is_destructive(),
                    drift,
                    previous_address,
                }));
            }
            // Told with the stack's end (`stack_planned`), with what the orchestrator adds.
            ExecutorUpdate::PlanSummary(summary) => self.planned[i] = Some(summary),
            ExecutorUpdate::Drifted {
                urn,
                type_,
                name: resource_name,
                address,
                action,
                attributes,
            } => {
                let urn = self.urn_or_default(urn, &name, &type_, &resource_name);
                self.drifted[i] += 1;
                self.emit(EventData::ResourceDrifted(ResourceDrifted {
                    stack: name,
                    resource: ResourceRef {
                        urn,
                        type_,
                        name: resource_name,
                        id: None,
                        address,
                    },
                    action,
                    attributes,
                }));
            }
        }
    }

    fn on_done(&mut self, i: usize, outcome: executor::Outcome) {
        let plan = self.plan;
        let name = plan.stacks[i].name().to_owned();
        self.close_resources_in_flight(i, &name, outcome.as_ref().err());
        let outcome = match outcome {
            Err(error) => match self.retry_later(i, error) {
                None => return,
                Some(error) => Err(self.retries.gave_up(i, error)),
            },
            Ok(done) => {
                if let Some(words) = self.retries.succeeded(i, self.phase) {
                    self.emit(EventData::StackLog(StackLog {
                        stack: name.clone(),
                        level: LogLevel::Warn,
                        message: words,
                    }));
                }
                Ok(done)
            }
        };
        self.running -= 1;
        let (duration_seconds, created, updated, replaced, deleted) =
            self.run.model.stack(&name).map_or((0, 0, 0, 0, 0), |s| {
                (
                    s.elapsed(Utc::now()).round() as u64,
                    s.resources.created,
                    s.resources.updated,
                    s.resources.replaced,
                    s.resources.deleted,
                )
            });
        match outcome {
            Ok(deployed) => {
                let deployed = self.run.learn_outputs(deployed);
                let outputs = deployed.outputs.clone();
                if self.phase == Phase::Deploy {
                    self.run.outputs.insert(name.clone(), deployed);
                }
                self.done.push(name.clone());
                let data = match self.phase {
                    Phase::Plan => {
                        // Kept: its dependents' plans read it.
                        let (plan, no_preview) = match self.planned[i].clone() {
                            Some(plan) => (plan, None),
                            None => {
                                let why = self.no_preview[i].take();
                                // Not previewed: a deploy runs it, so it counts as a change.
                                let plan = PlanSummary {
                                    changes: true,
                                    ..PlanSummary::default()
                                };
                                (plan, Some(why.unwrap_or_else(|| NO_PREVIEW.to_owned())))
                            }
                        };
                        // What it was planned from, for `--out`.
                        let digests = StackDigests {
                            fingerprint: self.fingerprint(i).unwrap_or_default(),
                            files: self.run.opts.skip.files[i].clone().unwrap_or_default(),
                            inputs: self.inputs_digest(i),
                            plan_file: plan.plan_file.as_ref().map(PathBuf::from),
                        };
                        self.run.planned.insert(name.clone(), digests);
                        EventData::StackPlanned(StackPlanned {
                            stack: name,
                            plan,
                            provisional: self.provisional[i].clone(),
                            no_preview,
                            duration_seconds,
                        })
                    }
                    Phase::Drift => {
                        let drifted = self.drifted[i];
                        let (status, reason) = match self.no_preview[i].take() {
                            Some(why) => (DriftStatus::Unknown, Some(why)),
                            None if drifted > 0 => (DriftStatus::Drifted, None),
                            None => (DriftStatus::InSync, None),
                        };
                        // Drifted since the first check that found it so.
                        let drifted_since = (status == DriftStatus::Drifted).then(|| {
                            self.run
                                .opts
                                .previous
                                .get(&name)
                                .and_then(|p| p.health.as_ref())
                                .filter(|h| h.status == DriftStatus::Drifted)
                                .and_then(|h| h.since)
                                .unwrap_or_else(|| {
                                    chrono::SubsecRound::trunc_subsecs(Utc::now(), 3)
                                })
                        });
                        EventData::StackDriftChecked(StackDriftChecked {
                            stack: name,
                            status,
                            drifted_resources: drifted,
                            drifted_since,
                            reason,
                            duration_seconds,
                        })
                    }
                    Phase::Deploy => EventData::StackDeployed(StackDeployed {
                        stack: name,
                        status: StackState::Deployed,
                        resources_created: created,
                        resources_updated: updated,
                        duration_seconds,
                        outputs,
                        fingerprint: self.fingerprints[i].take(),
                        // Said when there are any: a deploy's usual counts stay as they were.
                        resources_replaced: (replaced > 0).then_some(replaced),
                        resources_deleted: (deleted > 0).then_some(deleted),
                    }),
                    Phase::Destroy | Phase::Rollback => EventData::StackDestroyed(StackDestroyed {
                        stack: name,
                        resources_deleted: deleted,
                        duration_seconds,
                    }),
                };
                self.emit(data);
                self.count_finished_in_layer(i);
                self.release_dependents(i);
            }
            Err(error) => {
                self.emit(EventData::StackFailed(StackFailed {
                    stack: name.clone(),
                    error: error.clone(),
                    duration_seconds,
                }));
                // A stack stopped by Ctrl-C did not fail on its own: what waits for it was not
                // started because of the cancel, and is not blocked by it.
                let interrupted =
                    error.code == ErrorCode::Cancelled && self.run.cancel.is_cancelled();
                if self.phase != Phase::Rollback {
                    let layer = plan.stacks[i].layer;
                    self.run
                        .first_failure
                        .get_or_insert((name.clone(), layer, error));
                }
                if self.run.opts.fail_fast {
                    self.stopping = true;
                }
                self.count_finished_in_layer(i);
                // A drift check's dependents run on their own: nothing waits for a check.
                if !interrupted && self.phase != Phase::Drift {
                    for blocked in self.block_dependents_of(i, &name) {
                        self.count_finished_in_layer(blocked);
                    }
                }
            }
        }
        let percent = self.run.model.summary.progress_percent;
        if percent != self.last_percent && self.phase != Phase::Rollback {
            self.last_percent = percent;
            self.run.emit_progress();
        }
        self.start_ready();
    }

    /// Resources the executor started and never finished end with their stack: failed with its
    /// error, or, when the stack succeeded, done (with a warning), so that counts add up.
    fn close_resources_in_flight(&mut self, i: usize, name: &str, error: Option<&ErrorDetail>) {
        type InFlight = (
            String,
            String,
            String,
            Option<String>,
            ResourceState,
            Option<PlanAction>,
        );
        let in_flight: Vec<InFlight> = self
            .run
            .model
            .stack(name)
            .map(|s| {
                s.resource_list
                    .iter()
                    .filter(|r| !r.status.is_finished())
                    .map(|r| {
                        (
                            r.urn.clone(),
                            r.type_.clone(),
                            r.name.clone(),
                            r.address.clone(),
                            r.status,
                            r.action,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (urn, type_, resource, address, state, action) in in_flight {
            let end = match (error, state) {
                (Some(_), _) => ResourceState::Failed,
                (None, ResourceState::Updating) => ResourceState::Updated,
                (None, ResourceState::Deleting) => ResourceState::Deleted,
                (None, _) => ResourceState::Created,
            };
            if error.is_none() {
                self.on_update(
                    i,
                    ExecutorUpdate::Log {
                        level: LogLevel::Warn,
                        message: format!(
                            "{type_} ({resource}) was reported {} and never finished; counted as {} since the stack succeeded",
                            state.as_str(),
                            end.as_str()
                        ),
                    },
                );
            }
            self.on_update(
                i,
                ExecutorUpdate::Resource {
                    state: end,
                    urn,
                    type_,
                    name: resource,
                    id: None,
                    address,
                    error: error.cloned(),
                    action,
                },
            );
        }
    }

    /// Marks every stack above `failed` that has not started `blocked`; returns them. In a
    /// rollback they stay deployed (what still runs on them was not rolled back): each is told.
    fn block_dependents_of(&mut self, failed: usize, failed_name: &str) -> Vec<usize> {
        let plan = self.plan;
        let mut blocked = Vec::new();
        let mut queue = vec![failed];
        let mut seen = vec![false; plan.stacks.len()];
        while let Some(s) = queue.pop() {
            for &d in &plan.stacks[s].dependents {
                if seen[d] || !self.eligible(d) {
                    continue;
                }
                seen[d] = true;
                let name = plan.stacks[d].name().to_owned();
                if self.phase == Phase::Rollback {
                    self.emit(EventData::StackLog(StackLog {
                        stack: name,
                        level: LogLevel::Warn,
                        message: format!(
                            "not rolled back: `{failed_name}`, which uses it, could not be rolled back"
                        ),
                    }));
                } else {
                    self.emit(EventData::StackBlocked(StackBlocked {
                        stack: name,
                        blocked_by: failed_name.to_owned(),
                    }));
                    blocked.push(d);
                }
                queue.push(d);
            }
        }
        blocked
    }

    fn count_finished_in_layer(&mut self, i: usize) {
        let plan = self.plan;
        let layer = plan.stacks[i].layer as usize - 1;
        self.layer_unfinished[layer] -= 1;
        if self.layer_unfinished[layer] > 0 || !self.layer_started[layer] {
            return;
        }
        let count = |state| {
            plan.layers[layer]
                .iter()
                .filter(|&&s| self.status(s) == Some(state))
                .count() as u32
        };
        let started = self
            .run
            .model
            .layers
            .iter()
            .find(|l| l.number == layer as u32 + 1)
            .and_then(|l| l.start_time);
        let data = LayerComplete {
            layer: layer as u32 + 1,
            deployed_stacks: count(StackState::Deployed),
            failed_stacks: count(StackState::Failed),
            skipped_stacks: count(StackState::Skipped),
            blocked_stacks: count(StackState::Blocked),
            duration_seconds: started.map_or(0, |t| seconds_between(t, Utc::now()).round() as u64),
        };
        self.emit(EventData::LayerComplete(data));
    }

    /// After an attempt of stack `i` failed: `None` when it is tried again (after a backoff,
    /// during which the stack keeps its slot), else the error it fails with. Only a transient
    /// error of a change (deploy, destroy, rollback) is retried: never a preview, nor after a
    /// stop, nor with `--no-retry`.
    fn retry_later(&mut self, i: usize, error: ErrorDetail) -> Option<ErrorDetail> {
        let plan = self.plan;
        let policy = &plan.stacks[i].spec.retry;
        let attempt = self.retries.attempt[i];
        let changes = matches!(self.phase, Phase::Deploy | Phase::Destroy | Phase::Rollback);
        let may = changes
            && !self.run.opts.no_retry
            && !self.stopping
            && !self.run.cancel.is_halted()
            && attempt < policy.attempts;
        let pattern = match policy.transient(&error, &self.retries.lines[i]) {
            Some(pattern) if may => pattern.name.clone(),
            _ => return Some(error),
        };
        let Some(wake) = self.retries.wake.clone() else {
            return Some(error);
        };
        let delay = retry::backoff(attempt, policy.first, policy.cap, retry::jitter());
        self.emit(EventData::StackRetrying(StackRetrying {
            stack: plan.stacks[i].name().to_owned(),
            attempt: attempt + 1,
            attempts: policy.attempts,
            pattern: pattern.clone(),
            error: error.clone(),
            delay_seconds: (delay.as_secs_f64() * 10.0).round() / 10.0,
        }));
        let cancel = self.run.cancel.clone();
        let sleeper = tokio::spawn(async move {
            if retry::wait(delay, &cancel).await {
                let _ = wake.send(i);
            }
        });
        self.retries.waiting[i] = Some((sleeper.abort_handle(), error));
        self.retries.cause[i] = Some((pattern, policy.attempts));
        None
    }

    /// Stack `i`'s backoff is over: its next attempt starts.
    fn retry_now(&mut self, i: usize) {
        if self.retries.waiting[i].take().is_none() {
            return; // Stopped meanwhile.
        }
        self.retries.attempt[i] += 1;
        // It kept its slot while it waited; the attempt takes it again.
        self.running -= 1;
        self.launch(i);
    }

    /// A stop ends every backoff at once: a stack that waited fails (cancelled on Ctrl-C; with
    /// its last error when the run was halted).
    fn stop_waiting_retries(&mut self) {
        for i in 0..self.retries.waiting.len() {
            let Some((sleeper, last)) = self.retries.waiting[i].take() else {
                continue;
            };
            sleeper.abort();
            let error = if self.run.cancel.is_cancelled() {
                executor::failure(
                    ErrorCode::Cancelled,
                    format!(
                        "stopped while waiting to retry; the last attempt failed: {}",
                        last.message
                    ),
                    last.details,
                )
            } else {
                last
            };
            self.on_done(i, Err(error));
        }
    }
}

/// One scheduling pass's retries: each stack's attempt, what it printed on stderr during it
/// (transient patterns are matched against it too), and the backoff waits under way.
struct Retries {
    /// The attempt running (from 1).
    attempt: Vec<u32>,
    /// Its warning and error lines, the last [`HEARD_LINES`].
    lines: Vec<Vec<String>>,
    /// What the stack was last retried for, and its attempts in all.
    cause: Vec<Option<(String, u32)>>,
    /// Stacks waiting for their next attempt: the wait, and the error it would fail with.
    waiting: Vec<Option<(tokio::task::AbortHandle, ErrorDetail)>>,
    /// Where a finished wait says which stack to start again.
    wake: Option<mpsc::UnboundedSender<usize>>,
}

/// Stderr lines kept per attempt for the transient patterns (the error's own details hold
/// the tail too; this is what scrolled past it).
const HEARD_LINES: usize = 200;

impl Retries {
    fn new(stacks: usize) -> Self {
        Retries {
            attempt: vec![1; stacks],
            lines: vec![Vec::new(); stacks],
            cause: vec![None; stacks],
            waiting: (0..stacks).map(|_| None).collect(),
            wake: None,
        }
    }

    fn heard(&mut self, i: usize, line: &str) {
        let lines = &mut self.lines[i];
        if lines.len() == HEARD_LINES {
            lines.remove(0);
        }
        lines.push(line.to_owned());
    }

    /// The warning a stack that succeeded after retries ends with.
    fn succeeded(&self, i: usize, phase: Phase) -> Option<String> {
        let (pattern, attempts) = self.cause[i].as_ref()?;
        let done = words::done(phase.operation());
        Some(words::succeeded_on_retry(
            done,
            self.attempt[i],
            *attempts,
            pattern,
        ))
    }

    /// The error a stack fails with: its last attempt's, saying how many were made.
    fn gave_up(&self, i: usize, mut error: ErrorDetail) -> ErrorDetail {
        if let Some((_, attempts)) = &self.cause[i] {
            error.message = words::failed_on_retry(&error.message, self.attempt[i], *attempts);
        }
        error
    }
}

/// How a stack's inputs get their values when it starts: from what its dependencies left in
/// this run or the last ones, and — for secret outputs of dependencies that did not run, whose
/// values `cloud` does not keep — from those dependencies' tools. `[secret]` is never a value:
/// a secret that cannot be had fails the stack with `SECRET_UNAVAILABLE`.
struct InputResolver {
    inputs: Vec<crate::manifest::Input>,
    /// The dependencies' outputs, by stack.
    values: BTreeMap<String, Deployed>,
    /// Dependencies to read back, with their executor and path (`None`: not in the plan).
    read_back: BTreeMap<String, Option<(executor::Configured, PathBuf)>>,
    cache: ReadBack,
}

impl InputResolver {
    async fn resolve(mut self, job: &Job, updates: &Updates) -> Result<Inputs, ErrorDetail> {
        for (stack, how) in std::mem::take(&mut self.read_back) {
            let read = self.read(job, updates, &stack, how).await;
            let (Ok(read), Some(values)) = (read, self.values.get_mut(&stack)) else {
                continue;
            };
            // Secret to `cloud` (sensitive, or derived from a secret) whatever the tool says.
            let secret: Vec<String> = values
                .outputs
                .keys()
                .filter(|k| values.needs_read_back(k))
                .cloned()
                .collect();
            for key in secret {
                let value = read.secret_outputs.get(&key).or_else(|| {
                    read.outputs
                        .get(&key)
                        .filter(|v| !executor::is_shown_secret(v))
                });
                if let Some(value) = value {
                    updates.secrets().add(value);
                    values.secret_outputs.insert(key, value.clone());
                }
            }
        }
        let mut values: BTreeMap<String, Outputs> = BTreeMap::new();
        for (stack, deployed) in &self.values {
            let mut all = deployed.outputs.clone();
            all.extend(deployed.secret_outputs.clone());
            values.insert(stack.clone(), all);
        }
        let secret = |stack: &str, key: &str| {
            self.values
                .get(stack)
                .is_some_and(|o| o.secret_outputs.contains_key(key) || o.needs_read_back(key))
        };
        let mut inputs = Inputs::new();
        for input in &self.inputs {
            for (stack, key) in input.outputs() {
                if self
                    .values
                    .get(stack)
                    .is_some_and(|o| o.needs_read_back(key))
                {
                    return Err(self.unavailable(job, &input.name, stack, key).await);
                }
            }
            let value = input.resolve(&job.stack, &values, &secret).map_err(|m| {
                executor::failure(ErrorCode::MissingInput, m.message, Some(m.details))
            })?;
            inputs.insert(input.name.clone(), value);
        }
        Ok(inputs)
    }

    /// The outputs of `stack` as its tool holds them now (once per run and stack).
    async fn read(
        &self,
        job: &Job,
        updates: &Updates,
        stack: &str,
        how: Option<(executor::Configured, PathBuf)>,
    ) -> Result<Deployed, ErrorDetail> {
        let mut cache = self.cache.lock().await;
        if let Some(done) = cache.get(stack) {
            return done.clone();
        }
        let read = match how {
            None => Err(executor::failure(
                ErrorCode::SecretUnavailable,
                format!("stack `{stack}` is not part of this run"),
                None,
            )),
            Some((executor, path)) => {
                let name = executor.name();
                let reader = Job {
                    operation: Operation::Deploy,
                    stack: stack.to_owned(),
                    path,
                    dependency_outputs: BTreeMap::new(),
                    inputs: Inputs::new(),
                    ..job.clone()
                };
                match executor.read_outputs(reader, updates.clone()) {
                    Some(reading) => {
                        updates.log(
                            LogLevel::Info,
                            format!(
                                "reading the secret outputs of `{stack}` back from its tool                                  (it did not run; cloud keeps no secret value)"
                            ),
                        );
                        reading.await
                    }
                    None => Err(executor::failure(
                        ErrorCode::SecretUnavailable,
                        format!("a {name} stack's outputs cannot be read back from a tool"),
                        None,
                    )),
                }
            }
        };
        if let Ok(read) = &read {
            for value in read.secret_outputs.values() {
                updates.secrets().add(value);
            }
        }
        cache.insert(stack.to_owned(), read.clone());
        read
    }

    /// Why input `input` cannot have the secret output `stack.key`.
    async fn unavailable(&self, job: &Job, input: &str, stack: &str, key: &str) -> ErrorDetail {
        let cause = match self.cache.lock().await.get(stack) {
            Some(Err(e)) => e.message.clone(),
            Some(Ok(_)) => format!("its tool has no value for `{key}`"),
            None => "it was not read".to_owned(),
        };
        executor::failure(
            ErrorCode::SecretUnavailable,
            format!(
                "input `{input}` of stack `{}` reads the secret output `{key}` of stack                  `{stack}`, which did not run: cloud keeps no secret value between runs, and                  reading it back failed: {cause}",
                job.stack
            ),
            Some(format!(
                "deploy `{stack}` in the same run: cloud deploy {} -e {} --only {stack},{} (or                  --force)",
                job.deployment_id, job.environment, job.stack
            )),
        )
    }
}

/// `deploy --plan`: how a reviewed stack is applied.
enum Reviewed {
    /// Not a saved plan's deploy.
    None,
    /// As reviewed: its tool's plan file, when it saved one.
    Apply(Option<PathBuf>),
    /// Planned again first: deployed when its changes are the reviewed ones (or `accept`).
    Replan {
        counts: PlanCounts,
        resources: Vec<(String, PlanAction)>,
        accept: bool,
    },
}

/// A plan's changes, comparable: `(label, action)` of each resource it changes (drift found
/// outside the tool is not a change it makes), sorted.
fn changes_of(
    resources: impl Iterator<Item = (String, PlanAction, bool)>,
) -> Vec<(String, PlanAction)> {
    let mut changes: Vec<(String, PlanAction)> = resources
        .filter(|(_, action, drift)| !drift && action.changes())
        .map(|(label, action, _)| (label, action))
        .collect();
    changes.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.as_str().cmp(b.1.as_str())));
    changes
}

/// Plans the stack again (its dependencies applied), and refuses to deploy it when its changes
/// (counts, and each resource's action) are not the reviewed ones, unless `--accept-replans`;
/// both are said side by side. Ok: the plan file the new plan saved, to apply as is.
async fn replan(
    executor: &executor::Configured,
    job: &Job,
    updates: &Updates,
    secrets: Secrets,
    (reviewed, reviewed_resources): (PlanCounts, Vec<(String, PlanAction)>),
    accept: bool,
) -> Result<Option<PathBuf>, ErrorDetail> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let planning = Job {
        operation: Operation::Plan,
        ..job.clone()
    };
    executor::run(executor, planning, Updates::new(0, tx, secrets.clone())).await?;
    let mut now = None;
    let mut planned = Vec::new();
    while let Ok((_, message)) = rx.try_recv() {
        match message {
            Message::Update(ExecutorUpdate::PlanSummary(summary)) => now = Some(summary),
            Message::Update(ExecutorUpdate::Planned {
                type_,
                name,
                address,
                action,
                drift,
                ..
            }) => {
                let label = address.unwrap_or_else(|| crate::event::resource_label(&type_, &name));
                // Masked as the reviewed plan's labels were (a name may hold a secret).
                planned.push((secrets.mask(&label).into_owned(), action, drift));
            }
            _ => {}
        }
    }
    let reviewed_line = words::plan_counts(&reviewed);
    let Some(now) = now else {
        updates.log(
            LogLevel::Warn,
            format!("it has no preview to compare with the reviewed plan ({reviewed_line}): deploying it as usual"),
        );
        return Ok(None);
    };
    let plan_file = now.plan_file.map(PathBuf::from);
    let now_line = words::plan_counts(&now.counts);
    let now_resources = changes_of(planned.into_iter());
    if now.counts == reviewed && now_resources == reviewed_resources {
        updates.log(
            LogLevel::Info,
            format!("planned again: the reviewed plan ({now_line})"),
        );
        return Ok(plan_file);
    }
    let mut said = format!(
        "`{}`'s plan changed since it was reviewed — reviewed: {reviewed_line} | now: {now_line}",
        job.stack
    );
    let only_in = |a: &[(String, PlanAction)], b: &[(String, PlanAction)]| -> Vec<String> {
        a.iter()
            .filter(|r| !b.contains(r))
            .map(|(label, action)| format!("{} {label}", action.as_str()))
            .collect()
    };
    let added = only_in(&now_resources, &reviewed_resources);
    let gone = only_in(&reviewed_resources, &now_resources);
    if !added.is_empty() {
        said.push_str(&format!("; not reviewed: {}", added.join(", ")));
    }
    if !gone.is_empty() {
        said.push_str(&format!(
            "; reviewed, no longer planned: {}",
            gone.join(", ")
        ));
    }
    if accept {
        updates.log(
            LogLevel::Warn,
            format!("{said} (applied: --accept-replans)"),
        );
        return Ok(plan_file);
    }
    Err(executor::failure(
        ErrorCode::PlanChanged,
        said,
        Some("plan again now that its dependencies applied and review it, or deploy with --accept-replans".to_owned()),
    ))
}
