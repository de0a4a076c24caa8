//! The embedded server: the seed's REST endpoints, the WebSocket stream and the dashboard,
//! fed by the same events as every other consumer.
//!
//! - [`hub`] folds events with the one reducer per deployment+environment and fans them out;
//!   on a deploy it is a sink on the bus ([`hub::HubSink`]); for `cloud serve` a
//!   [`store::Follower`] feeds it from stored runs.
//! - [`http`] REST and the dashboard page; [`links`] the pages notifications link to; [`ws`] one WebSocket connection; [`auth`] JWT.
//! - [`store`] the boundary to stored runs (journals today; any event store that implements
//!   [`store::StoredRuns`]).
//!
//! The server runs on a runtime and a thread of its own, so serving many clients takes nothing
//! from the deploy's runtime (and at most one core).

pub mod auth;
pub mod http;
pub mod hub;
pub mod limits;
pub mod links;
pub mod store;
pub mod upgrade;
pub mod ws;

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use auth::Auth;
use hub::Hub;
use limits::{ConnInfo, Guarded, Limits};

use crate::error::Error;

/// How long a server with clients goes on serving once told to stop, before it closes them.
pub const SETTLE: Duration = Duration::from_millis(500);

/// Where `--serve` and `cloud serve` listen unless told otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7070";

/// Resolves and checks a listen address: anything but loopback needs a `CLOUD_JWT_SECRET` of
/// at least [`auth::MIN_SECRET`] bytes (a random secret's token is printed, and a printed token
/// must not open a public port; a short secret can be guessed offline from any token).
pub fn listen_addr(text: &str, auth: &Auth) -> Result<SocketAddr, Error> {
    let addr = text
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| {
            Error::input(format!("`{text}` is not an address to listen on"))
                .hint("e.g. 127.0.0.1:7070, [::1]:7070 or 0.0.0.0:7070")
        })?;
    match auth.refuse_public() {
        Some((why, help)) if !addr.ip().is_loopback() => {
            Err(Error::input(format!("refusing to listen on {addr} {why}")).hint(help))
        }
        _ => Ok(addr),
    }
}

/// Binds now (so a taken port is said before anything runs).
pub fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    let listener = TcpListener::bind(addr).map_err(|e| {
        Error::input(format!("cannot listen on {addr}: {e}"))
            .hint("pick another address, e.g. 127.0.0.1:0 for any free port")
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::input(format!("cannot listen on {addr}: {e}")))?;
    Ok(listener)
}

/// `--serve-for 30s|10m|1h|1d` (or plain seconds): how long a run's own server goes on
/// serving the finished run.
pub fn parse_serve_for(text: &str) -> Result<Duration, String> {
    auth::parse_ttl(text).map_err(|bad| match bad.why {
        auth::TtlFault::Range => format!("`{}`: from 1s to 366d", bad.text),
        _ => bad.to_string(),
    })
}

/// What a run's own server (`--serve`) does once the run is over: its printed link must not
/// die under whoever opens it, yet an unattended run (CI) must never hang on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterRun {
    /// Stop now (no terminal to Ctrl-C from, and no `--serve-for`; or the run was stopped).
    Stop,
    /// Serve the finished run until Ctrl-C or SIGTERM.
    UntilInterrupted,
    /// Serve it this long (`--serve-for`), or until Ctrl-C.
    For(Duration),
}

impl AfterRun {
    pub fn decide(serve_for: Option<Duration>, terminal: bool, interrupted: bool) -> AfterRun {
        match (serve_for, terminal) {
            _ if interrupted => AfterRun::Stop,
            (Some(d), _) => AfterRun::For(d),
            (None, true) => AfterRun::UntilInterrupted,
            (None, false) => AfterRun::Stop,
        }
    }
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub hub: Hub,
    /// The dashboard's address as printed for a run's own server (with its token).
    pub url: Option<String>,
    closing: watch::Sender<Option<(u16, String)>>,
    /// Open WebSocket connections.
    connections: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
    runtime_done: std::sync::mpsc::Receiver<()>,
}

impl Server {
    /// Serves `hub` on `listener`, on threads of its own, within `limits`.
    pub fn start(
        listener: TcpListener,
        hub: Hub,
        auth: Auth,
        limits: Limits,
    ) -> std::io::Result<Server> {
        let addr = listener.local_addr()?;
        let (closing, closing_rx) = watch::channel(None);
        let (done_tx, runtime_done) = std::sync::mpsc::channel();
        // One worker: the server takes at most one core from the deploy, and handing an event
        // from a subscription's task to its connection's writer stays on one thread.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("server")
            .enable_all()
            .build()?;
        let state = http::AppState {
            hub: hub.clone(),
            auth,
            closing: closing_rx.clone(),
            connections: Arc::default(),
            limits,
        };
        let connections = Arc::clone(&state.connections);
        let open = Arc::clone(&state.connections);
        let thread = std::thread::Builder::new()
            .name("server".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let mut stop = closing_rx.clone();
                    let app = http::router(state, links::routes())
                        .into_make_service_with_connect_info::<ConnInfo>();
                    let _ = axum::serve(Guarded::new(listener, limits), app)
                        .with_graceful_shutdown(async move {
                            let _ = stop.wait_for(Option::is_some).await;
                        })
                        .await;
                    // Upgraded connections outlive the HTTP server: let them say goodbye.
                    while open.load(Ordering::Acquire) > 0 {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                });
                runtime.shutdown_timeout(Duration::from_millis(100));
                let _ = done_tx.send(());
            })?;
        Ok(Server {
            addr,
            hub,
            url: None,
            closing,
            connections,
            thread: Some(thread),
            runtime_done,
        })
    }

    /// The dashboard's address for one deployment, with a token.
    pub fn dashboard_url(&self, token: &str, deployment: &str, environment: &str) -> String {
        format!(
            "http://{}/?token={token}&deployment={deployment}&environment={environment}",
            self.addr
        )
    }

    /// Once its run is over: goes on serving as `after` says (saying so, and saying when it
    /// stops), then stops. `interrupted` resolves on Ctrl-C or SIGTERM.
    pub fn after_run(
        self,
        after: AfterRun,
        interrupted: impl std::future::Future<Output = ()>,
        linger: Duration,
    ) {
        let url = (self.url.clone()).unwrap_or_else(|| format!("http://{}/", self.addr));
        let limit = match after {
            AfterRun::Stop => {
                eprintln!(
                    "Stopped serving: the run is over (--serve-for DURATION keeps serving it; \
                     `cloud serve` shows it)"
                );
                return self.stop(1000, "the run is over", linger);
            }
            AfterRun::UntilInterrupted => {
                eprintln!("Still serving the finished run at {url} — Ctrl-C to stop");
                None
            }
            AfterRun::For(d) => {
                let d = crate::words::format_duration(d.as_secs());
                eprintln!("Still serving the finished run at {url} for {d} — Ctrl-C to stop");
                Some(d)
            }
        };
        let timed_out = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|runtime| {
                runtime.block_on(async {
                    let elapsed = async {
                        match after {
                            AfterRun::For(d) => tokio::time::sleep(d).await,
                            _ => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        _ = interrupted => false,
                        _ = elapsed => true,
                    }
                })
            })
            .unwrap_or(false);
        if let (true, Some(d)) = (timed_out, limit) {
            eprintln!("Stopped serving after {d} (--serve-for); `cloud serve` shows the run");
        }
        self.stop(1000, "the run is over", linger);
    }

    /// Closes every connection with `reason` (after each has been sent what its rings still
    /// hold) and stops, waiting at most `linger`. With clients connected, it first goes on
    /// serving for [`SETTLE`], so that a dashboard's last request for the state is answered.
    pub fn stop(mut self, code: u16, reason: &str, linger: Duration) {
        if self.connections.load(Ordering::Acquire) > 0 {
            std::thread::sleep(SETTLE);
        }
        let _ = self.closing.send(Some((code, reason.to_owned())));
        let until = Instant::now() + linger;
        if self
            .runtime_done
            .recv_timeout(until.saturating_duration_since(Instant::now()))
            .is_ok()
        {
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
        // Otherwise the thread is left to the process's exit.
    }
}
