//! Runs a plan: starts each stack as soon as its dependencies are done (never waiting for its
//! whole layer), within the parallelism limit and longest critical path first, and turns
//! executor updates into numbered events. It never waits on a consumer: events go to the
//! bus's [`Publisher`], whose queues never block.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::mpsc;

use crate::bus::Publisher;
use crate::cancel::Cancel;
use crate::event::{
    resource_urn, DeploymentComplete, DeploymentFailed, DeploymentStarted, DeploymentState,
    ErrorDetail, Event, EventData, LayerComplete, LayerStarted, LogLevel, Operation, Outputs,
    ResourceEvent, ResourceRef, ResourceState, StackBlocked, StackDeployed, StackDeploying,
    StackFailed, StackLog, StackProgress, StackState,
};
use crate::executor::{self, Deployed, ExecutorUpdate, Job, Message, Updates};
use crate::manifest::Inputs;
use crate::plan::Plan;
use crate::progress::{seconds_between, Model};

/// How to run a plan.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub environment: String,
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
}

/// How a run ended.
#[derive(Debug)]
pub struct RunResult {
    pub status: DeploymentState,
    pub cancelled: bool,
    /// The final state, folded by the one reducer.
    pub model: Model,
}

/// Runs `plan` to the end: every stack deployed, failed, blocked, or (after a stop) not started.
pub async fn run(plan: &Plan, opts: &RunOptions, bus: Publisher, cancel: Cancel) -> RunResult {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut run = Run::new(plan, opts, bus, cancel, tx);
    run.go(rx).await
}

/// A stack ready to start; the heap pops the longest critical path first, then file order.
type Ready = (u64, Reverse<usize>);

struct Run<'a> {
    plan: &'a Plan,
    opts: &'a RunOptions,
    bus: Publisher,
    cancel: Cancel,
    tx: mpsc::UnboundedSender<(usize, Message)>,
    model: Model,
    sequence: u64,
    /// Dependencies each stack still waits for.
    waiting_on: Vec<usize>,
    /// What each deployed stack left for its dependents.
    outputs: Vec<Option<Deployed>>,
    ready: BinaryHeap<Ready>,
    running: usize,
    limit: usize,
    layer_started: Vec<bool>,
    layer_unfinished: Vec<usize>,
    first_failure: Option<(usize, ErrorDetail)>,
    /// No new stacks start (interrupt, or a failure under `--fail-fast`).
    stopping: bool,
    last_percent: u32,
}

impl<'a> Run<'a> {
    fn new(
        plan: &'a Plan,
        opts: &'a RunOptions,
        bus: Publisher,
        cancel: Cancel,
        tx: mpsc::UnboundedSender<(usize, Message)>,
    ) -> Self {
        let limit = opts
            .parallelism
            .or(plan.parallelism)
            .unwrap_or(usize::MAX)
            .max(1);
        Run {
            model: Model::new(&plan.deployment_id, &opts.environment),
            waiting_on: plan.stacks.iter().map(|s| s.dependencies.len()).collect(),
            outputs: vec![None; plan.stacks.len()],
            ready: BinaryHeap::new(),
            running: 0,
            limit,
            layer_started: vec![false; plan.layers.len()],
            layer_unfinished: plan.layers.iter().map(Vec::len).collect(),
            first_failure: None,
            stopping: false,
            last_percent: 0,
            sequence: 0,
            plan,
            opts,
            bus,
            cancel,
            tx,
        }
    }

    fn emit(&mut self, data: EventData) {
        self.sequence += 1;
        let event = Arc::new(Event {
            sequence: self.sequence,
            timestamp: Utc::now(),
            deployment_id: self.plan.deployment_id.clone(),
            environment: self.opts.environment.clone(),
            data,
        });
        self.model.apply(&event);
        self.bus.send(event, &self.model);
    }

    async fn go(&mut self, mut rx: mpsc::UnboundedReceiver<(usize, Message)>) -> RunResult {
        let parallelism = (self.limit != usize::MAX).then_some(self.limit);
        self.emit(EventData::DeploymentStarted(DeploymentStarted {
            total_stacks: self.plan.stacks.len() as u32,
            total_layers: self.plan.total_layers(),
            estimated_duration: self.plan.estimated_seconds(parallelism).ceil() as u64,
            operation: self.opts.operation,
            run_id: self.opts.run_id.clone(),
            user: self.opts.user.clone(),
            parallelism,
            stacks: self.plan.planned_stacks(),
        }));
        for (i, &n) in self.waiting_on.iter().enumerate() {
            if n == 0 {
                self.ready.push(self.ready_entry(i));
            }
        }
        self.stopping = self.cancel.is_cancelled();
        self.start_ready();
        while self.running > 0 {
            tokio::select! {
                message = rx.recv() => match message {
                    Some((stack, Message::Update(update))) => self.on_update(stack, update),
                    Some((stack, Message::Done(outcome))) => self.on_done(stack, outcome),
                    None => break,
                },
                _ = self.cancel.cancelled(), if !self.stopping => self.stopping = true,
            }
        }
        self.finish()
    }

    fn ready_entry(&self, i: usize) -> Ready {
        (
            (self.plan.stacks[i].critical_path * 1000.0) as u64,
            Reverse(i),
        )
    }

    fn start_ready(&mut self) {
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
        if !self.layer_started[layer] {
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
        self.emit(EventData::StackDeploying(StackDeploying {
            stack: stack.name().to_owned(),
            layer: stack.layer,
            dependencies: stack.spec.dependencies.clone(),
        }));
        let dependency_outputs: BTreeMap<String, Outputs> = stack
            .dependencies
            .iter()
            .map(|&d| {
                let shown = self.outputs[d].as_ref().map(|o| o.outputs.clone());
                (plan.stacks[d].name().to_owned(), shown.unwrap_or_default())
            })
            .collect();
        let inputs = self.resolve_inputs(i);
        let secrets: Vec<String> = inputs
            .as_ref()
            .map(|inputs| {
                inputs
                    .values()
                    .filter(|v| v.secret)
                    .map(|v| match &v.value {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let cancel = self.cancel.child();
        let updates = Updates::new(i, self.tx.clone()).with_secrets(secrets);
        let work = match inputs {
            Ok(inputs) => {
                let job = Job {
                    deployment_id: plan.deployment_id.clone(),
                    environment: self.opts.environment.clone(),
                    operation: self.opts.operation,
                    stack: stack.spec.name.clone(),
                    path: stack.spec.path.clone(),
                    dependency_outputs,
                    inputs,
                    cancel: cancel.clone(),
                    grace: self.opts.grace,
                    scratch: self.opts.scratch.clone(),
                };
                executor::run(&stack.spec.executor, job, updates.clone())
            }
            Err(error) => Box::pin(async move { Err(error) }),
        };
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
                    "EXECUTOR_PANICKED",
                    format!("the executor crashed: {panic}"),
                    None,
                ))
            });
            let outcome = match (outcome, timeout) {
                (Err(e), Some(limit)) if timed_out && e.code == "CANCELLED" => {
                    Err(executor::failure(
                        "TIMEOUT",
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

    /// The stack's inputs from its dependencies' outputs, or why one is missing.
    fn resolve_inputs(&self, i: usize) -> Result<Inputs, ErrorDetail> {
        let plan = self.plan;
        let spec = &plan.stacks[i].spec;
        let mut values: BTreeMap<String, Outputs> = BTreeMap::new();
        for &d in &plan.stacks[i].dependencies {
            if let Some(deployed) = &self.outputs[d] {
                let mut all = deployed.outputs.clone();
                all.extend(deployed.secret_outputs.clone());
                values.insert(plan.stacks[d].name().to_owned(), all);
            }
        }
        let secret = |stack: &str, key: &str| {
            plan.index_of(stack)
                .and_then(|d| self.outputs[d].as_ref())
                .is_some_and(|o| {
                    o.secret_outputs.contains_key(key)
                        || o.outputs.get(key).and_then(|v| v.as_str()) == Some(executor::SECRET)
                })
        };
        let mut inputs = Inputs::new();
        for input in &spec.inputs {
            let value = input
                .resolve(&spec.name, &values, &secret)
                .map_err(|m| executor::failure("MISSING_INPUT", m.message, Some(m.details)))?;
            inputs.insert(input.name.clone(), value);
        }
        Ok(inputs)
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
            } => {
                let urn = if urn.is_empty() {
                    resource_urn(
                        &self.plan.deployment_id,
                        &self.opts.environment,
                        &name,
                        &type_,
                        &resource_name,
                    )
                } else {
                    urn
                };
                // Durations come from the reducer, which saw the operation start.
                let duration_seconds = state.is_finished().then(|| {
                    self.model
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
                    },
                ));
            }
            ExecutorUpdate::Progress {
                percent,
                message,
                current_resource,
            } => {
                let model = self.model.stack(&name);
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
                self.emit(EventData::StackLog(StackLog {
                    stack: name,
                    level,
                    message,
                }));
            }
        }
    }

    fn on_done(&mut self, i: usize, outcome: executor::Outcome) {
        self.running -= 1;
        let plan = self.plan;
        let name = plan.stacks[i].name().to_owned();
        self.close_resources_in_flight(i, &name, outcome.as_ref().err());
        let (duration_seconds, created, updated) = self.model.stack(&name).map_or((0, 0, 0), |s| {
            (
                s.elapsed(Utc::now()).round() as u64,
                s.resources.created,
                s.resources.updated,
            )
        });
        let mut finished = vec![i];
        match outcome {
            Ok(deployed) => {
                let outputs = deployed.outputs.clone();
                self.outputs[i] = Some(deployed);
                self.emit(EventData::StackDeployed(StackDeployed {
                    stack: name,
                    status: StackState::Deployed,
                    resources_created: created,
                    resources_updated: updated,
                    duration_seconds,
                    outputs,
                }));
                for &d in &plan.stacks[i].dependents {
                    self.waiting_on[d] -= 1;
                    if self.waiting_on[d] == 0
                        && self.model.stacks_status(plan.stacks[d].name())
                            == Some(StackState::Pending)
                    {
                        self.ready.push(self.ready_entry(d));
                    }
                }
            }
            Err(error) => {
                self.emit(EventData::StackFailed(StackFailed {
                    stack: name.clone(),
                    error: error.clone(),
                    duration_seconds,
                }));
                // A stack stopped by Ctrl-C did not fail on its own: what waits for it was not
                // started because of the cancel, and is not blocked by it.
                let interrupted = error.code == "CANCELLED" && self.cancel.is_cancelled();
                self.first_failure.get_or_insert((i, error));
                if self.opts.fail_fast {
                    self.stopping = true;
                }
                if !interrupted {
                    finished.extend(self.block_dependents_of(i, &name));
                }
            }
        }
        for s in finished {
            self.count_finished_in_layer(s);
        }
        let percent = self.model.summary.progress_percent;
        if percent != self.last_percent {
            self.last_percent = percent;
            let progress = self.model.progress_event(Utc::now());
            self.emit(EventData::DeploymentProgress(progress));
        }
        self.start_ready();
    }

    /// Resources the executor started and never finished end with their stack: failed with its
    /// error, or, when the stack deployed, done (with a warning), so that counts add up.
    fn close_resources_in_flight(&mut self, i: usize, name: &str, error: Option<&ErrorDetail>) {
        let in_flight: Vec<(String, String, String, Option<String>, ResourceState)> = self
            .model
            .stack(name)
            .map(|s| {
                s.resource_list
                    .iter()
                    .filter(|r| !r.status.is_finished())
                    .map(|r| {
                        let address = r.address.clone();
                        (
                            r.urn.clone(),
                            r.type_.clone(),
                            r.name.clone(),
                            address,
                            r.status,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (urn, type_, resource, address, state) in in_flight {
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
                },
            );
        }
    }

    /// Marks every stack above `failed` that has not started `blocked`; returns them.
    fn block_dependents_of(&mut self, failed: usize, failed_name: &str) -> Vec<usize> {
        let plan = self.plan;
        let mut blocked = Vec::new();
        let mut queue = vec![failed];
        while let Some(s) = queue.pop() {
            for &d in &plan.stacks[s].dependents {
                let name = plan.stacks[d].name();
                if self.model.stacks_status(name) == Some(StackState::Pending) {
                    self.emit(EventData::StackBlocked(StackBlocked {
                        stack: name.to_owned(),
                        blocked_by: failed_name.to_owned(),
                    }));
                    blocked.push(d);
                    queue.push(d);
                }
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
                .filter(|&&s| self.model.stacks_status(plan.stacks[s].name()) == Some(state))
                .count() as u32
        };
        let started = self
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

    fn finish(&mut self) -> RunResult {
        let duration_seconds = self.model.elapsed(Utc::now()).round() as u64;
        let cancelled = self.cancel.is_cancelled();
        let summary = self.model.summary.clone();
        let not_started = self
            .model
            .stacks
            .iter()
            .filter(|s| s.status == StackState::Pending)
            .count() as u32;
        let ok = summary.failed_stacks == 0 && not_started == 0 && !cancelled;
        let status = if ok {
            DeploymentState::Deployed
        } else {
            DeploymentState::Failed
        };
        if !ok {
            let names = |state| -> Vec<String> {
                self.model
                    .stacks
                    .iter()
                    .filter(|s| s.status == state)
                    .map(|s| s.name.clone())
                    .collect()
            };
            let (stack, layer, error) = match &self.first_failure {
                Some((i, e)) => {
                    let s = &self.plan.stacks[*i];
                    (Some(s.name().to_owned()), Some(s.layer), e.clone())
                }
                None => (
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
        }
    }
}
