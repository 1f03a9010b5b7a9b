//! The node's root supervisor: the Collector, the Predictor, the PoolSupervisor and the Router
//! are linked to it, and one that fails (a panic, an error out of its handler, or a stop nobody
//! asked for) is started again with the arguments it was first started with. Everything that
//! talks to them holds a [`Slot`], which the root points at the new actor, so nothing keeps a
//! dead reference; `/readyz` reads the slot and says not ready only while a restart is under
//! way or after the root gave up ([`MAX_RESTARTS`] within [`RESTART_WINDOW`]: an actor that
//! fails on every start is left stopped, with the reason logged).
//!
//! A PoolSupervisor's container actors are linked to it and go with it; the new one finds the
//! book of the old (`PoolBook`, shared with the request path) and starts it over: requests
//! waiting for a start are answered 503 (they never reached a container), idle containers are
//! removed at once, and a busy one is left to the request on it until a reconcile removes it as
//! unowned.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use ractor::rpc::CallResult;
use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, ActorStatus, Message, MessagingErr,
    RpcReplyPort, SpawnErr, SupervisionEvent,
};

/// At most this many restarts of one actor within [`RESTART_WINDOW`]; past them it stays
/// stopped.
pub const MAX_RESTARTS: usize = 5;
/// The window [`MAX_RESTARTS`] counts over.
pub const RESTART_WINDOW: Duration = Duration::from_secs(60);

/// Where an actor of the node is now: a reference the root replaces when it starts the actor
/// again. It forwards what the callers use of an [`ActorRef`].
#[derive(Debug)]
pub struct Slot<M: Message>(Arc<RwLock<ActorRef<M>>>);

impl<M: Message> Clone for Slot<M> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<M: Message> Slot<M> {
    fn new(actor: ActorRef<M>) -> Self {
        Self(Arc::new(RwLock::new(actor)))
    }

    /// The actor now.
    pub fn get(&self) -> ActorRef<M> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, actor: ActorRef<M>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = actor;
    }

    /// Send `msg` without waiting.
    pub fn cast(&self, msg: M) -> Result<(), MessagingErr<M>> {
        self.get().cast(msg)
    }

    /// Ask and wait for the answer (up to `timeout`).
    pub async fn call<T, F>(
        &self,
        msg: F,
        timeout: Option<Duration>,
    ) -> Result<CallResult<T>, MessagingErr<M>>
    where
        T: Send + 'static,
        F: FnOnce(RpcReplyPort<T>) -> M,
    {
        self.get().call(msg, timeout).await
    }

    /// Its status now.
    pub fn get_status(&self) -> ActorStatus {
        self.get().get_status()
    }
}

/// How a supervised actor is started again (linked to the root); the id of the new one.
type Respawn = Box<
    dyn Fn(ActorCell) -> Pin<Box<dyn Future<Output = Result<ActorId, SpawnErr>> + Send>> + Send,
>;

/// One actor the root watches.
struct Child {
    name: &'static str,
    id: ActorId,
    respawn: Respawn,
    restarts: Vec<Instant>,
}

/// What the root is told.
#[derive(ractor_cluster::RactorMessage)]
pub enum RootMsg {
    /// Watch this actor (linked to the root already), called `name`, and how to start it
    /// again.
    Adopt(&'static str, ActorId, Respawn),
    /// The node is stopping: a child that stops from now on is not started again.
    Stopping(RpcReplyPort<()>),
}

impl std::fmt::Debug for RootMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RootMsg::Adopt(name, id, _) => write!(f, "Adopt({name}, {id})"),
            RootMsg::Stopping(_) => f.write_str("Stopping"),
        }
    }
}

/// The root supervisor.
#[derive(Debug, Default)]
pub struct Root;

/// Its state: the actors it watches, whether the node is stopping, and the count of restarts
/// (`forewarm_actor_restarts_total`).
pub struct RootState {
    children: Vec<Child>,
    stopping: bool,
    restarts: Counter,
}

impl std::fmt::Debug for RootState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootState")
            .field(
                "children",
                &self.children.iter().map(|c| c.name).collect::<Vec<_>>(),
            )
            .field("stopping", &self.stopping)
            .finish()
    }
}

impl Actor for Root {
    type Msg = RootMsg;
    type State = RootState;
    type Arguments = Counter;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        restarts: Counter,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(RootState {
            children: Vec::new(),
            stopping: false,
            restarts,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RootMsg::Adopt(name, id, respawn) => {
                state.children.push(Child {
                    name,
                    id,
                    respawn,
                    restarts: Vec::new(),
                });
            }
            RootMsg::Stopping(reply) => {
                state.stopping = true;
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let (who, why) = match &event {
            SupervisionEvent::ActorFailed(who, e) => (who.get_id(), format!("failed: {e}")),
            SupervisionEvent::ActorTerminated(who, _, reason) => (
                who.get_id(),
                format!("stopped ({})", reason.as_deref().unwrap_or("no reason")),
            ),
            _ => return Ok(()),
        };
        if state.stopping {
            return Ok(());
        }
        let Some(child) = state.children.iter_mut().find(|c| c.id == who) else {
            return Ok(());
        };
        let now = Instant::now();
        child
            .restarts
            .retain(|at| now.duration_since(*at) < RESTART_WINDOW);
        if child.restarts.len() >= MAX_RESTARTS {
            tracing::error!(
                "actor {} {why}; not started again: {MAX_RESTARTS} restarts within {} s (the node stays not ready)",
                child.name,
                RESTART_WINDOW.as_secs()
            );
            return Ok(());
        }
        child.restarts.push(now);
        match (child.respawn)(myself.get_cell()).await {
            Ok(id) => {
                child.id = id;
                state.restarts.inc();
                tracing::error!("actor {} {why}; started again", child.name);
            }
            Err(e) => tracing::error!(
                "actor {} {why}; could not be started again: {e} (the node stays not ready)",
                child.name
            ),
        }
        Ok(())
    }
}

/// Start `actor` linked to `root`, have the root start it again with `args` whenever it
/// fails, and return the slot that always names it.
pub async fn supervised<A>(
    root: &ActorRef<RootMsg>,
    name: &'static str,
    actor: fn() -> A,
    args: A::Arguments,
) -> Result<Slot<A::Msg>, SpawnErr>
where
    A: Actor,
    A::Arguments: Clone,
{
    let (first, _) = Actor::spawn_linked(None, actor(), args.clone(), root.get_cell()).await?;
    let slot = Slot::new(first);
    let id = slot.get().get_id();
    let again = slot.clone();
    let respawn: Respawn = Box::new(move |parent: ActorCell| {
        let (slot, args) = (again.clone(), args.clone());
        Box::pin(async move {
            let (next, _) = Actor::spawn_linked(None, actor(), args, parent).await?;
            let id = next.get_id();
            slot.set(next);
            Ok(id)
        })
    });
    // If the root is gone the node is stopping: nothing to restart.
    let _ = root.cast(RootMsg::Adopt(name, id, respawn));
    Ok(slot)
}

/// Tell the root the node is stopping (before its actors are stopped in order).
pub async fn stopping(root: &ActorRef<RootMsg>) {
    let _ = root
        .call(RootMsg::Stopping, Some(Duration::from_secs(5)))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers `Ask` with how many it was asked since it started; `Fail` makes it fail.
    struct Counter;

    #[derive(ractor_cluster::RactorMessage)]
    enum CounterMsg {
        Ask(RpcReplyPort<u32>),
        Fail,
    }

    impl Actor for Counter {
        type Msg = CounterMsg;
        type State = u32;
        type Arguments = u32;

        async fn pre_start(
            &self,
            _myself: ActorRef<Self::Msg>,
            start: u32,
        ) -> Result<u32, ActorProcessingErr> {
            Ok(start)
        }

        async fn handle(
            &self,
            _myself: ActorRef<Self::Msg>,
            msg: Self::Msg,
            asked: &mut u32,
        ) -> Result<(), ActorProcessingErr> {
            match msg {
                CounterMsg::Ask(reply) => {
                    *asked += 1;
                    let _ = reply.send(*asked);
                    Ok(())
                }
                CounterMsg::Fail => Err(From::from("asked to fail")),
            }
        }
    }

    async fn ask(slot: &Slot<CounterMsg>) -> Option<u32> {
        match slot
            .call(CounterMsg::Ask, Some(Duration::from_secs(5)))
            .await
        {
            Ok(CallResult::Success(n)) => Some(n),
            _ => None,
        }
    }

    /// Wait (up to 5 s) until the slot names a running actor other than `old`.
    async fn replaced(slot: &Slot<CounterMsg>, old: ActorId) -> bool {
        let begun = Instant::now();
        while begun.elapsed() < Duration::from_secs(5) {
            let now = slot.get();
            if now.get_id() != old && now.get_status() == ActorStatus::Running {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    #[tokio::test]
    async fn t01_a_failed_actor_is_started_again_behind_the_same_slot() {
        let restarts = prometheus_client::metrics::counter::Counter::default();
        let (root, _) = Actor::spawn(None, Root, restarts.clone())
            .await
            .expect("root");
        let slot = supervised(&root, "counter", || Counter, 100)
            .await
            .expect("spawned");
        assert_eq!(ask(&slot).await, Some(101));
        let first = slot.get().get_id();
        slot.cast(CounterMsg::Fail).expect("sent");
        assert!(replaced(&slot, first).await, "started again");
        // Its own state starts from its arguments again.
        assert_eq!(ask(&slot).await, Some(101));
        // A stop nobody asked for (a kill) is a failure too.
        let second = slot.get().get_id();
        slot.get().kill();
        assert!(replaced(&slot, second).await, "started again after a kill");
        assert_eq!(ask(&slot).await, Some(101));
        assert_eq!(restarts.get(), 2);
        root.stop(None);
    }

    #[tokio::test]
    async fn t02_an_actor_that_keeps_failing_is_left_stopped_and_a_stop_is_not_a_failure() {
        let (root, _) = Actor::spawn(None, Root, Default::default())
            .await
            .expect("root");
        let slot = supervised(&root, "counter", || Counter, 0)
            .await
            .expect("spawned");
        for _ in 0..MAX_RESTARTS {
            let old = slot.get().get_id();
            slot.cast(CounterMsg::Fail).expect("sent");
            assert!(replaced(&slot, old).await);
        }
        slot.cast(CounterMsg::Fail).expect("sent");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(slot.get_status(), ActorStatus::Stopped, "given up");

        let other = supervised(&root, "other", || Counter, 0)
            .await
            .expect("spawned");
        stopping(&root).await;
        other.get().stop_and_wait(None, None).await.expect("stops");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(other.get_status(), ActorStatus::Stopped, "not restarted");
        root.stop(None);
    }

    const ADMIN: &str = "admin-secret";

    /// A node named `id` on the fake runtime with tenant `t` and its code type `f` (4 MiB,
    /// 50 ms init): the node, its data directory and the tenant's token.
    async fn node_with_code(
        id: &str,
        runtime: Arc<forewarm_runtime::FakeRuntime>,
    ) -> (crate::Node, tempfile::TempDir, String) {
        use forewarm_tests::{call, json};
        let dir = tempfile::tempdir().expect("tempdir");
        let config = crate::NodeConfig {
            node_id: id.into(),
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: dir.path().to_path_buf(),
            admin_token: Some(ADMIN.into()),
            ..crate::NodeConfig::default()
        };
        let node = crate::Node::start(config, runtime).await.expect("starts");
        let addr = node.addr();
        let made = call(addr, "POST", "/v1/tenants", Some(ADMIN), r#"{"name":"t"}"#).await;
        assert_eq!(made.status, 201, "{}", made.body);
        let token = json(&made)["token"].as_str().expect("token").to_owned();
        let code = r#"{"workload":{"cpu_ms":1,"mem_mib":4,"init_ms":50},"max_memory_mib":128}"#;
        let put = call(addr, "PUT", "/v1/codes/f", Some(&token), code).await;
        assert_eq!(put.status, 201, "{}", put.body);
        (node, dir, token)
    }

    /// A node whose Router, Predictor and Collector are killed one after the other serves,
    /// trains and is ready again: each is started again behind its slot.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn t03_a_node_whose_actors_are_killed_serves_again() {
        use forewarm_tests::call;
        let runtime = Arc::new(forewarm_runtime::FakeRuntime::new());
        let (node, _dir, token) = node_with_code("supervised", runtime).await;
        let addr = node.addr();
        let invoke = || call(addr, "POST", "/v1/invoke/f", Some(&token), "{}");
        assert_eq!(invoke().await.status, 200);
        let ready = || async {
            let begun = Instant::now();
            loop {
                let a = call(addr, "GET", "/readyz", None, "").await;
                if a.status == 200 || begun.elapsed() > Duration::from_secs(5) {
                    return a;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };

        let router = node.router.get().get_id();
        node.router.get().kill();
        let a = ready().await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_ne!(node.router.get().get_id(), router, "a new router");
        assert_eq!(invoke().await.status, 200, "served by the new router");

        node.predictor.get().kill();
        node.collector.get().kill();
        let a = ready().await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(invoke().await.status, 200);
        let trained = call(
            addr,
            "GET",
            "/v1/codes/f/prediction?train=true",
            Some(&token),
            "",
        )
        .await;
        assert_eq!(trained.status, 200, "{}", trained.body);
        let metrics = call(addr, "GET", "/metrics", Some(ADMIN), "").await;
        assert!(
            metrics.body.contains("\nforewarm_actor_restarts_total 3\n"),
            "{}",
            metrics.body
        );
        node.shutdown().await;
    }

    /// The PoolSupervisor killed (a panic's path: its container actors die with it, no clean-up
    /// runs) and then stopped by nobody's request (its clean-up runs): each time a new one
    /// serves, the pools start over and no container of the old book is left behind.
    #[tokio::test]
    async fn t04_a_pool_supervisor_started_again_leaves_no_container_behind() {
        use forewarm_runtime::ContainerRuntime;
        use forewarm_tests::{call, json};
        let runtime = Arc::new(forewarm_runtime::FakeRuntime::new());
        let (node, _dir, token) = node_with_code("pool-again", runtime.clone()).await;
        let addr = node.addr();
        let invoke = || call(addr, "POST", "/v1/invoke/f", Some(&token), "{}");
        let listed = || async {
            let all = runtime.list("pool-again").await.expect("lists");
            all.into_iter().map(|c| c.id).collect::<Vec<_>>()
        };
        // Until `old` is gone from the engine (up to 5 s), then the node is ready.
        let settled = |old: Vec<String>| {
            let runtime = runtime.clone();
            async move {
                let begun = Instant::now();
                loop {
                    let now = runtime.list("pool-again").await.expect("lists");
                    let gone = now.iter().all(|c| !old.contains(&c.id));
                    let ready = call(addr, "GET", "/readyz", None, "").await;
                    if (gone && ready.status == 200) || begun.elapsed() > Duration::from_secs(5) {
                        return (gone, ready);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };

        let first = invoke().await;
        assert_eq!(first.status, 200, "{}", first.body);
        assert_eq!(json(&first)["start"], "cold", "{}", first.body);
        assert_eq!(json(&invoke().await)["start"], "warm");
        let before = listed().await;
        assert_eq!(before.len(), 1, "one idle container: {before:?}");

        let pool = node.pool.get().get_id();
        node.pool.get().kill();
        let (gone, ready) = settled(before).await;
        assert!(
            gone,
            "the idle container of the killed supervisor is removed"
        );
        assert_eq!(ready.status, 200, "{}", ready.body);
        assert_ne!(node.pool.get().get_id(), pool, "a new pool supervisor");
        let again = invoke().await;
        assert_eq!(again.status, 200, "{}", again.body);
        assert_eq!(json(&again)["start"], "cold", "the pools started over");
        assert_eq!(
            json(&invoke().await)["start"],
            "warm",
            "and serve warm again"
        );

        let before = listed().await;
        assert_eq!(before.len(), 1, "{before:?}");
        node.pool.get().stop(Some(String::from("nobody asked")));
        let (gone, ready) = settled(before).await;
        assert!(gone, "a stopped supervisor's containers are removed");
        assert_eq!(ready.status, 200, "{}", ready.body);
        assert_eq!(invoke().await.status, 200);
        let pooled = call(addr, "GET", "/v1/pool", Some(ADMIN), "").await;
        assert_eq!(pooled.status, 200, "{}", pooled.body);
        let metrics = call(addr, "GET", "/metrics", Some(ADMIN), "").await;
        assert!(
            metrics.body.contains("\nforewarm_actor_restarts_total 2\n"),
            "{}",
            metrics.body
        );
        node.shutdown().await;
        assert!(listed().await.is_empty(), "nothing left after shutdown");
    }
}
