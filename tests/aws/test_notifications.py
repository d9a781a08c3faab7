"""Every notification shape end to end: objects in S3, the notification delivered the way AWS
delivers it, `serve` ingests, counts are exact and the queue is empty afterwards."""

import json
from datetime import datetime, timezone

from harness import Aws, Trailwatch, wait_for


def account(aws, bucket, queue, **extra):
    return {"name": "prod", "account_id": aws.account, "regions": ["us-east-1"], "bucket": bucket, "queue_url": queue,
            **extra}


def test_cloudtrail_notification_through_sns(endpoint, tmp_path):
    aws = Aws(endpoint)
    bucket = aws.bucket("trail")
    queue, queue_arn, dlq = aws.queue("tw")
    topic = aws.topic_to_queue("trail-topic", queue_arn)
    expected = []
    keys = []
    for minute in range(5):
        key, ids = aws.put_log(bucket, when=datetime(2024, 3, 5, 14, minute, tzinfo=timezone.utc), records=40)
        keys.append(key)
        expected += ids
    # One notification naming two files, three naming one: as CloudTrail batches them.
    aws.notify(topic, bucket, keys[:2])
    for k in keys[2:]:
        aws.notify(topic, bucket, [k])
    tw = Trailwatch(tmp_path, endpoint, [account(aws, bucket, queue)])
    counters, _ = tw.serve_until_idle()
    assert sorted(tw.event_ids()) == sorted(expected)
    assert counters["messages"] == 4 and counters["deleted"] == 4 and counters["objects"] == 5
    assert counters["new"] == 200 and counters["duplicates"] == 0
    assert aws.queue_depth(queue) == 0 and aws.queue_depth(dlq) == 0
    status = tw.status()
    region = [i for i in status["integrations"] if i["region"] == "us-east-1"][0]
    assert region["state"] == "active", status
    assert region["objects"] == 5 and region["events"] == 200
    assert region["newestEvent"] == "2024-03-05T14:04:00Z"

    # The same notifications again (SQS redelivery, a replay): nothing is fetched or doubled.
    aws.notify(topic, bucket, keys)
    counters, _ = tw.serve_until_idle()
    assert counters["already_ingested"] == 5 and counters["objects"] == 0 and counters["deleted"] == 1, (counters, _[-3000:])
    assert len(tw.event_ids()) == 200
    assert aws.queue_depth(queue) == 0


def test_raw_message_delivery_and_validation_message(endpoint, tmp_path):
    aws = Aws(endpoint)
    bucket = aws.bucket("trail")
    queue, queue_arn, _ = aws.queue("tw")
    topic = aws.topic_to_queue("trail-topic", queue_arn, raw=True)
    tw = Trailwatch(tmp_path, endpoint, [account(aws, bucket, queue)])
    # What CloudTrail publishes when the topic is set on a trail: proof of the wiring.
    aws.sns.publish(TopicArn=topic, Message="CloudTrail validation message.")
    counters, _ = tw.serve_until_idle()
    assert counters["validations"] == 1 and counters["deleted"] == 1
    acct = [i for i in tw.status()["integrations"] if i["region"] == ""][0]
    assert acct["state"] == "wired" and acct["lastValidation"], acct

    key, ids = aws.put_log(bucket, records=25)
    aws.notify(topic, bucket, [key])
    body = aws.sqs.receive_message(QueueUrl=queue, VisibilityTimeout=0)["Messages"][0]["Body"]
    assert json.loads(body)["s3Bucket"] == bucket  # raw: no SNS envelope
    counters, _ = tw.serve_until_idle()
    assert sorted(tw.event_ids()) == sorted(ids)
    assert aws.queue_depth(queue) == 0


def s3_notifications_to(aws, bucket, queue_arn=None, topic_arn=None):
    conf = {}
    if queue_arn:
        conf["QueueConfigurations"] = [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]
    if topic_arn:
        conf["TopicConfigurations"] = [{"TopicArn": topic_arn, "Events": ["s3:ObjectCreated:*"]}]
    aws.s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=conf)


def test_s3_event_notifications_direct_and_via_sns(endpoint, tmp_path):
    aws = Aws(endpoint)
    direct_bucket, sns_bucket = aws.bucket("trail-direct"), aws.bucket("trail-sns")
    queue, queue_arn, _ = aws.queue("tw")
    topic = aws.topic_to_queue("s3-events", queue_arn)
    s3_notifications_to(aws, direct_bucket, queue_arn=queue_arn)
    s3_notifications_to(aws, sns_bucket, topic_arn=topic)
    expected = []
    for b in (direct_bucket, sns_bucket):
        for _ in range(3):
            expected += aws.put_log(b, records=10)[1]
    # A non-CloudTrail object in the bucket: counted and skipped, never an error loop. Its
    # key needs URL-decoding (`+` is a space).
    aws.s3.put_object(Bucket=direct_bucket, Key="notes/read me+1.txt", Body=b"hello")
    accounts = [account(aws, direct_bucket, queue, name="direct")]
    # Two accounts on one queue would compete; the bucket check is per account, so leave the
    # bucket unset to accept both buckets of this account.
    accounts[0].pop("bucket")
    tw = Trailwatch(tmp_path, endpoint, accounts)
    counters, stderr = tw.serve_until_idle()
    assert sorted(tw.event_ids()) == sorted(expected), stderr[-3000:]
    assert counters["objects"] == 6 and counters["other_keys"] >= 1, counters
    assert counters["problems"] == 0, stderr[-3000:]
    assert aws.queue_depth(queue) == 0


def test_s3_test_event_eventbridge_digests_and_insights(endpoint, tmp_path):
    aws = Aws(endpoint)
    bucket = aws.bucket("trail")
    queue, queue_arn, _ = aws.queue("tw")
    topic = aws.topic_to_queue("trail-topic", queue_arn)
    send = lambda body: aws.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(body))  # noqa: E731
    send({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2024-03-05T14:00:00.000Z", "Bucket": bucket,
          "RequestId": "X", "HostId": "Y"})
    # EventBridge "AWS API Call via CloudTrail", routed by a rule to the queue.
    aws.events.put_rule(Name="ct", EventPattern=json.dumps({"source": ["aws.cloudtrail"]}))
    aws.events.put_targets(Rule="ct", Targets=[{"Id": "q", "Arn": queue_arn}])
    detail = {"eventVersion": "1.09", "eventTime": "2024-03-05T14:10:42Z", "eventSource": "cloudtrail.amazonaws.com",
              "eventName": "StopLogging", "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.77",
              "eventID": "66666666-7777-4888-9999-aaaaaaaaaaaa", "recipientAccountId": aws.account,
              "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{aws.account}:user/mallory",
                               "accountId": aws.account, "userName": "mallory"}}
    aws.events.put_events(Entries=[{"Source": "aws.cloudtrail", "DetailType": "AWS API Call via CloudTrail",
                                    "Detail": json.dumps(detail)}])
    # A digest file and an Insights file announced like log files.
    digest_key = (f"AWSLogs/{aws.account}/CloudTrail-Digest/us-east-1/2024/03/05/"
                  f"{aws.account}_CloudTrail-Digest_us-east-1_trail_us-east-1_20240305T141500Z.json.gz")
    aws.s3.put_object(Bucket=bucket, Key=digest_key, Body=b"{}")
    insight_key = (f"AWSLogs/{aws.account}/CloudTrail-Insight/us-east-1/2024/03/05/"
                   f"{aws.account}_CloudTrail-Insight_us-east-1_20240305T1415Z_abcdefghijklmnop.json.gz")
    import gzip
    insight = {"eventVersion": "1.08", "eventTime": "2024-03-05T14:00:00Z", "awsRegion": "us-east-1",
               "eventID": "77777777-7777-4888-9999-aaaaaaaaaaaa", "eventType": "AwsCloudTrailInsight",
               "recipientAccountId": aws.account, "sharedEventID": "s", "eventSource": "ec2.amazonaws.com",
               "eventName": "RunInstances", "eventCategory": "Insight", "insightDetails": {"state": "Start"}}
    aws.s3.put_object(Bucket=bucket, Key=insight_key, Body=gzip.compress(json.dumps({"Records": [insight]}).encode()))
    aws.notify(topic, bucket, [digest_key, insight_key])
    tw = Trailwatch(tmp_path, endpoint, [account(aws, bucket, queue)])
    counters, stderr = tw.serve_until_idle()
    assert counters["problems"] == 0, stderr[-3000:]
    assert counters["validations"] == 1 and counters["eventbridge"] == 1 and counters["digests"] == 1, counters
    ids = set(tw.event_ids())
    assert ids == {"66666666-7777-4888-9999-aaaaaaaaaaaa", "77777777-7777-4888-9999-aaaaaaaaaaaa"}
    assert aws.queue_depth(queue) == 0

    # The S3 copy of the EventBridge record arrives later: reconciled by eventID, not doubled.
    key = f"AWSLogs/{aws.account}/CloudTrail/us-east-1/2024/03/05/{aws.account}_CloudTrail_us-east-1_20240305T1415Z_Qw3rTy8uIo9pAs2D.json.gz"
    aws.s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(json.dumps({"Records": [detail]}).encode()))
    aws.notify(topic, bucket, [key])
    counters, _ = tw.serve_until_idle()
    assert counters["objects"] == 1 and counters["new"] == 0 and counters["duplicates"] == 1
    assert len(tw.event_ids()) == 2
