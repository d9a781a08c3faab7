"""Graceful shutdown and long work: SIGTERM finishes or releases what is in flight (released
messages come back at once, not after their visibility timeout), and a message whose
objects take longer than the visibility timeout is kept invisible until it is done."""

import time

from harness import Aws, Trailwatch, fault_proxy, wait_for


def setup(endpoint, tmp_path, files, records, ingest, proxy_endpoint=None):
    aws = Aws(endpoint)
    bucket = aws.bucket("trail")
    queue, queue_arn, dlq = aws.queue("tw", visibility=120)
    topic = aws.topic_to_queue("trail-topic", queue_arn)
    expected = []
    for _ in range(files):
        key, ids = aws.put_log(bucket, records=records)
        aws.notify(topic, bucket, [key])
        expected += ids
    tw = Trailwatch(tmp_path, proxy_endpoint or endpoint, [{"name": "prod", "account_id": aws.account,
                                                            "bucket": bucket, "queue_url": queue,
                                                            "regions": ["us-east-1"]}], ingest=ingest)
    return aws, queue, expected, tw


def test_sigterm_releases_in_flight_messages(endpoint, tmp_path):
    slow = {"on": True}

    def policy(req):
        # Slow object reads, so that SIGTERM finds messages in flight.
        if slow["on"] and req["service"] == "s3" and req["method"] == "GET":
            return ("delay", 1.5)
        return None

    with fault_proxy(endpoint, policy) as proxy:
        aws, queue, expected, tw = setup(endpoint, tmp_path, 60, 10,
                                         {"visibility_timeout_secs": 120, "shutdown_grace_secs": 1},
                                         proxy.endpoint)
        serve = tw.start_serve()
        # Stop it once it is under way: some objects committed, most still to come.
        wait_for(lambda: len(tw.event_ids()) > 0, timeout=60, what="the first commit")
        started = time.time()
        serve.terminate()
        assert serve.wait(30) == 0
        assert time.time() - started < 15
        done_first = len(tw.event_ids())
        assert 0 < done_first < len(expected)
        slow["on"] = False
        # Released messages are visible again now; had they been left in flight they would
        # be invisible for the 120 s visibility timeout and this run would find nothing.
        t0 = time.time()
        counters, stderr = tw.serve_until_idle(idle=3)
        assert time.time() - t0 < 60
    assert sorted(tw.event_ids()) == sorted(expected), stderr[-2000:]
    assert aws.queue_depth(queue) == 0


def test_visibility_is_extended_while_objects_are_slow(endpoint, tmp_path):
    def policy(req):
        # Every object read takes longer than the visibility timeout.
        if req["service"] == "s3" and req["method"] == "GET":
            return ("delay", 5)
        return None

    with fault_proxy(endpoint, policy) as proxy:
        aws, queue, expected, tw = setup(endpoint, tmp_path, 4, 10, {"visibility_timeout_secs": 3},
                                         proxy.endpoint)
        counters, stderr = tw.serve_until_idle(idle=4)
        extends = proxy.count("sqs", "ChangeMessageVisibilityBatch")
    assert sorted(tw.event_ids()) == sorted(expected)
    # Each message was received once: its visibility was renewed, so nobody else got it.
    assert counters["messages"] == 4 and counters["deleted"] == 4 and counters["problems"] == 0, counters
    assert extends >= 1
    assert aws.queue_depth(queue) == 0
