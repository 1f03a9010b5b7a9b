//! The forewarm runner: the process inside every workload container.
//!
//! It speaks the runner protocol on port 8080. `GET /ready` answers 200 only once the code
//! type is initialised: `init_ms` of start-up work plus reading every dependency file mounted
//! under the deps directory (the cost pre-warming hides). `POST /invoke` runs the code type's
//! synthetic workload — `cpu_ms` of real CPU work, `mem_mib` touched (plus `mem_kib_per_item`
//! per input item), `io_kib` written and synced, `sleep_ms` — optionally overridden per
//! request, and reports what it measured: CPU time (getrusage of the worker thread), peak RSS
//! of the execution (the process's high-water mark, reset before each), bytes written,
//! duration.
//!
//! It owns nothing but this protocol; any image that speaks it works the same way.

mod workload;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

pub use workload::{LimitError, Usage, Workload, WorkloadError, WorkloadOverrides, run_workload};

/// Runner settings, from the environment the container was created with.
#[derive(Debug, Clone, PartialEq)]
pub struct RunnerConfig {
    /// Address to listen on (`FOREWARM_LISTEN`, default `0.0.0.0:8080`).
    pub listen: SocketAddr,
    /// The code type's workload (`FOREWARM_CPU_MS`, `_MEM_MIB`, `_IO_KIB`, `_INIT_MS`,
    /// `_SLEEP_MS`; all default to 0).
    pub workload: Workload,
    /// Dependency files read during initialisation (`FOREWARM_DEPS_DIR`, default `/deps`;
    /// missing is fine).
    pub deps_dir: PathBuf,
    /// Where I/O is written (`FOREWARM_SCRATCH_DIR`, default `/tmp`).
    pub scratch_dir: PathBuf,
}

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{name}={value:?}: {reason}")]
pub struct ConfigError {
    /// The variable.
    pub name: &'static str,
    /// Its value.
    pub value: String,
    /// What is wrong.
    pub reason: String,
}

impl RunnerConfig {
    /// Read the configuration through `get` (the process environment in `main`).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let number = |name: &'static str| -> Result<u64, ConfigError> {
            match get(name) {
                None => Ok(0),
                Some(value) => value.trim().parse::<u64>().map_err(|_| ConfigError {
                    name,
                    reason: "expected a non-negative integer".into(),
                    value,
                }),
            }
        };
        let listen = match get("FOREWARM_LISTEN") {
            None => SocketAddr::from(([0, 0, 0, 0], 8080)),
            Some(value) => value.parse().map_err(|_| ConfigError {
                name: "FOREWARM_LISTEN",
                reason: "expected an address such as 0.0.0.0:8080".into(),
                value,
            })?,
        };
        let workload = Workload {
            cpu_ms: number("FOREWARM_CPU_MS")?,
            mem_mib: number("FOREWARM_MEM_MIB")?,
            io_kib: number("FOREWARM_IO_KIB")?,
            init_ms: number("FOREWARM_INIT_MS")?,
            sleep_ms: number("FOREWARM_SLEEP_MS")?,
            mem_kib_per_item: number("FOREWARM_MEM_KIB_PER_ITEM")?,
            cpu_us_per_item: number("FOREWARM_CPU_US_PER_ITEM")?,
        };
        workload.validate().map_err(|e| ConfigError {
            name: "FOREWARM_*",
            value: format!("{workload:?}"),
            reason: e.to_string(),
        })?;
        Ok(Self {
            listen,
            workload,
            deps_dir: get("FOREWARM_DEPS_DIR").map_or_else(|| "/deps".into(), PathBuf::from),
            scratch_dir: get("FOREWARM_SCRATCH_DIR").map_or_else(|| "/tmp".into(), PathBuf::from),
        })
    }
}

/// Shared state of the HTTP handlers.
#[derive(Debug)]
pub struct Runner {
    config: RunnerConfig,
    ready: AtomicBool,
    init_elapsed_ms: AtomicU64,
    deps_bytes: AtomicU64,
}

#[derive(Debug, Serialize)]
struct ErrorBody {
    error: &'static str,
    message: String,
}

fn error(status: StatusCode, code: &'static str, message: String) -> Response {
    (
        status,
        Json(ErrorBody {
            error: code,
            message,
        }),
    )
        .into_response()
}

impl Runner {
    /// A runner that is not initialised yet.
    pub fn new(config: RunnerConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            ready: AtomicBool::new(false),
            init_elapsed_ms: AtomicU64::new(0),
            deps_bytes: AtomicU64::new(0),
        })
    }

    /// Initialise: `init_ms` of start-up, then read every dependency file. Marks ready.
    pub async fn initialise(self: &Arc<Self>) -> std::io::Result<()> {
        let started = Instant::now();
        tokio::time::sleep(Duration::from_millis(self.config.workload.init_ms)).await;
        let deps = self.config.deps_dir.clone();
        let bytes = tokio::task::spawn_blocking(move || read_tree(&deps))
            .await
            .map_err(std::io::Error::other)??;
        self.deps_bytes.store(bytes, Ordering::Relaxed);
        self.init_elapsed_ms
            .store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        self.ready.store(true, Ordering::Release);
        Ok(())
    }

    /// The HTTP routes.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/ready", get(ready))
            .route("/invoke", post(invoke))
            .with_state(self.clone())
    }
}

/// Bytes of every regular file below `dir` (0 when it does not exist).
fn read_tree(dir: &std::path::Path) -> std::io::Result<u64> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut total = 0;
    for entry in entries {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            total += read_tree(&entry.path())?;
        } else if kind.is_file() {
            total += std::fs::read(entry.path())?.len() as u64;
        }
    }
    Ok(total)
}

async fn ready(State(runner): State<Arc<Runner>>) -> Response {
    if runner.ready.load(Ordering::Acquire) {
        Json(serde_json::json!({
            "ready": true,
            "init_ms": runner.init_elapsed_ms.load(Ordering::Relaxed),
            "deps_bytes": runner.deps_bytes.load(Ordering::Relaxed),
        }))
        .into_response()
    } else {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "initialising",
            "the runner is still initialising".into(),
        )
    }
}

async fn invoke(State(runner): State<Arc<Runner>>, body: Bytes) -> Response {
    if !runner.ready.load(Ordering::Acquire) {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "initialising",
            "the runner is still initialising; wait for GET /ready".into(),
        );
    }
    // An empty body means "no overrides", whatever its content type says.
    let overrides = if body.iter().all(u8::is_ascii_whitespace) {
        WorkloadOverrides::default()
    } else {
        let mut json = serde_json::Deserializer::from_slice(&body);
        match serde_path_to_error::deserialize::<_, WorkloadOverrides>(&mut json) {
            Ok(o) => o,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("request body at {}: {}", e.path(), e.inner()),
                );
            }
        }
    };
    let workload = runner.config.workload.with(&overrides);
    if let Err(e) = workload.validate() {
        return error(StatusCode::BAD_REQUEST, "bad_request", e.to_string());
    }
    let scratch = runner.config.scratch_dir.clone();
    // A no-op workload runs in place: a hop to the blocking pool would cost more than it.
    let ran = if workload.is_noop() {
        Ok(run_workload(&workload, &scratch))
    } else {
        tokio::task::spawn_blocking(move || run_workload(&workload, &scratch)).await
    };
    match ran {
        Ok(Ok(usage)) => Json(usage).into_response(),
        Ok(Err(e)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "workload_failed",
            e.to_string(),
        ),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "workload_failed",
            e.to_string(),
        ),
    }
}
