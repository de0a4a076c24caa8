//! What Tab offers for values: the deployments under `--root`, the environments of the chosen
//! deployment, its stacks. The shell scripts in `completions/` call `cloud` back with
//! `CLOUD_COMPLETE=<shell>` (clap_complete's dynamic engine); the candidates are read from the tree
//! each time, so a new deployment or stack completes without regenerating anything.
//!
//! A candidate function gets no arguments, so "the chosen deployment" is read from the words
//! typed so far, which the engine passes on our own command line after `--`, parsed with the
//! command-line definition the caller hands in (`cli` uses this module, not the other way round).

use std::ffi::OsString;
use std::path::PathBuf;

use clap_complete::engine::{ArgValueCandidates, CompletionCandidate};

use crate::manifest;

/// The command-line definition, to read the words typed.
pub type Cli = fn() -> clap::Command;

/// Deployment IDs: the folders of `cloud/deploy/` holding a `deployment.yaml`.
pub fn deployment_ids(cli: Cli) -> ArgValueCandidates {
    ArgValueCandidates::new(move || {
        let typed = Typed::from_env(cli);
        manifest::deployments(&typed.root)
            .into_iter()
            .map(CompletionCandidate::new)
            .collect::<Vec<_>>()
    })
}

/// The chosen deployment's `environments`.
pub fn environments(cli: Cli) -> ArgValueCandidates {
    ArgValueCandidates::new(move || {
        Typed::from_env(cli)
            .outline()
            .map(|m| {
                m.environments
                    .into_iter()
                    .map(CompletionCandidate::new)
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// The chosen deployment's stacks, each with its dependencies as help; in a list
/// (`--only network,dns,`) those already named are not offered again.
pub fn stacks(cli: Cli) -> ArgValueCandidates {
    ArgValueCandidates::new(move || {
        let typed = Typed::from_env(cli);
        let Some(manifest) = typed.outline() else {
            return Vec::new();
        };
        let current = typed.current.to_string_lossy();
        let named: Vec<&str> = current.split(',').collect();
        let named = &named[..named.len() - 1];
        manifest
            .stacks
            .into_iter()
            .filter(|stack| !named.contains(&stack.name.as_str()))
            .map(|stack| {
                let help = match stack.dependencies.is_empty() {
                    true => String::from("no dependencies"),
                    false => format!("after {}", stack.dependencies.join(", ")),
                };
                CompletionCandidate::new(stack.name).help(Some(help.into()))
            })
            .collect()
    })
}

/// Git revisions for `--since`: the branches (local and remote) and tags of the repository
/// holding `--root`, as git names them.
pub fn git_revisions(cli: Cli) -> ArgValueCandidates {
    ArgValueCandidates::new(move || {
        let typed = Typed::from_env(cli);
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&typed.root)
            .args(["for-each-ref", "--format=%(refname:short)"])
            .args(["refs/heads", "refs/remotes", "refs/tags"])
            .output();
        out.ok()
            .filter(|o| o.status.success())
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(CompletionCandidate::new)
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// What the words typed say: the root and the deployment ID (before the cursor), and the word
/// being completed.
struct Typed {
    root: PathBuf,
    id: Option<String>,
    current: OsString,
}

impl Typed {
    fn from_env(cli: Cli) -> Typed {
        let cursor = std::env::var("_CLAP_COMPLETE_INDEX")
            .ok()
            .and_then(|i| i.parse().ok());
        let (words, current) = split_at_cursor(std::env::args_os().collect(), cursor);
        Typed::from_words(cli(), words, current)
    }

    /// Parses `cloud ...` leniently (a half-typed line is missing required values).
    fn from_words(cli: clap::Command, words: Vec<OsString>, current: OsString) -> Typed {
        let matches = cli.ignore_errors(true).try_get_matches_from(words).ok();
        let mut root =
            std::env::var_os("CLOUD_ROOT").map_or_else(|| PathBuf::from("."), PathBuf::from);
        let mut id = None;
        let mut level = matches.as_ref();
        while let Some(m) = level {
            if let Ok(Some(r)) = m.try_get_one::<PathBuf>("root") {
                root.clone_from(r);
            }
            if let Ok(Some(found)) = m.try_get_one::<String>("id") {
                id = Some(found.clone());
            }
            level = m.subcommand().map(|(_, sub)| sub);
        }
        Typed { root, id, current }
    }

    /// Names only: Tab needs no validated manifest, and reading one costs 20 times more.
    fn outline(&self) -> Option<manifest::outline::Outline> {
        manifest::outline::outline(&self.root, self.id.as_deref()?)
    }
}

/// Our command line while completing is `cloud -- cloud deploy D1 -e <cursor word> ...`: the
/// words after `--` before the one being completed, and that one. Bash says which word it is in
/// `_CLAP_COMPLETE_INDEX`; the other shells complete the last word.
fn split_at_cursor(args: Vec<OsString>, cursor: Option<usize>) -> (Vec<OsString>, OsString) {
    let mut words: Vec<OsString> = match args.iter().position(|a| a == "--") {
        Some(dash) => args[dash + 1..].to_vec(),
        None => return (Vec::new(), OsString::new()),
    };
    let cursor = cursor.unwrap_or(words.len().saturating_sub(1));
    let current = words.get(cursor).cloned().unwrap_or_default();
    words.truncate(cursor);
    (words, current)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(line: &str) -> Typed {
        let words = line.split(' ').map(OsString::from).collect();
        Typed::from_words(crate::cli::command(), words, OsString::new())
    }

    #[test]
    fn the_deployment_and_root_come_from_the_words_typed() {
        let t = typed("cloud --root /srv/infra deploy D1BRV40 -e");
        assert_eq!(
            (t.root, t.id.as_deref()),
            (PathBuf::from("/srv/infra"), Some("D1BRV40"))
        );
        let t = typed("cloud logs D2 --stack");
        assert_eq!(t.id.as_deref(), Some("D2"));
        let t = typed("cloud notify test D3 --root elsewhere -e");
        assert_eq!(
            (t.root, t.id.as_deref()),
            (PathBuf::from("elsewhere"), Some("D3"))
        );
        assert_eq!(typed("cloud deploy").id, None);
    }

    #[test]
    fn only_the_words_before_the_cursor_count() {
        let args = ["cloud", "--", "cloud", "deploy", "D1", "-e", "d"].map(OsString::from);
        let split = |cursor| split_at_cursor(args.to_vec(), cursor);
        assert_eq!(split(None), (args[2..6].to_vec(), OsString::from("d")));
        // The cursor back on the ID: what follows it does not count.
        assert_eq!(split(Some(2)), (args[2..4].to_vec(), OsString::from("D1")));
        assert_eq!(
            split_at_cursor(vec![OsString::from("cloud")], None).0.len(),
            0
        );
    }
}
