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
    /// SQLite failed: busy past the timeout, disk full, read-only, corrupt or foreign
    /// file, a schema from a newer version, or a closed store.
    #[error("{message}")]
    Storage {
        /// What failed and what to do about it.
        message: String,
        /// The underlying SQLite error, when there is one.
        #[source]
        source: Option<rusqlite::Error>,
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
        }
    }

    /// The HTTP status that goes with this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidArgument => 400,
            ErrorCode::NotFound => 404,
            ErrorCode::InvalidTransition | ErrorCode::Conflict => 409,
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

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        use rusqlite::ffi::ErrorCode as C;
        // A stored value that cannot be read back as what the STRICT schema allows
        // (not UTF-8, a wrong type, out of range) means the file was damaged.
        if matches!(
            err,
            rusqlite::Error::FromSqlConversionFailure(..)
                | rusqlite::Error::InvalidColumnType(..)
                | rusqlite::Error::IntegralValueOutOfRange(..)
                | rusqlite::Error::Utf8Error(..)
        ) {
            return Error::Storage {
                message: format!(
                    "the database file is corrupt (a stored value cannot be read); restore it \
                     from a backup or open another file (SQLite: {err})"
                ),
                source: Some(err),
            };
        }
        let what = match err.sqlite_error_code() {
            Some(C::DatabaseBusy) | Some(C::DatabaseLocked) => {
                "the database is busy: another connection held the write lock for longer than \
                 the busy timeout; retry the call, or open the store with a longer busy_timeout"
            }
            Some(C::DiskFull) => "the disk is full or the file reached its size limit; free space and retry",
            Some(C::ReadOnly) => {
                "the database is read-only; open a file (and folder) this process can write"
            }
            Some(C::DatabaseCorrupt) => {
                "the database file is corrupt; restore it from a backup or open another file"
            }
            Some(C::NotADatabase) => {
                "the file is not an SQLite database; give the path of an agent-backlog database or a new file"
            }
            Some(C::CannotOpen) => {
                "the database file cannot be opened; check that the path and its folder exist and are accessible"
            }
            Some(C::PermissionDenied) => "access to the database file was denied; check its permissions",
            Some(C::SystemIoFailure) => {
                "reading or writing the database file failed (disk full, file size limit or an \
                 I/O error); free space or raise the limit, then retry"
            }
            Some(C::ConstraintViolation) => {
                return Error::Internal(format!(
                    "a stored invariant was about to be violated, which is a bug in agent-backlog; nothing was written ({err})"
                ))
            }
            _ => "SQLite failed",
        };
        Error::Storage {
            message: format!("{what} (SQLite: {err})"),
            source: Some(err),
        }
    }
}
