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
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("--environment") && text.contains("--parallelism"));
}
