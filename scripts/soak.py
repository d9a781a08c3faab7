"""Soak test: `serve` under a steady feed for a long time (loopback only: moto for S3, SNS
and SQS), with its memory and open files sampled every minute. Not part of the CI run (it
takes half an hour); run it with scripts/soak.sh.

Each minute's sample is the median of twelve readings five seconds apart. After the warm-up
(the one-off work of the start: retention has removed the preloaded store and the forwarder
has caught up with it; at least five minutes) every sample of resident memory
(RSS) and of open file descriptors must stay within 10 % of their steady level (the median
of the samples after the warm-up): a leak of memory, file handles or sockets shows as a
trend that leaves the band; the first-to-last change after the warm-up is reported too. Also checked at the end: every uploaded
event was stored exactly once, the queue and its dead-letter queue are empty, retention and
forwarding ran. Prints one JSON summary line; exit 1 when a check fails."""

import argparse
import gzip
import json
import os
import pathlib
import signal
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests" / "aws"))
from harness import Aws, MotoServer, Trailwatch, log_key, record  # noqa: E402


def reading(pid):
    status = pathlib.Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss_kb, fds


def sample(pid, every, readings=12):
    """One sample per `every` seconds: the median of `readings` readings spread over it. A
    single reading swings by ±10 % with the batches in flight at that instant (seen: 67-83 MB
    around 72 in one run); the median of a minute is the level a leak would move."""
    rss, fds = [], []
    for _ in range(readings):
        time.sleep(every / readings)
        r, f = reading(pid)
        rss.append(r)
        fds.append(f)
    return sorted(rss)[len(rss) // 2], sorted(fds)[len(fds) // 2]


class Warmup:
    """Tells when the start's one-off work is done: the preloaded events (months old) are gone
    (retention) and the forwarder, which starts from the beginning, has written them all and
    what was uploaded up to the previous sample. Memory moves while that work runs (caches
    fill with the old store, then empty as it is deleted), which is not the steady state."""

    def __init__(self, tw, forwarded, preload):
        self.tw, self.forwarded, self.preload = tw, forwarded, preload
        self.offset, self.lines = 0, 0
        self.preload_gone = preload == 0

    def forwarded_lines(self):
        if self.forwarded.exists():
            with open(self.forwarded, "rb") as f:
                f.seek(self.offset)
                while chunk := f.read(1 << 20):
                    self.lines += chunk.count(b"\n")
                    self.offset += len(chunk)
        return self.lines

    def done(self, uploaded_before):
        if not self.preload_gone:
            until = (datetime.now(timezone.utc) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
            left = self.tw.run("search", "--db", self.tw.db, "--until", until, "--limit", 1, "--format", "tsv")
            self.preload_gone = not left.stdout.strip()
        return self.preload_gone and self.forwarded_lines() >= self.preload + uploaded_before


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--files-per-second", type=float, default=4)
    ap.add_argument("--records", type=int, default=50)
    ap.add_argument("--every", type=float, default=60, help="seconds between samples")
    ap.add_argument("--out", default=None, help="directory for the samples and logs")
    ap.add_argument("--preload", type=int, default=600_000,
                    help="events stored before serve starts (old ones: retention removes them during the warm-up)")
    args = ap.parse_args()
    out = pathlib.Path(args.out or tempfile.mkdtemp(prefix="tw-soak-"))
    out.mkdir(parents=True, exist_ok=True)
    moto = MotoServer(out / "moto.log")
    try:
        return run(args, out, moto)
    finally:
        moto.stop()


def run(args, out, moto):
    aws = Aws(moto.endpoint)
    bucket = aws.bucket("trail")
    queue, queue_arn, dlq = aws.queue("tw", max_receive=100)
    topic = aws.topic_to_queue("trail-topic", queue_arn)
    tw = Trailwatch(out, moto.endpoint, [{"name": "prod", "account_id": aws.account, "bucket": bucket,
                                          "queue_url": queue, "regions": ["us-east-1"]}],
                    sections={"integrity": {"enabled": False},
                              "retention": {"days": 1, "interval": "1m"}})
    # A store of some size first, as a real deployment has: SQLite's page caches (64 MB per
    # connection) fill while the forwarder reads it from the beginning and retention removes
    # it (its events are months old), all during the warm-up, so that what follows is the
    # steady state rather than caches still growing with a small store.
    if args.preload:
        tree = out / "preload"
        tw.run("simulate", "--out", tree, "--profile", "classic", "--accounts", 2, "--hours", 24, "--events", args.preload, "--seed", 9,
               timeout=900)
        tw.run("ingest", "--local", tree, "--db", tw.db, "--no-detection", timeout=900)
    forwarded = out / "forwarded.jsonl"
    with open(tw.config, "a") as f:
        f.write(f'\n[[forward]]\nname = "archive"\nkind = "file"\npath = "{forwarded}"\nstart = "beginning"\n')
    tw.env["TRAILWATCH_LOG"] = "warn"
    serve = tw.start_serve()
    uploaded = []
    stop = threading.Event()

    def feed():
        # A steady trickle: files of `records` events (now-ish, plus some two days old that
        # retention removes), each announced on the topic.
        n = 0
        while not stop.is_set():
            started = time.time()
            now = datetime.now(timezone.utc).replace(microsecond=0)
            recs = [record(aws.account, "us-east-1", now, i) for i in range(args.records)]
            body = gzip.compress(json.dumps({"Records": recs}).encode())
            key = log_key(aws.account, "us-east-1", now)
            aws.s3.put_object(Bucket=bucket, Key=key, Body=body)
            aws.notify(topic, bucket, [key])
            uploaded.extend(r["eventID"] for r in recs)
            n += 1
            time.sleep(max(0.0, 1 / args.files_per_second - (time.time() - started)))

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    samples = []
    warmup = Warmup(tw, forwarded, args.preload)
    warm = None
    t0 = time.time()
    total = args.minutes * 60
    with open(out / "samples.csv", "w") as csv:
        csv.write("seconds,rss_kb,fds,uploaded\n")
        while time.time() - t0 < total:
            if serve.poll() is not None:
                print(json.dumps({"ok": False, "error": f"serve exited {serve.returncode}"}))
                return 1
            uploaded_before = len(uploaded)
            rss, fds = sample(serve.pid, args.every)
            samples.append((time.time() - t0, rss, fds))
            if warm is None and samples[-1][0] >= 5 * 60 and warmup.done(uploaded_before):
                warm = samples[-1][0]
                print(f"soak: warm-up over at {warm / 60:.1f} min (preload removed, forwarder caught up)",
                      file=sys.stderr, flush=True)
            csv.write(f"{samples[-1][0]:.0f},{rss},{fds},{len(uploaded)}\n")
            csv.flush()
            print(f"soak: {samples[-1][0] / 60:5.1f} min  RSS {rss / 1024:7.1f} MB  fds {fds:4d}  events {len(uploaded)}",
                  file=sys.stderr, flush=True)
    stop.set()
    feeder.join()
    # Let serve catch up, then stop it.
    deadline = time.time() + 300
    while aws.queue_depth(queue) and time.time() < deadline:
        time.sleep(2)
    time.sleep(5)
    serve.send_signal(signal.SIGTERM)
    code = serve.wait(timeout=120)

    # Samples after the warm-up's: the one that ended it still holds readings taken during it.
    after = [s for s in samples if warm is not None and s[0] > warm]
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    base = (0, median([s[1] for s in after]), median([s[2] for s in after])) if after else samples[-1]
    rss_drift = max(abs(s[1] - base[1]) / base[1] for s in after) if after else None
    fd_drift = max(abs(s[2] - base[2]) / max(base[2], 1) for s in after) if after else None
    trend = (after[-1][1] - after[0][1]) / after[0][1] if len(after) > 1 else None
    stored = tw.run("search", "--db", tw.db, "--limit", "0", "--format", "tsv").stdout.splitlines()
    stored_ids = [line.split("\t")[1] for line in stored]
    lines = forwarded.read_text().splitlines() if forwarded.exists() else []
    summary = {
        "minutes": args.minutes, "files_per_second": args.files_per_second, "records_per_file": args.records,
        "events_uploaded": len(uploaded), "events_stored": len(stored_ids),
        "stored_exactly_once": sorted(stored_ids) == sorted(uploaded),
        "preloaded": args.preload, "forwarded": len(lines), "queue_left": aws.queue_depth(queue), "dlq_left": aws.queue_depth(dlq),
        "serve_exit": code, "samples": len(samples), "warmup_seconds": round(warm) if warm is not None else None,
        "samples_after_warmup": len(after),
        "rss_mb_steady": round(base[1] / 1024, 1), "rss_mb_max_after": round(max(s[1] for s in after) / 1024, 1) if after else None,
        "rss_mb_min_after": round(min(s[1] for s in after) / 1024, 1) if after else None,
        "rss_first_to_last": round(trend, 3) if trend is not None else None,
        "rss_drift": round(rss_drift, 3) if rss_drift is not None else None,
        "fds_steady": base[2], "fds_max_after": max(s[2] for s in after) if after else None,
        "fd_drift": round(fd_drift, 3) if fd_drift is not None else None,
        "out": str(out),
    }
    ok = (summary["stored_exactly_once"] and summary["queue_left"] == 0 and summary["dlq_left"] == 0 and code == 0
          and len(lines) >= len(uploaded) + args.preload and len(after) >= 10 and rss_drift <= 0.10
          and fd_drift <= 0.10)
    summary["ok"] = bool(ok)
    print(json.dumps(summary))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
