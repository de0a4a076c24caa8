//! The deployment manifest: `<root>/cloud/deploy/<ID>/deployment.yaml`, parsed and validated.
//!
//! Every problem becomes a [`ManifestError`] naming the file, line:column and the fix.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A validated manifest. Stacks keep the order of the file.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The `deployment.yaml` that was read.
    pub file: PathBuf,
    /// The folder holding it; stack paths are relative to this.
    pub dir: PathBuf,
    pub deployment_id: String,
    pub environments: Vec<String>,
    /// Where `environments` is written, for "environment not listed" errors.
    pub environments_at: Loc,
    pub parallelism: Option<usize>,
    pub stacks: Vec<StackSpec>,
    /// `notifications:` kept raw until the notifier lands.
    pub notifications: Option<serde_json::Value>,
    /// `eventStore:` kept raw until the DynamoDB sink lands.
    pub event_store: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Loc {
    pub line: u64,
    pub column: u64,
}

#[derive(Debug, Clone)]
pub struct StackSpec {
    pub name: String,
    pub dependencies: Vec<String>,
    pub executor: ExecutorSpec,
    /// Outputs declared in the manifest (the simulate executor reports them).
    pub outputs: BTreeMap<String, serde_json::Value>,
    /// `path` joined onto the manifest's folder (the manifest's folder when absent).
    pub path: PathBuf,
    /// Where the stack's name is written.
    pub at: Loc,
}

#[derive(Debug, Clone)]
pub enum ExecutorSpec {
    Simulate {
        resources: Vec<SimResource>,
    },
    Command {
        deploy: String,
        destroy: Option<String>,
    },
    Pulumi,
}

#[derive(Debug, Clone)]
pub struct SimResource {
    pub type_: String,
    pub name: String,
    pub seconds: f64,
    /// When set, the resource fails with this message.
    pub fail: Option<String>,
    /// The id reported when created; a made-up one otherwise.
    pub id: Option<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.render())]
pub struct ManifestError {
    pub file: PathBuf,
    pub at: Loc,
    pub message: String,
    pub help: String,
}

impl ManifestError {
    pub fn render(&self) -> String {
        todo_render(self)
    }
}

fn todo_render(e: &ManifestError) -> String {
    format!(
        "{}\n  --> {}:{}:{}\n  help: {}",
        e.message,
        e.file.display(),
        e.at.line,
        e.at.column,
        e.help
    )
}

/// Path of the manifest of deployment `id` under `root`.
pub fn manifest_path(root: &Path, id: &str) -> PathBuf {
    root.join("cloud")
        .join("deploy")
        .join(id)
        .join("deployment.yaml")
}
