//! Issue 5, promise 4: storage faults are errors, not corruption.
//!
//! Each fault gives a `storage` error with a message that says what is wrong; the data
//! acknowledged before the fault is intact afterwards, and a store on a good file works:
//!
//! - **file size limit / disk full**: a child process with `RLIMIT_FSIZE` just above
//!   the file's size (and SIGXFSZ ignored, so the write fails with EFBIG instead of
//!   killing it) writes until a call fails;
//! - **read-only file, read-only folder**: a child process that cannot write the file
//!   or its folder. Tests run as root in CI, and root ignores permission bits, so as
//!   root the child drops to the `nobody` user (uid/gid 65534) — a copy of the test
//!   binary in the temp dir makes sure it can run; as another user, plain `chmod`;
//! - **a file that is not SQLite**, **another application's SQLite file**, **a newer
//!   schema version**: refused at open, the file left byte for byte as it was;
//! - **a corrupted file**: pages of a real database overwritten with garbage, all of
//!   them or a few random ones; no call panics or reports anything but `storage` (or
//!   a plain answer), and an open of the intact copy works.

mod common;
mod reliability_common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

use agent_backlog::{Error, ListQuery, NewTask, Status, Store, TaskPatch, TaskQuery};
use common::{snapshot, TempDir};
use reliability_common::{
    child_test, child_test_at, integrity_check, report, say, wait_bounded, Rng, CHILD_DEADLINE,
};
use serde_json::{json, Value};

const ENV_DB: &str = "AGENT_BACKLOG_FAULT_DB";
const ENV_LIMIT: &str = "AGENT_BACKLOG_FAULT_FSIZE";
const AGENT: &str = "fault-bot";

/// A file with `n` tasks of AGENT in every status, closed cleanly (no -wal left).
fn prepared(path: &Path, n: usize) {
    let store = Store::open(path).unwrap();
    store.set_prefix(AGENT, "FLT").unwrap();
    let tasks = (0..n)
        .map(|i| {
            NewTask::new(format!("task {i}"))
                .priority(1 + (i % 10) as i64)
                .description("d".repeat(200 + i % 300))
        })
        .collect();
    store.create_tasks(AGENT, tasks).unwrap();
    for _ in 0..n / 3 {
        let t = store.claim_next(AGENT).unwrap().unwrap();
        store
            .update_task(
                AGENT,
                &t.id,
                TaskPatch::new().status(Status::Complete).result("ok"),
            )
            .unwrap();
    }
    store.claim_next(AGENT).unwrap();
    store.close().unwrap();
}

/// The outcome of a call, as the children report it.
fn outcome<T: serde::Serialize>(result: agent_backlog::Result<T>) -> Value {
    match result {
        Ok(v) => json!({"ok": v}),
        Err(e) => json!({"code": e.code(), "message": e.to_string()}),
    }
}

fn assert_storage(what: &str, v: &Value, wording: &[&str]) {
    assert_eq!(v["code"], "storage", "{what}: {v}");
    let message = v["message"].as_str().unwrap();
    assert!(
        wording.iter().any(|w| message.contains(w)),
        "{what}: the message should say one of {wording:?}: {message}"
    );
}

fn assert_storage_err(what: &str, err: &Error, wording: &[&str]) {
    assert!(matches!(err, Error::Storage { .. }), "{what}: {err:?}");
    assert_storage(
        what,
        &json!({"code": err.code(), "message": err.to_string()}),
        wording,
    );
}

/// Runs a child and returns its reports, parsed.
fn run_child(mut cmd: Command, what: &str) -> Vec<Value> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::BufReader::new(stdout), &mut text).unwrap();
        text
    });
    let status = wait_bounded(&mut child, CHILD_DEADLINE, what);
    let text = reader.join().unwrap();
    assert!(status.success(), "{what} failed: {status}");
    text.lines()
        .filter_map(report)
        .map(|r| serde_json::from_str(r).unwrap())
        .collect()
}

// ---------------------------------------------------------------- file size limit

/// Entry point of the file-size child: with RLIMIT_FSIZE set, writes tasks with 8 KB
/// descriptions, reporting each acknowledged ID, until a call fails; then reports the
/// error and whether reads still work.
#[test]
#[ignore = "run as a child process by file_size_limit_is_a_storage_error"]
fn fsize_child() {
    let path = std::env::var(ENV_DB).expect("run by file_size_limit_is_a_storage_error");
    let limit: u64 = std::env::var(ENV_LIMIT).unwrap().parse().unwrap();
    // SAFETY: plain libc calls with valid arguments, before any other thread exists
    // that could care about the signal disposition.
    unsafe {
        assert_ne!(libc::signal(libc::SIGXFSZ, libc::SIG_IGN), libc::SIG_ERR);
        let rl = libc::rlimit {
            rlim_cur: limit as libc::rlim_t,
            rlim_max: limit as libc::rlim_t,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &rl), 0);
    }
    let store = Store::open(&path).unwrap();
    let description = "x".repeat(8 * 1024);
    for i in 0..100_000 {
        let r = if i % 5 == 4 {
            store
                .create_tasks(
                    AGENT,
                    (0..3)
                        .map(|k| NewTask::new(format!("batch {i}.{k}")).description(&description))
                        .collect(),
                )
                .map(|b| b.tasks.into_iter().map(|t| t.id).collect::<Vec<_>>())
        } else {
            store
                .create_task(
                    AGENT,
                    NewTask::new(format!("big {i}")).description(&description),
                )
                .map(|t| vec![t.id])
        };
        match r {
            Ok(ids) => say(&json!({"acked": ids}).to_string()),
            Err(e) => {
                say(&json!({"failed": outcome::<()>(Err(e))}).to_string());
                break;
            }
        }
    }
    // The store is still usable for reads, and for writes that fit.
    say(&json!({"summary": outcome(store.summary(AGENT))}).to_string());
    let claimed = store.claim_next(AGENT).map(|t| t.map(|t| t.id));
    say(&json!({"claim": outcome(claimed)}).to_string());
}

#[test]
fn file_size_limit_is_a_storage_error() {
    let dir = TempDir::new("fsize");
    let path = dir.file("fsize.db");
    prepared(&path, 60);
    let before = Store::open(&path).unwrap().summary(AGENT).unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    // Room for a few writes: the WAL (a new file) and the database may grow to it.
    let limit = size + 256 * 1024;
    let mut cmd = child_test("fsize_child");
    cmd.env(ENV_DB, &path).env(ENV_LIMIT, limit.to_string());
    let reports = run_child(cmd, "the file-size child");

    let acked: Vec<String> = reports
        .iter()
        .filter_map(|r| r.get("acked"))
        .flat_map(|ids| {
            ids.as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_str().unwrap().to_owned())
        })
        .collect();
    let failed = reports
        .iter()
        .find_map(|r| r.get("failed"))
        .expect("no write failed under the file size limit");
    assert_storage(
        "a write past the file size limit",
        failed,
        &["disk is full", "size limit", "I/O error"],
    );
    let summary = reports.iter().find_map(|r| r.get("summary")).unwrap();
    assert!(
        summary.get("ok").is_some(),
        "reads failed after the fault: {summary}"
    );
    let claim = reports.iter().find_map(|r| r.get("claim")).unwrap();
    assert!(
        claim.get("ok").is_some() || claim["code"] == "storage",
        "{claim}"
    );

    // A fresh open without the limit: the file is sound, holds every acknowledged
    // task, and takes writes again.
    assert_eq!(integrity_check(&path), "ok");
    let store = Store::open(&path).unwrap();
    for id in &acked {
        let task = store.get_task(AGENT, id).unwrap();
        assert!(task
            .description
            .as_ref()
            .is_some_and(|d| d.len() == 8 * 1024));
    }
    let after = store.summary(AGENT).unwrap();
    assert!(after.total >= before.total + acked.len() as u64);
    assert!(after.total <= before.total + acked.len() as u64 + 3);
    store
        .create_task(AGENT, NewTask::new("after the fault"))
        .unwrap();
    println!(
        "file size limit: {} writes acknowledged before the limit, then: {}",
        acked.len(),
        failed["message"]
    );
}

// ---------------------------------------------------------------- disk full

const ENV_DIR: &str = "AGENT_BACKLOG_FAULT_DIR";

/// Entry point of the disk-full child, which runs in its own mount namespace where
/// its folder is a 2 MiB tmpfs: writes tasks, fills the file system, checks that
/// writes fail with the disk-full error and reads go on, frees the space, checks that
/// writes work again, then reopens and checks every acknowledged task.
#[test]
#[ignore = "run as a child process by disk_full_is_a_storage_error"]
fn disk_full_child() {
    let dir = std::path::PathBuf::from(
        std::env::var(ENV_DIR).expect("run by disk_full_is_a_storage_error"),
    );
    let path = dir.join("full.db");
    let store = Store::open(&path).unwrap();
    let mut acked = Vec::new();
    for i in 0..20 {
        acked.push(
            store
                .create_task(AGENT, NewTask::new(format!("before {i}")))
                .unwrap()
                .id,
        );
    }
    // Fill the file system.
    let filler_path = dir.join("filler");
    let mut filler = std::fs::File::create(&filler_path).unwrap();
    let chunk = vec![0u8; 16 * 1024];
    loop {
        use std::io::Write;
        if filler
            .write_all(&chunk)
            .and_then(|_| filler.sync_all())
            .is_err()
        {
            break;
        }
    }
    let description = "x".repeat(8 * 1024);
    let mut failed = None;
    for i in 0..1000 {
        match store.create_task(
            AGENT,
            NewTask::new(format!("full {i}")).description(&description),
        ) {
            Ok(t) => acked.push(t.id),
            Err(e) => {
                failed = Some(outcome::<()>(Err(e)));
                break;
            }
        }
    }
    say(&json!({"failed": failed}).to_string());
    let claim = store.claim_next(AGENT).map(|t| t.map(|t| t.id));
    say(&json!({"claim": outcome(claim)}).to_string());
    say(&json!({"summary": outcome(store.summary(AGENT))}).to_string());
    // Free the space: the same store writes again.
    drop(filler);
    std::fs::remove_file(&filler_path).unwrap();
    let retried = store
        .create_task(AGENT, NewTask::new("after"))
        .map(|t| t.id);
    if let Ok(id) = &retried {
        acked.push(id.clone());
    }
    say(&json!({"retry": outcome(retried)}).to_string());
    store.close().unwrap();
    // A fresh open: the file is sound and holds every acknowledged task.
    let check = integrity_check(&path);
    let store = Store::open(&path).unwrap();
    let missing: Vec<&String> = acked
        .iter()
        .filter(|id| store.get_task(AGENT, id).is_err())
        .collect();
    say(&json!({"integrity": check, "acked": acked.len(), "missing": missing}).to_string());
}

#[test]
fn disk_full_is_a_storage_error() {
    if uid() != 0 {
        println!("SKIPPED disk_full_is_a_storage_error: mounting a small tmpfs needs root");
        return;
    }
    let dir = TempDir::new("diskfull");
    let exe = reliability_common::this_binary();
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs -o size=2m agent-backlog-test \"$0\" || exit 77; exec \"$@\"")
        .arg(dir.path())
        .arg(&exe)
        .args([
            "disk_full_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ENV_DIR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let Ok(mut child) = cmd.spawn() else {
        println!("SKIPPED disk_full_is_a_storage_error: the unshare command is not available");
        return;
    };
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::BufReader::new(stdout), &mut text).unwrap();
        text
    });
    let status = wait_bounded(&mut child, CHILD_DEADLINE, "the disk-full child");
    let text = reader.join().unwrap();
    if status.code() == Some(77) || (status.code() == Some(1) && text.is_empty()) {
        println!("SKIPPED disk_full_is_a_storage_error: cannot mount a tmpfs in a new mount namespace here");
        return;
    }
    assert!(status.success(), "the disk-full child failed: {status}");
    let reports: Vec<Value> = text
        .lines()
        .filter_map(report)
        .map(|r| serde_json::from_str(r).unwrap())
        .collect();
    let get = |key: &str| reports.iter().find_map(|r| r.get(key)).unwrap().clone();
    let failed = get("failed");
    assert!(!failed.is_null(), "no write failed on a full file system");
    assert_storage("a write on a full disk", &failed, &["the disk is full"]);
    let claim = get("claim");
    assert!(
        claim.get("ok").is_some() || claim["code"] == "storage",
        "{claim}"
    );
    assert!(
        get("summary").get("ok").is_some(),
        "reads failed on a full disk"
    );
    assert!(
        get("retry").get("ok").is_some(),
        "no write after freeing space: {}",
        get("retry")
    );
    assert_eq!(get("integrity"), "ok");
    assert_eq!(get("missing"), json!([]), "acknowledged tasks were lost");
    println!(
        "disk full: {} writes acknowledged, then: {}; writes work again once space is freed",
        get("acked"),
        failed["message"]
    );
}

// ---------------------------------------------------------------- read-only

/// The uid of this process.
fn uid() -> u32 {
    std::fs::metadata("/proc/self").unwrap().uid()
}

const NOBODY: u32 = 65534;

/// Entry point of the read-only child: opens, reads, writes; reports each outcome.
#[test]
#[ignore = "run as a child process by read_only_file_and_folder_are_storage_errors"]
fn read_only_child() {
    let path = std::env::var(ENV_DB).expect("run by read_only_file_and_folder_are_storage_errors");
    let store = match Store::open(&path) {
        Ok(store) => store,
        Err(e) => {
            say(&json!({"open": outcome::<()>(Err(e))}).to_string());
            return;
        }
    };
    say(&json!({"open": {"ok": null}}).to_string());
    say(&json!({"read": outcome(store.summary(AGENT))}).to_string());
    let listed = store.list_tasks(AGENT, ListQuery::new()).map(|l| l.total);
    say(&json!({"list": outcome(listed)}).to_string());
    let created = store
        .create_task(AGENT, NewTask::new("never written"))
        .map(|t| t.id);
    say(&json!({"write": outcome(created)}).to_string());
    let claimed = store.claim_next(AGENT).map(|t| t.map(|t| t.id));
    say(&json!({"claim": outcome(claimed)}).to_string());
}

/// A command running `read_only_child` on `db` as a user that cannot write it.
fn read_only_command(dir: &TempDir, db: &Path) -> Command {
    let mut cmd = if uid() == 0 {
        // root ignores permission bits: run as nobody, from a copy of this binary
        // that nobody can surely reach.
        let exe = dir.file("test-binary");
        if !exe.exists() {
            std::fs::copy(reliability_common::this_binary(), &exe).unwrap();
            std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let mut cmd = child_test_at(&exe, "read_only_child");
        std::os::unix::process::CommandExt::uid(&mut cmd, NOBODY);
        std::os::unix::process::CommandExt::gid(&mut cmd, NOBODY);
        cmd
    } else {
        child_test("read_only_child")
    };
    cmd.env(ENV_DB, db);
    cmd
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn read_only_file_and_folder_are_storage_errors() {
    let dir = TempDir::new("readonly");
    // The folders must be reachable by the child's user.
    chmod(dir.path(), 0o755);
    if uid() == 0 {
        println!("running as root: the read-only children run as uid/gid {NOBODY} (nobody)");
    }

    // 1. A read-only file in a writable folder.
    let ro_file_dir = dir.file("ro-file");
    std::fs::create_dir(&ro_file_dir).unwrap();
    let db = ro_file_dir.join("b.db");
    prepared(&db, 30);
    let before = snapshot(&Store::open(&db).unwrap());
    chmod(&db, 0o444);
    chmod(&ro_file_dir, 0o777);
    let reports = run_child(read_only_command(&dir, &db), "the read-only-file child");
    check_read_only("read-only file", &reports);
    chmod(&db, 0o644);
    assert_eq!(integrity_check(&db), "ok");
    let store = Store::open(&db).unwrap();
    assert_eq!(snapshot(&store), before, "the read-only file changed");
    store
        .create_task(AGENT, NewTask::new("writable again"))
        .unwrap();
    drop(store);

    // 2. A writable file in a read-only folder (no -wal or -shm can be made).
    let ro_dir = dir.file("ro-folder");
    std::fs::create_dir(&ro_dir).unwrap();
    let db = ro_dir.join("b.db");
    prepared(&db, 30);
    let before = snapshot(&Store::open(&db).unwrap());
    chmod(&db, 0o666);
    chmod(&ro_dir, 0o555);
    let reports = run_child(read_only_command(&dir, &db), "the read-only-folder child");
    check_read_only("read-only folder", &reports);
    // 3. A new file in a read-only folder.
    let reports = run_child(
        read_only_command(&dir, &ro_dir.join("new.db")),
        "the new-file child",
    );
    let open = &reports[0]["open"];
    assert_storage(
        "a new file in a read-only folder",
        open,
        &["cannot be opened"],
    );
    assert!(!ro_dir.join("new.db").exists());
    chmod(&ro_dir, 0o755);
    let store = Store::open(&db).unwrap();
    assert_eq!(
        snapshot(&store),
        before,
        "the file in the read-only folder changed"
    );
    store
        .create_task(AGENT, NewTask::new("writable again"))
        .unwrap();
}

/// Either the open is refused, or reads work and every write is refused; every
/// error is `storage` and says why.
fn check_read_only(what: &str, reports: &[Value]) {
    let wording = ["read-only", "cannot be opened", "denied"];
    let open = &reports[0]["open"];
    for r in reports {
        let (op, v) = r.as_object().unwrap().iter().next().unwrap();
        match v.get("message") {
            Some(m) => println!("{what}: {op}: storage error: {m}"),
            None => println!("{what}: {op}: ok"),
        }
    }
    if open.get("ok").is_none() {
        assert_storage(&format!("{what}: open"), open, &wording);
        return;
    }
    for r in &reports[1..] {
        let (op, v) = r.as_object().unwrap().iter().next().unwrap();
        match op.as_str() {
            "read" | "list" => assert!(v.get("ok").is_some(), "{what}: {op} failed: {v}"),
            _ => assert_storage(&format!("{what}: {op}"), v, &wording),
        }
    }
}

// ---------------------------------------------------------------- foreign and newer files

fn assert_refused_untouched(path: &Path, wording: &[&str]) {
    let bytes = std::fs::read(path).unwrap();
    let err = match Store::open(path) {
        Ok(_) => panic!("{} was opened", path.display()),
        Err(err) => err,
    };
    assert_storage_err(&path.display().to_string(), &err, wording);
    assert_eq!(
        std::fs::read(path).unwrap(),
        bytes,
        "the refused file was modified"
    );
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_untouched() {
    let dir = TempDir::new("notdb");
    let text = dir.file("notes.txt");
    std::fs::write(&text, "these are my notes, not a database\n".repeat(200)).unwrap();
    assert_refused_untouched(&text, &["not an SQLite database"]);
    let binary = dir.file("random.bin");
    let mut rng = Rng::new(7);
    let bytes: Vec<u8> = (0..20_000).map(|_| rng.next_u64() as u8).collect();
    std::fs::write(&binary, bytes).unwrap();
    assert_refused_untouched(&binary, &["not an SQLite database"]);
    // A good file still opens in the same process.
    let good = dir.file("good.db");
    prepared(&good, 10);
    assert_eq!(
        Store::open(&good).unwrap().summary(AGENT).unwrap().total,
        10
    );
}

#[test]
fn another_applications_database_is_refused_untouched() {
    let dir = TempDir::new("foreign");
    let path = dir.file("other.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine');")
            .unwrap();
    }
    assert_refused_untouched(&path, &["agent-backlog did not create"]);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "application_id", 0x1234_5678)
            .unwrap();
    }
    assert_refused_untouched(&path, &["another application"]);
}

#[test]
fn a_newer_schema_version_is_refused_untouched() {
    let dir = TempDir::new("newer");
    let path = dir.file("newer.db");
    prepared(&path, 20);
    let newer = agent_backlog::SCHEMA_VERSION + 1;
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", newer).unwrap();
    }
    assert_refused_untouched(&path, &["newer", "upgrade agent-backlog"]);
    // Back to the version it understands, the data is all there.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", agent_backlog::SCHEMA_VERSION)
            .unwrap();
    }
    assert_eq!(
        Store::open(&path).unwrap().summary(AGENT).unwrap().total,
        20
    );
}

// ---------------------------------------------------------------- corruption

const PAGE: usize = 4096;

/// What the calls of the API did on a damaged file.
#[derive(Default)]
struct Damage {
    /// The messages of the `storage` errors.
    errors: Vec<String>,
    /// Tasks returned without an error that break the contract (SQLite does not
    /// check CHECK constraints when it reads, so a flipped bit in a record can come
    /// back as a plain, wrong value).
    out_of_contract: usize,
}

/// Whether a task returned by the store keeps the contract's rules.
fn in_contract(t: &agent_backlog::Task) -> bool {
    let stamp = |s: &Option<String>| s.as_ref().is_none_or(|s| s.len() == 20 && s.ends_with('Z'));
    let shape = match t.status {
        Status::Queued => {
            t.started.is_none()
                && t.completed.is_none()
                && t.result.is_none()
                && t.blocker.is_none()
        }
        Status::InProgress => {
            t.started.is_some()
                && t.completed.is_none()
                && t.result.is_none()
                && t.blocker.is_none()
        }
        Status::Blocked => t.blocker.is_some() && t.completed.is_none() && t.result.is_none(),
        Status::Complete => t.started.is_some() && t.completed.is_some() && t.blocker.is_none(),
    };
    (1..=10).contains(&t.priority)
        && shape
        && stamp(&Some(t.created.clone()))
        && stamp(&t.started)
        && stamp(&t.completed)
        && !t.title.trim().is_empty()
        && t.title.chars().count() <= 500
}

/// Every call of the API on a possibly damaged file: each one must succeed or give a
/// `storage` error (a damaged index may also make a task look absent: `not_found`);
/// never a panic, never another code.
fn exercise(path: &Path) -> Damage {
    let mut damage = Damage::default();
    let mut check = |what: &str, r: agent_backlog::Result<Vec<agent_backlog::Task>>| match r {
        Ok(tasks) => damage.out_of_contract += tasks.iter().filter(|t| !in_contract(t)).count(),
        Err(e @ Error::Storage { .. }) => damage.errors.push(e.to_string()),
        Err(Error::NotFound(_)) if what.contains("task") => {}
        Err(e) => panic!("{what} on a damaged file gave [{}] {e}", e.code()),
    };
    let store = match Store::open(path) {
        Ok(store) => store,
        Err(e) => {
            check("open", Err(e));
            return damage;
        }
    };
    check(
        "list_tasks",
        store.list_tasks(AGENT, ListQuery::new()).map(|l| l.tasks),
    );
    check(
        "list_tasks queued",
        store
            .list_tasks(AGENT, ListQuery::new().status(Status::Queued).limit(5))
            .map(|l| l.tasks),
    );
    let tasks = |q: agent_backlog::QueryResult| q.tasks.into_iter().map(|t| t.task).collect();
    check(
        "query_tasks",
        store.query_tasks(TaskQuery::new()).map(tasks),
    );
    check(
        "query_tasks priority",
        store.query_tasks(TaskQuery::new().priority(3)).map(tasks),
    );
    check("summary", store.summary(AGENT).map(|_| vec![]));
    check(
        "get_task",
        store.get_task(AGENT, "FLT-100").map(|t| vec![t]),
    );
    check(
        "claim_next",
        store.claim_next(AGENT).map(|t| t.into_iter().collect()),
    );
    check(
        "create_task",
        store
            .create_task(AGENT, NewTask::new("new"))
            .map(|t| vec![t]),
    );
    check(
        "update_task",
        store
            .update_task(AGENT, "FLT-150", TaskPatch::new().priority(1))
            .map(|t| vec![t]),
    );
    check(
        "delete_task",
        store.delete_task(AGENT, "FLT-200").map(|_| vec![]),
    );
    damage
}

fn pages(path: &Path) -> usize {
    std::fs::metadata(path).unwrap().len() as usize / PAGE
}

/// Overwrites whole pages with random bytes.
fn garble(path: &Path, pages: &[usize], rng: &mut Rng) {
    let mut bytes = std::fs::read(path).unwrap();
    for &p in pages {
        for b in &mut bytes[p * PAGE..(p + 1) * PAGE] {
            *b = rng.next_u64() as u8;
        }
    }
    std::fs::write(path, bytes).unwrap();
}

/// Flips one random bit in each of `count` random bytes past the header page.
fn flip(path: &Path, count: usize, rng: &mut Rng) {
    let mut bytes = std::fs::read(path).unwrap();
    for _ in 0..count {
        let at = rng.range(PAGE as u64, bytes.len() as u64 - 1) as usize;
        bytes[at] ^= 1 << rng.below(8);
    }
    std::fs::write(path, bytes).unwrap();
}

/// A damaged copy of `good`, exercised, then removed (with its -wal and -shm).
fn damaged_copy(dir: &TempDir, good: &Path, name: &str, damage: impl FnOnce(&Path)) -> Damage {
    let bad = dir.file(name);
    std::fs::copy(good, &bad).unwrap();
    damage(&bad);
    let found = exercise(&bad);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.file(&format!("{name}{suffix}")));
    }
    found
}

#[test]
fn a_corrupted_file_gives_storage_errors() {
    let dir = TempDir::new("corrupt");
    let good = dir.file("good.db");
    prepared(&good, 400);
    let reference = snapshot(&Store::open(&good).unwrap());
    let n = pages(&good);
    assert!(n > 20, "{n} pages");
    let mut rng = Rng::from_env("a_corrupted_file_gives_storage_errors");

    // Every page but the header page overwritten: the file must be reported corrupt.
    let all = damaged_copy(&dir, &good, "all.db", |bad| {
        garble(bad, &(1..n).collect::<Vec<_>>(), &mut rng)
    });
    assert!(
        !all.errors.is_empty(),
        "no call noticed that every page is garbage"
    );
    for e in &all.errors {
        assert!(e.contains("the database file is corrupt"), "{e}");
    }

    // A few whole pages of garbage: what SQLite notices is a storage error saying
    // the file is corrupt.
    let rounds = reliability_common::size(20, 200);
    let mut pages_noticed = 0;
    for round in 0..rounds {
        let chosen: Vec<usize> = (0..rng.range(1, 4))
            .map(|_| rng.range(1, n as u64 - 1) as usize)
            .collect();
        let found = damaged_copy(&dir, &good, &format!("pages-{round}.db"), |bad| {
            garble(bad, &chosen, &mut rng)
        });
        pages_noticed += usize::from(!found.errors.is_empty());
        for e in &found.errors {
            assert!(
                e.contains("corrupt") || e.contains("not an SQLite database"),
                "pages {chosen:?} garbled: {e}"
            );
        }
    }

    // A few flipped bits: every failure is still a storage error (checked in
    // `exercise`); the messages and the wrong values returned are counted.
    let mut bits_noticed = 0;
    let mut bits_out_of_contract = 0;
    let mut unclear: std::collections::BTreeSet<String> = Default::default();
    for round in 0..rounds {
        let count = rng.range(1, 8) as usize;
        let found = damaged_copy(&dir, &good, &format!("bits-{round}.db"), |bad| {
            flip(bad, count, &mut rng)
        });
        bits_noticed += usize::from(!found.errors.is_empty());
        bits_out_of_contract += usize::from(found.out_of_contract > 0);
        for e in found.errors {
            if !e.contains("corrupt") {
                unclear.insert(e.chars().take(90).collect());
            }
        }
    }

    // The intact copy opens and holds everything, in the same process.
    assert_eq!(integrity_check(&good), "ok");
    assert_eq!(snapshot(&Store::open(&good).unwrap()), reference);
    println!(
        "corruption: {rounds} files with 1-4 pages of garbage: {pages_noticed} noticed, every \
         error a storage error saying corrupt; {rounds} files with 1-8 flipped bits: \
         {bits_noticed} noticed (storage errors), {bits_out_of_contract} returned a task \
         outside the contract without an error; {} distinct storage error messages do not say \
         corrupt",
        unclear.len()
    );
    for e in unclear.iter().take(5) {
        println!("  for example: {e}");
    }
}

/// A value that cannot be read back (a flipped bit in a record: text that is not
/// UTF-8, a wrong type, an out-of-range priority) is a `storage` error that says the
/// file is corrupt.
#[test]
fn an_unreadable_stored_value_says_the_file_is_corrupt() {
    let dir = TempDir::new("badvalue");
    let path = dir.file("b.db");
    prepared(&path, 5);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        // What a flipped bit can do to a record: a title that is not UTF-8.
        conn.execute_batch(
            "PRAGMA ignore_check_constraints = ON;
             UPDATE tasks SET title = CAST(x'c328' AS TEXT) WHERE id = 'FLT-001';",
        )
        .unwrap();
    }
    let err = Store::open(&path)
        .unwrap()
        .get_task(AGENT, "FLT-001")
        .unwrap_err();
    assert_storage_err("an unreadable title", &err, &["corrupt"]);
}
