//! `agent-backlog serve`: the REST API over one store.
//!
//! Routes (every body and response is JSON; see the README for the full table):
//!
//! | method | path | operation | success |
//! |---|---|---|---|
//! | GET | `/api/backlogs` | query_tasks (`status`, `priority`, `agent_id`, `limit`, `offset`) | 200 |
//! | GET | `/api/backlogs/{agent_id}` | list_tasks (`status`, `limit`, `offset`) | 200 |
//! | POST | `/api/backlogs/{agent_id}` | create_task | 201 |
//! | GET | `/api/backlogs/{agent_id}/summary` | summary | 200 |
//! | POST | `/api/backlogs/{agent_id}/claim` | claim_next | 200, or 204 when nothing is ready |
//! | POST | `/api/backlogs/{agent_id}/batch` | create_tasks (a JSON array) | 201 |
//! | PUT | `/api/backlogs/{agent_id}/prefix` | set_prefix (`{"prefix": "MKT"}`) | 200 |
//! | GET | `/api/backlogs/{agent_id}/{task_id}` | get_task | 200 |
//! | PATCH | `/api/backlogs/{agent_id}/{task_id}` | update_task | 200 |
//! | DELETE | `/api/backlogs/{agent_id}/{task_id}` | delete_task | 200 |
//!
//! The routes of Part II (leases, waiting, dependencies, the ready queue) are in the
//! README's table; `serve --mcp` adds the MCP tools at `/mcp` ([`crate::mcp`]); an `Idempotency-Key` header makes a create a replay-safe one (201,
//! or 200 with `Idempotent-Replayed: true` on a replay).
//!
//! The routes are derived from the core's operation table
//! ([`agent_backlog::ops::OPERATIONS`]): each operation names its method, path and
//! success status, and where each of its inputs travels (path, query string, body).
//! The server only converts: it gathers the inputs into the operation's JSON request,
//! which the core parses strictly, and core errors come back with
//! `ErrorCode::http_status` and the error JSON of the contract. Store calls run on
//! tokio's blocking pool, never on the async workers.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_backlog::ops::{Kind, Operation, Place, OPERATIONS};
use agent_backlog::tools::Toolbox;
use agent_backlog::{Error, Event, EventQuery, Store, StoreOptions, Token};
use axum::body::{Body, HttpBody};
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use axum::Extension;
use axum::Router;
use serde_json::{Map, Value};

use crate::auth::{self, Caller};
use crate::limits::Limits;
use crate::{convert, dashboard, listen, mcp, openapi};

/// Exit status of `serve` when it cannot listen on the address (EX_UNAVAILABLE).
pub const EXIT_CANNOT_LISTEN: u8 = 69;

/// What `agent-backlog serve` needs to start.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Host name or IP address to listen on.
    pub host: String,
    /// TCP port; 0 picks a free one (printed in the startup line).
    pub port: u16,
    /// The database file.
    pub db: PathBuf,
    /// Busy timeout and durability of the store.
    pub options: StoreOptions,
    /// The MCP tools to serve at `/mcp` (`serve --mcp`), if any.
    pub mcp: Option<Toolbox>,
    /// Whether the dashboard offers its actions (`serve --ui-actions`).
    pub ui_actions: bool,
    /// Whether every request must show a token (`serve --auth`).
    pub auth: bool,
    /// Whether an address other than loopback may be served without `--auth`
    /// (`serve --insecure-no-auth`).
    pub insecure_no_auth: bool,
    /// The certificate chain and private key (PEM files) to serve HTTPS with.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The limits that keep one client from hurting the others.
    pub limits: LimitsConfig,
}

/// The limits of `serve`; see `agent-backlog serve --help` for their defaults.
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// Connections served at once.
    pub max_connections: usize,
    /// Seconds a client has to send a request's head (and a TLS handshake).
    pub head_timeout: Duration,
    /// Seconds a client has to send a request's body.
    pub body_timeout: Duration,
    /// Requests per second per token under `--auth` (`None`: no limit), and the burst.
    pub rate: Option<(NonZeroU32, NonZeroU32)>,
    /// Long polls and event streams open at once per client.
    pub max_waits: usize,
}

/// Why `serve` stopped with a failure.
#[derive(Debug)]
pub enum ServeError {
    /// The store could not be opened (exit status from its error code).
    Store(Error),
    /// The address could not be bound, or the runtime could not start.
    Listen(String),
    /// The configuration is refused (an address other than loopback without
    /// `--auth`).
    Refused(String),
}

/// Opens the store, listens, and serves until SIGINT or SIGTERM; requests in flight
/// are finished before it returns.
pub fn serve(config: ServeConfig) -> Result<(), ServeError> {
    let store =
        Arc::new(Store::open_with(&config.db, config.options.clone()).map_err(ServeError::Store)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| ServeError::Listen(format!("cannot start the async runtime: {e}")))?;
    let served = runtime.block_on(run(config, Arc::clone(&store)));
    // Dropping the runtime waits for blocking store calls that are still running.
    drop(runtime);
    served?;
    if let Err(err) = store.close() {
        eprintln!("warning: closing the database failed: {err}");
    }
    eprintln!("stopped");
    Ok(())
}

async fn run(config: ServeConfig, store: Arc<Store>) -> Result<(), ServeError> {
    // Install the signal handlers before announcing the address, so that a signal
    // sent as soon as the server is up is never taken by the default action.
    let shutdown = shutdown_signal().map_err(ServeError::Listen)?;
    let tls = match &config.tls {
        Some((cert, key)) => Some(listen::tls_acceptor(cert, key).map_err(ServeError::Refused)?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port))
        .await
        .map_err(|e| {
            ServeError::Listen(format!(
                "cannot listen on {}:{}: {e}",
                config.host, config.port
            ))
        })?;
    let addr: SocketAddr = listener
        .local_addr()
        .map_err(|e| ServeError::Listen(format!("cannot read the bound address: {e}")))?;
    if !addr.ip().is_loopback() && !config.auth {
        if !config.insecure_no_auth {
            return Err(ServeError::Refused(format!(
                "{addr} is not a loopback address: serve it with --auth (and give each agent a \
                 token: `agent-backlog token create --agent ID`), or say --insecure-no-auth to \
                 let anyone who can reach it read and change every backlog"
            )));
        }
        eprintln!(
            "warning: {addr} is not a loopback address and --insecure-no-auth is given: \
             anyone who can reach it can read and change every backlog"
        );
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!(
        "agent-backlog {} listening on {scheme}://{addr} (database {}); Ctrl-C to stop",
        agent_backlog::VERSION,
        agent_backlog::shown_location(&config.db.to_string_lossy())
    );
    if config.auth {
        eprintln!(
            "every request needs a token (Authorization: Bearer); the dashboard's page is public"
        );
        if tls.is_none() && !addr.ip().is_loopback() {
            eprintln!(
                "warning: tokens cross the network in clear text: serve HTTPS (--tls-cert, --tls-key) or put a TLS proxy in front"
            );
        }
    }
    let mcp_agent = config
        .mcp
        .as_ref()
        .and_then(|toolbox| toolbox.agent().map(str::to_owned));
    let mut app = router(Arc::clone(&store), config.ui_actions);
    let mut end_sessions: Box<dyn FnOnce() + Send> = Box::new(|| {});
    if let Some(toolbox) = config.mcp {
        let (service, end) = mcp::http_service(
            mcp::Backlog::new(Arc::clone(&store), toolbox),
            !addr.ip().is_loopback(),
        );
        app = app.nest_service("/mcp", service);
        end_sessions = Box::new(end);
        let scheme = if tls.is_some() { "https" } else { "http" };
        eprintln!("MCP (Streamable HTTP) at {scheme}://{addr}/mcp");
    }
    let limits = config.limits;
    let per_client = Limits::new(
        limits.rate.unwrap_or((NonZeroU32::MAX, NonZeroU32::MAX)),
        limits.max_waits,
    );
    if config.auth {
        // Under --auth, the long polls and streams of each token are counted. (On a
        // server without tokens every local client is one address.)
        app = app.layer(Extension(Arc::clone(&per_client)));
        if limits.rate.is_some() {
            app = app.layer(middleware::from_fn(move |request: Request, next: Next| {
                crate::limits::rate(Arc::clone(&per_client), request, next)
            }));
        }
        let store = Arc::clone(&store);
        app = app.layer(middleware::from_fn(move |request: Request, next: Next| {
            auth::require_token(Arc::clone(&store), mcp_agent.clone(), request, next)
        }));
    }
    app = app.layer(Extension(BodyDeadline(limits.body_timeout)));
    let loopback = addr.ip().is_loopback();
    let app = app.layer(middleware::from_fn(move |request: Request, next: Next| {
        browser_guard(loopback, request, next)
    }));
    let accepting = listen::Accepting {
        max_connections: limits.max_connections,
        head_timeout: limits.head_timeout,
    };
    listen::serve(listener, app, tls, accepting, shutdown, end_sessions).await;
    Ok(())
}

/// Set when the server starts stopping: long polls (`wait_seconds`) then end at once
/// with 204, so that shutdown does not wait out their minute.
pub(crate) static STOPPING: AtomicBool = AtomicBool::new(false);

/// A future that completes on the first SIGINT (Ctrl-C) or SIGTERM.
pub(crate) fn shutdown_signal() -> Result<impl Future<Output = ()>, String> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let install = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| format!("cannot install the {name} handler: {e}"))
        };
        let mut interrupt = install(SignalKind::interrupt(), "SIGINT")?;
        let mut terminate = install(SignalKind::terminate(), "SIGTERM")?;
        Ok(async move {
            let name = tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            };
            STOPPING.store(true, Ordering::Release);
            eprintln!("received {name}: finishing the requests in flight, then stopping");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            STOPPING.store(true, Ordering::Release);
            eprintln!("received Ctrl-C: finishing the requests in flight, then stopping");
        })
    }
}

/// The application: one route per operation of [`OPERATIONS`], the JSON 404 and 405
/// answers, and the request log.
pub fn router(store: Arc<Store>, ui_actions: bool) -> Router {
    let mut routes: Vec<(&'static str, MethodRouter<Arc<Store>>)> = Vec::new();
    // An operation selected by a body field is served by the route it shares.
    for op in OPERATIONS
        .iter()
        .filter(|op| op.route.selected_by.is_none())
    {
        let filter = match op.route.method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "PUT" => MethodFilter::PUT,
            "PATCH" => MethodFilter::PATCH,
            "DELETE" => MethodFilter::DELETE,
            other => unreachable!("the operation table names no method {other}"),
        };
        let sharing = op.sharing();
        // Each route carries its operation (and those sharing it), for `OpRequest`.
        let method: MethodRouter<Arc<Store>> = MethodRouter::new()
            .on(filter, operation)
            .layer::<_, std::convert::Infallible>(Extension(op))
            .layer::<_, std::convert::Infallible>(Extension(Sharing(sharing)));
        for path in std::iter::once(op.route.path).chain(op.route.also) {
            match routes.iter_mut().find(|(p, _)| *p == path) {
                Some((_, methods)) => *methods = std::mem::take(methods).merge(method.clone()),
                None => routes.push((path, method.clone())),
            }
        }
    }
    routes.push(("/api/events/stream", axum::routing::get(event_stream)));
    routes.push((openapi::PATH, axum::routing::get(openapi_document)));
    routes.push((
        "/",
        axum::routing::get(move || std::future::ready(dashboard::index(ui_actions))),
    ));
    routes.push((
        "/ui/app.js",
        axum::routing::get(|| std::future::ready(dashboard::script())),
    ));
    routes.push((
        "/ui/style.css",
        axum::routing::get(|| std::future::ready(dashboard::style())),
    ));
    let api = routes
        .into_iter()
        .fold(Router::new(), |api, (path, methods)| {
            api.route(path, methods)
        })
        .fallback(unknown_route)
        .with_state(store);
    // The log layer wraps the whole router as a fallback service (rather than each
    // route), so that it sees the `Allow` header that axum adds to a 405 answer.
    Router::new()
        .fallback_service(api)
        .layer(middleware::from_fn(log_and_shape))
}

/// A failed request: an HTTP status and a core error for the JSON body.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    error: Error,
}

impl ApiError {
    fn new(status: StatusCode, error: Error) -> Self {
        ApiError { status, error }
    }

    fn invalid(status: StatusCode, message: String) -> Self {
        ApiError::new(status, Error::InvalidArgument(message))
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        let status = StatusCode::from_u16(error.kind().http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError { status, error }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.status, &self.error.to_json())
    }
}

type Reply = Result<Response, ApiError>;

/// A response whose body is JSON text the core already wrote, ending with a newline
/// (so that `curl` leaves the prompt on its own line).
fn json_text_response(status: StatusCode, mut json: String) -> Response {
    json.push('\n');
    (
        status,
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        json,
    )
        .into_response()
}

fn json_response(status: StatusCode, value: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(mut body) => (
            status,
            [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            {
                body.push(b'\n');
                body
            },
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            Error::Internal(format!("the response could not be serialized: {e}"))
                .to_json()
                .to_string(),
        )
            .into_response(),
    }
}

/// Runs a store call on the blocking pool; a panic becomes an `internal` error.
async fn blocking<T, F>(store: &Arc<Store>, call: F) -> Result<T, ApiError>
where
    F: FnOnce(&Store) -> agent_backlog::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let store = Arc::clone(store);
    match tokio::task::spawn_blocking(move || call(&store)).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(join) => Err(ApiError::from(Error::Internal(format!(
            "the request failed inside the server ({join}); the store stays usable"
        )))),
    }
}

fn path_param<T>(path: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    path.map(|Path(value)| value).map_err(|rejection| {
        ApiError::invalid(
            StatusCode::BAD_REQUEST,
            format!("the path could not be read: {}", rejection.body_text()),
        )
    })
}

/// The query string as a JSON object for the core's parsers (see [`convert`]), each
/// value converted for the kind of the operation's input of that name.
fn query_object(op: &Operation, uri: &Uri) -> Result<Value, ApiError> {
    let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri).map_err(|rejection| {
        ApiError::invalid(
            StatusCode::BAD_REQUEST,
            format!(
                "the query string could not be read: {}",
                rejection.body_text()
            ),
        )
    })?;
    let kind_of = |name: &str| {
        op.inputs
            .iter()
            .find(|i| i.name == name)
            .map_or(Kind::Text, |i| i.kind)
    };
    Ok(convert::object_from_pairs(
        pairs,
        "query parameter",
        kind_of,
    )?)
}

/// Refuses any query parameter on a route that takes none.
fn no_query(uri: &Uri) -> Result<(), ApiError> {
    match uri.query() {
        None | Some("") => Ok(()),
        Some(query) => Err(ApiError::invalid(
            StatusCode::BAD_REQUEST,
            format!(
                "{} takes no query parameters, got ?{query}; leave the query string out",
                uri.path()
            ),
        )),
    }
}

/// Reads a JSON request body of at most `limit` bytes, as text for the core's parser.
///
/// A Content-Type other than JSON is 415; a body over the limit is 413 (refused from
/// its Content-Length before reading when it declares one); invalid UTF-8 is 400.
/// How long a request's body may take to arrive in all (`--body-timeout`).
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub Duration);

/// [`json_body`] within the request's [`BodyDeadline`], if it has one: 408 past it.
async fn json_body_in_time(
    parts: &axum::http::request::Parts,
    body: Body,
    limit: usize,
) -> Result<String, ApiError> {
    let read = json_body(&parts.headers, body, limit);
    match parts.extensions.get::<BodyDeadline>() {
        Some(BodyDeadline(deadline)) => tokio::time::timeout(*deadline, read)
            .await
            .unwrap_or_else(|_| {
                Err(ApiError::invalid(
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "the request body did not arrive within {} s (--body-timeout); send it at once",
                        deadline.as_secs()
                    ),
                ))
            }),
        None => read.await,
    }
}

async fn json_body(headers: &HeaderMap, mut body: Body, limit: usize) -> Result<String, ApiError> {
    if let Some(content_type) = headers.get(CONTENT_TYPE) {
        let essence = content_type
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(ApiError::invalid(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "the body must be JSON sent as Content-Type: application/json, got Content-Type: {}",
                    String::from_utf8_lossy(content_type.as_bytes())
                ),
            ));
        }
    }
    let too_large = |size: String| {
        ApiError::invalid(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is {size} bytes; the limit for this route is {limit} bytes"),
        )
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = declared {
        if length > limit as u64 {
            return Err(too_large(length.to_string()));
        }
    }
    let mut bytes: Vec<u8> = Vec::new();
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|e| {
            ApiError::invalid(
                StatusCode::BAD_REQUEST,
                format!("the request body could not be read: {e}"),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > limit {
                return Err(too_large(format!("more than {limit}")));
            }
            bytes.extend_from_slice(&data);
        }
    }
    String::from_utf8(bytes).map_err(|e| {
        ApiError::invalid(
            StatusCode::BAD_REQUEST,
            format!("the body must be JSON text in UTF-8: {e}"),
        )
    })
}

type AppState = State<Arc<Store>>;

/// The operations that share a route with the route's own, each chosen when the body
/// holds its `selected_by` field.
#[derive(Clone)]
struct Sharing(Vec<&'static Operation>);

/// The longest `wait_seconds` over HTTP: proxies and clients end quiet requests
/// after about a minute.
const MAX_HTTP_WAIT_SECONDS: f64 = 60.0;

/// Checks `wait_seconds` by its HTTP name and limit, before the core sees it as
/// `timeout_seconds`.
fn http_wait(value: &Value) -> Result<(), ApiError> {
    match value.as_f64() {
        Some(s) if value.is_number() && (0.0..=MAX_HTTP_WAIT_SECONDS).contains(&s) => Ok(()),
        _ => Err(ApiError::from(Error::InvalidArgument(format!(
            "wait_seconds must be a number from 0 to 60 (seconds to hold the request for a task), got {value}"
        )))),
    }
}

/// The operation of the route, with its JSON request gathered from the path, the query
/// string and the body as the operation's inputs say (see [`agent_backlog::ops::Place`]):
/// path segments as strings, query parameters converted for their kinds and refused
/// when the route does not take them, the body read within its size limit and parsed
/// strictly. The core's operation table then checks every value.
struct OpRequest {
    op: &'static Operation,
    request: Value,
    /// The `Agent-Backlog-Actor` header: who the request's writes are recorded as.
    actor: Option<String>,
    /// The token the request showed (`serve --auth`).
    caller: Option<Token>,
    /// The limits of each token (under `--auth`).
    limits: Option<Arc<Limits>>,
}

/// The name of the header that says who a request acts as (SPEC §14).
const ACTOR_HEADER: &str = "agent-backlog-actor";

/// The `Agent-Backlog-Actor` header, as text: UTF-8, so that an actor every other
/// surface takes (any characters but control characters) can be sent here too.
fn actor_header(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    headers
        .get(ACTOR_HEADER)
        .map(|value| {
            std::str::from_utf8(value.as_bytes())
                .map(str::to_owned)
                .map_err(|_| {
                    ApiError::from(Error::InvalidArgument(
                        "the Agent-Backlog-Actor header must be UTF-8 text".into(),
                    ))
                })
        })
        .transpose()
}

impl<S: Send + Sync> FromRequest<S> for OpRequest {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let (mut parts, body) = request.into_parts();
        let mut op = *parts
            .extensions
            .get::<&'static Operation>()
            .ok_or_else(|| {
                ApiError::from(Error::Internal(
                    "a route without its operation; this is a bug in agent-backlog".into(),
                ))
            })?;
        let sharing = parts
            .extensions
            .get::<Sharing>()
            .map(|s| s.0.clone())
            .unwrap_or_default();
        let path = Path::<Vec<(String, String)>>::from_request_parts(&mut parts, state).await;
        let mut fields = Map::new();
        for (name, value) in path_param(path)? {
            fields.insert(name, Value::String(value));
        }
        let allowed_in = |place: Place| -> Vec<&'static str> {
            op.inputs
                .iter()
                .filter(|i| i.place == place)
                .map(|i| i.name)
                .collect()
        };
        let in_query = allowed_in(Place::Query);
        if in_query.is_empty() {
            no_query(&parts.uri)?;
        } else if let Value::Object(query) = query_object(op, &parts.uri)? {
            for (name, value) in query {
                if !in_query.contains(&name.as_str()) {
                    return Err(ApiError::from(Error::InvalidArgument(format!(
                        "unknown query parameter {name:?}; the parameters of {} are {}",
                        op.route.path,
                        in_query.join(", ")
                    ))));
                }
                fields.insert(name, value);
            }
        }
        if let Some(whole) = op.inputs.iter().find(|i| i.place == Place::Body) {
            let text = json_body_in_time(&parts, body, op.max_request_bytes()).await?;
            let what = format!("the body ({})", whole.name);
            let value = agent_backlog::ops::parse_json(&text, &what, whole.example)?;
            fields.insert(whole.name.to_owned(), value);
        } else {
            let has_body_fields =
                |op: &Operation| op.inputs.iter().any(|i| i.place == Place::BodyField);
            if has_body_fields(op) {
                let mut text = json_body_in_time(&parts, body, op.max_request_bytes()).await?;
                // A route whose body fields are all optional may be sent without a body.
                let optional = op
                    .inputs
                    .iter()
                    .all(|i| i.place != Place::BodyField || !i.required);
                if optional && text.trim().is_empty() {
                    text = "{}".to_owned();
                }
                let example = body_example(op);
                let Value::Object(given) =
                    agent_backlog::ops::parse_json(&text, "the body", &example)?
                else {
                    return Err(ApiError::invalid(
                        StatusCode::BAD_REQUEST,
                        format!("the body must be a JSON object such as {example}"),
                    ));
                };
                if let Some(other) = sharing
                    .iter()
                    .find(|o| o.route.selected_by.is_some_and(|f| given.contains_key(f)))
                {
                    op = other;
                }
                let in_body: Vec<&str> = op
                    .inputs
                    .iter()
                    .filter(|i| i.place == Place::BodyField)
                    .map(|i| i.rest_name())
                    .collect();
                for (name, value) in given {
                    let Some(input) = op
                        .inputs
                        .iter()
                        .find(|i| i.place == Place::BodyField && i.rest_name() == name)
                    else {
                        return Err(ApiError::from(unknown_field(&name, &in_body)));
                    };
                    if name == "wait_seconds" {
                        http_wait(&value)?;
                    }
                    fields.insert(input.name.to_owned(), value);
                }
            }
        }
        for input in op.inputs.iter().filter(|i| i.place == Place::Header) {
            if let Some(value) = parts.headers.get(input.rest_name()) {
                let text = value.to_str().map_err(|_| {
                    ApiError::from(Error::InvalidArgument(format!(
                        "the {} header must be printable ASCII text",
                        input.rest_name()
                    )))
                })?;
                fields.insert(input.name.to_owned(), Value::String(text.to_owned()));
            }
        }
        let caller = parts.extensions.get::<Caller>().map(|c| c.0.clone());
        let limits = parts.extensions.get::<Arc<Limits>>().cloned();
        Ok(OpRequest {
            op,
            request: Value::Object(fields),
            actor: actor_header(&parts.headers)?,
            caller,
            limits,
        })
    }
}

/// Serves one operation: the core's operation table runs the gathered request on the
/// blocking pool; the route's status goes with the result (its `null` status, e.g. 204,
/// when there is nothing; 200 with `Idempotent-Replayed: true` for a replayed create).
async fn operation(
    State(store): AppState,
    OpRequest {
        op,
        request,
        actor,
        caller,
        limits,
    }: OpRequest,
) -> Reply {
    let location = op.route.location.map(|template| fill(template, &request));
    // A call that waits holds one of its token's places while it waits.
    let place = match (&limits, &caller) {
        (Some(limits), Some(token)) if op.waits(&request) => match limits.begin_wait(token) {
            Ok(place) => Some(place),
            Err(full) => return Ok(full.into_response()),
        },
        _ => None,
    };
    // A request with a token acts as the token's name unless it names an actor.
    let actor = actor.or_else(|| caller.as_ref().map(|t| t.name.clone()));
    let checked = caller.clone();
    // The wait runs on the blocking pool: when the client goes away (this handler is
    // dropped), it stops at its next look, and only then gives its place back.
    let gone = Arc::new(AtomicBool::new(false));
    let _left = SetOnDrop(Arc::clone(&gone));
    // A long poll stops waiting (204) when the server starts stopping.
    let reply = blocking(&store, move |s| {
        let _place = place;
        if let Some(token) = &checked {
            if !s.permits(token, op, &request)? {
                return Ok(None);
            }
        }
        let acting;
        let s = match actor {
            Some(actor) => {
                acting = s.with_actor(Some(&actor))?;
                &acting
            }
            None => s,
        };
        op.respond(s, request, &mut || {
            STOPPING.load(Ordering::Acquire) || gone.load(Ordering::Acquire)
        })
        .map(Some)
    })
    .await?;
    let Some(reply) = reply else {
        return Ok(auth::forbidden(
            caller.as_ref().expect("refused only with a token"),
        ));
    };
    match op.route.status_if_null {
        Some(status) if reply.json == "null" => Ok(StatusCode::from_u16(status)
            .unwrap_or(StatusCode::NO_CONTENT)
            .into_response()),
        // A replayed idempotent create created nothing: 200, and says so.
        _ if reply.replayed => {
            let mut response = json_text_response(StatusCode::OK, reply.json);
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(response)
        }
        _ => {
            let location = location.and_then(|path| created_at(path, &reply.json));
            let mut response = json_text_response(
                StatusCode::from_u16(op.route.status).unwrap_or(StatusCode::OK),
                reply.json,
            );
            if let Some(location) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
                response.headers_mut().insert(LOCATION, location);
            }
            Ok(response)
        }
    }
}

/// Sets its flag when dropped: a request whose client went away.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// A route's `location` template with the request's inputs filled in (`{id}` stays
/// for [`created_at`]).
fn fill(template: &str, request: &Value) -> String {
    let mut path = template.to_owned();
    if let Value::Object(fields) = request {
        for (name, value) in fields {
            if let Value::String(text) = value {
                path = path.replace(&format!("{{{name}}}"), text);
            }
        }
    }
    path
}

/// The `Location` of a created resource: `path` with the result's `id`.
fn created_at(path: String, result: &str) -> Option<String> {
    let result: Value = serde_json::from_str(result).ok()?;
    Some(path.replace("{id}", result.get("id")?.as_str()?))
}

/// `GET /openapi.json`: the document of the routes ([`openapi::document`]).
async fn openapi_document() -> Response {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let text = DOCUMENT.get_or_init(|| openapi::document().to_string());
    json_text_response(StatusCode::OK, text.clone())
}

/// How long one wait of the event stream lasts before it asks again (and the
/// connection gets a keep-alive comment).
const STREAM_WAIT_SECONDS: f64 = 15.0;

/// `GET /api/events/stream?after=&agent_id=`: the change feed as server-sent events,
/// one per event, its `id` the event's seq and its data the event's JSON; `after=now`
/// starts after the newest event. A client
/// that reconnects with `Last-Event-ID` (as browsers' EventSource do) resumes after
/// that seq. The stream ends when the server stops.
async fn event_stream(
    State(store): AppState,
    caller: Option<Extension<Caller>>,
    per_client: Option<Extension<Arc<Limits>>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let op = agent_backlog::ops::operation("events")
        .ok_or_else(|| ApiError::from(Error::Internal("the events operation is missing".into())))?;
    let Value::Object(mut query) = query_object(op, &uri)? else {
        unreachable!("query_object gives an object");
    };
    let caller_token = caller.map(|Extension(Caller(token))| token);
    if let Some(token) = caller_token.clone() {
        let asked = Value::Object(query.clone());
        let allowed = {
            let token = token.clone();
            blocking(&store, move |s| s.permits(&token, op, &asked)).await?
        };
        if !allowed {
            return Ok(auth::forbidden(&token));
        }
    }
    if let Some(name) = query
        .keys()
        .find(|k| !matches!(k.as_str(), "after" | "agent_id"))
    {
        return Err(ApiError::from(Error::InvalidArgument(format!(
            "unknown query parameter {name:?}; the parameters of /api/events/stream are after, agent_id"
        ))));
    }
    // `after=now`: only what happens from here on (what a dashboard wants).
    if query.get("after").and_then(Value::as_str) == Some("now") {
        let now = blocking(&store, |s| s.last_event_seq()).await?;
        query.insert("after".into(), Value::from(now));
    }
    // The query is checked as it is, also when a Last-Event-ID replaces its `after`.
    if let Some(after) = EventQuery::from_value(Value::Object(query.clone()))?.after {
        agent_backlog::validate::non_negative("after", after)?;
    }
    if let Some(last) = headers.get("last-event-id") {
        let last = last
            .to_str()
            .ok()
            .and_then(|t| t.trim().parse::<i64>().ok());
        let Some(last) = last else {
            return Err(ApiError::from(Error::InvalidArgument(
                "the Last-Event-ID header must be the seq of an event, such as 1042".into(),
            )));
        };
        query.insert("after".into(), Value::from(last));
    }
    // The first page is read before the answer starts, so a bad request is a 400.
    let query = EventQuery::from_value(Value::Object(query))?;
    let first = {
        let query = query.clone();
        blocking(&store, move |s| s.events(query)).await?
    };
    // The stream holds one of its token's places while it is open.
    let place = match (per_client, &caller_token) {
        (Some(Extension(limits)), Some(token)) => match limits.begin_wait(token) {
            Ok(place) => Some(place),
            Err(full) => return Ok(full.into_response()),
        },
        _ => None,
    };
    let pending: VecDeque<Event> = first.events.into();
    let state = (store, query.after(first.next), pending, place);
    let stream =
        futures_util::stream::unfold(state, move |(store, mut query, mut pending, place)| {
            let caller_token = caller_token.clone();
            async move {
                loop {
                    if let Some(event) = pending.pop_front() {
                        let sse = axum::response::sse::Event::default()
                            .id(event.seq.to_string())
                            .data(serde_json::to_string(&event).unwrap_or_default());
                        return Some((Ok::<_, Infallible>(sse), (store, query, pending, place)));
                    }
                    if STOPPING.load(Ordering::Acquire) {
                        return None;
                    }
                    // A token revoked or expired while the stream is open ends it.
                    if let Some(token) = caller_token.clone() {
                        let in_force = blocking(&store, move |s| s.token_in_force(&token)).await;
                        if !matches!(in_force, Ok(true)) {
                            return None;
                        }
                    }
                    let waiting = query.clone().wait_seconds(STREAM_WAIT_SECONDS);
                    let page = blocking(&store, move |s| {
                        s.events_until(waiting, &mut || STOPPING.load(Ordering::Acquire))
                    })
                    .await
                    .ok()?;
                    // Checked again after the wait: what arrived meanwhile is not sent
                    // on a token revoked meanwhile.
                    if let Some(token) = caller_token.clone() {
                        let in_force = blocking(&store, move |s| s.token_in_force(&token)).await;
                        if !matches!(in_force, Ok(true)) {
                            return None;
                        }
                    }
                    query = query.after(page.next);
                    pending.extend(page.events);
                }
            }
        });
    Ok(axum::response::sse::Sse::new(stream)
        .keep_alive(axum::response::sse::KeepAlive::default())
        .into_response())
}

/// The object of an operation's body fields, for messages: `{"prefix": "MKT"}`.
fn body_example(op: &Operation) -> String {
    let fields: Vec<String> = op
        .inputs
        .iter()
        .filter(|i| i.place == Place::BodyField && i.required)
        .map(|i| format!("\"{}\": {}", i.rest_name(), i.example))
        .collect();
    format!("{{{}}}", fields.join(", "))
}

/// An unknown query parameter or body field, in the core's words.
fn unknown_field(name: &str, allowed: &[&str]) -> Error {
    Error::InvalidArgument(format!(
        "unknown field {name:?}; the allowed fields are {}",
        allowed.join(", ")
    ))
}

/// Any path that is not a route: 404 with the error JSON, code `not_found`.
async fn unknown_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        Error::NotFound(format!(
            "there is no route {method} {}; the API is under /api (see /openapi.json), the dashboard at /",
            uri.path()
        )),
    )
}

/// Keeps web pages out, now that the server also answers browsers (the dashboard):
///
/// - On a loopback address, the `Host` must be a loopback name (`localhost`,
///   `127.0.0.1`, `[::1]`, any port): a page of another site whose name an attacker
///   re-points at 127.0.0.1 (DNS rebinding) would otherwise read and change every
///   backlog as if it were the dashboard.
/// - A browser's request that changes something must come from this server's own
///   pages: `Sec-Fetch-Site` `same-origin` or `none` when the browser sends it, else an
///   `Origin` naming this host. A request without these headers is no browser's
///   (curl, the clients, the tests) and passes.
///
/// Either refusal is 403 with the error JSON, code `invalid_argument`.
async fn browser_guard(loopback: bool, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if loopback && !is_loopback_host(&host) {
        return ApiError::invalid(
            StatusCode::FORBIDDEN,
            format!("this server listens on loopback and answers only to localhost, 127.0.0.1 or [::1], not the host {host:?}"),
        )
        .into_response();
    }
    let writes = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let origin = headers
        .get(axum::http::header::ORIGIN)
        .and_then(|v| v.to_str().ok());
    let foreign = match (site, origin) {
        (Some(site), _) => !matches!(site, "same-origin" | "none"),
        (None, Some(origin)) => {
            origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                != Some(host.as_str())
        }
        (None, None) => false,
    };
    if writes && foreign {
        return ApiError::invalid(
            StatusCode::FORBIDDEN,
            "a web page of another site may not change the backlog: send the request from the dashboard of this server, or from a client that is not a browser".to_owned(),
        )
        .into_response();
    }
    next.run(request).await
}

/// Whether a `Host` header names the loopback interface.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    matches!(name, "localhost" | "127.0.0.1" | "::1")
}

/// Logs one line per request to stderr, and gives axum's bare 405 answers the error
/// JSON body (keeping their `Allow` header).
async fn log_and_shape(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().clone();
    let uri = request.uri().clone();
    let mut response = next.run(request).await;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        let allow = response.headers().get(ALLOW).cloned();
        let allowed = allow
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .replace(',', ", ");
        let mut shaped = ApiError::invalid(
            StatusCode::METHOD_NOT_ALLOWED,
            format!(
                "method {method} is not allowed on {}; use {allowed}",
                uri.path()
            ),
        )
        .into_response();
        if let Some(allow) = allow {
            shaped.headers_mut().insert(ALLOW, allow);
        }
        response = shaped;
    }
    eprintln!(
        "{method} {uri} {} {:.1}ms",
        response.status().as_u16(),
        start.elapsed().as_secs_f64() * 1000.0
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_body(
        headers: &[(&str, &str)],
        body: &'static str,
        limit: usize,
    ) -> Result<String, ApiError> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(json_body(&map, Body::from(body), limit))
    }

    #[test]
    fn bodies_are_limited_while_read() {
        assert_eq!(read_body(&[], "{\"a\":1}", 7).unwrap(), "{\"a\":1}");
        // No Content-Length: the limit is applied to the bytes as they arrive.
        let err = read_body(&[], "{\"a\":12}", 7).unwrap_err();
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            err.error.to_string(),
            "the body is more than 7 bytes; the limit for this route is 7 bytes"
        );
        // A declared length over the limit is refused before reading.
        let err = read_body(&[("content-length", "8")], "", 7).unwrap_err();
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
        let err = read_body(&[("content-type", "text/json")], "{}", 7).unwrap_err();
        assert_eq!(err.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(err.error.code(), "invalid_argument");
        assert!(read_body(
            &[("content-type", "Application/JSON ; charset=UTF-8")],
            "{}",
            7
        )
        .is_ok());
    }
}
