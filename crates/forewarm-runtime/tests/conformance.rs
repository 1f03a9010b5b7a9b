//! The conformance suite against the in-memory fake and against real Docker.
//!
//! The Docker cases need a Docker engine and the runner image (`make images`; `make test` does
//! both). Where either is missing they fail with the reason, they do not skip.

use forewarm_runtime::conformance;
use forewarm_runtime::{DockerRuntime, FakeRuntime};

fn image() -> String {
    std::env::var("FOREWARM_RUNNER_IMAGE")
        .unwrap_or_else(|_| format!("forewarm/runner:{}", env!("CARGO_PKG_VERSION")))
}

fn node(case: &str) -> String {
    format!("conf-{case}-{}", std::process::id())
}

async fn docker() -> DockerRuntime {
    let rt = DockerRuntime::connect()
        .await
        .unwrap_or_else(|e| panic!("these tests need a Docker engine: {e}"));
    let image = image();
    assert!(
        rt.has_image(&image).await.expect("inspect image"),
        "image {image} is missing: build it with `make images`"
    );
    rt
}

#[tokio::test(start_paused = true)]
async fn fake_lifecycle() {
    conformance::lifecycle(&FakeRuntime::new(), &node("lifecycle"), "fake").await;
}

#[tokio::test(start_paused = true)]
async fn fake_reaps_what_is_not_owned() {
    conformance::reaps_what_is_not_owned(&FakeRuntime::new(), &node("reap"), "fake").await;
}

#[tokio::test(start_paused = true)]
async fn fake_memory_over_the_class_fails() {
    conformance::memory_over_the_class_fails(&FakeRuntime::new(), &node("mem"), "fake").await;
}

#[tokio::test(start_paused = true)]
async fn fake_tenants_are_separated() {
    conformance::tenants_are_separated(&FakeRuntime::new(), &node("tenants"), "fake").await;
}

#[tokio::test]
async fn docker_lifecycle() {
    conformance::lifecycle(&docker().await, &node("d-lifecycle"), &image()).await;
}

#[tokio::test]
async fn docker_reaps_what_is_not_owned() {
    conformance::reaps_what_is_not_owned(&docker().await, &node("d-reap"), &image()).await;
}

#[tokio::test]
async fn docker_memory_over_the_class_fails() {
    conformance::memory_over_the_class_fails(&docker().await, &node("d-mem"), &image()).await;
}

#[tokio::test]
async fn docker_tenants_are_separated() {
    conformance::tenants_are_separated(&docker().await, &node("d-tenants"), &image()).await;
}

#[tokio::test]
async fn docker_missing_image_is_a_clear_error() {
    let rt = docker().await;
    let spec = conformance::spec(&node("d-noimage"), "t1", "c1", "forewarm/does-not-exist:0");
    let err = forewarm_runtime::ContainerRuntime::start(&rt, &spec)
        .await
        .expect_err("no such image");
    assert!(err.to_string().contains("make images"), "{err}");
}

#[tokio::test]
async fn docker_builds_the_runner_image_on_first_use() {
    let rt = docker().await;
    let binary = std::env::var("FOREWARM_RUNNER_BIN").map_or_else(
        |_| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/x86_64-unknown-linux-gnu/release/forewarm-runner")
        },
        std::path::PathBuf::from,
    );
    assert!(
        binary.exists(),
        "static runner binary {} is missing: build it with `make images`",
        binary.display()
    );
    let image = format!("forewarm/runner-buildtest:{}", std::process::id());
    rt.remove_image(&image).await.expect("clean slate");
    assert!(
        rt.ensure_runner_image(&image, &binary)
            .await
            .expect("build"),
        "built"
    );
    assert!(
        !rt.ensure_runner_image(&image, &binary)
            .await
            .expect("present"),
        "not twice"
    );
    // The image it built runs the protocol.
    conformance::lifecycle(&rt, &node("d-built"), &image).await;
    rt.remove_image(&image).await.expect("remove image");
    assert!(!rt.has_image(&image).await.expect("inspect"));
}

/// `docker` with `args`, its stdout (panics with stderr on failure).
fn docker_cli(args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("docker")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("docker CLI");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("writes");
    }
    drop(input);
    let out = child.wait_with_output().expect("docker runs");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A workload container runs as `nobody` even when its image says root, with a read-only
/// root, every capability dropped, no new privileges, forewarm's seccomp profile (named in its
/// configuration, in force in the kernel), not privileged, and nothing of the host mounted (no
/// Docker socket).
#[tokio::test]
async fn docker_workloads_run_hardened_as_nobody_whatever_the_image_says() {
    let rt = docker().await;
    // The runner image made to run as root: the node must override it.
    let root_image = format!("forewarm/runner-as-root:{}", std::process::id());
    docker_cli(
        &["build", "-q", "-t", &root_image, "-"],
        Some(&format!("FROM {}\nUSER 0:0\n", image())),
    );
    let spec = conformance::spec(&node("d-hardened"), "t1", "c1", &root_image);
    let started = forewarm_runtime::ContainerRuntime::start(&rt, &spec).await;
    let inspected = started.as_ref().map(|c| {
        docker_cli(
            &[
                "inspect",
                "--format",
                "{{.Config.User}}|{{.HostConfig.ReadonlyRootfs}}|{{.HostConfig.CapDrop}}|\
                 {{json .HostConfig.SecurityOpt}}|{{.HostConfig.Privileged}}|{{.HostConfig.Binds}}|\
                 {{len .Mounts}}|{{.State.Pid}}",
                &c.id,
            ],
            None,
        )
    });
    // The kernel's view of the workload's process: a seccomp filter in force, no new
    // privileges, no capabilities (read from the host's /proc while it runs).
    let status = inspected.as_ref().ok().map(|i| {
        let pid = i.rsplit('|').next().unwrap_or_default().to_owned();
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"))
    });
    if let Ok(c) = &started {
        forewarm_runtime::ContainerRuntime::remove(&rt, &c.id)
            .await
            .expect("remove");
    }
    forewarm_runtime::ContainerRuntime::forget_tenant(&rt, &spec.tenant)
        .await
        .expect("network removed");
    rt.remove_image(&root_image).await.expect("remove image");
    let inspected = inspected.expect("starts and answers as nobody");
    let fields: Vec<&str> = inspected.split('|').collect();
    let status = status.expect("read while it ran");
    for line in ["Seccomp:\t2", "NoNewPrivs:\t1", "CapEff:\t0000000000000000"] {
        assert!(
            status.lines().any(|l| l == line),
            "{line:?} not in the workload's status: {status}"
        );
    }
    assert_eq!(fields[0], forewarm_runtime::WORKLOAD_USER, "{inspected}");
    assert_eq!(fields[1], "true", "read-only root: {inspected}");
    assert!(
        fields[2].contains("ALL"),
        "capabilities dropped: {inspected}"
    );
    // forewarm's own profile, named explicitly (not the engine's default, not unconfined).
    let opts: Vec<String> = serde_json::from_str(fields[3]).expect("SecurityOpt is JSON");
    assert!(
        opts.iter().any(|o| o.starts_with("no-new-privileges")),
        "{inspected}"
    );
    assert!(
        opts.iter()
            .any(|o| o.strip_prefix("seccomp=") == Some(forewarm_runtime::WORKLOAD_SECCOMP)),
        "{inspected}"
    );
    assert_eq!(fields[4], "false", "{inspected}");
    assert_eq!(fields[5], "[]", "no host paths: {inspected}");
    assert_eq!(
        fields[6], "0",
        "nothing mounted (its /tmp is a tmpfs): {inspected}"
    );
}

/// Tenant networks take their /24s from the node's range, not Docker's default pools (about
/// 30 networks per engine, which the test suite's tenants once used up in CI): a full range is
/// a clear error, and a tenant that leaves frees its /24.
#[tokio::test]
async fn docker_tenant_networks_take_their_subnets_from_the_range() {
    use forewarm_runtime::ContainerRuntime;
    // Two /24s, outside the default range that parallel tests use.
    let range: forewarm_runtime::TenantSubnets = "10.214.6.0/23".parse().expect("range");
    let prefix = "forewarm-tenant-conf-d-subnets-";
    // What an earlier failed run of this test may have left holds the range.
    for left in docker_cli(
        &["network", "ls", "-q", "--filter", &format!("name={prefix}")],
        None,
    )
    .split_whitespace()
    {
        docker_cli(&["network", "rm", left], None);
    }
    let rt = docker().await.with_tenant_subnets(range);
    let node = node("d-subnets");
    let spec = |t: &str| conformance::spec(&node, t, "c1", &image());
    let subnet_of = |t: &str| {
        let network = forewarm_runtime::tenant_network(&spec(t).tenant);
        let format = "{{range .IPAM.Config}}{{.Subnet}}{{end}}";
        docker_cli(&["network", "inspect", "--format", format, &network], None)
    };
    let a = rt.start(&spec("ta")).await.expect("first /24");
    let b = rt.start(&spec("tb")).await.expect("second /24");
    let full = rt.start(&spec("tc")).await;
    let freed = subnet_of("ta");
    let mut taken = [freed.clone(), subnet_of("tb")];
    taken.sort();
    assert_eq!(taken, ["10.214.6.0/24", "10.214.7.0/24"]);
    rt.remove(&a.id).await.expect("remove");
    rt.forget_tenant(&a.spec.tenant).await.expect("forget ta");
    let c = rt.start(&spec("tc")).await.expect("the freed /24");
    let c_subnet = subnet_of("tc");
    for x in [b, c] {
        rt.remove(&x.id).await.expect("cleanup");
        rt.forget_tenant(&x.spec.tenant).await.expect("cleanup");
    }
    let err = full
        .expect_err("a third tenant in a range of two")
        .to_string();
    assert!(
        err.contains("every /24 of tenant_subnets 10.214.6.0/23 is taken (2 networks)"),
        "{err}"
    );
    assert_eq!(c_subnet, freed);
}

/// What `forewarm/probe:test` (`make images`; `FOREWARM_PROBE_IMAGE`) run on `network` says of
/// each address: `true` where a TCP connection succeeded.
fn probe_from(network: &str, addrs: &[String]) -> Vec<(String, bool)> {
    let image =
        std::env::var("FOREWARM_PROBE_IMAGE").unwrap_or_else(|_| "forewarm/probe:test".into());
    let mut args = vec![
        "run",
        "--rm",
        "--network",
        network,
        "--user",
        "65534:65534",
        &image,
    ];
    args.extend(addrs.iter().map(String::as_str));
    let out = docker_cli(&args, None);
    addrs
        .iter()
        .map(|addr| {
            let line = out
                .lines()
                .find(|l| l.split_whitespace().next() == Some(addr))
                .unwrap_or_else(|| panic!("the probe said nothing of {addr}: {out}"));
            (addr.clone(), line.split_whitespace().nth(1) == Some("open"))
        })
        .collect()
}

/// From inside a container on tenant A's network (the probe, as a workload would): A's own
/// runner answers (the control: the probe can reach what it should), while tenant B's runner
/// and a service listening on every interface of the host (as a node with `listen =
/// "0.0.0.0:…"` would, reached through A's network's gateway address) do not.
#[tokio::test]
async fn docker_a_workload_reaches_neither_another_tenant_nor_the_host() {
    let rt = docker().await;
    let node = node("d-reach");
    let start = |tenant: &'static str| {
        let spec = conformance::spec(&node, tenant, "c1", &image());
        let rt = &rt;
        async move {
            forewarm_runtime::ContainerRuntime::start(rt, &spec)
                .await
                .expect("starts")
        }
    };
    let (a, b) = (start("ta").await, start("tb").await);
    let host = std::net::TcpListener::bind("0.0.0.0:0").expect("a host listener");
    let port = host.local_addr().expect("addr").port();
    let listed = forewarm_runtime::ContainerRuntime::list(&rt, &node)
        .await
        .expect("list");
    let network = |id: &str| {
        listed
            .iter()
            .find(|l| l.id == id)
            .map(|l| l.network.clone())
            .expect("listed")
    };
    let net_a = network(&a.id);
    assert_ne!(net_a, network(&b.id), "tenants share a network");
    // The host's addresses a container could try: its own network's gateway (the bridge's
    // address on the host: `.1` of the subnet when Docker reports none) and the default
    // bridge's.
    let gateway = |net: &str| {
        let ipam = docker_cli(
            &[
                "network",
                "inspect",
                "--format",
                "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}",
                net,
            ],
            None,
        );
        let mut parts = ipam.split_whitespace();
        let subnet = parts.next().expect("a subnet");
        parts.next().map(str::to_owned).unwrap_or_else(|| {
            let base = subnet.split('/').next().expect("an address");
            let octets: Vec<&str> = base.split('.').collect();
            format!("{}.{}.{}.1", octets[0], octets[1], octets[2])
        })
    };
    let mut targets = vec![a.endpoint.to_string(), b.endpoint.to_string()];
    for host_ip in [gateway(&net_a), gateway("bridge")] {
        targets.push(format!("{host_ip}:{port}"));
    }
    let seen = probe_from(&net_a, &targets);
    for c in [&a, &b] {
        forewarm_runtime::ContainerRuntime::remove(&rt, &c.id)
            .await
            .expect("cleanup");
        forewarm_runtime::ContainerRuntime::forget_tenant(&rt, &c.spec.tenant)
            .await
            .expect("cleanup");
    }
    assert!(
        seen[0].1,
        "its own tenant's runner must answer (the control): {seen:?}"
    );
    assert!(
        seen[1..].iter().all(|(_, open)| !open),
        "a workload of tenant A reached another tenant or the host: {seen:?}"
    );
}
