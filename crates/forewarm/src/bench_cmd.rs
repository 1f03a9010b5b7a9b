//! `forewarm bench docker`.

use anyhow::Context;
use forewarm_runtime::bench::cold_vs_warm;
use forewarm_runtime::{ContainerSpec, DockerRuntime, SizeClass, Workload};

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
