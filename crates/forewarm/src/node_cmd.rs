//! `forewarm node`, `forewarm up`, `forewarm invoke`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use forewarm_node::client::NodeClient;
use forewarm_node::{Node, NodeConfig};
use forewarm_runtime::DockerRuntime;

use crate::cli::UpArgs;

/// Where `make images` leaves the static runner binary, relative to the workspace.
const RUNNER_BIN: &str = "target/x86_64-unknown-linux-gnu/release/forewarm-runner";

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// What a node logs unless `FOREWARM_LOG` says otherwise: forewarm's own crates at info,
/// dependencies at warn (openraft's info lines dump whole Raft states on every change).
const DEFAULT_LOG: &str = "warn,forewarm=info,forewarm_node=info,forewarm_cluster=info,\
forewarm_raft=info,forewarm_runtime=info,forewarm_store=info,forewarm_http=info,\
forewarm_policy=info,forewarm_tools=info";

/// The format `--log-format` asked for (it wins over `FOREWARM_LOG_FORMAT`).
static LOG_FORMAT: std::sync::OnceLock<crate::cli::LogFormat> = std::sync::OnceLock::new();

/// Log as `format` (`--log-format`).
pub(crate) fn set_log_format(format: crate::cli::LogFormat) {
    let _ = LOG_FORMAT.set(format);
}

/// Logs to stderr, filtered by `FOREWARM_LOG` (else [`DEFAULT_LOG`]); with `--log-format json`
/// or `FOREWARM_LOG_FORMAT=json`, one JSON object per line (time, level, target, fields, and
/// the `invocation` span's id, tenant and code type when a line is about one).
pub(crate) fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FOREWARM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let json = match LOG_FORMAT.get() {
        Some(format) => *format == crate::cli::LogFormat::Json,
        None => std::env::var("FOREWARM_LOG_FORMAT").is_ok_and(|f| f == "json"),
    };
    let _ = if json {
        logs.json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        logs.try_init()
    };
}

/// The static runner binary: the flag, else beside the workspace's target directory.
fn runner_binary(flag: Option<PathBuf>) -> Option<PathBuf> {
    if flag.is_some() {
        return flag;
    }
    let mut candidates = vec![PathBuf::from(RUNNER_BIN)];
    // Next to this executable: target/release/forewarm → target/x86_64-…/release/….
    if let Ok(exe) = std::env::current_exe()
        && let Some(target) = exe.parent().and_then(Path::parent)
    {
        candidates.push(target.join("x86_64-unknown-linux-gnu/release/forewarm-runner"));
    }
    candidates.into_iter().find(|p| p.is_file())
}

/// Connect to the Docker engine and make sure the runner `image` exists, building it from
/// the static runner binary when it does not.
pub(crate) async fn docker_with_image(
    image: &str,
    runner_bin: Option<PathBuf>,
) -> anyhow::Result<DockerRuntime> {
    let docker = DockerRuntime::connect()
        .await
        .context("connecting to the Docker engine")?;
    if !docker.has_image(image).await? {
        let Some(bin) = runner_binary(runner_bin) else {
            bail!(
                "image {image} is missing and no static runner binary was found to build it \
                 from: run `make images` (or pass --runner-bin)"
            );
        };
        eprintln!("building {image} from {}", bin.display());
        docker.build_runner_image(image, &bin).await?;
    }
    Ok(docker)
}

async fn serve(mut config: NodeConfig, runner_bin: Option<PathBuf>) -> anyhow::Result<()> {
    let mut docker = docker_with_image(&config.runner_image, runner_bin)
        .await?
        .with_tenant_subnets(config.tenant_subnets);
    if let Some(container) = &config.container {
        docker = docker.attached_as(container.clone());
    }
    if config.admin_token.is_none() {
        config.admin_token = std::env::var("FOREWARM_ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .map(forewarm_node::Secret::from);
    }
    if config.viewer_token.is_none() {
        config.viewer_token = std::env::var("FOREWARM_VIEWER_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .map(forewarm_node::Secret::from);
    }
    let node = Node::start(config, Arc::new(docker)).await?;
    let c = &node.shared().config;
    println!(
        "forewarm node {} (region {}) listening on http://{}",
        c.node_id,
        c.region,
        node.addr()
    );
    println!("admin token: {}", node.admin_token());
    println!(
        "dashboard: http://{}/ui (it asks for the admin or the viewer token)",
        node.addr()
    );
    println!(
        "policy {}, time scale {}, data in {}",
        c.policy,
        c.time_scale,
        c.data_dir.display()
    );
    if node.reaped() > 0 {
        println!(
            "removed {} containers left by an earlier run",
            node.reaped()
        );
    }
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    stop_signal().await?;
    eprintln!("stopping: removing containers, flushing samples");
    node.shutdown().await;
    Ok(())
}

/// Wait for Ctrl-C or SIGTERM.
pub(crate) async fn stop_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

pub fn node(path: &Path, join: Vec<String>) -> anyhow::Result<()> {
    init_logs();
    let mut config = NodeConfig::load(path)?;
    config.cluster.join.extend(join);
    config.validate().map_err(anyhow::Error::msg)?;
    runtime()?.block_on(serve(config, None))
}

pub fn up(args: UpArgs) -> anyhow::Result<()> {
    init_logs();
    let config = NodeConfig {
        node_id: args.node_id,
        listen: args.listen,
        data_dir: args.data_dir,
        policy: args.policy,
        time_scale: args.time_scale,
        ..NodeConfig::default()
    };
    config.validate().map_err(anyhow::Error::msg)?;
    runtime()?.block_on(serve(config, args.runner_bin))
}

pub fn invoke(code: &str, url: &str, token: String, body: &str) -> anyhow::Result<()> {
    let client = NodeClient::new(url, Some(token)).map_err(anyhow::Error::msg)?;
    let answer = runtime()?
        .block_on(client.invoke(code, body))
        .map_err(anyhow::Error::msg)?;
    // The answer on stdout (for scripts), a one-line summary on stderr (for people).
    println!("{}", answer.body);
    if answer.status < 300 {
        eprintln!(
            "{} in {:.2} ms on {}",
            answer.start,
            answer.body["latency_ms"].as_f64().unwrap_or(f64::NAN),
            answer.body["container"]
                .as_str()
                .unwrap_or("?")
                .get(..12)
                .unwrap_or("?")
        );
    }
    if answer.status >= 300 {
        bail!(
            "{} {}",
            answer.status,
            answer.body["message"].as_str().unwrap_or("")
        );
    }
    Ok(())
}
