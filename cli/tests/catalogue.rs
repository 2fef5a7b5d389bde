//! The catalogue of bad inputs over HTTP: a table of (description, request, expected
//! status and code), sent to one server holding one task in each status. Every refused
//! request must leave the store exactly as it was (every task of `GET /api/backlogs`
//! and the summary of every agent involved, compared after each case), and at the end
//! the next task must still get the next ID (MKT-005, and NEW-001 for an agent that had
//! none): no refused request took a number or registered an agent.
//!
//! Bad values that a JSON request can hold (fields, types, IDs, filters, lifecycle moves,
//! conflicts) are cases of testdata/conformance/, which tests/conformance.rs sends over
//! HTTP; this table keeps what only HTTP has: bytes that are not UTF-8 or not JSON,
//! sizes, content types, query-string syntax, routes and methods.

mod common;

use common::*;
use serde_json::Value;

const AGENTS: [&str; 3] = ["marketing-lead", "support-bot", "new-agent"];
const JSON: &[(&str, &str)] = &[("Content-Type", "application/json")];

/// One request: method, path (already percent-encoded), headers, body.
struct Req {
    method: &'static str,
    path: String,
    headers: &'static [(&'static str, &'static str)],
    body: Option<Vec<u8>>,
}

fn req(method: &'static str, path: &str, body: Option<&[u8]>) -> Req {
    Req {
        method,
        path: path.to_owned(),
        headers: if body.is_some() { JSON } else { &[] },
        body: body.map(<[u8]>::to_vec),
    }
}

fn post(path: &str, body: &str) -> Req {
    req("POST", path, Some(body.as_bytes()))
}

fn get(path: &str) -> Req {
    req("GET", path, None)
}

/// A request that declares a body over the limit (refused from its Content-Length).
fn declared(method: &'static str, path: &str, length: &'static str) -> Req {
    let headers: &'static [(&'static str, &'static str)] = match length {
        "8388609" => &[
            ("Content-Type", "application/json"),
            ("Content-Length", "8388609"),
        ],
        _ => &[
            ("Content-Type", "application/json"),
            ("Content-Length", "67108865"),
        ],
    };
    Req {
        method,
        path: path.to_owned(),
        headers,
        body: None,
    }
}

fn nested(depth: usize) -> String {
    format!(r#"{{"title":{}1{}}}"#, "[".repeat(depth), "]".repeat(depth))
}

const ML: &str = "/api/backlogs/marketing-lead";

/// (description, request, expected status, expected code).
fn cases() -> Vec<(&'static str, Req, u16, &'static str)> {
    let invalid = "invalid_argument";
    #[rustfmt::skip]
    let cases = vec![
        // bodies
        ("body not UTF-8", req("POST", ML, Some(b"{\"title\":\"a\xff\"}")), 400, invalid),
        ("body with a UTF-8-encoded surrogate", req("POST", ML, Some(b"{\"title\":\"\xed\xa0\x80\"}")), 400, invalid),
        ("empty body", post(ML, ""), 400, invalid),
        ("truncated body", post(ML, r#"{"title":"Wri"#), 400, invalid),
        ("trailing garbage", post(ML, r#"{"title":"a"}x"#), 400, invalid),
        ("array nested 100000 deep", post(ML, &nested(100_000)), 400, invalid),
        ("batch nested 100000 deep", post(&format!("{ML}/batch"), &"[".repeat(100_000)), 400, invalid),
        ("duplicate keys in a prefix body", req("PUT", "/api/backlogs/new-agent/prefix", Some(br#"{"prefix":"A","prefix":"B"}"#)), 400, invalid),
        ("body over 8 MiB", declared("POST", ML, "8388609"), 413, invalid),
        ("patch over 8 MiB", declared("PATCH", &format!("{ML}/MKT-004"), "8388609"), 413, invalid),
        ("batch over 64 MiB", declared("POST", &format!("{ML}/batch"), "67108865"), 413, invalid),
        ("a body of text/plain", Req { method: "POST", path: ML.into(), headers: &[("Content-Type", "text/plain")], body: Some(br#"{"title":"a"}"#.to_vec()) }, 415, invalid),
        // agent_id and task_id in the path
        ("agent_id not UTF-8", get("/api/backlogs/caf%E9"), 400, invalid),
        // query strings
        ("a repeated parameter", get("/api/backlogs?status=queued&status=blocked"), 400, invalid),
        ("a query string on summary", get(&format!("{ML}/summary?x=1")), 400, invalid),
        ("a parameter not UTF-8", get("/api/backlogs?status=%FF"), 400, invalid),
        // the other codes
        ("no such route", get("/api/backlogs/a/MKT-001/x"), 404, "not_found"),
        ("a wrong method", req("PUT", &format!("{ML}/MKT-001"), Some(b"{}")), 405, invalid),
    ];
    cases
}

/// One task in each status, as in tests/catalogue.rs.
fn fixture(server: &Server) {
    server
        .post(
            &format!("{ML}/batch"),
            r#"[{"title":"Write posts","priority":1},{"title":"Audit pricing","priority":2},{"title":"Plan webinar","priority":3},{"title":"Draft newsletter","priority":4}]"#,
        )
        .expect(201);
    server.post(&format!("{ML}/claim"), "").expect(200);
    server
        .patch(
            &format!("{ML}/MKT-001"),
            r#"{"status":"complete","result":"done"}"#,
        )
        .expect(200);
    server.post(&format!("{ML}/claim"), "").expect(200);
    server
        .patch(
            &format!("{ML}/MKT-003"),
            r#"{"status":"blocked","blocker":"waiting"}"#,
        )
        .expect(200);
    server
        .post("/api/backlogs/support-bot", r#"{"title":"Draft FAQ"}"#)
        .expect(201);
}

fn snapshot(server: &Server) -> Vec<Value> {
    let mut all = vec![server.get("/api/backlogs").expect(200)];
    for agent in AGENTS {
        all.push(
            server
                .get(&format!("/api/backlogs/{agent}/summary"))
                .expect(200),
        );
    }
    all
}

#[test]
fn http_catalogue() {
    let server = Server::start();
    fixture(&server);
    let before = snapshot(&server);
    let cases = cases();
    assert!(cases.len() >= 15);
    let mut failed = Vec::new();
    for (what, r, status, code) in &cases {
        let response = server.request(r.method, &r.path, r.headers, r.body.as_deref());
        let body: Option<Value> = serde_json::from_slice(&response.body).ok();
        let got_code = body
            .as_ref()
            .and_then(|b| b["error"]["code"].as_str())
            .unwrap_or("-");
        let message_ok = body
            .as_ref()
            .and_then(|b| b["error"]["message"].as_str())
            .is_some_and(|m| !m.is_empty());
        if response.status != *status || got_code != *code || !message_ok {
            eprintln!(
                "{what}: expected {status} {code}, got {} {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            );
            failed.push(*what);
        }
        if snapshot(&server) != before {
            eprintln!("{what}: something was written");
            failed.push(*what);
        }
    }
    assert!(failed.is_empty(), "failed cases: {failed:#?}");
    // No refused request took a number or registered an agent.
    let next = server.post(ML, r#"{"title":"probe"}"#).expect(201);
    assert_eq!(next["id"], "MKT-005");
    let first = server
        .post("/api/backlogs/new-agent", r#"{"title":"probe"}"#)
        .expect(201);
    assert_eq!(first["id"], "NEW-001");
    // SQL-looking text is plain text where the field allows it.
    let sql = "'); DROP TABLE tasks; --";
    let body = serde_json::json!({ "title": sql, "description": "1 OR 1=1" }).to_string();
    let task = server.post(ML, &body).expect(201);
    assert_eq!(
        (task["id"].as_str(), task["title"].as_str()),
        (Some("MKT-006"), Some(sql))
    );
    let got = server.get(&format!("{ML}/MKT-006")).expect(200);
    assert_eq!(got, task);
    println!(
        "HTTP catalogue: {} refused requests, then 3 accepted",
        cases.len()
    );
}
