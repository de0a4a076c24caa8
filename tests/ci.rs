//! For CI: GitHub Actions groups and annotations in the verbose view, `--report` (JSON) and
//! `--junit` (JUnit XML) summaries, and `--version` naming the commit.

mod common;

use common::*;

const MIXED: &str = r#"
environments: [dev]
defaults: { executor: simulate }
stacks:
  network:
    resources: [{ type: "aws:ec2/vpc:Vpc", name: vpc, seconds: 0 }]
  db:
    dependencies: [network]
    resources: [{ type: "aws:rds/instance:Instance", name: main, seconds: 0, fail: "Access Denied, really: <no> & 100%" }]
  app:
    dependencies: [db]
  cdn:
    dependencies: [network]
    resources: [{ type: "aws:cloudfront/distribution:Distribution", name: cdn, seconds: 0 }]
"#;

#[test]
fn github_actions_gets_folded_stacks_and_error_annotations() {
    let p = Project::new();
    p.manifest("GH", MIXED);
    let run = |github: bool| {
        let mut cmd = p.cmd();
        cmd.args(["deploy", "GH", "-e", "dev", "--verbose", "--force"]);
        if github {
            cmd.env("GITHUB_ACTIONS", "true");
        }
        String::from_utf8(cmd.output().unwrap().stdout).unwrap()
    };
    let plain = run(false);
    assert!(
        !plain.contains("::group::") && !plain.contains("::error"),
        "{plain}"
    );

    let text = run(true);
    let lines: Vec<&str> = text.lines().collect();
    // Each stack's lines sit in one group, closed before anything else is said.
    let open = lines
        .iter()
        .position(|l| *l == "::group::network: resources and logs")
        .unwrap_or_else(|| panic!("{text}"));
    let close = open
        + lines[open..]
            .iter()
            .position(|l| *l == "::endgroup::")
            .unwrap();
    assert!(
        lines[open + 1..close]
            .iter()
            .any(|l| l.contains("Creating: aws:ec2/vpc:Vpc (vpc)")),
        "{text}"
    );
    assert!(lines[open + 1..close].iter().all(|l| !l.starts_with("::")));
    assert_eq!(
        text.matches("::group::").count(),
        text.matches("::endgroup::").count()
    );
    // The failure, annotated with escaped text.
    let error = lines
        .iter()
        .find(|l| l.starts_with("::error "))
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(
        *error,
        "::error title=Stack db failed (RESOURCE_FAILED)::Unable to create aws:rds/instance:Instance (main): Access Denied, really: <no> & 100%25"
    );
}

#[test]
fn report_and_junit_describe_every_stack() {
    let p = Project::new();
    p.manifest("REP", MIXED);
    let json = p.root().join("report.json");
    let junit = p.root().join("junit.xml");
    let out = p
        .cmd()
        .args(["deploy", "REP", "-e", "dev", "-o", "json", "--report"])
        .arg(&json)
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["deploymentId"], "REP");
    assert_eq!(report["status"], "failed");
    assert_eq!(report["summary"]["totalStacks"], 4);
    assert_eq!(report["summary"]["deployedStacks"], 2);
    assert_eq!(report["summary"]["failedStacks"], 1);
    assert_eq!(report["summary"]["blockedStacks"], 1);
    let db = report["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "db")
        .unwrap();
    assert_eq!(db["status"], "failed");
    assert_eq!(db["error"]["code"], "RESOURCE_FAILED");
    assert_eq!(db["resources"]["failed"], 1);
    assert!(db["startTime"].as_str().unwrap().ends_with('Z'));
    assert!(db["durationSeconds"].is_number());
    let app = report["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "app")
        .unwrap();
    assert_eq!(app["blockedBy"], "db");

    // JUnit: parsed as XML (by a strict reader of its own), counts and cases as CI reads them.
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = Xml::parse(&xml);
    assert_eq!(doc.name, "testsuites");
    assert_eq!(doc.attr("tests"), "4");
    assert_eq!(doc.attr("failures"), "1");
    assert_eq!(doc.attr("skipped"), "1");
    let suite = &doc.children[0];
    assert_eq!(suite.name, "testsuite");
    assert_eq!(suite.attr("name"), "REP-dev");
    let cases: Vec<&Xml> = suite
        .children
        .iter()
        .filter(|c| c.name == "testcase")
        .collect();
    assert_eq!(cases.len(), 4);
    let case = |name: &str| cases.iter().find(|c| c.attr("name") == name).unwrap();
    assert!(case("network").children.is_empty());
    let failure = &case("db").children[0];
    assert_eq!(failure.name, "failure");
    assert_eq!(failure.attr("type"), "RESOURCE_FAILED");
    assert_eq!(
        failure.attr("message"),
        "Unable to create aws:rds/instance:Instance (main): Access Denied, really: <no> & 100%"
    );
    assert_eq!(case("app").children[0].name, "skipped");
    assert_eq!(case("app").attr("classname"), "REP-dev.layer3");
}

#[test]
fn version_names_the_commit() {
    let out = cloud().arg("--version").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with(&format!("cloud {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    let commit = text
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .trim_end_matches(')');
    assert!(
        commit == "unknown"
            || (commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{text}"
    );
}

/// A small, strict XML reader: elements, attributes, text; fails on anything malformed.
#[derive(Debug)]
struct Xml {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Xml>,
}

impl Xml {
    fn attr(&self, name: &str) -> &str {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} on <{}>", self.name))
    }

    fn parse(text: &str) -> Xml {
        let text = text
            .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
            .expect("an XML declaration");
        let (root, rest) = Self::element(text.trim_start());
        assert!(rest.trim().is_empty(), "trailing content: {rest}");
        root
    }

    fn unescape(s: &str) -> String {
        assert!(!s.contains('<'), "raw < in {s}");
        let mut out = String::new();
        let mut rest = s;
        while let Some(at) = rest.find('&') {
            out.push_str(&rest[..at]);
            let end = rest[at..].find(';').expect("an entity ends with ;") + at;
            out.push(match &rest[at + 1..end] {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                "#10" => '\n',
                other => panic!("unknown entity &{other};"),
            });
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    fn element(text: &str) -> (Xml, &str) {
        let text = text.strip_prefix('<').expect("an element");
        let name_end = text
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .unwrap();
        let name = text[..name_end].to_owned();
        let mut rest = &text[name_end..];
        let mut attrs = Vec::new();
        loop {
            rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix("/>") {
                return (
                    Xml {
                        name,
                        attrs,
                        children: Vec::new(),
                    },
                    r,
                );
            }
            if let Some(r) = rest.strip_prefix('>') {
                rest = r;
                break;
            }
            let eq = rest.find('=').expect("an attribute");
            let key = rest[..eq].to_owned();
            let value_start = rest[eq + 1..].strip_prefix('"').expect("a quoted value");
            let close = value_start.find('"').expect("a closing quote");
            attrs.push((key, Self::unescape(&value_start[..close])));
            rest = &value_start[close + 1..];
        }
        let mut children = Vec::new();
        loop {
            let next = rest.find('<').expect("a closing tag");
            Self::unescape(&rest[..next]);
            rest = &rest[next..];
            if let Some(r) = rest.strip_prefix(&format!("</{name}>")) {
                return (
                    Xml {
                        name,
                        attrs,
                        children,
                    },
                    r,
                );
            }
            let (child, r) = Self::element(rest);
            children.push(child);
            rest = r;
        }
    }
}
