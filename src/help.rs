//! What `--help` and the man pages say besides the flags: examples, exit status and environment.
//! One table each, so `cloud deploy --help` and `man cloud-deploy` say the same (both are built
//! from here by `cli::command` and `cli::generated_files`).

/// `(command line, what it does)` for `command` (`deploy`, `notify test`, … or `cloud` itself).
pub fn examples(command: &str) -> &'static [(&'static str, &'static str)] {
    match command {
        "cloud" => &[
            (
                "cloud --root assets/example deploy D1BRV40 -e dev",
                "deploy the bundled example (simulated: no cloud account needed)",
            ),
            (
                "cloud plan D1BRV40 -e prod",
                "what a deploy would change, stack by stack",
            ),
            (
                "cloud status D1BRV40 -e prod",
                "how the latest run went (exit 1 if it failed)",
            ),
        ],
        "deploy" => &[
            (
                "cloud deploy D1BRV40 -e dev",
                "deploy every changed stack, live view",
            ),
            (
                "cloud deploy D1BRV40 -e dev -i",
                "full-screen: pick a stack, see its resources and logs",
            ),
            (
                "cloud deploy D1BRV40 -e dev --verbose",
                "one timestamped line per change (what CI gets)",
            ),
            (
                "cloud deploy D1BRV40 -e prod --only api --force",
                "redeploy one stack even if unchanged",
            ),
            (
                "cloud deploy D1BRV40 -e dev --changed",
                "only what this branch changed (git) and what depends on it",
            ),
            (
                "cloud deploy D1BRV40 -e prod --plan plans/prod",
                "apply exactly what `cloud plan --out plans/prod` saved",
            ),
            (
                "cloud deploy D1BRV40 -e dev --serve 127.0.0.1:7070",
                "and serve its dashboard while it runs",
            ),
        ],
        "destroy" => &[
            (
                "cloud destroy D1BRV40 -e dev",
                "asks first on a terminal; dependents go first",
            ),
            (
                "cloud destroy D1BRV40 -e dev --yes --verbose",
                "in CI: no question, one line per change",
            ),
        ],
        "plan" => &[
            (
                "cloud plan D1BRV40 -e prod",
                "every stack's preview and a summary table",
            ),
            (
                "cloud plan D1BRV40 -e prod --detailed-exitcode",
                "exit 0 no changes, 2 changes, 1 an error",
            ),
            (
                "cloud plan D1BRV40 -e prod --changed --since origin/main",
                "preview only the stacks a pull request touches",
            ),
            (
                "cloud plan D1BRV40 -e prod --out plans/prod --markdown plan.md",
                "save it for `deploy --plan`, and a pull-request comment",
            ),
        ],
        "drift" => &[
            (
                "cloud drift D1BRV40 -e prod",
                "each deployed stack: in sync, drifted (which resources, which attributes) or an error",
            ),
            (
                "cloud drift D1BRV40 -e prod --markdown \"$GITHUB_STEP_SUMMARY\"",
                "on a schedule in CI: exit 2 when anything drifted",
            ),
            (
                "cloud drift D1BRV40 -e prod || cloud deploy D1BRV40 -e prod --only-drifted",
                "bring back just the drifted stacks",
            ),
        ],
        "validate" => &[
            (
                "cloud validate D1BRV40",
                "check the manifest (file:line:col and a fix for each mistake)",
            ),
            (
                "cloud validate D1BRV40 -e prod",
                "and that prod is one of its environments",
            ),
        ],
        "graph" => &[
            ("cloud graph D1BRV40", "the stacks by layer"),
            (
                "cloud graph D1BRV40 -f dot | dot -Tsvg > graph.svg",
                "a picture of the dependencies",
            ),
            (
                "cloud graph D1BRV40 --changed",
                "the layers of what a `deploy --changed` would run",
            ),
        ],
        "affected" => &[
            (
                "cloud affected D1BRV40",
                "the stacks this branch touches and their dependents, each with why",
            ),
            (
                "cloud affected D1BRV40 --since origin/main --output github-matrix",
                "the same as a GitHub Actions `strategy.matrix` (by layer)",
            ),
            (
                "cloud affected D1BRV40 --since HEAD~3 --no-dependents -o json",
                "what the last three commits changed themselves, as JSON",
            ),
        ],
        "status" => &[
            (
                "cloud status D1BRV40 -e prod",
                "the latest run: state, progress, each stack, what failed",
            ),
            (
                "cloud status D1BRV40 -e prod -o json || echo 'the last run failed'",
                "gate CI on it",
            ),
        ],
        "notify" | "notify test" => &[(
            "cloud notify test D1BRV40 -e prod",
            "a test message to every channel, each result said",
        )],
        "serve" => &[(
            "CLOUD_JWT_SECRET=change-me cloud serve --addr 127.0.0.1:7070",
            "the dashboard, REST and WebSocket of every run under --root",
        )],
        "watch" => &[(
            "cloud watch D1BRV40 -e prod --url ws://127.0.0.1:7070 --token \"$TOKEN\"",
            "the live views of a run served elsewhere",
        )],
        "token" => &[(
            "CLOUD_JWT_SECRET=change-me cloud token --deployment D1BRV40 --ttl 1h",
            "a token for one deployment's runs",
        )],
        "logs" => &[
            ("cloud logs D1BRV40 -e prod", "the latest run's file log"),
            (
                "cloud logs D1BRV40 -e prod --follow --stack api",
                "follow one stack's lines",
            ),
        ],
        "events" => &[
            (
                "cloud events D1BRV40 --type stack_failed --since 1d",
                "every stack failure of the last day",
            ),
            (
                "cloud events D1BRV40 -e prod -o json",
                "the audit trail as JSON lines",
            ),
        ],
        "events init-table" => &[(
            "cloud events init-table D1BRV40",
            "create the manifest's DynamoDB table",
        )],
        "events sync" => &[(
            "cloud events sync D1BRV40",
            "send the events spooled while DynamoDB was unreachable",
        )],
        "history" => &[(
            "cloud history D1BRV40 -e prod",
            "every run: when, who, how it ended",
        )],
        "replay" => &[
            (
                "cloud replay D1BRV40 -e prod --speed 10",
                "the latest run again, ten times faster, in the live view",
            ),
            (
                "cloud replay D1BRV40 -e prod 20261204T143000123Z-1a2b -i",
                "one run from `cloud history`, full-screen, at its own pace",
            ),
            (
                "cloud replay D1BRV40 -e prod --instant --verbose",
                "its verbose lines at once, as the run printed them",
            ),
        ],
        "unlock" => &[
            (
                "cloud unlock D1BRV40 -e prod",
                "remove a lock a dead run left",
            ),
            (
                "cloud unlock D1BRV40 -e prod --kill",
                "and stop the programs it left running",
            ),
        ],
        "completions" => &[(
            "cloud completions bash > ~/.local/share/bash-completion/completions/cloud",
            "Tab completion of commands, flags, deployments, environments and stacks",
        )],
        _ => &[],
    }
}

/// `(code, meaning)` for `command`.
pub fn exit_status(command: &str) -> Vec<(&'static str, &'static str)> {
    const OK: (&str, &str) = ("0", "done");
    const INPUT: (&str, &str) = (
        "2",
        "bad input or usage (the manifest, a flag, a missing tool or path); nothing ran",
    );
    const RUN: [(&str, &str); 5] = [
        (
            "0",
            "done: every stack deployed, skipped, destroyed or planned",
        ),
        (
            "1",
            "a stack failed (or was blocked by one), a rollback ran, or a needed service could not be asked",
        ),
        INPUT,
        (
            "3",
            "locked: another run holds this deployment and environment (named)",
        ),
        (
            "130",
            "interrupted (Ctrl-C, SIGTERM, SIGHUP); everything up to then is recorded",
        ),
    ];
    match command {
        "cloud" | "deploy" | "destroy" => RUN.to_vec(),
        "plan" => vec![
            (
                "0",
                "planned (with --detailed-exitcode: nothing would change)",
            ),
            (
                "1",
                "a stack's plan failed (with --detailed-exitcode: any error, bad input included)",
            ),
            (
                "2",
                "bad input (with --detailed-exitcode: changes present, and no error)",
            ),
            RUN[3],
            RUN[4],
        ],
        "drift" => vec![
            ("0", "every checked stack is in sync"),
            (
                "1",
                "a stack's check failed, or bad input (2 means drifted)",
            ),
            ("2", "drift found (and no error)"),
            RUN[3],
            RUN[4],
        ],
        "validate" => vec![
            ("0", "the manifest is valid"),
            ("2", "it is not: each mistake is said"),
        ],
        "status" => vec![
            ("0", "the latest run succeeded, or is still going on"),
            (
                "1",
                "the latest run failed, rolled back, was cancelled or died",
            ),
            ("2", "bad input, or no recorded run"),
        ],
        "replay" => vec![
            ("0", "the run replayed had deployed"),
            (
                "1",
                "the run replayed had failed, or ended without deployment_complete (killed)",
            ),
            (
                "2",
                "bad input: no such deployment, environment or run, or a bad --speed",
            ),
            (
                "130",
                "the replay was interrupted (Ctrl-C, SIGTERM, SIGHUP)",
            ),
        ],
        "notify" | "notify test" => vec![OK, ("1", "a channel failed (each is named)"), INPUT],
        "unlock" => vec![
            OK,
            INPUT,
            (
                "3",
                "the lock is held by a run that is still alive (named); it is left alone",
            ),
        ],
        _ => vec![
            OK,
            ("1", "failed (a file or service could not be read)"),
            INPUT,
        ],
    }
}

/// `(variable, what)`: the same for every command.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "CLOUD_ROOT",
        "--root: the folder holding cloud/deploy/<ID>/deployment.yaml",
    ),
    (
        "CLOUD_DYNAMODB_TABLE",
        "--dynamodb-table: the audit trail's table (and the cross-machine lock)",
    ),
    (
        "CLOUD_USER",
        "the user named in events, locks and history (else USER)",
    ),
    (
        "CLOUD_JWT_SECRET",
        "the server's token secret (serve, --serve, token, watch)",
    ),
    ("CLOUD_TOKEN", "watch --token"),
    (
        "CLOUD_PULUMI_BIN, CLOUD_TERRAFORM_BIN",
        "the Pulumi / OpenTofu-or-Terraform program to run",
    ),
    (
        "AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL",
        "the AWS configuration chain, for DynamoDB and CloudWatch Logs",
    ),
    (
        "NO_COLOR, TERM=dumb",
        "no colour; TERM=dumb also means no live redraw",
    ),
    ("CI=true", "the verbose view, whatever the terminal"),
    (
        "GITHUB_ACTIONS=true",
        "::group:: folds and ::error annotations in the verbose view",
    ),
];

/// The sections after the flags, in order: a title and its `(term, text)` entries.
fn sections(command: &str) -> Vec<(&'static str, Vec<(String, String)>)> {
    let entries = |rows: Vec<(&str, &str)>| -> Vec<(String, String)> {
        rows.into_iter()
            .map(|(term, text)| (term.to_owned(), text.to_owned()))
            .collect()
    };
    let mut sections = Vec::new();
    if !examples(command).is_empty() {
        sections.push(("Examples", entries(examples(command).to_vec())));
    }
    sections.push(("Exit status", entries(exit_status(command))));
    sections.push(("Environment", entries(ENVIRONMENT.to_vec())));
    sections
}

/// The text `--help` prints after the flags: examples, exit status, environment.
pub fn long_help(command: &str) -> String {
    let mut text = String::new();
    for (title, entries) in sections(command) {
        text.push_str(&format!("{title}:\n"));
        for (term, what) in entries {
            // Exit codes are short: on one line with their meaning.
            match term.len() <= 3 {
                true => text.push_str(&format!("  {term:<4} {what}\n")),
                false => text.push_str(&format!("  {term}\n      {what}\n")),
            }
        }
        text.push('\n');
    }
    text.push_str("The README documents every contract (manifest, events, REST, exit codes).");
    text
}

/// The EXAMPLES, EXIT STATUS and ENVIRONMENT sections of `command`'s man page, in roff.
pub fn man_sections(command: &str) -> String {
    let mut roff = String::new();
    for (title, entries) in sections(command) {
        roff.push_str(&format!(".SH \"{}\"\n", title.to_uppercase()));
        for (term, what) in entries {
            roff.push_str(&format!(
                ".TP\n\\fB{}\\fR\n{}\n",
                escape(&term),
                escape(&what)
            ));
        }
    }
    roff
}

/// Text as roff shows it: backslashes and hyphens escaped, no line read as a request.
fn escape(text: &str) -> String {
    let text = text.replace('\\', "\\e").replace('-', "\\-");
    match text.starts_with(['.', '\'']) {
        true => format!("\\&{text}"),
        false => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_examples_and_its_own_exit_status() {
        let root = crate::cli::command();
        for sub in root.get_subcommands() {
            let name = sub.get_name();
            assert!(!examples(name).is_empty(), "no example for {name}");
            for (line, _) in examples(name) {
                assert!(
                    line.contains(&format!("cloud {name}")) || line.contains(" cloud "),
                    "{line}"
                );
            }
        }
        assert_eq!(exit_status("status")[1].0, "1");
        assert!(exit_status("plan")[0].1.contains("--detailed-exitcode"));
    }

    #[test]
    fn roff_escapes_what_it_would_read_as_requests() {
        assert_eq!(escape(".hidden -x a\\b"), "\\&.hidden \\-x a\\eb");
    }
}
