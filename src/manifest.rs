//! The deployment manifest: `<root>/cloud/deploy/<ID>/deployment.yaml`, parsed and validated.
//!
//! Every problem becomes a [`ManifestError`] naming the file, line:column and the fix.
//!
//! The YAML is first read into a small tree of nodes that remember where they were written
//! (serde-saphyr's [`Spanned`]), then validated by hand so that every message can point at
//! the offending key or value and suggest the fix.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

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
    /// 1-based; `line == 0` when the problem has no place in the file (e.g. it is missing).
    pub at: Loc,
    pub message: String,
    pub help: String,
}

impl ManifestError {
    /// ```text
    /// error: unknown dependency `netwrk` in stack `security`
    ///   --> cloud/deploy/D1BRV40/deployment.yaml:12:19
    ///   help: did you mean `network`? Known stacks: network, secrets, dns
    /// ```
    pub fn render(&self) -> String {
        let file = self.file.strip_prefix(".").unwrap_or(&self.file);
        let mut out = format!("error: {}\n  --> {}", self.message, file.display());
        if self.at.line > 0 {
            out.push_str(&format!(":{}:{}", self.at.line, self.at.column));
        }
        if !self.help.is_empty() {
            out.push_str("\n  help: ");
            out.push_str(&self.help);
        }
        out
    }
}

/// Path of the manifest of deployment `id` under `root`.
pub fn manifest_path(root: &Path, id: &str) -> PathBuf {
    root.join("cloud")
        .join("deploy")
        .join(id)
        .join("deployment.yaml")
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

/// Reads, parses and validates the manifest of deployment `id` under `root`, including that
/// every stack's `path` exists.
pub fn load(root: &Path, id: &str) -> Result<Manifest, ManifestError> {
    let deploy_dir = root.join("cloud").join("deploy");
    if let Err(why) = check_folder_name(id) {
        return Err(ManifestError {
            file: deploy_dir,
            at: Loc::default(),
            message: format!("invalid deployment id `{}`: {why}", id.escape_debug()),
            help: "a deployment id is the name of a folder under cloud/deploy/: letters, digits, \
                   `.`, `_` and `-`, starting with a letter or digit (e.g. D1BRV40)"
                .into(),
        });
    }
    let file = manifest_path(root, id);
    let bytes = match std::fs::read(&file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(missing_manifest(root, &deploy_dir, &file, id))
        }
        Err(e) => {
            return Err(ManifestError {
                file: file.clone(),
                at: Loc::default(),
                message: format!("cannot read the manifest: {e}"),
                help: format!("make {} a readable file", file.display()),
            })
        }
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let (line, column) = line_col_of_byte(e.as_bytes(), e.utf8_error().valid_up_to());
            return Err(ManifestError {
                file,
                at: Loc { line, column },
                message: "the manifest is not valid UTF-8".into(),
                help: "save deployment.yaml as UTF-8".into(),
            });
        }
    };
    let manifest = parse(&file, &text)?;
    manifest.check_paths()?;
    Ok(manifest)
}

fn missing_manifest(root: &Path, deploy_dir: &Path, file: &Path, id: &str) -> ManifestError {
    let mut found: Vec<String> = std::fs::read_dir(deploy_dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().join("deployment.yaml").is_file())
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    let help = if found.is_empty() {
        format!(
            "no deployments found under {}; run from the folder that holds cloud/deploy/, \
             or pass `--root DIR` (or set CLOUD_ROOT)",
            deploy_dir.display()
        )
    } else {
        let names: Vec<&str> = found.iter().map(String::as_str).collect();
        let guess = match closest(id, &names) {
            Some(g) => format!("did you mean `{g}`? "),
            None => String::new(),
        };
        format!(
            "{guess}deployments under {}: {}; or pass `--root DIR` (or set CLOUD_ROOT) to use \
             another root",
            deploy_dir.display(),
            list(&names)
        )
    };
    ManifestError {
        file: file.to_path_buf(),
        at: Loc::default(),
        message: format!(
            "no manifest for deployment `{id}`: {} does not exist (root: {})",
            file.display(),
            root.display()
        ),
        help,
    }
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

impl Manifest {
    /// Checks that every stack's `path` is an existing folder.
    pub fn check_paths(&self) -> Result<(), ManifestError> {
        for stack in &self.stacks {
            let problem = match std::fs::metadata(&stack.path) {
                Ok(m) if m.is_dir() => continue,
                Ok(_) => "is not a folder",
                Err(_) => "does not exist",
            };
            return Err(ManifestError {
                file: self.file.clone(),
                at: stack.at,
                message: format!(
                    "the path of stack `{}` {problem}: {}",
                    stack.name,
                    stack.path.display()
                ),
                help: format!(
                    "create that folder, or fix `path:` of `{}` (it is relative to {})",
                    stack.name,
                    display_dir(&self.dir)
                ),
            });
        }
        Ok(())
    }

    /// Checks that `env` is one of the manifest's `environments`.
    pub fn check_environment(&self, env: &str) -> Result<(), ManifestError> {
        if self.environments.iter().any(|e| e == env) {
            return Ok(());
        }
        let names: Vec<&str> = self.environments.iter().map(String::as_str).collect();
        let guess = match closest(env, &names) {
            Some(g) => format!("did you mean `{g}`? "),
            None => String::new(),
        };
        Err(ManifestError {
            file: self.file.clone(),
            at: self.environments_at,
            message: format!(
                "environment `{}` is not listed in the manifest",
                env.escape_debug()
            ),
            help: format!(
                "{guess}use one of: {}; or add `{}` to `environments`",
                list(&names),
                env.escape_debug()
            ),
        })
    }

    /// The stack called `name`.
    pub fn stack(&self, name: &str) -> Option<&StackSpec> {
        self.stacks.iter().find(|s| s.name == name)
    }
}

fn display_dir(dir: &Path) -> String {
    if dir.as_os_str().is_empty() {
        ".".into()
    } else {
        dir.display().to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// A YAML tree that remembers where every node was written
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
enum Node {
    Null,
    Bool(bool),
    /// Integers beyond i64 become `Float` (they are no stack count, name or duration).
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<SNode>),
    Map(Vec<(SNode, SNode)>),
}

/// A node and where it was written. Kept small (not serde-saphyr's `Spanned`, three times the
/// size): a 10,000-stack manifest holds a million of them.
#[derive(Debug)]
struct SNode {
    value: Node,
    line: u32,
    column: u32,
    /// Byte offset and length of the text as written, when known.
    span: Option<(u32, u32)>,
}

impl<'de> Deserialize<'de> for SNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = Spanned::<Node>::deserialize(d)?;
        let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        let span = n.defined.span();
        Ok(SNode {
            line: clamp(n.referenced.line()),
            column: clamp(n.referenced.column()),
            span: span
                .byte_offset()
                .zip(span.byte_len())
                .and_then(|(o, l)| Some((u32::try_from(o).ok()?, u32::try_from(l).ok()?))),
            value: n.value,
        })
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NodeVisitor;
        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = Node;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a YAML value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
                Ok(Node::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
                Ok(i64::try_from(v).map_or(Node::Float(v as f64), Node::Int))
            }
            fn visit_i128<E>(self, v: i128) -> Result<Node, E> {
                Ok(i64::try_from(v).map_or(Node::Float(v as f64), Node::Int))
            }
            fn visit_u128<E>(self, v: u128) -> Result<Node, E> {
                Ok(i64::try_from(v).map_or(Node::Float(v as f64), Node::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
                Ok(Node::Float(v))
            }
            fn visit_char<E>(self, v: char) -> Result<Node, E> {
                Ok(Node::Str(v.to_string()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Str(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Node, E> {
                Ok(Node::Str(v))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Node, E> {
                match std::str::from_utf8(v) {
                    Ok(s) => Ok(Node::Str(s.to_owned())),
                    Err(_) => Err(E::custom("binary data is not supported here")),
                }
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = a.next_element::<SNode>()? {
                    items.push(item);
                }
                items.shrink_to_fit();
                Ok(Node::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = a.next_key::<SNode>()? {
                    let value = a.next_value::<SNode>()?;
                    entries.push((key, value));
                }
                entries.shrink_to_fit();
                Ok(Node::Map(entries))
            }
        }
        d.deserialize_any(NodeVisitor)
    }
}

fn loc(n: &SNode) -> Loc {
    Loc {
        line: n.line.into(),
        column: n.column.into(),
    }
}

fn kind(n: &Node) -> &'static str {
    match n {
        Node::Null => "nothing (null)",
        Node::Bool(_) => "a boolean",
        Node::Int(_) | Node::Float(_) => "a number",
        Node::Str(_) => "a string",
        Node::Seq(_) => "a list",
        Node::Map(_) => "a mapping",
    }
}

/// The text of a scalar as written (so a stack called `00` or `1e3` keeps its name), if it is one.
fn scalar_text(source: &str, n: &SNode) -> Option<String> {
    let written = || {
        let (start, len) = n.span?;
        let (start, len) = (start as usize, len as usize);
        let raw = source.get(start..start.checked_add(len)?)?.trim();
        (!raw.is_empty() && !raw.contains(['\n', '\r', '#', '*', '&', '!'])).then(|| raw.to_owned())
    };
    match &n.value {
        Node::Str(s) => Some(s.clone()),
        Node::Int(i) => Some(written().unwrap_or_else(|| i.to_string())),
        Node::Float(f) => Some(written().unwrap_or_else(|| f.to_string())),
        Node::Bool(b) => Some(written().unwrap_or_else(|| b.to_string())),
        Node::Null | Node::Seq(_) | Node::Map(_) => None,
    }
}

fn read_yaml(text: &str) -> Result<SNode, serde_saphyr::Error> {
    use serde_saphyr::options::{DuplicateKeyPolicy, NonFiniteFloatPolicy};
    let options = serde_saphyr::options! {
        // Duplicates are reported by the validator, with both places.
        duplicate_keys: DuplicateKeyPolicy::PassThrough,
        with_snippet: false,
        // `no`, `on`, `yes` stay strings (environment and stack names).
        strict_booleans: true,
        reject_unsupported_tags: true,
        non_finite_float_policy: NonFiniteFloatPolicy::PassThrough,
        // Keep the recursion of the node tree shallow enough for any thread's stack, and let
        // big manifests in (10,000 stacks × 10 resources is ~1M nodes, ~3M events).
        budget: serde_saphyr::budget! {
            max_depth: 48,
            flow_nesting_limit: 48,
            max_nodes: 20_000_000,
            max_events: 60_000_000,
        },
    };
    serde_saphyr::from_str_with_options(text, options)
}

// ---------------------------------------------------------------------------------------------
// Parsing and validation
// ---------------------------------------------------------------------------------------------

const TOP_KEYS: &[&str] = &[
    "deploymentId",
    "environments",
    "parallelism",
    "defaults",
    "stacks",
    "notifications",
    "eventStore",
];
const DEFAULTS_KEYS: &[&str] = &["executor"];
const STACK_KEYS: &[&str] = &[
    "dependencies",
    "executor",
    "resources",
    "outputs",
    "path",
    "deploy",
    "destroy",
];
const RESOURCE_KEYS: &[&str] = &["type", "name", "seconds", "fail", "id"];
const EXECUTORS: &[&str] = &["pulumi", "command", "simulate"];

struct Ctx<'a> {
    file: &'a Path,
    /// The manifest's text, to read scalars as written.
    source: &'a str,
}

type Res<T> = Result<T, ManifestError>;

impl Ctx<'_> {
    fn err(&self, at: Loc, message: impl Into<String>, help: impl Into<String>) -> ManifestError {
        ManifestError {
            file: self.file.to_path_buf(),
            at,
            message: message.into(),
            help: help.into(),
        }
    }

    fn wrong_type(&self, n: &SNode, what: &str, expected: &str, example: &str) -> ManifestError {
        self.err(
            loc(n),
            format!("{what} must be {expected}, found {}", kind(&n.value)),
            format!("write it like `{example}`"),
        )
    }

    /// The entries of a mapping, with string keys; rejects other key types and duplicates.
    fn entries<'n>(
        &self,
        n: &'n SNode,
        what: &str,
        example: &str,
    ) -> Res<Vec<(String, Loc, &'n SNode)>> {
        let Node::Map(map) = &n.value else {
            return Err(self.wrong_type(n, what, "a mapping", example));
        };
        let mut seen: HashMap<String, Loc> = HashMap::new();
        let mut out = Vec::with_capacity(map.len());
        for (k, v) in map {
            let Some(key) = scalar_text(self.source, k) else {
                return Err(self.err(
                    loc(k),
                    format!(
                        "keys of {what} must be plain names, found {}",
                        kind(&k.value)
                    ),
                    "use a plain name followed by `:`",
                ));
            };
            if let Some(first) = seen.get(&key) {
                return Err(self.err(
                    loc(k),
                    format!("duplicate key `{}` in {what}", key.escape_debug()),
                    format!(
                        "`{}` is already set at line {}; keep only one of them",
                        key.escape_debug(),
                        first.line
                    ),
                ));
            }
            seen.insert(key.clone(), loc(k));
            out.push((key, loc(k), v));
        }
        Ok(out)
    }

    fn unknown_key(&self, key: &str, at: Loc, what: &str, allowed: &[&str]) -> ManifestError {
        let guess = match closest(key, allowed) {
            Some(g) => format!("did you mean `{g}`? "),
            None => String::new(),
        };
        self.err(
            at,
            format!("unknown key `{}` in {what}", key.escape_debug()),
            format!("{guess}allowed keys: {}", list(allowed)),
        )
    }

    /// A string value (numbers and booleans are taken as written).
    fn string(&self, n: &SNode, what: &str, example: &str) -> Res<String> {
        match &n.value {
            Node::Seq(_) | Node::Map(_) | Node::Null => {
                Err(self.wrong_type(n, what, "a string", example))
            }
            _ => Ok(scalar_text(self.source, n).unwrap_or_default()),
        }
    }

    fn nonempty_string(&self, n: &SNode, what: &str, example: &str) -> Res<String> {
        let s = self.string(n, what, example)?;
        if s.trim().is_empty() {
            return Err(self.err(
                loc(n),
                format!("{what} is empty"),
                format!("write it like `{example}`"),
            ));
        }
        Ok(s)
    }

    fn json(&self, n: &SNode) -> Res<serde_json::Value> {
        use serde_json::Value;
        Ok(match &n.value {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(i) => Value::from(*i),
            Node::Float(f) => self.finite(n, *f)?,
            Node::Str(s) => Value::String(s.clone()),
            Node::Seq(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.json(i))
                    .collect::<Res<Vec<_>>>()?,
            ),
            Node::Map(_) => {
                let mut obj = serde_json::Map::new();
                for (k, _, v) in self.entries(n, "this mapping", "key: value")? {
                    obj.insert(k, self.json(v)?);
                }
                Value::Object(obj)
            }
        })
    }

    fn finite(&self, n: &SNode, f: f64) -> Res<serde_json::Value> {
        serde_json::Number::from_f64(f)
            .map(serde_json::Value::Number)
            .ok_or_else(|| {
                self.err(
                    loc(n),
                    "this number is not finite",
                    "write a finite number, or quote it to keep it as text",
                )
            })
    }
}

/// Parses and validates a manifest. `file` is where `text` was read from: its folder is the
/// deployment folder (stack paths are relative to it, and a `deploymentId` must equal its
/// name). Does no I/O; see [`Manifest::check_paths`].
pub fn parse(file: &Path, text: &str) -> Result<Manifest, ManifestError> {
    let cx = Ctx { file, source: text };
    let root = match read_yaml(text) {
        Ok(root) => root,
        Err(e) => return Err(yaml_error(&cx, &e)),
    };
    let start = loc(&root);
    let example_top = "environments: [dev, prod]";
    if matches!(root.value, Node::Null) {
        return Err(cx.err(
            Loc { line: 1, column: 1 },
            "the manifest is empty",
            "list at least `environments:` and `stacks:`, e.g. \
             `environments: [dev]` and `stacks: { app: { executor: simulate } }`",
        ));
    }
    if !matches!(root.value, Node::Map(_)) {
        return Err(cx.err(
            start,
            format!(
                "the manifest must be a mapping, found {}",
                kind(&root.value)
            ),
            format!("start with top-level keys: {}", list(TOP_KEYS)),
        ));
    }

    let dir = match file.parent() {
        Some(p) => p.to_path_buf(),
        None => PathBuf::new(),
    };
    let folder = dir.file_name().and_then(|n| n.to_str()).map(str::to_owned);

    let mut deployment_id = None;
    let mut environments: Option<(Vec<String>, Loc)> = None;
    let mut parallelism = None;
    let mut default_executor: Option<(Exec, Loc)> = None;
    let mut stacks_node = None;
    let mut notifications = None;
    let mut event_store = None;

    for (key, key_at, value) in cx.entries(&root, "the manifest", example_top)? {
        match key.as_str() {
            "deploymentId" => {
                let id = cx.nonempty_string(value, "`deploymentId`", "deploymentId: D1BRV40")?;
                if let Err(why) = check_folder_name(&id) {
                    return Err(cx.err(
                        loc(value),
                        format!("invalid deploymentId `{}`: {why}", id.escape_debug()),
                        "use letters, digits, `.`, `_` and `-`, starting with a letter or digit \
                         (it is the name of the deployment's folder)",
                    ));
                }
                if let Some(folder) = &folder {
                    if *folder != id {
                        return Err(cx.err(
                            loc(value),
                            format!(
                                "deploymentId `{id}` does not match the folder name `{folder}`"
                            ),
                            format!(
                                "set `deploymentId: {folder}` (or remove it), or move the \
                                 manifest to cloud/deploy/{id}/"
                            ),
                        ));
                    }
                }
                deployment_id = Some(id);
            }
            "environments" => {
                environments = Some((parse_environments(&cx, value)?, loc(value)));
            }
            "parallelism" => parallelism = Some(parse_parallelism(&cx, value)?),
            "defaults" => {
                let example = "defaults: { executor: pulumi }";
                if matches!(value.value, Node::Null) {
                    continue;
                }
                for (k, k_at, v) in cx.entries(value, "`defaults`", example)? {
                    if k != "executor" {
                        return Err(cx.unknown_key(&k, k_at, "`defaults`", DEFAULTS_KEYS));
                    }
                    default_executor = Some((parse_executor(&cx, v)?, loc(v)));
                }
            }
            "stacks" => stacks_node = Some((value, key_at)),
            "notifications" => {
                notifications =
                    match &value.value {
                        Node::Null => None,
                        Node::Map(_) => Some(cx.json(value)?),
                        _ => return Err(cx.wrong_type(
                            value,
                            "`notifications`",
                            "a mapping",
                            "notifications: { slack: { webhookUrl: \"${SLACK_WEBHOOK_URL}\" } }",
                        )),
                    }
            }
            "eventStore" => {
                event_store = match &value.value {
                    Node::Null => None,
                    Node::Map(_) => Some(cx.json(value)?),
                    _ => {
                        return Err(cx.wrong_type(
                            value,
                            "`eventStore`",
                            "a mapping",
                            "eventStore: { dynamodb: { table: cloud-deployment-events } }",
                        ))
                    }
                }
            }
            _ => return Err(cx.unknown_key(&key, key_at, "the manifest", TOP_KEYS)),
        }
    }

    let Some((environments, environments_at)) = environments else {
        return Err(cx.err(
            start,
            "the manifest lists no `environments`",
            "add the environments it may be deployed to, e.g. `environments: [dev, stage, prod]`",
        ));
    };
    let deployment_id = match (deployment_id, folder) {
        (Some(id), _) => id,
        (None, Some(folder)) => folder,
        (None, None) => return Err(cx.err(
            start,
            "the deployment id is unknown: the manifest is not in a deployment folder",
            "add `deploymentId: <ID>`, or keep the manifest at cloud/deploy/<ID>/deployment.yaml",
        )),
    };
    let Some((stacks_value, stacks_key_at)) = stacks_node else {
        return Err(cx.err(
            start,
            "the manifest has no `stacks`",
            "add the stacks to deploy, e.g. `stacks: { app: { executor: simulate } }`",
        ));
    };
    let stacks = parse_stacks(&cx, stacks_value, stacks_key_at, &dir, default_executor)?;

    Ok(Manifest {
        file: file.to_path_buf(),
        dir,
        deployment_id,
        environments,
        environments_at,
        parallelism,
        stacks,
        notifications,
        event_store,
    })
}

fn yaml_error(cx: &Ctx, e: &serde_saphyr::Error) -> ManifestError {
    use serde_saphyr::MessageFormatter;
    let e = e.without_snippet();
    let at = e
        .location()
        .map(|l| Loc {
            line: l.line(),
            column: l.column(),
        })
        .filter(|l| l.line > 0)
        .unwrap_or(Loc { line: 1, column: 1 });
    let raw = serde_saphyr::UserMessageFormatter.format_message(e);
    // One line, no control characters, bounded length.
    let mut message: String = raw
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if message.chars().count() > 200 {
        message = message.chars().take(200).collect::<String>() + "…";
    }
    let lower = message.to_lowercase();
    let help = if lower.contains("multiple") && lower.contains("document") {
        "keep a single YAML document in deployment.yaml (remove the extra `---`)"
    } else if lower.contains("tag") {
        "remove the `!tag`; the manifest uses plain YAML values only"
    } else if lower.contains("budget") || lower.contains("depth") || lower.contains("nesting") {
        "the manifest is nested too deeply or is too large; simplify it"
    } else if lower.contains("alias") || lower.contains("anchor") || lower.contains("reference") {
        "define the anchor (`&name`) before using it (`*name`)"
    } else {
        "fix the YAML syntax here: check the indentation, the `:` after each key, and that \
         quotes and brackets are closed"
    };
    cx.err(at, format!("invalid YAML: {message}"), help)
}

/// A deployment id / environment: a single, portable folder or file name part.
fn check_folder_name(s: &str) -> Result<(), &'static str> {
    let mut chars = s.chars();
    match chars.next() {
        None => return Err("it is empty"),
        Some(c) if !c.is_ascii_alphanumeric() => {
            return Err("it must start with a letter or digit")
        }
        Some(_) => {}
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
        return Err("only letters, digits, `.`, `_` and `-` are allowed");
    }
    if s.len() > 128 {
        return Err("it is longer than 128 characters");
    }
    Ok(())
}

fn parse_environments(cx: &Ctx, n: &SNode) -> Res<Vec<String>> {
    let example = "environments: [dev, stage, prod]";
    let items = match &n.value {
        Node::Seq(items) => items,
        Node::Null => {
            return Err(cx.err(
                loc(n),
                "`environments` is empty",
                format!("list at least one environment, e.g. `{example}`"),
            ))
        }
        _ => return Err(cx.wrong_type(n, "`environments`", "a list", example)),
    };
    if items.is_empty() {
        return Err(cx.err(
            loc(n),
            "`environments` is empty",
            format!("list at least one environment, e.g. `{example}`"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let env = cx.nonempty_string(item, "an environment", example)?;
        if let Err(why) = check_folder_name(&env) {
            return Err(cx.err(
                loc(item),
                format!("invalid environment name `{}`: {why}", env.escape_debug()),
                "use letters, digits, `.`, `_` and `-`, starting with a letter or digit",
            ));
        }
        if out.contains(&env) {
            return Err(cx.err(
                loc(item),
                format!("environment `{env}` is listed twice"),
                "list each environment once",
            ));
        }
        out.push(env);
    }
    Ok(out)
}

fn parse_parallelism(cx: &Ctx, n: &SNode) -> Res<usize> {
    let help = "set a positive whole number like `parallelism: 4`, or remove it for no limit";
    match &n.value {
        Node::Int(0) => Err(cx.err(loc(n), "`parallelism` must be at least 1", help)),
        Node::Int(i) if *i < 0 => Err(cx.err(
            loc(n),
            format!("`parallelism` must be at least 1, found {i}"),
            help,
        )),
        Node::Int(i) => Ok(usize::try_from(*i).unwrap_or(usize::MAX)),
        other => Err(cx.err(
            loc(n),
            format!(
                "`parallelism` must be a whole number, found {}",
                kind(other)
            ),
            help,
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exec {
    Pulumi,
    Command,
    Simulate,
}

fn parse_executor(cx: &Ctx, n: &SNode) -> Res<Exec> {
    let name = cx.string(n, "`executor`", "executor: pulumi")?;
    match name.as_str() {
        "pulumi" => Ok(Exec::Pulumi),
        "command" => Ok(Exec::Command),
        "simulate" => Ok(Exec::Simulate),
        _ => {
            let guess = match closest(&name, EXECUTORS) {
                Some(g) => format!("did you mean `{g}`? "),
                None => String::new(),
            };
            Err(cx.err(
                loc(n),
                format!("unknown executor `{}`", name.escape_debug()),
                format!("{guess}use one of: {}", list(EXECUTORS)),
            ))
        }
    }
}

/// `[a-z0-9][a-z0-9-]{0,62}`
fn valid_stack_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

struct RawStack {
    spec: StackSpec,
    /// Where each dependency is written.
    dep_at: Vec<Loc>,
}

fn parse_stacks(
    cx: &Ctx,
    n: &SNode,
    key_at: Loc,
    dir: &Path,
    default_executor: Option<(Exec, Loc)>,
) -> Res<Vec<StackSpec>> {
    let example = "stacks: { network: { executor: simulate } }";
    let empty_help = "add at least one stack, e.g. `stacks: { app: { executor: simulate } }`";
    if matches!(n.value, Node::Null) {
        return Err(cx.err(key_at, "`stacks` is empty", empty_help));
    }
    let Node::Map(map) = &n.value else {
        let mut e = cx.wrong_type(n, "`stacks`", "a mapping of stack name to stack", example);
        if matches!(n.value, Node::Seq(_)) {
            e.help = "write the stacks as a mapping, not a list: \
                      `stacks:` then `  network:` with its keys indented below it"
                .into();
        }
        return Err(e);
    };
    if map.is_empty() {
        return Err(cx.err(loc(n), "`stacks` is empty", empty_help));
    }

    let mut raw: Vec<RawStack> = Vec::with_capacity(map.len());
    let mut index: HashMap<String, usize> = HashMap::with_capacity(map.len());
    for (k, v) in map {
        let at = loc(k);
        let name = match &k.value {
            Node::Seq(_) | Node::Map(_) | Node::Null => {
                return Err(cx.err(
                    at,
                    format!(
                        "a stack name must be a plain name, found {}",
                        kind(&k.value)
                    ),
                    "name each stack like `network:` or `database-rds:`",
                ))
            }
            _ => scalar_text(cx.source, k).unwrap_or_default(),
        };
        if !valid_stack_name(&name) {
            return Err(cx.err(
                at,
                format!("invalid stack name `{}`", name.escape_debug()),
                "stack names use lowercase letters, digits and `-`, start with a letter or \
                 digit, and have at most 63 characters (e.g. `database-rds`)",
            ));
        }
        if let Some(&first) = index.get(&name) {
            return Err(cx.err(
                at,
                format!("duplicate stack `{name}`"),
                format!(
                    "stack `{name}` is already defined at line {}; rename or remove one of them",
                    raw[first].spec.at.line
                ),
            ));
        }
        let stack = parse_stack(cx, &name, at, v, dir, default_executor)?;
        index.insert(name, raw.len());
        raw.push(stack);
    }

    // Every dependency names a stack.
    let names: Vec<&str> = raw.iter().map(|s| s.spec.name.as_str()).collect();
    for stack in &raw {
        for (dep, at) in stack.spec.dependencies.iter().zip(&stack.dep_at) {
            if !index.contains_key(dep) {
                let guess = match closest(dep, &names) {
                    Some(g) => format!("did you mean `{g}`? "),
                    None => String::new(),
                };
                return Err(cx.err(
                    *at,
                    format!(
                        "unknown dependency `{}` in stack `{}`",
                        dep.escape_debug(),
                        stack.spec.name
                    ),
                    format!("{guess}Known stacks: {}", list(&names)),
                ));
            }
        }
    }

    if let Some(e) = find_cycle(cx, &raw, &index) {
        return Err(e);
    }
    Ok(raw.into_iter().map(|r| r.spec).collect())
}

/// Depth-first search in file order; reports the first back edge found.
fn find_cycle(cx: &Ctx, raw: &[RawStack], index: &HashMap<String, usize>) -> Option<ManifestError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Color {
        White,
        Gray,
        Black,
    }
    let deps: Vec<Vec<usize>> = raw
        .iter()
        .map(|s| {
            s.spec
                .dependencies
                .iter()
                .map(|d| index.get(d).copied().unwrap_or(usize::MAX))
                .collect()
        })
        .collect();
    let mut color = vec![Color::White; raw.len()];
    for start in 0..raw.len() {
        if color[start] != Color::White {
            continue;
        }
        // (node, next dependency to look at)
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        color[start] = Color::Gray;
        while let Some(top) = path.last_mut() {
            let (node, dep_index) = *top;
            let Some(&dep) = deps[node].get(dep_index) else {
                color[node] = Color::Black;
                path.pop();
                continue;
            };
            top.1 += 1;
            if dep == usize::MAX {
                continue;
            }
            match color[dep] {
                Color::Black => {}
                Color::White => {
                    color[dep] = Color::Gray;
                    path.push((dep, 0));
                }
                Color::Gray => {
                    let from = path.iter().position(|&(n, _)| n == dep).unwrap_or(0);
                    let mut names: Vec<&str> = path[from..]
                        .iter()
                        .map(|&(n, _)| raw[n].spec.name.as_str())
                        .collect();
                    names.push(raw[dep].spec.name.as_str());
                    let cycle = names.join(" → ");
                    let at = raw[node].dep_at.get(dep_index).copied().unwrap_or_default();
                    return Some(cx.err(
                        at,
                        format!("dependency cycle: {cycle}"),
                        format!(
                            "stacks cannot depend on each other in a circle; remove one of these \
                             dependencies (e.g. `{}` from the dependencies of `{}`)",
                            raw[dep].spec.name, raw[node].spec.name
                        ),
                    ));
                }
            }
        }
    }
    None
}

fn parse_stack(
    cx: &Ctx,
    name: &str,
    at: Loc,
    n: &SNode,
    dir: &Path,
    default_executor: Option<(Exec, Loc)>,
) -> Res<RawStack> {
    let what = format!("stack `{name}`");
    let example = "network: { executor: simulate }";
    let entries = match &n.value {
        Node::Null => Vec::new(),
        Node::Map(_) => cx.entries(n, &what, example)?,
        other => {
            return Err(cx.err(
                loc(n),
                format!(
                    "{what} must be a mapping of its settings, found {}",
                    kind(other)
                ),
                format!(
                    "indent the stack's keys under its name; allowed keys: {}",
                    list(STACK_KEYS)
                ),
            ))
        }
    };

    let mut dependencies = Vec::new();
    let mut dep_at = Vec::new();
    let mut executor: Option<(Exec, Loc)> = None;
    let mut resources: Option<(&SNode, Loc)> = None;
    let mut outputs = BTreeMap::new();
    let mut path: Option<String> = None;
    let mut deploy: Option<(String, Loc)> = None;
    let mut destroy: Option<(String, Loc)> = None;

    for (key, key_at, v) in entries {
        match key.as_str() {
            "dependencies" => {
                let example = "dependencies: [network, security]";
                let items: &[SNode] = match &v.value {
                    Node::Null => &[],
                    Node::Seq(items) => items,
                    _ => {
                        return Err(cx.wrong_type(
                            v,
                            &format!("`dependencies` of {what}"),
                            "a list of stack names",
                            example,
                        ))
                    }
                };
                for item in items {
                    let dep = cx.nonempty_string(item, "a dependency", example)?;
                    if dep == name {
                        return Err(cx.err(
                            loc(item),
                            format!("stack `{name}` depends on itself"),
                            format!("remove `{name}` from its own `dependencies`"),
                        ));
                    }
                    if let Some(first) = dependencies.iter().position(|d| *d == dep) {
                        let first_at: &Loc = &dep_at[first];
                        return Err(cx.err(
                            loc(item),
                            format!(
                                "dependency `{}` is listed twice in stack `{name}`",
                                dep.escape_debug()
                            ),
                            format!(
                                "remove one of them (the first is at line {}, column {})",
                                first_at.line, first_at.column
                            ),
                        ));
                    }
                    dependencies.push(dep);
                    dep_at.push(loc(item));
                }
            }
            "executor" => executor = Some((parse_executor(cx, v)?, key_at)),
            "resources" => resources = Some((v, key_at)),
            "outputs" => match &v.value {
                Node::Null => {}
                Node::Map(_) => {
                    for (k, _, value) in cx.entries(v, "`outputs`", "outputs: { vpcId: vpc-1 }")? {
                        outputs.insert(k, cx.json(value)?);
                    }
                }
                _ => {
                    return Err(cx.wrong_type(
                        v,
                        &format!("`outputs` of {what}"),
                        "a mapping",
                        "outputs: { vpcId: vpc-abc123 }",
                    ))
                }
            },
            "path" => {
                path = Some(cx.nonempty_string(v, "`path`", "path: stacks/network")?);
            }
            "deploy" => {
                deploy = Some((
                    cx.nonempty_string(v, "`deploy`", "deploy: ./deploy.sh")?,
                    key_at,
                ));
            }
            "destroy" => {
                destroy = Some((
                    cx.nonempty_string(v, "`destroy`", "destroy: ./destroy.sh")?,
                    key_at,
                ));
            }
            _ => return Err(cx.unknown_key(&key, key_at, &what, STACK_KEYS)),
        }
    }

    let Some((exec, _)) = executor.or(default_executor) else {
        return Err(cx.err(
            at,
            format!("stack `{name}` has no executor"),
            "add `executor: pulumi` (or `command`, `simulate`) to the stack, or set a default \
             with `defaults: { executor: pulumi }`",
        ));
    };
    let exec_name = match exec {
        Exec::Pulumi => "pulumi",
        Exec::Command => "command",
        Exec::Simulate => "simulate",
    };
    if let Some((_, key_at)) = resources.filter(|_| exec != Exec::Simulate) {
        return Err(cx.err(
            key_at,
            format!("`resources` only applies to simulate stacks, and `{name}` uses {exec_name}"),
            "remove `resources`, or set `executor: simulate`",
        ));
    }
    if exec != Exec::Command {
        if let Some((key, key_at)) = deploy
            .as_ref()
            .map(|(_, at)| ("deploy", *at))
            .or(destroy.as_ref().map(|(_, at)| ("destroy", *at)))
        {
            return Err(cx.err(
                key_at,
                format!("`{key}` only applies to command stacks, and `{name}` uses {exec_name}"),
                format!("remove `{key}`, or set `executor: command`"),
            ));
        }
    }

    let executor = match exec {
        Exec::Simulate => ExecutorSpec::Simulate {
            resources: match resources {
                Some((v, _)) => parse_resources(cx, name, v)?,
                None => Vec::new(),
            },
        },
        Exec::Command => {
            let Some((deploy, _)) = deploy else {
                return Err(cx.err(
                    at,
                    format!("command stack `{name}` has no `deploy` command"),
                    "add `deploy: ./deploy.sh` (run with `sh -c` in the stack's `path`)",
                ));
            };
            ExecutorSpec::Command {
                deploy,
                destroy: destroy.map(|(d, _)| d),
            }
        }
        Exec::Pulumi => {
            if path.is_none() {
                return Err(cx.err(
                    at,
                    format!("pulumi stack `{name}` has no `path`"),
                    format!(
                        "add `path:` with the folder of its Pulumi project, relative to {}",
                        display_dir(dir)
                    ),
                ));
            }
            ExecutorSpec::Pulumi
        }
    };

    let path = match path {
        Some(p) => dir.join(p),
        None => dir.to_path_buf(),
    };
    Ok(RawStack {
        spec: StackSpec {
            name: name.to_owned(),
            dependencies,
            executor,
            outputs,
            path,
            at,
        },
        dep_at,
    })
}

fn parse_resources(cx: &Ctx, stack: &str, n: &SNode) -> Res<Vec<SimResource>> {
    let example = "- { type: \"aws:ec2/vpc:Vpc\", name: main-vpc, seconds: 5 }";
    let items: &[SNode] = match &n.value {
        Node::Null => &[],
        Node::Seq(items) => items,
        _ => {
            return Err(cx.wrong_type(
                n,
                &format!("`resources` of stack `{stack}`"),
                "a list",
                example,
            ))
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let what = format!("a resource of stack `{stack}`");
        let mut type_ = None;
        let mut name = None;
        let mut seconds = None;
        let mut fail = None;
        let mut id = None;
        for (key, key_at, v) in cx.entries(item, &what, example)? {
            match key.as_str() {
                "type" => {
                    type_ = Some(cx.nonempty_string(v, "`type`", "type: aws:s3/bucket:Bucket")?)
                }
                "name" => name = Some(cx.nonempty_string(v, "`name`", "name: logs")?),
                "seconds" => seconds = Some(parse_seconds(cx, v)?),
                "fail" => fail = Some(cx.string(v, "`fail`", "fail: \"Access Denied\"")?),
                "id" => id = Some(cx.nonempty_string(v, "`id`", "id: vpc-abc123")?),
                _ => return Err(cx.unknown_key(&key, key_at, &what, RESOURCE_KEYS)),
            }
        }
        let missing = |key: &str, fix: &str| {
            cx.err(
                loc(item),
                format!("{what} has no `{key}`"),
                format!("add `{fix}` to it"),
            )
        };
        let type_ = type_.ok_or_else(|| missing("type", "type: \"aws:s3/bucket:Bucket\""))?;
        let name = name.ok_or_else(|| missing("name", "name: logs"))?;
        let seconds = seconds.ok_or_else(|| missing("seconds", "seconds: 5"))?;
        out.push(SimResource {
            type_,
            name,
            seconds,
            fail,
            id,
        });
    }
    Ok(out)
}

fn parse_seconds(cx: &Ctx, n: &SNode) -> Res<f64> {
    let help = "write a duration in seconds, zero or more, like `seconds: 5` or `seconds: 0.5`";
    let s = match &n.value {
        Node::Int(i) => *i as f64,
        Node::Float(f) => *f,
        other => {
            return Err(cx.err(
                loc(n),
                format!("`seconds` must be a number, found {}", kind(other)),
                help,
            ))
        }
    };
    if !s.is_finite() {
        return Err(cx.err(loc(n), format!("`seconds` must be finite, found {s}"), help));
    }
    if s < 0.0 {
        return Err(cx.err(
            loc(n),
            format!("`seconds` must not be negative, found {s}"),
            help,
        ));
    }
    Ok(s)
}

// ---------------------------------------------------------------------------------------------
// Suggestions
// ---------------------------------------------------------------------------------------------

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `word`, when it is close enough to be a likely typo.
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    if word.chars().count() > 200 {
        return None;
    }
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, '_' | '-' | ' '))
            .flat_map(char::to_lowercase)
            .collect()
    };
    let w = norm(word);
    let mut best: Option<(usize, &'a str)> = None;
    for &c in candidates {
        let d = if norm(c) == w {
            0
        } else {
            edit_distance(&word.to_lowercase(), &c.to_lowercase())
        };
        let len = word.chars().count().max(c.chars().count());
        let limit = (len / 3).max(1);
        if d <= limit && d < c.chars().count() && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// `a, b, c` (at most 20 names).
fn list(names: &[&str]) -> String {
    const MAX: usize = 20;
    let mut out = names
        .iter()
        .take(MAX)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > MAX {
        out.push_str(&format!(", … ({} more)", names.len() - MAX));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "cloud/deploy/D1BRV40/deployment.yaml";

    fn ok(yaml: &str) -> Manifest {
        match parse(Path::new(FILE), yaml) {
            Ok(m) => m,
            Err(e) => panic!("expected success, got:\n{}", e.render()),
        }
    }

    /// Parses `yaml`, expecting an error at `line:column` whose message contains `message`.
    #[track_caller]
    fn fails(yaml: &str, message: &str, line: u64, column: u64) -> ManifestError {
        let e = match parse(Path::new(FILE), yaml) {
            Ok(m) => panic!("expected an error containing {message:?}, got {m:#?}"),
            Err(e) => e,
        };
        assert!(
            e.message.contains(message),
            "message {:?} lacks {message:?}\n{}",
            e.message,
            e.render()
        );
        assert_eq!(
            (e.at.line, e.at.column),
            (line, column),
            "wrong place:\n{}",
            e.render()
        );
        assert!(!e.help.is_empty(), "no help:\n{}", e.render());
        assert_eq!(e.file, Path::new(FILE));
        e
    }

    const EXAMPLE: &str = r#"deploymentId: D1BRV40            # optional; must equal the folder name when given
environments: [dev, stage, prod] # --environment must be one of these
parallelism: 4                   # optional; default: no limit. --parallelism overrides
defaults: { executor: pulumi }   # optional
stacks:
  network:                       # name: [a-z0-9][a-z0-9-]{0,62}, unique
    executor: simulate           # pulumi | command | simulate
    resources:                   # simulate only; run one after another; seconds may be fractional
      - { type: "aws:ec2/vpc:Vpc", name: main-vpc, seconds: 5 }
      - { type: "aws:ec2/subnet:Subnet", name: public-subnet-0, seconds: 5, fail: "Access Denied" }
    outputs: { vpcId: vpc-abc123 }
  security:
    dependencies: [network]
    executor: command
    path: stacks/security        # relative to the manifest's folder; default: the manifest's folder
    deploy: ./deploy.sh          # run with `sh -c` in `path`
    destroy: ./destroy.sh        # optional
  database-rds:
    dependencies: [network, security]
    executor: pulumi
    path: ../../stacks/database-rds   # a Pulumi project folder
notifications:                   # optional; ${VAR} is read from the environment
  dashboardUrl: https://cloud.example.com
  email: { smtp: "smtp://127.0.0.1:2525", from: cloud@example.com, to: [owner@example.com] }
  slack: { webhookUrl: "${SLACK_WEBHOOK_URL}" }
  pagerduty: { routingKey: "${PAGERDUTY_ROUTING_KEY}", url: "https://events.pagerduty.com/v2/enqueue" }
  webhooks: [ { url: "https://hooks.example.com/cloud", secret: "${WEBHOOK_SECRET}" } ]
eventStore: { dynamodb: { table: my-events } }
"#;

    #[test]
    fn design_example_parses() {
        let m = ok(EXAMPLE);
        assert_eq!(m.deployment_id, "D1BRV40");
        assert_eq!(m.environments, ["dev", "stage", "prod"]);
        assert_eq!(
            m.environments_at,
            Loc {
                line: 2,
                column: 15
            }
        );
        assert_eq!(m.parallelism, Some(4));
        assert_eq!(m.dir, Path::new("cloud/deploy/D1BRV40"));
        let names: Vec<&str> = m.stacks.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["network", "security", "database-rds"]);
        let net = &m.stacks[0];
        assert_eq!(net.at, Loc { line: 6, column: 3 });
        assert_eq!(net.path, Path::new("cloud/deploy/D1BRV40"));
        assert_eq!(net.outputs["vpcId"], serde_json::json!("vpc-abc123"));
        let ExecutorSpec::Simulate { resources } = &net.executor else {
            panic!("{:?}", net.executor)
        };
        assert_eq!(resources.len(), 2);
        assert_eq!(resources[0].type_, "aws:ec2/vpc:Vpc");
        assert_eq!(resources[0].name, "main-vpc");
        assert_eq!(resources[0].seconds, 5.0);
        assert_eq!(resources[1].fail.as_deref(), Some("Access Denied"));
        let sec = &m.stacks[1];
        assert_eq!(sec.dependencies, ["network"]);
        assert_eq!(sec.path, Path::new("cloud/deploy/D1BRV40/stacks/security"));
        assert!(matches!(
            &sec.executor,
            ExecutorSpec::Command { deploy, destroy: Some(d) } if deploy == "./deploy.sh" && d == "./destroy.sh"
        ));
        let db = &m.stacks[2];
        assert_eq!(db.dependencies, ["network", "security"]);
        assert!(matches!(db.executor, ExecutorSpec::Pulumi));
        assert_eq!(
            db.path,
            Path::new("cloud/deploy/D1BRV40/../../stacks/database-rds")
        );
        let n = m.notifications.as_ref().expect("notifications");
        assert_eq!(n["slack"]["webhookUrl"], "${SLACK_WEBHOOK_URL}");
        assert_eq!(n["email"]["to"][0], "owner@example.com");
        assert_eq!(
            m.event_store.as_ref().expect("eventStore")["dynamodb"]["table"],
            "my-events"
        );
    }

    #[test]
    fn defaults_and_minimal() {
        let m = ok("environments: [dev]\nstacks:\n  app: { executor: simulate }\n");
        assert_eq!(m.deployment_id, "D1BRV40");
        assert_eq!(m.parallelism, None);
        assert!(m.notifications.is_none() && m.event_store.is_none());
        // A stack with no keys at all takes the default executor.
        let m = ok("environments: [dev]\ndefaults: { executor: simulate }\nstacks:\n  app:\n");
        assert!(
            matches!(&m.stacks[0].executor, ExecutorSpec::Simulate { resources } if resources.is_empty())
        );
        // `no`, `on` stay names.
        let m = ok("environments: [no, on]\nstacks:\n  app: { executor: simulate }\n");
        assert_eq!(m.environments, ["no", "on"]);
    }

    #[test]
    fn render_format() {
        let yaml = "environments: [dev]\nstacks:\n  network: { executor: simulate }\n  secrets: { executor: simulate }\n  dns: { executor: simulate }\n  security:\n    executor: simulate\n    dependencies: [netwrk]\n";
        let e = fails(
            yaml,
            "unknown dependency `netwrk` in stack `security`",
            8,
            20,
        );
        assert_eq!(
            e.render(),
            "error: unknown dependency `netwrk` in stack `security`\n  \
             --> cloud/deploy/D1BRV40/deployment.yaml:8:20\n  \
             help: did you mean `network`? Known stacks: network, secrets, dns, security"
        );
        assert_eq!(e.to_string(), e.render());
        // No location: no `:line:column`.
        let e = ManifestError {
            file: "./x/deployment.yaml".into(),
            at: Loc::default(),
            message: "m".into(),
            help: "h".into(),
        };
        assert_eq!(e.render(), "error: m\n  --> x/deployment.yaml\n  help: h");
    }

    #[test]
    fn malformed_yaml() {
        let e = fails("environments: [dev\nstacks: {}\n", "invalid YAML", 2, 7);
        assert!(!e.message.contains('\n'));
        let e = fails(
            "environments: [dev\n",
            "invalid YAML: unclosed bracket",
            1,
            15,
        );
        assert!(e.help.contains("brackets"), "{}", e.help);
        fails("a: b\n- c\n", "invalid YAML", 2, 3);
        let e = fails("environments: [dev]\n---\nx: 1\n", "invalid YAML", 3, 1);
        assert!(e.help.contains("---"), "{}", e.help);
        fails("x: !foo bar\n", "invalid YAML", 1, 9);
        fails("x: *nowhere\n", "invalid YAML", 1, 4);
    }

    #[test]
    fn empty_and_wrong_top() {
        fails("", "the manifest is empty", 1, 1);
        fails("# only a comment\n", "the manifest is empty", 1, 1);
        fails(
            "- a\n- b\n",
            "the manifest must be a mapping, found a list",
            1,
            1,
        );
        fails(
            "hello\n",
            "the manifest must be a mapping, found a string",
            1,
            1,
        );
    }

    #[test]
    fn unknown_keys() {
        let e = fails(
            "environments: [dev]\nstack:\n  a: { executor: simulate }\n",
            "unknown key `stack` in the manifest",
            2,
            1,
        );
        assert!(e.help.starts_with("did you mean `stacks`?"), "{}", e.help);
        assert!(e.help.contains("allowed keys: deploymentId, environments"));
        let e = fails(
            "environments: [dev]\nstacks:\n  a:\n    executor: simulate\n    dependecies: []\n",
            "unknown key `dependecies` in stack `a`",
            5,
            5,
        );
        assert!(
            e.help.contains("did you mean `dependencies`?"),
            "{}",
            e.help
        );
        let e = fails(
            "deployment_id: D1BRV40\nenvironments: [dev]\nstacks: { a: { executor: simulate } }\n",
            "unknown key `deployment_id`",
            1,
            1,
        );
        assert!(
            e.help.contains("did you mean `deploymentId`?"),
            "{}",
            e.help
        );
        let e = fails(
            "environments: [dev]\nstacks:\n  a:\n    executor: simulate\n    resources:\n      - { type: t, name: n, seconds: 1, secs: 2 }\n",
            "unknown key `secs` in a resource of stack `a`",
            6,
            41,
        );
        assert!(
            e.help.contains("type, name, seconds, fail, id"),
            "{}",
            e.help
        );
        fails(
            "environments: [dev]\ndefaults: { executr: pulumi }\nstacks: { a: { executor: simulate } }\n",
            "unknown key `executr` in `defaults`",
            2,
            13,
        );
        let e = fails(
            "environments: [dev]\nstacks: { a: { executor: simulate, zzzzzzzz: 1 } }\n",
            "unknown key `zzzzzzzz`",
            2,
            36,
        );
        assert!(e.help.starts_with("allowed keys:"), "{}", e.help);
        // Anything goes inside notifications, eventStore and outputs.
        ok("environments: [dev]\nnotifications: { whatever: [1, {x: y}] }\neventStore: { any: thing }\nstacks: { a: { executor: simulate, outputs: { k: [1, 2], z: { q: null } } } }\n");
    }

    #[test]
    fn duplicate_keys() {
        let e = fails(
            "environments: [dev]\nenvironments: [prod]\nstacks: { a: { executor: simulate } }\n",
            "duplicate key `environments`",
            2,
            1,
        );
        assert!(e.help.contains("line 1"));
        fails(
            "environments: [dev]\nstacks:\n  a:\n    executor: simulate\n    executor: pulumi\n",
            "duplicate key `executor` in stack `a`",
            5,
            5,
        );
    }

    #[test]
    fn unknown_dependency() {
        let e = fails(
            "environments: [dev]\nstacks:\n  network: { executor: simulate }\n  app: { executor: simulate, dependencies: [database] }\n",
            "unknown dependency `database` in stack `app`",
            4,
            45,
        );
        assert_eq!(e.help, "Known stacks: network, app");
    }

    #[test]
    fn duplicate_stack() {
        let e = fails(
            "environments: [dev]\nstacks:\n  a: { executor: simulate }\n  b: { executor: simulate }\n  a: { executor: simulate }\n",
            "duplicate stack `a`",
            5,
            3,
        );
        assert!(e.help.contains("line 3"), "{}", e.help);
    }

    #[test]
    fn self_dependency() {
        fails(
            "environments: [dev]\nstacks:\n  a:\n    executor: simulate\n    dependencies: [a]\n",
            "stack `a` depends on itself",
            5,
            20,
        );
    }

    #[test]
    fn cycles() {
        let e = fails(
            "environments: [dev]\ndefaults: { executor: simulate }\nstacks:\n  a: { dependencies: [b] }\n  b: { dependencies: [c] }\n  c: { dependencies: [a] }\n",
            "dependency cycle: a → b → c → a",
            6,
            23,
        );
        assert!(
            e.help.contains("`a` from the dependencies of `c`"),
            "{}",
            e.help
        );
        // The cycle does not include the stack where the search started.
        fails(
            "environments: [dev]\ndefaults: { executor: simulate }\nstacks:\n  top: { dependencies: [x] }\n  x: { dependencies: [y] }\n  y:\n    dependencies:\n      - x\n",
            "dependency cycle: x → y → x",
            8,
            9,
        );
        // Two-stack cycle.
        fails(
            "environments: [dev]\ndefaults: { executor: simulate }\nstacks:\n  p: { dependencies: [q] }\n  q: { dependencies: [p] }\n",
            "dependency cycle: p → q → p",
            5,
            23,
        );
        // A diamond is fine.
        ok("environments: [dev]\ndefaults: { executor: simulate }\nstacks:\n  a: {}\n  b: { dependencies: [a] }\n  c: { dependencies: [a] }\n  d: { dependencies: [b, c] }\n");
    }

    #[test]
    fn deployment_id_must_match_folder() {
        let e = fails(
            "deploymentId: OTHER\nenvironments: [dev]\nstacks: { a: { executor: simulate } }\n",
            "deploymentId `OTHER` does not match the folder name `D1BRV40`",
            1,
            15,
        );
        assert!(e.help.contains("deploymentId: D1BRV40"), "{}", e.help);
        fails(
            "deploymentId: ../x\nenvironments: [dev]\nstacks: { a: { executor: simulate } }\n",
            "invalid deploymentId",
            1,
            15,
        );
    }

    #[test]
    fn environments() {
        fails(
            "stacks: { a: { executor: simulate } }\n",
            "lists no `environments`",
            1,
            1,
        );
        fails(
            "environments: []\nstacks: { a: { executor: simulate } }\n",
            "`environments` is empty",
            1,
            15,
        );
        fails(
            "environments:\nstacks: { a: { executor: simulate } }\n",
            "`environments` is empty",
            1,
            13,
        );
        fails(
            "environments: dev\nstacks: { a: { executor: simulate } }\n",
            "`environments` must be a list, found a string",
            1,
            15,
        );
        fails(
            "environments: [dev, dev]\nstacks: { a: { executor: simulate } }\n",
            "environment `dev` is listed twice",
            1,
            21,
        );
        fails(
            "environments: [dev, \"a b\"]\nstacks: { a: { executor: simulate } }\n",
            "invalid environment name",
            1,
            21,
        );
    }

    #[test]
    fn check_environment() {
        let m = ok(EXAMPLE);
        assert!(m.check_environment("stage").is_ok());
        let e = m.check_environment("prd").unwrap_err();
        assert_eq!(e.message, "environment `prd` is not listed in the manifest");
        assert_eq!(
            e.at,
            Loc {
                line: 2,
                column: 15
            }
        );
        assert_eq!(
            e.help,
            "did you mean `prod`? use one of: dev, stage, prod; or add `prd` to `environments`"
        );
    }

    #[test]
    fn invalid_stack_names() {
        for (name, col) in [("Network", 3), ("-a", 3), ("a_b", 3), ("\"\"", 3)] {
            fails(
                &format!("environments: [dev]\nstacks:\n  {name}: {{ executor: simulate }}\n"),
                "invalid stack name",
                3,
                col,
            );
        }
        let long = "a".repeat(64);
        fails(
            &format!("environments: [dev]\nstacks:\n  {long}: {{ executor: simulate }}\n"),
            "invalid stack name",
            3,
            3,
        );
        ok(&format!(
            "environments: [dev]\nstacks:\n  {}: {{ executor: simulate }}\n  0-9: {{ executor: simulate }}\n",
            "a".repeat(63)
        ));
        fails(
            "environments: [dev]\nstacks:\n  [a]: { executor: simulate }\n",
            "a stack name must be a plain name",
            3,
            3,
        );
    }

    #[test]
    fn paths() {
        fails(
            "environments: [dev]\nstacks:\n  db:\n    executor: pulumi\n",
            "pulumi stack `db` has no `path`",
            3,
            3,
        );
        fails(
            "environments: [dev]\nstacks:\n  db: { executor: pulumi, path: \"\" }\n",
            "`path` is empty",
            3,
            33,
        );
        let dir = tempfile::tempdir().unwrap();
        let deploy = dir.path().join("cloud/deploy/D1");
        std::fs::create_dir_all(deploy.join("stacks/there")).unwrap();
        let file = deploy.join("deployment.yaml");
        let yaml = "environments: [dev]\nstacks:\n  a: { executor: pulumi, path: stacks/there }\n  b:\n    executor: pulumi\n    path: stacks/missing\n";
        std::fs::write(&file, yaml).unwrap();
        let m = parse(&file, yaml).unwrap();
        let e = m.check_paths().unwrap_err();
        assert!(
            e.message.contains("the path of stack `b` does not exist"),
            "{}",
            e.render()
        );
        assert!(e.message.contains("stacks/missing"));
        assert_eq!(e.at, Loc { line: 4, column: 3 });
        let e = load(dir.path(), "D1").unwrap_err();
        assert!(e.message.contains("`b` does not exist"), "{}", e.render());
        std::fs::create_dir_all(deploy.join("stacks/missing")).unwrap();
        let m = load(dir.path(), "D1").unwrap();
        assert_eq!(m.stacks[1].path, deploy.join("stacks/missing"));
    }

    #[test]
    fn load_errors() {
        let dir = tempfile::tempdir().unwrap();
        let e = load(dir.path(), "D1").unwrap_err();
        assert!(
            e.message.contains("no manifest for deployment `D1`"),
            "{}",
            e.render()
        );
        assert!(e.message.contains("deployment.yaml does not exist"));
        assert!(
            e.help.contains("--root") && e.help.contains("CLOUD_ROOT"),
            "{}",
            e.help
        );
        assert_eq!(e.at.line, 0);
        for id in ["D1BRV40", "OTHER"] {
            let d = dir.path().join("cloud/deploy").join(id);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(
                d.join("deployment.yaml"),
                "environments: [dev]\nstacks: { a: { executor: simulate } }\n",
            )
            .unwrap();
        }
        let e = load(dir.path(), "D1BRV4").unwrap_err();
        assert!(
            e.help.contains("did you mean `D1BRV40`?") && e.help.contains("D1BRV40, OTHER"),
            "{}",
            e.help
        );
        assert!(load(dir.path(), "D1BRV40").is_ok());
        for bad in ["", "..", "a/b", "-x", "a b"] {
            let e = load(dir.path(), bad).unwrap_err();
            assert!(
                e.message.contains("invalid deployment id"),
                "{bad}: {}",
                e.render()
            );
        }
        let d = dir.path().join("cloud/deploy/BIN");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("deployment.yaml"), b"environments: [d\xffv]\n").unwrap();
        let e = load(dir.path(), "BIN").unwrap_err();
        assert!(e.message.contains("UTF-8"));
        assert_eq!(
            e.at,
            Loc {
                line: 1,
                column: 17
            }
        );
    }

    #[test]
    fn resources_rules() {
        fails(
            "environments: [dev]\nstacks:\n  a:\n    executor: command\n    deploy: ./d.sh\n    resources: []\n",
            "`resources` only applies to simulate stacks, and `a` uses command",
            6,
            5,
        );
        fails(
            "environments: [dev]\nstacks:\n  a:\n    executor: simulate\n    resources:\n      - { type: t, name: n }\n",
            "a resource of stack `a` has no `seconds`",
            6,
            9,
        );
        fails(
            "environments: [dev]\nstacks:\n  a:\n    executor: simulate\n    resources:\n      - { type: t, name: n, seconds: -1 }\n",
            "`seconds` must not be negative",
            6,
            38,
        );
        for bad in [".inf", ".nan", "-.inf"] {
            fails(
                &format!("environments: [dev]\nstacks:\n  a:\n    executor: simulate\n    resources:\n      - {{ type: t, name: n, seconds: {bad} }}\n"),
                "`seconds` must be finite",
                6,
                38,
            );
        }
        fails(
            "environments: [dev]\nstacks:\n  a:\n    executor: simulate\n    resources:\n      - { type: t, name: n, seconds: five }\n",
            "`seconds` must be a number, found a string",
            6,
            38,
        );
        fails(
            "environments: [dev]\nstacks:\n  a:\n    executor: simulate\n    resources: { type: t }\n",
            "`resources` of stack `a` must be a list",
            5,
            16,
        );
        let m = ok("environments: [dev]\nstacks:\n  a:\n    executor: simulate\n    resources:\n      - { type: t, name: n, seconds: 0.25, id: i-1 }\n      - { type: t, name: m, seconds: 0 }\n");
        let ExecutorSpec::Simulate { resources } = &m.stacks[0].executor else {
            panic!()
        };
        assert_eq!(resources[0].seconds, 0.25);
        assert_eq!(resources[0].id.as_deref(), Some("i-1"));
        assert_eq!(resources[1].seconds, 0.0);
    }

    #[test]
    fn executor_rules() {
        let e = fails(
            "environments: [dev]\nstacks:\n  a:\n    dependencies: []\n",
            "stack `a` has no executor",
            3,
            3,
        );
        assert!(
            e.help.contains("defaults: { executor: pulumi }"),
            "{}",
            e.help
        );
        let e = fails(
            "environments: [dev]\nstacks:\n  a: { executor: simulat }\n",
            "unknown executor `simulat`",
            3,
            18,
        );
        assert!(e.help.contains("did you mean `simulate`?"), "{}", e.help);
        fails(
            "environments: [dev]\nstacks:\n  a: { executor: command }\n",
            "command stack `a` has no `deploy` command",
            3,
            3,
        );
        fails(
            "environments: [dev]\nstacks:\n  a: { executor: simulate, deploy: x }\n",
            "`deploy` only applies to command stacks",
            3,
            28,
        );
        // A stack's own executor wins over the default.
        let m = ok("environments: [dev]\ndefaults: { executor: pulumi }\nstacks:\n  a: { executor: simulate }\n  b: { path: p }\n");
        assert!(matches!(
            m.stacks[0].executor,
            ExecutorSpec::Simulate { .. }
        ));
        assert!(matches!(m.stacks[1].executor, ExecutorSpec::Pulumi));
    }

    #[test]
    fn stacks_rules() {
        fails(
            "environments: [dev]\nstacks: {}\n",
            "`stacks` is empty",
            2,
            9,
        );
        fails("environments: [dev]\nstacks:\n", "`stacks` is empty", 2, 1);
        fails(
            "environments: [dev]\n",
            "the manifest has no `stacks`",
            1,
            1,
        );
        let e = fails(
            "environments: [dev]\nstacks:\n  - a\n  - b\n",
            "`stacks` must be a mapping of stack name to stack, found a list",
            3,
            3,
        );
        assert!(e.help.contains("not a list"), "{}", e.help);
        fails(
            "environments: [dev]\nstacks:\n  a: simulate\n",
            "stack `a` must be a mapping of its settings, found a string",
            3,
            6,
        );
        fails(
            "environments: [dev]\nstacks:\n  a: { executor: simulate, dependencies: b }\n",
            "`dependencies` of stack `a` must be a list of stack names, found a string",
            3,
            42,
        );
    }

    #[test]
    fn parallelism_rules() {
        let base = "environments: [dev]\nstacks: { a: { executor: simulate } }\n";
        fails(
            &format!("parallelism: 0\n{base}"),
            "`parallelism` must be at least 1",
            1,
            14,
        );
        fails(
            &format!("parallelism: -2\n{base}"),
            "`parallelism` must be at least 1, found -2",
            1,
            14,
        );
        fails(
            &format!("parallelism: 1.5\n{base}"),
            "`parallelism` must be a whole number",
            1,
            14,
        );
        fails(
            &format!("parallelism: many\n{base}"),
            "`parallelism` must be a whole number, found a string",
            1,
            14,
        );
        assert_eq!(ok(&format!("parallelism: 1\n{base}")).parallelism, Some(1));
    }

    #[test]
    fn dependency_listed_twice() {
        let e = fails(
            "environments: [dev]\ndefaults: { executor: simulate }\nstacks:\n  a: {}\n  b:\n    dependencies:\n      - a\n      - a\n",
            "dependency `a` is listed twice in stack `b`",
            8,
            9,
        );
        assert!(e.help.contains("line 7"), "{}", e.help);
    }

    #[test]
    fn wrong_types() {
        fails(
            "environments: [dev]\nnotifications: [a]\nstacks: { a: { executor: simulate } }\n",
            "`notifications` must be a mapping, found a list",
            2,
            16,
        );
        fails(
            "environments: [dev]\ndefaults: executor\nstacks: { a: { executor: simulate } }\n",
            "`defaults` must be a mapping, found a string",
            2,
            11,
        );
        fails(
            "environments: [dev]\nstacks: { a: { executor: simulate, outputs: [1] } }\n",
            "`outputs` of stack `a` must be a mapping, found a list",
            2,
            45,
        );
        fails(
            "environments: [dev]\nstacks: { a: { executor: [simulate] } }\n",
            "`executor` must be a string, found a list",
            2,
            26,
        );
    }

    #[test]
    fn never_panics_on_odd_input() {
        for text in [
            "\u{feff}",
            "\0",
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
            &"[".repeat(10_000),
            &"- ".repeat(2_000),
            "? : \n:",
            "&a [*a]",
            "a: &x [1]\nb: *x\n<<: *x\n",
            "environments: [dev]\nstacks: { a: { executor: simulate, outputs: { x: .inf } } }\n",
            "environments: [dev]\nparallelism: 999999999999999999999999999999999999\nstacks: { a: { executor: simulate } }\n",
            "environments: [dev]\nstacks: { 12: { executor: simulate } }\n",
            "environments: [dev]\nstacks: { ~: { executor: simulate } }\n",
            "environments: [dev]\nstacks: { a: { executor: simulate, resources: [ { type: t, name: n, seconds: 99999999999999999999999999999999999999999 } ] } }\n",
        ] {
            let _ = parse(Path::new(FILE), text);
            let _ = parse(Path::new(""), text);
            let _ = parse(Path::new("/"), text);
        }
        // Without a deployment folder, the id must be written.
        let e = parse(
            Path::new("deployment.yaml"),
            "environments: [dev]\nstacks: { a: { executor: simulate } }\n",
        )
        .unwrap_err();
        assert!(e.message.contains("deployment id is unknown"));
        let m = parse(
            Path::new("deployment.yaml"),
            "deploymentId: X\nenvironments: [dev]\nstacks: { a: { executor: simulate } }\n",
        )
        .unwrap();
        assert_eq!(m.deployment_id, "X");
    }

    #[test]
    fn names_are_read_as_written() {
        let m = ok("environments: [1.0, 010]\nstacks:\n  00: { executor: simulate }\n  1e3: { executor: simulate, dependencies: [00] }\n  0x1f: { executor: simulate, dependencies: [1e3, 00] }\n");
        let names: Vec<&str> = m.stacks.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["00", "1e3", "0x1f"]);
        assert_eq!(m.stacks[2].dependencies, ["1e3", "00"]);
        assert_eq!(m.environments, ["1.0", "010"]);
        let m = parse(
            Path::new("cloud/deploy/0123/deployment.yaml"),
            "deploymentId: 0123\nenvironments: [dev]\nstacks: { a: { executor: simulate } }\n",
        )
        .unwrap();
        assert_eq!(m.deployment_id, "0123");
        // An alias reads the anchored text.
        let m = ok(
            "environments: [&e 007, *e2]\nstacks: { a: { executor: simulate } }\n"
                .replace("*e2", "prod")
                .as_str(),
        );
        assert_eq!(m.environments, ["007", "prod"]);
        fails(
            "environments: [&e 007, *e]\nstacks: { a: { executor: simulate } }\n",
            "environment `007` is listed twice",
            1,
            24,
        );
    }

    #[test]
    fn suggestions() {
        assert_eq!(closest("netwrk", &["network", "dns"]), Some("network"));
        assert_eq!(closest("xyz", &["network", "dns"]), None);
        assert_eq!(
            closest("DeploymentID", &["deploymentId"]),
            Some("deploymentId")
        );
        assert_eq!(closest("a", &["b"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        let many: Vec<String> = (0..25).map(|i| format!("s{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(list(&many).ends_with(", … (5 more)"));
    }
}
