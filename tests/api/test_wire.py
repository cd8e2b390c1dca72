"""The AWS JSON 1.1 wire: routing by X-Amz-Target, every one of the 60 targets recognised, and
errors as botocore reads them."""

import http.client
import json
import urllib.parse

import pytest
from botocore.exceptions import ClientError

from conftest import REPO, Server, error_code

STATUS_TABLE = REPO.parent / "shared/reference/error-status.md"


def statuses_of_the_model():
    """Returns {error: HTTP status} from the first table of reference/error-status.md."""
    table = {}
    for line in STATUS_TABLE.read_text().splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[1].isdigit():
            table[cells[0]] = int(cells[1])
    return table

IMPLEMENTED = {
    "CreateEventDataStore", "GetEventDataStore", "ListEventDataStores", "UpdateEventDataStore",
    "DeleteEventDataStore", "RestoreEventDataStore", "StartEventDataStoreIngestion",
    "StopEventDataStoreIngestion", "AddTags", "RemoveTags", "ListTags",
    "StartQuery", "DescribeQuery", "GetQueryResults", "CancelQuery", "ListQueries",
    "StartImport", "GetImport", "ListImports", "ListImportFailures", "StopImport",
    "CreateChannel", "GetChannel", "ListChannels", "UpdateChannel", "DeleteChannel",
    "PutResourcePolicy", "GetResourcePolicy", "DeleteResourcePolicy", "ListPublicKeys", "LookupEvents",
    "CreateTrail", "UpdateTrail", "DeleteTrail", "GetTrail", "DescribeTrails", "ListTrails", "GetTrailStatus",
    "StartLogging", "StopLogging", "GetEventSelectors", "PutEventSelectors", "ListInsightsMetricData",
    "PutInsightSelectors", "GetInsightSelectors", "ListInsightsData",
    "CreateDashboard", "UpdateDashboard", "GetDashboard", "ListDashboards", "DeleteDashboard",
    "StartDashboardRefresh", "SearchSampleQueries", "EnableFederation", "DisableFederation",
    "GenerateQuery", "RegisterOrganizationDelegatedAdmin", "DeregisterOrganizationDelegatedAdmin",
    "GetEventConfiguration", "PutEventConfiguration",
}


def test_every_target_is_recognised(server, model):
    operations = sorted(model["operations"])
    assert len(operations) == 60
    for name in operations:
        status, headers, body = server.raw({}, target=name)
        assert status < 500, (name, status, body)
        assert headers.get("x-amzn-requestid"), name
        code = body.get("__type")
        assert code != "UnknownOperationException", name
        modelled = {e["shape"] for e in model["operations"][name].get("errors", [])}
        if name in IMPLEMENTED:
            # ValidationException: the AWS JSON services' common error, for a member's constraint
            # where the operation models no validation error (the Dashboards operations).
            assert status == 200 or code in modelled or code == "ValidationException", (name, body)
        else:
            assert status == 400 and code == "UnsupportedOperationException", (name, body)
            assert name in body["message"]
            assert headers.get("x-amzn-errortype") == "UnsupportedOperationException"


def test_the_smithy_sdks_short_target(server, model):
    """The Smithy-generated SDKs (JavaScript v3, Python) send CloudTrail_20131101.<Op>."""
    for name in sorted(model["operations"]):
        status, _, body = server.raw({}, headers={"X-Amz-Target": f"CloudTrail_20131101.{name}"})
        assert body.get("__type") != "UnknownOperationException", (name, body)
        if name not in IMPLEMENTED:
            assert status == 400 and body["__type"] == "UnsupportedOperationException", (name, body)
    status, _, body = server.raw({}, headers={"X-Amz-Target": "CloudTrail_20131101.ListEventDataStores"})
    assert status == 200 and body == {"EventDataStores": []}
    for target in ("CloudTrail_20131101ListEventDataStores", "cloudtrail_20131101.ListEventDataStores", "CloudTrail_20131101."):
        status, _, body = server.raw({}, headers={"X-Amz-Target": target})
        assert status == 400 and body["__type"] == "UnknownOperationException", target


def test_status_per_error_and_both_message_members(server):
    """The HTTP status of each error as AWS's Smithy model gives it (reference/error-status.md)."""
    table = statuses_of_the_model()
    assert table["EventDataStoreNotFoundException"] == 404 and len(table) >= 19
    store = "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/00000000-0000-4000-8000-000000000000"
    cases = [
        ("GetEventDataStore", {"EventDataStore": store}, "EventDataStoreNotFoundException"),
        ("DescribeQuery", {"QueryId": "00000000-0000-4000-8000-000000000000"}, "QueryIdNotFoundException"),
        ("GetChannel", {"Channel": "00000000-0000-4000-8000-000000000000"}, "ChannelNotFoundException"),
        ("GetImport", {"ImportId": "00000000-0000-4000-8000-000000000000"}, "ImportNotFoundException"),
        ("CreateEventDataStore", {"Name": "org", "OrganizationEnabled": True}, "OrganizationsNotInUseException"),
        ("CreateEventDataStore", {"Name": "x"}, "InvalidParameterException"),
    ]
    for target, body, code in cases:
        status, headers, reply = server.raw(body, target=target)
        assert reply["__type"] == headers["x-amzn-errortype"] == code, (target, reply)
        assert status == table.get(code, 400), (target, status, reply)
        assert reply["message"] == reply["Message"] and reply["message"], reply


def test_authenticated_before_routed(tmp_path):
    """A badly signed request is refused for its signature whatever target it names."""
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps({"credentials": [
        {"accessKeyId": "AKIAWIRE000000000001", "secretAccessKey": "wire-secret-0123456789", "accountId": "111111111111"}]}))
    server = Server(tmp_path / "lake", "--credentials", str(credentials)).start()
    try:
        for target in ("CloudTrail_20131101.ListEventDataStores", "CloudTrail_20131101.Nope", "Nope"):
            status, _, reply = server.raw({}, headers={"X-Amz-Target": target})
            assert status == 403 and reply["__type"] == "MissingAuthenticationTokenException", (target, reply)
    finally:
        server.stop()


def test_a_too_large_body_leaves_the_connection_usable(server):
    """A 413 drains the body, so a keep-alive client's next request on the socket is answered."""
    parts = urllib.parse.urlsplit(server.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Content-Type": "application/x-amz-json-1.1",
               "X-Amz-Target": "CloudTrail_20131101.CreateEventDataStore"}
    connection.request("POST", "/", body=b'{"Name":"' + b"a" * (3 * 1024 * 1024) + b'"}', headers=headers)
    response = connection.getresponse()
    assert response.status == 413 and json.loads(response.read())["__type"] == "RequestEntityTooLargeException"
    assert response.getheader("Connection") != "close"
    headers["X-Amz-Target"] = "CloudTrail_20131101.ListEventDataStores"
    connection.request("POST", "/", body=b"{}", headers=headers)
    response = connection.getresponse()
    assert response.status == 200 and json.loads(response.read()) == {"EventDataStores": []}
    # Far beyond the limit, the body is not read: the answer closes the connection and says so.
    connection.putrequest("POST", "/")
    connection.putheader("Content-Type", "application/x-amz-json-1.1")
    connection.putheader("X-Amz-Target", "CloudTrail_20131101.CreateEventDataStore")
    connection.putheader("Content-Length", str(200 * 1024 * 1024))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413 and response.getheader("Connection") == "close"
    connection.close()


def test_unknown_target(server):
    status, headers, body = server.raw({}, target="DescribeEverything")
    assert status == 400
    assert body["__type"] == "UnknownOperationException"
    assert headers["x-amzn-errortype"] == "UnknownOperationException"
    assert headers["x-amzn-requestid"]


def test_body_that_is_not_json(server):
    for body in (b"{not json", b"[1, 2]", b'"text"', b'{"Name": "abc"} trailing'):
        status, headers, reply = server.raw(body, target="CreateEventDataStore")
        assert status == 400, body
        assert reply["__type"] == "SerializationException", body
        assert headers["x-amzn-errortype"] == "SerializationException"


def test_member_of_the_wrong_type(server):
    status, _, reply = server.raw({"Name": "abc", "RetentionPeriod": "7"}, target="CreateEventDataStore")
    assert status == 400 and reply["__type"] == "SerializationException"
    assert "RetentionPeriod" in reply["message"]
    assert server.client().list_event_data_stores()["EventDataStores"] == []


def test_body_over_the_limit(server):
    status, headers, reply = server.raw(b'{"Name":"' + b"a" * (3 * 1024 * 1024) + b'"}', target="CreateEventDataStore")
    assert status == 413
    assert reply["__type"] == headers["x-amzn-errortype"]


def test_lenient_input(server):
    """An empty body is {}, null members are absent, unknown members are ignored, and the
    content types of AWS JSON 1.0 and plain JSON are accepted."""
    status, _, reply = server.raw(b"", target="ListEventDataStores")
    assert status == 200 and reply == {"EventDataStores": []}
    for content_type in ("application/json", "application/x-amz-json-1.0"):
        status, _, reply = server.raw(
            {"Name": "lenient-" + content_type[-3:].replace(".", ""), "KmsKeyId": None, "FutureMember": 1},
            target="CreateEventDataStore",
            headers={"Content-Type": content_type},
        )
        assert status == 200, reply
        assert "KmsKeyId" not in reply and reply["Status"] == "CREATED"


def test_no_route(server):
    status, headers, reply = server.raw(b"", method="GET", path="/nothing")
    assert status == 404 and reply["__type"]
    assert headers["x-amzn-requestid"]


def test_put_audit_events_is_routed_and_answers_modelled(server):
    data = server.client("cloudtrail-data")
    with pytest.raises(ClientError) as excinfo:
        data.put_audit_events(
            channelArn="arn:aws:cloudtrail:us-east-1:123456789012:channel/x",
            auditEvents=[{"id": "e1", "eventData": "{}"}],
        )
    assert error_code(excinfo) == "ChannelNotFound"
    assert excinfo.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "ChannelNotFound"
    signed_for_cloudtrail = "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/cloudtrail/aws4_request, SignedHeaders=host, Signature=00"
    status, headers, reply = server.raw(
        {"auditEvents": [{"id": "e1", "eventData": "{}"}]}, path="/PutAuditEvents?channelArn=x",
        headers={"Authorization": signed_for_cloudtrail},
    )
    assert status == 403 and reply["__type"] == headers["x-amzn-errortype"] == "InvalidSignatureException"


def test_malformed_authorization(server):
    status, _, reply = server.raw({}, target="ListEventDataStores", headers={"Authorization": "Basic abc"})
    assert status == 400 and reply["__type"] == "IncompleteSignatureException"


def test_timestamps_are_epoch_seconds(server):
    _, _, reply = server.raw({"Name": "epoch-store"}, target="CreateEventDataStore")
    assert isinstance(reply["CreatedTimestamp"], (int, float))
    assert reply["UpdatedTimestamp"] >= reply["CreatedTimestamp"]
