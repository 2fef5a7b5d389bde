//! `agent-backlog`: the REST server (`agent-backlog serve`) and the command line for
//! people and scripts, over one SQLite backlog file.
//!
//! Both are thin: arguments, query strings and bodies are converted to JSON and
//! checked by the core's strict parsers; results are the core's JSON shapes. Exit
//! statuses: 0 success, 1–6 the core's error codes (as in the C ABI), 64 usage
//! errors, 69 `serve` cannot listen, 74 stdout cannot be written.

mod args;
mod commands;
mod convert;
mod output;
mod server;

use std::io::Write;
use std::process::ExitCode;

use agent_backlog::{Error, Store, StoreOptions};
use clap::Parser;

use args::{Cli, Command, Format};

/// Exit status for a command line that cannot be parsed (sysexits EX_USAGE). clap's
/// own 2 would be mistaken for `not_found`.
const EXIT_USAGE: u8 = 64;
/// Exit status when the result cannot be written to stdout (sysexits EX_IOERR).
const EXIT_IO: u8 = 74;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // --help and --version print to stdout and succeed; the rest is misuse.
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    let format = command_format(&cli);
    let options = match store_options(&cli) {
        Ok(options) => options,
        Err(err) => return fail(&err, format),
    };
    match cli.command {
        Command::Serve(serve) => {
            let config = server::ServeConfig {
                host: serve.host,
                port: serve.port,
                db: cli.db,
                options,
            };
            match server::serve(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(server::ServeError::Store(err)) => fail(&err, format),
                Err(server::ServeError::Listen(message)) => {
                    eprintln!("error: {message}");
                    ExitCode::from(server::EXIT_CANNOT_LISTEN)
                }
            }
        }
        command => {
            let result =
                Store::open_with(&cli.db, options).and_then(|store| commands::run(&store, command));
            match result {
                Ok(out) => print(&output::render(&out, format)),
                Err(err) => fail(&err, format),
            }
        }
    }
}

/// The `--format` of a data command; `serve` reports errors as text.
fn command_format(cli: &Cli) -> Format {
    match cli.command {
        Command::Serve(_) => Format::Table,
        _ => cli.format,
    }
}

/// `--busy-timeout-ms` and `--durability`, checked by the core's options parser.
fn store_options(cli: &Cli) -> Result<StoreOptions, Error> {
    let pairs = [
        ("busy_timeout_ms", cli.busy_timeout_ms.as_deref()),
        ("durability", cli.durability.as_deref()),
    ];
    let given = pairs
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)));
    StoreOptions::from_value(convert::object_from_pairs(given, "option")?)
}

/// Prints the error to stderr and exits with its code's number (1–6).
fn fail(err: &Error, format: Format) -> ExitCode {
    eprintln!("{}", output::render_error(err, format));
    ExitCode::from(err.kind() as u8)
}

fn print(text: &str) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that stopped early (`| head`) is not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write the result to stdout: {e}");
            ExitCode::from(EXIT_IO)
        }
    }
}
