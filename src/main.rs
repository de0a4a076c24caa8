use clap::Parser;

fn main() {
    let cli = cloud::cli::Cli::parse();
    let code = match cloud::commands::run(cli) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("{}", failure.message);
            failure.code
        }
    };
    std::process::exit(code);
}
