"""Account activity: every call to the server is recorded as a CloudTrail event, found again by
LookupEvents (boto3 and gRPC) in the caller's Event history, and taken by the CloudTrail stores
whose advanced event selectors match it, as a computation over the raw records says."""

import datetime
import json
import time

import boto3
import botocore.config
import botocore.exceptions
import grpc
import pytest

from conftest import ACCOUNT, REGION, Server, error_code, store_id
from test_channels import activity_store, channel, event_data, put, query
from test_grpc import pb, rpc_error, target  # noqa: F401 (pb is a fixture)

WORKLOAD_KEY = "AKIAWORKLOAD00000001"


def lookup(client, **kwargs):
    """One LookupEvents call, waiting out the 2 calls per second the server allows."""
    while True:
        try:
            return client.lookup_events(**kwargs)
        except botocore.exceptions.ClientError as error:
            if error.response["Error"]["Code"] != "ThrottlingException":
                raise
            time.sleep(0.5)


def lookup_all(client, **kwargs):
    """Every event of a lookup, page after page."""
    events, token = [], None
    while True:
        page = lookup(client, **kwargs, **({"NextToken": token} if token else {}))
        events.extend(page["Events"])
        token = page.get("NextToken")
        if not token:
            return events


def recorded(client, access_key, count, timeout=30):
    """The records of the calls made with `access_key`, once `count` of them are stored."""
    deadline = time.monotonic() + timeout
    while True:
        events = lookup_all(client, LookupAttributes=[{"AttributeKey": "AccessKeyId", "AttributeValue": access_key}])
        if len(events) >= count or time.monotonic() > deadline:
            assert len(events) == count, [event["EventName"] for event in events]
            return [json.loads(event["CloudTrailEvent"]) for event in events]
        time.sleep(0.2)


def workload(server):
    """A dozen calls of every kind with the workload key: writes, reads and refusals; returns how
    many calls were made."""
    client = server.client(access_key=WORKLOAD_KEY)
    created = client.create_event_data_store(Name="workload-store", RetentionPeriod=30)["EventDataStoreArn"]
    client.get_event_data_store(EventDataStore=created)
    client.list_event_data_stores()
    client.add_tags(ResourceId=created, TagsList=[{"Key": "team", "Value": "sec"}])
    client.list_tags(ResourceIdList=[created])
    client.update_event_data_store(EventDataStore=created, RetentionPeriod=60)
    with pytest.raises(botocore.exceptions.ClientError):
        client.get_event_data_store(EventDataStore="00000000-0000-4000-8000-000000000000")
    with pytest.raises(botocore.exceptions.ClientError):
        client.create_event_data_store(Name="workload-store")
    client.stop_event_data_store_ingestion(EventDataStore=created)
    client.start_event_data_store_ingestion(EventDataStore=created)
    client.list_channels()
    return 11


def test_calls_are_recorded_as_cloudtrail_writes_them(server, cloudtrail):
    calls = workload(server)
    records = recorded(cloudtrail, WORKLOAD_KEY, calls)
    assert sorted(record["eventName"] for record in records) == sorted([
        "CreateEventDataStore", "GetEventDataStore", "ListEventDataStores", "AddTags", "ListTags",
        "UpdateEventDataStore", "GetEventDataStore", "CreateEventDataStore", "StopEventDataStoreIngestion",
        "StartEventDataStoreIngestion", "ListChannels",
    ])
    times = [record["eventTime"] for record in records]
    assert times == sorted(times, reverse=True), "newest first"
    for record in records:
        assert record["eventVersion"] == "1.11" and record["eventSource"] == "cloudtrail.amazonaws.com"
        assert record["eventType"] == "AwsApiCall" and record["eventCategory"] == "Management"
        assert record["managementEvent"] is True and record["recipientAccountId"] == ACCOUNT
        assert record["awsRegion"] == REGION and record["sourceIPAddress"] == "127.0.0.1"
        assert record["userAgent"].startswith("Boto3/")
        assert record["userIdentity"] == {"type": "IAMUser", "principalId": WORKLOAD_KEY, "accountId": ACCOUNT, "accessKeyId": WORKLOAD_KEY}
        assert record["readOnly"] is record["eventName"].startswith(("Get", "List"))

    def one(name, failed=False):
        found = [r for r in records if r["eventName"] == name and ("errorCode" in r) == failed]
        assert len(found) == 1, (name, failed)
        return found[0]

    created = one("CreateEventDataStore")
    assert created["requestParameters"] == {"name": "workload-store", "retentionPeriod": 30}
    assert created["responseElements"]["name"] == "workload-store"
    arn = created["responseElements"]["eventDataStoreArn"]
    assert created["resources"] == [{"accountId": ACCOUNT, "type": "AWS::CloudTrail::EventDataStore", "ARN": arn}]
    read = one("GetEventDataStore")
    assert read["responseElements"] is None and read["requestParameters"] == {"eventDataStore": arn}, "reads record no response"
    refused = one("CreateEventDataStore", failed=True)
    assert refused["errorCode"] == "EventDataStoreAlreadyExistsException" and refused["responseElements"] is None
    assert "workload-store" in refused["errorMessage"]
    assert one("GetEventDataStore", failed=True)["errorCode"] == "EventDataStoreNotFoundException"
    assert one("StartEventDataStoreIngestion")["responseElements"] is None, "an empty response records null"
    assert one("UpdateEventDataStore")["responseElements"]["retentionPeriod"] == 60
    assert len({record["eventID"] for record in records}) == calls
    assert len({record["requestID"] for record in records}) == calls


def test_lookup_events_finds_events_by_every_attribute(server, cloudtrail):
    calls = workload(server)
    records = recorded(cloudtrail, WORKLOAD_KEY, calls)
    arn = next(r for r in records if r["eventName"] == "CreateEventDataStore" and "errorCode" not in r)["responseElements"]["eventDataStoreArn"]

    def found(key, value):
        events = lookup_all(cloudtrail, LookupAttributes=[{"AttributeKey": key, "AttributeValue": value}])
        return [event for event in events if event.get("AccessKeyId") == WORKLOAD_KEY]

    by_id = found("EventId", records[5]["eventID"])
    assert [event["EventName"] for event in by_id] == [records[5]["eventName"]]
    event = by_id[0]
    assert event["EventId"] == records[5]["eventID"] and event["EventSource"] == "cloudtrail.amazonaws.com"
    assert json.loads(event["CloudTrailEvent"]) == records[5]
    assert event["EventTime"] == datetime.datetime.fromisoformat(records[5]["eventTime"].replace("Z", "+00:00"))
    assert [e["EventName"] for e in found("EventName", "GetEventDataStore")] == ["GetEventDataStore"] * 2
    reads = [r["eventID"] for r in records if r["readOnly"]]
    assert [e["EventId"] for e in found("ReadOnly", "true")] == reads
    assert [e["ReadOnly"] for e in found("ReadOnly", "false")] == ["false"] * (calls - len(reads))
    assert len(found("EventSource", "cloudtrail.amazonaws.com")) == calls
    assert found("EventSource", "s3.amazonaws.com") == []
    with_store = [r["eventID"] for r in records if any(res["ARN"] == arn for res in r.get("resources", []))]
    assert len(with_store) >= 6
    assert [e["EventId"] for e in found("ResourceName", arn)] == with_store
    assert {r["ResourceName"] for e in found("ResourceName", arn) for r in e["Resources"]} >= {arn}
    typed = [r["eventID"] for r in records if r.get("resources")]
    assert [e["EventId"] for e in found("ResourceType", "AWS::CloudTrail::EventDataStore")] == typed


def test_usernames_come_from_the_credentials_and_refusals_are_recorded(tmp_path):
    credentials = tmp_path / "credentials.json"
    alice = {"accessKeyId": "AKIAALICE00000000001", "secretAccessKey": "alice-secret-key-0001", "accountId": "111111111111",
             "userName": "alice", "arn": "arn:aws:iam::111111111111:user/alice"}
    session = {"accessKeyId": "ASIAROLE000000000002", "secretAccessKey": "role-secret-key-00002", "accountId": "111111111111",
               "sessionToken": "token-2", "arn": "arn:aws:sts::111111111111:assumed-role/Auditor/bob-session"}
    credentials.write_text(json.dumps({"credentials": [alice, session]}))
    server = Server(tmp_path / "lake", "--credentials", str(credentials)).start()
    try:
        def client(key, secret=None):
            return boto3.client("cloudtrail", endpoint_url=server.url, region_name=REGION,
                                aws_access_key_id=key["accessKeyId"], aws_secret_access_key=secret or key["secretAccessKey"],
                                aws_session_token=key.get("sessionToken"), config=botocore.config.Config(retries={"max_attempts": 1}))

        as_alice, as_role = client(alice), client(session)
        as_alice.list_event_data_stores()
        as_role.list_channels()
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            client(alice, secret="not-alice-secret-0000").list_event_data_stores()
        assert error_code(refused) == "InvalidSignatureException"

        deadline = time.monotonic() + 30
        while True:
            events = lookup_all(as_alice, LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": "alice"}])
            if len(events) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        by_alice = [json.loads(e["CloudTrailEvent"]) for e in events if e["EventName"] == "ListEventDataStores"]
        assert len(by_alice) == 2, events
        refusal = next(r for r in by_alice if "errorCode" in r)
        call = next(r for r in by_alice if "errorCode" not in r)
        assert refusal["errorCode"] == "InvalidSignatureException" and "errorMessage" in refusal
        assert call["userIdentity"] == {"type": "IAMUser", "principalId": alice["accessKeyId"], "arn": alice["arn"],
                                        "accountId": "111111111111", "accessKeyId": alice["accessKeyId"], "userName": "alice"}
        assert "errorCode" not in call
        role = lookup_all(as_alice, LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": "bob-session"}])
        assert [e["EventName"] for e in role] == ["ListChannels"]
        assert json.loads(role[0]["CloudTrailEvent"])["userIdentity"]["type"] == "AssumedRole"
        assert role[0]["Username"] == "bob-session" and role[0]["AccessKeyId"] == session["accessKeyId"]
    finally:
        server.stop()


def test_paging_time_bounds_and_tokens_bound_to_their_parameters(server, cloudtrail):
    calls = workload(server)
    records = recorded(cloudtrail, WORKLOAD_KEY, calls)
    by_key = [{"AttributeKey": "AccessKeyId", "AttributeValue": WORKLOAD_KEY}]
    pages, token = [], None
    while True:
        page = lookup(cloudtrail, LookupAttributes=by_key, MaxResults=3, **({"NextToken": token} if token else {}))
        pages.append([event["EventId"] for event in page["Events"]])
        token = page.get("NextToken")
        if not token:
            break
    assert [len(page) for page in pages] == [3, 3, 3, 2]
    assert sum(pages, []) == [record["eventID"] for record in records]

    first = lookup(cloudtrail, LookupAttributes=by_key, MaxResults=3)
    with pytest.raises(botocore.exceptions.ClientError) as other:
        lookup(cloudtrail, LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "ListTags"}], NextToken=first["NextToken"])
    assert error_code(other) == "InvalidNextTokenException"

    times = sorted({datetime.datetime.fromisoformat(r["eventTime"].replace("Z", "+00:00")) for r in records})
    middle = times[len(times) // 2]
    newer = lookup_all(cloudtrail, LookupAttributes=by_key, StartTime=middle)
    assert [e["EventId"] for e in newer] == [r["eventID"] for r in records if r["eventTime"] >= middle.strftime("%Y-%m-%dT%H:%M:%SZ")]
    older = lookup_all(cloudtrail, LookupAttributes=by_key, EndTime=middle)
    assert [e["EventId"] for e in older] == [r["eventID"] for r in records if r["eventTime"] <= middle.strftime("%Y-%m-%dT%H:%M:%SZ")]
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    assert lookup(cloudtrail, StartTime=future)["Events"] == []
    assert lookup(cloudtrail, EventCategory="insight")["Events"] == [], "no Insights events exist yet"


def test_bad_lookups_get_their_modelled_errors_and_too_many_calls_are_throttled(server):
    unvalidated = server.client(validate=False)
    now = datetime.datetime.now(datetime.timezone.utc)
    cases = [
        ({"LookupAttributes": [{"AttributeKey": "Color", "AttributeValue": "red"}]}, "InvalidLookupAttributesException", "AttributeKey"),
        ({"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "a"}, {"AttributeKey": "EventSource", "AttributeValue": "b"}]},
         "InvalidLookupAttributesException", "at most one"),
        ({"LookupAttributes": [{"AttributeKey": "ReadOnly", "AttributeValue": "maybe"}]}, "InvalidLookupAttributesException", "true or false"),
        ({"LookupAttributes": [{"AttributeKey": "Username", "AttributeValue": "x" * 2001}]}, "InvalidLookupAttributesException", "2000"),
        ({"StartTime": now, "EndTime": now - datetime.timedelta(hours=1)}, "InvalidTimeRangeException", "StartTime"),
        ({"MaxResults": 0}, "InvalidMaxResultsException", "MaxResults"),
        ({"MaxResults": 51}, "InvalidMaxResultsException", "MaxResults"),
        ({"EventCategory": "management"}, "InvalidEventCategoryException", "EventCategory"),
        ({"NextToken": "not-a-token"}, "InvalidNextTokenException", "NextToken"),
    ]
    for kwargs, code, field in cases:
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            lookup(unvalidated, **kwargs)
        assert error_code(refused) == code, kwargs
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert field in refused.value.response["Error"]["Message"], refused.value.response
        time.sleep(0.5)

    time.sleep(1.1)
    outcomes = []
    once = boto3.client("cloudtrail", endpoint_url=server.url, region_name=REGION, aws_access_key_id="AKIDEXAMPLE",
                        aws_secret_access_key="secret", config=botocore.config.Config(retries={"total_max_attempts": 1}))
    for _ in range(6):
        try:
            once.lookup_events(MaxResults=1)
            outcomes.append("ok")
        except botocore.exceptions.ClientError as error:
            outcomes.append(error.response["Error"]["Code"])
            assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert outcomes[:2] == ["ok", "ok"] and "ThrottlingException" in outcomes[2:], outcomes
    other_account = server.client(access_key="210987654321")
    assert other_account.lookup_events(MaxResults=1)["Events"] is not None, "each account has its own limit"


def test_accounts_have_their_own_event_history(server, cloudtrail):
    other = server.client(access_key="210987654321")
    other.create_event_data_store(Name="other-account-store")
    deadline = time.monotonic() + 30
    while not lookup(other, LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateEventDataStore"}])["Events"]:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    mine = lookup(cloudtrail, LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateEventDataStore"}])
    assert mine["Events"] == []
    assert cloudtrail.list_event_data_stores()["EventDataStores"] == [], "the Event history is not a store"


def test_lookup_events_over_grpc_is_the_history_boto3_reads(server, cloudtrail, pb):
    calls = workload(server)
    records = recorded(cloudtrail, WORKLOAD_KEY, calls)
    import importlib
    lookup_pb = importlib.import_module("traillake.v1.lookup_events_pb2")
    with grpc.insecure_channel(target(server)) as opened:
        rpc = pb.service_pb2_grpc.CloudTrailStub(opened)
        request = lookup_pb.LookupEventsRequest(
            LookupAttributes=[lookup_pb.LookupAttribute(AttributeKey="AccessKeyId", AttributeValue=WORKLOAD_KEY)], MaxResults=50)
        time.sleep(1)
        reply = rpc.LookupEvents(request)
        assert [event.EventId for event in reply.Events] == [record["eventID"] for record in records]
        assert json.loads(reply.Events[0].CloudTrailEvent) == records[0]
        assert reply.Events[0].ReadOnly == str(records[0]["readOnly"]).lower() and reply.Events[0].EventTime.seconds > 0
        time.sleep(1)
        status, code, message = rpc_error(rpc.LookupEvents, lookup_pb.LookupEventsRequest(EventCategory="Data"))
        assert (status, code) == (grpc.StatusCode.INVALID_ARGUMENT, "InvalidEventCategoryException"), message
    # The gRPC calls are recorded too, without an access key (none was sent).
    deadline = time.monotonic() + 30
    while True:
        over_grpc = [json.loads(e["CloudTrailEvent"]) for e in lookup_all(
            cloudtrail, LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "LookupEvents"}])]
        over_grpc = [r for r in over_grpc if r["userAgent"] and r["userAgent"].startswith("grpc-python")]
        if len(over_grpc) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert sorted(r.get("errorCode") or "" for r in over_grpc) == ["", "InvalidEventCategoryException"]
    answered = next(r for r in over_grpc if "errorCode" not in r)
    assert answered["requestParameters"]["lookupAttributes"] == [{"attributeKey": "AccessKeyId", "attributeValue": WORKLOAD_KEY}]
    assert answered["userIdentity"]["principalId"] == ACCOUNT and "accessKeyId" not in answered["userIdentity"]


def selected(record, selector):
    """Whether a raw record matches one advanced event selector, as the reference defines it:
    every field selector holds; Equals/StartsWith positives ORed, NotEquals/NotStartsWith exclude."""
    for field in selector["FieldSelectors"]:
        name = field["Field"]
        value = record.get(name)
        if isinstance(value, bool):
            value = "true" if value else "false"
        if name == "resources.type":
            values = [resource["type"] for resource in record.get("resources", [])]
        else:
            values = [value] if value is not None else []
        if "Equals" in field and not any(v in field["Equals"] for v in values):
            return False
        if "StartsWith" in field and not any(v.startswith(p) for v in values for p in field["StartsWith"]):
            return False
        if any(v in field.get("NotEquals", []) for v in values):
            return False
        if any(v.startswith(p) for v in values for p in field.get("NotStartsWith", [])):
            return False
    return True


def store_event_ids(cloudtrail, arn, access_key):
    rows = query(cloudtrail, f"SELECT eventID FROM {store_id(arn)} WHERE userIdentity.accessKeyId = '{access_key}'")
    return sorted(row[0]["eventID"] for row in rows)


def test_stores_take_what_their_selectors_select_and_nothing_while_stopped(server, cloudtrail):
    data_events = [{"Name": "channel events", "FieldSelectors": [
        {"Field": "eventCategory", "Equals": ["Data"]}, {"Field": "resources.type", "Equals": ["AWS::CloudTrail::Channel"]}]}]
    stores = {
        "writes": [{"Name": "writes", "FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Management"]}, {"Field": "readOnly", "Equals": ["false"]}]}],
        "not-kms": [{"Name": "management but KMS", "FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Management"]}, {"Field": "eventSource", "NotEquals": ["kms.amazonaws.com"]}]}],
        "channel-data": data_events,
        "stopped": [{"Name": "management", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}],
    }
    arns = {name: cloudtrail.create_event_data_store(Name=f"sel-{name}", AdvancedEventSelectors=selectors)["EventDataStoreArn"]
            for name, selectors in stores.items()}
    cloudtrail.stop_event_data_store_ingestion(EventDataStore=arns["stopped"])

    audit_arn = activity_store(cloudtrail, "audit-sink")
    channel_arn = channel(cloudtrail, "audit-channel", audit_arn)
    calls = workload(server)
    data_client = server.client("cloudtrail-data", access_key=WORKLOAD_KEY)
    put(data_client, channel_arn, [{"id": "e1", "eventData": event_data(1)}])
    management = recorded(cloudtrail, WORKLOAD_KEY, calls)

    # The data event is in no Event history, but in the store that selects channel data events.
    deadline = time.monotonic() + 30
    while not store_event_ids(cloudtrail, arns["channel-data"], WORKLOAD_KEY):
        assert time.monotonic() < deadline
        time.sleep(0.3)
    put_record = query(cloudtrail, f"SELECT eventJson FROM {store_id(arns['channel-data'])}")
    assert len(put_record) == 1
    put_record = json.loads(put_record[0][0]["eventJson"])
    assert put_record["eventSource"] == "cloudtrail-data.amazonaws.com" and put_record["eventCategory"] == "Data"
    assert put_record["requestParameters"]["auditEvents"] == [{"id": "e1"}], "event bodies are not recorded"
    assert put_record["resources"][0] == {"accountId": ACCOUNT, "type": "AWS::CloudTrail::Channel", "ARN": channel_arn}
    assert selected(put_record, data_events[0])

    writes = sorted(r["eventID"] for r in management if selected(r, stores["writes"][0]))
    assert len(writes) == 6 and store_event_ids(cloudtrail, arns["writes"], WORKLOAD_KEY) == writes
    assert store_event_ids(cloudtrail, arns["not-kms"], WORKLOAD_KEY) == sorted(
        r["eventID"] for r in management if selected(r, stores["not-kms"][0]))
    assert store_event_ids(cloudtrail, arns["stopped"], WORKLOAD_KEY) == [], "a stopped store takes nothing"

    cloudtrail.start_event_data_store_ingestion(EventDataStore=arns["stopped"])
    later = server.client(access_key="AKIAWORKLOAD00000002")
    later.list_event_data_stores()
    deadline = time.monotonic() + 30
    while not store_event_ids(cloudtrail, arns["stopped"], "AKIAWORKLOAD00000002"):
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert store_event_ids(cloudtrail, arns["stopped"], WORKLOAD_KEY) == [], "nothing from while it was stopped"

    # A change of selectors applies from then on.
    cloudtrail.update_event_data_store(EventDataStore=arns["writes"], AdvancedEventSelectors=stores["stopped"])
    later.list_event_data_stores()
    deadline = time.monotonic() + 30
    while not store_event_ids(cloudtrail, arns["writes"], "AKIAWORKLOAD00000002"):
        assert time.monotonic() < deadline
        time.sleep(0.3)


def trailscraper():
    """The trailscraper command (PyPI), installed by tests/run-all.sh in a virtualenv of its own."""
    import os
    import pathlib
    command = os.environ.get("TRAILSCRAPER") or str(pathlib.Path.home() / ".cache/traillake-trailscraper-venv/bin/trailscraper")
    assert pathlib.Path(command).exists(), f"{command} is missing: tests/run-all.sh installs it"
    return command


def test_trailscraper_reads_the_recorded_events_through_lookup_events(server, cloudtrail):
    """A third-party CloudTrail tool, unchanged: trailscraper's `select --use-cloudtrail-api` pages
    through LookupEvents with boto3 and prints the records it finds."""
    import os
    import subprocess
    calls = workload(server)
    records = recorded(cloudtrail, WORKLOAD_KEY, calls)
    env = dict(os.environ, AWS_ENDPOINT_URL=server.url, AWS_DEFAULT_REGION=REGION,
               AWS_ACCESS_KEY_ID="AKIATRAILSCRAPER0001", AWS_SECRET_ACCESS_KEY="secret")
    env.pop("AWS_PROFILE", None)
    done = subprocess.run([trailscraper(), "select", "--use-cloudtrail-api", "--from", "-1days", "--to", "now"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    selected_records = json.loads(done.stdout)["Records"]
    ids = [record["eventID"] for record in selected_records]
    assert len(ids) == len(set(ids)), "each event once across the pages"
    mine = [record for record in selected_records if record["userIdentity"].get("accessKeyId") == WORKLOAD_KEY]
    assert sorted(r["eventID"] for r in mine) == sorted(r["eventID"] for r in records)
    assert {json.dumps(r, sort_keys=True) for r in mine} == {json.dumps(r, sort_keys=True) for r in records}


def test_load_history_seeds_the_event_history_and_recording_can_be_turned_off(tmp_path):
    """`traillake load --history` stores the management events of the last 90 days of exported
    records in the Event history; `--record-activity false` records no call."""
    import subprocess
    from conftest import binary
    now = datetime.datetime.now(datetime.timezone.utc)

    def record(event_id, days_ago, **fields):
        return {"eventVersion": "1.11", "eventID": event_id, "eventName": "RunInstances", "eventSource": "ec2.amazonaws.com",
                "eventTime": (now - datetime.timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ"), "awsRegion": REGION,
                "readOnly": False, "managementEvent": True, "eventCategory": "Management", "eventType": "AwsApiCall",
                "userIdentity": {"type": "IAMUser", "userName": "carol", "accessKeyId": "AKIACAROL0000000001"},
                "recipientAccountId": ACCOUNT, **fields}

    exported = tmp_path / "exported.json"
    exported.write_text(json.dumps({"Records": [
        record("e-1", 1), record("e-2", 30),
        record("e-old", 120),
        record("e-data", 2, eventCategory="Data", managementEvent=False, eventName="GetObject", eventSource="s3.amazonaws.com"),
    ]}))
    root = tmp_path / "lake"
    loaded = subprocess.run([binary(), "load", "--root", str(root), "--history", str(exported)],
                            capture_output=True, text=True, timeout=120)
    assert loaded.returncode == 0, loaded.stderr + loaded.stdout
    assert "the Event history of account 123456789012" in loaded.stdout
    assert "4 read, 2 stored, 1 older than the Event history's 90-day retention" in loaded.stdout, loaded.stdout
    assert "1 events are not management events" in loaded.stdout, loaded.stdout

    server = Server(root, "--record-activity", "false").start()
    try:
        client = server.client()
        client.list_event_data_stores()
        client.create_event_data_store(Name="not-recorded", StartIngestion=False)
        found = lookup_all(client)
        assert [e["EventId"] for e in found] == ["e-1", "e-2"], "only the loaded events: no call was recorded"
        assert found[0]["Username"] == "carol" and found[0]["AccessKeyId"] == "AKIACAROL0000000001"
        assert "not recorded as account activity" in server.log()
    finally:
        server.stop()
