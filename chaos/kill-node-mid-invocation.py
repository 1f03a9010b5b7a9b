#!/usr/bin/env python3
"""S9: SIGKILL a lone node on Docker while invocations run in its containers, restart it with
its data, and let every client retry with the same Idempotency-Key.

A few short invocations are answered before the kill; then N slow ones (4 s of sleep) are sent
at once and the node is killed once its pool shows all N containers busy (so every one of them
reached a container: each may have run). After the restart, every key is asked again:

- an answer must come back for every key (nothing lost),
- it must be the remembered one (`x-forewarm-replayed`): 200 for the short ones, 502
  `interrupted` for those cut off — a fresh run is a duplicated execution,
- the containers the killed node left behind are removed by its restart, and after a clean
  stop nothing of it is left (S12).

    chaos/kill-node-mid-invocation.py [N]    (default 8; needs make build or make images)
"""
import json
import os
import sys
import threading
import time

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, "chaos/lib")
from nodes import ADMIN, Lone  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 8
TENANT = f"s9-{os.getpid()}"


def main():
    node = Lone(f"chaos-s9-{os.getpid()}", 7182)
    node.start()
    try:
        return run(node)
    finally:
        node.stop()


def run(node):
    status, _, body = node.call("POST", "/v1/tenants", ADMIN, {"name": TENANT})
    assert status == 201, body
    token = json.loads(body)["token"]
    status, _, body = node.call("PUT", "/v1/codes/s", token,
                           {"workload": {"cpu_ms": 1, "sleep_ms": 4000, "init_ms": 100}})
    assert status == 201, body

    answered = {}  # key -> first answer's status
    for i in range(3):
        status, _, body = node.call("POST", "/v1/invoke/s", token, {"sleep_ms": 0}, key=f"q{i}")
        assert status == 200, body
        answered[f"q{i}"] = status

    cut = {}

    def slow(key):
        cut[key] = node.call("POST", "/v1/invoke/s", token, {}, key=key)[0]

    threads = [threading.Thread(target=slow, args=(f"k{i}",)) for i in range(N)]
    for t in threads:
        t.start()
    busy = 0
    for _ in range(300):  # 30 s at most
        status, _, body = node.call("GET", "/v1/pool", ADMIN, timeout=2)
        if status == 200:
            busy = sum(c["state"] == "busy" for c in json.loads(body)["containers"])
            if busy >= N:
                break
        time.sleep(0.1)
    if busy < N:
        print(f"chaos: only {busy} of {N} containers busy after 30 s (log {node.dir}/node.log)")
        return 1
    left = node.containers()
    node.kill()
    for t in threads:
        t.join()
    print(f"killed with {busy} invocations running; the clients got {sorted(set(map(str, cut.values())))}; "
          f"{len(left)} containers of it left behind")

    node.start()
    restarted_left = left & node.containers()
    for _ in range(100):  # the restart's sweep removes them; bounded wait
        restarted_left = left & node.containers()
        if not restarted_left:
            break
        time.sleep(0.1)
    lost, duplicated, wrong = [], [], []
    for key in sorted(answered) + sorted(cut):
        status, headers, body = node.call("POST", "/v1/invoke/s", token, {}, key=key)
        replayed = headers.get("x-forewarm-replayed") == "true"
        if status is None or status == 409:
            lost.append((key, status))
        elif not replayed:
            duplicated.append((key, status))
        elif key in answered and status != answered[key]:
            wrong.append((key, status, body[:120]))
        elif key in cut and (status != 502 or "interrupted" not in body):
            wrong.append((key, status, body[:120]))
    fresh = node.call("POST", "/v1/invoke/s", token, {"sleep_ms": 0}, key="after")[0]
    node.stop()
    leaked = node.containers()
    print(f"after the restart: {len(restarted_left)} of the killed run's containers still "
          f"there; retries: {len(lost)} unanswered, {len(duplicated)} ran again, {len(wrong)} "
          f"with another answer; a new key answered {fresh}; {len(leaked)} containers left "
          f"after a clean stop")
    for what in (lost, duplicated, wrong):
        for e in what[:3]:
            print("  e.g.", e)
    requests = len(answered) + len(cut)
    print(f"RESULT S9-node-killed-mid-invocation requests={requests} "
          f"acknowledged={len(answered)} lost={len(lost)} duplicated={len(duplicated)} "
          f"leaked={len(restarted_left) + len(leaked)}")
    ok = not (lost or duplicated or wrong or restarted_left or leaked) and fresh == 200
    return 0 if ok else 1


sys.exit(main())
