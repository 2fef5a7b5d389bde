//! The command line's grammar (clap derive): every command and option, with its help.
//!
//! Values that the core validates (statuses, priorities, limits, prefixes, the
//! durability) are taken as plain strings and handed to the core's JSON parsers, so
//! that a bad value gets the same message on every surface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Text shown after the help of the program: the exit statuses.
const EXIT_STATUSES: &str = "\
Exit status:
  0   success (also `claim` with nothing queued, which prints null)
  1   invalid_argument     4   conflict
  2   not_found            5   storage
  3   invalid_transition   6   internal
  64  usage error (unknown command or option, missing argument)
  69  serve: cannot listen on the address
  74  the result cannot be written to stdout

Every data command prints its result as one line of compact JSON (the shapes of the
REST API) unless --format table is given. Errors go to stderr: the error JSON with
--format json, a readable line with --format table.";

/// The help heading of the options every command takes.
const DATABASE: &str = "Database options";

/// A prioritized task backlog for every AI agent, in one SQLite file: a REST server
/// and a command line.
#[derive(Debug, Parser)]
#[command(name = "agent-backlog", version, after_long_help = EXIT_STATUSES)]
pub struct Cli {
    /// The database file, created when missing (":memory:" for a throwaway store).
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

    /// How results and errors are printed: json, the exact JSON shape, compact, on one
    /// line; table: aligned text for people.
    #[arg(long, global = true, value_enum, default_value_t = Format::Json)]
    pub format: Format,

    /// `normal`: an acknowledged write survives a crash of the process; `full`: it
    /// also survives power loss, at the price of an fsync per write [default: normal].
    #[arg(long, global = true, help_heading = DATABASE, value_name = "normal|full")]
    pub durability: Option<String>,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the REST API (see the README for the routes) until Ctrl-C or SIGTERM.
    Serve(ServeArgs),
    /// List an agent's backlog, by priority then creation order.
    List {
        /// The agent, e.g. marketing-lead.
        agent: String,
        /// Only tasks in this status: queued, in_progress, complete or blocked.
        #[arg(long)]
        status: Option<String>,
        /// At most this many tasks (default: all).
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        limit: Option<String>,
        /// Skip this many tasks first.
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        offset: Option<String>,
    },
    /// Add a task to an agent's backlog; its ID is generated.
    Create {
        /// The agent, e.g. marketing-lead.
        agent: String,
        /// Short task title (1 to 500 characters).
        title: String,
        /// Detailed instructions for the agent.
        #[arg(long)]
        description: Option<String>,
        /// 1 (highest) to 10 (lowest); default 5.
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        priority: Option<String>,
    },
    /// Change a task's status, priority, title, description, blocker or result.
    Update {
        /// The agent, e.g. marketing-lead.
        agent: String,
        /// The task ID, e.g. MKT-001.
        task: String,
        /// Move the task to queued, in_progress, complete or blocked.
        #[arg(long)]
        status: Option<String>,
        /// New priority, 1 (highest) to 10 (lowest).
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        priority: Option<String>,
        /// New title.
        #[arg(long)]
        title: Option<String>,
        /// New description.
        #[arg(long, conflicts_with = "clear_description")]
        description: Option<String>,
        /// Remove the description.
        #[arg(long)]
        clear_description: bool,
        /// Why the task is blocked (only when it is or becomes blocked).
        #[arg(long, conflicts_with = "clear_blocker")]
        blocker: Option<String>,
        /// Remove the blocker.
        #[arg(long)]
        clear_blocker: bool,
        /// What the agent produced (only when the task is or becomes complete).
        #[arg(long, conflicts_with = "clear_result")]
        result: Option<String>,
        /// Remove the result.
        #[arg(long)]
        clear_result: bool,
    },
    /// Delete a task for good (its ID is never given again).
    Delete {
        /// The agent, e.g. marketing-lead.
        agent: String,
        /// The task ID, e.g. MKT-001.
        task: String,
    },
    /// Show one task.
    Get {
        /// The agent, e.g. marketing-lead.
        agent: String,
        /// The task ID, e.g. MKT-001.
        task: String,
    },
    /// List tasks across all agents, by priority then creation order.
    Query {
        /// Only tasks in this status: queued, in_progress, complete or blocked.
        #[arg(long)]
        status: Option<String>,
        /// Only tasks of exactly this priority.
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        priority: Option<String>,
        /// Only tasks of this agent.
        #[arg(long, value_name = "AGENT")]
        agent: Option<String>,
        /// At most this many tasks (default: all).
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        limit: Option<String>,
        /// Skip this many tasks first.
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        offset: Option<String>,
    },
    /// Count an agent's tasks by status.
    Summary {
        /// The agent, e.g. marketing-lead.
        agent: String,
    },
    /// Move the agent's most urgent queued task to in_progress and print it (null when
    /// nothing is queued). Two claimers never get the same task.
    Claim {
        /// The agent, e.g. marketing-lead.
        agent: String,
    },
    /// Run any operation by name with a JSON request, as the C function backlog_call
    /// does: `call summary '{"agent_id": "ops"}'`. The operations and their inputs are
    /// listed by `call --list`.
    Call {
        /// The operation, e.g. claim_next (see --list).
        #[arg(required_unless_present = "list")]
        operation: Option<String>,
        /// The request: a JSON object of the operation's inputs [default: {}].
        request: Option<String>,
        /// List the operations with their inputs and routes, and exit.
        #[arg(long, conflicts_with_all = ["operation", "request"])]
        list: bool,
    },
    /// Set the prefix of an agent's task IDs, before its first task.
    Prefix {
        /// The agent, e.g. growth-bot.
        agent: String,
        /// 1 to 8 characters A-Z and 0-9, starting with a letter, e.g. GRW.
        prefix: String,
    },
}

/// Options of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Only a loopback address keeps the API private: it has no
    /// authentication.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// TCP port to listen on; 0 picks a free port (printed at startup).
    #[arg(long, default_value_t = 8787)]
    pub port: u16,
}

/// How a result is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One line of compact JSON, ready for `jq`.
    Json,
    /// Aligned columns (lists) or field/value lines (one task).
    Table,
}
