//! The contract every [`ContainerRuntime`] keeps, as async checks that panic with a reason.
//!
//! `crates/forewarm-runtime/tests/` runs each check against [`crate::FakeRuntime`] and
//! [`crate::DockerRuntime`]; a new runtime runs them too. Each check uses its own `node` id so
//! checks can run in parallel on one engine.

use std::collections::HashSet;

use crate::{
    ContainerRuntime, ContainerSpec, SizeClass, Workload, WorkloadOverrides, reap_unowned,
};

/// A spec for the runner image with a small workload. The tenant name is scoped by the node
/// so parallel checks never share a tenant.
pub fn spec(node: &str, tenant: &str, code: &str, image: &str) -> ContainerSpec {
    ContainerSpec {
        node: node.into(),
        tenant: format!("{node}.{tenant}"),
        code: code.into(),
        class: SizeClass {
            memory_mib: 128,
            cpu_millis: 500,
        },
        image: image.into(),
        workload: Workload {
            cpu_ms: 20,
            mem_mib: 8,
            io_kib: 16,
            init_ms: 200,
            ..Workload::default()
        },
    }
}

/// Start → listed with its labels → invoke measures real usage → remove → gone; removing
/// again is fine.
pub async fn lifecycle<R: ContainerRuntime>(rt: &R, node: &str, image: &str) {
    let c = rt
        .start(&spec(node, "t1", "c1", image))
        .await
        .expect("start");
    let listed = rt.list(node).await.expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    let l = &listed[0];
    assert_eq!(
        (&l.id, &l.tenant, l.code.as_str()),
        (&c.id, &c.spec.tenant, "c1")
    );
    assert_eq!(l.class, "500m-128Mi");
    assert!(l.running);
    let usage = rt
        .invoke(&c, &WorkloadOverrides::default())
        .await
        .expect("invoke");
    assert!(usage.cpu_ms >= 20.0, "{usage:?}");
    assert!(usage.peak_mib >= 8.0, "{usage:?}");
    assert_eq!(usage.io_kib, 16);
    let more = rt
        .invoke(
            &c,
            &WorkloadOverrides {
                cpu_ms: Some(60),
                ..WorkloadOverrides::default()
            },
        )
        .await
        .expect("invoke with overrides");
    assert!(more.cpu_ms >= 60.0, "{more:?}");
    rt.remove(&c.id).await.expect("remove");
    assert!(rt.list(node).await.expect("list").is_empty());
    rt.remove(&c.id).await.expect("removing twice is fine");
    rt.forget_tenant(&c.spec.tenant)
        .await
        .expect("forget tenant");
}

/// Containers of `node` that the node does not own are removed; others are kept.
pub async fn reaps_what_is_not_owned<R: ContainerRuntime>(rt: &R, node: &str, image: &str) {
    let keep = rt
        .start(&spec(node, "t1", "keep", image))
        .await
        .expect("start");
    let leak = rt
        .start(&spec(node, "t1", "leak", image))
        .await
        .expect("start");
    let other_node = format!("{node}-other");
    let other = rt
        .start(&spec(&other_node, "t1", "theirs", image))
        .await
        .expect("start");
    let owned = HashSet::from([keep.id.clone()]);
    let removed = reap_unowned(rt, node, &owned).await.expect("reap");
    assert_eq!(removed, vec![leak.id.clone()]);
    let left: Vec<String> = rt
        .list(node)
        .await
        .expect("list")
        .into_iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(left, vec![keep.id.clone()]);
    assert_eq!(
        rt.list(&other_node).await.expect("list").len(),
        1,
        "other nodes untouched"
    );
    for id in [keep.id, other.id] {
        rt.remove(&id).await.expect("cleanup");
    }
    rt.forget_tenant(&keep.spec.tenant).await.expect("cleanup");
    rt.forget_tenant(&other.spec.tenant).await.expect("cleanup");
}

/// An invocation that needs more memory than the class fails; the node learns of it.
pub async fn memory_over_the_class_fails<R: ContainerRuntime>(rt: &R, node: &str, image: &str) {
    let c = rt
        .start(&spec(node, "t1", "greedy", image))
        .await
        .expect("start");
    let over = WorkloadOverrides {
        mem_mib: Some(512),
        cpu_ms: Some(0),
        ..WorkloadOverrides::default()
    };
    assert!(
        rt.invoke(&c, &over).await.is_err(),
        "512 MiB in a 128 MiB class must fail"
    );
    rt.remove(&c.id).await.expect("cleanup");
    rt.forget_tenant(&c.spec.tenant).await.expect("cleanup");
}

/// Two tenants never share a network or a container.
pub async fn tenants_are_separated<R: ContainerRuntime>(rt: &R, node: &str, image: &str) {
    let a = rt
        .start(&spec(node, "ta", "same-code", image))
        .await
        .expect("start a");
    let b = rt
        .start(&spec(node, "tb", "same-code", image))
        .await
        .expect("start b");
    assert_ne!(a.id, b.id);
    let listed = rt.list(node).await.expect("list");
    let net = |id: &str| {
        listed
            .iter()
            .find(|l| l.id == id)
            .map(|l| l.network.clone())
            .expect("listed")
    };
    assert_ne!(net(&a.id), net(&b.id), "tenants share a network");
    for c in [a, b] {
        rt.remove(&c.id).await.expect("cleanup");
        rt.forget_tenant(&c.spec.tenant).await.expect("cleanup");
    }
}
