//! Who may see what: JWT (HS256) signed with `CLOUD_JWT_SECRET`, or with a random secret made
//! for this process when it is unset (then only the tokens this process prints are valid).
//!
//! Claims: `sub` (who), `exp` (until when, seconds since the epoch), and optionally
//! `deployments` (the deployment IDs the token may see; absent = all).

use std::io::{self, Read};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The environment variable holding the shared secret.
pub const SECRET_ENV: &str = "CLOUD_JWT_SECRET";

/// Secrets shorter than this get a warning: HS256 is only as strong as its key.
const SHORT_SECRET: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: u64,
    #[serde(default)]
    pub iat: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployments: Option<Vec<String>>,
}

impl Claims {
    /// May this token see `deployment`?
    pub fn allows(&self, deployment: &str) -> bool {
        self.deployments
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|id| id == deployment))
    }
}

/// Why a token was refused (each is a 401).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    Missing,
    Expired,
    Invalid(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Missing => f.write_str(
                "a token is required: `Authorization: Bearer <jwt>` or `?token=<jwt>` (mint one with `cloud token`)",
            ),
            Refused::Expired => f.write_str("the token has expired (mint a new one with `cloud token`)"),
            Refused::Invalid(why) => write!(f, "the token is not valid here: {why}"),
        }
    }
}

/// Where the secret came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    /// `CLOUD_JWT_SECRET`: tokens minted elsewhere with it are valid.
    Environment,
    /// Made up for this process: only the tokens it prints are valid.
    Random,
}

/// Mints and checks tokens with one secret.
#[derive(Clone)]
pub struct Auth {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub source: SecretSource,
}

impl Auth {
    pub fn new(secret: &[u8], source: SecretSource) -> Auth {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 5;
        Auth {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            source,
        }
    }

    /// `CLOUD_JWT_SECRET`, when set. An empty one is an error (it would sign for anyone).
    pub fn from_env() -> Result<Option<Auth>, Error> {
        let Some(secret) = std::env::var_os(SECRET_ENV) else {
            return Ok(None);
        };
        let secret = secret.as_encoded_bytes();
        if secret.is_empty() {
            return Err(
                Error::input(format!("{SECRET_ENV} is set but empty")).hint(format!(
                    "set it to a long random string, e.g. `export {SECRET_ENV}=$(head -c 32 /dev/urandom | base64)`"
                )),
            );
        }
        if secret.len() < SHORT_SECRET {
            eprintln!(
                "warning: {SECRET_ENV} is {} bytes long; use at least {SHORT_SECRET} random bytes",
                secret.len()
            );
        }
        Ok(Some(Auth::new(secret, SecretSource::Environment)))
    }

    /// A secret of 32 random bytes, for this process only.
    pub fn random() -> io::Result<Auth> {
        let mut secret = [0u8; 32];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut secret)?;
        Ok(Auth::new(&secret, SecretSource::Random))
    }

    /// `CLOUD_JWT_SECRET`, or a random secret when it is unset.
    pub fn from_env_or_random() -> Result<Auth, Error> {
        match Auth::from_env()? {
            Some(auth) => Ok(auth),
            // Bad input, as before (exit 2): this machine has no /dev/urandom to read.
            None => Auth::random().map_err(|e| Error::input(format!("cannot make a secret: {e}"))),
        }
    }

    /// A token for `sub`, valid for `ttl`, limited to `deployments` when given.
    pub fn mint(&self, sub: &str, deployments: Option<Vec<String>>, ttl: Duration) -> String {
        let now = now();
        self.sign(&Claims {
            sub: sub.to_owned(),
            iat: now,
            exp: now.saturating_add(ttl.as_secs()),
            deployments,
        })
    }

    /// Signs any claims (tests make expired tokens with it).
    pub fn sign(&self, claims: &Claims) -> String {
        // HMAC signing of plain claims cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .unwrap_or_default()
    }

    pub fn verify(&self, token: Option<&str>) -> Result<Claims, Refused> {
        let token = token.map(str::trim).filter(|t| !t.is_empty());
        let Some(token) = token else {
            return Err(Refused::Missing);
        };
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation) {
            Ok(data) => Ok(data.claims),
            Err(e) => Err(match e.kind() {
                ErrorKind::ExpiredSignature => Refused::Expired,
                ErrorKind::InvalidSignature => {
                    Refused::Invalid("its signature does not match this server's secret".into())
                }
                _ => Refused::Invalid(e.to_string()),
            }),
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `90s`, `30m`, `1h`, `2d`, or plain seconds.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 90s, 30m, 1h, 7d)"))?;
    let seconds = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(format!("`{text}`: the unit must be s, m, h or d (e.g. 1h)")),
    };
    if seconds == 0 || seconds > 366 * 86_400 {
        return Err(format!("`{text}`: a token lives from 1s to 366d"));
    }
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_verify_and_carry_their_scope() {
        let auth = Auth::new(
            b"0123456789abcdef0123456789abcdef",
            SecretSource::Environment,
        );
        let token = auth.mint("ana", Some(vec!["D1".into()]), Duration::from_secs(60));
        let claims = auth.verify(Some(&token)).unwrap();
        assert_eq!(claims.sub, "ana");
        assert!(claims.allows("D1") && !claims.allows("D2"));
        let other = Auth::new(
            b"another secret, another server!!",
            SecretSource::Environment,
        );
        assert!(matches!(
            other.verify(Some(&token)),
            Err(Refused::Invalid(_))
        ));
        assert_eq!(auth.verify(None), Err(Refused::Missing));
        let expired = auth.sign(&Claims {
            sub: "ana".into(),
            exp: now() - 120,
            iat: now() - 180,
            deployments: None,
        });
        assert_eq!(auth.verify(Some(&expired)), Err(Refused::Expired));
    }

    #[test]
    fn ttls() {
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_ttl("1w").is_err());
        assert!(parse_ttl("0s").is_err());
        assert!(parse_ttl("h").is_err());
    }
}
