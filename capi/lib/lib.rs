//! libagent_backlog: the C library. Every function is defined in the C ABI crate
//! (`agent_backlog_capi`); this crate only gives the shared and static libraries
//! their name. See `include/agent_backlog.h`.
#![forbid(unsafe_code)]

pub use agent_backlog_capi::*;
