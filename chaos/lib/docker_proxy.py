"""A proxy on a unix socket in front of the Docker engine's, that fails or stalls the requests
the chaos scenarios pick (S7). A node pointed at it with DOCKER_HOST=unix://PATH sees an engine
that errs and hangs; everything else passes through untouched.

Each request is made to travel on its own connection (`Connection: close` is forced on the
way in), so every request can be inspected; streams (stats, logs) pass through as they are.

Only the standard library.
"""
import os
import re
import socket
import threading
import time

ENGINE = "/var/run/docker.sock"


class DockerProxy:
    def __init__(self, path):
        self.path = path
        self.rules = []  # (method, path regex, action, argument), first match wins
        self.counts = {}
        self.lock = threading.Lock()
        if os.path.exists(path):
            os.remove(path)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(128)
        threading.Thread(target=self.serve, daemon=True).start()

    def fail(self, method, pattern, every=1):
        """Answer 500 to every `every`-th matching request."""
        self.rules = [(method, re.compile(pattern), "fail", every)]

    def stall(self, method, pattern, seconds):
        """Hold every matching request `seconds` before passing it on."""
        self.rules = [(method, re.compile(pattern), "stall", seconds)]

    def clear(self):
        self.rules = []

    def serve(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self.one, args=(client,), daemon=True).start()

    def one(self, client):
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(65536)
                if not chunk:
                    return
                head += chunk
            head, rest = head.split(b"\r\n\r\n", 1)
            lines = head.split(b"\r\n")
            method, target = lines[0].split(b" ")[:2]
            method, target = method.decode(), target.decode()
            for m, pattern, action, arg in self.rules:
                if m == method and pattern.search(target):
                    key = (action, method, pattern.pattern)
                    with self.lock:
                        self.counts[key] = self.counts.get(key, 0) + 1
                        n = self.counts[key]
                    if action == "fail" and n % arg == 0:
                        body = b'{"message":"chaos: injected engine error"}'
                        client.sendall(b"HTTP/1.1 500 Internal Server Error\r\n"
                                       b"Content-Type: application/json\r\n"
                                       b"Content-Length: " + str(len(body)).encode() +
                                       b"\r\nConnection: close\r\n\r\n" + body)
                        return
                    if action == "stall":
                        time.sleep(arg)
                    break
            kept = [line for line in lines[1:] if not line.lower().startswith(b"connection:")]
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(ENGINE)
            upstream.sendall(b"\r\n".join([lines[0], *kept, b"Connection: close"]) +
                             b"\r\n\r\n" + rest)
            threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
            pump(upstream, client)
        except OSError:
            pass
        finally:
            client.close()

    def close(self):
        self.server.close()
        if os.path.exists(self.path):
            os.remove(self.path)


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
