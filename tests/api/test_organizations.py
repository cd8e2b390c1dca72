"""Organizations: the organization a server is configured with (--organization), its delegated
administrators (Register/DeregisterOrganizationDelegatedAdmin with every modelled error), who may
make organization stores, and organization stores taking the recorded calls of every member
account while members do not see them. Accounts are development access keys of 12 digits."""

import json
import time

import pytest

from conftest import Server, error_code, store_id
from test_channels import query

MANAGEMENT, ADMIN, MEMBER, SPARE, LAST = "111111111111", "222222222222", "333333333333", "444444444444", "555555555555"
OUTSIDER = "999999999999"
ORGANIZATION = {"id": "o-exampleorg1", "managementAccountId": MANAGEMENT, "memberAccountIds": [ADMIN, MEMBER, SPARE, LAST]}


def organized_server(tmp_path, organization=ORGANIZATION):
    path = tmp_path / "organization.json"
    path.write_text(json.dumps(organization))
    return Server(tmp_path / "lake", "--organization", str(path)).start()


def refusal(call, **kwargs):
    with pytest.raises(Exception) as excinfo:
        call(**kwargs)
    return error_code(excinfo), excinfo.value.response["Error"]["Message"], excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]


def calls_of(client, store_arn, account, marker):
    return query(client, f"SELECT eventName FROM {store_id(store_arn)} WHERE recipientAccountId = '{account}' "
                         f"AND element_at(requestParameters, 'name') = '{marker}'")


def wait_for(check, timeout=30):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def test_without_an_organization_every_organization_feature_says_so(server):
    client = server.client(access_key=MANAGEMENT)
    assert refusal(client.register_organization_delegated_admin, MemberAccountId=ADMIN)[0] == "OrganizationsNotInUseException"
    assert refusal(client.deregister_organization_delegated_admin, DelegatedAdminAccountId=ADMIN)[0] == "OrganizationsNotInUseException"
    assert refusal(client.create_event_data_store, Name="org", OrganizationEnabled=True)[0] == "OrganizationsNotInUseException"


def test_delegated_administrators_and_their_errors(tmp_path):
    server = organized_server(tmp_path)
    try:
        management, admin, member, outsider = (server.client(access_key=key) for key in (MANAGEMENT, ADMIN, MEMBER, OUTSIDER))
        register, deregister = management.register_organization_delegated_admin, management.deregister_organization_delegated_admin
        assert refusal(member.register_organization_delegated_admin, MemberAccountId=SPARE)[:3:2] == ("NotOrganizationManagementAccountException", 403)
        assert refusal(outsider.register_organization_delegated_admin, MemberAccountId=SPARE)[:3:2] == ("OrganizationsNotInUseException", 404)
        assert refusal(register, MemberAccountId=MANAGEMENT)[0] == "CannotDelegateManagementAccountException"
        assert refusal(register, MemberAccountId=OUTSIDER)[:3:2] == ("AccountNotFoundException", 404)
        unchecked = server.client(validate=False, access_key=MANAGEMENT)
        code, message, _ = refusal(unchecked.register_organization_delegated_admin, MemberAccountId="12x")
        assert code == "InvalidParameterException" and "MemberAccountId" in message, message
        assert refusal(unchecked.register_organization_delegated_admin)[0] == "InvalidParameterException"

        register(MemberAccountId=ADMIN)
        assert refusal(register, MemberAccountId=ADMIN)[0] == "AccountRegisteredException"
        register(MemberAccountId=SPARE)
        register(MemberAccountId=LAST)
        deregister(DelegatedAdminAccountId=LAST)
        register(MemberAccountId=LAST)
        assert refusal(register, MemberAccountId=MEMBER)[0] == "DelegatedAdminAccountLimitExceededException"
        assert refusal(deregister, DelegatedAdminAccountId=MEMBER)[0] == "AccountNotRegisteredException"
        assert refusal(deregister, DelegatedAdminAccountId=OUTSIDER)[0] == "AccountNotFoundException"
        assert refusal(admin.deregister_organization_delegated_admin, DelegatedAdminAccountId=ADMIN)[0] == "NotOrganizationManagementAccountException"
        deregister(DelegatedAdminAccountId=SPARE)
        deregister(DelegatedAdminAccountId=LAST)

        # Who may make organization stores: the management account and delegated administrators.
        assert admin.create_event_data_store(Name="admin-org", OrganizationEnabled=True)["OrganizationEnabled"] is True
        assert management.create_event_data_store(Name="org", OrganizationEnabled=True)["OrganizationEnabled"] is True
        code, message, status = refusal(member.create_event_data_store, Name="member-org", OrganizationEnabled=True)
        assert (code, status) == ("NotOrganizationMasterAccountException", 400) and MANAGEMENT in message, message
        plain = member.create_event_data_store(Name="plain")["EventDataStoreArn"]
        assert refusal(member.update_event_data_store, EventDataStore=plain, OrganizationEnabled=True)[0] == "NotOrganizationMasterAccountException"
        assert refusal(outsider.create_event_data_store, Name="org", OrganizationEnabled=True)[0] == "OrganizationsNotInUseException"
        # Organization trails likewise: the management account's and delegated administrators' only.
        code, message, _ = refusal(member.create_trail, Name="org-trail", S3BucketName="org-logs", IsOrganizationTrail=True)
        assert code == "NotOrganizationMasterAccountException" and MANAGEMENT in message, message
        assert refusal(outsider.create_trail, Name="org-trail", S3BucketName="org-logs", IsOrganizationTrail=True)[0] == "OrganizationsNotInUseException"
    finally:
        server.stop()
    # The delegated administrators are kept under the root: a restarted server knows them.
    server = organized_server(tmp_path)
    try:
        register = server.client(access_key=MANAGEMENT).register_organization_delegated_admin
        assert refusal(register, MemberAccountId=ADMIN)[0] == "AccountRegisteredException"
    finally:
        server.stop()


def test_organization_stores_take_the_calls_of_every_member(tmp_path):
    server = organized_server(tmp_path)
    try:
        management, admin, member, outsider = (server.client(access_key=key) for key in (MANAGEMENT, ADMIN, MEMBER, OUTSIDER))
        management.register_organization_delegated_admin(MemberAccountId=ADMIN)
        org_store = management.create_event_data_store(Name="org", OrganizationEnabled=True)["EventDataStoreArn"]
        own_store = management.create_event_data_store(Name="own")["EventDataStoreArn"]
        admin_store = admin.create_event_data_store(Name="admin-org", OrganizationEnabled=True)["EventDataStoreArn"]

        # A member's calls reach both organization stores.
        member.create_event_data_store(Name="marker-member")
        wait_for(lambda: calls_of(management, org_store, MEMBER, "marker-member"))
        wait_for(lambda: calls_of(admin, admin_store, MEMBER, "marker-member"))
        assert calls_of(management, own_store, MEMBER, "marker-member") == [], "a store that is not an organization store takes its own account's calls only"
        # An account outside the organization: its calls reach its own store only.
        outsider_store = outsider.create_event_data_store(Name="outsider-own")["EventDataStoreArn"]
        outsider.create_event_data_store(Name="marker-outsider")
        wait_for(lambda: calls_of(outsider, outsider_store, OUTSIDER, "marker-outsider"))
        assert calls_of(management, org_store, OUTSIDER, "marker-outsider") == []
        # Members see the organization stores, read-only: with their owners' ARNs, not to change or query.
        listed = {s["Name"]: s["EventDataStoreArn"] for s in member.list_event_data_stores()["EventDataStores"]}
        assert set(listed) == {"org", "admin-org", "marker-member"}, listed
        assert (listed["org"], listed["admin-org"]) == (org_store, admin_store)
        got = member.get_event_data_store(EventDataStore=org_store)
        assert got["EventDataStoreArn"] == org_store and got["OrganizationEnabled"] is True
        for call, kwargs in [(member.update_event_data_store, {"RetentionPeriod": 400}),
                             (member.delete_event_data_store, {}),
                             (member.put_event_configuration, {"MaxEventSize": "Large"})]:
            with pytest.raises(Exception):
                call(EventDataStore=org_store, **kwargs)
        with pytest.raises(Exception):
            member.start_query(QueryStatement=f"SELECT count(*) FROM {store_id(org_store)}")
        assert refusal(member.get_event_data_store, EventDataStore=own_store)[0] in (
            "EventDataStoreNotFoundException", "EventDataStoreARNInvalidException")
        assert [s["Name"] for s in outsider.list_event_data_stores()["EventDataStores"]] == ["outsider-own", "marker-outsider"]

        # A deregistered administrator's organization store stops taking the members' calls.
        management.deregister_organization_delegated_admin(DelegatedAdminAccountId=ADMIN)
        member.create_event_data_store(Name="after-deregister")
        wait_for(lambda: calls_of(management, org_store, MEMBER, "after-deregister"))
        time.sleep(2)
        assert calls_of(admin, admin_store, MEMBER, "after-deregister") == []
    finally:
        server.stop()


def test_an_organization_trail_delivers_the_calls_of_every_member_under_its_account(tmp_path, s3_env, s3_server):
    import boto3

    from test_trails import log_files

    path = tmp_path / "organization.json"
    path.write_text(json.dumps(ORGANIZATION))
    server = Server(tmp_path / "lake", "--organization", str(path), "--trail-delivery-interval", "1s", env=s3_env).start()
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="org-trail-logs")
    s3.create_bucket(Bucket="own-trail-logs")
    try:
        management, member, outsider = (server.client(access_key=key) for key in (MANAGEMENT, MEMBER, OUTSIDER))
        created = management.create_trail(Name="org-trail", S3BucketName="org-trail-logs", S3KeyPrefix="org",
                                          IsOrganizationTrail=True)
        assert created["IsOrganizationTrail"] is True
        assert management.get_trail(Name="org-trail")["Trail"]["IsOrganizationTrail"] is True
        management.start_logging(Name="org-trail")
        management.create_trail(Name="own-trail", S3BucketName="own-trail-logs")
        management.start_logging(Name="own-trail")
        member.create_event_data_store(Name="marker-member")
        outsider.create_event_data_store(Name="marker-outsider")
        management.create_event_data_store(Name="marker-management")

        def made(bucket):
            files = log_files(s3, bucket)
            return {(key, r["requestParameters"]["name"]) for key, records in files.items() for r in records
                    if r["eventName"] == "CreateEventDataStore"}

        deadline = time.monotonic() + 60
        while len(made("org-trail-logs")) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        org_files = made("org-trail-logs")
        by_name = {name: key for key, name in org_files}
        assert set(by_name) == {"marker-member", "marker-management"}, org_files
        for name, account in [("marker-member", MEMBER), ("marker-management", MANAGEMENT)]:
            key = by_name[name]
            assert key.startswith(f"org/AWSLogs/o-exampleorg1/{account}/CloudTrail/us-east-1/"), key
            assert key.rsplit("/", 1)[1].startswith(f"{account}_CloudTrail_us-east-1_"), key
        # Each log file holds one account's events.
        for key, records in log_files(s3, "org-trail-logs").items():
            account = key.split("/")[3]
            assert {r["recipientAccountId"] for r in records} == {account}, key
        # A trail that is not an organization trail takes its own account's calls only.
        deadline = time.monotonic() + 30
        while not made("own-trail-logs") and time.monotonic() < deadline:
            time.sleep(0.5)
        assert {name for _, name in made("own-trail-logs")} == {"marker-management"}
        # Members see the organization trail, as the management account's, and cannot change it.
        org_arn = created["TrailARN"]
        assert org_arn.split(":")[4] == MANAGEMENT
        [seen] = member.describe_trails()["trailList"]
        assert (seen["Name"], seen["TrailARN"], seen["IsOrganizationTrail"]) == ("org-trail", org_arn, True)
        assert member.describe_trails(includeShadowTrails=False)["trailList"] == []
        assert [t["TrailARN"] for t in member.list_trails()["Trails"]] == [org_arn]
        for change in (member.stop_logging, member.delete_trail):
            with pytest.raises(Exception):
                change(Name=org_arn)
        assert management.get_trail_status(Name="org-trail")["IsLogging"] is True
        assert [t["Name"] for t in outsider.describe_trails()["trailList"]] == []
    finally:
        server.stop()


def test_an_organization_trail_delivers_each_members_call_exactly_once_across_kill_9(tmp_path, s3_env, s3_server):
    import signal

    import boto3

    from test_trails import delivered, lookup_ids

    path = tmp_path / "organization.json"
    path.write_text(json.dumps(ORGANIZATION))
    args = ("--organization", str(path), "--trail-delivery-interval", "300ms")
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="org-durable")
    server = Server(tmp_path / "lake", *args, env=s3_env).start()
    server.client(access_key=MANAGEMENT).create_trail(Name="durable", S3BucketName="org-durable", IsOrganizationTrail=True)
    server.client(access_key=MANAGEMENT).start_logging(Name="durable")
    for round_ in range(3):
        for account in (MANAGEMENT, MEMBER, ADMIN) * 5:
            server.client(access_key=account).list_event_data_stores()
        time.sleep([0.1, 0.5, 1.0][round_])
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
        server = Server(tmp_path / "lake", *args, env=s3_env).start()
    time.sleep(1.5)
    server.stop()
    server = Server(tmp_path / "lake", "--organization", str(path), env=s3_env).start()
    try:
        records = [r for r in delivered(s3, "org-durable") if r["eventName"] == "ListEventDataStores"]
        ids = [r["eventID"] for r in records]
        assert len(ids) == len(set(ids)), "an event was delivered twice"
        # Calls answered just before a kill may not be recorded (as in test_trails); every call the
        # Event history holds is delivered.
        recorded = 0
        for account in (MANAGEMENT, MEMBER, ADMIN):
            history = lookup_ids(server.client(access_key=account), "ListEventDataStores")
            assert history, account
            recorded += len(history)
            mine = {r["eventID"] for r in records if r["recipientAccountId"] == account}
            missing = set(history) - mine
            assert not missing, f"{len(missing)} recorded calls of {account} were not delivered"
        assert recorded >= 15, recorded
    finally:
        server.stop()


def test_an_organization_without_all_features(tmp_path):
    server = organized_server(tmp_path, {**ORGANIZATION, "allFeatures": False})
    try:
        management = server.client(access_key=MANAGEMENT)
        assert refusal(management.register_organization_delegated_admin, MemberAccountId=ADMIN)[0] == "OrganizationNotInAllFeaturesModeException"
        assert refusal(management.create_event_data_store, Name="org", OrganizationEnabled=True)[0] == "OrganizationNotInAllFeaturesModeException"
    finally:
        server.stop()


def test_a_bad_organization_file_stops_the_server(tmp_path):
    for organization, words in [
        ({**ORGANIZATION, "id": "org-1"}, "id"),
        ({**ORGANIZATION, "memberAccountIds": [MANAGEMENT]}, "memberAccountIds[0]"),
        ({**ORGANIZATION, "managementAccountId": "1"}, "managementAccountId"),
    ]:
        with pytest.raises(RuntimeError) as excinfo:
            organized_server(tmp_path, organization)
        assert words in str(excinfo.value), excinfo.value
