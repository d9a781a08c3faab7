"""Three `serve` workers share one queue and one scale-out store (ClickHouse + PostgreSQL):
2,000 announced objects, tampering calls by five principals spread over them, one worker
SIGKILLed mid-run. The final state must be exactly what one process on SQLite makes of the
same records: every event once, one alert per rule and group with the same events, and every
alert delivered once to the webhook. Any worker serves the dashboard with the same session
store.

On the replicated cluster (2 shards x 2 replicas, scripts/services.sh's start_cluster) one
ClickHouse server is SIGKILLed mid-ingest as well, and started again later: the replica the
workers' reads and writes of its shard go to. Both replicas of each shard must then hold the
same events, and the shards between them every event once."""

import gzip
import json
import os
import random
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone

import pytest

from harness import (BIN, Aws, Trailwatch, clickhouse_query, free_port, kill, log_file, log_key, scaleout_store,
                     stored_events, wait_for)
from test_alerts import Receiver

OBJECTS = 2000
WHEN = datetime(2024, 3, 5, 14, 15, tzinfo=timezone.utc)


def stop_logging(account, who, second):
    """A StopLogging call by role session `who` (the built-in tampering rules fire on it)."""
    return {
        "eventVersion": "1.09",
        "userIdentity": {"type": "AssumedRole", "principalId": f"AROAEXAMPLE:{who}",
                         "arn": f"arn:aws:sts::{account}:assumed-role/admin/{who}", "accountId": account,
                         "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "admin",
                                                              "arn": f"arn:aws:iam::{account}:role/admin"}}},
        "eventTime": WHEN.replace(second=second).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging", "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.99", "userAgent": "aws-cli/2.15.0",
        "requestParameters": {"name": f"arn:aws:cloudtrail:us-east-1:{account}:trail/main"},
        "responseElements": None, "requestID": str(uuid.uuid4()), "eventID": str(uuid.uuid4()), "readOnly": False,
        "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": account,
        "eventCategory": "Management",
    }


def alert_set(tw_or_args, run):
    """(rule, group) → (count, sorted event ids) for every alert of a store."""
    alerts = json.loads(run("alerts", "list", *tw_or_args, "--limit", 0, "--format", "json").stdout)
    out = {}
    for a in alerts:
        shown = json.loads(run("alerts", "show", a["id"], *tw_or_args, "--format", "json").stdout)
        key = (a["rule"], a["group"])
        assert key not in out, f"two alerts for {key}"
        out[key] = (a["count"], sorted(shown["events"]))
    return out


class ClusterNode:
    """Server `n` (1–4) of the cluster scripts/services.sh's start_cluster made."""

    def __init__(self, n):
        self.dir = os.path.join(os.environ["TRAILWATCH_TEST_CLUSTER_DIR"], f"clickhouse-{n}")
        self.url = "http://127.0.0.1:" + open(os.path.join(self.dir, "http")).read().strip()

    def kill(self):
        os.kill(int(open(os.path.join(self.dir, "pid")).read()), 9)

    def start(self):
        out = open(os.path.join(self.dir, "stdout.log"), "ab")
        p = subprocess.Popen(["clickhouse-server", f"--config-file={self.dir}/config.xml"], stdout=out, stderr=out,
                             start_new_session=True)
        # stop_services stops the server by this file.
        open(os.path.join(self.dir, "pid"), "w").write(str(p.pid))
        wait_for(lambda: self.answers(), timeout=120, every=0.5, what=f"{self.dir} to start")

    def sync(self, scale):
        """Waits until this replica has fetched every part its shard's log names."""
        errors = []

        def synced():
            try:
                clickhouse_query(scale, "SYSTEM SYNC REPLICA {db}.events_local", url=self.url)
                return True
            except urllib.error.HTTPError as e:
                errors.append(e.read().decode(errors="replace")[:500])
                return False
        try:
            wait_for(synced, timeout=120, every=1, what=f"{self.dir} to sync")
        except AssertionError:
            raise AssertionError(f"{self.dir} did not sync: {errors[-1]}") from None

    def answers(self):
        try:
            return urllib.request.urlopen(self.url + "/?query=SELECT%201", timeout=5).read().strip() == b"1"
        except OSError:
            return False


@pytest.mark.parametrize("deployment", ["server", "cluster"])
def test_three_workers_share_a_queue_and_a_kill_changes_nothing(endpoint, tmp_path, deployment):
    cluster = deployment == "cluster"
    scale = scaleout_store(cluster=cluster)
    if scale is None:
        pytest.skip("no scale-out servers configured (scripts/services.sh)")
    rng = random.Random(int(time.time()))
    aws = Aws(endpoint)
    bucket = aws.bucket("trail")
    queue, queue_arn, dlq = aws.queue("tw", max_receive=100)
    topic = aws.topic_to_queue("trail-topic", queue_arn)
    local = tmp_path / "objects"
    # Five principals call StopLogging three times each, in objects far apart.
    tampering = {obj: (f"intruder-{n % 5}", n) for n, obj in enumerate(rng.sample(range(OBJECTS), 15))}
    expected, keys = [], []
    for i in range(OBJECTS):
        body, ids = log_file(aws.account, "us-east-1", WHEN, rng.randint(5, 15))
        if i in tampering:
            who, n = tampering[i]
            doc = json.loads(gzip.decompress(body))
            doc["Records"].append(stop_logging(aws.account, who, n))
            ids.append(doc["Records"][-1]["eventID"])
            body = gzip.compress(json.dumps(doc).encode())
        key = log_key(aws.account, "us-east-1", WHEN)
        aws.s3.put_object(Bucket=bucket, Key=key, Body=body)
        (local / key).parent.mkdir(parents=True, exist_ok=True)
        (local / key).write_bytes(body)
        keys.append(key)
        expected += ids
    i = 0
    while i < len(keys):
        n = rng.randint(1, 3)
        aws.notify(topic, bucket, keys[i:i + n])
        i += n

    hook_port = free_port()
    hook = Receiver(hook_port)
    tw = Trailwatch(tmp_path, endpoint, [{"name": "prod", "account_id": aws.account, "bucket": bucket,
                                          "queue_url": queue, "regions": ["us-east-1"]}],
                    ingest={"visibility_timeout_secs": 6}, scaleout=scale)
    tw.config.write_text(tw.config.read_text() + f"""
[[sinks]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:{hook_port}/alerts"
min_level = "informational"
""")
    workers, webs = [], []
    started = time.time()
    print(f"{OBJECTS} objects, {len(expected)} events uploaded and announced")
    try:
        for n in range(3):
            web = f"127.0.0.1:{free_port()}"
            webs.append(web)
            env = {**tw.env, "TRAILWATCH_WEB_LISTEN": web}
            log = open(tmp_path / f"worker-{n}.log", "ab")
            workers.append(subprocess.Popen([str(BIN), "serve", "--config", str(tw.config), "--format", "json"],
                                            env=env, stdout=subprocess.DEVNULL, stderr=log))
        # Let all three work, then kill one in the middle of it.
        wait_for(lambda: stored_events(scale) > len(expected) // 10, timeout=180, what="a tenth of the events")
        kill(workers[0])
        if cluster:
            # Shard 2's first replica: under load_balancing=in_order every read and write
            # of shard 2 goes to it until it dies, then to server 4.
            down = ClusterNode(3)
            down.kill()
            at_kill = stored_events(scale)
            wait_for(lambda: stored_events(scale) > at_kill + len(expected) // 5, timeout=300, every=1,
                     what="ingest to go on with a replica down")
            down.start()
        wait_for(lambda: aws.queue_depth(queue) == 0, timeout=600, every=1, what="the queue to drain")
        wait_for(lambda: stored_events(scale) >= len(expected), timeout=120, every=1, what="every event")
        print(f"three workers (one killed) ingested everything in {time.time() - started:.1f}s")

        ids = tw.event_ids()
        assert len(ids) == len(set(ids)), "a search answered an event twice"
        assert sorted(ids) == sorted(expected)
        if cluster:
            # Each shard's replicas hold the same events (the restarted one caught up), and
            # the shards every event once between them.
            per_server = []
            for n in (1, 2, 3, 4):
                node = ClusterNode(n)
                node.sync(scale)
                per_server.append(sorted(clickhouse_query(
                    scale, "SELECT event_id FROM {db}.events_local FINAL FORMAT TSV", url=node.url).split()))
            assert per_server[0] == per_server[1] and per_server[2] == per_server[3]
            assert per_server[0] and per_server[2], "both shards hold events"
            assert sorted(per_server[0] + per_server[2]) == sorted(expected)
        assert aws.queue_depth(dlq) == 0

        # The same records through one process into SQLite: the reference alerts.
        ref = tmp_path / "ref.db"
        tw.run("ingest", "--local", local, "--db", ref)
        want = alert_set(["--db", ref], tw.run)
        got = alert_set(tw.store_args(), tw.run)
        assert want and got == want, (got, want)
        # What was compared: the tampering rules' alerts, one per intruder, three events each.
        assert {group.split(" @ ")[0].rsplit("/", 1)[1] for _, group in want} >= {f"intruder-{n}" for n in range(5)}
        per_rule = {}
        for (rule, _), (count, _) in want.items():
            per_rule[rule] = per_rule.get(rule, 0) + count
        assert any(total == 15 for total in per_rule.values()), per_rule

        # One delivery per alert, whichever worker delivered it.
        wait_for(lambda: len(hook.received) >= len(got), timeout=180, every=1, what="every alert delivered")
        time.sleep(3)
        delivered = [json.loads(body)["id"] for _, _, body in hook.received]
        assert sorted(delivered) == sorted(set(delivered)), "an alert was delivered twice"
        assert len(delivered) == len(got)

        # Any worker serves the dashboard; sessions and tokens live in PostgreSQL.
        token = tw.api_token()
        for web in webs[1:]:
            tw.web = "http://" + web
            status, body = tw.get("/api/v1/me", token)
            assert status == 200 and json.loads(body)["name"] == "admin", body
        status, body = tw.get("/api/v1/events?limit=5", token)
        assert status == 200 and len(json.loads(body)["events"]) == 5
    finally:
        for w in workers:
            if w.poll() is None:
                w.terminate()
        for w in workers:
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                kill(w)
        hook.stop()
    logs = [(tmp_path / f"worker-{n}.log").read_text() for n in range(3)]
    for log in logs:
        assert "panicked" not in log, log[-3000:]
    # The first start on an empty store made one admin, not three.
    assert sum("created dashboard user admin" in log for log in logs) == 1
