//! The command line's grammar. `serve`, `mcp` and `call` are written here; every other
//! command is derived from the core's operation table ([`OPERATIONS`]): its name is
//! the operation's `command`, its arguments the operation's inputs.
//!
//! - A required input that is not an object (`agent_id`, `task_id`, `prefix`) is a
//!   positional argument, named after the input (`AGENT`, `TASK`, `PREFIX`).
//! - An optional input is an option (`--status`, `--limit`; `agent_id` is `--agent`).
//! - An object input (a task, a patch) gives its fields: required ones positional
//!   (`TITLE`), optional ones as options, and `--clear-NAME` for each field that
//!   `null` clears.
//! - A list input (a batch of tasks) is one positional argument holding its JSON.
//!
//! Values are taken as plain text and handed to the core's JSON parsers (integers
//! become JSON numbers when they read as numbers), so that a bad value gets the same
//! message on every surface.

use std::path::PathBuf;

use agent_backlog::ops::{Input, Kind, Operation, OPERATIONS};
use clap::{Arg, ArgAction, Args, Command, ValueEnum};

/// Text shown after the help of the program: the exit statuses.
const EXIT_STATUSES: &str = "\
Exit status:
  0   success (also `claim` with nothing queued, which prints null)
  1   invalid_argument     4   conflict    7   lease_lost
  2   not_found            5   storage
  3   invalid_transition   6   internal
  64  usage error (unknown command or option, missing argument)
  69  serve: cannot listen on the address; mcp: the session could not start
  74  the result cannot be written to stdout

Every data command prints its result as one line of compact JSON (the shapes of the
REST API) unless --format table is given. Errors go to stderr: the error JSON with
--format json, a readable line with --format table.";

/// The help heading of the limits of `serve`.
const LIMITS: &str = "Limits per client";

/// The help heading of the options every command takes.
const DATABASE: &str = "Database options";

/// The options every command takes.
#[derive(Debug, Args)]
pub struct Globals {
    /// The database file, created when missing (":memory:" for a throwaway store), or a
    /// PostgreSQL URL (postgresql://user@host/db) for a store on a server.
    #[arg(
        long,
        global = true,
        help_heading = DATABASE,
        env = "AGENT_BACKLOG_DB",
        default_value = "./backlogs.db",
        value_name = "PATH"
    )]
    pub db: PathBuf,

    /// How long a write waits for another process's write lock before failing with a
    /// storage error, in milliseconds [default: 5000].
    #[arg(
        long,
        global = true,
        help_heading = DATABASE,
        value_name = "MS",
        allow_negative_numbers = true
    )]
    pub busy_timeout_ms: Option<String>,

    /// `normal`: an acknowledged write survives a crash of the process; `full`: it
    /// also survives power loss, at the price of an fsync per write [default: normal].
    #[arg(long, global = true, help_heading = DATABASE, value_name = "normal|full")]
    pub durability: Option<String>,

    /// Who this command's writes are recorded as in the history (the `actor` of their
    /// events); `serve` records it for requests without an Agent-Backlog-Actor header.
    #[arg(long, global = true, help_heading = DATABASE, env = "AGENT_BACKLOG_ACTOR", value_name = "NAME")]
    pub actor: Option<String>,

    /// How results and errors are printed: json, the exact JSON shape, compact, on one
    /// line; table: aligned text for people.
    #[arg(long, global = true, value_enum, default_value_t = Format::Json)]
    pub format: Format,
}

/// Options of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. An address other than loopback needs --auth (or
    /// --insecure-no-auth).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Require a token on every request (`Authorization: Bearer <secret>`; `token
    /// create` makes them): an agent's token may use that agent's backlog only.
    #[arg(long)]
    pub auth: bool,
    /// Serve an address other than loopback without --auth: anyone who can reach it
    /// may read and change every backlog.
    #[arg(long, conflicts_with = "auth")]
    pub insecure_no_auth: bool,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Connections served at once; more are closed as they come.
    #[arg(long, default_value_t = 512, value_name = "N", help_heading = LIMITS)]
    pub max_connections: usize,
    /// Seconds a client has to send a request's head (and a TLS handshake).
    #[arg(long, default_value_t = 10, value_name = "SECONDS", help_heading = LIMITS)]
    pub head_timeout: u64,
    /// Seconds a client has to send a request's body (408 past it).
    #[arg(long, default_value_t = 30, value_name = "SECONDS", help_heading = LIMITS)]
    pub body_timeout: u64,
    /// Requests per second per token under --auth (429 with Retry-After past it and
    /// the burst); 0: no limit.
    #[arg(long, default_value_t = 200, value_name = "N", help_heading = LIMITS)]
    pub rate: u32,
    /// Requests a token may send at once before --rate applies.
    #[arg(long, default_value_t = 400, value_name = "N", help_heading = LIMITS)]
    pub burst: u32,
    /// Long polls and event streams open at once per token under --auth; 429 past it.
    #[arg(long, default_value_t = 32, value_name = "N", help_heading = LIMITS)]
    pub max_waits: usize,
    /// TCP port to listen on; 0 picks a free port (printed at startup).
    #[arg(long, default_value_t = 8787)]
    pub port: u16,
    /// Let the dashboard at / change tasks (requeue, block, reprioritize, delete); it
    /// only reads without this.
    #[arg(long)]
    pub ui_actions: bool,
    /// Also serve the Model Context Protocol at /mcp (Streamable HTTP).
    #[arg(long)]
    pub mcp: bool,
    /// The tools of /mcp: core, all, or names separated by commas.
    #[arg(
        long,
        default_value = "core",
        value_name = "core|all|NAME,...",
        requires = "mcp"
    )]
    pub mcp_tools: String,
    /// Bind /mcp to one agent's backlog: its tools take no agent_id.
    #[arg(long, value_name = "ID", requires = "mcp")]
    pub mcp_agent: Option<String>,
}

/// Options of `mcp`.
#[derive(Debug, Args)]
pub struct McpArgs {
    /// The tools to offer: core (list_tasks, get_task, create_task, update_task,
    /// claim_lease, finish_lease, summary), all, or names separated by commas.
    #[arg(long, default_value = "core", value_name = "core|all|NAME,...")]
    pub tools: String,
    /// Bind the server to one agent's backlog: its tools take no agent_id.
    #[arg(long, value_name = "ID")]
    pub agent: Option<String>,
}

/// `token`: the access tokens of `serve --auth`.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Creates a token and prints it with its secret, shown this once (the store keeps
    /// only a hash of it).
    Create {
        /// The agent whose backlog the token may use (and nothing else).
        #[arg(
            long,
            value_name = "ID",
            conflicts_with = "admin",
            required_unless_present = "admin"
        )]
        agent: Option<String>,
        /// A token for every route: every backlog, the cross-agent query, the agents,
        /// the whole event feed, the dashboard.
        #[arg(long)]
        admin: bool,
        /// Its name (1 to 64 characters of A-Z a-z 0-9 - _ .), the actor of the writes
        /// made with it [default: the agent or "admin", and the token's number].
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Days until it expires (1 to 3650) [default: never].
        #[arg(long, value_name = "DAYS")]
        expires: Option<u32>,
    },
    /// Lists the tokens (never their secrets).
    List,
    /// Revokes a token: every server on the database refuses it from now on.
    Revoke {
        /// The token's number (`token list` shows it).
        id: i64,
    },
}

/// Options of `token`.
#[derive(Debug, clap::Parser)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

/// How a result is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One line of compact JSON, ready for `jq`.
    Json,
    /// Aligned columns (lists) or field/value lines (one task).
    Table,
}

/// The whole grammar: the global options, `serve`, a command per operation, `call`.
pub fn command() -> Command {
    let root = Command::new("agent-backlog")
        .version(agent_backlog::VERSION)
        .after_long_help(EXIT_STATUSES)
        .subcommand_required(true)
        .arg_required_else_help(true);
    // (augment_args sets the about text from the struct's doc: set ours after it.)
    let root = Globals::augment_args(root).about(
        "A prioritized task backlog for every AI agent, in one SQLite file: a REST server \
         and a command line.",
    );
    let serve = ServeArgs::augment_args(Command::new("serve"))
        .about("Serve the REST API (see the README for the routes) and the dashboard at / until Ctrl-C or SIGTERM.");
    let mcp = McpArgs::augment_args(Command::new("mcp")).about(
        "Serve the backlog as tools for LLM agents over the Model Context Protocol on stdin \
         and stdout, until the client disconnects.",
    );
    let call = Command::new("call")
        .about(
            "Run any operation by name with a JSON request, as the C function backlog_call \
             does: call summary '{\"agent_id\": \"ops\"}'.",
        )
        .arg(
            Arg::new("operation")
                .help("The operation, e.g. claim_next (see --list).")
                .required_unless_present("list"),
        )
        .arg(
            Arg::new("request")
                .help("The request: a JSON object of the operation's inputs [default: {}]."),
        )
        .arg(
            Arg::new("list")
                .long("list")
                .action(ArgAction::SetTrue)
                .conflicts_with_all(["operation", "request"])
                .help("List the operations with their inputs and routes, and exit."),
        );
    let token = TokenArgs::augment_args(Command::new("token"))
        .about("Creates, lists and revokes the access tokens of `serve --auth`")
        .subcommand_required(true);
    root.subcommand(serve)
        .subcommand(mcp)
        .subcommand(token)
        .subcommands(OPERATIONS.iter().map(operation_command))
        .subcommand(call)
        .mut_subcommand("events", |events| {
            events.arg(
                Arg::new("follow")
                    .long("follow")
                    .short('f')
                    .action(ArgAction::SetTrue)
                    .help("Keep reading: print each new event as one JSON line as it is committed, until interrupted."),
            )
        })
}

/// The name of an input or field as an argument: `agent_id` is `agent`, `task_id`
/// is `task`, `claim_after` would be `claim-after`.
pub fn arg_name(name: &str) -> String {
    name.strip_suffix("_id").unwrap_or(name).replace('_', "-")
}

/// The first clause of a doc text, for the list of commands.
fn short(doc: &str) -> String {
    let end = [". ", ": ", "; "]
        .iter()
        .filter_map(|sep| doc.find(sep))
        .min()
        .unwrap_or(doc.len());
    doc[..end].trim_end_matches('.').to_owned()
}

fn value_name(kind: Kind, name: &str) -> String {
    match kind {
        Kind::Integer => "N".to_owned(),
        Kind::Number => "SECONDS".to_owned(),
        Kind::Status | Kind::FinishStatus => "STATUS".to_owned(),
        Kind::TaskIds => "IDS".to_owned(),
        _ => arg_name(name).to_uppercase(),
    }
}

/// A positional argument with clap id `id`, shown under the input or field `name`.
fn positional(id: &str, name: &str, kind: Kind, doc: &'static str) -> Arg {
    Arg::new(id.to_owned())
        .value_name(value_name(kind, name))
        .help(doc)
        .required(true)
        .allow_negative_numbers(matches!(kind, Kind::Integer | Kind::Number))
}

/// An option with clap id `id`, spelled after the input or field `name`.
fn option(id: &str, name: &str, kind: Kind, doc: &'static str) -> Arg {
    Arg::new(id.to_owned())
        .long(arg_name(name))
        .value_name(value_name(kind, name))
        .help(doc)
        .allow_negative_numbers(matches!(kind, Kind::Integer | Kind::Number))
}

/// The subcommand of one operation; see the module docs for the rules.
fn operation_command(op: &'static Operation) -> Command {
    let mut command = Command::new(op.command)
        .about(short(op.doc))
        .long_about(op.doc);
    // The operation's own name with dashes answers too (`get-dependencies` for
    // `dependencies`, `claim-next` for `claim`): SPEC §17 names subcommands so.
    let dashed = op.name.replace('_', "-");
    if dashed != op.command {
        command = command.visible_alias(&*Box::leak(dashed.into_boxed_str()));
    }
    for input in op.inputs {
        command = match input.kind {
            Kind::Object(fields) => fields.iter().fold(command, |mut command, field| {
                let name = field_id(input, field.name);
                if field.required {
                    return command.arg(positional(&name, field.name, field.kind, field.doc));
                }
                let mut arg = option(&name, field.name, field.kind, field.doc);
                if field.nullable {
                    let clear = format!("clear_{name}");
                    arg = arg.conflicts_with(&clear);
                    command = command.arg(
                        Arg::new(clear)
                            .long(format!("clear-{}", arg_name(field.name)))
                            .action(ArgAction::SetTrue)
                            .help(format!("Remove the {}.", field.name)),
                    );
                }
                command.arg(arg)
            }),
            Kind::List(_) => command.arg(
                positional(input.name, input.name, input.kind, input.doc)
                    .value_name(format!("{}_JSON", input.name.to_uppercase())),
            ),
            _ if input.required => {
                command.arg(positional(input.name, input.name, input.kind, input.doc))
            }
            _ => command.arg(option(input.name, input.name, input.kind, input.doc)),
        };
    }
    command
}

/// The clap id of a field of an object input: `task.title`.
pub fn field_id(input: &Input, field: &str) -> String {
    format!("{}.{field}", input.name)
}
