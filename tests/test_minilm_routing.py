"""The semantic router on all-MiniLM-L6-v2 (routing.embeddings.MiniLMEmbedder), the real model from the `routing`
group that `make test` installs, loaded from site-packages with HF_HUB_OFFLINE=1 (there is no Hub to ask). The model
loads once for the module (4.5 s on an idle machine, 15 s at a load of 6); an encode takes 12-35 ms of CPU."""

import os

import numpy as np
import pytest

from bench.routing_prompts import prompts
from routing.dynamic import route_prompt
from routing.gateway import route_for

MINILM = "local/all-minilm-l6-v2"
PRO, SMALL = "bedrock/claude-3.7-sonnet", "bedrock/nova-lite"
# A few of bench/routing_prompts.py's labelled prompts, of each kind and shape, that MiniLM places by a clear margin
# over the other label's nearest reference (bench/routing.py: 81% of the 219 routed right at the threshold in use).
LABELLED = {49: "simple", 84: "simple", 53: "simple", 111: "complex", 126: "complex", 168: "complex"}
FAR = "Zyxwv qpoj kumquat. <movie>Title: Up</movie>"  # nearest reference 0.21


@pytest.fixture(scope="module")
def minilm():
    """The offline model, loaded for this module; the Hub switched off before huggingface_hub is first imported."""
    saved = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    from routing.embeddings import MiniLMEmbedder, _minilm

    _minilm()
    yield MiniLMEmbedder()
    if saved is None:
        os.environ.pop("HF_HUB_OFFLINE", None)
    else:
        os.environ["HF_HUB_OFFLINE"] = saved


@pytest.fixture
def semantic_on_minilm(bedrock_settings, tenant, minilm):
    bedrock_settings.ROUTING_EMBEDDINGS = "local"
    tenant.plan, tenant.routing_strategy = "pro", "semantic"
    tenant.save(update_fields=["plan", "routing_strategy"])
    return tenant


def decide(tenant, prompt):
    return route_prompt(tenant=tenant, task="marketing_email", route=route_for(tenant=tenant, task="marketing_email"),
                        prompt=prompt)  # fmt: skip


def cosine(a, b) -> float:
    return float(a @ b)


def test_the_model_loads_offline_on_cpu_torch_2_13_on_one_thread(minilm):
    import huggingface_hub.constants
    import torch

    assert huggingface_hub.constants.HF_HUB_OFFLINE is True
    assert torch.__version__.split("+")[0] == "2.13.0" and torch.version.cuda is None, torch.__version__
    assert torch.get_num_threads() == 1  # ROUTING_EMBEDDING_THREADS: on a busy machine more threads stall each other


def test_vectors_have_384_dimensions_and_unit_length(minilm):
    texts = ["Write a short email about these movies.", "Écris un courriel en français.", "x"]
    vectors = minilm.embed(texts).vectors
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert len({row.tobytes() for row in vectors}) == 3
    again = minilm.embed([texts[0]]).vectors[0]
    assert np.allclose(again, vectors[0], atol=1e-5)  # the same text, the same vector, alone or in a batch
    assert minilm.embed([texts[0]]).cost_usd == 0 and minilm.embed([texts[0]]).input_tokens == 0  # no priced call


def test_semantically_close_prompts_are_nearer_than_unrelated_ones(minilm):
    short, brief, bilingual, french, unrelated = minilm.embed([
        "Write a short, friendly email recommending these films.",
        "Send the customer a brief note suggesting the movies below.",
        "Write the email twice: first in Spanish, then in English.",
        "Write the email in Spanish, followed by an English version.",
        "The invoice total is due within thirty days of the delivery date.",
    ]).vectors  # fmt: skip
    assert cosine(short, brief) > cosine(short, unrelated) + 0.3
    assert cosine(short, brief) > cosine(short, bilingual)
    assert cosine(bilingual, french) > cosine(bilingual, short)
    assert cosine(bilingual, french) > cosine(bilingual, unrelated) + 0.3


def test_semantic_on_minilm_routes_labelled_prompts_to_their_labels_routes(semantic_on_minilm, emulator):
    rows = prompts()
    for n, label in LABELLED.items():
        assert rows[n]["label"] == label, f"bench/routing_prompts.py changed: prompt {n} is {rows[n]['label']}"
        decision = decide(semantic_on_minilm, rows[n]["prompt"])
        assert (decision.strategy, decision.label, decision.classified_by) == ("semantic", label, MINILM), n
        assert decision.route.model_key == (SMALL if label == "simple" else PRO), n
        assert f"nearest reference {label} 0." in decision.route.reason and decision.records == (), n
    assert not emulator.requests.filter(model_id="amazon.titan-embed-text-v2:0")  # embedded here, not on Bedrock


def test_semantic_on_minilm_takes_the_default_route_under_the_threshold(semantic_on_minilm, settings):
    far = decide(semantic_on_minilm, FAR)
    assert (far.label, far.route.model_key) == ("unsure", PRO)
    assert " < 0.35" in far.route.reason and f"default {PRO}" in far.route.reason  # MiniLM's own threshold
    near = prompts()[49]["prompt"]  # simple, its nearest reference at 0.72
    assert decide(semantic_on_minilm, near).label == "simple"
    settings.ROUTING_SIMILARITY_THRESHOLD = 0.9
    raised = decide(semantic_on_minilm, near)
    assert (raised.label, raised.route.model_key) == ("unsure", PRO) and " < 0.90" in raised.route.reason


def test_the_minilm_index_is_built_once_per_process_and_again_when_the_references_change(semantic_on_minilm):
    from routing import dynamic
    from routing.embeddings import _minilm
    from routing.models import ReferencePrompt

    decide(semantic_on_minilm, FAR)
    index = dynamic._indexes[MINILM]
    assert index.vectors.shape == (ReferencePrompt.objects.filter(enabled=True).count(), 384)
    for n in LABELLED:
        decide(semantic_on_minilm, prompts()[n]["prompt"])
    assert dynamic._indexes[MINILM] is index  # kept: the reference set was not embedded again
    assert _minilm.cache_info().misses == 1  # the model loaded once in this process
    text = "Zyxwv qpoj kumquat."
    ReferencePrompt.objects.create(label="complex", text=text)  # its signal drops this process's snapshot
    seen = decide(semantic_on_minilm, FAR)
    assert dynamic._indexes[MINILM] is not index and len(dynamic._indexes[MINILM].labels) == len(index.labels) + 1
    assert (seen.label, seen.route.model_key) == ("complex", PRO) and "nearest reference complex 1.00" in \
        seen.route.reason  # fmt: skip
    assert _minilm.cache_info().misses == 1  # rebuilt on the same model
