"""`setup` prints a role, policies and a CloudFormation template that the CloudFormation
linter accepts; `doctor` walks an account end to end against moto, passes when everything is
wired, and names the broken line with its fix when something is not."""

import json
import os
import shutil
import subprocess
import sys
import urllib.parse
from datetime import datetime, timezone

from harness import Aws, Trailwatch, fault_proxy

PRINCIPAL = "arn:aws:iam::444455556666:role/trailwatch"


def wire(aws):
    """Everything `setup`'s template creates, made with boto3 (moto's CloudFormation lacks
    CloudTrail trails)."""
    bucket = aws.bucket("trail-bucket")
    queue, queue_arn, _ = aws.queue("trailwatch")
    topic = aws.topic_to_queue("trail-topic", queue_arn)
    role = aws.role("trailwatch-read")
    ct = aws_client(aws, "cloudtrail")
    ct.create_trail(Name="org-trail", S3BucketName=bucket, SnsTopicName="trail-topic", IsMultiRegionTrail=True,
                    EnableLogFileValidation=True)
    ct.start_logging(Name="org-trail")
    now = datetime.now(timezone.utc)
    aws.put_log(bucket, when=now, records=3)
    # CloudTrail writes a digest an hour once validation is on (moto writes none).
    digest = (f"AWSLogs/{aws.account}/CloudTrail-Digest/us-east-1/{now:%Y/%m/%d}/"
              f"{aws.account}_CloudTrail-Digest_us-east-1_org-trail_us-east-1_{now:%Y%m%dT%H%M%SZ}.json.gz")
    aws.s3.put_object(Bucket=bucket, Key=digest, Body=b"\x1f\x8b")
    return bucket, queue, topic, role, ct


def aws_client(aws, name):
    import boto3
    return boto3.client(name, endpoint_url=aws.endpoint, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def doctor(tw):
    p = tw.run("doctor", "--config", tw.config, "--format", "json", check=False)
    assert p.returncode in (0, 1), p.stderr
    report = json.loads(p.stdout)
    return p.returncode, {c["check"]: c for c in report["accounts"][0]["checks"]}


def test_setup_documents_are_valid_and_least_privilege(endpoint, tmp_path):
    aws = Aws(endpoint)
    tw = Trailwatch(tmp_path, endpoint, [{"name": "prod", "account_id": aws.account, "bucket": "trail-bucket",
                                           "queue_url": f"https://sqs.us-east-1.amazonaws.com/{aws.account}/trailwatch",
                                           "topic_arn": f"arn:aws:sns:us-east-1:{aws.account}:trail-topic",
                                           "prefix": "team", "regions": ["us-east-1"]}])
    out = json.loads(tw.run("setup", "--config", tw.config, "--principal", PRINCIPAL, "--format", "json").stdout)
    ext = out["externalId"]
    assert len(ext) == 32  # none configured: one was generated
    trust = out["trustPolicy"]["Statement"][0]
    assert trust["Principal"] == {"AWS": PRINCIPAL} and trust["Condition"]["StringEquals"]["sts:ExternalId"] == ext
    resources = json.dumps(out["permissionPolicy"])
    # Only this account's path of the (possibly shared) bucket.
    assert f"arn:aws:s3:::trail-bucket/team/AWSLogs/{aws.account}/*" in resources
    assert '"arn:aws:s3:::trail-bucket/team/AWSLogs/*"' not in resources
    assert f"arn:aws:sqs:us-east-1:{aws.account}:trailwatch" in resources
    assert "s3:PutObject" not in resources and "s3:DeleteObject" not in resources
    # The template passes the CloudFormation linter (resource and property specification).
    tw.run("setup", "--config", tw.config, "--principal", PRINCIPAL, "--out", tmp_path / "setup")
    template = tmp_path / "setup" / "prod" / "cloudformation.json"
    lint = shutil.which("cfn-lint", path=os.path.dirname(sys.executable)) or "cfn-lint"
    p = subprocess.run([lint, "--format", "parseable", str(template)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    body = json.loads(template.read_text())
    trail = body["Resources"]["Trail"]["Properties"]
    assert trail["EnableLogFileValidation"] is True and trail["IsLogging"] is True
    # trailwatch's own side of the role: the caller policy names it.
    caller = json.loads((tmp_path / "setup" / "caller-policy.json").read_text())
    assert caller["Statement"][0]["Action"] == "sts:AssumeRole"
    assert caller["Statement"][0]["Resource"] == [f"arn:aws:iam::{aws.account}:role/trailwatch-read"]
    # The IAM linter finds nothing in the identity policies, for a plain, a KMS-encrypted and an
    # organization trail (it does flag a bad one: the check is live).
    lint_iam(caller, expect_clean=True)
    lint_iam(out["permissionPolicy"], expect_clean=True)
    kms = json.loads(tw.run("setup", "--config", tw.config, "--principal", PRINCIPAL, "--format", "json",
                            "--kms-key-arn", f"arn:aws:kms:us-east-1:{aws.account}:key/abcd").stdout)
    lint_iam(kms["permissionPolicy"], expect_clean=True)
    assert [s["Sid"] for s in kms["keyPolicyStatements"]] == [
        "AllowCloudTrailToEncryptLogs", "AllowCloudTrailToDescribeKey", "AllowTrailwatchToDecryptLogs"]
    lint_iam({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                      "Resource": "arn:aws:s3:::trail-bucket"}]}, expect_clean=False)
    # Organization trail: written and read under the organization's path.
    org_cfg = tmp_path / "org"
    org_cfg.mkdir()
    org = Trailwatch(org_cfg, endpoint, [{"name": "org", "account_id": aws.account, "bucket": "org-bucket",
                                          "organization_id": "o-abc123defg", "regions": ["us-east-1"]}])
    org_out = json.loads(org.run("setup", "--config", org.config, "--principal", PRINCIPAL, "--format", "json").stdout)
    lint_iam(org_out["permissionPolicy"], expect_clean=True)
    assert "arn:aws:s3:::org-bucket/AWSLogs/o-abc123defg/*" in json.dumps(org_out["permissionPolicy"])
    assert org_out["cloudFormation"]["Resources"]["Trail"]["Properties"]["IsOrganizationTrail"] is True
    assert any("management account" in n for n in org_out["notes"])


def lint_iam(policy, expect_clean):
    """parliament (an IAM policy linter) over an identity policy: no finding, or some."""
    tool = shutil.which("parliament", path=os.path.dirname(sys.executable)) or "parliament"
    p = subprocess.run([tool, "--json", "--string", json.dumps(policy)], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL)
    findings = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    if expect_clean:
        assert p.returncode == 0 and not findings, (findings, p.stderr)
    else:
        assert findings, "parliament found nothing in a policy it should flag"


def test_doctor_passes_when_wired_and_names_each_broken_line(endpoint, tmp_path):
    aws = Aws(endpoint)
    bucket, queue, topic, role, ct = wire(aws)
    account = {"name": "prod", "account_id": aws.account, "role_arn": role, "external_id": "ext-1",
               "bucket": bucket, "queue_url": queue, "topic_arn": topic, "regions": ["us-east-1"]}
    tw = Trailwatch(tmp_path, endpoint, [account])
    rc, checks = doctor(tw)
    failed = {k: v for k, v in checks.items() if v["state"] not in ("ok",)}
    assert rc == 0 and not failed, failed
    assert set(checks) == {"trailwatch's own credentials", "assume the account's role", "trail exists",
                           "trail is logging", "log file validation", "digests delivered", "trail's SNS topic",
                           "queue reachable",
                           "queue subscribed to the topic", "recent log object readable", "log file encryption",
                           "event selectors (volume)"}

    # Break the trail: logging stopped, validation off, the queue unsubscribed.
    ct.stop_logging(Name="org-trail")
    ct.update_trail(Name="org-trail", EnableLogFileValidation=False)
    sns = aws_client(aws, "sns")
    for s in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]:
        sns.unsubscribe(SubscriptionArn=s["SubscriptionArn"])
    rc, checks = doctor(tw)
    assert rc == 1
    assert checks["trail is logging"]["state"] == "FAIL" and "start-logging" in checks["trail is logging"]["fix"]
    # Trail changes are made in the trail's home region.
    assert "--region us-east-1" in checks["trail is logging"]["fix"]
    assert checks["log file validation"]["state"] == "FAIL"
    assert "--enable-log-file-validation" in checks["log file validation"]["fix"]
    assert "--region us-east-1" in checks["log file validation"]["fix"]
    assert checks["digests delivered"]["state"] == "skip"
    sub = checks["queue subscribed to the topic"]
    assert sub["state"] == "FAIL" and "aws sns subscribe" in sub["fix"]
    assert checks["recent log object readable"]["state"] == "ok"
    table = tw.run("doctor", "--config", tw.config, check=False)
    assert table.returncode == 1 and "[FAIL] trail is logging" in table.stdout and "3 checks failed" in table.stdout
    # Validation back on, but no digest for two days: delivered is a warning, not a pass.
    ct.update_trail(Name="org-trail", EnableLogFileValidation=True)
    s3 = aws_client(aws, "s3")
    for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"AWSLogs/{aws.account}/CloudTrail-Digest/").get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=o["Key"])
    rc, checks = doctor(tw)
    assert checks["digests delivered"]["state"] == "warn", checks["digests delivered"]

    # A role that cannot be assumed: one clear failure, the rest skipped.
    def deny(req):
        if req["service"] == "sts" and req["action"] == "AssumeRole":
            return ("status", 403, "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
                    "<Message>not authorized to perform: sts:AssumeRole</Message></Error></ErrorResponse>", "text/xml")
        return None

    with fault_proxy(endpoint, deny) as proxy:
        (tmp_path / "denied").mkdir()
        tw2 = Trailwatch(tmp_path / "denied", proxy.endpoint, [account])
        rc, checks = doctor(tw2)
        sent = [dict(urllib.parse.parse_qsl(r["body"])) for r in proxy.requests if r["action"] == "AssumeRole"]
    assert rc == 1
    role_check = checks["assume the account's role"]
    assert role_check["state"] == "FAIL" and "AccessDenied" in role_check["detail"]
    assert "sts:ExternalId" in role_check["fix"] and "ext-1" in role_check["fix"]
    # Both sides: the role by its ARN, and trailwatch's own policy.
    assert role in role_check["fix"] and "caller-policy.json" in role_check["fix"]
    assert checks["trail exists"]["state"] == "skip"
    assert sent and all(s.get("ExternalId") == "ext-1" for s in sent)
