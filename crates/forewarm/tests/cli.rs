//! The command-line contract scripts depend on: names, JSON shape, exit codes, messages.

use std::path::Path;
use std::process::{Command, Output};

fn forewarm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_forewarm"))
        .args(args)
        .output()
        .expect("running forewarm")
}

fn gen_trace(dir: &Path) {
    let out = forewarm(&[
        "trace",
        "gen",
        "--apps",
        "80",
        "--days",
        "1",
        "--seed",
        "4",
        "--out",
        dir.to_str().expect("utf-8 path"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The policy names of a `simulate --json` report, in order.
fn policy_names(report: &serde_json::Value) -> Vec<&str> {
    report["policies"]
        .as_array()
        .expect("policies")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect()
}

#[test]
fn t01_simulate_json_has_the_documented_shape() {
    let dir = tempfile::tempdir().expect("tempdir");
    gen_trace(dir.path());
    let plot = dir.path().join("pareto.svg");
    let out = forewarm(&[
        "simulate",
        "--trace",
        dir.path().to_str().expect("utf-8"),
        "--hours",
        "3",
        "--skip-minutes",
        "30",
        "--app-band",
        "0.1:0.9",
        "--json",
        "--plot",
        plot.to_str().expect("utf-8"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["trace"]["minutes"], 180);
    assert!(v["trace"]["apps"].as_u64().expect("apps") > 0);
    assert!(v["trace"]["dir"].is_string() && v["trace"]["invocations"].is_u64());
    let names = policy_names(&v);
    assert_eq!(
        names,
        [
            "keepalive-10m",
            "keepalive-60m",
            "hybrid-histogram-1h",
            "hybrid-histogram-4h",
            "forewarm",
            "oracle"
        ]
    );
    for p in v["policies"].as_array().expect("policies") {
        for key in ["invocations", "cold_starts", "prewarms", "misfits"] {
            assert!(p[key].is_u64(), "{key} in {p}");
        }
        for key in ["cold_start_pct", "wasted_memory_mib_s", "sim_seconds"] {
            assert!(p[key].is_f64() || p[key].is_u64(), "{key} in {p}");
        }
        for q in ["p50", "p75", "p90", "p99"] {
            assert!(p["app_cold_start_pct"][q].is_number(), "{q} in {p}");
        }
    }
    let svg = std::fs::read_to_string(&plot).expect("plot written");
    assert!(svg.starts_with("<svg") && svg.contains("hybrid-histogram-4h"));
}

#[test]
fn t02_table_and_chosen_policies() {
    let dir = tempfile::tempdir().expect("tempdir");
    gen_trace(dir.path());
    let out = forewarm(&[
        "simulate",
        "--trace",
        dir.path().to_str().expect("utf-8"),
        "--hours",
        "2",
        "--policy",
        "no-unloading",
        "--policy",
        "keepalive-5m",
        "--profiles",
        "--sample",
        "5",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("5 apps"), "{text}");
    assert!(
        text.contains("no-unloading") && text.contains("keepalive-5m"),
        "{text}"
    );
    assert!(!text.contains("oracle"), "{text}");
}

#[test]
fn t03_bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8");
    let cases: [(&[&str], &str); 6] = [
        (
            &["bench", "docker", "--rounds", "0"],
            "--rounds must be at least 1",
        ),
        (
            &["simulate", "--trace", d, "--policy", "lru"],
            "unknown policy \"lru\"",
        ),
        (
            &["simulate", "--trace", d, "--app-band", "0.7:0.3"],
            "LO:HI with 0 <= LO < HI <= 1",
        ),
        (
            &["simulate", "--trace", d, "--hours=0"],
            "--hours must be a positive",
        ),
        (&["simulate", "--trace", d], "no trace days found"),
        (
            &["trace", "stats", "/nonexistent/forewarm"],
            "/nonexistent/forewarm",
        ),
    ];
    for (args, want) in cases {
        let out = forewarm(args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        // Each cause once (an error that quotes its source is not followed by it again).
        let first_line = err.lines().next().unwrap_or_default();
        for part in first_line.split(": ").filter(|p| p.len() > 8) {
            assert_eq!(
                first_line.matches(part).count(),
                1,
                "{args:?}: {part:?} repeated in {first_line}"
            );
        }
    }
}

#[test]
fn t04_trace_stats_prints_the_published_comparison() {
    let dir = tempfile::tempdir().expect("tempdir");
    gen_trace(dir.path());
    let out = forewarm(&["trace", "stats", dir.path().to_str().expect("utf-8")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for row in [
        "apps invoked <= 1/hour",
        "trigger timer",
        "diurnal swing",
        "app memory MB",
    ] {
        assert!(text.contains(row), "{row} missing in {text}");
    }
}

#[test]
fn t05_regions_simulate_reports_latency_and_dollars() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../regions");
    let ten = format!("{root}/ten.toml");
    let three = format!("{root}/three.toml");
    // A trace without regional demand is refused with what to run.
    gen_trace(dir.path());
    let sim = |topology: &str, extra: &[&str]| {
        let mut args = vec![
            "simulate",
            "--trace",
            d,
            "--hours",
            "3",
            "--regions",
            topology,
            "--json",
        ];
        args.extend_from_slice(extra);
        forewarm(&args)
    };
    let out = sim(&ten, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("no regional demand"),
        "{err}"
    );
    let out = forewarm(&[
        "trace",
        "gen",
        "--apps",
        "40",
        "--seed",
        "4",
        "--out",
        d,
        "--regions",
        &ten,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = sim(&ten, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let names = policy_names(&v);
    assert_eq!(
        names,
        [
            "hybrid-histogram-4h-isolated",
            "hybrid-histogram-4h",
            "forewarm-isolated",
            "forewarm",
            "forewarm-geo"
        ]
    );
    for p in v["policies"].as_array().expect("policies") {
        let cost = p["cost_usd"]["total"].as_f64().expect("cost_usd.total");
        assert!(cost > 0.0, "{p}");
        assert!(p["latency_ms"]["p99"].as_f64().expect("latency_ms.p99") >= 0.0);
        assert!(p["cold_start_pct"].is_number() && p["wasted_memory_mib_s"].is_number());
    }
    // Isolated regions never send a request elsewhere.
    assert_eq!(v["policies"][0]["served_elsewhere_pct"].as_f64(), Some(0.0));
    let other = dir.path().join("two.toml").display().to_string();
    let price =
        "price = { memory_gib_s_usd = 0.00001, request_usd = 0.0000002, egress_gib_usd = 0.02 }";
    std::fs::write(
        &other,
        format!(
            "[[region]]\nname = \"a\"\nnodes = [\"127.0.0.1:7001\"]\n{price}\n\
             [[region]]\nname = \"b\"\nnodes = [\"127.0.0.1:7002\"]\n{price}\n\
             [rtt_ms]\n\"a/b\" = 10\n"
        ),
    )
    .expect("write");
    // A topology without prices, one of other regions than the demand's, a policy that cannot
    // run per region, a budget below 0.
    for (topology, extra, want) in [
        (three.as_str(), &[][..], "region \"us-east\" has no price"),
        (other.as_str(), &[][..], "regional demand is for regions"),
        (
            ten.as_str(),
            &["--policy", "oracle-geo"][..],
            "not with --regions",
        ),
        (
            ten.as_str(),
            &["--max-extra-latency-ms=-1"][..],
            "--max-extra-latency-ms",
        ),
    ] {
        let out = sim(topology, extra);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(want),
            "{extra:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn node_config_errors_name_file_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("node.toml");
    std::fs::write(
        &bad,
        "node_id = \"n1\"\n\n[capacity]\ncontainers = \"many\"\n",
    )
    .expect("write");
    let out = forewarm(&["node", "--config", bad.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:4:14:", bad.display())), "{err}");
    std::fs::write(&bad, "policy = \"keepalive-0m\"\n").expect("write");
    let err = String::from_utf8_lossy(
        &forewarm(&["node", "--config", bad.to_str().expect("utf-8")]).stderr,
    )
    .into_owned();
    assert!(
        err.contains(":1:10:") && err.contains("unknown policy"),
        "{err}"
    );
    std::fs::write(&bad, "time_scale = 0.0\n").expect("write");
    let err = String::from_utf8_lossy(
        &forewarm(&["node", "--config", bad.to_str().expect("utf-8")]).stderr,
    )
    .into_owned();
    assert!(err.contains("time_scale 0 must be in (0, 3600]"), "{err}");
    for (policy, why) in [
        ("oracle", "needs the future"),
        ("faascache-3000gib", "every application at once"),
    ] {
        std::fs::write(&bad, format!("policy = \"{policy}\"\n")).expect("write");
        let err = String::from_utf8_lossy(
            &forewarm(&["node", "--config", bad.to_str().expect("utf-8")]).stderr,
        )
        .into_owned();
        assert!(err.contains(why), "{policy}: {err}");
    }
    let missing = dir.path().join("absent.toml");
    let err = String::from_utf8_lossy(
        &forewarm(&["node", "--config", missing.to_str().expect("utf-8")]).stderr,
    )
    .into_owned();
    assert!(err.contains("absent.toml"), "{err}");
}

#[test]
fn the_shipped_node_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../cluster/node.toml");
    let config = forewarm_node::NodeConfig::load(&path).expect("cluster/node.toml loads");
    assert_eq!(config.node_id, "node-1");
    assert_eq!(config.capacity.containers, 64);
}

#[test]
fn completions_are_printed_for_a_shell_and_an_unknown_shell_is_refused() {
    let bash = forewarm(&["completions", "bash"]);
    assert!(bash.status.success(), "{bash:?}");
    let script = String::from_utf8_lossy(&bash.stdout);
    for word in [
        "_forewarm()",
        "simulate",
        "status",
        "completions",
        "--log-format",
    ] {
        assert!(script.contains(word), "{word} missing from the bash script");
    }
    let zsh = forewarm(&["completions", "zsh"]);
    assert!(zsh.status.success(), "{zsh:?}");
    assert!(String::from_utf8_lossy(&zsh.stdout).starts_with("#compdef forewarm"));
    let bad = forewarm(&["completions", "cmd.exe"]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid value 'cmd.exe'"));
}
