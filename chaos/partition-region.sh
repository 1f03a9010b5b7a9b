#!/usr/bin/env bash
# Cut one region of the compose cluster (cluster/compose.yaml) off the network for a while:
# the node's container is disconnected from the private network `forewarm-regions`, so it
# reaches no member and no member reaches it (its API port goes too). Meanwhile tenants are
# created through the other two regions (a majority: every creation must be acknowledged).
# Then the region is reconnected with its address, and it must catch up: every tenant
# readable (linearizably) on it.
#
#   chaos/partition-region.sh [REGION] [SECONDS] [cut|pause]
#       (default ap-south 10 cut; needs `make images`)
#
# `pause` freezes the node's container instead (`docker pause`): its connections stay open
# and nothing answers on them, which is how a stuck process or a lost link without resets
# looks to the others.
#
# Exit 0 when the majority kept accepting writes, the healed region caught up and its node
# transport sessions (ractor_cluster) are back.
set -euo pipefail
cd "$(dirname "$0")/.."

REGION=${1:-ap-south}
CUT_SECONDS=${2:-10}
MODE=${3:-cut}
case $MODE in cut|pause) ;; *) echo "chaos: mode is cut or pause, not $MODE" >&2; exit 2;; esac
export FOREWARM_CLUSTER_SECRET=chaos-$RANDOM$RANDOM FOREWARM_ADMIN_TOKEN=chaos-admin
AUTH="authorization: Bearer $FOREWARM_ADMIN_TOKEN"
COMPOSE="docker-compose -f cluster/compose.yaml"
declare -A PORT=([us-east]=7101 [eu-west]=7102 [ap-south]=7103)
declare -A IP=([us-east]=10.77.0.11 [eu-west]=10.77.0.12 [ap-south]=10.77.0.13)
[ -n "${PORT[$REGION]:-}" ] || { echo "chaos: no region $REGION in cluster/compose.yaml" >&2; exit 2; }
OTHERS=()
for r in us-east eu-west ap-south; do [ "$r" = "$REGION" ] || OTHERS+=("$r"); done

cleanup() { $COMPOSE down -v >/dev/null 2>&1 || true; }
trap cleanup EXIT

cluster_view() { curl -s -m 2 -H "$AUTH" "localhost:${PORT[$1]}/v1/cluster" || true; }
leader_of() { cluster_view "$1" | sed -n 's/.*"leader_name":"\([^"]*\)".*/\1/p'; }
term_of() { cluster_view "$1" | sed -n 's/.*"term":\([0-9]*\).*/\1/p'; }
members_of() { cluster_view "$1" | grep -o '"role":"voter"\|"role":"leader"' | wc -l; }

$COMPOSE up -d >/dev/null 2>&1
for _ in $(seq 300); do
  [ "$(members_of "$REGION")" = 3 ] && [ -n "$(leader_of "$REGION")" ] && break
  sleep 0.2
done
[ "$(members_of "$REGION")" = 3 ] || { echo "chaos: the cluster did not form" >&2; exit 1; }
echo "formed: leader $(leader_of us-east), term $(term_of us-east)"

if [ "$MODE" = cut ]; then
  docker network disconnect forewarm-regions "fw-$REGION"
else
  docker pause "fw-$REGION" >/dev/null
fi
cut_at=$(date +%s.%N)
echo "$MODE $REGION for ${CUT_SECONDS}s"
asked=0 acked=0
ACKED=()
end=$(( $(date +%s) + CUT_SECONDS ))
while [ "$(date +%s)" -lt "$end" ]; do
  asked=$((asked + 1))
  via=${OTHERS[$((asked % 2))]}
  name="part-$asked"
  code=$(curl -s -m 15 -o /dev/null -w '%{http_code}' -XPOST -H "$AUTH" \
    "localhost:${PORT[$via]}/v1/tenants" -d "{\"name\":\"$name\"}" || true)
  if [ "$code" = 201 ]; then
    acked=$((acked + 1))
    ACKED+=("$name")
  else
    echo "  create $name via $via: HTTP $code"
  fi
  sleep 0.5
done
echo "during the cut: $asked asked, $acked acknowledged, leader $(leader_of "${OTHERS[0]}")"

if [ "$MODE" = cut ]; then
  docker network connect --ip "${IP[$REGION]}" forewarm-regions "fw-$REGION"
else
  docker unpause "fw-$REGION" >/dev/null
fi
healed_at=$(date +%s.%N)
missing=("${ACKED[@]}")
for _ in $(seq 150); do
  left=()
  for name in "${missing[@]}"; do
    code=$(curl -s -m 3 -o /dev/null -w '%{http_code}' -H "$AUTH" \
      "localhost:${PORT[$REGION]}/v1/tenants/$name" || true)
    [ "$code" = 200 ] || left+=("$name")
  done
  missing=("${left[@]}")
  [ ${#missing[@]} = 0 ] && break
  sleep 0.2
done
caught=$(python3 -c "print(round($(date +%s.%N) - $healed_at, 2))")
echo "healed: leader $(leader_of "$REGION"), term $(term_of "$REGION")"
echo "healed: $REGION read all ${#ACKED[@]} tenants after ${caught}s (cut lasted $(python3 -c "print(round($healed_at - $cut_at, 1))")s)"
# The node transport: the healed region's ractor_cluster sessions with both others are back
# (each member's four process groups reached again, see GET /v1/cluster "groups").
groups_of() { cluster_view "$1" | python3 -c 'import json,sys
try: v=json.load(sys.stdin)
except Exception: print(0); sys.exit()
print(sum(len(m.get("groups",[])) for m in v["members"]))'; }
linked=no
for _ in $(seq 150); do
  if [ "$(groups_of "$REGION")" = 8 ] && [ "$(groups_of "${OTHERS[0]}")" = 8 ] && [ "$(groups_of "${OTHERS[1]}")" = 8 ]; then
    linked=yes; break
  fi
  sleep 0.2
done
echo "healed: node transport back on all three after $(python3 -c "print(round($(date +%s.%N) - $healed_at, 2))")s: $linked"
echo "RESULT S2b-region-$MODE requests=$asked acknowledged=$acked lost=${#missing[@]} duplicated=- stale=- failover_ms=-"
if [ "$acked" != "$asked" ] || [ ${#missing[@]} != 0 ] || [ "$linked" != yes ]; then
  echo "chaos: FAILED: acknowledged $acked of $asked; missing on $REGION: ${missing[*]}; transport back: $linked" >&2
  exit 1
fi
echo "ok: the majority took every write, $REGION caught up, its sessions are back"
