"""A campaign's preview for one contact: the picks and why, the rendered prompt and a sample email written by the
tenant's routed model (the emulated Bedrock here), checked as a run checks it, creating no run and no email."""

import pytest

from campaigns.models import Campaign, CampaignRun, GeneratedEmail, PromptTemplate
from campaigns.preview import campaign_preview
from datasets.models import Contact, Item
from routing.models import LLMCall
from tests.conftest import make_catalog


@pytest.fixture
def campaign(scoped):
    return Campaign.objects.create(tenant=scoped, name="Weekend picks", n_items=2, goal="weekend binge")


def test_the_preview_shows_picks_prompt_and_a_sample_without_a_run(bedrock_settings, scoped, campaign, catalog):
    contact = Contact.objects.order_by("pk").first()
    Item.objects.filter(pk__in=Item.objects.order_by("pk").values("pk")[:6]).update(promotion=True)
    preview = campaign_preview(campaign=campaign, contact=contact)
    assert preview.ok, preview.problem
    assert len(preview.picks) == 2 and all(p.plot and p.genres for p in preview.picks)
    assert preview.picks[0].why.startswith("#1 for this contact from the embedded recommender (score ")
    assert preview.favorite_genre  # the catalog gives every contact a history
    for pick in preview.picks:
        assert (f"{preview.favorite_genre} is their favorite genre" in pick.why) == (
            preview.favorite_genre in pick.genres
        )
    assert contact.first_name in preview.prompt and all(p.title in preview.prompt for p in preview.picks)
    assert preview.subject and contact.first_name in preview.body
    assert all(p.title in preview.body for p in preview.picks)  # checked as a run checks it
    assert preview.model_key and preview.input_tokens > 0 and preview.attempts >= 1
    assert not CampaignRun.objects.exists() and not GeneratedEmail.objects.exists()
    assert LLMCall.objects.filter(task=campaign.task).count() == preview.attempts  # the tenant's usage


def test_the_preview_says_why_there_is_no_sample(bedrock_settings, scoped, campaign, catalog):
    contact = Contact.objects.order_by("pk").first()
    campaign.include_genres = ["Western"]  # no such items: no picks
    assert campaign_preview(campaign=campaign, contact=contact).problem == "no recommendations for this contact"
    campaign.include_genres = []
    campaign.template = PromptTemplate.objects.create(tenant=scoped, name="broken", body="{{ contact.missing.x }}")
    preview = campaign_preview(campaign=campaign, contact=contact)
    assert not preview.ok and preview.problem and not LLMCall.objects.exists()


def test_another_tenants_contact_is_refused(bedrock_settings, scoped, campaign, catalog, other_tenant):
    contacts, _ = make_catalog(other_tenant, n_contacts=1, prefix="g")
    with pytest.raises(ValueError, match="not of the campaign's tenant"):
        campaign_preview(campaign=campaign, contact=contacts[0])
