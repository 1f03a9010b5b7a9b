//! Command-line options. Scripts depend on these names: change them only with the docs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use forewarm_policy::PolicySpec;
use forewarm_trace::Variant;

/// forewarm: spawn containers before requests arrive.
#[derive(Debug, Parser)]
#[command(
    name = "forewarm",
    version,
    about,
    after_help = "Examples:
  forewarm up                                   one node on Docker, prints its URL and admin token
  forewarm up --regions regions/three.toml      three regions on this machine, over mutual TLS
  forewarm status --url http://127.0.0.1:7070   readiness, cluster, pool and counters at a glance
  forewarm invoke hello --body '{\"cpu_ms\":20}'  (FOREWARM_TOKEN: a tenant's token)
  forewarm trace gen --apps 2000 --out target/traces/t && forewarm simulate --trace target/traces/t
  forewarm completions bash > /etc/bash_completion.d/forewarm"
)]
pub struct Cli {
    /// Log lines as text or as one JSON object per line (else FOREWARM_LOG_FORMAT; the level
    /// filter is FOREWARM_LOG).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (time, level, target, fields, the invocation span).
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node from a TOML configuration file (see docs/node.md for the keys).
    Node {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Join a running cluster through this member (`host:port` of its API); repeatable.
        /// Adds to `cluster.join` of the file. Needs the cluster secret.
        #[arg(long)]
        join: Vec<String>,
    },
    /// Start a node in one command: builds the runner image if missing, opens an embedded
    /// store, prints the URL and the admin token.
    Up(UpArgs),
    /// Invoke a code type on a node and print the answer.
    Invoke {
        /// The code type.
        code: String,
        /// The node.
        #[arg(long, env = "FOREWARM_URL", default_value = "http://127.0.0.1:7070")]
        url: String,
        /// A tenant token.
        #[arg(long, env = "FOREWARM_TOKEN", hide_env_values = true)]
        token: String,
        /// Per-request overrides, JSON, e.g. '{"cpu_ms":20}'.
        #[arg(long, default_value = "")]
        body: String,
    },
    /// A TCP delay proxy: the distance between regions, emulated (this kernel has no netem).
    Proxy(ProxyArgs),
    /// Replay a trace (Azure Functions 2019 layout) against a live node, time-compressed.
    Replay(ReplayArgs),
    /// One node at a glance: readiness (and why not), its cluster and round trips, its pool
    /// by code type and size class, its invocation counters. Exits 1 when it is not ready.
    Status(StatusArgs),
    /// Replay a trace through policies side by side and report cold starts and waste.
    Simulate(SimulateArgs),
    /// Generate or inspect traces in the Azure Functions 2019 format.
    #[command(subcommand)]
    Trace(TraceCommand),
    /// Measure the live components (needs Docker and `make images`).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// The cluster's mutual TLS: its CA and the nodes' certificates (docs/security.md).
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Print a shell completion script for this command, e.g. `forewarm completions bash >
    /// /etc/bash_completion.d/forewarm`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Make what is missing in DIR: the cluster CA, and a certificate for each `--node`
    /// (existing ones are kept). The compose cluster's first start runs it.
    Certs {
        /// The directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// A node name; repeatable.
        #[arg(long, required = true)]
        node: Vec<String>,
    },
    /// Make a cluster CA: `ca.pem` and `ca.key` (owner-only) in DIR. Refuses to overwrite one.
    Ca {
        /// Where to write it (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
    /// Issue a node certificate signed by the cluster CA: `NAME.pem` and `NAME.key`, valid
    /// for the node's name (its `node_id`) and for `forewarm-cluster`. Prints the
    /// `[cluster.tls]` table that configures the node with them.
    Cert {
        /// The directory holding `ca.pem` and `ca.key`.
        #[arg(long)]
        ca: PathBuf,
        /// The node's name (`node_id` in its configuration).
        #[arg(long)]
        node: String,
        /// Where to write the certificate and key (created if missing); default: the CA's
        /// directory.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// One node end to end on real Docker: cold vs pre-warmed vs warm starts, gateway
    /// overhead over calling the runner directly, warm no-op throughput.
    Node(NodeBenchArgs),
    /// The replicated state on three local node processes (on Docker, no container started):
    /// Raft commit latency (through the leader and forwarded by a follower), leader failover
    /// time after a SIGKILL, and the routing decision time.
    Cluster {
        /// Writes measured per path.
        #[arg(long, default_value_t = 500)]
        writes: usize,
        /// Leader failovers measured.
        #[arg(long, default_value_t = 10)]
        failovers: usize,
        /// Raft heartbeat, ms (default: the node default).
        #[arg(long)]
        heartbeat_ms: Option<u64>,
        /// Election timeout range LO:HI, ms (default: the node default).
        #[arg(long, value_parser = parse_range)]
        election_ms: Option<(u64, u64)>,
        /// Keep the nodes' configs, logs and data here (default: a temporary directory,
        /// removed at the end).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Members speak mutual TLS on cluster listeners of their own (as `forewarm up
        /// --regions` runs them) instead of the secret alone on the API port.
        #[arg(long)]
        tls: bool,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Cold start (create + start + ready + first invocation) vs warm invocation latency on
    /// real Docker containers, side by side in one run.
    Docker {
        /// Cold starts (each followed by the warm invocations).
        #[arg(long, default_value_t = 10)]
        rounds: usize,
        /// Warm invocations per cold start.
        #[arg(long, default_value_t = 50)]
        warm: usize,
        /// Runner image.
        #[arg(long, default_value = concat!("forewarm/runner:", env!("CARGO_PKG_VERSION")))]
        image: String,
        /// Initialisation the runner does before it is ready (what pre-warming hides), ms.
        #[arg(long, default_value_t = 250)]
        init_ms: u64,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct NodeBenchArgs {
    /// Cold starts measured.
    #[arg(long, default_value_t = 10)]
    pub cold: usize,
    /// Periodic code types for pre-warmed starts.
    #[arg(long, default_value_t = 5)]
    pub periodic: usize,
    /// Measured rounds of the periodic code types (4 s each).
    #[arg(long, default_value_t = 4)]
    pub rounds: usize,
    /// Interleaved node/direct invocation pairs for the gateway overhead.
    #[arg(long, default_value_t = 2000)]
    pub overhead: usize,
    /// Throughput clients (one warm container each).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Throughput run length, s.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Runner image.
    #[arg(long, default_value = concat!("forewarm/runner:", env!("CARGO_PKG_VERSION")))]
    pub image: String,
    /// Runner initialisation (what a cold start pays), ms.
    #[arg(long, default_value_t = 250)]
    pub init_ms: u64,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

impl NodeBenchArgs {
    pub fn options(&self) -> forewarm_tools::node_bench::BenchOptions {
        forewarm_tools::node_bench::BenchOptions {
            cold: self.cold,
            periodic: self.periodic,
            rounds: self.rounds,
            overhead: self.overhead,
            concurrency: self.concurrency,
            seconds: self.seconds,
            image: self.image.clone(),
            init_ms: self.init_ms,
        }
    }
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Listen address of the API.
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub listen: std::net::SocketAddr,
    /// Where the store lives.
    #[arg(long, default_value = "forewarm-data")]
    pub data_dir: PathBuf,
    /// Pool policy: forewarm, keepalive-<N>m, hybrid-histogram-<H>h, no-unloading, ...
    #[arg(long, default_value = "forewarm")]
    pub policy: PolicySpec,
    /// Policy time per real time (60: a real second is a policy minute; for demos and replays).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Node id (the `forewarm.node` label of its containers).
    #[arg(long, default_value = "node-1")]
    pub node_id: String,
    /// Statically linked runner binary the image is built from if missing.
    #[arg(long, env = "FOREWARM_RUNNER_BIN")]
    pub runner_bin: Option<PathBuf>,
    /// Start one node per node of this topology file (e.g. regions/three.toml) as local
    /// processes, with a delay proxy in front of each emulating the round trips between the
    /// regions; prints `<region> <api-url>` per node. Data goes to DATA_DIR/<node-id>.
    #[arg(long, conflicts_with_all = ["listen", "node_id"])]
    pub regions: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Listen address.
    #[arg(long)]
    pub listen: std::net::SocketAddr,
    /// Where to forward to: HOST:PORT (resolved per connection).
    #[arg(long)]
    pub to: String,
    /// One-way delay, ms, in each direction.
    #[arg(long, default_value = "0", value_parser = parse_delay)]
    pub delay_ms: std::time::Duration,
    /// One-way delay for connections from one address: IP=MS (repeatable).
    #[arg(long = "from", value_parser = parse_from)]
    pub from: Vec<(std::net::IpAddr, std::time::Duration)>,
    /// Serve `PUT /delay` ({"one_way_ms": N, "from"?: IP}) on this address.
    #[arg(long)]
    pub control: Option<std::net::SocketAddr>,
}

fn parse_delay(ms: &str) -> Result<std::time::Duration, String> {
    let ms: f64 = ms.parse().map_err(|e| format!("{ms:?}: {e}"))?;
    forewarm_tools::delay_proxy::one_way(ms)
}

fn parse_from(s: &str) -> Result<(std::net::IpAddr, std::time::Duration), String> {
    let (ip, ms) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected IP=MS"))?;
    let ip = ip.parse().map_err(|e| format!("{ip:?}: {e}"))?;
    Ok((ip, parse_delay(ms)?))
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Trace directory.
    #[arg(long)]
    pub trace: PathBuf,
    /// The node.
    #[arg(long, env = "FOREWARM_URL", default_value = "http://127.0.0.1:7070")]
    pub url: String,
    /// Admin token (replay creates its own tenant and code types).
    #[arg(long, env = "FOREWARM_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: String,
    /// Trace minutes per real minute (match the node's --time-scale).
    #[arg(long, default_value_t = 60.0)]
    pub speed: f64,
    /// Applications replayed, evenly spread over the popularity band.
    #[arg(long, default_value_t = 10)]
    pub apps: usize,
    /// Popularity band LO:HI the apps are chosen from (most popular first).
    #[arg(long, value_parser = parse_band, default_value = "0.3:0.7")]
    pub app_band: (f64, f64),
    /// First trace minute replayed.
    #[arg(long, default_value_t = 0)]
    pub skip_minutes: u64,
    /// Trace minutes replayed.
    #[arg(long, default_value_t = 60)]
    pub minutes: u64,
    /// Invocations of one app per trace minute at most (the rest are dropped and counted).
    #[arg(long, default_value_t = 30)]
    pub max_per_minute: u32,
    /// Seed of the placement of invocations within their minute.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The node.
    #[arg(long, env = "FOREWARM_URL", default_value = "http://127.0.0.1:7070")]
    pub url: String,
    /// The admin token.
    #[arg(long, env = "FOREWARM_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: String,
    /// Print one JSON object (ready, cluster, pool, invocations, errors) instead.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Trace directory (Azure Functions 2019 layout).
    #[arg(long)]
    pub trace: PathBuf,
    /// Hours to measure (default: to the end of the trace).
    #[arg(long)]
    pub hours: Option<f64>,
    /// Minutes replayed first as warm-up: policies learn from them, nothing is counted.
    #[arg(long, default_value_t = 0)]
    pub skip_minutes: u64,
    /// Keep apps whose popularity rank quantile lies in LO:HI (most popular first).
    #[arg(long, value_parser = parse_band)]
    pub app_band: Option<(f64, f64)>,
    /// Then draw N of those apps with the seed.
    #[arg(long)]
    pub sample: Option<usize>,
    /// Or run the N apps `forewarm replay --apps N` sends a live node (evenly spread over the
    /// band by invocations in the measured window) with its workloads: each invocation holds a
    /// 128 MiB container for its replayed CPU time times --speed (docs/simulator.md).
    #[arg(long, conflicts_with = "sample")]
    pub apps: Option<usize>,
    /// With --apps: the replay's --speed (trace minutes per real minute).
    #[arg(long, default_value_t = 60.0)]
    pub speed: f64,
    /// Policy to run (repeatable): no-unloading, keepalive-<N>m, hybrid-histogram-<H>h,
    /// forewarm (= forewarm-price4h), forewarm-price<H>h[-hold|-scaleout|-priced], forewarm-keep<P>, forewarm-<N>mib,
    /// spes (SPES's per-class windows), faascache-<N>gib, faascache-nofreq-<N>gib, oracle.
    /// Default: keepalive-10m, keepalive-60m, hybrid-histogram-1h,
    /// hybrid-histogram-4h, forewarm, oracle.
    /// With --regions, each may end in -isolated (each region alone) or -geo (regions within
    /// the latency budget share one pool); default: hybrid-histogram-4h-isolated,
    /// hybrid-histogram-4h, forewarm-isolated, forewarm, forewarm-geo.
    #[arg(long = "policy")]
    pub policies: Vec<String>,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Cold-start latency in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub cold_start_ms: u64,
    /// Per-invocation memory and size classes chosen from the predicted profile.
    #[arg(long)]
    pub profiles: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Write an SVG Pareto chart (waste vs p75 app cold-start %).
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Write one CSV row per application and policy: class, invocations, cold starts, idle
    /// memory-time, pre-warms and the class/reason the policy assigned.
    #[arg(long, value_name = "FILE.csv")]
    pub per_app: Option<PathBuf>,
    /// The policy the by-class summary compares every policy to.
    #[arg(long, default_value = "hybrid-histogram-4h")]
    pub class_reference: String,
    /// Spread each application's demand over the regions of this topology file (with prices)
    /// as the trace's regional demand says (`forewarm trace gen --regions`), route each
    /// request as the live Router does, and report latency and dollars.
    #[arg(long, value_name = "FILE")]
    pub regions: Option<PathBuf>,
    /// With --regions: how far (round trip, ms) a request may be sent from its region.
    #[arg(long, default_value_t = 100.0)]
    pub max_extra_latency_ms: f64,
    /// With --regions: data sent each way when a request is served in another region, KiB.
    #[arg(long, default_value_t = 32.0)]
    pub payload_kib: f64,
}

#[derive(Debug, Subcommand)]
pub enum TraceCommand {
    /// Write a synthetic trace with the published characteristics of the 2019 trace.
    Gen {
        /// Applications.
        #[arg(long)]
        apps: u32,
        /// Days.
        #[arg(long, default_value_t = 1)]
        days: u32,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Workload variant (docs/simulator.md): base, exponential, lognormal, pareto, timers,
        /// onoff, cycles, shifts, rare.
        #[arg(long, default_value = "base")]
        variant: Variant,
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Also write where each application's demand comes from over the regions of this
        /// topology file (every region needs `utc_offset_h`): regions.csv and app_regions.csv
        /// beside the trace, for `forewarm simulate --regions`.
        #[arg(long, value_name = "FILE")]
        regions: Option<PathBuf>,
        /// With --regions: mean share of an application's demand from outside its home region.
        #[arg(long, default_value_t = 0.3)]
        region_spread: f64,
        /// With --regions: fraction of applications used evenly in every region.
        #[arg(long, default_value_t = 0.1)]
        region_global: f64,
        /// With --regions: mean depth of the daily cycle (0 flat, 1 nothing at 02:00 local).
        #[arg(long, default_value_t = 0.5)]
        region_diurnal: f64,
    },
    /// Print a trace's characteristics beside the published ones.
    Stats {
        /// Trace directory.
        dir: PathBuf,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
}

fn parse_band(s: &str) -> Result<(f64, f64), String> {
    let (lo, hi) = s
        .split_once(':')
        .ok_or_else(|| format!("expected LO:HI such as 0.3:0.7, got {s:?}"))?;
    let num = |v: &str| {
        v.trim()
            .parse::<f64>()
            .map_err(|_| format!("{v:?} is not a number (expected LO:HI such as 0.3:0.7)"))
    };
    // The range itself is checked by `SimConfig::validate`.
    Ok((num(lo)?, num(hi)?))
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(format) = cli.log_format {
        crate::node_cmd::set_log_format(format);
    }
    match cli.command {
        Command::Completions { shell } => {
            // Into memory first: clap_complete panics when its writer fails (a closed pipe).
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "forewarm", &mut script);
            match std::io::Write::write_all(&mut std::io::stdout(), &script) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(anyhow::anyhow!("writing the completion script: {e}"))
                }
                _ => Ok(()),
            }
        }
        Command::Node { config, join } => crate::node_cmd::node(&config, join),
        Command::Up(args) => match args.regions.clone() {
            Some(topology) => crate::regions_cmd::up(args, &topology),
            None => crate::node_cmd::up(args),
        },
        Command::Invoke {
            code,
            url,
            token,
            body,
        } => crate::node_cmd::invoke(&code, &url, token, &body),
        Command::Proxy(args) => crate::regions_cmd::proxy(args),
        Command::Replay(args) => crate::replay_cmd::run(args),
        Command::Status(args) => crate::status_cmd::run(args),
        Command::Simulate(args) => crate::simulate_cmd::run(args),
        Command::Trace(TraceCommand::Gen {
            apps,
            days,
            seed,
            variant,
            out,
            regions,
            region_spread,
            region_global,
            region_diurnal,
        }) => {
            crate::trace_cmd::generate(apps, days, seed, &variant, &out)?;
            match regions {
                Some(topology) => {
                    let knobs = forewarm_trace::RegionalGen {
                        spread: region_spread,
                        global_share: region_global,
                        diurnal: region_diurnal,
                        seed,
                    };
                    crate::trace_cmd::regions(&out, &topology, &knobs)
                }
                None => Ok(()),
            }
        }
        Command::Trace(TraceCommand::Stats { dir, json }) => crate::trace_cmd::stats(&dir, json),
        Command::Cluster(ClusterCommand::Certs { out, node }) => {
            let names: Vec<&str> = node.iter().map(String::as_str).collect();
            forewarm_node::tls::ensure(&out, &names).map_err(anyhow::Error::msg)?;
            println!(
                "cluster CA and {} node certificates in {}",
                names.len(),
                out.display()
            );
            Ok(())
        }
        Command::Cluster(ClusterCommand::Ca { out }) => {
            forewarm_node::tls::new_ca(&out).map_err(anyhow::Error::msg)?;
            println!("cluster CA written to {}", out.display());
            Ok(())
        }
        Command::Cluster(ClusterCommand::Cert { ca, node, out }) => {
            let out = out.unwrap_or_else(|| ca.clone());
            let files =
                forewarm_node::tls::node_cert(&ca, &node, &out).map_err(anyhow::Error::msg)?;
            println!(
                "[cluster.tls]\nca = {:?}\ncert = {:?}\nkey = {:?}",
                files.ca, files.cert, files.key
            );
            Ok(())
        }
        Command::Bench(BenchCommand::Node(args)) => {
            crate::bench_cmd::node(args.options(), args.json)
        }
        Command::Bench(BenchCommand::Cluster {
            writes,
            failovers,
            heartbeat_ms,
            election_ms,
            data_dir,
            tls,
            json,
        }) => {
            let mut timing = forewarm_node::ClusterConfig::default();
            if let Some(h) = heartbeat_ms {
                timing.heartbeat_ms = h;
            }
            if let Some((lo, hi)) = election_ms {
                (timing.election_min_ms, timing.election_max_ms) = (lo, hi);
            }
            let opts = crate::cluster_bench_cmd::ClusterBenchOptions {
                writes,
                failovers,
                timing,
                data_dir,
                tls,
            };
            crate::cluster_bench_cmd::cluster(opts, json)
        }
        Command::Bench(BenchCommand::Docker {
            rounds,
            warm,
            image,
            init_ms,
            json,
        }) => crate::bench_cmd::docker(rounds, warm, image, init_ms, json),
    }
}

/// `LO:HI` milliseconds.
fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (lo, hi) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?} is not LO:HI"))?;
    let lo: u64 = lo
        .parse()
        .map_err(|_| format!("{lo:?} is not a number of ms"))?;
    let hi: u64 = hi
        .parse()
        .map_err(|_| format!("{hi:?} is not a number of ms"))?;
    if lo >= hi {
        return Err(format!("{s}: LO must be below HI"));
    }
    Ok((lo, hi))
}
