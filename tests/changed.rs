//! Only what changed: `cloud affected` and `--changed`, in a real git repository each test makes
//! (git itself, as CI has it): a stack's files, a local Terraform module two levels down, a
//! manifest entry, an untracked file; their dependents; the base revision; the errors.

mod common;

use std::path::Path;

use common::*;
use serde_json::{json, Value};

/// Three chains and a bystander. `api` uses `modules/a`, which uses `modules/b`.
const MANIFEST: &str = r#"
environments: [dev]
defaults: { executor: command }
stacks:
  network: { path: stacks/network, deploy: "true", destroy: "true" }
  db:      { path: stacks/db, deploy: "true", destroy: "true", dependencies: [network] }
  app:     { path: stacks/app, deploy: "true", destroy: "true", dependencies: [db] }
  api:     { path: stacks/api, deploy: "true", destroy: "true" }
  web:     { path: stacks/web, deploy: "true", destroy: "true", dependencies: [api] }
  dns:     { path: stacks/dns, deploy: "true", destroy: "true" }
  mail:    { path: stacks/mail, deploy: "true", destroy: "true", dependencies: [dns] }
  edge:    { path: stacks/edge, deploy: "true", destroy: "true", dependencies: [network] }
"#;

const D: &str = "cloud/deploy/D1";

/// A project that is a git repository.
struct Repo {
    p: Project,
}

impl Repo {
    /// The project, committed once on `main`.
    fn new() -> Repo {
        let p = Project::new();
        p.manifest("D1", MANIFEST);
        for stack in ["network", "db", "app", "api", "web", "dns", "mail", "edge"] {
            p.file("D1", &format!("stacks/{stack}/deploy.sh"), "true\n");
        }
        p.file("D1", "stacks/db/schema.sql", "create table t (id int);\n");
        p.file(
            "D1",
            "stacks/api/main.tf",
            "module \"a\" {\n  source = \"../../modules/a\"\n}\n",
        );
        p.file(
            "D1",
            "modules/a/main.tf",
            "module \"b\" {\n  source = \"../b\" # the inner one\n}\n",
        );
        p.file(
            "D1",
            "modules/b/main.tf",
            "resource \"terraform_data\" \"b\" {}\n",
        );
        let repo = Repo { p };
        repo.git(&["init", "--quiet", "--initial-branch=main"]);
        repo.commit("first");
        repo
    }

    fn root(&self) -> &Path {
        self.p.root()
    }

    fn git(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(self.root())
            .args(["-c", "user.email=test@example.com", "-c", "user.name=Test"])
            .args(["-c", "commit.gpgsign=false"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "--quiet", "--allow-empty", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// `origin/main` (and `origin/HEAD`) at `commit`, as a clone would have them.
    fn origin_main_at(&self, commit: &str) {
        self.git(&["update-ref", "refs/remotes/origin/main", commit]);
        self.git(&[
            "symbolic-ref",
            "refs/remotes/origin/HEAD",
            "refs/remotes/origin/main",
        ]);
    }

    fn write(&self, rel: &str, content: &str) {
        self.p.file("D1", rel, content);
    }

    /// The change of the tests, spread over two commits after `origin/main`, the work tree
    /// and an untracked file: db's file, the module two levels down, dns's entry, an
    /// untracked file of edge's. A log file of network's is no part of it (as for smart skip).
    fn change(&self) {
        let first = self.git(&["rev-parse", "HEAD"]);
        self.origin_main_at(&first);
        self.write("stacks/db/schema.sql", "create table t (id bigint);\n");
        self.commit("db: a wider id");
        self.write(
            "modules/b/main.tf",
            "resource \"terraform_data\" \"b\" { input = 2 }\n",
        );
        self.commit("modules/b: an input");
        let manifest = MANIFEST.replace(
            r#"dns:     { path: stacks/dns, deploy: "true""#,
            r#"dns:     { path: stacks/dns, deploy: "true; true""#,
        );
        assert_ne!(manifest, MANIFEST);
        self.p.manifest("D1", &manifest);
        self.write("stacks/edge/notes.txt", "untracked\n");
        self.write("stacks/network/run.log", "noise\n");
    }

    fn cloud(&self, args: &[&str]) -> std::process::Output {
        self.p.cmd().args(args).output().unwrap()
    }

    fn affected(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.cloud(&[&["affected", "D1"], args].concat());
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

fn reasons_of(list: &Value) -> Vec<(String, Vec<String>, u64)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["stack"].as_str().unwrap().to_owned(),
                s["reasons"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap().to_owned())
                    .collect(),
                s["layer"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn row(stack: &str, reasons: &[&str], layer: u64) -> (String, Vec<String>, u64) {
    (
        stack.to_owned(),
        reasons.iter().map(|r| r.to_string()).collect(),
        layer,
    )
}

#[test]
fn affected_names_the_changed_stacks_and_their_dependents_with_reasons() {
    let repo = Repo::new();
    repo.change();
    let (code, out, err) = repo.affected(&["--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    // By layer, then as written; the base is the merge base with origin/main (the first
    // commit), so both later commits count, as do the work tree and the untracked file.
    assert_eq!(
        reasons_of(&list),
        vec![
            row("api", &[&format!("module: {D}/modules/b")], 1),
            row("dns", &["manifest"], 1),
            row("db", &[&format!("files: {D}/stacks/db/schema.sql")], 2),
            row("web", &["dependency: api"], 2),
            row("mail", &["dependency: dns"], 2),
            row("edge", &[&format!("files: {D}/stacks/edge/notes.txt")], 2),
            row("app", &["dependency: db"], 3),
        ]
    );

    let (code, text, err) = repo.affected(&[]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("D1: 7 of 8 stacks affected since the merge base with origin/main ("),
        "{text}"
    );
    assert_eq!(
        lines[1..],
        [
            format!("  api   layer 1  module: {D}/modules/b"),
            "  dns   layer 1  manifest".to_owned(),
            format!("  db    layer 2  files: {D}/stacks/db/schema.sql"),
            "  web   layer 2  dependency: api".to_owned(),
            "  mail  layer 2  dependency: dns".to_owned(),
            format!("  edge  layer 2  files: {D}/stacks/edge/notes.txt"),
            "  app   layer 3  dependency: db".to_owned(),
        ]
    );

    let (code, matrix, err) = repo.affected(&["--output", "github-matrix"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        matrix.lines().count(),
        1,
        "one line for $GITHUB_OUTPUT: {matrix}"
    );
    let matrix: Value = serde_json::from_str(&matrix).unwrap();
    assert_eq!(
        matrix,
        json!({"include": [
            {"stack": "api", "layer": 1}, {"stack": "dns", "layer": 1},
            {"stack": "db", "layer": 2}, {"stack": "web", "layer": 2},
            {"stack": "mail", "layer": 2}, {"stack": "edge", "layer": 2},
            {"stack": "app", "layer": 3},
        ]})
    );
}

#[test]
fn no_dependents_leaves_them_out_and_since_picks_the_base() {
    let repo = Repo::new();
    repo.change();
    let (code, out, err) = repo.affected(&["--no-dependents", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let names: Vec<String> = reasons_of(&serde_json::from_str(&out).unwrap())
        .into_iter()
        .map(|(name, _, _)| name)
        .collect();
    assert_eq!(names, ["api", "dns", "db", "edge"]);

    // Since the last commit: the module change is in it, so no longer counts.
    let (code, out, err) = repo.affected(&["--since", "HEAD", "--no-dependents", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let names: Vec<String> = reasons_of(&serde_json::from_str(&out).unwrap())
        .into_iter()
        .map(|(name, _, _)| name)
        .collect();
    assert_eq!(names, ["dns", "edge"]);
}

#[test]
fn without_a_remote_the_base_is_the_parent_commit() {
    let repo = Repo::new();
    repo.write("stacks/db/schema.sql", "create table t (id bigint);\n");
    repo.commit("db");
    repo.write(
        "stacks/api/main.tf",
        "module \"a\" {\n  source = \"../../modules/a\"\n}\n# x\n",
    );
    repo.commit("api");
    let (code, out, err) = repo.affected(&["--no-dependents"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("D1: 1 of 8 stacks affected since HEAD^ ("),
        "{out}"
    );
    assert!(
        out.contains(&format!("api  layer 1  files: {D}/stacks/api/main.tf")),
        "{out}"
    );
}

#[test]
fn deploy_changed_deploys_only_what_changed_and_its_dependents() {
    let repo = Repo::new();
    let (code, events, out) = repo.p.deploy_json("D1", &[]);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stacks_of(&events, "stack_deployed").len(), 8);
    repo.change();

    let (code, events, out) = repo.p.deploy_json("D1", &["--changed"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code, 0, "{stderr}");
    let mut deployed = stacks_of(&events, "stack_deployed");
    deployed.sort();
    assert_eq!(deployed, ["api", "app", "db", "dns", "edge", "mail", "web"]);
    let not_selected: Vec<&Value> = of_type(&events, "stack_skipped");
    assert_eq!(not_selected.len(), 1, "{not_selected:?}");
    assert_eq!(not_selected[0]["data"]["stack"], "network");
    // The journal says the same, and stderr said why.
    let journal = repo.p.journal("D1", "dev");
    let mut journaled = stacks_of(&journal, "stack_deployed");
    journaled.sort();
    assert_eq!(journaled, deployed);
    assert!(
        stderr.contains("D1: 7 of 8 stacks affected since"),
        "{stderr}"
    );

    // --only and --changed do not mix.
    let out = repo.cloud(&["deploy", "D1", "-e", "dev", "--changed", "--only", "db"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
}

#[test]
fn nothing_changed_runs_nothing_and_exits_0() {
    let repo = Repo::new();
    repo.change();
    repo.commit("all of it");
    let journal = repo.p.deployment_dir("D1").join("journal");
    for command in [
        &["deploy", "D1", "-e", "dev", "--changed", "--since", "HEAD"][..],
        &["plan", "D1", "-e", "dev", "--changed", "--since", "HEAD"][..],
        &[
            "destroy",
            "D1",
            "-e",
            "dev",
            "--yes",
            "--changed",
            "--since",
            "HEAD",
        ][..],
        &["graph", "D1", "--changed", "--since", "HEAD"][..],
    ] {
        let out = repo.cloud(command);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{command:?}: {stderr}");
        assert!(
            stderr.contains("D1: nothing changed since HEAD ("),
            "{command:?}: {stderr}"
        );
        assert!(!journal.exists(), "{command:?} ran something");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "", "{command:?}");
    }
}

#[test]
fn graph_changed_shows_the_selection_by_layer() {
    let repo = Repo::new();
    repo.change();
    let out = repo.cloud(&["graph", "D1", "--changed", "--no-dependents", "-f", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let graph: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(graph["totalStacks"], 4);
    assert_eq!(
        graph["layers"][0]["stacks"],
        json!(["api", "dns", "db", "edge"])
    );
}

#[test]
fn destroy_changed_destroys_the_selection_dependents_first_and_warns_of_deleted_stacks() {
    let repo = Repo::new();
    let (code, _, out) = repo.p.deploy_json("D1", &[]);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    // db's file changes; `edge` leaves the manifest.
    repo.write("stacks/db/schema.sql", "create table t (id bigint);\n");
    let manifest: String = MANIFEST
        .lines()
        .filter(|l| !l.contains("edge:"))
        .map(|l| format!("{l}\n"))
        .collect();
    repo.p.manifest("D1", &manifest);

    let out = repo.cloud(&[
        "destroy",
        "D1",
        "-e",
        "dev",
        "--yes",
        "--changed",
        "--since",
        "HEAD",
        "-o",
        "json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let events = parse_events(&out.stdout);
    assert_eq!(
        stacks_of(&events, "stack_destroyed"),
        ["app", "db"],
        "app goes first"
    );
    assert!(
        stderr.contains("stack `edge` is in the manifest at HEAD (")
            && stderr.contains("destroy it from a checkout of that revision"),
        "{stderr}"
    );

    let out = repo.cloud(&[
        "destroy",
        "D1",
        "-e",
        "dev",
        "--yes",
        "--changed",
        "--no-dependents",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("drop --no-dependents"));
}

#[test]
fn outside_a_repository_it_says_so_and_exits_2() {
    let p = Project::new();
    p.manifest("D1", MANIFEST);
    for stack in ["network", "db", "app", "api", "web", "dns", "mail", "edge"] {
        p.file("D1", &format!("stacks/{stack}/deploy.sh"), "true\n");
    }
    for command in [
        &["affected", "D1"][..],
        &["deploy", "D1", "-e", "dev", "--changed"][..],
    ] {
        let out = p
            .cmd()
            .env("GIT_CEILING_DIRECTORIES", p.root().parent().unwrap())
            .args(command)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command:?}: {stderr}");
        assert!(stderr.contains("is not in a git repository"), "{stderr}");
        assert!(stderr.contains("--only"), "{stderr}");
    }
}

#[test]
fn an_unknown_revision_is_named_with_how_to_fetch_it() {
    let repo = Repo::new();
    let (code, _, err) = repo.affected(&["--since", "origin/release"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("unknown git revision `origin/release`"),
        "{err}"
    );
    assert!(err.contains("git fetch origin release"), "{err}");

    let out = repo.cloud(&["plan", "D1", "-e", "dev", "--since", "HEAD"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since only goes with --changed"));
}

#[test]
fn a_shallow_clone_without_the_merge_base_says_fetch_depth_0() {
    let repo = Repo::new();
    let upstream = repo.root().to_path_buf();
    let clone = tempfile::tempdir().unwrap();
    let url = format!("file://{}", upstream.display());
    let git = |dir: &Path, args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.email=t@example.com", "-c", "user.name=T"])
            .args(["-c", "commit.gpgsign=false"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(
        clone.path(),
        &["clone", "--quiet", "--depth", "1", &url, "c"],
    );
    let work = clone.path().join("c");
    // The pull request's branch, and main moving on upstream: the new main, fetched shallow,
    // shares no fetched commit with it.
    git(&work, &["checkout", "--quiet", "-b", "feature"]);
    git(
        &work,
        &["commit", "--quiet", "--allow-empty", "-m", "feature"],
    );
    repo.commit("main 2");
    repo.commit("main 3");
    git(
        &work,
        &[
            "fetch",
            "--quiet",
            "--depth",
            "1",
            "origin",
            "+main:refs/remotes/origin/main",
        ],
    );

    let out = cloud()
        .arg("--root")
        .arg(&work)
        .args(["affected", "D1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("shallow clone"), "{stderr}");
    assert!(stderr.contains("fetch-depth: 0"), "{stderr}");
}

/// What Tab offers for the words of `line` (the last one being completed), through the
/// completion protocol the scripts in completions/ speak.
fn complete(root: &Path, line: &[&str]) -> Vec<String> {
    let out = cloud()
        .current_dir(root)
        .env("CLOUD_COMPLETE", "bash")
        .env("_CLAP_IFS", "\n")
        .env("_CLAP_COMPLETE_INDEX", (line.len() - 1).to_string())
        .arg("--")
        .args(line)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn tab_completes_affected_like_the_other_commands_and_since_from_git() {
    let repo = Repo::new();
    repo.git(&["tag", "v1"]);
    let first = repo.git(&["rev-parse", "HEAD"]);
    repo.origin_main_at(&first);
    assert!(complete(repo.root(), &["cloud", "aff"]).contains(&"affected".to_owned()));
    assert_eq!(complete(repo.root(), &["cloud", "affected", ""])[0], "D1");
    assert_eq!(
        complete(repo.root(), &["cloud", "affected", "D1", "-e", ""]),
        ["dev"]
    );
    let revisions = complete(repo.root(), &["cloud", "affected", "D1", "--since", ""]);
    for want in ["main", "origin/main", "v1"] {
        assert!(revisions.contains(&want.to_owned()), "{revisions:?}");
    }
    let revisions = complete(
        repo.root(),
        &["cloud", "deploy", "D1", "--changed", "--since", "or"],
    );
    assert!(
        revisions.iter().all(|r| r.starts_with("or")) && !revisions.is_empty(),
        "{revisions:?}"
    );
}

#[test]
fn plan_and_validate_take_changed_too() {
    let repo = Repo::new();
    let (code, _, out) = repo.p.deploy_json("D1", &[]);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    repo.change();

    let out = repo.cloud(&[
        "plan",
        "D1",
        "-e",
        "dev",
        "--changed",
        "--no-dependents",
        "-o",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut planned = stacks_of(&parse_events(&out.stdout), "stack_planned");
    planned.sort();
    assert_eq!(planned, ["api", "db", "dns", "edge"]);

    let out = repo.cloud(&["validate", "D1", "--changed"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("is valid: 8 stacks"));
    assert!(
        stderr.contains("D1: 7 of 8 stacks affected since"),
        "{stderr}"
    );
}

#[test]
fn a_dependency_never_deployed_is_named_with_a_fix_that_fits_changed() {
    let repo = Repo::new();
    repo.write("stacks/db/schema.sql", "create table t (id bigint);\n");
    let out = repo.cloud(&["deploy", "D1", "-e", "dev", "--changed", "--since", "HEAD"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`db` depends on `network`, which has never been deployed to dev"),
        "{stderr}"
    );
    assert!(
        stderr.contains("cloud deploy D1 -e dev --only network"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("add it: --only"),
        "--only does not go with --changed: {stderr}"
    );
}
