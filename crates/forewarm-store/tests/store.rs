//! The sample store: append, query, rollups, retention, restart.

use forewarm_store::{Retention, Rollup, Sample, SampleStore, Start};

fn sample(code: &str, at_ms: u64, start: Start, cpu_ms: f64) -> Sample {
    Sample {
        at_ms,
        tenant: "t1".into(),
        code: code.into(),
        start,
        cpu_ms,
        peak_mib: cpu_ms / 2.0,
        io_kib: 4,
        duration_ms: cpu_ms + 1.0,
        latency_ms: cpu_ms + 2.0,
        payload_bytes: 100,
        features: Vec::new(),
    }
}

#[test]
fn t01_samples_and_rollups_agree_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("samples.redb");
    {
        let store = SampleStore::open(&path, Retention::default()).expect("open");
        store
            .append(&[
                sample("a", 60_000, Start::Cold, 10.0),
                sample("a", 61_000, Start::Warm, 20.0),
                sample("b", 61_500, Start::Prewarmed, 5.0),
                sample("a", 125_000, Start::Prewarmed, 30.0),
            ])
            .expect("append");
        // Same timestamp twice is two samples, not an overwrite.
        store
            .append(&[sample("a", 61_000, Start::Warm, 40.0)])
            .expect("append");
    }
    let store = SampleStore::open(&path, Retention::default()).expect("reopen");
    let a = store.samples("a", 0, u64::MAX).expect("query");
    assert_eq!(a.len(), 4);
    assert!(
        a.windows(2).all(|w| w[0].at_ms <= w[1].at_ms),
        "ordered by time"
    );
    assert_eq!(store.samples("a", 61_000, 125_000).expect("query").len(), 2);
    assert_eq!(store.samples("b", 0, u64::MAX).expect("query").len(), 1);
    // The newest n, oldest first; same timestamp: the later append is the newer.
    let latest = store.latest_samples("a", 0, u64::MAX, 2).expect("latest");
    let seen: Vec<(u64, f64)> = latest.iter().map(|s| (s.at_ms, s.cpu_ms)).collect();
    assert_eq!(seen, vec![(61_000, 40.0), (125_000, 30.0)]);
    let latest = store.latest_samples("a", 0, 125_000, 1).expect("latest");
    assert_eq!((latest.len(), latest[0].cpu_ms), (1, 40.0));
    assert_eq!(store.latest_samples("a", 0, u64::MAX, 99).expect("all"), a);
    let rollups = store.rollups("a", 0, 10).expect("rollups");
    assert_eq!(rollups.len(), 2);
    let (minute, r): (u64, Rollup) = rollups[0];
    assert_eq!(minute, 1);
    assert_eq!((r.count, r.cold, r.prewarmed), (3, 1, 0));
    assert!((r.cpu_ms_sum - 70.0).abs() < 1e-9 && (r.peak_mib_max - 20.0).abs() < 1e-9);
    assert_eq!(r.io_kib_sum, 12);
    assert_eq!((rollups[1].0, rollups[1].1.prewarmed), (2, 1));
}

#[test]
fn t02_retention_drops_old_raw_samples_before_rollups() {
    let dir = tempfile::tempdir().expect("tempdir");
    let retention = Retention {
        raw_ms: 60_000,
        rollup_ms: 600_000,
    };
    let store = SampleStore::open(&dir.path().join("s.redb"), retention).expect("open");
    let samples: Vec<Sample> = (0..10)
        .map(|i| sample("a", i * 60_000, Start::Warm, 1.0))
        .collect();
    store.append(&samples).expect("append");
    // At 10 min: raw kept from 9 min on, rollups from minute 0 on.
    assert_eq!(store.enforce_retention(600_000).expect("retention"), (9, 0));
    assert_eq!(store.samples("a", 0, u64::MAX).expect("query").len(), 1);
    assert_eq!(store.rollups("a", 0, 100).expect("rollups").len(), 10);
    // At 15 min: rollups before minute 5 go too.
    assert_eq!(store.enforce_retention(900_000).expect("retention"), (1, 5));
    assert_eq!(store.rollups("a", 0, 100).expect("rollups").len(), 5);
}

#[test]
fn t03_an_unusable_path_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("no-such-dir").join("s.redb");
    let err = SampleStore::open(&path, Retention::default()).expect_err("no directory");
    assert!(err.to_string().contains("no-such-dir"), "{err}");
}

#[test]
fn t04_records_are_kept_by_kind_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("samples.redb");
    {
        let store = SampleStore::open(&path, Retention::default()).expect("open");
        store
            .put_record("tenant", "acme", &vec![1, 2])
            .expect("put");
        store.put_record("tenant", "zeta", &vec![3]).expect("put");
        store.put_record("code", "acme/f", &vec![9]).expect("put");
        store
            .put_record("tenant", "acme", &vec![4])
            .expect("replace");
    }
    let store = SampleStore::open(&path, Retention::default()).expect("reopen");
    let tenants: Vec<(String, Vec<u32>)> = store.records("tenant").expect("list");
    assert_eq!(
        tenants,
        vec![("acme".into(), vec![4]), ("zeta".into(), vec![3])]
    );
    let codes: Vec<(String, Vec<u32>)> = store.records("code").expect("list");
    assert_eq!(codes, vec![("acme/f".into(), vec![9])]);
    let none: Vec<(String, Vec<u32>)> = store.records("model").expect("list");
    assert!(none.is_empty());
    // Removed records stay removed across a restart; a missing key is skipped.
    store
        .remove_records("tenant", &["acme".into(), "nobody".into()])
        .expect("remove");
    drop(store);
    let store = SampleStore::open(&path, Retention::default()).expect("reopen");
    let tenants: Vec<(String, Vec<u32>)> = store.records("tenant").expect("list");
    assert_eq!(tenants, vec![("zeta".into(), vec![3])]);
}

#[test]
fn t05_a_store_with_the_old_container_stats_table_opens_and_drops_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.redb");
    let old: redb::TableDefinition<(&str, u64, u64), &[u8]> =
        redb::TableDefinition::new("container_stats");
    {
        let db = redb::Database::create(&path).expect("create");
        let tx = db.begin_write().expect("write");
        tx.open_table(old)
            .expect("table")
            .insert(("a", 1, 0), b"{}".as_slice())
            .expect("insert");
        tx.commit().expect("commit");
    }
    drop(SampleStore::open(&path, Retention::default()).expect("opens"));
    let db = redb::Database::create(&path).expect("reopen");
    let tx = redb::ReadableDatabase::begin_read(&db).expect("read");
    assert!(matches!(
        tx.open_table(old),
        Err(redb::TableError::TableDoesNotExist(_))
    ));
}
