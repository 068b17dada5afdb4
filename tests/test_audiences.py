"""Recurring audiences: everyone, a saved filter, not emailed lately, active since the last run; worked out afresh
at every run, and refused with the key's name when the JSON is wrong."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns import services
from campaigns.audiences import AudienceError, audience_check, audience_contacts, audience_describe
from campaigns.models import Campaign, CampaignRun, EmailStatus, GeneratedEmail
from datasets.models import Contact, Interaction, Item
from tests.conftest import make_catalog

API = "/api/v1"


@pytest.fixture
def people(scoped):
    """Six contacts aged 20..25, female at odd ids; u5 unsubscribed; u1 a gold member in de_DE."""
    contacts, items = make_catalog(scoped, n_contacts=6)
    Contact.objects.filter(pk=contacts[5].pk).update(unsubscribed=True)
    Contact.objects.filter(pk=contacts[1].pk).update(locale="de_DE", attributes={"plan": "gold", "kids": 2})
    return contacts, items


def names(campaign) -> list[str]:
    return list(audience_contacts(campaign).values_list("external_id", flat=True))


def campaign_for(tenant, audience) -> Campaign:
    return Campaign.objects.create(tenant=tenant, name=f"c{Campaign.objects.count()}", audience=audience)


def test_everyone_is_every_subscribed_contact(scoped, people):
    assert names(campaign_for(scoped, {})) == ["u0", "u1", "u2", "u3", "u4"]
    assert names(campaign_for(scoped, {"kind": "everyone"})) == ["u0", "u1", "u2", "u3", "u4"]


@pytest.mark.parametrize(
    "audience, expected",
    [
        ({"min_age": 22}, ["u2", "u3", "u4"]),
        ({"kind": "filter", "min_age": 21, "max_age": 23}, ["u1", "u2", "u3"]),
        ({"gender": "FEMALE"}, ["u1", "u3"]),  # case as people type it; u5 is unsubscribed
        ({"locale": ["de_DE", "fr_FR"]}, ["u1"]),
        ({"attributes": {"plan": "gold"}}, ["u1"]),
        ({"attributes": {"plan": "gold", "kids": 3}}, []),
        ({"gender": "male", "max_age": 22}, ["u0", "u2"]),
    ],
)
def test_a_saved_filter_on_demographics_and_attributes(scoped, people, audience, expected):
    assert names(campaign_for(scoped, audience)) == expected


def test_a_saved_filter_on_favorite_genre(scoped, people):
    """make_catalog gives contact i a liking for genre i % 4 (Comedy, Drama, Horror, Sci-Fi)."""
    from recommendations.services import favorite_genres

    contacts, _ = people
    favorites = favorite_genres(tenant=scoped, contact_ids=[c.pk for c in contacts[:5]])
    comedy = sorted(c.external_id for c in contacts[:5] if favorites[c.pk] == "Comedy")
    assert comedy  # the catalog gives someone a favorite
    assert names(campaign_for(scoped, {"favorite_genre": "comedy"})) == comedy
    both = sorted(c.external_id for c in contacts[:5] if favorites[c.pk] in ("Comedy", "Drama"))
    assert names(campaign_for(scoped, {"favorite_genre": ["Comedy", "Drama"], "min_age": 0})) == both
    assert len(both) > len(comedy)


def test_not_emailed_in_the_last_n_days(scoped, people):
    contacts, _ = people
    campaign = campaign_for(scoped, {"kind": "not_emailed", "days": 7})
    run = CampaignRun.objects.create(tenant=scoped, campaign=campaign, status="completed")
    now = timezone.now()
    for contact, sent_at, status in ((contacts[0], now - timedelta(days=2), EmailStatus.SENT),
                                     (contacts[1], now - timedelta(days=30), EmailStatus.SENT),
                                     (contacts[2], None, EmailStatus.APPROVED)):  # fmt: skip
        GeneratedEmail.objects.create(tenant=scoped, run=run, contact=contact, status=status, sent_at=sent_at)
    assert names(campaign) == ["u1", "u2", "u3", "u4"]  # u0 was sent one two days ago; u2's was never sent
    campaign.audience = {"kind": "not_emailed", "days": 60, "locale": "en_US"}
    assert names(campaign) == ["u2", "u3", "u4"]


def test_active_since_the_last_run(scoped, people):
    contacts, items = people
    campaign = campaign_for(scoped, {"kind": "active_since_last_run"})
    # No run yet: everyone with an interaction (make_catalog gives each a history).
    assert names(campaign) == ["u0", "u1", "u2", "u3", "u4"]
    last = CampaignRun.objects.create(tenant=scoped, campaign=campaign, status="completed")
    assert names(campaign) == []  # the catalog's interactions are all from 2025
    Interaction.objects.create(
        tenant=scoped, contact=contacts[3], item=items[0], timestamp=last.created_at + timedelta(1)
    )
    Interaction.objects.create(
        tenant=scoped, contact=contacts[4], item=items[0], timestamp=last.created_at - timedelta(1)
    )
    assert names(campaign) == ["u3"]
    # The run being written (active) is not "the last run": it would find nobody.
    CampaignRun.objects.create(tenant=scoped, campaign=campaign, status="running")
    assert names(campaign) == ["u3"]
    campaign.audience = {"kind": "active_since_last_run", "gender": "male"}
    assert names(campaign) == []


def test_each_run_works_the_audience_out_afresh(scoped, people):
    campaign = campaign_for(scoped, {"min_age": 24})
    run = services.campaign_launch(campaign=campaign)
    assert run.total == 1
    Contact.objects.filter(external_id="u3").update(age=30)
    assert services.run_start(run=run) == [[c.pk for c in Contact.objects.filter(external_id__in=["u3", "u4"])]]


def test_an_audience_is_never_another_tenants(scoped, people, other_tenant):
    make_catalog(other_tenant, n_contacts=3, prefix="g")
    assert names(campaign_for(scoped, {"kind": "active_since_last_run"})) == ["u0", "u1", "u2", "u3", "u4"]
    assert not Item.objects.filter(external_id__startswith="g").exists()


@pytest.mark.parametrize(
    "audience, says",
    [
        ([], "audience must be an object"),
        ("everyone", "audience must be an object"),
        ({"kind": "sometimes"}, "audience.kind 'sometimes' is not one of everyone, filter, not_emailed"),
        ({"kind": "everyone", "min_age": 3}, "unknown audience keys min_age for kind 'everyone'"),
        (
            {"age": 30},
            "unknown audience keys age for kind 'filter'; allowed: attributes, favorite_genre, gender, kind, locale, max_age, min_age",
        ),
        ({"kind": "filter", "days": 3}, "unknown audience keys days"),
        ({"kind": "not_emailed"}, 'needs "days"'),
        ({"kind": "not_emailed", "days": 0}, "audience.days must be a whole number from 1 to 3650, not 0"),
        ({"kind": "not_emailed", "days": "30"}, "audience.days must be a whole number from 1 to 3650, not '30'"),
        ({"min_age": 18.5}, "audience.min_age must be a whole number from 0 to 150, not 18.5"),
        ({"max_age": True}, "audience.max_age must be a whole number"),
        ({"min_age": 40, "max_age": 30}, "audience.min_age 40 is above audience.max_age 30"),
        ({"gender": []}, "audience.gender must be a text or a list of 1 to 100 texts"),
        ({"locale": ["en_US", 3]}, "audience.locale values must be non-empty texts of up to 100 characters, not 3"),
        ({"favorite_genre": " "}, "audience.favorite_genre values must be non-empty texts"),
        ({"attributes": []}, "audience.attributes must be a non-empty object"),
        ({"attributes": {"plan": ["gold"]}}, "audience.attributes.plan must be a text (up to 200 characters)"),
    ],
)
def test_a_wrong_audience_is_refused_with_the_key_and_what_it_should_be(owner_api, scoped, audience, says):
    with pytest.raises(AudienceError) as refused:
        audience_check(audience)
    assert says in str(refused.value)
    answer = owner_api.post(f"{API}/campaigns/", {"name": "bad", "audience": audience}, format="json")
    assert answer.status_code == 400 and says in str(answer.json()["error"]["fields"]["audience"])
    assert not Campaign.objects.exists()


def test_the_api_keeps_a_good_audience_normalized(owner_api, scoped):
    body = {"name": "lapsed", "audience": {"kind": "not_emailed", "days": 30, "locale": "en_US"}}
    answer = owner_api.post(f"{API}/campaigns/", body, format="json")
    assert answer.status_code == 201
    assert answer.json()["audience"] == {"kind": "not_emailed", "days": 30, "locale": ["en_US"]}


def test_an_invalid_audience_saved_by_hand_stops_the_launch_with_the_reason(scoped, people):
    campaign = campaign_for(scoped, {"min_age": "old"})
    with pytest.raises(services.CampaignError, match="invalid audience: audience.min_age must be a whole number"):
        services.campaign_launch(campaign=campaign)


def test_audiences_read_as_a_line(scoped):
    assert audience_describe({}) == "everyone (subscribed)"
    said = audience_describe({"kind": "not_emailed", "days": 30, "min_age": 18, "max_age": 34, "locale": "en_US"})
    assert said == "contacts not emailed in 30 days, aged 18-34, locale en_US (subscribed)"
    assert audience_describe({"min_age": 18, "gender": ["female", "nonbinary"]}) == (
        "contacts, aged 18+, gender female or nonbinary (subscribed)"
    )
