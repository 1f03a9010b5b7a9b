//! Size classes and the online memory-profile predictor that picks one for a new container.

use std::collections::VecDeque;

/// Memory of the container size classes, smallest first (the CPU share scales with memory).
pub const SIZE_CLASSES_MIB: [u32; 7] = [128, 256, 512, 1024, 2048, 4096, 8192];

/// The smallest size class holding `mib`; beyond the largest class, `mib` rounded up to GiB.
pub fn size_class_for(mib: f64) -> u32 {
    let need = mib.max(0.0).ceil() as u32;
    SIZE_CLASSES_MIB
        .iter()
        .copied()
        .find(|class| *class >= need)
        .unwrap_or_else(|| need.div_ceil(1024) * 1024)
}

/// Predicts an application's memory need from what its invocations used, and turns the
/// prediction into a size class.
///
/// Until `min_samples` invocations were seen it answers with the declared limit; after that
/// with the chosen quantile of the recent samples plus headroom.
#[derive(Debug, Clone)]
pub struct ProfilePredictor {
    declared_mib: f64,
    quantile: f64,
    headroom: f64,
    min_samples: usize,
    recent: VecDeque<f64>,
    capacity: usize,
    cached: Option<u32>,
}

impl ProfilePredictor {
    /// A predictor that starts from the declared limit and covers the 95th percentile with
    /// 10% headroom once it has 5 samples.
    pub fn new(declared_mib: f64) -> Self {
        Self {
            declared_mib,
            quantile: 0.95,
            headroom: 0.10,
            min_samples: 5,
            recent: VecDeque::with_capacity(64),
            capacity: 64,
            cached: None,
        }
    }

    /// Record the memory one invocation used.
    pub fn observe(&mut self, mib: f64) {
        if self.recent.len() == self.capacity {
            self.recent.pop_front();
        }
        self.recent.push_back(mib);
        self.cached = None;
    }

    /// The predicted memory need (MiB) of the next invocation.
    pub fn predicted_mib(&self) -> f64 {
        if self.recent.len() < self.min_samples {
            return self.declared_mib;
        }
        let mut sorted: Vec<f64> = self.recent.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let idx = ((sorted.len() - 1) as f64 * self.quantile).ceil() as usize;
        sorted[idx] * (1.0 + self.headroom)
    }

    /// The size class for a container created now.
    pub fn class_mib(&mut self) -> u32 {
        if let Some(class) = self.cached {
            return class;
        }
        let class = size_class_for(self.predicted_mib());
        self.cached = Some(class);
        class
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_up() {
        assert_eq!(size_class_for(1.0), 128);
        assert_eq!(size_class_for(128.0), 128);
        assert_eq!(size_class_for(128.5), 256);
        assert_eq!(size_class_for(9000.0), 9216);
    }

    #[test]
    fn declared_limit_until_enough_samples_then_quantile() {
        let mut p = ProfilePredictor::new(1500.0);
        assert_eq!(p.class_mib(), 2048);
        for mib in [100.0, 110.0, 120.0, 90.0, 100.0] {
            p.observe(mib);
        }
        // p95 of the samples is 120, +10% = 132 -> 256.
        assert_eq!(p.class_mib(), 256);
    }
}
