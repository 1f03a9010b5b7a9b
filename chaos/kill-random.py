#!/usr/bin/env python3
"""S4: SIGKILL a random node of a local three-node cluster at a random moment of a write
burst (so at random points of its store and Raft log writes), restart it with its data, again
and again, while four clients create tenants, write code types and read both back. Judged on
the recorded history: linearizable, nothing acknowledged lost on any node after restarts.

    chaos/kill-random.py [ROUNDS] [SEED]    (default 10 rounds, seed from the clock)
"""
import os
import random
import sys
import time

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, "chaos/lib")
from nodes import Local, binary  # noqa: E402
from registry import scenario  # noqa: E402

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 10
SEED = int(sys.argv[2]) if len(sys.argv) > 2 else time.time_ns() % 100_000


def nemesis(cluster):
    rng = random.Random(SEED)
    print(f"seed {SEED}", flush=True)
    for r in range(ROUNDS):
        time.sleep(rng.uniform(0.1, 1.5))
        victim = rng.randrange(3)
        cluster.kill(victim)
        print(f"round {r + 1}: {cluster.names[victim]} killed", flush=True)
        time.sleep(rng.uniform(0.0, 1.0))
        cluster.start(victim)
    time.sleep(1.5)
    return "-"


sys.exit(scenario("S4-random-sigkill", Local(binary()), nemesis,
                  urls_of=lambda c: [c.urls[i] for i in c.alive()]))
