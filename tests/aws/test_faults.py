"""Faults between trailwatch and AWS, injected by a proxy: throttling, 500s, slow responses,
responses cut halfway, connections reset, expired-token errors. Ingestion completes, nothing
is lost, nothing is doubled."""

import random

from harness import Aws, Trailwatch, fault_proxy

SQS_THROTTLE = '{"__type":"com.amazonaws.sqs#ThrottlingException","message":"Rate exceeded"}'
SQS_500 = '{"__type":"com.amazonaws.sqs#InternalError","message":"We encountered an internal error."}'
S3_ERROR = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{msg}</Message><RequestId>F</RequestId></Error>'


def chaos(rng, rate):
    def policy(req):
        if rng.random() >= rate:
            return None
        if req["service"] == "sqs":
            return rng.choice([
                ("status", 400, SQS_THROTTLE, "application/x-amz-json-1.0"),
                ("status", 500, SQS_500, "application/x-amz-json-1.0"),
                ("delay", rng.uniform(0.5, 2.0)),
                ("reset",),
            ])
        if req["service"] == "s3":
            return rng.choice([
                ("status", 503, S3_ERROR.format(code="SlowDown", msg="Please reduce your request rate."), "application/xml"),
                ("status", 500, S3_ERROR.format(code="InternalError", msg="We encountered an internal error."), "application/xml"),
                ("status", 400, S3_ERROR.format(code="ExpiredToken", msg="The provided token has expired."), "application/xml"),
                ("delay", rng.uniform(0.5, 2.0)),
                ("cut",),
                ("reset",),
            ])
        return None
    return policy


def test_ingestion_survives_throttling_errors_slowness_and_cut_responses(endpoint, tmp_path):
    rng = random.Random(7)
    aws = Aws(endpoint)
    bucket, queue, dlq, expected = aws.announced_logs(120, lambda r: r.randint(20, 200), per_message=2, rng=rng)
    with fault_proxy(endpoint, chaos(rng, 0.3)) as proxy:
        tw = Trailwatch(tmp_path, proxy.endpoint, [{"name": "prod", "account_id": aws.account, "bucket": bucket,
                                                     "queue_url": queue, "regions": ["us-east-1"]}],
                        ingest={"visibility_timeout_secs": 6})
        counters, stderr = tw.serve_until_idle(idle=10, timeout=600)
        faults = len(proxy.requests)
    ids = tw.event_ids()
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(expected), (counters, stderr[-3000:])
    assert aws.queue_depth(queue) == 0 and aws.queue_depth(dlq) == 0
    assert counters["new"] == len(expected)
    # Messages that failed along the way were retried and succeeded: no problem is left.
    status = tw.status()
    assert status["messageProblems"] == [] and status["findings"] == [], status
    print(f"{faults} requests through the proxy; counters {counters}")


def test_an_object_the_role_may_not_read_is_a_finding_and_its_message_stays(endpoint, tmp_path):
    aws = Aws(endpoint)
    bucket = aws.bucket("trail")
    queue, queue_arn, dlq = aws.queue("tw", max_receive=100)
    topic = aws.topic_to_queue("trail-topic", queue_arn)
    locked, _ = aws.put_log(bucket, records=5, suffix="LockedLockedLock")
    fine, ids = aws.put_log(bucket, records=5)
    aws.notify(topic, bucket, [locked])
    aws.notify(topic, bucket, [fine])

    def policy(req):
        if req["service"] == "s3" and req["method"] == "GET" and "LockedLockedLock" in req["path"]:
            return ("status", 403, S3_ERROR.format(code="AccessDenied", msg="Access Denied"), "application/xml")
        return None

    with fault_proxy(endpoint, policy) as proxy:
        tw = Trailwatch(tmp_path, proxy.endpoint, [{"name": "prod", "account_id": aws.account, "bucket": bucket,
                                                     "queue_url": queue, "regions": ["us-east-1"]}],
                        ingest={"retry_backoff_secs": 60})
        counters, _ = tw.serve_until_idle(idle=3)
    assert sorted(tw.event_ids()) == sorted(ids)
    status = tw.status()
    assert [(f["kind"], f["key"]) for f in status["findings"]] == [("object_access_denied", locked)]
    assert [p["reason"] for p in status["messageProblems"]] == ["object_access_denied"]
    region = [i for i in status["integrations"] if i["region"] == "us-east-1"][0]
    assert "access denied" in region["lastError"], region
    # Not deleted: still on the queue (invisible for its backoff), not in the DLQ yet.
    assert aws.queue_depth(queue) == 1 and aws.queue_depth(dlq) == 0
    assert counters["deleted"] == 1 and counters["problems"] == 1
