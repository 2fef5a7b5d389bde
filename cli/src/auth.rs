//! `serve --auth`: every request but the dashboard's static files shows a token
//! (`Authorization: Bearer <secret>`, made by `agent-backlog token create`).
//!
//! - No token, an unknown one, a revoked or an expired one: **401**, code
//!   `unauthenticated`, before anything else is looked at.
//! - A token of another agent than the one the request acts for, or an agent's token
//!   on a route of every agent (the cross-agent query, `/api/agents`, the whole event
//!   feed, pruning, reaping every agent): **403**, code `forbidden`, nothing read or
//!   written. Which agent a call acts for is the core's rule (`Store::permits`).
//! - `/mcp` takes an admin token, or the token of the agent it is bound to
//!   (`--mcp-agent`).
//!
//! The token's name becomes the actor of the writes made with it when the request
//! names none (`Agent-Backlog-Actor`). Secrets are never logged: the request log has
//! the method, the path and the status.

use std::sync::Arc;

use agent_backlog::{Access, Store, Token};
use axum::extract::Request;
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Who a request comes from, put in its extensions by [`require_token`].
#[derive(Debug, Clone)]
pub struct Caller(pub Token);

/// The dashboard's page, script and style: public, as they hold no data (everything
/// they show comes from the API, with a token).
const PUBLIC: [&str; 3] = ["/", "/ui/app.js", "/ui/style.css"];

/// A refusal: the status, the error JSON with `code`, and for a 401 the
/// `WWW-Authenticate` header that names the scheme.
pub fn refused(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    let mut response = (
        status,
        [(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        format!("{body}\n"),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// A 403 for a caller whose token is not for this request's agent.
pub fn forbidden(token: &Token) -> Response {
    let whom = match &token.agent_id {
        Some(agent) => format!("the backlog of {agent} only"),
        None => "nothing".to_owned(),
    };
    refused(
        StatusCode::FORBIDDEN,
        "forbidden",
        &format!(
            "the token {} may use {whom}; this request is for another agent's backlog, or for every agent's (which takes an admin token)",
            token.name
        ),
    )
}

/// The middleware of `serve --auth`; see the module docs. `mcp_agent` is the agent
/// `/mcp` is bound to, if any.
pub async fn require_token(
    store: Arc<Store>,
    mcp_agent: Option<String>,
    request: Request,
    next: Next,
) -> Response {
    let (method, uri) = (request.method().clone(), request.uri().clone());
    match check(store, mcp_agent, request).await {
        Ok(request) => next.run(request).await,
        Err(refusal) => {
            // The request log is inside the router; refusals at the door are logged
            // here, in its format (the method, the path, the status: never a secret).
            eprintln!(
                "{method} {uri} {} (token refused)",
                refusal.status().as_u16()
            );
            refusal
        }
    }
}

/// The request with its [`Caller`], or the refusal.
async fn check(
    store: Arc<Store>,
    mcp_agent: Option<String>,
    mut request: Request,
) -> Result<Request, Response> {
    let path = request.uri().path().to_owned();
    if request.method() == axum::http::Method::GET && PUBLIC.contains(&path.as_str()) {
        return Ok(request);
    }
    let secret = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, secret) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| secret.trim().to_owned())
        });
    let Some(secret) = secret else {
        return Err(refused(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "this server needs a token: send `Authorization: Bearer <secret>` (`agent-backlog token create` makes one)",
        ));
    };
    let checked = tokio::task::spawn_blocking(move || store.authenticate(&secret)).await;
    let token = match checked {
        Ok(Ok(Access::Granted(token))) => token,
        Ok(Ok(Access::Unknown)) => {
            return Err(refused(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "the token is not one of this server's: check it, or make one with `agent-backlog token create`",
            ))
        }
        Ok(Ok(Access::Revoked(token))) => {
            return Err(refused(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                &format!("the token {} was revoked at {}; ask for a new one", token.name, token.revoked.unwrap_or_default()),
            ))
        }
        Ok(Ok(Access::Expired(token))) => {
            return Err(refused(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                &format!("the token {} expired at {}; ask for a new one", token.name, token.expires.unwrap_or_default()),
            ))
        }
        Ok(Err(err)) => {
            return Err(refused(
                StatusCode::SERVICE_UNAVAILABLE,
                err.code(),
                &format!("the token could not be checked: {err}"),
            ))
        }
        Err(join) => {
            return Err(refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                &format!("the token could not be checked ({join}); this is a bug"),
            ))
        }
    };
    if path == "/mcp" || path.starts_with("/mcp/") {
        let bound = mcp_agent.as_deref();
        if !(token.admin || (bound.is_some() && token.may_use(bound))) {
            return Err(forbidden(&token));
        }
    }
    request.extensions_mut().insert(Caller(token));
    Ok(request)
}
