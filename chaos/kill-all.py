#!/usr/bin/env python3
"""S5: SIGKILL all three nodes of a local cluster at once while four clients write and read
the replicated state, restart them all with their data, and go on. Judged on the recorded
history: linearizable, and every write acknowledged before the crash is there after it, on
every node. Reports the time from the first restart to a leader as failover.

    chaos/kill-all.py [ROUNDS]     (default 2)
"""
import os
import sys
import time

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, "chaos/lib")
from nodes import Local, binary  # noqa: E402
from registry import scenario  # noqa: E402

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 2


def nemesis(cluster):
    worst = 0
    for r in range(ROUNDS):
        time.sleep(2.0)
        for i in range(3):
            cluster.kill(i)
        print(f"round {r + 1}: all three killed", flush=True)
        time.sleep(0.5)
        restarted = time.monotonic()
        for i in range(3):
            cluster.start(i)
        lead, _ = cluster.wait_leader()
        took = time.monotonic() - restarted
        print(f"round {r + 1}: restarted, {cluster.names[lead]} leads "
              f"{took * 1000:.0f} ms after the first start", flush=True)
        worst = max(worst, round(took * 1000))
    time.sleep(1.5)
    return worst


sys.exit(scenario("S5-all-sigkill", Local(binary()), nemesis,
                  urls_of=lambda c: [c.urls[i] for i in c.alive()]))
