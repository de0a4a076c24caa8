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

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::process::Command;

use super::process::{self, Stop, Stream};
use super::{
    cancelled, error_code, failure, root_cause, BoxFuture, Configured, Deployed, Executor,
    ExecutorUpdate, Job, Outcome, StackSpec, Updates, SECRET,
};
use crate::cancel::Cancel;
use crate::event::{ErrorCode, ErrorDetail, LogLevel, Outputs, ResourceState};
use crate::manifest::reference::{self, Piece};
use crate::manifest::{ManifestError, Res, StackEntry, Value};

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

impl Executor for Pulumi {
    fn name(&self) -> &'static str {
        "pulumi"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["config"]
    }

    fn configure(&self, entry: &StackEntry<'_>) -> Res<Configured> {
        if entry.path_at.is_none() {
            return Err(entry.err(
                entry.at,
                format!("pulumi stack `{}` has no `path`", entry.stack),
                format!(
                    "add `path:` with the folder of its Pulumi project, relative to {}",
                    entry.dir_display()
                ),
            ));
        }
        let config = match entry.get("config") {
            Some(v) => parse_config(entry.stack, v)?,
            None => Vec::new(),
        };
        Ok(Arc::new(PulumiStack { config }))
    }

    /// The Pulumi CLI is installed, each `path` holds a Pulumi project, the environment
    /// variables `config:` reads are set, and `pulumi whoami` answers for each backend.
    fn preflight(&self, stacks: &[&StackSpec]) -> Result<(), String> {
        let names: Vec<&str> = stacks.iter().map(|s| s.name.as_str()).collect();
        let names = names.join(", ");
        let bin = find_binary().map_err(|(problem, help)| {
            format!("{problem}; the `pulumi` executor needs it (stacks: {names})\n  help: {help}")
        })?;
        // `pulumi whoami` once per backend: projects may name their own in Pulumi.yaml.
        let mut backends: Vec<(Option<String>, PathBuf)> = Vec::new();
        for spec in stacks {
            let project = read_project(&spec.path).map_err(|(problem, help)| {
                format!("stack `{}`: {problem}\n  help: {help}", spec.name)
            })?;
            if !backends.iter().any(|(b, _)| *b == project.backend) {
                backends.push((project.backend, spec.path.clone()));
            }
        }
        for (_, dir) in &backends {
            whoami(&bin, dir).map_err(|problem| {
                format!(
                    "{problem} (stacks: {names})\n  help: log in to the stacks' backend first: \
                     `pulumi login` (Pulumi Cloud; or set PULUMI_ACCESS_TOKEN), `pulumi login \
                     --local`, or `pulumi login s3://<bucket>` for a self-managed one; when \
                     logged in already, check that the backend can be reached (`pulumi whoami \
                     -v`)"
                )
            })?;
        }
        Ok(())
    }
}

impl PulumiStack {
    /// What can be checked before anything runs: environment variables of values that every
    /// environment gets, and no key set both here and in `inputs:`.
    fn check(&self, spec: &StackSpec) -> Result<(), String> {
        for entry in &self.config {
            if let ConfigValue::All(setting) = &entry.value {
                if let Some((_, error)) = setting
                    .env_errors
                    .iter()
                    .find(|(var, _)| std::env::var_os(var).is_none())
                {
                    let rendered = error.render();
                    return Err(rendered
                        .strip_prefix("error: ")
                        .unwrap_or(&rendered)
                        .to_owned());
                }
            }
            if spec.inputs.iter().any(|input| input.name == entry.key) {
                return Err(format!(
                    "stack `{}` sets `{}` twice, in `config:` and in `inputs:`\n  help: keep one \
                     of them (an input reaches Pulumi as config too)",
                    spec.name, entry.key
                ));
            }
        }
        Ok(())
    }
}

impl super::StackExecutor for PulumiStack {
    fn name(&self) -> &'static str {
        "pulumi"
    }

    fn preflight(&self, spec: &StackSpec) -> Result<(), String> {
        self.check(spec)
    }

    /// The stack config files `pulumi config set` and `--config` write: the config itself
    /// comes from the manifest, which the fingerprint covers.
    fn fingerprint_ignores(&self) -> &'static [&'static str] {
        &["Pulumi.*.yaml"]
    }

    fn deploy(self: Arc<Self>, job: Job, updates: Updates) -> BoxFuture {
        Box::pin(async move { run(&self, job, updates, Action::Up).await })
    }

    fn destroy(self: Arc<Self>, job: Job, updates: Updates) -> BoxFuture {
        Box::pin(async move { run(&self, job, updates, Action::Destroy).await })
    }

    /// `pulumi stack output --json` (and `--show-secrets` for the secret ones).
    fn read_outputs(self: Arc<Self>, job: Job, updates: Updates) -> Option<BoxFuture> {
        Some(Box::pin(async move {
            let bin = find_binary().map_err(|(problem, help)| {
                failure(ErrorCode::PulumiNotFound, problem, Some(help))
            })?;
            let run = Run {
                stack: format!("{}-{}", job.deployment_id, job.environment),
                scratch: job.scratch.join(&job.stack),
                job,
                updates,
                bin,
            };
            run.outputs().await
        }))
    }
}

// ---------------------------------------------------------------------------------------------
// `config:`

/// One key of a stack's `config:`.
#[derive(Debug, Clone)]
struct ConfigEntry {
    key: String,
    value: ConfigValue,
}

#[derive(Debug, Clone)]
enum ConfigValue {
    /// The same in every environment.
    All(Setting),
    /// One per environment, by name; an environment not listed does not get the key (the
    /// stack's own Pulumi config, or the program's default, applies).
    PerEnvironment(Vec<(String, Setting)>),
}

#[derive(Debug, Clone)]
struct Setting {
    parts: Vec<Part>,
    secret: bool,
    /// For each environment variable it reads, the error that points at the value.
    env_errors: Vec<(String, ManifestError)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Env(String),
}

fn parse_config(stack: &str, v: Value) -> Res<Vec<ConfigEntry>> {
    if v.is_null() {
        return Ok(Vec::new());
    }
    let mut entries = Vec::new();
    for (key, key_at, value) in
        v.entries(&format!("`config` of stack `{stack}`"), CONFIG_EXAMPLE)?
    {
        if let Err(why) = check_config_key(&key) {
            return Err(v.doc().err(
                key_at,
                format!(
                    "invalid config key `{}` in stack `{stack}`: {why}",
                    key.escape_debug()
                ),
                "Pulumi config keys are `name` or `namespace:name`, e.g. `instanceClass` or \
                 `aws:region`",
            ));
        }
        let label = format!("config `{key}` of stack `{stack}`");
        let value = if value.is_map() && !is_value_form(value) {
            let mut per = Vec::new();
            for (env, _, v) in value.entries(&label, PER_ENV_EXAMPLE)? {
                let label = format!("{label} (environment `{env}`)");
                if v.is_map() && !is_value_form(v) {
                    return Err(v.err(
                        format!("{label} must be one value, found a mapping"),
                        "write one value per environment, e.g. `{ dev: db.t3.micro, prod: { \
                         value: \"${env:PROD_CLASS}\", secret: true } }`",
                    ));
                }
                per.push((env, setting(&label, v)?));
            }
            if per.is_empty() {
                return Err(value.err(
                    format!("{label} lists no environment"),
                    format!("write one value per environment, like `{PER_ENV_EXAMPLE}`"),
                ));
            }
            ConfigValue::PerEnvironment(per)
        } else {
            ConfigValue::All(setting(&label, value)?)
        };
        entries.push(ConfigEntry { key, value });
    }
    Ok(entries)
}

/// `{ value: …, secret: … }`, as opposed to one value per environment.
fn is_value_form(v: Value) -> bool {
    v.entries("", "")
        .map(|entries| {
            entries
                .iter()
                .any(|(k, _, _)| k == "value" || k == "secret")
        })
        .unwrap_or(false)
}

fn check_config_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        Err("it is empty")
    } else if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err("it holds spaces")
    } else if key.contains('=') {
        Err("`=` separates a key from its value on Pulumi's command line")
    } else if key.starts_with('-') {
        Err("it starts with `-`")
    } else if key.starts_with(':') || key.ends_with(':') {
        Err("a namespace and a name go on both sides of `:`")
    } else {
        Ok(())
    }
}

/// A value, or `{ value, secret }`.
fn setting(label: &str, v: Value) -> Res<Setting> {
    let (value, secret) = if v.is_map() {
        let mut value = None;
        let mut secret = false;
        for (k, k_at, kv) in v.entries(label, SECRET_EXAMPLE)? {
            match k.as_str() {
                "value" => value = Some(kv),
                "secret" => {
                    secret = kv
                        .boolean()
                        .ok_or_else(|| kv.wrong_type("`secret`", "true or false", "secret: true"))?
                }
                _ => {
                    return Err(v.doc().err(
                        k_at,
                        format!("unknown key `{}` in {label}", k.escape_debug()),
                        format!(
                            "a value is written `{{ value: ..., secret: true }}` (allowed keys: \
                             value, secret), or one per environment like `{PER_ENV_EXAMPLE}`, \
                             not both in one mapping"
                        ),
                    ))
                }
            }
        }
        let value = value.ok_or_else(|| {
            v.err(
                format!("{label} has no `value`"),
                format!("write it like `{SECRET_EXAMPLE}`"),
            )
        })?;
        (value, secret)
    } else {
        (v, false)
    };
    let parts = template(label, value)?;
    let env_errors = parts
        .iter()
        .filter_map(|p| match p {
            Part::Env(var) => Some((
                var.clone(),
                value.err(
                    format!("{label} reads ${{env:{var}}}, which is not set"),
                    format!("set {var} in the environment, e.g. `export {var}=...`"),
                ),
            )),
            Part::Text(_) => None,
        })
        .collect();
    Ok(Setting {
        parts,
        secret,
        env_errors,
    })
}

/// A scalar as written, with `${env:VAR}` parts (`$${` is a literal `${`).
fn template(label: &str, v: Value) -> Res<Vec<Part>> {
    if v.is_null() {
        return Err(v.err(
            format!("{label} has no value"),
            "write a value, e.g. `aws:region: us-east-1` (a key left to the stack's own Pulumi \
             config is simply not listed)",
        ));
    }
    if v.is_map() || v.is_list() {
        return Err(v.wrong_type(
            label,
            "a string, number or boolean",
            "aws:region: us-east-1",
        ));
    }
    let text = v.scalar_text().unwrap_or_default();
    if !v.is_string() {
        // Numbers and booleans as written: Pulumi config values are text.
        return Ok(vec![Part::Text(text)]);
    }
    let help = "config values may read environment variables as `${env:VAR}`; an output of a \
                dependency goes in `inputs:` (it reaches Pulumi as config too); write `$${` for \
                a literal `${`";
    let pieces = reference::split(&text).map_err(|_| {
        v.err(
            format!("{label} has a `${{` without its closing `}}`"),
            help,
        )
    })?;
    let mut parts = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Text(text) => parts.push(Part::Text(text)),
            Piece::Reference(reference) => match reference.strip_prefix("env:") {
                Some(var)
                    if !var.is_empty()
                        && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
                {
                    parts.push(Part::Env(var.to_owned()));
                }
                _ => {
                    return Err(v.err(
                        format!(
                            "{label} reads `${{{reference}}}`, which is not an environment variable"
                        ),
                        help,
                    ))
                }
            },
        }
    }
    if parts.is_empty() {
        parts.push(Part::Text(String::new()));
    }
    Ok(parts)
}

/// The text of a value, or the environment variable it reads that is not set.
fn resolve(parts: &[Part]) -> Result<String, String> {
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Text(t) => out.push_str(t),
            Part::Env(var) => match std::env::var(var) {
                Ok(v) => out.push_str(&v),
                Err(_) => return Err(var.clone()),
            },
        }
    }
    Ok(out)
}

/// One value handed to Pulumi: `--config key=value`, or `pulumi config set --secret`.
#[derive(Debug, Clone, PartialEq)]
struct ConfigArg {
    key: String,
    value: String,
    secret: bool,
}

/// The stack's config for the job's environment, then its inputs. Also what was left out.
fn config_args(
    stack: &PulumiStack,
    job: &Job,
) -> Result<(Vec<ConfigArg>, Vec<String>), ErrorDetail> {
    let mut args = Vec::new();
    let mut notes = Vec::new();
    for entry in &stack.config {
        let setting = match &entry.value {
            ConfigValue::All(setting) => setting,
            ConfigValue::PerEnvironment(per) => {
                match per.iter().find(|(env, _)| *env == job.environment) {
                    Some((_, setting)) => setting,
                    None => {
                        notes.push(format!(
                            "config `{}` has no value for environment `{}`: not passed (the \
                             stack's own Pulumi config applies)",
                            entry.key, job.environment
                        ));
                        continue;
                    }
                }
            }
        };
        let value = resolve(&setting.parts).map_err(|var| {
            failure(
                ErrorCode::MissingConfig,
                format!(
                    "config `{}` of stack `{}` reads ${{env:{var}}}, which is not set",
                    entry.key, job.stack
                ),
                Some(format!("set {var} in the environment of `cloud`")),
            )
        })?;
        args.push(ConfigArg {
            key: entry.key.clone(),
            value,
            secret: setting.secret,
        });
    }
    for (name, input) in &job.inputs {
        args.push(ConfigArg {
            key: name.clone(),
            value: plain(&input.value),
            secret: input.secret,
        });
    }
    Ok((args, notes))
}

/// A value as Pulumi config holds it: strings as they are, anything else as JSON (which
/// `config.requireObject`/`requireNumber` read back).
fn plain(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Preflight: the binary, the project, the login.

/// `CLOUD_PULUMI_BIN` (a path, or a name looked up on PATH), else `pulumi` on PATH. The error
/// is the problem and its fix.
fn find_binary() -> Result<PathBuf, (String, String)> {
    let install = "install the Pulumi CLI (https://www.pulumi.com/docs/iac/download-install/) \
                   so that `pulumi version` works, or set CLOUD_PULUMI_BIN to its path";
    match std::env::var_os(BIN_VAR).filter(|v| !v.is_empty()) {
        Some(value) => {
            let path = PathBuf::from(&value);
            let found = if path.components().count() > 1 {
                Some(path.clone()).filter(|p| p.exists())
            } else {
                on_path(&path)
            };
            match found {
                Some(p) if is_executable(&p) => Ok(p),
                Some(p) => Err((
                    format!("{BIN_VAR} is `{}`, which is not an executable file", p.display()),
                    format!("make it executable (`chmod +x {}`), or point {BIN_VAR} at the `pulumi` binary", p.display()),
                )),
                None => Err((
                    format!("{BIN_VAR} is `{}`, which does not exist", path.display()),
                    format!("set {BIN_VAR} to the path of the `pulumi` binary, or unset it to use `pulumi` from PATH"),
                )),
            }
        }
        None => on_path(Path::new("pulumi"))
            .filter(|p| is_executable(p))
            .ok_or_else(|| {
                (
                    "the Pulumi CLI (`pulumi`) is not on PATH".to_owned(),
                    install.to_owned(),
                )
            }),
    }
}

fn on_path(name: &Path) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What `preflight` reads of a project's `Pulumi.yaml`.
#[derive(Debug, Default, Deserialize)]
struct ProjectFile {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    backend: Option<ProjectBackend>,
}

#[derive(Debug, Default, Deserialize)]
struct ProjectBackend {
    #[serde(default)]
    url: Option<String>,
}

struct Project {
    /// `backend.url` of Pulumi.yaml, when the project names its own.
    backend: Option<String>,
}

fn read_project(dir: &Path) -> Result<Project, (String, String)> {
    let Some(file) = ["Pulumi.yaml", "Pulumi.yml"]
        .iter()
        .map(|name| dir.join(name))
        .find(|f| f.is_file())
    else {
        return Err((
            format!("{} holds no Pulumi.yaml", dir.display()),
            "point `path:` at the folder of the stack's Pulumi project (the one with \
             Pulumi.yaml), or create a project there with `pulumi new`"
                .to_owned(),
        ));
    };
    let text = std::fs::read_to_string(&file).map_err(|e| {
        (
            format!("cannot read {}: {e}", file.display()),
            format!("make {} a readable file", file.display()),
        )
    })?;
    // What Pulumi.yaml may hold is Pulumi's to judge (it says so in its own words when the
    // stack runs): a file this reader cannot parse only loses its `backend:`.
    let project: ProjectFile = serde_saphyr::from_str(&text).unwrap_or_default();
    if project.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err((
            format!("{} has an empty `name`", file.display()),
            "a Pulumi project file names its project and runtime, e.g. `name: database` and \
             `runtime: nodejs`"
                .to_owned(),
        ));
    }
    Ok(Project {
        backend: project.backend.and_then(|b| b.url),
    })
}

/// `pulumi whoami` in `dir`: logged in to that project's backend, or why not (in Pulumi's
/// words). Runs on its own thread and runtime: validation happens before `cloud` has one.
fn whoami(bin: &Path, dir: &Path) -> Result<(), String> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot run `pulumi whoami`: {e}"))?;
                runtime.block_on(whoami_in(bin, dir))
            })
            .join()
            .unwrap_or_else(|_| Err("`pulumi whoami` could not be run".to_owned()))
    })
}

async fn whoami_in(bin: &Path, dir: &Path) -> Result<(), String> {
    let mut command = Command::new(bin);
    command
        .args(["whoami", "--non-interactive", "--color", "never"])
        .current_dir(dir)
        .env("PULUMI_SKIP_UPDATE_CHECK", "true");
    let cancel = Cancel::new();
    let mut program = process::spawn(command, Stop::new(cancel.clone(), Duration::from_secs(2)))
        .map_err(|e| format!("could not start `{}`: {e}", bin.display()))?;
    let mut stderr = Vec::new();
    let read = async {
        while let Some(line) = program.next_line().await {
            if line.stream == Stream::Stderr && !line.text.trim().is_empty() {
                stderr.push(line.text);
            }
        }
    };
    let answered = tokio::time::timeout(WHOAMI_TIMEOUT, read).await.is_ok();
    if !answered {
        cancel.cancel();
        let _ = program.finish().await;
        return Err(format!(
            "`pulumi whoami` (in {}) did not answer within {}s",
            dir.display(),
            WHOAMI_TIMEOUT.as_secs()
        ));
    }
    let ended = program
        .finish()
        .await
        .map_err(|e| format!("`pulumi whoami` could not be waited for: {e}"))?;
    if ended.status.success() {
        return Ok(());
    }
    let cause = root_cause(stderr.iter().map(String::as_str))
        .or_else(|| stderr.last().cloned())
        .unwrap_or_else(|| format!("it {}", describe(ended.status)));
    Err(format!(
        "`pulumi whoami` (in {}) failed: {cause}",
        dir.display()
    ))
}

// ---------------------------------------------------------------------------------------------
// A run.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Up,
    Destroy,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Up => "up",
            Action::Destroy => "destroy",
        }
    }
}

async fn run(stack: &PulumiStack, job: Job, updates: Updates, action: Action) -> Outcome {
    let (config, notes) = config_args(stack, &job)?;
    // Secret config values join the inputs' secrets the orchestrator hides.
    let secrets = config
        .iter()
        .filter(|c| c.secret)
        .map(|c| c.value.clone())
        .collect();
    let updates = updates.with_secrets(secrets);
    let bin = find_binary()
        .map_err(|(problem, help)| failure(ErrorCode::PulumiNotFound, problem, Some(help)))?;
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

struct Run {
    job: Job,
    updates: Updates,
    bin: PathBuf,
    /// The Pulumi stack: `<ID>-<env>`.
    stack: String,
    /// This stack's scratch folder (the event log), absolute: Pulumi runs in the project's.
    scratch: PathBuf,
}

/// The output of a short command.
#[derive(Default)]
struct Captured {
    stdout: Vec<String>,
    stderr: Vec<String>,
    status: Option<ExitStatus>,
}

impl Captured {
    fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

impl Run {
    async fn steps(&self, action: Action, config: &[ConfigArg]) -> Outcome {
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
        self.engine(action, config, expected).await?;
        match action {
            Action::Up => self.outputs().await,
            Action::Destroy => Ok(Deployed::default()),
        }
    }

    /// A `pulumi` command in the project's folder.
    fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut command = Command::new(&self.bin);
        command
            .args(args)
            .current_dir(&self.job.path)
            // No "a new version is available" lines, no network call for them.
            .env("PULUMI_SKIP_UPDATE_CHECK", "true");
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
            Some(status) => format!("`{what}` {}", describe(status)),
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
    async fn select(&self, action: Action) -> Result<bool, ErrorDetail> {
        let mut args = vec!["stack", "select"];
        if action == Action::Up {
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
    async fn engine(
        &self,
        action: Action,
        config: &[ConfigArg],
        expected: Option<u32>,
    ) -> Result<(), ErrorDetail> {
        let log = self.scratch.join("events.jsonl");
        // Created before Pulumi starts, so that it is there to follow from the first moment.
        std::fs::File::create(&log).map_err(|e| {
            failure(
                ErrorCode::IoError,
                format!("creating the event log {}: {e}", log.display()),
                None,
            )
        })?;
        let mut follower = Follower::open(&log).map_err(|e| {
            failure(
                ErrorCode::IoError,
                format!("opening the event log {}: {e}", log.display()),
                None,
            )
        })?;
        let verb = action.verb();
        let mut args: Vec<String> = [
            verb,
            "--stack",
            &self.stack,
            "--yes",
            "--skip-preview",
            "--non-interactive",
            "--color",
            "never",
            "--event-log",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(log.to_string_lossy().into_owned());
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
                "running `pulumi {verb} --stack {} --yes --skip-preview` in {}{}",
                self.stack,
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
        let mut tracker = Tracker::new(expected);
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
                                    self.updates.log(LogLevel::Warn, line.text.clone());
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
                _ = poll.tick() => self.follow(&mut follower, &mut tracker, false),
            }
        }
        // Pulumi has exited: what it wrote last is read too.
        self.follow(&mut follower, &mut tracker, true);
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
        if let Some(how) = ended.stopped {
            let mut details = vec![how];
            details.extend(tracker.errors.iter().cloned());
            details.extend(tail(&stderr));
            let mut error = cancelled(String::new());
            error.details = Some(details.join("\n"));
            return Err(error);
        }
        if ended.status.success() {
            return Ok(());
        }
        Err(failure_of(verb, ended.status, &tracker, &stderr, &stdout))
    }

    /// Reads the event log's new complete lines (all of it at `last`) into the tracker.
    fn follow(&self, follower: &mut Follower, tracker: &mut Tracker, last: bool) {
        if tracker.ended {
            return;
        }
        let (lines, problems) = follower.read(last);
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
    async fn outputs(&self) -> Outcome {
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
    let how = format!("`pulumi {verb}` {}", describe(status));
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
    details.extend(tail(stderr));
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
    resources: Vec<ExportResource>,
}

#[derive(Deserialize)]
struct ExportResource {
    #[serde(rename = "type", default)]
    type_: String,
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

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => "failed".into(),
    }
}

// ---------------------------------------------------------------------------------------------
// The event log.

/// Reads a file another process appends to, in complete lines.
struct Follower {
    file: std::fs::File,
    /// The start of a line not finished yet.
    partial: Vec<u8>,
    /// Lines read so far (for messages).
    lines: usize,
    /// The current line grew past [`MAX_EVENT_LINE`]: dropped up to its end.
    skipping: bool,
}

impl Follower {
    fn open(path: &Path) -> std::io::Result<Follower> {
        Ok(Follower {
            file: std::fs::File::open(path)?,
            partial: Vec::new(),
            lines: 0,
            skipping: false,
        })
    }

    /// The complete lines written since the last read, numbered; with `last`, also a final
    /// line without its newline (the writer is gone). Problems come as messages.
    fn read(&mut self, last: bool) -> (Vec<(usize, Vec<u8>)>, Vec<String>) {
        let mut problems = Vec::new();
        let mut bytes = Vec::new();
        if let Err(e) = self.file.read_to_end(&mut bytes) {
            problems.push(format!("could not read Pulumi's event log: {e}"));
        }
        let mut lines = Vec::new();
        let mut rest = bytes.as_slice();
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            self.lines += 1;
            if self.skipping {
                self.skipping = false;
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&rest[..end]);
                lines.push((self.lines, line));
            }
            rest = &rest[end + 1..];
        }
        if !self.skipping {
            self.partial.extend_from_slice(rest);
            if self.partial.len() > MAX_EVENT_LINE {
                problems.push(format!(
                    "skipped line {} of Pulumi's event log: longer than {} MiB",
                    self.lines + 1,
                    MAX_EVENT_LINE >> 20
                ));
                self.partial = Vec::new();
                self.skipping = true;
            }
        }
        if last && !self.partial.is_empty() {
            self.lines += 1;
            lines.push((self.lines, std::mem::take(&mut self.partial)));
        }
        (lines, problems)
    }
}

/// One line of the event log: an `apitype.EngineEvent` (Pulumi's
/// `sdk/go/common/apitype/events.go`). Exactly one kind is set; unknown kinds read as none.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EngineEvent {
    resource_pre_event: Option<StepEvent>,
    res_outputs_event: Option<StepEvent>,
    res_op_failed_event: Option<FailedEvent>,
    diagnostic_event: Option<DiagnosticEvent>,
    summary_event: Option<SummaryEvent>,
    cancel_event: Option<serde_json::Value>,
    stdout_event: Option<TextEvent>,
    policy_event: Option<PolicyEvent>,
    error_event: Option<ErrorEvent>,
}

#[derive(Debug, Deserialize)]
struct StepEvent {
    metadata: StepMetadata,
    /// Set for the steps of a preview: nothing happened.
    #[serde(default)]
    planning: bool,
}

#[derive(Debug, Deserialize)]
struct FailedEvent {
    metadata: StepMetadata,
}

#[derive(Debug, Deserialize)]
struct StepMetadata {
    op: String,
    urn: String,
    #[serde(rename = "type", default)]
    type_: String,
    #[serde(default)]
    old: Option<StepState>,
    #[serde(default)]
    new: Option<StepState>,
}

#[derive(Debug, Default, Deserialize)]
struct StepState {
    #[serde(default)]
    id: Option<String>,
}

impl StepMetadata {
    /// The resource's id after the step (before it, for a delete).
    fn id(&self) -> Option<String> {
        let id = |s: &Option<StepState>| {
            s.as_ref()
                .and_then(|s| s.id.clone())
                .filter(|id| !id.is_empty())
        };
        id(&self.new).or_else(|| id(&self.old))
    }

    fn type_(&self) -> String {
        if self.type_.is_empty() {
            urn_type(&self.urn).to_owned()
        } else {
            self.type_.clone()
        }
    }
}

#[derive(Debug, Deserialize)]
struct DiagnosticEvent {
    #[serde(default)]
    urn: String,
    #[serde(default)]
    message: String,
    /// `debug`, `info`, `info#err` (a program's stderr), `warning` or `error`.
    #[serde(default)]
    severity: String,
    /// A status line meant to be replaced by the next one.
    #[serde(default)]
    ephemeral: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SummaryEvent {
    #[serde(default)]
    maybe_corrupt: bool,
    #[serde(default)]
    duration_seconds: f64,
    #[serde(default)]
    is_preview: bool,
}

#[derive(Debug, Deserialize)]
struct TextEvent {
    #[serde(default)]
    message: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyEvent {
    #[serde(default)]
    message: String,
    #[serde(default)]
    policy_name: String,
    #[serde(default)]
    policy_pack_name: String,
    #[serde(default)]
    enforcement_level: String,
}

#[derive(Debug, Deserialize)]
struct ErrorEvent {
    #[serde(default)]
    error: String,
}

/// `urn:pulumi:<stack>::<project>::<parent$type>::<name>` → its type (without parents).
fn urn_type(urn: &str) -> &str {
    urn.split("::")
        .nth(2)
        .and_then(|qualified| qualified.rsplit('$').next())
        .unwrap_or("")
}

/// … and its name (which may itself hold `::`).
fn urn_name(urn: &str) -> &str {
    urn.splitn(4, "::").nth(3).unwrap_or(urn)
}

/// The stack's own resource and providers are bookkeeping, not the stack's resources.
fn counts_as_resource(type_: &str) -> bool {
    type_ != STACK_TYPE && !type_.starts_with("pulumi:providers:")
}

/// What a step does to a resource, as `cloud` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Create,
    Update,
    Delete,
    /// One of the steps of a replacement, which is shown as one resource being updated.
    Replace,
    /// Nothing changes (`same`, `read`, `refresh`, …): done, without events.
    Quiet,
}

fn step(op: &str) -> Step {
    match op {
        "create" | "import" => Step::Create,
        "update" => Step::Update,
        "delete" => Step::Delete,
        "replace" | "create-replacement" | "delete-replaced" | "import-replacement" => {
            Step::Replace
        }
        _ => Step::Quiet,
    }
}

const REPLACE_OPS: [&str; 4] = [
    "replace",
    "create-replacement",
    "delete-replaced",
    "import-replacement",
];

#[derive(Debug, Default)]
struct Replacement {
    /// The new resource exists; its id.
    created: bool,
    id: Option<String>,
    /// The old one is gone.
    deleted: bool,
}

/// Resources per outcome, for the summary line.
#[derive(Debug, Default, PartialEq)]
struct Counts {
    created: u32,
    updated: u32,
    replaced: u32,
    deleted: u32,
    unchanged: u32,
    failed: u32,
}

impl Counts {
    fn describe(&self) -> String {
        let parts: Vec<String> = [
            (self.created, "created"),
            (self.updated, "updated"),
            (self.replaced, "replaced"),
            (self.deleted, "deleted"),
            (self.unchanged, "unchanged"),
            (self.failed, "failed"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if parts.is_empty() {
            "no resources".into()
        } else {
            parts.join(", ")
        }
    }
}

/// Turns engine events into updates. Steps are keyed by (urn, op): a resource's outputs
/// registered twice (components do) or a step never started report nothing.
#[derive(Debug, Default)]
struct Tracker {
    in_flight: HashSet<(String, String)>,
    replacing: HashMap<String, Replacement>,
    /// The last error diagnostic about each resource, one line.
    resource_errors: HashMap<String, String>,
    /// Every error diagnostic, one line each, in order: the first is the root cause.
    errors: Vec<String>,
    /// Resources the stack is expected to walk through (its previous state), for the percent.
    expected: Option<u32>,
    finished: u32,
    percent: u32,
    counts: Counts,
    /// `cancelEvent` was read: the stream is over.
    ended: bool,
}

impl Tracker {
    fn new(expected: Option<u32>) -> Tracker {
        Tracker {
            expected,
            ..Tracker::default()
        }
    }

    fn apply(&mut self, event: EngineEvent) -> Vec<ExecutorUpdate> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        if let Some(e) = event.resource_pre_event {
            self.started(e, &mut out);
        }
        if let Some(e) = event.res_outputs_event {
            self.finished(e, &mut out);
        }
        if let Some(e) = event.res_op_failed_event {
            self.failed(e.metadata, &mut out);
        }
        if let Some(d) = event.diagnostic_event {
            self.diagnostic(d, &mut out);
        }
        if let Some(s) = event.summary_event {
            self.summary(s, &mut out);
        }
        if let Some(e) = event.stdout_event {
            for line in clean_lines(&e.message) {
                out.push(log(LogLevel::Info, line));
            }
        }
        if let Some(p) = event.policy_event {
            let level = match p.enforcement_level.as_str() {
                "mandatory" => LogLevel::Error,
                "advisory" | "warning" => LogLevel::Warn,
                _ => LogLevel::Info,
            };
            let message = one_line(&clean_lines(&p.message));
            out.push(log(
                level,
                format!(
                    "policy `{}` ({}): {message}",
                    p.policy_name, p.policy_pack_name
                ),
            ));
        }
        if let Some(e) = event.error_event {
            let message = one_line(&clean_lines(&e.error));
            if !message.is_empty() {
                self.errors.push(message.clone());
                out.push(log(LogLevel::Error, message));
            }
        }
        if event.cancel_event.is_some() {
            self.ended = true;
        }
        out
    }

    fn started(&mut self, e: StepEvent, out: &mut Vec<ExecutorUpdate>) {
        let m = e.metadata;
        if e.planning || !counts_as_resource(&m.type_()) {
            return;
        }
        self.in_flight.insert((m.urn.clone(), m.op.clone()));
        let state = match step(&m.op) {
            Step::Create => ResourceState::Creating,
            Step::Update => ResourceState::Updating,
            Step::Delete => ResourceState::Deleting,
            Step::Replace => {
                if self.replacing.contains_key(&m.urn) {
                    return;
                }
                self.replacing.insert(m.urn.clone(), Replacement::default());
                ResourceState::Updating
            }
            Step::Quiet => return,
        };
        out.push(resource(state, &m.urn, m.type_(), None, None));
    }

    fn finished(&mut self, e: StepEvent, out: &mut Vec<ExecutorUpdate>) {
        let m = e.metadata;
        if e.planning
            || !counts_as_resource(&m.type_())
            || !self.in_flight.remove(&(m.urn.clone(), m.op.clone()))
        {
            return;
        }
        let (state, counter) = match step(&m.op) {
            Step::Create => (ResourceState::Created, &mut self.counts.created),
            Step::Update => (ResourceState::Updated, &mut self.counts.updated),
            Step::Delete => (ResourceState::Deleted, &mut self.counts.deleted),
            Step::Quiet => {
                self.counts.unchanged += 1;
                self.step_done(out);
                return;
            }
            Step::Replace => {
                let r = self.replacing.entry(m.urn.clone()).or_default();
                match m.op.as_str() {
                    "create-replacement" | "import-replacement" => {
                        r.created = true;
                        r.id = m.id();
                    }
                    "delete-replaced" => r.deleted = true,
                    _ => {}
                }
                if r.created && r.deleted && !self.replace_in_flight(&m.urn) {
                    self.replaced(&m.urn, m.type_(), out);
                }
                return;
            }
        };
        *counter += 1;
        out.push(resource(state, &m.urn, m.type_(), m.id(), None));
        self.step_done(out);
    }

    fn replace_in_flight(&self, urn: &str) -> bool {
        REPLACE_OPS
            .iter()
            .any(|op| self.in_flight.contains(&(urn.to_owned(), (*op).to_owned())))
    }

    fn replaced(&mut self, urn: &str, type_: String, out: &mut Vec<ExecutorUpdate>) {
        let id = self.replacing.remove(urn).and_then(|r| r.id);
        self.counts.replaced += 1;
        out.push(resource(ResourceState::Updated, urn, type_, id, None));
        self.step_done(out);
    }

    fn failed(&mut self, m: StepMetadata, out: &mut Vec<ExecutorUpdate>) {
        // The stack resource's failure is the stack's: its diagnostics say why.
        if !counts_as_resource(&m.type_()) {
            return;
        }
        self.in_flight.remove(&(m.urn.clone(), m.op.clone()));
        self.replacing.remove(&m.urn);
        let message = self
            .resource_errors
            .get(&m.urn)
            .cloned()
            .unwrap_or_else(|| format!("Pulumi reported that `{}` failed", m.op));
        let error = failure(error_code(&message, ErrorCode::PulumiError), message, None);
        self.counts.failed += 1;
        out.push(resource(
            ResourceState::Failed,
            &m.urn,
            m.type_(),
            None,
            Some(error),
        ));
        self.step_done(out);
    }

    fn diagnostic(&mut self, d: DiagnosticEvent, out: &mut Vec<ExecutorUpdate>) {
        let lines = clean_lines(&d.message);
        if lines.is_empty() {
            return;
        }
        let level = match d.severity.as_str() {
            "error" => LogLevel::Error,
            "warning" => LogLevel::Warn,
            "debug" => LogLevel::Debug,
            _ if d.ephemeral => LogLevel::Debug,
            _ => LogLevel::Info,
        };
        if level == LogLevel::Error {
            let message = one_line(&lines);
            if !d.urn.is_empty() {
                self.resource_errors.insert(d.urn.clone(), message.clone());
            }
            self.errors.push(message);
        }
        // About a resource: say which; the stack's own (the program's output) needs no label.
        let label = (!d.urn.is_empty() && counts_as_resource(urn_type(&d.urn)))
            .then(|| format!("{} ({}): ", urn_type(&d.urn), urn_name(&d.urn)));
        for (i, line) in lines.into_iter().enumerate() {
            let message = match (&label, i) {
                (Some(label), 0) => format!("{label}{line}"),
                _ => line,
            };
            out.push(log(level, message));
        }
    }

    fn summary(&mut self, s: SummaryEvent, out: &mut Vec<ExecutorUpdate>) {
        if s.is_preview {
            return;
        }
        // A replacement whose new resource exists and that has nothing left in flight is done,
        // even if no old resource was deleted (it was kept, or there was none).
        let mut done: Vec<String> = self
            .replacing
            .iter()
            .filter(|(urn, r)| r.created && !self.replace_in_flight(urn))
            .map(|(urn, _)| urn.clone())
            .collect();
        done.sort();
        for urn in done {
            let type_ = urn_type(&urn).to_owned();
            self.replaced(&urn, type_, out);
        }
        out.push(log(
            LogLevel::Info,
            format!(
                "Pulumi finished: {} in {}s",
                self.counts.describe(),
                s.duration_seconds
            ),
        ));
        if s.maybe_corrupt {
            out.push(log(
                LogLevel::Warn,
                "Pulumi reports that the stack's state may be corrupt (maybeCorrupt): check it \
                 with `pulumi stack export` and repair it with `pulumi refresh`",
            ));
        }
    }

    /// One more step done: the percent, when the expected count is known.
    fn step_done(&mut self, out: &mut Vec<ExecutorUpdate>) {
        self.finished += 1;
        if let Some(expected) = self.expected.filter(|n| *n > 0) {
            let percent = (self.finished * 100 / expected).min(99);
            if percent > self.percent {
                self.percent = percent;
                out.push(ExecutorUpdate::Progress {
                    percent: Some(percent),
                    message: None,
                    current_resource: None,
                });
            }
        }
    }
}

fn resource(
    state: ResourceState,
    urn: &str,
    type_: String,
    id: Option<String>,
    error: Option<ErrorDetail>,
) -> ExecutorUpdate {
    ExecutorUpdate::Resource {
        state,
        urn: urn.to_owned(),
        type_,
        name: urn_name(urn).to_owned(),
        id,
        error,
        // Pulumi's URN is its full address already.
        address: None,
    }
}

fn log(level: LogLevel, message: impl Into<String>) -> ExecutorUpdate {
    ExecutorUpdate::Log {
        level,
        message: message.into(),
    }
}

/// A message's lines without Pulumi's colour directives (`<{%fg 1%}>`), terminal control
/// sequences and blank lines around it.
fn clean_lines(raw: &str) -> Vec<String> {
    let mut text = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find("<{%") {
        text.push_str(&rest[..start]);
        rest = match rest[start..].find("%}>") {
            Some(end) => &rest[start + end + 3..],
            None => "",
        };
    }
    text.push_str(rest);
    let mut lines: Vec<String> = text
        .lines()
        .map(|l| process::clean(l.as_bytes()).trim_end().to_owned())
        .collect();
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    let first = lines
        .iter()
        .position(|l| !l.trim().is_empty())
        .unwrap_or(lines.len());
    lines.drain(..first);
    lines
}

/// A diagnostic as one line: Go's "1 error occurred:" header and bullets dropped, and no more
/// than its first three lines (the rest, a stack trace say, is in the stack's logs).
fn one_line(lines: &[String]) -> String {
    let is_header = |l: &str| {
        let words: Vec<&str> = l.split_whitespace().collect();
        matches!(words.as_slice(), [n, "error" | "errors", occurred] if n.parse::<u32>().is_ok() && occurred.trim_end_matches(':') == "occurred")
    };
    lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !is_header(l))
        .map(|l| l.trim_start_matches("* ").trim())
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(lines: &[&str]) -> (Tracker, Vec<ExecutorUpdate>) {
        let mut tracker = Tracker::new(Some(4));
        let mut out = Vec::new();
        for line in lines {
            out.extend(tracker.apply(serde_json::from_str(line).unwrap()));
        }
        (tracker, out)
    }

    fn step_line(kind: &str, op: &str, name: &str, id: &str) -> String {
        format!(
            r#"{{"sequence":1,"timestamp":1,"{kind}":{{"metadata":{{"op":"{op}","urn":"urn:pulumi:dev::p::aws:s3/bucket:Bucket::{name}","type":"aws:s3/bucket:Bucket","old":null,"new":{{"id":"{id}"}}}}}}}}"#
        )
    }

    fn states(out: &[ExecutorUpdate]) -> Vec<(ResourceState, String, Option<String>)> {
        out.iter()
            .filter_map(|u| match u {
                ExecutorUpdate::Resource {
                    state, name, id, ..
                } => Some((*state, name.clone(), id.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_replacement_is_one_resource_updated_once_both_halves_are_done() {
        let lines = [
            step_line("resourcePreEvent", "create-replacement", "b", ""),
            step_line("resOutputsEvent", "create-replacement", "b", "b-2"),
            step_line("resourcePreEvent", "replace", "b", ""),
            step_line("resOutputsEvent", "replace", "b", "b-2"),
            step_line("resourcePreEvent", "create", "c", ""),
            step_line("resOutputsEvent", "create", "c", "c-1"),
            step_line("resourcePreEvent", "delete-replaced", "b", ""),
            step_line("resOutputsEvent", "delete-replaced", "b", ""),
        ];
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let (tracker, out) = events(&lines);
        assert_eq!(
            states(&out),
            vec![
                (ResourceState::Updating, "b".into(), None),
                (ResourceState::Creating, "c".into(), None),
                (ResourceState::Created, "c".into(), Some("c-1".into())),
                (ResourceState::Updated, "b".into(), Some("b-2".into())),
            ]
        );
        assert_eq!(tracker.counts.replaced, 1);
        assert_eq!(tracker.counts.created, 1);
        let percents: Vec<u32> = out
            .iter()
            .filter_map(|u| match u {
                ExecutorUpdate::Progress { percent, .. } => *percent,
                _ => None,
            })
            .collect();
        assert_eq!(percents, vec![25, 50]);
    }

    #[test]
    fn outputs_registered_twice_or_never_started_report_nothing() {
        let lines = [
            step_line("resourcePreEvent", "same", "a", "a-1"),
            step_line("resOutputsEvent", "same", "a", "a-1"),
            step_line("resOutputsEvent", "same", "a", "a-1"),
            step_line("resOutputsEvent", "create", "ghost", "g"),
        ];
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let (tracker, out) = events(&lines);
        assert!(states(&out).is_empty(), "{out:?}");
        assert_eq!(tracker.counts.unchanged, 1);
    }

    #[test]
    fn a_failed_step_carries_the_resources_own_error() {
        let diag = r#"{"diagnosticEvent":{"urn":"urn:pulumi:dev::p::aws:s3/bucket:Bucket::b","prefix":"<{%fg 1%}>error: <{%reset%}>","message":"<{%reset%}>1 error occurred:\n\t* creating bucket: AccessDenied: Access Denied\n<{%reset%}>\n","color":"raw","severity":"error"}}"#;
        let lines = [
            step_line("resourcePreEvent", "create", "b", ""),
            diag.to_owned(),
            step_line("resOpFailedEvent", "create", "b", ""),
            r#"{"cancelEvent":{}}"#.to_owned(),
            step_line("resourcePreEvent", "create", "late", ""),
        ];
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let (tracker, out) = events(&lines);
        let failed = out
            .iter()
            .find_map(|u| match u {
                ExecutorUpdate::Resource {
                    state: ResourceState::Failed,
                    error,
                    ..
                } => error.clone(),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            failed.message,
            "creating bucket: AccessDenied: Access Denied"
        );
        assert_eq!(failed.code, ErrorCode::InsufficientPermissions);
        assert_eq!(tracker.errors, vec![failed.message.clone()]);
        let logs: Vec<&str> = out
            .iter()
            .filter_map(|u| match u {
                ExecutorUpdate::Log { message, .. } => Some(message.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(logs[0], "aws:s3/bucket:Bucket (b): 1 error occurred:");
        assert!(tracker.ended);
        assert!(
            !states(&out).iter().any(|(_, name, _)| name == "late"),
            "nothing is read after cancelEvent"
        );
    }

    #[test]
    fn the_stack_and_providers_are_not_resources() {
        assert!(!counts_as_resource("pulumi:pulumi:Stack"));
        assert!(!counts_as_resource("pulumi:providers:aws"));
        assert!(counts_as_resource("my:component:Child"));
        let urn = "urn:pulumi:dev::eks::eks:index:Cluster$aws:eks/cluster:Cluster::a::b";
        assert_eq!(urn_type(urn), "aws:eks/cluster:Cluster");
        assert_eq!(urn_name(urn), "a::b");
    }

    #[test]
    fn messages_lose_colour_directives_and_bullets() {
        let lines = clean_lines(
            "<{%reset%}>update failed: step application failed: not implemented<{%reset%}>\n",
        );
        assert_eq!(
            lines,
            vec!["update failed: step application failed: not implemented"]
        );
        assert_eq!(
            one_line(&clean_lines("2 errors occurred:\n\t* one\n\t* two\n\n")),
            "one two"
        );
        assert_eq!(
            one_line(&clean_lines(
                "Running program '/p' failed with an unhandled exception:\nError: boom\n    at f (/p/index.ts:3:9)\n    at g (/p/index.ts:9:1)\n"
            )),
            "Running program '/p' failed with an unhandled exception: Error: boom at f (/p/index.ts:3:9)"
        );
    }

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

    #[test]
    fn the_follower_returns_complete_lines_only() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut writer = std::fs::File::create(&path).unwrap();
        let mut follower = Follower::open(&path).unwrap();
        writer.write_all(b"{\"a\":1}\n{\"b\":").unwrap();
        let (lines, _) = follower.read(false);
        assert_eq!(lines, vec![(1, b"{\"a\":1}".to_vec())]);
        writer.write_all(b"2}\n{\"c\"").unwrap();
        let (lines, _) = follower.read(false);
        assert_eq!(lines, vec![(2, b"{\"b\":2}".to_vec())]);
        let (lines, _) = follower.read(true);
        assert_eq!(lines, vec![(3, b"{\"c\"".to_vec())]);
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
                    deployment_id: "D".into(),
                    environment: "dev".into(),
                    operation: Operation::Destroy,
                    stack: "db".into(),
                    path: dir.path().to_path_buf(),
                    dependency_outputs: std::collections::BTreeMap::new(),
                    inputs: Default::default(),
                    cancel: Cancel::new(),
                    grace: Duration::from_secs(1),
                    scratch: dir.path().join("scratch"),
                },
                updates: Updates::new(0, tx, Default::default()),
                bin: bin.clone(),
                stack: "D-dev".into(),
                scratch: dir.path().join("scratch/db"),
            };
            let outcome = runtime.block_on(run.steps(Action::Destroy, &[]));
            drop(run);
            let mut updates = Vec::new();
            while let Ok((_, super::super::Message::Update(u))) = rx.try_recv() {
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
