"""The event data store lifecycle through boto3, as CloudTrail Lake users script it."""

import time

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, Server, error_code, store_id

MANAGEMENT = [{"Name": "mgmt", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}]
CHANNEL_EVENTS = [{"Name": "ext", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["ActivityAuditLog"]}]}]


def raises(code, call, **kwargs):
    with pytest.raises(ClientError) as excinfo:
        call(**kwargs)
    assert error_code(excinfo) == code, excinfo.value.response["Error"]
    return excinfo.value.response["Error"]["Message"]


def test_create_applies_lake_defaults(cloudtrail):
    store = cloudtrail.create_event_data_store(Name="defaults")
    assert store["EventDataStoreArn"].startswith(f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:eventdatastore/")
    assert len(store_id(store["EventDataStoreArn"])) == 36
    assert store["Status"] == "CREATED"
    assert store["RetentionPeriod"] == 366
    assert store["MultiRegionEnabled"] is True
    assert store["OrganizationEnabled"] is False
    assert store["TerminationProtectionEnabled"] is True
    assert store["BillingMode"] == "EXTENDABLE_RETENTION_PRICING"
    assert store["AdvancedEventSelectors"][0]["FieldSelectors"] == [{"Field": "eventCategory", "Equals": ["Management"]}]
    got = cloudtrail.get_event_data_store(EventDataStore=store["EventDataStoreArn"])
    assert got["Status"] == "ENABLED"
    assert got["FederationStatus"] == "DISABLED"
    assert got["CreatedTimestamp"] == store["CreatedTimestamp"]
    fixed = cloudtrail.create_event_data_store(Name="fixed", BillingMode="FIXED_RETENTION_PRICING")
    assert fixed["RetentionPeriod"] == 2557


def test_reference_by_arn_or_id_in_any_case(cloudtrail):
    arn = cloudtrail.create_event_data_store(Name="refs")["EventDataStoreArn"]
    for reference in (arn, store_id(arn), store_id(arn).upper()):
        assert cloudtrail.get_event_data_store(EventDataStore=reference)["Name"] == "refs"
    missing = "00000000-0000-4000-8000-000000000000"
    raises("EventDataStoreNotFoundException", cloudtrail.get_event_data_store, EventDataStore=missing)
    other_account = arn.replace(ACCOUNT, "999999999999")
    raises("EventDataStoreARNInvalidException", cloudtrail.get_event_data_store, EventDataStore=other_account)
    other_region = arn.replace(REGION, "eu-west-1")
    raises("EventDataStoreARNInvalidException", cloudtrail.get_event_data_store, EventDataStore=other_region)
    channel = arn.replace("eventdatastore/", "channel/")
    raises("EventDataStoreARNInvalidException", cloudtrail.get_event_data_store, EventDataStore=channel)


def test_names_are_unique(cloudtrail):
    first = cloudtrail.create_event_data_store(Name="unique", TerminationProtectionEnabled=False)
    raises("EventDataStoreAlreadyExistsException", cloudtrail.create_event_data_store, Name="unique")
    other = cloudtrail.create_event_data_store(Name="other")
    raises("EventDataStoreAlreadyExistsException", cloudtrail.update_event_data_store,
           EventDataStore=other["EventDataStoreArn"], Name="unique")
    cloudtrail.delete_event_data_store(EventDataStore=first["EventDataStoreArn"])
    raises("EventDataStoreAlreadyExistsException", cloudtrail.create_event_data_store, Name="unique")


LIST_ENTRY_MEMBERS = {
    "EventDataStoreArn", "Name", "TerminationProtectionEnabled", "Status", "AdvancedEventSelectors",
    "MultiRegionEnabled", "OrganizationEnabled", "RetentionPeriod", "CreatedTimestamp", "UpdatedTimestamp",
}


def test_list_pages(cloudtrail):
    arns = [cloudtrail.create_event_data_store(Name=f"page-{i}")["EventDataStoreArn"] for i in range(5)]
    seen, token, pages = [], None, 0
    while True:
        kwargs = {"MaxResults": 2, **({"NextToken": token} if token else {})}
        page = cloudtrail.list_event_data_stores(**kwargs)
        pages += 1
        assert len(page["EventDataStores"]) <= 2
        seen += [s["EventDataStoreArn"] for s in page["EventDataStores"]]
        for entry in page["EventDataStores"]:
            # The members the model marks deprecated are filled too: clients in use read them.
            full = cloudtrail.get_event_data_store(EventDataStore=entry["EventDataStoreArn"])
            assert set(entry) == LIST_ENTRY_MEMBERS
            assert all(entry[member] == full[member] for member in LIST_ENTRY_MEMBERS)
        token = page.get("NextToken")
        if not token:
            break
    assert seen == arns and pages == 3
    raises("InvalidNextTokenException", cloudtrail.list_event_data_stores, NextToken="not-a-real-token")
    raises("InvalidMaxResultsException", cloudtrail.list_event_data_stores, MaxResults=1001)


def test_update(cloudtrail):
    arn = cloudtrail.create_event_data_store(Name="to-update", RetentionPeriod=90)["EventDataStoreArn"]
    updated = cloudtrail.update_event_data_store(
        EventDataStore=arn, Name="updated", RetentionPeriod=400, TerminationProtectionEnabled=False,
        MultiRegionEnabled=False,
    )
    assert (updated["Name"], updated["RetentionPeriod"]) == ("updated", 400)
    assert updated["TerminationProtectionEnabled"] is False and updated["MultiRegionEnabled"] is False
    assert updated["UpdatedTimestamp"] >= updated["CreatedTimestamp"]
    raises("InvalidParameterException", cloudtrail.update_event_data_store, EventDataStore=arn)
    raises("InvalidParameterException", cloudtrail.update_event_data_store,
           EventDataStore=arn, BillingMode="FIXED_RETENTION_PRICING")
    raises("InvalidEventSelectorsException", cloudtrail.update_event_data_store,
           EventDataStore=arn, AdvancedEventSelectors=CHANNEL_EVENTS)
    # Without a key service (--kms-keys) a key is refused; test_kms has the keys that encrypt.
    raises("KmsException", cloudtrail.update_event_data_store, EventDataStore=arn, KmsKeyId="alias/lake")
    after = cloudtrail.get_event_data_store(EventDataStore=arn)
    assert after["Name"] == "updated" and "KmsKeyId" not in after
    # Refusals change nothing: a malformed key, an organization store, an explicit empty selector list.
    for key in ["x", "alias/", f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"]:
        raises("InvalidKmsKeyIdException", cloudtrail.create_event_data_store, Name="bad-key", KmsKeyId=key)
    raises("OrganizationsNotInUseException", cloudtrail.create_event_data_store, Name="org", OrganizationEnabled=True)
    raises("OrganizationsNotInUseException", cloudtrail.update_event_data_store, EventDataStore=arn, OrganizationEnabled=True)
    raises("InvalidParameterException", cloudtrail.update_event_data_store, EventDataStore=arn, AdvancedEventSelectors=[])
    again = cloudtrail.get_event_data_store(EventDataStore=arn)
    assert {k: v for k, v in again.items() if k != "ResponseMetadata"} == {k: v for k, v in after.items() if k != "ResponseMetadata"}
    assert [s["Name"] for s in cloudtrail.list_event_data_stores()["EventDataStores"]] == ["updated"]
    assert after["BillingMode"] == "EXTENDABLE_RETENTION_PRICING"

    fixed = cloudtrail.create_event_data_store(Name="fixed-store", BillingMode="FIXED_RETENTION_PRICING")["EventDataStoreArn"]
    raises("InvalidParameterException", cloudtrail.update_event_data_store, EventDataStore=fixed, RetentionPeriod=3000)
    moved = cloudtrail.update_event_data_store(
        EventDataStore=fixed, BillingMode="EXTENDABLE_RETENTION_PRICING", RetentionPeriod=3000
    )
    assert moved["BillingMode"] == "EXTENDABLE_RETENTION_PRICING" and moved["RetentionPeriod"] == 3000


def test_delete_and_restore(cloudtrail):
    arn = cloudtrail.create_event_data_store(Name="deletable")["EventDataStoreArn"]
    raises("EventDataStoreTerminationProtectedException", cloudtrail.delete_event_data_store, EventDataStore=arn)
    cloudtrail.update_event_data_store(EventDataStore=arn, TerminationProtectionEnabled=False)
    assert cloudtrail.delete_event_data_store(EventDataStore=arn)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert cloudtrail.get_event_data_store(EventDataStore=arn)["Status"] == "PENDING_DELETION"
    # The policy operations model no InactiveEventDataStoreException.
    raises("OperationNotPermittedException", cloudtrail.get_resource_policy, ResourceArn=arn)
    assert arn in [s["EventDataStoreArn"] for s in cloudtrail.list_event_data_stores()["EventDataStores"]]
    raises("InactiveEventDataStoreException", cloudtrail.delete_event_data_store, EventDataStore=arn)
    raises("InactiveEventDataStoreException", cloudtrail.update_event_data_store, EventDataStore=arn, RetentionPeriod=30)
    raises("InactiveEventDataStoreException", cloudtrail.add_tags, ResourceId=arn, TagsList=[{"Key": "k"}])
    restored = cloudtrail.restore_event_data_store(EventDataStore=arn)
    assert restored["Status"] == "ENABLED" and restored["Name"] == "deletable"
    raises("InvalidEventDataStoreStatusException", cloudtrail.restore_event_data_store, EventDataStore=arn)


def test_ingestion_start_and_stop(cloudtrail):
    arn = cloudtrail.create_event_data_store(Name="ingesting")["EventDataStoreArn"]
    raises("InvalidEventDataStoreStatusException", cloudtrail.start_event_data_store_ingestion, EventDataStore=arn)
    cloudtrail.stop_event_data_store_ingestion(EventDataStore=arn)
    assert cloudtrail.get_event_data_store(EventDataStore=arn)["Status"] == "STOPPED_INGESTION"
    raises("InvalidEventDataStoreStatusException", cloudtrail.stop_event_data_store_ingestion, EventDataStore=arn)
    cloudtrail.start_event_data_store_ingestion(EventDataStore=arn)
    assert cloudtrail.get_event_data_store(EventDataStore=arn)["Status"] == "ENABLED"

    stopped = cloudtrail.create_event_data_store(Name="born-stopped", StartIngestion=False)
    assert cloudtrail.get_event_data_store(EventDataStore=stopped["EventDataStoreArn"])["Status"] == "STOPPED_INGESTION"

    channel_store = cloudtrail.create_event_data_store(
        Name="channel-store", AdvancedEventSelectors=CHANNEL_EVENTS, MultiRegionEnabled=False
    )["EventDataStoreArn"]
    # Channel stores start and stop too, since one created stopped must be startable.
    cloudtrail.stop_event_data_store_ingestion(EventDataStore=channel_store)
    assert cloudtrail.get_event_data_store(EventDataStore=channel_store)["Status"] == "STOPPED_INGESTION"
    cloudtrail.start_event_data_store_ingestion(EventDataStore=channel_store)
    assert cloudtrail.get_event_data_store(EventDataStore=channel_store)["Status"] == "ENABLED"

    # A store deleted while stopped comes back stopped.
    cloudtrail.update_event_data_store(EventDataStore=stopped["EventDataStoreArn"], TerminationProtectionEnabled=False)
    cloudtrail.delete_event_data_store(EventDataStore=stopped["EventDataStoreArn"])
    restored = cloudtrail.restore_event_data_store(EventDataStore=stopped["EventDataStoreArn"])
    assert restored["Status"] == "STOPPED_INGESTION"


@pytest.mark.parametrize(
    "selectors",
    [
        [{"FieldSelectors": [{"Field": "eventSource", "Equals": ["s3.amazonaws.com"]}]}],
        [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Nope"]}]}],
        [{"FieldSelectors": [{"Field": "eventCategory", "StartsWith": ["Manage"]}]}],
        [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}, {"Field": "colour", "Equals": ["x"]}]}],
        [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}, {"Field": "readOnly", "Equals": ["yes"]}]}],
        [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]}]}],
        MANAGEMENT + CHANNEL_EVENTS,
        MANAGEMENT * 6,
        [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]},
                             {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
                             {"Field": "eventName", "Equals": [f"Op{i}" for i in range(499)]}]}],
        # Data-event fields on management events, eventSource beyond leaving out KMS / RDS Data.
        [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
                             {"Field": "resources.type", "Equals": ["AWS::S3::Object"]}]}],
        [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
                             {"Field": "eventName", "Equals": ["CreateUser"]}]}],
        [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
                             {"Field": "eventSource", "Equals": ["s3.amazonaws.com"]}]}],
        [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
                             {"Field": "eventSource", "NotEquals": ["iam.amazonaws.com"]}]}],
        # One known resources.type per data selector.
        [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]},
                             {"Field": "resources.type", "Equals": ["AWS::S3::Bucket"]}]}],
        [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]},
                             {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
                             {"Field": "resources.type", "Equals": ["AWS::Lambda::Function"]}]}],
        [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]},
                             {"Field": "resources.type", "Equals": ["AWS::S3::Object", "AWS::Lambda::Function"]}]}],
    ],
)
def test_bad_selectors(cloudtrail, selectors):
    raises("InvalidEventSelectorsException", cloudtrail.create_event_data_store, Name="bad-selectors",
           AdvancedEventSelectors=selectors)
    assert cloudtrail.list_event_data_stores()["EventDataStores"] == []


def test_good_selectors_are_kept(cloudtrail):
    selectors = [
        {"Name": "writes", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
                                              {"Field": "readOnly", "Equals": ["false"]},
                                              {"Field": "eventSource", "NotEquals": ["kms.amazonaws.com"]}]},
        {"Name": "s3 data", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]},
                                               {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
                                               {"Field": "resources.ARN", "StartsWith": ["arn:aws:s3:::bucket/"]}]},
    ]
    arn = cloudtrail.create_event_data_store(Name="selective", AdvancedEventSelectors=selectors)["EventDataStoreArn"]
    assert cloudtrail.get_event_data_store(EventDataStore=arn)["AdvancedEventSelectors"] == selectors


def test_store_limit(tmp_path):
    server = Server(tmp_path / "lake", "--max-event-data-stores", "2").start()
    try:
        cloudtrail = server.client()
        first = cloudtrail.create_event_data_store(Name="one", TerminationProtectionEnabled=False)["EventDataStoreArn"]
        cloudtrail.create_event_data_store(Name="two")
        raises("EventDataStoreMaxLimitExceededException", cloudtrail.create_event_data_store, Name="three")
        cloudtrail.delete_event_data_store(EventDataStore=first)
        cloudtrail.create_event_data_store(Name="three")
        raises("EventDataStoreMaxLimitExceededException", cloudtrail.restore_event_data_store, EventDataStore=first)
        assert cloudtrail.get_event_data_store(EventDataStore=first)["Status"] == "PENDING_DELETION"
    finally:
        server.stop()


def test_purge_after_the_pending_deletion_period(tmp_path):
    server = Server(tmp_path / "lake", "--pending-deletion-period", "2s").start()
    try:
        cloudtrail = server.client()
        arn = cloudtrail.create_event_data_store(Name="short-lived", TerminationProtectionEnabled=False)["EventDataStoreArn"]
        data = tmp_path / "lake" / "stores" / store_id(arn)
        data.mkdir(parents=True)
        (data / "part-0.parquet").write_bytes(b"x")
        cloudtrail.delete_event_data_store(EventDataStore=arn)
        deadline = time.time() + 15
        while time.time() < deadline and data.joinpath("part-0.parquet").exists():
            time.sleep(0.5)
        raises("EventDataStoreNotFoundException", cloudtrail.get_event_data_store, EventDataStore=arn)
        assert not data.joinpath("part-0.parquet").exists()
        cloudtrail.create_event_data_store(Name="short-lived")
    finally:
        server.stop()
