use clap::Parser;

fn main() {
    // `CLOUD_COMPLETE=<shell> cloud -- WORDS` (from the scripts in completions/): print candidates, exit.
    clap_complete::CompleteEnv::with_factory(cloud::cli::command)
        .var(cloud::cli::COMPLETE_VAR)
        .complete();
    let cli = cloud::cli::Cli::parse();
    std::process::exit(cloud::commands::run(cli));
}
