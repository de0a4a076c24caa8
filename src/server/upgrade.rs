//! The WebSocket handshake (RFC 6455 §4.2), done here rather than by axum's
//! `WebSocketUpgrade`: the socket is then tungstenite's own, which can send one message as
//! several frames (axum's cannot). A connection's write buffer grows to the largest frame it
//! was handed and never shrinks, so a `subscribed` snapshot of a big run written whole kept
//! ~2.6 MB per client for as long as the client stayed (200 clients: 2.3x the run's memory).
//! [`Sink`] writes long texts in [`FRAGMENT`]-sized frames instead.

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use futures_util::SinkExt;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Error, Message};
use tokio_tungstenite::WebSocketStream;

/// An upgraded connection.
pub type Socket = WebSocketStream<TokioIo<Upgraded>>;
/// Its writing half.
pub type Sink = futures_util::stream::SplitSink<Socket, Message>;

/// Texts longer than this go out as a series of frames of this size.
pub const FRAGMENT: usize = 16 * 1024;

/// Why a request cannot become a WebSocket: (HTTP status, what is wrong with it).
#[derive(Debug)]
pub struct Refused(pub StatusCode, pub &'static str);

/// (The server's handler takes `Result<Upgrade, Refused>` and answers in its own JSON.)
impl axum::response::IntoResponse for Refused {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

/// A request that asks for a WebSocket, checked.
pub struct Upgrade {
    on_upgrade: OnUpgrade,
    accept: HeaderValue,
}

fn has(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case(token))
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Refused> {
        let bad = |why| Err(Refused(StatusCode::BAD_REQUEST, why));
        if parts.method != Method::GET {
            return Err(Refused(
                StatusCode::METHOD_NOT_ALLOWED,
                "a WebSocket is opened with GET",
            ));
        }
        let headers = &parts.headers;
        if !has(headers, header::CONNECTION, "upgrade") {
            return bad("the Connection header does not include `upgrade`");
        }
        if !has(headers, header::UPGRADE, "websocket") {
            return bad("the Upgrade header does not include `websocket`");
        }
        if headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .map(|v| v.as_bytes())
            != Some(b"13")
        {
            return bad("Sec-WebSocket-Version must be 13");
        }
        let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
            return bad("the Sec-WebSocket-Key header is missing");
        };
        let accept = HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
            .expect("base64 is a valid header value");
        let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
            return Err(Refused(
                StatusCode::UPGRADE_REQUIRED,
                "this connection cannot be upgraded",
            ));
        };
        Ok(Upgrade { on_upgrade, accept })
    }
}

impl Upgrade {
    /// Answers `101 Switching Protocols`, then runs `serve` on the socket.
    pub fn on_upgrade<F, Fut>(self, config: WebSocketConfig, serve: F) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            // The client went away before the switch: nothing to serve.
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            let io = TokioIo::new(upgraded);
            serve(WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await).await;
        });
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_ACCEPT, self.accept)
            .body(Body::empty())
            .expect("a valid response")
    }
}

/// Queues `message` on `sink` (like `SinkExt::feed`), a long text as [`FRAGMENT`]-sized frames.
pub async fn feed<S>(sink: &mut S, message: Message) -> Result<(), Error>
where
    S: futures_util::Sink<Message, Error = Error> + Unpin,
{
    let text = match message {
        Message::Text(text) if text.len() > FRAGMENT => text,
        other => return sink.feed(other).await,
    };
    // Frames split a message anywhere: the client checks UTF-8 once it is whole again.
    let bytes = Bytes::from(text);
    let mut start = 0;
    while start < bytes.len() {
        let end = (start + FRAGMENT).min(bytes.len());
        let data = if start == 0 {
            Data::Text
        } else {
            Data::Continue
        };
        let frame = Frame::message(
            bytes.slice(start..end),
            OpCode::Data(data),
            end == bytes.len(),
        );
        sink.feed(Message::Frame(frame)).await?;
        start = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// The frames on the wire: (FIN, opcode, payload). Server frames are not masked.
    fn frames(mut wire: &[u8]) -> Vec<(bool, u8, Vec<u8>)> {
        let mut out = Vec::new();
        while !wire.is_empty() {
            let (fin, opcode) = (wire[0] & 0x80 != 0, wire[0] & 0x0f);
            let (len, head) = match wire[1] & 0x7f {
                126 => (u16::from_be_bytes([wire[2], wire[3]]) as usize, 4),
                127 => panic!("no frame here is that long"),
                n => (n as usize, 2),
            };
            out.push((fin, opcode, wire[head..head + len].to_vec()));
            wire = &wire[head + len..];
        }
        out
    }

    async fn sent(message: Message) -> Vec<(bool, u8, Vec<u8>)> {
        let (server, mut client) = tokio::io::duplex(1 << 20);
        let mut socket = WebSocketStream::from_raw_socket(server, Role::Server, None).await;
        feed(&mut socket, message).await.unwrap();
        socket.flush().await.unwrap();
        drop(socket);
        let mut wire = Vec::new();
        client.read_to_end(&mut wire).await.unwrap();
        frames(&wire)
    }

    #[tokio::test]
    async fn a_long_text_goes_out_in_pieces_that_make_it_whole_again() {
        // Split inside a multi-byte character too: only the whole message must be UTF-8.
        let text = "é".repeat(FRAGMENT + 100);
        let frames = sent(Message::text(text.clone())).await;
        let shape: Vec<(bool, u8, usize)> =
            frames.iter().map(|(f, o, p)| (*f, *o, p.len())).collect();
        assert_eq!(
            shape,
            [(false, 1, FRAGMENT), (false, 0, FRAGMENT), (true, 0, 200)],
            "text, continuation, last continuation"
        );
        let whole: Vec<u8> = frames.into_iter().flat_map(|(_, _, p)| p).collect();
        assert_eq!(whole, text.as_bytes());
    }

    #[tokio::test]
    async fn a_short_text_is_one_frame() {
        let frames = sent(Message::text("hello")).await;
        assert_eq!(frames, [(true, 1, b"hello".to_vec())]);
    }
}
