"""`serve` over TLS against a hostile client, with a low open-file limit: hundreds of
connections that never finish a handshake or a request head do not make the accept loop spin,
do not flood the log, and do not keep the server from answering someone else; they are closed
once their time is up.

The certificate is a throw-away self-signed one (as in test_web_serve)."""

import http.client
import resource
import socket
import ssl
import subprocess
import time

from harness import BIN, wait_for
from test_web_serve import _request, _tls_serve_config

FILE_LIMIT = 128


def _cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / 100.0


def _healthz(port, cafile, source):
    return _request(port, cafile, "GET", "/healthz", source=source)[0]


def test_a_slowloris_crowd_neither_spins_the_server_nor_locks_others_out(tmp_path, endpoint):
    tw, port, cert = _tls_serve_config(tmp_path, endpoint)
    log = tmp_path / "serve.log"

    def low_file_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (FILE_LIMIT, FILE_LIMIT))

    with open(log, "ab") as err:
        serve = subprocess.Popen([str(BIN), "serve", "--config", str(tw.config), "--format", "json"],
                                 env=tw.env, stdout=subprocess.PIPE, stderr=err, preexec_fn=low_file_limit)
    held = []
    try:
        wait_for(lambda: _up(port, cert), timeout=60, what="HTTPS healthz")
        # Three times the file limit: TCP connections that send nothing (no ClientHello) and
        # ones that send half a TLS record, all from one address.
        for i in range(3 * FILE_LIMIT):
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.settimeout(5)
            try:
                s.connect(("127.0.0.1", port))
                if i % 2:
                    s.sendall(b"\x16\x03\x01\x02\x00")  # a handshake record header, then nothing
            except OSError:
                s.close()
                continue
            held.append(s)
        log_before = log.stat().st_size
        cpu_before = _cpu_seconds(serve.pid)
        time.sleep(5)
        cpu = _cpu_seconds(serve.pid) - cpu_before
        print(f"serve used {cpu:.2f} s of CPU in 5 s with {len(held)} connections hanging")
        assert cpu < 1.5, f"{cpu:.2f} s of CPU in 5 s while {len(held)} connections hang: the accept loop spins"
        # Someone else is answered while the crowd holds on.
        assert _healthz(port, cert, "127.0.0.3") == 200
        grown = log.stat().st_size - log_before
        assert grown < 20_000, f"the log grew by {grown} bytes in 5 s"
        assert serve.poll() is None, "serve is still running"
        # The held connections are closed by the server within the handshake timeout (10 s).
        deadline = time.time() + 25
        open_ones = list(held)
        while open_ones and time.time() < deadline:
            still = []
            for s in open_ones:
                try:
                    s.settimeout(0.05)
                    if s.recv(1) == b"":
                        continue
                except socket.timeout:
                    still.append(s)
                    continue
                except OSError:
                    continue
            open_ones = still
        assert not open_ones, f"{len(open_ones)} of {len(held)} idle connections still open after 25 s"
    finally:
        for s in held:
            s.close()
        serve.terminate()
        serve.wait(60)


def _up(port, cert):
    try:
        return _healthz(port, cert, "127.0.0.1") == 200
    except (OSError, ssl.SSLError, http.client.HTTPException):
        time.sleep(0.2)
        return False
