//! A run of the CLI: select the stack, set secrets, `up`/`destroy` with its event log
//! followed, then the outputs.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::ExitStatus;

use serde::Deserialize;
use tokio::process::Command;

use super::config::{config_args, find_binary, ConfigArg};
use super::stream::{counts_as_resource, EngineEvent, LineTail, Tracker};
use super::{PulumiStack, MAX_CAPTURED, POLL, TAIL};
use crate::event::{ErrorCode, ErrorDetail, LogLevel, Outputs};
use crate::executor::process::{self, Stop, Stream};
use crate::executor::{
    cancelled, error_code, failure, root_cause, Deployed, Job, Outcome, Updates, SECRET,
};

use crate::event::PlanSummary;
use crate::executor::ExecutorUpdate;
// ---------------------------------------------------------------------------------------------
// A run.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    Up,
    Destroy,
    /// `pulumi preview`: what an `up` would change.
    Preview,
    /// `pulumi refresh --preview-only`: what changed outside Pulumi (a drift check).
    Refresh,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Up => "up",
            Action::Destroy => "destroy",
            Action::Preview => "preview",
            Action::Refresh => "refresh",
        }
    }
}

/// The saved plan of a preview, in the stack's scratch folder.
const PLAN_FILE: &str = "plan.json";

pub(super) async fn run(
    stack: &PulumiStack,
    job: Job,
    updates: Updates,
    action: Action,
) -> Outcome {
    let (config, notes) = config_args(stack, &job)?;
    // Secret config values join the inputs' secrets the orchestrator hides.
    let secrets = config
        .iter()
        .filter(|c| c.secret)
        .map(|c| c.value.clone())
        .collect();
    let updates = updates.with_secrets(secrets);
    let bin =
        find_binary().map_err(|e| failure(ErrorCode::PulumiNotFound, e.problem, Some(e.fix)))?;
    let scratch = std::path::absolute(job.scratch.join(&job.stack))
        .unwrap_or_else(|_| job.scratch.join(&job.stack));
    let run = Run {
        stack: format!("{}-{}", job.deployment_id, job.environment),
        job,
        updates,
        bin,
        scratch,
    };
    for note in notes {
        run.updates.log(LogLevel::Info, note);
    }
    // The `config:` secrets joined the run's redactor above: the error is masked with the
    // rest of the run's events.
    run.steps(action, &config).await
}

/// `pulumi stack output --json` (and `--show-secrets` for the secret ones), for the
/// dependents of a stack that does not run.
pub(super) async fn read_outputs(job: Job, updates: Updates) -> Outcome {
    let bin =
        find_binary().map_err(|e| failure(ErrorCode::PulumiNotFound, e.problem, Some(e.fix)))?;
    let run = Run {
        stack: format!("{}-{}", job.deployment_id, job.environment),
        scratch: job.scratch.join(&job.stack),
        job,
        updates,
        bin,
    };
    run.outputs().await
}

struct Run {
    pub(super) job: Job,
    pub(super) updates: Updates,
    pub(super) bin: PathBuf,
    /// The Pulumi stack: `<ID>-<env>`.
    pub(super) stack: String,
    /// This stack's scratch folder (the event log), absolute: Pulumi runs in the project's.
    scratch: PathBuf,
}

/// The output of a short command.
#[derive(Default)]
struct Captured {
    pub(super) stdout: Vec<String>,
    pub(super) stderr: Vec<String>,
    pub(super) status: Option<ExitStatus>,
}

impl Captured {
    pub(super) fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

impl Run {
    pub(super) async fn steps(&self, action: Action, config: &[ConfigArg]) -> Outcome {
        std::fs::create_dir_all(&self.scratch).map_err(|e| {
            failure(
                ErrorCode::IoError,
                format!(
                    "creating the scratch folder {}: {e}",
                    self.scratch.display()
                ),
                None,
            )
        })?;
        if action == Action::Preview {
            return self.preview_anywhere(config).await;
        }
        if action == Action::Refresh {
            return self.check_drift(config).await;
        }
        if !self.select(action).await? {
            self.updates.log(
                LogLevel::Info,
                format!(
                    "Pulumi stack `{}` does not exist: nothing to destroy",
                    self.stack
                ),
            );
            return Ok(Deployed::default());
        }
        self.set_secrets(config).await?;
        let expected = self.expected_resources().await;
        // `deploy --plan`: the reviewed plan constrains the update (`up --plan`).
        let extra = match (&self.job.saved_plan, action) {
            (Some(plan), Action::Up) => vec!["--plan".to_owned(), plan.display().to_string()],
            _ => Vec::new(),
        };
        self.engine(action, config, Tracker::new(expected), &extra)
            .await?;
        match action {
            Action::Up => self.outputs().await,
            Action::Destroy | Action::Preview | Action::Refresh => Ok(Deployed::default()),
        }
    }

    /// A preview changes nothing: a stack never deployed is created for the preview alone (the
    /// CLI previews only a stack that exists) and removed after it, with the config the
    /// preview set, so no empty stack is left in the backend.
    async fn preview_anywhere(&self, config: &[ConfigArg]) -> Outcome {
        let exists = self.select(Action::Destroy).await?;
        if !exists {
            self.select(Action::Preview).await?;
        }
        let previewed = match self.set_secrets(config).await {
            Ok(()) => self.preview(config).await,
            Err(e) => Err(e),
        };
        if !exists {
            let args = [
                "stack",
                "rm",
                "--yes",
                "--non-interactive",
                self.stack.as_str(),
            ];
            match self.capture(&args, None).await {
                Ok(done) if done.success() => self.updates.log(
                    LogLevel::Info,
                    format!(
                        "Pulumi stack `{}` did not exist: created for the preview, then removed",
                        self.stack
                    ),
                ),
                // The preview stands; the stack left behind is said, with how to remove it.
                _ => self.updates.log(
                    LogLevel::Warn,
                    format!(
                        "could not remove the empty Pulumi stack `{}` made for the preview: \
                         `pulumi stack rm {}` in {} removes it",
                        self.stack,
                        self.stack,
                        self.job.path.display()
                    ),
                ),
            }
        }
        previewed
    }

    /// `pulumi refresh --preview-only`: each resource whose properties differ from what the
    /// last update left (or that is gone) is drifted. Its config is the stack's own (set by the
    /// last update): only the secret ones are set again.
    async fn check_drift(&self, config: &[ConfigArg]) -> Outcome {
        if !self.select(Action::Destroy).await? {
            return Err(failure(
                ErrorCode::PulumiError,
                format!("Pulumi stack `{}` does not exist: nothing to compare", self.stack),
                Some("deploy it first, or check that the Pulumi backend is the one it was deployed to".into()),
            ));
        }
        self.set_secrets(config).await?;
        self.engine(Action::Refresh, &[], Tracker::checking_drift(), &[])
            .await?;
        Ok(Deployed::default())
    }

    /// `pulumi preview`, with `--save-plan` when the CLI has it: each step as a resource
    /// planned, then the summary.
    async fn preview(&self, config: &[ConfigArg]) -> Outcome {
        let file = self.scratch.join(PLAN_FILE);
        let save = self.saves_plans().await;
        let extra = if save {
            vec![
                "--save-plan".to_owned(),
                file.to_string_lossy().into_owned(),
            ]
        } else {
            Vec::new()
        };
        let tracker = self
            .engine(Action::Preview, config, Tracker::previewing(), &extra)
            .await?;
        let Some(plan) = tracker.plan else {
            return Ok(Deployed::default());
        };
        if !plan.summarized {
            self.updates.log(
                LogLevel::Warn,
                "`pulumi preview` wrote no summaryEvent: the counts are missing",
            );
        }
        self.updates.send(ExecutorUpdate::PlanSummary(PlanSummary {
            counts: plan.counts,
            changes: plan.counts.any() || !plan.changed_outputs.is_empty(),
            changed_outputs: plan.changed_outputs,
            known_after_apply: plan.known_after_apply,
            drifted: 0,
            plan_file: (save && file.is_file()).then(|| file.display().to_string()),
        }));
        Ok(Deployed::default())
    }

    /// Whether this CLI's `preview` has `--save-plan` (Pulumi 3.47 and later, behind
    /// `PULUMI_EXPERIMENTAL`): its help says so.
    async fn saves_plans(&self) -> bool {
        match self.capture(&["preview", "--help"], None).await {
            Ok(help) => help.stdout.iter().any(|l| l.contains("--save-plan")),
            Err(_) => false,
        }
    }

    /// A `pulumi` command in the project's folder.
    pub(super) fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let args: Vec<S> = args.into_iter().collect();
        let mut command = Command::new(&self.bin);
        command
            .args(&args)
            .current_dir(&self.job.path)
            // No "a new version is available" lines, no network call for them.
            .env("PULUMI_SKIP_UPDATE_CHECK", "true");
        let saved_plan = args.iter().any(|a| a.as_ref() == "--plan");
        if saved_plan || args.first().is_some_and(|a| a.as_ref() == "preview") {
            // `preview --save-plan` and `up --plan` exist only then.
            command.env("PULUMI_EXPERIMENTAL", "true");
        }
        command
    }

    fn not_started(&self, e: std::io::Error) -> ErrorDetail {
        failure(
            ErrorCode::PulumiNotStarted,
            format!(
                "could not start `{}` in {}: {e}",
                self.bin.display(),
                self.job.path.display()
            ),
            None,
        )
    }

    /// Runs a short command to its end; `input` goes to its stdin.
    async fn capture(&self, args: &[&str], input: Option<&str>) -> Result<Captured, ErrorDetail> {
        let command = self.command(args);
        let stop = Stop::new(self.job.cancel.clone(), self.job.grace);
        let mut program = match input {
            Some(text) => process::spawn_with_input(command, stop, text.as_bytes().to_vec()),
            None => process::spawn(command, stop),
        }
        .map_err(|e| self.not_started(e))?;
        let mut captured = Captured::default();
        while let Some(line) = program.next_line().await {
            match line.stream {
                Stream::Stdout if captured.stdout.len() < MAX_CAPTURED => {
                    captured.stdout.push(line.text)
                }
                Stream::Stderr => {
                    if captured.stderr.len() == TAIL * 5 {
                        captured.stderr.remove(0);
                    }
                    captured.stderr.push(line.text);
                }
                Stream::Stdout => {}
            }
        }
        let ended = program.finish().await.map_err(|e| {
            failure(
                ErrorCode::IoError,
                format!("waiting for `pulumi {}`: {e}", args.join(" ")),
                None,
            )
        })?;
        if let Some(how) = ended.stopped {
            return Err(cancelled(how));
        }
        captured.status = Some(ended.status);
        Ok(captured)
    }

    /// Why a short command failed, in Pulumi's words.
    fn command_failed(&self, what: &str, captured: &Captured) -> ErrorDetail {
        let how = match captured.status {
            Some(status) => format!("`{what}` {}", crate::executor::process::exit_words(status)),
            None => format!("`{what}` failed"),
        };
        let mut details = vec![how.clone()];
        details.extend(tail(&captured.stderr));
        if let Some(message) = locked(&captured.stderr) {
            return failure(ErrorCode::Locked, message, Some(details.join("\n")));
        }
        let cause = root_cause(captured.stderr.iter().map(String::as_str))
            .or_else(|| {
                captured
                    .stderr
                    .iter()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .cloned()
            })
            .or_else(|| root_cause(captured.stdout.iter().map(String::as_str)));
        match cause {
            Some(message) => failure(
                error_code(&message, ErrorCode::PulumiError),
                message,
                Some(details.join("\n")),
            ),
            None => failure(
                ErrorCode::PulumiError,
                format!("{how} without printing an error"),
                Some(tail(&captured.stdout).join("\n")).filter(|d| !d.is_empty()),
            ),
        }
    }

    /// Selects the stack (deploy: created when missing). `false`: a destroy found no stack.
    pub(super) async fn select(&self, action: Action) -> Result<bool, ErrorDetail> {
        let mut args = vec!["stack", "select"];
        // A preview of a stack never deployed needs the (empty) stack too.
        if action != Action::Destroy {
            args.push("--create");
        }
        args.extend(["--non-interactive", "--color", "never", self.stack.as_str()]);
        let captured = self.capture(&args, None).await?;
        if captured.success() {
            return Ok(true);
        }
        if action == Action::Destroy && captured.stderr.iter().any(|l| l.contains("no stack named"))
        {
            return Ok(false);
        }
        Err(self.command_failed(&format!("pulumi {}", args[..2].join(" ")), &captured))
    }

    /// `pulumi config set --secret` for each secret value the stack does not hold yet.
    async fn set_secrets(&self, config: &[ConfigArg]) -> Result<(), ErrorDetail> {
        for arg in config.iter().filter(|c| c.secret) {
            let stack = self.stack.as_str();
            let current = self
                .capture(
                    &[
                        "config",
                        "get",
                        "--stack",
                        stack,
                        "--json",
                        "--non-interactive",
                        &arg.key,
                    ],
                    None,
                )
                .await?;
            if current.success() && holds_secret(&current.stdout.join("\n"), &arg.value) {
                continue;
            }
            let args = [
                "config",
                "set",
                "--stack",
                stack,
                "--secret",
                "--non-interactive",
                "--color",
                "never",
                &arg.key,
            ];
            let set = self.capture(&args, Some(&arg.value)).await?;
            if !set.success() {
                return Err(self.command_failed("pulumi config set --secret", &set));
            }
            self.updates.log(
                LogLevel::Info,
                format!("set secret config `{}` of Pulumi stack `{stack}`", arg.key),
            );
        }
        Ok(())
    }

    /// How many resources (not the stack, not providers) the stack holds now, from `pulumi
    /// stack export`: what an update walks through, and all that a destroy deletes. `None`
    /// when unknown (a new stack, or the export failed: it only feeds the percent).
    async fn expected_resources(&self) -> Option<u32> {
        let file = self.scratch.join("export.json");
        let file_arg = file.to_string_lossy().into_owned();
        let args = [
            "stack",
            "export",
            "--stack",
            self.stack.as_str(),
            "--non-interactive",
            "--file",
            file_arg.as_str(),
        ];
        let captured = self.capture(&args, None).await.ok()?;
        let text = std::fs::read(&file).ok();
        // It holds the stack's state (secrets encrypted): no longer than needed.
        let _ = std::fs::remove_file(&file);
        if !captured.success() {
            self.updates.log(
                LogLevel::Debug,
                "`pulumi stack export` failed: the stack's progress shows no percent",
            );
            return None;
        }
        let export: Export = serde_json::from_slice(&text?).ok()?;
        let count = export
            .deployment
            .resources
            .iter()
            .filter(|r| counts_as_resource(&r.type_))
            .count() as u32;
        (count > 0).then_some(count)
    }

    /// `pulumi up`/`destroy`, its event log followed while it runs.
    pub(super) async fn engine(
        &self,
        action: Action,
        config: &[ConfigArg],
        mut tracker: Tracker,
        extra: &[String],
    ) -> Result<Tracker, ErrorDetail> {
        let log = self.scratch.join("events.jsonl");
        // Created before Pulumi starts, so that it is there to follow from the first moment.
        std::fs::File::create(&log).map_err(|e| {
            failure(
                ErrorCode::IoError,
                format!("creating the event log {}: {e}", log.display()),
                None,
            )
        })?;
        let mut log_tail = LineTail::open(&log).map_err(|e| {
            failure(
                ErrorCode::IoError,
                format!("opening the event log {}: {e}", log.display()),
                None,
            )
        })?;
        let verb = action.verb();
        // A preview asks nothing and changes nothing: no `--yes`, and it is the preview.
        let unattended: &[&str] = match action {
            Action::Preview => &[],
            // Changes nothing: the refresh is previewed, never applied.
            Action::Refresh => &["--preview-only"],
            Action::Up | Action::Destroy => &["--yes", "--skip-preview"],
        };
        let mut args: Vec<String> = [verb, "--stack", &self.stack]
            .iter()
            .chain(unattended)
            .chain(&["--non-interactive", "--color", "never", "--event-log"])
            .map(|s| s.to_string())
            .collect();
        args.push(log.to_string_lossy().into_owned());
        args.extend(extra.iter().cloned());
        // Secret values were set with `pulumi config set --secret` already.
        for arg in config.iter().filter(|c| !c.secret) {
            args.push("--config".into());
            args.push(format!("{}={}", arg.key, arg.value));
        }
        // The command line is described, never printed: values belong to the stack's config.
        let keys: Vec<String> = config
            .iter()
            .map(|c| {
                if c.secret {
                    format!("{} (secret)", c.key)
                } else {
                    c.key.clone()
                }
            })
            .collect();
        self.updates.log(
            LogLevel::Info,
            format!(
                "running `pulumi {verb} --stack {}{}` in {}{}",
                self.stack,
                unattended
                    .iter()
                    .map(|a| format!(" {a}"))
                    .collect::<String>(),
                self.job.path.display(),
                if keys.is_empty() {
                    String::new()
                } else {
                    format!(" with config {}", keys.join(", "))
                }
            ),
        );

        let mut command = self.command(&args);
        command
            .env("PULUMI_DEBUG_COMMANDS", "true")
            .env("CLOUD_DEPLOYMENT_ID", &self.job.deployment_id)
            .env("CLOUD_ENVIRONMENT", &self.job.environment)
            .env("CLOUD_STACK", &self.job.stack)
            .env("CLOUD_OPERATION", self.job.operation.as_str());
        let stop = Stop {
            cancel: self.job.cancel.clone(),
            grace: self.job.grace,
            second_interrupt: Some(self.job.grace / 2),
        };
        let mut program = process::spawn(command, stop).map_err(|e| self.not_started(e))?;
        let mut stderr: VecDeque<String> = VecDeque::new();
        let mut stdout: VecDeque<String> = VecDeque::new();
        let mut poll = tokio::time::interval(POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                line = program.next_line() => match line {
                    Some(line) => {
                        let kept = match line.stream {
                            // The display repeats what the event log says: kept for the
                            // details of a failure only.
                            Stream::Stdout => &mut stdout,
                            Stream::Stderr => {
                                if !line.text.trim().is_empty() {
                                    let (level, message) = process::stderr_log(&line.text);
                                    self.updates.log(level, message);
                                }
                                &mut stderr
                            }
                        };
                        if kept.len() == TAIL {
                            kept.pop_front();
                        }
                        kept.push_back(line.text);
                    }
                    None => break,
                },
                _ = poll.tick() => self.follow(&mut log_tail, &mut tracker, false),
            }
        }
        // Pulumi has exited: what it wrote last is read too.
        self.follow(&mut log_tail, &mut tracker, true);
        let ended = program.finish().await.map_err(|e| {
            failure(
                ErrorCode::IoError,
                format!("waiting for `pulumi {verb}`: {e}"),
                None,
            )
        })?;
        if !ended.survivors.is_empty() {
            let pids: Vec<String> = ended.survivors.iter().map(u32::to_string).collect();
            self.updates.log(
                LogLevel::Warn,
                format!(
                    "`pulumi {verb}` exited, but processes it started still run (pid {})",
                    pids.join(", ")
                ),
            );
        }
        let stderr: Vec<String> = stderr.into();
        let stdout: Vec<String> = stdout.into();
        if ended.stopped.is_some() || !ended.status.success() {
            for update in tracker.interrupted() {
                self.updates.send(update);
            }
        }
        if let Some(how) = ended.stopped {
            let mut details = vec![how];
            details.extend(tracker.errors.iter().cloned());
            details.extend(tail(&stderr));
            let mut error = cancelled(String::new());
            error.details = Some(details.join("\n"));
            return Err(error);
        }
        if ended.status.success() {
            return Ok(tracker);
        }
        Err(failure_of(verb, ended.status, &tracker, &stderr, &stdout))
    }

    /// Reads the event log's new complete lines (all of it at `last`) into the tracker.
    fn follow(&self, log_tail: &mut LineTail, tracker: &mut Tracker, last: bool) {
        if tracker.ended {
            return;
        }
        let (lines, problems) = log_tail.read(last);
        for problem in problems {
            self.updates.log(LogLevel::Warn, problem);
        }
        for (number, line) in lines {
            if tracker.ended {
                break;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<EngineEvent>(&line) {
                Ok(event) => {
                    for update in tracker.apply(event) {
                        self.updates.send(update);
                    }
                }
                Err(e) => {
                    let text = String::from_utf8_lossy(&line);
                    let excerpt: String =
                        process::clean(text.as_bytes()).chars().take(160).collect();
                    self.updates.log(
                        LogLevel::Warn,
                        format!(
                            "skipped line {number} of Pulumi's event log, which is not an engine \
                             event ({e}): {excerpt}"
                        ),
                    );
                }
            }
        }
    }

    /// The stack's outputs: shown masked; secret ones' real values kept for dependents.
    pub(super) async fn outputs(&self) -> Outcome {
        let stack = self.stack.as_str();
        let args = [
            "stack",
            "output",
            "--json",
            "--stack",
            stack,
            "--non-interactive",
        ];
        let shown = self.capture(&args, None).await?;
        if !shown.success() {
            return Err(self.command_failed("pulumi stack output --json", &shown));
        }
        let outputs = parse_outputs(&shown.stdout)?;
        let secret: Vec<String> = outputs
            .iter()
            .filter(|(_, v)| has_secret(v))
            .map(|(k, _)| k.clone())
            .collect();
        let mut secret_outputs = Outputs::new();
        if !secret.is_empty() {
            let mut args = args.to_vec();
            args.push("--show-secrets");
            let real = self.capture(&args, None).await?;
            match real
                .success()
                .then(|| parse_outputs(&real.stdout).ok())
                .flatten()
            {
                Some(mut real) => {
                    for key in &secret {
                        if let Some(value) = real.remove(key) {
                            secret_outputs.insert(key.clone(), value);
                        }
                    }
                }
                None => self.updates.log(
                    LogLevel::Warn,
                    format!(
                        "could not read the secret outputs of `{stack}` (`pulumi stack output \
                         --show-secrets` failed): stacks whose inputs read them fail with \
                         SECRET_UNAVAILABLE"
                    ),
                ),
            }
        }
        Ok(Deployed {
            outputs,
            secret_outputs,
        })
    }
}

/// Why `pulumi up`/`destroy` failed: the engine's first error diagnostic is the root cause;
/// Pulumi's own last words ("update failed"), the other errors and the exit status are details.
/// Before the engine starts there are no diagnostics: Pulumi's `error:` line then.
fn failure_of(
    verb: &str,
    status: ExitStatus,
    tracker: &Tracker,
    stderr: &[String],
    stdout: &[String],
) -> ErrorDetail {
    let how = format!(
        "`pulumi {verb}` {}",
        crate::executor::process::exit_words(status)
    );
    let mut details = Vec::new();
    if let Some(message) = locked(stderr) {
        details.push(how);
        details.extend(tail(stderr));
        return failure(ErrorCode::Locked, message, Some(details.join("\n")));
    }
    let message = tracker
        .errors
        .first()
        .cloned()
        .or_else(|| root_cause(stderr.iter().map(String::as_str)))
        .or_else(|| stderr.iter().rev().find(|l| !l.trim().is_empty()).cloned())
        .or_else(|| root_cause(stdout.iter().map(String::as_str)));
    details.extend(tracker.errors.iter().skip(1).cloned());
    details.push(how.clone());
    // Pulumi's last words, but the line that is the message: said once.
    details.extend(
        tail(stderr)
            .into_iter()
            .filter(|l| Some(l) != message.as_ref()),
    );
    match message {
        Some(message) => failure(
            error_code(&message, ErrorCode::PulumiError),
            message,
            Some(details.join("\n")),
        ),
        None => {
            details.extend(tail(stdout));
            failure(
                ErrorCode::PulumiError,
                format!("{how} without reporting an error"),
                Some(details.join("\n")),
            )
        }
    }
}

/// Whether `pulumi config get --json` says the stack holds `value` as a secret already.
fn holds_secret(json: &str, value: &str) -> bool {
    #[derive(Deserialize)]
    struct Got {
        value: Option<String>,
        #[serde(default)]
        secret: bool,
    }
    serde_json::from_str::<Got>(json)
        .is_ok_and(|got| got.secret && got.value.as_deref() == Some(value))
}

fn parse_outputs(lines: &[String]) -> Result<Outputs, ErrorDetail> {
    let text = lines.join("\n");
    if text.trim().is_empty() {
        return Ok(Outputs::new());
    }
    serde_json::from_str::<Outputs>(&text).map_err(|e| {
        let cut = lines.iter().any(|l| l.contains("[line cut at"));
        failure(
            ErrorCode::OutputsInvalid,
            if cut {
                format!(
                    "an output of `pulumi stack output --json` has a line longer than {} KiB, \
                     which cloud does not read",
                    process::MAX_LINE / 1024
                )
            } else {
                format!("`pulumi stack output --json` did not print a JSON object: {e}")
            },
            Some(text.chars().take(500).collect()),
        )
    })
}

/// Whether a value is, or holds, Pulumi's mask for a secret.
fn has_secret(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s == SECRET,
        serde_json::Value::Array(items) => items.iter().any(has_secret),
        serde_json::Value::Object(map) => map.values().any(has_secret),
        _ => false,
    }
}

/// What `pulumi stack export` holds that we count.
#[derive(Deserialize)]
struct Export {
    #[serde(default)]
    deployment: ExportDeployment,
}

#[derive(Default, Deserialize)]
struct ExportDeployment {
    #[serde(default)]
    pub(super) resources: Vec<ExportResource>,
}

#[derive(Deserialize)]
struct ExportResource {
    #[serde(rename = "type", default)]
    pub(super) type_: String,
}

/// A concurrent update holds the stack: Pulumi's message, with the holder when it names one
/// (self-managed backends write `…: created by user@host (pid N) at TIME`).
fn locked(lines: &[String]) -> Option<String> {
    let at = lines.iter().position(|line| {
        let lower = line.to_lowercase();
        lower.contains("currently locked")
            || lower.contains("another update is currently in progress")
            || lower.contains("[409] conflict")
    })?;
    let head = lines[at].trim();
    let holder = lines[at + 1..]
        .iter()
        .find_map(|l| l.split_once("created by ").map(|(_, who)| who.trim()));
    Some(match holder {
        Some(who) => format!("{head} (the lock was created by {who})"),
        None => head.to_owned(),
    })
}

fn tail(lines: &[String]) -> Vec<String> {
    let skip = lines.len().saturating_sub(TAIL);
    lines[skip..]
        .iter()
        .filter(|l| !l.trim().is_empty())
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ResourceState;
    use crate::executor::pulumi::stream::tests::states;
    use std::time::Duration;

    #[test]
    fn a_lock_names_its_holder() {
        let stderr = vec![
            "error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end or delete the lock file with `pulumi cancel`.".to_owned(),
            "  file:///state/.pulumi/locks/organization/db/D1-dev/1.json: created by alice@ci-7 (pid 4242) at 2025-10-09T14:30:00Z".to_owned(),
        ];
        let message = locked(&stderr).unwrap();
        assert!(
            message.starts_with("error: the stack is currently locked by 1 lock(s)."),
            "{message}"
        );
        assert!(
            message.ends_with(
                "(the lock was created by alice@ci-7 (pid 4242) at 2025-10-09T14:30:00Z)"
            ),
            "{message}"
        );
        assert_eq!(locked(&["error: update failed".to_owned()]), None);
    }

    /// `cloud destroy` is not a command yet: the destroy path, driven directly.
    #[test]
    fn destroy_selects_without_creating_and_a_missing_stack_has_nothing_to_destroy() {
        use crate::event::Operation;
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("pulumi");
        std::fs::write(
            &bin,
            r#"#!/bin/sh
echo "$*" >> "$(dirname "$0")/calls"
case "$1 $2" in
"stack select") if [ -f "$(dirname "$0")/missing" ]; then echo "error: no stack named 'D-dev' found" >&2; exit 255; fi ;;
"stack export") exit 1 ;;
"destroy "*)
  while [ "$1" != "--event-log" ]; do shift; done
  printf '%s\n' '{"resourcePreEvent":{"metadata":{"op":"delete","urn":"urn:pulumi:D-dev::p::t:m:T::a","type":"t:m:T","old":{"id":"a-1"},"new":null}}}' \
    '{"resOutputsEvent":{"metadata":{"op":"delete","urn":"urn:pulumi:D-dev::p::t:m:T::a","type":"t:m:T","old":{"id":"a-1"},"new":null}}}' >> "$2" ;;
esac
"#,
        )
        .unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let destroy = |missing: bool| {
            if missing {
                std::fs::write(dir.path().join("missing"), "").unwrap();
            }
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let run = Run {
                job: Job {
                    operation: Operation::Destroy,
                    grace: Duration::from_secs(1),
                    ..crate::testing::job("D", "db", dir.path(), &dir.path().join("scratch"))
                },
                updates: Updates::new(0, tx, Default::default()),
                bin: bin.clone(),
                stack: "D-dev".into(),
                scratch: dir.path().join("scratch/db"),
            };
            let outcome = runtime.block_on(run.steps(Action::Destroy, &[]));
            drop(run);
            let mut updates = Vec::new();
            while let Ok((_, crate::executor::Message::Update(u))) = rx.try_recv() {
                updates.push(u);
            }
            (outcome, updates)
        };

        let (outcome, updates) = destroy(false);
        assert_eq!(outcome, Ok(Deployed::default()));
        assert_eq!(
            states(&updates),
            vec![
                (ResourceState::Deleting, "a".into(), None),
                (ResourceState::Deleted, "a".into(), Some("a-1".into())),
            ]
        );
        let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
        let calls: Vec<&str> = calls.lines().collect();
        assert_eq!(
            calls[0],
            "stack select --non-interactive --color never D-dev"
        );
        assert!(
            calls[2].starts_with("destroy --stack D-dev --yes --skip-preview"),
            "{calls:?}"
        );

        let (outcome, updates) = destroy(true);
        assert_eq!(outcome, Ok(Deployed::default()));
        assert!(states(&updates).is_empty());
        let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
        assert_eq!(
            calls.lines().filter(|l| l.starts_with("destroy")).count(),
            1
        );
    }

    #[test]
    fn outputs_with_secrets_are_found_at_any_depth() {
        assert!(has_secret(&serde_json::json!("[secret]")));
        assert!(has_secret(
            &serde_json::json!({"db": {"password": "[secret]"}})
        ));
        assert!(!has_secret(&serde_json::json!({"db": ["a", 1]})));
        assert!(holds_secret(
            "{\n  \"value\": \"x\",\n  \"secret\": true\n}",
            "x"
        ));
        assert!(!holds_secret("{\"value\": \"x\", \"secret\": false}", "x"));
    }
}
