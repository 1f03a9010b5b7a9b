#!/usr/bin/env python3
"""S7: the Docker engine under a lone node errs and stalls. The node reaches the engine through
a proxy on a unix socket (chaos/lib/docker_proxy.py, DOCKER_HOST) that:

1. answers 500 to every second `POST /containers/create` while ten code types are invoked
   for the first time (each needs a container created);
2. holds every `POST /containers/{id}/start` for 8 s while a code type with `timeout_ms` 2000
   is invoked;
3. passes everything again, and every code type is invoked once more.

Judged: every request gets an answer (none hangs past its deadline + 2 s), an engine error is
answered with a 5xx that names the engine's error (never a 2xx), the stalled one with 504 within 3 s, every
code type works again once the engine does, and after a clean stop no container of the node
is left (including the one whose start was held).

    chaos/docker-faults.py     (needs make build or make images, a Docker engine)
"""
import json
import os
import sys
import tempfile
import threading
import time

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, "chaos/lib")
from docker_proxy import DockerProxy  # noqa: E402
from nodes import ADMIN, Lone  # noqa: E402

CODES = 10
STALL_S = 8


def main():
    sock = f"{tempfile.mkdtemp(prefix='forewarm-chaos-s7.')}/docker.sock"
    proxy = DockerProxy(sock)
    node = Lone(f"chaos-s7-{os.getpid()}", 7185, env={"DOCKER_HOST": f"unix://{sock}"})
    node.start()
    try:
        return run(node, proxy)
    finally:
        node.stop()
        proxy.close()


def timed(node, token, code, body=None):
    begun = time.monotonic()
    status, _, text = node.call("POST", f"/v1/invoke/{code}", token, body or {}, timeout=60)
    return status, time.monotonic() - begun, text


def run(node, proxy):
    status, _, body = node.call("POST", "/v1/tenants", ADMIN, {"name": f"s7-{os.getpid()}"})
    assert status == 201, body
    token = json.loads(body)["token"]
    for i in range(CODES):
        status, _, body = node.call("PUT", f"/v1/codes/c{i}", token,
                                    {"workload": {"cpu_ms": 1}, "timeout_ms": 10000})
        assert status == 201, body
    status, _, body = node.call("PUT", "/v1/codes/slow", token,
                                {"workload": {"cpu_ms": 1}, "timeout_ms": 2000})
    assert status == 201, body

    bad, answers = [], []
    proxy.fail("POST", r"/containers/create", every=2)
    results = [None] * CODES

    def first(i):
        results[i] = timed(node, token, f"c{i}")

    threads = [threading.Thread(target=first, args=(i,)) for i in range(CODES)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, (status, took, text) in enumerate(results):
        answers.append(status)
        if status is None or took > 12:
            bad.append(f"c{i}: no answer within its deadline ({status} after {took:.1f} s)")
        elif status != 200 and not (status >= 500 and "engine" in text):
            bad.append(f"c{i}: {status} {text[:120]}")
    refused = next((text for status, _, text in results if status != 200), "")
    print(f"creates failing every 2nd: answers {sorted(map(str, answers))}; e.g. {refused[:160]}")

    proxy.stall("POST", r"/containers/[^/]+/start", STALL_S)
    stalled_at = time.monotonic()
    status, took, text = timed(node, token, "slow")
    answers.append(status)
    print(f"starts held {STALL_S} s: the 2000 ms code type answered {status} after {took:.2f} s "
          f"{text[:100]}")
    if status != 504 or took > 3.0:
        bad.append(f"slow: {status} after {took:.2f} s (want 504 within 3 s)")

    proxy.clear()
    time.sleep(max(0.0, STALL_S + 1 - (time.monotonic() - stalled_at)))  # the held start ends
    again = []
    for code in [f"c{i}" for i in range(CODES)] + ["slow"]:
        status, took, text = timed(node, token, code)
        again.append(status)
        if status != 200:
            bad.append(f"{code} after the faults: {status} {text[:120]}")
    print(f"engine healthy again: answers {sorted(map(str, again))}")
    node.stop()
    leaked = node.containers()
    if leaked:
        bad.append(f"{len(leaked)} containers of the node left after its stop")
    for b in bad[:8]:
        print("  BAD", b)
    requests = len(answers) + len(again)
    lost = sum(1 for a in answers + again if a is None)
    print(f"RESULT S7-docker-faults requests={requests} "
          f"acknowledged={sum(1 for a in answers + again if a == 200)} lost={lost} "
          f"leaked={len(leaked)}")
    return 0 if not bad else 1


sys.exit(main())
