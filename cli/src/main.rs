//! `agent-backlog`: the REST server (`agent-backlog serve`), the MCP server
//! (`agent-backlog mcp`) and the command line for people and scripts, over one SQLite
//! backlog file.
//!
//! Both are thin: arguments, query strings and bodies are converted to JSON and
//! checked by the core's strict parsers; results are the core's JSON shapes. Exit
//! statuses: 0 success, 1–7 the core's error codes (as in the C ABI), 64 usage
//! errors, 69 `serve` cannot listen (or an MCP session cannot start), 74 stdout cannot be written.

mod args;
mod auth;
mod commands;
mod convert;
mod dashboard;
mod limits;
mod listen;
mod mcp;
mod openapi;
mod output;
mod server;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use agent_backlog::ops::{Access, Kind, OPERATIONS};
use agent_backlog::tools::Toolbox;
use agent_backlog::{Error, EventQuery, Store, StoreOptions, TokenRequest};
use clap::FromArgMatches;

use args::{Format, Globals, McpArgs, ServeArgs, TokenArgs, TokenCommand};

/// Exit status for a command line that cannot be parsed (sysexits EX_USAGE). clap's
/// own 2 would be mistaken for `not_found`.
const EXIT_USAGE: u8 = 64;
/// Exit status when the result cannot be written to stdout (sysexits EX_IOERR).
const EXIT_IO: u8 = 74;

fn main() -> ExitCode {
    let matches = match args::command().try_get_matches() {
        Ok(matches) => matches,
        Err(err) => {
            // --help and --version print to stdout and succeed; the rest is misuse.
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    let globals = match Globals::from_arg_matches(&matches) {
        Ok(globals) => globals,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let Some((name, sub)) = matches.subcommand() else {
        unreachable!("a subcommand is required");
    };
    // `serve` and `mcp` report their errors as text, for people reading their logs.
    let format = if name == "serve" || name == "mcp" {
        Format::Table
    } else {
        globals.format
    };
    let options = match store_options(&globals) {
        Ok(options) => options,
        Err(err) => return fail(&err, format),
    };
    if name == "serve" {
        let serve = match ServeArgs::from_arg_matches(sub) {
            Ok(serve) => serve,
            Err(err) => {
                let _ = err.print();
                return ExitCode::from(EXIT_USAGE);
            }
        };
        let mcp = match serve
            .mcp
            .then(|| Toolbox::new(&serve.mcp_tools, serve.mcp_agent.as_deref()))
        {
            Some(Err(err)) => return fail(&err, format),
            Some(Ok(toolbox)) => Some(toolbox),
            None => None,
        };
        let config = server::ServeConfig {
            host: serve.host,
            port: serve.port,
            db: globals.db,
            options,
            mcp,
            ui_actions: serve.ui_actions,
            auth: serve.auth,
            insecure_no_auth: serve.insecure_no_auth,
            tls: serve.tls_cert.zip(serve.tls_key),
            limits: server::LimitsConfig {
                max_connections: serve.max_connections.max(1),
                head_timeout: std::time::Duration::from_secs(serve.head_timeout.max(1)),
                body_timeout: std::time::Duration::from_secs(serve.body_timeout.max(1)),
                rate: std::num::NonZeroU32::new(serve.rate)
                    .map(|rate| (rate, std::num::NonZeroU32::new(serve.burst).unwrap_or(rate))),
                max_waits: serve.max_waits.max(1),
            },
        };
        return match server::serve(config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(server::ServeError::Store(err)) => fail(&err, format),
            Err(server::ServeError::Listen(message)) => {
                eprintln!("error: {message}");
                ExitCode::from(server::EXIT_CANNOT_LISTEN)
            }
            Err(server::ServeError::Refused(message)) => {
                eprintln!("error: {message}");
                ExitCode::from(EXIT_USAGE)
            }
        };
    }
    if name == "mcp" {
        return match McpArgs::from_arg_matches(sub) {
            Ok(args) => serve_mcp(&globals, options, &args),
            Err(err) => {
                let _ = err.print();
                ExitCode::from(EXIT_USAGE)
            }
        };
    }
    if name == "token" {
        return match TokenArgs::from_arg_matches(sub) {
            Ok(args) => match Store::open_with(&globals.db, options) {
                Ok(store) => token(&store, args.command, format),
                Err(err) => fail(&err, format),
            },
            Err(err) => {
                let _ = err.print();
                ExitCode::from(EXIT_USAGE)
            }
        };
    }
    if name == "events" && sub.get_flag("follow") {
        return match Store::open_with(&globals.db, options) {
            Ok(store) => follow(&store, sub),
            Err(err) => fail(&err, format),
        };
    }
    let result = if name == "call" && sub.get_flag("list") {
        commands::call(None, sub)
    } else {
        Store::open_with(&globals.db, options).and_then(|store| {
            match OPERATIONS.iter().find(|op| op.command == name) {
                Some(op) => commands::run(&store, op, sub),
                None => commands::call(Some(&store), sub),
            }
        })
    };
    match result {
        Ok(done) => {
            let changed_the_store = OPERATIONS
                .iter()
                .find(|op| op.name == done.operation)
                .is_none_or(|op| op.access != Access::Read);
            print(
                &output::render(&done, format),
                changed_the_store,
                &done.json,
            )
        }
        Err(err) => fail(&err, format),
    }
}

/// `agent-backlog mcp`: the tools over stdio until the client disconnects.
fn serve_mcp(globals: &Globals, options: StoreOptions, args: &McpArgs) -> ExitCode {
    let toolbox = match Toolbox::new(&args.tools, args.agent.as_deref()) {
        Ok(toolbox) => toolbox,
        Err(err) => return fail(&err, Format::Table),
    };
    let store = match Store::open_with(&globals.db, options) {
        Ok(store) => Arc::new(store),
        Err(err) => return fail(&err, Format::Table),
    };
    let served = mcp::serve_stdio(mcp::Backlog::new(Arc::clone(&store), toolbox));
    if let Err(err) = store.close() {
        eprintln!("warning: closing the database failed: {err}");
    }
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(server::EXIT_CANNOT_LISTEN)
        }
    }
}

/// `token create|list|revoke`: one line of JSON (a token, `{"token", "secret"}` for a
/// new one, `{"tokens": [...]}`), or readable lines with `--format table`.
fn token(store: &Store, command: TokenCommand, format: Format) -> ExitCode {
    let printed = match command {
        TokenCommand::Create {
            agent,
            admin,
            name,
            expires,
        } => {
            let request = TokenRequest {
                agent_id: agent,
                admin,
                name,
                expires_days: expires,
            };
            store.create_token(request).map(|issued| match format {
                Format::Json => serde_json::json!({"token": issued.token, "secret": issued.secret})
                    .to_string(),
                Format::Table => format!(
                    "{}\n{}\nthe secret is shown this once; send it as `Authorization: Bearer <secret>`",
                    output::token_line(&issued.token),
                    issued.secret
                ),
            })
        }
        TokenCommand::List => store.list_tokens().map(|tokens| match format {
            Format::Json => serde_json::json!({ "tokens": tokens }).to_string(),
            Format::Table => tokens
                .iter()
                .map(output::token_line)
                .collect::<Vec<_>>()
                .join("\n"),
        }),
        TokenCommand::Revoke { id } => store.revoke_token(id).map(|revoked| match format {
            Format::Json => serde_json::to_string(&revoked).unwrap_or_default(),
            Format::Table => output::token_line(&revoked),
        }),
    };
    match printed {
        Ok(text) => print(&text, true, &text),
        Err(err) => fail(&err, format),
    }
}

/// `--busy-timeout-ms`, `--durability` and `--actor`, checked by the core's options
/// parser.
fn store_options(globals: &Globals) -> Result<StoreOptions, Error> {
    let pairs = [
        ("busy_timeout_ms", globals.busy_timeout_ms.as_deref()),
        ("durability", globals.durability.as_deref()),
        ("actor", globals.actor.as_deref()),
    ];
    let given = pairs
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)));
    let kind = |name: &str| {
        if name == "busy_timeout_ms" {
            Kind::Integer
        } else {
            Kind::Text
        }
    };
    StoreOptions::from_value(convert::object_from_pairs(given, "option", kind)?)
}

/// How long one page of `events --follow` waits for the next event before it asks
/// again (it follows until interrupted, whatever `--wait-seconds` says).
const FOLLOW_WAIT_SECONDS: f64 = 30.0;

/// `events --follow`: prints every event after `--after` as one JSON line, waiting
/// for the next commit between pages, until interrupted (Ctrl-C, or a closed stdout).
fn follow(store: &Store, sub: &clap::ArgMatches) -> ExitCode {
    let op = OPERATIONS
        .iter()
        .find(|op| op.name == "events")
        .expect("the events operation");
    let query = commands::request(op, sub).and_then(EventQuery::from_value);
    let mut query = match query {
        Ok(query) => query.wait_seconds(FOLLOW_WAIT_SECONDS),
        Err(err) => return fail(&err, Format::Json),
    };
    loop {
        let page = match store.events(query.clone()) {
            Ok(page) => page,
            Err(err) => return fail(&err, Format::Json),
        };
        let mut stdout = std::io::stdout().lock();
        for event in &page.events {
            let line = serde_json::to_string(event).unwrap_or_default();
            if writeln!(stdout, "{line}")
                .and_then(|()| stdout.flush())
                .is_err()
            {
                return ExitCode::SUCCESS;
            }
        }
        query = query.after(page.next);
    }
}

/// Prints the error to stderr and exits with its code's number (1–7).
fn fail(err: &Error, format: Format) -> ExitCode {
    eprintln!("{}", output::render_error(err, format));
    ExitCode::from(err.kind() as u8)
}

/// Prints a result. A reader that stopped early (`| head`) is no failure for a read;
/// after a write (a claim, above all) the result must not vanish: it goes to stderr
/// and the exit status says that stdout could not take it.
fn print(text: &str, changed_the_store: bool, json: &str) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe && !changed_the_store => {
            ExitCode::SUCCESS
        }
        Err(e) if changed_the_store => {
            eprintln!("error: the call was done, but its result could not be written to stdout ({e}); the result: {json}");
            ExitCode::from(EXIT_IO)
        }
        Err(e) => {
            eprintln!("error: cannot write the result to stdout: {e}");
            ExitCode::from(EXIT_IO)
        }
    }
}
