//! `cloud serve [--addr A]`: the dashboard, REST API and WebSocket stream for every deployment
//! under `--root`, from their stored runs, following the runs still going. Also what
//! `cloud deploy --serve` starts for its own run ([`for_deploy`]).

use std::sync::Arc;
use std::time::Duration;

use super::Outcome;
use crate::cli;
use crate::error::Error;
use crate::server::auth::{Auth, SecretSource};
use crate::server::hub::Hub;
use crate::server::limits::Limits;
use crate::server::store::{ChannelKey, JournalStore, Store};
use crate::server::{self, Server};
use crate::settings::Settings;
use crate::store::lock;

/// How often stored runs are looked at for new events.
const POLL: Duration = Duration::from_millis(200);
/// How long clients get to receive what is left once the server stops.
pub const LINGER: Duration = Duration::from_secs(3);
/// The life of the token a server prints.
const PRINTED_TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);

fn me() -> String {
    lock::user().unwrap_or_else(|| "cloud".into())
}

fn start(addr: &str, hub: Hub, auth: &Auth) -> Result<Server, Error> {
    let addr = server::listen_addr(addr, auth)?;
    let limits = Limits::from_env()?;
    let listener = server::bind(addr)?;
    Server::start(listener, hub, auth.clone(), limits)
        .map_err(|e| Error::internal(format!("cannot start the server: {e}")))
}

/// The server of one deploy (`cloud deploy --serve`): its hub is a sink on the run's bus.
/// Prints the dashboard's URL with a token for this deployment.
pub(super) fn for_deploy(
    addr: &str,
    settings: &Settings,
    deployment: &str,
    environment: &str,
) -> Result<Server, Error> {
    let auth = Auth::from_env_or_random()?;
    let key = ChannelKey::new(deployment, environment);
    let store = JournalStore::new(&settings.root).only(key.clone());
    let hub = Hub::only(&[key], Some(Arc::new(store)));
    let server = start(addr, hub, &auth)?;
    let token = auth.mint(&me(), Some(vec![deployment.to_owned()]), PRINTED_TOKEN_TTL);
    eprintln!(
        "Serving {deployment}-{environment}: {}",
        server.dashboard_url(&token, deployment, environment)
    );
    eprintln!(
        "  WebSocket: ws://{}/ws?token=… channel deployments/{deployment}-{environment}",
        server.addr
    );
    Ok(server)
}

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
    let store: Arc<dyn Store> = Arc::new(store);
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
    let server = start(&args.addr, hub.clone(), &auth)?;
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
