"""Amazon Titan Text Embeddings V2 on InvokeModel: its native body, its validation, and a deterministic embedding
(signed feature hashing of words and character trigrams, L2-normalised), so that texts sharing words are near and
nearest-neighbour search behaves as it would on the real model, only coarser."""

import hashlib
import math
import re

from awsemu.wire import AwsError

MODELS = ("amazon.titan-embed-text-v2:0",)
DIMENSIONS = (256, 512, 1024)
MAX_CHARS = 50_000
INVALID = "ValidationException"
_WORD = re.compile(r"\w+", re.UNICODE)


def serves(model_id: str) -> bool:
    return model_id.rsplit("/", 1)[-1] in MODELS


def invoke(body: dict) -> tuple[dict, dict]:
    """The reply body and its headers."""
    text = body.get("inputText")
    if not isinstance(text, str) or not text.strip():
        raise AwsError(INVALID, 400, "Malformed input request: #/inputText: expected a non-empty string")
    if len(text) > MAX_CHARS:
        raise AwsError(INVALID, 400, f"Malformed input request: #/inputText: expected maxLength: {MAX_CHARS}")
    dimensions = body.get("dimensions", 1024)
    if dimensions not in DIMENSIONS:
        raise AwsError(INVALID, 400, f"Malformed input request: #/dimensions: {dimensions} is not a valid enum value")
    unknown = sorted(set(body) - {"inputText", "dimensions", "normalize", "embeddingTypes"})
    if unknown:
        raise AwsError(INVALID, 400, f"Malformed input request: #: extraneous key [{unknown[0]}] is not permitted")
    vector = embed(text, dimensions, normalize=body.get("normalize", True) is not False)
    tokens = max(1, math.ceil(len(text) / 4))
    reply = {"embedding": vector, "embeddingsByType": {"float": vector}, "inputTextTokenCount": tokens}
    return reply, {"X-Amzn-Bedrock-Input-Token-Count": str(tokens)}


def embed(text: str, dimensions: int, *, normalize: bool = True) -> list[float]:
    vector = [0.0] * dimensions
    words = _WORD.findall(text.lower())
    features = words + [f"#{w[i : i + 3]}" for w in words for i in range(max(1, len(w) - 2))]
    for feature in features:
        digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "big") % dimensions
        vector[index] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [round(v / norm, 6) for v in vector] if normalize else vector
