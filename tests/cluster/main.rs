//! A three-region cluster of node containers (testcontainers, the locally built
//! `forewarm/node` image) on a private Docker network, with a delay proxy container in front
//! of eu-west. Needs Docker and `make images` (the node and runner images); `.ci/run` builds
//! them.
//!
//! What it shows: the cluster forms and elects a leader; a tenant created on one node is
//! readable on all; a request homed in us-east, with no warm container there but a warm fit in
//! eu-west 20 ms away, runs in eu-west; killing the leader elects a new one and writes go on;
//! the killed node, started again, keeps its state and catches up; with eu-west 500 ms away
//! (more than a cold start) the request runs in us-east, cold.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use forewarm_tests::{Answer, call, json, try_call};
use serde_json::Value;
use testcontainers::core::{IntoContainerPort, Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

const ADMIN: &str = "containers-test-admin";
const SECRET: &str = "containers-test-secret";
const API_PORT: u16 = 8080;
const PROXY_PORT: u16 = 9000;
const CONTROL_PORT: u16 = 9001;

/// `forewarm/node:<version>`, or FOREWARM_NODE_IMAGE (`make test` sets it).
fn node_image() -> (String, String) {
    let image = std::env::var("FOREWARM_NODE_IMAGE")
        .unwrap_or_else(|_| format!("forewarm/node:{}", env!("CARGO_PKG_VERSION")));
    let (name, tag) = image.rsplit_once(':').unwrap_or((image.as_str(), "latest"));
    (name.to_owned(), tag.to_owned())
}

fn image() -> GenericImage {
    let (name, tag) = node_image();
    GenericImage::new(name, tag)
}

/// One node container and where its API is published on this host.
struct NodeBox {
    name: String,
    node_id: String,
    container: ContainerAsync<GenericImage>,
    api: SocketAddr,
}

impl NodeBox {
    /// Start `forewarm node` as container `name` on `network`, advertising `advertise` and
    /// joining through `join`; returns once it listens.
    async fn start(
        network: &str,
        name: String,
        node_id: String,
        region: &'static str,
        advertise: &str,
        join: Option<&str>,
    ) -> Self {
        let join = join.map_or(String::new(), |j| format!("join = [\"{j}\"]\n"));
        // Delays of up to 500 ms on one link must not cost elections: heartbeats keep
        // arriving (late), and a follower waits 1-2 s before it stands.
        let config = format!(
            "node_id = \"{node_id}\"\nregion = \"{region}\"\nlisten = \"0.0.0.0:{API_PORT}\"\n\
             data_dir = \"/data\"\ncontainer = \"{name}\"\n[cluster]\nadvertise = \"{advertise}\"\n\
             {join}heartbeat_ms = 100\nelection_min_ms = 1000\nelection_max_ms = 2000\n"
        );
        let api = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let container = image()
            .with_wait_for(WaitFor::message_on_stdout("listening on http://"))
            .with_network(network)
            .with_container_name(&name)
            .with_mount(Mount::bind_mount(
                "/var/run/docker.sock",
                "/var/run/docker.sock",
            ))
            .with_copy_to("/etc/forewarm/node.toml", config.into_bytes())
            .with_env_var("FOREWARM_CLUSTER_SECRET", SECRET)
            .with_env_var("FOREWARM_ADMIN_TOKEN", ADMIN)
            .with_env_var("FOREWARM_LOG", "warn")
            .with_mapped_port(api.port(), API_PORT.tcp())
            .with_startup_timeout(Duration::from_secs(60))
            .start()
            .await
            .unwrap_or_else(|e| panic!("starting {name}: {e} (did `make images` run?)"));
        Self {
            name,
            node_id,
            container,
            api,
        }
    }

    /// Start the stopped container again (same file system, so the same data) and wait
    /// until it answers.
    async fn restart(&mut self) {
        self.container.start().await.expect("restarting the node");
        let begun = Instant::now();
        while try_call(self.api, "GET", "/healthz", None, "")
            .await
            .is_none_or(|a| a.status != 200)
        {
            assert!(
                begun.elapsed() < Duration::from_secs(60),
                "{} does not answer after a restart",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A clean stop: the node removes its workload containers.
    async fn stop(&self) {
        let _ = self.container.stop_with_timeout(Some(30)).await;
    }
}

/// A free port on this host's loopback (published ports are chosen here: with IPv4 and IPv6
/// the engine may publish one container port on two different host ports).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Workload containers of these nodes, removed when the test ends however it ends (a clean
/// stop of a node removes its own; a failed test kills nodes without one).
struct Leftovers(Vec<String>);

impl Drop for Leftovers {
    fn drop(&mut self) {
        for node in &self.0 {
            let out = std::process::Command::new("docker")
                .args([
                    "ps",
                    "-aq",
                    "--filter",
                    &format!("label=forewarm.node={node}"),
                ])
                .output();
            let ids: Vec<String> = out
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            if !ids.is_empty() {
                let _ = std::process::Command::new("docker")
                    .args(["rm", "-f"])
                    .args(&ids)
                    .output();
            }
        }
    }
}

async fn admin(n: &NodeBox, method: &str, path: &str, body: &str) -> Answer {
    call(n.api, method, path, Some(ADMIN), body).await
}

async fn view(n: &NodeBox) -> Value {
    json(&admin(n, "GET", "/v1/cluster", "").await)
}

/// This node's RTT EWMA to `region`, ms.
async fn rtt_to(n: &NodeBox, region: &str) -> Option<f64> {
    view(n).await["members"]
        .as_array()?
        .iter()
        .find(|m| m["region"] == region)?["rtt_ms"]
        .as_f64()
}

/// Poll `check` every 200 ms until it gives `Some`, for at most `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let begun = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(begun.elapsed() < limit, "{what} after {limit:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The leader's name, once every node in `nodes` names the same one among `nodes`' members.
async fn agreed_leader(nodes: &[&NodeBox], members: usize) -> String {
    eventually("no agreed leader", Duration::from_secs(30), || async {
        let mut leader = None;
        for n in nodes {
            let v = view(n).await;
            let name = v["leader_name"].as_str()?.to_owned();
            if v["members"].as_array()?.len() != members
                || leader.get_or_insert(name.clone()) != &name
            {
                return None;
            }
        }
        leader
    })
    .await
}

async fn invoke(n: &NodeBox, token: &str) -> Value {
    let a = call(n.api, "POST", "/v1/invoke/f", Some(token), "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    json(&a)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t01_three_regions_in_containers() {
    let run = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros())
            ^ u128::from(std::process::id())
    );
    let network = format!("fw-tc-{run}");
    let name = |region: &str| format!("fw-tc-{run}-{region}");
    // Node transport sessions are dialed by the member whose name sorts first, so eu-west's
    // name sorts last: its sessions go through its proxy. (A real link delays both ways; one
    // proxy in front of one node delays only what is dialed through it.)
    let id = |region: &str| {
        let order = ["us-east", "ap-south", "eu-west"]
            .iter()
            .position(|r| *r == region)
            .unwrap_or(9);
        format!("n{order}-{region}-{run}")
    };
    let _leftovers = Leftovers(["us-east", "eu-west", "ap-south"].map(id).to_vec());

    // eu-west is reached by the others only through a delay proxy: 10 ms each way.
    let proxy_name = name("eu-west-proxy");
    let control = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let _proxy = image()
        .with_wait_for(WaitFor::message_on_stdout("delay proxy"))
        .with_mapped_port(control.port(), CONTROL_PORT.tcp())
        .with_network(&network)
        .with_container_name(&proxy_name)
        .with_cmd([
            "proxy".to_owned(),
            "--listen".to_owned(),
            format!("0.0.0.0:{PROXY_PORT}"),
            "--to".to_owned(),
            format!("{}:{API_PORT}", name("eu-west")),
            "--delay-ms".to_owned(),
            "10".to_owned(),
            "--control".to_owned(),
            format!("0.0.0.0:{CONTROL_PORT}"),
        ])
        .start()
        .await
        .expect("starting the delay proxy (did `make images` run?)");

    let a_addr = format!("{}:{API_PORT}", name("us-east"));
    let us = NodeBox::start(
        &network,
        name("us-east"),
        id("us-east"),
        "us-east",
        &a_addr,
        None,
    )
    .await;
    let eu = NodeBox::start(
        &network,
        name("eu-west"),
        id("eu-west"),
        "eu-west",
        &format!("{proxy_name}:{PROXY_PORT}"),
        Some(&a_addr),
    )
    .await;
    let ap_addr = format!("{}:{API_PORT}", name("ap-south"));
    let ap = NodeBox::start(
        &network,
        name("ap-south"),
        id("ap-south"),
        "ap-south",
        &ap_addr,
        Some(&a_addr),
    )
    .await;

    // The cluster forms: three voters, one leader every node names.
    let leader = agreed_leader(&[&us, &eu, &ap], 3).await;
    let v = view(&eu).await;
    let regions: Vec<&str> = v["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["region"].as_str())
        .collect();
    assert_eq!(regions.len(), 3, "{v}");
    for r in ["us-east", "eu-west", "ap-south"] {
        assert!(regions.contains(&r), "{v}");
    }

    // The node transport: every node reaches the other two's PoolLink and RouterLink process
    // groups (per region and per node) over its ractor_cluster session with them.
    for n in [&us, &eu, &ap] {
        eventually(
            &format!("{} does not reach the others' process groups", n.name),
            Duration::from_secs(20),
            || async {
                let v = view(n).await;
                let members = v["members"].as_array()?;
                let reached: Vec<usize> = members
                    .iter()
                    .filter(|m| m["name"] != n.node_id.as_str())
                    .map(|m| m["groups"].as_array().map_or(0, Vec::len))
                    .collect();
                (reached == [4, 4]).then_some(())
            },
        )
        .await;
    }

    // A tenant created on ap-south (forwarded to the leader) is readable on every node.
    let created = admin(&ap, "POST", "/v1/tenants", r#"{"name":"acme"}"#).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let token = json(&created)["token"].as_str().expect("token").to_owned();
    for n in [&us, &eu, &ap] {
        let got = admin(n, "GET", "/v1/tenants/acme", "").await;
        assert_eq!(got.status, 200, "{} on {}", got.body, n.name);
    }

    // f registered on us-east; eu-west runs it once (cold) and keeps the container warm,
    // learns its cold start and shares the model.
    let put = call(
        us.api,
        "PUT",
        "/v1/codes/f",
        Some(&token),
        r#"{"workload":{"cpu_ms":1},"max_memory_mib":128}"#,
    )
    .await;
    assert_eq!(put.status, 201, "{}", put.body);
    eventually(
        "f never reached eu-west",
        Duration::from_secs(10),
        || async {
            let a = call(eu.api, "GET", "/v1/codes/f/prediction", Some(&token), "").await;
            (a.status == 200).then_some(())
        },
    )
    .await;
    let first = invoke(&eu, &token).await;
    assert_eq!(
        (first["start"].as_str(), first["region"].as_str()),
        (Some("cold"), Some("eu-west")),
        "{first}"
    );
    let trained = call(
        eu.api,
        "GET",
        "/v1/codes/f/prediction?train=true",
        Some(&token),
        "",
    )
    .await;
    assert_eq!(trained.status, 200, "{}", trained.body);

    // us-east has nothing warm; eu-west's warm fit is 20 ms away: the request runs there.
    eventually(
        "no RTT to eu-west or no shared model",
        Duration::from_secs(20),
        || async {
            let rtt = rtt_to(&us, "eu-west").await?;
            let p = call(us.api, "GET", "/v1/codes/f/prediction", Some(&token), "").await;
            let shared = json(&p)["shared"].as_array().is_some_and(|s| !s.is_empty());
            (rtt >= 15.0 && shared).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await; // a fresh inventory
    let near = invoke(&us, &token).await;
    assert_eq!(
        (near["start"].as_str(), near["region"].as_str()),
        (Some("warm"), Some("eu-west")),
        "{near}"
    );

    // Kill the leader (SIGKILL): the other two elect a new one and writes go on.
    let mut nodes = [us, eu, ap];
    let killed = nodes
        .iter()
        .position(|n| n.node_id == leader)
        .expect("the leader is one of the three");
    nodes[killed]
        .container
        .stop_with_timeout(Some(0))
        .await
        .expect("killing the leader");
    let killed_at = Instant::now();
    let survivors: Vec<&NodeBox> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != killed)
        .map(|(_, n)| n)
        .collect();
    let new_leader = eventually("no new leader", Duration::from_secs(30), || async {
        let mut named = None;
        for n in &survivors {
            let name = view(n).await["leader_name"].as_str()?.to_owned();
            if name == leader || named.get_or_insert(name.clone()) != &name {
                return None;
            }
        }
        named
    })
    .await;
    eprintln!("new leader {new_leader} after {:?}", killed_at.elapsed());
    let created = admin(survivors[0], "POST", "/v1/tenants", r#"{"name":"globex"}"#).await;
    assert_eq!(created.status, 201, "{}", created.body);

    // The killed node starts again with its data: it keeps what it had and catches up.
    nodes[killed].restart().await;
    let back = &nodes[killed];
    for tenant in ["acme", "globex"] {
        let got = admin(back, "GET", &format!("/v1/tenants/{tenant}"), "").await;
        assert_eq!(got.status, 200, "{tenant} on {}: {}", back.name, got.body);
    }
    let members = eventually(
        "the restarted node sees no leader",
        Duration::from_secs(30),
        || async {
            let v = view(back).await;
            (!v["leader_name"].is_null()).then(|| v["members"].as_array().map_or(0, Vec::len))
        },
    )
    .await;
    assert_eq!(members, 3);
    let [us, eu, ap] = nodes;

    // eu-west 500 ms away each way, far more than a cold start: us-east runs it, cold.
    let set = call(control, "PUT", "/delay", None, r#"{"one_way_ms":500}"#).await;
    assert_eq!(set.status, 204, "{}", set.body);
    eventually(
        "the RTT to eu-west did not rise",
        Duration::from_secs(40),
        || async { rtt_to(&us, "eu-west").await.filter(|r| *r > 900.0) },
    )
    .await;
    let local = invoke(&us, &token).await;
    assert_eq!(
        (local["start"].as_str(), local["region"].as_str()),
        (Some("cold"), Some("us-east")),
        "{local}"
    );

    // Clean stops: every node removes its workload containers.
    for n in [&us, &eu, &ap] {
        n.stop().await;
    }
}
