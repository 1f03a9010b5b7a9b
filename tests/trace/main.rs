//! Trace reader and generator: good files, malformed files, windows across days.

use std::fs;
use std::path::Path;

use forewarm_tests::gen_trace;
use forewarm_trace::{TraceError, TraceStats, Window, read_trace};
use proptest::prelude::*;

const INV: &str = "invocations_per_function_md.anon.d01.csv";
const DUR: &str = "function_durations_percentiles.anon.d01.csv";
const MEM: &str = "app_memory_percentiles.anon.d01.csv";

fn minutes_header() -> String {
    let mut h = "HashOwner,HashApp,HashFunction,Trigger".to_owned();
    for m in 1..=1440 {
        h.push_str(&format!(",{m}"));
    }
    h
}

fn counts_row(key: &str, trigger: &str, counts: &[(usize, u32)]) -> String {
    let mut row = vec![0u32; 1440];
    for (m, c) in counts {
        row[*m] = *c;
    }
    let cells: Vec<String> = row.iter().map(u32::to_string).collect();
    format!("{key},{trigger},{}", cells.join(","))
}

/// A hand-written one-day trace: app a1 with two functions, app a2 with one.
fn write_small(dir: &Path) {
    let inv = [
        minutes_header(),
        counts_row("o1,a1,f1", "http", &[(0, 2), (10, 1)]),
        counts_row("o1,a1,f2", "timer", &[(10, 3), (1439, 1)]),
        counts_row("o2,a2,f3", "queue", &[(5, 7)]),
    ]
    .join("\n");
    fs::write(dir.join(INV), inv + "\n").expect("write");
    fs::write(
        dir.join(DUR),
        "HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum,percentile_Average_0,\
percentile_Average_1,percentile_Average_25,percentile_Average_50,percentile_Average_75,\
percentile_Average_99,percentile_Average_100\n\
o1,a1,f1,100,3,10,500,10,12,50,90,150,400,500\n\
o2,a2,f3,20.5,7,1,40,1,2,10,20,30,39,40\n",
    )
    .expect("write");
    fs::write(
        dir.join(MEM),
        "HashOwner,HashApp,SampleCount,AverageAllocatedMb,AverageAllocatedMb_pct1,\
AverageAllocatedMb_pct5,AverageAllocatedMb_pct25,AverageAllocatedMb_pct50,\
AverageAllocatedMb_pct75,AverageAllocatedMb_pct95,AverageAllocatedMb_pct99,\
AverageAllocatedMb_pct100\n\
o1,a1,10,120,100,105,110,120,130,140,150,160\n",
    )
    .expect("write");
}

fn malformed(err: TraceError) -> (String, u64, usize, String) {
    match err {
        TraceError::Malformed {
            path,
            line,
            column,
            message,
        } => (
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_owned(),
            line,
            column,
            message,
        ),
        other => panic!("expected a malformed-file error, got {other}"),
    }
}

#[test]
fn t01_reads_a_hand_written_trace() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_small(dir.path());
    let trace = read_trace(dir.path(), Window::all()).expect("reads");
    assert_eq!(trace.minutes, 1440);
    assert_eq!(trace.apps.len(), 2, "apps are owner+app");
    let a1 = &trace.apps[0];
    assert_eq!(a1.functions.len(), 2, "a1's functions share the app");
    assert_eq!(a1.invocations(), 7);
    assert_eq!(a1.minute_counts(), vec![(0, 2), (10, 4), (1439, 1)]);
    assert_eq!(
        a1.functions[0].durations.map(|d| d.percentiles_ms[3]),
        Some(90.0)
    );
    assert!(
        a1.functions[1].durations.is_none(),
        "f2 has no duration row"
    );
    assert_eq!(a1.memory.map(|m| m.max_mb()), Some(160.0));
    assert!(trace.apps[1].memory.is_none());
    assert_eq!(trace.invocations(), 14);
}

#[test]
fn t02_window_keeps_only_its_minutes_relative_to_its_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_small(dir.path());
    let trace = read_trace(
        dir.path(),
        Window {
            start_minute: 5,
            minutes: Some(6),
        },
    )
    .expect("reads");
    assert_eq!(trace.minutes, 6);
    assert_eq!(trace.apps[0].minute_counts(), vec![(5, 4)]);
    assert_eq!(trace.apps[1].minute_counts(), vec![(0, 7)]);
}

#[test]
fn t03_days_are_laid_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    gen_trace(dir.path(), 30, 2, 7);
    let whole = read_trace(dir.path(), Window::all()).expect("reads");
    assert_eq!(whole.days, vec![1, 2]);
    assert_eq!(whole.minutes, 2880);
    let second = read_trace(
        dir.path(),
        Window {
            start_minute: 1440,
            minutes: None,
        },
    )
    .expect("reads");
    let in_second: u64 = whole
        .apps
        .iter()
        .flat_map(|a| a.functions.iter().flat_map(|f| f.counts.iter()))
        .filter(|(m, _)| *m >= 1440)
        .map(|(_, c)| u64::from(*c))
        .sum();
    assert_eq!(second.invocations(), in_second);
}

#[test]
fn t04_missing_directory_and_missing_companion_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = read_trace(dir.path(), Window::all()).expect_err("empty dir");
    assert!(matches!(err, TraceError::NoDays { .. }), "{err}");
    write_small(dir.path());
    fs::remove_file(dir.path().join(MEM)).expect("rm");
    let err = read_trace(dir.path(), Window::all()).expect_err("no memory file");
    assert!(
        matches!(err, TraceError::MissingFile { day: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains(MEM), "{err}");
}

#[test]
fn t05_wrong_header_names_the_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_small(dir.path());
    let text = fs::read_to_string(dir.path().join(DUR)).expect("read");
    fs::write(dir.path().join(DUR), text.replacen("Minimum", "Min", 1)).expect("write");
    let (file, line, column, message) =
        malformed(read_trace(dir.path(), Window::all()).expect_err("bad header"));
    assert_eq!((file.as_str(), line, column), (DUR, 1, 6));
    assert!(message.contains("\"Minimum\""), "{message}");
}

#[test]
fn t06_non_numeric_cell_names_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_small(dir.path());
    let text = fs::read_to_string(dir.path().join(INV)).expect("read");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    // Line 3 (o1,a1,f2): minute 3 becomes "x" (column 4 + 3 = 7).
    let mut cells: Vec<&str> = lines[2].split(',').collect();
    cells[6] = "x";
    lines[2] = cells.join(",");
    fs::write(dir.path().join(INV), lines.join("\n")).expect("write");
    let (file, line, column, message) =
        malformed(read_trace(dir.path(), Window::all()).expect_err("bad cell"));
    assert_eq!((file.as_str(), line, column), (INV, 3, 7));
    assert!(
        message.contains("3") && message.contains("\"x\""),
        "{message}"
    );
}

#[test]
fn t07_wrong_column_count_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_small(dir.path());
    let text = fs::read_to_string(dir.path().join(MEM)).expect("read");
    fs::write(dir.path().join(MEM), text + "o2,a2,5,100\n").expect("write");
    let (file, line, _, message) =
        malformed(read_trace(dir.path(), Window::all()).expect_err("short row"));
    assert_eq!((file.as_str(), line), (MEM, 3));
    assert!(
        message.contains("expected 12 columns, found 4"),
        "{message}"
    );
}

#[test]
fn t08_negative_or_fractional_counts_are_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_small(dir.path());
    let text = fs::read_to_string(dir.path().join(INV)).expect("read");
    let text = text.replacen("queue,0,0,0,0,0,7,", "queue,0,0,0,0,0,-7,", 1);
    fs::write(dir.path().join(INV), text).expect("write");
    let (_, line, column, _) = malformed(read_trace(dir.path(), Window::all()).expect_err("neg"));
    assert_eq!((line, column), (4, 10));
}

#[test]
fn t09_generator_is_deterministic_and_matches_published_shape() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    gen_trace(a.path(), 400, 1, 3);
    gen_trace(b.path(), 400, 1, 3);
    assert_eq!(
        fs::read(a.path().join(INV)).expect("read"),
        fs::read(b.path().join(INV)).expect("read"),
        "same seed, same bytes"
    );
    let stats = TraceStats::measure(&read_trace(a.path(), Window::all()).expect("reads"));
    assert_eq!(stats.apps, 400);
    // Loose bounds for 400 apps; the 2000-app figures are in docs/benchmarks.md.
    assert!((0.35..0.56).contains(&stats.apps_at_most_hourly), "{stats}");
    assert!(
        (0.72..0.90).contains(&stats.apps_at_most_per_minute),
        "{stats}"
    );
    assert!(
        (0.45..0.63).contains(&stats.single_function_apps),
        "{stats}"
    );
    assert!((1.6..2.4).contains(&stats.diurnal_swing), "{stats}");
    assert!((0.25..0.55).contains(&stats.bursty_apps), "{stats}");
}

/// The three files of a day, and for each a valid data row (as cells) with the columns that
/// hold numbers.
fn row_template(file: &str) -> (Vec<String>, std::ops::Range<usize>) {
    let row = match file {
        INV => counts_row("ox,ax,fx", "http", &[(3, 2)]),
        DUR => "ox,ax,fx,100,3,10,500,10,12,50,90,150,400,500".to_owned(),
        _ => "ox,ax,10,120,100,105,110,120,130,140,150,160".to_owned(),
    };
    let cells: Vec<String> = row.split(',').map(str::to_owned).collect();
    let numbers = match file {
        INV => 4..cells.len(),
        DUR => 3..cells.len(),
        _ => 2..cells.len(),
    };
    (cells, numbers)
}

/// `write_small`'s trace with `row` (raw bytes, no line end) put in `file` as data row `at`
/// (clamped); returns the row's 1-based line.
fn write_small_with(dir: &Path, file: &str, at: usize, row: &[u8]) -> u64 {
    write_small(dir);
    let text = fs::read_to_string(dir.join(file)).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    let at = 1 + at.min(lines.len() - 1);
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if i == at {
            out.extend_from_slice(row);
            out.push(b'\n');
        }
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    if at == lines.len() {
        out.extend_from_slice(row);
        out.push(b'\n');
    }
    fs::write(dir.join(file), out).expect("write");
    at as u64 + 1
}

fn any_file() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just(INV), Just(DUR), Just(MEM)]
}

/// Cells no column of any file accepts as a number (the last one is not UTF-8).
const BAD_NUMBERS: [&[u8]; 9] = [
    b"x", b"-1", b"", b"NaN", b"inf", b"1e400", b" -0.5 ", b"0x10", b"\xff",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// p01: any line (any bytes, quotes and line ends included) in any of a day's files: the
    /// trace reads, or the error is a malformed-file error that names that file and a line
    /// at or past the one added, never a panic.
    #[test]
    fn p01_arbitrary_lines_read_or_name_file_and_line(
        file in any_file(),
        at in 0usize..4,
        line in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let added = write_small_with(dir.path(), file, at, &line);
        let Err(e) = read_trace(dir.path(), Window::all()) else { return Ok(()) };
        let shown = e.to_string();
        let (name, at_line, column, _) = malformed(e);
        prop_assert_eq!(name.as_str(), file, "{}", shown);
        let lines = fs::read(dir.path().join(file)).expect("read").iter().filter(|b| **b == b'\n').count() as u64;
        prop_assert!((added..=lines + 1).contains(&at_line), "{}", shown);
        prop_assert!(column >= 1, "{}", shown);
        prop_assert!(shown.contains(&format!("{file}:{at_line}:{column}: ")), "{}", shown);
    }

    /// p02: one cell of an otherwise valid row replaced by anything without a quote, comma
    /// or line end: the trace reads, or the error names that file, line and column; a cell
    /// that is no count or number in a numeric column is always that error.
    #[test]
    fn p02_a_bad_cell_is_named_by_file_line_and_column(
        file in any_file(),
        at in 0usize..4,
        column in any::<prop::sample::Index>(),
        cell in prop_oneof![
            prop::sample::select(BAD_NUMBERS.to_vec()).prop_map(|b| (b.to_vec(), true)),
            prop::collection::vec(
                any::<u8>().prop_filter("no quote, comma or line end", |b| !b"\",\r\n".contains(b)),
                0..20,
            ).prop_map(|b| (b, false)),
        ],
    ) {
        let (cells, numbers) = row_template(file);
        let column = column.index(cells.len());
        let (cell, bad) = cell;
        let mut row = Vec::new();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                row.push(b',');
            }
            row.extend_from_slice(if i == column { &cell } else { c.as_bytes() });
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let line = write_small_with(dir.path(), file, at, &row);
        match read_trace(dir.path(), Window::all()) {
            Ok(_) => prop_assert!(!(bad && numbers.contains(&column)), "{:?} read as a number", cell),
            Err(e) => {
                let shown = e.to_string();
                let (name, at_line, at_column, _) = malformed(e);
                prop_assert_eq!((name.as_str(), at_line, at_column), (file, line, column + 1), "{}", shown);
            }
        }
    }
}
