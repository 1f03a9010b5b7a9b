//! Regional demand: where each application's invocations come from, written beside a trace by
//! `forewarm trace gen --regions FILE` and read by `forewarm simulate --regions FILE`.
//!
//! Two files in the trace directory:
//!
//! - `regions.csv`: `Region,UtcOffsetHours`, one row per region in topology order;
//! - `app_regions.csv`: `HashOwner,HashApp,Diurnal,<one column per region>`: each application's
//!   share of demand per region (summing to 1) and the depth of its daily cycle.
//!
//! An invocation of an application at trace minute `m` comes from region `r` with probability
//! proportional to `share[r] × (1 + diurnal × cos(2π (local_hour(m, r) − 14) / 24))`: every
//! region's demand peaks at 14:00 its own time, so the mix over regions turns with the sun.
//!
//! Generated mixes ([`RegionalGen`]): a *home* region drawn uniformly, a share of demand outside
//! it (mean `spread`) spread over the other regions in proportion to 1 / RTT² from home (an
//! application of Frankfurt gets most of its foreign traffic from Ireland), and a fraction
//! `global_share` of applications used evenly everywhere.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::error::TraceError;

/// File of the regions and their time zones.
pub const REGIONS_FILE: &str = "regions.csv";
/// File of the applications' demand mixes.
pub const APP_REGIONS_FILE: &str = "app_regions.csv";

/// Local hour at which every region's demand peaks.
const PEAK_HOUR: f64 = 14.0;

/// A region as regional demand sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    /// Region name (as in the topology file).
    pub name: String,
    /// Hours its local time is ahead of UTC (trace minute 0 is UTC midnight).
    pub utc_offset_h: f64,
}

/// Knobs of a generated regional demand (`forewarm trace gen --region-*`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegionalGen {
    /// Mean share of an application's demand that comes from outside its home region.
    pub spread: f64,
    /// Fraction of applications used evenly in every region.
    pub global_share: f64,
    /// Mean depth of the daily cycle (0: flat, 1: no demand at 02:00 local).
    pub diurnal: f64,
    /// Seed of the draws.
    pub seed: u64,
}

impl Default for RegionalGen {
    fn default() -> Self {
        Self {
            spread: 0.3,
            global_share: 0.1,
            diurnal: 0.5,
            seed: 1,
        }
    }
}

impl RegionalGen {
    fn check(&self) -> Result<(), TraceError> {
        let bad = |what: &str, v: f64| {
            TraceError::InvalidConfig(format!("{what} must lie in [0, 1], got {v}"))
        };
        for (what, v) in [
            ("--region-spread", self.spread),
            ("--region-global", self.global_share),
            ("--region-diurnal", self.diurnal),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(bad(what, v));
            }
        }
        Ok(())
    }
}

/// One application's demand mix.
#[derive(Debug, Clone, PartialEq)]
pub struct AppRegions {
    /// Depth of its daily cycle, in [0, 1].
    pub diurnal: f64,
    /// Share of its demand per region (in [`RegionalDemand::zones`] order), summing to 1.
    pub shares: Vec<f64>,
}

/// The regional demand of a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionalDemand {
    /// Regions, in topology order.
    pub zones: Vec<Zone>,
    /// Mixes by (HashOwner, HashApp).
    pub apps: HashMap<(String, String), AppRegions>,
}

/// A seed of its own for item `index` of a run seeded `seed` (splitmix64 of the pair), so
/// neighbouring items get unrelated random streams.
pub fn item_seed(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl RegionalDemand {
    /// Draw a mix for every application `(owner, app)` of `apps` over `zones`, whose round
    /// trips are `rtt_ms[a][b]` (ms, symmetric).
    pub fn generate<'a>(
        apps: impl IntoIterator<Item = (&'a str, &'a str)>,
        zones: Vec<Zone>,
        rtt_ms: &[Vec<f64>],
        config: &RegionalGen,
    ) -> Result<Self, TraceError> {
        config.check()?;
        let n = zones.len();
        if n == 0 || rtt_ms.len() != n || rtt_ms.iter().any(|row| row.len() != n) {
            return Err(TraceError::InvalidConfig(format!(
                "regional demand needs at least one region and a round trip for every pair ({n} regions)"
            )));
        }
        let mut out = HashMap::new();
        for (index, (owner, app)) in apps.into_iter().enumerate() {
            let mut rng = SmallRng::seed_from_u64(item_seed(config.seed, index as u64));
            let home = rng.random_range(0..n);
            let global = rng.random::<f64>() < config.global_share;
            let mut shares = vec![0.0; n];
            if global || n == 1 {
                shares.iter_mut().for_each(|s| *s = 1.0 / n as f64);
            } else {
                // Outside share uniform on [0, 2 × spread] (mean `spread`), at most 0.9.
                let outside = (2.0 * config.spread * rng.random::<f64>()).min(0.9);
                let near: Vec<f64> = (0..n)
                    .map(|r| {
                        if r == home {
                            0.0
                        } else {
                            1.0 / rtt_ms[home][r].max(1.0).powi(2)
                        }
                    })
                    .collect();
                let total: f64 = near.iter().sum();
                for (r, s) in shares.iter_mut().enumerate() {
                    *s = if r == home {
                        1.0 - outside
                    } else {
                        outside * near[r] / total
                    };
                }
            }
            let diurnal = (config.diurnal * (0.5 + rng.random::<f64>())).min(1.0);
            out.insert(
                (owner.to_owned(), app.to_owned()),
                AppRegions { diurnal, shares },
            );
        }
        Ok(Self { zones, apps: out })
    }

    /// The weight of each region (into `out`, zone order; not normalised) for an invocation of
    /// `app` at trace minute `minute`.
    pub fn weights(&self, app: &AppRegions, minute: u64, out: &mut [f64]) {
        let utc_h = (minute % crate::DAY_MINUTES) as f64 / 60.0;
        for ((w, share), zone) in out.iter_mut().zip(&app.shares).zip(&self.zones) {
            let local = utc_h + zone.utc_offset_h;
            let cycle = (std::f64::consts::TAU * (local - PEAK_HOUR) / 24.0).cos();
            *w = share * (1.0 + app.diurnal * cycle);
        }
    }

    /// Write both files into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), TraceError> {
        let create = |name: &str| {
            let path = dir.join(name);
            File::create(&path)
                .map(BufWriter::new)
                .map_err(|source| TraceError::Io { path, source })
        };
        let io = |name: &str| {
            let path = dir.join(name);
            move |source| TraceError::Io { path, source }
        };
        let mut regions = create(REGIONS_FILE)?;
        (|| -> std::io::Result<()> {
            writeln!(regions, "Region,UtcOffsetHours")?;
            for z in &self.zones {
                writeln!(regions, "{},{}", z.name, z.utc_offset_h)?;
            }
            regions.flush()
        })()
        .map_err(io(REGIONS_FILE))?;
        let mut apps = create(APP_REGIONS_FILE)?;
        let mut keys: Vec<&(String, String)> = self.apps.keys().collect();
        keys.sort();
        (|| -> std::io::Result<()> {
            let names: Vec<&str> = self.zones.iter().map(|z| z.name.as_str()).collect();
            writeln!(apps, "HashOwner,HashApp,Diurnal,{}", names.join(","))?;
            for key in keys {
                let a = &self.apps[key];
                let shares: Vec<String> = a.shares.iter().map(|s| format!("{s:.6}")).collect();
                writeln!(
                    apps,
                    "{},{},{:.4},{}",
                    key.0,
                    key.1,
                    a.diurnal,
                    shares.join(",")
                )?;
            }
            apps.flush()
        })()
        .map_err(io(APP_REGIONS_FILE))?;
        Ok(())
    }

    /// Read the regional demand of the trace in `dir`; `None` when it has none (no
    /// `regions.csv`).
    pub fn read(dir: &Path) -> Result<Option<Self>, TraceError> {
        let path = dir.join(REGIONS_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let mut zones = Vec::new();
        for_rows(&path, &["Region", "UtcOffsetHours"], |line, cells| {
            let name = cells[0].trim();
            if name.is_empty() || zones.iter().any(|z: &Zone| z.name == name) {
                return Err(malformed(
                    &path,
                    line,
                    1,
                    format!("Region {name:?} is empty or repeated"),
                ));
            }
            let utc_offset_h = number(cells[1])
                .filter(|h| (-12.0..=14.0).contains(h))
                .ok_or_else(|| {
                    malformed(
                        &path,
                        line,
                        2,
                        "UtcOffsetHours must be a number in -12..=14".into(),
                    )
                })?;
            zones.push(Zone {
                name: name.to_owned(),
                utc_offset_h,
            });
            Ok(())
        })?;
        let path = dir.join(APP_REGIONS_FILE);
        let mut header = vec!["HashOwner", "HashApp", "Diurnal"];
        header.extend(zones.iter().map(|z| z.name.as_str()));
        let mut apps = HashMap::new();
        for_rows(&path, &header, |line, cells| {
            let diurnal = number(cells[2])
                .filter(|d| (0.0..=1.0).contains(d))
                .ok_or_else(|| malformed(&path, line, 3, "Diurnal must be in [0, 1]".into()))?;
            let mut shares = Vec::with_capacity(zones.len());
            for (k, cell) in cells[3..].iter().enumerate() {
                let share = number(cell).filter(|s| *s >= 0.0).ok_or_else(|| {
                    malformed(
                        &path,
                        line,
                        k + 4,
                        format!("{}: a share >= 0", header[k + 3]),
                    )
                })?;
                shares.push(share);
            }
            let total: f64 = shares.iter().sum();
            if (total - 1.0).abs() > 1e-3 {
                return Err(malformed(
                    &path,
                    line,
                    4,
                    format!("shares sum to {total}, not 1"),
                ));
            }
            apps.insert(
                (cells[0].to_owned(), cells[1].to_owned()),
                AppRegions { diurnal, shares },
            );
            Ok(())
        })?;
        Ok(Some(Self { zones, apps }))
    }
}

fn malformed(path: &Path, line: u64, column: usize, message: String) -> TraceError {
    TraceError::Malformed {
        path: PathBuf::from(path),
        line,
        column,
        message,
    }
}

fn number(cell: &str) -> Option<f64> {
    cell.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Calls `row(line, cells)` for every row after a header that must be `header`.
fn for_rows(
    path: &Path,
    header: &[&str],
    mut row: impl FnMut(u64, &[&str]) -> Result<(), TraceError>,
) -> Result<(), TraceError> {
    let file = File::open(path).map_err(|source| TraceError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut lines = BufReader::new(file).lines();
    let mut line_no = 0u64;
    let mut next = |line_no: &mut u64| -> Result<Option<String>, TraceError> {
        *line_no += 1;
        lines.next().transpose().map_err(|source| TraceError::Io {
            path: path.to_owned(),
            source,
        })
    };
    let first = next(&mut line_no)?.unwrap_or_default();
    let got: Vec<&str> = first.trim_end().split(',').collect();
    if got != header {
        return Err(malformed(
            path,
            1,
            1,
            format!(
                "header must be {:?}, got {:?}",
                header.join(","),
                first.trim_end()
            ),
        ));
    }
    while let Some(text) = next(&mut line_no)? {
        let text = text.trim_end();
        if text.is_empty() {
            continue;
        }
        let cells: Vec<&str> = text.split(',').collect();
        if cells.len() != header.len() {
            return Err(malformed(
                path,
                line_no,
                1,
                format!("{} cells, the header has {}", cells.len(), header.len()),
            ));
        }
        row(line_no, &cells)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zones() -> (Vec<Zone>, Vec<Vec<f64>>) {
        let z = |name: &str, h: f64| Zone {
            name: name.into(),
            utc_offset_h: h,
        };
        (
            vec![z("us-east", -5.0), z("eu-west", 0.0), z("eu-central", 1.0)],
            vec![
                vec![0.0, 80.0, 90.0],
                vec![80.0, 0.0, 20.0],
                vec![90.0, 20.0, 0.0],
            ],
        )
    }

    fn names(n: usize) -> Vec<(String, String)> {
        (0..n).map(|i| ("o".to_owned(), format!("a{i}"))).collect()
    }

    #[test]
    fn shares_sum_to_one_and_favour_near_regions() {
        let (zones, rtt) = zones();
        let apps = names(200);
        let config = RegionalGen {
            global_share: 0.0,
            ..RegionalGen::default()
        };
        let d = RegionalDemand::generate(
            apps.iter().map(|(o, a)| (o.as_str(), a.as_str())),
            zones,
            &rtt,
            &config,
        )
        .expect("test setup");
        assert_eq!(d.apps.len(), 200);
        let mut eu_west_home = 0;
        for a in d.apps.values() {
            assert!((a.shares.iter().sum::<f64>() - 1.0).abs() < 1e-9);
            if a.shares[1] > 0.5 {
                eu_west_home += 1;
                // Frankfurt (20 ms) gets more of Ireland's foreign demand than us-east (80 ms).
                assert!(a.shares[2] >= a.shares[0], "{:?}", a.shares);
            }
        }
        assert!(eu_west_home > 30, "{eu_west_home} of 200 homed in eu-west");
    }

    #[test]
    fn demand_peaks_in_the_afternoon_local_time() {
        let (zones, rtt) = zones();
        let d = RegionalDemand::generate([("o", "a")], zones, &rtt, &RegionalGen::default())
            .expect("test setup");
        let app = AppRegions {
            diurnal: 1.0,
            shares: vec![0.5, 0.5, 0.0],
        };
        let mut w = [0.0; 3];
        // 14:00 UTC: Ireland at its peak, us-east at 09:00.
        d.weights(&app, 14 * 60, &mut w);
        assert!(
            (w[1] - 1.0).abs() < 1e-9 && w[0] < w[1] && w[2] == 0.0,
            "{w:?}"
        );
        // 19:00 UTC = 14:00 in us-east.
        d.weights(&app, 19 * 60, &mut w);
        assert!((w[0] - 1.0).abs() < 1e-9 && w[1] < w[0], "{w:?}");
    }

    #[test]
    fn written_demand_reads_back_and_bad_files_name_their_line() {
        let (zones, rtt) = zones();
        let apps = names(5);
        let d = RegionalDemand::generate(
            apps.iter().map(|(o, a)| (o.as_str(), a.as_str())),
            zones,
            &rtt,
            &RegionalGen::default(),
        )
        .expect("test setup");
        let dir = tempfile::tempdir().expect("test setup");
        assert_eq!(RegionalDemand::read(dir.path()).expect("test setup"), None);
        d.write(dir.path()).expect("test setup");
        let back = RegionalDemand::read(dir.path())
            .expect("test setup")
            .expect("test setup");
        assert_eq!(back.zones, d.zones);
        for (k, a) in &d.apps {
            let b = &back.apps[k];
            assert!(
                a.shares
                    .iter()
                    .zip(&b.shares)
                    .all(|(x, y)| (x - y).abs() < 1e-5)
            );
        }
        let path = dir.path().join(APP_REGIONS_FILE);
        let text = std::fs::read_to_string(&path).expect("test setup");
        std::fs::write(&path, text.replacen("\no,a0,", "\no,a0,x", 1)).expect("test setup");
        let err = RegionalDemand::read(dir.path())
            .expect_err("must fail")
            .to_string();
        assert!(
            err.contains("app_regions.csv:") && err.contains(":2:3: Diurnal"),
            "{err}"
        );
        let bad = RegionalGen {
            spread: 1.5,
            ..RegionalGen::default()
        };
        let err = RegionalDemand::generate([("o", "a")], d.zones.clone(), &rtt, &bad);
        assert!(
            err.expect_err("must fail")
                .to_string()
                .contains("--region-spread")
        );
    }
}
