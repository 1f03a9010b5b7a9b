#!/usr/bin/env python3
"""S10: a noisy tenant. A lone node on Docker with 16 in-flight slots (so two busy tenants
have a fair share of 8 each). Tenant `quiet` invokes a warm code type at a steady pace (one
request every PACE_MS, default 25 ms: well under its container's CPU limit, which a
back-to-back client would hit and be throttled by, 45 ms every ~15 requests); its latency is
measured alone, then (after a RAMP_S ramp, default 2 s, during which it goes on invoking)
while tenant `noisy` floods the node with FLOOD (160: 20x its share) concurrent clients that
ignore Retry-After (each asks again 20 ms after a refusal) on a code type that sleeps 200 ms.

The flood's clients run in a process of their own (160 Python threads under one interpreter
lock would otherwise hold up the quiet client's thread), at `nice` FLOOD_NICE (default 0).

Judged: every `quiet` request answered and none refused (the flood must not take its slots or
its containers), and `noisy` served some; `quiet`'s warm p50/p99 alone and under the flood
are printed with their ratio and the flood's rates (the goal is p99 within +20%; it is
reported, not asserted: a timing on a shared machine is not a test).

    chaos/noisy-tenant.py [REQUESTS] [FLOOD]   (default 300 and 160; needs make build/images)
"""
import http.client
import json
import os
import subprocess
import sys
import threading
import time

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, "chaos/lib")
from nodes import ADMIN, Lone  # noqa: E402

REQUESTS = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1] != "--flood" else 300
FLOOD = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[1] != "--flood" else 160
FLOOD_NICE = int(os.environ.get("FLOOD_NICE", "0"))
PACE_MS = float(os.environ.get("PACE_MS", "25"))
RAMP_S = float(os.environ.get("RAMP_S", "2"))
SLOTS = 16
PORT = 7183


class Client:
    """One keep-alive connection to the node."""

    def __init__(self, token):
        self.token = token
        self.conn = None

    def call(self, method, path, body=None, timeout=30):
        """(status or None, body)."""
        status, text, _ = self.call_timed(method, path, body, timeout)
        return status, text

    def call_timed(self, method, path, body=None, timeout=30):
        """(status or None, body, {stage: ms} from the answer's Server-Timing header)."""
        for _ in range(2):  # one reconnect when the kept-alive connection went away
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
                self.conn.request(method, path, body=json.dumps(body) if body is not None
                                  else None, headers={"authorization": f"Bearer {self.token}"})
                r = self.conn.getresponse()
                return r.status, r.read().decode(), server_timing(r.getheader("server-timing"))
            except (OSError, http.client.HTTPException):
                self.conn = None
        return None, "", {}


STAGES = ("admit", "route", "lease", "run", "work")


def server_timing(value):
    """{name: ms} of a `Server-Timing` header (`admit;dur=0.012, route;dur=…`)."""
    got = {}
    for metric in (value or "").split(","):
        name, _, params = metric.strip().partition(";")
        for param in params.split(";"):
            key, _, dur = param.strip().partition("=")
            if key == "dur":
                got[name] = float(dur)
    return got


def tenant(admin, name):
    status, body = admin.call("POST", "/v1/tenants", {"name": name})
    assert status == 201, body
    client = Client(json.loads(body)["token"])
    return client


def starts(admin):
    """Containers the node started (cold and pre-warmed) and removed so far (/metrics)."""
    _, text = admin.call("GET", "/metrics")
    got = {}
    for line in text.splitlines():
        for name, key in (('forewarm_invocations_total{start="cold"}', "cold"),
                          ("forewarm_prewarms_total", "prewarmed"),
                          ("forewarm_removals_total", "removed")):
            if line.startswith(name + " "):
                got[key] = int(float(line.split()[-1]))
    return got


def pick(xs, q):
    """The nearest-rank q-quantile of xs (nan when empty)."""
    return sorted(xs)[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def quiet_run(quiet):
    """(p50, p99, refused, failed, node p50, node p99, stages): latencies as the client saw
    them and as the node measured them (`latency_ms`: from the request's arrival to the
    runner's answer), ms; stages: {stage: [ms, …]} from each answer's Server-Timing."""
    spans, at_node, refused, failed = [], [], 0, 0
    stages = {name: [] for name in STAGES}
    due = time.monotonic()
    for _ in range(REQUESTS):
        # A steady tenant: one request every PACE_MS (the next at once if one took longer).
        due += PACE_MS / 1000
        time.sleep(max(0.0, due - time.monotonic()))
        begun = time.monotonic()
        status, body, timing = quiet.call_timed("POST", "/v1/invoke/q", {})
        for name in STAGES:
            if name in timing:
                stages[name].append(timing[name])
        if status != 200 and refused + failed < 2:
            print(f"  quiet got {status}: {body[:200]}")
        spans.append((time.monotonic() - begun) * 1000)
        if status == 200:
            at_node.append(json.loads(body)["latency_ms"])
        refused += status in (429, 503)
        failed += status != 200 and status not in (429, 503)
    return (pick(spans, 0.5), pick(spans, 0.99), refused, failed,
            pick(at_node, 0.5), pick(at_node, 0.99), stages)


def main():
    node = Lone(f"chaos-s10-{os.getpid()}", PORT, extra=f"max_inflight = {SLOTS}\n")
    node.start()
    try:
        return run(Client(ADMIN))
    finally:
        node.stop()
        leaked = node.containers()
        if leaked:
            print(f"chaos: {len(leaked)} containers left after the stop")
            sys.exit(1)


def run(admin):
    quiet, noisy = tenant(admin, "quiet"), tenant(admin, "noisy")
    for client, code, work in ((quiet, "q", {"cpu_ms": 1}),
                               (noisy, "n", {"cpu_ms": 1, "sleep_ms": 200})):
        status, body = client.call("PUT", f"/v1/codes/{code}", {"workload": work})
        assert status == 201, body
    for _ in range(20):  # warm
        quiet.call("POST", "/v1/invoke/q", {})
    alone = quiet_run(quiet)

    flooder = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--flood",
                                noisy.token, str(FLOOD)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    # The flood ramps up (its containers start) while the quiet tenant goes on as before.
    ramp_end = time.monotonic() + RAMP_S
    while time.monotonic() < ramp_end:
        quiet.call("POST", "/v1/invoke/q", {})
    begun, before = time.monotonic(), starts(admin)
    flooded = quiet_run(quiet)
    spent, after = time.monotonic() - begun, starts(admin)
    churn = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    out, _ = flooder.communicate(timeout=120)  # closing its stdin stops it
    flood = json.loads(out.strip().splitlines()[-1])
    counts, reasons = flood["counts"], flood["reasons"]
    # The flood's counts cover its whole run (ramp and wind-down included): rates from them.
    print(f"flood: {FLOOD} clients at nice {FLOOD_NICE} for {flood['seconds']:.1f} s: "
          f"{counts['answered'] / flood['seconds']:.0f} answered/s, "
          f"{counts['refused'] / flood['seconds']:.0f} refused/s "
          f"(quiet measured over {spent:.1f} s of it; meanwhile the node started "
          f"{churn.get('cold', 0)} cold and {churn.get('prewarmed', 0)} pre-warmed containers "
          f"and removed {churn.get('removed', 0)})")

    ratio = flooded[1] / alone[1] if alone[1] else float("nan")
    print(f"quiet alone: p50 {alone[0]:.1f} ms, p99 {alone[1]:.1f} ms; under a flood of "
          f"{FLOOD}: p50 {flooded[0]:.1f} ms, p99 {flooded[1]:.1f} ms (p99 x{ratio:.2f}); "
          f"quiet refused {alone[2] + flooded[2]}, failed {alone[3] + flooded[3]}")
    print(f"quiet at the node (arrival to the runner's answer): alone p50 {alone[4]:.1f} ms, "
          f"p99 {alone[5]:.1f} ms; under the flood p50 {flooded[4]:.1f} ms, "
          f"p99 {flooded[5]:.1f} ms")
    print("  by stage (Server-Timing), p50 / p99 ms, alone -> flooded: " + "; ".join(
        f"{name} {pick(alone[6][name], 0.5):.2f}/{pick(alone[6][name], 0.99):.2f} -> "
        f"{pick(flooded[6][name], 0.5):.2f}/{pick(flooded[6][name], 0.99):.2f}"
        for name in STAGES))
    print(f"noisy: {counts['answered']} answered, {counts['refused']} refused, "
          f"{counts['other']} other; refusals: "
          + "; ".join(f"{n}x {r}" for r, n in sorted(reasons.items(), key=lambda x: -x[1])[:3]))
    print(f"RESULT S10-noisy-tenant requests={2 * REQUESTS} "
          f"acknowledged={2 * REQUESTS - alone[2] - flooded[2] - alone[3] - flooded[3]} "
          f"lost={alone[3] + flooded[3]} p99_ratio={ratio:.2f}")
    ok = not (alone[2] or flooded[2] or alone[3] or flooded[3]) and counts["answered"] > 0
    return 0 if ok else 1


def flood_main(token, clients):
    """The flood: `clients` threads invoking `n` as `noisy` until stdin closes; prints its
    counts as one JSON line."""
    os.nice(FLOOD_NICE)
    stop = threading.Event()
    counts = {"answered": 0, "refused": 0, "other": 0}
    reasons = {}
    lock = threading.Lock()

    def flood():
        me = Client(token)
        while not stop.is_set():
            status, body = me.call("POST", "/v1/invoke/n", {})
            kind = "answered" if status == 200 else "refused" if status in (429, 503) else "other"
            with lock:
                counts[kind] += 1
                if kind != "answered":
                    reasons[body[:60]] = reasons.get(body[:60], 0) + 1
            if kind != "answered":
                time.sleep(0.02)

    begun = time.monotonic()
    threads = [threading.Thread(target=flood) for _ in range(clients)]
    for t in threads:
        t.start()
    sys.stdin.read()
    stop.set()
    for t in threads:
        t.join()
    print(json.dumps({"counts": counts, "reasons": reasons,
                      "seconds": time.monotonic() - begun}))
    return 0


if len(sys.argv) > 1 and sys.argv[1] == "--flood":
    sys.exit(flood_main(sys.argv[2], int(sys.argv[3])))
sys.exit(main())
