"""Backfill lists by account/region/day, finds every file of a minute that has several, skips
what the ledger has, and is a no-op when run again."""

import json
from datetime import datetime, timezone

from harness import Aws, Trailwatch


def test_backfill_finds_every_file_and_reruns_as_a_noop(endpoint, tmp_path):
    aws = Aws(endpoint)
    bucket = aws.bucket("trail")
    org = "o-abc123defg"
    expected = []
    minute = datetime(2024, 3, 5, 14, 15, tzinfo=timezone.utc)
    # Several files in one minute: their names differ only in the random suffix, which sorts
    # both before and after anything a timestamp-built StartAfter key could be.
    for suffix in ("0000000000000000", "AAAAAAAAAAAAAAAA", "zzzzzzzzzzzzzzzz", "Mmmmmmmmmmmmmmmm"):
        expected += aws.put_log(bucket, when=minute, records=5, org=org, prefix="team", suffix=suffix)[1]
    # Other days and another region inside the range; one day before and one after it.
    for day, region in ((4, "eu-west-1"), (6, "us-east-1"), (3, "us-east-1"), (8, "us-east-1")):
        ids = aws.put_log(bucket, region=region, when=datetime(2024, 3, day, 9, 0, tzinfo=timezone.utc), records=3,
                          org=org, prefix="team")[1]
        if 4 <= day <= 6:
            expected += ids
    # Digests and another account's logs under the same organization are not this account's.
    aws.put_log(bucket, account="999988887777", when=minute, records=2, org=org, prefix="team")
    tw = Trailwatch(tmp_path, endpoint, [{"name": "prod", "account_id": aws.account, "bucket": bucket,
                                           "organization_id": org, "prefix": "team"}])
    args = ["backfill", "--config", tw.config, "--account", "prod", "--since", "2024-03-04", "--until", "2024-03-06",
            "--format", "json"]
    first = json.loads(tw.run(*args).stdout)
    assert sorted(first["regions"]) == ["eu-west-1", "us-east-1"]  # found by listing: none configured
    assert first["in_range"] == 6 and first["files"] == 6 and first["new"] == len(expected), first
    assert sorted(tw.event_ids()) == sorted(expected)
    again = json.loads(tw.run(*args).stdout)
    assert again["already_ingested"] == 6 and again["files"] == 0 and again["new"] == 0, again
    # A narrower region filter.
    only = json.loads(tw.run(*args, "--region", "eu-west-1").stdout)
    assert only["regions"] == ["eu-west-1"] and only["in_range"] == 1
    bad = tw.run("backfill", "--config", tw.config, "--account", "nope", "--since", "1d", check=False)
    assert bad.returncode == 2 and "no account named" in bad.stderr
