//! `cloud serve [--addr A]`: the dashboard, REST API and WebSocket stream for every deployment
//! under `--root`, from their stored runs, following the runs still going. (`cloud deploy
//! --serve` serves its own run alone: `shared::serve_deploy`.)

use std::sync::Arc;
use std::time::Duration;

use super::shared::{me, start_server, Outcome, LINGER, PRINTED_TOKEN_TTL};
use crate::cli;
use crate::error::Error;
use crate::server::auth::{Auth, SecretSource};
use crate::server::hub::Hub;
use crate::server::store::{JournalStore, StoredRuns};
use crate::settings::Settings;

/// How often stored runs are looked at for new events.
const POLL: Duration = Duration::from_millis(200);

pub fn run(settings: &Settings, args: cli::Serve) -> Outcome {
    let auth = Auth::from_env_or_random()?;
    let deploy_dir = settings.root.join("cloud").join("deploy");
    if !deploy_dir.is_dir() {
        return Err(Error::input(format!(
            "no deployments under {} (looked for {})",
            settings.root.display(),
            deploy_dir.display()
        ))
        .hint("run it where cloud/deploy/ is, or pass --root DIR"));
    }
    let store = JournalStore::new(&settings.root);
    let mut follower = store.follower();
    let store: Arc<dyn StoredRuns> = Arc::new(store);
    let hub = Hub::new(Some(Arc::clone(&store)));
    let read = |e: std::io::Error| {
        Error::failed(format!(
            "cannot read the runs under {}: {e}",
            deploy_dir.display()
        ))
    };
    for event in follower.poll().map_err(read)? {
        hub.publish(&event);
    }
    let server = start_server(&args.addr, hub.clone(), &auth)?;
    let count = store.deployments().map(|d| d.len()).unwrap_or(0);
    let url = format!("http://{}/", server.addr);
    match auth.source {
        SecretSource::Random => {
            let token = auth.mint(&me(), None, PRINTED_TOKEN_TTL);
            eprintln!("Serving {count} deployment(s) under {}: {url}?token={token}", settings.root.display());
        }
        SecretSource::Environment => eprintln!(
            "Serving {count} deployment(s) under {}: {url} (mint a token with `cloud token`, open {url}?token=…)",
            settings.root.display()
        ),
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start: {e}")))?;
    let problem = runtime.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return Some("cannot watch for Ctrl-C".to_owned());
        };
        let mut tick = tokio::time::interval(POLL);
        loop {
            tokio::select! {
                _ = int.recv() => return None,
                _ = term.recv() => return None,
                _ = tick.tick() => {
                    match follower.poll() {
                        Ok(events) => events.iter().for_each(|e| hub.publish(e)),
                        // A journal being rotated or removed: try again next time.
                        Err(e) => eprintln!("warning: reading the runs: {e}"),
                    }
                }
            }
        }
    });
    server.stop(1001, "the server is shutting down", LINGER);
    match problem {
        Some(problem) => Err(Error::failed(problem)),
        None => Ok(()),
    }
}
