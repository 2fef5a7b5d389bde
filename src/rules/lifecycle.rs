//! The lifecycle table of SPEC §4, as data.
//!
//! | from \ to   | queued | in_progress | complete | blocked |
//! |-------------|--------|-------------|----------|---------|
//! | queued      | –      | yes         | no       | yes     |
//! | in_progress | yes    | –           | yes      | yes     |
//! | blocked     | yes    | yes         | no       | –       |
//! | complete    | yes    | no          | –        | no      |
//!
//! What each move does to the timestamps and fields is in [`apply`].

use crate::model::Status::{self, Blocked, Complete, InProgress, Queued};

/// The moves allowed from each status (staying in a status is not a move).
pub const ALLOWED: [(Status, &[Status]); 4] = [
    (Queued, &[InProgress, Blocked]),
    (InProgress, &[Queued, Complete, Blocked]),
    (Blocked, &[Queued, InProgress]),
    (Complete, &[Queued]),
];

/// The statuses a task in `from` may move to.
pub fn allowed_from(from: Status) -> &'static [Status] {
    ALLOWED
        .iter()
        .find(|(status, _)| *status == from)
        .map(|(_, to)| *to)
        .unwrap_or(&[])
}

/// Whether the move `from → to` is allowed. Staying in the same status always is.
pub fn can_move(from: Status, to: Status) -> bool {
    from == to || allowed_from(from).contains(&to)
}

/// Whether `from → to` is a reopen (complete → queued), which also resets the
/// task's count of leased attempts (SPEC §10).
pub fn is_reopen(from: Status, to: Status) -> bool {
    from == Complete && to == Queued
}

/// The message of a refused move: names both states and the moves allowed.
pub fn refusal(task_id: &str, from: Status, to: Status) -> String {
    let allowed: Vec<&str> = allowed_from(from).iter().map(|s| s.as_str()).collect();
    format!(
        "cannot move {task_id} from {from} to {to}; from {from} a task can move to {}",
        allowed.join(", ")
    )
}

/// The stored fields a move touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// The status.
    pub status: Status,
    /// When the task entered in_progress.
    pub started: Option<String>,
    /// When the task entered complete.
    pub completed: Option<String>,
    /// What the agent produced.
    pub result: Option<String>,
    /// Why the task is blocked.
    pub blocker: Option<String>,
}

/// Applies the side effects of an allowed move `state.status → to` at time `now`.
///
/// The caller checks [`can_move`] first; a move to the same status changes nothing.
pub fn apply(state: &mut State, to: Status, now: &str) {
    let from = state.status;
    if from == to {
        return;
    }
    match to {
        Queued => {
            // release, unblock or reopen: back to a clean queued task
            state.started = None;
            state.completed = None;
            state.result = None;
            state.blocker = None;
        }
        InProgress => {
            if from == Queued || state.started.is_none() {
                state.started = Some(now.to_owned());
            }
            state.blocker = None;
        }
        Complete => {
            // only from in_progress: started is set; never let completed precede it
            let started = state.started.get_or_insert_with(|| now.to_owned());
            let completed = if started.as_str() > now {
                started.clone()
            } else {
                now.to_owned()
            };
            state.completed = Some(completed);
        }
        Blocked => {
            state.completed = None;
            state.result = None;
        }
    }
    state.status = to;
}

/// Whether a state satisfies the invariants of SPEC §4 (also enforced by the schema).
pub fn holds(state: &State) -> bool {
    let State {
        status,
        started,
        completed,
        result,
        blocker,
    } = state;
    match status {
        Queued => started.is_none() && completed.is_none() && result.is_none() && blocker.is_none(),
        InProgress => {
            started.is_some() && completed.is_none() && result.is_none() && blocker.is_none()
        }
        Blocked => blocker.is_some() && completed.is_none() && result.is_none(),
        Complete => match (started, completed) {
            (Some(s), Some(c)) => s <= c && blocker.is_none(),
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: [[bool; 4]; 4] = [
        // to: queued, in_progress, complete, blocked
        [true, true, false, true],  // from queued
        [true, true, true, true],   // from in_progress
        [true, false, true, false], // from complete
        [true, true, false, true],  // from blocked
    ];

    #[test]
    fn table_matches_the_spec() {
        for (i, from) in Status::ALL.into_iter().enumerate() {
            for (j, to) in Status::ALL.into_iter().enumerate() {
                assert_eq!(can_move(from, to), TABLE[i][j], "{from} -> {to}");
            }
        }
    }

    #[test]
    fn refusal_names_both_states_and_the_allowed_moves() {
        assert_eq!(
            refusal("MKT-001", Queued, Complete),
            "cannot move MKT-001 from queued to complete; from queued a task can move to in_progress, blocked"
        );
    }
}
