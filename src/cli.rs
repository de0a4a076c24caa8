//! The command line, defined in one place. `main` parses it and dispatches.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `cloud --version`: the version and the commit it was built from.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("CLOUD_GIT_COMMIT"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "cloud",
    version,
    long_version = LONG_VERSION,
    about = "Deploy infrastructure made of many stacks, in dependency order, with live progress",
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options that work before or after the subcommand.
#[derive(Debug, Args, Clone)]
pub struct Global {
    /// Folder holding `cloud/deploy/<ID>/deployment.yaml`
    #[arg(
        long,
        global = true,
        env = "CLOUD_ROOT",
        default_value = ".",
        value_name = "DIR"
    )]
    pub root: PathBuf,
    /// When to use colour (NO_COLOR turns `auto` off)
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Print one timestamped line per change (the view for CI and pipes)
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For people: a live view, or plain lines when not on a terminal
    Text,
    /// One JSON object per line (events) or one document (status)
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Text,
    Dot,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Deploy a deployment's stacks in dependency order
    Deploy(Deploy),
    /// Destroy a deployment's stacks, dependents first
    Destroy(Destroy),
    /// Show what a deploy would change, stack by stack, changing nothing
    Plan(Plan),
    /// Find stacks whose real infrastructure no longer matches what was deployed
    Drift(Drift),
    /// Check a deployment's manifest without deploying
    Validate(Validate),
    /// Show the stacks by dependency layer
    Graph(Graph),
    /// List the stacks a git change touches (files, local modules, manifest entry) and their
    /// dependents, each with why
    Affected(Affected),
    /// Show the state of the latest run
    Status(Status),
    /// Check the manifest's notification channels
    #[command(subcommand)]
    Notify(Notify),
    /// Serve the dashboard, REST API and WebSocket stream of the runs under --root
    Serve(Serve),
    /// Show a deployment running elsewhere, fed by its server
    Watch(Watch),
    /// Mint a token for the server (signed with CLOUD_JWT_SECRET)
    Token(Token),
    /// Show the file log of the latest run
    Logs(Logs),
    /// List the audit trail (DynamoDB when configured, else the journal); manage its table
    Events(Events),
    /// List the runs of a deployment: when, who, how they ended
    History(HistoryArgs),
    /// Show a past run again through the views: at its recorded pace, N times faster, or at once
    Replay(Replay),
    /// Remove a lock a run left behind (a leftover lock file, an expired DynamoDB lease); with
    /// --kill, stop the stacks' programs a killed run left running
    Unlock(Unlock),
    /// Print a shell completion script
    Completions(Completions),
}

#[derive(Debug, Args)]
pub struct Deploy {
    /// The deployment's ID (its folder under cloud/deploy/)
    #[arg(add = crate::complete::deployment_ids(command))]
    pub id: String,
    /// The environment to deploy to (one of the manifest's `environments`)
    #[arg(short, long)]
    #[arg(add = crate::complete::environments(command))]
    pub environment: String,
    /// Deploy at most N stacks at once (default: the manifest's `parallelism`, else no limit)
    #[arg(short = 'p', long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub parallelism: Option<u32>,
    /// After the first failure start no new stack (running ones finish)
    #[arg(long)]
    pub fail_fast: bool,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Full-screen view: select a stack, see its resources and logs
    #[arg(short, long)]
    pub interactive: bool,
    /// Leave the interactive view as soon as the deploy ends
    #[arg(long)]
    pub exit_on_done: bool,
    /// Seconds a stopping stack gets after SIGINT before it is killed
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 10.0,
        allow_negative_numbers = true
    )]
    pub grace_period: f64,
    /// Deploy every stack, even those unchanged since their last successful deploy
    #[arg(long)]
    pub force: bool,
    /// Deploy only these stacks (the others keep their last deploy)
    #[arg(long, value_name = "STACK", num_args = 1.., value_delimiter = ',', conflicts_with = "changed")]
    #[arg(add = crate::complete::stacks(command))]
    pub only: Vec<String>,
    #[command(flatten)]
    pub changed: ChangedArgs,
    /// When the deploy fails, roll back the stacks it deployed, in reverse dependency order
    #[arg(long)]
    pub rollback_on_failure: bool,
    /// Send no notifications for this run (email, Slack, PagerDuty, webhooks)
    #[arg(long)]
    pub no_notify: bool,
    /// Write the run's summary (per stack: status, times, resources, error) as JSON here
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Write the run as JUnit XML here (each stack a test case), for CI systems
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(flatten)]
    pub store: EventStoreArgs,
    /// Also send every event to CloudWatch Logs (group /cloud/deployments/<ID>)
    #[arg(long)]
    pub cloudwatch: bool,
    /// Apply exactly the plan `cloud plan --out DIR` saved there (refused if anything changed since)
    #[arg(long, value_name = "DIR", conflicts_with_all = ["only", "force", "changed"])]
    pub plan: Option<PathBuf>,
    /// With --plan: apply a provisional stack whose inputs changed when its dependencies applied
    #[arg(long, requires = "plan")]
    pub accept_replans: bool,
    /// Deploy only the stacks `cloud drift` found drifted (and the dependents their outputs change)
    #[arg(long, conflicts_with_all = ["only", "plan", "force"])]
    pub only_drifted: bool,
    /// Try each stack once: no retries of transient errors, whatever the manifest's `retry:` says
    #[arg(long)]
    pub no_retry: bool,
}

#[derive(Debug, Args)]
pub struct Plan {
    /// The deployment's ID (its folder under cloud/deploy/)
    #[arg(add = crate::complete::deployment_ids(command))]
    pub id: String,
    /// The environment a deploy would go to (one of the manifest's `environments`)
    #[arg(short, long)]
    #[arg(add = crate::complete::environments(command))]
    pub environment: String,
    /// Plan only these stacks (the others as a deploy with --only leaves them)
    #[arg(long, value_name = "STACK", num_args = 1.., value_delimiter = ',', conflicts_with = "changed")]
    #[arg(add = crate::complete::stacks(command))]
    pub only: Vec<String>,
    #[command(flatten)]
    pub changed: ChangedArgs,
    /// Plan every stack, even those a deploy would skip as unchanged
    #[arg(long)]
    pub all: bool,
    /// Plan at most N stacks at once (default: the manifest's `parallelism`, else no limit)
    #[arg(short = 'p', long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub parallelism: Option<u32>,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Full-screen view: select a stack, see its resources and logs
    #[arg(short, long)]
    pub interactive: bool,
    /// Leave the interactive view as soon as the plan ends
    #[arg(long)]
    pub exit_on_done: bool,
    /// Exit 0 when nothing would change, 2 when something would, 1 on any error
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Write the run's summary (per stack: status, times, resources, error) as JSON here
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Save the plan in this folder (for `cloud deploy --plan DIR`); the tools' plan files may hold secrets
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write the plan as a pull-request comment in Markdown here
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(flatten)]
    pub store: EventStoreArgs,
    /// Also send every event to CloudWatch Logs (group /cloud/deployments/<ID>)
    #[arg(long)]
    pub cloudwatch: bool,
}

/// Whether the command line asks for `--detailed-exitcode`, or is a `drift` (where 2 means
/// "changes" or "drifted", so a command line clap refuses exits 1).
pub fn asks_detailed_exitcode(args: impl IntoIterator<Item = std::ffi::OsString>) -> bool {
    args.into_iter()
        .any(|a| a == "--detailed-exitcode" || a == "drift")
}

#[derive(Debug, Args)]
pub struct Drift {
    /// The deployment's ID (its folder under cloud/deploy/)
    #[arg(add = crate::complete::deployment_ids(command))]
    pub id: String,
    /// The environment to check (one of the manifest's `environments`)
    #[arg(short, long)]
    #[arg(add = crate::complete::environments(command))]
    pub environment: String,
    /// Check only these stacks
    #[arg(long, value_name = "STACK", num_args = 1.., value_delimiter = ',')]
    #[arg(add = crate::complete::stacks(command))]
    pub only: Vec<String>,
    /// Check at most N stacks at once (default: the manifest's `parallelism`, else no limit)
    #[arg(short = 'p', long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub parallelism: Option<u32>,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Full-screen view: select a stack, see its drifted resources and logs
    #[arg(short, long)]
    pub interactive: bool,
    /// Leave the interactive view as soon as the check ends
    #[arg(long)]
    pub exit_on_done: bool,
    /// Send no notifications for this run (drift_detected, drift_resolved)
    #[arg(long)]
    pub no_notify: bool,
    /// Write the run's summary (per stack: health, drifted resources, error) as JSON here
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Write the findings in Markdown here (e.g. "$GITHUB_STEP_SUMMARY")
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(flatten)]
    pub store: EventStoreArgs,
    /// Also send every event to CloudWatch Logs (group /cloud/deployments/<ID>)
    #[arg(long)]
    pub cloudwatch: bool,
}

#[derive(Debug, Args)]
pub struct Destroy {
    /// The deployment's ID (its folder under cloud/deploy/)
    #[arg(add = crate::complete::deployment_ids(command))]
    pub id: String,
    /// The environment to destroy (one of the manifest's `environments`)
    #[arg(short, long)]
    #[arg(add = crate::complete::environments(command))]
    pub environment: String,
    /// Do not ask for confirmation (required when stdin is not a terminal)
    #[arg(short, long)]
    pub yes: bool,
    /// Destroy at most N stacks at once (default: the manifest's `parallelism`, else no limit)
    #[arg(short = 'p', long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub parallelism: Option<u32>,
    /// After the first failure start no new stack (running ones finish)
    #[arg(long)]
    pub fail_fast: bool,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Full-screen view: select a stack, see its resources and logs
    #[arg(short, long)]
    pub interactive: bool,
    /// Leave the interactive view as soon as the destroy ends
    #[arg(long)]
    pub exit_on_done: bool,
    /// Seconds a stopping stack gets after SIGINT before it is killed
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 10.0,
        allow_negative_numbers = true
    )]
    pub grace_period: f64,
    /// Send no notifications for this destroy (email, Slack, PagerDuty, webhooks)
    #[arg(long)]
    pub no_notify: bool,
    #[command(flatten)]
    pub changed: ChangedArgs,
    #[command(flatten)]
    pub store: EventStoreArgs,
    /// Also send every event to CloudWatch Logs (group /cloud/deployments/<ID>)
    #[arg(long)]
    pub cloudwatch: bool,
    /// Try each stack once: no retries of transient errors, whatever the manifest's `retry:` says
    #[arg(long)]
    pub no_retry: bool,
}

#[derive(Debug, Args)]
pub struct Serve {
    /// Where to listen (anything but loopback needs CLOUD_JWT_SECRET)
    #[arg(long, value_name = "ADDR", default_value = crate::server::DEFAULT_ADDR)]
    pub addr: String,
}

#[derive(Debug, Args)]
pub struct Watch {
    /// The deployment's ID
    #[arg(add = crate::complete::deployment_ids(command))]
    pub id: String,
    /// The environment
    #[arg(short, long)]
    #[arg(add = crate::complete::environments(command))]
    pub environment: String,
    /// The server, e.g. ws://127.0.0.1:7070
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// A token for the server (default: one minted with CLOUD_JWT_SECRET)
    #[arg(long, env = "CLOUD_TOKEN", hide_env_values = true, value_name = "JWT")]
    pub token: Option<String>,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Full-screen view: select a stack, see its resources and logs
    #[arg(short, long)]
    pub interactive: bool,
    /// Leave the interactive view as soon as the deploy ends
    #[arg(long)]
    pub exit_on_done: bool,
}

#[derive(Debug, Args)]
pub struct Token {
    /// Limit the token to this deployment (repeat for more; default: all)
    #[arg(short, long, value_name = "ID")]
    #[arg(add = crate::complete::deployment_ids(command))]
    pub deployment: Vec<String>,
    /// How long the token is valid: 90s, 30m, 1h, 7d
    #[arg(long, value_name = "TTL", default_value = "1h")]
    pub ttl: String,
    /// Whom the token names (its `sub`; default: the current user)
    #[arg(long, value_name = "NAME")]
    pub subject: Option<String>,
}

/// `--serve` and `--serve-for`, for the runs that can be served (deploy, plan).
#[derive(Debug, Args, Clone, Default)]
pub struct ServeArgs {
    /// Serve this run's dashboard, REST API and WebSocket stream while it runs
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = crate::server::DEFAULT_ADDR)]
    pub serve: Option<String>,
    /// With --serve: serve the finished run this long (30s, 10m, 1h; default: until Ctrl-C on a terminal, not at all elsewhere)
    #[arg(long, value_name = "DURATION", requires = "serve", value_parser = crate::server::parse_serve_for)]
    pub serve_for: Option<std::time::Duration>,
}

/// The DynamoDB event store, for the commands that write or read the audit trail.
#[derive(Debug, Args, Clone, Default)]
pub struct EventStoreArgs {
    /// DynamoDB table of the audit trail (else the manifest's `eventStore.dynamodb.table`;
    /// neither: the local journal only)
    #[arg(long, env = "CLOUD_DYNAMODB_TABLE", value_name = "TABLE")]
    pub dynamodb_table: Option<String>,
}

#[derive(Debug, Args)]
pub struct Validate {
    /// The deployment's ID
    #[arg(add = crate::complete::deployment_ids(command))]
    pub id: String,
    /// Also check that this environment is listed
    #[arg(short, long)]
    #[arg(add = crate::complete::environments(command))]
    pub environment: Option<String>,
    #[command(flatten)]
    pub changed: ChangedArgs,
}

#[derive(Debug, Args)]
pub struct Graph {
    /// The deployment's ID
    #[arg(add = crate::complete::deployment_ids(command))]
    pub id: String,
    /// text (by layer), dot (Graphviz) or json
    #[arg(short, long, value_enum, default_value_t = GraphFormat::Text)]
    pub format: GraphFormat,
    #[command(flatten)]
    pub changed: ChangedArgs,
}

/// `--changed`, `--since` and `--no-dependents`: the stacks a git change touches, for the
/// commands that run or show stacks (`cloud affected` lists them).
#[derive(Debug, Args, Clone, Default)]
pub struct ChangedArgs {
    /// Only the stacks whose manifest entry, files under `path` or local Terraform modules
    /// changed since --since (uncommitted and untracked files too), and what depends on them
    #[arg(long)]
    pub changed: bool,
    #[command(flatten)]
    pub since: SinceArgs,
}

/// What a change is measured against, and whether dependents count (`--changed`, `affected`).
#[derive(Debug, Args, Clone, Default)]
pub struct SinceArgs {
    /// The git revision to compare the work tree with (default: the merge base with the
    /// remote's default branch, else HEAD^)
    #[arg(long, value_name = "REF")]
    #[arg(add = crate::complete::git_revisions(command))]
    pub since: Option<String>,
    /// Leave out the stacks that depend on the changed ones
    #[arg(long)]
    pub no_dependents: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AffectedFormat {
    /// One line per stack with its reasons
    Text,
    /// A list of {stack, reasons, layer}
    Json,
    /// {"include": [{stack, layer}, …]} for a GitHub Actions `strategy.matrix`
    GithubMatrix,
}

#[derive(Debug, Args)]
pub struct Affected {
    /// The deployment's ID
    #[arg(add = crate::complete::deployment_ids(command))]
    pub id: String,
    /// Also check that this environment is listed
    #[arg(short, long)]
    #[arg(add = crate::complete::environments(command))]
    pub environment: Option<String>,
    #[command(flatten)]
    pub since: SinceArgs,
    /// text, json, or github-matrix
    #[arg(short, long, value_enum, default_value_t = AffectedFormat::Text)]
    pub output: AffectedFormat,
}

#[derive(Debug, Args)]
pub struct Status {
    /// The deployment's ID
    #[arg(add = crate::complete::deployment_ids(command))]
    pub id: String,
    /// The environment
    #[arg(short, long)]
    #[arg(add = crate::complete::environments(command))]
    pub environment: String,
    /// text, or json (the REST status `data` object)
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    #[command(flatten)]
    pub store: EventStoreArgs,
    /// Also show where the time went: the critical path, what each stack on it cost, a timeline
    #[arg(long)]
    pub timing: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Debug, Args)]
pub struct Logs {
    /// The deployment's ID
    #[arg(add = crate::complete::deployment_ids(command))]
    pub id: String,
    /// The environment
    #[arg(short, long)]
    #[arg(add = crate::complete::environments(command))]
    pub environment: String,
    /// Only lines about this stack
    #[arg(long, value_name = "STACK")]
    #[arg(add = crate::complete::stacks(command))]
    pub stack: Option<String>,
    /// Only lines at this level or above
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub level: Option<Level>,
    /// Keep printing lines as they are written, until the run ends
    #[arg(short, long)]
    pub follow: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Events {
    #[command(subcommand)]
    pub action: Option<EventsAction>,
    /// The deployment's ID
    #[arg(required = true)]
    #[arg(add = crate::complete::deployment_ids(command))]
    pub id: Option<String>,
    /// Only this environment
    #[arg(short, long)]
    #[arg(add = crate::complete::environments(command))]
    pub environment: Option<String>,
    /// Only events from this time on: 2025-10-09T14:30:00Z, 2025-10-09, or ago: 30m, 2h, 7d
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only events of this type (e.g. stack_failed)
    #[arg(long = "type", value_name = "TYPE")]
    pub type_: Option<String>,
    /// Only events about this stack
    #[arg(long, value_name = "STACK")]
    #[arg(add = crate::complete::stacks(command))]
    pub stack: Option<String>,
    /// Only events of this run
    #[arg(long, value_name = "RUN_ID")]
    pub run: Option<String>,
    /// text (one line per event), or json (one event envelope per line)
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    #[command(flatten)]
    pub store: EventStoreArgs,
}

#[derive(Debug, Subcommand)]
pub enum EventsAction {
    /// Create the DynamoDB table of the audit trail (on-demand billing)
    InitTable(TableArgs),
    /// Send the events waiting in the local spool to DynamoDB
    Sync(TableArgs),
}

#[derive(Debug, Args)]
pub struct TableArgs {
    /// A deployment whose manifest names the table (`eventStore.dynamodb`); sync: only its spool
    #[arg(add = crate::complete::deployment_ids(command))]
    pub id: Option<String>,
    #[command(flatten)]
    pub store: EventStoreArgs,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The deployment's ID
    #[arg(add = crate::complete::deployment_ids(command))]
    pub id: String,
    /// Only this environment
    #[arg(short, long)]
    #[arg(add = crate::complete::environments(command))]
    pub environment: Option<String>,
    /// text (a table), or json (one object per run)
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    #[command(flatten)]
    pub store: EventStoreArgs,
}

#[derive(Debug, Args)]
pub struct Replay {
    /// The deployment's ID
    #[arg(add = crate::complete::deployment_ids(command))]
    pub id: String,
    /// The environment (default: RUN's own; without RUN, that of the latest run of any)
    #[arg(short, long)]
    #[arg(add = crate::complete::environments(command))]
    pub environment: Option<String>,
    /// The run, as `cloud history` lists it (default: the latest)
    #[arg(value_name = "RUN")]
    pub run: Option<String>,
    /// Play N times faster than it ran (0.5: half as fast; default 1)
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        conflicts_with = "instant"
    )]
    pub speed: Option<f64>,
    /// No waits: every event at once, the views ending on the final state
    #[arg(long)]
    pub instant: bool,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Full-screen view: select a stack, see its resources and logs
    #[arg(short, long)]
    pub interactive: bool,
    /// Leave the interactive view as soon as the replay ends
    #[arg(long)]
    pub exit_on_done: bool,
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(flatten)]
    pub store: EventStoreArgs,
}

#[derive(Debug, Args)]
pub struct Unlock {
    /// The deployment's ID
    #[arg(add = crate::complete::deployment_ids(command))]
    pub id: String,
    /// The environment
    #[arg(short, long)]
    #[arg(add = crate::complete::environments(command))]
    pub environment: String,
    /// Also remove a DynamoDB lock whose lease is still live (its run's machine is gone)
    #[arg(long)]
    pub force: bool,
    /// Stop the stacks' programs a dead run left running (SIGTERM, then SIGKILL after the
    /// grace period)
    #[arg(long)]
    pub kill: bool,
    /// With --kill: seconds the programs get after SIGTERM before they are killed
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 10.0,
        allow_negative_numbers = true
    )]
    pub grace_period: f64,
    #[command(flatten)]
    pub store: EventStoreArgs,
}

#[derive(Debug, Subcommand)]
pub enum Notify {
    /// Send a test message to every configured channel and report each result
    Test(NotifyTest),
}

#[derive(Debug, Args)]
pub struct NotifyTest {
    /// The deployment's ID
    #[arg(add = crate::complete::deployment_ids(command))]
    pub id: String,
    /// The environment the test message names (default: the manifest's first)
    #[arg(short, long)]
    #[arg(add = crate::complete::environments(command))]
    pub environment: Option<String>,
}

#[derive(Debug, Args)]
pub struct Completions {
    /// The shell
    pub shell: clap_complete::Shell,
}

/// The clap command, for completions and man pages.
pub fn command() -> clap::Command {
    with_long_help(<Cli as clap::CommandFactory>::command(), "cloud")
}

/// `--help` ends with examples, exit status and environment (`crate::help`), for every command.
fn with_long_help(cmd: clap::Command, path: &str) -> clap::Command {
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    let mut cmd = cmd.after_long_help(crate::help::long_help(path));
    for name in names {
        let sub_path = match path {
            "cloud" => name.clone(),
            _ => format!("{path} {name}"),
        };
        cmd = cmd.mut_subcommand(name, |sub| with_long_help(sub, &sub_path));
    }
    cmd
}

/// The variable the completion scripts set when they call `cloud` back for candidates.
pub const COMPLETE_VAR: &str = "CLOUD_COMPLETE";

/// The completion script for `shell`: it calls `cloud` back (`CLOUD_COMPLETE=<shell> cloud -- WORDS`)
/// so values (deployments, environments, stacks) are read from the tree when Tab is pressed.
pub fn completion_script(shell: clap_complete::Shell) -> Vec<u8> {
    use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Zsh};
    let adapter: &dyn EnvCompleter = match shell {
        clap_complete::Shell::Bash => &Bash,
        clap_complete::Shell::Elvish => &Elvish,
        clap_complete::Shell::Fish => &Fish,
        clap_complete::Shell::PowerShell => &Powershell,
        // Zsh, and any shell clap adds later (the enum is non-exhaustive).
        _ => &Zsh,
    };
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = adapter.write_registration(COMPLETE_VAR, "cloud", "cloud", "cloud", &mut out);
    out
}

/// The files kept in `completions/` and `man/`, generated from the definitions above
/// (a test checks they are in sync; `UPDATE_GENERATED=1 cargo test --test generated` rewrites them).
pub fn generated_files() -> Vec<(PathBuf, Vec<u8>)> {
    use clap_complete::Shell;
    let mut files = Vec::new();
    for (shell, name) in [
        (Shell::Bash, "cloud.bash"),
        (Shell::Zsh, "_cloud"),
        (Shell::Fish, "cloud.fish"),
        (Shell::PowerShell, "_cloud.ps1"),
        (Shell::Elvish, "cloud.elv"),
    ] {
        files.push((
            PathBuf::from("completions").join(name),
            completion_script(shell),
        ));
    }
    // The commit changes with every commit: the generated pages name the version alone.
    let mut root = command().long_version(None::<&'static str>);
    // Built, so each subcommand's page lists the global options and knows the version.
    root.build();
    let mut pages = vec![(String::from("cloud"), String::from("cloud"), root.clone())];
    for sub in root.get_subcommands().filter(|c| c.get_name() != "help") {
        let name = format!("cloud-{}", sub.get_name());
        let page = sub
            .clone()
            .display_name(name.clone())
            .bin_name(format!("cloud {}", sub.get_name()));
        pages.push((name, sub.get_name().to_owned(), page));
    }
    for (name, path, cmd) in pages {
        files.push((
            PathBuf::from("man").join(format!("{name}.1")),
            man_page(cmd, &path),
        ));
    }
    files
}

/// One man page: clap_mangen's sections, then examples, exit status and environment.
fn man_page(cmd: clap::Command, path: &str) -> Vec<u8> {
    let man = clap_mangen::Man::new(cmd.clone())
        .source(format!("cloud {}", env!("CARGO_PKG_VERSION")))
        .manual("cloud manual");
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = man.render_title(&mut out);
    let _ = man.render_name_section(&mut out);
    let _ = man.render_synopsis_section(&mut out);
    let _ = man.render_description_section(&mut out);
    let _ = man.render_options_section(&mut out);
    if cmd.has_subcommands() {
        let _ = man.render_subcommands_section(&mut out);
    }
    out.extend_from_slice(crate::help::man_sections(path).as_bytes());
    let _ = man.render_version_section(&mut out);
    // Each section rendered alone repeats roff's two-line preamble: keep the first.
    let text = String::from_utf8_lossy(&out);
    let mut lines = text.lines();
    let preamble: Vec<&str> = lines.by_ref().take(2).collect();
    let mut page = preamble.join("\n") + "\n";
    for line in lines.filter(|l| !preamble.contains(l)) {
        page.push_str(line);
        page.push('\n');
    }
    page.into_bytes()
}

/// The README's command reference (between `<!-- commands:begin -->` and `<!-- commands:end -->`),
/// generated from the definitions above so that it names every command and flag (the sync test
/// checks it; `UPDATE_GENERATED=1 cargo test --test generated` rewrites it).
pub fn reference_markdown() -> String {
    let mut root = command();
    root.build();
    let mut out = String::from("Global options (before or after the subcommand):\n\n");
    out.push_str(&flag_table(
        root.get_arguments().filter(|a| a.is_global_set()),
    ));
    let mut queue: Vec<(String, &clap::Command)> = root
        .get_subcommands()
        .filter(|c| c.get_name() != "help")
        .map(|c| (format!("cloud {}", c.get_name()), c))
        .collect();
    while !queue.is_empty() {
        let (name, cmd) = queue.remove(0);
        let nested: Vec<_> = cmd
            .get_subcommands()
            .filter(|c| c.get_name() != "help")
            .map(|c| (format!("{name} {}", c.get_name()), c))
            .collect();
        let usage = cmd.clone().bin_name(&name).render_usage().to_string();
        let usage = usage
            .trim_start_matches("Usage: ")
            .replace("\n       ", " | ");
        let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
        out.push_str(&format!(
            "\n#### `{name}`\n\n{about}.\n\n```\n{usage}\n```\n"
        ));
        let own = cmd
            .get_arguments()
            .filter(|a| !a.is_global_set() && !a.is_hide_set())
            .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"));
        let table = flag_table(own);
        if !table.is_empty() {
            out.push('\n');
            out.push_str(&table);
        }
        for (i, sub) in nested.into_iter().enumerate() {
            queue.insert(i, sub);
        }
    }
    out
}

/// `| flag | what it does |` rows: names, value, help, choices, default and environment variable.
fn flag_table<'a>(args: impl Iterator<Item = &'a clap::Arg>) -> String {
    let mut rows = String::new();
    for arg in args {
        let value = arg
            .get_value_names()
            .and_then(|names| names.first())
            .map(|v| format!("<{v}>"))
            .unwrap_or_else(|| format!("<{}>", arg.get_id().as_str().to_uppercase()));
        let takes_value = arg.get_action().takes_values();
        let mut names = Vec::new();
        if let Some(short) = arg.get_short() {
            names.push(format!("-{short}"));
        }
        if let Some(long) = arg.get_long() {
            names.push(format!("--{long}"));
        }
        let name = match (names.is_empty(), takes_value) {
            (true, _) => value,
            (false, true) => format!("{} {value}", names.join(", ")),
            (false, false) => names.join(", "),
        };
        let mut what = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        let choices: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|p| !p.is_hide_set())
            .map(|p| format!("`{}`", p.get_name()))
            .collect();
        if !choices.is_empty() && takes_value {
            what.push_str(&format!(" — one of {}", choices.join(", ")));
        }
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|d| d.to_string_lossy().into_owned())
            .collect();
        if !defaults.is_empty() && takes_value {
            what.push_str(&format!(" (default `{}`)", defaults.join(",")));
        }
        if let Some(var) = arg.get_env() {
            what.push_str(&format!(" (env `{}`)", var.to_string_lossy()));
        }
        if arg.is_required_set() {
            what.push_str(" (required)");
        }
        rows.push_str(&format!("| `{name}` | {} |\n", what.replace('|', "\\|")));
    }
    match rows.is_empty() {
        true => rows,
        false => format!("| flag | what |\n|---|---|\n{rows}"),
    }
}
