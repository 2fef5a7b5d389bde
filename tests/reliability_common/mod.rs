//! Helpers shared by the reliability tests (`tests/reliability_*.rs`): the size switch,
//! a seeded random generator, and child processes that re-execute the test binary,
//! always reaped and bounded in time.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// `AGENT_BACKLOG_STRESS=1` (as `make stress` sets it) selects the full sizes of
/// issue 5; otherwise the tests run a bounded version that finishes quickly.
pub fn stress() -> bool {
    matches!(std::env::var("AGENT_BACKLOG_STRESS").as_deref(), Ok(v) if !v.is_empty() && v != "0")
}

/// `small` for `make test`, `full` for `make stress`.
pub fn size(small: usize, full: usize) -> usize {
    if stress() {
        full
    } else {
        small
    }
}

/// How long any child may run before it is killed and the test fails. Only ever
/// reached when something hangs: nothing passes or fails by time.
pub const CHILD_DEADLINE: Duration = Duration::from_secs(600);

/// A small seeded generator (splitmix64): the seed is printed, so a failing run can be
/// repeated with `AGENT_BACKLOG_SEED=<seed>`.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The seed from `AGENT_BACKLOG_SEED`, or one from the clock; printed with `what`.
    pub fn from_env(what: &str) -> Rng {
        let seed = std::env::var("AGENT_BACKLOG_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("{what}: AGENT_BACKLOG_SEED={seed}");
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent` / 100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// This test binary, as a path that stays valid while this process runs: on Linux
/// `/proc/<this pid>/exe`, which still runs the same program after a rebuild replaced
/// the file in target/ (a long stress run in a tree where others build), and means
/// the same in any child (unlike `/proc/self/exe`).
pub fn this_binary() -> std::path::PathBuf {
    let proc_exe = std::path::PathBuf::from(format!("/proc/{}/exe", std::process::id()));
    if proc_exe.exists() {
        proc_exe
    } else {
        std::env::current_exe().unwrap()
    }
}

/// A command that runs the ignored test `name` of this same test binary as a child
/// process (the technique of `tests/concurrency.rs`).
pub fn child_test(name: &str) -> Command {
    let mut cmd = Command::new(this_binary());
    cmd.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    cmd
}

/// The same, running a copy of the test binary at `exe` (for a child that runs as
/// another user and may not reach the build folder).
pub fn child_test_at(exe: &Path, name: &str) -> Command {
    let mut cmd = Command::new(exe);
    cmd.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    cmd
}

/// Marks the lines a child reports, so that the test harness's own output (which may
/// share a line with the first report) is never mistaken for one.
pub const MARK: &str = "@@";

/// The report in a child's output line, if it holds one.
pub fn report(line: &str) -> Option<&str> {
    line.find(MARK).map(|at| &line[at + MARK.len()..])
}

/// Writes one report line in a single `write` call (so that it reaches the pipe whole
/// or not at all) and flushes it.
pub fn say(line: &str) {
    use std::io::Write;
    let text = format!("{MARK}{line}\n");
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).unwrap();
    out.flush().unwrap();
}

/// Waits for `child` at most `deadline`; past it the child is killed, reaped, and the
/// test fails.
pub fn wait_bounded(child: &mut Child, deadline: Duration, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} ran for more than {deadline:?} and was killed");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// A running child whose report lines arrive on a channel (read by a thread, so the
/// child never blocks on a full pipe). Dropping it kills and reaps the child.
pub struct Reporter {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    reader: Option<thread::JoinHandle<()>>,
}

impl Reporter {
    /// Spawns `cmd` with a piped stdout (stderr is inherited, so panics show).
    pub fn spawn(mut cmd: Command) -> Reporter {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        let reader = thread::spawn(move || {
            for line in BufReader::new(stdout).split(b'\n') {
                let Ok(line) = line else { break };
                // A line cut by a kill has no newline: `split` still yields it, but
                // only complete lines were written by `say`, so a cut one is a
                // harness line or empty; reports are recognized by their mark.
                let line = String::from_utf8_lossy(&line).into_owned();
                if let Some(r) = report(&line) {
                    if tx.send(r.to_owned()).is_err() {
                        break;
                    }
                }
            }
        });
        Reporter {
            child,
            lines,
            reader: Some(reader),
        }
    }

    /// The next report, or `None` when the child's output ended (it exited) or none
    /// came within the deadline.
    pub fn next(&self) -> Option<String> {
        self.lines.recv_timeout(CHILD_DEADLINE).ok()
    }

    /// SIGKILL (if still running), reap, and collect every report that was written
    /// before it died.
    pub fn kill(mut self) -> (ExitStatus, Vec<String>) {
        let _ = self.child.kill();
        let status = wait_bounded(&mut self.child, CHILD_DEADLINE, "a killed child");
        self.rest(status)
    }

    /// Waits for the child to exit by itself (bounded) and collects the remaining reports.
    pub fn finish(mut self, what: &str) -> (ExitStatus, Vec<String>) {
        let status = wait_bounded(&mut self.child, CHILD_DEADLINE, what);
        self.rest(status)
    }

    fn rest(&mut self, status: ExitStatus) -> (ExitStatus, Vec<String>) {
        // The pipe's write end is closed once the child is gone (it has no children
        // of its own), so the reader thread ends after the last buffered line.
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        (status, self.lines.try_iter().collect())
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `PRAGMA integrity_check` of the file at `path` through a plain connection.
pub fn integrity_check(path: &Path) -> String {
    let conn = rusqlite::Connection::open(path).unwrap();
    let rows: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    rows.join("; ")
}
