//! [`RunnerClient`]: the runner protocol (`GET /ready`, `POST /invoke`) over an
//! [`InTaskClient`].

use std::net::SocketAddr;

use forewarm_http::{Answer, HttpError, InTaskClient, StatusCode};

use crate::{Usage, WorkloadOverrides};

/// Why `POST /invoke` on a runner gave no usage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunnerError {
    /// The call got no answer (see [`HttpError::not_sent`]: whether the invocation may
    /// have run).
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The runner answered with an error status: the invocation failed there (its workload
    /// refused, or it ran out of memory); sending it again is another invocation.
    #[error("runner answered {status}: {body}")]
    Failed {
        /// HTTP status.
        status: u16,
        /// What it said.
        body: String,
    },
    /// A 200 whose body is not the usage report.
    #[error("bad usage from runner: {0}")]
    BadUsage(String),
}

impl RunnerError {
    /// Whether the invocation certainly did not run (so it may be sent to another
    /// container).
    pub fn not_run(&self) -> bool {
        matches!(self, RunnerError::Http(e) if e.not_sent())
    }
}

/// A runner client shared by all containers of a node: the runner protocol over
/// [`InTaskClient`] connections, run in the calling task.
#[derive(Debug, Clone, Default)]
pub struct RunnerClient {
    http: std::sync::Arc<InTaskClient>,
}

impl RunnerClient {
    /// Whether the runner answers `GET /ready` with 200.
    pub async fn is_ready(&self, endpoint: SocketAddr) -> bool {
        matches!(
            self.http.exchange(endpoint, "GET", "/ready", b"").await,
            Ok(Answer { status: 200, .. })
        )
    }

    /// `POST /invoke`.
    pub async fn invoke(
        &self,
        endpoint: SocketAddr,
        overrides: &WorkloadOverrides,
    ) -> Result<Usage, RunnerError> {
        let body =
            serde_json::to_vec(overrides).map_err(|e| RunnerError::BadUsage(e.to_string()))?;
        let answer = self
            .http
            .exchange(endpoint, "POST", "/invoke", &body)
            .await?;
        if answer.status != 200 {
            let status = StatusCode::from_u16(answer.status)
                .map_or_else(|_| answer.status.to_string(), |s| s.to_string());
            return Err(RunnerError::Failed {
                status: answer.status,
                body: format!("{status}: {}", String::from_utf8_lossy(&answer.body)),
            });
        }
        serde_json::from_slice(&answer.body).map_err(|e| RunnerError::BadUsage(e.to_string()))
    }

    /// Drop the kept-alive connections to a runner that is gone.
    pub fn forget(&self, endpoint: SocketAddr) {
        self.http.forget(endpoint);
    }
}
