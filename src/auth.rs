//! Access tokens: who may use which backlog through the server (`serve --auth`).
//!
//! A token is for one agent — it may use that agent's backlog and nothing else — or
//! for an administrator, who may use everything. The store keeps each token's name,
//! whom it is for, when it was created, when it expires and whether it was revoked,
//! and only a SHA-256 hash of its secret: the secret is shown once, when the token is
//! created, and cannot be read back. The secret is `abt_{id}_{64 hex digits}` — 256
//! random bits after the token's ID, so that checking one is a lookup by ID and a
//! comparison of two hashes in constant time, never a search that a guess could time.
//!
//! Tokens live in the store, so one `agent-backlog token create` serves every server
//! on the same database.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::rules::lease::format_ms;

/// The longest a token may be made to last, in days (ten years).
pub const MAX_TOKEN_DAYS: u32 = 3650;

/// The longest token name, in characters.
pub(crate) const MAX_NAME_CHARS: usize = 64;

/// What `token create` asks for: whom the token is for, its name, and its lifetime.
///
/// ```
/// use agent_backlog::TokenRequest;
/// let request = TokenRequest::agent("support-bot").name("support-laptop").expires_days(90);
/// assert_eq!(request.agent_id.as_deref(), Some("support-bot"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenRequest {
    /// The agent whose backlog the token may use; `None` for an admin token.
    pub agent_id: Option<String>,
    /// Whether the token may use every route (then `agent_id` is `None`).
    pub admin: bool,
    /// 1 to 64 characters of the agent_id alphabet, unique among the store's tokens;
    /// recorded as the actor of the writes made with the token. Default: the agent
    /// (or `admin`) and the token's ID, e.g. `support-bot-3`.
    pub name: Option<String>,
    /// Days until the token expires, 1 to 3650; `None`: it never expires.
    pub expires_days: Option<u32>,
}

impl TokenRequest {
    /// A token for the backlog of `agent_id`.
    pub fn agent(agent_id: impl Into<String>) -> Self {
        TokenRequest {
            agent_id: Some(agent_id.into()),
            ..TokenRequest::default()
        }
    }

    /// A token for every route.
    pub fn admin() -> Self {
        TokenRequest {
            admin: true,
            ..TokenRequest::default()
        }
    }

    /// Names the token.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Makes the token expire after `days` days.
    pub fn expires_days(mut self, days: u32) -> Self {
        self.expires_days = Some(days);
        self
    }
}

/// A token as the store keeps it (never with its secret), keys in this order:
/// `{"id", "name", "agent_id", "admin", "created", "expires", "revoked"}`; times are
/// RFC 3339 UTC with milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Token {
    /// The token's number in the store.
    pub id: i64,
    /// Its name: the actor of the writes made with it.
    pub name: String,
    /// The agent whose backlog it may use; `None` for an admin token.
    pub agent_id: Option<String>,
    /// Whether it may use every route.
    pub admin: bool,
    /// When it was created.
    pub created: String,
    /// When it stops being accepted, if ever.
    pub expires: Option<String>,
    /// When it was revoked, if it was.
    pub revoked: Option<String>,
}

impl Token {
    /// Whether the token may act on the backlog of `agent_id` — `None` meaning every
    /// agent's at once (the cross-agent query, the agents, the whole feed), which only
    /// an admin token may.
    ///
    /// ```
    /// # use agent_backlog::{Store, TokenRequest};
    /// # let store = Store::open_in_memory()?;
    /// let issued = store.create_token(TokenRequest::agent("support-bot"))?;
    /// assert!(issued.token.may_use(Some("support-bot")));
    /// assert!(!issued.token.may_use(Some("marketing-lead")));
    /// assert!(!issued.token.may_use(None));
    /// # Ok::<(), agent_backlog::Error>(())
    /// ```
    pub fn may_use(&self, agent_id: Option<&str>) -> bool {
        self.admin || (agent_id.is_some() && agent_id == self.agent_id.as_deref())
    }
}

/// A token just created, with its secret — the only time the secret is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The token as the store keeps it.
    pub token: Token,
    /// What a client sends (`Authorization: Bearer <secret>`).
    pub secret: String,
}

/// What a presented secret proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// A token in force.
    Granted(Token),
    /// No token has this secret (or it is not a token's secret at all).
    Unknown,
    /// The token was revoked.
    Revoked(Token),
    /// The token expired.
    Expired(Token),
}

/// A token as a backend stores it: times in milliseconds, and the secret's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenRow {
    pub id: i64,
    pub name: String,
    pub agent_id: Option<String>,
    pub admin: bool,
    pub created_ms: i64,
    pub expires_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
    pub hash: [u8; 32],
}

impl TokenRow {
    pub(crate) fn public(&self) -> Token {
        Token {
            id: self.id,
            name: self.name.clone(),
            agent_id: self.agent_id.clone(),
            admin: self.admin,
            created: format_ms(self.created_ms),
            expires: self.expires_ms.map(format_ms),
            revoked: self.revoked_ms.map(format_ms),
        }
    }
}

/// The checked form of a [`TokenRequest`], for the backend.
pub(crate) struct NewToken<'a> {
    pub name: Option<&'a str>,
    pub agent_id: Option<&'a str>,
    pub admin: bool,
    /// How long after its creation it expires, in milliseconds.
    pub lifetime_ms: Option<i64>,
}

/// The name a token gets when none is given.
pub(crate) fn default_name(agent_id: Option<&str>, id: i64) -> String {
    format!("{}-{id}", agent_id.unwrap_or("admin"))
}

/// The SHA-256 of a secret.
pub(crate) fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Equality of two hashes in time that does not depend on where they differ.
pub(crate) fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 256 random bits as 64 hex digits.
pub(crate) fn random_hex() -> Result<String> {
    let mut bits = [0u8; 32];
    getrandom::fill(&mut bits).map_err(|e| {
        Error::storage(format!(
            "the system's random number source failed, so no token could be made ({e}); retry"
        ))
    })?;
    Ok(bits.iter().map(|b| format!("{b:02x}")).collect())
}

/// The ID a secret names, if it has a token's form.
pub(crate) fn id_of(secret: &str) -> Option<i64> {
    let rest = secret.strip_prefix("abt_")?;
    let (id, bits) = rest.split_once('_')?;
    let ok = bits.len() == 64 && bits.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| id.parse::<i64>().ok())
        .flatten()
        .filter(|id| *id > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_well_formed_secret_names_a_token() {
        let bits = "0".repeat(64);
        assert_eq!(id_of(&format!("abt_12_{bits}")), Some(12));
        assert_eq!(id_of(&format!("abt_0_{bits}")), None);
        assert_eq!(id_of(&format!("abt_x_{bits}")), None);
        assert_eq!(id_of(&format!("abt_12_{}", &bits[1..])), None);
        assert_eq!(id_of(&format!("abc_12_{bits}")), None);
        assert_eq!(id_of(""), None);
    }

    #[test]
    fn hashes_compare_equal_only_when_equal() {
        let a = hash("abt_1_x");
        let mut b = a;
        assert!(same(&a, &b));
        b[31] ^= 1;
        assert!(!same(&a, &b));
    }
}
