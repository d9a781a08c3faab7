"""An organization trail: one bucket and one queue carry the files of hundreds of member
accounts (AWSLogs/o-…/<member>/…), under a key prefix, together with Insights files
(CloudTrail-Insight/) and network activity events. Everything is stored once and searchable
by member account; Insights and network activity records keep their category."""

import gzip
import json
import random
import uuid
from datetime import datetime, timedelta, timezone

from harness import Aws, Trailwatch, log_key, record

ORG = "o-a1b2c3d4e5"


def insight(account, when, state):
    return {"eventVersion": "1.08", "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "awsRegion": "us-east-1",
            "eventID": str(uuid.uuid4()), "eventType": "AwsCloudTrailInsight", "recipientAccountId": account,
            "sharedEventID": "4f4a3ad5-6d51-4b0e-8e5b-1a2b3c4d5e6f", "eventCategory": "Insight",
            "insightDetails": {"state": state, "eventSource": "ec2.amazonaws.com", "eventName": "RunInstances",
                               "insightType": "ApiCallRateInsight",
                               "insightContext": {"statistics": {"baseline": {"average": 0.01},
                                                                 "insight": {"average": 4.5}}}}}


def network_activity(account, when):
    return {"eventVersion": "1.09", "userIdentity": {"type": "AWSAccount", "principalId": "AIDAEXAMPLE",
                                                     "accountId": "999988887777"},
            "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "eventSource": "kms.amazonaws.com",
            "eventName": "Decrypt", "awsRegion": "us-east-1", "sourceIPAddress": "10.0.12.44",
            "userAgent": "aws-sdk-java", "errorCode": "VpceAccessDenied",
            "errorMessage": "The request was denied due to a VPC endpoint policy", "requestID": str(uuid.uuid4()),
            "eventID": str(uuid.uuid4()), "eventType": "AwsVpceEvent", "recipientAccountId": account,
            "sharedEventID": str(uuid.uuid4()), "vpcEndpointId": "vpce-0123456789abcdef0",
            "vpcEndpointAccountId": account, "eventCategory": "NetworkActivity"}


def test_organization_trail_with_many_members_on_one_queue(endpoint, tmp_path):
    aws = Aws(endpoint)
    bucket = aws.bucket("org-trail")
    queue, queue_arn, dlq = aws.queue("tw", max_receive=100)
    topic = aws.topic_to_queue("org-topic", queue_arn)
    members = [f"{random.randrange(10**11, 10**12):012d}" for _ in range(200)]
    when = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=10)
    expected, keys = {}, []
    for i, member in enumerate(members):
        recs = [record(member, "us-east-1", when, j) for j in range(3)]
        key = log_key(member, "us-east-1", when, org=ORG, prefix="security")
        aws.s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(json.dumps({"Records": recs}).encode()))
        keys.append(key)
        expected.update({r["eventID"]: member for r in recs})
    # Insights files live beside the logs, under CloudTrail-Insight/.
    ins = [insight(members[0], when, "Start"), insight(members[0], when + timedelta(minutes=5), "End")]
    ikey = (f"security/AWSLogs/{ORG}/{members[0]}/CloudTrail-Insight/us-east-1/{when:%Y/%m/%d}/"
            f"{members[0]}_CloudTrail-Insight_us-east-1_{when:%Y%m%dT%H%MZ}_abcdefghijklmnop.json.gz")
    aws.s3.put_object(Bucket=bucket, Key=ikey, Body=gzip.compress(json.dumps({"Records": ins}).encode()))
    net = [network_activity(members[1], when)]
    nkey = log_key(members[1], "us-east-1", when, org=ORG, prefix="security")
    aws.s3.put_object(Bucket=bucket, Key=nkey, Body=gzip.compress(json.dumps({"Records": net}).encode()))
    keys += [ikey, nkey]
    for i in range(0, len(keys), 7):
        aws.notify(topic, bucket, keys[i:i + 7])
    tw = Trailwatch(tmp_path, endpoint, [{"name": "org", "account_id": aws.account, "bucket": bucket,
                                          "queue_url": queue, "organization_id": ORG, "prefix": "security",
                                          "regions": ["us-east-1"]}],
                    sections={"integrity": {"enabled": False}})
    stats, _ = tw.serve_until_idle(idle=4)
    stored = set(tw.event_ids())
    want = set(expected) | {r["eventID"] for r in ins + net}
    assert stored == want, (len(stored), len(want))
    assert aws.queue_depth(queue) == 0 and aws.queue_depth(dlq) == 0
    # Member accounts are searchable as themselves.
    some = members[17]
    got = tw.run("search", "--db", tw.db, "--account", some, "--limit", 0, "--format", "tsv").stdout.splitlines()
    assert sorted(line.split("\t")[1] for line in got) == sorted(e for e, m in expected.items() if m == some)
    # The Insight and network activity records are stored whole with their category.
    for r in ins + net:
        line = tw.run("search", "--db", tw.db, "--account", r["recipientAccountId"], "--limit", 0,
                      "--format", "jsonl").stdout
        found = [json.loads(l) for l in line.splitlines() if json.loads(l)["eventID"] == r["eventID"]]
        assert found == [r]
    denied = tw.run("search", "--db", tw.db, "--error-code", "VpceAccessDenied", "--format", "tsv").stdout
    assert net[0]["eventID"] in denied
    # Exported as OCSF, a network activity event still maps.
    ocsf = [json.loads(l) for l in tw.run("export", "events", "--db", tw.db, "--account", members[1],
                                          "--format", "ocsf").stdout.splitlines()]
    assert any(o["metadata"]["uid"] == net[0]["eventID"] and o["status_id"] == 2 for o in ocsf)
