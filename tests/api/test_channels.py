"""Channels and PutAuditEvents through boto3's `cloudtrail` and `cloudtrail-data` clients against
the running server: the channel lifecycle and its errors, tags and resource policies on channels,
PutAuditEvents with per-event failures and request-level errors, a policy that lets a second
account in (with its external ID) and keeps a third out, the ingested events found through
`eventData.*` columns by the okta and non-AWS lake samples, and no acknowledged event lost or
stored twice when the server is killed while 8 clients send."""

import base64
import hashlib
import json
import pathlib
import signal
import threading
import time

import botocore.exceptions
import pytest

from conftest import ACCOUNT, REGION, REPO, Server, error_code, store_id
from test_lake_samples import substitute
from test_queries import all_rows, wait

SAMPLES = REPO.parent / "shared/queries/lake-samples"
PARTNER = "111122223333"
STRANGER = "444455556666"


def activity_store(cloudtrail, name, **extra):
    selectors = [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["ActivityAuditLog"]}]}]
    arn = cloudtrail.create_event_data_store(
        Name=name, AdvancedEventSelectors=selectors, MultiRegionEnabled=False, RetentionPeriod=3653, **extra
    )["EventDataStoreArn"]
    return arn


def channel(cloudtrail, name, store_arn, source="Custom"):
    return cloudtrail.create_channel(
        Name=name, Source=source, Destinations=[{"Type": "EVENT_DATA_STORE", "Location": store_arn}]
    )["ChannelArn"]


def event_data(index, time_text="2025-01-02T03:04:05Z", **fields):
    data = {
        "version": "1.0",
        "userIdentity": {"type": "CustomUser", "principalId": f"user-{index}", "details": {"alternateId": f"u{index}@example.com"}},
        "eventSource": "app.example.com",
        "eventName": "Login",
        "eventTime": time_text,
        "UID": f"uid-{index}",
        "recipientAccountId": ACCOUNT,
    }
    data.update(fields)
    return json.dumps(data)


def put(data_client, channel_arn, events, **extra):
    return data_client.put_audit_events(channelArn=channel_arn, auditEvents=events, **extra)


@pytest.fixture
def data(server):
    return server.client("cloudtrail-data")


def query(cloudtrail, sql):
    query_id = cloudtrail.start_query(QueryStatement=sql)["QueryId"]
    described = wait(cloudtrail, query_id)
    assert described["QueryStatus"] == "FINISHED", described
    return all_rows(cloudtrail, query_id)


def test_channel_lifecycle_tags_and_listing(server, cloudtrail):
    store_arn = activity_store(cloudtrail, "activity")
    second_arn = activity_store(cloudtrail, "activity-2")
    created = cloudtrail.create_channel(
        Name="app", Source="Custom", Destinations=[{"Type": "EVENT_DATA_STORE", "Location": store_id(store_arn)}],
        Tags=[{"Key": "team", "Value": "security"}],
    )
    arn = created["ChannelArn"]
    assert arn.startswith(f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:channel/")
    assert created["Destinations"] == [{"Type": "EVENT_DATA_STORE", "Location": store_arn}]
    assert created["Tags"] == [{"Key": "team", "Value": "security"}]

    got = cloudtrail.get_channel(Channel=store_id(arn).upper())
    assert (got["ChannelArn"], got["Name"], got["Source"]) == (arn, "app", "Custom")
    assert got["SourceConfig"]["AdvancedEventSelectors"][0]["FieldSelectors"][0]["Equals"] == ["ActivityAuditLog"]
    assert got["IngestionStatus"] == {}

    github = channel(cloudtrail, "github", second_arn, source="GitHub")
    first_page = cloudtrail.list_channels(MaxResults=1)
    assert first_page["Channels"] == [{"ChannelArn": arn, "Name": "app"}]
    second_page = cloudtrail.list_channels(MaxResults=1, NextToken=first_page["NextToken"])
    assert second_page["Channels"] == [{"ChannelArn": github, "Name": "github"}] and "NextToken" not in second_page

    updated = cloudtrail.update_channel(Channel=arn, Name="app-renamed", Destinations=[{"Type": "EVENT_DATA_STORE", "Location": second_arn}])
    assert updated["Name"] == "app-renamed" and updated["Destinations"][0]["Location"] == second_arn

    cloudtrail.add_tags(ResourceId=arn, TagsList=[{"Key": "env", "Value": "prod"}])
    cloudtrail.remove_tags(ResourceId=arn, TagsList=[{"Key": "team"}])
    tags = cloudtrail.list_tags(ResourceIdList=[arn, store_arn])["ResourceTagList"]
    assert tags == [{"ResourceId": arn, "TagsList": [{"Key": "env", "Value": "prod"}]}, {"ResourceId": store_arn, "TagsList": []}]

    cloudtrail.update_event_data_store(EventDataStore=second_arn, TerminationProtectionEnabled=False)
    with pytest.raises(cloudtrail.exceptions.ChannelExistsForEDSException):
        cloudtrail.delete_event_data_store(EventDataStore=second_arn)
    cloudtrail.delete_channel(Channel=arn)
    cloudtrail.delete_channel(Channel=github)
    with pytest.raises(cloudtrail.exceptions.ChannelNotFoundException):
        cloudtrail.get_channel(Channel=arn)
    cloudtrail.delete_event_data_store(EventDataStore=second_arn)
    assert cloudtrail.list_channels()["Channels"] == []


def test_channel_errors(tmp_path):
    server = Server(tmp_path / "lake", "--max-channels", "2").start()
    try:
        cloudtrail = server.client()
        store_arn = activity_store(cloudtrail, "activity")
        arn = channel(cloudtrail, "app", store_arn)
        cases = [
            (dict(Name="app", Source="GitHub"), "ChannelAlreadyExistsException"),
            (dict(Name="other", Source="Custom"), "ChannelAlreadyExistsException"),
            (dict(Name="other", Source="NotAPartner"), "InvalidSourceException"),
            (dict(Name="bad name!", Source="GitHub"), "InvalidParameterException"),
        ]
        for request, code in cases:
            with pytest.raises(botocore.exceptions.ClientError) as raised:
                cloudtrail.create_channel(Destinations=[{"Type": "EVENT_DATA_STORE", "Location": store_arn}], **request)
            assert error_code(raised) == code, request

        trails = cloudtrail.create_event_data_store(Name="trails")["EventDataStoreArn"]
        multi = cloudtrail.create_event_data_store(
            Name="multi", AdvancedEventSelectors=[{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["ActivityAuditLog"]}]}]
        )["EventDataStoreArn"]
        deleted = activity_store(cloudtrail, "deleted", TerminationProtectionEnabled=False)
        cloudtrail.delete_event_data_store(EventDataStore=deleted)
        unknown = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:eventdatastore/00000000-0000-4000-8000-000000000000"
        for location, code in [
            (trails, "InvalidEventDataStoreCategoryException"),
            (multi, "InvalidParameterException"),
            (deleted, "InactiveEventDataStoreException"),
            (unknown, "EventDataStoreNotFoundException"),
            (f"arn:aws:cloudtrail:{REGION}:{PARTNER}:eventdatastore/abc", "EventDataStoreARNInvalidException"),
        ]:
            with pytest.raises(botocore.exceptions.ClientError) as raised:
                cloudtrail.create_channel(Name="other", Source="GitHub", Destinations=[{"Type": "EVENT_DATA_STORE", "Location": location}])
            assert error_code(raised) == code, location
            with pytest.raises(botocore.exceptions.ClientError) as raised:
                cloudtrail.update_channel(Channel=arn, Destinations=[{"Type": "EVENT_DATA_STORE", "Location": location}])
            assert error_code(raised) == code, location

        channel(cloudtrail, "second", store_arn, source="GitHub")
        with pytest.raises(cloudtrail.exceptions.ChannelMaxLimitExceededException):
            channel(cloudtrail, "third", store_arn, source="Snyk")
        with pytest.raises(cloudtrail.exceptions.ChannelAlreadyExistsException):
            cloudtrail.update_channel(Channel=arn, Name="second")
        for reference, code in [
            ("not/an/id", "ChannelARNInvalidException"),
            (f"arn:aws:cloudtrail:{REGION}:{PARTNER}:channel/{store_id(arn)}", "ChannelARNInvalidException"),
            (store_arn, "ChannelARNInvalidException"),
            ("00000000-0000-4000-8000-000000000000", "ChannelNotFoundException"),
        ]:
            for call in (cloudtrail.get_channel, cloudtrail.delete_channel):
                with pytest.raises(botocore.exceptions.ClientError) as raised:
                    call(Channel=reference)
                assert error_code(raised) == code, reference
        assert cloudtrail.get_channel(Channel=arn)["Name"] == "app", "nothing was changed by the refused requests"
        assert cloudtrail.get_channel(Channel=arn)["Destinations"][0]["Location"] == store_arn
    finally:
        server.stop()


def test_put_audit_events_stores_the_good_events_and_reports_the_others(server, cloudtrail, data):
    store_arn = activity_store(cloudtrail, "activity")
    arn = channel(cloudtrail, "app", store_arn)
    good = event_data(1)
    checksum = base64.b64encode(hashlib.sha256(good.encode()).digest()).decode()
    events = [
        {"id": "good-1", "eventData": good, "eventDataChecksum": checksum},
        {"id": "good-2", "eventData": event_data(2, sourceIPAddress="2001:db8::1")},
        {"id": "bad-checksum", "eventData": event_data(3), "eventDataChecksum": checksum},
        {"id": "no-uid", "eventData": json.dumps({k: v for k, v in json.loads(event_data(4)).items() if k != "UID"})},
        {"id": "too-long", "eventData": event_data(5, errorCode="e" * 257)},
        {"id": "not-json", "eventData": "{oops"},
        {"id": "bad-time", "eventData": event_data(6, time_text="yesterday")},
        {"id": "other-recipient", "eventData": event_data(7, recipientAccountId=PARTNER)},
        {"id": "bad id!", "eventData": event_data(8)},
    ]
    response = put(data, arn, events)
    assert [e["id"] for e in response["successful"]] == ["good-1", "good-2"]
    assert all(len(e["eventID"]) == 36 for e in response["successful"])
    failed = {e["id"]: e["errorCode"] for e in response["failed"]}
    assert failed == {
        "bad-checksum": "InvalidChecksum",
        "no-uid": "FieldNotFound",
        "too-long": "FieldTooLong",
        "not-json": "InvalidData",
        "bad-time": "InvalidData",
        "other-recipient": "InvalidRecipient",
        "bad id!": "InvalidData",
    }
    assert all(e["errorMessage"] for e in response["failed"])

    rows = query(cloudtrail, f"SELECT eventID, eventData.uid, metadata.channelArn, eventCategory FROM {store_id(store_arn)} ORDER BY eventData.uid")
    stored = [{k: v for column in row for k, v in column.items()} for row in rows]
    assert [r["uid"] for r in stored] == ["uid-1", "uid-2"]
    assert {r["eventID"] for r in stored} == {e["eventID"] for e in response["successful"]}
    assert all(r["channelArn"] == arn and r["eventCategory"] == "ActivityAuditLog" for r in stored)

    status = cloudtrail.get_channel(Channel=arn)["IngestionStatus"]
    assert status["LatestIngestionSuccessEventID"] == response["successful"][-1]["eventID"]
    assert status["LatestIngestionErrorCode"] == "InvalidData"
    assert "LatestIngestionAttemptTime" in status and "LatestIngestionSuccessTime" in status

    unknown_channel = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:channel/00000000-0000-4000-8000-000000000000"
    for channel_arn, request_events, code in [
        (arn, [{"id": "same", "eventData": good}, {"id": "same", "eventData": good}], "DuplicatedAuditEventId"),
        ("abc/def", [{"id": "a", "eventData": good}], "InvalidChannelARN"),
        (store_arn, [{"id": "a", "eventData": good}], "InvalidChannelARN"),
        (unknown_channel, [{"id": "a", "eventData": good}], "ChannelNotFound"),
        (arn, [{"id": f"e{i}", "eventData": good} for i in range(101)], "ValidationException"),
        (arn, [{"id": "big", "eventData": event_data(9, requestParameters={"x": "y" * (1024 * 1024)})}], "ValidationException"),
    ]:
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            put(data, channel_arn, request_events)
        assert error_code(raised) == code, (channel_arn, code)
        assert raised.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == code
    assert len(query(cloudtrail, f"SELECT eventID FROM {store_id(store_arn)}")) == 2, "refused requests stored nothing"

    stopped = activity_store(cloudtrail, "stopped", StartIngestion=False)
    stopped_channel = channel(cloudtrail, "quiet", stopped, source="GitHub")
    response = put(data, stopped_channel, [{"id": "a", "eventData": event_data(10)}])
    # A destination created stopped refuses events, saying so, until its ingestion is started.
    assert response["successful"] == [] and response["failed"][0]["errorCode"] == "InvalidRecipient"
    assert store_id(stopped) in response["failed"][0]["errorMessage"]
    assert "STOPPED_INGESTION" in response["failed"][0]["errorMessage"]
    cloudtrail.start_event_data_store_ingestion(EventDataStore=stopped)
    response = put(data, stopped_channel, [{"id": "b", "eventData": event_data(11)}])
    assert [e["id"] for e in response["successful"]] == ["b"] and response["failed"] == []
    # Events still in the write-ahead log count as scanned.
    query_id = cloudtrail.start_query(QueryStatement=f"SELECT eventID FROM {store_id(stopped)}")["QueryId"]
    statistics = wait(cloudtrail, query_id)["QueryStatistics"]
    assert statistics["EventsMatched"] == 1 and statistics["EventsScanned"] == 1, statistics
    # A destination cannot become multi-Region while a channel delivers to it.
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        cloudtrail.update_event_data_store(EventDataStore=stopped, MultiRegionEnabled=True)
    assert error_code(raised) == "InvalidParameterException", raised.value.response
    assert cloudtrail.get_event_data_store(EventDataStore=stopped)["MultiRegionEnabled"] is False


def test_resource_policy_lets_a_partner_in_and_keeps_others_out(server, cloudtrail, data):
    store_arn = activity_store(cloudtrail, "activity")
    arn = channel(cloudtrail, "app", store_arn)
    partner = server.client("cloudtrail-data", access_key=PARTNER)
    stranger = server.client("cloudtrail-data", access_key=STRANGER)
    partner_event = lambda i: [{"id": f"p{i}", "eventData": event_data(i)}]

    with pytest.raises(partner.exceptions.ChannelInsufficientPermission):
        put(partner, arn, partner_event(1))
    with pytest.raises(cloudtrail.exceptions.ResourcePolicyNotFoundException):
        cloudtrail.get_resource_policy(ResourceArn=arn)

    policy = json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "ChannelPolicy", "Effect": "Allow",
            "Principal": {"AWS": [f"arn:aws:iam::{PARTNER}:root"]},
            "Action": "cloudtrail-data:PutAuditEvents", "Resource": arn,
            "Condition": {"StringEquals": {"cloudtrail:ExternalId": "partner-ext-42"}},
        }],
    })
    put_response = cloudtrail.put_resource_policy(ResourceArn=arn, ResourcePolicy=policy)
    assert put_response["ResourceArn"] == arn and json.loads(put_response["ResourcePolicy"]) == json.loads(policy)
    assert cloudtrail.get_resource_policy(ResourceArn=arn)["ResourcePolicy"] == policy

    assert len(put(partner, arn, partner_event(2), externalId="partner-ext-42")["successful"]) == 1
    for client, extra in [(partner, {}), (partner, {"externalId": "wrong-id"}), (stranger, {"externalId": "partner-ext-42"})]:
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            put(client, arn, partner_event(3), **extra)
        assert error_code(raised) == "ChannelInsufficientPermission"
    assert len(put(data, arn, partner_event(4))["successful"]) == 1, "the owner needs no external ID"

    with pytest.raises(botocore.exceptions.ClientError) as raised:
        server.client(access_key=PARTNER).get_channel(Channel=arn)
    assert error_code(raised) == "ChannelARNInvalidException", "another account cannot read the channel"

    bad_policies = [
        "not json",
        json.dumps({"Statement": []}),
        policy.replace("cloudtrail-data:PutAuditEvents", "cloudtrail:StartQuery"),
        policy.replace(f"\"Resource\": \"{arn}\"", "\"Resource\": \"*\""),
        policy.replace(f"arn:aws:iam::{PARTNER}:root", f"arn:aws:iam::{PARTNER}:role/x"),
    ]
    for text in bad_policies:
        with pytest.raises(cloudtrail.exceptions.ResourcePolicyNotValidException):
            cloudtrail.put_resource_policy(ResourceArn=arn, ResourcePolicy=text)
    assert cloudtrail.get_resource_policy(ResourceArn=arn)["ResourcePolicy"] == policy, "a refused policy changes nothing"

    unknown = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:channel/00000000-0000-4000-8000-000000000000"
    for resource, code in [(unknown, "ResourceNotFoundException"), ("not-an-arn", "ResourceARNNotValidException"),
                           (f"arn:aws:cloudtrail:{REGION}:{PARTNER}:channel/x", "ResourceARNNotValidException")]:
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            cloudtrail.get_resource_policy(ResourceArn=resource)
        assert error_code(raised) == code, resource

    cloudtrail.delete_resource_policy(ResourceArn=arn)
    with pytest.raises(partner.exceptions.ChannelInsufficientPermission):
        put(partner, arn, partner_event(5), externalId="partner-ext-42")
    with pytest.raises(cloudtrail.exceptions.ResourcePolicyNotFoundException):
        cloudtrail.delete_resource_policy(ResourceArn=arn)


def test_lake_samples_find_ingested_events_through_event_data(server, cloudtrail, data):
    store_arn = activity_store(cloudtrail, "okta")
    trails = cloudtrail.create_event_data_store(Name="trails", RetentionPeriod=3653)["EventDataStoreArn"]
    arn = channel(cloudtrail, "okta", store_arn, source="OktaSystemLogEvents")
    okta = lambda i, when: {
        "id": f"okta-{i}",
        "eventData": event_data(i, time_text=when, eventSource="okta.system-log-events", eventName="user.session.start",
                                userIdentity={"type": "User", "principalId": f"p{i}",
                                              "details": {"alternateId": f"user{i}@example.com", "displayName": f"User {i}"}}),
    }
    google = {"id": "gcp-1", "eventData": event_data(9, time_text="2023-06-29T10:00:00Z", sourceIPAddress="10.1.2.3",
                                                      userIdentity={"type": "GoogleCloudUser", "principalId": "g1"})}
    events = [okta(1, "2023-01-31T10:00:00Z"), okta(2, "2022-09-08T22:23:00Z"), okta(3, "2023-03-01T00:00:00Z"), google]
    assert len(put(data, arn, events)["successful"]) == 4

    def run(name):
        sql = substitute((SAMPLES / name).read_text(), store_id(trails), store_id(store_arn), store_id(trails))
        return [{k: v for column in row for k, v in column.items()} for row in query(cloudtrail, sql)]

    first = run("okta-system-log-events__README__1.sql")
    assert first == [{"eventTime": "2023-01-31T10:00:00Z", "eventSource": "okta.system-log-events",
                      "eventName": "user.session.start", "user": "user1@example.com", "displayName": "User 1"}]
    assert [row["user"] for row in run("okta-system-log-events__README__2.sql")] == ["user2@example.com"]
    non_aws = run("ingesting-non-aws-events__README__1.sql")
    assert len(non_aws) == 1 and non_aws[0]["principalId"] == "g1" and non_aws[0]["sourceIpAddress"] == "10.1.2.3"


def test_no_acknowledged_event_is_lost_or_doubled_by_a_kill(tmp_path):
    server = Server(tmp_path / "lake").start()
    cloudtrail = server.client()
    store_arn = activity_store(cloudtrail, "activity")
    arn = channel(cloudtrail, "app", store_arn)
    acknowledged, errors, stop = [], [], threading.Event()

    def send(worker):
        client = server.client("cloudtrail-data")
        batch = 0
        while not stop.is_set():
            events = [{"id": f"w{worker}-{batch}-{i}", "eventData": event_data(i)} for i in range(100)]
            batch += 1
            try:
                response = put(client, arn, events)
            except (botocore.exceptions.ClientError, botocore.exceptions.EndpointConnectionError,
                    botocore.exceptions.ConnectionClosedError, botocore.exceptions.ReadTimeoutError):
                return
            except Exception as error:  # noqa: BLE001 - anything else is a failure of the test
                errors.append(repr(error))
                return
            acknowledged.extend(e["eventID"] for e in response["successful"])

    workers = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for worker in workers:
        worker.start()
    time.sleep(4)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=20)
    stop.set()
    for worker in workers:
        worker.join(timeout=60)
    assert not errors, errors
    assert len(acknowledged) >= 1000, f"only {len(acknowledged)} events were acknowledged before the kill"
    print(f"\n{len(acknowledged)} events acknowledged before the kill")

    restarted = Server(tmp_path / "lake").start()
    try:
        cloudtrail = restarted.client()
        rows = query(cloudtrail, f"SELECT eventID FROM {store_id(store_arn)}")
        stored = [row[0]["eventID"] for row in rows]
        assert len(stored) == len(set(stored)), "an event is stored twice"
        missing = set(acknowledged) - set(stored)
        assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged events are missing"
    finally:
        restarted.stop()


def test_ingestion_status_outlives_a_restart(tmp_path):
    server = Server(tmp_path / "lake").start()
    try:
        cloudtrail = server.client()
        arn = channel(cloudtrail, "app", activity_store(cloudtrail, "activity"))
        response = put(server.client("cloudtrail-data"), arn, [{"id": "good", "eventData": event_data(1)}, {"id": "bad", "eventData": "[]"}])
        assert [e["errorCode"] for e in response["failed"]] == ["InvalidData"]
        before = cloudtrail.get_channel(Channel=arn)["IngestionStatus"]
        assert before["LatestIngestionSuccessEventID"] == response["successful"][0]["eventID"]
    finally:
        server.stop()

    # A stop keeps it; so does a kill once the status was kept (every 5 seconds when it changed).
    server = Server(tmp_path / "lake").start()
    try:
        cloudtrail = server.client()
        assert cloudtrail.get_channel(Channel=arn)["IngestionStatus"] == before
        response = put(server.client("cloudtrail-data"), arn, [{"id": "again", "eventData": event_data(2)}])
        time.sleep(6)
        after = cloudtrail.get_channel(Channel=arn)["IngestionStatus"]
        assert after["LatestIngestionSuccessEventID"] == response["successful"][0]["eventID"]
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=30)
    finally:
        server.stop()
    server = Server(tmp_path / "lake").start()
    try:
        assert server.client().get_channel(Channel=arn)["IngestionStatus"] == after
    finally:
        server.stop()
