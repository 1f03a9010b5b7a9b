//! A binned idle-time histogram with its coefficient of variation and out-of-bounds count,
//! plus the most recent raw idle times: what the hybrid-histogram policy learns from.

use std::collections::VecDeque;

use crate::policy::Millis;

/// How many raw idle times are kept for the time-series fallback.
const RAW_KEPT: usize = 64;

/// Idle times of one application in fixed-width bins over a bounded range.
#[derive(Debug, Clone)]
pub struct IdleTimes {
    bin_ms: Millis,
    bins: Vec<u32>,
    /// Samples that fell inside the range.
    in_range: u64,
    /// Sum of squared bin counts, kept so the CV costs O(1).
    sum_sq: u64,
    /// Samples beyond the last bin.
    out_of_bounds: u64,
    raw: VecDeque<Millis>,
}

impl IdleTimes {
    /// `bins` bins of `bin_ms` each (the paper: 1-minute bins over 4 hours = 240 bins).
    pub fn new(bin_ms: Millis, bins: usize) -> Self {
        Self {
            bin_ms: bin_ms.max(1),
            bins: vec![0; bins.max(2)],
            in_range: 0,
            sum_sq: 0,
            out_of_bounds: 0,
            raw: VecDeque::with_capacity(RAW_KEPT),
        }
    }

    /// Record one idle time.
    pub fn record(&mut self, idle_ms: Millis) {
        if self.raw.len() == RAW_KEPT {
            self.raw.pop_front();
        }
        self.raw.push_back(idle_ms);
        let bin = (idle_ms / self.bin_ms) as usize;
        match self.bins.get_mut(bin) {
            Some(count) => {
                self.sum_sq += 2 * u64::from(*count) + 1;
                *count += 1;
                self.in_range += 1;
            }
            None => self.out_of_bounds += 1,
        }
    }

    /// Samples recorded inside the range.
    pub fn in_range(&self) -> u64 {
        self.in_range
    }

    /// Fraction of all samples beyond the range (0 with no samples).
    pub fn out_of_bounds_rate(&self) -> f64 {
        let all = self.in_range + self.out_of_bounds;
        if all == 0 {
            0.0
        } else {
            self.out_of_bounds as f64 / all as f64
        }
    }

    /// Coefficient of variation of the bin counts (sample standard deviation / mean); 0 when
    /// the histogram is empty.
    pub fn bin_count_cv(&self) -> f64 {
        if self.in_range == 0 {
            return 0.0;
        }
        let n = self.bins.len() as f64;
        let mean = self.in_range as f64 / n;
        let var = (self.sum_sq as f64 - n * mean * mean).max(0.0) / (n - 1.0);
        var.sqrt() / mean
    }

    /// Index of the first bin at which the cumulative share reaches `p` (0..=1).
    pub fn percentile_bin(&self, p: f64) -> usize {
        let need = p * self.in_range as f64;
        let mut seen = 0u64;
        for (i, count) in self.bins.iter().enumerate() {
            seen += u64::from(*count);
            if seen as f64 >= need && seen > 0 {
                return i;
            }
        }
        self.bins.len() - 1
    }

    /// Width of one bin.
    pub fn bin_ms(&self) -> Millis {
        self.bin_ms
    }

    /// The most recent raw idle times, oldest first.
    pub fn recent(&self) -> impl ExactSizeIterator<Item = Millis> + '_ {
        self.raw.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_is_concentrated() {
        let mut h = IdleTimes::new(60_000, 240);
        h.record(90_000);
        assert_eq!(h.percentile_bin(0.05), 1);
        assert_eq!(h.percentile_bin(0.99), 1);
        // One non-empty bin out of 240: CV = sqrt(240) approximately.
        assert!(
            (h.bin_count_cv() - 240f64.sqrt()).abs() < 0.1,
            "{}",
            h.bin_count_cv()
        );
    }

    #[test]
    fn uniform_spread_has_low_cv_and_oob_is_counted() {
        let mut h = IdleTimes::new(60_000, 10);
        for i in 0..10 {
            h.record(i * 60_000 + 1);
        }
        assert!(h.bin_count_cv() < 1e-9);
        h.record(10 * 60_000);
        assert!((h.out_of_bounds_rate() - 1.0 / 11.0).abs() < 1e-12);
        assert_eq!(h.percentile_bin(0.5), 4);
    }
}
