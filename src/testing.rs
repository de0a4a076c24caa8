//! Builders of synthetic events and executor jobs, for the unit tests here and the integration
//! tests alike (not part of the interface: hidden from the docs). Events are of one deployment,
//! `D1BRV40` in `dev`, numbered in order, at chosen seconds after [`T0`].

use chrono::{DateTime, Utc};

use crate::event::*;
use crate::progress::Model;

/// One event of `D1BRV40` in `dev`, numbered `sequence`, at [`T0`] (a test that needs another
/// time or deployment sets it: `Event { timestamp, ..event(1, data) }`).
pub fn event(sequence: u64, data: EventData) -> Event {
    Event {
        sequence,
        timestamp: at(0.0),
        deployment_id: "D1BRV40".into(),
        environment: "dev".into(),
        data,
    }
}

/// A resource event as Terraform reports one: named by its address (`terraform_data.NAME`, also
/// its URN), with `action` when the tool says what the operation is (`replace`).
pub fn addressed_resource(
    stack: &str,
    state: ResourceState,
    name: &str,
    action: Option<PlanAction>,
) -> EventData {
    let address = format!("terraform_data.{name}");
    EventData::resource(
        state,
        ResourceEvent {
            stack: stack.into(),
            resource: ResourceRef {
                urn: address.clone(),
                type_: "terraform_data".into(),
                name: name.into(),
                id: None,
                address: Some(address),
            },
            duration_seconds: None,
            error: None,
            action,
        },
    )
}

/// A `stack_log` at info level.
pub fn log(stack: &str, message: &str) -> EventData {
    EventData::StackLog(StackLog {
        stack: stack.into(),
        level: LogLevel::Info,
        message: message.into(),
    })
}

/// When a built run starts: 2025-10-09T14:30:00Z.
pub const T0: i64 = 1_760_020_200;

/// `secs` seconds after [`T0`].
pub fn at(secs: f64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(T0 * 1000 + (secs * 1000.0) as i64).unwrap()
}

/// Builds a run's events, in order, at chosen times (`RunBuilder::default()`: no event yet).
#[derive(Debug, Default)]
pub struct RunBuilder {
    pub events: Vec<Event>,
    time: f64,
}

impl RunBuilder {
    /// `plan`: (name, layer, dependencies, expected seconds, expected resources).
    pub fn start(plan: &[(&str, u32, &[&str], f64, u32)]) -> Self {
        let mut run = RunBuilder::default();
        let total_layers = plan.iter().map(|p| p.1).max().unwrap_or(0);
        run.push(EventData::DeploymentStarted(DeploymentStarted {
            total_stacks: plan.len() as u32,
            total_layers,
            estimated_duration: 900,
            operation: Operation::Deploy,
            run_id: "run-1".into(),
            user: None,
            parallelism: Some(4),
            stacks: plan
                .iter()
                .map(|(name, layer, deps, secs, resources)| PlannedStack {
                    name: (*name).into(),
                    layer: *layer,
                    dependencies: deps.iter().map(|d| (*d).into()).collect(),
                    estimated_seconds: *secs,
                    expected_resources: Some(*resources),
                })
                .collect(),
            resource_seconds: Default::default(),
        }));
        run
    }

    pub fn at(&mut self, secs: f64) -> &mut Self {
        self.time = secs;
        self
    }

    /// The run is this operation (a plan, a drift check…), as its `deployment_started` says.
    pub fn operation(&mut self, operation: Operation) -> &mut Self {
        if let Some(EventData::DeploymentStarted(started)) =
            self.events.first_mut().map(|e| &mut e.data)
        {
            started.operation = operation;
        }
        self
    }

    pub fn push(&mut self, data: EventData) -> &mut Self {
        self.events.push(Event {
            timestamp: at(self.time),
            ..event(self.events.len() as u64 + 1, data)
        });
        self
    }

    pub fn layer(&mut self, layer: u32, total: u32, stacks: &[&str]) -> &mut Self {
        self.push(EventData::LayerStarted(LayerStarted {
            layer,
            total_layers: total,
            stacks: stacks.iter().map(|s| (*s).into()).collect(),
        }))
    }

    pub fn layer_done(&mut self, layer: u32) -> &mut Self {
        self.push(EventData::LayerComplete(LayerComplete {
            layer,
            deployed_stacks: 0,
            failed_stacks: 0,
            skipped_stacks: 0,
            blocked_stacks: 0,
            duration_seconds: 0,
        }))
    }

    pub fn deploying(&mut self, stack: &str, layer: u32) -> &mut Self {
        self.push(EventData::StackDeploying(StackDeploying {
            stack: stack.into(),
            layer,
            dependencies: vec![],
        }))
    }

    pub fn resource(
        &mut self,
        stack: &str,
        state: ResourceState,
        name: &str,
        type_: &str,
    ) -> &mut Self {
        self.push(EventData::resource(
            state,
            ResourceEvent {
                stack: stack.into(),
                resource: ResourceRef {
                    urn: format!("urn:pulumi:D1BRV40-dev::{stack}::{type_}::{name}"),
                    type_: type_.into(),
                    name: name.into(),
                    id: None,
                    address: None,
                },
                duration_seconds: None,
                error: (state == ResourceState::Failed).then(|| ErrorDetail {
                    code: "AccessDenied".into(),
                    message: "Access Denied".into(),
                    details: None,
                }),
                action: None,
            },
        ))
    }

    pub fn progress(&mut self, stack: &str, percent: u32, message: &str) -> &mut Self {
        self.push(EventData::StackProgress(StackProgress {
            stack: stack.into(),
            progress_percent: percent,
            current_resource: None,
            message: Some(message.into()),
        }))
    }

    pub fn log(&mut self, stack: &str, level: LogLevel, message: &str) -> &mut Self {
        self.push(EventData::StackLog(StackLog {
            stack: stack.into(),
            level,
            message: message.into(),
        }))
    }

    pub fn deployed(&mut self, stack: &str, secs: u64) -> &mut Self {
        self.push(EventData::StackDeployed(StackDeployed {
            stack: stack.into(),
            status: StackState::Deployed,
            resources_created: 2,
            resources_updated: 0,
            duration_seconds: secs,
            outputs: Outputs::new(),
            fingerprint: None,
            resources_replaced: None,
            resources_deleted: None,
        }))
    }

    pub fn failed(&mut self, stack: &str, secs: u64) -> &mut Self {
        self.push(EventData::StackFailed(StackFailed {
            stack: stack.into(),
            error: ErrorDetail {
                code: "INSUFFICIENT_PERMISSIONS".into(),
                message: "Access Denied".into(),
                details: Some("IAM role lacks ec2:CreateSubnet".into()),
            },
            duration_seconds: secs,
        }))
    }

    pub fn skipped(&mut self, stack: &str) -> &mut Self {
        self.push(EventData::StackSkipped(StackSkipped {
            stack: stack.into(),
            reason: SkipReason::Unchanged,
            outputs: Outputs::new(),
        }))
    }

    pub fn blocked(&mut self, stack: &str, by: &str) -> &mut Self {
        self.push(EventData::StackBlocked(StackBlocked {
            stack: stack.into(),
            blocked_by: by.into(),
        }))
    }

    /// The `deployment_progress` the run would carry now: its ETA, the remaining schedule (the
    /// views only count it down).
    pub fn eta(&mut self) -> &mut Self {
        let model = self.model();
        let eta = model.schedule_remaining(at(self.time)).round() as u64;
        self.push(EventData::DeploymentProgress(
            model.progress_event(Some(eta)),
        ))
    }

    pub fn cancelling(&mut self, reason: StopReason, forced: bool) -> &mut Self {
        self.push(EventData::DeploymentCancelling(DeploymentCancelling {
            reason,
            forced,
            grace_seconds: 10.0,
            message: None,
        }))
    }

    pub fn complete(&mut self, status: DeploymentState, secs: u64) -> &mut Self {
        self.push(EventData::DeploymentComplete(DeploymentComplete {
            status,
            total_stacks: 0,
            deployed_stacks: 0,
            skipped_stacks: 0,
            failed_stacks: 0,
            blocked_stacks: 0,
            not_started_stacks: 0,
            duration_seconds: secs,
            cancelled: false,
        }))
    }

    pub fn model(&self) -> Model {
        Model::from_events(&self.events).unwrap()
    }
}

/// A deploy job of `stack` in `dev`, run from `path`, with no dependency outputs or inputs and a
/// grace period of 5 s (a test that needs another sets it: `Job { grace, ..job(…) }`).
pub fn job(
    deployment_id: &str,
    stack: &str,
    path: &std::path::Path,
    scratch: &std::path::Path,
) -> crate::executor::Job {
    crate::executor::Job {
        deployment_id: deployment_id.into(),
        environment: "dev".into(),
        operation: Operation::Deploy,
        stack: stack.into(),
        path: path.to_owned(),
        dependency_outputs: Default::default(),
        inputs: Default::default(),
        cancel: crate::cancel::Cancel::new(),
        grace: std::time::Duration::from_secs(5),
        scratch: scratch.to_owned(),
        saved_plan: None,
        last_deploy: None,
    }
}
