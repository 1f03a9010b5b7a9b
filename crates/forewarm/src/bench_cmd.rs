//! `forewarm bench docker`.

use anyhow::Context;
use forewarm_runtime::{ContainerSpec, DockerRuntime, SizeClass, Workload};
use forewarm_tools::cold_warm::cold_vs_warm;

pub fn docker(
    rounds: usize,
    warm: usize,
    image: String,
    init_ms: u64,
    json: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(rounds > 0, "--rounds must be at least 1");
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        let docker = DockerRuntime::connect().await?;
        let spec = ContainerSpec {
            node: format!("bench-{}", std::process::id()),
            tenant: format!("bench-{}", std::process::id()),
            code: "noop".into(),
            class: SizeClass {
                memory_mib: 128,
                cpu_millis: 1000,
            },
            image,
            workload: Workload {
                init_ms,
                ..Workload::default()
            },
        };
        let result = cold_vs_warm(&docker, &spec, rounds, warm).await;
        forewarm_runtime::ContainerRuntime::forget_tenant(&docker, &spec.tenant).await?;
        let r = result?;
        if json {
            println!("{}", serde_json::to_string(&r)?);
        } else {
            println!(
                "{:<34} {:>6} {:>10} {:>10}",
                "start", "n", "p50 ms", "p99 ms"
            );
            println!(
                "{:<34} {:>6} {:>10.2} {:>10.2}",
                format!("cold (init {init_ms} ms)"),
                r.cold.n,
                r.cold.p50,
                r.cold.p99
            );
            println!(
                "{:<34} {:>6} {:>10.2} {:>10.2}",
                "warm / pre-warmed", r.warm.n, r.warm.p50, r.warm.p99
            );
            println!(
                "cold p50 / warm p50 = {:.0}x",
                r.cold.p50 / r.warm.p50.max(1e-9)
            );
        }
        Ok(())
    })
}

pub fn node(opts: forewarm_tools::node_bench::BenchOptions, json: bool) -> anyhow::Result<()> {
    crate::node_cmd::init_logs();
    anyhow::ensure!(
        opts.cold > 0 && opts.periodic > 0 && opts.rounds > 0 && opts.overhead > 0,
        "--cold, --periodic, --rounds and --overhead must be at least 1"
    );
    anyhow::ensure!(
        opts.concurrency > 0 && opts.seconds > 0,
        "--concurrency and --seconds must be at least 1"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let docker = std::sync::Arc::new(DockerRuntime::connect().await?);
        let for_node = std::sync::Arc::new(DockerRuntime::connect().await?);
        let tenant = forewarm_tools::node_bench::tenant_name();
        let result = forewarm_tools::node_bench::run(for_node, docker.clone(), &opts).await;
        // Docker sometimes keeps a stale endpoint after many concurrent removals; the network
        // is then left behind, which is not worth failing the measurement for.
        if let Err(e) =
            forewarm_runtime::ContainerRuntime::forget_tenant(docker.as_ref(), &tenant).await
        {
            eprintln!("warning: network of {tenant} not removed: {e}");
        }
        let r = result.map_err(anyhow::Error::msg)?;
        if json {
            println!("{}", serde_json::to_string(&r)?);
            return Ok(());
        }
        println!(
            "{:<34} {:>6} {:>10} {:>10}",
            "through the node", "n", "p50 ms", "p99 ms"
        );
        for (name, p) in [
            (format!("cold (init {} ms)", opts.init_ms), r.cold),
            (String::from("pre-warmed"), r.prewarmed),
            (String::from("warm"), r.warm),
            (String::from("direct to the runner"), r.direct),
        ] {
            println!("{name:<34} {:>6} {:>10.2} {:>10.2}", p.n, p.p50, p.p99);
        }
        println!(
            "pre-warmed p50 / cold p50 = 1/{:.0}; periodic starts not pre-warmed: {}",
            r.cold.p50 / r.prewarmed.p50.max(1e-9),
            r.periodic_not_prewarmed
        );
        println!(
            "gateway overhead: p50 {:.3} ms, p99 {:.3} ms",
            r.overhead_p50_ms, r.overhead_p99_ms
        );
        println!(
            "warm no-op throughput: {:.0}/s with {} clients ({} errors, {} cold starts)",
            r.throughput_per_s, r.concurrency, r.throughput_errors, r.throughput_cold_starts
        );
        println!(
            "same load straight to containers: {:.0}/s (node / direct = {:.2})",
            r.direct_throughput_per_s,
            r.throughput_per_s / r.direct_throughput_per_s.max(1e-9)
        );
        println!(
            "same load through a byte relay (one hop, no logic): {:.0}/s (node / relay = {:.2})",
            r.relay_throughput_per_s,
            r.throughput_per_s / r.relay_throughput_per_s.max(1e-9)
        );
        if let Some(e) = &r.first_error {
            println!("first error: {e}");
        }
        Ok(())
    })
}
