#!/usr/bin/env python3
"""S1: SIGKILL the Raft leader of a local three-node cluster, round after round, while four
clients create tenants, write code types and read both back through random nodes; each
victim restarts with its data a second later. Judged on the recorded history: linearizable
(no stale read, nothing applied twice), no acknowledged write lost on any node.

    chaos/kill-leader.py [ROUNDS]     (default 10; FOREWARM_BIN or target/release/forewarm)
"""
import os
import sys
import time

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, "chaos/lib")
from nodes import Local, binary  # noqa: E402
from registry import scenario  # noqa: E402

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 10


def nemesis(cluster):
    worst = 0
    for r in range(ROUNDS):
        time.sleep(1.5)
        victim = cluster.leader()
        if victim is None:
            victim, _ = cluster.wait_leader()
        cluster.kill(victim)
        survivors = cluster.alive()
        lead, took = cluster.wait_leader(among=survivors, other_than=victim)
        print(f"round {r + 1}: leader {cluster.names[victim]} killed, "
              f"{cluster.names[lead]} leads after {took * 1000:.0f} ms", flush=True)
        worst = max(worst, round(took * 1000))
        time.sleep(1.0)
        cluster.start(victim)
    time.sleep(1.5)
    return worst


sys.exit(scenario("S1-leader-sigkill", Local(binary()), nemesis,
                  urls_of=lambda c: [c.urls[i] for i in c.alive()]))
