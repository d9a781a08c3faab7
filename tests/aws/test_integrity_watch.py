"""Continuous integrity validation in `serve`: a region whose digests and logs stop arriving
raises a silence alert that resolves when delivery resumes; a log file deleted after it was
verified is noticed by the re-verification sweep and alerted once, also across a restart.

The trail is simulated ending two hours ago (digests signed for recent hours); CloudTrail's
ListPublicKeys is answered by the stub in front of moto (see test_validate.py).
"""

import json
import signal
import time
from datetime import datetime, timedelta, timezone

from harness import Trailwatch, fault_proxy, inside_account, simulate, wait_for
from test_validate import list_public_keys_stub, upload_keys

HOUR = timedelta(hours=1)


def key_time(key):
    """The time in a CloudTrail log or digest key's file name."""
    stamp = key.rsplit("_", 2)[-2] if "CloudTrail-Digest" not in key else key.rsplit("_", 1)[-1][:-8]
    fmt = "%Y%m%dT%H%M%SZ" if "CloudTrail-Digest" in key else "%Y%m%dT%H%MZ"
    return datetime.strptime(stamp, fmt).replace(tzinfo=timezone.utc)


def alerts(tw):
    return json.loads(tw.run("alerts", "list", "--db", tw.db, "--format", "json").stdout)


def half_delivered_trail(endpoint, tmp_path, events):
    """A one-region trail simulated to end two hours ago, in its account's bucket up to three
    and a half hours ago (digests and the logs they list); returns what the rest needs."""
    now = datetime.now(timezone.utc)
    # Five hours ending two hours ago: the simulator digests every log, so its last digest
    # ends about an hour ago.
    start = now.replace(minute=0, second=0, microsecond=0) - 7 * HOUR
    out = tmp_path / "bucket"
    manifest = simulate(out, "--accounts", "1", "--regions", "us-east-1", "--hours", "5", "--events", events,
                        "--digests", "--start", start.strftime("%Y-%m-%dT%H:%M:%SZ"))
    account = manifest["accounts"][0]["id"]
    role, inside = inside_account(endpoint, account)
    bucket = inside.bucket(manifest["digests"]["bucket"])
    # The newest log delivered later is 2-3 h old and the newest digest 1-3 h old: within
    # the tests' 195 min grace, while what is delivered early is older than that.
    digests = sorted(manifest["digests"]["digests"], key=key_time)
    early = [d for d in digests if key_time(d) <= now - timedelta(hours=3, minutes=30)]
    assert early and len(early) < len(digests)
    cutoff = key_time(early[-1])
    early_logs = [f["key"] for f in manifest["files"] if f["kind"] == "log" and key_time(f["key"]) < cutoff]
    upload_keys(inside, bucket, out, early + early_logs)
    late = [d for d in digests if d not in early] + \
        [f["key"] for f in manifest["files"] if f["kind"] == "log" and f["key"] not in early_logs]
    return out, account, role, inside, bucket, early_logs, late


def test_serve_validates_continuously_alerts_on_silence_and_on_late_deletion(endpoint, tmp_path):
    out, account, role, inside, bucket, early_logs, late = half_delivered_trail(endpoint, tmp_path, 1500)

    sections = {"integrity": {"interval": "2s", "poll": "1s", "reverify_interval": "4s", "lookback": "12h",
                              "digest_grace": "195m", "log_grace": "195m"}}
    with fault_proxy(endpoint, list_public_keys_stub(out / "list-public-keys.json")) as proxy:
        tw = Trailwatch(tmp_path, proxy.endpoint, [{"name": "prod", "account_id": account, "role_arn": role,
                                                    "external_id": "ext-1", "bucket": bucket}], sections=sections)
        serve = tw.start_serve()
        try:
            silent = wait_for(lambda: [a for a in alerts(tw) if a["rule"] == "trailwatch-delivery-silence"]
                              if tw.db.exists() else None, timeout=60, what="silence alerts")
            wait_for(lambda: len([a for a in alerts(tw) if a["rule"] == "trailwatch-delivery-silence"]) == 2,
                     timeout=30, what="logs and digests both silent")
            silent = [a for a in alerts(tw) if a["rule"] == "trailwatch-delivery-silence"]
            assert {a["title"] for a in silent} == {"CloudTrail logs stopped arriving", "CloudTrail digests stopped arriving"}
            assert all(a["state"] == "open" and a["level"] == "high" and a["region"] == "us-east-1" for a in silent)
            # What was delivered is intact.
            assert not [a for a in alerts(tw) if a["rule"].startswith("trailwatch-integrity-")]

            # Delivery resumes: the rest of the trail arrives.
            upload_keys(inside, bucket, out, late)
            wait_for(lambda: all(a["state"] == "resolved" for a in alerts(tw)
                                 if a["rule"] == "trailwatch-delivery-silence"), timeout=60, what="silence resolved")
            assert not [a for a in alerts(tw) if a["rule"].startswith("trailwatch-integrity-")]

            # A log file deleted after it was verified: the sweep notices.
            victim = early_logs[len(early_logs) // 2]
            inside.s3.delete_object(Bucket=bucket, Key=victim)
            missing = wait_for(lambda: [a for a in alerts(tw) if a["rule"] == "trailwatch-integrity-log-missing"],
                               timeout=60, what="LOG_MISSING alert")
            assert missing[0]["count"] == 1 and missing[0]["level"] == "high" and victim in missing[0]["principal"]
        finally:
            serve.send_signal(signal.SIGTERM)
            assert serve.wait(60) == 0

        # Restarted, the same finding is not alerted again (the state persisted).
        serve = tw.start_serve("serve2.log")
        try:
            runs = proxy.count("cloudtrail", "ListPublicKeys")
            wait_for(lambda: proxy.count("cloudtrail", "ListPublicKeys") >= runs + 2, timeout=60, what="two more runs")
            again = [a for a in alerts(tw) if a["rule"] == "trailwatch-integrity-log-missing"]
            assert len(again) == 1 and again[0]["count"] == 1, again
        finally:
            serve.send_signal(signal.SIGTERM)
            assert serve.wait(60) == 0


def test_an_announced_digest_triggers_validation_at_once(endpoint, tmp_path):
    """With hourly runs, a digest announced through the account's queue (an S3 event
    notification, the only way digests are announced) makes `serve` validate at once."""
    out, account, role, inside, bucket, _, late = half_delivered_trail(endpoint, tmp_path, 800)
    queue_url, _, _ = inside.queue("trail-events")

    sections = {"integrity": {"interval": "1h", "reverify_interval": "1h", "poll": "1s", "lookback": "12h",
                              "digest_grace": "195m", "log_grace": "195m"}}
    with fault_proxy(endpoint, list_public_keys_stub(out / "list-public-keys.json")) as proxy:
        tw = Trailwatch(tmp_path, proxy.endpoint, [{"name": "prod", "account_id": account, "role_arn": role,
                                                    "external_id": "ext-1", "bucket": bucket,
                                                    "queue_url": queue_url}], sections=sections)
        serve = tw.start_serve()
        try:
            silence = lambda: [a for a in alerts(tw) if a["rule"] == "trailwatch-delivery-silence"]  # noqa: E731
            wait_for(lambda: tw.db.exists() and len(silence()) == 2, timeout=60, what="silence alerts")
            upload_keys(inside, bucket, out, late)
            # Uploaded but not announced: the next run is an hour away.
            runs = proxy.count("cloudtrail", "ListPublicKeys")
            time.sleep(4)
            assert proxy.count("cloudtrail", "ListPublicKeys") == runs
            assert all(a["state"] == "open" for a in silence())
            # CloudTrail's SNS topic does not announce digests; an S3 event notification does.
            event = {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
                                  "eventName": "ObjectCreated:Put",
                                  "s3": {"bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                                         "object": {"key": [k for k in late if "Digest" in k][-1],
                                                    "size": 700}}}]}
            inside.sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(event))
            wait_for(lambda: all(a["state"] == "resolved" for a in silence()), timeout=30,
                     what="the announced digest validated and delivery seen resuming")
            assert proxy.count("cloudtrail", "ListPublicKeys") == runs + 1
        finally:
            serve.send_signal(signal.SIGTERM)
            assert serve.wait(60) == 0
