//! Webhooks: each event a webhook asked for is POSTed as its envelope — the same JSON as the
//! journal line and `--output json`. With a `secret`, requests are signed:
//!
//! ```text
//! X-Cloud-Timestamp: 1760020200                      (Unix seconds, when it was sent)
//! X-Cloud-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
//! X-Cloud-Event: deployment_failed
//! X-Cloud-Delivery: <runId>-<sequence>              (the same on every retry)
//! ```
//!
//! A receiver recomputes the HMAC over the timestamp, a `.`, and the raw body, compares it in
//! constant time, and refuses timestamps older than a few minutes (replays).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::deliver::{AttemptError, Endpoint};
use crate::manifest::notifications::WebhookSpec;

pub const SIGNATURE_HEADER: &str = "X-Cloud-Signature";
pub const TIMESTAMP_HEADER: &str = "X-Cloud-Timestamp";
pub const EVENT_HEADER: &str = "X-Cloud-Event";
pub const DELIVERY_HEADER: &str = "X-Cloud-Delivery";

pub struct Webhook {
    endpoint: Endpoint,
    secret: Option<String>,
}

impl Webhook {
    pub fn new(spec: &WebhookSpec, client: &reqwest::Client) -> Result<Webhook, super::SetupError> {
        Ok(Webhook {
            endpoint: Endpoint::new(&spec.url, client)?,
            secret: spec.secret.as_ref().map(|s| s.resolve()).transpose()?,
        })
    }

    pub fn describe(&self) -> String {
        let signed = if self.secret.is_some() {
            "signed"
        } else {
            "unsigned"
        };
        format!("{} ({signed})", self.endpoint.shown)
    }

    /// POSTs `body` (an event envelope), signed now: a retry carries a fresh timestamp.
    pub async fn send(
        &self,
        body: &[u8],
        event_type: &str,
        delivery: &str,
    ) -> Result<(), AttemptError> {
        let mut headers = vec![
            (EVENT_HEADER, event_type.to_owned()),
            (DELIVERY_HEADER, delivery.to_owned()),
        ];
        if let Some(secret) = &self.secret {
            let timestamp = chrono::Utc::now().timestamp();
            headers.push((TIMESTAMP_HEADER, timestamp.to_string()));
            headers.push((SIGNATURE_HEADER, sign(secret.as_bytes(), timestamp, body)));
        }
        self.endpoint.post(body.to_vec(), &headers).await
    }
}

/// `sha256=<hex>`: HMAC-SHA256 with `secret` over `<timestamp>.<body>`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + digest.len() * 2);
    out.push_str("sha256=");
    for byte in digest.iter() {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_pythons_hmac() {
        // hmac.new(b"s3cret", b"1760020200.{}", hashlib.sha256).hexdigest()
        assert_eq!(
            sign(b"s3cret", 1760020200, b"{}"),
            "sha256=decf1882b3fbf0a38971d7b7ca7e5bd6191f67ec81b4ec286a8f9289a87ee9c4"
        );
    }
}
