//! `forewarm status`: one node's readiness, its cluster, its pool and its counters, read from
//! its API (`/readyz`, `/v1/cluster`, `/v1/pool`, `/metrics`) and printed for a person, or as
//! one JSON object. Exits 1 when the node is not ready (after printing why).

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use forewarm_http::Method;
use forewarm_node::client::NodeClient;
use serde_json::{Value, json};

use crate::cli::StatusArgs;
use crate::node_cmd::runtime;

/// What was read from the node.
struct Status {
    ready: Value,
    cluster: Value,
    pool: Value,
    /// `forewarm_invocations_total` by start kind, `forewarm_invocation_errors_total` by reason.
    invocations: BTreeMap<String, f64>,
    errors: BTreeMap<String, f64>,
}

pub fn run(args: StatusArgs) -> anyhow::Result<()> {
    let client = NodeClient::new(&args.url, Some(args.admin_token.clone()))
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("--url {}", args.url))?;
    let status = runtime()?.block_on(read(&client, &args.url))?;
    let ready = status.ready["status"] == "ready";
    if args.json {
        println!(
            "{}",
            json!({"ready": status.ready, "cluster": status.cluster, "pool": status.pool,
                   "invocations": status.invocations, "errors": status.errors})
        );
    } else {
        print!("{}", render(&status, &args.url));
    }
    if !ready {
        bail!("{} is not ready", args.url);
    }
    Ok(())
}

async fn read(client: &NodeClient, url: &str) -> anyhow::Result<Status> {
    let get = |path: &'static str| async move {
        client
            .json(Method::GET, path, Vec::new())
            .await
            .map_err(|e| anyhow::anyhow!("{url}{path}: {e}"))
    };
    let (_, ready) = get("/readyz").await?;
    let (status, cluster) = get("/v1/cluster").await?;
    if status == 401 || status == 403 {
        bail!(
            "{url}: the admin token was refused ({status}): give --admin-token or FOREWARM_ADMIN_TOKEN"
        );
    }
    let (_, pool) = get("/v1/pool").await?;
    let (_, _, text) = client
        .call(Method::GET, "/metrics", Vec::new())
        .await
        .map_err(|e| anyhow::anyhow!("{url}/metrics: {e}"))?;
    let text = String::from_utf8_lossy(&text);
    Ok(Status {
        ready,
        cluster,
        pool,
        invocations: by_label(&text, "forewarm_invocations_total", "start"),
        errors: by_label(&text, "forewarm_invocation_errors_total", "reason"),
    })
}

/// The samples of counter `name` in Prometheus text, by the value of `label`.
fn by_label(text: &str, name: &str, label: &str) -> BTreeMap<String, f64> {
    let prefix = format!("{name}{{{label}=\"");
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(&prefix)?;
            let (value_of_label, rest) = rest.split_once("\"}")?;
            let n = rest.trim().parse().ok()?;
            Some((value_of_label.to_owned(), n))
        })
        .collect()
}

fn render(s: &Status, url: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let c = &s.cluster;
    let text = |v: &Value| v.as_str().unwrap_or("?").to_owned();
    let _ = writeln!(
        out,
        "node {} (region {}) at {url}: {}",
        text(&c["node"]),
        text(&c["region"]),
        text(&s.ready["status"]).replace('_', " ")
    );
    for reason in s.ready["reasons"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "  not ready: {}", text(reason));
    }
    let _ = writeln!(
        out,
        "raft: {} in term {}, applied index {}; leader {}",
        text(&c["state"]),
        c["term"],
        c["applied_index"],
        c["leader_name"].as_str().unwrap_or("unknown")
    );
    let ms = |v: &Value| {
        v.as_f64()
            .map_or_else(|| String::from("-"), |x| format!("{x:.1}"))
    };
    let _ = writeln!(
        out,
        "{:<16} {:<12} {:<8} {:>8} {:>8}",
        "member", "region", "role", "rtt ms", "queue ms"
    );
    for m in c["members"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "{:<16} {:<12} {:<8} {:>8} {:>8}",
            text(&m["name"]),
            text(&m["region"]),
            text(&m["role"]),
            ms(&m["rtt_ms"]),
            ms(&m["queue_ms"])
        );
    }
    let containers = s.pool["containers"].as_array().cloned().unwrap_or_default();
    let count = |state: &str| containers.iter().filter(|e| e["state"] == state).count();
    let held: u64 = containers
        .iter()
        .filter_map(|e| e["memory_mib"].as_u64())
        .sum();
    let cap = &s.pool["capacity"];
    let _ = writeln!(
        out,
        "pool: {} containers ({} busy, {} idle, {} starting) of {}; {held} of {} MiB",
        containers.len(),
        count("busy"),
        count("idle"),
        count("starting"),
        cap["containers"],
        cap["memory_mib"]
    );
    // Containers by code type and class.
    let mut groups: BTreeMap<(String, String), [usize; 3]> = BTreeMap::new();
    for e in &containers {
        let key = (
            format!("{}/{}", text(&e["tenant"]), text(&e["code"])),
            text(&e["class"]),
        );
        let slot = match e["state"].as_str() {
            Some("busy") => 0,
            Some("idle") => 1,
            _ => 2,
        };
        groups.entry(key).or_default()[slot] += 1;
    }
    if !groups.is_empty() {
        let _ = writeln!(
            out,
            "  {:<32} {:<14} {:>5} {:>5} {:>8}",
            "code type", "class", "busy", "idle", "starting"
        );
        for ((code, class), [busy, idle, starting]) in &groups {
            let _ = writeln!(
                out,
                "  {code:<32} {class:<14} {busy:>5} {idle:>5} {starting:>8}"
            );
        }
    }
    let served: f64 = s.invocations.values().sum();
    let cold = s.invocations.get("cold").copied().unwrap_or(0.0);
    let share = if served > 0.0 {
        format!("{:.1}% cold", 100.0 * cold / served)
    } else {
        String::from("none yet")
    };
    let kinds: Vec<String> = s
        .invocations
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    let failed: f64 = s.errors.values().sum();
    let _ = writeln!(
        out,
        "invocations: {served} ({}; {share}), failed {failed}",
        kinds.join(", ")
    );
    let _ = writeln!(
        out,
        "idle memory so far: {:.0} MiB·s",
        s.pool["idle_memory_mib_s_total"].as_f64().unwrap_or(0.0)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_read_by_label() {
        let text = "# TYPE forewarm_invocations_total counter\n\
                    forewarm_invocations_total{start=\"cold\"} 2\n\
                    forewarm_invocations_total{start=\"warm\"} 7\n\
                    forewarm_invocation_errors_total{reason=\"timeout\"} 1\n";
        let got = by_label(text, "forewarm_invocations_total", "start");
        assert_eq!(
            got,
            BTreeMap::from([("cold".into(), 2.0), ("warm".into(), 7.0)])
        );
        let errors = by_label(text, "forewarm_invocation_errors_total", "reason");
        assert_eq!(errors, BTreeMap::from([("timeout".into(), 1.0)]));
    }
}
