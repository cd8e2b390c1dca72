"""Bad input, driven by the botocore model: for every member of every implemented operation, the
missing-required, too-short, too-long, bad-pattern, out-of-range, bad-enum and too-many-items
cases are sent with client-side validation off, and each must get a 400 with an error code the
model lists for the operation and a message naming the member. Afterwards the stored state is
exactly what it was."""

import json

import pytest

from test_persistence import snapshot

FREE_PATTERNS = {None, ".*", "(?s).*"}


def violations(model, shape_name, base):
    """Yields (description, member, request) for each constraint of the input shape's members."""
    shape = model["shapes"][shape_name]
    for member in shape.get("required", []):
        request = {k: v for k, v in base.items() if k != member}
        yield f"{member} missing", member, request
    for member, ref in shape["members"].items():
        target = model["shapes"][ref["shape"]]
        kind = target["type"]
        bad_values = []
        if kind == "string" and "enum" in target:
            bad_values.append(("not in the enum", "NOT_A_VALUE"))
        elif kind == "string":
            low, high = target.get("min", 0), target.get("max")
            if low > 0:
                bad_values.append(("too short", "a" * (low - 1)))
            if high is not None:
                bad_values.append(("too long", "a" * (high + 1)))
            if target.get("pattern") not in FREE_PATTERNS:
                text = ("bad value!" * 10)[: max(low, min(10, high or 10))]
                bad_values.append(("bad pattern", text))
        elif kind in ("integer", "long"):
            if "min" in target:
                bad_values.append(("below range", target["min"] - 1))
            if "max" in target:
                bad_values.append(("above range", target["max"] + 1))
        elif kind == "list" and "max" in target:
            item_is_text = model["shapes"][target["member"]["shape"]]["type"] == "string"
            items = [f"v{i}" if item_is_text else {"Key": f"k{i}", "Value": "v"} for i in range(target["max"] + 1)]
            bad_values.append(("too many items", items))
        for description, value in bad_values:
            yield f"{member} {description}", member, {**base, member: value}


@pytest.fixture
def stores(server):
    cloudtrail = server.client()
    protected = cloudtrail.create_event_data_store(Name="protected", TagsList=[{"Key": "keep", "Value": "me"}])
    stopped = cloudtrail.create_event_data_store(Name="stopped", StartIngestion=False, TerminationProtectionEnabled=False)
    return protected["EventDataStoreArn"], stopped["EventDataStoreArn"]


def test_every_constraint_of_the_model_is_checked(server, model, stores):
    arn, _ = stores
    cloudtrail = server.client()
    before = snapshot(cloudtrail)
    bases = {
        "CreateEventDataStore": {"Name": "valid-name"},
        "GetEventDataStore": {"EventDataStore": arn},
        "ListEventDataStores": {},
        "UpdateEventDataStore": {"EventDataStore": arn, "RetentionPeriod": 100},
        "DeleteEventDataStore": {"EventDataStore": arn},
        "RestoreEventDataStore": {"EventDataStore": arn},
        "StartEventDataStoreIngestion": {"EventDataStore": arn},
        "StopEventDataStoreIngestion": {"EventDataStore": arn},
        "AddTags": {"ResourceId": arn, "TagsList": [{"Key": "k", "Value": "v"}]},
        "RemoveTags": {"ResourceId": arn, "TagsList": [{"Key": "keep"}]},
        "ListTags": {"ResourceIdList": [arn]},
        "StartQuery": {"QueryStatement": f"SELECT eventName FROM {arn.rsplit('/', 1)[1]}"},
        "DescribeQuery": {"QueryId": "00000000-0000-4000-8000-000000000000"},
        "GetQueryResults": {"QueryId": "00000000-0000-4000-8000-000000000000"},
        "CancelQuery": {"QueryId": "00000000-0000-4000-8000-000000000000"},
        "ListQueries": {"EventDataStore": arn},
    }
    checked = 0
    for operation, base in bases.items():
        spec = model["operations"][operation]
        modelled = {error["shape"] for error in spec.get("errors", [])}
        for description, member, request in violations(model, spec["input"]["shape"], base):
            status, headers, reply = server.raw(request, target=operation)
            where = f"{operation}: {description}: {json.dumps(reply)[:300]}"
            assert status == 400, where
            assert reply["__type"] in modelled, where
            assert headers["x-amzn-errortype"] == reply["__type"], where
            assert member in reply["message"], where
            checked += 1
    assert checked >= 60
    assert snapshot(cloudtrail) == before


@pytest.mark.parametrize(
    "operation, request_body, code",
    [
        ("CreateEventDataStore", {"Name": "x" * 3, "AdvancedEventSelectors": [{"FieldSelectors": []}]}, "InvalidParameterException"),
        ("CreateEventDataStore", {"Name": "sel", "AdvancedEventSelectors": [{"FieldSelectors": [{"Field": "bad field!"}]}]}, "InvalidParameterException"),
        ("CreateEventDataStore", {"Name": "sel", "AdvancedEventSelectors": [{"FieldSelectors": [{"Field": "eventCategory", "Equals": [""]}]}]}, "InvalidParameterException"),
        ("CreateEventDataStore", {"Name": "tag", "TagsList": [{"Value": "no key"}]}, "InvalidTagParameterException"),
        ("CreateEventDataStore", {"Name": "fixed", "BillingMode": "FIXED_RETENTION_PRICING", "RetentionPeriod": 2558}, "InvalidParameterException"),
        ("AddTags", {"ResourceId": "STORE"}, "InvalidTagParameterException"),
        ("AddTags", {"TagsList": [{"Key": "k"}]}, "CloudTrailARNInvalidException"),
        ("ListEventDataStores", {"NextToken": "abc"}, "InvalidNextTokenException"),
        ("ListEventDataStores", {"MaxResults": 0}, "InvalidMaxResultsException"),
        # The refusals of the reference that the model's constraints do not carry.
        ("CreateEventDataStore", {"Name": "kms", "KmsKeyId": "not a key"}, "InvalidParameterException"),
        ("CreateEventDataStore", {"Name": "kms", "KmsKeyId": "key/x"}, "InvalidKmsKeyIdException"),
        ("UpdateEventDataStore", {"EventDataStore": "STORE", "KmsKeyId": "arn:aws:kms:eu-west-1:123456789012:alias/k"}, "InvalidKmsKeyIdException"),
        ("CreateEventDataStore", {"Name": "org", "OrganizationEnabled": True}, "OrganizationsNotInUseException"),
        ("UpdateEventDataStore", {"EventDataStore": "STORE", "OrganizationEnabled": True}, "OrganizationsNotInUseException"),
        ("UpdateEventDataStore", {"EventDataStore": "STORE", "AdvancedEventSelectors": []}, "InvalidParameterException"),
        ("UpdateChannel", {"Channel": "00000000-0000-4000-8000-000000000000", "Destinations": []}, "InvalidParameterException"),
        ("CreateEventDataStore", {"Name": "sel", "AdvancedEventSelectors": [{"FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Management"]}, {"Field": "resources.ARN", "StartsWith": ["arn:aws:s3:::b/"]}]}]},
         "InvalidEventSelectorsException"),
        ("CreateEventDataStore", {"Name": "sel", "AdvancedEventSelectors": [{"FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Data"]}, {"Field": "resources.type", "Equals": ["AWS::Nope::Thing"]}]}]},
         "InvalidEventSelectorsException"),
        ("ListChannels", {"MaxResults": 0}, "ValidationException"),
        ("ListTags", {"ResourceIdList": ["STORE"] * 21}, "ValidationException"),
    ],
)
def test_nested_and_cross_member_rules(server, stores, operation, request_body, code):
    arn, _ = stores
    cloudtrail = server.client()
    before = snapshot(cloudtrail)
    def fill(value):
        return arn if value == "STORE" else [fill(v) for v in value] if isinstance(value, list) else value

    request_body = {k: fill(v) for k, v in request_body.items()}
    status, _, reply = server.raw(request_body, target=operation)
    assert reply["__type"] == code, reply
    assert status == (404 if code == "OrganizationsNotInUseException" else 400), (status, reply)
    assert snapshot(cloudtrail) == before
