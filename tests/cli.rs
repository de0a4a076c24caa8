//! The command line on bad input (exit 2, one clear message naming file, line:column and the
//! fix), and the read-only commands: validate, graph, completions.

mod common;

use common::*;

/// Deploys a broken manifest; asserts exit 2, no partial deploy, and a message with the file,
/// line:column, the problem and a help line.
fn rejects(yaml: &str, line_col: &str, problem: &str) -> String {
    let p = Project::new();
    p.manifest("BAD", yaml);
    let out = p
        .cmd()
        .args(["deploy", "BAD", "-e", "dev"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        out.stdout.is_empty(),
        "nothing was deployed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !p.deployment_dir("BAD").join("journal").exists(),
        "no run was started"
    );
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        err.contains(&format!("deployment.yaml:{line_col}")),
        "want {line_col}: {err}"
    );
    assert!(err.contains(problem), "want {problem:?}: {err}");
    assert!(err.contains("help: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

const HEAD: &str = "environments: [dev]\ndefaults: { executor: simulate }\nstacks:\n";

#[test]
fn malformed_yaml() {
    rejects(
        &format!("{HEAD}  a: {{ dependencies: [b\n"),
        "4:22",
        "invalid YAML",
    );
}

#[test]
fn unknown_key() {
    let err = rejects(
        &format!("{HEAD}  a:\n    dependancies: [b]\n"),
        "5:5",
        "unknown key `dependancies`",
    );
    assert!(
        err.contains("dependencies"),
        "suggests the right key: {err}"
    );
}

#[test]
fn unknown_dependency() {
    let err = rejects(
        &format!("{HEAD}  network: {{}}\n  app:\n    dependencies: [netwrk]\n"),
        "6:20",
        "unknown dependency `netwrk`",
    );
    assert!(err.contains("did you mean `network`?"), "{err}");
}

#[test]
fn duplicate_stack() {
    rejects(
        &format!("{HEAD}  a: {{}}\n  a: {{}}\n"),
        "5:3",
        "duplicate stack `a`",
    );
}

#[test]
fn self_dependency() {
    rejects(
        &format!("{HEAD}  a:\n    dependencies: [a]\n"),
        "5:20",
        "depends on itself",
    );
}

#[test]
fn a_cycle_names_every_stack_on_it_in_order() {
    let err = rejects(
        &format!(
            "{HEAD}  a:\n    dependencies: [c]\n  b:\n    dependencies: [a]\n  c:\n    dependencies: [b]\n"
        ),
        "",
        "dependency cycle:",
    );
    let cycle = err.lines().next().unwrap();
    let names: Vec<&str> = cycle
        .trim_start_matches("error: dependency cycle: ")
        .split(" → ")
        .collect();
    assert_eq!(names.len(), 4, "{cycle}");
    assert_eq!(names.first(), names.last(), "{cycle}");
    let mut on_cycle = names[..3].to_vec();
    on_cycle.sort_unstable();
    assert_eq!(on_cycle, ["a", "b", "c"], "{cycle}");
}

#[test]
fn environment_not_listed() {
    let p = Project::new();
    p.manifest("ENV", &format!("{HEAD}  a: {{}}\n"));
    let out = p
        .cmd()
        .args(["deploy", "ENV", "-e", "prod"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("deployment.yaml:1:15"), "{err}");
    assert!(err.contains("`prod`") && err.contains("dev"), "{err}");
}

#[test]
fn invalid_stack_name() {
    rejects(
        &format!("{HEAD}  Network_Stack: {{}}\n"),
        "4:3",
        "invalid stack name",
    );
}

/// A name too long says so and the limit, not "invalid YAML"; a line too long to read is not
/// quoted, its place is.
#[test]
fn an_overlong_stack_name_says_the_limit() {
    let err = rejects(
        &format!("{HEAD}  {}: {{}}\n", "a".repeat(100)),
        "4:3",
        "is 100 characters long; the limit is 63",
    );
    assert!(!err.contains("invalid YAML"), "{err}");
    // Past YAML's own limit for a key (1,024), the YAML parser fails first.
    let err = rejects(
        &format!("{HEAD}  {}: {{}}\n", "a".repeat(10_000)),
        "4:3",
        "a key of 10000 characters",
    );
    assert!(
        !err.contains("invalid YAML") && err.contains("at most 63"),
        "{err}"
    );
    assert!(
        err.len() < 1000,
        "the 10,000-character line is not quoted: {err}"
    );
}

/// A stack's input that reads the stack's own output: not "add `a` to the dependencies of `a`".
#[test]
fn an_input_reading_its_own_stack() {
    let err = rejects(
        &format!("{HEAD}  a:\n    outputs: {{ x: \"1\" }}\n    inputs: {{ y: \"${{a.x}}\" }}\n"),
        "6:18",
        "reads `a`'s own output",
    );
    assert!(!err.contains("dependencies` of `a`"), "{err}");
}

#[test]
fn pulumi_stack_without_path() {
    rejects(
        &format!("{HEAD}  db:\n    executor: pulumi\n"),
        "4:3",
        "`path`",
    );
}

#[test]
fn path_that_does_not_exist() {
    rejects(
        &format!(
            "{HEAD}  db:\n    executor: command\n    deploy: ./go.sh\n    path: stacks/nowhere\n"
        ),
        "4:3",
        "stacks/nowhere",
    );
}

#[test]
fn simulate_resource_without_seconds() {
    rejects(
        &format!(
            "{HEAD}  a:\n    resources:\n      - {{ type: \"aws:s3/bucket:Bucket\", name: b }}\n"
        ),
        "6:",
        "seconds",
    );
}

#[test]
fn a_missing_manifest_says_where_it_looked() {
    let p = Project::new();
    p.manifest("D1BRV40", &format!("{HEAD}  a: {{}}\n"));
    let out = p
        .cmd()
        .args(["deploy", "D1BRV4O", "-e", "dev"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cloud/deploy/D1BRV4O/deployment.yaml"),
        "{err}"
    );
    assert!(
        err.contains("D1BRV40"),
        "suggests the deployment that exists: {err}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = cloud().args(["deploy"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = cloud()
        .args(["deploy", "X", "-e", "dev", "--parallelism", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn validate_and_graph_the_example() {
    let p = example_project();
    let out = p
        .cmd()
        .args(["validate", "D1BRV40", "-e", "dev"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("12 stacks in 5 layers"));

    let text = p.cmd().args(["graph", "D1BRV40"]).output().unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("Layer 2/5\n  security      ← network\n  secrets       ← network\n  dns           ← network\n"), "{text}");
    assert!(
        text.contains(
            "Layer 3/5\n  database-rds  ← network, security, secrets\n  storage       ← security\n"
        ),
        "{text}"
    );

    let dot = p
        .cmd()
        .args(["graph", "D1BRV40", "--format", "dot"])
        .output()
        .unwrap();
    let dot = String::from_utf8(dot.stdout).unwrap();
    assert!(dot.starts_with("digraph \"D1BRV40\" {"), "{dot}");
    assert!(dot.contains("\"api\" -> \"database-rds\";"), "{dot}");
    assert!(
        dot.contains("subgraph layer_5 { rank=same; \"api\"; \"frontend\"; \"monitoring\"; }"),
        "{dot}"
    );

    let json = p
        .cmd()
        .args(["graph", "D1BRV40", "-f", "json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["totalLayers"], 5);
    assert_eq!(json["layers"][0]["stacks"], serde_json::json!(["network"]));
    assert_eq!(json["stacks"][0]["executor"], "simulate");
}

#[test]
fn global_options_work_after_the_subcommand() {
    let p = example_project();
    let out = cloud()
        .args(["graph", "D1BRV40", "--root"])
        .arg(p.root())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cloud()
        .env("CLOUD_ROOT", p.root())
        .args(["validate", "D1BRV40"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_missing_pulumi_binary_is_refused_before_anything_runs() {
    let p = Project::new();
    p.manifest(
        "PUL",
        &format!("{HEAD}  first: {{}}\n  db:\n    executor: pulumi\n    path: .\n"),
    );
    let empty = p.root().join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    for (var, value, problem, help) in [
        (
            "PATH",
            empty.display().to_string(),
            "the Pulumi CLI (`pulumi`) is not on PATH; the `pulumi` executor needs it (stacks: db)",
            "help: install the Pulumi CLI",
        ),
        (
            "CLOUD_PULUMI_BIN",
            "/nowhere/pulumi".to_owned(),
            "CLOUD_PULUMI_BIN is `/nowhere/pulumi`, which does not exist",
            "help: set CLOUD_PULUMI_BIN to the path of the `pulumi` binary",
        ),
    ] {
        for command in [
            &["deploy", "PUL", "-e", "dev"][..],
            &["validate", "PUL"][..],
        ] {
            let out = p
                .cmd()
                .env_remove("CLOUD_PULUMI_BIN")
                .env(var, &value)
                .args(command)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(2), "{command:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.starts_with("error: "), "{err}");
            assert!(err.contains(problem), "{command:?}: {err}");
            assert!(err.contains(help), "{command:?}: {err}");
            assert!(err.contains("deployment.yaml"), "{err}");
        }
    }
    assert!(
        !p.deployment_dir("PUL").join("journal").exists(),
        "nothing ran"
    );
}

/// The flags of a run are decided and checked before anything else: a bad grace period (or
/// table name) is refused before the manifest is even looked for (the deployment does not
/// exist), and before `cloud destroy` asks for a confirmation. `-1` is read as the flag's
/// value, not as a flag.
#[test]
fn a_bad_grace_period_is_refused_before_the_manifest_is_read() {
    let p = example_project();
    let said = "error: --grace-period must be a number of seconds from 0 to 3600, found -1\n  \
                help: e.g. `--grace-period 30`\n";
    for args in [
        ["deploy", "does-not-exist"],
        ["destroy", "does-not-exist"],
        ["unlock", "does-not-exist"],
        ["destroy", "D1BRV40"],
    ] {
        let out = p
            .cmd()
            .args(args)
            .args(["-e", "dev", "--grace-period", "-1"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stderr), said, "{args:?}");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    // As a table name no DynamoDB table can have.
    for command in ["deploy", "destroy"] {
        let out = p
            .cmd()
            .args([command, "does-not-exist", "-e", "dev"])
            .args(["--dynamodb-table", "a b"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("error: invalid DynamoDB table name `a b` (from --dynamodb-table"),
            "{command}: {err}"
        );
        assert_eq!(out.status.code(), Some(2), "{command}: {err}");
    }
    assert!(
        !p.deployment_dir("D1BRV40").join("journal").exists(),
        "nothing ran"
    );
}

/// Every command's error goes through one printer: `error: <message>`, then one `help:` line
/// per hint, and the exit code of its kind. Exact, so that a message split into message and
/// hints reads as before.
#[test]
fn errors_print_the_message_then_the_help_and_exit_with_their_kind() {
    // Arguments, environment, exit code, stderr.
    type Case = (
        &'static [&'static str],
        &'static [(&'static str, &'static str)],
        i32,
        &'static str,
    );
    let cases: [Case; 4] = [
        (
            &[
                "watch",
                "D1BRV40",
                "-e",
                "dev",
                "--url",
                "wss://h:1",
                "--token",
                "T",
            ],
            &[],
            2,
            "error: --url wss://h:1: TLS is not supported\n  \
             help: reach the server over ws:// (e.g. through an SSH tunnel)\n",
        ),
        (
            &["token"],
            &[("CLOUD_JWT_SECRET", "")],
            2,
            "error: CLOUD_JWT_SECRET is set but empty (or only whitespace)\n  help: set it to a \
             long random string, e.g. `export CLOUD_JWT_SECRET=$(head -c 32 /dev/urandom | base64)`\n",
        ),
        (
            &["serve", "--addr", "nowhere"],
            &[],
            2,
            "error: `nowhere` is not an address to listen on\n  \
             help: e.g. 127.0.0.1:7070, [::1]:7070 or 0.0.0.0:7070\n",
        ),
        (
            &["deploy", "D1BRV40", "-e", "dev", "--grace-period=5000"],
            &[],
            2,
            "error: --grace-period must be a number of seconds from 0 to 3600, found 5000\n  \
             help: e.g. `--grace-period 30`\n",
        ),
    ];
    let p = example_project();
    for (args, env, code, stderr) in cases {
        let mut cmd = p.cmd();
        cmd.args(args).env_remove("CLOUD_JWT_SECRET");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stderr), stderr, "{args:?}");
        assert_eq!(out.status.code(), Some(code), "{args:?}");
    }
}

/// A command stack without `destroy:` cannot be destroyed: `validate` says so, and `destroy`
/// says so before anything runs (not at the end of a half-done destroy).
#[test]
fn a_command_stack_without_destroy_is_named_up_front() {
    let p = Project::new();
    p.manifest(
        "NODES",
        "environments: [dev]\nstacks:\n  app:\n    executor: command\n    deploy: echo up\n  web:\n    executor: command\n    dependencies: [app]\n    deploy: echo up\n    destroy: echo down\n",
    );
    let out = p.cmd().args(["validate", "NODES"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot destroy stack `app`") && err.contains("add `destroy: <command>`"),
        "{err}"
    );
    assert!(!err.contains("`web`"), "{err}");

    let out = p
        .cmd()
        .args(["destroy", "NODES", "-e", "dev", "--yes", "-o", "json"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot destroy stack `app`"), "{err}");
    // Without --yes and no terminal it refuses, but has warned first.
    let out = p
        .cmd()
        .args(["destroy", "NODES", "-e", "dev"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let warned = err.find("cannot destroy stack `app`").unwrap();
    assert!(warned < err.find("refusing to destroy").unwrap(), "{err}");
}
