"""Trails: the eleven trail operations through boto3 and the AWS CLI against moto's S3, the
account's calls delivered as CloudTrail log files in AWS's layout (each exactly once across kill -9),
the selectors' effect, digests that `aws cloudtrail validate-logs` accepts and a tampered file it
refuses, and the trail's bucket imported back into a store."""

import datetime
import gzip
import json
import os
import re
import signal
import subprocess
import time
import uuid

import boto3
import pytest

from conftest import ACCOUNT, REGION, Server, error_code
from test_kms import KEY, key_file

LOG_KEY = re.compile(
    rf"^(?:(?P<prefix>.+)/)?AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/\d{{4}}/\d{{2}}/\d{{2}}/"
    rf"{ACCOUNT}_CloudTrail_{REGION}_\d{{8}}T\d{{4}}Z_[A-Za-z0-9]{{16}}\.json\.gz$"
)


@pytest.fixture
def s3_bucket(s3_server):
    """A bucket of a valid name (the shared fixture's may end in a dash, which trails refuse)."""
    name = f"trails-{uuid.uuid4().hex[:12]}"
    s3_client(s3_server).create_bucket(Bucket=name)
    return name


def s3_client(s3_server):
    return boto3.client(
        "s3", endpoint_url=s3_server, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def start(tmp_path, s3_env, *args, name="lake"):
    keys = key_file(tmp_path)
    return Server(tmp_path / name, "--trail-delivery-interval", "1s", "--kms-keys", keys, *args, env=s3_env).start()


def log_files(s3, bucket):
    """Every log file of the bucket: key -> its records."""
    files = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            key = item["Key"]
            if "/CloudTrail/" in key:
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                files[key] = json.loads(gzip.decompress(body))["Records"]
    return files


def delivered(s3, bucket):
    return [record for records in log_files(s3, bucket).values() for record in records]


def wait_for(check, timeout=60, what="the condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def raises(code, call, **kwargs):
    with pytest.raises(Exception) as excinfo:
        call(**kwargs)
    assert error_code(excinfo) == code, (code, excinfo.value.response)
    return excinfo.value.response


def test_the_trail_lifecycle(tmp_path, s3_env, s3_server, s3_bucket):
    server = start(tmp_path, s3_env)
    try:
        cloudtrail = server.client()
        created = cloudtrail.create_trail(Name="main", S3BucketName=s3_bucket, S3KeyPrefix="logs/a",
                                          TagsList=[{"Key": "team", "Value": "sec"}])
        arn = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/main"
        assert {k: v for k, v in created.items() if k != "ResponseMetadata"} == {
            "Name": "main", "S3BucketName": s3_bucket, "S3KeyPrefix": "logs/a", "IncludeGlobalServiceEvents": True,
            "IsMultiRegionTrail": False, "TrailARN": arn, "LogFileValidationEnabled": False,
            "IsOrganizationTrail": False,
        }
        got = cloudtrail.get_trail(Name=arn)["Trail"]
        assert got["HomeRegion"] == REGION and got["HasCustomEventSelectors"] is False
        assert got["HasInsightSelectors"] is False
        assert [t["Name"] for t in cloudtrail.describe_trails()["trailList"]] == ["main"]
        assert [t["TrailARN"] for t in cloudtrail.describe_trails(trailNameList=[arn, "other"])["trailList"]] == [arn]
        assert cloudtrail.list_trails()["Trails"] == [{"TrailARN": arn, "Name": "main", "HomeRegion": REGION}]

        status = cloudtrail.get_trail_status(Name="main")
        assert status["IsLogging"] is False and "StartLoggingTime" not in status
        cloudtrail.start_logging(Name=arn)
        status = cloudtrail.get_trail_status(Name="main")
        assert status["IsLogging"] is True and status["StartLoggingTime"] and status["TimeLoggingStarted"]
        cloudtrail.stop_logging(Name="main")
        status = cloudtrail.get_trail_status(Name="main")
        assert status["IsLogging"] is False and status["StopLoggingTime"] >= status["StartLoggingTime"]

        updated = cloudtrail.update_trail(Name="main", S3KeyPrefix="", EnableLogFileValidation=True,
                                          IsMultiRegionTrail=True, KmsKeyId="alias/trails")
        assert "S3KeyPrefix" not in updated and updated["LogFileValidationEnabled"] is True
        assert updated["IsMultiRegionTrail"] is True
        assert updated["KmsKeyId"] == f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/trails"

        default = cloudtrail.get_event_selectors(TrailName="main")
        assert default["EventSelectors"] == [{"ReadWriteType": "All", "IncludeManagementEvents": True,
                                              "DataResources": [], "ExcludeManagementEventSources": []}]
        assert "AdvancedEventSelectors" not in default
        basic = cloudtrail.put_event_selectors(TrailName="main", EventSelectors=[{
            "ReadWriteType": "WriteOnly",
            "DataResources": [{"Type": "AWS::S3::Object", "Values": [f"arn:aws:s3:::{s3_bucket}/"]}]}])
        assert basic["TrailARN"] == arn
        assert basic["EventSelectors"][0]["ReadWriteType"] == "WriteOnly"
        assert basic["EventSelectors"][0]["IncludeManagementEvents"] is True
        advanced = [{"Name": "writes", "FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Management"]}, {"Field": "readOnly", "Equals": ["false"]}]}]
        put = cloudtrail.put_event_selectors(TrailName=arn, AdvancedEventSelectors=advanced)
        assert put["AdvancedEventSelectors"] == advanced and "EventSelectors" not in put
        assert cloudtrail.get_event_selectors(TrailName="main")["AdvancedEventSelectors"] == advanced
        assert cloudtrail.get_trail(Name="main")["Trail"]["HasCustomEventSelectors"] is True

        cloudtrail.add_tags(ResourceId=arn, TagsList=[{"Key": "env", "Value": "prod"}])
        cloudtrail.remove_tags(ResourceId=arn, TagsList=[{"Key": "team"}])
        tags = cloudtrail.list_tags(ResourceIdList=[arn])["ResourceTagList"]
        assert tags == [{"ResourceId": arn, "TagsList": [{"Key": "env", "Value": "prod"}]}]

        # Kept under the root across a restart.
        server.stop()
        server = Server(tmp_path / "lake", env=s3_env).start()
        cloudtrail = server.client()
        assert cloudtrail.get_trail(Name="main")["Trail"]["LogFileValidationEnabled"] is True
        assert cloudtrail.get_trail_status(Name="main")["StopLoggingTime"]

        cloudtrail.delete_trail(Name=arn)
        response = raises("TrailNotFoundException", cloudtrail.get_trail, Name="main")
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert cloudtrail.list_trails()["Trails"] == []
    finally:
        server.stop()


def test_bad_trail_requests_are_refused_and_change_nothing(tmp_path, s3_env, s3_server, s3_bucket):
    server = start(tmp_path, s3_env, "--max-trails", "2")
    try:
        cloudtrail = server.client(validate=False)
        cloudtrail.create_trail(Name="kept", S3BucketName=s3_bucket)
        before = cloudtrail.describe_trails()["trailList"]
        for name in ["ab", "-trail", "trail-", "a..b", "a-_b", "has space", "10.0.0.1", "a" * 129]:
            raises("InvalidTrailNameException", cloudtrail.create_trail, Name=name, S3BucketName=s3_bucket)
        raises("InvalidS3BucketNameException", cloudtrail.create_trail, Name="trail2", S3BucketName="Bad_Bucket")
        response = raises("S3BucketDoesNotExistException", cloudtrail.create_trail, Name="trail2",
                          S3BucketName="no-such-bucket-here")
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 404
        raises("InvalidS3PrefixException", cloudtrail.create_trail, Name="trail2", S3BucketName=s3_bucket,
               S3KeyPrefix="p" * 201)
        raises("TrailAlreadyExistsException", cloudtrail.create_trail, Name="kept", S3BucketName=s3_bucket)
        raises("InvalidSnsTopicNameException", cloudtrail.create_trail, Name="trail2", S3BucketName=s3_bucket,
               SnsTopicName="topic")
        raises("CloudWatchLogsDeliveryUnavailableException", cloudtrail.create_trail, Name="trail2",
               S3BucketName=s3_bucket, CloudWatchLogsLogGroupArn="arn:aws:logs:us-east-1:123456789012:log-group:g:*",
               CloudWatchLogsRoleArn="arn:aws:iam::123456789012:role/r")
        raises("InvalidParameterCombinationException", cloudtrail.create_trail, Name="trail2", S3BucketName=s3_bucket,
               CloudWatchLogsRoleArn="arn:aws:iam::123456789012:role/r")
        response = raises("OrganizationsNotInUseException", cloudtrail.create_trail, Name="trail2",
                          S3BucketName=s3_bucket, IsOrganizationTrail=True)
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 404
        raises("InvalidKmsKeyIdException", cloudtrail.create_trail, Name="trail2", S3BucketName=s3_bucket,
               KmsKeyId="not a key")
        raises("InvalidKmsKeyIdException", cloudtrail.update_trail, Name="kept", KmsKeyId="arn:aws:kms:eu-west-1:1:key/x")
        raises("KmsKeyNotFoundException", cloudtrail.create_trail, Name="trail2", S3BucketName=s3_bucket,
               KmsKeyId="alias/missing")
        raises("KmsKeyDisabledException", cloudtrail.update_trail, Name="kept", KmsKeyId="alias/off")
        cloudtrail.create_trail(Name="second", S3BucketName=s3_bucket)
        response = raises("MaximumNumberOfTrailsExceededException", cloudtrail.create_trail, Name="third",
                          S3BucketName=s3_bucket)
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 403
        cloudtrail.delete_trail(Name="second")

        elsewhere = f"arn:aws:cloudtrail:eu-west-1:{ACCOUNT}:trail/kept"
        raises("InvalidHomeRegionException", cloudtrail.start_logging, Name=elsewhere)
        raises("InvalidHomeRegionException", cloudtrail.delete_trail, Name=elsewhere)
        raises("TrailNotFoundException", cloudtrail.get_trail, Name=elsewhere)
        raises("CloudTrailARNInvalidException", cloudtrail.get_trail,
               Name=f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:eventdatastore/kept")
        for call in (cloudtrail.start_logging, cloudtrail.stop_logging, cloudtrail.get_trail_status,
                     cloudtrail.delete_trail):
            raises("TrailNotFoundException", call, Name="missing")
        raises("TrailNotFoundException", cloudtrail.update_trail, Name="missing", S3BucketName=s3_bucket)
        raises("TrailNotFoundException", cloudtrail.get_event_selectors, TrailName="missing")

        both = dict(EventSelectors=[{"ReadWriteType": "All"}], AdvancedEventSelectors=[
            {"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}])
        raises("InvalidEventSelectorsException", cloudtrail.put_event_selectors, TrailName="kept", **both)
        raises("InvalidEventSelectorsException", cloudtrail.put_event_selectors, TrailName="kept")
        raises("InvalidEventSelectorsException", cloudtrail.put_event_selectors, TrailName="kept", EventSelectors=[
            {"DataResources": [{"Type": "AWS::SNS::Topic", "Values": ["arn:aws:sns"]}]}])
        raises("InvalidEventSelectorsException", cloudtrail.put_event_selectors, TrailName="kept", EventSelectors=[
            {"ExcludeManagementEventSources": ["s3.amazonaws.com"]}])
        raises("InvalidEventSelectorsException", cloudtrail.put_event_selectors, TrailName="kept",
               EventSelectors=[{"ReadWriteType": "All"}] * 6)
        raises("InvalidEventSelectorsException", cloudtrail.put_event_selectors, TrailName="kept",
               AdvancedEventSelectors=[{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Insight"]}]}])
        status, _, body = server.raw({"TrailName": "kept", "EventSelectors": [{"ReadWriteType": "Sometimes"}]},
                                     target="PutEventSelectors")
        assert status == 400 and "ReadWriteType" in body["message"], body
        raises("ResourceTypeNotSupportedException", cloudtrail.put_resource_policy,
               ResourceArn=f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/kept", ResourcePolicy="{}")

        assert cloudtrail.describe_trails()["trailList"] == before
        assert cloudtrail.get_event_selectors(TrailName="kept")["EventSelectors"][0]["ReadWriteType"] == "All"
    finally:
        server.stop()


def test_cli_trails(tmp_path, s3_env, s3_server, s3_bucket):
    server = start(tmp_path, s3_env)
    try:
        env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION=REGION)

        def aws(*args):
            return subprocess.run(["aws", "--endpoint-url", server.url, "cloudtrail", *args, "--output", "json"],
                                  env=env, capture_output=True, text=True, timeout=120)

        created = aws("create-trail", "--name", "cli-trail", "--s3-bucket-name", s3_bucket, "--is-multi-region-trail")
        assert created.returncode == 0, created.stderr
        assert json.loads(created.stdout)["IsMultiRegionTrail"] is True
        assert aws("start-logging", "--name", "cli-trail").returncode == 0
        assert json.loads(aws("get-trail-status", "--name", "cli-trail").stdout)["IsLogging"] is True
        selectors = aws("put-event-selectors", "--trail-name", "cli-trail", "--event-selectors",
                        '[{"ReadWriteType": "ReadOnly", "IncludeManagementEvents": true}]')
        assert selectors.returncode == 0, selectors.stderr
        listed = json.loads(aws("list-trails").stdout)["Trails"]
        assert [t["Name"] for t in listed] == ["cli-trail"]
        bad = aws("create-trail", "--name", "x", "--s3-bucket-name", s3_bucket)
        assert bad.returncode != 0 and "InvalidTrailNameException" in bad.stderr
        assert aws("delete-trail", "--name", "cli-trail").returncode == 0
    finally:
        server.stop()


def test_calls_are_delivered_as_log_files_that_the_selectors_choose(tmp_path, s3_env, s3_server, s3_bucket):
    server = start(tmp_path, s3_env)
    s3 = s3_client(s3_server)
    try:
        cloudtrail = server.client()
        kms = KEY  # the key's ARN, which alias/trails names
        cloudtrail.create_trail(Name="delivering", S3BucketName=s3_bucket, S3KeyPrefix="org/prod", KmsKeyId="alias/trails")
        cloudtrail.start_logging(Name="delivering")
        store = cloudtrail.create_event_data_store(Name="delivered-store")["EventDataStoreArn"]
        cloudtrail.list_event_data_stores()
        raises("EventDataStoreNotFoundException", cloudtrail.get_event_data_store,
               EventDataStore="00000000-0000-4000-8000-000000000000")

        def names():
            return [r["eventName"] for r in delivered(s3, s3_bucket)]

        wait_for(lambda: {"CreateEventDataStore", "ListEventDataStores", "GetEventDataStore"} <= set(names()),
                 what="the calls in the bucket")
        files = log_files(s3, s3_bucket)
        for key in files:
            match = LOG_KEY.match(key)
            assert match and match["prefix"] == "org/prod", key
            head = s3.head_object(Bucket=s3_bucket, Key=key)
            assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", kms), head
        records = [r for rs in files.values() for r in rs]
        created = next(r for r in records if r["eventName"] == "CreateEventDataStore")
        assert created["eventSource"] == "cloudtrail.amazonaws.com" and created["readOnly"] is False
        assert created["responseElements"]["eventDataStoreArn"] == store
        failed = next(r for r in records if r["eventName"] == "GetEventDataStore")
        assert failed["errorCode"] == "EventDataStoreNotFoundException"
        assert len({r["eventID"] for r in records}) == len(records)
        status = cloudtrail.get_trail_status(Name="delivering")
        assert status["LatestDeliveryTime"] and "LatestDeliveryError" not in status

        # Write events only, from the next call on.
        cloudtrail.put_event_selectors(TrailName="delivering", EventSelectors=[{"ReadWriteType": "WriteOnly"}])
        time.sleep(1)
        seen = len(records)
        marker = cloudtrail.create_event_data_store(Name="after-selectors")["EventDataStoreArn"]
        for _ in range(3):
            cloudtrail.list_event_data_stores()
        after = wait_for(lambda: [r for r in delivered(s3, s3_bucket)
                                  if (r.get("responseElements") or {}).get("eventDataStoreArn") == marker],
                         what="the write after the selectors changed")
        assert after
        newer = [r for r in delivered(s3, s3_bucket) if r["eventTime"] >= after[0]["eventTime"]]
        assert newer and all(r["readOnly"] is False for r in newer), [r["eventName"] for r in newer]

        # Stopped: nothing more.
        cloudtrail.stop_logging(Name="delivering")
        time.sleep(1.5)
        count = len(delivered(s3, s3_bucket))
        cloudtrail.create_event_data_store(Name="while-stopped")
        time.sleep(3)
        assert len(delivered(s3, s3_bucket)) == count > seen
    finally:
        server.stop()


def test_a_failed_delivery_is_reported_and_retried(tmp_path, s3_env, s3_server):
    s3 = s3_client(s3_server)
    bucket = "trail-retried"
    s3.create_bucket(Bucket=bucket)
    server = start(tmp_path, s3_env)
    try:
        cloudtrail = server.client()
        cloudtrail.create_trail(Name="retried", S3BucketName=bucket)
        cloudtrail.start_logging(Name="retried")
        s3.delete_bucket(Bucket=bucket)
        marker = cloudtrail.create_event_data_store(Name="during-outage")["EventDataStoreArn"]
        status = wait_for(lambda: (s := cloudtrail.get_trail_status(Name="retried")).get("LatestDeliveryError") and s,
                          what="the delivery error")
        assert status["LatestDeliveryError"] == "NoSuchBucket", status
        s3.create_bucket(Bucket=bucket)
        wait_for(lambda: any((r.get("responseElements") or {}).get("eventDataStoreArn") == marker
                             for r in delivered(s3, bucket)), what="the retried delivery")
        status = cloudtrail.get_trail_status(Name="retried")
        assert "LatestDeliveryError" not in status and status["LatestDeliveryTime"]
    finally:
        server.stop()


def lookup_ids(cloudtrail, event_name):
    ids, token = [], None
    while True:
        kwargs = {"NextToken": token} if token else {}
        for attempt in range(20):
            try:
                page = cloudtrail.lookup_events(
                    LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": event_name}],
                    MaxResults=50, **kwargs)
                break
            except Exception as error:  # ThrottlingException: 2 calls per second
                if "Throttling" not in str(error):
                    raise
                time.sleep(0.6)
        ids += [e["EventId"] for e in page["Events"]]
        token = page.get("NextToken")
        if not token:
            return ids


def test_each_recorded_call_is_delivered_exactly_once_across_kill_9(tmp_path, s3_env, s3_server, s3_bucket):
    s3 = s3_client(s3_server)
    server = Server(tmp_path / "lake", "--trail-delivery-interval", "300ms", env=s3_env).start()
    cloudtrail = server.client()
    cloudtrail.create_trail(Name="durable", S3BucketName=s3_bucket)
    cloudtrail.start_logging(Name="durable")
    for round_ in range(4):
        for _ in range(15):
            cloudtrail.list_event_data_stores()
        time.sleep([0.1, 0.4, 0.8, 1.2][round_])
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
        server = Server(tmp_path / "lake", "--trail-delivery-interval", "300ms", env=s3_env).start()
        cloudtrail = server.client()
    time.sleep(1.5)
    server.stop()
    server = Server(tmp_path / "lake", env=s3_env).start()
    try:
        history = lookup_ids(server.client(), "ListEventDataStores")
        records = [r for r in delivered(s3, s3_bucket) if r["eventName"] == "ListEventDataStores"]
        ids = [r["eventID"] for r in records]
        assert len(ids) == len(set(ids)), "an event was delivered twice"
        missing = set(history) - set(ids)
        assert not missing, f"{len(missing)} recorded calls were not delivered"
        assert len(history) >= 15, len(history)
    finally:
        server.stop()


def validate_logs(server, s3_server, trail_arn, start_time):
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=REGION,
               AWS_ENDPOINT_URL_S3=s3_server)
    return subprocess.run(
        ["aws", "cloudtrail", "validate-logs", "--endpoint-url", server.url, "--trail-arn", trail_arn,
         "--start-time", start_time, "--verbose"],
        env=env, capture_output=True, text=True, timeout=300)


def test_validate_logs_accepts_the_digests_and_finds_a_tampered_file(tmp_path, s3_env, s3_server, s3_bucket):
    s3 = s3_client(s3_server)
    started = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    server = start(tmp_path, s3_env, "--trail-digest-interval", "2s")
    try:
        cloudtrail = server.client()
        arn = cloudtrail.create_trail(Name="validated", S3BucketName=s3_bucket, S3KeyPrefix="v",
                                      EnableLogFileValidation=True, KmsKeyId="alias/trails")["TrailARN"]
        cloudtrail.start_logging(Name="validated")
        for i in range(3):
            cloudtrail.create_event_data_store(Name=f"validated-{i}")
            time.sleep(1.2)

        def digests():
            keys = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix="v/AWSLogs").get("Contents", [])]
            return [k for k in keys if "/CloudTrail-Digest/" in k]

        wait_for(lambda: len(digests()) >= 3 and log_files(s3, s3_bucket), what="digests")
        server.stop()  # the last digest closes the period
        server = Server(tmp_path / "lake", "--kms-keys", key_file(tmp_path), env=s3_env).start()
        keys = digests()
        # Log files are encrypted with the trail's key; digests are left to the bucket (SSE-S3), as on AWS.
        for key in log_files(s3, s3_bucket):
            assert s3.head_object(Bucket=s3_bucket, Key=key)["SSEKMSKeyId"] == KEY
        for key in keys:
            assert "SSEKMSKeyId" not in s3.head_object(Bucket=s3_bucket, Key=key), key
        for key in keys:
            assert re.search(rf"/{ACCOUNT}_CloudTrail-Digest_{REGION}_validated_{REGION}_\d{{8}}T\d{{6}}Z\.json\.gz$",
                             key), key
        head = s3.head_object(Bucket=s3_bucket, Key=keys[-1])
        assert head["Metadata"]["signature-algorithm"] == "SHA256withRSA" and head["Metadata"]["signature"]
        status = server.client().get_trail_status(Name="validated")
        assert status["LatestDigestDeliveryTime"] and "LatestDigestDeliveryError" not in status

        result = validate_logs(server, s3_server, arn, started)
        assert result.returncode == 0, result.stdout + result.stderr
        logs = len(log_files(s3, s3_bucket))
        assert f"{len(keys)}/{len(keys)} digest files valid" in result.stdout, result.stdout
        assert f"{logs}/{logs} log files valid" in result.stdout, result.stdout

        tampered = sorted(log_files(s3, s3_bucket))[0]
        records = log_files(s3, s3_bucket)[tampered]
        records[0]["eventName"] = "NothingHappened"
        s3.put_object(Bucket=s3_bucket, Key=tampered,
                      Body=gzip.compress(json.dumps({"Records": records}).encode()))
        result = validate_logs(server, s3_server, arn, started)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "INVALID: hash value doesn't match" in result.stderr and tampered in result.stderr, result.stderr

        s3.delete_object(Bucket=s3_bucket, Key=tampered)
        result = validate_logs(server, s3_server, arn, started)
        assert result.returncode == 1 and "INVALID: not found" in result.stderr, result.stderr
    finally:
        server.stop()


def test_the_trail_bucket_imports_back_into_a_store(tmp_path, s3_env, s3_server, s3_bucket):
    s3 = s3_client(s3_server)
    server = start(tmp_path, s3_env)
    try:
        cloudtrail = server.client()
        cloudtrail.create_trail(Name="roundtrip", S3BucketName=s3_bucket, EnableLogFileValidation=True)
        cloudtrail.start_logging(Name="roundtrip")
        for i in range(5):
            cloudtrail.create_event_data_store(Name=f"roundtrip-{i}")
        cloudtrail.stop_logging(Name="roundtrip")
        wait_for(lambda: sum(r["eventName"] == "CreateEventDataStore" for r in delivered(s3, s3_bucket)) >= 5,
                 what="the delivered events")
        time.sleep(1.5)
        records = delivered(s3, s3_bucket)
        store = cloudtrail.create_event_data_store(Name="imported", StartIngestion=False)["EventDataStoreArn"]
        started = cloudtrail.start_import(
            Destinations=[store],
            ImportSource={"S3": {"S3LocationUri": f"s3://{s3_bucket}", "S3BucketRegion": REGION,
                                 "S3BucketAccessRoleArn": f"arn:aws:iam::{ACCOUNT}:role/import"}},
            StartEventTime=datetime.datetime(2020, 1, 1), EndEventTime=datetime.datetime(2100, 1, 1))
        done = wait_for(lambda: (i := cloudtrail.get_import(ImportId=started["ImportId"]))["ImportStatus"]
                        in ("COMPLETED", "FAILED") and i, what="the import")
        assert done["ImportStatus"] == "COMPLETED", done
        assert done["ImportStatistics"]["EventsCompleted"] == len(records), (done, len(records))
        query = cloudtrail.start_query(QueryStatement=f"SELECT eventID FROM {store.rsplit('/', 1)[1]}")["QueryId"]
        wait_for(lambda: cloudtrail.describe_query(QueryId=query)["QueryStatus"] == "FINISHED", what="the query")
        rows = cloudtrail.get_query_results(QueryId=query, MaxQueryResults=1000)["QueryResultRows"]
        assert sorted(row[0]["eventID"] for row in rows) == sorted(r["eventID"] for r in records)
    finally:
        server.stop()
