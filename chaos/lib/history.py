#!/usr/bin/env python3
"""Record a history of concurrent invocations against a node, and judge it.

  history.py burst URL TOKEN CODE N OUT.jsonl   N concurrent POST /v1/invoke/CODE, released
                                               together; one JSON line per request: its id,
                                               start and end (ns, monotonic), status, start
                                               kind, Retry-After, container, error
  history.py check OUT.jsonl [--no-rejections] one table row: requests, answered (2xx),
                                               rejected (429/503, each must carry
                                               Retry-After), failed (other answers), lost (no
                                               answer at all); exit 1 on a loss, a rejection
                                               without Retry-After, or (--no-rejections) any
                                               rejection

Only the standard library: it runs wherever the chaos scripts run.
"""
import json
import sys
import threading
import time
import urllib.error
import urllib.request

# Longer than any deadline a code type may name in these scenarios: a request without an
# answer by then is lost.
ANSWER_WITHIN_S = 120


def one(url, token, code, rid, barrier, out, lock):
    req = urllib.request.Request(
        f"{url}/v1/invoke/{code}",
        data=b"",
        method="POST",
        headers={"authorization": f"Bearer {token}", "x-chaos-id": rid},
    )
    barrier.wait()
    entry = {"id": rid, "start_ns": time.monotonic_ns()}
    try:
        with urllib.request.urlopen(req, timeout=ANSWER_WITHIN_S) as r:
            body = json.loads(r.read() or b"{}")
            entry.update(status=r.status, start=r.headers.get("x-forewarm-start"),
                         container=body.get("container"))
    except urllib.error.HTTPError as e:
        body = e.read().decode(errors="replace")
        entry.update(status=e.code, retry_after=e.headers.get("retry-after"), error=body[:300])
    except Exception as e:  # no answer: refused, reset, timed out
        entry.update(status=None, error=repr(e)[:300])
    entry["end_ns"] = time.monotonic_ns()
    with lock:
        out.append(entry)


def burst(url, token, code, n, path):
    n = int(n)
    barrier = threading.Barrier(n)
    out, lock = [], threading.Lock()
    threads = [threading.Thread(target=one, args=(url, token, code, f"r{i}", barrier, out, lock))
               for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(path, "w") as f:
        for e in sorted(out, key=lambda e: e["start_ns"]):
            f.write(json.dumps(e) + "\n")


def check(path, *flags):
    with open(path) as f:
        history = [json.loads(line) for line in f if line.strip()]
    ids = [e["id"] for e in history]
    answered = [e for e in history if e["status"] is not None and 200 <= e["status"] < 300]
    rejected = [e for e in history if e["status"] in (429, 503)]
    lost = [e for e in history if e["status"] is None]
    failed = [e for e in history if e not in answered and e not in rejected and e not in lost]
    no_retry = [e for e in rejected if not e.get("retry_after")]
    kinds = {}
    for e in answered:
        kinds[e.get("start")] = kinds.get(e.get("start"), 0) + 1
    spans = [(e["end_ns"] - e["start_ns"]) / 1e6 for e in answered]
    spans.sort()
    p = lambda q: spans[min(len(spans) - 1, int(q * len(spans)))] if spans else float("nan")
    print(f"requests {len(history)} (distinct ids {len(set(ids))}), answered {len(answered)} "
          f"{kinds}, rejected {len(rejected)} ({len(no_retry)} without Retry-After), "
          f"failed {len(failed)}, lost {len(lost)}; latency ms p50 {p(0.5):.0f} "
          f"p99 {p(0.99):.0f} max {p(1.0):.0f}")
    scenario = next((f.split("=", 1)[1] for f in flags if f.startswith("--scenario=")), None)
    if scenario:
        # One line for chaos/run-all.sh's table. Duplicated executions are not observable
        # from outside a Docker runner: "-".
        print(f"RESULT {scenario} requests={len(history)} acknowledged={len(answered)} "
              f"lost={len(lost)} duplicated=- stale=- rejected={len(rejected)}")
    for e in (lost + failed + no_retry)[:5]:
        print("  e.g.", json.dumps(e))
    bad = lost or no_retry or len(set(ids)) != len(ids)
    if "--no-rejections" in flags and (rejected or failed):
        bad = True
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) >= 7 and sys.argv[1] == "burst":
        burst(*sys.argv[2:7])
    elif len(sys.argv) >= 3 and sys.argv[1] == "check":
        sys.exit(check(*sys.argv[2:]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
