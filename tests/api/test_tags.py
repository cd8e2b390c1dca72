"""AddTags, RemoveTags and ListTags on event data stores."""

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, error_code


def raises(code, call, **kwargs):
    with pytest.raises(ClientError) as excinfo:
        call(**kwargs)
    assert error_code(excinfo) == code, excinfo.value.response["Error"]


def tags_of(cloudtrail, arn):
    return cloudtrail.list_tags(ResourceIdList=[arn])["ResourceTagList"][0]["TagsList"]


def test_add_list_remove(cloudtrail):
    arn = cloudtrail.create_event_data_store(Name="tagged", TagsList=[{"Key": "team", "Value": "sec"}])["EventDataStoreArn"]
    cloudtrail.add_tags(ResourceId=arn, TagsList=[{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "audit"}])
    assert tags_of(cloudtrail, arn) == [{"Key": "team", "Value": "audit"}, {"Key": "env", "Value": "prod"}]
    cloudtrail.add_tags(ResourceId=arn, TagsList=[{"Key": "flag"}])
    assert {"Key": "flag"} in tags_of(cloudtrail, arn)
    cloudtrail.remove_tags(ResourceId=arn, TagsList=[{"Key": "team"}, {"Key": "absent"}])
    assert [t["Key"] for t in tags_of(cloudtrail, arn)] == ["env", "flag"]
    other = cloudtrail.create_event_data_store(Name="untagged")["EventDataStoreArn"]
    listed = cloudtrail.list_tags(ResourceIdList=[arn, other])["ResourceTagList"]
    assert [r["ResourceId"] for r in listed] == [arn, other]
    assert listed[1]["TagsList"] == []


def test_limit_of_fifty(cloudtrail):
    arn = cloudtrail.create_event_data_store(Name="many-tags")["EventDataStoreArn"]
    cloudtrail.add_tags(ResourceId=arn, TagsList=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    raises("TagsLimitExceededException", cloudtrail.add_tags, ResourceId=arn, TagsList=[{"Key": "one-more"}])
    assert len(tags_of(cloudtrail, arn)) == 50
    cloudtrail.add_tags(ResourceId=arn, TagsList=[{"Key": "k0", "Value": "replaced"}])
    raises("InvalidTagParameterException", cloudtrail.create_event_data_store, Name="too-many",
           TagsList=[{"Key": f"k{i}"} for i in range(51)])


@pytest.mark.parametrize(
    "tags",
    [
        [{"Key": "aws:reserved", "Value": "x"}],
        [{"Key": "dup"}, {"Key": "dup"}],
        [{"Key": "k" * 129}],
        [{"Key": "k", "Value": "v" * 257}],
        [{"Key": "bad#key"}],
    ],
)
def test_bad_tags(server, tags):
    cloudtrail = server.client(validate=False)
    arn = cloudtrail.create_event_data_store(Name="tag-target")["EventDataStoreArn"]
    raises("InvalidTagParameterException", cloudtrail.add_tags, ResourceId=arn, TagsList=tags)
    raises("InvalidTagParameterException", cloudtrail.create_event_data_store, Name="tag-create", TagsList=tags)
    assert tags_of(cloudtrail, arn) == []


def test_bad_resources(cloudtrail):
    arn = cloudtrail.create_event_data_store(Name="resource-target")["EventDataStoreArn"]
    tag = [{"Key": "k"}]
    raises("CloudTrailARNInvalidException", cloudtrail.add_tags, ResourceId="not-an-arn", TagsList=tag)
    raises("EventDataStoreARNInvalidException", cloudtrail.add_tags,
           ResourceId=arn.replace(ACCOUNT, "999999999999"), TagsList=tag)
    raises("EventDataStoreNotFoundException", cloudtrail.add_tags,
           ResourceId=arn[:-36] + "00000000-0000-4000-8000-000000000000", TagsList=tag)
    raises("ResourceTypeNotSupportedException", cloudtrail.add_tags,
           ResourceId=f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:widget/x", TagsList=tag)
    raises("ResourceNotFoundException", cloudtrail.add_tags,
           ResourceId=f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/my-trail", TagsList=tag)
    raises("ResourceNotFoundException", cloudtrail.add_tags,
           ResourceId=f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:dashboard/my-dashboard", TagsList=tag)
    # ListTags models no error for too many ARNs nor ChannelNotFoundException.
    raises("ValidationException", cloudtrail.list_tags, ResourceIdList=[arn] * 21)
    raises("ResourceNotFoundException", cloudtrail.list_tags,
           ResourceIdList=[f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:channel/00000000-0000-4000-8000-000000000000"])
    raises("CloudTrailARNInvalidException", cloudtrail.list_tags, ResourceIdList=[])
    assert tags_of(cloudtrail, arn) == []
