//! Round trips to the other members (the mesh's pings), and the moving average they and the
//! queue wait share.

use std::collections::{HashMap, VecDeque};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use forewarm_raft::NodeId;

/// Weight of a new sample in the moving averages.
const RTT_ALPHA: f64 = 0.3;

/// Round trips to the other members.
#[derive(Debug, Default)]
pub struct RttTable {
    by_member: RwLock<HashMap<NodeId, Rtt>>,
}

/// Round trips to one member: the moving average and the latest samples.
#[derive(Debug, Clone, Default)]
struct Rtt {
    ewma_ms: f64,
    recent_ms: VecDeque<f64>,
    /// When a probe last answered.
    answered: Option<Instant>,
}

/// `average` moved towards `sample` (weight [`RTT_ALPHA`]).
pub(crate) fn ewma(average: f64, sample: f64) -> f64 {
    RTT_ALPHA * sample + (1.0 - RTT_ALPHA) * average
}

/// Samples kept per member for `GET /v1/cluster`.
const RTT_RECENT: usize = 5;

impl RttTable {
    /// Fold one measured round trip to `id` into its average.
    pub fn record(&self, id: NodeId, ms: f64) {
        self.fold(id, ms, false);
    }

    /// Fold a round trip to `id` that was answered (a ping) into its average, and note when.
    pub fn answered(&self, id: NodeId, ms: f64) {
        self.fold(id, ms, true);
    }

    fn fold(&self, id: NodeId, ms: f64, answered: bool) {
        let mut table = self.by_member.write().unwrap_or_else(|e| e.into_inner());
        let rtt = table.entry(id).or_insert_with(|| Rtt {
            ewma_ms: ms,
            recent_ms: Default::default(),
            answered: None,
        });
        rtt.ewma_ms = ewma(rtt.ewma_ms, ms);
        if rtt.recent_ms.len() == RTT_RECENT {
            rtt.recent_ms.pop_front();
        }
        rtt.recent_ms.push_back(ms);
        if answered {
            rtt.answered = Some(Instant::now());
        }
    }

    /// Whether `id` answered a probe within `within`.
    pub fn heard(&self, id: NodeId, within: Duration) -> bool {
        let table = self.by_member.read().unwrap_or_else(|e| e.into_inner());
        table
            .get(&id)
            .and_then(|r| r.answered)
            .is_some_and(|at| at.elapsed() < within)
    }

    /// The average round trip to `id`, ms.
    pub fn get(&self, id: NodeId) -> Option<f64> {
        let table = self.by_member.read().unwrap_or_else(|e| e.into_inner());
        table.get(&id).map(|r| r.ewma_ms)
    }

    /// The latest round trips to `id`, oldest first, ms.
    pub fn recent(&self, id: NodeId) -> Vec<f64> {
        let table = self.by_member.read().unwrap_or_else(|e| e.into_inner());
        table
            .get(&id)
            .map(|r| r.recent_ms.iter().copied().collect())
            .unwrap_or_default()
    }
}
