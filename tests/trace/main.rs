//! Trace reader and generator: good files, malformed files, windows across days.

use std::fs;
use std::path::Path;

use forewarm_tests::gen_trace;
use forewarm_trace::{TraceError, TraceStats, Window, read_trace};

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
