//! The stack's `config:` (values per environment, secrets from cloud's environment) and the
//! checks before anything runs: the CLI, the project, the login.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::process::Command;

use super::{
    Pulumi, PulumiStack, BIN_VAR, CONFIG_EXAMPLE, PER_ENV_EXAMPLE, SECRET_EXAMPLE, WHOAMI_TIMEOUT,
};

use crate::cancel::Cancel;
use crate::event::{ErrorCode, ErrorDetail};
use crate::executor::process::{self, Stop, Stream};
use crate::executor::{failure, root_cause, Configured, Executor, Job, NotReady, StackSpec};
use crate::manifest::reference::{self, Piece};
use crate::manifest::{ManifestError, ManifestResult, StackEntry, Value};

impl Executor for Pulumi {
    fn name(&self) -> &'static str {
        "pulumi"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["config"]
    }

    fn configure(&self, entry: &StackEntry<'_>) -> ManifestResult<Configured> {
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
    fn preflight(&self, stacks: &[&StackSpec]) -> Result<(), NotReady> {
        let names: Vec<&str> = stacks.iter().map(|s| s.name.as_str()).collect();
        let names = names.join(", ");
        let bin = find_binary().map_err(|e| {
            NotReady::new(
                format!(
                    "{}; the `pulumi` executor needs it (stacks: {names})",
                    e.problem
                ),
                e.fix,
            )
        })?;
        // `pulumi whoami` once per backend: projects may name their own in Pulumi.yaml.
        let mut backends: Vec<(Option<String>, PathBuf)> = Vec::new();
        for spec in stacks {
            let project = read_project(&spec.path).map_err(|e| {
                NotReady::new(format!("stack `{}`: {}", spec.name, e.problem), e.fix)
            })?;
            if !backends.iter().any(|(b, _)| *b == project.backend) {
                backends.push((project.backend, spec.path.clone()));
            }
        }
        for (_, dir) in &backends {
            whoami(&bin, dir).map_err(|problem| {
                NotReady::new(
                    format!("{problem} (stacks: {names})"),
                    "log in to the stacks' backend first: \
                     `pulumi login` (Pulumi Cloud; or set PULUMI_ACCESS_TOKEN), `pulumi login \
                     --local`, or `pulumi login s3://<bucket>` for a self-managed one; when \
                     logged in already, check that the backend can be reached (`pulumi whoami \
                     -v`)",
                )
            })?;
        }
        Ok(())
    }
}

impl PulumiStack {
    /// What can be checked before anything runs: environment variables of values that every
    /// environment gets, and no key set both here and in `inputs:`.
    pub(super) fn check(&self, spec: &StackSpec) -> Result<(), NotReady> {
        for entry in &self.config {
            if let ConfigValue::All(setting) = &entry.value {
                if let Some((_, error)) = setting
                    .env_errors
                    .iter()
                    .find(|(var, _)| std::env::var_os(var).is_none())
                {
                    let rendered = error.render();
                    // The manifest error names the key, the variable and the fix already.
                    let problem = rendered.strip_prefix("error: ").unwrap_or(&rendered);
                    return Err(NotReady::new(problem, ""));
                }
            }
            if spec.inputs.iter().any(|input| input.name == entry.key) {
                return Err(NotReady::new(
                    format!(
                        "stack `{}` sets `{}` twice, in `config:` and in `inputs:`",
                        spec.name, entry.key
                    ),
                    "keep one of them (an input reaches Pulumi as config too)",
                ));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// `config:`

/// One key of a stack's `config:`.
#[derive(Debug, Clone)]
pub(super) struct ConfigEntry {
    pub(super) key: String,
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
    pub(super) parts: Vec<Part>,
    pub(super) secret: bool,
    /// For each environment variable it reads, the error that points at the value.
    env_errors: Vec<(String, ManifestError)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Env(String),
}

fn parse_config(stack: &str, v: Value) -> ManifestResult<Vec<ConfigEntry>> {
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
fn setting(label: &str, v: Value) -> ManifestResult<Setting> {
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
fn template(label: &str, v: Value) -> ManifestResult<Vec<Part>> {
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
pub(super) struct ConfigArg {
    pub(super) key: String,
    pub(super) value: String,
    pub(super) secret: bool,
}

/// The stack's config for the job's environment, then its inputs. Also what was left out.
pub(super) fn config_args(
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
pub(super) fn find_binary() -> Result<PathBuf, NotReady> {
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
                Some(p) => Err(NotReady::new(
                    format!("{BIN_VAR} is `{}`, which is not an executable file", p.display()),
                    format!("make it executable (`chmod +x {}`), or point {BIN_VAR} at the `pulumi` binary", p.display()),
                )),
                None => Err(NotReady::new(
                    format!("{BIN_VAR} is `{}`, which does not exist", path.display()),
                    format!("set {BIN_VAR} to the path of the `pulumi` binary, or unset it to use `pulumi` from PATH"),
                )),
            }
        }
        None => on_path(Path::new("pulumi"))
            .filter(|p| is_executable(p))
            .ok_or_else(|| NotReady::new("the Pulumi CLI (`pulumi`) is not on PATH", install)),
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
    pub(super) name: Option<String>,
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

fn read_project(dir: &Path) -> Result<Project, NotReady> {
    let Some(file) = ["Pulumi.yaml", "Pulumi.yml"]
        .iter()
        .map(|name| dir.join(name))
        .find(|f| f.is_file())
    else {
        return Err(NotReady::new(
            format!("{} holds no Pulumi.yaml", dir.display()),
            "point `path:` at the folder of the stack's Pulumi project (the one with \
             Pulumi.yaml), or create a project there with `pulumi new`"
                .to_owned(),
        ));
    };
    let text = std::fs::read_to_string(&file).map_err(|e| {
        NotReady::new(
            format!("cannot read {}: {e}", file.display()),
            format!("make {} a readable file", file.display()),
        )
    })?;
    // What Pulumi.yaml may hold is Pulumi's to judge (it says so in its own words when the
    // stack runs): a file this reader cannot parse only loses its `backend:`.
    let project: ProjectFile = serde_saphyr::from_str(&text).unwrap_or_default();
    if project.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(NotReady::new(
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
pub(super) fn whoami(bin: &Path, dir: &Path) -> Result<(), String> {
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
        .unwrap_or_else(|| format!("it {}", crate::executor::process::exit_words(ended.status)));
    Err(format!(
        "`pulumi whoami` (in {}) failed: {cause}",
        dir.display()
    ))
}
