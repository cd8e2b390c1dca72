"""ListInsightsMetricData through boto3: the per-period counts of one API's write calls, or of one of
its error codes, in the account's Event history, equal to counts computed here from the same events
as LookupEvents returns them; every period with FillWithZeros; pages; the bad inputs."""

import collections
import datetime
import json
import time

import pytest

from conftest import error_code

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
