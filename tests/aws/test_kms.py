"""SSE-KMS trails: log files encrypted with a KMS key ingest like any other; when the role may
not decrypt them (S3 answers with KMS's refusal — injected here by the fault proxy, since moto
checks no IAM), the integration status says which key needs kms:Decrypt, the message stays
on the queue, and `doctor` names the fix. `setup` grants kms:Decrypt on the trail's key, and
`doctor` advises on event selectors that would flood the store."""

import gzip
import json
from datetime import datetime, timezone

import boto3

from harness import Aws, Trailwatch, fault_proxy, log_file, log_key, wait_for
from test_setup_doctor import doctor, wire

DENIED = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>User: "
          "arn:aws:sts::{account}:assumed-role/trailwatch-read/trailwatch is not authorized to perform: kms:Decrypt "
          "on resource: {key} because no identity-based policy allows the kms:Decrypt action</Message>"
          "<RequestId>R1</RequestId></Error>")


def test_sse_kms_objects_ingest_and_a_missing_decrypt_permission_is_explained(endpoint, tmp_path):
    aws = Aws(endpoint)
    kms = boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    key_arn = kms.create_key(Description="trail key")["KeyMetadata"]["Arn"]
    bucket = aws.bucket("trail")
    aws.s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}}]})
    queue, queue_arn, dlq = aws.queue("tw", max_receive=100)
    topic = aws.topic_to_queue("trail-topic", queue_arn)
    now = datetime.now(timezone.utc)
    readable_key, readable_ids = aws.put_log(bucket, when=now, records=5)
    head = aws.s3.head_object(Bucket=bucket, Key=readable_key)
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == key_arn, "the object is SSE-KMS"
    body, locked_ids = log_file(aws.account, "us-east-1", now, 4)
    locked_key = log_key(aws.account, "us-east-1", now)
    aws.s3.put_object(Bucket=bucket, Key=locked_key, Body=body, ServerSideEncryption="aws:kms", SSEKMSKeyId=key_arn)

    def policy(req):
        if req["service"] == "s3" and req["method"] == "GET" and locked_key in req["path"]:
            return ("status", 403, DENIED.format(account=aws.account, key=key_arn), "application/xml")
        return None

    with fault_proxy(endpoint, policy) as proxy:
        tw = Trailwatch(tmp_path, proxy.endpoint, [{"name": "prod", "account_id": aws.account, "bucket": bucket,
                                                    "queue_url": queue.replace(endpoint, proxy.endpoint),
                                                    "regions": ["us-east-1"]}],
                        sections={"integrity": {"enabled": False}})
        aws.notify(topic, bucket, [readable_key])
        aws.notify(topic, bucket, [locked_key])
        serve = tw.start_serve()
        try:
            wait_for(lambda: sorted(tw.event_ids()) == sorted(readable_ids), what="the readable SSE-KMS object stored")

            def kms_status():
                rows = [r for r in tw.status()["integrations"] if "kms:Decrypt" in (r.get("lastError") or "")]
                return rows[0] if rows else None
            wait_for(kms_status, what="the status to say why")
            row = kms_status()
            assert f"encrypted with the KMS key {key_arn}" in row["lastError"], row
            assert "trailwatch setup" in row["lastError"], row
            assert locked_key in row["lastError"]
            findings = json.loads(tw.run("status", "--config", tw.config, "--format", "json").stdout)["findings"]
            assert any(f["kind"] == "object_kms_denied" and f["key"] == locked_key for f in findings), findings
            # The message naming the locked object stays on the queue for when access is fixed.
            assert aws.queue_depth(queue) >= 1 and aws.queue_depth(dlq) == 0
            assert not set(locked_ids) & set(tw.event_ids())
        finally:
            serve.terminate()
            serve.wait(60)
    # Access fixed (the same configuration, straight to the endpoint): the waiting message's
    # object ingests.
    tw.config.write_text(tw.config.read_text().replace(proxy.endpoint, endpoint))
    tw.serve_until_idle(idle=3)
    assert set(locked_ids) <= set(tw.event_ids())


def test_setup_grants_decrypt_and_doctor_explains_kms_and_selectors(endpoint, tmp_path):
    aws = Aws(endpoint)
    bucket, queue, topic, role, ct = wire(aws)
    kms = boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    key_arn = kms.create_key(Description="trail key")["KeyMetadata"]["Arn"]
    ct.update_trail(Name="org-trail", KmsKeyId=key_arn)
    account = {"name": "prod", "account_id": aws.account, "role_arn": role, "external_id": "ext-1",
               "bucket": bucket, "queue_url": queue, "topic_arn": topic, "regions": ["us-east-1"]}
    tw = Trailwatch(tmp_path, endpoint, [account])
    out = json.loads(tw.run("setup", "--config", tw.config, "--principal", "arn:aws:iam::444455556666:role/tw",
                            "--kms-key-arn", key_arn, "--format", "json").stdout)
    statements = out["permissionPolicy"]["Statement"]
    decrypt = next(s for s in statements if s["Sid"] == "DecryptTrailObjects")
    assert decrypt["Action"] == "kms:Decrypt" and decrypt["Resource"] == key_arn, decrypt
    # Only through S3, and only for CloudTrail's objects.
    assert decrypt["Condition"]["StringEquals"]["kms:ViaService"] == "s3.us-east-1.amazonaws.com"
    assert "kms:EncryptionContext:aws:cloudtrail:arn" in decrypt["Condition"]["StringLike"]
    # And what the key's policy needs (CreateTrail fails without CloudTrail's statements).
    sids = [s["Sid"] for s in out["keyPolicyStatements"]]
    assert sids == ["AllowCloudTrailToEncryptLogs", "AllowCloudTrailToDescribeKey", "AllowTrailwatchToDecryptLogs"]
    # A trail logging data events for every S3 object: doctor warns about the volume.
    ct.put_event_selectors(TrailName="org-trail", EventSelectors=[{
        "ReadWriteType": "All", "IncludeManagementEvents": True,
        "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}]}])
    rc, checks = doctor(tw)
    enc = checks["log file encryption"]
    assert enc["state"] == "ok" and key_arn in enc["detail"] and "kms:Decrypt" in enc["detail"], enc
    sel = checks["event selectors (volume)"]
    assert sel["state"] == "warn" and "AWS::S3::Object" in sel["detail"] and "ingest.filters" in sel["fix"], sel
    ct.put_event_selectors(TrailName="org-trail", EventSelectors=[{"ReadWriteType": "All", "IncludeManagementEvents": True}])
    rc, checks = doctor(tw)
    assert checks["event selectors (volume)"]["state"] == "ok", checks["event selectors (volume)"]
