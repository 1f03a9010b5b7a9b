"""Concurrent clients of the replicated state (tenants and code types) that record a history,
and the judgement of a run: linearizability (lin.py), acknowledged writes lost, duplicated
writes.

Each client picks a random node for every request and, at random: creates a tenant with a
fresh name, reads one back, writes a code type (`PUT /v1/codes/kN` with a fresh `timeout_ms`
as the value) or reads one (`GET /v1/codes/kN`, linearizable). A request is recorded with its
send and answer times and what the answer proves; one whose answer proves nothing (no
answer, a 5xx of a write) is recorded as unknown: it may have taken effect, or not.

Only the standard library.
"""
import itertools
import json
import random
import threading
import time
import urllib.error
import urllib.request

import lin
from nodes import ADMIN

CODE_KEYS = 8
TIMEOUT_S = 15  # longer than a node waits for a leader (10 s): its own answer comes first


def call(method, url, token, body=None):
    """(status or None, JSON body or None)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read() or b"null")
        except ValueError:
            return e.code, None
    except Exception:
        return None, None


class Workload:
    def __init__(self, cluster, clients=4, pause_s=0.02, seed=None):
        self.cluster = cluster
        self.clients = clients
        self.pause_s = pause_s
        self.rng = random.Random(seed)
        self.history = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.counter = itertools.count(1)
        self.names = []  # tenants whose creation was asked
        self.token = None
        self.asked = 0
        self.statuses = {}

    def setup(self):
        """A tenant owning the code types, visible on every node."""
        url = self.cluster.urls[self.cluster.leader() or 0]
        status, body = call("POST", url + "/v1/tenants", ADMIN, {"name": "chaos-owner"})
        if status != 201:
            raise RuntimeError(f"creating the owner tenant: {status} {body}")
        self.token = body["token"]
        for url in self.cluster.urls:
            for _ in range(100):
                if call("GET", url + "/v1/tenants/chaos-owner", ADMIN)[0] == 200:
                    break
                time.sleep(0.1)

    def record(self, key, f, value, ok, start, end, url):
        with self.lock:
            self.history.append({"key": key, "f": f, "value": value, "ok": ok,
                                 "start": start, "end": end,
                                 "node": self.cluster.urls.index(url)})

    def answered(self, url, status):
        """Counts answers per node and status (None: no answer) for the report."""
        with self.lock:
            node = self.cluster.urls.index(url)
            self.statuses[(node, status)] = self.statuses.get((node, status), 0) + 1

    def one(self, rng, urls):
        url = rng.choice(urls)
        kind = rng.random()
        start = time.monotonic()
        with self.lock:
            self.asked += 1
        if kind < 0.35:
            name = f"c{next(self.counter)}"
            with self.lock:
                self.names.append(name)
            status, _ = call("POST", url + "/v1/tenants", ADMIN, {"name": name})
            self.answered(url, status)
            ok = {201: "created", 409: "exists"}.get(status)
            if ok is None and status is not None and status < 500:
                return  # refused before anything was written
            self.record(f"tenant/{name}", "create", None, ok, start, time.monotonic(), url)
        elif kind < 0.55:
            with self.lock:
                name = rng.choice(self.names) if self.names else "c0"
            self.read_tenant(url, name, start)
        elif kind < 0.8:
            key, value = f"k{rng.randrange(CODE_KEYS)}", 1000 + next(self.counter)
            status, body = call("PUT", url + f"/v1/codes/{key}", self.token,
                                {"workload": {"cpu_ms": 1}, "timeout_ms": value})
            self.answered(url, status)
            if status in (200, 201):
                ok = body["version"]
            elif status is None or status >= 500:
                ok = None
            else:
                return  # 4xx: refused (e.g. the owner not yet applied on a restarted node)
            self.record(f"code/{key}", "put", value, ok, start, time.monotonic(), url)
        else:
            key = f"k{rng.randrange(CODE_KEYS)}"
            status, body = call("GET", url + f"/v1/codes/{key}", self.token)
            end = time.monotonic()
            self.answered(url, status)
            if status == 200:
                self.record(f"code/{key}", "get", None, [body["timeout_ms"], body["version"]],
                            start, end, url)
            elif status == 404:
                self.record(f"code/{key}", "get", None, None, start, end, url)

    def read_tenant(self, url, name, start=None):
        start = time.monotonic() if start is None else start
        status, _ = call("GET", url + f"/v1/tenants/{name}", ADMIN)
        self.answered(url, status)
        ok = {200: "present", 404: "absent"}.get(status)
        if ok is not None:
            self.record(f"tenant/{name}", "get", None, ok, start, time.monotonic(), url)
        return ok

    def client(self, i, urls_of, max_ops):
        rng = random.Random(self.rng.random())
        for _ in range(max_ops):
            if self.stop.is_set():
                return
            urls = urls_of()
            if urls:
                self.one(rng, urls)
            time.sleep(self.pause_s)

    def run(self, nemesis, urls_of=None, max_ops=2000):
        """Clients run while `nemesis()` does its damage (and heals it); then they stop.
        `urls_of()` names the nodes to send to (default: all)."""
        urls_of = urls_of or (lambda: self.cluster.urls)
        threads = [threading.Thread(target=self.client, args=(i, urls_of, max_ops))
                   for i in range(self.clients)]
        for t in threads:
            t.start()
        try:
            nemesis()
        finally:
            self.stop.set()
            for t in threads:
                t.join()

    def final_reads(self, within=30.0):
        """Every tenant asked for, read on every node once the cluster is whole; returns the
        names acknowledged but absent on some node (lost)."""
        acked = {op["key"][len("tenant/"):] for op in self.history
                 if op["f"] == "create" and op["ok"] == "created"}
        lost = set()
        for url in self.cluster.urls:
            for name in sorted(set(self.names)):
                ok = None
                begun = time.monotonic()
                while ok is None and time.monotonic() - begun < within:
                    ok = self.read_tenant(url, name)
                if name in acked and ok != "present":
                    lost.add(name)
        return sorted(lost)

    def judge(self, scenario, lost, failover_ms="-", path=None):
        """Prints the verdict and the RESULT line for chaos/run-all.sh; True when it passed."""
        if path:
            with open(path, "w") as f:
                for op in sorted(self.history, key=lambda o: o["start"]):
                    f.write(json.dumps(op) + "\n")
        bad, undecided = lin.check(self.history)
        writes = [op for op in self.history if op["f"] in ("create", "put")]
        acked = [op for op in writes if op["ok"] is not None and op["ok"] != "exists"]
        unknown = [op for op in writes if op["ok"] is None]
        # Every name is asked for once: "exists" means the one creation was applied twice (a
        # retried forward). The checker rejects it too; counted here on its own.
        dup = sum(1 for op in writes if op["ok"] == "exists")
        print(f"{scenario}: {self.asked} requests, {len(self.history)} recorded, "
              f"{len(writes)} writes ({len(acked)} acknowledged, {len(unknown)} unknown), "
              f"{len(lost)} acknowledged tenants lost, {len(bad)} keys not linearizable, "
              f"{len(undecided)} undecided")
        for node, name in enumerate(self.cluster.names):
            counts = sorted((str(st), n) for (i, st), n in self.statuses.items() if i == node)
            print(f"  answers of {name}: " + ", ".join(f"{st}: {n}" for st, n in counts))
        for why in (bad + undecided)[:5]:
            print("  NOT LINEARIZABLE" if why in bad else "  UNDECIDED", why[:1500])
        for name in lost[:5]:
            print(f"  LOST: tenant {name} was acknowledged")
        print(f"RESULT {scenario} requests={self.asked} acknowledged={len(acked)} "
              f"lost={len(lost)} duplicated={dup} stale={len(bad)} failover_ms={failover_ms}")
        return not (bad or undecided or lost)


def scenario(name, cluster, nemesis, urls_of=None, history_dir="/tmp"):
    """Brings `cluster` up, runs the clients while `nemesis(cluster)` breaks and heals it
    (returning the failover ms it saw, or "-"), reads everything back on every node, judges,
    takes the cluster down; exit status 0 when the run passed."""
    failover = ["-"]
    try:
        cluster.up()
        work = Workload(cluster)
        work.setup()
        work.run(lambda: failover.__setitem__(0, nemesis(cluster)),
                 urls_of and (lambda: urls_of(cluster)))
        cluster.wait_members()
        lost = work.final_reads()
        path = f"{history_dir}/forewarm-{name}-{int(time.time())}.jsonl"
        passed = work.judge(name, lost, failover[0], path)
        print(f"history: {path}")
        return 0 if passed else 1
    finally:
        cluster.down()
