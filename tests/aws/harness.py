"""Test harness for trailwatch's AWS sources: a moto server, boto3 helpers that play
CloudTrail's part (upload log files, publish the notifications it would), the trailwatch
binary, and a fault-injecting HTTP proxy.

moto never writes trail files or sends CloudTrail's notifications, so the tests do: objects
are real gzip'd CloudTrail log files put in S3, notifications go through SNS to SQS (or are
sent as S3 / EventBridge would send them).
"""

import contextlib
import gzip
import http.client
import json
import os
import pathlib
import random
import signal
import socket
import string
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
from botocore.config import Config

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("TRAILWATCH_BIN", ROOT / "target" / "debug" / "trailwatch"))
DEFAULT_ACCOUNT = "123456789012"  # moto's account for plain credentials
REGION = "us-east-1"
CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    """moto in server mode on a free loopback port."""

    def __init__(self, log_path):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("moto server did not start")

    def reset(self):
        urllib.request.urlopen(urllib.request.Request(self.endpoint + "/moto-api/reset", method="POST"))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


class Aws:
    """boto3 clients of one account against the moto endpoint."""

    def __init__(self, endpoint, credentials=None):
        self.endpoint = endpoint
        creds = credentials or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        self.creds = creds
        kw = dict(endpoint_url=endpoint, region_name=REGION, **creds)
        self.s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}), **kw)
        self.sqs = boto3.client("sqs", **kw)
        self.sns = boto3.client("sns", **kw)
        self.sts = boto3.client("sts", **kw)
        self.iam = boto3.client("iam", **kw)
        self.events = boto3.client("events", **kw)
        self.account = self.sts.get_caller_identity()["Account"]

    def assume(self, role_arn):
        """The same helpers, acting inside the role's account."""
        c = self.sts.assume_role(RoleArn=role_arn, RoleSessionName="test", ExternalId="setup")["Credentials"]
        return Aws(self.endpoint, {"aws_access_key_id": c["AccessKeyId"], "aws_secret_access_key": c["SecretAccessKey"],
                                   "aws_session_token": c["SessionToken"]})

    def role(self, name="trailwatch-read"):
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
                                                          "Action": "sts:AssumeRole"}]}
        return self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]

    def bucket(self, name):
        self.s3.create_bucket(Bucket=name)
        return name

    def queue(self, name, max_receive=3, visibility=30):
        dlq = self.sqs.create_queue(QueueName=name + "-dlq")["QueueUrl"]
        dlq_arn = self.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = self.sqs.create_queue(QueueName=name, Attributes={
            "VisibilityTimeout": str(visibility),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive)}),
        })["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, arn, dlq

    def topic_to_queue(self, name, queue_arn, raw=False):
        topic = self.sns.create_topic(Name=name)["TopicArn"]
        attrs = {"RawMessageDelivery": "true"} if raw else {}
        self.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes=attrs)
        return topic

    def queue_depth(self, url):
        a = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])

    def put_log(self, bucket, account=None, region=REGION, when=None, records=3, org=None, prefix=None, suffix=None):
        """Uploads one CloudTrail log file; returns (key, [eventID, ...])."""
        account = account or self.account
        when = when or datetime(2024, 3, 5, 14, 15, tzinfo=timezone.utc)
        body, ids = log_file(account, region, when, records)
        key = log_key(account, region, when, org=org, prefix=prefix, suffix=suffix)
        self.s3.put_object(Bucket=bucket, Key=key, Body=body)
        return key, ids

    def announced_logs(self, files, records, per_message=1, rng=random):
        """A trail bucket, queue (+DLQ) and topic, and `files` log files announced on it, 1 to
        `per_message` keys per notification; returns (bucket, queue, dlq, [eventID, ...]).
        `records` is a count or a function of rng giving one."""
        bucket = self.bucket("trail")
        queue, queue_arn, dlq = self.queue("tw", max_receive=100)
        topic = self.topic_to_queue("trail-topic", queue_arn)
        expected, keys = [], []
        for _ in range(files):
            key, ids = self.put_log(bucket, records=records(rng) if callable(records) else records)
            keys.append(key)
            expected += ids
        i = 0
        while i < len(keys):
            n = rng.randint(1, per_message)
            self.notify(topic, bucket, keys[i:i + n])
            i += n
        return bucket, queue, dlq, expected

    def notify(self, topic, bucket, keys):
        """What CloudTrail publishes after delivering files."""
        self.sns.publish(TopicArn=topic, Message=json.dumps({"s3Bucket": bucket, "s3ObjectKey": list(keys)}))


def log_key(account, region, when, org=None, prefix=None, suffix=None):
    suffix = suffix or "".join(random.choices(string.ascii_letters + string.digits, k=16))
    stamp = when.strftime("%Y%m%dT%H%MZ")
    parts = [prefix] if prefix else []
    parts += ["AWSLogs"] + ([org] if org else []) + [account, "CloudTrail", region, when.strftime("%Y/%m/%d"),
                                                     f"{account}_CloudTrail_{region}_{stamp}_{suffix}.json.gz"]
    return "/".join(parts)


def record(account, region, when, i):
    t = (when - timedelta(seconds=i % 240)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": f"arn:aws:iam::{account}:user/alice",
                         "accountId": account, "accessKeyId": "AKIAEXAMPLE", "userName": "alice"},
        "eventTime": t, "eventSource": "ec2.amazonaws.com", "eventName": random.choice(
            ["DescribeInstances", "StopInstances", "RunInstances", "DescribeVolumes"]),
        "awsRegion": region, "sourceIPAddress": "203.0.113.7", "userAgent": "aws-cli/2.15.0",
        "requestParameters": {"instancesSet": {"items": [{"instanceId": f"i-{i:017x}"}]}}, "responseElements": None,
        "requestID": str(uuid.uuid4()), "eventID": str(uuid.uuid4()), "readOnly": False, "eventType": "AwsApiCall",
        "managementEvent": True, "recipientAccountId": account, "eventCategory": "Management",
    }


def log_file(account, region, when, n):
    recs = [record(account, region, when, i) for i in range(n)]
    return gzip.compress(json.dumps({"Records": recs}).encode()), [r["eventID"] for r in recs]


def simulate(out, *args):
    """`trailwatch simulate --out OUT ARGS...` (the classic profile unless ARGS name one:
    the tests know its fixed cast by name); returns its manifest."""
    profile = [] if "--profile" in map(str, args) else ["--profile", "classic"]
    subprocess.run([str(BIN), "simulate", "--out", str(out), *profile, *map(str, args)], check=True, capture_output=True)
    return json.loads((pathlib.Path(out) / "manifest.json").read_text())


def inside_account(endpoint, account, external_id="ext-1"):
    """The read role's ARN in `account` and boto3 helpers acting inside that account (moto
    lets any role be assumed, and the assumed role's calls land in its account)."""
    role = f"arn:aws:iam::{account}:role/trailwatch-read"
    c = Aws(endpoint).sts.assume_role(RoleArn=role, RoleSessionName="setup", ExternalId=external_id)["Credentials"]
    inside = Aws(endpoint, {"aws_access_key_id": c["AccessKeyId"], "aws_secret_access_key": c["SecretAccessKey"],
                            "aws_session_token": c["SessionToken"]})
    assert inside.account == account
    return role, inside


class Trailwatch:
    """A configuration file and store for one test, and ways to run the binary on them."""

    def __init__(self, tmp, endpoint, accounts, ingest=None, sns=None, sections=None, scaleout=None):
        """`scaleout`: a (clickhouse_url, postgres_url) pair from `scaleout_store()` for the
        scale-out store instead of an SQLite file."""
        self.tmp = pathlib.Path(tmp)
        self.db = self.tmp / "tw.db"
        self.scaleout = scaleout
        self.config = self.tmp / "trailwatch.toml"
        self.web = f"http://127.0.0.1:{free_port()}"
        ingest = {"wait_time_secs": 1, "visibility_timeout_secs": 30, "retry_backoff_secs": 1,
                  "shutdown_grace_secs": 10, **(ingest or {})}
        store = (["[store]", 'kind = "clickhouse"', f'url = "{scaleout[0]}"', "[state]", 'kind = "postgres"',
                  f'url = "{scaleout[1]}"'] if scaleout else ["[store]", f'path = "{self.db}"'])
        lines = store + ["[web]", f'listen = "{self.web[7:]}"',
                         "[aws]", f'endpoint_url = "{endpoint}"', "force_path_style = true",
                         "[ingest]"] + [f"{k} = {json.dumps(v)}" for k, v in ingest.items()]
        if sns:
            lines += ["[sns]"] + [f"{k} = {json.dumps(v)}" for k, v in sns.items()]
        for name, values in (sections or {}).items():
            lines += [f"[{name}]"] + [f"{k} = {json.dumps(v)}" for k, v in values.items()]
        for a in accounts:
            lines.append("[[accounts]]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in a.items()]
        self.config.write_text("\n".join(lines) + "\n")
        self.env = {**os.environ, **CREDS, "TRAILWATCH_LOG": os.environ.get("TRAILWATCH_LOG", "info")}
        self.env.pop("AWS_ENDPOINT_URL", None)
        self.env.pop("AWS_PROFILE", None)

    def run(self, *args, check=True, timeout=300):
        p = subprocess.run([str(BIN), *map(str, args)], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"trailwatch {' '.join(map(str, args))} exited {p.returncode}:\n{p.stderr[-4000:]}")
        return p

    def serve_until_idle(self, idle=3, timeout=300):
        p = self.run("serve", "--config", self.config, "--exit-when-idle", idle, "--format", "json", timeout=timeout)
        return json.loads(p.stdout.strip().splitlines()[-1]), p.stderr

    def start_serve(self, log_name="serve.log"):
        log = open(self.tmp / log_name, "ab")
        return subprocess.Popen([str(BIN), "serve", "--config", str(self.config), "--format", "json"],
                                env=self.env, stdout=subprocess.PIPE, stderr=log)

    def store_args(self):
        """How CLI commands select this test's store."""
        return ["--config", self.config] if self.scaleout else ["--db", self.db]

    def api_token(self, user="admin"):
        """An API token for `user` (serve creates `admin` on its first start)."""
        return self.run("user", "token", user, *self.store_args()).stdout.strip()

    def get(self, path, token=None):
        """GET on serve's web listener: (status, body)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            with urllib.request.urlopen(urllib.request.Request(self.web + path, headers=headers), timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def event_ids(self):
        if not self.scaleout and not self.db.exists():
            return []
        p = self.run("search", *self.store_args(), "--limit", 0, "--format", "tsv")
        return [line.split("\t")[1] for line in p.stdout.splitlines() if line]

    def status(self):
        return json.loads(self.run("status", "--config", self.config, "--format", "json").stdout)


def scaleout_store(cluster=False):
    """URLs of a fresh scale-out store on the servers scripts/services.sh started: a new
    PostgreSQL database (made with psql) and a ClickHouse database name (trailwatch creates
    it), on the single ClickHouse server or, with `cluster`, on the replicated cluster of
    `start_cluster`. `None` when no servers are configured, unless
    TRAILWATCH_TEST_SCALEOUT=require."""
    ch = os.environ.get("TRAILWATCH_TEST_CLUSTER_URL" if cluster else "TRAILWATCH_TEST_CLICKHOUSE_URL")
    pg = os.environ.get("TRAILWATCH_TEST_POSTGRES_URL")
    if not (ch and pg):
        assert os.environ.get("TRAILWATCH_TEST_SCALEOUT") != "require", "scale-out servers required but not configured"
        return None
    name = "tw_py_" + uuid.uuid4().hex[:12]
    subprocess.run(["psql", pg, "-qc", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    return f"{ch.rstrip('/')}/{name}" + ("?cluster=trailwatch" if cluster else ""), pg.rsplit("/", 1)[0] + "/" + name


def clickhouse_query(scale, sql, url=None):
    """The text answer of `sql` from the store's ClickHouse server (or from `url`), where
    `{db}` names the store's database."""
    base, db = scale[0].split("?")[0].rsplit("/", 1)
    # POST: over GET the server runs read-only statements only.
    with urllib.request.urlopen(f"{url or base}/", data=sql.replace("{db}", db).encode(), timeout=60) as r:
        return r.read().decode()


def stored_events(scale):
    """Events in a scale-out store, asked of ClickHouse directly (cheap enough to poll)."""
    try:
        return int(clickhouse_query(scale, "SELECT count() FROM {db}.events FINAL").strip() or 0)
    except urllib.error.HTTPError:
        return 0  # not created yet


def wait_for(predicate, timeout=60, every=0.2, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


class FaultProxy:
    """An HTTP proxy between trailwatch and moto that records requests and injects faults.

    `policy(req) -> action` decides per request; `req` has service ('sqs', 's3', 'sts'),
    action, method, path, headers and body. Actions: None (forward), ('status', code, body,
    content_type), ('delay', seconds) then forward, ('cut',) forward and cut the response
    body halfway, ('reset',) close the connection without answering.
    """

    def __init__(self, upstream, policy=None):
        self.upstream = upstream.split("://", 1)[1]
        self.policy = policy or (lambda req: None)
        self.requests = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = self.read_chunked()
                req = proxy.describe(self.command, self.path, self.headers, body)
                with proxy.lock:
                    proxy.requests.append(req)
                    action = proxy.policy(req)
                if action and action[0] == "status":
                    _, code, text, ctype = action
                    data = text.encode()
                    self.send_response(code)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if action and action[0] == "reset":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if action and action[0] == "delay":
                    time.sleep(action[1])
                conn = http.client.HTTPConnection(proxy.upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("transfer-encoding", "content-length")}
                headers["Content-Length"] = str(len(body))
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "content-length", "connection", "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if action and action[0] == "cut" and len(data) > 1:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(data)

            def read_chunked(self):
                out = b""
                while True:
                    size = int(self.rfile.readline().strip().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        return out
                    out += self.rfile.read(size)
                    self.rfile.readline()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def describe(method, path, headers, body):
        target = headers.get("X-Amz-Target", "")
        text = body.decode("utf-8", "replace")
        if target.startswith("AmazonSQS."):
            service, action = "sqs", target.split(".", 1)[1]
        elif "Action=" in text and ("sts" in headers.get("Authorization", "") or "AssumeRole" in text):
            service = "sts"
            action = dict(p.split("=", 1) for p in text.split("&") if "=" in p).get("Action", "")
        else:
            service, action = "s3", method
        auth = headers.get("Authorization", "")
        if target.startswith(("CloudTrail_", "com.amazonaws.cloudtrail.")):
            service, action = "cloudtrail", target.rsplit(".", 1)[1]
        return {"service": service, "action": action, "method": method, "path": path, "body": text, "auth": auth,
                "token": headers.get("X-Amz-Security-Token", "")}

    def count(self, service, action=None):
        with self.lock:
            return sum(1 for r in self.requests if r["service"] == service and (action is None or r["action"] == action))

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def fault_proxy(upstream, policy=None):
    p = FaultProxy(upstream, policy)
    try:
        yield p
    finally:
        p.stop()


def kill(proc):
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGKILL)
    proc.wait(10)
