"""The AWS JSON 1.1 wire: routing by X-Amz-Target, every one of the 60 targets recognised, and
errors as botocore reads them."""

import pytest
from botocore.exceptions import ClientError

from conftest import error_code

IMPLEMENTED = {
    "CreateEventDataStore", "GetEventDataStore", "ListEventDataStores", "UpdateEventDataStore",
    "DeleteEventDataStore", "RestoreEventDataStore", "StartEventDataStoreIngestion",
    "StopEventDataStoreIngestion", "AddTags", "RemoveTags", "ListTags",
    "StartQuery", "DescribeQuery", "GetQueryResults", "CancelQuery", "ListQueries",
    "StartImport", "GetImport", "ListImports", "ListImportFailures", "StopImport",
    "CreateChannel", "GetChannel", "ListChannels", "UpdateChannel", "DeleteChannel",
    "PutResourcePolicy", "GetResourcePolicy", "DeleteResourcePolicy", "ListPublicKeys",
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
            assert status == 200 or code in modelled, (name, body)
        else:
            assert status == 400 and code == "UnsupportedOperationException", (name, body)
            assert name in body["message"]
            assert headers.get("x-amzn-errortype") == "UnsupportedOperationException"


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
