//! What the Predictor's read costs as a code type's hour fills up: the newest 2000 samples
//! (`latest_samples`, what it reads) against every sample of the hour (`samples`, what it
//! read before), in one run, after appending in the Collector's batches.
//!
//! `cargo run --release -p forewarm-store --example read_cost -- [SAMPLES]` (default 1000000)

use std::time::Instant;

use forewarm_store::{Retention, Sample, SampleStore, Start};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let total: usize = match std::env::args().nth(1) {
        Some(n) => n
            .parse()
            .map_err(|_| format!("SAMPLES: not a count: {n:?}"))?,
        None => 1_000_000,
    };
    let dir = tempfile::tempdir()?;
    let store = SampleStore::open(&dir.path().join("read_cost.redb"), Retention::default())?;
    // One hour of traffic ending now, in batches of 1000 (the Collector writes each batch in
    // one transaction).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64;
    let from = now - 3_600_000;
    let step = 3_600_000 / total.max(1) as u64;
    let began = Instant::now();
    let mut batch = Vec::with_capacity(1000);
    for i in 0..total {
        batch.push(Sample {
            at_ms: from + i as u64 * step,
            tenant: String::from("t"),
            code: String::from("t/noop"),
            start: Start::Warm,
            cpu_ms: 0.01,
            peak_mib: 11.0,
            io_kib: 0,
            duration_ms: 0.004,
            latency_ms: 0.2,
            payload_bytes: 0,
            features: Vec::new(),
        });
        if batch.len() == 1000 || i + 1 == total {
            store.append(&batch)?;
            batch.clear();
        }
    }
    let append = began.elapsed();
    println!(
        "appended {total} samples in {:.2} s: {:.0} samples/s ({:.1} us each)",
        append.as_secs_f64(),
        total as f64 / append.as_secs_f64(),
        append.as_secs_f64() * 1e6 / total as f64
    );
    let file = std::fs::metadata(dir.path().join("read_cost.redb"))?.len();
    println!(
        "store file {:.1} MiB: {:.0} bytes per sample",
        file as f64 / (1 << 20) as f64,
        file as f64 / total as f64
    );
    for round in 1..=3 {
        let t = Instant::now();
        let latest = store.latest_samples("t/noop", from, now + 1, 2_000)?;
        let latest_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let all = store.samples("t/noop", from, now + 1)?;
        let all_s = t.elapsed().as_secs_f64();
        println!(
            "round {round}: newest {} in {:.2} ms; all {} in {:.0} ms ({:.0}x)",
            latest.len(),
            latest_s * 1e3,
            all.len(),
            all_s * 1e3,
            all_s / latest_s
        );
    }
    Ok(())
}
