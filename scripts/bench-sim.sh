#!/usr/bin/env bash
# Simulator benchmarks recorded in docs/benchmarks.md.
#
#   scripts/bench-sim.sh speed   one generated day of 2000 apps, all default policies
#   scripts/bench-sim.sh train   policy quality on the TRAIN variants and seeds (tune here)
#   scripts/bench-sim.sh test    policy quality on the TEST variants and seeds (report these)
#   scripts/bench-sim.sh all     all three (default)
#
# Without the `forewarm` binary (it relinks the node): EXAMPLES=1 uses the release builds of
# crates/forewarm-trace/examples/gen.rs and crates/forewarm-sim/examples/sim.rs (the same
# generate_variant and simulate calls) for `train` and `test`; build them first with
# `cargo build --release -p forewarm-trace --example gen -p forewarm-sim --example sim`.
#
# Quality: for each variant and seed, a 2000-app, 1-day trace from `forewarm trace gen
# --variant V --seed S`; `forewarm simulate --skip-minutes 600 --hours 8` over all apps with
# `--per-app`, and the middle band (0.3:0.7) is computed from the per-app rows with the
# simulator's own selection rule (rank by measured invocations, ties by trace position) and
# nearest-rank percentiles, so both bands come from one run. Every row prints p50/p75/p90/p99
# of per-app cold-start %, overall cold %, waste (MiB·s and / keepalive-10m) and pre-warms,
# then the four goal checks of forewarm against hybrid-histogram-4h/1h, then forewarm's
# breakdown by class against hybrid-histogram-4h.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/forewarm}
EXAMPLES=${EXAMPLES:-}
EX=${CARGO_TARGET_DIR:-target}/release/examples
OUT=target/bench
APPS=${APPS:-2000}
mkdir -p "$OUT"
TRAIN_VARIANTS=${TRAIN_VARIANTS:-"base exponential pareto timers shifts"}
TRAIN_SEEDS=${TRAIN_SEEDS:-"1 2"}
TEST_VARIANTS=${TEST_VARIANTS:-"lognormal onoff cycles rare"}
TEST_SEEDS=${TEST_SEEDS:-"101"}
# faascache-3000gib: FaasCache's shared idle-memory budget set to hybrid-histogram-4h's average
# idle memory on train base seed 1 (2.9 TiB); on other traces it is not the same memory (see
# docs/benchmarks.md, issue 14 FaasCache, for budgets matched per trace). spes: SPES's per-class
# windows (Lee et al., 2024), the published state of the art (docs/policies.md).
POLICIES=${POLICIES:-"keepalive-10m keepalive-60m hybrid-histogram-1h hybrid-histogram-4h forewarm forewarm-keep79 oracle faascache-3000gib spes"}

trace_dir() { echo "target/traces/$1-$APPS-s$2"; }

gen() {
  local dir
  dir=$(trace_dir "$1" "$2")
  [ -f "$dir/invocations_per_function_md.anon.d01.csv" ] && return
  if [ -n "$EXAMPLES" ]; then
    "$EX/gen" "$APPS" 1 "$2" "$1" "$dir"
  else
    "$BIN" trace gen --apps "$APPS" --days 1 --seed "$2" --variant "$1" --out "$dir"
  fi
}

speed() {
  gen base 1
  echo "## speed: all default policies, one day, $APPS apps (base, seed 1)"
  /usr/bin/time -f "wall %e s, max RSS %M KiB" "$BIN" simulate --trace "$(trace_dir base 1)" \
    --json >"$OUT/day.json"
  python3 - "$OUT/day.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"apps {r['trace']['apps']}, invocations {r['trace']['invocations']}")
for p in r["policies"]:
    rate = p["invocations"] / p["sim_seconds"] if p["sim_seconds"] else float("inf")
    print(f"{p['name']:<22} cpu {p['sim_seconds']:7.2f} s  {rate/1e6:7.2f} M invocations/s per core")
PY
}

# analyse CSV SPLIT VARIANT SEED: both bands' tables, goal checks and class breakdown.
analyse() {
  python3 - "$@" <<'PY'
import csv, math, sys
from collections import defaultdict
path, split, variant, seed = sys.argv[1:]
rows = list(csv.DictReader(open(path)))
policies = list(dict.fromkeys(r["policy"] for r in rows))
apps = {}
for r in rows:
    apps.setdefault(int(r["app_index"]), int(r["invocations"]))
# The simulator's band rule: most popular first, ties by trace position; q = rank / n.
ranked = sorted(apps, key=lambda i: (-apps[i], i))
def band(lo, hi):
    n = len(ranked)
    return {i for k, i in enumerate(ranked) if lo <= k / n < hi}
def rank(sorted_v, q):
    k = math.ceil(q * len(sorted_v))
    return sorted_v[min(max(k, 1), len(sorted_v)) - 1] if sorted_v else 0.0
def figures(sel):
    out = {}
    for p in policies:
        rs = [r for r in rows if r["policy"] == p and int(r["app_index"]) in sel]
        inv = sum(int(r["invocations"]) for r in rs)
        cold = sum(int(r["cold_starts"]) for r in rs)
        pct = sorted(100 * int(r["cold_starts"]) / int(r["invocations"]) for r in rs if int(r["invocations"]))
        out[p] = dict(p50=rank(pct, .5), p75=rank(pct, .75), p90=rank(pct, .9), p99=rank(pct, .99),
                      cold=100 * cold / max(inv, 1), cold_n=cold, inv=inv,
                      waste=sum(float(r["idle_mib_s"]) for r in rs),
                      prewarms=sum(int(r["prewarms"]) for r in rs),
                      kept_cold=sum(r["reason"].startswith("cold") for r in rs), apps=len(rs),
                      rows=rs)
    return out
def ratio(a, b):
    return f"{a / b:.2f}" if b > 0 else ("1.00" if a == 0 else "inf")
for name, (lo, hi) in [("0.3:0.7", (0.3, 0.7)), ("0:1", (0.0, 1.0))]:
    f = figures(band(lo, hi))
    ka10 = f.get("keepalive-10m", {}).get("waste", 0) or 1
    print(f"### {split} {variant} seed {seed}, --app-band {name}: {f[policies[0]]['apps']} apps, {f[policies[0]]['inv']} invocations")
    print("| policy | p50 | p75 | p90 | p99 | cold % | waste MiB·s | waste/ka10 | pre-warms | kept cold |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for p in policies:
        x = f[p]
        print(f"| {p} | {x['p50']:.2f} | {x['p75']:.2f} | {x['p90']:.2f} | {x['p99']:.2f} | {x['cold']:.3f} | {x['waste']:.4g} | {x['waste']/ka10:.3f} | {x['prewarms']} | {x['kept_cold']} |")
    if not all(k in f for k in ("forewarm", "hybrid-histogram-4h", "hybrid-histogram-1h")):
        continue
    fw, h4, h1 = f["forewarm"], f["hybrid-histogram-4h"], f["hybrid-histogram-1h"]
    checks = [
        ("p75 <= 0.5 x hh-4h", fw["p75"] <= 0.5 * h4["p75"], ratio(fw["p75"], h4["p75"])),
        ("p90 <= hh-4h", fw["p90"] <= h4["p90"], ratio(fw["p90"], h4["p90"])),
        ("cold % <= hh-4h", fw["cold"] <= h4["cold"], ratio(fw["cold"], h4["cold"])),
        ("waste <= hh-1h", fw["waste"] <= h1["waste"], ratio(fw["waste"], h1["waste"])),
    ]
    print("goal: " + "; ".join(f"{n}: {'MET' if ok else 'NOT MET'} ({r}x)" for n, ok, r in checks))
    # The goal's ratios for every policy (cold lines vs hh-4h, waste vs hh-1h).
    print("ratios: " + "; ".join(
        f"{p} p75 {ratio(x['p75'], h4['p75'])} p90 {ratio(x['p90'], h4['p90'])} "
        f"cold {ratio(x['cold'], h4['cold'])} waste {ratio(x['waste'], h1['waste'])}"
        for p, x in f.items() if p not in ("hybrid-histogram-4h", "hybrid-histogram-1h")))
    # Breakdown by class: forewarm (and spes, when it ran) vs hybrid-histogram-4h.
    order = ["1-2", "3-10", "11-100", "101-1000", ">1000", "timer"]
    for who in [p for p in ("forewarm", "spes") if p in f]:
        cls = defaultdict(lambda: defaultdict(lambda: [0, 0, 0.0, 0]))
        for p in (who, "hybrid-histogram-4h"):
            for r in f[p]["rows"]:
                c = cls[r["class"]][p]
                c[0] += int(r["invocations"]); c[1] += int(r["cold_starts"]); c[2] += float(r["idle_mib_s"])
                c[3] += r["reason"].startswith("cold")
        print(f"by class, {who} vs hh-4h: " + "; ".join(
            f"{k} cold {ratio(cls[k][who][1], cls[k]['hybrid-histogram-4h'][1])}x waste "
            f"{ratio(cls[k][who][2], cls[k]['hybrid-histogram-4h'][2])}x"
            + (f" ({cls[k][who][3]} kept cold)" if cls[k][who][3] else "")
            for k in order if k in cls))
    print()
PY
}

quality() {
  local split=$1 variants=$2 seeds=$3 v s args=() names=()
  read -ra names <<<"$POLICIES"
  for p in "${names[@]}"; do args+=(--policy "$p"); done
  for v in $variants; do
    for s in $seeds; do
      gen "$v" "$s"
      local csv="$OUT/$split-$v-s$s.csv"
      if [ -n "$EXAMPLES" ]; then
        "$EX/sim" "$(trace_dir "$v" "$s")" 600 8 "$s" "$csv" "${names[@]}" >"$OUT/$split-$v-s$s.txt"
      else
        "$BIN" simulate --trace "$(trace_dir "$v" "$s")" --skip-minutes 600 --hours 8 \
          --seed "$s" --json --per-app "$csv" "${args[@]}" >"$OUT/$split-$v-s$s.json"
      fi
      analyse "$csv" "$split" "$v" "$s"
    done
  done
}

case "${1:-all}" in
  speed) speed ;;
  train) quality train "$TRAIN_VARIANTS" "$TRAIN_SEEDS" ;;
  test) quality test "$TEST_VARIANTS" "$TEST_SEEDS" ;;
  all)
    speed
    quality train "$TRAIN_VARIANTS" "$TRAIN_SEEDS"
    quality test "$TEST_VARIANTS" "$TEST_SEEDS"
    ;;
  analyse) shift; analyse "$@" ;;
  *) echo "usage: $0 [speed|train|test|all|analyse CSV SPLIT VARIANT SEED]" >&2; exit 2 ;;
esac
