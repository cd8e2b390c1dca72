"""Synthetic CloudTrail events and trail log files, shared by the benchmarks.

Events are spread evenly over `days` days before `end`; each carries the per-request values real
trails carry (requestID, sharedEventID, additionalEventData), so that an event takes about 120-130
bytes in a gzip trail file. Files are written as CloudTrail writes them: compact JSON, gzip, in the
trail layout `AWSLogs/ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/...json.gz`.
"""

import base64
import datetime
import gzip
import json
import random
import uuid

ACCOUNT = "111122223333"
EVENT_NAMES = [
    "GetObject", "PutObject", "ListBuckets", "AssumeRole", "DescribeInstances", "RunInstances",
    "ConsoleLogin", "CreateUser", "Decrypt", "GenerateDataKey", "GetParameter", "Invoke",
    "DescribeStacks", "PutMetricData", "GetCallerIdentity", "ListObjects", "DeleteObject",
    "CreateSecurityGroup", "AuthorizeSecurityGroupIngress", "UpdateItem", "Query", "Scan",
] + [f"Describe{name}" for name in ("Volumes", "Snapshots", "Images", "Subnets", "Vpcs", "Alarms")]
SOURCES = ["s3", "sts", "ec2", "iam", "kms", "ssm", "lambda", "cloudformation", "monitoring", "dynamodb", "signin"]
AGENTS = ["aws-cli/2.15.0 Python/3.11", "Boto3/1.34.0 Python/3.11", "aws-sdk-go/1.44", "console.amazonaws.com",
          "aws-sdk-java/2.20", "Terraform/1.6 aws-sdk-go-v2", "AWS Internal"]
ERRORS = ["AccessDenied", "ThrottlingException", "ResourceNotFoundException", "ValidationException"]


def synthetic_events(count, end, days=30, seed=7):
    """Yields `count` CloudTrail records spread evenly over the `days` days before `end`, in time
    order; the event at `index` has the eventID `uuid.UUID(int=index + 1)`."""
    rng = random.Random(seed)
    span = days * 24 * 3600
    start = end - datetime.timedelta(seconds=span)
    for index in range(count):
        when = start + datetime.timedelta(seconds=span * index / count)
        user = rng.randrange(1000)
        failed = rng.random() < 0.05
        record = {
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "IAMUser", "principalId": f"AIDA{user:016d}", "arn": f"arn:aws:iam::{ACCOUNT}:user/u{user}",
                "accountId": ACCOUNT, "accessKeyId": f"AKIA{user:016d}", "userName": f"u{user}",
            },
            "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": f"{rng.choice(SOURCES)}.amazonaws.com",
            "eventName": rng.choice(EVENT_NAMES),
            "awsRegion": rng.choice(["us-east-1", "us-west-2", "eu-west-1"]),
            "sourceIPAddress": f"10.{rng.randrange(20)}.{rng.randrange(250)}.{rng.randrange(250)}",
            "userAgent": rng.choice(AGENTS),
            "requestParameters": {"bucketName": f"bucket-{rng.randrange(50)}", "key": f"k/{index}"},
            "responseElements": None,
            "additionalEventData": {"x-amz-id-2": base64.b64encode(rng.randbytes(18)).decode(),
                                    "bytesTransferredOut": rng.randrange(10**6)},
            "requestID": str(uuid.UUID(int=rng.getrandbits(128))),
            "eventID": str(uuid.UUID(int=index + 1)),
            "readOnly": rng.random() < 0.7,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": ACCOUNT,
            "sharedEventID": str(uuid.UUID(int=rng.getrandbits(128))),
            "eventCategory": "Management",
        }
        if failed:
            record["errorCode"] = rng.choice(ERRORS)
            record["errorMessage"] = "synthetic failure"
        yield record


def write_trail_files(folder, count, per_file, end=None, days=30):
    """Writes `count` events as gzip trail files of `per_file` records in the trail layout under
    `folder`; returns their keys and the bytes written."""
    keys, total, batch, number = [], 0, [], 0
    end = end or datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)

    def flush():
        nonlocal total, number
        last = datetime.datetime.strptime(batch[-1]["eventTime"], "%Y-%m-%dT%H:%M:%SZ")
        delivered = last + datetime.timedelta(minutes=5)
        key = (f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/{delivered:%Y/%m/%d}/"
               f"{ACCOUNT}_CloudTrail_us-east-1_{delivered:%Y%m%dT%H%M}Z_{number:016d}.json.gz")
        # Compact JSON and gzip's default level, as CloudTrail writes its log files.
        data = gzip.compress(json.dumps({"Records": batch}, separators=(",", ":")).encode(), 6)
        path = folder / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        keys.append(key)
        total += len(data)
        number += 1

    for record in synthetic_events(count, end, days):
        batch.append(record)
        if len(batch) == per_file:
            flush()
            batch = []
    if batch:
        flush()
    return keys, total
