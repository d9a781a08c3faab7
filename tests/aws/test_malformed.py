"""Messages that cannot be handled are never deleted: their reason is recorded, they are
retried with backoff, and the queue's redrive policy moves them to the DLQ. Good messages in
the same batch succeed."""

import json

from harness import Aws, Trailwatch


def test_bad_messages_are_quarantined_and_reach_the_dlq(endpoint, tmp_path):
    aws = Aws(endpoint)
    bucket = aws.bucket("trail")
    queue, _, dlq = aws.queue("tw", max_receive=2)
    good = []
    bodies = {
        "not json": "this is not json",
        "unknown shape": json.dumps({"hello": "world"}),
        "missing keys": json.dumps({"s3Bucket": bucket}),
        "other account": json.dumps({"s3Bucket": bucket, "s3ObjectKey": [
            "AWSLogs/999988887777/CloudTrail/us-east-1/2024/03/05/"
            "999988887777_CloudTrail_us-east-1_20240305T1415Z_Qw3rTy8uIo9pAs2D.json.gz"]}),
        "other bucket": json.dumps({"s3Bucket": "someone-elses", "s3ObjectKey": [
            f"AWSLogs/{aws.account}/CloudTrail/us-east-1/2024/03/05/"
            f"{aws.account}_CloudTrail_us-east-1_20240305T1415Z_Qw3rTy8uIo9pAs2D.json.gz"]}),
        "gone": json.dumps({"s3Bucket": bucket, "s3ObjectKey": [
            f"AWSLogs/{aws.account}/CloudTrail/us-east-1/2024/03/05/"
            f"{aws.account}_CloudTrail_us-east-1_20240305T1415Z_DeletedDeleted00.json.gz"]}),
    }
    # Interleave good and bad so they share receive batches.
    for body in bodies.values():
        key, ids = aws.put_log(bucket, records=7)
        good += ids
        aws.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"s3Bucket": bucket, "s3ObjectKey": [key]}))
        aws.sqs.send_message(QueueUrl=queue, MessageBody=body)
    # A log file whose content is bad: quarantined in the ledger, the message is done.
    bad_key = f"AWSLogs/{aws.account}/CloudTrail/us-east-1/2024/03/05/{aws.account}_CloudTrail_us-east-1_20240305T1420Z_TruncatedGzip000.json.gz"
    aws.s3.put_object(Bucket=bucket, Key=bad_key, Body=b"\x1f\x8b\x08\x00garbage")
    aws.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"s3Bucket": bucket, "s3ObjectKey": [bad_key]}))

    tw = Trailwatch(tmp_path, endpoint, [{"name": "prod", "account_id": aws.account, "bucket": bucket,
                                           "queue_url": queue, "regions": ["us-east-1"]}],
                    ingest={"visibility_timeout_secs": 5, "retry_backoff_secs": 1})
    counters, stderr = tw.serve_until_idle(idle=6)
    assert sorted(tw.event_ids()) == sorted(good), stderr[-3000:]
    # Each good object committed (once or more: SQS delivers at least once, and under load moto
    # has handed one message to both receivers; a re-read object adds nothing, as the event ids
    # above show), the bad one quarantined.
    assert counters["objects"] >= 6 and counters["quarantined"] == 1, counters
    # Every bad message was received twice (maxReceiveCount = 2), never deleted, then moved.
    assert aws.queue_depth(queue) == 0
    moved = []
    while True:
        got = aws.sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            break
        moved += [m["Body"] for m in got]
        for m in got:
            aws.sqs.delete_message(QueueUrl=dlq, ReceiptHandle=m["ReceiptHandle"])
    assert sorted(moved) == sorted(bodies.values())
    status = tw.status()
    reasons = sorted(p["reason"] for p in status["messageProblems"])
    assert reasons == sorted(["not_json", "unknown_shape", "missing_field", "foreign_account", "foreign_bucket",
                              "object_missing"]), status["messageProblems"]
    assert all(p["receiveCount"] == 2 for p in status["messageProblems"])
    # The vanished object is an alert-worthy finding, not a silent skip.
    assert [(f["kind"], f["key"].endswith("DeletedDeleted00.json.gz")) for f in status["findings"]] == [("object_missing", True)]
    quarantined = json.loads(tw.run("quarantine", "--db", tw.db, "--format", "json").stdout)
    assert [(q["key"], q["reason"]) for q in quarantined] == [(bad_key, "gzip_truncated")]
