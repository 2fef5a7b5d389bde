//! The OpenAPI document (`GET /openapi.json`, kept as docs/openapi.json): the server
//! serves the committed file exactly (`UPDATE_OPENAPI=1` rewrites it after a change),
//! and the router and the document agree on every path, method and status — each
//! documented route answers a request with a documented status, each other method of
//! a documented path is 405, and every route of the operation table is documented.

mod common;

use std::path::PathBuf;

use agent_backlog::ops::OPERATIONS;
use common::*;
use serde_json::Value;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

fn committed() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
}

fn served(server: &Server) -> Value {
    let response = server.get("/openapi.json");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    serde_json::from_str(response.text()).expect("the document is JSON")
}

#[test]
fn the_served_document_is_the_committed_one() {
    let server = Server::start();
    let document = served(&server);
    let text = serde_json::to_string_pretty(&document).unwrap() + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(committed(), &text).unwrap();
    }
    let on_disk = std::fs::read_to_string(committed()).unwrap_or_default();
    assert!(
        on_disk == text,
        "docs/openapi.json differs from what the server serves: run UPDATE_OPENAPI=1 cargo test -p agent-backlog-cli --test openapi"
    );
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document["info"]["version"], agent_backlog::VERSION);
}

/// A documented path with its parameters filled with values of the right form.
fn concrete(path: &str) -> String {
    path.replace("{agent_id}", "marketing-lead")
        .replace("{task_id}", "MKT-001")
        .replace("{depends_on}", "MKT-002")
        .replace("{token}", "MKT-001.1.0123456789abcdef")
}

#[test]
fn the_router_and_the_document_agree_on_paths_methods_and_statuses() {
    let server = Server::start();
    let document = served(&server);
    let paths = document["paths"].as_object().unwrap();
    // A task and a second one, so that the routes that take them find them.
    server
        .post("/api/backlogs/marketing-lead", r#"{"title": "one"}"#)
        .expect(201);
    server
        .post("/api/backlogs/marketing-lead", r#"{"title": "two"}"#)
        .expect(201);
    let mut checked = 0;
    for (path, item) in paths {
        if path == "/api/events/stream" {
            continue; // it never ends; the server tests read it
        }
        let item = item.as_object().unwrap();
        for method in METHODS {
            let url = concrete(path);
            let response = match method {
                "GET" | "DELETE" => server.request(method, &url, &[], None),
                _ => server.send_json(method, &url, "{}"),
            };
            match item.get(&method.to_ascii_lowercase()) {
                Some(operation) => {
                    let documented = operation["responses"].as_object().unwrap();
                    assert!(
                        documented.contains_key(&response.status.to_string()),
                        "{method} {url} answered {} ({}), which the document does not list: {:?}",
                        response.status,
                        response.text(),
                        documented.keys().collect::<Vec<_>>()
                    );
                    assert!(
                        !response.text().contains("there is no route"),
                        "{method} {url} is documented but no route: {}",
                        response.text()
                    );
                    checked += 1;
                }
                None => {
                    assert_eq!(
                        response.status,
                        405,
                        "{method} {url} is not documented: {}",
                        response.text()
                    );
                    let allow = response.header("allow").unwrap_or_default().to_owned();
                    for documented in item.keys() {
                        assert!(
                            allow.contains(&documented.to_ascii_uppercase()),
                            "{url}: Allow {allow:?} lacks {documented}"
                        );
                    }
                }
            }
        }
    }
    assert!(checked >= 25, "only {checked} routes checked");
    for op in OPERATIONS {
        for path in std::iter::once(op.route.path).chain(op.route.also) {
            let method = op.route.method.to_ascii_lowercase();
            let documented = &paths[path][&method];
            assert!(
                documented.is_object(),
                "{} {path} ({}) is not documented",
                op.route.method,
                op.name
            );
            let statuses = documented["responses"].as_object().unwrap();
            assert!(
                statuses.contains_key(&op.route.status.to_string()),
                "{}",
                op.name
            );
            if let Some(null) = op.route.status_if_null {
                assert!(statuses.contains_key(&null.to_string()), "{}", op.name);
            }
        }
    }
}

#[test]
fn a_created_task_has_its_location() {
    let server = Server::start();
    let created = server.post("/api/backlogs/marketing-lead", r#"{"title": "one"}"#);
    assert_eq!(created.status, 201);
    let location = created
        .header("location")
        .expect("a Location header")
        .to_owned();
    assert_eq!(location, "/api/backlogs/marketing-lead/MKT-001");
    assert_eq!(server.get(&location).expect(200)["title"], "one");
    // A replay created nothing, and a batch has no one place.
    let create_with_key = || {
        server.request(
            "POST",
            "/api/backlogs/marketing-lead",
            &[
                ("Content-Type", "application/json"),
                ("Idempotency-Key", "k1"),
            ],
            Some(br#"{"title": "two"}"#),
        )
    };
    let first = create_with_key();
    assert_eq!(first.status, 201);
    assert_eq!(
        first.header("location"),
        Some("/api/backlogs/marketing-lead/MKT-002")
    );
    let again = create_with_key();
    assert_eq!(again.status, 200);
    assert_eq!(again.header("location"), None);
    let batch = server.post(
        "/api/backlogs/marketing-lead/batch",
        r#"[{"title": "three"}]"#,
    );
    assert_eq!(batch.status, 201);
    assert_eq!(batch.header("location"), None);
}
