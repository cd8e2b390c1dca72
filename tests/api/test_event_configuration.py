"""Get/PutEventConfiguration: a store's MaxEventSize and ContextKeySelectors, a trail's
AggregationConfigurations, every modelled refusal, and MaxEventSize kept by `traillake load`
(a record larger than the store's size is rejected with the reason, then taken once the store is
Large)."""

import datetime

import pytest

from conftest import Server, error_code, store_id
from test_queries import all_rows, load, now_utc, records, wait, write_records


def refusal(call, **kwargs):
    with pytest.raises(Exception) as excinfo:
        call(**kwargs)
    return error_code(excinfo), excinfo.value.response["Error"]["Message"]


def test_a_stores_event_configuration_and_its_refusals(server, cloudtrail):
    unchecked = server.client(validate=False)
    arn = cloudtrail.create_event_data_store(Name="events", StartIngestion=False)["EventDataStoreArn"]
    got = cloudtrail.get_event_configuration(EventDataStore=arn)
    assert got["EventDataStoreArn"] == arn and got["MaxEventSize"] == "Standard"
    assert "ContextKeySelectors" not in got and "TrailARN" not in got

    selectors = [{"Type": "RequestContext", "Equals": ["aws:SourceIp", "aws:UserAgent"]}, {"Type": "TagContext", "Equals": ["team"]}]
    code, message = refusal(cloudtrail.put_event_configuration, EventDataStore=arn, ContextKeySelectors=selectors)
    assert code == "InvalidParameterException" and "Large" in message, message
    put = cloudtrail.put_event_configuration(EventDataStore=store_id(arn), MaxEventSize="Large", ContextKeySelectors=selectors)
    assert put["MaxEventSize"] == "Large" and put["ContextKeySelectors"] == selectors and put["EventDataStoreArn"] == arn
    assert cloudtrail.get_event_configuration(EventDataStore=arn)["ContextKeySelectors"] == selectors
    # Selectors need Large: going back to Standard while they are kept is refused.
    assert refusal(cloudtrail.put_event_configuration, EventDataStore=arn, MaxEventSize="Standard", ContextKeySelectors=selectors)[0] == "InvalidParameterException"

    for kwargs, code, words in [
        ({"MaxEventSize": "Huge"}, "InvalidParameterException", "MaxEventSize"),
        ({"MaxEventSize": "Large", "ContextKeySelectors": selectors + [selectors[0]]}, "InvalidParameterException", "at most 2"),
        ({"MaxEventSize": "Large", "ContextKeySelectors": [{"Type": "Other", "Equals": ["x"]}]}, "InvalidParameterException", "Type"),
        ({"MaxEventSize": "Large", "ContextKeySelectors": [{"Type": "TagContext", "Equals": []}]}, "InvalidParameterException", "Equals"),
        ({"AggregationConfigurations": [{"Templates": ["API_ACTIVITY"], "EventCategory": "Data"}]}, "InvalidParameterException", "trails"),
        ({"TrailName": "main"}, "InvalidParameterCombinationException", "not both"),
    ]:
        got_code, got_message = refusal(unchecked.put_event_configuration, EventDataStore=arn, **kwargs)
        assert got_code == code and words in got_message, (kwargs, got_code, got_message)
    assert refusal(unchecked.put_event_configuration, MaxEventSize="Large")[0] == "InvalidParameterException"
    assert refusal(cloudtrail.get_event_configuration, EventDataStore="00000000-0000-4000-8000-000000000000")[0] == "EventDataStoreNotFoundException"
    assert refusal(cloudtrail.get_event_configuration, EventDataStore=arn.replace("123456789012", "210987654321"))[0] == "EventDataStoreARNInvalidException"
    audit = cloudtrail.create_event_data_store(
        Name="audit", MultiRegionEnabled=False,
        AdvancedEventSelectors=[{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["ActivityAuditLog"]}]}])["EventDataStoreArn"]
    assert refusal(cloudtrail.get_event_configuration, EventDataStore=audit)[0] == "InvalidEventDataStoreCategoryException"
    assert refusal(cloudtrail.put_event_configuration, EventDataStore=audit, MaxEventSize="Large")[0] == "InvalidEventDataStoreCategoryException"
    # Nothing refused changed the store's configuration.
    assert cloudtrail.get_event_configuration(EventDataStore=arn)["MaxEventSize"] == "Large"
    cloudtrail.update_event_data_store(EventDataStore=arn, TerminationProtectionEnabled=False)
    cloudtrail.delete_event_data_store(EventDataStore=arn)
    assert refusal(cloudtrail.put_event_configuration, EventDataStore=arn, MaxEventSize="Standard")[0] == "InactiveEventDataStoreException"


def test_context_key_selectors_add_event_context_to_the_calls_a_store_takes(server, cloudtrail):
    import json
    import time

    enriched = cloudtrail.create_event_data_store(Name="enriched")["EventDataStoreArn"]
    plain = cloudtrail.create_event_data_store(Name="plain")["EventDataStoreArn"]
    selectors = [{"Type": "RequestContext", "Equals": ["aws:SourceIp", "aws:UserAgent", "AWS:PrincipalAccount", "aws:PrincipalOrgID"]},
                 {"Type": "TagContext", "Equals": ["team"]}]
    cloudtrail.put_event_configuration(EventDataStore=enriched, MaxEventSize="Large", ContextKeySelectors=selectors)
    cloudtrail.add_tags(ResourceId=plain, TagsList=[{"Key": "team", "Value": "sec"}, {"Key": "cost", "Value": "9"}])
    cloudtrail.get_event_data_store(EventDataStore=plain)

    def recorded(store):
        query_id = cloudtrail.start_query(
            QueryStatement=f"SELECT eventJSON FROM {store_id(store)} WHERE eventName = 'GetEventDataStore'")["QueryId"]
        assert wait(cloudtrail, query_id)["QueryStatus"] == "FINISHED"
        return [json.loads(row[0]["eventJSON"]) for row in all_rows(cloudtrail, query_id)]

    deadline = time.monotonic() + 30
    while not (events := recorded(enriched)) and time.monotonic() < deadline:
        time.sleep(0.2)
    [event] = events
    assert event["eventContext"] == {
        "requestContext": {"aws:SourceIp": event["sourceIPAddress"], "aws:UserAgent": event["userAgent"],
                           "AWS:PrincipalAccount": event["userIdentity"]["accountId"]},
        "tagContext": {"resourceTags": [{"arn": plain, "tags": {"team": "sec"}}]},
    }, event
    # The same call in a store without selectors has no eventContext.
    [same] = recorded(plain)
    assert same["eventID"] == event["eventID"] and "eventContext" not in same


def test_a_trails_aggregation_configuration(s3_env, s3_bucket, tmp_path):
    server = Server(tmp_path / "lake", env=s3_env).start()
    try:
        cloudtrail, unchecked = server.client(), server.client(validate=False)
        trail_arn = cloudtrail.create_trail(Name="main", S3BucketName=s3_bucket)["TrailARN"]
        got = cloudtrail.get_event_configuration(TrailName="main")
        got.pop("ResponseMetadata")
        assert got == {"TrailARN": trail_arn}
        aggregation = [{"Templates": ["API_ACTIVITY", "USER_ACTIONS"], "EventCategory": "Data"}]
        put = cloudtrail.put_event_configuration(TrailName=trail_arn, AggregationConfigurations=aggregation)
        assert put["TrailARN"] == trail_arn and put["AggregationConfigurations"] == aggregation
        assert cloudtrail.get_event_configuration(TrailName="main")["AggregationConfigurations"] == aggregation
        for kwargs, words in [
            ({"AggregationConfigurations": [{"Templates": ["API_ACTIVITY"], "EventCategory": "Management"}]}, "EventCategory"),
            ({"AggregationConfigurations": [{"Templates": ["EVERYTHING"], "EventCategory": "Data"}]}, "EVERYTHING"),
            ({"AggregationConfigurations": aggregation * 2}, "at most 1"),
            ({"MaxEventSize": "Large"}, "event data stores"),
        ]:
            code, message = refusal(unchecked.put_event_configuration, TrailName="main", **kwargs)
            assert code == "InvalidParameterException" and words in message, (kwargs, message)
        assert refusal(cloudtrail.get_event_configuration, TrailName="nope")[0] == "TrailNotFoundException"
        assert refusal(cloudtrail.put_event_configuration, TrailName="bad name!", AggregationConfigurations=aggregation)[0] == "InvalidTrailNameException"
        assert cloudtrail.get_event_configuration(TrailName="main")["AggregationConfigurations"] == aggregation
    finally:
        server.stop()


def test_a_stores_max_event_size_is_kept_by_load(server, cloudtrail, tmp_path):
    arn = cloudtrail.create_event_data_store(Name="events", StartIngestion=False, RetentionPeriod=90)["EventDataStoreArn"]
    items = records(3, now_utc() - datetime.timedelta(hours=1))
    items[1]["requestParameters"] = {"padding": "x" * (300 * 1024)}  # a 300 KB event
    path = write_records(tmp_path / "big.json", items)
    code, output = load(server, "events", path)
    assert code == 1 and "2 stored" in output and "MaxEventSize" in output, output
    cloudtrail.put_event_configuration(EventDataStore=arn, MaxEventSize="Large")
    code, output = load(server, "events", write_records(tmp_path / "big-only.json", [items[1]]))
    assert code == 0 and "1 stored" in output, output
    query_id = cloudtrail.start_query(QueryStatement=f"SELECT count(*) AS n FROM {store_id(arn)}")["QueryId"]
    assert wait(cloudtrail, query_id)["QueryStatus"] == "FINISHED"
    assert all_rows(cloudtrail, query_id) == [[{"n": "3"}]]


def test_a_stores_max_event_size_is_kept_on_the_live_path(tmp_path, s3_env, s3_server):
    """A followed bucket's 300 KB record reaches the Large store and the Event history, not the
    Standard store; the record beside it reaches both."""
    import gzip
    import json
    import time

    from conftest import ACCOUNT
    from test_follow import follow_state
    from test_imports import s3_client

    s3 = s3_client(s3_server)
    s3.create_bucket(Bucket="follow-sizes")
    when = now_utc() - datetime.timedelta(hours=1)

    def record(event_id, padding):
        return {"eventVersion": "1.08", "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "eventSource": "s3.amazonaws.com",
                "eventName": "CreateBucket", "awsRegion": "us-east-1", "eventID": event_id, "eventType": "AwsApiCall",
                "managementEvent": True, "eventCategory": "Management", "readOnly": False, "recipientAccountId": ACCOUNT,
                "userIdentity": {"type": "IAMUser", "accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/big"},
                "requestParameters": {"bucketName": "b", "padding": "x" * padding}}

    small, big = "00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b"
    key = (f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/{when:%Y/%m/%d}/"
           f"{ACCOUNT}_CloudTrail_us-east-1_{when:%Y%m%dT%H%MZ}_SIZES00000000001.json.gz")
    body = gzip.compress(json.dumps({"Records": [record(small, 10), record(big, 300_000)]}).encode())

    server = Server(tmp_path / "lake", "--follow", "s3://follow-sizes", "--follow-interval", "1s", env=s3_env).start()
    try:
        cloudtrail = server.client()
        standard = cloudtrail.create_event_data_store(Name="standard")["EventDataStoreArn"]
        large = cloudtrail.create_event_data_store(Name="large")["EventDataStoreArn"]
        cloudtrail.put_event_configuration(EventDataStore=large, MaxEventSize="Large")
        s3.put_object(Bucket="follow-sizes", Key=key, Body=body)
        deadline = time.monotonic() + 60
        while (follow_state(server, "follow-sizes") or {}).get("status", {}).get("filesRead", 0) < 1:
            assert time.monotonic() < deadline, server.log()[-2000:]
            time.sleep(0.3)

        def ids(store):
            query_id = cloudtrail.start_query(
                QueryStatement=f"SELECT eventID FROM {store_id(store)} WHERE eventSource = 's3.amazonaws.com'")["QueryId"]
            assert wait(cloudtrail, query_id)["QueryStatus"] == "FINISHED"
            return sorted(row[0]["eventID"] for row in all_rows(cloudtrail, query_id))

        assert ids(large) == [small, big]
        assert ids(standard) == [small]
        history = cloudtrail.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateBucket"}])
        assert sorted(e["EventId"] for e in history["Events"]) == [small, big]
        assert "larger than the store's MaxEventSize" in server.log()
    finally:
        server.stop()
