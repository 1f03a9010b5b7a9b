//! The synthetic workload and its measurement.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

pub use forewarm_protocol::{LimitError, Usage, Workload, WorkloadOverrides};
use nix::sys::resource::{UsageWho, getrusage};

/// A workload outside what the runner accepts.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// A field is over its bound.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// Writing the scratch file failed.
    #[error("writing {kib} KiB to {dir}: {source}")]
    Io {
        /// Requested KiB.
        kib: u64,
        /// Scratch directory.
        dir: String,
        /// The error.
        source: std::io::Error,
    },
    /// getrusage failed.
    #[error("getrusage: {0}")]
    Usage(#[from] nix::Error),
}

fn thread_cpu() -> Result<Duration, nix::Error> {
    let u = getrusage(UsageWho::RUSAGE_THREAD)?;
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec().max(0) as u64)
            + Duration::from_micros(t.tv_usec().max(0) as u64)
    };
    Ok(tv(u.user_time()) + tv(u.system_time()))
}

/// Start measuring this execution's peak memory: Linux (4.0 and later) resets the process's
/// resident-set high-water mark to what it holds now when "5" is written to `clear_refs`.
/// Without it the peak would be the process's since it started: a warm container's small
/// request would report the largest one before it, and the profile could not tell them apart.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The resident-set high-water mark, KiB (`VmHWM` of `/proc/self/status`).
fn peak_kib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Run `w` on the calling thread (a blocking thread), writing I/O under `scratch`.
pub fn run_workload(w: &Workload, scratch: &Path) -> Result<Usage, WorkloadError> {
    let own_peak = reset_peak();
    let started = Instant::now();
    let cpu_start = thread_cpu()?;
    // Memory: touch every page of `mem_mib`, held until the end of the execution. The block
    // is at least MAPPED bytes so that the allocator maps it on its own and unmaps it when
    // freed: a smaller one may come from the heap, whose freed top the allocator keeps (up to
    // 64 MiB), and the next execution's peak would count it. Pages never touched are not
    // resident, so the rest of the block costs nothing.
    const MAPPED: usize = 64 << 20;
    let mut held: Vec<u8> = Vec::new();
    if w.mem_mib > 0 {
        let touched = (w.mem_mib as usize) << 20;
        held = vec![0u8; touched.max(MAPPED)];
        for i in (0..touched).step_by(4096) {
            held[i] = (i % 251) as u8;
        }
    }
    // CPU: real work until the thread has used cpu_ms of CPU time.
    let target = Duration::from_millis(w.cpu_ms);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while thread_cpu()? - cpu_start < target {
        for _ in 0..20_000 {
            x = x.rotate_left(7) ^ x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        }
    }
    std::hint::black_box(x);
    // I/O: write and sync a scratch file.
    if w.io_kib > 0 {
        let io = |source| WorkloadError::Io {
            kib: w.io_kib,
            dir: scratch.display().to_string(),
            source,
        };
        let mut file = tempfile_in(scratch).map_err(io)?;
        let chunk = vec![0x5Au8; 64 * 1024];
        let mut left = (w.io_kib as usize) * 1024;
        while left > 0 {
            let n = left.min(chunk.len());
            file.write_all(&chunk[..n]).map_err(io)?;
            left -= n;
        }
        file.sync_data().map_err(io)?;
    }
    std::thread::sleep(Duration::from_millis(w.sleep_ms));
    std::hint::black_box(&held);
    drop(held);
    let cpu = thread_cpu()? - cpu_start;
    // This execution's peak; else the process's (ru_maxrss is in KiB on Linux).
    let peak_kib = match peak_kib().filter(|_| own_peak) {
        Some(kib) => kib,
        None => getrusage(UsageWho::RUSAGE_SELF)?.max_rss().max(0) as f64,
    };
    Ok(Usage {
        cpu_ms: cpu.as_secs_f64() * 1000.0,
        peak_mib: peak_kib / 1024.0,
        io_kib: w.io_kib,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

/// A scratch file that removes itself when dropped.
struct ScratchFile {
    file: std::fs::File,
    path: std::path::PathBuf,
}

impl Write for ScratchFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl ScratchFile {
    fn sync_data(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }
}

impl Drop for ScratchFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn tempfile_in(dir: &Path) -> std::io::Result<ScratchFile> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("forewarm-io-{}-{n}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    Ok(ScratchFile { file, path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_memory_and_io_are_real_and_measured() {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = Workload {
            cpu_ms: 50,
            mem_mib: 64,
            io_kib: 256,
            ..Workload::default()
        };
        let u = run_workload(&w, dir.path()).expect("runs");
        assert!(u.cpu_ms >= 50.0 && u.cpu_ms < 500.0, "{u:?}");
        assert!(u.peak_mib >= 64.0, "{u:?}");
        assert_eq!(u.io_kib, 256);
        assert!(u.duration_ms >= 50.0, "{u:?}");
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("dir").count(),
            0,
            "scratch removed"
        );
    }

    #[test]
    fn a_small_execution_after_a_medium_one_measures_its_own_peak() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = |mem_mib| {
            let w = Workload {
                mem_mib,
                ..Workload::default()
            };
            run_workload(&w, dir.path()).expect("runs").peak_mib
        };
        let alone = run(2);
        // A large block raises the allocator's threshold for mapping a block on its own; a
        // medium one after it then came from the heap, whose freed top stayed resident.
        run(24);
        run(16);
        let after = run(2);
        assert!(
            after < alone + 8.0,
            "{after} MiB after 24 and 16 MiB runs, {alone} before"
        );
    }

    #[test]
    fn the_peak_is_this_executions_not_the_processes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let big = Workload {
            mem_mib: 96,
            ..Workload::default()
        };
        let small = Workload {
            mem_mib: 8,
            ..Workload::default()
        };
        let after_big = run_workload(&big, dir.path()).expect("runs");
        let after_small = run_workload(&small, dir.path()).expect("runs");
        assert!(after_big.peak_mib >= 96.0, "{after_big:?}");
        assert!(
            after_small.peak_mib < after_big.peak_mib - 64.0,
            "{after_small:?} after {after_big:?}"
        );
    }
}
