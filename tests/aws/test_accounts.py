"""Two accounts, each through its own assumed role with its external ID. moto accepts any
external ID, so the proxy records what trailwatch sends; an AccessDenied from AssumeRole
(injected by the proxy) gives that account a clear status while the other goes on."""

import json
import urllib.parse
import urllib.request

from harness import Aws, Trailwatch, fault_proxy, wait_for

ACCESS_DENIED = """<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>
<Code>AccessDenied</Code><Message>User: arn:aws:iam::123456789012:user/trailwatch is not authorized to perform:
sts:AssumeRole on resource: {role}</Message></Error><RequestId>x</RequestId></ErrorResponse>"""


def setup_account(base, role_name, bucket_name, queue_name):
    """A role in `base`'s account, and that account's trail bucket, topic and queue."""
    role = base.role(role_name)
    inside = base.assume(role)
    bucket = inside.bucket(bucket_name)
    queue, arn, _ = inside.queue(queue_name)
    topic = inside.topic_to_queue(queue_name + "-topic", arn)
    return role, inside, bucket, queue, topic


def test_two_accounts_through_roles_with_external_ids(endpoint, tmp_path):
    admin = Aws(endpoint)
    # Account B is another account: moto puts a role's resources in the role's account.
    role_a, a, bucket_a, queue_a, topic_a = setup_account(admin, "trailwatch-read", "trail-a", "tw-a")
    b_role_arn = "arn:aws:iam::210987654321:role/trailwatch-read"
    b = Aws(endpoint, _creds_for(admin, b_role_arn))
    b.iam.create_role(RoleName="trailwatch-read", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17",
                      "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}))
    bucket_b = b.bucket("trail-b")
    queue_b, arn_b, _ = b.queue("tw-b")
    topic_b = b.topic_to_queue("tw-b-topic", arn_b)
    assert b.account == "210987654321" and a.account == admin.account

    expected = {}
    for acct, bucket, topic in ((a, bucket_a, topic_a), (b, bucket_b, topic_b)):
        key, ids = acct.put_log(bucket, records=12)
        acct.notify(topic, bucket, [key])
        expected[acct.account] = ids

    deny = {"on": True}

    def policy(req):
        if req["service"] == "sts" and req["action"] == "AssumeRole" and deny["on"]:
            params = dict(urllib.parse.parse_qsl(req["body"]))
            if params.get("RoleArn") == b_role_arn:
                return ("status", 403, ACCESS_DENIED.format(role=b_role_arn), "text/xml")
        return None

    with fault_proxy(endpoint, policy) as proxy:
        accounts = [
            {"name": "a", "account_id": a.account, "role_arn": role_a, "external_id": "ext-a-1234",
             "bucket": bucket_a, "queue_url": queue_a, "regions": ["us-east-1"]},
            {"name": "b", "account_id": b.account, "role_arn": b_role_arn, "external_id": "ext-b-5678",
             "bucket": bucket_b, "queue_url": queue_b, "regions": ["us-east-1"]},
        ]
        tw = Trailwatch(tmp_path, proxy.endpoint, accounts)
        serve = tw.start_serve()
        try:
            # Account a goes on while b is denied.
            wait_for(lambda: sorted(tw.event_ids()) == sorted(expected[a.account]), timeout=60, what="account a")
            status = wait_for(lambda: _row(tw, "b", "")["state"] == "error" and tw.status(), what="b's status")
            reason = _row(tw, "b", "")["reason"]
            assert "assuming role" in reason and b_role_arn in reason and "AccessDenied" in reason, reason
            assert _row(tw, "a", "us-east-1")["state"] == "active", status
            # The same, as a metric.
            assert tw.get("/metrics")[0] == 401, "metrics need a token"
            code, metrics = tw.get("/metrics", tw.api_token())
            assert code == 200
            assert 'trailwatch_integration_up{account="b",region="",state="error"} 0' in metrics, metrics
            assert 'trailwatch_integration_up{account="a",region="us-east-1",state="active"} 1' in metrics
            assert "trailwatch_events_new_total 12" in metrics
            # The role becomes assumable again: b is retried with backoff and catches up.
            deny["on"] = False
            wait_for(lambda: len(tw.event_ids()) == 24, timeout=90, what="account b after the role is fixed")
            wait_for(lambda: _row(tw, "b", "us-east-1")["state"] == "active", timeout=10, what="b active")
        finally:
            serve.terminate()
            assert serve.wait(60) == 0
        sent = [dict(urllib.parse.parse_qsl(r["body"])) for r in proxy.requests if r["action"] == "AssumeRole"]
        # Each role was asked for with its own external ID, and nothing else was sent without one.
        assert {(s["RoleArn"], s.get("ExternalId")) for s in sent} == {(role_a, "ext-a-1234"), (b_role_arn, "ext-b-5678")}
        assert sum(1 for s in sent if s["RoleArn"] == b_role_arn) >= 2  # denied, then retried
        # Every S3/SQS call went out with session (assumed-role) credentials.
        assert all(r["token"] for r in proxy.requests if r["service"] in ("s3", "sqs"))
    assert sorted(tw.event_ids()) == sorted(expected[a.account] + expected[b.account])


def _creds_for(admin, role_arn):
    c = admin.sts.assume_role(RoleArn=role_arn, RoleSessionName="setup")["Credentials"]
    return {"aws_access_key_id": c["AccessKeyId"], "aws_secret_access_key": c["SecretAccessKey"],
            "aws_session_token": c["SessionToken"]}


def _row(tw, account, region):
    for r in tw.status()["integrations"]:
        if r["account"] == account and r["region"] == region:
            return r
    return {"state": "missing", "reason": ""}
