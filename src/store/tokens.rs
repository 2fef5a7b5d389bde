//! Access tokens (see [`crate::auth`]): the store's methods.

use crate::auth::{
    hash, id_of, random_hex, same, Access, IssuedToken, NewToken, Token, TokenRequest, TokenRow,
    MAX_NAME_CHARS, MAX_TOKEN_DAYS,
};
use crate::error::{Error, Result};
use crate::rules::validate;
use crate::store::Store;

impl Store {
    /// Creates an access token and returns it with its secret, which is shown this
    /// once: the store keeps only its hash.
    ///
    /// ```
    /// use agent_backlog::{Access, Store, TokenRequest};
    /// let store = Store::open_in_memory()?;
    /// let issued = store.create_token(TokenRequest::agent("support-bot").expires_days(30))?;
    /// assert!(issued.secret.starts_with("abt_1_"));
    /// assert_eq!(issued.token.name, "support-bot-1");
    /// assert_eq!(store.authenticate(&issued.secret)?, Access::Granted(issued.token.clone()));
    /// # Ok::<(), agent_backlog::Error>(())
    /// ```
    pub fn create_token(&self, request: TokenRequest) -> Result<IssuedToken> {
        match (&request.agent_id, request.admin) {
            (Some(agent), false) => validate::agent_id(agent)?,
            (None, true) => {}
            (Some(_), true) => {
                return Err(Error::invalid(
                    "a token is for one agent (agent_id) or for an administrator (admin), not both",
                ))
            }
            (None, false) => {
                return Err(Error::invalid(
                    "say whom the token is for: an agent_id, or admin for every route",
                ))
            }
        }
        if let Some(name) = &request.name {
            validate::name("name", name, MAX_NAME_CHARS)?;
        }
        let lifetime_ms = match request.expires_days {
            Some(days) if (1..=MAX_TOKEN_DAYS).contains(&days) => {
                Some(i64::from(days) * 86_400_000)
            }
            Some(days) => {
                return Err(Error::invalid(format!(
                    "expires_days must be an integer from 1 to {MAX_TOKEN_DAYS}, got {days}"
                )))
            }
            None => None,
        };
        let bits = random_hex()?;
        let new = NewToken {
            name: request.name.as_deref(),
            agent_id: request.agent_id.as_deref(),
            admin: request.admin,
            lifetime_ms,
        };
        let row = self
            .backend
            .create_token(&new, &|id| hash(&format!("abt_{id}_{bits}")))?
            .ok_or_else(|| {
                Error::Conflict(format!(
                    "a token named {} exists already; choose another name",
                    request.name.as_deref().unwrap_or_default()
                ))
            })?;
        Ok(IssuedToken {
            secret: format!("abt_{}_{bits}", row.id),
            token: row.public(),
        })
    }

    /// Every token of the store, oldest first, without secrets.
    pub fn list_tokens(&self) -> Result<Vec<Token>> {
        Ok(self
            .backend
            .list_tokens()?
            .iter()
            .map(TokenRow::public)
            .collect())
    }

    /// Revokes the token `id`: it is refused from now on, by every server on the
    /// store. Revoking it again changes nothing; `not_found` when there is no such
    /// token.
    pub fn revoke_token(&self, id: i64) -> Result<Token> {
        match self.backend.revoke_token(id)? {
            Some(row) => Ok(row.public()),
            None => Err(Error::NotFound(format!(
                "there is no token {id}; `agent-backlog token list` shows them"
            ))),
        }
    }

    /// What `secret` proves: a token in force, an unknown secret, or a revoked or
    /// expired token. A pure read.
    pub fn authenticate(&self, secret: &str) -> Result<Access> {
        let Some(id) = id_of(secret) else {
            return Ok(Access::Unknown);
        };
        let Some(row) = self.backend.token(id)? else {
            return Ok(Access::Unknown);
        };
        if !same(&row.hash, &hash(secret)) {
            return Ok(Access::Unknown);
        }
        Ok(if row.revoked_ms.is_some() {
            Access::Revoked(row.public())
        } else if row
            .expires_ms
            .is_some_and(|at| at <= crate::backend::now_ms())
        {
            Access::Expired(row.public())
        } else {
            Access::Granted(row.public())
        })
    }
}

impl Store {
    /// Whether `token` is still in force: neither revoked nor expired since it was
    /// shown (a server checks again on a stream that stays open). A pure read.
    pub fn token_in_force(&self, token: &Token) -> Result<bool> {
        Ok(self.backend.token(token.id)?.is_some_and(|row| {
            row.revoked_ms.is_none()
                && row
                    .expires_ms
                    .is_none_or(|at| at > crate::backend::now_ms())
        }))
    }

    /// Whether `token` may make the call `op` with `request` (its inputs as the
    /// operation table takes them): an admin token may make every call; an agent's
    /// token only the calls on that agent's backlog — those that name it as their
    /// `agent_id` (and name only its tasks as dependencies), and those on a lease of
    /// one of its tasks. A call on every agent at
    /// once (no `agent_id` where one may be given) is an admin's. A pure read.
    ///
    /// ```
    /// use agent_backlog::ops::OPERATIONS;
    /// use agent_backlog::{Store, TokenRequest};
    /// let store = Store::open_in_memory()?;
    /// let token = store.create_token(TokenRequest::agent("support-bot"))?.token;
    /// let op = |name: &str| OPERATIONS.iter().find(|op| op.name == name).unwrap();
    /// let mine = serde_json::json!({"agent_id": "support-bot"});
    /// let theirs = serde_json::json!({"agent_id": "marketing-lead"});
    /// assert!(store.permits(&token, op("summary"), &mine)?);
    /// assert!(!store.permits(&token, op("summary"), &theirs)?);
    /// assert!(!store.permits(&token, op("query_tasks"), &serde_json::json!({}))?);
    /// # Ok::<(), agent_backlog::Error>(())
    /// ```
    pub fn permits(
        &self,
        token: &Token,
        op: &crate::ops::Operation,
        request: &serde_json::Value,
    ) -> Result<bool> {
        if token.admin {
            return Ok(true);
        }
        let Some(own) = token.agent_id.as_deref() else {
            return Ok(false);
        };
        if let Some(agent) = request.get("agent_id").and_then(|v| v.as_str()) {
            if agent != own {
                return Ok(false);
            }
            // A dependency names a task by ID, of any agent: an agent's token may name
            // only its own, or the answers would tell it about another's backlog.
            for task_id in dependencies_named(request) {
                if validate::task_id(task_id).is_ok() && !self.owns(own, task_id)? {
                    return Ok(false);
                }
            }
            return Ok(true);
        }
        if op.inputs.iter().any(|i| i.name == "token") {
            // A lease's token begins with its task's ID; the task must be the agent's.
            let lease = request.get("token").and_then(|v| v.as_str()).unwrap_or("");
            let task_id = lease.split('.').next().unwrap_or("");
            if validate::task_id(task_id).is_err() {
                return Ok(true); // malformed: the operation refuses it, naming the token
            }
            return self.owns(own, task_id);
        }
        // No agent named: every agent's (the cross-agent query, the whole feed, the
        // agents, pruning, reaping every agent).
        Ok(false)
    }

    /// Whether `task_id` is a task of `agent_id`'s backlog.
    fn owns(&self, agent_id: &str, task_id: &str) -> Result<bool> {
        match self.get_task(agent_id, task_id) {
            Ok(_) => Ok(true),
            Err(Error::NotFound(_)) => Ok(false),
            Err(err) => Err(err),
        }
    }
}

/// The task IDs a request names as dependencies: an edge's `depends_on`, and those of
/// a new task or of each task of a batch (their integer indices name tasks of the
/// batch itself).
fn dependencies_named(request: &serde_json::Value) -> Vec<&str> {
    fn ids(list: Option<&serde_json::Value>) -> impl Iterator<Item = &str> {
        list.and_then(|l| l.as_array())
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
    }
    let mut named: Vec<&str> = ids(request.get("task").and_then(|t| t.get("depends_on"))).collect();
    if let Some(tasks) = request.get("tasks").and_then(|t| t.as_array()) {
        for task in tasks {
            named.extend(ids(task.get("depends_on")));
        }
    }
    if let Some(edge) = request.get("depends_on").and_then(|v| v.as_str()) {
        named.push(edge);
    }
    named
}
