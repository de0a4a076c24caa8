//! The deployment manifest: `<root>/cloud/deploy/<ID>/deployment.yaml`, parsed and validated.
//!
//! The YAML is read into a tree of nodes that remember where they were written ([`yaml`]), then
//! checked ([`validate`]) so that every problem becomes one [`ManifestError`] naming the file,
//! line:column and the fix ([`error`]). The manifest knows executors only through an
//! [`ExecutorCatalog`]: each executor reads its own keys of a stack ([`StackEntry`]) and
//! returns its configuration, the `E` of [`Manifest<E>`].

pub mod error;
pub mod event_store;
mod fingerprint;
pub mod inputs;
pub mod notifications;
pub mod outline;
pub mod reference;
mod render;
mod retry;
mod validate;
pub mod yaml;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::{closest, did_you_mean, list, Loc, ManifestError, ManifestResult};
pub use inputs::{Input, InputValue, Inputs};
pub use notifications::Notifications;
pub use validate::{parse, parse_header};
pub use yaml::{Doc, Value};

/// A validated manifest. Stacks keep the order of the file; `E` is each stack's configured
/// executor (see [`ExecutorCatalog`]).
#[derive(Debug, Clone)]
pub struct Manifest<E> {
    /// The `deployment.yaml` that was read.
    pub file: PathBuf,
    /// The folder holding it; stack paths are relative to this.
    pub dir: PathBuf,
    pub deployment_id: String,
    pub environments: Vec<String>,
    /// Where `environments` is written, for "environment not listed" errors.
    pub environments_at: Loc,
    pub parallelism: Option<usize>,
    pub stacks: Vec<StackSpec<E>>,
    /// `notifications:`, checked (values that read `${VAR}` are read when used).
    pub notifications: Option<Notifications>,
    /// `eventStore:`: DynamoDB and CloudWatch Logs, when the manifest turns them on.
    pub event_store: Option<event_store::EventStore>,
}

/// What commands that read recorded runs (`status`, `replay`, `events`, `unlock`) need of a
/// manifest: where it is, its id, its environments and its event store — not its stacks.
#[derive(Debug, Clone)]
pub struct Header {
    pub file: PathBuf,
    pub dir: PathBuf,
    pub deployment_id: String,
    pub environments: Vec<String>,
    pub environments_at: Loc,
    pub event_store: Option<event_store::EventStore>,
}

#[derive(Debug, Clone)]
pub struct StackSpec<E> {
    pub name: String,
    pub dependencies: Vec<String>,
    /// Where each dependency is written (for the cycle error).
    pub dependencies_at: Vec<Loc>,
    /// `path` joined onto the manifest's folder (the manifest's folder when absent).
    pub path: PathBuf,
    /// Where the stack's name is written.
    pub at: Loc,
    /// Values from its dependencies' outputs, the environment or literals, by name.
    pub inputs: Vec<Input>,
    /// The stack fails with `TIMEOUT` when it runs longer.
    pub timeout: Option<Duration>,
    /// How a failed operation is tried again (`retry:` under `defaults:` and on the stack).
    pub retry: crate::retry::Policy,
    /// A digest of its entry as data (with its executor): part of its smart-skip fingerprint.
    pub entry_fingerprint: String,
    pub executor: E,
}

/// Hex of the first 16 bytes of a SHA-256 digest: plenty to tell two states apart.
pub fn fingerprint_hex(digest: &[u8]) -> String {
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The executors a manifest may name. Each owns some keys of a stack's entry and turns them
/// into its configuration for that stack.
pub trait ExecutorCatalog: Sync {
    /// One stack's configured executor.
    type Executor: Clone + std::fmt::Debug + Send;
    /// Every executor's name, as written in `executor:`.
    fn names(&self) -> Vec<&'static str>;
    /// The stack keys executor `name` owns; `None` when there is no such executor.
    fn keys(&self, name: &str) -> Option<&'static [&'static str]>;
    /// Reads a stack's keys (those of `entry.executor`) into its configured executor.
    fn configure(&self, entry: &StackEntry<'_>) -> ManifestResult<Self::Executor>;
}

/// The keys of one stack that belong to its executor, with where they were written.
pub struct StackEntry<'a> {
    /// The stack's name.
    pub stack: &'a str,
    /// The executor's name.
    pub executor: &'a str,
    /// Where the stack's name is written.
    pub at: Loc,
    /// Where `path:` is written, when it is.
    pub path_at: Option<Loc>,
    /// The manifest's folder (stack paths are relative to it).
    pub dir: &'a Path,
    keys: Vec<(String, Loc, Value<'a>)>,
    doc: Doc<'a>,
}

impl<'a> StackEntry<'a> {
    /// The value of one of the executor's keys.
    pub fn get(&self, key: &str) -> Option<Value<'a>> {
        self.keys
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, _, v)| *v)
    }

    /// Where a key is written.
    pub fn key_at(&self, key: &str) -> Option<Loc> {
        self.keys
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, at, _)| *at)
    }

    pub fn err(
        &self,
        at: Loc,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> ManifestError {
        self.doc.err(at, message, help)
    }

    /// `stacks/x` for help messages: the manifest's folder as people read it.
    pub fn dir_display(&self) -> String {
        display_dir(self.dir)
    }
}

/// Path of the manifest of deployment `id` under `root`.
pub fn manifest_path(root: &Path, id: &str) -> PathBuf {
    root.join("cloud")
        .join("deploy")
        .join(id)
        .join("deployment.yaml")
}

/// Reads, parses and validates the manifest of deployment `id` under `root`, including that
/// every stack's `path` exists.
pub fn load<C: ExecutorCatalog>(
    root: &Path,
    id: &str,
    catalog: &C,
) -> Result<Manifest<C::Executor>, ManifestError> {
    let (file, text) = read(root, id)?;
    let manifest = parse(&file, &text, catalog)?;
    manifest.check_paths().map_err(|e| e.with_source(&text))?;
    Ok(manifest)
}

/// The [`Header`] of deployment `id` under `root`: read without the stacks when the manifest
/// allows it ([`parse_header`]: a 10,000-stack manifest in milliseconds), else from the whole
/// manifest, validated (its errors said as `load` says them).
pub fn load_header<C: ExecutorCatalog>(
    root: &Path,
    id: &str,
    catalog: &C,
) -> Result<Header, ManifestError> {
    let (file, text) = read(root, id)?;
    if let Some(header) = parse_header(&file, &text) {
        return Ok(header);
    }
    Ok(parse(&file, &text, catalog)?.header())
}

/// The manifest file of deployment `id` and its text.
fn read(root: &Path, id: &str) -> Result<(PathBuf, String), ManifestError> {
    let deploy_dir = root.join("cloud").join("deploy");
    if let Err(why) = validate::check_folder_name(id) {
        return Err(ManifestError::new(
            &deploy_dir,
            Loc::default(),
            format!("invalid deployment id `{}`: {why}", id.escape_debug()),
            "a deployment id is the name of a folder under cloud/deploy/: letters, digits, \
             `.`, `_` and `-`, starting with a letter or digit (e.g. D1BRV40)",
        ));
    }
    let file = manifest_path(root, id);
    let bytes = match std::fs::read(&file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(missing_manifest(root, &deploy_dir, &file, id))
        }
        Err(e) => {
            return Err(ManifestError::new(
                &file,
                Loc::default(),
                format!("cannot read the manifest: {e}"),
                format!("make {} a readable file", file.display()),
            ))
        }
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let (line, column) = line_col_of_byte(e.as_bytes(), e.utf8_error().valid_up_to());
            return Err(ManifestError::new(
                &file,
                Loc { line, column },
                "the manifest is not valid UTF-8",
                "save deployment.yaml as UTF-8",
            ));
        }
    };
    Ok((file, text))
}

/// The deployments under `root` (folders of `cloud/deploy/` holding a manifest), sorted.
pub fn deployments(root: &Path) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(root.join("cloud").join("deploy"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().join("deployment.yaml").is_file())
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

fn missing_manifest(root: &Path, deploy_dir: &Path, file: &Path, id: &str) -> ManifestError {
    let found = deployments(root);
    let help = if found.is_empty() {
        format!(
            "no deployments found under {}; run from the folder that holds cloud/deploy/, \
             or pass `--root DIR` (or set CLOUD_ROOT)",
            deploy_dir.display()
        )
    } else {
        let names: Vec<&str> = found.iter().map(String::as_str).collect();
        format!(
            "{}deployments under {}: {}; or pass `--root DIR` (or set CLOUD_ROOT) to use \
             another root",
            did_you_mean(id, &names),
            deploy_dir.display(),
            list(&names)
        )
    };
    ManifestError::new(
        file,
        Loc::default(),
        format!(
            "no manifest for deployment `{id}`: {} does not exist (root: {})",
            file.display(),
            root.display()
        ),
        help,
    )
}

fn line_col_of_byte(bytes: &[u8], offset: usize) -> (u64, u64) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count() as u64
        + 1;
    (line, column)
}

impl Header {
    /// Checks that `env` is one of the manifest's `environments`.
    pub fn check_environment(&self, env: &str) -> Result<(), ManifestError> {
        if self.environments.iter().any(|e| e == env) {
            return Ok(());
        }
        let names: Vec<&str> = self.environments.iter().map(String::as_str).collect();
        Err(ManifestError::new(
            &self.file,
            self.environments_at,
            format!(
                "environment `{}` is not listed in the manifest",
                env.escape_debug()
            ),
            format!(
                "{}use one of: {}; or add `{}` to `environments`",
                did_you_mean(env, &names),
                list(&names),
                env.escape_debug()
            ),
        ))
    }
}

impl<E> Manifest<E> {
    /// What commands that read runs need of it.
    pub fn header(&self) -> Header {
        Header {
            file: self.file.clone(),
            dir: self.dir.clone(),
            deployment_id: self.deployment_id.clone(),
            environments: self.environments.clone(),
            environments_at: self.environments_at,
            event_store: self.event_store.clone(),
        }
    }

    /// Checks that every stack's `path` is an existing folder.
    pub fn check_paths(&self) -> Result<(), ManifestError> {
        for stack in &self.stacks {
            let problem = match std::fs::metadata(&stack.path) {
                Ok(m) if m.is_dir() => continue,
                Ok(_) => "is not a folder",
                Err(_) => "does not exist",
            };
            return Err(ManifestError::new(
                &self.file,
                stack.at,
                format!(
                    "the path of stack `{}` {problem}: {}",
                    stack.name,
                    stack.path.display()
                ),
                format!(
                    "create that folder, or fix `path:` of `{}` (it is relative to {})",
                    stack.name,
                    display_dir(&self.dir)
                ),
            ));
        }
        Ok(())
    }

    /// Checks that `env` is one of the manifest's `environments`.
    pub fn check_environment(&self, env: &str) -> Result<(), ManifestError> {
        self.header().check_environment(env)
    }

    /// Checks that every environment variable an input reads is set.
    pub fn check_inputs_env(&self) -> Result<(), ManifestError> {
        for stack in &self.stacks {
            for input in &stack.inputs {
                if let Some(var) = input.env_vars().find(|v| std::env::var_os(v).is_none()) {
                    return Err(ManifestError::new(
                        &self.file,
                        input.at,
                        format!(
                            "input `{}` of stack `{}` reads ${{env:{var}}}, which is not set",
                            input.name, stack.name
                        ),
                        format!("set {var} in the environment, e.g. `export {var}=...`"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The stack called `name`.
    pub fn stack(&self, name: &str) -> Option<&StackSpec<E>> {
        self.stacks.iter().find(|s| s.name == name)
    }
}

pub(crate) fn display_dir(dir: &Path) -> String {
    if dir.as_os_str().is_empty() {
        ".".into()
    } else {
        dir.display().to_string()
    }
}
