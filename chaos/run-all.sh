#!/usr/bin/env bash
# Run the chaos scenarios and print one table: scenario, requests, acknowledged, lost,
# duplicated, stale reads, leaked, failover ms ("-": not observed by that scenario).
#
#   chaos/run-all.sh [--quick]    (needs `make build` or `make images`, and a Docker engine)
#
# --quick runs small versions (within a few minutes; CI runs it): S8 a burst of 200 from
# zero with S12 after it, S1 three leader kills, S4 five random kills, S5 one crash of all
# nodes, S9 a node killed under 8 running invocations, S10 a tenant flooding at 20x its
# share, S6 a full disk, S14 a cluster member's full disk (the leader's, then a follower's), S7 a Docker engine that errs and stalls, S2 a follower cut off and S3 the leader isolated on the compose cluster (8 s each),
# S13 a workload probing its node's listeners on the compose cluster.
# Without it: S8 with 400, S1 and S4 ten rounds, S5 three, S2 and S3 20 s, and the compose
# region cut (partition-region.sh). Every registry scenario records a history of concurrent
# clients judged by chaos/lib/lin.py, whose own self-test runs first.
# Exit 0 only when every scenario passed its checker.
set -uo pipefail
cd "$(dirname "$0")/.."

QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
if [ "$QUICK" = 1 ]; then
  BURST=200 ROUNDS=3 KILLS=5 CRASHES=1 CUT=8
else
  BURST=400 ROUNDS=10 KILLS=10 CRASHES=3 CUT=20
fi
LOG=$(mktemp -d /tmp/forewarm-chaos-all.XXXXXX)
failed=()

run() { # name command...
  local name=$1
  shift
  echo "== $name: $*"
  if "$@" > "$LOG/$name.log" 2>&1; then
    echo "   passed"
  else
    echo "   FAILED (log: $LOG/$name.log)"
    tail -n 20 "$LOG/$name.log" | sed 's/^/   | /'
    failed+=("$name")
  fi
}

run checker python3 chaos/lib/lin.py --self-test
run burst chaos/burst-from-zero.sh "$BURST"
run kill-leader chaos/kill-leader.py "$ROUNDS"
run kill-random chaos/kill-random.py "$KILLS"
run kill-all chaos/kill-all.py "$CRASHES"
run kill-node-mid-invocation chaos/kill-node-mid-invocation.py
run noisy-tenant chaos/noisy-tenant.py
run disk-full chaos/disk-full.py
run disk-full-member chaos/disk-full-member.py
run docker-faults chaos/docker-faults.py
run partition-follower chaos/partition-follower.py "$CUT"
run isolate-leader chaos/isolate-leader.py "$CUT"
run workload-reach chaos/workload-reach.py
[ "$QUICK" = 1 ] || run partition-region chaos/partition-region.sh ap-south "$CUT"

echo
printf '%-30s %9s %13s %5s %11s %6s %7s %12s\n' scenario requests acknowledged lost \
  duplicated stale leaked failover_ms
grep -h '^RESULT ' "$LOG"/*.log | while read -r _ scenario fields; do
  declare -A f=([requests]=- [acknowledged]=- [lost]=- [duplicated]=- [stale]=- [leaked]=- [failover_ms]=-)
  for kv in $fields; do f[${kv%%=*}]=${kv#*=}; done
  printf '%-30s %9s %13s %5s %11s %6s %7s %12s\n' "$scenario" "${f[requests]}" \
    "${f[acknowledged]}" "${f[lost]}" "${f[duplicated]}" "${f[stale]}" "${f[leaked]}" \
    "${f[failover_ms]}"
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "chaos: failed: ${failed[*]} (logs in $LOG)"
  exit 1
fi
echo "chaos: every scenario passed (logs in $LOG)"
