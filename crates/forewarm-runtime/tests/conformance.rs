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
