//! The command line, defined in one place. `main` parses it and dispatches.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "cloud",
    version,
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
    /// Check a deployment's manifest without deploying
    Validate(Validate),
    /// Show the stacks by dependency layer
    Graph(Graph),
    /// Show the state of the latest run
    Status(Status),
    /// Show the file log of the latest run
    Logs(Logs),
    /// List the audit trail (DynamoDB when configured, else the journal); manage its table
    Events(Events),
    /// List the runs of a deployment: when, who, how they ended
    History(History),
    /// Print a shell completion script
    Completions(Completions),
}

#[derive(Debug, Args)]
pub struct Deploy {
    /// The deployment's ID (its folder under cloud/deploy/)
    pub id: String,
    /// The environment to deploy to (one of the manifest's `environments`)
    #[arg(short, long)]
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
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub grace_period: f64,
    #[command(flatten)]
    pub store: Store,
    /// Also send every event to CloudWatch Logs (group /cloud/deployments/<ID>)
    #[arg(long)]
    pub cloudwatch: bool,
}

/// The DynamoDB event store, for the commands that write or read the audit trail.
#[derive(Debug, Args, Clone, Default)]
pub struct Store {
    /// DynamoDB table of the audit trail (else the manifest's `eventStore.dynamodb.table`;
    /// neither: the local journal only)
    #[arg(long, env = "CLOUD_DYNAMODB_TABLE", value_name = "TABLE")]
    pub dynamodb_table: Option<String>,
}

#[derive(Debug, Args)]
pub struct Validate {
    /// The deployment's ID
    pub id: String,
    /// Also check that this environment is listed
    #[arg(short, long)]
    pub environment: Option<String>,
}

#[derive(Debug, Args)]
pub struct Graph {
    /// The deployment's ID
    pub id: String,
    /// text (by layer), dot (Graphviz) or json
    #[arg(short, long, value_enum, default_value_t = GraphFormat::Text)]
    pub format: GraphFormat,
}

#[derive(Debug, Args)]
pub struct Status {
    /// The deployment's ID
    pub id: String,
    /// The environment
    #[arg(short, long)]
    pub environment: String,
    /// text, or json (the REST status `data` object)
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    #[command(flatten)]
    pub store: Store,
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
    pub id: String,
    /// The environment
    #[arg(short, long)]
    pub environment: String,
    /// Only lines about this stack
    #[arg(long, value_name = "STACK")]
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
    pub id: Option<String>,
    /// Only this environment
    #[arg(short, long)]
    pub environment: Option<String>,
    /// Only events from this time on: 2025-10-09T14:30:00Z, 2025-10-09, or ago: 30m, 2h, 7d
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only events of this type (e.g. stack_failed)
    #[arg(long = "type", value_name = "TYPE")]
    pub type_: Option<String>,
    /// Only events about this stack
    #[arg(long, value_name = "STACK")]
    pub stack: Option<String>,
    /// Only events of this run
    #[arg(long, value_name = "RUN_ID")]
    pub run: Option<String>,
    /// text (one line per event), or json (one event envelope per line)
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    #[command(flatten)]
    pub store: Store,
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
    pub id: Option<String>,
    #[command(flatten)]
    pub store: Store,
}

#[derive(Debug, Args)]
pub struct History {
    /// The deployment's ID
    pub id: String,
    /// Only this environment
    #[arg(short, long)]
    pub environment: Option<String>,
    /// text (a table), or json (one object per run)
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    #[command(flatten)]
    pub store: Store,
}

#[derive(Debug, Args)]
pub struct Completions {
    /// The shell
    pub shell: clap_complete::Shell,
}

/// The clap command, for completions and man pages.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
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
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut command(), "cloud", &mut out);
        files.push((PathBuf::from("completions").join(name), out));
    }
    let root = command();
    let mut pages = vec![(String::from("cloud"), root.clone())];
    for sub in root.get_subcommands() {
        let name = format!("cloud-{}", sub.get_name());
        let page = sub
            .clone()
            .display_name(name.clone())
            .bin_name(format!("cloud {}", sub.get_name()));
        pages.push((name, page));
    }
    for (name, cmd) in pages {
        let mut out = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = clap_mangen::Man::new(cmd).render(&mut out);
        files.push((PathBuf::from("man").join(format!("{name}.1")), out));
    }
    files
}
