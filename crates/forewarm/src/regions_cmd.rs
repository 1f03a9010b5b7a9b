//! `forewarm up --regions FILE`: a multi-region cluster on one machine.
//!
//! One `forewarm node` process per node of the topology, each with its own data directory
//! (`DATA_DIR/<node-id>`, its config and log beside the data), and in this process one delay
//! proxy in front of each node. Members reach each other only through the proxies (a node
//! advertises its proxy's address), and each node's calls leave from a loopback address of its
//! own, so the proxy in front of the callee applies half the round trip between the two
//! regions in each direction. Clients call the API addresses directly.
//!
//! Members talk over mutual TLS on cluster listeners of their own (API port + 2 ×
//! `peer_port_offset`, behind the proxies): the first run makes a cluster CA and one
//! certificate per node under `DATA_DIR/tls` (kept for later runs; a node whose certificate
//! is missing gets a new one).
//!
//! The first node starts the cluster (or resumes it), the others join through it. Once every
//! node is a member, stdout gets one line per node in file order: `<region> <api-url>`.
//! Ctrl-C or SIGTERM stops every node (each removes its containers) and then the proxies.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use forewarm_node::topology::Topology;
use forewarm_tools::delay_proxy::DelayProxy;

use crate::cli::{ProxyArgs, UpArgs};
use crate::local_nodes::{Children, LocalNode, Secrets, start_cluster};
use crate::node_cmd::{docker_with_image, init_logs, runtime, stop_signal};

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
    let secrets = Secrets::from_env_or_new();
    let tls_dir = args.data_dir.join("tls");
    let names: Vec<&str> = nodes.iter().map(|n| n.node_id.as_str()).collect();
    let tls = forewarm_node::tls::ensure(&tls_dir, &names).map_err(anyhow::Error::msg)?;
    let local: Vec<LocalNode> = nodes
        .iter()
        .zip(tls)
        .map(|(n, tls)| LocalNode {
            node_id: n.node_id.clone(),
            region: n.region.clone(),
            api: n.api,
            advertise: n.peer,
            cluster_listen: Some(n.cluster),
            tls: Some(tls),
            source: Some(n.source),
            dir: args.data_dir.join(&n.node_id),
            policy: args.policy.to_string(),
            time_scale: args.time_scale,
            timing: topo.raft_timing_ms(),
        })
        .collect();
    runtime()?.block_on(async {
        // One build of the runner image for all nodes (they would race to build it).
        let image = forewarm_node::NodeConfig::default().runner_image;
        drop(docker_with_image(&image, args.runner_bin.clone()).await?);
        let mut proxies = Vec::new();
        for n in &nodes {
            let proxy = DelayProxy::bind(n.peer, n.cluster.to_string(), Duration::ZERO)
                .await
                .with_context(|| format!("delay proxy of {} on {}", n.node_id, n.peer))?;
            for from in &nodes {
                let one_way = topo.rtt_ms(&from.region, &n.region) / 2.0;
                proxy.set_delay_from(from.source, Duration::from_secs_f64(one_way / 1000.0));
            }
            proxies.push(proxy);
        }
        let mut children = Children::default();
        let start = start_cluster(&local, &secrets, &mut children);
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
            "admin token: {}\nlogs and data under {}; Ctrl-C stops every node",
            secrets.admin,
            args.data_dir.display()
        );
        tokio::select! {
            stopped = stop_signal() => stopped?,
            () = children.watch() => {}
        }
        eprintln!("stopping {} nodes", children.len());
        tokio::task::spawn_blocking(move || drop(children)).await?;
        for p in proxies {
            p.stop();
        }
        Ok(())
    })
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
                if let Err(e) = forewarm_tools::delay_proxy::serve_control(listener, proxy).await {
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
