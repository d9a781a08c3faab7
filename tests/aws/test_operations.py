"""Operating a running `serve`: SIGHUP reloads rules and sinks without dropping work, every
stored event is forwarded to a file sink in arrival order, logs are JSON lines with account,
region and object fields, and retention runs on its interval and keeps alerted events."""

import gzip
import json
import os
import pathlib
import signal
import uuid
from datetime import datetime, timedelta, timezone

from harness import Aws, Trailwatch, free_port, log_key, log_file, wait_for
from test_alerts import Receiver, stop_logging

RULE = """title: {title}
id: {id}
status: stable
level: high
logsource:
  product: aws
  service: cloudtrail
detection:
  selection:
    eventName: {name}
  condition: selection
"""


def write_rule(directory, name, event_name):
    directory.mkdir(parents=True, exist_ok=True)
    rule_id = str(uuid.uuid4())
    (directory / "rule.yml").write_text(RULE.format(title=f"Saw {event_name}", id=rule_id, name=event_name))
    return rule_id


def stored(tw):
    p = tw.run("search", "--db", tw.db, "--limit", "0", "--format", "tsv", check=False)
    return [line.split("\t")[1] for line in p.stdout.splitlines()] if p.returncode == 0 else []


def test_sighup_reloads_rules_and_sinks_while_forwarding_everything(endpoint, tmp_path):
    aws = Aws(endpoint)
    bucket = aws.bucket("trail")
    queue, queue_arn, dlq = aws.queue("tw")
    topic = aws.topic_to_queue("trail-topic", queue_arn)
    rules_before = write_rule(tmp_path / "rules-a", "a", "NoSuchCall")
    forward_file = tmp_path / "forwarded.jsonl"
    tw = Trailwatch(tmp_path, endpoint, [{"name": "prod", "account_id": aws.account, "bucket": bucket,
                                          "queue_url": queue, "regions": ["us-east-1"]}],
                    sections={"detection": {"builtin": False, "rules": [str(tmp_path / "rules-a")]},
                              "integrity": {"enabled": False}})
    base = tw.config.read_text()
    forward = f'\n[[forward]]\nname = "archive"\nkind = "file"\npath = "{forward_file}"\nstart = "beginning"\n'
    tw.config.write_text(base + forward)
    tw.env["TRAILWATCH_LOG_FORMAT"] = "json"
    tw.env["TRAILWATCH_LOG"] = "info,aws=debug"
    receiver = Receiver(free_port())
    serve = tw.start_serve()
    try:
        when = datetime.now(timezone.utc) - timedelta(minutes=5)

        def announce(records):
            key = log_key(aws.account, "us-east-1", when)
            aws.s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(json.dumps({"Records": records}).encode()))
            aws.notify(topic, bucket, [key])
            return [r["eventID"] for r in records]

        first = announce([stop_logging(aws.account, when)])
        body, more = log_file(aws.account, "us-east-1", when, 20)
        key = log_key(aws.account, "us-east-1", when)
        aws.s3.put_object(Bucket=bucket, Key=key, Body=body)
        aws.notify(topic, bucket, [key])
        wait_for(lambda: len(stored(tw)) == 21, what="the first 21 events stored")
        # A long-running serve keeps its memory in small pages (main.rs explains why); it has been
        # running a while by now.
        status = pathlib.Path(f"/proc/{serve.pid}/status").read_text()
        if "THP_enabled:" in status:
            assert "THP_enabled:\t0" in status, "serve runs with transparent huge pages"
        alerts = json.loads(tw.run("alerts", "list", "--db", tw.db, "--format", "json").stdout)
        assert alerts == [], "the first rule set does not match StopLogging"

        # New rules and a webhook sink, then SIGHUP while the queue keeps flowing.
        rules_after = write_rule(tmp_path / "rules-b", "b", "StopLogging")
        sink = (f'\n[[sinks]]\nname = "hook"\nkind = "webhook"\n'
                f'url = "http://127.0.0.1:{receiver.server.server_port}/hook"\n')
        text = base.replace(str(tmp_path / "rules-a"), str(tmp_path / "rules-b")) + forward + sink
        tw.config.write_text(text)
        serve.send_signal(signal.SIGHUP)
        log = tmp_path / "serve.log"

        def log_lines():
            return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]

        wait_for(lambda: any(r.get("message") == "configuration reloaded" for r in log_lines()), what="the reload")
        reloaded = next(r for r in log_lines() if r.get("message") == "configuration reloaded")
        assert (reloaded["rules"], reloaded["sinks"], reloaded["rule_errors"]) == (1, 1, 0), reloaded

        second = announce([stop_logging(aws.account, when + timedelta(seconds=30), ip="203.0.113.66")])
        wait_for(lambda: len(stored(tw)) == 22, what="the event after the reload")
        alerts = json.loads(tw.run("alerts", "list", "--db", tw.db, "--format", "json").stdout)
        assert [a["rule"] for a in alerts] == [rules_after], alerts
        shown = json.loads(tw.run("alerts", "show", alerts[0]["id"], "--db", tw.db, "--format", "json").stdout)
        assert shown["events"] == second, "only the StopLogging seen after the reload"
        wait_for(lambda: any(p == "/hook" for p, _, _ in receiver.received), what="the new sink's delivery")
        assert rules_before not in {a["rule"] for a in alerts}

        # An invalid configuration is refused and the running one stays.
        tw.config.write_text(text + "\n[retention]\ndays = 0\n")
        serve.send_signal(signal.SIGHUP)
        wait_for(lambda: any(r.get("message", "").startswith("reload failed") for r in log_lines()),
                 what="the refused reload")
        assert serve.poll() is None

        # Every stored event reached the file sink, once, in arrival order.
        def forwarded():
            if not forward_file.exists():
                return []
            return [json.loads(line)["eventID"] for line in forward_file.read_text().splitlines()]
        wait_for(lambda: len(forwarded()) == 22, what="every event forwarded")
        assert sorted(forwarded()) == sorted(first + more + second)
        assert forwarded()[-1] == second[0]
        wait_for(lambda: aws.queue_depth(queue) == 0, what="the queue drained")
        assert aws.queue_depth(dlq) == 0

        # JSON logs: every line is an object; object-level lines carry account, region, key.
        lines = log_lines()
        assert all(isinstance(r, dict) and "level" in r and "timestamp" in r for r in lines)
        committed = [r for r in lines if r.get("message") == "object committed"]
        assert committed and all(r["account"] == "prod" and r["region"] == "us-east-1" and r["key"].endswith(".json.gz")
                                 for r in committed), committed[:3]
        text_lines = [l for l in log.read_text().splitlines() if l.strip() and not l.startswith("{")]
        assert all(l.startswith("trailwatch") for l in text_lines), text_lines[:5]
    finally:
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=60) == 0
        receiver.stop()
