//! The Model Context Protocol server (SPEC §15): `agent-backlog mcp` over stdio and
//! `agent-backlog serve --mcp` at `/mcp` (Streamable HTTP).
//!
//! Everything MCP-specific is in this one module, on the official Rust SDK (`rmcp`), so
//! that its next major version is a change here only. The tools themselves — names,
//! descriptions, schemas, annotations, how flat arguments become an operation's request,
//! results and errors — are the core's [`agent_backlog::tools`], the same definition the
//! Python package exports. This module only converts them to the SDK's types and runs
//! each call on tokio's blocking pool, where a call that waits (`wait_for_task`,
//! `events` with `wait_seconds`) also ends when the client cancels the request or the
//! server stops.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use agent_backlog::tools::{Outcome, Toolbox};
use agent_backlog::Store;

use crate::server::{shutdown_signal, STOPPING};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, JsonObject,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::Value;

/// What a model is told about the server as a whole when it connects.
const INSTRUCTIONS: &str = "A prioritized backlog of tasks per agent. To work: claim_lease \
    takes the most urgent ready task with a lease, finish_lease hands it in with its result \
    (or releases or blocks it). list_tasks, get_task and summary show a backlog; create_task \
    adds work; update_task changes a task. Errors come back as {\"error\": {\"code\", \
    \"message\"}}: the message says what to change.";

/// The MCP server of one store with its tools. A call that waits ends when the
/// client cancels it or the process starts stopping ([`crate::server::STOPPING`]).
#[derive(Clone)]
pub struct Backlog {
    store: Arc<Store>,
    toolbox: Arc<Toolbox>,
    tools: Arc<Vec<Tool>>,
}

impl Backlog {
    /// The server of `store` with the tools of `toolbox`.
    pub fn new(store: Arc<Store>, toolbox: Toolbox) -> Backlog {
        let tools = toolbox.tools().into_iter().map(sdk_tool).collect();
        Backlog {
            store,
            toolbox: Arc::new(toolbox),
            tools: Arc::new(tools),
        }
    }
}

/// A core tool as the SDK's tool.
fn sdk_tool(tool: agent_backlog::tools::Tool) -> Tool {
    let hints = tool.annotations;
    let annotations = ToolAnnotations::new()
        .read_only(hints.read_only)
        .destructive(hints.destructive)
        .idempotent(hints.idempotent)
        .open_world(false);
    Tool::new(
        tool.name,
        tool.description,
        Arc::new(object(tool.input_schema)),
    )
    .with_raw_output_schema(Arc::new(object(tool.output_schema)))
    .with_annotations(annotations)
}

fn object(schema: Value) -> JsonObject {
    match schema {
        Value::Object(object) => object,
        // The core writes every schema as an object (tools::Tool's contract).
        other => unreachable!("a tool schema that is not an object: {other}"),
    }
}

fn sdk_result(outcome: Outcome) -> CallToolResult {
    if outcome.is_error {
        CallToolResult::structured_error(outcome.content)
    } else {
        CallToolResult::structured(outcome.content)
    }
}

impl ServerHandler for Backlog {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("agent-backlog", agent_backlog::VERSION))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.as_ref().clone()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.into_owned();
        if !self.tools.iter().any(|tool| tool.name == name) {
            // The protocol's answer to an unknown tool (a JSON-RPC error, -32602), not a
            // tool result: the client asked for something this server never listed.
            let names: Vec<&str> = self.tools.iter().map(|tool| tool.name.as_ref()).collect();
            return Err(ErrorData::invalid_params(
                format!(
                    "there is no tool named {name:?} here; the tools are {}",
                    names.join(", ")
                ),
                None,
            ));
        }
        let (store, toolbox) = (Arc::clone(&self.store), Arc::clone(&self.toolbox));
        let cancelled = context.ct.clone();
        let arguments = request.arguments.map_or(Value::Null, Value::Object);
        // Over HTTP under `serve --auth`, the writes are recorded as the token's name,
        // and a waiting tool holds one of the token's places while it waits.
        let parts = context.extensions.get::<axum::http::request::Parts>();
        let waits = agent_backlog::ops::operation(&name).is_some_and(|op| op.waits(&arguments));
        let limits = parts.and_then(|parts| parts.extensions.get::<Arc<crate::limits::Limits>>());
        let token = parts
            .and_then(|parts| parts.extensions.get::<crate::auth::Caller>())
            .map(|caller| &caller.0);
        let place = match (limits, token) {
            (Some(limits), Some(token)) if waits => match limits.begin_wait(token) {
                Ok(place) => Some(place),
                Err(full) => {
                    let content = serde_json::json!({"error": {"code": "rate_limited", "message": full.message()}});
                    return Ok(sdk_result(Outcome {
                        content,
                        is_error: true,
                    })
                    .into());
                }
            },
            _ => None,
        };
        // Over HTTP under `serve --auth`, the writes are recorded as the token's name.
        let actor = token.map(|token| token.name.clone());
        let outcome = tokio::task::spawn_blocking(move || {
            let _place = place;
            let mut stop = || cancelled.is_cancelled() || STOPPING.load(Ordering::Acquire);
            match actor.map(|who| store.with_actor(Some(&who))) {
                Some(Ok(acting)) => toolbox.call_until(&acting, &name, arguments, &mut stop),
                Some(Err(err)) => Outcome {
                    content: err.to_json(),
                    is_error: true,
                },
                None => toolbox.call_until(&store, &name, arguments, &mut stop),
            }
        })
        .await
        .unwrap_or_else(|panic| Outcome {
            content: agent_backlog::Error::Internal(format!("the tool call failed: {panic}"))
                .to_json(),
            is_error: true,
        });
        Ok(sdk_result(outcome).into())
    }
}

/// Serves MCP over stdin and stdout until the client closes stdin (or SIGINT or
/// SIGTERM); returns an error message when the protocol could not start.
pub fn serve_stdio(backlog: Backlog) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let served = runtime.block_on(async move {
        let stop = shutdown_signal()?;
        let service = backlog
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| format!("the MCP session did not start: {e}"))?;
        let token = service.cancellation_token();
        // The session ends when the client closes stdin, or at a signal: then without
        // waiting for the session's blocking read of stdin, which only the client ends.
        let ended = tokio::select! {
            ended = service.waiting() => ended
                .map(drop)
                .map_err(|e| format!("the MCP session failed: {e}")),
            () = stop => {
                token.cancel();
                Ok(())
            }
        };
        // A call still waiting for work (its client gone) ends at its next look.
        STOPPING.store(true, Ordering::Release);
        ended
    });
    // Not a plain drop: the read of stdin is blocking and only ends when the client
    // closes it; after a signal the process must not wait for that. A tool call still
    // running ends at its next look at STOPPING (50 ms), within this second; a write
    // cut off later was never acknowledged, and its transaction rolls back.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    served
}

/// The Streamable HTTP service of `backlog`, to mount at `/mcp`. `any_host` lifts the
/// check that requests name a loopback host (for a server bound to another address);
/// `stop` ends every session when the server shuts down.
pub fn http_service(
    backlog: Backlog,
    any_host: bool,
) -> (
    StreamableHttpService<Backlog, LocalSessionManager>,
    impl FnOnce(),
) {
    let mut config = StreamableHttpServerConfig::default();
    if any_host {
        config = config.disable_allowed_hosts();
    }
    let sessions = config.cancellation_token.clone();
    let service = StreamableHttpService::new(
        move || Ok(backlog.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    (service, move || sessions.cancel())
}
