"""Insights through boto3. Event data stores and trails: Put/GetInsightSelectors and their bad
inputs, and the Insights found in a store's management events, or in the account's for a trail
(AWS's documented examples, an error spike, a steady week that stays quiet), written once to the
destination store, or to the Event history (LookupEvents, ListInsightsData) and the trail's bucket,
across a restart.
ListInsightsMetricData: the per-period counts of one API's write calls, or of one of its error
codes, in the account's Event history, equal to counts computed here from the same events as
LookupEvents returns them; every period with FillWithZeros; pages; the bad inputs."""

import collections
import datetime
import gzip
import json
import re
import signal
import time
import uuid

import pytest

from conftest import ACCOUNT, Server, error_code, store_id
from test_queries import all_rows, load, wait

SOURCE = "cloudtrail.amazonaws.com"


def lookup(cloudtrail, name):
    """The records of the calls named `name` in the Event history."""
    records, token = [], None
    while True:
        kwargs = {"NextToken": token} if token else {}
        for _ in range(20):
            try:
                page = cloudtrail.lookup_events(
                    LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": name}], **kwargs)
                break
            except Exception as error:  # ThrottlingException: 2 calls per second
                if "Throttling" not in str(error):
                    raise
                time.sleep(0.6)
        records += [json.loads(event["CloudTrailEvent"]) for event in page["Events"]]
        token = page.get("NextToken")
        if not token:
            return records


def per_minute(records):
    counts = collections.Counter()
    for record in records:
        at = datetime.datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
        counts[at.replace(second=0)] += 1
    return counts


def test_metric_data_counts_the_calls_of_the_event_history(server):
    cloudtrail = server.client()
    for i in range(7):
        cloudtrail.create_event_data_store(Name=f"metric-{i}", StartIngestion=False)
    for _ in range(4):
        with pytest.raises(Exception):
            cloudtrail.get_event_data_store(EventDataStore="00000000-0000-4000-8000-000000000000")
    cloudtrail.list_event_data_stores()
    deadline = time.time() + 30
    while len(lookup(cloudtrail, "GetEventDataStore")) < 4 and time.time() < deadline:
        time.sleep(0.3)
    created = [r for r in lookup(cloudtrail, "CreateEventDataStore")]
    failed = [r for r in lookup(cloudtrail, "GetEventDataStore")
              if r.get("errorCode") == "EventDataStoreNotFoundException"]
    assert len(created) == 7 and len(failed) == 4

    calls = cloudtrail.list_insights_metric_data(EventSource=SOURCE, EventName="CreateEventDataStore",
                                                 InsightType="ApiCallRateInsight", Period=60)
    assert calls["EventSource"] == SOURCE and calls["InsightType"] == "ApiCallRateInsight" and "ErrorCode" not in calls
    assert dict(zip(calls["Timestamps"], calls["Values"])) == {t: float(n) for t, n in per_minute(created).items()}

    errors = cloudtrail.list_insights_metric_data(EventSource=SOURCE, EventName="GetEventDataStore",
                                                  InsightType="ApiErrorRateInsight",
                                                  ErrorCode="EventDataStoreNotFoundException", Period=300)
    assert errors["ErrorCode"] == "EventDataStoreNotFoundException"
    assert sum(errors["Values"]) == 4.0
    assert all(t.timestamp() % 300 == 0 for t in errors["Timestamps"])
    hourly = cloudtrail.list_insights_metric_data(EventSource=SOURCE, EventName="CreateEventDataStore",
                                                  InsightType="ApiCallRateInsight")
    assert sum(hourly["Values"]) == 7.0 and all(t.minute == 0 for t in hourly["Timestamps"])

    # Reads are not write calls; a call that did not fail has no error.
    reads = cloudtrail.list_insights_metric_data(EventSource=SOURCE, EventName="ListEventDataStores",
                                                 InsightType="ApiCallRateInsight", Period=60)
    assert reads["Timestamps"] == [] and reads["Values"] == []
    none = cloudtrail.list_insights_metric_data(EventSource=SOURCE, EventName="CreateEventDataStore",
                                                InsightType="ApiErrorRateInsight", ErrorCode="AccessDenied")
    assert none["Values"] == []

    # Every minute of the last ten, zeros included, and the same in pages of three.
    now = datetime.datetime.now(datetime.timezone.utc)
    window = dict(EventSource=SOURCE, EventName="CreateEventDataStore", InsightType="ApiCallRateInsight",
                  Period=60, DataType="FillWithZeros", StartTime=now - datetime.timedelta(minutes=10), EndTime=now)
    whole = cloudtrail.list_insights_metric_data(**window)
    assert len(whole["Timestamps"]) in (10, 11) and "NextToken" not in whole
    assert sum(whole["Values"]) == 7.0 and 0.0 in whole["Values"]
    paged, token = [], None
    while True:
        page = cloudtrail.list_insights_metric_data(MaxResults=3, **window, **({"NextToken": token} if token else {}))
        assert len(page["Timestamps"]) <= 3
        paged += list(zip(page["Timestamps"], page["Values"]))
        token = page.get("NextToken")
        if not token:
            break
    assert paged == list(zip(whole["Timestamps"], whole["Values"]))


def test_bad_metric_requests(server):
    cloudtrail = server.client(validate=False)
    base = dict(EventSource=SOURCE, EventName="CreateTrail", InsightType="ApiCallRateInsight")
    now = datetime.datetime.now(datetime.timezone.utc)
    for bad in [dict(Period=120), dict(EventSource="CloudTrail"), dict(EventName="Create Trail"),
                dict(InsightType="ApiErrorRateInsight"), dict(ErrorCode="AccessDenied"), dict(MaxResults=0),
                dict(MaxResults=21601), dict(StartTime=now, EndTime=now - datetime.timedelta(hours=1)),
                dict(NextToken="not-a-token-of-this")]:
        with pytest.raises(Exception) as excinfo:
            cloudtrail.list_insights_metric_data(**{**base, **bad})
        assert error_code(excinfo) == "InvalidParameterException", (bad, excinfo.value.response)
    with pytest.raises(Exception) as excinfo:
        cloudtrail.list_insights_metric_data(**base, TrailName="main")
    assert error_code(excinfo) == "UnsupportedOperationException"
    status, _, body = server.raw({"EventSource": SOURCE, "EventName": "CreateTrail", "InsightType": "Sometimes"},
                                 target="ListInsightsMetricData")
    assert status == 400 and "InsightType" in body["message"], body


def management(minute, source, name, read_only=False, error=None, user="alice"):
    """A management event of the given epoch minute."""
    at = datetime.datetime.fromtimestamp(minute * 60, datetime.timezone.utc) + datetime.timedelta(seconds=7)
    record = {
        "eventVersion": "1.08", "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "eventSource": source,
        "eventName": name, "awsRegion": "us-east-1", "eventID": str(uuid.uuid4()), "eventType": "AwsApiCall",
        "readOnly": read_only, "managementEvent": True, "eventCategory": "Management",
        "recipientAccountId": ACCOUNT, "userAgent": "aws-cli/2.0",
        "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/{user}"},
    }
    if error:
        record["errorCode"] = error
    return record


def query_rows(cloudtrail, statement):
    query_id = cloudtrail.start_query(QueryStatement=statement)["QueryId"]
    assert wait(cloudtrail, query_id)["QueryStatus"] == "FINISHED"
    return all_rows(cloudtrail, query_id)


def week_of_management_events(now):
    """AWS's documented example (1 call, then 3 in 5 minutes), an error spike, and a steady week of
    writes that stays quiet; returns (the events, the burst's first minute)."""
    burst = now - 30
    start = burst - 10_000
    events = [management(start, "codedeploy.amazonaws.com", "CompleteLifecycleAction")]
    events += [management(burst + m, "codedeploy.amazonaws.com", "CompleteLifecycleAction", user=u)
               for m, u in [(0, "r1"), (2, "r2"), (4, "r3")]]
    events += [management(start + 30 + i * 580, "iam.amazonaws.com", "GetRolePolicy", read_only=True,
                          error="NoSuchEntityException") for i in range(17)]
    events += [management(burst + 10 + m, "iam.amazonaws.com", "GetRolePolicy", read_only=True,
                          error="NoSuchEntityException") for m in range(4) for _ in range(18)]
    events += [management(start + m, "ssm.amazonaws.com", "UpdateInstanceInformation")
               for m in range(0, 10_030) for _ in range(1 + (m * 7919) % 3)]
    return events, burst


def test_insights_of_a_store_are_found_and_written_to_its_destination(tmp_path):
    server = Server(tmp_path / "lake", "--insights-interval", "1s").start()
    try:
        cloudtrail = server.client()
        source = cloudtrail.create_event_data_store(Name="insights-source", StartIngestion=False)["EventDataStoreArn"]
        destination = cloudtrail.create_event_data_store(
            Name="insights-destination",
            AdvancedEventSelectors=[{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Insight"]}]}],
        )["EventDataStoreArn"]
        events, burst = week_of_management_events(int(time.time() // 60))
        # Reads, which no Insight counts.
        events += [management(burst + m, "s3.amazonaws.com", "ListBuckets", read_only=True) for m in range(3) for _ in range(50)]
        path = tmp_path / "events.json"
        path.write_text(json.dumps({"Records": events}))
        code, output = load(server, store_id(source), path)
        assert code == 0, output

        raises = pytest.raises(Exception)
        with raises as excinfo:
            cloudtrail.get_insight_selectors(EventDataStore=source)
        assert error_code(excinfo) == "InsightNotEnabledException"
        put = cloudtrail.put_insight_selectors(
            EventDataStore=source, InsightsDestination=store_id(destination),
            InsightSelectors=[{"InsightType": "ApiCallRateInsight"}, {"InsightType": "ApiErrorRateInsight"}])
        assert put["EventDataStoreArn"] == source and put["InsightsDestination"] == destination
        assert put["InsightSelectors"] == [{"InsightType": "ApiCallRateInsight", "EventCategories": ["Management"]},
                                           {"InsightType": "ApiErrorRateInsight", "EventCategories": ["Management"]}]
        assert cloudtrail.get_insight_selectors(EventDataStore=source)["InsightSelectors"] == put["InsightSelectors"]

        statement = f"SELECT eventJson FROM {store_id(destination)} ORDER BY eventTime"
        deadline = time.time() + 120
        while True:
            rows = query_rows(cloudtrail, statement)
            if len(rows) >= 4 or time.time() > deadline:
                break
            time.sleep(1)
        found = [json.loads(row[0]["eventJson"]) for row in rows]
        by_key = collections.defaultdict(list)
        for event in found:
            details = event["insightDetails"]
            by_key[(details["eventName"], details["insightType"])].append(event)
        assert set(by_key) == {("CompleteLifecycleAction", "ApiCallRateInsight"),
                               ("GetRolePolicy", "ApiErrorRateInsight")}, found
        calls = by_key[("CompleteLifecycleAction", "ApiCallRateInsight")]
        assert [e["insightDetails"]["state"] for e in calls] == ["Start", "End"]
        assert calls[0]["sharedEventID"] == calls[1]["sharedEventID"] and calls[0]["eventID"] != calls[1]["eventID"]
        assert calls[0]["eventType"] == "AwsCloudTrailInsight" and calls[0]["eventCategory"] == "Insight"
        assert calls[0]["eventTime"] == datetime.datetime.fromtimestamp(burst * 60, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        statistics = calls[1]["insightDetails"]["insightContext"]["statistics"]
        assert statistics["insightDuration"] == 5 and abs(statistics["insight"]["average"] - 0.6) < 1e-9
        assert statistics["baselineDuration"] == 10_000
        assert abs(statistics["baseline"]["average"] * statistics["baselineDuration"] - 1) < 1e-9
        attributions = {a["attribute"]: a for a in calls[0]["insightDetails"]["insightContext"]["attributions"]}
        users = attributions["userIdentityArn"]
        assert sorted((v["value"].rsplit("/", 1)[1], v["average"]) for v in users["insight"]) == [
            ("r1", 0.2), ("r2", 0.2), ("r3", 0.2)]
        assert [(v["value"].rsplit("/", 1)[1], v["average"]) for v in users["baseline"]] == [("alice", 1 / 10_000)]
        assert attributions["errorCode"]["insight"] == [{"value": "null", "average": 0.6}]
        assert attributions["userAgent"]["insight"] == [{"value": "aws-cli/2.0", "average": 0.6}]
        errors = by_key[("GetRolePolicy", "ApiErrorRateInsight")]
        assert [e["insightDetails"]["state"] for e in errors] == ["Start", "End"]
        assert errors[0]["insightDetails"]["errorCode"] == "NoSuchEntityException"
        assert [a["attribute"] for a in errors[0]["insightDetails"]["insightContext"]["attributions"]] == [
            "userIdentityArn", "userAgent"]
        error_statistics = errors[1]["insightDetails"]["insightContext"]["statistics"]
        assert error_statistics["insightDuration"] == 4 and error_statistics["insight"]["average"] == 18.0

        # Later passes write nothing again; nor does a pass done again after a kill -9 that came
        # between the events' commit and the state's write (the state is taken back to none).
        time.sleep(2.5)
        assert len(query_rows(cloudtrail, statement)) == 4
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
        (tmp_path / "lake" / "insights" / store_id(source) / "state.json").unlink()
        server = Server(tmp_path / "lake", "--insights-interval", "1s").start()
        cloudtrail = server.client()
        deadline = time.time() + 60
        while not (tmp_path / "lake" / "insights" / store_id(source) / "state.json").exists() and time.time() < deadline:
            time.sleep(0.3)
        time.sleep(1)
        assert len(query_rows(cloudtrail, statement)) == 4

        # Off, then the destination cannot be an ordinary store.
        cloudtrail.put_insight_selectors(EventDataStore=source, InsightSelectors=[])
        with pytest.raises(Exception) as excinfo:
            cloudtrail.get_insight_selectors(EventDataStore=source)
        assert error_code(excinfo) == "InsightNotEnabledException"
    finally:
        server.stop()


def test_bad_insight_selectors(server):
    cloudtrail = server.client(validate=False)
    source = cloudtrail.create_event_data_store(Name="bad-insights-source")["EventDataStoreArn"]
    reads_only = cloudtrail.create_event_data_store(Name="reads-only", AdvancedEventSelectors=[{"FieldSelectors": [
        {"Field": "eventCategory", "Equals": ["Management"]}, {"Field": "readOnly", "Equals": ["true"]}]}])["EventDataStoreArn"]
    destination = cloudtrail.create_event_data_store(
        Name="bad-insights-destination", TerminationProtectionEnabled=False,
        AdvancedEventSelectors=[{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Insight"]}]}])["EventDataStoreArn"]
    calls = [{"InsightType": "ApiCallRateInsight"}]
    cases = [
        ("InvalidParameterCombinationException", dict(TrailName="main", EventDataStore=source, InsightSelectors=calls)),
        ("InvalidParameterCombinationException", dict(EventDataStore=source, InsightSelectors=calls)),
        ("InvalidParameterCombinationException", dict(InsightsDestination=destination, InsightSelectors=calls)),
        ("InvalidParameterCombinationException", dict(InsightSelectors=calls)),
        ("InvalidInsightSelectorsException", dict(EventDataStore=source, InsightsDestination=destination,
                                                  InsightSelectors=calls * 2)),
        ("InvalidInsightSelectorsException", dict(EventDataStore=source, InsightsDestination=destination,
                                                  InsightSelectors=[{"InsightType": "ApiCallRateInsight",
                                                                     "EventCategories": ["Data"]}])),
        ("InvalidInsightSelectorsException", dict(EventDataStore=reads_only, InsightsDestination=destination,
                                                  InsightSelectors=calls)),
        ("InvalidInsightSelectorsException", dict(EventDataStore=destination, InsightsDestination=destination,
                                                  InsightSelectors=calls)),
        ("InvalidParameterException", dict(EventDataStore=source, InsightsDestination=source, InsightSelectors=calls)),
        ("InvalidParameterException", dict(EventDataStore="00000000-0000-4000-8000-000000000000",
                                           InsightsDestination=destination, InsightSelectors=calls)),
        ("TrailNotFoundException", dict(TrailName="main", InsightSelectors=calls)),
    ]
    for code, kwargs in cases:
        with pytest.raises(Exception) as excinfo:
            cloudtrail.put_insight_selectors(**kwargs)
        assert error_code(excinfo) == code, (kwargs, excinfo.value.response)
    # Reads-only errors are fine for error rates; nothing refused above was kept.
    cloudtrail.put_insight_selectors(EventDataStore=reads_only, InsightsDestination=destination,
                                     InsightSelectors=[{"InsightType": "ApiErrorRateInsight"}])
    with pytest.raises(Exception) as excinfo:
        cloudtrail.get_insight_selectors(EventDataStore=source)
    assert error_code(excinfo) == "InsightNotEnabledException"
    # A change of selectors that would break a source's Insights is refused.
    cloudtrail.put_insight_selectors(EventDataStore=source, InsightsDestination=destination, InsightSelectors=calls)
    with pytest.raises(Exception) as excinfo:
        cloudtrail.update_event_data_store(EventDataStore=source, AdvancedEventSelectors=[{"FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Management"]}, {"Field": "readOnly", "Equals": ["true"]}]}])
    assert error_code(excinfo) == "InvalidEventSelectorsException"
    # Deleting the destination turns its sources' Insights off.
    cloudtrail.delete_event_data_store(EventDataStore=destination)
    with pytest.raises(Exception) as excinfo:
        cloudtrail.get_insight_selectors(EventDataStore=source)
    assert error_code(excinfo) == "InsightNotEnabledException"


def lookup_waiting(cloudtrail, **kwargs):
    """One LookupEvents call, waiting out the 2 calls per second the server allows."""
    for _ in range(20):
        try:
            return cloudtrail.lookup_events(**kwargs)
        except Exception as error:  # ThrottlingException: 2 calls per second
            if "Throttling" not in str(error):
                raise
            time.sleep(0.6)
    raise AssertionError("LookupEvents was throttled 20 times in a row")


def lookup_insights(cloudtrail, **kwargs):
    """Every Insights event of the Event history, newest first."""
    events, token = [], None
    while True:
        extra = {"NextToken": token} if token else {}
        page = lookup_waiting(cloudtrail, EventCategory="insight", **kwargs, **extra)
        events += page["Events"]
        token = page.get("NextToken")
        if not token:
            return events


def insight_log_records(s3, bucket):
    """The records of every Insights log file of the bucket (and the keys of the files)."""
    records, keys = [], []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            if "/CloudTrail-Insight/" in item["Key"]:
                keys.append(item["Key"])
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                records += json.loads(gzip.decompress(body))["Records"]
    return records, keys


def test_insights_of_a_trail_go_to_the_event_history_and_its_bucket(tmp_path, s3_env, s3_server):
    """A trail's Insights are found in the account's management events (here a week followed from
    a trail bucket into the Event history), kept in the Event history (LookupEvents with
    EventCategory insight, ListInsightsData) and delivered under CloudTrail-Insight/, each once
    across a kill -9 that loses the finding's state."""
    from test_follow import put_all, wait_followed
    from test_trails import s3_client, wait_for

    s3 = s3_client(s3_server)
    s3.create_bucket(Bucket="insights-follow")
    s3.create_bucket(Bucket="insights-trail")
    events, burst = week_of_management_events(int(time.time() // 60))
    days = collections.defaultdict(list)
    for event in events:
        days[event["eventTime"][:10]].append(event)
    files = {}
    for day, records in days.items():
        stamp = day.replace("-", "")
        key = (f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/{day.replace('-', '/')}/"
               f"{ACCOUNT}_CloudTrail_us-east-1_{stamp}T0000Z_{stamp}ABCDEFGH.json.gz")
        files[key] = (gzip.compress(json.dumps({"Records": records}).encode()),)
    put_all(s3, "insights-follow", files)
    args = ("--follow", "s3://insights-follow", "--follow-interval", "1s", "--insights-interval", "1s",
            "--trail-delivery-interval", "1s")
    server = Server(tmp_path / "lake", *args, env=s3_env).start()
    try:
        cloudtrail = server.client()
        wait_followed(server, "insights-follow", len(files))
        trail = cloudtrail.create_trail(Name="insights", S3BucketName="insights-trail")["TrailARN"]
        cloudtrail.start_logging(Name="insights")
        assert cloudtrail.get_trail(Name="insights")["Trail"]["HasInsightSelectors"] is False
        with pytest.raises(Exception) as excinfo:
            cloudtrail.get_insight_selectors(TrailName="insights")
        assert error_code(excinfo) == "InsightNotEnabledException"
        selectors = [{"InsightType": "ApiCallRateInsight"}, {"InsightType": "ApiErrorRateInsight"}]
        put = cloudtrail.put_insight_selectors(TrailName=trail, InsightSelectors=selectors)
        expected = [{**selector, "EventCategories": ["Management"]} for selector in selectors]
        assert put["TrailARN"] == trail and put["InsightSelectors"] == expected
        assert cloudtrail.get_insight_selectors(TrailName="insights")["InsightSelectors"] == expected
        assert cloudtrail.get_trail(Name="insights")["Trail"]["HasInsightSelectors"] is True
        assert cloudtrail.describe_trails()["trailList"][0]["HasInsightSelectors"] is True

        found = wait_for(lambda: (lambda e: e if len(e) >= 4 else None)(lookup_insights(cloudtrail)),
                         timeout=120, what="four Insights events in the Event history")
        records = [json.loads(event["CloudTrailEvent"]) for event in found]
        assert len(records) == 4, records
        keys = sorted((r["insightDetails"]["eventName"], r["insightDetails"]["insightType"],
                       r["insightDetails"]["state"]) for r in records)
        assert keys == [("CompleteLifecycleAction", "ApiCallRateInsight", "End"),
                        ("CompleteLifecycleAction", "ApiCallRateInsight", "Start"),
                        ("GetRolePolicy", "ApiErrorRateInsight", "End"),
                        ("GetRolePolicy", "ApiErrorRateInsight", "Start")]
        start_event = next(e for e, r in zip(found, records) if r["insightDetails"]["state"] == "Start"
                           and r["insightDetails"]["eventName"] == "CompleteLifecycleAction")
        assert start_event["EventName"] == "CompleteLifecycleAction"
        assert start_event["EventSource"] == "codedeploy.amazonaws.com"
        assert start_event["EventTime"] == datetime.datetime.fromtimestamp(burst * 60, datetime.timezone.utc)
        statistics = [r for r in records if r["insightDetails"]["eventName"] == "CompleteLifecycleAction"
                      and r["insightDetails"]["state"] == "End"][0]["insightDetails"]["insightContext"]["statistics"]
        assert statistics["insightDuration"] == 5 and abs(statistics["insight"]["average"] - 0.6) < 1e-9
        named = lookup_insights(cloudtrail, LookupAttributes=[{"AttributeKey": "EventName",
                                                                "AttributeValue": "GetRolePolicy"}])
        assert sorted(e["EventId"] for e in named) == sorted(
            r["eventID"] for r in records if r["insightDetails"]["eventName"] == "GetRolePolicy")
        assert lookup_insights(cloudtrail, LookupAttributes=[{"AttributeKey": "EventSource",
                                                               "AttributeValue": "iam.amazonaws.com"}]) == named
        # Management lookups do not see them.
        management_events = lookup_waiting(
            cloudtrail, LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "GetRolePolicy"}], MaxResults=50)
        assert all(json.loads(e["CloudTrailEvent"])["eventCategory"] == "Management"
                   for e in management_events["Events"])

        # ListInsightsData: the same events, by dimension, a page at a time.
        listed = cloudtrail.list_insights_data(InsightSource=trail, DataType="InsightsEvents")
        assert [e["EventId"] for e in listed["Events"]] == [e["EventId"] for e in found]
        one = cloudtrail.list_insights_data(InsightSource=trail, DataType="InsightsEvents",
                                            Dimensions={"EventName": "CompleteLifecycleAction"}, MaxResults=1)
        assert len(one["Events"]) == 1 and "NextToken" in one
        two = cloudtrail.list_insights_data(InsightSource=trail, DataType="InsightsEvents",
                                            Dimensions={"EventName": "CompleteLifecycleAction"}, MaxResults=1,
                                            NextToken=one["NextToken"])
        assert len(two["Events"]) == 1 and "NextToken" not in two
        assert {one["Events"][0]["EventId"], two["Events"][0]["EventId"]} == {
            r["eventID"] for r in records if r["insightDetails"]["eventName"] == "CompleteLifecycleAction"}
        by_id = cloudtrail.list_insights_data(InsightSource=trail, DataType="InsightsEvents",
                                              Dimensions={"EventId": records[0]["eventID"]})
        assert [e["EventId"] for e in by_id["Events"]] == [records[0]["eventID"]]

        # Delivered to the trail's bucket under CloudTrail-Insight/, in AWS's layout.
        delivered, files_put = wait_for(
            lambda: (lambda d: d if len(d[0]) >= 4 else None)(insight_log_records(s3, "insights-trail")),
            what="the Insights log file")
        assert sorted(r["eventID"] for r in delivered) == sorted(r["eventID"] for r in records)
        assert all(re.match(rf"^AWSLogs/{ACCOUNT}/CloudTrail-Insight/us-east-1/\d{{4}}/\d{{2}}/\d{{2}}/"
                            rf"{ACCOUNT}_CloudTrail-Insight_us-east-1_\d{{8}}T\d{{4}}Z_[A-Z0-9]{{16}}\.json\.gz$", key)
                   for key in files_put), files_put

        # A kill -9, and the finding's state lost: found again, stored and delivered once.
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
        state = tmp_path / "lake" / "insights" / f"trails-{ACCOUNT}" / "state.json"
        state.unlink()
        server = Server(tmp_path / "lake", *args, env=s3_env).start()
        cloudtrail = server.client()
        wait_for(state.exists, what="the finding to run again")
        time.sleep(3)
        assert sorted(e["EventId"] for e in lookup_insights(cloudtrail)) == sorted(r["eventID"] for r in records)
        assert sorted(r["eventID"] for r in insight_log_records(s3, "insights-trail")[0]) == sorted(
            r["eventID"] for r in records)

        # Off: GetInsightSelectors says so, and ListInsightsData lists nothing for the trail.
        cloudtrail.put_insight_selectors(TrailName="insights", InsightSelectors=[])
        with pytest.raises(Exception) as excinfo:
            cloudtrail.get_insight_selectors(TrailName="insights")
        assert error_code(excinfo) == "InsightNotEnabledException"
        assert cloudtrail.list_insights_data(InsightSource=trail, DataType="InsightsEvents")["Events"] == []
    finally:
        server.stop()


def test_bad_trail_insight_requests_change_nothing(tmp_path, s3_env, s3_server):
    from test_trails import s3_client

    s3_client(s3_server).create_bucket(Bucket="insights-bad")
    server = Server(tmp_path / "lake", env=s3_env).start()
    try:
        cloudtrail = server.client(validate=False)
        trail = cloudtrail.create_trail(Name="bad", S3BucketName="insights-bad")["TrailARN"]
        cloudtrail.put_event_selectors(TrailName="bad", EventSelectors=[{"ReadWriteType": "ReadOnly"}])
        calls = [{"InsightType": "ApiCallRateInsight"}]
        other_region = trail.replace(":us-east-1:", ":eu-west-1:")
        cases = [
            ("TrailNotFoundException", dict(TrailName="missing", InsightSelectors=calls)),
            ("InvalidTrailNameException", dict(TrailName="bad name!", InsightSelectors=calls)),
            ("CloudTrailARNInvalidException", dict(TrailName="arn:aws:cloudtrail:us-east-1:x", InsightSelectors=calls)),
            ("InvalidHomeRegionException", dict(TrailName=other_region, InsightSelectors=calls)),
            # Write calls are what ApiCallRateInsight counts; the trail logs reads only.
            ("InvalidInsightSelectorsException", dict(TrailName="bad", InsightSelectors=calls)),
            ("InvalidInsightSelectorsException", dict(TrailName="bad", InsightSelectors=[
                {"InsightType": "ApiErrorRateInsight", "EventCategories": ["Data"]}])),
            ("InvalidInsightSelectorsException", dict(TrailName="bad", InsightSelectors=[
                {"InsightType": "ApiErrorRateInsight"}] * 2)),
        ]
        for code, kwargs in cases:
            with pytest.raises(Exception) as excinfo:
                cloudtrail.put_insight_selectors(**kwargs)
            assert error_code(excinfo) == code, (kwargs, excinfo.value.response)
        assert cloudtrail.get_trail(Name="bad")["Trail"]["HasInsightSelectors"] is False
        # Reads are enough for error rates; then selectors that drop them are refused.
        cloudtrail.put_insight_selectors(TrailName="bad", InsightSelectors=[{"InsightType": "ApiErrorRateInsight"}])
        with pytest.raises(Exception) as excinfo:
            cloudtrail.put_event_selectors(TrailName="bad", EventSelectors=[
                {"ReadWriteType": "All", "IncludeManagementEvents": False}])
        assert error_code(excinfo) == "InvalidEventSelectorsException"
        assert cloudtrail.get_event_selectors(TrailName="bad")["EventSelectors"][0]["ReadWriteType"] == "ReadOnly"
        # Data-event Insights on a trail that logs data events: not found by traillake.
        cloudtrail.put_event_selectors(TrailName="bad", AdvancedEventSelectors=[
            {"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]},
            {"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]},
                                {"Field": "resources.type", "Equals": ["AWS::S3::Object"]}]}])
        with pytest.raises(Exception) as excinfo:
            cloudtrail.put_insight_selectors(TrailName="bad", InsightSelectors=[
                {"InsightType": "ApiCallRateInsight", "EventCategories": ["Data"]}])
        assert error_code(excinfo) == "UnsupportedOperationException"
        assert [s["InsightType"] for s in cloudtrail.get_insight_selectors(TrailName="bad")["InsightSelectors"]] == [
            "ApiErrorRateInsight"]

        list_cases = [
            dict(DataType="InsightsEvents"),
            dict(InsightSource=trail),
            dict(InsightSource=trail, DataType="Other"),
            dict(InsightSource="arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/x", DataType="InsightsEvents"),
            dict(InsightSource=trail.replace("trail/bad", "trail/missing"), DataType="InsightsEvents"),
            dict(InsightSource=other_region, DataType="InsightsEvents"),
            dict(InsightSource=trail, DataType="InsightsEvents", Dimensions={"Username": "x"}),
            dict(InsightSource=trail, DataType="InsightsEvents", Dimensions={"EventName": "A", "EventId": "B"}),
            dict(InsightSource=trail, DataType="InsightsEvents", MaxResults=51),
            dict(InsightSource=trail, DataType="InsightsEvents", MaxResults=0),
            dict(InsightSource=trail, DataType="InsightsEvents", NextToken="garbage"),
            dict(InsightSource=trail, DataType="InsightsEvents", StartTime=datetime.datetime(2026, 2, 1),
                 EndTime=datetime.datetime(2026, 1, 1)),
        ]
        for kwargs in list_cases:
            with pytest.raises(Exception) as excinfo:
                cloudtrail.list_insights_data(**kwargs)
            assert error_code(excinfo) == "InvalidParameterException", (kwargs, excinfo.value.response)
    finally:
        server.stop()
