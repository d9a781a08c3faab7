#!/usr/bin/env python3
"""Writes one CloudTrail log file of about SIZE_MB inflated megabytes into a bucket-shaped DIR.

    python3 scripts/make_big_log.py DIR SIZE_MB
"""
import gzip
import json
import os
import sys
import uuid

root, size_mb = sys.argv[1], int(sys.argv[2])
key = ("AWSLogs/111122223333/CloudTrail/us-east-1/2026/01/05/"
       "111122223333_CloudTrail_us-east-1_20260105T0005Z_BigFileForRssTest.json.gz")
path = os.path.join(root, key)
os.makedirs(os.path.dirname(path), exist_ok=True)
target = size_mb * 1_000_000
written = 0
with gzip.open(path, "wb", compresslevel=6) as out:
    out.write(b'{"Records":[')
    i = 0
    while written < target:
        record = {
            "eventVersion": "1.10",
            "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLE:i-0abc",
                             "arn": "arn:aws:sts::111122223333:assumed-role/app/i-0abc%05d" % (i % 97),
                             "accountId": "111122223333", "accessKeyId": "ASIAEXAMPLE%09d" % i},
            "eventTime": "2026-01-05T00:%02d:%02dZ" % ((i // 60) % 60, i % 60),
            "eventSource": "s3.amazonaws.com", "eventName": "GetObject", "awsRegion": "us-east-1",
            "sourceIPAddress": "10.0.%d.%d" % (i % 250, i % 7), "userAgent": "aws-sdk-java/2.25.0",
            "requestParameters": {"bucketName": "data", "key": "objects/%d/%s.json" % (i, "x" * 400)},
            "responseElements": None, "eventID": str(uuid.UUID(int=i + 1)),
            "readOnly": True, "eventType": "AwsApiCall", "managementEvent": False,
            "recipientAccountId": "111122223333", "eventCategory": "Data",
        }
        text = json.dumps(record, separators=(",", ":")).encode()
        if i:
            out.write(b",")
        out.write(text)
        written += len(text) + 1
        i += 1
    out.write(b"]}")
print(f"{path}: {i} records, {written / 1e6:.0f} MB inflated")
