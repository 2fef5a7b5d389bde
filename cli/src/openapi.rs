//! The OpenAPI 3.1 document of the REST API, derived from the operation table as the
//! routes are: each operation's method, path, inputs (path, query, header, body) and
//! statuses, its result's exact schema ([`agent_backlog::schema`]), and the error body
//! of every failure. Served at `GET /openapi.json`; kept in the repository as
//! `docs/openapi.json`, which a test compares with what the server serves.

use agent_backlog::ops::{Access, Input, Kind, Operation, Place, OPERATIONS};
use agent_backlog::schema::{self, Shape};
use serde_json::{json, Map, Value};

/// The path of the document.
pub const PATH: &str = "/openapi.json";

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in OPERATIONS
        .iter()
        .filter(|op| op.route.selected_by.is_none())
    {
        let sharing = op.sharing();
        add(&mut paths, op.route.path, op, &sharing, op.inputs);
        if let Some(also) = op.route.also {
            // The second path takes none of the first path's segment inputs.
            let inputs: Vec<Input> = op
                .inputs
                .iter()
                .filter(|i| i.place != Place::Path)
                .copied()
                .collect();
            add(&mut paths, also, op, &sharing, &inputs);
            // operationIds are unique: the second path's is the name with `_all`.
            let method = op.route.method.to_ascii_lowercase();
            paths[also][method]["operationId"] = json!(format!("{}_all", op.name));
        }
    }
    paths.insert(
        "/api/events/stream".into(),
        json!({"get": {
            "operationId": "events_stream",
            "summary": "The change feed as server-sent events",
            "description": "One server-sent event per event of the feed, its id the event's seq and its data the event's JSON; a client that reconnects with Last-Event-ID resumes after that seq. The stream ends when the server stops.",
            "parameters": [
                query_parameter("after", false, json!({"anyOf": [schema::of_input("events", "after", Kind::Integer, ""), {"const": "now"}]}), "Start after this seq (default 0: from the oldest event kept); now: after the newest event."),
                query_parameter("agent_id", false, schema::of_input("events", "agent_id", Kind::Text, ""), "Only this agent's events."),
                {"name": "Last-Event-ID", "in": "header", "required": false, "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
                 "description": "Resume after this seq (sent by EventSource on a reconnect)."},
            ],
            "responses": {
                "200": {"description": "The stream: one server-sent event per event of the feed.",
                        "content": {"text/event-stream": {"schema": {
                            "type": "object",
                            "properties": {
                                "id": {"type": "string", "pattern": "^[0-9]+$", "description": "The event's seq."},
                                "event": {"type": "string", "enum": ["message"]},
                                "data": {"type": "string", "description": "The event's JSON."},
                            },
                        }}}},
                "400": error_response("A bad parameter."),
                "503": error_response("The store failed."),
            },
        }}),
    );
    for (path, content_type, summary) in [
        ("/", "text/html", "The dashboard"),
        ("/ui/app.js", "text/javascript", "The dashboard's script"),
        ("/ui/style.css", "text/css", "The dashboard's style sheet"),
    ] {
        paths.insert(
            path.into(),
            json!({"get": {
                "operationId": format!("dashboard_{}", path.trim_start_matches("/ui/").replace(['/', '.'], "_")).trim_end_matches('_').to_owned(),
                "summary": summary,
                "responses": {"200": {"description": summary, "content": {content_type: {"schema": {"type": "string"}}}}},
            }}),
        );
    }
    paths.insert(
        PATH.into(),
        json!({"get": {
            "operationId": "openapi",
            "summary": "This document",
            "responses": {"200": {"description": "The OpenAPI document.",
                                   "content": {"application/json": {"schema": {"type": "object"}}}}},
        }}),
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "agent-backlog",
            "version": agent_backlog::VERSION,
            "description": "A prioritized task backlog for every AI agent. `serve --mcp` also serves the Model Context Protocol at /mcp (not described here). Every body and result is JSON; every failure has the body {\"error\": {\"code\", \"message\"}} and the status of its code (400 invalid_argument, 404 not_found, 409 invalid_transition, conflict and lease_lost, 503 storage, 500 internal).",
        },
        "paths": paths,
        // Under `serve --auth` every route but the dashboard's page takes a token;
        // without it, none does.
        "security": [{}, {"token": []}],
        "components": {
            "schemas": {"Error": error_schema()},
            "securitySchemes": {"token": {
                "type": "http",
                "scheme": "bearer",
                "description": "A token of `agent-backlog token create`, under `serve --auth`: an agent's token may use that agent's backlog only; an admin token every route.",
            }},
        },
    })
}

fn add(
    paths: &mut Map<String, Value>,
    path: &str,
    op: &Operation,
    sharing: &[&Operation],
    inputs: &[Input],
) {
    let entry = paths
        .entry(path.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    let method = op.route.method.to_ascii_lowercase();
    entry[method] = operation(op, sharing, inputs);
}

fn operation(op: &Operation, sharing: &[&Operation], inputs: &[Input]) -> Value {
    let mut parameters = Vec::new();
    for input in inputs {
        let schema = schema::of_input(op.name, input.name, input.kind, input.doc);
        match input.place {
            Place::Path => parameters.push(json!({
                "name": input.name, "in": "path", "required": true, "schema": schema,
                "description": input.doc,
            })),
            Place::Query => parameters.push(query_parameter(
                input.rest_name(),
                input.required,
                schema,
                input.doc,
            )),
            Place::Header => parameters.push(json!({
                "name": input.rest_name(), "in": "header", "required": input.required,
                "schema": schema, "description": input.doc,
            })),
            Place::Body | Place::BodyField => {}
        }
    }
    if op.access != Access::Read {
        parameters.push(json!({
            "name": "Agent-Backlog-Actor", "in": "header", "required": false,
            "schema": {"type": "string", "maxLength": agent_backlog::validate::MAX_ACTOR_CHARS,
                       "pattern": "^[ -~]*[!-~][ -~]*$"},
            "description": "Who this write is recorded as in the history (the actor of its events); the server's --actor when absent.",
        }));
    }
    let mut description = op.doc.to_owned();
    for other in sharing {
        description.push_str(&format!(
            " With {} in the body it is {}: {}",
            other.route.selected_by.unwrap_or_default(),
            other.name,
            other.doc
        ));
    }
    let mut object = json!({
        "operationId": op.name,
        "summary": summary(op.doc),
        "description": description,
        "responses": responses(op, sharing, inputs),
    });
    if !parameters.is_empty() {
        object["parameters"] = Value::Array(parameters);
    }
    if let Some(body) = request_body(op, inputs, sharing) {
        object["requestBody"] = body;
    }
    object
}

fn query_parameter(name: &str, required: bool, schema: Value, doc: &str) -> Value {
    json!({"name": name, "in": "query", "required": required, "schema": schema, "description": doc})
}

/// The first sentence of a doc text.
fn summary(doc: &str) -> String {
    let end = doc.find(". ").map_or(doc.len(), |i| i + 1);
    doc[..end].trim_end_matches('.').to_owned()
}

fn request_body(op: &Operation, inputs: &[Input], sharing: &[&Operation]) -> Option<Value> {
    if let Some(body) = inputs.iter().find(|i| i.place == Place::Body) {
        return Some(json!({
            "required": true,
            "content": {"application/json": {"schema": schema::of_input(op.name, body.name, body.kind, body.doc)}},
        }));
    }
    let mut properties = Map::new();
    let mut required = Vec::new();
    let fields = inputs
        .iter()
        .chain(sharing.iter().flat_map(|o| o.inputs.iter()));
    for input in fields.filter(|i| i.place == Place::BodyField) {
        if properties.contains_key(input.rest_name()) {
            continue;
        }
        let mut schema = schema::of_input(op.name, input.rest_name(), input.kind, input.doc);
        // An optional field of a body may be null: "not given" — but for the field that
        // selects another operation (`wait_seconds`), whose null is that operation's
        // missing input.
        let selects = sharing
            .iter()
            .any(|o| o.route.selected_by == Some(input.rest_name()));
        if !input.required && !selects {
            schema = schema::nullable(schema);
        }
        properties.insert(input.rest_name().to_owned(), schema);
        if input.required && inputs.iter().any(|i| i.name == input.name) {
            required.push(input.rest_name());
        }
    }
    if properties.is_empty() {
        return None;
    }
    Some(json!({
        "required": !required.is_empty(),
        "content": {"application/json": {"schema": {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        }}},
    }))
}

fn responses(op: &Operation, sharing: &[&Operation], inputs: &[Input]) -> Value {
    let result = json!({"application/json": {"schema": op.result.present_schema()}});
    let mut responses = Map::new();
    let status = op.route.status.to_string();
    let mut success = json!({"description": "Success.", "content": result});
    if op.route.status == 201 && op.route.location.is_some() {
        success["headers"] = json!({"Location": {
            "description": "The path of the created task.",
            "schema": {"type": "string"},
        }});
    }
    if let Some(links) = links(op) {
        success["links"] = links;
    }
    responses.insert(status, success);
    if let Some(null) = op.route.status_if_null {
        responses.insert(
            null.to_string(),
            json!({"description": "Nothing to return (the result is null)."}),
        );
    }
    if inputs
        .iter()
        .any(|i| i.place == Place::Header && i.name == "idempotency_key")
    {
        responses.insert(
            "200".into(),
            json!({
                "description": "A replay of an earlier create with the same Idempotency-Key: what it created, as it is now; nothing new was created.",
                "headers": {"Idempotent-Replayed": {"schema": {"type": "string", "enum": ["true"]}}},
                "content": result,
            }),
        );
    }
    let has_body = inputs
        .iter()
        .chain(sharing.iter().flat_map(|o| o.inputs.iter()))
        .any(|i| matches!(i.place, Place::Body | Place::BodyField));
    responses.insert(
        "400".into(),
        error_response("A bad parameter, body, field, type or range (invalid_argument)."),
    );
    responses.insert(
        "401".into(),
        error_response("Under `serve --auth`: no token, or one that is unknown, revoked or expired (unauthenticated)."),
    );
    responses.insert(
        "403".into(),
        error_response("Under `serve --auth`, a token of another agent, or an agent's token on a route of every agent (forbidden); a host name that is not this loopback server's, or a write from a web page of another site (invalid_argument)."),
    );
    responses.insert(
        "404".into(),
        error_response("The task (or lease) does not exist (not_found)."),
    );
    responses.insert(
        "429".into(),
        error_response("Past a limit of `serve`: the request rate of the token (`--rate`), or the long polls and streams open at once (`--max-waits`); see Retry-After (rate_limited)."),
    );
    if op.access != Access::Read {
        responses.insert(
            "409".into(),
            error_response("A move the lifecycle forbids, a conflict, or a lease that is no longer held (invalid_transition, conflict, lease_lost)."),
        );
    }
    if has_body {
        responses.insert(
            "413".into(),
            error_response("The body is too large (invalid_argument)."),
        );
        responses.insert(
            "415".into(),
            error_response("The body is not JSON (invalid_argument)."),
        );
    }
    responses.insert("500".into(), error_response("A bug (internal)."));
    responses.insert(
        "503".into(),
        error_response("The store failed: busy past its timeout, disk full, read-only (storage)."),
    );
    Value::Object(responses)
}

/// The OpenAPI links of a success: from a created task to the operations on that task
/// (its `agent_id` and `id`), from a leased claim to the operations on its lease (its
/// token), so that clients and stateful testers can follow what an answer names.
fn links(op: &Operation) -> Option<Value> {
    let path_inputs = |o: &Operation| -> Vec<&str> {
        o.inputs
            .iter()
            .filter(|i| i.place == Place::Path)
            .map(|i| i.name)
            .collect()
    };
    let (takes, parameters): (&[&str], Value) = match op.result {
        Shape::Task if op.route.status == 201 => (
            &["agent_id", "task_id"],
            json!({"agent_id": "$request.path.agent_id", "task_id": "$response.body#/id"}),
        ),
        Shape::ClaimOrNull => (&["token"], json!({"token": "$response.body#/lease/token"})),
        _ => return None,
    };
    let links: Map<String, Value> = OPERATIONS
        .iter()
        .filter(|o| path_inputs(o) == takes)
        .map(|o| {
            (
                o.name.to_owned(),
                json!({"operationId": o.name, "parameters": parameters}),
            )
        })
        .collect();
    Some(Value::Object(links))
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    })
}

fn error_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "enum": [
                    "invalid_argument", "not_found", "invalid_transition", "conflict",
                    "storage", "internal", "lease_lost", "unauthenticated", "forbidden", "rate_limited"
                ]},
                "message": {"type": "string"},
            },
            "required": ["code", "message"],
            "additionalProperties": false,
        }},
        "required": ["error"],
        "additionalProperties": false,
    })
}
