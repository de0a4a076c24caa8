use clap::FromArgMatches;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    return_freed_memory_at_once();
    // `CLOUD_COMPLETE=<shell> cloud -- WORDS` (from the scripts in completions/): print candidates, exit.
    clap_complete::CompleteEnv::with_factory(cloud::cli::command)
        .var(cloud::cli::COMPLETE_VAR)
        .complete();
    // Parsed from `cli::command()`, which adds examples, exit status and environment to --help.
    let parsed = cloud::cli::command()
        .try_get_matches()
        .and_then(|m| cloud::cli::Cli::from_arg_matches(&m));
    let cli = parsed.unwrap_or_else(|e| {
        let _ = e.print();
        // Under `plan --detailed-exitcode`, 2 means "changes": a refused command line is 1.
        let refused = e.use_stderr() && cloud::cli::asks_detailed_exitcode(std::env::args_os());
        std::process::exit(if refused { 1 } else { e.exit_code() })
    });
    std::process::exit(cloud::commands::run(cli));
}

/// mimalloc's `mi_option_purge_delay`, by its place in mimalloc 3's list of options (the
/// crate names none of version 3's; a test holds the place to its default, a second).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory goes back to the system at once rather than a second later: a 10,000-stack
/// deploy's peak is then 107 MB, not 125 (the parsed manifest is gone before the run's state
/// grows), for ~3 % of its time; and a served run's big snapshots, once sent, do not stay in
/// the process (what glibc's fixed mmap threshold did before mimalloc). Left alone when
/// `MIMALLOC_PURGE_DELAY` set it otherwise.
fn return_freed_memory_at_once() {
    // SAFETY: called first thing, before any other thread exists (mimalloc's option calls are
    // not thread-safe); both take and give plain integers.
    unsafe {
        if libmimalloc_sys::mi_option_get(PURGE_DELAY) == 1000 {
            libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    /// The option set in `main` is the purge delay: version 3's default for it is a second.
    #[test]
    fn the_purge_delay_is_where_main_sets_it() {
        // SAFETY: reads an option.
        assert_eq!(
            unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) },
            1000
        );
    }
}
