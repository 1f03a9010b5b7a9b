//! Time-series forecasting with augurs: the next idle time of a sparse application and the
//! per-minute demand of a busy one.

use augurs::ets::AutoETS;
use augurs::ets::trend::AutoETSTrendModel;
use augurs::mstl::MSTLModel;
use augurs::seasons::{Detector, PeriodogramDetector};
use augurs::{Fit, Predict};

/// Forecast the next value of a short series (e.g. idle times in ms) with a non-seasonal
/// AutoETS model. `None` when the series is too short or the model cannot be fitted.
pub fn forecast_next(series: &[f64]) -> Option<f64> {
    match series {
        [] => None,
        [only] => Some(*only),
        [a, b] => Some((a + b) / 2.0),
        _ => {
            let fitted = AutoETS::non_seasonal().fit(series).ok()?;
            let next = fitted.predict(1, None).ok()?.point.first().copied()?;
            next.is_finite().then_some(next.max(0.0))
        }
    }
}

/// Which model produced a [`DemandForecast`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DemandModel {
    /// MSTL decomposition at the detected period, AutoETS on the trend.
    Mstl {
        /// The detected season length, in steps.
        period: u32,
    },
    /// Non-seasonal AutoETS.
    Ets,
    /// Too little history or a failed fit: the recent mean.
    RecentMean,
}

/// Expected invocations per step for the next steps.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DemandForecast {
    /// Point forecast per future step, never negative.
    pub per_step: Vec<f64>,
    /// The model that produced it.
    pub model: DemandModel,
}

/// Fits a demand model to a per-step count series and forecasts ahead.
///
/// Seasonality is detected with a periodogram; a period is used only when the history holds at
/// least two full seasons of it.
#[derive(Debug, Clone)]
pub struct DemandForecaster {
    /// Shortest history (steps) for a fitted model; below it, the recent mean.
    pub min_history: usize,
    /// Shortest and longest season length looked for.
    pub period_range: (u32, u32),
}

impl Default for DemandForecaster {
    fn default() -> Self {
        Self {
            min_history: 30,
            period_range: (4, 720),
        }
    }
}

impl DemandForecaster {
    /// Forecast `horizon` steps after `history` (oldest first).
    pub fn forecast(&self, history: &[f64], horizon: usize) -> DemandForecast {
        let recent_mean = || {
            let tail = &history[history.len().saturating_sub(10)..];
            let mean = if tail.is_empty() {
                0.0
            } else {
                tail.iter().sum::<f64>() / tail.len() as f64
            };
            DemandForecast {
                per_step: vec![mean; horizon],
                model: DemandModel::RecentMean,
            }
        };
        if history.len() < self.min_history || history.iter().all(|v| *v == history[0]) {
            return recent_mean();
        }
        let clean = |point: Vec<f64>| -> Option<Vec<f64>> {
            point
                .iter()
                .all(|v| v.is_finite())
                .then(|| point.into_iter().map(|v| v.max(0.0)).collect())
        };
        if let Some(period) = self.detect_period(history) {
            let model = MSTLModel::new(
                vec![period as usize],
                AutoETSTrendModel::from(AutoETS::non_seasonal()),
            );
            if let Some(point) = model
                .fit(history)
                .ok()
                .and_then(|f| f.predict(horizon, None).ok())
                .and_then(|f| clean(f.point))
            {
                return DemandForecast {
                    per_step: point,
                    model: DemandModel::Mstl { period },
                };
            }
        }
        match AutoETS::non_seasonal()
            .fit(history)
            .ok()
            .and_then(|f| f.predict(horizon, None).ok())
            .and_then(|f| clean(f.point))
        {
            Some(point) => DemandForecast {
                per_step: point,
                model: DemandModel::Ets,
            },
            None => recent_mean(),
        }
    }

    fn detect_period(&self, history: &[f64]) -> Option<u32> {
        let (lo, hi) = self.period_range;
        let max = hi.min(history.len() as u32 / 2);
        if max <= lo {
            return None;
        }
        let detector = PeriodogramDetector::builder()
            .min_period(lo)
            .max_period(max)
            .build();
        detector
            .detect(history)
            .into_iter()
            .find(|p| (*p as usize) * 2 <= history.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_of_a_steady_series_is_close() {
        let s: Vec<f64> = (0..20).map(|i| 3_600_000.0 + (i % 2) as f64).collect();
        let next = forecast_next(&s).expect("fits");
        assert!((next - 3_600_000.0).abs() < 10_000.0, "{next}");
    }

    #[test]
    fn seasonal_demand_is_detected_and_followed() {
        // A load that peaks every 12 steps.
        let history: Vec<f64> = (0..144)
            .map(|i| if i % 12 < 3 { 20.0 } else { 1.0 })
            .collect();
        let f = DemandForecaster::default().forecast(&history, 12);
        assert!(
            matches!(f.model, DemandModel::Mstl { period: 12 }),
            "{:?}",
            f.model
        );
        let high = f.per_step[0..3].iter().sum::<f64>() / 3.0;
        let low = f.per_step[4..11].iter().sum::<f64>() / 7.0;
        assert!(high > 3.0 * low, "peak {high} vs trough {low}");
    }

    #[test]
    fn short_history_uses_the_recent_mean() {
        let f = DemandForecaster::default().forecast(&[1.0, 3.0], 2);
        assert_eq!(f.model, DemandModel::RecentMean);
        assert_eq!(f.per_step, vec![2.0, 2.0]);
    }
}
