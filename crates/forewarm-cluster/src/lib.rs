//! This node's part in the cluster, under the node's actors and API:
//!
//! - [`member`]: the Raft node over its store (forewarm-raft), starting a cluster of one or
//!   joining one, adding and removing members, the election guard;
//! - [`forward`]: writes committed through the leader and linearizable read points from any
//!   member, retried through elections by one helper ([`retry`]);
//! - [`network`] and [`server`]: the Raft network's client and server sides (Raft RPCs over
//!   the nodes' HTTP APIs), and the other internal endpoints (`/raft/*`);
//! - [`mesh`]: the node transport, ractor_cluster sessions between the members that carry
//!   inventories, pings and forwarded invocations;
//! - [`inventory`], [`rtt`], [`view`]: what each member holds warm, how far each is, and
//!   `GET /v1/cluster`.
//!
//! Why HTTP for Raft RPCs (and not the ractor_cluster transport): every node already serves
//! HTTP, Raft RPCs are request/response with a deadline (`RPCOption::hard_ttl`), a failed
//! connection must read as "unreachable" at once so openraft backs off, and an operator can
//! see and replay them with curl. Internal endpoints take the cluster secret as their bearer
//! token; the public API never accepts it. docs/cluster.md has the details.
//!
//! Every node runs Raft, a lone node included (a cluster of one, started on first boot), so
//! a single node and a cluster keep tenants and code types the same way.
//!
//! The crate knows nothing of pools, routers or invocations: the node depends on it, never
//! the reverse. A forwarded invocation crosses the transport as bytes.

pub mod config;
pub mod error;
pub mod forward;
pub mod inventory;
pub mod member;
pub mod mesh;
pub mod network;
pub mod retry;
mod rpc_check;
pub mod rtt;
pub mod server;
pub mod tls;
pub mod view;

pub use config::{ClusterConfig, Secret};
pub use error::ClusterError;
pub use inventory::{Inventory, RemoteView};
pub use member::Cluster;
pub use mesh::{Mesh, MeshError, MeshSlot};
pub use rtt::RttTable;
pub use server::{SECRET_REFUSED, routes, serve};
pub use tls::{ClusterTls, PeerCert, TlsFiles};
pub use view::{ClusterView, MemberView};
