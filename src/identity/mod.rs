//! Callers sign in with the AWS identity they already have: a signed `sts:GetCallerIdentity`
//! (see `exchange`) is traded for short-lived gateway credentials (see `session`), mapped to a
//! team by the `[[identities]]` rules of the callers file (see `rules`).

pub mod client;
pub mod exchange;
pub mod rules;
pub mod session;

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub use exchange::{EXCHANGE_PATH, ExchangeRules, SERVER_ID_HEADER, SignedRequest};
pub use rules::IdentityRule;
pub use session::{Issued, SessionKey, Sessions};

/// `[identity]` in waguard.toml.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    #[serde(default)]
    pub enabled: bool,
    /// What callers put in the signed `x-waguard-server-id` header, e.g. the gateway's public
    /// host name. Required when enabled.
    #[serde(default)]
    pub server_id: Option<String>,
    /// Files of at least 32 random bytes each; the first signs sessions, all verify.
    #[serde(default)]
    pub key_files: Vec<PathBuf>,
    /// How long issued credentials last, in seconds (at most 43200).
    #[serde(default = "default_session_duration", with = "secs")]
    pub session_duration: Duration,
    /// The only STS endpoint accepted and called, instead of AWS's (tests, VPC endpoints).
    #[serde(default)]
    pub sts_endpoint: Option<String>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            enabled: false,
            server_id: None,
            key_files: Vec::new(),
            session_duration: default_session_duration(),
            sts_endpoint: None,
        }
    }
}

fn default_session_duration() -> Duration {
    Duration::from_secs(3600)
}

/// Longest session AWS itself allows for role sessions.
pub const MAX_SESSION: Duration = Duration::from_secs(43_200);
/// Shortest session issued.
pub const MIN_SESSION: Duration = Duration::from_secs(60);

mod secs {
    use serde::{Deserialize, Deserializer, de::Error};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Duration::try_from_secs_f64(v)
            .map_err(|_| D::Error::custom(format!("{v} is not a valid number of seconds")))
    }
}

/// Settings the credential exchange runs with.
pub struct Identity {
    pub sessions: Sessions,
    pub rules: ExchangeRules,
    /// Bounds the STS calls in flight: each exchange costs one.
    pub sts_calls: tokio::sync::Semaphore,
}

/// STS calls the gateway makes at once at most; further exchanges wait their turn.
pub const MAX_STS_CALLS: usize = 8;
/// How long an exchange waits for one of those turns before it is answered 503.
pub const STS_TURN_WAIT: Duration = Duration::from_secs(1);
/// Time allowed for STS to answer.
pub const STS_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum IdentitySetupError {
    #[error("identity.key_files: {0}")]
    Key(#[from] session::KeyError),
}

impl Identity {
    /// Loads the keys of an enabled, checked `[identity]`.
    pub fn load(config: &IdentityConfig) -> Result<Identity, IdentitySetupError> {
        let keys = config
            .key_files
            .iter()
            .map(|p| SessionKey::load(p))
            .collect::<Result<Vec<_>, _>>()?;
        let sessions = Sessions::new(keys, config.session_duration).ok_or(
            IdentitySetupError::Key(session::KeyError::TooShort {
                path: "(none)".into(),
                len: 0,
            }),
        )?;
        Ok(Identity {
            sessions,
            rules: ExchangeRules {
                server_id: config.server_id.clone().unwrap_or_default(),
                sts_endpoint: config.sts_endpoint.as_deref().and_then(|e| e.parse().ok()),
            },
            sts_calls: tokio::sync::Semaphore::new(MAX_STS_CALLS),
        })
    }
}
