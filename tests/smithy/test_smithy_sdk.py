"""AWS's Smithy-based SDK for Python (`aws-sdk-cloudtrail`), unmodified and pointed at the server by
its endpoint only: it sends X-Amz-Target with the Smithy prefix (CloudTrail_20131101.Op), signs with
SigV4 and reads an error's text from `Message`. The server is the real binary, started by the
fixtures of tests/api/conftest.py on a fresh root; events come from `traillake load`."""

import asyncio
import importlib.util
import json
import pathlib
import subprocess

import pytest
from aws_sdk_cloudtrail.client import (
    AddTagsInput,
    AsyncCloudTrailClient,
    CreateChannelInput,
    CreateEventDataStoreInput,
    DeleteChannelInput,
    DescribeQueryInput,
    GetEventDataStoreInput,
    GetQueryResultsInput,
    ListChannelsInput,
    ListEventDataStoresInput,
    ListTagsInput,
    StartQueryInput,
    UpdateEventDataStoreInput,
)
from aws_sdk_cloudtrail.config import AsyncCloudTrailConfig
from aws_sdk_cloudtrail.models import (
    AdvancedEventSelector,
    AdvancedFieldSelector,
    Destination,
    EventDataStoreNotFoundException,
    InvalidKmsKeyIdException,
    InvalidParameterException,
    KmsException,
    Tag,
)

HERE = pathlib.Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("api_conftest", HERE.parent / "api" / "conftest.py")
api = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(api)
EVENTS = 1200


async def cloudtrail(url):
    config = await AsyncCloudTrailConfig.resolve(
        endpoint_uri=url, region=api.REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )
    return AsyncCloudTrailClient(config=config)


@pytest.fixture
def lake(tmp_path):
    """A server on a root whose store `smithy-store` holds EVENTS events loaded by `traillake load`."""
    root = tmp_path / "lake"
    first = api.Server(root).start()
    # Not ingesting live events: it holds exactly the loaded ones, not the server's own calls.
    arn = first.client().create_event_data_store(Name="smithy-store", RetentionPeriod=3653, StartIngestion=False,
                                                 TerminationProtectionEnabled=False)["EventDataStoreArn"]
    first.stop()
    records = [
        {"eventVersion": "1.08", "eventTime": f"2024-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
         "eventSource": "iam.amazonaws.com", "eventName": "CreateUser" if i % 4 == 0 else "ListUsers",
         "awsRegion": api.REGION, "eventID": f"00000000-0000-4000-8000-{i:012d}", "eventType": "AwsApiCall",
         "userIdentity": {"type": "IAMUser", "accountId": api.ACCOUNT}, "recipientAccountId": api.ACCOUNT}
        for i in range(EVENTS)
    ]
    file = tmp_path / "records.json"
    file.write_text(json.dumps({"Records": records}))
    subprocess.run([api.binary(), "load", "--root", str(root), "--store", "smithy-store", str(file)], check=True,
                   capture_output=True)
    server = api.Server(root).start()
    yield server, arn
    server.stop()


def test_store_lifecycle_tags_and_typed_errors(lake):
    server, arn = lake

    async def run():
        client = await cloudtrail(server.url)
        got = await client.get_event_data_store(GetEventDataStoreInput(event_data_store=arn))
        assert got.name == "smithy-store" and got.status == "STOPPED_INGESTION" and got.retention_period == 3653
        listed = await client.list_event_data_stores(ListEventDataStoresInput())
        assert [(s.event_data_store_arn, s.status) for s in listed.event_data_stores] == [(arn, "STOPPED_INGESTION")]
        # No key service (--kms-keys) on this server: a key is refused with its modelled error.
        with pytest.raises(KmsException) as raised:
            await client.update_event_data_store(UpdateEventDataStoreInput(event_data_store=arn, kms_key_id="alias/smithy"))
        assert "--kms-keys" in raised.value.message
        await client.add_tags(AddTagsInput(resource_id=arn, tags_list=[Tag(key="team", value="sec")]))
        tags = await client.list_tags(ListTagsInput(resource_id_list=[arn]))
        assert [(t.key, t.value) for t in tags.resource_tag_list[0].tags_list] == [("team", "sec")]

        missing = "00000000-0000-4000-8000-000000000000"
        with pytest.raises(EventDataStoreNotFoundException) as raised:
            await client.get_event_data_store(GetEventDataStoreInput(event_data_store=missing))
        assert missing in raised.value.message
        with pytest.raises(InvalidKmsKeyIdException) as raised:
            await client.create_event_data_store(CreateEventDataStoreInput(name="bad-key", kms_key_id="x"))
        assert "KmsKeyId" in raised.value.message
        with pytest.raises(InvalidParameterException) as raised:
            await client.create_event_data_store(CreateEventDataStoreInput(name="ab"))
        assert "Name" in raised.value.message
        listed = await client.list_event_data_stores(ListEventDataStoresInput())
        assert len(listed.event_data_stores) == 1, "refused calls created nothing"

    asyncio.run(run())


def test_query_results_paged_over_more_than_1000_rows(lake):
    server, arn = lake

    async def run():
        client = await cloudtrail(server.url)
        store = arn.rsplit("/", 1)[1]
        started = await client.start_query(StartQueryInput(query_statement=f"SELECT eventID, eventName FROM {store}"))
        for _ in range(300):
            described = await client.describe_query(DescribeQueryInput(query_id=started.query_id))
            if described.query_status not in ("QUEUED", "RUNNING"):
                break
            await asyncio.sleep(0.1)
        assert described.query_status == "FINISHED", described.error_message
        rows, token, pages = [], None, 0
        while True:
            page = await client.get_query_results(GetQueryResultsInput(query_id=started.query_id, next_token=token))
            rows.extend(page.query_result_rows)
            pages += 1
            token = page.next_token
            if not token:
                break
        assert len(rows) == EVENTS and pages >= 2
        assert len({row[0]["eventID"] for row in rows}) == EVENTS
        assert sum(1 for row in rows if row[1]["eventName"] == "CreateUser") == EVENTS // 4

    asyncio.run(run())


def test_channels(lake):
    server, _ = lake

    async def run():
        client = await cloudtrail(server.url)
        selectors = [AdvancedEventSelector(field_selectors=[AdvancedFieldSelector(field="eventCategory", equals=["ActivityAuditLog"])])]
        store = await client.create_event_data_store(CreateEventDataStoreInput(
            name="smithy-channel-store", multi_region_enabled=False, advanced_event_selectors=selectors))
        channel = await client.create_channel(CreateChannelInput(
            name="smithy-channel", source="Custom",
            destinations=[Destination(type="EVENT_DATA_STORE", location=store.event_data_store_arn)]))
        listed = await client.list_channels(ListChannelsInput())
        assert [c.channel_arn for c in listed.channels] == [channel.channel_arn]
        with pytest.raises(InvalidParameterException):
            await client.update_event_data_store(UpdateEventDataStoreInput(
                event_data_store=store.event_data_store_arn, multi_region_enabled=True))
        await client.delete_channel(DeleteChannelInput(channel=channel.channel_arn))

    asyncio.run(run())


def test_an_import_from_motos_s3_server(tmp_path):
    """Trail log files on moto's S3 server (put with boto3), imported through the Smithy SDK."""
    import gzip
    import socket
    import time

    import boto3
    from aws_sdk_cloudtrail.client import GetImportInput, StartImportInput
    from aws_sdk_cloudtrail.models import ImportSource, S3ImportSource

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    moto = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    s3_url = f"http://127.0.0.1:{port}"
    try:
        s3 = boto3.client("s3", endpoint_url=s3_url, region_name=api.REGION, aws_access_key_id="testing",
                          aws_secret_access_key="testing")
        for attempt in range(100):
            try:
                s3.create_bucket(Bucket="smithy-trail")
                break
            except Exception:
                time.sleep(0.2)
        day = f"AWSLogs/{api.ACCOUNT}/CloudTrail/us-east-1/2024/03/01/"
        for file in range(2):
            records = [{"eventVersion": "1.08", "eventTime": f"2024-03-01T0{file}:00:{i % 60:02d}Z",
                        "eventSource": "s3.amazonaws.com", "eventName": "ListBuckets", "awsRegion": api.REGION,
                        "eventID": f"20000000-0000-4000-8000-{file * 100 + i:012d}", "eventType": "AwsApiCall",
                        "userIdentity": {"type": "IAMUser", "accountId": api.ACCOUNT}} for i in range(100)]
            key = f"{day}{api.ACCOUNT}_CloudTrail_us-east-1_20240301T0{file}00Z_sm{file}.json.gz"
            s3.put_object(Bucket="smithy-trail", Key=key, Body=gzip.compress(json.dumps({"Records": records}).encode()))
        env = {"AWS_ENDPOINT_URL_S3": s3_url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_REGION": api.REGION}
        server = api.Server(tmp_path / "lake", env=env).start()
        try:
            arn = server.client().create_event_data_store(Name="smithy-import", RetentionPeriod=3653)["EventDataStoreArn"]

            async def run():
                client = await cloudtrail(server.url)
                source = ImportSource(s3=S3ImportSource(
                    s3_location_uri="s3://smithy-trail", s3_bucket_region=api.REGION,
                    s3_bucket_access_role_arn=f"arn:aws:iam::{api.ACCOUNT}:role/import"))
                started = await client.start_import(StartImportInput(destinations=[arn], import_source=source))
                for _ in range(600):
                    done = await client.get_import(GetImportInput(import_id=started.import_id))
                    if done.import_status in ("COMPLETED", "FAILED", "STOPPED"):
                        break
                    await asyncio.sleep(0.1)
                assert done.import_status == "COMPLETED", done
                assert done.import_statistics.files_completed == 2 and done.import_statistics.events_completed == 200

            asyncio.run(run())
        finally:
            server.stop()
    finally:
        moto.terminate()
        moto.wait(timeout=10)
