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

mod config;
mod drift;
mod run;
mod stream;

use std::sync::Arc;

use super::{BoxFuture, Job, NotReady, Updates};
use crate::event::ErrorCode;

pub use config::Terraform;

/// Overrides the program for every Terraform stack (a path, or a name looked up on PATH).
pub const BIN_ENV: &str = "CLOUD_TERRAFORM_BIN";
/// The programs `binary:` may name.
const BINARIES: &[&str] = &["tofu", "terraform"];
/// Replaced by the environment's name in `varFiles`.
const ENVIRONMENT: &str = "${environment}";
/// Written into the data folder after `init` succeeded: init runs again when the dependency
/// lock file is newer.
const INIT_STAMP: &str = "cloud-init.stamp";
/// The saved plan, in the stack's scratch folder.
const PLAN_FILE: &str = "plan.tfplan";
/// Lines of stderr (and of stdout that is not JSON) kept for a failure's details.
const TAIL: usize = 20;
/// The code of every Terraform failure that is not more specific.
const CODE: ErrorCode = ErrorCode::TerraformError;
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

    fn preflight(&self, spec: &super::StackSpec) -> Result<(), NotReady> {
        self.check(&spec.name, &spec.path)
    }

    fn deploy(self: Arc<Self>, job: Job, updates: Updates) -> BoxFuture {
        Box::pin(async move { self.run(&job, &updates).await })
    }

    fn destroy(self: Arc<Self>, job: Job, updates: Updates) -> BoxFuture {
        Box::pin(async move { self.run(&job, &updates).await })
    }

    fn plan(self: Arc<Self>, job: Job, updates: Updates) -> Option<BoxFuture> {
        Some(Box::pin(async move { self.preview(&job, &updates).await }))
    }

    fn no_drift_check(&self) -> Option<String> {
        None
    }

    fn drift(self: Arc<Self>, job: Job, updates: Updates) -> BoxFuture {
        Box::pin(async move { self.check_drift(&job, &updates).await })
    }

    fn read_outputs(self: Arc<Self>, job: Job, updates: Updates) -> Option<BoxFuture> {
        Some(Box::pin(
            async move { self.output_values(&job, &updates).await },
        ))
    }
}
