#!/usr/bin/env python3
"""S6: the disk under a lone node fills up. Its data directory is a 32 MiB tmpfs (root is
needed to mount it); a tenant, a code type and an invocation with an Idempotency-Key are
acknowledged first, then a file takes every free byte and the node is asked for more: tenant
creations and keyed invocations. What it acknowledges must survive; what it cannot write it
must refuse (never a 2xx it cannot keep), and `/readyz` must say 503 with the reason while
`/healthz` still answers. Then the space comes back: without a restart the node must be ready
again, create a tenant and run a keyed invocation within 15 s (its replicated state, stopped by the failed write,
starts again by itself). Then it is restarted with its data: ready again, every acknowledged
tenant there, every acknowledged key answered from memory and none run again. (A key whose invocation ran while the disk was full may have lost its
answer's record: its retry then gets 502 `interrupted`, never a second run; counted as
`forgotten`, not lost.)

    chaos/disk-full.py     (needs make build or make images, a Docker engine, root)
"""
import json
import os
import subprocess
import sys
import tempfile
import time

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, "chaos/lib")
from nodes import ADMIN, Lone  # noqa: E402

DATA = tempfile.mkdtemp(prefix="forewarm-chaos-s6-data.")


def main():
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", DATA],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        print(f"chaos: cannot mount a tmpfs (root needed): {mounted.stderr.strip()}")
        return 2
    node = Lone(f"chaos-s6-{os.getpid()}", 7184, data_dir=DATA)
    try:
        node.start()
        return run(node)
    finally:
        node.stop()
        subprocess.run(["umount", DATA], capture_output=True)


def run(node):
    status, _, body = node.call("POST", "/v1/tenants", ADMIN, {"name": "before"})
    assert status == 201, body
    token = json.loads(body)["token"]
    status, _, body = node.call("PUT", "/v1/codes/f", token, {"workload": {"cpu_ms": 1}})
    assert status == 201, body
    status, _, body = node.call("POST", "/v1/invoke/f", token, {}, key="before")
    assert status == 200, body
    acked_tenants, acked_keys, while_full = ["before"], {"before": 200}, set()

    # Every free byte taken.
    subprocess.run(["dd", "if=/dev/zero", f"of={DATA}/filler", "bs=1M"], capture_output=True)
    free = os.statvfs(DATA).f_bavail
    print(f"disk full: {free} blocks free")
    answers = {}
    asked = 0
    for i in range(10):
        asked += 2
        status, _, body = node.call("POST", "/v1/tenants", ADMIN, {"name": f"full-{i}"})
        answers[status] = answers.get(status, 0) + 1
        if status == 201:
            acked_tenants.append(f"full-{i}")
        status, _, body = node.call("POST", "/v1/invoke/f", token, {}, key=f"full-{i}")
        answers[status] = answers.get(status, 0) + 1
        if status == 200:
            acked_keys[f"full-{i}"] = 200
            while_full.add(f"full-{i}")
    ready = None
    for _ in range(50):  # the node notices within a flush or a write
        ready = node.call("GET", "/readyz", ADMIN, timeout=2)
        if ready[0] == 503:
            break
        time.sleep(0.2)
    alive = node.call("GET", "/healthz", ADMIN, timeout=2)[0]
    print(f"while full: answers {answers}; /readyz {ready[0]} {ready[2][:300]}; /healthz {alive}")

    # Space back, no restart: the node must take writes again by itself (its replicated state
    # starts again once the disk takes a probe write; its own store clears on the next write).
    os.remove(f"{DATA}/filler")
    freed = time.monotonic()
    recovered, ready_live = None, None
    for _ in range(150):
        ready_live = node.call("GET", "/readyz", ADMIN, timeout=2)
        if ready_live[0] == 200:
            status, _, body = node.call("POST", "/v1/tenants", ADMIN, {"name": "recovered"})
            asked += 1
            if status == 201:
                recovered = time.monotonic() - freed
                acked_tenants.append("recovered")
                status, _, body = node.call("POST", "/v1/invoke/f", token, {}, key="recovered")
                asked += 1
                if status == 200:
                    acked_keys["recovered"] = 200
                else:
                    recovered = None
                    print(f"  a keyed invocation after the recovery: {status} {body[:200]}")
                break
        time.sleep(0.1)
    print(f"space back, no restart: /readyz {ready_live[0]}, a new tenant "
          + (f"created {recovered:.1f} s after the space came back" if recovered is not None
             else f"NOT created within 15 s ({ready_live[2][:300]})"))

    node.stop()
    node.start()
    ready_after = None
    for _ in range(100):
        ready_after = node.call("GET", "/readyz", ADMIN, timeout=2)[0]
        if ready_after == 200:
            break
        time.sleep(0.1)
    lost, forgotten, ran_again = [], [], []
    for name in acked_tenants:
        if node.call("GET", f"/v1/tenants/{name}", ADMIN)[0] != 200:
            lost.append(f"tenant {name}")
    for key, want in acked_keys.items():
        status, headers, _ = node.call("POST", "/v1/invoke/f", token, {}, key=key)
        replayed = headers.get("x-forewarm-replayed") == "true"
        if status is not None and not replayed:
            ran_again.append(key)
        elif replayed and status == 502 and key in while_full:
            forgotten.append(key)
        elif status != want or not replayed:
            lost.append(f"key {key}: {status}, replayed {replayed}")
    writes_again = node.call("POST", "/v1/tenants", ADMIN, {"name": "after"})[0]
    print(f"space back, restarted: /readyz {ready_after}; a new tenant {writes_again}; "
          f"{len(acked_tenants)} tenants and {len(acked_keys)} keys acknowledged, "
          f"{len(lost)} lost, {len(forgotten)} answers forgotten (replayed as 502 interrupted)")
    for e in lost[:5]:
        print("  LOST", e)
    print(f"RESULT S6-disk-full requests={asked + 3} "
          f"acknowledged={len(acked_tenants) + len(acked_keys)} lost={len(lost)} duplicated={len(ran_again)}")
    ok = (not lost and not ran_again and ready[0] == 503 and alive == 200 and ready_after == 200
          and writes_again == 201 and recovered is not None)
    return 0 if ok else 1


sys.exit(main())
