"""Training and serving recommendations for a tenant, and each contact's favorite genre."""

import threading
import time
from collections import defaultdict
from dataclasses import asdict

from django.db import transaction
from django.db.models import Max

from datasets.models import Interaction, Item
from recommendations.base import Pick, Recommender
from recommendations.engine import Engine, EngineParams, train
from recommendations.favorite_genre import favorite_genre
from recommendations.models import RecommenderModel

_engines: dict[int, Engine] = {}  # RecommenderModel pk → loaded engine, per process
_engines_lock = threading.Lock()


def recommender_train(*, tenant, params: EngineParams | None = None) -> RecommenderModel:
    params = params or EngineParams()
    rows = list(Interaction.objects.for_tenant(tenant).values_list("contact_id", "item_id", "timestamp", "event_type"))
    if not rows:
        raise ValueError(f"tenant {tenant.slug} has no interactions to train on; import some first")
    started = time.perf_counter()
    engine = train(
        [str(r[0]) for r in rows], [str(r[1]) for r in rows], [r[2].timestamp() for r in rows],
        [r[3] for r in rows], params=params,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    with transaction.atomic():
        latest = RecommenderModel.objects.for_tenant(tenant).select_for_update().aggregate(v=Max("version"))["v"]
        return RecommenderModel.objects.for_tenant(tenant).create(
            tenant=tenant, version=(latest or 0) + 1, n_interactions=len(rows),
            n_contacts=len(engine.user_index), n_items=len(engine.item_ids), training_seconds=seconds,
            params=asdict(params), blob=engine.to_bytes(),
        )  # fmt: skip


def current_engine(tenant) -> Engine:
    """The tenant's newest trained engine, trained now if it has none."""
    model = RecommenderModel.objects.for_tenant(tenant).defer("blob").order_by("-version").first()
    if model is None:
        model = recommender_train(tenant=tenant)
    with _engines_lock:
        engine = _engines.get(model.pk)
    if engine is None:
        blob = RecommenderModel.objects.for_tenant(tenant).values_list("blob", flat=True).get(pk=model.pk)
        engine = Engine.from_bytes(bytes(blob))
        with _engines_lock:
            _engines[model.pk] = engine
    return engine


class EmbeddedRecommender:
    def __init__(self, tenant):
        self.tenant = tenant

    def top_picks(self, contacts: list, n: int) -> dict[int, list[Pick]]:
        engine = current_engine(self.tenant)
        ranked = engine.recommend_many([str(c.pk) for c in contacts], n)
        wanted = {int(item_id) for picks in ranked.values() for item_id, _ in picks}
        items = Item.objects.for_tenant(self.tenant).in_bulk(wanted)
        return {
            c.pk: [_pick(items[int(item_id)], score) for item_id, score in ranked[str(c.pk)] if int(item_id) in items]
            for c in contacts
        }


def _pick(item: Item, score: float) -> Pick:
    return Pick(item.external_id, item.title, item.year, tuple(item.genres), item.plot, float(score))


def recommender_for(tenant) -> Recommender:
    if tenant.recommender == "personalize":
        from recommendations.personalize import PersonalizeRecommender

        return PersonalizeRecommender(tenant)
    return EmbeddedRecommender(tenant)


def favorite_genres(*, tenant, contact_ids: list[int]) -> dict[int, str | None]:
    rows = Interaction.objects.for_tenant(tenant).filter(contact_id__in=contact_ids)
    params = EngineParams()  # the same event weights the recommender learns from
    history: dict[int, list] = defaultdict(list)
    now = 0.0
    for contact_id, genres, ts, event in rows.values_list("contact_id", "item__genres", "timestamp", "event_type"):
        history[contact_id].append((genres or [], ts.timestamp(), params.event_weights.get(event.lower(), params.default_event_weight)))
        now = max(now, ts.timestamp())
    return {cid: favorite_genre(history.get(cid, []), now=now) for cid in contact_ids}
