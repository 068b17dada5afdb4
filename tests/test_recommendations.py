"""The embedded recommender inside the product: training per tenant, options on top picks, cold start, the
retrain task, per-tenant settings, and isolation between tenants."""

import io
from datetime import UTC, datetime

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django_celery_beat.schedulers import ModelEntry

from datasets.models import Contact, Interaction, Item
from recommendations import tasks
from recommendations.base import RecommendationOptions
from recommendations.engine import WATCH_OVER_CLICK
from recommendations.models import RecommenderConfig, RecommenderModel
from recommendations.options import maturity_ceiling, stated_genres
from recommendations.services import (
    EmbeddedRecommender,
    current_engine,
    favorite_genres,
    recommender_needs_training,
    recommender_train,
    tenants_needing_training,
)
from saas.celery import app as celery_app
from tenants.models import Role
from tenants.scoping import TenantScopeError
from tenants.services import membership_add

LATER = datetime(2025, 6, 1, tzinfo=UTC)


def picks_of(tenant, contacts, n=4, **options):
    picks = EmbeddedRecommender(tenant).top_picks(contacts, n, RecommendationOptions(**options) if options else None)
    return {c.external_id: [p.external_id for p in picks[c.pk]] for c in contacts}


def genres_of(tenant, external_ids):
    items = Item.objects.for_tenant(tenant).filter(external_id__in=external_ids)
    return {g for item in items for g in item.genres}


def watched(tenant, contact):
    return set(
        Interaction.objects.for_tenant(tenant).filter(contact=contact).values_list("item__external_id", flat=True)
    )


def test_top_picks_leave_out_what_each_contact_has_seen(scoped, tenant, catalog):
    contacts, _ = catalog
    picks = picks_of(tenant, contacts)
    for contact in contacts:
        assert len(picks[contact.external_id]) == 4
        assert watched(tenant, contact).isdisjoint(picks[contact.external_id])


def test_interactions_since_training_count_as_seen(scoped, tenant, catalog):
    contacts, items = catalog
    recommender_train(tenant=tenant)
    first = picks_of(tenant, contacts[:1], n=1)["u0"][0]
    item = Item.objects.for_tenant(tenant).get(external_id=first)
    Interaction.objects.for_tenant(tenant).create(tenant=tenant, contact=contacts[0], item=item, timestamp=LATER)
    assert first not in picks_of(tenant, contacts[:1])["u0"]


def test_genre_filters(scoped, tenant, catalog):
    contacts, _ = catalog
    only_drama = picks_of(tenant, contacts, include_genres=("drama",))
    assert all(genres_of(tenant, picks) == {"Drama"} for picks in only_drama.values() if picks)
    no_comedy = picks_of(tenant, contacts, exclude_genres=("Comedy", "Horror"))
    assert all(genres_of(tenant, picks) <= {"Drama", "Sci-Fi"} for picks in no_comedy.values())


def test_maturity_ceiling_for_everyone_and_by_age(scoped, tenant, catalog):
    contacts, items = catalog
    for i, item in enumerate(items):  # ratings 1..4 in turn; the last item stays unrated
        item.maturity_rating = None if i == len(items) - 1 else i % 4 + 1
        item.save()
    rated = {i.external_id: i.maturity_rating for i in Item.objects.for_tenant(tenant)}
    capped = picks_of(tenant, contacts, n=8, max_maturity=2)
    assert all(rated[p] is None or rated[p] <= 2 for picks in capped.values() for p in picks)
    contacts[0].age, contacts[1].age = 10, 15
    by_age = picks_of(tenant, contacts, n=8, maturity_by_age=True)
    assert all(rated[p] is None or rated[p] <= 2 for p in by_age["u0"])
    assert all(rated[p] is None or rated[p] <= 3 for p in by_age["u1"])
    assert 4 in {rated[p] for p in by_age["u2"]}  # adults are not capped


def test_items_emailed_recently_can_be_excluded_per_contact(scoped, tenant, catalog):
    contacts, _ = catalog
    before = picks_of(tenant, contacts[:2], n=2)
    options = {"exclude_items": {contacts[0].pk: before["u0"]}}
    after = picks_of(tenant, contacts[:2], n=2, **options)
    assert set(before["u0"]).isdisjoint(after["u0"]) and after["u1"] == before["u1"]


def test_promoted_items_take_their_share_of_the_slots(scoped, tenant, catalog):
    contacts, items = catalog
    Item.objects.for_tenant(tenant).filter(external_id__in=["m10", "m11"]).update(promotion=True)
    picks = picks_of(tenant, contacts, n=4, promotion_share=0.25)
    for contact in contacts:
        promoted = {"m10", "m11"} - watched(tenant, contact)
        assert len(promoted & set(picks[contact.external_id])) == min(1, len(promoted))
    assert RecommendationOptions(promotion_share=0.1).promoted_slots(3) == 1  # a positive share gets a slot
    with pytest.raises(ValueError):
        RecommendationOptions(promotion_share=1.5)


def test_cold_contacts_get_popular_items_within_their_preferences(scoped, tenant, catalog):
    contacts, _ = catalog
    recommender_train(tenant=tenant)
    stated = Contact.objects.for_tenant(tenant).create(
        tenant=tenant, external_id="new1", email="n1@example.com", attributes={"FAVORITE_GENRES": "Horror"}
    )
    silent = Contact.objects.for_tenant(tenant).create(tenant=tenant, external_id="new2", email="n2@example.com")
    drama = Item.objects.for_tenant(tenant).filter(genres__contains=["Drama"]).order_by("pk").first()
    late = Contact.objects.for_tenant(tenant).create(tenant=tenant, external_id="new3", email="n3@example.com")
    Interaction.objects.for_tenant(tenant).create(tenant=tenant, contact=late, item=drama, timestamp=LATER)
    picks = picks_of(tenant, [stated, silent, late], n=3)
    assert genres_of(tenant, picks["new1"]) == {"Horror"}  # three horror films in the catalog
    # Two dramas left for the one who watched a drama since training, then the most popular of the rest.
    assert genres_of(tenant, picks["new3"][:2]) == {"Drama"} and drama.external_id not in picks["new3"]
    assert len(picks["new2"]) == 3  # no preferences: plain popularity
    assert picks_of(tenant, [stated, silent, late], n=3) == picks  # deterministic


def test_deleted_items_are_not_recommended_and_lists_stay_full(scoped, tenant, catalog):
    contacts, _ = catalog
    recommender_train(tenant=tenant)
    first = picks_of(tenant, contacts[:1], n=1)["u0"][0]
    Item.objects.for_tenant(tenant).filter(external_id=first).delete()
    after = picks_of(tenant, contacts[:1], n=3)["u0"]
    assert first not in after and len(after) == 3


def test_training_is_versioned_with_its_data_and_settings(scoped, tenant, catalog):
    first = recommender_train(tenant=tenant)
    second = recommender_train(tenant=tenant)
    assert (first.version, second.version) == (1, 2)
    last_id = Interaction.objects.for_tenant(tenant).order_by("-pk").first().pk
    assert second.n_interactions == 18 and second.last_interaction_id == last_id and second.n_items == 12
    assert second.params["event_weights"] == WATCH_OVER_CLICK and second.params["l2"] > 0
    assert current_engine(tenant).n_interactions == 18


def test_workers_load_the_newest_version(scoped, tenant, catalog):
    recommender_train(tenant=tenant)
    engine = current_engine(tenant)
    assert current_engine(tenant) is engine  # cached per process
    contacts, items = catalog
    Interaction.objects.for_tenant(tenant).create(tenant=tenant, contact=contacts[0], item=items[11], timestamp=LATER)
    recommender_train(tenant=tenant)
    assert current_engine(tenant) is not engine and current_engine(tenant).n_interactions == 19


def test_a_model_stored_by_an_older_release_is_retrained(scoped, tenant, catalog):
    old = recommender_train(tenant=tenant)
    with np.load(io.BytesIO(bytes(old.blob))) as stored:
        arrays = dict(stored) | {"format_version": np.array(1)}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    RecommenderModel.objects.for_tenant(tenant).filter(pk=old.pk).update(blob=buffer.getvalue())
    assert current_engine(tenant).n_interactions == 18
    assert RecommenderModel.objects.for_tenant(tenant).order_by("-version").first().version == 2


def test_tenant_settings_reach_training(scoped, tenant, catalog):
    RecommenderConfig.objects.for_tenant(tenant).create(
        tenant=tenant, event_weights={"watch": 2.0}, history_half_life=4.0, popularity_half_life_days=0
    )
    params = recommender_train(tenant=tenant).params
    assert params["event_weights"] == {"watch": 2.0} and params["history_half_life"] == 4.0
    assert params["half_life_days"] == 0


def test_settings_are_validated():
    for bad in ({"event_weights": {"watch": -1}}, {"event_weights": ["watch"]}, {"history_half_life": 0.0}):
        with pytest.raises(ValidationError):
            RecommenderConfig(**bad).clean()


def test_favorite_genres_use_the_tenants_event_weights(scoped, tenant, catalog):
    contacts, items = catalog
    contact = contacts[0]  # likes Comedy: two comedies and one more
    comedy_vs_other = favorite_genres(tenant=tenant, contact_ids=[contact.pk])[contact.pk]
    assert comedy_vs_other == "Comedy"
    RecommenderConfig.objects.for_tenant(tenant).create(tenant=tenant, event_weights={"watch": 0.0})
    for item in items[1:4]:
        Interaction.objects.for_tenant(tenant).create(
            tenant=tenant, contact=contact, item=item, event_type="click", timestamp=LATER
        )
    assert favorite_genres(tenant=tenant, contact_ids=[contact.pk])[contact.pk] != "Comedy"


def test_retrain_task_trains_only_when_the_data_changed(scoped, tenant, catalog):
    assert recommender_needs_training(tenant=tenant)
    assert tasks.retrain(tenant.pk) == 1
    assert not recommender_needs_training(tenant=tenant)
    assert tasks.retrain(tenant.pk) is None
    assert tasks.retrain(tenant.pk, only_if_changed=False) == 2
    contacts, items = catalog
    Interaction.objects.for_tenant(tenant).create(tenant=tenant, contact=contacts[0], item=items[11], timestamp=LATER)
    assert tasks.retrain(tenant.pk) == 3


def test_nightly_sweep_queues_the_tenants_whose_data_changed(tenant, catalog, other_tenant, other_catalog, monkeypatch):
    queued = []
    monkeypatch.setattr(tasks.retrain, "delay", queued.append)
    recommender_train(tenant=tenant)
    assert tasks.retrain_changed() == [other_tenant.pk] and queued == [other_tenant.pk]
    RecommenderConfig.objects.for_tenant(other_tenant).create(tenant=other_tenant, retrain_nightly=False)
    assert tenants_needing_training() == []


def test_the_nightly_entry_reaches_the_database_scheduler_with_its_expiry(db):
    entry = tasks.BEAT_SCHEDULE["recommendations-nightly-retrain"]
    scheduled = ModelEntry.from_entry("recommendations-nightly-retrain", app=celery_app, **entry)
    assert scheduled.task == tasks.retrain_changed.name == entry["task"]
    assert scheduled.options["expires"] == tasks.EXPIRES and str(scheduled.model.crontab.hour) == "2"


def test_tenants_never_see_each_others_models_settings_or_items(tenant, catalog, other_tenant, other_catalog):
    RecommenderConfig.objects.for_tenant(other_tenant).create(tenant=other_tenant, event_weights={"watch": 9.0})
    mine, theirs = recommender_train(tenant=tenant), recommender_train(tenant=other_tenant)
    assert mine.params["event_weights"] == WATCH_OVER_CLICK and theirs.params["event_weights"] == {"watch": 9.0}
    assert (mine.n_interactions, mine.n_items) == (18, 12) and (theirs.n_interactions, theirs.n_items) == (9, 8)
    assert list(RecommenderModel.objects.for_tenant(tenant)) == [mine]
    contacts, _ = catalog
    picks = picks_of(tenant, contacts)
    assert all(p.startswith("m") for ps in picks.values() for p in ps)  # the other tenant's items are "gm…"
    foreign = picks_of(tenant, other_catalog[0])  # another tenant's contacts are strangers here
    assert all(p.startswith("m") for ps in foreign.values() for p in ps)
    for model in (RecommenderModel, RecommenderConfig):
        with pytest.raises(TenantScopeError):
            list(model.objects.all())


@pytest.mark.parametrize("model", ["recommendermodel", "recommenderconfig"])
def test_admin_shows_a_member_only_their_tenants_recommender(tenant, catalog, other_tenant, other_catalog, model):
    for t in (tenant, other_tenant):
        recommender_train(tenant=t)
        RecommenderConfig.objects.for_tenant(t).create(tenant=t, event_weights={"watch": 1.0})
    client = Client()
    client.force_login(membership_add(tenant=tenant, username="rita", role=Role.MARKETER, password="pw-rita-123").user)
    klass = {"recommendermodel": RecommenderModel, "recommenderconfig": RecommenderConfig}[model]
    mine, theirs = (klass.objects.for_tenant(t).get() for t in (tenant, other_tenant))
    assert client.get(reverse(f"admin:recommendations_{model}_changelist")).status_code == 200
    assert client.get(reverse(f"admin:recommendations_{model}_change", args=[mine.pk])).status_code == 200
    assert client.get(reverse(f"admin:recommendations_{model}_change", args=[theirs.pk])).status_code == 404


def test_options_helpers():
    assert maturity_ceiling(RecommendationOptions(), 8) is None
    assert maturity_ceiling(RecommendationOptions(maturity_by_age=True), 8) == 2
    assert maturity_ceiling(RecommendationOptions(maturity_by_age=True, max_maturity=1), 15) == 1
    assert maturity_ceiling(RecommendationOptions(maturity_by_age=True), None) is None
    assert stated_genres({"Favorite_Genres": "Drama| Comedy"}) == ["Drama", "Comedy"]
    assert stated_genres({"genres": ["Horror"], "city": "Oslo"}) == ["Horror"] and stated_genres({}) == []


@pytest.mark.django_db(transaction=True)
def test_two_trainings_of_one_tenant_at_once_each_get_a_version(tenant, catalog):
    """The nightly retrain and a run's first training (or two workers' first runs) can train one tenant at the same
    moment: both versions are stored, numbered one after the other, instead of one failing on the unique version."""
    import threading

    from django.db import connection

    rounds, errors, versions = 6, [], []
    barrier = threading.Barrier(2)

    def trainer():
        try:
            for _ in range(rounds):
                barrier.wait(10)
                versions.append(recommender_train(tenant=tenant).version)
        except Exception as error:  # noqa: BLE001 - the test reports whatever a trainer hit
            errors.append(repr(error))
            barrier.abort()
        finally:
            connection.close()

    threads = [threading.Thread(target=trainer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert sorted(versions) == list(range(1, 2 * rounds + 1))
