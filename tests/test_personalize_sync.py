"""`personalize_sync` and the Personalize runtime adapter, through real boto3 against the emulator over HTTP:
export, resources, waiting, re-runs, tenants apart, a tenant's own account, and a campaign written from the
emulated recommender's picks."""

import csv
import io
import re
from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command

from campaigns import generation, services
from campaigns.models import Campaign, EmailStatus, GeneratedEmail
from datasets.models import Contact, Interaction, Item
from recommendations.base import RecommendationOptions
from recommendations.personalize import PersonalizeError, PersonalizeRecommender, get_recommendations
from tenants.models import Tenant
from tests.fixtures_aws import BUCKET, aws_client

ROLE = "arn:aws:iam::222233334444:role/MailsaasAccess"
CREATES = ("CreateDatasetGroup", "CreateSchema", "CreateDataset", "CreateDatasetImportJob", "CreateRecommender",
           "CreateFilter")  # fmt: skip


def sync(slug="acme", **options):
    call_command("personalize_sync", tenant=slug, poll_seconds=0.002, **options)
    return Tenant.objects.get(slug=slug)


def creates(emulator):
    return [r.operation for r in emulator.requests if r.operation in CREATES]


def csv_rows(emulator, kind, slug="acme"):
    s3 = aws_client(emulator, "s3")
    objects = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"personalize/{slug}/{kind}-")["Contents"]
    newest = max(objects, key=lambda o: o["LastModified"])["Key"]
    body = s3.get_object(Bucket=BUCKET, Key=newest)["Body"].read().decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_sync_exports_creates_waits_and_stores_the_arns(aws_settings, emulator, tenant, catalog, capsys):
    contacts, items = catalog
    emulator.configure(status_step_ms=50)  # long enough for the first look to find each resource still pending
    synced = sync()
    out = capsys.readouterr().out
    assert re.search(r"dataset group: CREATE (PENDING|IN_PROGRESS) .*\n.*dataset group: ACTIVE", out)
    assert re.search(r"recommender: CREATE (PENDING|IN_PROGRESS)", out) and "recommender: ACTIVE" in out
    assert "imported 6 users, 12 items, 18 interactions" in out
    assert synced.personalize_recommender_arn.endswith(f":recommender/ms{tenant.pk}-acme-top-picks")
    assert synced.personalize_filter_arn.endswith(f":filter/ms{tenant.pk}-acme-exclude-seen")
    assert synced.personalize_dataset_group_arn.endswith(f":dataset-group/ms{tenant.pk}-acme-vod")
    assert synced.personalize_exported_through == Interaction.objects.for_tenant(tenant).latest("pk").pk
    assert synced.personalize_synced_at is not None

    users, exported_items = csv_rows(emulator, "users"), csv_rows(emulator, "items")
    assert list(users[0]) == ["USER_ID", "AGE", "GENDER"]  # no names, no e-mail addresses
    assert {row["USER_ID"] for row in users} == {c.external_id for c in contacts}
    assert list(exported_items[0])[:3] == ["ITEM_ID", "TITLE", "YEAR"] and len(exported_items) == 12
    assert exported_items[0]["GENRES"] == "Comedy" and exported_items[0]["PROMOTION"] == "false"
    assert len(csv_rows(emulator, "interactions")) == 18

    plane = aws_client(emulator, "personalize")
    recommender = plane.describe_recommender(recommenderArn=synced.personalize_recommender_arn)["recommender"]
    assert recommender["recipeArn"] == "arn:aws:personalize:::recipe/aws-vod-top-picks"
    assert recommender["recommenderConfig"]["enableMetadataWithRecommendations"] is True
    group = plane.describe_dataset_group(datasetGroupArn=synced.personalize_dataset_group_arn)["datasetGroup"]
    assert group["domain"] == "VIDEO_ON_DEMAND"
    expression = plane.describe_filter(filterArn=synced.personalize_filter_arn)["filter"]["filterExpression"]
    assert expression == 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")'
    datasets = plane.list_datasets(datasetGroupArn=group["datasetGroupArn"])["datasets"]
    jobs = plane.list_dataset_import_jobs(datasetArn=datasets[0]["datasetArn"])["datasetImportJobs"]
    job = plane.describe_dataset_import_job(datasetImportJobArn=jobs[0]["datasetImportJobArn"])["datasetImportJob"]
    assert job["roleArn"] == aws_settings.PERSONALIZE_ROLE_ARN and job["importMode"] == "FULL"


def test_running_again_reuses_everything_and_imports_only_new_interactions(aws_settings, emulator, tenant, catalog):
    contacts, items = catalog
    first = sync()
    assert creates(emulator).count("CreateDatasetImportJob") == 3
    emulator.requests.clear()
    assert sync().personalize_recommender_arn == first.personalize_recommender_arn
    assert creates(emulator) == []  # nothing new: no resource, no import

    Interaction.objects.for_tenant(tenant).create(tenant=tenant, contact=contacts[0], item=items[-1],
                                                  event_type="watch", timestamp=datetime(2025, 6, 1, tzinfo=UTC))  # fmt: skip
    s3 = aws_client(emulator, "s3")
    for old in s3.list_objects_v2(Bucket=BUCKET, Prefix="personalize/acme/interactions-")["Contents"]:
        s3.delete_object(Bucket=BUCKET, Key=old["Key"])  # the import has read it; what follows is new
    emulator.requests.clear()
    third = sync()
    assert creates(emulator) == ["CreateDatasetImportJob"]
    assert third.personalize_exported_through > first.personalize_exported_through
    new_rows = csv_rows(emulator, "interactions")
    assert [(r["USER_ID"], r["ITEM_ID"]) for r in new_rows] == [(contacts[0].external_id, items[-1].external_id)]
    plane = aws_client(emulator, "personalize")
    interactions = next(d for d in plane.list_datasets(datasetGroupArn=third.personalize_dataset_group_arn)["datasets"]
                        if d["datasetType"] == "INTERACTIONS")  # fmt: skip
    modes = sorted(j["importMode"] for j in plane.list_dataset_import_jobs(datasetArn=interactions["datasetArn"])
                   ["datasetImportJobs"])  # fmt: skip
    assert modes == ["FULL", "INCREMENTAL"]
    assert len(plane.list_dataset_groups()["datasetGroups"]) == 1
    assert len(plane.list_recommenders(datasetGroupArn=third.personalize_dataset_group_arn)["recommenders"]) == 1


def test_an_interrupted_sync_resumes_the_import_it_started(aws_settings, emulator, tenant, catalog):
    aws_settings.AWS_MAX_ATTEMPTS = 1
    emulator.configure(model_id="DescribeDatasetImportJob", fail_next=1, fail_with="internal")
    with pytest.raises(CommandError, match="describe_dataset_import_job: InternalFailure"):
        sync()
    assert Tenant.objects.get(pk=tenant.pk).personalize_exported_through == 0  # the rows were not confirmed
    emulator.requests.clear()
    synced = sync()
    assert "CreateDatasetImportJob" not in creates(emulator)  # it waited for the jobs it had started
    assert synced.personalize_exported_through == Interaction.objects.for_tenant(tenant).latest("pk").pk


def test_throttled_control_plane_calls_are_retried_on_the_wire(aws_settings, emulator, tenant, catalog):
    emulator.configure(model_id="CreateRecommender", fail_next=1)
    sync()
    assert [r.status for r in emulator.requests.filter(operation="CreateRecommender")] == [400, 200]


def test_campaign_with_the_personalize_backend_writes_about_the_emulated_picks(
    bedrock_settings, aws_settings, emulator, scoped, tenant, catalog, capsys
):
    contacts, items = catalog
    synced = sync(use=True)
    assert synced.recommender == "personalize" and "now recommends with Personalize" in capsys.readouterr().out
    runtime = aws_client(emulator, "personalize-runtime")

    def emulated_picks(contact, n):
        answer = runtime.get_recommendations(recommenderArn=synced.personalize_recommender_arn, userId=contact.external_id,
                                             filterArn=synced.personalize_filter_arn, numResults=n)  # fmt: skip
        return [entry["itemId"] for entry in answer["itemList"]]

    campaign = Campaign.objects.create(tenant=synced, name="Personalized", n_items=2)
    run = services.campaign_launch(campaign=campaign, limit=3)
    for chunk in services.run_start(run=run, limit=3):
        generation.run_generate_chunk(run=run, contact_ids=chunk)
    emails = list(GeneratedEmail.objects.filter(run=run).select_related("contact").order_by("pk"))
    assert len(emails) == 3 and {email.status for email in emails} == {EmailStatus.DRAFT}
    titles = {item.external_id: item.title for item in items}
    for email in emails:
        picked = [item["id"] for item in email.items]
        assert picked == emulated_picks(email.contact, 2)
        seen = set(email.contact.interactions.values_list("item__external_id", flat=True))
        assert not seen & set(picked)
        assert all(titles[item_id] in email.body for item_id in picked)
    assert len(emulator.requests.filter(operation="GetRecommendations", status=200)) >= 3


def test_each_tenant_syncs_only_its_own_data(aws_settings, emulator, tenant, catalog, other_tenant, other_catalog):
    sync()
    theirs = sync("globex")
    assert {row["USER_ID"] for row in csv_rows(emulator, "users")} == {f"u{i}" for i in range(6)}
    assert {row["ITEM_ID"] for row in csv_rows(emulator, "items", "globex")} == {f"gm{i}" for i in range(8)}
    ours = Tenant.objects.get(slug="acme")
    assert ours.personalize_dataset_group_arn != theirs.personalize_dataset_group_arn
    ours_items = {i.external_id for i in Item.objects.for_tenant(ours)}
    for contact in Contact.objects.for_tenant(ours):
        picks = get_recommendations(tenant=ours, recommender_arn=ours.personalize_recommender_arn,
                                    user_id=contact.external_id, n=20)  # fmt: skip
        assert picks and {p.external_id for p in picks} <= ours_items
    with pytest.raises(PersonalizeError):  # another tenant's filter belongs to another dataset group
        get_recommendations(tenant=ours, recommender_arn=ours.personalize_recommender_arn, user_id="u0", n=3,
                            filter_arn=theirs.personalize_filter_arn)  # fmt: skip


def test_a_tenant_with_its_own_account_syncs_there(aws_settings, emulator, tenant, catalog):
    emulator.sts.add_role(ROLE, external_id="acme-ext-1")
    aws_client(emulator, "s3").create_bucket(Bucket="acme-personalize")
    tenant.aws_role_arn, tenant.aws_external_id, tenant.personalize_bucket = ROLE, "acme-ext-1", "acme-personalize"
    tenant.personalize_role_arn = "arn:aws:iam::222233334444:role/PersonalizeS3"
    tenant.save()
    emulator.requests.clear()
    synced = sync()
    assert synced.personalize_recommender_arn.startswith("arn:aws:personalize:us-east-1:222233334444:recommender/")
    calls = emulator.requests.snapshot()
    assert [r.operation for r in calls].count("AssumeRole") == 1
    assert {r.access_key[:4] for r in calls if r.operation != "AssumeRole"} == {"ASIA"}
    assert aws_client(emulator, "s3").list_objects_v2(Bucket="acme-personalize")["KeyCount"] == 3
    picks = PersonalizeRecommender(synced).top_picks(list(Contact.objects.for_tenant(synced)[:1]), 3)
    assert len(next(iter(picks.values()))) == 3


def test_without_a_bucket_it_says_what_to_do(aws_settings, tenant, catalog):
    aws_settings.PERSONALIZE_BUCKET = ""
    with pytest.raises(CommandError, match="set PERSONALIZE_BUCKET"):
        sync()
    aws_settings.PERSONALIZE_BUCKET = "nowhere-bucket"
    with pytest.raises(CommandError, match="bucket nowhere-bucket does not exist"):
        sync()
    with pytest.raises(CommandError, match="No tenant"):
        sync("missing")


def test_a_failed_resource_reports_the_reason_from_aws(aws_settings, tenant):
    Contact.objects.for_tenant(tenant).create(tenant=tenant, external_id="u1", email="u1@example.com")
    Item.objects.for_tenant(tenant).create(tenant=tenant, external_id="m1", title="Only", genres=["Drama"])
    with pytest.raises(CommandError, match="recommender .* failed: Insufficient data"):
        sync()


def test_waiting_gives_up_at_the_timeout(aws_settings, emulator, tenant, catalog):
    emulator.configure(status_step_ms=60_000)
    with pytest.raises(CommandError, match="gave up waiting for dataset group; run again"):
        sync(timeout_minutes=0.001)


def test_the_runtime_adapter_maps_metadata_and_errors(aws_settings, emulator, tenant, catalog):
    synced = sync()
    contact = Contact.objects.for_tenant(tenant).get(external_id="u0")
    picks = PersonalizeRecommender(synced).top_picks([contact], 3)[contact.pk]
    item = Item.objects.for_tenant(tenant).get(external_id=picks[0].external_id)
    assert (picks[0].title, picks[0].year, picks[0].genres, picks[0].plot) == (
        item.title, item.year, tuple(item.genres), item.plot)  # fmt: skip
    request = emulator.requests.filter(operation="GetRecommendations")[-1]
    assert request.model_id == synced.personalize_recommender_arn
    with pytest.raises(PersonalizeError) as raised:
        get_recommendations(
            tenant=tenant, recommender_arn=synced.personalize_recommender_arn + "-gone", user_id="u0", n=3
        )
    assert raised.value.permanent and raised.value.code == "ResourceNotFoundException"
    aws_settings.AWS_MAX_ATTEMPTS = 2
    emulator.configure(model_id=synced.personalize_recommender_arn, fail_next=5, fail_with="internal")
    with pytest.raises(PersonalizeError) as raised:
        get_recommendations(tenant=tenant, recommender_arn=synced.personalize_recommender_arn, user_id="u0", n=3)
    assert not raised.value.permanent
    assert len(emulator.requests.filter(operation="GetRecommendations", status=500)) == 2
    aws_settings.AWS_ENDPOINT_URLS = {**aws_settings.AWS_ENDPOINT_URLS, "personalize-runtime": "http://127.0.0.1:9"}
    with pytest.raises(PersonalizeError) as raised:  # nothing listens there: worth another try later
        get_recommendations(tenant=tenant, recommender_arn=synced.personalize_recommender_arn, user_id="u0", n=3)
    assert not raised.value.permanent and raised.value.code == "EndpointConnectionError"


def test_campaign_options_narrow_the_picks(aws_settings, emulator, tenant, catalog):
    contacts, items = catalog
    Item.objects.for_tenant(tenant).filter(external_id="m1").update(maturity_rating=4)  # R
    synced = sync()
    recommender, contact = PersonalizeRecommender(synced), contacts[0]
    everything = [p.external_id for p in recommender.top_picks([contact], 9)[contact.pk]]
    assert "m1" in everything and any(p for p in everything if p != "m1")
    options = RecommendationOptions(
        exclude_genres=("Horror",), max_maturity=3, exclude_items={contact.pk: [everything[0]]}
    )
    narrowed = recommender.top_picks([contact], 3, options)[contact.pk]
    assert len(narrowed) == 3
    assert everything[0] not in {p.external_id for p in narrowed} and "m1" not in {p.external_id for p in narrowed}
    assert all("Horror" not in p.genres for p in narrowed)
    assert emulator.requests.filter(operation="GetRecommendations")[-1].status == 200
