//! The one retry loop of the cluster crate: leader forwarding (writes, read points, membership
//! changes) tries again on retryable failures until a deadline.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::ClusterError;

/// Run `attempt` (given the time left) until it succeeds, fails with an error that is not
/// [retryable](ClusterError::is_retryable), or `wait` has passed; `pause` between attempts.
/// The error is the last attempt's.
pub async fn until<T, F, Fut>(
    wait: Duration,
    pause: Duration,
    mut attempt: F,
) -> Result<T, ClusterError>
where
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Result<T, ClusterError>>,
{
    let begun = Instant::now();
    loop {
        let left = wait.saturating_sub(begun.elapsed());
        match attempt(left).await {
            Err(e) if e.is_retryable() && begun.elapsed() + pause < wait => {
                tracing::debug!("retrying in {pause:?}: {e}");
                tokio::time::sleep(pause).await;
            }
            done => return done,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    const WAIT: Duration = Duration::from_secs(10);
    const PAUSE: Duration = Duration::from_millis(100);

    fn declined() -> ClusterError {
        ClusterError::Declined {
            addr: String::from("127.0.0.1:1"),
            path: "/raft/write",
            message: String::from("has to forward request to leader"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn t01_retryable_failures_are_tried_again() {
        let calls = AtomicU32::new(0);
        let answer = until(WAIT, PAUSE, |_| async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 => Err(ClusterError::NoLeader(WAIT)),
                1 => Err(declined()),
                n => Ok(n),
            }
        })
        .await;
        assert_eq!(answer.ok(), Some(2));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn t02_a_fatal_failure_ends_at_once() {
        let calls = AtomicU32::new(0);
        let answer: Result<(), _> = until(WAIT, PAUSE, |_| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(ClusterError::Raft(String::from("shutting down")))
        })
        .await;
        assert!(matches!(answer, Err(ClusterError::Raft(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn t03_gives_up_at_the_deadline_with_the_last_error() {
        let begun = Instant::now();
        let mut lefts = Vec::new();
        let answer: Result<(), _> = until(WAIT, PAUSE, |left| {
            lefts.push(left);
            async { Err(declined()) }
        })
        .await;
        assert!(matches!(answer, Err(ClusterError::Declined { .. })));
        assert!(begun.elapsed() <= WAIT, "{:?}", begun.elapsed());
        // Paused time: attempts every PAUSE, each told the time left.
        assert_eq!(lefts.len(), 100);
        assert_eq!(lefts[0], WAIT);
        assert!(lefts.windows(2).all(|w| w[1] < w[0]));
    }
}
