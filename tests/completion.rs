//! The committed completion scripts, driven through the real shells: bash's completion function
//! called the way bash calls it on Tab (COMP_WORDS / COMP_CWORD), and fish's `complete -C`.
//! Both call the real `cloud` back for candidates. And the man pages render through `man`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::example_project;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// PATH with the built `cloud` first, as an installed one would be.
fn path_with_cloud() -> String {
    let bin = assert_cmd::cargo::cargo_bin("cloud");
    let dir = bin.parent().unwrap().display().to_string();
    format!("{dir}:{}", std::env::var("PATH").unwrap_or_default())
}

/// Whether a shell the test needs is installed; in CI its absence fails the test.
fn have(shell: &str) -> bool {
    let found = Command::new(shell).arg("--version").output().is_ok();
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(
        found || !ci,
        "{shell} is not installed (.ci/run installs it)"
    );
    if !found {
        eprintln!("skipped outside CI: {shell} is not installed");
    }
    found
}

/// Runs `shell ARGS` in `cwd` with the built `cloud` on PATH; its stdout, once it succeeded.
fn run_shell(cwd: &Path, shell: &str, args: &[&str]) -> String {
    let out = Command::new(shell)
        .args(args)
        .current_dir(cwd)
        .env("PATH", path_with_cloud())
        .env_remove("CLOUD_ROOT")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{shell}: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// Each line of `lines` is a command line typed up to the cursor (a trailing space means a new,
/// empty word); returns what bash's completion function offers for each.
fn bash_complete(cwd: &Path, lines: &[&str]) -> Vec<Vec<String>> {
    let mut script = format!(
        "source {}\n",
        repo().join("completions/cloud.bash").display()
    );
    script.push_str(
        r#"t() {
    read -ra COMP_WORDS <<<"$1"
    [[ "$1" == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMP_LINE="$1"; COMP_POINT=${#1}; COMP_TYPE=9
    COMPREPLY=()
    _clap_complete_cloud cloud "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    local IFS=' '; echo "${COMPREPLY[*]}"
}
"#,
    );
    for line in lines {
        script.push_str(&format!("t '{line}'\n"));
    }
    let text = run_shell(cwd, "bash", &["--norc", "--noprofile", "-c", &script]);
    let replies: Vec<Vec<String>> = text
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect();
    assert_eq!(replies.len(), lines.len(), "{text}");
    replies
}

/// The example's environments and stacks, as the manifest says (read through the library).
fn example_names(root: &Path) -> (Vec<String>, Vec<String>) {
    let m = cloud::manifest::load(root, "D1BRV40", &cloud::executor::registry()).unwrap();
    let stacks = m.stacks.iter().map(|s| s.name.clone()).collect();
    (m.environments, stacks)
}

#[test]
fn bash_completes_deployments_environments_and_stacks_of_the_example() {
    let p = example_project();
    p.manifest(
        "A0SECOND",
        "deploymentId: A0SECOND\nenvironments: [qa]\nstacks:\n  only: { executor: simulate }\n",
    );
    let (environments, stacks) = example_names(p.root());
    assert!(environments.contains(&"dev".into()) && stacks.len() >= 10);

    let got = bash_complete(
        p.root(),
        &[
            "cloud dep",
            "cloud deploy D",
            "cloud deploy D1BRV40 -e ",
            "cloud deploy D1BRV40 --environment s",
            "cloud deploy A0SECOND -e ",
            "cloud deploy D1BRV40 -e dev --only ",
            "cloud deploy D1BRV40 -e dev --only network,",
            "cloud logs D1BRV40 -e dev --stack ",
            "cloud deploy D1BRV40 --fo",
            "cloud destroy ",
            "cloud history ",
        ],
    );
    assert_eq!(got[0], ["deploy"]);
    assert_eq!(got[1], ["D1BRV40"]);
    assert_eq!(got[2], environments);
    assert_eq!(got[3], ["stage"]);
    assert_eq!(got[4], ["qa"], "the environments of the deployment typed");
    assert_eq!(got[5], stacks);
    let rest: Vec<String> = stacks
        .iter()
        .filter(|s| *s != "network")
        .map(|s| format!("network,{s}"))
        .collect();
    assert_eq!(
        got[6], rest,
        "a stack already in the list is not offered again"
    );
    assert_eq!(got[7], stacks);
    assert_eq!(got[8], ["--force"]);
    // An empty word: both deployments (sorted) come first, then the flags.
    for reply in &got[9..] {
        assert_eq!(reply[..2], ["A0SECOND", "D1BRV40"], "{reply:?}");
        assert!(reply.contains(&"--environment".into()) || reply.contains(&"--root".into()));
    }
}

#[test]
fn bash_follows_root_given_on_the_line_and_offers_nothing_for_an_unknown_deployment() {
    let p = example_project();
    let (environments, _) = example_names(p.root());
    let root = p.root().display().to_string();
    let elsewhere = tempfile::tempdir().unwrap();
    let got = bash_complete(
        elsewhere.path(),
        &[
            &format!("cloud --root {root} deploy D1BRV40 -e "),
            &format!("cloud status D1BRV40 --root {root} -e "),
            "cloud deploy D1BRV40 -e ",
            &format!("cloud --root {root} deploy NOPE -e "),
        ],
    );
    assert_eq!(got[0], environments);
    assert_eq!(
        got[1], environments,
        "--root after the subcommand counts too"
    );
    assert!(
        got[2].is_empty(),
        "no deployment under the current folder: {:?}",
        got[2]
    );
    assert!(got[3].is_empty(), "{:?}", got[3]);
}

#[test]
fn fish_completes_the_same_values_through_its_own_script() {
    if !have("fish") {
        return;
    }
    let p = example_project();
    let (environments, stacks) = example_names(p.root());
    let script = format!(
        "source {}; complete -C 'cloud deploy D1BRV40 -e '; echo ---; \
         complete -C 'cloud deploy D1BRV40 -e dev --only '",
        repo().join("completions/cloud.fish").display()
    );
    let text = run_shell(p.root(), "fish", &["--no-config", "-c", &script]);
    let (envs, stack_lines) = text.split_once("---\n").unwrap();
    let first = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| l.split('\t').next().unwrap().to_owned())
            .collect()
    };
    assert_eq!(first(envs), environments);
    assert_eq!(first(stack_lines), stacks);
    // The help column says what each stack waits for.
    assert!(
        stack_lines.contains("network\tno dependencies"),
        "{stack_lines}"
    );
}

fn man_pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(repo().join("man"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    pages.sort();
    pages
}

#[test]
fn every_man_page_renders_through_man_without_warnings() {
    let pages = man_pages();
    // One page per subcommand, and the top one.
    let subcommands: Vec<String> = cloud::cli::command()
        .get_subcommands()
        .map(|s| format!("cloud-{}.1", s.get_name()))
        .collect();
    for name in subcommands.iter().chain([&"cloud.1".to_string()]) {
        assert!(
            pages.iter().any(|p| p.ends_with(name)),
            "man/{name} is missing"
        );
    }
    for page in pages {
        let out = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(&page)
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat")
            .output()
            .expect("man is installed");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty(),
            "{}: {stderr}",
            page.display()
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let stem = page.file_stem().unwrap().to_string_lossy();
        assert!(
            text.contains("NAME") && text.contains(&*stem) && text.contains("SYNOPSIS"),
            "{}: {text}",
            page.display()
        );
    }
}
