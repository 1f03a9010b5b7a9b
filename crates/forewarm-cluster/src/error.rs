//! Why a cluster operation failed, and whether trying again can help.

use std::time::Duration;

use forewarm_http::HttpError;

/// Why a cluster operation failed. [`ClusterError::is_retryable`] says which failures the
/// forwarding loop ([`crate::forward`]) tries again until its wait ends.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    /// No leader within the wait (no quorum, or an election that does not end). Retryable.
    #[error("no Raft leader within {0:?}: is a majority of the members up?")]
    NoLeader(Duration),
    /// A member could not be reached or gave no answer. Retryable (see
    /// [`HttpError::not_sent`] for whether the request may have run there).
    #[error("{path}: {source}")]
    Unreachable {
        /// The internal endpoint called.
        path: &'static str,
        /// What the call got.
        #[source]
        source: HttpError,
    },
    /// A member answered that it could not do it now: it is no longer the leader, a
    /// membership change is in progress. Retryable.
    #[error("{addr}{path}: {message}")]
    Declined {
        /// The member's API address.
        addr: String,
        /// The internal endpoint called.
        path: &'static str,
        /// What it said.
        message: String,
    },
    /// A member's answer is not what the protocol says: a wrong cluster secret, another
    /// program on that port. Fatal: the same call gets the same answer.
    #[error("{addr}{path}: {status}: {body}")]
    BadAnswer {
        /// The member's API address.
        addr: String,
        /// The internal endpoint called.
        path: &'static str,
        /// HTTP status.
        status: u16,
        /// The body (or the part of it that says why).
        body: String,
    },
    /// This node's Raft refused (it is shutting down; the wait for a log index passed; a
    /// membership change it cannot make). Fatal for this call.
    #[error("raft: {0}")]
    Raft(String),
    /// None of the seeds added this node within the deadline.
    #[error("could not join through {seeds:?} within {deadline:?}: {last}")]
    NotJoined {
        /// The members asked.
        seeds: Vec<String>,
        /// How long it tried.
        deadline: Duration,
        /// The last failure.
        last: String,
    },
    /// The store could not be opened, Raft or the node transport not started. Fatal.
    #[error("{0}")]
    Start(String),
}

impl ClusterError {
    /// Whether the same operation may succeed if tried again (after an election, once a
    /// member is back).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ClusterError::NoLeader(_)
                | ClusterError::Unreachable { .. }
                | ClusterError::Declined { .. }
        )
    }
}
