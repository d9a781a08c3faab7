"""SIGKILL of `serve` while it works through 500 objects, at random moments, several times;
after a restart exactly the expected events are stored, none doubled, and every message is
gone from the queue: those of uncommitted objects came back and succeeded."""

import json
import random
import time

from harness import Aws, Trailwatch, kill, wait_for


def test_sigkill_at_random_moments_loses_and_doubles_nothing(endpoint, tmp_path):
    rng = random.Random(int(time.time()))
    aws = Aws(endpoint)
    # 500 objects, 1–3 per notification, as CloudTrail batches them.
    bucket, queue, dlq, expected = aws.announced_logs(500, lambda r: r.randint(5, 40), per_message=3, rng=rng)
    # A short visibility timeout so messages of killed runs come back quickly.
    tw = Trailwatch(tmp_path, endpoint, [{"name": "prod", "account_id": aws.account, "bucket": bucket,
                                           "queue_url": queue, "regions": ["us-east-1"]}],
                    ingest={"visibility_timeout_secs": 4})
    kills = 0
    for _ in range(4):
        serve = tw.start_serve(f"serve-{kills}.log")
        time.sleep(rng.uniform(0.5, 3.0))
        kill(serve)
        kills += 1
    stored_before_final = len(tw.event_ids())
    counters, stderr = tw.serve_until_idle(idle=8)
    ids = tw.event_ids()
    assert len(ids) == len(set(ids)), "an event was stored twice"
    assert sorted(ids) == sorted(expected), (stored_before_final, counters, stderr[-2000:])
    assert aws.queue_depth(queue) == 0 and aws.queue_depth(dlq) == 0
    # Every object is in the ledger exactly once.
    status = tw.status()
    assert status["messageProblems"] == [] and status["findings"] == []
    print(f"{kills} kills; {stored_before_final} of {len(expected)} events stored before the final run; {json.dumps(counters)}")
