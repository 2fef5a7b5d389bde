//! The `agent-backlog` command line, run as a process: every command in both
//! formats, the error exit statuses, the database option and its defaults.

mod common;
#[path = "../../tests/common/pg.rs"]
mod pg;

use common::*;
use serde_json::{json, Value};

fn db() -> (TempDir, std::path::PathBuf) {
    let dir = TempDir::new("cli");
    let db = dir.file("backlogs.db");
    (dir, db)
}

/// Runs a command that must fail; checks the exit status and the error JSON on stderr
/// (nothing on stdout) and returns the message.
fn fails(db: &std::path::Path, args: &[&str], code: i32, error: &str) -> String {
    let run = cli(db, args);
    assert_eq!(run.code, code, "{args:?}: {run:?}");
    assert_eq!(run.stdout, "", "{args:?}");
    assert_eq!(run.error_code(), error, "{args:?}: {}", run.stderr);
    let value: Value = serde_json::from_str(&run.stderr).unwrap();
    value["error"]["message"].as_str().unwrap().to_owned()
}

#[test]
fn every_command_prints_the_json_shapes() {
    let (_dir, db) = db();
    let db = db.as_path();

    let task = ok(
        db,
        &[
            "create",
            "marketing-lead",
            "Write 3 LinkedIn posts",
            "--description",
            "Focus on ROI...",
            "--priority",
            "3",
        ],
    );
    assert_task(&task);
    assert_eq!(task["id"], "MKT-001");
    assert_eq!(task["description"], "Focus on ROI...");
    assert_eq!(task["priority"], 3);
    let second = ok(
        db,
        &["create", "marketing-lead", "Audit competitor pricing pages"],
    );
    assert_eq!(second["id"], "MKT-002");
    assert_eq!(second["priority"], 5);
    assert_eq!(second["description"], Value::Null);

    assert_eq!(ok(db, &["get", "marketing-lead", "MKT-001"]), task);

    let run = cli(db, &["list", "marketing-lead"]);
    assert_eq!(run.code, 0);
    let list = run.json();
    parse_checked(&run.stdout, Some(&["agent_id", "tasks", "total"]));
    assert_eq!(list["total"], 2);
    assert_eq!(list["tasks"][0], task);
    let page = ok(
        db,
        &[
            "list",
            "marketing-lead",
            "--status",
            "queued",
            "--limit",
            "1",
            "--offset",
            "1",
        ],
    );
    assert_eq!(page["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(page["tasks"][0]["id"], "MKT-002");
    assert_eq!(page["total"], 2);

    let claimed = ok(db, &["claim", "marketing-lead"]);
    assert_eq!(claimed["id"], "MKT-001");
    assert_eq!(claimed["status"], "in_progress");

    let done = ok(
        db,
        &[
            "update",
            "marketing-lead",
            "MKT-001",
            "--status",
            "complete",
            "--result",
            "Generated 3 LinkedIn posts...",
        ],
    );
    assert_eq!(done["status"], "complete");
    assert_eq!(done["result"], "Generated 3 LinkedIn posts...");
    assert!(done["completed"].is_string());
    let edited = ok(
        db,
        &[
            "update",
            "marketing-lead",
            "MKT-002",
            "--title",
            "Audit pricing",
            "--priority",
            "2",
            "--description",
            "top 5",
        ],
    );
    assert_eq!(
        (
            &edited["title"],
            &edited["priority"],
            &edited["description"]
        ),
        (&json!("Audit pricing"), &json!(2), &json!("top 5"))
    );
    let cleared = ok(
        db,
        &["update", "marketing-lead", "MKT-002", "--clear-description"],
    );
    assert_eq!(cleared["description"], Value::Null);
    let blocked = ok(
        db,
        &[
            "update",
            "marketing-lead",
            "MKT-002",
            "--status",
            "blocked",
            "--blocker",
            "needs legal",
        ],
    );
    assert_eq!(blocked["blocker"], "needs legal");
    let unblocked = ok(
        db,
        &["update", "marketing-lead", "MKT-002", "--status", "queued"],
    );
    assert_eq!(unblocked["blocker"], Value::Null);
    let reopened = ok(
        db,
        &["update", "marketing-lead", "MKT-001", "--clear-result"],
    );
    assert_eq!(reopened["result"], Value::Null);
    assert_eq!(reopened["status"], "complete");
    // No option at all: the task as it is.
    assert_eq!(ok(db, &["update", "marketing-lead", "MKT-001"]), reopened);

    ok(
        db,
        &[
            "create",
            "support-bot",
            "Draft FAQ responses",
            "--priority",
            "2",
        ],
    );
    let run = cli(db, &["query", "--priority", "2"]);
    let all = run.json();
    parse_checked(&run.stdout, Some(&["tasks", "total"]));
    assert_eq!(all["total"], 2);
    assert_eq!(all["tasks"][0]["agent_id"], "marketing-lead");
    assert_eq!(all["tasks"][1]["agent_id"], "support-bot");
    let some = ok(
        db,
        &[
            "query",
            "--agent",
            "support-bot",
            "--status",
            "queued",
            "--limit",
            "5",
            "--offset",
            "0",
        ],
    );
    assert_eq!(some["total"], 1);
    assert_eq!(some["tasks"][0]["id"], "SUP-001");

    let run = cli(db, &["summary", "marketing-lead"]);
    assert_eq!(
        run.stdout,
        "{\"queued\":1,\"in_progress\":0,\"complete\":1,\"blocked\":0,\"total\":2}\n"
    );

    assert_eq!(
        ok(db, &["delete", "marketing-lead", "MKT-002"]),
        json!({"deleted": "MKT-002"})
    );
    let run = cli(db, &["prefix", "growth-bot", "GRW"]);
    assert_eq!(
        run.stdout,
        "{\"agent_id\":\"growth-bot\",\"prefix\":\"GRW\"}\n"
    );
    assert_eq!(ok(db, &["create", "growth-bot", "Plan"])["id"], "GRW-001");

    // Nothing queued: null, exit 0.
    let run = cli(db, &["claim", "nobody"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "null\n"));
}

#[test]
fn table_format_for_people() {
    let (_dir, db) = db();
    let db = db.as_path();
    let table = |args: &[&str]| {
        let mut args = args.to_vec();
        args.extend(["--format", "table"]);
        let run = cli(db, &args);
        assert_eq!(run.code, 0, "{run:?}");
        run.stdout
    };

    let created = table(&[
        "create",
        "marketing-lead",
        "Write 3 LinkedIn posts",
        "--priority",
        "3",
        "--description",
        "line one\nline two",
    ]);
    let lines: Vec<&str> = created.lines().collect();
    assert_eq!(lines[0], "id           MKT-001");
    assert_eq!(lines[1], "title        Write 3 LinkedIn posts");
    assert_eq!(lines[2], "description  line one");
    assert_eq!(lines[3], "             line two");
    assert_eq!(lines[4], "priority     3");
    assert_eq!(lines[5], "status       queued");
    assert!(lines[6].starts_with("created      20"), "{}", lines[6]);
    assert_eq!(
        &lines[7..],
        [
            "started      -",
            "completed    -",
            "result       -",
            "blocker      -"
        ]
    );

    let long = "A very long title that goes on and on well past the sixty characters of a column";
    table(&["create", "marketing-lead", long]);
    let list = table(&["list", "marketing-lead"]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 4, "{list}");
    assert!(
        lines[0].starts_with("ID       PRIORITY  STATUS  CREATED               TITLE"),
        "{list}"
    );
    assert!(
        lines[1].starts_with("MKT-001  3         queued  20"),
        "{list}"
    );
    assert!(lines[1].ends_with("  Write 3 LinkedIn posts"), "{list}");
    assert!(
        lines[2].starts_with("MKT-002  5         queued  20"),
        "{list}"
    );
    let title_column = lines[0].find("TITLE").unwrap();
    let shown: String = lines[2].chars().skip(title_column).collect();
    assert_eq!(shown.chars().count(), 60, "{shown}");
    assert!(shown.ends_with('…'), "{shown}");
    assert_eq!(lines[3], "marketing-lead: 2 tasks");
    let page = table(&["list", "marketing-lead", "--limit", "1"]);
    assert!(
        page.ends_with("marketing-lead: 1 of 2 tasks shown\n"),
        "{page}"
    );
    assert_eq!(table(&["list", "nobody"]), "nobody: no tasks\n");

    table(&[
        "create",
        "support-bot",
        "Draft FAQ responses",
        "--priority",
        "2",
    ]);
    let query = table(&["query"]);
    let lines: Vec<&str> = query.lines().collect();
    assert!(
        lines[0].starts_with("AGENT           ID       PRIORITY  STATUS  CREATED"),
        "{query}"
    );
    assert!(
        lines[1].starts_with("support-bot     SUP-001  2"),
        "{query}"
    );
    assert!(
        lines[2].starts_with("marketing-lead  MKT-001  3"),
        "{query}"
    );
    assert_eq!(lines[4], "3 tasks");

    let claim = table(&["claim", "marketing-lead"]);
    assert!(
        claim.starts_with("claimed by marketing-lead:\nid           MKT-001\n"),
        "{claim}"
    );
    assert!(claim.contains("\nstatus       in_progress\n"), "{claim}");
    assert_eq!(table(&["claim", "nobody"]), "nothing ready for nobody\n");

    assert_eq!(
        table(&["summary", "marketing-lead"]),
        "agent        marketing-lead\nqueued       1\nin_progress  1\ncomplete     0\nblocked      0\ntotal        2\n"
    );
    let got = table(&["get", "marketing-lead", "MKT-001"]);
    assert!(got.contains("\nstarted      20"), "{got}");
    let updated = table(&[
        "update",
        "marketing-lead",
        "MKT-001",
        "--status",
        "blocked",
        "--blocker",
        "waiting",
    ]);
    assert!(updated.ends_with("\nblocker      waiting\n"), "{updated}");
    assert_eq!(
        table(&["delete", "marketing-lead", "MKT-002"]),
        "deleted MKT-002\n"
    );
    assert_eq!(
        table(&["prefix", "growth-bot", "GRW"]),
        "agent   growth-bot\nprefix  GRW\n"
    );
}

#[test]
fn errors_exit_with_the_code_of_their_kind() {
    let (_dir, db) = db();
    let db = db.as_path();
    ok(db, &["create", "marketing-lead", "Write 3 LinkedIn posts"]);

    // 1 invalid_argument: the core's messages for values given as text.
    let message = fails(
        db,
        &["create", "marketing-lead", "x", "--priority", "3.5"],
        1,
        "invalid_argument",
    );
    assert_eq!(message, "priority must be an integer from 1 to 10, got 3.5");
    let message = fails(
        db,
        &["create", "marketing-lead", "x", "--priority", "high"],
        1,
        "invalid_argument",
    );
    assert_eq!(
        message,
        "priority must be an integer from 1 to 10, got the string \"high\""
    );
    fails(
        db,
        &["create", "marketing-lead", "x", "--priority", "11"],
        1,
        "invalid_argument",
    );
    fails(
        db,
        &["create", "marketing-lead", "   "],
        1,
        "invalid_argument",
    );
    fails(db, &["create", "bad agent", "x"], 1, "invalid_argument");
    fails(
        db,
        &["list", "marketing-lead", "--limit", "-1"],
        1,
        "invalid_argument",
    );
    fails(
        db,
        &["list", "marketing-lead", "--status", "done"],
        1,
        "invalid_argument",
    );
    fails(db, &["query", "--offset", "x"], 1, "invalid_argument");
    fails(
        db,
        &["query", "--agent", "bad agent"],
        1,
        "invalid_argument",
    );
    fails(
        db,
        &["update", "marketing-lead", "MKT-001", "--status", "blocked"],
        1,
        "invalid_argument",
    );
    fails(
        db,
        &["update", "marketing-lead", "MKT-001", "--result", "r"],
        1,
        "invalid_argument",
    );
    fails(
        db,
        &["get", "marketing-lead", "summary"],
        1,
        "invalid_argument",
    );
    fails(db, &["prefix", "growth-bot", "grw"], 1, "invalid_argument");
    assert_eq!(
        ok(db, &["list", "marketing-lead"])["total"],
        1,
        "nothing written"
    );

    // 2 not_found.
    let message = fails(db, &["get", "marketing-lead", "MKT-009"], 2, "not_found");
    assert_eq!(
        message,
        "task MKT-009 is not in the backlog of marketing-lead"
    );
    fails(db, &["delete", "marketing-lead", "MKT-009"], 2, "not_found");
    fails(
        db,
        &["update", "marketing-lead", "MKT-009", "--priority", "1"],
        2,
        "not_found",
    );
    fails(db, &["get", "support-bot", "MKT-001"], 2, "not_found");

    // 3 invalid_transition.
    let message = fails(
        db,
        &[
            "update",
            "marketing-lead",
            "MKT-001",
            "--status",
            "complete",
        ],
        3,
        "invalid_transition",
    );
    assert!(
        message.contains("queued") && message.contains("complete"),
        "{message}"
    );

    // 4 conflict.
    ok(db, &["prefix", "growth-bot", "GRW"]);
    fails(db, &["prefix", "other-bot", "GRW"], 4, "conflict");
    fails(db, &["prefix", "marketing-lead", "MK"], 4, "conflict");

    // 5 storage: a file that is not a database, and a write lock held past the timeout.
    let dir = TempDir::new("not-a-db");
    let not_db = dir.file("notes.txt");
    std::fs::write(
        &not_db,
        "these are notes, not an SQLite database at all.....",
    )
    .unwrap();
    fails(&not_db, &["list", "a"], 5, "storage");
    {
        let _lock = WriteLock::take(db);
        let run = cli(
            db,
            &["--busy-timeout-ms", "0", "create", "marketing-lead", "x"],
        );
        assert_eq!(run.code, 5, "{run:?}");
        assert_eq!(run.error_code(), "storage");
    }

    // The table format prints a line for people, with the same exit status.
    let run = cli(
        db,
        &["get", "marketing-lead", "MKT-009", "--format", "table"],
    );
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "error (not_found): task MKT-009 is not in the backlog of marketing-lead\n"
    );
}

#[test]
fn usage_errors_exit_64_and_help_exits_0() {
    let (_dir, db) = db();
    let db = db.as_path();
    for args in [
        &[][..],
        &["bogus"][..],
        &["list"][..],
        &["create", "a"][..],
        &["list", "a", "--colour", "red"][..],
        &["list", "a", "--format", "yaml"][..],
        &[
            "update",
            "a",
            "A-001",
            "--description",
            "d",
            "--clear-description",
        ][..],
        &["update", "a", "A-001", "--result", "r", "--clear-result"][..],
        &["update", "a", "A-001", "--blocker", "b", "--clear-blocker"][..],
        &["serve", "--port", "http"][..],
    ] {
        let run = cli(db, args);
        assert_eq!(run.code, 64, "{args:?}: {run:?}");
        assert_eq!(run.stdout, "");
        assert!(!run.stderr.is_empty());
    }
    assert!(!db.exists(), "a usage error opens no database");

    let help = cli(db, &["--help"]);
    assert_eq!(help.code, 0);
    for command in [
        "serve", "list", "create", "update", "delete", "get", "query", "summary", "claim", "prefix",
    ] {
        assert!(
            help.stdout.contains(&format!("\n  {command} ")),
            "{command}: {}",
            help.stdout
        );
        let sub = cli(db, &[command, "--help"]);
        assert_eq!(sub.code, 0, "{command}");
        assert!(
            sub.stdout.contains("--db <PATH>"),
            "{command}: {}",
            sub.stdout
        );
        if command != "serve" {
            assert!(
                sub.stdout.contains("--format <FORMAT>"),
                "{command}: {}",
                sub.stdout
            );
        }
    }
    assert!(help.stdout.contains("64  usage error"), "{}", help.stdout);
    let update = cli(db, &["update", "--help"]).stdout;
    for option in [
        "--status",
        "--priority",
        "--title",
        "--description",
        "--clear-description",
        "--blocker",
        "--clear-blocker",
        "--result",
        "--clear-result",
    ] {
        assert!(update.contains(option), "{option}");
    }
    let version = cli(db, &["--version"]);
    assert_eq!(version.code, 0);
    assert_eq!(
        version.stdout,
        format!("agent-backlog {}\n", agent_backlog::VERSION)
    );
}

#[test]
fn the_database_option_env_and_default() {
    // Default: ./backlogs.db in the working directory.
    let dir = TempDir::new("default-db");
    let run = finish(command().current_dir(dir.path()).args(["create", "a", "x"]));
    assert_eq!(run.code, 0, "{run:?}");
    assert!(dir.file("backlogs.db").exists());

    // AGENT_BACKLOG_DB, and --db over it.
    let from_env = dir.file("env.db");
    let run = finish(
        command()
            .current_dir(dir.path())
            .env("AGENT_BACKLOG_DB", &from_env)
            .args(["create", "a", "from env"]),
    );
    assert_eq!(run.code, 0, "{run:?}");
    let list = finish(
        command()
            .env("AGENT_BACKLOG_DB", &from_env)
            .args(["list", "a"]),
    );
    assert_eq!(list.json()["tasks"][0]["title"], "from env");
    let other = dir.file("other.db");
    let run = finish(
        command()
            .env("AGENT_BACKLOG_DB", &from_env)
            .args(["list", "a", "--db"])
            .arg(&other),
    );
    assert_eq!(run.json()["total"], 0, "--db wins over the environment");

    // Store options go through the core.
    let db = dir.file("opts.db");
    let run = cli(
        &db,
        &[
            "--durability",
            "full",
            "--busy-timeout-ms",
            "250",
            "create",
            "a",
            "x",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let message = fails(
        &db,
        &["--busy-timeout-ms", "soon", "list", "a"],
        1,
        "invalid_argument",
    );
    assert!(
        message.starts_with("busy_timeout_ms must be an integer"),
        "{message}"
    );
    let message = fails(
        &db,
        &["--durability", "fast", "list", "a"],
        1,
        "invalid_argument",
    );
    assert!(message.starts_with("durability must be"), "{message}");
}

#[test]
fn the_command_line_and_the_server_share_one_file() {
    let server = Server::start();
    let created = ok(
        &server.db,
        &["create", "marketing-lead", "from the command line"],
    );
    let got = server
        .get(&format!(
            "/api/backlogs/marketing-lead/{}",
            created["id"].as_str().unwrap()
        ))
        .expect(200);
    assert_eq!(got, created);
    server
        .post("/api/backlogs/marketing-lead", r#"{"title": "from HTTP"}"#)
        .expect(201);
    let list = ok(&server.db, &["list", "marketing-lead"]);
    assert_eq!(list, server.get("/api/backlogs/marketing-lead").expect(200));
}

/// `call` runs any operation of the table by name, with the same JSON as the
/// dedicated command; `--format` is global, so it may stand before the command.
#[test]
fn call_runs_every_operation_by_name() {
    let (_dir, db) = db();
    let db = db.as_path();
    let created = ok(
        db,
        &[
            "call",
            "create_task",
            r#"{"agent_id": "ops", "task": {"title": "Rotate keys", "priority": 2}}"#,
        ],
    );
    assert_eq!(created["id"], "OPS-001");
    let by_call = cli(
        db,
        &[
            "call",
            "get_task",
            r#"{"agent_id":"ops","task_id":"OPS-001"}"#,
        ],
    );
    let by_command = cli(db, &["get", "ops", "OPS-001"]);
    assert_eq!(by_call.code, 0, "{by_call:?}");
    assert_eq!(by_call.stdout, by_command.stdout);
    assert_eq!(
        ok(db, &["call", "claim_next", r#"{"agent_id":"ops"}"#])["status"],
        "in_progress"
    );
    assert_eq!(
        ok(db, &["call", "claim_next", r#"{"agent_id":"ops"}"#]),
        Value::Null
    );
    let message = fails(db, &["call", "nap", "{}"], 1, "invalid_argument");
    assert!(message.contains("claim_next"), "{message}");
    let message = fails(
        db,
        &["call", "summary", r#"{"agent":"ops"}"#],
        1,
        "invalid_argument",
    );
    assert!(message.starts_with("unknown field \"agent\""), "{message}");
    fails(
        db,
        &[
            "call",
            "get_task",
            r#"{"agent_id":"ops","task_id":"OPS-009"}"#,
        ],
        2,
        "not_found",
    );
    let listed = ok(db, &["call", "--list"]);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|op| op["name"].as_str().unwrap())
        .collect();
    let table: Vec<&str> = agent_backlog::ops::OPERATIONS
        .iter()
        .map(|op| op.name)
        .collect();
    assert_eq!(names, table);
    let table_run = cli(db, &["--format", "table", "summary", "ops"]);
    assert_eq!(table_run.code, 0);
    assert!(
        table_run.stdout.contains("in_progress  1"),
        "{}",
        table_run.stdout
    );
}

/// Every operation of the table is a command, named by the table, with its inputs as
/// arguments; `batch` (create_tasks) takes the list as JSON.
#[test]
fn every_operation_of_the_table_is_a_command() {
    let (_dir, db) = db();
    let db = db.as_path();
    let help = cli(db, &["--help"]).stdout;
    for op in agent_backlog::ops::OPERATIONS {
        assert!(
            help.contains(&format!("\n  {} ", op.command)),
            "{}: {help}",
            op.command
        );
        let sub = cli(db, &[op.command, "--help"]);
        assert_eq!(sub.code, 0, "{}", op.command);
        // The operation's own name with dashes is the same command.
        let dashed = op.name.replace('_', "-");
        assert_eq!(cli(db, &[&dashed, "--help"]).stdout, sub.stdout, "{dashed}");
        for input in op.inputs.iter().filter(|i| !i.required) {
            let flag = format!("--{}", input.name.trim_end_matches("_id").replace('_', "-"));
            assert!(sub.stdout.contains(&flag), "{} {flag}", op.command);
        }
    }
    let batch = ok(
        db,
        &[
            "batch",
            "ops",
            r#"[{"title": "a"}, {"title": "b", "priority": 1}]"#,
        ],
    );
    assert_eq!(batch["total"], 2);
    assert_eq!(batch["tasks"][1]["id"], "OPS-002");
    let message = fails(
        db,
        &["batch", "ops", r#"[{"title": "a"}, {"title": " "}]"#],
        1,
        "invalid_argument",
    );
    assert!(message.starts_with("tasks[1]: "), "{message}");
    let message = fails(db, &["batch", "ops", "[{"], 1, "invalid_argument");
    assert!(message.contains("tasks"), "{message}");
    assert_eq!(
        ok(db, &["summary", "ops"])["total"],
        2,
        "nothing written by the refused batches"
    );
}

/// A result that cannot reach stdout (its reader is gone): no failure for a read, but
/// after a write — a claim above all — the result goes to stderr and the exit status
/// is 74, so that a claimed task is never lost without a word.
#[test]
fn a_closed_stdout_after_a_claim_is_reported() {
    use std::os::unix::net::UnixStream;
    let (_dir, db) = db();
    ok(&db, &["create", "ops", "the task"]);
    let run_closed = |args: &[&str]| {
        // A socket whose other end is closed: every write to it fails with EPIPE.
        let (ours, theirs) = UnixStream::pair().unwrap();
        drop(ours);
        let out = command()
            .arg("--db")
            .arg(&db)
            .args(args)
            .stdout(std::process::Stdio::from(std::os::fd::OwnedFd::from(
                theirs,
            )))
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stderr).unwrap())
    };
    let (code, stderr) = run_closed(&["list", "ops"]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = run_closed(&["claim", "ops"]);
    assert_eq!(code, Some(74), "{stderr}");
    assert!(stderr.contains("the call was done"), "{stderr}");
    assert!(stderr.contains(r#""id":"OPS-001""#), "{stderr}");
    assert_eq!(ok(&db, &["summary", "ops"])["in_progress"], 1);
}

/// The lease commands (SPEC §17): claim-lease, renew-lease, finish-lease, get-lease,
/// wait-for-task, reap-expired; a lost lease is exit status 7 with the error JSON.
#[test]
fn lease_commands_and_exit_status_7() {
    let dir = TempDir::new("cli-leases");
    let db = dir.file("b.db");
    ok(&db, &["create", "writer", "Write posts"]);
    let claim = ok(
        &db,
        &["claim-lease", "writer", "w1", "--lease-seconds", "30"],
    );
    let token = claim["lease"]["token"].as_str().unwrap().to_owned();
    assert_eq!(claim["lease"]["worker"], "w1");
    let lease = ok(&db, &["get-lease", "writer", "WRI-001"]);
    assert_eq!(lease["token"], token.as_str());
    ok(&db, &["renew-lease", &token, "--lease-seconds", "60"]);
    ok(&db, &["update", "writer", "WRI-001", "--status", "queued"]);
    let lost = cli(
        &db,
        &["finish-lease", &token, "complete", "--result", "late"],
    );
    assert_eq!(lost.code, 7, "{lost:?}");
    assert_eq!(lost.error_code(), "lease_lost");
    let waited = ok(&db, &["wait-for-task", "writer", "w2", "0.5"]);
    assert_eq!(waited["lease"]["fence"], 3);
    let none = ok(&db, &["wait-for-task", "writer", "w3", "0.1"]);
    assert_eq!(none, Value::Null);
    assert_eq!(
        ok(&db, &["reap-expired"]),
        json!({"requeued": [], "blocked": []})
    );
    let table = cli(
        &db,
        &["--format", "table", "get-lease", "writer", "WRI-001"],
    );
    assert_eq!(table.code, 0);
    assert!(table.stdout.contains("attempt  2 of 3"), "{}", table.stdout);
}

#[test]
fn plan_commands_dependencies_and_idempotency_keys() {
    let dir = TempDir::new("cli-plans");
    let db = dir.file("b.db");
    let plan = r#"[{"title": "Get the date"}, {"title": "Write the post", "depends_on": [0]}]"#;
    let first = ok(
        &db,
        &["batch", "launch", plan, "--idempotency-key", "plan-1"],
    );
    let again = ok(
        &db,
        &["batch", "launch", plan, "--idempotency-key", "plan-1"],
    );
    assert_eq!(first, again);
    // An empty batch is another request than the plan.
    let other = cli(
        &db,
        &["batch", "launch", "[]", "--idempotency-key", "plan-1"],
    );
    assert_eq!((other.code, other.error_code().as_str()), (4, "conflict"));
    // With a new key it creates nothing and records no key.
    let empty = ok(
        &db,
        &["batch", "launch", "[]", "--idempotency-key", "plan-2"],
    );
    assert_eq!(empty["total"], 0);
    let other = cli(
        &db,
        &["create", "launch", "x", "--idempotency-key", "plan-1"],
    );
    assert_eq!((other.code, other.error_code().as_str()), (4, "conflict"));
    let post = ok(
        &db,
        &[
            "create",
            "launch",
            "Publish",
            "--depends-on",
            "LAU-001, LAU-002",
        ],
    );
    assert_eq!(post["id"], "LAU-003");
    let deps = ok(&db, &["dependencies", "launch", "LAU-003"]);
    assert_eq!(deps["ready"], false);
    assert_eq!(deps["depends_on"].as_array().unwrap().len(), 2);
    let ready = ok(&db, &["ready", "launch"]);
    assert_eq!(
        (ready["total"].as_u64(), ready["tasks"][0]["id"].as_str()),
        (Some(1), Some("LAU-001"))
    );
    let removed = ok(&db, &["remove-dependency", "launch", "LAU-003", "LAU-001"]);
    assert_eq!(
        removed,
        json!({"task_id": "LAU-003", "depends_on": ["LAU-002"]})
    );
    let cycle = cli(&db, &["add-dependency", "launch", "LAU-001", "LAU-003"]);
    assert_eq!(cycle.code, 4, "{cycle:?}");
    assert!(
        cycle
            .stderr
            .contains("LAU-001 → LAU-003 → LAU-002 → LAU-001"),
        "{cycle:?}"
    );
    let table = cli(
        &db,
        &["--format", "table", "dependencies", "launch", "LAU-002"],
    );
    assert!(
        table.stdout.starts_with("LAU-002 is not ready"),
        "{table:?}"
    );
    assert!(
        table.stdout.contains("LAU-001  launch  queued"),
        "{table:?}"
    );
    let table = cli(
        &db,
        &[
            "--format",
            "table",
            "add-dependency",
            "launch",
            "LAU-003",
            "LAU-001",
        ],
    );
    assert_eq!(
        table.stdout.trim_end(),
        "LAU-003 depends on LAU-001, LAU-002"
    );
}

#[test]
fn history_commands_the_actor_and_following_the_feed() {
    use std::io::BufRead;
    let dir = TempDir::new("cli-history");
    let db = dir.file("b.db");
    ok(&db, &["--actor", "planner", "create", "ops", "Rotate keys"]);
    let by_env = finish(
        command()
            .env("AGENT_BACKLOG_ACTOR", "night-shift")
            .arg("--db")
            .arg(&db)
            .args(["claim", "ops"]),
    );
    assert_eq!(by_env.code, 0, "{by_env:?}");
    let history = ok(&db, &["history", "ops", "OPS-001"]);
    let who: Vec<&Value> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["actor"])
        .collect();
    assert_eq!(who, [&json!("planner"), &json!("night-shift")]);
    let bad = cli(&db, &["--actor", "", "create", "ops", "x"]);
    assert_eq!(
        (bad.code, bad.error_code().as_str()),
        (1, "invalid_argument")
    );
    let page = ok(&db, &["events", "--after", "1", "--limit", "10"]);
    assert_eq!(
        (page["events"][0]["type"].as_str(), page["next"].as_i64()),
        (Some("claimed"), Some(2))
    );
    let table = cli(&db, &["--format", "table", "agents"]);
    assert!(
        table.stdout.contains("ops    OPS     0       1"),
        "{table:?}"
    );
    assert!(table.stdout.contains("1 of 1 agents"), "{table:?}");

    // --follow prints each event as one JSON line, old and new, until stopped.
    let mut follower = command()
        .arg("--db")
        .arg(&db)
        .args(["events", "--follow", "--agent", "ops"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(follower.stdout.take().unwrap()).lines();
    let mut next = || -> Value { serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap() };
    assert_eq!(next()["seq"], 1);
    assert_eq!(next()["seq"], 2);
    ok(&db, &["create", "other", "not followed"]);
    ok(&db, &["update", "ops", "OPS-001", "--status", "complete"]);
    let third = next();
    assert_eq!(
        (third["seq"].as_i64(), third["type"].as_str()),
        (Some(4), Some("updated"))
    );
    follower.kill().unwrap();
    follower.wait().unwrap();
    assert_eq!(ok(&db, &["prune-events", "3"]), json!({"pruned": 2}));
}

#[test]
fn mcp_refuses_a_bad_tool_selection_before_it_starts() {
    let (_dir, db) = db();
    // Like serve, mcp reports its errors as text for the log of whoever started it.
    let refused = |args: &[&str], words: &str| {
        let run = cli(&db, args);
        assert_eq!(run.code, 1, "{args:?}: {run:?}");
        assert_eq!(run.stdout, "", "{args:?}");
        assert!(
            run.stderr.contains("invalid_argument"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stderr.contains(words), "{args:?}: {}", run.stderr);
    };
    refused(
        &["mcp", "--tools", "list_tasks,nope"],
        "no tool named \"nope\"",
    );
    refused(
        &["mcp", "--agent", "ops", "--tools", "list_agents"],
        "every agent",
    );
    refused(&["mcp", "--agent", "bad agent"], "agent_id");
    refused(
        &["serve", "--port", "0", "--mcp", "--mcp-tools", ","],
        "tools must be core, all",
    );
    // The MCP options of serve mean nothing without --mcp.
    let run = cli(&db, &["serve", "--port", "0", "--mcp-tools", "all"]);
    assert_eq!(run.code, 64, "{run:?}");
    assert!(!db.exists(), "a refused start created the database");
}

/// `--db` names a PostgreSQL store as well as a file (SPEC §16): the same commands, the
/// same JSON, the same exit statuses; a URL it cannot read is 1, a server it cannot
/// reach is 5, and neither message shows the password.
#[test]
fn the_database_option_takes_a_postgresql_url() {
    let Some(url) = pg::url() else { return };
    let schemas = pg::Schemas::new(&url, "cli");
    let at = schemas.fresh();
    let db = std::path::Path::new(&at);
    let created = ok(db, &["create", "ops", "Rotate keys", "--priority", "2"]);
    assert_eq!(created["id"], "OPS-001");
    let claimed = ok(db, &["claim", "ops"]);
    assert_eq!(claimed["id"], "OPS-001");
    assert_eq!(claimed["status"], "in_progress");
    let done = ok(
        db,
        &[
            "update", "ops", "OPS-001", "--status", "complete", "--result", "rotated",
        ],
    );
    assert_eq!(done["result"], "rotated");
    assert_eq!(
        ok(db, &["summary", "ops"]),
        json!({"queued": 0, "in_progress": 0, "complete": 1, "blocked": 0, "total": 1})
    );
    let history = ok(db, &["history", "ops", "OPS-001"]);
    assert_eq!(history["events"].as_array().map(Vec::len), Some(3));
    let run = cli(db, &["get", "ops", "OPS-404"]);
    assert_eq!(run.code, 2, "{run:?}");

    let bad = std::path::Path::new("postgresql://u:s3cret@127.0.0.1:1/db?pool_size=0");
    let run = cli(bad, &["summary", "ops"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("pool_size"), "{run:?}");
    let unreachable = std::path::Path::new("postgresql://u:s3cret@127.0.0.1:1/db");
    let run = cli(unreachable, &["summary", "ops"]);
    assert_eq!(run.code, 5, "{run:?}");
    assert!(
        run.stderr.contains("cannot connect to PostgreSQL"),
        "{run:?}"
    );
    assert!(!run.stderr.contains("s3cret"), "{run:?}");
}
