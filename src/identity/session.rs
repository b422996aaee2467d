//! Short-lived gateway credentials that any replica holding the same key can verify without
//! shared state.
//!
//! - access key id: `ASIA` + 16 random characters of A-Z and 2-7;
//! - session token: `base64url(payload) "." base64url(HMAC-SHA256(key, "waguard-session-token\n" || base64url(payload)))`,
//!   the payload a JSON object with the access key id, principal (the session ARN), team,
//!   attributes, issue and expiry times. Readable by its holder, unforgeable without the key;
//! - secret access key: `base64url(HMAC-SHA256(key, "waguard-session-secret\n" || access key id))`,
//!   so a replica derives it from the key and the access key id.
//!
//! The first key signs; every key verifies (rotation: add the new key first, remove the old one
//! once every session it signed has expired).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::auth::{Caller, Secret};
use crate::error::GatewayError;

/// Bytes a key file must hold at least.
pub const MIN_KEY_BYTES: usize = 32;
const TOKEN_CONTEXT: &[u8] = b"waguard-session-token\n";
const SECRET_CONTEXT: &[u8] = b"waguard-session-secret\n";
/// Session tokens longer than this are refused before any work (AWS's own are ~1-2 KB).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path}: holds {len} bytes; a session key needs at least {MIN_KEY_BYTES} random bytes (e.g. head -c 32 /dev/urandom)"
    )]
    TooShort { path: String, len: usize },
}

/// A key that signs and verifies sessions. Never printed.
pub struct SessionKey(Vec<u8>);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

impl SessionKey {
    pub fn from_bytes(bytes: Vec<u8>) -> Option<SessionKey> {
        (bytes.len() >= MIN_KEY_BYTES).then_some(SessionKey(bytes))
    }

    pub fn load(path: &Path) -> Result<SessionKey, KeyError> {
        let display = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| KeyError::Read {
            path: display.clone(),
            source,
        })?;
        let len = bytes.len();
        SessionKey::from_bytes(bytes).ok_or(KeyError::TooShort { path: display, len })
    }

    fn mac(&self, context: &[u8], data: &[u8]) -> [u8; 32] {
        // HMAC accepts keys of any length: this cannot fail.
        let mut out = [0u8; 32];
        if let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.0) {
            mac.update(context);
            mac.update(data);
            out.copy_from_slice(&mac.finalize().into_bytes());
        }
        out
    }
}

/// What a session token says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionClaims {
    pub v: u8,
    pub akid: String,
    /// The session ARN STS answered with.
    pub principal: String,
    pub team: String,
    pub attributes: BTreeMap<String, String>,
    /// Issued and expires, Unix seconds.
    pub iat: u64,
    pub exp: u64,
}

/// Credentials handed to a caller.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: String,
    pub expires: SystemTime,
}

/// Signs and verifies sessions with the configured keys.
#[derive(Debug)]
pub struct Sessions {
    keys: Vec<SessionKey>,
    duration: Duration,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn random_access_key_id() -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bytes = [0u8; 16];
    // aws-lc's RNG; on failure fall back to v4 UUID randomness (also OS-seeded).
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        bytes.copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    let mut id = String::from("ASIA");
    id.extend(bytes.iter().map(|b| ALPHABET[(b & 31) as usize] as char));
    id
}

impl Sessions {
    /// `keys` must not be empty: the first signs.
    pub fn new(keys: Vec<SessionKey>, duration: Duration) -> Option<Sessions> {
        (!keys.is_empty()).then_some(Sessions { keys, duration })
    }

    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// New credentials for `principal` of `team`, valid from `now` for the session duration.
    pub fn issue(
        &self,
        principal: &str,
        team: &str,
        attributes: &BTreeMap<String, String>,
        now: SystemTime,
    ) -> Result<Issued, GatewayError> {
        let key = self
            .keys
            .first()
            .ok_or_else(|| GatewayError::Internal("no session key".into()))?;
        let access_key_id = random_access_key_id();
        // Whole seconds, as AWS writes credential expiry times.
        let expires = UNIX_EPOCH + Duration::from_secs(unix(now + self.duration));
        let claims = SessionClaims {
            v: 1,
            akid: access_key_id.clone(),
            principal: principal.to_string(),
            team: team.to_string(),
            attributes: attributes.clone(),
            iat: unix(now),
            exp: unix(expires),
        };
        let payload = serde_json::to_vec(&claims)
            .map_err(|e| GatewayError::Internal(format!("session claims: {e}")))?;
        let payload = URL_SAFE_NO_PAD.encode(payload);
        let mac = URL_SAFE_NO_PAD.encode(key.mac(TOKEN_CONTEXT, payload.as_bytes()));
        let secret = URL_SAFE_NO_PAD.encode(key.mac(SECRET_CONTEXT, access_key_id.as_bytes()));
        Ok(Issued {
            access_key_id,
            secret_access_key: Secret::new(secret),
            session_token: format!("{payload}.{mac}"),
            expires,
        })
    }

    /// The caller a request signed with `access_key_id` and `token` stands for, with the
    /// secret to check its signature against. A token no configured key signed, or signed for
    /// another access key, is `UnrecognizedClientException`; an expired one
    /// `ExpiredTokenException`.
    pub fn caller(
        &self,
        access_key_id: &str,
        token: &str,
        now: SystemTime,
    ) -> Result<Caller, GatewayError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(GatewayError::UnknownAccessKey);
        }
        let (payload, mac) = token
            .split_once('.')
            .ok_or(GatewayError::UnknownAccessKey)?;
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| GatewayError::UnknownAccessKey)?;
        let key = self
            .keys
            .iter()
            .find(|k| bool::from(k.mac(TOKEN_CONTEXT, payload.as_bytes()).ct_eq(&mac[..])))
            .ok_or(GatewayError::UnknownAccessKey)?;
        let claims: SessionClaims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok())
            .ok_or(GatewayError::UnknownAccessKey)?;
        if claims.v != 1 || claims.akid != access_key_id {
            return Err(GatewayError::UnknownAccessKey);
        }
        if unix(now) >= claims.exp {
            return Err(GatewayError::ExpiredToken);
        }
        let secret = URL_SAFE_NO_PAD.encode(key.mac(SECRET_CONTEXT, access_key_id.as_bytes()));
        Ok(Caller {
            access_key_id: claims.akid,
            secret_access_key: Secret::new(secret),
            principal: claims.principal,
            team: claims.team,
            attributes: claims.attributes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> SessionKey {
        SessionKey::from_bytes(vec![b; 32]).unwrap()
    }

    fn attrs() -> BTreeMap<String, String> {
        BTreeMap::from([("cost_center".to_string(), "cc-1".to_string())])
    }

    #[test]
    fn a_session_verifies_on_any_replica_with_the_key_and_derives_the_same_secret() {
        let issuer = Sessions::new(vec![key(1)], Duration::from_secs(3600)).unwrap();
        let now = SystemTime::now();
        let arn = "arn:aws:sts::111122223333:assumed-role/Dev/alice";
        let issued = issuer.issue(arn, "payments", &attrs(), now).unwrap();
        assert!(issued.access_key_id.starts_with("ASIA"));
        assert_eq!(issued.access_key_id.len(), 20);
        // Another replica: a rotated key list with the same key second.
        let replica = Sessions::new(vec![key(2), key(1)], Duration::from_secs(60)).unwrap();
        let caller = replica
            .caller(&issued.access_key_id, &issued.session_token, now)
            .unwrap();
        assert_eq!(caller.principal, arn);
        assert_eq!(caller.team, "payments");
        assert_eq!(caller.attributes, attrs());
        assert_eq!(
            caller.secret_access_key.expose(),
            issued.secret_access_key.expose()
        );
    }

    #[test]
    fn expired_forged_altered_and_borrowed_tokens_are_refused() {
        let issuer = Sessions::new(vec![key(1)], Duration::from_secs(900)).unwrap();
        let now = SystemTime::now();
        let issued = issuer
            .issue(
                "arn:aws:iam::111122223333:user/bob",
                "platform",
                &attrs(),
                now,
            )
            .unwrap();
        let later = now + Duration::from_secs(901);
        assert!(matches!(
            issuer.caller(&issued.access_key_id, &issued.session_token, later),
            Err(GatewayError::ExpiredToken)
        ));
        // Signed by a key this gateway does not have.
        let stranger = Sessions::new(vec![key(9)], Duration::from_secs(900)).unwrap();
        let forged = stranger
            .issue(
                "arn:aws:iam::111122223333:user/bob",
                "security",
                &attrs(),
                now,
            )
            .unwrap();
        assert!(matches!(
            issuer.caller(&forged.access_key_id, &forged.session_token, now),
            Err(GatewayError::UnknownAccessKey)
        ));
        // The team changed in the payload, the MAC kept.
        let (payload, mac) = issued.session_token.split_once('.').unwrap();
        let mut claims: SessionClaims =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        claims.team = "security".into();
        let altered = format!(
            "{}.{mac}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
        );
        assert!(matches!(
            issuer.caller(&issued.access_key_id, &altered, now),
            Err(GatewayError::UnknownAccessKey)
        ));
        // A valid token presented with another access key id.
        assert!(matches!(
            issuer.caller("ASIAAAAAAAAAAAAAAAAA", &issued.session_token, now),
            Err(GatewayError::UnknownAccessKey)
        ));
        for junk in ["", ".", "abc", "a.b.c", &"x".repeat(MAX_TOKEN_BYTES + 1)] {
            assert!(issuer.caller(&issued.access_key_id, junk, now).is_err());
        }
    }

    #[test]
    fn short_keys_are_refused_and_never_printed() {
        assert!(SessionKey::from_bytes(vec![7; 31]).is_none());
        let k = key(0x41);
        assert!(!format!("{k:?}").contains("AAAA"));
    }
}
