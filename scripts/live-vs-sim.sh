#!/usr/bin/env bash
# The live node against the simulator on identical input (issue 17, docs/benchmarks.md).
#
#   scripts/live-vs-sim.sh [POLICY...]   default: forewarm keepalive-10m hybrid-histogram-4h
#
# For each policy: a fresh `forewarm up --policy P --time-scale SPEED` on Docker, then
# `forewarm replay --apps APPS --minutes MINUTES --app-band BAND --speed SPEED --json` from a
# cold start, then the node is stopped (its containers removed). Then one
# `forewarm simulate --apps APPS --speed SPEED --hours MINUTES/60 --app-band BAND` with every
# policy on the same trace: the same applications and workloads (crates/forewarm-sim/src/
# replayed.rs), with the live start time as the simulator's cold start (the first policy's
# replayed cold-start p50 x SPEED, in trace time). Prints, per policy, the overall cold-start
# % and the wasted memory-time (MiB·s of trace time) live and simulated, and their ratio.
#
# Env: TRACE (default target/traces/azure-2000, generated like `make sim` when missing),
# APPS (20), MINUTES (240), BAND (0.3:0.7), SPEED (60), PORT (7190), OUT (target/live-vs-sim),
# BIN (the forewarm binary; default the static build of `make images`), FOREWARM_RUNNER_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
STATIC=target/x86_64-unknown-linux-gnu/release
BIN=${BIN:-$STATIC/forewarm}
export FOREWARM_RUNNER_BIN=${FOREWARM_RUNNER_BIN:-$PWD/$STATIC/forewarm-runner}
TRACE=${TRACE:-target/traces/azure-2000}
APPS=${APPS:-20}
MINUTES=${MINUTES:-240}
BAND=${BAND:-0.3:0.7}
SPEED=${SPEED:-60}
PORT=${PORT:-7190}
OUT=${OUT:-target/live-vs-sim}
POLICIES=("$@")
[ ${#POLICIES[@]} -gt 0 ] || POLICIES=(forewarm keepalive-10m hybrid-histogram-4h)
export FOREWARM_ADMIN_TOKEN=live-vs-sim-admin
mkdir -p "$OUT"

[ -x "$BIN" ] || { echo "live-vs-sim: no $BIN (run make images)" >&2; exit 1; }
if [ ! -f "$TRACE/invocations_per_function_md.anon.d01.csv" ]; then
  "$BIN" trace gen --apps 2000 --days 1 --seed 1 --out "$TRACE"
fi

node_pid=
stop_node() {
  if [ -n "$node_pid" ] && kill -0 "$node_pid" 2>/dev/null; then
    kill -INT "$node_pid"
    # Bounded: the node removes its containers, then exits.
    for _ in $(seq 1 120); do kill -0 "$node_pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$node_pid" 2>/dev/null || true
  fi
  node_pid=
}
trap stop_node EXIT

for policy in "${POLICIES[@]}"; do
  data=$(mktemp -d)
  "$BIN" up --policy "$policy" --time-scale "$SPEED" --listen "127.0.0.1:$PORT" \
    --node-id "live-vs-sim-$policy" --data-dir "$data" >"$OUT/node-$policy.log" 2>&1 &
  node_pid=$!
  ready=
  for _ in $(seq 1 120); do
    if curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then ready=1; break; fi
    kill -0 "$node_pid" 2>/dev/null || break
    sleep 0.5
  done
  [ -n "$ready" ] || { echo "live-vs-sim: the node for $policy did not get ready" >&2;
                       cat "$OUT/node-$policy.log" >&2; exit 1; }
  echo "replaying $APPS apps x $MINUTES trace minutes at speed $SPEED under $policy" >&2
  "$BIN" replay --trace "$TRACE" --url "http://127.0.0.1:$PORT" --apps "$APPS" \
    --minutes "$MINUTES" --app-band "$BAND" --speed "$SPEED" --json >"$OUT/live-$policy.json"
  # The node's counters at the end (pre-warms, late pre-warms, cold starts beside a too-small
  # idle container), for the summary below.
  curl -fsS -H "authorization: Bearer $FOREWARM_ADMIN_TOKEN" "http://127.0.0.1:$PORT/metrics" \
    >"$OUT/metrics-$policy.txt" || true
  stop_node
  rm -rf "$data"
done

# The live start time in trace ms: the first policy's replayed cold starts' p50 x SPEED.
cold_ms=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); \
print(round(r['starts']['cold']['p50_ms'] * float(sys.argv[2])))" \
  "$OUT/live-${POLICIES[0]}.json" "$SPEED")
policy_args=()
for policy in "${POLICIES[@]}"; do policy_args+=(--policy "$policy"); done
hours=$(python3 -c "print($MINUTES / 60)")
"$BIN" simulate --trace "$TRACE" --hours "$hours" --app-band "$BAND" --apps "$APPS" \
  --speed "$SPEED" --cold-start-ms "$cold_ms" "${policy_args[@]}" --json >"$OUT/sim.json"

python3 - "$OUT" "$cold_ms" "${POLICIES[@]}" <<'PY'
import json, sys
out, cold_ms, policies = sys.argv[1], sys.argv[2], sys.argv[3:]
sim = {p["name"]: p for p in json.load(open(f"{out}/sim.json"))["policies"]}
def counter(policy, name):
    try:
        for line in open(f"{out}/metrics-{policy}.txt"):
            if line.startswith(name + " "):
                return int(float(line.split()[1]))
    except OSError:
        pass
    return -1
print(f"simulator cold start {cold_ms} ms of trace time (live cold p50 x speed)")
print(f"{'policy':<22} {'cold % live':>11} {'sim':>7} {'ratio':>6} "
      f"{'waste MiB·s live':>17} {'sim':>11} {'ratio':>6} {'served':>7} {'errors':>7}")
for p in policies:
    live = json.load(open(f"{out}/live-{p}.json"))
    s = sim[p]
    waste = live.get("wasted_memory_mib_s") or float("nan")
    ratio = lambda a, b: a / b if b else float("nan")  # noqa: E731
    print(f"{p:<22} {live['cold_start_pct']:>11.2f} {s['cold_start_pct']:>7.2f} "
          f"{ratio(live['cold_start_pct'], s['cold_start_pct']):>6.2f} {waste:>17.3e} "
          f"{s['wasted_memory_mib_s']:>11.3e} {ratio(waste, s['wasted_memory_mib_s']):>6.2f} "
          f"{live['served']:>7} {sum(live['errors'].values()):>7}")
print("live counters: pre-warms / of them late (a request waited for the start, counted cold) /"
      " cold starts beside a too-small idle container")
for p in policies:
    print(f"{p:<22} {counter(p, 'forewarm_prewarms_total'):>6} "
          f"{counter(p, 'forewarm_prewarms_late_total'):>6} "
          f"{counter(p, 'forewarm_cold_starts_outgrown_total'):>6}")
PY
