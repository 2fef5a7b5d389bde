//! `agent-backlog serve` over real HTTP on a free loopback port: the README's
//! examples replayed, every route and status code, strict query strings, body
//! limits, concurrent claimers, the request log and graceful shutdown.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};

use agent_backlog::{MAX_BATCH_BODY_BYTES, MAX_BODY_BYTES};
use common::*;
use serde_json::{json, Value};

const TASK_LIST_KEYS: [&str; 3] = ["agent_id", "tasks", "total"];

fn create(server: &Server, agent: &str, body: Value) -> Value {
    let task = server
        .post(&format!("/api/backlogs/{agent}"), &body.to_string())
        .expect(201);
    assert_task(&task);
    task
}

fn patch(server: &Server, agent: &str, id: &str, body: Value) -> Value {
    server
        .patch(&format!("/api/backlogs/{agent}/{id}"), &body.to_string())
        .expect(200)
}

/// Every example of the README's REST section, with its literal bodies and shapes.
#[test]
fn seed_page_examples_replayed() {
    let server = Server::start();

    // POST /api/backlogs/{agent_id}: the ID is generated from the agent's prefix.
    let first = create(
        &server,
        "marketing-lead",
        json!({"title": "Write 3 LinkedIn posts", "description": "Focus on ROI...", "priority": 3}),
    );
    assert_eq!(first["id"], "MKT-001");
    assert_eq!(first["title"], "Write 3 LinkedIn posts");
    assert_eq!(first["description"], "Focus on ROI...");
    assert_eq!(first["priority"], 3);
    assert_eq!(first["status"], "queued");
    for key in ["started", "completed", "result", "blocker"] {
        assert_eq!(first[key], Value::Null, "{key}");
    }
    let second = create(
        &server,
        "marketing-lead",
        json!({"title": "Audit competitor pricing pages", "description": "Compare top 5 competitors..."}),
    );
    assert_eq!(second["id"], "MKT-002");
    assert_eq!(second["priority"], 5, "the default priority");
    assert_eq!(second["status"], "queued");

    // GET /api/backlogs/{agent_id}, and with ?status=.
    let response = server.get("/api/backlogs/marketing-lead");
    let list = response.expect(200);
    parse_checked(response.text(), Some(&TASK_LIST_KEYS));
    assert_eq!(list["agent_id"], "marketing-lead");
    assert_eq!(list["total"], 2);
    assert_eq!(list["tasks"][0], first);
    assert_eq!(list["tasks"][1], second);

    // PATCH /api/backlogs/{agent_id}/{task_id}: the page's completed task.
    patch(
        &server,
        "marketing-lead",
        "MKT-001",
        json!({"status": "in_progress"}),
    );
    let done = patch(
        &server,
        "marketing-lead",
        "MKT-001",
        json!({"status": "complete", "result": "Generated 3 LinkedIn posts..."}),
    );
    assert_task(&done);
    assert_eq!(done["id"], "MKT-001");
    assert_eq!(done["status"], "complete");
    assert_eq!(done["result"], "Generated 3 LinkedIn posts...");
    assert!(done["completed"].is_string());
    let queued = server
        .get("/api/backlogs/marketing-lead?status=queued")
        .expect(200);
    assert_eq!(queued["total"], 1);
    assert_eq!(queued["tasks"][0]["id"], "MKT-002");

    // DELETE /api/backlogs/{agent_id}/{task_id}.
    let response = server.delete("/api/backlogs/marketing-lead/MKT-002");
    assert_eq!(response.expect(200), json!({"deleted": "MKT-002"}));
    assert_eq!(response.text(), "{\"deleted\":\"MKT-002\"}\n");

    // GET /api/backlogs: the page's two tasks of two agents.
    for title in ["Answer open tickets", "Triage the inbox"] {
        create(&server, "support-bot", json!({"title": title}));
    }
    for id in ["SUP-001", "SUP-002"] {
        server
            .delete(&format!("/api/backlogs/support-bot/{id}"))
            .expect(200);
    }
    let faq = create(
        &server,
        "support-bot",
        json!({"title": "Draft FAQ responses", "priority": 2}),
    );
    assert_eq!(faq["id"], "SUP-003");
    let response = server.get("/api/backlogs");
    let all = response.expect(200);
    parse_checked(response.text(), Some(&["tasks", "total"]));
    assert_eq!(all["total"], 2);
    let rows: Vec<(&str, &str, &str, &str, i64)> = all["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["agent_id"].as_str().unwrap(),
                t["id"].as_str().unwrap(),
                t["title"].as_str().unwrap(),
                t["status"].as_str().unwrap(),
                t["priority"].as_i64().unwrap(),
            )
        })
        .collect();
    // By priority, then creation order.
    assert_eq!(
        rows,
        [
            ("support-bot", "SUP-003", "Draft FAQ responses", "queued", 2),
            (
                "marketing-lead",
                "MKT-001",
                "Write 3 LinkedIn posts",
                "complete",
                3
            ),
        ]
    );

    // GET /api/backlogs/{agent_id}/summary: the page's numbers exactly.
    let batch: Vec<Value> = (1..=29)
        .map(|i| json!({"title": format!("post {i}")}))
        .collect();
    server
        .post(
            "/api/backlogs/content-writer/batch",
            &Value::from(batch).to_string(),
        )
        .expect(201);
    for n in 0..24 {
        let claimed = server
            .request("POST", "/api/backlogs/content-writer/claim", &[], None)
            .expect(200);
        if n < 23 {
            let id = claimed["id"].as_str().unwrap();
            patch(&server, "content-writer", id, json!({"status": "complete"}));
        }
    }
    let response = server.get("/api/backlogs/content-writer/summary");
    assert_eq!(
        response.text(),
        "{\"queued\":5,\"in_progress\":1,\"complete\":23,\"blocked\":0,\"total\":29}\n"
    );
}

#[test]
fn every_route_and_its_status_codes() {
    let server = Server::start();
    let a = "/api/backlogs/growth-bot";

    // PUT prefix before the first task: 200; the same prefix again is fine.
    let response = server.send_json("PUT", &format!("{a}/prefix"), r#"{"prefix": "GRW"}"#);
    assert_eq!(
        response.expect(200),
        json!({"agent_id": "growth-bot", "prefix": "GRW"})
    );
    parse_checked(response.text(), Some(&["agent_id", "prefix"]));
    // Another agent cannot take it: 409 conflict.
    server
        .send_json("PUT", "/api/backlogs/other/prefix", r#"{"prefix": "GRW"}"#)
        .expect_error(409, "conflict");
    // A bad prefix or body: 400.
    for body in [
        r#"{"prefix": "grw"}"#,
        r#"{"prefix": 5}"#,
        r#"{}"#,
        r#"{"prefix": "A", "x": 1}"#,
    ] {
        server
            .send_json("PUT", "/api/backlogs/other/prefix", body)
            .expect_error(400, "invalid_argument");
    }

    // POST create: 201.
    let task = create(&server, "growth-bot", json!({"title": "Plan Q3"}));
    assert_eq!(task["id"], "GRW-001");
    // The prefix is fixed now: 409 conflict.
    server
        .send_json("PUT", &format!("{a}/prefix"), r#"{"prefix": "GROW"}"#)
        .expect_error(409, "conflict");

    // POST batch: 201 with the list shape; all or nothing.
    let response = server.post(
        &format!("{a}/batch"),
        r#"[{"title": "a", "priority": 1}, {"title": "b", "description": "d"}]"#,
    );
    let batch = response.expect(201);
    parse_checked(response.text(), Some(&TASK_LIST_KEYS));
    assert_eq!(batch["total"], 2);
    assert_eq!(batch["tasks"][0]["id"], "GRW-002");
    assert_eq!(batch["tasks"][1]["id"], "GRW-003");
    let message = server
        .post(
            &format!("{a}/batch"),
            r#"[{"title": "c"}, {"title": "d", "priority": 11}]"#,
        )
        .expect_error(400, "invalid_argument");
    assert!(message.starts_with("tasks[1]: priority"), "{message}");
    assert_eq!(
        server.get(a).expect(200)["total"],
        3,
        "nothing of the bad batch"
    );
    let empty = server.post(&format!("{a}/batch"), "[]").expect(201);
    assert_eq!(
        empty,
        json!({"agent_id": "growth-bot", "tasks": [], "total": 0})
    );

    // GET one task: 200; unknown: 404 not_found; malformed ID: 400.
    assert_eq!(server.get(&format!("{a}/GRW-001")).expect(200), task);
    let message = server
        .get(&format!("{a}/GRW-009"))
        .expect_error(404, "not_found");
    assert_eq!(message, "task GRW-009 is not in the backlog of growth-bot");
    server
        .get(&format!("{a}/not-an-id"))
        .expect_error(400, "invalid_argument");
    // A bad agent_id in the path: 400.
    server
        .get("/api/backlogs/bad%20agent")
        .expect_error(400, "invalid_argument");

    // POST claim: 200 with the task, by priority; 204 with no body when nothing is queued.
    let claimed = server
        .request("POST", &format!("{a}/claim"), &[], None)
        .expect(200);
    assert_task(&claimed);
    assert_eq!(claimed["id"], "GRW-002", "priority 1 first");
    assert_eq!(claimed["status"], "in_progress");
    for _ in 0..2 {
        server
            .request("POST", &format!("{a}/claim"), &[], None)
            .expect(200);
    }
    let none = server.request("POST", &format!("{a}/claim"), &[], None);
    assert_eq!(none.status, 204);
    assert!(none.body.is_empty());
    assert_eq!(none.header("content-type"), None);

    // PATCH: 200; a refused move: 409 invalid_transition; bad fields: 400.
    let done = patch(
        &server,
        "growth-bot",
        "GRW-001",
        json!({"status": "complete", "result": "ok"}),
    );
    assert_eq!(done["result"], "ok");
    let message = server
        .patch(
            &format!("{a}/GRW-001"),
            r#"{"status": "blocked", "blocker": "x"}"#,
        )
        .expect_error(409, "invalid_transition");
    assert!(
        message.contains("complete") && message.contains("blocked"),
        "{message}"
    );
    let message = server
        .patch(&format!("{a}/GRW-001"), r#"{"priority": 3.0}"#)
        .expect_error(400, "invalid_argument");
    assert_eq!(message, "priority must be an integer from 1 to 10, got 3.0");
    // null clears a nullable field; an empty patch changes nothing.
    let reopened = patch(
        &server,
        "growth-bot",
        "GRW-003",
        json!({"description": null}),
    );
    assert_eq!(reopened["description"], Value::Null);
    assert_eq!(patch(&server, "growth-bot", "GRW-003", json!({})), reopened);
    server
        .patch(&format!("{a}/GRW-404"), "{}")
        .expect_error(404, "not_found");

    // GET summary: 200 with the summary shape.
    let response = server.get(&format!("{a}/summary"));
    assert_eq!(
        response.expect(200),
        json!({"queued": 0, "in_progress": 2, "complete": 1, "blocked": 0, "total": 3})
    );
    parse_checked(
        response.text(),
        Some(&["queued", "in_progress", "complete", "blocked", "total"]),
    );
    // An agent with no tasks has an empty backlog, not a 404.
    assert_eq!(
        server.get("/api/backlogs/nobody/summary").expect(200)["total"],
        0
    );
    assert_eq!(
        server.get("/api/backlogs/nobody").expect(200),
        json!({"agent_id": "nobody", "tasks": [], "total": 0})
    );

    // DELETE: 200, then 404; the number is never given again.
    assert_eq!(
        server.delete(&format!("{a}/GRW-003")).expect(200),
        json!({"deleted": "GRW-003"})
    );
    server
        .delete(&format!("{a}/GRW-003"))
        .expect_error(404, "not_found");
    assert_eq!(
        create(&server, "growth-bot", json!({"title": "next"}))["id"],
        "GRW-004"
    );
}

#[test]
fn http_level_errors_have_the_error_body() {
    let server = Server::start();

    // Unknown routes: 404 not_found with the error JSON (`/` is the dashboard).
    for path in [
        "/index.html",
        "/ui/nope.js",
        "/api",
        "/api/backlogs/",
        "/api/backlogs/a/MKT-001/x",
        "/nope",
    ] {
        let message = server.get(path).expect_error(404, "not_found");
        assert!(
            message.contains(path.split('?').next().unwrap()),
            "{message}"
        );
    }

    // A wrong method: 405 with the Allow header and the error JSON.
    for (method, path, allow) in [
        ("POST", "/api/backlogs", "GET,HEAD"),
        ("DELETE", "/api/backlogs/a", "GET,HEAD,POST"),
        ("DELETE", "/api/backlogs/a/summary", "GET,HEAD"),
        ("GET", "/api/backlogs/a/claim", "POST"),
        ("GET", "/api/backlogs/a/batch", "POST"),
        ("GET", "/api/backlogs/a/prefix", "PUT"),
        ("PUT", "/api/backlogs/a/MKT-001", "GET,HEAD,PATCH,DELETE"),
        ("POST", "/api/backlogs/a/MKT-001", "GET,HEAD,PATCH,DELETE"),
    ] {
        let response = server.request(method, path, &[], None);
        let message = response.expect_error(405, "invalid_argument");
        assert_eq!(response.header("allow"), Some(allow), "{method} {path}");
        assert!(
            message.contains(method) && message.contains(path),
            "{message}"
        );
    }

    // A body that is not JSON: 415 for another Content-Type, 400 for bad JSON text.
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let response = server.request(
            "POST",
            "/api/backlogs/a",
            &[("Content-Type", content_type)],
            Some(br#"{"title": "x"}"#),
        );
        let message = response.expect_error(415, "invalid_argument");
        assert!(message.contains("application/json"), "{message}");
    }
    // JSON with parameters, a +json type, or no Content-Type at all is read as JSON.
    for headers in [
        &[("Content-Type", "application/json; charset=utf-8")][..],
        &[("Content-Type", "application/merge-patch+json")][..],
        &[][..],
    ] {
        server
            .request(
                "POST",
                "/api/backlogs/a",
                headers,
                Some(br#"{"title": "x"}"#),
            )
            .expect(201);
    }
    for body in [&b"{\"title\": "[..], b"", b"title=x", b"[]", b"\xff\xfe"] {
        server
            .request(
                "POST",
                "/api/backlogs/a",
                &[("Content-Type", "application/json")],
                Some(body),
            )
            .expect_error(400, "invalid_argument");
    }
    let message = server
        .post("/api/backlogs/a", r#"{"title": "x", "id": "A-001"}"#)
        .expect_error(400, "invalid_argument");
    assert!(message.starts_with("unknown field \"id\""), "{message}");
    assert_eq!(
        server.get("/api/backlogs/a").expect(200)["total"],
        3,
        "nothing written"
    );

    // An oversized body: 413, refused from its Content-Length without reading it.
    for (path, limit) in [
        ("/api/backlogs/a", MAX_BODY_BYTES),
        ("/api/backlogs/a/batch", MAX_BATCH_BODY_BYTES),
        ("/api/backlogs/a/A-001", MAX_BODY_BYTES),
        ("/api/backlogs/a/prefix", MAX_BODY_BYTES),
    ] {
        let method = match path {
            "/api/backlogs/a/A-001" => "PATCH",
            "/api/backlogs/a/prefix" => "PUT",
            _ => "POST",
        };
        let length = (limit + 1).to_string();
        let response = server.request(
            method,
            path,
            &[
                ("Content-Type", "application/json"),
                ("Content-Length", &length),
            ],
            None,
        );
        let message = response.expect_error(413, "invalid_argument");
        assert!(message.contains(&limit.to_string()), "{message}");
    }
    // A body at the single-task limit is read and parsed (and refused by the core for
    // its title length, not for its size).
    let big = format!(r#"{{"title": "{}"}}"#, "x".repeat(MAX_BODY_BYTES - 13));
    assert_eq!(big.len(), MAX_BODY_BYTES);
    let message = server
        .post("/api/backlogs/a", &big)
        .expect_error(400, "invalid_argument");
    assert!(
        message.starts_with("title"),
        "{}",
        &message[..80.min(message.len())]
    );
}

#[test]
fn query_strings_are_strict_and_go_through_the_core() {
    let server = Server::start();
    for (agent, title, priority) in [
        ("marketing-lead", "m1", 3),
        ("marketing-lead", "m2", 1),
        ("marketing-lead", "m3", 3),
        ("support-bot", "s1", 3),
    ] {
        create(
            &server,
            agent,
            json!({"title": title, "priority": priority}),
        );
    }
    patch(
        &server,
        "marketing-lead",
        "MKT-003",
        json!({"status": "blocked", "blocker": "needs legal"}),
    );

    let titles = |body: &Value| -> Vec<String> {
        body["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["title"].as_str().unwrap().to_owned())
            .collect()
    };

    // list: status, limit, offset; total ignores the page.
    let page = server
        .get("/api/backlogs/marketing-lead?limit=1&offset=1")
        .expect(200);
    assert_eq!(titles(&page), ["m1"]);
    assert_eq!(page["total"], 3);
    let blocked = server
        .get("/api/backlogs/marketing-lead?status=blocked")
        .expect(200);
    assert_eq!(titles(&blocked), ["m3"]);
    assert_eq!(blocked["tasks"][0]["blocker"], "needs legal");

    // query: priority (exact), agent_id (percent-encoded too), status, limit, offset.
    let p3 = server.get("/api/backlogs?priority=3").expect(200);
    assert_eq!(titles(&p3), ["m1", "m3", "s1"]);
    let mine = server
        .get("/api/backlogs?agent_id=marketing%2Dlead&status=queued")
        .expect(200);
    assert_eq!(titles(&mine), ["m2", "m1"]);
    let page = server.get("/api/backlogs?limit=2&offset=1").expect(200);
    assert_eq!(titles(&page), ["m1", "m3"]);
    assert_eq!(page["total"], 4);
    let none = server.get("/api/backlogs?agent_id=nobody").expect(200);
    assert_eq!(none, json!({"tasks": [], "total": 0}));

    // Bad values: 400 invalid_argument naming the field, with the core's message.
    for (path, start) in [
        (
            "/api/backlogs?priority=abc",
            "priority must be an integer from 1 to 10, got the string \"abc\"",
        ),
        (
            "/api/backlogs?priority=3.5",
            "priority must be an integer from 1 to 10, got 3.5",
        ),
        ("/api/backlogs?priority=11", "priority"),
        ("/api/backlogs?priority=", "priority must be an integer"),
        ("/api/backlogs?limit=-1", "limit"),
        ("/api/backlogs?offset=x", "offset must be an integer"),
        ("/api/backlogs?status=done", "status must be one of"),
        ("/api/backlogs?agent_id=bad%20id", "agent_id"),
        (
            "/api/backlogs/marketing-lead?limit=1.5",
            "limit must be an integer",
        ),
        (
            "/api/backlogs/marketing-lead?status=",
            "status must be one of",
        ),
    ] {
        let message = server.get(path).expect_error(400, "invalid_argument");
        assert!(message.starts_with(start), "{path}: {message}");
    }
    // Unknown and repeated parameters: 400.
    let message = server
        .get("/api/backlogs?sort=priority")
        .expect_error(400, "invalid_argument");
    assert!(
        message.starts_with("unknown query parameter \"sort\"; the parameters of /api/backlogs are status, priority, agent_id, limit, offset"),
        "{message}"
    );
    let message = server
        .get("/api/backlogs/marketing-lead?priority=1")
        .expect_error(400, "invalid_argument");
    assert!(
        message.starts_with("unknown query parameter \"priority\""),
        "{message}"
    );
    let message = server
        .get("/api/backlogs?status=queued&status=blocked")
        .expect_error(400, "invalid_argument");
    assert!(
        message.contains("status") && message.contains("twice"),
        "{message}"
    );
    // Routes without parameters refuse a query string; an empty one is no query.
    for (method, path) in [
        ("GET", "/api/backlogs/marketing-lead/summary?x=1"),
        ("GET", "/api/backlogs/marketing-lead/MKT-001?verbose=1"),
        ("DELETE", "/api/backlogs/marketing-lead/MKT-001?force=1"),
        ("POST", "/api/backlogs/marketing-lead/claim?n=2"),
    ] {
        server
            .request(method, path, &[], None)
            .expect_error(400, "invalid_argument");
    }
    server
        .get("/api/backlogs/marketing-lead/summary?")
        .expect(200);
    assert_eq!(
        server.get("/api/backlogs").expect(200)["total"],
        4,
        "nothing deleted or claimed"
    );
}

#[test]
fn storage_errors_are_503() {
    let server = Server::start_with(&["--busy-timeout-ms", "0"]);
    create(&server, "a", json!({"title": "before"}));
    {
        let _lock = WriteLock::take(&server.db);
        let message = server
            .post("/api/backlogs/a", r#"{"title": "while locked"}"#)
            .expect_error(503, "storage");
        assert!(message.contains("busy"), "{message}");
        server
            .request("POST", "/api/backlogs/a/claim", &[], None)
            .expect_error(503, "storage");
    }
    create(&server, "a", json!({"title": "after"}));
    assert_eq!(server.get("/api/backlogs/a").expect(200)["total"], 2);
}

#[test]
fn concurrent_claimers_never_share_a_task() {
    const TASKS: usize = 120;
    const CLIENTS: usize = 6;
    let server = Server::start();
    let batch: Vec<Value> = (0..TASKS)
        .map(|i| json!({"title": format!("job {i}"), "priority": 1 + (i % 10)}))
        .collect();
    server
        .post(
            "/api/backlogs/worker/batch",
            &Value::from(batch).to_string(),
        )
        .expect(201);

    let claimed: Vec<Vec<String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    // Bounded: never more claims than there are tasks, plus the final 204.
                    for _ in 0..=TASKS {
                        let response =
                            server.request("POST", "/api/backlogs/worker/claim", &[], None);
                        if response.status == 204 {
                            return mine;
                        }
                        let task = response.expect(200);
                        assert_eq!(task["status"], "in_progress");
                        mine.push(task["id"].as_str().unwrap().to_owned());
                    }
                    panic!("more claims succeeded than tasks exist");
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let all: Vec<&String> = claimed.iter().flatten().collect();
    let unique: HashSet<&String> = all.iter().copied().collect();
    assert_eq!(all.len(), TASKS, "every task claimed once");
    assert_eq!(unique.len(), TASKS, "no task claimed twice");
    let summary = server.get("/api/backlogs/worker/summary").expect(200);
    assert_eq!(summary["in_progress"], TASKS);
    assert_eq!(summary["queued"], 0);
}

#[test]
fn one_log_line_per_request() {
    let server = Server::start();
    server.get("/api/backlogs/a/summary").expect(200);
    server.get("/api/backlogs?priority=abc").expect(400);
    server.get("/nope").expect(404);
    let line = server.wait_for_log("GET /api/backlogs/a/summary 200 ");
    assert!(line.ends_with("ms"), "{line}");
    server.wait_for_log("GET /api/backlogs?priority=abc 400 ");
    server.wait_for_log("GET /nope 404 ");
    let requests = server
        .log()
        .iter()
        .filter(|l| l.starts_with("GET "))
        .count();
    assert_eq!(requests, 3);
}

/// SIGTERM while a request is being served: the request finishes, then the server
/// exits with status 0. The request is known to be in its handler because the
/// server answered its `Expect: 100-continue` (hyper does so when the handler first
/// reads the body), and the signal is known to have arrived from the log.
#[test]
fn sigterm_finishes_the_request_in_flight() {
    let mut server = Server::start();
    let body = br#"{"title": "finished during shutdown"}"#;
    let mut stream = connect(server.addr);
    let length = body.len().to_string();
    write_request(
        &mut stream,
        server.addr,
        "POST",
        "/api/backlogs/a",
        &[
            ("Content-Type", "application/json"),
            ("Content-Length", &length),
            ("Expect", "100-continue"),
        ],
        None,
    );
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 100"), "{line:?}");
    reader.read_line(&mut line).unwrap(); // the blank line after the interim answer

    server.signal("TERM");
    server.wait_for_log("received SIGTERM");
    stream.write_all(body).unwrap();
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut rest).unwrap();
    let text = String::from_utf8(rest).unwrap();
    assert!(text.starts_with("HTTP/1.1 201"), "{text}");
    assert!(text.contains("\"finished during shutdown\""), "{text}");

    let status = server.wait_exit();
    assert_eq!(status.code(), Some(0), "{:?}", server.log());
    server.wait_for_log("stopped");
    // The write is in the file.
    let list = ok(&server.db, &["list", "a"]);
    assert_eq!(list["tasks"][0]["title"], "finished during shutdown");
}

#[test]
fn sigint_stops_the_server_with_an_idle_connection_open() {
    let mut server = Server::start();
    // A keep-alive connection that stays open and idle after its request.
    let mut idle = connect(server.addr);
    idle.write_all(b"GET /api/backlogs/a/summary HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(idle.try_clone().unwrap());
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    assert!(status_line.starts_with("HTTP/1.1 200"), "{status_line}");

    server.signal("INT");
    server.wait_for_log("received SIGINT");
    assert_eq!(server.wait_exit().code(), Some(0));
}

#[test]
fn serve_reports_startup_failures() {
    let dir = TempDir::new("serve-fail");
    // Not a database: storage, exit 5, before listening.
    let bad = dir.file("not-a-db");
    std::fs::write(
        &bad,
        "this is not SQLite, just some text that is long enough....",
    )
    .unwrap();
    let run = finish(
        command()
            .arg("--db")
            .arg(&bad)
            .args(["serve", "--port", "0"]),
    );
    assert_eq!(run.code, 5, "{run:?}");
    assert!(run.stderr.contains("error (storage)"), "{}", run.stderr);

    // A port in use: 69.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let run = finish(command().arg("--db").arg(dir.file("ok.db")).args([
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
    ]));
    assert_eq!(run.code, 69, "{run:?}");
    assert!(
        run.stderr.contains("cannot listen on 127.0.0.1:"),
        "{}",
        run.stderr
    );

    // Bad store options: the core's invalid_argument, exit 1.
    let run = finish(command().arg("--db").arg(dir.file("ok.db")).args([
        "--durability",
        "fast",
        "serve",
        "--port",
        "0",
    ]));
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("durability must be"), "{}", run.stderr);

    // The defaults are the documented ones.
    let help = finish(command().args(["serve", "--help"]));
    assert_eq!(help.code, 0);
    assert!(
        help.stdout.contains("[default: 127.0.0.1]"),
        "{}",
        help.stdout
    );
    assert!(help.stdout.contains("[default: 8787]"), "{}", help.stdout);
    assert!(
        help.stdout.contains("[default: ./backlogs.db]"),
        "{}",
        help.stdout
    );
}

/// Every JSON body, result or error, ends with a newline, so that `curl` leaves the
/// shell prompt on its own line.
#[test]
fn bodies_end_with_a_newline() {
    let server = Server::start();
    for response in [
        server.post("/api/backlogs/ops", r#"{"title": "t"}"#),
        server.get("/api/backlogs/ops/summary"),
        server.get("/api/backlogs/ops/OPS-009"),
        server.get("/api/backlogs?sort=1"),
        server.get("/nowhere"),
    ] {
        assert!(
            response.body.ends_with(b"}\n"),
            "{:?}",
            String::from_utf8_lossy(&response.body)
        );
        assert!(!response.body.ends_with(b"\n\n"));
    }
}

/// The README's table of routes is the operation table's, route for route: a new
/// operation's route must be written into the README, with its success status.
#[test]
fn the_readme_lists_every_route_of_the_table() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md beside the workspace");
    let listed: Vec<(String, String, String)> = readme
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let method = *cells.get(1)?;
            if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method) {
                return None;
            }
            let path = cells.get(2)?.trim_matches('`');
            let path = path.split('?').next()?.to_owned();
            let status = cells.get(4)?.split_whitespace().next()?.to_owned();
            Some((method.to_owned(), path, status))
        })
        .collect();
    let table: Vec<(String, String, String)> = agent_backlog::ops::OPERATIONS
        .iter()
        .flat_map(|op| {
            std::iter::once(op.route.path)
                .chain(op.route.also)
                .map(|path| {
                    (
                        op.route.method.to_owned(),
                        path.to_owned(),
                        op.route.status.to_string(),
                    )
                })
        })
        // The routes outside the table: the event stream (server-sent events), the
        // OpenAPI document and the dashboard.
        .chain(
            ["/api/events/stream", "/openapi.json", "/"]
                .map(|path| ("GET".to_owned(), path.to_owned(), "200".to_owned())),
        )
        .collect();
    for route in &table {
        assert!(listed.contains(route), "the README does not list {route:?}");
    }
    for route in &listed {
        assert!(
            table.contains(route),
            "the README lists {route:?}, which is no route"
        );
    }
}

/// The lease routes (SPEC §17): a leased claim, renew, finish, finish-and-claim, the
/// lease of a task, reaping on both routes, lease_lost as 409, and `wait_seconds`: a
/// long poll that a task created meanwhile answers, and that is refused past 60 s.
#[test]
fn lease_routes_and_the_long_poll() {
    let server = Server::start();
    create(&server, "writer", json!({"title": "first"}));
    create(&server, "writer", json!({"title": "second"}));
    let claim = server
        .post(
            "/api/backlogs/writer/leases",
            r#"{"worker": "w1", "lease_seconds": 30}"#,
        )
        .expect(200);
    let token = claim["lease"]["token"].as_str().unwrap().to_owned();
    assert_eq!(claim["task"]["id"], "WRI-001");
    let lease = server.get("/api/backlogs/writer/WRI-001/lease").expect(200);
    assert_eq!(lease, claim["lease"]);
    assert_eq!(server.get("/api/backlogs/writer/WRI-002/lease").status, 204);
    let renewed = server
        .post(
            &format!("/api/leases/{token}/renew"),
            r#"{"lease_seconds": 60}"#,
        )
        .expect(200);
    assert_eq!(renewed["token"], token.as_str());
    let step = server
        .post(
            &format!("/api/leases/{token}/finish-and-claim"),
            r#"{"status": "complete", "result": "done"}"#,
        )
        .expect(200);
    assert_eq!(step["finished"]["status"], "complete");
    let next = step["next"]["lease"]["token"].as_str().unwrap().to_owned();
    // The old token's lease has ended: 409 lease_lost.
    server
        .post(
            &format!("/api/leases/{token}/finish"),
            r#"{"status": "queued"}"#,
        )
        .expect_error(409, "lease_lost");
    let done = server
        .post(
            &format!("/api/leases/{next}/finish"),
            r#"{"status": "blocked", "blocker": "human"}"#,
        )
        .expect(200);
    assert_eq!(done["blocker"], "human");
    // Nothing is ready: 204 at once without wait_seconds.
    assert_eq!(
        server
            .post("/api/backlogs/writer/leases", r#"{"worker": "w1"}"#)
            .status,
        204
    );
    // A long poll answered by a task created while it waits.
    let waited = std::thread::scope(|scope| {
        let poll = scope.spawn(|| {
            server.post(
                "/api/backlogs/writer/leases",
                r#"{"worker": "w2", "wait_seconds": 30, "lease_seconds": 5}"#,
            )
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        create(&server, "writer", json!({"title": "third"}));
        poll.join().unwrap()
    });
    let waited = waited.expect(200);
    assert_eq!(
        (
            waited["task"]["id"].as_str(),
            waited["lease"]["worker"].as_str()
        ),
        (Some("WRI-003"), Some("w2"))
    );
    let none = server.post(
        "/api/backlogs/writer/leases",
        r#"{"worker": "w2", "wait_seconds": 0.2}"#,
    );
    assert_eq!(none.status, 204);
    for bad in ["61", "-1", "\"5\"", "true"] {
        let message = server
            .post(
                "/api/backlogs/writer/leases",
                &format!(r#"{{"worker": "w2", "wait_seconds": {bad}}}"#),
            )
            .expect_error(400, "invalid_argument");
        assert!(
            message.contains("wait_seconds") && message.contains("60"),
            "{message}"
        );
    }
    let message = server
        .post(
            "/api/backlogs/writer/leases",
            r#"{"worker": "w2", "timeout_seconds": 5}"#,
        )
        .expect_error(400, "invalid_argument");
    assert!(message.contains("timeout_seconds"), "{message}");
    // Reaping: per agent and store-wide.
    let reaped = server.post("/api/backlogs/writer/reap", "").expect(200);
    assert_eq!(reaped, json!({"requeued": [], "blocked": []}));
    let reaped = server.post("/api/reap", "").expect(200);
    assert_eq!(reaped, json!({"requeued": [], "blocked": []}));
}

/// A long poll does not hold up shutdown: on SIGTERM it ends at once with 204 (nothing
/// claimed), and the server stops.
#[test]
fn sigterm_ends_a_long_poll_with_204() {
    let mut server = Server::start();
    let addr = server.addr;
    let poll = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let mut stream = connect(addr);
        let body = br#"{"worker": "w1", "wait_seconds": 60}"#;
        let length = body.len().to_string();
        write_request(
            &mut stream,
            addr,
            "POST",
            "/api/backlogs/idle/leases",
            &[
                ("Content-Type", "application/json"),
                ("Content-Length", &length),
            ],
            Some(body),
        );
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stream, &mut text).unwrap();
        (text, started.elapsed())
    });
    // The request is waiting by then (its log line comes only with its answer).
    std::thread::sleep(std::time::Duration::from_millis(500));
    server.signal("TERM");
    let (text, took) = poll.join().unwrap();
    assert!(text.starts_with("HTTP/1.1 204"), "{text}");
    // Far below the 60 s it asked for.
    assert!(took < std::time::Duration::from_secs(45), "{took:?}");
    assert_eq!(server.wait_exit().code(), Some(0), "{:?}", server.log());
}

#[test]
fn idempotent_creates_and_dependency_routes() {
    let server = Server::start();
    let json = ("Content-Type", "application/json");
    let keyed = |path: &str, key: &str, body: &str| {
        server.request(
            "POST",
            path,
            &[json, ("Idempotency-Key", key)],
            Some(body.as_bytes()),
        )
    };
    // 201 the first time, 200 and Idempotent-Replayed on a replay, with the same body.
    let first = keyed("/api/backlogs/ops", "req-1", r#"{"title": "Rotate keys"}"#);
    assert_eq!(first.header("idempotent-replayed"), None);
    let first = first.expect(201);
    let again = keyed("/api/backlogs/ops", "req-1", r#"{"title": " Rotate keys"}"#);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.expect(200), first);
    let other = keyed("/api/backlogs/ops", "req-1", r#"{"title": "Other"}"#);
    assert!(other.expect_error(409, "conflict").contains("req-1"));
    keyed("/api/backlogs/ops", "", r#"{"title": "x"}"#).expect_error(400, "invalid_argument");
    let not_ascii = server.request(
        "POST",
        "/api/backlogs/ops",
        &[json, ("Idempotency-Key", "cl\u{e9}")],
        Some(br#"{"title": "x"}"#),
    );
    assert!(not_ascii
        .expect_error(400, "invalid_argument")
        .contains("Idempotency-Key"));

    // A plan in one batch, replayed.
    let plan = r#"[{"title": "a"}, {"title": "b", "depends_on": [0, "OPS-001"]}]"#;
    let created = keyed("/api/backlogs/ops/batch", "plan-1", plan).expect(201);
    let replay = keyed("/api/backlogs/ops/batch", "plan-1", plan);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.expect(200), created);
    assert_eq!(
        server.get("/api/backlogs/ops/summary").expect(200)["total"],
        3
    );

    // The ready queue and the edges.
    let ready = server.get("/api/backlogs/ops/ready?limit=1").expect(200);
    assert_eq!(
        (ready["tasks"][0]["id"].as_str(), ready["total"].as_u64()),
        (Some("OPS-001"), Some(2))
    );
    let deps = server
        .get("/api/backlogs/ops/OPS-003/dependencies")
        .expect(200);
    assert_eq!(deps["ready"], false);
    assert_eq!(deps["depends_on"][0]["id"], "OPS-001");
    let cycle = server.request(
        "PUT",
        "/api/backlogs/ops/OPS-001/dependencies/OPS-003",
        &[],
        None,
    );
    assert!(cycle
        .expect_error(409, "conflict")
        .contains("OPS-001 → OPS-003"));
    let removed = server
        .delete("/api/backlogs/ops/OPS-003/dependencies/OPS-002")
        .expect(200);
    assert_eq!(removed["depends_on"], serde_json::json!(["OPS-001"]));
    let added = server
        .request(
            "PUT",
            "/api/backlogs/ops/OPS-003/dependencies/OPS-002",
            &[],
            None,
        )
        .expect(200);
    assert_eq!(
        added["depends_on"],
        serde_json::json!(["OPS-001", "OPS-002"])
    );
    server
        .request(
            "PUT",
            "/api/backlogs/ops/OPS-003/dependencies/OPS-003",
            &[],
            None,
        )
        .expect_error(400, "invalid_argument");
    server
        .get("/api/backlogs/ops/OPS-009/dependencies")
        .expect_error(404, "not_found");
    server
        .get("/api/backlogs/ops/ready?status=queued")
        .expect_error(400, "invalid_argument");
}

/// Reads a server-sent-event stream from `addr` until `count` events have come, and
/// returns their `id:` and `data:` lines.
fn read_stream(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &str,
    count: usize,
) -> Vec<(i64, Value)> {
    let mut stream = common::connect(addr);
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n{headers}\r\n"
    )
    .unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut lines = BufReader::new(stream).lines();
    let status = lines.next().unwrap().unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let mut events = Vec::new();
    let mut id = None;
    while events.len() < count {
        let line = lines.next().expect("the stream goes on").unwrap();
        // (Chunk-size lines of the chunked body match neither prefix.)
        if let Some(rest) = line.strip_prefix("id: ") {
            id = Some(rest.trim().parse::<i64>().unwrap());
        } else if let Some(rest) = line.strip_prefix("data: ") {
            let event: Value = serde_json::from_str(rest).unwrap();
            assert_eq!(Some(event["seq"].as_i64().unwrap()), id, "{line}");
            events.push((id.unwrap(), event));
        }
    }
    events
}

#[test]
fn history_routes_the_actor_header_and_the_event_stream() {
    let server = Server::start();
    let made = server.request(
        "POST",
        "/api/backlogs/ops",
        &[
            ("Content-Type", "application/json"),
            ("Agent-Backlog-Actor", "alice"),
        ],
        Some(br#"{"title": "Rotate keys"}"#),
    );
    made.expect(201);
    server.post("/api/backlogs/ops/claim", "").expect(200);
    let history = server.get("/api/backlogs/ops/OPS-001/history").expect(200);
    let actors: Vec<&Value> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["actor"])
        .collect();
    assert_eq!(actors, [&json!("alice"), &Value::Null]);
    server
        .request(
            "POST",
            "/api/backlogs/ops",
            &[
                ("Content-Type", "application/json"),
                ("Agent-Backlog-Actor", ""),
            ],
            Some(br#"{"title": "x"}"#),
        )
        .expect_error(400, "invalid_argument");

    // A long poll that a write ends.
    let addr = server.addr;
    let poll = std::thread::spawn(move || {
        common::request(
            addr,
            "GET",
            "/api/events?after=2&wait_seconds=20",
            &[],
            None,
        )
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(server.post("/api/backlogs/ops/claim", "").status, 204);
    server
        .patch("/api/backlogs/ops/OPS-001", r#"{"status": "complete"}"#)
        .expect(200);
    let page = poll.join().unwrap().expect(200);
    assert_eq!(page["events"][0]["type"], "updated");
    assert_eq!(page["next"], 3);

    // The stream from the start, and resumed after Last-Event-ID.
    let all = read_stream(server.addr, "/api/events/stream", "", 3);
    assert_eq!(all.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [1, 2, 3]);
    let resumed = read_stream(server.addr, "/api/events/stream", "Last-Event-ID: 2\r\n", 1);
    assert_eq!(resumed[0].1, all[2].1);
    let filtered = read_stream(
        server.addr,
        "/api/events/stream?agent_id=ops&after=1",
        "",
        2,
    );
    assert_eq!(filtered[0].0, 2);
    let bad = common::request(server.addr, "GET", "/api/events/stream?since=1", &[], None);
    assert!(bad.expect_error(400, "invalid_argument").contains("since"));
    let bad = common::request(
        server.addr,
        "GET",
        "/api/events/stream",
        &[("Last-Event-ID", "x")],
        None,
    );
    bad.expect_error(400, "invalid_argument");

    let agents = server.get("/api/agents").expect(200);
    assert_eq!(agents["agents"][0]["complete"], 1);
    let pruned = server
        .post("/api/events/prune", r#"{"before": 3}"#)
        .expect(200);
    assert_eq!(pruned, json!({"pruned": 2}));
    server
        .get("/api/events?limit=0")
        .expect_error(400, "invalid_argument");

    // An actor is any text but control characters, on every surface: over HTTP its
    // header is UTF-8.
    let made = server.request(
        "POST",
        "/api/backlogs/crew",
        &[
            ("Content-Type", "application/json"),
            ("Agent-Backlog-Actor", "José 🛠"),
        ],
        Some(br#"{"title": "Fix the build"}"#),
    );
    made.expect(201);
    let history = server.get("/api/backlogs/crew/CRE-001/history").expect(200);
    assert_eq!(history["events"][0]["actor"], "José 🛠");
}

/// A follower that reads the feed by `after` (or `Last-Event-ID`) misses nothing when
/// the server restarts between two of its reads.
#[test]
fn a_follower_resumes_after_a_restart_of_the_server() {
    let dir = TempDir::new("follow-restart");
    let db = dir.file("b.db");
    let mut first = Server::start_on(&db, &[]);
    for title in ["a", "b", "c"] {
        create(&first, "ops", json!({ "title": title }));
    }
    let page = first.get("/api/events").expect(200);
    let next = page["next"].as_i64().unwrap();
    assert_eq!(next, 3);
    first.signal("TERM");
    assert!(first.wait_exit().success());
    // Writes while no server runs, from the command line on the same file.
    common::ok(&db, &["claim", "ops"]);
    common::ok(&db, &["create", "ops", "d"]);
    let second = Server::start_on(&db, &[]);
    create(&second, "ops", json!({"title": "e"}));
    let page = second.get(&format!("/api/events?after={next}")).expect(200);
    let seqs: Vec<i64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [4, 5, 6]);
    let types: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["claimed", "created", "created"]);
    let streamed = read_stream(
        second.addr,
        "/api/events/stream",
        &format!("Last-Event-ID: {next}\r\n"),
        3,
    );
    assert_eq!(streamed.iter().map(|(id, _)| *id).collect::<Vec<_>>(), seqs);
}

/// The server answers browsers (the dashboard), so it keeps other sites' pages out: on
/// loopback only loopback host names (DNS rebinding), and no write from a page of
/// another site (cross-site request forgery); clients that are no browser pass.
#[test]
fn pages_of_other_sites_are_kept_out() {
    let server = Server::start();
    let raw = |head: &str| {
        let mut stream = connect(server.addr);
        stream.write_all(head.as_bytes()).unwrap();
        let mut answer = String::new();
        std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
        answer
    };
    let rebound =
        raw("GET /api/backlogs HTTP/1.1\r\nHost: evil.example:8787\r\nConnection: close\r\n\r\n");
    assert!(rebound.starts_with("HTTP/1.1 403"), "{rebound}");
    assert!(
        rebound.contains("invalid_argument") && rebound.contains("evil.example"),
        "{rebound}"
    );
    for host in ["localhost:8787", "127.0.0.1", "[::1]:8787"] {
        let answer = raw(&format!(
            "GET /api/backlogs HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        ));
        assert!(answer.starts_with("HTTP/1.1 200"), "{host}: {answer}");
    }
    let json = ("Content-Type", "application/json");
    let body = Some(br#"{"title": "forged"}"#.as_slice());
    for forged in [
        [("Sec-Fetch-Site", "cross-site"), json],
        [("Sec-Fetch-Site", "same-site"), json],
        [("Origin", "http://evil.example"), json],
    ] {
        let refused = server.request("POST", "/api/backlogs/ops", &forged, body);
        assert_eq!(refused.status, 403, "{forged:?}: {}", refused.text());
        assert_eq!(refused.json()["error"]["code"], "invalid_argument");
    }
    assert_eq!(
        server.get("/api/backlogs/ops/summary").expect(200)["total"],
        0,
        "a forged write went through"
    );
    // The dashboard's own requests, a page's reads, and clients without these headers.
    let own_origin = format!("http://{}", server.addr);
    for allowed in [
        [("Sec-Fetch-Site", "same-origin"), json],
        [("Origin", own_origin.as_str()), json],
    ] {
        let created = server.request("POST", "/api/backlogs/ops", &allowed, body);
        assert_eq!(created.status, 201, "{allowed:?}: {}", created.text());
    }
    let read = server.request(
        "GET",
        "/api/backlogs/ops",
        &[("Sec-Fetch-Site", "cross-site")],
        None,
    );
    assert_eq!(read.status, 200);
    server
        .post("/api/backlogs/ops", r#"{"title": "curl"}"#)
        .expect(201);
}
