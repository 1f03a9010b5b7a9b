//! [`ContainerRuntime`] on a Docker engine, through bollard.
//!
//! Isolation applied to every container: memory, CPU and pids limits from the size class,
//! `no-new-privileges`, every capability dropped, a read-only root filesystem with a small
//! tmpfs at `/tmp` for the runner's I/O, and the tenant's own internal bridge network (no
//! egress). The node reaches a runner at its address on that network; a node that itself runs
//! in a container ([`DockerRuntime::attached_as`]) first joins its container to the network.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, HostConfig, Ipam, IpamConfig, NetworkConnectRequest, NetworkCreateRequest,
    NetworkDisconnectRequest,
};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, ListContainersOptionsBuilder,
    ListNetworksOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt;

use crate::{
    Container, ContainerRuntime, ContainerSpec, LABEL_CLASS, LABEL_CODE, LABEL_NODE, LABEL_TENANT,
    Listed, RunnerClient, RuntimeError, TenantSubnets, Usage, WorkloadOverrides, runner_env,
    tenant_network,
};

/// The runner image definition (the same file `make images` uses).
const RUNNER_DOCKERFILE: &str = include_str!("../../../cluster/runner.Dockerfile");

/// Port the runner listens on inside its container.
const RUNNER_PORT: u16 = 8080;

/// The user every workload container runs as (`nobody`), whatever its image says.
pub const WORKLOAD_USER: &str = "65534:65534";
/// Processes one container may run.
const PIDS_LIMIT: i64 = 64;

/// Docker-backed runtime.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    docker: Docker,
    client: RunnerClient,
    ready_timeout: Duration,
    /// Serialises network creation: Docker accepts two networks with one name.
    network_lock: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Runner endpoints of started containers, so their kept-alive connections go with them.
    endpoints: std::sync::Arc<std::sync::Mutex<HashMap<String, SocketAddr>>>,
    /// When the node itself runs in a container: that container, joined to every tenant
    /// network so the node reaches the runners on it.
    attached: Option<String>,
    /// Tenant networks `attached` has joined.
    joined: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// Where tenant networks take their subnets from.
    subnets: TenantSubnets,
    /// Set once the host rule that keeps workloads off the host ([`crate::host_guard`]) was
    /// put in place or its failure reported (at the first tenant network asked for).
    guard: std::sync::Arc<std::sync::OnceLock<()>>,
}

fn engine(action: &'static str) -> impl Fn(DockerError) -> RuntimeError {
    move |e| match e {
        DockerError::DockerResponseServerError { message, .. } => {
            RuntimeError::Engine { action, message }
        }
        other => RuntimeError::Unavailable(other.to_string()),
    }
}

fn is_status(e: &DockerError, status: u16) -> bool {
    matches!(e, DockerError::DockerResponseServerError { status_code, .. } if *status_code == status)
}

impl DockerRuntime {
    /// Connect to the local engine (`DOCKER_HOST` or the default socket) and check it answers.
    pub async fn connect() -> Result<Self, RuntimeError> {
        let docker = Docker::connect_with_local_defaults()
            .map_err(|e| RuntimeError::Unavailable(e.to_string()))?;
        docker
            .ping()
            .await
            .map_err(|e| RuntimeError::Unavailable(format!("docker ping: {e}")))?;
        Ok(Self {
            docker,
            client: RunnerClient::default(),
            ready_timeout: Duration::from_secs(60),
            network_lock: Default::default(),
            endpoints: Default::default(),
            attached: None,
            joined: Default::default(),
            subnets: TenantSubnets::default(),
            guard: Default::default(),
        })
    }

    /// Give tenant networks subnets from `subnets` (default [`TenantSubnets::DEFAULT`]).
    pub fn with_tenant_subnets(mut self, subnets: TenantSubnets) -> Self {
        self.subnets = subnets;
        self
    }

    /// For a node that runs in the container `container` (name or id): join that container
    /// to each tenant network before starting runners on it, so the node can reach them.
    pub fn attached_as(mut self, container: String) -> Self {
        self.attached = Some(container);
        self
    }

    /// Join the node's own container (if any) to `network`, once.
    async fn join_network(&self, network: &str) -> Result<(), RuntimeError> {
        let Some(container) = &self.attached else {
            return Ok(());
        };
        let joined = |n: &str| {
            self.joined
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(n)
        };
        if joined(network) {
            return Ok(());
        }
        let request = NetworkConnectRequest {
            container: container.clone(),
            endpoint_config: None,
        };
        match self.docker.connect_network(network, request).await {
            Ok(()) => {}
            // Joined before this process started (a restart).
            Err(DockerError::DockerResponseServerError { message, .. })
                if message.contains("already") => {}
            Err(e) => return Err(engine("join the node's container to the tenant network")(e)),
        }
        self.joined
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(network.to_owned());
        Ok(())
    }

    /// Build the runner image `image` from a statically linked `forewarm-runner` binary
    /// (`make images` builds one), through the engine's build API with a tar context: no
    /// registry is involved.
    pub async fn build_runner_image(
        &self,
        image: &str,
        runner_binary: &std::path::Path,
    ) -> Result<(), RuntimeError> {
        let unreadable = |e: std::io::Error| RuntimeError::Engine {
            action: "build image",
            message: format!("{}: {e}", runner_binary.display()),
        };
        let binary = std::fs::read(runner_binary).map_err(unreadable)?;
        let mut tar = tar::Builder::new(Vec::new());
        for (name, bytes, mode) in [
            ("Dockerfile", RUNNER_DOCKERFILE.as_bytes(), 0o644),
            ("forewarm-runner", binary.as_slice(), 0o755),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(mode);
            header.set_cksum();
            tar.append_data(&mut header, name, bytes)
                .map_err(unreadable)?;
        }
        let context = tar.into_inner().map_err(unreadable)?;
        let options = BuildImageOptionsBuilder::new()
            .dockerfile("Dockerfile")
            .t(image)
            .rm(true)
            .build();
        let mut progress =
            self.docker
                .build_image(options, None, Some(bollard::body_full(context.into())));
        while let Some(step) = progress.next().await {
            step.map_err(|e| RuntimeError::Engine {
                action: "build image",
                message: e.to_string(),
            })?;
        }
        Ok(())
    }

    /// Build the runner image if it is missing; returns whether it built it.
    pub async fn ensure_runner_image(
        &self,
        image: &str,
        runner_binary: &std::path::Path,
    ) -> Result<bool, RuntimeError> {
        if self.has_image(image).await? {
            return Ok(false);
        }
        self.build_runner_image(image, runner_binary).await?;
        Ok(true)
    }

    /// Remove an image (used by tests and clean-up); a missing one is not an error.
    pub async fn remove_image(&self, image: &str) -> Result<(), RuntimeError> {
        let options: Option<bollard::query_parameters::RemoveImageOptions> = None;
        match self.docker.remove_image(image, options, None).await {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(e) => Err(engine("remove image")(e)),
        }
    }

    /// Whether `image` exists locally.
    pub async fn has_image(&self, image: &str) -> Result<bool, RuntimeError> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) if is_status(&e, 404) => Ok(false),
            Err(e) => Err(engine("inspect image")(e)),
        }
    }

    /// Ids of the networks named `name`, smallest first.
    async fn network_ids(&self, name: &str) -> Result<Vec<String>, RuntimeError> {
        let filters = HashMap::from([("name", vec![name])]);
        let options = ListNetworksOptionsBuilder::new().filters(&filters).build();
        let mut ids: Vec<String> = self
            .docker
            .list_networks(Some(options))
            .await
            .map_err(engine("list networks"))?
            .into_iter()
            .filter(|n| n.name.as_deref() == Some(name))
            .filter_map(|n| n.id)
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Subnets some network of the engine already has.
    async fn subnets_in_use(&self) -> Result<std::collections::HashSet<String>, RuntimeError> {
        let networks = self
            .docker
            .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
            .await
            .map_err(engine("list networks"))?;
        Ok(networks
            .into_iter()
            .filter_map(|n| n.ipam?.config)
            .flatten()
            .filter_map(|c| c.subnet)
            .collect())
    }

    /// Create the network `name` of `tenant` on the first free /24 of `subnets`.
    ///
    /// Internal: runners get no route out of their tenant's network (no egress), and a node
    /// in a container that joins it keeps its default route (Docker before 28 moves it to the
    /// joined network whose name sorts first, which breaks the node's connections in flight).
    /// Another process on the engine (a second node) may take the same subnet between our
    /// look and our create: Docker refuses the overlap, and the next free one is tried.
    async fn create_network(&self, tenant: &str, name: &str) -> Result<(), RuntimeError> {
        let in_use = self.subnets_in_use().await?;
        let mut refused = None;
        for subnet in self
            .subnets
            .subnets()
            .filter(|s| !in_use.contains(s))
            .take(4)
        {
            let request = NetworkCreateRequest {
                name: name.to_owned(),
                driver: Some("bridge".into()),
                internal: Some(true),
                // Named so that one host rule covers every tenant bridge (`host_guard`).
                options: Some(HashMap::from([(
                    "com.docker.network.bridge.name".to_owned(),
                    crate::host_guard::bridge_name(name),
                )])),
                ipam: Some(Ipam {
                    config: Some(vec![IpamConfig {
                        subnet: Some(subnet),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                labels: Some(HashMap::from([(
                    LABEL_TENANT.to_owned(),
                    tenant.to_owned(),
                )])),
                ..Default::default()
            };
            match self.docker.create_network(request).await {
                Ok(_) => return Ok(()),
                Err(DockerError::DockerResponseServerError { message, .. })
                    if message.contains("overlap") =>
                {
                    refused = Some(message);
                }
                Err(e) => return Err(engine("create network")(e)),
            }
        }
        Err(RuntimeError::Engine {
            action: "create network",
            message: refused.unwrap_or_else(|| {
                format!(
                    "every /24 of tenant_subnets {} is taken ({} networks): remove unused \
                     tenant networks or configure a larger range",
                    self.subnets,
                    self.subnets.len()
                )
            }),
        })
    }

    /// Put the rule that keeps workloads off the host in place, once (a node on the host; one
    /// that runs in a container cannot reach the host's rules). Without it workloads can reach
    /// host services listening on every interface: said loudly, not fatal (the platform's own
    /// firewall may do the same).
    async fn guard_host(&self) {
        if self.attached.is_some() || self.guard.get().is_some() {
            return;
        }
        let outcome = tokio::task::spawn_blocking(crate::host_guard::install)
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        match &outcome {
            Ok(true) => tracing::info!(
                "installed the INPUT rule that drops connections from tenant networks \
                 (bridges {}+) to this host",
                crate::host_guard::BRIDGE_PREFIX
            ),
            Ok(false) => {}
            Err(e) => tracing::error!(
                "could not keep workloads off this host ({e}): a workload can reach any host \
                 service listening on all interfaces; run the node as root with iptables, or \
                 drop INPUT from interfaces {}+ yourself",
                crate::host_guard::BRIDGE_PREFIX
            ),
        }
        let _ = self.guard.set(());
    }

    /// The tenant's network, created if it does not exist.
    ///
    /// Docker accepts several networks with one name, and then refuses to start containers on
    /// it as ambiguous. Two nodes may race to create it, so every caller keeps the network
    /// with the smallest id and removes the others (a removal that loses a race is harmless).
    async fn ensure_network(&self, tenant: &str) -> Result<String, RuntimeError> {
        let _serial = self.network_lock.lock().await;
        self.guard_host().await;
        let name = tenant_network(tenant);
        let mut ids = self.network_ids(&name).await?;
        if ids.is_empty() {
            self.create_network(tenant, &name).await?;
            ids = self.network_ids(&name).await?;
        }
        for duplicate in ids.iter().skip(1) {
            let _ = self.docker.remove_network(duplicate).await;
        }
        self.join_network(&name).await?;
        Ok(name)
    }

    async fn create_and_start(&self, spec: &ContainerSpec) -> Result<Container, RuntimeError> {
        let network = self.ensure_network(&spec.tenant).await?;
        let labels = HashMap::from([
            (LABEL_NODE.to_owned(), spec.node.clone()),
            (LABEL_TENANT.to_owned(), spec.tenant.clone()),
            (LABEL_CODE.to_owned(), spec.code.clone()),
            (LABEL_CLASS.to_owned(), spec.class.name()),
        ]);
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            // Whatever user the image names: workloads never run as root.
            user: Some(WORKLOAD_USER.to_owned()),
            env: Some(runner_env(&spec.workload)),
            labels: Some(labels),
            host_config: Some(HostConfig {
                memory: Some(i64::from(spec.class.memory_mib) << 20),
                // Swap would let an invocation exceed its class unnoticed.
                memory_swap: Some(i64::from(spec.class.memory_mib) << 20),
                nano_cpus: Some(i64::from(spec.class.cpu_millis) * 1_000_000),
                pids_limit: Some(PIDS_LIMIT),
                readonly_rootfs: Some(true),
                cap_drop: Some(vec!["ALL".into()]),
                security_opt: Some(vec!["no-new-privileges:true".into()]),
                tmpfs: Some(HashMap::from([("/tmp".into(), "size=64m".into())])),
                network_mode: Some(network.clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(Some(CreateContainerOptionsBuilder::new().build()), body)
            .await
            .map_err(engine("create container"))?;
        let id = created.id;
        let started = async {
            self.docker
                .start_container(&id, None)
                .await
                .map_err(engine("start container"))?;
            let ip = self.address(&id).await?;
            let endpoint = SocketAddr::new(ip, RUNNER_PORT);
            let begun = Instant::now();
            while !self.client.is_ready(endpoint).await {
                if begun.elapsed() > self.ready_timeout {
                    return Err(RuntimeError::NotReady {
                        id: id.clone(),
                        waited_ms: begun.elapsed().as_millis() as u64,
                    });
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(endpoint)
        }
        .await;
        match started {
            Ok(endpoint) => {
                self.endpoints
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id.clone(), endpoint);
                Ok(Container {
                    id,
                    spec: spec.clone(),
                    endpoint,
                })
            }
            Err(e) => {
                // Leak nothing: a container that did not come up is removed.
                let _ = self.remove(&id).await;
                Err(e)
            }
        }
    }

    /// The container's address on its (only) network.
    async fn address(&self, id: &str) -> Result<IpAddr, RuntimeError> {
        let info = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(engine("inspect container"))?;
        info.network_settings
            .and_then(|s| s.networks)
            .and_then(|n| n.into_values().find_map(|e| e.ip_address))
            .and_then(|ip| ip.parse().ok())
            .ok_or_else(|| RuntimeError::Engine {
                action: "inspect container",
                message: format!("{id} has no network address"),
            })
    }
}

impl ContainerRuntime for DockerRuntime {
    async fn start(&self, spec: &ContainerSpec) -> Result<Container, RuntimeError> {
        if !self.has_image(&spec.image).await? {
            return Err(RuntimeError::ImageMissing(spec.image.clone()));
        }
        match self.create_and_start(spec).await {
            Err(RuntimeError::Engine { message, .. }) if message.contains("ambiguous") => {
                // A concurrent node created a duplicate network: ensure_network removes it.
                self.create_and_start(spec).await
            }
            other => other,
        }
    }

    async fn invoke(
        &self,
        container: &Container,
        overrides: &WorkloadOverrides,
    ) -> Result<Usage, RuntimeError> {
        self.client
            .invoke(container.endpoint, overrides)
            .await
            .map_err(|error| RuntimeError::Invoke {
                id: container.id.clone(),
                error,
            })
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let endpoint = self
            .endpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        if let Some(endpoint) = endpoint {
            self.client.forget(endpoint);
        }
        let options = RemoveContainerOptionsBuilder::new().force(true).build();
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_status(&e, 404) || is_status(&e, 409) => Ok(()),
            Err(e) => Err(engine("remove container")(e)),
        }
    }

    async fn forget_tenant(&self, tenant: &str) -> Result<(), RuntimeError> {
        let _serial = self.network_lock.lock().await;
        let name = tenant_network(tenant);
        // The node's own container leaves first: it is an endpoint of every network it joined.
        let joined = self
            .joined
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&name);
        if let (true, Some(container)) = (joined, &self.attached) {
            let request = NetworkDisconnectRequest {
                container: container.clone(),
                force: Some(true),
            };
            let _ = self.docker.disconnect_network(&name, request).await;
        }
        for id in self.network_ids(&name).await? {
            match self.docker.remove_network(&id).await {
                Ok(()) => {}
                Err(e) if is_status(&e, 404) => {}
                Err(e) => return Err(engine("remove network")(e)),
            }
        }
        Ok(())
    }

    async fn list(&self, node: &str) -> Result<Vec<Listed>, RuntimeError> {
        let label = format!("{LABEL_NODE}={node}");
        let filters = HashMap::from([("label", vec![label.as_str()])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let found = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(engine("list containers"))?;
        Ok(found
            .into_iter()
            .map(|c| {
                let labels = c.labels.unwrap_or_default();
                let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
                let network = c
                    .network_settings
                    .and_then(|n| n.networks)
                    .and_then(|n| n.into_keys().next())
                    .unwrap_or_default();
                Listed {
                    id: c.id.unwrap_or_default(),
                    node: label(LABEL_NODE),
                    tenant: label(LABEL_TENANT),
                    code: label(LABEL_CODE),
                    class: label(LABEL_CLASS),
                    network,
                    running: c.state.is_some_and(|s| s.to_string() == "running"),
                }
            })
            .collect())
    }
}
