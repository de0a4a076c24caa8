//! `completions/` and `man/` are generated from the command-line definitions; this keeps them
//! in sync. Run `UPDATE_GENERATED=1 cargo test --test generated` after changing the flags.

use std::path::Path;

#[test]
fn completions_and_man_pages_are_in_sync() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let update = std::env::var_os("UPDATE_GENERATED").is_some();
    let mut stale = Vec::new();
    for (rel, content) in cloud::cli::generated_files() {
        let path = root.join(&rel);
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &content).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(&content[..]) {
            stale.push(rel.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "out of date: {stale:?}; run `UPDATE_GENERATED=1 cargo test --test generated`"
    );
}

#[test]
fn the_completion_command_prints_the_committed_script() {
    let out = assert_cmd::Command::cargo_bin("cloud")
        .unwrap()
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let committed =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("completions/cloud.bash"))
            .unwrap();
    assert_eq!(out.stdout, committed);
    // The script calls `cloud` back for candidates rather than listing flags itself.
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("CLOUD_COMPLETE=\"bash\"") && text.contains("-F _clap_complete_cloud cloud")
    );
}

/// The README's command reference is generated too, so it names every command and flag.
#[test]
fn the_readme_reference_names_every_command_and_flag() {
    const BEGIN: &str =
        "<!-- commands:begin (generated: UPDATE_GENERATED=1 cargo test --test generated) -->\n";
    const END: &str = "<!-- commands:end -->";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (start, end) = match (readme.find(BEGIN), readme.find(END)) {
        (Some(s), Some(e)) if s < e => (s + BEGIN.len(), e),
        _ => panic!("README.md has no `{}` … `{END}` section", BEGIN.trim()),
    };
    let generated = cloud::cli::reference_markdown();
    if std::env::var_os("UPDATE_GENERATED").is_some() {
        let updated = format!("{}{generated}{}", &readme[..start], &readme[end..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert!(
        readme[start..end] == generated,
        "the README's command reference is out of date; run `UPDATE_GENERATED=1 cargo test --test generated`"
    );
    // Every subcommand has its heading (the generator could drop one silently otherwise).
    for sub in cloud::cli::command().get_subcommands() {
        if sub.get_name() != "help" {
            assert!(generated.contains(&format!("#### `cloud {}`", sub.get_name())));
        }
    }
}

/// `--help` and the man pages end with examples, exit status and environment; a subcommand's
/// page lists the global options and names the program's version where `man` shows it.
#[test]
fn help_and_man_pages_have_examples_exit_status_and_environment() {
    let help = assert_cmd::Command::cargo_bin("cloud")
        .unwrap()
        .args(["status", "--help"])
        .output()
        .unwrap();
    assert_eq!(help.status.code(), Some(0));
    let help = String::from_utf8(help.stdout).unwrap();
    for section in ["Examples:", "Exit status:", "Environment:"] {
        assert!(help.contains(section), "{section} missing from:\n{help}");
    }
    assert!(help.contains("cloud status D1BRV40 -e prod"), "{help}");
    assert!(
        help.contains("1    the latest run failed"),
        "status's own exit codes: {help}"
    );

    let pages = cloud::cli::generated_files();
    let page = |name: &str| {
        let (_, bytes) = pages
            .iter()
            .find(|(p, _)| p.ends_with(format!("{name}.1")))
            .unwrap();
        String::from_utf8(bytes.clone()).unwrap()
    };
    let deploy = page("cloud-deploy");
    for section in [
        ".SH \"EXAMPLES\"",
        ".SH \"EXIT STATUS\"",
        ".SH \"ENVIRONMENT\"",
    ] {
        assert!(deploy.contains(section), "{section}");
    }
    assert!(deploy.contains("\\-\\-root") && deploy.contains("\\-\\-verbose"));
    let title = deploy.lines().find(|l| l.starts_with(".TH")).unwrap();
    assert!(
        title.contains(&format!("\"cloud {}\"", env!("CARGO_PKG_VERSION"))),
        "{title}"
    );
    assert_eq!(deploy.matches(".ie \\n(.g").count(), 1);
}
