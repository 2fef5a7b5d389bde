//! The dashboard served at `/` by `agent-backlog serve`: one HTML page, a script and a
//! style sheet, embedded in the binary (no build step, nothing fetched from
//! elsewhere), over the REST API and its event stream. It reads only, unless
//! `serve --ui-actions` lets it requeue, block, reprioritize and delete tasks.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("dashboard/index.html");
const SCRIPT: &str = include_str!("dashboard/app.js");
const STYLE: &str = include_str!("dashboard/style.css");

/// A page of the dashboard with its content type; never cached, so that a new binary's
/// page is what a browser shows. The pages load only their own script and style, talk
/// only to this server, and may not be framed by another site's page (which could
/// trick a click on an action).
fn page(content_type: &'static str, text: String) -> Response {
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "no-cache"),
            (
                CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
            ),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (X_FRAME_OPTIONS, "DENY"),
            (REFERRER_POLICY, "no-referrer"),
        ],
        text,
    )
        .into_response()
}

/// `GET /`: the page, saying whether the actions are on.
pub fn index(actions: bool) -> Response {
    page(
        "text/html; charset=utf-8",
        INDEX.replace("{{ACTIONS}}", if actions { "true" } else { "false" }),
    )
}

/// `GET /ui/app.js`.
pub fn script() -> Response {
    page("text/javascript; charset=utf-8", SCRIPT.to_owned())
}

/// `GET /ui/style.css`.
pub fn style() -> Response {
    page("text/css; charset=utf-8", STYLE.to_owned())
}
