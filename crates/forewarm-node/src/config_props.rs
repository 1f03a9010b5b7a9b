//! Property tests of the configuration files (issue 15, "no input panics"): any text given as
//! a topology (`regions/*.toml`) or a node configuration (with its `[cluster]` table) is a
//! value that everything downstream can use, or an error that names the file, a line and a
//! column inside the text; never a panic.

use proptest::prelude::*;

use super::*;
use crate::topology::Topology;

const CASES: u32 = 1000;

/// TOML values, ordinary and hostile.
fn value() -> impl Strategy<Value = String> {
    let scalar = prop_oneof![
        prop::sample::select(vec![
            "0",
            "1",
            "-1",
            "10",
            "100",
            "127",
            "128",
            "65535",
            "65536",
            "60000",
            "60001",
            "3600",
            "3601",
            "9223372036854775807",
            "-9223372036854775808",
            "5124095576031",
            "213503982334601",
            "nan",
            "inf",
            "-inf",
            "-0.0",
            "1e308",
            "1e-308",
            "0.5",
            "true",
            "\"\"",
            "\"a\"",
            "\"é\"",
            "\"127.0.0.1:7101\"",
            "\"127.0.0.1:65535\"",
            "\"[::1]:1\"",
            "\"127.0.0.1\"",
            "\"forewarm\"",
            "\"oracle\"",
            "\"faascache-4gib\"",
            "\"keepalive-0m\"",
            "\"forewarm-keep101\"",
            "\"us-east\"",
            "\"us-east/eu-west\"",
            "\"a/a\"",
            "[]",
            "{}",
            "1979-05-27T07:32:00Z",
        ])
        .prop_map(str::to_owned),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        "\"[ -~é☃]{0,12}\"",
    ];
    scalar.prop_recursive(2, 8, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(|v| format!("[{}]", v.join(", ")))
    })
}

/// Keys of the topology and of a node configuration, and a few that are neither.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "peer_port_offset",
            "name",
            "nodes",
            "\"us-east/eu-west\"",
            "\"eu-west/us-east\"",
            "\"a/b\"",
            "\"a\"",
            "node_id",
            "region",
            "listen",
            "data_dir",
            "policy",
            "admin_token",
            "time_scale",
            "memory_mib",
            "containers",
            "max_body_bytes",
            "max_inflight",
            "reconcile_every_ms",
            "runner_image",
            "images",
            "raw_retention_hours",
            "rollup_retention_days",
            "container",
            "tenant_subnets",
            "advertise",
            "secret",
            "source_addr",
            "join",
            "heartbeat_ms",
            "election_min_ms",
            "election_max_ms",
            "snapshot_every",
            "cluster.heartbeat_ms",
            "capacity.containers",
        ])
        .prop_map(str::to_owned),
        "[a-zé_]{1,8}",
    ]
}

/// One line of a file: a table header, a key and value, or anything at all.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (key(), value()).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => prop::sample::select(vec![
            "[[region]]", "[rtt_ms]", "[capacity]", "[cluster]", "[region]", "[[cluster]]",
            "[", "]]", "= 1", "\"", "#é", "",
        ])
        .prop_map(str::to_owned),
        1 => ".{0,30}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec(line(), 0..14).prop_map(|l| l.join("\n")),
        1 => prop::collection::vec(any::<u8>(), 0..200)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

/// An integer for a numeric setting: edges of the checks and of the types, or any.
fn int() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            0i64,
            1,
            9,
            10,
            99,
            100,
            127,
            128,
            65535,
            65536,
            5_124_095_576_031,
            213_503_982_335,
            i64::MAX,
            -1,
            i64::MIN,
        ])
        .prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
    ]
}

/// A node configuration as someone would write one, with hostile numbers: known keys, the
/// `[capacity]` and `[cluster]` tables.
fn node_config_text() -> impl Strategy<Value = String> {
    let top = prop::sample::select(vec![
        "max_body_bytes",
        "max_inflight",
        "reconcile_every_ms",
        "raw_retention_hours",
        "rollup_retention_days",
    ]);
    let capacity = prop::sample::select(vec!["memory_mib", "containers"]);
    let cluster = prop::sample::select(vec![
        "heartbeat_ms",
        "election_min_ms",
        "election_max_ms",
        "snapshot_every",
    ]);
    (
        prop::collection::vec((top, int()), 0..3),
        prop::option::of(-1e9f64..1e9),
        prop::collection::vec((capacity, int()), 0..2),
        prop::collection::vec((cluster, int()), 0..4),
    )
        .prop_map(|(top, scale, capacity, cluster)| {
            let mut t = String::new();
            for (k, v) in top {
                t.push_str(&format!("{k} = {v}\n"));
            }
            if let Some(scale) = scale {
                t.push_str(&format!("time_scale = {scale:?}\n"));
            }
            t.push_str("[capacity]\n");
            for (k, v) in capacity {
                t.push_str(&format!("{k} = {v}\n"));
            }
            t.push_str("[cluster]\n");
            for (k, v) in cluster {
                t.push_str(&format!("{k} = {v}\n"));
            }
            t
        })
}

/// A topology as someone would write one, with hostile names, addresses and round trips.
fn topology_text() -> impl Strategy<Value = String> {
    let name = prop::sample::select(vec!["a", "b", "c", "us-east", "A", "", "-a", "é"]);
    let addr = prop::sample::select(vec![
        "127.0.0.1:1",
        "127.0.0.1:2",
        "127.0.0.1:65435",
        "127.0.0.1:65436",
        "127.0.0.1:65535",
        "[::1]:7101",
        "127.0.0.1",
        "localhost:1",
        "0.0.0.0:0",
    ]);
    let ms = prop_oneof![
        prop::sample::select(vec![
            "0", "80", "60000", "60000.5", "-1", "nan", "inf", "1e400"
        ])
        .prop_map(str::to_owned),
        any::<f64>().prop_map(|f| format!("{f:?}")),
    ];
    (
        prop::option::of(int()),
        prop::collection::vec((name.clone(), prop::collection::vec(addr, 0..3)), 0..4),
        prop::collection::vec(((name.clone(), name), ms), 0..4),
    )
        .prop_map(|(offset, regions, rtts)| {
            let mut t = String::new();
            if let Some(o) = offset {
                t.push_str(&format!("peer_port_offset = {o}\n"));
            }
            for (name, nodes) in regions {
                let nodes: Vec<String> = nodes.iter().map(|n| format!("{n:?}")).collect();
                t.push_str(&format!(
                    "[[region]]\nname = {name:?}\nnodes = [{}]\n",
                    nodes.join(", ")
                ));
            }
            t.push_str("[rtt_ms]\n");
            for ((a, b), ms) in rtts {
                t.push_str(&format!("\"{a}/{b}\" = {ms}\n"));
            }
            t
        })
}

/// A topology whose regions, nodes and round trips all fit together, but for a hostile
/// `peer_port_offset`, ports near 65535 and round trips anywhere.
fn whole_topology_text() -> impl Strategy<Value = String> {
    let ms = prop_oneof![
        4 => (0u32..=60_000).prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_map(|f| format!("{f:?}")),
    ];
    (
        prop::option::of(int()),
        prop::sample::select(vec![1u32, 7101, 65_400, 65_530]),
        prop::collection::vec(1usize..4, 1..5),
        prop::collection::vec(ms, 6),
    )
        .prop_map(|(offset, base, nodes, ms)| {
            let names = ["a", "b", "c", "us-east"];
            let mut t = String::new();
            if let Some(o) = offset {
                t.push_str(&format!("peer_port_offset = {o}\n"));
            }
            let mut port = base;
            for (name, n) in names.iter().zip(&nodes) {
                let addrs: Vec<String> = (0..*n)
                    .map(|_| {
                        port += 1;
                        format!("\"127.0.0.1:{}\"", port.min(65_535 + 1))
                    })
                    .collect();
                t.push_str(&format!(
                    "[[region]]\nname = \"{name}\"\nnodes = [{}]\n",
                    addrs.join(", ")
                ));
            }
            t.push_str("[rtt_ms]\n");
            let mut ms = ms.iter();
            for (i, a) in names.iter().enumerate().take(nodes.len()) {
                for b in &names[i + 1..nodes.len()] {
                    let v = ms.next().map_or("1", String::as_str);
                    t.push_str(&format!("\"{a}/{b}\" = {v}\n"));
                }
            }
            t
        })
}

/// An error points into the text: the file's name, a line that exists, a column >= 1.
fn assert_located(e: &ConfigError, text: &str) -> Result<(), TestCaseError> {
    match e {
        ConfigError::Parse {
            path,
            line,
            column,
            message,
        } => {
            prop_assert_eq!(path.as_str(), "t.toml");
            prop_assert!((1..=text.matches('\n').count() + 1).contains(line), "{}", e);
            prop_assert!(*column >= 1 && !message.is_empty(), "{}", e);
            prop_assert!(
                e.to_string()
                    .starts_with(&format!("t.toml:{line}:{column}: ")),
                "{}",
                e
            );
        }
        other => prop_assert!(false, "a parse error, not {}", other),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// A topology that loads gives every node an id, a proxy port that exists and Raft
    /// timings; anything else is an error located in the file.
    #[test]
    fn p01_topology_text_loads_or_is_a_located_error(
        text in prop_oneof![1 => text(), 1 => topology_text(), 2 => whole_topology_text()],
    ) {
        match Topology::parse("t.toml", &text) {
            Ok(t) => {
                for n in t.nodes() {
                    prop_assert_eq!(u32::from(n.peer.port()), u32::from(n.api.port()) + u32::from(t.peer_port_offset));
                }
                let (heartbeat, min, max) = t.raft_timing_ms();
                prop_assert!(heartbeat >= 50 && min > 2 * heartbeat && max > min);
            }
            Err(e) => assert_located(&e, &text)?,
        }
    }

    /// A node configuration that parses is valid or refused by `validate` with a reason; a
    /// valid one gives the store a retention; anything else is an error located in the file.
    #[test]
    fn p02_node_config_text_parses_or_is_a_located_error(
        text in prop_oneof![text(), node_config_text()],
    ) {
        match parse_toml::<NodeConfig>("t.toml", &text) {
            Ok(c) => match c.validate() {
                Ok(()) => {
                    let r = c.retention();
                    prop_assert!(r.raw_ms >= c.raw_retention_hours && r.rollup_ms >= c.rollup_retention_days);
                }
                Err(reason) => prop_assert!(!reason.is_empty()),
            },
            Err(e) => assert_located(&e, &text)?,
        }
    }
}

/// What p02 found: a retention in hours or days that passed `validate` overflowed when the
/// node turned it into milliseconds (a panic in a debug build; a release build wraps:
/// 5124095576031 hours became 2048384 ms).
#[test]
fn a_retention_too_long_to_count_in_ms_is_for_ever() {
    let text = "raw_retention_hours = 5124095576031\nrollup_retention_days = 9223372036854775807\n";
    let c: NodeConfig = parse_toml("t.toml", text).expect("parses");
    c.validate().expect("valid");
    let r = c.retention();
    assert_eq!((r.raw_ms, r.rollup_ms), (u64::MAX, u64::MAX));
}
