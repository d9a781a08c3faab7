#!/usr/bin/env python3
"""SQS ingest benchmark: N CloudTrail objects announced through SNS→SQS in moto, consumed
by `trailwatch serve`, next to baselines measured in the same run on the same files:

  * moto's own ceiling: the same objects fetched with boto3 from 16 threads (what the
    AWS-compatible server can serve at all, with no parsing or storing);
  * a boto3 consumer with the same shape (R long-poll threads, 16 GET threads, a batch
    delete once a message's objects are read): what a plain consumer gets from the same
    moto, without parsing or storing anything;
  * `trailwatch bench ingest --local` on a local copy of the same files (parse + store,
    no network).

moto is one Python process: the CPU it uses during each run is reported too (a share near
1.0 of one core means moto, not the consumer, sets the pace).

Prints messages/s and events/s for each, the ratios, and where serve's time went (long
polls, S3 GETs, waiting for the pipeline). The consumer is not the bottleneck when serve's
rate is close to the lower of the two baselines.

Usage: target/pyenv/bin/python scripts/bench_sqs.py [--objects 1000] [--events 150000]
       (needs moto/boto3: scripts/test.sh creates target/pyenv; builds the release binary)
"""

import argparse
import concurrent.futures
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "aws"))
from harness import Aws, MotoServer, Trailwatch  # noqa: E402


def cpu_seconds(pid):
    """user + system CPU seconds of a process so far (Linux /proc)."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def boto3_consumer(aws, queue, receivers, wait_time, expected):
    """The baseline consumer: receive, GET every object, delete; counts messages."""
    import threading
    done = [0]
    lock = threading.Lock()
    pool = concurrent.futures.ThreadPoolExecutor(16)

    def receiver():
        while True:
            with lock:
                if done[0] >= expected:
                    return
            msgs = aws.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=wait_time,
                                           VisibilityTimeout=300).get("Messages", [])
            gets = []
            for m in msgs:
                body = json.loads(json.loads(m["Body"])["Message"])
                gets += [pool.submit(lambda k, b=body["s3Bucket"]: aws.s3.get_object(Bucket=b, Key=k)["Body"].read(), k)
                         for k in body["s3ObjectKey"]]
            for g in gets:
                g.result()
            if msgs:
                aws.sqs.delete_message_batch(QueueUrl=queue, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
                with lock:
                    done[0] += len(msgs)

    threads = [threading.Thread(target=receiver) for _ in range(receivers)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pool.shutdown()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=1000)
    ap.add_argument("--events", type=int, default=150_000)
    ap.add_argument("--wait-time", type=int, default=20, help="serve's long-poll wait (ingest.wait_time_secs)")
    ap.add_argument("--receivers", type=int, default=2, help="ingest.receivers_per_queue")
    ap.add_argument("--bin", default=os.environ.get("TRAILWATCH_BIN", str(ROOT / "target" / "release" / "trailwatch")))
    args = ap.parse_args()
    if "TRAILWATCH_BIN" not in os.environ and args.bin.endswith("release/trailwatch"):
        subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "trailwatch"], cwd=ROOT, check=True)
    os.environ["TRAILWATCH_BIN"] = args.bin
    import harness
    harness.BIN = pathlib.Path(args.bin)

    work = pathlib.Path(tempfile.mkdtemp(prefix="tw-bench-sqs-"))
    sim = work / "sim"
    hours = max(1, round(args.objects / 24 * 1.02))  # two regions, a file every 5 minutes each
    subprocess.run([args.bin, "simulate", "--out", sim, "--profile", "classic", "--accounts", "1", "--regions", "us-east-1,eu-west-1",
                    "--hours", str(hours), "--events", str(args.events)], check=True, capture_output=True)
    logs = sorted(p for p in sim.rglob("*.json.gz") if "CloudTrail-Digest" not in str(p))[: args.objects]
    local = work / "local"
    for p in logs:
        dst = local / p.relative_to(sim)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.link(p, dst)
    keys = [str(p.relative_to(sim)) for p in logs]
    account = keys[0].split("/")[1]
    total_bytes = sum(p.stat().st_size for p in logs)

    moto = MotoServer(work / "moto.log")
    try:
        aws = Aws(moto.endpoint)
        bucket = aws.bucket("trail")
        queue, queue_arn, _ = aws.queue("tw", visibility=300)
        topic = aws.topic_to_queue("trail-topic", queue_arn)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda k: aws.s3.put_object(Bucket=bucket, Key=k, Body=(sim / k).read_bytes()), keys))

        # Baseline 1: moto's ceiling for the GETs alone.
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            got = sum(pool.map(lambda k: len(aws.s3.get_object(Bucket=bucket, Key=k)["Body"].read()), keys))
        get_secs = time.perf_counter() - t0
        assert got == total_bytes

        for k in keys:
            aws.notify(topic, bucket, [k])

        # Baseline 2: a plain boto3 consumer of the same messages.
        cpu0 = cpu_seconds(moto.proc.pid)
        py_secs = boto3_consumer(aws, queue, args.receivers, args.wait_time, len(keys))
        py_moto_cpu = (cpu_seconds(moto.proc.pid) - cpu0) / py_secs
        assert aws.queue_depth(queue) == 0
        for k in keys:
            aws.notify(topic, bucket, [k])

        # trailwatch serve, release build, until the queue is empty.
        (work / "tw").mkdir()
        tw = Trailwatch(work / "tw", moto.endpoint, [{"name": "bench", "account_id": account, "bucket": bucket,
                                                      "queue_url": queue}],
                        ingest={"receivers_per_queue": args.receivers, "wait_time_secs": args.wait_time,
                                "fetch_concurrency": 16, "max_inflight_messages": 200,
                                "visibility_timeout_secs": 300})
        cpu0 = cpu_seconds(moto.proc.pid)
        t0 = time.perf_counter()
        serve = tw.start_serve()
        while aws.queue_depth(queue) > 0:
            time.sleep(0.1)
        serve_secs = time.perf_counter() - t0
        serve_moto_cpu = (cpu_seconds(moto.proc.pid) - cpu0) / serve_secs
        serve_cpu = cpu_seconds(serve.pid) / serve_secs
        serve.terminate()
        out, _ = serve.communicate(timeout=60)
        counters = json.loads(out.decode().strip().splitlines()[-1])
    finally:
        moto.stop()

    # Baseline 2: the same files from local disk.
    bench = json.loads(subprocess.run([args.bin, "bench", "ingest", "--local", local, "--runs", "3", "--format",
                                       "json"], check=True, capture_output=True, text=True).stdout)
    shutil.rmtree(work, ignore_errors=True)

    events = counters["new"]
    assert events == bench["events"], (events, bench["events"])
    assert counters["deleted"] == len(keys)
    serve_eps, serve_mps = events / serve_secs, len(keys) / serve_secs
    local_eps = bench["ingest"]["events_per_sec"]
    get_ops = len(keys) / get_secs
    print(f"{len(keys)} objects, {events:,} events, {total_bytes / 1e6:.1f} MB gzip")
    print(f"  moto GET ceiling (boto3, 16 threads): {get_ops:8.0f} objects/s")
    print(f"  boto3 consumer (no parse, no store)  : {len(keys) / py_secs:8.0f} messages/s"
          f"  ({py_secs:.1f} s; moto used {py_moto_cpu:.2f} of a core)")
    print(f"  bench ingest --local (parse + store): {local_eps:8.0f} events/s   parse alone {bench['parse']['events_per_sec']:.0f}/s")
    print(f"  serve via SNS→SQS→S3 in moto        : {serve_mps:8.0f} messages/s  {serve_eps:8.0f} events/s"
          f"  ({serve_secs:.1f} s; moto used {serve_moto_cpu:.2f} of a core, trailwatch {serve_cpu:.2f})")
    print(f"  serve / boto3 consumer               : {serve_mps / (len(keys) / py_secs):8.2f}  (messages/s)")
    print(f"  serve / moto GET ceiling             : {serve_mps / get_ops:8.2f}  (objects/s)")
    print(f"  serve / local ingest                 : {serve_eps / local_eps:8.2f}  (events/s)")
    busy = serve_secs
    print(f"  where serve's time went (summed over concurrent tasks, wall {busy:.1f} s):")
    print(f"    long polls {counters['receive_calls']} calls, {counters['receive_seconds']:.1f} s;"
          f" S3 GETs {counters['fetch_seconds']:.1f} s ({counters['fetch_seconds'] / len(keys) * 1000:.0f} ms each);"
          f" waiting for the pipeline {counters['submit_wait_seconds']:.1f} s")
    print(json.dumps({"objects": len(keys), "events": events, "serve_seconds": serve_secs,
                      "serve_messages_per_sec": serve_mps, "serve_events_per_sec": serve_eps,
                      "moto_get_objects_per_sec": get_ops, "local_ingest_events_per_sec": local_eps,
                      "boto3_consumer_messages_per_sec": len(keys) / py_secs, "moto_cpu_share_serve": serve_moto_cpu,
                      "moto_cpu_share_boto3": py_moto_cpu, "trailwatch_cpu_share": serve_cpu,
                      "counters": counters}))


if __name__ == "__main__":
    main()
