//! Progress events: the envelope `{"type","timestamp","sequence","data"}` and every event type.
//!
//! Field names are the seed's (camelCase). Every `data` carries `deploymentId` and `environment`;
//! they live once in [`Event`] and are written into `data` when serialized.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Outputs of a stack, as reported by its executor.
pub type Outputs = BTreeMap<String, serde_json::Value>;

/// One event of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Counts from 1 per run, without gaps.
    pub sequence: u64,
    pub timestamp: DateTime<Utc>,
    pub deployment_id: String,
    pub environment: String,
    pub data: EventData,
}

/// The seed's timestamp form: UTC with milliseconds, `2025-10-09T14:30:00.123Z`.
pub fn format_timestamp(t: &DateTime<Utc>) -> String {
    Timestamp::of(t).as_str().to_owned()
}

/// [`format_timestamp`]'s text without an allocation: every event's timestamp is written by
/// the journal, the file log and the JSON stream (chrono's general formatter was a tenth of
/// their time on a big run).
pub struct Timestamp {
    text: [u8; 24],
    /// Years beyond four digits, which chrono writes its own way.
    other: Option<String>,
}

impl Timestamp {
    pub fn of(t: &DateTime<Utc>) -> Timestamp {
        use chrono::{Datelike, Timelike};
        let mut text = *b"0000-00-00T00:00:00.000Z";
        let year = t.year();
        if !(0..=9999).contains(&year) {
            return Timestamp {
                text,
                other: Some(t.to_rfc3339_opts(SecondsFormat::Millis, true)),
            };
        }
        // (A leap second's nanoseconds go past 1e9; chrono writes its millis as 1000+.)
        let millis = t.nanosecond() / 1_000_000;
        if millis > 999 {
            return Timestamp {
                text,
                other: Some(t.to_rfc3339_opts(SecondsFormat::Millis, true)),
            };
        }
        let mut put = |at: usize, digits: usize, mut n: u32| {
            for i in (at..at + digits).rev() {
                text[i] = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        put(0, 4, year as u32);
        put(5, 2, t.month());
        put(8, 2, t.day());
        put(11, 2, t.hour());
        put(14, 2, t.minute());
        put(17, 2, t.second());
        put(20, 3, millis);
        Timestamp { text, other: None }
    }

    pub fn as_str(&self) -> &str {
        match &self.other {
            Some(other) => other,
            // Only ASCII digits and separators were written.
            None => std::str::from_utf8(&self.text).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentState {
    Initializing,
    Validating,
    Deploying,
    Deployed,
    Failed,
    RollingBack,
    RolledBack,
}

impl DeploymentState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initializing => "initializing",
            Self::Validating => "validating",
            Self::Deploying => "deploying",
            Self::Deployed => "deployed",
            Self::Failed => "failed",
            Self::RollingBack => "rolling_back",
            Self::RolledBack => "rolled_back",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StackState {
    Pending,
    Deploying,
    Deployed,
    Failed,
    Skipped,
    Blocked,
}

impl StackState {
    /// The mark every view and `cloud status` show for the state.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Pending => "⏸",
            Self::Deploying => "→",
            Self::Deployed => "✓",
            Self::Failed => "✗",
            Self::Skipped => "↷",
            Self::Blocked => "⊘",
        }
    }
    /// Deployed, failed, skipped or blocked: the stack will not change again this run.
    pub fn is_finished(self) -> bool {
        !matches!(self, Self::Pending | Self::Deploying)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Deploying => "deploying",
            Self::Deployed => "deployed",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Blocked => "blocked",
        }
    }
}

/// What a run does to its stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    #[default]
    Deploy,
    Destroy,
    Rollback,
    /// `cloud plan`: every stack's preview; nothing changes.
    Plan,
    /// `cloud drift`: every stack's real infrastructure compared with what was deployed;
    /// nothing changes.
    Drift,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Destroy => "destroy",
            Self::Rollback => "rollback",
            Self::Plan => "plan",
            Self::Drift => "drift",
        }
    }

    /// A preview or a drift check: it changes nothing (no history, fingerprint or output).
    pub fn changes_nothing(self) -> bool {
        matches!(self, Self::Plan | Self::Drift)
    }

    /// `deployed`, `destroyed`, `rolled back`: what a successful run did.
    pub fn done(self) -> &'static str {
        match self {
            Self::Deploy => "deployed",
            Self::Destroy => "destroyed",
            Self::Rollback => "rolled back",
            Self::Plan => "planned",
            Self::Drift => "checked",
        }
    }
}

/// The seed's resource states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceState {
    Creating,
    Created,
    Updating,
    Updated,
    Deleting,
    Deleted,
    Failed,
}

impl ResourceState {
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            Self::Created | Self::Updated | Self::Deleted | Self::Failed
        )
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "creating",
            Self::Created => "created",
            Self::Updating => "updating",
            Self::Updated => "updated",
            Self::Deleting => "deleting",
            Self::Deleted => "deleted",
            Self::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Debug,
    #[default]
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    Unchanged,
    NotSelected,
    /// A drift check: the stack was never deployed here, so there is nothing to compare.
    NotDeployed,
}

/// The stable code of a failure (the seed's `error.code`), serialized as today's strings
/// (`COMMAND_FAILED`, `LOCKED`, …). Compare codes with these variants, never with strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The command exited non-zero.
    CommandFailed,
    /// The command could not be started.
    CommandNotStarted,
    /// A `command` stack without a destroy command was destroyed.
    NoDestroyCommand,
    /// The outputs the stack wrote cannot be read.
    OutputsInvalid,
    /// A resource the program reported failed.
    ResourceFailed,
    /// Reading or writing the stack's files failed.
    IoError,
    /// The executor cannot roll back.
    NoRollback,
    /// Terraform or OpenTofu failed.
    TerraformError,
    /// No `terraform`/`tofu` program.
    TerraformNotFound,
    /// The program could not be started.
    TerraformNotStarted,
    /// Pulumi failed.
    PulumiError,
    /// No `pulumi` program.
    PulumiNotFound,
    /// The program could not be started.
    PulumiNotStarted,
    /// A Pulumi config value is missing.
    MissingConfig,
    /// The tool's own state lock is held by someone else.
    Locked,
    /// The cloud refused: access denied.
    InsufficientPermissions,
    /// The run was interrupted.
    Cancelled,
    /// The stack ran past its timeout.
    Timeout,
    /// A bug in cloud's executor.
    ExecutorPanicked,
    /// An input the stack needs has no value.
    MissingInput,
    /// A secret input could not be read.
    SecretUnavailable,
    /// The run lost its lock (another machine may deploy now).
    LockLost,
    /// `deploy --plan`: what the stack was planned from changed (or its saved plan is stale).
    PlanChanged,
    /// A code this version does not know (a newer writer's journal, server or table): kept as is.
    Other(String),
}

impl ErrorCode {
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::CommandFailed => "COMMAND_FAILED",
            ErrorCode::CommandNotStarted => "COMMAND_NOT_STARTED",
            ErrorCode::NoDestroyCommand => "NO_DESTROY_COMMAND",
            ErrorCode::OutputsInvalid => "OUTPUTS_INVALID",
            ErrorCode::ResourceFailed => "RESOURCE_FAILED",
            ErrorCode::IoError => "IO_ERROR",
            ErrorCode::NoRollback => "NO_ROLLBACK",
            ErrorCode::TerraformError => "TERRAFORM_ERROR",
            ErrorCode::TerraformNotFound => "TERRAFORM_NOT_FOUND",
            ErrorCode::TerraformNotStarted => "TERRAFORM_NOT_STARTED",
            ErrorCode::PulumiError => "PULUMI_ERROR",
            ErrorCode::PulumiNotFound => "PULUMI_NOT_FOUND",
            ErrorCode::PulumiNotStarted => "PULUMI_NOT_STARTED",
            ErrorCode::MissingConfig => "MISSING_CONFIG",
            ErrorCode::Locked => "LOCKED",
            ErrorCode::InsufficientPermissions => "INSUFFICIENT_PERMISSIONS",
            ErrorCode::Cancelled => "CANCELLED",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::ExecutorPanicked => "EXECUTOR_PANICKED",
            ErrorCode::MissingInput => "MISSING_INPUT",
            ErrorCode::SecretUnavailable => "SECRET_UNAVAILABLE",
            ErrorCode::LockLost => "LOCK_LOST",
            ErrorCode::PlanChanged => "PLAN_CHANGED",
            ErrorCode::Other(code) => code,
        }
    }

    pub fn parse(code: &str) -> ErrorCode {
        match code {
            "COMMAND_FAILED" => ErrorCode::CommandFailed,
            "COMMAND_NOT_STARTED" => ErrorCode::CommandNotStarted,
            "NO_DESTROY_COMMAND" => ErrorCode::NoDestroyCommand,
            "OUTPUTS_INVALID" => ErrorCode::OutputsInvalid,
            "RESOURCE_FAILED" => ErrorCode::ResourceFailed,
            "IO_ERROR" => ErrorCode::IoError,
            "NO_ROLLBACK" => ErrorCode::NoRollback,
            "TERRAFORM_ERROR" => ErrorCode::TerraformError,
            "TERRAFORM_NOT_FOUND" => ErrorCode::TerraformNotFound,
            "TERRAFORM_NOT_STARTED" => ErrorCode::TerraformNotStarted,
            "PULUMI_ERROR" => ErrorCode::PulumiError,
            "PULUMI_NOT_FOUND" => ErrorCode::PulumiNotFound,
            "PULUMI_NOT_STARTED" => ErrorCode::PulumiNotStarted,
            "MISSING_CONFIG" => ErrorCode::MissingConfig,
            "LOCKED" => ErrorCode::Locked,
            "INSUFFICIENT_PERMISSIONS" => ErrorCode::InsufficientPermissions,
            "CANCELLED" => ErrorCode::Cancelled,
            "TIMEOUT" => ErrorCode::Timeout,
            "EXECUTOR_PANICKED" => ErrorCode::ExecutorPanicked,
            "MISSING_INPUT" => ErrorCode::MissingInput,
            "SECRET_UNAVAILABLE" => ErrorCode::SecretUnavailable,
            "LOCK_LOST" => ErrorCode::LockLost,
            "PLAN_CHANGED" => ErrorCode::PlanChanged,
            other => ErrorCode::Other(other.to_owned()),
        }
    }
}

impl Default for ErrorCode {
    fn default() -> Self {
        ErrorCode::Other(String::new())
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for ErrorCode {
    fn from(code: &str) -> Self {
        ErrorCode::parse(code)
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(ErrorCode::parse(&String::deserialize(d)?))
    }
}

/// The seed's `error` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

/// The seed's `resource` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ResourceRef {
    pub urn: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The tool's own full address of the resource when it has one besides the URN (Terraform:
    /// `module.net.aws_subnet.public["a"]`, module path and key included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

impl ResourceRef {
    /// `Type (name)`, how views name a resource.
    pub fn label(&self) -> String {
        resource_label(&self.type_, &self.name)
    }

    /// Whether `text` is [`ResourceRef::label`] (without writing the label out).
    pub fn is_label(&self, text: &str) -> bool {
        (text.strip_prefix(self.type_.as_str()))
            .and_then(|rest| rest.strip_prefix(" ("))
            .and_then(|rest| rest.strip_suffix(')'))
            == Some(self.name.as_str())
    }
}

/// `Type (name)`, how views name a resource that has no address of its own.
pub fn resource_label(type_: &str, name: &str) -> String {
    let mut label = String::with_capacity(type_.len() + name.len() + 3);
    write_resource_label(&mut label, type_, name);
    label
}

/// [`resource_label`] added to `out` (a buffer reused by the reducer).
pub fn write_resource_label(out: &mut String, type_: &str, name: &str) {
    out.push_str(type_);
    out.push_str(" (");
    out.push_str(name);
    out.push(')');
}

/// `urn:pulumi:<ID>-<env>::<stack>::<type>::<name>`, the seed's URN form.
pub fn resource_urn(
    deployment_id: &str,
    environment: &str,
    stack: &str,
    type_: &str,
    name: &str,
) -> String {
    format!("urn:pulumi:{deployment_id}-{environment}::{stack}::{type_}::{name}")
}

/// A stack as announced by `deployment_started`, so that any consumer can build the whole picture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PlannedStack {
    pub name: String,
    pub layer: u32,
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// Expected duration (recent median, simulated total, or a default), for ETA.
    #[serde(default)]
    pub estimated_seconds: f64,
    /// Resources the stack is known to hold, when known before it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_resources: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentStarted {
    pub total_stacks: u32,
    pub total_layers: u32,
    /// Seconds, from the expected durations and the parallelism limit.
    pub estimated_duration: u64,
    #[serde(default)]
    pub operation: Operation,
    #[serde(default)]
    pub run_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<usize>,
    /// Every stack in dependency order.
    #[serde(default)]
    pub stacks: Vec<PlannedStack>,
    /// Median seconds of an operation per resource type, from earlier runs (for the ETA of a
    /// stack that runs past its expected duration).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resource_seconds: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentProgress {
    pub progress_percent: u32,
    pub deployed_stacks: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_layer: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_stack: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_time_remaining: Option<u64>,
    /// The stacks behind the percent, by where they stand (see `progress::Progress`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stacks: Option<StackTally>,
    /// What `stacks.done` counts: deployed, destroyed or planned stacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
    /// The chain of unfinished stacks the ETA hangs on, first to last (`eta::critical_path`):
    /// what the run is waiting on. Absent once nothing is left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical_path: Option<Vec<String>>,
}

/// A run's stacks by where they stand: the counts beside its percent (`progress::Progress`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackTally {
    pub total: u32,
    /// Deployed (destroyed by a destroy, planned by a plan).
    pub done: u32,
    pub skipped: u32,
    /// Failed, interrupted ones included.
    pub failed: u32,
    pub blocked: u32,
    /// Deployed by the run, then rolled back.
    #[serde(default)]
    pub rolled_back: u32,
    /// Never started, once the run ended (a cancel): not settled.
    #[serde(default)]
    pub not_started: u32,
}

impl StackTally {
    /// Stacks whose outcome this run is decided: done, skipped, failed, blocked, rolled back.
    pub fn settled(&self) -> u32 {
        self.done + self.skipped + self.failed + self.blocked + self.rolled_back
    }
}

/// `deployment_cancelling`: a stop began (nothing new starts); sent again when it is forced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentCancelling {
    pub reason: StopReason,
    /// Running stacks are killed now (a second Ctrl-C).
    #[serde(default)]
    pub forced: bool,
    /// Seconds a stopping stack gets before it is killed (a lost lock lets them finish: 0).
    #[serde(default)]
    pub grace_seconds: f64,
    /// Why, in words, when the reason has more to say (the lost lock's message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Why a run stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Ctrl-C (or the interactive view's cancel).
    Interrupt,
    /// SIGTERM, or SIGHUP (the terminal closed).
    Signal,
    /// The run's lock was lost: running stacks finish, nothing new starts.
    LockLost,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentComplete {
    pub status: DeploymentState,
    pub total_stacks: u32,
    pub deployed_stacks: u32,
    pub skipped_stacks: u32,
    pub failed_stacks: u32,
    #[serde(default)]
    pub blocked_stacks: u32,
    /// Stacks never started (after `--fail-fast` or an interrupt).
    #[serde(default)]
    pub not_started_stacks: u32,
    pub duration_seconds: u64,
    #[serde(default)]
    pub cancelled: bool,
}

/// The error summary of a failed run, emitted just before `deployment_complete`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentFailed {
    pub failed_stacks: Vec<String>,
    #[serde(default)]
    pub blocked_stacks: Vec<String>,
    /// The first stack that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    /// The layer of the first failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<u32>,
    pub error: ErrorDetail,
    pub duration_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerStarted {
    pub layer: u32,
    pub total_layers: u32,
    pub stacks: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerComplete {
    pub layer: u32,
    pub deployed_stacks: u32,
    pub failed_stacks: u32,
    #[serde(default)]
    pub skipped_stacks: u32,
    #[serde(default)]
    pub blocked_stacks: u32,
    pub duration_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackDeploying {
    pub stack: String,
    pub layer: u32,
    pub dependencies: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackProgress {
    pub stack: String,
    pub progress_percent: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackDeployed {
    pub stack: String,
    pub status: StackState,
    pub resources_created: u32,
    #[serde(default)]
    pub resources_updated: u32,
    pub duration_seconds: u64,
    #[serde(default)]
    pub outputs: Outputs,
    /// What it was deployed from (smart skip compares the next run's with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Resources the deploy replaced (not counted as updated), when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources_replaced: Option<u32>,
    /// Resources the deploy destroyed (removed from the stack's code), when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources_deleted: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackFailed {
    pub stack: String,
    pub error: ErrorDetail,
    #[serde(default)]
    pub duration_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackSkipped {
    pub stack: String,
    pub reason: SkipReason,
    #[serde(default)]
    pub outputs: Outputs,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackBlocked {
    pub stack: String,
    /// The failed dependency (direct or further down) that stops this stack.
    pub blocked_by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackLog {
    pub stack: String,
    pub level: LogLevel,
    pub message: String,
}

/// A stack's attempt failed with a transient error: it is tried again after `delaySeconds`
/// (see `retry:` in the manifest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackRetrying {
    pub stack: String,
    /// The attempt that starts after the delay (2 after the first failed).
    pub attempt: u32,
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The transient pattern the error matched (`ThrottlingException`, or the regex written
    /// in `retry.errors`).
    pub pattern: String,
    /// The failed attempt's error.
    pub error: ErrorDetail,
    pub delay_seconds: f64,
}

/// Every `resource_*` event has this shape; the type says which state it reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceEvent {
    pub stack: String,
    pub resource: ResourceRef,
    /// On the finishing states: how long the operation took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// On `resource_failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
    /// What the operation is when the event's type does not say it: `replace` for a
    /// replacement, reported as one resource `updating` then `updated` (or `failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<PlanAction>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackDestroying {
    pub stack: String,
    pub layer: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackDestroyed {
    pub stack: String,
    pub resources_deleted: u32,
    pub duration_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackStarted {
    pub stacks: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackComplete {
    pub status: DeploymentState,
    pub rolled_back_stacks: Vec<String>,
    pub duration_seconds: u64,
}

/// What a plan (`cloud plan`) says will happen to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanAction {
    Create,
    Update,
    Delete,
    /// Destroyed and created again (in either order).
    Replace,
    /// The same object under a new address (Terraform `moved`, Pulumi aliases).
    Move,
    /// An existing object brought under management.
    Import,
    /// Read only (a data source).
    Read,
    NoOp,
}

impl PlanAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Replace => "replace",
            Self::Move => "move",
            Self::Import => "import",
            Self::Read => "read",
            Self::NoOp => "no_op",
        }
    }

    /// Whether it destroys an object: what every view makes stand out.
    pub fn is_destructive(self) -> bool {
        matches!(self, Self::Delete | Self::Replace)
    }

    /// Whether it changes anything.
    pub fn changes(self) -> bool {
        !matches!(self, Self::Read | Self::NoOp)
    }
}

/// `resource_planned`: one resource of a stack's plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourcePlanned {
    pub stack: String,
    pub resource: ResourceRef,
    pub action: PlanAction,
    /// Delete or replace.
    pub destructive: bool,
    /// Not a change the plan makes but one found made outside the tool since the last run
    /// (Terraform `resource_drift`): `action` is what happened to it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drift: bool,
    /// A moved resource's address before the move.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_address: Option<String>,
}

/// How many resources a plan changes, per action (Terraform's `change_summary`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PlanCounts {
    pub add: u32,
    pub change: u32,
    pub destroy: u32,
    /// Replacements, also counted in `add` and `destroy` (as Terraform counts them).
    #[serde(default)]
    pub replace: u32,
    #[serde(default, rename = "move")]
    pub moved: u32,
    #[serde(default)]
    pub import: u32,
}

impl PlanCounts {
    /// Counts one planned resource: a replacement adds one and destroys one, as Terraform's
    /// `change_summary` counts it.
    pub fn count(&mut self, action: PlanAction) {
        match action {
            PlanAction::Create => self.add += 1,
            PlanAction::Update => self.change += 1,
            PlanAction::Delete => self.destroy += 1,
            PlanAction::Replace => {
                self.replace += 1;
                self.add += 1;
                self.destroy += 1;
            }
            PlanAction::Move => self.moved += 1,
            PlanAction::Import => self.import += 1,
            PlanAction::Read | PlanAction::NoOp => {}
        }
    }

    /// Whether anything changes.
    pub fn any(&self) -> bool {
        *self != PlanCounts::default()
    }
}

/// A stack's plan as its executor reports it, once the tool has planned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PlanSummary {
    pub counts: PlanCounts,
    /// Whether applying it changes anything (resources or outputs).
    pub changes: bool,
    /// Outputs the plan creates, changes or removes: dependents that read them are
    /// provisional.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed_outputs: Vec<String>,
    /// Of those, the ones whose value the plan cannot know until it is applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub known_after_apply: Vec<String>,
    /// Resources found changed outside the tool.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub drifted: u32,
    /// The tool's own saved plan (Terraform's binary plan, Pulumi's plan file), when saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_file: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// `stack_planned`: a stack's plan is complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackPlanned {
    pub stack: String,
    #[serde(flatten)]
    pub plan: PlanSummary,
    /// Why the plan may change once dependencies apply (`depends on db.endpoint (known after
    /// apply)`); empty when it is final.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provisional: Vec<String>,
    /// Why the stack was not previewed, when it was not (its executor has no preview, or its
    /// inputs are known only once a dependency applies): a deploy runs it all the same, so it
    /// counts as a change. Its counts are then zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_preview: Option<String>,
    #[serde(default)]
    pub duration_seconds: u64,
}

/// One attribute of a drifted resource: its value as last deployed and as it is now
/// (`None` when the tool does not say, or the value is sensitive: never shown).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftedAttribute {
    /// The attribute's path (`tags.Owner`, `input`).
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<serde_json::Value>,
    /// Sensitive in the tool: its values are left out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
}

/// `resource_drifted`: a resource of a stack found changed outside the tool since it was
/// deployed (a drift check).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceDrifted {
    pub stack: String,
    pub resource: ResourceRef,
    /// What happened to it: `update` (changed), `delete` (gone), or what a deploy would do to
    /// bring it back.
    pub action: PlanAction,
    /// The attributes that differ, when the tool says.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<DriftedAttribute>,
}

/// A stack's drift health as a check found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftStatus {
    InSync,
    Drifted,
    /// Not checked: its executor has no drift check (the reason says which and how to add one).
    Unknown,
}

impl DriftStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InSync => "in sync",
            Self::Drifted => "drifted",
            Self::Unknown => "unknown",
        }
    }
}

/// `stack_drift_checked`: a stack's drift check is complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackDriftChecked {
    pub stack: String,
    pub status: DriftStatus,
    /// How many resources drifted.
    #[serde(default)]
    pub drifted_resources: u32,
    /// When it was first found drifted (this check, or an earlier one it has drifted since).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drifted_since: Option<DateTime<Utc>>,
    /// Why it was not checked (`unknown`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub duration_seconds: u64,
}

/// Writes `deploymentId` and `environment` into `data` beside a payload's own fields.
#[derive(Serialize)]
struct ScopedData<'a, T: Serialize> {
    #[serde(rename = "deploymentId")]
    deployment_id: &'a str,
    environment: &'a str,
    #[serde(flatten)]
    body: &'a T,
}

macro_rules! event_types {
    ($($name:literal => $variant:ident($payload:ty),)*) => {
        /// The `type` and `data` of an event.
        #[derive(Debug, Clone, PartialEq)]
        pub enum EventData { $($variant($payload),)* }

        impl EventData {
            /// The wire name, e.g. `stack_deployed`.
            pub fn type_name(&self) -> &'static str {
                match self { $(Self::$variant(_) => $name,)* }
            }

            fn serialize_scoped<M: SerializeMap>(&self, deployment_id: &str, environment: &str, map: &mut M) -> Result<(), M::Error> {
                match self {
                    $(Self::$variant(body) => map.serialize_entry("data", &ScopedData { deployment_id, environment, body }),)*
                }
            }

            /// The payload as JSON text, without `deploymentId` and `environment`.
            pub fn body_text(&self) -> String {
                match self {
                    // Plain data always serializes.
                    $(Self::$variant(body) => serde_json::to_string(body).unwrap_or_default(),)*
                }
            }

            /// The payload as JSON, without `deploymentId` and `environment`.
            pub fn body_value(&self) -> serde_json::Value {
                match self {
                    // Plain data always serializes.
                    $(Self::$variant(body) => serde_json::to_value(body).unwrap_or_default(),)*
                }
            }

            /// The payload of a `type_name` event, from its JSON text (no `Value` on the way).
            pub fn from_type_and_str(type_name: &str, data: &str) -> Result<Self, serde_json::Error> {
                match type_name {
                    $($name => serde_json::from_str(data).map(Self::$variant),)*
                    other => Err(serde_json::Error::custom(format!("unknown event type `{other}`"))),
                }
            }

            /// The payload of a `type_name` event, from its JSON.
            pub fn from_type_and_value(type_name: &str, data: serde_json::Value) -> Result<Self, serde_json::Error> {
                match type_name {
                    $($name => serde_json::from_value(data).map(Self::$variant),)*
                    other => Err(serde_json::Error::custom(format!("unknown event type `{other}`"))),
                }
            }
        }

        /// Every event type name, in the order of the README's event table.
        pub const EVENT_TYPES: &[&str] = &[$($name,)*];
    };
}

event_types! {
    "deployment_started" => DeploymentStarted(DeploymentStarted),
    "deployment_progress" => DeploymentProgress(DeploymentProgress),
    "deployment_cancelling" => DeploymentCancelling(DeploymentCancelling),
    "deployment_complete" => DeploymentComplete(DeploymentComplete),
    "deployment_failed" => DeploymentFailed(DeploymentFailed),
    "layer_started" => LayerStarted(LayerStarted),
    "layer_complete" => LayerComplete(LayerComplete),
    "stack_deploying" => StackDeploying(StackDeploying),
    "stack_progress" => StackProgress(StackProgress),
    "stack_deployed" => StackDeployed(StackDeployed),
    "stack_failed" => StackFailed(StackFailed),
    "stack_skipped" => StackSkipped(StackSkipped),
    "stack_blocked" => StackBlocked(StackBlocked),
    "stack_log" => StackLog(StackLog),
    "resource_creating" => ResourceCreating(ResourceEvent),
    "resource_created" => ResourceCreated(ResourceEvent),
    "resource_updating" => ResourceUpdating(ResourceEvent),
    "resource_updated" => ResourceUpdated(ResourceEvent),
    "resource_deleting" => ResourceDeleting(ResourceEvent),
    "resource_deleted" => ResourceDeleted(ResourceEvent),
    "resource_failed" => ResourceFailed(ResourceEvent),
    "stack_destroying" => StackDestroying(StackDestroying),
    "stack_destroyed" => StackDestroyed(StackDestroyed),
    "rollback_started" => RollbackStarted(RollbackStarted),
    "rollback_complete" => RollbackComplete(RollbackComplete),
    "resource_planned" => ResourcePlanned(ResourcePlanned),
    "stack_planned" => StackPlanned(StackPlanned),
    "resource_drifted" => ResourceDrifted(ResourceDrifted),
    "stack_drift_checked" => StackDriftChecked(StackDriftChecked),
    "stack_retrying" => StackRetrying(StackRetrying),
}

impl EventData {
    /// A resource event as (state, payload), whatever its state.
    pub fn as_resource(&self) -> Option<(ResourceState, &ResourceEvent)> {
        Some(match self {
            Self::ResourceCreating(r) => (ResourceState::Creating, r),
            Self::ResourceCreated(r) => (ResourceState::Created, r),
            Self::ResourceUpdating(r) => (ResourceState::Updating, r),
            Self::ResourceUpdated(r) => (ResourceState::Updated, r),
            Self::ResourceDeleting(r) => (ResourceState::Deleting, r),
            Self::ResourceDeleted(r) => (ResourceState::Deleted, r),
            Self::ResourceFailed(r) => (ResourceState::Failed, r),
            _ => return None,
        })
    }

    /// The resource event for `state`.
    pub fn resource(state: ResourceState, event: ResourceEvent) -> Self {
        match state {
            ResourceState::Creating => Self::ResourceCreating(event),
            ResourceState::Created => Self::ResourceCreated(event),
            ResourceState::Updating => Self::ResourceUpdating(event),
            ResourceState::Updated => Self::ResourceUpdated(event),
            ResourceState::Deleting => Self::ResourceDeleting(event),
            ResourceState::Deleted => Self::ResourceDeleted(event),
            ResourceState::Failed => Self::ResourceFailed(event),
        }
    }

    /// The stack an event is about, when it is about one.
    pub fn stack(&self) -> Option<&str> {
        if let Some((_, r)) = self.as_resource() {
            return Some(&r.stack);
        }
        Some(match self {
            Self::StackDeploying(e) => &e.stack,
            Self::StackProgress(e) => &e.stack,
            Self::StackDeployed(e) => &e.stack,
            Self::StackFailed(e) => &e.stack,
            Self::StackSkipped(e) => &e.stack,
            Self::StackBlocked(e) => &e.stack,
            Self::StackLog(e) => &e.stack,
            Self::StackDestroying(e) => &e.stack,
            Self::StackDestroyed(e) => &e.stack,
            Self::ResourcePlanned(e) => &e.stack,
            Self::StackPlanned(e) => &e.stack,
            Self::ResourceDrifted(e) => &e.stack,
            Self::StackDriftChecked(e) => &e.stack,
            Self::StackRetrying(e) => &e.stack,
            _ => return None,
        })
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("type", self.data.type_name())?;
        map.serialize_entry("timestamp", Timestamp::of(&self.timestamp).as_str())?;
        map.serialize_entry("sequence", &self.sequence)?;
        self.data
            .serialize_scoped(&self.deployment_id, &self.environment, &mut map)?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(rename = "type")]
            type_name: String,
            timestamp: DateTime<Utc>,
            sequence: u64,
            data: serde_json::Value,
        }
        let raw = Raw::deserialize(deserializer)?;
        let scope = |key: &str| {
            raw.data
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .ok_or_else(|| D::Error::custom(format!("event data lacks `{key}`")))
        };
        let deployment_id = scope("deploymentId")?;
        let environment = scope("environment")?;
        let data =
            EventData::from_type_and_value(&raw.type_name, raw.data).map_err(D::Error::custom)?;
        Ok(Event {
            sequence: raw.sequence,
            timestamp: raw.timestamp,
            deployment_id,
            environment,
            data,
        })
    }
}

impl Event {
    /// An event from one line of JSON (the journal's), read straight into its payload type
    /// rather than through a `serde_json::Value` (a third of `cloud status` on a big run).
    pub fn from_json_line(line: &str) -> Result<Event, serde_json::Error> {
        #[derive(Deserialize)]
        struct Raw<'a> {
            #[serde(rename = "type", borrow)]
            type_name: std::borrow::Cow<'a, str>,
            timestamp: DateTime<Utc>,
            sequence: u64,
            #[serde(borrow)]
            data: &'a serde_json::value::RawValue,
        }
        #[derive(Deserialize)]
        struct Scope {
            #[serde(rename = "deploymentId")]
            deployment_id: String,
            environment: String,
        }
        let raw: Raw = serde_json::from_str(line)?;
        let scope: Scope = serde_json::from_str(raw.data.get())?;
        Ok(Event {
            sequence: raw.sequence,
            timestamp: raw.timestamp,
            deployment_id: scope.deployment_id,
            environment: scope.environment,
            data: EventData::from_type_and_str(&raw.type_name, raw.data.get())?,
        })
    }
    /// One line of JSON, as written to the journal and by `--output json`.
    pub fn to_json_line(&self) -> String {
        // Serializing plain data into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_written_as_chrono_writes_them() {
        use chrono::{TimeZone, Timelike};
        let chrono_text = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut instants = vec![
            Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(-1, 6, 15, 12, 0, 0).unwrap(),
            // A leap second (nanoseconds past 1e9).
            (Utc.with_ymd_and_hms(2016, 12, 31, 23, 59, 59).unwrap())
                .with_nanosecond(1_500_000_000)
                .unwrap(),
        ];
        // Across years, and every millisecond boundary's neighbours.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let secs = (seed % (300 * 365 * 86_400)) as i64 - 100 * 365 * 86_400;
            let nanos = ((seed >> 20) % 1_000_000_000) as u32;
            instants.push(DateTime::from_timestamp(secs, nanos).unwrap());
        }
        for t in &instants {
            assert_eq!(Timestamp::of(t).as_str(), chrono_text(t), "{t:?}");
            assert_eq!(format_timestamp(t), chrono_text(t));
        }
    }

    #[test]
    fn error_codes_are_todays_strings_and_unknown_ones_are_kept() {
        let detail = ErrorDetail {
            code: ErrorCode::LockLost,
            message: "m".into(),
            details: None,
        };
        let json = serde_json::to_string(&detail).unwrap();
        assert_eq!(json, r#"{"code":"LOCK_LOST","message":"m"}"#);
        assert_eq!(serde_json::from_str::<ErrorDetail>(&json).unwrap(), detail);
        for code in [
            "COMMAND_FAILED",
            "CANCELLED",
            "TIMEOUT",
            "INSUFFICIENT_PERMISSIONS",
        ] {
            let parsed = ErrorCode::parse(code);
            assert!(!matches!(parsed, ErrorCode::Other(_)), "{code}");
            assert_eq!(parsed.as_str(), code);
        }
        let newer: ErrorDetail =
            serde_json::from_str(r#"{"code":"QUOTA_EXCEEDED","message":"m"}"#).unwrap();
        assert_eq!(newer.code, ErrorCode::Other("QUOTA_EXCEEDED".into()));
        assert_eq!(
            serde_json::to_value(&newer).unwrap()["code"],
            "QUOTA_EXCEEDED"
        );
    }

    /// The seed's example envelope: event 7 of `D1BRV40` in `dev`.
    fn event(data: EventData) -> Event {
        Event {
            timestamp: "2025-10-09T14:36:15.120Z".parse().unwrap(),
            ..crate::testing::event(7, data)
        }
    }

    /// The journal's fast read gives the same event as the envelope's `Deserialize`, for a run
    /// of every kind of event the test builder makes (and a bad line is an error both ways).
    #[test]
    fn a_journal_line_reads_the_same_both_ways() {
        let mut run = crate::testing::RunBuilder::start(&[("net", 1, &[], 5.0, 1)]);
        run.at(0.0)
            .layer(1, 1, &["net"])
            .deploying("net", 1)
            .push(EventData::ResourceDrifted(ResourceDrifted {
                stack: "net".into(),
                resource: ResourceRef {
                    urn: "u".into(),
                    type_: "t".into(),
                    name: "n".into(),
                    id: None,
                    address: None,
                },
                action: PlanAction::Delete,
                attributes: vec![DriftedAttribute {
                    name: "cidr".into(),
                    before: Some("10.0.0.0/16".into()),
                    after: None,
                    sensitive: false,
                }],
            }))
            .layer_done(1)
            .complete(DeploymentState::Deployed, 5);
        assert!(run.events.len() > 5);
        for e in &run.events {
            let line = e.to_json_line();
            let fast = Event::from_json_line(&line).unwrap();
            let slow: Event = serde_json::from_str(&line).unwrap();
            assert_eq!(fast, slow, "{line}");
            assert_eq!(&fast, e, "{line}");
        }
        assert!(Event::from_json_line(r#"{"type":"nope","timestamp":"2025-10-09T14:36:15.120Z","sequence":1,"data":{"deploymentId":"D","environment":"e"}}"#).is_err());
        assert!(Event::from_json_line(r#"{"type":"stack_log","timestamp":"2025-10-09T14:36:15.120Z","sequence":1,"data":{"environment":"e"}}"#).is_err());
    }

    #[test]
    fn envelope_matches_the_seed() {
        let e = event(EventData::ResourceCreated(ResourceEvent {
            stack: "database-rds".into(),
            resource: ResourceRef {
                urn:
                    "urn:pulumi:D1BRV40-dev::database-rds::aws:rds/instance:Instance::main-database"
                        .into(),
                type_: "aws:rds/instance:Instance".into(),
                name: "main-database".into(),
                id: Some("db-abc123".into()),
                address: None,
            },
            duration_seconds: Some(90.0),
            error: None,
            action: None,
        }));
        let v: serde_json::Value = serde_json::from_str(&e.to_json_line()).unwrap();
        assert_eq!(v["type"], "resource_created");
        assert_eq!(v["timestamp"], "2025-10-09T14:36:15.120Z");
        assert_eq!(v["sequence"], 7);
        assert_eq!(v["data"]["deploymentId"], "D1BRV40");
        assert_eq!(v["data"]["environment"], "dev");
        assert_eq!(v["data"]["resource"]["type"], "aws:rds/instance:Instance");
        assert_eq!(v["data"]["resource"]["id"], "db-abc123");
        assert_eq!(v["data"]["durationSeconds"], 90.0);
    }

    #[test]
    fn events_round_trip() {
        let e = event(EventData::StackFailed(StackFailed {
            stack: "database-rds".into(),
            error: ErrorDetail {
                code: "INSUFFICIENT_PERMISSIONS".into(),
                message: "Access Denied".into(),
                details: Some("IAM role lacks rds:CreateDBInstance".into()),
            },
            duration_seconds: 3,
        }));
        let back: Event = serde_json::from_str(&e.to_json_line()).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn plan_events_read_like_the_others() {
        let planned = event(EventData::ResourcePlanned(ResourcePlanned {
            stack: "dns".into(),
            resource: ResourceRef {
                urn: "terraform_data.zone".into(),
                type_: "terraform_data".into(),
                name: "terraform_data.zone".into(),
                id: None,
                address: Some("terraform_data.zone".into()),
            },
            action: PlanAction::Replace,
            destructive: true,
            drift: false,
            previous_address: None,
        }));
        let v: serde_json::Value = serde_json::from_str(&planned.to_json_line()).unwrap();
        assert_eq!(v["type"], "resource_planned");
        assert_eq!(v["data"]["action"], "replace");
        assert_eq!(v["data"]["destructive"], true);
        assert!(v["data"].get("drift").is_none());
        assert_eq!(serde_json::from_value::<Event>(v).unwrap(), planned);

        let mut counts = PlanCounts::default();
        for action in [
            PlanAction::Create,
            PlanAction::Replace,
            PlanAction::Move,
            PlanAction::Read,
        ] {
            counts.count(action);
        }
        let stack = event(EventData::StackPlanned(StackPlanned {
            stack: "dns".into(),
            plan: PlanSummary {
                counts,
                changes: counts.any(),
                changed_outputs: vec!["zoneId".into()],
                known_after_apply: vec!["zoneId".into()],
                drifted: 0,
                plan_file: Some("/tmp/dns.tfplan".into()),
            },
            provisional: vec![],
            no_preview: None,
            duration_seconds: 2,
        }));
        let v: serde_json::Value = serde_json::from_str(&stack.to_json_line()).unwrap();
        assert_eq!(
            v["data"]["counts"],
            serde_json::json!({"add":2,"change":0,"destroy":1,"replace":1,"move":1,"import":0})
        );
        assert_eq!(v["data"]["changes"], true);
        assert_eq!(v["data"]["knownAfterApply"][0], "zoneId");
        assert_eq!(v["data"]["planFile"], "/tmp/dns.tfplan");
        assert_eq!(serde_json::from_value::<Event>(v).unwrap(), stack);
        assert_eq!(stack.data.stack(), Some("dns"));
    }

    #[test]
    fn unknown_type_is_an_error() {
        let line = r#"{"type":"nope","timestamp":"2025-10-09T14:36:15Z","sequence":1,"data":{"deploymentId":"a","environment":"b"}}"#;
        let err = serde_json::from_str::<Event>(line).unwrap_err();
        assert!(
            err.to_string().contains("unknown event type `nope`"),
            "{err}"
        );
    }
}
