//! Tools kept out of the product: what measures a node or a cluster, and what stands in for
//! the network between regions. The node library holds the node; nothing here runs in it.
//!
//! - [`cold_warm`]: cold versus warm start latency on a real container runtime.
//! - [`node_bench`]: `forewarm bench node`, a node's overhead and throughput against a
//!   direct baseline in one run.
//! - [`route_bench`]: `forewarm bench cluster`'s routing-decision half.
//! - [`delay_proxy`]: a TCP proxy with a per-link one-way delay and cuts (no netem here).

pub mod cold_warm;
pub mod delay_proxy;
pub mod node_bench;
pub mod route_bench;
