//! The HTTP/1.1 clients forewarm calls with.
//!
//! - [`HttpClient`]: pooled hyper connections; node APIs, Raft RPCs and forwarded writes, the
//!   CLI, the benchmarks and the tests.
//! - [`InTaskClient`]: one exchange at a time in the calling task on kept-alive connections;
//!   the runner protocol on the warm path (no task wake-ups per request), and the load
//!   generator.
//!
//! Both fail with an [`HttpError`], which tells a request that certainly did not run
//! (nothing was sent) from one that may have run (sent, no complete answer): the first may be
//! retried anywhere, the second only when it is idempotent.

mod error;
mod in_task;
mod pooled;

pub use error::HttpError;
pub use hyper::body::Bytes;
pub use hyper::{HeaderMap, Method, StatusCode};
pub use in_task::{Answer, InTaskClient};
pub use pooled::{FROM_HEADER, HttpAnswer, HttpClient};
