//! `forewarm node` processes on this machine, for `forewarm up --regions` and `forewarm bench
//! cluster`: each gets a directory (its config, log and data), the cluster secret and admin
//! token from the environment, and is stopped when the [`Children`] holding it is dropped.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use forewarm_http::Method;
use forewarm_node::client::NodeClient;

/// How long one node may take to answer `/healthz`, and the cluster to hold every node.
pub(crate) const START_DEADLINE: Duration = Duration::from_secs(90);

/// One node process to start.
#[derive(Debug, Clone)]
pub(crate) struct LocalNode {
    /// Node id.
    pub node_id: String,
    /// Region.
    pub region: String,
    /// API address (clients).
    pub api: SocketAddr,
    /// Where the other members reach it (its delay proxy, or `api`).
    pub advertise: SocketAddr,
    /// Its cluster listener (`cluster.listen`), if the internal endpoints get their own.
    pub cluster_listen: Option<SocketAddr>,
    /// Its mutual TLS files (`[cluster.tls]`; needs `cluster_listen`).
    pub tls: Option<forewarm_node::TlsFiles>,
    /// Address its calls to other members leave from, if not the default.
    pub source: Option<IpAddr>,
    /// Config, log and data directory.
    pub dir: PathBuf,
    /// Pool policy name.
    pub policy: String,
    /// Policy time per real time.
    pub time_scale: f64,
    /// Raft heartbeat, election timeout min and max, ms.
    pub timing: (u64, u64, u64),
}

/// What every node of one cluster shares.
#[derive(Debug, Clone)]
pub(crate) struct Secrets {
    /// Cluster secret (`FOREWARM_CLUSTER_SECRET`).
    pub cluster: String,
    /// Admin token (`FOREWARM_ADMIN_TOKEN`).
    pub admin: String,
}

impl Secrets {
    /// From the environment, else fresh random ones.
    pub fn from_env_or_new() -> Self {
        Self {
            cluster: env_or_new("FOREWARM_CLUSTER_SECRET"),
            admin: env_or_new("FOREWARM_ADMIN_TOKEN"),
        }
    }
}

/// The variable's value, or a fresh random token.
fn env_or_new(var: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(forewarm_node::catalog::new_token)
}

impl LocalNode {
    fn log_path(&self) -> PathBuf {
        self.dir.join("node.log")
    }

    /// Write its config file (`node.toml` in its directory) and start `forewarm node` on it,
    /// joining through `join` if given; its output goes to `node.log` beside its data.
    fn start(&self, join: Option<&str>, secrets: &Secrets) -> anyhow::Result<Child> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let dir = self.dir.canonicalize()?;
        let (heartbeat, election_min, election_max) = self.timing;
        let mut cluster = toml::Table::new();
        cluster.insert("heartbeat_ms".into(), (heartbeat as i64).into());
        cluster.insert("election_min_ms".into(), (election_min as i64).into());
        cluster.insert("election_max_ms".into(), (election_max as i64).into());
        cluster.insert("advertise".into(), self.advertise.to_string().into());
        if let Some(source) = self.source {
            cluster.insert("source_addr".into(), source.to_string().into());
        }
        if let Some(listen) = self.cluster_listen {
            cluster.insert("listen".into(), listen.to_string().into());
        }
        if let Some(files) = &self.tls {
            let mut tls = toml::Table::new();
            for (key, path) in [
                ("ca", &files.ca),
                ("cert", &files.cert),
                ("key", &files.key),
            ] {
                tls.insert(key.into(), path.display().to_string().into());
            }
            cluster.insert("tls".into(), tls.into());
        }
        let mut config = toml::Table::new();
        config.insert("node_id".into(), self.node_id.clone().into());
        config.insert("region".into(), self.region.clone().into());
        config.insert("listen".into(), self.api.to_string().into());
        config.insert("data_dir".into(), dir.display().to_string().into());
        config.insert("policy".into(), self.policy.clone().into());
        config.insert("time_scale".into(), self.time_scale.into());
        config.insert("cluster".into(), cluster.into());
        let path = dir.join("node.toml");
        let text = format!(
            "# Written by forewarm for a local cluster; the cluster secret and admin token come\n\
             # from the environment (FOREWARM_CLUSTER_SECRET, FOREWARM_ADMIN_TOKEN).\n{}",
            toml::to_string(&config)?
        );
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.arg("node").arg("--config").arg(&path);
        if let Some(join) = join {
            cmd.arg("--join").arg(join);
        }
        cmd.env("FOREWARM_CLUSTER_SECRET", &secrets.cluster)
            .env("FOREWARM_ADMIN_TOKEN", &secrets.admin)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        cmd.spawn()
            .with_context(|| format!("starting node {}", self.node_id))
    }

    /// Wait until it answers `/healthz`; its exit is an error quoting its log.
    async fn wait_healthy(&self, children: &mut Children) -> anyhow::Result<()> {
        let client = NodeClient::new(&self.api.to_string(), None).map_err(anyhow::Error::msg)?;
        let begun = Instant::now();
        loop {
            if let Ok((200, _)) = client.json(Method::GET, "/healthz", Vec::new()).await {
                return Ok(());
            }
            if let Some(status) = children.exited(&self.node_id) {
                let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(8).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                bail!(
                    "node {} exited ({status}) before serving; end of its log:\n{}",
                    self.node_id,
                    tail.join("\n")
                );
            }
            if begun.elapsed() > START_DEADLINE {
                bail!(
                    "node {} does not answer on http://{} after {START_DEADLINE:?}",
                    self.node_id,
                    self.api
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Start `nodes` one after the other (the first starts or resumes the cluster, the others
/// join through its advertised address), each held by `children` and answering before the
/// next starts; returns once the first node's view holds them all and a leader.
pub(crate) async fn start_cluster(
    nodes: &[LocalNode],
    secrets: &Secrets,
    children: &mut Children,
) -> anyhow::Result<()> {
    let Some(first) = nodes.first() else {
        return Ok(());
    };
    let seed = first.advertise.to_string();
    for (i, n) in nodes.iter().enumerate() {
        children
            .launch(n, (i > 0).then_some(seed.as_str()), secrets)
            .await?;
    }
    wait_members(first.api, &secrets.admin, nodes.len()).await
}

/// Wait until `api`'s view of the cluster holds `count` members and a leader.
async fn wait_members(api: SocketAddr, admin: &str, count: usize) -> anyhow::Result<()> {
    let client =
        NodeClient::new(&api.to_string(), Some(admin.to_owned())).map_err(anyhow::Error::msg)?;
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
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the cluster does not hold {count} members after {START_DEADLINE:?}: {last}")
}

/// The node processes, by node id; dropping it stops them (SIGTERM, then SIGKILL after 30 s).
#[derive(Debug, Default)]
pub(crate) struct Children(Vec<(String, Child)>);

impl Children {
    /// Hold `child` as node `name`.
    fn push(&mut self, name: &str, child: Child) {
        self.0.push((name.to_owned(), child));
    }

    /// How many are held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Start `node` (joining through `join` if given), hold it, and wait until it answers.
    pub async fn launch(
        &mut self,
        node: &LocalNode,
        join: Option<&str>,
        secrets: &Secrets,
    ) -> anyhow::Result<()> {
        let child = node.start(join, secrets)?;
        self.push(&node.node_id, child);
        node.wait_healthy(self).await
    }

    /// The exit status of `name`, if it exited.
    pub fn exited(&mut self, name: &str) -> Option<std::process::ExitStatus> {
        let (_, child) = self.0.iter_mut().find(|(n, _)| n == name)?;
        child.try_wait().ok().flatten()
    }

    /// SIGKILL `name` (a crash: nothing is flushed or handed over), wait for it to exit and
    /// stop holding it.
    pub fn kill(&mut self, name: &str) -> anyhow::Result<()> {
        let i = self
            .0
            .iter()
            .position(|(n, _)| n == name)
            .with_context(|| format!("no node process {name}"))?;
        let (_, mut child) = self.0.remove(i);
        child
            .kill()
            .with_context(|| format!("killing node {name}"))?;
        child.wait()?;
        Ok(())
    }

    /// Report nodes that exit (a crash, or chaos on purpose); returns when none is left.
    pub async fn watch(&mut self) {
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

/// A free loopback port (bound and released; another process could take it in between).
pub(crate) fn free_port() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?)
}
