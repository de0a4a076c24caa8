//! `executor: pulumi`: each stack is a Pulumi project (`path`), deployed by the real Pulumi CLI
//! as stack `<ID>-<env>`. What the engine does is read from its event log (`--event-log FILE`,
//! one engine event a line), followed while Pulumi runs and turned into resource events;
//! outputs come from `pulumi stack output --json`.
//!
//! ```yaml
//! database-rds:
//!   executor: pulumi
//!   path: ../../stacks/database-rds           # the folder holding Pulumi.yaml
//!   dependencies: [network]
//!   config:                                   # optional; each key reaches Pulumi as config
//!     aws:region: us-east-1                   # every environment
//!     instanceClass: { dev: db.t3.micro, prod: db.r6g.large }     # per environment
//!     dbPassword: { value: "${env:DB_PASSWORD}", secret: true }  # from cloud's environment
//!   inputs: { vpcId: "${network.vpcId}" }     # dependencies' outputs, passed as config too
//! ```
//!
//! One run, in the project's folder (the binary is `pulumi` from PATH, or `CLOUD_PULUMI_BIN`):
//! 1. `pulumi stack select --create <ID>-<env>` (destroy: without `--create`);
//! 2. each secret value: `pulumi config set --secret KEY` with the value on stdin, never on a
//!    command line (skipped when the stack already holds that value: re-encrypting would
//!    rewrite `Pulumi.<stack>.yaml` on every run). `pulumi up` has no flag for secret config;
//! 3. `pulumi stack export` to count the resources the stack holds: the expected count for the
//!    percent (best effort; a new stack has none);
//! 4. `pulumi up --stack S --yes --skip-preview --non-interactive --color never --event-log
//!    FILE --config k=v…` with `PULUMI_DEBUG_COMMANDS=true` (without it `--event-log` does not
//!    exist); destroy: `pulumi destroy` likewise. Plain values go as `--config`, which Pulumi
//!    also saves in the stack's config file;
//! 5. after a deploy, `pulumi stack output --json` (secrets masked as `[secret]`); when some
//!    are secret, once more with `--show-secrets` for their real values, which only ever reach
//!    dependents' inputs (as secret inputs) and are never shown.
//!
//! Ctrl-C: SIGINT (Pulumi cancels cleanly, waiting for operations in flight), a second SIGINT
//! half-way through the grace period (Pulumi stops at once), SIGKILL at its end.

mod config;
mod run;
mod stream;

use std::sync::Arc;
use std::time::Duration;

use super::{BoxFuture, Job, NotReady, StackSpec, Updates};
use config::ConfigEntry;
use run::Action;

/// The Pulumi CLI to run instead of `pulumi` from PATH.
pub const BIN_VAR: &str = "CLOUD_PULUMI_BIN";
/// How often the event log is read while Pulumi runs.
const POLL: Duration = Duration::from_millis(50);
/// Lines of Pulumi's own output kept for `error.details`.
const TAIL: usize = 20;
/// How long `pulumi whoami` may take at validation.
const WHOAMI_TIMEOUT: Duration = Duration::from_secs(30);
/// An event-log line longer than this is dropped: a writer gone wrong, not an event.
const MAX_EVENT_LINE: usize = 32 << 20;
/// Lines of a short command's stdout kept (stack outputs, exports).
const MAX_CAPTURED: usize = 200_000;
/// The type of the resource that stands for the stack itself.
const STACK_TYPE: &str = "pulumi:pulumi:Stack";
const CONFIG_EXAMPLE: &str = "config: { aws:region: us-east-1 }";
const SECRET_EXAMPLE: &str = "dbPassword: { value: \"${env:DB_PASSWORD}\", secret: true }";
const PER_ENV_EXAMPLE: &str = "instanceClass: { dev: db.t3.micro, prod: db.r6g.large }";

/// The kind. It remembers each stack's `config:` as `configure` read it, because `preflight`
/// is handed the stacks, not their executors' settings.
#[derive(Default)]
pub struct Pulumi;

/// One Pulumi stack's settings.
#[derive(Debug)]
pub struct PulumiStack {
    config: Vec<ConfigEntry>,
}

impl super::StackExecutor for PulumiStack {
    fn name(&self) -> &'static str {
        "pulumi"
    }

    fn preflight(&self, spec: &StackSpec) -> Result<(), NotReady> {
        self.check(spec)
    }

    /// The stack config files `pulumi config set` and `--config` write: the config itself
    /// comes from the manifest, which the fingerprint covers.
    fn fingerprint_ignores(&self) -> &'static [&'static str] {
        &["Pulumi.*.yaml"]
    }

    fn deploy(self: Arc<Self>, job: Job, updates: Updates) -> BoxFuture {
        Box::pin(async move { run::run(&self, job, updates, Action::Up).await })
    }

    fn destroy(self: Arc<Self>, job: Job, updates: Updates) -> BoxFuture {
        Box::pin(async move { run::run(&self, job, updates, Action::Destroy).await })
    }

    fn plan(self: Arc<Self>, job: Job, updates: Updates) -> Option<BoxFuture> {
        Some(Box::pin(async move {
            run::run(&self, job, updates, Action::Preview).await
        }))
    }

    fn no_drift_check(&self) -> Option<String> {
        None
    }

    fn drift(self: Arc<Self>, job: Job, updates: Updates) -> BoxFuture {
        Box::pin(async move { run::run(&self, job, updates, Action::Refresh).await })
    }

    /// `pulumi stack output --json` (and `--show-secrets` for the secret ones).
    fn read_outputs(self: Arc<Self>, job: Job, updates: Updates) -> Option<BoxFuture> {
        Some(Box::pin(run::read_outputs(job, updates)))
    }
}
