//! Helpers for the tests of the `agent-backlog` binary: temp folders, running the
//! command line, a server on a free loopback port, and a tiny HTTP/1.1 client over
//! `std::net::TcpStream` (so the tests see every byte: status, headers, body).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_agent-backlog");

/// Upper bound for anything a test waits for; only reached when something hangs.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A fresh folder under cargo's temp dir for tests, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new, empty folder whose name contains `tag`.
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "cli-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A path inside the folder.
    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What one run of the command line did.
#[derive(Debug)]
pub struct Run {
    /// The exit status (-1 when killed by a signal).
    pub code: i32,
    /// Everything printed on stdout.
    pub stdout: String,
    /// Everything printed on stderr.
    pub stderr: String,
}

impl Run {
    /// stdout parsed as one JSON value.
    pub fn json(&self) -> Value {
        assert!(
            self.stdout.ends_with('\n') && self.stdout.lines().count() == 1,
            "not one line: {:?}",
            self.stdout
        );
        let value = parse_checked(&self.stdout, None);
        // Compact: as long as serde_json's compact text of the same value (which
        // differs only in key order), so there is no insignificant white space.
        assert_eq!(
            self.stdout.trim_end().len(),
            value.to_string().len(),
            "not compact: {:?}",
            self.stdout
        );
        value
    }

    /// stderr parsed as the error JSON; returns its code.
    pub fn error_code(&self) -> String {
        let v: Value = serde_json::from_str(&self.stderr)
            .unwrap_or_else(|e| panic!("stderr is not JSON ({e}): {:?}", self.stderr));
        v["error"]["code"].as_str().unwrap().to_owned()
    }
}

/// A command for the binary with no AGENT_BACKLOG_DB from the caller's environment.
pub fn command() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("AGENT_BACKLOG_DB");
    cmd.env_remove("AGENT_BACKLOG_ACTOR");
    cmd
}

/// Runs `cmd` to its end.
pub fn finish(cmd: &mut Command) -> Run {
    let out = cmd.stdin(Stdio::null()).output().expect("the binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// Runs `agent-backlog --db DB ARGS...`.
pub fn cli(db: &Path, args: &[&str]) -> Run {
    finish(command().arg("--db").arg(db).args(args))
}

/// Runs `agent-backlog --db DB ARGS...` and checks that it succeeded; returns stdout as JSON.
pub fn ok(db: &Path, args: &[&str]) -> Value {
    let run = cli(db, args);
    assert_eq!(run.code, 0, "{args:?} failed: {run:?}");
    run.json()
}

/// The lines a server printed on stderr, with a way to wait for one.
#[derive(Default)]
struct Log {
    /// The lines, and whether stderr was closed (the server exited).
    lines: Mutex<(Vec<String>, bool)>,
    changed: Condvar,
}

/// `agent-backlog serve` on a free loopback port, with its own temp database.
pub struct Server {
    child: Child,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The database file.
    pub db: PathBuf,
    log: Arc<Log>,
    _dir: Option<TempDir>,
}

impl Server {
    /// Starts a server on 127.0.0.1 with a free port and waits until it listens.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Like [`Server::start`], with more options for `serve` (e.g. `--busy-timeout-ms 0`).
    pub fn start_with(extra: &[&str]) -> Server {
        let dir = TempDir::new("server");
        let db = dir.file("backlogs.db");
        let mut server = Server::start_on(&db, extra);
        server._dir = Some(dir);
        server
    }

    /// A server on the database file `db` (which outlives it: a test may stop it and
    /// start another on the same file).
    pub fn start_on(db: &Path, extra: &[&str]) -> Server {
        let db = db.to_path_buf();
        let mut child = command()
            .arg("--db")
            .arg(&db)
            .args(["serve", "--host", "127.0.0.1", "--port", "0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server starts");
        let log = Arc::new(Log::default());
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            // Keep reading until the server exits, so that it never blocks on a full pipe.
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lines.lock().unwrap().0.push(line);
                sink.changed.notify_all();
            }
            sink.lines.lock().unwrap().1 = true;
            sink.changed.notify_all();
        });
        let mut server = Server {
            child,
            addr: "127.0.0.1:1".parse().unwrap(),
            db,
            log,
            _dir: None,
        };
        let line = server.wait_for_log("listening on http://");
        let url = line.split("http://").nth(1).unwrap();
        let addr = url.split_whitespace().next().unwrap();
        server.addr = addr.parse().expect("the startup line names the address");
        assert!(server.addr.ip().is_loopback());
        assert_ne!(server.addr.port(), 0);
        server
    }

    /// Waits for a stderr line containing `needle` and returns it.
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        let mut log = self.log.lines.lock().unwrap();
        loop {
            let (lines, closed) = &*log;
            if let Some(line) = lines.iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero() && !closed,
                "the server never printed {needle:?}; it printed {lines:?}"
            );
            log = self.log.changed.wait_timeout(log, left).unwrap().0;
        }
    }

    /// Every stderr line so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lines.lock().unwrap().0.clone()
    }

    /// Sends a signal by name (`TERM`, `INT`) to the server process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("sh")
            .args(["-c", &format!("kill -s {name} {}", self.child.id())])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the server to exit (it must, within [`PATIENCE`]).
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A request to this server.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Response {
        request(self.addr, method, path, headers, body)
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], None)
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> Response {
        self.request("DELETE", path, &[], None)
    }

    /// `method path` with a JSON body and `Content-Type: application/json`.
    pub fn send_json(&self, method: &str, path: &str, body: &str) -> Response {
        self.request(
            method,
            path,
            &[("Content-Type", "application/json")],
            Some(body.as_bytes()),
        )
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, body: &str) -> Response {
        self.send_json("POST", path, body)
    }

    /// `PATCH path` with a JSON body.
    pub fn patch(&self, path: &str, body: &str) -> Response {
        self.send_json("PATCH", path, body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One HTTP response.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers, names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// The body (chunked encoding removed).
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of that (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("the body is UTF-8")
    }

    /// The body as JSON; also checks the Content-Type.
    pub fn json(&self) -> Value {
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self:?}"
        );
        parse_checked(self.text(), None)
    }

    /// Checks the status and returns the JSON body.
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "body: {}", self.text());
        self.json()
    }

    /// Checks the status, that the body is the error JSON with that code, and returns
    /// the message.
    pub fn expect_error(&self, status: u16, code: &str) -> String {
        let body = self.expect(status);
        let error = body["error"].as_object().expect("an error object");
        assert_eq!(error.len(), 2, "{body}");
        assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
        assert_eq!(error["code"], code, "{body}");
        error["message"].as_str().unwrap().to_owned()
    }
}

/// Writes the request head (and body) on `stream`; `Connection: close` is always sent.
pub fn write_request(
    stream: &mut TcpStream,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let declares_length = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-length"));
    if let (Some(body), false) = (body, declares_length) {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    if let Some(body) = body {
        stream.write_all(body).unwrap();
    }
    stream.flush().unwrap();
}

/// Connects to `addr` with generous read and write timeouts.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("the server accepts connections");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Sends one request on a new connection and reads the whole response.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Response {
    let mut stream = connect(addr);
    write_request(&mut stream, addr, method, path, headers, body);
    read_response(&mut stream)
}

/// Reads a response to the end of the connection.
pub fn read_response(stream: &mut TcpStream) -> Response {
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .expect("the response can be read");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        match headers.iter().find(|(n, _)| n == "content-length") {
            Some((_, len)) => {
                let len: usize = len.parse().unwrap();
                assert_eq!(rest.len(), len, "the body has the declared length");
                rest.to_vec()
            }
            None => rest.to_vec(),
        }
    };
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_text = std::str::from_utf8(&rest[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        rest = &rest[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// Holds SQLite's write lock on `db` until dropped (another process's long write).
pub struct WriteLock(rusqlite::Connection);

impl WriteLock {
    /// Takes the write lock with `BEGIN IMMEDIATE`.
    pub fn take(db: &Path) -> WriteLock {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        WriteLock(conn)
    }
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        let _ = self.0.execute_batch("ROLLBACK");
    }
}

/// A JSON document with the order of object keys kept (serde_json's `Value` sorts them).
#[derive(Debug)]
pub enum Ordered {
    /// An object's keys and values, in document order.
    Object(Vec<(String, Ordered)>),
    /// An array.
    Array(Vec<Ordered>),
    /// Anything else.
    Scalar,
}

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Ordered, A::Error> {
                let mut pairs = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, Ordered>()? {
                    pairs.push((k, v));
                }
                Ok(Ordered::Object(pairs))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<Ordered, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = s.next_element::<Ordered>()? {
                    items.push(v);
                }
                Ok(Ordered::Array(items))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_str<E>(self, _: &str) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
        }
        d.deserialize_any(V)
    }
}

impl Ordered {
    /// The keys of an object, in order (empty for anything else).
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Ordered::Object(pairs) => pairs.iter().map(|(k, _)| k.as_str()).collect(),
            _ => Vec::new(),
        }
    }
}

/// The keys of a task, in the contract's order.
pub const TASK_KEYS: [&str; 10] = [
    "id",
    "title",
    "description",
    "priority",
    "status",
    "created",
    "started",
    "completed",
    "result",
    "blocker",
];

/// Parses `text` as JSON and checks that every task in it (any object with an `id`,
/// but a dependency listing's `{"agent_id", "id", "status"}`) has every key of the
/// contract, in order (`agent_id` first in cross-agent lists),
/// and that the top-level object has `top` as its keys, in order, when given.
pub fn parse_checked(text: &str, top: Option<&[&str]>) -> Value {
    let ordered: Ordered =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"));
    if let Some(top) = top {
        assert_eq!(ordered.keys(), top, "{text}");
    }
    fn walk(node: &Ordered, text: &str) {
        match node {
            Ordered::Object(pairs) => {
                let keys = node.keys();
                if keys.contains(&"id") {
                    let own = if keys.first() == Some(&"agent_id") {
                        &keys[1..]
                    } else {
                        &keys[..]
                    };
                    // A dependency listing names tasks as {"agent_id", "id", "status"}.
                    if own != ["id", "status"] || keys.first() != Some(&"agent_id") {
                        assert_eq!(own, TASK_KEYS, "a task with the wrong keys in {text}");
                    }
                }
                pairs.iter().for_each(|(_, v)| walk(v, text));
            }
            Ordered::Array(items) => items.iter().for_each(|v| walk(v, text)),
            Ordered::Scalar => {}
        }
    }
    walk(&ordered, text);
    serde_json::from_str(text).unwrap()
}

/// Checks that `value` is a full task with an RFC 3339 `created` in UTC, whole seconds.
pub fn assert_task(value: &Value) {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("not a task: {value}"));
    assert_eq!(object.len(), TASK_KEYS.len(), "{value}");
    let created = value["created"].as_str().unwrap();
    assert_eq!(created.len(), 20, "{created}");
    assert!(
        created.ends_with('Z') && created.as_bytes()[10] == b'T',
        "{created}"
    );
}
