//! `executor: terraform`: a root module run with OpenTofu or Terraform.
//!
//! ```yaml
//! dns:
//!   executor: terraform
//!   path: stacks/dns               # the root module (its *.tf / *.tofu files)
//!   binary: tofu                   # or terraform; default: tofu when on PATH, else terraform
//!   workspace: true                # select workspace <env>, created when missing; false: leave it
//!   varFiles: [common.tfvars, "${environment}.tfvars"]   # relative to `path`
//!   inputs: { vpcId: "${network.vpcId}" }                 # reaches it as TF_VAR_vpcId
//! ```
//!
//! A run is `init -input=false` when needed, `workspace select|new <env>`, then
//! `apply -auto-approve -input=false -json` (or `destroy …`), never interactive
//! (`TF_IN_AUTOMATION=1`, stdin closed). `CLOUD_TERRAFORM_BIN` overrides the program.
//! The apply's stdout is the machine-readable UI, one JSON message a line; `Follow` turns
//! it into resource events, progress, logs and outputs. The failure message is the tool's
//! first error diagnostic, never its exit status.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Deserialize;
use serde_json::Value as Json;
use tokio::process::Command as Process;

use super::process::{self, Stop, Stream};
use super::{
    cancelled, error_code, failure, root_cause, BoxFuture, Configured, Deployed, Executor,
    ExecutorUpdate, Job, Outcome, Updates, SECRET,
};
use crate::event::{ErrorCode, ErrorDetail, LogLevel, Operation, ResourceState};
use crate::manifest::{did_you_mean, Res, StackEntry};

/// Overrides the program for every Terraform stack (a path, or a name looked up on PATH).
pub const BIN_ENV: &str = "CLOUD_TERRAFORM_BIN";
/// The programs `binary:` may name.
const BINARIES: &[&str] = &["tofu", "terraform"];
/// Replaced by the environment's name in `varFiles`.
const ENVIRONMENT: &str = "${environment}";
/// Written into the data folder after `init` succeeded: init runs again when the dependency
/// lock file is newer.
const INIT_STAMP: &str = "cloud-init.stamp";
/// Lines of stderr (and of stdout that is not JSON) kept for a failure's details.
const TAIL: usize = 20;
/// The code of every Terraform failure that is not more specific.
const CODE: ErrorCode = ErrorCode::TerraformError;

pub struct Terraform;

/// One stack's settings.
#[derive(Debug, Clone)]
pub struct TerraformStack {
    /// `binary:` when given (`tofu` or `terraform`).
    pub binary: Option<String>,
    /// Select (create) the workspace named after the environment.
    pub workspace: bool,
    /// `-var-file` arguments, relative to `path`; `${environment}` is replaced.
    pub var_files: Vec<String>,
}

impl Executor for Terraform {
    fn name(&self) -> &'static str {
        "terraform"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["binary", "workspace", "varFiles"]
    }

    fn configure(&self, entry: &StackEntry<'_>) -> Res<Configured> {
        let stack = entry.stack;
        if entry.path_at.is_none() {
            return Err(entry.err(
                entry.at,
                format!("terraform stack `{stack}` has no `path`"),
                format!(
                    "add `path:` with the folder of its root module (its .tf files), relative to {}",
                    entry.dir_display()
                ),
            ));
        }
        let binary = match entry.get("binary") {
            None => None,
            Some(v) => {
                let name =
                    v.nonempty_string(&format!("`binary` of stack `{stack}`"), "binary: tofu")?;
                if !BINARIES.contains(&name.as_str()) {
                    return Err(v.err(
                        format!(
                            "`binary` of stack `{stack}` must be `tofu` or `terraform`, found `{}`",
                            name.escape_debug()
                        ),
                        format!(
                            "{}write `binary: tofu` (OpenTofu) or `binary: terraform`; to run a \
                             program installed elsewhere, set {BIN_ENV} to its path",
                            did_you_mean(&name, BINARIES)
                        ),
                    ));
                }
                Some(name)
            }
        };
        let workspace = match entry.get("workspace") {
            None => true,
            Some(v) => v.boolean().ok_or_else(|| {
                v.wrong_type(
                    &format!("`workspace` of stack `{stack}`"),
                    "true or false",
                    "workspace: false",
                )
            })?,
        };
        let mut var_files = Vec::new();
        if let Some(v) = entry.get("varFiles") {
            let example = "varFiles: [common.tfvars, \"${environment}.tfvars\"]";
            let what = format!("`varFiles` of stack `{stack}`");
            for item in v.items(&what, "a list of files", example)? {
                let file = item.nonempty_string("a var file", example)?;
                if file.replace(ENVIRONMENT, "").contains("${") {
                    return Err(item.err(
                        format!("var file `{}` of stack `{stack}` uses an unknown `${{…}}`", file.escape_debug()),
                        format!("only `{ENVIRONMENT}` is replaced (by the environment's name), e.g. `{example}`"),
                    ));
                }
                var_files.push(file);
            }
        }
        Ok(Arc::new(TerraformStack {
            binary,
            workspace,
            var_files,
        }))
    }
}

impl super::StackExecutor for TerraformStack {
    fn name(&self) -> &'static str {
        "terraform"
    }

    /// What `init` and local state leave in the root module.
    fn fingerprint_ignores(&self) -> &'static [&'static str] {
        &[
            ".terraform/",
            "terraform.tfstate",
            "terraform.tfstate.backup",
            "terraform.tfstate.d/",
            ".terraform.tfstate.lock.info",
        ]
    }

    fn preflight(&self, spec: &super::StackSpec) -> Result<(), String> {
        let (stack, path) = (spec.name.as_str(), spec.path.as_path());
        self.program(stack)?;
        if !has_configuration(path) {
            return Err(format!(
                "stack `{stack}` has no OpenTofu/Terraform configuration: {} holds no `*.tf` or \
                 `*.tofu` files\n  help: point `path:` of `{stack}` at its root module, the folder \
                 with its .tf files",
                path.display()
            ));
        }
        for file in self.var_files.iter().filter(|f| !f.contains(ENVIRONMENT)) {
            let at = path.join(file);
            if !at.is_file() {
                return Err(format!(
                    "var file `{file}` of stack `{stack}` does not exist: {}\n  help: create it, \
                     or fix `varFiles:` of `{stack}` (files are relative to its `path`)",
                    at.display()
                ));
            }
        }
        Ok(())
    }

    fn deploy(self: Arc<Self>, job: Job, updates: Updates) -> BoxFuture {
        Box::pin(async move { self.run(&job, &updates).await })
    }

    fn destroy(self: Arc<Self>, job: Job, updates: Updates) -> BoxFuture {
        Box::pin(async move { self.run(&job, &updates).await })
    }

    fn read_outputs(self: Arc<Self>, job: Job, updates: Updates) -> Option<BoxFuture> {
        Some(Box::pin(
            async move { self.output_values(&job, &updates).await },
        ))
    }
}

impl TerraformStack {
    /// The program to run: `CLOUD_TERRAFORM_BIN`, else `binary:`, else `tofu` when on PATH,
    /// else `terraform`. The error says what is missing and how to fix it.
    fn program(&self, stack: &str) -> Result<PathBuf, String> {
        if let Some(bin) = std::env::var_os(BIN_ENV).filter(|v| !v.is_empty()) {
            let bin = PathBuf::from(bin);
            let on_path = bin.components().count() == 1;
            return locate(&bin).ok_or_else(|| {
                format!(
                    "{BIN_ENV} is `{}`, which {} (it runs stack `{stack}`)\n  help: point \
                     {BIN_ENV} at the tofu or terraform program, or unset it",
                    bin.display(),
                    if on_path {
                        "is not on PATH"
                    } else {
                        "does not exist or is not executable"
                    }
                )
            });
        }
        match &self.binary {
            Some(name) => on_path(name).ok_or_else(|| {
                let (product, url) = if name == "tofu" {
                    ("OpenTofu", "https://opentofu.org/docs/intro/install/")
                } else {
                    (
                        "Terraform",
                        "https://developer.hashicorp.com/terraform/install",
                    )
                };
                format!(
                    "stack `{stack}` runs `{name}` (`binary: {name}`), which is not on PATH\n  \
                     help: install {product} ({url}), or set {BIN_ENV} to the program's path"
                )
            }),
            None => on_path("tofu")
                .or_else(|| on_path("terraform"))
                .ok_or_else(|| {
                    format!(
                        "stack `{stack}` needs OpenTofu or Terraform, but neither `tofu` nor \
                     `terraform` is on PATH\n  help: install OpenTofu \
                     (https://opentofu.org/docs/intro/install/) or Terraform, or set {BIN_ENV} \
                     to the program's path"
                    )
                }),
        }
    }

    /// The program, ready to run for `job`: in the environment's workspace, selected with
    /// `workspace select` (`select`: a deploy or destroy) or through `TF_WORKSPACE` (a read).
    fn tool<'a>(
        &self,
        job: &'a Job,
        updates: &'a Updates,
        select: bool,
    ) -> Result<Tool<'a>, ErrorDetail> {
        let program = self.program(&job.stack).map_err(|m| {
            let (message, help) = m.split_once("\n  help: ").unwrap_or((&m, ""));
            failure(ErrorCode::TerraformNotFound, message, Some(help.to_owned()))
        })?;
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

    async fn run(&self, job: &Job, updates: &Updates) -> Outcome {
        let tool = self.tool(job, updates, true)?;
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
        let verb = match job.operation {
            Operation::Destroy => "destroy",
            Operation::Deploy | Operation::Rollback => "apply",
        };
        let mut args: Vec<String> = [verb, "-auto-approve", "-input=false", "-json"]
            .map(str::to_owned)
            .to_vec();
        for file in &self.var_files {
            args.push(format!(
                "-var-file={}",
                file.replace(ENVIRONMENT, &job.environment)
            ));
        }
        let mut followed = tool.apply(&args).await?;
        if job.operation == Operation::Deploy {
            tool.fill_sensitive_outputs(&mut followed).await;
        }
        Ok(followed.into_deployed())
    }
}

impl TerraformStack {
    /// `output -json` of the environment's workspace (chosen with `TF_WORKSPACE`, so that
    /// reading changes nothing), sensitive values included.
    async fn output_values(&self, job: &Job, updates: &Updates) -> Outcome {
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
        let how = format!("`{}` {}", self.command, exit_text(self.status));
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
                let level = match line.stream {
                    Stream::Stdout => LogLevel::Debug,
                    Stream::Stderr => LogLevel::Warn,
                };
                self.updates.log(level, line.text.clone());
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
    async fn apply(&self, args: &[String]) -> Result<Follow, ErrorDetail> {
        let command = format!("{} {}", self.name, args.join(" "));
        self.stopped_before(&args.join(" "))?;
        self.updates.log(LogLevel::Info, command.clone());
        let mut running = self.spawn(args)?;
        let mut follow = Follow::new(&self.name, &self.job.path);
        let mut stderr = VecDeque::new();
        while let Some(line) = running.next_line().await {
            match line.stream {
                Stream::Stdout => follow.line(&line.text, self.updates),
                Stream::Stderr => {
                    if !line.text.trim().is_empty() {
                        self.updates.log(LogLevel::Warn, line.text.clone());
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
            let how = format!("`{command}` {}", exit_text(ended.status));
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
    async fn fill_sensitive_outputs(&self, follow: &mut Follow) {
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

/// One message of the machine-readable UI. Everything is optional: a message of an unknown
/// or changed shape is ignored, never fatal.
#[derive(Debug, Default, Deserialize)]
struct Message {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(rename = "@message", default)]
    message: String,
    hook: Option<Hook>,
    change: Option<Change>,
    diagnostic: Option<Diagnostic>,
    outputs: Option<serde_json::Map<String, Json>>,
}

#[derive(Debug, Deserialize)]
struct Hook {
    resource: Option<Address>,
    #[serde(default)]
    action: String,
    id_value: Option<Json>,
}

#[derive(Debug, Deserialize)]
struct Change {
    resource: Option<Address>,
    #[serde(default)]
    action: String,
}

/// `hook.resource` / `change.resource`.
#[derive(Debug, Deserialize)]
struct Address {
    /// The full address: module path, type, name and key (`module.a.aws_s3_bucket.b["x"]`).
    addr: String,
    #[serde(default)]
    resource_type: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Diagnostic {
    #[serde(default)]
    severity: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    detail: String,
    address: Option<String>,
}

/// A resource as reported: the URN is the address (the deposed object of a replacement
/// created before it was destroyed gets its own).
#[derive(Debug, Clone)]
struct Resource {
    urn: String,
    type_: String,
    address: String,
}

/// Follows the `-json` stream of one apply or destroy and reports it as it comes.
struct Follow {
    /// The program's name, for hints (`tofu force-unlock`).
    tool: String,
    path: PathBuf,
    /// Operations planned; a replacement counts two (destroy and create). For the percent.
    planned: u32,
    finished: u32,
    /// Addresses planned to be replaced.
    replacing: HashSet<String>,
    /// Replacements whose new object is created: a delete that follows is of the old one.
    replaced: HashSet<String>,
    in_flight: HashMap<String, Resource>,
    /// Resources that errored, waiting for their diagnostic: Terraform prints diagnostics
    /// only once every operation in flight has ended.
    errored: Vec<Resource>,
    /// Error diagnostics, in order.
    errors: Vec<Diagnostic>,
    /// Error diagnostics that name no resource (indexes into `errors`), for errored
    /// resources whose own never came.
    unclaimed: VecDeque<usize>,
    refreshing: bool,
    /// Outputs as shown (sensitive ones masked) and the real values of sensitive ones.
    outputs: BTreeMap<String, Json>,
    secret_outputs: BTreeMap<String, Json>,
    /// Sensitive outputs the stream gave without their value.
    sensitive_unknown: Vec<String>,
    /// The last lines of stdout that were not JSON (an error printed outside the stream).
    plain_lines: VecDeque<String>,
}

impl Follow {
    fn new(tool: &str, path: &Path) -> Follow {
        Follow {
            tool: tool.to_owned(),
            path: path.to_owned(),
            planned: 0,
            finished: 0,
            replacing: HashSet::new(),
            replaced: HashSet::new(),
            in_flight: HashMap::new(),
            errored: Vec::new(),
            errors: Vec::new(),
            unclaimed: VecDeque::new(),
            refreshing: false,
            outputs: BTreeMap::new(),
            secret_outputs: BTreeMap::new(),
            sensitive_unknown: Vec::new(),
            plain_lines: VecDeque::new(),
        }
    }

    /// One line of stdout.
    fn line(&mut self, text: &str, updates: &Updates) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        let Ok(json) = serde_json::from_str::<Json>(text) else {
            updates.log(LogLevel::Info, text);
            push_tail(&mut self.plain_lines, text.to_owned());
            return;
        };
        let Ok(message) = serde_json::from_value::<Message>(json) else {
            return;
        };
        self.message(message, updates);
    }

    fn message(&mut self, m: Message, updates: &Updates) {
        match m.kind.as_str() {
            "planned_change" => {
                if let Some(change) = &m.change {
                    self.planned += match change.action.as_str() {
                        "create" | "update" | "delete" => 1,
                        "replace" => 2,
                        _ => 0,
                    };
                    if change.action == "replace" {
                        if let Some(r) = &change.resource {
                            self.replacing.insert(r.addr.clone());
                        }
                    }
                }
            }
            "apply_start" => self.apply_start(&m, updates),
            "apply_progress" => {
                if let Some(Hook {
                    resource: Some(r), ..
                }) = &m.hook
                {
                    updates.send(ExecutorUpdate::Progress {
                        percent: None,
                        message: Some(m.message.clone()).filter(|s| !s.is_empty()),
                        current_resource: Some(r.resource_type.clone()),
                    });
                }
            }
            "apply_complete" | "apply_errored" => self.apply_end(&m, updates),
            "diagnostic" => {
                if let Some(d) = m.diagnostic {
                    self.diagnostic(d, updates);
                }
            }
            "outputs" => self.outputs(m.outputs.unwrap_or_default()),
            "change_summary" | "resource_drift" | "provision_progress" if !m.message.is_empty() => {
                updates.log(LogLevel::Info, m.message);
            }
            "log" => {
                for line in m.message.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    updates.log(LogLevel::Info, line);
                }
            }
            "refresh_start" if !self.refreshing => {
                self.refreshing = true;
                updates.send(ExecutorUpdate::Progress {
                    percent: None,
                    message: Some("Refreshing state...".into()),
                    current_resource: None,
                });
            }
            "version" => updates.log(LogLevel::Debug, m.message),
            // Newer and quieter types (refresh_complete, provision_start, ephemeral_op_*, …).
            _ => {}
        }
    }

    /// The resource a hook is about, or `None` for actions that change nothing
    /// (`read` of a data source, `noop`, `forget`, …).
    fn resource(&self, hook: &Hook) -> Option<(Resource, ResourceState, ResourceState)> {
        let r = hook.resource.as_ref()?;
        let (start, end) = match hook.action.as_str() {
            "create" => (ResourceState::Creating, ResourceState::Created),
            "update" => (ResourceState::Updating, ResourceState::Updated),
            "delete" => (ResourceState::Deleting, ResourceState::Deleted),
            "replace" => (ResourceState::Updating, ResourceState::Updated),
            _ => return None,
        };
        // A replacement that creates before it destroys deletes the old (deposed) object
        // after the new one exists: reported apart, so that the address ends up created.
        let deposed = hook.action == "delete" && self.replaced.contains(&r.addr);
        let urn = if deposed {
            format!("{} (deposed)", r.addr)
        } else {
            r.addr.clone()
        };
        Some((
            Resource {
                urn,
                type_: r.resource_type.clone(),
                address: r.addr.clone(),
            },
            start,
            end,
        ))
    }

    fn apply_start(&mut self, m: &Message, updates: &Updates) {
        let Some(hook) = &m.hook else { return };
        let Some((resource, start, _)) = self.resource(hook) else {
            // Reads of data sources and the like: worth a line, not a resource.
            if !m.message.is_empty() {
                updates.send(ExecutorUpdate::Progress {
                    percent: None,
                    message: Some(m.message.clone()),
                    current_resource: None,
                });
            }
            return;
        };
        // Updates and deletes name the object they change.
        let id = hook.id_value.as_ref().map(plain_value);
        send(updates, &resource, start, id, None);
        self.in_flight.insert(resource.urn.clone(), resource);
    }

    fn apply_end(&mut self, m: &Message, updates: &Updates) {
        let Some(hook) = &m.hook else { return };
        let Some((resource, _, end)) = self.resource(hook) else {
            return;
        };
        self.in_flight.remove(&resource.urn);
        self.finished += 1;
        if m.kind == "apply_errored" {
            // resource_failed waits for the diagnostic that says why.
            self.errored.push(resource);
            updates.send(ExecutorUpdate::Progress {
                percent: self.percent(),
                message: Some(m.message.clone()).filter(|s| !s.is_empty()),
                current_resource: None,
            });
            return;
        }
        if hook.action == "create" && self.replacing.contains(&resource.address) {
            self.replaced.insert(resource.address.clone());
        }
        let id = hook.id_value.as_ref().map(plain_value);
        send(updates, &resource, end, id, None);
        if let Some(percent) = self.percent() {
            updates.send(ExecutorUpdate::Progress {
                percent: Some(percent),
                message: None,
                current_resource: None,
            });
        }
    }

    fn percent(&self) -> Option<u32> {
        (self.planned > 0).then(|| (self.finished * 100 / self.planned).min(100))
    }

    fn diagnostic(&mut self, d: Diagnostic, updates: &Updates) {
        if d.severity != "error" {
            let mut text = diagnostic_text(&d);
            if let Some(address) = d.address.as_deref().filter(|a| !a.is_empty()) {
                text = format!("{address}: {text}");
            }
            updates.log(LogLevel::Warn, text);
            return;
        }
        // Terraform repeats some (`execution halted` once per stopped branch of its graph).
        if self
            .errors
            .iter()
            .any(|e| (&e.summary, &e.detail, &e.address) == (&d.summary, &d.detail, &d.address))
        {
            return;
        }
        let claimed = d
            .address
            .as_deref()
            .and_then(|a| self.errored.iter().position(|r| r.address == a));
        match claimed {
            Some(i) => {
                let resource = self.errored.remove(i);
                let error = self.error_of(&d);
                send(updates, &resource, ResourceState::Failed, None, Some(error));
            }
            None => {
                // Not about a resource that failed: say it now, unless it is the stack's
                // own error (the first), which `stack_failed` tells.
                if d.address.is_none() {
                    self.unclaimed.push_back(self.errors.len());
                }
                if !self.errors.is_empty() {
                    updates.log(LogLevel::Error, diagnostic_text(&d));
                }
            }
        }
        self.errors.push(d);
    }

    fn outputs(&mut self, outputs: serde_json::Map<String, Json>) {
        // During the plan, `outputs` lists the planned changes of outputs (with `action`,
        // without values); the one that counts comes after the apply.
        if outputs.values().any(|o| o.get("action").is_some()) {
            return;
        }
        self.outputs.clear();
        self.secret_outputs.clear();
        self.sensitive_unknown.clear();
        for (name, output) in outputs {
            let sensitive = output.get("sensitive").and_then(Json::as_bool) == Some(true);
            let value = output.get("value").cloned();
            if sensitive {
                self.outputs
                    .insert(name.clone(), Json::String(SECRET.into()));
                match value {
                    Some(value) => {
                        self.secret_outputs.insert(name, value);
                    }
                    None => self.sensitive_unknown.push(name),
                }
            } else {
                self.outputs.insert(name, value.unwrap_or(Json::Null));
            }
        }
    }

    /// The error a diagnostic describes: a held state lock, access denied, or else.
    fn error_of(&self, d: &Diagnostic) -> ErrorDetail {
        if is_lock(d) {
            return self.lock_error(d);
        }
        let message = diagnostic_text(d);
        let mut details = Vec::new();
        if let Some(address) = &d.address {
            details.push(format!("at {address}"));
        }
        if d.detail.trim().contains('\n') {
            details.push(d.detail.trim().to_owned());
        }
        failure(
            error_code(&message, CODE),
            message,
            (!details.is_empty()).then(|| details.join("\n")),
        )
    }

    /// `LOCKED`, naming who holds the lock, since when, and how to release a stale one.
    fn lock_error(&self, d: &Diagnostic) -> ErrorDetail {
        let field = |name: &str| {
            d.detail.lines().find_map(|l| {
                let value = l.trim().strip_prefix(name)?.strip_prefix(':')?.trim();
                (!value.is_empty()).then(|| value.to_owned())
            })
        };
        let summary = d.summary.trim();
        let message = match field("Who") {
            Some(who) => {
                let mut about = Vec::new();
                if let Some(op) = field("Operation") {
                    about.push(op);
                }
                if let Some(created) = field("Created") {
                    about.push(format!("since {}", without_fraction(&created)));
                }
                if let Some(id) = field("ID") {
                    about.push(format!("lock ID {id}"));
                }
                if about.is_empty() {
                    format!("{summary}: held by {who}")
                } else {
                    format!("{summary}: held by {who} ({})", about.join(", "))
                }
            }
            None => diagnostic_text(d),
        };
        let mut details = d.detail.trim().to_owned();
        if let Some(id) = field("ID") {
            details.push_str(&format!(
                "\n\nWhen no run holds it any more, release it with `{} force-unlock {id}` in {}",
                self.tool,
                self.path.display()
            ));
        }
        failure(ErrorCode::Locked, message, Some(details))
    }

    /// Why the run failed: the first error diagnostic; without one, the tool's error line.
    fn failure(&self, how: &str, stderr: &VecDeque<String>) -> ErrorDetail {
        let mut details = vec![how.to_owned()];
        let mut error = match self.errors.first() {
            Some(first) => {
                let error = self.error_of(first);
                details.extend(error.details.clone());
                for other in self.errors.iter().skip(1) {
                    details.push(format!("also: {}", diagnostic_text(other)));
                }
                error
            }
            None => {
                let cause = text_diagnostic(stderr.iter().map(String::as_str))
                    .or_else(|| text_diagnostic(self.plain_lines.iter().map(String::as_str)))
                    .or_else(|| root_cause(stderr.iter().map(String::as_str)))
                    .or_else(|| root_cause(self.plain_lines.iter().map(String::as_str)))
                    .or_else(|| stderr.back().cloned());
                match cause {
                    Some(message) => failure(error_code(&message, CODE), message, None),
                    None => failure(CODE, format!("{how} without printing an error"), None),
                }
            }
        };
        if !stderr.is_empty() {
            details.push(stderr.iter().cloned().collect::<Vec<_>>().join("\n"));
        }
        error.details = Some(details.join("\n"));
        error
    }

    /// Errored resources whose diagnostic never came fail with an error that names no
    /// resource, else with `fallback` (the stack's error).
    fn close_errored(&mut self, updates: &Updates, fallback: &ErrorDetail) {
        for resource in std::mem::take(&mut self.errored) {
            let error = match self.unclaimed.pop_front() {
                Some(i) => self.error_of(&self.errors[i]),
                None => fallback.clone(),
            };
            send(updates, &resource, ResourceState::Failed, None, Some(error));
        }
    }

    fn into_deployed(self) -> Deployed {
        Deployed {
            outputs: self.outputs,
            secret_outputs: self.secret_outputs,
        }
    }
}

fn send(
    updates: &Updates,
    r: &Resource,
    state: ResourceState,
    id: Option<String>,
    error: Option<ErrorDetail>,
) {
    updates.send(ExecutorUpdate::Resource {
        state,
        urn: r.urn.clone(),
        type_: r.type_.clone(),
        name: r.urn.clone(),
        id,
        address: Some(r.address.clone()),
        error,
    });
}

fn is_lock(d: &Diagnostic) -> bool {
    let summary = d.summary.to_lowercase();
    summary.contains("acquiring the state lock") || summary.contains("error locking state")
}

/// `summary: detail` on one line, as the tool wrote them.
fn diagnostic_text(d: &Diagnostic) -> String {
    let summary = d.summary.trim();
    let detail = d.detail.split_whitespace().collect::<Vec<_>>().join(" ");
    if detail.is_empty() {
        summary.to_owned()
    } else if summary.is_empty() {
        detail
    } else if summary.ends_with(['.', ':']) {
        format!("{summary} {detail}")
    } else {
        format!("{summary}: {detail}")
    }
}

/// The first error of a human-readable diagnostic (`Error: summary`, blank, detail, in or out
/// of its `╷ │ ╵` box) as `summary: detail`.
fn text_diagnostic<'a>(lines: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut summary: Option<String> = None;
    let mut detail: Vec<String> = Vec::new();
    for line in lines {
        // The end of the box the first error is drawn in.
        if summary.is_some() && line.trim_start().starts_with('╵') {
            break;
        }
        let line = line.trim().trim_start_matches(['│', '╷', '╵']).trim();
        match &summary {
            None => {
                if let Some(s) = line.strip_prefix("Error: ") {
                    summary = Some(s.trim().to_owned());
                }
            }
            Some(_) => {
                if line.starts_with("Error: ") || line.starts_with("Warning: ") {
                    break;
                }
                if !line.is_empty() {
                    detail.push(line.to_owned());
                }
            }
        }
    }
    summary.map(|summary| {
        diagnostic_text(&Diagnostic {
            summary,
            detail: detail.join("\n"),
            ..Default::default()
        })
    })
}

/// `2024-01-01 12:00:00.123456 +0000 UTC` → `2024-01-01 12:00:00 +0000 UTC`.
fn without_fraction(time: &str) -> String {
    match time.find('.') {
        Some(dot) => {
            let rest = &time[dot..];
            let end = rest.find(' ').unwrap_or(rest.len());
            format!("{}{}", &time[..dot], &rest[end..])
        }
        None => time.to_owned(),
    }
}

/// A value as Terraform reads it from `TF_VAR_*`: strings as they are, anything else as JSON
/// (which HCL reads as the same list, map or number).
fn plain_value(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn push_tail(tail: &mut VecDeque<String>, line: String) {
    if tail.len() == TAIL {
        tail.pop_front();
    }
    tail.push_back(line);
}

fn exit_text(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => "failed".into(),
    }
}

/// Whether `path` holds a root module's files.
fn has_configuration(path: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(path) else {
        return false;
    };
    entries.filter_map(Result::ok).any(|e| {
        let name = e.file_name();
        let name = name.to_string_lossy();
        [".tf", ".tofu", ".tf.json", ".tofu.json"]
            .iter()
            .any(|ext| name.ends_with(ext))
            && e.path().is_file()
    })
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

/// `name` found on PATH, as an executable file.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// A program given as a path (used as is) or a bare name (looked up on PATH).
fn locate(program: &Path) -> Option<PathBuf> {
    if program.components().count() == 1 {
        return on_path(&program.to_string_lossy());
    }
    is_executable(program).then(|| program.to_owned())
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::Message as Sent;
    use tokio::sync::mpsc;

    /// Feeds a stream through [`Follow`] and returns what it reported.
    fn follow(stream: &str) -> (Follow, Vec<ExecutorUpdate>) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let updates = Updates::new(0, tx, Default::default());
        let mut f = Follow::new("tofu", Path::new("/stacks/dns"));
        for line in stream.lines() {
            f.line(line, &updates);
        }
        let mut sent = Vec::new();
        while let Ok((_, Sent::Update(u))) = rx.try_recv() {
            sent.push(u);
        }
        (f, sent)
    }

    fn resources(sent: &[ExecutorUpdate]) -> Vec<(ResourceState, String)> {
        sent.iter()
            .filter_map(|u| match u {
                ExecutorUpdate::Resource { state, urn, .. } => Some((*state, urn.clone())),
                _ => None,
            })
            .collect()
    }

    fn hook(kind: &str, addr: &str, action: &str) -> String {
        format!(
            r#"{{"type":"{kind}","@message":"{addr}: {kind}","hook":{{"resource":{{"addr":"{addr}","resource_type":"t"}},"action":"{action}"}}}}"#
        )
    }

    #[test]
    fn a_replacement_that_creates_first_reports_the_old_object_apart() {
        use ResourceState::*;
        let stream = [
            r#"{"type":"planned_change","change":{"resource":{"addr":"t.a","resource_type":"t"},"action":"replace"}}"#.to_owned(),
            hook("apply_start", "t.a", "create"),
            hook("apply_complete", "t.a", "create"),
            hook("apply_start", "t.a", "delete"),
            hook("apply_complete", "t.a", "delete"),
        ]
        .join("\n");
        let (f, sent) = follow(&stream);
        assert_eq!(
            resources(&sent),
            [
                (Creating, "t.a".into()),
                (Created, "t.a".into()),
                (Deleting, "t.a (deposed)".into()),
                (Deleted, "t.a (deposed)".into()),
            ]
        );
        assert_eq!((f.planned, f.finished), (2, 2));
        assert!(sent.iter().any(|u| matches!(
            u,
            ExecutorUpdate::Resource { address: Some(a), state: Deleted, .. } if a == "t.a"
        )));
    }

    #[test]
    fn plan_outputs_are_not_values_and_sensitive_ones_are_masked() {
        let stream = r#"{"type":"outputs","outputs":{"a":{"sensitive":false,"action":"create"}}}
{"type":"outputs","outputs":{"a":{"sensitive":false,"type":"string","value":"x"},"n":{"sensitive":false,"value":null},"p":{"sensitive":true,"value":"pw"},"q":{"sensitive":true}}}"#;
        let (f, _) = follow(stream);
        assert_eq!(f.outputs["a"], "x");
        assert_eq!(f.outputs["n"], Json::Null);
        assert_eq!(f.outputs["p"], SECRET);
        assert_eq!(f.outputs["q"], SECRET);
        assert_eq!(f.secret_outputs["p"], "pw");
        assert_eq!(f.sensitive_unknown, ["q"]);
    }

    #[test]
    fn an_errored_resource_fails_with_its_own_diagnostic() {
        let stream = [
            hook("apply_start", "t.a", "create"),
            hook("apply_start", "t.b", "create"),
            hook("apply_errored", "t.a", "create"),
            hook("apply_errored", "t.b", "create"),
            r#"{"type":"diagnostic","diagnostic":{"severity":"error","summary":"execution halted","detail":""}}"#.into(),
            r#"{"type":"diagnostic","diagnostic":{"severity":"error","summary":"execution halted","detail":""}}"#.into(),
            r#"{"type":"diagnostic","diagnostic":{"severity":"error","summary":"creating b","detail":"AccessDenied: no\n  really","address":"t.b"}}"#.into(),
            "not json at all".into(),
        ]
        .join("\n");
        let (mut f, sent) = follow(&stream);
        let failed: Vec<_> = sent
            .iter()
            .filter_map(|u| match u {
                ExecutorUpdate::Resource {
                    urn,
                    error: Some(e),
                    ..
                } => Some((urn.clone(), e.code.clone(), e.message.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            failed,
            [(
                "t.b".to_owned(),
                ErrorCode::InsufficientPermissions.to_owned(),
                "creating b: AccessDenied: no really".to_owned()
            )]
        );
        assert!(sent.iter().any(|u| matches!(u, ExecutorUpdate::Log { level: LogLevel::Info, message } if message == "not json at all")));
        // The repeated diagnostic is told once, and the first error is the stack's to tell.
        assert!(!sent.iter().any(|u| matches!(
            u,
            ExecutorUpdate::Log {
                level: LogLevel::Error,
                ..
            }
        )));
        let error = f.failure("`tofu apply` exited with status 1", &VecDeque::new());
        assert_eq!(error.message, "execution halted");
        assert!(error.details.unwrap().contains("also: creating b"));
        // t.a never got its own diagnostic: the one that names no resource is its.
        let (tx, mut rx) = mpsc::unbounded_channel();
        f.close_errored(
            &Updates::new(0, tx, Default::default()),
            &failure(CODE, "x", None),
        );
        let Ok((_, Sent::Update(ExecutorUpdate::Resource { urn, error, .. }))) = rx.try_recv()
        else {
            panic!("t.a is not closed")
        };
        assert_eq!(
            (urn.as_str(), error.unwrap().message.as_str()),
            ("t.a", "execution halted")
        );
    }

    #[test]
    fn a_held_state_lock_names_its_holder() {
        let d = Diagnostic {
            severity: "error".into(),
            summary: "Error acquiring the state lock".into(),
            detail: "Error message: resource temporarily unavailable\nLock Info:\n  ID:        e58d7c1a\n  Path:      terraform.tfstate\n  Operation: OperationTypeApply\n  Who:       alice@laptop\n  Version:   1.11.4\n  Created:   2026-11-28 01:25:10.952647203 +0000 UTC\n  Info:      \n\n\nTerraform acquires a state lock...".into(),
            address: None,
        };
        let f = Follow::new("tofu", Path::new("/stacks/dns"));
        let e = f.error_of(&d);
        assert_eq!(e.code, ErrorCode::Locked);
        assert_eq!(
            e.message,
            "Error acquiring the state lock: held by alice@laptop (OperationTypeApply, since 2026-11-28 01:25:10 +0000 UTC, lock ID e58d7c1a)"
        );
        assert!(e
            .details
            .unwrap()
            .contains("`tofu force-unlock e58d7c1a` in /stacks/dns"));
    }

    #[test]
    fn human_diagnostics_read_as_summary_and_detail() {
        let init = [
            "Initializing the backend...",
            "╷",
            "│ Error: Failed to query available provider packages",
            "│ ",
            "│ Could not retrieve the list of available versions for provider",
            "│ hashicorp/aws: no available releases match the given constraints",
            "╵",
            "Initializing provider plugins...",
        ];
        assert_eq!(
            text_diagnostic(init.iter().copied()).unwrap(),
            "Failed to query available provider packages: Could not retrieve the list of available versions for provider hashicorp/aws: no available releases match the given constraints"
        );
        assert_eq!(
            text_diagnostic(
                ["Error: Invalid reference", "", "Warning: x"]
                    .iter()
                    .copied()
            )
            .unwrap(),
            "Invalid reference"
        );
        assert_eq!(text_diagnostic(["all fine"].iter().copied()), None);
    }

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
