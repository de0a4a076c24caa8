//! `inputs:` (from dependencies' outputs, the environment, literals; secret ones never shown)
//! and `timeout:`, through the real binary with command stacks.

mod common;

use common::*;

const PRODUCER: &str = r#"#!/bin/sh
echo '{"vpcId":"vpc-123","port":5432,"password":"hunter2-from-outputs"}' > "$CLOUD_OUTPUTS"
"#;

#[test]
fn inputs_reach_a_command_stack_and_secrets_are_never_shown() {
    let p = Project::new();
    p.manifest(
        "IN",
        r#"
environments: [dev]
stacks:
  network:
    executor: command
    deploy: sh ./producer.sh
  app:
    executor: command
    dependencies: [network]
    deploy: 'echo "vpc=$CLOUD_INPUT_VPCID port=$CLOUD_INPUT_PORT url=$CLOUD_INPUT_URL token=$CLOUD_INPUT_TOKEN"; cat "$CLOUD_INPUTS"; echo "oops: $CLOUD_INPUT_TOKEN" >&2'
    inputs:
      vpcId: "${network.vpcId}"
      port: "${network.port}"
      url: "db://${network.vpcId}:${network.port}/x"
      token: { value: "${env:IN_TEST_TOKEN}", secret: true }
      region: eu-west-1
"#,
    );
    let script = p.file("IN", "producer.sh", PRODUCER);
    chmod_x(&script);
    let output = p
        .cmd()
        .env("IN_TEST_TOKEN", "s3cr3t-token-value")
        .args(["deploy", "IN", "-e", "dev", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let events = parse_events(&output.stdout);
    let said: Vec<String> = of_type(&events, "stack_log")
        .iter()
        .filter(|e| e["data"]["stack"] == "app")
        .map(|e| e["data"]["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        said[0], "vpc=vpc-123 port=5432 url=db://vpc-123:5432/x token=[secret]",
        "{said:?}"
    );
    // CLOUD_INPUTS keeps the JSON types.
    let printed: Vec<&str> = of_type(&events, "stack_log")
        .iter()
        .filter(|e| e["data"]["stack"] == "app" && e["data"]["level"] == "info")
        .skip(1)
        .map(|e| e["data"]["message"].as_str().unwrap())
        .collect();
    let inputs: serde_json::Value = serde_json::from_str(&printed.join("\n")).unwrap();
    assert_eq!(inputs["port"], 5432);
    assert_eq!(inputs["vpcId"], "vpc-123");
    assert_eq!(inputs["region"], "eu-west-1");
    assert_eq!(inputs["token"], "[secret]");
    assert!(said.iter().any(|l| l == "oops: [secret]"), "{said:?}");
    // Nowhere in the stream, nor in the journal.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("s3cr3t-token-value"));
    let journal = std::fs::read_dir(p.deployment_dir("IN").join("journal/dev"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect::<String>();
    assert!(!journal.contains("s3cr3t-token-value"));
    assert!(journal.contains("[secret]"));
}

#[test]
fn a_reference_to_a_stack_that_is_not_a_dependency_is_bad_input() {
    let p = Project::new();
    p.manifest(
        "REF",
        r#"environments: [dev]
defaults: { executor: simulate }
stacks:
  network: {}
  dns: {}
  app:
    dependencies: [dns]
    inputs: { vpcId: "${network.vpcId}" }
"#,
    );
    let out = p.cmd().args(["validate", "REF"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("input `vpcId` of stack `app` reads an output of `network`, which is not one of its dependencies"),
        "{err}"
    );
    assert!(err.contains("deployment.yaml:8:22"), "{err}");
    assert!(
        err.contains("add `network` to the `dependencies` of `app`"),
        "{err}"
    );

    // An environment variable that is not set: also before anything runs.
    p.manifest(
        "ENV",
        "environments: [dev]\nstacks:\n  a:\n    executor: simulate\n    inputs: { t: \"${env:SURELY_NOT_SET_42}\" }\n",
    );
    let out = p
        .cmd()
        .args(["deploy", "ENV", "-e", "dev"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SURELY_NOT_SET_42"), "{err}");
    assert!(!p.deployment_dir("ENV").join("journal").exists());
}

#[test]
fn an_output_the_dependency_does_not_have_fails_the_stack_with_missing_input() {
    let p = Project::new();
    p.manifest(
        "MISS",
        r#"
environments: [dev]
stacks:
  network:
    executor: command
    deploy: sh ./producer.sh
  app:
    executor: command
    dependencies: [network]
    deploy: "echo should not run"
    inputs: { subnet: "${network.subnetId}" }
"#,
    );
    chmod_x(&p.file("MISS", "producer.sh", PRODUCER));
    let (code, events, _) = p.deploy_json("MISS", &[]);
    assert_eq!(code, 1);
    let failed = &of_type(&events, "stack_failed")[0]["data"];
    assert_eq!(failed["stack"], "app");
    assert_eq!(failed["error"]["code"], "MISSING_INPUT");
    assert_eq!(
        failed["error"]["message"],
        "input `subnet` of stack `app`: stack `network` has no output `subnetId`"
    );
    assert_eq!(
        failed["error"]["details"],
        "outputs of `network`: password, port, vpcId"
    );
    assert!(of_type(&events, "stack_log")
        .iter()
        .all(|e| e["data"]["message"] != "should not run"));
}

#[test]
fn a_stack_past_its_timeout_fails_with_timeout_and_the_rest_goes_on() {
    let p = Project::new();
    p.manifest(
        "SLOW",
        r#"
environments: [dev]
stacks:
  slow:
    executor: command
    timeout: 1s
    deploy: "sleep 30"
  fast:
    executor: simulate
    resources: [{ type: "t:a:A", name: a, seconds: 0 }]
"#,
    );
    let (code, events, _) = p.deploy_json("SLOW", &["--grace-period", "1"]);
    assert_eq!(code, 1);
    let failed = &of_type(&events, "stack_failed")[0]["data"];
    assert_eq!(failed["stack"], "slow");
    assert_eq!(failed["error"]["code"], "TIMEOUT");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("timeout (1s)"),
        "{failed}"
    );
    assert_eq!(
        of_type(&events, "stack_deployed")[0]["data"]["stack"],
        "fast"
    );
    let complete = &events.last().unwrap()["data"];
    assert_eq!(complete["cancelled"], false);
}

#[test]
fn bad_timeouts_and_input_names_are_bad_input() {
    let p = Project::new();
    for (yaml, want) in [
        ("timeout: soon", "`timeout` must be a duration"),
        ("timeout: 0s", "`timeout` must be a duration"),
        ("inputs: { 9lives: x }", "invalid input name `9lives`"),
        ("inputs: { a: \"${nope}\" }", "invalid reference `${nope}`"),
        ("inputs: { a: \"${x.y\" }", "without its closing"),
    ] {
        p.manifest(
            "BAD",
            &format!("environments: [dev]\nstacks:\n  a:\n    executor: simulate\n    {yaml}\n"),
        );
        let out = p.cmd().args(["validate", "BAD"]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{yaml}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{yaml}: {err}");
        assert!(err.contains("deployment.yaml:5:"), "{yaml}: {err}");
    }
}
