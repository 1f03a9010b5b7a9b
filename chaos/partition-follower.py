#!/usr/bin/env python3
"""S2: cut a follower of the compose cluster (cluster/compose.yaml) off from its peers both
ways (iptables inside its container's network namespace; clients on the host still reach its
API) while four clients write and read through all three nodes, then heal it. The majority
must keep accepting writes, the cut follower must not answer reads with stale state, and once
healed it must hold every acknowledged write. Judged on the recorded history.

    chaos/partition-follower.py [SECONDS]   (default 8; needs make images, root for nsenter)
"""
import os
import sys
import time

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, "chaos/lib")
from nodes import Compose  # noqa: E402
from registry import scenario  # noqa: E402

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 8.0


def nemesis(cluster):
    time.sleep(2.0)
    leader, _ = cluster.wait_leader()
    victim = (leader + 1) % 3
    cluster.cut(victim)
    print(f"{cluster.names[victim]} (a follower) cut off both ways for {SECONDS} s", flush=True)
    time.sleep(SECONDS)
    cluster.heal()
    print("healed", flush=True)
    time.sleep(2.0)
    return "-"


sys.exit(scenario("S2-follower-partitioned", Compose(), nemesis))
