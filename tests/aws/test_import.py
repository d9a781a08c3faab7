"""History from outside the trail's bucket: an account's Event history through LookupEvents
(moto has none: a small stub speaking CloudTrail's JSON protocol answers it, behind the fault
proxy that passes STS to moto), and CloudTrail Lake / Event history export files in every
shape the importer reads. Records are stored once by eventID, detection runs on them, and
importing again adds nothing."""

import gzip
import json
import re
from datetime import datetime, timedelta, timezone

from harness import Aws, Trailwatch, fault_proxy, record, wait_for
from test_alerts import stop_logging


def history(account, region, n, now):
    """`n` records spread over the last 89 days (newest first, as LookupEvents answers)."""
    out = []
    for i in range(n):
        when = now - timedelta(hours=i * 89 * 24 // max(n, 1), minutes=1)
        r = stop_logging(account, when) if i == 7 else record(account, region, when, i)
        r["awsRegion"] = region
        out.append(r)
    return out


def lookup_stub(account, now, data):
    """A policy for the fault proxy that answers cloudtrail:LookupEvents from `data`
    (region -> records), 50 a page, throttling each region's first call once."""
    calls = []

    def policy(req):
        if req["service"] != "cloudtrail" or req["action"] != "LookupEvents":
            return None
        region = re.search(r"Credential=[^/]+/\d+/([a-z0-9-]+)/cloudtrail/", req["auth"]).group(1)
        body = json.loads(req["body"])
        calls.append((region, body))
        if sum(1 for r, _ in calls if r == region) == 1:
            return ("status", 400, json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}),
                    "application/x-amz-json-1.1")
        start, end = float(body["StartTime"]), float(body["EndTime"])
        records = [r for r in data.get(region, [])
                   if start <= datetime.strptime(r["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp() <= end]
        offset = int(body.get("NextToken") or 0)
        page = records[offset:offset + body.get("MaxResults", 50)]
        answer = {"Events": [{"EventId": r["eventID"], "EventName": r["eventName"], "ReadOnly": "false",
                              "EventTime": datetime.strptime(r["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp(),
                              "EventSource": r["eventSource"], "CloudTrailEvent": json.dumps(r)} for r in page]}
        if offset + len(page) < len(records):
            answer["NextToken"] = str(offset + len(page))
        return ("status", 200, json.dumps(answer), "application/x-amz-json-1.1")

    return policy, calls


def test_event_history_through_lookup_events(endpoint, tmp_path):
    aws = Aws(endpoint)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    data = {"us-east-1": history(aws.account, "us-east-1", 130, now),
            "eu-west-1": history(aws.account, "eu-west-1", 20, now)}
    # Older than 90 days: LookupEvents would not return it (the stub filters by the time range).
    data["us-east-1"].append(record(aws.account, "us-east-1", now - timedelta(days=120), 999))
    policy, calls = lookup_stub(aws.account, now, data)
    with fault_proxy(endpoint, policy) as proxy:
        role = aws.role()
        tw = Trailwatch(tmp_path, proxy.endpoint, [{"name": "prod", "account_id": aws.account, "role_arn": role,
                                                    "external_id": "ext-1", "regions": ["us-east-1", "eu-west-1"]}])
        out = json.loads(tw.run("import", "--event-history", "--account", "prod", "--config", tw.config,
                                "--format", "json").stdout)
        expected = {r["eventID"] for region in ("us-east-1", "eu-west-1") for r in data[region][:130 if region == "us-east-1" else 20]}
        assert out["records"] == 150 and out["new"] == 150, out
        assert set(tw.event_ids()) == expected
        # Paged: 3 pages in us-east-1 + 1 in eu-west-1, each region throttled once and retried,
        # through the account's role, over the last 90 days.
        assert sum(1 for r, _ in calls if r == "us-east-1") == 4 and sum(1 for r, _ in calls if r == "eu-west-1") == 2
        starts = {round((now.timestamp() - float(b["StartTime"])) / 86400) for _, b in calls}
        assert starts == {90}, starts
        assert proxy.count("sts") >= 1
        alerts = json.loads(tw.run("alerts", "list", "--db", tw.db, "--format", "json").stdout)
        assert any(a["event_name"] == "StopLogging" for a in alerts), alerts
        # Again: everything is a duplicate.
        again = json.loads(tw.run("import", "--event-history", "--account", "prod", "--config", tw.config,
                                  "--days", "30", "--format", "json").stdout)
        assert again["new"] == 0 and again["duplicates"] == again["records"] > 0, again


def test_lake_and_event_history_export_files(endpoint, tmp_path):
    aws = Aws(endpoint)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    recs = history(aws.account, "us-east-1", 40, now)
    exports = tmp_path / "exports"
    exports.mkdir()
    # The console's Event history download (JSON), gzip'd.
    (exports / "event-history.json.gz").write_bytes(gzip.compress(json.dumps({"Records": recs[:10]}).encode()))
    # `aws cloudtrail lookup-events` output.
    (exports / "lookup.json").write_text(json.dumps({"Events": [{"EventId": r["eventID"], "CloudTrailEvent": json.dumps(r)}
                                                                for r in recs[10:20]]}))
    # CloudTrail Lake get-query-results of SELECT *: one-column cells, nested columns as JSON text.
    rows = [[{k: (json.dumps(v) if isinstance(v, (dict, list)) else v)} for k, v in r.items()] for r in recs[20:30]]
    (exports / "lake.json").write_text(json.dumps({"QueryStatus": "FINISHED", "QueryResultRows": rows}))
    # JSON Lines, with one line that is not a record and one record seen before.
    lines = [json.dumps(r) for r in recs[30:40]] + [json.dumps({"note": "not a record"}), json.dumps(recs[0])]
    (exports / "more.jsonl").write_text("\n".join(lines) + "\n")
    (exports / "README.txt").write_text("ignored")
    tw = Trailwatch(tmp_path, endpoint, [])
    out = json.loads(tw.run("import", "--lake-export", exports, "--db", tw.db, "--format", "json").stdout)
    assert out["records"] == 41 and out["skipped"] == 1 and out["new"] == 40 and out["duplicates"] == 1, out
    assert set(tw.event_ids()) == {r["eventID"] for r in recs}
    # The Lake rows came back as whole records: the principal is searchable.
    lake_ids = tw.run("search", "--db", tw.db, "--principal", "*alice*", "--limit", 0, "--format", "tsv").stdout
    assert all(r["eventID"] in lake_ids for r in recs[20:30] if r["eventName"] != "StopLogging")
    again = json.loads(tw.run("import", "--lake-export", exports, "--db", tw.db, "--format", "json").stdout)
    assert again["already_imported"] == 4 and again["new"] == 0, again
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"Items": []}))
    p = tw.run("import", "--lake-export", bad, "--db", tw.db, check=False)
    assert p.returncode == 2 and "bad.json" in p.stderr and "QueryResultRows" in p.stderr, p.stderr


def test_serve_imports_a_new_accounts_history_once(endpoint, tmp_path):
    aws = Aws(endpoint)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    data = {"us-east-1": history(aws.account, "us-east-1", 60, now)}
    policy, calls = lookup_stub(aws.account, now, data)
    with fault_proxy(endpoint, policy) as proxy:
        role = aws.role()
        tw = Trailwatch(tmp_path, proxy.endpoint, [{"name": "prod", "account_id": aws.account, "role_arn": role,
                                                    "external_id": "ext-1", "regions": ["us-east-1"],
                                                    "import_history_days": 90}],
                        sections={"integrity": {"enabled": False}})
        serve = tw.start_serve()
        try:
            wait_for(lambda: len(tw.event_ids()) == 60, what="the account's Event history stored by serve")
            wait_for(lambda: "Event history imported" in (tmp_path / "serve.log").read_text(), what="the import to end")
        finally:
            serve.terminate()
            assert serve.wait(60) == 0
        first = len(calls)
        assert first == 3, calls  # one throttled call, then two pages
        # The next start knows it was done: no LookupEvents at all.
        serve = tw.start_serve()
        try:
            wait_for(lambda: "web server listening" in (tmp_path / "serve.log").read_text(), what="serve up")
            import time
            time.sleep(3)
        finally:
            serve.terminate()
            assert serve.wait(60) == 0
        assert len(calls) == first
        assert sorted(tw.event_ids()) == sorted(r["eventID"] for r in data["us-east-1"])
