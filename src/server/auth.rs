//! Who may see what: JWT (HS256) signed with `CLOUD_JWT_SECRET`, or with a random secret made
//! for this process when it is unset (then only the tokens this process prints are valid).
//!
//! Claims: `sub` (who), `exp` (until when, seconds since the epoch), optionally `nbf` (not
//! before) and `deployments` (the deployment IDs the token may see; absent = all). `exp` and
//! `nbf` are checked with [`LEEWAY`] of clock skew.
//!
//! Only HS256 exists here: jsonwebtoken is built without its crypto features (they bring RSA,
//! RUSTSEC-2023-0071) and given [`HS256_ONLY`], a provider on the `hmac` and `sha2` crates.

use std::io::{self, Read};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::Error;

/// The environment variable holding the shared secret.
pub const SECRET_ENV: &str = "CLOUD_JWT_SECRET";

/// The shortest secret a server on a non-loopback address accepts (shorter ones get a warning
/// elsewhere): HS256 is only as strong as its key.
pub const MIN_SECRET: usize = 32;

/// Seconds of clock skew allowed between the minting machine and this one, on `exp` and `nbf`.
pub const LEEWAY: u64 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: u64,
    #[serde(default)]
    pub iat: u64,
    /// Not valid before (seconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
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

    /// How long from now until the token expires (zero once it has, leeway included).
    pub fn remaining(&self) -> Duration {
        Duration::from_secs((self.exp + LEEWAY).saturating_sub(now()))
    }
}

/// Why a token was refused (each is a 401).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    Missing,
    Expired,
    NotYetValid,
    Invalid(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Missing => f.write_str(
                "a token is required: `Authorization: Bearer <jwt>` or `?token=<jwt>` (mint one with `cloud token`)",
            ),
            Refused::Expired => f.write_str("the token has expired (mint a new one with `cloud token`)"),
            Refused::NotYetValid => f.write_str(
                "the token is not valid yet (its `nbf` is in the future; check the clocks of the minting machine and this one)",
            ),
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
    /// The secret's length, surrounding whitespace left out.
    strength: usize,
}

/// How to make a good secret, for the messages.
const HOW_TO_SET: &str = "export CLOUD_JWT_SECRET=$(head -c 32 /dev/urandom | base64)";

impl Auth {
    pub fn new(secret: &[u8], source: SecretSource) -> Auth {
        // Before any token is signed or checked; a second call finds it installed.
        let _ = HS256_ONLY.install_default();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = LEEWAY;
        validation.validate_nbf = true;
        Auth {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            source,
            strength: secret.trim_ascii().len(),
        }
    }

    /// `CLOUD_JWT_SECRET`, when set. An empty or all-whitespace one is an error (it would sign
    /// for anyone).
    pub fn from_env() -> Result<Option<Auth>, Error> {
        let Some(secret) = std::env::var_os(SECRET_ENV) else {
            return Ok(None);
        };
        let secret = secret.as_encoded_bytes();
        if secret.trim_ascii().is_empty() {
            return Err(Error::input(format!(
                "{SECRET_ENV} is set but empty (or only whitespace)"
            ))
            .hint(format!(
                "set it to a long random string, e.g. `{HOW_TO_SET}`"
            )));
        }
        let auth = Auth::new(secret, SecretSource::Environment);
        if auth.strength < MIN_SECRET {
            eprintln!(
                "warning: {SECRET_ENV} is {} bytes long; use at least {MIN_SECRET} random bytes (a server refuses it on anything but loopback)",
                auth.strength
            );
        }
        Ok(Some(auth))
    }

    /// Why this secret must not guard a non-loopback address, if it must not: a random one
    /// (its token is printed), or one shorter than [`MIN_SECRET`].
    pub fn refuse_public(&self) -> Option<(String, String)> {
        match self.source {
            SecretSource::Random => Some((
                format!("without {SECRET_ENV}: only loopback addresses may use a random secret"),
                format!(
                    "set {SECRET_ENV} to a shared secret (then mint tokens with `cloud token`), \
                     or listen on 127.0.0.1"
                ),
            )),
            SecretSource::Environment if self.strength < MIN_SECRET => Some((
                format!(
                    "with a {}-byte {SECRET_ENV}: anything but loopback needs at least \
                     {MIN_SECRET} bytes",
                    self.strength
                ),
                format!("`{HOW_TO_SET}` (and mint tokens with it), or listen on 127.0.0.1"),
            )),
            SecretSource::Environment => None,
        }
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
            nbf: None,
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
                ErrorKind::ImmatureSignature => Refused::NotYetValid,
                ErrorKind::InvalidSignature => {
                    Refused::Invalid("its signature does not match this server's secret".into())
                }
                _ => Refused::Invalid(e.to_string()),
            }),
        }
    }
}

/// jsonwebtoken's crypto for HS256 and nothing else: any other algorithm is refused.
static HS256_ONLY: CryptoProvider = CryptoProvider {
    signer_factory: |algorithm, key| match algorithm {
        Algorithm::HS256 => Ok(Box::new(Hs256(hmac(key.as_bytes())?))),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    },
    verifier_factory: |algorithm, key| match algorithm {
        Algorithm::HS256 => Ok(Box::new(Hs256(hmac(key.try_get_as_bytes()?)?))),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    },
    // JWKs (public keys) are never used here.
    key_utils: KeyUtils::new_unimplemented(),
};

fn hmac(key: &[u8]) -> jsonwebtoken::errors::Result<Hmac<Sha256>> {
    <Hmac<Sha256> as KeyInit>::new_from_slice(key).map_err(|_| ErrorKind::InvalidKeyFormat.into())
}

/// Signs and checks (in constant time) with one key.
struct Hs256(Hmac<Sha256>);

impl signature::Signer<Vec<u8>> for Hs256 {
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, signature::Error> {
        Ok(self
            .0
            .clone()
            .chain_update(message)
            .finalize()
            .into_bytes()
            .to_vec())
    }
}

impl signature::Verifier<Vec<u8>> for Hs256 {
    fn verify(&self, message: &[u8], tag: &Vec<u8>) -> Result<(), signature::Error> {
        self.0
            .clone()
            .chain_update(message)
            .verify_slice(tag)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtSigner for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `90s`, `30m`, `1h`, `2d`, or plain seconds.
pub fn parse_ttl(text: &str) -> Result<Duration, BadTtl> {
    let text = text.trim();
    let bad = |why| BadTtl {
        text: text.to_owned(),
        why,
    };
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number.parse().map_err(|_| bad(TtlFault::NoNumber))?;
    let seconds = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(bad(TtlFault::Unit)),
    };
    if seconds == 0 || seconds > 366 * 86_400 {
        return Err(bad(TtlFault::Range));
    }
    Ok(Duration::from_secs(seconds))
}

/// A token lifetime that is not one (bad input; the command names the flag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadTtl {
    pub text: String,
    pub why: TtlFault,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlFault {
    NoNumber,
    Unit,
    Range,
}

impl std::fmt::Display for BadTtl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = &self.text;
        match self.why {
            TtlFault::NoNumber => write!(f, "`{text}` is not a duration (e.g. 90s, 30m, 1h, 7d)"),
            TtlFault::Unit => write!(f, "`{text}`: the unit must be s, m, h or d (e.g. 1h)"),
            TtlFault::Range => write!(f, "`{text}`: a token lives from 1s to 366d"),
        }
    }
}

impl std::error::Error for BadTtl {}

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
            nbf: None,
            deployments: None,
        });
        assert_eq!(auth.verify(Some(&expired)), Err(Refused::Expired));
    }

    #[test]
    fn clock_skew_is_a_second_and_nbf_is_checked() {
        let auth = Auth::new(
            b"0123456789abcdef0123456789abcdef",
            SecretSource::Environment,
        );
        let claims = |exp: u64, nbf: Option<u64>| Claims {
            sub: "ana".into(),
            exp,
            iat: now() - 60,
            nbf,
            deployments: None,
        };
        let five_seconds_ago = auth.sign(&claims(now() - 5, None));
        assert_eq!(auth.verify(Some(&five_seconds_ago)), Err(Refused::Expired));
        let not_yet = auth.sign(&claims(now() + 600, Some(now() + 30)));
        assert_eq!(auth.verify(Some(&not_yet)), Err(Refused::NotYetValid));
        let started = auth.sign(&claims(now() + 600, Some(now() - 1)));
        assert!(auth.verify(Some(&started)).is_ok());
    }

    #[test]
    fn short_or_random_secrets_may_not_guard_a_public_address() {
        let strong = Auth::new(&[b'k'; MIN_SECRET], SecretSource::Environment);
        assert_eq!(strong.refuse_public(), None);
        let padded = Auth::new(
            b"   short, with spaces around it    ",
            SecretSource::Environment,
        );
        assert!(padded.refuse_public().unwrap().0.contains("28-byte"));
        assert!(Auth::random().unwrap().refuse_public().is_some());
    }

    #[test]
    fn ttls() {
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("7d"), Ok(Duration::from_secs(7 * 86_400)));
        let fault = |text| parse_ttl(text).map_err(|e| e.why);
        assert_eq!(fault("1w"), Err(TtlFault::Unit));
        assert_eq!(fault("0s"), Err(TtlFault::Range));
        assert_eq!(fault("h"), Err(TtlFault::NoNumber));
        assert_eq!(
            parse_ttl("2y").unwrap_err().to_string(),
            "`2y`: the unit must be s, m, h or d (e.g. 1h)"
        );
    }
}
