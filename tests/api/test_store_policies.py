"""Resource policies that grant: another account queries a store (StartQuery, DescribeQuery,
GetQueryResults, CancelQuery with EventDataStoreOwnerAccountId) only as far as the store's policy
allows, by account, role (its sessions) or user; everyone else sees nothing, alike for real and
made-up stores and queries. Signed requests (SigV4) with a credentials file whose keys carry
principal ARNs; AWS's documented service forms for stores and dashboards are accepted."""

import datetime
import json
import time

import pytest

from conftest import Server, error_code, store_id
from test_auth import client
from test_queries import all_rows, load, now_utc, records, write_records

OWNER_ACCOUNT = "111111111111"
OWNER = {"accessKeyId": "AKIAOWNER00000000001", "secretAccessKey": "owner-secret-key-0001", "accountId": OWNER_ACCOUNT}
ANALYST = {
    "accessKeyId": "AKIAANALYST000000002",
    "secretAccessKey": "analyst-secret-key-02",
    "accountId": "222222222222",
    "arn": "arn:aws:sts::222222222222:assumed-role/Analysts/alice",
}
# Same account as the analyst, another role: a policy naming the role does not let it in.
INTERN = {
    "accessKeyId": "AKIAINTERN0000000003",
    "secretAccessKey": "intern-secret-key-003",
    "accountId": "222222222222",
    "arn": "arn:aws:sts::222222222222:assumed-role/Interns/bob",
}
AUDITOR = {"accessKeyId": "AKIAAUDITOR000000004", "secretAccessKey": "auditor-secret-key-04", "accountId": "333333333333"}
STRANGER = {"accessKeyId": "AKIASTRANGER00000005", "secretAccessKey": "stranger-secret-k-05", "accountId": "444444444444"}
MADE_UP = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def signed(tmp_path):
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps({"credentials": [OWNER, ANALYST, INTERN, AUDITOR, STRANGER]}))
    started = Server(tmp_path / "lake", "--credentials", str(path)).start()
    yield started
    started.stop()


def policy(arn, *statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def refusal(call, **kwargs):
    with pytest.raises(Exception) as excinfo:
        call(**kwargs)
    return error_code(excinfo), excinfo.value.response["Error"]["Message"]


def test_a_store_policy_grants_what_it_names_and_nothing_else(signed, tmp_path):
    owner, analyst, intern, auditor, stranger = (client(signed, key) for key in (OWNER, ANALYST, INTERN, AUDITOR, STRANGER))
    arn = owner.create_event_data_store(Name="shared", StartIngestion=False, RetentionPeriod=90)["EventDataStoreArn"]
    eds = store_id(arn)
    signed.env["TRAILLAKE_ACCOUNT_ID"] = OWNER_ACCOUNT  # the account `traillake load` finds the store in
    code, output = load(signed, "shared", write_records(tmp_path / "e.json", records(300, now_utc() - datetime.timedelta(hours=2))))
    assert code == 0 and "300 stored" in output, output
    statement = "SELECT eventName, count(*) AS n FROM {} GROUP BY eventName ORDER BY eventName"

    def start(caller, store=eds):
        return caller.start_query(QueryStatement=statement.format(store), EventDataStoreOwnerAccountId=OWNER_ACCOUNT)

    # No policy: nobody else sees the store, and a made-up store answers the same.
    for caller in (analyst, auditor):
        real = refusal(lambda: start(caller))
        made_up = refusal(lambda: start(caller, MADE_UP))
        assert real[0] == "EventDataStoreNotFoundException", real
        assert real == (made_up[0], made_up[1].replace(MADE_UP, eds)), (real, made_up)
        by_arn = refusal(lambda: start(caller, arn))
        assert by_arn[0] == "EventDataStoreNotFoundException", by_arn

    owner.put_resource_policy(ResourceArn=arn, ResourcePolicy=policy(arn,
        {"Sid": "analysts", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:role/Analysts"},
         "Action": ["cloudtrail:StartQuery", "cloudtrail:DescribeQuery", "cloudtrail:GetQueryResults"], "Resource": arn},
        {"Sid": "auditors", "Effect": "Allow", "Principal": {"AWS": "333333333333"}, "Action": "cloudtrail:*"},
        {"Sid": "no-cancel", "Effect": "Deny", "Principal": {"AWS": "333333333333"}, "Action": "cloudtrail:CancelQuery"},
    ))

    started = start(analyst)
    assert started["EventDataStoreOwnerAccountId"] == OWNER_ACCOUNT
    query_id = started["QueryId"]
    described = analyst.describe_query(QueryId=query_id, EventDataStoreOwnerAccountId=OWNER_ACCOUNT)
    for _ in range(300):
        if described["QueryStatus"] in ("FINISHED", "FAILED"):
            break
        time.sleep(0.1)
        described = analyst.describe_query(QueryId=query_id, EventDataStoreOwnerAccountId=OWNER_ACCOUNT)
    assert described["QueryStatus"] == "FINISHED", described
    assert described["EventDataStoreOwnerAccountId"] == OWNER_ACCOUNT
    rows = analyst.get_query_results(QueryId=query_id, EventDataStoreOwnerAccountId=OWNER_ACCOUNT)["QueryResultRows"]
    assert rows == [[{"eventName": name}, {"n": "100"}] for name in ("GetObject", "ListBuckets", "PutObject")]
    # The owner sees the rows it shares, and the query among its store's.
    assert all_rows(owner, query_id) == rows
    assert query_id in [q["QueryId"] for q in owner.list_queries(EventDataStore=arn)["Queries"]]

    # What the policy does not grant is not there, alike for a made-up query.
    made_up_query = "11111111-2222-4333-8444-555555555555"
    for call in [
        analyst.cancel_query,  # not an action the analysts' statement names
        intern.describe_query,  # another role of the analysts' account
        stranger.get_query_results,  # named nowhere
        auditor.cancel_query,  # denied
    ]:
        real = refusal(call, QueryId=query_id, EventDataStoreOwnerAccountId=OWNER_ACCOUNT)
        made_up = refusal(call, QueryId=made_up_query, EventDataStoreOwnerAccountId=OWNER_ACCOUNT)
        assert real[0] == "QueryIdNotFoundException", real
        assert real == (made_up[0], made_up[1].replace(made_up_query, query_id)), (real, made_up)
    for caller in (intern, stranger):
        assert refusal(lambda: start(caller))[0] == "EventDataStoreNotFoundException"
    # The query is the owner's: without the owner's account ID it is not the analyst's.
    assert refusal(analyst.describe_query, QueryId=query_id)[0] == "QueryIdNotFoundException"

    # cloudtrail:* lets the auditors query; their Deny keeps CancelQuery from them.
    audit = start(auditor)["QueryId"]
    assert auditor.describe_query(QueryId=audit, EventDataStoreOwnerAccountId=OWNER_ACCOUNT)["QueryId"] == audit

    # A query naming a store that is not shared is refused whole, even beside a shared one.
    other = owner.create_event_data_store(Name="private", StartIngestion=False)["EventDataStoreArn"]
    joined = f"SELECT count(*) FROM {eds} a JOIN {store_id(other)} b ON a.eventID = b.eventID"
    refused = refusal(analyst.start_query, QueryStatement=joined, EventDataStoreOwnerAccountId=OWNER_ACCOUNT)
    assert refused[0] == "EventDataStoreNotFoundException" and store_id(other) in refused[1], refused

    # The grant is the policy's: once it is deleted, the analysts' queries are gone from view.
    owner.delete_resource_policy(ResourceArn=arn)
    assert refusal(analyst.describe_query, QueryId=query_id, EventDataStoreOwnerAccountId=OWNER_ACCOUNT)[0] == "QueryIdNotFoundException"
    assert refusal(lambda: start(analyst))[0] == "EventDataStoreNotFoundException"
    # Nothing of this changed the owner's store.
    assert owner.get_event_data_store(EventDataStore=arn)["Status"] == "STOPPED_INGESTION"


def test_documented_policy_forms_are_accepted_and_bad_ones_named(signed):
    owner = client(signed, OWNER)
    arn = owner.create_event_data_store(Name="dash-source", StartIngestion=False)["EventDataStoreArn"]
    dashboard = owner.create_dashboard(Name="ops")["DashboardArn"]
    # AWS's forms for a dashboard's scheduled refresh: no Resource, the CloudTrail service, conditions.
    condition = {"StringEquals": {"AWS:SourceArn": dashboard, "AWS:SourceAccount": OWNER_ACCOUNT}}
    store_policy = policy(arn, {"Sid": "EDSPolicy", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
                                "Action": "cloudtrail:StartQuery", "Condition": condition})
    dashboard_policy = policy(dashboard, {"Sid": "DashboardPolicy", "Effect": "Allow",
                                          "Principal": {"Service": "cloudtrail.amazonaws.com"},
                                          "Action": "cloudtrail:StartDashboardRefresh", "Condition": condition})
    assert owner.put_resource_policy(ResourceArn=arn, ResourcePolicy=store_policy)["ResourcePolicy"] == store_policy
    assert owner.put_resource_policy(ResourceArn=dashboard, ResourcePolicy=dashboard_policy)["ResourcePolicy"] == dashboard_policy
    user = policy(arn, {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::222222222222:user/carol"]},
                        "Action": ["cloudtrail:StartQuery"], "Condition": {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::222222222222:*"}}})
    owner.put_resource_policy(ResourceArn=arn, ResourcePolicy=user)
    for bad, words in [
        ({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "cloudtrail:StartQuery"}, "Principal.AWS"),
        ({"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "cloudtrail:StartQuery"}, "Principal.Service"),
        ({"Effect": "Allow", "Principal": {"AWS": "222222222222"}, "Action": "s3:GetObject"}, "Action"),
        ({"Effect": "Allow", "Principal": {"AWS": "222222222222"}, "Action": "cloudtrail:StartQuery",
          "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}, "IpAddress"),
    ]:
        code, message = refusal(owner.put_resource_policy, ResourceArn=arn, ResourcePolicy=policy(arn, bad))
        assert code == "ResourcePolicyNotValidException" and words in message, (code, message)
    # The refused policies left the last good one in place.
    assert owner.get_resource_policy(ResourceArn=arn)["ResourcePolicy"] == user
