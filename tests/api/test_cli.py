"""A few calls with the AWS CLI, as users script them."""

import datetime
import json
import os
import subprocess
import time

from test_queries import load, now_utc, records, write_records


def aws(server, *args, service="cloudtrail"):
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    return subprocess.run(
        ["aws", "--endpoint-url", server.url, service, *args, "--output", "json"],
        env=env, capture_output=True, text=True, timeout=120,
    )


def test_store_lifecycle_with_the_cli(server):
    created = aws(server, "create-event-data-store", "--name", "cli-store", "--retention-period", "90",
                  "--no-termination-protection-enabled")
    assert created.returncode == 0, created.stderr
    arn = json.loads(created.stdout)["EventDataStoreArn"]
    listed = json.loads(aws(server, "list-event-data-stores").stdout)
    assert [s["Name"] for s in listed["EventDataStores"]] == ["cli-store"]
    got = json.loads(aws(server, "get-event-data-store", "--event-data-store", arn).stdout)
    assert got["RetentionPeriod"] == 90 and got["Status"] == "ENABLED"
    assert aws(server, "add-tags", "--resource-id", arn, "--tags-list", "Key=team,Value=sec").returncode == 0
    tags = json.loads(aws(server, "list-tags", "--resource-id-list", arn).stdout)
    assert tags["ResourceTagList"][0]["TagsList"] == [{"Key": "team", "Value": "sec"}]
    assert aws(server, "delete-event-data-store", "--event-data-store", arn).returncode == 0


def test_cli_errors(server):
    result = aws(server, "create-event-data-store", "--name", "bad name!!")
    assert result.returncode != 0
    assert "InvalidParameterException" in result.stderr and "Name" in result.stderr
    result = aws(server, "start-query", "--query-statement", "SELECT 1")
    assert result.returncode != 0 and "InvalidQueryStatementException" in result.stderr
    # GenerateQuery without a query generator configured.
    result = aws(server, "generate-query", "--event-data-stores", "x" * 40, "--prompt", "top errors")
    assert result.returncode != 0 and "UnsupportedOperationException" in result.stderr
    result = aws(server, "get-trail", "--name", "no-such-trail")
    assert result.returncode != 0 and "TrailNotFoundException" in result.stderr
    keys = json.loads(aws(server, "list-public-keys").stdout)["PublicKeyList"]
    assert len(keys) == 1 and len(keys[0]["Fingerprint"]) == 32 and keys[0]["Value"], keys

def test_query_with_the_cli(server, tmp_path):
    created = json.loads(aws(server, "create-event-data-store", "--name", "cli-queries", "--no-start-ingestion").stdout)
    eds = created["EventDataStoreArn"].rsplit("/", 1)[1]
    code, output = load(server, "cli-queries", write_records(tmp_path / "e.json", records(30, now_utc() - datetime.timedelta(hours=1))))
    assert code == 0, output
    started = aws(server, "start-query", "--query-statement",
                  f"SELECT eventName, count(*) AS n FROM {eds} GROUP BY eventName ORDER BY eventName")
    assert started.returncode == 0, started.stderr
    query_id = json.loads(started.stdout)["QueryId"]
    for _ in range(100):
        described = json.loads(aws(server, "describe-query", "--query-id", query_id).stdout)
        if described["QueryStatus"] == "FINISHED":
            break
        time.sleep(0.2)
    assert described["QueryStatus"] == "FINISHED", described
    results = json.loads(aws(server, "get-query-results", "--query-id", query_id).stdout)
    assert results["QueryResultRows"] == [
        [{"eventName": "GetObject"}, {"n": "10"}],
        [{"eventName": "ListBuckets"}, {"n": "10"}],
        [{"eventName": "PutObject"}, {"n": "10"}],
    ]


def test_channel_and_put_audit_events_with_the_cli(server):
    """The README's example: a channel's store, the channel, an event through cloudtrail-data, a query."""
    selectors = json.dumps([{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["ActivityAuditLog"]}]}])
    store = json.loads(aws(server, "create-event-data-store", "--name", "cli-app", "--no-multi-region-enabled",
                           "--advanced-event-selectors", selectors).stdout)["EventDataStoreArn"]
    created = aws(server, "create-channel", "--name", "cli-app", "--source", "Custom",
                  "--destinations", f"Type=EVENT_DATA_STORE,Location={store}")
    assert created.returncode == 0, created.stderr
    channel = json.loads(created.stdout)["ChannelArn"]
    data = json.dumps({"version": "1.0", "userIdentity": {"type": "CustomUser", "principalId": "alice"}, "eventSource": "my-app",
                       "eventName": "Login", "eventTime": "2026-01-02T03:04:05Z", "UID": "u-1", "recipientAccountId": "123456789012"})
    put = aws(server, "put-audit-events", "--channel-arn", channel, "--audit-events", json.dumps([{"id": "e1", "eventData": data}]),
              service="cloudtrail-data")
    assert put.returncode == 0, put.stderr
    reply = json.loads(put.stdout)
    assert reply["failed"] == [] and reply["successful"][0]["id"] == "e1"
    query_id = json.loads(aws(server, "start-query", "--query-statement",
                              f"SELECT eventID, eventData.userIdentity.principalId FROM {store.rsplit('/', 1)[1]}").stdout)["QueryId"]
    for _ in range(100):
        results = json.loads(aws(server, "get-query-results", "--query-id", query_id).stdout)
        if results["QueryStatus"] == "FINISHED":
            break
        time.sleep(0.2)
    assert results["QueryResultRows"] == [[{"eventID": reply["successful"][0]["eventID"]}, {"principalId": "alice"}]]
    refused = aws(server, "put-audit-events", "--channel-arn", channel + "x", "--audit-events",
                  json.dumps([{"id": "e1", "eventData": data}]), service="cloudtrail-data")
    assert refused.returncode != 0 and "ChannelNotFound" in refused.stderr
