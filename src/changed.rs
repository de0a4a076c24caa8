//! "What does this change touch?": the stacks whose manifest entry, files, or local Terraform
//! modules differ between a git revision and the work tree (uncommitted and untracked files
//! included), then what depends on them — each with its reasons. `--changed` on the run
//! commands and `cloud affected` both ask this module.
//!
//! It runs git itself (`git diff --name-only`, `git ls-files --others`, `git merge-base`,
//! `git show REF:manifest`): what git says is what CI sees. A file counts for a stack by the
//! same rules as its smart-skip fingerprint ([`fingerprint::counts`]), so a change `cloud deploy`
//! would skip as irrelevant is not "changed" here either.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Bound;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use crate::error::Error;
use crate::executor::{Manifest, Registry};
use crate::plan::{fingerprint, NoPastRuns, Plan};

/// Why a stack is selected.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// Its entry in the manifest differs (or it is new).
    Manifest,
    /// A file under its `path` (relative to the repository's top).
    Files(String),
    /// A file of a local Terraform module it uses, directly or through other modules.
    Module(String),
    /// It depends on this selected stack.
    Dependency(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Manifest => write!(f, "manifest"),
            Reason::Files(path) => write!(f, "files: {path}"),
            Reason::Module(dir) => write!(f, "module: {dir}"),
            Reason::Dependency(stack) => write!(f, "dependency: {stack}"),
        }
    }
}

/// The revision compared with, as chosen.
#[derive(Debug, Clone)]
pub struct Base {
    /// How it was named: the `--since` revision, `the merge base with origin/main`, `HEAD^`.
    pub name: String,
    /// Its commit, abbreviated.
    pub commit: String,
}

impl fmt::Display for Base {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.commit)
    }
}

/// One selected stack.
#[derive(Debug, Clone)]
pub struct AffectedStack {
    pub name: String,
    /// Its layer in the whole deployment's plan (1 = no dependencies), as `cloud graph` says.
    pub layer: u32,
    pub reasons: Vec<Reason>,
}

/// What a change touches in one deployment.
#[derive(Debug, Clone)]
pub struct Affected {
    pub base: Base,
    /// In dependency order (by layer, then as written).
    pub stacks: Vec<AffectedStack>,
    /// Stacks in the manifest at the base revision that this one no longer has.
    pub deleted: Vec<String>,
    /// How many stacks the deployment has.
    pub total: usize,
}

impl Affected {
    pub fn names(&self) -> BTreeSet<String> {
        self.stacks.iter().map(|s| s.name.clone()).collect()
    }

    /// The warning for each deleted stack: nothing here can remove what it deployed.
    pub fn deleted_warnings(&self) -> Vec<String> {
        self.deleted
            .iter()
            .map(|name| {
                format!(
                    "warning: stack `{name}` is in the manifest at {} but not in this one: its \
                     resources are not destroyed by anything run from this checkout; destroy it \
                     from a checkout of that revision, whose manifest still has it",
                    self.base
                )
            })
            .collect()
    }
}

impl Affected {
    /// A heading, then one line per stack: its name, layer and reasons.
    pub fn to_text(&self, deployment: &str) -> String {
        if self.stacks.is_empty() {
            return format!(
                "{deployment}: nothing changed since {}: no stack is affected\n",
                self.base
            );
        }
        let mut out = format!(
            "{deployment}: {} of {} affected since {}\n",
            self.stacks.len(),
            crate::words::plural(self.total, "stack"),
            self.base
        );
        let width = self.stacks.iter().map(|s| s.name.len()).max().unwrap_or(0);
        for s in &self.stacks {
            let reasons: Vec<String> = s.reasons.iter().map(Reason::to_string).collect();
            out.push_str(&format!(
                "  {:width$}  layer {}  {}\n",
                s.name,
                s.layer,
                reasons.join("; ")
            ));
        }
        out
    }
}

/// `--changed` on a run, graph or validate: the stacks to take, said on stderr with why (and
/// the deleted ones warned about); `None` when nothing changed, which is said too.
pub fn select(
    manifest: &Manifest,
    registry: &Registry,
    query: &Query,
) -> Result<Option<BTreeSet<String>>, Error> {
    let affected = affected(manifest, registry, query)?;
    for warning in affected.deleted_warnings() {
        eprintln!("{warning}");
    }
    eprint!("{}", affected.to_text(&manifest.deployment_id));
    Ok((!affected.stacks.is_empty()).then(|| affected.names()))
}

/// What `--changed` / `cloud affected` were asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// `--since REF`; `None`: the merge base with the remote's default branch, else `HEAD^`.
    pub since: Option<String>,
    /// Add every stack that depends on a changed one (`--no-dependents`: false).
    pub dependents: bool,
}

/// The stacks of `manifest` the change since `query.since` touches, with why.
pub fn affected(
    manifest: &Manifest,
    registry: &Registry,
    query: &Query,
) -> Result<Affected, Error> {
    let git = Git::open(&manifest.dir)?;
    let base = git.base(query.since.as_deref())?;
    let changed = git.changed_paths(&base.commit)?;
    let plan = Plan::new(manifest, &NoPastRuns)?;

    let (mut reasons, deleted) = manifest_reasons(&git, manifest, registry, &base)?;
    let roots: Vec<PathBuf> = manifest.stacks.iter().map(|s| s.path.clone()).collect();
    for spec in manifest.stacks.iter().filter(|s| s.executor.reads_files()) {
        let dir = git.relative(&spec.path, &spec.name)?;
        let entry = reasons.entry(spec.name.clone()).or_default();
        let mine: Vec<(&String, &str)> = within(&changed, &dir).collect();
        if !mine.is_empty() {
            let others: Vec<&Path> = roots
                .iter()
                .map(PathBuf::as_path)
                .filter(|p| *p != spec.path.as_path())
                .collect();
            let ignores = spec.executor.fingerprint_ignores();
            let ignore = fingerprint::ignore(&spec.path, ignores, &others);
            for (path, rel) in mine {
                if fingerprint::counts(&spec.path, rel, &ignore) {
                    entry.push(Reason::Files(path.clone()));
                }
            }
        }
        for module in local_modules(&spec.path) {
            let Ok(module_dir) = git.relative(&module, &spec.name) else {
                continue; // Outside the repository: git cannot see it change.
            };
            if under(&module_dir, &dir).is_some() {
                continue; // Its files are the stack's own.
            }
            let ignore = fingerprint::ignore(&module, &[".terraform/"], &[]);
            let touched = within(&changed, &module_dir)
                .any(|(_, rel)| fingerprint::counts(&module, rel, &ignore));
            if touched {
                entry.push(Reason::Module(module_dir));
            }
        }
    }

    let mut stacks: Vec<AffectedStack> = Vec::new();
    let mut selected: BTreeSet<&str> = BTreeSet::new();
    // By layer: a stack's dependencies are decided before it.
    for stack in &plan.stacks {
        let mut why = reasons.remove(stack.name()).unwrap_or_default();
        if query.dependents {
            for dep in &stack.spec.dependencies {
                if selected.contains(dep.as_str()) {
                    why.push(Reason::Dependency(dep.clone()));
                }
            }
        }
        if why.is_empty() {
            continue;
        }
        why.dedup();
        selected.insert(stack.name());
        stacks.push(AffectedStack {
            name: stack.name().to_owned(),
            layer: stack.layer,
            reasons: why,
        });
    }
    Ok(Affected {
        base,
        stacks,
        deleted,
        total: manifest.stacks.len(),
    })
}

/// Each stack's reasons so far, by name.
type Reasons = BTreeMap<String, Vec<Reason>>;

/// `Manifest` for each stack whose entry differs from the one at the base revision (or is new
/// there), and the stacks only the base revision has.
fn manifest_reasons(
    git: &Git,
    manifest: &Manifest,
    registry: &Registry,
    base: &Base,
) -> Result<(Reasons, Vec<String>), Error> {
    let file = git.relative(&manifest.file, "the manifest")?;
    let every = |reasons: &mut Reasons| {
        for s in &manifest.stacks {
            reasons.insert(s.name.clone(), vec![Reason::Manifest]);
        }
    };
    let mut reasons = BTreeMap::new();
    let Some(text) = git.show(&base.commit, &file)? else {
        // A new deployment: every stack is new.
        every(&mut reasons);
        return Ok((reasons, Vec::new()));
    };
    let before = match crate::manifest::parse(&manifest.file, &text, registry) {
        Ok(before) => before,
        Err(e) => {
            // Unsure what changed: everything did, rather than a guess that leaves one out.
            eprintln!(
                "warning: the manifest at {base} does not parse ({}): every stack counts as changed",
                e.to_string().lines().next().unwrap_or_default()
            );
            every(&mut reasons);
            return Ok((reasons, Vec::new()));
        }
    };
    for s in &manifest.stacks {
        let same = before
            .stack(&s.name)
            .is_some_and(|b| b.entry_fingerprint == s.entry_fingerprint);
        if !same {
            reasons.insert(s.name.clone(), vec![Reason::Manifest]);
        }
    }
    let deleted = before
        .stacks
        .iter()
        .filter(|b| manifest.stack(&b.name).is_none())
        .map(|b| b.name.clone())
        .collect();
    Ok((reasons, deleted))
}

/// The paths of `changed` below folder `dir`, each with the rest of it (a sorted set: a range,
/// not a scan, for deployments of thousands of stacks).
fn within<'a>(
    changed: &'a BTreeSet<String>,
    dir: &'a str,
) -> impl Iterator<Item = (&'a String, &'a str)> + 'a {
    changed
        .range::<str, _>((Bound::Included(dir), Bound::Unbounded))
        .take_while(move |path| path.starts_with(dir))
        .filter_map(move |path| under(path, dir).map(|rel| (path, rel)))
}

/// `path` below folder `dir` (both relative to the repository's top; `""` is the top), as the
/// rest of it.
fn under<'a>(path: &'a str, dir: &str) -> Option<&'a str> {
    if dir.is_empty() {
        return Some(path);
    }
    path.strip_prefix(dir)?.strip_prefix('/')
}

/// The folders of the local Terraform modules the `.tf` files in `dir` use, and those they use
/// in turn (each once; `source = "./…"` or `"../…"`, relative to the file's folder).
fn local_modules(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = Vec::new();
    let mut queue = vec![dir.to_path_buf()];
    while let Some(folder) = queue.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "tf") && p.is_file())
            .collect();
        files.sort();
        for file in files {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            for source in module_sources(&text) {
                if !(source.starts_with("./") || source.starts_with("../")) {
                    continue; // A registry, git or URL source: not in this repository.
                }
                let module = normalize(&folder.join(&source));
                if module != dir && !found.contains(&module) && module.is_dir() {
                    found.push(module.clone());
                    queue.push(module);
                }
            }
        }
    }
    found
}

/// `a/b/../c` as `a/c`, without touching the disk (a module's folder need not be canonical).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The `source` of each `module "name" { … }` block of a Terraform file. A small scanner, not
/// a parser: it skips comments, strings and heredocs so that braces in them do not count.
pub fn module_sources(text: &str) -> Vec<String> {
    #[derive(Debug, PartialEq)]
    enum Token {
        Word(String),
        Str(String),
        Open,
        Close,
        Equals,
    }
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '#' || (c == '/' && next == Some('/')) {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
        } else if c == '"' {
            let mut s = String::new();
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if let Some(&c) = chars.get(i) {
                    s.push(c);
                }
                i += 1;
            }
            i += 1;
            tokens.push(Token::Str(s));
        } else if c == '<' && next == Some('<') {
            // A heredoc: `<<EOF` or `<<-EOF`, to the line that is just the marker.
            let line_end = chars[i..]
                .iter()
                .position(|&c| c == '\n')
                .map_or(chars.len(), |n| i + n);
            let marker: String = chars[i + 2..line_end]
                .iter()
                .collect::<String>()
                .trim_start_matches('-')
                .trim()
                .to_owned();
            i = line_end;
            while i < chars.len() {
                let start = i + 1;
                let end = chars[start.min(chars.len())..]
                    .iter()
                    .position(|&c| c == '\n')
                    .map_or(chars.len(), |n| start + n);
                let line: String = chars[start.min(chars.len())..end].iter().collect();
                i = end;
                if line.trim() == marker {
                    break;
                }
            }
        } else if c == '{' {
            tokens.push(Token::Open);
            i += 1;
        } else if c == '}' {
            tokens.push(Token::Close);
            i += 1;
        } else if c == '=' {
            tokens.push(Token::Equals);
            i += 1;
        } else if c.is_alphanumeric() || c == '_' || c == '-' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '-')
            {
                i += 1;
            }
            tokens.push(Token::Word(chars[start..i].iter().collect()));
        } else {
            i += 1;
        }
    }

    let mut sources = Vec::new();
    let mut depth = 0usize;
    // The depth of the module block's body we are in, if any.
    let mut module_body: Option<usize> = None;
    let mut t = 0;
    while t < tokens.len() {
        match &tokens[t] {
            Token::Word(w) if w == "module" && depth == 0 => {
                if let (Some(Token::Str(_)), Some(Token::Open)) =
                    (tokens.get(t + 1), tokens.get(t + 2))
                {
                    depth += 1;
                    module_body = Some(depth);
                    t += 3;
                    continue;
                }
            }
            Token::Word(w) if w == "source" && module_body == Some(depth) => {
                if let (Some(Token::Equals), Some(Token::Str(s))) =
                    (tokens.get(t + 1), tokens.get(t + 2))
                {
                    sources.push(s.clone());
                    t += 3;
                    continue;
                }
            }
            Token::Open => depth += 1,
            Token::Close => {
                if module_body == Some(depth) {
                    module_body = None;
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
        t += 1;
    }
    sources
}

/// The repository holding a deployment, asked through the `git` program.
struct Git {
    /// Its top folder, canonical.
    top: PathBuf,
}

impl Git {
    /// The repository `dir` is in, or why there is none.
    fn open(dir: &Path) -> Result<Git, Error> {
        let out = run_git(dir, &["rev-parse", "--show-toplevel"])?;
        if !out.status.success() {
            return Err(Error::input(format!(
                "{} is not in a git repository: --changed and `cloud affected` compare the work \
                 tree with a git revision ({})",
                dir.display(),
                first_line(&out.stderr)
            ))
            .hint("run it in a clone of the repository, or name the stacks with --only"));
        }
        let top = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        Ok(Git {
            top: top.canonicalize().unwrap_or(top),
        })
    }

    fn git(&self, args: &[&str]) -> Result<std::process::Output, Error> {
        run_git(&self.top, args)
    }

    /// `args`' output when git succeeds.
    fn ok(&self, args: &[&str]) -> Result<Option<String>, Error> {
        let out = self.git(args)?;
        Ok(out
            .status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned()))
    }

    fn commit_of(&self, rev: &str) -> Result<Option<String>, Error> {
        self.ok(&[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ])
    }

    fn shallow(&self) -> bool {
        self.ok(&["rev-parse", "--is-shallow-repository"])
            .ok()
            .flatten()
            .is_some_and(|s| s == "true")
    }

    /// `--since REF`, or the merge base of HEAD with the remote's default branch, or `HEAD^`.
    fn base(&self, since: Option<&str>) -> Result<Base, Error> {
        if let Some(rev) = since {
            let Some(commit) = self.commit_of(rev)? else {
                return Err(unknown_revision(rev, self.shallow()));
            };
            return Ok(self.named(rev.to_owned(), commit));
        }
        if self.commit_of("HEAD")?.is_none() {
            return Err(Error::input(
                "the repository has no commit yet: --changed compares the work tree with one",
            )
            .hint("commit first, or pass --since REF"));
        }
        if let Some(branch) = self.default_branch()? {
            return match self.ok(&["merge-base", "HEAD", &branch])? {
                Some(commit) => Ok(self.named(format!("the merge base with {branch}"), commit)),
                None if self.shallow() => Err(Error::input(format!(
                    "HEAD and {branch} have no common commit in this shallow clone: the merge \
                     base to compare with was not fetched"
                ))
                .hint(
                    "fetch the whole history (`git fetch --unshallow`; in GitHub Actions, \
                     `actions/checkout` with `fetch-depth: 0`), or pass --since REF",
                )),
                None => Err(Error::input(format!(
                    "HEAD and {branch} have no common commit: nothing to compare with"
                ))
                .hint("pass the revision to compare with: --since REF")),
            };
        }
        match self.commit_of("HEAD^")? {
            Some(commit) => Ok(self.named("HEAD^".into(), commit)),
            None if self.shallow() => Err(Error::input(
                "HEAD^ is not in this shallow clone, and there is no origin/HEAD, origin/main or \
                 origin/master to compare with",
            )
            .hint(
                "fetch the history (`git fetch --unshallow`; in GitHub Actions, \
                 `actions/checkout` with `fetch-depth: 0`), or pass --since REF",
            )),
            None => Err(Error::input(
                "nothing to compare with: HEAD has no parent, and there is no origin/HEAD, \
                 origin/main or origin/master",
            )
            .hint("pass the revision to compare with: --since REF")),
        }
    }

    fn named(&self, name: String, commit: String) -> Base {
        let short = self
            .ok(&["rev-parse", "--short", &commit])
            .ok()
            .flatten()
            .unwrap_or_else(|| commit.chars().take(7).collect());
        Base {
            name,
            commit: short,
        }
    }

    /// `origin/HEAD`'s branch, else `origin/main` or `origin/master`, when there is one.
    fn default_branch(&self) -> Result<Option<String>, Error> {
        if let Some(head) = self.ok(&["symbolic-ref", "--quiet", "refs/remotes/origin/HEAD"])? {
            if let Some(branch) = head.strip_prefix("refs/remotes/") {
                if self.commit_of(branch)?.is_some() {
                    return Ok(Some(branch.to_owned()));
                }
            }
        }
        for branch in ["origin/main", "origin/master"] {
            if self.commit_of(branch)?.is_some() {
                return Ok(Some(branch.to_owned()));
            }
        }
        Ok(None)
    }

    /// Every path that differs between `commit` and the work tree (both sides of a rename),
    /// and every untracked file `.gitignore` does not leave out; relative to the top.
    fn changed_paths(&self, commit: &str) -> Result<BTreeSet<String>, Error> {
        let mut paths = BTreeSet::new();
        for args in [
            &["diff", "--name-only", "--no-renames", "-z", commit, "--"][..],
            &["ls-files", "--others", "--exclude-standard", "-z"][..],
        ] {
            let out = self.git(args)?;
            if !out.status.success() {
                return Err(Error::failed(format!(
                    "`git {}` failed: {}",
                    args.join(" "),
                    first_line(&out.stderr)
                )));
            }
            for path in out.stdout.split(|&b| b == 0).filter(|p| !p.is_empty()) {
                paths.insert(String::from_utf8_lossy(path).into_owned());
            }
        }
        Ok(paths)
    }

    /// The file at `path` (relative to the top) in `commit`; `None` when it has none there.
    fn show(&self, commit: &str, path: &str) -> Result<Option<String>, Error> {
        let spec = format!("{commit}:{path}");
        if self.ok(&["cat-file", "-e", &spec])?.is_none() {
            return Ok(None);
        }
        let out = self.git(&["show", &spec])?;
        if !out.status.success() {
            return Err(Error::failed(format!(
                "`git show {spec}` failed: {}",
                first_line(&out.stderr)
            )));
        }
        Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()))
    }

    /// `path` relative to the top, `/`-separated (`""`: the top itself); refused outside it.
    fn relative(&self, path: &Path, what: &str) -> Result<String, Error> {
        let full = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        match full.strip_prefix(&self.top) {
            Ok(rel) => Ok(rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/")),
            Err(_) => Err(Error::input(format!(
                "{} (of {what}) is outside the git repository {}: whether it changed cannot be told",
                path.display(),
                self.top.display()
            ))
            .hint("keep the stacks' paths in the repository, or name the stacks with --only")),
        }
    }
}

fn run_git(dir: &Path, args: &[&str]) -> Result<std::process::Output, Error> {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| {
            Error::input(format!(
                "--changed and `cloud affected` run git, which could not be started: {e}"
            ))
            .hint("install git and put it on PATH")
        })
}

fn first_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// `--since REF` names no commit here: say how to fetch it.
fn unknown_revision(rev: &str, shallow: bool) -> Error {
    let branch = rev.strip_prefix("origin/").unwrap_or(rev);
    let mut hint = format!("fetch it first, e.g. `git fetch origin {branch}`");
    if shallow {
        hint.push_str(
            "; this is a shallow clone: in GitHub Actions, `actions/checkout` with `fetch-depth: 0`",
        );
    }
    Error::input(format!(
        "unknown git revision `{rev}` (from --since): no such commit, branch or tag here"
    ))
    .hint(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_sources_are_read_from_module_blocks_only() {
        let tf = r#"
# module "commented" { source = "./no" }
/* module "block" { source = "./no" } */
module "vpc" {
  source = "../modules/vpc" // the network
  cidr   = "10.0.0.0/16"
  tags   = { source = "./not-a-module" }
}
resource "x" "y" {
  source = "./not-either"
  text = <<-EOT
    module "in_heredoc" { source = "./no" }
  EOT
}
module "registry" {
  source  = "terraform-aws-modules/vpc/aws"
  version = "5.0.0"
}
module "quoted" { source = "./a\"b" }
"#;
        assert_eq!(
            module_sources(tf),
            ["../modules/vpc", "terraform-aws-modules/vpc/aws", "./a\"b"]
        );
    }

    /// A path git reports counts for a stack exactly when changing it changes the stack's
    /// smart-skip fingerprint: one set of rules.
    #[test]
    fn a_file_counts_when_it_changes_the_fingerprint() {
        let top = tempfile::tempdir().unwrap();
        let root = top.path();
        let files = [
            "main.tf",
            "deep/er/vars.tf",
            "deployment.yaml",
            "journal/dev/run.jsonl",
            "logs/deploy.log.1",
            "plans/p/plan.json",
            "run.log",
            ".terraform/providers/x",
            "terraform.tfstate",
            "inner/own.sh",
            "skipped.tmp",
        ];
        for f in files {
            let path = root.join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, "a").unwrap();
        }
        std::fs::write(root.join(".cloudignore"), "*.tmp\n").unwrap();
        let ignores = [".terraform/", "terraform.tfstate"];
        let inner = root.join("inner");
        let others = [inner.as_path()];
        let ignore = fingerprint::ignore(root, &ignores, &others);
        for f in files {
            let before = fingerprint::files(root, &ignores, &others).unwrap();
            std::fs::write(root.join(f), "b").unwrap();
            let after = fingerprint::files(root, &ignores, &others).unwrap();
            assert_eq!(
                fingerprint::counts(root, f, &ignore),
                before != after,
                "{f}"
            );
        }
    }

    #[test]
    fn under_a_folder() {
        assert_eq!(under("a/b/c", "a/b"), Some("c"));
        assert_eq!(under("a/bc", "a/b"), None);
        assert_eq!(under("a/b", "a/b"), None);
        assert_eq!(under("x", ""), Some("x"));
    }

    #[test]
    fn normalize_lexically() {
        assert_eq!(
            normalize(Path::new("/r/stacks/app/../../modules/./a")),
            Path::new("/r/modules/a")
        );
    }
}
