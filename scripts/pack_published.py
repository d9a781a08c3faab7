#!/usr/bin/env python3
"""Published CloudTrail records (shared/data/cloudtrail/*.jsonl) as a bucket-shaped tree of
gzip'd log files for benchmarks: each record repeated COPIES times with a fresh eventID,
spread over FILES files, and the same events as one JSON Lines file beside the tree
(`<out>.jsonl`, for `rules test`). Deterministic: the same inputs give the same bytes.

Usage: pack_published.py SHARED_CLOUDTRAIL_DIR OUT FILES COPIES
"""
import gzip
import json
import pathlib
import re
import sys
import uuid
from datetime import datetime

src, out, files, copies = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def valid_time(t):
    if not isinstance(t, str) or not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", t):
        return False
    try:
        datetime.fromisoformat(t.replace("Z", "+00:00"))
        return True
    except ValueError:
        return False


records = []
for path in sorted(src.glob("*.jsonl")):
    for line in path.read_text().splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        # Files the pipeline would quarantine measure nothing; keep what CloudTrail writes.
        if isinstance(r, dict) and valid_time(r.get("eventTime")):
            records.append(r)
events = []
for c in range(copies):
    for i, r in enumerate(records):
        r = dict(r)
        r["eventID"] = str(uuid.uuid5(uuid.NAMESPACE_OID, f"{c}/{i}"))
        events.append(r)
out.mkdir(parents=True, exist_ok=True)
per = -(-len(events) // files)
for f in range(files):
    chunk = events[f * per:(f + 1) * per]
    if not chunk:
        break
    key = out / "AWSLogs/111122223333/CloudTrail/us-east-1/2024/01/01"
    key.mkdir(parents=True, exist_ok=True)
    name = f"111122223333_CloudTrail_us-east-1_20240101T{f // 60 % 24:02d}{f % 60:02d}Z_{f:06d}.json.gz"
    with gzip.open(key / name, "wt", compresslevel=6) as g:
        json.dump({"Records": chunk}, g)
with open(str(out) + ".jsonl", "w") as j:
    for e in events:
        j.write(json.dumps(e) + "\n")
print(f"{len(records)} records x {copies} = {len(events)} events in {min(files, -(-len(events) // per))} files", file=sys.stderr)
