//! The `agent-backlog` command line and REST server.

fn main() {
    println!("agent-backlog {}", agent_backlog::VERSION);
}
