"""The clusters the chaos scenarios break, and the means to break them.

- `Local`: three `forewarm node` processes on loopback (ports 7171-7173), each with its own
  data directory; a node can be SIGKILLed and restarted with its data.
- `Compose`: the three regions of cluster/compose.yaml (containers on the private network
  forewarm-regions, APIs on 127.0.0.1:7101-7103, peers reached through delay proxies); a node
  can be cut off from its peers in one direction or both with iptables rules inside its
  container's network namespace (nsenter), while clients still reach its API.

Only the standard library.
"""
import json
import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

ADMIN = os.environ.setdefault("FOREWARM_ADMIN_TOKEN", "chaos-admin")
os.environ.setdefault("FOREWARM_CLUSTER_SECRET", f"chaos-{os.getpid()}-{time.time_ns()}")


def get_json(url, path, timeout=1.0):
    req = urllib.request.Request(url + path, headers={"authorization": f"Bearer {ADMIN}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())
    except Exception:
        return None


class Cluster:
    """What both kinds share: node URLs by index, who leads, waiting for a leader."""

    urls = []
    names = []

    def leader(self, among=None):
        """Index of the node a reachable node names as leader, or None."""
        for i in among if among is not None else range(len(self.urls)):
            view = get_json(self.urls[i], "/v1/cluster")
            name = view and view.get("leader_name")
            if name in self.names:
                return self.names.index(name)
        return None

    def wait_leader(self, among=None, other_than=None, within=30.0):
        """Waits until a node among `among` names a leader other than `other_than`; returns
        (index, seconds waited) or raises."""
        begun = time.monotonic()
        while time.monotonic() - begun < within:
            lead = self.leader(among)
            if lead is not None and lead != other_than:
                return lead, time.monotonic() - begun
            time.sleep(0.02)
        raise RuntimeError(f"no leader other than {other_than} within {within} s")

    def wait_members(self, n=3, within=60.0):
        begun = time.monotonic()
        while time.monotonic() - begun < within:
            views = [get_json(u, "/v1/cluster") for u in self.urls]
            if all(v and v.get("leader_name") and
                   sum(m.get("role") in ("voter", "leader") for m in v.get("members", [])) == n
                   for v in views):
                return
            time.sleep(0.2)
        raise RuntimeError(f"the cluster did not form {n} members within {within} s")


class Local(Cluster):
    PORTS = [7171, 7172, 7173]

    def __init__(self, binary):
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="forewarm-chaos.")
        self.urls = [f"http://127.0.0.1:{p}" for p in self.PORTS]
        self.names = [f"chaos-n{i + 1}" for i in range(3)]
        self.procs = [None, None, None]
        regions = ["us-east", "eu-west", "ap-south"]
        # Members speak mutual TLS on cluster listeners of their own (port + 100).
        tls = f"{self.dir}/tls"
        subprocess.run([binary, "cluster", "certs", "--out", tls]
                       + [a for n in self.names for a in ("--node", n)],
                       check=True, capture_output=True)
        for i, port in enumerate(self.PORTS):
            with open(f"{self.dir}/n{i + 1}.toml", "w") as f:
                f.write(f'node_id = "{self.names[i]}"\nregion = "{regions[i]}"\n'
                        f'listen = "127.0.0.1:{port}"\ndata_dir = "{self.dir}/n{i + 1}"\n'
                        f'[cluster]\nlisten = "127.0.0.1:{port + 100}"\n'
                        f'tls = {{ ca = "{tls}/ca.pem", cert = "{tls}/{self.names[i]}.pem", '
                        f'key = "{tls}/{self.names[i]}.key" }}\n')

    def start(self, i, join=None):
        args = [self.binary, "node", "--config", f"{self.dir}/n{i + 1}.toml"]
        if join is not None:
            args += ["--join", f"127.0.0.1:{self.PORTS[join] + 100}"]
        log = open(f"{self.dir}/n{i + 1}.log", "a")
        self.procs[i] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        for _ in range(200):
            if self._healthy(i):
                return
            time.sleep(0.05)
        raise RuntimeError(f"node {i + 1} did not come up (log {self.dir}/n{i + 1}.log)")

    def _healthy(self, i):
        try:
            with urllib.request.urlopen(self.urls[i] + "/healthz", timeout=0.5) as r:
                return r.status == 200
        except Exception:
            return False

    def up(self):
        self.start(0)
        self.start(1, join=0)
        self.start(2, join=0)
        self.wait_members()

    def kill(self, i):
        """SIGKILL: no shutdown, whatever was in flight is cut."""
        self.procs[i].kill()
        self.procs[i].wait()
        self.procs[i] = None

    def alive(self):
        return [i for i, p in enumerate(self.procs) if p is not None]

    def down(self):
        for p in self.procs:
            if p is not None:
                p.terminate()
        for p in self.procs:
            if p is not None:
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()


class Compose(Cluster):
    REGIONS = ["us-east", "eu-west", "ap-south"]
    NODE_IPS = ["10.77.0.11", "10.77.0.12", "10.77.0.13"]
    PROXY_IPS = ["10.77.0.21", "10.77.0.22", "10.77.0.23"]

    def __init__(self):
        self.urls = [f"http://127.0.0.1:{7101 + i}" for i in range(3)]
        self.names = [f"{r}-1" for r in self.REGIONS]
        self.compose = ["docker-compose", "-f", "cluster/compose.yaml"]
        self.rules = []

    def up(self):
        subprocess.run(self.compose + ["up", "-d"], check=True, capture_output=True)
        self.wait_members()

    def _pid(self, i):
        out = subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}",
                              f"fw-{self.REGIONS[i]}"], check=True, capture_output=True,
                             text=True)
        return out.stdout.strip()

    def _iptables(self, i, *rule):
        subprocess.run(["nsenter", "-t", self._pid(i), "-n", "iptables", *rule], check=True,
                       capture_output=True)

    def cut(self, i, inbound=True, outbound=True):
        """Node i stops hearing its peers (inbound) and/or reaching them (outbound); clients
        on the host still reach its API (they come from the network's gateway)."""
        peers = [ip for j in range(3) if j != i for ip in (self.NODE_IPS[j], self.PROXY_IPS[j])]
        peers.append(self.PROXY_IPS[i])  # the peers' connections to i arrive through its proxy
        for ip in peers:
            if inbound:
                self._rule(i, ["INPUT", "-s", ip, "-j", "DROP"])
            if outbound:
                self._rule(i, ["OUTPUT", "-d", ip, "-j", "DROP"])

    def _rule(self, i, rule):
        self._iptables(i, "-A", *rule)
        self.rules.append((i, rule))

    def heal(self):
        for node, rule in self.rules:
            self._iptables(node, "-D", *rule)
        self.rules = []

    def down(self):
        if self.rules:
            try:
                self.heal()
            except Exception:
                pass
        subprocess.run(self.compose + ["down", "-v"], capture_output=True)


def binary():
    """The forewarm binary: $FOREWARM_BIN, else the release build, else the static one."""
    for path in (os.environ.get("FOREWARM_BIN"), "target/release/forewarm",
                 "target/x86_64-unknown-linux-gnu/release/forewarm"):
        if path and os.access(path, os.X_OK):
            return path
    raise SystemExit("chaos: no forewarm binary: run make build (or set FOREWARM_BIN)")


class Lone:
    """One `forewarm node` process on Docker on 127.0.0.1:`port`, with its own data directory
    (`data_dir`, default a fresh one), restartable with its data; `extra` is appended to its
    config file, `env` to its environment."""

    def __init__(self, name, port, data_dir=None, extra="", env=None):
        self.name, self.port, self.extra = name, port, extra
        self.env = {**os.environ, **(env or {})}
        self.dir = tempfile.mkdtemp(prefix=f"forewarm-{name}.")
        self.data = data_dir or f"{self.dir}/data"
        self.url = f"http://127.0.0.1:{port}"
        self.proc = None

    def start(self):
        with open(f"{self.dir}/node.toml", "w") as f:
            f.write(f'node_id = "{self.name}"\nlisten = "127.0.0.1:{self.port}"\n'
                    f'data_dir = "{self.data}"\n{self.extra}')
        log = open(f"{self.dir}/node.log", "a")
        self.proc = subprocess.Popen([binary(), "node", "--config", f"{self.dir}/node.toml"],
                                     stdout=log, stderr=subprocess.STDOUT, env=self.env)
        for _ in range(300):
            if self.call("GET", "/healthz", ADMIN, timeout=1)[0] == 200:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"the node did not come up (log {self.dir}/node.log)")

    def kill(self):
        """SIGKILL: whatever was in flight is cut."""
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        """SIGTERM and wait: the node removes its containers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def call(self, method, path, token, body=None, key=None, timeout=30):
        """(status or None, headers with lower-case names, body text)."""
        headers = {"authorization": f"Bearer {token}"}
        if key:
            headers["idempotency-key"] = key
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode()
        except Exception as e:  # refused, reset, timed out: no answer
            return None, {}, repr(e)

    def containers(self):
        """Ids of the Docker containers labelled with this node."""
        out = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=forewarm.node={self.name}"],
                             capture_output=True, text=True, check=True)
        return set(out.stdout.split())
