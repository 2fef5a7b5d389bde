//! The lease rules of SPEC §10–§11, as pure functions: the values a lease takes, the
//! token and what a token still proves, and what an expiry does to a task.

use crate::error::{Error, Result};
use crate::lease::{Finish, LeaseTerms};
use crate::model::{Status, TaskPatch};
use crate::rules::lifecycle::{self, State};
use crate::rules::validate::{self, shown};

/// The lease duration when none is given, in seconds.
pub const DEFAULT_LEASE_SECONDS: i64 = 600;
/// The longest lease, in seconds (a day).
pub const MAX_LEASE_SECONDS: i64 = 86_400;
/// The attempts before an expiry blocks the task, when none is given.
pub const DEFAULT_MAX_ATTEMPTS: i64 = 3;
/// The most attempts a lease may allow.
pub const MAX_ATTEMPTS: i64 = 1_000;
/// Longest worker name, in characters.
pub const MAX_WORKER_CHARS: usize = 128;
/// The longest wait of `wait_for_task`, in seconds.
pub const MAX_WAIT_SECONDS: f64 = 300.0;

/// Checked lease terms, in the units the backends store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Terms {
    pub lease_ms: i64,
    pub max_attempts: i64,
}

/// `worker`: 1..=128 characters of the agent_id alphabet.
pub fn worker(value: &str) -> Result<()> {
    validate::name("worker", value, MAX_WORKER_CHARS)
}

/// `lease_seconds`: an integer from 1 to 86,400.
pub fn lease_seconds(value: i64) -> Result<i64> {
    validate::in_range("lease_seconds", value, 1, MAX_LEASE_SECONDS)
}

/// `max_attempts`: an integer from 1 to 1,000.
pub fn max_attempts(value: i64) -> Result<i64> {
    validate::in_range("max_attempts", value, 1, MAX_ATTEMPTS)
}

/// `timeout_seconds` of `wait_for_task`: a number from 0 to 300, fractions allowed.
pub fn timeout_seconds(value: f64) -> Result<std::time::Duration> {
    if value.is_finite() && (0.0..=MAX_WAIT_SECONDS).contains(&value) {
        Ok(std::time::Duration::from_secs_f64(value))
    } else {
        Err(Error::invalid(format!(
            "timeout_seconds must be a number from 0 to 300, got {value}"
        )))
    }
}

/// The terms with their defaults applied, checked.
pub(crate) fn terms(terms: LeaseTerms) -> Result<Terms> {
    let seconds = lease_seconds(terms.lease_seconds.unwrap_or(DEFAULT_LEASE_SECONDS))?;
    let max_attempts = max_attempts(terms.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS))?;
    Ok(Terms {
        lease_ms: seconds * 1000,
        max_attempts,
    })
}

/// A finish body as the patch it applies to the in_progress task: the §4 move to
/// `complete`, `queued` (release) or `blocked`, with its result or blocker.
pub(crate) fn finish_patch(finish: Finish) -> Result<TaskPatch> {
    if finish.status == Status::InProgress {
        return Err(Error::invalid(
            "status of a finish must be complete, queued or blocked, got \"in_progress\"; \
             renew the lease to keep working",
        ));
    }
    Ok(TaskPatch {
        status: Some(finish.status),
        priority: None,
        title: None,
        description: None,
        blocker: finish.blocker.map(Some),
        result: finish.result.map(Some),
    })
}

/// A lease token taken apart: `{task_id}.{fence}.{secret}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    pub text: &'a str,
    pub task_id: &'a str,
    pub fence: i64,
}

const TOKEN_EXAMPLE: &str = "MKT-004.3.9f1c2a7d5e0b4c11";

/// Parses a token; a string that no lease could have had is `invalid_argument`.
pub(crate) fn token(text: &str) -> Result<Token<'_>> {
    let bad = || {
        Error::invalid(format!(
            "token must be a lease token as claim_lease returned it, such as {TOKEN_EXAMPLE}; got {}",
            shown(text)
        ))
    };
    let mut parts = text.split('.');
    let (Some(task_id), Some(fence), Some(secret), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    validate::task_id(task_id).map_err(|_| bad())?;
    let fence: i64 = match fence.parse() {
        Ok(f) if f >= 1 && !fence.starts_with('+') && !fence.starts_with('0') => f,
        _ => return Err(bad()),
    };
    if secret.len() != 16
        || !secret
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(bad());
    }
    Ok(Token {
        text,
        task_id,
        fence,
    })
}

/// A new token for the lease of `task_id` at `fence`, with 64 random bits.
pub(crate) fn new_token(task_id: &str, fence: i64) -> Result<String> {
    let mut secret = [0u8; 8];
    getrandom::fill(&mut secret).map_err(|e| {
        Error::storage(format!(
            "the system's random number source failed, so no lease token could be made ({e}); retry"
        ))
    })?;
    Ok(format!(
        "{task_id}.{fence}.{:016x}",
        u64::from_be_bytes(secret)
    ))
}

/// What the store holds for the task a token names.
#[derive(Debug)]
pub(crate) enum Holder {
    /// The task exists: its status, fence, last token, whether that lease is still
    /// held, and its last worker.
    Task {
        status: Status,
        fence: i64,
        token: Option<String>,
        held: bool,
        worker: Option<String>,
    },
    /// The task was deleted at this fence, last leased by this worker.
    Deleted { fence: i64, worker: Option<String> },
    /// No task of that ID ever had a lease.
    Never,
}

fn last_worker(worker: &Option<String>) -> String {
    match worker {
        Some(w) => format!("last worker {w}"),
        None => "no worker".to_owned(),
    }
}

/// Whether `token` is the current lease of its task: `Ok` when it is; `lease_lost`
/// when it was and is no longer (expired and requeued, claimed again, moved by
/// update_task, deleted, or already finished); `not_found` when it never was.
pub(crate) fn check(token: &Token<'_>, holder: &Holder) -> Result<()> {
    let never = || {
        Error::NotFound(format!(
            "no lease has token {}; use the token claim_lease returned",
            shown(token.text)
        ))
    };
    match holder {
        Holder::Task {
            status,
            fence,
            token: current,
            held,
            worker,
        } => {
            let same = current.as_deref() == Some(token.text);
            if same && *held {
                return Ok(());
            }
            if same || token.fence < *fence {
                let why = if same && token.fence == *fence {
                    "the lease was already finished"
                } else {
                    "since the lease was granted, it expired and the task was requeued, or the task was claimed again, moved or blocked"
                };
                return Err(Error::LeaseLost(format!(
                    "the lease {} on task {} is no longer held ({why}): the task is {status} at fence {fence}, {}; stop working on it",
                    token.text,
                    token.task_id,
                    last_worker(worker)
                )));
            }
            Err(never())
        }
        Holder::Deleted { fence, worker } if token.fence <= *fence => {
            Err(Error::LeaseLost(format!(
                "the lease {} is no longer held: task {} was deleted at fence {fence}, {}; stop working on it",
                token.text,
                token.task_id,
                last_worker(worker)
            )))
        }
        Holder::Deleted { .. } | Holder::Never => Err(never()),
    }
}

/// What an expired lease does to its in_progress task (started at `started`), at
/// `now`: back to queued, or to blocked with the contract's blocker once `attempt` has
/// reached `max_attempts`. The state to store: its status, started and blocker.
pub(crate) fn expiry(
    attempt: i64,
    max_attempts: i64,
    worker: &str,
    started: Option<String>,
    now: &str,
) -> State {
    let (to, blocker) = if attempt >= max_attempts {
        (
            Status::Blocked,
            Some(format!(
                "lease expired {attempt} times; last worker {worker}"
            )),
        )
    } else {
        (Status::Queued, None)
    };
    let mut state = State {
        status: Status::InProgress,
        started,
        completed: None,
        result: None,
        blocker: None,
    };
    lifecycle::apply(&mut state, to, now);
    state.blocker = blocker;
    state
}

/// Milliseconds since the epoch as a lease time: RFC 3339 UTC with milliseconds.
pub(crate) fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_and_refuse() {
        let t = token("MKT-004.3.9f1c2a7d5e0b4c11").unwrap();
        assert_eq!((t.task_id, t.fence), ("MKT-004", 3));
        for bad in [
            "",
            "MKT-004",
            "MKT-004.3",
            "MKT-004.0.9f1c2a7d5e0b4c11",
            "MKT-004.03.9f1c2a7d5e0b4c11",
            "MKT-004.3.9F1C2A7D5E0B4C11",
            "MKT-004.3.9f1c",
            "mkt-004.3.9f1c2a7d5e0b4c11",
            "MKT-004.3.9f1c2a7d5e0b4c11.1",
        ] {
            assert_eq!(token(bad).unwrap_err().code(), "invalid_argument", "{bad}");
        }
        let made = new_token("OPS-1000", 12).unwrap();
        assert_eq!(token(&made).unwrap().fence, 12);
        assert_ne!(made, new_token("OPS-1000", 12).unwrap());
    }

    #[test]
    fn a_token_is_current_lost_or_never_seen() {
        let text = "MKT-004.3.9f1c2a7d5e0b4c11";
        let t = token(text).unwrap();
        let task = |fence, current: &str, held| Holder::Task {
            status: Status::InProgress,
            fence,
            token: Some(current.to_owned()),
            held,
            worker: Some("w".into()),
        };
        assert!(check(&t, &task(3, text, true)).is_ok());
        assert_eq!(
            check(&t, &task(3, text, false)).unwrap_err().code(),
            "lease_lost"
        );
        assert_eq!(
            check(&t, &task(4, "MKT-004.4.0000000000000000", true))
                .unwrap_err()
                .code(),
            "lease_lost"
        );
        assert_eq!(
            check(&t, &task(3, "MKT-004.3.0000000000000000", true))
                .unwrap_err()
                .code(),
            "not_found"
        );
        assert_eq!(
            check(&t, &task(2, "MKT-004.2.0000000000000000", true))
                .unwrap_err()
                .code(),
            "not_found"
        );
        let gone = Holder::Deleted {
            fence: 3,
            worker: None,
        };
        assert_eq!(check(&t, &gone).unwrap_err().code(), "lease_lost");
        assert_eq!(check(&t, &Holder::Never).unwrap_err().code(), "not_found");
    }

    #[test]
    fn expiry_requeues_until_the_last_attempt() {
        let started = Some("2025-12-02T09:00:00Z".to_owned());
        let now = "2025-12-02T10:00:00Z";
        let requeued = expiry(2, 3, "w", started.clone(), now);
        assert_eq!(requeued.status, Status::Queued);
        assert_eq!((requeued.started, requeued.blocker), (None, None));
        let blocked = expiry(3, 3, "writer-7", started.clone(), now);
        assert_eq!(blocked.status, Status::Blocked);
        assert_eq!(
            blocked.started, started,
            "a blocked task keeps when it started"
        );
        assert_eq!(
            blocked.blocker.as_deref(),
            Some("lease expired 3 times; last worker writer-7")
        );
        assert_eq!(format_ms(1_764_669_600_000), "2025-12-02T10:00:00.000Z");
    }
}
