"""SNS HTTPS push: a validly signed message is accepted (SignatureVersion 2, and 1 where
`[sns] accept_sha1` allows it) and its objects ingested; an altered body, a wrong signature, a
certificate from a non-SNS host or over http, a replay older than an hour are rejected;
subscriptions are confirmed only for configured topics, and a message for any other topic
makes no request at all.

Messages are signed with a locally generated key; its certificate is served over HTTPS by a
local server that the configuration trusts (`sns.test_cert_hosts` / `sns.test_ca_file`:
the host check is relaxed for tests only)."""

import base64
import datetime
import json
import ssl
import threading
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from harness import Aws, Trailwatch, wait_for

SIGNED_KEYS = {
    "Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
    "SubscriptionConfirmation": ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"],
}


def make_cert(tmp):
    """A CA (trusted through sns.test_ca_file) and, signed by it, the certificate for localhost
    whose key signs the test messages (SNS uses one key for both, too)."""
    now = datetime.datetime.now(datetime.timezone.utc)

    def build(subject, issuer, public_key, signer, ca):
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
             .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
             .not_valid_after(now + datetime.timedelta(days=2))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        return b.sign(signer, hashes.SHA256())

    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "trailwatch test CA")])
    ca = build(ca_name, ca_name, ca_key.public_key(), ca_key, True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = build(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]), ca_name, key.public_key(), ca_key,
                 False)
    pem = leaf.public_bytes(serialization.Encoding.PEM)
    (tmp / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp / "cert.pem").write_bytes(pem)
    (tmp / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    return key, pem


class FakeSnsHost:
    """HTTPS on localhost: serves the signing certificate and records subscription confirmations."""

    def __init__(self, tmp, pem):
        self.confirmed = []
        self.cert_fetches = 0
        host = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                if self.path.startswith("/cert.pem"):
                    host.cert_fetches += 1
                    body = pem
                else:
                    host.confirmed.append(self.path)
                    body = b"<ConfirmSubscriptionResponse/>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.base = f"https://localhost:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def sign(msg, key, version="2"):
    keys = SIGNED_KEYS[msg["Type"]]
    text = "".join(f"{k}\n{msg[k]}\n" for k in keys if k in msg)
    algo = hashes.SHA1() if version == "1" else hashes.SHA256()
    msg["SignatureVersion"] = version
    msg["Signature"] = base64.b64encode(key.sign(text.encode(), padding.PKCS1v15(), algo)).decode()
    return msg


def post(url, body):
    req = urllib.request.Request(url + "/sns", data=body.encode(), method="POST",
                                 headers={"Content-Type": "text/plain; charset=UTF-8"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_sns_push_verifies_signatures_and_confirms_only_configured_topics(endpoint, tmp_path):
    key, pem = make_cert(tmp_path)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    host = FakeSnsHost(tmp_path, pem)
    aws = Aws(endpoint)
    bucket = aws.bucket("trail")
    topic = f"arn:aws:sns:us-east-1:{aws.account}:trail-topic"
    tw = Trailwatch(tmp_path, endpoint, [{"name": "prod", "account_id": aws.account, "bucket": bucket,
                                           "topic_arn": topic, "regions": ["us-east-1"]}],
                    sns={"test_cert_hosts": ["localhost"], "test_ca_file": str(tmp_path / "ca.pem"),
                         "accept_sha1": True})
    serve = tw.start_serve()
    try:
        wait_for(lambda: _up(tw.web), what="serve's web listener")

        def envelope(type_="Notification", topic_arn=topic, message=None, age=datetime.timedelta(seconds=5), **extra):
            sent = datetime.datetime.now(datetime.timezone.utc) - age
            m = {"Type": type_, "MessageId": str(uuid.uuid4()), "TopicArn": topic_arn,
                 "Timestamp": sent.strftime("%Y-%m-%dT%H:%M:%S.") + f"{sent.microsecond // 1000:03d}Z",
                 "SigningCertURL": host.base + "/cert.pem", **extra}
            m["Message"] = message
            return m

        # Subscription handshake: confirmed for the configured topic only.
        confirm = envelope("SubscriptionConfirmation", message="You have chosen to subscribe…", Token="tok-1",
                           SubscribeURL=host.base + "/confirm?Action=ConfirmSubscription&Token=tok-1")
        assert post(tw.web, json.dumps(sign(confirm, key)))[0] == 200
        assert host.confirmed == ["/confirm?Action=ConfirmSubscription&Token=tok-1"]
        stranger = envelope("SubscriptionConfirmation", topic_arn=f"arn:aws:sns:us-east-1:{aws.account}:other",
                            message="…", Token="tok-2", SubscribeURL=host.base + "/confirm?Token=tok-2")
        fetches = host.cert_fetches
        # An unknown topic (with another certificate URL, so no cache could answer) is
        # refused before anything is fetched.
        status, text = post(tw.web, json.dumps(sign(dict(stranger, SigningCertURL=host.base + "/cert.pem?x=1"), key)))
        assert status == 403 and "not configured" in text and len(host.confirmed) == 1
        assert host.cert_fetches == fetches, "no certificate was fetched for an unknown topic"

        expected = []
        for version in ("1", "2"):
            k, ids = aws.put_log(bucket, records=9)
            expected += ids
            msg = envelope(message=json.dumps({"s3Bucket": bucket, "s3ObjectKey": [k]}), Subject="[AWS Notification]")
            status, text = post(tw.web, json.dumps(sign(msg, key, version)))
            # Answered once the objects are committed.
            assert status == 200, text
            assert sorted(tw.event_ids()) == sorted(expected)

        k, ids = aws.put_log(bucket, records=4)
        good = sign(envelope(message=json.dumps({"s3Bucket": bucket, "s3ObjectKey": [k]})), key)
        altered = dict(good, Message=json.dumps({"s3Bucket": bucket, "s3ObjectKey": [k, k + "x"]}))
        forged = sign(dict(good), other_key)
        evil_host = sign(dict(good, SigningCertURL="https://evil.example.com/cert.pem"), key)
        plain_http = sign(dict(good, SigningCertURL=host.base.replace("https", "http") + "/cert.pem"), key)
        lookalike = sign(dict(good, SigningCertURL="https://sns.us-east-1.amazonaws.com.evil.com/cert.pem"), key)
        replay = sign(envelope(message=json.dumps({"s3Bucket": bucket, "s3ObjectKey": [k]}),
                               age=datetime.timedelta(minutes=61)), key)
        for name, msg in (("altered", altered), ("wrong signature", forged), ("non-SNS host", evil_host),
                          ("http cert URL", plain_http), ("look-alike host", lookalike), ("replay", replay)):
            status, text = post(tw.web, json.dumps(msg))
            assert status == 403, (name, status, text)
        assert post(tw.web, "not json")[0] == 400
        assert sorted(tw.event_ids()) == sorted(expected)  # nothing of the rejected ones
        status, _ = post(tw.web, json.dumps(good))
        assert status == 200
        assert sorted(tw.event_ids()) == sorted(expected + ids)
    finally:
        serve.terminate()
        assert serve.wait(60) == 0

    # Without [sns] accept_sha1, SignatureVersion 1 is refused with the fix in the answer.
    text = tw.config.read_text().replace("accept_sha1 = true", "accept_sha1 = false")
    tw.config.write_text(text)
    serve = tw.start_serve()
    try:
        wait_for(lambda: _up(tw.web), what="serve's web listener again")
        k, ids = aws.put_log(bucket, records=3)
        body = json.dumps({"s3Bucket": bucket, "s3ObjectKey": [k]})
        status, text = post(tw.web, json.dumps(sign(envelope(message=body), key, "1")))
        assert status == 403 and "SignatureVersion" in text, (status, text)
        assert post(tw.web, json.dumps(sign(envelope(message=body), key, "2")))[0] == 200
    finally:
        serve.terminate()
        assert serve.wait(60) == 0


def _up(base):
    try:
        return urllib.request.urlopen(base + "/healthz", timeout=1).status == 200
    except OSError:
        return False
