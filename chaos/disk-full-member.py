#!/usr/bin/env python3
"""S14: the disk of a cluster member fills up while four clients write and read the replicated
state through every node. Each member of a local three-node cluster keeps its data on a
64 MiB tmpfs of its own (root is needed to mount them). Round 1 fills the leader's disk,
round 2 a follower's: a file takes every free byte, for HOLD_S seconds (default 4), then goes.

Judged, per round: the member says `/readyz` 503 while its disk is full, and without a
restart is ready again within 20 s of the space coming back (its Raft core, stopped by the
failed write, is started again beside the two running members and catches up); when the
leader's disk fills, the other two elect a leader. Judged on the recorded history, as S1:
linearizable (no stale read, nothing applied twice) and no acknowledged write lost on any
node, the full member's included.

    chaos/disk-full-member.py [HOLD_S]    (FOREWARM_BIN or target/release/forewarm; root)
"""
import json
import os
import subprocess
import sys
import time

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, "chaos/lib")
from nodes import ADMIN, Local, binary  # noqa: E402
from registry import call, scenario  # noqa: E402

HOLD_S = float(sys.argv[1]) if len(sys.argv) > 1 else 4.0
RECOVER_S = 20.0
problems = []


class OnTmpfs(Local):
    """A local cluster whose members' data directories are tmpfs mounts of 64 MiB each."""

    def data(self, i):
        return f"{self.dir}/n{i + 1}"

    def up(self):
        for i in range(3):
            os.makedirs(self.data(i), exist_ok=True)
            mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs",
                                      self.data(i)], capture_output=True, text=True)
            if mounted.returncode != 0:
                raise RuntimeError(f"cannot mount a tmpfs (root needed): {mounted.stderr}")
        super().up()

    def down(self):
        super().down()
        for i in range(3):
            subprocess.run(["umount", self.data(i)], capture_output=True)


def wait_ready(url, want, within):
    """Seconds until `/readyz` answers `want` (up to `within`), or None; and the last answer
    (status, reasons)."""
    begun = time.monotonic()
    last = (None, None)
    while time.monotonic() - begun < within:
        last = call("GET", url + "/readyz", ADMIN)
        if last[0] == want:
            return time.monotonic() - begun, last
        time.sleep(0.1)
    return None, last


def expect_ready(url, want, within, problem, seen):
    """Wait as `wait_ready`; record `problem` (with the last answer) when it never came, else
    print `seen(seconds, reasons)`."""
    took, (status, body) = wait_ready(url, want, within)
    if took is None:
        problems.append(f"{problem} (last: {status} {json.dumps(body)[:200]})")
    else:
        print(seen(took, json.dumps(body)[:160]), flush=True)


def nemesis(cluster):
    worst, filled = 0, []
    for round_no, role in enumerate(["leader", "follower"], start=1):
        lead, _ = cluster.wait_leader()
        followers = [i for i in range(3) if i != lead]
        # A follower other than the member filled before, when there is one.
        victim = lead if role == "leader" else sorted(followers, key=filled.count)[0]
        filled.append(victim)
        filler = f"{cluster.data(victim)}/filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M"], capture_output=True)
        full_at = time.monotonic()
        expect_ready(cluster.urls[victim], 503, 10.0,
                     f"round {round_no}: the {role} with a full disk never said not ready",
                     lambda took, why: f"round {round_no}: {role} {cluster.names[victim]} full; "
                                       f"/readyz 503 after {took * 1000:.0f} ms: {why}")
        if role == "leader":
            others = [i for i in range(3) if i != victim]
            new, took = cluster.wait_leader(among=others, other_than=victim)
            failover = time.monotonic() - full_at
            worst = max(worst, round(failover * 1000))
            print(f"round {round_no}: {cluster.names[new]} leads {failover * 1000:.0f} ms "
                  f"after the leader's disk filled", flush=True)
        time.sleep(max(0.0, HOLD_S - (time.monotonic() - full_at)))
        os.remove(filler)
        expect_ready(cluster.urls[victim], 200, RECOVER_S,
                     f"round {round_no}: the {role} was not ready within {RECOVER_S} s of the "
                     f"space coming back",
                     lambda took, _: f"round {round_no}: space back; {cluster.names[victim]} "
                                     f"ready again after {took * 1000:.0f} ms, no restart")
        time.sleep(1.5)
    return worst


code = scenario("S14-disk-full-member", OnTmpfs(binary()), nemesis)
for p in problems:
    print("PROBLEM", p)
sys.exit(code or (1 if problems else 0))
