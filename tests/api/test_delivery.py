"""StartQuery with DeliveryS3Uri through boto3, results delivered to moto's S3 server: the layout,
the gzip CSV files compared row by row with GetQueryResults, the sign file checked with the key
ListPublicKeys returns, DeliveryStatus for cancelled and failed queries, the StartQuery errors, and
key rotation."""

import csv
import datetime
import gzip
import hashlib
import io
import json
import subprocess
import time

import boto3
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import load_der_public_key

from conftest import ACCOUNT, REGION, Server, binary, store_id
from test_queries import HEAVY, all_rows, load, now_utc, records, wait, write_records


def s3_client(s3_server):
    return boto3.client("s3", endpoint_url=s3_server, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")


def started(tmp_path, s3_env, *flags):
    """A server on a local root whose deliveries go to moto, with a store of 2,500 events."""
    server = Server(tmp_path / "lake", *flags, env=s3_env).start()
    cloudtrail = server.client()
    eds = store_id(cloudtrail.create_event_data_store(StartIngestion=False, Name="events", RetentionPeriod=90)["EventDataStoreArn"])
    code, output = load(server, "events", write_records(tmp_path / "e.json", records(2500, now_utc() - datetime.timedelta(hours=3))))
    assert code == 0, output
    return server, cloudtrail, eds


def wait_delivered(cloudtrail, query_id, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        described = cloudtrail.describe_query(QueryId=query_id)
        if described.get("DeliveryStatus") != "PENDING" or time.monotonic() > deadline:
            return described
        time.sleep(0.1)


def delivered_objects(s3, bucket, prefix):
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def check_signature(cloudtrail, sign):
    """Checks the sign file with the key ListPublicKeys gives for its time; returns the key."""
    complete = datetime.datetime.fromisoformat(sign["queryCompleteTime"].replace("Z", "+00:00"))
    keys = cloudtrail.list_public_keys(StartTime=complete, EndTime=complete)["PublicKeyList"]
    matching = [key for key in keys if key["Fingerprint"] == sign["publicKeyFingerprint"]]
    assert len(matching) == 1, keys
    public_key = load_der_public_key(matching[0]["Value"])
    signing_string = " ".join(entry["fileHashValue"] for entry in sign["files"]).encode()
    public_key.verify(bytes.fromhex(sign["hashSignature"]), signing_string, padding.PKCS1v15(), hashes.SHA256())
    return matching[0]


def test_results_are_delivered_as_signed_gzip_csv(tmp_path, s3_env, s3_server, s3_bucket):
    server, cloudtrail, eds = started(tmp_path, s3_env, "--delivery-file-bytes", "4000")
    try:
        statement = f"SELECT eventID, eventTime, eventName, errorCode, requestParameters FROM {eds} ORDER BY eventTime"
        query_id = cloudtrail.start_query(QueryStatement=statement, DeliveryS3Uri=f"s3://{s3_bucket}/exports/lake")["QueryId"]
        assert wait(cloudtrail, query_id)["QueryStatus"] == "FINISHED"
        described = wait_delivered(cloudtrail, query_id)
        assert (described["DeliveryStatus"], described["DeliveryS3Uri"]) == ("SUCCESS", f"s3://{s3_bucket}/exports/lake")

        s3 = s3_client(s3_server)
        day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y/%m/%d")
        folder = f"exports/lake/AWSLogs/{ACCOUNT}/CloudTrail-Lake/Query/{day}/{query_id}/"
        keys = delivered_objects(s3, s3_bucket, folder)
        files = [key for key in keys if key.endswith(".csv.gz")]
        assert len(files) > 2, keys
        assert keys == sorted([folder + f"result_{n}.csv.gz" for n in range(1, len(files) + 1)] + [folder + "result_sign.json"])

        sign = json.loads(s3.get_object(Bucket=s3_bucket, Key=folder + "result_sign.json")["Body"].read())
        assert (sign["version"], sign["region"], sign["hashAlgorithm"], sign["signatureAlgorithm"]) == ("1.0", REGION, "SHA-256", "SHA256withRSA")
        assert [entry["fileName"] for entry in sign["files"]] == [f"result_{n}.csv.gz" for n in range(1, len(files) + 1)]
        delivered_rows = []
        for entry in sign["files"]:
            body = s3.get_object(Bucket=s3_bucket, Key=folder + entry["fileName"])["Body"].read()
            assert hashlib.sha256(body).hexdigest() == entry["fileHashValue"]
            table = list(csv.reader(io.StringIO(gzip.decompress(body).decode())))
            assert table[0] == ["eventID", "eventTime", "eventName", "errorCode", "requestParameters"]
            delivered_rows.extend(table[1:])
        check_signature(cloudtrail, sign)

        pages = all_rows(cloudtrail, query_id)
        keys_of_columns = ["eventID", "eventTime", "eventName", "errorCode", "requestParameters"]
        expected = [[next((c[k] for c in row if k in c), "") for k in keys_of_columns] for row in pages]
        assert len(delivered_rows) == 2500
        assert delivered_rows == expected
        assert any("," in row[4] for row in delivered_rows), "maps with commas are quoted, RFC 4180"

        def verify():
            done = subprocess.run([binary(), "verify", "--root", server.root, f"s3://{s3_bucket}/{folder}"],
                                  capture_output=True, text=True, timeout=120, env=server.env)
            return done.returncode, done.stdout + done.stderr

        code, output = verify()
        assert code == 0 and f"verified: {len(files)} result files" in output, output
        original = s3.get_object(Bucket=s3_bucket, Key=files[1])["Body"].read()
        s3.put_object(Bucket=s3_bucket, Key=files[1], Body=gzip.compress(b"eventID\nforged\n"))
        code, output = verify()
        assert code == 1 and "result_2.csv.gz: its SHA-256" in output, output
        s3.put_object(Bucket=s3_bucket, Key=files[1], Body=original)
        s3.delete_object(Bucket=s3_bucket, Key=files[0])
        s3.put_object(Bucket=s3_bucket, Key=folder + "result_99.csv.gz", Body=b"")
        code, output = verify()
        assert code == 1 and "result_1.csv.gz is in the sign file but missing" in output, output
        assert "result_99.csv.gz is in the folder but not in the sign file" in output, output
    finally:
        server.stop()


def test_cancelled_and_failed_queries_deliver_nothing_and_bad_targets_are_refused(tmp_path, s3_env, s3_server, s3_bucket):
    server, cloudtrail, eds = started(tmp_path, s3_env, "--query-slots", "1")
    try:
        target = f"s3://{s3_bucket}/nothing"
        heavy = cloudtrail.start_query(QueryStatement=HEAVY.format(eds=eds), DeliveryS3Uri=target)["QueryId"]
        cloudtrail.cancel_query(QueryId=heavy)
        failed = cloudtrail.start_query(QueryStatement=f"SELECT CAST(eventName AS INTEGER) FROM {eds}", DeliveryS3Uri=target)["QueryId"]
        assert wait(cloudtrail, failed)["QueryStatus"] == "FAILED"
        assert wait_delivered(cloudtrail, failed)["DeliveryStatus"] == "FAILED"
        assert wait_delivered(cloudtrail, heavy)["DeliveryStatus"] == "CANCELLED"
        assert delivered_objects(s3_client(s3_server), s3_bucket, "nothing/") == []

        for uri, code in [
            ("s3://no-such-bucket-here/x", "S3BucketDoesNotExistException"),
            ("s3://Bad_Bucket/x", "InvalidS3BucketNameException"),
            ("s3://ab", "InvalidS3BucketNameException"),
            (f"s3://{s3_bucket}/a//b", "InvalidS3PrefixException"),
            (f"s3://{s3_bucket}/a/../b", "InvalidS3PrefixException"),
        ]:
            with pytest.raises(cloudtrail.exceptions.ClientError) as excinfo:
                cloudtrail.start_query(QueryStatement=f"SELECT 1 FROM {eds}", DeliveryS3Uri=uri)
            assert excinfo.value.response["Error"]["Code"] == code, uri
            assert "DeliveryS3Uri" in excinfo.value.response["Error"]["Message"] or "bucket" in excinfo.value.response["Error"]["Message"]
    finally:
        server.stop()


def test_a_rotated_key_is_listed_beside_the_new_one(tmp_path, s3_env, s3_server):
    s3_bucket = "lake-key-rotation"
    s3_client(s3_server).create_bucket(Bucket=s3_bucket)
    server, cloudtrail, eds = started(tmp_path, s3_env, "--signing-key-rotation", "2s")
    try:
        began = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)
        signs = []
        for attempt in range(2):
            query_id = cloudtrail.start_query(QueryStatement=f"SELECT count(*) AS n FROM {eds}", DeliveryS3Uri=f"s3://{s3_bucket}/rot")["QueryId"]
            assert wait_delivered(cloudtrail, query_id)["DeliveryStatus"] == "SUCCESS"
            s3 = s3_client(s3_server)
            sign_key = next(key for key in delivered_objects(s3, s3_bucket, "rot/") if key.endswith(f"{query_id}/result_sign.json"))
            signs.append(json.loads(s3.get_object(Bucket=s3_bucket, Key=sign_key)["Body"].read()))
            if attempt == 0:
                time.sleep(2.5)
        assert signs[0]["publicKeyFingerprint"] != signs[1]["publicKeyFingerprint"]
        for sign in signs:
            check_signature(cloudtrail, sign)
        listed = cloudtrail.list_public_keys(StartTime=began, EndTime=datetime.datetime.now(datetime.timezone.utc))["PublicKeyList"]
        fingerprints = [key["Fingerprint"] for key in listed]
        assert {s["publicKeyFingerprint"] for s in signs} <= set(fingerprints), listed
        assert all(key["ValidityStartTime"] < key["ValidityEndTime"] for key in listed)
        with pytest.raises(cloudtrail.exceptions.InvalidTimeRangeException):
            cloudtrail.list_public_keys(StartTime=datetime.datetime(2026, 1, 2), EndTime=datetime.datetime(2026, 1, 1))
    finally:
        server.stop()
