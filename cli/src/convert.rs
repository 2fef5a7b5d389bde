//! Turns text from a URL query string or the command line into the JSON values that
//! the core's strict parsers check.
//!
//! Nothing is validated here: a value that is not a number where the core wants one
//! is passed on as a JSON string, so that the core reports it with its own message
//! (`priority must be an integer from 1 to 10, got the string "abc"`).

use agent_backlog::ops::Kind;
use agent_backlog::Error;
use serde_json::{Map, Value};

/// The JSON value for `text` given for an input of this kind: text that reads as a
/// JSON number becomes that number for a numeric input (`3`, `3.5`, `-1`); anything
/// else stays a string for the core to check.
pub fn text_value(kind: Kind, text: &str) -> Value {
    if kind == Kind::TaskIds {
        // `MKT-001,ENG-002` (and, in a batch, item indices such as `0`).
        return Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(|id| text_value(Kind::Integer, id))
                .collect(),
        );
    }
    if matches!(kind, Kind::Integer | Kind::Number) {
        if let Ok(number) = serde_json::from_str::<serde_json::Number>(text) {
            return Value::Number(number);
        }
    }
    Value::String(text.to_owned())
}

/// A JSON object from `name=value` pairs, each converted by [`text_value`] with the
/// kind that `kind_of` gives its name.
///
/// A name given twice is `invalid_argument`; unknown names are kept so that the
/// core's parser names them in its error.
pub fn object_from_pairs<I, K, V>(
    pairs: I,
    what: &str,
    kind_of: impl Fn(&str) -> Kind,
) -> Result<Value, Error>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut object = Map::new();
    for (name, text) in pairs {
        let name = name.as_ref();
        if object.contains_key(name) {
            return Err(Error::InvalidArgument(format!(
                "the {what} {name} is given twice; give it once"
            )));
        }
        object.insert(name.to_owned(), text_value(kind_of(name), text.as_ref()));
    }
    Ok(Value::Object(object))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_only_for_numeric_fields() {
        assert_eq!(text_value(Kind::Integer, "3"), json!(3));
        assert_eq!(text_value(Kind::Integer, "3.5"), json!(3.5));
        assert_eq!(text_value(Kind::Integer, "abc"), json!("abc"));
        assert_eq!(text_value(Kind::Integer, ""), json!(""));
        assert_eq!(text_value(Kind::Text, "42"), json!("42"));
        assert_eq!(text_value(Kind::Status, "queued"), json!("queued"));
        assert_eq!(
            text_value(Kind::TaskIds, "MKT-001, ENG-012,0"),
            json!(["MKT-001", "ENG-012", 0])
        );
        assert_eq!(text_value(Kind::TaskIds, ""), json!([]));
    }

    #[test]
    fn pairs_become_an_object() {
        let kind = |name: &str| {
            if name == "limit" {
                Kind::Integer
            } else {
                Kind::Text
            }
        };
        let value =
            object_from_pairs([("status", "queued"), ("limit", "2")], "parameter", kind).unwrap();
        assert_eq!(value, json!({"status": "queued", "limit": 2}));
        let err = object_from_pairs([("limit", "2"), ("limit", "3")], "query parameter", kind)
            .unwrap_err();
        assert_eq!(err.code(), "invalid_argument");
        assert_eq!(
            err.to_string(),
            "the query parameter limit is given twice; give it once"
        );
    }
}
