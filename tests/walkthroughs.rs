//! The README's walkthroughs, run as written: each ```sh block after a
//! `<!-- walkthrough: NAME … -->` line runs with `bash -e` in an empty folder, with the
//! `cloud` under test first on PATH. A walkthrough that stops working fails here.

mod common;

use std::path::Path;
use std::process::Command;

/// `(name, script)` of every walkthrough in the README, dedented as a reader copies it.
fn walkthroughs() -> Vec<(String, String)> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let mut found = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.trim().strip_prefix("<!-- walkthrough: ") else {
            continue;
        };
        let name = rest.split_whitespace().next().unwrap().to_owned();
        let fence = lines.next().expect("a ```sh block after the marker");
        let indent = fence.len() - fence.trim_start().len();
        assert_eq!(
            fence.trim(),
            "```sh",
            "walkthrough {name}: a ```sh block must follow"
        );
        let mut script = String::new();
        for line in lines.by_ref() {
            if line.trim() == "```" {
                break;
            }
            script.push_str(line.get(indent..).unwrap_or(""));
            script.push('\n');
        }
        found.push((name, script));
    }
    found
}

/// Runs a walkthrough; its output (stdout and stderr) when it succeeded.
fn run(name: &str, script: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("cloud");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .args(["-e", "-o", "pipefail", "-c", script])
        .current_dir(dir.path())
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .env("TF_IN_AUTOMATION", "1")
        .env_remove("CLOUD_ROOT")
        .env_remove("CLOUD_TERRAFORM_BIN")
        .env_remove("CLOUD_DYNAMODB_TABLE")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the README's {name} walkthrough failed ({}):\n{text}",
        out.status
    );
    text
}

#[test]
fn the_readme_walkthroughs_work_as_written() {
    let all = walkthroughs();
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"terraform"), "{names:?}");
    for (name, script) in &all {
        match name.as_str() {
            "terraform" => {
                if common::real_terraform().is_none() {
                    continue;
                }
                let text = run(name, script);
                // Deployed, then skipped, then planned with no change, then destroyed (app too).
                assert!(text.contains("deploying into zone "), "{text}");
                assert!(text.contains("Smart skip: 3 stacks unchanged"), "{text}");
                // The deployed module and the simulated network plan no change.
                let unchanged = text
                    .lines()
                    .filter(|l| l.contains("Planned (") && l.ends_with("): no changes"))
                    .count();
                assert_eq!(unchanged, 2, "{text}");
                assert!(text.contains("removing the app from zone "), "{text}");
                assert!(!text.contains("cannot destroy stack"), "{text}");
            }
            "pulumi" => {
                // Pulumi is not on the machine image; where it is installed, this runs too.
                let installed = Command::new("pulumi")
                    .arg("version")
                    .output()
                    .is_ok_and(|o| o.status.success());
                if !installed {
                    eprintln!("\n*** SKIPPED the README's pulumi walkthrough: pulumi is not installed ***\n");
                    continue;
                }
                let text = run(name, script);
                assert!(text.contains("Hello, from HELLO-dev"), "{text}");
            }
            "changed" => {
                let text = run(name, script);
                // The module two levels below api: api, then web through it; nothing since HEAD.
                assert!(
                    text.contains("SHOP: 2 of 4 stacks affected since HEAD^ (")
                        && text
                            .contains("  api  layer 2  module: cloud/deploy/SHOP/modules/logging")
                        && text.contains("  web  layer 3  dependency: api"),
                    "{text}"
                );
                assert!(
                    text.contains("[network] ↷ Skipped (not selected)"),
                    "{text}"
                );
                assert!(text.contains("(2 deployed, 2 skipped)"), "{text}");
                assert!(
                    text.contains("SHOP: nothing changed since HEAD ("),
                    "{text}"
                );
            }
            "drift" => {
                let text = run(name, script);
                assert!(
                    text.contains("[security] ⚠ drifted: aws:ec2/securityGroup:SecurityGroup (web-sg): ingress[0].cidr now \"0.0.0.0/0\""),
                    "{text}"
                );
                assert!(text.contains("cloud drift exited 2"), "{text}");
                assert!(text.contains("drifted since "), "{text}");
                assert!(text.contains("runs again: drifted since"), "{text}");
                assert!(
                    text.contains("[network] ↷ Skipped (not selected)"),
                    "{text}"
                );
            }
            other => panic!("no check for the README's `{other}` walkthrough: add one here"),
        }
    }
}
