//! Keep workloads off the host: one `INPUT` rule that drops every connection a tenant network
//! opens to the host, whatever host address it aims at.
//!
//! A tenant network is `internal` (Docker routes nothing out of it), but the host is not "out":
//! the bridge's own address (`.1` of the tenant's /24) and every other address of the host
//! (the default bridge's `172.17.0.1`, the host's own) are local to it, so a workload could
//! reach any host service listening on all interfaces — a node started with `listen =
//! "0.0.0.0:…"`, the Docker API if exposed, sshd. Seen from inside a container with the test
//! probe (`conformance::docker_a_workload_reaches_neither_another_tenant_nor_the_host`: both
//! addresses answered before this rule). Docker's isolation chains filter forwarded traffic
//! only; traffic to the host goes through `INPUT`.
//!
//! Tenant networks' bridges are named [`bridge_name`] (`fwt` + 12 hex digits), so one rule
//! covers them all: `-i fwt+ -m conntrack ! --ctstate ESTABLISHED,RELATED -j DROP`. What the
//! host opens to a runner (the node's calls) is established, so its answers still come in.

use std::process::Command;

/// Prefix of every tenant network's bridge interface.
pub const BRIDGE_PREFIX: &str = "fwt";

/// The rule, after the chain name.
const RULE: [&str; 9] = [
    "-i",
    "fwt+",
    "-m",
    "conntrack",
    "!",
    "--ctstate",
    "ESTABLISHED,RELATED",
    "-j",
    "DROP",
];

/// The bridge interface name of the tenant network `network`: [`BRIDGE_PREFIX`] and 12 hex
/// digits of its FNV-1a hash (an interface name holds at most 15 characters).
pub fn bridge_name(network: &str) -> String {
    let hash = network.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{BRIDGE_PREFIX}{:012x}", hash >> 16)
}

/// Install the rule unless it is there (`iptables -C`, then `-I INPUT 1`): `Ok(true)` when
/// installed now, `Ok(false)` when it was already, `Err` with why not (no `iptables`, not
/// root). Blocking: run it off an async worker.
pub fn install() -> Result<bool, String> {
    let iptables = |action: &str| {
        // `-w`: wait for the xtables lock (Docker takes it too).
        let mut args = vec!["-w", action, "INPUT"];
        if action == "-I" {
            args.push("1");
        }
        args.extend(RULE);
        Command::new("iptables")
            .args(&args)
            .output()
            .map_err(|e| format!("iptables: {e}"))
    };
    let check = iptables("-C")?;
    if check.status.success() {
        return Ok(false);
    }
    let insert = iptables("-I")?;
    if insert.status.success() {
        Ok(true)
    } else {
        Err(format!(
            "iptables -I INPUT: {}",
            String::from_utf8_lossy(&insert.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_names_fit_an_interface_name_and_differ() {
        let a = bridge_name("forewarm-tenant-acme");
        let b = bridge_name("forewarm-tenant-beta");
        assert_eq!(a.len(), 15, "{a}");
        assert!(a.starts_with(BRIDGE_PREFIX));
        assert_ne!(a, b);
        assert_eq!(a, bridge_name("forewarm-tenant-acme"));
    }
}
