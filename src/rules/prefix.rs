//! Deriving a task-ID prefix from an agent_id (SPEC §5).

/// Well-known words and their abbreviations, looked up by an agent_id's first word.
pub const ABBREVIATIONS: [(&str, &str); 15] = [
    ("marketing", "MKT"),
    ("operations", "OPS"),
    ("product", "PRD"),
    ("sales", "SLS"),
    ("design", "DSN"),
    ("management", "MGT"),
    ("development", "DEV"),
    ("engineering", "ENG"),
    ("customer", "CST"),
    ("research", "RSH"),
    ("finance", "FIN"),
    ("security", "SEC"),
    ("quality", "QA"),
    ("human", "HR"),
    ("information", "IT"),
];

/// The prefix used when an agent_id holds no letter at all (e.g. `"42"`).
pub const FALLBACK: &str = "AGT";

/// Splits an agent_id into words: at every character that is not a letter or digit,
/// and between a lowercase letter and the uppercase letter after it.
pub fn words(agent_id: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in agent_id.chars() {
        if !c.is_ascii_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            prev_lower = false;
            continue;
        }
        if prev_lower && c.is_ascii_uppercase() && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        current.push(c);
        prev_lower = c.is_ascii_lowercase();
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// The prefix an agent gets when none was set for it, before uniqueness is applied.
///
/// The first word, lowercased, is looked up in [`ABBREVIATIONS`]; otherwise the first
/// three letters of the id are taken, word after word; the result is uppercased.
///
/// ```
/// use agent_backlog::derive_prefix;
/// assert_eq!(derive_prefix("marketing-lead"), "MKT");
/// assert_eq!(derive_prefix("support-bot"), "SUP");
/// assert_eq!(derive_prefix("qa-bot"), "QAB");
/// assert_eq!(derive_prefix("x"), "X");
/// assert_eq!(derive_prefix("financeBot"), "FIN");
/// ```
pub fn derive_prefix(agent_id: &str) -> String {
    let words = words(agent_id);
    if let Some(first) = words.first() {
        let lower = first.to_ascii_lowercase();
        if let Some((_, abbr)) = ABBREVIATIONS.iter().find(|(word, _)| *word == lower) {
            return (*abbr).to_owned();
        }
    }
    let letters: String = words
        .iter()
        .flat_map(|w| w.chars())
        .filter(|c| c.is_ascii_alphabetic())
        .take(3)
        .collect::<String>()
        .to_ascii_uppercase();
    if letters.is_empty() {
        FALLBACK.to_owned()
    } else {
        letters
    }
}

/// The `n`-th candidate for a derived prefix: `SUP`, `SUP2`, `SUP3`, …
pub fn candidate(base: &str, n: u32) -> String {
    if n <= 1 {
        base.to_owned()
    } else {
        format!("{base}{n}")
    }
}

/// The base and number of which `prefix` is the candidate (`SUP` → (`SUP`, 1),
/// `SUP12` → (`SUP`, 12)), if it is one: a derived base is letters only, and a
/// candidate's number is 2 or more, written without leading zeros.
pub fn as_candidate(prefix: &str) -> Option<(&str, u32)> {
    let split = prefix
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(prefix.len());
    let (base, digits) = prefix.split_at(split);
    if base.is_empty() || !base.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    if digits.is_empty() {
        return Some((base, 1));
    }
    if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match digits.parse::<u32>() {
        Ok(n) if n >= 2 => Some((base, n)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn candidates_and_their_bases() {
        use super::{as_candidate, candidate};
        for (base, n) in [("SUP", 1), ("SUP", 2), ("WOR", 100_000), ("X", 7)] {
            assert_eq!(as_candidate(&candidate(base, n)), Some((base, n)));
        }
        for other in ["SUP1", "SUP02", "S2P", "2SUP", "", "SUP99999999999"] {
            assert_eq!(as_candidate(other), None, "{other}");
        }
    }

    use super::*;

    #[test]
    fn splits_words() {
        assert_eq!(words("marketing-lead"), ["marketing", "lead"]);
        assert_eq!(words("dataPipelineBot"), ["data", "Pipeline", "Bot"]);
        assert_eq!(words("QABot"), ["QABot"]);
        assert_eq!(words("a..b__c"), ["a", "b", "c"]);
        assert_eq!(words("agent007x"), ["agent007x"]);
    }

    #[test]
    fn derives() {
        let cases = [
            ("marketing-lead", "MKT"),
            ("Marketing.Lead", "MKT"),
            ("marketingLead", "MKT"),
            ("operations", "OPS"),
            ("product_owner", "PRD"),
            ("sales-1", "SLS"),
            ("design-bot", "DSN"),
            ("management", "MGT"),
            ("development", "DEV"),
            ("engineering-x", "ENG"),
            ("customer-success", "CST"),
            ("research", "RSH"),
            ("finance", "FIN"),
            ("security-scan", "SEC"),
            ("quality-gate", "QA"),
            ("human-review", "HR"),
            ("information-desk", "IT"),
            ("support-bot", "SUP"),
            ("supply-chain", "SUP"),
            ("qa-bot", "QAB"),
            ("x", "X"),
            ("ab", "AB"),
            ("a-b", "AB"),
            ("r2d2-bot", "RDB"),
            ("42", "AGT"),
            ("7-up", "UP"),
            ("marketer", "MAR"),
        ];
        for (agent, prefix) in cases {
            assert_eq!(derive_prefix(agent), prefix, "{agent}");
        }
    }

    #[test]
    fn candidates() {
        assert_eq!(candidate("SUP", 1), "SUP");
        assert_eq!(candidate("SUP", 2), "SUP2");
        assert_eq!(candidate("SUP", 12), "SUP12");
    }
}
