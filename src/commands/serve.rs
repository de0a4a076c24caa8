//! `cloud serve [--addr A]`: the dashboard, REST API and WebSocket stream for every deployment
//! under `--root`, from their stored runs, following the runs still going. Also what
//! `cloud deploy --serve` starts for its own run ([`for_deploy`]).

use std::sync::Arc;
use std::time::Duration;

use super::{exit, Failure};
use crate::cli;
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

fn start(addr: &str, hub: Hub, auth: &Auth) -> Result<Server, Failure> {
    let addr = server::listen_addr(addr, auth).map_err(Failure::input)?;
    let limits = Limits::from_env().map_err(Failure::input)?;
    let listener = server::bind(addr).map_err(Failure::input)?;
    Server::start(listener, hub, auth.clone(), limits)
        .map_err(|e| Failure::new(exit::FAILED, format!("error: cannot start the server: {e}")))
}

/// The server of one deploy (`cloud deploy --serve`): its hub is a sink on the run's bus.
/// Prints the dashboard's URL with a token for this deployment.
pub(super) fn for_deploy(
    addr: &str,
    settings: &Settings,
    deployment: &str,
    environment: &str,
) -> Result<Server, Failure> {
    let auth = Auth::from_env_or_random().map_err(Failure::input)?;
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

pub fn run(settings: &Settings, args: cli::Serve) -> Result<i32, Failure> {
    let auth = Auth::from_env_or_random().map_err(Failure::input)?;
    let deploy_dir = settings.root.join("cloud").join("deploy");
    if !deploy_dir.is_dir() {
        return Err(Failure::input(format!(
            "error: no deployments under {} (looked for {})\n  help: run it where cloud/deploy/ is, or pass --root DIR",
            settings.root.display(),
            deploy_dir.display()
        )));
    }
    let store = JournalStore::new(&settings.root);
    let mut follower = store.follower();
    let store: Arc<dyn Store> = Arc::new(store);
    let hub = Hub::new(Some(Arc::clone(&store)));
    let read = |e: std::io::Error| {
        Failure::new(
            exit::FAILED,
            format!(
                "error: cannot read the runs under {}: {e}",
                deploy_dir.display()
            ),
        )
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
        .map_err(|e| Failure::new(exit::FAILED, format!("error: cannot start: {e}")))?;
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
        Some(problem) => Err(Failure::new(exit::FAILED, format!("error: {problem}"))),
        None => Ok(exit::OK),
    }
}
