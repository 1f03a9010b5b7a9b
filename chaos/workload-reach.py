#!/usr/bin/env python3
"""S13: from inside a workload's network on the compose cluster (cluster/compose.yaml), the
node that runs it is out of reach. The node container joins every tenant network to reach its
runners; its API (8080) and cluster listener (9443) are bound to its address on the regions
network only. A tenant's code runs on us-east, then the test-only probe image
(forewarm/probe:test, `make images`) runs on that tenant's network, as a workload would, and
tries: the tenant's own runner (must answer: the control), the node's address on the tenant
network (API and cluster ports), and its address on the regions network. Before the binding,
the node's API answered the probe there.

    chaos/workload-reach.py   (needs make images)
"""
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, "chaos/lib")
from nodes import ADMIN, Compose  # noqa: E402

PROBE = os.environ.get("FOREWARM_PROBE_IMAGE", "forewarm/probe:test")
US_EAST = "http://127.0.0.1:7101"
CODE = {"workload": {"cpu_ms": 2, "mem_mib": 8, "init_ms": 50}, "max_memory_mib": 128}


def call(method, path, token, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(US_EAST + path, data=data, method=method,
                                 headers={"authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def inspect(container):
    out = subprocess.run(["docker", "inspect", container], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout)[0]


def main():
    cluster = Compose()
    try:
        cluster.up()
        status, body = call("POST", "/v1/tenants", ADMIN, {"name": "reach"})
        assert status == 201, body
        token = json.loads(body)["token"]
        status, body = call("PUT", "/v1/codes/f", token, CODE)
        assert status == 201, body
        status, body = call("POST", "/v1/invoke/f", token)
        assert status == 200, body
        runners = subprocess.run(["docker", "ps", "-q", "--filter",
                                  "label=forewarm.node=us-east-1"],
                                 check=True, capture_output=True, text=True).stdout.split()
        assert runners, "no runner of us-east-1"
        runner_nets = inspect(runners[0])["NetworkSettings"]["Networks"]
        (network, endpoint), = runner_nets.items()
        node_nets = inspect("fw-us-east")["NetworkSettings"]["Networks"]
        assert network in node_nets, f"the node is not on its tenant's network {network}"
        node_on_tenant = node_nets[network]["IPAddress"]
        node_on_regions = node_nets["forewarm-regions"]["IPAddress"]
        targets = {
            f"{endpoint['IPAddress']}:8080": True,  # the tenant's own runner: the control
            f"{node_on_tenant}:8080": False,        # the node's API, on the tenant network
            f"{node_on_tenant}:9443": False,        # its cluster listener there
            f"{node_on_regions}:8080": False,       # both on the regions network
            f"{node_on_regions}:9443": False,
        }
        out = subprocess.run(["docker", "run", "--rm", "--network", network, PROBE,
                              *targets], check=True, capture_output=True, text=True).stdout
        print(out, end="", flush=True)
        seen = {line.split()[0]: line.split()[1] == "open" for line in out.splitlines()}
        wrong = [a for a, want in targets.items() if seen.get(a) != want]
        if wrong:
            print(f"S13 workload-reach: FAIL: {wrong} not as expected "
                  f"(want {targets}, saw {seen})", flush=True)
            return 1
        print(f"S13 workload-reach: passed: from tenant network {network} the runner answers; "
              f"the node's API and cluster listener answer on neither of its addresses",
              flush=True)
        return 0
    finally:
        cluster.down()


sys.exit(main())
