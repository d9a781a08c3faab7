"""`validate --trail-arn` against S3 (moto) gives the verdicts `validate --local` gives on a copy
of the same bucket: the trail is looked up with GetTrail, the window listed, digests read with
their signature metadata through the account's assumed role.

moto has no cloudtrail:ListPublicKeys, so a small stub in front of moto answers that one call
with the simulator's key (in the API's shape: base64 DER, epoch-second validity times); every
other request goes through to moto.
"""

import json
import pathlib
import subprocess
from datetime import datetime

import boto3

from harness import BIN, Trailwatch, fault_proxy, inside_account, simulate

TAMPERS = ["log-modified", "log-deleted", "log-injected", "digest-forged", "digest-deleted",
           "newest-digest-deleted", "digest-corrupted", "digest-unknown-key", "digest-moved", "chain-broken",
           "validation-paused", "delivery-gap"]


def simulate_trail(out, *scenarios, bucket="trailwatch-sim-bucket"):
    args = ["--accounts", "1", "--regions", "us-east-1,eu-west-1", "--hours", "31", "--events", "3000", "--digests",
            "--bucket", bucket]
    for s in scenarios:
        args += ["--scenario", s]
    return simulate(out, *args)


def upload(aws, bucket, root):
    upload_keys(aws, bucket, root, [p.relative_to(root).as_posix() for p in sorted(root.rglob("*.json.gz"))])


def upload_keys(aws, bucket, root, keys):
    """Puts objects of a simulated bucket into S3, digests with their signature metadata."""
    for key in keys:
        path = root / key
        extra = {}
        sidecar = pathlib.Path(str(path) + ".metadata.json")
        if sidecar.exists():
            extra["Metadata"] = json.loads(sidecar.read_text())
        aws.s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), **extra)


def list_public_keys_stub(keys_file):
    """A policy for the fault proxy: answers ListPublicKeys from the simulator's keys file."""
    doc = json.loads(keys_file.read_text())

    def epoch(t):
        return datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()

    body = json.dumps({"PublicKeyList": [
        {"Value": k["Value"], "Fingerprint": k["Fingerprint"],
         "ValidityStartTime": epoch(k["ValidityStartTime"]), "ValidityEndTime": epoch(k["ValidityEndTime"])}
        for k in doc["PublicKeyList"]]})

    def policy(req):
        if req["service"] == "cloudtrail" and req["action"] == "ListPublicKeys":
            return ("status", 200, body, "application/x-amz-json-1.1")
        return None
    return policy


def findings(p):
    assert p.returncode in (0, 1), p.stderr
    doc = json.loads(p.stdout)
    return doc["valid"], sorted((f["kind"], f["key"]) for f in doc["findings"])


def test_trail_arn_validation_matches_local_validation(endpoint, tmp_path):
    out = tmp_path / "bucket"
    manifest = simulate_trail(out, *TAMPERS)
    account = manifest["accounts"][0]["id"]
    role, inside = inside_account(endpoint, account)
    bucket = inside.bucket(manifest["digests"]["bucket"])
    upload(inside, bucket, out)
    cloudtrail = boto3.client("cloudtrail", endpoint_url=endpoint, region_name="us-east-1", **inside.creds)
    trail = cloudtrail.create_trail(Name="management-events", S3BucketName=bucket, IsMultiRegionTrail=True,
                                    EnableLogFileValidation=True)
    arn = trail["TrailARN"]
    assert arn == f"arn:aws:cloudtrail:us-east-1:{account}:trail/management-events"

    window = ["--start-time", manifest["start"]]  # up to now: every digest is overdue
    local = findings(subprocess.run(
        [str(BIN), "validate", "--local", str(out), "--public-keys", str(out / "list-public-keys.json"),
         "--format", "json", *window], capture_output=True, text=True))
    assert local[0] is False
    assert {k for k, _ in local[1]} == {t["finding"] for t in manifest["digests"]["tampers"]} | {"UNLISTED_LOG", "CHAIN_BROKEN"}

    with fault_proxy(endpoint, list_public_keys_stub(out / "list-public-keys.json")) as proxy:
        tw = Trailwatch(tmp_path, proxy.endpoint, [{"name": "prod", "account_id": account, "role_arn": role,
                                                    "external_id": "ext-1", "bucket": bucket}])
        p = tw.run("validate", "--trail-arn", arn, "--config", tw.config, "--format", "json", *window, check=False)
        assert p.returncode == 1, p.stderr
        remote = findings(p)
        assert proxy.count("cloudtrail", "GetTrail") == 1
        assert proxy.count("cloudtrail", "ListPublicKeys") >= 1
        # Every S3 read went out with the assumed role's session credentials.
        s3 = [r for r in proxy.requests if r["service"] == "s3"]
        assert s3 and all(r["token"] for r in s3)
    assert remote == local

    # A clean trail validates clean by ARN too (exit 0): the trail now writes to another bucket,
    # holding a clean simulation made for that bucket name (digests name their bucket).
    clean_out = tmp_path / "clean"
    clean_bucket = inside.bucket("trailwatch-sim-clean")
    clean = simulate_trail(clean_out, bucket=clean_bucket)
    assert clean["accounts"][0]["id"] == account  # same seed, same account
    upload(inside, clean_bucket, clean_out)
    cloudtrail.update_trail(Name="management-events", S3BucketName=clean_bucket)
    (tmp_path / "clean-run").mkdir()
    with fault_proxy(endpoint, list_public_keys_stub(clean_out / "list-public-keys.json")) as proxy:
        tw = Trailwatch(tmp_path / "clean-run", proxy.endpoint,
                        [{"name": "prod", "account_id": account, "role_arn": role, "external_id": "ext-1"}])
        p = tw.run("validate", "--trail-arn", arn, "--config", tw.config, "--format", "json", *window, check=False)
        assert p.returncode == 0, p.stdout + p.stderr
        assert findings(p) == (True, [])
