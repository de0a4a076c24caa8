//! What one client may hold of the server: how long it may take to send a request's headers,
//! how long a connection may sit idle, how many connections there may be, and how long a
//! WebSocket client may stay too far behind.
//!
//! HTTP connections come through [`Guarded`], a listener whose connections ([`GuardedIo`]) time
//! themselves out: a request's headers must arrive within [`Limits::header_timeout`] of its
//! first byte, and a connection with nothing in flight is closed after
//! [`Limits::idle_timeout`] without traffic. [`track`] (a middleware) tells a connection when a
//! request is being answered; an upgraded WebSocket is left to [`super::ws`]'s own limits.
//! Beyond [`Limits::max_connections`], a new connection takes the place of the oldest one with
//! nothing in flight (an idle keep-alive or a half-sent request); when every connection is busy
//! it is refused (`503`, closed).

use crate::error::Error;
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;
use axum::serve::IncomingStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

/// The limits, from the environment (tests shorten them) or the defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// From a request's first byte to the end of its headers.
    pub header_timeout: Duration,
    /// A connection with no request in flight and no traffic is closed after this.
    pub idle_timeout: Duration,
    /// Open connections (HTTP and WebSocket together).
    pub max_connections: usize,
    /// How long a WebSocket client may stay more than a ring behind before it is closed.
    pub lag_limit: Duration,
}

/// The environment variables that set [`Limits`] (seconds; connections a count).
pub const HEADER_TIMEOUT_ENV: &str = "CLOUD_SERVER_HEADER_TIMEOUT";
pub const IDLE_TIMEOUT_ENV: &str = "CLOUD_SERVER_IDLE_TIMEOUT";
pub const MAX_CONNECTIONS_ENV: &str = "CLOUD_SERVER_MAX_CONNECTIONS";
pub const LAG_LIMIT_ENV: &str = "CLOUD_SERVER_LAG_LIMIT";

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
            lag_limit: Duration::from_secs(15),
        }
    }
}

impl Limits {
    /// The defaults, with what the environment sets instead; the connection cap stays below
    /// the process's open-file limit.
    pub fn from_env() -> Result<Limits, Error> {
        let mut limits = Limits::default();
        let seconds = |name: &str, default: Duration| -> Result<Duration, Error> {
            let Ok(text) = std::env::var(name) else {
                return Ok(default);
            };
            text.trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0 && *s <= 86_400.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| {
                    Error::input(format!("{name}=`{text}` is not a number of seconds")).hint(
                        format!("e.g. {name}=30 (or 0.5); more than 0, at most 86400"),
                    )
                })
        };
        limits.header_timeout = seconds(HEADER_TIMEOUT_ENV, limits.header_timeout)?;
        limits.idle_timeout = seconds(IDLE_TIMEOUT_ENV, limits.idle_timeout)?;
        limits.lag_limit = seconds(LAG_LIMIT_ENV, limits.lag_limit)?;
        if let Ok(text) = std::env::var(MAX_CONNECTIONS_ENV) {
            limits.max_connections =
                text.trim().parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    Error::input(format!(
                        "{MAX_CONNECTIONS_ENV}=`{text}` is not a count of connections"
                    ))
                    .hint(format!("e.g. {MAX_CONNECTIONS_ENV}=1000 (1 or more)"))
                })?;
        }
        // Room for the deploy's own files (journal, logs, stacks' pipes).
        if let Some(files) = open_file_limit() {
            limits.max_connections = limits.max_connections.min(files.saturating_sub(256).max(1));
        }
        Ok(limits)
    }
}

fn open_file_limit() -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur as usize)
}

/// Where a connection is.
const IDLE: u8 = 0;
const HEADERS: u8 = 1;
const BUSY: u8 = 2;
const UPGRADED: u8 = 3;

/// One connection, as the listener, its I/O, the middleware and a WebSocket see it.
pub struct Conn {
    phase: AtomicU8,
    /// Requests being answered.
    in_flight: AtomicUsize,
    /// When the phase began, or the last traffic while idle.
    since: Mutex<Instant>,
    /// Taken over by a newer connection: the next read fails.
    evicted: AtomicBool,
    /// Wakes the connection's reader (for an eviction).
    waker: Mutex<Option<Waker>>,
}

impl Conn {
    fn new() -> Conn {
        Conn {
            phase: AtomicU8::new(IDLE),
            in_flight: AtomicUsize::new(0),
            since: Mutex::new(Instant::now()),
            evicted: AtomicBool::new(false),
            waker: Mutex::new(None),
        }
    }

    fn set(&self, phase: u8) {
        self.phase.store(phase, Ordering::Release);
        *self.since.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn since(&self) -> Instant {
        *self.since.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Nothing in flight: it may make way for a new connection.
    fn evictable(&self) -> bool {
        matches!(self.phase.load(Ordering::Acquire), IDLE | HEADERS)
    }

    fn evict(&self) {
        self.evicted.store(true, Ordering::Release);
        if let Some(waker) = self.waker.lock().unwrap_or_else(|e| e.into_inner()).take() {
            waker.wake();
        }
    }

    /// The connection is a WebSocket now: no HTTP timeouts, never evicted.
    pub fn upgraded(&self) {
        self.set(UPGRADED);
    }
}

/// The connection a request came on (axum's connect info).
#[derive(Clone)]
pub struct ConnInfo(pub Arc<Conn>);

impl Connected<IncomingStream<'_, Guarded>> for ConnInfo {
    fn connect_info(stream: IncomingStream<'_, Guarded>) -> Self {
        ConnInfo(Arc::clone(&stream.io().conn))
    }
}

/// Marks a connection busy while one of its requests is answered.
pub async fn track(request: Request, next: Next) -> Response {
    let conn = request
        .extensions()
        .get::<ConnectInfo<ConnInfo>>()
        .map(|info| Arc::clone(&info.0 .0));
    if let Some(conn) = &conn {
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        if conn.phase.load(Ordering::Acquire) != UPGRADED {
            conn.set(BUSY);
        }
    }
    let response = next.run(request).await;
    if let Some(conn) = &conn {
        // The body is written after this; writing counts as traffic for the idle clock.
        if conn.in_flight.fetch_sub(1, Ordering::AcqRel) == 1
            && conn
                .phase
                .compare_exchange(BUSY, IDLE, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            conn.set(IDLE);
        }
    }
    response
}

/// The listener: admits connections up to the cap, each with its timeouts.
pub struct Guarded {
    listener: TcpListener,
    limits: Limits,
    /// Open connections, oldest first.
    open: VecDeque<Weak<Conn>>,
}

/// What a refused connection is told before it is closed.
fn busy_response() -> String {
    let body = r#"{"success":false,"error":{"code":"UNAVAILABLE","message":"too many connections; try again later"}}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

impl Guarded {
    pub fn new(listener: TcpListener, limits: Limits) -> Guarded {
        Guarded {
            listener,
            limits,
            open: VecDeque::new(),
        }
    }

    /// Room for one more connection: under the cap, or by evicting the oldest one with
    /// nothing in flight.
    fn admit(&mut self) -> Option<Arc<Conn>> {
        self.open.retain(|c| c.strong_count() > 0);
        if self.open.len() >= self.limits.max_connections {
            let oldest = self
                .open
                .iter()
                .position(|c| c.upgrade().is_some_and(|c| c.evictable()))?;
            if let Some(conn) = self.open.remove(oldest).and_then(|c| c.upgrade()) {
                conn.evict();
            }
        }
        let conn = Arc::new(Conn::new());
        self.open.push_back(Arc::downgrade(&conn));
        Some(conn)
    }
}

impl axum::serve::Listener for Guarded {
    type Io = GuardedIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (GuardedIo, SocketAddr) {
        loop {
            let (tcp, addr) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                // Out of descriptors, or a connection that died in the backlog: try again soon.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Events are small and must not wait for Nagle's algorithm.
            let _ = tcp.set_nodelay(true);
            match self.admit() {
                Some(conn) => return (GuardedIo::new(tcp, conn, self.limits), addr),
                None => {
                    // One try, never a wait: the descriptor is closed right away.
                    let _ = tcp.try_write(busy_response().as_bytes());
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// A connection's socket, failing its reads once a timeout passes (hyper then closes it).
pub struct GuardedIo {
    tcp: TcpStream,
    conn: Arc<Conn>,
    limits: Limits,
    timer: Pin<Box<Sleep>>,
}

impl GuardedIo {
    fn new(tcp: TcpStream, conn: Arc<Conn>, limits: Limits) -> GuardedIo {
        GuardedIo {
            tcp,
            conn,
            limits,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
        }
    }

    /// When the connection's current wait ends, if it has a deadline.
    fn deadline(&self) -> Option<(Instant, &'static str)> {
        match self.conn.phase.load(Ordering::Acquire) {
            IDLE => Some((self.conn.since() + self.limits.idle_timeout, "idle timeout")),
            HEADERS => Some((
                self.conn.since() + self.limits.header_timeout,
                "the request's headers took too long",
            )),
            _ => None,
        }
    }
}

fn timed_out(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, why.to_owned())
}

impl AsyncRead for GuardedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.conn.evicted.load(Ordering::Acquire) {
            return Poll::Ready(Err(timed_out("made way for a newer connection")));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.tcp).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                // The first bytes of a request start its header clock.
                if buf.filled().len() > before && this.conn.phase.load(Ordering::Acquire) == IDLE {
                    this.conn.set(HEADERS);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                *this.conn.waker.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(cx.waker().clone());
                let Some((deadline, why)) = this.deadline() else {
                    return Poll::Pending;
                };
                if this.timer.deadline() != deadline {
                    this.timer.as_mut().reset(deadline);
                }
                match this.timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(timed_out(why))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl AsyncWrite for GuardedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.tcp).poll_write(cx, data);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0)
            && self.conn.phase.load(Ordering::Acquire) == IDLE
        {
            // A response still being written keeps the connection from idling out.
            self.conn.set(IDLE);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0)
            && self.conn.phase.load(Ordering::Acquire) == IDLE
        {
            self.conn.set(IDLE);
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}
