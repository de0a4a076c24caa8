//! Helpers for the server tests: start the real binary with a server, find its address in
//! what it prints, and talk to it over real HTTP and WebSocket connections.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

pub const SECRET: &str = "test-secret-0123456789abcdef-0123456789";

/// A `cloud` process serving on a port it chose.
pub struct Served {
    pub child: Child,
    /// `127.0.0.1:PORT`
    pub host: String,
    /// The token it printed, when it printed one.
    pub token: Option<String>,
    /// Its stdout, line by line, once it ends (deploys with `--output json`: the events).
    pub stdout: Option<mpsc::Receiver<String>>,
    /// Its stderr lines after the one that said where it serves.
    pub stderr: mpsc::Receiver<String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cloud --root ROOT ARGS` (which must include `--serve 127.0.0.1:0` or
/// `serve --addr 127.0.0.1:0`) and waits for its "Serving" line.
pub fn start(root: &Path, args: &[&str], envs: &[(&str, &str)]) -> Served {
    let mut cmd = super::common::cloud_process();
    cmd.arg("--root").arg(root).args(args);
    for var in ["CLOUD_JWT_SECRET", "CLOUD_TOKEN"] {
        cmd.env_remove(var);
    }
    cmd.env("CLOUD_SIMULATE_SPEED", "1");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[cloud] {line}");
            let _ = tx.send(line);
        }
    });
    let stdout = child.stdout.take().unwrap();
    let (out_tx, out_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = out_tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`cloud {}` never said where it serves", args.join(" "));
        };
        if let Some(at) = line.find("http://") {
            let url = line[at..].split_whitespace().next().unwrap().to_owned();
            let rest = &url["http://".len()..];
            let host = rest.split('/').next().unwrap().to_owned();
            let token = url
                .split("token=")
                .nth(1)
                .map(|t| t.split('&').next().unwrap().to_owned());
            return Served {
                child,
                host,
                token,
                stdout: Some(out_rx),
                stderr: rx,
            };
        }
    }
}

impl Served {
    /// Waits for the process to end; its exit code and its stdout lines.
    pub fn wait(&mut self) -> (i32, Vec<String>) {
        let code = self.child.wait().unwrap().code().unwrap_or(-1);
        let lines = self
            .stdout
            .take()
            .map(|rx| rx.iter().collect())
            .unwrap_or_default();
        (code, lines)
    }

    /// Waits (30 s at most) for a stderr line containing `text`; that line.
    pub fn stderr_line(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => continue,
                Err(_) => panic!("cloud never said `{text}` on stderr"),
            }
        }
    }

    /// Sends SIGINT, as Ctrl-C does.
    pub fn interrupt(&self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        http_get(&self.host, path, token)
    }

    pub fn ws_url(&self, token: Option<&str>) -> String {
        match token {
            Some(t) => format!("ws://{}/ws?token={t}", self.host),
            None => format!("ws://{}/ws", self.host),
        }
    }
}

/// A real HTTP/1.1 GET; the status and the JSON body (`Value::Null` when not JSON).
pub fn http_get(host: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let (status, body) = http_get_text(host, path, token);
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

pub fn http_get_text(host: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let (status, _, body) = http_get_full(host, path, token);
    (status, body)
}

/// A real HTTP/1.1 GET: the status, the head (status line and headers) and the body.
pub fn http_get_full(host: &str, path: &str, token: Option<&str>) -> (u16, String, String) {
    let mut stream = TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_owned(), body.to_owned())
}

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn connect(url: &str) -> Socket {
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// Connects with a small receive buffer, so that the server feels a client that stops reading
/// at once: a loopback socket's own buffer grows to megabytes and would take in most of a run
/// first (and how much depends on the machine's load).
pub async fn connect_stalling(url: &str) -> Socket {
    let addr = url["ws://".len()..].split('/').next().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr.parse().unwrap()).await.unwrap();
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    tokio_tungstenite::client_async(url, stream)
        .await
        .unwrap()
        .0
}

pub async fn send(ws: &mut Socket, value: Value) {
    ws.send(Message::text(value.to_string())).await.unwrap();
}

/// The next JSON text message (pings and pongs skipped); `None` once the connection ends.
/// `cloud deploy ID -e dev --output json --serve 127.0.0.1:0`, serving on a port it chose.
pub fn serve_deploy(root: &Path, id: &str, envs: &[(&str, &str)]) -> Served {
    start(
        root,
        &[
            "deploy",
            id,
            "-e",
            "dev",
            "--output",
            "json",
            "--serve",
            "127.0.0.1:0",
        ],
        envs,
    )
}

/// Sends the seed's `subscribe` message for `channel` (`deployments/<ID>-<env>`).
pub async fn subscribe(ws: &mut Socket, channel: &str) {
    send(ws, json!({"action": "subscribe", "channel": channel})).await;
}

/// `cloud --root ROOT deploy ID -e dev --output json` on a blocking thread: how it ended.
pub fn deploy_in_background(
    root: &Path,
    id: &str,
) -> tokio::task::JoinHandle<std::process::ExitStatus> {
    let (root, id) = (root.to_path_buf(), id.to_owned());
    tokio::task::spawn_blocking(move || {
        super::common::cloud()
            .arg("--root")
            .arg(root)
            .args(["deploy", &id, "-e", "dev", "--output", "json"])
            .output()
            .unwrap()
            .status
    })
}

pub async fn next(ws: &mut Socket) -> Option<Value> {
    let wait = Duration::from_secs(30);
    loop {
        let message = tokio::time::timeout(wait, ws.next())
            .await
            .expect("no message from the server within 30 s");
        match message? {
            Ok(Message::Text(text)) => return Some(serde_json::from_str(&text).unwrap()),
            Ok(Message::Close(frame)) => {
                eprintln!("closed: {frame:?}");
                return None;
            }
            Ok(_) => continue,
            Err(e) => {
                eprintln!("connection ended: {e}");
                return None;
            }
        }
    }
}

/// Reads until a message of `kind` (returning it), failing on the way at an `error`.
pub async fn next_of(ws: &mut Socket, kind: &str) -> Value {
    loop {
        let m = next(ws)
            .await
            .unwrap_or_else(|| panic!("closed before {kind}"));
        if m["type"] == kind {
            return m;
        }
    }
}

/// A token signed with [`SECRET`].
pub fn token(deployments: Option<Vec<&str>>, ttl_secs: i64) -> String {
    token_from(deployments, ttl_secs, None)
}

/// A token signed with [`SECRET`], valid from `nbf_secs` from now (when given).
pub fn token_from(deployments: Option<Vec<&str>>, ttl_secs: i64, nbf_secs: Option<i64>) -> String {
    let auth = cloud::server::auth::Auth::new(
        SECRET.as_bytes(),
        cloud::server::auth::SecretSource::Environment,
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    auth.sign(&cloud::server::auth::Claims {
        sub: "test".into(),
        iat: now as u64,
        exp: (now + ttl_secs).max(0) as u64,
        nbf: nbf_secs.map(|s| (now + s).max(0) as u64),
        deployments: deployments.map(|d| d.into_iter().map(str::to_owned).collect()),
    })
}

/// Checks that every key of the seed's example is in `ours`, with a value of the same JSON
/// kind, recursively; `path` names where, for the message.
pub fn assert_seed_keys(seed: &Value, ours: &Value, path: &str) {
    match (seed, ours) {
        (Value::Object(seed), Value::Object(ours)) => {
            for (key, value) in seed {
                let here = format!("{path}.{key}");
                let theirs = ours.get(key).unwrap_or_else(|| {
                    panic!("{here} is missing in {}", Value::Object(ours.clone()))
                });
                assert_seed_keys(value, theirs, &here);
            }
        }
        (Value::Array(seed), Value::Array(ours)) => {
            if let (Some(first), false) = (seed.first(), ours.is_empty()) {
                for item in ours {
                    assert_seed_keys(first, item, &format!("{path}[]"));
                }
            }
        }
        (Value::Number(_), Value::Number(_))
        | (Value::String(_), Value::String(_))
        | (Value::Bool(_), Value::Bool(_))
        | (Value::Null, Value::Null) => {}
        (seed, ours) => panic!("{path}: the seed has {seed}, we have {ours}"),
    }
}

/// A command stack that waits for the file `release` in the deployment's folder (it touches
/// `ready` first), so a test can look at a run in the middle.
pub fn gated_manifest(id: &str) -> String {
    format!(
        r#"deploymentId: {id}
environments: [dev, prod]
defaults: {{ executor: simulate }}
stacks:
  network:
    resources:
      - {{ type: "aws:ec2/vpc:Vpc", name: main-vpc, seconds: 0.05 }}
      - {{ type: "aws:ec2/subnet:Subnet", name: public-subnet-0, seconds: 0.05 }}
  database-rds:
    dependencies: [network]
    executor: command
    deploy: |
      echo '::cloud::{{"resource":{{"type":"aws:rds/subnetGroup:SubnetGroup","name":"db-subnets"}},"op":"creating"}}'
      echo '::cloud::{{"resource":{{"type":"aws:rds/subnetGroup:SubnetGroup","name":"db-subnets"}},"op":"created","id":"sg-1"}}'
      echo 'Creating subnet group...'
      echo '::cloud::{{"resource":{{"type":"aws:rds/instance:Instance","name":"main-database"}},"op":"creating"}}'
      echo '::cloud::{{"progress":45,"message":"Creating RDS instance..."}}'
      {gate}
      echo '::cloud::{{"resource":{{"type":"aws:rds/instance:Instance","name":"main-database"}},"op":"created","id":"db-abc123"}}'
  storage:
    dependencies: [network]
    resources:
      - {{ type: "aws:s3/bucket:Bucket", name: logs, seconds: 0.05 }}
  api:
    dependencies: [database-rds, storage]
    resources:
      - {{ type: "aws:lambda/function:Function", name: handler, seconds: 0.05 }}
"#,
        gate = super::common::gate_script(Path::new("ready"), Path::new("release"))
    )
}
