//! Runs any program (`sh -c <deploy>` in the stack's `path`). Its output lines become logs;
//! `::cloud::{json}` lines report resources and progress; a file it may write holds outputs.
//!
//! ```yaml
//! security:
//!   executor: command
//!   path: stacks/security
//!   deploy: ./deploy.sh
//!   destroy: ./destroy.sh      # optional
//!   rollback: ./rollback.sh    # optional: undoes this run's deploy (`--rollback-on-failure`)
//!   plan: ./plan.sh            # optional: says what `deploy` would change, changing nothing
//!   drift: ./drift.sh          # optional: exit 0 in sync, 2 drifted (`cloud drift`)
//! ```
//!
//! A plan's `::cloud::` lines name what will happen: `{"resource":{…},"plan":"create"}` (an
//! action of [`PlanAction`], `"drift":true` for a change found made outside), and
//! `{"outputs":{"changed":[…],"knownAfterApply":[…]}}`. Without `plan:` the stack has no preview.
//! A drift check's lines name what drifted: `{"resource":{…},"drift":true,"attributes":[{"name":
//! "cidr","before":"10.0.0.0/16","after":"10.1.0.0/16"}]}` (`"plan":"delete"` for one that is
//! gone). Without `drift:` the stack's health stays unknown.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::Deserialize;
use tokio::process::Command as Process;

use super::process::{self, Stop, Stream};
use super::{
    cancelled, failure, BoxFuture, Configured, Deployed, Executor, ExecutorUpdate, Job, Updates,
};
use crate::event::{
    ErrorCode, ErrorDetail, LogLevel, Outputs, PlanAction, PlanSummary, ResourceState,
};
use crate::manifest::{ManifestResult, StackEntry};

/// Stderr lines kept for `error.details` when the program fails.
const STDERR_TAIL: usize = 20;
const STRUCTURED_PREFIX: &str = "::cloud::";

pub struct Command;

#[derive(Debug, Clone)]
pub struct CommandStack {
    pub deploy: String,
    pub destroy: Option<String>,
    pub rollback: Option<String>,
    /// Previews a deploy (`cloud plan`).
    pub plan: Option<String>,
    /// Checks for drift (`cloud drift`): exit 0 in sync, 2 drifted.
    pub drift: Option<String>,
}

/// What a run of the program is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The job's operation: deploy, destroy or roll back.
    Change,
    /// A plan: `CLOUD_OPERATION=plan`, its planned resources summed up, no outputs.
    Plan,
    /// A drift check: `CLOUD_OPERATION=drift`; exit 2 means drifted, no outputs.
    Drift,
}

impl Executor for Command {
    fn name(&self) -> &'static str {
        "command"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["deploy", "destroy", "rollback", "plan", "drift"]
    }

    fn configure(&self, entry: &StackEntry<'_>) -> ManifestResult<Configured> {
        let Some(deploy) = entry.get("deploy") else {
            return Err(entry.err(
                entry.at,
                format!("command stack `{}` has no `deploy` command", entry.stack),
                "add `deploy: ./deploy.sh` (run with `sh -c` in the stack's `path`)",
            ));
        };
        let deploy = deploy.nonempty_string("`deploy`", "deploy: ./deploy.sh")?;
        let destroy = match entry.get("destroy") {
            Some(v) => Some(v.nonempty_string("`destroy`", "destroy: ./destroy.sh")?),
            None => None,
        };
        let rollback = match entry.get("rollback") {
            Some(v) => Some(v.nonempty_string("`rollback`", "rollback: ./rollback.sh")?),
            None => None,
        };
        let plan = match entry.get("plan") {
            Some(v) => Some(v.nonempty_string("`plan`", "plan: ./plan.sh")?),
            None => None,
        };
        let drift = match entry.get("drift") {
            Some(v) => Some(v.nonempty_string("`drift`", "drift: ./drift.sh")?),
            None => None,
        };
        Ok(Arc::new(CommandStack {
            deploy,
            destroy,
            rollback,
            plan,
            drift,
        }))
    }
}

impl super::StackExecutor for CommandStack {
    fn name(&self) -> &'static str {
        "command"
    }

    fn deploy(self: Arc<Self>, job: Job, updates: Updates) -> BoxFuture {
        Box::pin(async move { run(&self.deploy, &job, &updates, Mode::Change).await })
    }

    fn cannot_destroy(&self) -> Option<String> {
        self.destroy
            .is_none()
            .then(|| "a command stack without `destroy:`".to_owned())
    }

    fn destroy(self: Arc<Self>, job: Job, updates: Updates) -> BoxFuture {
        Box::pin(async move {
            let Some(script) = &self.destroy else {
                return Err(failure(
                    ErrorCode::NoDestroyCommand,
                    format!("stack `{}` has no `destroy:` command", job.stack),
                    Some("add `destroy: <command>` to the stack in the manifest".into()),
                ));
            };
            run(script, &job, &updates, Mode::Change).await
        })
    }

    fn plan(self: Arc<Self>, job: Job, updates: Updates) -> Option<BoxFuture> {
        self.plan.as_deref()?;
        Some(Box::pin(async move {
            let script = self.plan.as_deref().unwrap_or_default();
            run(script, &job, &updates, Mode::Plan).await
        }))
    }

    fn no_drift_check(&self) -> Option<String> {
        self.drift.is_none().then(|| {
            "a command stack without `drift:` (add `drift: <command>`: exit 0 in sync, 2 drifted)"
                .to_owned()
        })
    }

    fn drift(self: Arc<Self>, job: Job, updates: Updates) -> BoxFuture {
        Box::pin(async move {
            let script = self.drift.as_deref().unwrap_or_default();
            run(script, &job, &updates, Mode::Drift).await
        })
    }

    fn rollback(self: Arc<Self>, job: Job, updates: Updates) -> Option<BoxFuture> {
        self.rollback.as_ref()?;
        Some(Box::pin(async move {
            let script = self.rollback.as_deref().unwrap_or_default();
            run(script, &job, &updates, Mode::Change).await
        }))
    }
}

async fn run(script: &str, job: &Job, updates: &Updates, mode: Mode) -> super::Outcome {
    let scratch = job.scratch.join(&job.stack);
    std::fs::create_dir_all(&scratch).map_err(|e| io_failure("creating scratch folder", e))?;
    let outputs_file = scratch.join("outputs.json");
    let deps_file = scratch.join("dependency-outputs.json");
    std::fs::write(&outputs_file, b"").map_err(|e| io_failure("creating CLOUD_OUTPUTS", e))?;
    let deps_json = serde_json::to_vec_pretty(&job.dependency_outputs).unwrap_or_default();
    std::fs::write(&deps_file, deps_json)
        .map_err(|e| io_failure("writing CLOUD_DEPENDENCY_OUTPUTS", e))?;
    let inputs_file = scratch.join("inputs.json");
    let inputs: serde_json::Map<String, serde_json::Value> = job
        .inputs
        .iter()
        .map(|(name, input)| (name.clone(), input.value.clone()))
        .collect();
    write_private(
        &inputs_file,
        &serde_json::to_vec_pretty(&inputs).unwrap_or_default(),
    )
    .map_err(|e| io_failure("writing CLOUD_INPUTS", e))?;

    let mut command = Process::new("sh");
    command
        .arg("-c")
        .arg(script)
        .current_dir(&job.path)
        .env("CLOUD_DEPLOYMENT_ID", &job.deployment_id)
        .env("CLOUD_ENVIRONMENT", &job.environment)
        .env("CLOUD_STACK", &job.stack)
        .env(
            "CLOUD_OPERATION",
            match mode {
                Mode::Change => job.operation.as_str(),
                Mode::Plan => "plan",
                Mode::Drift => "drift",
            },
        )
        .env("CLOUD_OUTPUTS", &outputs_file)
        .env("CLOUD_DEPENDENCY_OUTPUTS", &deps_file)
        .env("CLOUD_INPUTS", &inputs_file);
    for (name, input) in &job.inputs {
        command.env(
            format!("CLOUD_INPUT_{}", env_name(name)),
            plain(&input.value),
        );
    }
    let stop = Stop::new(job.cancel.clone(), job.grace);
    let mut program = process::spawn(command, stop).map_err(|e| {
        failure(
            ErrorCode::CommandNotStarted,
            format!(
                "could not start {} in {}: {e}",
                process::command_name(script),
                job.path.display()
            ),
            None,
        )
    })?;

    let mut tail: VecDeque<String> = VecDeque::new();
    let mut stdout_tail: VecDeque<String> = VecDeque::new();
    let mut plan = PlanSummary::default();
    let mut drifted = 0;
    while let Some(line) = program.next_line().await {
        if let Some(json) = line.text.strip_prefix(STRUCTURED_PREFIX) {
            if mode == Mode::Drift {
                match parse_drifted(json) {
                    Ok(update) => {
                        drifted += 1;
                        updates.send(update);
                    }
                    Err(why) => updates.log(
                        LogLevel::Warn,
                        format!("ignored a {STRUCTURED_PREFIX} line ({why}): {json}"),
                    ),
                }
                continue;
            }
            match parse_structured(json) {
                // What a plan says has no place in a deploy: told, not taken for a change.
                Ok(Line::Update(ExecutorUpdate::Planned { .. }) | Line::Outputs(_))
                    if mode == Mode::Change =>
                {
                    updates.log(
                        LogLevel::Warn,
                        format!("ignored a {STRUCTURED_PREFIX} plan line outside a plan: {json}"),
                    )
                }
                Ok(Line::Update(update)) => {
                    if let ExecutorUpdate::Planned { action, drift, .. } = &update {
                        if *drift {
                            plan.drifted += 1;
                        } else {
                            plan.counts.count(*action);
                        }
                    }
                    updates.send(update)
                }
                Ok(Line::Outputs(outputs)) => {
                    plan.changed_outputs = outputs.changed;
                    plan.known_after_apply = outputs.known_after_apply;
                }
                Err(why) => updates.log(
                    LogLevel::Warn,
                    format!("ignored a malformed {STRUCTURED_PREFIX} line ({why}): {json}"),
                ),
            }
            continue;
        }
        let ((level, message), kept) = match line.stream {
            Stream::Stdout => ((LogLevel::Info, line.text.as_str()), &mut stdout_tail),
            Stream::Stderr => (process::stderr_log(&line.text), &mut tail),
        };
        updates.log(level, message);
        if kept.len() == STDERR_TAIL {
            kept.pop_front();
        }
        kept.push_back(line.text);
    }
    let ended = program
        .finish()
        .await
        .map_err(|e| io_failure("waiting for the command", e))?;
    // It may hold secrets: on disk no longer than the program runs.
    let _ = std::fs::remove_file(&inputs_file);
    if ended.detached || !ended.survivors.is_empty() {
        let pids: Vec<String> = ended.survivors.iter().map(u32::to_string).collect();
        updates.log(
            LogLevel::Warn,
            format!(
                "{} exited, but {} it started still run{} in the background{}",
                process::command_name(script),
                match pids.len() {
                    0 => "processes".to_owned(),
                    1 => "a process".to_owned(),
                    n => format!("{n} processes"),
                },
                if pids.len() == 1 { "s" } else { "" },
                if pids.is_empty() {
                    " (they hold its output open)".to_owned()
                } else {
                    format!(" (pid {})", pids.join(", "))
                }
            ),
        );
    }
    if let Some(how) = ended.stopped {
        let mut error = cancelled(how);
        if !tail.is_empty() {
            let detail = error.details.take().unwrap_or_default();
            error.details = Some(format!("{detail}\n{}", join_tail(&tail)));
        }
        return Err(error);
    }
    // A drift check's 2 is its answer, not a failure.
    let said_drifted = mode == Mode::Drift && ended.status.code() == Some(2);
    if said_drifted && drifted == 0 {
        updates.send(ExecutorUpdate::Drifted {
            urn: String::new(),
            type_: "stack".into(),
            name: job.stack.clone(),
            address: Some(format!(
                "{} (its drift command named no resource)",
                job.stack
            )),
            action: PlanAction::Update,
            attributes: Vec::new(),
        });
    }
    if mode == Mode::Drift && drifted > 0 && ended.status.success() {
        updates.log(
            LogLevel::Warn,
            format!(
                "{} named drifted resources but exited 0 (2 means drifted): they count",
                process::command_name(script)
            ),
        );
    }
    if !ended.status.success() && !said_drifted {
        // The tool's own words: an error line on stderr, else on stdout, else its last words.
        let how = format!(
            "{} {}",
            process::command_name(script),
            process::exit_words(ended.status)
        );
        let cause = super::root_cause(tail.iter().map(String::as_str))
            .or_else(|| super::root_cause(stdout_tail.iter().map(String::as_str)))
            .or_else(|| tail.back().cloned());
        // The stderr it printed, but the line that is the message: said once.
        let mut details = vec![how.clone()];
        details.extend(tail.iter().filter(|l| Some(*l) != cause.as_ref()).cloned());
        return Err(match cause {
            Some(message) => failure(
                super::error_code(&message, ErrorCode::CommandFailed),
                message,
                Some(details.join("\n")),
            ),
            None => failure(
                ErrorCode::CommandFailed,
                format!("{how} without printing an error"),
                (!stdout_tail.is_empty()).then(|| join_tail(&stdout_tail)),
            ),
        });
    }
    let outputs = read_outputs(&outputs_file);
    let _ = std::fs::remove_file(&outputs_file);
    if mode == Mode::Drift {
        return Ok(Deployed::default());
    }
    if mode == Mode::Plan {
        plan.changes = plan.counts.any() || !plan.changed_outputs.is_empty();
        updates.send(ExecutorUpdate::PlanSummary(plan));
        // A plan knows no values: whatever it wrote to CLOUD_OUTPUTS is not the stack's.
        return Ok(Deployed::default());
    }
    outputs.map(Into::into)
}

/// `vpcId` → `VPCID`: an input's name as an environment variable.
fn env_name(name: &str) -> String {
    name.to_ascii_uppercase()
}

/// A value as a command reads it: strings as they are, anything else as JSON.
fn plain(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Writes a file only its owner can read (it may hold secrets).
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

fn join_tail(tail: &VecDeque<String>) -> String {
    tail.iter().cloned().collect::<Vec<_>>().join("\n")
}

fn io_failure(what: &str, e: std::io::Error) -> ErrorDetail {
    failure(ErrorCode::IoError, format!("{what}: {e}"), None)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Structured {
    resource: Option<StructuredResource>,
    op: Option<ResourceState>,
    /// In a plan: what will happen to `resource`.
    plan: Option<PlanAction>,
    #[serde(default)]
    drift: bool,
    /// In a plan: the outputs it changes.
    outputs: Option<PlannedOutputs>,
    id: Option<String>,
    error: Option<String>,
    progress: Option<f64>,
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StructuredResource {
    #[serde(rename = "type")]
    type_: String,
    name: String,
    urn: Option<String>,
    id: Option<String>,
}

/// `{"outputs":{"changed":[…],"knownAfterApply":[…]}}` of a plan.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PlannedOutputs {
    #[serde(default)]
    pub changed: Vec<String>,
    #[serde(default)]
    pub known_after_apply: Vec<String>,
}

/// What a `::cloud::` line says.
#[derive(Debug, PartialEq)]
pub enum Line {
    Update(ExecutorUpdate),
    /// A plan's outputs.
    Outputs(PlannedOutputs),
}

/// Parses the JSON after `::cloud::`: a resource state change, a progress report, or in a plan
/// a resource planned or the outputs it changes.
pub fn parse_structured(json: &str) -> Result<Line, String> {
    let s: Structured = serde_json::from_str(json).map_err(|e| e.to_string())?;
    if let Some(outputs) = s.outputs {
        if s.resource.is_some() || s.op.is_some() || s.plan.is_some() || s.progress.is_some() {
            return Err("`outputs` is a line of its own".into());
        }
        return Ok(Line::Outputs(outputs));
    }
    if let Some(action) = s.plan {
        let (Some(r), None) = (s.resource, s.op) else {
            return Err("a `plan` needs a `resource` and no `op`".into());
        };
        return Ok(Line::Update(ExecutorUpdate::Planned {
            urn: r.urn.unwrap_or_default(),
            type_: r.type_,
            name: r.name,
            address: None,
            action,
            drift: s.drift,
            previous_address: None,
        }));
    }
    if s.drift {
        return Err("`drift` goes with a `plan`".into());
    }
    parse_change(s).map(Line::Update)
}

/// A drift check's `{"resource":{…},"drift":true,"attributes":[…]}` line.
fn parse_drifted(json: &str) -> Result<ExecutorUpdate, String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Drifted {
        resource: StructuredResource,
        drift: bool,
        plan: Option<PlanAction>,
        #[serde(default)]
        attributes: Vec<crate::event::DriftedAttribute>,
    }
    let d: Drifted = serde_json::from_str(json).map_err(|e| e.to_string())?;
    if !d.drift {
        return Err("a drift check's line says `\"drift\":true`".into());
    }
    Ok(ExecutorUpdate::Drifted {
        urn: d.resource.urn.unwrap_or_default(),
        type_: d.resource.type_,
        name: d.resource.name,
        address: None,
        action: d.plan.unwrap_or(PlanAction::Update),
        attributes: d.attributes,
    })
}

/// A resource state change or a progress report.
fn parse_change(s: Structured) -> Result<ExecutorUpdate, String> {
    match (s.resource, s.op) {
        (Some(r), Some(state)) => Ok(ExecutorUpdate::Resource {
            state,
            urn: r.urn.unwrap_or_default(),
            type_: r.type_,
            name: r.name,
            id: s.id.or(r.id),
            address: None,
            error: s
                .error
                .or_else(|| (state == ResourceState::Failed).then(|| "failed".to_owned()))
                .map(|message| failure(ErrorCode::ResourceFailed, message, None)),
            action: None,
        }),
        (Some(_), None) => Err("a `resource` needs an `op`".into()),
        (None, Some(_)) => Err("an `op` needs a `resource`".into()),
        (None, None) if s.progress.is_some() || s.message.is_some() => {
            Ok(ExecutorUpdate::Progress {
                percent: s.progress.map(|p| p.clamp(0.0, 100.0) as u32),
                message: s.message,
                current_resource: None,
            })
        }
        (None, None) => Err("expected `resource`+`op`, or `progress`/`message`".into()),
    }
}

fn read_outputs(file: &std::path::Path) -> Result<Outputs, ErrorDetail> {
    let text = std::fs::read_to_string(file).map_err(|e| io_failure("reading CLOUD_OUTPUTS", e))?;
    if text.trim().is_empty() {
        return Ok(Outputs::new());
    }
    serde_json::from_str::<Outputs>(&text).map_err(|e| {
        failure(
            ErrorCode::OutputsInvalid,
            format!("the file in CLOUD_OUTPUTS is not a JSON object: {e}"),
            Some(text.chars().take(500).collect()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_lines() {
        let update = |json: &str| match parse_structured(json) {
            Ok(Line::Update(u)) => u,
            other => panic!("{other:?}"),
        };
        let r = update(
            r#"{"resource":{"type":"aws:s3/bucket:Bucket","name":"logs"},"op":"created","id":"b-1"}"#,
        );
        assert!(matches!(
            r,
            ExecutorUpdate::Resource { state: ResourceState::Created, ref id, .. } if id.as_deref() == Some("b-1")
        ));
        let p = update(r#"{"progress":45,"message":"Creating RDS instance..."}"#);
        assert_eq!(
            p,
            ExecutorUpdate::Progress {
                percent: Some(45),
                message: Some("Creating RDS instance...".into()),
                current_resource: None
            }
        );
        assert!(parse_structured(r#"{"op":"created"}"#).is_err());
        assert!(parse_structured("not json").is_err());
        assert!(
            parse_structured(r#"{"resource":{"type":"t","name":"n"},"op":"exploded"}"#).is_err()
        );
    }

    #[test]
    fn plan_lines() {
        let planned = parse_structured(
            r#"{"resource":{"type":"aws:s3/bucket:Bucket","name":"logs"},"plan":"replace"}"#,
        )
        .unwrap();
        assert!(matches!(
            planned,
            Line::Update(ExecutorUpdate::Planned { action: PlanAction::Replace, drift: false, ref name, .. }) if name == "logs"
        ));
        assert!(matches!(
            parse_structured(
                r#"{"resource":{"type":"t","name":"n"},"plan":"update","drift":true}"#
            ),
            Ok(Line::Update(ExecutorUpdate::Planned { drift: true, .. }))
        ));
        assert_eq!(
            parse_structured(r#"{"outputs":{"changed":["arn"],"knownAfterApply":["arn"]}}"#),
            Ok(Line::Outputs(PlannedOutputs {
                changed: vec!["arn".into()],
                known_after_apply: vec!["arn".into()]
            }))
        );
        for bad in [
            r#"{"resource":{"type":"t","name":"n"},"plan":"explode"}"#,
            r#"{"resource":{"type":"t","name":"n"},"plan":"create","op":"created"}"#,
            r#"{"plan":"create"}"#,
            r#"{"resource":{"type":"t","name":"n"},"op":"created","drift":true}"#,
            r#"{"outputs":{"changed":["a"]},"progress":5}"#,
        ] {
            assert!(parse_structured(bad).is_err(), "{bad}");
        }
    }
}
