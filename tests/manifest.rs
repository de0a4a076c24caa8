//! The manifest's rules, through the library: every mistake is one error with its place and
//! a fix; valid manifests read back as written. (Executors' own keys — `resources`, `deploy` —
//! are checked by their executors, reached through the registry.)

mod common;

use std::path::Path;

use cloud::executor::{registry, Manifest};
use cloud::manifest::notifications::ChannelKind;
use cloud::manifest::{closest, list, Loc, ManifestError};

/// The manifest and its graph (cycles), as `cloud validate` checks them.
fn parse(file: &Path, text: &str) -> Result<Manifest, ManifestError> {
    let manifest = cloud::manifest::parse(file, text, &registry())?;
    cloud::plan::Plan::new(&manifest, &cloud::plan::NoPastRuns)?;
    Ok(manifest)
}

fn load(root: &Path, id: &str) -> Result<Manifest, ManifestError> {
    cloud::manifest::load(root, id, &registry())
}

/// How an executor shows its configuration (its Debug form), for assertions.
fn shown(m: &Manifest, stack: usize) -> String {
    format!("{:?}", m.stacks[stack].executor)
}

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
    assert_eq!(net.executor.name(), "simulate");
    assert_eq!(net.executor.expected_resources(), Some(2));
    assert_eq!(net.executor.expected_seconds(), Some(10.0));
    let sim = shown(&m, 0);
    assert!(
        sim.contains(r#"outputs: {"vpcId": String("vpc-abc123")}"#),
        "{sim}"
    );
    assert!(
        sim.contains(r#"type_: "aws:ec2/vpc:Vpc", name: "main-vpc", seconds: 5.0"#),
        "{sim}"
    );
    assert!(sim.contains(r#"fail: Some("Access Denied")"#), "{sim}");
    let sec = &m.stacks[1];
    assert_eq!(sec.dependencies, ["network"]);
    assert_eq!(sec.path, Path::new("cloud/deploy/D1BRV40/stacks/security"));
    assert_eq!(
        shown(&m, 1),
        r#"CommandStack { deploy: "./deploy.sh", destroy: Some("./destroy.sh"), rollback: None, plan: None, drift: None }"#
    );
    let db = &m.stacks[2];
    assert_eq!(db.dependencies, ["network", "security"]);
    assert_eq!(db.executor.name(), "pulumi");
    assert_eq!(
        db.path,
        Path::new("cloud/deploy/D1BRV40/../../stacks/database-rds")
    );
    let n = m.notifications.as_ref().expect("notifications");
    let labels: Vec<&str> = n.channels.iter().map(|c| c.label.as_str()).collect();
    assert_eq!(labels, ["email", "slack", "pagerduty", "webhook"]);
    let ChannelKind::Slack(slack) = &n.channels[1].kind else {
        panic!("{:?}", n.channels[1])
    };
    assert!(slack.webhook_url.vars().eq(["SLACK_WEBHOOK_URL"]));
    let ChannelKind::Email(email) = &n.channels[0].kind else {
        panic!("{:?}", n.channels[0])
    };
    assert_eq!(email.to[0].as_literal().unwrap(), "owner@example.com");
    assert_eq!(
        m.event_store
            .as_ref()
            .and_then(|s| s.dynamodb.as_ref())
            .expect("eventStore.dynamodb")
            .table,
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
    assert_eq!(m.stacks[0].executor.expected_resources(), Some(0));
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
    let rendered = e.render();
    let lines: Vec<&str> = rendered.lines().collect();
    assert_eq!(
        lines[0],
        "error: unknown dependency `netwrk` in stack `security`"
    );
    assert!(
        lines[1].ends_with("[cloud/deploy/D1BRV40/deployment.yaml:8:20]"),
        "{rendered}"
    );
    // The line as written, with the value underlined.
    assert!(
        rendered.contains("8 │     dependencies: [netwrk]"),
        "{rendered}"
    );
    let column = |line: &str, what: &str| line[..line.find(what).unwrap()].chars().count();
    let underline = lines
        .iter()
        .find(|l| l.contains('─') && l.contains('·'))
        .unwrap();
    let source = lines.iter().find(|l| l.contains("[netwrk]")).unwrap();
    assert_eq!(
        column(underline, "─"),
        column(source, "netwrk"),
        "{rendered}"
    );
    assert_eq!(underline.matches('─').count(), "netwrk".len(), "{rendered}");
    assert_eq!(
        *lines.last().unwrap(),
        "  help: did you mean `network`? Known stacks: network, secrets, dns, security"
    );
    assert_eq!(e.to_string(), e.message);
    // No location: the file alone.
    let e = ManifestError::new(Path::new("./x/deployment.yaml"), Loc::default(), "m", "h");
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
    // Anything goes inside outputs (notifications are checked: tests/notify.rs).
    ok("environments: [dev]\nstacks: { a: { executor: simulate, outputs: { k: [1, 2], z: { q: null } } } }\n");
    // eventStore is read by the event store: its keys are checked, each error located.
    let e = fails(
        "environments: [dev]\neventStore: { any: thing }\nstacks: { a: { executor: simulate } }\n",
        "unknown key `any` in `eventStore`",
        2,
        15,
    );
    assert!(e.help.contains("dynamodb, cloudwatch"), "{}", e.help);
    fails(
        "environments: [dev]\neventStore:\n  dynamodb: { tabel: x }\nstacks: { a: { executor: simulate } }\n",
        "unknown key `tabel` in `eventStore.dynamodb`",
        3,
        15,
    );
    fails(
        "environments: [dev]\neventStore:\n  dynamodb: { region: eu-west-1 }\nstacks: { a: { executor: simulate } }\n",
        "`eventStore.dynamodb` names no `table`",
        3,
        13,
    );
    fails(
        "environments: [dev]\neventStore: { dynamodb: { table: \"a b\" } }\nstacks: { a: { executor: simulate } }\n",
        "invalid DynamoDB table name `a b`",
        2,
        34,
    );
    fails(
        "environments: [dev]\neventStore: { cloudwatch: yes please }\nstacks: { a: { executor: simulate } }\n",
        "`eventStore.cloudwatch` must be true, false or a mapping",
        2,
        27,
    );
    let m = ok("environments: [dev]\neventStore: { dynamodb: { table: t-1, region: eu-west-1 }, cloudwatch: true }\nstacks: { a: { executor: simulate } }\n");
    let store = m.event_store.expect("eventStore");
    assert_eq!(
        store.dynamodb.as_ref().map(|d| d.table.as_str()),
        Some("t-1")
    );
    assert_eq!(
        store.dynamodb.and_then(|d| d.region).as_deref(),
        Some("eu-west-1")
    );
    assert!(store.cloudwatch.is_some());
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

/// A big manifest's stacks are read on several threads: the problem said is still the first
/// one in the file, whichever part of it a thread read.
#[test]
fn in_a_big_manifest_the_first_problem_in_the_file_is_said() {
    let manifest = |bad: usize, duplicate: usize| {
        let mut yaml = String::from("environments: [dev]\nstacks:\n");
        for i in 0..2000 {
            let name = if i == duplicate {
                "s0001".to_owned()
            } else {
                format!("s{i:04}")
            };
            match i == bad {
                true => yaml.push_str(&format!(
                    "  {name}: {{ executor: simulate, timeout: soon }}\n"
                )),
                false => yaml.push_str(&format!("  {name}: {{ executor: simulate }}\n")),
            }
        }
        yaml
    };
    // Line of stack i: 3 + i.
    fails(&manifest(1500, 1800), "timeout", 1503, 41);
    fails(&manifest(1800, 1500), "duplicate stack `s0001`", 1503, 3);
    fails(&manifest(1800, 30), "duplicate stack `s0001`", 33, 3);
    fails(&manifest(25, 1999), "timeout", 28, 41);
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
        "is 64 characters long; the limit is 63",
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
    let sim = shown(&m, 0);
    assert!(
        sim.contains(r#"seconds: 0.25, fail: None, id: Some("i-1")"#),
        "{sim}"
    );
    assert!(sim.contains(r#"name: "m", seconds: 0.0"#), "{sim}");
}

#[test]
fn executor_rules() {
    let e = fails(
        "environments: [dev]\nstacks:\n  a:\n    dependencies: []\n",
        "stack `a` has no executor",
        3,
        3,
    );
    assert!(e.help.contains("defaults: { executor:"), "{}", e.help);
    assert!(e.help.contains("simulate, command, pulumi"), "{}", e.help);
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
    assert_eq!(m.stacks[0].executor.name(), "simulate");
    assert_eq!(m.stacks[1].executor.name(), "pulumi");
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
    let many: Vec<String> = (0..25).map(|i| format!("s{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert!(list(&many).ends_with(", … (5 more)"));
}

/// The line of a rendered error that quotes line `n` of the manifest (`  4 │ …`), without
/// the gutter.
fn quoted_line(rendered: &str, n: u64) -> String {
    let gutter = format!("{n} │ ");
    rendered
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(gutter.as_str()))
        .unwrap_or_else(|| panic!("line {n} is not quoted:\n{rendered}"))
        .to_owned()
}

/// `line` with each of `secrets` replaced by as many `*`.
fn masked(line: &str, secrets: &[&str]) -> String {
    secrets.iter().fold(line.to_owned(), |l, s| {
        l.replace(s, &"*".repeat(s.chars().count()))
    })
}

#[test]
fn validation_errors_quote_the_manifest_without_its_secrets() {
    let p = common::Project::new();
    let yaml = "environments: [dev]
notifications:
  email:
    smtp: \"smtp://cloud:hunter2@mail.example.com:587\"
    password: s3cr3t-pass
    from: cloud@example.com
    to: [ops@example.com]
stacks: { app: { executor: simulate } }
";
    p.manifest("D1", yaml);
    let out = p
        .cmd()
        .args(["validate", "D1"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    for secret in ["hunter2", "s3cr3t-pass"] {
        assert!(!stderr.contains(secret), "{secret} is shown:\n{stderr}");
    }
    // The same error, the same lines and underline, the secrets' characters as `*`.
    assert!(
        stderr.starts_with("error: `email.smtp` is not a usable SMTP server: it holds credentials"),
        "{stderr}"
    );
    assert!(stderr.contains("deployment.yaml:4:11]"), "{stderr}");
    let lines: Vec<&str> = yaml.lines().collect();
    assert_eq!(
        quoted_line(&stderr, 4),
        masked(lines[3], &["hunter2"]),
        "{stderr}"
    );
    assert_eq!(
        quoted_line(&stderr, 5),
        masked(lines[4], &["s3cr3t-pass"]),
        "{stderr}"
    );
    let underline = stderr
        .lines()
        .find(|l| l.contains('─') && l.contains('·'))
        .unwrap();
    assert_eq!(underline.matches('─').count(), 43, "{stderr}");
    // …starting under the opening quote (in characters: the gutter is not ASCII).
    let column = |line: &str, c: char| line.chars().position(|x| x == c);
    let quoted = stderr.lines().find(|l| l.contains("4 │")).unwrap();
    assert_eq!(column(underline, '─'), column(quoted, '"'), "{stderr}");
}

#[test]
fn every_kind_of_secret_is_masked_in_error_snippets() {
    // (manifest, line the error is on, the secrets the snippet would quote)
    let cases: &[(&str, u64, &[&str])] = &[
        (
            "environments: [dev]\nnotifications:\n  email:\n    smtp: smtp://127.0.0.1:25\n    \
             username: cloud\n    password: \"p@ss w0rd\"\n    evnts: [x]\n",
            7,
            &["p@ss", "w0rd"],
        ),
        (
            "environments: [dev]\nnotifications:\n  slack: { webhookUrl: \"https://hooks.slack.com/\
             services/T0/B0/XXSECRETXX\", evnts: [x] }\n",
            3,
            &["https://hooks.slack.com/services/T0/B0/XXSECRETXX"],
        ),
        (
            "environments: [dev]\nnotifications:\n  pagerduty: { routingKey: R0UTINGKEY, \
             severity: huge }\n",
            3,
            &["R0UTINGKEY"],
        ),
        (
            "environments: [dev]\nnotifications:\n  webhooks:\n    - url: https://hooks.example.com/\
             T0KEN\n      secret: wh-secret\n      events: [nope]\n",
            6,
            &["https://hooks.example.com/T0KEN", "wh-secret"],
        ),
        (
            "environments: [dev]\nstacks:\n  app:\n    executor: simulate\n    inputs:\n      \
             token: { value: \"tok-123\", secret: true, extra: 1 }\n",
            6,
            &["tok-123"],
        ),
        (
            "environments: [dev]\nstacks:\n  app:\n    executor: simulate\n    inputs:\n      \
             token:\n        value: tok-456\n        secret: true\n        extra: 1\n",
            9,
            &["tok-456"],
        ),
        // Not YAML at all: the lines around the syntax error are masked all the same.
        (
            "environments: [dev]\nnotifications:\n  email:\n    password: hunter2\n    \
             from: [unclosed\n",
            5,
            &["hunter2"],
        ),
    ];
    for (yaml, line, secrets) in cases {
        let e = parse(Path::new(FILE), yaml).expect_err(yaml);
        assert_eq!(e.at.line, *line, "{}", e.render());
        let rendered = e.render();
        let lines: Vec<&str> = yaml.lines().collect();
        for n in (line - 1).max(1)..=*line {
            let quoted = quoted_line(&rendered, n);
            assert_eq!(quoted, masked(lines[n as usize - 1], secrets), "{rendered}");
        }
        for secret in *secrets {
            assert!(!rendered.contains(secret), "{secret} is shown:\n{rendered}");
        }
    }
    // What is no secret stays as written: a plain input, the PagerDuty endpoint.
    let e = parse(
        Path::new(FILE),
        "environments: [dev]\nstacks:\n  app:\n    executor: simulate\n    inputs:\n      \
         region: { value: us-east-1, extra: 1 }\n",
    )
    .unwrap_err();
    assert!(
        e.render().contains("{ value: us-east-1, extra: 1 }"),
        "{}",
        e.render()
    );
}

/// Commands that read runs take the manifest's header without its stacks; whenever that fast
/// way answers, it answers what the whole manifest says, places included, and it steps aside
/// for anything it cannot be sure of.
#[test]
fn the_header_read_without_stacks_is_the_whole_manifests_or_nothing() {
    let same = |yaml: &str| {
        let header = cloud::manifest::parse_header(Path::new(FILE), yaml)
            .unwrap_or_else(|| panic!("no fast header for:\n{yaml}"));
        let full = ok(yaml).header();
        assert_eq!(format!("{header:?}"), format!("{full:?}"), "{yaml}");
    };
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets/example/cloud/deploy/D1BRV40/deployment.yaml"),
    )
    .unwrap();
    same(&example);
    same(
        "# a comment\nstacks:\n  a: { executor: simulate }\n\nenvironments:\n  - dev\n  - prod\n\
         eventStore:\n  dynamodb: { table: events-table, region: eu-west-1 }\n  cloudwatch: true\n",
    );
    same("environments: [dev]\r\nstacks: { a: { executor: simulate } }\r\n");
    // Not sure: the whole manifest is read (and says any error precisely).
    for yaml in [
        "---\nenvironments: [dev]\nstacks: { a: { executor: simulate } }\n",
        "{environments: [dev], stacks: { a: { executor: simulate } }}\n",
        "\"environments\": [dev]\nstacks: { a: { executor: simulate } }\n",
        "environments: [dev,\nprod]\nstacks: { a: { executor: simulate } }\n",
        "x: &envs [dev]\nenvironments: *envs\nstacks: { a: { executor: simulate } }\n",
        "environments: dev\nstacks: { a: { executor: simulate } }\n",
        "deploymentId: OTHER\nenvironments: [dev]\nstacks: {}\n",
        "environments: [dev]\neventStore: { dynamodb: { table: t } }\nstacks: {}\n",
        "stacks: { a: { executor: simulate } }\n",
    ] {
        assert!(
            cloud::manifest::parse_header(Path::new(FILE), yaml).is_none(),
            "a fast header for:\n{yaml}"
        );
    }
}
