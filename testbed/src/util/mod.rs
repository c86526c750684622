//! What every part of the test bed shares: the user cache and its locks, running commands,
//! workspace paths and files, blocking HTTP, a minimal MCP client, free ports, this machine's programs and packages, and
//! child processes that die with the run.
//!
//! Each job is done once, here; the other modules never spawn a program, bind a probe
//! socket or speak HTTP by hand.

pub mod cache;
pub mod cmd;
pub mod fs;
pub mod host;
pub mod http;
pub mod mcp_client;
pub mod net;
pub mod process;
pub mod workspace;
