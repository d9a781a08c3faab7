#!/usr/bin/env python3
"""The baseline trailwatch's ingest is compared with: the loader anyone would write first.

gzip + json + sqlite3, every record's columns and its JSON text into one table keyed by
eventID, one executemany per file, one transaction for the whole run. Prints one JSON line
with events, seconds and events_per_sec.

    python3 scripts/naive_loader.py DIR [DB]
"""
import gzip
import json
import os
import sqlite3
import sys
import tempfile
import time


def main():
    root = sys.argv[1]
    db = sys.argv[2] if len(sys.argv) > 2 else os.path.join(tempfile.mkdtemp(), "naive.db")
    files = sorted(
        os.path.join(d, f)
        for d, _, names in os.walk(root)
        for f in names
        if f.endswith(".json.gz") and "CloudTrail-Digest" not in f
    )
    conn = sqlite3.connect(db)
    conn.execute(
        "CREATE TABLE events (event_id TEXT PRIMARY KEY, event_time TEXT, event_source TEXT, "
        "event_name TEXT, aws_region TEXT, source_ip TEXT, account TEXT, principal TEXT, "
        "error_code TEXT, raw TEXT)"
    )
    started = time.perf_counter()
    events = 0
    with conn:
        for path in files:
            with gzip.open(path, "rb") as f:
                records = json.load(f)["Records"]
            rows = [
                (
                    r.get("eventID"),
                    r.get("eventTime"),
                    r.get("eventSource"),
                    r.get("eventName"),
                    r.get("awsRegion"),
                    r.get("sourceIPAddress"),
                    r.get("recipientAccountId"),
                    (r.get("userIdentity") or {}).get("arn"),
                    r.get("errorCode"),
                    json.dumps(r, separators=(",", ":")),
                )
                for r in records
            ]
            conn.executemany("INSERT OR IGNORE INTO events VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
            events += len(rows)
    seconds = time.perf_counter() - started
    print(json.dumps({"events": events, "seconds": seconds, "events_per_sec": events / seconds}))


if __name__ == "__main__":
    main()
