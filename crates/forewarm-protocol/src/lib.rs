//! Types several forewarm crates share, and nothing else: what a code type's execution does
//! ([`Workload`]), per-request changes to it ([`WorkloadOverrides`]), what an execution measured
//! ([`Usage`]), and the key a code type is known by ([`CodeKey`]).
//!
//! The runner (inside every container), the runtime (which talks to runners), the replicated
//! state and the node all speak these types; keeping them here lets each of those crates
//! depend on a few serde structs instead of on one another. It owns no I/O and no logic beyond
//! the bounds a workload must respect.

mod code_key;
mod workload;

pub use code_key::{CodeKey, code_key};
pub use workload::{LimitError, Usage, Workload, WorkloadOverrides};
