//! Saved plans: `cloud plan … --out DIR` writes what was reviewed (`plan.json` and each stack's
//! tool plan file); `cloud deploy … --plan DIR` reads it back and refuses, before anything runs,
//! when what the plan was made from changed since.
//!
//! `plan.json` holds digests, counts, resource labels and reasons, never a value: the tool's
//! own plan files may hold secrets, so the folder is 0700 and every file 0600.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::event::{Outputs, PlanCounts};
use crate::manifest::fingerprint_hex as hex;
use crate::manifest::Input;
use crate::progress::PlannedResource;

/// The file `--out` writes in its folder.
pub const PLAN_JSON: &str = "plan.json";
pub const VERSION: u32 = 1;

/// What `plan.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedPlan {
    pub version: u32,
    pub deployment_id: String,
    pub environment: String,
    /// The manifest file's bytes.
    pub manifest_digest: String,
    /// `git rev-parse HEAD` of the deployment's folder, when it is in a repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    /// When the plan was made (RFC 3339).
    pub created: String,
    /// The stacks the plan would change or run; the only ones `deploy --plan` deploys.
    pub stacks: BTreeMap<String, SavedStack>,
}

/// One planned stack.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedStack {
    /// Its fingerprint as a deploy computes it (entry, environment, files, dependencies' outputs).
    pub fingerprint: String,
    /// The files under its `path`.
    pub files: String,
    /// The inputs it was planned with: its dependencies' outputs as shown.
    pub inputs: String,
    pub counts: PlanCounts,
    pub changes: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<PlannedResource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provisional: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_preview: Option<String>,
    /// The tool's plan file, by name inside the folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_file: Option<String>,
}

/// The digests the orchestrator records of each stack it plans (and checks when it deploys a
/// saved plan).
#[derive(Debug, Clone, Default)]
pub struct StackDigests {
    pub fingerprint: String,
    pub files: String,
    pub inputs: String,
    /// Where the tool left its plan file (in the run's scratch folder).
    pub plan_file: Option<PathBuf>,
}

/// The digest of a stack's inputs: its dependencies' outputs as shown (secret ones are
/// `[secret]` there) and the environment variables its non-secret inputs read. A secret
/// input's value is never digested: a digest would let anyone holding the plan check a guess.
pub fn inputs_digest(
    environment: &str,
    inputs: &[Input],
    dependency_outputs: &[(&str, &Outputs)],
) -> String {
    let env: Vec<String> = inputs
        .iter()
        .filter(|input| !input.secret)
        .flat_map(|input| input.env_vars())
        .map(|var| format!("{var}={:?}", std::env::var(var).ok()))
        .collect();
    super::fingerprint::stack("", environment, &env.join("\0"), dependency_outputs)
}

/// The digest of the manifest file as read.
pub fn manifest_digest(file: &Path) -> Result<String, Error> {
    let bytes = fs::read(file)
        .map_err(|e| Error::failed(format!("cannot read {}: {e}", file.display())))?;
    Ok(hex(&Sha256::digest(&bytes)))
}

/// The commit checked out where the deployment lives, when it is in a git repository.
pub fn git_commit(dir: &Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let commit = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !commit.is_empty()).then_some(commit)
}

impl SavedPlan {
    /// Writes the folder: each tool plan file copied in as `<stack>.<ext>`, then `plan.json`.
    pub fn write(
        mut self,
        dir: &Path,
        tool_files: &BTreeMap<String, PathBuf>,
    ) -> Result<(), Error> {
        let fail = |what: &Path, e: std::io::Error| {
            Error::failed(format!(
                "cannot write the saved plan {}: {e}\n  help: check that the folder can be written, then plan again",
                what.display()
            ))
        };
        private_dir(dir).map_err(|e| fail(dir, e))?;
        // A plan saved here before: its tool files (which may hold secrets) go with it, so the
        // folder holds one plan and nothing stale beside it.
        if let Ok(old) = Self::read(dir) {
            for name in old.stacks.values().filter_map(|s| s.plan_file.as_deref()) {
                let stale = dir.join(name);
                if Path::new(name).file_name() == Some(name.as_ref()) && stale.is_file() {
                    fs::remove_file(&stale).map_err(|e| fail(&stale, e))?;
                }
            }
        }
        for (stack, from) in tool_files {
            let Some(saved) = self.stacks.get_mut(stack) else {
                continue;
            };
            // `<stack>.tfplan`; a JSON plan (Pulumi's) never as `plan.json`, whatever the stack.
            let name = match from.extension().and_then(|e| e.to_str()) {
                Some("json") | None => format!("{stack}.plan.json"),
                Some(ext) => format!("{stack}.{ext}"),
            };
            let to = dir.join(&name);
            let bytes = fs::read(from).map_err(|e| fail(from, e))?;
            private_file(&to, &bytes).map_err(|e| fail(&to, e))?;
            saved.plan_file = Some(name);
        }
        let json = serde_json::to_vec_pretty(&self).expect("a saved plan serializes");
        let file = dir.join(PLAN_JSON);
        private_file(&file, &json).map_err(|e| fail(&file, e))
    }

    /// Reads `DIR/plan.json` (bad input when it is missing or not a plan).
    pub fn read(dir: &Path) -> Result<SavedPlan, Error> {
        let file = dir.join(PLAN_JSON);
        let text = fs::read_to_string(&file).map_err(|e| {
            Error::input(format!(
                "cannot read the saved plan {}: {e}\n  help: give --plan the folder `cloud plan … --out DIR` wrote",
                file.display()
            ))
        })?;
        let plan: SavedPlan = serde_json::from_str(&text).map_err(|e| {
            Error::input(format!(
                "{} is not a saved plan: {e}\n  help: plan again with `cloud plan … --out DIR`",
                file.display()
            ))
        })?;
        if plan.version != VERSION {
            return Err(Error::input(format!(
                "{} is a version {} saved plan; this cloud reads version {VERSION}\n  help: plan again with this cloud",
                file.display(),
                plan.version
            )));
        }
        Ok(plan)
    }

    /// A plan of another deployment or environment is bad input.
    pub fn check_target(
        &self,
        deployment: &str,
        environment: &str,
        dir: &Path,
    ) -> Result<(), Error> {
        if self.deployment_id == deployment && self.environment == environment {
            return Ok(());
        }
        Err(Error::input(format!(
            "the saved plan {} is for {} -e {}, not {deployment} -e {environment}\n  help: give --plan the folder planned for this deployment and environment",
            dir.display(),
            self.deployment_id,
            self.environment
        )))
    }

    /// What changed since the plan: the manifest, and per planned stack its files and (unless
    /// it was provisional: then its dependencies' apply decides) its inputs. `now` is, per
    /// stack of the deployment, its name, files' fingerprint and inputs' digest now.
    pub fn changes(&self, manifest_digest: &str, now: &[(&str, Option<&str>, String)]) -> Changed {
        let mut changed = Vec::new();
        if manifest_digest != self.manifest_digest {
            changed.push("the manifest (deployment.yaml) changed".to_owned());
        }
        for (name, reviewed) in &self.stacks {
            let Some((_, files, inputs)) = now.iter().find(|(n, _, _)| n == name) else {
                changed.push(format!("`{name}`: no longer in the manifest"));
                continue;
            };
            if *files != Some(reviewed.files.as_str()) {
                changed.push(format!("`{name}`: its files changed"));
            }
            // A provisional stack's inputs change as its dependencies apply: it is planned
            // again then. One not previewed was reviewed as such.
            let expected = reviewed.provisional.is_empty() && reviewed.no_preview.is_none();
            if expected && *inputs != reviewed.inputs {
                changed.push(format!(
                    "`{name}`: its inputs changed (a dependency's outputs are not what they were)"
                ));
            }
        }
        Changed(changed)
    }

    /// The stacks it deploys.
    pub fn stack_names(&self) -> BTreeSet<String> {
        self.stacks.keys().cloned().collect()
    }

    /// The tool plan file of `stack`, in the folder `dir`.
    pub fn tool_file(&self, dir: &Path, stack: &str) -> Option<PathBuf> {
        let name = self.stacks.get(stack)?.plan_file.as_ref()?;
        Some(dir.join(name))
    }
}

/// What changed since a plan, before anything runs: each line one stack (or the manifest).
#[derive(Debug, Default)]
pub struct Changed(pub Vec<String>);

impl Changed {
    /// Refuses the deploy (exit 1) when anything changed.
    pub fn refuse(self, dir: &Path) -> Result<(), Error> {
        if self.0.is_empty() {
            return Ok(());
        }
        Err(Error::failed(format!(
            "the saved plan {} no longer matches what it would deploy:\n{}\n  help: plan again (`cloud plan … --out {}`), review it, then deploy that plan",
            dir.display(),
            self.0
                .iter()
                .map(|l| format!("  - {l}"))
                .collect::<Vec<_>>()
                .join("\n"),
            dir.display()
        )))
    }
}

fn private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    set_mode(dir, 0o700)
}

fn private_file(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(file)?;
    // An existing file keeps its mode when opened: set it.
    set_mode(file, 0o600)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> std::io::Result<()> {
    Ok(())
}

/// `deploy --plan DIR`: the reviewed plan, where it is, and whether a provisional stack whose
/// inputs changed may be applied afresh.
#[derive(Debug, Clone)]
pub struct SavedApply {
    pub plan: SavedPlan,
    pub dir: PathBuf,
    pub accept_replans: bool,
}
