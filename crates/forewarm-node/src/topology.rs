//! Region topology files (`regions/*.toml`): the regions, their nodes' API addresses and the
//! round-trip times between regions that `forewarm up --regions` emulates on one machine.
//!
//! ```toml
//! peer_port_offset = 100            # other regions reach a node at its port + this (a delay proxy
//!                                   # in front of its cluster listener at port + 2 x this)
//! [[region]]
//! name = "us-east"
//! nodes = ["127.0.0.1:7101"]        # API addresses, what clients call
//! [[region]]
//! name = "eu-west"
//! nodes = ["127.0.0.1:7102"]
//! [rtt_ms]
//! "us-east/eu-west" = 80            # every pair of regions, either order
//! ```
//!
//! A region may carry its cloud prices, for placement that weighs cost (every region then
//! carries them, or none does):
//!
//! ```toml
//! [[region]]
//! name = "us-east"
//! nodes = ["127.0.0.1:7101"]
//! price = { memory_gib_s_usd = 0.0000166667, request_usd = 0.0000002, egress_gib_usd = 0.02 }
//! utc_offset_h = -5                # its time zone (regional demand's daily cycle)
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::config::ConfigError;

/// A topology: regions in file order and the round trips between them.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Regions in file order.
    pub regions: Vec<Region>,
    /// Round trip between two regions, ms (key: names in lexical order).
    rtt_ms: BTreeMap<(String, String), f64>,
    /// Other regions reach a node through a delay proxy at its API port + this.
    pub peer_port_offset: u16,
}

/// One region and its nodes.
#[derive(Debug, Clone)]
pub struct Region {
    /// Region name.
    pub name: String,
    /// API addresses of its nodes.
    pub nodes: Vec<SocketAddr>,
    /// What running there costs, when the file says.
    pub price: Option<Price>,
    /// Hours its local time is ahead of UTC, when the file says (regional demand's daily
    /// cycles, `forewarm trace gen --regions`).
    pub utc_offset_h: Option<f64>,
}

/// A region's list prices, US dollars.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Memory held (a warm container, busy or idle) per GiB and second.
    pub memory_gib_s_usd: f64,
    /// One request served.
    pub request_usd: f64,
    /// Data sent from this region to another, per GiB (clouds bill the sending region).
    pub egress_gib_usd: f64,
}

impl Price {
    /// The first field that is not a finite price of at least 0, by name.
    fn invalid(&self) -> Option<(&'static str, f64)> {
        [
            ("memory_gib_s_usd", self.memory_gib_s_usd),
            ("request_usd", self.request_usd),
            ("egress_gib_usd", self.egress_gib_usd),
        ]
        .into_iter()
        .find(|(_, v)| !(v.is_finite() && *v >= 0.0))
    }
}

/// One node of a topology, with what `forewarm up --regions` derives for it.
#[derive(Debug, Clone, PartialEq)]
pub struct TopologyNode {
    /// Its region.
    pub region: String,
    /// Node id: `<region>-<n>`, n counting from 1 within the region.
    pub node_id: String,
    /// API address (clients).
    pub api: SocketAddr,
    /// Where the other members reach it: its delay proxy.
    pub peer: SocketAddr,
    /// Its cluster listener (the internal endpoints, mutual TLS), behind the proxy: API port
    /// + 2 × `peer_port_offset`.
    pub cluster: SocketAddr,
    /// Loopback address its calls to other members leave from (127.0.0.11, .12, … in file
    /// order), by which the proxies know its region.
    pub source: IpAddr,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default = "default_offset")]
    peer_port_offset: u16,
    #[serde(default)]
    region: Vec<RawRegion>,
    #[serde(default)]
    rtt_ms: Option<Spanned<BTreeMap<String, Spanned<f64>>>>,
}

fn default_offset() -> u16 {
    100
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegion {
    name: Spanned<String>,
    nodes: Vec<Spanned<String>>,
    #[serde(default)]
    price: Option<Spanned<Price>>,
    #[serde(default)]
    utc_offset_h: Option<Spanned<f64>>,
}

impl Topology {
    /// Read a topology file; errors name the file, line and column.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let (name, text) = crate::config::read_file(path)?;
        Self::parse(&name, &text)
    }

    /// Parse the text of the topology file `name`.
    pub fn parse(name: &str, text: &str) -> Result<Self, ConfigError> {
        let at = |offset: usize, message: String| ConfigError::at(name, text, offset, message);
        let raw: Raw = crate::config::parse_toml(name, text)?;
        if raw.region.is_empty() {
            return Err(at(0, String::from("no [[region]] is listed")));
        }
        let mut regions: Vec<Region> = Vec::new();
        let mut seen_addrs: Vec<SocketAddr> = Vec::new();
        for r in raw.region {
            let rname = r.name.get_ref();
            if !crate::catalog::valid_id(rname) {
                return Err(at(
                    r.name.span().start,
                    format!("region name {rname:?} must be 1-32 of a-z, 0-9 and '-'"),
                ));
            }
            if regions.iter().any(|x| &x.name == rname) {
                return Err(at(
                    r.name.span().start,
                    format!("region {rname:?} is listed twice"),
                ));
            }
            if r.nodes.is_empty() {
                return Err(at(
                    r.name.span().start,
                    format!("region {rname:?} lists no node"),
                ));
            }
            let mut nodes = Vec::new();
            for n in &r.nodes {
                let addr: SocketAddr = n.get_ref().parse().map_err(|_| {
                    at(
                        n.span().start,
                        format!("node address {:?} is not IP:PORT", n.get_ref()),
                    )
                })?;
                if seen_addrs.contains(&addr) {
                    return Err(at(n.span().start, format!("node {addr} is listed twice")));
                }
                let past = u16::try_from(2 * u32::from(raw.peer_port_offset))
                    .ok()
                    .and_then(|twice| addr.port().checked_add(twice))
                    .is_none();
                if past {
                    return Err(at(
                        n.span().start,
                        format!(
                            "port {} + 2 x peer_port_offset {} (its cluster listener) is past 65535",
                            addr.port(),
                            raw.peer_port_offset
                        ),
                    ));
                }
                seen_addrs.push(addr);
                nodes.push(addr);
            }
            let price = match &r.price {
                Some(p) => {
                    if let Some((field, value)) = p.get_ref().invalid() {
                        return Err(at(
                            p.span().start,
                            format!(
                                "region {rname:?}: price {field} = {value}: a finite number of \
                                 US dollars, 0 or more, please"
                            ),
                        ));
                    }
                    Some(*p.get_ref())
                }
                None => None,
            };
            if let Some(first) = regions.first()
                && first.price.is_some() != price.is_some()
            {
                let (with, without) = if price.is_some() {
                    (rname.as_str(), first.name.as_str())
                } else {
                    (first.name.as_str(), rname.as_str())
                };
                return Err(at(
                    r.name.span().start,
                    format!(
                        "region {with:?} has a price and {without:?} has none: give every region \
                         its price, or none"
                    ),
                ));
            }
            let utc_offset_h = match &r.utc_offset_h {
                Some(h) if !(-12.0..=14.0).contains(h.get_ref()) => {
                    return Err(at(
                        h.span().start,
                        format!(
                            "region {rname:?}: utc_offset_h = {}: hours from -12 to 14, please",
                            h.get_ref()
                        ),
                    ));
                }
                h => h.as_ref().map(|h| *h.get_ref()),
            };
            regions.push(Region {
                name: rname.clone(),
                nodes,
                price,
                utc_offset_h,
            });
        }
        let mut rtt_ms = BTreeMap::new();
        let table_at = raw.rtt_ms.as_ref().map_or(0, |t| t.span().start);
        for (key, ms) in raw.rtt_ms.map(Spanned::into_inner).unwrap_or_default() {
            let Some((a, b)) = key.split_once('/') else {
                return Err(at(
                    ms.span().start,
                    format!("rtt_ms key {key:?} must be \"<region>/<region>\""),
                ));
            };
            for r in [a, b] {
                if !regions.iter().any(|x| x.name == r) {
                    return Err(at(
                        ms.span().start,
                        format!("rtt_ms key {key:?}: no region {r:?} is listed"),
                    ));
                }
            }
            let value = *ms.get_ref();
            if a == b || !(value.is_finite() && (0.0..=60_000.0).contains(&value)) {
                return Err(at(
                    ms.span().start,
                    format!(
                        "rtt_ms {key:?} = {value}: two different regions and 0-60000 ms, please"
                    ),
                ));
            }
            if let Some(old) = rtt_ms.insert(pair(a, b), value)
                && old != value
            {
                return Err(at(
                    ms.span().start,
                    format!("rtt_ms between {a} and {b} is given twice ({old} and {value})"),
                ));
            }
        }
        for (i, a) in regions.iter().enumerate() {
            for b in &regions[i + 1..] {
                if !rtt_ms.contains_key(&pair(&a.name, &b.name)) {
                    return Err(at(
                        table_at,
                        format!("rtt_ms has no round trip between {} and {}", a.name, b.name),
                    ));
                }
            }
        }
        Ok(Self {
            regions,
            rtt_ms,
            peer_port_offset: raw.peer_port_offset,
        })
    }

    /// Round trip between two regions, ms (0 within a region).
    pub fn rtt_ms(&self, a: &str, b: &str) -> f64 {
        if a == b {
            return 0.0;
        }
        self.rtt_ms.get(&pair(a, b)).copied().unwrap_or(0.0)
    }

    /// The prices of region `name`, when the file gives them.
    pub fn price(&self, name: &str) -> Option<Price> {
        self.regions.iter().find(|r| r.name == name)?.price
    }

    /// Round trips between every pair of regions, ms, in file order (`[a][a]` = 0).
    pub fn rtt_matrix(&self) -> Vec<Vec<f64>> {
        let r = &self.regions;
        r.iter()
            .map(|a| r.iter().map(|b| self.rtt_ms(&a.name, &b.name)).collect())
            .collect()
    }

    /// The largest round trip between two regions, ms.
    pub fn max_rtt_ms(&self) -> f64 {
        self.rtt_ms.values().copied().fold(0.0, f64::max)
    }

    /// Raft timing for members this far apart: (heartbeat, election min, election max), ms.
    /// A heartbeat is also the deadline of an append RPC, so it must outlast the longest
    /// round trip (with room for the work at the far end); a follower stands after missing
    /// three of them.
    pub fn raft_timing_ms(&self) -> (u64, u64, u64) {
        let heartbeat = (self.max_rtt_ms() * 1.5 + 20.0).ceil().max(50.0) as u64;
        let election = (heartbeat * 3).max(200);
        (heartbeat, election, election * 2)
    }

    /// Every node, in file order, with its id, proxy address and source address.
    pub fn nodes(&self) -> Vec<TopologyNode> {
        let mut out = Vec::new();
        for r in &self.regions {
            for (k, api) in r.nodes.iter().enumerate() {
                let i = out.len() as u8;
                out.push(TopologyNode {
                    region: r.name.clone(),
                    node_id: format!("{}-{}", r.name, k + 1),
                    api: *api,
                    peer: SocketAddr::new(api.ip(), api.port() + self.peer_port_offset),
                    cluster: SocketAddr::new(api.ip(), api.port() + 2 * self.peer_port_offset),
                    source: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11u8.saturating_add(i))),
                });
            }
        }
        out
    }
}

fn pair(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_owned(), b.to_owned())
    } else {
        (b.to_owned(), a.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Topology::parse("t.toml", text)
            .expect_err("an error")
            .to_string()
    }

    #[test]
    fn t01_the_shipped_three_regions_load() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../regions/three.toml");
        let t = Topology::load(&path).expect("test setup");
        let names: Vec<_> = t.regions.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["us-east", "eu-west", "ap-south"]);
        assert_eq!(t.rtt_ms("us-east", "eu-west"), 80.0);
        assert_eq!(t.rtt_ms("ap-south", "us-east"), 190.0);
        assert_eq!(t.rtt_ms("eu-west", "ap-south"), 120.0);
        assert_eq!(t.rtt_ms("eu-west", "eu-west"), 0.0);
        // 190 ms at most: heartbeats (the append deadline) of 305 ms, elections after 0.9-1.8 s.
        assert_eq!(t.raft_timing_ms(), (305, 915, 1830));
        let nodes = t.nodes();
        assert_eq!(nodes[1].node_id, "eu-west-1");
        assert_eq!(nodes[1].api.to_string(), "127.0.0.1:7102");
        assert_eq!(nodes[1].peer.to_string(), "127.0.0.1:7202");
        assert_eq!(nodes[2].source.to_string(), "127.0.0.13");
        assert_eq!(t.price("us-east"), None, "three.toml carries no prices");
    }

    #[test]
    fn t03_the_shipped_ten_regions_load_with_their_prices() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../regions/ten.toml");
        let t = Topology::load(&path).expect("test setup");
        assert_eq!(t.regions.len(), 10);
        assert_eq!(t.nodes().len(), 10);
        // Every pair has a round trip (the load checks it); spot checks from the cited table.
        assert_eq!(t.rtt_ms("us-east-1", "eu-west-1"), 81.0);
        assert_eq!(t.rtt_ms("eu-west-1", "eu-central-1"), 20.0);
        assert_eq!(t.rtt_ms("ap-southeast-1", "sa-east-1"), 328.0);
        assert_eq!(t.max_rtt_ms(), 328.0);
        let m = t.rtt_matrix();
        assert_eq!((m.len(), m[0][0], m[0][3], m[3][0]), (10, 0.0, 81.0, 81.0));
        for r in &t.regions {
            let p = r.price.expect("every region of ten.toml has a price");
            assert!(p.memory_gib_s_usd > 0.0 && p.request_usd > 0.0 && p.egress_gib_usd > 0.0);
        }
        let zone = |name: &str| t.regions.iter().find(|r| r.name == name)?.utc_offset_h;
        assert_eq!(zone("us-east-1"), Some(-5.0));
        assert_eq!(zone("ap-southeast-2"), Some(10.0));
        let bad = "[[region]]\nname = \"a\"\nnodes = [\"127.0.0.1:7001\"]\nutc_offset_h = 15.0\n";
        let err = Topology::parse("bad.toml", bad).expect_err("15 h is no time zone");
        assert!(
            err.to_string().contains("bad.toml:4") && err.to_string().contains("utc_offset_h"),
            "{err}"
        );
        let us = t.price("us-east-1").expect("priced");
        assert_eq!(us.memory_gib_s_usd, 0.0000166667);
        assert_eq!(us.request_usd, 0.0000002);
        assert_eq!(us.egress_gib_usd, 0.02);
    }

    #[test]
    fn t04_prices_are_all_or_none_and_never_negative() {
        let priced = |name: &str, port: u16, price: &str| {
            format!("[[region]]\nname = \"{name}\"\nnodes = [\"127.0.0.1:{port}\"]\n{price}")
        };
        let good = "price = { memory_gib_s_usd = 0.00001, request_usd = 0.0000002, egress_gib_usd = 0.02 }\n";
        let rtt = "[rtt_ms]\n\"a/b\" = 10\n";
        let both = format!("{}{}{rtt}", priced("a", 1, good), priced("b", 2, good));
        let t = Topology::parse("t.toml", &both).expect("both priced");
        assert_eq!(t.price("b").map(|p| p.egress_gib_usd), Some(0.02));
        let one = format!("{}{}{rtt}", priced("a", 1, good), priced("b", 2, ""));
        let e = err(&one);
        assert!(
            e.starts_with("t.toml:6:") && e.contains("\"a\" has a price and \"b\" has none"),
            "{e}"
        );
        let negative = good.replace("egress_gib_usd = 0.02", "egress_gib_usd = -1");
        let e = err(&format!(
            "{}{}{rtt}",
            priced("a", 1, &negative),
            priced("b", 2, good)
        ));
        assert!(
            e.starts_with("t.toml:4:") && e.contains("price egress_gib_usd = -1"),
            "{e}"
        );
        let unknown = good.replace("request_usd", "requests_usd");
        let e = err(&format!(
            "{}{}{rtt}",
            priced("a", 1, &unknown),
            priced("b", 2, good)
        ));
        assert!(e.contains("unknown field"), "{e}");
    }

    #[test]
    fn t02_mistakes_are_named_with_file_and_line() {
        let two = "[[region]]\nname = \"a\"\nnodes = [\"127.0.0.1:1\"]\n[[region]]\nname = \"b\"\nnodes = [\"127.0.0.1:2\"]\n";
        assert!(
            err(two).starts_with("t.toml:") && err(two).contains("no round trip between a and b"),
            "{}",
            err(two)
        );
        let bad_addr = "[[region]]\nname = \"a\"\nnodes = [\"localhost\"]\n";
        assert!(err(bad_addr).starts_with("t.toml:3:"), "{}", err(bad_addr));
        let unknown = format!("{two}[rtt_ms]\n\"a/c\" = 3\n");
        assert!(
            err(&unknown).contains("no region \"c\""),
            "{}",
            err(&unknown)
        );
        assert!(err(&unknown).starts_with("t.toml:8:"), "{}", err(&unknown));
        let negative = format!("{two}[rtt_ms]\n\"a/b\" = -3\n");
        assert!(err(&negative).contains("0-60000 ms"), "{}", err(&negative));
        let twice = format!("{two}[rtt_ms]\n\"a/b\" = 3\n\"b/a\" = 4\n");
        assert!(err(&twice).contains("given twice"), "{}", err(&twice));
        let dup_region = "[[region]]\nname = \"a\"\nnodes = [\"127.0.0.1:1\"]\n[[region]]\nname = \"a\"\nnodes = [\"127.0.0.1:2\"]\n";
        assert!(
            err(dup_region).starts_with("t.toml:5:"),
            "{}",
            err(dup_region)
        );
        assert!(err("").contains("no [[region]]"));
        assert!(err("[[region]]\nname = \"A\"\nnodes = []\n").contains("must be 1-32"));
        assert!(err("colour = 1\n").contains("unknown field"));
    }
}
