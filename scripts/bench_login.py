#!/usr/bin/env python3
"""Login throughput and memory under concurrent logins, for one or two trailwatch binaries.

For each binary: a fresh store with a user, `serve` (no accounts) on a free loopback port, then
1. right passwords from N concurrent clients (a user each) for S seconds: logins/s and the
   statuses seen;
2. a flood of wrong passwords from N concurrent clients: the statuses (401 until the limits,
   then 429) and serve's peak RSS, i.e. how many argon2id checks (19 MiB each) ran at once.

Run both binaries in one invocation (the second is the baseline) and compare ratios: these
machines are noisy, absolute figures are not. Password checks are argon2id, compiled with
optimisation even in the dev profile, so debug binaries measure what matters.

    scripts/bench_login.py --bin target/debug/trailwatch --baseline /path/to/older/trailwatch
"""

import argparse
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

PASSWORD = "bench-login-password-1"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kb(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Server:
    def __init__(self, binary, tmp, users):
        self.port = free_port()
        db = os.path.join(tmp, "t.db")
        config = os.path.join(tmp, "tw.toml")
        with open(config, "w") as f:
            f.write(f'[store]\npath = "{db}"\n[web]\nlisten = "127.0.0.1:{self.port}"\n')
        # One user per client: concurrent logins of one name from one address are not what a
        # limiter should let through in bulk.
        for i in range(users):
            subprocess.run([binary, "user", "add", f"bench{i}", "--role", "viewer", "--password-stdin", "--db", db],
                           input=PASSWORD + "\n", text=True, check=True, capture_output=True)
        self.proc = subprocess.Popen([binary, "serve", "--config", config], stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(tmp, "serve.log"), "wb"))
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("serve did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


def login_once(port, user, password):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("GET", "/login")
    r = c.getresponse()
    page = r.read().decode()
    cookie = next(v for k, v in r.getheaders() if k.lower() == "set-cookie" and v.startswith("trailwatch_login="))
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode({"username": user, "password": password, "csrf": csrf, "next": "/"})
    c.request("POST", "/login", body=body, headers={"Content-Type": "application/x-www-form-urlencoded",
                                                    "Cookie": cookie.split(";")[0]})
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


def run_clients(port, clients, seconds, password):
    statuses = {}
    lock = threading.Lock()
    stop = time.time() + seconds

    def client(user):
        while time.time() < stop:
            try:
                s = login_once(port, user, password)
            except (OSError, http.client.HTTPException, StopIteration, AttributeError):
                s = "error"
            with lock:
                statuses[s] = statuses.get(s, 0) + 1

    threads = [threading.Thread(target=client, args=(f"bench{i}",)) for i in range(clients)]
    started = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses, time.time() - started


def measure(binary, clients, seconds):
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(binary, tmp, clients)
        try:
            base_rss = rss_kb(server.proc.pid)
            peak = [base_rss]
            done = threading.Event()

            def watch():
                while not done.is_set():
                    try:
                        peak[0] = max(peak[0], rss_kb(server.proc.pid))
                    except OSError:
                        return
                    time.sleep(0.05)

            watcher = threading.Thread(target=watch)
            watcher.start()
            right, took = run_clients(server.port, clients, seconds, PASSWORD)
            right_peak = peak[0]
            peak[0] = rss_kb(server.proc.pid)
            wrong, _ = run_clients(server.port, clients, min(seconds, 10), "wrong-password")
            done.set()
            watcher.join()
            return {
                "binary": binary,
                "clients": clients,
                "logins_per_s": round(right.get(303, 0) / took, 2),
                "right_statuses": right,
                "right_peak_rss_mb": round(right_peak / 1024, 1),
                "wrong_statuses": wrong,
                "wrong_peak_rss_mb": round(peak[0] / 1024, 1),
                "idle_rss_mb": round(base_rss / 1024, 1),
            }
        finally:
            server.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--baseline")
    ap.add_argument("--clients", default="1,8,64")
    ap.add_argument("--seconds", type=float, default=15)
    args = ap.parse_args()
    for clients in [int(c) for c in args.clients.split(",")]:
        results = [measure(args.bin, clients, args.seconds)]
        if args.baseline:
            results.append(measure(args.baseline, clients, args.seconds))
        for r in results:
            print(json.dumps(r, default=str))
        if args.baseline and results[1]["logins_per_s"]:
            print(f"# {clients} clients: logins/s {results[0]['logins_per_s'] / results[1]['logins_per_s']:.2f}x the baseline; "
                  f"peak RSS under wrong passwords {results[0]['wrong_peak_rss_mb']} MB vs {results[1]['wrong_peak_rss_mb']} MB")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
