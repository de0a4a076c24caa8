//! Running the program: `init` when needed, the workspace, then the `-json` command whose
//! stream [`JsonStream`] translates; `output -json` for outputs read back.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::SystemTime;

use serde_json::Value as Json;
use tokio::process::Command as Process;

use super::stream::{diagnostic_text, plain_value, push_tail, text_diagnostic, JsonStream};
use super::{TerraformStack, CODE, ENVIRONMENT, INIT_STAMP, PLAN_FILE, TAIL};
use crate::event::{ErrorCode, ErrorDetail, LogLevel, Operation, PlanSummary};
use crate::executor::process::{self, Stop, Stream};
use crate::executor::{
    cancelled, error_code, failure, root_cause, Deployed, ExecutorUpdate, Job, Outcome, Updates,
    SECRET,
};

impl TerraformStack {
    /// The program, ready to run for `job`: in the environment's workspace, selected with
    /// `workspace select` (`select`: a deploy or destroy) or through `TF_WORKSPACE` (a read).
    fn tool<'a>(
        &self,
        job: &'a Job,
        updates: &'a Updates,
        select: bool,
    ) -> Result<Tool<'a>, ErrorDetail> {
        let program = self
            .program(&job.stack)
            .map_err(|e| failure(ErrorCode::TerraformNotFound, e.problem, Some(e.fix)))?;
        Ok(Tool {
            name: program
                .file_name()
                .map_or_else(|| "tofu".into(), |n| n.to_string_lossy().into_owned()),
            program,
            job,
            updates,
            workspace: self.workspace && select,
            read_workspace: (self.workspace && !select).then_some(job.environment.as_str()),
        })
    }

    /// `init` when needed, then the environment's workspace: what every deploy, destroy and
    /// plan runs first.
    async fn prepare(&self, tool: &Tool<'_>) -> Result<(), ErrorDetail> {
        let (job, updates) = (tool.job, tool.updates);
        if let Some(why) = init_needed(&job.path) {
            updates.log(
                LogLevel::Info,
                format!("{} init -input=false ({why})", tool.name),
            );
            tool.plain(&["init", "-input=false", "-no-color"], true)
                .await?
                .check()?;
            if let Err(e) = mark_initialized(&job.path) {
                updates.log(
                    LogLevel::Warn,
                    format!("could not note that init ran (it will run again next time): {e}"),
                );
            }
        }
        if self.workspace {
            tool.select_workspace().await?;
        }
        Ok(())
    }

    /// `verb` with its flags, then `-var-file`s.
    fn args(&self, job: &Job, verb: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = verb.iter().map(|a| (*a).to_owned()).collect();
        for file in &self.var_files {
            args.push(format!(
                "-var-file={}",
                file.replace(ENVIRONMENT, &job.environment)
            ));
        }
        args
    }

    pub(super) async fn run(&self, job: &Job, updates: &Updates) -> Outcome {
        let tool = self.tool(job, updates, true)?;
        self.prepare(&tool).await?;
        let verb = match job.operation {
            Operation::Destroy => "destroy",
            // A plan goes through `plan`, a drift check through `drift`, never here.
            Operation::Deploy | Operation::Rollback | Operation::Plan | Operation::Drift => "apply",
        };
        let args = match (&job.saved_plan, job.operation) {
            // The reviewed plan holds its variables: the tool refuses any given again.
            (Some(file), Operation::Deploy) => ["apply", "-input=false", "-json"]
                .iter()
                .map(|a| (*a).to_owned())
                .chain([file.display().to_string()])
                .collect(),
            _ => self.args(job, &[verb, "-auto-approve", "-input=false", "-json"]),
        };
        let followed = tool
            .follow(&args, JsonStream::new(&tool.name, &job.path))
            .await;
        let mut followed = match (followed, &job.saved_plan) {
            (Err(e), Some(_)) if stale(&e) => return Err(stale_plan(&tool.name, e)),
            (followed, _) => followed?,
        };
        if job.operation == Operation::Deploy {
            tool.fill_sensitive_outputs(&mut followed).await;
        }
        Ok(followed.into_deployed())
    }

    /// `init` and the workspace when needed, then `plan -out=FILE -input=false -json` into the
    /// stack's scratch folder, followed by `stream`: the plan file and the stream's end.
    async fn plan_to_file(
        &self,
        tool: &Tool<'_>,
        stream: JsonStream,
    ) -> Result<(PathBuf, JsonStream), ErrorDetail> {
        let job = tool.job;
        self.prepare(tool).await?;
        let dir = std::path::absolute(job.scratch.join(&job.stack))
            .unwrap_or_else(|_| job.scratch.join(&job.stack));
        std::fs::create_dir_all(&dir).map_err(|e| {
            failure(
                ErrorCode::IoError,
                format!("cannot create {} for the plan file: {e}", dir.display()),
                None,
            )
        })?;
        let file = dir.join(PLAN_FILE);
        let out = format!("-out={}", file.display());
        let args = self.args(job, &["plan", &out, "-input=false", "-json"]);
        let followed = tool.follow(&args, stream).await?;
        Ok((file, followed))
    }

    /// `plan -out=FILE -input=false -json`: each planned change and drift as it comes, then
    /// the summary, with the outputs only the apply will know (read from the saved plan).
    pub(super) async fn preview(&self, job: &Job, updates: &Updates) -> Outcome {
        let tool = self.tool(job, updates, true)?;
        let (file, followed) = self
            .plan_to_file(&tool, JsonStream::planning(&tool.name, &job.path))
            .await?;
        let Some(planned) = followed.plan else {
            return Ok(Deployed::default());
        };
        if !planned.summarized {
            updates.log(
                LogLevel::Warn,
                format!(
                    "`{} plan` sent no change_summary: the counts are cloud's own",
                    tool.name
                ),
            );
        }
        let known_after_apply = tool
            .known_after_apply(&file, &planned.changed_outputs)
            .await;
        if job.cancel.is_cancelled() {
            return Err(cancelled(format!("stopped after `{} plan`", tool.name)));
        }
        updates.send(ExecutorUpdate::PlanSummary(PlanSummary {
            counts: planned.counts,
            changes: planned.counts.any() || !planned.changed_outputs.is_empty(),
            changed_outputs: planned.changed_outputs,
            known_after_apply,
            drifted: planned.drifted,
            plan_file: Some(file.display().to_string()),
        }));
        Ok(Deployed::default())
    }
}

impl TerraformStack {
    /// A drift check: `plan -out=FILE -input=false -json` (with its refresh, changing
    /// nothing), then `show -json FILE`: each resource the refresh found changed outside
    /// Terraform, and — when the stack is configured as it was last deployed — each the plan
    /// would change back (see [`super::drift`]).
    pub(super) async fn check_drift(&self, job: &Job, updates: &Updates) -> Outcome {
        let tool = self.tool(job, updates, true)?;
        let (file, followed) = self
            .plan_to_file(&tool, JsonStream::checking_drift(&tool.name, &job.path))
            .await?;
        let kept = followed.plan.and_then(|p| p.kept).unwrap_or_default();
        let unchanged = job.last_deploy.as_ref().is_some_and(|l| l.unchanged);
        let shown = tool.show_json(&file).await;
        let _ = std::fs::remove_file(&file);
        if job.cancel.is_cancelled() {
            return Err(cancelled(format!("stopped after `{} plan`", tool.name)));
        }
        let drifted = match shown {
            Some(shown) => super::drift::drifted(&shown, unchanged),
            // The stream alone: which resources, not which attributes.
            None => {
                updates.log(
                    LogLevel::Warn,
                    format!(
                        "could not read the plan with `{} show -json`: drifted resources are \
                         named without their attributes",
                        tool.name
                    ),
                );
                kept.iter()
                    .filter(|(_, _, action, drift)| *drift || (unchanged && action.changes()))
                    .map(|(address, type_, action, _)| super::drift::Drifted {
                        address: address.clone(),
                        type_: type_.clone(),
                        action: *action,
                        attributes: Vec::new(),
                    })
                    .collect()
            }
        };
        let pending = kept
            .iter()
            .filter(|(_, _, a, drift)| !drift && a.changes())
            .count();
        if !unchanged && pending > 0 {
            updates.log(
                LogLevel::Info,
                format!(
                    "{pending} planned change(s) come from its manifest entry, files or inputs \
                     changed since its last deploy: not drift (see them with `cloud plan`)"
                ),
            );
        }
        for d in drifted {
            updates.send(ExecutorUpdate::Drifted {
                urn: d.address.clone(),
                type_: d.type_,
                name: d.address.clone(),
                address: Some(d.address),
                action: d.action,
                attributes: d.attributes,
            });
        }
        Ok(Deployed::default())
    }

    /// `output -json` of the environment's workspace (chosen with `TF_WORKSPACE`, so that
    /// reading changes nothing), sensitive values included.
    pub(super) async fn output_values(&self, job: &Job, updates: &Updates) -> Outcome {
        let tool = self.tool(job, updates, false)?;
        let all = tool.output_json().await?;
        let mut deployed = Deployed::default();
        for (name, output) in all {
            let value = output.get("value").cloned().unwrap_or(Json::Null);
            if output.get("sensitive").and_then(Json::as_bool) == Some(true) {
                deployed
                    .outputs
                    .insert(name.clone(), Json::String(SECRET.into()));
                deployed.secret_outputs.insert(name, value);
            } else {
                deployed.outputs.insert(name, value);
            }
        }
        Ok(deployed)
    }
}

/// One stack's run of the program.
struct Tool<'a> {
    program: PathBuf,
    /// The program's name as people call it (`tofu`), for logs and messages.
    name: String,
    job: &'a Job,
    updates: &'a Updates,
    workspace: bool,
    /// Run in this workspace through `TF_WORKSPACE` (reading outputs: no `workspace select`).
    read_workspace: Option<&'a str>,
}

/// How a plain-text command (init, workspace, output) ended.
struct Plain {
    status: ExitStatus,
    command: String,
    stdout: Vec<String>,
    stderr: VecDeque<String>,
}

impl Plain {
    /// Ok when it succeeded, else the failure in the tool's own words.
    fn check(self) -> Result<Plain, ErrorDetail> {
        if self.status.success() {
            return Ok(self);
        }
        Err(self.failure())
    }

    fn failure(&self) -> ErrorDetail {
        let how = format!(
            "`{}` {}",
            self.command,
            crate::executor::process::exit_words(self.status)
        );
        let cause = text_diagnostic(self.stderr.iter().map(String::as_str))
            .or_else(|| text_diagnostic(self.stdout.iter().map(String::as_str)))
            .or_else(|| root_cause(self.stderr.iter().map(String::as_str)))
            .or_else(|| self.stderr.back().cloned());
        let mut details = vec![how.clone()];
        let skip = self.stdout.len().saturating_sub(TAIL);
        let tail: Vec<&str> = self
            .stderr
            .iter()
            .chain(self.stdout.iter().skip(skip))
            .map(String::as_str)
            .collect();
        if !tail.is_empty() {
            details.push(tail.join("\n"));
        }
        match cause {
            Some(message) => failure(
                error_code(&message, CODE),
                message,
                Some(details.join("\n")),
            ),
            None => failure(CODE, format!("{how} without printing an error"), None),
        }
    }
}

impl Tool<'_> {
    /// The command with what every step needs: the stack's folder, never interactive, the
    /// inputs as `TF_VAR_<name>`.
    fn command(&self, args: &[String]) -> Process {
        let mut command = Process::new(&self.program);
        command
            .args(args)
            .current_dir(&self.job.path)
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0");
        if self.workspace {
            // `workspace select` refuses to run while TF_WORKSPACE overrides it.
            command.env_remove("TF_WORKSPACE");
        }
        if let Some(workspace) = self.read_workspace {
            command.env("TF_WORKSPACE", workspace);
        }
        for (name, input) in &self.job.inputs {
            command.env(format!("TF_VAR_{name}"), plain_value(&input.value));
        }
        command
    }

    fn spawn(&self, args: &[String]) -> Result<process::Running, ErrorDetail> {
        let stop = Stop::new(self.job.cancel.clone(), self.job.grace);
        process::spawn(self.command(args), stop).map_err(|e| {
            failure(
                ErrorCode::TerraformNotStarted,
                format!(
                    "could not start `{}` in {}: {e}",
                    self.program.display(),
                    self.job.path.display()
                ),
                None,
            )
        })
    }

    fn stopped_before(&self, what: &str) -> Result<(), ErrorDetail> {
        if self.job.cancel.is_cancelled() {
            return Err(cancelled(format!(
                "stopped before `{} {what}` started",
                self.name
            )));
        }
        Ok(())
    }

    /// Runs a plain-text command to its end. `live`: its lines are logged as they come
    /// (stdout debug, stderr warn); otherwise they are only kept.
    async fn plain(&self, args: &[&str], live: bool) -> Result<Plain, ErrorDetail> {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let command = format!("{} {}", self.name, args.join(" "));
        self.stopped_before(&args.join(" "))?;
        let mut running = self.spawn(&args)?;
        let mut stdout = Vec::new();
        let mut stderr = VecDeque::new();
        while let Some(line) = running.next_line().await {
            if live && !line.text.trim().is_empty() {
                let (level, message) = match line.stream {
                    Stream::Stdout => (LogLevel::Debug, line.text.as_str()),
                    Stream::Stderr => process::stderr_log(&line.text),
                };
                self.updates.log(level, message);
            }
            match line.stream {
                Stream::Stdout => stdout.push(line.text),
                Stream::Stderr => push_tail(&mut stderr, line.text),
            }
        }
        let ended = running
            .finish()
            .await
            .map_err(|e| failure(CODE, format!("waiting for `{command}`: {e}"), None))?;
        if let Some(how) = ended.stopped {
            return Err(cancelled(format!("`{command}` {how}")));
        }
        Ok(Plain {
            status: ended.status,
            command,
            stdout,
            stderr,
        })
    }

    /// Selects the workspace named after the environment, creating it when it is missing.
    async fn select_workspace(&self) -> Result<(), ErrorDetail> {
        let env = self.job.environment.as_str();
        let select = self
            .plain(&["workspace", "select", "-no-color", env], false)
            .await?;
        if select.status.success() {
            return Ok(());
        }
        self.updates.log(
            LogLevel::Info,
            format!("{} workspace new {env} (it does not exist yet)", self.name),
        );
        let new = self
            .plain(&["workspace", "new", "-no-color", env], false)
            .await?;
        if new.status.success() {
            // `Created and switched to workspace "dev"!`; the rest explains workspaces.
            if let Some(line) = new.stdout.iter().find(|l| !l.trim().is_empty()) {
                self.updates.log(LogLevel::Debug, line.clone());
            }
            return Ok(());
        }
        // It exists after all: selecting it failed for another reason, which is the one to tell.
        let exists = new
            .stderr
            .iter()
            .chain(new.stdout.iter())
            .any(|l| l.contains("already exists"));
        Err(if exists {
            select.failure()
        } else {
            new.failure()
        })
    }

    /// Runs `apply`/`destroy -json` and follows its stream to the end.
    async fn follow(
        &self,
        args: &[String],
        mut follow: JsonStream,
    ) -> Result<JsonStream, ErrorDetail> {
        let command = format!("{} {}", self.name, args.join(" "));
        self.stopped_before(&args.join(" "))?;
        self.updates.log(LogLevel::Info, command.clone());
        let mut running = self.spawn(args)?;
        let mut stderr = VecDeque::new();
        while let Some(line) = running.next_line().await {
            match line.stream {
                Stream::Stdout => follow.line(&line.text, self.updates),
                Stream::Stderr => {
                    if !line.text.trim().is_empty() {
                        let (level, message) = process::stderr_log(&line.text);
                        self.updates.log(level, message);
                        push_tail(&mut stderr, line.text);
                    }
                }
            }
        }
        let ended = running
            .finish()
            .await
            .map_err(|e| failure(CODE, format!("waiting for `{command}`: {e}"), None))?;
        if ended.detached || !ended.survivors.is_empty() {
            self.updates.log(
                LogLevel::Warn,
                format!(
                    "`{command}` exited, but processes it started still run in the background{}",
                    if ended.survivors.is_empty() {
                        String::new()
                    } else {
                        let pids: Vec<String> =
                            ended.survivors.iter().map(u32::to_string).collect();
                        format!(" (pid {})", pids.join(", "))
                    }
                ),
            );
        }
        if let Some(how) = ended.stopped {
            let mut error = cancelled(format!("`{command}` {how}"));
            if let Some(first) = follow.errors.first() {
                let detail = error.details.take().unwrap_or_default();
                error.details = Some(format!("{detail}\n{}", diagnostic_text(first)));
            }
            follow.close_errored(self.updates, &error);
            return Err(error);
        }
        if !ended.status.success() {
            let how = format!(
                "`{command}` {}",
                crate::executor::process::exit_words(ended.status)
            );
            let error = follow.failure(&how, &stderr);
            follow.close_errored(self.updates, &error);
            return Err(error);
        }
        let leftover = failure(
            CODE,
            format!("`{command}` reported this resource failed"),
            None,
        );
        follow.close_errored(self.updates, &leftover);
        Ok(follow)
    }

    /// The outputs of a saved plan whose value only the apply will know, from `show -json`
    /// (`output_changes.*.after_unknown`). That JSON holds every value, secrets included: it
    /// is read here and never logged. When it cannot be read, every output the plan changes
    /// counts as unknown: dependents are then provisional rather than wrongly final.
    /// `show -json FILE`: a saved plan as JSON, `None` when it cannot be read.
    async fn show_json(&self, file: &Path) -> Option<Json> {
        let file = file.display().to_string();
        match self
            .plain(&["show", "-json", "-no-color", &file], false)
            .await
        {
            Ok(shown) if shown.status.success() => {
                serde_json::from_str::<Json>(&shown.stdout.join("\n")).ok()
            }
            _ => None,
        }
    }

    async fn known_after_apply(&self, file: &Path, changed: &[String]) -> Vec<String> {
        let shown = self.show_json(file).await;
        let Some(changes) = shown.as_ref().and_then(|s| s.get("output_changes")) else {
            if !changed.is_empty() {
                self.updates.log(
                    LogLevel::Warn,
                    format!(
                        "could not read the saved plan with `{} show -json`; the outputs it \
                         changes count as known only after apply: {}",
                        self.name,
                        changed.join(", ")
                    ),
                );
            }
            return changed.to_vec();
        };
        let Some(changes) = changes.as_object() else {
            return Vec::new();
        };
        changes
            .iter()
            .filter(|(_, c)| c.get("after_unknown").is_some_and(holds_true))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// `output -json`: every output by name, `{sensitive, type, value}`.
    async fn output_json(&self) -> Result<BTreeMap<String, Json>, ErrorDetail> {
        let out = self.plain(&["output", "-json", "-no-color"], false).await?;
        let out = out.check()?;
        serde_json::from_str::<BTreeMap<String, Json>>(&out.stdout.join("\n")).map_err(|e| {
            failure(
                CODE,
                format!("`{} output -json` printed no JSON object: {e}", self.name),
                None,
            )
        })
    }

    /// Sensitive outputs the stream showed without their values (Terraform never prints
    /// them) are read with `output -json`, so that dependents' inputs can use them. They are
    /// never logged.
    async fn fill_sensitive_outputs(&self, follow: &mut JsonStream) {
        if follow.sensitive_unknown.is_empty() {
            return;
        }
        match self.output_json().await {
            Ok(all) => {
                let mut missing = Vec::new();
                for name in std::mem::take(&mut follow.sensitive_unknown) {
                    match all.get(&name).and_then(|o| o.get("value")) {
                        Some(value) => {
                            follow.secret_outputs.insert(name, value.clone());
                        }
                        None => missing.push(name),
                    }
                }
                if !missing.is_empty() {
                    self.updates.log(
                        LogLevel::Warn,
                        format!(
                            "`{} output -json` has no value for the sensitive outputs {}; stacks \
                             whose inputs read them fail with SECRET_UNAVAILABLE",
                            self.name,
                            missing.join(", ")
                        ),
                    );
                }
            }
            Err(e) => self.updates.log(
                LogLevel::Warn,
                format!(
                    "could not read the sensitive outputs {} ({}); stacks whose inputs read \
                     them fail with SECRET_UNAVAILABLE",
                    follow.sensitive_unknown.join(", "),
                    e.message
                ),
            ),
        }
    }
}

/// Whether `after_unknown` says a value, or a part of it, is unknown (`true`, or an object or
/// list holding `true`).
fn holds_true(value: &Json) -> bool {
    match value {
        Json::Bool(b) => *b,
        Json::Array(items) => items.iter().any(holds_true),
        Json::Object(map) => map.values().any(holds_true),
        _ => false,
    }
}

/// Where the tool keeps its plugins and modules: `TF_DATA_DIR`, else `.terraform`.
fn data_dir(path: &Path) -> PathBuf {
    let dir = std::env::var_os("TF_DATA_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from(".terraform"), PathBuf::from);
    path.join(dir)
}

/// Why `init` must run, or `None`: the data folder is missing, no init of this executor
/// succeeded there yet (one that failed half-way leaves a folder behind), or the dependency
/// lock file changed since.
fn init_needed(path: &Path) -> Option<&'static str> {
    let data = data_dir(path);
    if !data.is_dir() {
        return Some("no .terraform folder yet");
    }
    let Some(stamp) = modified(&data.join(INIT_STAMP)) else {
        return Some("no successful init recorded yet");
    };
    match modified(&path.join(".terraform.lock.hcl")) {
        Some(lock) if lock > stamp => Some(".terraform.lock.hcl changed since the last init"),
        _ => None,
    }
}

fn mark_initialized(path: &Path) -> std::io::Result<()> {
    let data = data_dir(path);
    std::fs::create_dir_all(&data)?;
    std::fs::write(
        data.join(INIT_STAMP),
        "cloud ran `init` here; it runs it again when .terraform.lock.hcl is newer than this file\n",
    )
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).ok()?.modified().ok()
}

/// Whether the tool refused a saved plan as stale (`Saved plan is stale`).
fn stale(e: &ErrorDetail) -> bool {
    let text = format!("{} {}", e.message, e.details.as_deref().unwrap_or_default());
    text.contains("Saved plan is stale")
}

/// A stale saved plan in cloud's words: the state changed since the plan.
fn stale_plan(tool: &str, e: ErrorDetail) -> ErrorDetail {
    failure(
        ErrorCode::PlanChanged,
        format!("the {tool} state changed since the plan was made: the saved plan is stale"),
        Some(format!(
            "plan again (`cloud plan … --out DIR`), review it, then deploy that plan\n{}",
            e.details.as_deref().unwrap_or(&e.message)
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_reach_tf_var_as_terraform_reads_them() {
        assert_eq!(plain_value(&Json::String("vpc-1".into())), "vpc-1");
        assert_eq!(plain_value(&serde_json::json!(5432)), "5432");
        assert_eq!(
            plain_value(&serde_json::json!({"a": ["b"]})),
            r#"{"a":["b"]}"#
        );
    }
}
