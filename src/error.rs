//! The one error type of the library, with the stable codes of the contract.

use std::fmt;

/// The result type of every fallible operation in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure the library reports.
///
/// Each variant maps one-to-one onto a stable code (see [`Error::code`]) that is
/// the same on every surface: Rust, C, Python, HTTP and the command line.
/// The message says what was wrong and what would be right, in one sentence.
///
/// ```
/// use agent_backlog::{Error, Store};
///
/// let store = Store::open_in_memory()?;
/// let err = store.get_task("marketing-lead", "MKT-009").unwrap_err();
/// assert!(matches!(err, Error::NotFound(_)));
/// assert_eq!(err.code(), "not_found");
/// assert_eq!(err.to_string(), "task MKT-009 is not in the backlog of marketing-lead");
/// # Ok::<(), agent_backlog::Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A bad agent_id, task_id, field, type, range, unknown field or malformed JSON.
    /// Nothing was written.
    #[error("{0}")]
    InvalidArgument(String),
    /// The task does not exist in that agent's backlog.
    #[error("{0}")]
    NotFound(String),
    /// A lifecycle move that the transition table forbids. Nothing was written.
    #[error("{0}")]
    InvalidTransition(String),
    /// A prefix already held by another agent, or a prefix change after the first task.
    #[error("{0}")]
    Conflict(String),
    /// A lease token that is no longer the task's current lease: the lease expired and
    /// the task was requeued, another worker holds it, or the task was moved by
    /// `update_task` or deleted (SPEC §10). Nothing was written.
    #[error("{0}")]
    LeaseLost(String),
    /// The database failed: busy past the timeout, disk full, read-only, corrupt or foreign
    /// file, a schema from a newer version, or a closed store.
    #[error("{message}")]
    Storage {
        /// What failed and what to do about it.
        message: String,
        /// The underlying database error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
    /// A bug inside the library (for example a caught panic). The store stays usable.
    #[error("{0}")]
    Internal(String),
}

/// The stable code of an [`Error`], as a closed enum.
///
/// The numeric value is the code returned by the C ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum ErrorCode {
    /// `invalid_argument` (C: 1, HTTP: 400).
    InvalidArgument = 1,
    /// `not_found` (C: 2, HTTP: 404).
    NotFound = 2,
    /// `invalid_transition` (C: 3, HTTP: 409).
    InvalidTransition = 3,
    /// `conflict` (C: 4, HTTP: 409).
    Conflict = 4,
    /// `storage` (C: 5, HTTP: 503).
    Storage = 5,
    /// `internal` (C: 6, HTTP: 500).
    Internal = 6,
    /// `lease_lost` (C: 7, HTTP: 409).
    LeaseLost = 7,
}

impl ErrorCode {
    /// The code as the contract spells it, e.g. `"invalid_argument"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::NotFound => "not_found",
            ErrorCode::InvalidTransition => "invalid_transition",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Storage => "storage",
            ErrorCode::Internal => "internal",
            ErrorCode::LeaseLost => "lease_lost",
        }
    }

    /// The HTTP status that goes with this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidArgument => 400,
            ErrorCode::NotFound => 404,
            ErrorCode::InvalidTransition | ErrorCode::Conflict | ErrorCode::LeaseLost => 409,
            ErrorCode::Storage => 503,
            ErrorCode::Internal => 500,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// The stable code of this error, e.g. `"not_found"`.
    pub fn code(&self) -> &'static str {
        self.kind().as_str()
    }

    /// The stable code of this error as an [`ErrorCode`].
    pub fn kind(&self) -> ErrorCode {
        match self {
            Error::InvalidArgument(_) => ErrorCode::InvalidArgument,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::InvalidTransition(_) => ErrorCode::InvalidTransition,
            Error::Conflict(_) => ErrorCode::Conflict,
            Error::Storage { .. } => ErrorCode::Storage,
            Error::Internal(_) => ErrorCode::Internal,
            Error::LeaseLost(_) => ErrorCode::LeaseLost,
        }
    }

    /// The error as the contract's JSON object:
    /// `{"error": {"code": "not_found", "message": "..."}}`.
    ///
    /// ```
    /// let err = agent_backlog::Error::NotFound("task MKT-009 is not in the backlog of marketing-lead".into());
    /// assert_eq!(
    ///     err.to_json().to_string(),
    ///     r#"{"error":{"code":"not_found","message":"task MKT-009 is not in the backlog of marketing-lead"}}"#
    /// );
    /// ```
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"error": {"code": self.code(), "message": self.to_string()}})
    }

    /// A storage error with a message and no SQLite source.
    pub(crate) fn storage(message: impl Into<String>) -> Self {
        Error::Storage {
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidArgument(message.into())
    }
}
