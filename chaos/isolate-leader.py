#!/usr/bin/env python3
"""S3: asymmetric isolation of the Raft leader of the compose cluster (cluster/compose.yaml):
inside its container's network namespace every packet from its peers is dropped, while its
own packets still leave and clients on the host still reach its API. Four clients keep
writing and reading through all three nodes, the isolated one included: a node that still
believes it leads must not answer a read with state older than an acknowledged write. The
isolation is healed after SECONDS. Judged on the recorded history: linearizable (no stale
read), nothing acknowledged lost; failover is the time until the majority names a new leader.

    chaos/isolate-leader.py [SECONDS] [both]   (default 8; `both` drops its outgoing packets
                                                too; needs make images, root for nsenter)
"""
import os
import sys
import time

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, "chaos/lib")
from nodes import Compose  # noqa: E402
from registry import scenario  # noqa: E402

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 8.0
BOTH = sys.argv[2:3] == ["both"]


def nemesis(cluster):
    time.sleep(2.0)
    victim, _ = cluster.wait_leader()
    cluster.cut(victim, inbound=True, outbound=BOTH)
    cut_at = time.monotonic()
    others = [i for i in range(3) if i != victim]
    lead, took = cluster.wait_leader(among=others, other_than=victim)
    print(f"{cluster.names[victim]} cut off ({'both ways' if BOTH else 'inbound only'}); "
          f"{cluster.names[lead]} leads the majority after {took * 1000:.0f} ms", flush=True)
    time.sleep(max(0.0, SECONDS - (time.monotonic() - cut_at)))
    cluster.heal()
    print(f"healed after {time.monotonic() - cut_at:.1f} s", flush=True)
    time.sleep(2.0)
    return round(took * 1000)


sys.exit(scenario("S3-leader-isolated", Compose(), nemesis))
