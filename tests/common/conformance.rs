//! The conformance cases of `testdata/conformance/` (the format is in its README), for
//! every surface whose runner is written in Rust: `Store::call`, the C ABI's
//! `backlog_call`, and the REST server. A runner only says how to open a fresh store
//! and how to send one request ([`Surface`]); loading, setup, matching and the
//! "nothing was written" checks are here, so they are the same for every surface.
//!
//! Include it with `#[path = ".../tests/common/conformance.rs"] mod conformance;`.
//! It needs nothing but the standard library: it carries a small JSON reader that keeps
//! what a general one drops and the cases depend on — the order of object keys, keys
//! given twice, and numbers and string escapes exactly as written (`1e400`,
//! `18446744073709551616`, `"\ud800"`), so that the text a surface receives is the text
//! of the case file.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// The surfaces a case may name in `"surfaces"`.
pub const SURFACES: [&str; 5] = ["rust", "c", "python", "http", "tools"];
/// The agents whose summaries make up a snapshot.
pub const SNAPSHOT_AGENTS: [&str; 3] = ["marketing-lead", "support-bot", "new-agent"];
/// Messages must be shorter than this (one sentence, SPEC §7).
const MAX_MESSAGE: usize = 1000;

// -------------------------------------------------------------------------------------
// What a runner provides
// -------------------------------------------------------------------------------------

/// One surface under test.
pub trait Surface: Sync {
    /// A store of this surface; one per case (and one more for a control run).
    type Store;
    /// The name cases use in `"surfaces"`: "rust", "c", "http" or "tools".
    const NAME: &'static str;
    /// Opens a fresh, empty store.
    fn open(&self) -> Self::Store;
    /// Runs `operation` with `request` (a JSON object as text, SPEC §17): the result as
    /// JSON text, or the error's code and message. A request this surface cannot
    /// express, or an answer that breaks the surface's own protocol, is a panic with a
    /// message saying so; the runner reports it as the case's failure.
    fn call(&self, store: &Self::Store, operation: &str, request: &str) -> Outcome;
}

/// A surface whose store can be opened at a given location (a file, `:memory:` or a
/// PostgreSQL URL), to run the cases on another backend ([`At`]).
pub trait OpensAt: Surface {
    /// Opens the store at `location`, which is empty.
    fn open_at(&self, location: &str) -> Self::Store;
}

/// A surface whose every store opens at a fresh location that `fresh` gives (a
/// PostgreSQL schema of its own, SPEC §16).
pub struct At<S, F> {
    pub surface: S,
    pub fresh: F,
}

impl<S: OpensAt, F: Fn() -> String + Sync> Surface for At<S, F> {
    type Store = S::Store;
    const NAME: &'static str = S::NAME;

    fn open(&self) -> Self::Store {
        self.surface.open_at(&(self.fresh)())
    }

    fn call(&self, store: &Self::Store, operation: &str, request: &str) -> Outcome {
        self.surface.call(store, operation, request)
    }
}

/// What one call gave.
pub type Outcome = Result<String, Failure>;

/// An error: its code (SPEC §7) and message.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub code: String,
    pub message: String,
}

/// `testdata/conformance/` from a crate's manifest dir (the root crate or one below it).
pub fn data_dir(manifest_dir: &str) -> PathBuf {
    let mut dir = PathBuf::from(manifest_dir);
    loop {
        let candidate = dir.join("testdata").join("conformance");
        if candidate.join("fixture.json").is_file() {
            return candidate;
        }
        assert!(dir.pop(), "no testdata/conformance/ above {manifest_dir}");
    }
}

// -------------------------------------------------------------------------------------
// JSON, as written
// -------------------------------------------------------------------------------------

/// A JSON value that keeps what the cases depend on: key order, keys given twice, and
/// the text of numbers and strings.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    /// A number, as written.
    Num(String),
    /// A string's content between the quotes, as written (escapes kept).
    Str(String),
    Arr(Vec<Json>),
    /// The members in order; a key may appear twice.
    Obj(Vec<(String, Json)>),
}

/// One member of a JSON object text, with its value's text as written.
#[derive(Debug)]
pub struct Member<'a> {
    pub key: String,
    pub value: Json,
    pub raw: &'a str,
}

impl Json {
    /// Parses one JSON text (RFC 8259, keys given twice allowed).
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut p = Parser {
            text,
            pos: 0,
            depth: 0,
        };
        let value = p.value()?;
        p.end()?;
        Ok(value)
    }

    /// A string value holding `text`.
    pub fn string(text: &str) -> Json {
        Json::Str(escape(text))
    }

    /// Compact JSON text: strings and numbers exactly as they were written.
    pub fn text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Num(n) => out.push_str(n),
            Json::Str(raw) => {
                out.push('"');
                out.push_str(raw);
                out.push('"');
            }
            Json::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Obj(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push('"');
                    out.push_str(&escape(key));
                    out.push_str("\":");
                    value.write(out);
                }
                out.push('}');
            }
        }
    }

    /// The first member named `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A string's text (escapes decoded); None for anything else or a lone surrogate.
    pub fn as_str(&self) -> Option<String> {
        match self {
            Json::Str(raw) => decode(raw).ok(),
            _ => None,
        }
    }

    /// Replaces every `{"$repeat": [text, n]}` by the string `text` repeated n times.
    pub fn expand(self) -> Json {
        match self {
            Json::Obj(members) if members.len() == 1 && members[0].0 == "$repeat" => {
                let (text, times) = match &members[0].1 {
                    Json::Arr(a) if a.len() == 2 => (a[0].as_str(), a[1].clone()),
                    other => panic!("$repeat takes [text, count], got {}", other.text()),
                };
                let times: usize = match times {
                    Json::Num(n) => n.parse().expect("$repeat's count is a whole number"),
                    other => panic!("$repeat's count must be a number, got {}", other.text()),
                };
                Json::string(&text.expect("$repeat's text is a string").repeat(times))
            }
            Json::Obj(members) => {
                Json::Obj(members.into_iter().map(|(k, v)| (k, v.expand())).collect())
            }
            Json::Arr(items) => Json::Arr(items.into_iter().map(Json::expand).collect()),
            other => other,
        }
    }
}

/// The members of a JSON object text, each with its value's text as written, so that a
/// surface can send a part of a request verbatim (a body with a key given twice).
pub fn members(text: &str) -> Result<Vec<Member<'_>>, String> {
    let mut p = Parser {
        text,
        pos: 0,
        depth: 1,
    };
    p.ws();
    p.expect(b'{')?;
    let mut out = Vec::new();
    p.ws();
    if p.peek() == Some(b'}') {
        p.pos += 1;
    } else {
        loop {
            p.ws();
            let key = decode(&p.string()?)?;
            p.ws();
            p.expect(b':')?;
            p.ws();
            let start = p.pos;
            let value = p.value()?;
            out.push(Member {
                key,
                value,
                raw: &text[start..p.pos],
            });
            p.ws();
            match p.peek() {
                Some(b',') => p.pos += 1,
                Some(b'}') => {
                    p.pos += 1;
                    break;
                }
                _ => return p.fail("expected , or } after a member"),
            }
        }
    }
    p.end()?;
    Ok(out)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn fail<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at byte {}", self.pos))
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            self.fail(&format!("expected {:?}", byte as char))
        }
    }

    fn end(&mut self) -> Result<(), String> {
        self.ws();
        if self.pos == self.text.len() {
            Ok(())
        } else {
            self.fail("trailing characters")
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.peek() {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => Ok(Json::Str(self.string()?)),
            Some(b't') => self.word("true", Json::Bool(true)),
            Some(b'f') => self.word("false", Json::Bool(false)),
            Some(b'n') => self.word("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => self.fail("expected a JSON value"),
        }
    }

    fn nest(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > 64 {
            return self.fail("nested too deep");
        }
        self.pos += 1;
        Ok(())
    }

    fn object(&mut self) -> Result<Json, String> {
        self.nest()?;
        let mut members = Vec::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
        } else {
            loop {
                self.ws();
                let key = decode(&self.string()?)?;
                self.ws();
                self.expect(b':')?;
                members.push((key, self.value()?));
                self.ws();
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b'}') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return self.fail("expected , or }"),
                }
            }
        }
        self.depth -= 1;
        Ok(Json::Obj(members))
    }

    fn array(&mut self) -> Result<Json, String> {
        self.nest()?;
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
        } else {
            loop {
                items.push(self.value()?);
                self.ws();
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b']') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return self.fail("expected , or ]"),
                }
            }
        }
        self.depth -= 1;
        Ok(Json::Arr(items))
    }

    /// A string at the current `"`: its content as written.
    fn string(&mut self) -> Result<String, String> {
        if self.peek() != Some(b'"') {
            return self.fail("expected a string");
        }
        let bytes = self.text.as_bytes();
        let start = self.pos + 1;
        let mut i = start;
        loop {
            match bytes.get(i) {
                None => return self.fail("unterminated string"),
                Some(b'"') => break,
                Some(b'\\') => match bytes.get(i + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                    Some(b'u')
                        if bytes.len() >= i + 6
                            && bytes[i + 2..i + 6].iter().all(u8::is_ascii_hexdigit) =>
                    {
                        i += 6
                    }
                    _ => return Err(format!("a bad escape at byte {i}")),
                },
                Some(b) if *b < 0x20 => return Err(format!("a control character at byte {i}")),
                Some(_) => i += 1,
            }
        }
        self.pos = i + 1;
        Ok(self.text[start..i].to_owned())
    }

    fn number(&mut self) -> Result<Json, String> {
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let digits = |p: &mut Parser| {
            let from = p.pos;
            while matches!(p.peek(), Some(b'0'..=b'9')) {
                p.pos += 1;
            }
            p.pos > from
        };
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        if self.peek() == Some(b'0') {
            self.pos += 1;
        } else if !digits(self) {
            return self.fail("expected digits");
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !digits(self) {
                return self.fail("expected digits after the point");
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !digits(self) {
                return self.fail("expected exponent digits");
            }
        }
        Ok(Json::Num(
            String::from_utf8(bytes[start..self.pos].to_vec()).unwrap(),
        ))
    }

    fn word(&mut self, word: &str, value: Json) -> Result<Json, String> {
        if self.text[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(value)
        } else {
            self.fail("expected true, false or null")
        }
    }
}

/// A string's content as written → its text. A lone surrogate is an error.
pub fn decode(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    let hex = |chars: &mut std::str::Chars| -> Result<u32, String> {
        let digits: String = chars.by_ref().take(4).collect();
        u32::from_str_radix(&digits, 16).map_err(|_| format!("a bad \\u escape: {digits}"))
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('/') => out.push('/'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('u') => {
                let unit = hex(&mut chars)?;
                let code = match unit {
                    0xD800..=0xDBFF => {
                        let low = match (chars.next(), chars.next()) {
                            (Some('\\'), Some('u')) => hex(&mut chars)?,
                            _ => return Err("a lone surrogate".into()),
                        };
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err("a lone surrogate".into());
                        }
                        0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return Err("a lone surrogate".into()),
                    _ => unit,
                };
                out.push(char::from_u32(code).ok_or("a bad \\u escape")?);
            }
            other => return Err(format!("a bad escape \\{other:?}")),
        }
    }
    Ok(out)
}

/// Text → a string's content as JSON writes it.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Whether a JSON text has no white space outside its strings.
pub fn is_compact(json: &str) -> bool {
    let (mut in_string, mut escaped) = (false, false);
    for ch in json.chars() {
        match (in_string, escaped, ch) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, false, '"') => in_string = !in_string,
            (false, _, c) if c.is_whitespace() => return false,
            _ => {}
        }
    }
    true
}

/// An RFC 3339 time in UTC with whole seconds: `2026-03-28T10:00:00Z`.
pub fn is_time(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

fn numbers_equal(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    if let (Ok(x), Ok(y)) = (a.parse::<i128>(), b.parse::<i128>()) {
        return x == y;
    }
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

fn short(text: &str) -> String {
    if text.chars().count() <= 300 {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(300).collect::<String>())
    }
}

/// Where `actual` differs from `expected`: values, types and key order. In `expected`,
/// the string `"<time>"` matches any [`is_time`] string and `"<any>"` anything.
pub fn mismatches(expected: &Json, actual: &Json, path: &str, out: &mut Vec<String>) {
    match (expected, actual) {
        (Json::Str(e), _) if e == "<any>" => {}
        (Json::Str(e), _) if e == "<time>" => {
            if !actual.as_str().is_some_and(|t| is_time(&t)) {
                out.push(format!(
                    "{path}: expected an RFC 3339 UTC time in whole seconds, got {}",
                    short(&actual.text())
                ));
            }
        }
        (Json::Obj(e), Json::Obj(a)) => {
            let ek: Vec<&str> = e.iter().map(|(k, _)| k.as_str()).collect();
            let ak: Vec<&str> = a.iter().map(|(k, _)| k.as_str()).collect();
            if ek != ak {
                out.push(format!("{path}: expected the keys {ek:?}, got {ak:?}"));
                return;
            }
            for ((k, ev), (_, av)) in e.iter().zip(a) {
                mismatches(ev, av, &format!("{path}.{k}"), out);
            }
        }
        (Json::Arr(e), Json::Arr(a)) => {
            if e.len() != a.len() {
                out.push(format!(
                    "{path}: expected {} items, got {}: {}",
                    e.len(),
                    a.len(),
                    short(&actual.text())
                ));
                return;
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                mismatches(ev, av, &format!("{path}[{i}]"), out);
            }
        }
        (Json::Num(e), Json::Num(a)) if numbers_equal(e, a) => {}
        (Json::Str(e), Json::Str(a))
            if e == a || matches!((decode(e), decode(a)), (Ok(x), Ok(y)) if x == y) => {}
        (Json::Null, Json::Null) => {}
        (Json::Bool(e), Json::Bool(a)) if e == a => {}
        _ => out.push(format!(
            "{path}: expected {}, got {}",
            short(&expected.text()),
            short(&actual.text())
        )),
    }
}

// -------------------------------------------------------------------------------------
// The cases
// -------------------------------------------------------------------------------------

/// One call: an operation and its request as JSON text.
#[derive(Debug, Clone)]
pub struct Step {
    pub op: String,
    pub request: String,
}

/// What runs before a case's call.
#[derive(Debug, Clone)]
pub enum Setup {
    /// An empty store.
    Empty,
    /// The fixture of `fixture.json`.
    Fixture,
    /// These calls (the fixture's among them where the case said "fixture").
    Steps(Vec<Step>),
}

/// What a case's call must give.
#[derive(Debug, Clone)]
pub enum Expect {
    Result(Json),
    Error { code: String, message: Vec<String> },
}

/// One case of a case file.
#[derive(Debug, Clone)]
pub struct Case {
    pub file: String,
    pub name: String,
    pub setup: Setup,
    pub op: String,
    /// The request as sent: `request` expanded and written compact, or `request_text`.
    pub request: String,
    pub expect: Expect,
    /// The surfaces the case applies to (None: all).
    pub surfaces: Option<Vec<String>>,
}

impl Case {
    pub fn applies_to(&self, surface: &str) -> bool {
        self.surfaces
            .as_ref()
            .is_none_or(|s| s.iter().any(|x| x == surface))
    }
}

fn read_json(path: &Path) -> Json {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    Json::parse(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn step_of(value: &Json, what: &str) -> Step {
    let keys: Vec<&str> = match value {
        Json::Obj(m) => m.iter().map(|(k, _)| k.as_str()).collect(),
        _ => panic!("{what}: a step must be an object, got {}", value.text()),
    };
    assert_eq!(
        keys,
        ["op", "request"],
        "{what}: a step is {{\"op\", \"request\"}}"
    );
    Step {
        op: value
            .get("op")
            .and_then(Json::as_str)
            .expect("op is a string"),
        request: value.get("request").unwrap().clone().expand().text(),
    }
}

/// The fixture's steps.
pub fn load_fixture(dir: &Path) -> Vec<Step> {
    match read_json(&dir.join("fixture.json")) {
        Json::Arr(steps) => steps
            .iter()
            .enumerate()
            .map(|(i, s)| step_of(s, &format!("fixture.json step {i}")))
            .collect(),
        _ => panic!("fixture.json must be a list of steps"),
    }
}

/// Every case of every case file in `dir` (every `*.json` but fixture.json), checked
/// for well-formedness; panics naming the file and case that is not.
pub fn load_cases(dir: &Path, fixture: &[Step]) -> Vec<Case> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json") && !p.ends_with("fixture.json"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for path in files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let document = read_json(&path);
        let keys: Vec<&str> = match &document {
            Json::Obj(m) => m.iter().map(|(k, _)| k.as_str()).collect(),
            _ => panic!("{file}: not an object"),
        };
        assert_eq!(keys, ["about", "cases"], "{file}: the top-level keys");
        let Some(Json::Arr(list)) = document.get("cases") else {
            panic!("{file}: cases must be a list");
        };
        for value in list {
            cases.push(case_of(&file, value, fixture));
        }
    }
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        panic!("two cases are named {:?}", w[0]);
    }
    cases
}

fn case_of(file: &str, value: &Json, fixture: &[Step]) -> Case {
    const KEYS: [&str; 10] = [
        "name",
        "setup",
        "op",
        "request",
        "request_text",
        "result",
        "error",
        "message",
        "surfaces",
        "why",
    ];
    let name = value
        .get("name")
        .and_then(Json::as_str)
        .unwrap_or_else(|| panic!("{file}: a case without a name: {}", short(&value.text())));
    let what = format!("{file}: {name}");
    let Json::Obj(members) = value else {
        unreachable!()
    };
    for (k, _) in members {
        assert!(KEYS.contains(&k.as_str()), "{what}: unknown key {k:?}");
    }
    let text = |key: &str| {
        value.get(key).map(|v| {
            v.as_str()
                .unwrap_or_else(|| panic!("{what}: {key} must be a string"))
        })
    };
    let setup = match value.get("setup") {
        None => Setup::Empty,
        Some(v) if v.as_str().as_deref() == Some("fixture") => Setup::Fixture,
        Some(Json::Arr(items)) => Setup::Steps(
            items
                .iter()
                .flat_map(|item| match item.as_str().as_deref() {
                    Some("fixture") => fixture.to_vec(),
                    _ => vec![step_of(item, &what)],
                })
                .collect(),
        ),
        Some(other) => panic!("{what}: bad setup {}", other.text()),
    };
    let request = match (value.get("request"), text("request_text")) {
        (Some(r), None) => r.clone().expand().text(),
        (None, Some(t)) => t,
        _ => panic!("{what}: give request or request_text, not both"),
    };
    let message: Vec<String> = match value.get("message") {
        None => Vec::new(),
        Some(Json::Arr(items)) => items
            .iter()
            .map(|m| m.as_str().expect("message items are strings"))
            .collect(),
        Some(_) => panic!("{what}: message must be a list of strings"),
    };
    let expect = match (value.get("result"), text("error")) {
        (Some(r), None) => {
            assert!(message.is_empty(), "{what}: message goes with error");
            Expect::Result(r.clone().expand())
        }
        (None, Some(code)) => Expect::Error { code, message },
        _ => panic!("{what}: give result or error, not both"),
    };
    let surfaces = value.get("surfaces").map(|s| match s {
        Json::Arr(items) => items
            .iter()
            .map(|x| {
                let x = x.as_str().expect("surfaces are strings");
                assert!(SURFACES.contains(&x.as_str()), "{what}: no surface {x:?}");
                x
            })
            .collect(),
        _ => panic!("{what}: surfaces must be a list"),
    });
    assert_eq!(
        surfaces.is_some(),
        text("why").is_some(),
        "{what}: a case that names its surfaces says why"
    );
    Case {
        file: file.to_owned(),
        name,
        setup,
        op: text("op").unwrap_or_else(|| panic!("{what}: no op")),
        request,
        expect,
        surfaces,
    }
}

// -------------------------------------------------------------------------------------
// Running
// -------------------------------------------------------------------------------------

fn ok<S: Surface>(surface: &S, store: &S::Store, op: &str, request: &str) -> Json {
    match surface.call(store, op, request) {
        Ok(text) => Json::parse(&text).unwrap_or_else(|e| panic!("{op}: not JSON ({e}): {text}")),
        Err(f) => panic!("{op} {request} failed: {}: {}", f.code, f.message),
    }
}

fn run_steps<S: Surface>(s: &S, store: &S::Store, steps: &[Step]) -> Result<(), String> {
    for (i, step) in steps.iter().enumerate() {
        if let Err(f) = s.call(store, &step.op, &step.request) {
            return Err(format!(
                "setup step {i} ({} {}) failed: {}: {}",
                step.op, step.request, f.code, f.message
            ));
        }
    }
    Ok(())
}

fn setup_steps<'a>(setup: &'a Setup, fixture: &'a [Step]) -> &'a [Step] {
    match setup {
        Setup::Empty => &[],
        Setup::Fixture => fixture,
        Setup::Steps(steps) => steps,
    }
}

/// Everything observable: every task, and the summaries of [`SNAPSHOT_AGENTS`].
fn snapshot<S: Surface>(s: &S, store: &S::Store) -> Vec<Json> {
    let mut all = vec![ok(s, store, "query_tasks", "{}")];
    for agent in SNAPSHOT_AGENTS {
        all.push(ok(
            s,
            store,
            "summary",
            &format!(r#"{{"agent_id":"{agent}"}}"#),
        ));
    }
    all
}

/// The IDs the next tasks of marketing-lead and new-agent get.
fn probe<S: Surface>(s: &S, store: &S::Store) -> [String; 2] {
    ["marketing-lead", "new-agent"].map(|agent| {
        let request = format!(r#"{{"agent_id":"{agent}","task":{{"title":"probe"}}}}"#);
        let task = ok(s, store, "create_task", &request);
        task.get("id")
            .and_then(Json::as_str)
            .expect("a task has an id")
    })
}

fn expected_probe<S: Surface>(s: &S, setup: &Setup) -> [String; 2] {
    match setup {
        Setup::Empty => ["MKT-001".into(), "NEW-001".into()],
        Setup::Fixture => ["MKT-005".into(), "NEW-001".into()],
        // What a store with the same setup and no refused call gives.
        Setup::Steps(steps) => {
            let control = s.open();
            run_steps(s, &control, steps).expect("the control store's setup");
            probe(s, &control)
        }
    }
}

/// Runs one case on a fresh store; returns what went wrong.
pub fn run_case<S: Surface>(s: &S, case: &Case, fixture: &[Step]) -> Vec<String> {
    let store = s.open();
    if let Err(e) = run_steps(s, &store, setup_steps(&case.setup, fixture)) {
        return vec![e];
    }
    let before = matches!(case.expect, Expect::Error { .. }).then(|| snapshot(s, &store));
    let outcome = s.call(&store, &case.op, &case.request);
    let mut problems = Vec::new();
    match (&case.expect, outcome) {
        (Expect::Result(expected), Ok(text)) => match Json::parse(&text) {
            Ok(actual) => {
                if !is_compact(&text) {
                    problems.push(format!("the result is not compact JSON: {}", short(&text)));
                }
                mismatches(expected, &actual, "$", &mut problems);
            }
            Err(e) => problems.push(format!("the result is not JSON ({e}): {}", short(&text))),
        },
        (Expect::Result(_), Err(f)) => problems.push(format!(
            "expected success, got {}: {}",
            f.code,
            short(&f.message)
        )),
        (Expect::Error { code, .. }, Ok(text)) => {
            problems.push(format!("expected {code}, got success: {}", short(&text)));
        }
        (Expect::Error { code, message }, Err(f)) => {
            if f.code != *code {
                problems.push(format!(
                    "expected {code}, got {}: {}",
                    f.code,
                    short(&f.message)
                ));
            }
            for needle in message {
                if !f.message.contains(needle.as_str()) {
                    problems.push(format!(
                        "{needle:?} is not in the message {:?}",
                        short(&f.message)
                    ));
                }
            }
            if f.message.is_empty() || f.message.len() >= MAX_MESSAGE {
                problems.push(format!("a message of {} bytes", f.message.len()));
            }
            if Some(snapshot(s, &store)) != before {
                problems.push("a refused call wrote something".into());
            }
            let (got, want) = (probe(s, &store), expected_probe(s, &case.setup));
            if got != want {
                problems.push(format!(
                    "a refused call took a number or registered an agent: the next IDs are {got:?}, not {want:?}"
                ));
            }
        }
    }
    problems
}

fn panic_text(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "a panic".into())
}

/// Runs every case of `dir` that applies to `S::NAME` on `threads` threads, each on a
/// fresh store; prints the counts and time, and panics listing every failed case.
///
/// `CONFORMANCE_FILTER=text` runs only the cases whose name contains `text`.
pub fn run<S: Surface>(surface: &S, dir: &Path, threads: usize) {
    let start = Instant::now();
    let fixture = load_fixture(dir);
    let cases = load_cases(dir, &fixture);
    assert!(cases.len() >= 150, "only {} cases", cases.len());
    let filter = std::env::var("CONFORMANCE_FILTER").unwrap_or_default();
    let mine: Vec<&Case> = cases
        .iter()
        .filter(|c| c.applies_to(S::NAME) && c.name.contains(filter.as_str()))
        .collect();
    if filter.is_empty() {
        assert!(
            mine.len() >= 150,
            "only {} cases for {}",
            mine.len(),
            S::NAME
        );
    }
    let next = AtomicUsize::new(0);
    let failures: Mutex<Vec<(&Case, Vec<String>)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                while let Some(case) = mine.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let problems =
                        catch_unwind(AssertUnwindSafe(|| run_case(surface, case, &fixture)))
                            .unwrap_or_else(|panic| vec![panic_text(panic)]);
                    if !problems.is_empty() {
                        failures.lock().unwrap().push((case, problems));
                    }
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap();
    failures.sort_by(|a, b| (&a.0.file, &a.0.name).cmp(&(&b.0.file, &b.0.name)));
    let mut per_file: Vec<(&str, usize)> = Vec::new();
    for case in &mine {
        match per_file.iter_mut().find(|(f, _)| *f == case.file) {
            Some((_, n)) => *n += 1,
            None => per_file.push((&case.file, 1)),
        }
    }
    println!(
        "conformance ({}): {} of {} cases in {:.1} s, {} failed; {}",
        S::NAME,
        mine.len(),
        cases.len(),
        start.elapsed().as_secs_f64(),
        failures.len(),
        per_file
            .iter()
            .map(|(f, n)| format!("{f} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !failures.is_empty() {
        let mut report = String::new();
        for (case, problems) in &failures {
            let _ = writeln!(report, "{}: {}", case.file, case.name);
            for p in problems {
                let _ = writeln!(report, "    {p}");
            }
        }
        panic!(
            "{} of {} conformance cases failed on {}:\n{report}",
            failures.len(),
            mine.len(),
            S::NAME
        );
    }
}
