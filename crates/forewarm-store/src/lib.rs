//! forewarm's embedded time-series store: every execution sample, tagged with its code type,
//! plus per-minute rollups, in one redb file that survives restarts.
//!
//! Raw samples are kept for `raw_retention_ms`, rollups for `rollup_retention_ms`; appending
//! updates the minute's rollup in the same transaction, so the two never disagree about what
//! was accepted. Every commit is durable (redb fsyncs before a commit returns). The store
//! knows samples and time only: what to learn from them is the Predictor's job.

mod codec;

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Raw samples keyed by (code, at_ms, sequence).
const SAMPLES: TableDefinition<(&str, u64, u64), &[u8]> = TableDefinition::new("samples");
/// Rollups keyed by (code, minute).
const ROLLUPS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("rollups");
/// Docker's readings of containers, stored until 2026-12-04 and never read: a store that has
/// the table drops it when opened.
const OLD_STATS: TableDefinition<(&str, u64, u64), &[u8]> = TableDefinition::new("container_stats");
/// Small registry records keyed by (kind, key): tenants and code types of this node.
const RECORDS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("records");
/// Store metadata (the next sequence number).
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// How an execution started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Start {
    /// On a container spawned on the request path.
    Cold,
    /// On an idle container that served before.
    Warm,
    /// On a container spawned by a prediction.
    Prewarmed,
}

impl Start {
    /// Its name in answers and metrics: `cold`, `warm` or `prewarmed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Start::Cold => "cold",
            Start::Warm => "warm",
            Start::Prewarmed => "prewarmed",
        }
    }
}

/// One execution as measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// When it started, ms since the Unix epoch.
    pub at_ms: u64,
    /// Tenant that owns the code type.
    pub tenant: String,
    /// The code type.
    pub code: String,
    /// How it started.
    pub start: Start,
    /// CPU time, ms.
    pub cpu_ms: f64,
    /// Peak memory, MiB.
    pub peak_mib: f64,
    /// I/O written, KiB.
    pub io_kib: u64,
    /// Execution time in the container, ms.
    pub duration_ms: f64,
    /// End-to-end latency seen by the caller, ms.
    pub latency_ms: f64,
    /// Request payload size, bytes (a regression feature for the profile).
    pub payload_bytes: u64,
    /// The request's values of its code type's declared features, in their order (none for
    /// a code type that declares none, or a sample written before features existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<f64>,
}

/// One minute of one code type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rollup {
    /// Executions.
    pub count: u64,
    /// Of which cold.
    pub cold: u64,
    /// Of which on pre-warmed containers.
    pub prewarmed: u64,
    /// Sum of CPU ms.
    pub cpu_ms_sum: f64,
    /// Highest peak memory, MiB.
    pub peak_mib_max: f64,
    /// Sum of KiB written.
    pub io_kib_sum: u64,
    /// Sum of execution ms.
    pub duration_ms_sum: f64,
}

impl Rollup {
    fn add(&mut self, s: &Sample) {
        self.count += 1;
        self.cold += u64::from(s.start == Start::Cold);
        self.prewarmed += u64::from(s.start == Start::Prewarmed);
        self.cpu_ms_sum += s.cpu_ms;
        self.peak_mib_max = self.peak_mib_max.max(s.peak_mib);
        self.io_kib_sum += s.io_kib;
        self.duration_ms_sum += s.duration_ms;
    }
}

/// How long data is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Raw samples.
    pub raw_ms: u64,
    /// Per-minute rollups.
    pub rollup_ms: u64,
}

impl Default for Retention {
    /// A day of raw samples, thirty days of rollups.
    fn default() -> Self {
        Self {
            raw_ms: 24 * 3_600_000,
            rollup_ms: 30 * 24 * 3_600_000,
        }
    }
}

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or written.
    #[error("sample store {path}: {source}")]
    Db {
        /// The file.
        path: String,
        /// The redb error.
        source: redb::Error,
    },
    /// A stored record does not decode (corruption or an incompatible version).
    #[error("sample store {path}: undecodable record: {message}")]
    Corrupt {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
}

/// The store.
#[derive(Debug)]
pub struct SampleStore {
    /// The database, or `None` once an I/O error (a full disk) left it refusing every
    /// transaction until it is closed and opened again: the next use opens it again, so the
    /// store takes writes once the disk does, without a restart of the node.
    db: RwLock<Option<Database>>,
    file: PathBuf,
    retention: Retention,
}

const MINUTE_MS: u64 = 60_000;

impl SampleStore {
    /// Open (or create) the store at `path`.
    pub fn open(path: &Path, retention: Retention) -> Result<Self, StoreError> {
        let store = Self {
            db: RwLock::new(None),
            file: path.to_path_buf(),
            retention,
        };
        // Opens the database (`with_db`) and creates the tables so readers never meet a
        // missing one.
        store.write(|tx| {
            tx.open_table(SAMPLES)?;
            tx.open_table(ROLLUPS)?;
            tx.open_table(META)?;
            tx.open_table(RECORDS)?;
            tx.delete_table(OLD_STATS)?;
            Ok(())
        })?;
        Ok(store)
    }

    fn db_err(&self) -> impl Fn(redb::Error) -> StoreError + '_ {
        |source| StoreError::Db {
            path: self.file.display().to_string(),
            source,
        }
    }

    fn corrupt(&self, message: impl ToString) -> StoreError {
        StoreError::Corrupt {
            path: self.file.display().to_string(),
            message: message.to_string(),
        }
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<T, redb::Error>,
    ) -> Result<T, StoreError> {
        self.with_db(|db| {
            let tx = db.begin_write().map_err(|e| self.db_err()(e.into()))?;
            let out = f(&tx).map_err(self.db_err())?;
            tx.commit().map_err(|e| self.db_err()(e.into()))?;
            Ok(out)
        })
    }

    /// Run `f` on the database, opening it again first if an I/O error closed it; close it
    /// when `f` meets redb's "previous I/O error" (the database refuses everything until it
    /// is reopened). No transaction is open while it is closed or opened: `f` holds the lock.
    fn with_db<T>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let read = || self.db.read().unwrap_or_else(|e| e.into_inner());
        let mut guard = read();
        if guard.is_none() {
            drop(guard);
            let mut db = self.db.write().unwrap_or_else(|e| e.into_inner());
            if db.is_none() {
                *db = Some(Database::create(&self.file).map_err(|e| self.db_err()(e.into()))?);
            }
            drop(db);
            guard = read();
        }
        let Some(db) = guard.as_ref() else {
            // Closed again between the two locks: this call fails, the next opens it.
            return Err(self.db_err()(redb::Error::PreviousIo));
        };
        let out = f(db);
        if let Err(StoreError::Db {
            source: redb::Error::PreviousIo,
            ..
        }) = &out
        {
            drop(guard);
            self.db.write().unwrap_or_else(|e| e.into_inner()).take();
        }
        out
    }

    /// Append samples durably (one transaction), updating their minutes' rollups.
    pub fn append(&self, samples: &[Sample]) -> Result<(), StoreError> {
        let encoded: Vec<Vec<u8>> = samples.iter().map(codec::encode).collect();
        // Rollup updates need decoding inside the transaction; decode errors abort it.
        let mut decode_error = None;
        self.write(|tx| {
            let mut meta = tx.open_table(META)?;
            let mut seq = meta.get("next_seq")?.map_or(0, |v| v.value());
            let mut raw = tx.open_table(SAMPLES)?;
            let mut rollups = tx.open_table(ROLLUPS)?;
            // One read and one write per (code, minute) of the batch, not per sample.
            let mut touched: std::collections::BTreeMap<(&str, u64), Vec<&Sample>> =
                std::collections::BTreeMap::new();
            for (s, bytes) in samples.iter().zip(&encoded) {
                raw.insert((s.code.as_str(), s.at_ms, seq), bytes.as_slice())?;
                seq += 1;
                touched
                    .entry((s.code.as_str(), s.at_ms / MINUTE_MS))
                    .or_default()
                    .push(s);
            }
            for (key, minute_samples) in touched {
                let mut r = match rollups.get(key)? {
                    Some(v) => match serde_json::from_slice::<Rollup>(v.value()) {
                        Ok(r) => r,
                        Err(e) => {
                            decode_error = Some(e.to_string());
                            Rollup::default()
                        }
                    },
                    None => Rollup::default(),
                };
                for s in minute_samples {
                    r.add(s);
                }
                let bytes = serde_json::to_vec(&r).unwrap_or_default();
                rollups.insert(key, bytes.as_slice())?;
            }
            meta.insert("next_seq", seq)?;
            Ok(())
        })?;
        match decode_error {
            Some(message) => Err(self.corrupt(message)),
            None => Ok(()),
        }
    }

    /// Samples of `code` with `from_ms <= at_ms < to_ms`, oldest first.
    pub fn samples(&self, code: &str, from_ms: u64, to_ms: u64) -> Result<Vec<Sample>, StoreError> {
        self.latest_samples(code, from_ms, to_ms, usize::MAX)
    }

    /// The `limit` most recent samples of `code` with `from_ms <= at_ms < to_ms`, oldest
    /// first. Reads (and decodes) only those: what a model trains on costs the same whatever
    /// the traffic of the hour.
    pub fn latest_samples(
        &self,
        code: &str,
        from_ms: u64,
        to_ms: u64,
        limit: usize,
    ) -> Result<Vec<Sample>, StoreError> {
        self.time_range(SAMPLES, code, from_ms, to_ms, limit, codec::decode)
    }

    /// The `limit` newest records of a (code, at_ms, seq) table with `from_ms <= at_ms <
    /// to_ms`, oldest first, each decoded by `decode(code, bytes)`.
    fn time_range<T>(
        &self,
        def: TableDefinition<(&str, u64, u64), &[u8]>,
        code: &str,
        from_ms: u64,
        to_ms: u64,
        limit: usize,
        decode: impl Fn(&str, &[u8]) -> Result<T, String>,
    ) -> Result<Vec<T>, StoreError> {
        self.with_db(|db| {
            let tx = db.begin_read().map_err(|e| self.db_err()(e.into()))?;
            let table = tx.open_table(def).map_err(|e| self.db_err()(e.into()))?;
            let range = table
                .range((code, from_ms, 0)..(code, to_ms, 0))
                .map_err(|e| self.db_err()(e.into()))?;
            let mut out = Vec::new();
            for item in range.rev().take(limit) {
                let (_, v) = item.map_err(|e| self.db_err()(e.into()))?;
                out.push(decode(code, v.value()).map_err(|e| self.corrupt(e))?);
            }
            out.reverse();
            Ok(out)
        })
    }

    /// Rollups of `code` for minutes `from_minute..to_minute` (absent minutes had nothing).
    pub fn rollups(
        &self,
        code: &str,
        from_minute: u64,
        to_minute: u64,
    ) -> Result<Vec<(u64, Rollup)>, StoreError> {
        self.with_db(|db| {
            let tx = db.begin_read().map_err(|e| self.db_err()(e.into()))?;
            let table = tx
                .open_table(ROLLUPS)
                .map_err(|e| self.db_err()(e.into()))?;
            let range = table
                .range((code, from_minute)..(code, to_minute))
                .map_err(|e| self.db_err()(e.into()))?;
            let mut out = Vec::new();
            for item in range {
                let (k, v) = item.map_err(|e| self.db_err()(e.into()))?;
                let rollup = serde_json::from_slice(v.value()).map_err(|e| self.corrupt(e))?;
                out.push((k.value().1, rollup));
            }
            Ok(out)
        })
    }

    /// Durably store the record `kind`/`key` (replacing an older one).
    pub fn put_record<T: Serialize>(
        &self,
        kind: &str,
        key: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(|e| self.corrupt(e))?;
        self.write(|tx| {
            tx.open_table(RECORDS)?
                .insert((kind, key), bytes.as_slice())?;
            Ok(())
        })
    }

    /// Durably remove the records `kind`/`keys` (one transaction; missing ones are skipped).
    pub fn remove_records(&self, kind: &str, keys: &[String]) -> Result<(), StoreError> {
        self.write(|tx| {
            let mut table = tx.open_table(RECORDS)?;
            for key in keys {
                table.remove((kind, key.as_str()))?;
            }
            Ok(())
        })
    }

    /// Every record of `kind`, by key.
    pub fn records<T: DeserializeOwned>(&self, kind: &str) -> Result<Vec<(String, T)>, StoreError> {
        self.with_db(|db| {
            let tx = db.begin_read().map_err(|e| self.db_err()(e.into()))?;
            let table = tx
                .open_table(RECORDS)
                .map_err(|e| self.db_err()(e.into()))?;
            let range = table
                .range((kind, "")..)
                .map_err(|e| self.db_err()(e.into()))?;
            let mut out = Vec::new();
            for item in range {
                let (k, v) = item.map_err(|e| self.db_err()(e.into()))?;
                let (record_kind, key) = k.value();
                if record_kind != kind {
                    break;
                }
                let value = serde_json::from_slice(v.value()).map_err(|e| self.corrupt(e))?;
                out.push((key.to_owned(), value));
            }
            Ok(out)
        })
    }

    /// Drop what is older than the retention at `now_ms`; returns (raw, rollups) removed.
    pub fn enforce_retention(&self, now_ms: u64) -> Result<(u64, u64), StoreError> {
        let raw_cutoff = now_ms.saturating_sub(self.retention.raw_ms);
        let rollup_cutoff = now_ms.saturating_sub(self.retention.rollup_ms) / MINUTE_MS;
        self.write(|tx| {
            let mut removed = (0, 0);
            tx.open_table(SAMPLES)?.retain(|(_, at, _), _| {
                let keep = at >= raw_cutoff;
                removed.0 += u64::from(!keep);
                keep
            })?;
            tx.open_table(ROLLUPS)?.retain(|(_, minute), _| {
                let keep = minute >= rollup_cutoff;
                removed.1 += u64::from(!keep);
                keep
            })?;
            Ok(removed)
        })
    }
}
