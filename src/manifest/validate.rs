//! The manifest's schema: top-level keys, environments, stacks and their common keys
//! (`dependencies`, `executor`, `path`). Each executor's own keys go to it through the
//! [`ExecutorCatalog`]. The dependency graph (cycles) is checked by the plan.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::error::{did_you_mean, list, Loc, ManifestError, ManifestResult};
use super::inputs::{parse_inputs, parse_timeout};
use super::yaml::{read_yaml, Doc, SNode, Value};
use super::{ExecutorCatalog, Header, Manifest, StackEntry, StackSpec};

const TOP_KEYS: &[&str] = &[
    "deploymentId",
    "environments",
    "parallelism",
    "defaults",
    "stacks",
    "notifications",
    "eventStore",
];
const DEFAULTS_KEYS: &[&str] = &["executor", "retry"];
/// Keys every stack may have, whatever its executor.
const COMMON_STACK_KEYS: &[&str] = &[
    "dependencies",
    "executor",
    "path",
    "inputs",
    "timeout",
    "retry",
];

/// Parses and validates a manifest. `file` is where `text` was read from: its folder is the
/// deployment folder (stack paths are relative to it, and a `deploymentId` must equal its
/// name). Does no I/O; see [`Manifest::check_paths`].
pub fn parse<C: ExecutorCatalog>(
    file: &Path,
    text: &str,
    catalog: &C,
) -> Result<Manifest<C::Executor>, ManifestError> {
    let doc = Doc { file, source: text };
    parse_doc(doc, catalog).map_err(|e| e.with_source(text))
}

fn parse_doc<C: ExecutorCatalog>(doc: Doc, catalog: &C) -> ManifestResult<Manifest<C::Executor>> {
    let tree = match read_yaml(doc.source) {
        Ok(root) => root,
        Err(e) => return Err(yaml_error(doc, &e)),
    };
    let manifest = from_tree(doc, &tree, catalog);
    // A big manifest's tree (800,000 nodes for 10,000 stacks) is freed on another core while
    // the command goes on (a command that ends first leaves it to the system).
    if doc.source.len() > 1 << 20 {
        let _ = std::thread::Builder::new().spawn(move || drop(tree));
    }
    manifest
}

fn from_tree<C: ExecutorCatalog>(
    doc: Doc,
    root_node: &SNode,
    catalog: &C,
) -> ManifestResult<Manifest<C::Executor>> {
    let root = doc.value(root_node);
    let start = root.at();
    if root.is_null() {
        return Err(doc.err(
            Loc { line: 1, column: 1 },
            "the manifest is empty",
            "list at least `environments:` and `stacks:`, e.g. \
             `environments: [dev]` and `stacks: { app: { executor: simulate } }`",
        ));
    }
    if !root.is_map() {
        return Err(root.err(
            format!("the manifest must be a mapping, found {}", root.kind()),
            format!("start with top-level keys: {}", list(TOP_KEYS)),
        ));
    }

    let file = doc.file;
    let dir = match file.parent() {
        Some(p) => p.to_path_buf(),
        None => PathBuf::new(),
    };
    let folder = dir.file_name().and_then(|n| n.to_str()).map(str::to_owned);

    let mut deployment_id = None;
    let mut environments: Option<(Vec<String>, Loc)> = None;
    let mut parallelism = None;
    let mut default_executor: Option<(String, Loc)> = None;
    let mut default_retry = None;
    let mut stacks_node = None;
    let mut notifications = None;
    let mut event_store = None;

    for (key, key_at, value) in root.entries("the manifest", "environments: [dev, prod]")? {
        match key.as_str() {
            "deploymentId" => deployment_id = Some(parse_deployment_id(value, folder.as_deref())?),
            "environments" => environments = Some((parse_environments(value)?, value.at())),
            "parallelism" => parallelism = Some(parse_parallelism(value)?),
            "defaults" => {
                if value.is_null() {
                    continue;
                }
                for (k, k_at, v) in value.entries("`defaults`", "defaults: { executor: pulumi }")? {
                    match k.as_str() {
                        "executor" => {
                            default_executor = Some((parse_executor(v, catalog)?, v.at()))
                        }
                        "retry" => default_retry = Some(super::retry::parse(v, "`defaults`")?),
                        _ => return Err(doc.unknown_key(&k, k_at, "`defaults`", DEFAULTS_KEYS)),
                    }
                }
            }
            "stacks" => stacks_node = Some((value, key_at)),
            "notifications" => notifications = super::notifications::parse(value)?,
            "eventStore" => event_store = super::event_store::parse(value)?,
            _ => return Err(doc.unknown_key(&key, key_at, "the manifest", TOP_KEYS)),
        }
    }

    let Some((environments, environments_at)) = environments else {
        return Err(doc.err(
            start,
            "the manifest lists no `environments`",
            "add the environments it may be deployed to, e.g. `environments: [dev, stage, prod]`",
        ));
    };
    let deployment_id = match (deployment_id, folder) {
        (Some(id), _) => id,
        (None, Some(folder)) => folder,
        (None, None) => return Err(doc.err(
            start,
            "the deployment id is unknown: the manifest is not in a deployment folder",
            "add `deploymentId: <ID>`, or keep the manifest at cloud/deploy/<ID>/deployment.yaml",
        )),
    };
    let Some((stacks_value, stacks_key_at)) = stacks_node else {
        return Err(doc.err(
            start,
            "the manifest has no `stacks`",
            "add the stacks to deploy, e.g. `stacks: { app: { executor: simulate } }`",
        ));
    };
    let stacks = Stacks {
        doc,
        catalog,
        dir: &dir,
        default_executor: default_executor
            .as_ref()
            .map(|(name, at)| (name.as_str(), *at)),
        default_retry,
    }
    .parse(stacks_value, stacks_key_at)?;

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

/// `deploymentId:`: a folder name, and the name of the manifest's own folder.
fn parse_deployment_id(value: Value, folder: Option<&str>) -> ManifestResult<String> {
    let id = value.nonempty_string("`deploymentId`", "deploymentId: D1BRV40")?;
    if let Err(why) = check_folder_name(&id) {
        return Err(value.err(
            format!("invalid deploymentId `{}`: {why}", id.escape_debug()),
            "use letters, digits, `.`, `_` and `-`, starting with a letter or digit \
             (it is the name of the deployment's folder)",
        ));
    }
    match folder {
        Some(folder) if folder != id => Err(value.err(
            format!("deploymentId `{id}` does not match the folder name `{folder}`"),
            format!(
                "set `deploymentId: {folder}` (or remove it), or move the manifest to \
                 cloud/deploy/{id}/"
            ),
        )),
        _ => Ok(id),
    }
}

/// The top-level keys a [`Header`] is made of.
const HEADER_KEYS: &[&str] = &["deploymentId", "environments", "eventStore"];

/// The manifest's [`Header`] read without its stacks, for commands that read runs (`status`,
/// `replay`, `events`, `unlock`): only the lines of the header's top-level keys go to the
/// parser (the others are blanked, so every place stays where it is). `None` when the fast way
/// cannot be sure — a document marker, a top-level line that is not a plain `key:`, any error
/// — and the whole manifest must be read (which also says any error precisely).
pub fn parse_header(file: &Path, text: &str) -> Option<Header> {
    let mut kept = String::with_capacity(text.len() / 8);
    let mut keep = false;
    for line in text.split_inclusive('\n') {
        let top = !line.starts_with([' ', '\t', '#', '\r', '\n']);
        if top {
            let key = line.split(':').next().unwrap_or_default();
            let plain = !key.is_empty()
                && key.chars().all(|c| c.is_ascii_alphanumeric())
                && line[key.len()..].starts_with(':');
            if !plain {
                return None;
            }
            keep = HEADER_KEYS.contains(&key);
        }
        if keep {
            kept.push_str(line);
        } else if line.ends_with('\n') {
            kept.push('\n');
        }
    }
    let root_node = read_yaml(&kept).ok()?;
    let doc = Doc {
        file,
        source: &kept,
    };
    let root = doc.value(&root_node);
    let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let folder = dir.file_name().and_then(|n| n.to_str()).map(str::to_owned);
    let (mut deployment_id, mut environments, mut event_store) = (None, None, None);
    for (key, _, value) in root.entries("the manifest", "").ok()? {
        match key.as_str() {
            "deploymentId" => {
                deployment_id = Some(parse_deployment_id(value, folder.as_deref()).ok()?)
            }
            "environments" => environments = Some((parse_environments(value).ok()?, value.at())),
            "eventStore" => event_store = super::event_store::parse(value).ok()?,
            _ => return None,
        }
    }
    let (environments, environments_at) = environments?;
    Some(Header {
        file: file.to_path_buf(),
        deployment_id: deployment_id.or(folder)?,
        dir,
        environments,
        environments_at,
        event_store,
    })
}

fn yaml_error(doc: Doc, e: &serde_saphyr::Error) -> ManifestError {
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
    if let Some(error) = overlong_key(doc, at) {
        return error;
    }
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
    } else if lower.contains("anchor") && (lower.contains("limit") || lower.contains("too large")) {
        "the document expands too much: its aliases (`*name`) repeat large parts of it many \
         times over; write those parts out, or use fewer aliases"
    } else if lower.contains("budget")
        || lower.contains("depth")
        || lower.contains("nesting")
        || lower.contains("too large")
        || lower.contains("limits breached")
    {
        "the manifest is nested too deeply or is too large; simplify it"
    } else if lower.contains("alias") || lower.contains("anchor") || lower.contains("reference") {
        "define the anchor (`&name`) before using it (`*name`)"
    } else {
        "fix the YAML syntax here: check the indentation, the `:` after each key, and that \
         quotes and brackets are closed"
    };
    doc.err(at, format!("invalid YAML: {message}"), help)
}

/// YAML allows a plain key of at most 1,024 characters; its parser reports a longer one as
/// "mapping values are not allowed", which says nothing about the real mistake.
fn overlong_key(doc: Doc, at: Loc) -> Option<ManifestError> {
    const YAML_KEY_LIMIT: usize = 1024;
    let line = doc
        .source
        .lines()
        .nth(usize::try_from(at.line).ok()?.checked_sub(1)?)?;
    let indent = line.len() - line.trim_start().len();
    let key = line.trim_start().split(':').next()?;
    let length = key.chars().count();
    (length > YAML_KEY_LIMIT).then(|| {
        doc.err(
            Loc {
                line: at.line,
                column: indent as u64 + 1,
            },
            format!("a key of {length} characters: YAML allows at most {YAML_KEY_LIMIT} in a key"),
            format!(
                "a stack name has at most {MAX_STACK_NAME} characters (lowercase letters, digits \
                 and `-`, e.g. `database-rds`); keys of the manifest are short names"
            ),
        )
    })
}

/// A deployment id / environment: a single, portable folder or file name part.
pub(super) fn check_folder_name(s: &str) -> Result<(), &'static str> {
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

fn parse_environments(n: Value) -> ManifestResult<Vec<String>> {
    let example = "environments: [dev, stage, prod]";
    let empty = || {
        n.err(
            "`environments` is empty",
            format!("list at least one environment, e.g. `{example}`"),
        )
    };
    if n.is_null() {
        return Err(empty());
    }
    if !n.is_list() {
        return Err(n.wrong_type("`environments`", "a list", example));
    }
    let items = n.items("`environments`", "a list", example)?;
    if items.is_empty() {
        return Err(empty());
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let env = item.nonempty_string("an environment", example)?;
        if let Err(why) = check_folder_name(&env) {
            return Err(item.err(
                format!("invalid environment name `{}`: {why}", env.escape_debug()),
                "use letters, digits, `.`, `_` and `-`, starting with a letter or digit",
            ));
        }
        if out.contains(&env) {
            return Err(item.err(
                format!("environment `{env}` is listed twice"),
                "list each environment once",
            ));
        }
        out.push(env);
    }
    Ok(out)
}

/// The most stacks at once a manifest may ask for.
const MAX_PARALLELISM: i64 = 100_000;

fn parse_parallelism(n: Value) -> ManifestResult<usize> {
    let help =
        "set a whole number from 1 to 100000 like `parallelism: 4`, or remove it for no limit";
    let too_many = |found: String| {
        n.err(
            format!("`parallelism` must be at most {MAX_PARALLELISM}, found {found}"),
            help,
        )
    };
    match (n.integer(), n.number()) {
        (Some(0), _) => Err(n.err("`parallelism` must be at least 1", help)),
        (Some(i), _) if i < 0 => {
            Err(n.err(format!("`parallelism` must be at least 1, found {i}"), help))
        }
        (Some(i), _) if i > MAX_PARALLELISM => Err(too_many(i.to_string())),
        (Some(i), _) => Ok(i as usize),
        // Beyond i64: a whole number all the same, only far too large.
        (None, Some(f)) if f.fract() == 0.0 && f > 1e15 => {
            Err(too_many(n.scalar_text().unwrap_or_default()))
        }
        _ => Err(n.err(
            format!("`parallelism` must be a whole number, found {}", n.kind()),
            help,
        )),
    }
}

/// The executor named by `executor:`, which must be one of the catalog's.
fn parse_executor<C: ExecutorCatalog>(n: Value, catalog: &C) -> ManifestResult<String> {
    let name = n.string("`executor`", "executor: pulumi")?;
    let names = catalog.names();
    if catalog.keys(&name).is_some() {
        return Ok(name);
    }
    Err(n.err(
        format!("unknown executor `{}`", name.escape_debug()),
        format!(
            "{}use one of: {}",
            did_you_mean(&name, &names),
            list(&names)
        ),
    ))
}

/// `[a-z0-9][a-z0-9-]{0,62}`
/// The longest stack name (a DNS label's limit: names end up in hostnames and tags).
const MAX_STACK_NAME: usize = 63;

fn valid_stack_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_STACK_NAME
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// What every stack is read with.
struct Stacks<'a, C> {
    doc: Doc<'a>,
    catalog: &'a C,
    dir: &'a Path,
    default_executor: Option<(&'a str, Loc)>,
    /// `defaults: retry:`.
    default_retry: Option<crate::retry::Settings>,
}

impl<C: ExecutorCatalog> Stacks<'_, C> {
    fn parse(&self, n: Value, key_at: Loc) -> ManifestResult<Vec<StackSpec<C::Executor>>> {
        let example = "stacks: { network: { executor: simulate } }";
        let empty_help = "add at least one stack, e.g. `stacks: { app: { executor: simulate } }`";
        if n.is_null() {
            return Err(self.doc.err(key_at, "`stacks` is empty", empty_help));
        }
        let Some(map) = n.raw_entries() else {
            let mut e = n.wrong_type("`stacks`", "a mapping of stack name to stack", example);
            if n.is_list() {
                e.help = "write the stacks as a mapping, not a list: \
                          `stacks:` then `  network:` with its keys indented below it"
                    .into();
            }
            return Err(e);
        };
        if map.is_empty() {
            return Err(n.err("`stacks` is empty", empty_help));
        }

        // Each stack read on its own (most of reading a big manifest: on every core), then
        // taken in the order written, so that the first problem in the file is the one said.
        let read = |(k, v): &(Value, Value)| -> ManifestResult<(String, StackSpec<C::Executor>)> {
            let name = self.stack_name(*k)?;
            let stack = self.stack(&name, k.at(), *v);
            stack.map(|stack| (name, stack))
        };
        let mut stacks: Vec<StackSpec<C::Executor>> = Vec::with_capacity(map.len());
        let mut index: HashMap<String, usize> = HashMap::with_capacity(map.len());
        // (Below 512 stacks, a thread costs more than it saves.)
        let reads = crate::parallel::map(&map, map.len() >= 512, read);
        for ((k, _), read) in map.iter().zip(reads) {
            // A duplicate name is said before what is wrong inside the second stack.
            if let Ok(name) = self.stack_name(*k) {
                if let Some(&first) = index.get(&name) {
                    return Err(k.err(
                        format!("duplicate stack `{name}`"),
                        format!(
                            "stack `{name}` is already defined at line {}; rename or remove one of them",
                            stacks[first].at.line
                        ),
                    ));
                }
            }
            let (name, stack) = read?;
            index.insert(name, stacks.len());
            stacks.push(stack);
        }

        // Every dependency names a stack.
        let names: Vec<&str> = stacks.iter().map(|s| s.name.as_str()).collect();
        for stack in &stacks {
            for (dep, at) in stack.dependencies.iter().zip(&stack.dependencies_at) {
                if !index.contains_key(dep) {
                    return Err(self.doc.err(
                        *at,
                        format!(
                            "unknown dependency `{}` in stack `{}`",
                            dep.escape_debug(),
                            stack.name
                        ),
                        format!(
                            "{}Known stacks: {}",
                            did_you_mean(dep, &names),
                            list(&names)
                        ),
                    ));
                }
            }
        }
        Ok(stacks)
    }

    /// A stack's name, checked.
    fn stack_name(&self, k: Value) -> ManifestResult<String> {
        let name = match k.scalar_text() {
            Some(name) => name,
            None => {
                return Err(k.err(
                    format!("a stack name must be a plain name, found {}", k.kind()),
                    "name each stack like `network:` or `database-rds:`",
                ))
            }
        };
        let length = name.chars().count();
        if length > MAX_STACK_NAME {
            let start: String = name.chars().take(20).collect();
            return Err(k.err(
                format!(
                    "stack name `{}…` is {length} characters long; the limit is {MAX_STACK_NAME}",
                    start.escape_debug()
                ),
                "shorten it (stack names name folders, state and log lines)",
            ));
        }
        if !valid_stack_name(&name) {
            return Err(k.err(
                format!("invalid stack name `{}`", name.escape_debug()),
                "stack names use lowercase letters, digits and `-`, start with a letter or \
                 digit, and have at most 63 characters (e.g. `database-rds`)",
            ));
        }
        Ok(name)
    }

    /// Every key a stack may have with some executor.
    fn all_keys(&self) -> Vec<&'static str> {
        let mut keys = COMMON_STACK_KEYS.to_vec();
        for name in self.catalog.names() {
            for key in self.catalog.keys(name).unwrap_or_default() {
                if !keys.contains(key) {
                    keys.push(key);
                }
            }
        }
        keys
    }

    fn stack(&self, name: &str, at: Loc, n: Value) -> ManifestResult<StackSpec<C::Executor>> {
        let what = format!("stack `{name}`");
        let entries = if n.is_null() {
            Vec::new()
        } else if n.is_map() {
            n.entries(&what, "network: { executor: simulate }")?
        } else {
            return Err(n.err(
                format!(
                    "{what} must be a mapping of its settings, found {}",
                    n.kind()
                ),
                format!(
                    "indent the stack's keys under its name; allowed keys: {}",
                    list(&self.all_keys())
                ),
            ));
        };

        // The executor first: it decides which other keys belong.
        let executor = match entries.iter().find(|(k, _, _)| k == "executor") {
            Some((_, _, v)) => Some(parse_executor(*v, self.catalog)?),
            None => self.default_executor.map(|(e, _)| e.to_owned()),
        };
        let executor_keys: &[&str] = executor
            .as_deref()
            .and_then(|e| self.catalog.keys(e))
            .unwrap_or_default();

        let mut dependencies = Vec::new();
        let mut dependencies_at: Vec<Loc> = Vec::new();
        let mut path: Option<(String, Loc)> = None;
        let mut inputs = None;
        let mut timeout = None;
        let mut retry = None;
        let mut own = Vec::new();
        for (key, key_at, v) in entries {
            match key.as_str() {
                "executor" => {}
                "dependencies" => {
                    let example = "dependencies: [network, security]";
                    let items = v.items(
                        &format!("`dependencies` of {what}"),
                        "a list of stack names",
                        example,
                    )?;
                    for item in items {
                        let dep = item.nonempty_string("a dependency", example)?;
                        if dep == name {
                            return Err(item.err(
                                format!("stack `{name}` depends on itself"),
                                format!("remove `{name}` from its own `dependencies`"),
                            ));
                        }
                        if let Some(first) = dependencies.iter().position(|d| *d == dep) {
                            let first_at = dependencies_at[first];
                            return Err(item.err(
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
                        dependencies_at.push(item.at());
                    }
                }
                "path" => {
                    path = Some((v.nonempty_string("`path`", "path: stacks/network")?, key_at));
                }
                // Read once the dependencies are known (they may come after).
                "inputs" => inputs = Some(v),
                "timeout" => timeout = Some(parse_timeout(v)?),
                "retry" => retry = Some(super::retry::parse(v, &what)?),
                _ if executor_keys.contains(&key.as_str()) => own.push((key, key_at, v)),
                // Without an executor the stack is rejected below; only unknown keys first.
                _ if executor.is_none() && self.all_keys().contains(&key.as_str()) => {}
                _ => return Err(self.misplaced_key(&key, key_at, name, executor.as_deref())),
            }
        }

        let Some(executor) = executor else {
            let names = self.catalog.names();
            return Err(self.doc.err(
                at,
                format!("stack `{name}` has no executor"),
                format!(
                    "add `executor: {}` (one of: {}) to the stack, or set a default with \
                     `defaults: {{ executor: {} }}`",
                    names.first().copied().unwrap_or("command"),
                    list(&names),
                    names.first().copied().unwrap_or("command"),
                ),
            ));
        };
        let inputs = match inputs {
            Some(v) => parse_inputs(name, v, &dependencies)?,
            None => Vec::new(),
        };
        let entry = StackEntry {
            stack: name,
            executor: &executor,
            at,
            path_at: path.as_ref().map(|(_, at)| *at),
            dir: self.dir,
            keys: own,
            doc: self.doc,
        };
        let configured = self.catalog.configure(&entry)?;
        // After the executor read its keys: their own errors say more.
        let entry_fingerprint = super::fingerprint::entry(&executor, n)?;
        Ok(StackSpec {
            name: name.to_owned(),
            dependencies,
            dependencies_at,
            path: match path {
                Some((p, _)) => self.dir.join(p),
                None => self.dir.to_path_buf(),
            },
            at,
            inputs,
            timeout,
            retry: crate::retry::Policy::new(
                &executor,
                self.default_retry.as_ref(),
                retry.as_ref(),
            ),
            entry_fingerprint,
            executor: configured,
        })
    }

    /// A key that is not the stack executor's: another executor's, or unknown.
    fn misplaced_key(
        &self,
        key: &str,
        at: Loc,
        stack: &str,
        executor: Option<&str>,
    ) -> ManifestError {
        let owners: Vec<&str> = self
            .catalog
            .names()
            .into_iter()
            .filter(|e| self.catalog.keys(e).is_some_and(|k| k.contains(&key)))
            .collect();
        match (owners.as_slice(), executor) {
            ([owner, ..], Some(uses)) => self.doc.err(
                at,
                format!(
                    "`{key}` only applies to {} stacks, and `{stack}` uses {uses}",
                    owners.join(" and ")
                ),
                format!("remove `{key}`, or set `executor: {owner}`"),
            ),
            _ => {
                let mut allowed = COMMON_STACK_KEYS.to_vec();
                match executor.and_then(|e| self.catalog.keys(e)) {
                    Some(keys) => allowed.extend_from_slice(keys),
                    None => allowed = self.all_keys(),
                }
                self.doc
                    .unknown_key(key, at, &format!("stack `{stack}`"), &allowed)
            }
        }
    }
}
