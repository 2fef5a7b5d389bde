//! The conformance cases of testdata/conformance/ over real HTTP: each case on its own
//! `agent-backlog serve` (a fresh database, a free loopback port), each request of the
//! case mapped to its route (cli/src/server.rs): path segments from agent_id and
//! task_id, the query string from list_tasks' and query_tasks' filters, the body from
//! the request's `task`, `tasks`, `patch` or `prefix`, sent as written in the case.
//!
//! A success must have the route's status (201 for the creates, 200 otherwise, 204 for
//! a claim_next that finds nothing) and a compact JSON body; a failure the status of its
//! code and the body `{"error":{"code","message"}}`. A request that HTTP cannot carry
//! as the case wrote it (a number as agent_id, a boolean in a query string, ...) fails
//! the case, which must then leave "http" out of its surfaces.
//!
//! `CONFORMANCE_THREADS` sets how many cases run at once (default 3: most of the time
//! goes to starting servers); `CONFORMANCE_FILTER` selects cases by name.

mod common;
#[path = "../../tests/common/conformance.rs"]
mod conformance;
#[path = "../../tests/common/pg.rs"]
mod pg;

use std::fmt::Display;

use common::{Response, Server};
use conformance::{members, At, Failure, Json, Member, OpensAt, Outcome, Surface};

/// The filters whose query-string values the server reads as numbers (cli/src/convert.rs).
const NUMERIC: [&str; 5] = ["priority", "limit", "offset", "after", "wait_seconds"];

struct Http;

impl Surface for Http {
    type Store = Server;
    const NAME: &'static str = "http";

    fn open(&self) -> Server {
        Server::start()
    }

    fn call(&self, server: &Server, op: &str, request: &str) -> Outcome {
        let route = Route::of(op, request);
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if route.body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        if let Some(key) = &route.key {
            headers.push(("Idempotency-Key", key));
        }
        let response = server.request(
            route.method,
            &route.path,
            &headers,
            route.body.as_deref().map(str::as_bytes),
        );
        // A replayed idempotent create answers 200 and says so (SPEC §12).
        let replayed = route.key.is_some()
            && response.status == 200
            && response.header("idempotent-replayed") == Some("true");
        let success = if replayed { 200 } else { route.success };
        interpret(op, success, &response)
    }
}

fn inexpressible(op: &str, why: impl Display) -> ! {
    panic!("{op}: cannot be sent over HTTP as the case wrote it: {why}; leave http out of its surfaces")
}

/// Percent-encodes everything but the unreserved characters of RFC 3986.
fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The members of a request, taken one by one.
struct Parts<'a> {
    op: &'a str,
    members: Vec<Member<'a>>,
}

impl<'a> Parts<'a> {
    fn take(&mut self, key: &str) -> Option<Member<'a>> {
        let i = self.members.iter().position(|m| m.key == key)?;
        let member = self.members.remove(i);
        if self.members.iter().any(|m| m.key == key) {
            inexpressible(self.op, format_args!("{key} is given twice"));
        }
        Some(member)
    }

    /// A path segment: a non-empty string.
    fn segment(&mut self, key: &str) -> String {
        let op = self.op;
        let member = self
            .take(key)
            .unwrap_or_else(|| inexpressible(op, format_args!("no {key} for the path")));
        match member.value.as_str() {
            Some(text) if !text.is_empty() => percent(&text),
            _ => inexpressible(op, format_args!("{key} {} as a path segment", member.raw)),
        }
    }

    /// A body, as written in the request.
    fn body(&mut self, key: &str) -> String {
        let op = self.op;
        match self.take(key) {
            Some(member) => member.raw.to_owned(),
            None => inexpressible(op, format_args!("no {key} for the body")),
        }
    }

    /// A JSON object of every member left, as written, under its HTTP name.
    fn object(&mut self, renames: &[(&str, &str)]) -> String {
        let mut fields = Vec::new();
        while let Some(key) = self.members.first().map(|m| m.key.clone()) {
            let member = self.take(&key).expect("the first member");
            let name = renames
                .iter()
                .find(|(from, _)| *from == key)
                .map_or(key.as_str(), |(_, to)| to);
            fields.push(format!(
                "{}:{}",
                serde_json::to_string(name).unwrap(),
                member.raw
            ));
        }
        format!("{{{}}}", fields.join(","))
    }

    /// A header's value: a string of visible ASCII, or absent.
    fn header(&mut self, key: &str) -> Option<String> {
        let op = self.op;
        let member = self.take(key)?;
        match member.value.as_str() {
            Some(text)
                if text.bytes().all(|b| (0x20..0x7f).contains(&b)) && text.trim() == text =>
            {
                Some(text)
            }
            _ => inexpressible(op, format_args!("{key} {} as a header", member.raw)),
        }
    }

    /// A query string of every member left, in order; null is a filter left out.
    fn query(&mut self) -> String {
        let mut pairs = Vec::new();
        while let Some(key) = self.members.first().map(|m| m.key.clone()) {
            let member = self.take(&key).expect("the first member");
            let numeric = NUMERIC.contains(&key.as_str());
            let text = match &member.value {
                Json::Null => continue,
                Json::Num(n) if numeric => n.clone(),
                Json::Str(_) => match member.value.as_str() {
                    // The server would read it as a number.
                    Some(t) if numeric && matches!(Json::parse(&t), Ok(Json::Num(_))) => {
                        inexpressible(self.op, format_args!("{key} {}", member.raw))
                    }
                    Some(t) => t,
                    None => inexpressible(self.op, format_args!("{key} {}", member.raw)),
                },
                _ => inexpressible(self.op, format_args!("{key} {}", member.raw)),
            };
            pairs.push(format!("{}={}", percent(&key), percent(&text)));
        }
        if pairs.is_empty() {
            String::new()
        } else {
            format!("?{}", pairs.join("&"))
        }
    }

    fn finish(self) {
        if let Some(m) = self.members.first() {
            inexpressible(
                self.op,
                format_args!("the route has no place for {}", m.key),
            );
        }
    }
}

/// An operation's request as an HTTP request.
struct Route {
    method: &'static str,
    path: String,
    body: Option<String>,
    /// The status of a success.
    success: u16,
    /// The `Idempotency-Key` header of a create.
    key: Option<String>,
}

impl Route {
    fn of(op: &str, request: &str) -> Route {
        let members = members(request).unwrap_or_else(|e| inexpressible(op, e));
        let mut p = Parts { op, members };
        let route = |method, path: String, body, success| Route {
            method,
            path,
            body,
            success,
            key: None,
        };
        let r = match op {
            "create_task" | "create_tasks" => {
                let a = p.segment("agent_id");
                let (path, body) = match op {
                    "create_task" => (format!("/api/backlogs/{a}"), p.body("task")),
                    _ => (format!("/api/backlogs/{a}/batch"), p.body("tasks")),
                };
                Route {
                    key: p.header("idempotency_key"),
                    ..route("POST", path, Some(body), 201)
                }
            }
            "add_dependency" | "remove_dependency" => {
                let (a, t) = (p.segment("agent_id"), p.segment("task_id"));
                let d = p.segment("depends_on");
                let method = if op == "add_dependency" {
                    "PUT"
                } else {
                    "DELETE"
                };
                let path = format!("/api/backlogs/{a}/{t}/dependencies/{d}");
                route(method, path, None, 200)
            }
            "get_dependencies" => {
                let (a, t) = (p.segment("agent_id"), p.segment("task_id"));
                route(
                    "GET",
                    format!("/api/backlogs/{a}/{t}/dependencies"),
                    None,
                    200,
                )
            }
            "task_history" => {
                let (a, t) = (p.segment("agent_id"), p.segment("task_id"));
                route("GET", format!("/api/backlogs/{a}/{t}/history"), None, 200)
            }
            "events" => {
                let q = p.query();
                route("GET", format!("/api/events{q}"), None, 200)
            }
            "prune_events" => {
                let body = Some(p.object(&[]));
                route("POST", "/api/events/prune".to_owned(), body, 200)
            }
            "list_agents" => {
                let q = p.query();
                route("GET", format!("/api/agents{q}"), None, 200)
            }
            "ready_tasks" => {
                let a = p.segment("agent_id");
                let q = p.query();
                route("GET", format!("/api/backlogs/{a}/ready{q}"), None, 200)
            }
            "update_task" => {
                let (a, t) = (p.segment("agent_id"), p.segment("task_id"));
                let body = Some(p.body("patch"));
                route("PATCH", format!("/api/backlogs/{a}/{t}"), body, 200)
            }
            "set_prefix" => {
                let a = p.segment("agent_id");
                let body = Some(format!(r#"{{"prefix":{}}}"#, p.body("prefix")));
                route("PUT", format!("/api/backlogs/{a}/prefix"), body, 200)
            }
            "get_task" | "delete_task" => {
                let (a, t) = (p.segment("agent_id"), p.segment("task_id"));
                let method = if op == "get_task" { "GET" } else { "DELETE" };
                route(method, format!("/api/backlogs/{a}/{t}"), None, 200)
            }
            "summary" => {
                let a = p.segment("agent_id");
                route("GET", format!("/api/backlogs/{a}/summary"), None, 200)
            }
            "claim_next" => {
                let a = p.segment("agent_id");
                route("POST", format!("/api/backlogs/{a}/claim"), None, 200)
            }
            "list_tasks" => {
                let a = p.segment("agent_id");
                let q = p.query();
                route("GET", format!("/api/backlogs/{a}{q}"), None, 200)
            }
            "query_tasks" => {
                let q = p.query();
                route("GET", format!("/api/backlogs{q}"), None, 200)
            }
            "claim_lease" | "wait_for_task" => {
                let a = p.segment("agent_id");
                let body = Some(p.object(&[("timeout_seconds", "wait_seconds")]));
                route("POST", format!("/api/backlogs/{a}/leases"), body, 200)
            }
            "renew_lease" | "finish_lease" | "finish_and_claim" => {
                let t = p.segment("token");
                let verb = match op {
                    "renew_lease" => "renew",
                    "finish_lease" => "finish",
                    _ => "finish-and-claim",
                };
                let body = Some(p.object(&[]));
                route("POST", format!("/api/leases/{t}/{verb}"), body, 200)
            }
            "get_lease" => {
                let (a, t) = (p.segment("agent_id"), p.segment("task_id"));
                route("GET", format!("/api/backlogs/{a}/{t}/lease"), None, 200)
            }
            "reap_expired" => match p.members.iter().any(|m| m.key == "agent_id") {
                true => {
                    let a = p.segment("agent_id");
                    route("POST", format!("/api/backlogs/{a}/reap"), None, 200)
                }
                false => route("POST", "/api/reap".to_owned(), None, 200),
            },
            _ => inexpressible(op, "no route"),
        };
        p.finish();
        r
    }
}

/// The HTTP status of an error code (SPEC §7).
fn status_of(code: &str) -> u16 {
    match code {
        "invalid_argument" => 400,
        "not_found" => 404,
        "invalid_transition" | "conflict" | "lease_lost" => 409,
        "storage" => 503,
        "internal" => 500,
        other => panic!("an unknown error code {other:?}"),
    }
}

/// A response as the outcome of the operation; panics when it breaks the protocol.
fn interpret(op: &str, success: u16, response: &Response) -> Outcome {
    let text = std::str::from_utf8(&response.body)
        .unwrap_or_else(|_| panic!("{op}: the body is not UTF-8"));
    let may_be_null = ["claim_next", "claim_lease", "wait_for_task", "get_lease"];
    if may_be_null.contains(&op) && response.status == 204 {
        assert!(text.is_empty(), "{op}: a 204 with a body: {text}");
        return Ok("null".into());
    }
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{op}: {} {text}",
        response.status
    );
    // Every JSON body ends with one newline (for people reading it in a terminal); the
    // JSON before it is what the other surfaces give.
    let text = text
        .strip_suffix('\n')
        .unwrap_or_else(|| panic!("{op}: the body does not end with a newline: {text:?}"));
    if (200..300).contains(&response.status) {
        assert_eq!(response.status, success, "{op}: the status of a success");
        return Ok(text.to_owned());
    }
    let error = Json::parse(text).unwrap_or_else(|e| panic!("{op}: not JSON ({e}): {text}"));
    let inner = error.get("error");
    let (code, message) = match (&error, inner) {
        (Json::Obj(top), Some(Json::Obj(fields)))
            if top.len() == 1
                && fields.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>()
                    == ["code", "message"] =>
        {
            (
                inner.and_then(|e| e.get("code")).and_then(Json::as_str),
                inner.and_then(|e| e.get("message")).and_then(Json::as_str),
            )
        }
        _ => (None, None),
    };
    let (Some(code), Some(message)) = (code, message) else {
        panic!(
            "{op}: {} with a body that is not the error object: {text}",
            response.status
        )
    };
    assert_eq!(
        response.status,
        status_of(&code),
        "{op}: the status of {code}: {message}"
    );
    Err(Failure { code, message })
}

#[test]
fn conformance_over_http() {
    let threads = std::env::var("CONFORMANCE_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(3);
    let dir = conformance::data_dir(env!("CARGO_MANIFEST_DIR"));
    conformance::run(&Http, &dir, threads);
}

impl OpensAt for Http {
    fn open_at(&self, location: &str) -> Server {
        Server::start_on(std::path::Path::new(location), &[])
    }
}

/// HTTP on PostgreSQL: each case on its own server whose `--db` is a fresh schema.
#[test]
fn conformance_over_http_on_postgres() {
    let Some(url) = pg::url() else { return };
    let schemas = pg::Schemas::new(&url, "http");
    let dir = conformance::data_dir(env!("CARGO_MANIFEST_DIR"));
    let fresh = || schemas.fresh();
    conformance::run(
        &At {
            surface: Http,
            fresh,
        },
        &dir,
        3,
    );
}
