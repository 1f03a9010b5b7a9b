//! What can go wrong on a call, told apart by what the caller may do next.

/// Why a call got no usable answer.
///
/// The variants answer the question a caller has to settle before it retries: did the
/// request reach the server, so that it may have run?
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// No connection could be made (refused, unreachable, no connection within the connect
    /// deadline): nothing was sent, trying again (here or elsewhere) is safe.
    #[error("connect to {endpoint}: {reason}")]
    Connect {
        /// `host:port`.
        endpoint: String,
        /// What the socket said.
        reason: String,
    },
    /// The request was sent (or may have been) and no complete answer came: the connection
    /// broke or closed mid-answer. The request may have run; only an idempotent request may
    /// be sent again.
    #[error("{endpoint}: no answer: {reason}")]
    NoAnswer {
        /// `host:port`.
        endpoint: String,
        /// What happened.
        reason: String,
    },
    /// The caller's deadline passed before a complete answer. The request may have run (and
    /// may still be running).
    #[error("{endpoint}: no answer within {after:?}")]
    TimedOut {
        /// `host:port` (and path).
        endpoint: String,
        /// The deadline.
        after: std::time::Duration,
    },
    /// The request could not be built (an endpoint or path that is not a URI): not sent,
    /// and it never will be.
    #[error("{endpoint}: bad request: {reason}")]
    BadRequest {
        /// `host:port` as given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An answer came that is not HTTP this client reads (garbage, too large, bad framing).
    /// The request may have run; sending it again gets the same answer.
    #[error("{endpoint}: bad answer: {reason}")]
    Protocol {
        /// `host:port`.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl HttpError {
    /// Whether the request certainly did not reach the server (so it did not run).
    pub fn not_sent(&self) -> bool {
        matches!(
            self,
            HttpError::Connect { .. } | HttpError::BadRequest { .. }
        )
    }

    /// Whether the same request may get an answer later: the connection failed or broke
    /// (the server or the path to it may come back); a bad answer will not change.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            HttpError::Connect { .. } | HttpError::NoAnswer { .. } | HttpError::TimedOut { .. }
        )
    }

    /// A deadline passed before the answer.
    pub fn timed_out(endpoint: impl std::fmt::Display, after: std::time::Duration) -> Self {
        HttpError::TimedOut {
            endpoint: endpoint.to_string(),
            after,
        }
    }
}
