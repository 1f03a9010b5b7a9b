//! Raft RPC bodies as a member holding the cluster secret could send them — garbage, or
//! well-formed but forged (any term, any leader, entries out of order, a snapshot of
//! anything): every request is answered, 200 with Raft's own answer or 400 naming the body,
//! and the node's Raft core is still running afterwards (a storage error or a panic in it
//! would stop the replicated state until a restart).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use forewarm_cluster::{Cluster, ClusterConfig};
use forewarm_raft::{ClusterNode, Command, NodeId, Tenant, TypeConfig, raft_id};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use openraft::{
    CommittedLeaderId, Entry, EntryPayload, LogId, SnapshotMeta, StoredMembership, Vote,
};
use proptest::prelude::*;
use tower::ServiceExt;

const SECRET: &str = "fuzz-secret";

/// A cluster of one that leads itself.
async fn lone(dir: &std::path::Path) -> Arc<Cluster> {
    let config = ClusterConfig {
        secret: Some(SECRET.into()),
        ..ClusterConfig::default()
    };
    let me = ClusterNode {
        addr: "127.0.0.1:9".into(),
        region: "r".into(),
        name: "n1".into(),
    };
    let cluster = Cluster::start(&config, &dir.join("raft.redb"), me)
        .await
        .expect("starts");
    cluster
        .bootstrap_or_join(&[], Duration::from_secs(5))
        .await
        .expect("a cluster of one");
    for _ in 0..100 {
        if cluster.leader_known() {
            return cluster;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no leader");
}

fn node() -> impl Strategy<Value = NodeId> {
    prop_oneof![Just(raft_id("n1")), Just(raft_id("n2")), any::<u64>()]
}

fn term() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..4, Just(u64::MAX)]
}

fn index() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..12, Just(u64::MAX)]
}

fn log_id() -> impl Strategy<Value = Option<LogId<NodeId>>> {
    prop::option::of(
        (term(), node(), index()).prop_map(|(t, n, i)| LogId::new(CommittedLeaderId::new(t, n), i)),
    )
}

fn vote() -> impl Strategy<Value = Vote<NodeId>> {
    (term(), node(), any::<bool>()).prop_map(|(t, n, committed)| {
        if committed {
            Vote::new_committed(t, n)
        } else {
            Vote::new(t, n)
        }
    })
}

fn payload() -> impl Strategy<Value = EntryPayload<TypeConfig>> {
    prop_oneof![
        Just(EntryPayload::Blank),
        ("[a-z]{1,6}", ".{0,8}").prop_map(|(id, token)| {
            EntryPayload::Normal(Command::CreateTenant(Tenant {
                id,
                token_sha256: forewarm_raft::hash_token(&token),
                max_warm: 16,
                max_memory_mib: 4096,
                allowed_regions: Vec::new(),
                max_extra_latency_ms: None,
            }))
        }),
    ]
}

fn entries() -> impl Strategy<Value = Vec<Entry<TypeConfig>>> {
    prop::collection::vec(
        (term(), node(), index(), payload()).prop_map(|(t, n, i, payload)| Entry {
            log_id: LogId::new(CommittedLeaderId::new(t, n), i),
            payload,
        }),
        0..4,
    )
}

/// One request: an endpoint and its body.
fn rpc() -> impl Strategy<Value = (&'static str, Vec<u8>)> {
    prop_oneof![
        (vote(), log_id()).prop_map(|(v, last)| {
            (
                "/raft/vote",
                serde_json::to_vec(&VoteRequest::new(v, last)).expect("json"),
            )
        }),
        (vote(), log_id(), entries(), log_id()).prop_map(|(vote, prev_log_id, entries, commit)| {
            let req = AppendEntriesRequest::<TypeConfig> {
                vote,
                prev_log_id,
                entries,
                leader_commit: commit,
            };
            ("/raft/append", serde_json::to_vec(&req).expect("json"))
        }),
        (vote(), log_id(), 0u64..3, snapshot_data(), any::<bool>()).prop_map(
            |(vote, last_log_id, offset, data, done)| {
                let req = InstallSnapshotRequest::<TypeConfig> {
                    vote,
                    meta: SnapshotMeta {
                        last_log_id,
                        last_membership: StoredMembership::default(),
                        snapshot_id: String::from("fuzz"),
                    },
                    offset,
                    data,
                    done,
                };
                ("/raft/snapshot", serde_json::to_vec(&req).expect("json"))
            }
        ),
        (
            prop::sample::select(vec![
                "/raft/vote",
                "/raft/append",
                "/raft/snapshot",
                "/raft/write"
            ]),
            prop::collection::vec(any::<u8>(), 0..64),
        ),
    ]
}

/// What a snapshot's data may be: a real state, JSON of another shape, or bytes.
fn snapshot_data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(br#"{"state":{"tenants":{},"codes":{},"models":{}}}"#.to_vec()),
        Just(br#"{"state":7}"#.to_vec()),
        prop::collection::vec(any::<u8>(), 0..32),
    ]
}

async fn send(routes: &axum::Router, path: &str, body: Vec<u8>) -> StatusCode {
    let request = Request::post(path)
        .header("authorization", format!("Bearer {SECRET}"))
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("a request");
    let answer = tokio::time::timeout(Duration::from_secs(10), routes.clone().oneshot(request))
        .await
        .unwrap_or_else(|_| panic!("{path}: no answer within 10 s"));
    answer.expect("infallible").status()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn p01_raft_rpcs_are_answered_and_the_core_survives(
        rpcs in prop::collection::vec(rpc(), 1..12)
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let outcome: Result<(), TestCaseError> = rt.block_on(async {
            let cluster = lone(dir.path()).await;
            let routes = forewarm_cluster::routes(cluster.clone());
            for (path, body) in rpcs {
                let status = send(&routes, path, body).await;
                prop_assert!(
                    status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
                    "{path}: {status}"
                );
                prop_assert_eq!(cluster.fault(), None, "after {}", path);
            }
            cluster.shutdown().await;
            Ok(())
        });
        outcome?;
    }
}
