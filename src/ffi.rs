//! The C ABI (see include/agent_backlog.h).
