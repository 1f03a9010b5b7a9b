#!/usr/bin/env bash
# Simulator benchmarks recorded in docs/benchmarks.md: speed on one generated day of 2000
# apps, and policy quality over several seeds. Prints markdown-ready lines.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/forewarm
OUT=target/bench
mkdir -p "$OUT"
for seed in 1 2 3; do
  dir=target/traces/bench-2000-s$seed
  [ -f "$dir/invocations_per_function_md.anon.d01.csv" ] ||
    $BIN trace gen --apps 2000 --days 1 --seed "$seed" --out "$dir"
done
echo "## speed: all default policies, one day, 2000 apps (seed 1)"
/usr/bin/time -f "wall %e s, max RSS %M KiB" $BIN simulate --trace target/traces/bench-2000-s1 \
  --json >"$OUT/day.json"
python3 - "$OUT/day.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"apps {r['trace']['apps']}, invocations {r['trace']['invocations']}")
for p in r["policies"]:
    rate = p["invocations"] / p["sim_seconds"] if p["sim_seconds"] else float("inf")
    print(f"{p['name']:<22} cpu {p['sim_seconds']:7.2f} s  {rate/1e6:7.2f} M invocations/s per core")
PY
for band in "0.3:0.7" "0:1"; do
  echo "## quality: 8 h after a 10 h warm-up, --app-band $band"
  for seed in 1 2 3; do
    $BIN simulate --trace target/traces/bench-2000-s$seed --skip-minutes 600 --hours 8 \
      --app-band "$band" --seed "$seed" --json \
      --policy keepalive-10m --policy keepalive-60m --policy hybrid-histogram-1h \
      --policy hybrid-histogram-4h --policy forewarm --policy forewarm-keep92 \
      --policy forewarm-100000mib --policy no-unloading --policy oracle >"$OUT/q-$seed.json"
    python3 - "$OUT/q-$seed.json" "$seed" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
ps = {p["name"]: p for p in r["policies"]}
base = ps["keepalive-10m"]["wasted_memory_mib_s"]
print(f"seed {sys.argv[2]}: {r['trace']['apps']} apps, {r['trace']['invocations']} invocations")
for n, p in ps.items():
    a = p["app_cold_start_pct"]
    print(f"  {n:<22} p75 {a['p75']:6.2f}%  p50 {a['p50']:6.2f}%  cold {p['cold_start_pct']:6.3f}%  waste/ka10 {p['wasted_memory_mib_s']/base:6.3f}")
fw, h4, h1 = ps["forewarm"], ps["hybrid-histogram-4h"], ps["hybrid-histogram-1h"]
ok_cold = fw["app_cold_start_pct"]["p75"] <= 0.5 * h4["app_cold_start_pct"]["p75"]
ok_waste = fw["wasted_memory_mib_s"] <= h1["wasted_memory_mib_s"]
print(f"  goal: p75 <= 0.5 x hh-4h: {ok_cold}; waste <= hh-1h: {ok_waste}")
PY
  done
done
