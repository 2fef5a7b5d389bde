//! The value rules of the contract (SPEC §2, §5, §6), in one place.
//!
//! Every operation of the store runs its input through these functions before it
//! touches the database, so a bad input is refused with `invalid_argument` and
//! nothing is written.

use crate::error::{Error, Result};

/// Longest title, in characters, after trimming.
pub const MAX_TITLE_CHARS: usize = 500;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 65_536;
/// Longest result, in characters.
pub const MAX_RESULT_CHARS: usize = 1_048_576;
/// Longest blocker, in characters.
pub const MAX_BLOCKER_CHARS: usize = 2_000;
/// Longest agent_id, in characters.
pub const MAX_AGENT_ID_CHARS: usize = 64;
/// Longest explicit prefix, in characters.
pub const MAX_PREFIX_CHARS: usize = 8;
/// Longest prefix of a task ID: a derived prefix may run past [`MAX_PREFIX_CHARS`]
/// when many agents share a base (`WOR100000`), SPEC §5.
pub const MAX_TASK_PREFIX_CHARS: usize = 12;
/// Most tasks in one `create_tasks` batch.
pub const MAX_BATCH_TASKS: usize = 10_000;
/// Most dependencies one create body names.
pub const MAX_DEPENDS_ON: usize = 1_000;
/// Longest idempotency key, in characters (SPEC §12).
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

/// Shows a caller's value in a message without flooding it.
pub(crate) fn shown(value: &str) -> String {
    const MAX: usize = 40;
    if value.chars().count() <= MAX {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(MAX).collect();
        format!("{head:?}… ({} characters)", value.chars().count())
    }
}

/// A name of the agent_id alphabet (SPEC §6): 1..=`max` characters from A–Z a–z 0–9
/// `-` `_` `.`, starting with a letter or digit. Agent IDs and lease workers are such
/// names; `field` names the input in the message.
pub(crate) fn name(field: &str, value: &str, max: usize) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{field} must be 1 to {max} characters from A-Z a-z 0-9 - _ . starting with a letter or digit, got {}",
            shown(value)
        )))
    }
}

/// `agent_id`: 1..=64 characters from A–Z a–z 0–9 `-` `_` `.`, starting with a letter or digit.
pub fn agent_id(value: &str) -> Result<()> {
    name("agent_id", value, MAX_AGENT_ID_CHARS)
}

/// `task_id`: `{PREFIX}-{NNN}` — a prefix of 1..=12 characters A–Z 0–9 starting with a
/// letter, a hyphen, and at least three digits. (An explicit prefix has at most 8
/// characters; a derived one may have more.)
pub fn task_id(value: &str) -> Result<()> {
    id_of("task_id", value)
}

/// A task ID given as `field` (`task_id`, `depends_on`), checked as [`task_id`] is.
pub(crate) fn id_of(field: &str, value: &str) -> Result<()> {
    let ok = match value.split_once('-') {
        Some((prefix, number)) => {
            is_prefix(prefix, MAX_TASK_PREFIX_CHARS)
                && (3..=20).contains(&number.len())
                && number.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{field} must look like MKT-001 (a prefix of 1 to 12 characters A-Z 0-9, a hyphen, at least 3 digits), got {}",
            shown(value)
        )))
    }
}

fn is_prefix(value: &str, max: usize) -> bool {
    (1..=max).contains(&value.len())
        && value.starts_with(|c: char| c.is_ascii_uppercase())
        && value
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// An idempotency key (SPEC §12): 1..=255 printable ASCII characters (space to `~`).
pub fn idempotency_key(value: &str) -> Result<()> {
    let ok = (1..=MAX_IDEMPOTENCY_KEY_CHARS).contains(&value.len())
        && value.bytes().all(|b| (0x20..=0x7e).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "idempotency_key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable ASCII characters (space to ~), such as a UUID, got {}",
            shown(value)
        )))
    }
}

/// Longest actor name, in characters.
pub const MAX_ACTOR_CHARS: usize = 128;

/// An actor (SPEC §14): who a write is recorded as; 1..=128 characters, none of them
/// a control character, not blank.
pub fn actor(value: &str) -> Result<()> {
    let n = value.chars().count();
    if (1..=MAX_ACTOR_CHARS).contains(&n)
        && !value.trim().is_empty()
        && !value.chars().any(char::is_control)
    {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "actor must be 1 to {MAX_ACTOR_CHARS} characters without control characters, such as \"release-bot\", got {}",
            shown(value)
        )))
    }
}

/// An explicit prefix: 1..=8 characters A–Z and 0–9, starting with a letter.
pub fn prefix(value: &str) -> Result<()> {
    if is_prefix(value, MAX_PREFIX_CHARS) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "prefix must be 1 to 8 characters A-Z 0-9 starting with a letter, got {}",
            shown(value)
        )))
    }
}

fn no_nul(field: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        Err(Error::invalid(format!(
            "{field} must not contain NUL characters"
        )))
    } else {
        Ok(())
    }
}

/// `title`: required, 1..=500 characters after trimming. Returns the trimmed title.
pub fn title(value: &str) -> Result<String> {
    no_nul("title", value)?;
    let trimmed = value.trim();
    let n = trimmed.chars().count();
    if n == 0 || n > MAX_TITLE_CHARS {
        return Err(Error::invalid(format!(
            "title must be 1 to {MAX_TITLE_CHARS} characters after trimming, got {n}"
        )));
    }
    Ok(trimmed.to_owned())
}

fn bounded(field: &str, value: &str, max: usize) -> Result<()> {
    no_nul(field, value)?;
    // Cheap byte-length test first: a string with at most `max` bytes has at most `max` chars.
    if value.len() > max {
        let n = value.chars().count();
        if n > max {
            return Err(Error::invalid(format!(
                "{field} must be at most {max} characters, got {n}"
            )));
        }
    }
    Ok(())
}

/// `description`: up to 65,536 characters.
pub fn description(value: &str) -> Result<()> {
    bounded("description", value, MAX_DESCRIPTION_CHARS)
}

/// `result`: up to 1,048,576 characters.
pub fn result(value: &str) -> Result<()> {
    bounded("result", value, MAX_RESULT_CHARS)
}

/// `blocker`: 1..=2,000 characters, not blank.
pub fn blocker(value: &str) -> Result<()> {
    bounded("blocker", value, MAX_BLOCKER_CHARS)?;
    if value.trim().is_empty() {
        return Err(Error::invalid(
            "blocker must say why the task is blocked: 1 to 2000 characters, not blank",
        ));
    }
    Ok(())
}

/// `priority`: an integer from 1 (highest) to 10 (lowest).
pub fn priority(value: i64) -> Result<u8> {
    match u8::try_from(value) {
        Ok(p @ 1..=10) => Ok(p),
        _ => Err(Error::invalid(format!(
            "priority must be an integer from 1 to 10, got {value}"
        ))),
    }
}

/// An integer input that must lie in `min..=max`; `field` names it in the message.
pub(crate) fn in_range(field: &str, value: i64, min: i64, max: i64) -> Result<i64> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(Error::invalid(format!(
            "{field} must be an integer from {min} to {max}, got {value}"
        )))
    }
}

/// `limit` and `offset`: integers ≥ 0.
pub fn non_negative(field: &str, value: i64) -> Result<i64> {
    if value < 0 {
        Err(Error::invalid(format!(
            "{field} must be an integer of 0 or more, got {value}"
        )))
    } else {
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_ids() {
        for ok in ["marketing-lead", "a", "0agent", "A.b_c-d", &"x".repeat(64)] {
            assert!(agent_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-lead",
            ".x",
            "_x",
            "a b",
            "a/b",
            "é",
            &"x".repeat(65),
            "a\0",
        ] {
            let err = agent_id(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_argument", "{bad}");
            assert!(err.to_string().starts_with("agent_id must be"));
        }
    }

    #[test]
    fn task_ids() {
        // A derived prefix may run past the 8 characters of set_prefix (SPEC §5).
        for ok in [
            "MKT-001",
            "X-999",
            "SUP2-1000",
            "ABCDEFGH-123",
            "WOR100000-001",
            "ABCDEFGHIJKL-001",
        ] {
            assert!(task_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "MKT",
            "MKT-",
            "MKT-01",
            "mkt-001",
            "1KT-001",
            "ABCDEFGHIJKLM-001",
            "MKT-00a",
            "MKT--001",
            "MKT-001 ",
            "-001",
        ] {
            assert!(task_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn titles_are_trimmed_and_bounded() {
        assert_eq!(title("  Write posts \n").unwrap(), "Write posts");
        assert!(title("   ").is_err());
        assert!(title("").is_err());
        assert_eq!(title(&"é".repeat(500)).unwrap().chars().count(), 500);
        let err = title(&"é".repeat(501)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "title must be 1 to 500 characters after trimming, got 501"
        );
        assert!(title("a\0b").is_err());
    }

    #[test]
    fn bounded_fields_count_characters_not_bytes() {
        assert!(description(&"é".repeat(MAX_DESCRIPTION_CHARS)).is_ok());
        assert!(description(&"e".repeat(MAX_DESCRIPTION_CHARS + 1)).is_err());
        assert!(result(&"€".repeat(MAX_RESULT_CHARS)).is_ok());
        assert!(result(&"e".repeat(MAX_RESULT_CHARS + 1)).is_err());
        assert!(blocker(&"b".repeat(2000)).is_ok());
        assert!(blocker(&"b".repeat(2001)).is_err());
        assert!(blocker(" ").is_err());
        assert!(blocker("").is_err());
    }

    #[test]
    fn priorities() {
        assert_eq!(priority(1).unwrap(), 1);
        assert_eq!(priority(10).unwrap(), 10);
        for bad in [0, 11, -1, 256 + 3, i64::MAX, i64::MIN] {
            let err = priority(bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("priority must be an integer from 1 to 10, got {bad}")
            );
        }
    }

    #[test]
    fn prefixes() {
        for ok in ["MKT", "A", "SUP2", "ABCDEFGH"] {
            assert!(prefix(ok).is_ok());
        }
        for bad in ["", "mkt", "2AB", "ABCDEFGHI", "MK-T", "MKÉ"] {
            assert!(prefix(bad).is_err(), "{bad}");
        }
    }
}
