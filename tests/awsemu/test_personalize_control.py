"""Personalize's control plane through boto3 over HTTP: resources, statuses, imports from S3, and the runtime
answering from what was imported, with filters and promotions."""

import json
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.fixtures_aws import DUMMY_CREDENTIALS, aws_client

TOP_PICKS = "arn:aws:personalize:::recipe/aws-vod-top-picks"
INTERACTIONS_SCHEMA = json.dumps(
    {
        "type": "record",
        "name": "Interactions",
        "fields": [
            {"name": "USER_ID", "type": "string"},
            {"name": "ITEM_ID", "type": "string"},
            {"name": "TIMESTAMP", "type": "long"},
            {"name": "EVENT_TYPE", "type": "string"},
        ],
        "version": "1.0",
    }
)
ITEMS_SCHEMA = json.dumps({"type": "record", "name": "Items", "fields": [
    {"name": "ITEM_ID", "type": "string"}, {"name": "TITLE", "type": "string"},
    {"name": "GENRES", "type": ["null", "string"], "categorical": True},
    {"name": "PROMOTION", "type": ["null", "string"]}], "version": "1.0"})  # fmt: skip
ITEMS_CSV = b"ITEM_ID,TITLE,GENRES,PROMOTION\ni1,One,Drama,false\ni2,Two,Comedy|Drama,false\ni3,Three,Horror,true\ni4,Four,Comedy,true\n"
# u1 saw i1 and clicked i2; u2, who also saw i1, watched i3.
INTERACTIONS_CSV = b"USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE\nu1,i1,1700000000,watch\nu1,i2,1700000001,click\nu2,i1,1700000002,watch\nu2,i3,1700000003,watch\n"  # fmt: skip


@pytest.fixture
def plane(emulator):
    emulator.configure(status_step_ms=5)
    s3 = aws_client(emulator, "s3")
    s3.create_bucket(Bucket="data")
    s3.put_object(Bucket="data", Key="items.csv", Body=ITEMS_CSV)
    s3.put_object(Bucket="data", Key="interactions/part-1.csv", Body=INTERACTIONS_CSV)
    return aws_client(emulator, "personalize")


def wait(describe, key, **arn):
    """The statuses seen until the resource settles."""
    seen = []
    for _ in range(500):
        status = describe(**arn)[key]["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in ("ACTIVE", "CREATE FAILED"):
            return seen
        time.sleep(0.002)
    raise AssertionError(f"still {seen[-1]}")


def dataset_group(plane, name="vod"):
    arn = plane.create_dataset_group(name=name, domain="VIDEO_ON_DEMAND")["datasetGroupArn"]
    wait(plane.describe_dataset_group, "datasetGroup", datasetGroupArn=arn)
    return arn


def dataset(plane, group, kind, schema, schema_name=""):
    schema_name = schema_name or f"{kind.lower()}-schema"
    schema_arn = plane.create_schema(name=schema_name, schema=schema, domain="VIDEO_ON_DEMAND")["schemaArn"]
    arn = plane.create_dataset(name=kind.lower(), schemaArn=schema_arn, datasetGroupArn=group, datasetType=kind)
    wait(plane.describe_dataset, "dataset", datasetArn=arn["datasetArn"])
    return arn["datasetArn"]


def import_job(plane, dataset_arn, location, name, mode="FULL"):
    arn = plane.create_dataset_import_job(jobName=name, datasetArn=dataset_arn, importMode=mode,
                                          dataSource={"dataLocation": location})["datasetImportJobArn"]  # fmt: skip
    return arn, wait(plane.describe_dataset_import_job, "datasetImportJob", datasetImportJobArn=arn)


@pytest.fixture
def trained(plane):
    group = dataset_group(plane)
    items = dataset(plane, group, "Items", ITEMS_SCHEMA)
    interactions = dataset(plane, group, "Interactions", INTERACTIONS_SCHEMA)
    import_job(plane, items, "s3://data/items.csv", "items-1")
    import_job(plane, interactions, "s3://data/interactions/", "interactions-1")
    recommender = plane.create_recommender(name="top-picks", datasetGroupArn=group, recipeArn=TOP_PICKS,
                                           recommenderConfig={"enableMetadataWithRecommendations": True})  # fmt: skip
    assert wait(plane.describe_recommender, "recommender", recommenderArn=recommender["recommenderArn"])[-1] == "ACTIVE"

    def make_filter(name, expression):
        arn = plane.create_filter(name=name, datasetGroupArn=group, filterExpression=expression)["filterArn"]
        wait(plane.describe_filter, "filter", filterArn=arn)
        return arn

    return {"group": group, "items": items, "interactions": interactions, "filter": make_filter,
            "recommender": recommender["recommenderArn"]}  # fmt: skip


def test_statuses_walk_from_pending_to_active(plane, emulator):
    emulator.configure(status_step_ms=100)  # wide enough that a loaded machine still sees every status
    arn = plane.create_dataset_group(name="vod", domain="VIDEO_ON_DEMAND")["datasetGroupArn"]
    assert wait(plane.describe_dataset_group, "datasetGroup", datasetGroupArn=arn) == [
        "CREATE PENDING", "CREATE IN_PROGRESS", "ACTIVE"]  # fmt: skip
    described = plane.describe_dataset_group(datasetGroupArn=arn)["datasetGroup"]
    assert described["domain"] == "VIDEO_ON_DEMAND" and described["creationDateTime"]
    assert arn == "arn:aws:personalize:us-east-1:123456789012:dataset-group/vod"


def test_names_are_unique_and_children_need_an_active_parent(plane, emulator):
    emulator.configure(status_step_ms=10_000)
    group = plane.create_dataset_group(name="vod", domain="VIDEO_ON_DEMAND")["datasetGroupArn"]
    with pytest.raises(ClientError) as excinfo:
        plane.create_dataset_group(name="vod", domain="VIDEO_ON_DEMAND")
    assert excinfo.value.response["Error"]["Code"] == "ResourceAlreadyExistsException"
    schema = plane.create_schema(name="s", schema=INTERACTIONS_SCHEMA, domain="VIDEO_ON_DEMAND")["schemaArn"]
    with pytest.raises(ClientError) as excinfo:
        plane.create_dataset(name="d", schemaArn=schema, datasetGroupArn=group, datasetType="Interactions")
    assert excinfo.value.response["Error"]["Code"] == "ResourceInUseException"


@pytest.mark.parametrize(
    "schema, message",
    [("{not json", "not a valid Avro"),
     (json.dumps({"type": "record", "name": "I", "fields": [{"name": "USER_ID", "type": "string"}]}), "ITEM_ID")],
)  # fmt: skip
def test_schemas_are_checked(plane, schema, message):
    group = dataset_group(plane)
    with pytest.raises(ClientError) as excinfo:
        arn = plane.create_schema(name="s", schema=schema, domain="VIDEO_ON_DEMAND")["schemaArn"]
        plane.create_dataset(name="d", schemaArn=arn, datasetGroupArn=group, datasetType="Interactions")
    assert excinfo.value.response["Error"]["Code"] == "InvalidInputException"
    assert message in excinfo.value.response["Error"]["Message"]


def test_recommendations_come_from_imported_data_with_metadata(trained, personalize_runtime_client):
    answer = personalize_runtime_client.get_recommendations(
        recommenderArn=trained["recommender"], userId="u1", numResults=4, metadataColumns={"ITEMS": ["TITLE", "GENRES"]}
    )
    ranked = [entry["itemId"] for entry in answer["itemList"]]
    assert ranked.index("i3") < ranked.index("i4")  # u2 shares i1 with u1 and watched i3; nobody watched i4
    assert answer["itemList"][ranked.index("i3")]["metadata"] == {"TITLE": "Three", "GENRES": "Horror"}


def test_an_exclude_filter_removes_what_the_user_interacted_with(trained, personalize_runtime_client):
    def picks(filter_arn):
        answer = personalize_runtime_client.get_recommendations(recommenderArn=trained["recommender"], userId="u1",
                                                                filterArn=filter_arn)  # fmt: skip
        return [entry["itemId"] for entry in answer["itemList"]]

    watched = trained["filter"]("no-watched", 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watch")')
    seen = trained["filter"]("no-seen", 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")')
    assert picks(watched) == ["i2", "i3", "i4"]  # i2 was only clicked
    assert picks(seen) == ["i3", "i4"]


def test_filter_values_and_promotions(trained, personalize_runtime_client):
    genre = trained["filter"]("by-genre", "INCLUDE ItemID WHERE Items.GENRES IN ($GENRE)")
    promoted = trained["filter"]("promoted", 'INCLUDE ItemID WHERE Items.PROMOTION IN ("true")')
    client, recommender = personalize_runtime_client, trained["recommender"]
    comedy = client.get_recommendations(recommenderArn=recommender, userId="u1", filterArn=genre,
                                        filterValues={"GENRE": '"Comedy"'})["itemList"]  # fmt: skip
    assert {entry["itemId"] for entry in comedy} == {"i2", "i4"}
    answer = client.get_recommendations(recommenderArn=recommender, userId="u1", numResults=2,
                                        promotions=[{"name": "staff", "percentPromotedItems": 50, "filterArn": promoted}])  # fmt: skip
    promoted_items = [e["itemId"] for e in answer["itemList"] if e.get("promotionName") == "staff"]
    assert len(answer["itemList"]) == 2 and len(promoted_items) == 1 and promoted_items[0] in ("i3", "i4")


def test_a_filter_must_be_known_and_in_the_same_dataset_group(trained, plane, personalize_runtime_client):
    other = dataset_group(plane, "other")
    dataset(plane, other, "Interactions", INTERACTIONS_SCHEMA, schema_name="other-interactions")
    foreign = plane.create_filter(name="foreign", datasetGroupArn=other,
                                  filterExpression='EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")')["filterArn"]  # fmt: skip
    wait(plane.describe_filter, "filter", filterArn=foreign)
    for filter_arn, code in ((foreign, "InvalidInputException"), (foreign + "-gone", "ResourceNotFoundException")):
        with pytest.raises(ClientError) as excinfo:
            personalize_runtime_client.get_recommendations(recommenderArn=trained["recommender"], userId="u1",
                                                           filterArn=filter_arn)  # fmt: skip
        assert excinfo.value.response["Error"]["Code"] == code


def test_a_bad_filter_expression_is_invalid(trained, plane):
    with pytest.raises(ClientError) as excinfo:
        plane.create_filter(name="bad", datasetGroupArn=trained["group"], filterExpression="EXCLUDE everything")
    assert excinfo.value.response["Error"]["Code"] == "InvalidInputException"


def test_incremental_imports_add_and_full_imports_replace(trained, plane, emulator, personalize_runtime_client):
    s3 = aws_client(emulator, "s3")
    s3.put_object(Bucket="data", Key="more.csv", Body=b"USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE\nu9,i4,1700000009,watch\n")
    import_job(plane, trained["interactions"], "s3://data/more.csv", "interactions-2", mode="INCREMENTAL")
    jobs = plane.list_dataset_import_jobs(datasetArn=trained["interactions"])["datasetImportJobs"]
    assert sorted(job["jobName"] for job in jobs) == ["interactions-1", "interactions-2"]
    assert all(job["status"] == "ACTIVE" for job in jobs)
    u9 = personalize_runtime_client.get_recommendations(recommenderArn=trained["recommender"], userId="u9",
                                                        filterArn=trained["filter"]("seen", 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")'))  # fmt: skip
    assert "i4" not in [entry["itemId"] for entry in u9["itemList"]]  # u9's new interaction counts
    s3.put_object(Bucket="data", Key="items-2.csv", Body=b"ITEM_ID,TITLE,GENRES,PROMOTION\ni9,Nine,Drama,false\n")
    import_job(plane, trained["items"], "s3://data/items-2.csv", "items-2", mode="FULL")
    listed = personalize_runtime_client.get_recommendations(recommenderArn=trained["recommender"], userId="nobody",
                                                            numResults=50)["itemList"]  # fmt: skip
    assert "i9" in {entry["itemId"] for entry in listed}


def test_a_bad_csv_fails_the_import_with_a_reason(plane, emulator):
    group = dataset_group(plane)
    interactions = dataset(plane, group, "Interactions", INTERACTIONS_SCHEMA)
    s3 = aws_client(emulator, "s3")
    s3.put_object(Bucket="data", Key="bad.csv", Body=b"USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE\nu1,i1,yesterday,watch\n")
    arn, seen = import_job(plane, interactions, "s3://data/bad.csv", "bad")
    assert seen[-1] == "CREATE FAILED"
    reason = plane.describe_dataset_import_job(datasetImportJobArn=arn)["datasetImportJob"]["failureReason"]
    assert reason == "Line 2: TIMESTAMP 'yesterday' is not a long."
    _, seen = import_job(plane, interactions, "s3://data/missing.csv", "missing")
    assert seen[-1] == "CREATE FAILED"


def test_a_recommender_without_interactions_fails(plane):
    group = dataset_group(plane)
    dataset(plane, group, "Interactions", INTERACTIONS_SCHEMA)
    arn = plane.create_recommender(name="top", datasetGroupArn=group, recipeArn=TOP_PICKS)["recommenderArn"]
    assert wait(plane.describe_recommender, "recommender", recommenderArn=arn)[-1] == "CREATE FAILED"
    assert "Insufficient data" in plane.describe_recommender(recommenderArn=arn)["recommender"]["failureReason"]


def test_metadata_needs_the_recommender_option(trained, plane, personalize_runtime_client):
    arn = plane.create_recommender(name="plain", datasetGroupArn=trained["group"], recipeArn=TOP_PICKS)[
        "recommenderArn"
    ]
    wait(plane.describe_recommender, "recommender", recommenderArn=arn)
    with pytest.raises(ClientError) as excinfo:
        personalize_runtime_client.get_recommendations(recommenderArn=arn, userId="u1",
                                                       metadataColumns={"ITEMS": ["TITLE"]})  # fmt: skip
    assert "enableMetadataWithRecommendations" in excinfo.value.response["Error"]["Message"]


def test_list_paginates_and_delete_respects_dependencies(trained, plane):
    for n in range(3):
        trained["filter"](f"f{n}", 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watch")')
    pages = list(plane.get_paginator("list_filters").paginate(datasetGroupArn=trained["group"],
                                                              PaginationConfig={"PageSize": 2}))  # fmt: skip
    assert [len(page["Filters"]) for page in pages] == [2, 1]
    with pytest.raises(ClientError) as excinfo:
        plane.delete_dataset_group(datasetGroupArn=trained["group"])
    assert excinfo.value.response["Error"]["Code"] == "ResourceInUseException"
    plane.delete_recommender(recommenderArn=trained["recommender"])
    with pytest.raises(ClientError) as excinfo:
        plane.describe_recommender(recommenderArn=trained["recommender"])
    assert excinfo.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_resources_belong_to_the_callers_region(trained, emulator):
    elsewhere = boto3.client("personalize", endpoint_url=emulator.url, region_name="eu-west-1", **DUMMY_CREDENTIALS)
    assert elsewhere.list_dataset_groups()["datasetGroups"] == []
    with pytest.raises(ClientError):
        elsewhere.describe_dataset_group(datasetGroupArn=trained["group"])


def test_control_plane_throttling_is_retried_on_the_wire(plane, emulator):
    client = aws_client(emulator, "personalize", retries={"mode": "standard", "total_max_attempts": 3})
    emulator.configure(model_id="CreateDatasetGroup", fail_next=1)
    client.create_dataset_group(name="vod", domain="VIDEO_ON_DEMAND")
    assert [r.status for r in emulator.requests.filter(operation="CreateDatasetGroup")] == [400, 200]
