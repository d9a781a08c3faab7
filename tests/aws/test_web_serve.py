"""`serve` as a web server: no [[accounts]], HTTPS straight from rustls, the first admin, users.

The certificate is a throw-away self-signed one made here with `cryptography`; the client
trusts exactly it, so the handshake, the certificate chain and the key are really used.
"""

import datetime
import http.client
import ipaddress
import json
import re
import ssl
import subprocess
import time
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness import BIN, Trailwatch, wait_for


def _self_signed(tmp):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _https(port, cafile, source=None):
    ctx = ssl.create_default_context(cafile=str(cafile))
    return http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10,
                                       source_address=(source, 0) if source else None)


def _request(port, cafile, method, path, body=None, headers=None, source=None):
    """(status, headers, Set-Cookie values, body); from the loopback address `source` if given."""
    conn = _https(port, cafile, source)
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read().decode()
    cookies = r.headers.get_all("Set-Cookie") or []
    conn.close()
    return r.status, r.headers, cookies, data


def _tls_serve_config(tmp_path, endpoint):
    """A Trailwatch without accounts whose [web] serves HTTPS with a throw-away certificate
    (the harness writes a plain listener): (tw, port, certificate path)."""
    cert, key = _self_signed(tmp_path)
    tw = Trailwatch(tmp_path, endpoint, [])
    port = int(tw.web.rsplit(":", 1)[1])
    text = tw.config.read_text().replace(f'listen = "127.0.0.1:{port}"',
                        f'listen = "127.0.0.1:{port}"\ntls_cert = "{cert}"\ntls_key = "{key}"')
    tw.config.write_text(text)
    return tw, port, cert


def test_serve_without_accounts_over_tls_creates_the_admin_and_logs_in(tmp_path, endpoint):
    tw, port, cert = _tls_serve_config(tmp_path, endpoint)
    serve = tw.start_serve()
    try:
        log = tmp_path / "serve.log"
        password = wait_for(lambda: (m := re.search(r"password \(shown once\): (\S+)", log.read_text())) and m.group(1),
                            timeout=60, what="the first admin's password")
        wait_for(lambda: _healthy(port, cert), timeout=30, what="HTTPS healthz")
        # Plain HTTP on the TLS port is not served.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/healthz")
            plain = conn.getresponse().status
        except (ConnectionError, http.client.HTTPException, OSError):
            plain = None
        assert plain != 200
        # Without a session: the login page.
        status, headers, _, _ = _request(port, cert, "GET", "/events")
        assert status == 303 and headers["Location"].startswith("/login")
        status, _, cookies, page = _request(port, cert, "GET", "/login")
        login_cookie = next(c for c in cookies if c.startswith("trailwatch_login="))
        assert "Secure" in login_cookie, "cookies are Secure over TLS"
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        body = urllib.parse.urlencode({"username": "admin", "password": password, "csrf": csrf, "next": "/"})
        status, headers, cookies, _ = _request(port, cert, "POST", "/login", body, {
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": login_cookie.split(";")[0]})
        assert status == 303, cookies
        session = next(c for c in cookies if c.startswith("trailwatch_session="))
        assert all(flag in session for flag in ("HttpOnly", "SameSite=Strict", "Secure")), session
        status, _, _, page = _request(port, cert, "GET", "/", headers={"Cookie": session.split(";")[0]})
        assert status == 200 and "Overview" in page
        # An API token made with the CLI reads the API.
        token = tw.api_token()
        status, _, _, data = _request(port, cert, "GET", "/api/v1/accounts", headers={"Authorization": f"Bearer {token}"})
        assert status == 200 and json.loads(data)["accounts"] == []
        # A second start does not create another admin or print a password.
        serve.send_signal(2)
        serve.wait(timeout=30)
        before = log.read_text().count("shown once")
        serve = tw.start_serve()
        wait_for(lambda: _healthy(port, cert), timeout=30, what="HTTPS healthz again")
        assert log.read_text().count("shown once") == before
    finally:
        serve.kill()
        serve.wait()


def _healthy(port, cafile):
    try:
        return _request(port, cafile, "GET", "/healthz")[0] == 200
    except (OSError, ssl.SSLError, http.client.HTTPException):
        time.sleep(0.2)
        return False


def test_user_add_and_reset(tmp_path):
    db = tmp_path / "t.db"
    run = lambda *a, **kw: subprocess.run([str(BIN), *map(str, a)], capture_output=True, text=True, **kw)
    p = run("user", "add", "alice", "--role", "viewer", "--db", db)
    assert p.returncode == 0, p.stderr
    generated = re.search(r"password: (\S+)", p.stdout).group(1)
    assert len(generated) == 20
    p = run("user", "add", "alice", "--role", "admin", "--password-stdin", "--db", db, input="short\n")
    assert p.returncode == 2 and "at least 12" in p.stderr
    p = run("user", "add", "alice", "--role", "admin", "--password-stdin", "--db", db, input="a long enough password\n")
    assert p.returncode == 0 and "reset" in p.stdout and "password:" not in p.stdout
    listed = [json.loads(line) for line in run("user", "list", "--db", db, "--format", "jsonl").stdout.splitlines()]
    assert [(u["name"], u["role"]) for u in listed] == [("alice", "admin")]
    assert run("user", "add", "bad name", "--role", "viewer", "--db", db).returncode == 2
    assert run("user", "token", "nobody", "--db", db).returncode == 2
