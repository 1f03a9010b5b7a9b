#!/usr/bin/env bash
# Kill the Raft leader of a local three-node cluster (cluster/local/*.toml) with SIGKILL, over
# and over, while tenants are created through random nodes; restart each victim with its data.
# At the end every tenant whose creation was acknowledged (201) must be readable
# (linearizably) on every node.
#
#   chaos/kill-leader.sh [ROUNDS]        (default 10; needs `make build` and a Docker engine)
#
# Exit 0 when nothing acknowledged was lost; prints the failover times it saw.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${1:-10}
BIN=${FOREWARM_BIN:-target/release/forewarm}
PORTS=(7171 7172 7173)
DATA=$(mktemp -d /tmp/forewarm-chaos.XXXXXX)
export FOREWARM_CLUSTER_SECRET=chaos-$RANDOM$RANDOM FOREWARM_ADMIN_TOKEN=chaos-admin
AUTH="authorization: Bearer $FOREWARM_ADMIN_TOKEN"
declare -A PID

[ -x "$BIN" ] || BIN=target/x86_64-unknown-linux-gnu/release/forewarm # built by make images
[ -x "$BIN" ] || { echo "chaos: no forewarm binary: run make build" >&2; exit 2; }

config() { # node index (1-3) → a config file in $DATA
  local i=$1 region
  region=$(echo us-east eu-west ap-south | cut -d' ' -f"$i")
  cat > "$DATA/n$i.toml" <<EOF
node_id = "chaos-n$i"
region = "$region"
listen = "127.0.0.1:${PORTS[$((i - 1))]}"
data_dir = "$DATA/n$i"
EOF
  echo "$DATA/n$i.toml"
}

start() { # index [join]
  local i=$1
  if [ -n "${2:-}" ]; then
    "$BIN" node --config "$(config "$i")" --join "$2" >> "$DATA/n$i.log" 2>&1 &
  else
    "$BIN" node --config "$(config "$i")" >> "$DATA/n$i.log" 2>&1 &
  fi
  PID[$i]=$!
  for _ in $(seq 100); do
    curl -sf "127.0.0.1:${PORTS[$((i - 1))]}/healthz" > /dev/null && return 0
    sleep 0.1
  done
  echo "chaos: node $i did not come up (log: $DATA/n$i.log)" >&2
  exit 1
}

cleanup() {
  for i in 1 2 3; do kill -TERM "${PID[$i]:-0}" 2> /dev/null || true; done
  wait 2> /dev/null || true
}
trap cleanup EXIT

leader_port() { # asks each node; prints the leader's port, or nothing
  for p in "${PORTS[@]}"; do
    local name
    name=$(curl -s -m 1 -H "$AUTH" "127.0.0.1:$p/v1/cluster" 2> /dev/null |
      sed -n 's/.*"leader_name":"\([^"]*\)".*/\1/p')
    if [ -n "$name" ]; then
      echo "${PORTS[$((${name#chaos-n} - 1))]}"
      return
    fi
  done
}

start 1
start 2 127.0.0.1:7171
start 3 127.0.0.1:7171

acked=()
failovers=()
asked=0
for round in $(seq "$ROUNDS"); do
  # Writes through random nodes, some while the leader is dying.
  for k in 1 2 3; do
    name="t-$round-$k"
    asked=$((asked + 1))
    port=${PORTS[$((RANDOM % 3))]}
    code=$(curl -s -m 15 -o /dev/null -w '%{http_code}' -XPOST -H "$AUTH" \
      "127.0.0.1:$port/v1/tenants" -d "{\"name\":\"$name\"}" || true)
    [ "$code" = 201 ] && acked+=("$name")
    if [ "$k" = 2 ]; then
      lp=$(leader_port)
      [ -z "$lp" ] && continue
      victim=$(( $(printf '%s\n' "${PORTS[@]}" | grep -n "^$lp\$" | cut -d: -f1) ))
      killed_at=$(date +%s%N)
      kill -KILL "${PID[$victim]}"
      wait "${PID[$victim]}" 2> /dev/null || true
      # Time until a survivor names another leader.
      nl=
      for _ in $(seq 1500); do # 30 s at most
        nl=$(leader_port)
        [ -n "$nl" ] && [ "$nl" != "$lp" ] && break
        nl=
        sleep 0.02
      done
      [ -n "$nl" ] || { echo "chaos: no new leader within 30 s of killing :$lp" >&2; exit 1; }
      took=$(( ($(date +%s%N) - killed_at) / 1000000 ))
      echo "round $round: leader on :$lp killed, new leader on :$nl after $took ms"
      failovers+=("$took")
      start "$victim"
    fi
  done
done

# Let the restarted nodes catch up, then check every node.
sleep 2
lost=0
for p in "${PORTS[@]}"; do
  for name in "${acked[@]}"; do
    code=$(curl -s -m 15 -o /dev/null -w '%{http_code}' -H "$AUTH" "127.0.0.1:$p/v1/tenants/$name")
    if [ "$code" != 200 ]; then
      echo "LOST: $name (acknowledged) answers $code on :$p"
      lost=$((lost + 1))
    fi
  done
done
echo "asked $asked creations, $((${#acked[@]})) acknowledged, $lost lost reads across 3 nodes"
worst=$(printf '%s\n' "${failovers[@]:-0}" | sort -n | tail -1)
echo "RESULT S1-leader-sigkill requests=$asked acknowledged=${#acked[@]} lost=$lost duplicated=- stale=- failover_ms=$worst"
[ "$lost" = 0 ]
