//! `forewarm up --regions FILE`: a multi-region cluster on one machine.
//!
//! One `forewarm node` process per node of the topology, each with its own data directory
//! (`DATA_DIR/<node-id>`, its config and log beside the data), and in this process one delay
//! proxy in front of each node. Members reach each other only through the proxies (a node
//! advertises its proxy's address), and each node's calls leave from a loopback address of its
//! own, so the proxy in front of the callee applies half the round trip between the two
//! regions in each direction. Clients call the API addresses directly.
//!
//! The first node starts the cluster (or resumes it), the others join through it. Once every
//! node is a member, stdout gets one line per node in file order: `<region> <api-url>`.
//! Ctrl-C or SIGTERM stops every node (each removes its containers) and then the proxies.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use forewarm_node::client::NodeClient;
use forewarm_node::proxy::DelayProxy;
use forewarm_node::topology::{Topology, TopologyNode};
use forewarm_runtime::Method;

use crate::cli::{ProxyArgs, UpArgs};
use crate::node_cmd::{docker_with_image, init_logs, runtime, stop_signal};

/// How long one node may take to answer `/healthz`, and the cluster to hold every node.
const START_DEADLINE: Duration = Duration::from_secs(90);

pub fn up(args: UpArgs, topology: &Path) -> anyhow::Result<()> {
    init_logs();
    let topo = Topology::load(topology)?;
    let nodes = topo.nodes();
    if let Some(n) = nodes.iter().find(|n| !n.api.ip().is_loopback()) {
        bail!(
            "{}: node {} is not on a loopback address: `forewarm up --regions` starts local \
             processes (use cluster/compose.yaml for nodes on a Docker network)",
            topology.display(),
            n.api
        );
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let secret = env_or_new("FOREWARM_CLUSTER_SECRET");
    let admin = env_or_new("FOREWARM_ADMIN_TOKEN");
    runtime()?.block_on(async {
        // One build of the runner image for all nodes (they would race to build it).
        let image = forewarm_node::NodeConfig::default().runner_image;
        drop(docker_with_image(&image, args.runner_bin.clone()).await?);
        let mut proxies = Vec::new();
        for n in &nodes {
            let proxy = DelayProxy::bind(n.peer, n.api.to_string(), Duration::ZERO)
                .await
                .with_context(|| format!("delay proxy of {} on {}", n.node_id, n.peer))?;
            for from in &nodes {
                let one_way = topo.rtt_ms(&from.region, &n.region) / 2.0;
                proxy.set_delay_from(from.source, Duration::from_secs_f64(one_way / 1000.0));
            }
            proxies.push(proxy);
        }
        let mut children = Children::default();
        let start = async {
            for (i, n) in nodes.iter().enumerate() {
                let join = (i > 0).then(|| nodes[0].peer.to_string());
                let child = start_node(&args, n, join, &secret, &admin, topo.raft_timing_ms())?;
                children.0.push((n.node_id.clone(), child));
                wait_healthy(&mut children, n, &args.data_dir).await?;
            }
            wait_members(&nodes[0], &admin, nodes.len()).await
        };
        // A stop while starting stops what started (dropping `children`).
        tokio::select! {
            started = start => started?,
            stopped = stop_signal() => {
                stopped?;
                bail!("stopped before the cluster formed");
            }
        }
        for n in &nodes {
            println!("{} http://{}", n.region, n.api);
        }
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        eprintln!(
            "admin token: {admin}\nlogs and data under {}; Ctrl-C stops every node",
            args.data_dir.display()
        );
        tokio::select! {
            stopped = stop_signal() => stopped?,
            () = children.watch() => {}
        }
        eprintln!("stopping {} nodes", children.0.len());
        tokio::task::spawn_blocking(move || drop(children)).await?;
        for p in proxies {
            p.stop();
        }
        Ok(())
    })
}

/// The variable's value, or a fresh random token.
fn env_or_new(var: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(forewarm_node::registry::new_token)
}

fn node_dir(data_dir: &Path, n: &TopologyNode) -> PathBuf {
    data_dir.join(&n.node_id)
}

/// Write the node's config file and start `forewarm node` on it; its output goes to
/// `node.log` beside its data.
fn start_node(
    args: &UpArgs,
    n: &TopologyNode,
    join: Option<String>,
    secret: &str,
    admin: &str,
    timing: (u64, u64, u64),
) -> anyhow::Result<Child> {
    let dir = node_dir(&args.data_dir, n);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let (heartbeat, election_min, election_max) = timing;
    let mut cluster = toml::Table::new();
    cluster.insert("heartbeat_ms".into(), (heartbeat as i64).into());
    cluster.insert("election_min_ms".into(), (election_min as i64).into());
    cluster.insert("election_max_ms".into(), (election_max as i64).into());
    cluster.insert("advertise".into(), n.peer.to_string().into());
    cluster.insert("source_addr".into(), n.source.to_string().into());
    let mut config = toml::Table::new();
    config.insert("node_id".into(), n.node_id.clone().into());
    config.insert("region".into(), n.region.clone().into());
    config.insert("listen".into(), n.api.to_string().into());
    config.insert("data_dir".into(), dir.display().to_string().into());
    config.insert("policy".into(), args.policy.to_string().into());
    config.insert("time_scale".into(), args.time_scale.into());
    config.insert("cluster".into(), cluster.into());
    let path = dir.join("node.toml");
    let text = format!(
        "# Written by `forewarm up --regions`; the cluster secret and admin token come from the\n\
         # environment (FOREWARM_CLUSTER_SECRET, FOREWARM_ADMIN_TOKEN).\n{}",
        toml::to_string(&config)?
    );
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("node.log"))?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("node").arg("--config").arg(&path);
    if let Some(join) = join {
        cmd.arg("--join").arg(join);
    }
    cmd.env("FOREWARM_CLUSTER_SECRET", secret)
        .env("FOREWARM_ADMIN_TOKEN", admin)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    cmd.spawn()
        .with_context(|| format!("starting node {}", n.node_id))
}

/// Wait until the node answers `/healthz`; its exit is an error quoting its log.
async fn wait_healthy(
    children: &mut Children,
    n: &TopologyNode,
    data_dir: &Path,
) -> anyhow::Result<()> {
    let client = NodeClient::new(&n.api.to_string(), None).map_err(anyhow::Error::msg)?;
    let begun = Instant::now();
    loop {
        if let Ok((200, _)) = client.json(Method::GET, "/healthz", Vec::new()).await {
            return Ok(());
        }
        if let Some(status) = children.exited(&n.node_id) {
            let log =
                std::fs::read_to_string(node_dir(data_dir, n).join("node.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(8).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "node {} exited ({status}) before serving; end of its log:\n{}",
                n.node_id,
                tail.join("\n")
            );
        }
        if begun.elapsed() > START_DEADLINE {
            bail!(
                "node {} does not answer on http://{} after {START_DEADLINE:?}",
                n.node_id,
                n.api
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait until the first node's view of the cluster holds `count` members and a leader.
async fn wait_members(first: &TopologyNode, admin: &str, count: usize) -> anyhow::Result<()> {
    let client = NodeClient::new(&first.api.to_string(), Some(admin.to_owned()))
        .map_err(anyhow::Error::msg)?;
    let begun = Instant::now();
    let mut last = serde_json::Value::Null;
    while begun.elapsed() < START_DEADLINE {
        if let Ok((200, view)) = client.json(Method::GET, "/v1/cluster", Vec::new()).await {
            let members = view["members"].as_array().map_or(0, Vec::len);
            if members == count && !view["leader"].is_null() {
                return Ok(());
            }
            last = view;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("the cluster does not hold {count} members after {START_DEADLINE:?}: {last}")
}

/// The node processes; dropping it stops them (SIGTERM, then SIGKILL after 30 s).
#[derive(Debug, Default)]
struct Children(Vec<(String, Child)>);

impl Children {
    /// The exit status of `name`, if it exited.
    fn exited(&mut self, name: &str) -> Option<std::process::ExitStatus> {
        let (_, child) = self.0.iter_mut().find(|(n, _)| n == name)?;
        child.try_wait().ok().flatten()
    }

    /// Report nodes that exit (a crash, or chaos on purpose); returns when none is left.
    async fn watch(&mut self) {
        let mut reported = std::collections::HashSet::new();
        loop {
            for (name, child) in &mut self.0 {
                if let Ok(Some(status)) = child.try_wait()
                    && reported.insert(name.clone())
                {
                    eprintln!("node {name} exited ({status})");
                }
            }
            if reported.len() == self.0.len() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for (_, child) in &self.0 {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        for (name, child) in &mut self.0 {
            let begun = Instant::now();
            while matches!(child.try_wait(), Ok(None)) {
                if begun.elapsed() > Duration::from_secs(30) {
                    eprintln!("node {name} did not stop within 30 s: killing it");
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// `forewarm proxy`: one delay proxy as a process of its own (compose, tests).
pub fn proxy(args: ProxyArgs) -> anyhow::Result<()> {
    init_logs();
    runtime()?.block_on(async {
        let proxy = DelayProxy::bind(args.listen, args.to.clone(), args.delay_ms)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        for (ip, d) in &args.from {
            proxy.set_delay_from(*ip, *d);
        }
        if let Some(control) = args.control {
            let listener = tokio::net::TcpListener::bind(control)
                .await
                .with_context(|| format!("control endpoint on {control}"))?;
            let proxy = proxy.clone();
            tokio::spawn(async move {
                if let Err(e) = forewarm_node::proxy::serve_control(listener, proxy).await {
                    eprintln!("delay proxy control endpoint: {e}");
                }
            });
        }
        println!(
            "delay proxy {} -> {}, {} ms one way",
            proxy.addr(),
            args.to,
            args.delay_ms.as_secs_f64() * 1e3
        );
        stop_signal().await
    })
}
