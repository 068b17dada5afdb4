"""Bedrock Runtime `Converse`: the known models, request validation, and a reply with usage counts."""

import math
import time
from dataclasses import dataclass

from awsemu import textgen
from awsemu.wire import AwsError, read_json

INVALID = "ValidationException"
DEFAULT_MAX_TOKENS = 4096
CHARS_PER_TOKEN = 4  # the usual rough estimate for English text
PROFILE_PREFIXES = ("us.", "eu.", "apac.")


@dataclass(frozen=True)
class Model:
    on_demand: bool = True  # False: only reachable through an inference profile
    profile: bool = True  # a cross-region inference profile ("us." etc.) exists
    system_prompts: bool = True


MODELS = {
    "amazon.nova-micro-v1:0": Model(),
    "amazon.nova-lite-v1:0": Model(),
    "amazon.nova-pro-v1:0": Model(),
    "anthropic.claude-3-haiku-20240307-v1:0": Model(),
    "anthropic.claude-3-5-haiku-20241022-v1:0": Model(),
    "anthropic.claude-3-5-sonnet-20241022-v2:0": Model(on_demand=False),
    "anthropic.claude-3-7-sonnet-20250219-v1:0": Model(on_demand=False),
    "meta.llama3-8b-instruct-v1:0": Model(profile=False),
    "meta.llama3-70b-instruct-v1:0": Model(profile=False),
    "meta.llama3-1-8b-instruct-v1:0": Model(),
    "meta.llama3-1-70b-instruct-v1:0": Model(),
    "meta.llama3-2-1b-instruct-v1:0": Model(on_demand=False),
    "meta.llama3-2-3b-instruct-v1:0": Model(on_demand=False),
    "meta.llama3-3-70b-instruct-v1:0": Model(on_demand=False),
    "mistral.mistral-7b-instruct-v0:2": Model(profile=False, system_prompts=False),
    "mistral.mixtral-8x7b-instruct-v0:1": Model(profile=False, system_prompts=False),
    "mistral.mistral-large-2402-v1:0": Model(profile=False),
}

FAULTS = {
    "throttle": ("ThrottlingException", 429, "Too many requests, please wait before trying again."),
    "timeout": ("ModelTimeoutException", 408, "Model has timed out in processing the request."),
    "internal": ("InternalServerException", 500, "The server encountered an internal error."),
    "unavailable": ("ServiceUnavailableException", 503, "The service is temporarily unavailable."),
}


def converse(model_id: str, body: bytes, started: float) -> dict:
    """The Converse reply for a request body, or AwsError as the real service would answer."""
    model = resolve_model(model_id)
    request = read_json(body, INVALID)
    messages = _messages(request)
    system = _system(request, model)
    max_tokens, stop_sequences = _inference_config(request)
    prompt = _text(next(m for m in reversed(messages) if m["role"] == "user"))
    text, stop_reason = _limit(textgen.reply(prompt), max_tokens, stop_sequences)
    input_tokens = estimate_tokens(system + "".join(_text(m) for m in messages))
    output_tokens = min(estimate_tokens(text), max_tokens)
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": stop_reason,
        "usage": {
            "inputTokens": input_tokens,
            "outputTokens": output_tokens,
            "totalTokens": input_tokens + output_tokens,
        },
        "metrics": {"latencyMs": int((time.monotonic() - started) * 1000)},
    }


def resolve_model(model_id: str) -> Model:
    """The model a model id, inference-profile id or ARN names, if on-demand calls may reach it."""
    name = model_id.rsplit("/", 1)[-1] if model_id.startswith("arn:") else model_id
    prefix = next((p for p in PROFILE_PREFIXES if name.startswith(p)), "")
    model = MODELS.get(name[len(prefix) :])
    if model is None or (prefix and not model.profile):
        raise AwsError(INVALID, 400, "The provided model identifier is invalid.")
    if not prefix and not model.on_demand:
        # The real message, curly apostrophe included.
        message = (
            f"Invocation of model ID {name} with on-demand throughput isn\u2019t supported. "
            "Retry your request with the ID or ARN of an inference profile that contains this model."
        )
        raise AwsError(INVALID, 400, message)
    return model


def estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


def _messages(request: dict) -> list[dict]:
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        raise AwsError(INVALID, 400, "1 validation error detected: Value at 'messages' must not be empty.")
    roles = []
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise AwsError(INVALID, 400, "Each message needs a role of 'user' or 'assistant'.")
        if not isinstance(message.get("content"), list) or not message["content"]:
            raise AwsError(INVALID, 400, "The content field in the Message object is empty.")
        roles.append(message["role"])
    if roles[0] != "user":
        raise AwsError(INVALID, 400, "A conversation must start with a user message.")
    if any(a == b for a, b in zip(roles, roles[1:], strict=False)):
        raise AwsError(INVALID, 400, "A conversation must alternate between user and assistant roles.")
    return messages


def _system(request: dict, model: Model) -> str:
    blocks = request.get("system") or []
    if not isinstance(blocks, list):
        raise AwsError(INVALID, 400, "The system field must be a list of content blocks.")
    if blocks and not model.system_prompts:
        raise AwsError(INVALID, 400, "This model doesn't support system messages.")
    return "".join(block.get("text", "") for block in blocks if isinstance(block, dict))


def _inference_config(request: dict) -> tuple[int, list[str]]:
    config = request.get("inferenceConfig") or {}
    max_tokens = config.get("maxTokens", DEFAULT_MAX_TOKENS)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise AwsError(INVALID, 400, f"inferenceConfig.maxTokens must be an integer >= 1: {max_tokens!r}")
    for name in ("temperature", "topP"):
        value = config.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise AwsError(INVALID, 400, f"inferenceConfig.{name} must be between 0 and 1.")
    stops = config.get("stopSequences") or []
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise AwsError(INVALID, 400, "inferenceConfig.stopSequences must be a list of non-empty strings.")
    return max_tokens, stops


def _limit(text: str, max_tokens: int, stop_sequences: list[str]) -> tuple[str, str]:
    """The text cut at the first stop sequence or at max_tokens, and the matching stopReason."""
    cuts = [text.find(stop) for stop in stop_sequences if stop in text]
    if cuts:
        text, reason = text[: min(cuts)], "stop_sequence"
    else:
        reason = "end_turn"
    if estimate_tokens(text) > max_tokens:
        return text[: max_tokens * CHARS_PER_TOKEN], "max_tokens"
    return text, reason


def _text(message: dict) -> str:
    return "".join(block.get("text", "") for block in message["content"] if isinstance(block, dict))
