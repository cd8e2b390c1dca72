"""Every statement of ../shared/queries/lake-samples through StartQuery, against a store loaded
with all of ../shared/data/trails (and an ActivityAuditLog store and a Config store for the samples
written for those): each finishes, or is refused with InvalidQueryStatementException where the
samples' README says it must be."""

import pathlib
import re

from conftest import REPO, store_id
from test_queries import load, wait

SAMPLES = REPO.parent / "shared/queries/lake-samples"
TRAILS = REPO.parent / "shared/data/trails"

# An Athena query, and four samples that do not parse as published.
REFUSED = [
    "ConfigItemCountQuery",
    "list-all-errors-for-s3-events",
    "list-all-events-not-in-authorized-region",
    "list-attempted-s3-requests",
    "list-publicly-accessible-rds-instances",
]


def substitute(sql, cloudtrail, activity, config):
    """Fills in the samples' placeholders: store IDs, an event ID and a date."""
    replacements = [
        ("config_event_data_store_ID", config),
        ("074365db-2079-4c18-ab83-e753897b74fe", activity),
        ("181660c8-d56d-4ec1-aa32-c1713fb3bca3", cloudtrail),
        ("<event data store id>", activity),
        ("<$EVENT_ID>", "'3d0dc5f0-8a2e-4d5c-9c1a-0123456789ab'"),
        ("$EVENT_ID", "'3d0dc5f0-8a2e-4d5c-9c1a-0123456789ab'"),
        ("${date_filter}", "2017-06-01 00:00:00"),
    ]
    for placeholder, value in replacements:
        sql = sql.replace(placeholder, value)
    return re.sub(r"<\$EDS_ID>|\$EDS_ID|<EDS ID>|<event_data_store_id>|<Event data store Id>|event_data_store_ID", cloudtrail, sql)


def stores_of_samples(cloudtrail):
    """Creates the stores the samples read; returns their IDs (CloudTrail, activity, Config)."""
    trails = store_id(cloudtrail.create_event_data_store(StartIngestion=False, Name="trails", RetentionPeriod=3653)["EventDataStoreArn"])
    selectors = lambda category: [{"FieldSelectors": [{"Field": "eventCategory", "Equals": [category]}]}]
    activity = store_id(
        cloudtrail.create_event_data_store(Name="activity", AdvancedEventSelectors=selectors("ActivityAuditLog"))["EventDataStoreArn"]
    )
    config = store_id(
        cloudtrail.create_event_data_store(Name="config", AdvancedEventSelectors=selectors("ConfigurationItem"))["EventDataStoreArn"]
    )
    return trails, activity, config


def test_every_sample_finishes_or_is_refused(server, capsys):
    cloudtrail = server.client()
    trails, activity, config = stores_of_samples(cloudtrail)
    code, output = load(server, "trails", TRAILS)
    assert code == 1, "the trails hold files that are not CloudTrail records, which load reports"
    stored = int(re.search(r"(\d+) stored", output).group(1))
    assert stored > 10_000, output

    finished, refused, problems = 0, 0, []
    names = sorted(p.name for p in SAMPLES.glob("*.sql"))
    for name in names:
        sql = substitute((SAMPLES / name).read_text(), trails, activity, config)
        must_refuse = any(r in name for r in REFUSED)
        try:
            query_id = cloudtrail.start_query(QueryStatement=sql)["QueryId"]
        except cloudtrail.exceptions.InvalidQueryStatementException as error:
            if must_refuse:
                refused += 1
            else:
                problems.append(f"{name}: refused: {error}")
            continue
        if must_refuse:
            problems.append(f"{name}: accepted, but must be refused")
            continue
        described = wait(cloudtrail, query_id, timeout=120)
        if described["QueryStatus"] == "FINISHED":
            finished += 1
        else:
            problems.append(f"{name}: {described['QueryStatus']}: {described.get('ErrorMessage')}")
    with capsys.disabled():
        print(f"\n{finished} of {len(names)} lake samples finished, {refused} refused as they must be")
    assert not problems, "\n".join(problems)
    assert finished + refused == len(names) == 44
