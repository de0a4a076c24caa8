//! The stack's keys (`binary`, `workspace`, `varFiles`), checked when the manifest is read,
//! and which program runs it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{TerraformStack, BINARIES, BIN_ENV, ENVIRONMENT};
use crate::executor::{Configured, Executor, NotReady};
use crate::manifest::{did_you_mean, ManifestResult, StackEntry};

pub struct Terraform;

impl Executor for Terraform {
    fn name(&self) -> &'static str {
        "terraform"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["binary", "workspace", "varFiles"]
    }

    fn configure(&self, entry: &StackEntry<'_>) -> ManifestResult<Configured> {
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

impl TerraformStack {
    /// The program to run: `CLOUD_TERRAFORM_BIN`, else `binary:`, else `tofu` when on PATH,
    /// else `terraform`. The error says what is missing and how to fix it.
    pub(super) fn program(&self, stack: &str) -> Result<PathBuf, NotReady> {
        if let Some(bin) = std::env::var_os(BIN_ENV).filter(|v| !v.is_empty()) {
            let bin = PathBuf::from(bin);
            let on_path = bin.components().count() == 1;
            return locate(&bin).ok_or_else(|| {
                NotReady::new(
                    format!(
                        "{BIN_ENV} is `{}`, which {} (it runs stack `{stack}`)",
                        bin.display(),
                        if on_path {
                            "is not on PATH"
                        } else {
                            "does not exist or is not executable"
                        }
                    ),
                    format!("point {BIN_ENV} at the tofu or terraform program, or unset it"),
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
                NotReady::new(
                    format!(
                        "stack `{stack}` runs `{name}` (`binary: {name}`), which is not on PATH"
                    ),
                    format!("install {product} ({url}), or set {BIN_ENV} to the program's path"),
                )
            }),
            None => on_path("tofu")
                .or_else(|| on_path("terraform"))
                .ok_or_else(|| {
                    NotReady::new(
                        format!(
                            "stack `{stack}` needs OpenTofu or Terraform, but neither `tofu` nor \
                             `terraform` is on PATH"
                        ),
                        format!(
                            "install OpenTofu (https://opentofu.org/docs/intro/install/) or \
                             Terraform, or set {BIN_ENV} to the program's path"
                        ),
                    )
                }),
        }
    }

    /// Before anything runs: the program is installed, `path` holds a root module, the var
    /// files that do not depend on the environment exist.
    pub(super) fn check(&self, stack: &str, path: &Path) -> Result<(), NotReady> {
        self.program(stack)?;
        if !has_configuration(path) {
            return Err(NotReady::new(
                format!(
                    "stack `{stack}` has no OpenTofu/Terraform configuration: {} holds no `*.tf` \
                     or `*.tofu` files",
                    path.display()
                ),
                format!(
                    "point `path:` of `{stack}` at its root module, the folder with its .tf files"
                ),
            ));
        }
        for file in self.var_files.iter().filter(|f| !f.contains(ENVIRONMENT)) {
            let at = path.join(file);
            if !at.is_file() {
                return Err(NotReady::new(
                    format!(
                        "var file `{file}` of stack `{stack}` does not exist: {}",
                        at.display()
                    ),
                    format!(
                        "create it, or fix `varFiles:` of `{stack}` (files are relative to its `path`)"
                    ),
                ));
            }
        }
        Ok(())
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
