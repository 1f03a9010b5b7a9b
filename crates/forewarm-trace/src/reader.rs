//! Streaming reader for a directory in the Azure Functions 2019 layout.
//!
//! Files are read row by row; only non-zero per-minute counts inside the window are kept, so
//! memory grows with what the window holds, not with the size of a day file.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use csv::ByteRecord;

use crate::error::TraceError;
use crate::model::{
    App, DAY_MINUTES, DurationPercentiles, Function, MemoryPercentiles, Trace, Window,
};

pub(crate) const INVOCATIONS: &str = "invocations_per_function_md";
pub(crate) const DURATIONS: &str = "function_durations_percentiles";
pub(crate) const MEMORY: &str = "app_memory_percentiles";

pub(crate) const DURATION_HEADER: [&str; 14] = [
    "HashOwner",
    "HashApp",
    "HashFunction",
    "Average",
    "Count",
    "Minimum",
    "Maximum",
    "percentile_Average_0",
    "percentile_Average_1",
    "percentile_Average_25",
    "percentile_Average_50",
    "percentile_Average_75",
    "percentile_Average_99",
    "percentile_Average_100",
];

pub(crate) const MEMORY_HEADER: [&str; 12] = [
    "HashOwner",
    "HashApp",
    "SampleCount",
    "AverageAllocatedMb",
    "AverageAllocatedMb_pct1",
    "AverageAllocatedMb_pct5",
    "AverageAllocatedMb_pct25",
    "AverageAllocatedMb_pct50",
    "AverageAllocatedMb_pct75",
    "AverageAllocatedMb_pct95",
    "AverageAllocatedMb_pct99",
    "AverageAllocatedMb_pct100",
];

/// The header of an invocations file: four key columns, then minutes 1..=1440.
pub(crate) fn invocation_header() -> Vec<String> {
    ["HashOwner", "HashApp", "HashFunction", "Trigger"]
        .iter()
        .map(|s| (*s).to_owned())
        .chain((1..=DAY_MINUTES).map(|m| m.to_string()))
        .collect()
}

/// The path of one day's file of one kind.
pub(crate) fn day_path(dir: &Path, kind: &str, day: u32) -> PathBuf {
    dir.join(format!("{kind}.anon.d{day:02}.csv"))
}

/// The days present in `dir` (by their invocations files), in order.
pub fn day_files(dir: &Path) -> Result<Vec<u32>, TraceError> {
    let io = |source| TraceError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut days = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let name = entry.map_err(io)?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(day) = name
            .strip_prefix(INVOCATIONS)
            .and_then(|r| r.strip_prefix(".anon.d"))
            .and_then(|r| r.strip_suffix(".csv"))
            .and_then(|d| d.parse::<u32>().ok())
        {
            days.push(day);
        }
    }
    days.sort_unstable();
    if days.is_empty() {
        return Err(TraceError::NoDays {
            dir: dir.to_owned(),
        });
    }
    Ok(days)
}

/// One CSV file being read row by row, with its header checked.
struct CsvFile {
    path: PathBuf,
    reader: csv::Reader<BufReader<File>>,
    header: Vec<String>,
    record: ByteRecord,
}

impl CsvFile {
    fn open(path: &Path, day: u32, expected: &[String]) -> Result<Self, TraceError> {
        let file = File::open(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => TraceError::MissingFile {
                path: path.to_owned(),
                day,
            },
            _ => TraceError::Io {
                path: path.to_owned(),
                source,
            },
        })?;
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(BufReader::with_capacity(1 << 20, file));
        let mut f = Self {
            path: path.to_owned(),
            reader,
            header: expected.to_vec(),
            record: ByteRecord::new(),
        };
        if !f.next_row()? {
            return Err(f.malformed(1, 1, "empty file: expected a header row".into()));
        }
        for (i, want) in expected.iter().enumerate() {
            let got = f.record.get(i).map(String::from_utf8_lossy);
            if got.as_deref() != Some(want.as_str()) {
                let got = got.map_or_else(|| "nothing".to_owned(), |g| format!("{g:?}"));
                return Err(f.malformed(
                    1,
                    i + 1,
                    format!("header: expected {want:?}, found {got}"),
                ));
            }
        }
        if f.record.len() != expected.len() {
            return Err(f.malformed(
                1,
                expected.len() + 1,
                format!(
                    "header: expected {} columns, found {}",
                    expected.len(),
                    f.record.len()
                ),
            ));
        }
        Ok(f)
    }

    fn line(&self) -> u64 {
        self.record.position().map_or(0, |p| p.line())
    }

    fn malformed(&self, line: u64, column: usize, message: String) -> TraceError {
        TraceError::Malformed {
            path: self.path.clone(),
            line,
            column,
            message,
        }
    }

    /// Reads the next row; `false` at the end. Every data row must have the header's width.
    fn next_row(&mut self) -> Result<bool, TraceError> {
        match self.reader.read_byte_record(&mut self.record) {
            Ok(more) => {
                if more && self.line() > 1 && self.record.len() != self.header.len() {
                    return Err(self.malformed(
                        self.line(),
                        self.record.len().min(self.header.len()) + 1,
                        format!(
                            "expected {} columns, found {}",
                            self.header.len(),
                            self.record.len()
                        ),
                    ));
                }
                Ok(more)
            }
            Err(e) => {
                let line = e.position().map_or(self.line() + 1, |p| p.line());
                Err(self.malformed(line, 1, format!("unreadable row: {e}")))
            }
        }
    }

    fn text(&self, column: usize) -> Result<String, TraceError> {
        let raw = self.record.get(column).unwrap_or_default();
        match std::str::from_utf8(raw) {
            Ok(s) if !s.is_empty() => Ok(s.to_owned()),
            Ok(_) => Err(self.cell_error(column, "is empty")),
            Err(_) => Err(self.cell_error(column, "is not UTF-8")),
        }
    }

    fn cell_error(&self, column: usize, what: &str) -> TraceError {
        let raw = String::from_utf8_lossy(self.record.get(column).unwrap_or_default());
        self.malformed(
            self.line(),
            column + 1,
            format!("{} {what}: {raw:?}", self.header[column]),
        )
    }

    fn count(&self, column: usize) -> Result<u32, TraceError> {
        let raw = self.record.get(column).unwrap_or_default();
        if raw == b"0" {
            return Ok(0);
        }
        std::str::from_utf8(raw)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .ok_or_else(|| self.cell_error(column, "is not a non-negative integer"))
    }

    fn number(&self, column: usize) -> Result<f64, TraceError> {
        std::str::from_utf8(self.record.get(column).unwrap_or_default())
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| self.cell_error(column, "is not a non-negative number"))
    }

    fn numbers<const N: usize>(&self, first: usize) -> Result<[f64; N], TraceError> {
        let mut out = [0.0; N];
        for (i, v) in out.iter_mut().enumerate() {
            *v = self.number(first + i)?;
        }
        Ok(out)
    }
}

type AppKey = (String, String);

/// Builds the [`Trace`] while files are streamed.
#[derive(Default)]
struct Builder {
    apps: Vec<App>,
    app_index: HashMap<AppKey, usize>,
    function_index: HashMap<(usize, String), usize>,
}

impl Builder {
    fn app(&mut self, owner: String, app: String) -> usize {
        let key = (owner, app);
        if let Some(i) = self.app_index.get(&key) {
            return *i;
        }
        let i = self.apps.len();
        self.apps.push(App {
            owner: key.0.clone(),
            app: key.1.clone(),
            functions: Vec::new(),
            memory: None,
        });
        self.app_index.insert(key, i);
        i
    }

    fn function(&mut self, app: usize, name: String, trigger: String) -> &mut Function {
        let next = self.apps[app].functions.len();
        let i = *self
            .function_index
            .entry((app, name.clone()))
            .or_insert(next);
        if i == next {
            self.apps[app].functions.push(Function {
                name,
                trigger,
                counts: Vec::new(),
                durations: None,
            });
        }
        &mut self.apps[app].functions[i]
    }
}

/// Read the minutes of `window` from the trace in `dir`.
///
/// Days are the `dNN` files in numeric order, laid end to end: minute 0 is the first minute of
/// the first day. Only days that overlap the window are opened; each needs all three files.
pub fn read_trace(dir: &Path, window: Window) -> Result<Trace, TraceError> {
    let days = day_files(dir)?;
    let total = days.len() as u64 * DAY_MINUTES;
    let start = window.start_minute.min(total);
    let minutes = window.minutes.unwrap_or(total - start).min(total - start);
    let mut builder = Builder::default();
    let header = invocation_header();
    let duration_header: Vec<String> = DURATION_HEADER.iter().map(|s| (*s).to_owned()).collect();
    let memory_header: Vec<String> = MEMORY_HEADER.iter().map(|s| (*s).to_owned()).collect();
    for (index, day) in days.iter().copied().enumerate() {
        let day_start = index as u64 * DAY_MINUTES;
        if day_start + DAY_MINUTES <= start || day_start >= start + minutes {
            continue;
        }
        read_invocations(dir, day, day_start, start, minutes, &header, &mut builder)?;
        read_durations(dir, day, &duration_header, &mut builder)?;
        read_memory(dir, day, &memory_header, &mut builder)?;
    }
    Ok(Trace {
        dir: dir.to_owned(),
        days,
        start_minute: start,
        minutes,
        apps: builder.apps,
    })
}

fn read_invocations(
    dir: &Path,
    day: u32,
    day_start: u64,
    start: u64,
    minutes: u64,
    header: &[String],
    builder: &mut Builder,
) -> Result<(), TraceError> {
    let path = day_path(dir, INVOCATIONS, day);
    let mut file = CsvFile::open(&path, day, header)?;
    while file.next_row()? {
        let app = builder.app(file.text(0)?, file.text(1)?);
        let (name, trigger) = (file.text(2)?, file.text(3)?);
        let mut counts = Vec::new();
        for minute in 0..DAY_MINUTES {
            let count = file.count(4 + minute as usize)?;
            let absolute = day_start + minute;
            if count > 0 && absolute >= start && absolute < start + minutes {
                counts.push(((absolute - start) as u32, count));
            }
        }
        builder.function(app, name, trigger).counts.extend(counts);
    }
    Ok(())
}

fn read_durations(
    dir: &Path,
    day: u32,
    header: &[String],
    builder: &mut Builder,
) -> Result<(), TraceError> {
    let path = day_path(dir, DURATIONS, day);
    let mut file = CsvFile::open(&path, day, header)?;
    while file.next_row()? {
        let key = (file.text(0)?, file.text(1)?);
        let name = file.text(2)?;
        let average_ms = file.number(3)?;
        let count = file.number(4)? as u64;
        let [minimum_ms, maximum_ms] = file.numbers::<2>(5)?;
        let percentiles_ms = file.numbers::<7>(7)?;
        let Some(app) = builder.app_index.get(&key).copied() else {
            continue;
        };
        let Some(i) = builder.function_index.get(&(app, name)).copied() else {
            continue;
        };
        let function = &mut builder.apps[app].functions[i];
        function.durations.get_or_insert(DurationPercentiles {
            average_ms,
            count,
            minimum_ms,
            maximum_ms,
            percentiles_ms,
        });
    }
    Ok(())
}

fn read_memory(
    dir: &Path,
    day: u32,
    header: &[String],
    builder: &mut Builder,
) -> Result<(), TraceError> {
    let path = day_path(dir, MEMORY, day);
    let mut file = CsvFile::open(&path, day, header)?;
    while file.next_row()? {
        let key = (file.text(0)?, file.text(1)?);
        let sample_count = file.number(2)? as u64;
        let average_mb = file.number(3)?;
        let percentiles_mb = file.numbers::<8>(4)?;
        if let Some(app) = builder.app_index.get(&key).copied() {
            builder.apps[app].memory.get_or_insert(MemoryPercentiles {
                sample_count,
                average_mb,
                percentiles_mb,
            });
        }
    }
    Ok(())
}
