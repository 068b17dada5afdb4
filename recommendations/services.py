"""Training and serving the embedded recommender per tenant, and each contact's favorite genre."""

import threading
import time
from collections import defaultdict
from dataclasses import asdict

from django.db import transaction
from django.db.models import Count, Max

from datasets.models import Interaction, Item
from recommendations.base import Pick, RecommendationOptions, Recommender
from recommendations.engine import WATCH_OVER_CLICK, Engine, EngineFormatError, EngineParams, train
from recommendations.favorite_genre import favorite_genre
from recommendations.models import RecommenderConfig, RecommenderModel
from recommendations.options import Catalog, maturity_ceiling, stated_genres
from tenants.models import Tenant

_engines: dict[int, tuple[int, Engine]] = {}  # tenant pk → (RecommenderModel pk, its loaded engine), per process
_engines_lock = threading.Lock()


def recommender_config(*, tenant) -> RecommenderConfig:
    """The tenant's recommender settings; the defaults (unsaved) when it has none."""
    return RecommenderConfig.objects.for_tenant(tenant).first() or RecommenderConfig(tenant=tenant)


def recommender_train(*, tenant, params: EngineParams | None = None) -> RecommenderModel:
    """Train a new version on all the tenant's interactions, with its settings unless `params` are given."""
    params = params or recommender_config(tenant=tenant).engine_params()
    rows = list(
        Interaction.objects.for_tenant(tenant).values_list("pk", "contact_id", "item_id", "timestamp", "event_type")
    )
    if not rows:
        raise ValueError(f"tenant {tenant.slug} has no interactions to train on; import some first")
    genres = {str(pk): g for pk, g in Item.objects.for_tenant(tenant).values_list("pk", "genres")}
    started = time.perf_counter()
    engine = train(
        [str(r[1]) for r in rows], [str(r[2]) for r in rows], [r[3].timestamp() for r in rows],
        [r[4] for r in rows], item_genres=genres, params=params,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    with transaction.atomic():
        # The tenant's row is the lock: two trainings at once (the nightly retrain and a run's first training) number
        # their versions one after the other, also when the tenant has none yet (no model row to lock).
        Tenant.objects.select_for_update().filter(pk=tenant.pk).values_list("pk").get()
        latest = RecommenderModel.objects.for_tenant(tenant).aggregate(v=Max("version"))["v"]
        return RecommenderModel.objects.for_tenant(tenant).create(
            tenant=tenant, version=(latest or 0) + 1, n_interactions=len(rows),
            last_interaction_id=max(r[0] for r in rows), n_contacts=len(engine.user_ids),
            n_items=len(engine.item_ids), training_seconds=seconds, params=asdict(engine.params),
            blob=engine.to_bytes(),
        )  # fmt: skip


def recommender_needs_training(*, tenant) -> bool:
    """Whether the tenant has interactions its newest model was not trained on (or lost some since)."""
    now = Interaction.objects.for_tenant(tenant).aggregate(n=Count("pk"), last=Max("pk"))
    if not now["n"]:
        return False
    trained = RecommenderModel.objects.for_tenant(tenant).order_by("-version").first()
    return trained is None or (trained.n_interactions, trained.last_interaction_id) != (now["n"], now["last"])


def tenants_needing_training() -> list[Tenant]:
    """Tenants on the embedded recommender, with nightly retraining on, whose data changed."""
    off = RecommenderConfig.dangerously_unscoped.filter(retrain_nightly=False).values_list("tenant_id", flat=True)
    candidates = Tenant.objects.filter(recommender="embedded").exclude(pk__in=list(off)).order_by("pk")
    return [tenant for tenant in candidates if recommender_needs_training(tenant=tenant)]


def current_engine(tenant) -> Engine:
    """The tenant's newest trained engine, trained now if it has none."""
    model = RecommenderModel.objects.for_tenant(tenant).defer("blob").order_by("-version").first()
    if model is None:
        model = recommender_train(tenant=tenant)
    with _engines_lock:
        loaded_pk, engine = _engines.get(tenant.pk, (None, None))
    if loaded_pk != model.pk:
        blob = RecommenderModel.objects.for_tenant(tenant).values_list("blob", flat=True).get(pk=model.pk)
        try:
            engine = Engine.from_bytes(bytes(blob))
        except EngineFormatError:  # stored by an older release: the data is all there to train a current one
            model = recommender_train(tenant=tenant)
            engine = Engine.from_bytes(bytes(model.blob))
        with _engines_lock:  # a newer version replaces the older one: nobody asks for old versions
            _engines[tenant.pk] = (model.pk, engine)
    return engine


class EmbeddedRecommender:
    def __init__(self, tenant):
        self.tenant = tenant

    def top_picks(self, contacts: list, n: int, options: RecommendationOptions | None = None) -> dict[int, list[Pick]]:
        options = options or RecommendationOptions()
        engine = current_engine(self.tenant)
        catalog = _catalog(self.tenant, engine)
        # What they interacted with since the model was trained counts as seen too.
        seen = _interacted(self.tenant, [c.pk for c in contacts])
        ranked = {}
        for ceiling, group in _by_maturity_ceiling(contacts, options).items():
            exclude = {
                str(c.pk): [*seen[c.pk], *catalog.engine_ids(options.exclude_items.get(c.pk, ()))] for c in group
            }
            ranked |= engine.recommend_many(
                [str(c.pk) for c in group], n, allowed=catalog.allowed(options, ceiling), exclude=exclude,
                promoted=catalog.promoted, promoted_slots=options.promoted_slots(n),
                preferred=self._cold_preferences(engine, catalog, group),
            )  # fmt: skip
        items = Item.objects.for_tenant(self.tenant).in_bulk({int(i) for picks in ranked.values() for i, _ in picks})
        return {
            c.pk: [_pick(items[int(i)], score) for i, score in ranked[str(c.pk)] if int(i) in items] for c in contacts
        }

    def _cold_preferences(self, engine: Engine, catalog: Catalog, contacts: list) -> dict:
        """For contacts the model does not know: their stated genres, else the favorite genre of what they
        did since it was trained."""
        cold = [c for c in contacts if str(c.pk) not in engine.user_index]
        inferred = favorite_genres(tenant=self.tenant, contact_ids=[c.pk for c in cold]) if cold else {}
        preferred = {}
        for contact in cold:
            genres = stated_genres(contact.attributes) or [g for g in [inferred.get(contact.pk)] if g]
            if genres:
                preferred[str(contact.pk)] = catalog.with_genres(genres)
        return preferred


def _catalog(tenant, engine: Engine) -> Catalog:
    fields = ("pk", "external_id", "genres", "maturity_rating", "promotion")
    rows = {str(row[0]): row[1:] for row in Item.objects.for_tenant(tenant).values_list(*fields)}
    return Catalog.build(engine.item_ids, rows)


def _interacted(tenant, contact_ids: list[int]) -> dict[int, list[str]]:
    seen = defaultdict(list)
    pairs = (
        Interaction.objects.for_tenant(tenant).filter(contact_id__in=contact_ids).values_list("contact_id", "item_id")
    )
    for contact_id, item_id in pairs.distinct():
        seen[contact_id].append(str(item_id))
    return seen


def _by_maturity_ceiling(contacts: list, options: RecommendationOptions) -> dict[int | None, list]:
    groups = defaultdict(list)
    for contact in contacts:
        groups[maturity_ceiling(options, contact.age)].append(contact)
    return groups


def _pick(item: Item, score: float) -> Pick:
    return Pick(item.external_id, item.title, item.year, tuple(item.genres), item.plot, float(score))


def recommender_for(tenant) -> Recommender:
    if tenant.recommender == "personalize":
        from recommendations.personalize import PersonalizeRecommender

        return PersonalizeRecommender(tenant)
    return EmbeddedRecommender(tenant)


def favorite_genres(*, tenant, contact_ids: list[int]) -> dict[int, str | None]:
    """Each contact's favorite genre, with the tenant's event weights (watch over click when it set none)."""
    weights = recommender_config(tenant=tenant).event_weights or WATCH_OVER_CLICK
    table = {name.lower(): weight for name, weight in weights.items()}
    rows = Interaction.objects.for_tenant(tenant).filter(contact_id__in=contact_ids)
    history: dict[int, list] = defaultdict(list)
    now = 0.0
    for contact_id, genres, ts, event in rows.values_list("contact_id", "item__genres", "timestamp", "event_type"):
        history[contact_id].append((genres or [], ts.timestamp(), table.get(event.lower(), 1.0)))
        now = max(now, ts.timestamp())
    return {cid: favorite_genre(history.get(cid, []), now=now) for cid in contact_ids}
