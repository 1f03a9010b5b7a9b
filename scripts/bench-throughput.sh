#!/usr/bin/env bash
# Warm no-op throughput through one node (issue 3's goal: >= 10k/s on 2 cores), recorded in
# docs/benchmarks.md. The load generator is wrk (C, one thread, one epoll loop: the cheapest
# client there is, so the figure is the node's and not the client's), on the same two cores.
# In the same run, the same load straight to a runner container of the same image (the
# ceiling). Prints, per run: requests/s, the node's CPU time per request (from
# /proc/PID/stat), and the cold starts during the run (0 = the pool stayed warm).
#
#   scripts/bench-throughput.sh [BIN] [SECONDS] [RUNS]      (CONNS=16 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/x86_64-unknown-linux-gnu/release/forewarm}
SECS=${2:-10}
RUNS=${3:-3}
CONNS=${CONNS:-16}
PORT=${PORT:-7171}
command -v wrk >/dev/null || { echo "bench-throughput: needs wrk (apt-get install wrk)" >&2; exit 2; }
[ -x "$BIN" ] || { echo "bench-throughput: no binary at $BIN (make images)" >&2; exit 2; }

data=$(mktemp -d)
FOREWARM_ADMIN_TOKEN=bench-admin "$BIN" up --listen "127.0.0.1:$PORT" --data-dir "$data/node" \
  --node-id "bench-tp-$$" >"$data/log" 2>&1 &
node=$!
stop() {
  kill -INT "$node" 2>/dev/null && wait "$node" 2>/dev/null || true
  rm -rf "$data"
}
trap stop EXIT
url="http://127.0.0.1:$PORT"
for _ in $(seq 100); do
  curl -sf "$url/healthz" >/dev/null && break
  kill -0 "$node" 2>/dev/null || { cat "$data/log" >&2; exit 1; }
  sleep 0.2
done

token=$(curl -sf -XPOST -H "authorization: Bearer bench-admin" "$url/v1/tenants" \
  -d "{\"name\":\"tp\",\"max_warm\":$((CONNS * 4)),\"max_memory_mib\":8192}" |
  sed 's/.*"token":"\([^"]*\)".*/\1/')
image=$(curl -sf -XPUT -H "authorization: Bearer $token" "$url/v1/codes/noop" \
  -d '{"workload":{},"max_memory_mib":64}' | sed 's/.*"image":"\([^"]*\)".*/\1/')
printf 'wrk.method = "POST"\nwrk.headers["Authorization"] = "Bearer %s"\n' "$token" >"$data/node.lua"
printf 'wrk.method = "POST"\n' >"$data/direct.lua"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$node/stat"; }
colds() {
  curl -sf -H "authorization: Bearer bench-admin" "$url/metrics" |
    sed -n 's/^forewarm_invocations_total{start="cold"} //p'
}
rate() { sed -n 's/^Requests\/sec: *//p'; }
hz=$(getconf CLK_TCK)

echo "node $url, $CONNS connections, ${SECS}s runs, $(nproc) cores"
# Warm-up: the pool grows to one container per connection (container starts compete with the
# load for the two cores, so this takes a few runs); done after a run with no cold start.
for w in $(seq 8); do
  k0=$(colds)
  wrk -t1 -c"$CONNS" -d5s -s "$data/node.lua" "$url/v1/invoke/noop" | rate |
    awk -v w="$w" '{printf "warm-up %d: %8.0f/s", w, $1}'
  k1=$(colds)
  echo "  cold starts $((k1 - k0))"
  [ "$k1" = "$k0" ] && break
done
for r in $(seq "$RUNS"); do
  c0=$(cpu_ticks) k0=$(colds)
  out=$(wrk -t1 -c"$CONNS" -d"${SECS}s" -s "$data/node.lua" "$url/v1/invoke/noop")
  c1=$(cpu_ticks) k1=$(colds)
  n=$(echo "$out" | sed -n 's/^ *\([0-9]*\) requests in.*/\1/p')
  errors=$(echo "$out" | sed -n 's/^ *Non-2xx or 3xx responses: *//p')
  echo "$out" | rate | awk -v c=$((c1 - c0)) -v n="$n" -v hz="$hz" -v k=$((k1 - k0)) \
    -v e="${errors:-0}" -v r="$r" '{printf "through the node, run %d: %8.0f/s  node cpu %5.1f us/request  cold starts %d  errors %d\n", r, $1, c / hz / n * 1e6, k, e}'
done
# The ceiling: the same load straight to a runner container of the same image (one of its
# own: the node removes its idle containers when the load stops).
direct=$(docker run -d --rm --read-only --cap-drop ALL --label "forewarm.node=bench-tp-$$" "$image")
ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$direct")
for _ in $(seq 50); do curl -sf "http://$ip:8080/ready" >/dev/null && break; sleep 0.1; done
for r in $(seq "$RUNS"); do
  wrk -t1 -c"$CONNS" -d"${SECS}s" -s "$data/direct.lua" "http://$ip:8080/invoke" | rate |
    awk -v r="$r" '{printf "straight to a runner, run %d: %8.0f/s\n", r, $1}'
done
docker rm -f "$direct" >/dev/null
