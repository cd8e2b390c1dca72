"""KmsKeyId that encrypts: the operator's key file (`--kms-keys`) as the key service; stores on a
local root whose Parquet files do not read without the key's material, and still answer queries
with exactly a plain store's rows; stores on an S3 root (moto) whose every object asks for SSE-KMS
with the key; trails whose log files do; and every refusal: no key service (KmsException), a
missing key (KmsKeyNotFoundException), a disabled key (KmsKeyDisabledException), a changed key,
federation of Parquet-encrypted files, and a store whose key the server no longer has."""

import datetime
import json
import pathlib
import subprocess
import uuid

import boto3
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, Server, binary, error_code, store_id
from test_lake_samples import TRAILS
from test_queries import all_rows, now_utc, records, wait, write_records

KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
DISABLED = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/2234abcd-12ab-34cd-56ef-1234567890ab"
MISSING = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/3234abcd-12ab-34cd-56ef-1234567890ab"


def key_file(tmp_path, disabled=()):
    path = tmp_path / "kms-keys.json"
    keys = [
        {"arn": KEY, "aliases": ["alias/lake", "alias/trails"], "material": "11" * 32, "enabled": KEY not in disabled},
        {"arn": DISABLED, "aliases": ["alias/off"], "material": "22" * 32, "enabled": False},
    ]
    path.write_text(json.dumps({"keys": keys}))
    return path


def refused(code, call, **kwargs):
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    assert error_code(raised) == code, raised.value.response
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return raised.value.response["Error"]["Message"]


def load(server, store, *paths, keys=None):
    command = [binary(), "load", "--root", server.root, "--store", store, *map(str, paths)]
    if keys:
        command += ["--kms-keys", str(keys)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=server.env)
    return done.returncode, done.stdout + done.stderr


def event_ids(cloudtrail, store, where="eventTime < '2026-01-01 00:00:00'"):
    """The IDs of a store's events; by default those of the trail files loaded (the server's own
    recorded calls, made now, left out)."""
    statement = f"SELECT eventID FROM {store_id(store)} WHERE {where}"
    query_id = cloudtrail.start_query(QueryStatement=statement)["QueryId"]
    described = wait(cloudtrail, query_id)
    assert described["QueryStatus"] == "FINISHED", described
    return sorted(row[0]["eventID"] for row in all_rows(cloudtrail, query_id))


def table_files(root, store):
    folder = pathlib.Path(root) / "stores" / store_id(store) / "table"
    return sorted(p for p in folder.rglob("*.parquet") if "_delta_log" not in p.parts)


def test_without_a_key_service_kms_key_id_is_refused_and_nothing_is_made(server, s3_server, s3_env):
    cloudtrail = server.client()
    for key in ["alias/lake", KEY]:
        message = refused("KmsException", cloudtrail.create_event_data_store, Name="secret", KmsKeyId=key)
        assert "--kms-keys" in message and "KmsKeyId" in message, message
    assert cloudtrail.list_event_data_stores()["EventDataStores"] == []
    plain = cloudtrail.create_event_data_store(Name="plain")["EventDataStoreArn"]
    refused("KmsException", cloudtrail.update_event_data_store, EventDataStore=plain, KmsKeyId="alias/lake")
    assert "KmsKeyId" not in cloudtrail.get_event_data_store(EventDataStore=plain)
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name=REGION,
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="kms-refused-trail")
    refused("KmsException", cloudtrail.create_trail, Name="refused-trail", S3BucketName="kms-refused-trail", KmsKeyId="alias/lake")
    assert cloudtrail.describe_trails()["trailList"] == []
    # The key's form is checked first, as before.
    refused("InvalidKmsKeyIdException", cloudtrail.create_event_data_store, Name="bad", KmsKeyId="key/x")


def test_an_encrypted_store_on_a_local_root(tmp_path):
    keys = key_file(tmp_path)
    server = Server(tmp_path / "lake", "--kms-keys", str(keys)).start()
    try:
        cloudtrail = server.client()
        for key, code in [(MISSING, "KmsKeyNotFoundException"), ("alias/nothing", "KmsKeyNotFoundException"),
                          ("alias/off", "KmsKeyDisabledException"), (DISABLED, "KmsKeyDisabledException")]:
            message = refused(code, cloudtrail.create_event_data_store, Name="refused", KmsKeyId=key)
            assert "KmsKeyId" in message, message
        assert cloudtrail.list_event_data_stores()["EventDataStores"] == []
        assert not (tmp_path / "lake" / "stores").exists() or not any((tmp_path / "lake" / "stores").iterdir())

        secret = cloudtrail.create_event_data_store(Name="secret", KmsKeyId="alias/lake", RetentionPeriod=3653)
        assert secret["KmsKeyId"] == f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/lake"
        secret = secret["EventDataStoreArn"]
        plain = cloudtrail.create_event_data_store(Name="plain", RetentionPeriod=3653)["EventDataStoreArn"]

        # `traillake load` needs the key file to write the store, and then writes what a plain store gets.
        code, output = load(server, "secret", TRAILS)
        assert code != 0 and "--kms-keys" in output, output
        assert "stored" in load(server, "secret", TRAILS, keys=keys)[1]
        assert "stored" in load(server, "plain", TRAILS)[1]
        secret_ids, plain_ids = event_ids(cloudtrail, secret), event_ids(cloudtrail, plain)
        assert len(secret_ids) > 1000 and secret_ids == plain_ids
        # The server's own recorded calls reach the store live, and are flushed into its files when
        # the server stops.
        cloudtrail.list_event_data_stores()
        server.stop()
        server.start()
        cloudtrail = server.client()
        assert event_ids(cloudtrail, secret, where="eventName = 'ListEventDataStores'")

        files = table_files(server.root, secret)
        assert files, "the store has Parquet files"
        for file in files:
            with pytest.raises(Exception) as unreadable:
                pq.read_table(file)
            assert "encrypt" in str(unreadable.value).lower(), unreadable.value
            assert secret_ids[0].encode() not in file.read_bytes(), "no event ID in the clear"
        for file in table_files(server.root, plain):
            assert pq.read_table(file).num_rows > 0

        # The key stays; another one, federation of encrypted files, are refused.
        cloudtrail.update_event_data_store(EventDataStore=secret, KmsKeyId="alias/lake")
        refused("InvalidParameterException", cloudtrail.update_event_data_store, EventDataStore=secret, KmsKeyId=KEY)
        message = refused("OperationNotPermittedException", cloudtrail.enable_federation, EventDataStore=secret,
                          FederationRoleArn=f"arn:aws:iam::{ACCOUNT}:role/readers")
        assert "cannot decrypt" in message, message

        # A key added to a plain store: its old files stay readable, its new ones are encrypted.
        before = set(table_files(server.root, plain))
        assert cloudtrail.update_event_data_store(EventDataStore=plain, KmsKeyId=KEY)["KmsKeyId"] == KEY
        new = write_records(tmp_path / "new.json", records(50, now_utc() - datetime.timedelta(hours=1)))
        assert load(server, "plain", new, keys=keys)[0] == 0
        added = [f for f in table_files(server.root, plain) if f not in before]
        assert added and all(b"PARE" == f.read_bytes()[-4:] for f in added), "encrypted footers (PARE)"
        assert event_ids(cloudtrail, plain) == plain_ids
        assert len(event_ids(cloudtrail, plain, where="eventID LIKE '00000000-0000-0000-0000-%'")) == 50
    finally:
        server.stop()

    # Without the key service, or with the key disabled, the store's files are not read.
    for args in [(), ("--kms-keys", str(key_file(tmp_path, disabled=[KEY])))]:
        server = Server(tmp_path / "lake", *args).start()
        try:
            cloudtrail = server.client()
            message = refused("InsufficientEncryptionPolicyException", cloudtrail.start_query,
                              QueryStatement=f"SELECT count(*) FROM {store_id(secret)}")
            assert ("is disabled" if args else "--kms-keys") in message, message
            assert KEY in message, message
        finally:
            server.stop()


def test_an_encrypted_store_on_an_s3_root(tmp_path, s3_env, s3_server, s3_bucket):
    keys = key_file(tmp_path)
    server = Server(f"s3://{s3_bucket}/lake", "--kms-keys", str(keys), env=s3_env).start()
    try:
        cloudtrail = server.client()
        secret = cloudtrail.create_event_data_store(Name="secret", KmsKeyId=KEY, RetentionPeriod=3653)["EventDataStoreArn"]
        plain = cloudtrail.create_event_data_store(Name="plain", RetentionPeriod=3653)["EventDataStoreArn"]
        assert "stored" in load(server, "secret", TRAILS, keys=keys)[1]
        assert "stored" in load(server, "plain", TRAILS)[1]
        assert event_ids(cloudtrail, secret) == event_ids(cloudtrail, plain)

        s3 = boto3.client("s3", endpoint_url=s3_server, region_name=REGION,
                          aws_access_key_id="testing", aws_secret_access_key="testing")

        def objects(store):
            prefix = f"lake/stores/{store_id(store)}/table/"
            return [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix=prefix).get("Contents", [])]

        encrypted = objects(secret)
        assert any(k.endswith(".parquet") for k in encrypted) and any("_delta_log" in k for k in encrypted)
        for key in encrypted:
            head = s3.head_object(Bucket=s3_bucket, Key=key)
            assert (head.get("ServerSideEncryption"), head.get("SSEKMSKeyId")) == ("aws:kms", KEY), (key, head)
        for key in objects(plain):
            assert s3.head_object(Bucket=s3_bucket, Key=key).get("SSEKMSKeyId") is None, key
        # Readers with the bucket's access read SSE-KMS objects, so federation is allowed here.
        enabled = cloudtrail.enable_federation(EventDataStore=secret, FederationRoleArn=f"arn:aws:iam::{ACCOUNT}:role/r")
        assert enabled["FederationStatus"] == "ENABLED"
    finally:
        server.stop()


def test_a_trail_whose_key_is_disabled_delivers_nothing_until_it_is_enabled(tmp_path, s3_env, s3_server):
    from test_trails import log_files, wait_for

    s3 = boto3.client("s3", endpoint_url=s3_server, region_name=REGION,
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    bucket = f"kms-trail-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)

    def start(keys):
        return Server(tmp_path / "lake", "--trail-delivery-interval", "1s", "--kms-keys", keys, env=s3_env).start()

    server = start(key_file(tmp_path))
    try:
        cloudtrail = server.client()
        cloudtrail.create_trail(Name="encrypted", S3BucketName=bucket, KmsKeyId="alias/trails")
        cloudtrail.start_logging(Name="encrypted")
        wait_for(lambda: log_files(s3, bucket), what="a first log file")
    finally:
        server.stop()
    delivered = set(log_files(s3, bucket))

    server = start(key_file(tmp_path, disabled=[KEY]))
    try:
        cloudtrail = server.client()
        cloudtrail.list_event_data_stores()
        wait_for(lambda: cloudtrail.get_trail_status(Name="encrypted").get("LatestDeliveryError")
                 == "KMS.DisabledException", what="the delivery error")
        assert set(log_files(s3, bucket)) == delivered, "nothing is delivered unencrypted"
    finally:
        server.stop()

    server = start(key_file(tmp_path))
    try:
        cloudtrail = server.client()

        def listed_calls():
            records = [r for rs in log_files(s3, bucket).values() for r in rs]
            return any(r["eventName"] == "ListEventDataStores" for r in records)

        wait_for(listed_calls, what="the calls made while the key was disabled")
        assert "LatestDeliveryError" not in cloudtrail.get_trail_status(Name="encrypted")
        for key in log_files(s3, bucket):
            assert s3.head_object(Bucket=bucket, Key=key)["SSEKMSKeyId"] == KEY
    finally:
        server.stop()


def test_insights_read_an_encrypted_store_and_write_to_an_encrypted_destination(tmp_path):
    import time

    from test_insights import query_rows, week_of_management_events

    keys = key_file(tmp_path)
    server = Server(tmp_path / "lake", "--kms-keys", str(keys), "--insights-interval", "1s").start()
    try:
        cloudtrail = server.client()
        source = cloudtrail.create_event_data_store(Name="secret-source", StartIngestion=False,
                                                    KmsKeyId=KEY)["EventDataStoreArn"]
        destination = cloudtrail.create_event_data_store(
            Name="secret-insights", KmsKeyId=KEY,
            AdvancedEventSelectors=[{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Insight"]}]}],
        )["EventDataStoreArn"]
        events, _ = week_of_management_events(int(time.time() // 60))
        path = write_records(tmp_path / "events.json", events)
        code, output = load(server, store_id(source), path, keys=keys)
        assert code == 0, output
        cloudtrail.put_insight_selectors(EventDataStore=source, InsightsDestination=store_id(destination),
                                         InsightSelectors=[{"InsightType": "ApiCallRateInsight"},
                                                           {"InsightType": "ApiErrorRateInsight"}])
        statement = f"SELECT eventJson FROM {store_id(destination)}"
        deadline = time.time() + 120
        while len(rows := query_rows(cloudtrail, statement)) < 4 and time.time() < deadline:
            time.sleep(1)
        names = sorted({json.loads(row[0]["eventJson"])["insightDetails"]["eventName"] for row in rows})
        assert names == ["CompleteLifecycleAction", "GetRolePolicy"], rows
    finally:
        server.stop()
    files = table_files(server.root, destination)
    assert files and all(f.read_bytes()[-4:] == b"PARE" for f in files), "the Insights events are encrypted"


def test_the_import_command_writes_an_encrypted_store_with_the_key_file(tmp_path, s3_env, s3_server):
    from test_imports import count, grycap_layout, s3_client

    s3 = s3_client(s3_server)
    bucket = f"kms-import-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    for key, body in grycap_layout().items():
        if "/sa-east-1/" in key:
            s3.put_object(Bucket=bucket, Key=key, Body=body)
    keys = key_file(tmp_path)
    server = Server(tmp_path / "lake", "--kms-keys", str(keys), env=s3_env).start()
    arn = server.client().create_event_data_store(Name="imported", KmsKeyId=KEY, StartIngestion=False,
                                                  RetentionPeriod=3653)["EventDataStoreArn"]
    server.stop()
    uri = f"s3://{bucket}/AWSLogs/974349055189/CloudTrail/sa-east-1/"
    command = [binary(), "import", "--root", server.root, "--store", "imported", uri]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=600, env=server.env)
    assert refused.returncode != 0 and "--kms-keys" in refused.stdout + refused.stderr, refused.stdout + refused.stderr
    assert not table_files(server.root, arn), "nothing was written without the key"
    done = subprocess.run(command + ["--kms-keys", str(keys)], capture_output=True, text=True, timeout=600,
                          env=server.env)
    assert "events stored" in done.stdout + done.stderr, done.stdout + done.stderr
    files = table_files(server.root, arn)
    assert files and all(f.read_bytes()[-4:] == b"PARE" for f in files)
    server.start()
    try:
        assert count(server.client(), store_id(arn)) > 0
    finally:
        server.stop()
