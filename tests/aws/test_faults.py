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
    bucket = aws.bucket("trail")
    queue, queue_arn, dlq = aws.queue("tw", max_receive=100)
    topic = aws.topic_to_queue("trail-topic", queue_arn)
    expected = []
    keys = []
    for _ in range(120):
        key, ids = aws.put_log(bucket, records=rng.randint(20, 200))
        keys.append(key)
        expected += ids
    for i in range(0, len(keys), 2):
        aws.notify(topic, bucket, keys[i:i + 2])
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
