//! The project's test bed: everything the end-to-end tests and the benchmarks run against,
//! driven by `cargo xtask cluster | e2e | sdk-clients | bench | chart | image`.
//!
//! - [`cluster`]: a real Kubernetes control plane on loopback (etcd, kube-apiserver with RBAC,
//!   controllers, scheduler, kwok GPU nodes), built from the pinned Go modules in `k8s-bins/`;
//! - [`e2e`]: the gateway's end-to-end scenarios on that cluster or on kind;
//! - [`sdk_clients`]: the agent and the gateway checked by the official Python and TypeScript
//!   MCP SDKs in their default modes, each installed at pinned versions into the user cache;
//! - [`bench`]: the load generator, floor server, MCP client and stand-in API server behind
//!   `docs/benchmarks.md`;
//! - [`image`]: the container image built from this machine's binaries and checked by running it;
//! - [`chart`]: what a render of the Helm chart must satisfy (policy, the contract with the
//!   agent binary) and which Helm to render it with;
//! - [`util`]: commands, paths and files, HTTP, ports and child processes, shared by all.
//!
//! Like xtask, and unlike the product's libraries, this crate starts programs, prints progress
//! to stderr and reads the environment; nothing the product ships depends on it.

pub mod bench;
pub mod chart;
pub mod cluster;
pub mod e2e;
pub mod image;
mod kind;
mod programs;
pub mod sdk_clients;
pub mod util;
