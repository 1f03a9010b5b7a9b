#!/usr/bin/env bash
# S8: a burst of N concurrent invocations (default 200) on a freshly registered code type of a
# lone node on Docker, under the default tenant quota (16 containers): 5 ms of work after a
# 300 ms init. Every request must get an answer and none may be refused (they wait for the
# containers the quota allows). Then the node stops (SIGTERM) and no container of it, nor
# the tenant's network (unused now), may be left (S12).
#
#   chaos/burst-from-zero.sh [N]    (needs `make build` or `make images`, and a Docker engine)
#
# MAX_QUEUE=0 registers the code type with no wait queue (as before the admission queue):
# the baseline to compare with; it fails the checker by design.
#
# The history (one JSON line per request) is kept in the printed directory.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${1:-200}
BIN=${FOREWARM_BIN:-target/release/forewarm}
[ -x "$BIN" ] || BIN=target/x86_64-unknown-linux-gnu/release/forewarm
[ -x "$BIN" ] || { echo "chaos: no forewarm binary: run make build" >&2; exit 2; }
PORT=${PORT:-7181}
NODE=chaos-burst-$$
TENANT=burst$$
DATA=$(mktemp -d /tmp/forewarm-chaos-burst.XXXXXX)
export FOREWARM_ADMIN_TOKEN=chaos-admin
AUTH="authorization: Bearer $FOREWARM_ADMIN_TOKEN"
cat > "$DATA/node.toml" <<TOML
node_id = "$NODE"
listen = "127.0.0.1:$PORT"
data_dir = "$DATA/data"
TOML

"$BIN" node --config "$DATA/node.toml" > "$DATA/node.log" 2>&1 &
PID=$!
cleanup() {
  kill -TERM "$PID" 2> /dev/null || true
  wait "$PID" 2> /dev/null || true
}
trap cleanup EXIT
for _ in $(seq 300); do
  curl -sf "127.0.0.1:$PORT/healthz" > /dev/null && break
  sleep 0.1
done
curl -sf "127.0.0.1:$PORT/healthz" > /dev/null || { echo "chaos: node did not come up ($DATA/node.log)" >&2; exit 1; }

token=$(curl -sf -XPOST -H "$AUTH" "127.0.0.1:$PORT/v1/tenants" -d "{\"name\":\"$TENANT\"}" |
  sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
curl -sf -XPUT -H "authorization: Bearer $token" "127.0.0.1:$PORT/v1/codes/b" \
  -d "{\"workload\":{\"cpu_ms\":5,\"mem_mib\":4,\"init_ms\":300},\"max_memory_mib\":128${MAX_QUEUE:+,\"max_queue\":$MAX_QUEUE}}" > /dev/null

python3 chaos/lib/history.py burst "http://127.0.0.1:$PORT" "$token" b "$N" "$DATA/history.jsonl"
containers=$(docker ps -aq --filter "label=forewarm.node=$NODE" | wc -l)
echo "S8 burst of $N from zero: $containers containers served it (history: $DATA/history.jsonl)"
verdict=0
python3 chaos/lib/history.py check "$DATA/history.jsonl" --no-rejections --scenario=S8-burst-from-zero |
  tee "$DATA/check.txt" || verdict=1
[ "${PIPESTATUS[0]}" = 0 ] || verdict=1

cleanup
trap - EXIT
leaked=$(docker ps -aq --filter "label=forewarm.node=$NODE" | wc -l)
# The node removes the tenant's network when it stops (no container uses it any more).
net_left=0
if docker network inspect "forewarm-tenant-$TENANT" > /dev/null 2>&1; then
  net_left=1
  docker network rm "forewarm-tenant-$TENANT" > /dev/null 2>&1 || true
fi
echo "S12 after stop: $leaked containers of the node left, $net_left tenant networks left"
echo "RESULT S12-nothing-left-after-S8 leaked=$((leaked + net_left))"
[ "$leaked" = 0 ] && [ "$net_left" = 0 ] || verdict=1
exit $verdict
