"""Alert delivery end to end: `serve` ingests a trail file with a StopLogging call; the
built-in rules raise alerts; they are delivered to a webhook (HMAC-signed), Slack, e-mail
through a real SMTP server that requires STARTTLS (aiosmtpd, with a CA made here), and an SNS
topic in moto. The webhook receiver is down during the first run: its deliveries stay in the
outbox, and after trailwatch restarts and the receiver is back, every alert arrives."""

import datetime as dt
import gzip
import hashlib
import hmac
import json
import ssl
import threading
import uuid
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness import Aws, Trailwatch, free_port, log_key, wait_for

SECRET = "webhook-secret"


def stop_logging(account, when, ip="198.51.100.99"):
    return {
        "eventVersion": "1.09",
        "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLE:mallory",
                         "arn": f"arn:aws:sts::{account}:assumed-role/admin/<script>mallory</script>",
                         "accountId": account, "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "admin",
                                                                                    "arn": f"arn:aws:iam::{account}:role/admin"}}},
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "eventSource": "cloudtrail.amazonaws.com",
        "eventName": "StopLogging", "awsRegion": "us-east-1", "sourceIPAddress": ip, "userAgent": "aws-cli/2.15.0",
        "requestParameters": {"name": f"arn:aws:cloudtrail:us-east-1:{account}:trail/main"}, "responseElements": None,
        "requestID": str(uuid.uuid4()), "eventID": str(uuid.uuid4()), "readOnly": False, "eventType": "AwsApiCall",
        "managementEvent": True, "recipientAccountId": account, "eventCategory": "Management",
    }


class Receiver:
    """An HTTP server that records each POST (path, headers, body)."""

    def __init__(self, port):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def tls_files(tmp):
    """A CA and a certificate for 127.0.0.1 signed by it (PEM files)."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "trailwatch test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (tmp / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp / "smtp.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "smtp.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
    return tmp / "ca.pem", tmp / "smtp.pem", tmp / "smtp.key"


class Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        # Only accepted after STARTTLS (require_starttls): record that it was encrypted.
        self.messages.append((session.ssl is not None, envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


def test_alerts_reach_every_sink_and_survive_a_receiver_outage_and_a_restart(endpoint, tmp_path):
    aws = Aws(endpoint)
    bucket = aws.bucket("trail")
    queue, queue_arn, _ = aws.queue("tw")
    topic = aws.topic_to_queue("trail-topic", queue_arn)
    # The alert topic, read back through a queue subscribed to it.
    alert_queue, alert_queue_arn, _ = aws.queue("alerts-copy")
    alert_topic = aws.topic_to_queue("alerts", alert_queue_arn, raw=True)

    ca, cert, key = tls_files(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    mailbox = Mailbox()
    smtp_port = free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port, tls_context=context, require_starttls=True)
    smtp.start()
    hook_port, slack_port = free_port(), free_port()
    slack = Receiver(slack_port)
    try:
        tw = Trailwatch(tmp_path, endpoint, [{"name": "prod", "account_id": aws.account, "bucket": bucket,
                                              "queue_url": queue, "regions": ["us-east-1"]}])
        sinks = f"""
[detection]
public_url = "https://trailwatch.example/"

[[sinks]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:{hook_port}/alerts"
min_level = "high"

[[sinks]]
name = "slack"
kind = "slack"
url = "http://127.0.0.1:{slack_port}/services/T000/B000/XXXX"
min_level = "critical"

[[sinks]]
name = "mail"
kind = "email"
smtp_host = "127.0.0.1"
smtp_port = {smtp_port}
smtp_ca_file = "{ca}"
from = "trailwatch@example.com"
to = ["secops@example.com"]
min_level = "critical"

[[sinks]]
name = "sns"
kind = "sns"
topic_arn = "{alert_topic}"
min_level = "critical"
"""
        tw.config.write_text(tw.config.read_text() + sinks)
        tw.env["TRAILWATCH_SINKS_HOOK_SECRET"] = SECRET  # the secret stays out of the file

        when = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        rec = stop_logging(aws.account, when)
        key_name = log_key(aws.account, "us-east-1", when)
        aws.s3.put_object(Bucket=bucket, Key=key_name, Body=gzip.compress(json.dumps({"Records": [rec]}).encode()))
        aws.notify(topic, bucket, [key_name])

        # Run 1: the webhook receiver is down.
        tw.serve_until_idle(idle=4)
        alerts = json.loads(tw.run("alerts", "list", "--db", tw.db, "--format", "json").stdout)
        titles = {a["title"] for a in alerts}
        assert "CloudTrail logging stopped" in titles, titles
        assert "CIS AWS 4.5: CloudTrail configuration changed" in titles, titles
        stopped = next(a for a in alerts if a["title"] == "CloudTrail logging stopped")
        assert stopped["level"] == "critical" and stopped["source_ip"] == "198.51.100.99"
        shown = json.loads(tw.run("alerts", "show", stopped["id"], "--db", tw.db, "--format", "json").stdout)
        by_sink = {d["sink"]: d for d in shown["deliveries"]}
        assert by_sink["hook"]["delivered_at"] is None and by_sink["hook"]["attempts"] >= 1, by_sink
        assert by_sink["hook"]["last_error"], by_sink
        for sink in ("slack", "mail", "sns"):
            assert by_sink[sink]["delivered_at"], by_sink

        # Slack: a readable line — who, what, where, from which IP — with attacker text escaped.
        assert len(slack.received) == 1, slack.received
        text = json.loads(slack.received[0][2])["text"]
        assert "StopLogging" in text and "198.51.100.99" in text and aws.account in text and "us-east-1" in text
        assert "&lt;script&gt;mallory" in text and "<script>" not in text
        assert f"https://trailwatch.example/alerts/{stopped['id']}" in text

        # E-mail, over STARTTLS verified against our CA.
        assert len(mailbox.messages) == 1
        encrypted, rcpts, msg = mailbox.messages[0]
        assert encrypted and rcpts == ["secops@example.com"]
        assert "CloudTrail logging stopped" in msg["Subject"]
        body = msg.get_payload(decode=True).decode()
        assert "198.51.100.99" in body and "StopLogging" in body and rec["eventID"] in body

        # SNS: the JSON payload, published to the topic (raw delivery to the queue).
        got = aws.sqs.receive_message(QueueUrl=alert_queue, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", [])
        assert len(got) == 1
        payload = json.loads(got[0]["Body"])
        assert payload["title"] == "CloudTrail logging stopped" and payload["event_ids"] == [rec["eventID"]]

        # Run 2: trailwatch restarts, the receiver is back: the queued deliveries arrive.
        hook = Receiver(hook_port)
        try:
            def delivered():
                tw.serve_until_idle(idle=8)
                return len(hook.received) >= 2 and hook.received
            received = wait_for(delivered, timeout=120, what="webhook deliveries after restart")
        finally:
            hook.stop()
        high = [a for a in alerts if a["level"] in ("high", "critical")]
        assert len(received) == len(high), (received, high)
        for path, headers, body in received:
            assert path == "/alerts"
            expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            assert headers["x-trailwatch-signature"] == expected
        assert sorted(json.loads(b)["id"] for _, _, b in received) == sorted(a["id"] for a in high)
        # Nothing delivered twice to the sinks that had succeeded.
        assert len(slack.received) == 1 and len(mailbox.messages) == 1
        assert tw.run("alerts", "ack", stopped["id"], "--comment", "rotating keys", "--db", tw.db).returncode == 0
        again = json.loads(tw.run("alerts", "list", "--db", tw.db, "--state", "acknowledged", "--format", "json").stdout)
        assert [a["id"] for a in again] == [stopped["id"]] and again[0]["comment"] == "rotating keys"
    finally:
        smtp.stop()
        slack.stop()
