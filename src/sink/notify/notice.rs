//! What a notification says, whatever the channel: the facts of a run at one of the seed's
//! triggers, read from the events folded into [`Model`]. Each channel words a [`Notice`] its
//! own way (`email.rs`, `slack.rs`, `pagerduty.rs`). Drift's notices are made at the end of a
//! run from what it found (`drift.rs`).

use chrono::{DateTime, Utc};

use crate::event::{
    DeploymentFailed, DeploymentStarted, ErrorCode, ErrorDetail, Event, EventData, Operation,
    StackFailed, StackState,
};
use crate::progress::{DriftTotals, Model};
use crate::words;

/// Which of the seed's triggers a notice is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    Started,
    Complete,
    Failed,
    StackFailed,
    /// A drift check found drifted stacks.
    DriftDetected,
    /// Stacks drifted before the run are in sync after it.
    DriftResolved,
    /// `cloud notify test`.
    Test,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub what: What,
    pub deployment_id: String,
    pub environment: String,
    pub operation: Operation,
    pub run_id: String,
    pub user: Option<String>,
    /// When it happened.
    pub at: DateTime<Utc>,
    pub counts: Counts,
    pub total_layers: u32,
    pub duration_seconds: u64,
    /// On `Started`: the expected duration.
    pub estimated_seconds: Option<u64>,
    /// On `Failed` and `StackFailed`.
    pub failure: Option<WhatFailed>,
    /// On `DriftDetected` and `DriftResolved`.
    pub drift: Option<DriftReport>,
    pub links: Links,
}

/// The stacks a drift notice is about.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DriftReport {
    pub stacks: Vec<DriftedStack>,
    /// The drift check's totals (none for a deploy).
    pub totals: DriftTotals,
}

/// A drifted stack (or one drifted before the run, for `DriftResolved`).
#[derive(Debug, Clone, PartialEq)]
pub struct DriftedStack {
    pub stack: String,
    /// When it was first found drifted.
    pub since: Option<DateTime<Utc>>,
    /// Its drifted resources, in words: `web-sg: ingress[0].cidr now "0.0.0.0/0"` (values as
    /// the events carry them: masked, and sensitive ones never shown). For `DriftResolved`,
    /// the resources that had drifted.
    pub resources: Vec<String>,
}

impl DriftedStack {
    /// `drifted since 2026-12-04 05:40 UTC`, or `drifted`.
    pub fn since_words(&self) -> String {
        match self.since {
            Some(since) => format!("drifted since {}", since.format("%Y-%m-%d %H:%M UTC")),
            None => "drifted".into(),
        }
    }
}

/// Stacks by how they ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: u32,
    pub deployed: u32,
    pub skipped: u32,
    pub failed: u32,
    pub blocked: u32,
    pub not_started: u32,
}

/// What failed, for a notice (a command's own error is [`crate::error::Error`]).
#[derive(Debug, Clone, PartialEq)]
pub struct WhatFailed {
    /// The stack that failed (the first one, for a failed run).
    pub stack: Option<String>,
    /// Its layer.
    pub layer: Option<u32>,
    pub error: ErrorDetail,
    /// Every failed stack (a failed run).
    pub failed_stacks: Vec<String>,
    pub blocked_stacks: Vec<String>,
}

impl WhatFailed {
    /// Stopped by Ctrl-C or SIGTERM: someone chose it, nobody needs paging.
    pub fn cancelled(&self) -> bool {
        self.error.code == ErrorCode::Cancelled
    }
}

/// Where the dashboard shows the run (none without `dashboardUrl`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Links {
    /// `<dashboardUrl>/deployments/<ID>/<env>`, the seed's "View details".
    pub details: Option<String>,
    pub logs: Option<String>,
    pub retry: Option<String>,
    pub rollback: Option<String>,
}

impl Links {
    pub fn new(dashboard: Option<&str>, id: &str, env: &str, stack: Option<&str>) -> Links {
        let Some(base) = dashboard.map(|d| d.trim().trim_end_matches('/')) else {
            return Links::default();
        };
        let details = format!("{base}/deployments/{id}/{env}");
        Links {
            logs: Some(match stack {
                Some(s) => format!("{details}/logs?stack={s}"),
                None => format!("{details}/logs"),
            }),
            retry: Some(format!("{details}/retry")),
            rollback: Some(format!("{details}/rollback")),
            details: Some(details),
        }
    }
}

impl Notice {
    fn base(what: What, model: &Model, at: DateTime<Utc>, dashboard: Option<&str>) -> Notice {
        let s = &model.summary;
        let not_started = model
            .stacks
            .iter()
            .filter(|s| s.status == StackState::Pending)
            .count() as u32;
        Notice {
            what,
            deployment_id: model.deployment_id.clone(),
            environment: model.environment.clone(),
            operation: model.operation,
            run_id: model.run_id.clone(),
            user: None,
            at,
            counts: Counts {
                total: s.total_stacks,
                deployed: s.deployed_stacks,
                skipped: s.skipped_stacks,
                failed: s.failed_stacks,
                blocked: s.blocked_stacks,
                not_started,
            },
            total_layers: model.total_layers,
            duration_seconds: model.metrics.duration_seconds,
            estimated_seconds: None,
            failure: None,
            drift: None,
            links: Links::new(dashboard, &model.deployment_id, &model.environment, None),
        }
    }

    /// `deployment_started`.
    pub fn started(
        model: &Model,
        event: &Event,
        started: &DeploymentStarted,
        dashboard: Option<&str>,
    ) -> Notice {
        Notice {
            user: started.user.clone(),
            estimated_seconds: Some(started.estimated_duration),
            ..Notice::base(What::Started, model, event.timestamp, dashboard)
        }
    }

    /// `deployment_complete` of a run that deployed everything.
    pub fn complete(model: &Model, event: &Event, dashboard: Option<&str>) -> Notice {
        Notice::base(What::Complete, model, event.timestamp, dashboard)
    }

    /// A failed run: its `deployment_failed` summary.
    pub fn failed(
        model: &Model,
        at: DateTime<Utc>,
        failed: &DeploymentFailed,
        dashboard: Option<&str>,
    ) -> Notice {
        let mut notice = Notice::base(What::Failed, model, at, dashboard);
        notice.duration_seconds = failed.duration_seconds;
        notice.links = Links::new(
            dashboard,
            &model.deployment_id,
            &model.environment,
            failed.stack.as_deref(),
        );
        notice.failure = Some(WhatFailed {
            stack: failed.stack.clone(),
            layer: failed.layer,
            error: failed.error.clone(),
            failed_stacks: failed.failed_stacks.clone(),
            blocked_stacks: failed.blocked_stacks.clone(),
        });
        notice
    }

    /// `stack_failed`.
    pub fn stack_failed(
        model: &Model,
        event: &Event,
        failed: &StackFailed,
        dashboard: Option<&str>,
    ) -> Notice {
        let mut notice = Notice::base(What::StackFailed, model, event.timestamp, dashboard);
        notice.duration_seconds = failed.duration_seconds;
        notice.links = Links::new(
            dashboard,
            &model.deployment_id,
            &model.environment,
            Some(&failed.stack),
        );
        notice.failure = Some(WhatFailed {
            stack: Some(failed.stack.clone()),
            layer: model.stack(&failed.stack).map(|s| s.layer),
            error: failed.error.clone(),
            failed_stacks: vec![failed.stack.clone()],
            blocked_stacks: Vec::new(),
        });
        notice
    }

    /// `drift_detected` or `drift_resolved`, at the end of the run (`at`).
    pub fn drift(
        what: What,
        model: &Model,
        at: DateTime<Utc>,
        report: DriftReport,
        dashboard: Option<&str>,
    ) -> Notice {
        Notice {
            drift: Some(report),
            ..Notice::base(what, model, at, dashboard)
        }
    }

    /// `cloud notify test`.
    pub fn test(id: &str, env: &str, dashboard: Option<&str>) -> Notice {
        Notice {
            what: What::Test,
            deployment_id: id.to_owned(),
            environment: env.to_owned(),
            operation: Operation::Deploy,
            run_id: String::new(),
            user: crate::store::lock::user(),
            at: Utc::now(),
            counts: Counts::default(),
            total_layers: 0,
            duration_seconds: 0,
            estimated_seconds: None,
            failure: None,
            drift: None,
            links: Links::new(dashboard, id, env, None),
        }
    }

    /// `D1BRV40-dev`.
    pub fn target(&self) -> String {
        format!("{}-{}", self.deployment_id, self.environment)
    }

    /// `Deployment Complete: D1BRV40-dev`, `Stack Failed: database-rds (D1BRV40-dev)`.
    pub fn title(&self) -> String {
        let run = words::run_name(self.operation);
        let target = self.target();
        match self.what {
            What::Started => format!("{run} Started: {target}"),
            What::Complete => format!("{run} Complete: {target}"),
            What::Failed if self.cancelled() => format!("{run} Cancelled: {target}"),
            What::Failed => format!("{run} Failed: {target}"),
            What::StackFailed => format!("Stack Failed: {} ({target})", self.stack()),
            What::DriftDetected => format!("Drift Detected: {target}"),
            What::DriftResolved => format!("Drift Resolved: {target}"),
            What::Test => format!("Test Notification: {target}"),
        }
    }

    /// `Deployment D1BRV40 to dev environment completed successfully.`: the first line.
    pub fn headline(&self) -> String {
        let (id, env) = (&self.deployment_id, &self.environment);
        let run = match self.operation {
            Operation::Deploy => format!("Deployment {id} to {env} environment"),
            Operation::Destroy => format!("Destroy of {id} in {env} environment"),
            Operation::Rollback => format!("Rollback of {id} in {env} environment"),
            Operation::Plan => format!("Plan of {id} for {env} environment"),
            Operation::Drift => format!("Drift check of {id} in {env} environment"),
        };
        let drifted = || words::plural(self.drift_stacks().len(), "drifted stack");
        match self.what {
            What::Started => format!("{run} started."),
            What::DriftDetected => format!("{run} found {}.", drifted()),
            // A check finds them fixed outside; a deploy brings them back itself.
            What::DriftResolved if self.operation == Operation::Drift => {
                format!("{run} found {} back in sync.", drifted())
            }
            What::DriftResolved => format!("{run} brought {} back in sync.", drifted()),
            What::Complete => format!("{run} completed successfully."),
            What::Failed if self.cancelled() => format!("{run} was cancelled."),
            What::Failed => format!("{run} failed."),
            What::StackFailed => format!(
                "Stack {} failed during {} {id} ({env} environment).",
                self.stack(),
                words::run_name(self.operation).to_lowercase()
            ),
            What::Test => format!(
                "This is a test notification for deployment {id} ({env} environment), sent by \
                 `cloud notify test`. If you can read it, this channel works."
            ),
        }
    }

    pub fn cancelled(&self) -> bool {
        self.failure.as_ref().is_some_and(WhatFailed::cancelled)
    }

    /// The failed stack's name, or `-`.
    pub fn stack(&self) -> &str {
        self.failure
            .as_ref()
            .and_then(|f| f.stack.as_deref())
            .unwrap_or("-")
    }

    /// `3/5`: the failed stack's layer, of all.
    pub fn layer(&self) -> Option<String> {
        let layer = self.failure.as_ref()?.layer?;
        Some(if self.total_layers > 0 {
            format!("{layer}/{}", self.total_layers)
        } else {
            layer.to_string()
        })
    }

    /// `Layer 3/5`, the seed's "Failed at".
    pub fn failed_at(&self) -> Option<String> {
        self.layer().map(|l| format!("Layer {l}"))
    }

    /// `20m 15s`.
    pub fn duration(&self) -> String {
        words::format_duration(self.duration_seconds)
    }

    /// The command that runs it again: `cloud deploy D1BRV40 -e dev`.
    pub fn retry_command(&self) -> String {
        format!(
            "cloud {} {} -e {}",
            self.operation.as_str(),
            self.deployment_id,
            self.environment
        )
    }

    /// The stacks of a drift notice (none for others).
    pub fn drift_stacks(&self) -> &[DriftedStack] {
        self.drift.as_ref().map_or(&[], |d| d.stacks.as_slice())
    }

    /// The command that redeploys just the drifted stacks.
    pub fn heal_command(&self) -> String {
        format!(
            "cloud deploy {} -e {} --only-drifted",
            self.deployment_id, self.environment
        )
    }

    /// `cloud-D1BRV40-dev`: one PagerDuty incident per deployment and environment.
    pub fn dedup_key(&self) -> String {
        dedup_key(&self.deployment_id, &self.environment)
    }
}

/// PagerDuty's `dedup_key` for a deployment and environment: a failure of either run adds to
/// the same incident, and a later success resolves it.
pub fn dedup_key(deployment_id: &str, environment: &str) -> String {
    format!("cloud-{deployment_id}-{environment}")
}

/// What an event tells people, before any channel is asked: the seed's triggers.
#[derive(Debug, Clone)]
pub enum Trigger {
    Started(Notice),
    /// A stack failed on its own (a stack stopped by Ctrl-C is not one).
    StackFailed(Notice),
    /// The run failed (its `deployment_failed`).
    Failed(Notice),
    /// The run ended. `failed` is the failure notice when it did not deploy everything.
    Complete {
        ok: bool,
        notice: Notice,
    },
    /// At the end of a drift check that found drifted stacks.
    DriftDetected(Notice),
    /// At the end of a run after which stacks drifted before it are in sync.
    DriftResolved(Notice),
    /// At the end of a run after which no stack is known drifted: drift's incident is over.
    DriftSettled,
}

/// The trigger `event` is, once folded into `model`; `None` for events nobody is told about.
pub fn trigger(model: &Model, event: &Event, dashboard: Option<&str>) -> Option<Trigger> {
    match &event.data {
        EventData::DeploymentStarted(started) => Some(Trigger::Started(Notice::started(
            model, event, started, dashboard,
        ))),
        EventData::StackFailed(failed) if failed.error.code != ErrorCode::Cancelled => Some(
            Trigger::StackFailed(Notice::stack_failed(model, event, failed, dashboard)),
        ),
        EventData::DeploymentFailed(failed) => Some(Trigger::Failed(Notice::failed(
            model,
            event.timestamp,
            failed,
            dashboard,
        ))),
        EventData::DeploymentComplete(done) => {
            let ok = done.status == crate::event::DeploymentState::Deployed && !done.cancelled;
            let notice = match (&model.failure, ok) {
                (Some(failed), false) => Notice::failed(model, event.timestamp, failed, dashboard),
                _ => Notice::complete(model, event, dashboard),
            };
            Some(Trigger::Complete { ok, notice })
        }
        _ => None,
    }
}
